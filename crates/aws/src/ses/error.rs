//! SES v2 `SendEmail` errors mapped onto the backend-neutral `MailError` ([`map_send_error`]).

use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::RequestId;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use nudge_core::mail::MailError;

/// How an error is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Throttled,
    Unavailable,
    MaybeSent,
    Rejected,
}

/// Maps what `SendEmail` returned onto a [`MailError`] whose message names no recipient.
///
/// SES has no idempotency token: an error after the request left may mean SES took the email,
/// so the mapping tells "certainly not taken" (retrying cannot send it twice) from "may have been
/// taken" (`MaybeSent`: retried for transactional mail, settled unknown for marketing mail):
///
/// | SES / SDK | `MailError` | why |
/// | --- | --- | --- |
/// | `TooManyRequestsException`, `LimitExceededException`, an unmodelled `Throttling*` code or HTTP 429 | `Throttled` (retryable) | the sending rate or quota frees up with time; SES refused the request |
/// | `SendingPausedException` | `Unavailable` (retryable) | a pause (of the account or the configuration set) is lifted by resuming it; SES refused the request |
/// | a connection that could not be made (DNS, refused), a request the SDK could not sign or build (credentials), `ExpiredToken`/`RequestExpired` | `Unavailable` (retryable) | the request never reached SES, or SES refused it unread |
/// | HTTP 5xx (`InternalFailure`, `ServiceUnavailable`, ...), a timeout, a connection broken after the request was sent, an unreadable answer | `MaybeSent` (retryable, may duplicate) | the request reached SES, which may have queued the email before failing to answer |
/// | `MessageRejected`, `MailFromDomainNotVerifiedException`, `AccountSuspendedException`, `BadRequestException`, `NotFoundException` (no such configuration set), any other 4xx | `Rejected` (final) | SES refuses this email as sent (its content, an unverified sender or MAIL FROM domain, a suspended account, a wrong configuration set): the same request fails the same way until someone changes the setup, and mail sent days later is worse than mail reported failed |
///
/// The service's own message is never copied: SES's messages quote addresses ("Email address is
/// not verified ... a@b.com"), and these errors are logged. The error names SES's code, the HTTP
/// status and the request id (what AWS support asks for) instead.
pub fn map_send_error(err: SdkError<SendEmailError>) -> MailError {
    let (class, message) = match &err {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let service = context.err();
            let (class, code) = classify(service, status);
            let request_id = service.request_id().unwrap_or("none");
            // Service errors carry SES's message, which may quote an address: no source.
            return build(
                class,
                format!("SES SendEmail: {code} (HTTP {status}, request id {request_id})"),
                None,
            );
        }
        SdkError::TimeoutError(_) => (Class::MaybeSent, "SES did not answer in time"),
        SdkError::DispatchFailure(failure) if never_sent(failure) => {
            (Class::Unavailable, "SES could not be reached")
        }
        SdkError::DispatchFailure(_) => (
            Class::MaybeSent,
            "the connection to SES failed after the request was sent",
        ),
        SdkError::ResponseError(_) => (Class::MaybeSent, "SES's answer could not be read"),
        SdkError::ConstructionFailure(_) => (
            Class::Unavailable,
            "the SES request could not be built or signed (credentials?)",
        ),
        _ => (Class::Unavailable, "SES SendEmail failed"),
    };
    // Transport and SDK errors name connections and credentials providers, not recipients.
    build(class, message.to_owned(), err.into_source().ok())
}

/// The class of a service error and the code it is named by.
fn classify(err: &SendEmailError, status: u16) -> (Class, &str) {
    use SendEmailError as E;
    let (class, name) = match err {
        E::TooManyRequestsException(_) => (Class::Throttled, "TooManyRequestsException"),
        E::LimitExceededException(_) => (Class::Throttled, "LimitExceededException"),
        E::SendingPausedException(_) => (Class::Unavailable, "SendingPausedException"),
        E::MessageRejected(_) => (Class::Rejected, "MessageRejected"),
        E::MailFromDomainNotVerifiedException(_) => {
            (Class::Rejected, "MailFromDomainNotVerifiedException")
        }
        E::AccountSuspendedException(_) => (Class::Rejected, "AccountSuspendedException"),
        E::BadRequestException(_) => (Class::Rejected, "BadRequestException"),
        E::NotFoundException(_) => (Class::Rejected, "NotFoundException"),
        _ => (unmodelled(err.code(), status), "unknown"),
    };
    (class, err.code().unwrap_or(name))
}

/// Whether a dispatch failure happened before the request could reach SES: the connection was
/// never made (a DNS failure, a refused connection, the connector's own connect error). Any
/// other transport failure (a timeout, a reset) may have come after SES read the request.
fn never_sent(failure: &aws_smithy_runtime_api::client::result::DispatchFailure) -> bool {
    let Some(connector) = failure.as_connector_error() else {
        return false;
    };
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(connector);
    while let Some(err) = next {
        if let Some(e) = err.downcast_ref::<hyper_util::client::legacy::Error>()
            && e.is_connect()
        {
            return true;
        }
        if let Some(e) = err.downcast_ref::<std::io::Error>()
            && matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            )
        {
            return true;
        }
        next = err.source();
    }
    false
}

/// An error SES's model does not list, by its code and HTTP status.
fn unmodelled(code: Option<&str>, status: u16) -> Class {
    match code.unwrap_or("") {
        c if c.starts_with("Throttl") || c == "RequestLimitExceeded" => Class::Throttled,
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => Class::Unavailable,
        "RequestTimeout" | "RequestTimeoutException" | "ServiceUnavailable" | "InternalFailure" => {
            Class::MaybeSent
        }
        _ if status == 429 => Class::Throttled,
        _ if !(400..500).contains(&status) => Class::MaybeSent,
        _ => Class::Rejected,
    }
}

fn build(
    class: Class,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> MailError {
    match class {
        Class::Throttled => MailError::Throttled { message, source },
        Class::Unavailable => MailError::Unavailable { message, source },
        Class::MaybeSent => MailError::MaybeSent { message, source },
        Class::Rejected => MailError::Rejected { message, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_sesv2::types::error::{
        AccountSuspendedException, BadRequestException, LimitExceededException,
        MailFromDomainNotVerifiedException, MessageRejected, NotFoundException,
        SendingPausedException, TooManyRequestsException,
    };
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    /// What SES says when the sender is not verified: it quotes addresses.
    const SES_MESSAGE: &str = "Email address is not verified. The following identities failed \
                               the check in region US-EAST-1: ada@example.com, Ada Lovelace";

    fn meta(code: &str) -> ErrorMetadata {
        ErrorMetadata::builder()
            .code(code)
            .message(SES_MESSAGE)
            .build()
    }

    fn service(err: SendEmailError, status: u16) -> SdkError<SendEmailError> {
        let raw = Response::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    /// Every modelled error, with its status as SES sends it.
    fn modelled() -> Vec<(SendEmailError, u16)> {
        use SendEmailError as E;
        vec![
            (
                E::TooManyRequestsException(
                    TooManyRequestsException::builder()
                        .message(SES_MESSAGE)
                        .meta(meta("TooManyRequestsException"))
                        .build(),
                ),
                429,
            ),
            (
                E::LimitExceededException(
                    LimitExceededException::builder()
                        .message(SES_MESSAGE)
                        .build(),
                ),
                400,
            ),
            (
                E::SendingPausedException(
                    SendingPausedException::builder()
                        .message(SES_MESSAGE)
                        .build(),
                ),
                400,
            ),
            (
                E::MessageRejected(
                    MessageRejected::builder()
                        .message(SES_MESSAGE)
                        .meta(meta("MessageRejected"))
                        .build(),
                ),
                400,
            ),
            (
                E::MailFromDomainNotVerifiedException(
                    MailFromDomainNotVerifiedException::builder()
                        .message(SES_MESSAGE)
                        .build(),
                ),
                400,
            ),
            (
                E::AccountSuspendedException(
                    AccountSuspendedException::builder()
                        .message(SES_MESSAGE)
                        .build(),
                ),
                400,
            ),
            (
                E::BadRequestException(BadRequestException::builder().message(SES_MESSAGE).build()),
                400,
            ),
            (
                E::NotFoundException(NotFoundException::builder().message(SES_MESSAGE).build()),
                404,
            ),
        ]
    }

    fn kind(err: &MailError) -> &'static str {
        match err {
            MailError::Throttled { .. } => "throttled",
            MailError::Unavailable { .. } => "unavailable",
            MailError::Rejected { .. } => "rejected",
            MailError::MaybeSent { .. } => "maybe_sent",
            _ => "other",
        }
    }

    /// The error's whole chain, as a log line with `{:#}`-style sources would show it.
    fn chain(err: &MailError) -> String {
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text.push_str(&format!(": {s} / {s:?}"));
            source = s.source();
        }
        text
    }

    #[test]
    fn modelled_errors_map_to_throttled_unavailable_or_final_rejected() {
        let got: Vec<_> = modelled()
            .into_iter()
            .map(|(err, status)| {
                let mapped = map_send_error(service(err, status));
                (kind(&mapped), mapped.is_retryable(), mapped.to_string())
            })
            .collect();
        let want = [
            ("throttled", true, "TooManyRequestsException (HTTP 429"),
            ("throttled", true, "LimitExceededException (HTTP 400"),
            ("unavailable", true, "SendingPausedException (HTTP 400"),
            ("rejected", false, "MessageRejected (HTTP 400"),
            (
                "rejected",
                false,
                "MailFromDomainNotVerifiedException (HTTP 400",
            ),
            ("rejected", false, "AccountSuspendedException (HTTP 400"),
            ("rejected", false, "BadRequestException (HTTP 400"),
            ("rejected", false, "NotFoundException (HTTP 404"),
        ];
        assert_eq!(got.len(), want.len());
        for ((kind, retryable, text), (want_kind, want_retryable, want_text)) in
            got.iter().zip(want)
        {
            assert_eq!((*kind, *retryable), (want_kind, want_retryable), "{text}");
            assert!(text.contains(want_text), "{text} should name {want_text}");
        }
    }

    #[test]
    fn unmodelled_errors_map_by_code_then_status() {
        let cases = [
            ("Throttling", 400, "throttled"),
            ("ThrottlingException", 400, "throttled"),
            ("SomethingNew", 429, "throttled"),
            ("InternalFailure", 500, "maybe_sent"),
            ("ServiceUnavailable", 503, "maybe_sent"),
            ("SomethingNew", 503, "maybe_sent"),
            ("ExpiredToken", 403, "unavailable"),
            ("AccessDeniedException", 403, "rejected"),
            ("SomethingNew", 400, "rejected"),
        ];
        for (code, status, want) in cases {
            let mapped = map_send_error(service(SendEmailError::generic(meta(code)), status));
            assert_eq!(kind(&mapped), want, "{code} {status}: {mapped}");
            assert!(mapped.to_string().contains(code), "{mapped}");
        }
    }

    #[test]
    fn transport_failures_are_retryable_and_those_after_sending_may_have_sent() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let reset = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let cases: Vec<(SdkError<SendEmailError>, &str, &str)> = vec![
            // Never reached SES: retrying cannot send it twice.
            (
                SdkError::dispatch_failure(ConnectorError::io(Box::new(refused()))),
                "unavailable",
                "refused",
            ),
            (
                SdkError::construction_failure(refused()),
                "unavailable",
                "refused",
            ),
            // The request may have reached SES.
            (SdkError::timeout_error(reset()), "maybe_sent", "reset"),
            (
                SdkError::dispatch_failure(ConnectorError::io(Box::new(reset()))),
                "maybe_sent",
                "reset",
            ),
            (
                SdkError::dispatch_failure(ConnectorError::timeout(Box::new(reset()))),
                "maybe_sent",
                "reset",
            ),
            (
                SdkError::response_error(
                    reset(),
                    Response::new(StatusCode::try_from(200).expect("200"), SdkBody::empty()),
                ),
                "maybe_sent",
                "reset",
            ),
        ];
        for (err, want, cause) in cases {
            let mapped = map_send_error(err);
            assert_eq!(kind(&mapped), want, "{mapped}");
            assert!(mapped.is_retryable());
            assert_eq!(
                mapped.may_have_been_sent(),
                want == "maybe_sent",
                "{mapped}"
            );
            assert!(chain(&mapped).contains(cause), "the cause is kept");
        }
    }

    #[test]
    fn no_error_shows_the_address_or_name_ses_quoted() {
        let mut errors: Vec<_> = modelled()
            .into_iter()
            .map(|(err, status)| map_send_error(service(err, status)))
            .collect();
        errors.push(map_send_error(service(
            SendEmailError::generic(meta("SomethingNew")),
            400,
        )));
        for err in errors {
            let text = chain(&err);
            for secret in ["ada@example.com", "Ada", "Lovelace", "not verified"] {
                assert!(!text.contains(secret), "{text} shows {secret}");
            }
        }
    }
}
