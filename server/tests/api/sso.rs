//! Single sign-on against a real OpenID provider: npm `oidc-provider`, started once for this test
//! binary (end2end/support/oidc-idp.mjs). Each test registers its own client at the provider
//! (dynamic registration), with its own server's redirect URI.

use crate::helpers::{TestApp, api_error};
use promio_app::api::{ApiError, Field, LinkKind, LinkState, Problem, Role, UserPage};
use promio_server::domain::audit::AuditAction;
use promio_server::domain::audit::OUTSIDE_TEXT_MAX;
use promio_server::domain::{CompanyId, Invalid};
use promio_server::idm::provisioning::{self, Actor, UserInput};
use promio_server::idm::sso::{STARTS_PER_IP, SsoInput, configure};
use promio_server::infra::error::ServiceError;
use promio_server::store::sso::{SsoBinding, SsoSettingsRow};
use reqwest::redirect::Policy;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

struct Idp {
    issuer: String,
    // Holds the provider's stdin open: it exits when this test process ends.
    _process: Mutex<Child>,
}

fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| {
        let end2end = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end");
        assert!(
            end2end.join("node_modules/oidc-provider").is_dir(),
            "the OpenID provider for these tests is an npm package: run `npm ci` in end2end/ (make test does)"
        );
        let mut child = Command::new("node")
            .arg(end2end.join("support/oidc-idp.mjs"))
            .env("IDP_WATCH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node with the OpenID provider");
        let stdout = child.stdout.take().expect("provider stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the provider's first line");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("{\"issuer\": …}");
        Idp {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            _process: Mutex::new(child),
        }
    })
}

/// A client registered at the provider for one test server.
struct Registration {
    client_id: String,
    client_secret: String,
}

async fn register(app: &TestApp) -> Registration {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/reg", idp().issuer))
        .json(&serde_json::json!({
            "redirect_uris": [app.url("/sso/callback")],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .expect("register at the provider")
        .json()
        .await
        .expect("registration answer");
    Registration {
        client_id: answer["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: answer["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    }
}

async fn connect(app: &TestApp, company_id: &str, domain: &str, jit: bool) -> Registration {
    app.create_client(company_id).await;
    let registration = register(app).await;
    configure(
        &app.core,
        Actor::default(),
        company_id,
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: registration.client_id.clone(),
            client_secret: registration.client_secret.clone(),
            domains: domain.to_owned(),
            email_claim: String::new(),
            jit,
        },
    )
    .await
    .expect("configure SSO");
    registration
}

/// An SSO client ACME (acme.example) with the active user jane (jane@acme.example).
async fn sso_app() -> (TestApp, Registration) {
    let app = TestApp::spawn_at_real_time().await;
    let registration = connect(&app, "ACME", "acme.example", false).await;
    app.create_user_with("ACME", "jane", Role::User, None).await;
    (app, registration)
}

/// A browser: one cookie jar, seen through a client that follows redirects up to (not into) our
/// callback, and one that follows none (to read our answers as they are).
struct Browser {
    jar: Arc<reqwest::cookie::Jar>,
    following: reqwest::Client,
    plain: reqwest::Client,
}

impl Browser {
    fn new() -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let following = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(Policy::custom(|attempt| {
                if attempt.url().path() == "/sso/callback" || attempt.previous().len() > 10 {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .expect("client");
        let plain = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(Policy::none())
            .build()
            .expect("client");
        Browser {
            jar,
            following,
            plain,
        }
    }

    /// "Login with SSO" with the email: the provider's authorization URL.
    async fn start(&self, app: &TestApp, email: &str) -> reqwest::Response {
        self.plain
            .post(app.url("/api/sso/start"))
            .form(&[("email", email)])
            .send()
            .await
            .expect("start")
    }

    async fn start_ok(&self, app: &TestApp, email: &str) -> String {
        let response = self.start(app, email).await;
        assert_eq!(response.status(), 200, "SSO start for {email}");
        response.json().await.expect("authorization URL")
    }

    /// Opens the authorization URL; logs in at the provider's form as `login` when it shows one.
    /// Returns the callback URL the provider sends the browser to, and whether a form was shown.
    async fn at_provider(&self, auth_url: &str, login: &str) -> (String, bool) {
        let response = self
            .following
            .get(auth_url)
            .send()
            .await
            .expect("authorize");
        if let Some(callback) = callback_location(&response) {
            return (callback, false);
        }
        let page = response.text().await.expect("login page");
        assert!(
            page.contains("name=\"login\""),
            "the provider's login form: {page}"
        );
        let action = form_action(&page);
        let response = self
            .following
            .post(action)
            .form(&[("prompt", "login"), ("login", login), ("password", "any")])
            .send()
            .await
            .expect("log in at the provider");
        let callback = callback_location(&response).expect("sent back to /sso/callback");
        (callback, true)
    }

    /// Opens the callback URL; answers where our server sends the browser.
    async fn back(&self, callback: &str) -> String {
        let response = self.plain.get(callback).send().await.expect("callback");
        assert_eq!(response.status(), 303, "the callback redirects");
        response.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned()
    }

    async fn logged_in_as(&self, app: &TestApp) -> Option<String> {
        let me: Option<promio_app::api::Me> = self
            .plain
            .post(app.url("/api/me"))
            .send()
            .await
            .expect("me")
            .json()
            .await
            .expect("me answer");
        me.map(|m| m.username)
    }

    fn cookie(&self, app: &TestApp, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&app.address.parse().ok()?)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    }
}

fn callback_location(response: &reqwest::Response) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get("location")?.to_str().ok()?;
    location
        .contains("/sso/callback")
        .then(|| location.to_owned())
}

/// The provider's form target, as an absolute URL.
fn form_action(page: &str) -> String {
    let start = page.find("action=\"").expect("a form") + "action=\"".len();
    let end = page[start..].find('"').expect("end of action") + start;
    let action = &page[start..end];
    if action.starts_with("http") {
        action.to_owned()
    } else {
        format!("{}{action}", idp().issuer)
    }
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("URL");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

async fn tamper(registration: &Registration, change: serde_json::Value) {
    let mut change = change;
    change["client_id"] = registration.client_id.clone().into();
    let status = reqwest::Client::new()
        .post(format!("{}/__test/tamper", idp().issuer))
        .json(&change)
        .send()
        .await
        .expect("tamper")
        .status();
    assert_eq!(status, 204);
}

/// The newest `login.sso` audit event: (outcome, detail).
async fn last_sso_event(app: &TestApp) -> (String, String) {
    let event = app
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == AuditAction::LoginSso)
        .expect("a login.sso event");
    (event.outcome, event.detail)
}

/// Runs a full round trip whose ID token the provider was told to spoil, and checks the refusal.
async fn refused_with(app: &TestApp, browser: &Browser, reason: &str) {
    let auth = browser.start_ok(app, "jane@acme.example").await;
    let (callback, _) = browser.at_provider(&auth, "jane@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/sso?error=failed");
    assert_eq!(browser.logged_in_as(app).await, None);
    assert_eq!(app.active_sessions().await, 0);
    let (outcome, detail) = last_sso_event(app).await;
    assert_eq!(outcome, "failure");
    assert!(detail.contains(reason), "{detail:?} should name {reason:?}");
}

#[tokio::test]
async fn login_with_sso_logs_in_and_a_second_time_without_the_providers_form() {
    let (app, _) = sso_app().await;
    // Typed by whoever made the account: not shown to be hers until her provider answers for it.
    assert!(!app.user_row("ACME", "jane").await.email_verified());
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "Jane@ACME.example").await;
    // Authorization code flow with PKCE S256, fresh state and nonce, the email as login hint.
    assert!(
        auth.starts_with(&format!("{}/auth?", idp().issuer)),
        "{auth}"
    );
    assert_eq!(query_param(&auth, "response_type"), "code");
    assert_eq!(query_param(&auth, "code_challenge_method"), "S256");
    assert_eq!(query_param(&auth, "login_hint"), "Jane@acme.example");
    assert_eq!(query_param(&auth, "redirect_uri"), app.url("/sso/callback"));
    assert!(query_param(&auth, "scope").contains("email"));
    assert!(query_param(&auth, "state").len() >= 20);
    assert!(query_param(&auth, "nonce").len() >= 20);
    assert!(
        browser.cookie(&app, "sso-flow").is_some(),
        "the flow cookie"
    );

    let (callback, form_shown) = browser.at_provider(&auth, "jane@acme.example").await;
    assert!(form_shown, "no session at the provider yet: it asks");
    assert_eq!(browser.back(&callback).await, "/home");
    assert_eq!(browser.logged_in_as(&app).await.as_deref(), Some("jane"));
    assert!(
        browser.cookie(&app, "sso-flow").is_none(),
        "the flow cookie is spent"
    );
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!((outcome.as_str(), detail.as_str()), ("success", "sso"));
    assert!(app.user_row("ACME", "jane").await.email_verified());

    // Log out here; the provider still knows the browser, so it does not ask again.
    let logout = browser
        .plain
        .post(app.url("/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 303);
    assert_eq!(browser.logged_in_as(&app).await, None);
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    let (callback, form_shown) = browser.at_provider(&auth, "jane@acme.example").await;
    assert!(!form_shown, "the provider's session answers at once");
    assert_eq!(browser.back(&callback).await, "/home");
    assert_eq!(browser.logged_in_as(&app).await.as_deref(), Some("jane"));
}

#[tokio::test]
async fn an_unknown_domain_or_a_bad_address_is_refused_before_any_redirect() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    let response = browser.start(&app, "jane@elsewhere.example").await;
    assert_eq!(response.status(), 404);
    assert_eq!(api_error(response).await, ApiError::SsoNotSetUp);
    assert!(browser.cookie(&app, "sso-flow").is_none());
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("elsewhere.example"), "{detail}");

    let response = browser.start(&app, "not an address").await;
    assert_eq!(response.status(), 400);
    assert!(matches!(
        api_error(response).await,
        ApiError::Invalid {
            field: Field::Email,
            ..
        }
    ));
}

#[tokio::test]
async fn the_state_is_single_use() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    let flow_cookie = browser.cookie(&app, "sso-flow").expect("flow cookie");
    let (callback, _) = browser.at_provider(&auth, "jane@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/home");

    app.clock.advance(1); // (audit events are ordered by time)
    // The same callback again, even with the flow's cookie presented again: refused.
    let replay = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(&callback)
        .header("cookie", format!("sso-flow={flow_cookie}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), 303);
    assert_eq!(replay.headers()["location"], "/sso?error=expired");
    assert!(
        !replay
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("session=")),
        "no session for a replay"
    );
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "failure");
    assert!(detail.contains("already finished"), "{detail}");
}

#[tokio::test]
async fn a_wrong_nonce_is_refused() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    // The provider is asked with another nonce than the flow holds (as if the request was forged).
    let forged = with_param(&auth, "nonce", "a-nonce-the-flow-never-issued-0123456789");
    let (callback, _) = browser.at_provider(&forged, "jane@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/sso?error=failed");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "failure");
    assert!(detail.to_lowercase().contains("nonce"), "{detail}");
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (app, registration) = sso_app().await;
    tamper(
        &registration,
        serde_json::json!({"aud": "some-other-client"}),
    )
    .await;
    refused_with(&app, &Browser::new(), "audience").await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let (app, registration) = sso_app().await;
    let past = app.core.clock.now() - 120;
    tamper(&registration, serde_json::json!({"exp": past})).await;
    refused_with(&app, &Browser::new(), "expired").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let (app, registration) = sso_app().await;
    tamper(&registration, serde_json::json!({"unsigned": true})).await;
    refused_with(&app, &Browser::new(), "signature").await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused() {
    let (app, registration) = sso_app().await;
    tamper(
        &registration,
        serde_json::json!({"iss": "https://evil.example"}),
    )
    .await;
    refused_with(&app, &Browser::new(), "issuer").await;
}

#[tokio::test]
async fn a_flow_started_for_one_client_cannot_be_finished_by_another_clients_provider() {
    let (app, _) = sso_app().await;
    connect(&app, "OTHER", "other.example", false).await;
    app.create_user_with("OTHER", "olaf", Role::User, None)
        .await;

    // Browser A starts for ACME; browser B goes all the way to OTHER's callback.
    let a = Browser::new();
    let auth_a = a.start_ok(&app, "jane@acme.example").await;
    let b = Browser::new();
    let auth_b = b.start_ok(&app, "olaf@other.example").await;
    let (callback_b, _) = b.at_provider(&auth_b, "olaf@other.example").await;
    let code_b = query_param(&callback_b, "code");

    // B's code with A's state, in A's browser: the code was issued to OTHER's registration, so
    // ACME's credentials cannot redeem it.
    let state_a = query_param(&auth_a, "state");
    let forged = format!("{}?code={code_b}&state={state_a}", app.url("/sso/callback"));
    assert_eq!(a.back(&forged).await, "/sso?error=failed");
    assert_eq!(a.logged_in_as(&app).await, None);
    let (_, detail) = last_sso_event(&app).await;
    assert!(detail.contains("token request failed"), "{detail}");

    // B's whole callback in A's browser: A's flow does not have B's state.
    app.clock.advance(1);
    let a = Browser::new();
    a.start_ok(&app, "jane@acme.example").await;
    assert_eq!(a.back(&callback_b).await, "/sso?error=failed");
    assert_eq!(a.logged_in_as(&app).await, None);
    let (_, detail) = last_sso_event(&app).await;
    assert!(detail.contains("state"), "{detail}");
    assert_eq!(app.active_sessions().await, 0);
}

/// An address in ACME's SSO domain that belongs to a user of another client: ACME's provider
/// vouching for it logs nobody in, in either client. Accounts are matched within the client whose
/// provider answered, never across clients.
#[tokio::test]
async fn an_address_is_matched_only_within_the_client_whose_provider_answered() {
    let (app, _) = sso_app().await;
    app.create_client("OTHER").await;
    provisioning::create_user(
        &app.core,
        Actor::default(),
        UserInput {
            company_id: "OTHER".into(),
            username: "max".into(),
            email: "max@acme.example".into(),
            first_name: "Max".into(),
            last_name: "Other".into(),
            role: promio_server::domain::Role::User,
            language: "en".into(),
            password: Some(secrecy::SecretString::from(
                crate::helpers::PASSWORD.to_owned(),
            )),
        },
    )
    .await
    .expect("a user of another client with an address in ACME's domain");
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "max@acme.example").await;
    let (callback, _) = browser.at_provider(&auth, "max@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/sso?error=not_registered");
    assert_eq!(browser.logged_in_as(&app).await, None);
    assert_eq!(app.count_rows("sessions").await, 0);
}

#[tokio::test]
async fn someone_without_an_account_gets_no_session() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "nobody@acme.example").await;
    let (callback, _) = browser.at_provider(&auth, "nobody@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/sso?error=not_registered");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "failure");
    assert!(detail.contains("no user"), "{detail}");
}

#[tokio::test]
async fn a_deactivated_user_gets_no_session() {
    let (app, _) = sso_app().await;
    let id = app.user_id("ACME", "jane").await;
    app.core
        .store
        .set_user_status(
            &id,
            promio_server::store::users::UserStatus::Deactivated,
            app.core.clock.now(),
        )
        .await
        .unwrap();
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    let (callback, _) = browser.at_provider(&auth, "jane@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/sso?error=not_registered");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (_, detail) = last_sso_event(&app).await;
    assert!(detail.contains("not active"), "{detail}");
}

#[tokio::test]
async fn cancelling_at_the_provider_is_reported_as_such() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    let page = browser
        .following
        .get(&auth)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The provider's "[ Cancel ]" link.
    let abort = format!("{}/abort", form_action(&page));
    let response = browser.following.get(abort).send().await.unwrap();
    let callback = callback_location(&response).expect("back to the callback");
    assert_eq!(browser.back(&callback).await, "/sso?error=cancelled");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (_, detail) = last_sso_event(&app).await;
    assert!(detail.contains("access_denied"), "{detail}");
}

#[tokio::test]
async fn users_of_an_sso_client_cannot_log_in_with_a_password_nor_reset_it() {
    let (app, _) = sso_app().await;
    for _ in 0..3 {
        let response = app.login("ACME", "jane", crate::helpers::PASSWORD).await;
        assert_eq!(response.status(), 403);
        assert_eq!(api_error(response).await, ApiError::UseSso);
    }
    let counters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM throttle WHERE key LIKE 'pw:%'")
        .fetch_one(app.core.store.pool())
        .await
        .unwrap();
    assert_eq!(counters, 0, "refused before anything is counted");
    let response = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "jane")],
        )
        .await;
    assert_eq!(response.status(), 200, "the same answer as for everyone");
    app.deliver().await;
    assert_eq!(app.mails_to("jane@acme.example"), 0, "no reset mail");
}

#[tokio::test]
async fn with_just_in_time_creation_a_new_colleague_gets_an_account() {
    let app = TestApp::spawn_at_real_time().await;
    connect(&app, "ACME", "acme.example", true).await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "new.colleague@acme.example").await;
    let (callback, _) = browser
        .at_provider(&auth, "new.colleague@acme.example")
        .await;
    assert_eq!(browser.back(&callback).await, "/home");
    assert_eq!(
        browser.logged_in_as(&app).await.as_deref(),
        Some("new.colleague@acme.example")
    );
    let users = app
        .core
        .store
        .users_by_email(
            &app.core
                .store
                .client_by_company_id(&promio_server::domain::CompanyId::parse("ACME").unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
            "new.colleague@acme.example",
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role(), promio_server::domain::Role::User);
    assert_eq!(users[0].first_name, "New.colleague");
    assert!(users[0].password_hash.is_none());

    // The next login finds the same account.
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "new.colleague@acme.example").await;
    let (callback, _) = browser
        .at_provider(&auth, "new.colleague@acme.example")
        .await;
    assert_eq!(browser.back(&callback).await, "/home");
    let count = app
        .audit()
        .await
        .iter()
        .filter(|e| e.action == AuditAction::UserCreated)
        .count();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn the_email_can_come_from_another_claim() {
    let (app, registration) = sso_app().await;
    configure(
        &app.core,
        Actor::default(),
        "ACME",
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: registration.client_id.clone(),
            client_secret: String::new(),
            domains: "acme.example".into(),
            email_claim: "upn".into(),
            jit: false,
        },
    )
    .await
    .expect("the stored secret is kept");
    // The provider's upn for jane@acme.example is upn.jane@acme.example: that user is meant.
    app.create_user_with("ACME", "upn.jane", Role::User, None)
        .await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    let (callback, _) = browser.at_provider(&auth, "jane@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/home");
    assert_eq!(
        browser.logged_in_as(&app).await.as_deref(),
        Some("upn.jane")
    );
}

#[tokio::test]
async fn settings_are_checked_against_the_providers_discovery_document() {
    let app = TestApp::spawn_at_real_time().await;
    app.create_client("ACME").await;
    app.create_client("OTHER").await;
    let registration = register(&app).await;
    let input = |issuer: &str, domains: &str| SsoInput {
        issuer: issuer.to_owned(),
        client_id: registration.client_id.clone(),
        client_secret: registration.client_secret.clone(),
        domains: domains.to_owned(),
        email_claim: String::new(),
        jit: false,
    };
    // An issuer whose discovery document names another issuer (or none at all).
    let wrong = format!("{}/tenant", idp().issuer);
    let err = configure(
        &app.core,
        Actor::default(),
        "ACME",
        input(&wrong, "acme.example"),
    )
    .await
    .unwrap_err();
    let promio_server::infra::error::ServiceError::SsoProvider(detail) = err else {
        panic!("expected a provider error, got {err:?}");
    };
    assert!(!detail.is_empty());
    // Nobody listens there.
    let closed = "http://127.0.0.1:9";
    assert!(matches!(
        configure(
            &app.core,
            Actor::default(),
            "ACME",
            input(closed, "acme.example")
        )
        .await,
        Err(promio_server::infra::error::ServiceError::SsoProvider(_))
    ));
    let acme = |app: &TestApp| {
        let store = app.core.store.clone();
        async move {
            store
                .client_by_company_id(&promio_server::domain::CompanyId::parse("ACME").unwrap())
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert!(!acme(&app).await.uses_sso(), "nothing stored");

    configure(
        &app.core,
        Actor::default(),
        "ACME",
        input(&idp().issuer, "acme.example"),
    )
    .await
    .expect("a good issuer");
    let stored = acme(&app).await;
    assert!(stored.uses_sso());
    let sealed = stored.sso_client_secret.expect("a stored secret");
    assert!(
        !sealed.contains(&registration.client_secret),
        "the secret is encrypted at rest"
    );
    // A domain belongs to one client only.
    let err = configure(
        &app.core,
        Actor::default(),
        "OTHER",
        input(&idp().issuer, "acme.example"),
    )
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        promio_server::infra::error::ServiceError::Invalid(promio_server::domain::Invalid {
            field: Field::SsoDomains,
            problem: Problem::Taken
        })
    ));
    // Turned off again; the audit log has each change.
    configure(&app.core, Actor::default(), "ACME", SsoInput::default())
        .await
        .expect("off");
    assert!(!acme(&app).await.uses_sso());
    let changes: Vec<String> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::ClientSsoChanged)
        .map(|e| e.detail)
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes.iter().any(|d| d == "single sign-on off"));
    assert!(
        changes
            .iter()
            .all(|d| !d.contains(&registration.client_secret))
    );
}

#[tokio::test]
async fn operators_set_sso_in_the_console_and_test_the_connection() {
    let app = TestApp::spawn_at_real_time().await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.login_ok("promio", "ops").await;
    let registration = register(&app).await;

    // Test connection: a good issuer, then one where nobody answers.
    let response = app
        .call("clients/test-sso", &[("issuer", idp().issuer.as_str())])
        .await;
    assert_eq!(response.status(), 200);
    let check: promio_app::api::SsoCheck = response.json().await.unwrap();
    assert_eq!(check.issuer, idp().issuer);
    assert!(check.signing_keys >= 1);
    assert_eq!(check.redirect_uri, app.url("/sso/callback"));
    let response = app
        .call("clients/test-sso", &[("issuer", "http://127.0.0.1:9")])
        .await;
    assert_eq!(response.status(), 400);
    assert!(matches!(
        api_error(response).await,
        ApiError::SsoProvider { .. }
    ));

    // A new client with SSO in one go; a bad issuer changes nothing.
    let fields = |issuer: &str| {
        vec![
            ("company_id".to_owned(), "ACME".to_owned()),
            ("name".to_owned(), "ACME GmbH".to_owned()),
            ("registration_link_hours".to_owned(), "24".to_owned()),
            ("reset_link_hours".to_owned(), "24".to_owned()),
            ("sso_issuer".to_owned(), issuer.to_owned()),
            ("sso_client_id".to_owned(), registration.client_id.clone()),
            (
                "sso_client_secret".to_owned(),
                registration.client_secret.clone(),
            ),
            (
                "sso_domains".to_owned(),
                "acme.example, acme.test".to_owned(),
            ),
            ("sso_email_claim".to_owned(), String::new()),
        ]
    };
    let post = |endpoint: &'static str, fields: Vec<(String, String)>| {
        let client = app.client.clone();
        let url = app.url(&format!("/api/{endpoint}"));
        async move { client.post(url).form(&fields).send().await.unwrap() }
    };
    let response = post("clients/create", fields("ftp://idp.example")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        api_error(response).await,
        ApiError::Invalid {
            field: Field::SsoIssuer,
            problem: Problem::Malformed
        }
    );
    let response = post("clients/create", fields("http://127.0.0.1:9")).await;
    assert_eq!(response.status(), 400);
    let created = app
        .core
        .store
        .client_by_company_id(&promio_server::domain::CompanyId::parse("ACME").unwrap())
        .await
        .unwrap();
    assert!(created.is_none(), "a refused form creates nothing");

    let response = post("clients/create", fields(&idp().issuer)).await;
    assert_eq!(response.status(), 200);
    let client: promio_app::api::ClientSummary = response.json().await.unwrap();
    assert!(client.sso && client.sso_secret_set);
    assert_eq!(client.sso_domains, vec!["acme.example", "acme.test"]);
    assert_eq!(client.sso_email_claim, "email");

    // Editing other settings with the secret field empty keeps SSO as it is, and adds no event.
    let mut edit = fields(&idp().issuer);
    edit.retain(|(k, _)| k != "sso_client_secret");
    edit.push(("sso_client_secret".into(), String::new()));
    edit.push(("require_2fa".into(), "on".into()));
    let response = post("clients/update", edit).await;
    assert_eq!(response.status(), 200);
    let client: promio_app::api::ClientSummary = response.json().await.unwrap();
    assert!(client.sso && client.require_2fa);
    let sso_events = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::ClientSsoChanged)
        .collect::<Vec<_>>();
    assert_eq!(sso_events.len(), 1, "only the creation changed SSO");
    assert_eq!(
        sso_events[0].actor_user_id.as_deref(),
        Some(app.user_id("promio", "ops").await.as_str())
    );

    // The platform client cannot be put behind SSO (operators log in with passwords).
    let mut platform = fields(&idp().issuer);
    platform[0].1 = "promio".into();
    platform[7].1 = "promio.example".into();
    let response = post("clients/update", platform).await;
    assert_eq!(response.status(), 403);

    // Only operators may test connections: not an administrator of the platform client, nor one
    // of a client of its own.
    app.create_user("promio", "padmin", Role::Admin).await;
    app.create_client("PLAIN").await;
    app.create_user("PLAIN", "boss", Role::Admin).await;
    for (company_id, username) in [("promio", "padmin"), ("PLAIN", "boss")] {
        let browser = app.new_browser();
        let login = app.login_in(&browser, company_id, username).await;
        assert_eq!(login.status(), 200, "{company_id}/{username} logs in");
        assert_eq!(
            app.me_in(&browser).await.map(|me| me.role),
            Some(Role::Admin)
        );
        let response = browser
            .post(app.url("/api/clients/test-sso"))
            .form(&[("issuer", idp().issuer.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{company_id}/{username}");
        assert_eq!(api_error(response).await, ApiError::Forbidden);
    }
}

#[tokio::test]
async fn a_malformed_callback_lands_on_the_sso_page_without_a_session() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    browser.start_ok(&app, "jane@acme.example").await;
    for query in [
        "",
        "?code=a&code=b&state=x&state=y",
        "?state=%FF%FE",
        "?error",
    ] {
        let target = browser
            .back(&format!("{}{query}", app.url("/sso/callback")))
            .await;
        assert!(target.starts_with("/sso?error="), "{query}: {target}");
    }
    assert_eq!(browser.logged_in_as(&app).await, None);
    assert_eq!(app.active_sessions().await, 0);
}

/// Overrides claims of one account at the provider (what its userinfo says from then on).
async fn override_claims(account: &str, claims: serde_json::Value) {
    let status = reqwest::Client::new()
        .post(format!("{}/__test/claims", idp().issuer))
        .json(&serde_json::json!({"account": account, "claims": claims}))
        .send()
        .await
        .expect("override claims")
        .status();
    assert_eq!(status, 204);
}

/// "Login with SSO" with `email`, logging in at the provider as `login`: where our callback then
/// sends the browser.
async fn round_trip(app: &TestApp, browser: &Browser, email: &str, login: &str) -> String {
    let auth = browser.start_ok(app, email).await;
    let (callback, _) = browser.at_provider(&auth, login).await;
    browser.back(&callback).await
}

async fn sso_events(app: &TestApp) -> usize {
    app.audit()
        .await
        .iter()
        .filter(|e| e.action == AuditAction::LoginSso)
        .count()
}

async fn release(app: &TestApp, browser: &reqwest::Client, user_id: &str) -> reqwest::Response {
    browser
        .post(app.url("/api/users/release-sso"))
        .form(&[("id", user_id)])
        .send()
        .await
        .expect("release the SSO binding")
}

#[tokio::test]
async fn an_email_the_provider_marks_unverified_is_refused() {
    // In the ID token.
    let (app, registration) = sso_app().await;
    tamper(&registration, serde_json::json!({"email_verified": false})).await;
    let browser = Browser::new();
    let target = round_trip(&app, &browser, "jane@acme.example", "jane@acme.example").await;
    assert_eq!(target, "/sso?error=failed");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("not verified"), "{detail}");

    // In userinfo (where this provider puts the email when the token is for the code flow).
    app.clock.advance(1);
    app.create_user_with("ACME", "unverified", Role::User, None)
        .await;
    override_claims(
        "unverified@acme.example",
        serde_json::json!({"email_verified": false}),
    )
    .await;
    let browser = Browser::new();
    let target = round_trip(
        &app,
        &browser,
        "unverified@acme.example",
        "unverified@acme.example",
    )
    .await;
    assert_eq!(target, "/sso?error=failed");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("not verified"), "{detail}");
    assert_eq!(app.active_sessions().await, 0);
}

#[tokio::test]
async fn an_address_outside_the_clients_domains_matches_no_account() {
    let (app, _) = sso_app().await;
    provisioning::create_user(
        &app.core,
        Actor::default(),
        UserInput {
            company_id: "ACME".into(),
            username: "outsider".into(),
            email: "outsider@elsewhere.example".into(),
            first_name: "Out".into(),
            last_name: "Sider".into(),
            role: promio_server::domain::Role::User,
            language: "en".into(),
            password: None,
        },
    )
    .await
    .expect("a user whose address is in no SSO domain of the client");
    // Started with an address of the client's domain; the provider vouches for another one.
    let browser = Browser::new();
    let target = round_trip(
        &app,
        &browser,
        "jane@acme.example",
        "outsider@elsewhere.example",
    )
    .await;
    assert_eq!(target, "/sso?error=not_registered");
    assert_eq!(browser.logged_in_as(&app).await, None);
    assert_eq!(app.active_sessions().await, 0);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("outside"), "{detail}");

    // Nor is an account made just in time for such an address.
    let app = TestApp::spawn_at_real_time().await;
    connect(&app, "ACME", "acme.example", true).await;
    let browser = Browser::new();
    let target = round_trip(
        &app,
        &browser,
        "someone@acme.example",
        "stranger@elsewhere.example",
    )
    .await;
    assert_eq!(target, "/sso?error=not_registered");
    let created = app
        .audit()
        .await
        .iter()
        .filter(|e| e.action == AuditAction::UserCreated)
        .count();
    assert_eq!(created, 0);
}

#[tokio::test]
async fn an_account_is_bound_to_its_first_identity_until_an_administrator_releases_it() {
    let (app, registration) = sso_app().await;
    app.create_user_with("ACME", "boss", Role::Admin, None)
        .await;
    app.create_user_with("ACME", "carl", Role::User, None).await;
    let jane = app.user_id("ACME", "jane").await;
    let bound_to = |subject: &str| {
        Some(SsoBinding {
            issuer: idp().issuer.clone(),
            subject: subject.to_owned(),
        })
    };

    // The first login binds the account to the provider's issuer and subject.
    let first = Browser::new();
    let target = round_trip(&app, &first, "jane@acme.example", "jane@acme.example").await;
    assert_eq!(target, "/home");
    assert_eq!(
        app.core.store.sso_binding(&jane).await.unwrap(),
        bound_to("jane@acme.example")
    );
    assert!(app.audit().await.iter().any(|e| {
        e.action == AuditAction::UserSsoBound && e.subject_user_id.as_deref() == Some(jane.as_str())
    }));

    // Another subject with jane's address (the address passed on at the provider): refused.
    app.clock.advance(1);
    tamper(
        &registration,
        serde_json::json!({"sub": "someone-else", "email": "jane@acme.example"}),
    )
    .await;
    let other = Browser::new();
    let target = round_trip(&app, &other, "jane@acme.example", "jane@acme.example").await;
    assert_eq!(target, "/sso?error=not_registered");
    assert_eq!(other.logged_in_as(&app).await, None);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("bound"), "{detail}");
    assert_eq!(
        app.core.store.sso_binding(&jane).await.unwrap(),
        bound_to("jane@acme.example")
    );

    // Nor does an account that is not bound yet take an identity bound to another account.
    app.clock.advance(1);
    tamper(
        &registration,
        serde_json::json!({"sub": "jane@acme.example", "email": "carl@acme.example"}),
    )
    .await;
    let browser = Browser::new();
    let target = round_trip(&app, &browser, "carl@acme.example", "carl@acme.example").await;
    assert_eq!(target, "/sso?error=not_registered");
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "refused");
    assert!(detail.contains("another account"), "{detail}");
    let carl = app.user_id("ACME", "carl").await;
    assert_eq!(app.core.store.sso_binding(&carl).await.unwrap(), None);

    // An administrator of the client releases the binding in the console.
    app.clock.advance(1);
    let admin = Browser::new();
    let target = round_trip(&app, &admin, "boss@acme.example", "boss@acme.example").await;
    assert_eq!(target, "/home");
    let page: UserPage = admin
        .plain
        .post(app.url("/api/users/list"))
        .form(&[("search", ""), ("status", ""), ("page", "1")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        page.users.iter().all(|u| u.sso),
        "the console offers the release for the users of an SSO client"
    );
    let response = release(&app, &admin.plain, &jane).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.core.store.sso_binding(&jane).await.unwrap(), None);
    let boss = app.user_id("ACME", "boss").await;
    let released = app
        .audit()
        .await
        .into_iter()
        .find(|e| e.action == AuditAction::UserSsoReleased)
        .expect("the release is audited");
    assert_eq!(released.actor_user_id.as_deref(), Some(boss.as_str()));
    assert_eq!(released.subject_user_id.as_deref(), Some(jane.as_str()));
    assert!(
        released.detail.contains("jane@acme.example"),
        "{}",
        released.detail
    );

    // The next login binds the account again, to the identity it comes with.
    app.clock.advance(1);
    tamper(
        &registration,
        serde_json::json!({"sub": "someone-else", "email": "jane@acme.example"}),
    )
    .await;
    let again = Browser::new();
    let target = round_trip(&app, &again, "jane@acme.example", "jane@acme.example").await;
    assert_eq!(target, "/home");
    assert_eq!(again.logged_in_as(&app).await.as_deref(), Some("jane"));
    assert_eq!(
        app.core.store.sso_binding(&jane).await.unwrap(),
        bound_to("someone-else")
    );

    // Not for a user, nor for an administrator of another client; an operator may.
    let response = release(&app, &again.plain, &boss).await;
    assert_eq!(response.status(), 403);
    app.create_client("OTHER").await;
    app.create_user("OTHER", "olga", Role::Admin).await;
    let olga = app.new_browser();
    assert_eq!(app.login_in(&olga, "OTHER", "olga").await.status(), 200);
    let response = release(&app, &olga, &jane).await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.core.store.sso_binding(&jane).await.unwrap(),
        bound_to("someone-else")
    );
    app.create_user("promio", "ops", Role::Operator).await;
    let ops = app.new_browser();
    assert_eq!(app.login_in(&ops, "promio", "ops").await.status(), 200);
    let response = release(&app, &ops, &jane).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.core.store.sso_binding(&jane).await.unwrap(), None);
}

#[tokio::test]
async fn an_error_from_the_provider_reaches_the_audit_log_cleaned_and_cut() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    let auth = browser.start_ok(&app, "jane@acme.example").await;
    // Digits, which the event's own words do not have.
    let error = format!("{}\r\n{}", "1".repeat(5_000), "2".repeat(4_998));
    assert_eq!(error.chars().count(), 10_000);
    let description = format!("{}\n\u{1b}[0m{}", "3".repeat(5_000), "4".repeat(5_000));
    let callback = url::Url::parse_with_params(
        &app.url("/sso/callback"),
        &[
            ("state", query_param(&auth, "state")),
            ("error", error),
            ("error_description", description),
        ],
    )
    .expect("callback URL");
    assert_eq!(browser.back(callback.as_str()).await, "/sso?error=failed");
    assert_eq!(browser.logged_in_as(&app).await, None);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "failure");
    assert!(!detail.chars().any(char::is_control), "{detail:?}");
    let count = |digit: char| detail.chars().filter(|c| *c == digit).count();
    assert!(count('1') <= OUTSIDE_TEXT_MAX, "the error is cut: {detail}");
    assert_eq!(count('2'), 0, "{detail}");
    assert!(count('3') <= OUTSIDE_TEXT_MAX, "the description is cut");
    assert_eq!(count('4'), 0, "{detail}");
    assert!(detail.chars().count() <= 2 * (OUTSIDE_TEXT_MAX + 1) + 64);
}

#[tokio::test]
async fn sso_starts_from_one_address_are_capped_and_the_excess_is_not_audited() {
    let app = TestApp::spawn().await;
    let browser = Browser::new();
    for _ in 0..STARTS_PER_IP {
        let response = browser.start(&app, "someone@nowhere.example").await;
        assert_eq!(response.status(), 404);
    }
    let limit = STARTS_PER_IP as usize;
    assert_eq!(
        sso_events(&app).await,
        limit,
        "each refused start is audited"
    );
    let response = browser.start(&app, "someone@nowhere.example").await;
    assert_eq!(response.status(), 429);
    assert!(matches!(
        api_error(response).await,
        ApiError::TooManyAttempts { .. }
    ));
    assert_eq!(sso_events(&app).await, limit, "the excess writes no row");
    // A new window, a new allowance.
    app.clock.advance(601);
    let response = browser.start(&app, "someone@nowhere.example").await;
    assert_eq!(response.status(), 404);
}

/// `GET /sso/callback` as anyone can send it: without a flow cookie (even `i`), or with one for no
/// flow of ours (odd `i`).
async fn callback_without_a_flow(app: &TestApp, anyone: &reqwest::Client, i: usize) {
    let mut request = anyone.get(app.url(&format!("/sso/callback?code=c{i}&state=s{i}")));
    if i % 2 == 1 {
        request = request.header("cookie", format!("sso-flow={i:0>43}"));
    }
    let response = request.send().await.expect("callback");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/sso?error=expired");
}

#[tokio::test]
async fn callbacks_without_a_flow_write_one_audit_row_per_address_and_hour_and_grow_no_table() {
    let app = TestApp::spawn().await;
    let anyone = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let before = app.count_every_table().await;
    for i in 0..1000 {
        callback_without_a_flow(&app, &anyone, i).await;
    }
    // One audit row, and the address's counter row; nothing else.
    let mut expected = before;
    *expected.get_mut("audit_events").unwrap() += 1;
    *expected.get_mut("throttle").unwrap() += 1;
    assert_eq!(app.count_every_table().await, expected);
    let (outcome, detail) = last_sso_event(&app).await;
    assert_eq!(outcome, "failure");
    assert!(detail.contains("without the flow cookie"), "{detail}");
    assert!(detail.contains("only counted"), "{detail}");

    // The next row comes when the hour is over, not a second before.
    app.clock.advance(3599);
    callback_without_a_flow(&app, &anyone, 1).await;
    assert_eq!(sso_events(&app).await, 1);
    app.clock.advance(1);
    callback_without_a_flow(&app, &anyone, 1).await;
    assert_eq!(sso_events(&app).await, 2);
    let (_, detail) = last_sso_event(&app).await;
    assert!(detail.contains("unknown or already finished"), "{detail}");

    // The counter row goes with housekeeping a day after the last refusal.
    let counter = "throttle WHERE key LIKE 'refused:sso-callback:%'";
    assert_eq!(app.count_rows(counter).await, 1);
    app.clock.advance(86_400);
    app.housekeeping().await;
    assert_eq!(app.count_rows(counter).await, 1, "not before a whole day");
    app.clock.advance(1);
    app.housekeeping().await;
    assert_eq!(app.count_rows(counter).await, 0);
}

#[tokio::test]
async fn a_failed_discovery_is_remembered_for_a_minute() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const DOWN: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
        content-length: 0\r\nconnection: close\r\n\r\n";
    // A provider that is down: it answers every connection with 503, and counts them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let _ = stream.write_all(DOWN).await;
        }
    });
    let app = TestApp::spawn().await;
    app.create_client("DEAD").await;
    app.core
        .store
        .set_client_sso(
            &CompanyId::parse("DEAD").unwrap(),
            Some(&SsoSettingsRow {
                issuer,
                client_id: "x".into(),
                sealed_secret: "x".into(),
                email_claim: "email".into(),
                jit: false,
            }),
            &["dead.example".to_owned()],
            app.core.clock.now(),
        )
        .await
        .expect("settings stored as they were when the provider still answered");
    let browser = Browser::new();
    let response = browser.start(&app, "jane@dead.example").await;
    assert_eq!(response.status(), 503);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    let response = browser.start(&app, "jane@dead.example").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "not asked again within the minute"
    );
    app.clock.advance(61);
    let response = browser.start(&app, "jane@dead.example").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "asked again after it"
    );
}

#[tokio::test]
async fn plain_http_issuers_need_sso_allow_http_issuer() {
    let app = TestApp::spawn_with(&[("SSO_ALLOW_HTTP_ISSUER", "false")]).await;
    app.create_client("ACME").await;
    let err = configure(
        &app.core,
        Actor::default(),
        "ACME",
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: "x".into(),
            client_secret: "y".into(),
            domains: "acme.example".into(),
            email_claim: String::new(),
            jit: false,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Invalid(Invalid {
                field: Field::SsoIssuer,
                problem: Problem::Malformed
            })
        ),
        "{err:?}"
    );
    // Settings stored while it was allowed are not used either.
    app.core
        .store
        .set_client_sso(
            &CompanyId::parse("ACME").unwrap(),
            Some(&SsoSettingsRow {
                issuer: idp().issuer.clone(),
                client_id: "x".into(),
                sealed_secret: "x".into(),
                email_claim: "email".into(),
                jit: false,
            }),
            &["acme.example".to_owned()],
            app.core.clock.now(),
        )
        .await
        .expect("stored");
    let browser = Browser::new();
    let response = browser.start(&app, "jane@acme.example").await;
    assert_eq!(response.status(), 503);
    assert!(browser.cookie(&app, "sso-flow").is_none());
}

#[tokio::test]
async fn switching_a_client_to_sso_voids_the_links_mailed_before() {
    let app = TestApp::spawn_at_real_time().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "jane", Role::User).await;
    app.create_user_with("ACME", "newbie", Role::User, None)
        .await;
    let registration_token = TestApp::token_of(&app.mail_to("newbie@acme.example").await);
    let response = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "jane")],
        )
        .await;
    assert_eq!(response.status(), 200);
    let reset_token = TestApp::token_of(&app.mail_to("jane@acme.example").await);

    let registration = register(&app).await;
    configure(
        &app.core,
        Actor::default(),
        "ACME",
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: registration.client_id.clone(),
            client_secret: registration.client_secret.clone(),
            domains: "acme.example".into(),
            email_claim: String::new(),
            jit: false,
        },
    )
    .await
    .expect("SSO on");
    for (token, kind) in [
        (&reset_token, LinkKind::PasswordReset),
        (&registration_token, LinkKind::Registration),
    ] {
        let response = app.call("link", &[("token", token.as_str())]).await;
        assert_eq!(response.status(), 200);
        let state: LinkState = response.json().await.unwrap();
        assert_eq!(state, LinkState::Superseded { kind });
    }

    // Turned off again, the links stay void.
    configure(&app.core, Actor::default(), "ACME", SsoInput::default())
        .await
        .expect("SSO off");
    let password = "another long and unusual passphrase";
    for token in [&reset_token, &registration_token] {
        let response = app
            .call(
                "set-password",
                &[
                    ("token", token.as_str()),
                    ("new_password", password),
                    ("repeat_password", password),
                ],
            )
            .await;
        assert_eq!(response.status(), 410);
    }
    app.login_ok("ACME", "jane").await;
}

#[tokio::test]
async fn the_email_step_works_as_a_plain_form_without_script() {
    let (app, _) = sso_app().await;
    let browser = Browser::new();
    // The page's form posts to /sso itself. The answer sends the browser on to the provider with
    // a page of its own (the form may not redirect to another site: CSP form-action 'self').
    let response = browser
        .plain
        .post(app.url("/sso"))
        .form(&[("email", "jane@acme.example")])
        .send()
        .await
        .expect("post the form");
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    let start = page.find("url=").expect("a refresh to the provider") + "url=".len();
    let auth = page[start..page[start..].find('"').unwrap() + start].replace("&amp;", "&");
    assert!(
        page.contains(&format!("<a href=\"{}", &auth[..20])),
        "and a link: {page}"
    );
    assert!(
        auth.starts_with(&format!("{}/auth?", idp().issuer)),
        "{auth}"
    );
    let (callback, _) = browser.at_provider(&auth, "jane@acme.example").await;
    assert_eq!(browser.back(&callback).await, "/home");
    assert_eq!(browser.logged_in_as(&app).await.as_deref(), Some("jane"));

    // An address no client logs in for comes back to the form, with the reason and the address.
    let response = browser
        .plain
        .post(app.url("/sso"))
        .form(&[("email", "max@elsewhere.example")])
        .send()
        .await
        .expect("post the form");
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/sso");
    let html = browser
        .plain
        .get(app.url("/sso"))
        .header("accept-language", "en")
        .send()
        .await
        .expect("the SSO page")
        .text()
        .await
        .expect("html");
    let message = promio_app::api::ApiError::SsoNotSetUp.message(promio_app::i18n::Lang::En);
    assert!(html.contains(&message), "the reason is shown");
    assert!(
        html.contains("value=\"max@elsewhere.example\""),
        "the address is kept"
    );
}

#[tokio::test]
async fn switching_a_client_to_sso_ends_its_sessions_and_pending_logins() {
    use crate::helpers::PASSWORD;
    use promio_app::api::LoginOutcome;
    let (app, secret, _) = TestApp::with_2fa("ACME", "jane").await;
    app.create_user("ACME", "max", Role::User).await;
    let other = app.new_browser();
    assert_eq!(app.login_in(&other, "ACME", "max").await.status(), 200);
    assert!(app.me_in(&other).await.is_some());
    // jane's password was right; her code is due.
    let outcome: LoginOutcome = app
        .login("ACME", "jane", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);

    let registration = register(&app).await;
    configure(
        &app.core,
        Actor::default(),
        "ACME",
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: registration.client_id.clone(),
            client_secret: registration.client_secret.clone(),
            domains: "acme.example".into(),
            email_claim: String::new(),
            jit: false,
        },
    )
    .await
    .expect("SSO on");

    assert!(app.me_in(&other).await.is_none(), "max's session ended");
    assert_eq!(app.active_sessions().await, 0);
    assert_eq!(app.count_rows("login_challenges").await, 0);
    // The code is right, and still the login does not finish.
    let code = app.totp_code(&secret, 0);
    let response = app.call("2fa/login", &[("code", &code)]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(api_error(response).await, ApiError::LoginExpired);
    assert!(app.me().await.is_none());
    assert_eq!(app.active_sessions().await, 0);
    // Nor do the password's other ways in: the password itself, a reset mail.
    let response = app.login("ACME", "jane", PASSWORD).await;
    assert_eq!(api_error(response).await, ApiError::UseSso);
    app.deliver().await;
    let mails = app.mails_to("jane@acme.example");
    let response = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "jane")],
        )
        .await;
    assert_eq!(response.status(), 200);
    app.deliver().await;
    assert_eq!(app.mails_to("jane@acme.example"), mails, "no reset mail");
    assert!(app.audit().await.iter().any(|r| {
        r.action == AuditAction::ClientSsoChanged
            && r.detail.contains("sessions and pending logins ended")
    }));

    // Changing the settings of a client that uses SSO already ends nothing (a session as an SSO
    // login makes it).
    assert_eq!(app.login_in(&other, "ACME", "max").await.status(), 403);
    let max = app.user_id("ACME", "max").await;
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at)
         VALUES ('sso-session', $1, $2, $2)",
    )
    .bind(&max)
    .bind(app.core.clock.now())
    .execute(app.core.store.pool())
    .await
    .unwrap();
    configure(
        &app.core,
        Actor::default(),
        "ACME",
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: registration.client_id.clone(),
            client_secret: String::new(),
            domains: "acme.example, acme-group.example".into(),
            email_claim: String::new(),
            jit: false,
        },
    )
    .await
    .expect("SSO settings changed");
    assert_eq!(app.active_sessions().await, 1);
}

/// A provider on loopback whose discovery document names its own endpoints, but for `overrides`
/// (a field and the URL it names instead). Returns its issuer and how often its key set was
/// fetched.
async fn provider_naming(
    overrides: &[(&str, &str)],
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let mut document = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/me"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    for (field, url) in overrides {
        document[*field] = serde_json::Value::from(*url);
    }
    let document = document.to_string();
    let key_sets = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&key_sets);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..n]).into_owned();
            let body = if head.starts_with("GET /.well-known/openid-configuration ") {
                document.clone()
            } else if head.starts_with("GET /jwks ") {
                counted.fetch_add(1, Ordering::SeqCst);
                r#"{"keys":[]}"#.to_owned()
            } else {
                String::new()
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (issuer, key_sets)
}

#[tokio::test]
async fn a_discovery_document_cannot_send_this_server_to_private_addresses() {
    use std::sync::atomic::Ordering;
    let app = TestApp::spawn().await;
    // On loopback, as SSO_ALLOW_HTTP_ISSUER allows it for tests: accepted.
    let (issuer, key_sets) = provider_naming(&[]).await;
    promio_server::idm::sso::check_provider(&app.core, &issuer)
        .await
        .expect("a provider on loopback, allowed in tests");
    assert_eq!(key_sets.load(Ordering::SeqCst), 1);

    for (field, url) in [
        (
            "token_endpoint",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        ),
        ("userinfo_endpoint", "http://169.254.169.254/user-data"),
        ("jwks_uri", "http://10.0.0.1/keys"),
        ("token_endpoint", "https://[fe80::1]/token"),
        ("userinfo_endpoint", "http://192.168.1.1/userinfo"),
    ] {
        let (issuer, key_sets) = provider_naming(&[(field, url)]).await;
        let err = promio_server::idm::sso::check_provider(&app.core, &issuer)
            .await
            .unwrap_err();
        let ServiceError::SsoProvider(detail) = err else {
            panic!("{field} at {url}: expected a provider error, got {err:?}");
        };
        assert!(detail.contains(field), "{detail}");
        assert_eq!(
            key_sets.load(Ordering::SeqCst),
            0,
            "{field} at {url}: refused before anything but the document is fetched"
        );
    }
}

/// After the switch to SSO, the second factors kept from before can no longer be managed here:
/// not activated (a secret begun before the switch), not deactivated, no new recovery codes.
#[tokio::test]
async fn after_the_switch_to_sso_two_factor_settings_made_before_are_refused() {
    let app = TestApp::spawn_at_real_time().await;
    app.create_client("ACME").await;
    // jane has an authenticator app; max began setting one up.
    app.create_user("ACME", "jane", Role::User).await;
    app.login_ok("ACME", "jane").await;
    let (jane_secret, _) = app.activate_2fa().await;
    app.create_user("ACME", "max", Role::User).await;
    let max_browser = app.new_browser();
    assert_eq!(
        app.login_in(&max_browser, "ACME", "max").await.status(),
        200
    );
    let enrolment: promio_app::api::TwoFactorEnrolment = max_browser
        .post(app.url("/api/2fa/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let max_secret = totp_rs::Secret::try_from_base32(&enrolment.secret)
        .unwrap()
        .as_ref()
        .to_vec();

    let registration = register(&app).await;
    configure(
        &app.core,
        Actor::default(),
        "ACME",
        SsoInput {
            issuer: idp().issuer.clone(),
            client_id: registration.client_id.clone(),
            client_secret: registration.client_secret.clone(),
            domains: "acme.example".into(),
            email_claim: String::new(),
            jit: false,
        },
    )
    .await
    .expect("SSO on");

    // Both come back through the company's identity provider.
    let call = |browser: &Browser, endpoint: &str, fields: Vec<(&'static str, String)>| {
        let request = browser
            .plain
            .post(app.url(&format!("/api/{endpoint}")))
            .form(&fields);
        async move { request.send().await.unwrap() }
    };
    let jane = Browser::new();
    round_trip(&app, &jane, "jane@acme.example", "jane@acme.example").await;
    let max = Browser::new();
    round_trip(&app, &max, "max@acme.example", "max@acme.example").await;

    let code = app.totp_code(&max_secret, 0);
    let response = call(&max, "2fa/activate", vec![("code", code)]).await;
    assert_eq!(
        response.status(),
        403,
        "activation of a secret begun before"
    );
    let code = app.totp_code(&jane_secret, 0);
    let response = call(
        &jane,
        "2fa/deactivate",
        vec![
            ("password", crate::helpers::PASSWORD.to_owned()),
            ("code", code.clone()),
        ],
    )
    .await;
    assert_eq!(response.status(), 403, "deactivation");
    let response = call(&jane, "2fa/recovery-codes", vec![("code", code)]).await;
    assert_eq!(response.status(), 403, "new recovery codes");
    let max_id = app.user_id("ACME", "max").await;
    let enabled: i64 = sqlx::query_scalar("SELECT totp_enabled FROM users WHERE id = $1")
        .bind(&max_id)
        .fetch_one(app.core.store.pool())
        .await
        .unwrap();
    assert_eq!(enabled, 0, "max has no second factor");
}
