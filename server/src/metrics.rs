//! Prometheus metrics at `/metrics`: logins by method and outcome, the password hashing pool, the
//! mail outbox. Counters are per instance (Prometheus sums them across instances); the outbox
//! figures are read from the shared database at each scrape.

use crate::Core;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    logins: Mutex<BTreeMap<(&'static str, String), u64>>,
    housekeeping: Mutex<Housekeeping>,
}

/// What this instance's housekeeping passes did.
#[derive(Default, Clone)]
struct Housekeeping {
    passes: u64,
    last_pass: i64,
    deleted: BTreeMap<&'static str, u64>,
    deactivated: u64,
    notices: u64,
}

impl Metrics {
    /// Counts one login attempt's outcome (`method`: password, second_factor, sso).
    pub fn login(&self, method: &'static str, outcome: &str) {
        if let Ok(mut logins) = self.logins.lock() {
            *logins.entry((method, outcome.to_owned())).or_default() += 1;
        }
    }

    /// Counts a housekeeping pass and what it deleted.
    pub fn housekeeping(&self, report: &crate::housekeeping::Report, now: i64) {
        if let Ok(mut h) = self.housekeeping.lock() {
            h.passes += 1;
            h.last_pass = now;
            for (table, n) in &report.deleted {
                *h.deleted.entry(table).or_default() += n;
            }
            h.deactivated += report.lifecycle.users_deactivated;
            h.notices += report.lifecycle.deletion_notices + report.lifecycle.inactivity_notices;
        }
    }

    fn logins(&self) -> Vec<((&'static str, String), u64)> {
        self.logins
            .lock()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// The metrics in Prometheus's text format.
pub async fn render(core: &Core) -> Result<String, sqlx::Error> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP promio_logins_total Login attempts by method and outcome.\n# TYPE promio_logins_total counter"
    );
    for ((method, outcome), n) in core.metrics.logins() {
        let _ = writeln!(
            out,
            "promio_logins_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let pool = core.hasher.stats();
    let gauges = [
        (
            "promio_hash_pool_workers",
            "Password hashing workers.",
            pool.workers as u64,
        ),
        (
            "promio_hash_pool_busy",
            "Hashing workers at work now.",
            pool.busy as u64,
        ),
        (
            "promio_hash_pool_queue",
            "Password checks waiting for a worker.",
            pool.waiting as u64,
        ),
        (
            "promio_hash_pool_queue_limit",
            "Waiting checks allowed before refusing (HASH_QUEUE).",
            pool.max_waiting as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let counters = [
        (
            "promio_hash_verifications_total",
            "Password verifications run (real or dummy).",
            pool.verifications,
        ),
        (
            "promio_hash_pool_rejected_total",
            "Password checks refused because the queue was full.",
            pool.rejected,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let housekeeping = core
        .metrics
        .housekeeping
        .lock()
        .map(|h| h.clone())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# HELP promio_housekeeping_deleted_total Rows deleted by housekeeping, by table.\n# TYPE promio_housekeeping_deleted_total counter"
    );
    for table in crate::housekeeping::TABLES {
        let n = housekeeping.deleted.get(table).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "promio_housekeeping_deleted_total{{table=\"{table}\"}} {n}"
        );
    }
    let counters = [
        (
            "promio_housekeeping_passes_total",
            "Housekeeping passes this instance ran (one instance at a time runs one).",
            housekeeping.passes,
        ),
        (
            "promio_housekeeping_users_deactivated_total",
            "Users deactivated for inactivity.",
            housekeeping.deactivated,
        ),
        (
            "promio_housekeeping_notices_total",
            "Mails about coming deletions and deactivations.",
            housekeeping.notices,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP promio_housekeeping_last_pass_timestamp_seconds When this instance last finished a housekeeping pass (0: never).\n# TYPE promio_housekeeping_last_pass_timestamp_seconds gauge\npromio_housekeeping_last_pass_timestamp_seconds {}",
        housekeeping.last_pass
    );
    let (depth, age) = core.store.outbox_depth(core.clock.now()).await?;
    let _ = writeln!(
        out,
        "# HELP promio_mail_outbox_depth Mails waiting to be sent.\n# TYPE promio_mail_outbox_depth gauge\npromio_mail_outbox_depth {depth}"
    );
    let _ = writeln!(
        out,
        "# HELP promio_mail_outbox_oldest_age_seconds Age of the oldest unsent mail.\n# TYPE promio_mail_outbox_oldest_age_seconds gauge\npromio_mail_outbox_oldest_age_seconds {age}"
    );
    Ok(out)
}
