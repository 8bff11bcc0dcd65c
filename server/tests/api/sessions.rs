//! Sessions: rotation, logout, idle and absolute expiry (with a moved clock), cookie flags.

use crate::helpers::TestApp;
use promio_app::api::Role;
use promio_server::domain::audit::AuditAction;

#[tokio::test]
async fn a_login_issues_a_new_token_and_ends_the_one_presented() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let first = app.session_cookie().expect("a session cookie");
    app.login_ok("ACME", "alice").await;
    let second = app.session_cookie().expect("a session cookie");
    assert_ne!(first, second, "a new token at every login");
    assert_eq!(
        app.me_with_token(&first).await,
        None,
        "the earlier session ended"
    );
    assert!(app.me_with_token(&second).await.is_some());
    assert_eq!(app.active_sessions().await, 1);
}

#[tokio::test]
async fn the_token_is_stored_only_as_its_hash() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let token = app.session_cookie().unwrap();
    assert_eq!(token.len(), 43, "256 bits, base64url");
    use sqlx::Row;
    let stored: String = sqlx::query("SELECT token_hash FROM sessions")
        .fetch_one(app.core.store.pool())
        .await
        .unwrap()
        .get("token_hash");
    assert_ne!(stored, token);
    assert_eq!(stored, promio_server::infra::token::hash(&token));
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server_and_clears_the_browser() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let token = app.session_cookie().unwrap();
    let response = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?notice=logged_out");
    assert_eq!(response.headers()["clear-site-data"], "\"cache\"");
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        app.me_with_token(&token).await,
        None,
        "the old token is dead on the server"
    );
    assert_eq!(app.active_sessions().await, 0);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == AuditAction::Logout)
    );
}

#[tokio::test]
async fn an_idle_session_expires_after_the_idle_timeout() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    app.clock.advance(59 * 60);
    assert!(
        app.me().await.is_some(),
        "59 idle minutes are fine, and the use counts as activity"
    );
    app.clock.advance(59 * 60);
    assert!(
        app.me().await.is_some(),
        "the idle timer restarted at the last use"
    );
    app.clock.advance(60 * 60);
    assert_eq!(app.me().await, None, "60 idle minutes end it");
    assert_eq!(app.active_sessions().await, 0);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.action == AuditAction::SessionExpired && e.detail == "idle timeout")
    );
}

/// How long the session has left, as the page's idle warning asks (not counted as use).
async fn time_left(app: &TestApp) -> Option<u64> {
    let response = app.call("session/time-left", &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_idle_warning_learns_the_time_left_without_keeping_the_session_alive() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let me = app.me().await.unwrap();
    assert_eq!(
        me.session_ends_in_secs,
        60 * 60,
        "the idle timeout, just used"
    );
    app.clock.advance(50 * 60);
    assert_eq!(time_left(&app).await, Some(10 * 60));
    app.clock.advance(8 * 60);
    assert_eq!(
        time_left(&app).await,
        Some(2 * 60),
        "asking did not count as use"
    );
    // Stay logged in: a use of the session, which starts the idle time again.
    let me = app.me().await.unwrap();
    assert_eq!(me.session_ends_in_secs, 60 * 60);
    app.clock.advance(60 * 60);
    assert_eq!(
        time_left(&app).await,
        None,
        "idle for the whole timeout: ended"
    );
    assert_eq!(app.active_sessions().await, 0);
}

#[tokio::test]
async fn the_time_left_is_the_absolute_timeout_when_that_comes_first() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    for _ in 0..23 {
        app.clock.advance(60 * 60 - 60);
        assert!(app.me().await.is_some());
    }
    // 23 hours less 23 minutes in: 1 hour 23 minutes to the absolute end, 1 hour idle.
    assert_eq!(time_left(&app).await, Some(60 * 60));
    app.clock.advance(30 * 60);
    assert!(app.me().await.is_some());
    assert_eq!(
        time_left(&app).await,
        Some(53 * 60),
        "the absolute end is nearer"
    );
}

#[tokio::test]
async fn an_active_session_still_ends_at_the_absolute_timeout() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    for _ in 0..47 {
        app.clock.advance(30 * 60);
        assert!(app.me().await.is_some());
    }
    app.clock.advance(30 * 60);
    assert_eq!(
        app.me().await,
        None,
        "24 hours after login, even when active"
    );
    assert!(
        app.audit()
            .await
            .iter()
            .any(|e| e.detail == "absolute timeout")
    );
}

#[tokio::test]
async fn timeouts_follow_the_settings() {
    let app = TestApp::spawn_with(&[("SESSION_IDLE_MINUTES", "5")]).await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", Role::User).await;
    app.login_ok("ACME", "alice").await;
    app.clock.advance(4 * 60);
    assert!(app.me().await.is_some());
    app.clock.advance(5 * 60);
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions_at_once() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    sqlx::query("UPDATE users SET status = 'deactivated'")
        .execute(app.core.store.pool())
        .await
        .unwrap();
    assert_eq!(app.me().await, None);
    assert_eq!(app.active_sessions().await, 0);
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed_secure_httponly_and_lax() {
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://login.example")]).await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", Role::User).await;
    let response = app
        .client
        .post(app.url("/api/login"))
        .header("origin", "https://login.example")
        .form(&[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("__Host-session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    // A plain-named cookie is ignored over https: only the prefixed one counts.
    let token = cookie
        .trim_start_matches("__Host-session=")
        .split(';')
        .next()
        .unwrap();
    assert_eq!(app.me_with_token(token).await, None);
}

#[tokio::test]
async fn logging_out_without_a_session_is_harmless() {
    let app = TestApp::spawn().await;
    let response = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn a_user_sees_their_sessions_and_ends_another_one() {
    let app = TestApp::with_user("ACME", "alice").await;
    let other = app.new_browser();
    other
        .post(app.url("/api/login"))
        .header("user-agent", "Phone Browser")
        .form(&[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    app.login_ok("ACME", "alice").await;
    let list: Vec<promio_app::api::SessionInfo> =
        app.call("sessions/list", &[]).await.json().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s.current).count(), 1);
    let phone = list.iter().find(|s| !s.current).unwrap();
    assert_eq!(phone.device, "Phone Browser");
    assert_eq!(phone.ip, "127.0.0.1");
    assert_eq!(
        app.call("sessions/end", &[("id", &phone.id)])
            .await
            .status(),
        200
    );
    let me = app.me_in(&other).await;
    assert_eq!(me, None, "the other browser is logged out");
    assert!(app.me().await.is_some(), "this one is not");
    assert_eq!(
        app.call("sessions/end", &[("id", &phone.id)])
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_user_cannot_end_someone_elses_session() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "bob", Role::User).await;
    let bob = app.new_browser();
    app.login_in(&bob, "ACME", "bob").await;
    use sqlx::Row;
    let bobs: String = sqlx::query("SELECT token_hash FROM sessions")
        .fetch_one(app.core.store.pool())
        .await
        .unwrap()
        .get("token_hash");
    app.login_ok("ACME", "alice").await;
    assert_eq!(
        app.call("sessions/end", &[("id", &bobs)]).await.status(),
        404
    );
    let me = app.me_in(&bob).await;
    assert!(me.is_some());
}

#[tokio::test]
async fn an_admin_ends_all_sessions_of_a_user_of_their_client_only() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_client("OTHER").await;
    app.create_user("OTHER", "victim", Role::User).await;
    let alice = app.new_browser();
    app.login_in(&alice, "ACME", "alice").await;
    app.login_ok("ACME", "boss").await;
    let id = app.user_id("ACME", "alice").await;
    let response = app.call("users/end-sessions", &[("id", &id)]).await;
    assert_eq!(response.json::<u32>().await.unwrap(), 1);
    let me = app.me_in(&alice).await;
    assert_eq!(me, None);
    let victim = app.user_id("OTHER", "victim").await;
    assert_eq!(
        app.call("users/end-sessions", &[("id", &victim)])
            .await
            .status(),
        404
    );
}
