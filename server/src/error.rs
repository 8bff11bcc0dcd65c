//! The service layer's error, and its single mapping to the API contract's [`ApiError`]. Causes
//! are logged here with an id; the person sees a message and that id, never the cause. The id is
//! the request's (`x-request-id`), so that it also finds every other log line of that request.

use crate::domain::Invalid;
use promio_app::api::ApiError;

tokio::task_local! {
    /// The id of the request being handled, set by `crate::http` around each request. Unset
    /// outside a request (and in work a request spawned), where an internal error gets an id of
    /// its own.
    pub static REQUEST_ID: String;
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("login failed")]
    LoginFailed { retry_after_secs: Option<u64> },
    #[error("the client uses single sign-on")]
    UseSso,
    #[error("not authenticated")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    /// A link that is used, expired or superseded.
    #[error("the link is no longer valid")]
    Gone,
    #[error("second factor failed")]
    SecondFactorFailed,
    /// A passkey could not be used (refused, unknown, expired or replayed ceremony).
    #[error("passkey failed")]
    PasskeyFailed,
    /// A user has as many passkeys as one may have.
    #[error("too many passkeys")]
    PasskeyLimit { max: u32 },
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("the pending login expired")]
    LoginExpired,
    /// The account's password is not checked after too many failures in a row.
    #[error("account locked after too many failed logins")]
    AccountLocked,
    /// The user's second factor is not checked after too many failures in a row.
    #[error("second factor locked after too many failures")]
    SecondFactorLocked,
    /// A reset of a user whose only second factor is a passkey, confirmed without it.
    #[error("a passkey is needed to confirm this")]
    PasskeyRequired,
    /// The action needs the password again (the login is older than a few minutes).
    #[error("the password is needed again")]
    ReauthRequired,
    /// The password given again to confirm an action is wrong.
    #[error("wrong password")]
    WrongPassword,
    #[error("no single sign-on for this email domain")]
    SsoNotSetUp,
    /// An identity provider's settings could not be used (the text says what failed).
    #[error("identity provider: {0}")]
    SsoProvider(String),
    #[error("the password hashing pool is saturated")]
    Busy,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A database error, with what was being done (see [`Context`]).
    #[error("database error while {what}")]
    DatabaseAt {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Says what a database call was doing when it failed, so the log's cause chain names it
/// (`database error while reading the login's rows: …`).
pub trait Context<T> {
    fn context(self, what: &'static str) -> ServiceResult<T>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, what: &'static str) -> ServiceResult<T> {
        self.map_err(|source| ServiceError::DatabaseAt { what, source })
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
