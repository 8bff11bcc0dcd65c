//! The token side of the provider: the token endpoint (`authorization_code`, `refresh_token`),
//! userinfo, revocation (RFC 7009) and introspection (RFC 7662).
//!
//! A code is redeemed once: the read finds it, the checks run (client, expiry, exact
//! `redirect_uri`, PKCE S256, the session it was issued in still live, user and client active),
//! and one transaction marks it used (`UPDATE … WHERE used_at IS NULL`, whose `rows_affected`
//! decides) and stores its tokens. A code presented again revokes every token issued from it (its
//! grant); so does the loser of two redemptions at once, after the winner's transaction has
//! committed (its `UPDATE` waits for the winner's), so the winner's tokens stop too. A refresh
//! token is bound to its client and rotates on every use the same way; a used one presented again
//! revokes its whole family (every token of the grant). A token works only while it is not
//! revoked or expired and its user and the user's client are active; deactivating a user revokes
//! their tokens at once (`Store::revoke_user_oauth_tokens`), deleting one deletes them.
//!
//! Answers carrying tokens are never stored (`Cache-Control: no-store`, `Pragma: no-cache`); the
//! audit log gets the grant type and the application, never a token.

use super::claims::{self, has_scope};
use super::{ACCESS_SECS, OAuthError, REFRESH_SECS, hash_token, no_store, random_token};
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::edge::request::HttpState;
use crate::idm::Core;
use crate::idm::apps::{self, App};
use crate::infra::error::Context;
use crate::store::oauth_tokens::{ACCESS, NewToken, REFRESH, TokenRow};
use crate::store::users::NamesUser;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;

/// The largest form body read (the router's limit is the same).
const FORM_MAX: usize = 64 * 1024;
/// A PKCE `code_verifier`'s length (RFC 7636 4.1).
const VERIFIER_MIN: usize = 43;
const VERIFIER_MAX: usize = 128;

/// One request to an endpoint of this module: its headers, the client's address and its form.
struct Call {
    headers: HeaderMap,
    ip: Option<IpAddr>,
    form: HashMap<String, String>,
}

impl Call {
    /// A required parameter.
    fn param(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.form
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| OAuthError::new("invalid_request", format!("{name} is missing")))
    }

    fn ip_text(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}

async fn read_call(request: Request<Body>) -> Result<Call, OAuthError> {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_MAX)
        .await
        .map_err(|_| OAuthError::new("invalid_request", "the request body cannot be read"))?;
    Ok(Call {
        headers: parts.headers,
        ip,
        form: parse_form(&bytes)?,
    })
}

/// A form body (`application/x-www-form-urlencoded`). A parameter without a value counts as
/// omitted and a repeated one is refused (RFC 6749 3.1, 3.2).
fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let mut form = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if value.is_empty() {
            continue;
        }
        let name = name.into_owned();
        if form.contains_key(&name) {
            return Err(OAuthError::new(
                "invalid_request",
                "a parameter is repeated",
            ));
        }
        form.insert(name, value.into_owned());
    }
    Ok(form)
}

/// A JSON answer that is never stored.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    no_store(&mut response);
    response
}

/// An error answer, counted in the metrics by endpoint and error.
fn refusal(core: &Core, endpoint: &'static str, err: OAuthError) -> Response {
    core.metrics.oauth_error(endpoint, err.error);
    err.into_response()
}

/// `invalid_grant`: the code or refresh token cannot be used (the description says no more).
fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new("invalid_grant", description)
}

/// Records why a grant was refused (`oauth.refused`; never a token) and hands the error back.
async fn refused(
    core: &Core,
    call: &Call,
    app: &App,
    holder: Option<&dyn NamesUser>,
    err: OAuthError,
    why: &str,
) -> OAuthError {
    let user_id = holder.map(|h| h.named_user());
    let client_id = match holder {
        Some(holder) => core
            .store
            .user_of(holder)
            .await
            .ok()
            .flatten()
            .map(|u| u.client_id.into_string()),
        None => None,
    };
    let detail = format!("token: {} for {}: {why}", err.error, app.client_id);
    let ip = call.ip_text();
    let event = Event::new(AuditAction::OAuthRefused, Outcome::Refused)
        .client(client_id.as_deref())
        .subject(user_id)
        .detail(&detail)
        .ip(ip.as_deref());
    match crate::infra::audit::record(&core.store, event, core.clock.now()).await {
        Ok(()) => err,
        Err(e) => OAuthError::from(e),
    }
}

/// The token endpoint.
pub async fn token(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let core: &Core = &state.core;
    let result = match read_call(request).await {
        Ok(call) => token_flow(core, &call).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => answer(StatusCode::OK, body),
        Err(e) => refusal(core, "token", e),
    }
}

async fn token_flow(core: &Core, call: &Call) -> Result<Value, OAuthError> {
    let app =
        super::client_auth::authenticate_client(core, &call.headers, &call.form, call.ip, true)
            .await?;
    match call.param("grant_type")? {
        "authorization_code" => by_code(core, call, &app).await,
        "refresh_token" => by_refresh(core, call, &app).await,
        _ => Err(OAuthError::new(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
    }
}

/// Tokens about to be stored, and what the answer shows of them.
struct Issued {
    access: String,
    access_hash: String,
    refresh: Option<(String, String)>,
}

impl Issued {
    fn new(with_refresh: bool) -> Issued {
        let access = random_token();
        let access_hash = hash_token(&access);
        let refresh = with_refresh.then(|| {
            let token = random_token();
            let hash = hash_token(&token);
            (token, hash)
        });
        Issued {
            access,
            access_hash,
            refresh,
        }
    }

    /// The token endpoint's answer (RFC 6749 5.1, OpenID Connect Core 3.1.3.3).
    fn answer(&self, scope: &str, id_token: Option<String>) -> Value {
        let mut body = Map::new();
        body.insert("access_token".into(), json!(self.access));
        body.insert("token_type".into(), json!("Bearer"));
        body.insert("expires_in".into(), json!(ACCESS_SECS));
        body.insert("scope".into(), json!(scope));
        if let Some(id_token) = id_token {
            body.insert("id_token".into(), json!(id_token));
        }
        if let Some((refresh, _)) = &self.refresh {
            body.insert("refresh_token".into(), json!(refresh));
        }
        Value::Object(body)
    }
}

/// What every token of one issue shares.
struct Grant<'a> {
    grant_id: &'a str,
    family_id: &'a str,
    client_id: &'a str,
    user_id: &'a str,
    session_hash: Option<&'a str>,
    auth_time: i64,
    amr: &'a str,
    /// The access token's scope.
    scope: &'a str,
    /// The refresh token's scope (a narrowed refresh keeps the grant's).
    refresh_scope: &'a str,
}

fn rows<'a>(issued: &'a Issued, grant: &Grant<'a>, now: i64) -> Vec<NewToken<'a>> {
    let mut rows = vec![NewToken {
        token_hash: &issued.access_hash,
        kind: ACCESS,
        grant_id: grant.grant_id,
        family_id: None,
        client_id: grant.client_id,
        user_id: grant.user_id,
        scope: grant.scope,
        session_hash: grant.session_hash,
        auth_time: grant.auth_time,
        amr: grant.amr,
        created_at: now,
        expires_at: now + ACCESS_SECS,
    }];
    if let Some((_, hash)) = &issued.refresh {
        rows.push(NewToken {
            token_hash: hash,
            kind: REFRESH,
            grant_id: grant.grant_id,
            family_id: Some(grant.family_id),
            client_id: grant.client_id,
            user_id: grant.user_id,
            scope: grant.refresh_scope,
            session_hash: grant.session_hash,
            auth_time: grant.auth_time,
            amr: grant.amr,
            created_at: now,
            expires_at: now + REFRESH_SECS,
        });
    }
    rows
}

/// Records an issue (`oauth.token`) and counts it.
async fn issued(
    core: &Core,
    call: &Call,
    app: &App,
    holder: &dyn NamesUser,
    grant_type: &'static str,
) -> Result<(), OAuthError> {
    core.metrics.oauth_grant(grant_type);
    let user_id = holder.named_user();
    let client_id = core
        .store
        .user_of(holder)
        .await
        .context("reading a token's user")?
        .map(|u| u.client_id.into_string());
    let detail = format!("{grant_type} for {}", app.client_id);
    let ip = call.ip_text();
    let event = Event::new(AuditAction::OAuthToken, Outcome::Success)
        .client(client_id.as_deref())
        .subject(Some(user_id))
        .detail(&detail)
        .ip(ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await?;
    Ok(())
}

async fn by_code(core: &Core, call: &Call, app: &App) -> Result<Value, OAuthError> {
    const REFUSED: &str = "the code is invalid, expired or used";
    let code_hash = hash_token(call.param("code")?);
    let now = core.clock.now();
    let row = core
        .store
        .oauth_code(&code_hash)
        .await
        .context("reading a code")?;
    let Some(row) = row.filter(|r| r.client_id == app.client_id) else {
        return Err(refused(
            core,
            call,
            app,
            None,
            invalid_grant(REFUSED),
            "unknown code",
        )
        .await);
    };
    let user: Option<&dyn NamesUser> = Some(&row);
    if row.used_at.is_some() {
        return Err(code_reused(core, call, app, &row.grant_id, &row).await);
    }
    if now >= row.expires_at {
        return Err(refused(
            core,
            call,
            app,
            user,
            invalid_grant(REFUSED),
            "code expired",
        )
        .await);
    }
    let redirect_uri = call.param("redirect_uri")?;
    if redirect_uri != row.redirect_uri {
        let err = invalid_grant("redirect_uri differs from the authorization request's");
        return Err(refused(core, call, app, user, err, "redirect_uri differs").await);
    }
    let verifier = call.form.get("code_verifier").map(String::as_str);
    if let Err(why) = check_pkce(row.code_challenge.as_deref(), verifier) {
        return Err(refused(core, call, app, user, invalid_grant(why), why).await);
    }
    if !session_lives(core, &row.session_hash, &row.user_id, now).await? {
        let err = invalid_grant("the login has ended");
        return Err(refused(core, call, app, user, err, "the login has ended").await);
    }
    if claims::active_holder(core, &row).await?.is_none() {
        let err = invalid_grant("the user or their company is not active");
        return Err(refused(core, call, app, user, err, "user or client not active").await);
    }

    let amr = super::parse_amr(Some(row.amr.as_str()));
    let sid = super::sid(core, &row.session_hash);
    let id_token = claims::id_token(
        core,
        &row,
        &app.client_id,
        &row.scope,
        row.nonce.as_deref(),
        row.auth_time,
        &amr,
        Some(sid.as_str()),
    )
    .await?;
    let issued_now = Issued::new(has_scope(&row.scope, "offline_access"));
    let grant = Grant {
        grant_id: &row.grant_id,
        family_id: &row.grant_id,
        client_id: &app.client_id,
        user_id: &row.user_id,
        session_hash: Some(row.session_hash.as_str()),
        auth_time: row.auth_time,
        amr: &row.amr,
        scope: &row.scope,
        refresh_scope: &row.scope,
    };
    let stored = core
        .store
        .redeem_oauth_code(&code_hash, now, &rows(&issued_now, &grant, now))
        .await
        .context("redeeming a code")?;
    if !stored {
        // Another redemption of the same code won meanwhile: this one is a reuse.
        return Err(code_reused(core, call, app, &row.grant_id, &row).await);
    }
    issued(core, call, app, &row, "authorization_code").await?;
    Ok(issued_now.answer(&row.scope, Some(id_token)))
}

/// Whether the session a code was issued in still lives: its row is there, it is the code's
/// user's, and it is within its idle and absolute limits (decided as `crate::edge::principal` and the
/// back-channel logout sweeper decide). A code from an ended login would give an application
/// tokens for a session that the sweeper has already told it (or will tell it) is over.
async fn session_lives(
    core: &Core,
    session_hash: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    let session = core
        .store
        .session(session_hash)
        .await
        .context("reading a code's session")?;
    Ok(session.is_some_and(|s| {
        s.user_id.as_str() == user_id
            && now - s.last_seen_at < core.sessions.idle_secs
            && now - s.created_at < core.sessions.absolute_secs
    }))
}

/// A used code presented again: every token issued from it is revoked (RFC 6749 4.1.2).
async fn code_reused(
    core: &Core,
    call: &Call,
    app: &App,
    grant_id: &str,
    holder: &dyn NamesUser,
) -> OAuthError {
    let now = core.clock.now();
    let why = match core.store.revoke_oauth_grant(grant_id, now).await {
        Ok(n) => format!("code used again; {n} tokens of its grant revoked"),
        Err(e) => return OAuthError::from(crate::infra::error::ServiceError::from(e)),
    };
    let err = invalid_grant("the code is invalid, expired or used");
    refused(core, call, app, Some(holder), err, &why).await
}

/// PKCE (RFC 7636), S256 only (the authorization endpoint refuses `plain`). A verifier for a
/// code without a challenge is refused: a downgrade would otherwise pass.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), &'static str> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err("code_verifier sent for a code without code_challenge"),
        (Some(_), None) => Err("code_verifier is missing"),
        (Some(challenge), Some(verifier)) => {
            let well_formed = (VERIFIER_MIN..=VERIFIER_MAX).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed {
                return Err("code_verifier must be 43 to 128 unreserved characters");
            }
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                Ok(())
            } else {
                Err("code_verifier does not match code_challenge")
            }
        }
    }
}

async fn by_refresh(core: &Core, call: &Call, app: &App) -> Result<Value, OAuthError> {
    const REFUSED: &str = "the refresh token is invalid, expired or revoked";
    let token_hash = hash_token(call.param("refresh_token")?);
    let now = core.clock.now();
    let row = core
        .store
        .oauth_token(&token_hash)
        .await
        .context("reading a refresh token")?;
    // A refresh token is bound to its client: another client's is as good as unknown.
    let Some(row) = row.filter(|r| r.is_refresh() && r.client_id == app.client_id) else {
        let err = invalid_grant(REFUSED);
        return Err(refused(core, call, app, None, err, "unknown refresh token").await);
    };
    let user: Option<&dyn NamesUser> = Some(&row);
    let family = row
        .family_id
        .clone()
        .unwrap_or_else(|| row.grant_id.clone());
    if row.revoked_at.is_some() {
        let err = invalid_grant(REFUSED);
        return Err(refused(core, call, app, user, err, "refresh token revoked").await);
    }
    if row.used_at.is_some() {
        return Err(refresh_reused(core, call, app, &family, &row).await);
    }
    if now >= row.expires_at {
        let err = invalid_grant(REFUSED);
        return Err(refused(core, call, app, user, err, "refresh token expired").await);
    }
    let scope = match call.form.get("scope") {
        None => row.scope.clone(),
        Some(asked) => {
            let asked: Vec<&str> = asked.split_whitespace().collect();
            if asked.iter().any(|s| !has_scope(&row.scope, s)) {
                let err = OAuthError::new("invalid_scope", "scope is wider than the grant's");
                return Err(refused(core, call, app, user, err, "scope widened").await);
            }
            row.scope
                .split_whitespace()
                .filter(|s| asked.contains(s))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    if claims::active_holder(core, &row).await?.is_none() {
        let err = invalid_grant("the user or their company is not active");
        return Err(refused(core, call, app, user, err, "user or client not active").await);
    }

    let id_token = if has_scope(&scope, "openid") {
        let amr = super::parse_amr(Some(row.amr.as_str()));
        let sid = row.session_hash.as_deref().map(|h| super::sid(core, h));
        let token = claims::id_token(
            core,
            &row,
            &app.client_id,
            &scope,
            None,
            row.auth_time,
            &amr,
            sid.as_deref(),
        )
        .await?;
        Some(token)
    } else {
        None
    };
    let issued_now = Issued::new(true);
    let grant = Grant {
        grant_id: &row.grant_id,
        family_id: &family,
        client_id: &app.client_id,
        user_id: &row.user_id,
        session_hash: row.session_hash.as_deref(),
        auth_time: row.auth_time,
        amr: &row.amr,
        scope: &scope,
        refresh_scope: &row.scope,
    };
    let rotated = core
        .store
        .rotate_refresh_token(&token_hash, now, &rows(&issued_now, &grant, now))
        .await
        .context("rotating a refresh token")?;
    if !rotated {
        // Used (or revoked) by another request meanwhile: a reuse.
        return Err(refresh_reused(core, call, app, &family, &row).await);
    }
    issued(core, call, app, &row, "refresh_token").await?;
    Ok(issued_now.answer(&scope, id_token))
}

/// A rotated refresh token presented again: its whole family is revoked (RFC 9700 4.14.2).
async fn refresh_reused(
    core: &Core,
    call: &Call,
    app: &App,
    family: &str,
    holder: &dyn NamesUser,
) -> OAuthError {
    let now = core.clock.now();
    let why = match core.store.revoke_oauth_grant(family, now).await {
        Ok(n) => format!("refresh token used again; {n} tokens of its family revoked"),
        Err(e) => return OAuthError::from(crate::infra::error::ServiceError::from(e)),
    };
    let err = invalid_grant("the refresh token is invalid, expired or revoked");
    refused(core, call, app, Some(holder), err, &why).await
}

/// A token that works now: not revoked, expired or rotated, its application still registered,
/// and its user and the user's client active.
async fn live_token(core: &Core, token: &str) -> Result<Option<TokenRow>, OAuthError> {
    let now = core.clock.now();
    let row = core
        .store
        .oauth_token(&hash_token(token))
        .await
        .context("reading a token")?;
    let Some(row) = row.filter(|r| r.is_live(now)) else {
        return Ok(None);
    };
    if apps::find(core, &row.client_id).await?.is_none()
        || claims::active_holder(core, &row).await?.is_none()
    {
        return Ok(None);
    }
    Ok(Some(row))
}

/// The token of an `Authorization: Bearer` header; `None` without one.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Userinfo with the token in the Authorization header.
pub async fn userinfo_get(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let core: &Core = &state.core;
    let token = bearer(request.headers());
    let presented = token.is_some();
    userinfo_answer(core, userinfo_flow(core, token.as_deref()).await, presented)
}

/// Userinfo with the token in the Authorization header or the form's `access_token`.
pub async fn userinfo_post(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let core: &Core = &state.core;
    let header_token = bearer(request.headers());
    let mut presented = header_token.is_some();
    let result = match read_call(request).await {
        Ok(call) => match (header_token, call.form.get("access_token")) {
            // RFC 6750 2: one method at a time.
            (Some(_), Some(_)) => Err(OAuthError::new(
                "invalid_request",
                "the access token is both in the header and in the form",
            )),
            (Some(token), None) => userinfo_flow(core, Some(token.as_str())).await,
            (None, token) => {
                presented |= token.is_some();
                userinfo_flow(core, token.map(String::as_str)).await
            }
        },
        Err(e) => Err(e),
    };
    userinfo_answer(core, result, presented)
}

async fn userinfo_flow(core: &Core, token: Option<&str>) -> Result<Value, OAuthError> {
    let invalid = || {
        OAuthError::new(
            "invalid_token",
            "the access token is invalid, expired or revoked",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    };
    let token = token.ok_or_else(invalid)?;
    let row = live_token(core, token)
        .await?
        .filter(|r| r.kind == ACCESS)
        .ok_or_else(invalid)?;
    if !has_scope(&row.scope, "openid") {
        return Err(
            OAuthError::new("insufficient_scope", "the access token has no openid scope")
                .with_status(StatusCode::FORBIDDEN),
        );
    }
    let claims = claims::userinfo(core, &row, &row.scope)
        .await?
        .ok_or_else(invalid)?;
    Ok(Value::Object(claims))
}

/// Userinfo's answer; a refusal names the Bearer scheme and the error (RFC 6750 3), but a request
/// that `presented` no token hears only the scheme (RFC 6750 3.1: no error code then).
fn userinfo_answer(core: &Core, result: Result<Value, OAuthError>, presented: bool) -> Response {
    match result {
        Ok(body) => answer(StatusCode::OK, body),
        Err(e) => {
            let challenge = if !presented && e.status == StatusCode::UNAUTHORIZED {
                Some(HeaderValue::from_static("Bearer"))
            } else if matches!(
                e.status,
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ) {
                HeaderValue::from_str(&format!("Bearer error=\"{}\"", e.error)).ok()
            } else {
                None
            };
            let mut response = refusal(core, "userinfo", e);
            if let Some(challenge) = challenge {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
    }
}

/// Revocation (RFC 7009): an application ends one of its own tokens. Revoking a refresh token
/// revokes its family and its grant's access tokens. Another client's token or an unknown one is
/// answered as a success and left alone (RFC 7009 2.2).
pub async fn revoke(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let core: &Core = &state.core;
    let result = match read_call(request).await {
        Ok(call) => revoke_flow(core, &call).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(e) => refusal(core, "revoke", e),
    }
}

async fn revoke_flow(core: &Core, call: &Call) -> Result<(), OAuthError> {
    let app =
        super::client_auth::authenticate_client(core, &call.headers, &call.form, call.ip, true)
            .await?;
    // `token_type_hint` only speeds up a search; one lookup finds either kind.
    let token_hash = hash_token(call.param("token")?);
    let now = core.clock.now();
    let row = core
        .store
        .oauth_token(&token_hash)
        .await
        .context("reading a token to revoke")?;
    let Some(row) = row.filter(|r| r.client_id == app.client_id) else {
        return Ok(());
    };
    let revoked = if row.is_refresh() {
        let family = row.family_id.as_deref().unwrap_or(row.grant_id.as_str());
        core.store
            .revoke_oauth_grant(family, now)
            .await
            .context("revoking a refresh token's family")?
    } else {
        u64::from(
            core.store
                .revoke_oauth_token(&token_hash, now)
                .await
                .context("revoking an access token")?,
        )
    };
    tracing::info!(
        client_id = %app.client_id,
        kind = %row.kind,
        revoked,
        "tokens revoked by their application"
    );
    if revoked > 0 {
        // A token revoked once more changes nothing and is not written again.
        let client_id = core
            .store
            .user_of(&row)
            .await
            .context("reading a token's user")?
            .map(|u| u.client_id.into_string());
        let detail = format!(
            "revoked by {}: its {} token ({revoked} tokens ended)",
            app.client_id, row.kind
        );
        let ip = call.ip_text();
        let event = Event::new(AuditAction::OAuthToken, Outcome::Success)
            .client(client_id.as_deref())
            .subject(Some(row.user_id.as_str()))
            .detail(&detail)
            .ip(ip.as_deref());
        crate::infra::audit::record(&core.store, event, now).await?;
    }
    Ok(())
}

/// Introspection (RFC 7662), for confidential applications and their own tokens only: anything
/// else is `{"active": false}`.
pub async fn introspect(State(state): State<HttpState>, request: Request<Body>) -> Response {
    let core: &Core = &state.core;
    let result = match read_call(request).await {
        Ok(call) => introspect_flow(core, &call).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => answer(StatusCode::OK, body),
        Err(e) => refusal(core, "introspect", e),
    }
}

async fn introspect_flow(core: &Core, call: &Call) -> Result<Value, OAuthError> {
    let app =
        super::client_auth::authenticate_client(core, &call.headers, &call.form, call.ip, false)
            .await?;
    let token = call.param("token")?;
    let inactive = json!({ "active": false });
    let Some(row) = live_token(core, token).await? else {
        return Ok(inactive);
    };
    if row.client_id != app.client_id {
        return Ok(inactive);
    }
    let Some((user, _)) = claims::active_holder(core, &row).await? else {
        return Ok(inactive);
    };
    let mut body = Map::new();
    body.insert("active".into(), json!(true));
    body.insert("scope".into(), json!(row.scope));
    body.insert("client_id".into(), json!(row.client_id));
    body.insert("username".into(), json!(user.username));
    if row.kind == ACCESS {
        body.insert("token_type".into(), json!("Bearer"));
    }
    body.insert("exp".into(), json!(row.expires_at));
    body.insert("iat".into(), json!(row.created_at));
    body.insert("sub".into(), json!(row.user_id));
    body.insert("aud".into(), json!(row.client_id));
    body.insert("iss".into(), json!(super::issuer(core)));
    Ok(Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_takes_the_s256_of_the_verifier_and_refuses_a_downgrade() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(check_pkce(Some(challenge), Some(verifier)), Ok(()));
        assert!(check_pkce(Some(challenge), Some(verifier.replace('d', "e").as_str())).is_err());
        assert!(check_pkce(Some(challenge), None).is_err());
        assert!(
            check_pkce(None, Some(verifier)).is_err(),
            "a verifier without a challenge"
        );
        assert_eq!(check_pkce(None, None), Ok(()));
        assert!(
            check_pkce(Some(verifier), Some(verifier)).is_err(),
            "plain is not S256"
        );
        assert!(check_pkce(Some(challenge), Some("short")).is_err());
        assert!(check_pkce(Some(challenge), Some("a".repeat(129).as_str())).is_err());
        assert!(check_pkce(Some(challenge), Some(format!("{verifier}!").as_str())).is_err());
    }

    #[test]
    fn a_form_without_values_drops_them_and_refuses_repeats() {
        let form = parse_form(b"grant_type=authorization_code&code=&scope=a+b%20c").unwrap();
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["scope"], "a b c");
        assert!(!form.contains_key("code"));
        assert_eq!(
            parse_form(b"code=a&code=b").unwrap_err().error,
            "invalid_request"
        );
    }

    #[test]
    fn only_a_bearer_header_gives_a_token() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  tok"),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("tok"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
