//! The contract of two-factor authentication: the login's second step, activation, deactivation,
//! recovery codes.

use super::{ApiError, LoginOutcome};
use leptos::prelude::*;
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

#[server(prefix = "/api", endpoint = "2fa/login")]
pub async fn two_factor_login(code: String) -> Result<LoginOutcome, ApiError> {
    crate::ssr::call(|b, req| async move { b.two_factor.login(&req, code).await }).await
}

#[server(prefix = "/api", endpoint = "2fa/status")]
pub async fn get_two_factor_status() -> Result<TwoFactorStatus, ApiError> {
    crate::ssr::call(|b, req| async move { b.two_factor.status(&req).await }).await
}

#[server(prefix = "/api", endpoint = "2fa/start")]
pub async fn start_two_factor() -> Result<TwoFactorEnrolment, ApiError> {
    crate::ssr::call(|b, req| async move { b.two_factor.start(&req).await }).await
}

/// Activates with a first code; returns the recovery codes (shown once). `password` is needed
/// when the login was more than a few minutes ago.
#[server(prefix = "/api", endpoint = "2fa/activate")]
pub async fn activate_two_factor(
    code: String,
    password: Option<String>,
) -> Result<Vec<String>, ApiError> {
    let password = password.unwrap_or_default();
    crate::ssr::call(|b, req| async move { b.two_factor.activate(&req, code, password).await })
        .await
}

#[server(prefix = "/api", endpoint = "2fa/deactivate")]
pub async fn deactivate_two_factor(password: String, code: String) -> Result<(), ApiError> {
    crate::ssr::call(|b, req| async move { b.two_factor.deactivate(&req, password, code).await })
        .await
}

#[server(prefix = "/api", endpoint = "2fa/recovery-codes")]
pub async fn new_recovery_codes(
    code: String,
    password: Option<String>,
) -> Result<Vec<String>, ApiError> {
    let password = password.unwrap_or_default();
    crate::ssr::call(
        |b, req| async move { b.two_factor.new_recovery_codes(&req, code, password).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "users/reset-2fa")]
pub async fn reset_user_two_factor(id: String) -> Result<(), ApiError> {
    crate::ssr::call(|b, req| async move { b.admin.reset_two_factor(&req, id).await }).await
}
