//! Registered applications (the relying parties of the OpenID Provider) and how they prove who
//! they are at the token, revocation and introspection endpoints.
//!
//! Registration (the CLI and the operators' console, nothing else): a name (1–100 characters),
//! 1–10 redirect URIs, 0–10 post-logout redirect URIs, an optional back-channel logout URI, each
//! passing [`check_uri`] and stored exactly as given (the endpoints compare them exactly, RFC
//! 9700), an optional company the application is bound to, and public or confidential. A
//! confidential application gets a 256-bit secret that is shown once; only its SHA-256 is stored.
//!
//! Client authentication ([`authenticate_client`]):
//! ```text
//! Authorization: Basic (id and secret form-urlencoded, RFC 6749 2.3.1)  ─┐ exactly one;
//! client_id + client_secret in the form (client_secret_post)            ─┘ both: invalid_request
//! client_id alone: only a public client, only where the endpoint allows public clients
//! unknown client, wrong or missing secret: invalid_client (401), counted per (client, IP):
//!   the right secret always works and clears the counter; after 10 failures in 15 minutes
//!   further wrong ones are refused without being counted until the window ends
//! every invalid_client: oauth.refused in the audit log, the first per (client, IP) and hour
//!   (an unknown client or missing credentials: per IP), the others only counted
//! ```
//! Secrets are compared as hashes in constant time (`subtle`).

use super::OAuthError;
use crate::domain::CompanyId;
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::idm::Core;
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::store::oauth_apps::{NewOAuthApp, OAuthAppRow};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, StatusCode, header};
use promio_app::api::Problem;
use promio_app::i18n::Lang;
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// The most characters of an application's name.
pub const NAME_MAX: usize = 100;
/// The most URIs of one kind an application registers.
pub const URIS_MAX: usize = 10;
/// The most characters of one URI.
pub const URI_MAX: usize = 2000;
/// Failed client authentications per (client, IP) and window after which further failures are
/// refused without being counted (the right secret still works).
pub const CLIENT_FAILURES: i64 = 10;
pub const CLIENT_WINDOW: i64 = 15 * 60;

/// A new application as the CLI or the console gives it (not yet checked).
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// The company ID of the client whose users alone may log in; `None` (or empty): any client.
    pub company_id: Option<String>,
    pub public: bool,
}

/// A registered application (never its secret).
#[derive(Clone, Debug)]
pub struct App {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// The bound client's row id.
    pub client_row_id: Option<String>,
    /// The bound client's company ID.
    pub company_id: Option<String>,
    pub pkce_required: bool,
    pub created_at: i64,
}

/// What registration hands back once: the client ID, and the secret of a confidential one.
#[derive(Debug)]
pub struct Created {
    pub client_id: String,
    pub client_secret: Option<SecretString>,
}

/// The field a refusal is about (the CLI names its option, the console its label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppField {
    Name,
    RedirectUris,
    PostLogoutRedirectUris,
    BackchannelLogoutUri,
    CompanyId,
}

impl AppField {
    /// The command-line option of the field.
    pub fn flag(self) -> &'static str {
        match self {
            AppField::Name => "--name",
            AppField::RedirectUris => "--redirect-uri",
            AppField::PostLogoutRedirectUris => "--post-logout-redirect-uri",
            AppField::BackchannelLogoutUri => "--backchannel-logout-uri",
            AppField::CompanyId => "--company-id",
        }
    }
}

/// Why an application was not registered: the field (none for an internal error, whose cause is
/// logged), what is wrong with it (for the console's translated message) and an English text
/// naming the problem (for the command line and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRefusal {
    pub field: Option<AppField>,
    pub kind: Problem,
    pub problem: String,
}

impl AppRefusal {
    fn new(field: AppField, kind: Problem, problem: impl Into<String>) -> Self {
        AppRefusal {
            field: Some(field),
            kind,
            problem: problem.into(),
        }
    }
}

impl std::fmt::Display for AppRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}: {}", field.flag(), self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl From<ServiceError> for AppRefusal {
    /// An internal error: the cause goes to the log (with an id), the message says where to look.
    fn from(err: ServiceError) -> Self {
        AppRefusal {
            field: None,
            kind: Problem::Malformed,
            problem: promio_app::api::ApiError::from(err).message(Lang::En),
        }
    }
}

/// Registers an application. `by` is the acting user's id for the audit log (empty: the command
/// line).
pub async fn create(core: &Core, by: &str, new: NewApp) -> Result<Created, AppRefusal> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err(AppRefusal::new(
            AppField::Name,
            Problem::Missing,
            "is required",
        ));
    }
    if name.chars().count() > NAME_MAX {
        return Err(AppRefusal::new(
            AppField::Name,
            Problem::TooLong {
                max: u32::try_from(NAME_MAX).unwrap_or(u32::MAX),
            },
            format!("must be at most {NAME_MAX} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppRefusal::new(
            AppField::Name,
            Problem::ControlCharacters,
            "must not contain control characters",
        ));
    }
    let redirect_uris = check_uris(&new.redirect_uris, AppField::RedirectUris)?;
    if redirect_uris.is_empty() {
        return Err(AppRefusal::new(
            AppField::RedirectUris,
            Problem::Missing,
            "at least one redirect URI is required",
        ));
    }
    let post_logout = check_uris(
        &new.post_logout_redirect_uris,
        AppField::PostLogoutRedirectUris,
    )?;
    let backchannel = match new
        .backchannel_logout_uri
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(uri) => {
            Some(check_uri(uri).map_err(|p| uri_refusal(AppField::BackchannelLogoutUri, &p, uri))?)
        }
        None => None,
    };
    let client = match new
        .company_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(raw) => {
            let company = CompanyId::parse(raw).map_err(|e| {
                AppRefusal::new(
                    AppField::CompanyId,
                    e.problem,
                    promio_app::api::ApiError::from(e).message(Lang::En),
                )
            })?;
            let client = core
                .store
                .client_by_company_id(&company)
                .await
                .context("reading the application's client")?;
            Some(client.ok_or_else(|| {
                AppRefusal::new(
                    AppField::CompanyId,
                    Problem::Unknown,
                    format!("no such client: {raw}"),
                )
            })?)
        }
        None => None,
    };

    let client_id = new_client_id();
    let secret = (!new.public).then(crate::infra::token::issue);
    let redirect_json = to_json(&redirect_uris)?;
    let post_logout_json = to_json(&post_logout)?;
    core.store
        .insert_oauth_app(
            &NewOAuthApp {
                client_id: &client_id,
                name,
                secret_hash: secret.as_ref().map(|s| s.hash.as_str()),
                redirect_uris: &redirect_json,
                post_logout_redirect_uris: &post_logout_json,
                backchannel_logout_uri: backchannel.as_deref(),
                client_row_id: client.as_ref().map(|c| c.id.as_str()),
            },
            core.clock.now(),
        )
        .await
        .context("registering an application")?;
    let detail = format!(
        "application {client_id} ({name}), {}{}",
        if new.public { "public" } else { "confidential" },
        client
            .as_ref()
            .map(|c| format!(", for {}", c.company_id))
            .unwrap_or_default()
    );
    audit(core, by, AuditAction::AppCreated, &detail).await?;
    tracing::info!(client_id = %client_id, public = new.public, "application registered");
    Ok(Created {
        client_id,
        client_secret: secret.map(|s| s.secret),
    })
}

/// Every registered application, oldest first.
pub async fn list(core: &Core) -> ServiceResult<Vec<App>> {
    core.store
        .oauth_apps()
        .await
        .context("listing the applications")?
        .into_iter()
        .map(to_app)
        .collect()
}

pub async fn find(core: &Core, client_id: &str) -> ServiceResult<Option<App>> {
    core.store
        .oauth_app(client_id)
        .await
        .context("reading an application")?
        .map(to_app)
        .transpose()
}

/// Deletes an application and everything issued to it; false when there is none of that id.
pub async fn delete(core: &Core, by: &str, client_id: &str) -> ServiceResult<bool> {
    let deleted = core
        .store
        .delete_oauth_app(client_id)
        .await
        .context("deleting an application")?;
    if deleted {
        let detail = format!("application {client_id}");
        audit(core, by, AuditAction::AppDeleted, &detail).await?;
        tracing::info!(client_id, "application deleted");
    }
    Ok(deleted)
}

/// A new secret for a confidential application (the old one stops working at once); `None` when
/// the application is unknown or public.
pub async fn rotate_secret(
    core: &Core,
    by: &str,
    client_id: &str,
) -> ServiceResult<Option<SecretString>> {
    let secret = crate::infra::token::issue();
    let changed = core
        .store
        .set_oauth_app_secret(client_id, &secret.hash)
        .await
        .context("replacing an application's secret")?;
    if !changed {
        return Ok(None);
    }
    let detail = format!("application {client_id}");
    audit(core, by, AuditAction::AppSecretRotated, &detail).await?;
    tracing::info!(client_id, "application secret rotated");
    Ok(Some(secret.secret))
}

/// The rule for every URI an application registers (redirect, post-logout, back-channel): an
/// absolute https URL, or http on `localhost`, `127.0.0.1` or `[::1]` (native and development
/// clients, RFC 8252); no fragment, no user name or password, at most [`URI_MAX`] characters.
/// Returns the URI exactly as given: the endpoints compare strings, so nothing is normalised.
pub fn check_uri(uri: &str) -> Result<String, String> {
    if uri.is_empty() {
        return Err("must not be empty".into());
    }
    if uri.chars().count() > URI_MAX {
        return Err(format!("must be at most {URI_MAX} characters"));
    }
    // The URL parser would drop surrounding spaces and remove tabs and newlines, so the stored
    // string would not be the one that is matched.
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let url = url::Url::parse(uri).map_err(|e| format!("must be an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" => match url.host_str() {
            Some("localhost" | "127.0.0.1" | "[::1]") => {}
            _ => {
                return Err(
                    "http is only allowed on localhost, 127.0.0.1 or [::1]; use https".into(),
                );
            }
        },
        _ => return Err("must be an https URL (http only on localhost)".into()),
    }
    match url.host_str() {
        Some(host) if !host.is_empty() => {}
        _ => return Err("must name a host".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment (#…)".into());
    }
    Ok(uri.to_owned())
}

/// Who is calling, as the client says: see the module docs for the rules. `allow_public`: the
/// endpoint accepts public clients (with `client_id` alone). Refusals are `invalid_client` (401)
/// or, for two methods at once, `invalid_request`; every `invalid_client` is audited
/// (`oauth.refused`), at most once per (client, address) and hour.
pub async fn authenticate_client(
    core: &Core,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    ip: Option<IpAddr>,
    allow_public: bool,
) -> Result<App, OAuthError> {
    let bucket = ip.map(crate::idm::throttle::ip_bucket);
    let ip_text = ip.map(|ip| ip.to_string());
    let presented = match read_presented(headers, form) {
        Ok(presented) => presented,
        Err(err) => {
            if err.error == "invalid_client" {
                let why = format!("client authentication refused: {}", err.description);
                refused_anonymously(core, bucket.as_deref(), ip_text.as_deref(), &why).await?;
            }
            return Err(err);
        }
    };
    let row = core
        .store
        .oauth_app(&presented.client_id)
        .await
        .context("reading an application")?;
    let Some(row) = row else {
        // Nothing to guess about an unknown client: not counted per client ID (made-up IDs
        // would add rows without end), only per address.
        tracing::info!("client authentication refused: unknown client");
        let why = "client authentication refused: unknown client";
        refused_anonymously(core, bucket.as_deref(), ip_text.as_deref(), why).await?;
        return Err(invalid_client("client authentication failed"));
    };
    let now = core.clock.now();
    let key = throttle_key(&row.client_id, bucket.as_deref());
    let refusal = Refusal {
        client_id: &row.client_id,
        key: &key,
        ip: ip_text.as_deref(),
    };
    // The verdict comes first: the right secret always works, even while wrong ones from the
    // same address are refused, so that failures cannot lock the real application out.
    let verdict = match (&row.secret_hash, &presented.secret) {
        (Some(hash), Some(secret)) => secret_matches(hash, secret),
        // A confidential client without its secret, or a public one presenting a secret.
        (Some(_), None) | (None, Some(_)) => false,
        (None, None) if allow_public => true,
        (None, None) => {
            // Not a guess: a public client where only confidential ones may call.
            let why = "a public client at an endpoint for confidential clients";
            refusal.record(core, Outcome::Refused, why).await?;
            return Err(invalid_client("this endpoint needs a confidential client"));
        }
    };
    let counter = core
        .store
        .throttle_row(&key)
        .await
        .context("reading a client's failure counter")?;
    if verdict {
        if counter.is_some() {
            core.store
                .throttle_clear(&key)
                .await
                .context("clearing a client's failure counter")?;
        }
        return to_app(row).map_err(OAuthError::from);
    }
    if counter
        .as_ref()
        .is_some_and(|c| c.failures >= CLIENT_FAILURES && c.blocked_until > now)
    {
        // Beyond the limit a failure is neither counted nor logged one by one.
        let why = "too many failed client authentications from this address";
        refusal.record(core, Outcome::Throttled, why).await?;
        return Err(invalid_client(
            "too many failed client authentications; try again later",
        ));
    }
    core.store
        .count_in_window(&key, now, CLIENT_WINDOW)
        .await
        .context("counting a failed client authentication")?;
    tracing::warn!(client_id = %row.client_id, "client authentication failed");
    let why = "wrong or missing client secret";
    refusal.record(core, Outcome::Refused, why).await?;
    Err(invalid_client("client authentication failed"))
}

/// A refused client authentication of a registered application, for the audit log.
struct Refusal<'a> {
    client_id: &'a str,
    /// The failure counter's key (the client and the address).
    key: &'a str,
    ip: Option<&'a str>,
}

impl Refusal<'_> {
    /// Writes `oauth.refused` for the first refusal of this client from this address in
    /// [`crate::idm::throttle::REFUSALS_WINDOW`]; the others are only counted.
    async fn record(&self, core: &Core, outcome: Outcome, why: &str) -> ServiceResult<()> {
        let now = core.clock.now();
        if !crate::idm::throttle::count_refusal(&core.store, self.key, now).await? {
            return Ok(());
        }
        let detail = format!(
            "client authentication of {} refused: {why} (further ones from this address this \
             hour are only counted)",
            self.client_id
        );
        audit_refusal(core, outcome, &detail, self.ip).await
    }
}

/// Audits a refused client authentication that names no registered application: the first from
/// its address in [`crate::idm::throttle::REFUSALS_WINDOW`].
async fn refused_anonymously(
    core: &Core,
    bucket: Option<&str>,
    ip: Option<&str>,
    why: &str,
) -> ServiceResult<()> {
    let now = core.clock.now();
    if !crate::idm::throttle::count_anonymous_refusal(&core.store, "oauth-client", bucket, now)
        .await?
    {
        return Ok(());
    }
    let detail = format!("{why} (further ones from this address this hour are only counted)");
    audit_refusal(core, Outcome::Refused, &detail, ip).await
}

/// The credentials a request presents.
struct Presented {
    client_id: String,
    secret: Option<SecretString>,
}

/// Reads the credentials from the Authorization header (Basic) or the form.
fn read_presented(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Presented, OAuthError> {
    let form_id = form
        .get("client_id")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let form_secret = form
        .get("client_secret")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let Some(basic) = basic_credentials(headers)? else {
        return match form_id {
            Some(id) => Ok(Presented {
                client_id: id.to_owned(),
                secret: form_secret.map(|s| SecretString::from(s.to_owned())),
            }),
            None if form_secret.is_some() => Err(OAuthError::new(
                "invalid_request",
                "client_secret without client_id",
            )),
            None => Err(invalid_client("client authentication is missing")),
        };
    };
    if form_secret.is_some() {
        return Err(OAuthError::new(
            "invalid_request",
            "more than one client authentication method: use client_secret_basic or \
             client_secret_post",
        ));
    }
    if form_id.is_some_and(|id| id != basic.client_id) {
        return Err(OAuthError::new(
            "invalid_request",
            "client_id differs from the client in the Authorization header",
        ));
    }
    Ok(basic)
}

/// The client ID and secret of an `Authorization: Basic` header; `None` without one (another
/// scheme counts as none).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<Presented>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || invalid_client("malformed Authorization header");
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let client_id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if client_id.is_empty() {
        return Err(malformed());
    }
    Ok(Some(Presented {
        client_id,
        secret: (!secret.is_empty()).then(|| SecretString::from(secret)),
    }))
}

/// Decodes one `application/x-www-form-urlencoded` value, as RFC 6749 2.3.1 encodes the id and
/// the secret in the Basic header. An encoded value has no bare `&` or `=`; without them the
/// form parser reads the whole value as one name.
fn form_decode(raw: &str) -> Option<String> {
    if raw.contains(['&', '=']) {
        return None;
    }
    Some(
        url::form_urlencoded::parse(raw.as_bytes())
            .next()
            .map(|(name, _)| name.into_owned())
            .unwrap_or_default(),
    )
}

/// `invalid_client` with 401; the response carries `WWW-Authenticate: Basic` (see `OAuthError`'s
/// `IntoResponse`), as RFC 6749 5.2 asks when Basic was used, and HTTP for any 401.
fn invalid_client(description: &str) -> OAuthError {
    OAuthError::new("invalid_client", description).with_status(StatusCode::UNAUTHORIZED)
}

/// The failure counter of a client from one address (see [`crate::idm::throttle::ip_bucket`]).
fn throttle_key(client_id: &str, bucket: Option<&str>) -> String {
    format!("oauth-client:{client_id}:{}", bucket.unwrap_or("unknown"))
}

/// Whether the presented secret is the stored one (hashes compared in constant time).
fn secret_matches(stored_hash: &str, secret: &SecretString) -> bool {
    let presented = crate::infra::token::hash(secret.expose_secret());
    bool::from(presented.as_bytes().ct_eq(stored_hash.as_bytes()))
}

/// Checks each URI of one kind, drops empty entries and duplicates (keeping the first), and
/// refuses more than [`URIS_MAX`].
fn check_uris(uris: &[String], field: AppField) -> Result<Vec<String>, AppRefusal> {
    let mut out: Vec<String> = Vec::new();
    for uri in uris.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
        let checked = check_uri(uri).map_err(|p| uri_refusal(field, &p, uri))?;
        if !out.contains(&checked) {
            out.push(checked);
        }
    }
    if out.len() > URIS_MAX {
        return Err(AppRefusal::new(
            field,
            Problem::Malformed,
            format!("at most {URIS_MAX} URIs are allowed"),
        ));
    }
    Ok(out)
}

fn uri_refusal(field: AppField, problem: &str, uri: &str) -> AppRefusal {
    AppRefusal::new(
        field,
        Problem::Malformed,
        format!(
            "{problem} ({})",
            crate::domain::audit::clean_text(uri, crate::domain::audit::OUTSIDE_TEXT_MAX)
        ),
    )
}

/// `app_` and 128 random bits, base64url (22 characters).
fn new_client_id() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!("app_{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn to_json(uris: &[String]) -> Result<String, AppRefusal> {
    serde_json::to_string(uris)
        .map_err(|e| AppRefusal::from(ServiceError::Internal(anyhow::anyhow!(e))))
}

fn to_app(row: OAuthAppRow) -> ServiceResult<App> {
    let uris = |raw: &str, what: &str| {
        serde_json::from_str::<Vec<String>>(raw).map_err(|e| {
            ServiceError::Internal(anyhow::anyhow!(
                "application {}: stored {what} are not a JSON list: {e}",
                row.client_id
            ))
        })
    };
    let redirect_uris = uris(&row.redirect_uris, "redirect URIs")?;
    let post_logout_redirect_uris = uris(&row.post_logout_redirect_uris, "post-logout URIs")?;
    Ok(App {
        public: row.secret_hash.is_none(),
        redirect_uris,
        post_logout_redirect_uris,
        pkce_required: row.pkce_required != 0 || row.secret_hash.is_none(),
        client_id: row.client_id,
        name: row.name,
        backchannel_logout_uri: row.backchannel_logout_uri,
        client_row_id: row.client_row_id,
        company_id: row.company_id,
        created_at: row.created_at,
    })
}

/// Writes a refused client authentication (`oauth.refused`) to the audit log, in the platform
/// client (the operators', who manage the applications).
async fn audit_refusal(
    core: &Core,
    outcome: Outcome,
    detail: &str,
    ip: Option<&str>,
) -> ServiceResult<()> {
    let platform = core
        .store
        .client_by_company_id(&core.settings.platform_company_id)
        .await
        .context("reading the platform client")?;
    let event = Event::new(AuditAction::OAuthRefused, outcome)
        .client(platform.as_ref().map(|c| &c.id))
        .detail(detail)
        .ip(ip);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

/// Writes a registration change to the audit log, in the platform client (the operators').
async fn audit(core: &Core, by: &str, action: AuditAction, detail: &str) -> ServiceResult<()> {
    let platform = core
        .store
        .client_by_company_id(&core.settings.platform_company_id)
        .await
        .context("reading the platform client")?;
    let actor = (!by.is_empty()).then_some(by);
    let event = Event::new(action, Outcome::Success)
        .client(platform.as_ref().map(|c| &c.id))
        .actor(actor)
        .detail(detail);
    crate::infra::audit::record(&core.store, event, core.clock.now()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_uris_are_accepted_as_given() {
        for uri in [
            "https://app.example/callback",
            "https://app.example:8443/cb?tenant=a",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]/cb",
            "HTTPS://App.Example/CB",
        ] {
            assert_eq!(check_uri(uri).as_deref(), Ok(uri), "{uri}");
        }
    }

    #[test]
    fn other_uris_are_refused_with_the_reason() {
        let refused = |uri: &str| check_uri(uri).expect_err(uri);
        assert!(refused("http://example.com/cb").contains("http is only allowed on localhost"));
        assert!(refused("http://localhost.evil.example/cb").contains("http is only allowed"));
        assert!(refused("http://127.0.0.1.nip.io/cb").contains("http is only allowed"));
        assert!(refused("https://app.example/cb#frag").contains("fragment"));
        assert!(refused("https://app.example/cb#").contains("fragment"));
        assert!(refused("https://user:pw@app.example/cb").contains("user name or password"));
        assert!(refused("https://user@app.example/cb").contains("user name or password"));
        assert!(refused("javascript:alert(1)").contains("https"));
        assert!(refused("/callback").contains("absolute URL"));
        assert!(refused("app.example/cb").contains("absolute URL"));
        assert!(refused(" https://app.example/cb").contains("spaces"));
        assert!(refused("https://app.example/c\nb").contains("spaces"));
        assert!(refused("").contains("empty"));
        let long = format!("https://app.example/{}", "a".repeat(URI_MAX));
        assert!(refused(&long).contains("at most 2000"));
        let longest = format!("https://app.example/{}", "a".repeat(URI_MAX - 20));
        assert!(check_uri(&longest).is_ok());
    }

    #[test]
    fn uris_lose_duplicates_and_at_most_ten_are_kept() {
        let uris: Vec<String> = [
            "https://a.example/cb",
            " https://a.example/cb ",
            "",
            "https://b.example/cb",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            check_uris(&uris, AppField::RedirectUris),
            Ok(vec![
                "https://a.example/cb".to_owned(),
                "https://b.example/cb".to_owned()
            ])
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("https://a.example/{i}")).collect();
        let refusal = check_uris(&eleven, AppField::PostLogoutRedirectUris).unwrap_err();
        assert_eq!(refusal.field, Some(AppField::PostLogoutRedirectUris));
        let refusal = check_uris(
            &["http://example.com/cb".to_owned()],
            AppField::RedirectUris,
        )
        .unwrap_err();
        assert!(
            refusal
                .to_string()
                .starts_with("--redirect-uri: http is only allowed on localhost"),
            "{refusal}"
        );
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(form_decode("a%3Ab+c%25").as_deref(), Some("a:b c%"));
        assert_eq!(form_decode("app_x-Y").as_deref(), Some("app_x-Y"));
        // A bare `&` or `=` is no encoded value (it would be cut there).
        assert_eq!(form_decode("a&b"), None);
        assert_eq!(form_decode("a=b"), None);

        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("app_1:s%3Acret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        let Ok(presented) = read_presented(&headers, &HashMap::new()) else {
            panic!("Basic credentials refused");
        };
        assert_eq!(presented.client_id, "app_1");
        assert_eq!(
            presented.secret.as_ref().map(|s| s.expose_secret()),
            Some("s:cret")
        );
    }

    #[test]
    fn one_authentication_method_at_a_time() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("app_1:secret");
        headers.insert(
            header::AUTHORIZATION,
            format!("basic {encoded}").parse().unwrap(),
        );
        let form = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let both = read_presented(&headers, &form(&[("client_secret", "secret")]));
        assert_eq!(both.err().map(|e| e.error), Some("invalid_request"));
        let other_id = read_presented(&headers, &form(&[("client_id", "app_2")]));
        assert_eq!(other_id.err().map(|e| e.error), Some("invalid_request"));
        assert!(read_presented(&headers, &form(&[("client_id", "app_1")])).is_ok());

        let none = read_presented(&HeaderMap::new(), &form(&[]));
        assert_eq!(none.err().map(|e| e.error), Some("invalid_client"));
        let Ok(public) = read_presented(&HeaderMap::new(), &form(&[("client_id", "app_3")])) else {
            panic!("client_id alone refused");
        };
        assert!(public.secret.is_none());

        let mut garbled = HeaderMap::new();
        garbled.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        let refused = read_presented(&garbled, &form(&[])).err().unwrap();
        assert_eq!(
            (refused.error, refused.status),
            ("invalid_client", StatusCode::UNAUTHORIZED)
        );
    }

    #[test]
    fn a_refused_client_is_told_to_use_basic() {
        use axum::response::IntoResponse;
        let response = invalid_client("client authentication failed").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"promio.connect\""
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
