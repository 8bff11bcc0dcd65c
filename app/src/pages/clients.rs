//! The operator console: clients and their settings.

use super::use_hydrated;
use crate::api::{
    self, ApiError, ClientSummary, CreateClient, Field, Role, SetClientActive, TestSsoConnection,
    UpdateClient,
};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;

#[component]
pub fn ClientsPage() -> impl IntoView {
    view! { <super::RoleGate allow=|r| r == Role::Operator page=|_| view! { <ClientConsole/> }/> }
}

#[component]
fn ClientConsole() -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let (search, set_search) = signal(String::new());
    let (show_new, set_show_new) = signal(false);
    let (editing, set_editing) = signal(None::<ClientSummary>);
    let feedback = super::Feedback::new();
    let error = feedback.error();
    let (reactivating, set_reactivating) = signal(false);
    let create = ServerAction::<CreateClient>::new();
    let update = ServerAction::<UpdateClient>::new();
    let activate = ServerAction::<SetClientActive>::new();
    let report = move |outcome, ok| feedback.report(outcome, ok);
    Effect::new(move |_| {
        let outcome = create.value().get();
        if let Some(Ok(created)) = &outcome {
            set_show_new.set(false);
            // The list shows one page; the new client is shown by its company ID wherever it
            // sorts among the others.
            set_search.set(created.company_id.clone());
        }
        report(outcome.map(|r| r.map(|_| ())), T::ClientCreated);
    });
    Effect::new(move |_| {
        let outcome = update.value().get().map(|r| r.map(|_| ()));
        if matches!(outcome, Some(Ok(()))) {
            set_editing.set(None);
        }
        report(outcome, T::ClientSaved);
    });
    Effect::new(move |_| {
        let ok = if reactivating.get_untracked() {
            T::ClientReactivated
        } else {
            T::ClientDeactivated
        };
        report(activate.value().get(), ok)
    });
    let clients = Resource::new(
        move || {
            (
                search.get(),
                create.version().get() + update.version().get() + activate.version().get(),
            )
        },
        |(search, _)| api::list_clients(search, 1),
    );
    view! {
        <h1>{tr(T::Clients)}</h1>
        {feedback.view()}
        <div class="toolbar">
            <label for="client_search">{tr(T::Search)}</label>
            <input id="client_search" type="search" prop:value=search on:input=move |ev| set_search.set(event_target_value(&ev))/>
            <button type="button" class="primary" disabled=move || !hydrated.get()
                on:click=move |_| { set_editing.set(None); set_show_new.set(true); }>
                {tr(T::NewClient)}
            </button>
        </div>
        <Show when=move || show_new.get()>
            <ClientFormView existing=None create=Some(create) update=None error on_cancel=Callback::new(move |_| set_show_new.set(false))/>
        </Show>
        {move || editing.get().map(|c| view! {
            <ClientFormView existing=Some(c) create=None update=Some(update) error on_cancel=Callback::new(move |_| set_editing.set(None))/>
        })}
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match clients.await {
                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    Ok(page) => view! {
                        <p class="hint">{move || crate::i18n::client_count(lang.get(), page.total)}</p>
                        <table class="users">
                            <thead><tr>
                                <th>{tr(T::CompanyId)}</th><th>{tr(T::Name)}</th>
                                <th>{tr(T::RegistrationLinkHours)}</th><th>{tr(T::ResetLinkHours)}</th>
                                <th>{tr(T::Require2fa)}</th><th>{tr(T::Sso)}</th><th>{tr(T::Status)}</th><th>{tr(T::Actions)}</th>
                            </tr></thead>
                            <tbody>
                                {page.clients.into_iter().map(|c| {
                                    let edited = c.clone();
                                    let id = c.company_id.clone();
                                    let active = c.active;
                                    view! {
                                        <tr>
                                            <td data-label=tr(T::CompanyId)>{c.company_id.clone()}</td>
                                            <td data-label=tr(T::Name)>{c.name.clone()}</td>
                                            <td data-label=tr(T::RegistrationLinkHours)>{c.registration_link_hours}</td>
                                            <td data-label=tr(T::ResetLinkHours)>{c.reset_link_hours}</td>
                                            <td data-label=tr(T::Require2fa)>{tr(if c.require_2fa { T::Yes } else { T::No })}</td>
                                            <td data-label=tr(T::Sso)>{tr(if c.sso { T::Yes } else { T::No })}</td>
                                            <td data-label=tr(T::Status) class="status">{tr(if c.active { T::StatusActive } else { T::StatusDeactivated })}</td>
                                            <td class="actions">
                                                <button type="button" disabled=move || !hydrated.get() on:click=move |_| {
                                                    set_show_new.set(false);
                                                    set_editing.set(Some(edited.clone()));
                                                }>{tr(T::Edit)}</button>
                                                <button type="button" disabled=move || !hydrated.get() on:click=move |_| {
                                                    set_reactivating.set(!active);
                                                    activate.dispatch(SetClientActive { company_id: id.clone(), active: !active });
                                                }>{tr(if active { T::Deactivate } else { T::Reactivate })}</button>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ClientFormView(
    existing: Option<ClientSummary>,
    create: Option<ServerAction<CreateClient>>,
    update: Option<ServerAction<UpdateClient>>,
    error: ReadSignal<Option<ApiError>>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let hydrated = use_hydrated();
    let invalid = move |field: Field| {
        move || {
            matches!(error.get(), Some(ApiError::Invalid { field: f, .. }) if f == field)
                .to_string()
        }
    };
    let name = existing
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let reg = existing
        .as_ref()
        .map(|c| c.registration_link_hours)
        .unwrap_or(24)
        .to_string();
    let reset = existing
        .as_ref()
        .map(|c| c.reset_link_hours)
        .unwrap_or(24)
        .to_string();
    let deletion = existing
        .as_ref()
        .map(|c| c.deletion_months)
        .unwrap_or(6)
        .to_string();
    let inactivity = existing
        .as_ref()
        .and_then(|c| c.inactivity_months)
        .map(|m| m.to_string())
        .unwrap_or_default();
    let require = existing.as_ref().is_some_and(|c| c.require_2fa);
    let passkeys = existing.as_ref().is_none_or(|c| c.passkeys);
    let sso = existing.clone().unwrap_or_else(|| ClientSummary {
        company_id: String::new(),
        name: String::new(),
        registration_link_hours: 24,
        reset_link_hours: 24,
        deletion_months: 6,
        inactivity_months: None,
        passkeys: true,
        require_2fa: false,
        active: true,
        sso: false,
        sso_issuer: String::new(),
        sso_client_id: String::new(),
        sso_secret_set: false,
        sso_domains: Vec::new(),
        sso_email_claim: String::new(),
        sso_jit: false,
    });
    let lang = crate::use_lang();
    let issuer_input = NodeRef::<leptos::html::Input>::new();
    let test = ServerAction::<TestSsoConnection>::new();
    let test_result = move || {
        test.value().get().map(|r| match r {
            Ok(check) => view! {
                <div role="status" class="notice">
                    <p>{tr(T::ConnectionOk)} " (" {check.issuer.clone()} ", " {check.signing_keys} " keys)"</p>
                    <p>{tr(T::SsoRedirectUri)} " " <code>{check.redirect_uri.clone()}</code></p>
                </div>
            }.into_any(),
            Err(e) => view! { <p role="alert" class="error">{e.message(lang.get())}</p> }.into_any(),
        })
    };
    let fields = move || {
        let sso = sso.clone();
        view! {
            <label for="client_name">{tr(T::Name)}</label>
            <input id="client_name" name="name" type="text" value=name.clone() aria-invalid=invalid(Field::Name) aria-describedby=super::feedback_describes(error, Field::Name)/>
            <label for="registration_link_hours">{tr(T::RegistrationLinkHours)}</label>
            <input id="registration_link_hours" name="registration_link_hours" type="text" inputmode="numeric"
                value=reg.clone() aria-invalid=invalid(Field::RegistrationLinkHours) aria-describedby=super::feedback_describes(error, Field::RegistrationLinkHours)/>
            <label for="reset_link_hours">{tr(T::ResetLinkHours)}</label>
            <input id="reset_link_hours" name="reset_link_hours" type="text" inputmode="numeric"
                value=reset.clone() aria-invalid=invalid(Field::ResetLinkHours) aria-describedby=super::feedback_describes(error, Field::ResetLinkHours)/>
            <label for="deletion_months">{tr(T::DeletionMonths)}</label>
            <input id="deletion_months" name="deletion_months" type="text" inputmode="numeric"
                value=deletion.clone() aria-invalid=invalid(Field::DeletionMonths) aria-describedby=super::feedback_describes(error, Field::DeletionMonths)/>
            <label for="inactivity_months">{tr(T::InactivityMonths)}</label>
            <input id="inactivity_months" name="inactivity_months" type="text" inputmode="numeric"
                value=inactivity.clone() aria-invalid=invalid(Field::InactivityMonths)
                aria-describedby=move || match super::feedback_describes(error, Field::InactivityMonths)() {
                    Some(id) => format!("inactivity_months_hint {id}"),
                    None => "inactivity_months_hint".to_owned(),
                }/>
            <p class="hint" id="inactivity_months_hint">{tr(T::InactivityMonthsHint)}</p>
            <label class="check">
                <input type="checkbox" name="require_2fa" value="on" checked=require/>
                {tr(T::Require2fa)}
            </label>
            <input type="hidden" name="passkeys_shown" value="1"/>
            <label class="check">
                <input type="checkbox" name="passkeys" value="on" checked=passkeys/>
                {tr(T::AllowPasskeys)}
            </label>
            <fieldset class="sso">
                <legend>{tr(T::SsoSettings)}</legend>
                <p class="hint">{tr(T::SsoHint)}</p>
                <label for="sso_issuer">{tr(T::IssuerUrl)}</label>
                <input id="sso_issuer" name="sso_issuer" type="url" autocapitalize="none" spellcheck="false"
                    node_ref=issuer_input value=sso.sso_issuer.clone() aria-invalid=invalid(Field::SsoIssuer) aria-describedby=super::feedback_describes(error, Field::SsoIssuer)/>
                <label for="sso_client_id">{tr(T::SsoClientId)}</label>
                <input id="sso_client_id" name="sso_client_id" type="text" autocapitalize="none" spellcheck="false"
                    value=sso.sso_client_id.clone() aria-invalid=invalid(Field::SsoClientId) aria-describedby=super::feedback_describes(error, Field::SsoClientId)/>
                <label for="sso_client_secret">{tr(T::ClientSecret)}</label>
                <input id="sso_client_secret" name="sso_client_secret" type="password" autocomplete="off"
                    aria-invalid=invalid(Field::SsoClientSecret) aria-describedby=super::feedback_describes(error, Field::SsoClientSecret)/>
                {sso.sso_secret_set.then(|| view! { <p class="hint">{tr(T::ClientSecretKept)}</p> })}
                <label for="sso_domains">{tr(T::EmailDomains)}</label>
                <input id="sso_domains" name="sso_domains" type="text" autocapitalize="none" spellcheck="false"
                    value=sso.sso_domains.join(", ") aria-invalid=invalid(Field::SsoDomains) aria-describedby=super::feedback_describes(error, Field::SsoDomains)/>
                <label for="sso_email_claim">{tr(T::EmailClaim)}</label>
                <input id="sso_email_claim" name="sso_email_claim" type="text" autocapitalize="none" spellcheck="false"
                    placeholder="email" value=sso.sso_email_claim.clone() aria-invalid=invalid(Field::SsoEmailClaim) aria-describedby=super::feedback_describes(error, Field::SsoEmailClaim)/>
                <label class="check">
                    <input type="checkbox" name="sso_jit" value="on" checked=sso.sso_jit/>
                    {tr(T::SsoCreateUsers)}
                </label>
                <button type="button" class="secondary" disabled=move || !hydrated.get() || test.pending().get()
                    on:click=move |_| {
                        let issuer = issuer_input.get().map(|i| i.value()).unwrap_or_default();
                        test.dispatch(TestSsoConnection { issuer });
                    }>
                    {tr(T::TestConnection)}
                </button>
                {test_result}
            </fieldset>
            <div class="buttons">
                // An earlier connection test's result makes way for what Save answers.
                <button type="submit" class="primary" disabled=move || !hydrated.get()
                    on:click=move |_| test.value().set(None)>{tr(T::Save)}</button>
                <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>{tr(T::Cancel)}</button>
            </div>
        }
    };
    match (create, update, existing.clone()) {
        (Some(create), _, None) => view! {
            <ActionForm action=create attr:class="form user-form" attr:novalidate=true>
                <label for="company_id">{tr(T::CompanyId)}</label>
                <input id="company_id" name="company_id" type="text" autocapitalize="none" spellcheck="false"
                    aria-invalid=invalid(Field::CompanyId) aria-describedby=super::feedback_describes(error, Field::CompanyId)/>
                {fields()}
            </ActionForm>
        }.into_any(),
        (_, Some(update), Some(client)) => view! {
            <ActionForm action=update attr:class="form user-form" attr:novalidate=true>
                <input type="hidden" name="company_id" value=client.company_id.clone()/>
                <p class="hint">{tr(T::CompanyId)} ": " {client.company_id.clone()}</p>
                {fields()}
            </ActionForm>
        }.into_any(),
        _ => ().into_any(),
    }
}
