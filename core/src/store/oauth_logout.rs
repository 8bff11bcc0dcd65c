//! The OpenID Provider's logout side (see `promio_server::edge::oauth::logout`): the participations of
//! applications in sessions that have ended, the outbox of back-channel logout tokens, and the
//! applications a user is logged in to (the Security page).

use super::Store;
use crate::domain::clock::UnixTime;

/// An application's participation in a session that has ended (its row gone, or past its idle
/// or absolute limit).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndedParticipation {
    pub session_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    /// `None`: the application registered no back-channel URI (or it was deleted meanwhile).
    pub backchannel_logout_uri: Option<String>,
}

/// A logout token to deliver, written with the end of its participation.
#[derive(Debug)]
pub struct NewLogout<'a> {
    pub id: &'a str,
    pub uri: &'a str,
    pub logout_token: &'a str,
}

/// A back-channel logout waiting for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogoutOutboxRow {
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub logout_token: String,
    pub attempts: i64,
    pub created_at: i64,
}

/// An application the user is logged in to, and since when.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppLoginRow {
    pub name: String,
    pub since: i64,
}

impl Store {
    /// Participations whose session is gone, idle since before `idle_before` or begun before
    /// `started_before`, oldest first.
    pub async fn ended_oauth_participations(
        &self,
        idle_before: UnixTime,
        started_before: UnixTime,
        limit: i64,
    ) -> Result<Vec<EndedParticipation>, sqlx::Error> {
        sqlx::query_as::<_, EndedParticipation>(
            "SELECT p.session_hash AS session_hash, p.client_id AS client_id,
                    p.user_id AS user_id, p.sid AS sid,
                    a.backchannel_logout_uri AS backchannel_logout_uri
             FROM oauth_participations p
             LEFT JOIN sessions s ON s.token_hash = p.session_hash
             LEFT JOIN oauth_apps a ON a.client_id = p.client_id
             WHERE s.token_hash IS NULL OR s.last_seen_at <= $1 OR s.created_at <= $2
             ORDER BY p.created_at
             LIMIT $3",
        )
        .bind(idle_before)
        .bind(started_before)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Ends a participation and, in the same transaction, queues its logout token; false (and
    /// nothing queued) when another instance ended it first.
    pub async fn end_oauth_participation(
        &self,
        session_hash: &str,
        client_id: &str,
        logout: Option<NewLogout<'_>>,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "DELETE FROM oauth_participations WHERE session_hash = $1 AND client_id = $2",
        )
        .bind(session_hash)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(logout) = logout {
            sqlx::query(
                "INSERT INTO oauth_logout_outbox
                     (id, client_id, uri, logout_token, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, 0, $5, $5)",
            )
            .bind(logout.id)
            .bind(client_id)
            .bind(logout.uri)
            .bind(logout.logout_token)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Logout tokens due for (another) attempt and claimed by nobody, oldest due first.
    pub async fn due_backchannel_logouts(
        &self,
        now: UnixTime,
        limit: i64,
    ) -> Result<Vec<LogoutOutboxRow>, sqlx::Error> {
        sqlx::query_as::<_, LogoutOutboxRow>(
            "SELECT id, client_id, uri, logout_token, attempts, created_at
             FROM oauth_logout_outbox
             WHERE sent_at IS NULL AND next_attempt_at <= $1
               AND (claimed_until IS NULL OR claimed_until <= $1)
             ORDER BY next_attempt_at
             LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Claims a due logout token for one attempt until `until`; true when this call claimed it
    /// (two instances never send one token at once).
    pub async fn claim_backchannel_logout(
        &self,
        id: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE oauth_logout_outbox SET claimed_until = $3
             WHERE id = $1 AND sent_at IS NULL AND next_attempt_at <= $2
               AND (claimed_until IS NULL OR claimed_until <= $2)",
        )
        .bind(id)
        .bind(now)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a logout token: delivered, or given up.
    pub async fn delete_backchannel_logout(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM oauth_logout_outbox WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again (the claim ends).
    pub async fn retry_backchannel_logout(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE oauth_logout_outbox
             SET attempts = $2, next_attempt_at = $3, claimed_until = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(attempts)
        .bind(next_attempt_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The applications the user is logged in to: those that took part in one of the user's
    /// live sessions (since the first code in it), and those holding a live refresh token (since
    /// the login it was issued in). A session is live while it was used after `idle_before` and
    /// began after `started_before`. Ordered by name.
    pub async fn oauth_app_logins(
        &self,
        user_id: &str,
        now: UnixTime,
        idle_before: UnixTime,
        started_before: UnixTime,
    ) -> Result<Vec<AppLoginRow>, sqlx::Error> {
        sqlx::query_as::<_, AppLoginRow>(
            "SELECT a.name AS name, MIN(x.since) AS since
             FROM (
                 SELECT p.client_id AS client_id, p.created_at AS since
                 FROM oauth_participations p
                 JOIN sessions s ON s.token_hash = p.session_hash
                 WHERE p.user_id = $1 AND s.user_id = $1
                   AND s.last_seen_at > $3 AND s.created_at > $4
                 UNION ALL
                 SELECT t.client_id AS client_id, t.auth_time AS since
                 FROM oauth_tokens t
                 WHERE t.user_id = $1 AND t.kind = 'refresh' AND t.revoked_at IS NULL
                   AND t.used_at IS NULL AND t.expires_at > $2
             ) x
             JOIN oauth_apps a ON a.client_id = x.client_id
             GROUP BY a.client_id, a.name
             ORDER BY a.name, a.client_id",
        )
        .bind(user_id)
        .bind(now)
        .bind(idle_before)
        .bind(started_before)
        .fetch_all(self.pool())
        .await
    }
}
