//! The mail outbox: rows written in the transaction of the change that causes them, claimed by a
//! delivery worker with a lease, marked sent or rescheduled.
//!
//! Bodies hold live links, so they are written sealed (`Mailer::enqueue` seals them and sets
//! `sealed` to 1) and emptied when the mail is sent. Rows from before migration 0008 have plain
//! bodies and `sealed` 0. The recipient's address and display name are separate columns.

use super::{Dialect, Store, new_id};
use crate::domain::clock::UnixTime;
use sqlx::AnyConnection;

/// A mail to queue, as its sender rendered it.
#[derive(Clone)]
pub struct NewMail<'a> {
    /// The bare address, the mail's one recipient.
    pub recipient: &'a str,
    /// Shown beside the address; never parsed as part of it (may be empty).
    pub recipient_name: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub kind: &'a str,
}

#[derive(Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: String,
    /// The bare address; in rows from before migration 0008, `Name <address>`.
    pub recipient: String,
    pub recipient_name: String,
    pub subject: String,
    /// Sealed when `sealed` is not 0 (see `crate::infra::crypto`).
    pub body_text: String,
    pub body_html: String,
    pub sealed: i64,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: String,
    pub attempts: i64,
}

/// Queues a mail whose bodies are already sealed, on the given connection (normally inside the
/// caller's transaction). Only `Mailer::enqueue` calls this: it seals the bodies first.
pub async fn insert_sealed(
    conn: &mut AnyConnection,
    mail: NewMail<'_>,
    now: UnixTime,
) -> Result<String, sqlx::Error> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO mail_outbox (id, created_at, recipient, recipient_name, subject, body_text,
            body_html, sealed, client_id, user_id, kind, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $2)",
    )
    .bind(&id)
    .bind(now)
    .bind(mail.recipient)
    .bind(mail.recipient_name)
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
             RETURNING id, recipient, recipient_name, subject, body_text, body_html, sealed,
                 client_id, user_id, kind, attempts"
        ))
        .bind(now + lease_secs)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }

    /// Marks a mail sent and drops its bodies: the links in them must not outlive the delivery.
    pub async fn mark_mail_sent(&self, id: &str, now: UnixTime) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE mail_outbox SET sent_at = $2, locked_until = NULL, last_error = NULL,
                 body_text = '', body_html = ''
             WHERE id = $1",
        )
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
