//! What a password login reads and counts before hashing (the client by company ID, its user by
//! name, the source IP's throttling row, and the attempt on the account's counter) and what it
//! writes after a success (counter cleared, session, audit event), each in a single trip: every
//! statement costs a trip to the database, and on SQLite two thread switches, which under load take
//! CPU from hashing.

use super::clients::ClientRow;
use super::throttle::{ThrottleRow, attempt_sql};
use super::users::UserRow;
use super::{Dialect, Store, new_id};
use crate::domain::audit::Event as AuditEvent;
use crate::domain::clock::UnixTime;
use crate::domain::{ClientId, CompanyId, UserId, UserName};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::sync::LazyLock;

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

impl Store {
    /// Looks the attempt up and counts it on the account, in one trip.
    pub async fn login_lookup(
        &self,
        keys: &LoginKeys<'_>,
        now: UnixTime,
    ) -> Result<LoginLookup, sqlx::Error> {
        // Written out once: every login runs it.
        static POSTGRES: LazyLock<String> = LazyLock::new(|| {
            // One statement, one snapshot: the count is a data-modifying CTE beside the lookup.
            format!(
                "WITH lookup AS ({LOOKUP}), counted AS ({count})
                 SELECT lookup.*, (SELECT failures FROM counted) AS attempts FROM lookup",
                count = count_sql("lookup")
            )
        });
        static SQLITE: LazyLock<String> = LazyLock::new(|| {
            // Two statements sent at once in one transaction, so both see the same rows: the
            // count (a row only when it counted), the lookup.
            format!(
                "BEGIN IMMEDIATE;\n{};\n{LOOKUP};\nCOMMIT",
                count_sql(&format!("({LOOKUP})"))
            )
        });
        let sql: &'static str = match self.dialect() {
            Dialect::Postgres => &POSTGRES,
            Dialect::Sqlite => &SQLITE,
        };
        let rows = self
            .on_hot_path(async |conn| {
                sqlx::query(sql)
                    .bind(keys.company_id.key())
                    .bind(keys.username.key())
                    .bind(keys.ip_key)
                    .bind(keys.account_key)
                    .bind(now)
                    .bind(keys.username.as_str())
                    .bind(keys.reset_after)
                    .bind(keys.ip_failures)
                    .fetch_all(conn)
                    .await
            })
            .await?;
        let (row, attempts) = match (self.dialect(), rows.as_slice()) {
            (Dialect::Postgres, [row]) => (row, row.try_get("attempts")?),
            (Dialect::Sqlite, [row]) => (row, None),
            (Dialect::Sqlite, [counted, row]) => (row, Some(counted.try_get("failures")?)),
            _ => return Err(sqlx::Error::RowNotFound),
        };
        Ok(LoginLookup {
            client: client_of(row)?,
            user: user_of(row)?,
            ip_row: throttle_of(row)?,
            attempts,
        })
    }
}

/// A text column read as the type it names (a role, a status); an unknown name is an error.
fn decoded<T: TryFrom<String, Error = String>>(
    row: &AnyRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    T::try_from(raw).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: e.into(),
    })
}

fn client_of(row: &AnyRow) -> Result<Option<ClientRow>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<String>, _>("c_id")? else {
        return Ok(None);
    };
    Ok(Some(ClientRow {
        id: ClientId::new(id),
        company_id: row.try_get("c_company_id")?,
        name: row.try_get("c_name")?,
        registration_link_hours: row.try_get("c_registration_link_hours")?,
        reset_link_hours: row.try_get("c_reset_link_hours")?,
        require_2fa: row.try_get("c_require_2fa")?,
        active: row.try_get("c_active")?,
        sso_issuer: row.try_get("c_sso_issuer")?,
        sso_client_id: row.try_get("c_sso_client_id")?,
        sso_client_secret: row.try_get("c_sso_client_secret")?,
        sso_email_claim: row.try_get("c_sso_email_claim")?,
        sso_jit: row.try_get("c_sso_jit")?,
        deletion_months: row.try_get("c_deletion_months")?,
        inactivity_months: row.try_get("c_inactivity_months")?,
        passkeys: row.try_get("c_passkeys")?,
    }))
}

fn user_of(row: &AnyRow) -> Result<Option<UserRow>, sqlx::Error> {
    let Some(id) = row.try_get::<Option<String>, _>("u_id")? else {
        return Ok(None);
    };
    Ok(Some(UserRow {
        id: UserId::new(id),
        client_id: ClientId::new(row.try_get::<String, _>("u_client_id")?),
        username: row.try_get("u_username")?,
        email: row.try_get("u_email")?,
        first_name: row.try_get("u_first_name")?,
        last_name: row.try_get("u_last_name")?,
        role: decoded(row, "u_role")?,
        status: decoded(row, "u_status")?,
        language: row.try_get("u_language")?,
        password_hash: row.try_get("u_password_hash")?,
        totp_enabled: row.try_get("u_totp_enabled")?,
        deactivated_at: row.try_get("u_deactivated_at")?,
        passkeys: row.try_get("u_passkeys")?,
    }))
}

fn throttle_of(row: &AnyRow) -> Result<Option<ThrottleRow>, sqlx::Error> {
    let Some(key) = row.try_get::<Option<String>, _>("t_key")? else {
        return Ok(None);
    };
    Ok(Some(ThrottleRow {
        key,
        failures: row.try_get("t_failures")?,
        blocked_until: row.try_get("t_blocked_until")?,
        username: row.try_get("t_username")?,
        notified_at: row.try_get("t_notified_at")?,
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

/// SQLite: four statements sent to the connection at once, in one transaction (a connection
/// whose statements fail is closed, which rolls back what they began; see `direct`).
const SUCCESS_SQLITE: &str = "BEGIN IMMEDIATE;
    DELETE FROM throttle WHERE key = $1;
    UPDATE users SET last_activity_at = $4, inactivity_warned_at = NULL WHERE id = $3;
    INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, ip, user_agent, amr)
    VALUES ($2, $3, $4, $4, $5, $6, $15);
    INSERT INTO audit_events (id, created_at, client_id, actor_user_id, subject_user_id, action,
        outcome, detail, ip)
    VALUES ($7, $4, $8, $9, $10, $11, $12, $13, $14);
    COMMIT";

impl Store {
    /// Writes a successful login in one trip to the database: the failure counter is cleared, the
    /// session starts, the login is audited.
    pub async fn record_login_success(
        &self,
        success: LoginSuccess<'_>,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        let sql = match self.dialect() {
            Dialect::Postgres => SUCCESS_POSTGRES,
            Dialect::Sqlite => SUCCESS_SQLITE,
        };
        let LoginSuccess {
            throttle_key,
            session,
            audit,
        } = success;
        self.on_hot_path(async |conn| {
            sqlx::query(sql)
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
                .execute(conn)
                .await
        })
        .await?;
        Ok(())
    }
}
