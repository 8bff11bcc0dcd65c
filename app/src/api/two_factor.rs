//! The server functions of the second factor: the login's second step and the user's own set-up.

use leptos::prelude::*;
use promio_api::{ApiError, LoginOutcome, TwoFactorEnrolment, TwoFactorStatus};

#[server(prefix = "/api", endpoint = "2fa/login")]
pub async fn two_factor_login(code: String) -> Result<LoginOutcome, ApiError> {
    use crate::edge::principal::{Caller, PendingCode};
    use promio_core::idm::two_factor;
    crate::edge::call(
        |core, (pending, caller): (PendingCode, Caller)| async move {
            two_factor::login(&core, pending.0, &caller, code).await
        },
    )
    .await
}

#[server(prefix = "/api", endpoint = "2fa/status")]
pub async fn get_two_factor_status() -> Result<TwoFactorStatus, ApiError> {
    use crate::edge::principal::Enroller;
    use promio_core::idm::two_factor;
    crate::edge::call(|core, who: Enroller| async move { two_factor::status(&core, &who).await })
        .await
}

#[server(prefix = "/api", endpoint = "2fa/start")]
pub async fn start_two_factor() -> Result<TwoFactorEnrolment, ApiError> {
    use crate::edge::principal::Enroller;
    use promio_core::idm::two_factor;
    crate::edge::call(|core, who: Enroller| async move { two_factor::start(&core, &who).await })
        .await
}

/// Activates with a first code; returns the recovery codes (shown once). `password` is needed
/// when the login was more than a few minutes ago.
#[server(prefix = "/api", endpoint = "2fa/activate")]
pub async fn activate_two_factor(
    code: String,
    password: Option<String>,
) -> Result<Vec<String>, ApiError> {
    use crate::edge::principal::{Caller, Enroller};
    use promio_core::idm::two_factor;
    let password = password.unwrap_or_default();
    crate::edge::call(|core, (who, caller): (Enroller, Caller)| async move {
        two_factor::activate(&core, who, &caller, code, password).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "2fa/deactivate")]
pub async fn deactivate_two_factor(password: String, code: String) -> Result<(), ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::two_factor;
    crate::edge::call(|core, session: Session| async move {
        two_factor::deactivate(&core, &session, password, code).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "2fa/recovery-codes")]
pub async fn new_recovery_codes(
    code: String,
    password: Option<String>,
) -> Result<Vec<String>, ApiError> {
    use crate::edge::principal::Session;
    use promio_core::idm::two_factor;
    let password = password.unwrap_or_default();
    crate::edge::call(|core, session: Session| async move {
        two_factor::new_recovery_codes(&core, &session, code, password).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "users/reset-2fa")]
pub async fn reset_user_two_factor(id: String) -> Result<(), ApiError> {
    use crate::edge::principal::Admin;
    use promio_core::idm::admin;
    crate::edge::call(
        |core, who: Admin| async move { admin::reset_two_factor(&core, &who, id).await },
    )
    .await
}
