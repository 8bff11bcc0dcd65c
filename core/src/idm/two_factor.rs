//! The second factor as the login flow and the Security page use it. The TOTP rules themselves
//! (window, replay, recovery codes, sealing) are in [`crate::infra::totp`].
//!
//! Who may act: the login's second step needs the pending state's cookie (kind `totp`), which is
//! not a session; activation needs a session, or the pending state of kind `enrol` when the client
//! requires 2FA and the user has none yet (activation then starts the session). Activation,
//! deactivation and new recovery codes also need the password again unless the login was less
//! than [`REAUTH_SECS`] ago, so a stolen session cannot lock the owner out.
//!
//! Every check of a second factor, wherever it happens (the login's step, a reset link, new
//! recovery codes, deactivation; a passkey in the login's step or for a reset link too), is
//! counted on one counter per user with the login's waits, before the code is looked at, every
//! wrong one audited ([`check_second_factor`]; a passkey goes through [`factor_attempt`],
//! [`factor_failed`] and [`factor_succeeded`]). After [`throttle::LOCK_AFTER`] failures in a row
//! the second factor is not checked again until an administrator clears the counter (or resets
//! the user's 2FA, or removes their passkeys) or the user gets a new second factor; the user is
//! told by mail after [`throttle::NOTIFY_AFTER`] failures in a row (once a day) and at the lock.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::cookies;
pub use crate::domain::limits::{MAX_FAILURES, REAUTH_SECS};
use crate::domain::{CompanyId, UserName};
use crate::idm::Core;
use crate::idm::principal::{Caller, CookieIntent, Flow, Pending, Session};
use crate::idm::sessions::LoginMethod;
use crate::idm::throttle;
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::mail::templates::MailContent;
use crate::infra::totp;
use crate::store::clients::ClientRow;
use crate::store::users::UserRow;
use base64::Engine;
use promio_api::{LoginOutcome, TwoFactorEnrolment, TwoFactorStatus};
use secrecy::{ExposeSecret, SecretString};

/// Codes tried without any wait: a pending state ends after 5 wrong ones anyway; across pending
/// states the waits then grow as for passwords.
const TOTP_FREE_ATTEMPTS: i64 = 5;

/// Where a second factor is checked; each refusal is audited under its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorCheck {
    Login,
    ResetLink,
    Deactivation,
    RecoveryCodes,
}

impl FactorCheck {
    fn action(self) -> AuditAction {
        match self {
            FactorCheck::Login => AuditAction::LoginSecondFactor,
            FactorCheck::ResetLink => AuditAction::LinkSecondFactor,
            FactorCheck::Deactivation => AuditAction::TwoFactorDeactivation,
            FactorCheck::RecoveryCodes => AuditAction::TwoFactorRecoveryCodesRenewed,
        }
    }
}

fn key(core: &Core) -> &[u8; 32] {
    core.settings.secret_key.expose_secret()
}

/// Checks a TOTP code (current or previous step, each step once) or a recovery code (once). Not
/// counted: every caller goes through [`check_second_factor`].
async fn verify_code(core: &Core, user: &UserRow, code: &str) -> ServiceResult<bool> {
    if !user.has_totp() {
        return Ok(false);
    }
    if totp::is_recovery_code(code) {
        let hash = totp::recovery_hash(key(core), code);
        return Ok(core
            .store
            .use_recovery_code(&user.id, &hash, core.clock.now())
            .await?);
    }
    let Some(sealed) = core.store.totp_secret(&user.id).await? else {
        return Ok(false);
    };
    let secret = totp::open(key(core), &sealed).ok_or_else(|| {
        ServiceError::Internal(anyhow::anyhow!(
            "a TOTP secret cannot be opened with SECRET_KEY"
        ))
    })?;
    match totp::matching_step(&secret, code, core.clock.now()) {
        Some(step) => Ok(core.store.use_totp_step(&user.id, step).await?),
        None => Ok(false),
    }
}

/// Checks a second factor, counted on the user's one counter before the code is looked at (the
/// first [`TOTP_FREE_ATTEMPTS`] without a wait, then the login's steps, up to the lock); a right
/// code clears the counter, a wrong one is audited as a failure of `place`. While the counter
/// waits the code is not checked and the answer says how long to wait; once it is locked, the
/// answer says so.
#[tracing::instrument(skip_all, fields(user_id = %user.id, ?place))]
pub async fn check_second_factor(
    core: &Core,
    ip: Option<&str>,
    user: &UserRow,
    code: &str,
    place: FactorCheck,
) -> ServiceResult<bool> {
    let attempts = factor_attempt(core, ip, user, place).await?;
    let right = code.chars().count() <= 64 && verify_code(core, user, code.trim()).await?;
    if right {
        factor_succeeded(core, user).await?;
    } else {
        factor_failed(core, ip, user, place, attempts, "wrong code").await?;
    }
    Ok(right)
}

/// Counts an attempt at the user's second factor before it is checked: the attempts in a row so
/// far (this one included), or the refusal while the counter waits (`TooManyAttempts`) or once it
/// is locked (`SecondFactorLocked`), without checking anything.
pub(crate) async fn factor_attempt(
    core: &Core,
    ip: Option<&str>,
    user: &UserRow,
    place: FactorCheck,
) -> ServiceResult<i64> {
    let key = throttle::totp_key(&user.id);
    let now = core.clock.now();
    let counted = core
        .store
        .throttle_attempt(
            &key,
            now,
            throttle::ACCOUNT_RESET_AFTER,
            Some(&user.client_id),
            Some(&user.username),
            TOTP_FREE_ATTEMPTS,
        )
        .await?;
    let row = match counted {
        Some(attempts) if attempts <= throttle::LOCK_AFTER => return Ok(attempts),
        // Past the lock: counted, but nothing is checked.
        Some(_) => None,
        None => core.store.throttle_row(&key).await?,
    };
    let locked = counted.is_some() || throttle::is_locked(row.as_ref());
    if throttle::count_refusal(&core.store, &key, now).await? {
        let detail = if locked {
            "second factor locked"
        } else {
            "second factor waiting"
        };
        audit(core, ip, user, place.action(), Outcome::Throttled, detail).await?;
    }
    if locked {
        return Err(ServiceError::SecondFactorLocked);
    }
    let wait = row
        .map(|r| (r.blocked_until - now).max(1) as u64)
        .unwrap_or(1);
    Err(ServiceError::TooManyAttempts {
        retry_after_secs: wait,
    })
}

/// A wrong second factor, counted as the `attempts`th in a row by [`factor_attempt`]: audited as a
/// failure of `place`; the user is told after [`throttle::NOTIFY_AFTER`] in a row (at most once a
/// day), and at the lock, which is the answer then.
pub(crate) async fn factor_failed(
    core: &Core,
    ip: Option<&str>,
    user: &UserRow,
    place: FactorCheck,
    attempts: i64,
    detail: &str,
) -> ServiceResult<()> {
    audit(core, ip, user, place.action(), Outcome::Failure, detail).await?;
    let login_link = core.settings.public_url.to_string();
    if attempts >= throttle::LOCK_AFTER {
        tracing::warn!(user_id = %user.id, attempts, "second factor locked");
        let content = MailContent::SecondFactorLocked {
            login_link,
            attempts,
        };
        core.mail_user(user, content).await?;
        return Err(ServiceError::SecondFactorLocked);
    }
    if attempts >= throttle::NOTIFY_AFTER
        && core
            .store
            .throttle_mark_notified(&throttle::totp_key(&user.id), core.clock.now())
            .await?
    {
        let content = MailContent::FailedSecondFactor {
            login_link,
            attempts,
        };
        core.mail_user(user, content).await?;
    }
    Ok(())
}

/// A right second factor: its counter starts again (and a lock of it ends).
pub(crate) async fn factor_succeeded(core: &Core, user: &UserRow) -> ServiceResult<()> {
    core.store
        .throttle_clear(&throttle::totp_key(&user.id))
        .await?;
    Ok(())
}

/// Confirms a sensitive action of a logged-in user: a login younger than [`REAUTH_SECS`], or the
/// password again (counted on the account's login counter, with its waits and its lock).
pub(crate) async fn reauthenticate(
    core: &Core,
    session: &Session,
    password: &str,
) -> ServiceResult<()> {
    if password.is_empty() && core.clock.now() - session.created_at < REAUTH_SECS {
        return Ok(());
    }
    check_password(core, session, password).await
}

/// Checks the user's password again, counted like a login attempt on the account.
pub(crate) async fn check_password(
    core: &Core,
    session: &Session,
    password: &str,
) -> ServiceResult<()> {
    if password.is_empty() {
        return Err(ServiceError::ReauthRequired);
    }
    let (user, client) = (&session.user, &session.client);
    let key = throttle::account_key(
        &CompanyId::parse(&client.company_id)?,
        &UserName::parse(&user.username)?,
    );
    let now = core.clock.now();
    let counted = core
        .store
        .throttle_attempt(
            &key,
            now,
            throttle::ACCOUNT_RESET_AFTER,
            Some(&user.client_id),
            Some(&user.username),
            0,
        )
        .await?;
    let row = match counted {
        Some(a) if a <= throttle::LOCK_AFTER => None,
        _ => Some(core.store.throttle_row(&key).await?),
    };
    if let Some(row) = row {
        if throttle::is_locked(row.as_ref()) {
            return Err(ServiceError::AccountLocked);
        }
        let wait = row
            .map(|r| (r.blocked_until - now).max(1) as u64)
            .unwrap_or(1);
        return Err(ServiceError::TooManyAttempts {
            retry_after_secs: wait,
        });
    }
    let ok = core
        .hasher
        .verify(
            user.password_hash.clone(),
            SecretString::from(password.chars().take(1024).collect::<String>()),
        )
        .await?;
    if ok {
        core.store.throttle_clear(&key).await?;
        Ok(())
    } else {
        let ip = session.ip.as_deref();
        audit(
            core,
            ip,
            user,
            AuditAction::Reauth,
            Outcome::Failure,
            "wrong password",
        )
        .await?;
        Err(ServiceError::WrongPassword)
    }
}

/// The login's second step, for the request's pending second factor (the edge answers
/// `LoginExpired` without one, and clears its cookie whenever the answer is `LoginExpired`).
#[tracing::instrument(skip_all, fields(user_id = %pending.user.id))]
pub async fn login(
    core: &Core,
    pending: Pending,
    caller: &Caller,
    code: String,
) -> ServiceResult<Flow<LoginOutcome>> {
    let Pending { row, user, client } = pending;
    let ip = caller.ip.as_deref();
    if !check_second_factor(core, ip, &user, &code, FactorCheck::Login).await? {
        let failures = core.store.pending_failed(&row.token_hash).await?;
        if failures >= MAX_FAILURES {
            core.store.delete_pending(&row.token_hash).await?;
            return Err(ServiceError::LoginExpired);
        }
        return Err(ServiceError::SecondFactorFailed);
    }
    if !core.store.delete_pending(&row.token_hash).await? || !client.is_active() {
        return Err(ServiceError::LoginExpired);
    }
    let session = core
        .start_session(caller, &user, LoginMethod::PasswordAndCode)
        .await?;
    audit(
        core,
        ip,
        &user,
        AuditAction::LoginSecondFactor,
        Outcome::Success,
        "",
    )
    .await?;
    tracing::info!(user_id = %user.id, "login succeeded with second factor");
    Ok(Flow::value(LoginOutcome::LoggedIn)
        .with(session)
        .with(CookieIntent::Clear(cookies::PENDING)))
}

/// Who is activating: a logged-in user, or one in the enrolment the client requires.
pub enum Enroller {
    Session(Session),
    Pending(Pending),
}

impl Enroller {
    pub(crate) fn user(&self) -> &UserRow {
        match self {
            Enroller::Session(s) => &s.user,
            Enroller::Pending(p) => &p.user,
        }
    }

    pub(crate) fn client(&self) -> &ClientRow {
        match self {
            Enroller::Session(s) => &s.client,
            Enroller::Pending(p) => &p.client,
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn status(core: &Core, who: &Enroller) -> ServiceResult<TwoFactorStatus> {
    let (user, client) = (who.user(), who.client());
    let reauth_needed = match who {
        Enroller::Session(session) => core.clock.now() - session.created_at >= REAUTH_SECS,
        Enroller::Pending(_) => false,
    };
    Ok(TwoFactorStatus {
        reauth_needed,
        enabled: user.has_totp(),
        available: !client.uses_sso(),
        required: client.requires_2fa(),
        recovery_codes_left: core.store.recovery_codes_left(&user.id).await? as u32,
        passkeys: core.passkeys.for_client(client).is_some(),
        password: !client.uses_sso() && user.password_hash.is_some(),
    })
}

#[tracing::instrument(skip_all)]
pub async fn start(core: &Core, who: &Enroller) -> ServiceResult<TwoFactorEnrolment> {
    let (user, client) = (who.user(), who.client());
    if client.uses_sso() || user.has_totp() {
        return Err(ServiceError::Forbidden);
    }
    let secret = totp::generate_secret();
    let sealed = totp::seal(key(core), &secret)
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("cannot seal a TOTP secret")))?;
    core.store
        .set_pending_totp(&user.id, &sealed, core.clock.now())
        .await?;
    let account = format!("{}/{}", client.company_id, user.username);
    let uri = totp::otpauth_uri(&secret, &core.settings.totp_issuer, &account)
        .ok_or_else(|| ServiceError::Internal(anyhow::anyhow!("cannot build the otpauth URI")))?;
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("QR: {e}")))?;
    let svg = qr
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .build();
    Ok(TwoFactorEnrolment {
        secret: totp::secret_base32(&secret),
        otpauth_uri: uri,
        qr_code: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(svg)
        ),
    })
}

/// Activates with a first code; a logged-in user also confirms with the password unless the
/// login was a moment ago (the enrolment a client requires follows the password directly).
#[tracing::instrument(skip_all)]
pub async fn activate(
    core: &Core,
    who: Enroller,
    caller: &Caller,
    code: String,
    password: String,
) -> ServiceResult<Flow<Vec<String>>> {
    let user = who.user().clone();
    // A secret begun before the client was switched to SSO is not activated after it.
    if user.has_totp() || who.client().uses_sso() {
        return Err(ServiceError::Forbidden);
    }
    if let Enroller::Session(session) = &who {
        reauthenticate(core, session, &password).await?;
    }
    let ip = caller.ip.as_deref();
    let sealed = core
        .store
        .totp_secret(&user.id)
        .await?
        .ok_or(ServiceError::Forbidden)?;
    let secret = totp::open(key(core), &sealed).ok_or_else(|| {
        ServiceError::Internal(anyhow::anyhow!(
            "a TOTP secret cannot be opened with SECRET_KEY"
        ))
    })?;
    let Some(step) = totp::matching_step(&secret, &code, core.clock.now()) else {
        audit(
            core,
            ip,
            &user,
            AuditAction::TwoFactorActivation,
            Outcome::Failure,
            "wrong code",
        )
        .await?;
        return Err(ServiceError::SecondFactorFailed);
    };
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| totp::recovery_hash(key(core), c))
        .collect();
    if !core
        .store
        .activate_totp(&user.id, step, &hashes, core.clock.now())
        .await?
    {
        return Err(ServiceError::Forbidden);
    }
    // A new second factor: whatever its counter held (a lock among it) is over.
    factor_succeeded(core, &user).await?;
    let mut flow = Flow::value(codes);
    if let Enroller::Pending(pending) = who {
        // The enrolment the client required is done: now there is a session.
        core.store.delete_pending(&pending.row.token_hash).await?;
        flow = flow
            .with(
                core.start_session(caller, &user, LoginMethod::PasswordAndCode)
                    .await?,
            )
            .with(CookieIntent::Clear(cookies::PENDING));
    }
    audit(
        core,
        ip,
        &user,
        AuditAction::TwoFactorActivated,
        Outcome::Success,
        "",
    )
    .await?;
    Ok(flow)
}

/// Turns 2FA off: needs the password and a second factor, each counted.
#[tracing::instrument(skip_all, fields(user_id = %session.user.id))]
pub async fn deactivate(
    core: &Core,
    session: &Session,
    password: String,
    code: String,
) -> ServiceResult<()> {
    let (user, client) = (&session.user, &session.client);
    if client.requires_2fa() || client.uses_sso() || !user.has_totp() {
        return Err(ServiceError::Forbidden);
    }
    check_password(core, session, &password).await?;
    let ip = session.ip.as_deref();
    if !check_second_factor(core, ip, user, &code, FactorCheck::Deactivation).await? {
        return Err(ServiceError::SecondFactorFailed);
    }
    core.store.clear_totp(&user.id, core.clock.now()).await?;
    audit(
        core,
        ip,
        user,
        AuditAction::TwoFactorDeactivated,
        Outcome::Success,
        "",
    )
    .await?;
    Ok(())
}

/// New recovery codes (the old ones stop working): needs a second factor, and the password unless
/// the login was a moment ago.
#[tracing::instrument(skip_all, fields(user_id = %session.user.id))]
pub async fn new_recovery_codes(
    core: &Core,
    session: &Session,
    code: String,
    password: String,
) -> ServiceResult<Vec<String>> {
    let user = &session.user;
    if !user.has_totp() || session.client.uses_sso() {
        return Err(ServiceError::Forbidden);
    }
    reauthenticate(core, session, &password).await?;
    let ip = session.ip.as_deref();
    if !check_second_factor(core, ip, user, &code, FactorCheck::RecoveryCodes).await? {
        return Err(ServiceError::SecondFactorFailed);
    }
    let codes = totp::new_recovery_codes();
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| totp::recovery_hash(key(core), c))
        .collect();
    core.store
        .replace_recovery_codes(&user.id, &hashes, core.clock.now())
        .await?;
    audit(
        core,
        ip,
        user,
        AuditAction::TwoFactorRecoveryCodesRenewed,
        Outcome::Success,
        "",
    )
    .await?;
    Ok(codes)
}

pub(crate) async fn audit(
    core: &Core,
    ip: Option<&str>,
    user: &UserRow,
    action: AuditAction,
    outcome: Outcome,
    detail: &str,
) -> ServiceResult<()> {
    if action == AuditAction::LoginSecondFactor {
        let (client_id, user_id) = (Some(user.client_id.as_str()), Some(user.id.as_str()));
        return core
            .record_login(action, outcome, client_id, user_id, detail, ip)
            .await;
    }
    let event = Event::own(user, action, outcome).detail(detail).ip(ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}
