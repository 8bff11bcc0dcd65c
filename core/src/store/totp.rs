//! TOTP storage: the sealed secret (pending until the first code confirms it), the last step
//! used (so a code counts once), and the recovery codes, stored by their hash.

use super::Store;
use crate::domain::clock::UnixTime;

impl Store {
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
