//! User administration: what a client admin can do, and only within their own client.

use crate::helpers::{TestApp, api_error};
use promio_app::api::{
    ApiError, Field, Invitation, Problem, Role, UserPage, UserStatus, UserSummary,
};
use promio_server::domain::audit::AuditAction;

async fn admin_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.login_ok("ACME", "boss").await;
    app
}

async fn create(app: &TestApp, username: &str, email: &str) -> reqwest::Response {
    app.call(
        "users/create",
        &[
            ("first_name", "Erika"),
            ("last_name", "Muster"),
            ("email", email),
            ("username", username),
            ("role", "user"),
        ],
    )
    .await
}

async fn list(app: &TestApp, search: &str, status: &str, page: &str) -> UserPage {
    let response = app
        .call(
            "users/list",
            &[("search", search), ("status", status), ("page", page)],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_admin_creates_an_invited_user_who_gets_the_registration_mail() {
    let app = admin_app().await;
    let response = create(&app, "erika", "erika@acme.example").await;
    assert_eq!(response.status(), 200);
    let user: UserSummary = response.json().await.unwrap();
    assert_eq!(user.status, UserStatus::Invited);
    assert_eq!(
        user.invitation,
        Invitation::Pending {
            until: "16 January 2027, 09:00 CET".into()
        }
    );
    let mail = app.mail_to("erika@acme.example").await;
    assert!(mail.raw.contains("Company ID: ACME"));
    let page = list(&app, "", "", "1").await;
    assert_eq!(page.total, 2);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == AuditAction::UserCreated)
    );
}

#[tokio::test]
async fn the_invitation_shows_as_expired_after_its_time() {
    let app = admin_app().await;
    create(&app, "erika", "erika@acme.example").await;
    app.clock.advance(24 * 3600);
    app.login_ok("ACME", "boss").await; // the session itself ended at its absolute timeout
    let page = list(&app, "erika", "", "1").await;
    assert_eq!(page.users[0].invitation, Invitation::Expired);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_creates_nothing() {
    let app = admin_app().await;
    let response = create(&app, "erika smith", "erika@acme.example").await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        api_error(response).await,
        ApiError::Invalid {
            field: Field::UserName,
            problem: Problem::InvalidCharacters
        }
    );
    let response = create(&app, "erika", "not-an-address").await;
    assert_eq!(
        api_error(response).await,
        ApiError::Invalid {
            field: Field::Email,
            problem: Problem::Malformed
        }
    );
    assert_eq!(
        create(&app, "BOSS", "b@acme.example").await.status(),
        400,
        "user names are unique without case"
    );
    let response = app
        .call(
            "users/create",
            &[
                ("first_name", ""),
                ("last_name", ""),
                ("email", "x@acme.example"),
                ("username", "x"),
                ("role", "operator"),
            ],
        )
        .await;
    assert_eq!(
        api_error(response).await,
        ApiError::Invalid {
            field: Field::Role,
            problem: Problem::Malformed
        }
    );
    assert_eq!(list(&app, "", "", "1").await.total, 1);
    app.deliver().await;
    assert!(app.mails.mails().is_empty());
}

#[tokio::test]
async fn search_filter_and_pages_work_for_many_users() {
    let app = admin_app().await;
    for i in 0..60 {
        app.create_user_with(
            "ACME",
            &format!("user{i:02}"),
            Role::User,
            if i % 2 == 0 {
                Some(crate::helpers::PASSWORD)
            } else {
                None
            },
        )
        .await;
    }
    let first = list(&app, "", "", "1").await;
    assert_eq!(
        (first.total, first.users.len(), first.page_size),
        (61, 25, 25)
    );
    let third = list(&app, "", "", "3").await;
    assert_eq!(third.users.len(), 11);
    assert_eq!(
        list(&app, "USER1", "", "1").await.total,
        10,
        "user10..user19, case-insensitive"
    );
    assert_eq!(list(&app, "", "invited", "1").await.total, 30);
    assert_eq!(list(&app, "", "active", "1").await.total, 31);
    assert_eq!(
        list(&app, "%", "", "1").await.total,
        0,
        "LIKE wildcards are literal"
    );
    let response = app
        .call(
            "users/list",
            &[("search", ""), ("status", "bogus"), ("page", "1")],
        )
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_admin_cannot_see_or_touch_another_clients_users() {
    let app = admin_app().await;
    app.create_client("OTHER").await;
    app.create_user("OTHER", "victim", Role::User).await;
    let victim = app.user_id("OTHER", "victim").await;
    assert!(list(&app, "victim", "", "1").await.users.is_empty());
    for (endpoint, extra) in [
        ("users/resend-registration", vec![]),
        ("users/send-reset", vec![]),
        ("users/set-active", vec![("active", "false")]),
        (
            "users/update",
            vec![
                ("first_name", "x"),
                ("last_name", "y"),
                ("email", "v@other.example"),
                ("role", "admin"),
            ],
        ),
    ] {
        let mut fields = vec![("id", victim.as_str())];
        fields.extend(extra);
        let response = app.call(endpoint, &fields).await;
        assert_eq!(response.status(), 404, "{endpoint}");
        assert_eq!(api_error(response).await, ApiError::NotFound);
    }
    let unknown = app.call("users/send-reset", &[("id", "no-such-id")]).await;
    assert_eq!(
        unknown.status(),
        404,
        "the same answer as for an unknown id"
    );
    assert_eq!(
        app.login("OTHER", "victim", crate::helpers::PASSWORD)
            .await
            .status(),
        200,
        "untouched"
    );
}

#[tokio::test]
async fn only_admins_administer_users() {
    let app = TestApp::with_user("ACME", "plain").await;
    assert_eq!(
        app.call(
            "users/list",
            &[("search", ""), ("status", ""), ("page", "1")]
        )
        .await
        .status(),
        401
    );
    app.login_ok("ACME", "plain").await;
    let response = app
        .call(
            "users/list",
            &[("search", ""), ("status", ""), ("page", "1")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = create(&app, "sneaky", "s@acme.example").await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn deactivation_ends_sessions_and_blocks_login_until_reactivated() {
    let app = admin_app().await;
    app.create_user("ACME", "erika", Role::User).await;
    let erika = app.new_browser();
    let login = app.login_in(&erika, "ACME", "erika").await;
    assert_eq!(login.status(), 200);
    let id = app.user_id("ACME", "erika").await;
    assert_eq!(
        app.call("users/set-active", &[("id", &id), ("active", "false")])
            .await
            .status(),
        200
    );
    let me = app.me_in(&erika).await;
    assert_eq!(me, None, "logged out at once");
    assert_eq!(app.login_as_other("erika").await, 401);
    assert_eq!(
        list(&app, "erika", "", "1").await.users[0].status,
        UserStatus::Deactivated
    );
    assert_eq!(
        app.call("users/set-active", &[("id", &id), ("active", "true")])
            .await
            .status(),
        200
    );
    assert_eq!(app.login_as_other("erika").await, 200);
}

#[tokio::test]
async fn an_admin_cannot_deactivate_or_demote_themselves() {
    let app = admin_app().await;
    let me = app.user_id("ACME", "boss").await;
    assert_eq!(
        app.call("users/set-active", &[("id", &me), ("active", "false")])
            .await
            .status(),
        403
    );
    let response = app
        .call(
            "users/update",
            &[
                ("id", &me),
                ("first_name", "B"),
                ("last_name", "O"),
                ("email", "boss@acme.example"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_admin_edits_a_user_and_sends_a_reset_mail() {
    let app = admin_app().await;
    app.create_user("ACME", "erika", Role::User).await;
    let id = app.user_id("ACME", "erika").await;
    let response = app
        .call(
            "users/update",
            &[
                ("id", &id),
                ("first_name", "Erika"),
                ("last_name", "Neu"),
                ("email", "erika.neu@acme.example"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let user: UserSummary = response.json().await.unwrap();
    assert_eq!(
        (user.last_name.as_str(), user.email.as_str(), user.role),
        ("Neu", "erika.neu@acme.example", Role::Admin)
    );
    assert_eq!(
        app.call("users/send-reset", &[("id", &id)]).await.status(),
        200
    );
    let mail = app.mail_to("erika.neu@acme.example").await;
    assert_eq!(mail.subject, "Reset your promio.connect password");
    // An active user gets no registration mail, an invited one no reset mail.
    assert_eq!(
        app.call("users/resend-registration", &[("id", &id)])
            .await
            .status(),
        403
    );
}

impl TestApp {
    /// Logs in as `username` of ACME in a fresh browser; returns the status.
    async fn login_as_other(&self, username: &str) -> u16 {
        self.new_browser()
            .post(self.url("/api/login"))
            .form(&[
                ("company_id", "ACME"),
                ("username", username),
                ("password", crate::helpers::PASSWORD),
            ])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn an_admin_can_send_a_user_only_a_few_mails_an_hour() {
    let app = admin_app().await;
    app.create_user("ACME", "erika", Role::User).await;
    let id = app.user_id("ACME", "erika").await;
    for _ in 0..5 {
        assert_eq!(
            app.call("users/send-reset", &[("id", &id)]).await.status(),
            200
        );
    }
    let sixth = app.call("users/send-reset", &[("id", &id)]).await;
    assert_eq!(sixth.status(), 429);
    app.deliver().await;
    assert_eq!(app.mails_to("erika@"), 5);
}
