//! The OpenID Provider's authorization side (see `promio_server::edge::oauth::authorize`): authorization
//! requests waiting for a login (stored by the SHA-256 of the id the browser's cookie holds), the
//! codes it issues (by the SHA-256 of the code), and which application took part in which session.

use super::Store;
use crate::domain::clock::UnixTime;

/// An authorization request waiting for a login.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthRequestRow {
    pub client_id: String,
    /// The validated request as JSON (`promio_server::edge::oauth::authorize`'s own type).
    pub params: String,
    /// The session that finishes the request must have begun at or after this moment.
    pub login_after: Option<i64>,
    pub created_at: i64,
}

/// A code to store, with the participation of its application in the session.
#[derive(Debug)]
pub struct NewCode<'a> {
    pub code_hash: &'a str,
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub session_hash: &'a str,
    pub redirect_uri: &'a str,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub auth_time: UnixTime,
    /// JSON array (RFC 8176 values).
    pub amr: &'a str,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// The session's id as the application sees it (ID token and logout token `sid`).
    pub sid: &'a str,
}

impl Store {
    pub async fn insert_oauth_request(
        &self,
        id_hash: &str,
        client_id: &str,
        params: &str,
        login_after: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO oauth_requests (id_hash, client_id, params, login_after, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(client_id)
        .bind(params)
        .bind(login_after)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn oauth_request(
        &self,
        id_hash: &str,
    ) -> Result<Option<OAuthRequestRow>, sqlx::Error> {
        sqlx::query_as::<_, OAuthRequestRow>(
            "SELECT client_id, params, login_after, created_at FROM oauth_requests
             WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Consumes a waiting request; true when this call consumed it (two tabs finishing one
    /// request at once: one wins).
    pub async fn take_oauth_request(&self, id_hash: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM oauth_requests WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How the session's person logged in (`sessions.amr`, a JSON array); `None` for a session
    /// that is gone or was started before the column existed.
    pub async fn session_amr(&self, token_hash: &str) -> Result<Option<String>, sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query("SELECT amr FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("amr"))
            .transpose()?
            .flatten())
    }

    /// Stores a code and records that its application took part in the session (once per
    /// session and application), in one transaction.
    pub async fn insert_oauth_code(&self, code: &NewCode<'_>) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, grant_id, client_id, user_id, session_hash,
                redirect_uri, scope, nonce, code_challenge, auth_time, amr, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(code.code_hash)
        .bind(code.grant_id)
        .bind(code.client_id)
        .bind(code.user_id)
        .bind(code.session_hash)
        .bind(code.redirect_uri)
        .bind(code.scope)
        .bind(code.nonce)
        .bind(code.code_challenge)
        .bind(code.auth_time)
        .bind(code.amr)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oauth_participations (session_hash, client_id, user_id, sid, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (session_hash, client_id) DO NOTHING",
        )
        .bind(code.session_hash)
        .bind(code.client_id)
        .bind(code.user_id)
        .bind(code.sid)
        .bind(code.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
