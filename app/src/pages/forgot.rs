//! "Forgot your password?": the same confirmation for every account, existing or not.

use super::use_hydrated;
use crate::api::{ApiError, Field, RequestPasswordReset};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let action = ServerAction::<RequestPasswordReset>::new();
    let result = action.value();
    let sent = move || matches!(result.get(), Some(Ok(())));
    let error = move || result.get().and_then(|r| r.err());
    let invalid = move |field: Field| {
        move || {
            matches!(error(), Some(ApiError::Invalid { field: f, .. }) if f == field).to_string()
        }
    };
    view! {
        <section class="card">
            <h1>{tr(T::ForgotTitle)}</h1>
            <Show
                when=sent
                fallback=move || {
                    view! {
                        <p>{tr(T::ForgotIntro)}</p>
                        {move || error().map(|e| view! { <p role="alert" class="error">{e.message(lang.get())}</p> })}
                        <ActionForm action attr:class="form" attr:novalidate=true>
                            <label for="company_id">{tr(T::CompanyId)}</label>
                            <input id="company_id" name="company_id" type="text" autocomplete="organization"
                                autocapitalize="none" spellcheck="false" aria-invalid=invalid(Field::CompanyId)/>
                            <label for="username">{tr(T::UserName)}</label>
                            <input id="username" name="username" type="text" autocomplete="username"
                                autocapitalize="none" spellcheck="false" aria-invalid=invalid(Field::UserName)/>
                            <button type="submit" class="primary" disabled=move || !hydrated.get() || action.pending().get()>
                                {tr(T::Ok)}
                            </button>
                        </ActionForm>
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
