//! Two-factor authentication: activation, the second login step, replay, recovery codes,
//! required enrolment, deactivation and an administrator's reset.

use crate::helpers::{PASSWORD, TestApp, api_error};
use promio_app::api::{
    ApiError, LinkState, LoginOutcome, Me, Role, TwoFactorEnrolment, TwoFactorStatus,
};
use promio_server::domain::audit::AuditAction;
use promio_server::idm::provisioning::ClientSettings;
use promio_server::infra::totp;

async fn activate(app: &TestApp) -> (Vec<u8>, Vec<String>) {
    app.activate_2fa().await
}

fn code(app: &TestApp, secret: &[u8], offset_steps: i64) -> String {
    app.totp_code(secret, offset_steps)
}

async fn with_2fa() -> (TestApp, Vec<u8>, Vec<String>) {
    TestApp::with_2fa("ACME", "alice").await
}

async fn second_step(app: &TestApp, code: &str) -> reqwest::Response {
    app.call("2fa/login", &[("code", code)]).await
}

async fn password_step(app: &TestApp) -> LoginOutcome {
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Deactivated after the password, before the code: the right code makes no session, and no
/// successful login is written.
#[tokio::test]
async fn a_user_deactivated_between_password_and_code_gets_no_session() {
    use promio_server::domain::clock::Clock;
    use promio_server::store::users::UserStatus;
    let (app, secret, _) = with_2fa().await;
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    let alice = app.user_id("ACME", "alice").await;
    assert!(
        app.core
            .store
            .set_user_status(&alice, UserStatus::Deactivated, app.clock.now())
            .await
            .unwrap()
    );
    let refused = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(api_error(refused).await, ApiError::LoginExpired);
    assert_eq!(app.me().await, None);
    assert!(
        !app.audit()
            .await
            .iter()
            .any(|e| e.action == AuditAction::LoginSecondFactor.name() && e.outcome == "success"),
        "no successful second step"
    );
    assert_eq!(app.count_rows("sessions").await, 0);
}

#[tokio::test]
async fn activation_shows_a_qr_code_for_promio_net_gmbh_and_gives_ten_recovery_codes() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let enrolment: TwoFactorEnrolment = app.call("2fa/start", &[]).await.json().await.unwrap();
    assert!(
        enrolment
            .otpauth_uri
            .starts_with("otpauth://totp/promio.net%20GmbH:ACME%2Falice?"),
        "{}",
        enrolment.otpauth_uri
    );
    assert!(enrolment.otpauth_uri.contains("issuer=promio.net%20GmbH"));
    assert!(
        enrolment
            .otpauth_uri
            .contains(&format!("secret={}", enrolment.secret))
    );
    assert!(enrolment.qr_code.starts_with("data:image/svg+xml;base64,"));
    assert_eq!(enrolment.secret.len(), 32, "160 bits in base32");

    let wrong = app.call("2fa/activate", &[("code", "000000")]).await;
    assert_eq!(api_error(wrong).await, ApiError::SecondFactorFailed);
    let secret = totp_rs::Secret::try_from_base32(&enrolment.secret)
        .unwrap()
        .as_ref()
        .to_vec();
    let response = app
        .call("2fa/activate", &[("code", &code(&app, &secret, 0))])
        .await;
    let codes: Vec<String> = response.json().await.unwrap();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 9 && &c[4..5] == "-"));
    let status: TwoFactorStatus = app.call("2fa/status", &[]).await.json().await.unwrap();
    assert_eq!(
        status,
        TwoFactorStatus {
            enabled: true,
            available: true,
            required: false,
            recovery_codes_left: 10,
            reauth_needed: false,
            // PUBLIC_URL is an IP address here: no passkeys.
            passkeys: false,
            password: true,
        }
    );

    // The recovery codes are stored as keyed hashes: neither the codes nor their plain form.
    {
        use sqlx::Row;
        let stored: Vec<String> = sqlx::query("SELECT code_hash FROM recovery_codes")
            .fetch_all(app.core.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("code_hash"))
            .collect();
        assert_eq!(stored.len(), 10);
        for code in &codes {
            let bare = code.replace('-', "");
            assert!(
                stored
                    .iter()
                    .all(|h| !h.contains(&bare) && !h.contains(code.as_str())),
                "{code} readable in {stored:?}"
            );
            // SHA-256 hex, as a token's hash is written.
            let unkeyed = promio_server::infra::token::hash(code);
            let unkeyed_bare = promio_server::infra::token::hash(&bare);
            assert!(
                !stored.contains(&unkeyed) && !stored.contains(&unkeyed_bare),
                "an unkeyed hash of {code}"
            );
        }
    }

    // The secret is stored sealed, and is never shown again.
    use sqlx::Row;
    let stored: String = sqlx::query("SELECT totp_secret FROM users WHERE username_key = 'alice'")
        .fetch_one(app.core.store.pool())
        .await
        .unwrap()
        .get("totp_secret");
    assert!(!stored.contains(&enrolment.secret));
    assert_eq!(app.call("2fa/start", &[]).await.status(), 403);
}

#[tokio::test]
async fn after_the_password_the_pending_state_is_not_a_session() {
    let (app, secret, _) = with_2fa().await;
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    assert_eq!(app.session_cookie(), None);
    assert_eq!(app.me().await, None);
    let protected = app
        .call(
            "users/list",
            &[("search", ""), ("status", ""), ("page", "1")],
        )
        .await;
    assert_eq!(protected.status(), 401);
    assert_eq!(
        app.call("2fa/recovery-codes", &[("code", &code(&app, &secret, 0))])
            .await
            .status(),
        401
    );

    let response = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::LoggedIn
    );
    assert!(app.me().await.is_some());
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let (app, secret, _) = with_2fa().await;
    let current = code(&app, &secret, 0);
    password_step(&app).await;
    assert_eq!(second_step(&app, &current).await.status(), 200);
    app.client.post(app.url("/logout")).send().await.unwrap();
    password_step(&app).await;
    let replay = second_step(&app, &current).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(api_error(replay).await, ApiError::SecondFactorFailed);
}

#[tokio::test]
async fn two_concurrent_submissions_of_one_code_give_one_session() {
    let (app, secret, _) = with_2fa().await;
    let browsers = [app.new_browser(), app.new_browser()];
    for browser in &browsers {
        let response = browser
            .post(app.url("/api/login"))
            .form(&[
                ("company_id", "ACME"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.json::<LoginOutcome>().await.unwrap(),
            LoginOutcome::TwoFactorRequired
        );
    }
    let current = code(&app, &secret, 0);
    let submit = |b: &reqwest::Client| {
        b.post(app.url("/api/2fa/login"))
            .form(&[("code", current.as_str())])
            .send()
    };
    let (a, b) = tokio::join!(submit(&browsers[0]), submit(&browsers[1]));
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401]);
    assert_eq!(app.active_sessions().await, 1);
}

#[tokio::test]
async fn the_previous_step_is_accepted_but_not_older_or_future_ones() {
    let (app, secret, _) = with_2fa().await;
    app.clock.advance(5 * totp::STEP_SECS);
    password_step(&app).await;
    assert_eq!(
        second_step(&app, &code(&app, &secret, -2)).await.status(),
        401,
        "two steps old"
    );
    assert_eq!(
        second_step(&app, &code(&app, &secret, 1)).await.status(),
        401,
        "the next step"
    );
    assert_eq!(
        second_step(&app, &code(&app, &secret, -1)).await.status(),
        200,
        "the previous step"
    );
}

#[tokio::test]
async fn a_recovery_code_works_in_the_same_field_once() {
    let (app, _, codes) = with_2fa().await;
    password_step(&app).await;
    assert_eq!(
        second_step(&app, &codes[3].to_uppercase()).await.status(),
        200
    );
    app.client.post(app.url("/logout")).send().await.unwrap();
    password_step(&app).await;
    assert_eq!(second_step(&app, &codes[3]).await.status(), 401, "used up");
    assert_eq!(second_step(&app, &codes[4]).await.status(), 200);
    let status: TwoFactorStatus = app.call("2fa/status", &[]).await.json().await.unwrap();
    assert_eq!(status.recovery_codes_left, 8);
}

#[tokio::test]
async fn five_wrong_codes_end_the_pending_state() {
    let (app, secret, _) = with_2fa().await;
    password_step(&app).await;
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
    let too_late = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(
        api_error(too_late).await,
        ApiError::LoginExpired,
        "the right code no longer helps"
    );
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn the_pending_state_expires_after_five_minutes() {
    let (app, secret, _) = with_2fa().await;
    password_step(&app).await;
    app.clock.advance(5 * 60);
    let response = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(api_error(response).await, ApiError::LoginExpired);
}

#[tokio::test]
async fn a_client_that_requires_2fa_leads_to_enrolment_before_any_session() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.set_client(
        "ACME",
        ClientSettings {
            require_2fa: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        password_step(&app).await,
        LoginOutcome::TwoFactorEnrolmentRequired
    );
    assert_eq!(app.me().await, None);
    let status: TwoFactorStatus = app.call("2fa/status", &[]).await.json().await.unwrap();
    assert!(status.required && !status.enabled);
    let (_, codes) = activate(&app).await;
    assert_eq!(codes.len(), 10);
    let me: Option<Me> = app.me().await;
    assert_eq!(
        me.map(|m| m.username),
        Some("alice".into()),
        "the session starts after activation"
    );
    // Required 2FA cannot be turned off.
    let response = app
        .call(
            "2fa/deactivate",
            &[("password", PASSWORD), ("code", &codes[0])],
        )
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn deactivation_needs_the_password_and_a_code() {
    let (app, secret, _) = with_2fa().await;
    password_step(&app).await;
    second_step(&app, &code(&app, &secret, 0)).await;
    app.clock.advance(totp::STEP_SECS);
    let wrong_password = app
        .call(
            "2fa/deactivate",
            &[
                ("password", "not it at all"),
                ("code", &code(&app, &secret, 0)),
            ],
        )
        .await;
    assert_eq!(wrong_password.status(), 401);
    app.clock.advance(totp::STEP_SECS);
    let ok = app
        .call(
            "2fa/deactivate",
            &[("password", PASSWORD), ("code", &code(&app, &secret, 0))],
        )
        .await;
    assert_eq!(ok.status(), 200);
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(
        password_step(&app).await,
        LoginOutcome::LoggedIn,
        "no second step any more"
    );
}

#[tokio::test]
async fn an_admin_resets_a_users_2fa_and_the_user_is_told() {
    let (app, _, _) = with_2fa().await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.login_ok("ACME", "boss").await;
    let alice = app.user_id("ACME", "alice").await;
    assert_eq!(
        app.call("users/reset-2fa", &[("id", &alice)])
            .await
            .status(),
        200
    );
    let mail = app.mail_to("alice@acme.example").await;
    assert_eq!(mail.subject, "Your two-factor authentication was reset");
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == AuditAction::TwoFactorReset)
    );
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(password_step(&app).await, LoginOutcome::LoggedIn);
}

#[tokio::test]
async fn a_password_reset_of_a_user_with_2fa_needs_a_code() {
    let (app, _secret, codes) = with_2fa().await;
    app.call(
        "forgot-password",
        &[("company_id", "ACME"), ("username", "alice")],
    )
    .await;
    let token = TestApp::token_of(&app.mail_to("alice@").await);
    let state: LinkState = app
        .call("link", &[("token", &token)])
        .await
        .json()
        .await
        .unwrap();
    assert!(matches!(
        state,
        LinkState::Valid {
            code_required: true,
            ..
        }
    ));
    let new = "violet orbit canvas thunder";
    let fields = |c: &str| {
        vec![
            ("token", token.clone()),
            ("new_password", new.into()),
            ("repeat_password", new.into()),
            ("code", c.to_owned()),
        ]
    };
    let without = app
        .client
        .post(app.url("/api/set-password"))
        .form(&fields("")[..3])
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
    let wrong = app
        .client
        .post(app.url("/api/set-password"))
        .form(&fields("000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = app
        .client
        .post(app.url("/api/set-password"))
        .form(&fields(&codes[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn sso_clients_get_no_2fa() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    sqlx::query("UPDATE clients SET sso_issuer = 'https://idp.acme.example'")
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let status: TwoFactorStatus = app.call("2fa/status", &[]).await.json().await.unwrap();
    assert!(!status.available);
    assert_eq!(app.call("2fa/start", &[]).await.status(), 403);
}

/// A wrong code that is neither the current nor the previous one.
fn wrong_code(app: &TestApp, secret: &[u8]) -> String {
    let right = [code(app, secret, 0), code(app, secret, -1)];
    (0..)
        .map(|n| format!("{:06}", 123_456 + n))
        .find(|c| !right.contains(c))
        .unwrap()
}

/// Puts alice's second-factor counter just before the lock (a wrong code after the password,
/// then the counter set to 99) and returns its key; the pending second factor is still open.
async fn ninety_nine_wrong_codes(app: &TestApp, secret: &[u8]) -> String {
    let key = promio_server::idm::throttle::totp_key(&app.user_id("ACME", "alice").await);
    assert_eq!(password_step(app).await, LoginOutcome::TwoFactorRequired);
    let wrong = second_step(app, &wrong_code(app, secret)).await;
    assert_eq!(api_error(wrong).await, ApiError::SecondFactorFailed);
    sqlx::query("UPDATE throttle SET failures = 99, blocked_until = 0 WHERE key = $1")
        .bind(&key)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    key
}

async fn mails_with_subject(app: &TestApp, subject: &str) -> usize {
    app.deliver().await;
    app.mails
        .mails()
        .iter()
        .filter(|m| m.subject == subject)
        .count()
}

#[tokio::test]
async fn after_100_wrong_codes_the_second_factor_stays_locked_even_after_quiet_days() {
    let (app, secret, _) = with_2fa().await;
    let key = ninety_nine_wrong_codes(&app, &secret).await;
    let hundredth = second_step(&app, &wrong_code(&app, &secret)).await;
    assert_eq!(hundredth.status(), 429);
    assert_eq!(api_error(hundredth).await, ApiError::SecondFactorLocked);
    let mail = app.mail_to("alice@acme.example").await;
    assert_eq!(
        mail.subject,
        "The second factor of your promio.connect account has been locked"
    );
    // The right code is not checked any more, at once or after days without attempts (the
    // housekeeping that drops quiet counters keeps this one).
    let right = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(api_error(right).await, ApiError::SecondFactorLocked);
    app.clock.advance(3 * 24 * 3600);
    app.housekeeping().await;
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    let right = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(right.status(), 429);
    assert_eq!(api_error(right).await, ApiError::SecondFactorLocked);
    assert_eq!(app.me().await, None);
    let row = app.core.store.throttle_row(&key).await.unwrap();
    assert!(
        row.is_some_and(|r| r.failures > 100),
        "still counted, still locked"
    );
    // Nor does a reset link get around it: it asks for the same second factor.
    app.call(
        "forgot-password",
        &[("company_id", "ACME"), ("username", "alice")],
    )
    .await;
    let token = TestApp::token_of(&app.mail_to("alice@acme.example").await);
    let new = "violet orbit canvas thunder";
    let reset = app
        .call(
            "set-password",
            &[
                ("token", token.as_str()),
                ("new_password", new),
                ("repeat_password", new),
                ("code", &code(&app, &secret, 0)),
            ],
        )
        .await;
    assert_eq!(api_error(reset).await, ApiError::SecondFactorLocked);
}

#[tokio::test]
async fn the_user_is_told_once_after_ten_wrong_codes_in_a_row() {
    let (app, secret, _) = with_2fa().await;
    let subject = "Failed second-factor attempts at your promio.connect account";
    for failures in 1..=11 {
        // Five wrong codes end a pending second factor: the password again every five.
        if failures % 5 == 1 {
            assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
        }
        let response = second_step(&app, &wrong_code(&app, &secret)).await;
        assert_eq!(response.status(), 401, "wrong code {failures}");
        // Past the wait the counter asks for (at most 10 seconds this far).
        app.clock.advance(30);
        let expected = usize::from(failures >= 10);
        assert_eq!(
            mails_with_subject(&app, subject).await,
            expected,
            "after {failures} wrong codes"
        );
    }
    let mail = app.mail_to("alice@acme.example").await;
    assert_eq!(mail.subject, subject);
    assert!(mail.raw.contains("10 times in a row"), "{}", mail.raw);
}

#[tokio::test]
async fn administrators_see_a_locked_second_factor_and_lift_it() {
    let (app, secret, _) = with_2fa().await;
    app.create_user("ACME", "boss", Role::Admin).await;
    let alice = app.user_id("ACME", "alice").await;
    let key = ninety_nine_wrong_codes(&app, &secret).await;
    let hundredth = second_step(&app, &wrong_code(&app, &secret)).await;
    assert_eq!(api_error(hundredth).await, ApiError::SecondFactorLocked);

    // The administrators' list of throttled accounts shows it, as the second factor's.
    app.login_ok("ACME", "boss").await;
    let list: Vec<promio_app::api::ThrottledAccount> =
        app.call("users/throttled", &[]).await.json().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        (
            list[0].username.as_str(),
            list[0].failures,
            list[0].second_factor
        ),
        ("alice", 100, true)
    );
    // "Allow login again" lifts it.
    let cleared = app
        .call("users/clear-throttle", &[("username", "alice")])
        .await;
    assert_eq!(cleared.status(), 200);
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(password_step(&app).await, LoginOutcome::TwoFactorRequired);
    let response = second_step(&app, &code(&app, &secret, 0)).await;
    assert_eq!(response.status(), 200, "the right code is checked again");

    // So does "Reset two-factor authentication".
    app.client.post(app.url("/logout")).send().await.unwrap();
    app.clock.advance(totp::STEP_SECS);
    ninety_nine_wrong_codes(&app, &secret).await;
    let hundredth = second_step(&app, &wrong_code(&app, &secret)).await;
    assert_eq!(api_error(hundredth).await, ApiError::SecondFactorLocked);
    app.login_ok("ACME", "boss").await;
    let reset = app.call("users/reset-2fa", &[("id", &alice)]).await;
    assert_eq!(reset.status(), 200);
    assert!(app.core.store.throttle_row(&key).await.unwrap().is_none());

    // And a new second factor of the user's own.
    sqlx::query(
        "INSERT INTO throttle (key, failures, window_start, last_at) VALUES ($1, 100, 0, 0)",
    )
    .bind(&key)
    .execute(app.core.store.pool())
    .await
    .unwrap();
    app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(password_step(&app).await, LoginOutcome::LoggedIn);
    activate(&app).await;
    assert!(
        app.core.store.throttle_row(&key).await.unwrap().is_none(),
        "a new second factor starts its counter afresh"
    );
}
