//! The life of an account after its active days: a deactivated user is deleted once their
//! client's retention is over (`deletion_months`, 6 by default; the administrators are told a
//! week before), an administrator may delete a user at once, and a client may have users without
//! a login for `inactivity_months` deactivated (after a warning 14 days before). Housekeeping
//! (`crate::idm::housekeeping`) runs the automatic parts; [`delete_user`] is the one way a user is
//! deleted.
//!
//! A deletion removes the person: names, email, user name, password hash, second factors, SSO
//! binding, sessions, links, counters and mails to them (also the .eml files of a deployment
//! without `SMTP_URL`). The audit log keeps its rows; what named the person in them (user name,
//! email, name, their own addresses) becomes a stable pseudonym, "deleted user" and eight hex
//! digits of a keyed hash of the user's id, so the history stays readable and nobody is
//! identifiable. The user name is free again.

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::clock::UnixTime;
use crate::domain::{CompanyId, UserName};
use crate::idm::Core;
use crate::idm::lease::Lease;
use crate::infra::error::ServiceResult;
use crate::infra::mail::templates::{self, DeletionNotice, MailContent};
use crate::store::clients::ClientRow;
use crate::store::lifecycle as rows;
use crate::store::users::UserRow;
use jiff::ToSpan;
use jiff::tz::TimeZone;

/// The administrators are told this many days before their client's users are deleted, and a
/// deletion waits at least this long after that mail.
pub const DELETION_NOTICE_DAYS: i64 = 7;
/// A user is told this many days before they are deactivated for inactivity.
pub const INACTIVITY_NOTICE_DAYS: i64 = 14;
const DAY: i64 = 86_400;
/// Fewer days than any number of months has: a bound for the database to preselect by.
const SHORTEST_MONTH_DAYS: i64 = 28;
/// Users handled per statement.
const BATCH: i64 = 100;
/// Derives the key of the pseudonyms from `SECRET_KEY` (see `crate::infra::crypto`).
const PSEUDONYM_LABEL: &str = "promio.connect deleted user";

/// `at` plus `months` calendar months in `tz` (the same day of the month, or the month's last).
pub fn add_months(at: UnixTime, months: i64, tz: &TimeZone) -> UnixTime {
    jiff::Timestamp::from_second(at)
        .ok()
        .and_then(|t| {
            t.to_zoned_datetime(tz.clone())
                .checked_add(months.months())
                .ok()
        })
        .map(|z| z.timestamp().as_second())
        .unwrap_or(at + months * 31 * DAY)
}

/// When a user deactivated at `deactivated_at` will be deleted: after the client's retention, and
/// not before a week after the administrators were told (`warned_at`).
pub fn deletion_at(
    client: &ClientRow,
    deactivated_at: UnixTime,
    warned_at: Option<UnixTime>,
    tz: &TimeZone,
) -> UnixTime {
    let due = add_months(deactivated_at, client.deletion_months, tz);
    match warned_at {
        Some(warned) => due.max(warned + DELETION_NOTICE_DAYS * DAY),
        None => due,
    }
}

/// The stable name of a deleted user in the audit log.
pub fn pseudonym(core: &Core, user_id: &str) -> String {
    use secrecy::ExposeSecret;
    let key =
        crate::infra::crypto::derive_key(core.settings.secret_key.expose_secret(), PSEUDONYM_LABEL);
    let digest = crate::infra::crypto::derive_key(&key, user_id);
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("deleted user {hex}")
}

/// Who deletes a user, for the audit log.
#[derive(Debug, Clone, Copy)]
pub enum DeletedBy<'a> {
    /// An administrator or operator in the console.
    Admin { id: &'a str, ip: Option<&'a str> },
    /// An operator on the command line.
    CommandLine,
    /// Housekeeping: the client's retention is over.
    Retention,
}

/// Deletes `user` of `client` (see the module's text). With `DeletedBy::Retention`, only a user
/// still deactivated since their deactivation is deleted; returns false when the user stays
/// (reactivated meanwhile, or already gone).
pub async fn delete_user(
    core: &Core,
    client: &ClientRow,
    user: &UserRow,
    by: DeletedBy<'_>,
) -> ServiceResult<bool> {
    let alias = pseudonym(core, &user.id);
    let company = CompanyId::parse(&client.company_id)?;
    let username = UserName::parse(&user.username)?;
    let account_key = crate::idm::throttle::account_key(&company, &username);
    let totp_key = crate::idm::throttle::totp_key(&user.id);
    let throttle_keys = [
        crate::idm::throttle::refusals_key(&account_key),
        account_key,
        crate::idm::throttle::refusals_key(&totp_key),
        totp_key,
        format!("forgot-user:{}", user.id),
    ];
    let only_if_deactivated = match by {
        DeletedBy::Retention => Some(user.deactivated_at.unwrap_or(0)),
        _ => None,
    };

    // The log first, in short statements that can be repeated: no transaction holds the
    // database while thousands of rows are rewritten.
    pseudonymise(core, client, user, &alias).await?;
    // Then the account, in one short transaction that begins with a write.
    let mut tx = core.store.pool().begin().await?;
    if !rows::erase_user(&mut tx, &user.id, &throttle_keys, only_if_deactivated).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    // Without `SMTP_URL` the mails to them are .eml files (with live links) in the outbox folder:
    // they go with the account. A failure is logged; housekeeping removes them within a week.
    if let Err(e) = core.mailer.remove_kept_for_user(&user.id).await {
        let reason = format!("{e:#}");
        tracing::warn!(user = %alias, error = %reason, "the deleted user's mail files could not be removed");
    }
    // And what was logged about the person meanwhile (a mail to them being sent, say).
    pseudonymise(core, client, user, &alias).await?;

    let (actor, ip, why) = match by {
        DeletedBy::Admin { id, ip } => (Some(id), ip, "deleted by an administrator".to_owned()),
        DeletedBy::CommandLine => (None, None, "deleted on the command line".to_owned()),
        DeletedBy::Retention => (
            None,
            None,
            format!(
                "deactivated for more than {} months",
                client.deletion_months
            ),
        ),
    };
    let detail = format!("{alias}: {why}");
    let event = Event::new(AuditAction::UserDeleted, Outcome::Success)
        .client(Some(&client.id))
        .actor(actor)
        .subject(Some(&user.id))
        .detail(&detail)
        .ip(ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await?;
    tracing::info!(user = %alias, client = %client.company_id, "user deleted");
    Ok(true)
}

/// Replaces what names the person in the audit log with `alias`: in the rows by or about them,
/// their email, user name and names (as whole words), in their changes of address every address,
/// and the addresses of what they did themselves (an administrator's address stays, and so does
/// that of someone who tried to log in as them). Also the clearing of their login counter, whose
/// detail is the user name as the administrator typed it, and their email in the SSO logins of
/// their client that name it (a refusal such as "no user with the email …" has no subject, or
/// another user with that address). Each row is its own statement.
async fn pseudonymise(
    core: &Core,
    client: &ClientRow,
    user: &UserRow,
    alias: &str,
) -> ServiceResult<()> {
    let needles = identifying_texts(user);
    let address = [user.email.clone()];
    let name = user.username.to_lowercase();
    let sso = AuditAction::LoginSso.name();
    let theirs = |row: &rows::AuditMention| {
        row.actor_user_id.as_deref() == Some(&*user.id)
            || row.subject_user_id.as_deref() == Some(&*user.id)
            || row.detail.to_lowercase() == name
    };
    let mentions = core
        .store
        .audit_mentions(&user.id, &client.id, &user.email)
        .await?
        .into_iter()
        .filter(|row| theirs(row) || row.action == sso);
    for row in mentions {
        let about_them = row.subject_user_id.as_deref() == Some(&*user.id);
        let mut detail = row.detail.clone();
        if about_them && row.action == AuditAction::UserEmailChanged.name() {
            detail = without_addresses(&detail, alias);
        }
        // In a row about someone else only the address is theirs (a name may be another's too).
        let wanted = if theirs(&row) {
            &needles[..]
        } else {
            &address[..]
        };
        let detail = replace_all(&detail, wanted, alias);
        let own = row.actor_user_id.as_deref() == Some(&*user.id);
        let ip = if own { None } else { row.ip.as_deref() };
        if detail != row.detail || ip != row.ip.as_deref() {
            core.store.rewrite_audit(&row.id, &detail, ip).await?;
        }
    }
    Ok(())
}

/// What names the person in free text: their email, user name and names, longest first (so that
/// a name inside the email is not replaced on its own first).
fn identifying_texts(user: &UserRow) -> Vec<String> {
    let full = format!("{} {}", user.first_name, user.last_name);
    let mut texts: Vec<String> = [
        user.email.as_str(),
        user.username.as_str(),
        full.trim(),
        user.first_name.trim(),
        user.last_name.trim(),
    ]
    .into_iter()
    .filter(|t| t.chars().count() >= 2)
    .map(str::to_owned)
    .collect();
    texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
    texts.dedup();
    texts
}

/// `text` with every word that holds an `@` (an email address, e.g. an earlier one of the person's
/// in a change of address) replaced by `with`.
fn without_addresses(text: &str, with: &str) -> String {
    text.split(' ')
        .map(|word| if word.contains('@') { with } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with every case-insensitive occurrence of each needle as a whole word (not inside a
/// longer run of letters and digits) replaced by `with`.
fn replace_all(text: &str, needles: &[String], with: &str) -> String {
    let mut out = text.to_owned();
    for needle in needles {
        let wanted: Vec<char> = needle.to_lowercase().chars().collect();
        if wanted.is_empty() {
            continue;
        }
        let chars: Vec<char> = out.chars().collect();
        let lower: Vec<char> = chars
            .iter()
            .map(|c| c.to_lowercase().next().unwrap_or(*c))
            .collect();
        let word = |i: usize| chars.get(i).is_some_and(|c| c.is_alphanumeric());
        let mut result = String::with_capacity(out.len());
        let mut i = 0;
        while i < chars.len() {
            let fits = lower.len() >= i + wanted.len()
                && lower[i..i + wanted.len()] == wanted[..]
                && !(i > 0 && word(i - 1))
                && !word(i + wanted.len());
            if fits {
                result.push_str(with);
                i += wanted.len();
            } else {
                result.push(chars[i]);
                i += 1;
            }
        }
        out = result;
    }
    out
}

/// What one pass of the lifecycle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleReport {
    pub users_deleted: u64,
    pub users_deactivated: u64,
    pub deletion_notices: u64,
    pub inactivity_notices: u64,
}

/// The automatic part for one client: tells the administrators of deletions due within a week,
/// deletes the users whose date has come, and applies the inactivity rule.
/// `lease`: housekeeping's lease, kept after each user (the pass stops when it is lost).
pub async fn run_for_client(
    core: &Core,
    client: &ClientRow,
    lease: &Lease<'_>,
) -> ServiceResult<LifecycleReport> {
    let mut report = LifecycleReport::default();
    let tz = &core.time_zone;
    let now = core.clock.now();
    // Preselected by a bound that holds for every length of month; the exact date is computed here.
    let retention_floor = client.deletion_months * SHORTEST_MONTH_DAYS * DAY;

    // The notice: users whose date falls within the week, in one mail to each administrator.
    let notice_before = now + DELETION_NOTICE_DAYS * DAY - retention_floor;
    let mut coming = Vec::new();
    for (user, _) in core
        .store
        .deactivated_users(&client.id, notice_before, true, 1000)
        .await?
    {
        let Some(deactivated_at) = user.deactivated_at else {
            continue;
        };
        if deletion_at(client, deactivated_at, None, tz) <= now + DELETION_NOTICE_DAYS * DAY {
            coming.push(user);
        }
    }
    if !coming.is_empty() {
        report.deletion_notices += notify_deletions(core, client, &coming).await?;
    }

    // The deletions whose date has come (and whose notice went out a week ago).
    loop {
        let due = core
            .store
            .deactivated_users(&client.id, now - retention_floor, false, BATCH)
            .await?;
        let batch_len = due.len() as i64;
        let mut deleted_now = 0;
        for (user, warned) in due {
            let Some(deactivated_at) = user.deactivated_at else {
                continue;
            };
            if warned.is_none() || deletion_at(client, deactivated_at, warned, tz) > now {
                continue;
            }
            if delete_user(core, client, &user, DeletedBy::Retention).await? {
                deleted_now += 1;
            }
            lease.keep().await?;
        }
        report.users_deleted += deleted_now;
        if batch_len < BATCH || deleted_now == 0 {
            break;
        }
    }

    if let Some(months) = client.inactivity_months {
        let (notices, deactivated) = apply_inactivity(core, client, months, lease).await?;
        report.inactivity_notices += notices;
        report.users_deactivated += deactivated;
    }
    Ok(report)
}

/// Marks the users as announced and mails the client's administrators the list, in one
/// transaction: a user another instance announced first is left out, and nobody is listed twice.
async fn notify_deletions(
    core: &Core,
    client: &ClientRow,
    users: &[UserRow],
) -> ServiceResult<u64> {
    let now = core.clock.now();
    let admins = core.store.client_admins(&client.id).await?;
    let mut tx = core.store.pool().begin().await?;
    let mut listed = Vec::new();
    for user in users {
        if rows::mark_deletion_warned(&mut tx, &user.id, now).await? {
            let at = deletion_at(
                client,
                user.deactivated_at.unwrap_or(now),
                Some(now),
                &core.time_zone,
            );
            listed.push(DeletionNotice {
                name: crate::infra::mail::display_name(user),
                username: user.username.clone(),
                at,
            });
        }
    }
    if listed.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let mut console = core.settings.public_url.clone();
    console.set_path("/users");
    let content = MailContent::DeletionsComing {
        console_link: console.to_string(),
        users: listed.clone(),
    };
    for admin in &admins {
        core.mailer
            .notify_user(&mut tx, client, admin, &content)
            .await?;
    }
    tx.commit().await?;
    core.mailer.wake();
    tracing::info!(client = %client.company_id, users = listed.len(), admins = admins.len(), "deletions announced");
    Ok(admins.len() as u64)
}

/// The inactivity rule: a warning 14 days before, then the deactivation. Returns the warnings sent
/// and the users deactivated.
async fn apply_inactivity(
    core: &Core,
    client: &ClientRow,
    months: i64,
    lease: &Lease<'_>,
) -> ServiceResult<(u64, u64)> {
    let tz = &core.time_zone;
    let now = core.clock.now();
    let floor = months * SHORTEST_MONTH_DAYS * DAY;
    let notice = INACTIVITY_NOTICE_DAYS * DAY;
    let (mut notices, mut deactivated) = (0, 0);

    // Deactivations first: a user warned at least 14 days ago, still without a login.
    for (user, last_activity) in core
        .store
        .inactive_users(&client.id, now - floor, Some(now - notice), BATCH)
        .await?
    {
        if add_months(last_activity, months, tz) > now {
            continue;
        }
        let mut tx = core.store.pool().begin().await?;
        if !rows::deactivate_inactive(&mut tx, &user.id, last_activity, now).await? {
            tx.rollback().await?;
            continue;
        }
        crate::store::sessions::delete_user_sessions_in(&mut tx, &user.id).await?;
        crate::store::oauth_tokens::revoke_user_tokens_in(&mut tx, &user.id, now).await?;
        tx.commit().await?;
        let detail = format!("no login for {months} months");
        let event = Event::new(AuditAction::UserDeactivated, Outcome::Success)
            .client(Some(&client.id))
            .subject(Some(&user.id))
            .detail(&detail);
        crate::infra::audit::record(&core.store, event, now).await?;
        deactivated += 1;
        lease.keep().await?;
    }

    // Warnings: users whose date is within 14 days.
    for (user, last_activity) in core
        .store
        .inactive_users(&client.id, now + notice - floor, None, BATCH)
        .await?
    {
        let due = add_months(last_activity, months, tz);
        if due > now + notice {
            continue;
        }
        let mut tx = core.store.pool().begin().await?;
        if !rows::mark_inactivity_warned(&mut tx, &user.id, last_activity, now).await? {
            tx.rollback().await?;
            continue;
        }
        let content = MailContent::InactivityWarning {
            login_link: core.settings.public_url.to_string(),
            months,
            // Never sooner than 14 days after the warning.
            deactivate_at: due.max(now + notice),
        };
        core.mailer
            .notify_user(&mut tx, client, &user, &content)
            .await?;
        tx.commit().await?;
        core.mailer.wake();
        notices += 1;
        lease.keep().await?;
    }
    Ok((notices, deactivated))
}

/// The date shown in User administration for a deactivated user.
pub async fn shown_deletion_date(
    core: &Core,
    client: &ClientRow,
    user: &UserRow,
    lang: promio_api::i18n::Lang,
) -> ServiceResult<Option<String>> {
    let Some(deactivated_at) = user.deactivated_at else {
        return Ok(None);
    };
    let warned = core.store.deletion_warned_at(&user.id).await?;
    let mut at = deletion_at(client, deactivated_at, warned, &core.time_zone);
    if warned.is_none() {
        // Not announced yet: the deletion waits a week after the announcement.
        at = at.max(core.clock.now() + DELETION_NOTICE_DAYS * DAY);
    }
    Ok(Some(templates::format_date(at, lang, &core.time_zone)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months_in_the_zone() {
        let berlin = TimeZone::get("Europe/Berlin").expect("a zone");
        // 2026-12-01T10:00:00Z (11:00 CET) + 6 months = 2027-06-01 at 11:00 again, now CEST.
        let start = 1_796_119_200;
        let later = add_months(start, 6, &berlin);
        let shown = jiff::Timestamp::from_second(later)
            .expect("a time")
            .to_zoned_datetime(berlin.clone());
        assert_eq!((shown.year(), shown.month(), shown.day()), (2027, 6, 1));
        assert_eq!(shown.hour(), 11);
        // 31 August + 6 months is the last of February.
        let aug31 = jiff::civil::date(2026, 8, 31)
            .at(12, 0, 0, 0)
            .to_zoned_datetime(berlin.clone())
            .expect("a time")
            .timestamp()
            .as_second();
        let feb = jiff::Timestamp::from_second(add_months(aug31, 6, &berlin))
            .expect("a time")
            .to_zoned_datetime(berlin);
        assert_eq!((feb.month(), feb.day()), (2, 28));
    }

    #[test]
    fn addresses_are_replaced_whole() {
        assert_eq!(
            without_addresses("old@acme.example -> new@acme.example", "X Y"),
            "X Y -> X Y"
        );
        assert_eq!(without_addresses("role user", "X"), "role user");
    }

    #[test]
    fn every_spelling_of_a_name_is_replaced() {
        let needles = vec!["alice@acme.example".to_owned(), "alice".to_owned()];
        assert_eq!(
            replace_all("ALICE@acme.example -> Alice.B and alice", &needles, "X"),
            "X -> X.B and X"
        );
        assert_eq!(replace_all("nothing here", &needles, "X"), "nothing here");
        // Text outside ASCII around the name stays as it was.
        let needles = vec!["jörg".to_owned()];
        assert_eq!(
            replace_all("Ärger mit JÖRG!", &needles, "X"),
            "Ärger mit X!"
        );
    }
}
