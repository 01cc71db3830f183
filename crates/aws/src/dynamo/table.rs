//! The table's definition: the one the deployment template declares, made here for tests and
//! for a first deployment by hand.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use nudge_core::store::StoreError;

use super::error::map_sdk_error;
use super::keys::{GPK, GSK, PK, SK, SWEEP_INDEX, TTL};

/// Creates table `table` as `DynamoDbStore` needs it and waits (up to `wait`) until it is
/// active, then turns on its TTL:
///
/// - on-demand capacity (`PAY_PER_REQUEST`): Nudge's traffic is spiky and small;
/// - key `pk` (hash) and `sk` (range), both strings;
/// - one global secondary index, `sweep`, on `gpk` (hash) and `gsk` (range), projecting only
///   the keys: sparse, it holds the customers with a timer and the sends still to deliver,
///   and the keys carry everything a sweep needs (the time, the customer, the send's key);
/// - time to live on the `ttl` attribute (unix seconds).
pub async fn create_table(client: &Client, table: &str, wait: Duration) -> Result<(), StoreError> {
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let sweep = GlobalSecondaryIndex::builder()
        .index_name(SWEEP_INDEX)
        .key_schema(key(GPK, KeyType::Hash))
        .key_schema(key(GSK, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .expect("name, keys and projection are set");
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash))
        .key_schema(key(SK, KeyType::Range))
        .attribute_definitions(string(PK))
        .attribute_definitions(string(SK))
        .attribute_definitions(string(GPK))
        .attribute_definitions(string(GSK))
        .global_secondary_indexes(sweep)
        .send()
        .await
        .map_err(|e| map_sdk_error("CreateTable", e))?;
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(wait)
        .await
        .map_err(|e| StoreError::Unavailable {
            message: format!("table `{table}` did not become active: {e}"),
            source: None,
        })?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL)
                .enabled(true)
                .build()
                .expect("name and flag are set"),
        )
        .send()
        .await
        .map_err(|e| map_sdk_error("UpdateTimeToLive", e))?;
    Ok(())
}
