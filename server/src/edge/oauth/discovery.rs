//! OpenID Connect Discovery 1.0: `/.well-known/openid-configuration` (the one path of the
//! provider that is contract; relying parties find every endpoint there) and the published
//! signing keys at `/oauth/jwks`. Both are public, the same for everyone, readable from other
//! sites (a browser application fetches them) and may be cached for five minutes: a new key is
//! published an hour before it signs.

use super::{OAuthError, endpoint, issuer};
use crate::edge::request::HttpState;
use crate::idm::signing as keys;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// How long the documents may be kept by a relying party or a proxy.
const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn configuration(State(state): State<HttpState>) -> Response {
    let core = &state.core;
    // Built in parts: one `json!` this long would pass the macro's recursion limit.
    let mut document = json!({
        "issuer": issuer(core),
        "authorization_endpoint": endpoint(core, "/oauth/authorize"),
        "token_endpoint": endpoint(core, "/oauth/token"),
        "userinfo_endpoint": endpoint(core, "/oauth/userinfo"),
        "jwks_uri": endpoint(core, "/oauth/jwks"),
        "revocation_endpoint": endpoint(core, "/oauth/revoke"),
        "introspection_endpoint": endpoint(core, "/oauth/introspect"),
        "end_session_endpoint": endpoint(core, "/oauth/logout"),
    });
    let flows = json!({
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "code_challenge_methods_supported": ["S256"],
        "ui_locales_supported": ["de", "en"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
    });
    let claims = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "amr",
        "sid",
        "azp",
        "preferred_username",
        "name",
        "given_name",
        "family_name",
        "email",
        "email_verified",
        "company_id",
        "company_name",
    ];
    let secret_methods = ["client_secret_basic", "client_secret_post"];
    let or_none = ["client_secret_basic", "client_secret_post", "none"];
    let features = json!({
        "claims_supported": claims,
        "token_endpoint_auth_methods_supported": or_none,
        "revocation_endpoint_auth_methods_supported": or_none,
        "introspection_endpoint_auth_methods_supported": secret_methods,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    if let Some(all) = document.as_object_mut() {
        for part in [flows, features] {
            if let serde_json::Value::Object(fields) = part {
                all.extend(fields);
            }
        }
    }
    public_document(Json(document).into_response())
}

pub async fn jwks(State(state): State<HttpState>) -> Response {
    match keys::jwks(&state.core).await {
        Ok(set) => {
            let mut response = Json(set).into_response();
            // RFC 7517 5: the set's own media type.
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jwk-set+json"),
            );
            public_document(response)
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

fn public_document(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}
