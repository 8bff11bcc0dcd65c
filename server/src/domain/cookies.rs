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
}

pub const SESSION: &str = "session";
/// The pending second factor's cookie (its name kept from before the state was so called).
pub const PENDING: &str = "login-challenge";
