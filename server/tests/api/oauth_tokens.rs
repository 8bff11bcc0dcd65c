//! The OpenID Provider's token side: codes redeemed once (with PKCE S256 and exact redirect URIs),
//! ID tokens a relying-party library verifies, userinfo, refresh tokens that rotate and revoke
//! their family on reuse, revocation and introspection per client, and tokens that stop when their
//! user is deactivated or deleted.

use crate::helpers::{NEW_PASSWORD, NEWER_PASSWORD, PASSWORD, TestApp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use promio_app::api::{LoginOutcome, Role};
use promio_server::domain::clock::Clock;
use promio_server::domain::{CompanyId, UserName};
use promio_server::idm::apps::{self, NewApp};
use promio_server::idm::lifecycle;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const REDIRECT: &str = "https://rp.example/cb";
const NONCE: &str = "n-0S6_WzA2Mj";

/// A registered application, as its operator received it.
struct Rp {
    client_id: String,
    secret: Option<String>,
}

async fn register(app: &TestApp, name: &str, public: bool) -> Rp {
    let created = apps::create(
        &app.core,
        "",
        NewApp {
            name: name.into(),
            redirect_uris: vec![REDIRECT.into()],
            public,
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    Rp {
        client_id: created.client_id,
        secret: created.client_secret.map(|s| s.expose_secret().to_owned()),
    }
}

/// A code and the PKCE verifier it was asked for with.
struct Code {
    code: String,
    verifier: String,
}

fn pkce_pair() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Asks for a code as the logged-in browser (the session issues it at once) and returns it.
async fn authorize_with(app: &TestApp, rp: &Rp, scope: &str, challenge: Option<&str>) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", rp.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "xyz"),
        ("nonce", NONCE),
    ];
    if let Some(challenge) = challenge {
        params.push(("code_challenge", challenge));
        params.push(("code_challenge_method", "S256"));
    }
    let url = url::Url::parse_with_params(&app.url("/oauth/authorize"), &params).unwrap();
    let response = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    let query: HashMap<String, String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query.get("state").map(String::as_str), Some("xyz"));
    query
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"))
}

async fn authorize(app: &TestApp, rp: &Rp, scope: &str) -> Code {
    let (verifier, challenge) = pkce_pair();
    let code = authorize_with(app, rp, scope, Some(challenge.as_str())).await;
    Code { code, verifier }
}

#[derive(Clone, Copy)]
enum Auth {
    /// `client_secret_basic` (a public client sends its `client_id` in the form).
    Basic,
    /// `client_secret_post`.
    Post,
}

/// Calls one of the provider's endpoints as the application would, from its server.
async fn as_rp(
    app: &TestApp,
    rp: &Rp,
    path: &str,
    auth: Auth,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    let mut request = reqwest::Client::new().post(app.url(path));
    match (auth, &rp.secret) {
        (Auth::Basic, Some(secret)) => request = request.basic_auth(&rp.client_id, Some(secret)),
        (_, secret) => {
            form.push(("client_id", rp.client_id.as_str()));
            if let Some(secret) = secret {
                form.push(("client_secret", secret.as_str()));
            }
        }
    }
    request.form(&form).send().await.unwrap()
}

async fn redeem(app: &TestApp, rp: &Rp, code: &Code, auth: Auth) -> reqwest::Response {
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", code.verifier.as_str()),
    ];
    as_rp(app, rp, "/oauth/token", auth, &fields).await
}

async fn refresh(app: &TestApp, rp: &Rp, token: &str) -> reqwest::Response {
    let fields = [("grant_type", "refresh_token"), ("refresh_token", token)];
    as_rp(app, rp, "/oauth/token", Auth::Basic, &fields).await
}

/// The JSON of a 200 answer that must not be stored.
async fn ok_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

/// The `error` of a refusal with `status`.
async fn error_of(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

async fn tokens_for(app: &TestApp, rp: &Rp, scope: &str) -> Value {
    let code = authorize(app, rp, scope).await;
    ok_json(redeem(app, rp, &code, Auth::Basic).await).await
}

fn field<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {tokens}"))
}

async fn userinfo_get(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn introspect(app: &TestApp, rp: &Rp, token: &str) -> Value {
    ok_json(
        as_rp(
            app,
            rp,
            "/oauth/introspect",
            Auth::Basic,
            &[("token", token)],
        )
        .await,
    )
    .await
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A relying-party library's ID-token verifier for `client_id`: the keys as published at
/// `/oauth/jwks`, the issuer, and the test's time for `exp`.
async fn verifier_for(app: &TestApp, client_id: &str) -> CoreIdTokenVerifier<'static> {
    let jwks: CoreJsonWebKeySet = reqwest::get(app.url("/oauth/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = IssuerUrl::new(promio_server::edge::oauth::issuer(&app.core)).unwrap();
    let now = app.clock.now();
    CoreIdTokenVerifier::new_public_client(ClientId::new(client_id.to_owned()), issuer, jwks)
        .set_time_fn(move || chrono::DateTime::<chrono::Utc>::from_timestamp(now, 0).unwrap())
}

/// The ID token verified as a relying-party library does (signature with the key of its `kid`,
/// `iss`, `aud`, `exp`, `nonce`); its claims.
async fn verified(app: &TestApp, rp: &Rp, id_token: &str, nonce: Option<&str>) -> Value {
    let verifier = verifier_for(app, &rp.client_id).await;
    let token: CoreIdToken = id_token.parse().unwrap();
    match nonce {
        Some(nonce) => {
            token
                .claims(&verifier, &Nonce::new(nonce.to_owned()))
                .unwrap();
        }
        None => {
            let no_nonce = |n: Option<&Nonce>| match n {
                None => Ok(()),
                Some(_) => Err("a nonce where none was sent".to_owned()),
            };
            token.claims(&verifier, no_nonce).unwrap();
        }
    }
    payload(id_token)
}

async fn logged_in(company_id: &str, username: &str) -> TestApp {
    let app = TestApp::with_user(company_id, username).await;
    app.login_ok(company_id, username).await;
    app
}

#[tokio::test]
async fn a_code_redeemed_with_client_secret_basic_gives_a_verified_id_token_and_userinfo() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid").await;

    let response = redeem(&app, &rp, &code, Auth::Basic).await;
    assert_eq!(response.headers()["pragma"], "no-cache");
    let tokens = ok_json(response).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(tokens["scope"], "openid");
    assert!(tokens.get("refresh_token").is_none(), "no offline_access");

    let id_token = field(&tokens, "id_token");
    let claims = verified(&app, &rp, id_token, Some(NONCE)).await;
    let alice = app.user_id("ACME", "alice").await;
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(
        claims["iss"],
        promio_server::edge::oauth::issuer(&app.core).as_str()
    );
    assert_eq!(claims["aud"], rp.client_id.as_str());
    assert_eq!(claims["azp"], rp.client_id.as_str());
    assert_eq!(claims["nonce"], NONCE);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(iat, app.clock.now());
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);
    assert_eq!(claims["auth_time"].as_i64().unwrap(), app.clock.now());
    assert_eq!(claims["company_id"], "ACME");
    assert_eq!(claims["company_name"], "ACME GmbH");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let published: Value = reqwest::get(app.url("/oauth/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&Value> = published["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert!(kids.contains(&&header["kid"]), "{header} in {published}");

    // The library really checks: a changed claim, another nonce or another audience fail.
    let verifier = verifier_for(&app, &rp.client_id).await;
    let mut forged = claims.clone();
    forged["sub"] = Value::from("someone-else");
    let parts: Vec<&str> = id_token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        parts[2]
    );
    let forged: CoreIdToken = forged.parse().unwrap();
    let nonce = Nonce::new(NONCE.to_owned());
    assert!(forged.claims(&verifier, &nonce).is_err());
    let token: CoreIdToken = id_token.parse().unwrap();
    assert!(token.claims(&verifier, &nonce).is_ok());
    assert!(
        token
            .claims(&verifier, &Nonce::new("another".to_owned()))
            .is_err()
    );
    let other = verifier_for(&app, "app_other").await;
    assert!(token.claims(&other, &nonce).is_err());

    // Userinfo: the Bearer header (GET and POST) and the form field (POST).
    let access = field(&tokens, "access_token");
    let info = ok_json(userinfo_get(&app, access).await).await;
    assert_eq!(info["sub"], alice.as_str());
    let info = ok_json(
        reqwest::Client::new()
            .post(app.url("/oauth/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["sub"], alice.as_str());
    let info = ok_json(
        reqwest::Client::new()
            .post(app.url("/oauth/userinfo"))
            .form(&[("access_token", access)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(info["sub"], alice.as_str());
    assert_eq!(info["company_id"], "ACME");

    // The audit log names the grant and the application, never a token.
    let audit = app.audit().await;
    let issued = audit
        .iter()
        .find(|e| e.action == "oauth.token")
        .expect("an oauth.token event");
    assert!(issued.detail.contains(&rp.client_id), "{}", issued.detail);
    assert!(issued.detail.contains("authorization_code"));
    for event in &audit {
        assert!(!event.detail.contains(access));
        assert!(!event.detail.contains(&code.code));
    }
}

#[tokio::test]
async fn client_secret_post_and_a_public_client_redeem_codes_too() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid").await;
    let tokens = ok_json(redeem(&app, &rp, &code, Auth::Post).await).await;
    verified(&app, &rp, field(&tokens, "id_token"), Some(NONCE)).await;

    let spa = register(&app, "Planner", true).await;
    assert!(spa.secret.is_none());
    let code = authorize(&app, &spa, "openid").await;
    let tokens = ok_json(redeem(&app, &spa, &code, Auth::Post).await).await;
    verified(&app, &spa, field(&tokens, "id_token"), Some(NONCE)).await;

    // A wrong secret is no client.
    let code = authorize(&app, &rp, "openid").await;
    let wrong = Rp {
        client_id: rp.client_id.clone(),
        secret: Some("not-the-secret".into()),
    };
    assert_eq!(
        error_of(redeem(&app, &wrong, &code, Auth::Basic).await, 401).await,
        "invalid_client"
    );
}

#[tokio::test]
async fn a_code_works_once_and_its_second_use_revokes_what_the_first_gave() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid").await;
    let tokens = ok_json(redeem(&app, &rp, &code, Auth::Basic).await).await;
    let access = field(&tokens, "access_token");
    assert_eq!(userinfo_get(&app, access).await.status(), 200);

    assert_eq!(
        error_of(redeem(&app, &rp, &code, Auth::Basic).await, 400).await,
        "invalid_grant"
    );
    let refused = userinfo_get(&app, access).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "oauth.refused" && e.detail.contains("used again"))
    );
}

#[tokio::test]
async fn a_code_reused_thirty_seconds_later_still_revokes_the_tokens() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid offline_access").await;
    let tokens = ok_json(redeem(&app, &rp, &code, Auth::Basic).await).await;

    app.clock.advance(30);
    assert_eq!(
        error_of(redeem(&app, &rp, &code, Auth::Basic).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        userinfo_get(&app, field(&tokens, "access_token"))
            .await
            .status(),
        401
    );
    assert_eq!(
        error_of(
            refresh(&app, &rp, field(&tokens, "refresh_token")).await,
            400
        )
        .await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn two_redemptions_of_one_code_at_once_give_tokens_once() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid").await;
    let (first, second) = tokio::join!(
        redeem(&app, &rp, &code, Auth::Basic),
        redeem(&app, &rp, &code, Auth::Basic)
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let (winner, loser) = if first.status() == 200 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(error_of(loser, 400).await, "invalid_grant");
    let tokens = ok_json(winner).await;
    assert_eq!(
        userinfo_get(&app, field(&tokens, "access_token"))
            .await
            .status(),
        401,
        "the losing redemption is a reuse: it revoked what the winner got"
    );
}

#[tokio::test]
async fn a_code_is_refused_once_the_login_it_was_issued_in_has_ended() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert!(app.me().await.is_none(), "logged out");

    let response = redeem(&app, &rp, &code, Auth::Basic).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "the login has ended");
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == "oauth.refused" && e.detail.contains("the login has ended"))
    );
}

#[tokio::test]
async fn a_code_is_refused_once_its_session_is_past_its_absolute_limit() {
    let app = TestApp::spawn_with(&[("SESSION_ABSOLUTE_HOURS", "1")]).await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", Role::User).await;
    app.login_ok("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    app.clock.advance(3600 - 30);
    // The session still lives: the code comes at once.
    let code = authorize(&app, &rp, "openid").await;
    app.clock.advance(30);
    assert_eq!(
        error_of(redeem(&app, &rp, &code, Auth::Basic).await, 400).await,
        "invalid_grant",
        "the code is 30 seconds old, but its session is an hour old"
    );
}

#[tokio::test]
async fn a_code_lives_sixty_seconds() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let young = authorize(&app, &rp, "openid").await;
    let old = authorize(&app, &rp, "openid").await;
    app.clock.advance(59);
    ok_json(redeem(&app, &rp, &young, Auth::Basic).await).await;
    app.clock.advance(2);
    assert_eq!(
        error_of(redeem(&app, &rp, &old, Auth::Basic).await, 400).await,
        "invalid_grant"
    );
    // Refused for its age, not for another reason.
    assert!(
        app.audit().await.iter().any(|r| r.action
            == promio_server::domain::audit::AuditAction::OAuthRefused
            && r.detail.contains("code expired")),
        "the refusal names the code's age"
    );
}

#[tokio::test]
async fn the_redirect_uri_must_be_the_one_of_the_request() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let code = authorize(&app, &rp, "openid").await;
    let other = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", "https://rp.example/cb/"),
        ("code_verifier", code.verifier.as_str()),
    ];
    assert_eq!(
        error_of(
            as_rp(&app, &rp, "/oauth/token", Auth::Basic, &other).await,
            400
        )
        .await,
        "invalid_grant"
    );
    ok_json(redeem(&app, &rp, &code, Auth::Basic).await).await;
}

#[tokio::test]
async fn pkce_s256_is_checked_and_a_verifier_without_a_challenge_is_refused() {
    let app = logged_in("ACME", "alice").await;
    let spa = register(&app, "Planner", true).await;

    let code = authorize(&app, &spa, "openid").await;
    let wrong = Code {
        code: code.code.clone(),
        verifier: pkce_pair().0,
    };
    assert_eq!(
        error_of(redeem(&app, &spa, &wrong, Auth::Post).await, 400).await,
        "invalid_grant"
    );
    let without = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    assert_eq!(
        error_of(
            as_rp(&app, &spa, "/oauth/token", Auth::Post, &without).await,
            400
        )
        .await,
        "invalid_grant"
    );
    ok_json(redeem(&app, &spa, &code, Auth::Post).await).await;

    // A confidential application whose logins may do without PKCE: a code asked for without a
    // challenge is not redeemed with a verifier (a downgrade), only without one.
    let rp = register(&app, "Legacy", false).await;
    assert!(
        promio_server::idm::apps::set_pkce_required(&app.core, "", &rp.client_id, false)
            .await
            .unwrap()
    );
    let code = Code {
        code: authorize_with(&app, &rp, "openid", None).await,
        verifier: pkce_pair().0,
    };
    assert_eq!(
        error_of(redeem(&app, &rp, &code, Auth::Basic).await, 400).await,
        "invalid_grant"
    );
    let plain = [
        ("grant_type", "authorization_code"),
        ("code", code.code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    ok_json(as_rp(&app, &rp, "/oauth/token", Auth::Basic, &plain).await).await;
}

#[tokio::test]
async fn a_refresh_token_comes_only_with_offline_access() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let without = tokens_for(&app, &rp, "openid profile").await;
    assert!(without.get("refresh_token").is_none());
    let with = tokens_for(&app, &rp, "openid profile offline_access").await;
    assert!(
        with["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43)
    );
    assert_eq!(with["scope"], "openid profile offline_access");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let first = tokens_for(&app, &rp, "openid offline_access").await;
    let first_claims = payload(field(&first, "id_token"));
    let r1 = field(&first, "refresh_token");

    app.clock.advance(120);
    let second = ok_json(refresh(&app, &rp, r1).await).await;
    let r2 = field(&second, "refresh_token");
    assert_ne!(r1, r2);
    let a2 = field(&second, "access_token");
    assert_ne!(a2, field(&first, "access_token"));
    let claims = verified(&app, &rp, field(&second, "id_token"), None).await;
    assert_eq!(claims["sub"], first_claims["sub"]);
    assert_eq!(claims["auth_time"], first_claims["auth_time"]);
    assert_eq!(claims["amr"], first_claims["amr"]);
    assert_eq!(claims["sid"], first_claims["sid"]);
    assert!(claims.get("nonce").is_none());
    assert_eq!(claims["iat"].as_i64().unwrap(), app.clock.now());
    assert_eq!(userinfo_get(&app, a2).await.status(), 200);

    // The rotated token again: refused, and everything of its family with it.
    assert_eq!(
        error_of(refresh(&app, &rp, r1).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        error_of(refresh(&app, &rp, r2).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(userinfo_get(&app, a2).await.status(), 401);
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let first = tokens_for(&app, &rp, "openid offline_access").await;
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", field(&first, "refresh_token")),
        ("scope", "openid email"),
    ];
    assert_eq!(
        error_of(
            as_rp(&app, &rp, "/oauth/token", Auth::Basic, &fields).await,
            400
        )
        .await,
        "invalid_scope"
    );
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", field(&first, "refresh_token")),
        ("scope", "openid"),
    ];
    let narrowed = ok_json(as_rp(&app, &rp, "/oauth/token", Auth::Basic, &fields).await).await;
    assert_eq!(narrowed["scope"], "openid");
}

#[tokio::test]
async fn a_refresh_token_is_bound_to_its_client() {
    let app = logged_in("ACME", "alice").await;
    let a = register(&app, "Time sheets", false).await;
    let b = register(&app, "Planner", false).await;
    let tokens = tokens_for(&app, &a, "openid offline_access").await;
    let token = field(&tokens, "refresh_token");
    assert_eq!(
        error_of(refresh(&app, &b, token).await, 400).await,
        "invalid_grant"
    );
    ok_json(refresh(&app, &a, token).await).await;
}

#[tokio::test]
async fn introspection_and_revocation_see_only_the_callers_own_tokens() {
    let app = logged_in("ACME", "alice").await;
    let a = register(&app, "Time sheets", false).await;
    let b = register(&app, "Planner", false).await;
    let tokens = tokens_for(&app, &a, "openid offline_access").await;
    let access = field(&tokens, "access_token");

    assert_eq!(
        introspect(&app, &b, access).await,
        serde_json::json!({"active": false})
    );
    let seen = introspect(&app, &a, access).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], a.client_id.as_str());
    assert_eq!(seen["username"], "alice");
    assert_eq!(seen["sub"], app.user_id("ACME", "alice").await.as_str());
    assert_eq!(seen["scope"], "openid offline_access");
    assert_eq!(seen["token_type"], "Bearer");
    assert_eq!(seen["aud"], a.client_id.as_str());
    assert_eq!(
        seen["iss"],
        promio_server::edge::oauth::issuer(&app.core).as_str()
    );
    assert_eq!(seen["iat"].as_i64().unwrap(), app.clock.now());
    assert_eq!(seen["exp"].as_i64().unwrap(), app.clock.now() + 600);
    let unknown = introspect(&app, &a, "no-such-token").await;
    assert_eq!(unknown, serde_json::json!({"active": false}));

    // A public client may not introspect.
    let spa = register(&app, "Board", true).await;
    assert_eq!(
        error_of(
            as_rp(
                &app,
                &spa,
                "/oauth/introspect",
                Auth::Post,
                &[("token", access)]
            )
            .await,
            401
        )
        .await,
        "invalid_client"
    );

    // B's revocation is answered as done and changes nothing.
    let revoked = as_rp(&app, &b, "/oauth/revoke", Auth::Basic, &[("token", access)]).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(userinfo_get(&app, access).await.status(), 200);
    assert_eq!(introspect(&app, &a, access).await["active"], true);

    // A's revocation of its refresh token ends the family and the grant's access token.
    let refresh_token = field(&tokens, "refresh_token");
    let revoked = as_rp(
        &app,
        &a,
        "/oauth/revoke",
        Auth::Basic,
        &[
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(userinfo_get(&app, access).await.status(), 401);
    assert_eq!(introspect(&app, &a, access).await["active"], false);
    assert_eq!(
        error_of(refresh(&app, &a, refresh_token).await, 400).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn an_access_token_revoked_by_its_client_stops_at_userinfo() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let tokens = tokens_for(&app, &rp, "openid").await;
    let access = field(&tokens, "access_token");
    let revoked = as_rp(&app, &rp, "/oauth/revoke", Auth::Post, &[("token", access)]).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(userinfo_get(&app, access).await.status(), 401);
}

#[tokio::test]
async fn revocations_and_refused_client_authentications_are_audited() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let tokens = tokens_for(&app, &rp, "openid offline_access").await;
    let revoked = as_rp(
        &app,
        &rp,
        "/oauth/revoke",
        Auth::Basic,
        &[("token", field(&tokens, "refresh_token"))],
    )
    .await;
    assert_eq!(revoked.status(), 200);
    let audit = app.audit().await;
    let revocation = audit
        .iter()
        .find(|e| e.action == "oauth.token" && e.detail.contains("revoked"))
        .expect("the revocation is audited");
    assert!(
        revocation.detail.contains(&rp.client_id),
        "{}",
        revocation.detail
    );
    assert_eq!(
        revocation.subject_user_id.as_deref(),
        Some(app.user_id("ACME", "alice").await.as_str())
    );
    assert!(
        !revocation.detail.contains(field(&tokens, "refresh_token")),
        "never the token"
    );

    // A wrong secret at each endpoint: refused, and audited once for this client and address.
    let wrong = Rp {
        client_id: rp.client_id.clone(),
        secret: Some("wrong".into()),
    };
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        let fields = [("grant_type", "refresh_token"), ("token", "x")];
        let response = as_rp(&app, &wrong, path, Auth::Basic, &fields).await;
        assert_eq!(error_of(response, 401).await, "invalid_client", "{path}");
    }
    let refusals: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "oauth.refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(
        refusals[0].detail.contains(&rp.client_id),
        "{}",
        refusals[0].detail
    );
}

#[tokio::test]
async fn browser_applications_may_call_the_token_endpoints_from_their_pages() {
    const ORIGIN: &str = "https://app.example";
    let app = logged_in("ACME", "alice").await;
    let spa = register(&app, "Board", true).await;
    let browser = reqwest::Client::new();
    for path in ["/oauth/token", "/oauth/userinfo", "/oauth/revoke"] {
        let preflight = browser
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", ORIGIN)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("POST"), "{path}: {methods}");
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{path}: {allowed}"
        );
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "{path}: never with cookies"
        );
    }

    // The page redeems its code, reads userinfo and sees a refusal's reason.
    let code = authorize(&app, &spa, "openid").await;
    let response = browser
        .post(app.url("/oauth/token"))
        .header("origin", ORIGIN)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", code.verifier.as_str()),
            ("client_id", spa.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let tokens = ok_json(response).await;
    let userinfo = browser
        .get(app.url("/oauth/userinfo"))
        .header("origin", ORIGIN)
        .bearer_auth(field(&tokens, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    assert_eq!(userinfo.headers()["access-control-allow-origin"], "*");
    // A refused token: the page may read the challenge that says why.
    let expired = browser
        .get(app.url("/oauth/userinfo"))
        .header("origin", ORIGIN)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    assert_eq!(
        expired.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert!(
        expired.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("www-authenticate"),
        "{:?}",
        expired.headers()
    );
    let refused = browser
        .post(app.url("/oauth/revoke"))
        .header("origin", ORIGIN)
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    assert_eq!(error_of(refused, 401).await, "invalid_client");

    // Introspection is for servers.
    let preflight = browser
        .request(reqwest::Method::OPTIONS, app.url("/oauth/introspect"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn deactivating_a_user_stops_their_tokens_at_once_and_for_good() {
    let app = logged_in("ACME", "alice").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    let rp = register(&app, "Time sheets", false).await;
    let tokens = tokens_for(&app, &rp, "openid offline_access").await;
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");
    assert_eq!(userinfo_get(&app, access).await.status(), 200);

    let admin = app.new_browser();
    assert_eq!(app.login_in(&admin, "ACME", "boss").await.status(), 200);
    let alice = app.user_id("ACME", "alice").await;
    let set_active = |active: &'static str| {
        admin
            .post(app.url("/api/users/set-active"))
            .form(&[("id", alice.as_str()), ("active", active)])
            .send()
    };
    assert_eq!(set_active("false").await.unwrap().status(), 200);

    assert_eq!(userinfo_get(&app, access).await.status(), 401);
    assert_eq!(introspect(&app, &rp, access).await["active"], false);
    assert_eq!(
        error_of(refresh(&app, &rp, refresh_token).await, 400).await,
        "invalid_grant"
    );

    // Revoked, not only paused: reactivation does not bring them back.
    assert_eq!(set_active("true").await.unwrap().status(), 200);
    assert_eq!(userinfo_get(&app, access).await.status(), 401);
    assert_eq!(
        error_of(refresh(&app, &rp, refresh_token).await, 400).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn deleting_a_user_stops_and_removes_their_tokens() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let tokens = tokens_for(&app, &rp, "openid offline_access").await;
    let access = field(&tokens, "access_token");
    let refresh_token = field(&tokens, "refresh_token");
    assert_eq!(app.count_rows("oauth_tokens").await, 2);

    let acme = app
        .core
        .store
        .client_by_company_id(&CompanyId::parse("ACME").unwrap())
        .await
        .unwrap()
        .unwrap();
    let alice = app
        .core
        .store
        .user_by_name(&acme.id, &UserName::parse("alice").unwrap())
        .await
        .unwrap()
        .unwrap();
    let by = lifecycle::DeletedBy::CommandLine;
    assert!(
        lifecycle::delete_user(&app.core, &acme, &alice, by)
            .await
            .unwrap()
    );

    assert_eq!(userinfo_get(&app, access).await.status(), 401);
    assert_eq!(
        error_of(refresh(&app, &rp, refresh_token).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(app.count_rows("oauth_tokens").await, 0);
    assert_eq!(app.count_rows("oauth_codes").await, 0);
}

/// `email_verified` and `email` of the logged-in person, from the ID token and from userinfo
/// (which must agree).
async fn email_claims(app: &TestApp, rp: &Rp) -> (String, bool) {
    let tokens = tokens_for(app, rp, "openid email").await;
    let id_token = payload(field(&tokens, "id_token"));
    let userinfo = ok_json(userinfo_get(app, field(&tokens, "access_token")).await).await;
    assert_eq!(id_token["email"], userinfo["email"]);
    assert_eq!(id_token["email_verified"], userinfo["email_verified"]);
    (
        id_token["email"].as_str().expect("an email").to_owned(),
        id_token["email_verified"]
            .as_bool()
            .expect("email_verified"),
    )
}

async fn change_email(app: &TestApp, user_id: &str, username: &str, email: &str) {
    let response = app
        .call(
            "users/update",
            &[
                ("id", user_id),
                ("first_name", "Test"),
                ("last_name", username),
                ("email", email),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn set_password_with(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.call(
        "set-password",
        &[
            ("token", token),
            ("new_password", password),
            ("repeat_password", password),
        ],
    )
    .await
}

/// An address a client's administrator typed is not claimed as verified: an administrator of one
/// company could otherwise give a user of theirs an address that a person of another company
/// owns, and an application that links accounts by verified email would let them in as that
/// person. A link mailed to the address and used shows it is the user's.
#[tokio::test]
async fn email_verified_is_claimed_only_for_an_address_shown_to_be_the_users() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    // Made at the command line with a password: the operator vouches for the address.
    app.create_user("ACME", "alice", Role::User).await;
    let rp = register(&app, "Time sheets", false).await;
    let alice = app.user_id("ACME", "alice").await;

    app.login_ok("ACME", "alice").await;
    assert_eq!(
        email_claims(&app, &rp).await,
        ("alice@acme.example".to_owned(), true)
    );

    // A reset link goes to the old address; then the administrator changes it.
    app.login_ok("ACME", "boss").await;
    let sent = app.call("users/send-reset", &[("id", &alice)]).await;
    assert_eq!(sent.status(), 200);
    let before = TestApp::token_of(&app.mail_to("alice@acme.example").await);
    change_email(&app, &alice, "alice", "alice@other.example").await;
    assert!(!app.user_row("ACME", "alice").await.email_verified());

    app.login_ok("ACME", "alice").await;
    assert_eq!(
        email_claims(&app, &rp).await,
        ("alice@other.example".to_owned(), false)
    );
    // The link mailed to the old address sets no password any more.
    assert_eq!(
        set_password_with(&app, &before, NEW_PASSWORD)
            .await
            .status(),
        410
    );

    // A link mailed to the new address, used, shows that it is hers.
    app.login_ok("ACME", "boss").await;
    let sent = app.call("users/send-reset", &[("id", &alice)]).await;
    assert_eq!(sent.status(), 200);
    let token = TestApp::token_of(&app.mail_to("alice@other.example").await);
    assert_eq!(
        set_password_with(&app, &token, NEW_PASSWORD).await.status(),
        200
    );
    let login = app.login("ACME", "alice", NEW_PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_eq!(
        email_claims(&app, &rp).await,
        ("alice@other.example".to_owned(), true)
    );
}

/// After erika's address was corrected to `to`: the link mailed to the old one (`wrong`) is void,
/// the one mailed to `to` sets her password and shows `to` to be hers.
async fn invitation_moved(app: &TestApp, wrong: &str, to: &str) {
    assert_eq!(set_password_with(app, wrong, PASSWORD).await.status(), 410);
    let right = TestApp::token_of(&app.mail_to(to).await);
    assert_eq!(set_password_with(app, &right, PASSWORD).await.status(), 200);
    let erika = app.user_row("ACME", "erika").await;
    assert_eq!(erika.email, to);
    assert!(erika.email_verified());
}

/// An invited user's address corrected by the administrator: the registration link mailed to the
/// wrong one is void, and a new one goes to the right one.
#[tokio::test]
async fn a_corrected_address_gets_the_invitation_and_the_old_link_is_void() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    let wrong = TestApp::token_of(&app.mail_to("erika@acme.example").await);
    let erika = app.user_id("ACME", "erika").await;
    assert!(!app.user_row("ACME", "erika").await.email_verified());

    app.login_ok("ACME", "boss").await;
    change_email(&app, &erika, "erika", "erika.m@acme.example").await;
    invitation_moved(&app, &wrong, "erika.m@acme.example").await;

    let rp = register(&app, "Time sheets", false).await;
    app.login_ok("ACME", "erika").await;
    assert_eq!(
        email_claims(&app, &rp).await,
        ("erika.m@acme.example".to_owned(), true)
    );
}

#[tokio::test]
async fn profile_and_email_scopes_decide_the_claims() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;

    let bare = tokens_for(&app, &rp, "openid").await;
    for claims in [
        payload(field(&bare, "id_token")),
        ok_json(userinfo_get(&app, field(&bare, "access_token")).await).await,
    ] {
        assert_eq!(claims["company_id"], "ACME", "{claims}");
        assert_eq!(claims["company_name"], "ACME GmbH");
        for absent in ["email", "email_verified", "preferred_username", "name"] {
            assert!(claims.get(absent).is_none(), "{absent} in {claims}");
        }
    }

    let full = tokens_for(&app, &rp, "openid profile email").await;
    for claims in [
        payload(field(&full, "id_token")),
        ok_json(userinfo_get(&app, field(&full, "access_token")).await).await,
    ] {
        assert_eq!(claims["preferred_username"], "alice", "{claims}");
        assert_eq!(claims["name"], "Test alice");
        assert_eq!(claims["given_name"], "Test");
        assert_eq!(claims["family_name"], "alice");
        assert_eq!(claims["email"], "alice@acme.example");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["company_id"], "ACME");
    }

    let profile = tokens_for(&app, &rp, "openid profile").await;
    let claims = payload(field(&profile, "id_token"));
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims.get("email").is_none(), "{claims}");
}

#[tokio::test]
async fn amr_says_how_the_person_logged_in_and_sub_stays_the_same() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let first = payload(field(&tokens_for(&app, &rp, "openid").await, "id_token"));
    assert_eq!(first["amr"], serde_json::json!(["pwd"]));
    let sub = first["sub"].as_str().unwrap().to_owned();
    assert_ne!(sub, "alice");
    assert_eq!(sub, app.user_id("ACME", "alice").await);

    app.client.post(app.url("/logout")).send().await.unwrap();
    app.clock.advance(60);
    app.login_ok("ACME", "alice").await;
    let again = payload(field(&tokens_for(&app, &rp, "openid").await, "id_token"));
    assert_eq!(again["sub"], sub.as_str());
    assert_ne!(again["sid"], first["sid"], "a new session");
    assert!(again["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());

    let (app, secret, _) = TestApp::with_2fa("ACME", "bob").await;
    let rp = register(&app, "Time sheets", false).await;
    let outcome: LoginOutcome = app
        .login("ACME", "bob", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    let code = app.totp_code(&secret, 0);
    assert_eq!(
        app.call("2fa/login", &[("code", &code)]).await.status(),
        200
    );
    let claims = payload(field(&tokens_for(&app, &rp, "openid").await, "id_token"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn unknown_grant_types_and_missing_parameters_are_refused() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let password = [("grant_type", "password"), ("username", "alice")];
    assert_eq!(
        error_of(
            as_rp(&app, &rp, "/oauth/token", Auth::Basic, &password).await,
            400
        )
        .await,
        "unsupported_grant_type"
    );
    let no_code = [
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
    ];
    assert_eq!(
        error_of(
            as_rp(&app, &rp, "/oauth/token", Auth::Basic, &no_code).await,
            400
        )
        .await,
        "invalid_request"
    );
    let unknown = [
        ("grant_type", "authorization_code"),
        ("code", "no-such-code"),
        ("redirect_uri", REDIRECT),
    ];
    assert_eq!(
        error_of(
            as_rp(&app, &rp, "/oauth/token", Auth::Basic, &unknown).await,
            400
        )
        .await,
        "invalid_grant"
    );
    assert_eq!(userinfo_get(&app, "no-such-token").await.status(), 401);
    let none = reqwest::Client::new()
        .get(app.url("/oauth/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
}

/// A link made while an administrator's change of address went through was mailed to the old
/// address: using it sets the password, but shows nothing about the new address.
#[tokio::test]
async fn a_link_mailed_to_an_old_address_does_not_verify_the_new_one() {
    use promio_server::domain::LinkKind;
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user("ACME", "alice", Role::User).await;
    let alice = app.user_id("ACME", "alice").await;
    app.login_ok("ACME", "boss").await;
    change_email(&app, &alice, "alice", "alice@other.example").await;
    assert!(!app.user_row("ACME", "alice").await.email_verified());

    // The race's result: a reset link that went to the old address after the change.
    let issued = promio_server::infra::token::issue();
    let now = app.clock.now();
    let mut conn = app.core.store.pool().acquire().await.unwrap();
    promio_server::store::links::replace(
        &mut conn,
        &issued.hash,
        &app.user_row("ACME", "alice").await.id,
        LinkKind::PasswordReset,
        now,
        now + 3600,
        "alice@acme.example",
    )
    .await
    .unwrap();
    drop(conn);
    let token = issued.secret.expose_secret().to_owned();
    let used = set_password_with(&app, &token, NEW_PASSWORD).await;
    assert_eq!(used.status(), 200);
    assert!(!app.user_row("ACME", "alice").await.email_verified());
}

/// The command line's `user set --email` on an invited user: the invitation goes again, to the
/// new address, and the link mailed to the old one is void.
#[tokio::test]
async fn an_operator_correcting_an_invited_users_address_sends_the_invitation_again() {
    use promio_server::idm::provisioning::{self, UserChanges};
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    let wrong = TestApp::token_of(&app.mail_to("erika@acme.example").await);
    let client = provisioning::client(&app.core, "ACME").await.unwrap();
    let erika = app.user_row("ACME", "erika").await;
    provisioning::change_user(
        &app.core,
        &client,
        &erika,
        UserChanges {
            email: Some("erika.m@acme.example".into()),
            ..UserChanges::default()
        },
    )
    .await
    .unwrap();
    invitation_moved(&app, &wrong, "erika.m@acme.example").await;
}

/// A password change ends the other sessions, and the applications' tokens issued in them
/// (offline access among them) with them; the tokens of the session that changed it stay.
#[tokio::test]
async fn a_password_change_revokes_the_application_tokens_of_the_other_sessions() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let tokens = tokens_for(&app, &rp, "openid offline_access").await;

    // Changed in the session the tokens were issued in: they stay.
    let here = change_password_in(&app, &app.client, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(here.status(), 200);
    let kept = ok_json(refresh(&app, &rp, field(&tokens, "refresh_token")).await).await;

    // Changed in another browser: this session ends, and its application's tokens with it.
    let other = app.new_browser();
    let login = other
        .post(app.url("/api/login"))
        .form(&[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let there = change_password_in(&app, &other, NEW_PASSWORD, NEWER_PASSWORD).await;
    assert_eq!(there.status(), 200);
    assert_eq!(
        error_of(refresh(&app, &rp, field(&kept, "refresh_token")).await, 400).await,
        "invalid_grant"
    );
    assert_eq!(
        userinfo_get(&app, field(&kept, "access_token"))
            .await
            .status(),
        401
    );
}

/// A reset through a mailed link ends every session and revokes every application token.
#[tokio::test]
async fn a_password_reset_revokes_the_application_tokens() {
    let app = logged_in("ACME", "alice").await;
    let rp = register(&app, "Time sheets", false).await;
    let tokens = tokens_for(&app, &rp, "openid offline_access").await;
    let asked = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "alice")],
        )
        .await;
    assert_eq!(asked.status(), 200);
    let token = TestApp::token_of(&app.mail_to("alice@acme.example").await);
    assert_eq!(
        set_password_with(&app, &token, NEW_PASSWORD).await.status(),
        200
    );
    assert_eq!(
        error_of(
            refresh(&app, &rp, field(&tokens, "refresh_token")).await,
            400
        )
        .await,
        "invalid_grant"
    );
}

async fn change_password_in(
    app: &TestApp,
    browser: &reqwest::Client,
    current: &str,
    new: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/api/password/change"))
        .form(&[
            ("current_password", current),
            ("new_password", new),
            ("repeat_password", new),
        ])
        .send()
        .await
        .unwrap()
}
