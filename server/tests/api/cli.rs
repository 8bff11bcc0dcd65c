//! The command line for day two, run as the real binary against a test app's database: lists,
//! changes, secrets from standard input, the settings check, and the first operator from the
//! environment.

use crate::helpers::{PASSWORD, TestApp};
use promio_app::api::{Role, UserStatus};
use promio_server::audit::AuditAction;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `promio-connect ARGS` with the app's database and key; returns success, stdout, stderr.
fn cli(app: &TestApp, args: &[&str], input: &str, env: &[(&str, &str)]) -> (bool, String, String) {
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
    let row = app.core.store.user_by_id(&erika).await.unwrap().unwrap();
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
    let row = app.core.store.user_by_id(&erika).await.unwrap().unwrap();
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
    promio_server::cli::bootstrap_operator(&app.core)
        .await
        .unwrap();
    app.login_ok("promio", "root").await;
    assert_eq!(app.me().await.unwrap().role, Role::Operator);
    // Once an operator exists, the variables make no other and change nobody.
    promio_server::cli::bootstrap_operator(&app.core)
        .await
        .unwrap();
    let other = TestApp::spawn_with(&[
        ("BOOTSTRAP_OPERATOR_USERNAME", "second"),
        ("BOOTSTRAP_OPERATOR_EMAIL", "second@promio.example"),
        ("BOOTSTRAP_OPERATOR_PASSWORD", PASSWORD),
    ])
    .await;
    other.create_user("promio", "ops", Role::Operator).await;
    promio_server::cli::bootstrap_operator(&other.core)
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
    let err = promio_server::cli::bootstrap_operator(&weak.core)
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
    let Err(err) = promio_server::config::Settings::from_sources(&env) else {
        panic!("the settings were taken");
    };
    assert!(
        err.to_string().contains("BOOTSTRAP_OPERATOR_EMAIL"),
        "{err}"
    );
}
