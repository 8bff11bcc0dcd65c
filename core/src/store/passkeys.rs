//! Passkeys and the WebAuthn ceremonies in progress (see `crate::idm::passkeys`).

use super::{Store, new_id};
use crate::domain::UserId;
use crate::domain::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: UserId,
    /// base64url, unique across all users.
    pub credential_id: String,
    pub name: String,
    /// webauthn-rs's `Passkey` as JSON.
    pub passkey: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, user_id, credential_id, name, passkey, created_at, last_used_at";

/// A ceremony taken (and so ended): whose it was and webauthn-rs's state as JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CeremonyRow {
    pub kind: String,
    pub user_id: Option<String>,
    pub state: String,
    pub expires_at: i64,
}

impl Store {
    /// A user's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: &str) -> Result<Vec<PasskeyRow>, sqlx::Error> {
        sqlx::query_as::<_, PasskeyRow>(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await
    }

    /// Stores a new passkey; `Ok(None)` when its credential is registered already (to anyone).
    pub async fn insert_passkey(
        &self,
        user_id: &UserId,
        credential_id: &str,
        name: &str,
        passkey: &str,
        now: UnixTime,
    ) -> Result<Option<PasskeyRow>, sqlx::Error> {
        let id = new_id();
        let done = sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
        )
        .bind(&id)
        .bind(user_id)
        .bind(credential_id)
        .bind(name)
        .bind(passkey)
        .bind(now)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.passkey(user_id, &id).await
    }

    pub async fn passkey(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<PasskeyRow>, sqlx::Error> {
        sqlx::query_as::<_, PasskeyRow>(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 AND id = $2"
        ))
        .bind(user_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await
    }

    pub async fn passkey_by_credential(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRow>, sqlx::Error> {
        sqlx::query_as::<_, PasskeyRow>(&format!(
            "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.pool())
        .await
    }

    /// Records a use: the credential's new state (counter, backup flags) and the time. False
    /// when `counter` is not above the highest counter seen (0: the authenticator keeps none):
    /// a cloned credential, or an older answer finishing after a newer one.
    pub async fn passkey_used(
        &self,
        id: &str,
        passkey: Option<&str>,
        counter: i64,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE passkeys SET passkey = COALESCE($2, passkey), last_used_at = $3,
                 sign_count = CASE WHEN $4 > sign_count THEN $4 ELSE sign_count END
             WHERE id = $1 AND ($4 = 0 OR $4 > sign_count)",
        )
        .bind(id)
        .bind(passkey)
        .bind(now)
        .bind(counter)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes every passkey of a user; returns how many there were.
    pub async fn delete_user_passkeys(&self, user_id: &str) -> Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_ceremony(
        &self,
        id_hash: &str,
        kind: &str,
        user_id: Option<&str>,
        state: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, kind, user_id, state, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(kind)
        .bind(user_id)
        .bind(state)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes a ceremony: it is deleted in the same statement, so it can be finished once only,
    /// by whichever instance gets the request.
    pub async fn take_ceremony(&self, id_hash: &str) -> Result<Option<CeremonyRow>, sqlx::Error> {
        sqlx::query_as::<_, CeremonyRow>(
            "DELETE FROM webauthn_ceremonies WHERE id_hash = $1
             RETURNING kind, user_id, state, expires_at",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await
    }
}
