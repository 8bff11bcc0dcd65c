//! The flows' error ([`ServiceError`]) and the database context trait. The edge maps it once to
//! the contract (`crate::infra::api_error`).

use crate::domain::Invalid;

tokio::task_local! {
    /// The id of the request being handled, set by `promio_server::edge::http` around each request. Unset
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
