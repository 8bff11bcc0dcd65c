//! Links in mails: registration and password reset.
//!
//! A link carries a 256-bit token; only its SHA-256 is stored. A link is valid for its client's
//! setting (hours, separately for registration and reset), can be used once (one atomic UPDATE
//! decides), and sending a new link of the same kind voids the older ones. The mail is queued in
//! the same transaction that stores the link, so there is never a link without its mail or a mail
//! without its link.
//!
//! A reset of a user with a second factor (TOTP, or a passkey they may use: the same rule as the
//! login's) only counts with that factor: a code (or recovery code) in the form, or the passkey
//! through **Use a passkey** ([`passkey_reset_start`] and [`passkey_reset_finish`], a ceremony tied to
//! the link). Each is counted on the user's second-factor counter with the login's, and a link
//! that saw [`LINK_CODE_FAILURES`] wrong ones is void. A user whose only second factor is a
//! passkey is refused without it (there is no code that could be right), without counting.
//!
//! A link that cannot be used can be posted again and again by whoever holds it: such refusals are
//! counted per address, and one per address and hour reaches the audit log (`refuse`).

use crate::domain::LinkKind;
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::{CompanyId, NewPassword, PasswordContext, UserName};
use crate::idm::Core;
use crate::idm::principal::{Caller, CookieIntent, Flow};
use crate::idm::two_factor;
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::infra::mail::templates::{self, MailContent};
use crate::infra::token;
use crate::store::clients::ClientRow;
use crate::store::links::{self, LinkRow};
use crate::store::users::{self, UserRow, UserStatus};
use promio_api::{LinkState, PasskeyOptions};
use secrecy::{ExposeSecret, SecretString};
use sqlx::AnyConnection;
use std::sync::Arc;

/// Password-reset mails per account and hour; beyond, the same answer comes without a mail.
pub const RESETS_PER_HOUR: i64 = 3;
/// Wrong second-factor codes with one reset link, after which the link is void.
pub const LINK_CODE_FAILURES: i64 = 5;

/// Makes a new link of `kind` for the user (voiding older ones) and queues its mail, on `conn`
/// (the caller's transaction). Returns the link's expiry.
pub async fn issue_with_mail(
    core: &Core,
    conn: &mut AnyConnection,
    client: &ClientRow,
    user: &UserRow,
    kind: LinkKind,
) -> ServiceResult<i64> {
    let now = core.clock.now();
    let hours = match kind {
        LinkKind::Registration => client.registration_link_hours,
        LinkKind::PasswordReset => client.reset_link_hours,
    };
    let expires_at = now + hours * 3600;
    let issued = token::issue();
    // The mail goes to the address of `user` as read: that is the one the link can show to be
    // the user's (see `users::set_password_through_link`).
    let sent_to = user.email_key();
    links::replace(
        conn,
        &issued.hash,
        &user.id,
        kind,
        now,
        expires_at,
        &sent_to,
    )
    .await?;
    let link = link_url(core, &issued.secret);
    let content = match kind {
        LinkKind::Registration => MailContent::Registration { link, expires_at },
        LinkKind::PasswordReset => MailContent::PasswordReset { link, expires_at },
    };
    core.mailer
        .notify_user(conn, client, user, &content)
        .await?;
    Ok(expires_at)
}

/// After an administrator or operator changed the address of `user` (as read after the change):
/// the change voided the links mailed to the old address (see `Store::update_user_profile`), so an
/// invited user gets the registration mail again, at the new one.
pub(crate) async fn invite_again(
    core: &Core,
    client: &ClientRow,
    user: &UserRow,
) -> ServiceResult<()> {
    if user.status() != UserStatus::Invited || client.uses_sso() {
        return Ok(());
    }
    let mut tx = core.store.pool().begin().await?;
    issue_with_mail(core, &mut tx, client, user, LinkKind::Registration).await?;
    tx.commit().await?;
    core.mailer.wake();
    Ok(())
}

/// The link's address: always from `PUBLIC_URL`, never from the request.
fn link_url(core: &Core, token: &SecretString) -> String {
    let mut url = core.settings.public_url.clone();
    url.set_path("/set-password");
    url.query_pairs_mut()
        .clear()
        .append_pair("token", token.expose_secret());
    url.to_string()
}

/// The state of a stored link at `now`.
pub fn state_of(link: &LinkRow, now: i64) -> LinkStatus {
    if link.used_at.is_some() {
        LinkStatus::Used
    } else if link.superseded_at.is_some() {
        LinkStatus::Superseded
    } else if link.expires_at <= now {
        LinkStatus::Expired
    } else {
        LinkStatus::Valid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkStatus {
    Valid,
    Used,
    Superseded,
    Expired,
}

async fn find(core: &Core, raw_token: &str) -> ServiceResult<Option<LinkRow>> {
    let Some(token) = token::parse_presented(raw_token.trim()) else {
        return Ok(None);
    };
    core.store
        .link(&token::hash_secret(&token))
        .await
        .context("reading a mail link")
}

#[tracing::instrument(skip_all)]
pub async fn link_info(
    core: &Core,
    caller: &Caller,
    raw_token: String,
) -> ServiceResult<LinkState> {
    let Some(link) = find(core, &raw_token).await? else {
        return Ok(LinkState::Unknown);
    };
    let kind = link.kind;
    let now = core.clock.now();
    Ok(match state_of(&link, now) {
        LinkStatus::Used => LinkState::Used { kind: kind.into() },
        LinkStatus::Superseded => LinkState::Superseded { kind: kind.into() },
        LinkStatus::Expired => LinkState::Expired { kind: kind.into() },
        LinkStatus::Valid => {
            let user = core
                .store
                .user_of(&link)
                .await?
                .ok_or(ServiceError::NotFound)?;
            let client = core
                .store
                .client_by_id(&user.client_id)
                .await?
                .ok_or(ServiceError::NotFound)?;
            LinkState::Valid {
                kind: kind.into(),
                company_id: client.company_id.clone(),
                username: user.username.clone(),
                until: templates::format_time(link.expires_at, caller.lang, &core.time_zone),
                second_factor_required: client.requires_2fa(),
                code_required: kind == LinkKind::PasswordReset && user.has_totp(),
                passkey: kind == LinkKind::PasswordReset
                    && crate::idm::passkeys::usable(core, &client, &user).await,
            }
        }
    })
}

/// How a password reset is confirmed when the user has a second factor.
pub enum ResetFactor {
    /// The form's field: a TOTP or recovery code (absent when the page asked for none).
    Code(Option<String>),
    /// The browser's answer to the link's passkey ceremony ([`passkey_reset_start`]).
    Passkey(String),
}

/// Whether a reset of the user needs a second factor: the same rule as the login's second step.
async fn reset_needs_second_factor(core: &Core, client: &ClientRow, user: &UserRow) -> bool {
    user.has_totp() || crate::idm::passkeys::usable(core, client, user).await
}

/// A valid password-reset link with its user and client, for the passkey ceremony that confirms
/// it ([`passkey_reset_start`]): no link is `NotFound`, one that cannot be used `Gone`.
pub(crate) async fn reset_link(
    core: &Core,
    raw_token: &str,
) -> ServiceResult<(LinkRow, UserRow, ClientRow)> {
    let link = find(core, raw_token).await?.ok_or(ServiceError::NotFound)?;
    let now = core.clock.now();
    if link.kind != LinkKind::PasswordReset || state_of(&link, now) != LinkStatus::Valid {
        return Err(ServiceError::Gone);
    }
    let user = core
        .store
        .user_of(&link)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let client = core
        .store
        .client_by_id(&user.client_id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    if user.status() == UserStatus::Deactivated || !client.is_active() || client.uses_sso() {
        return Err(ServiceError::Gone);
    }
    Ok((link, user, client))
}

/// A new password of `user`, typed twice, by the rules of `client` (see [`NewPassword`]).
pub(crate) fn new_password_of(
    client: &ClientRow,
    user: &UserRow,
    raw: String,
    repeat: &str,
) -> ServiceResult<NewPassword> {
    let ctx = PasswordContext {
        company_id: &client.company_id,
        username: &user.username,
        email: &user.email,
        second_factor_required: client.requires_2fa(),
    };
    Ok(NewPassword::parse_repeated(raw, repeat, &ctx)?)
}

/// Sets the password through a link with the form (a code, when the page asks for one); see
/// [`set_password_confirmed`].
pub async fn set_password(
    core: &Core,
    caller: &Caller,
    raw_token: String,
    new_password: String,
    repeat_password: String,
    code: Option<String>,
) -> ServiceResult<()> {
    let factor = ResetFactor::Code(code);
    set_password_confirmed(
        core,
        caller,
        raw_token,
        new_password,
        repeat_password,
        factor,
    )
    .await
}

/// Sets the password through a link: checks the rules (and, for a reset of a user with a second
/// factor, that factor), then uses the link and stores the hash in one transaction. A reset also
/// ends all of the user's sessions.
#[tracing::instrument(skip_all)]
pub async fn set_password_confirmed(
    core: &Core,
    caller: &Caller,
    raw_token: String,
    new_password: String,
    repeat_password: String,
    factor: ResetFactor,
) -> ServiceResult<()> {
    let link = find(core, &raw_token)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let now = core.clock.now();
    if state_of(&link, now) != LinkStatus::Valid {
        refuse(core, caller, &link, "link not valid").await?;
        return Err(ServiceError::Gone);
    }
    let user = core
        .store
        .user_of(&link)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let client = core
        .store
        .client_by_id(&user.client_id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    if user.status() == UserStatus::Deactivated || !client.is_active() {
        refuse(core, caller, &link, "user or client deactivated").await?;
        return Err(ServiceError::Gone);
    }
    if client.uses_sso() {
        // The client's users log in through its identity provider and have no password.
        refuse(core, caller, &link, "client uses SSO").await?;
        return Err(ServiceError::Gone);
    }
    let password = new_password_of(&client, &user, new_password, &repeat_password)?;
    if link.kind == LinkKind::PasswordReset && reset_needs_second_factor(core, &client, &user).await
    {
        // A reset must not bypass the second factor: the new password only counts with a code or
        // the passkey, counted with the login's, and a link that saw too many wrong ones is void.
        let check = two_factor::FactorCheck::ResetLink;
        let (right, wrong) = match factor {
            ResetFactor::Passkey(credential) => (
                crate::idm::passkeys::check_for_reset(
                    core,
                    caller,
                    &link,
                    &client,
                    &user,
                    &credential,
                )
                .await?,
                ServiceError::PasskeyFailed,
            ),
            ResetFactor::Code(_) if !user.has_totp() => {
                // Only the passkey can confirm this reset: no code could be right.
                refuse(core, caller, &link, "passkey required").await?;
                return Err(ServiceError::PasskeyRequired);
            }
            ResetFactor::Code(code) => {
                let code = code.unwrap_or_default();
                let ip = caller.ip.as_deref();
                (
                    two_factor::check_second_factor(core, ip, &user, &code, check).await?,
                    ServiceError::SecondFactorFailed,
                )
            }
        };
        if !right {
            let failures = core
                .store
                .link_code_failed(&link.token_hash, core.clock.now(), LINK_CODE_FAILURES)
                .await?;
            if failures >= LINK_CODE_FAILURES {
                audit_link(
                    core,
                    caller,
                    &link,
                    Outcome::Refused,
                    "link void after wrong codes",
                )
                .await?;
                return Err(ServiceError::Gone);
            }
            return Err(wrong);
        }
    }
    let hash = core.hasher.hash(password.into_secret()).await?;

    let mut tx = core.store.pool().begin().await?;
    // The single-use decision comes first and alone: of two concurrent uses, one updates the row.
    if !links::consume(&mut tx, &link.token_hash, core.clock.now())
        .await
        .context("using a mail link")?
    {
        drop(tx);
        audit_link(core, caller, &link, Outcome::Refused, "link already used").await?;
        return Err(ServiceError::Gone);
    }
    users::set_password_through_link(
        &mut tx,
        &user.id,
        &hash,
        link.sent_to_key.as_deref(),
        core.clock.now(),
    )
    .await?;
    // A new password lifts the account's waits and its lock.
    let account = crate::idm::throttle::account_key(
        &CompanyId::parse(&client.company_id)?,
        &UserName::parse(&user.username)?,
    );
    crate::store::throttle::clear_in(&mut tx, &account).await?;
    if link.kind == LinkKind::PasswordReset {
        // Whoever held the account before the reset holds nothing of it after: no session, and
        // no application token (offline access among them).
        crate::store::sessions::delete_user_sessions_in(&mut tx, &user.id).await?;
        crate::store::oauth_tokens::revoke_user_tokens_in(&mut tx, &user.id, core.clock.now())
            .await?;
    }
    tx.commit().await?;
    audit_link(core, caller, &link, Outcome::Success, "password set").await?;
    tracing::info!(user_id = %user.id, kind = link.kind.as_str(), "password set through a link");
    Ok(())
}

/// Forgot password: the same answer, after the same work, whether or not the account exists.
/// Every request is counted against its IP first; then it is answered, and the lookup and the
/// mail happen behind the answer ([`reset_behind_the_answer`]), so its timing tells nothing.
#[tracing::instrument(skip_all)]
pub async fn request_reset(
    core: &Arc<Core>,
    caller: &Caller,
    company_id: String,
    username: String,
) -> ServiceResult<()> {
    let company_id = CompanyId::parse(&company_id)?;
    let username = UserName::parse(&username)?;
    let ip_ok = match &caller.ip_bucket {
        Some(bucket) => {
            core.store
                .rate_limit(
                    &format!("forgot-ip:{bucket}"),
                    core.clock.now(),
                    3600,
                    crate::idm::throttle::FORGOT_PER_IP_HOUR,
                )
                .await?
        }
        None => true,
    };
    if !ip_ok {
        // Counted, and nothing more: no lookup, no mail, no audit row for each request over the
        // limit (the counter row says how many there were).
        return Ok(());
    }
    let ip = caller.ip.clone();
    let work = Arc::clone(core);
    core.background.spawn(async move {
        let result = reset_behind_the_answer(&work, &company_id, &username, ip.as_deref()).await;
        if let Err(e) = result {
            let e: promio_api::ApiError = e.into();
            tracing::warn!(error = %e, "a password reset request could not be handled");
        }
    });
    Ok(())
}

/// The work of a reset request within its IP's limit: a mail only for an active user with a
/// password, of a client without SSO, at most a few per hour.
async fn reset_behind_the_answer(
    core: &Core,
    company_id: &CompanyId,
    username: &UserName,
    ip: Option<&str>,
) -> ServiceResult<()> {
    let Some(client) = core.store.client_by_company_id(company_id).await? else {
        return Ok(());
    };
    let Some(user) = core.store.user_by_name(&client.id, username).await? else {
        return Ok(());
    };
    let eligible = client.is_active()
        && !client.uses_sso()
        && user.status() == UserStatus::Active
        && user.password_hash.is_some();
    let recent = core
        .store
        .links_since(&user.id, LinkKind::PasswordReset, core.clock.now() - 3600)
        .await?;
    let (outcome, detail) = if !eligible {
        (Outcome::Refused, "account not eligible")
    } else if recent >= RESETS_PER_HOUR
        || !core
            .store
            // Requests are handled concurrently behind their answers: the count of links above
            // can be read by several at once, this counter cannot.
            .rate_limit(
                &format!("forgot-user:{}", user.id),
                core.clock.now(),
                3600,
                RESETS_PER_HOUR,
            )
            .await?
    {
        (Outcome::Refused, "too many reset mails this hour")
    } else {
        let mut tx = core.store.pool().begin().await?;
        issue_with_mail(core, &mut tx, &client, &user, LinkKind::PasswordReset).await?;
        tx.commit().await?;
        core.mailer.wake();
        (Outcome::Success, "reset mail queued")
    };
    let event = Event::new(AuditAction::PasswordResetRequested, outcome)
        .client(Some(&client.id))
        .subject(Some(&user.id))
        .detail(detail)
        .ip(ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

/// The refusal of a link that cannot be used, which its holder can send without end: counted
/// against the address, and audited only for the first from that address in
/// [`crate::idm::throttle::REFUSALS_WINDOW`]. (A refusal that a link sees only once, as its use lost to
/// a concurrent one or its voiding after wrong codes, is audited each time.)
async fn refuse(core: &Core, caller: &Caller, link: &LinkRow, reason: &str) -> ServiceResult<()> {
    let bucket = caller.ip_bucket.as_deref();
    let now = core.clock.now();
    if crate::idm::throttle::count_anonymous_refusal(&core.store, "link", bucket, now).await? {
        let detail =
            format!("{reason} (further ones from this address this hour are only counted)");
        audit_link(core, caller, link, Outcome::Refused, &detail).await?;
    }
    Ok(())
}

async fn audit_link(
    core: &Core,
    caller: &Caller,
    link: &LinkRow,
    outcome: Outcome,
    detail: &str,
) -> ServiceResult<()> {
    let user = core.store.user_of(link).await?;
    let ip = caller.ip.as_deref();
    let action = match link.kind {
        LinkKind::Registration => AuditAction::LinkRegistration,
        LinkKind::PasswordReset => AuditAction::LinkPasswordReset,
    };
    let event = Event::new(action, outcome)
        .client(user.as_ref().map(|u| u.client_id.as_str()))
        .actor(Some(&link.user_id))
        .subject(Some(&link.user_id))
        .detail(detail)
        .ip(ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

/// Begins confirming a password reset with one of the user's passkeys (**Use a passkey** on the
/// set-password page): for a valid reset link of a user who may use passkeys.
pub async fn passkey_reset_start(
    core: &Core,
    raw_token: String,
) -> ServiceResult<Flow<PasskeyOptions>> {
    let (link, user, client) = reset_link(core, &raw_token).await?;
    crate::idm::passkeys::reset_ceremony_start(core, link, &user, &client).await
}

/// Sets the new password through a reset link, confirmed with the answer to
/// [`passkey_reset_start`]'s ceremony; otherwise the rules of the form ([`set_password_confirmed`]).
pub async fn passkey_reset_finish(
    core: &Core,
    caller: &Caller,
    raw_token: String,
    new_password: String,
    repeat_password: String,
    credential: String,
) -> ServiceResult<Flow<()>> {
    let factor = ResetFactor::Passkey(credential);
    set_password_confirmed(
        core,
        caller,
        raw_token,
        new_password,
        repeat_password,
        factor,
    )
    .await?;
    Ok(Flow::value(()).with(CookieIntent::Clear(crate::idm::passkeys::COOKIE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(used: bool, superseded: bool, expires_at: i64) -> LinkRow {
        LinkRow {
            token_hash: "h".into(),
            user_id: crate::domain::UserId::new("u"),
            kind: LinkKind::Registration,
            created_at: 0,
            expires_at,
            used_at: used.then_some(5),
            superseded_at: superseded.then_some(6),
            sent_to_key: None,
        }
    }

    #[test]
    fn a_link_is_valid_until_its_expiry_and_only_while_unused_and_current() {
        assert_eq!(state_of(&link(false, false, 100), 99), LinkStatus::Valid);
        assert_eq!(state_of(&link(false, false, 100), 100), LinkStatus::Expired);
        assert_eq!(state_of(&link(true, false, 100), 50), LinkStatus::Used);
        assert_eq!(
            state_of(&link(false, true, 100), 50),
            LinkStatus::Superseded
        );
        assert_eq!(
            state_of(&link(true, true, 100), 500),
            LinkStatus::Used,
            "used wins over the rest"
        );
    }
}
