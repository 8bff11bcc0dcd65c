//! The server side of the contract: the service traits that the server crate implements, and the
//! request context that server functions hand to them. Only compiled with the `ssr` feature.

use crate::api::{
    ApiError, LinkState, LoginForm, LoginOutcome, Me, TwoFactorEnrolment, TwoFactorStatus,
    UserForm, UserPage, UserQuery, UserSummary,
};
use crate::api::{AppLogin, ApplicationView, CreatedApplication, NewApplication};
use crate::api::{
    AuditPage, AuditQuery, ClientForm, ClientPage, ClientSummary, SessionInfo, SsoCheck,
    ThrottledAccount,
};
use crate::api::{PasskeyInfo, PasskeyOptions, PasskeyStatus, SecondFactorMethods};
use async_trait::async_trait;

use http::header::{COOKIE, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use leptos::prelude::*;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// What a service needs to know about the request, and the headers it wants on the response.
#[derive(Debug, Default)]
pub struct RequestCtx {
    pub headers: HeaderMap,
    /// The peer address of the TCP connection.
    pub client_ip: Option<IpAddr>,
    response_headers: Mutex<Vec<(HeaderName, HeaderValue)>>,
}

impl RequestCtx {
    pub fn new(headers: HeaderMap, client_ip: Option<IpAddr>) -> Self {
        RequestCtx {
            headers,
            client_ip,
            response_headers: Mutex::default(),
        }
    }

    fn from_parts(parts: Option<http::request::Parts>) -> Self {
        match parts {
            Some(parts) => {
                let ip = parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                RequestCtx::new(parts.headers, ip)
            }
            None => RequestCtx::default(),
        }
    }

    /// The value of the named request cookie, if sent.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// The language of the request (its `lang` cookie, else `Accept-Language`).
    pub fn lang(&self) -> crate::i18n::Lang {
        crate::i18n::Lang::for_request(
            self.cookie(crate::i18n::LANG_COOKIE).as_deref(),
            self.header(http::header::ACCEPT_LANGUAGE.as_str()),
        )
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Adds a header to the response (appended, so several `Set-Cookie` lines can coexist).
    pub fn add_response_header(&self, name: HeaderName, value: HeaderValue) {
        if let Ok(mut headers) = self.response_headers.lock() {
            headers.push((name, value));
        }
    }

    pub fn take_response_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.response_headers
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
}

#[async_trait]
pub trait AuthService: Send + Sync + 'static {
    /// The password step of the login state machine.
    async fn login(&self, req: &RequestCtx, form: LoginForm) -> Result<LoginOutcome, ApiError>;
    /// The user of the request's session, if the session is valid (and refreshes its idle timer).
    async fn current_user(&self, req: &RequestCtx) -> Result<Option<Me>, ApiError>;
    /// Seconds until the session ends unless used; `None` without a session. Asking is not
    /// activity: it does not keep the session alive.
    async fn session_time_left(&self, req: &RequestCtx) -> Result<Option<u64>, ApiError>;
    /// Ends the request's session on the server and clears its cookie.
    async fn logout(&self, req: &RequestCtx) -> Result<(), ApiError>;
}

/// A client admin's management of their own client's users. Every method answers 404 for a
/// user of another client.
#[async_trait]
pub trait AdminService: Send + Sync + 'static {
    async fn list_users(&self, req: &RequestCtx, query: UserQuery) -> Result<UserPage, ApiError>;
    async fn create_user(&self, req: &RequestCtx, form: UserForm) -> Result<UserSummary, ApiError>;
    async fn update_user(
        &self,
        req: &RequestCtx,
        id: String,
        form: UserForm,
    ) -> Result<UserSummary, ApiError>;
    async fn resend_registration(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    async fn send_password_reset(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    async fn set_user_active(
        &self,
        req: &RequestCtx,
        id: String,
        active: bool,
    ) -> Result<(), ApiError>;
    async fn reset_two_factor(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    /// Removes every passkey of a user (see `crate::api::remove_user_passkeys`).
    async fn remove_passkeys(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    /// Deletes a user at once (see `crate::api::delete_user`).
    async fn delete_user(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    /// Releases a user's binding to an identity at their client's identity provider.
    async fn release_sso_binding(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    async fn list_throttled(&self, req: &RequestCtx) -> Result<Vec<ThrottledAccount>, ApiError>;
    async fn clear_throttle(&self, req: &RequestCtx, username: String) -> Result<(), ApiError>;
    /// The client's audit log (operators: every client's).
    async fn list_audit(&self, req: &RequestCtx, query: AuditQuery) -> Result<AuditPage, ApiError>;
}

/// Passkeys: registering, listing and removing one's own, and logging in with them.
#[async_trait]
pub trait PasskeyService: Send + Sync + 'static {
    async fn status(&self, req: &RequestCtx) -> Result<PasskeyStatus, ApiError>;
    async fn register_start(
        &self,
        req: &RequestCtx,
        password: String,
    ) -> Result<PasskeyOptions, ApiError>;
    async fn register_finish(
        &self,
        req: &RequestCtx,
        credential: String,
        name: String,
    ) -> Result<PasskeyInfo, ApiError>;
    async fn rename(
        &self,
        req: &RequestCtx,
        id: String,
        name: String,
    ) -> Result<PasskeyInfo, ApiError>;
    async fn remove(&self, req: &RequestCtx, id: String, password: String) -> Result<(), ApiError>;
    async fn login_start(&self, req: &RequestCtx) -> Result<PasskeyOptions, ApiError>;
    async fn login_finish(
        &self,
        req: &RequestCtx,
        credential: String,
    ) -> Result<LoginOutcome, ApiError>;
    async fn second_factor_methods(
        &self,
        req: &RequestCtx,
    ) -> Result<SecondFactorMethods, ApiError>;
    async fn second_factor_start(&self, req: &RequestCtx) -> Result<PasskeyOptions, ApiError>;
    async fn second_factor_finish(
        &self,
        req: &RequestCtx,
        credential: String,
    ) -> Result<LoginOutcome, ApiError>;
    /// Begins confirming a password reset (the link's `token`) with a passkey.
    async fn reset_start(
        &self,
        req: &RequestCtx,
        token: String,
    ) -> Result<PasskeyOptions, ApiError>;
    /// Sets the new password through the reset link, confirmed with the passkey's answer.
    async fn reset_finish(
        &self,
        req: &RequestCtx,
        token: String,
        new_password: String,
        repeat_password: String,
        credential: String,
    ) -> Result<(), ApiError>;
}

/// Active sessions: a user's own, and an administrator ending all of a user's.
#[async_trait]
pub trait SessionService: Send + Sync + 'static {
    async fn list(&self, req: &RequestCtx) -> Result<Vec<SessionInfo>, ApiError>;
    async fn end(&self, req: &RequestCtx, id: String) -> Result<(), ApiError>;
    async fn end_all_of_user(&self, req: &RequestCtx, user_id: String) -> Result<u32, ApiError>;
    /// The applications the user is logged in to (the Security page).
    async fn applications(&self, req: &RequestCtx) -> Result<Vec<AppLogin>, ApiError>;
}

/// The platform operators' management of clients.
#[async_trait]
pub trait OperatorService: Send + Sync + 'static {
    async fn list_clients(
        &self,
        req: &RequestCtx,
        search: String,
        page: u32,
    ) -> Result<ClientPage, ApiError>;
    async fn create_client(
        &self,
        req: &RequestCtx,
        form: ClientForm,
    ) -> Result<ClientSummary, ApiError>;
    async fn update_client(
        &self,
        req: &RequestCtx,
        form: ClientForm,
    ) -> Result<ClientSummary, ApiError>;
    async fn set_client_active(
        &self,
        req: &RequestCtx,
        company_id: String,
        active: bool,
    ) -> Result<(), ApiError>;
    /// Fetches and checks an identity provider's discovery document ("Test connection").
    async fn test_sso_connection(
        &self,
        req: &RequestCtx,
        issuer: String,
    ) -> Result<SsoCheck, ApiError>;
}

/// The platform operators' registration of applications (the OpenID Provider's relying
/// parties). A client secret is in the answers of `create` and `rotate_secret` only.
#[async_trait]
pub trait ApplicationService: Send + Sync + 'static {
    async fn list(&self, req: &RequestCtx) -> Result<Vec<ApplicationView>, ApiError>;
    async fn create(
        &self,
        req: &RequestCtx,
        form: NewApplication,
    ) -> Result<CreatedApplication, ApiError>;
    async fn delete(&self, req: &RequestCtx, client_id: String) -> Result<(), ApiError>;
    /// A new secret for a confidential application; 404 for an unknown or public one.
    async fn rotate_secret(
        &self,
        req: &RequestCtx,
        client_id: String,
    ) -> Result<CreatedApplication, ApiError>;
}

/// Single sign-on: the start of the round trip to a client's identity provider.
#[async_trait]
pub trait SsoService: Send + Sync + 'static {
    /// The authorization URL of the identity provider of the client that the email's domain
    /// belongs to.
    async fn start(&self, req: &RequestCtx, email: String) -> Result<String, ApiError>;
}

/// The second factor: the login's second step (with the pending state's cookie), and the user's
/// own activation and deactivation (with a session, or during enrolment required by the client).
#[async_trait]
pub trait TwoFactorService: Send + Sync + 'static {
    async fn login(&self, req: &RequestCtx, code: String) -> Result<LoginOutcome, ApiError>;
    async fn status(&self, req: &RequestCtx) -> Result<TwoFactorStatus, ApiError>;
    async fn start(&self, req: &RequestCtx) -> Result<TwoFactorEnrolment, ApiError>;
    /// `password`: empty when the login was a moment ago (see `TwoFactorStatus::reauth_needed`).
    async fn activate(
        &self,
        req: &RequestCtx,
        code: String,
        password: String,
    ) -> Result<Vec<String>, ApiError>;
    async fn deactivate(
        &self,
        req: &RequestCtx,
        password: String,
        code: String,
    ) -> Result<(), ApiError>;
    async fn new_recovery_codes(
        &self,
        req: &RequestCtx,
        code: String,
        password: String,
    ) -> Result<Vec<String>, ApiError>;
}

/// What a person does with links from mails, without being logged in.
#[async_trait]
pub trait AccountService: Send + Sync + 'static {
    async fn link_info(&self, req: &RequestCtx, token: String) -> Result<LinkState, ApiError>;
    async fn set_password(
        &self,
        req: &RequestCtx,
        token: String,
        new_password: String,
        repeat_password: String,
        code: Option<String>,
    ) -> Result<(), ApiError>;
    /// Always the same answer, whether the account exists or not.
    async fn request_password_reset(
        &self,
        req: &RequestCtx,
        company_id: String,
        username: String,
    ) -> Result<(), ApiError>;
}

/// The handle to everything behind the contract, provided as leptos context by the server.
#[derive(Clone)]
pub struct Backend {
    pub auth: Arc<dyn AuthService>,
    pub admin: Arc<dyn AdminService>,
    pub accounts: Arc<dyn AccountService>,
    pub two_factor: Arc<dyn TwoFactorService>,
    pub operator: Arc<dyn OperatorService>,
    pub sessions: Arc<dyn SessionService>,
    pub sso: Arc<dyn SsoService>,
    pub passkeys: Arc<dyn PasskeyService>,
    pub applications: Arc<dyn ApplicationService>,
}

/// Runs one service call for a server function: builds the request context, applies the headers
/// the service asked for and the error's HTTP status to the response.
pub async fn call<T, F, Fut>(f: F) -> Result<T, ApiError>
where
    F: FnOnce(Backend, Arc<RequestCtx>) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let Some(backend) = use_context::<Backend>() else {
        tracing::error!("server function called without the Backend context");
        return Err(ApiError::Internal {
            id: "no-backend".to_owned(),
        });
    };
    let req = Arc::new(RequestCtx::from_parts(use_context::<http::request::Parts>()));
    let result = f(backend, Arc::clone(&req)).await;
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        for (name, value) in req.take_response_headers() {
            response.append_header(name, value);
        }
        if let Err(err) = &result {
            response.set_status(
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
    }
    result
}

/// The name the server gives the [`crate::api::FormFlash`] cookie (`__Host-` prefixed over
/// https), provided by the server as context for the pages. It is the only name read: over
/// https a plain-named cookie may have been planted by a sibling subdomain.
#[derive(Clone, Debug)]
pub struct FormFlashCookie(pub String);

/// The [`crate::api::FormFlash`] a form posted without script came back to `page` with, taken
/// from its cookie while the page renders (the response clears the cookie: a reload starts
/// afresh).
pub fn take_form_flash(page: &str) -> Option<crate::api::FormFlash> {
    use crate::api::{FORM_FLASH_COOKIE, FormFlash};
    let req = RequestCtx::from_parts(use_context::<http::request::Parts>());
    // Without the server's word, only the name a planted cookie cannot have.
    let name = use_context::<FormFlashCookie>()
        .map(|c| c.0)
        .unwrap_or_else(|| format!("__Host-{FORM_FLASH_COOKIE}"));
    let raw = req.cookie(&name)?;
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        let secure = if name.starts_with("__Host-") {
            "; Secure"
        } else {
            ""
        };
        let clear = format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}");
        if let Ok(value) = http::HeaderValue::from_str(&clear) {
            response.append_header(http::header::SET_COOKIE, value);
        }
    }
    FormFlash::decode(&raw, page)
}

/// The content hashes cargo-leptos put into the compiled site's file names (`hash-files`), read
/// from the hash file it writes next to the server binary; `None` when the site's names are plain.
/// Read once per process.
pub fn site_hashes() -> Option<&'static [(String, String)]> {
    static HASHES: std::sync::OnceLock<Option<Vec<(String, String)>>> = std::sync::OnceLock::new();
    HASHES
        .get_or_init(|| {
            let file = hash_file_path()?;
            let text = std::fs::read_to_string(file).ok()?;
            Some(parse_hashes(&text))
        })
        .as_deref()
}

/// Where cargo-leptos writes the hash file: beside the executable, named by `LEPTOS_HASH_FILE_NAME`
/// (default `hash.txt`).
fn hash_file_path() -> Option<std::path::PathBuf> {
    let name = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".to_owned());
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name))
}

/// The `kind: hash` lines of a hash file (`js`, `wasm`, `css`, `manifest`, `split`).
fn parse_hashes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(kind, hash)| (kind.trim().to_owned(), hash.trim().to_owned()))
        .filter(|(kind, hash)| !kind.is_empty() && !hash.is_empty())
        .collect()
}

/// The address of the site's stylesheet, with its content hash when the site has them.
pub fn stylesheet_href(options: &LeptosOptions) -> String {
    stylesheet_href_with(options, options.hash_files.then(site_hashes).flatten())
}

fn stylesheet_href_with(options: &LeptosOptions, hashes: Option<&[(String, String)]>) -> String {
    let hash = hashes
        .and_then(|hashes| hashes.iter().find(|(kind, _)| kind == "css"))
        .map(|(_, hash)| format!(".{hash}"))
        .unwrap_or_default();
    format!(
        "/{}/{}{hash}.css",
        options.site_pkg_dir, options.output_name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_file_lines_are_read_and_blank_ones_skipped() {
        let text = "js: AbC-_1\nwasm: xyz\n\ncss: Q9\nmanifest: m1\nsplit: s2\n";
        let hashes = parse_hashes(text);
        assert_eq!(hashes.len(), 5);
        assert_eq!(hashes[2], ("css".to_owned(), "Q9".to_owned()));
    }

    #[test]
    fn the_stylesheet_is_plain_without_hashed_files() {
        let options = LeptosOptions::builder()
            .output_name("promio-connect")
            .site_pkg_dir("pkg")
            .build();
        assert_eq!(stylesheet_href(&options), "/pkg/promio-connect.css");
    }

    #[test]
    fn the_stylesheet_carries_its_hash_from_the_hash_file() {
        let options = LeptosOptions::builder()
            .output_name("promio-connect")
            .site_pkg_dir("pkg")
            .build();
        let hashes = parse_hashes("js: J1\nwasm: W2\ncss: Cs-3_\n");
        assert_eq!(
            stylesheet_href_with(&options, Some(&hashes)),
            "/pkg/promio-connect.Cs-3_.css"
        );
        assert_eq!(
            stylesheet_href_with(&options, Some(&parse_hashes("js: J1\n"))),
            "/pkg/promio-connect.css"
        );
    }
}
