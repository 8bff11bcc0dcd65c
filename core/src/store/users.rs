//! Users: people of one client, unique by (client, case-insensitive user name).

use super::{Store, new_id};
use crate::domain::Role;
use crate::domain::clock::UnixTime;
use crate::domain::{ClientId, EmailAddress, PersonName, UserId, UserName};
use sqlx::AnyConnection;

pub use crate::domain::UserStatus;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub client_id: ClientId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    #[sqlx(try_from = "String")]
    pub status: UserStatus,
    pub language: String,
    /// The argon2id PHC string; never serialized, never logged.
    pub password_hash: Option<String>,
    pub totp_enabled: i64,
    /// When the user was deactivated (the deletion date counts from it).
    pub deactivated_at: Option<i64>,
    /// How many passkeys the user has.
    pub passkeys: i64,
    /// When the email address was last shown to be the user's (see [`UserRow::email_verified`]).
    pub email_verified_at: Option<i64>,
}

impl UserRow {
    pub fn status(&self) -> UserStatus {
        self.status
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn has_totp(&self) -> bool {
        self.totp_enabled != 0
    }

    pub fn has_passkeys(&self) -> bool {
        self.passkeys > 0
    }

    /// The address as the store keys it (as [`EmailAddress::key`] makes it).
    pub fn email_key(&self) -> String {
        self.email.to_lowercase()
    }

    /// Whether the email address was shown to be the user's, or vouched for by the platform: a
    /// password set through a link mailed to it, a login through the company's identity provider
    /// with it, or a user made at the command line with a password. An address a client's
    /// administrator entered or changed is not, until one of those follows.
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }
}

/// The columns of a [`UserRow`], for every query that reads one.
pub(super) const COLUMNS: &str = "id, client_id, username, email, first_name, last_name, role, status, language, password_hash, totp_enabled, deactivated_at, (SELECT COUNT(*) FROM passkeys p WHERE p.user_id = users.id) AS passkeys, email_verified_at";

pub struct NewUser<'a> {
    pub client_id: &'a str,
    pub username: &'a UserName,
    pub email: &'a EmailAddress,
    pub first_name: &'a PersonName,
    pub last_name: &'a PersonName,
    pub role: Role,
    pub language: &'a str,
    pub password_hash: Option<String>,
    pub status: UserStatus,
    /// The platform vouches for the address (a user made at the command line with a password).
    pub email_verified: bool,
}

impl Store {
    pub async fn user_by_name(
        &self,
        client_id: &str,
        username: &UserName,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {COLUMNS} FROM users WHERE client_id = $1 AND username_key = $2"
        ))
        .bind(client_id)
        .bind(username.key())
        .fetch_optional(self.pool())
        .await
    }

    /// A user by id alone: only for the row-scoped and client-scoped lookups below.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// The user a row of ours names (a session, a link, a passkey, a token, or the user row read
    /// again): the row is the scope, since only the store makes rows.
    pub async fn user_of<R: NamesUser + ?Sized>(
        &self,
        row: &R,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        self.user_by_id(row.named_user()).await
    }

    /// A user by an id from outside, within one client, or within every client (`None`, the
    /// operators' scope). Only `crate::idm::directory` may call this (clippy.toml says so): the
    /// rest of the server reaches users by id through a `Directory`, which has its scope from a
    /// principal.
    pub async fn user_in_scope(
        &self,
        client_id: Option<&ClientId>,
        id: &str,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        let Some(client_id) = client_id else {
            return self.user_by_id(id).await;
        };
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1 AND client_id = $2"
        ))
        .bind(id)
        .bind(client_id)
        .fetch_optional(self.pool())
        .await
    }

    /// The users of a client with this email address (case-insensitive), in any status.
    pub async fn users_by_email(
        &self,
        client_id: &str,
        email_key: &str,
    ) -> Result<Vec<UserRow>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {COLUMNS} FROM users WHERE client_id = $1 AND email_key = $2 ORDER BY username_key"
        ))
        .bind(client_id)
        .bind(email_key)
        .fetch_all(self.pool())
        .await
    }

    /// Inserts a user; `Ok(None)` when the user name is taken in that client.
    pub async fn insert_user(
        &self,
        user: NewUser<'_>,
        now: UnixTime,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        let mut conn = self.pool().acquire().await?;
        insert(&mut conn, user, now).await
    }

    pub async fn set_user_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        // Deactivation starts the count to deletion; reactivation stops it and counts as
        // activity (the inactivity rule starts again).
        let done = sqlx::query(
            "UPDATE users SET status = $2, updated_at = $3, deletion_warned_at = NULL,
                 deactivated_at = CASE WHEN $2 = 'deactivated' THEN COALESCE(deactivated_at, $3) END,
                 last_activity_at = CASE WHEN $2 = 'deactivated' THEN last_activity_at ELSE $3 END,
                 inactivity_warned_at = CASE WHEN $2 = 'deactivated' THEN inactivity_warned_at END
             WHERE id = $1",
        )
            .bind(user_id)
            .bind(status.as_str())
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Inserts a user on the given connection; `Ok(None)` when the user name is taken in that client.
pub async fn insert(
    conn: &mut AnyConnection,
    user: NewUser<'_>,
    now: UnixTime,
) -> Result<Option<UserRow>, sqlx::Error> {
    let id = new_id();
    let status = user.status;
    let inserted = sqlx::query(
        "INSERT INTO users (id, client_id, username, username_key, email, email_key, first_name,
            last_name, role, status, language, password_hash, password_changed_at, created_at, updated_at,
            last_activity_at, email_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $14, $15)
         ON CONFLICT (client_id, username_key) DO NOTHING",
    )
    .bind(&id)
    .bind(user.client_id)
    .bind(user.username.as_str())
    .bind(user.username.key())
    .bind(user.email.as_str())
    .bind(user.email.key())
    .bind(user.first_name.as_str())
    .bind(user.last_name.as_str())
    .bind(user.role.as_str())
    .bind(status.as_str())
    .bind(user.language)
    .bind(user.password_hash.as_deref())
    .bind(user.password_hash.as_ref().map(|_| now))
    .bind(now)
    .bind(user.email_verified.then_some(now))
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    by_id(conn, &id).await
}

pub async fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

/// Sets a password hash through a link mailed to the user; an invited user becomes active. The
/// link shows the address it was mailed to (`sent_to_key`) to be the user's, if that is still
/// the user's address: an email change voids the open links (see [`Store::update_user_profile`]),
/// and a link made while the change went through was still mailed to the old one.
pub async fn set_password_through_link(
    conn: &mut AnyConnection,
    user_id: &str,
    hash: &str,
    sent_to_key: Option<&str>,
    now: UnixTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3,
            email_verified_at = CASE WHEN email_key = $4 THEN $3 ELSE email_verified_at END,
            status = CASE WHEN status = 'invited' THEN 'active' ELSE status END
         WHERE id = $1",
    )
    .bind(user_id)
    .bind(hash)
    .bind(now)
    .bind(sent_to_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Filters for a page of a client's users.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Matched against user name, email, first and last name, case-insensitively.
    pub search: String,
    pub status: Option<UserStatus>,
    pub limit: i64,
    pub offset: i64,
}

fn like_pattern(search: &str) -> String {
    let escaped = search
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

const FILTER: &str = "client_id = $1
    AND ($2 = '' OR username_key LIKE $3 ESCAPE '\\' OR email_key LIKE $3 ESCAPE '\\'
         OR LOWER(first_name) LIKE $3 ESCAPE '\\' OR LOWER(last_name) LIKE $3 ESCAPE '\\'
         OR LOWER(first_name || ' ' || last_name) LIKE $3 ESCAPE '\\')
    AND ($4 = '' OR status = $4)";

impl Store {
    /// A page of a client's users, ordered by user name, and the number of all that match.
    pub async fn list_users(
        &self,
        client_id: &str,
        filter: &UserFilter,
    ) -> Result<(Vec<UserRow>, i64), sqlx::Error> {
        use sqlx::Row;
        let search = filter.search.trim().to_owned();
        let pattern = like_pattern(&search);
        let status = filter.status.map(|s| s.as_str()).unwrap_or("");
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM users WHERE {FILTER}"))
            .bind(client_id)
            .bind(&search)
            .bind(&pattern)
            .bind(status)
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let rows = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {COLUMNS} FROM users WHERE {FILTER} ORDER BY username_key LIMIT $5 OFFSET $6"
        ))
        .bind(client_id)
        .bind(&search)
        .bind(&pattern)
        .bind(status)
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(self.pool())
        .await?;
        Ok((rows, total))
    }

    /// Whether any operator exists (in any status).
    pub async fn has_operator(&self) -> Result<bool, sqlx::Error> {
        let row = sqlx::query("SELECT 1 AS one FROM users WHERE role = 'operator' LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// How many users a client has.
    pub async fn count_users(&self, client_id: &str) -> Result<i64, sqlx::Error> {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM users WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }

    /// Changes a user's names, email and role. A new address is not shown to be the user's, and
    /// the links mailed to the old one are void: all in one transaction, so that no link sent
    /// before the change sets a password after it.
    pub async fn update_user_profile(
        &self,
        user_id: &str,
        first_name: &PersonName,
        last_name: &PersonName,
        email: &EmailAddress,
        role: Role,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        // The links first, then the user: the order in which a link's use takes them, so that
        // the two never wait on each other (PostgreSQL would abort one as a deadlock).
        sqlx::query(
            "UPDATE link_tokens SET superseded_at = $2
             WHERE user_id = $1 AND used_at IS NULL AND superseded_at IS NULL
               AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND email_key <> $3)",
        )
        .bind(user_id)
        .bind(now)
        .bind(email.key())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE users SET first_name = $2, last_name = $3, email = $4,
                email_verified_at = CASE WHEN email_key = $5 THEN email_verified_at ELSE NULL END,
                email_key = $5, role = $6, updated_at = $7
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(first_name.as_str())
        .bind(last_name.as_str())
        .bind(email.as_str())
        .bind(email.key())
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The user's own new password (the Security page), in one transaction with its
    /// consequences: every other session of the user ends, and so does every login still at its
    /// second step and every application token issued outside `keep_session` (offline access
    /// among them). Returns how many sessions ended and how many tokens were revoked.
    pub async fn change_own_password(
        &self,
        user_id: &str,
        hash: &str,
        keep_session: &str,
        now: UnixTime,
    ) -> Result<(u64, u64), sqlx::Error> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM login_challenges WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let revoked = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = $3
             WHERE user_id = $1 AND revoked_at IS NULL
               AND (session_hash IS NULL OR session_hash <> $2)",
        )
        .bind(user_id)
        .bind(keep_session)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((ended, revoked))
    }

    /// The user logged in through the company's identity provider with the address whose key is
    /// `email_key`: the provider vouched for it, if it is still the user's.
    pub async fn email_verified_by_provider(
        &self,
        user_id: &str,
        email_key: &str,
        now: UnixTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE users SET email_verified_at = $2
             WHERE id = $1 AND email_key = $3 AND email_verified_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .bind(email_key)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// Rows that name a user ([`Store::user_of`]). Sealed: only the store's own rows are such.
pub trait NamesUser: sealed::Sealed + Sync {
    fn named_user(&self) -> &str;
}

pub(in crate::store) mod sealed {
    pub trait Sealed {}
}

macro_rules! names_user {
    ($($row:ty),*) => {$(
        impl sealed::Sealed for $row {}
        impl NamesUser for $row {
            fn named_user(&self) -> &str {
                self.user_id.as_ref()
            }
        }
    )*};
}

names_user!(
    crate::store::sessions::SessionRow,
    crate::store::sessions::PendingRow,
    crate::store::links::LinkRow,
    crate::store::passkeys::PasskeyRow,
    crate::store::oauth_tokens::CodeRow,
    crate::store::oauth_tokens::TokenRow
);

impl sealed::Sealed for UserRow {}
impl NamesUser for UserRow {
    fn named_user(&self) -> &str {
        self.id.as_str()
    }
}

impl crate::domain::audit::Account for UserRow {
    fn account_ids(&self) -> (&crate::domain::UserId, &crate::domain::ClientId) {
        (&self.id, &self.client_id)
    }
}
