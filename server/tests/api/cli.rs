//! The command line for day two, run as the real binary against a test app's database: lists,
//! changes, secrets from standard input, the settings check, and the first operator from the
//! environment.

use crate::helpers::{PASSWORD, TestApp};
use promio_server::domain::audit::AuditAction;
use promio_server::domain::{Role, UserStatus};
use promio_server::idm::directory::System;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `promio-connect ARGS` with the app's database and key; returns success, stdout, stderr.
pub(crate) fn cli(
    app: &TestApp,
    args: &[&str],
    input: &str,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let data = std::env::temp_dir().join(format!("promio-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_promio-connect"));
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &app.core.settings.database_url)
        .env("SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .env("PUBLIC_URL", app.core.settings.public_url.as_str())
        .env("DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run promio-connect");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("promio-connect ends");
    let _ = std::fs::remove_dir_all(data);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn clients_and_users_are_listed_and_shown() {
    let app = TestApp::with_user("ACME", "erika").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    let (ok, out, err) = cli(&app, &["client", "list"], "", &[]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ACME\tACME GmbH\tactive\t-\t2")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("promio\t")), "{out}");
    let (ok, out, err) = cli(&app, &["client", "show", "--company-id", "acme"], "", &[]);
    assert!(ok, "{err}");
    for line in [
        "company ID: ACME",
        "users: 2",
        "reset link: 24 h",
        "deactivated users deleted after: 6 months",
        "inactive users deactivated after: never",
        "SSO: off",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let (ok, _, err) = cli(&app, &["client", "show", "--company-id", "NOPE"], "", &[]);
    assert!(!ok && err.contains("--company-id: no such client"), "{err}");

    let (ok, out, err) = cli(&app, &["user", "list", "--company-id", "ACME"], "", &[]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("username\tstatus\trole\temail\tname\t2fa\tpasskeys\n"),
        "{out}"
    );
    assert!(
        out.contains("erika\tactive\tuser\terika@acme.example\tTest erika\toff\t0"),
        "{out}"
    );
    let (ok, out, _) = cli(
        &app,
        &["user", "list", "--company-id", "ACME", "--search", "bo"],
        "",
        &[],
    );
    assert!(
        ok && out.contains("boss\t") && !out.contains("erika\t"),
        "{out}"
    );
}

#[tokio::test]
async fn user_set_changes_role_status_and_names_and_is_audited() {
    let app = TestApp::with_user("ACME", "erika").await;
    let browser = app.new_browser();
    assert_eq!(app.login_in(&browser, "ACME", "erika").await.status(), 200);
    let (ok, out, err) = cli(
        &app,
        &[
            "user",
            "set",
            "--company-id",
            "ACME",
            "--username",
            "erika",
            "--role",
            "admin",
            "--status",
            "deactivated",
            "--first-name",
            "Erika",
            "--last-name",
            "Muster",
        ],
        "",
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("user erika: deactivated admin"), "{out}");
    // Deactivated: her session ended.
    assert!(app.me_in(&browser).await.is_none());
    let erika = app.user_id("ACME", "erika").await;
    let row = System::job()
        .directory(&app.core)
        .user(&erika)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.role(), row.status(), row.first_name.as_str()),
        (Role::Admin, UserStatus::Deactivated, "Erika")
    );
    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.action == AuditAction::UserDeactivated)
    );
    assert!(audit.iter().any(|r| r.action == AuditAction::UserChanged));
    // Reactivated, she logs in again.
    let (ok, _, err) = cli(
        &app,
        &[
            "user",
            "set",
            "--company-id",
            "ACME",
            "--username",
            "erika",
            "--status",
            "active",
        ],
        "",
        &[],
    );
    assert!(ok, "{err}");
    assert_eq!(app.login_in(&browser, "ACME", "erika").await.status(), 200);
    // Bad values are named with their flag and change nothing.
    let (ok, _, err) = cli(
        &app,
        &[
            "user",
            "set",
            "--company-id",
            "ACME",
            "--username",
            "erika",
            "--role",
            "operator",
        ],
        "",
        &[],
    );
    assert!(!ok && err.contains("--role"), "{err}");
    let (ok, _, err) = cli(
        &app,
        &[
            "user",
            "set",
            "--company-id",
            "ACME",
            "--username",
            "erika",
            "--email",
            "no",
        ],
        "",
        &[],
    );
    assert!(!ok && err.contains("--email"), "{err}");
    let (ok, _, err) = cli(
        &app,
        &[
            "user",
            "set",
            "--company-id",
            "ACME",
            "--username",
            "nobody",
            "--role",
            "admin",
        ],
        "",
        &[],
    );
    assert!(
        !ok && err.contains("--username: no such user in ACME"),
        "{err}"
    );
    let row = System::job()
        .directory(&app.core)
        .user(&erika)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.role(), row.email.as_str()),
        (Role::Admin, "erika@acme.example")
    );
}

#[tokio::test]
async fn secrets_come_from_standard_input_and_an_empty_one_is_refused() {
    let app = TestApp::with_user("ACME", "erika").await;
    let (ok, _, err) = cli(
        &app,
        &[
            "client",
            "sso",
            "--company-id",
            "ACME",
            "--issuer",
            "https://idp.example",
            "--client-id",
            "promio",
            "--client-secret-stdin",
            "--domains",
            "acme.example",
        ],
        "",
        &[],
    );
    assert!(
        !ok && err.contains("--client-secret-stdin: standard input was empty"),
        "{err}"
    );
    // Both ways at once are refused by the parser.
    let (ok, _, err) = cli(
        &app,
        &[
            "client",
            "sso",
            "--company-id",
            "ACME",
            "--issuer",
            "https://idp.example",
            "--client-id",
            "promio",
            "--client-secret",
            "x",
            "--client-secret-stdin",
            "--domains",
            "acme.example",
        ],
        "secret\n",
        &[],
    );
    assert!(!ok && err.contains("cannot be used with"), "{err}");
}

#[tokio::test]
async fn config_check_prints_the_settings_with_secrets_masked_and_fails_on_a_bad_one() {
    let app = TestApp::spawn().await;
    let (ok, out, err) = cli(
        &app,
        &["config", "check"],
        "",
        &[
            (
                "DATABASE_URL",
                "postgres://promio:hunter2@db.example/promio",
            ),
            ("METRICS_TOKEN", "a-long-metrics-token-123"),
            ("SMTP_URL", "smtps://mailer:mailpass@smtp.example"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("DATABASE_URL = postgres://promio:***@db.example/promio"),
        "{out}"
    );
    assert!(out.contains("SECRET_KEY = (set, not shown)"), "{out}");
    assert!(out.contains("METRICS_TOKEN = (set, not shown)"), "{out}");
    assert!(out.contains("SESSION_IDLE_MINUTES = 60"), "{out}");
    assert!(out.ends_with("settings are valid\n"), "{out}");
    for secret in [
        "hunter2",
        "a-long-metrics-token-123",
        "mailpass",
        "MDEyMzQ1",
    ] {
        assert!(!out.contains(secret), "{secret} shown: {out}");
    }
    let (ok, out, err) = cli(
        &app,
        &["config", "check"],
        "",
        &[("SESSION_IDLE_MINUTES", "0")],
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("SESSION_IDLE_MINUTES"), "{err}");
}

#[tokio::test]
async fn the_first_operator_comes_from_the_environment_once() {
    let app = TestApp::spawn_with(&[
        ("BOOTSTRAP_OPERATOR_USERNAME", "root"),
        ("BOOTSTRAP_OPERATOR_EMAIL", "root@promio.example"),
        ("BOOTSTRAP_OPERATOR_PASSWORD", PASSWORD),
    ])
    .await;
    promio_server::edge::cli::bootstrap_operator(&app.core)
        .await
        .unwrap();
    app.login_ok("promio", "root").await;
    assert_eq!(
        app.me().await.unwrap().role,
        promio_app::api::Role::Operator
    );
    // Once an operator exists, the variables make no other and change nobody.
    promio_server::edge::cli::bootstrap_operator(&app.core)
        .await
        .unwrap();
    let other = TestApp::spawn_with(&[
        ("BOOTSTRAP_OPERATOR_USERNAME", "second"),
        ("BOOTSTRAP_OPERATOR_EMAIL", "second@promio.example"),
        ("BOOTSTRAP_OPERATOR_PASSWORD", PASSWORD),
    ])
    .await;
    other.create_user("promio", "ops", Role::Operator).await;
    promio_server::edge::cli::bootstrap_operator(&other.core)
        .await
        .unwrap();
    assert_eq!(
        other.login("promio", "second", PASSWORD).await.status(),
        401,
        "no second operator"
    );
    // A weak password is named by its variable and stops the start.
    let weak = TestApp::spawn_with(&[
        ("BOOTSTRAP_OPERATOR_USERNAME", "root"),
        ("BOOTSTRAP_OPERATOR_EMAIL", "root@promio.example"),
        ("BOOTSTRAP_OPERATOR_PASSWORD", "short"),
    ])
    .await;
    let err = promio_server::edge::cli::bootstrap_operator(&weak.core)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("BOOTSTRAP_OPERATOR_PASSWORD"),
        "{err}"
    );
    // Only some of the three: the settings are refused, naming what is missing.
    let mut env = std::collections::HashMap::new();
    env.insert("BOOTSTRAP_OPERATOR_USERNAME".to_owned(), "root".to_owned());
    env.insert(
        "SECRET_KEY".to_owned(),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
    );
    let Err(err) = promio_server::infra::config::Settings::from_sources(&env) else {
        panic!("the settings were taken");
    };
    assert!(
        err.to_string().contains("BOOTSTRAP_OPERATOR_EMAIL"),
        "{err}"
    );
}

/// An identity provider that answers what `client sso` checks before it stores anything: the
/// discovery document (naming this issuer) and its key set. Returns the issuer.
async fn discovery_only_provider() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let issuer = format!("http://{}", listener.local_addr().expect("local address"));
    let document = serde_json::json!({
        "issuer": issuer.as_str(),
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let keys = serde_json::json!({ "keys": [] });
    let routes = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(document) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move { axum::Json(keys) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes).await;
    });
    issuer
}

// The command runs as a child process that this test's thread waits for; the provider answers it
// from the runtime's worker threads meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_secret_is_read_from_standard_input_and_stored_sealed() {
    use promio_server::infra::crypto;
    use secrecy::ExposeSecret;
    let app = TestApp::with_user("ACME", "erika").await;
    let issuer = discovery_only_provider().await;
    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "sso",
            "--company-id",
            "ACME",
            "--issuer",
            issuer.as_str(),
            "--client-id",
            "promio",
            "--client-secret-stdin",
            "--domains",
            "acme.example",
        ],
        "a secret that came from standard input\n",
        &[("SSO_ALLOW_HTTP_ISSUER", "true")],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("single sign-on through {issuer}")),
        "{out}"
    );
    let client = app
        .core
        .store
        .client_by_company_id(&promio_server::domain::CompanyId::parse("ACME").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.sso_issuer.as_deref(), Some(issuer.as_str()));
    let sealed = client.sso_client_secret.expect("a stored client secret");
    let key = crypto::derive_key(
        app.core.settings.secret_key.expose_secret(),
        "promio.connect sso client secret",
    );
    let secret = crypto::open(&key, &sealed).unwrap();
    assert_eq!(
        secret, b"a secret that came from standard input",
        "the secret as typed, without the line's end"
    );
}

#[tokio::test]
async fn a_start_that_finds_no_operator_makes_the_first_one_from_the_environment() {
    use promio_app::api::{LoginOutcome, Me};
    use tokio::io::AsyncBufReadExt;
    // A fresh database: the platform client exists, no operator does.
    let app = TestApp::spawn().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    // Never the default (half the cores), so that the count below shows the setting applied.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let async_workers = (cores / 2).max(1) + 2;
    let data = std::env::temp_dir().join(format!("promio-srv-{}", uuid::Uuid::new_v4().simple()));
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_promio-connect"))
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", &app.core.settings.database_url)
        .env("SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .env("PUBLIC_URL", &base)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("DATA_DIR", &data)
        .env("HASH_WORKERS", "1")
        .env("ASYNC_WORKERS", async_workers.to_string())
        .env("RUST_LOG", "warn")
        .env("BOOTSTRAP_OPERATOR_USERNAME", "root")
        .env("BOOTSTRAP_OPERATOR_EMAIL", "root@promio.example")
        .env("BOOTSTRAP_OPERATOR_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start promio-connect serve");
    // What it says until it listens (stdout is line-buffered: each line as it is written).
    let mut lines = tokio::io::BufReader::new(server.stdout.take().expect("stdout")).lines();
    let mut said = Vec::new();
    let listening = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("the server's output") {
            let done = line.starts_with("promio.connect listening on");
            said.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(listening, Ok(true)),
        "the server did not start: {said:?}"
    );
    assert!(
        said.iter()
            .any(|l| l.starts_with("first operator root created in promio")),
        "{said:?}"
    );
    // The async runtime has the workers `ASYNC_WORKERS` asks for (the metrics ask the runtime).
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics request")
        .text()
        .await
        .expect("metrics");
    let expected = format!("promio_async_workers {async_workers}");
    assert!(metrics.lines().any(|l| l == expected), "{metrics}");

    // The operator logs in to that server with the password from the environment.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("http client");
    let login = browser
        .post(format!("{base}/api/login"))
        .form(&[
            ("company_id", "promio"),
            ("username", "root"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("login request");
    assert_eq!(login.status(), 200);
    assert_eq!(
        login.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::LoggedIn
    );
    let me: Option<Me> = browser
        .post(format!("{base}/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me.map(|m| m.role), Some(promio_app::api::Role::Operator));
    server.kill().await.expect("stop the server");
    let _ = std::fs::remove_dir_all(data);
}
