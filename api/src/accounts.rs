//! The contract of accounts: user administration, links in mails, and forgotten passwords.

use super::Role;
use serde::{Deserialize, Serialize};

/// Where an account stands: in the console, in the store, in every rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    /// Created; the password has not been set yet.
    Invited,
    Active,
    Deactivated,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Deactivated => "deactivated",
        }
    }

    /// A status named in a filter; `None` for anything else.
    pub fn from_filter(s: &str) -> Option<UserStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "invited" => Some(UserStatus::Invited),
            "active" => Some(UserStatus::Active),
            "deactivated" => Some(UserStatus::Deactivated),
            _ => None,
        }
    }
}

/// Where a user's registration stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Invitation {
    /// A registration link is out and valid until this moment (formatted for the reader).
    Pending { until: String },
    /// The last registration link expired unused.
    Expired,
    /// The user set a password.
    Accepted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: Role,
    pub status: UserStatus,
    pub invitation: Invitation,
    /// Two-factor authentication is on.
    pub two_factor: bool,
    /// The user's client logs in with single sign-on (the account can be bound to an identity at
    /// its identity provider).
    pub sso: bool,
    /// For a deactivated user: the day they will be deleted, in the reader's language.
    pub deletion_date: Option<String>,
    /// How many passkeys the user has.
    pub passkeys: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// The fields of the New user form (and of editing, where the user name stays).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserForm {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub username: String,
    pub role: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserQuery {
    /// Part of a name, user name or email address.
    pub search: String,
    /// `invited`, `active`, `deactivated`, or empty for all.
    pub status: String,
    /// From 1.
    pub page: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkKind {
    Registration,
    PasswordReset,
}

impl LinkKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Registration => "registration",
            LinkKind::PasswordReset => "password_reset",
        }
    }
}

/// What a link from a mail is good for now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    Valid {
        kind: LinkKind,
        company_id: String,
        username: String,
        until: String,
        /// The client requires 2FA (so 8 characters suffice for the password).
        second_factor_required: bool,
        /// A reset of a user with 2FA on: the form also asks for a two-factor or recovery code.
        code_required: bool,
        /// A reset of a user with a passkey: it can confirm the reset (**Use a passkey**); without
        /// `code_required` it is the only way.
        #[serde(default)]
        passkey: bool,
    },

    Expired {
        kind: LinkKind,
    },
    Used {
        kind: LinkKind,
    },
    Superseded {
        kind: LinkKind,
    },
    Unknown,
}

/// An account of the client with failed logins in a row: of the password, or of the second
/// factor (`second_factor`, its own counter; one entry each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottledAccount {
    pub username: String,
    pub failures: u32,
    /// Seconds until the next attempt is accepted (0: now).
    pub wait_secs: u64,
    /// The failures are of the second factor (after the password), not of the password.
    #[serde(default)]
    pub second_factor: bool,
}
