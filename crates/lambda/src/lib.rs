//! What Nudge's Lambda functions do, one module per trigger, so that each function crate under
//! `functions/` is wiring only (`main` builds an [`app::App`] once per cold start and hands
//! every invocation to its module's handler) and every handler is testable without the Lambda
//! runtime:
//! - [`ingest`]: store events from an EventBridge bus, and Shopify's EventBridge deliveries;
//! - [`shopify`]: Shopify's HTTPS webhooks through a function URL (HMAC, topics, guests,
//!   fulfillments of orders not seen yet, `customers/redact`), and their mapping to canonical
//!   events, shared with [`ingest`];
//! - [`scheduler`]: the minute tick that fires the due timers, shard by shard, and sweeps
//!   pending sends at the account's SES rate;
//! - [`ses_events`]: SES feedback through EventBridge (suppressions and per-step counts);
//! - [`unsubscribe`]: RFC 8058 one-click unsubscribe and its confirmation page.
//!
//! The deployment's settings come from the environment the SAM template sets ([`config`]);
//! secrets from SSM Parameter Store, never from the environment in clear.

pub mod app;
pub mod config;
pub mod http;
pub mod ingest;
pub mod scheduler;
pub mod ses_events;
pub mod shopify;
pub mod unsubscribe;
pub mod workflows;

pub use app::{App, InitError};
pub use config::Config;
