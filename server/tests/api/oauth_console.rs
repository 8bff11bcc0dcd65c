//! The operators' Applications page, through its server functions: registering, listing,
//! rotating the secret and deleting the applications that log people in through promio.connect.

use crate::helpers::{TestApp, api_error};
use promio_app::api::{ApiError, ApplicationView, CreatedApplication, Field, Problem, Role};
use promio_app::i18n::Lang;
use promio_server::domain::audit::AuditAction;
use std::collections::HashMap;

async fn operator_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.login_ok("promio", "ops").await;
    app
}

/// The New application form's fields, as the browser posts them.
fn form<'a>(redirect_uris: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", "Timesheets"),
        ("redirect_uris", redirect_uris),
        ("post_logout_redirect_uris", ""),
        ("backchannel_logout_uri", ""),
        ("company_id", ""),
    ];
    for (name, value) in extra {
        fields.retain(|(n, _)| n != name);
        fields.push((*name, *value));
    }
    fields
}

async fn list(app: &TestApp) -> (String, Vec<ApplicationView>) {
    let response = app.call("applications/list", &[]).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let list = serde_json::from_str(&body).unwrap();
    (body, list)
}

/// Whether `secret` authenticates the application at the token endpoint (client_secret_post).
async fn secret_works(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let fields = HashMap::from([
        ("client_id".to_owned(), client_id.to_owned()),
        ("client_secret".to_owned(), secret.to_owned()),
    ]);
    promio_server::edge::oauth::client_auth::authenticate_client(
        &app.core,
        &reqwest::header::HeaderMap::new(),
        &fields,
        None,
        false,
    )
    .await
    .is_ok()
}

#[tokio::test]
async fn a_confidential_application_may_do_without_pkce_a_public_one_never() {
    let app = operator_app().await;
    // Both boxes ticked: refused on the PKCE box, nothing registered.
    let response = app
        .call(
            "applications/create",
            &form(
                "https://times.example/cb",
                &[("public", "on"), ("pkce_optional", "on")],
            ),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error = api_error(response).await;
    assert_eq!(
        error,
        ApiError::Invalid {
            field: Field::PkceOptional,
            problem: Problem::Malformed
        }
    );
    assert!(
        error
            .message(Lang::En)
            .contains("public client always uses PKCE")
    );
    assert!(error.message(Lang::De).contains("vertraulichen Client"));
    assert_eq!(list(&app).await.1, Vec::new());

    let response = app
        .call(
            "applications/create",
            &form("https://times.example/cb", &[("pkce_optional", "on")]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: CreatedApplication = response.json().await.unwrap();
    let (_, listed) = list(&app).await;
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].public && !listed[0].pkce_required);
    let registered = promio_server::idm::apps::find(&app.core, &created.client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!registered.pkce_required);
    let events = app.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::AppCreated && e.detail.contains("PKCE optional")),
        "the registration's audit row says so"
    );

    // Unticked, as before: PKCE required.
    let response = app
        .call(
            "applications/create",
            &form("https://other.example/cb", &[]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (_, listed) = list(&app).await;
    assert!(
        listed
            .iter()
            .any(|a| a.redirect_uris == ["https://other.example/cb"] && a.pkce_required)
    );
}

#[tokio::test]
async fn an_operator_registers_lists_rotates_and_deletes_an_application() {
    let app = operator_app().await;
    app.create_client("ACME").await;
    let response = app
        .call(
            "applications/create",
            &form(
                "https://times.example/cb\r\n\r\n  http://localhost:8080/cb  \n",
                &[
                    ("post_logout_redirect_uris", "https://times.example/bye"),
                    ("backchannel_logout_uri", "https://times.example/bc"),
                    ("company_id", "ACME"),
                ],
            ),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: CreatedApplication = response.json().await.unwrap();
    assert!(
        created.client_id.starts_with("app_"),
        "{}",
        created.client_id
    );
    let secret = created
        .client_secret
        .clone()
        .expect("a confidential client's secret");
    assert!(secret_works(&app, &created.client_id, &secret).await);

    let (_, listed) = list(&app).await;
    assert_eq!(
        listed,
        vec![ApplicationView {
            client_id: created.client_id.clone(),
            name: "Timesheets".into(),
            public: false,
            pkce_required: true,
            company_id: Some("ACME".into()),
            redirect_uris: vec![
                "https://times.example/cb".into(),
                "http://localhost:8080/cb".into()
            ],
            post_logout_redirect_uris: vec!["https://times.example/bye".into()],
            backchannel_logout_uri: Some("https://times.example/bc".into()),
        }]
    );

    let response = app
        .call(
            "applications/rotate-secret",
            &[("client_id", created.client_id.as_str())],
        )
        .await;
    assert_eq!(response.status(), 200);
    let rotated: CreatedApplication = response.json().await.unwrap();
    assert_eq!(rotated.client_id, created.client_id);
    let new_secret = rotated.client_secret.expect("the new secret");
    assert_ne!(new_secret, secret);
    assert!(secret_works(&app, &created.client_id, &new_secret).await);
    assert!(
        !secret_works(&app, &created.client_id, &secret).await,
        "the old secret stops at once"
    );

    let delete = [("client_id", created.client_id.as_str())];
    assert_eq!(app.call("applications/delete", &delete).await.status(), 200);
    assert_eq!(list(&app).await.1, Vec::new());
    let again = app.call("applications/delete", &delete).await;
    assert_eq!(again.status(), 404);
    assert_eq!(api_error(again).await, ApiError::NotFound);

    let ops = app.user_id("promio", "ops").await;
    let events = app.audit().await;
    for action in [
        AuditAction::AppCreated,
        AuditAction::AppSecretRotated,
        AuditAction::AppDeleted,
    ] {
        assert!(
            events
                .iter()
                .any(|e| e.action == action && e.actor_user_id.as_deref() == Some(ops.as_str())),
            "{action:?} by the operator"
        );
    }
}

#[tokio::test]
async fn a_public_application_has_no_secret_to_show_or_rotate() {
    let app = operator_app().await;
    let response = app
        .call(
            "applications/create",
            &form("https://spa.example/cb", &[("public", "on")]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let created: CreatedApplication = response.json().await.unwrap();
    assert_eq!(created.client_secret, None);
    let (_, listed) = list(&app).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].public);
    assert_eq!(listed[0].company_id, None, "any client's users");
    let rotate = app
        .call(
            "applications/rotate-secret",
            &[("client_id", created.client_id.as_str())],
        )
        .await;
    assert_eq!(rotate.status(), 404);
}

#[tokio::test]
async fn a_client_secret_is_in_the_create_answer_only() {
    let app = operator_app().await;
    let response = app
        .call(
            "applications/create",
            &form("https://times.example/cb", &[]),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: CreatedApplication = response.json().await.unwrap();
    let secret = created.client_secret.expect("a secret");
    assert!(secret.len() >= 43, "256 bits, base64url");

    let (body, listed) = list(&app).await;
    assert_eq!(listed.len(), 1);
    assert!(body.contains(&created.client_id));
    assert!(!body.contains(&secret), "the list never carries the secret");
    assert!(!body.contains("secret"), "nor a field for it: {body}");
    let stored = app
        .core
        .store
        .oauth_app(&created.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.secret_hash,
        Some(promio_server::infra::token::hash(&secret)),
        "only its hash is stored"
    );
    let events = format!("{:?}", app.audit().await);
    assert!(!events.contains(&secret), "the audit log never has it");
}

#[tokio::test]
async fn a_refused_field_is_named_and_nothing_is_created() {
    let app = operator_app().await;
    type Case<'a> = (Vec<(&'a str, &'a str)>, Field, Problem);
    let cases: Vec<Case> = vec![
        (
            form("http://times.example/cb", &[]),
            Field::RedirectUris,
            Problem::Malformed,
        ),
        (
            form("https://times.example/cb#x", &[]),
            Field::RedirectUris,
            Problem::Malformed,
        ),
        (
            form("https://a:b@times.example/cb", &[]),
            Field::RedirectUris,
            Problem::Malformed,
        ),
        (form(" \n ", &[]), Field::RedirectUris, Problem::Missing),
        (
            form(
                "https://times.example/cb",
                &[("post_logout_redirect_uris", "javascript:alert(1)")],
            ),
            Field::PostLogoutRedirectUris,
            Problem::Malformed,
        ),
        (
            form(
                "https://times.example/cb",
                &[("backchannel_logout_uri", "ftp://times.example/bc")],
            ),
            Field::BackchannelLogoutUri,
            Problem::Malformed,
        ),
        (
            form("https://times.example/cb", &[("name", "  ")]),
            Field::Name,
            Problem::Missing,
        ),
        (
            form("https://times.example/cb", &[("company_id", "NOPE")]),
            Field::CompanyId,
            Problem::Unknown,
        ),
        (
            form("https://times.example/cb", &[("company_id", "a b")]),
            Field::CompanyId,
            Problem::InvalidCharacters,
        ),
    ];
    for (fields, field, problem) in cases {
        let response = app.call("applications/create", &fields).await;
        assert_eq!(response.status(), 400, "{fields:?}");
        let error = api_error(response).await;
        assert_eq!(error, ApiError::Invalid { field, problem }, "{fields:?}");
        for lang in [Lang::En, Lang::De] {
            let message = error.message(lang).to_lowercase();
            assert!(
                message.contains(&field.label(lang).to_lowercase()),
                "the message names the field: {message}"
            );
        }
    }
    let eleven = (0..11)
        .map(|i| format!("https://times.example/{i}"))
        .collect::<Vec<_>>()
        .join("\n");
    let response = app.call("applications/create", &form(&eleven, &[])).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        api_error(response).await,
        ApiError::Invalid {
            field: Field::RedirectUris,
            problem: Problem::Malformed
        }
    );
    assert_eq!(app.count_rows("oauth_apps").await, 0);
    assert!(list(&app).await.1.is_empty());
}

#[tokio::test]
async fn only_operators_manage_applications() {
    let app = operator_app().await;
    let created: CreatedApplication = app
        .call(
            "applications/create",
            &form("https://times.example/cb", &[]),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = [("client_id", created.client_id.as_str())];
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user("ACME", "alice", Role::User).await;
    // An admin of the platform client is no operator either.
    app.create_user("promio", "padmin", Role::Admin).await;
    for (company, user) in [("ACME", "boss"), ("ACME", "alice"), ("promio", "padmin")] {
        let browser = app.new_browser();
        assert_eq!(app.login_in(&browser, company, user).await.status(), 200);
        for (endpoint, fields) in [
            ("applications/list", Vec::new()),
            ("applications/create", form("https://evil.example/cb", &[])),
            ("applications/rotate-secret", id.to_vec()),
            ("applications/delete", id.to_vec()),
        ] {
            let response = browser
                .post(app.url(&format!("/api/{endpoint}")))
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{user}: {endpoint}");
            assert_eq!(api_error(response).await, ApiError::Forbidden);
        }
    }
    let response = app
        .new_browser()
        .post(app.url("/api/applications/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (_, listed) = list(&app).await;
    assert_eq!(listed.len(), 1, "nothing created, nothing deleted");
    assert_eq!(app.count_rows("oauth_apps").await, 1);
}
