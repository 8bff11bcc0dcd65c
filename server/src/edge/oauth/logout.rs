//! Logout for the applications: RP-initiated logout (`/oauth/logout`, OpenID Connect RP-Initiated
//! Logout 1.0) and back-channel logout (OpenID Connect Back-Channel Logout 1.0).
//!
//! RP-initiated (GET, or the confirmation's POST):
//! ```text
//! id_token_hint ── signed by a stored key (expired too), our issuer, no `events` (a logout
//!    │             token is no ID token) ─▶ its aud names the app
//!    │ (a client_id beside it must name the same app, else an error page)
//! post_logout_redirect_uri ── registered exactly for that app ─▶ the target (+ state)
//!    │ not registered, or no app named ─▶ error page (400), never a redirect
//! no session ──────────────────────────────────────────▶ target, or "You are logged out"
//! session of the hint's `sub` and `sid` ─▶ ended now ─▶ target, or "You are logged out"
//! session, no hint (or another user's or session's) ─▶ confirmation page: a form posting back
//!    here with a token bound to the session (HMAC of its hash) ─▶ POST with that token ─▶ ended
//! ```
//! A bare GET never ends a session: a link on another site cannot log anyone out, and an ID
//! token of an earlier session (its `sid`) cannot end the current one. A POST from another
//! site's page (the Origin check lets it through: applications may post their logout request)
//! is answered with a redirect to the same request as a GET, without the confirmation's token:
//! the GET carries the session cookie (SameSite=Lax) the POST did not, and only this site's
//! own form confirms. Anonymous refusals are audited once per address and hour
//! ([`crate::idm::throttle::count_anonymous_refusal`]) and counted in the metrics every time.
//!
//! Back-channel: an application took part in a session when a code was issued to it in it
//! (`oauth_participations`). The sweeper ([`spawn_sweeper`], every [`SWEEP_EVERY`] and when
//! [`wake`]d) finds participations whose session is gone or past its idle or absolute limit —
//! whichever way it ended: logout, the user or an administrator ending it, deactivation,
//! deletion, a new login in the browser, expiry — and ends each in one transaction with the
//! logout token for its application (when it registered a back-channel URI) written to
//! `oauth_logout_outbox`. Delivery ([`deliver_due`], a loop of its own, woken by the sweeper
//! when it queued a token) claims a row with one conditional UPDATE (so two instances never send
//! one token twice), POSTs `logout_token=…` with a 5 s timeout and no redirects, up to
//! [`CONCURRENT_DELIVERIES`] at once (an application that never answers holds up only its own
//! token), deletes it on a 2xx, else tries again after 30 s, doubling up to an hour, and gives up
//! after two days. A retry sends a token signed again with a new `jti`, `iat` and `exp`: relying
//! parties refuse an expired token, and one that took the first delivery but whose answer never
//! arrived would refuse the same `jti` again as a replay (mod_auth_openidc does).

use crate::domain::audit::{AuditAction, Event, Outcome};
pub use crate::domain::limits::GIVE_UP_AFTER_SECS;
use crate::edge::principal::{self, CurrentSession};
use crate::edge::request::HttpState;
use crate::idm::Core;
use crate::idm::apps::{self, App};
use crate::idm::throttle::count_anonymous_refusal;
use crate::infra::error::ServiceResult;
use crate::store::oauth_logout::{EndedParticipation, LogoutOutboxRow, NewLogout};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::reqwest;
use promio_app::api::ApiError;
use promio_app::i18n::{Lang, T, t};
use promio_app::ssr::RequestCtx;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// How often the sweeper looks for ended sessions (and due deliveries) when not woken.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Life of a logout token.
pub const LOGOUT_TOKEN_SECS: i64 = 120;
/// A queued token older than this is signed again before it is sent.
const RESIGN_AFTER_SECS: i64 = 60;
/// The longest one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait after the first failed delivery; it doubles with every failure, up to
/// [`MAX_RETRY_SECS`].
pub const FIRST_RETRY_SECS: i64 = 30;
pub const MAX_RETRY_SECS: i64 = 3600;
/// Deliveries under way at once.
pub const CONCURRENT_DELIVERIES: usize = 32;
/// How long a claimed delivery is left to its instance: well above one pass, whose rows are
/// claimed at its start ([`BATCH`] / [`CONCURRENT_DELIVERIES`] × [`DELIVERY_TIMEOUT`] ≈ 32 s).
const CLAIM_SECS: i64 = 120;
/// Rows per statement.
const BATCH: i64 = 200;
/// The event a logout token carries (Back-Channel Logout 1.0, 2.4).
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The label of the key (derived from `SECRET_KEY`) that binds the confirmation to its session.
const CONFIRM_LABEL: &str = "oauth-logout-confirm";
/// The largest form body read.
const FORM_MAX: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// RP-initiated logout
// ---------------------------------------------------------------------------------------------

/// GET: the parameters in the query. Ends a session only with a valid hint of its user.
pub async fn end_session_get(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let req = crate::edge::request::request_ctx(&request);
    let params = parse(request.uri().query().unwrap_or_default().as_bytes());
    answer(&state, &req, &params, false).await
}

/// POST: the parameters as a form; the confirmation page posts here with its token. Another
/// site's form is sent on to the same request as a GET (see the module docs).
pub async fn end_session_post(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let req = crate::edge::request::request_ctx(&request);
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), FORM_MAX).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    if super::authorize::from_another_site(&state.core, &req) {
        return super::authorize::as_get("/oauth/logout", &bytes, &["confirm"]);
    }
    let params = parse(&bytes);
    answer(&state, &req, &params, true).await
}

/// The first value of each parameter (empty ones count as absent).
fn parse(bytes: &[u8]) -> HashMap<String, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        if !value.is_empty() {
            params
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    params
}

async fn answer(
    state: &HttpState,
    req: &RequestCtx,
    params: &HashMap<String, String>,
    post: bool,
) -> Response {
    let lang = params
        .get("ui_locales")
        .and_then(|l| l.split_whitespace().find_map(Lang::from_code))
        .unwrap_or_else(|| req.lang());
    let page = Page {
        lang,
        stylesheet: promio_app::ssr::stylesheet_href(&state.leptos_options),
    };
    let response = match end_session(&state.core, req, params, post, &page).await {
        Ok(response) => response,
        Err(e) => page.internal_error(e),
    };
    crate::edge::request::with_service_headers(response, req)
}

async fn end_session(
    core: &Core,
    req: &RequestCtx,
    params: &HashMap<String, String>,
    post: bool,
    page: &Page,
) -> ServiceResult<Response> {
    // An ID token this provider signed (an expired one too: it only says who asks).
    let hint = match param(params, "id_token_hint") {
        Some(jwt) => super::authorize::id_token_hint(core, jwt).await,
        None => None,
    };
    let client_id = match (hint.as_ref().and_then(audience), param(params, "client_id")) {
        (Some(aud), Some(given)) if aud != given => {
            refused(
                core,
                req,
                "client_id differs from the id_token_hint's audience",
            )
            .await?;
            return Ok(page.refused(T::LogoutInvalidRequest));
        }
        (Some(aud), _) => Some(aud.to_owned()),
        (None, given) => given.map(str::to_owned),
    };
    let app = match &client_id {
        Some(id) => apps::find(core, id).await?,
        None => None,
    };
    let target = match param(params, "post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &app {
            Some(app) if app.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                Some(with_state(uri, param(params, "state")))
            }
            _ => {
                let detail = match &app {
                    Some(app) => format!(
                        "post_logout_redirect_uri not registered for {}",
                        app.client_id
                    ),
                    None => "post_logout_redirect_uri without a known application".to_owned(),
                };
                refused(core, req, &detail).await?;
                return Ok(page.refused(T::AuthorizeUnknownRedirect));
            }
        },
    };

    let Some(session) = principal::current_session(core, req).await? else {
        // Nothing to end (any more).
        return finish(core, req, None, app.as_ref(), target, page).await;
    };
    // The hint ends the session only when it was issued in this very session, to its user.
    let sid = super::sid(core, &session.token_hash);
    let hinted = claim(hint.as_ref(), "sub") == Some(session.user.id.as_str())
        && claim(hint.as_ref(), "sid") == Some(sid.as_str());
    let confirmed = post
        && param(params, "confirm").is_some_and(|token| {
            let expected = confirm_token(core, &session.token_hash);
            bool::from(token.as_bytes().ct_eq(expected.as_bytes()))
        });
    if hinted || confirmed {
        return finish(core, req, Some(session), app.as_ref(), target, page).await;
    }
    let confirm = confirm_token(core, &session.token_hash);
    Ok(page.confirmation(
        &confirm,
        app.as_ref(),
        param(params, "post_logout_redirect_uri").filter(|_| target.is_some()),
        param(params, "state"),
    ))
}

/// The first value of a parameter.
fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(String::as_str)
}

/// A claim of a token that is a string.
fn claim<'a>(claims: Option<&'a Value>, name: &str) -> Option<&'a str> {
    claims?.get(name)?.as_str()
}

/// The application an ID token was issued to: its `aud` (a string, or the first of a list).
fn audience(claims: &Value) -> Option<&str> {
    match claims.get("aud")? {
        Value::String(aud) => Some(aud.as_str()),
        Value::Array(list) => list.first()?.as_str(),
        _ => None,
    }
}

/// The confirmation's token: bound to the session (an HMAC of its hash under a key derived from
/// `SECRET_KEY`), so a page of another site cannot make it, and it ends with the session.
fn confirm_token(core: &Core, session_hash: &str) -> String {
    let key =
        crate::infra::crypto::derive_key(core.settings.secret_key.expose_secret(), CONFIRM_LABEL);
    URL_SAFE_NO_PAD.encode(crate::infra::crypto::derive_key(&key, session_hash))
}

/// Ends the session (if any) as the logout route does, and goes on to the application's
/// post-logout page or shows that the person is logged out.
async fn finish(
    core: &Core,
    req: &RequestCtx,
    session: Option<CurrentSession>,
    app: Option<&App>,
    target: Option<String>,
    page: &Page,
) -> ServiceResult<Response> {
    let user = session.as_ref().map(|s| s.user.clone());
    let ended = core
        .end_session(session, &principal::caller(core, req))
        .await?;
    principal::write_cookies(core, req, &ended.cookies);
    if let Some(user) = &user {
        let detail = match app {
            Some(app) => format!("client_id={}", app.client_id),
            None => "no application named".to_owned(),
        };
        let ip = principal::client_ip(req);
        let event = Event::own(user, AuditAction::OAuthLogout, Outcome::Success)
            .detail(&detail)
            .ip(ip.as_deref());
        crate::infra::audit::record(&core.store, event, core.clock.now()).await?;
        wake(core);
    }
    let mut response = match target {
        Some(uri) => match HeaderValue::from_str(&uri) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => page.logged_out(),
        },
        None => page.logged_out(),
    };
    // As the logout route: Back must not show a logged-in page from the cache.
    response
        .headers_mut()
        .insert("clear-site-data", HeaderValue::from_static("\"cache\""));
    Ok(response)
}

/// Counts a refused logout request, and records it (never a token) when it is the first from
/// the client's address in [`crate::idm::throttle::REFUSALS_WINDOW`]: anyone can send them.
async fn refused(core: &Core, req: &RequestCtx, detail: &str) -> ServiceResult<()> {
    core.metrics.oauth_error("logout", "invalid_request");
    let now = core.clock.now();
    let bucket = principal::client_ip_bucket(req);
    let bucket = bucket.as_deref();
    if !count_anonymous_refusal(&core.store, "oauth-logout", bucket, now).await? {
        tracing::debug!(detail, "logout request refused");
        return Ok(());
    }
    let detail = format!("{detail} (further ones from this address this hour are only counted)");
    let ip = principal::client_ip(req);
    let event = Event::new(AuditAction::OAuthRefused, Outcome::Refused)
        .detail(&detail)
        .ip(ip.as_deref());
    crate::infra::audit::record(&core.store, event, now).await?;
    tracing::info!(detail = detail.as_str(), "logout request refused");
    Ok(())
}

/// `uri` with `state` (when sent) added to its query.
fn with_state(uri: &str, state: Option<&str>) -> String {
    let Some(state) = state else {
        return uri.to_owned();
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("state", state)
        .finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

/// The plain pages of the logout (no script; the site's stylesheet).
struct Page {
    lang: Lang,
    stylesheet: String,
}

impl Page {
    fn html(&self, status: StatusCode, title: &str, body: &str) -> Response {
        use crate::infra::mail::templates::escape;
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><link rel=\"stylesheet\" href=\"{css}\"></head>\
             <body><main><section class=\"card\"><h1>{title}</h1>{body}</section></main>\
             </body></html>\n",
            code = self.lang.code(),
            title = escape(title),
            css = escape(&self.stylesheet),
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response()
    }

    fn login_link(&self) -> String {
        use crate::infra::mail::templates::escape;
        format!(
            "<p><a href=\"/login\">{}</a></p>",
            escape(t(self.lang, T::BackToLogin))
        )
    }

    fn logged_out(&self) -> Response {
        let body = self.login_link();
        self.html(StatusCode::OK, t(self.lang, T::YouAreLoggedOut), &body)
    }

    fn refused(&self, text: T) -> Response {
        use crate::infra::mail::templates::escape;
        let body = format!(
            "<p role=\"alert\" class=\"error\">{}</p>{}",
            escape(t(self.lang, text)),
            self.login_link()
        );
        let title = t(self.lang, T::LogoutRefusedTitle);
        self.html(StatusCode::BAD_REQUEST, title, &body)
    }

    fn internal_error(&self, error: crate::infra::error::ServiceError) -> Response {
        use crate::infra::mail::templates::escape;
        // The mapping logs the cause under the request's id, which the message names.
        let error = ApiError::from(error);
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = format!(
            "<p role=\"alert\" class=\"error\">{}</p>",
            escape(&error.message(self.lang))
        );
        self.html(status, t(self.lang, T::LogoutRefusedTitle), &body)
    }

    /// "Log out of promio.connect?" with a form that posts back with the session's token and the
    /// request's (checked) parameters.
    fn confirmation(
        &self,
        confirm: &str,
        app: Option<&App>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Response {
        use crate::infra::mail::templates::escape;
        let hidden = |name: &str, value: Option<&str>| {
            value
                .map(|v| {
                    format!(
                        "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                        escape(v)
                    )
                })
                .unwrap_or_default()
        };
        let body = format!(
            "<p>{text}</p><form method=\"post\" action=\"/oauth/logout\" class=\"form\">\
             {confirm}{client_id}{uri}{state}\
             <button type=\"submit\" class=\"primary\">{log_out}</button></form>\
             <p><a href=\"/home\">{stay}</a></p>",
            text = escape(t(self.lang, T::LogoutConfirmText)),
            confirm = hidden("confirm", Some(confirm)),
            client_id = hidden("client_id", app.map(|a| a.client_id.as_str())),
            uri = hidden("post_logout_redirect_uri", post_logout_redirect_uri),
            state = hidden("state", state),
            log_out = escape(t(self.lang, T::LogOut)),
            stay = escape(t(self.lang, T::StayLoggedIn)),
        );
        let mut response = self.html(StatusCode::OK, t(self.lang, T::LogoutConfirmTitle), &body);
        // The form's answer redirects to the application: CSP's form-action covers redirects
        // after a submission, so the page allows that one origin beside its own.
        let extra = post_logout_redirect_uri
            .and_then(|uri| url::Url::parse(uri).ok())
            .map(|url| url.origin().ascii_serialization())
            .filter(|origin| origin != "null")
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default();
        let csp = format!(
            "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
             form-action 'self'{extra}"
        );
        if let Ok(value) = HeaderValue::from_str(&csp) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Back-channel logout
// ---------------------------------------------------------------------------------------------

/// Runs the sweeper and, in a task of its own, the delivery until the process ends (or the
/// handle is aborted, which ends both): each every [`SWEEP_EVERY`]; the sweeper at once when
/// [`wake`]d, the delivery at once when the sweeper queued a token. Delivery never holds up the
/// sweeping, nor the other way round.
pub fn spawn_sweeper(core: Arc<Core>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let queued = Arc::new(tokio::sync::Notify::new());
        // Held by this task: dropped (and the delivery loop aborted) when this one ends.
        let mut delivery = tokio::task::JoinSet::new();
        delivery.spawn(delivery_loop(Arc::clone(&core), Arc::clone(&queued)));
        loop {
            match sweep_once(&core).await {
                Ok(0) => {}
                Ok(_) => queued.notify_one(),
                Err(e) => {
                    let reason = format!("{e:#}");
                    tracing::warn!(
                        error = %reason,
                        "back-channel logout: finding ended sessions failed; trying again later"
                    );
                }
            }
            tokio::select! {
                () = core.op.logout_wake.notified() => {},
                () = tokio::time::sleep(SWEEP_EVERY) => {},
            }
        }
    })
}

/// Delivers what is due every [`SWEEP_EVERY`], and at once when `queued` is notified.
async fn delivery_loop(core: Arc<Core>, queued: Arc<tokio::sync::Notify>) {
    loop {
        if let Err(e) = deliver_due(&core).await {
            let reason = format!("{e:#}");
            tracing::warn!(
                error = %reason,
                "back-channel logout: delivery could not use the outbox; trying again later"
            );
        }
        tokio::select! {
            () = queued.notified() => {},
            () = tokio::time::sleep(SWEEP_EVERY) => {},
        }
    }
}

/// Wakes this instance's sweeper (a session ended here a moment ago). A wake while it works is
/// kept for its next wait.
pub fn wake(core: &Core) {
    core.op.logout_wake.notify_one();
}

/// Ends every participation whose session has ended, queuing the logout token of each
/// application with a back-channel URI. Returns how many tokens were queued.
pub async fn sweep_once(core: &Core) -> anyhow::Result<usize> {
    let mut queued = 0;
    loop {
        let now = core.clock.now();
        let ended = core
            .store
            .ended_oauth_participations(
                now - core.sessions.idle_secs,
                now - core.sessions.absolute_secs,
                BATCH,
            )
            .await?;
        let found = ended.len();
        for participation in &ended {
            if end_participation(core, participation, now).await? {
                queued += 1;
            }
        }
        if (found as i64) < BATCH {
            return Ok(queued);
        }
    }
}

/// Ends one participation (with its token queued); true when a token was queued by this call.
async fn end_participation(
    core: &Core,
    participation: &EndedParticipation,
    now: i64,
) -> anyhow::Result<bool> {
    let token = match &participation.backchannel_logout_uri {
        Some(_) => Some(logout_token(core, participation, now).await?),
        None => None,
    };
    let id = crate::store::new_id();
    let logout = match (&participation.backchannel_logout_uri, &token) {
        (Some(uri), Some(token)) => Some(NewLogout {
            id: &id,
            uri: uri.as_str(),
            logout_token: token.as_str(),
        }),
        _ => None,
    };
    let ended = core
        .store
        .end_oauth_participation(
            &participation.session_hash,
            &participation.client_id,
            logout,
            now,
        )
        .await?;
    if ended {
        tracing::info!(
            client_id = %participation.client_id,
            user_id = %participation.user_id,
            queued = token.is_some(),
            "an application's session ended"
        );
    }
    Ok(ended && token.is_some())
}

/// The logout token (Back-Channel Logout 1.0, 2.4): no `nonce`, typed `logout+jwt`.
async fn logout_token(
    core: &Core,
    participation: &EndedParticipation,
    now: i64,
) -> anyhow::Result<String> {
    let mut events = serde_json::Map::new();
    events.insert(BACKCHANNEL_EVENT.to_owned(), json!({}));
    let claims = json!({
        "iss": super::issuer(core),
        "aud": participation.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_SECS,
        "jti": crate::store::new_id(),
        "sub": participation.user_id,
        "sid": participation.sid,
        "events": events,
    });
    crate::idm::signing::sign(core, &claims, "logout+jwt")
        .await
        .map_err(|e| anyhow::anyhow!("signing a logout token: {e}"))
}

/// Sends every due logout token that no other instance has claimed, up to
/// [`CONCURRENT_DELIVERIES`] at once, and returns when each has been answered or timed out.
/// Returns how many were delivered.
pub async fn deliver_due(core: &Core) -> anyhow::Result<usize> {
    let now = core.clock.now();
    let due = core.store.due_backchannel_logouts(now, BATCH).await?;
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DELIVERIES));
    // Only the requests run as tasks of their own (they need nothing of `core`); their outcomes
    // are recorded here as they come in. Dropped on an early return, the set aborts the rest,
    // whose rows another pass takes once their claim has run out.
    let mut posts = tokio::task::JoinSet::new();
    for row in due {
        if !core
            .store
            .claim_backchannel_logout(&row.id, now, now + CLAIM_SECS)
            .await?
        {
            continue;
        }
        let token = current_token(core, &row.logout_token, row.attempts > 0).await;
        let slots = Arc::clone(&slots);
        posts.spawn(async move {
            // The semaphore is never closed: a permit always comes.
            let _slot = slots.acquire_owned().await.ok();
            let outcome = post(&row.uri, &token).await;
            (row, outcome)
        });
    }
    let mut delivered = 0;
    let mut failed = None;
    while let Some(joined) = posts.join_next().await {
        let recorded = match joined {
            Ok((row, outcome)) => record(core, &row, outcome).await,
            Err(e) => Err(anyhow::anyhow!("a back-channel delivery task failed: {e}")),
        };
        match recorded {
            Ok(true) => delivered += 1,
            Ok(false) => {}
            // The others are still recorded; the first error is reported.
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(delivered),
    }
}

/// Records the outcome of one attempt at a claimed row; true when delivered.
async fn record(
    core: &Core,
    row: &LogoutOutboxRow,
    outcome: Result<(), String>,
) -> anyhow::Result<bool> {
    match outcome {
        Ok(()) => {
            core.store.delete_backchannel_logout(&row.id).await?;
            core.metrics.backchannel_logout("sent");
            tracing::info!(client_id = %row.client_id, "back-channel logout delivered");
            Ok(true)
        }
        Err(reason) => {
            let now = core.clock.now();
            let attempts = row.attempts + 1;
            if now - row.created_at >= GIVE_UP_AFTER_SECS {
                core.store.delete_backchannel_logout(&row.id).await?;
                core.metrics.backchannel_logout("given_up");
                tracing::warn!(
                    client_id = %row.client_id,
                    attempts,
                    %reason,
                    "back-channel logout given up"
                );
            } else {
                let next = now + retry_after(attempts);
                core.store
                    .retry_backchannel_logout(&row.id, attempts, next)
                    .await?;
                core.metrics.backchannel_logout("retry");
                tracing::warn!(
                    client_id = %row.client_id,
                    attempts,
                    %reason,
                    "back-channel logout failed; trying again later"
                );
            }
            Ok(false)
        }
    }
}

/// The wait after the `attempts`-th failure: 30 s, doubling, at most an hour.
fn retry_after(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_RETRY_SECS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_RETRY_SECS)
}

/// The stored token for a first delivery, unless it is older than [`RESIGN_AFTER_SECS`]; for a
/// `retry`, or an old one, the same claims with a new `jti`, `iat` and `exp`, signed again (see
/// the module's note).
async fn current_token(core: &Core, stored: &str, retry: bool) -> String {
    let now = core.clock.now();
    let Some(mut claims) = crate::idm::signing::verify(core, stored).await else {
        return stored.to_owned();
    };
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(now);
    if !retry && now - iat < RESIGN_AFTER_SECS {
        return stored.to_owned();
    }
    if let Some(object) = claims.as_object_mut() {
        object.insert("jti".into(), json!(crate::store::new_id()));
        object.insert("iat".into(), json!(now));
        object.insert("exp".into(), json!(now + LOGOUT_TOKEN_SECS));
    }
    match crate::idm::signing::sign(core, &claims, "logout+jwt").await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "signing a logout token again failed; sending the stored one"
            );
            stored.to_owned()
        }
    }
}

/// The HTTP client for back-channel deliveries: no redirects (a registered URI is the one
/// called), [`DELIVERY_TIMEOUT`] in all.
fn http() -> anyhow::Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(DELIVERY_TIMEOUT)
        .timeout(DELIVERY_TIMEOUT)
        .build()?;
    Ok(CLIENT.get_or_init(|| client))
}

/// POSTs the token as a form; `Err` says why it did not count as delivered.
async fn post(uri: &str, token: &str) -> Result<(), String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish();
    let client = http().map_err(|e| format!("no HTTP client: {e}"))?;
    let response = client
        .post(uri)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", status.as_u16()))
    }
}

// ---------------------------------------------------------------------------------------------
// The Security page
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_30_seconds_doubling_up_to_an_hour() {
        assert_eq!(retry_after(1), 30);
        assert_eq!(retry_after(2), 60);
        assert_eq!(retry_after(3), 120);
        assert_eq!(retry_after(8), 3600);
        assert_eq!(retry_after(100), 3600);
    }

    #[test]
    fn the_state_goes_into_the_post_logout_uris_own_query() {
        assert_eq!(
            with_state("https://rp.example/bye", Some("a b")),
            "https://rp.example/bye?state=a+b"
        );
        assert_eq!(
            with_state("https://rp.example/bye?x=1", Some("s")),
            "https://rp.example/bye?x=1&state=s"
        );
        assert_eq!(
            with_state("https://rp.example/bye", None),
            "https://rp.example/bye"
        );
    }

    #[test]
    fn the_audience_is_a_string_or_the_first_of_a_list() {
        assert_eq!(audience(&json!({"aud": "app_a"})), Some("app_a"));
        assert_eq!(audience(&json!({"aud": ["app_b", "x"]})), Some("app_b"));
        assert_eq!(audience(&json!({"sub": "u"})), None);
    }

    #[test]
    fn repeated_and_empty_parameters_keep_the_first_value() {
        let params = parse(b"state=a&state=b&client_id=");
        assert_eq!(params.get("state").map(String::as_str), Some("a"));
        assert!(!params.contains_key("client_id"));
    }
}
