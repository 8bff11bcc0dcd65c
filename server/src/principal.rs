//! Who is asking, resolved once at the edge: the service adapter (`services`) and the plain routes
//! (`http`) turn the request into one of these principals, each carrying what was checked, and the
//! flows take the principal they need instead of the request.
//!
//! ```text
//! request ──session cookie──▶ no valid session ─────────────▶ Unauthenticated (401)
//!                             │
//!                             ▼
//!                           Session (user, client, login time, address, language)
//!                             ├── role admin or operator ──▶ Admin    (acts on its client's users)
//!                             └── operator of the platform ▶ Operator (acts on clients)
//! ```
//!
//! The state between the password and the second factor (the pending second factor) is not a
//! session: [`pending`] resolves it from its own cookie, for the second factor's flows only.
//!
//! Flows learn the rest of the request as a [`Caller`] (address, language, browser, the tokens
//! it presented) and answer with a [`Flow`]: a value and the cookies to set ([`CookieIntent`]),
//! which the edge writes as headers ([`write_cookies`]).

use crate::Core;
use crate::auth::cookies;
pub use crate::auth::cookies::CookieIntent;
use crate::auth::token;
use crate::clock::UnixTime;
use crate::error::{Context, ServiceError, ServiceResult};
use crate::provisioning::Actor;
use crate::store::clients::ClientRow;
use crate::store::sessions::PendingRow;
use crate::store::users::{UserRow, UserStatus};
use http::header::{SET_COOKIE, USER_AGENT};
use promio_app::api::Role;
use promio_app::i18n::Lang;
use promio_app::ssr::RequestCtx;

/// A valid session and its user, as [`current_session`] finds it.
pub struct CurrentSession {
    pub token_hash: String,
    pub user: UserRow,
    /// When the session began: the moment of the login.
    pub created_at: UnixTime,
    /// Seconds until the session ends unless it is used again: its idle timeout, or the absolute
    /// one if that comes first.
    pub ends_in_secs: i64,
}

/// The hash of a well-formed token presented in the named cookie.
pub fn presented(core: &Core, req: &RequestCtx, base: &str) -> Option<String> {
    let raw = req.cookie(&core.cookies.name(base))?;
    token::parse_presented(&raw).map(|t| token::hash_secret(&t))
}

/// Resolves the request's session, ending it (and clearing its cookie) if it has expired or its
/// user may no longer log in. Every session check goes through here, pages included; it counts as
/// activity (see [`idle_check`] for the one that does not).
pub async fn current_session(
    core: &Core,
    req: &RequestCtx,
) -> ServiceResult<Option<CurrentSession>> {
    resolve_session(core, req, true).await
}

/// The session as [`current_session`] finds it, without counting the check as activity: the
/// page's idle-timeout warning asks this, and asking must not keep the session alive.
pub async fn idle_check(core: &Core, req: &RequestCtx) -> ServiceResult<Option<CurrentSession>> {
    resolve_session(core, req, false).await
}

async fn resolve_session(
    core: &Core,
    req: &RequestCtx,
    activity: bool,
) -> ServiceResult<Option<CurrentSession>> {
    let Some(token_hash) = presented(core, req, cookies::SESSION) else {
        return Ok(None);
    };
    let Some(row) = core
        .store
        .session(&token_hash)
        .await
        .context("reading a session")?
    else {
        return Ok(None);
    };
    let now = core.clock.now();
    let idle = now - row.last_seen_at >= core.sessions.idle_secs;
    let too_old = now - row.created_at >= core.sessions.absolute_secs;
    let user = core.store.user_by_id(&row.user_id).await?;
    let client = match &user {
        Some(u) => core.store.client_by_id(&u.client_id).await?,
        None => None,
    };
    let usable = matches!((&user, &client), (Some(u), Some(c)) if u.status() == UserStatus::Active && c.is_active());
    if idle || too_old || !usable {
        core.store.delete_session(&token_hash).await?;
        let reason = if idle {
            "idle timeout"
        } else if too_old {
            "absolute timeout"
        } else {
            "user or client inactive"
        };
        let ip = client_ip(req);
        let event = crate::audit::Event::new(
            crate::audit::AuditAction::SessionExpired,
            crate::audit::Outcome::Ended,
        )
        .client(user.as_ref().map(|u| u.client_id.as_str()))
        .subject(Some(&row.user_id))
        .detail(reason)
        .ip(ip.as_deref());
        crate::audit::record(&core.store, event, now).await?;
        tracing::info!(user_id = %row.user_id, reason, "session ended");
        req.add_response_header(SET_COOKIE, core.cookies.clear(cookies::SESSION));
        return Ok(None);
    }
    let mut last_seen = row.last_seen_at;
    if activity && now - row.last_seen_at >= core.sessions.touch_after_secs() {
        core.store.touch_session(&token_hash, now).await?;
        last_seen = now;
    }
    let ends_in_secs = (last_seen + core.sessions.idle_secs - now)
        .min(row.created_at + core.sessions.absolute_secs - now)
        .max(0);
    Ok(user.map(|user| CurrentSession {
        token_hash,
        user,
        created_at: row.created_at,
        ends_in_secs,
    }))
}

/// The client's address as it is written to the audit log.
pub fn client_ip(req: &RequestCtx) -> Option<String> {
    req.client_ip.map(|ip| ip.to_string())
}

/// What the client's address counts as in per-IP limits ([`crate::throttle::ip_bucket`]).
pub fn client_ip_bucket(req: &RequestCtx) -> Option<String> {
    req.client_ip.map(crate::throttle::ip_bucket)
}

/// A logged-in user with a valid session.
pub struct Session {
    pub user: UserRow,
    pub client: ClientRow,
    /// The session's row key (the SHA-256 of its token).
    pub token_hash: String,
    /// When the session began: the moment of the login.
    pub created_at: UnixTime,
    /// The client address as the audit log writes it.
    pub ip: Option<String>,
    pub lang: Lang,
}

/// A user administrator (role admin, or an operator in the platform client) and their client.
pub struct Admin {
    pub admin: UserRow,
    pub client: ClientRow,
    pub ip: Option<String>,
    pub lang: Lang,
}

impl Admin {
    /// The administrator as the actor of what they change.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            user_id: Some(&self.admin.id),
            ip: self.ip.as_deref(),
        }
    }

    /// An operator of the platform client (who alone sees every client's audit log).
    pub fn is_operator(&self, core: &Core) -> bool {
        self.admin.role() == Role::Operator
            && self.client.is_platform(&core.settings.platform_company_id)
    }
}

/// An operator: a user with role operator in the platform client.
pub struct Operator {
    pub user_id: crate::domain::UserId,
    pub ip: Option<String>,
}

/// The request's session, or 401.
pub async fn session(core: &Core, req: &RequestCtx) -> ServiceResult<Session> {
    session_if_any(core, req)
        .await?
        .ok_or(ServiceError::Unauthenticated)
}

/// The request's session, if it has a valid one.
pub async fn session_if_any(core: &Core, req: &RequestCtx) -> ServiceResult<Option<Session>> {
    let Some(current) = current_session(core, req).await? else {
        return Ok(None);
    };
    let client = core
        .store
        .client_by_id(&current.user.client_id)
        .await?
        .ok_or(ServiceError::Unauthenticated)?;
    Ok(Some(Session {
        user: current.user,
        client,
        token_hash: current.token_hash,
        created_at: current.created_at,
        ip: client_ip(req),
        lang: req.lang(),
    }))
}

/// The request's user administrator: 401 without a session, 403 for other roles.
pub async fn admin(core: &Core, req: &RequestCtx) -> ServiceResult<Admin> {
    let session = session(core, req).await?;
    if !matches!(session.user.role(), Role::Admin | Role::Operator) {
        return Err(ServiceError::Forbidden);
    }
    Ok(Admin {
        admin: session.user,
        client: session.client,
        ip: session.ip,
        lang: session.lang,
    })
}

/// The request's operator: 401 without a session, 403 for anyone but an operator of the platform.
pub async fn operator(core: &Core, req: &RequestCtx) -> ServiceResult<Operator> {
    let session = session(core, req).await?;
    let platform = &core.settings.platform_company_id;
    if session.user.role() != Role::Operator || !session.client.is_platform(platform) {
        return Err(ServiceError::Forbidden);
    }
    Ok(Operator {
        user_id: session.user.id,
        ip: session.ip,
    })
}

/// What a flow may know of the request besides who asks.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The client address as the audit log writes it.
    pub ip: Option<String>,
    /// What the address counts as in per-IP limits (an IPv6 address's /64).
    pub ip_bucket: Option<String>,
    pub lang: Lang,
    /// The browser, as its user agent names itself (cut to 256 characters).
    pub user_agent: Option<String>,
    /// The hash of the session token the browser presented, if any (a new login ends it).
    pub session_token: Option<String>,
    /// The hash of the SSO round trip's token the browser presented, if any.
    pub sso_flow_token: Option<String>,
    /// The hash of the passkey ceremony's token the browser presented, if any.
    pub passkey_token: Option<String>,
}

/// The caller of a request.
pub fn caller(core: &Core, req: &RequestCtx) -> Caller {
    Caller {
        ip: client_ip(req),
        ip_bucket: client_ip_bucket(req),
        lang: req.lang(),
        user_agent: req
            .header(USER_AGENT.as_str())
            .map(|a| a.chars().take(256).collect()),
        session_token: presented(core, req, cookies::SESSION),
        sso_flow_token: presented(core, req, crate::sso::FLOW_COOKIE),
        passkey_token: presented(core, req, crate::passkeys::COOKIE),
    }
}

/// What a flow answers: its value and the cookies it wants set or cleared.
pub struct Flow<T> {
    pub value: T,
    pub cookies: Vec<CookieIntent>,
}

impl<T> Flow<T> {
    /// A value without cookies.
    pub fn value(value: T) -> Self {
        Flow {
            value,
            cookies: Vec::new(),
        }
    }

    pub fn with(mut self, cookie: CookieIntent) -> Self {
        self.cookies.push(cookie);
        self
    }

    /// Writes the cookies onto the response and returns the value.
    pub fn answer(self, core: &Core, req: &RequestCtx) -> T {
        write_cookies(core, req, &self.cookies);
        self.value
    }
}

/// Adds the cookies' `Set-Cookie` headers to the response.
pub fn write_cookies(core: &Core, req: &RequestCtx, intents: &[CookieIntent]) {
    for intent in intents {
        req.add_response_header(SET_COOKIE, core.cookies.header(intent));
    }
}

/// The kind of a pending second factor: a code is due, or the enrolment the client requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Code,
    Enrolment,
}

/// A stored kind: anything but a known name is an error, never a default.
impl TryFrom<String> for PendingKind {
    type Error = String;

    fn try_from(s: String) -> Result<PendingKind, String> {
        match s.as_str() {
            "totp" => Ok(PendingKind::Code),
            "enrol" => Ok(PendingKind::Enrolment),
            _ => Err(format!("unknown pending second factor kind {s:?}")),
        }
    }
}

impl PendingKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::Code => "totp",
            PendingKind::Enrolment => "enrol",
        }
    }
}

/// A pending second factor: the password was right, the second factor is due.
pub struct Pending {
    pub row: PendingRow,
    pub user: UserRow,
    pub client: ClientRow,
}

/// The request's open pending second factor of `kind`, if any. One that expired, had too many
/// wrong codes, is of another kind or belongs to a client that uses SSO now is deleted.
pub async fn pending(
    core: &Core,
    req: &RequestCtx,
    kind: PendingKind,
) -> ServiceResult<Option<Pending>> {
    let Some(hash) = presented(core, req, cookies::PENDING) else {
        return Ok(None);
    };
    let Some(row) = core.store.pending_second_factor(&hash).await? else {
        return Ok(None);
    };
    let open = row.kind == kind
        && row.expires_at > core.clock.now()
        && row.failures < crate::two_factor::MAX_FAILURES;
    if !open {
        core.store.delete_pending(&row.token_hash).await?;
        return Ok(None);
    }
    let Some(user) = core.store.user_by_id(&row.user_id).await? else {
        return Ok(None);
    };
    let Some(client) = core.store.client_by_id(&user.client_id).await? else {
        return Ok(None);
    };
    if client.uses_sso() {
        // The client was switched to SSO after the password step: its users log in through
        // their identity provider now, and nothing the password opened may finish.
        core.store.delete_pending(&row.token_hash).await?;
        return Ok(None);
    }
    Ok(Some(Pending { row, user, client }))
}
