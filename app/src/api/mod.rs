//! The API contract: the data the browser and the server exchange, and the server functions. Each
//! server function is a thin adapter that hands its arguments to one service method (see
//! [`crate::ssr`]); the rules live in the server crate.

mod accounts;
mod error;
mod operator;
mod passkeys;
mod sso;
mod two_factor;

pub use accounts::*;
pub use error::{ApiError, Field, Problem};
pub use operator::*;
pub use passkeys::*;
pub use sso::*;
pub use two_factor::*;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    User,
    Admin,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// A stored role: anything but a known name is an error, never a default.
impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(s: String) -> Result<Role, String> {
        Role::parse(&s).ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// The logged-in person, as the UI shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub company_id: String,
    pub company_name: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: Role,
}

impl Me {
    pub fn display_name(&self) -> String {
        let full = format!("{} {}", self.first_name, self.last_name);
        let full = full.trim();
        if full.is_empty() {
            self.username.clone()
        } else {
            full.to_owned()
        }
    }
}

/// The password step's result when the password was right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginOutcome {
    /// A session cookie was set.
    LoggedIn,
    /// The user has 2FA on: a code is needed before there is a session.
    TwoFactorRequired,
    /// The client requires 2FA and the user has none yet: activation comes first.
    TwoFactorEnrolmentRequired,
}

/// What the password form sends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginForm {
    pub company_id: String,
    pub username: String,
    pub password: String,
}

// The explicit endpoints keep the API's URLs stable for scripts and black-box tests.

#[server(prefix = "/api", endpoint = "login")]
pub async fn login(
    company_id: String,
    username: String,
    password: String,
) -> Result<LoginOutcome, ApiError> {
    crate::ssr::call(|backend, req| async move {
        let form = LoginForm {
            company_id,
            username,
            password,
        };
        backend.auth.login(&req, form).await
    })
    .await
}

#[server(prefix = "/api", endpoint = "me")]
pub async fn current_user() -> Result<Option<Me>, ApiError> {
    crate::ssr::call(|backend, req| async move { backend.auth.current_user(&req).await }).await
}
