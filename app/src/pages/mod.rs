//! The pages of the app. Each page only gathers input and shows results: every rule is enforced by
//! the server behind the server functions.

mod audit;
mod clients;
mod forgot;
mod home;
mod login;
mod set_password;
mod two_factor;
mod users;

pub use audit::AuditPage;
pub use clients::ClientsPage;
pub use forgot::ForgotPasswordPage;

pub use home::HomePage;
pub use login::LoginPage;
pub use set_password::SetPasswordPage;
pub use two_factor::{SecurityPage, TwoFactorLoginPage, TwoFactorSetupPage};
pub use users::UsersPage;

use crate::i18n::T;
use crate::tr;
use leptos::prelude::*;

/// True once the page is interactive. Submit buttons stay disabled until then, so that a click
/// before the WASM has loaded cannot fall through to a plain form post that shows no result.
pub fn use_hydrated() -> ReadSignal<bool> {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    hydrated
}

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <h1>{tr(T::NotFoundTitle)}</h1>
        <p>{tr(T::NotFoundText)}</p>
        <p>
            <a href="/login">{tr(T::BackToLogin)}</a>
        </p>
    }
}
