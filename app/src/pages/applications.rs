//! The operators' Applications page: the applications (relying parties) that log people in
//! through promio.connect. A new application's client secret, and a rotated one, is shown once
//! right after saving, in a status area; the list never has it.

use super::use_hydrated;
use crate::api::{
    self, ApiError, ApplicationView, CreateApplication, CreatedApplication, DeleteApplication,
    Field, Role, RotateApplicationSecret,
};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;

#[component]
pub fn ApplicationsPage() -> impl IntoView {
    view! { <super::RoleGate allow=|r| r == Role::Operator page=|_| view! { <ApplicationConsole/> }/> }
}

#[component]
fn ApplicationConsole() -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let (show_new, set_show_new) = signal(false);
    // The application whose deletion waits for confirmation.
    let (deleting, set_deleting) = signal(None::<ApplicationView>);
    // The credentials shown once: the sentence that says why, and the values.
    let (shown, set_shown) = signal(None::<(T, CreatedApplication)>);
    let feedback = super::Feedback::new();
    let error = feedback.error();
    let create = ServerAction::<CreateApplication>::new();
    let delete = ServerAction::<DeleteApplication>::new();
    let rotate = ServerAction::<RotateApplicationSecret>::new();
    Effect::new(move |_| match create.value().get() {
        Some(Ok(created)) => {
            set_show_new.set(false);
            feedback.clear();
            set_shown.set(Some((T::ApplicationCreated, created)));
        }
        Some(Err(e)) => feedback.report(Some(Err(e)), T::ApplicationCreated),
        None => {}
    });
    Effect::new(move |_| match rotate.value().get() {
        Some(Ok(rotated)) => {
            feedback.clear();
            set_shown.set(Some((T::SecretRotated, rotated)));
        }
        Some(Err(e)) => {
            set_shown.set(None);
            feedback.report(Some(Err(e)), T::SecretRotated);
        }
        None => {}
    });
    Effect::new(move |_| {
        let outcome = delete.value().get();
        if outcome.is_some() {
            set_deleting.set(None);
            set_shown.set(None);
        }
        feedback.report(outcome, T::ApplicationDeleted);
    });
    let applications = Resource::new(
        move || create.version().get() + delete.version().get(),
        |_| api::list_applications(),
    );
    view! {
        <h1>{tr(T::OperatorApplications)}</h1>
        {feedback.view()}
        {move || shown.get().map(|(what, created)| view! { <Credentials what created/> })}
        <div class="toolbar">
            <button type="button" class="primary" disabled=move || !hydrated.get()
                on:click=move |_| { set_shown.set(None); set_deleting.set(None); set_show_new.set(true); }>
                {tr(T::NewApplication)}
            </button>
        </div>
        <Show when=move || show_new.get()>
            <ApplicationForm create error on_cancel=Callback::new(move |_| set_show_new.set(false))/>
        </Show>
        {move || deleting.get().map(|app| view! { <ConfirmDelete app delete set_deleting/> })}
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match applications.await {
                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p>{tr(T::NoApplications)}</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="users applications">
                            <thead><tr>
                                <th>{tr(T::Name)}</th><th>{tr(T::SsoClientId)}</th><th>{tr(T::AppType)}</th>
                                <th>{tr(T::CompanyId)}</th><th>{tr(T::RedirectUris)}</th><th>{tr(T::Actions)}</th>
                            </tr></thead>
                            <tbody>
                                {list.into_iter().map(|app| application_row(app, hydrated, rotate, set_deleting)).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// One application in the list, with its actions (a new secret only for a confidential one).
fn application_row(
    app: ApplicationView,
    hydrated: ReadSignal<bool>,
    rotate: ServerAction<RotateApplicationSecret>,
    set_deleting: WriteSignal<Option<ApplicationView>>,
) -> impl IntoView {
    let deleted = app.clone();
    let id = app.client_id.clone();
    let company = match app.company_id.clone() {
        Some(company) => view! { <span>{company}</span> }.into_any(),
        None => view! { <span class="hint">{tr(T::AnyCompany)}</span> }.into_any(),
    };
    let kind = if app.public {
        T::AppPublic
    } else {
        T::AppConfidential
    };
    let rotate_button = (!app.public).then(move || {
        view! {
            <button type="button" disabled=move || !hydrated.get() || rotate.pending().get()
                on:click=move |_| { rotate.dispatch(RotateApplicationSecret { client_id: id.clone() }); }>
                {tr(T::RotateSecret)}
            </button>
        }
    });
    view! {
        <tr>
            <td data-label=tr(T::Name)>{app.name.clone()}</td>
            <td data-label=tr(T::SsoClientId)><code>{app.client_id.clone()}</code></td>
            <td data-label=tr(T::AppType)>
                {tr(kind)}
                {(!app.pkce_required).then(|| view! { <br/><span class="hint">{tr(T::AppPkceOptional)}</span> })}
            </td>
            <td data-label=tr(T::CompanyId)>{company}</td>
            <td data-label=tr(T::RedirectUris)>
                <ul class="uris">
                    {app.redirect_uris.iter().map(|uri| view! { <li><code>{uri.clone()}</code></li> }).collect_view()}
                </ul>
            </td>
            <td class="actions">
                {rotate_button}
                <button type="button" disabled=move || !hydrated.get()
                    on:click=move |_| set_deleting.set(Some(deleted.clone()))>
                    {tr(T::Delete)}
                </button>
            </td>
        </tr>
    }
}

/// The client ID and (for a confidential application) the client secret, once: after saving a
/// new application or rotating a secret. The focus moves to the client ID, ready to copy.
#[component]
fn Credentials(what: T, created: CreatedApplication) -> impl IntoView {
    let first = NodeRef::<leptos::html::Input>::new();
    first.on_load(|input| {
        let _ = input.focus();
    });
    let client_id = created.client_id.clone();
    let secret = created.client_secret.clone();
    view! {
        <div role="status" class="notice credentials">
            <p>{tr(what)}</p>
            <div class="form">
                <label for="new_client_id">{tr(T::SsoClientId)}</label>
                <input id="new_client_id" type="text" readonly=true value=client_id class="secret"
                    spellcheck="false" node_ref=first/>
                {secret.map(|secret| view! {
                    <label for="new_client_secret">{tr(T::ClientSecret)}</label>
                    <input id="new_client_secret" type="text" readonly=true value=secret class="secret"
                        autocomplete="off" spellcheck="false" aria-describedby="secret_shown_once"/>
                    <p id="secret_shown_once"><strong>{tr(T::SecretShownOnce)}</strong></p>
                })}
            </div>
        </div>
    }
}

/// The New application form. A refused field is marked and points to the page's error message,
/// which names it.
#[component]
fn ApplicationForm(
    create: ServerAction<CreateApplication>,
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
    // A field with a hint of its own: the hint, and the error when it names the field.
    let described = move |hint: &'static str, field: Field| {
        move || match super::feedback_describes(error, field)() {
            Some(id) => format!("{hint} {id}"),
            None => hint.to_owned(),
        }
    };
    view! {
        <ActionForm action=create attr:class="form user-form" attr:novalidate=true>
            <label for="app_name">{tr(T::Name)}</label>
            <input id="app_name" name="name" type="text" aria-invalid=invalid(Field::Name)
                aria-describedby=super::feedback_describes(error, Field::Name)/>
            <label for="redirect_uris">{tr(T::RedirectUris)}</label>
            <textarea id="redirect_uris" name="redirect_uris" rows="3" autocapitalize="none" spellcheck="false"
                aria-invalid=invalid(Field::RedirectUris)
                aria-describedby=described("redirect_uris_hint", Field::RedirectUris)></textarea>
            <p class="hint" id="redirect_uris_hint">{tr(T::OneUriPerLine)}</p>
            <label for="post_logout_redirect_uris">{tr(T::PostLogoutRedirectUris)}</label>
            <textarea id="post_logout_redirect_uris" name="post_logout_redirect_uris" rows="2"
                autocapitalize="none" spellcheck="false" aria-invalid=invalid(Field::PostLogoutRedirectUris)
                aria-describedby=described("post_logout_redirect_uris_hint", Field::PostLogoutRedirectUris)></textarea>
            <p class="hint" id="post_logout_redirect_uris_hint">{tr(T::OneUriPerLine)}</p>
            <label for="backchannel_logout_uri">{tr(T::BackchannelLogoutUri)}</label>
            <input id="backchannel_logout_uri" name="backchannel_logout_uri" type="url" autocapitalize="none"
                spellcheck="false" aria-invalid=invalid(Field::BackchannelLogoutUri)
                aria-describedby=super::feedback_describes(error, Field::BackchannelLogoutUri)/>
            <label for="app_company_id">{tr(T::CompanyId)}</label>
            <input id="app_company_id" name="company_id" type="text" autocapitalize="none" spellcheck="false"
                aria-invalid=invalid(Field::CompanyId)
                aria-describedby=described("app_company_id_hint", Field::CompanyId)/>
            <p class="hint" id="app_company_id_hint">{tr(T::AppCompanyHint)}</p>
            <label class="check">
                <input type="checkbox" name="public" value="on"/>
                {tr(T::PublicClient)}
            </label>
            <label class="check">
                <input type="checkbox" name="pkce_optional" value="on" aria-invalid=invalid(Field::PkceOptional)
                    aria-describedby=super::feedback_describes(error, Field::PkceOptional)/>
                {tr(T::PkceOptional)}
            </label>
            <div class="buttons">
                <button type="submit" class="primary" disabled=move || !hydrated.get() || create.pending().get()>
                    {tr(T::Save)}
                </button>
                <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>{tr(T::Cancel)}</button>
            </div>
        </ActionForm>
    }
}

/// Asks before an application is deleted, naming it; the focus moves into the question.
#[component]
fn ConfirmDelete(
    app: ApplicationView,
    delete: ServerAction<DeleteApplication>,
    set_deleting: WriteSignal<Option<ApplicationView>>,
) -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let who = format!("{} ({})", app.name, app.client_id);
    let title = move || crate::i18n::delete_application_title(lang.get(), &who);
    let cancel = NodeRef::<leptos::html::Button>::new();
    cancel.on_load(|button| {
        let _ = button.focus();
    });
    let id = app.client_id.clone();
    view! {
        <div class="confirm" role="dialog" aria-labelledby="delete_app_title" aria-describedby="delete_app_text">
            <h2 id="delete_app_title">{title}</h2>
            <p id="delete_app_text">{tr(T::DeleteApplicationConfirm)}</p>
            <div class="buttons">
                <button type="button" class="danger" disabled=move || !hydrated.get() || delete.pending().get()
                    on:click=move |_| { delete.dispatch(DeleteApplication { client_id: id.clone() }); }>
                    {tr(T::Delete)}
                </button>
                <button type="button" class="secondary" node_ref=cancel on:click=move |_| set_deleting.set(None)>
                    {tr(T::Cancel)}
                </button>
            </div>
        </div>
    }
}
