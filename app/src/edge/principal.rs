//! Who is asking, resolved once at the edge: [`Principal`] turns the request into one of the
//! principals of `promio_core::idm::principal` for [`crate::edge::call`] and the plain routes, and
//! [`write_cookies`] writes the cookies the flows ask for. Reading a session writes nothing;
//! ending one that is over and counting a use as activity are their own steps here.

use crate::edge::cookies::{self, CookiePolicy};
use crate::ssr::RequestCtx;
use http::header::{SET_COOKIE, USER_AGENT};
use promio_core::domain::PendingKind;
use promio_core::domain::Role;
pub use promio_core::domain::cookies::CookieIntent;
use promio_core::idm::Core;
use promio_core::idm::principal::{self as idm_principal, PendingLookup};
pub use promio_core::idm::principal::{
    Admin, Caller, CurrentSession, Flow, Operator, Pending, Session, SessionLookup,
};
pub use promio_core::idm::two_factor::Enroller;
use promio_core::infra::error::{ServiceError, ServiceResult};
use promio_core::infra::token;

/// The hash of a well-formed token presented in the named cookie.
pub fn presented(core: &Core, req: &RequestCtx, base: &str) -> Option<String> {
    let raw = req.cookie(&CookiePolicy::of(core).name(base))?;
    token::parse_presented(&raw).map(|t| token::hash_secret(&t))
}

/// Resolves the request's session. One that is over is ended (its own step) and its cookie
/// cleared. Every session check goes through here, pages included; it counts as activity (see
/// [`idle_check`] for the one that does not).
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
    match idm_principal::look_up_session(core, token_hash).await? {
        SessionLookup::Absent => Ok(None),
        SessionLookup::Ended(ended) => {
            let ip = client_ip(req);
            let clear = idm_principal::end_session_found_over(core, ended, ip.as_deref()).await?;
            write_cookies(core, req, &[clear]);
            Ok(None)
        }
        SessionLookup::Valid(mut session) => {
            if activity {
                idm_principal::touch(core, &mut session).await?;
            }
            Ok(Some(*session))
        }
    }
}

/// The client's address as it is written to the audit log.
pub fn client_ip(req: &RequestCtx) -> Option<String> {
    req.client_ip.map(|ip| ip.to_string())
}

/// What the client's address counts as in per-IP limits ([`promio_core::idm::throttle::ip_bucket`]).
pub fn client_ip_bucket(req: &RequestCtx) -> Option<String> {
    req.client_ip.map(promio_core::idm::throttle::ip_bucket)
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
        sso_flow_token: presented(core, req, promio_core::idm::sso::FLOW_COOKIE),
        passkey_token: presented(core, req, promio_core::idm::passkeys::COOKIE),
    }
}

/// Adds the cookies' `Set-Cookie` headers to the response.
pub fn write_cookies(core: &Core, req: &RequestCtx, intents: &[CookieIntent]) {
    for intent in intents {
        req.add_response_header(SET_COOKIE, CookiePolicy::of(core).header(intent));
    }
}

/// The request's open pending second factor of `kind`, if any. One that is no longer open is
/// deleted (its own step).
pub async fn pending(
    core: &Core,
    req: &RequestCtx,
    kind: PendingKind,
) -> ServiceResult<Option<Pending>> {
    let Some(hash) = presented(core, req, cookies::PENDING) else {
        return Ok(None);
    };
    match idm_principal::look_up_pending(core, &hash, kind).await? {
        PendingLookup::Open(pending) => Ok(Some(*pending)),
        PendingLookup::Absent => Ok(None),
        PendingLookup::Spent(spent) => {
            idm_principal::drop_pending(core, &spent).await?;
            Ok(None)
        }
    }
}

/// The edge's way out for a flow's answer.
pub trait Answer<T> {
    /// Writes the flow's cookies onto the response and returns its value.
    fn answer(self, core: &Core, req: &RequestCtx) -> T;
}

impl<T> Answer<T> for Flow<T> {
    fn answer(self, core: &Core, req: &RequestCtx) -> T {
        write_cookies(core, req, &self.cookies);
        self.value
    }
}

/// Who a front door needs, resolved from the request before its flow runs: [`crate::edge::call`]
/// picks the implementation by the type its closure asks for. A principal that cannot be had
/// fails the call with the flow's error (401, 403, or an expired pending login).
pub trait Principal: Sized + Send {
    fn resolve(
        core: &Core,
        req: &RequestCtx,
    ) -> impl std::future::Future<Output = ServiceResult<Self>> + Send;
}

/// Nothing: the flow needs no one (a link's token proves what it needs).
impl Principal for () {
    async fn resolve(_: &Core, _: &RequestCtx) -> ServiceResult<Self> {
        Ok(())
    }
}

/// Anyone: the request's address, language, agent and presented tokens.
impl Principal for Caller {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        Ok(caller(core, req))
    }
}

impl Principal for Session {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        session(core, req).await
    }
}

impl Principal for Admin {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        admin(core, req).await
    }
}

impl Principal for Operator {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        operator(core, req).await
    }
}

/// Who may set up a second factor: the session's user, or one in the enrolment their client
/// requires.
impl Principal for Enroller {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        if let Some(session) = session_if_any(core, req).await? {
            return Ok(Enroller::Session(session));
        }
        match pending(core, req, PendingKind::Enrolment).await? {
            Some(pending) => Ok(Enroller::Pending(pending)),
            None => Err(ServiceError::Unauthenticated),
        }
    }
}

/// A login waiting for its second factor (the password was right). Without one the call fails
/// with [`ServiceError::LoginExpired`], which clears the pending cookie.
pub struct PendingCode(pub Pending);

impl Principal for PendingCode {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        match pending(core, req, PendingKind::Code).await? {
            Some(pending) => Ok(PendingCode(pending)),
            None => Err(ServiceError::LoginExpired),
        }
    }
}

/// The request's session if it has a valid one; the check counts as activity.
pub struct CurrentUser(pub Option<CurrentSession>);

impl Principal for CurrentUser {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        Ok(CurrentUser(current_session(core, req).await?))
    }
}

/// The request's session as [`CurrentUser`] finds it, without counting the check as activity.
pub struct IdleCheck(pub Option<CurrentSession>);

impl Principal for IdleCheck {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        Ok(IdleCheck(idle_check(core, req).await?))
    }
}

/// Two at once, resolved in order (the first's failure is the answer).
impl<A: Principal, B: Principal> Principal for (A, B) {
    async fn resolve(core: &Core, req: &RequestCtx) -> ServiceResult<Self> {
        let a = A::resolve(core, req).await?;
        let b = B::resolve(core, req).await?;
        Ok((a, b))
    }
}
