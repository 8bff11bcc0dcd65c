//! Storage: one sqlx `AnyPool` over SQLite (the embedded default) or PostgreSQL (to scale out), with
//! one schema and one set of queries for both. Only the few statements whose dialects differ ask
//! [`Store::dialect`]. Everything that matters across instances (sessions, tokens, counters, mails,
//! the audit log) is a row here; nothing of it lives in process memory.

pub mod audit;
pub mod clients;
pub mod links;
pub mod login;
pub mod outbox;
pub mod sessions;
pub mod sso;
pub mod throttle;

pub mod users;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

impl Store {
    /// Connects with at most `pool_size` connections (creating a SQLite file and its folder when
    /// needed). Does not migrate.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Store, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        if dialect == Dialect::Sqlite {
            ensure_sqlite_folder(url);
        }
        let options = AnyConnectOptions::from_str(url)?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size.max(1))
            // A request waits briefly for a connection, then fails fast with 503 instead of hanging.
            .acquire_timeout(Duration::from_secs(5))
            // A SQLite connection is a file in this process: it cannot have gone away, so it is
            // not pinged before every use (which would double each statement's trips to its
            // worker thread). PostgreSQL connections are checked, so that the pool replaces those
            // a restart or a network fault broke instead of failing a request with them.
            .test_before_acquire(dialect == Dialect::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store { pool, dialect })
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
        let dir = std::env::temp_dir().join(format!("promio-pool-{}", super::new_id()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("pool.db").display());
        let store = Store::connect(&url, 3).await.expect("connect");
        assert_eq!(store.pool().options().get_max_connections(), 3);
        assert!(!store.pool().options().get_test_before_acquire());
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
