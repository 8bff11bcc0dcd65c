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
//! The connection does not checkpoint the write-ahead log itself. A checkpoint is where SQLite
//! waits for the disk (`synchronous = NORMAL` syncs at checkpoints only), and the committing
//! connection would wait there with the mutex held: both hashing threads stood still, and the
//! cores idled, every thousand pages or so. A thread of its own (`sqlite-checkpoint`, with its
//! own connection) runs a passive checkpoint every [`CHECKPOINT_EVERY`] commits instead, beside
//! the writers; the pool's connections keep SQLite's own automatic checkpoints.
//!
//! A transaction that fails is rolled back and its connection closed; the next use opens a fresh
//! one, as the pool would.

use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, PoisonError};

/// Commits of the login connection between two checkpoints: a login commits twice and writes
/// about two dozen pages, so this is about SQLite's own 1000 pages between automatic ones.
const CHECKPOINT_EVERY: u32 = 64;

/// When the checkpoint thread has fallen this far behind (or is gone), the login connection
/// checkpoints itself, so that the log cannot grow without end.
const CHECKPOINT_OVERDUE: u32 = 32 * CHECKPOINT_EVERY;

pub(super) struct Hot {
    path: PathBuf,
    setup: &'static str,
    state: Mutex<State>,
    closed: AtomicBool,
}

struct State {
    conn: Option<Connection>,
    /// Wakes the checkpoint thread; `None` once closed, or when the thread could not start.
    checkpoints: Option<SyncSender<()>>,
    /// Commits since the checkpoint thread was last woken.
    commits: u32,
}

impl Hot {
    /// A connection to the database file at `path`, opened on its first use, that runs `setup`
    /// (the pool's `super::SQLITE_SETUP`: WAL, its busy timeout, foreign keys) when it opens; and
    /// the thread that checkpoints what it writes.
    pub(super) fn new(path: PathBuf, setup: &'static str) -> Self {
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let path = path.clone();
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpoint_when_woken(&path, setup, &woken))
        };
        let checkpoints = match thread {
            Ok(_) => Some(wake),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "no thread for SQLite checkpoints: the login connection checkpoints itself"
                );
                None
            }
        };
        Hot {
            path,
            setup,
            state: Mutex::new(State {
                conn: None,
                checkpoints,
                commits: 0,
            }),
            closed: AtomicBool::new(false),
        }
    }

    /// Runs `statements` in one `BEGIN IMMEDIATE` transaction and commits; after an error, nothing
    /// of it stays. Blocks: call it only from a thread that may wait (a hashing worker, or
    /// `spawn_blocking`).
    pub(super) fn write<T>(
        &self,
        statements: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, sqlx::Error> {
        // A panic while the lock was held dropped the connection it had taken out, which rolled
        // the transaction back.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        let conn = match state.conn.take() {
            Some(conn) => conn,
            None => self.open(state.checkpoints.is_some()).map_err(sqlx_error)?,
        };
        // `BEGIN` and `COMMIT` from the statement cache, as the statements themselves: rusqlite's
        // `Transaction` would parse both again for every transaction.
        let out = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]))
            .and_then(|_| statements(&conn))
            .and_then(|out| {
                conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(out)
            });
        // After an error the connection is closed (dropped below), which rolls back what the
        // transaction wrote, and the next login opens a fresh one.
        if out.is_ok() {
            state.commits += 1;
            if state.commits >= CHECKPOINT_EVERY {
                state.checkpoint(&conn);
            }
            state.conn = Some(conn);
        }
        out.map_err(sqlx_error)
    }

    /// Closes the connection and ends the checkpoint thread; a write after this fails with
    /// `PoolClosed`, as the pool's do.
    pub(super) fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::Release);
        state.conn = None;
        state.checkpoints = None;
    }

    /// `checkpointed`: another thread checkpoints what this connection writes.
    fn open(&self, checkpointed: bool) -> rusqlite::Result<Connection> {
        let conn = open(&self.path, self.setup)?;
        if checkpointed {
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        }
        // A login's six statements, with `BEGIN` and `COMMIT`.
        conn.set_prepared_statement_cache_capacity(10);
        Ok(conn)
    }
}

impl State {
    /// Wakes the checkpoint thread, or checkpoints on `conn` when there is none or it is overdue.
    fn checkpoint(&mut self, conn: &Connection) {
        let woken = match &self.checkpoints {
            Some(wake) => match wake.try_send(()) {
                Ok(()) => true,
                // One is already asked for: the thread is still at the last.
                Err(TrySendError::Full(())) => false,
                Err(TrySendError::Disconnected(())) => {
                    self.checkpoints = None;
                    false
                }
            },
            None => false,
        };
        if woken {
            self.commits = 0;
        } else if self.checkpoints.is_none() || self.commits >= CHECKPOINT_OVERDUE {
            if let Err(e) = passive_checkpoint(conn) {
                tracing::warn!(error = %e, "SQLite checkpoint on the login connection failed");
            }
            self.commits = 0;
        }
    }
}

/// The checkpoint thread: a passive checkpoint (it copies what no reader still needs, and waits
/// for no writer) on a connection of its own each time it is woken, until `Hot` is closed or gone.
fn checkpoint_when_woken(path: &Path, setup: &str, woken: &Receiver<()>) {
    let mut conn = None;
    while woken.recv().is_ok() {
        let done = match conn.take() {
            Some(c) => Ok(c),
            None => open(path, setup),
        }
        .and_then(|c| passive_checkpoint(&c).map(|()| c));
        match done {
            Ok(c) => conn = Some(c),
            Err(e) => {
                // Gone, the thread leaves the checkpoints to the login connection (it finds the
                // channel closed).
                tracing::warn!(
                    error = %e,
                    "SQLite checkpoint failed: the login connection checkpoints itself from now on"
                );
                return;
            }
        }
    }
}

fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

fn open(path: &Path, setup: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(setup)?;
    Ok(conn)
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

    /// `CHECKPOINT_EVERY` commits of 8 KiB each into a new table `blobs`; the database file's
    /// length before them.
    async fn write_blobs(store: &Store, file: &Path, hot: &Hot) -> u64 {
        sqlx::query("CREATE TABLE blobs (b BLOB)")
            .execute(store.pool())
            .await
            .unwrap();
        let before = std::fs::metadata(file).unwrap().len();
        for _ in 0..CHECKPOINT_EVERY {
            hot.write(|tx| tx.execute("INSERT INTO blobs (b) VALUES (zeroblob(8192))", []))
                .expect("a write");
        }
        before
    }

    /// Whether the database file grows past `before` by the blobs within 10 s. Only a checkpoint
    /// moves pages from the log into the database file.
    async fn checkpointed(file: &Path, before: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let len = std::fs::metadata(file).unwrap().len();
            if len >= before + u64::from(CHECKPOINT_EVERY) * 8192 {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn its_log_is_checkpointed_beside_it_and_not_by_it() {
        let (dir, file, store) = store_with_table().await;
        let hot = Hot::new(file.clone(), SETUP);
        let own =
            hot.write(|tx| tx.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0)));
        assert_eq!(
            own.unwrap(),
            0,
            "the login connection does not checkpoint itself"
        );
        let before = write_blobs(&store, &file, &hot).await;
        assert!(
            checkpointed(&file, before).await,
            "the checkpoint thread copied the log into the database file"
        );
        hot.close();
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn without_the_checkpoint_thread_it_checkpoints_itself() {
        let (dir, file, store) = store_with_table().await;
        let hot = Hot::new(file.clone(), SETUP);
        hot.write(|tx| tx.execute("INSERT INTO t (id) VALUES (1)", []))
            .expect("a write");
        // The thread is gone: its end of the channel is dropped.
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        drop(woken);
        hot.state.lock().unwrap().checkpoints = Some(wake);
        let before = write_blobs(&store, &file, &hot).await;
        assert!(
            checkpointed(&file, before).await,
            "the login connection copied the log into the database file"
        );
        assert!(hot.state.lock().unwrap().checkpoints.is_none());
        hot.close();
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
