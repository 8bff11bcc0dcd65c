//! The OpenID Provider's signing keys (`oauth_keys`): the private key sealed (see
//! `crate::idm::signing`), the public one as its JWK.

use super::Store;
use crate::domain::clock::UnixTime;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthKeyRow {
    pub kid: String,
    /// PKCS#8 DER, sealed with the key derived from `SECRET_KEY` for signing keys.
    pub private_sealed: String,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    pub created_at: i64,
    /// Signs ID tokens from this moment (the newest key past it signs).
    pub signs_from: i64,
    /// Signs no more from this moment; published until its last tokens expired.
    pub retired_at: Option<i64>,
}

impl Store {
    /// Every stored key, newest first.
    pub async fn oauth_keys(&self) -> Result<Vec<OAuthKeyRow>, sqlx::Error> {
        sqlx::query_as::<_, OAuthKeyRow>(
            "SELECT kid, private_sealed, public_jwk, created_at, signs_from, retired_at
             FROM oauth_keys ORDER BY signs_from DESC, created_at DESC, kid DESC",
        )
        .fetch_all(self.pool())
        .await
    }

    pub async fn count_oauth_keys(&self) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM oauth_keys")
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }

    /// Stores a new key. With `retire_others`, in the same transaction every key not yet retired
    /// is retired when the new one starts signing (`keys rotate`).
    pub async fn insert_oauth_key(
        &self,
        key: &OAuthKeyRow,
        retire_others: bool,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO oauth_keys (kid, private_sealed, public_jwk, created_at, signs_from,
                 retired_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.private_sealed)
        .bind(&key.public_jwk)
        .bind(key.created_at)
        .bind(key.signs_from)
        .bind(key.retired_at)
        .execute(&mut *tx)
        .await?;
        if retire_others {
            sqlx::query(
                "UPDATE oauth_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
            )
            .bind(key.signs_from)
            .bind(&key.kid)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the keys retired before `before` (housekeeping passes `now - 1 h - 1 day`: the
    /// last ID token a key signed expired an hour after its retirement, and a day more keeps
    /// `id_token_hint`s of logouts verifiable); returns how many.
    pub async fn delete_retired_oauth_keys(&self, before: UnixTime) -> Result<u64, sqlx::Error> {
        let done =
            sqlx::query("DELETE FROM oauth_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }
}
