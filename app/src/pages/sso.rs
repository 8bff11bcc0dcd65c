//! "Login with SSO": the email address decides the company, whose identity provider the browser
//! is sent to. The provider sends it back to `/sso/callback`, which lands on the home page or,
//! when something failed, here with the reason.

use super::use_hydrated;
use crate::api::{ApiError, Field, SsoStart};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SsoPage() -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let start = ServerAction::<SsoStart>::new();
    let result = start.value();
    let query = use_query_map();
    let redirecting = move || matches!(result.get(), Some(Ok(_)));
    Effect::new(move |_| {
        if let Some(Ok(url)) = result.get() {
            go_to(&url);
        }
    });
    let error = move || result.get().and_then(|r| r.err());
    let invalid = move || {
        matches!(
            error(),
            Some(ApiError::Invalid {
                field: Field::Email,
                ..
            })
        )
        .to_string()
    };
    // The reason the way back from the identity provider failed (until the next attempt).
    let failure = move || {
        if result.get().is_some() {
            return None;
        }
        let key = match query.read().get("error").as_deref() {
            Some("expired") => T::SsoExpired,
            Some("cancelled") => T::SsoCancelled,
            Some("not_registered") => T::SsoNotRegistered,
            Some(_) => T::SsoFailed,
            None => return None,
        };
        Some(tr(key)())
    };
    view! {
        <section class="card">
            <h1>{tr(T::SsoTitle)}</h1>
            <p>{tr(T::SsoIntro)}</p>
            {move || failure().map(|text| view! { <p role="alert" class="error">{text}</p> })}
            {move || error().map(|e| view! { <p role="alert" class="error">{e.message(lang.get())}</p> })}
            {move || redirecting().then(|| view! { <p role="status" class="notice">{tr(T::SsoRedirecting)}</p> })}
            <ActionForm action=start attr:class="form" attr:novalidate=true>
                <label for="email">{tr(T::EmailAddress)}</label>
                <input id="email" name="email" type="email" autocomplete="email" autocapitalize="none"
                    spellcheck="false" maxlength="254" aria-invalid=invalid/>
                <button type="submit" class="primary"
                    disabled=move || !hydrated.get() || start.pending().get() || redirecting()>
                    {tr(T::Ok)}
                </button>
            </ActionForm>
            <div class="alternatives">
                <a href="/login">{tr(T::BackToLogin)}</a>
            </div>
        </section>
    }
}

/// A full page load of the identity provider's authorization URL.
fn go_to(url: &str) {
    #[cfg(feature = "hydrate")]
    {
        if let Some(window) = web_sys::window() {
            let _ = window.location().assign(url);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = url;
}
