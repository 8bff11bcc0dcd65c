//! The contract of the operator console (clients) and of the audit log.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSummary {
    pub company_id: String,
    pub name: String,
    pub registration_link_hours: u32,
    pub reset_link_hours: u32,
    /// Months after which deactivated users are deleted.
    pub deletion_months: u32,
    /// Months without a login after which users are deactivated; `None`: never.
    pub inactivity_months: Option<u32>,
    /// The client's users may use passkeys.
    pub passkeys: bool,
    pub require_2fa: bool,
    pub active: bool,
    /// The client logs in through its own identity provider.
    pub sso: bool,
    /// The identity provider's settings (empty when `sso` is off). The secret is never sent back.
    pub sso_issuer: String,
    pub sso_client_id: String,
    pub sso_secret_set: bool,
    pub sso_domains: Vec<String>,
    pub sso_email_claim: String,
    pub sso_jit: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPage {
    pub clients: Vec<ClientSummary>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// The fields of the New client and edit forms. Hours come as typed, so that a wrong value gets
/// its own message; the checkbox is present only when ticked.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClientForm {
    pub company_id: String,
    pub name: String,
    pub registration_link_hours: String,
    pub reset_link_hours: String,
    /// Empty leaves it as it is (6 for a new client).
    pub deletion_months: String,
    /// Empty: never.
    pub inactivity_months: String,
    /// `None` leaves it as it is (on for a new client).
    pub passkeys: Option<bool>,
    pub require_2fa: bool,
    /// Empty turns single sign-on off.
    pub sso_issuer: String,
    pub sso_client_id: String,
    /// Empty keeps the stored secret.
    pub sso_client_secret: String,
    /// Separated by commas, spaces or new lines.
    pub sso_domains: String,
    /// Empty means `email`.
    pub sso_email_claim: String,
    pub sso_jit: bool,
}

/// What "Test connection" found at an issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoCheck {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub signing_keys: u32,
    /// The redirect URI to register at the identity provider.
    pub redirect_uri: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, formatted for the reader (with the time zone).
    pub at: String,
    pub company_id: String,
    pub actor: String,
    pub subject: String,
    pub action: String,
    pub outcome: String,
    pub detail: String,
    pub ip: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    /// A user name of the client (empty: everyone).
    pub user: String,
    /// An action or its start, e.g. `login.` (empty: all).
    pub action: String,
    /// Dates as YYYY-MM-DD, in the deployment's time zone (empty: open).
    pub from: String,
    pub to: String,
    pub page: u32,
}

/// The fields of the client form as posted; the SSO fields may be left out (SSO stays off).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClientFormInput {
    pub company_id: String,
    pub name: String,
    pub registration_link_hours: String,
    pub reset_link_hours: String,
    #[serde(default)]
    pub deletion_months: String,
    #[serde(default)]
    pub inactivity_months: String,
    /// The checkbox (sent only when ticked) and a hidden field that says the form had it, so that
    /// a form without the checkbox leaves the setting as it is.
    pub passkeys: Option<String>,
    pub passkeys_shown: Option<String>,
    pub require_2fa: Option<String>,
    #[serde(default)]
    pub sso_issuer: String,
    #[serde(default)]
    pub sso_client_id: String,
    #[serde(default)]
    pub sso_client_secret: String,
    #[serde(default)]
    pub sso_domains: String,
    #[serde(default)]
    pub sso_email_claim: String,
    pub sso_jit: Option<String>,
}

impl From<ClientFormInput> for ClientForm {
    fn from(f: ClientFormInput) -> Self {
        ClientForm {
            company_id: f.company_id,
            name: f.name,
            registration_link_hours: f.registration_link_hours,
            reset_link_hours: f.reset_link_hours,
            deletion_months: f.deletion_months,
            inactivity_months: f.inactivity_months,
            passkeys: f.passkeys_shown.map(|_| f.passkeys.is_some()),
            require_2fa: f.require_2fa.is_some(),
            sso_issuer: f.sso_issuer,
            sso_client_id: f.sso_client_id,
            sso_client_secret: f.sso_client_secret,
            sso_domains: f.sso_domains,
            sso_email_claim: f.sso_email_claim,
            sso_jit: f.sso_jit.is_some(),
        }
    }
}

/// One of the user's active sessions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub started: String,
    pub last_seen: String,
    pub ip: String,
    pub device: String,
    /// The session of this browser.
    pub current: bool,
}

/// An application (OpenID Connect relying party) the user is logged in to through
/// promio.connect: it took part in one of their sessions, or holds a refresh token of theirs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLogin {
    pub name: String,
    /// Since when, formatted in the user's language and time zone.
    pub since: String,
}
