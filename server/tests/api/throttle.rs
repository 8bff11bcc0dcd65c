//! Throttling: the steps of the wait, the reset on success, separation of accounts, clients, IPs
//! and factors, the 100-failure cap, the mail to the user, and the forgot-password caps.

use crate::helpers::{PASSWORD, TestApp, api_error};
use promio_app::api::{ApiError, LoginOutcome, Role, ThrottledAccount};
use promio_server::domain::audit::AuditAction;
use promio_server::infra::totp;

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
            let before = app.core.hasher.verifications();
            let (status, early) = attempt(&app, "ACME", "alice", PASSWORD).await;
            assert_eq!(status, 429);
            assert_eq!(
                wait(&early),
                Some(w),
                "the same wait, even with the right password"
            );
            assert_eq!(
                app.core.hasher.verifications(),
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
async fn many_failures_from_one_address_make_it_wait_step_by_step() {
    let app = TestApp::with_user("ACME", "alice").await;
    for i in 0..99 {
        let (status, _) = attempt(&app, "ACME", &format!("guess{i}"), WRONG).await;
        assert_eq!(status, 401, "attempt {i} on a fresh account");
    }
    // 99 failures in the window: the address does not wait yet.
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);
    assert_eq!(attempt(&app, "ACME", "guess99", WRONG).await.0, 401);
    // From the 100th failure on, each one makes every login from the address wait, longer step
    // by step, the right password too, with the generic answer and the time to wait.
    let mut waits = Vec::new();
    for i in 100..106 {
        let (status, e) = attempt(&app, "ACME", "alice", PASSWORD).await;
        assert_eq!(status, 429, "after failure {i}");
        assert_eq!(attempt(&app, "ACME", "nobody", WRONG).await.0, 429);
        let wait = wait(&e).expect("the time to wait");
        waits.push(wait);
        app.clock.advance(wait as i64);
        assert_eq!(
            attempt(&app, "ACME", &format!("guess{i}"), WRONG).await.0,
            401
        );
    }
    assert_eq!(waits, [1, 3, 5, 10, 30, 30]);
    // Attempts refused for the address are not counted on the account.
    let counted: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM throttle WHERE key LIKE 'pw:%alice'")
            .fetch_one(app.core.store.pool())
            .await
            .unwrap();
    assert_eq!(counted, 0);
    let nobody: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM throttle WHERE key LIKE 'pw:%nobody'")
            .fetch_one(app.core.store.pool())
            .await
            .unwrap();
    assert_eq!(nobody, 0);
    // The wait over, the right password logs in.
    app.clock.advance(30);
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);

    // Requests sent all at once pass a short wait together; from the 150th failure in the
    // window on, the address waits until the window ends.
    sqlx::query("UPDATE throttle SET failures = $1 WHERE key = 'ip:127.0.0.1'")
        .bind(promio_server::idm::throttle::IP_FAILURES_MAX - 1)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let statuses = tokio::join!(
        attempt(&app, "ACME", "burst1", WRONG),
        attempt(&app, "ACME", "burst2", WRONG),
        attempt(&app, "ACME", "burst3", WRONG),
        attempt(&app, "ACME", "burst4", WRONG),
    );
    let statuses = [statuses.0.0, statuses.1.0, statuses.2.0, statuses.3.0];
    assert!(statuses.contains(&401), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    let (status, e) = attempt(&app, "ACME", "alice", PASSWORD).await;
    assert_eq!(status, 429);
    let wait = wait(&e).unwrap();
    assert!(
        wait > 30 && wait <= 15 * 60,
        "until the window ends, not one more step: {wait}"
    );
    app.clock.advance(wait as i64);
    // A new window counts from nothing.
    assert_eq!(attempt(&app, "ACME", "guess-new", WRONG).await.0, 401);
    assert_eq!(attempt(&app, "ACME", "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn after_100_failures_an_account_is_locked() {
    // The wait after the 100th failure is no longer a wait but the lock (see hardening.rs).
    let app = TestApp::with_user("ACME", "alice").await;
    attempt(&app, "ACME", "alice", WRONG).await;
    sqlx::query("UPDATE throttle SET failures = 99 WHERE key LIKE 'pw:%'")
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let (status, e) = attempt(&app, "ACME", "alice", WRONG).await;
    assert_eq!((status, e), (429, ApiError::AccountLocked));
}

#[tokio::test]
async fn a_scripted_guesser_gets_at_most_125_tries_in_an_hour() {
    let app = TestApp::with_user("ACME", "alice").await;
    let start = crate::helpers::START;
    let mut processed = 0;
    for _ in 0..2000 {
        use promio_server::domain::clock::Clock;
        if app.clock.now() >= start + 3600 {
            break;
        }
        let before = app.core.hasher.verifications();
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        if app.core.hasher.verifications() > before {
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

fn current_code(app: &TestApp, secret: &[u8]) -> String {
    app.totp_code(secret, 0)
}

async fn password_step(app: &TestApp) -> LoginOutcome {
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 200, "the password step is not slowed");
    response.json().await.unwrap()
}

async fn second_step(app: &TestApp, code: &str) -> reqwest::Response {
    app.call("2fa/login", &[("code", code)]).await
}

async fn failures(app: &TestApp, key: &str) -> Option<i64> {
    let row = app.core.store.throttle_row(key).await.unwrap();
    row.map(|r| r.failures)
}

#[tokio::test]
async fn second_factor_failures_count_apart_from_password_failures() {
    let (app, secret, _) = TestApp::with_2fa("ACME", "alice").await;

    // Seven wrong codes over two pending states: the second factor's counter outlives the pending
    // state and now waits, even for the right code.
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    for _ in 0..4 {
        assert_eq!(
            api_error(second_step(&app, "000000").await).await,
            ApiError::SecondFactorFailed
        );
    }
    assert_eq!(
        api_error(second_step(&app, "000000").await).await,
        ApiError::LoginExpired
    );
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    for _ in 0..2 {
        assert_eq!(
            api_error(second_step(&app, "000000").await).await,
            ApiError::SecondFactorFailed
        );
    }
    let waiting = second_step(&app, &current_code(&app, &secret)).await;
    assert_eq!(waiting.status(), 429);
    assert_eq!(
        api_error(waiting).await,
        ApiError::TooManyAttempts {
            retry_after_secs: 1
        }
    );

    // ... while the password does not wait: a wrong one is its counter's first failure, and the
    // right one passes at once.
    let (status, e) = attempt(&app, "ACME", "alice", WRONG).await;
    assert_eq!((status, wait(&e)), (401, None), "no wait from wrong codes");
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    app.clock.advance(1);
    let response = second_step(&app, &current_code(&app, &secret)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::LoggedIn
    );

    // Vice versa: with the password's counter waiting, codes are checked at once.
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.clock.advance(totp::STEP_SECS);
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    for expected in [None, Some(1), Some(3)] {
        let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
        assert_eq!(wait(&e), expected);
        app.clock.advance(expected.unwrap_or(0) as i64);
    }
    let (_, e) = attempt(&app, "ACME", "alice", WRONG).await;
    assert_eq!(wait(&e), Some(5));
    let (status, e) = attempt(&app, "ACME", "alice", PASSWORD).await;
    assert_eq!(
        (status, wait(&e)),
        (429, Some(5)),
        "the password waits after four failures"
    );
    assert_eq!(
        api_error(second_step(&app, "000000").await).await,
        ApiError::SecondFactorFailed,
        "a wrong code is checked, not made to wait"
    );
    let totp_key = promio_server::idm::throttle::totp_key(&app.user_id("ACME", "alice").await);
    assert_eq!(failures(&app, "pw:acme:alice").await, Some(4));
    assert_eq!(
        failures(&app, &totp_key).await,
        Some(1),
        "a counter of its own"
    );
    let response = second_step(&app, &current_code(&app, &secret)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::LoggedIn
    );
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
            .any(|e| e.action == AuditAction::LoginThrottleCleared)
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
