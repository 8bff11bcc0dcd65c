//! The headers every response carries, and the Origin check for every state-changing request.

use crate::infra::config::Settings;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The CSP of responses that are not pages. Pages set their own (with the nonce of their inline
/// hydration script) in `promio_app`'s shell; this one only fills in where none was set.
const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

#[derive(Clone)]
pub struct Policy {
    origin: String,
    https: bool,
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl Policy {
    pub fn new(settings: &Settings) -> Self {
        Policy {
            origin: settings.public_origin(),
            https: settings.is_https(),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// Whether the peer is one of `TRUSTED_PROXIES`, whose forwarded headers are believed.
    pub fn is_trusted_proxy(&self, peer: std::net::IpAddr) -> bool {
        self.trusted_proxies.contains(&peer)
    }

    /// Whether a request that changes state may come from where the browser says it comes from.
    /// Browsers send `Sec-Fetch-Site` (and `Origin`, which is `null` for a form posted from a
    /// `no-referrer` page); a request with neither is not from a browser, so not a CSRF vector.
    pub fn allows(&self, sec_fetch_site: Option<&str>, origin: Option<&str>) -> bool {
        match sec_fetch_site {
            Some("same-origin") | Some("none") => true,
            Some(_) => false,
            None => match origin {
                None => true,
                Some(o) => o == self.origin,
            },
        }
    }
}

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_addr(
    policy: &Policy,
    peer: std::net::IpAddr,
    forwarded_for: Option<&str>,
) -> std::net::IpAddr {
    if !policy.trusted_proxies.contains(&peer) {
        return peer;
    }
    forwarded_for
        .unwrap_or_default()
        .rsplit(',')
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .find(|ip| !policy.trusted_proxies.contains(ip))
        .unwrap_or(peer)
}

/// Replaces the peer address that handlers see with the client's (see [`client_addr`]).
pub async fn real_ip(
    State(policy): State<Policy>,
    mut request: Request<Body>,
    next: Next,
) -> Response {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    if let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    {
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = client_addr(&policy, peer.ip(), forwarded);
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, peer.port())));
    }
    next.run(request).await
}

pub async fn check_origin(
    State(policy): State<Policy>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe && !called_from_other_sites(request.uri().path()) {
        let headers = request.headers();
        let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if !policy.allows(site, origin) {
            tracing::warn!(path = %request.uri().path(), ?site, ?origin, "refused a cross-site request");
            return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
        }
    }
    next.run(request).await
}

/// The OpenID Provider's endpoints that other sites' pages (a form posting the authorization or
/// logout request) and servers (token, userinfo, revocation, introspection) call by design: they
/// authenticate the client or carry a token themselves and change nothing a session could be
/// tricked into. The two browser endpoints answer another site's form with a redirect to the
/// same request as a GET (`crate::edge::oauth::authorize::as_get`), which is what a link could ask
/// anyway; the logout's confirmation counts only from this site's own form, by its token.
fn called_from_other_sites(path: &str) -> bool {
    matches!(
        path,
        "/oauth/authorize"
            | "/oauth/logout"
            | "/oauth/token"
            | "/oauth/userinfo"
            | "/oauth/revoke"
            | "/oauth/introspect"
    )
}

pub async fn headers(State(policy): State<Policy>, request: Request<Body>, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/pkg/");
    // The OpenID Provider's public documents say themselves how long they may be kept.
    let is_public_document = matches!(
        request.uri().path(),
        "/.well-known/openid-configuration" | "/oauth/jwks"
    );
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !is_asset && !is_public_document {
        // Pages and API answers are per person: never kept by the browser or a proxy.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if policy.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_requests_are_refused_and_same_origin_ones_pass() {
        let p = Policy {
            origin: "https://login.example".into(),
            https: true,
            trusted_proxies: vec![],
        };
        assert!(p.allows(Some("same-origin"), Some("https://login.example")));
        assert!(
            p.allows(Some("same-origin"), Some("null")),
            "a form posted from a no-referrer page"
        );
        assert!(!p.allows(Some("cross-site"), Some("https://evil.example")));
        assert!(!p.allows(Some("same-site"), Some("https://other.login.example")));
        assert!(!p.allows(None, Some("https://evil.example")));
        assert!(!p.allows(None, Some("null")));
        assert!(p.allows(None, Some("https://login.example")));
        assert!(p.allows(None, None), "not a browser");
    }
}

#[cfg(test)]
mod other_sites_tests {
    use super::called_from_other_sites;

    #[test]
    fn the_providers_endpoints_take_posts_from_other_sites_and_nothing_else_does() {
        for path in [
            "/oauth/authorize",
            "/oauth/logout",
            "/oauth/token",
            "/oauth/userinfo",
            "/oauth/revoke",
            "/oauth/introspect",
        ] {
            assert!(called_from_other_sites(path), "{path}");
        }
        for path in [
            "/logout",
            "/login",
            "/api/login",
            "/oauth/logout/",
            "/oauth",
        ] {
            assert!(!called_from_other_sites(path), "{path}");
        }
    }
}

#[cfg(test)]
mod proxy_tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: std::net::IpAddr = "10.0.0.5".parse().unwrap();
        let p = Policy {
            origin: "https://login.example".into(),
            https: true,
            trusted_proxies: vec![proxy],
        };
        let stranger: std::net::IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(
            client_addr(&p, stranger, Some("203.0.113.9")),
            stranger,
            "untrusted peers cannot claim an address"
        );
        assert_eq!(
            client_addr(&p, proxy, Some("203.0.113.9")),
            "203.0.113.9".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            client_addr(&p, proxy, Some("1.2.3.4, 203.0.113.9, 10.0.0.5")),
            "203.0.113.9".parse::<std::net::IpAddr>().unwrap(),
            "the right-most address that is not a proxy; entries to its left are client-controlled"
        );
        assert_eq!(client_addr(&p, proxy, None), proxy);
        assert_eq!(client_addr(&p, proxy, Some("garbage")), proxy);
    }
}
