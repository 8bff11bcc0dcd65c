//! A logged-in user changes their own password on the Security page. The new password must follow
//! the rules and be typed alike twice (checked first, so that a typo costs no attempt); then the
//! current password, counted like a login attempt on the account (with its waits and its lock),
//! so that a session left open is not enough to take the account over.
//! The change ends the user's other sessions, the logins still at their second step and the
//! application tokens issued outside this session, and the address on record hears of it.

use crate::domain::Invalid;
use crate::domain::audit::{AuditAction, Outcome};
use crate::idm::Core;
use crate::idm::principal::Session;
use crate::idm::two_factor;
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::infra::mail::templates::MailContent;
use promio_api::{Field, Problem};

/// Changes the session's user's password from `current` to `new` (typed twice).
#[tracing::instrument(skip_all, fields(user_id = %session.user.id))]
pub async fn change(
    core: &Core,
    session: &Session,
    current: String,
    new: String,
    repeat: String,
) -> ServiceResult<()> {
    let (user, client) = (&session.user, &session.client);
    // The users of an SSO client have no password here; neither has a user who never set one.
    if client.uses_sso() || user.password_hash.is_none() {
        return Err(ServiceError::Forbidden);
    }
    if current.is_empty() {
        return Err(Invalid {
            field: Field::Password,
            problem: Problem::Missing,
        }
        .into());
    }
    let password = crate::idm::links::new_password_of(client, user, new, &repeat)?;
    two_factor::check_password(core, session, &current).await?;
    let hash = core.hasher.hash(password.into_secret()).await?;
    let now = core.clock.now();
    let (ended, revoked) = core
        .store
        .change_own_password(&user.id, &hash, &session.token_hash, now)
        .await
        .context("storing a changed password")?;
    two_factor::audit(
        core,
        session.ip.as_deref(),
        user,
        AuditAction::PasswordChanged,
        Outcome::Success,
        &format!("{ended} other sessions ended, {revoked} application tokens revoked"),
    )
    .await?;
    let content = MailContent::PasswordChanged {
        login_link: core.settings.public_url.to_string(),
    };
    core.mail_user(user, content).await?;
    tracing::info!(ended, revoked, "password changed by its user");
    Ok(())
}
