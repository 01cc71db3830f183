//! [`RequestMeter`]: an SDK interceptor that counts DynamoDB requests (every attempt, retries
//! included: each is billed) and the capacity DynamoDB says they consumed, per operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::ConsumedCapacity;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// The requests of one operation, and the capacity units DynamoDB reported for them (with
/// `ReturnConsumedCapacity: TOTAL`, which the store sets on every call).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OperationCount {
    /// Requests sent (attempts: a retried call counts each attempt).
    pub requests: u64,
    /// Capacity units reported consumed (read plus write units).
    pub capacity: f64,
}

/// Counts DynamoDB requests and consumed capacity per operation name (`GetItem`,
/// `TransactWriteItems`, ...). Cloning shares the counts; give it to
/// `dynamodb_client` and read it with [`RequestMeter::counts`].
#[derive(Debug, Clone, Default)]
pub struct RequestMeter {
    counts: Arc<Mutex<BTreeMap<String, OperationCount>>>,
}

impl RequestMeter {
    /// A meter with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counts so far, by operation name.
    pub fn counts(&self) -> BTreeMap<String, OperationCount> {
        self.lock().clone()
    }

    /// The counts so far, and starts again from zero.
    pub fn take(&self) -> BTreeMap<String, OperationCount> {
        std::mem::take(&mut *self.lock())
    }

    /// Every request counted so far.
    pub fn requests(&self) -> u64 {
        self.lock().values().map(|c| c.requests).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, OperationCount>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, operation: &str, requests: u64, capacity: f64) {
        let mut counts = self.lock();
        let count = counts.entry(operation.to_owned()).or_default();
        count.requests += requests;
        count.capacity += capacity;
    }
}

/// The operation a request is for.
fn operation(cfg: &ConfigBag) -> &str {
    cfg.load::<Metadata>().map_or("unknown", |m| m.name())
}

/// The capacity units in `consumed`.
fn units<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
    consumed
        .into_iter()
        .map(|c| c.capacity_units().unwrap_or(0.0))
        .sum()
}

impl Intercept for RequestMeter {
    fn name(&self) -> &'static str {
        "nudge::RequestMeter"
    }

    /// Counts one request per attempt, just before it goes out.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.add(operation(cfg), 1, 0.0);
        Ok(())
    }

    /// Adds the consumed capacity of a successful answer.
    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let capacity = if let Some(o) = output.downcast_ref::<GetItemOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<QueryOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<ScanOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<PutItemOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<UpdateItemOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<TransactWriteItemsOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<DeleteItemOutput>() {
            units(o.consumed_capacity())
        } else if let Some(o) = output.downcast_ref::<BatchWriteItemOutput>() {
            units(o.consumed_capacity())
        } else {
            0.0
        };
        self.add(operation(cfg), 0, capacity);
        Ok(())
    }
}
