//! Two-factor pages: the login's second step, the enrolment a client may require before the first
//! session, and the Security page.

use super::form::{FormError, PostForm, described_by, form_error, invalid, posted};
use super::use_hydrated;
use crate::api::{
    self, ActivateTwoFactor, ApiError, ChangePassword, DeactivateTwoFactor, Field,
    NewRecoveryCodes, StartTwoFactor, TwoFactorLogin,
};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_navigate;

/// The second step of the login: a code from the app, or a recovery code, or a passkey.
#[component]
pub fn TwoFactorLoginPage() -> impl IntoView {
    let methods = Resource::new(|| (), |_| api::get_second_factor_methods());
    let passkey = move || {
        methods
            .get()
            .and_then(|m| m.ok())
            .is_some_and(|m| m.passkey)
    };
    // Unless the server says the user has no code, the field is there (a signal an effect sets:
    // a read of the resource outside a <Suspense/> would hydrate differently).
    let has_code = RwSignal::new(true);
    Effect::new(move |_| {
        if let Some(Ok(m)) = methods.get() {
            has_code.set(m.code);
        }
    });
    let code = move || has_code.get();
    let action = ServerAction::<TwoFactorLogin>::new();
    let result = action.value();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(outcome)) = result.get() {
            super::go_on(&navigate, outcome.next_page());
        }
    });
    let error = form_error(result, &posted("/login/two-factor"));
    let expired = move || matches!(error.get(), Some(ApiError::LoginExpired));
    view! {
        <section class="card">
            <h1>{tr(T::TwoFactorTitle)}</h1>
            <p>{tr(T::TwoFactorIntro)}</p>
            <FormError error/>
            <Show
                when=move || !expired()
                fallback=|| view! { <p><a href="/login">{tr(T::BackToLogin)}</a></p> }
            >
                <Transition>
                    {move || Suspend::new(async move {
                        let _ = methods.await;
                        passkey().then(|| view! { <super::passkeys::PasskeySecondFactor/> })
                    })}
                </Transition>
                <Show when=code>
                <PostForm action to="/login/two-factor">
                    <label for="code">{tr(T::TwoFactorCode)}</label>
                    <input
                        id="code"
                        name="code"
                        type="text"
                        inputmode="numeric"
                        autocomplete="one-time-code"
                        autocapitalize="none"
                        spellcheck="false"
                        aria-describedby="code_hint"
                    />
                    <p id="code_hint" class="hint">{tr(T::TwoFactorCodeHint)}</p>
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        {tr(T::Ok)}
                    </button>
                </PostForm>
                </Show>
            </Show>
        </section>
    }
}

/// The enrolment a client requires before the first session.
#[component]
pub fn TwoFactorSetupPage() -> impl IntoView {
    view! {
        <section class="card">
            <h1>{tr(T::TwoFactorTitle)}</h1>
            <p role="status" class="notice">{tr(T::TwoFactorSetupRequired)}</p>
            <Enrolment after_done="/home" reauth=false/>
            <PasskeyEnrolment/>
        </section>
    }
}

/// A passkey instead of the app, in the enrolment a client requires.
#[component]
fn PasskeyEnrolment() -> impl IntoView {
    let status = Resource::new(|| (), |_| api::get_two_factor_status());
    // Read here, under the page's owner: the callback runs in a task that has none.
    let started = use_context::<crate::SessionStarted>();
    view! {
        <Transition>
            {move || Suspend::new(async move {
                status.await.ok().filter(|s| s.passkeys).map(|_| view! {
                    <h2>{tr(T::Passkeys)}</h2>
                    <p>{tr(T::OrAddPasskey)}</p>
                    <super::passkeys::AddPasskey
                        password=None
                        on_added=move |_| {
                            if let Some(crate::SessionStarted(count)) = started {
                                count.update(|n| *n += 1);
                            }
                        }
                        continue_to="/home"
                    />
                })
            })}
        </Transition>
    }
}

/// The Security page: the user's own second factor.
#[component]
pub fn SecurityPage() -> impl IntoView {
    let lang = use_lang();
    let me = Resource::new_str(|| (), |_| api::carried_user());
    view! {
        <section class="card">
            <h1>{tr(T::Security)}</h1>
            <Suspense fallback=move || view! { <p>{tr(T::Working)}</p> }>
                {move || Suspend::new(async move {
                    match me.await.0 {
                        Ok(Some(_)) => view! {
                            <PasswordSettings/>
                            <TwoFactorSettings/>
                            <super::passkeys::PasskeySettings/>
                            <SessionList/>
                            <AppLoginList/>
                        }
                            .into_any(),

                        Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                        Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The user's own new password: the current one, then the new one twice. The change ends the
/// user's other sessions. The form opens with its button, so that the page holds no password
/// fields but the one a step at hand asks for.
#[component]
fn PasswordSettings() -> impl IntoView {
    let status = Resource::new(|| (), |_| api::get_two_factor_status());
    view! {
        <Transition>
            {move || Suspend::new(async move {
                status
                    .await
                    .ok()
                    .filter(|s| s.password)
                    .map(|s| view! { <ChangePasswordForm second_factor_required=s.required/> })
            })}
        </Transition>
    }
}

#[component]
fn ChangePasswordForm(second_factor_required: bool) -> impl IntoView {
    let hydrated = use_hydrated();
    let action = ServerAction::<ChangePassword>::new();
    let result = action.value();
    let error = Signal::derive(move || result.get().and_then(|r| r.err()));
    let done = move || matches!(result.get(), Some(Ok(())));
    let (open, set_open) = signal(false);
    // Done: the form closes, and the passwords typed leave the page with it.
    Effect::new(move |_| {
        if done() {
            set_open.set(false);
        }
    });
    let rules = if second_factor_required {
        T::PasswordRules2fa
    } else {
        T::PasswordRules
    };
    view! {
        <h2>{tr(T::PasswordTitle)}</h2>
        <FormError error/>
        <Show when=done>
            <p role="status" class="notice">{tr(T::PasswordChanged)}</p>
        </Show>
        <Show
            when=move || open.get()
            fallback=move || view! {
                <button
                    type="button"
                    class="secondary"
                    disabled=move || !hydrated.get()
                    on:click=move |_| set_open.set(true)
                >
                    {tr(T::ChangePassword)}
                </button>
            }
        >
        <ActionForm action attr:class="form" attr:novalidate=true>
            <label for="current_password">{tr(T::CurrentPassword)}</label>
            <input
                id="current_password"
                name="current_password"
                type="password"
                autocomplete="current-password"
                aria-invalid=invalid(error, Field::Password)
                aria-describedby=described_by(error, Field::Password, None)
            />
            <label for="changed_password">{tr(T::NewPassword)}</label>
            <input
                id="changed_password"
                name="new_password"
                type="password"
                autocomplete="new-password"
                aria-invalid=invalid(error, Field::NewPassword)
                aria-describedby=described_by(error, Field::NewPassword, Some("changed_password_rules"))
            />
            <p id="changed_password_rules" class="hint">{tr(rules)}</p>
            <label for="changed_password_again">{tr(T::RepeatNewPassword)}</label>
            <input
                id="changed_password_again"
                name="repeat_password"
                type="password"
                autocomplete="new-password"
                aria-invalid=invalid(error, Field::RepeatPassword)
                aria-describedby=described_by(error, Field::RepeatPassword, None)
            />
            <button type="submit" class="primary" disabled=move || !hydrated.get() || action.pending().get()>
                {tr(T::ChangePassword)}
            </button>
        </ActionForm>
        </Show>
    }
}

#[component]
fn TwoFactorSettings() -> impl IntoView {
    let lang = use_lang();
    let refresh = RwSignal::new(0u32);
    let status = Resource::new(move || refresh.get(), |_| api::get_two_factor_status());
    // The recovery codes of an activation made on this page, shown above the settings of 2FA
    // turned on until new codes replace them or 2FA is turned off.
    let activated = Activated {
        codes: RwSignal::new(None),
        refresh,
    };
    view! {
        <h2>{tr(T::TwoFactorTitle)}</h2>
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match status.await {
                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    Ok(s) if !s.available => view! { <p>{tr(T::TwoFactorNotForSso)}</p> }.into_any(),
                    Ok(s) if s.enabled => view! {
                        {move || activated.codes.get().map(|codes| view! { <RecoveryCodeList codes after_done=""/> })}
                        <p>{tr(T::TwoFactorOn)}</p>
                        <p class="hint">{tr(T::RecoveryLeft)} " " {s.recovery_codes_left}</p>
                        <ManageTwoFactor required=s.required reauth=s.reauth_needed activated/>
                    }
                        .into_any(),
                    Ok(s) => view! {
                        <p>{tr(T::TwoFactorOff)}</p>
                        <Enrolment after_done="" reauth=s.reauth_needed activated/>
                    }
                        .into_any(),
                }
            })}
        </Transition>
    }
}

/// Where the Security page keeps an activation's recovery codes, and what makes it read the
/// status of 2FA again.
#[derive(Clone, Copy)]
struct Activated {
    codes: RwSignal<Option<Vec<String>>>,
    refresh: RwSignal<u32>,
}

/// Activation: button, then QR code, secret key and the first code, then the recovery codes.
/// `after_done`: where the Continue button leads once the codes are shown ("" for none); `reauth`:
/// the login was a while ago, so the password is asked for again; `activated`: on the Security
/// page, which then shows 2FA as on (with the codes) and offers to deactivate it.
#[component]
fn Enrolment(
    after_done: &'static str,
    reauth: bool,
    #[prop(optional)] activated: Option<Activated>,
) -> impl IntoView {
    let hydrated = use_hydrated();
    let start = ServerAction::<StartTwoFactor>::new();
    let activate = ServerAction::<ActivateTwoFactor>::new();
    Effect::new(move |_| {
        if let Some(Ok(codes)) = activate.value().get() {
            // An enrolment the client required ends in a session: the bar shows it at once.
            crate::session_started();
            if let Some(activated) = activated {
                activated.codes.set(Some(codes));
                activated.refresh.update(|n| *n += 1);
            }
        }
    });
    let enrolment = move || start.value().get().and_then(|r| r.ok());
    let codes = move || activate.value().get().and_then(|r| r.ok());
    let error = move || {
        activate
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| start.value().get().and_then(|r| r.err()))
    };
    view! {
        <FormError error=Signal::derive(error)/>
        {move || match (enrolment(), codes()) {
            (_, Some(codes)) => view! { <RecoveryCodeList codes after_done/> }.into_any(),
            (Some(e), None) => view! {
                <p>{tr(T::ScanIntro)}</p>
                <img class="qr" src=e.qr_code alt=tr(T::QrCode) width="220" height="220"/>
                <div class="form">
                    <label for="secret_key">{tr(T::SecretKey)}</label>
                    <input id="secret_key" type="text" readonly=true value=e.secret class="secret"/>
                </div>
                <ActionForm action=activate attr:class="form" attr:novalidate=true>
                    <label for="activation_code">{tr(T::TwoFactorCode)}</label>
                    <input id="activation_code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"/>
                    <Show when=move || reauth || asks_password(error())>
                        <PasswordAgain id="activation_password"/>
                    </Show>
                    <button type="submit" class="primary" disabled=move || !hydrated.get() || activate.pending().get()>
                        {tr(T::Activate)}
                    </button>
                </ActionForm>
            }
                .into_any(),
            (None, None) => view! {
                <button
                    type="button"
                    class="primary"
                    disabled=move || !hydrated.get() || start.pending().get()
                    on:click=move |_| {
                        start.dispatch(StartTwoFactor {});
                    }
                >
                    {tr(T::ActivateTwoFactor)}
                </button>
            }
                .into_any(),
        }}
    }
}

/// The password asked for again before a sensitive change.
#[component]
fn PasswordAgain(id: &'static str) -> impl IntoView {
    view! {
        <label for=id>{tr(T::Password)}</label>
        <input id=id name="password" type="password" autocomplete="current-password" aria-describedby=format!("{id}_hint")/>
        <p id=format!("{id}_hint") class="hint">{tr(T::PasswordAgainHint)}</p>
    }
}

/// The server asked for the password (again).
fn asks_password(error: Option<ApiError>) -> bool {
    matches!(
        error,
        Some(ApiError::ReauthRequired | ApiError::WrongPassword)
    )
}

#[component]
fn RecoveryCodeList(codes: Vec<String>, after_done: &'static str) -> impl IntoView {
    view! {
        <p role="status" class="notice">{tr(T::RecoveryCodesIntro)}</p>
        <h3 id="recovery_codes_label">{tr(T::RecoveryCodes)}</h3>
        <ul class="recovery-codes" aria-labelledby="recovery_codes_label">
            {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
        </ul>
        {(!after_done.is_empty())
            .then(|| view! { <a class="button primary" href=after_done rel="external">{tr(T::Continue)}</a> })}
    }
}

/// With 2FA on: new recovery codes, and deactivation (unless the client requires 2FA).
#[component]
fn ManageTwoFactor(required: bool, reauth: bool, activated: Activated) -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let deactivate = ServerAction::<DeactivateTwoFactor>::new();
    let renew = ServerAction::<NewRecoveryCodes>::new();
    let (show_deactivate, set_show_deactivate) = signal(false);
    Effect::new(move |_| {
        if let Some(Ok(())) = deactivate.value().get() {
            activated.codes.set(None);
            activated.refresh.update(|n| *n += 1);
        }
    });
    // New codes void those of the activation: only the new list is shown.
    Effect::new(move |_| {
        if let Some(Ok(_)) = renew.value().get() {
            activated.codes.set(None);
        }
    });
    let error = move || {
        deactivate
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| renew.value().get().and_then(|r| r.err()))
    };
    view! {
        {move || error().map(|e| view! { <p role="alert" class="error">{e.message(lang.get())}</p> })}
        {move || renew.value().get().and_then(|r| r.ok()).map(|codes| view! { <RecoveryCodeList codes after_done=""/> })}
        <Show when=move || !show_deactivate.get()>
            <ActionForm action=renew attr:class="form inline" attr:novalidate=true>
                <label for="renew_code">{tr(T::TwoFactorCode)}</label>
                <input id="renew_code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"/>
                <Show when=move || reauth || asks_password(renew.value().get().and_then(|r| r.err()))>
                    <PasswordAgain id="renew_password"/>
                </Show>
                <button type="submit" class="secondary" disabled=move || !hydrated.get()>{tr(T::NewRecoveryCodes)}</button>
            </ActionForm>
        </Show>

        {if required {
            view! { <p class="hint">{tr(T::TwoFactorRequiredByCompany)}</p> }.into_any()
        } else {
            view! {
                <Show
                    when=move || show_deactivate.get()
                    fallback=move || view! {
                        <button
                            type="button"
                            class="secondary"
                            disabled=move || !hydrated.get()
                            on:click=move |_| set_show_deactivate.set(true)
                        >
                            {tr(T::DeactivateTwoFactor)}
                        </button>
                    }
                >
                    <ActionForm action=deactivate attr:class="form" attr:novalidate=true>
                        <label for="deactivate_password">{tr(T::Password)}</label>
                        <input id="deactivate_password" name="password" type="password" autocomplete="current-password"/>
                        <label for="deactivate_code">{tr(T::TwoFactorCode)}</label>
                        <input id="deactivate_code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"/>
                        <button type="submit" class="primary">{tr(T::DeactivateTwoFactor)}</button>
                    </ActionForm>
                </Show>
            }
                .into_any()
        }}
    }
}

/// The applications the user is logged in to through promio.connect, and since when.
#[component]
fn AppLoginList() -> impl IntoView {
    let lang = use_lang();
    let apps = Resource::new(|| (), |_| api::my_applications());
    view! {
        <h2>{tr(T::AppLogins)}</h2>
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match apps.await {
                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p>{tr(T::NoAppLogins)}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="users">
                            <thead><tr><th>{tr(T::Name)}</th><th>{tr(T::LoggedInSince)}</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|a| view! {
                                    <tr>
                                        <td data-label=tr(T::Name)>{a.name}</td>
                                        <td data-label=tr(T::LoggedInSince)>{a.since}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }
                        .into_any(),
                }
            })}
        </Transition>
    }
}

/// The user's active sessions, each with a way to end it.
#[component]
fn SessionList() -> impl IntoView {
    let hydrated = use_hydrated();
    let lang = use_lang();
    let end = ServerAction::<crate::api::EndMySession>::new();
    let sessions = Resource::new(move || end.version().get(), |_| api::my_sessions());
    view! {
        <h2>{tr(T::ActiveSessions)}</h2>
        {move || end.value().get().and_then(|r| r.err()).map(|e| view! { <p role="alert" class="error">{e.message(lang.get())}</p> })}
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                sessions.await.ok().map(|list| view! {
                    <table class="users">
                        <thead><tr>
                            <th>{tr(T::Started)}</th><th>{tr(T::LastSeen)}</th><th>{tr(T::Ip)}</th>
                            <th>{tr(T::Device)}</th><th>{tr(T::Actions)}</th>
                        </tr></thead>
                        <tbody>
                            {list.into_iter().map(|s| {
                                let id = s.id.clone();
                                view! {
                                    <tr>
                                        <td data-label=tr(T::Started)>{s.started}</td>
                                        <td data-label=tr(T::LastSeen)>{s.last_seen}</td>
                                        <td data-label=tr(T::Ip)>{s.ip}</td>
                                        <td data-label=tr(T::Device)>{s.device} " " {s.current.then(|| tr(T::ThisSession))}</td>
                                        <td>{(!s.current).then(|| view! {
                                            <button type="button" disabled=move || !hydrated.get() on:click=move |_| {
                                                end.dispatch(crate::api::EndMySession { id: id.clone() });
                                            }>{tr(T::EndSession)}</button>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            })}
        </Transition>
    }
}
