//! The mail outbox: rows written in the transaction of the change that causes them, claimed by a
//! delivery worker with a lease, marked sent or rescheduled.

use super::{Dialect, Store, new_id};
use crate::clock::UnixTime;
use sqlx::AnyConnection;

#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub kind: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: String,
    pub attempts: i64,
}

/// Queues a mail on the given connection (normally inside the caller's transaction).
pub async fn enqueue(
    conn: &mut AnyConnection,
    mail: NewMail<'_>,
    now: UnixTime,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO mail_outbox (id, created_at, recipient, subject, body_text, body_html, client_id,
            user_id, kind, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $2)",
    )
    .bind(&id)
    .bind(now)
    .bind(mail.recipient)
    .bind(mail.subject)
    .bind(mail.body_text)
    .bind(mail.body_html)
    .bind(mail.client_id)
    .bind(mail.user_id)
    .bind(mail.kind)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

impl Store {
    /// Claims up to `limit` due mails for `lease_secs`: no other worker (in any instance) takes them
    /// until the lease ends. One statement, so the claim is atomic on both databases.
    pub async fn claim_mails(
        &self,
        now: UnixTime,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let lock = match self.dialect() {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite has one writer at a time; the UPDATE itself is the lock.
            Dialect::Sqlite => "",
        };
        sqlx::query_as::<_, OutboxRow>(&format!(
            "UPDATE mail_outbox SET locked_until = $1, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM mail_outbox
                 WHERE sent_at IS NULL AND next_attempt_at <= $2
                   AND (locked_until IS NULL OR locked_until <= $2)
                 ORDER BY created_at, id LIMIT $3 {lock})
             RETURNING id, recipient, subject, body_text, body_html, client_id, user_id, kind, attempts"
        ))
        .bind(now + lease_secs)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    pub async fn mark_mail_sent(&self, id: &str, now: UnixTime) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE mail_outbox SET sent_at = $2, locked_until = NULL, last_error = NULL WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn reschedule_mail(
        &self,
        id: &str,
        next_attempt_at: UnixTime,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE mail_outbox SET next_attempt_at = $2, locked_until = NULL, last_error = $3 WHERE id = $1")
            .bind(id)
            .bind(next_attempt_at)
            .bind(error)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Mails not yet sent, and the age in seconds of the oldest.
    pub async fn outbox_depth(&self, now: UnixTime) -> Result<(i64, i64), sqlx::Error> {
        use sqlx::Row;
        let row = sqlx::query("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(self.pool())
            .await?;
        let n: i64 = row.try_get("n")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok((n, oldest.map(|t| now - t).unwrap_or(0)))
    }
}
