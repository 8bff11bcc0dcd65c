//! The login form: company ID, user name and password (the first state of the login flow).

use super::form::{FormError, PostForm, described_by, form_error, invalid, posted};
use crate::api::{self, COMPANY_COOKIE, Field, Login};
use crate::i18n::T;
use crate::tr;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn LoginPage() -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let pending = login.pending();
    let result = login.value();
    let query = use_query_map();

    // Someone already logged in has nothing to do here. The server answers such a request with a
    // redirect before rendering; in the browser (e.g. back to a cached login page) this asks.
    // Not when an application asked for a new login (`reauth`): the form is for that.
    let reauth = query.with_untracked(|q| q.get("reauth").is_some());
    Effect::new(move |_| {
        if reauth {
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(Some(_)) = api::current_user().await {
                super::go_home();
            }
        });
    });
    // A login ends with a full page load of /home (see `go_home`).
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(outcome)) = result.get() {
            super::go_on(&navigate, outcome.next_page());
        }
    });

    // A failed attempt empties the password field (the other fields keep what was typed).
    let password = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(Err(_)) = result.get()
            && let Some(field) = password.get_untracked()
        {
            field.set_value("");
        }
    });

    // The last attempt's error: this page's, or the one a post without script came back with.
    let posted = posted("/login");
    let error = form_error(result, &posted);
    let came_back = posted.is_some();
    // What was typed stays after a failed attempt (the reactive form keeps it; a post without
    // script brings it back), except the password. Else what the address names (an application
    // sends people here with its company ID and a user name), else the company ID of the last
    // login here.
    let value = |name: &str| posted.as_ref().and_then(|f| f.value(name));
    let asked = |name: &str, max: usize| {
        query
            .with_untracked(|q| q.get(name))
            .map(|v| v.trim().chars().take(max).collect::<String>())
            .filter(|v| !v.is_empty())
    };
    let company_id = value("company_id")
        .or_else(|| asked("company_id", 64))
        .or_else(remembered_company);
    let username = value("username").or_else(|| asked("username", 128));
    let notice = move || {
        // Shown until the next attempt, which replaces it with that attempt's result.
        if result.get().is_some() || came_back {
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
            <FormError error/>
            <PostForm action=login to="/login">
                <label for="company_id">{tr(T::CompanyId)}</label>
                <input
                    id="company_id"
                    name="company_id"
                    type="text"
                    autocomplete="organization"
                    autocapitalize="none"
                    spellcheck="false"
                    maxlength="64"
                    value=company_id
                    aria-invalid=invalid(error, Field::CompanyId)
                    aria-describedby=described_by(error, Field::CompanyId, None)
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
                    value=username
                    aria-invalid=invalid(error, Field::UserName)
                    aria-describedby=described_by(error, Field::UserName, None)
                />
                <label for="password">{tr(T::Password)}</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    node_ref=password
                    autocomplete="current-password"
                    aria-invalid=invalid(error, Field::Password)
                    aria-describedby=described_by(error, Field::Password, None)
                />
                <button type="submit" class="primary" disabled=move || pending.get()>
                    {tr(T::Ok)}
                </button>
            </PostForm>
            <div class="alternatives">
                <super::passkeys::PasskeyLogin/>
                <a href="/sso" class="button secondary" role="button">{tr(T::LoginWithSso)}</a>
                <a href="/forgot-password">{tr(T::ForgotPassword)}</a>
            </div>
        </section>
    }
}

/// The company ID of the last successful login in this browser ([`COMPANY_COOKIE`]): from the
/// request on the server, from `document.cookie` in the browser.
fn remembered_company() -> Option<String> {
    #[cfg(feature = "ssr")]
    let cookies = use_context::<http::request::Parts>().map(|parts| {
        parts
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(";")
    });
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    let cookies = {
        use wasm_bindgen::JsCast;
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
            .and_then(|d| d.cookie().ok())
    };
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    let cookies: Option<String> = None;
    cookies?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COMPANY_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 32
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}
