//! Sessions and pending login challenges, stored by the SHA-256 of their token.

use super::Store;
use crate::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    pub async fn insert_session(
        &self,
        token_hash: &str,
        user_id: &str,
        now: UnixTime,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, ip, user_agent)
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(ip)
        .bind(user_agent)
        .execute(self.pool())
        .await?;
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

    pub async fn insert_challenge(
        &self,
        token_hash: &str,
        user_id: &str,
        kind: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO login_challenges (token_hash, user_id, kind, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(kind)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRow {
    pub token_hash: String,
    pub user_id: String,
    pub kind: String,
    pub expires_at: i64,
    pub failures: i64,
}

impl Store {
    pub async fn challenge(&self, token_hash: &str) -> Result<Option<ChallengeRow>, sqlx::Error> {
        sqlx::query_as::<_, ChallengeRow>(
            "SELECT token_hash, user_id, kind, expires_at, failures FROM login_challenges WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Counts a failed second factor; returns the failures so far.
    pub async fn challenge_failed(&self, token_hash: &str) -> Result<i64, sqlx::Error> {
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

    /// Ends a challenge; true when this call ended it (so two concurrent completions cannot both win).
    pub async fn delete_challenge(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM login_challenges WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a TOTP step as used, if it is newer than the last one used. One statement: of two
    /// concurrent uses of the same code, one succeeds.
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $2
             WHERE id = $1 AND totp_enabled = 1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE code_hash = $2 AND user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.pool())
        .await?
        .try_get("n")
    }

    /// Stores a pending (not yet active) TOTP secret, sealed.
    pub async fn set_pending_totp(
        &self,
        user_id: &str,
        sealed: &str,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE users SET totp_secret = $2, totp_enabled = 0, totp_last_step = NULL, updated_at = $3
             WHERE id = $1 AND totp_enabled = 0",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The sealed TOTP secret of a user (pending or active).
    pub async fn totp_secret(&self, user_id: &str) -> Result<Option<String>, sqlx::Error> {
        use sqlx::Row;
        sqlx::query("SELECT totp_secret FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| r.try_get::<Option<String>, _>("totp_secret"))
            .transpose()
            .map(Option::flatten)
    }

    /// Turns TOTP on with the given first used step and replaces the recovery codes, atomically.
    pub async fn activate_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[String],
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE users SET totp_enabled = 1, totp_last_step = $2, updated_at = $3
             WHERE id = $1 AND totp_enabled = 0 AND totp_secret IS NOT NULL",
        )
        .bind(user_id)
        .bind(step)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        replace_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        replace_recovery_codes(&mut tx, user_id, hashes, now).await?;
        tx.commit().await
    }

    /// Turns TOTP off and forgets the secret and the recovery codes.
    pub async fn clear_totp(&self, user_id: &str, now: UnixTime) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE users SET totp_enabled = 0, totp_secret = NULL, totp_last_step = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }
}

async fn replace_recovery_codes(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    hashes: &[String],
    now: UnixTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(hash)
        .bind(user_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
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
