//! Provisioning: creating and changing clients and users, for the CLI, the consoles and SSO's
//! just-in-time users alike. Input arrives raw and is parsed here, so every caller gets the same
//! rules and the same messages.

use crate::domain::Invalid;
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::{
    ClientName, CompanyId, EmailAddress, NewPassword, PasswordContext, PersonName, UserName,
};
use crate::domain::{LinkKind, Role};
use crate::idm::Core;
use crate::idm::links;
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::store::clients::{ClientChanges, ClientRow};
use crate::store::users::{self, NewUser, UserRow, UserStatus};
use promio_api::{Field, Problem};
use secrecy::SecretString;

/// Link validity bounds, in whole hours (1 hour to 30 days).
pub const LINK_HOURS_MIN: i64 = 1;
pub const LINK_HOURS_MAX: i64 = 720;

pub fn link_hours(field: Field, hours: i64) -> Result<i64, Invalid> {
    if (LINK_HOURS_MIN..=LINK_HOURS_MAX).contains(&hours) {
        Ok(hours)
    } else {
        Err(Invalid {
            field,
            problem: Problem::OutOfRange {
                min: LINK_HOURS_MIN as u32,
                max: LINK_HOURS_MAX as u32,
            },
        })
    }
}

/// Months after which a client's deactivated users are deleted: 1 to 24 (6 by default).
pub const DELETION_MONTHS: std::ops::RangeInclusive<i64> = 1..=24;
/// Months without a login after which a client's users are deactivated, when the client has the rule.
pub const INACTIVITY_MONTHS: std::ops::RangeInclusive<i64> = 3..=36;

/// A number of months within `range`, or the message for `field`.
pub fn months(
    field: Field,
    range: std::ops::RangeInclusive<i64>,
    value: i64,
) -> Result<i64, Invalid> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Invalid {
            field,
            problem: Problem::OutOfRange {
                min: *range.start() as u32,
                max: *range.end() as u32,
            },
        })
    }
}

fn taken(field: Field) -> ServiceError {
    ServiceError::Invalid(Invalid {
        field,
        problem: Problem::Taken,
    })
}

pub use crate::domain::audit::Actor;

pub async fn create_client(
    core: &Core,
    actor: Actor<'_>,
    company_id: &str,
    name: &str,
) -> ServiceResult<ClientRow> {
    let company_id = CompanyId::parse(company_id)?;
    let name = ClientName::parse(name)?;
    let now = core.clock.now();
    let client = core
        .store
        .insert_client(&company_id, &name, now)
        .await?
        .ok_or_else(|| taken(Field::CompanyId))?;
    audit(
        core,
        actor,
        Some(&client.id),
        None,
        AuditAction::ClientCreated,
        &format!("company ID {}", client.company_id),
    )
    .await?;
    Ok(client)
}

#[derive(Debug, Default, Clone)]
pub struct ClientSettings {
    pub name: Option<String>,
    pub registration_link_hours: Option<i64>,
    pub reset_link_hours: Option<i64>,
    pub require_2fa: Option<bool>,
    pub deletion_months: Option<i64>,
    /// `Some(None)` turns the inactivity rule off.
    pub inactivity_months: Option<Option<i64>>,
    pub passkeys: Option<bool>,
}

pub async fn update_client(
    core: &Core,
    actor: Actor<'_>,
    company_id: &str,
    settings: ClientSettings,
) -> ServiceResult<ClientRow> {
    let company_id = CompanyId::parse(company_id)?;
    let changes = ClientChanges {
        name: settings
            .name
            .as_deref()
            .map(ClientName::parse)
            .transpose()?,
        registration_link_hours: settings
            .registration_link_hours
            .map(|h| link_hours(Field::RegistrationLinkHours, h))
            .transpose()?,
        reset_link_hours: settings
            .reset_link_hours
            .map(|h| link_hours(Field::ResetLinkHours, h))
            .transpose()?,
        require_2fa: settings.require_2fa,
        deletion_months: settings
            .deletion_months
            .map(|m| months(Field::DeletionMonths, DELETION_MONTHS, m))
            .transpose()?,
        inactivity_months: settings
            .inactivity_months
            .map(|m| {
                m.map(|m| months(Field::InactivityMonths, INACTIVITY_MONTHS, m))
                    .transpose()
            })
            .transpose()?,
        passkeys: settings.passkeys,
    };
    let before = core.store.client_by_company_id(&company_id).await?;
    let client = core
        .store
        .update_client(&company_id, &changes, core.clock.now())
        .await?
        .ok_or(ServiceError::NotFound)?;
    if before.is_some_and(|b| b.deletion_months != client.deletion_months) {
        // Another retention, other dates: what was announced is announced again when due.
        core.store.reset_deletion_notices(&client.id).await?;
    }
    let inactivity = match client.inactivity_months {
        Some(m) => format!("{m} months"),
        None => "never".to_owned(),
    };
    let detail = format!(
        "registration link {} h, reset link {} h, 2FA required: {}, passkeys: {}, deleting deactivated users after {} months, deactivating inactive users: {inactivity}",
        client.registration_link_hours,
        client.reset_link_hours,
        client.requires_2fa(),
        client.allows_passkeys(),
        client.deletion_months,
    );
    audit(
        core,
        actor,
        Some(&client.id),
        None,
        AuditAction::ClientSettingsChanged,
        &detail,
    )
    .await?;
    Ok(client)
}

pub struct UserInput {
    pub company_id: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub language: String,
    /// With a password the user is Active at once; without, Invited.
    pub password: Option<SecretString>,
}

/// Creates a user. With a password the user is Active at once; without, the user is Invited and
/// the registration mail is queued in the same transaction. Users of an SSO client are Active
/// without a password and get no mail: they log in through their identity provider.
pub async fn create_user(
    core: &Core,
    actor: Actor<'_>,
    input: UserInput,
) -> ServiceResult<UserRow> {
    let client = client(core, &input.company_id).await?;
    create_invited_user(core, actor, &client, input).await
}

/// The client with this company ID (typed by a person, so parsed here), or 404.
pub async fn client(core: &Core, company_id: &str) -> ServiceResult<ClientRow> {
    let company_id = CompanyId::parse(company_id)?;
    core.store
        .client_by_company_id(&company_id)
        .await?
        .ok_or(ServiceError::NotFound)
}

pub async fn create_invited_user(
    core: &Core,
    actor: Actor<'_>,
    client: &ClientRow,
    input: UserInput,
) -> ServiceResult<UserRow> {
    let username = UserName::parse(&input.username)?;
    let email = EmailAddress::parse(&input.email)?;
    let first_name = PersonName::parse(Field::FirstName, &input.first_name)?;
    let last_name = PersonName::parse(Field::LastName, &input.last_name)?;
    if input.role == Role::Operator && !client.is_platform(&core.settings.platform_company_id) {
        return Err(ServiceError::Invalid(Invalid {
            field: Field::Role,
            problem: Problem::Malformed,
        }));
    }
    let password_hash = match input.password {
        Some(raw) if !client.uses_sso() => {
            use secrecy::ExposeSecret;
            let ctx = PasswordContext {
                company_id: client.company_id.as_str(),
                username: username.as_str(),
                email: email.as_str(),
                second_factor_required: client.requires_2fa(),
            };
            let password = NewPassword::parse(raw.expose_secret().to_owned(), &ctx)?;
            Some(core.hasher.hash(password.into_secret()).await?)
        }
        _ => None,
    };
    let status = if password_hash.is_some() || client.uses_sso() {
        UserStatus::Active
    } else {
        UserStatus::Invited
    };
    let language = if input.language == "de" { "de" } else { "en" };

    let mut tx = core.store.pool().begin().await?;
    let user = users::insert(
        &mut tx,
        NewUser {
            client_id: &client.id,
            username: &username,
            email: &email,
            first_name: &first_name,
            last_name: &last_name,
            role: input.role,
            language,
            // The command line's password: the operator vouches for the address.
            email_verified: password_hash.is_some(),
            password_hash,
            status,
        },
        core.clock.now(),
    )
    .await?
    .ok_or_else(|| taken(Field::UserName))?;
    let invited = user.status() == UserStatus::Invited;
    if invited {
        links::issue_with_mail(core, &mut tx, client, &user, LinkKind::Registration).await?;
    }
    tx.commit().await?;
    if invited {
        core.mailer.wake();
    }
    let detail = format!(
        "user name {}, role {}, status {}",
        user.username,
        user.role.as_str(),
        user.status.as_str()
    );
    audit(
        core,
        actor,
        Some(&client.id),
        Some(&user.id),
        AuditAction::UserCreated,
        &detail,
    )
    .await?;
    Ok(user)
}

/// Makes sure the platform's own client (home of the operators) exists.
pub async fn ensure_platform_client(core: &Core) -> ServiceResult<()> {
    let id = &core.settings.platform_company_id;
    if core.store.client_by_company_id(id).await?.is_none() {
        let name = ClientName::parse("promio.net GmbH")?;
        if let Some(client) = core
            .store
            .insert_client(id, &name, core.clock.now())
            .await?
        {
            audit(
                core,
                Actor::default(),
                Some(&client.id),
                None,
                AuditAction::ClientCreated,
                "platform client",
            )
            .await?;
            tracing::info!(company_id = %id, "created the platform client");
        }
    }
    Ok(())
}

/// What `user set` changes; `None` leaves it.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub role: Option<Role>,
    /// `Some(false)` deactivates (and ends the user's sessions), `Some(true)` reactivates.
    pub active: Option<bool>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Changes a user of `client` from the command line (the operators'): every input checked before
/// anything is written, the change audited, a change of address told to the old address.
pub async fn change_user(
    core: &Core,
    client: &ClientRow,
    user: &UserRow,
    changes: UserChanges,
) -> ServiceResult<UserRow> {
    let role = changes.role.unwrap_or(user.role());
    if role == Role::Operator && !client.is_platform(&core.settings.platform_company_id) {
        return Err(Invalid {
            field: Field::Role,
            problem: Problem::Malformed,
        }
        .into());
    }
    let first_name = PersonName::parse(
        Field::FirstName,
        changes.first_name.as_deref().unwrap_or(&user.first_name),
    )?;
    let last_name = PersonName::parse(
        Field::LastName,
        changes.last_name.as_deref().unwrap_or(&user.last_name),
    )?;
    let email = EmailAddress::parse(changes.email.as_deref().unwrap_or(&user.email))?;
    let now = core.clock.now();
    core.store
        .update_user_profile(&user.id, &first_name, &last_name, &email, role, now)
        .await?;
    let detail = format!("role {}", role.as_str());
    audit(
        core,
        Actor::default(),
        Some(&client.id),
        Some(&user.id),
        AuditAction::UserChanged,
        &detail,
    )
    .await?;
    if user.email_key() != email.key() {
        let content = crate::infra::mail::templates::MailContent::EmailChanged {
            login_link: core.settings.public_url.to_string(),
            new_email: email.as_str().to_owned(),
        };
        let mut conn = core.store.pool().acquire().await?;
        core.mailer
            .notify_user(&mut conn, client, user, &content)
            .await?;
        core.mailer.wake();
        let detail = format!("{} -> {}", user.email, email.as_str());
        audit(
            core,
            Actor::default(),
            Some(&client.id),
            Some(&user.id),
            AuditAction::UserEmailChanged,
            &detail,
        )
        .await?;
        // The links mailed to the old address are void: an invited user is invited again.
        let changed = core
            .store
            .user_of(user)
            .await?
            .ok_or(ServiceError::NotFound)?;
        crate::idm::links::invite_again(core, client, &changed).await?;
    }
    match changes.active {
        Some(false) if user.status() != UserStatus::Deactivated => {
            core.store
                .set_user_status(&user.id, UserStatus::Deactivated, now)
                .await?;
            let ended = core.store.delete_user_sessions(&user.id).await?;
            core.store
                .revoke_user_oauth_tokens(&user.id, core.clock.now())
                .await
                .context("revoking the user's tokens")?;
            let detail = format!("{ended} sessions ended");
            audit(
                core,
                Actor::default(),
                Some(&client.id),
                Some(&user.id),
                AuditAction::UserDeactivated,
                &detail,
            )
            .await?;
        }
        Some(true) if user.status() == UserStatus::Deactivated => {
            let status = if user.password_hash.is_some() || client.uses_sso() {
                UserStatus::Active
            } else {
                UserStatus::Invited
            };
            core.store.set_user_status(&user.id, status, now).await?;
            audit(
                core,
                Actor::default(),
                Some(&client.id),
                Some(&user.id),
                AuditAction::UserReactivated,
                "",
            )
            .await?;
        }
        _ => {}
    }
    core.store
        .user_of(user)
        .await?
        .ok_or(ServiceError::NotFound)
}

async fn audit(
    core: &Core,
    actor: Actor<'_>,
    client_id: Option<&str>,
    subject: Option<&str>,
    action: AuditAction,
    detail: &str,
) -> ServiceResult<()> {
    let event = Event::new(action, Outcome::Success)
        .client(client_id)
        .actor(actor.user_id)
        .subject(subject)
        .detail(detail)
        .ip(actor.ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}
