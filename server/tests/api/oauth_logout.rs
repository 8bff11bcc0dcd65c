//! Logout for the applications: RP-initiated logout (`/oauth/logout`: the hint, the exactly
//! registered post-logout URI, the confirmation that a bare GET never skips) and back-channel
//! logout tokens for every way a session ends, delivered once (retries, two instances), at once
//! after a logout and without waiting for an application that never answers, the Security
//! page's list of applications, and the housekeeping of the provider's rows.

use crate::helpers::TestApp;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use promio_app::api::{AppLogin, Role};
use promio_server::domain::CompanyId;
use promio_server::domain::audit::AuditAction;
use promio_server::domain::clock::Clock;
use promio_server::edge::oauth::logout::{
    BACKCHANNEL_EVENT, deliver_due, spawn_sweeper, sweep_once,
};
use promio_server::idm::apps::{self, NewApp};
use promio_server::store::sso::SsoSettingsRow;
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REDIRECT: &str = "https://rp.example/cb";
const BYE: &str = "https://rp.example/bye";

/// A relying party's back-channel logout endpoint: records the logout tokens it accepted.
#[derive(Clone, Default)]
struct Receiver {
    uri: String,
    /// Logout tokens answered with 200.
    tokens: Arc<Mutex<Vec<String>>>,
    /// Every POST, accepted or not.
    attempts: Arc<AtomicUsize>,
    /// The logout token of every POST, accepted or not.
    received: Arc<Mutex<Vec<String>>>,
    /// How many of the first POSTs are answered 500.
    failures: Arc<AtomicUsize>,
    /// Notified with every token accepted.
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver {
            uri: format!("http://{addr}/backchannel"),
            failures: Arc::new(AtomicUsize::new(failures)),
            ..Receiver::default()
        };
        let router = axum::Router::new()
            .route("/backchannel", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        receiver
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

async fn receive(State(receiver): State<Receiver>, body: String) -> StatusCode {
    receiver.attempts.fetch_add(1, Ordering::SeqCst);
    let sent = url::form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    receiver.received.lock().unwrap().push(sent);
    let failing = receiver
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    receiver.tokens.lock().unwrap().push(token);
    receiver.arrived.notify_one();
    StatusCode::OK
}

/// A back-channel endpoint that takes the connection and never answers.
async fn never_answering() -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Receiver {
        uri: format!("http://{addr}/backchannel"),
        ..Receiver::default()
    }
}

/// A registered application, as its operator received it.
struct Rp {
    client_id: String,
    secret: String,
}

async fn register(app: &TestApp, name: &str, backchannel: Option<&Receiver>) -> Rp {
    let created = apps::create(
        &app.core,
        "",
        NewApp {
            name: name.into(),
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![BYE.into()],
            backchannel_logout_uri: backchannel.map(|r| r.uri.clone()),
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    Rp {
        client_id: created.client_id,
        secret: created
            .client_secret
            .map(|s| s.expose_secret().to_owned())
            .unwrap(),
    }
}

/// Asks for a code as `browser` (logged in: the code comes at once) and redeems it as the
/// application's server would; returns the token endpoint's answer.
async fn log_in_to(app: &TestApp, browser: &reqwest::Client, rp: &Rp, scope: &str) -> Value {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let params = [
        ("response_type", "code"),
        ("client_id", rp.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "xyz"),
        ("nonce", "n-0S6"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let url = url::Url::parse_with_params(&app.url("/oauth/authorize"), &params).unwrap();
    let response = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let query: HashMap<String, String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let code = query
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in {location}"));
    let response = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
            ("client_id", rp.client_id.as_str()),
            ("client_secret", rp.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The ID token's claims from a token endpoint answer.
fn id_claims(tokens: &Value) -> Value {
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)
}

/// Checks a delivered logout token (signature by a published key, type, claims) and returns
/// its claims.
async fn checked_logout_token(app: &TestApp, token: &str) -> Value {
    let verified = promio_server::idm::signing::verify(&app.core, token)
        .await
        .expect("signed by one of the provider's keys");
    let header = jwt_part(token, 0);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "RS256");
    let kids: Vec<String> = app
        .client
        .get(app.url("/oauth/jwks"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(kids.contains(&header["kid"].as_str().unwrap().to_owned()));
    assert_eq!(
        verified["iss"],
        app.core.settings.public_url.as_str().trim_end_matches('/')
    );
    assert!(
        verified["events"][BACKCHANNEL_EVENT].is_object(),
        "{verified}"
    );
    assert!(
        verified.get("nonce").is_none(),
        "a logout token has no nonce"
    );
    assert!(verified["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let iat = verified["iat"].as_i64().unwrap();
    assert_eq!(verified["exp"].as_i64().unwrap(), iat + 120);
    verified
}

/// The hidden fields of the confirmation page's form.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let name = rest
                .split("name=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (name.to_owned(), unescape(value))
        })
        .collect()
}

async fn logout_get(
    app: &TestApp,
    browser: &reqwest::Client,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let url = url::Url::parse_with_params(&app.url("/oauth/logout"), params).unwrap();
    browser.get(url.as_str()).send().await.unwrap()
}

#[tokio::test]
async fn a_logout_with_the_id_token_hint_ends_the_session_and_tells_the_application() {
    let app = TestApp::with_user("ACME", "alice").await;
    let receiver = Receiver::start(0).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    app.login_ok("ACME", "alice").await;
    let tokens = log_in_to(&app, &app.client, &wiki, "openid profile").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let id = id_claims(&tokens);
    assert_eq!(
        sweep_once(&app.core).await.unwrap(),
        0,
        "the session is alive"
    );

    let response = logout_get(
        &app,
        &app.client,
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", BYE),
            ("state", "af0ifjsldkj"),
        ],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://rp.example/bye?state=af0ifjsldkj"
    );
    assert_eq!(response.headers()["clear-site-data"], "\"cache\"");
    assert_eq!(app.me().await, None);
    assert_eq!(app.active_sessions().await, 0);
    let audit = app.audit().await;
    let logout = audit
        .iter()
        .find(|r| r.action == AuditAction::OAuthLogout)
        .expect("an oauth.logout event");
    assert!(logout.detail.contains(&wiki.client_id), "{}", logout.detail);

    assert_eq!(sweep_once(&app.core).await.unwrap(), 1);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 1);
    let delivered = receiver.tokens();
    assert_eq!(delivered.len(), 1);
    let claims = checked_logout_token(&app, &delivered[0]).await;
    assert_eq!(claims["aud"], wiki.client_id.as_str());
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(claims["sid"], id["sid"]);
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));

    // Once only.
    assert_eq!(sweep_once(&app.core).await.unwrap(), 0);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.attempts(), 1);
    assert_eq!(app.count_rows("oauth_logout_outbox").await, 0);
}

#[tokio::test]
async fn an_unregistered_post_logout_uri_gets_an_error_page_and_no_redirect() {
    let app = TestApp::with_user("ACME", "alice").await;
    let wiki = register(&app, "Wiki", None).await;
    app.login_ok("ACME", "alice").await;
    let tokens = log_in_to(&app, &app.client, &wiki, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    let cases: [&[(&str, &str)]; 3] = [
        // Not registered for the hint's application.
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://evil.example/bye"),
        ],
        // Registered, but a prefix match is no match.
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://rp.example/bye/more"),
        ],
        // No hint and no client_id: no application to check it against.
        &[("post_logout_redirect_uri", BYE), ("state", "s")],
    ];
    for params in cases {
        let response = logout_get(&app, &app.client, params).await;
        assert_eq!(response.status(), 400, "{params:?}");
        assert!(response.headers().get("location").is_none());
        let body = response.text().await.unwrap();
        assert!(body.contains("role=\"alert\""), "{body}");
        assert!(!body.contains("evil.example"));
    }
    assert!(app.me().await.is_some(), "the session is still alive");
}

#[tokio::test]
async fn without_a_hint_a_confirmation_page_asks_and_only_its_form_ends_the_session() {
    let app = TestApp::with_user("ACME", "alice").await;
    let wiki = register(&app, "Wiki", None).await;
    app.login_ok("ACME", "alice").await;

    let params = [
        ("client_id", wiki.client_id.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "s&1"),
    ];
    let response = logout_get(&app, &app.client, &params).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "the form's redirect is allowed: {csp}"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("Log out of promio.connect?"), "{body}");
    assert!(body.contains(">Log out</button>"), "{body}");
    assert!(
        app.me().await.is_some(),
        "a GET without a hint ends nothing"
    );

    // A POST without the page's token (another site's form, a guess) only asks again.
    let response = app
        .client
        .post(app.url("/oauth/logout"))
        .form(&[("confirm", "guess"), ("client_id", wiki.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(app.me().await.is_some());

    let fields = hidden_fields(&body);
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["confirm", "client_id", "post_logout_redirect_uri", "state"]
    );
    // As a browser posts the page's form (the page sends no referrer: `Origin: null`).
    let response = app
        .client
        .post(app.url("/oauth/logout"))
        .header("sec-fetch-site", "same-origin")
        .header("origin", "null")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://rp.example/bye?state=s%261"
    );
    assert_eq!(app.me().await, None);

    // Logged out already: the registered URI again, and nothing to confirm.
    let response = logout_get(&app, &app.client, &params).await;
    assert_eq!(response.status(), 303);
    let response = logout_get(&app, &app.client, &[]).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("You are logged out"), "{body}");
    assert!(body.contains("href=\"/login\""));
}

#[tokio::test]
async fn a_hint_of_another_user_asks_first() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "bob", Role::User).await;
    let wiki = register(&app, "Wiki", None).await;
    let bob = app.new_browser();
    assert_eq!(app.login_in(&bob, "ACME", "bob").await.status(), 200);
    let bobs = log_in_to(&app, &bob, &wiki, "openid").await;
    app.login_ok("ACME", "alice").await;

    let response = logout_get(
        &app,
        &app.client,
        &[("id_token_hint", bobs["id_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Log out of promio.connect?")
    );
    assert!(
        app.me().await.is_some(),
        "alice's session is not ended by bob's hint"
    );
    assert!(app.me_in(&bob).await.is_some());
}

/// The ways a session ends.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Logout,
    AdminEndsSessions,
    Deactivation,
    Deletion,
    Expiry,
    /// Kept in use, the session reaches its absolute limit.
    AbsoluteLimit,
    /// The client is switched to single sign-on.
    SsoSwitch,
}

/// alice logs in to Wiki (back-channel URI) and Tool (none); Shop (back-channel URI) takes no
/// part. However the session ends, Wiki alone gets one logout token, for alice's session.
async fn ending_tells_the_applications_that_took_part(ending: Ending) {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    let receiver = Receiver::start(0).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    let shop = register(&app, "Shop", Some(&receiver)).await;
    let tool = register(&app, "Tool", None).await;
    app.login_ok("ACME", "boss").await;
    let alice = app.new_browser();
    let logged_in_at = app.clock.now();
    assert_eq!(app.login_in(&alice, "ACME", "alice").await.status(), 200);
    let tokens = log_in_to(&app, &alice, &wiki, "openid").await;
    log_in_to(&app, &alice, &tool, "openid").await;
    let id = id_claims(&tokens);
    let alice_id = app.user_id("ACME", "alice").await;
    assert_eq!(id["sub"], alice_id.as_str());
    assert_eq!(sweep_once(&app.core).await.unwrap(), 0);

    match ending {
        Ending::Logout => {
            let response = alice.post(app.url("/logout")).send().await.unwrap();
            assert_eq!(response.status(), 303);
        }
        Ending::AdminEndsSessions => {
            let response = app.call("users/end-sessions", &[("id", &alice_id)]).await;
            assert_eq!(response.json::<u32>().await.unwrap(), 1);
        }
        Ending::Deactivation => {
            let response = app
                .call(
                    "users/set-active",
                    &[("id", &alice_id), ("active", "false")],
                )
                .await;
            assert_eq!(response.status(), 200);
        }
        Ending::Deletion => {
            let response = app.call("users/delete", &[("id", &alice_id)]).await;
            assert_eq!(response.status(), 200);
        }
        Ending::Expiry => {
            app.clock.advance(app.core.sessions.idle_secs);
        }
        Ending::AbsoluteLimit => {
            let sessions = &app.core.sessions;
            let ends_at = logged_in_at + sessions.absolute_secs;
            let step = sessions.idle_secs / 2;
            while app.clock.now() + step < ends_at {
                app.clock.advance(step);
                assert!(app.me_in(&alice).await.is_some(), "in use, never idle");
            }
            app.clock.advance(ends_at - app.clock.now());
        }
        Ending::SsoSwitch => {
            // What switching the client to SSO stores (sso.rs switches through the settings,
            // against a real provider): the end of every session its users' passwords opened.
            let settings = SsoSettingsRow {
                issuer: "https://idp.example".into(),
                client_id: "promio".into(),
                sealed_secret: String::new(),
                email_claim: "email".into(),
                jit: false,
            };
            let acme = CompanyId::parse("ACME").unwrap();
            let domains = ["acme.example".to_owned()];
            let now = app.clock.now();
            let store = &app.core.store;
            store
                .set_client_sso(&acme, Some(&settings), &domains, now)
                .await
                .expect("SSO on");
        }
    }

    // Found before anyone asks for the session (a timed-out row is still there then).
    assert_eq!(sweep_once(&app.core).await.unwrap(), 1, "{ending:?}");
    assert!(app.me_in(&alice).await.is_none(), "{ending:?}");
    assert_eq!(app.count_rows("oauth_participations").await, 0);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 1);
    let delivered = receiver.tokens();
    assert_eq!(delivered.len(), 1, "{ending:?}");
    let claims = checked_logout_token(&app, &delivered[0]).await;
    assert_eq!(claims["aud"], wiki.client_id.as_str());
    assert_ne!(claims["aud"], shop.client_id.as_str());
    assert_eq!(claims["sub"], alice_id.as_str());
    assert_eq!(claims["sid"], id["sid"]);
    assert_eq!(sweep_once(&app.core).await.unwrap(), 0);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.attempts(), 1);
}

#[tokio::test]
async fn a_logout_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::Logout).await;
}

#[tokio::test]
async fn an_administrator_ending_the_sessions_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::AdminEndsSessions).await;
}

#[tokio::test]
async fn a_deactivation_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::Deactivation).await;
}

#[tokio::test]
async fn a_deletion_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::Deletion).await;
}

#[tokio::test]
async fn an_expired_session_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::Expiry).await;
}

#[tokio::test]
async fn a_session_at_its_absolute_limit_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::AbsoluteLimit).await;
}

#[tokio::test]
async fn switching_the_client_to_sso_sends_a_back_channel_logout_token() {
    ending_tells_the_applications_that_took_part(Ending::SsoSwitch).await;
}

#[tokio::test]
async fn a_logout_wakes_the_sweeper_and_the_token_goes_out_at_once() {
    let app = TestApp::with_user("ACME", "alice").await;
    let receiver = Receiver::start(0).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    let sweeper = spawn_sweeper(Arc::clone(&app.core));
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &wiki, "openid").await;

    // The sweeper has looked (at its start) and waits SWEEP_EVERY (5 s): only the logout's
    // wake-up brings the token out sooner.
    let response = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    tokio::time::timeout(Duration::from_secs(2), receiver.arrived.notified())
        .await
        .expect("the logout token within 2 s of the logout");
    let delivered = receiver.tokens();
    assert_eq!(delivered.len(), 1);
    checked_logout_token(&app, &delivered[0]).await;
    sweeper.abort();
}

#[tokio::test]
async fn an_application_that_never_answers_holds_up_no_other() {
    let app = TestApp::with_user("ACME", "alice").await;
    let stuck = never_answering().await;
    let receiver = Receiver::start(0).await;
    let slow = register(&app, "Slow", Some(&stuck)).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    // Slow's token is due first: one delivery after the other would wait for it first.
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &slow, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(sweep_once(&app.core).await.unwrap(), 1);
    app.clock.advance(1);
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &wiki, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(sweep_once(&app.core).await.unwrap(), 1);

    let core = Arc::clone(&app.core);
    let pass = tokio::spawn(async move { deliver_due(&core).await.unwrap() });
    // Well within the 5 s that Slow's request may take.
    tokio::time::timeout(Duration::from_secs(2), receiver.arrived.notified())
        .await
        .expect("Wiki's token while Slow's request hangs");
    assert_eq!(receiver.tokens().len(), 1);
    // The pass ends when Slow's request times out; its token waits for a retry.
    assert_eq!(pass.await.unwrap(), 1);
    assert_eq!(app.count_rows("oauth_logout_outbox").await, 1);
}

#[tokio::test]
async fn an_id_token_of_an_earlier_session_does_not_end_the_current_one_unasked() {
    let app = TestApp::with_user("ACME", "alice").await;
    let wiki = register(&app, "Wiki", None).await;
    app.login_ok("ACME", "alice").await;
    let earlier = log_in_to(&app, &app.client, &wiki, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.login_ok("ACME", "alice").await;

    let hint = earlier["id_token"].as_str().unwrap();
    let response = logout_get(&app, &app.client, &[("id_token_hint", hint)]).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("Log out of promio.connect?"), "{body}");
    assert!(app.me().await.is_some(), "the same user, another session");

    // The current session's own ID token ends it.
    let current = log_in_to(&app, &app.client, &wiki, "openid").await;
    let hint = current["id_token"].as_str().unwrap();
    let response = logout_get(&app, &app.client, &[("id_token_hint", hint)]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("You are logged out")
    );
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn a_logout_token_is_no_id_token_hint() {
    let app = TestApp::with_user("ACME", "alice").await;
    let wiki = register(&app, "Wiki", None).await;
    app.login_ok("ACME", "alice").await;
    let id = id_claims(&log_in_to(&app, &app.client, &wiki, "openid").await);
    // Signed by the provider, for this user and this very session: but a logout token.
    let now = app.clock.now();
    let claims = serde_json::json!({
        "iss": id["iss"],
        "aud": wiki.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": "logout-1",
        "sub": id["sub"],
        "sid": id["sid"],
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    let logout_token = promio_server::idm::signing::sign(&app.core, &claims, "logout+jwt")
        .await
        .unwrap();
    let hint = [("id_token_hint", logout_token.as_str())];
    let response = logout_get(&app, &app.client, &hint).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("Log out of promio.connect?"), "{body}");
    assert!(app.me().await.is_some());
}

/// POSTs a form to `/oauth/logout` as a page of the application's site.
async fn cross_site_logout(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/logout"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://rp.example")
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The path of a 303 to this site, and its query's parameters.
fn see_other(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse("http://here.invalid")
        .unwrap()
        .join(location)
        .unwrap();
    let query = url.query_pairs().into_owned().collect();
    (location.to_owned(), query)
}

#[tokio::test]
async fn a_logout_form_from_another_site_goes_on_as_a_get_which_carries_the_session() {
    let app = TestApp::with_user("ACME", "alice").await;
    let wiki = register(&app, "Wiki", None).await;
    app.login_ok("ACME", "alice").await;
    let tokens = log_in_to(&app, &app.client, &wiki, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // The confirmation's token does not ride along: only this site's own form confirms.
    let client_id = wiki.client_id.as_str();
    let page = logout_get(&app, &app.client, &[("client_id", client_id)]).await;
    let fields = hidden_fields(&page.text().await.unwrap());
    let confirm = fields
        .iter()
        .find(|(n, _)| n == "confirm")
        .map(|(_, v)| v.as_str())
        .unwrap();
    let response = cross_site_logout(&app, &[("confirm", confirm), ("client_id", client_id)]).await;
    let (next, query) = see_other(&response);
    assert!(next.starts_with("/oauth/logout?"), "{next}");
    assert_eq!(query.get("client_id").map(String::as_str), Some(client_id));
    assert!(!query.contains_key("confirm"), "{next}");
    let response = app.client.get(app.url(&next)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("Log out of promio.connect?"), "{body}");
    assert!(app.me().await.is_some());

    // With the session's ID token: the GET ends it, as one sent directly would.
    let form = [
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", BYE),
        ("state", "s-1"),
    ];
    let response = cross_site_logout(&app, &form).await;
    let (next, query) = see_other(&response);
    assert_eq!(
        query.get("id_token_hint").map(String::as_str),
        Some(id_token)
    );
    let response = app.client.get(app.url(&next)).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "https://rp.example/bye?state=s-1"
    );
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_later_with_a_fresh_token_and_delivered_once() {
    let app = TestApp::with_user("ACME", "alice").await;
    let receiver = Receiver::start(2).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &wiki, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(sweep_once(&app.core).await.unwrap(), 1);

    // 500: tried again after 30 s, then after 60 s more.
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.attempts(), 1);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.attempts(), 1, "not due yet");
    app.clock.advance(30);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.attempts(), 2);
    app.clock.advance(59);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.attempts(), 2, "not due yet");
    app.clock.advance(1);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 1);
    assert_eq!(receiver.attempts(), 3);
    let delivered = receiver.tokens();
    assert_eq!(delivered.len(), 1);
    // Queued 90 s ago: signed again, so that it has not expired.
    let claims = checked_logout_token(&app, &delivered[0]).await;
    assert_eq!(claims["iat"].as_i64().unwrap(), app.clock.now());
    // Each attempt is a token of its own: a relying party that took an attempt whose answer got
    // lost does not refuse the next one as a replay of its `jti`.
    let sent = receiver.received.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    let mut ids = Vec::new();
    for token in &sent {
        let each = checked_logout_token(&app, token).await;
        assert_eq!(each["sid"], claims["sid"], "the same session's logout");
        ids.push(each["jti"].as_str().unwrap().to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");

    app.clock.advance(3600);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(receiver.tokens().len(), 1);
    assert_eq!(app.count_rows("oauth_logout_outbox").await, 0);
}

#[tokio::test]
async fn a_token_never_delivered_is_given_up_after_two_days() {
    let app = TestApp::with_user("ACME", "alice").await;
    let receiver = Receiver::start(usize::MAX).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &wiki, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(sweep_once(&app.core).await.unwrap(), 1);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(app.count_rows("oauth_logout_outbox").await, 1);
    app.clock.advance(2 * 86_400);
    assert_eq!(deliver_due(&app.core).await.unwrap(), 0);
    assert_eq!(app.count_rows("oauth_logout_outbox").await, 0);
    assert_eq!(receiver.attempts(), 2);
}

#[tokio::test]
async fn two_instances_sweeping_and_delivering_at_once_send_a_token_once() {
    let app = TestApp::with_user("ACME", "alice").await;
    let receiver = Receiver::start(0).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &wiki, "openid").await;
    let second = app.second_instance().await;
    app.client.post(app.url("/logout")).send().await.unwrap();

    let (a, b) = tokio::join!(sweep_once(&app.core), sweep_once(&second));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(app.count_rows("oauth_logout_outbox").await, 1);
    let (a, b) = tokio::join!(deliver_due(&app.core), deliver_due(&second));
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(receiver.tokens().len(), 1);
    assert_eq!(receiver.attempts(), 1);
}

/// The Security page's list of applications.
async fn list(app: &TestApp) -> Vec<AppLogin> {
    let response = app.call("sessions/applications", &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_security_page_lists_the_applications_the_user_is_logged_in_to() {
    let app = TestApp::with_user("ACME", "alice").await;
    let wiki = register(&app, "Wiki", None).await;
    let shop = register(&app, "Shop", None).await;
    app.login_ok("ACME", "alice").await;
    assert!(list(&app).await.is_empty());

    log_in_to(&app, &app.client, &wiki, "openid").await;
    let apps = list(&app).await;
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "Wiki");
    assert!(!apps[0].since.is_empty());

    // Shop holds a refresh token: it stays logged in after this session ends.
    log_in_to(&app, &app.client, &shop, "openid offline_access").await;
    let names = |apps: Vec<AppLogin>| apps.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(names(list(&app).await), ["Shop", "Wiki"]);
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.login_ok("ACME", "alice").await;
    assert_eq!(names(list(&app).await), ["Shop"]);

    // Not for a visitor without a session.
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(app.call("sessions/applications", &[]).await.status(), 401);
}

#[tokio::test]
async fn housekeeping_removes_what_the_provider_no_longer_needs() {
    let app = TestApp::with_user("ACME", "alice").await;
    let receiver = Receiver::start(0).await;
    let wiki = register(&app, "Wiki", Some(&receiver)).await;
    let tool = register(&app, "Tool", None).await;
    app.login_ok("ACME", "alice").await;
    log_in_to(&app, &app.client, &wiki, "openid").await;
    log_in_to(&app, &app.client, &tool, "openid").await;
    app.client.post(app.url("/logout")).send().await.unwrap();

    // Tool hears of no logout: its participation goes; Wiki's waits for the sweeper.
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("oauth_participations"), 1, "{report:?}");
    assert_eq!(report.deleted_from("oauth_codes"), 0);
    assert_eq!(app.count_rows("oauth_participations").await, 1);
    assert_eq!(sweep_once(&app.core).await.unwrap(), 1);

    // A day after they expired: the used codes and the access tokens.
    app.clock.advance(86_400 + 601);
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("oauth_codes"), 2, "{report:?}");
    assert_eq!(report.deleted_from("oauth_tokens"), 2, "{report:?}");
    // An outbox row never delivered is gone after two days.
    app.clock.advance(2 * 86_400);
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("oauth_logout_outbox"), 1, "{report:?}");
    assert_eq!(receiver.attempts(), 0);
}
