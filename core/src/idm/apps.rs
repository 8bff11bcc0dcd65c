//! Registered applications (the relying parties of the OpenID Provider): the registry, and the
//! operators' console flows over it. How an application proves who it is at the endpoints is the
//! edge's (`oauth::client_auth`).
//!
//! Registration (the CLI and the operators' console, nothing else): a name (1–100 characters),
//! 1–10 redirect URIs, 0–10 post-logout redirect URIs, an optional back-channel logout URI, each
//! passing [`check_uri`] and stored exactly as given (the endpoints compare them exactly, RFC
//! 9700), an optional company the application is bound to, and public or confidential. A
//! confidential application gets a 256-bit secret that is shown once; only its SHA-256 is stored.

use crate::domain::CompanyId;
use crate::domain::Invalid;
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::idm::Core;
use crate::idm::principal::{Operator, Session};
use crate::infra::error::{Context, ServiceError, ServiceResult};
use crate::store::oauth_apps::{NewOAuthApp, OAuthAppRow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use promio_api::i18n::Lang;
use promio_api::{AppLogin, ApplicationView, CreatedApplication, Field, NewApplication, Problem};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};

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
    /// A confidential application that cannot send PKCE may log people in without it (a public
    /// one never may).
    pub pkce_optional: bool,
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
    PkceOptional,
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
            AppField::PkceOptional => "--pkce-required",
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
            problem: promio_api::ApiError::from(err).message(Lang::En),
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
    if new.public && new.pkce_optional {
        return Err(AppRefusal::new(
            AppField::PkceOptional,
            Problem::Malformed,
            "a public application always uses PKCE; only a confidential one may do without",
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
                    promio_api::ApiError::from(e).message(Lang::En),
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
                pkce_required: !new.pkce_optional,
            },
            core.clock.now(),
        )
        .await
        .context("registering an application")?;
    let detail = format!(
        "application {client_id} ({name}), {}{}{}",
        if new.public { "public" } else { "confidential" },
        if new.pkce_optional {
            ", PKCE optional"
        } else {
            ""
        },
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

/// Sets whether a confidential application's logins must use PKCE; false for an unknown or public
/// application (a public one always must).
pub async fn set_pkce_required(
    core: &Core,
    by: &str,
    client_id: &str,
    required: bool,
) -> ServiceResult<bool> {
    let changed = core
        .store
        .set_oauth_app_pkce(client_id, required)
        .await
        .context("changing an application's PKCE rule")?;
    if changed {
        let rule = if required { "required" } else { "optional" };
        let detail = format!("application {client_id}: PKCE {rule}");
        audit(core, by, AuditAction::AppChanged, &detail).await?;
        tracing::info!(client_id, required, "application PKCE rule changed");
    }
    Ok(changed)
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

/// An application as its stored row describes it.
pub fn to_app(row: OAuthAppRow) -> ServiceResult<App> {
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

/// The operators' console: every registered application, as the console lists it.
pub async fn list_views(core: &Core, _by: &Operator) -> ServiceResult<Vec<ApplicationView>> {
    let list = list(core).await?;
    Ok(list
        .into_iter()
        .map(|app| ApplicationView {
            client_id: app.client_id,
            name: app.name,
            public: app.public,
            pkce_required: app.pkce_required,
            company_id: app.company_id,
            redirect_uris: app.redirect_uris,
            post_logout_redirect_uris: app.post_logout_redirect_uris,
            backchannel_logout_uri: app.backchannel_logout_uri,
        })
        .collect())
}

/// Registers an application from the console's form: one URI per line of a text area
/// (registration trims the entries and leaves out empty ones and empty fields). A refusal is the
/// field's error; its English text (which names the offending URI) goes to the log.
pub async fn register(
    core: &Core,
    by: &Operator,
    form: NewApplication,
) -> ServiceResult<CreatedApplication> {
    let lines = |text: &str| text.lines().map(str::to_owned).collect();
    let new = NewApp {
        name: form.name,
        redirect_uris: lines(&form.redirect_uris),
        post_logout_redirect_uris: lines(&form.post_logout_redirect_uris),
        backchannel_logout_uri: Some(form.backchannel_logout_uri),
        company_id: Some(form.company_id),
        public: form.public.is_some(),
        pkce_optional: form.pkce_optional.is_some(),
    };
    match create(core, by.user_id.as_str(), new).await {
        Ok(created) => Ok(CreatedApplication {
            client_id: created.client_id,
            client_secret: created.client_secret.map(|s| s.expose_secret().to_owned()),
        }),
        Err(refusal) => Err(refused(refusal)),
    }
}

/// Deletes an application from the console; 404 for an unknown one.
pub async fn remove(core: &Core, by: &Operator, client_id: String) -> ServiceResult<()> {
    if delete(core, by.user_id.as_str(), &client_id).await? {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// A new secret for a confidential application, from the console; 404 for an unknown or public
/// one.
pub async fn rotate_secret_of(
    core: &Core,
    by: &Operator,
    client_id: String,
) -> ServiceResult<CreatedApplication> {
    match rotate_secret(core, by.user_id.as_str(), &client_id).await? {
        Some(secret) => Ok(CreatedApplication {
            client_id,
            client_secret: Some(secret.expose_secret().to_owned()),
        }),
        None => Err(ServiceError::NotFound),
    }
}

/// A refused registration as the field's error.
fn refused(refusal: AppRefusal) -> ServiceError {
    let Some(field) = refusal.field else {
        // Registration logged the cause under this request's id already.
        return ServiceError::Internal(anyhow::anyhow!(refusal.problem));
    };
    tracing::info!(?field, problem = %refusal.problem, "application registration refused");
    let field = match field {
        AppField::Name => Field::Name,
        AppField::RedirectUris => Field::RedirectUris,
        AppField::PostLogoutRedirectUris => Field::PostLogoutRedirectUris,
        AppField::BackchannelLogoutUri => Field::BackchannelLogoutUri,
        AppField::CompanyId => Field::CompanyId,
        AppField::PkceOptional => Field::PkceOptional,
    };
    ServiceError::Invalid(Invalid {
        field,
        problem: refusal.kind,
    })
}

/// The applications the session's user is logged in to (see `Store::oauth_app_logins`), with
/// since when in the user's language (the Security page).
pub async fn my_applications(core: &Core, current: &Session) -> ServiceResult<Vec<AppLogin>> {
    let now = core.clock.now();
    let rows = core
        .store
        .oauth_app_logins(
            current.user.id.as_str(),
            now,
            now - core.sessions.idle_secs,
            now - core.sessions.absolute_secs,
        )
        .await
        .context("reading the applications a user is logged in to")?;
    Ok(rows
        .into_iter()
        .map(|row| AppLogin {
            name: row.name,
            since: crate::infra::mail::templates::format_time(
                row.since,
                current.lang,
                &core.time_zone,
            ),
        })
        .collect())
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
}
