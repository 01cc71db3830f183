//! DynamoDB's errors mapped onto the backend-neutral `StoreError`, and a cancelled commit's
//! reasons onto its outcome.
//!
//! | DynamoDB / SDK | `StoreError` |
//! | --- | --- |
//! | `ProvisionedThroughputExceededException`, `ThrottlingException`, `RequestLimitExceeded`, HTTP 429 | `Throttled` |
//! | `InternalServerError`, `ServiceUnavailable`, `TransactionInProgressException`, `TransactionConflictException` (a single write meeting a transaction), `IdempotentParameterMismatchException` (a commit token reused with another request), HTTP 5xx, timeouts, connection and dispatch failures, an unreadable answer | `Unavailable` |
//! | `ItemCollectionSizeLimitExceededException`, a `ValidationException` about a size | `TooLarge` |
//! | anything else (`ResourceNotFoundException`: no table; `AccessDenied`; a bad request) | `Failed` |
//!
//! The service's message is not copied into the error (a validation message can quote a key,
//! and keys hold customer ids): the error names the operation, DynamoDB's code, the HTTP status
//! and the request id.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::RequestId;
use nudge_core::store::{BackendError, StoreError};

/// How an error is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Throttled,
    Unavailable,
    TooLarge,
    Failed,
}

/// What a conditional write (`UpdateItem`, `DeleteItem`, ...) answered, when it did not fail.
#[derive(Debug)]
pub(super) enum Written<T, C> {
    /// The condition held and the write was applied: the operation's output.
    Applied(T),
    /// The condition failed: what `condition_failed` read from DynamoDB's error.
    ConditionFailed(C),
}

/// The answer of conditional write `op`: applied, its condition failed (when
/// `condition_failed` reads the service error as `ConditionalCheckFailedException`, returning
/// what the caller needs of it), or another error mapped by [`map_sdk_error`].
pub(super) fn conditional_write<T, E, C>(
    op: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
    condition_failed: impl FnOnce(&E) -> Option<C>,
) -> Result<Written<T, C>, StoreError>
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Written::Applied(output)),
        Err(err) => match err.as_service_error().and_then(condition_failed) {
            Some(failed) => Ok(Written::ConditionFailed(failed)),
            None => Err(map_sdk_error(op, err)),
        },
    }
}

/// As [`conditional_write`] for a caller that needs only whether the write was applied
/// (`true`) or its condition failed (`false`); `is_condition_failed` tells the latter.
pub(super) fn applied<T, E>(
    op: &str,
    result: Result<T, SdkError<E, HttpResponse>>,
    is_condition_failed: impl FnOnce(&E) -> bool,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    let written = conditional_write(op, result, |e| is_condition_failed(e).then_some(()))?;
    Ok(matches!(written, Written::Applied(_)))
}

/// Maps what operation `op` returned onto a `StoreError`.
pub(super) fn map_sdk_error<E>(op: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + RequestId + std::error::Error + Send + Sync + 'static,
{
    let (class, message) = match &err {
        SdkError::ServiceError(context) => {
            let service = context.err();
            let code = service.code().unwrap_or("unknown");
            let status = context.raw().status().as_u16();
            let class = classify(Some(code), service.message(), status);
            let request_id = service.request_id().unwrap_or("none");
            return build(
                class,
                format!("DynamoDB {op}: {code} (HTTP {status}, request id {request_id})"),
                None,
            );
        }
        SdkError::TimeoutError(_) => (Class::Unavailable, "did not answer in time"),
        SdkError::DispatchFailure(_) => (Class::Unavailable, "could not be reached"),
        SdkError::ResponseError(_) => (Class::Unavailable, "sent an unreadable answer"),
        SdkError::ConstructionFailure(_) => (
            Class::Failed,
            "the request could not be built or signed (credentials?)",
        ),
        _ => (Class::Unavailable, "failed"),
    };
    let source: Option<BackendError> = err.into_source().ok();
    build(class, format!("DynamoDB {op}: {message}"), source)
}

/// The class of an error by its code, its message (only to tell a size error among
/// validation errors) and its HTTP status.
pub(super) fn classify(code: Option<&str>, message: Option<&str>, status: u16) -> Class {
    let code = code.unwrap_or("");
    match code {
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "ThrottlingError"
        | "ProvisionedThroughputExceeded" => Class::Throttled,
        c if c.starts_with("Throttl") => Class::Throttled,
        "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "TransactionInProgressException"
        | "TransactionConflictException"
        | "RequestTimeout"
        | "RequestTimeoutException" => Class::Unavailable,
        // The same commit token with another request within DynamoDB's 10 minutes: only an
        // identical commit re-run across the hour its TTL is counted from makes one, and the
        // caller's next attempt (a reload, a later token) passes.
        "IdempotentParameterMismatchException" | "IdempotentParameterMismatch" => {
            Class::Unavailable
        }
        "ItemCollectionSizeLimitExceededException" | "ItemCollectionSizeLimitExceeded" => {
            Class::TooLarge
        }
        "ValidationException" | "ValidationError" if is_size_message(message) => Class::TooLarge,
        _ if status == 429 => Class::Throttled,
        _ if status >= 500 => Class::Unavailable,
        _ => Class::Failed,
    }
}

/// Whether a validation message is about a size limit ("Item size has exceeded the maximum
/// allowed size", "Item size to update has exceeded ...", "Transaction request cannot be
/// larger than 4 MB").
fn is_size_message(message: Option<&str>) -> bool {
    let m = message.unwrap_or("").to_ascii_lowercase();
    m.contains("item size") || m.contains("larger than") || m.contains("maximum allowed size")
}

/// The `StoreError` of `class`.
pub(super) fn build(class: Class, message: String, source: Option<BackendError>) -> StoreError {
    match class {
        Class::Throttled => StoreError::Throttled { message, source },
        Class::Unavailable => StoreError::Unavailable { message, source },
        Class::TooLarge => StoreError::TooLarge { message, source },
        Class::Failed => StoreError::Failed { message, source },
    }
}

/// Where a commit's items stand in its transaction: the customer first, then the event (if
/// any), then the sends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    /// The index of the processed-event item, if the commit has one.
    pub(super) event: Option<usize>,
    /// The index of the first send item.
    pub(super) first_send: usize,
}

/// What a cancelled commit transaction means.
#[derive(Debug)]
pub(super) enum Cancelled {
    /// The event's item exists: the event was processed.
    AlreadyProcessed,
    /// The customer is not at the expected version, or another transaction touched an item.
    Conflict,
    /// Only send items failed their condition: those keys are already logged (their positions
    /// among the commit's sends); the commit is to be sent again without them.
    SendsLogged(Vec<usize>),
    /// A failure.
    Error(StoreError),
}

/// What the cancellation reasons `(code, message)` of a commit laid out as `layout` mean: the
/// event's `ConditionalCheckFailed` wins (a duplicate is never retried), then the customer's
/// (a `Conflict`), then a `TransactionConflict` anywhere (a `Conflict`: reload and retry),
/// throttling and size errors, and last a send's (already logged).
pub(super) fn classify_cancellation(
    reasons: &[(Option<&str>, Option<&str>)],
    layout: Layout,
) -> Cancelled {
    let failed = |i: usize| {
        reasons
            .get(i)
            .is_some_and(|r| r.0 == Some("ConditionalCheckFailed"))
    };
    if layout.event.is_some_and(failed) {
        return Cancelled::AlreadyProcessed;
    }
    if failed(0) || reasons.iter().any(|r| r.0 == Some("TransactionConflict")) {
        return Cancelled::Conflict;
    }
    let other = reasons
        .iter()
        .find(|r| !matches!(r.0, None | Some("None") | Some("ConditionalCheckFailed")));
    if let Some((code, message)) = other {
        let class = match classify(*code, *message, 400) {
            Class::Failed if code.is_some_and(|c| c.contains("Throughput")) => Class::Throttled,
            class => class,
        };
        let code = code.unwrap_or("unknown");
        return Cancelled::Error(build(
            class,
            format!("DynamoDB TransactWriteItems cancelled: {code}"),
            None,
        ));
    }
    let logged: Vec<usize> = (layout.first_send..reasons.len())
        .filter(|&i| failed(i))
        .map(|i| i - layout.first_send)
        .collect();
    if logged.is_empty() {
        return Cancelled::Error(build(
            Class::Failed,
            "DynamoDB TransactWriteItems cancelled without a reason".to_owned(),
            None,
        ));
    }
    Cancelled::SendsLogged(logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CCF: (Option<&str>, Option<&str>) = (Some("ConditionalCheckFailed"), None);
    const OK: (Option<&str>, Option<&str>) = (Some("None"), None);
    const CONFLICT: (Option<&str>, Option<&str>) = (Some("TransactionConflict"), None);
    const WITH_EVENT: Layout = Layout {
        event: Some(1),
        first_send: 2,
    };
    const NO_EVENT: Layout = Layout {
        event: None,
        first_send: 1,
    };

    #[test]
    fn the_events_failed_condition_wins() {
        for reasons in [[OK, CCF, OK], [CCF, CCF, OK], [CONFLICT, CCF, CCF]] {
            assert!(matches!(
                classify_cancellation(&reasons, WITH_EVENT),
                Cancelled::AlreadyProcessed
            ));
        }
    }

    #[test]
    fn the_customers_failed_condition_and_transaction_conflicts_are_conflicts() {
        for reasons in [
            [CCF, OK, OK],
            [CCF, OK, CCF],
            [OK, CONFLICT, OK],
            [OK, OK, CONFLICT],
        ] {
            assert!(
                matches!(
                    classify_cancellation(&reasons, WITH_EVENT),
                    Cancelled::Conflict
                ),
                "{reasons:?}"
            );
        }
    }

    #[test]
    fn failed_sends_alone_are_logged_keys() {
        let reasons = [OK, CCF, OK, CCF];
        match classify_cancellation(&reasons, NO_EVENT) {
            Cancelled::SendsLogged(keys) => assert_eq!(keys, [0, 2]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn throttling_and_size_reasons_are_errors_of_their_kind() {
        let cases = [
            ((Some("ThrottlingError"), None), "Throttled"),
            ((Some("ProvisionedThroughputExceeded"), None), "Throttled"),
            ((Some("ItemCollectionSizeLimitExceeded"), None), "TooLarge"),
            (
                (
                    Some("ValidationError"),
                    Some("Item size has exceeded the maximum allowed size"),
                ),
                "TooLarge",
            ),
            ((Some("ValidationError"), Some("bad expression")), "Failed"),
        ];
        for (reason, kind) in cases {
            match classify_cancellation(&[OK, reason, CCF], NO_EVENT) {
                Cancelled::Error(e) => assert!(format!("{e:?}").starts_with(kind), "{e:?}"),
                other => panic!("{reason:?}: {other:?}"),
            }
        }
        assert!(matches!(
            classify_cancellation(&[OK, OK], NO_EVENT),
            Cancelled::Error(StoreError::Failed { .. })
        ));
    }

    #[test]
    fn codes_and_statuses_classify() {
        assert_eq!(
            classify(Some("ProvisionedThroughputExceededException"), None, 400),
            Class::Throttled
        );
        assert_eq!(
            classify(Some("ThrottlingException"), None, 400),
            Class::Throttled
        );
        assert_eq!(
            classify(Some("RequestLimitExceeded"), None, 400),
            Class::Throttled
        );
        assert_eq!(
            classify(Some("InternalServerError"), None, 500),
            Class::Unavailable
        );
        assert_eq!(classify(Some("Whatever"), None, 503), Class::Unavailable);
        assert_eq!(
            classify(Some("IdempotentParameterMismatchException"), None, 400),
            Class::Unavailable
        );
        assert_eq!(classify(Some("Whatever"), None, 429), Class::Throttled);
        assert_eq!(
            classify(
                Some("ValidationException"),
                Some("Item size has exceeded the maximum allowed size"),
                400
            ),
            Class::TooLarge
        );
        assert_eq!(
            classify(
                Some("ValidationException"),
                Some("Invalid KeyConditionExpression"),
                400
            ),
            Class::Failed
        );
        assert_eq!(
            classify(Some("ResourceNotFoundException"), None, 400),
            Class::Failed
        );
    }
}
