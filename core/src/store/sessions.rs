//! Sessions and pending second factors (the state between the password and the code, stored as
//! "challenges"), stored by the SHA-256 of their token.

use super::Store;
use crate::domain::PendingKind;
use crate::domain::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub user_id: crate::domain::UserId,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &crate::domain::UserId,
        now: UnixTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
        amr: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, ip, user_agent,
                 amr)
             VALUES ($1, $2, $3, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(ip)
        .bind(user_agent)
        .bind(amr)
        .execute(&mut *tx)
        .await?;
        // A login is activity: the inactivity rule (see `crate::idm::lifecycle`) starts again.
        sqlx::query(
            "UPDATE users SET last_activity_at = $2, inactivity_warned_at = NULL WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        sqlx::query_as::<_, SessionRow>(
            "SELECT user_id, created_at, last_seen_at FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn touch_session(&self, token_hash: &str, now: UnixTime) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes one session; true when it existed.
    pub async fn delete_session(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every session of a user; returns how many there were.
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_pending(
        &self,
        token_hash: &str,
        user_id: &crate::domain::UserId,
        kind: PendingKind,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO login_challenges (token_hash, user_id, kind, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(kind.as_str())
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
    pub token_hash: String,
    pub user_id: crate::domain::UserId,
    #[sqlx(try_from = "String")]
    pub kind: PendingKind,
    pub expires_at: i64,
    pub failures: i64,
}

impl Store {
    pub async fn pending_second_factor(
        &self,
        token_hash: &str,
    ) -> Result<Option<PendingRow>, sqlx::Error> {
        sqlx::query_as::<_, PendingRow>(
            "SELECT token_hash, user_id, kind, expires_at, failures FROM login_challenges WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Counts a failed second factor; returns the failures so far.
    pub async fn pending_failed(&self, token_hash: &str) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query(
            "UPDATE login_challenges SET failures = failures + 1 WHERE token_hash = $1 RETURNING failures",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("failures"))
            .transpose()?
            .unwrap_or(i64::MAX))
    }

    /// Ends a pending second factor; true when this call ended it (so two concurrent completions cannot both win).
    pub async fn delete_pending(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM login_challenges WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionListRow {
    pub token_hash: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Store {
    pub async fn user_sessions(&self, user_id: &str) -> Result<Vec<SessionListRow>, sqlx::Error> {
        sqlx::query_as::<_, SessionListRow>(
            "SELECT token_hash, created_at, last_seen_at, ip, user_agent FROM sessions
             WHERE user_id = $1 ORDER BY last_seen_at DESC",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }

    /// Ends one of the user's own sessions; false when it is not theirs or gone.
    pub async fn delete_own_session(
        &self,
        user_id: &str,
        token_hash: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1 AND user_id = $2")
            .bind(token_hash)
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Ends every session of a user inside the caller's transaction (a password reset).
pub async fn delete_user_sessions_in(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Ends everything a client's users opened with their passwords, inside the caller's transaction
/// (the client was switched to SSO): sessions, pending second factors and passkey ceremonies.
/// Returns how many sessions there were.
pub async fn end_client_logins_in(
    conn: &mut sqlx::AnyConnection,
    client_id: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE client_id = $1)",
    )
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    for table in ["login_challenges", "webauthn_ceremonies"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE user_id IN (SELECT id FROM users WHERE client_id = $1)"
        ))
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(done.rows_affected())
}

impl Store {
    /// Ends every session of every user of a client (the client was deactivated).
    pub async fn delete_client_sessions(&self, client_id: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE client_id = $1)",
        )
        .bind(client_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
