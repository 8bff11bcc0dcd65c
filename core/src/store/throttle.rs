//! Throttling counters as rows (see `crate::idm::throttle` for the policy).

use super::Store;
use crate::domain::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: i64,
    pub blocked_until: i64,
    pub username: Option<String>,
    pub notified_at: Option<i64>,
}

/// The wait after `f` counted attempts, as SQL (the same steps as `crate::idm::throttle::delay_secs`).
fn delay_sql(f: &str) -> String {
    format!(
        "CASE WHEN {f} >= 100 THEN 3600 WHEN {f} >= 6 THEN 30 WHEN {f} = 5 THEN 10 \
         WHEN {f} = 4 THEN 5 WHEN {f} = 3 THEN 3 WHEN {f} = 2 THEN 1 ELSE 0 END"
    )
}

/// The pessimistic counter as one `INSERT … ON CONFLICT DO UPDATE … RETURNING failures`. `rows`
/// gives the new row's columns in this order: key, now, now, now, client ID, user name, 1 (window
/// start, last attempt, blocked until, failures); either `VALUES (…)` or a `SELECT … WHERE …`,
/// which counts nothing when it selects nothing (its `WHERE` is needed anyway: without one,
/// SQLite would read `ON CONFLICT` as part of the `SELECT`). `now` and `reset_after` are SQL
/// expressions. The update only happens when the key is not waiting, so concurrent attempts cannot
/// slip past the wait together; a counter whose last attempt is older than `reset_after` starts
/// again, unless it has reached the lock; the first `free_attempts` attempts do not wait.
pub(super) fn attempt_sql(rows: &str, now: &str, reset_after: &str, free_attempts: i64) -> String {
    // A locked password or second-factor counter (see `crate::domain::limits::LOCK_AFTER`) does not
    // start again with time; every other counter does.
    let counted = format!(
        "(CASE WHEN throttle.last_at < {now} - {reset_after} \
             AND (throttle.failures < {lock} \
                  OR (throttle.key NOT LIKE 'pw:%' AND throttle.key NOT LIKE 'totp:%')) \
         THEN 1 ELSE throttle.failures + 1 END)",
        lock = crate::domain::limits::LOCK_AFTER
    );
    let delay = delay_sql(&format!("({counted} - {})", free_attempts.max(0)));
    format!(
        "INSERT INTO throttle (key, window_start, last_at, blocked_until, client_id, username, failures)
         {rows}
         ON CONFLICT (key) DO UPDATE SET
             failures = {counted},
             blocked_until = {now} + {delay},
             last_at = {now}
         WHERE throttle.blocked_until <= {now}
         RETURNING failures"
    )
}

/// Deletes a counter on `conn` (the caller's transaction).
pub async fn clear_in(conn: &mut sqlx::AnyConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM throttle WHERE key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One event counted in a fixed window of `$3` seconds that began with its first event (`$1` key,
/// `$2` now), returning the events counted in the window.
const RATE_LIMIT: &str = "INSERT INTO throttle (key, failures, window_start, last_at) VALUES ($1, 1, $2, $2)
     ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN throttle.window_start <= $2 - $3 THEN 1 ELSE throttle.failures + 1 END,
         window_start = CASE WHEN throttle.window_start <= $2 - $3 THEN $2 ELSE throttle.window_start END,
         last_at = $2
     RETURNING failures";

impl Store {
    /// Counts an attempt against `key` unless the key is waiting; returns the attempts counted so
    /// far (including this one), or `None` when the key must wait (see [`attempt_sql`]).
    pub async fn throttle_attempt(
        &self,
        key: &str,
        now: UnixTime,
        reset_after: i64,
        client_id: Option<&str>,
        username: Option<&str>,
        free_attempts: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        use sqlx::Row;
        let sql = attempt_sql(
            "VALUES ($1, $2, $2, $2, $4, $5, 1)",
            "$2",
            "$3",
            free_attempts,
        );
        let row = sqlx::query(&sql)
            .bind(key)
            .bind(now)
            .bind(reset_after)
            .bind(client_id)
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.try_get::<i64, _>("failures")).transpose()
    }

    pub async fn throttle_row(&self, key: &str) -> Result<Option<ThrottleRow>, sqlx::Error> {
        sqlx::query_as::<_, ThrottleRow>(
            "SELECT key, failures, blocked_until, username, notified_at FROM throttle WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn throttle_clear(&self, key: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM throttle WHERE key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks that the user was told about failed logins; false if they were told in the last day.
    pub async fn throttle_mark_notified(
        &self,
        key: &str,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE throttle SET notified_at = $2 WHERE key = $1 AND (notified_at IS NULL OR notified_at <= $2 - 86400)",
        )
        .bind(key)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accounts of a client with failed attempts (passwords, `pw:`, and second factors, `totp:`),
    /// most failures first.
    pub async fn throttled_accounts(
        &self,
        client_id: &str,
    ) -> Result<Vec<ThrottleRow>, sqlx::Error> {
        sqlx::query_as::<_, ThrottleRow>(
            "SELECT key, failures, blocked_until, username, notified_at FROM throttle
             WHERE client_id = $1 AND (key LIKE 'pw:%' OR key LIKE 'totp:%') AND failures >= 2
             ORDER BY failures DESC, key LIMIT 200",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await
    }

    /// Counts a request against a per-window limit; true when it is within the limit.
    pub async fn rate_limit(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        limit: i64,
    ) -> Result<bool, sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query(RATE_LIMIT)
            .bind(key)
            .bind(now)
            .bind(window)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("failures")? <= limit)
    }

    /// Counts a failed login from an address in its fixed window and returns the failures counted
    /// in it; `wait` gives, for that count, how long logins from the address must then wait
    /// (`None`: until the window ends), which is recorded in `blocked_until` unless a longer wait
    /// is recorded already (see `crate::idm::throttle::ip_delay_secs`).
    pub async fn count_ip_failure(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        wait: impl Fn(i64) -> Option<i64>,
    ) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        let mut tx = self.pool().begin().await?;
        let failures: i64 = sqlx::query(RATE_LIMIT)
            .bind(key)
            .bind(now)
            .bind(window)
            .fetch_one(&mut *tx)
            .await?
            .try_get("failures")?;
        let wait = wait(failures);
        sqlx::query(
            "UPDATE throttle SET blocked_until = CASE
                 WHEN $3 = 1 AND blocked_until < window_start + $4 THEN window_start + $4
                 WHEN $3 = 0 AND blocked_until < $2 THEN $2
                 ELSE blocked_until END
             WHERE key = $1",
        )
        .bind(key)
        .bind(now + wait.unwrap_or(0))
        .bind(i64::from(wait.is_none()))
        .bind(window)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(failures)
    }

    /// Counts one event in a fixed window and records the window's end in `blocked_until`, where
    /// a caller that checks the count finds how long to wait.
    pub async fn count_in_window(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
    ) -> Result<(), sqlx::Error> {
        self.rate_limit(key, now, window, i64::MAX).await?;
        sqlx::query("UPDATE throttle SET blocked_until = window_start + $2 WHERE key = $1")
            .bind(key)
            .bind(window)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::delay_sql;
    use sqlx::Row;
    use sqlx::any::AnyPoolOptions;

    /// The ladder exists twice, in Rust for answers and in SQL for the atomic counter: they must
    /// agree at every step, past the lock and the top of the ladder.
    #[tokio::test]
    async fn the_sql_ladder_is_the_rust_one() {
        sqlx::any::install_default_drivers();
        // Each in-memory SQLite connection is a database of its own: one is enough here.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory database");
        let sql = format!("SELECT {} AS delay", delay_sql("$1"));
        for attempts in 1..=150i64 {
            let row = sqlx::query(&sql)
                .bind(attempts)
                .fetch_one(&pool)
                .await
                .expect("the ladder in SQL");
            assert_eq!(
                row.try_get::<i64, _>("delay").expect("an integer"),
                crate::idm::throttle::delay_secs(attempts),
                "after {attempts} attempts"
            );
        }
        pool.close().await;
    }
}
