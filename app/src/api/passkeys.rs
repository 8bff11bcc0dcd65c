//! The server functions of passkeys: registering, listing, removing, and logging in with them.

use leptos::prelude::*;
use promio_api::{
    ApiError, LoginOutcome, PasskeyInfo, PasskeyOptions, PasskeyStatus, SecondFactorMethods,
};

#[server(prefix = "/api", endpoint = "passkeys/status")]
pub async fn get_passkey_status() -> Result<PasskeyStatus, ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::passkeys;
    crate::edge::call(
        |core, session: Session| async move { passkeys::status(&core, &session).await },
    )
    .await
}

/// Begins adding a passkey (Security page, or the enrolment a client requires). `password` is
/// needed when the login was more than a few minutes ago.
#[server(prefix = "/api", endpoint = "passkeys/register-start")]
pub async fn start_passkey_registration(
    password: Option<String>,
) -> Result<PasskeyOptions, ApiError> {
    use crate::edge::principal::Enroller;
    use promio_core::idm::passkeys;
    let password = password.unwrap_or_default();
    crate::edge::call(|core, who: Enroller| async move {
        passkeys::register_start(&core, &who, password).await
    })
    .await
}

/// Finishes adding a passkey with the browser's answer; `name` may be empty (then "Passkey").
/// After the enrolment a client requires, the answer's session cookie logs the user in.
#[server(prefix = "/api", endpoint = "passkeys/register-finish")]
pub async fn finish_passkey_registration(
    credential: String,
    name: String,
) -> Result<PasskeyInfo, ApiError> {
    use crate::edge::principal::{Caller, Enroller};
    use promio_core::idm::passkeys;
    crate::edge::call(|core, (who, caller): (Enroller, Caller)| async move {
        passkeys::register_finish(&core, who, &caller, credential, name).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "passkeys/rename")]
pub async fn rename_passkey(id: String, name: String) -> Result<PasskeyInfo, ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::passkeys;
    crate::edge::call(|core, session: Session| async move {
        passkeys::rename(&core, &session, id, name).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "passkeys/remove")]
pub async fn remove_passkey(id: String, password: Option<String>) -> Result<(), ApiError> {
    use crate::edge::principal::{Caller, Session};
    use promio_core::idm::passkeys;
    let password = password.unwrap_or_default();
    crate::edge::call(|core, (session, caller): (Session, Caller)| async move {
        passkeys::remove(&core, &session, &caller, id, password).await
    })
    .await
}

/// Begins a login with a passkey alone (the button, or the browser's autofill).
#[server(prefix = "/api", endpoint = "passkeys/login-start")]
pub async fn start_passkey_login() -> Result<PasskeyOptions, ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::passkeys;
    crate::edge::call(
        |core, caller: Caller| async move { passkeys::login_start(&core, &caller).await },
    )
    .await
}

#[server(prefix = "/api", endpoint = "passkeys/login-finish")]
pub async fn finish_passkey_login(credential: String) -> Result<LoginOutcome, ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::passkeys;
    crate::edge::call(|core, caller: Caller| async move {
        passkeys::login_finish(&core, &caller, credential).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "passkeys/second-factor-methods")]
pub async fn get_second_factor_methods() -> Result<SecondFactorMethods, ApiError> {
    use crate::edge::principal::PendingCode;
    use promio_core::idm::passkeys;
    crate::edge::call(|core, pending: PendingCode| async move {
        passkeys::second_factor_methods(&core, &pending.0).await
    })
    .await
}

/// Begins the second step with a passkey instead of a code.
#[server(prefix = "/api", endpoint = "passkeys/second-factor-start")]
pub async fn start_passkey_second_factor() -> Result<PasskeyOptions, ApiError> {
    use crate::edge::principal::PendingCode;
    use promio_core::idm::passkeys;
    crate::edge::call(|core, pending: PendingCode| async move {
        passkeys::second_factor_start(&core, &pending.0).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "passkeys/second-factor-finish")]
pub async fn finish_passkey_second_factor(credential: String) -> Result<LoginOutcome, ApiError> {
    use crate::edge::principal::{Caller, PendingCode};
    use promio_core::idm::passkeys;
    crate::edge::call(
        |core, (pending, caller): (PendingCode, Caller)| async move {
            passkeys::second_factor_finish(&core, pending.0, &caller, credential).await
        },
    )
    .await
}

/// Begins confirming a password reset with a passkey (**Use a passkey** on the set-password page
/// of a user who has one): a ceremony tied to the link's `token`.
#[server(prefix = "/api", endpoint = "passkeys/reset-start")]
pub async fn start_passkey_reset(token: String) -> Result<PasskeyOptions, ApiError> {
    use promio_core::idm::links;
    crate::edge::call(|core, _: ()| async move { links::passkey_reset_start(&core, token).await })
        .await
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
    use crate::edge::principal::Caller;
    use promio_core::idm::links;
    crate::edge::call(|core, caller: Caller| async move {
        links::passkey_reset_finish(
            &core,
            &caller,
            token,
            new_password,
            repeat_password,
            credential,
        )
        .await
    })
    .await
}

/// An administrator removes every passkey of a user of their client (lost device); the user gets
/// a mail.
#[server(prefix = "/api", endpoint = "users/remove-passkeys")]
pub async fn remove_user_passkeys(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(
        |core, who: Admin| async move { admin::remove_passkeys(&core, &who, id).await },
    )
    .await
}
