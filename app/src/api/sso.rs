//! "Login with SSO": the email address decides the client, whose identity provider the browser is
//! then sent to. The way back is the plain route `/sso/callback`.

use leptos::prelude::*;
use promio_api::ApiError;

/// Starts single sign-on for the email address: answers the identity provider's authorization
/// URL to send the browser to (and sets the flow's short-lived cookie).
#[server(prefix = "/api", endpoint = "sso/start")]
pub async fn sso_start(email: String) -> Result<String, ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::sso;
    crate::edge::call(|core, caller: Caller| async move { sso::start(&core, &caller, email).await })
        .await
}
