//! The one integration-test binary (see `Cargo.toml`: `autotests = false`), a module per area.

mod customer_data;
mod docs;
mod engine;
mod explain_cli;
mod graph_cli;
mod helpers;
mod hostile_events;
mod hostile_workflows;
mod layering;
mod mail;
mod plan_cli;
mod preview_cli;
mod properties;
mod report_cli;
mod scenarios;
mod schema;
mod secrets_template;
mod send_guarantee;
mod send_guarantee_points;
mod shipped;
mod simulate_cli;
mod simulate_timeline;
mod store;
mod validate_cases;
mod validate_cli;
