//! The audit log: append-only rows of who did what, when, from where.

use super::{Store, new_id};
use crate::clock::UnixTime;

#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub client_id: Option<&'a str>,
    pub actor_user_id: Option<&'a str>,
    pub subject_user_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    /// A reason for the record, never shown to the user it concerns and never a secret.
    pub detail: &'a str,
    pub ip: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub created_at: i64,
    pub client_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub detail: String,
    pub ip: Option<String>,
}

impl Store {
    pub async fn record(&self, event: AuditEvent<'_>, now: UnixTime) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO audit_events (id, created_at, client_id, actor_user_id, subject_user_id,
                action, outcome, detail, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new_id())
        .bind(now)
        .bind(event.client_id)
        .bind(event.actor_user_id)
        .bind(event.subject_user_id)
        .bind(event.action)
        .bind(event.outcome)
        .bind(event.detail)
        .bind(event.ip)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The newest events of a client (or of the platform when `None`), newest first.
    pub async fn audit_events(
        &self,
        client_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, sqlx::Error> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT created_at, client_id, actor_user_id, subject_user_id, action, outcome, detail, ip
             FROM audit_events WHERE ($1 IS NULL OR client_id = $1)
             ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(client_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }
}
