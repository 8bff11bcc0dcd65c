//! What a round trip ends with ([`Finished`], and what the browser learns: [`SsoFailure`]) and
//! what the provider's verified answer says ([`PersonClaims`]): shared by `flow` and `provision`.

use crate::domain::audit::Outcome;
use crate::domain::{self};
use crate::idm::principal::CookieIntent;
use crate::store::clients::ClientRow;
use crate::store::users::UserRow;

/// What the browser learns of a failed round trip (the page explains each; the audit log has
/// the precise reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoFailure {
    /// The flow's cookie is missing, used or too old.
    Expired,
    /// The person cancelled at the identity provider.
    Cancelled,
    /// The identity provider confirmed someone who has no active account here.
    NotRegistered,
    /// Anything else: the provider's error, a token that failed verification, a wrong state.
    Failed,
}

impl SsoFailure {
    pub fn code(self) -> &'static str {
        match self {
            SsoFailure::Expired => "expired",
            SsoFailure::Cancelled => "cancelled",
            SsoFailure::NotRegistered => "not_registered",
            SsoFailure::Failed => "failed",
        }
    }
}

pub(super) enum Finished {
    /// With the new session's cookie.
    LoggedIn(CookieIntent),
    /// The callback brought no flow of ours (no cookie, or one for no open flow): anyone can send
    /// that, so it is only counted per address, and audited once per address and hour
    /// ([`record_without_flow`]).
    WithoutFlow(&'static str),
    Refused {
        failure: SsoFailure,
        client_id: Option<domain::ClientId>,
        user_id: Option<domain::UserId>,
        reason: String,
        /// `Failure` (the round trip failed) or `Refused` (the provider vouched for someone, and a
        /// rule here says no).
        outcome: Outcome,
    },
}

pub(super) fn refused(
    failure: SsoFailure,
    client: Option<&ClientRow>,
    reason: impl Into<String>,
) -> Finished {
    Finished::Refused {
        failure,
        client_id: client.map(|c| c.id.clone()),
        user_id: None,
        reason: reason.into(),
        outcome: Outcome::Failure,
    }
}

/// A verified answer that a rule refuses (unverified email, a foreign domain, another identity).
pub(super) fn denied(
    failure: SsoFailure,
    client: &ClientRow,
    user: Option<&UserRow>,
    reason: impl Into<String>,
) -> Finished {
    Finished::Refused {
        failure,
        client_id: Some(client.id.clone()),
        user_id: user.map(|u| u.id.clone()),
        reason: reason.into(),
        outcome: Outcome::Refused,
    }
}

/// What the verified answer of the identity provider says about the person.
pub(super) struct PersonClaims {
    /// The ID token's `sub`: who the person is at the provider, for good.
    pub(super) subject: String,
    pub(super) email: Option<String>,
    /// The ID token or userinfo said `email_verified: false`.
    pub(super) email_unverified: bool,
    pub(super) given_name: Option<String>,
    pub(super) family_name: Option<String>,
}
