//! The OpenID Provider's authorization endpoint and the login round trip: the error page for an
//! unknown client or redirect URI, protocol errors sent back to the application, PKCE, the code
//! at once with a session, the request waiting for a login and finished on `/home`, `prompt`,
//! `max_age`, company-bound applications and the login page's prefill; `id_token_hint`,
//! `ui_locales`, forms posted by other sites, and what anonymous requests leave behind.

use crate::helpers::{PASSWORD, START, TestApp};
use promio_app::api::Role;
use promio_server::idm::apps::{self, NewApp};
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
        .bind(promio_server::edge::oauth::hash_token(code))
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
    let refused: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.action == "oauth.refused")
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "the first anonymous refusal from an address is audited, the others only counted"
    );
    assert!(
        refused[0].detail.contains("only counted"),
        "{}",
        refused[0].detail
    );
}

#[tokio::test]
async fn a_fault_after_the_redirect_uri_is_known_goes_back_to_the_application() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    // The session lookup now fails with a database error that is not an outage: a server fault.
    sqlx::query("DROP TABLE sessions")
        .execute(app.core.store.pool())
        .await
        .expect("drop the sessions table");

    let response = authorize(&app, &request(&client_id, &[])).await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let back = at_rp(&response);
    assert_eq!(back.get("error").map(String::as_str), Some("server_error"));
    assert!(
        back["error_description"].contains(&request_id),
        "the description names the request's id: {back:?}"
    );
    assert_eq!(back["state"], "st-1");
    assert_eq!(back["iss"], app.address, "RFC 9207");
    assert!(!back.contains_key("code"));

    let text = get(&app, "/metrics").await.text().await.unwrap();
    let line = "promio_oauth_errors_total{endpoint=\"authorize\",error=\"server_error\"} 1";
    assert!(
        text.lines().any(|l| l == line),
        "{line} missing in:\n{text}"
    );
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

    // A confidential application registered to do without PKCE gets its code without a
    // challenge; a challenge it sends is still held to S256.
    let legacy = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Legacy".into(),
            redirect_uris: vec![RP.into()],
            pkce_optional: true,
            ..NewApp::default()
        },
    )
    .await
    .expect("register the application")
    .client_id;
    let back = at_rp(&authorize(&app, &request(&legacy, no_challenge)).await);
    assert!(back.contains_key("code"), "{back:?}");
    let plain = [("code_challenge_method", Some("plain"))];
    let back = at_rp(&authorize(&app, &request(&legacy, &plain)).await);
    assert_eq!(back["error"], "invalid_request");
    assert_eq!(app.count_rows("oauth_codes").await, 1);
}

#[tokio::test]
async fn a_long_state_comes_back_whole() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    // Some relying parties carry the address to return to in `state`.
    let state = format!("nonce-part:https://app.example/deep?{}", "q=1&".repeat(700));
    let back = at_rp(&authorize(&app, &request(&client_id, &[("state", Some(&state))])).await);
    assert!(back.contains_key("code"), "{back:?}");
    assert_eq!(back["state"], state);
    let too_long = "s".repeat(4097);
    let back = at_rp(&authorize(&app, &request(&client_id, &[("state", Some(&too_long))])).await);
    assert_eq!(back["error"], "invalid_request");
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

    // Asked with POST (a form from the application's site) it works the same, by way of a GET.
    let response = app
        .client
        .post(app.url("/oauth/authorize"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://rp.example")
        .form(&request(&client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let next = response.headers()["location"].to_str().unwrap().to_owned();
    let back = at_rp(&get(&app, &next).await);
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
    let lang = cookies
        .iter()
        .find(|c| c.starts_with("lang=de"))
        .expect("the login page in the language asked for");
    assert!(
        !lang.contains("Max-Age") && !lang.contains("Expires"),
        "for this login only, not the site's language for a year: {lang}"
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

/// An ID token of this provider for `user_id`, as an application keeps it for `id_token_hint`.
async fn id_token_for(app: &TestApp, client_id: &str, user_id: &str) -> String {
    let claims = serde_json::json!({
        "iss": promio_server::edge::oauth::issuer(&app.core),
        "sub": user_id,
        "aud": client_id,
        "iat": START,
        "exp": START + 3600,
    });
    promio_server::idm::signing::sign(&app.core, &claims, "JWT")
        .await
        .expect("an ID token")
}

#[tokio::test]
async fn an_id_token_hint_of_someone_else_asks_for_that_persons_login() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "bob", Role::User).await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    let bobs = id_token_for(&app, &client_id, &app.user_id("ACME", "bob").await).await;

    // alice is logged in, the application means bob: never a code for alice.
    let silent = [
        ("prompt", Some("none")),
        ("id_token_hint", Some(bobs.as_str())),
    ];
    let back = at_rp(&authorize(&app, &request(&client_id, &silent)).await);
    assert_eq!(back["error"], "login_required");
    assert_eq!(back["state"], "st-1");
    let hinted = [("id_token_hint", Some(bobs.as_str()))];
    let response = authorize(&app, &request(&client_id, &hinted)).await;
    assert_eq!(location(&response), "/login?reauth=1");
    assert_eq!(app.count_rows("oauth_codes").await, 0);

    // alice's own hint: the code at once.
    let alices = id_token_for(&app, &client_id, &app.user_id("ACME", "alice").await).await;
    let own = [
        ("prompt", Some("none")),
        ("id_token_hint", Some(alices.as_str())),
    ];
    let back = at_rp(&authorize(&app, &request(&client_id, &own)).await);
    assert!(back.contains_key("code"), "{back:?}");

    // bob logs in: the waiting request goes on to the application.
    app.login_ok("ACME", "bob").await;
    let back = at_rp(&get(&app, "/home").await);
    assert!(back.contains_key("code"), "{back:?}");
    assert_eq!(app.count_rows("oauth_codes").await, 2);
}

#[tokio::test]
async fn ui_locales_sets_the_language_of_this_login_only() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    let pairs = request(&client_id, &[("ui_locales", Some("de-CH de en"))]);
    let response = authorize(&app, &pairs).await;
    let cookies = set_cookies(&response);
    let lang = cookies
        .iter()
        .find(|c| c.starts_with("lang="))
        .expect("a language cookie");
    assert!(lang.starts_with("lang=de;"), "{lang}");
    assert!(
        !lang.contains("Max-Age") && !lang.contains("Expires"),
        "{lang}"
    );
    // The login page speaks it.
    let html = get(&app, "/login").await.text().await.unwrap();
    assert!(html.contains("<html lang=\"de\""), "{html}");

    // A browser that has chosen that language keeps its own cookie as it is.
    let response = app
        .new_browser()
        .get(app.url("/oauth/authorize"))
        .header("cookie", "lang=de")
        .query(&pairs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(
        !set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("lang=")),
        "{:?}",
        set_cookies(&response)
    );
}

#[tokio::test]
async fn a_form_from_another_site_goes_on_as_a_get_which_carries_the_session() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    app.login_ok("ACME", "alice").await;
    // A browser leaves the SameSite=Lax session cookie off another site's POST, so prompt=none
    // could only ever answer login_required to it; the GET it is sent on to carries the cookie.
    let pairs = request(&client_id, &[("prompt", Some("none"))]);
    let response = app
        .client
        .post(app.url("/oauth/authorize"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://rp.example")
        .form(&pairs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let next = response.headers()["location"].to_str().unwrap().to_owned();
    let (path, query) = next.split_once('?').expect("the request as the query");
    assert_eq!(path, "/oauth/authorize");
    let sent: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(sent, pairs.iter().cloned().collect::<HashMap<_, _>>());
    assert_eq!(
        app.count_rows("oauth_codes").await,
        0,
        "nothing for the POST"
    );
    let back = at_rp(&get(&app, &next).await);
    assert!(back.contains_key("code"), "{back:?}");

    // A form of this site (and a request from no browser) is answered at once.
    let response = app
        .client
        .post(app.url("/oauth/authorize"))
        .header("sec-fetch-site", "same-origin")
        .form(&pairs)
        .send()
        .await
        .unwrap();
    assert!(at_rp(&response).contains_key("code"));
}

#[tokio::test]
async fn refusals_are_counted_in_the_metrics() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    let other = [("redirect_uri", Some("http://127.0.0.1:9/other"))];
    let token = [("response_type", Some("token"))];
    let silent = [("prompt", Some("none"))];
    authorize(&app, &request("app_unknown", &[])).await;
    authorize(&app, &request(&client_id, &other)).await;
    authorize(&app, &request(&client_id, &token)).await;
    authorize(&app, &request(&client_id, &silent)).await;
    authorize(&app, &request(&client_id, &silent)).await;
    let text = get(&app, "/metrics").await.text().await.unwrap();
    for line in [
        "promio_oauth_errors_total{endpoint=\"authorize\",error=\"invalid_client\"} 1",
        "promio_oauth_errors_total{endpoint=\"authorize\",error=\"invalid_request\"} 1",
        "promio_oauth_errors_total{endpoint=\"authorize\",error=\"unsupported_response_type\"} 1",
        "promio_oauth_errors_total{endpoint=\"authorize\",error=\"login_required\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
}

/// One refused request of five kinds anyone can send (`i % 5`): an unknown application, an
/// unregistered redirect URI, a protocol error, `prompt=none` without a session, a logout
/// request with an unknown post-logout URI.
async fn refused_request(app: &TestApp, anyone: &reqwest::Client, client_id: &str, i: usize) {
    let state = format!("s{i}");
    let pairs = match i % 5 {
        0 => request("app_unknown", &[("state", Some(state.as_str()))]),
        1 => request(client_id, &[("redirect_uri", Some("http://127.0.0.1:9/x"))]),
        2 => request(
            client_id,
            &[("scope", Some("profile")), ("state", Some(state.as_str()))],
        ),
        3 => request(
            client_id,
            &[("prompt", Some("none")), ("state", Some(state.as_str()))],
        ),
        _ => vec![(
            "post_logout_redirect_uri".to_owned(),
            format!("https://rp.example/{i}"),
        )],
    };
    let path = if i % 5 == 4 {
        "/oauth/logout"
    } else {
        "/oauth/authorize"
    };
    let response = anyone
        .get(app.url(path))
        .query(&pairs)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    match i % 5 {
        2 | 3 => assert_eq!(status, 302, "{i}"),
        _ => assert_eq!(status, 400, "{i}"),
    }
}

#[tokio::test]
async fn anonymous_requests_from_one_address_leave_bounded_rows() {
    let app = TestApp::with_user("ACME", "alice").await;
    let client_id = register(&app, None, false).await;
    let anyone = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let before = app.count_every_table().await;
    for i in 0..1000 {
        refused_request(&app, &anyone, &client_id, i).await;
    }
    // One audit row per endpoint, and the address's counter rows; nothing else.
    let mut expected = before;
    *expected.get_mut("audit_events").unwrap() += 2;
    *expected.get_mut("throttle").unwrap() += 2;
    assert_eq!(app.count_every_table().await, expected);

    // Requests waiting for a login: the first ones from the address are stored, the rest refused.
    let limit = promio_server::edge::oauth::authorize::WAITING_PER_ADDRESS;
    for i in 0..1000_i64 {
        let state = format!("w{i}");
        let response = anyone
            .get(app.url("/oauth/authorize"))
            .query(&request(&client_id, &[("state", Some(state.as_str()))]))
            .send()
            .await
            .unwrap();
        if i < limit {
            assert_eq!(location(&response), "/login", "{i}");
        } else {
            assert_eq!(response.status(), 429, "{i}");
            assert!(response.headers().contains_key("retry-after"));
            if i == limit {
                let html = response.text().await.unwrap();
                assert!(html.contains("role=\"alert\""), "{html}");
            }
        }
    }
    *expected.get_mut("oauth_requests").unwrap() += limit;
    *expected.get_mut("throttle").unwrap() += 1;
    assert_eq!(app.count_every_table().await, expected);

    // A new window, a new allowance.
    app.clock.advance(promio_server::edge::oauth::REQUEST_SECS);
    let response = anyone
        .get(app.url("/oauth/authorize"))
        .query(&request(&client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/login");
}
