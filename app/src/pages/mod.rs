//! The pages of the app. Each page only gathers input and shows results: every rule is enforced by
//! the server behind the server functions.

mod applications;
mod audit;
mod clients;
mod forgot;
mod form;
mod home;
mod login;
mod passkeys;
mod set_password;
mod sso;
mod two_factor;
mod users;

pub use applications::ApplicationsPage;
pub use audit::AuditPage;
pub use clients::ClientsPage;
pub use forgot::ForgotPasswordPage;

pub use home::HomePage;
pub use login::LoginPage;
pub use set_password::SetPasswordPage;
pub use sso::SsoPage;
pub use two_factor::{SecurityPage, TwoFactorLoginPage, TwoFactorSetupPage};
pub use users::UsersPage;

use crate::i18n::T;
use crate::tr;
use leptos::prelude::*;

/// Declares a route whose page is loaded on demand: in the browser, the page's code is a separate
/// WASM chunk fetched when the route is first shown (the server names it in a preload link when it
/// renders that page). Only the login page and the shell stay in the main bundle.
macro_rules! lazy_page {
    ($($route:ident => $page:ident),* $(,)?) => {$(
        #[doc = concat!("The lazily loaded route of [`", stringify!($page), "`].")]
        pub struct $route;

        #[leptos_router::lazy_route]
        impl leptos_router::LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page/> }.into_any()
            }
        }
    )*};
}

lazy_page! {
    HomeRoute => HomePage,
    SetPasswordRoute => SetPasswordPage,
    ForgotPasswordRoute => ForgotPasswordPage,
    SsoRoute => SsoPage,
    UsersRoute => UsersPage,
    SecurityRoute => SecurityPage,
    ClientsRoute => ClientsPage,
    ApplicationsRoute => ApplicationsPage,
    AuditRoute => AuditPage,
    TwoFactorLoginRoute => TwoFactorLoginPage,
    TwoFactorSetupRoute => TwoFactorSetupPage,
}

/// A full page load of `/home`, where every login ends: the server may send the browser on from
/// there (to an application whose login request waited for this login), which a navigation
/// inside the page would never ask it.
pub fn go_home() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign("/home");
    }
}

/// Goes on to the page after a login step: `/home` as a full page load ([`go_home`]), any other
/// step inside the page.
pub fn go_on(navigate: &dyn Fn(&str, leptos_router::NavigateOptions), page: &str) {
    if page == "/home" {
        go_home();
    } else {
        navigate(page, Default::default());
    }
}

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

/// A page for some roles only: signed-out visitors go to the login page, others see 403's message,
/// and the allowed ones get `page` with their role.
#[component]
pub fn RoleGate<V: IntoView + 'static>(
    allow: fn(crate::api::Role) -> bool,
    page: fn(crate::api::Role) -> V,
) -> impl IntoView {
    use crate::api::{self, ApiError};
    use leptos_router::components::Redirect;
    let lang = crate::use_lang();
    let me = Resource::new_str(|| (), |_| api::carried_user());
    view! {
        <section class="card wide">
            <Suspense fallback=move || view! { <p>{tr(T::Working)}</p> }>
                {move || Suspend::new(async move {
                    let error = |e: ApiError| view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any();
                    match me.await.0 {
                        Ok(Some(me)) if allow(me.role) => page(me.role).into_any(),
                        Ok(Some(_)) => error(ApiError::Forbidden),
                        Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                        Err(e) => error(e),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The id of a [`Feedback`]'s error message, which the fields it names point to.
pub const FEEDBACK_ERROR_ID: &str = "feedback-error";

/// `aria-describedby` of a console form's field: the feedback's message when it is about the field.
pub fn feedback_describes(
    error: ReadSignal<Option<crate::api::ApiError>>,
    field: crate::api::Field,
) -> impl Fn() -> Option<&'static str> + Copy {
    move || {
        matches!(error.get(), Some(crate::api::ApiError::Invalid { field: f, .. }) if f == field)
            .then_some(FEEDBACK_ERROR_ID)
    }
}

/// The outcome of the last action on a page: a notice (`role="status"`) or an error
/// (`role="alert"`), never both.
#[derive(Clone, Copy)]
pub struct Feedback {
    notice: RwSignal<Option<T>>,
    error: RwSignal<Option<crate::api::ApiError>>,
}

impl Feedback {
    pub fn new() -> Self {
        Feedback {
            notice: RwSignal::new(None),
            error: RwSignal::new(None),
        }
    }

    /// The current error, for forms that mark the field it names.
    pub fn error(&self) -> ReadSignal<Option<crate::api::ApiError>> {
        self.error.read_only()
    }

    /// Shows neither a notice nor an error (for an outcome the page shows in its own way).
    pub fn clear(&self) {
        self.notice.set(None);
        self.error.set(None);
    }

    /// Shows `ok` for a success and the error's message for a failure; `None` changes nothing.
    pub fn report(&self, outcome: Option<Result<(), crate::api::ApiError>>, ok: T) {
        match outcome {
            Some(Ok(())) => {
                self.error.set(None);
                self.notice.set(Some(ok));
            }
            Some(Err(e)) => {
                self.notice.set(None);
                self.error.set(Some(e));
            }
            None => {}
        }
    }

    /// The notice, or the error; an error takes the focus when it appears (after a failed action,
    /// keyboard and screen reader users land on it).
    pub fn view(self) -> impl IntoView {
        let lang = crate::use_lang();
        let error_node = NodeRef::<leptos::html::P>::new();
        Effect::new(move |_| {
            if self.error.get().is_some() {
                form::focus_soon(error_node);
            }
        });
        view! {
            {move || self.notice.get().map(|n| view! { <p role="status" class="notice">{tr(n)}</p> })}
            <p id=FEEDBACK_ERROR_ID role="alert" class="error" tabindex="-1" node_ref=error_node
                hidden=move || self.error.get().is_none()>
                {move || self.error.get().map(|e| e.message(lang.get()))}
            </p>
        }
    }
}
