//! The operator console and the audit log.

use crate::helpers::{TestApp, api_error};
use promio_app::api::{ApiError, AuditPage, ClientPage, ClientSummary, Field, Problem, Role};
use promio_server::domain::audit::AuditAction;

async fn operator_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.login_ok("promio", "ops").await;
    app
}

async fn create(
    app: &TestApp,
    id: &str,
    reg: &str,
    reset: &str,
    require: bool,
) -> reqwest::Response {
    let mut fields = vec![
        ("company_id", id),
        ("name", "Neu GmbH"),
        ("registration_link_hours", reg),
        ("reset_link_hours", reset),
    ];
    if require {
        fields.push(("require_2fa", "on"));
    }
    app.call("clients/create", &fields).await
}

#[tokio::test]
async fn an_operator_creates_and_changes_a_client_and_it_is_audited() {
    let app = operator_app().await;
    let response = create(&app, "NEU", "2", "48", true).await;
    assert_eq!(response.status(), 200);
    let client: ClientSummary = response.json().await.unwrap();
    assert_eq!(
        (
            client.registration_link_hours,
            client.reset_link_hours,
            client.require_2fa
        ),
        (2, 48, true)
    );
    let response = app
        .call(
            "clients/update",
            &[
                ("company_id", "neu"),
                ("name", "Neu AG"),
                ("registration_link_hours", "720"),
                ("reset_link_hours", "1"),
            ],
        )
        .await;
    let client: ClientSummary = response.json().await.unwrap();
    assert_eq!(
        (
            client.name.as_str(),
            client.registration_link_hours,
            client.reset_link_hours,
            client.require_2fa
        ),
        ("Neu AG", 720, 1, false)
    );
    let page: ClientPage = app
        .call("clients/list", &[("search", "neu"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let events = app.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::ClientCreated && e.actor_user_id.is_some())
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::ClientSettingsChanged)
    );
}

#[tokio::test]
async fn link_validity_outside_1_to_720_hours_is_refused_and_nothing_is_created() {
    let app = operator_app().await;
    for (reg, reset, field) in [
        ("0", "24", Field::RegistrationLinkHours),
        ("721", "24", Field::RegistrationLinkHours),
        ("2.5", "24", Field::RegistrationLinkHours),
        ("24", "abc", Field::ResetLinkHours),
        ("24", "-1", Field::ResetLinkHours),
    ] {
        let response = create(&app, "BAD", reg, reset, false).await;
        assert_eq!(response.status(), 400, "{reg} {reset}");
        assert_eq!(
            api_error(response).await,
            ApiError::Invalid {
                field,
                problem: Problem::OutOfRange { min: 1, max: 720 }
            }
        );
    }
    let page: ClientPage = app
        .call("clients/list", &[("search", "bad"), ("page", "1")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.total, 0);
    assert_eq!(
        create(&app, "promio", "24", "24", false).await.status(),
        400,
        "company IDs are unique"
    );
}

#[tokio::test]
async fn only_operators_manage_clients() {
    let app = TestApp::with_user("ACME", "boss").await;
    app.create_user("ACME", "admin", Role::Admin).await;
    app.login_ok("ACME", "admin").await;
    assert_eq!(
        app.call("clients/list", &[("search", ""), ("page", "1")])
            .await
            .status(),
        403
    );
    assert_eq!(create(&app, "EVIL", "24", "24", false).await.status(), 403);
    assert_eq!(
        app.call(
            "clients/set-active",
            &[("company_id", "ACME"), ("active", "false")]
        )
        .await
        .status(),
        403
    );
}

#[tokio::test]
async fn a_deactivated_client_cannot_log_in_and_loses_its_sessions() {
    let app = operator_app().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", Role::User).await;
    let alice = app.new_browser();
    app.login_in(&alice, "ACME", "alice").await;
    assert_eq!(
        app.call(
            "clients/set-active",
            &[("company_id", "ACME"), ("active", "false")]
        )
        .await
        .status(),
        200
    );
    let me = app.me_in(&alice).await;
    assert_eq!(me, None);
    let login = app.login_in(&alice, "ACME", "alice").await;
    assert_eq!(login.status(), 401);
    assert_eq!(
        app.call(
            "clients/set-active",
            &[("company_id", "promio"), ("active", "false")]
        )
        .await
        .status(),
        403
    );
}

#[tokio::test]
async fn admins_see_their_own_clients_audit_log_filtered_and_as_csv() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_client("OTHER").await;
    app.create_user("OTHER", "mallory", Role::User).await;
    app.login("ACME", "alice", "wrong password here").await;
    app.login("OTHER", "mallory", "wrong password here").await;
    app.login_ok("ACME", "boss").await;
    let all: AuditPage = app
        .call(
            "audit",
            &[
                ("user", ""),
                ("action", ""),
                ("from", ""),
                ("to", ""),
                ("page", "1"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        all.entries.iter().all(|e| e.company_id == "ACME"),
        "only the own client"
    );
    assert!(all.entries.iter().all(|e| e.subject != "mallory"));
    let logins: AuditPage = app
        .call(
            "audit",
            &[
                ("user", "alice"),
                ("action", "login."),
                ("from", "2027-01-15"),
                ("to", "2027-01-15"),
                ("page", "1"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(logins.total, 1);
    assert_eq!(
        (
            logins.entries[0].action.as_str(),
            logins.entries[0].outcome.as_str()
        ),
        ("login.password", "failure")
    );
    assert_eq!(logins.entries[0].detail, "wrong password");
    let none: AuditPage = app
        .call(
            "audit",
            &[
                ("user", ""),
                ("action", ""),
                ("from", "2027-01-16"),
                ("to", ""),
                ("page", "1"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none.total, 0);

    let csv = app
        .client
        .get(app.url("/admin/audit.csv?user=alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("time_utc,company_id,actor,subject,action,outcome,detail,ip\r\n"));
    assert!(text.contains("\"login.password\",\"failure\",\"wrong password\""));
    assert!(!text.contains("mallory"));
    let bad = app
        .call(
            "audit",
            &[
                ("user", ""),
                ("action", ""),
                ("from", "not a date"),
                ("to", ""),
                ("page", "1"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn operators_see_every_clients_events_and_users_see_none() {
    let app = operator_app().await;
    app.create_client("ACME").await;
    let all: AuditPage = app
        .call(
            "audit",
            &[
                ("user", ""),
                ("action", "client.created"),
                ("from", ""),
                ("to", ""),
                ("page", "1"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(all.entries.iter().any(|e| e.company_id == "ACME"));
    assert!(all.entries.iter().any(|e| e.company_id == "promio"));
    let user = TestApp::with_user("ACME", "alice").await;
    user.login_ok("ACME", "alice").await;
    assert_eq!(
        user.call(
            "audit",
            &[
                ("user", ""),
                ("action", ""),
                ("from", ""),
                ("to", ""),
                ("page", "1")
            ]
        )
        .await
        .status(),
        403
    );
    assert_eq!(
        user.client
            .get(user.url("/admin/audit.csv"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

/// The client's log names an operator who acted on the client by their user name, though they
/// belong to the platform client: the audit row is the scope of that lookup, not the viewer's
/// client (and an operator is not shown as a deleted user).
#[tokio::test]
async fn a_clients_log_names_the_operator_who_acted_on_it() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user("ACME", "erika", Role::User).await;
    app.create_user("promio", "ops", Role::Operator).await;
    let erika = app.user_id("ACME", "erika").await;
    let operator = app.new_browser();
    assert_eq!(app.login_in(&operator, "promio", "ops").await.status(), 200);
    let deleted = operator
        .post(app.url("/api/users/delete"))
        .form(&[("id", erika.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    app.login_ok("ACME", "boss").await;
    let log: AuditPage = app
        .call(
            "audit",
            &[
                ("user", ""),
                ("action", "user.deleted"),
                ("from", ""),
                ("to", ""),
                ("page", "1"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    let deletion = log
        .entries
        .iter()
        .find(|e| e.company_id == "ACME")
        .unwrap_or_else(|| panic!("the deletion in ACME's log: {:?}", log.entries));
    assert_eq!(deletion.actor, "ops", "{deletion:?}");
}
