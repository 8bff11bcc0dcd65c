//! `/metrics`: Prometheus text with logins by outcome, the hashing pool and the mail outbox.

use crate::helpers::TestApp;

#[tokio::test]
async fn metrics_count_logins_by_outcome_and_show_pool_and_outbox() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login("ACME", "alice", "wrong password").await;
    app.login_ok("ACME", "alice").await;
    // A queued mail (the tests run no delivery worker): a user invited without a password.
    app.create_user_with("ACME", "bob", promio_app::api::Role::User, None)
        .await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in [
        "promio_logins_total{method=\"password\",outcome=\"failure\"} 1",
        "promio_logins_total{method=\"password\",outcome=\"success\"} 1",
        "promio_hash_pool_workers 2",
        "promio_hash_pool_queue 0",
        "promio_hash_pool_queue_limit 64",
        "promio_hash_verifications_total 2",
        "promio_mail_outbox_depth 1",
        "promio_mail_outbox_oldest_age_seconds 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
    app.clock.advance(90);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("promio_mail_outbox_oldest_age_seconds 90"),
        "{text}"
    );
}

#[tokio::test]
async fn with_a_token_metrics_need_it() {
    let app = TestApp::spawn_with(&[("METRICS_TOKEN", "a-long-metrics-token-123")]).await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("a-long-metrics-token-wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("a-long-metrics-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn metrics_without_a_token_refuse_requests_that_a_proxy_forwarded() {
    // Behind a reverse proxy on the same host every peer is loopback: what the proxy forwarded
    // must not count as local.
    let app = TestApp::spawn().await;
    for header in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
        let response = app
            .client
            .get(app.url("/metrics"))
            .header(header, "for=198.51.100.7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{header}");
    }
    let direct = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(direct.status(), 200);
}

#[tokio::test]
async fn requests_are_counted_and_timed_per_route_and_unknown_paths_share_one_label() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login("ACME", "alice", "wrong password").await;
    app.login_ok("ACME", "alice").await;
    for path in ["/no/such/page", "/api/no-such-function", "/another-unknown"] {
        app.client.get(app.url(path)).send().await.unwrap();
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "promio_http_requests_total{route=\"/api/login\",method=\"POST\",status=\"4xx\"} 1",
        "promio_http_requests_total{route=\"/api/login\",method=\"POST\",status=\"2xx\"} 1",
        "promio_http_request_duration_seconds_count{route=\"/api/login\",method=\"POST\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing in:\n{text}"
        );
    }
    // No label names a path nobody routed: they all count as `other`.
    assert!(
        !text.contains("no-such") && !text.contains("another-unknown"),
        "{text}"
    );
    assert!(text.contains("route=\"other\""), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("process_resident_memory_bytes "))
    );
    assert!(text.contains("promio_build_info{version=\""));
}
