//! The `ses-events` Lambda function: wiring only (what it does is `nudge_lambda::ses_events`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use nudge_lambda::app::Links;
use nudge_lambda::{App, ses_events};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = nudge_lambda::app::start(Links::Made).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
        ses_events::handle(app, &event.payload, App::now()).await
    }))
    .await
}
