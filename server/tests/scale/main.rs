//! Scale-out and faults, with real server processes (the `promio-connect` binary) on one
//! PostgreSQL database: two instances share sessions, throttling counters and the mail outbox;
//! the database and the SMTP server go away and come back; a server is killed mid-registration.
//!
//! These need PostgreSQL: they are ignored unless asked for, and `make test` runs them with
//! `--ignored` when `TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test (the workspace denies unwrap elsewhere).
#![allow(clippy::unwrap_used)]

#[path = "../common/pg.rs"]
mod pg;
mod support;

use std::time::Duration;
use support::{Instance, PgDatabase, SmtpSink, TcpSwitch, cli, wait_until};

const PASSWORD: &str = "a long and unusual passphrase";

async fn login(
    browser: &reqwest::Client,
    instance: &Instance,
    password: &str,
) -> reqwest::Response {
    browser
        .post(instance.url("/api/login"))
        .form(&[
            ("company_id", "ACME"),
            ("username", "alice"),
            ("password", password),
        ])
        .send()
        .await
        .expect("login request")
}

async fn me(browser: &reqwest::Client, instance: &Instance) -> Option<String> {
    let me: Option<serde_json::Value> = browser
        .post(instance.url("/api/me"))
        .send()
        .await
        .expect("me request")
        .json()
        .await
        .expect("me answer");
    me.map(|m| m["username"].as_str().unwrap_or_default().to_owned())
}

fn seed(db: &PgDatabase, smtp: &SmtpSink) {
    let env = Instance::env_for(&db.url, smtp.port, 0);
    cli(
        &env,
        &[
            "client",
            "create",
            "--company-id",
            "ACME",
            "--name",
            "ACME GmbH",
        ],
        None,
    );
    cli(
        &env,
        &[
            "user",
            "create",
            "--company-id",
            "ACME",
            "--username",
            "alice",
            "--email",
            "alice@acme.example",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (PostgreSQL); make test runs it"]
async fn two_instances_share_sessions_logout_and_throttling() {
    let db = PgDatabase::fresh().await;
    let smtp = SmtpSink::start().await;
    seed(&db, &smtp);
    let a = Instance::start(&db.url, smtp.port).await;
    let b = Instance::start(&db.url, smtp.port).await;

    // A session made on A is valid on B; logging out on B ends it on A too.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(login(&browser, &a, PASSWORD).await.status(), 200);
    assert_eq!(me(&browser, &b).await.as_deref(), Some("alice"));
    let logout = browser.post(b.url("/logout")).send().await.unwrap();
    assert!(logout.status().is_success() || logout.status().is_redirection());
    assert_eq!(me(&browser, &a).await, None);

    // Throttling counters are rows. One failure costs no wait; the second one (wherever it
    // happens) starts one. B has never seen this account fail, yet its first failure is the
    // account's second: it answers with the wait.
    let other = reqwest::Client::new();
    assert_eq!(login(&other, &a, "wrong one").await.status(), 401);
    let second = login(&other, &b, "wrong two").await;
    assert_eq!(second.status(), 429, "B counted A's failure");
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["error"], "login_failed", "{body}");
    assert!(
        body["retry_after_secs"].as_u64().is_some_and(|s| s >= 1),
        "{body}"
    );
    // After that wait (real time: these are server processes), A's next failure is the third and
    // starts a wait of 3 s, which B then keeps even for the right password.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = login(&other, &a, "wrong three").await;
    assert_eq!(third.status(), 429);
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["error"], "login_failed", "{body}");
    assert_eq!(body["retry_after_secs"].as_u64(), Some(3), "{body}");
    assert_eq!(
        login(&other, &b, PASSWORD).await.status(),
        429,
        "B waits as well"
    );
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (PostgreSQL); make test runs it"]
async fn two_delivery_workers_send_each_of_100_mails_exactly_once() {
    let db = PgDatabase::fresh().await;
    // Each instance sends to an SMTP server of its own, so what arrives where tells who sent it.
    // The servers take 50 ms per mail: one instance alone would need 5 s for all 100, while the
    // other looks for due mails every 2 s, so both get some.
    let smtp = [
        SmtpSink::start_slow(Duration::from_millis(50)).await,
        SmtpSink::start_slow(Duration::from_millis(50)).await,
    ];
    seed(&db, &smtp[0]);
    let a = Instance::start(&db.url, smtp[0].port).await;
    let b = Instance::start(&db.url, smtp[1].port).await;

    // 100 mails queued at once, as many registrations in one moment would leave them.
    db.queue_mails(100).await;
    wait_until(Duration::from_secs(60), "100 mails delivered", || {
        let n = smtp[0].count() + smtp[1].count();
        async move { n >= 100 }
    })
    .await;
    // Give a duplicate the chance to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (by_a, by_b) = (smtp[0].recipients(), smtp[1].recipients());
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "both instances sent mails: {} and {}",
        by_a.len(),
        by_b.len()
    );
    let mut recipients = [by_a, by_b].concat();
    recipients.sort();
    let before = recipients.len();
    recipients.dedup();
    assert_eq!(before, 100, "each mail once: {before} deliveries");
    assert_eq!(recipients.len(), 100);
    assert_eq!(db.unsent_mails().await, 0);
    drop((a, b));
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (PostgreSQL); make test runs it"]
async fn when_the_database_goes_away_requests_fail_fast_and_the_server_recovers() {
    let db = PgDatabase::fresh().await;
    let smtp = SmtpSink::start().await;
    seed(&db, &smtp);
    let switch = TcpSwitch::start(db.port()).await;
    let a = Instance::start(&db.url_via(switch.port), smtp.port).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(login(&browser, &a, PASSWORD).await.status(), 200);

    switch.set_up(false);
    let started = std::time::Instant::now();
    let ready = a.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let response = browser.post(a.url("/api/me")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({ "error": "unavailable" }),
        "the contract's error: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failed fast: {:?}",
        started.elapsed()
    );
    // The process is still there and answers what needs no database.
    assert_eq!(a.get("/health/live").await.status(), 200);

    switch.set_up(true);
    wait_until(Duration::from_secs(30), "ready again", || {
        let url = a.url("/health/ready");
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert_eq!(
        me(&browser, &a).await.as_deref(),
        Some("alice"),
        "the session survived"
    );
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL (PostgreSQL); make test runs it"]
async fn mails_wait_while_smtp_is_down_and_a_killed_server_loses_nothing() {
    let db = PgDatabase::fresh().await;
    let smtp = SmtpSink::start().await;
    seed(&db, &smtp);
    smtp.set_up(false);
    let mut a = Instance::start(&db.url, smtp.port).await;
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    assert_eq!(login(&admin, &a, PASSWORD).await.status(), 200);

    // A registration while SMTP is down: the user exists, the mail waits in the outbox.
    let created = admin
        .post(a.url("/api/users/create"))
        .form(&[
            ("first_name", "Nina"),
            ("last_name", "Neu"),
            ("email", "nina@acme.example"),
            ("username", "nina"),
            ("role", "user"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());
    // The server dies (SIGKILL) after its first delivery attempt failed. (Killed while it holds a
    // mail's lease, the mail waits for the lease to end, 2 minutes, and is not lost either.)
    wait_until(Duration::from_secs(10), "a failed first attempt", || {
        db.mail_attempted()
    })
    .await;
    a.kill().await;
    assert_eq!(
        db.unsent_mails().await,
        1,
        "the mail was queued with the user"
    );
    assert_eq!(db.users_named("nina").await, 1);

    // A new process; SMTP still down for a while: the mail keeps waiting.
    let b = Instance::start(&db.url, smtp.port).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(smtp.count(), 0);
    assert_eq!(db.unsent_mails().await, 1);

    // SMTP is back: the mail arrives, once.
    smtp.set_up(true);
    wait_until(Duration::from_secs(30), "the registration mail", || {
        let n = smtp.count();
        async move { n >= 1 }
    })
    .await;
    assert_eq!(smtp.recipients(), vec!["nina@acme.example".to_owned()]);
    assert_eq!(db.unsent_mails().await, 0);
    drop(b);
}
