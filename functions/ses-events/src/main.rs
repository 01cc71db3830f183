//! The `ses-events` Lambda function: wiring only (what it does is `nudge_lambda::ses_events`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use nudge_lambda::{App, ses_events};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    nudge_lambda::app::init_tracing();
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    app.warm_up().await;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
        ses_events::handle(app, &event.payload, App::now()).await
    }))
    .await
}
