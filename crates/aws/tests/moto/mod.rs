//! What the moto-backed test binaries share: finding moto (`NUDGE_MOTO_ENDPOINT`, set by
//! scripts/test), resetting it, raw HTTP calls to its API, and an SDK configuration on it with
//! fake credentials. Each binary uses what it needs.
#![allow(dead_code)]

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use nudge_aws::config_loader;
#[allow(unused_imports)]
pub use nudge_testkit::moto::{endpoint, http, reset};

/// The SDK configuration on moto at `endpoint`: fake credentials and a fixed region, so nothing
/// is read from the environment or asked of an instance-metadata service.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}
