//! Single sign-on: a client's identity provider settings, the email domains routed to it, the
//! round trips in progress (`sso_flows`), and the identity at the provider (issuer and subject)
//! that each user's account is bound to (`users.sso_issuer`, `users.sso_subject`).

use super::Store;
use super::clients::ClientRow;
use crate::domain::CompanyId;
use crate::domain::clock::UnixTime;

/// A client's identity provider, as stored (the secret sealed).
#[derive(Debug, Clone)]
pub struct SsoSettingsRow {
    pub issuer: String,
    pub client_id: String,
    pub sealed_secret: String,
    pub email_claim: String,
    pub jit: bool,
}

/// Why SSO settings were not stored.
#[derive(Debug)]
pub enum SetSsoError {
    NoSuchClient,
    /// The domain belongs to another client.
    DomainTaken(String),
    Database(sqlx::Error),
}

impl From<sqlx::Error> for SetSsoError {
    fn from(e: sqlx::Error) -> Self {
        SetSsoError::Database(e)
    }
}

/// A round trip to an identity provider, as started.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SsoFlowRow {
    pub client_id: String,
    pub issuer: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub email: String,
    pub created_at: i64,
}

pub struct NewFlow<'a> {
    pub id_hash: &'a str,
    pub client_id: &'a str,
    pub issuer: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub email: &'a str,
}

/// The identity at an identity provider that an account is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoBinding {
    pub issuer: String,
    pub subject: String,
}

#[derive(sqlx::FromRow)]
struct BindingColumns {
    sso_issuer: Option<String>,
    sso_subject: Option<String>,
}

impl Store {
    /// Sets (or with `None` removes) a client's identity provider and its email domains, in one
    /// transaction: either all of it is stored or nothing. With SSO on, every open registration
    /// and password-reset link of the client's users becomes void in the same transaction: its
    /// users have no password from then on, and a link mailed before must not set one should SSO
    /// be turned off again. When SSO is turned on (it was off), the users' sessions, pending
    /// second factors and passkey ceremonies end in the same transaction too.
    pub async fn set_client_sso(
        &self,
        company_id: &CompanyId,
        settings: Option<&SsoSettingsRow>,
        domains: &[String],
        now: UnixTime,
    ) -> Result<ClientRow, SetSsoError> {
        use sqlx::Row;
        let mut tx = self.pool().begin().await?;
        let current = sqlx::query("SELECT id, sso_issuer FROM clients WHERE company_key = $1")
            .bind(company_id.key())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Err(SetSsoError::NoSuchClient);
        };
        let client_id: String = current.try_get("id")?;
        let had_sso = current
            .try_get::<Option<String>, _>("sso_issuer")?
            .is_some();
        sqlx::query(
            "UPDATE clients SET sso_issuer = $2, sso_client_id = $3, sso_client_secret = $4,
                sso_email_claim = $5, sso_jit = $6, updated_at = $7
             WHERE id = $1",
        )
        .bind(&client_id)
        .bind(settings.map(|s| s.issuer.clone()))
        .bind(settings.map(|s| s.client_id.clone()))
        .bind(settings.map(|s| s.sealed_secret.clone()))
        .bind(settings.map(|s| s.email_claim.clone()))
        .bind(i64::from(settings.is_some_and(|s| s.jit)))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM client_sso_domains WHERE client_id = $1")
            .bind(&client_id)
            .execute(&mut *tx)
            .await?;
        // Bindings to another issuer (or to any, when SSO goes off) name identities that can no
        // longer log in here: released, so that the next login binds anew.
        sqlx::query(
            "UPDATE users SET sso_issuer = NULL, sso_subject = NULL
             WHERE client_id = $1 AND sso_issuer IS NOT NULL
               AND ($2 IS NULL OR sso_issuer <> $2)",
        )
        .bind(&client_id)
        .bind(settings.map(|s| s.issuer.clone()))
        .execute(&mut *tx)
        .await?;
        if settings.is_some() && !had_sso {
            // Turned on: its users log in through the identity provider from now on, so what
            // their passwords and second factors opened ends here (sessions, pending second
            // factors, passkey ceremonies).
            super::sessions::end_client_logins_in(&mut tx, &client_id).await?;
        }
        if settings.is_some() {
            sqlx::query(
                "UPDATE link_tokens SET superseded_at = $2
                 WHERE used_at IS NULL AND superseded_at IS NULL
                   AND user_id IN (SELECT id FROM users WHERE client_id = $1)",
            )
            .bind(&client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for domain in domains {
                let inserted = sqlx::query(
                    "INSERT INTO client_sso_domains (domain, client_id) VALUES ($1, $2)
                     ON CONFLICT (domain) DO NOTHING",
                )
                .bind(domain)
                .bind(&client_id)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Err(SetSsoError::DomainTaken(domain.clone()));
                }
            }
        }
        tx.commit().await?;
        self.client_by_id(&client_id)
            .await?
            .ok_or(SetSsoError::NoSuchClient)
    }

    /// The client's SSO email domains, sorted.
    pub async fn sso_domains(&self, client_id: &str) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar::<_, String>(
            "SELECT domain FROM client_sso_domains WHERE client_id = $1 ORDER BY domain",
        )
        .bind(client_id)
        .fetch_all(self.pool())
        .await
    }

    /// The client that an email domain (lower case) is routed to.
    pub async fn client_by_sso_domain(
        &self,
        domain: &str,
    ) -> Result<Option<ClientRow>, sqlx::Error> {
        let id = sqlx::query_scalar::<_, String>(
            "SELECT client_id FROM client_sso_domains WHERE domain = $1",
        )
        .bind(domain)
        .fetch_optional(self.pool())
        .await?;
        match id {
            Some(id) => self.client_by_id(&id).await,
            None => Ok(None),
        }
    }

    /// Stores a flow, and forgets flows older than `purge_before` (they can no longer finish).
    pub async fn insert_sso_flow(
        &self,
        flow: NewFlow<'_>,
        now: UnixTime,
        purge_before: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM sso_flows WHERE created_at < $1")
            .bind(purge_before)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO sso_flows (id_hash, client_id, issuer, state, nonce, pkce_verifier, email,
                created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(flow.id_hash)
        .bind(flow.client_id)
        .bind(flow.issuer)
        .bind(flow.state)
        .bind(flow.nonce)
        .bind(flow.pkce_verifier)
        .bind(flow.email)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes and returns the flow: a flow can be finished once, whatever the outcome. Of two
    /// concurrent callbacks with the same cookie, one gets the row.
    pub async fn take_sso_flow(&self, id_hash: &str) -> Result<Option<SsoFlowRow>, sqlx::Error> {
        sqlx::query_as::<_, SsoFlowRow>(
            "DELETE FROM sso_flows WHERE id_hash = $1
             RETURNING client_id, issuer, state, nonce, pkce_verifier, email, created_at",
        )
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await
    }

    /// The identity an account is bound to, if any.
    pub async fn sso_binding(&self, user_id: &str) -> Result<Option<SsoBinding>, sqlx::Error> {
        let row = sqlx::query_as::<_, BindingColumns>(
            "SELECT sso_issuer, sso_subject FROM users WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|r| match (r.sso_issuer, r.sso_subject) {
            (Some(issuer), Some(subject)) => Some(SsoBinding { issuer, subject }),
            _ => None,
        }))
    }

    /// Binds an account that is not bound yet to an identity, unless another account of the same
    /// client is bound to it: one statement, so of two concurrent first logins one binds. `true`
    /// when this call bound it.
    pub async fn bind_sso_identity(
        &self,
        user_id: &str,
        binding: &SsoBinding,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE users SET sso_issuer = $2, sso_subject = $3, updated_at = $4
             WHERE id = $1 AND sso_subject IS NULL
               AND NOT EXISTS (
                   SELECT 1 FROM users holder
                   WHERE holder.client_id = users.client_id
                     AND holder.sso_issuer = $2 AND holder.sso_subject = $3)",
        )
        .bind(user_id)
        .bind(&binding.issuer)
        .bind(&binding.subject)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases an account's binding (its next SSO login binds it again); returns what it was
    /// bound to.
    pub async fn release_sso_binding(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Option<SsoBinding>, sqlx::Error> {
        let before = self.sso_binding(user_id).await?;
        if before.is_some() {
            sqlx::query(
                "UPDATE users SET sso_issuer = NULL, sso_subject = NULL, updated_at = $2
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(now)
            .execute(self.pool())
            .await?;
        }
        Ok(before)
    }
}
