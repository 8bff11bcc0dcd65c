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

/// What every SQLite connection runs first, the pool's and `hot`'s: a connection waits up to 5 s
/// for another's write to end before it fails (503).
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
                let file = sqlite_file(url)?;
                ensure_sqlite_folder(url);
                Some(file)
            }
            Dialect::Postgres => None,
        };
        let url = match dialect {
            Dialect::Sqlite => creating(url),
            Dialect::Postgres => std::borrow::Cow::Borrowed(url),
        };
        let options = AnyConnectOptions::from_str(&url)?
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
        let hot = sqlite_file.map(|file| Arc::new(hot::Hot::new(file, SQLITE_SETUP)));
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

/// The database file a SQLite URL names. A database in memory is refused: the connection that
/// runs a password login's statements beside the pool (`hot`) could not share it.
pub fn sqlite_file(url: &str) -> Result<std::path::PathBuf, sqlx::Error> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    // As sqlx reads the URL: `:memory:` as the database, or `mode=memory` among the parameters.
    let (database, params) = sqlite_url_parts(url);
    let in_memory = database == ":memory:"
        || url::form_urlencoded::parse(params.as_bytes())
            .any(|(key, value)| key == "mode" && value == "memory");
    if in_memory || options.get_filename().as_os_str().is_empty() {
        return Err(sqlx::Error::Configuration(
            "a SQLite database must be a file (sqlite://path/to/file.db?mode=rwc), not in memory"
                .into(),
        ));
    }
    Ok(options.get_filename().to_path_buf())
}

/// A SQLite URL that creates its file when it is missing: `mode=rwc` is added unless the URL names
/// a mode of its own (`ro`, `rw`). Without it the driver refuses a file that does not exist yet,
/// so `DATABASE_URL=sqlite://data/new.db` would not start where the default URL does.
fn creating(url: &str) -> std::borrow::Cow<'_, str> {
    let (_, params) = sqlite_url_parts(url);
    if url::form_urlencoded::parse(params.as_bytes()).any(|(key, _)| key == "mode") {
        std::borrow::Cow::Borrowed(url)
    } else if url.contains('?') {
        std::borrow::Cow::Owned(format!("{url}&mode=rwc"))
    } else {
        std::borrow::Cow::Owned(format!("{url}?mode=rwc"))
    }
}

/// A SQLite URL's database (a path, or `:memory:`) and its parameters.
fn sqlite_url_parts(url: &str) -> (&str, &str) {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    rest.split_once('?').unwrap_or((rest, ""))
}

fn ensure_sqlite_folder(url: &str) {
    let (path, _) = sqlite_url_parts(url);
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
    async fn a_sqlite_database_must_be_a_file() {
        let file = super::sqlite_file("sqlite://data/promio.db?mode=rwc").expect("a file");
        assert_eq!(file, std::path::Path::new("data/promio.db"));
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://promio.db?mode=memory",
            "sqlite://promio.db?mode=memory&cache=shared",
            "sqlite://",
        ] {
            assert!(
                matches!(super::sqlite_file(url), Err(sqlx::Error::Configuration(_))),
                "{url} accepted"
            );
        }
        // Refused before anything is created or opened.
        let dir = std::env::temp_dir().join(format!("promio-memory-{}", super::new_id()));
        let url = format!("sqlite://{}?mode=memory", dir.join("x.db").display());
        assert!(matches!(
            Store::connect(&url, 1).await,
            Err(sqlx::Error::Configuration(_))
        ));
        assert!(!dir.exists());
    }

    #[tokio::test]
    async fn a_sqlite_url_without_a_mode_creates_its_file() {
        assert_eq!(super::creating("sqlite://a.db"), "sqlite://a.db?mode=rwc");
        assert_eq!(
            super::creating("sqlite://a.db?cache=private"),
            "sqlite://a.db?cache=private&mode=rwc"
        );
        assert_eq!(
            super::creating("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );

        let dir = std::env::temp_dir().join(format!("promio-create-{}", super::new_id()));
        let file = dir.join("new.db");
        let store = Store::connect(&format!("sqlite://{}", file.display()), 1)
            .await
            .expect("a new file is created");
        store.migrate().await.expect("migrated");
        assert!(file.exists());
        store.close().await;
        // A mode of the URL's own is kept: read-only does not create a missing file.
        let missing = dir.join("missing.db");
        assert!(
            Store::connect(&format!("sqlite://{}?mode=ro", missing.display()), 1)
                .await
                .is_err()
        );
        assert!(!missing.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Migration 0012 on a database that has users: those who began with a password keep a
    /// verified address, unless an administrator changed it and no password was set after the
    /// change; invited users, and users who never logged in, have not shown theirs yet.
    #[tokio::test]
    async fn existing_users_keep_a_verified_address_unless_an_administrator_changed_it_since() {
        let dir = std::env::temp_dir().join(format!("promio-verified-{}", super::new_id()));
        let before = dir.join("migrations");
        std::fs::create_dir_all(&before).unwrap();
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for entry in std::fs::read_dir(all).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.as_str() < "0012" {
                std::fs::copy(entry.path(), before.join(&name)).unwrap();
            }
        }
        let store = Store::connect(&format!("sqlite://{}", dir.join("old.db").display()), 1)
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(before.as_path())
            .await
            .unwrap()
            .run(store.pool())
            .await
            .unwrap();
        let run = |sql: &'static str| {
            let pool = store.pool().clone();
            async move { sqlx::query(sql).execute(&pool).await.unwrap() }
        };
        run(
            "INSERT INTO clients (id, company_id, company_key, name, created_at, updated_at)
             VALUES ('c', 'ACME', 'acme', 'ACME GmbH', 1, 1)",
        )
        .await;
        // (id, status, password set at)
        for (id, status, password) in [
            ("kept", "active", Some(10)),
            ("changed", "active", Some(10)),
            ("changed_then_link", "active", Some(30)),
            ("link_then_changed", "active", Some(30)),
            ("invited", "invited", None),
            ("never_logged_in", "deactivated", None),
        ] {
            sqlx::query(
                "INSERT INTO users (id, client_id, username, username_key, email, email_key,
                    role, status, password_hash, password_changed_at, created_at, updated_at)
                 VALUES ($1, 'c', $1, $1, $2, $2, 'user', $3, $4, $5, 10, 10)",
            )
            .bind(id)
            .bind(format!("{id}@acme.example"))
            .bind(status)
            .bind(password.map(|_| "$argon2id$..."))
            .bind(password)
            .execute(store.pool())
            .await
            .unwrap();
        }
        for (id, user, at) in [
            ("a1", "changed", 20),
            ("a2", "changed_then_link", 20),
            ("a3", "link_then_changed", 40),
        ] {
            sqlx::query(
                "INSERT INTO audit_events (id, created_at, client_id, subject_user_id, action, outcome)
                 VALUES ($1, $2, 'c', $3, 'user.email_changed', 'success')",
            )
            .bind(id)
            .bind(at)
            .bind(user)
            .execute(store.pool())
            .await
            .unwrap();
        }

        store.migrate().await.unwrap();
        let verified: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, email_verified_at FROM users ORDER BY id")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            verified,
            [
                ("changed".to_owned(), None),
                ("changed_then_link".to_owned(), Some(30)),
                ("invited".to_owned(), None),
                ("kept".to_owned(), Some(10)),
                ("link_then_changed".to_owned(), None),
                ("never_logged_in".to_owned(), None),
            ]
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

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
