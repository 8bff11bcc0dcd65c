//! User administration for a client's user administrators: list, search, filter, page; New user;
//! edit; resend the registration mail; send a password reset mail; deactivate and reactivate;
//! release a user's SSO binding (users of an SSO client).

use super::use_hydrated;
use crate::api::{
    ClearThrottle, DeleteUser, EndUserSessions, ReleaseSsoBinding, RemoveUserPasskeys,
    ResendRegistration, ResetUserTwoFactor,
};

use crate::api::{
    self, ApiError, CreateUser, Field, Invitation, Role, SendPasswordReset, SetUserActive,
    UpdateUser, UserStatus, UserSummary,
};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;

#[component]
pub fn UsersPage() -> impl IntoView {
    view! { <super::RoleGate allow=|r| matches!(r, Role::Admin | Role::Operator) page=|r| view! { <UserAdministration operator=r == Role::Operator/> }/> }
}

#[component]
fn UserAdministration(operator: bool) -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let (search, set_search) = signal(String::new());
    let (status, set_status) = signal(String::new());
    let (page, set_page) = signal(1u32);
    let (show_new, set_show_new) = signal(false);
    let (editing, set_editing) = signal(None::<UserSummary>);
    // The user whose deletion waits for confirmation.
    let (deleting, set_deleting) = signal(None::<UserSummary>);
    let feedback = super::Feedback::new();
    let error = feedback.error();
    // Whether the last activation change was a reactivation (the action's input is gone once it is done).
    let (reactivating, set_reactivating) = signal(false);

    let create = ServerAction::<CreateUser>::new();
    let update = ServerAction::<UpdateUser>::new();
    let resend = ServerAction::<ResendRegistration>::new();
    let reset = ServerAction::<SendPasswordReset>::new();
    let activate = ServerAction::<SetUserActive>::new();
    let reset_2fa = ServerAction::<ResetUserTwoFactor>::new();
    let end_sessions = ServerAction::<EndUserSessions>::new();
    let release_sso = ServerAction::<ReleaseSsoBinding>::new();
    let delete = ServerAction::<DeleteUser>::new();
    let remove_passkeys = ServerAction::<RemoveUserPasskeys>::new();

    // Each action reports its own outcome and refreshes the list.
    let report = move |outcome, ok| feedback.report(outcome, ok);
    Effect::new(move |_| {
        let outcome = create.value().get().map(|r| r.map(|_| ()));
        if matches!(outcome, Some(Ok(()))) {
            set_show_new.set(false);
        }
        report(outcome, T::UserCreated);
    });
    Effect::new(move |_| {
        let outcome = update.value().get().map(|r| r.map(|_| ()));
        if matches!(outcome, Some(Ok(()))) {
            set_editing.set(None);
        }
        report(outcome, T::UserSaved);
    });
    Effect::new(move |_| report(resend.value().get(), T::MailQueued));
    Effect::new(move |_| report(reset_2fa.value().get(), T::TwoFactorResetDone));
    Effect::new(move |_| report(release_sso.value().get(), T::SsoBindingReleased));
    Effect::new(move |_| report(remove_passkeys.value().get(), T::PasskeysRemoved));
    Effect::new(move |_| {
        report(
            end_sessions.value().get().map(|r| r.map(|_| ())),
            T::SessionsEnded,
        )
    });
    Effect::new(move |_| report(reset.value().get(), T::MailQueued));
    Effect::new(move |_| {
        let outcome = delete.value().get();
        if outcome.is_some() {
            set_deleting.set(None);
        }
        report(outcome, T::UserDeleted)
    });
    Effect::new(move |_| {
        let ok = if reactivating.get_untracked() {
            T::UserReactivated
        } else {
            T::UserDeactivated
        };
        report(activate.value().get(), ok)
    });

    let users = Resource::new(
        move || {
            (
                search.get(),
                status.get(),
                page.get(),
                create.version().get()
                    + update.version().get()
                    + resend.version().get()
                    + reset.version().get()
                    + activate.version().get()
                    + reset_2fa.version().get()
                    + delete.version().get()
                    + remove_passkeys.version().get(),
            )
        },
        |(search, status, page, _)| api::list_users(search, status, page),
    );

    view! {
        <h1>{tr(T::UserAdministration)}</h1>
        {feedback.view()}
        <div class="toolbar">
            <label for="user_search">{tr(T::Search)}</label>
            <input
                id="user_search"
                type="search"
                prop:value=search
                on:input=move |ev| {
                    set_search.set(event_target_value(&ev));
                    set_page.set(1);
                }
            />
            <label for="status_filter">{tr(T::StatusFilter)}</label>
            <select
                id="status_filter"
                on:change=move |ev| {
                    set_status.set(event_target_value(&ev));
                    set_page.set(1);
                }
            >
                <option value="">{tr(T::AllStatuses)}</option>
                <option value="invited">{tr(T::StatusInvited)}</option>
                <option value="active">{tr(T::StatusActive)}</option>
                <option value="deactivated">{tr(T::StatusDeactivated)}</option>
            </select>
            <button
                type="button"
                class="primary"
                disabled=move || !hydrated.get()
                on:click=move |_| {
                    set_editing.set(None);
                    set_show_new.set(true);
                }
            >
                {tr(T::NewUser)}
            </button>
        </div>
        <Show when=move || show_new.get()>
            <UserFormView
                existing=None
                operator
                on_cancel=Callback::new(move |_| set_show_new.set(false))
                create=Some(create)
                update=None
                error=error
            />
        </Show>
        {move || {
            editing
                .get()
                .map(|user| {
                    view! {
                        <UserFormView
                            existing=Some(user)
                            operator
                            on_cancel=Callback::new(move |_| set_editing.set(None))
                            create=None
                            update=Some(update)
                            error=error
                        />
                    }
                })
        }}
        {move || deleting.get().map(|user| view! { <ConfirmDelete user delete set_deleting/> })}
        <ThrottledList version=activate.version()/>
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match users.await {

                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    Ok(found) => {
                        let pages = found.total.div_ceil(u64::from(found.page_size)).max(1) as u32;
                        let current = found.page;
                        let first_page = current <= 1;
                        let last_page = current >= pages;
                        view! {
                            <p class="hint">{move || crate::i18n::user_count(lang.get(), found.total)}</p>
                            {if found.users.is_empty() {
                                view! { <p>{tr(T::NoUsers)}</p> }.into_any()
                            } else {
                                view! {
                                    <table class="users">
                                        <thead>
                                            <tr>
                                                <th>{tr(T::FirstName)} " / " {tr(T::LastName)}</th>
                                                <th>{tr(T::UserName)}</th>
                                                <th>{tr(T::EmailAddress)}</th>
                                                <th>{tr(T::Role)}</th>
                                                <th>{tr(T::Status)}</th>
                                                <th>{tr(T::Invitation)}</th>
                                                <th>{tr(T::Actions)}</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {found
                                                .users
                                                .into_iter()
                                                .map(|user| {
                                                    view! {
                                                        <UserRow
                                                            user
                                                            set_editing
                                                            set_show_new
                                                            resend
                                                            reset
                                                            activate
                                                            set_reactivating
                                                            reset_2fa
                                                            end_sessions
                                                            release_sso
                                                            remove_passkeys
                                                            set_deleting
                                                        />
                                                    }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                }
                                    .into_any()
                            }}
                            <nav class="pager">
                                <button
                                    type="button"
                                    disabled=first_page
                                    on:click=move |_| set_page.set(current.saturating_sub(1).max(1))
                                >
                                    {tr(T::Previous)}
                                </button>
                                <span>{format!("{current} / {pages}")}</span>
                                <button
                                    type="button"
                                    disabled=last_page

                                    on:click=move |_| set_page.set(current + 1)
                                >
                                    {tr(T::Next)}
                                </button>
                            </nav>
                        }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

fn role_text(role: Role) -> T {
    match role {
        Role::User => T::RoleUser,
        Role::Admin => T::RoleAdmin,
        Role::Operator => T::RoleOperator,
    }
}

#[component]
fn UserRow(
    user: UserSummary,
    set_editing: WriteSignal<Option<UserSummary>>,
    set_show_new: WriteSignal<bool>,
    resend: ServerAction<ResendRegistration>,
    reset: ServerAction<SendPasswordReset>,
    activate: ServerAction<SetUserActive>,
    set_reactivating: WriteSignal<bool>,
    reset_2fa: ServerAction<ResetUserTwoFactor>,
    end_sessions: ServerAction<EndUserSessions>,
    release_sso: ServerAction<ReleaseSsoBinding>,
    remove_passkeys: ServerAction<RemoveUserPasskeys>,
    set_deleting: WriteSignal<Option<UserSummary>>,
) -> impl IntoView {
    let hydrated = use_hydrated();
    let status = match user.status {
        UserStatus::Invited => T::StatusInvited,
        UserStatus::Active => T::StatusActive,
        UserStatus::Deactivated => T::StatusDeactivated,
    };
    let invitation = match &user.invitation {
        Invitation::Pending { until } => {
            let until = until.clone();
            view! { <span>{tr(T::InvitationPending)} " " {until}</span> }.into_any()
        }
        Invitation::Expired => view! { <span>{tr(T::InvitationExpired)}</span> }.into_any(),
        Invitation::Accepted => view! { <span>{tr(T::InvitationAccepted)}</span> }.into_any(),
    };
    let name = format!("{} {}", user.first_name, user.last_name)
        .trim()
        .to_owned();
    let is_invited = user.status == UserStatus::Invited;
    let is_active = user.status == UserStatus::Active;
    let is_deactivated = user.status == UserStatus::Deactivated;
    let id = user.id.clone();
    let edited = user.clone();
    let to_delete = user.clone();
    let lang = use_lang();
    let passkeys = user.passkeys;
    let passkey_count = (passkeys > 0).then(|| {
        view! { <span class="hint deletion">{move || crate::i18n::passkey_count(lang.get(), passkeys)}</span> }
    });
    let deletion = user.deletion_date.clone().map(|date| {
        view! { <span class="hint deletion">{tr(T::DeletionOn)} " " {date}</span> }
    });
    view! {
        <tr>
            <td data-label=move || format!("{} / {}", tr(T::FirstName)(), tr(T::LastName)())>{name}</td>
            <td data-label=tr(T::UserName)>{user.username.clone()}</td>
            <td data-label=tr(T::EmailAddress)>{user.email.clone()}</td>
            <td data-label=tr(T::Role)>{tr(role_text(user.role))}</td>
            <td data-label=tr(T::Status) class="status">{tr(status)} {deletion} {passkey_count}</td>
            <td data-label=tr(T::Invitation)>{invitation}</td>
            <td class="actions">
                {row_action(true, T::Edit, hydrated, move || {
                    set_show_new.set(false);
                    set_editing.set(Some(edited.clone()));
                })}
                {row_action(is_invited, T::ResendRegistration, hydrated, {
                    let id = id.clone();
                    move || { resend.dispatch(ResendRegistration { id: id.clone() }); }
                })}
                {row_action(is_active, T::SendPasswordReset, hydrated, {
                    let id = id.clone();
                    move || { reset.dispatch(SendPasswordReset { id: id.clone() }); }
                })}
                {row_action(is_active, T::EndAllSessions, hydrated, {
                    let id = id.clone();
                    move || { end_sessions.dispatch(EndUserSessions { id: id.clone() }); }
                })}
                {row_action(user.two_factor, T::ResetTwoFactor, hydrated, {
                    let id = id.clone();
                    move || { reset_2fa.dispatch(ResetUserTwoFactor { id: id.clone() }); }
                })}
                {row_action(passkeys > 0, T::RemovePasskeys, hydrated, {
                    let id = id.clone();
                    move || { remove_passkeys.dispatch(RemoveUserPasskeys { id: id.clone() }); }
                })}
                {row_action(user.sso, T::ReleaseSsoBinding, hydrated, {
                    let id = id.clone();
                    move || { release_sso.dispatch(ReleaseSsoBinding { id: id.clone() }); }
                })}
                {row_action(!is_deactivated, T::Deactivate, hydrated, {
                    let id = id.clone();
                    move || {
                        set_reactivating.set(false);
                        activate.dispatch(SetUserActive { id: id.clone(), active: false });
                    }
                })}
                {row_action(is_deactivated, T::Reactivate, hydrated, move || {
                    set_reactivating.set(true);
                    activate.dispatch(SetUserActive { id: id.clone(), active: true });
                })}
                {row_action(true, T::Delete, hydrated, move || {
                    set_show_new.set(false);
                    set_editing.set(None);
                    set_deleting.set(Some(to_delete.clone()));
                })}
            </td>
        </tr>
    }
}

/// Asks before a user is deleted, naming them; the focus moves into the question.
#[component]
fn ConfirmDelete(
    user: UserSummary,
    delete: ServerAction<DeleteUser>,
    set_deleting: WriteSignal<Option<UserSummary>>,
) -> impl IntoView {
    let lang = use_lang();
    let hydrated = use_hydrated();
    let full = format!("{} {}", user.first_name, user.last_name);
    let who = match full.trim() {
        "" => user.username.clone(),
        name => format!("{name} ({})", user.username),
    };
    let title = move || crate::i18n::delete_user_title(lang.get(), &who);
    let cancel = NodeRef::<leptos::html::Button>::new();
    cancel.on_load(|button| {
        let _ = button.focus();
    });
    let id = user.id.clone();
    view! {
        <div class="confirm" role="dialog" aria-labelledby="delete_title" aria-describedby="delete_text">
            <h2 id="delete_title">{title}</h2>
            <p id="delete_text">{tr(T::DeleteUserConfirm)}</p>
            <div class="buttons">
                <button type="button" class="danger" disabled=move || !hydrated.get() || delete.pending().get()
                    on:click=move |_| { delete.dispatch(DeleteUser { id: id.clone() }); }>
                    {tr(T::Delete)}
                </button>
                <button type="button" class="secondary" node_ref=cancel on:click=move |_| set_deleting.set(None)>
                    {tr(T::Cancel)}
                </button>
            </div>
        </div>
    }
}

/// One button among a user row's actions, there only when `shown`; usable once the page is
/// interactive.
fn row_action(
    shown: bool,
    label: T,
    hydrated: ReadSignal<bool>,
    act: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    shown.then(|| {
        view! {
            <button type="button" disabled=move || !hydrated.get() on:click=move |_| act()>
                {tr(label)}
            </button>
        }
    })
}

/// The New user form, or the edit form of an existing user (whose user name stays).
#[component]
fn UserFormView(
    existing: Option<UserSummary>,
    operator: bool,
    on_cancel: Callback<()>,
    create: Option<ServerAction<CreateUser>>,
    update: Option<ServerAction<UpdateUser>>,
    error: ReadSignal<Option<ApiError>>,
) -> impl IntoView {
    let hydrated = use_hydrated();
    let invalid = move |field: Field| {
        move || {
            matches!(error.get(), Some(ApiError::Invalid { field: f, .. }) if f == field)
                .to_string()
        }
    };
    let value = |f: fn(&UserSummary) -> String| existing.as_ref().map(f).unwrap_or_default();
    let first = value(|u| u.first_name.clone());
    let last = value(|u| u.last_name.clone());
    let email = value(|u| u.email.clone());
    let username = value(|u| u.username.clone());
    let role = existing.as_ref().map(|u| u.role).unwrap_or(Role::User);
    let fields = move || {
        view! {
            <label for="first_name">{tr(T::FirstName)}</label>
            <input id="first_name" name="first_name" type="text" value=first.clone() aria-invalid=invalid(Field::FirstName) aria-describedby=super::feedback_describes(error, Field::FirstName)/>
            <label for="last_name">{tr(T::LastName)}</label>
            <input id="last_name" name="last_name" type="text" value=last.clone() aria-invalid=invalid(Field::LastName) aria-describedby=super::feedback_describes(error, Field::LastName)/>
            <label for="email">{tr(T::EmailAddress)}</label>
            <input id="email" name="email" type="email" value=email.clone() aria-invalid=invalid(Field::Email) aria-describedby=super::feedback_describes(error, Field::Email)/>
        }
    };
    let role_select = move || {
        view! {
            <label for="role">{tr(T::Role)}</label>
            <select id="role" name="role" aria-invalid=invalid(Field::Role) aria-describedby=super::feedback_describes(error, Field::Role)>
                <option value="user" selected=role == Role::User>{tr(T::RoleUser)}</option>
                <option value="admin" selected=role == Role::Admin>{tr(T::RoleAdmin)}</option>
                {operator
                    .then(|| {
                        view! {
                            <option value="operator" selected=role == Role::Operator>{tr(T::RoleOperator)}</option>
                        }
                    })}
            </select>
        }
    };
    let buttons = move || {
        view! {
            <div class="buttons">
                <button type="submit" class="primary" disabled=move || !hydrated.get()>{tr(T::Save)}</button>
                <button type="button" class="secondary" on:click=move |_| on_cancel.run(())>{tr(T::Cancel)}</button>
            </div>
        }
    };
    match (create, update, existing.clone()) {
        (Some(create), _, None) => view! {
            <ActionForm action=create attr:class="form user-form" attr:novalidate=true>
                {fields()}
                <label for="username">{tr(T::UserName)}</label>
                <input id="username" name="username" type="text" autocapitalize="none" spellcheck="false"
                    value=username.clone() aria-invalid=invalid(Field::UserName) aria-describedby=super::feedback_describes(error, Field::UserName)/>
                {role_select()}
                {buttons()}
            </ActionForm>
        }
            .into_any(),
        (_, Some(update), Some(user)) => view! {
            <ActionForm action=update attr:class="form user-form" attr:novalidate=true>
                <input type="hidden" name="id" value=user.id.clone()/>
                <p class="hint">{tr(T::UserName)} ": " {user.username.clone()}</p>
                {fields()}
                {role_select()}
                {buttons()}
            </ActionForm>
        }
            .into_any(),
        _ => ().into_any(),
    }
}

/// Accounts that failed to log in several times in a row, with a way to let them try at once.
#[component]
fn ThrottledList(version: RwSignal<usize>) -> impl IntoView {
    let hydrated = use_hydrated();
    let lang = use_lang();
    let clear = ServerAction::<ClearThrottle>::new();
    let throttled = Resource::new(
        move || (version.get(), clear.version().get()),
        |_| api::list_throttled(),
    );
    view! {
        {move || clear.value().get().map(|r| match r {
            Ok(()) => view! { <p role="status" class="notice">{tr(T::ThrottleCleared)}</p> }.into_any(),
            Err(e) => view! { <p role="alert" class="error">{e.message(lang.get())}</p> }.into_any(),
        })}
        <Transition>
            {move || Suspend::new(async move {
                throttled.await.ok().filter(|list| !list.is_empty()).map(|list| view! {
                    <h2>{tr(T::ThrottledAccounts)}</h2>
                    <ul class="throttled">
                        {list.into_iter().map(|account| {
                            let username = account.username.clone();
                            let second_factor = account.second_factor;
                            view! {
                                <li>
                                    <strong>{account.username.clone()}</strong>
                                    {second_factor.then(|| view! { " " {tr(T::ThrottledSecondFactor)} })}
                                    ": " {account.failures} " "
                                    {tr(T::FailedAttempts)} " " {account.wait_secs} " "
                                    <button type="button" disabled=move || !hydrated.get() on:click=move |_| {
                                        clear.dispatch(ClearThrottle { username: username.clone() });
                                    }>{tr(T::AllowLoginAgain)}</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                })
            })}
        </Transition>
    }
}
