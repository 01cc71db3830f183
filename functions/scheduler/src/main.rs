//! The `scheduler` Lambda function: wiring only (what it does is `nudge_lambda::scheduler`).
//! The template invokes it every minute with `{"time": "<aws.scheduler.scheduled-time>"}`,
//! with a reserved concurrency of 1 (no two ticks at once).

use std::time::SystemTime;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use nudge_lambda::app::Links;
use nudge_lambda::scheduler;
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = nudge_lambda::app::start(Links::Made).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
        let remaining = scheduler::remaining(event.context.deadline, SystemTime::now());
        scheduler::handle(app, &event.payload, remaining).await
    }))
    .await
}
