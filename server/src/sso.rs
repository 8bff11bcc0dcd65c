//! Single sign-on per client over OpenID Connect (authorization code flow with PKCE).
//!
//! The round trip is a small state machine whose state lives in the database, so that any
//! instance can finish what another started:
//!
//! ```text
//! email --start (counted per IP)--> client by the email's domain --> flow row + flow cookie -->
//!   IdP (state, nonce, PKCE S256, login_hint) --callback--> flow taken (single use) --> state
//!   equal? --> code exchanged with that client's credentials --> ID token verified (signature,
//!   iss, aud, exp, nonce) --> email claim (token, else userinfo), not marked unverified -->
//!   inside the client's SSO domains? --> the active user with that email in that client (or one
//!   made just in time) --> bound to this issuer + subject (bound now on the first login)? -->
//!   session
//! ```
//!
//! Every failure ends without a session, with an audit event naming the reason; the browser only
//! learns one of four outcomes ([`SsoFailure`]). Text from the provider's redirect (`error`,
//! `error_description`) reaches the audit log and the log only cleaned and cut. Starts are counted
//! per client address ([`STARTS_PER_IP`]), so that refused ones cannot fill the audit log.
//!
//! An account is bound to the identity (issuer and `sub`) of its first SSO login; an
//! administrator of its client, or an operator, can release the binding ([`release_binding`]).

use crate::Core;
use crate::accounts::{self, Actor, UserInput};
use crate::auth::token;
use crate::clock::UnixTime;
use crate::domain::{CompanyId, EmailAddress, Invalid};
use crate::error::{ServiceError, ServiceResult};
use crate::store::audit::{AuditEvent, OUTSIDE_TEXT_MAX, clean_text};
use crate::store::clients::ClientRow;
use crate::store::sso::{NewFlow, SetSsoError, SsoBinding, SsoSettingsRow};
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
/// How long a failed discovery is remembered: starts against a dead provider do not each fetch.
const FAILED_DISCOVERY_SECS: i64 = 60;
/// SSO starts one client address may make per window; beyond, they are refused unaudited.
pub const STARTS_PER_IP: i64 = 30;
const STARTS_WINDOW_SECS: i64 = 600;
/// The longest `sub` OpenID Connect allows.
const MAX_SUBJECT_LEN: usize = 255;
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
    /// The document, or why fetching it failed (kept for [`FAILED_DISCOVERY_SECS`]).
    outcome: Result<Arc<CoreProviderMetadata>, String>,
}

/// The HTTP client for identity providers and the cache of their discovery documents (and of
/// failed fetches, for a minute). The cache is only a cache: every instance fills its own, and
/// losing it costs one fetch.
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

    /// The issuer's discovery document and keys: from the cache while fresh, else fetched. A
    /// failed fetch is answered from the cache for a minute too; `refresh` (the operator's "Test
    /// connection", a token signed with an unknown key) always fetches.
    async fn metadata(
        &self,
        issuer: &str,
        now: UnixTime,
        refresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, String> {
        if !refresh {
            let cache = self.cache.lock().map_err(|_| "cache poisoned".to_owned())?;
            if let Some(hit) = cache.get(issuer) {
                let age = now - hit.fetched_at;
                match &hit.outcome {
                    Ok(metadata) if age < DISCOVERY_TTL_SECS => return Ok(Arc::clone(metadata)),
                    Err(e) if age < FAILED_DISCOVERY_SECS => {
                        return Err(format!("{e} (failed less than a minute ago)"));
                    }
                    _ => {}
                }
            }
        }
        let outcome = self.discover(issuer).await.map(Arc::new);
        if let Ok(mut cache) = self.cache.lock() {
            // A failed refresh does not evict a document that is still fresh.
            let keep = outcome.is_err()
                && cache.get(issuer).is_some_and(|hit| {
                    hit.outcome.is_ok() && now - hit.fetched_at < DISCOVERY_TTL_SECS
                });
            if !keep {
                cache.insert(
                    issuer.to_owned(),
                    Cached {
                        fetched_at: now,
                        outcome: outcome.clone(),
                    },
                );
            }
        }
        outcome
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

/// An issuer URL as operators type it: https (plain http only with `allow_http`, the setting
/// `SSO_ALLOW_HTTP_ISSUER`, and then only on this machine's loopback, for tests and local
/// identity providers), no user info, query or fragment.
pub fn parse_issuer(raw: &str, allow_http: bool) -> Result<String, Invalid> {
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
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && allow_http && loopback);
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
    crate::crypto::derive_key(
        core.settings.secret_key.expose_secret(),
        "promio.connect sso client secret",
    )
}

fn open_secret(core: &Core, client: &ClientRow) -> Option<SecretString> {
    let sealed = client.sso_client_secret.as_deref()?;
    let raw = crate::crypto::open(&sealing_key(core), sealed)?;
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
fn check_input(
    input: &SsoInput,
    has_secret: bool,
    allow_http: bool,
) -> Result<Option<CheckedSso>, Invalid> {
    if input.is_blank() {
        return Ok(None);
    }
    let issuer = if input.issuer.trim().is_empty() {
        return Err(Invalid {
            field: Field::SsoIssuer,
            problem: Problem::Missing,
        });
    } else {
        parse_issuer(&input.issuer, allow_http)?
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
    let issuer = parse_issuer(issuer, core.settings.sso_allow_http_issuer)?;
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
    let checked = check_input(input, has_secret, core.settings.sso_allow_http_issuer)?;
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
                Some(secret) => crate::crypto::seal(&sealing_key(core), secret.as_bytes())
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

/// An issuer's discovery document through the cache, refused when the issuer's scheme is not
/// allowed (settings stored while `SSO_ALLOW_HTTP_ISSUER` was on, and it is off now).
async fn provider_metadata(
    core: &Core,
    issuer: &str,
    refresh: bool,
) -> Result<Arc<CoreProviderMetadata>, String> {
    parse_issuer(issuer, core.settings.sso_allow_http_issuer).map_err(|_| {
        "the issuer URL is not allowed (plain http needs SSO_ALLOW_HTTP_ISSUER=true)".to_owned()
    })?;
    core.sso.metadata(issuer, core.clock.now(), refresh).await
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
    // Counted before anything else: a refused start writes an audit row, and one address must
    // not be able to write them without bound.
    if let Some(bucket) = crate::auth::client_ip_bucket(req) {
        let allowed = core
            .store
            .rate_limit(
                &format!("sso-ip:{bucket}"),
                core.clock.now(),
                STARTS_WINDOW_SECS,
                STARTS_PER_IP,
            )
            .await?;
        if !allowed {
            return Err(ServiceError::TooManyAttempts {
                retry_after_secs: STARTS_WINDOW_SECS as u64,
            });
        }
    }
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
    let metadata = provider_metadata(core, issuer, false).await.map_err(|e| {
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
            outcome,
        }) => {
            tracing::info!(reason = %reason, "SSO login refused");
            let audit = record(
                core,
                req,
                client_id.as_deref(),
                user_id.as_deref(),
                outcome,
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
        /// The audit outcome: `failure` (the round trip failed), `refused` (the provider vouched
        /// for someone, and a rule here says no).
        outcome: &'static str,
    },
}

fn refused(failure: SsoFailure, client: Option<&ClientRow>, reason: impl Into<String>) -> Finished {
    Finished::Refused {
        failure,
        client_id: client.map(|c| c.id.clone()),
        user_id: None,
        reason: reason.into(),
        outcome: "failure",
    }
}

/// A verified answer that a rule refuses (unverified email, a foreign domain, another identity).
fn denied(
    failure: SsoFailure,
    client: &ClientRow,
    user: Option<&UserRow>,
    reason: impl Into<String>,
) -> Finished {
    Finished::Refused {
        failure,
        client_id: Some(client.id.clone()),
        user_id: user.map(|u| u.id.clone()),
        reason: reason.into(),
        outcome: "refused",
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
        // Whatever the browser brought (any length, CR/LF, escapes) is cleaned and cut before it
        // reaches the audit log or a log line.
        let error = clean_text(error, OUTSIDE_TEXT_MAX);
        let description = clean_text(
            params.error_description.as_deref().unwrap_or_default(),
            OUTSIDE_TEXT_MAX,
        );
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
    if claims.email_unverified {
        return Ok(denied(
            SsoFailure::Failed,
            &client,
            None,
            "the identity provider says the email address is not verified (email_verified false)",
        ));
    }
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
    // The provider speaks for the client's own domains only: an address elsewhere matches no
    // account (and makes none), whatever accounts have it.
    let domains = core.store.sso_domains(&client.id).await?;
    if !domains.iter().any(|d| d == email.domain()) {
        return Ok(denied(
            SsoFailure::NotRegistered,
            &client,
            None,
            format!("the email {email} is outside the client's SSO domains"),
        ));
    }
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
                outcome: "failure",
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
    let identity = SsoBinding {
        issuer: flow.issuer.clone(),
        subject: claims.subject.clone(),
    };
    if let Some(reason) = bind_or_refuse(core, req, &client, &user, &identity).await? {
        return Ok(denied(
            SsoFailure::NotRegistered,
            &client,
            Some(&user),
            reason,
        ));
    }
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
    /// The ID token's `sub`: who the person is at the provider, for good.
    subject: String,
    email: Option<String>,
    /// The ID token or userinfo said `email_verified: false`.
    email_unverified: bool,
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
    let secret = open_secret(core, client).ok_or("the client secret cannot be read")?;
    let client_id = client.sso_client_id.clone().unwrap_or_default();
    let metadata = provider_metadata(core, &flow.issuer, false)
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
            let fresh = provider_metadata(core, &flow.issuer, true)
                .await
                .map_err(|e| format!("discovery failed: {e}"))?;
            verify(&build(&fresh)?)
                .map_err(|e| format!("the ID token was refused: {}", describe(&e)))?
        }
        Err(e) => return Err(format!("the ID token was refused: {}", describe(&e))),
    };
    let subject = claims.subject().as_str().to_owned();
    if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
        return Err(format!(
            "the ID token's subject is empty or longer than {MAX_SUBJECT_LEN} characters"
        ));
    }
    // Only an explicit false refuses: many providers (e.g. Microsoft Entra ID) omit the claim and
    // vouch for the addresses in their own directory.
    let mut email_unverified = claims.email_verified() == Some(false);
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
        email_unverified |= info.email_verified() == Some(false);
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
        subject,
        email,
        email_unverified,
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

/// Makes the user on the first SSO login when the client allows it (role user). The caller has
/// checked that the email is in one of the client's own domains.
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

/// Binds the account to the identity on its first SSO login; afterwards only that identity logs
/// in to it. `Some(reason)`: refused (another identity, or one bound to another account).
async fn bind_or_refuse(
    core: &Core,
    req: &RequestCtx,
    client: &ClientRow,
    user: &UserRow,
    identity: &SsoBinding,
) -> ServiceResult<Option<String>> {
    let now = core.clock.now();
    let subject = clean_text(&identity.subject, OUTSIDE_TEXT_MAX);
    if core
        .store
        .bind_sso_identity(&user.id, identity, now)
        .await?
    {
        let ip = crate::auth::client_ip(req);
        core.store
            .record(
                AuditEvent {
                    client_id: Some(&client.id),
                    subject_user_id: Some(&user.id),
                    action: "user.sso_bound",
                    outcome: "success",
                    detail: &format!("issuer {}, subject {subject}", identity.issuer),
                    ip: ip.as_deref(),
                    ..Default::default()
                },
                now,
            )
            .await?;
        tracing::info!(user_id = %user.id, "account bound to its identity at the provider");
        return Ok(None);
    }
    // Not bound now: bound before (to this identity, or by a concurrent first login to it), or
    // to another one, or the identity belongs to another account.
    Ok(match core.store.sso_binding(&user.id).await? {
        Some(bound) if bound == *identity => None,
        Some(bound) => Some(format!(
            "the account is bound to subject {} of {}, the identity provider answered for \
             subject {subject} of {}",
            clean_text(&bound.subject, OUTSIDE_TEXT_MAX),
            bound.issuer,
            identity.issuer
        )),
        None => Some(format!(
            "subject {subject} of {} is bound to another account of the client",
            identity.issuer
        )),
    })
}

/// Releases a user's binding to an identity at the identity provider (the address passed to a
/// new colleague, the company moved to another provider): the next SSO login binds the account
/// again. For an administrator of the user's client, with the rules of [`crate::admin`] on who
/// acts on whom, and for operators (who set every client's provider anyway). Audited.
pub async fn release_binding(core: &Core, req: &RequestCtx, id: String) -> ServiceResult<()> {
    let (user, actor_id, ip) = match crate::operator::operator_ctx(core, req).await {
        Ok(operator) => {
            let user = core
                .store
                .user_by_id(id.trim())
                .await?
                .ok_or(ServiceError::NotFound)?;
            (user, operator.user_id, operator.ip)
        }
        Err(ServiceError::Forbidden) => {
            let ctx = crate::admin::admin_ctx(core, req).await?;
            let user = crate::admin::own_user(core, &ctx, &id).await?;
            (user, ctx.admin.id, ctx.ip)
        }
        Err(e) => return Err(e),
    };
    let now = core.clock.now();
    let Some(released) = core.store.release_sso_binding(&user.id, now).await? else {
        return Ok(());
    };
    core.store
        .record(
            AuditEvent {
                client_id: Some(&user.client_id),
                actor_user_id: Some(&actor_id),
                subject_user_id: Some(&user.id),
                action: "user.sso_released",
                outcome: "success",
                detail: &format!(
                    "issuer {}, subject {}",
                    released.issuer,
                    clean_text(&released.subject, OUTSIDE_TEXT_MAX)
                ),
                ip: ip.as_deref(),
            },
            now,
        )
        .await?;
    tracing::info!(user_id = %user.id, "SSO binding released");
    Ok(())
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
    fn issuers_must_be_https_and_http_only_on_loopback_when_allowed() {
        for allow_http in [false, true] {
            assert!(parse_issuer("https://login.example.com/tenant/v2.0", allow_http).is_ok());
            assert!(parse_issuer("https://127.0.0.1:4000", allow_http).is_ok());
        }
        for local in ["http://127.0.0.1:4000", "http://localhost:8080/realms/acme"] {
            assert!(parse_issuer(local, true).is_ok(), "{local}");
            assert_eq!(
                parse_issuer(local, false).unwrap_err(),
                Invalid {
                    field: Field::SsoIssuer,
                    problem: Problem::Malformed
                },
                "{local} without SSO_ALLOW_HTTP_ISSUER"
            );
        }
        for bad in [
            "http://idp.example.com",
            "ftp://idp.example.com",
            "https://user:pw@idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#frag",
            "not a url",
        ] {
            for allow_http in [false, true] {
                assert_eq!(
                    parse_issuer(bad, allow_http).unwrap_err().problem,
                    Problem::Malformed,
                    "{bad}"
                );
            }
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
        assert!(
            check_input(&SsoInput::default(), false, false)
                .unwrap()
                .is_none()
        );
        let partial = SsoInput {
            client_id: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            check_input(&partial, false, false)
                .map(|_| ())
                .unwrap_err()
                .field,
            Field::SsoIssuer
        );
        let no_secret = SsoInput {
            issuer: "https://idp.example".into(),
            client_id: "x".into(),
            domains: "acme.example".into(),
            ..Default::default()
        };
        assert_eq!(
            check_input(&no_secret, false, false)
                .map(|_| ())
                .unwrap_err()
                .field,
            Field::SsoClientSecret
        );
        // Editing keeps the stored secret.
        assert!(check_input(&no_secret, true, false).unwrap().is_some());
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
