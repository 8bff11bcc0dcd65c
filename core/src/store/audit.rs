//! The audit log's rows: appended (see [`crate::domain::audit`] for what an event is), searched and
//! listed, never changed.

use super::{Store, new_id};
use crate::domain::audit::{Event, clean_text};
use crate::domain::clock::UnixTime;

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

/// A user an audit row names (its actor or subject): the row is the scope of the lookup
/// (`Store::user_of`), whichever client the user belongs to (an operator acting on a client).
pub struct NamedInLog<'a>(&'a str);

impl AuditRow {
    pub fn actor(&self) -> Option<NamedInLog<'_>> {
        self.actor_user_id.as_deref().map(NamedInLog)
    }

    pub fn subject(&self) -> Option<NamedInLog<'_>> {
        self.subject_user_id.as_deref().map(NamedInLog)
    }
}

impl crate::store::users::sealed::Sealed for NamedInLog<'_> {}

impl crate::store::users::NamesUser for NamedInLog<'_> {
    fn named_user(&self) -> &str {
        self.0
    }
}

/// Filters of the audit log view.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// `None`: every client (operators only).
    pub client_id: Option<String>,
    /// A user id the event is about or by.
    pub user_id: Option<String>,
    /// An action, or the start of one (`login.` finds every login event).
    pub action: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

impl Store {
    /// Events matching the filter, newest first, and how many match in all.
    pub async fn search_audit(&self, f: &AuditFilter) -> Result<(Vec<AuditRow>, i64), sqlx::Error> {
        use sqlx::Row;
        let action = format!(
            "{}%",
            f.action
                .trim()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let filter = "($1 IS NULL OR client_id = $1)
            AND ($2 IS NULL OR actor_user_id = $2 OR subject_user_id = $2)
            AND action LIKE $3 ESCAPE '\\'
            AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5)";
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM audit_events WHERE {filter}"
        ))
        .bind(f.client_id.as_deref())
        .bind(f.user_id.as_deref())
        .bind(&action)
        .bind(f.from)
        .bind(f.to)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let rows = sqlx::query_as::<_, AuditRow>(&format!(
            "SELECT created_at, client_id, actor_user_id, subject_user_id, action, outcome, detail, ip
             FROM audit_events WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(f.client_id.as_deref())
        .bind(f.user_id.as_deref())
        .bind(&action)
        .bind(f.from)
        .bind(f.to)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(self.pool())
        .await?;
        Ok((rows, total))
    }

    /// Appends an event. Its detail is cleaned first ([`clean_text`], 500 characters at most),
    /// whatever its source.
    pub async fn record(&self, event: Event<'_>, now: UnixTime) -> Result<(), sqlx::Error> {
        let detail = clean_text(event.detail, 500);
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
        .bind(event.action.name())
        .bind(event.outcome.as_str())
        .bind(&detail)
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
