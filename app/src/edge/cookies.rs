//! Every cookie the server sets is built here. Over https the names carry the `__Host-` prefix
//! (which forces Secure, Path=/ and no Domain); plain names are only used for http on localhost.

use cookie::{Cookie, SameSite};
use http::HeaderValue;
pub use promio_core::domain::cookies::{CookieIntent, PENDING, RememberedCompany, SESSION};
use promio_core::idm::Core;
use secrecy::ExposeSecret;

#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub https: bool,
}

impl CookiePolicy {
    /// The policy of this server: `__Host-` names and Secure over https.
    pub fn of(core: &Core) -> CookiePolicy {
        CookiePolicy {
            https: core.settings.is_https(),
        }
    }

    pub fn name(&self, base: &str) -> String {
        if self.https {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    fn build(&self, base: &str, value: String, max_age: Option<i64>) -> HeaderValue {
        let mut cookie = Cookie::build((self.name(base), value))
            .path("/")
            .http_only(true)
            .secure(self.https)
            .same_site(SameSite::Lax);
        if let Some(secs) = max_age {
            cookie = cookie.max_age(cookie::time::Duration::seconds(secs));
        }
        // Names and base64url values contain only header-safe characters.
        HeaderValue::from_str(&cookie.build().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The session cookie: lives as long as the browser session; the server enforces the timeouts.
    pub fn session(&self, token: &str) -> HeaderValue {
        self.build(SESSION, token.to_owned(), None)
    }

    pub fn pending_second_factor(&self, token: &str, max_age_secs: i64) -> HeaderValue {
        self.build(PENDING, token.to_owned(), Some(max_age_secs))
    }

    /// Another short-lived cookie (e.g. the SSO flow's), under the given base name.
    pub fn short_lived(&self, base: &str, token: &str, max_age_secs: i64) -> HeaderValue {
        self.build(base, token.to_owned(), Some(max_age_secs))
    }

    /// The `Set-Cookie` value of an intent.
    pub fn header(&self, intent: &CookieIntent) -> HeaderValue {
        match intent {
            CookieIntent::Session(token) => self.session(token.expose_secret()),
            CookieIntent::PendingSecondFactor(token, secs) => {
                self.pending_second_factor(token.expose_secret(), *secs)
            }
            CookieIntent::ShortLived(base, token, secs) => {
                self.short_lived(base, token.expose_secret(), *secs)
            }
            CookieIntent::Clear(base) => self.clear(base),
            // A parsed company ID is always well formed; were the two rules ever to differ, the
            // browser forgets the ID rather than keep an older one.
            CookieIntent::Language(code, max_age) => self.language(code, *max_age),
            CookieIntent::RememberCompany(id) => self
                .remembered_company(id.as_str())
                .unwrap_or_else(|| self.clear(promio_api::COMPANY_COOKIE)),
        }
    }

    /// The company ID a login on this browser last succeeded with, for the login form to fill in
    /// next time (a year). The page's script reads it too, so it is not HttpOnly: it holds that ID
    /// and nothing else. `None` for anything that is not a well-formed company ID.
    pub fn remembered_company(&self, company_id: &str) -> Option<HeaderValue> {
        RememberedCompany::parse(company_id).map(|id| self.remembered(&id))
    }

    fn remembered(&self, id: &RememberedCompany) -> HeaderValue {
        let cookie = Cookie::build((promio_api::COMPANY_COOKIE, id.as_str().to_owned()))
            .path("/")
            .secure(self.https)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::days(365));
        // Its value is ASCII letters, digits, `-` and `_` (`RememberedCompany`).
        HeaderValue::from_str(&cookie.build().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The language cookie (the page's script reads it too, so it is not HttpOnly; Secure over
    /// https like every other cookie).
    pub fn language(&self, code: &str, max_age_secs: Option<i64>) -> HeaderValue {
        let mut cookie = Cookie::build((promio_api::i18n::LANG_COOKIE, code.to_owned()))
            .path("/")
            .secure(self.https)
            .same_site(SameSite::Lax);
        if let Some(secs) = max_age_secs {
            cookie = cookie.max_age(cookie::time::Duration::seconds(secs));
        }
        HeaderValue::from_str(&cookie.build().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// A header that makes the browser forget the named cookie.
    pub fn clear(&self, base: &str) -> HeaderValue {
        self.build(base, String::new(), Some(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_session_cookies_are_host_prefixed_secure_httponly_lax() {
        let v = CookiePolicy { https: true }.session("abc");
        let v = v.to_str().unwrap();
        assert!(v.starts_with("__Host-session=abc;"), "{v}");
        for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(v.contains(attr), "{attr} missing in {v}");
        }
        assert!(!v.contains("Domain"), "{v}");
    }

    #[test]
    fn the_remembered_company_id_is_the_only_content_and_only_a_well_formed_one() {
        let https = CookiePolicy { https: true };
        let header = https.remembered_company(" acme-1 ").unwrap();
        let text = header.to_str().unwrap();
        assert!(text.starts_with("promio_company=acme-1;"), "{text}");
        assert!(
            text.contains("Secure") && text.contains("SameSite=Lax"),
            "{text}"
        );
        assert!(
            !text.contains("HttpOnly"),
            "the login page's script reads it: {text}"
        );
        for bad in ["", "a", "acme;x=1", "acme corp", &"x".repeat(33)] {
            assert!(https.remembered_company(bad).is_none(), "{bad:?}");
        }
        let http = CookiePolicy { https: false };
        assert!(
            !http
                .remembered_company("acme")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn localhost_http_uses_the_plain_name_without_secure() {
        let v = CookiePolicy { https: false }.session("abc");
        let v = v.to_str().unwrap();
        assert!(v.starts_with("session=abc;"), "{v}");
        assert!(!v.contains("Secure"), "{v}");
        assert!(v.contains("HttpOnly"), "{v}");
    }

    #[test]
    fn clearing_expires_the_cookie_at_once() {
        let v = CookiePolicy { https: true }.clear(SESSION);
        assert!(v.to_str().unwrap().contains("Max-Age=0"));
    }
}
