//! The API contract: the data the browser and the server exchange (the server functions that
//! carry it are `promio_app::api`'s), the contract's error and its texts in every language
//! ([`i18n`]). Both the browser's WASM and the server's core build on it; it knows neither.

pub mod i18n;

mod accounts;
mod applications;
mod error;
mod operator;
mod passkeys;
mod two_factor;

pub use accounts::*;
pub use applications::*;
pub use error::{ApiError, Field, Problem};
pub use operator::*;
pub use passkeys::*;
pub use two_factor::*;

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
    /// Seconds until the session ends unless it is used again (for the idle-timeout warning).
    pub session_ends_in_secs: u64,
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

impl LoginOutcome {
    /// The page the login goes on to.
    pub fn next_page(self) -> &'static str {
        match self {
            LoginOutcome::LoggedIn => "/home",
            LoginOutcome::TwoFactorRequired => "/login/two-factor",
            LoginOutcome::TwoFactorEnrolmentRequired => "/login/two-factor-setup",
        }
    }
}

/// A value on its way from the server's render to the page's script (a resource's result, a
/// [`FormFlash`]), as JSON read with `serde_json::from_slice`: the way server functions read
/// their answers, so the browser's code that reads a type exists once, not once per way of
/// reading JSON (the login page's WASM has a size budget). Use with `Resource::new_str` and
/// `SharedValue::new_str`.
#[derive(Clone, Debug, PartialEq)]
pub struct Carried<T>(pub T);

impl<T: Serialize> std::fmt::Display for Carried<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(&self.0).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

impl<T: serde::de::DeserializeOwned> std::str::FromStr for Carried<T> {
    type Err = serde_json::Error;

    fn from_str(text: &str) -> Result<Carried<T>, serde_json::Error> {
        serde_json::from_slice(text.as_bytes()).map(Carried)
    }
}

/// What a form posted without the page's script comes back to its page with: the error and the
/// typed values to show again (never a password or code). The server's form route sets it as a
/// short-lived HttpOnly cookie ([`FORM_FLASH_COOKIE`]) and redirects to the page, which takes it
/// while it renders; so the page's address stays clean and a reload starts afresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormFlash {
    /// The path of the page whose form it answers.
    pub page: String,
    pub error: ApiError,
    pub values: Vec<(String, String)>,
}

/// The cookie that carries a [`FormFlash`] (`__Host-` prefixed over https).
pub const FORM_FLASH_COOKIE: &str = "form-flash";

impl FormFlash {
    /// A value the form came back with.
    pub fn value(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    }

    /// The cookie value: the JSON in hex (only characters a cookie value may hold).
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        json.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A cookie value read back, for `page`. Anything else (malformed, another page's, an error
    /// with a text from outside) is `None`.
    pub fn decode(text: &str, page: &str) -> Option<FormFlash> {
        if !text.len().is_multiple_of(2) || text.len() > 8192 {
            return None;
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let flash: FormFlash = serde_json::from_slice(&bytes).ok()?;
        if flash.page != page {
            return None;
        }
        Some(FormFlash {
            error: flash.error.shown_from_outside()?,
            ..flash
        })
    }
}

/// The cookie with the company ID of the last successful login in this browser (and nothing else).
pub const COMPANY_COOKIE: &str = "promio_company";

/// What the password form sends.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginForm {
    pub company_id: String,
    pub username: String,
    pub password: String,
}

// The explicit endpoints keep the API's URLs stable for scripts and black-box tests.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_flash_survives_its_cookie_for_its_own_page_only() {
        let flash = FormFlash {
            page: "/login".into(),
            error: ApiError::LoginFailed {
                retry_after_secs: None,
            },
            values: vec![
                ("company_id".into(), "ACME".into()),
                ("username".into(), "Renée; \"x\"".into()),
            ],
        };
        let encoded = flash.encode();
        assert!(encoded.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(FormFlash::decode(&encoded, "/login"), Some(flash.clone()));
        assert_eq!(flash.value("username").as_deref(), Some("Renée; \"x\""));
        assert_eq!(flash.value("password"), None);
        assert_eq!(FormFlash::decode(&encoded, "/sso"), None, "another page's");
        for bad in ["", "0", "zz", &encoded[..encoded.len() - 2]] {
            assert_eq!(FormFlash::decode(bad, "/login"), None, "{bad:?}");
        }
        let outside = FormFlash {
            error: ApiError::BadRequest("Call +1 555 0100".into()),
            ..flash
        };
        assert_eq!(FormFlash::decode(&outside.encode(), "/login"), None);
    }
}
