//! The cookies' base names and what a flow may ask of them ([`CookieIntent`]); the edge builds
//! the headers (`promio_app::edge::cookies`).

use secrecy::SecretString;

/// A cookie a flow wants set or cleared; the edge turns it into a `Set-Cookie` header, so flows
/// never touch HTTP.
pub enum CookieIntent {
    /// A new session: the token only the browser will hold.
    Session(SecretString),
    /// The state between the password and the second factor, for so many seconds.
    PendingSecondFactor(SecretString, i64),
    /// Another short-lived cookie (the SSO round trip's), under its base name.
    ShortLived(&'static str, SecretString, i64),
    /// Makes the browser forget the cookie of that base name.
    Clear(&'static str),
    /// The company ID a login on this browser last succeeded with, for the login form to fill in
    /// next time.
    RememberCompany(RememberedCompany),
    /// The language the person chose (its code): for a year, or for this browser session only
    /// (`None`, as an application's `ui_locales` asks).
    Language(&'static str, Option<i64>),
}

pub const SESSION: &str = "session";
/// The pending second factor's cookie (its name kept from before the state was so called).
pub const PENDING: &str = "login-challenge";

/// A company ID as the remembered-company cookie may hold it: 2 to 32 ASCII letters, digits, `-`
/// or `_` (what the login page's script reads back). Any other ID is not remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedCompany(String);

impl RememberedCompany {
    pub fn parse(company_id: &str) -> Option<RememberedCompany> {
        let id = company_id.trim();
        let well_formed = (2..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        well_formed.then(|| RememberedCompany(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
