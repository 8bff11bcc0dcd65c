//! The server functions: the HTTP contract between the browser and the server. Each hands its
//! arguments to one flow of `promio_core`, as the principal its closure names (see
//! `crate::edge::call`, compiled with the `ssr` feature); the wire types are `promio_api`'s.

pub use promio_api::*;

mod accounts;
mod applications;
mod operator;
mod passkeys;
mod sso;
mod two_factor;

pub use accounts::*;
pub use applications::*;
pub use operator::*;
pub use passkeys::*;
pub use sso::*;
pub use two_factor::*;

use leptos::prelude::*;

#[server(prefix = "/api", endpoint = "login")]
pub async fn login(
    company_id: String,
    username: String,
    password: String,
) -> Result<LoginOutcome, ApiError> {
    use crate::edge::principal::Caller;
    use promio_core::idm::login;
    let form = LoginForm {
        company_id,
        username,
        password,
    };
    crate::edge::call(|core, caller: Caller| async move {
        login::form_password_step(&core, &caller, form).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "me")]
pub async fn current_user() -> Result<Option<Me>, ApiError> {
    use crate::edge::principal::CurrentUser;
    crate::edge::call(|core, current: CurrentUser| async move { core.me(current.0).await }).await
}

/// Seconds until the session ends unless used (`None`: no session); asking does not count as use.
#[server(prefix = "/api", endpoint = "session/time-left")]
pub async fn session_time_left() -> Result<Option<u64>, ApiError> {
    use crate::edge::principal::IdleCheck;
    use promio_core::infra::error::ServiceError;
    crate::edge::call(|_core, idle: IdleCheck| async move {
        Ok::<_, ServiceError>(idle.0.map(|c| u64::try_from(c.ends_in_secs).unwrap_or(0)))
    })
    .await
}

/// The logged-in person (or `None`), as [`current_user`] answers, for a resource.
pub async fn carried_user() -> Carried<Result<Option<Me>, ApiError>> {
    Carried(current_user().await)
}
