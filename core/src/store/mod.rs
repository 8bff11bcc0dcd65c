//! Storage: one sqlx `AnyPool` over SQLite (the embedded default) or PostgreSQL (to scale out), with
//! one schema and one set of queries for both (on SQLite, a password login's statements run on a
//! connection of their own, on the thread that checks the password: see `hot`). Only the few statements whose dialects differ ask
//! [`Store::dialect`]. Everything that matters across instances (sessions, tokens, counters, mails,
//! the audit log) is a row here; nothing of it lives in process memory.

pub mod audit;
pub mod backup;
pub mod clients;
mod hot;
pub mod lifecycle;
pub mod links;
pub mod login;
pub mod oauth_apps;
pub mod oauth_grants;
pub mod oauth_keys;
pub mod oauth_logout;
pub mod oauth_tokens;
pub mod outbox;
pub mod passkeys;
pub mod sessions;
pub mod sso;
pub mod throttle;
pub mod totp;
pub mod users;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits for a connection before it fails (503).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a SQLite connection waits for another's write to end before it fails (503); the
/// `busy_timeout` of [`SQLITE_SETUP`].
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What every SQLite connection of the pool runs first (`hot` sets the same on its own).
const SQLITE_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: the connection for the statements of every password login (see `hot`).
    hot: Option<Arc<hot::Hot>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.pool)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects with a pool of at most `pool_size` connections, on SQLite plus one for password
    /// logins (creating a SQLite file and its folder when needed; a database in memory is refused,
    /// since each connection would have its own). Does not migrate.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Store, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        let sqlite_file = match dialect {
            Dialect::Sqlite => {
                ensure_sqlite_folder(url);
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
                let file = options.get_filename().to_path_buf();
                if url.contains(":memory:") || file.as_os_str() == ":memory:" {
                    return Err(sqlx::Error::Configuration(
                        "a SQLite database in memory cannot be shared by the server's \
                         connections: name a file (sqlite://path/to/file.db?mode=rwc)"
                            .into(),
                    ));
                }
                Some(file)
            }
            Dialect::Postgres => None,
        };
        let options = AnyConnectOptions::from_str(url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size.max(1))
            // A request waits briefly for a connection, then fails fast with 503 instead of hanging.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // A SQLite connection is a file in this process: it cannot have gone away, so it is
            // not pinged before every use (which would double each statement's trips to its
            // worker thread). PostgreSQL connections are checked, so that the pool replaces those
            // a restart or a network fault broke instead of failing a request with them.
            .test_before_acquire(dialect == Dialect::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(SQLITE_SETUP).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        let hot = sqlite_file.map(|file| Arc::new(hot::Hot::new(file, SQLITE_BUSY_TIMEOUT)));
        Ok(Store { pool, dialect, hot })
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn close(&self) {
        if let Some(hot) = &self.hot {
            hot.close();
        }
        self.pool.close().await;
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

fn ensure_sqlite_folder(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        // A failure shows up as the connection error that follows, which names the file.
        let _ = std::fs::create_dir_all(parent);
    }
}

/// A new random id for a row.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// True when the error is a violated UNIQUE constraint (both dialects).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Store;

    #[tokio::test]
    async fn the_pool_holds_at_most_the_configured_connections() {
        use std::time::Duration;
        use tokio::time::timeout;
        let dir = std::env::temp_dir().join(format!("promio-pool-{}", super::new_id()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("pool.db").display());
        let store = Store::connect(&url, 3).await.expect("connect");
        assert_eq!(store.pool().options().get_max_connections(), 3);
        assert!(!store.pool().options().get_test_before_acquire());

        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(store.pool().acquire().await.expect("a connection"));
        }
        assert_eq!(store.pool().size(), 3);
        // A fourth waits (well short of the pool's own acquire timeout) instead of opening one.
        let mut fourth = Box::pin(store.pool().acquire());
        assert!(
            timeout(Duration::from_millis(300), &mut fourth)
                .await
                .is_err(),
            "a fourth connection while three are held"
        );
        assert_eq!(store.pool().size(), 3);
        // It gets the one given back.
        drop(held.pop());
        let fourth = timeout(Duration::from_secs(4), fourth)
            .await
            .expect("the connection given back")
            .expect("a connection");
        assert_eq!(store.pool().size(), 3);
        drop((held, fourth));

        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
