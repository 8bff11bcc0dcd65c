//! Passkeys in the UI: **Log in with a passkey** (and the browser's autofill) on the login page,
//! **Use a passkey** on the second step and on the set-password page of a reset (for a user with a
//! passkey), **Add a passkey** on the Security page and in the
//! enrolment a client requires, and the user's list with **Remove**. The browser's side is in
//! [`crate::webauthn`]; every check is the server's.

use super::use_hydrated;
use crate::api::{self, ApiError, LoginOutcome, PasskeyInfo};
use crate::i18n::{T, t};
use crate::webauthn::{self, Refused};
use crate::{tr, use_lang};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

/// What went wrong: the server's answer, or the browser's refusal.
#[derive(Clone, Debug, PartialEq)]
enum Trouble {
    Api(ApiError),
    Browser(Refused),
}

impl Trouble {
    fn message(&self, lang: crate::i18n::Lang) -> String {
        match self {
            Trouble::Api(e) => e.message(lang),
            Trouble::Browser(Refused::AlreadyRegistered) => {
                t(lang, T::PasskeyAlreadyOnDevice).to_owned()
            }
            Trouble::Browser(Refused::Unsupported) => t(lang, T::PasskeyUnsupported).to_owned(),
            Trouble::Browser(_) => t(lang, T::PasskeyNotUsed).to_owned(),
        }
    }
}

impl From<ApiError> for Trouble {
    fn from(e: ApiError) -> Self {
        Trouble::Api(e)
    }
}

impl From<Refused> for Trouble {
    fn from(r: Refused) -> Self {
        Trouble::Browser(r)
    }
}

/// The alert for the last trouble, if any.
fn alert(trouble: RwSignal<Option<Trouble>>) -> impl IntoView {
    let lang = use_lang();
    move || {
        trouble
            .get()
            .map(|t| view! { <p role="alert" class="error">{t.message(lang.get())}</p> })
    }
}

/// The login page's way in with a passkey alone: a button, and the browser's autofill where it
/// offers passkeys there. Shown once the page is interactive and both the browser and the server
/// can do passkeys.
#[component]
pub fn PasskeyLogin() -> impl IntoView {
    let hydrated = use_hydrated();
    let available = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let trouble = RwSignal::new(None::<Trouble>);
    let logged_in = move |outcome: Result<LoginOutcome, ApiError>| match outcome {
        Ok(LoginOutcome::LoggedIn) => {
            super::go_home();
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(Trouble::Api(e)),
    };
    let logged_in = StoredValue::new(logged_in);
    Effect::new(move |_| {
        if !hydrated.get() || !webauthn::supported() {
            return;
        }
        leptos::task::spawn_local(async move {
            // Asking for a ceremony tells whether the server has passkeys at all.
            let Ok(options) = api::start_passkey_login().await else {
                return;
            };
            available.set(true);
            if !webauthn::autofill_supported().await {
                return;
            }
            // The autofill: answered when the person picks a passkey in the user name field, where
            // the focus then is. An answer without that choice (a browser under automation answers
            // at once) is not taken: the person may be about to log in with their password.
            if let Ok(answer) = webauthn::get(options.options, true).await
                && webauthn::focused("username")
            {
                let outcome = api::finish_passkey_login(answer).await;
                if let Err(e) = logged_in.with_value(|f| f(outcome)) {
                    trouble.set(Some(e));
                }
            }
        });
    });
    let sign_in = move |_| {
        busy.set(true);
        trouble.set(None);
        leptos::task::spawn_local(async move {
            let result = async {
                let options = api::start_passkey_login().await?;
                let answer = webauthn::get(options.options, false).await?;
                let outcome = api::finish_passkey_login(answer).await;
                logged_in.with_value(|f| f(outcome))
            }
            .await;
            if let Err(e) = result {
                trouble.set(Some(e));
            }
            busy.set(false);
        });
    };
    view! {
        {alert(trouble)}
        <Show when=move || available.get()>
            <button type="button" class="button secondary" disabled=move || busy.get() on:click=sign_in>
                {tr(T::LoginWithPasskey)}
            </button>
        </Show>
    }
}

/// The second step with a passkey instead of a code.
#[component]
pub fn PasskeySecondFactor() -> impl IntoView {
    // Shown once the page is interactive: the WebAuthn dialog needs the script, and a control
    // that cannot work yet is not shown at all.
    let hydrated = use_hydrated();
    let busy = RwSignal::new(false);
    let trouble = RwSignal::new(None::<Trouble>);
    let use_passkey = move |_| {
        busy.set(true);
        trouble.set(None);
        leptos::task::spawn_local(async move {
            let result: Result<LoginOutcome, Trouble> = async {
                let options = api::start_passkey_second_factor().await?;
                let answer = webauthn::get(options.options, false).await?;
                Ok(api::finish_passkey_second_factor(answer).await?)
            }
            .await;
            match result {
                Ok(LoginOutcome::LoggedIn) => super::go_home(),
                Ok(_) => {}
                Err(e) => trouble.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        {alert(trouble)}
        <Show when=move || hydrated.get()>
            <button type="button" class="primary" disabled=move || busy.get() on:click=use_passkey>
                {tr(T::UsePasskey)}
            </button>
        </Show>
    }
}

/// **Use a passkey** on the set-password page of a reset: the new password typed in the form's
/// fields (`new_password`, `repeat_password`) is set through the link (`token`), confirmed with the
/// passkey instead of a code. Shown once the page is interactive.
#[component]
pub fn PasskeyReset(
    token: String,
    new_password: NodeRef<leptos::html::Input>,
    repeat_password: NodeRef<leptos::html::Input>,
) -> impl IntoView {
    let hydrated = use_hydrated();
    let busy = RwSignal::new(false);
    let trouble = RwSignal::new(None::<Trouble>);
    let navigate = StoredValue::new(use_navigate());
    let token = StoredValue::new(token);
    let typed = |input: NodeRef<leptos::html::Input>| {
        input.get_untracked().map(|i| i.value()).unwrap_or_default()
    };
    let use_passkey = move |_| {
        let (new, repeat) = (typed(new_password), typed(repeat_password));
        let token = token.get_value();
        busy.set(true);
        trouble.set(None);
        leptos::task::spawn_local(async move {
            let result: Result<(), Trouble> = async {
                let options = api::start_passkey_reset(token.clone()).await?;
                let answer = webauthn::get(options.options, false).await?;
                Ok(api::finish_passkey_reset(token, new, repeat, answer).await?)
            }
            .await;
            match result {
                Ok(()) => {
                    navigate.with_value(|n| n("/login?notice=password_set", Default::default()));
                }
                Err(e) => trouble.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        {alert(trouble)}
        <Show when=move || hydrated.get()>
            <button type="button" class="secondary" disabled=move || busy.get() on:click=use_passkey>
                {tr(T::UsePasskey)}
            </button>
        </Show>
    }
}

/// **Add a passkey**: the browser's dialog, then the passkey is stored under the device's name,
/// which the user may change (**Passkey name**, **Save**). `password`: the field to confirm with
/// when the login was a while ago (none in the enrolment after the password). `continue_to`: where
/// to go once added (the enrolment a client requires ends in a session), or "" to stay.
#[component]
pub fn AddPasskey(
    password: Option<NodeRef<leptos::html::Input>>,
    #[prop(into)] on_added: Callback<()>,
    continue_to: &'static str,
) -> impl IntoView {
    let hydrated = use_hydrated();
    let busy = RwSignal::new(false);
    let trouble = RwSignal::new(None::<Trouble>);
    let added = RwSignal::new(None::<PasskeyInfo>);
    let saved = RwSignal::new(false);
    let name_input = NodeRef::<leptos::html::Input>::new();
    let add = move |_| {
        busy.set(true);
        trouble.set(None);
        saved.set(false);
        let typed = password.and_then(|p| p.get_untracked()).map(|i| i.value());
        leptos::task::spawn_local(async move {
            let result: Result<PasskeyInfo, Trouble> = async {
                let options =
                    api::start_passkey_registration(typed.filter(|p| !p.is_empty())).await?;
                let answer = webauthn::create(options.options).await?;
                Ok(api::finish_passkey_registration(answer, webauthn::device_name()).await?)
            }
            .await;
            match result {
                Ok(info) => {
                    added.set(Some(info));
                    on_added.run(());
                }
                Err(e) => trouble.set(Some(e)),
            }
            busy.set(false);
        });
    };
    name_input.on_load(|input| {
        let _ = input.focus();
    });
    let rename = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(info) = added.get_untracked() else {
            return;
        };
        let name = name_input
            .get_untracked()
            .map(|i| i.value())
            .unwrap_or_default();
        leptos::task::spawn_local(async move {
            match api::rename_passkey(info.id, name).await {
                Ok(info) => {
                    added.set(Some(info));
                    saved.set(true);
                    trouble.set(None);
                    on_added.run(());
                }
                Err(e) => trouble.set(Some(e.into())),
            }
        });
    };
    view! {
        {alert(trouble)}
        {move || match added.get() {
            None => view! {
                <button type="button" class="secondary" disabled=move || !hydrated.get() || busy.get() on:click=add>
                    {tr(T::AddPasskey)}
                </button>
            }
                .into_any(),
            Some(info) => view! {
                <p role="status" class="notice">
                    {move || tr(if saved.get() { T::PasskeyNameSaved } else { T::PasskeyAdded })()}
                </p>
                <form class="form inline" on:submit=rename novalidate>
                    <label for="passkey_name">{tr(T::PasskeyName)}</label>
                    <input id="passkey_name" name="name" type="text" maxlength="64" node_ref=name_input value=info.name/>
                    <button type="submit" class="secondary">{tr(T::Save)}</button>
                </form>
                {(!continue_to.is_empty())
                    .then(|| view! { <a class="button primary" href=continue_to rel="external">{tr(T::Continue)}</a> })}
            }
                .into_any(),
        }}
    }
}

/// The Security page's passkeys: the list with **Remove**, and **Add a passkey**. Hidden where
/// passkeys cannot be used (SSO clients, clients that turned them off, no domain name).
#[component]
pub fn PasskeySettings() -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let refresh = RwSignal::new(0u32);
    let status = Resource::new(move || refresh.get(), |_| api::get_passkey_status());
    let trouble = RwSignal::new(None::<Trouble>);
    let removed = RwSignal::new(false);
    let password = NodeRef::<leptos::html::Input>::new();
    let remove = move |id: String| {
        removed.set(false);
        trouble.set(None);
        let typed = password.get_untracked().map(|i| i.value());
        leptos::task::spawn_local(async move {
            match api::remove_passkey(id, typed.filter(|p| !p.is_empty())).await {
                Ok(()) => {
                    removed.set(true);
                    refresh.update(|n| *n += 1);
                }
                Err(e) => trouble.set(Some(e.into())),
            }
        });
    };
    // Whether passkeys can be used here, known once the page is interactive (the controls need
    // the script anyway). A signal set by an effect, not a read of the resource: outside a
    // <Suspense/>, such a read would render differently on the server and while hydrating.
    let available = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(s)) = status.get() {
            available.set(s.available);
        }
    });
    let shown = move || available.get();
    let reauth = move || {
        status
            .get()
            .and_then(|s| s.ok())
            .is_some_and(|s| s.reauth_needed)
            || matches!(
                trouble.get(),
                Some(Trouble::Api(
                    ApiError::ReauthRequired | ApiError::WrongPassword
                ))
            )
    };
    view! {
        <Show when=shown>
            <h2>{tr(T::Passkeys)}</h2>
            <p class="hint">{tr(T::PasskeysIntro)}</p>
        </Show>
        {alert(trouble)}
        {move || removed.get().then(|| view! { <p role="status" class="notice">{tr(T::PasskeyRemoved)}</p> })}
        <Transition>
            {move || Suspend::new(async move {
                match status.await {
                    Ok(s) if s.available && s.passkeys.is_empty() => {
                        view! { <p>{tr(T::NoPasskeys)}</p> }.into_any()
                    }
                    Ok(s) if s.available => view! {
                        <ul class="passkeys">
                            {s.passkeys.into_iter().map(|p| {
                                let id = p.id.clone();
                                let last_used = p.last_used.clone();
                                view! {
                                    <li>
                                        <strong>{p.name.clone()}</strong>
                                        <span class="hint">
                                            " · " {tr(T::Added)} " " {p.added.clone()} " · " {tr(T::LastUsed)} " "
                                            {move || last_used.clone().unwrap_or_else(|| t(lang.get(), T::NeverUsed).to_owned())}
                                        </span>
                                        <button type="button" class="secondary" disabled=move || !hydrated.get()
                                            on:click=move |_| remove(id.clone())>
                                            {tr(T::Remove)}
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }
                        .into_any(),
                    _ => ().into_any(),
                }
            })}
        </Transition>
        <Show when=shown>
            <div class="form">
                <Show when=reauth>
                    <label for="passkey_password">{tr(T::Password)}</label>
                    <input id="passkey_password" type="password" autocomplete="current-password"
                        node_ref=password aria-describedby="passkey_password_hint"/>
                    <p id="passkey_password_hint" class="hint">{tr(T::PasswordAgainHint)}</p>
                </Show>
            </div>
            <AddPasskey password=Some(password) on_added=move |_| refresh.update(|n| *n += 1) continue_to=""/>
        </Show>
    }
}
