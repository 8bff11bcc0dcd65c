//! The authorization endpoint (`/oauth/authorize`, GET and POST) and the login round trip.
//!
//! ```text
//! request ── client unknown, redirect_uri not registered exactly ─▶ error page (400, no redirect)
//!    │ any other fault ─────────────────────────────────────────▶ redirect_uri?error=…&state&iss
//!    ▼
//! session ── of another company than the application's ───────────▶ access_denied
//!    ├─ usable (no prompt=login, max_age kept) ─▶ code + participation ─▶ redirect_uri?code…
//!    ├─ none usable, prompt=none ─────────────────────────────────────▶ login_required
//!    └─ none usable ──▶ Waiting: the request stored (10 min) under the hash of the id in the
//!                       `authz` cookie ──▶ /login (company ID and user name filled in)
//! Waiting ── any login ends on a full page load of /home ──▶ [`resume`] ──▶ code as above
//! ```
//!
//! Invariants: nothing is sent to a redirect URI before the client is known and the URI is one
//! registered for it, exactly. A waiting request is consumed by one `DELETE` whose row count
//! decides, so it yields one code at most. A request that asked for a new login (`prompt=login`,
//! `max_age` passed) is finished only by a session that began after the request was made and is
//! not the session that was current then; until then the login form is shown even to a person
//! who is logged in. First-party applications ask for no consent. An `id_token_hint` naming
//! another user than the one logged in counts as a request for a new login (`prompt=none`:
//! `login_required`).
//!
//! Anyone can send requests here without an account, so what they leave behind is bounded per
//! client address: refusals without a user are audited once per address and hour
//! ([`crate::idm::throttle::count_anonymous_refusal`], counted in the metrics every time), and at most
//! [`WAITING_PER_ADDRESS`] requests are stored per address in [`super::REQUEST_SECS`] (beyond:
//! an error page, 429). A form another site posts here is answered with a redirect to the same
//! request as a GET, which carries the session cookie (SameSite=Lax) that the POST did not.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::cookies::CookieIntent;
use crate::edge::principal::{self, CurrentSession};
use crate::edge::request::HttpState;
use crate::idm::Core;
use crate::idm::apps::{self, App};
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::store::oauth_grants::NewCode;
use crate::store::users::UserRow;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promio_app::api::ApiError;
use promio_app::i18n::{LANG_COOKIE, Lang, T, t};
use promio_app::ssr::RequestCtx;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// The cookie that names the request waiting for a login (HttpOnly, SameSite=Lax, 10 minutes).
pub const COOKIE: &str = "authz";

/// The scopes granted when asked for; any other is dropped.
const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The `prompt` values understood (`consent` and `select_account` ask nothing more of a
/// first-party application).
const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

/// Requests stored for a login per client address (its [`crate::idm::throttle::ip_bucket`]) in
/// [`super::REQUEST_SECS`]: what one address can make the table hold.
pub const WAITING_PER_ADDRESS: i64 = 300;

/// The parameters that may appear once only.
const SINGLE: [&str; 14] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "id_token_hint",
];

/// The longest `state` and `nonce` kept (they are stored and sent back). Generous: some relying
/// parties carry the address to return to inside `state`.
const MAX_ECHOED: usize = 4096;

/// The largest form body read (the authorization request is a handful of short fields).
const BODY_LIMIT: usize = 16 * 1024;

/// The request's parameters: the first value of each name (parameters without a value count as
/// absent, RFC 6749 3.1), and the names that came more than once.
struct Params {
    first: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    fn parse(bytes: &[u8]) -> Params {
        let mut first = HashMap::new();
        let mut repeated = Vec::new();
        for (name, value) in url::form_urlencoded::parse(bytes) {
            if value.is_empty() {
                continue;
            }
            if first.contains_key(name.as_ref()) {
                repeated.push(name.into_owned());
            } else {
                first.insert(name.into_owned(), value.into_owned());
            }
        }
        Params { first, repeated }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.first.get(name).map(String::as_str)
    }
}

/// A validated request: what its code will carry, and what the login must satisfy. Stored as
/// JSON while the request waits for a login.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Validated {
    client_id: String,
    redirect_uri: String,
    /// The granted scope: `openid` and the known scopes asked for.
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    /// `prompt=none`: the person is never asked.
    no_prompt: bool,
    /// `prompt=login` (or `max_age=0`): a new login is asked for.
    fresh_login: bool,
    max_age: Option<i64>,
    login_hint: Option<String>,
    /// The login page the person is sent to (with the fields to fill in).
    #[serde(default)]
    login_page: String,
    /// The session that was current when a new login was asked for; it cannot finish the request.
    #[serde(default)]
    stale_session: Option<String>,
}

/// What goes back to the application with an error.
struct Back<'a> {
    app: &'a App,
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

/// GET: the parameters in the query.
pub async fn authorize_get(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let req = crate::edge::request::request_ctx(&request);
    let params = Params::parse(request.uri().query().unwrap_or_default().as_bytes());
    answer(&state.core, &req, params).await
}

/// POST: the parameters as a form (OpenID Connect Core 3.1.2.1). Posted by another site's page,
/// the browser left the session cookie off (SameSite=Lax): the same request as a GET instead.
pub async fn authorize_post(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let req = crate::edge::request::request_ctx(&request);
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), BODY_LIMIT).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    };
    if from_another_site(&state.core, &req) {
        return as_get("/oauth/authorize", &bytes, &[]);
    }
    answer(&state.core, &req, Params::parse(&bytes)).await
}

/// Whether the browser says the request comes from another site's page, as the Origin check of
/// `crate::edge::http::security` decides: `Sec-Fetch-Site` other than `same-origin` or `none`, or,
/// without it, an `Origin` other than this site's.
pub(super) fn from_another_site(core: &Core, req: &RequestCtx) -> bool {
    match req.header("sec-fetch-site") {
        Some(site) => site != "same-origin" && site != "none",
        None => req
            .header("origin")
            .is_some_and(|origin| origin != core.settings.public_origin()),
    }
}

/// A form another site's page posted (a top-level navigation), answered with 303 to `path` with
/// the form's fields (but those named in `drop`) as its query. The browser follows with a GET,
/// which carries the SameSite=Lax session cookie that it left off the cross-site POST.
pub(super) fn as_get(path: &str, form: &[u8], drop: &[&str]) -> Response {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(form) {
        if !drop.iter().any(|d| *d == name) {
            query.append_pair(&name, &value);
        }
    }
    let query = query.finish();
    let location = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "unusable request").into_response(),
    }
}

/// The claims of an `id_token_hint`: an ID token this provider signed (an expired one too: a
/// hint only says who is meant) for its issuer. A logout token (it carries `events`) is no ID
/// token; anything else is no hint at all.
pub(super) async fn id_token_hint(core: &Core, jwt: &str) -> Option<Value> {
    let claims = crate::idm::signing::verify(core, jwt).await?;
    let issuer = super::issuer(core);
    let ours = claims.get("iss").and_then(Value::as_str) == Some(issuer.as_str());
    (ours && claims.get("events").is_none()).then_some(claims)
}

async fn answer(core: &Core, req: &RequestCtx, params: Params) -> Response {
    let response = match authorize(core, req, &params).await {
        Ok(response) => response,
        Err(e) => {
            core.metrics.oauth_error("authorize", "server_error");
            internal_error_page(req.lang(), e)
        }
    };
    crate::edge::request::with_service_headers(response, req)
}

async fn authorize(core: &Core, req: &RequestCtx, params: &Params) -> ServiceResult<Response> {
    let lang = req.lang();
    let once = |name: &str| !params.repeated.iter().any(|r| r == name);
    let app = match params.get("client_id") {
        Some(id) if once("client_id") => apps::find(core, id).await?,
        _ => None,
    };
    let Some(app) = app else {
        refused_event(core, req, None, None, "unknown client_id").await?;
        return Ok(error_page(
            core,
            lang,
            "invalid_client",
            T::AuthorizeUnknownClient,
        ));
    };
    let registered = params
        .get("redirect_uri")
        .filter(|uri| once("redirect_uri") && app.redirect_uris.iter().any(|r| r == uri));
    let Some(redirect_uri) = registered else {
        let detail = format!("redirect_uri not registered for {}", app.client_id);
        refused_event(core, req, None, None, &detail).await?;
        return Ok(error_page(
            core,
            lang,
            "invalid_request",
            T::AuthorizeUnknownRedirect,
        ));
    };
    let back = Back {
        app: &app,
        redirect_uri,
        state: params.get("state"),
    };
    match for_app(core, req, params, &back).await {
        Ok(response) => Ok(response),
        Err(e) => Ok(failed(core, &back, e)),
    }
}

/// The request of a known application with a registered `redirect_uri`: every answer from here
/// on goes back to the application.
async fn for_app(
    core: &Core,
    req: &RequestCtx,
    params: &Params,
    back: &Back<'_>,
) -> ServiceResult<Response> {
    let (app, redirect_uri) = (back.app, back.redirect_uri);
    let mut request = match validate(app, redirect_uri, params) {
        Ok(request) => request,
        Err((error, description)) => {
            return refuse(core, req, back, None, error, description).await;
        }
    };
    let ui_lang = params
        .get("ui_locales")
        .and_then(|l| l.split_whitespace().find_map(Lang::from_code));
    let hint = match params.get("id_token_hint") {
        Some(jwt) => id_token_hint(core, jwt).await,
        None => None,
    };
    let hint_sub = hint
        .as_ref()
        .and_then(|c| c.get("sub"))
        .and_then(Value::as_str);

    let now = core.clock.now();
    let session = principal::current_session(core, req).await?;
    // The application means someone else than the person logged in: that person's login.
    let someone_else = session
        .as_ref()
        .is_some_and(|s| hint_sub.is_some_and(|sub| sub != s.user.id.as_str()));
    request.fresh_login |= someone_else;
    let needs_login = session.as_ref().is_some_and(|s| {
        request.fresh_login || request.max_age.is_some_and(|max| now - s.created_at > max)
    });
    match session {
        Some(s) if !someone_else && !belongs(app, &s.user) => {
            refuse(
                core,
                req,
                back,
                Some(&s.user),
                "access_denied",
                other_company(),
            )
            .await
        }
        Some(s) if !needs_login => issue(core, req, app, &request, &s).await,
        _ if request.no_prompt => {
            let description = if someone_else {
                "the person logged in is not the one id_token_hint names (prompt=none)"
            } else {
                "the person is not logged in (prompt=none)"
            };
            refuse(
                core,
                req,
                back,
                None,
                "login_required",
                description.to_owned(),
            )
            .await
        }
        session => {
            // A new login is asked for: it must begin after now, in a session other than this one.
            let login_after = (request.fresh_login || request.max_age.is_some()).then_some(now);
            request.stale_session = login_after
                .and(session.as_ref())
                .map(|s| s.token_hash.clone());
            request.login_page = login_page(app, &request, login_after.is_some());
            wait(core, req, app, &request, login_after, ui_lang).await
        }
    }
}

/// Checks every parameter but `client_id` and `redirect_uri` (checked before: faults here go back
/// to the application). The error is an OAuth error code and its description.
fn validate(
    app: &App,
    redirect_uri: &str,
    params: &Params,
) -> Result<Validated, (&'static str, String)> {
    let invalid = |text: &str| ("invalid_request", text.to_owned());
    if let Some(name) = SINGLE
        .iter()
        .find(|name| params.repeated.iter().any(|r| r == *name))
    {
        return Err(("invalid_request", format!("{name} must not be repeated")));
    }
    if params.get("request").is_some() {
        return Err((
            "request_not_supported",
            "request objects are not supported".to_owned(),
        ));
    }
    if params.get("request_uri").is_some() {
        return Err((
            "request_uri_not_supported",
            "request_uri is not supported".to_owned(),
        ));
    }
    match params.get("response_type") {
        None => return Err(invalid("response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err((
                "unsupported_response_type",
                "only response_type=code is supported".to_owned(),
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(invalid("only response_mode=query is supported"));
    }
    let asked: Vec<&str> = params.get("scope").unwrap_or_default().split(' ').collect();
    if !asked.contains(&"openid") {
        return Err(("invalid_scope", "the scope must contain openid".to_owned()));
    }
    let scope = SCOPES
        .iter()
        .filter(|s| asked.contains(*s))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");

    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => {
            Some(challenge.to_owned())
        }
        (Some(_), Some("S256")) => return Err(invalid("code_challenge is not an S256 challenge")),
        (Some(_), _) => return Err(invalid("code_challenge_method must be S256")),
        (None, Some(_)) => return Err(invalid("code_challenge_method without code_challenge")),
        (None, None) if app.public || app.pkce_required => {
            return Err(invalid("code_challenge (PKCE with S256) is required"));
        }
        (None, None) => None,
    };

    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if prompts.iter().any(|p| !PROMPTS.contains(p)) {
        return Err(invalid("a prompt value is not supported"));
    }
    let no_prompt = prompts.contains(&"none");
    if no_prompt && prompts.len() > 1 {
        return Err(invalid("prompt=none cannot be combined with other values"));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(secs) if secs >= 0 => Some(secs),
            _ => return Err(invalid("max_age must be a number of seconds")),
        },
    };
    let echoed = |name: &str| -> Result<Option<String>, (&'static str, String)> {
        match params.get(name) {
            Some(value) if value.chars().count() > MAX_ECHOED => {
                Err(invalid(&format!("{name} is too long")))
            }
            value => Ok(value.map(str::to_owned)),
        }
    };
    Ok(Validated {
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: echoed("state")?,
        nonce: echoed("nonce")?,
        code_challenge,
        no_prompt,
        fresh_login: prompts.contains(&"login") || max_age == Some(0),
        max_age,
        login_hint: params
            .get("login_hint")
            .map(str::trim)
            .filter(|h| !h.is_empty() && h.chars().count() <= 128)
            .map(str::to_owned),
        login_page: String::new(),
        stale_session: None,
    })
}

/// BASE64URL(SHA-256(verifier)): 43 characters of the base64url alphabet.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether the user may log in to the application (one bound to a company takes only its users).
fn belongs(app: &App, user: &UserRow) -> bool {
    app.client_row_id
        .as_deref()
        .is_none_or(|client| client == user.client_id.as_str())
}

fn other_company() -> String {
    "the application is for another company's users".to_owned()
}

/// The login form, with the company ID of a company-bound application and the user name the
/// application suggested filled in; `reauth` keeps a logged-in person on it.
fn login_page(app: &App, request: &Validated, reauth: bool) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(company_id) = &app.company_id {
        query.append_pair("company_id", company_id);
    }
    if let Some(hint) = &request.login_hint {
        query.append_pair("username", hint);
    }
    if reauth {
        query.append_pair("reauth", "1");
    }
    let query = query.finish();
    if query.is_empty() {
        "/login".to_owned()
    } else {
        format!("/login?{query}")
    }
}

/// Stores the request, hands the browser its id in the `authz` cookie and sends it to the login
/// (in the language of `ui_locales`, when one of ours). At most [`WAITING_PER_ADDRESS`] per
/// client address in [`super::REQUEST_SECS`]; beyond, an error page (429).
async fn wait(
    core: &Core,
    req: &RequestCtx,
    app: &App,
    request: &Validated,
    login_after: Option<i64>,
    ui_lang: Option<Lang>,
) -> ServiceResult<Response> {
    if let Some(bucket) = principal::client_ip_bucket(req) {
        let allowed = core
            .store
            .rate_limit(
                &format!("authz:{bucket}"),
                core.clock.now(),
                super::REQUEST_SECS,
                WAITING_PER_ADDRESS,
            )
            .await
            .context("counting the authorization requests of an address")?;
        if !allowed {
            let detail = format!(
                "too many waiting authorization requests from this address ({})",
                app.client_id
            );
            refused_event(core, req, None, Some(app), &detail).await?;
            return Ok(too_many(core, req.lang()));
        }
    }
    // For this login only: a session cookie, and none when the browser has that language already
    // (a longer-lived choice of the person's stays as it is).
    let ui_lang = ui_lang.filter(|l| req.cookie(LANG_COOKIE).as_deref() != Some(l.code()));
    if let Some(lang) = ui_lang {
        principal::write_cookies(core, req, &[CookieIntent::Language(lang.code(), None)]);
    }
    let id = crate::infra::token::issue();
    let params = serde_json::to_string(request).map_err(anyhow::Error::from)?;
    core.store
        .insert_oauth_request(
            &id.hash,
            &request.client_id,
            &params,
            login_after,
            core.clock.now(),
        )
        .await
        .context("storing an authorization request")?;
    let waiting = CookieIntent::ShortLived(COOKIE, id.secret, super::REQUEST_SECS);
    principal::write_cookies(core, req, &[waiting]);
    Ok(found(&request.login_page))
}

/// Issues a code for the session's user and sends the browser back to the application with it.
async fn issue(
    core: &Core,
    req: &RequestCtx,
    app: &App,
    request: &Validated,
    session: &CurrentSession,
) -> ServiceResult<Response> {
    let now = core.clock.now();
    let code = super::random_token();
    let code_hash = super::hash_token(&code);
    let grant_id = crate::store::new_id();
    let amr = core
        .store
        .session_amr(&session.token_hash)
        .await
        .context("reading how a session began")?;
    // A session without the column's value (older rows) counts as `[]`.
    let amr =
        serde_json::to_string(&super::parse_amr(amr.as_deref())).map_err(anyhow::Error::from)?;
    let sid = super::sid(core, &session.token_hash);
    let user_id = session.user.id.as_str();
    core.store
        .insert_oauth_code(&NewCode {
            code_hash: &code_hash,
            grant_id: &grant_id,
            client_id: &app.client_id,
            user_id,
            session_hash: &session.token_hash,
            redirect_uri: &request.redirect_uri,
            scope: &request.scope,
            nonce: request.nonce.as_deref(),
            code_challenge: request.code_challenge.as_deref(),
            auth_time: session.created_at,
            amr: &amr,
            created_at: now,
            expires_at: now + super::CODE_SECS,
            sid: &sid,
        })
        .await
        .context("storing an authorization code")?;
    let ip = principal::client_ip(req);
    let detail = format!("client_id={} scope={}", app.client_id, request.scope);
    let event = Event::new(AuditAction::OAuthAuthorize, Outcome::Success)
        .client(Some(&session.user.client_id))
        .actor(Some(user_id))
        .subject(Some(user_id))
        .detail(&detail)
        .ip(ip.as_deref());
    crate::infra::audit::record(&core.store, event, now).await?;
    tracing::info!(user_id, client_id = %app.client_id, "authorization code issued");
    let issuer = super::issuer(core);
    Ok(found(&with_query(
        &request.redirect_uri,
        &[
            ("code", Some(&code)),
            ("state", request.state.as_deref()),
            ("iss", Some(&issuer)),
        ],
    )))
}

/// Sends the error back to the application's (registered) redirect URI, and audits it.
async fn refuse(
    core: &Core,
    req: &RequestCtx,
    back: &Back<'_>,
    user: Option<&UserRow>,
    error: &'static str,
    description: String,
) -> ServiceResult<Response> {
    core.metrics.oauth_error("authorize", error);
    let detail = format!("{error}: {} ({description})", back.app.client_id);
    refused_event(core, req, user, Some(back.app), &detail).await?;
    let issuer = super::issuer(core);
    Ok(found(&with_query(
        back.redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(&description)),
            ("state", back.state),
            ("iss", Some(&issuer)),
        ],
    )))
}

/// A fault after the application and its `redirect_uri` are known goes back to the application,
/// as `server_error` (`temporarily_unavailable` while the database is out of reach) with the
/// request's `state` (RFC 6749 4.1.2.1), not as a page of ours: the application can tell its
/// user and try again. The mapping logs the cause under the request's id, which the description
/// names.
fn failed(core: &Core, back: &Back<'_>, error: ServiceError) -> Response {
    let error = super::OAuthError::from(error);
    core.metrics.oauth_error("authorize", error.error);
    let issuer = super::issuer(core);
    found(&with_query(
        back.redirect_uri,
        &[
            ("error", Some(error.error)),
            ("error_description", Some(&error.description)),
            ("state", back.state),
            ("iss", Some(&issuer)),
        ],
    ))
}

/// Audits a refusal: always when it concerns a user (a session's), else only the first from
/// the client's address in [`crate::idm::throttle::REFUSALS_WINDOW`] (the others are counted on the
/// address's counter row), so that anonymous requests cannot make the log grow without bound.
async fn refused_event(
    core: &Core,
    req: &RequestCtx,
    user: Option<&UserRow>,
    app: Option<&App>,
    detail: &str,
) -> ServiceResult<()> {
    let now = core.clock.now();
    let client_id = app.map(|a| a.client_id.as_str());
    let detail = match user {
        Some(_) => detail.to_owned(),
        None => {
            let bucket = principal::client_ip_bucket(req);
            let first = crate::idm::throttle::count_anonymous_refusal(
                &core.store,
                "oauth-authorize",
                bucket.as_deref(),
                now,
            )
            .await?;
            if !first {
                tracing::debug!(client_id, detail, "authorization request refused");
                return Ok(());
            }
            format!("{detail} (further ones from this address this hour are only counted)")
        }
    };
    let ip = principal::client_ip(req);
    let user_id = user.map(|u| u.id.as_str());
    let event = Event::new(AuditAction::OAuthRefused, Outcome::Refused)
        .client(user.map(|u| u.client_id.as_str()))
        .actor(user_id)
        .subject(user_id)
        .detail(&detail)
        .ip(ip.as_deref());
    crate::infra::audit::record(&core.store, event, now).await?;
    tracing::info!(
        client_id,
        detail = detail.as_str(),
        "authorization request refused"
    );
    Ok(())
}

/// `uri` with the pairs (those with a value) added to its query.
fn with_query(uri: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", query.finish())
}

fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "unusable redirect").into_response(),
    }
}

/// The page shown instead of a redirect when the application or its return address is unknown;
/// counted under `error`.
fn error_page(core: &Core, lang: Lang, error: &'static str, text: T) -> Response {
    core.metrics.oauth_error("authorize", error);
    page(lang, StatusCode::BAD_REQUEST, t(lang, text))
}

/// The page shown when an address has too many requests waiting for a login.
fn too_many(core: &Core, lang: Lang) -> Response {
    core.metrics
        .oauth_error("authorize", "temporarily_unavailable");
    let retry_after_secs = u64::try_from(super::REQUEST_SECS).unwrap_or(600);
    let error = ApiError::TooManyAttempts { retry_after_secs };
    let mut response = page(lang, StatusCode::TOO_MANY_REQUESTS, &error.message(lang));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn internal_error_page(lang: Lang, error: crate::infra::error::ServiceError) -> Response {
    // The mapping logs the cause under the request's id, which the message names.
    let error = ApiError::from(error);
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    page(lang, status, &error.message(lang))
}

fn page(lang: Lang, status: StatusCode, text: &str) -> Response {
    use crate::infra::mail::templates::escape;
    let title = escape(t(lang, T::AuthorizeRefusedTitle));
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\
         <body><main><h1>{title}</h1><p role=\"alert\">{text}</p>\
         <p><a href=\"/login\">{login}</a></p></main></body></html>\n",
        code = lang.code(),
        text = escape(text),
        login = escape(t(lang, T::BackToLogin)),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Where [`resume`] is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/home`, where every login ends.
    Home,
    /// `/` or `/login`.
    LoginForm,
}

/// What the login round trip makes of a page request.
pub enum Resumed {
    /// The answer: on to the application, or (from `/home`) back to the login form.
    Answer(Response),
    /// The login form is shown, even to a logged-in person: the request asked for a new login.
    ShowLoginForm,
    /// No request waits (or it is gone): the page as usual.
    Nothing,
}

/// True when the browser holds the id of a waiting request (the no-script forms then go on to
/// `/home` with a page of their own instead of a redirect of the form's post).
pub fn waiting(core: &Core, req: &RequestCtx) -> bool {
    principal::presented(core, req, COOKIE).is_some()
}

/// Finishes a waiting request once the person is logged in (see the module docs). Called by the
/// page middleware on GET `/home`, `/` and `/login`; cookies to set are left in `req`.
pub async fn resume(core: &Core, req: &RequestCtx, page: Page) -> Resumed {
    let cookie = crate::edge::cookies::CookiePolicy::of(core).name(COOKIE);
    if req.cookie(&cookie).is_none() {
        return Resumed::Nothing;
    }
    match try_resume(core, req, page).await {
        Ok(resumed) => resumed,
        Err(e) => Resumed::Answer(internal_error_page(req.lang(), e)),
    }
}

async fn try_resume(core: &Core, req: &RequestCtx, page: Page) -> ServiceResult<Resumed> {
    let clear = || principal::write_cookies(core, req, &[CookieIntent::Clear(COOKIE)]);
    let Some(id_hash) = principal::presented(core, req, COOKIE) else {
        clear();
        return Ok(Resumed::Nothing);
    };
    let now = core.clock.now();
    let row = core
        .store
        .oauth_request(&id_hash)
        .await
        .context("reading a waiting authorization request")?;
    let waiting = row
        .filter(|row| now - row.created_at < super::REQUEST_SECS)
        .and_then(|row| {
            let request = serde_json::from_str::<Validated>(&row.params).ok()?;
            Some((row.login_after, request))
        });
    let Some((login_after, request)) = waiting else {
        // Unknown, expired or unreadable: forgotten, and the page as usual.
        core.store
            .take_oauth_request(&id_hash)
            .await
            .context("removing an authorization request")?;
        clear();
        return Ok(Resumed::Nothing);
    };
    let Some(session) = principal::current_session(core, req).await? else {
        // Not logged in (yet): the login form, and the request keeps waiting.
        return Ok(Resumed::Nothing);
    };
    let new_enough = login_after.is_none_or(|after| session.created_at >= after)
        && request.stale_session.as_deref() != Some(session.token_hash.as_str());
    if !new_enough {
        return Ok(match page {
            Page::Home => Resumed::Answer(found(&request.login_page)),
            Page::LoginForm => Resumed::ShowLoginForm,
        });
    }
    let taken = core
        .store
        .take_oauth_request(&id_hash)
        .await
        .context("consuming an authorization request")?;
    clear();
    if !taken {
        // Another tab finished it a moment ago.
        return Ok(Resumed::Nothing);
    }
    // The application may have been deleted or changed while the person logged in.
    let Some(app) = apps::find(core, &request.client_id)
        .await?
        .filter(|app| app.redirect_uris.contains(&request.redirect_uri))
    else {
        return Ok(Resumed::Nothing);
    };
    let back = Back {
        app: &app,
        redirect_uri: &request.redirect_uri,
        state: request.state.as_deref(),
    };
    let response = if belongs(&app, &session.user) {
        issue(core, req, &app, &request, &session).await?
    } else {
        let user = Some(&session.user);
        refuse(core, req, &back, user, "access_denied", other_company()).await?
    };
    Ok(Resumed::Answer(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_goes_into_the_redirect_uris_own_query() {
        assert_eq!(
            with_query(
                "https://rp.example/cb",
                &[("code", Some("a b")), ("state", None)]
            ),
            "https://rp.example/cb?code=a+b"
        );
        assert_eq!(
            with_query("https://rp.example/cb?x=1", &[("code", Some("c"))]),
            "https://rp.example/cb?x=1&code=c"
        );
    }

    #[test]
    fn empty_parameters_are_absent_and_repeats_are_noted() {
        let params = Params::parse(b"scope=&state=a&state=b&nonce=n");
        assert_eq!(params.get("scope"), None);
        assert_eq!(params.get("state"), Some("a"));
        assert_eq!(params.repeated, vec!["state".to_owned()]);
    }

    #[test]
    fn only_an_s256_challenge_is_taken() {
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge("short"));
        assert!(!is_s256_challenge(&"a".repeat(44)));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
