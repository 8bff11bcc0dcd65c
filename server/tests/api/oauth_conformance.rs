//! The OpenID Foundation's Basic OP checks (`oidcc-basic-certification-test-plan`), ported: one
//! test per check, end to end over HTTP against a `TestApp`, with a relying-party library that no
//! one here wrote (`openidconnect` 4, the crate the SSO side uses as a client).
//!
//! The relying party discovers the provider from `{PUBLIC_URL}/.well-known/openid-configuration`;
//! the browser (the harness's cookie-jar client, redirects off) follows each Location by hand:
//! the authorization request, the login form, `/home` (where a waiting request is finished), and
//! back to the application. The redirect URI `http://127.0.0.1:9/cb` is never called: the code is
//! read from the Location. The relying party then redeems the code, verifies the ID token against
//! the published keys (on the test's clock) and asks userinfo.

use crate::helpers::{START, TestApp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreClient, CoreErrorResponseType, CoreIdToken, CoreIdTokenClaims, CoreResponseType,
    CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthType, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, IssuerUrl, LogoutRequest,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, SubjectIdentifier, TokenResponse, TokenUrl,
};
use promio_app::api::Role;
use promio_server::domain::clock::{Clock, ManualClock};
use promio_server::idm::apps::{self, NewApp};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// The applications' redirect URI (nothing listens there).
const REDIRECT: &str = "http://127.0.0.1:9/cb";
const POST_LOGOUT: &str = "http://127.0.0.1:9/bye";
const ALICE: (&str, &str) = ("ACME", "alice");

/// The library's client with the endpoints the tests use set.
type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
>;

/// A registered application, as its relying-party library sees the provider.
#[derive(Clone)]
struct Rp {
    http: openidconnect::reqwest::Client,
    metadata: ProviderMetadataWithLogout,
    client_id: String,
    secret: Option<String>,
    /// `client_secret_post` instead of the library's default `client_secret_basic`.
    secret_in_body: bool,
    clock: ManualClock,
}

/// One authorization request as the application sent it, and what it keeps for the way back.
struct Request {
    endpoint: String,
    /// The parameters, in the order they are sent.
    pairs: Vec<(String, String)>,
    state: String,
    nonce: Option<String>,
    verifier: String,
}

impl Request {
    fn url(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.pairs {
            query.append_pair(name, value);
        }
        format!("{}?{}", self.endpoint, query.finish())
    }

    fn without(mut self, name: &str) -> Request {
        self.pairs.retain(|(n, _)| n != name);
        if name == "nonce" {
            self.nonce = None;
        }
        self
    }

    /// Sets a parameter (replacing the one of that name, if any).
    fn with(mut self, name: &str, value: &str) -> Request {
        self.pairs.retain(|(n, _)| n != name);
        self.pairs.push((name.to_owned(), value.to_owned()));
        self
    }

    fn reversed(mut self) -> Request {
        self.pairs.reverse();
        self
    }
}

/// An application registration with the tests' redirect URIs.
fn application(name: &str) -> NewApp {
    NewApp {
        name: name.to_owned(),
        redirect_uris: vec![REDIRECT.to_owned()],
        post_logout_redirect_uris: vec![POST_LOGOUT.to_owned()],
        ..NewApp::default()
    }
}

impl Rp {
    /// Registers an application (as the CLI does) and discovers the provider as a relying party
    /// does, from the issuer alone.
    async fn register(app: &TestApp, new: NewApp) -> Rp {
        let created = apps::create(&app.core, "", new)
            .await
            .expect("register the application");
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let issuer = IssuerUrl::new(app.address.clone()).expect("an issuer URL");
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .unwrap_or_else(|e| panic!("discovery failed: {e:?}"));
        Rp {
            http,
            metadata,
            client_id: created.client_id,
            secret: created.client_secret.map(|s| s.expose_secret().to_owned()),
            secret_in_body: false,
            clock: app.clock.clone(),
        }
    }

    fn authorization_endpoint(&self) -> String {
        self.metadata.authorization_endpoint().as_str().to_owned()
    }

    fn token_endpoint(&self) -> String {
        let url = self.metadata.token_endpoint().expect("a token endpoint");
        url.as_str().to_owned()
    }

    fn userinfo_endpoint(&self) -> String {
        let url = self.metadata.userinfo_endpoint().expect("a userinfo URL");
        url.as_str().to_owned()
    }

    fn client(&self) -> RpClient {
        self.client_at(&self.token_endpoint())
    }

    /// The client, redeeming at `token_url` (another instance's, say).
    fn client_at(&self, token_url: &str) -> RpClient {
        let userinfo = self.metadata.userinfo_endpoint().expect("a userinfo URL");
        let client = CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("a redirect URI"))
        .set_token_uri(TokenUrl::new(token_url.to_owned()).expect("a token URL"))
        .set_user_info_url(userinfo.clone());
        if self.secret_in_body {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        }
    }

    /// An authorization request as the library builds it: PKCE S256, a fresh state and nonce,
    /// `openid` and `scopes`, and `extra` parameters.
    fn start(&self, scopes: &[&str], extra: &[(&str, &str)]) -> Request {
        let client = self.client();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in scopes {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        for (name, value) in extra {
            request = request.add_extra_param((*name).to_owned(), (*value).to_owned());
        }
        let (url, state, nonce) = request.url();
        let url = Url::parse(url.as_str()).expect("an authorization URL");
        let pairs = url
            .query_pairs()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        let mut endpoint = url.clone();
        endpoint.set_query(None);
        Request {
            endpoint: endpoint.to_string(),
            pairs,
            state: state.secret().clone(),
            nonce: Some(nonce.secret().clone()),
            verifier: verifier.secret().clone(),
        }
    }

    /// An authorization request built by hand, for the checks that send what the library would
    /// not: PKCE S256, a fresh state and nonce, the scope as given.
    fn params(&self, scope: &str) -> Request {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random().secret().clone();
        let nonce = Nonce::new_random().secret().clone();
        let pairs = [
            ("response_type", "code"),
            ("client_id", self.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
        Request {
            endpoint: self.authorization_endpoint(),
            pairs,
            state,
            nonce: Some(nonce),
            verifier: verifier.secret().clone(),
        }
    }

    /// Redeems a code at the token endpoint; `Err` is the OAuth error code.
    async fn redeem(&self, code: &str, verifier: &str) -> Result<CoreTokenResponse, String> {
        self.redeem_at(&self.token_endpoint(), code, verifier).await
    }

    async fn redeem_at(
        &self,
        token_url: &str,
        code: &str,
        verifier: &str,
    ) -> Result<CoreTokenResponse, String> {
        let client = self.client_at(token_url);
        client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(oauth_error)
    }

    async fn refresh(&self, token: &RefreshToken) -> Result<CoreTokenResponse, String> {
        let client = self.client();
        client
            .exchange_refresh_token(token)
            .request_async(&self.http)
            .await
            .map_err(oauth_error)
    }

    /// The token response's ID token, verified as the library does (signature by a published
    /// key, `iss`, `aud`, `exp` on the test's clock, the nonce).
    fn verify(&self, response: &CoreTokenResponse, nonce: Option<&str>) -> CoreIdTokenClaims {
        let id_token = response.id_token().expect("an ID token");
        self.check(id_token, nonce)
            .unwrap_or_else(|e| panic!("the ID token is refused: {e}"))
    }

    /// Verifies an ID token; the nonce must be exactly `nonce` (absent when `None`).
    fn check(
        &self,
        id_token: &CoreIdToken,
        nonce: Option<&str>,
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        let client = self.client();
        let clock = self.clock.clone();
        let verifier = client.id_token_verifier().set_time_fn(move || {
            chrono::DateTime::<chrono::Utc>::from_timestamp(clock.now(), 0).unwrap_or_default()
        });
        let expected = nonce.map(str::to_owned);
        let nonce_check = move |found: Option<&Nonce>| -> Result<(), String> {
            match (found.map(Nonce::secret), expected.as_ref()) {
                (None, None) => Ok(()),
                (Some(found), Some(expected)) if found == expected => Ok(()),
                (found, expected) => Err(format!("nonce {found:?}, expected {expected:?}")),
            }
        };
        id_token.claims(&verifier, nonce_check).cloned()
    }

    /// Userinfo through the library (GET with the Bearer header), checking the subject.
    async fn userinfo(&self, access: &AccessToken, sub: &SubjectIdentifier) -> CoreUserInfoClaims {
        let client = self.client();
        client
            .user_info(access.clone(), Some(sub.clone()))
            .request_async(&self.http)
            .await
            .unwrap_or_else(|e| panic!("userinfo failed: {e:?}"))
    }
}

/// The OAuth error code of a refused token request.
fn oauth_error<RE: std::error::Error + 'static>(
    err: RequestTokenError<RE, StandardErrorResponse<CoreErrorResponseType>>,
) -> String {
    match err {
        RequestTokenError::ServerResponse(answer) => answer.error().to_string(),
        other => format!("not an OAuth error answer: {other}"),
    }
}

/// A TestApp with alice of ACME, and a confidential application.
async fn with_rp() -> (TestApp, Rp) {
    let app = TestApp::with_user("ACME", "alice").await;
    let rp = Rp::register(&app, application("Conformance RP")).await;
    (app, rp)
}

/// Where a redirect sends the browser (made absolute).
async fn redirect_target(app: &TestApp, response: reqwest::Response) -> String {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match location {
        Some(location) if status.is_redirection() => {
            if location.starts_with('/') {
                app.url(&location)
            } else {
                location
            }
        }
        _ => panic!(
            "a redirect expected, got {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

/// Follows the browser from the authorization endpoint's answer back to the application: if it
/// lands on the login form, `who` logs in there and the browser goes on to `/home`, where the
/// waiting request is finished.
async fn back_at_application(app: &TestApp, response: reqwest::Response, who: (&str, &str)) -> Url {
    let mut location = redirect_target(app, response).await;
    if location.starts_with(&app.url("/login")) {
        app.login_ok(who.0, who.1).await;
        let home = app.client.get(app.url("/home")).send().await.unwrap();
        location = redirect_target(app, home).await;
    }
    assert!(
        location.starts_with(REDIRECT),
        "back at the application: {location}"
    );
    Url::parse(&location).unwrap()
}

/// The browser sends the authorization request (GET) and comes back to the application.
async fn authorize(app: &TestApp, request: &Request, who: (&str, &str)) -> Url {
    let response = app.client.get(request.url()).send().await.unwrap();
    back_at_application(app, response, who).await
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// The code of a successful authorization response, after a client's checks: its `state`, and
/// the issuer in `iss` (RFC 9207).
fn code_of(app: &TestApp, callback: &Url, request: &Request) -> String {
    assert_eq!(param(callback, "error"), None, "{callback}");
    assert_eq!(param(callback, "state"), Some(request.state.clone()));
    assert_eq!(param(callback, "iss"), Some(app.address.clone()));
    param(callback, "code").expect("a code")
}

/// The error of an authorization response sent back to the application.
fn error_of(app: &TestApp, callback: &Url, request: &Request) -> String {
    assert_eq!(param(callback, "code"), None, "{callback}");
    assert_eq!(param(callback, "state"), Some(request.state.clone()));
    assert_eq!(param(callback, "iss"), Some(app.address.clone()));
    param(callback, "error").expect("an error")
}

/// A code for alice (logging in when asked) with the scopes beyond `openid`.
async fn code_for(app: &TestApp, rp: &Rp, scopes: &[&str]) -> (Request, String) {
    let request = rp.start(scopes, &[]);
    let callback = authorize(app, &request, ALICE).await;
    let code = code_of(app, &callback, &request);
    (request, code)
}

/// A part of a JWT (0: header, 1: claims) as JSON.
fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("a part of the JWT");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON object")
}

/// The ID token's claims as JSON (the library has verified it; this reads the claims it does
/// not type, such as `company_id`).
fn id_token_json(response: &CoreTokenResponse) -> Value {
    let id_token = response.id_token().expect("an ID token");
    jwt_part(&id_token.to_string(), 1)
}

async fn userinfo_json(rp: &Rp, access: &AccessToken) -> Value {
    let response = reqwest::Client::new()
        .get(rp.userinfo_endpoint())
        .bearer_auth(access.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn userinfo_status(rp: &Rp, access: &AccessToken) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(rp.userinfo_endpoint())
        .bearer_auth(access.secret())
        .send()
        .await
        .unwrap()
        .status()
}

fn timestamp(claims: &CoreIdTokenClaims) -> Option<i64> {
    claims.auth_time().map(|t| t.timestamp())
}

// oidcc-server
#[tokio::test]
async fn server_happy_path_from_discovery_to_userinfo() {
    let (app, rp) = with_rp().await;
    assert_eq!(
        rp.metadata.issuer().as_str(),
        app.address,
        "issuer = PUBLIC_URL"
    );
    for endpoint in [
        rp.authorization_endpoint(),
        rp.token_endpoint(),
        rp.userinfo_endpoint(),
        rp.metadata.jwks_uri().as_str().to_owned(),
    ] {
        assert!(
            endpoint.starts_with(&format!("{}/", app.address)),
            "{endpoint}"
        );
    }
    let document: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document["response_types_supported"],
        serde_json::json!(["code"])
    );
    let listed = |name: &str, value: &str| {
        document[name]
            .as_array()
            .is_some_and(|a| a.contains(&Value::from(value)))
    };
    assert!(listed("id_token_signing_alg_values_supported", "RS256"));
    assert!(listed("code_challenge_methods_supported", "S256"));
    assert_eq!(
        document["authorization_response_iss_parameter_supported"],
        true
    );

    // Not logged in: the request waits while alice logs in, then the browser comes back with a
    // code.
    let request = rp.start(&["profile", "email"], &[]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let login = redirect_target(&app, response).await;
    assert!(login.starts_with(&app.url("/login")), "{login}");
    app.login_ok("ACME", "alice").await;
    let home = app.client.get(app.url("/home")).send().await.unwrap();
    let callback = Url::parse(&redirect_target(&app, home).await).unwrap();
    assert!(callback.as_str().starts_with(REDIRECT), "{callback}");
    let code = code_of(&app, &callback, &request);

    let tokens = rp
        .redeem(&code, &request.verifier)
        .await
        .expect("the code is redeemed");
    assert_eq!(tokens.expires_in(), Some(Duration::from_secs(600)));
    let claims = rp.verify(&tokens, request.nonce.as_deref());
    let alice = app.user_id("ACME", "alice").await;
    assert_eq!(claims.subject().as_str(), alice, "sub is the user's id");
    assert_eq!(timestamp(&claims), Some(START));
    let raw = id_token_json(&tokens);
    assert_eq!(raw["azp"], rp.client_id.as_str());
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]));
    assert_eq!(
        raw["exp"].as_i64(),
        raw["iat"].as_i64().map(|iat| iat + 3600)
    );
    assert!(raw["sid"].is_string(), "{raw}");
    assert_eq!(raw["company_id"], "ACME");

    let info = rp.userinfo(tokens.access_token(), claims.subject()).await;
    assert_eq!(info.subject().as_str(), alice);
}

// oidcc-client-secret-post
#[tokio::test]
async fn client_secret_post_authenticates_at_the_token_endpoint() {
    let (app, mut rp) = with_rp().await;
    rp.secret_in_body = true;
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp
        .redeem(&code, &request.verifier)
        .await
        .expect("tokens with client_secret_post");
    rp.verify(&tokens, request.nonce.as_deref());

    let mut wrong = rp.clone();
    wrong.secret = Some("not-the-secret".to_owned());
    let (request, code) = code_for(&app, &rp, &[]).await;
    let refused = wrong.redeem(&code, &request.verifier).await;
    assert_eq!(refused.err().as_deref(), Some("invalid_client"));
}

// oidcc-response-type-missing
#[tokio::test]
async fn a_request_without_response_type_is_refused_to_the_application() {
    let (app, rp) = with_rp().await;
    app.login_ok("ACME", "alice").await;
    let request = rp.params("openid").without("response_type");
    let callback = authorize(&app, &request, ALICE).await;
    assert_eq!(error_of(&app, &callback, &request), "invalid_request");

    let request = rp.params("openid").with("response_type", "id_token");
    let callback = authorize(&app, &request, ALICE).await;
    assert_eq!(
        error_of(&app, &callback, &request),
        "unsupported_response_type"
    );
}

// oidcc-idtoken-signature, oidcc-idtoken-kid-absent-*
#[tokio::test]
async fn the_id_token_is_signed_rs256_by_a_key_the_jwks_publishes_under_its_kid() {
    let (app, rp) = with_rp().await;
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    rp.verify(&tokens, request.nonce.as_deref());

    let jwt = tokens.id_token().expect("an ID token").to_string();
    let header = jwt_part(&jwt, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let kid = header["kid"].as_str().expect("a kid");
    let jwks: Value = reqwest::get(rp.metadata.jwks_uri().as_str())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().expect("keys");
    let key = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("the kid {kid} is not in {jwks}"));
    assert_eq!(key["kty"], "RSA");
    assert!(key.get("d").is_none(), "no private part is published");

    // Claims changed after signing: the signature no longer holds.
    let mut claims = jwt_part(&jwt, 1);
    claims["sub"] = Value::from("someone-else");
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let forged: CoreIdToken = parts.join(".").parse().expect("a well-formed JWT");
    assert!(matches!(
        rp.check(&forged, request.nonce.as_deref()),
        Err(ClaimsVerificationError::SignatureVerification(_))
    ));
}

// oidcc-userinfo-get
#[tokio::test]
async fn userinfo_answers_a_get_with_the_bearer_header() {
    let (app, rp) = with_rp().await;
    let (request, code) = code_for(&app, &rp, &["email"]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let claims = rp.verify(&tokens, request.nonce.as_deref());
    let info = rp.userinfo(tokens.access_token(), claims.subject()).await;
    assert_eq!(info.subject().as_str(), claims.subject().as_str());
    assert_eq!(
        info.standard_claims().email().map(|e| e.as_str()),
        Some("alice@acme.example")
    );

    let response = reqwest::Client::new()
        .get(rp.userinfo_endpoint())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "no token, no claims");
    // No token presented: the scheme alone, no error code (RFC 6750 3.1).
    assert_eq!(
        response.headers()[reqwest::header::WWW_AUTHENTICATE],
        "Bearer"
    );
}

// oidcc-userinfo-post-header, oidcc-userinfo-post-body
#[tokio::test]
async fn userinfo_answers_a_post_with_the_token_in_the_body_or_the_header() {
    let (app, rp) = with_rp().await;
    let alice = app.user_id("ACME", "alice").await;
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let access = tokens.access_token().secret().as_str();

    let in_body = reqwest::Client::new()
        .post(rp.userinfo_endpoint())
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(in_body.status(), 200);
    assert_eq!(
        in_body.headers()[reqwest::header::CACHE_CONTROL],
        "no-store"
    );
    let body: Value = in_body.json().await.unwrap();
    assert_eq!(body["sub"], alice.as_str());

    let in_header = reqwest::Client::new()
        .post(rp.userinfo_endpoint())
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(in_header.status(), 200);
    let body: Value = in_header.json().await.unwrap();
    assert_eq!(body["sub"], alice.as_str());
}

// oidcc-ensure-request-without-nonce-succeeds-for-code-flow
#[tokio::test]
async fn a_request_without_nonce_is_accepted_and_its_id_token_has_none() {
    let (app, rp) = with_rp().await;
    let request = rp.params("openid").without("nonce");
    let callback = authorize(&app, &request, ALICE).await;
    let code = code_of(&app, &callback, &request);
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let claims = rp.verify(&tokens, None);
    assert!(claims.nonce().is_none());
    assert!(id_token_json(&tokens).get("nonce").is_none());
}

// oidcc-scope-profile, oidcc-scope-email, oidcc-scope-all
#[tokio::test]
async fn profile_and_email_scopes_give_their_claims_in_the_id_token_and_userinfo() {
    let (app, rp) = with_rp().await;
    let (request, code) = code_for(&app, &rp, &["profile", "email"]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    rp.verify(&tokens, request.nonce.as_deref());
    let id_token = id_token_json(&tokens);
    let userinfo = userinfo_json(&rp, tokens.access_token()).await;
    for claims in [&id_token, &userinfo] {
        assert_eq!(claims["preferred_username"], "alice", "{claims}");
        assert_eq!(claims["name"], "Test alice", "{claims}");
        assert_eq!(claims["given_name"], "Test", "{claims}");
        assert_eq!(claims["family_name"], "alice", "{claims}");
        assert_eq!(claims["email"], "alice@acme.example", "{claims}");
        assert_eq!(claims["email_verified"], true, "{claims}");
        assert_eq!(claims["company_id"], "ACME", "{claims}");
        assert_eq!(claims["company_name"], "ACME GmbH", "{claims}");
    }

    // `openid` alone: the tenant, and neither the names nor the address.
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let id_token = id_token_json(&tokens);
    let userinfo = userinfo_json(&rp, tokens.access_token()).await;
    for claims in [&id_token, &userinfo] {
        for absent in ["preferred_username", "name", "email", "email_verified"] {
            assert!(claims.get(absent).is_none(), "{absent} in {claims}");
        }
        assert_eq!(claims["company_id"], "ACME", "{claims}");
    }
}

// oidcc-ensure-other-scope-order-succeeds, and the parameters in another order
#[tokio::test]
async fn the_order_of_parameters_and_of_scopes_does_not_matter() {
    let (app, rp) = with_rp().await;
    app.login_ok("ACME", "alice").await;
    for request in [
        rp.params("openid email").reversed(),
        rp.params("email openid"),
        rp.params("email openid").reversed(),
    ] {
        let callback = authorize(&app, &request, ALICE).await;
        let code = code_of(&app, &callback, &request);
        let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
        rp.verify(&tokens, request.nonce.as_deref());
        assert_eq!(id_token_json(&tokens)["email"], "alice@acme.example");
    }
}

// oidcc-prompt-login
#[tokio::test]
async fn prompt_login_asks_for_the_login_again_and_advances_auth_time() {
    let (app, rp) = with_rp().await;
    app.login_ok("ACME", "alice").await;
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let first = rp.verify(&tokens, request.nonce.as_deref());
    assert_eq!(timestamp(&first), Some(START));

    app.clock.advance(120);
    let request = rp.start(&[], &[("prompt", "login")]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let login = redirect_target(&app, response).await;
    assert!(
        login.starts_with(&app.url("/login")),
        "asked again: {login}"
    );
    // The form shows although alice is logged in, and her old session cannot finish the request.
    let form = app.client.get(login.as_str()).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let home = app.client.get(app.url("/home")).send().await.unwrap();
    let again = redirect_target(&app, home).await;
    assert!(again.starts_with(&app.url("/login")), "{again}");

    app.login_ok("ACME", "alice").await;
    let home = app.client.get(app.url("/home")).send().await.unwrap();
    let callback = Url::parse(&redirect_target(&app, home).await).unwrap();
    let code = code_of(&app, &callback, &request);
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let second = rp.verify(&tokens, request.nonce.as_deref());
    assert_eq!(timestamp(&second), Some(START + 120));
}

// oidcc-prompt-none-logged-in
#[tokio::test]
async fn prompt_none_gives_a_logged_in_person_a_code_without_asking() {
    let (app, rp) = with_rp().await;
    app.login_ok("ACME", "alice").await;
    app.clock.advance(10);
    let request = rp.start(&[], &[("prompt", "none")]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let location = redirect_target(&app, response).await;
    assert!(location.starts_with(REDIRECT), "straight back: {location}");
    let code = code_of(&app, &Url::parse(&location).unwrap(), &request);
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let claims = rp.verify(&tokens, request.nonce.as_deref());
    assert_eq!(timestamp(&claims), Some(START), "the login's time");
}

// oidcc-prompt-none-not-logged-in
#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let (app, rp) = with_rp().await;
    let request = rp.start(&[], &[("prompt", "none")]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let location = redirect_target(&app, response).await;
    assert!(
        location.starts_with(REDIRECT),
        "never the login form: {location}"
    );
    let callback = Url::parse(&location).unwrap();
    assert_eq!(error_of(&app, &callback, &request), "login_required");
}

// oidcc-max-age-1
#[tokio::test]
async fn max_age_1_asks_for_the_login_again_once_a_second_has_passed() {
    let (app, rp) = with_rp().await;
    app.login_ok("ACME", "alice").await;
    let request = rp.start(&[], &[("max_age", "1")]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let location = redirect_target(&app, response).await;
    assert!(
        location.starts_with(REDIRECT),
        "a login this young is used: {location}"
    );

    app.clock.advance(2);
    let request = rp.start(&[], &[("max_age", "1")]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let login = redirect_target(&app, response).await;
    assert!(
        login.starts_with(&app.url("/login")),
        "asked again: {login}"
    );
    app.login_ok("ACME", "alice").await;
    let home = app.client.get(app.url("/home")).send().await.unwrap();
    let callback = Url::parse(&redirect_target(&app, home).await).unwrap();
    let code = code_of(&app, &callback, &request);
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let claims = rp.verify(&tokens, request.nonce.as_deref());
    assert_eq!(timestamp(&claims), Some(START + 2));
}

// oidcc-unknown-parameter (the plan's `extra=foobar`)
#[tokio::test]
async fn an_unknown_parameter_is_ignored() {
    let (app, rp) = with_rp().await;
    let request = rp.start(&[], &[("extra", "foobar"), ("vendor_flag", "1")]);
    let callback = authorize(&app, &request, ALICE).await;
    let code = code_of(&app, &callback, &request);
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    rp.verify(&tokens, request.nonce.as_deref());
}

// oidcc-id-token-hint, with RP-initiated logout
#[tokio::test]
async fn end_session_takes_the_id_token_hint_and_returns_to_the_application() {
    let (app, rp) = with_rp().await;
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    rp.verify(&tokens, request.nonce.as_deref());
    let end_session = rp
        .metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("an end_session_endpoint");

    // A bare GET never logs anyone out: it asks.
    let bare = app.client.get(end_session.as_str()).send().await.unwrap();
    assert_eq!(bare.status(), 200);
    assert!(app.me().await.is_some(), "still logged in");

    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(tokens.id_token().expect("an ID token"))
        .set_post_logout_redirect_uri(
            PostLogoutRedirectUrl::new(POST_LOGOUT.to_owned()).expect("a URL"),
        )
        .set_state(CsrfToken::new("see-you".to_owned()))
        .http_get_url();
    let response = app.client.get(logout.as_str()).send().await.unwrap();
    let back = Url::parse(&redirect_target(&app, response).await).unwrap();
    assert!(back.as_str().starts_with(POST_LOGOUT), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("see-you"));
    assert!(app.me().await.is_none(), "the session ended");
}

// oidcc-codereuse
#[tokio::test]
async fn a_code_is_refused_the_second_time() {
    let (app, rp) = with_rp().await;
    let (request, code) = code_for(&app, &rp, &[]).await;
    rp.redeem(&code, &request.verifier)
        .await
        .expect("the first redemption");
    assert_eq!(
        rp.redeem(&code, &request.verifier).await.err().as_deref(),
        Some("invalid_grant")
    );

    // Two redemptions at once: exactly one wins.
    let (request, code) = code_for(&app, &rp, &[]).await;
    let (one, two) = tokio::join!(
        rp.redeem(&code, &request.verifier),
        rp.redeem(&code, &request.verifier)
    );
    let (tokens, refusal) = one_winner(one, two);
    assert_eq!(refusal, "invalid_grant");
    assert_eq!(
        userinfo_status(&rp, tokens.access_token()).await,
        401,
        "the losing redemption is a reuse: it revoked what the winner got"
    );
}

/// Of two redemptions of one code at once, exactly one wins: its tokens and the other's error.
fn one_winner(
    one: Result<CoreTokenResponse, String>,
    two: Result<CoreTokenResponse, String>,
) -> (CoreTokenResponse, String) {
    match (one, two) {
        (Ok(tokens), Err(refusal)) | (Err(refusal), Ok(tokens)) => (tokens, refusal),
        other => panic!("not exactly one winner: {other:?}"),
    }
}

// oidcc-codereuse-30seconds
#[tokio::test]
async fn a_code_used_again_after_30_seconds_revokes_the_tokens_it_gave() {
    let (app, rp) = with_rp().await;
    let (request, code) = code_for(&app, &rp, &["offline_access"]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    assert_eq!(userinfo_status(&rp, tokens.access_token()).await, 200);

    app.clock.advance(30);
    assert_eq!(
        rp.redeem(&code, &request.verifier).await.err().as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(
        userinfo_status(&rp, tokens.access_token()).await,
        401,
        "the access token it gave is revoked"
    );
    assert_eq!(
        rp.refresh(&refresh).await.err().as_deref(),
        Some("invalid_grant"),
        "and so is the refresh token"
    );
}

// oidcc-ensure-registered-redirect-uri
#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_and_no_redirect() {
    let (app, rp) = with_rp().await;
    app.login_ok("ACME", "alice").await;
    let unknown_client = rp.params("openid").with("client_id", "app_unknown");
    let mut requests = vec![unknown_client];
    for uri in [
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/cb?x=1",
        "http://127.0.0.1:9/other",
        "HTTP://127.0.0.1:9/cb",
        "https://rp.example/cb",
    ] {
        requests.push(rp.params("openid").with("redirect_uri", uri));
    }
    for request in &requests {
        let response = app.client.get(request.url()).send().await.unwrap();
        let url = request.url();
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.headers().get("location").is_none(), "{url}");
        let body = response.text().await.unwrap();
        assert!(body.contains("role=\"alert\""), "{url}: {body}");
    }

    // The registered URI, exactly, works.
    let request = rp.params("openid");
    let callback = authorize(&app, &request, ALICE).await;
    code_of(&app, &callback, &request);
}

// oidcc-ensure-post-request-succeeds
#[tokio::test]
async fn the_authorization_request_may_be_posted() {
    let (app, rp) = with_rp().await;
    let request = rp.params("openid email");
    let response = app
        .client
        .post(rp.authorization_endpoint())
        .form(&request.pairs)
        .send()
        .await
        .unwrap();
    let callback = back_at_application(&app, response, ALICE).await;
    let code = code_of(&app, &callback, &request);
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    rp.verify(&tokens, request.nonce.as_deref());
    assert_eq!(id_token_json(&tokens)["email"], "alice@acme.example");
}

// oidcc-refresh-token
#[tokio::test]
async fn a_refresh_token_works_only_for_its_own_client() {
    let (app, rp) = with_rp().await;
    let other = Rp::register(&app, application("Another application")).await;
    let alice = app.user_id("ACME", "alice").await;

    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    assert!(tokens.refresh_token().is_none(), "only with offline_access");

    let (request, code) = code_for(&app, &rp, &["offline_access"]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    assert_eq!(
        other.refresh(&refresh).await.err().as_deref(),
        Some("invalid_grant"),
        "another client's refresh token"
    );

    let renewed = rp.refresh(&refresh).await.expect("refreshed");
    let next = renewed.refresh_token().expect("a new refresh token");
    assert_ne!(next.secret(), refresh.secret(), "rotated");
    assert_eq!(userinfo_status(&rp, renewed.access_token()).await, 200);
    let id_token = renewed.id_token().expect("an ID token with the refresh");
    let claims = rp.check(id_token, None).expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), alice);
}

// oidcc-ensure-pkce-code-verifier (valid PKCE)
#[tokio::test]
async fn a_public_client_with_the_right_pkce_verifier_gets_tokens() {
    let app = TestApp::with_user("ACME", "alice").await;
    let public = NewApp {
        public: true,
        ..application("A single-page application")
    };
    let rp = Rp::register(&app, public).await;
    assert!(rp.secret.is_none());
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp
        .redeem(&code, &request.verifier)
        .await
        .expect("tokens for the right verifier");
    rp.verify(&tokens, request.nonce.as_deref());

    let (request, code) = code_for(&app, &rp, &[]).await;
    let (_, other) = PkceCodeChallenge::new_random_sha256();
    assert_ne!(other.secret(), &request.verifier);
    assert_eq!(
        rp.redeem(&code, other.secret()).await.err().as_deref(),
        Some("invalid_grant"),
        "another verifier"
    );
}

/// Runs on the harness's database: PostgreSQL when `TEST_DATABASE_URL` is set (as `make test`
/// does), else SQLite shared by two pools.
#[tokio::test]
async fn two_instances_redeem_each_others_codes_and_each_code_once() {
    let (app, rp) = with_rp().await;
    let second = app.second_instance().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(promio_server::serve(second, listener, async {
        let _ = stopped.await;
    }));
    let token_a = rp.token_endpoint();
    let token_b = format!("http://127.0.0.1:{second_port}/oauth/token");

    // A code the first instance issued, redeemed at the second.
    let (request, code) = code_for(&app, &rp, &["offline_access"]).await;
    let tokens = rp
        .redeem_at(&token_b, &code, &request.verifier)
        .await
        .expect("the second instance redeems the first's code");
    rp.verify(&tokens, request.nonce.as_deref());
    let refresh = tokens.refresh_token().expect("a refresh token");
    rp.refresh(refresh)
        .await
        .expect("the first instance refreshes the second's refresh token");

    // A code the second instance issued (the same browser, its session cookie), redeemed at the
    // first: signed there with the shared key, verified against the first's key set.
    let request = rp.start(&[], &[]);
    let mut at_second = Url::parse(&request.url()).unwrap();
    at_second.set_port(Some(second_port)).unwrap();
    let cookies = {
        use reqwest::cookie::CookieStore;
        app.jar
            .cookies(&app.address.parse().unwrap())
            .expect("the browser's cookies")
    };
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(at_second.as_str())
        .header(reqwest::header::COOKIE, cookies)
        .send()
        .await
        .unwrap();
    let location = redirect_target(&app, response).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    let code = code_of(&app, &Url::parse(&location).unwrap(), &request);
    let tokens = rp
        .redeem_at(&token_a, &code, &request.verifier)
        .await
        .expect("the first instance redeems the second's code");
    rp.verify(&tokens, request.nonce.as_deref());

    // One code at both instances at once: exactly one redemption wins.
    let (request, code) = code_for(&app, &rp, &[]).await;
    let (one, two) = tokio::join!(
        rp.redeem_at(&token_a, &code, &request.verifier),
        rp.redeem_at(&token_b, &code, &request.verifier)
    );
    let (tokens, refusal) = one_winner(one, two);
    assert_eq!(refusal, "invalid_grant");
    assert_eq!(
        userinfo_status(&rp, tokens.access_token()).await,
        401,
        "the loser, at either instance, revoked what the winner got"
    );
    drop(stop);
}

#[tokio::test]
async fn a_company_bound_application_refuses_another_companys_user() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_client("OTHER").await;
    app.create_user("OTHER", "bob", Role::User).await;
    let bound = NewApp {
        company_id: Some("ACME".to_owned()),
        ..application("ACME's application")
    };
    let rp = Rp::register(&app, bound).await;

    // The login form comes with ACME filled in; bob of another company logs in all the same.
    let request = rp.start(&[], &[]);
    let response = app.client.get(request.url()).send().await.unwrap();
    let login = redirect_target(&app, response).await;
    assert!(login.starts_with(&app.url("/login?")), "{login}");
    assert!(login.contains("company_id=ACME"), "{login}");
    app.login_ok("OTHER", "bob").await;
    let home = app.client.get(app.url("/home")).send().await.unwrap();
    let callback = Url::parse(&redirect_target(&app, home).await).unwrap();
    assert_eq!(error_of(&app, &callback, &request), "access_denied");

    // Logged in already: refused at once.
    let request = rp.start(&[], &[]);
    let callback = authorize(&app, &request, ("OTHER", "bob")).await;
    assert_eq!(error_of(&app, &callback, &request), "access_denied");

    // ACME's own user gets in, and the ID token names her company.
    app.client.post(app.url("/logout")).send().await.unwrap();
    let (request, code) = code_for(&app, &rp, &[]).await;
    let tokens = rp.redeem(&code, &request.verifier).await.expect("tokens");
    rp.verify(&tokens, request.nonce.as_deref());
    assert_eq!(id_token_json(&tokens)["company_id"], "ACME");
}
