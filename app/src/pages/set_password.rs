//! The page behind the link in a registration or password-reset mail.

use super::form::{FormError, PostForm, described_by, form_error, invalid, posted};
use crate::api::{self, Field, LinkKind, LinkState, SetPassword};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

#[component]
pub fn SetPasswordPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let link = Resource::new(token, api::link_info);
    view! {
        <section class="card">
            <Suspense fallback=move || view! { <p>{tr(T::Working)}</p> }>
                {move || Suspend::new(async move {
                    match link.await {
                        Ok(LinkState::Valid { kind, company_id, username, until, second_factor_required, code_required, passkey }) => {
                            view! {
                                <SetPasswordForm
                                    token=token()
                                    kind
                                    company_id
                                    username
                                    until
                                    second_factor_required
                                    code_required
                                    passkey
                                />
                            }
                                .into_any()
                        }
                        Ok(state) => view! { <LinkNotUsable state/> }.into_any(),
                        Err(e) => view! { <p role="alert" class="error">{e.message(use_lang().get_untracked())}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn LinkNotUsable(state: LinkState) -> impl IntoView {
    let (text, kind) = match state {
        LinkState::Expired {
            kind: LinkKind::Registration,
        } => (T::LinkExpiredRegistration, Some(LinkKind::Registration)),
        LinkState::Expired { kind } => (T::LinkExpiredReset, Some(kind)),
        LinkState::Used { kind } => (T::LinkUsed, Some(kind)),
        LinkState::Superseded { kind } => (T::LinkSuperseded, Some(kind)),
        LinkState::Unknown | LinkState::Valid { .. } => (T::LinkUnknown, None),
    };
    let title = if kind == Some(LinkKind::Registration) {
        T::SetPasswordTitle
    } else {
        T::ResetPasswordTitle
    };
    view! {
        <h1>{tr(title)}</h1>
        <p role="status" class="notice">{tr(text)}</p>
        <div class="alternatives">
            {(kind == Some(LinkKind::PasswordReset))
                .then(|| view! { <a href="/forgot-password">{tr(T::RequestNewReset)}</a> })}
            <a href="/login">{tr(T::BackToLogin)}</a>
        </div>
    }
}

#[component]
fn SetPasswordForm(
    token: String,
    kind: LinkKind,
    company_id: String,
    username: String,
    until: String,
    second_factor_required: bool,
    code_required: bool,
    /// The user has a passkey that can confirm this reset (**Use a passkey**, with the password
    /// typed in the form): without `code_required`, the only way.
    passkey: bool,
) -> impl IntoView {
    let action = ServerAction::<SetPassword>::new();
    let new_password = NodeRef::<leptos::html::Input>::new();
    let repeat_password = NodeRef::<leptos::html::Input>::new();
    let passkey_token = token.clone();
    let result = action.value();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = result.get() {
            navigate("/login?notice=password_set", Default::default());
        }
    });
    let error = form_error(result, &posted("/set-password"));
    let title = if kind == LinkKind::Registration {
        T::SetPasswordTitle
    } else {
        T::ResetPasswordTitle
    };
    let rules = if second_factor_required {
        T::PasswordRules2fa
    } else {
        T::PasswordRules
    };
    view! {
        <h1>{tr(title)}</h1>
        <dl class="facts">
            <dt>{tr(T::CompanyId)}</dt>
            <dd>{company_id}</dd>
            <dt>{tr(T::UserName)}</dt>
            <dd>{username.clone()}</dd>
        </dl>
        <p class="hint">{tr(T::LinkValidUntil)} " " {until} "."</p>
        <FormError error/>
        <PostForm action to="/set-password">
            <input type="hidden" name="token" value=token/>
            // Lets password managers file the new password under the right account.
            <input type="text" name="username_hint" autocomplete="username" value=username hidden=true/>
            <label for="new_password">{tr(T::NewPassword)}</label>
            <input
                id="new_password"
                name="new_password"
                type="password"
                autocomplete="new-password"
                node_ref=new_password
                aria-invalid=invalid(error, Field::NewPassword)
                aria-describedby=described_by(error, Field::NewPassword, Some("password_rules"))
            />
            <p id="password_rules" class="hint">{tr(rules)}</p>
            <label for="repeat_password">{tr(T::RepeatNewPassword)}</label>
            <input
                id="repeat_password"
                name="repeat_password"
                type="password"
                autocomplete="new-password"
                node_ref=repeat_password
                aria-invalid=invalid(error, Field::RepeatPassword)
                aria-describedby=described_by(error, Field::RepeatPassword, None)
            />
            {code_required
                .then(|| {
                    view! {
                        <label for="code">{tr(T::TwoFactorCode)}</label>
                        <input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                            autocapitalize="none" spellcheck="false" aria-describedby="code_hint"/>
                        <p id="code_hint" class="hint">{tr(T::TwoFactorCodeHint)}</p>
                    }
                })}
            {passkey
                .then(|| {
                    let hint = if code_required { T::ResetOrPasskey } else { T::ResetWithPasskey };
                    view! {
                        <p class="hint">{tr(hint)}</p>
                        <super::passkeys::PasskeyReset
                            token=passkey_token
                            new_password
                            repeat_password
                        />
                    }
                })}

            <button type="submit" class="primary" disabled=move || action.pending().get()>
                {tr(T::Ok)}
            </button>
        </PostForm>
    }
}
