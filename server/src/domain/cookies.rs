//! The cookies' base names and what a flow may ask of them ([`CookieIntent`]); the edge builds
//! the headers (`crate::edge::cookies`).

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
    RememberCompany(crate::domain::CompanyId),
    /// The language the person chose (its code): for a year, or for this browser session only
    /// (`None`, as an application's `ui_locales` asks).
    Language(&'static str, Option<i64>),
}

pub const SESSION: &str = "session";
/// The pending second factor's cookie (its name kept from before the state was so called).
pub const PENDING: &str = "login-challenge";
