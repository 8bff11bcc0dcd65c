//! The account an SSO login lands in: the client's active user with the verified email (or one
//! made just in time), bound to the identity (issuer and `sub`) of its first SSO login until an
//! administrator or operator releases it.

use super::outcome::{Finished, PersonClaims, SsoFailure, refused};
use crate::domain::Role;
use crate::domain::audit::{AuditAction, Event, OUTSIDE_TEXT_MAX, Outcome, clean_text};
use crate::domain::{EmailAddress, Invalid};
use crate::idm::Core;
use crate::idm::principal::{Admin, Caller};
use crate::idm::provisioning::{self, Actor, UserInput};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::store::clients::ClientRow;
use crate::store::sso::SsoBinding;
use crate::store::users::{UserRow, UserStatus};
use promio_api::{Field, Problem};

/// The account the verified email names in the client: its one active user, else one made just
/// in time. `Err`: the refusal that ends the login.
pub(super) async fn match_user(
    core: &Core,
    caller: &Caller,
    client: &ClientRow,
    email: &EmailAddress,
    claims: &PersonClaims,
) -> ServiceResult<Result<UserRow, Finished>> {
    let users = core.store.users_by_email(&client.id, &email.key()).await?;
    let mut active = users.iter().filter(|u| u.status() == UserStatus::Active);
    let user = match (active.next(), active.next()) {
        (Some(user), None) => user.clone(),
        (Some(_), Some(_)) => {
            return Ok(Err(refused(
                SsoFailure::Failed,
                Some(client),
                format!("several active users have the email {email}"),
            )));
        }
        (None, _) if !users.is_empty() => {
            return Ok(Err(Finished::Refused {
                failure: SsoFailure::NotRegistered,
                client_id: Some(client.id.clone()),
                user_id: users.first().map(|u| u.id.clone()),
                reason: format!("the user with the email {email} is not active"),
                outcome: Outcome::Failure,
            }));
        }
        (None, _) => match just_in_time(core, caller, client, email, claims).await? {
            Some(user) => user,
            None => {
                return Ok(Err(refused(
                    SsoFailure::NotRegistered,
                    Some(client),
                    format!("no user with the email {email}"),
                )));
            }
        },
    };
    Ok(Ok(user))
}

/// Makes the user on the first SSO login when the client allows it (role user). The caller has
/// checked that the email is in one of the client's own domains.
async fn just_in_time(
    core: &Core,
    caller: &Caller,
    client: &ClientRow,
    email: &EmailAddress,
    claims: &PersonClaims,
) -> ServiceResult<Option<UserRow>> {
    if !client.sso_creates_users() {
        return Ok(None);
    }
    let base = username_for(email);
    let clean = |name: &Option<String>| -> String {
        name.as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect()
    };
    for attempt in 1..=20 {
        let username = if attempt == 1 {
            base.clone()
        } else {
            let suffix = format!("-{attempt}");
            let keep = 64 - suffix.len();
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        };
        let input = UserInput {
            company_id: client.company_id.clone(),
            username,
            email: email.as_str().to_owned(),
            first_name: clean(&claims.given_name),
            last_name: clean(&claims.family_name),
            role: Role::User,
            language: caller.lang.code().to_owned(),
            password: None,
        };
        match provisioning::create_invited_user(core, Actor::default(), client, input).await {
            Ok(user) => {
                tracing::info!(user_id = %user.id, "user made on first SSO login");
                return Ok(Some(user));
            }
            Err(ServiceError::Invalid(Invalid {
                field: Field::UserName,
                problem: Problem::Taken,
            })) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Binds the account to the identity on its first SSO login; afterwards only that identity logs
/// in to it. `Some(reason)`: refused (another identity, or one bound to another account).
pub(super) async fn bind_or_refuse(
    core: &Core,
    caller: &Caller,
    client: &ClientRow,
    user: &UserRow,
    identity: &SsoBinding,
) -> ServiceResult<Option<String>> {
    let now = core.clock.now();
    let subject = clean_text(&identity.subject, OUTSIDE_TEXT_MAX);
    if core
        .store
        .bind_sso_identity(&user.id, identity, now)
        .await?
    {
        let detail = format!("issuer {}, subject {subject}", identity.issuer);
        let event = Event::new(AuditAction::UserSsoBound, Outcome::Success)
            .client(Some(&client.id))
            .subject(Some(&user.id))
            .detail(&detail)
            .ip(caller.ip.as_deref());
        crate::infra::audit::record(&core.store, event, now).await?;
        tracing::info!(user_id = %user.id, "account bound to its identity at the provider");
        return Ok(None);
    }
    // Not bound now: bound before (to this identity, or by a concurrent first login to it), or
    // to another one, or the identity belongs to another account.
    Ok(match core.store.sso_binding(&user.id).await? {
        Some(bound) if bound == *identity => None,
        Some(bound) => Some(format!(
            "the account is bound to subject {} of {}, the identity provider answered for \
             subject {subject} of {}",
            clean_text(&bound.subject, OUTSIDE_TEXT_MAX),
            bound.issuer,
            identity.issuer
        )),
        None => Some(format!(
            "subject {subject} of {} is bound to another account of the client",
            identity.issuer
        )),
    })
}

/// Releases a user's binding to an identity at the identity provider (the address passed to a
/// new colleague, the company moved to another provider): the next SSO login binds the account
/// again. For an administrator of the user's client, with the rules of [`crate::idm::admin`] on who
/// acts on whom, and for operators (who set every client's provider anyway). Audited.
#[tracing::instrument(skip_all, fields(admin_id = %admin.admin.id, %id))]
pub async fn release_binding(core: &Core, admin: &Admin, id: String) -> ServiceResult<()> {
    let user = if let Some(directory) = admin.operators_directory(core) {
        directory.user(&id).await?.ok_or(ServiceError::NotFound)?
    } else {
        crate::idm::admin::own_user(core, admin, &id).await?
    };
    let now = core.clock.now();
    let Some(released) = core.store.release_sso_binding(&user.id, now).await? else {
        return Ok(());
    };
    let detail = format!(
        "issuer {}, subject {}",
        released.issuer,
        clean_text(&released.subject, OUTSIDE_TEXT_MAX)
    );
    let event = Event::new(AuditAction::UserSsoReleased, Outcome::Success)
        .client(Some(&user.client_id))
        .actor(Some(&admin.admin.id))
        .subject(Some(&user.id))
        .detail(&detail)
        .ip(admin.ip.as_deref());
    crate::infra::audit::record(&core.store, event, now).await?;
    tracing::info!(user_id = %user.id, "SSO binding released");
    Ok(())
}

/// A user name from an email address: the characters user names allow, at most 64.
fn username_for(email: &EmailAddress) -> String {
    email
        .key()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_from_emails_use_the_allowed_alphabet() {
        let email = EmailAddress::parse("Jane+Test@ACME.example").unwrap();
        assert_eq!(username_for(&email), "jane-test@acme.example");
    }
}
