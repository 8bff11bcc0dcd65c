//! How registered applications prove who they are at the token, revocation and introspection
//! endpoints (client authentication; the registry is `crate::idm::apps`):
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
use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::idm::Core;
use crate::idm::apps::{App, CLIENT_FAILURES, CLIENT_WINDOW, to_app};
use crate::infra::error::{Context, ServiceResult};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::net::IpAddr;
use subtle::ConstantTimeEq;

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

#[cfg(test)]
mod tests {
    use super::*;

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
