//! A few SQLite connections kept beside sqlx's pool for the statements every password login runs.
//!
//! sqlx's pool pings each connection when it is given back, on a task of its own: on SQLite that
//! is a second trip to the connection's worker thread for every statement, two more thread
//! switches, which under login load take CPU from hashing. A connection here is given back
//! without a ping, and only after its statements succeeded: after an error, or when the request
//! was cancelled half-way, it is dropped (SQLite rolls back what it had begun) and a fresh one is
//! opened on the next use. A SQLite connection is a file in this process, so there is nothing a
//! ping could find that the next statement would not.
//!
//! Not a general pool crate: those give a connection back when its guard is dropped, also when
//! the request was cancelled half-way through a transaction, and so need a check on every return
//! (the trip this module exists to save). Here dropping closes; only an explicit release gives
//! back.

use sqlx::AnyConnection;
use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What every SQLite connection runs first (the pool's connections too).
pub(super) const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

pub(super) struct Direct {
    options: AnyConnectOptions,
    idle: Arc<Mutex<Vec<AnyConnection>>>,
    /// One per connection that may exist (idle or lent).
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

/// A lent connection: [`Lent::release`] gives it back; dropped otherwise, it is closed.
pub(super) struct Lent {
    conn: AnyConnection,
    idle: Arc<Mutex<Vec<AnyConnection>>>,
    _permit: OwnedSemaphorePermit,
}

impl Direct {
    pub(super) fn new(options: AnyConnectOptions, size: u32, acquire_timeout: Duration) -> Self {
        Direct {
            options,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(size.max(1) as usize)),
            acquire_timeout,
        }
    }

    /// An idle connection, or a new one; fails with `PoolTimedOut` as the pool does when all are
    /// lent for longer than the acquire timeout.
    pub(super) async fn acquire(&self) -> Result<Lent, sqlx::Error> {
        let permit = tokio::time::timeout(
            self.acquire_timeout,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
        .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let mut conn = self.options.connect().await?;
                conn.execute(SQLITE_SETUP).await?;
                conn
            }
        };
        Ok(Lent {
            conn,
            idle: Arc::clone(&self.idle),
            _permit: permit,
        })
    }

    /// Closes the idle connections; lent ones are closed when they are released or dropped.
    pub(super) async fn close(&self) {
        self.permits.close();
        let idle = match self.idle.lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => Vec::new(),
        };
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

impl Lent {
    /// Gives the connection back for the next statement, after its statements succeeded.
    pub(super) fn release(self) {
        let Lent {
            conn,
            idle,
            _permit: permit,
        } = self;
        // After `close`, the connection is dropped (closed) instead.
        if !permit.semaphore().is_closed()
            && let Ok(mut idle) = idle.lock()
        {
            idle.push(conn);
        }
    }
}

impl std::ops::Deref for Lent {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::Direct;
    use crate::store::{Store, new_id};
    use sqlx::any::AnyConnectOptions;
    use std::str::FromStr;
    use std::time::Duration;

    fn temp_url() -> (std::path::PathBuf, String) {
        let dir = std::env::temp_dir().join(format!("promio-direct-{}", new_id()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("direct.db").display());
        (dir, url)
    }

    #[tokio::test]
    async fn a_released_connection_is_reused_and_a_failed_one_is_closed_with_its_transaction() {
        let (dir, url) = temp_url();
        let store = Store::connect(&url, 1).await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .execute(store.pool())
            .await
            .unwrap();
        // A TEMP table lives only on the connection that made it.
        store
            .on_hot_path(async |conn| {
                sqlx::query("CREATE TEMP TABLE mine (x)")
                    .execute(conn)
                    .await
            })
            .await
            .unwrap();
        store
            .on_hot_path(async |conn| sqlx::query("SELECT x FROM mine").fetch_all(conn).await)
            .await
            .expect("the same connection again");

        let failed = store
            .on_hot_path(async |conn| {
                sqlx::query("BEGIN IMMEDIATE; INSERT INTO t (id) VALUES (1); INSERT INTO nowhere VALUES (1); COMMIT")
                    .execute(conn)
                    .await
            })
            .await;
        assert!(failed.is_err());
        // The half-done transaction went with its connection: its write lock is gone, and the
        // next use gets a fresh connection.
        sqlx::query("INSERT INTO t (id) VALUES (2)")
            .execute(store.pool())
            .await
            .expect("no lock is left behind");
        let gone = store
            .on_hot_path(async |conn| sqlx::query("SELECT x FROM mine").fetch_all(conn).await)
            .await;
        assert!(gone.is_err(), "a fresh connection has no TEMP table");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn waiting_for_a_connection_ends_with_a_timeout() {
        let (dir, url) = temp_url();
        std::fs::create_dir_all(&dir).unwrap();
        sqlx::any::install_default_drivers();
        let direct = Direct::new(
            AnyConnectOptions::from_str(&url).unwrap(),
            1,
            Duration::from_millis(50),
        );
        let lent = direct.acquire().await.unwrap();
        assert!(matches!(
            direct.acquire().await,
            Err(sqlx::Error::PoolTimedOut)
        ));
        lent.release();
        direct.acquire().await.expect("free again").release();
        direct.close().await;
        assert!(matches!(
            direct.acquire().await,
            Err(sqlx::Error::PoolClosed)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
