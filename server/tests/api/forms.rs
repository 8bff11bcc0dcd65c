//! The login's forms without the page's script: each page's form posts to the page's own path and
//! is answered with a redirect, on to the next step or back to the page with the error and what was
//! typed (never a password) in a cookie the page takes. Also the remembered company ID and the
//! language switch.

use crate::helpers::{PASSWORD, TestApp};
use promio_app::api::{ApiError, COMPANY_COOKIE, FORM_FLASH_COOKIE, Field, FormFlash, Problem};
use reqwest::Response;

/// Posts a page's form as a browser without script does.
async fn post(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url(path))
        .header("sec-fetch-site", "same-origin")
        .header("accept", "text/html")
        .form(fields)
        .send()
        .await
        .expect("post a form")
}

/// The 303's target.
fn location(response: &Response) -> String {
    assert_eq!(response.status(), 303, "a form is answered with a redirect");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// What the form came back to `page` with.
fn flash(response: &Response, page: &str) -> FormFlash {
    let prefix = format!("{FORM_FLASH_COOKIE}=");
    let cookie = set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&prefix))
        .expect("the form's answer for its page");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Max-Age=60"),
        "{cookie}"
    );
    let value = cookie[prefix.len()..].split(';').next().unwrap();
    FormFlash::decode(value, page).expect("a form answer for this page")
}

/// The page the form came back to, as the browser then loads it (with the cookie).
async fn page(app: &TestApp, location: &str) -> String {
    let response = app
        .client
        .get(app.url(location))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with(&format!("{FORM_FLASH_COOKIE}=;"))),
        "the page takes the answer: a reload starts afresh"
    );
    response.text().await.unwrap()
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// A company ID with letters beyond ASCII is valid, but the remembered-company cookie holds only
/// what the page's script reads back: such an ID is not remembered, and no cookie is cleared.
#[tokio::test]
async fn a_company_id_beyond_ascii_logs_in_without_being_remembered() {
    let app = TestApp::with_user("Bäckerei", "alice").await;
    let response = post(
        &app,
        "/login",
        &[
            ("company_id", "Bäckerei"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/home");
    let cookies = set_cookies(&response);
    assert!(
        cookies.iter().all(|c| !c.contains(COMPANY_COOKIE)),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.contains("session=")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn a_login_posted_without_script_lands_on_home_with_a_session_and_remembers_the_company() {
    let app = TestApp::with_user("ACME", "alice").await;
    let response = post(
        &app,
        "/login",
        &[
            ("company_id", " ACME "),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/home");
    let cookies = set_cookies(&response);
    let company = cookies
        .iter()
        .find(|c| c.starts_with(&format!("{COMPANY_COOKIE}=")))
        .expect("the company cookie");
    assert!(company.starts_with("promio_company=ACME;"), "{company}");
    assert_eq!(app.me().await.map(|m| m.username).as_deref(), Some("alice"));

    // The login form, next time (logged out), has the company ID filled in.
    let html = app
        .new_browser()
        .get(app.url("/login"))
        .header("cookie", "promio_company=ACME")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("value=\"ACME\""), "company ID filled in");
}

#[tokio::test]
async fn a_failed_login_without_script_comes_back_with_the_error_and_all_but_the_password() {
    let app = TestApp::with_user("ACME", "alice").await;
    let response = post(
        &app,
        "/login",
        &[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", "not the password"),
        ],
    )
    .await;
    assert_eq!(location(&response), "/login", "the page's own address");
    let answer = flash(&response, "/login");
    assert_eq!(answer.value("company_id").as_deref(), Some("ACME"));
    assert_eq!(answer.value("username").as_deref(), Some("alice"));
    assert!(
        answer.values.iter().all(|(_, v)| !v.contains("not the")),
        "never the password: {answer:?}"
    );
    assert!(matches!(answer.error, ApiError::LoginFailed { .. }));
    assert!(
        !set_cookies(&response)
            .iter()
            .any(|c| c.starts_with(COMPANY_COOKIE) || c.starts_with("session=")),
        "no session and nothing remembered after a failure"
    );
    assert_eq!(app.me().await, None);

    // The page it comes back to shows the message as an alert, focused, and the typed values.
    let html = page(&app, "/login").await;
    let message = ApiError::LoginFailed {
        retry_after_secs: None,
    }
    .message(promio_app::i18n::Lang::En);
    assert!(html.contains(&message), "the error is shown: {message}");
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("autofocus"), "the error takes the focus");
    assert!(html.contains("value=\"alice\"") && html.contains("value=\"ACME\""));

    // A field's problem points the field to the message.
    let response = post(
        &app,
        "/login",
        &[("company_id", ""), ("username", "alice"), ("password", "x")],
    )
    .await;
    assert_eq!(location(&response), "/login");
    assert_eq!(
        flash(&response, "/login").error,
        ApiError::Invalid {
            field: Field::CompanyId,
            problem: Problem::Missing
        }
    );
    let html = page(&app, "/login").await;
    let field = &html[html.find("id=\"company_id\"").unwrap()..];
    let field = &field[..field.find('>').unwrap()];
    assert!(field.contains("aria-invalid=\"true\""), "{field}");
    assert!(field.contains("aria-describedby=\"form-error\""), "{field}");
}

#[tokio::test]
async fn the_second_step_works_without_script() {
    let (app, secret, _) = TestApp::with_2fa("ACME", "alice").await;
    let response = post(
        &app,
        "/login",
        &[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&response), "/login/two-factor");
    let wrong = post(&app, "/login/two-factor", &[("code", "000000")]).await;
    assert_eq!(location(&wrong), "/login/two-factor");
    let answer = flash(&wrong, "/login/two-factor");
    assert_eq!(answer.error, ApiError::SecondFactorFailed);
    assert!(answer.values.is_empty(), "never the code");
    assert_eq!(app.me().await, None);
    let message = ApiError::SecondFactorFailed.message(promio_app::i18n::Lang::En);
    assert!(page(&app, "/login/two-factor").await.contains(&message));

    let code = app.totp_code(&secret, 0);
    let right = post(&app, "/login/two-factor", &[("code", &code)]).await;
    assert_eq!(location(&right), "/home");
    assert_eq!(app.me().await.map(|m| m.username).as_deref(), Some("alice"));
}

#[tokio::test]
async fn forgot_password_and_the_link_work_without_script() {
    let app = TestApp::with_user("ACME", "erika").await;
    let response = post(
        &app,
        "/forgot-password",
        &[("company_id", "ACME"), ("username", "erika")],
    )
    .await;
    assert_eq!(location(&response), "/forgot-password?sent=1");
    let token = TestApp::token_of(&app.mail_to("erika@").await);

    let new = "violet orbit canvas thunder";
    let mismatch = post(
        &app,
        "/set-password",
        &[
            ("token", &token),
            ("new_password", new),
            ("repeat_password", "something else entirely"),
        ],
    )
    .await;
    let back = location(&mismatch);
    assert_eq!(back, format!("/set-password?token={token}"));
    let answer = flash(&mismatch, "/set-password");
    assert_eq!(
        answer.error,
        ApiError::Invalid {
            field: Field::RepeatPassword,
            problem: Problem::Mismatch
        }
    );
    assert!(answer.values.is_empty(), "never a password");
    let html = page(&app, &back).await;
    let field = &html[html.find("id=\"repeat_password\"").unwrap()..];
    let field = &field[..field.find('>').unwrap()];
    assert!(field.contains("aria-describedby=\"form-error\""), "{field}");

    let set = post(
        &app,
        "/set-password",
        &[
            ("token", &token),
            ("new_password", new),
            ("repeat_password", new),
        ],
    )
    .await;
    assert_eq!(location(&set), "/login?notice=password_set");
    assert_eq!(app.login("ACME", "erika", new).await.status(), 200);
}

#[tokio::test]
async fn a_form_post_from_another_site_is_refused() {
    let app = TestApp::with_user("ACME", "alice").await;
    let response = app
        .client
        .post(app.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .form(&[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn a_forged_answer_with_outside_text_or_for_another_page_is_not_shown() {
    let app = TestApp::spawn().await;
    let forged = FormFlash {
        page: "/login".into(),
        error: ApiError::BadRequest("Call +1 555 0100 to unlock your account".into()),
        values: vec![],
    };
    let other_page = FormFlash {
        page: "/sso".into(),
        error: ApiError::SsoNotSetUp,
        values: vec![("company_id".into(), "FORGED".into())],
    };
    for flash in [forged, other_page] {
        let html = app
            .client
            .get(app.url("/login"))
            .header("accept-language", "en")
            .header("cookie", format!("{FORM_FLASH_COOKIE}={}", flash.encode()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("555 0100") && !html.contains("FORGED"));
        let message = ApiError::SsoNotSetUp.message(promio_app::i18n::Lang::En);
        assert!(!html.contains(&message));
    }
}

#[tokio::test]
async fn the_language_switch_works_without_script_and_stays_on_this_site() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/lang"))
        .form(&[("lang", "de"), ("back", "/forgot-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/forgot-password");
    assert!(
        set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("lang=de;"))
    );
    let html = app
        .client
        .get(app.url("/forgot-password"))
        .header("cookie", "lang=de")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"de\""));

    // Only the path of the page the switch was on: never another site.
    let response = app
        .client
        .post(app.url("/lang"))
        .form(&[("lang", "xx"), ("back", "//evil.example/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/login");
    assert!(
        !set_cookies(&response)
            .iter()
            .any(|c| c.starts_with("lang=")),
        "an unknown language changes nothing"
    );
}

#[tokio::test]
async fn the_language_switch_never_goes_back_to_a_path_that_normalises_to_another_host() {
    let app = TestApp::spawn().await;
    for back in [
        "/.//evil.example",
        "/%2e//evil.example",
        "/%2E//evil.example/x?y=1",
        "/%2e%2e//evil.example",
        "/%2E%2F/evil.example",
        "/\\evil.example",
        "//evil.example",
        "/./%2F/evil",
        "/%5Cevil.example",
    ] {
        let response = app
            .client
            .post(app.url("/lang"))
            .form(&[("lang", "de"), ("back", back)])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&response), "/login", "back={back:?}");
    }
}
