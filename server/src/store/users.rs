//! Users: people of one client, unique by (client, case-insensitive user name).

use super::{Store, new_id};
use crate::clock::UnixTime;
use crate::domain::{EmailAddress, PersonName, UserName};
use promio_app::api::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// Created; the password has not been set yet.
    Invited,
    Active,
    Deactivated,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Invited => "invited",
            UserStatus::Active => "active",
            UserStatus::Deactivated => "deactivated",
        }
    }

    fn parse(s: &str) -> UserStatus {
        match s {
            "active" => UserStatus::Active,
            "invited" => UserStatus::Invited,
            // Anything unexpected is treated as the least privileged state.
            _ => UserStatus::Deactivated,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub client_id: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub status: String,
    pub language: String,
    /// The argon2id PHC string; never serialized, never logged.
    pub password_hash: Option<String>,
    pub totp_enabled: i64,
}

impl UserRow {
    pub fn status(&self) -> UserStatus {
        UserStatus::parse(&self.status)
    }

    /// Unknown role strings fall back to the least privileged role.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::User)
    }

    pub fn has_totp(&self) -> bool {
        self.totp_enabled != 0
    }
}

const COLUMNS: &str = "id, client_id, username, email, first_name, last_name, role, status, language, password_hash, totp_enabled";

pub struct NewUser<'a> {
    pub client_id: &'a str,
    pub username: &'a UserName,
    pub email: &'a EmailAddress,
    pub first_name: &'a PersonName,
    pub last_name: &'a PersonName,
    pub role: Role,
    pub language: &'a str,
    /// With a hash the user is Active at once; without, Invited.
    pub password_hash: Option<String>,
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

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
        sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// Inserts a user; `Ok(None)` when the user name is taken in that client.
    pub async fn insert_user(
        &self,
        user: NewUser<'_>,
        now: UnixTime,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        let id = new_id();
        let status = if user.password_hash.is_some() {
            UserStatus::Active
        } else {
            UserStatus::Invited
        };
        let inserted = sqlx::query(
            "INSERT INTO users (id, client_id, username, username_key, email, email_key, first_name,
                last_name, role, status, language, password_hash, password_changed_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
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
        .execute(self.pool())
        .await?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        self.user_by_id(&id).await
    }

    pub async fn set_user_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE users SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(status.as_str())
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
