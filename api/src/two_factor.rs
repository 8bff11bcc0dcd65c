//! The contract of two-factor authentication: the login's second step, activation, deactivation,
//! recovery codes.

use serde::{Deserialize, Serialize};

/// What the Security page shows about the user's second factor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    /// False for users of SSO clients: their identity provider handles factors.
    pub available: bool,
    /// The client requires 2FA, so it cannot be turned off.
    pub required: bool,
    pub recovery_codes_left: u32,
    /// Activation and new recovery codes need the password again: the login was more than a few
    /// minutes ago.
    pub reauth_needed: bool,
    /// Passkeys can serve as the second factor here (the client allows them, the server has a
    /// domain name).
    pub passkeys: bool,
    /// The user logs in with a password of ours, which the Security page offers to change.
    pub password: bool,
}

/// A secret being activated: shown once, as a QR code and as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorEnrolment {
    /// Base32, as authenticator apps take it for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, as an SVG data URI.
    pub qr_code: String,
}
