//! The OpenID Provider's authorization endpoint and the login round trip: the error page for an
//! unknown client or redirect URI, protocol errors sent back to the application, PKCE, the code
//! at once with a session, the request waiting for a login and finished on `/home`, `prompt`,
//! `max_age`, company-bound applications and the login page's prefill.

use crate::helpers::{PASSWORD, START, TestApp};
use promio_app::api::Role;
use promio_server::oauth::apps::{self, NewApp};
use reqwest::Response;
use sqlx::Row;
use std::collections::HashMap;

const RP: &str = "http://127.0.0.1:9/cb";
/// RFC 7636's example S256 challenge.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn register(app: &TestApp, company_id: Option<&str>, public: bool) -> String {
    apps::create(
        &app.core,
        "",
        NewApp {
            name: "Test application".into(),
            redirect_uris: vec![RP.into()],
            company_id: company_id.map(str::to_owned),
            public,
            ..NewApp::default()
        },
    )
    .await
    .expect("register the application")
    .client_id
}

/// A valid request of `client_id`, with `changes` applied (a value of `None` removes the name).
fn request(client_id: &str, changes: &[(&'static str, Option<&str>)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(&'static str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", RP.into()),
        ("scope", "openid profile".into()),
        ("state", "st-1".into()),
        ("nonce", "n-1".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ];
    for (name, value) in changes {
        pairs.retain(|(n, _)| n != name);
        if let Some(value) = value {
            pairs.push((*name, (*value).to_owned()));
        }
    }
    pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect()
}

async fn authorize(app: &TestApp, pairs: &[(String, String)]) -> Response {
    app.client
        .get(app.url("/oauth/authorize"))
        .query(pairs)
        .send()
        .await
        .expect("authorization request")
}

fn location(response: &Response) -> String {
    assert_eq!(response.status(), 302, "a redirect");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The parameters the application got back at its redirect URI.
fn at_rp(response: &Response) -> HashMap<String, String> {
    let location = location(response);
    assert!(
        location.starts_with(RP),
        "back to the application: {location}"
    );
    url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The stored code's `auth_time` and `scope`.
async fn code_row(app: &TestApp, code: &str) -> (i64, String) {
    let row = sqlx::query("SELECT auth_time, scope FROM oauth_codes WHERE code_hash = $1")
        .bind(promio_server::oauth::hash_token(code))
        .fetch_one(app.core.store.pool())
        .await
        .expect("the code is stored");
    (
        row.get::<i64, _>("auth_time"),
        row.get::<String, _>("scope"),
    )
}

async fn get(app: &TestApp, path: &str) -> Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn an_unknown_client_or_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    let unregistered = [
        request("app_unknown", &[]),
        request(
            &client_id,
            &[("redirect_uri", Some("http://127.0.0.1:9/other"))],
        ),
        request(
            &client_id,
            &[("redirect_uri", Some("http://127.0.0.1:9/cb/"))],
        ),
        request(&client_id, &[("redirect_uri", None)]),
        request(&client_id, &[("client_id", None)]),
    ];
    for pairs in unregistered {
        let response = authorize(&app, &pairs).await;
        assert_eq!(response.status(), 400, "{pairs:?}");
        assert!(response.headers().get("location").is_none(), "{pairs:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("role=\"alert\""), "{html}");
    }
    let german = app
        .client
        .get(app.url("/oauth/authorize"))
        .header("accept-language", "de")
        .query(&request("app_unknown", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(german.status(), 400);
    assert!(german.text().await.unwrap().contains("nicht registriert"));
}

#[tokio::test]
async fn protocol_errors_go_back_to_the_application_with_state_and_iss() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    type Case<'a> = (&'a [(&'static str, Option<&'a str>)], &'a str);
    let cases: [Case; 6] = [
        (&[("response_type", None)], "invalid_request"),
        (
            &[("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (&[("scope", Some("profile email"))], "invalid_scope"),
        (
            &[("request", Some("eyJhbGciOiJub25lIn0.e30."))],
            "request_not_supported",
        ),
        (
            &[("request_uri", Some("https://rp.example/r"))],
            "request_uri_not_supported",
        ),
        (&[("prompt", Some("none login"))], "invalid_request"),
    ];
    for (changes, error) in cases {
        let response = authorize(&app, &request(&client_id, changes)).await;
        let back = at_rp(&response);
        assert_eq!(
            back.get("error").map(String::as_str),
            Some(error),
            "{changes:?}"
        );
        assert!(back.contains_key("error_description"), "{back:?}");
        assert_eq!(back["state"], "st-1");
        assert_eq!(back["iss"], app.address, "RFC 9207");
        assert!(!back.contains_key("code"));
    }
    let refused = app
        .audit()
        .await
        .iter()
        .filter(|e| e.action == "oauth.refused")
        .count();
    assert_eq!(refused, 6, "every refusal is audited");
}

#[tokio::test]
async fn pkce_s256_is_required_and_plain_is_refused() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let public = register(&app, None, true).await;
    let confidential = register(&app, None, false).await;
    let no_challenge: &[(&'static str, Option<&str>)] =
        &[("code_challenge", None), ("code_challenge_method", None)];
    for client_id in [&public, &confidential] {
        let back = at_rp(&authorize(&app, &request(client_id, no_challenge)).await);
        assert_eq!(
            back["error"], "invalid_request",
            "{client_id}: no challenge"
        );
    }
    let refused: [&[(&'static str, Option<&str>)]; 3] = [
        &[("code_challenge_method", Some("plain"))],
        &[("code_challenge_method", None)],
        &[("code_challenge", Some("too-short"))],
    ];
    for changes in refused {
        let back = at_rp(&authorize(&app, &request(&public, changes)).await);
        assert_eq!(back["error"], "invalid_request", "{changes:?}");
    }
    assert_eq!(app.count_rows("oauth_codes").await, 0);
}

#[tokio::test]
async fn with_a_session_the_code_comes_at_once_and_the_application_takes_part_in_it() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    app.clock.advance(5);
    let pairs = request(
        &client_id,
        &[
            ("scope", Some("openid unknown email")),
            ("foo", Some("bar")),
        ],
    );
    let back = at_rp(&authorize(&app, &pairs).await);
    assert_eq!(back["state"], "st-1");
    assert_eq!(back["iss"], app.address);
    let (auth_time, scope) = code_row(&app, &back["code"]).await;
    assert_eq!(auth_time, START, "the login's time");
    assert_eq!(scope, "openid email", "unknown scopes dropped");
    assert_eq!(app.count_rows("oauth_participations").await, 1);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == "oauth.authorize" && e.outcome == "success")
    );

    // Asked with POST (a form from the application's site) it works the same.
    let response = app
        .client
        .post(app.url("/oauth/authorize"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://rp.example")
        .form(&request(&client_id, &[]))
        .send()
        .await
        .unwrap();
    let back = at_rp(&response);
    assert!(back.contains_key("code"), "{back:?}");
    assert_eq!(
        app.count_rows("oauth_participations").await,
        1,
        "once a session"
    );
}

#[tokio::test]
async fn without_a_session_the_request_waits_for_the_login_and_home_sends_the_code() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    let pairs = request(
        &client_id,
        &[("login_hint", Some("alice")), ("ui_locales", Some("fr de"))],
    );
    let response = authorize(&app, &pairs).await;
    assert_eq!(location(&response), "/login?username=alice");
    let cookies = set_cookies(&response);
    let authz = cookies
        .iter()
        .find(|c| c.starts_with("authz="))
        .expect("the request's cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(authz.contains(attr), "{attr} in {authz}");
    }
    assert!(
        cookies.iter().any(|c| c.starts_with("lang=de")),
        "{cookies:?}"
    );
    assert_eq!(app.count_rows("oauth_requests").await, 1);

    // The login form shows (nobody is logged in), with the user name filled in.
    let login = get(&app, "/login?username=alice").await;
    assert_eq!(login.status(), 200);
    assert!(login.text().await.unwrap().contains("value=\"alice\""));

    app.login_ok("ACME", "alice").await;
    let home = get(&app, "/home").await;
    let back = at_rp(&home);
    assert_eq!(back["state"], "st-1");
    assert_eq!(back["iss"], app.address);
    assert!(back.contains_key("code"));
    assert!(
        set_cookies(&home)
            .iter()
            .any(|c| c.starts_with("authz=;") && c.contains("Max-Age=0")),
        "the cookie is cleared"
    );
    assert_eq!(app.count_rows("oauth_requests").await, 0, "used once");
    assert_eq!(get(&app, "/home").await.status(), 200, "and only once");
}

#[tokio::test]
async fn a_login_without_script_goes_on_to_the_application_by_a_page_of_its_own() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    authorize(&app, &request(&client_id, &[])).await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    // A redirect of the form's post could not lead to another site (form-action 'self').
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("url=/home"));
    assert!(at_rp(&get(&app, "/home").await).contains_key("code"));
}

#[tokio::test]
async fn prompt_none_answers_login_required_without_a_session_and_a_code_with_one() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    let pairs = request(&client_id, &[("prompt", Some("none"))]);
    let back = at_rp(&authorize(&app, &pairs).await);
    assert_eq!(back["error"], "login_required");
    assert_eq!(back["state"], "st-1");
    assert_eq!(app.count_rows("oauth_requests").await, 0, "nothing waits");

    app.login_ok("ACME", "alice").await;
    let back = at_rp(&authorize(&app, &pairs).await);
    assert!(back.contains_key("code"), "{back:?}");
}

#[tokio::test]
async fn prompt_login_shows_the_login_form_again_and_the_new_login_advances_auth_time() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    app.clock.advance(100);
    let response = authorize(&app, &request(&client_id, &[("prompt", Some("login"))])).await;
    assert_eq!(location(&response), "/login?reauth=1");
    // Logged in, and still the form: not skipped to /home.
    assert_eq!(get(&app, "/login?reauth=1").await.status(), 200);
    assert_eq!(location(&get(&app, "/home").await), "/login?reauth=1");

    app.clock.advance(10);
    app.login_ok("ACME", "alice").await;
    let back = at_rp(&get(&app, "/home").await);
    let (auth_time, _) = code_row(&app, &back["code"]).await;
    assert_eq!(auth_time, START + 110, "the new login's time");
}

#[tokio::test]
async fn max_age_asks_again_once_the_login_is_older() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    app.clock.advance(2);
    let recent = authorize(&app, &request(&client_id, &[("max_age", Some("3600"))])).await;
    assert!(at_rp(&recent).contains_key("code"));
    let older = authorize(&app, &request(&client_id, &[("max_age", Some("1"))])).await;
    assert_eq!(location(&older), "/login?reauth=1");

    app.login_ok("ACME", "alice").await;
    let back = at_rp(&get(&app, "/home").await);
    let (auth_time, _) = code_row(&app, &back["code"]).await;
    assert_eq!(auth_time, START + 2);
}

#[tokio::test]
async fn an_application_of_one_company_refuses_another_companys_user() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_client("OTHER").await;
    app.create_user("OTHER", "olga", Role::User).await;
    let client_id = register(&app, Some("OTHER"), false).await;

    // Not logged in: the login form with the application's company filled in.
    let response = authorize(&app, &request(&client_id, &[])).await;
    assert_eq!(location(&response), "/login?company_id=OTHER");
    let html = get(&app, "/login?company_id=OTHER")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("value=\"OTHER\""), "the company ID filled in");

    // A user of another company logs in: refused at the end of the round trip...
    app.login_ok("ACME", "alice").await;
    let back = at_rp(&get(&app, "/home").await);
    assert_eq!(back["error"], "access_denied");
    assert!(back["error_description"].contains("another company"));
    assert_eq!(back["state"], "st-1");
    // ...and at once with the session.
    let back = at_rp(&authorize(&app, &request(&client_id, &[])).await);
    assert_eq!(back["error"], "access_denied");
    assert_eq!(app.count_rows("oauth_codes").await, 0);

    // The company's own user gets the code.
    let olga = app.new_browser();
    app.login_in(&olga, "OTHER", "olga").await;
    let response = olga
        .get(app.url("/oauth/authorize"))
        .query(&request(&client_id, &[]))
        .send()
        .await
        .unwrap();
    assert!(at_rp(&response).contains_key("code"));
}

#[tokio::test]
async fn the_login_page_takes_company_id_and_user_name_from_its_address() {
    let app = TestApp::with_user("ACME", "alice").await;
    let html = app
        .new_browser()
        .get(app.url("/login?company_id=ACME&username=alice"))
        .header("cookie", "promio_company=ELSEWHERE")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |id: &str| {
        let start = html.find(&format!("id=\"{id}\"")).expect("the field");
        let field = &html[start..];
        field[..field.find('>').unwrap()].to_owned()
    };
    assert!(
        field("company_id").contains("value=\"ACME\""),
        "{}",
        field("company_id")
    );
    assert!(
        field("username").contains("value=\"alice\""),
        "{}",
        field("username")
    );
    assert!(
        !html.contains("ELSEWHERE"),
        "the address wins over the remembered company"
    );
}
