//! Clients: the customer companies, keyed by their case-insensitive company ID.

use super::{Store, new_id};
use crate::domain::clock::UnixTime;
use crate::domain::{ClientName, CompanyId};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub id: crate::domain::ClientId,
    pub company_id: String,
    pub name: String,
    pub registration_link_hours: i64,
    pub reset_link_hours: i64,
    pub require_2fa: i64,
    pub active: i64,
    pub sso_issuer: Option<String>,
    pub sso_client_id: Option<String>,
    /// Sealed with a key derived from `SECRET_KEY` (see `sso::settings`).
    pub sso_client_secret: Option<String>,
    pub sso_email_claim: Option<String>,
    pub sso_jit: i64,
    /// Months after which a deactivated user is deleted (1 to 24).
    pub deletion_months: i64,
    /// Months without a login after which a user is deactivated (3 to 36); `None`: never.
    pub inactivity_months: Option<i64>,
    /// Whether the client's users may use passkeys (on by default; never for SSO clients).
    pub passkeys: i64,
}

impl ClientRow {
    pub fn uses_sso(&self) -> bool {
        self.sso_issuer.is_some()
    }

    /// Users are made on their first SSO login (just in time).
    pub fn sso_creates_users(&self) -> bool {
        self.sso_jit != 0
    }

    pub fn requires_2fa(&self) -> bool {
        self.require_2fa != 0
    }

    /// The operators allow passkeys for this client (see also `uses_sso`).
    pub fn allows_passkeys(&self) -> bool {
        self.passkeys != 0
    }

    pub fn is_active(&self) -> bool {
        self.active != 0
    }

    /// The platform's own client (`PLATFORM_COMPANY_ID`), whose operators manage every client.
    /// Company IDs compare case-insensitively, here as everywhere.
    pub fn is_platform(&self, platform: &crate::domain::CompanyId) -> bool {
        self.company_id.to_lowercase() == platform.key()
    }
}

const COLUMNS: &str = "id, company_id, name, registration_link_hours, reset_link_hours, require_2fa, active, sso_issuer, sso_client_id, sso_client_secret, sso_email_claim, sso_jit, deletion_months, inactivity_months, passkeys";

/// Per-client settings an operator may change; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone)]
pub struct ClientChanges {
    pub name: Option<ClientName>,
    pub registration_link_hours: Option<i64>,
    pub reset_link_hours: Option<i64>,
    pub require_2fa: Option<bool>,
    pub deletion_months: Option<i64>,
    /// `Some(None)` turns the inactivity rule off.
    pub inactivity_months: Option<Option<i64>>,
    pub passkeys: Option<bool>,
}

impl Store {
    pub async fn client_by_company_id(
        &self,
        id: &CompanyId,
    ) -> Result<Option<ClientRow>, sqlx::Error> {
        sqlx::query_as::<_, ClientRow>(&format!(
            "SELECT {COLUMNS} FROM clients WHERE company_key = $1"
        ))
        .bind(id.key())
        .fetch_optional(self.pool())
        .await
    }

    pub async fn client_by_id(&self, id: &str) -> Result<Option<ClientRow>, sqlx::Error> {
        sqlx::query_as::<_, ClientRow>(&format!("SELECT {COLUMNS} FROM clients WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// Inserts a client; `Ok(None)` when the company ID is taken (in any spelling).
    pub async fn insert_client(
        &self,
        company_id: &CompanyId,
        name: &ClientName,
        now: UnixTime,
    ) -> Result<Option<ClientRow>, sqlx::Error> {
        let id = new_id();
        let inserted = sqlx::query(
            "INSERT INTO clients (id, company_id, company_key, name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (company_key) DO NOTHING",
        )
        .bind(&id)
        .bind(company_id.as_str())
        .bind(company_id.key())
        .bind(name.as_str())
        .bind(now)
        .execute(self.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        self.client_by_id(&id).await
    }

    /// Applies the given changes; `Ok(None)` when there is no such client.
    pub async fn update_client(
        &self,
        company_id: &CompanyId,
        changes: &ClientChanges,
        now: UnixTime,
    ) -> Result<Option<ClientRow>, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE clients SET
                name = COALESCE($2, name),
                registration_link_hours = COALESCE($3, registration_link_hours),
                reset_link_hours = COALESCE($4, reset_link_hours),
                require_2fa = COALESCE($5, require_2fa),
                updated_at = $6,
                deletion_months = COALESCE($7, deletion_months),
                inactivity_months = CASE WHEN $8 = 1 THEN $9 ELSE inactivity_months END,
                passkeys = COALESCE($10, passkeys)
             WHERE company_key = $1",
        )
        .bind(company_id.key())
        .bind(changes.name.as_ref().map(|n| n.as_str().to_owned()))
        .bind(changes.registration_link_hours)
        .bind(changes.reset_link_hours)
        .bind(changes.require_2fa.map(i64::from))
        .bind(now)
        .bind(changes.deletion_months)
        .bind(i64::from(changes.inactivity_months.is_some()))
        .bind(changes.inactivity_months.flatten())
        .bind(changes.passkeys.map(i64::from))
        .execute(self.pool())
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        self.client_by_company_id(company_id).await
    }
}

impl Store {
    /// A page of clients matching `search` (company ID or name), ordered by company ID.
    pub async fn list_clients(
        &self,
        search: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ClientRow>, i64), sqlx::Error> {
        use sqlx::Row;
        let search = search.trim().to_lowercase();
        let pattern = format!(
            "%{}%",
            search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let filter =
            "($1 = '' OR company_key LIKE $2 ESCAPE '\\' OR LOWER(name) LIKE $2 ESCAPE '\\')";
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM clients WHERE {filter}"))
            .bind(&search)
            .bind(&pattern)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let rows = sqlx::query_as::<_, ClientRow>(&format!(
            "SELECT {COLUMNS} FROM clients WHERE {filter} ORDER BY company_key LIMIT $3 OFFSET $4"
        ))
        .bind(&search)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        Ok((rows, total))
    }

    pub async fn set_client_active(
        &self,
        company_id: &CompanyId,
        active: bool,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("UPDATE clients SET active = $2, updated_at = $3 WHERE company_key = $1")
                .bind(company_id.key())
                .bind(i64::from(active))
                .bind(now)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
