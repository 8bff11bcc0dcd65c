//! Housekeeping: keeps every table bounded. Each instance runs a pass every `HOUSEKEEPING_MINUTES`,
//! but only one at a time (the `housekeeping` lease row, taken as the outbox takes a mail), and
//! `promio-connect housekeeping` runs one by hand. A pass deletes, in batches of a few hundred
//! rows (so that no statement holds a lock a login would wait for long):
//!
//! | table | deleted when |
//! |---|---|
//! | `sessions` | idle or older than the session limits |
//! | `login_challenges` | past their time (pending second factors) |
//! | `sso_flows` | older than a round trip may take |
//! | `webauthn_ceremonies` | passkey ceremonies past their 5 minutes |
//! | `link_tokens` | used, superseded or expired a week ago (the link page still says which) |
//! | `throttle` | window and wait over for a day; a lock stays while its account exists |
//! | `mail_outbox` | sent a week ago; not sent after 30 days |
//! | `audit_events` | older than `AUDIT_RETENTION_DAYS` |
//! | `oauth_codes` | a day after they expired |
//! | `oauth_tokens` | a day after they expired or were revoked |
//! | `oauth_requests` | authorization requests that waited 10 minutes |
//! | `oauth_keys` | a day after the last token a retired key signed expired |
//! | `oauth_logout_outbox` | back-channel logouts not delivered in two days |
//! | `oauth_participations` | session gone and nothing to tell the application |
//! | `users` | deactivated past their client's retention (see `crate::idm::lifecycle`) |
//!
//! and runs the rest of the lifecycle (the administrators' notices, the inactivity rule). Without
//! `SMTP_URL`, the .eml files in the outbox folder hold live links: those written a week ago go
//! too. The folder is the instance's own, not shared state, so every instance clears its own at
//! each interval, whether or not it gets the lease.

use crate::idm::Core;
pub use crate::idm::lease::Lease;
use crate::idm::lease::{LEASE, LEASE_SECS};
use crate::idm::lifecycle;
use crate::infra::error::ServiceResult;
use crate::store::lifecycle::CLEANUPS;
use std::sync::Arc;
use std::time::Duration;

/// Rows per statement.
pub const BATCH: i64 = 500;
/// A pause between batches, in which logins get the database.
const PAUSE: Duration = Duration::from_millis(5);
const DAY: i64 = 86_400;
/// Used, superseded and expired links stay this long, so that the link page can say what
/// happened to a link.
pub const LINK_KEEP_SECS: i64 = 7 * DAY;
/// Sent mails stay this long (their bodies are emptied when sent).
pub const SENT_MAIL_KEEP_SECS: i64 = 7 * DAY;
/// A mail not sent after this long is given up.
pub const UNSENT_MAIL_KEEP_SECS: i64 = 30 * DAY;
/// Without `SMTP_URL`, a mail's .eml file (with its live link) stays this long in the outbox
/// folder.
pub const MAIL_FILE_KEEP_SECS: i64 = 7 * DAY;

/// What one pass deleted, per table, and what the lifecycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub deleted: Vec<(&'static str, u64)>,
    pub lifecycle: lifecycle::LifecycleReport,
    /// The .eml files removed from the outbox folder (no `SMTP_URL`).
    pub mail_files: u64,
}

impl Report {
    /// Rows deleted from `table` in this pass.
    pub fn deleted_from(&self, table: &str) -> u64 {
        self.deleted
            .iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, n)| n)
            .sum()
    }
}

pub use crate::store::lifecycle::TABLES;

/// The times a clean-up's condition compares with (see `store::lifecycle::CLEANUPS`).
fn times(core: &Core, table: &str) -> [i64; 3] {
    let now = core.clock.now();
    match table {
        "sessions" => [
            now - core.sessions.idle_secs,
            now - core.sessions.absolute_secs,
            0,
        ],
        "login_challenges" | "webauthn_ceremonies" => [now, 0, 0],
        "sso_flows" => [now - crate::idm::sso::FLOW_TTL_SECS, 0, 0],
        "link_tokens" => [now - LINK_KEEP_SECS, 0, 0],
        "throttle" => [now, now - crate::idm::throttle::ACCOUNT_RESET_AFTER, 0],
        "mail_outbox" => [now - SENT_MAIL_KEEP_SECS, now - UNSENT_MAIL_KEEP_SECS, 0],
        "audit_events" => [now - core.settings.audit_retention_days * DAY, 0, 0],
        // A used recovery code counts for nothing; a day lets a concurrent check see it used.
        "recovery_codes" => [now - DAY, 0, 0],
        "oauth_codes" | "oauth_tokens" => [now - DAY, 0, 0],
        "oauth_requests" => [now - crate::domain::limits::REQUEST_SECS, 0, 0],
        "oauth_keys" => [
            now - crate::idm::signing::PUBLISHED_AFTER_RETIREMENT - DAY,
            0,
            0,
        ],
        "oauth_logout_outbox" => [now - crate::domain::limits::GIVE_UP_AFTER_SECS, 0, 0],
        _ => [now, now, now],
    }
}

/// One pass, if no other instance is running one (`None` then). `holder` names this instance.
pub async fn run_once(core: &Core, holder: &str) -> ServiceResult<Option<Report>> {
    // The outbox folder is this instance's own: cleared with or without the lease.
    let mail_files = remove_old_mail_files(core).await;
    if !core
        .store
        .take_lease(LEASE, holder, core.clock.now(), LEASE_SECS)
        .await?
    {
        return Ok(None);
    }
    let result = pass(core, holder).await;
    // Given back either way; a failed pass is tried again at the next interval.
    core.store
        .release_lease(LEASE, holder, core.clock.now())
        .await?;
    let mut report = result?;
    report.mail_files = mail_files;
    core.metrics.housekeeping(
        &report.deleted,
        report.lifecycle.users_deactivated,
        report.lifecycle.deletion_notices + report.lifecycle.inactivity_notices,
        core.clock.now(),
    );
    Ok(Some(report))
}

/// Removes the outbox folder's .eml files written [`MAIL_FILE_KEEP_SECS`] ago (none with
/// `SMTP_URL`); returns how many. A failure is logged and does not stop the pass: the next
/// interval tries again.
async fn remove_old_mail_files(core: &Core) -> u64 {
    let before = core.clock.now() - MAIL_FILE_KEEP_SECS;
    match core.mailer.remove_kept_before(before).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(files = n, "old mail files removed from the outbox folder");
            }
            n
        }
        Err(e) => {
            let reason = format!("{e:#}");
            tracing::warn!(error = %reason, "old mail files could not be removed from the outbox folder; trying again later");
            0
        }
    }
}

async fn pass(core: &Core, holder: &str) -> ServiceResult<Report> {
    let lease = Lease::new(core, holder);
    let mut report = Report::default();
    // The lifecycle first: the rows a deleted user leaves are deleted with the user.
    let mut page = 0;
    loop {
        let (clients, _) = core.store.list_clients("", 100, page * 100).await?;
        if clients.is_empty() {
            break;
        }
        for client in &clients {
            // One client's failure (logged) does not keep the others, or the clean-ups of the
            // tables anonymous visitors fill, from running; a lost lease stops the pass.
            match lifecycle::run_for_client(core, client, &lease).await {
                Ok(done) => {
                    report.lifecycle.users_deleted += done.users_deleted;
                    report.lifecycle.users_deactivated += done.users_deactivated;
                    report.lifecycle.deletion_notices += done.deletion_notices;
                    report.lifecycle.inactivity_notices += done.inactivity_notices;
                }
                Err(e) => {
                    let e: promio_api::ApiError = e.into();
                    tracing::warn!(client = %client.company_id, error = %e, "the lifecycle of a client failed; the next pass tries again");
                }
            }
            lease.keep().await?;
        }
        page += 1;
    }
    report
        .deleted
        .push(("users", report.lifecycle.users_deleted));

    for cleanup in &CLEANUPS {
        let mut total = 0;
        loop {
            let n = core
                .store
                .delete_batch(cleanup, times(core, cleanup.table), BATCH)
                .await?;
            total += n;
            lease.keep().await?;
            if (n as i64) < BATCH {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
        report.deleted.push((cleanup.table, total));
    }
    let deleted: u64 = report.deleted.iter().map(|(_, n)| n).sum();
    tracing::info!(deleted, report = ?report.deleted, lifecycle = ?report.lifecycle, "housekeeping done");
    Ok(report)
}

/// Runs a pass every `HOUSEKEEPING_MINUTES` (the first shortly after the start), until aborted.
pub fn spawn(core: Arc<Core>) -> tokio::task::JoinHandle<()> {
    let holder = crate::store::new_id();
    let every = Duration::from_secs(core.settings.housekeeping_secs.max(60) as u64);
    tokio::spawn(async move {
        // Instances started together do not all try at the same moment.
        let jitter = u64::from(rand::random::<u16>() % 30);
        tokio::time::sleep(Duration::from_secs(30 + jitter)).await;
        loop {
            match run_once(&core, &holder).await {
                Ok(Some(_)) | Ok(None) => {}
                Err(e) => {
                    let e: promio_api::ApiError = e.into();
                    tracing::warn!(error = %e, "housekeeping failed; trying again later");
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}
