//! The contract of "Login with SSO": the email address decides the client, whose identity
//! provider the browser is then sent to. The way back is the plain route `/sso/callback`.

use super::ApiError;
use leptos::prelude::*;

/// Starts single sign-on for the email address: answers the identity provider's authorization
/// URL to send the browser to (and sets the flow's short-lived cookie).
#[server(prefix = "/api", endpoint = "sso/start")]
pub async fn sso_start(email: String) -> Result<String, ApiError> {
    crate::ssr::call(|b, req| async move { b.sso.start(&req, email).await }).await
}
