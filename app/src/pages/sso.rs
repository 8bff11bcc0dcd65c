//! "Login with SSO": the email address decides the company, whose identity provider the browser
//! is sent to. The provider sends it back to `/sso/callback`, which lands on the home page or,
//! when something failed, here with the reason.

use super::form::{FormError, PostForm, described_by, form_error, invalid, posted};
use crate::api::{Field, SsoStart};
use crate::i18n::T;
use crate::tr;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SsoPage() -> impl IntoView {
    let start = ServerAction::<SsoStart>::new();
    let result = start.value();
    let query = use_query_map();
    let redirecting = move || matches!(result.get(), Some(Ok(_)));
    Effect::new(move |_| {
        if let Some(Ok(url)) = result.get() {
            go_to(&url);
        }
    });
    let posted = posted("/sso");
    let error = form_error(result, &posted);
    let came_back = posted.is_some();
    let email = posted.as_ref().and_then(|f| f.value("email"));
    // The reason the way back from the identity provider failed (until the next attempt).
    let failure = move || {
        if result.get().is_some() || came_back {
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
            <FormError error/>
            {move || redirecting().then(|| view! { <p role="status" class="notice">{tr(T::SsoRedirecting)}</p> })}
            <PostForm action=start to="/sso">
                <label for="email">{tr(T::EmailAddress)}</label>
                <input id="email" name="email" type="email" autocomplete="email" autocapitalize="none"
                    spellcheck="false" maxlength="254" value=email
                    aria-invalid=invalid(error, Field::Email)
                    aria-describedby=described_by(error, Field::Email, None)/>
                <button type="submit" class="primary"
                    disabled=move || start.pending().get() || redirecting()>
                    {tr(T::Ok)}
                </button>
            </PostForm>
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
