//! The principals: who is asking, as the edge resolved it (`crate::idm::principal`), each
//! carrying what was checked. Flows take the principal they need instead of the request, and
//! answer with a [`Flow`]: a value and the cookies to set ([`CookieIntent`]), which the edge
//! writes as headers.
//!
//! ```text
//! session token ──▶ no valid session ─────────────▶ Unauthenticated (401)
//!                   │
//!                   ▼
//!                 Session (user, client, login time, address, language)
//!                   ├── role admin or operator ──▶ Admin    (acts on its client's users)
//!                   └── operator of the platform ▶ Operator (acts on clients)
//! ```
//!
//! Reading a session writes nothing: [`look_up_session`] only reads, and says when a presented
//! session has ended; ending it ([`end_session_found_over`]) and counting a use as activity
//! ([`touch`]) are steps of their own that the edge takes.

use crate::domain::PendingKind;
use crate::domain::Role;
use crate::domain::audit::Actor;
use crate::domain::clock::UnixTime;
pub use crate::domain::cookies::CookieIntent;
use crate::idm::Core;
use crate::infra::error::{Context, ServiceResult};
use crate::store::clients::ClientRow;
use crate::store::sessions::PendingRow;
use crate::store::users::{UserRow, UserStatus};
use promio_api::i18n::Lang;

/// A valid session and its user, as [`current_session`] finds it.
pub struct CurrentSession {
    pub token_hash: String,
    pub user: UserRow,
    /// When the session began: the moment of the login.
    pub created_at: UnixTime,
    /// When it was last counted as used.
    pub last_seen_at: UnixTime,
    /// Seconds until the session ends unless it is used again: its idle timeout, or the absolute
    /// one if that comes first.
    pub ends_in_secs: i64,
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
}

/// A plain answer is a flow without cookies (so that a front door takes either).
impl<T> From<T> for Flow<T> {
    fn from(value: T) -> Self {
        Flow::value(value)
    }
}

/// A pending second factor: the password was right, the second factor is due.
pub struct Pending {
    pub row: PendingRow,
    pub user: UserRow,
    pub client: ClientRow,
}

/// A presented session that has ended, and why: [`end_session_found_over`] deletes it.
pub struct EndedSession {
    pub token_hash: String,
    pub user_id: crate::domain::UserId,
    pub client_id: Option<crate::domain::ClientId>,
    pub reason: &'static str,
}

/// What a presented session token turned out to be.
pub enum SessionLookup {
    /// No such session (or none presented).
    Absent,
    /// Boxed: the session carries its user's row, many times the size of the other answers.
    Valid(Box<CurrentSession>),
    /// Over: idle or too old, or its user or client may no longer log in.
    Ended(EndedSession),
}

/// Reads the session of `token_hash`: valid, ended (and why), or absent. Writes nothing.
pub async fn look_up_session(core: &Core, token_hash: String) -> ServiceResult<SessionLookup> {
    let Some(row) = core
        .store
        .session(&token_hash)
        .await
        .context("reading a session")?
    else {
        return Ok(SessionLookup::Absent);
    };
    let now = core.clock.now();
    let idle = now - row.last_seen_at >= core.sessions.idle_secs;
    let too_old = now - row.created_at >= core.sessions.absolute_secs;
    let user = core.store.user_of(&row).await?;
    let client = match &user {
        Some(u) => core.store.client_by_id(&u.client_id).await?,
        None => None,
    };
    let usable = matches!((&user, &client), (Some(u), Some(c)) if u.status() == UserStatus::Active && c.is_active());
    let reason = if idle {
        "idle timeout"
    } else if too_old {
        "absolute timeout"
    } else if !usable {
        "user or client inactive"
    } else {
        ""
    };
    let user = match user {
        Some(user) if reason.is_empty() => user,
        user => {
            return Ok(SessionLookup::Ended(EndedSession {
                token_hash,
                user_id: row.user_id,
                client_id: user.map(|u| u.client_id),
                reason,
            }));
        }
    };
    let ends_in_secs = (row.last_seen_at + core.sessions.idle_secs - now)
        .min(row.created_at + core.sessions.absolute_secs - now)
        .max(0);
    Ok(SessionLookup::Valid(Box::new(CurrentSession {
        token_hash,
        user,
        created_at: row.created_at,
        last_seen_at: row.last_seen_at,
        ends_in_secs,
    })))
}

/// Ends a session that [`look_up_session`] found over: deletes it, writes the audit row, and
/// answers the cookie intent that makes the browser forget it.
pub async fn end_session_found_over(
    core: &Core,
    ended: EndedSession,
    ip: Option<&str>,
) -> ServiceResult<CookieIntent> {
    core.store.delete_session(&ended.token_hash).await?;
    let event = crate::domain::audit::Event::new(
        crate::domain::audit::AuditAction::SessionExpired,
        crate::domain::audit::Outcome::Ended,
    )
    .client(ended.client_id.as_ref().map(|c| c.as_str()))
    .subject(Some(&ended.user_id))
    .detail(ended.reason)
    .ip(ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await?;
    tracing::info!(user_id = %ended.user_id, reason = ended.reason, "session ended");
    Ok(CookieIntent::Clear(crate::domain::cookies::SESSION))
}

/// Counts a use of the session as activity (restarting its idle timer), at most once a minute.
pub async fn touch(core: &Core, session: &mut CurrentSession) -> ServiceResult<()> {
    let now = core.clock.now();
    if now - session.last_seen_at >= core.sessions.touch_after_secs() {
        core.store.touch_session(&session.token_hash, now).await?;
        session.last_seen_at = now;
        session.ends_in_secs = core
            .sessions
            .idle_secs
            .min(session.created_at + core.sessions.absolute_secs - now)
            .max(0);
    }
    Ok(())
}

/// What a presented pending second factor turned out to be.
pub enum PendingLookup {
    Open(Box<Pending>),
    /// No such row, or its user or client is gone.
    Absent,
    /// No longer open (expired, too many wrong codes, of another kind, or of a client that uses
    /// SSO now): the row of this hash is to be deleted ([`drop_pending`]).
    Spent(String),
}

/// The open pending second factor of `token_hash` and `kind`, if any, with what must be deleted
/// when it is not open (expired, too many wrong codes, of another kind, of a client that uses
/// SSO now, or of a user or client deactivated since): reading writes nothing, [`drop_pending`] deletes.
pub async fn look_up_pending(
    core: &Core,
    token_hash: &str,
    kind: PendingKind,
) -> ServiceResult<PendingLookup> {
    let Some(row) = core.store.pending_second_factor(token_hash).await? else {
        return Ok(PendingLookup::Absent);
    };
    let open = row.kind == kind
        && row.expires_at > core.clock.now()
        && row.failures < crate::domain::limits::MAX_FAILURES;
    if !open {
        return Ok(PendingLookup::Spent(row.token_hash));
    }
    let Some(user) = core.store.user_of(&row).await? else {
        return Ok(PendingLookup::Absent);
    };
    let Some(client) = core.store.client_by_id(&user.client_id).await? else {
        return Ok(PendingLookup::Absent);
    };
    if client.uses_sso() {
        // The client was switched to SSO after the password step: its users log in through
        // their identity provider now, and nothing the password opened may finish.
        return Ok(PendingLookup::Spent(row.token_hash));
    }
    if user.status() != UserStatus::Active || !client.is_active() {
        // Deactivated (the user, or the client) after the password step: the second step
        // finishes nothing, as the password step would refuse now.
        return Ok(PendingLookup::Spent(row.token_hash));
    }
    Ok(PendingLookup::Open(Box::new(Pending { row, user, client })))
}

/// Deletes a pending second factor that [`look_up_pending`] found no longer open.
pub async fn drop_pending(core: &Core, token_hash: &str) -> ServiceResult<()> {
    core.store.delete_pending(token_hash).await?;
    Ok(())
}
