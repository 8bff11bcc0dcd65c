//! Registration and password-reset links, and "Forgot your password?".

use crate::helpers::{NEW_PASSWORD, PASSWORD, TestApp, api_error};
use promio_app::api::{ApiError, Field, LinkKind, LinkState, Problem, Role};
use promio_server::domain::audit::AuditAction;
use promio_server::idm::provisioning::ClientSettings;

async fn invited(app: &TestApp, company: &str, username: &str) -> String {
    app.create_user_with(company, username, Role::User, None)
        .await;
    let mail = app.mail_to(&format!("{username}@")).await;
    TestApp::token_of(&mail)
}

async fn link_state(app: &TestApp, token: &str) -> LinkState {
    let response = app.call("link", &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn set_password(
    app: &TestApp,
    token: &str,
    password: &str,
    repeat: &str,
) -> reqwest::Response {
    app.call(
        "set-password",
        &[
            ("token", token),
            ("new_password", password),
            ("repeat_password", repeat),
        ],
    )
    .await
}

#[tokio::test]
async fn a_link_token_is_stored_only_as_its_hash() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let token = invited(&app, "ACME", "erika").await;
    assert_eq!(token.len(), 43, "256 bits, base64url");
    use sqlx::Row;
    let stored: Vec<String> = sqlx::query("SELECT token_hash FROM link_tokens")
        .fetch_all(app.core.store.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("token_hash"))
        .collect();
    assert_eq!(stored, [promio_server::infra::token::hash(&token)]);
}

#[tokio::test]
async fn a_new_user_gets_a_registration_mail_whose_link_sets_the_password() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    let mail = app.mail_to("erika@acme.example").await;
    assert_eq!(mail.subject, "Your promio.connect account");
    let link = mail.link().unwrap();
    assert!(
        link.starts_with(&format!("{}/set-password?token=", app.address)),
        "{link}"
    );
    assert!(
        mail.raw.contains("valid until 16 January 2027, 09:00 CET"),
        "24 h from the start, in Berlin time"
    );
    assert!(mail.raw.contains("multipart/alternative") && mail.raw.contains("text/html"));

    let token = TestApp::token_of(&mail);
    match link_state(&app, &token).await {
        LinkState::Valid {
            kind,
            company_id,
            username,
            until,
            ..
        } => {
            assert_eq!(kind, LinkKind::Registration);
            assert_eq!((company_id.as_str(), username.as_str()), ("ACME", "erika"));
            assert_eq!(until, "16 January 2027, 09:00 CET");
        }
        other => panic!("{other:?}"),
    }
    let response = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let response = app.login("ACME", "erika", NEW_PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        link_state(&app, &token).await,
        LinkState::Used {
            kind: LinkKind::Registration
        }
    );
}

#[tokio::test]
async fn the_link_page_states_the_expiry_in_the_readers_language_and_sends_no_referrer() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let token = invited(&app, "ACME", "erika").await;
    let response = app
        .client
        .get(app.url(&format!("/set-password?token={token}")))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("16. Januar 2027, 09:00 Uhr (CET)"),
        "the expiry, in German"
    );
    assert!(html.contains("Neues Passwort") && html.contains("Neues Passwort wiederholen"));
}

#[tokio::test]
async fn a_link_works_once_even_when_used_twice_at_the_same_moment() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let token = invited(&app, "ACME", "erika").await;
    let (a, b) = tokio::join!(
        set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD),
        set_password(
            &app,
            &token,
            "another fine passphrase",
            "another fine passphrase"
        ),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 410], "exactly one use wins");
    let again = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(again.status(), 410);
    assert_eq!(api_error(again).await, ApiError::LinkUnusable);
}

#[tokio::test]
async fn a_link_expires_after_the_clients_validity() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.set_client(
        "ACME",
        ClientSettings {
            registration_link_hours: Some(2),
            ..Default::default()
        },
    )
    .await;
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    let mail = app.mail_to("erika@").await;
    assert!(
        mail.raw.contains("valid until 15 January 2027, 11:00 CET"),
        "2 hours"
    );
    let token = TestApp::token_of(&mail);
    app.clock.advance(2 * 3600 - 1);
    assert!(matches!(
        link_state(&app, &token).await,
        LinkState::Valid { .. }
    ));
    app.clock.advance(1);
    assert_eq!(
        link_state(&app, &token).await,
        LinkState::Expired {
            kind: LinkKind::Registration
        }
    );
    let response = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 410);
    assert_eq!(app.login("ACME", "erika", NEW_PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn a_new_link_makes_the_older_one_void() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "admin", Role::Admin).await;
    let old = invited(&app, "ACME", "erika").await;
    app.login_ok("ACME", "admin").await;
    let id = app.user_id("ACME", "erika").await;
    assert_eq!(
        app.call("users/resend-registration", &[("id", &id)])
            .await
            .status(),
        200
    );
    let new = TestApp::token_of(&app.mail_to("erika@").await);
    assert_ne!(old, new);
    assert_eq!(
        link_state(&app, &old).await,
        LinkState::Superseded {
            kind: LinkKind::Registration
        }
    );
    assert_eq!(
        set_password(&app, &old, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        410
    );
    assert_eq!(
        set_password(&app, &new, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

/// The link's refusals in the audit log.
async fn link_refusals(app: &TestApp) -> Vec<String> {
    app.audit()
        .await
        .into_iter()
        .filter(|r| r.action == AuditAction::LinkRegistration && r.outcome == "refused")
        .map(|r| r.detail)
        .collect()
}

#[tokio::test]
async fn a_spent_link_posted_again_and_again_writes_one_audit_row_per_address_and_hour() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let token = invited(&app, "ACME", "erika").await;
    let response = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let before = app.count_every_table().await;
    // To the server function, and to the form that works without script.
    for _ in 0..1000 {
        let response = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status(), 410);
    }
    for _ in 0..1000 {
        let response = app
            .client
            .post(app.url("/set-password"))
            .header("sec-fetch-site", "same-origin")
            .header("accept", "text/html")
            .form(&[
                ("token", token.as_str()),
                ("new_password", NEW_PASSWORD),
                ("repeat_password", NEW_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
    }
    // One audit row, and the address's counter row; nothing else.
    let mut expected = before;
    *expected.get_mut("audit_events").unwrap() += 1;
    *expected.get_mut("throttle").unwrap() += 1;
    assert_eq!(app.count_every_table().await, expected);
    let refusals = link_refusals(&app).await;
    assert_eq!(refusals.len(), 1);
    assert!(refusals[0].starts_with("link not valid"), "{refusals:?}");
    assert!(refusals[0].contains("only counted"), "{refusals:?}");

    // The next row comes when the hour is over, not a second before.
    app.clock.advance(3599);
    let response = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 410);
    assert_eq!(link_refusals(&app).await.len(), 1);
    app.clock.advance(1);
    let response = set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 410);
    assert_eq!(link_refusals(&app).await.len(), 2);
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_unknown() {
    let app = TestApp::spawn().await;
    for token in ["", "short", &"A".repeat(43), &"x".repeat(5000)] {
        assert_eq!(link_state(&app, token).await, LinkState::Unknown, "{token}");
    }
    assert_eq!(
        set_password(&app, &"A".repeat(43), NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn bad_new_passwords_are_refused_with_the_reason_and_the_link_stays_valid() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let token = invited(&app, "ACME", "erika").await;
    let cases = [
        (
            "short",
            "short",
            Field::NewPassword,
            Problem::TooShort { min: 15 },
        ),
        (
            "passwordpassword",
            "passwordpassword",
            Field::NewPassword,
            Problem::TooCommon,
        ),
        (
            "erika@acme.example",
            "erika@acme.example",
            Field::NewPassword,
            Problem::SameAsIdentity,
        ),
        (
            NEW_PASSWORD,
            "something else entirely",
            Field::RepeatPassword,
            Problem::Mismatch,
        ),
    ];
    for (password, repeat, field, problem) in cases {
        let response = set_password(&app, &token, password, repeat).await;
        assert_eq!(response.status(), 400, "{password}");
        assert_eq!(
            api_error(response).await,
            ApiError::Invalid { field, problem }
        );
    }
    assert!(matches!(
        link_state(&app, &token).await,
        LinkState::Valid { .. }
    ));
    assert_eq!(
        set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn with_required_2fa_eight_characters_suffice() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.set_client(
        "ACME",
        ClientSettings {
            require_2fa: Some(true),
            ..Default::default()
        },
    )
    .await;
    let token = invited(&app, "ACME", "erika").await;
    assert!(matches!(
        link_state(&app, &token).await,
        LinkState::Valid {
            second_factor_required: true,
            ..
        }
    ));
    assert_eq!(
        set_password(&app, &token, "Zq7!mote", "Zq7!mote")
            .await
            .status(),
        200
    );
}

async fn forgot(app: &TestApp, company: &str, user: &str) -> (u16, String) {
    let response = app
        .call(
            "forgot-password",
            &[("company_id", company), ("username", user)],
        )
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn forgot_password_answers_the_same_for_every_account_and_mails_only_real_ones() {
    let app = TestApp::with_user("ACME", "erika").await;
    let real = forgot(&app, "ACME", "erika").await;
    let unknown_user = forgot(&app, "ACME", "nobody").await;
    let unknown_company = forgot(&app, "NOPE", "erika").await;
    assert_eq!(real.0, 200);
    assert_eq!(real, unknown_user);
    assert_eq!(real, unknown_company);
    app.deliver().await;
    assert_eq!(app.mails.mails().len(), 1, "one mail, to the real account");
    let mail = app.mail_to("erika@acme.example").await;
    assert_eq!(mail.subject, "Reset your promio.connect password");
}

#[tokio::test]
async fn a_reset_sets_a_new_password_and_ends_all_sessions() {
    let app = TestApp::with_user("ACME", "erika").await;
    app.login_ok("ACME", "erika").await;
    let old_session = app.session_cookie().unwrap();
    forgot(&app, "ACME", "erika").await;
    let token = TestApp::token_of(&app.mail_to("erika@").await);
    assert!(matches!(
        link_state(&app, &token).await,
        LinkState::Valid {
            kind: LinkKind::PasswordReset,
            ..
        }
    ));
    assert_eq!(
        set_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.me_with_token(&old_session).await,
        None,
        "sessions end with a reset"
    );
    assert_eq!(
        app.login("ACME", "erika", PASSWORD).await.status(),
        401,
        "the old password is gone"
    );
    assert_eq!(app.login("ACME", "erika", NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn reset_mails_are_capped_per_account_and_hour() {
    let app = TestApp::with_user("ACME", "erika").await;
    for _ in 0..5 {
        assert_eq!(forgot(&app, "ACME", "erika").await.0, 200);
    }
    app.deliver().await;
    assert_eq!(app.mails_to("erika@"), 3);
    app.clock.advance(3601);
    forgot(&app, "ACME", "erika").await;
    app.deliver().await;
    assert_eq!(app.mails_to("erika@"), 4, "the next hour allows more");
}

#[tokio::test]
async fn invited_and_deactivated_users_get_no_reset_mail() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user_with("ACME", "invited", Role::User, None)
        .await;
    app.create_user("ACME", "gone", Role::User).await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.deliver().await;
    let before = app.mails.mails().len();
    forgot(&app, "ACME", "invited").await;
    app.deliver().await;
    assert_eq!(app.mails.mails().len(), before);

    // gone gets one while active, and none once an admin has deactivated the account.
    assert_eq!(forgot(&app, "ACME", "gone").await.0, 200);
    let mail = app.mail_to("gone@acme.example").await;
    assert_eq!(mail.subject, "Reset your promio.connect password");
    app.login_ok("ACME", "boss").await;
    let id = app.user_id("ACME", "gone").await;
    assert_eq!(
        app.call("users/set-active", &[("id", &id), ("active", "false")])
            .await
            .status(),
        200
    );
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.deliver().await;
    let before = app.mails.mails().len();
    assert_eq!(forgot(&app, "ACME", "gone").await.0, 200);
    app.deliver().await;
    assert_eq!(app.mails.mails().len(), before);
    assert_eq!(app.mails_to("gone@"), 1, "only the mail from before");
    // Seen and refused for what the account is (not for a limit).
    assert!(app.audit().await.iter().any(|e| {
        e.action == AuditAction::PasswordResetRequested
            && e.subject_user_id.as_deref() == Some(id.as_str())
            && (e.outcome.as_str(), e.detail.as_str()) == ("refused", "account not eligible")
    }));
}

#[tokio::test]
async fn links_use_the_public_url_whatever_the_host_header_says() {
    let app = TestApp::with_user("ACME", "erika").await;
    app.client
        .post(app.url("/api/forgot-password"))
        .header("host", "evil.example")
        .form(&[("company_id", "ACME"), ("username", "erika")])
        .send()
        .await
        .unwrap();
    let link = app.mail_to("erika@").await.link().unwrap();
    assert!(link.starts_with(&app.address), "{link}");
    assert!(!link.contains("evil"));
}

async fn change_password(
    app: &TestApp,
    current: &str,
    new: &str,
    repeat: &str,
) -> reqwest::Response {
    app.call(
        "password/change",
        &[
            ("current_password", current),
            ("new_password", new),
            ("repeat_password", repeat),
        ],
    )
    .await
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let elsewhere = app.new_browser();
    assert_eq!(
        app.login_in(&elsewhere, "ACME", "alice").await.status(),
        200
    );
    assert!(app.me_in(&elsewhere).await.is_some());

    // Refused, changing nothing: a wrong or missing current password, a new one that breaks the
    // rules or is not repeated alike.
    let wrong = change_password(&app, "not the password at all", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(api_error(wrong).await, ApiError::WrongPassword);
    for (current, new, repeat, field, problem) in [
        (
            "",
            NEW_PASSWORD,
            NEW_PASSWORD,
            Field::Password,
            Problem::Missing,
        ),
        (
            PASSWORD,
            "too short",
            "too short",
            Field::NewPassword,
            Problem::TooShort { min: 15 },
        ),
        (
            PASSWORD,
            NEW_PASSWORD,
            "violet orbit canvas",
            Field::RepeatPassword,
            Problem::Mismatch,
        ),
    ] {
        let refused = change_password(&app, current, new, repeat).await;
        assert_eq!(refused.status(), 400, "{field:?}");
        assert_eq!(
            api_error(refused).await,
            ApiError::Invalid { field, problem }
        );
    }
    assert!(
        app.me_in(&elsewhere).await.is_some(),
        "refusals end nothing"
    );
    assert_eq!(app.mails_to("alice@acme.example"), 0);

    let changed = change_password(&app, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status(), 200);
    assert!(app.me().await.is_some(), "this session goes on");
    assert_eq!(app.me_in(&elsewhere).await, None, "the other one ended");
    let mail = app.mail_to("alice@acme.example").await;
    assert_eq!(
        mail.subject,
        "The password of your promio.connect account was changed"
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == AuditAction::PasswordChanged.name()
                && e.detail == "1 other sessions ended, 0 application tokens revoked"),
        "{audit:?}"
    );

    let third = app.new_browser();
    assert_eq!(app.login_in(&third, "ACME", "alice").await.status(), 401);
    let new_login = app.login("ACME", "alice", NEW_PASSWORD).await;
    assert_eq!(new_login.status(), 200);
}

#[tokio::test]
async fn wrong_current_passwords_count_like_failed_logins() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response =
            change_password(&app, "not the password at all", NEW_PASSWORD, NEW_PASSWORD).await;
        statuses.push(response.status().as_u16());
    }
    // The account's ladder applies: after a few failures the next attempt must wait, and the
    // right password does not get through while it waits.
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let waiting = change_password(&app, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(waiting.status(), 429);
    let other = app.new_browser();
    assert_eq!(app.login_in(&other, "ACME", "alice").await.status(), 429);
}
