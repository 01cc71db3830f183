//! Nudge's AWS adapters: the implementations of the core's ports on AWS services.
//!
//! This is the only crate of the workspace that depends on `aws-sdk-*` service crates
//! (`tests/layering.rs` checks it): the core and the embedded adapters stay free of the SDK, and
//! a Lambda function links this crate for the services it uses.
//!
//! - [`SesMailer`]: the `Mailer` port on SES v2 (`SendEmail` with raw content, message tags,
//!   errors mapped onto the backend-neutral `MailError`).
//! - [`DynamoDbStore`]: the `Store` port on one DynamoDB table ([`create_table`]), errors mapped
//!   onto the backend-neutral `StoreError`; [`RequestMeter`] counts its requests and capacity.
//! - [`HttpWebhookCaller`]: the `WebhookCaller` port over HTTPS (hyper and rustls, timeouts,
//!   bounded retries), signing with secrets from a [`SecretSource`]: [`SsmSecrets`] (SSM
//!   Parameter Store) on AWS, [`EnvSecrets`] (environment variables) locally.
//! - [`Clients`] and [`SecureParameter`]: what a Lambda function builds at its cold start.
//! - [`faults`]: an SDK interceptor injecting seeded faults, for the fault harness's tests.
//!
//! Customer data (addresses, names, customer ids) never goes into a log line, an error message
//! or an SES message tag here.

#![warn(missing_docs)]

mod deploy;
mod dynamo;
pub mod faults;
mod ses;
mod throttle;
mod webhook;
mod webhook_secrets;

// Entry points for the fuzz targets (fuzz/) and tests only, not part of the API.
pub use deploy::{Clients, ParameterError, SecureParameter};
#[doc(hidden)]
pub use dynamo::fuzzing;
pub use dynamo::{
    DynamoDbStore, MAX_CUSTOMER_ID_BYTES, MAX_ITEM_BYTES, MAX_TRANSACTION_ITEMS, OperationCount,
    PROCESSED_EVENT_TTL, RequestMeter, SEND_LOG_TTL, create_table, dynamodb_client,
};
// For tests only: throttling injected into the SDK's clients (`Clients::from_env_throttled`).
pub use ses::{SesMailer, TAG_CUSTOMER, TAG_KEY, TAG_KEY_SHA256, TAG_STEP, TAG_WORKFLOW};
pub use ses::{config_loader, map_send_error, message_tags, ses_client};
#[doc(hidden)]
pub use throttle::{CallCount, InjectedThrottling, Throttle, ThrottleShares};
pub use webhook::{HttpWebhookCaller, RESPONSE_BODY_LIMIT, WebhookSettings, WebhookSetupError};
pub use webhook_secrets::{EnvSecrets, Secret, SecretSource, SsmSecrets};
pub use webhook_secrets::{env_var_name, ssm_client, ssm_parameter_name};
