//! Throttling that slows guessing down without letting attackers lock users out.
//!
//! ```text
//! per account (client + user name, also for names that do not exist), counted before hashing:
//!   attempts  1   2   3   4   5    6 … 99   100      101 …
//!   wait      0   1s  3s  5s  10s  30s      locked   (a success resets; a day without attempts too,
//!                                                     until the lock)
//!   locked: after 100 consecutive failures the password is not checked again until the user sets
//!   a new one through a mail link or an administrator clears the counter (NIST SP 800-63B-4); the
//!   user gets a mail. Unknown accounts lock alike, so the answer tells nothing.
//! per source IP, in a window of 15 minutes from its first failure:
//!   failures  1 … 99   100   101   102   103   104 … 149   150 …        (a new window counts
//!   wait      0        1s    3s    5s    10s   30s         window's end  from 1 again)
//!   (for every login from the address; the cap at 150 bounds what requests sent all at once get
//!   past the short waits: they pass a wait together, as they would pass its end)
//! second factor: counted apart, per user: 5 codes without waiting (5 wrong codes end the pending
//!   state), then the same steps; a passkey refused counts as a wrong code. The same lock after 100
//!   failures in a row (time does not lift it; an administrator does, or a new second factor), and
//!   the same mails (after 10 in a row, at most one a day; at the lock). Administrators see these
//!   counters with the password's.
//! forgot password: 3 mails per account and hour, 20 requests per IP and hour (beyond: the same
//!   answer, no mail)
//! anonymous refusals (an SSO callback without its flow, a spent or void mail link posted again):
//!   counted per IP, one audit event per IP and hour
//! ```
//!
//! So a scripted guesser gets at most 100 tries at one account, ever. The counters are rows (shared by all instances) keyed by the client's
//! company ID, so bob at client A is never slowed by failures against bob at client B. Waiting is
//! enforced by refusing early with the time to wait, never by sleeping in a handler; the answer is
//! the generic one whether or not the account exists.

use crate::domain::clock::UnixTime;
pub use crate::domain::limits::{
    ACCOUNT_RESET_AFTER, FORGOT_PER_IP_HOUR, IP_FAILURES, IP_FAILURES_MAX, IP_WINDOW, LOCK_AFTER,
    NOTIFY_AFTER, REFUSALS_WINDOW,
};
use crate::domain::{CompanyId, UserName};
use crate::infra::error::ServiceResult;
use crate::store::Store;
use crate::store::throttle::ThrottleRow;

/// The wait after `attempts` counted attempts (the same steps as the SQL in `store::throttle`).
pub fn delay_secs(attempts: i64) -> i64 {
    match attempts {
        a if a >= 100 => 3600,
        a if a >= 6 => 30,
        5 => 10,
        4 => 5,
        3 => 3,
        2 => 1,
        _ => 0,
    }
}

pub fn account_key(company_id: &CompanyId, username: &UserName) -> String {
    format!("pw:{}:{}", company_id.key(), username.key())
}

/// The key that counts the refusals of `key` while it waits (see [`REFUSALS_WINDOW`]).
pub fn refusals_key(key: &str) -> String {
    format!("refused:{key}")
}

/// Counts a refusal of `key` while it waits; true for the first one in [`REFUSALS_WINDOW`], the
/// one that is written to the audit log.
pub async fn count_refusal(store: &Store, key: &str, now: UnixTime) -> ServiceResult<bool> {
    Ok(store
        .rate_limit(&refusals_key(key), now, REFUSALS_WINDOW, 1)
        .await?)
}

/// Counts a refusal that anyone can provoke without an account (`what`: e.g. `sso-callback`)
/// against the address it came from (`bucket` from [`ip_bucket`]; requests without one share a
/// key); true for the first one from that address in [`REFUSALS_WINDOW`], the one that is written
/// to the audit log. So anonymous requests add at most one counter row per address (gone a day
/// after its last refusal, see `crate::idm::housekeeping`) and one audit row per address and hour.
pub async fn count_anonymous_refusal(
    store: &Store,
    what: &str,
    bucket: Option<&str>,
    now: UnixTime,
) -> ServiceResult<bool> {
    let key = format!("{what}:{}", bucket.unwrap_or("unknown"));
    count_refusal(store, &key, now).await
}

/// Whether a counter has reached the lock ([`LOCK_AFTER`]).
pub fn is_locked(row: Option<&ThrottleRow>) -> bool {
    row.is_some_and(|r| r.failures >= LOCK_AFTER)
}

pub fn totp_key(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// The key of an IP's login counter; `bucket` comes from [`ip_bucket`].
pub fn ip_key(bucket: &str) -> String {
    format!("ip:{bucket}")
}

/// What one source counts as: an IPv4 address, or an IPv6 address's /64 (one subscriber's or one
/// host's network: an attacker holding a /64 can rotate through 2^64 addresses of it). An IPv4
/// address in IPv6 form counts as the IPv4 address.
pub fn ip_bucket(ip: std::net::IpAddr) -> String {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

/// The wait logins from an IP have after its `failures`-th failed login in the window: none for
/// the first [`IP_FAILURES`] but one, then the account's steps (1 s after the 100th, 3 s, 5 s,
/// 10 s, then 30 s after each further one; one address may be a whole office), and from the
/// [`IP_FAILURES_MAX`]th on until the window ends (`None`).
pub fn ip_delay_secs(failures: i64) -> Option<i64> {
    (failures < IP_FAILURES_MAX).then(|| delay_secs(failures - IP_FAILURES + 2).min(30))
}

/// How long logins from an IP must still wait, given its throttling row (`None`: they need not).
/// `blocked_until` of an IP's row is when its last failure's wait ends.
pub fn ip_wait(row: Option<&ThrottleRow>, now: UnixTime) -> Option<i64> {
    row.and_then(|r| {
        (r.failures >= IP_FAILURES && r.blocked_until > now).then_some(r.blocked_until - now)
    })
}

/// Counts a failed login from an IP (`bucket` from [`ip_bucket`]) and sets its wait.
pub async fn ip_failed(store: &Store, bucket: Option<&str>, now: UnixTime) -> ServiceResult<()> {
    let Some(bucket) = bucket else { return Ok(()) };
    store
        .count_ip_failure(&ip_key(bucket), now, IP_WINDOW, ip_delay_secs)
        .await?;
    Ok(())
}

/// How long the key must still wait (at least one second when it is waiting at all).
pub async fn remaining(store: &Store, key: &str, now: UnixTime) -> ServiceResult<u64> {
    let row = store.throttle_row(key).await?;
    Ok(row
        .map(|r| (r.blocked_until - now).max(1) as u64)
        .unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::{IP_FAILURES_MAX, delay_secs, ip_bucket, ip_delay_secs};

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        let b = |s: &str| ip_bucket(s.parse().unwrap());
        assert_eq!(b("203.0.113.7"), "203.0.113.7");
        assert_ne!(b("203.0.113.7"), b("203.0.113.8"));
        assert_eq!(b("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(b("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(b("2001:db8:1:2:ffff:1:2:3"), b("2001:db8:1:2::1"));
        assert_ne!(b("2001:db8:1:3::1"), b("2001:db8:1:2::1"));
    }

    #[test]
    fn the_wait_grows_step_by_step() {
        let waits: Vec<i64> = (1..=8).map(delay_secs).collect();
        assert_eq!(waits, [0, 1, 3, 5, 10, 30, 30, 30]);
        assert_eq!(delay_secs(99), 30);
        assert_eq!(delay_secs(100), 3600);
    }

    #[test]
    fn an_address_waits_step_by_step_after_its_100th_failure() {
        let waits: Vec<Option<i64>> = (98..=105).map(ip_delay_secs).collect();
        let steps = [0, 0, 1, 3, 5, 10, 30, 30];
        assert_eq!(waits, steps.map(Some));
        assert_eq!(ip_delay_secs(1), Some(0));
        // Never the account's hour: an address may be a whole office.
        assert_eq!(ip_delay_secs(IP_FAILURES_MAX - 1), Some(30));
        // Then until the window ends.
        assert_eq!(ip_delay_secs(IP_FAILURES_MAX), None);
        assert_eq!(ip_delay_secs(IP_FAILURES_MAX + 500), None);
    }

    #[test]
    fn a_guesser_gets_at_most_125_tries_in_the_first_hour() {
        let (mut t, mut tries) = (0, 0);
        while t < 3600 {
            tries += 1;
            t += delay_secs(tries);
        }
        assert!(tries <= 125, "{tries}");
    }
}
