//! The `shopify-webhook` Lambda function (behind a function URL): wiring only (what it does is
//! `nudge_lambda::shopify::webhook`).

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use nudge_lambda::App;
use nudge_lambda::app::Links;
use nudge_lambda::shopify::{Secrets, handle_webhook};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = nudge_lambda::app::start(Links::Made).await?;
    // Read from SSM at the first delivery, then cached.
    let secrets: &'static Secrets = Box::leak(Box::new(Secrets::new(app)));
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            Ok::<_, Error>(handle_webhook(app, secrets, event.payload, App::now()).await)
        },
    ))
    .await
}
