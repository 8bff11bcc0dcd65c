//! Authentication: password hashing, the login state machine, and sessions (started and ended
//! here; a request's session is resolved at the edge, `principal::current_session`).
//!
//! Sessions are rows keyed by the SHA-256 of a 256-bit token that only the browser holds (in an
//! HttpOnly cookie). A session ends when it has been idle for `SESSION_IDLE_MINUTES`, when it is
//! `SESSION_ABSOLUTE_HOURS` old, at logout, or when its user or client is deactivated; each of
//! these is checked on every use, against the injected clock.

use crate::domain::audit::{AuditAction, Event as AuditEvent, Outcome};
use crate::domain::clock::UnixTime;
use crate::domain::cookies::{self, CookieIntent};
use crate::idm::Core;
use crate::idm::principal::{Caller, CurrentSession, Flow};
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::infra::token;
use crate::store::login::{BlockingLogin, LoginSuccess, NewSession};
use crate::store::users::UserRow;
use promio_api::Me;

/// How the person of a session logged in, stored with it (`sessions.amr`) for the ID tokens that
/// the OpenID Provider issues in it (`amr`, RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    /// The password alone.
    Password,
    /// The password and a TOTP or recovery code.
    PasswordAndCode,
    /// The password and a passkey.
    PasswordAndPasskey,
    /// A passkey alone.
    Passkey,
    /// The client's identity provider (how it checked the person is its own business).
    Sso,
}

impl LoginMethod {
    /// The stored `amr`: a JSON array.
    pub fn amr_json(self) -> &'static str {
        match self {
            LoginMethod::Password => r#"["pwd"]"#,
            LoginMethod::PasswordAndCode => r#"["pwd","otp","mfa"]"#,
            LoginMethod::PasswordAndPasskey => r#"["pwd","hwk","mfa"]"#,
            LoginMethod::Passkey => r#"["hwk"]"#,
            LoginMethod::Sso => "[]",
        }
    }
}

/// Logout, for the server function and the plain form post alike: ends the request's session, if
/// it has one, and clears its cookie.
pub async fn logout(
    core: &Core,
    current: Option<CurrentSession>,
    caller: &Caller,
) -> ServiceResult<Flow<()>> {
    core.end_session(current, caller).await
}

/// [`Core::start_session_after_password`] on the hashing thread that checked the password
/// (SQLite; see `BlockingLogin`), for a caller who brought no old session to end: a new token,
/// and in one transaction the account's failure counter cleared, the session, and `audit`.
pub(crate) fn start_password_session_here(
    db: &BlockingLogin,
    user: &UserRow,
    ip: Option<&str>,
    user_agent: Option<&str>,
    throttle_key: &str,
    audit: AuditEvent<'_>,
    now: UnixTime,
) -> Result<CookieIntent, sqlx::Error> {
    let issued = token::issue();
    let session = NewSession {
        token_hash: &issued.hash,
        user_id: &user.id,
        ip,
        user_agent,
        amr: LoginMethod::Password.amr_json(),
    };
    let success = LoginSuccess {
        throttle_key,
        session,
        audit,
    };
    db.record_success(&success, now)?;
    Ok(CookieIntent::Session(issued.secret))
}

/// Sessions and the mails about logins, as parts of the running application.
impl Core {
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Starts a session for the user, who logged in by `method`: a new token every time (no
    /// fixation), and any session the browser presented before is ended. Returns the cookie that
    /// carries it.
    pub async fn start_session(
        &self,
        caller: &Caller,
        user: &UserRow,
        method: LoginMethod,
    ) -> ServiceResult<CookieIntent> {
        self.start_session_writing(caller, user, method, None).await
    }

    /// [`Core::start_session`] after a correct password: in the same trip to the database, the
    /// account's failure counter (`throttle_key`) is cleared and `audit` recorded.
    pub async fn start_session_after_password(
        &self,
        caller: &Caller,
        user: &UserRow,
        throttle_key: &str,
        audit: AuditEvent<'_>,
    ) -> ServiceResult<CookieIntent> {
        self.start_session_writing(
            caller,
            user,
            LoginMethod::Password,
            Some((throttle_key, audit)),
        )
        .await
    }

    async fn start_session_writing(
        &self,
        caller: &Caller,
        user: &UserRow,
        method: LoginMethod,
        with_login: Option<(&str, AuditEvent<'_>)>,
    ) -> ServiceResult<CookieIntent> {
        if let Some(old) = &caller.session_token {
            self.store.delete_session(old).await?;
        }
        let issued = token::issue();
        let ip = caller.ip.as_deref();
        let agent = caller.user_agent.as_deref();
        match with_login {
            Some((throttle_key, audit)) => {
                let session = NewSession {
                    token_hash: &issued.hash,
                    user_id: &user.id,
                    ip,
                    user_agent: agent,
                    amr: method.amr_json(),
                };
                let success = LoginSuccess {
                    throttle_key,
                    session,
                    audit,
                };
                self.store
                    .record_login_success(success, self.now())
                    .await
                    .context("writing a password login's session")?;
            }
            None => {
                self.store
                    .insert_session(
                        &issued.hash,
                        &user.id,
                        self.now(),
                        ip,
                        agent,
                        method.amr_json(),
                    )
                    .await?;
            }
        }
        Ok(CookieIntent::Session(issued.secret))
    }

    /// Tells the user that someone keeps failing to log in as them (the caller limits this to
    /// one mail a day).
    pub async fn notify_failed_logins(&self, user: &UserRow, attempts: i64) -> ServiceResult<()> {
        let content = crate::infra::mail::templates::MailContent::FailedLogins {
            login_link: self.settings.public_url.to_string(),
            attempts,
        };
        self.mail_user(user, content).await
    }

    /// Tells the user that their password is no longer checked after too many failures, and how
    /// to get in again (a new password through "Forgot your password?").
    pub async fn notify_locked(&self, user: &UserRow) -> ServiceResult<()> {
        let mut forgot = self.settings.public_url.clone();
        forgot.set_path("/forgot-password");
        let content = crate::infra::mail::templates::MailContent::AccountLocked {
            forgot_link: forgot.to_string(),
            attempts: crate::idm::throttle::LOCK_AFTER,
        };
        self.mail_user(user, content).await
    }

    /// Queues a mail to the user and wakes the delivery worker.
    pub(crate) async fn mail_user(
        &self,
        user: &UserRow,
        content: crate::infra::mail::templates::MailContent,
    ) -> ServiceResult<()> {
        let Some(client) = self.store.client_by_id(&user.client_id).await? else {
            return Ok(());
        };
        let mut conn = self.store.pool().acquire().await?;
        self.mailer
            .notify_user(&mut conn, &client, user, &content)
            .await?;
        self.mailer.wake();
        Ok(())
    }

    /// Records a login attempt (by and about `user_id` when known) in the audit log, and counts it
    /// in the metrics by method and outcome: the one way every kind of login is recorded.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_login(
        &self,
        action: AuditAction,
        outcome: Outcome,
        client_id: Option<&str>,
        user_id: Option<&str>,
        detail: &str,
        ip: Option<&str>,
    ) -> ServiceResult<()> {
        let method = match action {
            AuditAction::LoginSecondFactor => "second_factor",
            AuditAction::LoginSso => "sso",
            _ => "password",
        };
        self.metrics.login(method, outcome.as_str());
        let event = AuditEvent::login(action, outcome, client_id, user_id)
            .detail(detail)
            .ip(ip);
        crate::infra::audit::record(&self.store, event, self.now()).await
    }

    /// Logout: ends the session, if there is one, and clears its cookie.
    pub async fn end_session(
        &self,
        current: Option<CurrentSession>,
        caller: &Caller,
    ) -> ServiceResult<Flow<()>> {
        if let Some(current) = current {
            self.store.delete_session(&current.token_hash).await?;
            let event = AuditEvent::own(&current.user, AuditAction::Logout, Outcome::Success)
                .ip(caller.ip.as_deref());
            crate::infra::audit::record(&self.store, event, self.now()).await?;
            tracing::info!(user_id = %current.user.id, "logout");
        }
        Ok(Flow::value(()).with(CookieIntent::Clear(cookies::SESSION)))
    }

    /// Who the session's user is, for the page header.
    pub async fn me(&self, current: Option<CurrentSession>) -> ServiceResult<Option<Me>> {
        let Some(current) = current else {
            return Ok(None);
        };
        let session_ends_in_secs = u64::try_from(current.ends_in_secs).unwrap_or(0);
        let user = current.user;
        let client = self
            .store
            .client_by_id(&user.client_id)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Some(Me {
            company_id: client.company_id,
            company_name: client.name,
            role: user.role().into(),
            username: user.username,
            first_name: user.first_name,
            last_name: user.last_name,
            email: user.email,
            session_ends_in_secs,
        }))
    }
}
