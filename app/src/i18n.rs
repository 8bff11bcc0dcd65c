//! The UI's two languages. Every text a person reads comes from [`t`] (or from
//! [`crate::api::ApiError::message`]), so adding a text means adding one arm per language here and
//! the compiler points at any language that lacks it.
//!
//! The language is chosen on the server (cookie `lang`, else `Accept-Language`, else English), written
//! into `<html lang>` and read back from there when the page hydrates, so both sides agree.

use serde::{Deserialize, Serialize};

/// Name of the cookie that remembers the language chosen with the switch.
pub const LANG_COOKIE: &str = "lang";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    En,
    De,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::De, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language's own name, as shown in the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// Picks the best supported language from an `Accept-Language` header value, honouring q-values.
    pub fn negotiate(accept_language: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.split(',') {
            let mut parts = item.split(';');
            let Some(tag) = parts.next() else { continue };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_code(tag)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    /// Resolves the language of a request from its `lang` cookie and `Accept-Language` header.
    pub fn for_request(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        cookie
            .and_then(Lang::from_code)
            .or_else(|| accept_language.and_then(Lang::negotiate))
            .unwrap_or_default()
    }
}

/// Every fixed text of the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T {
    AppName,
    LoginTitle,
    CompanyId,
    UserName,
    Password,
    Ok,
    LoginWithSso,
    ForgotPassword,
    LogOut,
    LoggedOut,
    LoggedInAs,
    Company,
    Role,
    RoleUser,
    RoleAdmin,
    RoleOperator,
    Language,
    Working,
    NotFoundTitle,
    NotFoundText,
    BackToLogin,
    Home,
    SessionEnded,
}

pub fn t(lang: Lang, key: T) -> &'static str {
    use Lang::*;
    match (key, lang) {
        (T::AppName, _) => "promio.connect",
        (T::LoginTitle, En) => "Log in",
        (T::LoginTitle, De) => "Anmelden",
        (T::CompanyId, En) => "Company ID",
        (T::CompanyId, De) => "Firmen-ID",
        (T::UserName, En) => "User name",
        (T::UserName, De) => "Benutzername",
        (T::Password, En) => "Password",
        (T::Password, De) => "Passwort",
        (T::Ok, _) => "OK",
        (T::LoginWithSso, En) => "Login with SSO",
        (T::LoginWithSso, De) => "Mit SSO anmelden",
        (T::ForgotPassword, En) => "Forgot your password?",
        (T::ForgotPassword, De) => "Passwort vergessen?",
        (T::LogOut, En) => "Log out",
        (T::LogOut, De) => "Abmelden",
        (T::LoggedOut, En) => "You have been logged out.",
        (T::LoggedOut, De) => "Sie wurden abgemeldet.",
        (T::LoggedInAs, En) => "Logged in as",
        (T::LoggedInAs, De) => "Angemeldet als",
        (T::Company, En) => "Company",
        (T::Company, De) => "Firma",
        (T::Role, En) => "Role",
        (T::Role, De) => "Rolle",
        (T::RoleUser, En) => "User",
        (T::RoleUser, De) => "Benutzer",
        (T::RoleAdmin, En) => "User administrator",
        (T::RoleAdmin, De) => "Benutzeradministrator",
        (T::RoleOperator, En) => "Operator",
        (T::RoleOperator, De) => "Operator",
        (T::Language, En) => "Language",
        (T::Language, De) => "Sprache",
        (T::Working, En) => "Please wait…",
        (T::Working, De) => "Bitte warten…",
        (T::NotFoundTitle, En) => "Page not found",
        (T::NotFoundTitle, De) => "Seite nicht gefunden",
        (T::NotFoundText, En) => "There is no page at this address.",
        (T::NotFoundText, De) => "Unter dieser Adresse gibt es keine Seite.",
        (T::BackToLogin, En) => "To the login page",
        (T::BackToLogin, De) => "Zur Anmeldeseite",
        (T::Home, En) => "Start",
        (T::Home, De) => "Start",
        (T::SessionEnded, En) => "Your session has ended. Please log in again.",
        (T::SessionEnded, De) => "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_honours_quality_values() {
        assert_eq!(Lang::negotiate("de-DE,de;q=0.9,en;q=0.8"), Some(Lang::De));
        assert_eq!(Lang::negotiate("fr-FR, en;q=0.5, de;q=0.7"), Some(Lang::De));
        assert_eq!(Lang::negotiate("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(Lang::negotiate("fr, it"), None);
        assert_eq!(Lang::negotiate("de;q=0"), None);
        assert_eq!(Lang::negotiate(""), None);
    }

    #[test]
    fn the_cookie_wins_over_the_header() {
        assert_eq!(Lang::for_request(Some("de"), Some("en")), Lang::De);
        assert_eq!(Lang::for_request(Some("xx"), Some("de")), Lang::De);
        assert_eq!(Lang::for_request(None, None), Lang::En);
    }
}
