//! The single mapping of the flows' errors to the API contract's [`ApiError`]. Causes are logged
//! here with an id; the person sees a message and that id, never the cause. The id is the
//! request's (`x-request-id`), so that it also finds every other log line of that request.
//!
//! It is written down here, beside the flows' error, and not at the front doors that use it: Rust
//! lets a conversion between two types be declared only in the crate of one of them.

use crate::domain::Invalid;
use crate::infra::error::{REQUEST_ID, ServiceError};
use promio_api::ApiError;

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::Invalid {
            field: e.field,
            problem: e.problem,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(e) => e.into(),
            ServiceError::LoginFailed { retry_after_secs } => {
                ApiError::LoginFailed { retry_after_secs }
            }
            ServiceError::UseSso => ApiError::UseSso,
            ServiceError::Unauthenticated => ApiError::Unauthenticated,
            ServiceError::Forbidden => ApiError::Forbidden,
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::Gone => ApiError::LinkUnusable,
            ServiceError::SecondFactorFailed => ApiError::SecondFactorFailed,
            ServiceError::PasskeyFailed => ApiError::PasskeyFailed,
            ServiceError::PasskeyLimit { max } => ApiError::PasskeyLimit { max },
            ServiceError::TooManyAttempts { retry_after_secs } => {
                ApiError::TooManyAttempts { retry_after_secs }
            }

            ServiceError::LoginExpired => ApiError::LoginExpired,
            ServiceError::AccountLocked => ApiError::AccountLocked,
            ServiceError::SecondFactorLocked => ApiError::SecondFactorLocked,
            ServiceError::PasskeyRequired => ApiError::PasskeyRequired,
            ServiceError::ReauthRequired => ApiError::ReauthRequired,
            ServiceError::WrongPassword => ApiError::WrongPassword,
            ServiceError::SsoNotSetUp => ApiError::SsoNotSetUp,
            ServiceError::SsoProvider(detail) => ApiError::SsoProvider { detail },

            ServiceError::Busy => ApiError::Unavailable,
            ServiceError::Database(e) if is_unavailable(&e) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            ServiceError::DatabaseAt { what, source } if is_unavailable(&source) => {
                tracing::error!(error = %source, what, "database unavailable");
                ApiError::Unavailable
            }
            other => {
                let id = REQUEST_ID
                    .try_with(String::clone)
                    .unwrap_or_else(|_| uuid::Uuid::new_v4().simple().to_string()[..12].to_owned());
                tracing::error!(error_id = %id, error = ?anyhow_chain(&other), "internal error");
                ApiError::Internal { id }
            }
        }
    }
}

/// The database cannot be reached right now (as opposed to a query that is wrong).
fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
    )
}

fn anyhow_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod context_tests {
    use super::*;
    use crate::infra::error::{Context, ServiceResult};

    #[test]
    fn a_database_error_says_what_was_being_done() {
        let failed: ServiceResult<()> = Err(sqlx::Error::RowNotFound).context("reading a session");
        let chain = anyhow_chain(&failed.unwrap_err());
        assert!(
            chain.starts_with("database error while reading a session: "),
            "{chain}"
        );
        assert!(chain.contains("no rows"), "{chain}");
    }

    #[test]
    fn an_unreachable_database_is_unavailable_with_or_without_context() {
        let failed: ServiceResult<()> = Err(sqlx::Error::PoolTimedOut).context("reading a session");
        assert_eq!(ApiError::from(failed.unwrap_err()), ApiError::Unavailable);
        assert_eq!(
            ApiError::from(ServiceError::from(sqlx::Error::PoolTimedOut)),
            ApiError::Unavailable
        );
    }
}
