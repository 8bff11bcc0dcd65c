//! promio.connect as the OpenID Provider of the product's applications (relying parties): the
//! authorization code flow with PKCE, ID tokens signed RS256, refresh tokens, userinfo,
//! revocation, introspection, RP-initiated and back-channel logout. The issuer is `PUBLIC_URL`
//! (without its trailing `/`); `/.well-known/openid-configuration` lists the endpoints.
//!
//! The round trip (one front door):
//! 1. `GET|POST /oauth/authorize` (`authorize`) checks the application and its exact
//!    `redirect_uri` (an unknown one gets an error page, never a redirect), then the request.
//!    With a usable session it answers the code at once; otherwise the request waits in
//!    `oauth_requests` under a random id in the `authz` cookie and the browser goes to `/login`.
//! 2. Every login ends on `/home`; there a middleware (`authorize::resume`) takes the waiting
//!    request (single use), issues the code and redirects to the application with `code`,
//!    `state` and `iss`.
//! 3. `POST /oauth/token` (`token`) redeems the code once (client authentication, PKCE S256)
//!    for an ID token (`claims`, signed by `keys`), an access token and, with `offline_access`,
//!    a refresh token that rotates on every use.
//! 4. `/oauth/logout` (`logout`) ends the session; a sweeper turns every ended session an
//!    application took part in into back-channel logout tokens.
//!
//! Invariants: codes, tokens and request ids are 256-bit random and stored as SHA-256 only;
//! every single use is one conditional statement whose `rows_affected` decides; a token is
//! honoured only while its user and the user's client are active; nothing that matters lives
//! only in memory ([`Op`] caches the signing keys for seconds).

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod logout;
pub mod token;

pub use crate::domain::limits::{
    ACCESS_SECS, CODE_SECS, ID_TOKEN_SECS, REFRESH_SECS, REQUEST_SECS,
};
use crate::edge::request::HttpState;
use crate::idm::Core;
use crate::infra::error::ServiceError;
use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use promio_app::api::ApiError;
use secrecy::ExposeSecret;
use tower_http::cors::{Any, CorsLayer};

/// The label of the key (derived from `SECRET_KEY`) that makes a session's `sid`.
const SID_LABEL: &str = "oauth-sid";

/// The issuer: `PUBLIC_URL` as configured, without the `/` that URL parsing adds (`PUBLIC_URL`
/// is an origin only, see `config.rs`).
pub fn issuer(core: &Core) -> String {
    core.settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// The URL of one of the provider's endpoints (`path` starts with `/`).
pub fn endpoint(core: &Core, path: &str) -> String {
    format!("{}{path}", issuer(core))
}

/// A new code, token or request id: 256 random bits, base64url without padding.
pub fn random_token() -> String {
    crate::infra::token::issue()
        .secret
        .expose_secret()
        .to_owned()
}

/// The stored form of a code or token: SHA-256 hex.
pub fn hash_token(token: &str) -> String {
    crate::infra::token::hash(token)
}

/// The `sid` of a session in ID and logout tokens: base64url of the first 16 bytes of
/// HMAC-SHA256 of the session's hash under a key derived from `SECRET_KEY` (stable for the
/// session, and says nothing about its token).
pub fn sid(core: &Core, session_hash: &str) -> String {
    let key = crate::infra::crypto::derive_key(core.settings.secret_key.expose_secret(), SID_LABEL);
    let mac = crate::infra::crypto::derive_key(&key, session_hash);
    URL_SAFE_NO_PAD.encode(&mac[..16])
}

/// The `amr` stored with a session (a JSON array; `None` for sessions older than the column),
/// as a list: `[]` when absent or unreadable.
pub fn parse_amr(stored: Option<&str>) -> Vec<String> {
    stored
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .unwrap_or_default()
}

pub use crate::idm::signing::Op;

/// An OAuth error as the protocol answers it: JSON `{error, error_description}` with its status
/// (RFC 6749 5.2), never cached.
#[derive(Debug)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    pub status: StatusCode,
}

impl OAuthError {
    /// An error answered with 400.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    pub fn with_status(self, status: StatusCode) -> Self {
        OAuthError { status, ..self }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.description,
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        no_store(&mut response);
        // A failed client authentication names the scheme to use (RFC 6749 5.2; HTTP asks it of
        // every 401).
        if self.error == "invalid_client" && self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"promio.connect\""),
            );
        }
        response
    }
}

/// An internal error is logged with its cause (under the request's id) and answered
/// `server_error` 500; an unreachable database or a full hashing pool `temporarily_unavailable`
/// 503.
impl From<ServiceError> for OAuthError {
    fn from(err: ServiceError) -> Self {
        match ApiError::from(err) {
            ApiError::Internal { id } => OAuthError::new(
                "server_error",
                format!("an internal error occurred (error id {id})"),
            )
            .with_status(StatusCode::INTERNAL_SERVER_ERROR),
            ApiError::Unavailable => {
                OAuthError::new("temporarily_unavailable", "try again in a moment")
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            ApiError::Unauthenticated => OAuthError::new("invalid_token", "not authenticated")
                .with_status(StatusCode::UNAUTHORIZED),
            ApiError::Forbidden => {
                OAuthError::new("access_denied", "not allowed").with_status(StatusCode::FORBIDDEN)
            }
            other => OAuthError::new("invalid_request", other.to_string()),
        }
    }
}

/// Marks an answer that carries tokens (or their errors) as never to be stored (RFC 6749 5.1).
pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The provider's routes. Only discovery's path is part of the contract; the rest are found
/// there.
pub fn add(router: Router<HttpState>) -> Router<HttpState> {
    router
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/oauth/jwks", get(discovery::jwks))
        .route(
            "/oauth/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .merge(called_from_browsers())
        .route("/oauth/introspect", post(token::introspect))
        .route(
            "/oauth/logout",
            get(logout::end_session_get).post(logout::end_session_post),
        )
}

/// The endpoints a browser application (a public client) calls from its pages with `fetch`:
/// token, userinfo and revocation answer any origin (CORS, with the preflight), like the public
/// documents (discovery, JWKS) do. No credentials: the caller proves itself by the token or the
/// PKCE verifier it sends, never by a cookie of ours, so reading the answer gives another site
/// nothing it did not hold. Introspection stays for servers (confidential clients only).
fn called_from_browsers() -> Router<HttpState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // A page's script reads why userinfo refused its token (RFC 6750 3).
        .expose_headers([header::WWW_AUTHENTICATE]);
    Router::new()
        .route("/oauth/token", post(token::token))
        .route(
            "/oauth/userinfo",
            get(token::userinfo_get).post(token::userinfo_post),
        )
        .route("/oauth/revoke", post(token::revoke))
        .layer(cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_256_bit_base64url_and_stored_as_sha256_hex() {
        let token = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).unwrap().len(), 32);
        assert_ne!(random_token(), token);
        let hash = hash_token(&token);
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn a_missing_or_unreadable_amr_is_empty() {
        assert_eq!(parse_amr(None), Vec::<String>::new());
        assert_eq!(parse_amr(Some("not json")), Vec::<String>::new());
        assert_eq!(
            parse_amr(Some(r#"["pwd","otp","mfa"]"#)),
            ["pwd", "otp", "mfa"]
        );
    }

    #[test]
    fn protocol_errors_are_json_and_never_stored() {
        let response = OAuthError::new("invalid_grant", "the code was used")
            .with_status(StatusCode::BAD_REQUEST)
            .into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let internal = OAuthError::from(ServiceError::Internal(anyhow::anyhow!("boom")));
        assert_eq!(internal.error, "server_error");
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.description.contains("boom"));
    }
}
