//! The audit log: a client's administrators see their client's events, operators everyone's.

use crate::api::{self, Role};
use crate::i18n::T;
use crate::{tr, use_lang};
use leptos::prelude::*;

#[component]
pub fn AuditPage() -> impl IntoView {
    view! { <super::RoleGate allow=|r| matches!(r, Role::Admin | Role::Operator) page=|_| view! { <AuditLog/> }/> }
}

#[component]
fn AuditLog() -> impl IntoView {
    let lang = use_lang();
    let user = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let page = RwSignal::new(1u32);
    let entries = Resource::new(
        move || (user.get(), action.get(), from.get(), to.get(), page.get()),
        |(user, action, from, to, page)| api::list_audit(user, action, from, to, page),
    );
    let csv = move || {
        let q = |s: &str| {
            s.replace(
                |c: char| !c.is_ascii_alphanumeric() && !"-._@".contains(c),
                "",
            )
        };
        format!(
            "/admin/audit.csv?user={}&action={}&from={}&to={}",
            q(&user.get()),
            q(&action.get()),
            q(&from.get()),
            q(&to.get())
        )
    };
    let field = move |id: &'static str, label: T, signal: RwSignal<String>, kind: &'static str| {
        view! {
            <label for=id>{tr(label)}</label>
            <input id=id type=kind prop:value=signal on:change=move |ev| {
                signal.set(event_target_value(&ev));
                page.set(1);
            }/>
        }
    };
    view! {
        <h1>{tr(T::AuditLog)}</h1>
        <div class="toolbar">
            {field("audit_user", T::UserName, user, "text")}
            {field("audit_action", T::Action, action, "text")}
            {field("audit_from", T::From, from, "date")}
            {field("audit_to", T::To, to, "date")}
            <a class="button secondary" href=csv rel="external" download="audit-log.csv">{tr(T::ExportCsv)}</a>
        </div>
        <Transition fallback=move || view! { <p>{tr(T::Working)}</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Err(e) => view! { <p role="alert" class="error">{e.message(lang.get_untracked())}</p> }.into_any(),
                    Ok(found) => {
                        let pages = found.total.div_ceil(u64::from(found.page_size)).max(1) as u32;
                        let current = found.page;
                        let first_page = current <= 1;
                        let last_page = current >= pages;
                        view! {
                            <table class="users audit">
                                <thead><tr>
                                    <th>{tr(T::Time)}</th><th>{tr(T::CompanyId)}</th><th>{tr(T::Actor)}</th>
                                    <th>{tr(T::Subject)}</th><th>{tr(T::Action)}</th><th>{tr(T::Outcome)}</th>
                                    <th>{tr(T::Detail)}</th><th>{tr(T::Ip)}</th>
                                </tr></thead>
                                <tbody>
                                    {found.entries.into_iter().map(|e| view! {
                                        <tr>
                                            <td data-label=tr(T::Time)>{e.at}</td>
                                            <td data-label=tr(T::CompanyId)>{e.company_id}</td>
                                            <td data-label=tr(T::Actor)>{e.actor}</td>
                                            <td data-label=tr(T::Subject)>{e.subject}</td>
                                            <td data-label=tr(T::Action)>{e.action}</td>
                                            <td data-label=tr(T::Outcome)>{e.outcome}</td>
                                            <td data-label=tr(T::Detail)>{e.detail}</td>
                                            <td data-label=tr(T::Ip)>{e.ip}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <nav class="pager">
                                <button type="button" disabled=first_page on:click=move |_| page.set(current.saturating_sub(1).max(1))>{tr(T::Previous)}</button>
                                <span>{format!("{current} / {pages}")}</span>
                                <button type="button" disabled=last_page on:click=move |_| page.set(current + 1)>{tr(T::Next)}</button>
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
