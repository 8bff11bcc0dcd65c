//! Request policies: the Origin check and the headers on every response.

use crate::helpers::{NEW_PASSWORD, NEWER_PASSWORD, PASSWORD, TestApp};
use promio_server::domain::audit::AuditAction;

#[tokio::test]
async fn cross_site_posts_are_refused_with_403_and_change_nothing() {
    let app = TestApp::with_user("ACME", "alice").await;
    let form = [
        ("company_id", "ACME"),
        ("username", "alice"),
        ("password", PASSWORD),
    ];
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("origin", "null"),
    ] {
        let response = app
            .client
            .post(app.url("/api/login"))
            .header(header, value)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
        assert!(response.headers().get("set-cookie").is_none());
    }
    assert_eq!(app.active_sessions().await, 0);
    let audit = app.audit().await;
    assert!(
        audit.iter().all(|e| e.action != AuditAction::LoginPassword),
        "refused before the login ran"
    );

    // The same request from the app's own origin goes through.
    let response = app
        .client
        .post(app.url("/api/login"))
        .header("origin", app.address.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_form_posted_from_a_no_referrer_page_is_accepted_by_sec_fetch_site() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let response = app
        .client
        .post(app.url("/logout"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(app.me().await, None);
}

#[tokio::test]
async fn cross_site_logout_is_refused() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let response = app
        .client
        .post(app.url("/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(app.me().await.is_some(), "still logged in");
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let responses = [
        app.client.get(app.url("/login")).send().await.unwrap(),
        app.client
            .get(app.url("/no-such-page"))
            .send()
            .await
            .unwrap(),
        app.call("me", &[]).await,
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap(),
        // Refused by the body limit before any handler.
        app.client
            .post(app.url("/api/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 65 * 1024])
            .send()
            .await
            .unwrap(),
    ];
    assert_eq!(responses[4].status(), 413);
    for response in responses {
        let url = response.url().to_string();
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "script-src 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{url}: {directive} missing in {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
        assert_eq!(h["cache-control"], "no-store", "{url}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "{url}: no HSTS over plain http"
        );
    }
}

#[tokio::test]
async fn the_login_page_allows_only_its_own_nonce_for_inline_scripts() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/login")).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("a nonce in the CSP")
        .to_owned();
    let html = response.text().await.unwrap();
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(
        html.matches(&format!("nonce=\"{nonce}\"")).count(),
        scripts,
        "every script carries the nonce"
    );
    let again = app.client.get(app.url("/login")).send().await.unwrap();
    assert!(
        !again.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains(&nonce),
        "a new nonce per page"
    );
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.core.store.close().await;
    assert_eq!(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
}

#[tokio::test]
async fn a_closed_database_gives_503_not_500() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.core.store.close().await;
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        crate::helpers::api_error(response).await,
        promio_app::api::ApiError::Unavailable
    );
}

#[tokio::test]
async fn forwarded_addresses_are_used_only_from_trusted_proxies() {
    let trusting = TestApp::spawn_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    trusting.create_client("ACME").await;
    trusting
        .client
        .post(trusting.url("/api/login"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .form(&[
            ("company_id", "ACME"),
            ("username", "nobody"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let events = trusting.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::LoginPassword
                && e.ip.as_deref() == Some("203.0.113.9"))
    );

    let plain = TestApp::spawn().await;
    plain.create_client("ACME").await;
    plain
        .client
        .post(plain.url("/api/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[
            ("company_id", "ACME"),
            ("username", "nobody"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let events = plain.audit().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::LoginPassword && e.ip.as_deref() == Some("127.0.0.1"))
    );
}

#[tokio::test]
async fn an_internal_error_is_reported_under_the_request_id() {
    // The tests' requests come from loopback: here that is the proxy in front.
    let app = TestApp::spawn_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", promio_app::api::Role::User)
        .await;
    app.login_ok("ACME", "alice").await;
    // The session lookup now fails with a database error that is not an outage: a server fault.
    sqlx::query("DROP TABLE sessions")
        .execute(app.core.store.pool())
        .await
        .expect("drop the sessions table");

    let response = app.call("me", &[]).await;
    assert_eq!(response.status(), 500);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an x-request-id header")
        .to_owned();
    match crate::helpers::api_error(response).await {
        promio_app::api::ApiError::Internal { id } => assert_eq!(id, request_id),
        other => panic!("expected an internal error, got {other:?}"),
    }

    // A request id a trusted proxy in front sent is kept, and is the one an error is reported
    // under.
    let response = app
        .client
        .post(app.url("/api/me"))
        .header("x-request-id", "proxy-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("proxy-4711")
    );
    assert_eq!(
        crate::helpers::api_error(response).await,
        promio_app::api::ApiError::Internal {
            id: "proxy-4711".into()
        }
    );

    // One that is not a short token (it would reach every log line) is replaced by our own.
    let long = "x".repeat(65);
    for sent in ["a b", "<script>", long.as_str()] {
        let response = app
            .client
            .post(app.url("/api/me"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(!id.is_empty() && id != sent, "{sent:?} came back");
    }
}

#[tokio::test]
async fn a_request_id_from_a_peer_that_is_not_a_trusted_proxy_is_replaced() {
    // No TRUSTED_PROXIES: the loopback peer is a client like any other.
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "client-4711")
        .send()
        .await
        .unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(!id.is_empty() && id != "client-4711", "{id:?}");

    // Nor is an internal error reported under the id the client chose.
    sqlx::query("DROP TABLE sessions")
        .execute(app.core.store.pool())
        .await
        .expect("drop the sessions table");
    let response = app
        .client
        .post(app.url("/api/me"))
        .header("x-request-id", "client-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let sent_back = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_ne!(sent_back, "client-4711");
    match crate::helpers::api_error(response).await {
        promio_app::api::ApiError::Internal { id } => {
            assert_ne!(id, "client-4711");
            assert_eq!(id, sent_back);
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
}

#[tokio::test]
async fn over_https_a_form_answer_under_the_plain_cookie_name_is_ignored() {
    use promio_app::api::{ApiError, FORM_FLASH_COOKIE, FormFlash};
    let app = TestApp::spawn_with(&[("PUBLIC_URL", "https://login.example")]).await;
    let error = ApiError::LoginFailed {
        retry_after_secs: None,
    };
    let message = error.message(promio_app::i18n::Lang::En);
    let planted = FormFlash {
        page: "/login".into(),
        error,
        values: vec![("company_id".into(), "PLANTED".into())],
    };
    let login_page = |cookie: String| {
        let request = app
            .new_browser()
            .get(app.url("/login"))
            .header("accept-language", "en")
            .header("cookie", cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    // A sibling subdomain can set a plain-named cookie for this host: not read over https.
    let html = login_page(format!("{FORM_FLASH_COOKIE}={}", planted.encode())).await;
    assert!(
        !html.contains("PLANTED"),
        "a plain-named form answer was shown"
    );
    // The one the server sets over https (`__Host-`: only this host can set it) is shown.
    let html = login_page(format!("__Host-{FORM_FLASH_COOKIE}={}", planted.encode())).await;
    assert!(html.contains("PLANTED") && html.contains(&message));
}

#[tokio::test]
async fn a_request_still_unanswered_after_30_seconds_is_answered_408() {
    use promio_server::edge::http::REQUEST_TIMEOUT;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    // Tokio's clock, paused, moves only when every task waits, and then straight to the next
    // timer. The server waits for the rest of a body that never comes, so the clock jumps to the
    // request's deadline, and the test takes no real time. (The app's clock is another one.)
    tokio::time::pause();
    let sent = tokio::time::Instant::now();
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n\
         company_id=ACME&username="
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let read_head = async {
        let mut answer: Vec<u8> = Vec::new();
        let mut buffer = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
        answer
    };
    // Without a timeout of its own the test would wait forever where the server has none.
    let answer = tokio::time::timeout(REQUEST_TIMEOUT * 2, read_head).await;
    let waited = sent.elapsed();
    tokio::time::resume();
    let answer = answer.expect("the server answers before twice its timeout");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    // Answered by the timeout, not a handler: the security headers all the same.
    for header in [
        "content-security-policy:",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(answer.contains(header), "{header} missing in {answer}");
    }
    assert!(
        waited >= REQUEST_TIMEOUT && waited < REQUEST_TIMEOUT + std::time::Duration::from_secs(1),
        "answered after {waited:?}"
    );
}

/// What a test's log holds: every line written while it is this thread's subscriber.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// No secret reaches the log. The server runs on this test's thread, so this thread's subscriber
/// sees the flows' lines at DEBUG: a password login, 2FA activation, the second step with a code
/// and with a recovery code, a mailed reset link and the Security page's password change. Their
/// lines are there (so the capture is real); the passwords, the TOTP secret, the recovery code,
/// the link's token and the session tokens are not.
#[tokio::test]
async fn the_log_holds_no_password_secret_code_or_token() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let (app, secret, codes) = TestApp::with_2fa("ACME", "alice").await;
    let mut sessions = Vec::new();
    // The second step with a code, then with a recovery code.
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let code = app.totp_code(&secret, 0);
    let second = app.call("2fa/login", &[("code", &code)]).await;
    assert_eq!(second.status(), 200);
    sessions.push(app.session_cookie().expect("a session"));
    app.client.post(app.url("/logout")).send().await.unwrap();
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let recovery = app.call("2fa/login", &[("code", &codes[0])]).await;
    assert_eq!(recovery.status(), 200);
    sessions.push(app.session_cookie().expect("a session"));
    app.client.post(app.url("/logout")).send().await.unwrap();

    // A reset through a mailed link (with a code, as the user has 2FA).
    let asked = app
        .call(
            "forgot-password",
            &[("company_id", "ACME"), ("username", "alice")],
        )
        .await;
    assert_eq!(asked.status(), 200);
    let token = TestApp::token_of(&app.mail_to("alice@acme.example").await);
    app.clock.advance(promio_server::infra::totp::STEP_SECS);
    let set = app
        .call(
            "set-password",
            &[
                ("token", token.as_str()),
                ("new_password", NEW_PASSWORD),
                ("repeat_password", NEW_PASSWORD),
                ("code", app.totp_code(&secret, 0).as_str()),
            ],
        )
        .await;
    assert_eq!(set.status(), 200);

    // The Security page's password change.
    let response = app.login("ACME", "alice", NEW_PASSWORD).await;
    assert_eq!(response.status(), 200);
    app.clock.advance(promio_server::infra::totp::STEP_SECS);
    let code = app.totp_code(&secret, 0);
    let second = app.call("2fa/login", &[("code", &code)]).await;
    assert_eq!(second.status(), 200);
    sessions.push(app.session_cookie().expect("a session"));
    let changed = app
        .call(
            "password/change",
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", NEWER_PASSWORD),
                ("repeat_password", NEWER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status(), 200);
    app.core.background.idle().await;

    let written = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    for line in [
        "login succeeded",
        "password set through a link",
        "password changed by its user",
    ] {
        assert!(
            written.contains(line),
            "the capture misses {line:?}:\n{written}"
        );
    }
    let base32 = data_encoding_base32(&secret);
    assert_eq!(
        base32.len(),
        32,
        "160 bits, as the Security page shows them"
    );
    let mut secrets: Vec<(&str, String)> = vec![
        ("the password", PASSWORD.to_owned()),
        ("the new password", NEW_PASSWORD.to_owned()),
        ("the newer password", NEWER_PASSWORD.to_owned()),
        ("the TOTP secret", base32),
        ("the recovery code", codes[0].clone()),
        ("the link's token", token.clone()),
    ];
    for session in &sessions {
        secrets.push(("a session token", session.clone()));
    }
    for (what, value) in secrets {
        assert!(
            !written.contains(&value),
            "{what} is in the log:\n{written}"
        );
    }
}

/// A TOTP secret as authenticator apps are given it (RFC 4648 base32, no padding).
fn data_encoding_base32(secret: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (String::new(), 0u32, 0u32);
    for &byte in secret {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}
