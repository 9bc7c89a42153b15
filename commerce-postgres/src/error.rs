//! sqlx errors classified into the core's error kinds.

use commerce_core::{BackendError, BackendErrorKind, Error};

/// Classifies a sqlx error, keeping it as the source: a unique or exclusion
/// violation is a conflict (other integrity violations are bugs: other); a
/// serialization failure or a deadlock is retryable; a bounded wait that
/// ran out (no connection within the acquire timeout, `lock_timeout`,
/// `statement_timeout`, `idle_in_transaction_session_timeout`) is busy; an
/// unreachable server is unavailable.
pub(crate) fn db(error: sqlx::Error) -> Error {
    let kind = match &error {
        sqlx::Error::Database(e) => match e.code().as_deref() {
            Some("40001" | "40P01") => BackendErrorKind::Retryable,
            // lock_not_available, query_canceled (the statement timeout),
            // idle_in_transaction_session_timeout.
            Some("55P03" | "57014" | "25P03") => BackendErrorKind::Busy,
            Some("23505" | "23P01") => BackendErrorKind::Conflict,
            Some(code)
                if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") =>
            {
                BackendErrorKind::Unavailable
            }
            _ => BackendErrorKind::Other,
        },
        sqlx::Error::PoolTimedOut => BackendErrorKind::Busy,
        sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            BackendErrorKind::Unavailable
        }
        _ => BackendErrorKind::Other,
    };
    let message = error.to_string();
    BackendError::new(kind, message).with_source(error).into()
}

/// Whether `error` is the unique violation of `constraint`.
pub(crate) fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            e.code().as_deref() == Some("23505") && e.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// A document or value read from the database that does not decode.
pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> Error {
    BackendError::new(
        BackendErrorKind::Other,
        format!("cannot decode {what}: {error}"),
    )
    .into()
}
