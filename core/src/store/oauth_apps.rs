//! Registered applications (the OpenID Provider's relying parties): one row each in `oauth_apps`,
//! the secret only as its SHA-256 (see `crate::idm::apps` for the rules).

use super::Store;
use crate::domain::clock::UnixTime;

/// A registered application as stored, with the company ID of the client it is bound to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthAppRow {
    pub client_id: String,
    pub name: String,
    /// SHA-256 hex of the client secret; `None` for a public client.
    pub secret_hash: Option<String>,
    /// JSON array of exact strings.
    pub redirect_uris: String,
    /// JSON array of exact strings.
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: Option<String>,
    pub client_row_id: Option<String>,
    /// The bound client's company ID (from `clients`), when bound.
    pub company_id: Option<String>,
    pub pkce_required: i64,
    pub created_at: i64,
}

/// What is inserted for a new application.
#[derive(Debug, Clone)]
pub struct NewOAuthApp<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub secret_hash: Option<&'a str>,
    pub redirect_uris: &'a str,
    pub post_logout_redirect_uris: &'a str,
    pub backchannel_logout_uri: Option<&'a str>,
    pub client_row_id: Option<&'a str>,
    /// Whether the authorization request must carry a PKCE challenge.
    pub pkce_required: bool,
}

const COLUMNS: &str = "a.client_id, a.name, a.secret_hash, a.redirect_uris, \
     a.post_logout_redirect_uris, a.backchannel_logout_uri, a.client_row_id, \
     c.company_id AS company_id, a.pkce_required, a.created_at";

impl Store {
    /// Inserts an application.
    pub async fn insert_oauth_app(
        &self,
        app: &NewOAuthApp<'_>,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO oauth_apps (client_id, name, secret_hash, redirect_uris,
                 post_logout_redirect_uris, backchannel_logout_uri, client_row_id, pkce_required,
                 created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(app.client_id)
        .bind(app.name)
        .bind(app.secret_hash)
        .bind(app.redirect_uris)
        .bind(app.post_logout_redirect_uris)
        .bind(app.backchannel_logout_uri)
        .bind(app.client_row_id)
        .bind(i64::from(app.pkce_required))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every application, oldest first.
    pub async fn oauth_apps(&self) -> Result<Vec<OAuthAppRow>, sqlx::Error> {
        sqlx::query_as::<_, OAuthAppRow>(&format!(
            "SELECT {COLUMNS} FROM oauth_apps a LEFT JOIN clients c ON c.id = a.client_row_id
             ORDER BY a.created_at, a.client_id"
        ))
        .fetch_all(self.pool())
        .await
    }

    pub async fn oauth_app(&self, client_id: &str) -> Result<Option<OAuthAppRow>, sqlx::Error> {
        sqlx::query_as::<_, OAuthAppRow>(&format!(
            "SELECT {COLUMNS} FROM oauth_apps a LEFT JOIN clients c ON c.id = a.client_row_id
             WHERE a.client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(self.pool())
        .await
    }

    /// Deletes an application with everything issued to it (codes, tokens, participations,
    /// pending requests, undelivered logout tokens), in one transaction; false when unknown.
    pub async fn delete_oauth_app(&self, client_id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        for table in [
            "oauth_requests",
            "oauth_codes",
            "oauth_tokens",
            "oauth_participations",
            "oauth_logout_outbox",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE client_id = $1"))
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM oauth_apps WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a confidential application's authorization requests must carry a PKCE challenge;
    /// false for an unknown or public application (a public one always must).
    pub async fn set_oauth_app_pkce(
        &self,
        client_id: &str,
        required: bool,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE oauth_apps SET pkce_required = $2
             WHERE client_id = $1 AND secret_hash IS NOT NULL",
        )
        .bind(client_id)
        .bind(i64::from(required))
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a confidential application's secret hash; false when the application is unknown
    /// or public (a public client never gets a secret).
    pub async fn set_oauth_app_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE oauth_apps SET secret_hash = $2
             WHERE client_id = $1 AND secret_hash IS NOT NULL",
        )
        .bind(client_id)
        .bind(secret_hash)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
