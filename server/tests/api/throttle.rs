//! Throttling: the steps of the wait, the reset on success, separation of accounts, clients, IPs
//! and factors, the 100-failure cap, the mail to the user, and the forgot-password caps.

use crate::helpers::{PASSWORD, TestApp, api_error};
use promio_app::api::{ApiError, Role, ThrottledAccount};

const WRONG: &str = "certainly not the password";

async fn attempt(app: &TestApp, company: &str, user: &str, password: &str) -> (u16, ApiError) {
    let response = app.login(company, user, password).await;
    let status = response.status().as_u16();
    if status == 200 {
        return (200, ApiError::NotFound);
    }
    (status, api_error(response).await)
}

fn wait(e: &ApiError) -> Option<u64> {
    match e {
        ApiError::LoginFailed { retry_after_secs } => *retry_after_secs,
        _ => None,
    }
}

#[tokio::test]
async fn failures_make_the_next_attempt_wait_longer_step_by_step() {
    let app = TestApp::with_user("ACME", "alice").await;
    let mut waits = Vec::new();
    for _ in 0..7 {
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        let w = wait(&e);
        waits.push(w);
        // An attempt before the wait is over is refused early, without checking the password.
        if let Some(w) = w {
            let before = app.core.auth.hasher.verifications();
            let (status, early) = attempt(&app, "ACME", "alice", PASSWORD).await;
            assert_eq!(status, 429);
            assert_eq!(
                wait(&early),
                Some(w),
                "the same wait, even with the right password"
            );
            assert_eq!(
                app.core.auth.hasher.verifications(),
                before,
                "no hashing while waiting"
            );
            app.clock.advance(w as i64);
        }
    }
    assert_eq!(
        waits,
        [
            None,
            Some(1),
            Some(3),
            Some(5),
            Some(10),
            Some(30),
            Some(30)
        ]
    );
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn a_correct_password_resets_the_counter() {
    let app = TestApp::with_user("ACME", "alice").await;
    for _ in 0..3 {
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        app.clock.advance(wait(&e).unwrap_or(0) as i64);
    }
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);
    let (status, e) = attempt(&app, "ACME", "alice", WRONG).await;
    assert_eq!((status, wait(&e)), (401, None), "counting starts again");
}

#[tokio::test]
async fn unknown_accounts_wait_exactly_like_existing_ones() {
    let app = TestApp::with_user("ACME", "alice").await;
    let mut real = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..4 {
        real.push(attempt(&app, "ACME", "alice", WRONG).await);
        unknown.push(attempt(&app, "ACME", "nobody", WRONG).await);
        unknown.push(attempt(&app, "NOPE", "nobody", WRONG).await);
        app.clock.advance(10);
    }
    for (i, r) in real.iter().enumerate() {
        assert_eq!(&unknown[2 * i], r);
        assert_eq!(&unknown[2 * i + 1], r);
    }
}

#[tokio::test]
async fn bob_at_one_client_is_not_slowed_by_failures_against_bob_at_another() {
    let app = TestApp::spawn().await;
    for c in ["ALPHA", "BETA"] {
        app.create_client(c).await;
        app.create_user(c, "bob", Role::User).await;
    }
    for _ in 0..5 {
        attempt(&app, "ALPHA", "bob", WRONG).await;
    }
    assert_eq!(attempt(&app, "ALPHA", "bob", PASSWORD).await.0, 429);
    assert_eq!(attempt(&app, "BETA", "bob", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn a_dozen_failures_from_one_address_do_not_stop_another_accounts_login() {
    let app = TestApp::with_user("ACME", "alice").await;
    for i in 0..12 {
        attempt(&app, "ACME", &format!("guess{i}"), WRONG).await;
    }
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn many_failures_from_one_address_make_it_wait() {
    let app = TestApp::with_user("ACME", "alice").await;
    for i in 0..100 {
        let (status, _) = attempt(&app, "ACME", &format!("guess{i}"), WRONG).await;
        assert_eq!(status, 401, "attempt {i} on a fresh account");
    }
    let (status, e) = attempt(&app, "ACME", "alice", PASSWORD).await;
    assert_eq!(
        status, 429,
        "the address waits until its 15-minute window ends"
    );
    assert!(wait(&e).unwrap() <= 15 * 60);
    // Attempts refused for the address are not counted on the account.
    for _ in 0..3 {
        assert_eq!(attempt(&app, "ACME", "alice", WRONG).await.0, 429);
    }
    let counted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM throttle WHERE key LIKE 'pw:%alice'")
            .fetch_one(app.core.store.pool())
            .await
            .unwrap();
    assert_eq!(counted, 0);
    app.clock.advance(15 * 60);
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn after_100_failures_an_account_waits_an_hour() {
    let app = TestApp::with_user("ACME", "alice").await;
    attempt(&app, "ACME", "alice", WRONG).await;
    sqlx::query("UPDATE throttle SET failures = 99 WHERE key LIKE 'pw:%'")
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
    assert_eq!(wait(&e), Some(3600));
}

#[tokio::test]
async fn a_scripted_guesser_gets_at_most_125_tries_in_an_hour() {
    let app = TestApp::with_user("ACME", "alice").await;
    let start = crate::helpers::START;
    let mut processed = 0;
    for _ in 0..2000 {
        use promio_server::clock::Clock;
        if app.clock.now() >= start + 3600 {
            break;
        }
        let before = app.core.auth.hasher.verifications();
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        if app.core.auth.hasher.verifications() > before {
            processed += 1;
        }
        app.clock.advance(wait(&e).unwrap_or(1) as i64);
    }
    assert!(processed <= 125, "{processed} guesses were checked");
    assert!(
        processed >= 100,
        "the schedule is not stricter than documented ({processed})"
    );
}

#[tokio::test]
async fn the_user_gets_one_mail_a_day_after_ten_failures_in_a_row() {
    let app = TestApp::with_user("ACME", "alice").await;
    for _ in 0..12 {
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        app.clock.advance(wait(&e).unwrap_or(0) as i64);
    }
    let mail = app.mail_to("alice@acme.example").await;
    assert_eq!(mail.subject, "Failed logins to your promio.connect account");
    assert!(mail.raw.contains("10 times in a row"));
    assert_eq!(app.mails_to("alice@"), 1, "one mail, not one per failure");
}

#[tokio::test]
async fn second_factor_failures_count_apart_from_password_failures() {
    let app = TestApp::with_user("ACME", "alice").await;
    for _ in 0..3 {
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        app.clock.advance(wait(&e).unwrap_or(0) as i64);
    }
    let rows: Vec<String> = {
        use sqlx::Row;
        sqlx::query("SELECT key FROM throttle")
            .fetch_all(app.core.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("key"))
            .collect()
    };
    assert!(rows.iter().any(|k| k.starts_with("pw:acme:alice")));
    assert!(rows.iter().all(|k| !k.starts_with("totp:")));
}

#[tokio::test]
async fn an_admin_sees_throttled_accounts_and_clears_them() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    for _ in 0..4 {
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        app.clock.advance(wait(&e).unwrap_or(0) as i64);
    }

    // boss logs in from another address? The same one is fine: a few failures do not stop it.
    app.clock.advance(60);
    app.login_ok("ACME", "boss").await;
    let list: Vec<ThrottledAccount> = app.call("users/throttled", &[]).await.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].username.as_str(), list[0].failures), ("alice", 4));
    assert_eq!(
        app.call("users/clear-throttle", &[("username", "alice")])
            .await
            .status(),
        200
    );
    let list: Vec<ThrottledAccount> = app.call("users/throttled", &[]).await.json().await.unwrap();
    assert!(list.is_empty());
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == "login.throttle_cleared")
    );
}

#[tokio::test]
async fn forgot_password_requests_are_capped_per_address() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    for i in 0..25 {
        app.create_user("ACME", &format!("u{i}"), Role::User).await;
    }
    for i in 0..25 {
        let response = app
            .call(
                "forgot-password",
                &[("company_id", "ACME"), ("username", &format!("u{i}"))],
            )
            .await;
        assert_eq!(response.status(), 200, "the same answer beyond the cap");
    }
    app.deliver().await;
    let resets = app
        .mails
        .mails()
        .iter()
        .filter(|m| m.subject.starts_with("Reset"))
        .count();
    assert_eq!(resets, 20);
}
