//! Link tokens (registration, password reset), stored by the SHA-256 of the token.

use super::Store;
use crate::domain::LinkKind;
use crate::domain::clock::UnixTime;
use sqlx::AnyConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub token_hash: String,
    pub user_id: crate::domain::UserId,
    #[sqlx(try_from = "String")]
    pub kind: LinkKind,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub superseded_at: Option<i64>,
    /// The key of the address the link was mailed to (`None`: made before this was kept).
    pub sent_to_key: Option<String>,
}

/// Voids the user's open links of this kind and stores a new one, mailed to the address whose key
/// is `sent_to_key`.
pub async fn replace(
    conn: &mut AnyConnection,
    token_hash: &str,
    user_id: &crate::domain::UserId,
    kind: LinkKind,
    now: UnixTime,
    expires_at: UnixTime,
    sent_to_key: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE link_tokens SET superseded_at = $3
         WHERE user_id = $1 AND kind = $2 AND used_at IS NULL AND superseded_at IS NULL",
    )
    .bind(user_id)
    .bind(kind.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO link_tokens (token_hash, user_id, kind, created_at, expires_at, sent_to_key)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(kind.as_str())
    .bind(now)
    .bind(expires_at)
    .bind(sent_to_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Uses the link if it is still valid: one statement, so of two concurrent uses exactly one wins.
pub async fn consume(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: UnixTime,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE link_tokens SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND superseded_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    /// Counts a wrong second-factor code given with a link; at `void_after` the link is void
    /// (superseded). Returns the wrong codes counted so far.
    pub async fn link_code_failed(
        &self,
        token_hash: &str,
        now: UnixTime,
        void_after: i64,
    ) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        sqlx::query(
            "UPDATE link_tokens SET code_failures = code_failures + 1,
                 superseded_at = CASE WHEN code_failures + 1 >= $3
                     THEN COALESCE(superseded_at, $2) ELSE superseded_at END
             WHERE token_hash = $1 RETURNING code_failures",
        )
        .bind(token_hash)
        .bind(now)
        .bind(void_after)
        .fetch_one(self.pool())
        .await?
        .try_get("code_failures")
    }

    pub async fn link(&self, token_hash: &str) -> Result<Option<LinkRow>, sqlx::Error> {
        sqlx::query_as::<_, LinkRow>(
            "SELECT token_hash, user_id, kind, created_at, expires_at, used_at, superseded_at,
                 sent_to_key
             FROM link_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// The newest link of a kind for a user.
    pub async fn latest_link(
        &self,
        user_id: &str,
        kind: LinkKind,
    ) -> Result<Option<LinkRow>, sqlx::Error> {
        sqlx::query_as::<_, LinkRow>(
            "SELECT token_hash, user_id, kind, created_at, expires_at, used_at, superseded_at,
                 sent_to_key
             FROM link_tokens WHERE user_id = $1 AND kind = $2 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(kind.as_str())
        .fetch_optional(self.pool())
        .await
    }

    /// How many links of a kind were made for a user since `since`.
    pub async fn links_since(
        &self,
        user_id: &str,
        kind: LinkKind,
        since: UnixTime,
    ) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM link_tokens WHERE user_id = $1 AND kind = $2 AND created_at >= $3")
            .bind(user_id)
            .bind(kind.as_str())
            .bind(since)
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }
}
