//! The forms that work without the page's script: the login, its second step, forgotten password,
//! the set-password link, the SSO email step and the language switch. Each page's `<form>` posts
//! to the page's own path; with the WASM loaded the same form calls the server function instead,
//! so a browser without script, with a proxy that drops WASM, or a person who submits before the
//! page has hydrated all get through. The answer is always a redirect (post, then redirect, then
//! get): on to the next page, or back to the form with the error and the typed values (never a
//! password or code) in a cookie of a minute (`promio_app::api::FormFlash`), which the page takes
//! while it renders and shows as the reactive form would. The address stays the page's own, and
//! a reload starts afresh.

use super::{HttpState, request_ctx};
use crate::domain::cookies::CookieIntent;
use crate::edge::principal::{Caller, PendingCode};
use crate::idm::{links, login, sso, two_factor};
use crate::infra::mail::templates::escape as escape_html;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use promio_app::api::{ApiError, FORM_FLASH_COOKIE, FormFlash, LoginForm, LoginOutcome};
use promio_app::edge::run;
use promio_app::i18n::{Lang, T, t};
use promio_app::ssr::RequestCtx;
use std::collections::HashMap;
use std::sync::Arc;

/// The form routes; each path is also a page (GET), which the leptos routes add.
pub(super) fn add(router: Router<HttpState>) -> Router<HttpState> {
    router
        .route("/login", post(login))
        .route("/login/two-factor", post(two_factor))
        .route("/forgot-password", post(forgot_password))
        .route("/set-password", post(set_password))
        .route("/sso", post(sso))
        .route("/lang", post(lang))
}

/// How long a form's answer waits for its page (it is taken at once, by the redirect's request).
const FLASH_SECS: i64 = 60;
/// How long the language chosen with the switch is kept: a year.
const LANG_COOKIE_SECS: i64 = 365 * 86_400;

/// A posted form's fields (the first value of each name; bytes that are not UTF-8 arrive as
/// U+FFFD, which the flows refuse as unreadable), with the request's context.
struct Posted {
    req: RequestCtx,
    fields: HashMap<String, String>,
}

impl Posted {
    async fn read(request: Request<Body>) -> Result<Posted, Response> {
        let req = request_ctx(&request);
        let bytes = axum::body::to_bytes(request.into_body(), super::BODY_LIMIT)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        let mut fields = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(&bytes) {
            fields
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Ok(Posted { req, fields })
    }

    fn field(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    /// A typed value to show again, cut to what its field accepts.
    fn echo(&self, name: &'static str, max_chars: usize) -> (&'static str, String) {
        (name, self.field(name).chars().take(max_chars).collect())
    }

    /// 303 to `location` with the cookies the flows set; never cached.
    fn redirect(self, location: &str) -> Response {
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        super::with_service_headers(response, &self.req)
    }

    /// Back to the form's page (at `location`: the page, with its own query if it has one) with
    /// the error and the values to show again.
    fn back(
        self,
        state: &HttpState,
        page: &str,
        location: &str,
        error: ApiError,
        echo: &[(&str, String)],
    ) -> Response {
        let flash = FormFlash {
            page: page.to_owned(),
            error,
            values: echo
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
        };
        let flash = CookieIntent::ShortLived(FORM_FLASH_COOKIE, flash.encode().into(), FLASH_SECS);
        crate::edge::principal::write_cookies(&state.core, &self.req, &[flash]);
        self.redirect(location)
    }
}

async fn login(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let posted = match Posted::read(request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let echo = [posted.echo("company_id", 64), posted.echo("username", 128)];
    let form = LoginForm {
        company_id: posted.field("company_id"),
        username: posted.field("username"),
        password: posted.field("password"),
    };
    let core = Arc::clone(&state.core);
    let result: Result<LoginOutcome, _> =
        run(core, &posted.req, |core, caller: Caller| async move {
            login::form_password_step(&core, &caller, form).await
        })
        .await;
    match result {
        Ok(outcome) => posted.onward(&state, outcome.next_page()),
        Err(e) => posted.back(&state, "/login", "/login", e, &echo),
    }
}

async fn two_factor(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let posted = match Posted::read(request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let code = posted.field("code");
    let core = Arc::clone(&state.core);
    let result: Result<LoginOutcome, _> = run(
        core,
        &posted.req,
        |core, (pending, caller): (PendingCode, Caller)| async move {
            two_factor::login(&core, pending.0, &caller, code).await
        },
    )
    .await;
    match result {
        Ok(outcome) => posted.onward(&state, outcome.next_page()),
        Err(e) => posted.back(&state, "/login/two-factor", "/login/two-factor", e, &[]),
    }
}

async fn forgot_password(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let posted = match Posted::read(request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let echo = [posted.echo("company_id", 64), posted.echo("username", 128)];
    let (company_id, username) = (posted.field("company_id"), posted.field("username"));
    let core = Arc::clone(&state.core);
    let result = run(core, &posted.req, |core, caller: Caller| async move {
        links::request_reset(&core, &caller, company_id, username).await
    })
    .await;
    match result {
        Ok(()) => posted.redirect("/forgot-password?sent=1"),
        Err(e) => posted.back(&state, "/forgot-password", "/forgot-password", e, &echo),
    }
}

async fn set_password(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let posted = match Posted::read(request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let token = posted.field("token");
    // Absent when the page asks for no code, as the reactive form sends it.
    let code = posted.fields.get("code").cloned();
    let (new_password, repeat_password) = (
        posted.field("new_password"),
        posted.field("repeat_password"),
    );
    let link = token.clone();
    let core = Arc::clone(&state.core);
    let result = run(core, &posted.req, |core, caller: Caller| async move {
        links::set_password(&core, &caller, link, new_password, repeat_password, code).await
    })
    .await;
    match result {
        Ok(()) => posted.redirect("/login?notice=password_set"),
        Err(e) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("token", &token)
                .finish();
            let location = format!("/set-password?{query}");
            posted.back(&state, "/set-password", &location, e, &[])
        }
    }
}

async fn sso(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let posted = match Posted::read(request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let echo = [posted.echo("email", 254)];
    let email = posted.field("email");
    let core = Arc::clone(&state.core);
    let result: Result<String, _> = run(core, &posted.req, |core, caller: Caller| async move {
        sso::start(&core, &caller, email).await
    })
    .await;
    match result {
        Ok(url) => posted.onward_to_provider(&url),
        Err(e) => posted.back(&state, "/sso", "/sso", e, &echo),
    }
}

impl Posted {
    /// On to the page after a login step. When an application's authorization request waits for
    /// this login (`crate::edge::oauth::authorize`), `/home` sends the browser on to that application,
    /// which a redirect of the form's post may not do (`form-action 'self'`, see
    /// [`Posted::onward_to_provider`]): a small page loads `/home` as a navigation of its own.
    fn onward(self, state: &HttpState, location: &str) -> Response {
        if location == "/home" && crate::edge::oauth::authorize::waiting(&state.core, &self.req) {
            return self.onward_page(location, T::AuthorizeContinuing);
        }
        self.redirect(location)
    }

    /// On to the identity provider's authorization URL. Not as a redirect of the form's post: the
    /// page's `form-action 'self'` forbids a form to lead to another site, redirects included. A
    /// small page sends the browser on instead (a refresh at once, and a link), as a navigation
    /// of its own.
    fn onward_to_provider(self, url: &str) -> Response {
        self.onward_page(url, T::SsoRedirecting)
    }

    fn onward_page(self, url: &str, text: T) -> Response {
        let lang = self.req.lang();
        let url = escape_html(url);
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"0; url={url}\">\
             <title>promio.connect</title></head>\
             <body><p role=\"status\"><a href=\"{url}\">{text}</a></p></body></html>\n",
            code = lang.code(),
            text = escape_html(t(lang, text)),
        );
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            page,
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        super::with_service_headers(response, &self.req)
    }
}

/// The language switch: remembers the choice and shows the page it was made on again (its path,
/// which the form sends: pages send no Referer).
async fn lang(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let posted = match Posted::read(request).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let back = local_path(&posted.field("back")).unwrap_or_else(|| "/login".to_owned());
    if let Some(lang) = Lang::from_code(&posted.field("lang")) {
        let chosen = CookieIntent::Language(lang.code(), Some(LANG_COOKIE_SECS));
        crate::edge::principal::write_cookies(&state.core, &posted.req, &[chosen]);
    }
    posted.redirect(&back)
}

/// A path on this site (with its query), or `None` for anything that could lead elsewhere.
///
/// The answer is the path as a URL parser normalises it (dot segments resolved, `%2e` among
/// them), and that is what is checked: `/.//evil.example` becomes `//evil.example`, which a
/// browser reads as another host. A path with an encoded slash or backslash is refused too: no
/// page has one, and a proxy or browser that decodes it would see `//` again.
fn local_path(back: &str) -> Option<String> {
    let base = url::Url::parse("http://this.site/").ok()?;
    let joined = base.join(back).ok()?;
    let path = joined.path();
    let lower = path.to_ascii_lowercase();
    let local = back.starts_with('/')
        && !back.starts_with("//")
        && !back.contains('\\')
        && joined.host_str() == Some("this.site")
        && !path.starts_with("//")
        && !path.contains('\\')
        && !lower.contains("%2f")
        && !lower.contains("%5c");
    local.then(|| match joined.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_goes_back_only_to_a_path_of_this_site() {
        assert_eq!(local_path("/login").as_deref(), Some("/login"));
        assert_eq!(
            local_path("/set-password?token=abc").as_deref(),
            Some("/set-password?token=abc")
        );
        assert_eq!(local_path("/a/./b/../c").as_deref(), Some("/a/c"));
        for outside in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "",
            "/.//evil.example",
            "/%2e//evil.example",
            "/%2E//evil.example",
            "/%2e%2e//evil.example",
            "/a/..//evil.example",
            "/%2E%2F/evil.example",
            "/./%2F/evil",
            "/%5cevil.example",
            "/\t/evil.example",
        ] {
            assert_eq!(local_path(outside), None, "{outside:?}");
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html("https://idp/?a=1&b=\"<x>'"),
            "https://idp/?a=1&amp;b=&quot;&lt;x&gt;&#39;"
        );
    }
}
