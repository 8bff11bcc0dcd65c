//! User administration by a client's user administrators (role admin; operators for the platform
//! client). Everything is scoped to the administrator's own client: a user id of another client
//! answers exactly like an id that does not exist (404).
//!
//! Roles: only operators act on operators (an admin of the platform client cannot reset an
//! operator's 2FA, change their email or send them a link, and so cannot take the account); an
//! admin acts on the users and admins of their own client; nobody changes their own role or status.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::{EmailAddress, Invalid, LinkKind, PersonName, Role};
use crate::idm::Core;
use crate::idm::links::{self, LinkStatus};
use crate::idm::principal::{Admin, Session};
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::infra::mail::templates;
use crate::store::audit::AuditFilter;
use crate::store::audit::NamedInLog;
use crate::store::users::NamesUser;
use crate::store::users::{UserFilter, UserRow, UserStatus};
use promio_api::{AuditEntry, AuditPage, AuditQuery, ThrottledAccount};
use promio_api::{Field, Invitation, Problem, UserForm, UserPage, UserQuery, UserSummary};

pub const PAGE_SIZE: u32 = 25;
/// Registration or reset mails an administrator may send one user per hour.
pub const ADMIN_MAILS_PER_HOUR: i64 = 5;

/// A user of the administrator's client whom they may act on: 404 for another client's user,
/// 403 for an operator when the administrator is not one.
pub(crate) async fn own_user(core: &Core, ctx: &Admin, id: &str) -> ServiceResult<UserRow> {
    match ctx.directory(core).user(id).await? {
        Some(user) => {
            may_act_on(ctx, &user)?;
            Ok(user)
        }
        _ => Err(ServiceError::NotFound),
    }
}

/// What an administrator does to their own account goes through the Security page and "Forgot
/// your password?", where the password or a second factor is asked for: here a stolen session
/// could otherwise turn off its owner's 2FA, or send a reset link to an address it just set.
fn not_self(ctx: &Admin, user: &UserRow) -> ServiceResult<()> {
    if user.id == ctx.admin.id {
        return Err(ServiceError::Forbidden);
    }
    Ok(())
}

/// Only operators act on operators.
fn may_act_on(ctx: &Admin, user: &UserRow) -> ServiceResult<()> {
    if user.role() == Role::Operator && ctx.admin.role() != Role::Operator {
        return Err(ServiceError::Forbidden);
    }
    Ok(())
}

async fn summary(core: &Core, ctx: &Admin, user: UserRow) -> ServiceResult<UserSummary> {
    let invitation = if user.password_hash.is_some() {
        Invitation::Accepted
    } else {
        match core
            .store
            .latest_link(&user.id, LinkKind::Registration)
            .await?
        {
            Some(link) if links::state_of(&link, core.clock.now()) == LinkStatus::Valid => {
                Invitation::Pending {
                    until: templates::format_time(link.expires_at, ctx.lang, &core.time_zone),
                }
            }
            _ => Invitation::Expired,
        }
    };
    let two_factor = user.has_totp();
    let deletion_date = if user.status() == UserStatus::Deactivated {
        crate::idm::lifecycle::shown_deletion_date(core, &ctx.client, &user, ctx.lang).await?
    } else {
        None
    };
    Ok(UserSummary {
        deletion_date,
        status: user.status().into(),
        role: user.role().into(),
        id: user.id.into_string(),
        username: user.username,
        first_name: user.first_name,
        last_name: user.last_name,
        two_factor,
        email: user.email,
        invitation,
        sso: ctx.client.uses_sso(),
        passkeys: user.passkeys.clamp(0, i64::from(u32::MAX)) as u32,
    })
}

/// The roles an administrator may give: operators only exist in the platform client.
fn parse_role(core: &Core, ctx: &Admin, raw: &str) -> ServiceResult<Role> {
    let bad = || {
        ServiceError::Invalid(Invalid {
            field: Field::Role,
            problem: Problem::Malformed,
        })
    };
    let role = Role::parse(raw).ok_or_else(bad)?;
    if role == Role::Operator && !ctx.is_operator(core) {
        return Err(bad());
    }
    Ok(role)
}

#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id))]
pub async fn list_users(core: &Core, ctx: &Admin, query: UserQuery) -> ServiceResult<UserPage> {
    if query.search.chars().count() > 100 {
        return Err(Invalid {
            field: Field::Name,
            problem: Problem::TooLong { max: 100 },
        }
        .into());
    }
    let status = match query.status.trim() {
        "" => None,
        other => Some(
            UserStatus::from_filter(other).ok_or(ServiceError::Invalid(Invalid {
                field: Field::Name,
                problem: Problem::Malformed,
            }))?,
        ),
    };
    let page = query.page.clamp(1, 100_000);
    let filter = UserFilter {
        search: query.search,
        status,
        limit: i64::from(PAGE_SIZE),
        offset: i64::from((page - 1) * PAGE_SIZE),
    };
    let (rows, total) = core.store.list_users(&ctx.client.id, &filter).await?;
    let mut users = Vec::with_capacity(rows.len());
    for row in rows {
        users.push(summary(core, ctx, row).await?);
    }
    Ok(UserPage {
        users,
        total: total as u64,
        page,
        page_size: PAGE_SIZE,
    })
}

#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id))]
pub async fn create_user(core: &Core, ctx: &Admin, form: UserForm) -> ServiceResult<UserSummary> {
    let role = parse_role(core, ctx, &form.role)?;
    let user = crate::idm::provisioning::create_invited_user(
        core,
        ctx.actor(),
        &ctx.client,
        crate::idm::provisioning::UserInput {
            company_id: ctx.client.company_id.clone(),
            username: form.username,
            email: form.email,
            first_name: form.first_name,
            last_name: form.last_name,
            role,
            language: ctx.lang.code().to_owned(),
            password: None,
        },
    )
    .await?;
    summary(core, ctx, user).await
}

#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id))]
pub async fn update_user(
    core: &Core,
    ctx: &Admin,
    id: String,
    form: UserForm,
) -> ServiceResult<UserSummary> {
    let user = own_user(core, ctx, &id).await?;
    let first_name = PersonName::parse(Field::FirstName, &form.first_name)?;
    let last_name = PersonName::parse(Field::LastName, &form.last_name)?;
    let email = EmailAddress::parse(&form.email)?;
    let role = parse_role(core, ctx, &form.role)?;
    if user.id == ctx.admin.id && role != user.role() {
        // An administrator cannot take their own rights away (and lock the client out).
        return Err(Invalid {
            field: Field::Role,
            problem: Problem::Malformed,
        }
        .into());
    }
    let moved = user.email_key() != email.key();
    if user.id == ctx.admin.id && moved {
        // Nor change their own address here (see `not_self`).
        return Err(ServiceError::Forbidden);
    }
    core.store
        .update_user_profile(
            &user.id,
            &first_name,
            &last_name,
            &email,
            role,
            core.clock.now(),
        )
        .await?;
    audit(
        core,
        ctx,
        &user,
        AuditAction::UserChanged,
        &format!("role {}", role.as_str()),
    )
    .await?;
    if moved {
        // The old address learns of the change: a taken-over account does not go unnoticed.
        let content = templates::MailContent::EmailChanged {
            login_link: core.settings.public_url.to_string(),
            new_email: email.as_str().to_owned(),
        };
        mail_user(core, ctx, &user, content).await?;
        audit(
            core,
            ctx,
            &user,
            AuditAction::UserEmailChanged,
            &format!("{} -> {}", user.email, email.as_str()),
        )
        .await?;
    }
    let user = core
        .store
        .user_of(&user)
        .await?
        .ok_or(ServiceError::NotFound)?;
    if moved {
        // A typo corrected, say: the invitation goes to the new address.
        links::invite_again(core, &ctx.client, &user).await?;
    }
    summary(core, ctx, user).await
}

#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id, ?kind))]
pub async fn send_link(core: &Core, ctx: &Admin, id: String, kind: LinkKind) -> ServiceResult<()> {
    let user = own_user(core, ctx, &id).await?;
    not_self(ctx, &user)?;
    let allowed = match kind {
        LinkKind::Registration => user.status() == UserStatus::Invited,
        LinkKind::PasswordReset => user.status() == UserStatus::Active,
    };
    if !allowed || ctx.client.uses_sso() {
        return Err(ServiceError::Forbidden);
    }
    // A few mails per user and hour; a stuck button or a script cannot flood an inbox.
    let hour_ago = core.clock.now() - 3600;
    if core.store.links_since(&user.id, kind, hour_ago).await? >= ADMIN_MAILS_PER_HOUR {
        return Err(ServiceError::TooManyAttempts {
            retry_after_secs: 3600,
        });
    }

    let mut tx = core.store.pool().begin().await?;
    links::issue_with_mail(core, &mut tx, &ctx.client, &user, kind).await?;
    tx.commit().await?;
    core.mailer.wake();
    let action = match kind {
        LinkKind::Registration => AuditAction::UserRegistrationResent,
        LinkKind::PasswordReset => AuditAction::UserResetSent,
    };
    audit(core, ctx, &user, action, "").await
}

#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id, active))]
pub async fn set_active(core: &Core, ctx: &Admin, id: String, active: bool) -> ServiceResult<()> {
    let user = own_user(core, ctx, &id).await?;
    if user.id == ctx.admin.id {
        return Err(ServiceError::Forbidden);
    }
    let now = core.clock.now();
    if active {
        if user.status() != UserStatus::Deactivated {
            return Ok(());
        }
        let status = if user.password_hash.is_some() {
            UserStatus::Active
        } else {
            UserStatus::Invited
        };
        core.store.set_user_status(&user.id, status, now).await?;
        audit(core, ctx, &user, AuditAction::UserReactivated, "").await
    } else {
        if user.status() == UserStatus::Deactivated {
            // Already: the count to deletion (and its announcement) stays as it is.
            return Ok(());
        }
        core.store
            .set_user_status(&user.id, UserStatus::Deactivated, now)
            .await?;
        let ended = core.store.delete_user_sessions(&user.id).await?;
        // Applications lose the user's tokens at once, not only at their next check.
        core.store
            .revoke_user_oauth_tokens(&user.id, core.clock.now())
            .await
            .context("revoking the user's tokens")?;
        audit(
            core,
            ctx,
            &user,
            AuditAction::UserDeactivated,
            &format!("{ended} sessions ended"),
        )
        .await
    }
}

/// Removes every passkey of a user of the administrator's client (a lost device); the user is
/// told by mail. Not one's own (the Security page asks for the password there).
#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id))]
pub async fn remove_passkeys(core: &Core, ctx: &Admin, id: String) -> ServiceResult<()> {
    let user = own_user(core, ctx, &id).await?;
    not_self(ctx, &user)?;
    let removed = core.store.delete_user_passkeys(&user.id).await?;
    // The second factor starts afresh: a lock of it ends with the passkeys.
    core.store
        .throttle_clear(&crate::idm::throttle::totp_key(&user.id))
        .await?;
    if removed == 0 {
        return Ok(());
    }
    let content = templates::MailContent::PasskeysRemoved {
        login_link: core.settings.public_url.to_string(),
    };
    mail_user(core, ctx, &user, content).await?;
    audit(
        core,
        ctx,
        &user,
        AuditAction::PasskeyRemoved,
        &format!("{removed} removed by an administrator"),
    )
    .await
}

/// Deletes a user of the administrator's client at once (see `crate::idm::lifecycle`): not oneself,
/// and operators only by operators.
#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id))]
pub async fn delete_user(core: &Core, ctx: &Admin, id: String) -> ServiceResult<()> {
    // Operators delete users of any client (the roles rule still holds: only operators delete
    // operators); administrators those of their own.
    let (user, client) = if let Some(directory) = ctx.operators_directory(core) {
        let user = directory.user(&id).await?.ok_or(ServiceError::NotFound)?;
        may_act_on(ctx, &user)?;
        let client = core
            .store
            .client_by_id(&user.client_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        (user, client)
    } else {
        (own_user(core, ctx, &id).await?, ctx.client.clone())
    };
    not_self(ctx, &user)?;
    let by = crate::idm::lifecycle::DeletedBy::Admin {
        id: &ctx.admin.id,
        ip: ctx.ip.as_deref(),
    };
    if !crate::idm::lifecycle::delete_user(core, &client, &user, by).await? {
        return Err(ServiceError::NotFound);
    }
    Ok(())
}

/// Tells a user of the administrator's client about a change to their account.
async fn mail_user(
    core: &Core,
    ctx: &Admin,
    user: &UserRow,
    content: templates::MailContent,
) -> ServiceResult<()> {
    let mut conn = core.store.pool().acquire().await?;
    core.mailer
        .notify_user(&mut conn, &ctx.client, user, &content)
        .await?;
    core.mailer.wake();
    Ok(())
}

/// Records what the administrator did to one of their client's users.
async fn audit(
    core: &Core,
    ctx: &Admin,
    user: &UserRow,
    action: AuditAction,
    detail: &str,
) -> ServiceResult<()> {
    let event = Event::new(action, Outcome::Success)
        .client(Some(&ctx.client.id))
        .actor(Some(&ctx.admin.id))
        .subject(Some(&user.id))
        .detail(detail)
        .ip(ctx.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

/// Turns a user's 2FA off (lost phone): audited, the user is told by mail, and their sessions end.
/// If the client requires 2FA, the user sets it up again at the next login.
#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id))]
pub async fn reset_two_factor(core: &Core, ctx: &Admin, id: String) -> ServiceResult<()> {
    let user = own_user(core, ctx, &id).await?;
    not_self(ctx, &user)?;
    // The second factor starts afresh: a lock of it ends here.
    core.store
        .throttle_clear(&crate::idm::throttle::totp_key(&user.id))
        .await?;
    if !user.has_totp() {
        return Ok(());
    }
    core.store.clear_totp(&user.id, core.clock.now()).await?;
    core.store.delete_user_sessions(&user.id).await?;
    let content = templates::MailContent::TwoFactorReset {
        login_link: core.settings.public_url.to_string(),
    };
    mail_user(core, ctx, &user, content).await?;
    audit(
        core,
        ctx,
        &user,
        AuditAction::TwoFactorReset,
        "reset by an administrator",
    )
    .await
}

/// The client's accounts with failed attempts in a row: of the password, and of the second
/// factor (whose counter is the user's, `totp:<user id>`).
pub async fn list_throttled(core: &Core, ctx: &Admin) -> ServiceResult<Vec<ThrottledAccount>> {
    let now = core.clock.now();
    let rows = core.store.throttled_accounts(&ctx.client.id).await?;
    let mut accounts = Vec::with_capacity(rows.len());
    for r in rows {
        let second_factor = r.key.starts_with("totp:");
        let username = match (r.username, r.key.strip_prefix("totp:")) {
            (Some(name), _) => name,
            // A second-factor counter begun before it kept the user name.
            (None, Some(user_id)) => ctx
                .directory(core)
                .user(user_id)
                .await?
                .map(|u| u.username)
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        accounts.push(ThrottledAccount {
            username,
            failures: r.failures.clamp(0, i64::from(u32::MAX)) as u32,
            wait_secs: (r.blocked_until - now).max(0) as u64,
            second_factor,
        });
    }
    Ok(accounts)
}

/// Lets an account try again at once (after the administrator has spoken with the user): the
/// password's counter and the second factor's are cleared, and a lock of either ends.
#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id))]
pub async fn clear_throttle(core: &Core, ctx: &Admin, username: String) -> ServiceResult<()> {
    let company = crate::domain::CompanyId::parse(&ctx.client.company_id)?;
    let name = crate::domain::UserName::parse(&username)?;
    let user = core.store.user_by_name(&ctx.client.id, &name).await?;
    if let Some(user) = &user {
        may_act_on(ctx, user)?;
    }
    let password = core
        .store
        .throttle_clear(&crate::idm::throttle::account_key(&company, &name))
        .await?;
    let second_factor = match &user {
        Some(user) => {
            core.store
                .throttle_clear(&crate::idm::throttle::totp_key(&user.id))
                .await?
        }
        None => false,
    };
    if !password && !second_factor {
        return Err(ServiceError::NotFound);
    }
    let event = Event::new(AuditAction::LoginThrottleCleared, Outcome::Success)
        .client(Some(&ctx.client.id))
        .actor(Some(&ctx.admin.id))
        .subject(user.as_ref().map(|u| &u.id))
        .detail(name.as_str())
        .ip(ctx.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

pub const AUDIT_PAGE_SIZE: u32 = 50;

/// The client's audit log for its administrators; operators see every client's.
pub async fn list_audit(core: &Core, ctx: &Admin, query: AuditQuery) -> ServiceResult<AuditPage> {
    let (rows, total, page) = search_audit(core, ctx, &query, AUDIT_PAGE_SIZE).await?;
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut companies: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows {
        entries.push(AuditEntry {
            at: templates::format_time(row.created_at, ctx.lang, &core.time_zone),
            company_id: name_of(
                core,
                &mut companies,
                Named::Client(row.client_id.as_deref()),
            )
            .await?,
            actor: name_of(core, &mut names, Named::User(row.actor())).await?,
            subject: name_of(core, &mut names, Named::User(row.subject())).await?,
            action: row.action,
            outcome: row.outcome,
            detail: row.detail,
            ip: row.ip.unwrap_or_default(),
        });
    }
    Ok(AuditPage {
        entries,
        total: total as u64,
        page,
        page_size: AUDIT_PAGE_SIZE,
    })
}

/// Every matching event (up to 100,000) as CSV, for the export.
pub async fn audit_csv(core: &Core, ctx: &Admin, query: AuditQuery) -> ServiceResult<String> {
    let (rows, _, _) = search_audit(core, ctx, &AuditQuery { page: 1, ..query }, 100_000).await?;
    let mut names = std::collections::HashMap::new();
    let mut companies = std::collections::HashMap::new();
    let mut out = String::from("time_utc,company_id,actor,subject,action,outcome,detail,ip\r\n");
    for row in rows {
        let at = jiff::Timestamp::from_second(row.created_at)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let fields = [
            at,
            name_of(
                core,
                &mut companies,
                Named::Client(row.client_id.as_deref()),
            )
            .await?,
            name_of(core, &mut names, Named::User(row.actor())).await?,
            name_of(core, &mut names, Named::User(row.subject())).await?,
            row.action,
            row.outcome,
            row.detail,
            row.ip.unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok(out)
}

/// Quotes a CSV field, and defuses formulas for spreadsheet programs.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}

async fn search_audit(
    core: &Core,
    ctx: &Admin,
    query: &AuditQuery,
    page_size: u32,
) -> ServiceResult<(Vec<crate::store::audit::AuditRow>, i64, u32)> {
    let operator = ctx.is_operator(core);
    let user_id = match query.user.trim() {
        "" => None,
        name => {
            let name = crate::domain::UserName::parse(name)?;
            match core.store.user_by_name(&ctx.client.id, &name).await? {
                Some(u) => Some(u.id.into_string()),
                // An unknown name matches nothing.
                None => Some(String::new()),
            }
        }
    };
    if query.action.chars().count() > 64 {
        return Err(Invalid {
            field: Field::Name,
            problem: Problem::TooLong { max: 64 },
        }
        .into());
    }
    let page = query.page.clamp(1, 100_000);
    let filter = AuditFilter {
        client_id: if operator {
            None
        } else {
            Some(ctx.client.id.to_string())
        },
        user_id,
        action: query.action.clone(),
        from: day(core, &query.from, false)?,
        to: day(core, &query.to, true)?,
        limit: i64::from(page_size),
        offset: i64::from((page - 1) * page_size),
    };
    let (rows, total) = core.store.search_audit(&filter).await?;
    Ok((rows, total, page))
}

/// The start of a YYYY-MM-DD day in the deployment's time zone (`end`: the start of the next day).
fn day(core: &Core, raw: &str, end: bool) -> ServiceResult<Option<i64>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || {
        ServiceError::Invalid(Invalid {
            field: Field::Name,
            problem: Problem::Malformed,
        })
    };
    let date: jiff::civil::Date = raw.parse().map_err(|_| bad())?;
    let date = if end {
        date.tomorrow().map_err(|_| bad())?
    } else {
        date
    };
    let zoned = date
        .to_zoned_datetime(core.time_zone.clone())
        .map_err(|_| bad())?;
    Ok(Some(zoned.timestamp().as_second()))
}

/// Who or what an id names, for the log view: a user name or a company ID, looked up once per page.
enum Named<'a> {
    /// A user an audit row names.
    User(Option<NamedInLog<'a>>),
    /// A client's row key.
    Client(Option<&'a str>),
}

async fn name_of(
    core: &Core,
    cache: &mut std::collections::HashMap<String, String>,
    named: Named<'_>,
) -> ServiceResult<String> {
    let id = match &named {
        Named::User(who) => who.as_ref().map(|w| w.named_user()),
        Named::Client(id) => *id,
    };
    let Some(id) = id else {
        return Ok(String::new());
    };
    if let Some(name) = cache.get(id) {
        return Ok(name.clone());
    }
    let name = match &named {
        // The row names the user (an operator acting on the client among them); one who is gone
        // was deleted: the log names them by their pseudonym.
        Named::User(Some(who)) => core
            .store
            .user_of(who)
            .await?
            .map(|u| u.username)
            .unwrap_or_else(|| crate::idm::lifecycle::pseudonym(core, id)),
        Named::User(None) => String::new(),
        Named::Client(_) => core
            .store
            .client_by_id(id)
            .await?
            .map(|c| c.company_id)
            .unwrap_or_default(),
    };
    cache.insert(id.to_owned(), name.clone());
    Ok(name)
}

/// Ends every session of a user of the administrator's client; returns how many there were.
#[tracing::instrument(skip_all, fields(admin_id = %ctx.admin.id, %id))]
pub async fn end_user_sessions(core: &Core, ctx: &Admin, id: String) -> ServiceResult<u32> {
    let user = own_user(core, ctx, &id).await?;
    let ended = core.store.delete_user_sessions(&user.id).await?;
    audit(
        core,
        ctx,
        &user,
        AuditAction::UserSessionsEnded,
        &format!("{ended} sessions"),
    )
    .await?;
    Ok(ended as u32)
}

/// The sessions of the request's user, newest use first.
pub async fn my_sessions(
    core: &Core,
    current: &Session,
) -> ServiceResult<Vec<promio_api::SessionInfo>> {
    let rows = core.store.user_sessions(&current.user.id).await?;
    let lang = current.lang;
    Ok(rows
        .into_iter()
        .map(|r| promio_api::SessionInfo {
            current: r.token_hash == current.token_hash,
            id: r.token_hash,
            started: templates::format_time(r.created_at, lang, &core.time_zone),
            last_seen: templates::format_time(r.last_seen_at, lang, &core.time_zone),
            ip: r.ip.unwrap_or_default(),
            device: r.user_agent.unwrap_or_default(),
        })
        .collect())
}

pub async fn end_my_session(core: &Core, current: &Session, id: String) -> ServiceResult<()> {
    if id.len() != 64 || !core.store.delete_own_session(&current.user.id, &id).await? {
        return Err(ServiceError::NotFound);
    }
    let event = Event::own(&current.user, AuditAction::SessionEnded, Outcome::Success)
        .detail("ended by the user")
        .ip(current.ip.as_deref());
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}
