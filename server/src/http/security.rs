//! The headers every response carries, and the Origin check for every state-changing request.

use crate::config::Settings;
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
}

impl Policy {
    pub fn new(settings: &Settings) -> Self {
        Policy {
            origin: settings.public_origin(),
            https: settings.is_https(),
        }
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

pub async fn check_origin(
    State(policy): State<Policy>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
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

pub async fn headers(State(policy): State<Policy>, request: Request<Body>, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/pkg/");
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
    if !is_asset {
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
