//! The one integration-test binary (see `Cargo.toml`: `autotests = false`), a module per area.

mod helpers;
mod schema;
mod shipped;
mod validate_cases;
mod validate_cli;
