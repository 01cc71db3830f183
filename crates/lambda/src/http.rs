//! Function URL requests and responses (the Lambda payload format 2.0), shared by the
//! functions behind a URL (`shopify-webhook`, `unsubscribe`).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A request body that is not what its encoding claims.
#[derive(Debug, thiserror::Error)]
#[error("the request body is marked base64 but is not")]
pub struct BodyError;

/// The request's body as bytes (function URLs base64-encode bodies that are not text).
pub fn body(request: &LambdaFunctionUrlRequest) -> Result<Vec<u8>, BodyError> {
    let body = request.body.as_deref().unwrap_or("");
    if request.is_base64_encoded {
        STANDARD.decode(body).map_err(|_| BodyError)
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// The request header `name` (lower-case: function URLs lower-case them), if present and text.
pub fn header<'r>(request: &'r LambdaFunctionUrlRequest, name: &str) -> Option<&'r str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A response of `status` with `content_type` and `body`.
pub fn response(
    status: i64,
    content_type: &str,
    body: impl Into<String>,
) -> LambdaFunctionUrlResponse {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_str(content_type).expect("a valid content type"),
    );
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(body.into());
    response.is_base64_encoded = false;
    response
}
