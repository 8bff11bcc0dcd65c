//! The password step of the login flow.

use crate::helpers::{PASSWORD, TestApp, api_error};
use promio_app::api::{ApiError, Field, LoginOutcome, Problem, Role};
use promio_server::domain::audit::AuditAction;
use promio_server::idm::provisioning::ClientSettings;

#[tokio::test]
async fn the_right_password_logs_in_and_shows_who_is_logged_in() {
    let app = TestApp::with_user("ACME", "alice").await;
    assert_eq!(app.me().await, None);
    app.login_ok("ACME", "alice").await;
    let me = app.me().await.expect("logged in");
    assert_eq!(me.username, "alice");
    assert_eq!(me.company_id, "ACME");
    assert_eq!(me.company_name, "ACME GmbH");
    assert_eq!(me.role, Role::User);
}

#[tokio::test]
async fn company_id_and_user_name_ignore_case_and_surrounding_spaces() {
    let app = TestApp::with_user("ACME", "Alice.Smith").await;
    let response = app.login("  acme ", " alice.SMITH ", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.me().await.map(|m| m.username),
        Some("Alice.Smith".to_owned())
    );
}

#[tokio::test]
async fn wrong_password_unknown_user_and_unknown_company_look_the_same() {
    let app = TestApp::with_user("ACME", "alice").await;
    let mut answers = Vec::new();
    for (company, user, password) in [
        ("ACME", "alice", "not the password at all"),
        ("ACME", "nobody", PASSWORD),
        ("NOPE", "alice", PASSWORD),
    ] {
        let before = app.core.hasher.verifications();
        let response = app.login(company, user, password).await;
        let verified = app.core.hasher.verifications() - before;
        let status = response.status();
        let set_cookie = response.headers().get("set-cookie").is_some();
        let body = response.text().await.unwrap();
        answers.push((status, set_cookie, body, verified));
    }
    assert_eq!(answers[0].0, 401);
    assert!(!answers[0].1, "no cookie on failure");
    assert_eq!(
        serde_json::from_str::<ApiError>(&answers[0].2).unwrap(),
        ApiError::LoginFailed {
            retry_after_secs: None
        }
    );
    assert_eq!(answers[0].3, 1, "one argon2 verification per attempt");
    assert_eq!(
        answers[0], answers[1],
        "unknown user answers like a wrong password"
    );
    assert_eq!(
        answers[0], answers[2],
        "unknown company answers like a wrong password"
    );
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn failures_and_successes_are_audited_with_their_reason() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login("ACME", "alice", "wrong password here").await;
    app.login("NOPE", "alice", PASSWORD).await;
    app.login_ok("ACME", "alice").await;
    let events = app.audit().await;
    let logins: Vec<_> = events
        .iter()
        .filter(|e| e.action == AuditAction::LoginPassword)
        .collect();
    assert_eq!(logins.len(), 3);
    assert!(
        logins.iter().any(|e| e.outcome == "failure"
            && e.detail == "wrong password"
            && e.client_id.is_some())
    );
    assert!(
        logins.iter().any(|e| e.outcome == "failure"
            && e.detail == "unknown company"
            && e.client_id.is_none())
    );
    assert!(logins.iter().any(|e| e.outcome == "success"
        && e.detail == "password"
        && e.client_id.is_some()
        && e.subject_user_id.is_some()
        && e.actor_user_id == e.subject_user_id
        && e.ip.as_deref() == Some("127.0.0.1")));
    let text = format!("{events:?}");
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong password here"),
        "no password in the audit log"
    );
}

#[tokio::test]
async fn an_invited_user_without_password_cannot_log_in() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user_with("ACME", "invited", Role::User, None)
        .await;
    let response = app.login("ACME", "invited", PASSWORD).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        api_error(response).await,
        ApiError::LoginFailed {
            retry_after_secs: None
        }
    );
}

#[tokio::test]
async fn a_deactivated_user_gets_the_generic_failure_even_with_the_right_password() {
    let app = TestApp::with_user("ACME", "alice").await;
    let user = app
        .core
        .store
        .user_by_name(
            &app.core
                .store
                .client_by_company_id(&promio_server::domain::CompanyId::parse("ACME").unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
            &promio_server::domain::UserName::parse("alice").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    app.core
        .store
        .set_user_status(
            &user.id,
            promio_server::store::users::UserStatus::Deactivated,
            app.clock_now(),
        )
        .await
        .unwrap();
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        api_error(response).await,
        ApiError::LoginFailed {
            retry_after_secs: None
        }
    );
}

#[tokio::test]
async fn a_client_that_requires_2fa_gives_no_session_before_the_second_factor() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.set_client(
        "ACME",
        ClientSettings {
            require_2fa: Some(true),
            ..Default::default()
        },
    )
    .await;
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::TwoFactorEnrolmentRequired
    );
    assert!(
        cookies.iter().all(|c| !c.starts_with("session=")),
        "no session cookie: {cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("login-challenge=")),
        "a challenge cookie: {cookies:?}"
    );
    assert_eq!(app.me().await, None, "the pending state is not a session");
    assert_eq!(app.active_sessions().await, 0);
}

#[tokio::test]
async fn users_of_an_sso_client_are_sent_to_login_with_sso() {
    let app = TestApp::with_user("ACME", "alice").await;
    sqlx::query(
        "UPDATE clients SET sso_issuer = 'https://idp.acme.example' WHERE company_key = 'acme'",
    )
    .execute(app.core.store.pool())
    .await
    .unwrap();
    let before = app.core.hasher.verifications();
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert_eq!(api_error(response).await, ApiError::UseSso);
    assert_eq!(
        app.core.hasher.verifications(),
        before,
        "no password is checked for SSO clients"
    );
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn empty_fields_are_refused_with_the_field_named() {
    let app = TestApp::with_user("ACME", "alice").await;
    for (fields, field) in [
        (["", "alice", PASSWORD], Field::CompanyId),
        (["ACME", "  ", PASSWORD], Field::UserName),
        (["ACME", "alice", ""], Field::Password),
    ] {
        let response = app.login(fields[0], fields[1], fields[2]).await;
        assert_eq!(response.status(), 400);
        assert_eq!(
            api_error(response).await,
            ApiError::Invalid {
                field,
                problem: Problem::Missing
            }
        );
    }
}

#[tokio::test]
async fn oversized_and_control_character_values_are_refused_with_400() {
    let app = TestApp::with_user("ACME", "alice").await;
    let huge = "x".repeat(10_000);
    let cases = [
        (
            [huge.as_str(), "alice", PASSWORD],
            ApiError::Invalid {
                field: Field::CompanyId,
                problem: Problem::TooLong { max: 32 },
            },
        ),
        (
            ["ACME", huge.as_str(), PASSWORD],
            ApiError::Invalid {
                field: Field::UserName,
                problem: Problem::TooLong { max: 64 },
            },
        ),
        (
            ["ACME", "alice", huge.as_str()],
            ApiError::Invalid {
                field: Field::Password,
                problem: Problem::TooLong { max: 1024 },
            },
        ),
        (
            ["AC\u{0}ME", "alice", PASSWORD],
            ApiError::Invalid {
                field: Field::CompanyId,
                problem: Problem::ControlCharacters,
            },
        ),
        (
            ["ACME", "ali\u{1b}ce", PASSWORD],
            ApiError::Invalid {
                field: Field::UserName,
                problem: Problem::ControlCharacters,
            },
        ),
        (
            ["AC ME", "alice", PASSWORD],
            ApiError::Invalid {
                field: Field::CompanyId,
                problem: Problem::InvalidCharacters,
            },
        ),
    ];
    for (fields, expected) in cases {
        let response = app.login(fields[0], fields[1], fields[2]).await;
        assert_eq!(response.status(), 400, "{expected:?}");
        assert_eq!(api_error(response).await, expected);
    }
    assert_eq!(app.active_sessions().await, 0);
}

#[tokio::test]
async fn undecodable_requests_get_400_not_500() {
    let app = TestApp::with_user("ACME", "alice").await;
    let bodies: [&[u8]; 3] = [
        b"company_id=ACME&username=alice&password=%FF%FE%FD",
        b"company_id=AC\xff\xfeME&username=alice&password=x",
        b"company_id=ACME",
    ];
    for body in bodies {
        let response = app
            .client
            .post(app.url("/api/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let error = api_error(response).await;
        assert_eq!(
            status,
            400,
            "{:?} gave {error:?}",
            String::from_utf8_lossy(body)
        );
        assert!(
            matches!(error, ApiError::BadRequest(_) | ApiError::Invalid { .. }),
            "{error:?}"
        );
    }
    assert_eq!(app.active_sessions().await, 0);
}

impl TestApp {
    fn clock_now(&self) -> i64 {
        use promio_server::domain::clock::Clock;
        self.clock.now()
    }
}
