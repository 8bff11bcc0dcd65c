//! The page after login: who is logged in, and the way out.

use crate::api::{self, Me, Role};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;
use leptos_router::components::Redirect;

#[component]
pub fn HomePage() -> impl IntoView {
    let lang = use_lang();
    let me = Resource::new_str(|| (), |_| api::carried_user());
    view! {
        <Suspense fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match me.await.0 {
                    Ok(Some(me)) => view! { <LoggedIn me/> }.into_any(),
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }
                        .into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn LoggedIn(me: Me) -> impl IntoView {
    let role = match me.role {
        Role::User => T::RoleUser,
        Role::Admin => T::RoleAdmin,
        Role::Operator => T::RoleOperator,
    };
    view! {
        <section class="card">
            <h1>{tr(T::LoggedInAs)} " " {me.display_name()}</h1>
            <dl class="facts">
                <dt>{tr(T::Company)}</dt>
                <dd>{format!("{} ({})", me.company_name, me.company_id)}</dd>
                <dt>{tr(T::UserName)}</dt>
                <dd>{me.username.clone()}</dd>
                <dt>{tr(T::Role)}</dt>
                <dd>{tr(role)}</dd>
            </dl>

        </section>
    }
}
