//! What a password login reads and counts before hashing (the client by company ID, its user by
//! name, the source IP's throttling row, and the attempt on the account's counter) and what it
//! writes after a success (counter cleared, session, audit event), each in one transaction. On
//! PostgreSQL each is one statement, one trip. On SQLite they run on the hashing thread that checks
//! the password ([`BlockingLogin`]), since a trip to sqlx's connection thread costs thread switches
//! that under load take CPU from hashing; the async methods do the same through the pool.

use super::clients::ClientRow;
use super::hot::Hot;
use super::throttle::{ThrottleRow, attempt_sql};
use super::users::UserRow;
use super::{Dialect, Store, new_id};
use crate::domain::audit::Event as AuditEvent;
use crate::domain::clock::UnixTime;
use crate::domain::{ClientId, CompanyId, UserId, UserName};
use rusqlite::OptionalExtension;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::sync::{Arc, LazyLock};

/// What a login attempt is looked up and counted by.
pub struct LoginKeys<'a> {
    pub company_id: &'a CompanyId,
    pub username: &'a UserName,
    /// The source address's throttling key, if there is an address.
    pub ip_key: Option<&'a str>,
    /// The account's throttling key (counted even when the company or user does not exist).
    pub account_key: &'a str,
    /// Failures in the IP's window from which logins from it wait.
    pub ip_failures: i64,
    /// An account counter whose last attempt is older than this (seconds) starts again.
    pub reset_after: i64,
}

#[derive(Debug, Default)]
pub struct LoginLookup {
    pub client: Option<ClientRow>,
    /// Only looked for within `client`.
    pub user: Option<UserRow>,
    pub ip_row: Option<ThrottleRow>,
    /// The attempts on the account's counter including this one; `None` when this attempt was not
    /// counted: the client uses SSO, the IP must wait, or the account must wait.
    pub attempts: Option<i64>,
}

/// The lookup's columns; `$1` company key, `$2` user name key, `$3` IP key.
const LOOKUP: &str = "SELECT
        c.id AS c_id, c.company_id AS c_company_id, c.name AS c_name,
        c.registration_link_hours AS c_registration_link_hours,
        c.reset_link_hours AS c_reset_link_hours, c.require_2fa AS c_require_2fa,
        c.active AS c_active, c.sso_issuer AS c_sso_issuer, c.sso_client_id AS c_sso_client_id,
        c.sso_client_secret AS c_sso_client_secret, c.sso_email_claim AS c_sso_email_claim,
        c.sso_jit AS c_sso_jit, c.deletion_months AS c_deletion_months,
        c.inactivity_months AS c_inactivity_months, c.passkeys AS c_passkeys,
        u.id AS u_id, u.client_id AS u_client_id, u.username AS u_username, u.email AS u_email,
        u.first_name AS u_first_name, u.last_name AS u_last_name, u.role AS u_role,
        u.status AS u_status, u.language AS u_language, u.password_hash AS u_password_hash,
        u.totp_enabled AS u_totp_enabled, u.deactivated_at AS u_deactivated_at,
        u.email_verified_at AS u_email_verified_at,
        (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = u.id) AS u_passkeys,
        t.key AS t_key, t.failures AS t_failures, t.blocked_until AS t_blocked_until,
        t.username AS t_username, t.notified_at AS t_notified_at
    FROM (SELECT 1 AS one) AS one
    LEFT JOIN clients c ON c.company_key = $1
    LEFT JOIN users u ON u.client_id = c.id AND u.username_key = $2
    LEFT JOIN throttle t ON t.key = $3";

/// The attempt is counted unless the client uses SSO (its users have no password) or the IP must
/// wait: the same rules as `ClientRow::uses_sso` and `crate::idm::throttle::ip_wait`, so the caller
/// can tell from the rows why an attempt was not counted. `lookup` is the looked-up row as a table;
/// `$4` account key, `$5` now, `$6` user name, `$7` reset after, `$8` IP failures.
fn count_sql(lookup: &str) -> String {
    attempt_sql(
        &format!(
            "SELECT $4, $5, $5, $5, c_id, $6, 1 FROM {lookup}
             WHERE c_sso_issuer IS NULL
               AND (COALESCE(t_failures, 0) < $8 OR COALESCE(t_blocked_until, 0) <= $5)"
        ),
        "$5",
        "$7",
        0,
    )
}

/// SQLite: the count alone (a row only when it counted); `?N` as rusqlite numbers parameters.
static SQLITE_COUNT: LazyLock<String> =
    LazyLock::new(|| count_sql(&format!("({LOOKUP})")).replace('$', "?"));
/// SQLite: the lookup alone, after the count in the same transaction.
static SQLITE_LOOKUP: LazyLock<String> = LazyLock::new(|| LOOKUP.replace('$', "?"));

/// The count's parameters, in the order `count_sql` numbers them (the lookup's three first).
fn bind_count<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    keys: &LoginKeys<'q>,
    now: UnixTime,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(keys.company_id.key())
        .bind(keys.username.key())
        .bind(keys.ip_key)
        .bind(keys.account_key)
        .bind(now)
        .bind(keys.username.as_str())
        .bind(keys.reset_after)
        .bind(keys.ip_failures)
}

impl Store {
    /// Looks the attempt up and counts it on the account, in one trip on PostgreSQL. On SQLite,
    /// a password login calls [`BlockingLogin::lookup`] from its hashing thread instead; this is
    /// the same through the pool, in one transaction.
    pub async fn login_lookup(
        &self,
        keys: &LoginKeys<'_>,
        now: UnixTime,
    ) -> Result<LoginLookup, sqlx::Error> {
        if self.dialect() == Dialect::Sqlite {
            let mut tx = self.pool().begin().await?;
            let counted = bind_count(sqlx::query(&SQLITE_COUNT), keys, now)
                .fetch_optional(&mut *tx)
                .await?;
            let row = sqlx::query(&SQLITE_LOOKUP)
                .bind(keys.company_id.key())
                .bind(keys.username.key())
                .bind(keys.ip_key)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            let attempts = counted.map(|c| c.try_get("failures")).transpose()?;
            return looked_up(&row, attempts);
        }
        // Written out once: every login runs it. One statement, one snapshot: the count is a
        // data-modifying CTE beside the lookup.
        static POSTGRES: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH lookup AS ({LOOKUP}), counted AS ({count})
                 SELECT lookup.*, (SELECT failures FROM counted) AS attempts FROM lookup",
                count = count_sql("lookup")
            )
        });
        let row = bind_count(sqlx::query(&POSTGRES), keys, now)
            .fetch_one(self.pool())
            .await?;
        let attempts = row.try_get("attempts")?;
        looked_up(&row, attempts)
    }

    /// SQLite: the statements of a password login, to be run by the thread that checks the
    /// password (see `super::hot`); `None` on PostgreSQL.
    pub fn blocking_login(&self) -> Option<BlockingLogin> {
        self.hot.clone().map(BlockingLogin)
    }
}

/// SQLite: a password login's statements, run synchronously by the thread that calls them (a
/// hashing worker), each call one transaction. They block: never call them on the async runtime.
#[derive(Clone)]
pub struct BlockingLogin(Arc<Hot>);

impl BlockingLogin {
    /// [`Store::login_lookup`], here and now.
    pub fn lookup(&self, keys: &LoginKeys<'_>, now: UnixTime) -> Result<LoginLookup, sqlx::Error> {
        self.0.write(|tx| {
            let attempts = tx
                .prepare_cached(&SQLITE_COUNT)?
                .query_row(
                    rusqlite::params![
                        keys.company_id.key(),
                        keys.username.key(),
                        keys.ip_key,
                        keys.account_key,
                        now,
                        keys.username.as_str(),
                        keys.reset_after,
                        keys.ip_failures,
                    ],
                    |row| row.get::<_, i64>("failures"),
                )
                .optional()?;
            tx.prepare_cached(&SQLITE_LOOKUP)?.query_row(
                rusqlite::params![keys.company_id.key(), keys.username.key(), keys.ip_key],
                |row| looked_up(row, attempts),
            )
        })
    }

    /// [`Store::record_login_success`], here and now.
    pub fn record_success(
        &self,
        success: &LoginSuccess<'_>,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        let LoginSuccess {
            throttle_key,
            session,
            audit,
        } = success;
        let [cleared, active, started, audited] = &*SUCCESS_RUSQLITE;
        self.0.write(|tx| {
            tx.prepare_cached(cleared)?.execute([throttle_key])?;
            tx.prepare_cached(active)?
                .execute(rusqlite::params![now, session.user_id.as_str()])?;
            tx.prepare_cached(started)?.execute(rusqlite::params![
                session.token_hash,
                session.user_id.as_str(),
                now,
                session.ip,
                session.user_agent,
                session.amr,
            ])?;
            tx.prepare_cached(audited)?.execute(rusqlite::params![
                new_id(),
                now,
                audit.client_id,
                audit.actor_user_id,
                audit.subject_user_id,
                audit.action.name(),
                audit.outcome.as_str(),
                audit.detail,
                audit.ip,
            ])?;
            Ok(())
        })
    }
}

/// The lookup's row, as the rows it holds.
fn looked_up<R: Columns>(row: &R, attempts: Option<i64>) -> Result<LoginLookup, R::Error> {
    Ok(LoginLookup {
        client: client_of(row)?,
        user: user_of(row)?,
        ip_row: throttle_of(row)?,
        attempts,
    })
}

/// A row's columns by name, from either driver: sqlx's (PostgreSQL, and SQLite through the pool)
/// or rusqlite's (SQLite on the hashing thread), so the lookup's row is read by one mapping.
trait Columns {
    type Error;
    fn text(&self, column: &str) -> Result<Option<String>, Self::Error>;
    fn int(&self, column: &str) -> Result<Option<i64>, Self::Error>;
    /// A column that was `NULL` although the row exists.
    fn missing(column: &str) -> Self::Error;
    /// A value that is not one the column may hold.
    fn invalid(column: &str, why: String) -> Self::Error;
}

impl Columns for AnyRow {
    type Error = sqlx::Error;
    fn text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
    fn int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
    fn missing(column: &str) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: "unexpected NULL".into(),
        }
    }
    fn invalid(column: &str, why: String) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: why.into(),
        }
    }
}

impl Columns for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, column: &str) -> rusqlite::Result<Option<String>> {
        self.get(column)
    }
    fn int(&self, column: &str) -> rusqlite::Result<Option<i64>> {
        self.get(column)
    }
    fn missing(column: &str) -> rusqlite::Error {
        rusqlite::Error::InvalidColumnName(format!("{column} is NULL"))
    }
    fn invalid(column: &str, why: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("{column}: {why}").into(),
        )
    }
}

/// A column that must hold a value in a row that exists.
fn text<R: Columns>(row: &R, column: &str) -> Result<String, R::Error> {
    row.text(column)?.ok_or_else(|| R::missing(column))
}

fn int<R: Columns>(row: &R, column: &str) -> Result<i64, R::Error> {
    row.int(column)?.ok_or_else(|| R::missing(column))
}

/// A text column read as the type it names (a role, a status); an unknown name is an error.
fn decoded<R: Columns, T: TryFrom<String, Error = String>>(
    row: &R,
    column: &str,
) -> Result<T, R::Error> {
    T::try_from(text(row, column)?).map_err(|why| R::invalid(column, why))
}

fn client_of<R: Columns>(row: &R) -> Result<Option<ClientRow>, R::Error> {
    let Some(id) = row.text("c_id")? else {
        return Ok(None);
    };
    Ok(Some(ClientRow {
        id: ClientId::new(id),
        company_id: text(row, "c_company_id")?,
        name: text(row, "c_name")?,
        registration_link_hours: int(row, "c_registration_link_hours")?,
        reset_link_hours: int(row, "c_reset_link_hours")?,
        require_2fa: int(row, "c_require_2fa")?,
        active: int(row, "c_active")?,
        sso_issuer: row.text("c_sso_issuer")?,
        sso_client_id: row.text("c_sso_client_id")?,
        sso_client_secret: row.text("c_sso_client_secret")?,
        sso_email_claim: row.text("c_sso_email_claim")?,
        sso_jit: int(row, "c_sso_jit")?,
        deletion_months: int(row, "c_deletion_months")?,
        inactivity_months: row.int("c_inactivity_months")?,
        passkeys: int(row, "c_passkeys")?,
    }))
}

fn user_of<R: Columns>(row: &R) -> Result<Option<UserRow>, R::Error> {
    let Some(id) = row.text("u_id")? else {
        return Ok(None);
    };
    Ok(Some(UserRow {
        id: UserId::new(id),
        client_id: ClientId::new(text(row, "u_client_id")?),
        username: text(row, "u_username")?,
        email: text(row, "u_email")?,
        first_name: text(row, "u_first_name")?,
        last_name: text(row, "u_last_name")?,
        role: decoded(row, "u_role")?,
        status: decoded(row, "u_status")?,
        language: text(row, "u_language")?,
        password_hash: row.text("u_password_hash")?,
        totp_enabled: int(row, "u_totp_enabled")?,
        deactivated_at: row.int("u_deactivated_at")?,
        passkeys: int(row, "u_passkeys")?,
        email_verified_at: row.int("u_email_verified_at")?,
    }))
}

fn throttle_of<R: Columns>(row: &R) -> Result<Option<ThrottleRow>, R::Error> {
    let Some(key) = row.text("t_key")? else {
        return Ok(None);
    };
    Ok(Some(ThrottleRow {
        key,
        failures: int(row, "t_failures")?,
        blocked_until: int(row, "t_blocked_until")?,
        username: row.text("t_username")?,
        notified_at: row.int("t_notified_at")?,
    }))
}

/// What a successful password login writes.
pub struct LoginSuccess<'a> {
    /// The account's throttling key: its failure counter is cleared.
    pub throttle_key: &'a str,
    /// The new session.
    pub session: NewSession<'a>,
    /// The login's audit event.
    pub audit: AuditEvent<'a>,
}

pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a UserId,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// How the person logged in (`sessions.amr`, a JSON array).
    pub amr: &'a str,
}

/// PostgreSQL: one statement (data-modifying CTEs, so all three rows or none).
const SUCCESS_POSTGRES: &str = "WITH cleared AS (DELETE FROM throttle WHERE key = $1),
    active AS (UPDATE users SET last_activity_at = $4, inactivity_warned_at = NULL WHERE id = $3),
    started AS (
        INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, ip, user_agent, amr)
        VALUES ($2, $3, $4, $4, $5, $6, $15))
    INSERT INTO audit_events (id, created_at, client_id, actor_user_id, subject_user_id, action,
        outcome, detail, ip)
    VALUES ($7, $4, $8, $9, $10, $11, $12, $13, $14)";

/// SQLite: the same four statements one by one (`$N` here, `?N` for rusqlite).
const SUCCESS_SQLITE: [&str; 4] = [
    "DELETE FROM throttle WHERE key = $1",
    "UPDATE users SET last_activity_at = $1, inactivity_warned_at = NULL WHERE id = $2",
    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, ip, user_agent, amr)
     VALUES ($1, $2, $3, $3, $4, $5, $6)",
    "INSERT INTO audit_events (id, created_at, client_id, actor_user_id, subject_user_id, action,
         outcome, detail, ip)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
];

static SUCCESS_RUSQLITE: LazyLock<[String; 4]> =
    LazyLock::new(|| SUCCESS_SQLITE.map(|sql| sql.replace('$', "?")));

impl Store {
    /// Writes a successful login in one trip to the database: the failure counter is cleared, the
    /// session starts, the login is audited. On SQLite, a password login calls
    /// [`BlockingLogin::record_success`] from its hashing thread instead; this is the same
    /// through the pool, in one transaction.
    pub async fn record_login_success(
        &self,
        success: LoginSuccess<'_>,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        let LoginSuccess {
            throttle_key,
            session,
            audit,
        } = success;
        if self.dialect() == Dialect::Sqlite {
            let [cleared, active, started, audited] = SUCCESS_SQLITE;
            let mut tx = self.pool().begin().await?;
            sqlx::query(cleared)
                .bind(throttle_key)
                .execute(&mut *tx)
                .await?;
            sqlx::query(active)
                .bind(now)
                .bind(session.user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(started)
                .bind(session.token_hash)
                .bind(session.user_id)
                .bind(now)
                .bind(session.ip)
                .bind(session.user_agent)
                .bind(session.amr)
                .execute(&mut *tx)
                .await?;
            sqlx::query(audited)
                .bind(new_id())
                .bind(now)
                .bind(audit.client_id)
                .bind(audit.actor_user_id)
                .bind(audit.subject_user_id)
                .bind(audit.action.name())
                .bind(audit.outcome.as_str())
                .bind(audit.detail)
                .bind(audit.ip)
                .execute(&mut *tx)
                .await?;
            return tx.commit().await;
        }
        sqlx::query(SUCCESS_POSTGRES)
            .bind(throttle_key)
            .bind(session.token_hash)
            .bind(session.user_id)
            .bind(now)
            .bind(session.ip)
            .bind(session.user_agent)
            .bind(new_id())
            .bind(audit.client_id)
            .bind(audit.actor_user_id)
            .bind(audit.subject_user_id)
            .bind(audit.action.name())
            .bind(audit.outcome.as_str())
            .bind(audit.detail)
            .bind(audit.ip)
            .bind(session.amr)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditAction, Outcome};

    /// A migrated SQLite store in a folder of its own, with client ACME and its user alice.
    async fn store() -> (std::path::PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("promio-login-{}", new_id()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("login.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        sqlx::query(
            "INSERT INTO clients (id, company_id, company_key, name, created_at, updated_at)
             VALUES ('c1', 'ACME', 'acme', 'ACME GmbH', 1, 1)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO users (id, client_id, username, username_key, email, email_key, role,
                 status, password_hash, created_at, updated_at)
             VALUES ('u1', 'c1', 'Alice', 'alice', 'alice@acme.example', 'alice@acme.example',
                 'user', 'active', '$argon2id$stored', 1, 1)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        (dir, store)
    }

    fn keys<'a>(company: &'a CompanyId, user: &'a UserName, account: &'a str) -> LoginKeys<'a> {
        LoginKeys {
            company_id: company,
            username: user,
            ip_key: Some("ip:127.0.0.1"),
            account_key: account,
            ip_failures: 20,
            reset_after: 900,
        }
    }

    /// What a lookup found, comparable across the two ways of running it.
    fn seen(lookup: &LoginLookup) -> (Option<String>, Option<String>, Option<String>, Option<i64>) {
        (
            lookup.client.as_ref().map(|c| c.company_id.clone()),
            lookup.user.as_ref().map(|u| u.username.clone()),
            lookup.user.as_ref().and_then(|u| u.password_hash.clone()),
            lookup.attempts,
        )
    }

    #[tokio::test]
    async fn the_hashing_threads_statements_and_the_pools_count_and_find_the_same() {
        let (dir, store) = store().await;
        let db = store.blocking_login().expect("SQLite has them");
        let acme = CompanyId::parse("ACME").unwrap();
        let alice = UserName::parse("alice").unwrap();
        let ghost = UserName::parse("ghost").unwrap();
        // Taken in turns on one account: each counts the attempt the other counted before.
        let mut counts = Vec::new();
        for turn in 0..4 {
            let lookup = if turn % 2 == 0 {
                let db = db.clone();
                let (acme, alice) = (acme.clone(), alice.clone());
                tokio::task::spawn_blocking(move || {
                    db.lookup(&keys(&acme, &alice, "pw:acme:alice"), 100)
                })
                .await
                .unwrap()
                .unwrap()
            } else {
                store
                    .login_lookup(&keys(&acme, &alice, "pw:acme:alice"), 100)
                    .await
                    .unwrap()
            };
            let (client, user, hash, _) = seen(&lookup);
            assert_eq!(
                (client, user, hash),
                (
                    Some("ACME".to_owned()),
                    Some("Alice".to_owned()),
                    Some("$argon2id$stored".to_owned())
                )
            );
            assert!(lookup.ip_row.is_none());
            counts.push(lookup.attempts);
        }
        // The first two are free; after the second the account waits a second (`delay_secs`),
        // so at the same instant the next ones are not counted, whichever way they run.
        assert_eq!(counts, [Some(1), Some(2), None, None]);
        // An unknown user is counted too, and found as nobody, both ways.
        let here = db
            .lookup(&keys(&acme, &ghost, "pw:acme:ghost"), 100)
            .unwrap();
        let pooled = store
            .login_lookup(&keys(&acme, &ghost, "pw:acme:ghost"), 200)
            .await
            .unwrap();
        assert_eq!(seen(&here), (Some("ACME".into()), None, None, Some(1)));
        assert_eq!(seen(&pooled), (Some("ACME".into()), None, None, Some(2)));
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_success_writes_the_same_rows_either_way() {
        let (dir, store) = store().await;
        let db = store.blocking_login().unwrap();
        let user = UserId::new("u1".to_owned());
        let success = |token_hash: &'static str| LoginSuccess {
            throttle_key: "pw:acme:alice",
            session: NewSession {
                token_hash,
                user_id: &user,
                ip: Some("127.0.0.1"),
                user_agent: Some("bench"),
                amr: r#"["pwd"]"#,
            },
            audit: AuditEvent::login(
                AuditAction::LoginPassword,
                Outcome::Success,
                Some("c1"),
                Some("u1"),
            )
            .detail("password"),
        };
        let counter = "INSERT INTO throttle (key, window_start, last_at, blocked_until, failures)
                       VALUES ('pw:acme:alice', 1, 1, 1, 1)";
        sqlx::query(counter).execute(store.pool()).await.unwrap();
        db.record_success(&success("here"), 500).unwrap();
        sqlx::query(counter).execute(store.pool()).await.unwrap();
        store
            .record_login_success(success("pooled"), 600)
            .await
            .unwrap();

        /// token hash, user, created, last seen, ip, user agent, amr
        type SessionRow = (
            String,
            String,
            i64,
            i64,
            Option<String>,
            Option<String>,
            String,
        );
        let sessions: Vec<SessionRow> = sqlx::query_as(
            "SELECT token_hash, user_id, created_at, last_seen_at, ip, user_agent, amr
                 FROM sessions ORDER BY created_at",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let expected = |token: &str, at: i64| {
            (
                token.to_owned(),
                "u1".to_owned(),
                at,
                at,
                Some("127.0.0.1".to_owned()),
                Some("bench".to_owned()),
                r#"["pwd"]"#.to_owned(),
            )
        };
        assert_eq!(
            sessions,
            vec![expected("here", 500), expected("pooled", 600)]
        );
        let audited: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT created_at, action, outcome, detail FROM audit_events ORDER BY created_at",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        assert_eq!(audited.len(), 2);
        assert_eq!(audited[0].0, 500);
        assert_eq!(audited[1].0, 600);
        for (_, action, outcome, detail) in &audited {
            assert_eq!(
                (action.as_str(), outcome.as_str(), detail.as_str()),
                ("login.password", "success", "password")
            );
        }
        let (counters, active): (i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM throttle), last_activity_at FROM users WHERE id = 'u1'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!((counters, active), (0, Some(600)));
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
