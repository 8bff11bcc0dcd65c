//! The login form: company ID, user name and password (the first state of the login flow).

use super::use_hydrated;
use crate::api::{self, ApiError, Field, Login, LoginOutcome};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn LoginPage() -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let login = ServerAction::<Login>::new();
    let pending = login.pending();
    let result = login.value();
    let query = use_query_map();

    // Someone already logged in has nothing to do here. The server answers such a request with a
    // redirect before rendering; in the browser (e.g. back to a cached login page) this asks.
    let navigate = use_navigate();
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            let navigate = navigate.clone();
            leptos::task::spawn_local(async move {
                if let Ok(Some(_)) = api::current_user().await {
                    navigate("/home", Default::default());
                }
            });
        }
    });
    Effect::new(move |_| {
        let target = match result.get() {
            Some(Ok(LoginOutcome::LoggedIn)) => "/home",
            Some(Ok(LoginOutcome::TwoFactorRequired)) => "/login/two-factor",
            Some(Ok(LoginOutcome::TwoFactorEnrolmentRequired)) => "/login/two-factor-setup",
            _ => return,
        };
        navigate(target, Default::default());
    });

    let error = move || result.get().and_then(|r| r.err());
    let invalid = move |field: Field| {
        move || {
            matches!(error(), Some(ApiError::Invalid { field: f, .. }) if f == field).to_string()
        }
    };
    let notice = move || {
        // Shown until the next attempt, which replaces it with that attempt's result.
        if result.get().is_some() {
            return None;
        }
        match query.read().get("notice").as_deref() {
            Some("logged_out") => Some(tr(T::LoggedOut)()),
            Some("session_ended") => Some(tr(T::SessionEnded)()),
            Some("password_set") => Some(tr(T::PasswordSet)()),
            _ => None,
        }
    };

    view! {
        <section class="card">
            <h1>{tr(T::LoginTitle)}</h1>
            {move || notice().map(|text| view! { <p role="status" class="notice">{text}</p> })}
            {move || {
                error().map(|e| view! { <p role="alert" class="error">{e.message(lang.get())}</p> })
            }}
            <ActionForm action=login attr:class="form" attr:novalidate=true>
                <label for="company_id">{tr(T::CompanyId)}</label>
                <input
                    id="company_id"
                    name="company_id"
                    type="text"
                    autocomplete="organization"
                    autocapitalize="none"
                    spellcheck="false"
                    maxlength="64"
                    aria-invalid=invalid(Field::CompanyId)
                />
                <label for="username">{tr(T::UserName)}</label>
                <input
                    id="username"
                    name="username"
                    type="text"
                    autocomplete="username webauthn"
                    autocapitalize="none"
                    spellcheck="false"
                    maxlength="128"
                    aria-invalid=invalid(Field::UserName)
                />
                <label for="password">{tr(T::Password)}</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    aria-invalid=invalid(Field::Password)
                />
                <button type="submit" class="primary" disabled=move || !hydrated.get() || pending.get()>
                    {tr(T::Ok)}
                </button>
            </ActionForm>
            <div class="alternatives">
                <super::passkeys::PasskeyLogin/>
                <a href="/sso" class="button secondary" role="button">{tr(T::LoginWithSso)}</a>
                <a href="/forgot-password">{tr(T::ForgotPassword)}</a>
            </div>
        </section>
    }
}
