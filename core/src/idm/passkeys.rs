//! Passkeys (WebAuthn, with webauthn-rs): added on the Security page (or in the enrolment a client
//! that requires 2FA asks for), used as the second factor after the password, or alone on the
//! login page with a discoverable credential (which names the user, and so the client).
//!
//! - The relying party is the host of `PUBLIC_URL`; with an IP address there are no passkeys.
//!   They are off for SSO clients (their IdP does this) and where an operator turned them off.
//! - A ceremony's state (webauthn-rs's, serialised) is a row keyed by the SHA-256 of a secret in a
//!   short-lived cookie: any instance finishes what another began, each ceremony once, within 5
//!   minutes.
//! - webauthn-rs requires user verification for passkeys (a PIN or biometric on the device), so a
//!   passkey is two factors on its own; sign counters and backup flags are checked by it and stored
//!   after every use; attestation is not asked for.
//! - A user with a usable passkey has a second factor: after the password they give a code or use
//!   the passkey; a password reset through a mail link asks for it too (a ceremony tied to the
//!   link, [`reset_start`]). A refused passkey counts on the user's second-factor counter like a
//!   wrong code (`crate::idm::two_factor`), with its waits and its lock.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::cookies;
use crate::idm::Core;
use crate::idm::principal::{Caller, CookieIntent, Flow, Pending, Session};
use crate::idm::sessions::LoginMethod;
use crate::idm::two_factor::{self, Enroller, FactorCheck};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::infra::mail::templates::MailContent;
use crate::infra::token;
use crate::store::clients::ClientRow;
use crate::store::links::LinkRow;
use crate::store::passkeys::PasskeyRow;
use crate::store::users::{UserRow, UserStatus};
use base64::Engine;
use promio_api::SecondFactorMethods;
use promio_api::{LoginOutcome, PasskeyInfo, PasskeyOptions, PasskeyStatus};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid, Webauthn,
};

/// The cookie that holds a ceremony's secret.
pub const COOKIE: &str = "passkey";
/// How long a ceremony may take.
pub const CEREMONY_SECS: i64 = 5 * 60;
/// Passkeys one user may have (each is a credential the second step lists).
pub const MAX_PER_USER: usize = 20;
/// The longest passkey name.
pub const NAME_MAX: usize = 64;
/// Logins with a passkey begun per address and window (the login page begins one per view, for
/// the browser's autofill).
pub const LOGIN_STARTS_PER_IP: i64 = 300;
const LOGIN_STARTS_WINDOW: i64 = 5 * 60;
/// Passkey confirmations of one password-reset link begun in that window at most.
pub const RESET_STARTS_PER_LINK: i64 = 20;

pub use crate::infra::webauthn::Passkeys;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    SecondFactor,
    Login,
    /// Confirming a password reset through a mail link.
    Reset,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::SecondFactor => "second_factor",
            Kind::Login => "login",
            Kind::Reset => "reset",
        }
    }
}

/// Stores a ceremony's state and returns the cookie that names it.
async fn begin<S: serde::Serialize>(
    core: &Core,
    kind: Kind,
    user_id: Option<&str>,
    state: &S,
) -> ServiceResult<CookieIntent> {
    let state = serde_json::to_string(state)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey ceremony state: {e}")))?;
    let issued = token::issue();
    let now = core.clock.now();
    core.store
        .insert_ceremony(
            &issued.hash,
            kind.as_str(),
            user_id,
            &state,
            now,
            now + CEREMONY_SECS,
        )
        .await?;
    Ok(CookieIntent::ShortLived(
        COOKIE,
        issued.secret,
        CEREMONY_SECS,
    ))
}

/// Takes the caller's ceremony of `kind` (for `user_id`, when it has a user): it ends here,
/// whatever follows. Anything else (none, another kind or user, expired) is a failed passkey.
async fn take<S: serde::de::DeserializeOwned>(
    core: &Core,
    caller: &Caller,
    kind: Kind,
    user_id: Option<&str>,
) -> ServiceResult<S> {
    let Some(hash) = &caller.passkey_token else {
        return Err(ServiceError::PasskeyFailed);
    };
    let Some(row) = core.store.take_ceremony(hash).await? else {
        return Err(ServiceError::PasskeyFailed);
    };
    if row.kind != kind.as_str()
        || row.user_id.as_deref() != user_id
        || row.expires_at <= core.clock.now()
    {
        return Err(ServiceError::PasskeyFailed);
    }
    serde_json::from_str(&row.state).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!(
            "a stored passkey ceremony cannot be read: {e}"
        ))
    })
}

fn options<S: serde::Serialize>(options: &S) -> ServiceResult<PasskeyOptions> {
    Ok(PasskeyOptions {
        options: serde_json::to_string(options)
            .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey options: {e}")))?,
    })
}

/// The browser's answer, as webauthn-rs reads it; anything unreadable is a failed passkey.
fn answer<T: serde::de::DeserializeOwned>(credential: &str) -> ServiceResult<T> {
    if credential.len() > 64 * 1024 {
        return Err(ServiceError::PasskeyFailed);
    }
    serde_json::from_str(credential).map_err(|_| ServiceError::PasskeyFailed)
}

fn stored(row: &PasskeyRow) -> ServiceResult<Passkey> {
    serde_json::from_str(&row.passkey).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!("a stored passkey cannot be read: {e}"))
    })
}

fn credential_id(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn user_uuid(user: &UserRow) -> ServiceResult<Uuid> {
    Uuid::parse_str(&user.id)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("a user id is not a UUID: {e}")))
}

/// A name as the user typed it: trimmed, without control characters, at most [`NAME_MAX`]
/// characters; empty becomes "Passkey".
pub fn clean_name(raw: &str) -> String {
    let name = crate::domain::audit::clean_text(raw.trim(), NAME_MAX);
    let name = name.trim();
    if name.is_empty() {
        "Passkey".to_owned()
    } else {
        name.to_owned()
    }
}

fn info(core: &Core, row: &PasskeyRow, lang: promio_api::i18n::Lang) -> PasskeyInfo {
    let at = |t| crate::infra::mail::templates::format_time(t, lang, &core.time_zone);
    PasskeyInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        added: at(row.created_at),
        last_used: row.last_used_at.map(at),
    }
}

/// Whether the user has a passkey they can use now (their client allows them).
pub async fn usable(core: &Core, client: &ClientRow, user: &UserRow) -> bool {
    user.passkeys > 0 && core.passkeys.for_client(client).is_some()
}

async fn audit(
    core: &Core,
    caller: &Caller,
    user: &UserRow,
    action: AuditAction,
    outcome: Outcome,
    detail: &str,
) -> ServiceResult<()> {
    let event = Event::own(user, action, outcome)
        .detail(detail)
        .ip(caller.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

/// The Security page's list.
pub async fn status(core: &Core, session: &Session) -> ServiceResult<PasskeyStatus> {
    let available = core.passkeys.for_client(&session.client).is_some();
    let rows = core.store.passkeys_of(&session.user.id).await?;
    Ok(PasskeyStatus {
        available,
        passkeys: rows.iter().map(|r| info(core, r, session.lang)).collect(),
        reauth_needed: core.clock.now() - session.created_at >= crate::idm::two_factor::REAUTH_SECS,
    })
}

/// Begins adding a passkey. A logged-in user confirms with the password unless the login was a
/// moment ago; the enrolment a client requires follows the password directly.
pub async fn register_start(
    core: &Core,
    who: &Enroller,
    password: String,
) -> ServiceResult<Flow<PasskeyOptions>> {
    let (user, client) = (who.user(), who.client());
    let webauthn = core
        .passkeys
        .for_client(client)
        .ok_or(ServiceError::Forbidden)?;
    if let Enroller::Session(session) = who {
        crate::idm::two_factor::reauthenticate(core, session, &password).await?;
    }
    let existing = core.store.passkeys_of(&user.id).await?;
    if existing.len() >= MAX_PER_USER {
        return Err(ServiceError::PasskeyLimit {
            max: MAX_PER_USER as u32,
        });
    }
    let mut exclude = Vec::with_capacity(existing.len());
    for row in &existing {
        exclude.push(stored(row)?.cred_id().clone());
    }
    let account = format!("{}/{}", client.company_id, user.username);
    let display = crate::infra::mail::display_name(user);
    let (mut creation, state): (_, PasskeyRegistration) = webauthn
        .start_passkey_registration(user_uuid(user)?, &account, &display, Some(exclude))
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey registration: {e}")))?;
    // Discoverable where the device can (so the passkey alone can log in); a device that cannot
    // still registers a passkey for the second step.
    if let Some(selection) = creation.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Preferred);
    }
    let cookie = begin(core, Kind::Register, Some(&user.id), &state).await?;
    Ok(Flow::value(options(&creation)?).with(cookie))
}

/// Finishes adding a passkey: stored under `name`, audited, the user told by mail. After the
/// enrolment a client requires, the user is logged in.
pub async fn register_finish(
    core: &Core,
    who: Enroller,
    caller: &Caller,
    credential: String,
    name: String,
) -> ServiceResult<Flow<PasskeyInfo>> {
    let user = who.user().clone();
    let client = who.client().clone();
    let webauthn = core
        .passkeys
        .for_client(&client)
        .ok_or(ServiceError::Forbidden)?;
    let state: PasskeyRegistration = take(core, caller, Kind::Register, Some(&user.id)).await?;
    let answer: RegisterPublicKeyCredential = answer(&credential)?;
    let passkey = match webauthn.finish_passkey_registration(&answer, &state) {
        Ok(passkey) => passkey,
        Err(e) => {
            let detail = format!("passkey not added: {e}");
            audit(
                core,
                caller,
                &user,
                AuditAction::PasskeyAdded,
                Outcome::Failure,
                &detail,
            )
            .await?;
            return Err(ServiceError::PasskeyFailed);
        }
    };
    if core.store.passkeys_of(&user.id).await?.len() >= MAX_PER_USER {
        return Err(ServiceError::PasskeyLimit {
            max: MAX_PER_USER as u32,
        });
    }
    let name = clean_name(&name);
    let json = serde_json::to_string(&passkey)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey: {e}")))?;
    let row = core
        .store
        .insert_passkey(
            &user.id,
            &credential_id(passkey.cred_id()),
            &name,
            &json,
            core.clock.now(),
        )
        .await?
        .ok_or(ServiceError::PasskeyFailed)?;
    audit(
        core,
        caller,
        &user,
        AuditAction::PasskeyAdded,
        Outcome::Success,
        &name,
    )
    .await?;
    // A new second factor: whatever its counter held (a lock among it) is over.
    two_factor::factor_succeeded(core, &user).await?;
    let content = MailContent::PasskeyAdded {
        login_link: core.settings.public_url.to_string(),
        name: name.clone(),
    };
    core.mail_user(&user, content).await?;
    let mut flow = Flow::value(info(core, &row, caller.lang)).with(CookieIntent::Clear(COOKIE));
    if let Enroller::Pending(pending) = who {
        // The enrolment the client required is done: now there is a session.
        core.store.delete_pending(&pending.row.token_hash).await?;
        flow = flow
            .with(
                core.start_session(caller, &user, LoginMethod::PasswordAndPasskey)
                    .await?,
            )
            .with(CookieIntent::Clear(cookies::PENDING));
    }
    Ok(flow)
}

pub async fn rename(
    core: &Core,
    session: &Session,
    id: String,
    name: String,
) -> ServiceResult<PasskeyInfo> {
    let name = clean_name(&name);
    if !core
        .store
        .rename_passkey(&session.user.id, id.trim(), &name)
        .await?
    {
        return Err(ServiceError::NotFound);
    }
    let row = core
        .store
        .passkey(&session.user.id, id.trim())
        .await?
        .ok_or(ServiceError::NotFound)?;
    Ok(info(core, &row, session.lang))
}

/// Removes one of the user's passkeys, with the password again unless the login was a moment ago.
pub async fn remove(
    core: &Core,
    session: &Session,
    caller: &Caller,
    id: String,
    password: String,
) -> ServiceResult<()> {
    let row = core
        .store
        .passkey(&session.user.id, id.trim())
        .await?
        .ok_or(ServiceError::NotFound)?;
    crate::idm::two_factor::reauthenticate(core, session, &password).await?;
    if !core.store.delete_passkey(&session.user.id, &row.id).await? {
        return Err(ServiceError::NotFound);
    }
    audit(
        core,
        caller,
        &session.user,
        AuditAction::PasskeyRemoved,
        Outcome::Success,
        &row.name,
    )
    .await
}

/// Begins a login with a passkey alone (the browser lets the person pick one of theirs).
pub async fn login_start(core: &Core, caller: &Caller) -> ServiceResult<Flow<PasskeyOptions>> {
    let webauthn = core
        .passkeys
        .relying_party()
        .ok_or(ServiceError::Forbidden)?;
    if let Some(bucket) = &caller.ip_bucket {
        let allowed = core
            .store
            .rate_limit(
                &format!("passkey-ip:{bucket}"),
                core.clock.now(),
                LOGIN_STARTS_WINDOW,
                LOGIN_STARTS_PER_IP,
            )
            .await?;
        if !allowed {
            return Err(ServiceError::TooManyAttempts {
                retry_after_secs: LOGIN_STARTS_WINDOW as u64,
            });
        }
    }
    let (request, state): (_, DiscoverableAuthentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey login: {e}")))?;
    let cookie = begin(core, Kind::Login, None, &state).await?;
    Ok(Flow::value(options(&request)?).with(cookie))
}

/// Finishes a login with a passkey alone: the same rules as every login (deactivated users and
/// clients refused, the address's throttling, audit, one session).
pub async fn login_finish(
    core: &Core,
    caller: &Caller,
    credential: String,
) -> ServiceResult<Flow<LoginOutcome>> {
    let now = core.clock.now();
    if let Some(bucket) = &caller.ip_bucket {
        let row = core
            .store
            .throttle_row(&crate::idm::throttle::ip_key(bucket))
            .await?;
        if let Some(wait) = crate::idm::throttle::ip_wait(row.as_ref(), now) {
            return Err(ServiceError::TooManyAttempts {
                retry_after_secs: wait.max(1) as u64,
            });
        }
    }
    let result = passwordless(core, caller, credential).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(_) => "failure",
    };
    core.metrics.login("passkey", outcome);
    if result.is_err() {
        crate::idm::throttle::ip_failed(&core.store, caller.ip_bucket.as_deref(), now).await?;
    }
    result
}

async fn passwordless(
    core: &Core,
    caller: &Caller,
    credential: String,
) -> ServiceResult<Flow<LoginOutcome>> {
    let webauthn = core
        .passkeys
        .relying_party()
        .ok_or(ServiceError::Forbidden)?;
    let state: DiscoverableAuthentication = take(core, caller, Kind::Login, None).await?;
    let answer: PublicKeyCredential = answer(&credential)?;
    let Ok((handle, raw_id)) = webauthn.identify_discoverable_authentication(&answer) else {
        return Err(ServiceError::PasskeyFailed);
    };
    let Some(row) = core
        .store
        .passkey_by_credential(&credential_id(raw_id))
        .await?
    else {
        refused(core, caller, None, "unknown passkey").await?;
        return Err(ServiceError::PasskeyFailed);
    };
    let Some(user) = core.store.user_of(&row).await? else {
        return Err(ServiceError::PasskeyFailed);
    };
    if user_uuid(&user)? != handle {
        refused(core, caller, Some(&user), "passkey of another user").await?;
        return Err(ServiceError::PasskeyFailed);
    }
    let Some(client) = core.store.client_by_id(&user.client_id).await? else {
        return Err(ServiceError::PasskeyFailed);
    };
    let why_not = if !client.is_active() {
        Some("client deactivated")
    } else if user.status() != UserStatus::Active {
        Some("user not active")
    } else if core.passkeys.for_client(&client).is_none() {
        Some("passkeys not allowed for the client")
    } else {
        None
    };
    if let Some(why) = why_not {
        refused(core, caller, Some(&user), why).await?;
        return Err(ServiceError::PasskeyFailed);
    }
    let mut passkey = stored(&row)?;
    let result = match webauthn.finish_discoverable_authentication_v2(&answer, state, &passkey) {
        Ok(result) if result.user_verified() => result,
        Ok(_) => {
            refused(core, caller, Some(&user), "no user verification").await?;
            return Err(ServiceError::PasskeyFailed);
        }
        Err(e) => {
            refused(core, caller, Some(&user), &format!("passkey refused: {e}")).await?;
            return Err(ServiceError::PasskeyFailed);
        }
    };
    if !used(core, &row, &mut passkey, &result).await? {
        refused(
            core,
            caller,
            Some(&user),
            "sign counter not ahead (a cloned passkey?)",
        )
        .await?;
        return Err(ServiceError::PasskeyFailed);
    }
    let session = core
        .start_session(caller, &user, LoginMethod::Passkey)
        .await?;
    let event = Event::login(
        AuditAction::LoginPasskey,
        Outcome::Success,
        Some(&user.client_id),
        Some(&user.id),
    )
    .detail(&row.name)
    .ip(caller.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await?;
    tracing::info!(user_id = %user.id, "login with a passkey");
    Ok(Flow::value(LoginOutcome::LoggedIn)
        .with(session)
        .with(CookieIntent::Clear(COOKIE)))
}

/// Records a refused passkey login (the reason goes only to the log).
async fn refused(
    core: &Core,
    caller: &Caller,
    user: Option<&UserRow>,
    why: &str,
) -> ServiceResult<()> {
    let event = Event::login(
        AuditAction::LoginPasskey,
        Outcome::Failure,
        user.map(|u| u.client_id.as_str()),
        user.map(|u| u.id.as_str()),
    )
    .detail(why)
    .ip(caller.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

/// Stores what a use changed in the credential (counter, backup flags) and when it was used;
/// false when its counter is not above the highest seen (see `Store::passkey_used`).
async fn used(
    core: &Core,
    row: &PasskeyRow,
    passkey: &mut Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> ServiceResult<bool> {
    let changed = passkey.update_credential(result) == Some(true);
    let json = if changed {
        Some(
            serde_json::to_string(&*passkey)
                .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey: {e}")))?,
        )
    } else {
        None
    };
    Ok(core
        .store
        .passkey_used(
            &row.id,
            json.as_deref(),
            i64::from(result.counter()),
            core.clock.now(),
        )
        .await?)
}

/// What the second step offers the pending user.
pub async fn second_factor_methods(
    core: &Core,
    pending: &Pending,
) -> ServiceResult<SecondFactorMethods> {
    Ok(SecondFactorMethods {
        code: pending.user.has_totp(),
        passkey: usable(core, &pending.client, &pending.user).await,
    })
}

/// An authentication with one of the user's passkeys (none: `Forbidden`).
fn start_authentication(
    webauthn: &Webauthn,
    rows: &[PasskeyRow],
) -> ServiceResult<(RequestChallengeResponse, PasskeyAuthentication)> {
    if rows.is_empty() {
        return Err(ServiceError::Forbidden);
    }
    let mut passkeys = Vec::with_capacity(rows.len());
    for row in rows {
        passkeys.push(stored(row)?);
    }
    webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("passkey authentication: {e}")))
}

/// What an answer to an authentication with one of a user's passkeys came to.
enum Asserted {
    /// The passkey that answered; its use (counter, flags, time) is stored.
    Used(PasskeyRow),
    /// Refused, and why (for the log; the audit log says "passkey refused").
    Refused(String),
}

/// Checks the browser's answer to `state` (begun for `user`) and stores the passkey's use.
async fn assert_passkey(
    core: &Core,
    webauthn: &Webauthn,
    state: &PasskeyAuthentication,
    user: &UserRow,
    credential: &str,
) -> ServiceResult<Asserted> {
    let Ok(answer) = answer::<PublicKeyCredential>(credential) else {
        return Ok(Asserted::Refused("passkey answer unreadable".to_owned()));
    };
    let Some(row) = core
        .store
        .passkey_by_credential(&credential_id(answer.get_credential_id()))
        .await?
        .filter(|r| r.user_id == user.id)
    else {
        return Ok(Asserted::Refused(
            "passkey unknown or of another user".to_owned(),
        ));
    };
    let result = match webauthn.finish_passkey_authentication(&answer, state) {
        Ok(result) => result,
        Err(e) => {
            return Ok(Asserted::Refused(format!(
                "passkey {} refused: {e}",
                row.name
            )));
        }
    };
    let mut passkey = stored(&row)?;
    if !used(core, &row, &mut passkey, &result).await? {
        return Ok(Asserted::Refused(
            "passkey sign counter not ahead (a cloned passkey?)".to_owned(),
        ));
    }
    Ok(Asserted::Used(row))
}

/// Begins the second step with one of the pending user's passkeys.
pub async fn second_factor_start(
    core: &Core,
    pending: &Pending,
) -> ServiceResult<Flow<PasskeyOptions>> {
    let webauthn = core
        .passkeys
        .for_client(&pending.client)
        .ok_or(ServiceError::Forbidden)?;
    let rows = core.store.passkeys_of(&pending.user.id).await?;
    let (request, state) = start_authentication(webauthn, &rows)?;
    let cookie = begin(core, Kind::SecondFactor, Some(&pending.user.id), &state).await?;
    Ok(Flow::value(options(&request)?).with(cookie))
}

/// Finishes the second step with a passkey: as a right code, it ends the pending state and starts
/// the session; a refused passkey counts as a wrong code (on the pending state, and on the user's
/// second-factor counter, which is counted first and may refuse at once).
pub async fn second_factor_finish(
    core: &Core,
    pending: Pending,
    caller: &Caller,
    credential: String,
) -> ServiceResult<Flow<LoginOutcome>> {
    let Pending { row, user, client } = pending;
    let webauthn = core
        .passkeys
        .for_client(&client)
        .ok_or(ServiceError::Forbidden)?;
    let ip = caller.ip.as_deref();
    let place = FactorCheck::Login;
    let attempts = two_factor::factor_attempt(core, ip, &user, place).await?;
    let taken = take::<PasskeyAuthentication>(core, caller, Kind::SecondFactor, Some(&user.id));
    let state = match taken.await {
        Ok(state) => Some(state),
        Err(ServiceError::PasskeyFailed) => None,
        Err(e) => return Err(e),
    };
    let asserted = match &state {
        Some(state) => assert_passkey(core, webauthn, state, &user, &credential).await?,
        None => Asserted::Refused("no passkey ceremony of this login".to_owned()),
    };
    let passkey_row = match asserted {
        Asserted::Used(passkey_row) => passkey_row,
        Asserted::Refused(why) => {
            tracing::info!(user_id = %user.id, reason = %why, "passkey refused");
            two_factor::factor_failed(core, ip, &user, place, attempts, "passkey refused").await?;
            let failures = core.store.pending_failed(&row.token_hash).await?;
            if failures >= two_factor::MAX_FAILURES {
                core.store.delete_pending(&row.token_hash).await?;
                return Err(ServiceError::LoginExpired);
            }
            return Err(ServiceError::PasskeyFailed);
        }
    };
    two_factor::factor_succeeded(core, &user).await?;
    if !core.store.delete_pending(&row.token_hash).await? || !client.is_active() {
        return Err(ServiceError::LoginExpired);
    }
    let session = core
        .start_session(caller, &user, LoginMethod::PasswordAndPasskey)
        .await?;
    two_factor::audit(
        core,
        ip,
        &user,
        AuditAction::LoginSecondFactor,
        Outcome::Success,
        &format!("passkey {}", passkey_row.name),
    )
    .await?;
    Ok(Flow::value(LoginOutcome::LoggedIn)
        .with(session)
        .with(CookieIntent::Clear(cookies::PENDING))
        .with(CookieIntent::Clear(COOKIE)))
}

/// A reset link's passkey ceremony: webauthn-rs's state and the link (its token's hash) it was
/// begun for, so that it confirms that link and no other.
#[derive(serde::Serialize, serde::Deserialize)]
struct ResetCeremony {
    link: String,
    state: PasskeyAuthentication,
}

/// Begins confirming a password reset with one of the user's passkeys, for a valid reset link
/// (`crate::idm::links::passkey_reset_start` found it) of a user who may use passkeys.
pub(crate) async fn reset_ceremony_start(
    core: &Core,
    link: LinkRow,
    user: &UserRow,
    client: &ClientRow,
) -> ServiceResult<Flow<PasskeyOptions>> {
    let webauthn = core
        .passkeys
        .for_client(client)
        .ok_or(ServiceError::Forbidden)?;
    // Each start stores a ceremony: whoever holds the link may start a few, not without end.
    let allowed = core
        .store
        .rate_limit(
            &format!("passkey-reset:{}", link.token_hash),
            core.clock.now(),
            LOGIN_STARTS_WINDOW,
            RESET_STARTS_PER_LINK,
        )
        .await?;
    if !allowed {
        return Err(ServiceError::TooManyAttempts {
            retry_after_secs: LOGIN_STARTS_WINDOW as u64,
        });
    }
    let rows = core.store.passkeys_of(&user.id).await?;
    let (request, state) = start_authentication(webauthn, &rows)?;
    let ceremony = ResetCeremony {
        link: link.token_hash,
        state,
    };
    let cookie = begin(core, Kind::Reset, Some(&user.id), &ceremony).await?;
    Ok(Flow::value(options(&request)?).with(cookie))
}

/// Checks the passkey that confirms a password reset through `link`: counted on the user's
/// second-factor counter like a code, before anything is looked at (so it may refuse at once); the
/// caller's ceremony must have been begun for this link. False for a refused passkey (counted and
/// audited).
pub(crate) async fn check_for_reset(
    core: &Core,
    caller: &Caller,
    link: &LinkRow,
    client: &ClientRow,
    user: &UserRow,
    credential: &str,
) -> ServiceResult<bool> {
    let webauthn = core
        .passkeys
        .for_client(client)
        .ok_or(ServiceError::Forbidden)?;
    let ip = caller.ip.as_deref();
    let place = FactorCheck::ResetLink;
    let attempts = two_factor::factor_attempt(core, ip, user, place).await?;
    let ceremony = match take::<ResetCeremony>(core, caller, Kind::Reset, Some(&user.id)).await {
        Ok(ceremony) if ceremony.link == link.token_hash => Some(ceremony),
        Ok(_) | Err(ServiceError::PasskeyFailed) => None,
        Err(e) => return Err(e),
    };
    let asserted = match &ceremony {
        Some(ceremony) => assert_passkey(core, webauthn, &ceremony.state, user, credential).await?,
        None => Asserted::Refused("no passkey ceremony of this link".to_owned()),
    };
    match asserted {
        Asserted::Used(row) => {
            two_factor::factor_succeeded(core, user).await?;
            tracing::info!(user_id = %user.id, passkey = %row.name, "reset confirmed with a passkey");
            Ok(true)
        }
        Asserted::Refused(why) => {
            tracing::info!(user_id = %user.id, reason = %why, "passkey refused");
            two_factor::factor_failed(core, ip, user, place, attempts, "passkey refused").await?;
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_urls_domain() {
        let at = |u: &str| Passkeys::new(&url::Url::parse(u).expect("a URL"));
        assert!(at("https://login.example.com").relying_party().is_some());
        assert!(at("http://localhost:3000").relying_party().is_some());
        assert!(at("http://127.0.0.1:3000").relying_party().is_none());
        assert!(at("http://[::1]:3000").relying_party().is_none());
    }

    #[test]
    fn names_are_cleaned_and_never_empty() {
        assert_eq!(clean_name("  Laptop \n"), "Laptop");
        assert_eq!(clean_name(""), "Passkey");
        assert_eq!(clean_name("a\u{1b}[31mb"), "a [31mb");
        assert_eq!(clean_name(&"x".repeat(100)).chars().count(), NAME_MAX + 1);
    }
}
