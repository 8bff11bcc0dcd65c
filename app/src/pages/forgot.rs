//! "Forgot your password?": the same confirmation for every account, existing or not.

use super::form::{FormError, PostForm, described_by, form_error, invalid, posted};
use crate::api::{Field, RequestPasswordReset};
use crate::i18n::T;
use crate::tr;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let action = ServerAction::<RequestPasswordReset>::new();
    let result = action.value();
    let query = use_query_map();
    // Sent: this page's answer, or the server's after a post without script (`?sent=1`).
    let sent = move || match result.get() {
        Some(r) => r.is_ok(),
        None => query.read().get("sent").is_some(),
    };
    let posted = posted("/forgot-password");
    let error = form_error(result, &posted);
    let value = |name: &str| posted.as_ref().and_then(|f| f.value(name));
    let company_id = value("company_id");
    let username = value("username");
    view! {
        <section class="card">
            <h1>{tr(T::ForgotTitle)}</h1>
            <Show
                when=sent
                fallback=move || {
                    let (company_id, username) = (company_id.clone(), username.clone());
                    view! {
                        <p>{tr(T::ForgotIntro)}</p>
                        <FormError error/>
                        <PostForm action to="/forgot-password">
                            <label for="company_id">{tr(T::CompanyId)}</label>
                            <input id="company_id" name="company_id" type="text" autocomplete="organization"
                                autocapitalize="none" spellcheck="false" maxlength="64" value=company_id
                                aria-invalid=invalid(error, Field::CompanyId)
                                aria-describedby=described_by(error, Field::CompanyId, None)/>
                            <label for="username">{tr(T::UserName)}</label>
                            <input id="username" name="username" type="text" autocomplete="username"
                                autocapitalize="none" spellcheck="false" maxlength="128" value=username
                                aria-invalid=invalid(error, Field::UserName)
                                aria-describedby=described_by(error, Field::UserName, None)/>
                            <button type="submit" class="primary" disabled=move || action.pending().get()>
                                {tr(T::Ok)}
                            </button>
                        </PostForm>
                    }
                }
            >
                <p role="status" class="notice">{tr(T::ForgotSent)}</p>
            </Show>
            <div class="alternatives">
                <a href="/login">{tr(T::BackToLogin)}</a>
            </div>
        </section>
    }
}
