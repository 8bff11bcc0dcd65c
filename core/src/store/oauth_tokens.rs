//! The OpenID Provider's token side (see `promio_server::edge::oauth::token`): redeeming codes, and access and
//! refresh tokens, all stored by the SHA-256 of their value. Single use is decided by one
//! conditional `UPDATE` whose `rows_affected()` says who won (a code's `used_at`, a refresh
//! token's `used_at`); revocation sets `revoked_at` and is never undone.

use super::Store;
use crate::domain::clock::UnixTime;
use sqlx::AnyConnection;

/// `oauth_tokens.kind` of an access token.
pub const ACCESS: &str = "access";
/// `oauth_tokens.kind` of a refresh token.
pub const REFRESH: &str = "refresh";

/// A code as stored by the authorization endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_hash: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    /// JSON array (RFC 8176 values).
    pub amr: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// An access or refresh token as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub kind: String,
    pub grant_id: String,
    pub family_id: Option<String>,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub session_hash: Option<String>,
    pub auth_time: i64,
    /// JSON array (RFC 8176 values).
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRow {
    pub fn is_refresh(&self) -> bool {
        self.kind == REFRESH
    }

    /// Not revoked, not expired and (a refresh token) not rotated yet.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && self.used_at.is_none()
    }
}

/// A token to store.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub token_hash: &'a str,
    /// [`ACCESS`] or [`REFRESH`].
    pub kind: &'static str,
    pub grant_id: &'a str,
    /// Refresh tokens: the family (every token rotated from the same first one); `None` for access.
    pub family_id: Option<&'a str>,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub session_hash: Option<&'a str>,
    pub auth_time: UnixTime,
    pub amr: &'a str,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

const CODE_COLUMNS: &str = "grant_id, client_id, user_id, session_hash, redirect_uri, scope, nonce, \
     code_challenge, auth_time, amr, expires_at, used_at";

const TOKEN_COLUMNS: &str = "kind, grant_id, family_id, client_id, user_id, scope, session_hash, \
     auth_time, amr, created_at, expires_at, used_at, revoked_at";

async fn insert_tokens(
    conn: &mut AnyConnection,
    tokens: &[NewToken<'_>],
) -> Result<(), sqlx::Error> {
    for t in tokens {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, kind, grant_id, family_id, client_id, user_id,
                 scope, session_hash, auth_time, amr, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(t.token_hash)
        .bind(t.kind)
        .bind(t.grant_id)
        .bind(t.family_id)
        .bind(t.client_id)
        .bind(t.user_id)
        .bind(t.scope)
        .bind(t.session_hash)
        .bind(t.auth_time)
        .bind(t.amr)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// A code by its hash, used or not.
    pub async fn oauth_code(&self, code_hash: &str) -> Result<Option<CodeRow>, sqlx::Error> {
        sqlx::query_as::<_, CodeRow>(&format!(
            "SELECT {CODE_COLUMNS} FROM oauth_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Uses a code and stores the tokens issued for it, in one transaction; false (nothing stored)
    /// when the code was used already: of two redemptions at once exactly one wins.
    pub async fn redeem_oauth_code(
        &self,
        code_hash: &str,
        now: UnixTime,
        tokens: &[NewToken<'_>],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
        )
        .bind(code_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_tokens(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// An access or refresh token by its hash, in any state.
    pub async fn oauth_token(&self, token_hash: &str) -> Result<Option<TokenRow>, sqlx::Error> {
        sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM oauth_tokens WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Rotates a refresh token: marks it used and stores its successors, in one transaction;
    /// false (nothing stored) when it was used or revoked already, so that of two uses at once
    /// exactly one wins.
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: UnixTime,
        tokens: &[NewToken<'_>],
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE oauth_tokens SET used_at = $2
             WHERE token_hash = $1 AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_tokens(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes every token of a grant (the access and refresh tokens issued from one code, and
    /// so the whole refresh family, whose id is the grant's); returns how many were live.
    pub async fn revoke_oauth_grant(
        &self,
        grant_id: &str,
        now: UnixTime,
    ) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = $2
             WHERE (grant_id = $1 OR family_id = $1) AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Revokes one token; true when it was not revoked before.
    pub async fn revoke_oauth_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every token of a user (deactivated); returns how many were not revoked before.
    pub async fn revoke_user_oauth_tokens(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<u64, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        revoke_user_tokens_in(&mut conn, user_id, now).await
    }
}

/// Revokes every token of a user inside the caller's transaction (a deactivation for inactivity).
pub async fn revoke_user_tokens_in(
    conn: &mut AnyConnection,
    user_id: &str,
    now: UnixTime,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE oauth_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
