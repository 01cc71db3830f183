//! The `unsubscribe` Lambda function behind a function URL: wiring only (what it does is
//! `nudge_lambda::unsubscribe`).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use nudge_lambda::app::Links;
use nudge_lambda::{App, unsubscribe};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = nudge_lambda::app::start(Links::NotMade).await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            Ok::<LambdaFunctionUrlResponse, Error>(
                unsubscribe::handle(app, &event.payload, App::now()).await,
            )
        },
    ))
    .await
}
