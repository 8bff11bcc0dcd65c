//! Prometheus metrics at `/metrics`, with the `prometheus-client` crate, in Prometheus's text
//! format: requests and their latency per route, logins by method and outcome, the password
//! hashing pool, the mail outbox, housekeeping, the process and the build. Counters are per
//! instance (Prometheus sums them across instances); the outbox figures are read from the shared
//! database at each scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    route: String,
    method: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabel {
    grant_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OAuthErrorLabels {
    endpoint: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// The request latency buckets: 1 ms to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    logins: Family<LoginLabels, Counter>,
    oauth_grants: Family<GrantLabel, Counter>,
    oauth_errors: Family<OAuthErrorLabels, Counter>,
    backchannel_logouts: Family<OutcomeLabel, Counter>,
    requests: Family<StatusLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    hash_workers: Gauge,
    async_workers: Gauge,
    hash_busy: Gauge,
    hash_queue: Gauge,
    hash_queue_limit: Gauge,
    hash_verifications: Counter,
    hash_rejected: Counter,
    outbox_depth: Gauge,
    outbox_oldest: Gauge,
    housekeeping_deleted: Family<TableLabel, Counter>,
    housekeeping_passes: Counter,
    housekeeping_deactivated: Counter,
    housekeeping_notices: Counter,
    housekeeping_last_pass: Gauge,
    resident_memory: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(0)
    }
}

impl Metrics {
    /// The metrics of a process started at `started` (Unix seconds).
    pub fn new(started: i64) -> Metrics {
        let mut registry = Registry::default();
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "promio_logins",
            "Login attempts by method (password, second_factor, sso, passkey) and outcome",
            logins.clone(),
        );
        let oauth_grants = Family::<GrantLabel, Counter>::default();
        registry.register(
            "promio_oauth_grants",
            "Tokens issued to applications by grant type (authorization_code, refresh_token)",
            oauth_grants.clone(),
        );
        let oauth_errors = Family::<OAuthErrorLabels, Counter>::default();
        registry.register(
            "promio_oauth_errors",
            "OAuth errors answered to applications, by endpoint and error code",
            oauth_errors.clone(),
        );
        let backchannel_logouts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "promio_backchannel_logouts",
            "Back-channel logout deliveries by outcome (sent, retry, given_up)",
            backchannel_logouts.clone(),
        );
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "promio_http_requests",
            "HTTP requests by route, method and status class",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "promio_http_request_duration_seconds",
            "Time to answer an HTTP request, by route and method",
            latency.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let hash_workers = gauge(
            &mut registry,
            "promio_hash_pool_workers",
            "Password hashing workers",
        );
        let async_workers = gauge(
            &mut registry,
            "promio_async_workers",
            "Threads of the async runtime (ASYNC_WORKERS)",
        );
        let hash_busy = gauge(
            &mut registry,
            "promio_hash_pool_busy",
            "Hashing workers at work now",
        );
        let hash_queue = gauge(
            &mut registry,
            "promio_hash_pool_queue",
            "Password checks waiting for a worker",
        );
        let hash_queue_limit = gauge(
            &mut registry,
            "promio_hash_pool_queue_limit",
            "Waiting checks allowed before refusing (HASH_QUEUE)",
        );
        let hash_verifications = counter(
            &mut registry,
            "promio_hash_verifications",
            "Password verifications run (real or dummy)",
        );
        let hash_rejected = counter(
            &mut registry,
            "promio_hash_pool_rejected",
            "Password checks refused because the queue was full",
        );
        let outbox_depth = gauge(
            &mut registry,
            "promio_mail_outbox_depth",
            "Mails waiting to be sent",
        );
        let outbox_oldest = gauge(
            &mut registry,
            "promio_mail_outbox_oldest_age_seconds",
            "Age of the oldest unsent mail",
        );
        let housekeeping_deleted = Family::<TableLabel, Counter>::default();
        // Every table from the start, at 0 (a rate needs the series before the first deletion).
        for table in crate::store::lifecycle::TABLES {
            let _ = housekeeping_deleted
                .get_or_create(&TableLabel {
                    table: table.to_owned(),
                })
                .get();
        }
        registry.register(
            "promio_housekeeping_deleted",
            "Rows deleted by housekeeping, by table",
            housekeeping_deleted.clone(),
        );
        let housekeeping_passes = counter(
            &mut registry,
            "promio_housekeeping_passes",
            "Housekeeping passes this instance ran (one instance at a time runs one)",
        );
        let housekeeping_deactivated = counter(
            &mut registry,
            "promio_housekeeping_users_deactivated",
            "Users deactivated for inactivity",
        );
        let housekeeping_notices = counter(
            &mut registry,
            "promio_housekeeping_notices",
            "Mails about coming deletions and deactivations",
        );
        let housekeeping_last_pass = gauge(
            &mut registry,
            "promio_housekeeping_last_pass_timestamp_seconds",
            "When this instance last finished a housekeeping pass (0: never)",
        );
        let resident_memory = gauge(
            &mut registry,
            "process_resident_memory_bytes",
            "Resident memory of the server process",
        );
        let start_time = gauge(
            &mut registry,
            "process_start_time_seconds",
            "When the server process started (Unix time)",
        );
        start_time.set(started);
        let cpu_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "process_cpu_seconds",
            "CPU time the server process used, user and system",
            cpu_seconds.clone(),
        );
        registry.register(
            "promio_build",
            "The running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            logins,
            oauth_grants,
            oauth_errors,
            backchannel_logouts,
            requests,
            latency,
            hash_workers,
            async_workers,
            hash_busy,
            hash_queue,
            hash_queue_limit,
            hash_verifications,
            hash_rejected,
            outbox_depth,
            outbox_oldest,
            housekeeping_deleted,
            housekeeping_passes,
            housekeeping_deactivated,
            housekeeping_notices,
            housekeeping_last_pass,
            resident_memory,
            cpu_seconds,
        }
    }

    /// Counts one login attempt's outcome (`method`: password, second_factor, sso, passkey).
    pub fn login(&self, method: &'static str, outcome: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                method: method.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts tokens issued to an application (`grant_type`: authorization_code, refresh_token).
    pub fn oauth_grant(&self, grant_type: &str) {
        self.oauth_grants
            .get_or_create(&GrantLabel {
                grant_type: grant_type.to_owned(),
            })
            .inc();
    }

    /// Counts an OAuth error answered at `endpoint` (authorize, token, userinfo, …); `error` is
    /// the protocol's error code, never a value from the request.
    pub fn oauth_error(&self, endpoint: &str, error: &str) {
        self.oauth_errors
            .get_or_create(&OAuthErrorLabels {
                endpoint: endpoint.to_owned(),
                error: error.to_owned(),
            })
            .inc();
    }

    /// Counts a back-channel logout delivery's outcome (sent, retry, given_up).
    pub fn backchannel_logout(&self, outcome: &str) {
        self.backchannel_logouts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records an answered request: `route` is the route's pattern (never the raw path of an
    /// unknown one, so that the labels stay few).
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&StatusLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status: class.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(seconds);
    }

    /// Counts a housekeeping pass and what it deleted.
    pub fn housekeeping(
        &self,
        deleted: &[(&'static str, u64)],
        users_deactivated: u64,
        notices: u64,
        now: i64,
    ) {
        self.housekeeping_passes.inc();
        self.housekeeping_last_pass.set(now);
        for (table, n) in deleted {
            self.housekeeping_deleted
                .get_or_create(&TableLabel {
                    table: (*table).to_owned(),
                })
                .inc_by(*n);
        }
        self.housekeeping_deactivated.inc_by(users_deactivated);
        self.housekeeping_notices.inc_by(notices);
    }
}

/// Raises a counter to `total` (the figure another part of the server keeps).
fn catch_up(counter: &Counter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// The process's resident memory and CPU time, from `/proc/self` (Linux; elsewhere nothing).
fn process_figures() -> Option<(i64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) start after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports CPU time in USER_HZ, 100 per second on every architecture it runs on.
    Some((rss_kib * 1024, ticks / 100.0))
}

impl Metrics {
    /// The metrics in Prometheus's text format (version 0.0.4), with the figures read now: the
    /// hashing pool's, and the mail outbox's depth and oldest age.
    pub fn render(
        &self,
        pool: &crate::infra::password::PoolStats,
        outbox: (i64, i64),
    ) -> Result<String, std::fmt::Error> {
        let m = self;
        m.hash_workers.set(pool.workers as i64);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            m.async_workers.set(runtime.metrics().num_workers() as i64);
        }
        m.hash_busy.set(pool.busy as i64);
        m.hash_queue.set(pool.waiting as i64);
        m.hash_queue_limit.set(pool.max_waiting as i64);
        catch_up(&m.hash_verifications, pool.verifications);
        catch_up(&m.hash_rejected, pool.rejected);
        let (depth, age) = outbox;
        m.outbox_depth.set(depth);
        m.outbox_oldest.set(age);
        if let Some((rss, cpu)) = process_figures() {
            m.resident_memory.set(rss);
            m.cpu_seconds.inc_by((cpu - m.cpu_seconds.get()).max(0.0));
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_pattern_and_status_class() {
        let m = Metrics::new(1_800_000_000);
        m.request("/api/login", "POST", 401, 0.012);
        m.request("/api/login", "POST", 200, 0.020);
        m.login("passkey", "success");
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &m.registry).unwrap();
        assert!(out.contains(
            "promio_http_requests_total{route=\"/api/login\",method=\"POST\",status=\"4xx\"} 1"
        ));
        assert!(out.contains(
            "promio_http_request_duration_seconds_count{route=\"/api/login\",method=\"POST\"} 2"
        ));
        assert!(out.contains("promio_logins_total{method=\"passkey\",outcome=\"success\"} 1"));
        assert!(out.contains("process_start_time_seconds 1800000000"));
        assert!(out.contains("promio_build_info{version=\""));
        assert!(out.contains("promio_housekeeping_deleted_total{table=\"throttle\"} 0"));
    }
}
