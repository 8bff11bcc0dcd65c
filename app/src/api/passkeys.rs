//! The contract of passkeys (WebAuthn): registering them on the Security page (or when the client
//! requires a second factor), using one as the second factor, logging in with one alone, and
//! removing them. The ceremonies' options and the browser's answers travel as JSON text: the
//! server (webauthn-rs) makes and checks them, the browser only hands them to its WebAuthn API.

use super::{ApiError, LoginOutcome};
use leptos::prelude::*;
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

#[server(prefix = "/api", endpoint = "passkeys/status")]
pub async fn get_passkey_status() -> Result<PasskeyStatus, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.status(&req).await }).await
}

/// Begins adding a passkey (Security page, or the enrolment a client requires). `password` is
/// needed when the login was more than a few minutes ago.
#[server(prefix = "/api", endpoint = "passkeys/register-start")]
pub async fn start_passkey_registration(
    password: Option<String>,
) -> Result<PasskeyOptions, ApiError> {
    let password = password.unwrap_or_default();
    crate::ssr::call(|b, req| async move { b.passkeys.register_start(&req, password).await }).await
}

/// Finishes adding a passkey with the browser's answer; `name` may be empty (then "Passkey").
/// After the enrolment a client requires, the answer's session cookie logs the user in.
#[server(prefix = "/api", endpoint = "passkeys/register-finish")]
pub async fn finish_passkey_registration(
    credential: String,
    name: String,
) -> Result<PasskeyInfo, ApiError> {
    crate::ssr::call(
        |b, req| async move { b.passkeys.register_finish(&req, credential, name).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "passkeys/rename")]
pub async fn rename_passkey(id: String, name: String) -> Result<PasskeyInfo, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.rename(&req, id, name).await }).await
}

#[server(prefix = "/api", endpoint = "passkeys/remove")]
pub async fn remove_passkey(id: String, password: Option<String>) -> Result<(), ApiError> {
    let password = password.unwrap_or_default();
    crate::ssr::call(|b, req| async move { b.passkeys.remove(&req, id, password).await }).await
}

/// Begins a login with a passkey alone (the button, or the browser's autofill).
#[server(prefix = "/api", endpoint = "passkeys/login-start")]
pub async fn start_passkey_login() -> Result<PasskeyOptions, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.login_start(&req).await }).await
}

#[server(prefix = "/api", endpoint = "passkeys/login-finish")]
pub async fn finish_passkey_login(credential: String) -> Result<LoginOutcome, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.login_finish(&req, credential).await }).await
}

/// The ways the login's second step accepts for the pending user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorMethods {
    /// A code from the authenticator app (or a recovery code).
    pub code: bool,
    /// One of the user's passkeys.
    pub passkey: bool,
}

#[server(prefix = "/api", endpoint = "passkeys/second-factor-methods")]
pub async fn get_second_factor_methods() -> Result<SecondFactorMethods, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.second_factor_methods(&req).await }).await
}

/// Begins the second step with a passkey instead of a code.
#[server(prefix = "/api", endpoint = "passkeys/second-factor-start")]
pub async fn start_passkey_second_factor() -> Result<PasskeyOptions, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.second_factor_start(&req).await }).await
}

#[server(prefix = "/api", endpoint = "passkeys/second-factor-finish")]
pub async fn finish_passkey_second_factor(credential: String) -> Result<LoginOutcome, ApiError> {
    crate::ssr::call(
        |b, req| async move { b.passkeys.second_factor_finish(&req, credential).await },
    )
    .await
}

/// Begins confirming a password reset with a passkey (**Use a passkey** on the set-password page
/// of a user who has one): a ceremony tied to the link's `token`.
#[server(prefix = "/api", endpoint = "passkeys/reset-start")]
pub async fn start_passkey_reset(token: String) -> Result<PasskeyOptions, ApiError> {
    crate::ssr::call(|b, req| async move { b.passkeys.reset_start(&req, token).await }).await
}

/// Sets the new password through the reset link, confirmed with the passkey's answer (the same
/// rules as `set-password`; a refused passkey counts like a wrong code).
#[server(prefix = "/api", endpoint = "passkeys/reset-finish")]
pub async fn finish_passkey_reset(
    token: String,
    new_password: String,
    repeat_password: String,
    credential: String,
) -> Result<(), ApiError> {
    crate::ssr::call(|b, req| async move {
        b.passkeys
            .reset_finish(&req, token, new_password, repeat_password, credential)
            .await
    })
    .await
}

/// An administrator removes every passkey of a user of their client (lost device); the user gets
/// a mail.
#[server(prefix = "/api", endpoint = "users/remove-passkeys")]
pub async fn remove_user_passkeys(id: String) -> Result<(), ApiError> {
    crate::ssr::call(|b, req| async move { b.admin.remove_passkeys(&req, id).await }).await
}
