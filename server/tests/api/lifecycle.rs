//! The data lifecycle with the moved clock: deactivated users deleted after their client's
//! retention (announced to the admins a week before), delete-now, the inactivity rule, and
//! housekeeping that leaves no row an anonymous visitor made once its time is over.

use crate::helpers::{START, TestApp, api_error};
use promio_app::api::{ApiError, Field, Problem, Role, UserPage, UserStatus};
use promio_server::domain::audit::AuditAction;
use promio_server::domain::{CompanyId, UserName};
use promio_server::idm::lifecycle;
use promio_server::idm::provisioning::ClientSettings;

const DAY: i64 = 86_400;

async fn admin_app() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user("ACME", "erika", Role::User).await;
    app.login_ok("ACME", "boss").await;
    app
}

async fn users(app: &TestApp) -> UserPage {
    let response = app
        .call(
            "users/list",
            &[("search", ""), ("status", ""), ("page", "1")],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn exists(app: &TestApp, company_id: &str, username: &str) -> bool {
    let client = app
        .core
        .store
        .client_by_company_id(&CompanyId::parse(company_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    app.core
        .store
        .user_by_name(&client.id, &UserName::parse(username).unwrap())
        .await
        .unwrap()
        .is_some()
}

async fn client_id(app: &TestApp, company_id: &str) -> String {
    let client = app
        .core
        .store
        .client_by_company_id(&CompanyId::parse(company_id).unwrap())
        .await
        .unwrap()
        .unwrap();
    client.id.as_str().to_owned()
}

async fn set_active(app: &TestApp, id: &str, active: bool) {
    let response = app
        .call(
            "users/set-active",
            &[("id", id), ("active", &active.to_string())],
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// When a user deactivated at `at` is due for deletion with the default retention.
fn due(app: &TestApp, at: i64) -> i64 {
    lifecycle::add_months(at, 6, &app.core.time_zone)
}

#[tokio::test]
async fn a_deactivated_user_is_announced_then_deleted_and_the_log_keeps_a_pseudonym() {
    let app = admin_app().await;
    let erika = app.user_id("ACME", "erika").await;
    // Erika leaves traces: a session from her address, a failed login, an email change.
    let browser = app.new_browser();
    assert_eq!(app.login_in(&browser, "ACME", "erika").await.status(), 200);
    assert_eq!(app.login("ACME", "erika", "wrong").await.status(), 401);
    app.login_ok("ACME", "boss").await;
    let response = app
        .call(
            "users/update",
            &[
                ("id", &erika),
                ("first_name", "Erika"),
                ("last_name", "Mustermann"),
                ("email", "erika.m@acme.example"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    set_active(&app, &erika, false).await;

    // User administration shows the day of deletion: six calendar months on.
    let listed = users(&app).await;
    let shown = listed.users.iter().find(|u| u.username == "erika").unwrap();
    assert_eq!(shown.status, UserStatus::Deactivated);
    assert_eq!(shown.deletion_date.as_deref(), Some("15 July 2027"));
    let boss = listed.users.iter().find(|u| u.username == "boss").unwrap();
    assert_eq!(boss.deletion_date, None);

    // A week before, one mail to the admins names who and when; nothing is deleted yet.
    let due = due(&app, START);
    app.clock.set(due - 7 * DAY + 3600);
    let report = app.housekeeping().await;
    assert_eq!(report.lifecycle.deletion_notices, 1, "{report:?}");
    assert_eq!(report.lifecycle.users_deleted, 0);
    assert!(exists(&app, "ACME", "erika").await);
    let notice = app.mail_to("boss@acme.example").await;
    assert!(
        notice.raw.contains("A deactivated user will be deleted"),
        "{}",
        notice.raw
    );
    assert!(
        notice
            .raw
            .contains("Erika Mustermann (erika): 15 July 2027")
    );
    // Announced once.
    assert_eq!(app.housekeeping().await.lifecycle.deletion_notices, 0);
    assert_eq!(app.mails_to("boss@acme.example"), 1);

    // A day after the date, the user is gone, with everything of theirs. Her sessions, links and
    // mails of six months ago would be gone by age anyway (that a deletion removes them is
    // checked right after one, in the next test); a failed login as her a moment before leaves a
    // counter that nothing but her deletion removes yet.
    app.clock.set(due + DAY);
    assert_eq!(app.login("ACME", "erika", "wrong").await.status(), 401);
    let counter = "throttle WHERE key = 'pw:acme:erika'";
    assert_eq!(app.count_rows(counter).await, 1);
    let report = app.housekeeping().await;
    assert_eq!(report.lifecycle.users_deleted, 1, "{report:?}");
    assert_eq!(report.deleted_from("users"), 1);
    assert!(!exists(&app, "ACME", "erika").await);
    assert_eq!(app.count_rows(counter).await, 0);

    // The log keeps its rows; nothing in them names her, her own addresses are gone.
    let pseudonym = lifecycle::pseudonym(&app.core, &erika);
    assert!(pseudonym.starts_with("deleted user ") && pseudonym.len() == 21);
    let rows = app.audit().await;
    let hers: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.subject_user_id.as_deref() == Some(&erika)
                || r.actor_user_id.as_deref() == Some(&erika)
        })
        .collect();
    assert!(hers.len() >= 5, "{hers:?}");
    for row in &rows {
        let detail = row.detail.to_lowercase();
        assert!(
            !detail.contains("erika") && !detail.contains("mustermann"),
            "{row:?}"
        );
    }
    assert!(
        hers.iter()
            .filter(|r| r.actor_user_id.as_deref() == Some(&erika))
            .all(|r| r.ip.is_none())
    );
    assert!(
        hers.iter()
            .any(|r| r.action == AuditAction::UserEmailChanged
                && r.detail == format!("{pseudonym} -> {pseudonym}"))
    );
    assert!(hers.iter().any(|r| r.action == AuditAction::UserDeleted
        && r.detail.starts_with(&pseudonym)
        && r.detail.contains("deactivated for more than 6 months")));
    // The log view names her by the pseudonym.
    app.login_ok("ACME", "boss").await;
    let page: promio_app::api::AuditPage = app
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
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].subject, pseudonym);

    // The user name is free again.
    let response = app
        .call(
            "users/create",
            &[
                ("first_name", "Erik"),
                ("last_name", "Neu"),
                ("email", "erik@acme.example"),
                ("username", "erika"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn deleting_a_user_at_once_removes_every_row_of_theirs_that_was_there_a_moment_before() {
    use promio_app::api::LoginOutcome;
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user("ACME", "erika", Role::User).await;
    let erika = app.user_id("ACME", "erika").await;
    // Erika is logged in and turns 2FA on (recovery codes; a mail tells her).
    app.login_ok("ACME", "erika").await;
    let (secret, _) = app.activate_2fa().await;
    // In another browser her password was right and the second factor is pending; a wrong code.
    let pending = app.new_browser();
    let outcome: LoginOutcome = app
        .login_in(&pending, "ACME", "erika")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    let right = [app.totp_code(&secret, 0), app.totp_code(&secret, -1)];
    let wrong = (0..)
        .map(|n| format!("{:06}", 123_456 + n))
        .find(|c| !right.contains(c))
        .unwrap();
    let response = pending
        .post(app.url("/api/2fa/login"))
        .form(&[("code", wrong.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A wrong password (a counter on her account), and a reset link with its mail.
    assert_eq!(app.login("ACME", "erika", "wrong").await.status(), 401);
    app.call(
        "forgot-password",
        &[("company_id", "ACME"), ("username", "erika")],
    )
    .await;
    app.core.background.idle().await;

    let theirs = [
        format!("sessions WHERE user_id = '{erika}'"),
        format!("login_challenges WHERE user_id = '{erika}'"),
        format!("recovery_codes WHERE user_id = '{erika}'"),
        format!("link_tokens WHERE user_id = '{erika}'"),
        format!("mail_outbox WHERE user_id = '{erika}'"),
        "throttle WHERE key = 'pw:acme:erika'".to_owned(),
        format!("throttle WHERE key = 'totp:{erika}'"),
        format!("throttle WHERE key = 'forgot-user:{erika}'"),
    ];
    for rows in &theirs {
        assert!(app.count_rows(rows).await > 0, "none before: {rows}");
    }
    // Deleted by the administrator, the clock where it was: nothing has aged out.
    let admin = app.new_browser();
    assert_eq!(app.login_in(&admin, "ACME", "boss").await.status(), 200);
    let response = admin
        .post(app.url("/api/users/delete"))
        .form(&[("id", erika.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(!exists(&app, "ACME", "erika").await);
    for rows in &theirs {
        assert_eq!(app.count_rows(rows).await, 0, "still there: {rows}");
    }
    assert!(
        app.me().await.is_none(),
        "her session ended with her account"
    );
}

#[tokio::test]
async fn a_user_reactivated_before_the_date_stays() {
    let app = admin_app().await;
    let erika = app.user_id("ACME", "erika").await;
    set_active(&app, &erika, false).await;
    let due = due(&app, START);
    app.clock.set(due - 7 * DAY + 3600);
    assert_eq!(app.housekeeping().await.lifecycle.deletion_notices, 1);
    app.login_ok("ACME", "boss").await;
    set_active(&app, &erika, true).await;
    app.clock.set(due + 30 * DAY);
    let report = app.housekeeping().await;
    assert_eq!(report.lifecycle.users_deleted, 0);
    assert!(exists(&app, "ACME", "erika").await);
    // Deactivated again, the count starts anew (from now, not from the first time).
    app.login_ok("ACME", "boss").await;
    set_active(&app, &erika, false).await;
    let listed = users(&app).await;
    let shown = listed.users.iter().find(|u| u.username == "erika").unwrap();
    assert_eq!(shown.deletion_date.as_deref(), Some("14 February 2028"));
    assert_eq!(app.housekeeping().await.lifecycle.users_deleted, 0);
}

#[tokio::test]
async fn the_retention_is_per_client_and_a_deletion_waits_a_week_after_its_notice() {
    let app = admin_app().await;
    let erika = app.user_id("ACME", "erika").await;
    set_active(&app, &erika, false).await;
    // Shortened to a month after the date has long passed: announced first, deleted a week later.
    app.clock.set(START + 90 * DAY);
    app.set_client(
        "ACME",
        ClientSettings {
            deletion_months: Some(1),
            ..Default::default()
        },
    )
    .await;
    let report = app.housekeeping().await;
    assert_eq!(
        (
            report.lifecycle.deletion_notices,
            report.lifecycle.users_deleted
        ),
        (1, 0)
    );
    app.clock.advance(6 * DAY);
    assert_eq!(app.housekeeping().await.lifecycle.users_deleted, 0);
    app.clock.advance(DAY);
    assert_eq!(app.housekeeping().await.lifecycle.users_deleted, 1);
    assert!(!exists(&app, "ACME", "erika").await);
}

#[tokio::test]
async fn an_admin_deletes_a_user_at_once_within_the_roles() {
    let app = admin_app().await;
    app.create_client("OTHER").await;
    app.create_user("OTHER", "stranger", Role::User).await;
    let erika = app.user_id("ACME", "erika").await;
    let boss = app.user_id("ACME", "boss").await;
    let stranger = app.user_id("OTHER", "stranger").await;

    // Not oneself, not another client's user, not an id that does not exist.
    let response = app.call("users/delete", &[("id", &boss)]).await;
    assert_eq!(response.status(), 403);
    let response = app.call("users/delete", &[("id", &stranger)]).await;
    assert_eq!(response.status(), 404);
    let response = app.call("users/delete", &[("id", "nope")]).await;
    assert_eq!(response.status(), 404);
    assert!(exists(&app, "OTHER", "stranger").await);

    // An active user with a session: deleted at once, the session ends with the account.
    let browser = app.new_browser();
    assert_eq!(app.login_in(&browser, "ACME", "erika").await.status(), 200);
    let response = app.call("users/delete", &[("id", &erika)]).await;
    assert_eq!(response.status(), 200);
    assert!(!exists(&app, "ACME", "erika").await);
    assert!(app.me_in(&browser).await.is_none());
    assert_eq!(
        app.login_in(&browser, "ACME", "erika").await.status(),
        401,
        "a deleted user cannot log in"
    );
    let deleted = app
        .audit()
        .await
        .into_iter()
        .find(|r| r.action == AuditAction::UserDeleted)
        .unwrap();
    assert_eq!(deleted.actor_user_id.as_deref(), Some(boss.as_str()));
    assert!(deleted.detail.ends_with("deleted by an administrator"));
    // Deleting again finds nobody.
    let response = app.call("users/delete", &[("id", &erika)]).await;
    assert_eq!(response.status(), 404);
    // Not logged in, not an admin: refused.
    let anonymous = app.new_browser();
    let response = anonymous
        .post(app.url("/api/users/delete"))
        .form(&[("id", &boss)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn sso_refusals_naming_the_address_are_pseudonymised_when_the_person_is_deleted() {
    use promio_server::domain::audit::{Event, Outcome};
    let app = admin_app().await;
    app.create_client("OTHER").await;
    let erika = app.user_id("ACME", "erika").await;
    let (acme, other) = (
        client_id(&app, "ACME").await,
        client_id(&app, "OTHER").await,
    );
    // What the SSO callback writes when the provider vouches for an address that has no account
    // (before hers was made, say) or lies outside the client's domains: no subject, the address.
    let refusals = [
        (
            &acme,
            Outcome::Failure,
            "no user with the email Erika@acme.example",
        ),
        (
            &acme,
            Outcome::Refused,
            "the email erika@acme.example is outside the client's SSO domains",
        ),
        (
            &acme,
            Outcome::Failure,
            "no user with the email derika@acme.example",
        ),
        (
            &other,
            Outcome::Failure,
            "no user with the email erika@acme.example",
        ),
    ];
    for (client, outcome, detail) in refusals {
        let event = Event::login(AuditAction::LoginSso, outcome, Some(client.as_str()), None)
            .detail(detail)
            .ip(Some("203.0.113.9"));
        promio_server::infra::audit::record(&app.core.store, event, app.core.clock.now())
            .await
            .unwrap();
    }

    let response = app.call("users/delete", &[("id", &erika)]).await;
    assert_eq!(response.status(), 200);
    let pseudonym = lifecycle::pseudonym(&app.core, &erika);
    let rows: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == AuditAction::LoginSso)
        .collect();
    let details: Vec<&str> = rows.iter().map(|r| r.detail.as_str()).collect();
    let hers = [
        format!("no user with the email {pseudonym}"),
        format!("the email {pseudonym} is outside the client's SSO domains"),
    ];
    for detail in &hers {
        assert!(
            details.contains(&detail.as_str()),
            "{detail:?} in {details:?}"
        );
    }
    // Another address, and another client's log, stay as they were; so does the address the
    // attempt came from.
    assert!(details.contains(&"no user with the email derika@acme.example"));
    assert!(details.contains(&"no user with the email erika@acme.example"));
    assert!(rows.iter().all(|r| r.ip.as_deref() == Some("203.0.113.9")));
}

#[tokio::test]
async fn only_operators_delete_operators() {
    let app = TestApp::spawn().await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.create_user("promio", "ops2", Role::Operator).await;
    app.create_user("promio", "helper", Role::Admin).await;
    let ops2 = app.user_id("promio", "ops2").await;
    app.login_ok("promio", "helper").await;
    let response = app.call("users/delete", &[("id", &ops2)]).await;
    assert_eq!(response.status(), 403);
    assert!(exists(&app, "promio", "ops2").await);
    app.login_ok("promio", "ops").await;
    let response = app.call("users/delete", &[("id", &ops2)]).await;
    assert_eq!(response.status(), 200);
    assert!(!exists(&app, "promio", "ops2").await);
}

#[tokio::test]
async fn operators_set_the_retention_and_the_inactivity_rule_within_their_bounds() {
    let app = TestApp::spawn().await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.login_ok("promio", "ops").await;
    let save = |deletion: &'static str, inactivity: &'static str| {
        let app = &app;
        async move {
            app.call(
                "clients/create",
                &[
                    ("company_id", "NEU"),
                    ("name", "Neu GmbH"),
                    ("registration_link_hours", "24"),
                    ("reset_link_hours", "24"),
                    ("deletion_months", deletion),
                    ("inactivity_months", inactivity),
                ],
            )
            .await
        }
    };
    for (deletion, inactivity, field, min, max) in [
        ("0", "", Field::DeletionMonths, 1, 24),
        ("25", "", Field::DeletionMonths, 1, 24),
        ("six", "", Field::DeletionMonths, 1, 24),
        ("6", "2", Field::InactivityMonths, 3, 36),
        ("6", "37", Field::InactivityMonths, 3, 36),
    ] {
        let response = save(deletion, inactivity).await;
        assert_eq!(response.status(), 400, "{deletion} / {inactivity}");
        assert_eq!(
            api_error(response).await,
            ApiError::Invalid {
                field,
                problem: Problem::OutOfRange { min, max }
            }
        );
    }
    // Nothing was made by the refused attempts.
    let found = app
        .core
        .store
        .client_by_company_id(&CompanyId::parse("NEU").unwrap())
        .await
        .unwrap();
    assert!(found.is_none());
    let response = save("12", "24").await;
    assert_eq!(response.status(), 200);
    let client: promio_app::api::ClientSummary = response.json().await.unwrap();
    assert_eq!(
        (client.deletion_months, client.inactivity_months),
        (12, Some(24))
    );
    // A client made without the fields gets the defaults: 6 months, never.
    let response = app
        .call(
            "clients/create",
            &[
                ("company_id", "ALT"),
                ("name", "Alt GmbH"),
                ("registration_link_hours", "24"),
                ("reset_link_hours", "24"),
            ],
        )
        .await;
    let client: promio_app::api::ClientSummary = response.json().await.unwrap();
    assert_eq!(
        (client.deletion_months, client.inactivity_months),
        (6, None)
    );
}

#[tokio::test]
async fn the_inactivity_rule_warns_14_days_before_and_a_login_keeps_the_account() {
    let app = admin_app().await;
    app.create_user("ACME", "carl", Role::User).await;
    app.set_client(
        "ACME",
        ClientSettings {
            inactivity_months: Some(Some(3)),
            ..Default::default()
        },
    )
    .await;
    // Without the rule nothing happened so far; with it, nothing before its time.
    let due = lifecycle::add_months(START, 3, &app.core.time_zone);
    app.clock.set(due - 20 * DAY);
    app.login_ok("ACME", "boss").await;
    let report = app.housekeeping().await;
    assert_eq!(report.lifecycle.inactivity_notices, 0);

    // 14 days before: erika and carl are warned; boss logged in lately and is not.
    app.clock.set(due - 14 * DAY + 3600);
    let report = app.housekeeping().await;
    assert_eq!(report.lifecycle.inactivity_notices, 2, "{report:?}");
    let warning = app.mail_to("erika@acme.example").await;
    assert!(
        warning.raw.contains("will be deactivated on 15 April 2027"),
        "{}",
        warning.raw
    );
    assert!(warning.raw.contains("log in once"));
    assert_eq!(app.mails_to("boss@acme.example"), 0);
    assert_eq!(app.housekeeping().await.lifecycle.inactivity_notices, 0);

    // Carl logs in once; erika does not.
    let carl = app.new_browser();
    assert_eq!(app.login_in(&carl, "ACME", "carl").await.status(), 200);
    app.clock.set(due - 13 * DAY);
    assert_eq!(app.housekeeping().await.lifecycle.users_deactivated, 0);
    app.clock.set(due + 3600);
    let report = app.housekeeping().await;
    assert_eq!(report.lifecycle.users_deactivated, 1, "{report:?}");

    app.login_ok("ACME", "boss").await;
    let listed = users(&app).await;
    let status = |name: &str| {
        listed
            .users
            .iter()
            .find(|u| u.username == name)
            .map(|u| u.status)
            .unwrap()
    };
    assert_eq!(status("erika"), UserStatus::Deactivated);
    assert_eq!(status("carl"), UserStatus::Active);
    assert_eq!(status("boss"), UserStatus::Active);
    let erika = app.user_id("ACME", "erika").await;
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::UserDeactivated
                && r.subject_user_id.as_deref() == Some(&erika)
                && r.detail == "no login for 3 months")
    );
    // Deactivated for inactivity, the count to deletion starts.
    let shown = listed.users.iter().find(|u| u.username == "erika").unwrap();
    assert!(shown.deletion_date.is_some());
}

#[tokio::test]
async fn a_spray_of_random_user_names_leaves_no_rows_once_their_windows_passed() {
    use promio_server::store::login::LoginKeys;
    let app = TestApp::with_user("ACME", "victim").await;
    let company = CompanyId::parse("ACME").unwrap();
    let unknown = CompanyId::parse("NOBODY").unwrap();
    let before = app.count_rows("throttle").await;
    // 10,000 names counted as the login counts them before it hashes (half of them at a company
    // that does not exist), and a few through the whole login.
    for i in 0..10_000 {
        let name = UserName::parse(&format!("guess{i}-{}", uuid::Uuid::new_v4().simple())).unwrap();
        let company = if i % 2 == 0 { &company } else { &unknown };
        let account_key = promio_server::idm::throttle::account_key(company, &name);
        let keys = LoginKeys {
            company_id: company,
            username: &name,
            ip_key: None,
            account_key: &account_key,
            ip_failures: promio_server::idm::throttle::IP_FAILURES,
            reset_after: promio_server::idm::throttle::ACCOUNT_RESET_AFTER,
        };
        app.core
            .store
            .login_lookup(&keys, START + i / 100)
            .await
            .unwrap();
    }
    for i in 0..5 {
        let response = app.login("ACME", &format!("nobody{i}"), "wrong").await;
        assert_eq!(response.status(), 401);
    }
    assert!(app.count_rows("throttle").await >= before + 10_005);
    // A locked password counter stays while its account exists; one of a name nobody has goes.
    for (key, name) in [("pw:acme:victim", "victim"), ("pw:acme:ghost", "ghost")] {
        sqlx::query(
            "INSERT INTO throttle (key, failures, window_start, last_at, blocked_until, username)
             VALUES ($1, 100, $2, $2, $2, $3)",
        )
        .bind(key)
        .bind(START)
        .bind(name)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    }

    // The victim's own session, last used an hour on, and a pending second factor of theirs,
    // valid for two hours: within their time at the first pass below, over at the second.
    let victim = app.user_id("ACME", "victim").await;
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at)
         VALUES ('victim-session', $1, $2, $3)",
    )
    .bind(&victim)
    .bind(START)
    .bind(START + 3600)
    .execute(app.core.store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO login_challenges (token_hash, user_id, kind, created_at, expires_at)
         VALUES ('victim-pending', $1, 'totp', $2, $3)",
    )
    .bind(&victim)
    .bind(START)
    .bind(START + 2 * 3600)
    .execute(app.core.store.pool())
    .await
    .unwrap();
    assert_eq!(app.count_rows("sessions").await, 1);
    assert_eq!(app.count_rows("login_challenges").await, 1);

    // Within the windows nothing goes.
    app.clock.set(START + 3600);
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("throttle"), 0, "{report:?}");
    assert_eq!(report.deleted_from("sessions"), 0);
    assert_eq!(report.deleted_from("login_challenges"), 0);

    app.clock.set(START + 100 + DAY + 1);
    let report = app.housekeeping().await;
    assert!(report.deleted_from("throttle") >= 10_006, "{report:?}");
    assert_eq!(report.deleted_from("sessions"), 1);
    assert_eq!(report.deleted_from("login_challenges"), 1);
    assert_eq!(app.count_rows("throttle").await, 1);
    assert_eq!(
        app.count_rows("throttle WHERE key = 'pw:acme:victim'")
            .await,
        1
    );
    assert_eq!(app.count_rows("login_challenges").await, 0);
    assert_eq!(app.count_rows("sessions").await, 0);

    // /metrics reports what was deleted.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("promio_housekeeping_deleted_total{table=\"throttle\"}"))
        .unwrap();
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 10_006, "{line}");
    assert!(metrics.contains("promio_housekeeping_passes_total 2"));
}

#[tokio::test]
async fn housekeeping_deletes_what_is_over_and_keeps_what_is_not() {
    let app = TestApp::with_user("ACME", "alice").await;
    let alice = app.user_id("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    // A reset link and its mail, sent.
    let response = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "alice")],
        )
        .await;
    assert_eq!(response.status(), 200);
    app.mail_to("alice@acme.example").await;
    // An old audit row.
    sqlx::query(
        "INSERT INTO audit_events (id, created_at, action, outcome, detail)
         VALUES ('old', $1, 'logout', 'success', '')",
    )
    .bind(START - 731 * DAY)
    .execute(app.core.store.pool())
    .await
    .unwrap();
    // A mail that could never be sent.
    sqlx::query(
        "INSERT INTO mail_outbox (id, created_at, recipient, subject, body_text, body_html, kind,
             next_attempt_at, attempts)
         VALUES ('stuck', $1, 'x@acme.example', 's', '', '', 'registration', $1, 30)",
    )
    .bind(START)
    .execute(app.core.store.pool())
    .await
    .unwrap();

    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("audit_events"), 1, "{report:?}");
    assert_eq!(report.deleted_from("sessions"), 0);
    assert_eq!(report.deleted_from("link_tokens"), 0);
    assert_eq!(report.deleted_from("mail_outbox"), 0);

    // Two days on: the session is over (24 h at most), the link expired a day ago but stays a
    // week so that its page can say so; the mail stays a week.
    app.clock.set(START + 2 * DAY);
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("sessions"), 1, "{report:?}");
    assert_eq!(report.deleted_from("link_tokens"), 0);
    assert_eq!(report.deleted_from("mail_outbox"), 0);
    app.clock.set(START + 9 * DAY);
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("link_tokens"), 1, "{report:?}");
    // The sent mails (the reset mail) go after a week, the unsent one after 30 days.
    assert!(report.deleted_from("mail_outbox") >= 1);
    assert_eq!(app.count_rows("mail_outbox WHERE id = 'stuck'").await, 1);
    app.clock.set(START + 31 * DAY);
    app.housekeeping().await;
    assert_eq!(app.count_rows("mail_outbox").await, 0);
    // Alice herself stays: she is active.
    assert!(exists(&app, "ACME", "alice").await);
    assert!(
        app.count_rows(&format!("audit_events WHERE subject_user_id = '{alice}'"))
            .await
            > 0
    );
}

#[tokio::test]
async fn two_instances_running_housekeeping_at_once_delete_each_row_once_and_logins_go_on() {
    let app = TestApp::with_user("ACME", "alice").await;
    let second = app.second_instance().await;
    // 1,200 sessions long over and 1,200 counters whose window passed: several batches each.
    let alice = app.user_id("ACME", "alice").await;
    let mut tx = app.core.store.pool().begin().await.unwrap();
    for i in 0..1_200 {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(format!("old-session-{i}"))
        .bind(&alice)
        .bind(START - 10 * DAY)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO throttle (key, failures, window_start, last_at) VALUES ($1, 1, $2, $2)",
        )
        .bind(format!("pw:acme:old{i}"))
        .bind(START - 10 * DAY)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let first = app.core.clone();
    let one = tokio::spawn(async move {
        promio_server::idm::housekeeping::run_once(&first, "instance-1")
            .await
            .unwrap()
    });
    let two = tokio::spawn(async move {
        promio_server::idm::housekeeping::run_once(&second, "instance-2")
            .await
            .unwrap()
    });
    // Logins go on meanwhile.
    for _ in 0..3 {
        let browser = app.new_browser();
        assert_eq!(app.login_in(&browser, "ACME", "alice").await.status(), 200);
    }
    let reports: Vec<_> = [one.await.unwrap(), two.await.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    // Exactly one instance got the lease and ran a pass. (Had both run, splitting the rows
    // between them, the sums below would add up all the same.)
    assert_eq!(reports.len(), 1, "{reports:?}");
    let sessions: u64 = reports.iter().map(|r| r.deleted_from("sessions")).sum();
    let throttle: u64 = reports.iter().map(|r| r.deleted_from("throttle")).sum();
    assert_eq!((sessions, throttle), (1_200, 1_200), "{reports:?}");
    // The three new sessions stay.
    assert_eq!(app.count_rows("sessions").await, 3);
    // While one instance holds the lease, another gets nothing to do.
    assert!(
        app.core
            .store
            .take_lease("housekeeping", "instance-1", START, 300)
            .await
            .unwrap()
    );
    assert!(
        promio_server::idm::housekeeping::run_once(&app.core, "instance-3")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_backup_taken_under_logins_restores_to_a_database_the_server_starts_on() {
    let app = TestApp::with_user("ACME", "alice").await;
    let dir = std::env::temp_dir().join(format!("promio-backup-{}", uuid::Uuid::new_v4().simple()));
    let file = dir.join("copy.db");
    if app.core.store.dialect() == promio_server::store::Dialect::Postgres {
        // PostgreSQL is backed up with its own tools; the command says so.
        let err = promio_server::store::backup::write(&app.core.store, &file)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("pg_dump"), "{err}");
        return;
    }
    // Logins run while the copy is taken.
    let logins = {
        let url = app.url("/api/login");
        tokio::spawn(async move {
            let browser = reqwest::Client::new();
            let mut ok = 0;
            for _ in 0..10 {
                let response = browser
                    .post(&url)
                    .form(&[
                        ("company_id", "ACME"),
                        ("username", "alice"),
                        ("password", crate::helpers::PASSWORD),
                    ])
                    .send()
                    .await
                    .unwrap();
                ok += usize::from(response.status() == 200);
            }
            ok
        })
    };
    promio_server::store::backup::write(&app.core.store, &file)
        .await
        .unwrap();
    assert_eq!(logins.await.unwrap(), 10);
    // A second copy to the same file is refused rather than overwriting it.
    assert!(
        promio_server::store::backup::write(&app.core.store, &file)
            .await
            .is_err()
    );

    // A server starts on the copy, and alice logs in there.
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let restored = TestApp::spawn_with(&[("DATABASE_URL", &url)]).await;
    restored.login_ok("ACME", "alice").await;
    assert!(restored.count_rows("audit_events").await > 0);
    drop(restored);
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[tokio::test]
async fn a_backup_is_readable_by_its_owner_alone_and_never_written_through_a_symlink() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::with_user("ACME", "alice").await;
    let dir = std::env::temp_dir().join(format!("promio-backup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    if app.core.store.dialect() == promio_server::store::Dialect::Postgres {
        // PostgreSQL is backed up with its own tools: nothing is written, not even an empty file.
        let file = dir.join("copy.db");
        let err = promio_server::store::backup::write(&app.core.store, &file)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("pg_dump"), "{err}");
        assert!(!file.exists());
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }

    // It holds every password hash: with the usual umask (022) a file would be made 0644.
    let file = dir.join("copy.db");
    promio_server::store::backup::write(&app.core.store, &file)
        .await
        .unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "group or others may read the copy: {mode:o}"
    );
    let head = std::fs::read(&file).unwrap();
    assert!(
        head.starts_with(b"SQLite format 3\0"),
        "the copy is a database"
    );

    // A dangling symlink where the copy should go is refused; nothing appears at its target.
    let target = dir.join("elsewhere.db");
    let link = dir.join("link.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = promio_server::store::backup::write(&app.core.store, &link)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exists already"), "{err}");
    assert!(!target.exists(), "the copy was written through the symlink");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink is left as it was"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn operators_delete_users_of_any_client_and_admins_only_their_own() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "erika", Role::User).await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.create_user("promio", "helper", Role::Admin).await;
    let erika = app.user_id("ACME", "erika").await;
    // An administrator of the platform client is not an operator: another client's user is
    // not theirs.
    app.login_ok("promio", "helper").await;
    let response = app.call("users/delete", &[("id", &erika)]).await;
    assert_eq!(response.status(), 404);
    app.login_ok("promio", "ops").await;
    let response = app.call("users/delete", &[("id", &erika)]).await;
    assert_eq!(response.status(), 200);
    assert!(!exists(&app, "ACME", "erika").await);
    let deleted = app
        .audit()
        .await
        .into_iter()
        .find(|r| r.action == AuditAction::UserDeleted)
        .unwrap();
    let acme = app
        .core
        .store
        .client_by_company_id(&CompanyId::parse("ACME").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.client_id.as_deref(), Some(acme.id.as_str()));
}

#[tokio::test]
async fn a_longer_retention_after_the_notice_announces_again_when_due() {
    let app = admin_app().await;
    let erika = app.user_id("ACME", "erika").await;
    set_active(&app, &erika, false).await;
    // Deactivating again changes nothing (no second notice, the same date).
    set_active(&app, &erika, false).await;
    let due = due(&app, START);
    app.clock.set(due - 7 * DAY + 3600);
    assert_eq!(app.housekeeping().await.lifecycle.deletion_notices, 1);
    app.deliver().await;
    // Twelve months now: not deleted at the old date, and announced again a week before the new.
    app.set_client(
        "ACME",
        ClientSettings {
            deletion_months: Some(12),
            ..Default::default()
        },
    )
    .await;
    app.clock.set(due + DAY);
    let report = app.housekeeping().await;
    assert_eq!(
        (
            report.lifecycle.users_deleted,
            report.lifecycle.deletion_notices
        ),
        (0, 0)
    );
    let later = lifecycle::add_months(START, 12, &app.core.time_zone);
    app.clock.set(later - 7 * DAY + 3600);
    assert_eq!(app.housekeeping().await.lifecycle.deletion_notices, 1);
    app.deliver().await;
    assert_eq!(app.mails_to("boss@acme.example"), 2);
    app.clock.set(later + DAY);
    assert_eq!(app.housekeeping().await.lifecycle.users_deleted, 1);
}

/// Who holds the housekeeping lease (whether or not it has run out).
async fn lease_holder(app: &TestApp) -> Option<String> {
    use sqlx::Row;
    sqlx::query("SELECT holder FROM leases WHERE name = 'housekeeping'")
        .fetch_one(app.core.store.pool())
        .await
        .unwrap()
        .get::<Option<String>, _>("holder")
}

#[tokio::test]
async fn a_pass_stops_when_another_instance_took_the_lease() {
    use promio_server::idm::housekeeping::{BATCH, run_once};
    let app = TestApp::spawn().await;
    // Counters long over, twenty batches of them: the pass takes a while.
    let rows = 20 * BATCH;
    let mut tx = app.core.store.pool().begin().await.unwrap();
    for i in 0..rows {
        sqlx::query(
            "INSERT INTO throttle (key, failures, window_start, last_at) VALUES ($1, 1, $2, $2)",
        )
        .bind(format!("pw:acme:old{i}"))
        .bind(START - 10 * DAY)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let core = app.core.clone();
    let pass = tokio::spawn(async move { run_once(&core, "mine").await });
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while lease_holder(&app).await.as_deref() != Some("mine") {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the pass took the lease");
    // Meanwhile its lease ran out (as when a pass hangs) and another instance took it, until
    // ten minutes on.
    sqlx::query("UPDATE leases SET holder = 'other', until = $1 WHERE name = 'housekeeping'")
        .bind(START + 600)
        .execute(app.core.store.pool())
        .await
        .unwrap();

    // The pass finds out at its next renewal and stops with work left; the lease stays the
    // other instance's.
    let stopped = pass.await.unwrap();
    assert!(stopped.is_err(), "the pass went on: {stopped:?}");
    let left = app.count_rows("throttle").await;
    assert!(left > 0, "the pass had finished before the lease was taken");
    assert_eq!(lease_holder(&app).await.as_deref(), Some("other"));
    // While the other holds it, this instance runs no pass.
    assert!(run_once(&app.core, "mine").await.unwrap().is_none());
    assert_eq!(app.count_rows("throttle").await, left);
    // Once the other's lease has run out, the next pass does the rest.
    app.clock.set(START + 601);
    let report = run_once(&app.core, "mine")
        .await
        .unwrap()
        .expect("the lease is free again");
    assert_eq!(
        report.deleted_from("throttle"),
        u64::try_from(left).unwrap()
    );
    assert_eq!(app.count_rows("throttle").await, 0);
}

#[tokio::test]
async fn housekeeping_clears_sso_flows_passkey_ceremonies_and_used_recovery_codes() {
    use promio_server::domain::clock::Clock;
    let (app, _, codes) = TestApp::with_2fa("ACME", "alice").await;
    // A recovery code used now, in the second step of a login; nine are left.
    let response = app.login("ACME", "alice", crate::helpers::PASSWORD).await;
    assert_eq!(response.status(), 200);
    let response = app.call("2fa/login", &[("code", codes[0].as_str())]).await;
    assert_eq!(response.status(), 200);
    let (used, unused) = (
        "recovery_codes WHERE used_at IS NOT NULL",
        "recovery_codes WHERE used_at IS NULL",
    );
    assert_eq!(app.count_rows(used).await, 1);
    assert_eq!(app.count_rows(unused).await, 9);
    // SSO round trips and passkey ceremonies: one each past its time, one each begun now.
    let acme = app
        .core
        .store
        .client_by_company_id(&CompanyId::parse("ACME").unwrap())
        .await
        .unwrap()
        .unwrap();
    let now = app.clock.now();
    let flow_ttl = promio_server::idm::sso::FLOW_TTL_SECS;
    for (id, created) in [("flow-over", now - flow_ttl - 1), ("flow-fresh", now)] {
        sqlx::query(
            "INSERT INTO sso_flows (id_hash, client_id, issuer, state, nonce, pkce_verifier, email,
                 created_at)
             VALUES ($1, $2, 'https://idp.example', 'state', 'nonce', 'verifier', '', $3)",
        )
        .bind(id)
        .bind(acme.id.as_str())
        .bind(created)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    }
    for (id, expires) in [("ceremony-over", now - 1), ("ceremony-fresh", now + 300)] {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, kind, state, created_at, expires_at)
             VALUES ($1, 'authentication', '{}', $2, $3)",
        )
        .bind(id)
        .bind(expires - 300)
        .bind(expires)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    }

    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("sso_flows"), 1, "{report:?}");
    assert_eq!(report.deleted_from("webauthn_ceremonies"), 1);
    assert_eq!(
        app.count_rows("sso_flows WHERE id_hash = 'flow-fresh'")
            .await,
        1
    );
    assert_eq!(
        app.count_rows("webauthn_ceremonies WHERE id_hash = 'ceremony-fresh'")
            .await,
        1
    );
    // A used code stays a day (a check running at the same moment still sees it used).
    assert_eq!(report.deleted_from("recovery_codes"), 0);
    assert_eq!(app.count_rows("recovery_codes").await, 10);

    app.clock.advance(DAY + 1);
    let report = app.housekeeping().await;
    assert_eq!(report.deleted_from("recovery_codes"), 1, "{report:?}");
    assert_eq!(report.deleted_from("sso_flows"), 1);
    assert_eq!(report.deleted_from("webauthn_ceremonies"), 1);
    assert_eq!(app.count_rows("sso_flows").await, 0);
    assert_eq!(app.count_rows("webauthn_ceremonies").await, 0);
    // The unused codes stay: they are alice's way in without her phone.
    assert_eq!(app.count_rows(unused).await, 9);
    assert_eq!(app.count_rows("recovery_codes").await, 9);
}

#[tokio::test]
async fn one_clients_failing_lifecycle_stops_neither_the_others_nor_the_clean_ups() {
    // ACME: erika deactivated now, so her deletion is announced to boss in six months.
    let app = admin_app().await;
    let erika = app.user_id("ACME", "erika").await;
    set_active(&app, &erika, false).await;
    // AAA, first in the order of clients: a deactivated user whose stored role no version
    // knows, so that reading the users due for a notice fails for AAA.
    app.create_client("AAA").await;
    app.create_user("AAA", "zed", Role::User).await;
    let zed = app.user_id("AAA", "zed").await;
    sqlx::query(
        "UPDATE users SET role = 'wizard', status = 'deactivated', deactivated_at = $2
         WHERE id = $1",
    )
    .bind(&zed)
    .bind(START)
    .execute(app.core.store.pool())
    .await
    .unwrap();
    // Boss's session (begun at START) is long over by the time of the notice.
    assert_eq!(app.count_rows("sessions").await, 1);

    app.clock.set(due(&app, START) - 7 * DAY + 3600);
    let report = app.housekeeping().await;
    // AAA's failure is logged; ACME's lifecycle runs after it, and so do the clean-ups.
    assert_eq!(report.lifecycle.deletion_notices, 1, "{report:?}");
    assert!(
        app.mail_to("boss@acme.example")
            .await
            .raw
            .contains("A deactivated user will be deleted")
    );
    assert_eq!(report.deleted_from("sessions"), 1);
    assert_eq!(app.count_rows("sessions").await, 0);
    // Nothing of AAA's was done.
    let unannounced = format!("users WHERE id = '{zed}' AND deletion_warned_at IS NULL");
    assert_eq!(app.count_rows(&unannounced).await, 1);
}

/// How many .eml files in `dir` are addressed to `address`.
fn mail_files_to(dir: &std::path::Path, address: &str) -> usize {
    let to = format!("<{address}>");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("eml"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains(&to))
        .count()
}

#[tokio::test]
async fn without_smtp_the_mail_files_go_after_a_week_and_with_their_user_at_once() {
    use promio_server::idm::housekeeping::run_once;
    use promio_server::infra::mail::transport::Folder;
    use std::sync::Arc;
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    // An instance without SMTP_URL: it writes each mail, live link and all, as an .eml file.
    let dir = std::env::temp_dir().join(format!("promio-outbox-{}", uuid::Uuid::new_v4().simple()));
    let clock = Arc::new(app.clock.clone());
    let folder = Folder::new(dir.clone(), clock).unwrap();
    let instance = app.instance_with(Arc::new(folder)).await;
    // Registration mails to erika and marek, written at START.
    app.create_user_with("ACME", "erika", Role::User, None)
        .await;
    app.create_user_with("ACME", "marek", Role::User, None)
        .await;
    assert_eq!(instance.mailer.deliver_due().await.unwrap().sent, 2);
    assert_eq!(mail_files_to(&dir, "erika@acme.example"), 1);
    assert_eq!(mail_files_to(&dir, "marek@acme.example"), 1);

    // A day later erika is deleted: her file goes with her, at once; marek's stays.
    app.clock.advance(DAY);
    let acme = instance
        .store
        .client_by_company_id(&CompanyId::parse("ACME").unwrap())
        .await
        .unwrap()
        .unwrap();
    let erika = instance
        .store
        .user_by_name(&acme.id, &UserName::parse("erika").unwrap())
        .await
        .unwrap()
        .unwrap();
    let by = lifecycle::DeletedBy::CommandLine;
    assert!(
        lifecycle::delete_user(&instance, &acme, &erika, by)
            .await
            .unwrap()
    );
    assert_eq!(mail_files_to(&dir, "erika@acme.example"), 0);
    assert_eq!(mail_files_to(&dir, "marek@acme.example"), 1);

    // Carla's mail is written six days after marek's; a file that is not a mail lies beside them.
    app.clock.set(START + 6 * DAY);
    app.create_user_with("ACME", "carla", Role::User, None)
        .await;
    assert_eq!(instance.mailer.deliver_due().await.unwrap().sent, 1);
    std::fs::write(dir.join("notes.txt"), "not a mail").unwrap();

    // Just under a week after marek's mail, housekeeping leaves it; just over, it goes.
    app.clock.set(START + 7 * DAY - 1);
    let report = run_once(&instance, "folder").await.unwrap().unwrap();
    assert_eq!(report.mail_files, 0, "{report:?}");
    assert_eq!(mail_files_to(&dir, "marek@acme.example"), 1);
    app.clock.set(START + 7 * DAY + 1);
    let report = run_once(&instance, "folder").await.unwrap().unwrap();
    assert_eq!(report.mail_files, 1, "{report:?}");
    assert_eq!(mail_files_to(&dir, "marek@acme.example"), 0);
    assert_eq!(mail_files_to(&dir, "carla@acme.example"), 1);
    assert!(dir.join("notes.txt").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
