//! The login flow, one state machine for every way in:
//!
//! ```text
//! credentials ──parse──▶ invalid input (400, names the field)
//!      │
//!      ▼
//! client uses SSO? ────▶ UseSso (its users have no password)
//!      │
//!      ▼  argon2 verify (against a dummy hash when there is no user or no password yet)
//! Failed ◀── unknown company │ unknown user │ wrong password │ user or client inactive
//!      │                      (one answer, one status, the same argon2 work)
//!      ▼
//! user has TOTP on ────────▶ PendingTotp       (a pending second factor, not a session)
//! client requires 2FA ─────▶ PendingEnrolment  (a pending second factor, not a session)
//! user's passkeys are off ─▶ PendingEnrolment  (the client turned passkeys off: a second factor
//!                                               the user chose is not dropped silently)
//! otherwise ───────────────▶ Session
//! ```
//!
//! [`decide`] is the pure transition after the password check; [`password_step`] does the I/O
//! around it. Every outcome is written to the audit log; the reason of a failure goes only there.

use crate::domain::PendingKind;
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::clock::UnixTime;
use crate::domain::cookies::RememberedCompany;
use crate::domain::{CompanyId, LoginPassword, UserName};
use crate::idm::Core;
use crate::idm::principal::{Caller, CookieIntent, Flow};
use crate::idm::throttle;
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::infra::password::Checker;
use crate::infra::token;
use crate::store::clients::ClientRow;
use crate::store::login::{BlockingLogin, LoginKeys, LoginLookup};
use crate::store::users::{UserRow, UserStatus};
use promio_api::{LoginForm, LoginOutcome};
use secrecy::SecretString;

/// How long the state between the password and the second factor lasts.
pub const PENDING_TTL_SECS: i64 = 5 * 60;

/// Why a password step failed; recorded in the audit log, never shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    UnknownCompany,
    UnknownUser,
    WrongPassword,
    NoPasswordYet,
    UserDeactivated,
    ClientDeactivated,
}

impl FailReason {
    fn as_str(self) -> &'static str {
        match self {
            FailReason::UnknownCompany => "unknown company",
            FailReason::UnknownUser => "unknown user",
            FailReason::WrongPassword => "wrong password",
            FailReason::NoPasswordYet => "password not set yet",
            FailReason::UserDeactivated => "user deactivated",
            FailReason::ClientDeactivated => "client deactivated",
        }
    }
}

/// The state after the password step.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordStep {
    UseSso,
    Failed(FailReason),
    PendingTotp,
    PendingEnrolment,
    Session,
}

/// The transition once the password has been checked (`password_ok` is false for a dummy check).
/// `passkey_usable`: the user has a passkey their client allows, which is a second factor too.
/// A user with passkeys that cannot be used (the client turned them off) and no TOTP has lost
/// the second factor they chose: they set up another before a session, as where 2FA is required.
pub fn decide(
    client: Option<&ClientRow>,
    user: Option<&UserRow>,
    password_ok: bool,
    passkey_usable: bool,
) -> PasswordStep {
    let Some(client) = client else {
        return PasswordStep::Failed(FailReason::UnknownCompany);
    };
    if client.uses_sso() {
        return PasswordStep::UseSso;
    }
    let Some(user) = user else {
        return PasswordStep::Failed(FailReason::UnknownUser);
    };
    if user.password_hash.is_none() {
        return PasswordStep::Failed(FailReason::NoPasswordYet);
    }
    if !password_ok {
        return PasswordStep::Failed(FailReason::WrongPassword);
    }
    if user.status() != UserStatus::Active {
        return PasswordStep::Failed(FailReason::UserDeactivated);
    }
    if !client.is_active() {
        return PasswordStep::Failed(FailReason::ClientDeactivated);
    }
    if user.has_totp() || passkey_usable {
        PasswordStep::PendingTotp
    } else if client.requires_2fa() || user.has_passkeys() {
        PasswordStep::PendingEnrolment
    } else {
        PasswordStep::Session
    }
}

/// The login form's password step (the page's and the no-script form's): [`password_step`], and
/// once the password was right (whatever comes next) the browser remembers the company ID, to
/// fill it in next time.
pub async fn form_password_step(
    core: &Core,
    caller: &Caller,
    form: LoginForm,
) -> ServiceResult<Flow<LoginOutcome>> {
    let company = RememberedCompany::parse(&form.company_id);
    let flow = password_step(core, caller, form).await?;
    Ok(match company {
        Some(id) => flow.with(CookieIntent::RememberCompany(id)),
        None => flow,
    })
}

#[tracing::instrument(skip_all, fields(company_id = %form.company_id.chars().take(40).collect::<String>()))]
pub async fn password_step(
    core: &Core,
    caller: &Caller,
    form: LoginForm,
) -> ServiceResult<Flow<LoginOutcome>> {
    let company_id = CompanyId::parse(&form.company_id)?;
    let username = UserName::parse(&form.username)?;
    let password = LoginPassword::parse(form.password)?;

    let ip = caller.ip.clone();
    let ip_bucket = caller.ip_bucket.clone();
    let ip_key = ip_bucket.as_deref().map(throttle::ip_key);
    let key = throttle::account_key(&company_id, &username);
    let now = core.clock.now();
    // One trip: the client, the user, the IP's counter, and this attempt counted on the account
    // (before any hashing, and even when the company or user does not exist, so the answer cannot
    // tell them apart) unless the client uses SSO or the IP must wait. Then the password is
    // checked if the lookup allows it ([`gate`]). On SQLite both run on the hashing thread, and
    // so does the session of a login that needs nothing more (see `BlockingLogin`).
    let Looked { lookup, checked } = match core.store.blocking_login() {
        Some(db) => {
            let request = HereRequest {
                company_id: company_id.clone(),
                username: username.clone(),
                ip_key: ip_key.clone(),
                account_key: key.clone(),
                password,
                // An old session is ended first, through the pool: only without one does the
                // session start here.
                start_session: caller.session_token.is_none(),
                ip: ip.clone(),
                user_agent: caller.user_agent.clone(),
                clock: std::sync::Arc::clone(&core.clock),
            };
            core.hasher
                .check_beside(move |checker| look_up_and_check_here(&db, checker, request, now))
                .await?
                .context("reading, counting and writing a password login")?
        }
        None => {
            let lookup = core
                .store
                .login_lookup(
                    &LoginKeys {
                        company_id: &company_id,
                        username: &username,
                        ip_key: ip_key.as_deref(),
                        account_key: &key,
                        ip_failures: throttle::IP_FAILURES,
                        reset_after: throttle::ACCOUNT_RESET_AFTER,
                    },
                    now,
                )
                .await
                .context("reading and counting a password login")?;
            let checked = match gate(&lookup, now) {
                Gate::Check => {
                    let hash = lookup.user.as_ref().and_then(|u| u.password_hash.clone());
                    let password_ok = core
                        .hasher
                        .verify(hash, SecretString::from(password.expose().to_owned()))
                        .await?;
                    Some(Checked {
                        password_ok,
                        session: None,
                    })
                }
                _ => None,
            };
            Looked { lookup, checked }
        }
    };
    let LoginLookup {
        client,
        user,
        ip_row,
        attempts,
    } = lookup;
    if client.as_ref().is_some_and(ClientRow::uses_sso) {
        // Decided before any hashing: SSO clients' users have no password to check.
        record(
            core,
            caller,
            client.as_ref(),
            None,
            Outcome::Refused,
            "client uses SSO",
        )
        .await?;
        return Err(ServiceError::UseSso);
    }
    if let Some(wait) = throttle::ip_wait(ip_row.as_ref(), now) {
        if let Some(ip_key) = &ip_key {
            refused_while_waiting(
                core,
                caller,
                client.as_ref(),
                ip_key,
                "too many failures from this IP",
            )
            .await?;
        }
        return Err(ServiceError::LoginFailed {
            retry_after_secs: Some(wait.max(1) as u64),
        });
    }
    let attempts = match attempts {
        Some(a) if a <= throttle::LOCK_AFTER => a,
        // Past the lock: counted, but the password is not checked.
        Some(_) => {
            refused_while_waiting(core, caller, client.as_ref(), &key, "account locked").await?;
            return Err(ServiceError::AccountLocked);
        }
        None => {
            let row = core.store.throttle_row(&key).await?;
            if throttle::is_locked(row.as_ref()) {
                refused_while_waiting(core, caller, client.as_ref(), &key, "account locked")
                    .await?;
                return Err(ServiceError::AccountLocked);
            }
            let wait = row
                .map(|r| (r.blocked_until - now).max(1) as u64)
                .unwrap_or(1);
            refused_while_waiting(
                core,
                caller,
                client.as_ref(),
                &key,
                "account waiting after failures",
            )
            .await?;
            return Err(ServiceError::LoginFailed {
                retry_after_secs: Some(wait),
            });
        }
    };
    // `gate` let the check run exactly when none of the refusals above applies.
    let Some(Checked {
        password_ok,
        session,
    }) = checked
    else {
        return Err(ServiceError::Internal(anyhow::anyhow!(
            "a password login passed its gate without a password check"
        )));
    };

    let passkey_usable = match (&client, &user) {
        (Some(c), Some(u)) => u.has_passkeys() && core.passkeys.for_client(c).is_some(),
        _ => false,
    };
    let step = decide(client.as_ref(), user.as_ref(), password_ok, passkey_usable);
    let user = match (&step, user) {
        (PasswordStep::Failed(reason), user) => {
            record(
                core,
                caller,
                client.as_ref(),
                user.as_ref(),
                Outcome::Failure,
                reason.as_str(),
            )
            .await?;
            tracing::info!(reason = reason.as_str(), attempts, "login failed");
            // Now, not when the request came: a wait must not be used up before it is recorded.
            throttle::ip_failed(&core.store, ip_bucket.as_deref(), core.clock.now()).await?;
            if attempts >= throttle::LOCK_AFTER {
                if let Some(user) = &user {
                    core.notify_locked(user).await?;
                }
                return Err(ServiceError::AccountLocked);
            }
            if attempts >= throttle::NOTIFY_AFTER
                && let Some(user) = &user
                && core.store.throttle_mark_notified(&key, now).await?
            {
                core.notify_failed_logins(user, attempts).await?;
            }
            let wait = throttle::delay_secs(attempts);
            return Err(ServiceError::LoginFailed {
                retry_after_secs: (wait > 0).then_some(wait as u64),
            });
        }
        (PasswordStep::UseSso, _) => return Err(ServiceError::UseSso),
        (_, Some(user)) => user,
        // `decide` only lets a known user past the password.
        (_, None) => {
            return Err(ServiceError::LoginFailed {
                retry_after_secs: None,
            });
        }
    };
    let client = client.as_ref();
    let pending = match step {
        PasswordStep::PendingTotp => Some((
            PendingKind::Code,
            LoginOutcome::TwoFactorRequired,
            "second factor required",
        )),
        PasswordStep::PendingEnrolment => Some((
            PendingKind::Enrolment,
            LoginOutcome::TwoFactorEnrolmentRequired,
            "2FA enrolment required",
        )),
        _ => None,
    };
    match pending {
        Some((kind, outcome, detail)) => {
            core.store.throttle_clear(&key).await?;
            let cookie = open_pending(core, &user, kind).await?;
            record(core, caller, client, Some(&user), Outcome::Pending, detail).await?;
            Ok(Flow::value(outcome).with(cookie))
        }
        None => {
            let cookie = match session {
                // Started on the hashing thread, with its audit event.
                Some(started) => started,
                None => {
                    let audit = login_event(
                        client,
                        Some(&user),
                        Outcome::Success,
                        "password",
                        ip.as_deref(),
                    );
                    core.start_session_after_password(caller, &user, &key, audit)
                        .await?
                }
            };
            core.metrics.login("password", "success");
            tracing::info!(user_id = %user.id, "login succeeded");
            Ok(Flow::value(LoginOutcome::LoggedIn).with(cookie))
        }
    }
}

/// Whether a password is checked after the lookup: only when the client takes passwords, the IP
/// need not wait and the account's counter took this attempt below the lock. `password_step`
/// answers each refusal in this order.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    Check,
    Refused,
}

fn gate(lookup: &LoginLookup, now: UnixTime) -> Gate {
    let sso = lookup.client.as_ref().is_some_and(ClientRow::uses_sso);
    let ip_waits = throttle::ip_wait(lookup.ip_row.as_ref(), now).is_some();
    let counted = lookup.attempts.is_some_and(|a| a <= throttle::LOCK_AFTER);
    if !sso && !ip_waits && counted {
        Gate::Check
    } else {
        Gate::Refused
    }
}

/// The lookup, and the password check when [`gate`] allowed it.
struct Looked {
    lookup: LoginLookup,
    checked: Option<Checked>,
}

struct Checked {
    password_ok: bool,
    /// The session, when it was started beside the check (see [`look_up_and_check_here`]).
    session: Option<CookieIntent>,
}

/// What [`look_up_and_check_here`] takes to the hashing thread.
struct HereRequest {
    company_id: CompanyId,
    username: UserName,
    ip_key: Option<String>,
    account_key: String,
    password: LoginPassword,
    start_session: bool,
    ip: Option<String>,
    user_agent: Option<String>,
    clock: std::sync::Arc<dyn crate::domain::clock::Clock>,
}

/// SQLite, on a hashing worker: the lookup and count, the password check when [`gate`] allows
/// it, and when [`decide`] says the password alone makes a session (and the caller brought no
/// old one to end), the session with its audit event: a login's statements without a hand-off
/// to another thread. Everything else is answered afterwards by `password_step`, as on
/// PostgreSQL.
fn look_up_and_check_here(
    db: &BlockingLogin,
    checker: &mut Checker<'_>,
    request: HereRequest,
    now: UnixTime,
) -> Result<Looked, sqlx::Error> {
    let lookup = db.lookup(
        &LoginKeys {
            company_id: &request.company_id,
            username: &request.username,
            ip_key: request.ip_key.as_deref(),
            account_key: &request.account_key,
            ip_failures: throttle::IP_FAILURES,
            reset_after: throttle::ACCOUNT_RESET_AFTER,
        },
        now,
    )?;
    if gate(&lookup, now) != Gate::Check {
        return Ok(Looked {
            lookup,
            checked: None,
        });
    }
    let (client, user) = (lookup.client.as_ref(), lookup.user.as_ref());
    let hash = user.and_then(|u| u.password_hash.as_deref());
    let password_ok = checker.verify(hash, request.password.expose());
    // Without passkeys of the user's, whether the client allows them does not matter; with
    // them, `decide` never answers `Session`.
    let session = match (client, user) {
        (Some(client), Some(user))
            if request.start_session
                && decide(Some(client), Some(user), password_ok, false)
                    == PasswordStep::Session =>
        {
            let audit = login_event(
                Some(client),
                Some(user),
                Outcome::Success,
                "password",
                request.ip.as_deref(),
            );
            Some(crate::idm::sessions::start_password_session_here(
                db,
                user,
                request.ip.as_deref(),
                request.user_agent.as_deref(),
                &request.account_key,
                audit,
                request.clock.now(),
            )?)
        }
        _ => None,
    };
    Ok(Looked {
        lookup,
        checked: Some(Checked {
            password_ok,
            session,
        }),
    })
}

/// Opens the short-lived state between the password and the second factor. It is not a session:
/// nothing but the second-factor step accepts it.
async fn open_pending(
    core: &Core,
    user: &UserRow,
    kind: PendingKind,
) -> ServiceResult<CookieIntent> {
    let issued = token::issue();
    let now = core.clock.now();
    core.store
        .insert_pending(&issued.hash, &user.id, kind, now, now + PENDING_TTL_SECS)
        .await
        .context("opening a pending second factor")?;
    Ok(CookieIntent::PendingSecondFactor(
        issued.secret,
        PENDING_TTL_SECS,
    ))
}

/// A refusal while the IP or the account waits (or is locked): counted on a row of its own, and
/// written to the audit log only once per key and [`throttle::REFUSALS_WINDOW`], so that a script
/// hammering a waiting account cannot fill the log.
async fn refused_while_waiting(
    core: &Core,
    caller: &Caller,
    client: Option<&ClientRow>,
    key: &str,
    detail: &str,
) -> ServiceResult<()> {
    core.metrics.login("password", "throttled");
    if throttle::count_refusal(&core.store, key, core.clock.now()).await? {
        let detail = format!("{detail} (further refusals this hour are only counted)");
        let event = login_event(
            client,
            None,
            Outcome::Throttled,
            &detail,
            caller.ip.as_deref(),
        );
        crate::infra::audit::record(&core.store, event, core.clock.now()).await?;
    }
    Ok(())
}

async fn record(
    core: &Core,
    caller: &Caller,
    client: Option<&ClientRow>,
    user: Option<&UserRow>,
    outcome: Outcome,
    detail: &str,
) -> ServiceResult<()> {
    let (client_id, user_id) = (client.map(|c| c.id.as_str()), user.map(|u| u.id.as_str()));
    let ip = caller.ip.as_deref();
    core.record_login(
        AuditAction::LoginPassword,
        outcome,
        client_id,
        user_id,
        detail,
        ip,
    )
    .await
}

/// The audit event of a password login attempt.
fn login_event<'a>(
    client: Option<&'a ClientRow>,
    user: Option<&'a UserRow>,
    outcome: Outcome,
    detail: &'a str,
    ip: Option<&'a str>,
) -> Event<'a> {
    let (client_id, user_id) = (client.map(|c| c.id.as_str()), user.map(|u| u.id.as_str()));
    Event::login(AuditAction::LoginPassword, outcome, client_id, user_id)
        .detail(detail)
        .ip(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(sso: bool, require_2fa: bool, active: bool) -> ClientRow {
        ClientRow {
            id: crate::domain::ClientId::new("c"),
            company_id: "ACME".into(),
            name: "ACME GmbH".into(),
            registration_link_hours: 24,
            reset_link_hours: 24,
            require_2fa: require_2fa.into(),
            active: active.into(),
            sso_issuer: sso.then(|| "https://idp.example".into()),
            sso_client_id: None,
            sso_client_secret: None,
            sso_email_claim: None,
            sso_jit: 0,
            deletion_months: 6,
            inactivity_months: None,
            passkeys: 1,
        }
    }

    fn user(status: &str, has_password: bool, totp: bool) -> UserRow {
        UserRow {
            id: crate::domain::UserId::new("u"),
            client_id: crate::domain::ClientId::new("c"),
            username: "alice".into(),
            email: "alice@acme.example".into(),
            first_name: String::new(),
            last_name: String::new(),
            role: crate::domain::Role::User,
            status: UserStatus::try_from(status.to_owned()).expect("a known status"),
            language: "en".into(),
            password_hash: has_password.then(|| "$argon2id$...".into()),
            totp_enabled: totp.into(),
            deactivated_at: None,
            passkeys: 0,
            email_verified_at: None,
        }
    }

    #[test]
    fn every_credential_failure_is_a_failure() {
        let c = client(false, false, true);
        assert_eq!(
            decide(None, None, false, false),
            PasswordStep::Failed(FailReason::UnknownCompany)
        );
        assert_eq!(
            decide(Some(&c), None, false, false),
            PasswordStep::Failed(FailReason::UnknownUser)
        );
        let u = user("active", true, false);
        assert_eq!(
            decide(Some(&c), Some(&u), false, false),
            PasswordStep::Failed(FailReason::WrongPassword)
        );
        let invited = user("invited", false, false);
        assert_eq!(
            decide(Some(&c), Some(&invited), false, false),
            PasswordStep::Failed(FailReason::NoPasswordYet)
        );
    }

    #[test]
    fn a_right_password_of_an_inactive_user_or_client_still_fails() {
        let c = client(false, false, true);
        let off = user("deactivated", true, false);
        assert_eq!(
            decide(Some(&c), Some(&off), true, false),
            PasswordStep::Failed(FailReason::UserDeactivated)
        );
        let closed = client(false, false, false);
        let u = user("active", true, false);
        assert_eq!(
            decide(Some(&closed), Some(&u), true, false),
            PasswordStep::Failed(FailReason::ClientDeactivated)
        );
    }

    #[test]
    fn the_right_password_leads_to_the_second_factor_or_a_session() {
        let plain = client(false, false, true);
        let strict = client(false, true, true);
        assert_eq!(
            decide(
                Some(&plain),
                Some(&user("active", true, false)),
                true,
                false
            ),
            PasswordStep::Session
        );
        assert_eq!(
            decide(Some(&plain), Some(&user("active", true, true)), true, false),
            PasswordStep::PendingTotp
        );
        assert_eq!(
            decide(
                Some(&strict),
                Some(&user("active", true, false)),
                true,
                false
            ),
            PasswordStep::PendingEnrolment
        );
        assert_eq!(
            decide(
                Some(&strict),
                Some(&user("active", true, true)),
                true,
                false
            ),
            PasswordStep::PendingTotp
        );
        // A usable passkey is a second factor too.
        assert_eq!(
            decide(Some(&plain), Some(&user("active", true, false)), true, true),
            PasswordStep::PendingTotp
        );
    }

    #[test]
    fn a_user_whose_passkeys_were_turned_off_sets_up_another_second_factor() {
        let plain = client(false, false, true);
        let mut passkey_only = user("active", true, false);
        passkey_only.passkeys = 1;
        // Passkeys off for the client (or this deployment): not a session with the password alone.
        assert_eq!(
            decide(Some(&plain), Some(&passkey_only), true, false),
            PasswordStep::PendingEnrolment
        );
        // With TOTP as well, the code is asked for.
        let mut both = user("active", true, true);
        both.passkeys = 1;
        assert_eq!(
            decide(Some(&plain), Some(&both), true, false),
            PasswordStep::PendingTotp
        );
    }

    #[test]
    fn sso_clients_never_take_passwords() {
        let sso = client(true, false, true);
        assert_eq!(
            decide(Some(&sso), Some(&user("active", true, false)), true, false),
            PasswordStep::UseSso
        );
        assert_eq!(decide(Some(&sso), None, false, false), PasswordStep::UseSso);
    }
}
