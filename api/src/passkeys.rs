//! The contract of passkeys (WebAuthn): registering them on the Security page (or when the client
//! requires a second factor), using one as the second factor, logging in with one alone, and
//! removing them. The ceremonies' options and the browser's answers travel as JSON text: the
//! server (webauthn-rs) makes and checks them, the browser only hands them to its WebAuthn API.

use serde::{Deserialize, Serialize};

/// One of the user's passkeys, as the Security page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    /// When it was added, in the reader's language.
    pub added: String,
    /// When it was last used to log in, if it was.
    pub last_used: Option<String>,
}

/// What the Security page shows about passkeys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyStatus {
    /// False where passkeys cannot be used: an SSO client, a client that turned them off, or a
    /// deployment whose `PUBLIC_URL` has no domain name.
    pub available: bool,
    pub passkeys: Vec<PasskeyInfo>,
    /// Adding and removing need the password again: the login was more than a few minutes ago.
    pub reauth_needed: bool,
}

/// The options of a ceremony, for `navigator.credentials` (JSON as webauthn-rs writes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyOptions {
    pub options: String,
}

/// The ways the login's second step accepts for the pending user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorMethods {
    /// A code from the authenticator app (or a recovery code).
    pub code: bool,
    /// One of the user's passkeys.
    pub passkey: bool,
}
