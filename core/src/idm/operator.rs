//! The operator console: the platform's support staff (users with role operator in the platform
//! client) create clients and set what is per client. Everyone else gets 403.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::{CompanyId, Invalid};
use crate::idm::Core;
use crate::idm::principal::Operator;
use crate::idm::provisioning::{self, Actor, ClientSettings};
use crate::idm::sso::{self, SsoInput};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::store::clients::ClientRow;
use promio_api::{ClientForm, ClientPage, ClientSummary, Field, Problem, SsoCheck};

pub const PAGE_SIZE: u32 = 25;

pub async fn summary(core: &Core, c: ClientRow) -> ServiceResult<ClientSummary> {
    let sso_domains = if c.uses_sso() {
        core.store.sso_domains(&c.id).await?
    } else {
        Vec::new()
    };
    Ok(ClientSummary {
        sso: c.uses_sso(),
        sso_issuer: c.sso_issuer.clone().unwrap_or_default(),
        sso_client_id: c.sso_client_id.clone().unwrap_or_default(),
        sso_secret_set: c.sso_client_secret.is_some(),
        sso_domains,
        sso_email_claim: c.sso_email_claim.clone().unwrap_or_default(),
        sso_jit: c.sso_creates_users(),
        require_2fa: c.requires_2fa(),
        active: c.is_active(),
        registration_link_hours: c.registration_link_hours.clamp(0, i64::from(u32::MAX)) as u32,
        reset_link_hours: c.reset_link_hours.clamp(0, i64::from(u32::MAX)) as u32,
        deletion_months: c.deletion_months.clamp(0, i64::from(u32::MAX)) as u32,
        passkeys: c.allows_passkeys() && !c.uses_sso(),
        inactivity_months: c
            .inactivity_months
            .map(|m| m.clamp(0, i64::from(u32::MAX)) as u32),
        company_id: c.company_id,
        name: c.name,
    })
}

fn sso_input(form: &ClientForm) -> SsoInput {
    SsoInput {
        issuer: form.sso_issuer.clone(),
        client_id: form.sso_client_id.clone(),
        client_secret: form.sso_client_secret.clone(),
        domains: form.sso_domains.clone(),
        email_claim: form.sso_email_claim.clone(),
        jit: form.sso_jit,
    }
}

/// Whole hours from 1 to 720, as typed into the form.
fn hours(field: Field, raw: &str) -> Result<i64, Invalid> {
    let out_of_range = Invalid {
        field,
        problem: Problem::OutOfRange { min: 1, max: 720 },
    };
    if raw.trim().is_empty() {
        return Err(Invalid {
            field,
            problem: Problem::Missing,
        });
    }
    let n: i64 = raw.trim().parse().map_err(|_| out_of_range)?;
    provisioning::link_hours(field, n)
}

/// Whole months within `range`, as typed into the form; empty gives `None`.
fn months_field(
    field: Field,
    range: std::ops::RangeInclusive<i64>,
    raw: &str,
) -> Result<Option<i64>, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let out_of_range = Invalid {
        field,
        problem: Problem::OutOfRange {
            min: *range.start() as u32,
            max: *range.end() as u32,
        },
    };
    let n: i64 = raw.parse().map_err(|_| out_of_range)?;
    provisioning::months(field, range, n).map(Some)
}

fn settings(form: &ClientForm) -> Result<ClientSettings, Invalid> {
    Ok(ClientSettings {
        name: Some(form.name.clone()),
        registration_link_hours: Some(hours(
            Field::RegistrationLinkHours,
            &form.registration_link_hours,
        )?),
        reset_link_hours: Some(hours(Field::ResetLinkHours, &form.reset_link_hours)?),
        require_2fa: Some(form.require_2fa),
        passkeys: form.passkeys,
        // Empty leaves the retention as it is (6 months for a new client).
        deletion_months: months_field(
            Field::DeletionMonths,
            provisioning::DELETION_MONTHS,
            &form.deletion_months,
        )?,
        // Empty: inactive users are never deactivated.
        inactivity_months: Some(months_field(
            Field::InactivityMonths,
            provisioning::INACTIVITY_MONTHS,
            &form.inactivity_months,
        )?),
    })
}

pub async fn list(
    core: &Core,
    _operator: &Operator,
    search: String,
    page: u32,
) -> ServiceResult<ClientPage> {
    if search.chars().count() > 100 {
        return Err(Invalid {
            field: Field::Name,
            problem: Problem::TooLong { max: 100 },
        }
        .into());
    }
    let page = page.clamp(1, 100_000);
    let (rows, total) = core
        .store
        .list_clients(
            &search,
            i64::from(PAGE_SIZE),
            i64::from((page - 1) * PAGE_SIZE),
        )
        .await?;
    let mut clients = Vec::with_capacity(rows.len());
    for row in rows {
        clients.push(summary(core, row).await?);
    }
    Ok(ClientPage {
        clients,
        total: total as u64,
        page,
        page_size: PAGE_SIZE,
    })
}

#[tracing::instrument(skip_all, fields(operator_id = %ctx.user_id))]
pub async fn create(core: &Core, ctx: &Operator, form: ClientForm) -> ServiceResult<ClientSummary> {
    // Check everything before anything is written.
    let id = CompanyId::parse(&form.company_id)?;
    crate::domain::ClientName::parse(&form.name)?;
    let settings = settings(&form)?;
    if core.store.client_by_company_id(&id).await?.is_some() {
        return Err(Invalid {
            field: Field::CompanyId,
            problem: Problem::Taken,
        }
        .into());
    }
    let sso = sso::prepare(core, &sso_input(&form), None).await?;
    let actor = Actor {
        user_id: Some(&ctx.user_id),
        ip: ctx.ip.as_deref(),
    };
    let client = provisioning::create_client(core, actor, &form.company_id, &form.name).await?;
    if sso.changes(core, &client).await? {
        sso::store_prepared(core, actor, &client, sso).await?;
    }
    let client = provisioning::update_client(core, actor, &form.company_id, settings).await?;
    summary(core, client).await
}

#[tracing::instrument(skip_all, fields(operator_id = %ctx.user_id))]
pub async fn update(core: &Core, ctx: &Operator, form: ClientForm) -> ServiceResult<ClientSummary> {
    let settings = settings(&form)?;
    let client = provisioning::client(core, &form.company_id).await?;
    let sso = sso::prepare(core, &sso_input(&form), Some(&client)).await?;
    let actor = Actor {
        user_id: Some(&ctx.user_id),
        ip: ctx.ip.as_deref(),
    };
    if sso.changes(core, &client).await? {
        sso::store_prepared(core, actor, &client, sso).await?;
    }
    let client = provisioning::update_client(core, actor, &form.company_id, settings).await?;
    summary(core, client).await
}

/// "Test connection": fetches and checks the issuer's discovery document; stores nothing.
pub async fn test_sso_connection(
    core: &Core,
    _operator: &Operator,
    issuer: String,
) -> ServiceResult<SsoCheck> {
    if issuer.trim().is_empty() {
        return Err(Invalid {
            field: Field::SsoIssuer,
            problem: Problem::Missing,
        }
        .into());
    }
    sso::check_provider(core, &issuer).await
}

/// Deactivating a client stops its users from logging in and ends their sessions; nothing is deleted.
#[tracing::instrument(skip_all, fields(operator_id = %ctx.user_id, %company_id, active))]
pub async fn set_active(
    core: &Core,
    ctx: &Operator,
    company_id: String,
    active: bool,
) -> ServiceResult<()> {
    let id = CompanyId::parse(&company_id)?;
    if id.key() == core.settings.platform_company_id.key() {
        return Err(ServiceError::Forbidden);
    }
    if !core
        .store
        .set_client_active(&id, active, core.clock.now())
        .await?
    {
        return Err(ServiceError::NotFound);
    }
    let client = core
        .store
        .client_by_company_id(&id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    if !active {
        core.store.delete_client_sessions(&client.id).await?;
    }
    let action = if active {
        AuditAction::ClientReactivated
    } else {
        AuditAction::ClientDeactivated
    };
    let event = Event::new(action, Outcome::Success)
        .client(Some(&client.id))
        .actor(Some(&ctx.user_id))
        .detail(&client.company_id)
        .ip(ctx.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}
