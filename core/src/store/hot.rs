//! SQLite: one connection for the statements every password login runs, used synchronously by the
//! thread that checks the password (see `crate::store::login::BlockingLogin`).
//!
//! Through sqlx, every statement is a trip to the connection's own worker thread and back: two
//! thread switches each way, and more for the rows, which under login load take CPU from hashing
//! on the same cores. Here a login's statements run where the hash runs, one after the other,
//! without a hand-off. All of them write (they count the attempt, or start the session), and
//! SQLite lets one connection write at a time, so one connection behind a mutex is all there is:
//! a second hashing thread waits on the mutex, not in SQLite's busy handler, which sleeps.
//!
//! A transaction that fails is rolled back and its connection closed; the next use opens a fresh
//! one, as the pool would.

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

pub(super) struct Hot {
    path: PathBuf,
    setup: &'static str,
    conn: Mutex<Option<Connection>>,
    closed: AtomicBool,
}

impl Hot {
    /// A connection to the database file at `path`, opened on its first use, that runs `setup`
    /// (the pool's `super::SQLITE_SETUP`: WAL, its busy timeout, foreign keys) when it opens.
    pub(super) fn new(path: PathBuf, setup: &'static str) -> Self {
        Hot {
            path,
            setup,
            conn: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `statements` in one `BEGIN IMMEDIATE` transaction and commits. Blocks: call it only
    /// from a thread that may wait (a hashing worker, or `spawn_blocking`).
    pub(super) fn write<T>(
        &self,
        statements: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        // A panic while the lock was held unwound through the transaction, which rolled it back.
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let mut conn = match slot.take() {
            Some(conn) => conn,
            None => self.open().map_err(sqlx_error)?,
        };
        let out = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                let out = statements(&tx)?;
                tx.commit()?;
                Ok(out)
            });
        // After an error the transaction was rolled back when it was dropped; the connection is
        // closed with it, and the next login opens a fresh one.
        if out.is_ok() {
            *slot = Some(conn);
        }
        out.map_err(sqlx_error)
    }

    /// Closes the connection; a write after this fails with `PoolClosed`, as the pool's do.
    pub(super) fn close(&self) {
        let mut slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::Release);
        *slot = None;
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch(self.setup)?;
        conn.set_prepared_statement_cache_capacity(8);
        Ok(conn)
    }
}

/// A rusqlite error as the store's callers know errors: a database that stayed locked past the
/// busy timeout is unavailable (503, as when sqlx's pool times out); anything else is the
/// driver's error.
fn sqlx_error(err: rusqlite::Error) -> sqlx::Error {
    let busy = matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    if busy {
        sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, err))
    } else {
        sqlx::Error::AnyDriverError(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SQLITE_SETUP as SETUP, Store, new_id};

    /// A store on a new database file with a table `t (id)`: its folder, its file, the store.
    async fn store_with_table() -> (PathBuf, PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("promio-hot-{}", new_id()));
        let file = dir.join("hot.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let store = Store::connect(&url, 1).await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .execute(store.pool())
            .await
            .unwrap();
        (dir, file, store)
    }

    #[tokio::test]
    async fn a_failed_transaction_leaves_nothing_and_no_lock_behind() {
        let (dir, file, store) = store_with_table().await;
        let hot = Hot::new(file, SETUP);
        hot.write(|tx| tx.execute("INSERT INTO t (id) VALUES (1)", []))
            .expect("a write");
        // Set up as the pool's connections are: foreign keys are checked on this one too.
        let checked =
            hot.write(|tx| tx.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, i64>(0)));
        assert_eq!(checked.unwrap(), 1);
        let failed = hot.write(|tx| {
            tx.execute("INSERT INTO t (id) VALUES (2)", [])?;
            tx.execute("INSERT INTO nowhere VALUES (1)", [])
        });
        assert!(failed.is_err());
        // Rolled back: the pool sees row 1 only, and can write (no lock was left).
        sqlx::query("INSERT INTO t (id) VALUES (3)")
            .execute(store.pool())
            .await
            .expect("no lock is left behind");
        let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM t ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(ids, vec![(1,), (3,)]);
        // And the next write opens a fresh connection that works.
        hot.write(|tx| tx.execute("INSERT INTO t (id) VALUES (4)", []))
            .expect("a fresh connection");
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_database_locked_past_the_timeout_is_unavailable_and_a_closed_one_closed() {
        let (dir, file, store) = store_with_table().await;
        // Another process holds the write lock.
        let other = Connection::open(&file).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let hot = Hot::new(file, "PRAGMA busy_timeout = 50;");
        let err = hot
            .write(|tx| tx.execute("INSERT INTO t (id) VALUES (1)", []))
            .expect_err("locked");
        assert!(
            matches!(&err, sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut),
            "{err:?}"
        );
        other.execute_batch("ROLLBACK").unwrap();
        hot.write(|tx| tx.execute("INSERT INTO t (id) VALUES (1)", []))
            .expect("free again");
        hot.close();
        assert!(matches!(
            hot.write(|tx| tx.execute("INSERT INTO t (id) VALUES (2)", [])),
            Err(sqlx::Error::PoolClosed)
        ));
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
