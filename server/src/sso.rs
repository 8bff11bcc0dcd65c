//! Single sign-on per client over OpenID Connect (authorization code flow with PKCE).
//!
//! The round trip is a small state machine whose state lives in the database, so that any
//! instance can finish what another started:
//!
//! ```text
//! email --start--> client by the email's domain --> flow row + flow cookie --> IdP (state, nonce,
//!   PKCE S256, login_hint) --callback--> flow taken (single use) --> state equal? --> code
//!   exchanged with that client's credentials --> ID token verified (signature, iss, aud, exp,
//!   nonce) --> email claim (token, else userinfo) --> the active user with that email in that
//!   client (or one made just in time) --> session
//! ```
//!
//! Every failure ends without a session, with an audit event naming the reason; the browser only
//! learns one of four outcomes ([`SsoFailure`]).

use crate::Core;
use crate::accounts::{self, Actor, UserInput};
use crate::auth::token;
use crate::clock::UnixTime;
use crate::domain::{CompanyId, EmailAddress, Invalid};
use crate::error::{ServiceError, ServiceResult};
use crate::store::audit::AuditEvent;
use crate::store::clients::ClientRow;
use crate::store::sso::{NewFlow, SetSsoError, SsoSettingsRow};
use crate::store::users::{UserRow, UserStatus};
use http::header::SET_COOKIE;
use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreIdTokenVerifier, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::reqwest;
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use promio_app::api::{Field, Problem, Role, SsoCheck};
use promio_app::ssr::RequestCtx;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a browser may take at its identity provider.
pub const FLOW_TTL_SECS: i64 = 600;
/// How long a discovery document (with its signing keys) is used before it is fetched again.
const DISCOVERY_TTL_SECS: i64 = 3600;
const FLOW_COOKIE: &str = "sso-flow";
const DEFAULT_EMAIL_CLAIM: &str = "email";
const MAX_DOMAINS: usize = 50;

/// What the browser learns of a failed round trip (the page explains each; the audit log has
/// the precise reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoFailure {
    /// The flow's cookie is missing, used or too old.
    Expired,
    /// The person cancelled at the identity provider.
    Cancelled,
    /// The identity provider confirmed someone who has no active account here.
    NotRegistered,
    /// Anything else: the provider's error, a token that failed verification, a wrong state.
    Failed,
}

impl SsoFailure {
    pub fn code(self) -> &'static str {
        match self {
            SsoFailure::Expired => "expired",
            SsoFailure::Cancelled => "cancelled",
            SsoFailure::NotRegistered => "not_registered",
            SsoFailure::Failed => "failed",
        }
    }
}

/// The query of the identity provider's redirect back to `/sso/callback`.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The issuer that answered (RFC 9207), when the provider sends it.
    pub iss: Option<String>,
}

impl CallbackParams {
    /// From a query string; the first of repeated names counts, unknown names are ignored.
    pub fn from_query(query: &str) -> CallbackParams {
        let mut params = CallbackParams::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                "iss" => &mut params.iss,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        params
    }
}

/// Every claim besides the standard ones, so that any configured claim (e.g. ADFS's `upn`) can
/// be read from userinfo.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    rest: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

struct Cached {
    fetched_at: UnixTime,
    metadata: Arc<CoreProviderMetadata>,
}

/// The HTTP client for identity providers and the cache of their discovery documents. The cache
/// is only a cache: every instance fills its own, and losing it costs one fetch.
pub struct Sso {
    http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Sso {
    pub fn new() -> anyhow::Result<Sso> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider point this server anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Sso {
            http,
            cache: Mutex::default(),
        })
    }

    /// The issuer's discovery document and keys: from the cache while fresh, else fetched.
    async fn metadata(
        &self,
        issuer: &str,
        now: UnixTime,
        refresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, String> {
        if !refresh {
            let cache = self.cache.lock().map_err(|_| "cache poisoned".to_owned())?;
            if let Some(hit) = cache
                .get(issuer)
                .filter(|hit| now - hit.fetched_at < DISCOVERY_TTL_SECS)
            {
                return Ok(Arc::clone(&hit.metadata));
            }
        }
        let metadata = Arc::new(self.discover(issuer).await?);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                issuer.to_owned(),
                Cached {
                    fetched_at: now,
                    metadata: Arc::clone(&metadata),
                },
            );
        }
        Ok(metadata)
    }

    /// Fetches and checks the discovery document: its `issuer` must equal the configured one, it
    /// must offer the authorization code flow, and its key set must load.
    async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, String> {
        let url = IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("bad issuer URL: {e}"))?;
        let metadata = CoreProviderMetadata::discover_async(url, &self.http)
            .await
            .map_err(|e| describe(&e))?;
        let code_flow = metadata
            .response_types_supported()
            .iter()
            .any(|t| t.as_ref() == [CoreResponseType::Code]);
        if !code_flow {
            return Err("the provider does not offer the authorization code flow".to_owned());
        }
        if metadata.token_endpoint().is_none() {
            return Err("the discovery document names no token endpoint".to_owned());
        }
        Ok(metadata)
    }
}

/// An error and its causes in one line, for the operator (discovery) and the log.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// An issuer URL as operators type it: https (plain http only on this machine's loopback, for
/// tests and local identity providers), no user info, query or fragment.
pub fn parse_issuer(raw: &str) -> Result<String, Invalid> {
    let malformed = Invalid {
        field: Field::SsoIssuer,
        problem: Problem::Malformed,
    };
    let raw = raw.trim();
    if raw.len() > 512 {
        return Err(Invalid {
            field: Field::SsoIssuer,
            problem: Problem::TooLong { max: 512 },
        });
    }
    let url = url::Url::parse(raw).map_err(|_| malformed)?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
        || url.host_str() == Some("localhost");
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(malformed);
    }
    Ok(raw.to_owned())
}

/// Email domains typed as a list (commas, spaces or new lines), lower-cased, without repeats.
pub fn parse_domains(raw: &str) -> Result<Vec<String>, Invalid> {
    let mut domains: Vec<String> = Vec::new();
    for part in raw.split(|c: char| c == ',' || c == ';' || c.is_whitespace()) {
        let part = part.trim().trim_start_matches('@');
        if part.is_empty() {
            continue;
        }
        let parsed = EmailAddress::parse(&format!("x@{part}")).map_err(|_| Invalid {
            field: Field::SsoDomains,
            problem: Problem::Malformed,
        })?;
        let domain = parsed.domain().to_owned();
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    if domains.is_empty() {
        return Err(Invalid {
            field: Field::SsoDomains,
            problem: Problem::Missing,
        });
    }
    if domains.len() > MAX_DOMAINS {
        return Err(Invalid {
            field: Field::SsoDomains,
            problem: Problem::TooLong {
                max: MAX_DOMAINS as u32,
            },
        });
    }
    Ok(domains)
}

/// A claim name: letters, digits and `_ : . -`, at most 64 characters; empty means `email`.
pub fn parse_email_claim(raw: &str) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(DEFAULT_EMAIL_CLAIM.to_owned());
    }
    let ok = raw.len() <= 64
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '-'));
    if !ok {
        return Err(Invalid {
            field: Field::SsoEmailClaim,
            problem: Problem::InvalidCharacters,
        });
    }
    Ok(raw.to_owned())
}

fn text(field: Field, raw: &str, max: u32) -> Result<String, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Invalid {
            field,
            problem: Problem::Missing,
        });
    }
    if raw.chars().count() > max as usize {
        return Err(Invalid {
            field,
            problem: Problem::TooLong { max },
        });
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid {
            field,
            problem: Problem::ControlCharacters,
        });
    }
    Ok(raw.to_owned())
}

/// The key that seals client secrets: derived from `SECRET_KEY`, apart from the TOTP key use.
fn sealing_key(core: &Core) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(core.settings.secret_key.expose_secret())
            .expect("HMAC takes keys of any length");
    mac.update(b"promio.connect sso client secret");
    mac.finalize().into_bytes().into()
}

fn open_secret(core: &Core, client: &ClientRow) -> Option<SecretString> {
    let sealed = client.sso_client_secret.as_deref()?;
    let raw = crate::totp::open(&sealing_key(core), sealed)?;
    String::from_utf8(raw).ok().map(SecretString::from)
}

/// A client's SSO settings as an operator enters them.
#[derive(Debug, Clone, Default)]
pub struct SsoInput {
    /// Empty: single sign-on off (the other fields must then be empty too).
    pub issuer: String,
    pub client_id: String,
    /// Empty keeps the stored secret.
    pub client_secret: String,
    pub domains: String,
    pub email_claim: String,
    pub jit: bool,
}

impl SsoInput {
    fn is_blank(&self) -> bool {
        self.issuer.trim().is_empty()
            && self.client_id.trim().is_empty()
            && self.client_secret.trim().is_empty()
            && self.domains.trim().is_empty()
    }
}

/// Checked settings, ready to store once the provider has been asked.
struct CheckedSso {
    issuer: String,
    client_id: String,
    secret: Option<String>,
    domains: Vec<String>,
    email_claim: String,
    jit: bool,
}

/// Checks the fields (nothing is fetched or written). `None`: SSO off.
fn check_input(input: &SsoInput, has_secret: bool) -> Result<Option<CheckedSso>, Invalid> {
    if input.is_blank() {
        return Ok(None);
    }
    let issuer = if input.issuer.trim().is_empty() {
        return Err(Invalid {
            field: Field::SsoIssuer,
            problem: Problem::Missing,
        });
    } else {
        parse_issuer(&input.issuer)?
    };
    let client_id = text(Field::SsoClientId, &input.client_id, 255)?;
    let secret = if input.client_secret.trim().is_empty() {
        if !has_secret {
            return Err(Invalid {
                field: Field::SsoClientSecret,
                problem: Problem::Missing,
            });
        }
        None
    } else {
        Some(text(Field::SsoClientSecret, &input.client_secret, 1024)?)
    };
    Ok(Some(CheckedSso {
        issuer,
        client_id,
        secret,
        domains: parse_domains(&input.domains)?,
        email_claim: parse_email_claim(&input.email_claim)?,
        jit: input.jit,
    }))
}

/// Fetches and checks an issuer's discovery document for "Test connection" (and the save).
pub async fn check_provider(core: &Core, issuer: &str) -> ServiceResult<SsoCheck> {
    let issuer = parse_issuer(issuer)?;
    let metadata = core
        .sso
        .metadata(&issuer, core.clock.now(), true)
        .await
        .map_err(ServiceError::SsoProvider)?;
    Ok(SsoCheck {
        issuer: metadata.issuer().to_string(),
        authorization_endpoint: metadata.authorization_endpoint().to_string(),
        token_endpoint: metadata
            .token_endpoint()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        signing_keys: metadata.jwks().keys().len() as u32,
        redirect_uri: redirect_url(core)?.to_string(),
    })
}

/// SSO settings that passed every check (fields, and the provider's discovery document), ready
/// to be stored; `None` inside: SSO off.
pub struct PreparedSso(Option<CheckedSso>);

impl PreparedSso {
    /// Whether storing these settings changes what the client has.
    pub async fn changes(&self, core: &Core, client: &ClientRow) -> ServiceResult<bool> {
        let Some(c) = &self.0 else {
            return Ok(client.uses_sso());
        };
        let domains = core.store.sso_domains(&client.id).await?;
        let mut wanted = c.domains.clone();
        wanted.sort();
        Ok(c.secret.is_some()
            || client.sso_issuer.as_deref() != Some(c.issuer.as_str())
            || client.sso_client_id.as_deref() != Some(c.client_id.as_str())
            || client.sso_email_claim.as_deref() != Some(c.email_claim.as_str())
            || client.sso_creates_users() != c.jit
            || domains != wanted)
    }
}

/// Checks SSO settings before anything is written: the fields, that no domain belongs to another
/// client, then the issuer's discovery document. `client`: the client being edited (`None` for a
/// new one); its stored secret is kept when the field is empty.
pub async fn prepare(
    core: &Core,
    input: &SsoInput,
    client: Option<&ClientRow>,
) -> ServiceResult<PreparedSso> {
    let has_secret = client.is_some_and(|c| c.sso_client_secret.is_some());
    let checked = check_input(input, has_secret)?;
    if let Some(c) = &checked {
        for domain in &c.domains {
            let owner = core.store.client_by_sso_domain(domain).await?;
            if owner.is_some_and(|o| client.is_none_or(|c| c.id != o.id)) {
                return Err(ServiceError::Invalid(Invalid {
                    field: Field::SsoDomains,
                    problem: Problem::Taken,
                }));
            }
        }
        check_provider(core, &c.issuer).await?;
    }
    Ok(PreparedSso(checked))
}

/// Sets or turns off a client's single sign-on (checked first, see [`prepare`]). A domain of
/// another client is refused and nothing is stored.
pub async fn configure(
    core: &Core,
    actor: Actor<'_>,
    company_id: &str,
    input: SsoInput,
) -> ServiceResult<ClientRow> {
    let id = CompanyId::parse(company_id)?;
    let client = core
        .store
        .client_by_company_id(&id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let prepared = prepare(core, &input, Some(&client)).await?;
    store_prepared(core, actor, &client, prepared).await
}

pub async fn store_prepared(
    core: &Core,
    actor: Actor<'_>,
    client: &ClientRow,
    prepared: PreparedSso,
) -> ServiceResult<ClientRow> {
    let company_id = CompanyId::parse(&client.company_id)?;
    if company_id.key() == core.settings.platform_company_id.key() && prepared.0.is_some() {
        // Operators must always be able to log in with their password.
        return Err(ServiceError::Forbidden);
    }
    let now = core.clock.now();
    let (row, domains, detail) = match prepared.0 {
        None => (None, Vec::new(), "single sign-on off".to_owned()),
        Some(c) => {
            let sealed_secret = match &c.secret {
                Some(secret) => crate::totp::seal(&sealing_key(core), secret.as_bytes())
                    .ok_or_else(|| anyhow::anyhow!("cannot seal the client secret"))?,
                None => client.sso_client_secret.clone().unwrap_or_default(),
            };
            let detail = format!(
                "issuer {}, client ID {}, domains {}, email claim {}, users made on first login: {}{}",
                c.issuer,
                c.client_id,
                c.domains.join(" "),
                c.email_claim,
                c.jit,
                if c.secret.is_some() {
                    ", new client secret"
                } else {
                    ""
                }
            );
            let row = SsoSettingsRow {
                issuer: c.issuer,
                client_id: c.client_id,
                sealed_secret,
                email_claim: c.email_claim,
                jit: c.jit,
            };
            (Some(row), c.domains, detail)
        }
    };
    let updated = core
        .store
        .set_client_sso(&company_id, row.as_ref(), &domains, now)
        .await
        .map_err(|e| match e {
            SetSsoError::NoSuchClient => ServiceError::NotFound,
            SetSsoError::DomainTaken(domain) => {
                tracing::info!(%domain, "SSO domain belongs to another client");
                ServiceError::Invalid(Invalid {
                    field: Field::SsoDomains,
                    problem: Problem::Taken,
                })
            }
            SetSsoError::Database(e) => ServiceError::Database(e),
        })?;
    core.store
        .record(
            AuditEvent {
                client_id: Some(&updated.id),
                actor_user_id: actor.user_id,
                action: "client.sso_changed",
                outcome: "success",
                detail: &detail,
                ip: actor.ip,
                ..Default::default()
            },
            now,
        )
        .await?;
    Ok(updated)
}

fn redirect_url(core: &Core) -> ServiceResult<RedirectUrl> {
    let url = core
        .settings
        .public_url
        .join("sso/callback")
        .map_err(|e| anyhow::anyhow!("PUBLIC_URL cannot take /sso/callback: {e}"))?;
    Ok(RedirectUrl::from_url(url))
}

async fn record(
    core: &Core,
    req: &RequestCtx,
    client_id: Option<&str>,
    user_id: Option<&str>,
    outcome: &str,
    detail: &str,
) -> ServiceResult<()> {
    let ip = crate::auth::client_ip(req);
    core.auth.metrics.login("sso", outcome);
    core.store
        .record(
            AuditEvent {
                client_id,
                actor_user_id: user_id,
                subject_user_id: user_id,
                action: "login.sso",
                outcome,
                detail,
                ip: ip.as_deref(),
            },
            core.clock.now(),
        )
        .await?;
    Ok(())
}

/// The first step: the client whose SSO domain the email has, a new flow, and the provider's
/// authorization URL for the browser.
pub async fn start(core: &Core, req: &RequestCtx, email: String) -> ServiceResult<String> {
    let email = EmailAddress::parse(&email)?;
    let client = core
        .store
        .client_by_sso_domain(email.domain())
        .await?
        .filter(|c| c.is_active() && c.uses_sso());
    let Some(client) = client else {
        record(
            core,
            req,
            None,
            None,
            "refused",
            &format!("no active SSO client for the domain {}", email.domain()),
        )
        .await?;
        return Err(ServiceError::SsoNotSetUp);
    };
    let (Some(issuer), Some(client_id)) = (&client.sso_issuer, &client.sso_client_id) else {
        return Err(ServiceError::SsoNotSetUp);
    };
    let now = core.clock.now();
    let metadata = core.sso.metadata(issuer, now, false).await.map_err(|e| {
        tracing::warn!(%issuer, error = %e, "identity provider unreachable");
        ServiceError::Busy
    })?;
    let oidc = CoreClient::from_provider_metadata(
        (*metadata).clone(),
        ClientId::new(client_id.clone()),
        None,
    )
    .set_redirect_uri(redirect_url(core)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = oidc
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("profile".to_owned()))
        .set_pkce_challenge(challenge)
        .set_login_hint(LoginHint::new(email.as_str().to_owned()))
        .url();
    let flow = token::issue();
    core.store
        .insert_sso_flow(
            NewFlow {
                id_hash: &flow.hash,
                client_id: &client.id,
                issuer,
                state: state.secret(),
                nonce: nonce.secret(),
                pkce_verifier: verifier.secret(),
                email: email.as_str(),
            },
            now,
            now - FLOW_TTL_SECS,
        )
        .await?;
    req.add_response_header(
        SET_COOKIE,
        core.auth
            .cookies
            .short_lived(FLOW_COOKIE, flow.secret.expose_secret(), FLOW_TTL_SECS),
    );
    tracing::info!(client = %client.company_id, "SSO login started");
    Ok(url.to_string())
}

/// The way back from the identity provider. On success the browser has a session.
pub async fn callback(
    core: &Core,
    req: &RequestCtx,
    params: CallbackParams,
) -> Result<(), SsoFailure> {
    // The flow cookie is spent whatever happens next.
    req.add_response_header(SET_COOKIE, core.auth.cookies.clear(FLOW_COOKIE));
    match finish(core, req, params).await {
        Ok(Finished::LoggedIn) => Ok(()),
        Ok(Finished::Refused {
            failure,
            client_id,
            user_id,
            reason,
        }) => {
            tracing::info!(reason = %reason, "SSO login refused");
            let audit = record(
                core,
                req,
                client_id.as_deref(),
                user_id.as_deref(),
                "failure",
                &reason,
            )
            .await;
            if let Err(e) = audit {
                tracing::error!(error = ?e, "cannot record the refused SSO login");
            }
            Err(failure)
        }
        Err(e) => {
            // Logged with an id by the mapping.
            let _ = promio_app::api::ApiError::from(e);
            Err(SsoFailure::Failed)
        }
    }
}

enum Finished {
    LoggedIn,
    Refused {
        failure: SsoFailure,
        client_id: Option<String>,
        user_id: Option<String>,
        reason: String,
    },
}

fn refused(failure: SsoFailure, client: Option<&ClientRow>, reason: impl Into<String>) -> Finished {
    Finished::Refused {
        failure,
        client_id: client.map(|c| c.id.clone()),
        user_id: None,
        reason: reason.into(),
    }
}

async fn finish(core: &Core, req: &RequestCtx, params: CallbackParams) -> ServiceResult<Finished> {
    let Some(flow_hash) = core.auth.presented(req, FLOW_COOKIE) else {
        return Ok(refused(
            SsoFailure::Expired,
            None,
            "callback without the flow cookie (expired, or another browser)",
        ));
    };
    let Some(flow) = core.store.take_sso_flow(&flow_hash).await? else {
        return Ok(refused(
            SsoFailure::Expired,
            None,
            "callback for an unknown or already finished flow",
        ));
    };
    let client = core.store.client_by_id(&flow.client_id).await?;
    let Some(client) = client else {
        return Ok(refused(
            SsoFailure::Failed,
            None,
            "the flow's client is gone",
        ));
    };
    let now = core.clock.now();
    if now - flow.created_at > FLOW_TTL_SECS {
        return Ok(refused(
            SsoFailure::Expired,
            Some(&client),
            "the flow expired",
        ));
    }
    let state_ok = params
        .state
        .as_deref()
        .is_some_and(|s| constant_time_eq(s.as_bytes(), flow.state.as_bytes()));
    if !state_ok {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the state does not match the flow",
        ));
    }
    if params.iss.as_deref().is_some_and(|iss| iss != flow.issuer) {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the answer came from another issuer than the flow's",
        ));
    }
    if let Some(error) = params.error.as_deref() {
        let failure = if error == "access_denied" {
            SsoFailure::Cancelled
        } else {
            SsoFailure::Failed
        };
        let description: String = params
            .error_description
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        return Ok(refused(
            failure,
            Some(&client),
            format!("the identity provider answered {error}: {description}"),
        ));
    }
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "no code in the callback",
        ));
    };
    let settings_now = client.is_active()
        && client.sso_issuer.as_deref() == Some(flow.issuer.as_str())
        && client.sso_client_id.is_some();
    if !settings_now {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the client's SSO was turned off or changed during the login",
        ));
    }
    let claims = match verified_claims(core, &client, &flow, code).await {
        Ok(claims) => claims,
        Err(reason) => return Ok(refused(SsoFailure::Failed, Some(&client), reason)),
    };
    let Some(email) = claims
        .email
        .as_deref()
        .and_then(|e| EmailAddress::parse(e).ok())
    else {
        return Ok(refused(
            SsoFailure::Failed,
            Some(&client),
            "the identity provider sent no usable email claim",
        ));
    };
    let users = core.store.users_by_email(&client.id, &email.key()).await?;
    let mut active = users.iter().filter(|u| u.status() == UserStatus::Active);
    let user = match (active.next(), active.next()) {
        (Some(user), None) => user.clone(),
        (Some(_), Some(_)) => {
            return Ok(refused(
                SsoFailure::Failed,
                Some(&client),
                format!("several active users have the email {email}"),
            ));
        }
        (None, _) if !users.is_empty() => {
            return Ok(Finished::Refused {
                failure: SsoFailure::NotRegistered,
                client_id: Some(client.id.clone()),
                user_id: users.first().map(|u| u.id.clone()),
                reason: format!("the user with the email {email} is not active"),
            });
        }
        (None, _) => match just_in_time(core, req, &client, &email, &claims).await? {
            Some(user) => user,
            None => {
                return Ok(refused(
                    SsoFailure::NotRegistered,
                    Some(&client),
                    format!("no user with the email {email}"),
                ));
            }
        },
    };
    core.auth.start_session(req, &user).await?;
    record(
        core,
        req,
        Some(&client.id),
        Some(&user.id),
        "success",
        "sso",
    )
    .await?;
    tracing::info!(user_id = %user.id, "SSO login succeeded");
    Ok(Finished::LoggedIn)
}

/// What the verified answer of the identity provider says about the person.
struct PersonClaims {
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// Exchanges the code with the flow's client's credentials and verifies the ID token. `Err` is
/// the reason for the audit log.
async fn verified_claims(
    core: &Core,
    client: &ClientRow,
    flow: &crate::store::sso::SsoFlowRow,
    code: String,
) -> Result<PersonClaims, String> {
    let now = core.clock.now();
    let secret = open_secret(core, client).ok_or("the client secret cannot be read")?;
    let client_id = client.sso_client_id.clone().unwrap_or_default();
    let metadata = core
        .sso
        .metadata(&flow.issuer, now, false)
        .await
        .map_err(|e| format!("discovery failed: {e}"))?;
    let build = |metadata: &CoreProviderMetadata| -> Result<_, String> {
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.clone()),
            Some(ClientSecret::new(secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect_url(core).map_err(|e| format!("{e:?}"))?))
    };
    let oidc = build(&metadata)?;
    let response = oidc
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| describe(&e))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
        .request_async(&core.sso.http)
        .await
        .map_err(|e| format!("the token request failed: {}", describe(&e)))?;
    let id_token = response
        .id_token()
        .ok_or("the token response has no ID token")?;
    let nonce = Nonce::new(flow.nonce.clone());
    let clock = Arc::clone(&core.clock);
    let time =
        move || chrono::DateTime::<chrono::Utc>::from_timestamp(clock.now(), 0).unwrap_or_default();
    let verify = |oidc: &CoreClient<_, _, _, _, _, _>| {
        let verifier: CoreIdTokenVerifier = oidc.id_token_verifier().set_time_fn(time.clone());
        id_token.claims(&verifier, &nonce).cloned()
    };
    let claims = match verify(&oidc) {
        Ok(claims) => claims,
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) => {
            // The provider may have rotated its keys since the document was cached.
            let fresh = core
                .sso
                .metadata(&flow.issuer, now, true)
                .await
                .map_err(|e| format!("discovery failed: {e}"))?;
            verify(&build(&fresh)?)
                .map_err(|e| format!("the ID token was refused: {}", describe(&e)))?
        }
        Err(e) => return Err(format!("the ID token was refused: {}", describe(&e))),
    };
    let claim = client
        .sso_email_claim
        .clone()
        .unwrap_or_else(|| DEFAULT_EMAIL_CLAIM.to_owned());
    let given_name = claims
        .given_name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string());
    let family_name = claims
        .family_name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string());
    let mut email = if claim == DEFAULT_EMAIL_CLAIM {
        claims.email().map(|e| e.to_string())
    } else {
        payload_claim(&id_token.to_string(), &claim)
    };
    let (mut given_name, mut family_name) = (given_name, family_name);
    if email.is_none() {
        // Many providers put the email only into userinfo.
        let request = oidc
            .user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .map_err(
                |_| "the ID token has no email claim and the provider has no userinfo endpoint",
            )?;
        let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
            .request_async(&core.sso.http)
            .await
            .map_err(|e| format!("the userinfo request failed: {}", describe(&e)))?;
        email = if claim == DEFAULT_EMAIL_CLAIM {
            info.email().map(|e| e.to_string())
        } else {
            info.additional_claims()
                .rest
                .get(&claim)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        given_name = given_name.or_else(|| {
            info.given_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
        });
        family_name = family_name.or_else(|| {
            info.family_name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
        });
    }
    Ok(PersonClaims {
        email,
        given_name,
        family_name,
    })
}

/// A string claim of a JWT's payload (the token was verified before this is called).
fn payload_claim(jwt: &str, claim: &str) -> Option<String> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get(claim)?.as_str().map(str::to_owned)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Makes the user on the first SSO login when the client allows it (role user), only for the
/// client's own email domains.
async fn just_in_time(
    core: &Core,
    req: &RequestCtx,
    client: &ClientRow,
    email: &EmailAddress,
    claims: &PersonClaims,
) -> ServiceResult<Option<UserRow>> {
    if !client.sso_creates_users() {
        return Ok(None);
    }
    let domains = core.store.sso_domains(&client.id).await?;
    if !domains.iter().any(|d| d == email.domain()) {
        return Ok(None);
    }
    let base = username_for(email);
    let clean = |name: &Option<String>| -> String {
        name.as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect()
    };
    for attempt in 1..=20 {
        let username = if attempt == 1 {
            base.clone()
        } else {
            let suffix = format!("-{attempt}");
            let keep = 64 - suffix.len();
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        };
        let input = UserInput {
            company_id: client.company_id.clone(),
            username,
            email: email.as_str().to_owned(),
            first_name: clean(&claims.given_name),
            last_name: clean(&claims.family_name),
            role: Role::User,
            language: req.lang().code().to_owned(),
            password: None,
        };
        match accounts::create_invited_user(core, Actor::default(), client, input).await {
            Ok(user) => {
                tracing::info!(user_id = %user.id, "user made on first SSO login");
                return Ok(Some(user));
            }
            Err(ServiceError::Invalid(Invalid {
                field: Field::UserName,
                problem: Problem::Taken,
            })) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// A user name from an email address: the characters user names allow, at most 64.
fn username_for(email: &EmailAddress) -> String {
    email
        .key()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        assert!(parse_issuer("https://login.example.com/tenant/v2.0").is_ok());
        assert!(parse_issuer("http://127.0.0.1:4000").is_ok());
        assert!(parse_issuer("http://localhost:8080/realms/acme").is_ok());
        for bad in [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#frag",
            "not a url",
        ] {
            assert_eq!(
                parse_issuer(bad).unwrap_err().problem,
                Problem::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn domains_are_lowercased_deduplicated_and_checked() {
        assert_eq!(
            parse_domains("ACME.example, @acme.example\nsub.acme.example").unwrap(),
            vec!["acme.example".to_owned(), "sub.acme.example".to_owned()]
        );
        assert_eq!(parse_domains(" , ").unwrap_err().problem, Problem::Missing);
        assert_eq!(
            parse_domains("acme").unwrap_err().problem,
            Problem::Malformed
        );
        assert_eq!(
            parse_domains("bad_domain!.example").unwrap_err().problem,
            Problem::Malformed
        );
    }

    #[test]
    fn the_email_claim_defaults_to_email() {
        assert_eq!(parse_email_claim("").unwrap(), "email");
        assert_eq!(parse_email_claim(" upn ").unwrap(), "upn");
        assert!(parse_email_claim("a b").is_err());
    }

    #[test]
    fn blank_settings_turn_sso_off_and_partial_ones_name_what_is_missing() {
        assert!(check_input(&SsoInput::default(), false).unwrap().is_none());
        let partial = SsoInput {
            client_id: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            check_input(&partial, false).map(|_| ()).unwrap_err().field,
            Field::SsoIssuer
        );
        let no_secret = SsoInput {
            issuer: "https://idp.example".into(),
            client_id: "x".into(),
            domains: "acme.example".into(),
            ..Default::default()
        };
        assert_eq!(
            check_input(&no_secret, false)
                .map(|_| ())
                .unwrap_err()
                .field,
            Field::SsoClientSecret
        );
        // Editing keeps the stored secret.
        assert!(check_input(&no_secret, true).unwrap().is_some());
    }

    #[test]
    fn user_names_from_emails_use_the_allowed_alphabet() {
        let email = EmailAddress::parse("Jane+Test@ACME.example").unwrap();
        assert_eq!(username_for(&email), "jane-test@acme.example");
    }

    #[test]
    fn a_claim_is_read_from_the_payload() {
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"upn":"jane@acme.example","n":1}"#);
        let jwt = format!("h.{payload}.s");
        assert_eq!(
            payload_claim(&jwt, "upn").as_deref(),
            Some("jane@acme.example")
        );
        assert_eq!(payload_claim(&jwt, "n"), None);
        assert_eq!(payload_claim("garbage", "upn"), None);
    }
}
