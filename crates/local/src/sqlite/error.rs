//! SQLite's errors in the backend-neutral terms of [`StoreError`].

use nudge_core::store::StoreError;
use rusqlite::ErrorCode;

/// `error` as a [`StoreError`] of the kind that says what the caller can do about it: a
/// database that is busy or locked past the busy timeout, or out of disk or memory, is
/// [`StoreError::Unavailable`] (a later call may succeed); a damaged file or a value of the
/// wrong type is [`StoreError::Corrupt`]; a row over SQLite's limits is
/// [`StoreError::TooLarge`]; anything else (a file that cannot be opened, a read-only file, a
/// constraint, a bug) is [`StoreError::Failed`].
pub(super) fn store_error(error: rusqlite::Error) -> StoreError {
    let message = error.to_string();
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed => StoreError::Unavailable {
                message,
                source: Some(Box::new(error)),
            },
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(message),
            ErrorCode::TooBig => StoreError::TooLarge {
                message,
                source: Some(Box::new(error)),
            },
            _ => StoreError::Failed {
                message,
                source: Some(Box::new(error)),
            },
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(message),
        _ => StoreError::Failed {
            message,
            source: Some(Box::new(error)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_busy_or_full_database_is_worth_a_retry_and_nothing_else_is() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_IOERR,
        ] {
            let err = store_error(failure(code));
            assert!(err.is_retryable(), "{code}: {err:?}");
            assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        }
        assert!(matches!(
            store_error(failure(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Corrupt(_)
        ));
        assert!(matches!(
            store_error(failure(rusqlite::ffi::SQLITE_TOOBIG)),
            StoreError::TooLarge { .. }
        ));
        for code in [
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_CONSTRAINT,
            rusqlite::ffi::SQLITE_MISUSE,
            rusqlite::ffi::SQLITE_CANTOPEN,
        ] {
            let err = store_error(failure(code));
            assert!(!err.is_retryable(), "{code}: {err:?}");
            assert!(matches!(err, StoreError::Failed { .. }), "{err:?}");
        }
        let err = store_error(rusqlite::Error::InvalidColumnType(
            0,
            "at".into(),
            rusqlite::types::Type::Text,
        ));
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
