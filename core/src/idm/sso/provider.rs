//! The HTTP client for identity providers and the cache of their discovery documents.

use super::target;
use crate::domain::clock::UnixTime;
use openidconnect::core::{CoreJsonWebKey, CoreProviderMetadata, CoreResponseType};
use openidconnect::reqwest;
use openidconnect::{IssuerUrl, JsonWebKeySet};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a discovery document (with its signing keys) is used before it is fetched again.
const DISCOVERY_TTL_SECS: i64 = 3600;
/// How long a failed discovery is remembered: starts against a dead provider do not each fetch.
const FAILED_DISCOVERY_SECS: i64 = 60;

struct Cached {
    fetched_at: UnixTime,
    /// The document, or why fetching it failed (kept for [`FAILED_DISCOVERY_SECS`]).
    outcome: Result<Arc<CoreProviderMetadata>, String>,
}

/// The HTTP client for identity providers and the cache of their discovery documents (and of
/// failed fetches, for a minute). The cache is only a cache: every instance fills its own, and
/// losing it costs one fetch.
pub struct Sso {
    pub(super) http: reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
    /// Requests may go to loopback addresses (`SSO_ALLOW_HTTP_ISSUER`); never to private or
    /// link-local ones (see [`target`]).
    allow_loopback: bool,
}

impl Sso {
    /// `allow_loopback`: the setting `SSO_ALLOW_HTTP_ISSUER` (tests and local providers).
    pub fn new(allow_loopback: bool) -> anyhow::Result<Sso> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider point this server anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            // So would a name that resolves to a private address by the time of the connection.
            .dns_resolver(Arc::new(target::GuardedResolver { allow_loopback }))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Sso {
            http,
            cache: Mutex::default(),
            allow_loopback,
        })
    }

    /// The issuer's discovery document and keys: from the cache while fresh, else fetched. A
    /// failed fetch is answered from the cache for a minute too; `refresh` (the operator's "Test
    /// connection", a token signed with an unknown key) always fetches.
    pub(super) async fn metadata(
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
    /// must offer the authorization code flow, the URLs this server calls (token, userinfo, key
    /// set) must lead to allowed addresses ([`target`]), and its key set must load. Done here
    /// rather than by openidconnect's `discover_async`, which fetches the key set before anyone
    /// could look at where `jwks_uri` points.
    async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, String> {
        let url = IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("bad issuer URL: {e}"))?;
        let document = url
            .join(".well-known/openid-configuration")
            .map_err(|e| format!("bad issuer URL: {e}"))?;
        target::check_url(&document, self.allow_loopback).await?;
        let response = self
            .http
            .get(document.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("the discovery request failed: {}", describe(&e)))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!(
                "HTTP status code {} at {document}",
                response.status()
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("the discovery request failed: {}", describe(&e)))?;
        let metadata: CoreProviderMetadata = serde_json::from_slice(&body)
            .map_err(|e| format!("the discovery document cannot be read: {e}"))?;
        if *metadata.issuer() != url {
            return Err(format!(
                "unexpected issuer URI `{}` (expected `{}`)",
                metadata.issuer().as_str(),
                url.as_str()
            ));
        }
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
        let mut called = vec![("jwks_uri", metadata.jwks_uri().url())];
        if let Some(token) = metadata.token_endpoint() {
            called.push(("token_endpoint", token.url()));
        }
        if let Some(userinfo) = metadata.userinfo_endpoint() {
            called.push(("userinfo_endpoint", userinfo.url()));
        }
        for (name, endpoint) in called {
            target::check_url(endpoint, self.allow_loopback)
                .await
                .map_err(|e| format!("the discovery document's {name} is refused: {e}"))?;
        }
        let jwks = JsonWebKeySet::<CoreJsonWebKey>::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| describe(&e))?;
        Ok(metadata.set_jwks(jwks))
    }
}

/// An error and its causes in one line, for the operator (discovery) and the log.
pub(super) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
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
