//! promio.connect's UI and API contract, shared by the server (feature `ssr`) and the browser
//! (feature `hydrate`).

pub mod api;
#[cfg(feature = "ssr")]
pub mod edge;
pub use promio_api::i18n;
mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod webauthn;

use i18n::{LANG_COOKIE, Lang, T, t};
use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, path};

/// Hydrates the page the server rendered. A logged-in page's header is a lazily loaded chunk
/// ([`session_nav`]); it is fetched first (the page names it in a preload link), so that the
/// header hydrates at once like the rest of the page.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    wasm_bindgen_futures::spawn_local(async {
        let logged_in = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector("nav.session").ok().flatten())
            .is_some();
        if logged_in {
            __preload_session_nav().await;
        }
        leptos::mount::hydrate_lazy(App);
    });
}

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let lang = request_lang();
    #[cfg(feature = "ssr")]
    set_page_csp();
    #[cfg(feature = "ssr")]
    let stylesheet = ssr::stylesheet_href(&options);
    #[cfg(not(feature = "ssr"))]
    let stylesheet = String::new();
    view! {
        <!DOCTYPE html>
        <html lang=lang.code()>
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                // No icon: spares every page load a request that would only find nothing.
                <link rel="icon" href="data:,"/>
                <link rel="stylesheet" id="leptos" href=stylesheet/>
                <HydrationScripts options/>
                <script nonce=leptos::nonce::use_nonce() inner_html=webauthn::BRIDGE_JS></script>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy: scripts from this origin only, plus the inline hydration
/// scripts that carry this response's nonce (the server provides one per request).
#[cfg(feature = "ssr")]
fn set_page_csp() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'"
    );
    if let Ok(value) = http::HeaderValue::from_str(&csp) {
        response.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The reactive language of the page, provided as context by [`App`].
#[derive(Clone, Copy)]
pub struct UiLang(pub RwSignal<Lang>);

/// Counts the sessions this page started without navigating (the activation that finishes an
/// enrolment a client requires): the session bar asks who is logged in again at each.
#[derive(Clone, Copy)]
pub struct SessionStarted(pub RwSignal<u32>);

/// Tells the session bar that a session started on this page.
pub fn session_started() {
    if let Some(SessionStarted(count)) = use_context::<SessionStarted>() {
        count.update(|n| *n += 1);
    }
}

pub fn use_lang() -> RwSignal<Lang> {
    use_context::<UiLang>()
        .map(|l| l.0)
        .unwrap_or_else(|| RwSignal::new(Lang::default()))
}

/// A reactive translated text.
pub fn tr(key: T) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || t(lang.get(), key)
}

/// The language the page starts with: from the request on the server, from `<html lang>` in the
/// browser (the server wrote it there).
fn request_lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        use_context::<http::request::Parts>()
            .map(|parts| {
                let cookie = parts
                    .headers
                    .get_all(http::header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(k, _)| *k == LANG_COOKIE)
                    .map(|(_, v)| v.to_owned());
                let accept = parts
                    .headers
                    .get(http::header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok());
                Lang::for_request(cookie.as_deref(), accept)
            })
            .unwrap_or_default()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|e| e.get_attribute("lang"))
            .and_then(|code| Lang::from_code(&code))
            .unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Lang::default()
    }
}

/// Remembers the chosen language for later visits and tells the document (screen readers, spell
/// checkers) which language it now speaks.
fn remember_lang(lang: Lang) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            if let Ok(html) = document.clone().dyn_into::<web_sys::HtmlDocument>() {
                let cookie = format!(
                    "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                    lang.code()
                );
                let _ = html.set_cookie(&cookie);
            }
            if let Some(root) = document.document_element() {
                let _ = root.set_attribute("lang", lang.code());
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = lang;
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The title's text is read when the page's head is written, which on the server can come
    // after the request's reactive arena is gone: it reads the language from the reference-counted
    // signal, which lives outside the arena (an arena signal read there panics the request).
    let title_lang = ArcRwSignal::new(request_lang());
    let lang = RwSignal::from(title_lang.clone());
    provide_context(UiLang(lang));
    provide_context(SessionStarted(RwSignal::new(0)));
    // `<html data-hydrated>` once the script has taken over the page: for tests, which otherwise
    // could not tell (nothing waits for it, so nothing else shows it).
    Effect::new(|_| {
        #[cfg(feature = "hydrate")]
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.set_attribute("data-hydrated", "");
        }
    });

    view! {
        <Title text=move || t(title_lang.get(), T::AppName)/>
        <Router>
            <header class="topbar">
                <a class="brand" href="/home">"promio.connect"</a>
                <SessionBar/>
                <LanguageSwitch/>
            </header>
            <main class="content">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("/") view=pages::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=pages::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/home") view={Lazy::<pages::HomeRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/set-password") view={Lazy::<pages::SetPasswordRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/forgot-password") view={Lazy::<pages::ForgotPasswordRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/sso") view={Lazy::<pages::SsoRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/users") view={Lazy::<pages::UsersRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/security") view={Lazy::<pages::SecurityRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/operator/clients") view={Lazy::<pages::ClientsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/applications") view={Lazy::<pages::ApplicationsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/admin/audit") view={Lazy::<pages::AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/login/two-factor") view={Lazy::<pages::TwoFactorLoginRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/login/two-factor-setup") view={Lazy::<pages::TwoFactorSetupRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// The logged-in person's navigation and the way out, on every page while logged in.
#[component]
fn SessionBar() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    // Asked again on every navigation, so that it follows logins and expiries, and when a
    // session started without one.
    let started = use_context::<SessionStarted>().map(|s| s.0);
    let me = Resource::new_str(
        move || (location.pathname.get(), started.map(|s| s.get())),
        |_| api::carried_user(),
    );
    view! {
        <Transition>
            {move || Suspend::new(async move {
                match me.await.0 {
                    Ok(Some(me)) => Some(session_nav(me).await),
                    _ => None,
                }
            })}
        </Transition>
    }
}

/// The bar's logged-in part. Its code is a chunk of its own (with the idle warning), fetched with
/// the first logged-in page: the login page, which every visitor loads, does without it. A page
/// the server renders with the bar names the chunk in a preload link.
#[leptos::lazy]
fn session_nav(me: api::Me) -> AnyView {
    let admin = matches!(me.role, api::Role::Admin | api::Role::Operator);
    view! {
        <nav class="session">
            {admin
                .then(|| {
                    view! {
                        <a href="/admin/users">{tr(T::UserAdministration)}</a>
                        <a href="/admin/audit">{tr(T::AuditLog)}</a>
                    }
                })}
            {(me.role == api::Role::Operator)
                .then(|| {
                    view! {
                        <a href="/operator/clients">{tr(T::Clients)}</a>
                        <a href="/applications">{tr(T::OperatorApplications)}</a>
                    }
                })}

            <a href="/security">{tr(T::Security)}</a>
            <span class="who">{me.display_name()}</span>

            // A plain form, so that logging out is a full page load: nothing of the logged-in
            // page stays in memory, and the server's Clear-Site-Data reaches the browser.
            <form method="post" action="/logout">
                <button type="submit" class="secondary">{tr(T::LogOut)}</button>
            </form>
            <IdleWarning ends_in_secs=me.session_ends_in_secs/>
        </nav>
    }
    .into_any()
}

/// How long before an idle session ends the warning comes: two minutes, or half the time left
/// when the page learns of less (a short idle timeout).
fn warn_before_secs(ends_in_secs: u64) -> u64 {
    120.min(ends_in_secs / 2)
}

/// Warns before an idle session ends (WCAG 2.2.1): a dialog with **Stay logged in**, which uses
/// the session and so keeps it. When the time is up, the login form says the session ended. The
/// watcher asks the server before it warns or ends anything (work in this page, or in another tab,
/// may have kept the session alive), and that asking does not count as use.
#[component]
fn IdleWarning(ends_in_secs: u64) -> impl IntoView {
    let showing = RwSignal::new(false);
    let stay = NodeRef::<leptos::html::Button>::new();
    let warn_before = warn_before_secs(ends_in_secs);
    // One watcher per bar: it stops when its bar is gone (the next page has its own).
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let mut wait = ends_in_secs.saturating_sub(warn_before).max(1);
            loop {
                sleep_ms(wait * 1000).await;
                let Some(shown) = showing.try_get_untracked() else {
                    return;
                };
                wait = match api::session_time_left().await {
                    Ok(Some(left)) if left > warn_before + 5 => {
                        showing.set(false);
                        left - warn_before
                    }
                    Ok(Some(left)) if left > 0 => {
                        if !shown {
                            showing.set(true);
                            sleep_ms(0).await;
                            if let Some(button) = stay.get_untracked() {
                                let _ = button.focus();
                            }
                        }
                        left + 1
                    }
                    Ok(_) => return session_ended(),
                    // Unreachable for now: ask again in a while.
                    Err(_) => warn_before + 30,
                };
            }
        });
    });
    // A use of the session; the watcher learns the new time when it next asks.
    let keep = move |_| {
        leptos::task::spawn_local(async move {
            match api::current_user().await {
                Ok(Some(_)) => showing.set(false),
                Ok(None) => session_ended(),
                Err(_) => {}
            }
        });
    };
    view! {
        <Show when=move || showing.get()>
            <div class="idle-warning" role="alertdialog" aria-labelledby="idle-warning-text"
                aria-describedby="idle-warning-text">
                <p id="idle-warning-text">{tr(T::IdleWarning)}</p>
                <button type="button" class="primary" node_ref=stay on:click=keep>
                    {tr(T::StayLoggedIn)}
                </button>
            </div>
        </Show>
    }
}

/// Waits in the browser (a timer's promise); at once elsewhere.
async fn sleep_ms(ms: u64) {
    #[cfg(feature = "hydrate")]
    {
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(window) = web_sys::window() {
                let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ms;
}

/// The session is gone: the login form, loaded afresh, says so.
fn session_ended() {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign("/login?notice=session_ended");
    }
}

/// The language switch: a form that posts the choice to `/lang` (which remembers it and shows
/// the page again), switched in place once the page is interactive.
#[component]
fn LanguageSwitch() -> impl IntoView {
    let lang = use_lang();
    let location = leptos_router::hooks::use_location();
    let back = move || {
        let search = location.search.get();
        let path = location.pathname.get();
        if search.is_empty() {
            path
        } else {
            format!("{path}?{search}")
        }
    };
    view! {
        <form method="post" action="/lang" class="lang-switch" aria-label=tr(T::Language)>
            <input type="hidden" name="back" value=back/>
            {Lang::ALL
                .into_iter()
                .map(|option| {
                    view! {
                        <button
                            type="submit"
                            name="lang"
                            value=option.code()
                            lang=option.code()
                            aria-pressed=move || (lang.get() == option).to_string()
                            on:click=move |ev| {
                                ev.prevent_default();
                                lang.set(option);
                                remember_lang(option);
                            }
                        >
                            {option.native_name()}
                        </button>
                    }
                })
                .collect_view()}
        </form>
    }
}
