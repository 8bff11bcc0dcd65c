//! Registered applications: the `app` commands through the real binary, the secret kept only as
//! its hash, URIs refused with the option named, company binding, and client authentication
//! (Basic, form, wrong secrets counted per client and address).

use crate::cli::cli;
use crate::helpers::TestApp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode, header};
use promio_server::domain::audit::AuditAction;
use promio_server::edge::oauth::OAuthError;
use promio_server::edge::oauth::client_auth;
use promio_server::idm::apps::{self, App, AppField, NewApp};
use std::collections::HashMap;
use std::net::IpAddr;

/// The value of `name: value` in the command's output.
fn printed(out: &str, name: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
}

fn basic(client_id: &str, secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let encoded = STANDARD.encode(format!("{client_id}:{secret}"));
    headers.insert(
        header::AUTHORIZATION,
        format!("Basic {encoded}").parse().unwrap(),
    );
    headers
}

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ip(raw: &str) -> Option<IpAddr> {
    Some(raw.parse().unwrap())
}

/// Client authentication as the token endpoint does it (public clients allowed).
async fn authenticate(
    app: &TestApp,
    headers: &HeaderMap,
    fields: &[(&str, &str)],
    from: &str,
) -> Result<App, OAuthError> {
    client_auth::authenticate_client(&app.core, headers, &form(fields), ip(from), true).await
}

fn refused_with(result: Result<App, OAuthError>) -> (&'static str, StatusCode) {
    let err = result.expect_err("refused");
    (err.error, err.status)
}

#[tokio::test]
async fn applications_are_created_listed_rotated_and_deleted_with_the_cli() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let (ok, out, err) = cli(
        &app,
        &[
            "app",
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example/cb",
            "--redirect-uri",
            "http://localhost:8080/cb",
            "--post-logout-redirect-uri",
            "https://wiki.example/bye",
            "--backchannel-logout-uri",
            "https://wiki.example/backchannel",
            "--company-id",
            "acme",
        ],
        "",
        &[],
    );
    assert!(ok, "{err}");
    let client_id = printed(&out, "client_id").expect("client_id printed");
    let secret = printed(&out, "client_secret").expect("client_secret printed");
    assert!(
        client_id.starts_with("app_") && client_id.len() == 26,
        "{client_id}"
    );
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    // Stored as registered, the secret only as its SHA-256.
    let wiki = apps::find(&app.core, &client_id).await.unwrap().unwrap();
    assert!(!wiki.public && wiki.pkce_required);
    assert_eq!(
        wiki.redirect_uris,
        ["https://wiki.example/cb", "http://localhost:8080/cb"]
    );
    assert_eq!(wiki.post_logout_redirect_uris, ["https://wiki.example/bye"]);
    assert_eq!(
        wiki.backchannel_logout_uri.as_deref(),
        Some("https://wiki.example/backchannel")
    );
    assert_eq!(wiki.company_id.as_deref(), Some("ACME"));
    let row = app.core.store.oauth_app(&client_id).await.unwrap().unwrap();
    assert_eq!(
        row.secret_hash.as_deref(),
        Some(promio_server::edge::oauth::hash_token(&secret).as_str())
    );
    for value in [
        &row.client_id,
        &row.name,
        &row.redirect_uris,
        &row.post_logout_redirect_uris,
        row.secret_hash.as_ref().unwrap(),
    ] {
        assert!(!value.contains(&secret), "{value}");
    }
    let audit = app.audit().await;
    assert!(audit.iter().all(|r| !r.detail.contains(&secret)));
    let platform = app
        .core
        .store
        .client_by_company_id(&app.core.settings.platform_company_id)
        .await
        .unwrap()
        .unwrap();
    let created = audit
        .iter()
        .find(|r| r.action == AuditAction::AppCreated)
        .expect("app.created audited");
    assert_eq!(created.client_id.as_deref(), Some(platform.id.as_str()));
    assert!(created.detail.contains(&client_id), "{}", created.detail);
    // The secret works.
    assert!(
        authenticate(&app, &basic(&client_id, &secret), &[], "203.0.113.7")
            .await
            .is_ok()
    );

    // A public application: no secret.
    let (ok, out, err) = cli(
        &app,
        &[
            "app",
            "create",
            "--name",
            "Phone app",
            "--redirect-uri",
            "http://127.0.0.1:7000/cb",
            "--public",
        ],
        "",
        &[],
    );
    assert!(ok, "{err}");
    let phone = printed(&out, "client_id").expect("client_id printed");
    assert!(printed(&out, "client_secret").is_none(), "{out}");

    let (ok, out, err) = cli(&app, &["app", "list"], "", &[]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l
            == format!(
                "{client_id}\tWiki\tconfidential\tACME\thttps://wiki.example/cb http://localhost:8080/cb"
            )),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l == format!("{phone}\tPhone app\tpublic\t-\thttp://127.0.0.1:7000/cb")),
        "{out}"
    );

    // A new secret replaces the old one at once.
    let (ok, out, err) = cli(
        &app,
        &["app", "rotate-secret", "--client-id", &client_id],
        "",
        &[],
    );
    assert!(ok, "{err}");
    let rotated = printed(&out, "client_secret").expect("client_secret printed");
    assert_ne!(rotated, secret);
    assert_eq!(
        refused_with(authenticate(&app, &basic(&client_id, &secret), &[], "203.0.113.7").await),
        ("invalid_client", StatusCode::UNAUTHORIZED)
    );
    assert!(
        authenticate(&app, &basic(&client_id, &rotated), &[], "203.0.113.7")
            .await
            .is_ok()
    );
    let (ok, _, err) = cli(
        &app,
        &["app", "rotate-secret", "--client-id", &phone],
        "",
        &[],
    );
    assert!(
        !ok && err.contains("--client-id: a public application has no secret"),
        "{err}"
    );

    // Deleted: gone from the list, its secret no longer accepted.
    let (ok, _, err) = cli(&app, &["app", "delete", "--client-id", &client_id], "", &[]);
    assert!(ok, "{err}");
    let (_, out, _) = cli(&app, &["app", "list"], "", &[]);
    assert!(!out.contains(&client_id) && out.contains(&phone), "{out}");
    assert!(apps::find(&app.core, &client_id).await.unwrap().is_none());
    assert_eq!(
        refused_with(authenticate(&app, &basic(&client_id, &rotated), &[], "203.0.113.7").await).0,
        "invalid_client"
    );
    let (ok, _, err) = cli(&app, &["app", "delete", "--client-id", &client_id], "", &[]);
    assert!(
        !ok && err.contains("--client-id: no such application"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &app,
        &["app", "rotate-secret", "--client-id", &client_id],
        "",
        &[],
    );
    assert!(
        !ok && err.contains("--client-id: no such application"),
        "{err}"
    );

    let audit = app.audit().await;
    for action in [
        AuditAction::AppCreated,
        AuditAction::AppSecretRotated,
        AuditAction::AppDeleted,
    ] {
        assert!(
            audit
                .iter()
                .any(|r| r.action == action && r.detail.contains(&client_id)),
            "{action}"
        );
    }
    assert!(audit.iter().all(|r| !r.detail.contains(&rotated)));
}

#[tokio::test]
async fn the_cli_registers_a_confidential_application_without_pkce_and_changes_the_rule() {
    let app = TestApp::spawn().await;
    let create = |extra: &[&'static str]| {
        let mut args = vec![
            "app",
            "create",
            "--name",
            "Legacy",
            "--redirect-uri",
            "https://legacy.example/cb",
        ];
        args.extend_from_slice(extra);
        cli(&app, &args, "", &[])
    };
    let set = |client_id: &str, required: &'static str| {
        let args = [
            "app",
            "set",
            "--client-id",
            client_id,
            "--pkce-required",
            required,
        ];
        cli(&app, &args, "", &[])
    };
    let (ok, out, err) = create(&["--pkce-required", "false"]);
    assert!(ok, "{err}");
    let legacy = printed(&out, "client_id").expect("client_id printed");
    assert!(printed(&out, "client_secret").is_some());
    assert!(
        !apps::find(&app.core, &legacy)
            .await
            .unwrap()
            .unwrap()
            .pkce_required
    );
    let (ok, out, err) = cli(&app, &["app", "list"], "", &[]);
    assert!(ok, "{err}");
    assert!(
        out.lines().any(|l| l
            == format!(
                "{legacy}\tLegacy\tconfidential (PKCE optional)\t-\thttps://legacy.example/cb"
            )),
        "{out}"
    );

    // A public application always uses PKCE: refused, nothing registered.
    let (ok, _, err) = create(&["--public", "--pkce-required", "false"]);
    assert!(!ok && err.contains("--pkce-required"), "{err}");
    let refusal = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Phone".into(),
            redirect_uris: vec!["http://127.0.0.1:7000/cb".into()],
            public: true,
            pkce_optional: true,
            ..NewApp::default()
        },
    )
    .await
    .expect_err("refused");
    assert_eq!(refusal.field, Some(AppField::PkceOptional));
    assert!(
        refusal.to_string().starts_with("--pkce-required: "),
        "{refusal}"
    );
    assert_eq!(apps::list(&app.core).await.unwrap().len(), 1);

    // The rule changes on the registration, audited; a public or unknown one is refused.
    let (ok, out, err) = set(&legacy, "true");
    assert!(ok, "{err}");
    assert!(out.contains("PKCE required"), "{out}");
    assert!(
        apps::find(&app.core, &legacy)
            .await
            .unwrap()
            .unwrap()
            .pkce_required
    );
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::AppChanged
                && r.detail == format!("application {legacy}: PKCE required"))
    );
    let (ok, out, err) = create(&["--public"]);
    assert!(ok, "{err}");
    let phone = printed(&out, "client_id").unwrap();
    let (ok, _, err) = set(&phone, "false");
    assert!(
        !ok && err.contains("--pkce-required: a public application always uses PKCE"),
        "{err}"
    );
    let (ok, out, err) = set(&phone, "true");
    assert!(ok && out.contains("PKCE required"), "{out}{err}");
    assert!(
        apps::find(&app.core, &phone)
            .await
            .unwrap()
            .unwrap()
            .pkce_required
    );
    let (ok, _, err) = set("app_nothing", "false");
    assert!(
        !ok && err.contains("--client-id: no such application"),
        "{err}"
    );
}

#[tokio::test]
async fn a_refused_uri_names_its_option_and_registers_nothing() {
    fn create_with(app: &TestApp, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["app", "create", "--name", "Wiki"];
        args.extend_from_slice(extra);
        cli(app, &args, "", &[])
    }
    let app = TestApp::spawn().await;
    let create = |extra: &[&str]| create_with(&app, extra);
    let (ok, _, err) = create(&["--redirect-uri", "http://wiki.example/cb"]);
    assert!(
        !ok && err.contains("--redirect-uri: http is only allowed on localhost"),
        "{err}"
    );
    let (ok, _, err) = create(&["--redirect-uri", "http://localhost.evil.example/cb"]);
    assert!(
        !ok && err.contains("--redirect-uri: http is only allowed"),
        "{err}"
    );
    let (ok, _, err) = create(&[
        "--redirect-uri",
        "https://wiki.example/cb",
        "--post-logout-redirect-uri",
        "https://wiki.example/bye#now",
    ]);
    assert!(
        !ok && err.contains("--post-logout-redirect-uri: must not contain a fragment"),
        "{err}"
    );
    let (ok, _, err) = create(&[
        "--redirect-uri",
        "https://wiki.example/cb",
        "--backchannel-logout-uri",
        "javascript:alert(1)",
    ]);
    assert!(!ok && err.contains("--backchannel-logout-uri: "), "{err}");
    let (ok, _, err) = create(&["--redirect-uri", "https://admin:pw@wiki.example/cb"]);
    assert!(
        !ok && err.contains("--redirect-uri: must not contain a user name or password"),
        "{err}"
    );
    let (ok, _, err) = create(&["--redirect-uri", "/cb"]);
    assert!(
        !ok && err.contains("--redirect-uri: must be an absolute URL"),
        "{err}"
    );
    let (ok, _, err) = cli(
        &app,
        &[
            "app",
            "create",
            "--name",
            "",
            "--redirect-uri",
            "https://wiki.example/cb",
        ],
        "",
        &[],
    );
    assert!(!ok && err.contains("--name: "), "{err}");
    assert_eq!(app.count_rows("oauth_apps").await, 0);

    // The same rules without the command line (the console's path): the field is named.
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("https://wiki.example/cb{i}"))
        .collect();
    let refusal = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            redirect_uris: eleven,
            ..NewApp::default()
        },
    )
    .await
    .expect_err("eleven redirect URIs");
    assert_eq!(refusal.field, Some(AppField::RedirectUris));
    let refusal = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            ..NewApp::default()
        },
    )
    .await
    .expect_err("no redirect URI");
    assert_eq!(refusal.field, Some(AppField::RedirectUris));
    assert_eq!(app.count_rows("oauth_apps").await, 0);
}

#[tokio::test]
async fn an_application_for_an_unknown_company_is_refused() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    let (ok, _, err) = cli(
        &app,
        &[
            "app",
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example/cb",
            "--company-id",
            "NOPE",
        ],
        "",
        &[],
    );
    assert!(!ok && err.contains("--company-id: no such client"), "{err}");
    let refusal = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            company_id: Some("NOPE".into()),
            ..NewApp::default()
        },
    )
    .await
    .expect_err("an unknown company");
    assert_eq!(refusal.field, Some(AppField::CompanyId));
    assert_eq!(app.count_rows("oauth_apps").await, 0);

    // A known one binds the application to that client's row.
    let created = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            company_id: Some("acme".into()),
            ..NewApp::default()
        },
    )
    .await
    .expect("a known company");
    let acme = app
        .core
        .store
        .client_by_company_id(&promio_server::domain::CompanyId::parse("ACME").unwrap())
        .await
        .unwrap()
        .unwrap();
    let wiki = apps::find(&app.core, &created.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(wiki.client_row_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(wiki.company_id.as_deref(), Some("ACME"));
}

#[tokio::test]
async fn clients_authenticate_with_basic_or_the_form_and_only_one_way() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn().await;
    let confidential = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let id = confidential.client_id.as_str();
    let secret = confidential.client_secret.unwrap();
    let secret = secret.expose_secret();
    let public = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Phone".into(),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            public: true,
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    assert!(public.client_secret.is_none());
    let none = HeaderMap::new();
    let from = "203.0.113.7";

    // client_secret_basic, and client_secret_post.
    let by_basic = authenticate(&app, &basic(id, secret), &[], from).await;
    assert_eq!(by_basic.unwrap().client_id, id);
    let by_post = authenticate(
        &app,
        &none,
        &[("client_id", id), ("client_secret", secret)],
        from,
    )
    .await;
    assert_eq!(by_post.unwrap().client_id, id);
    // The same client_id beside Basic is fine; a secret in both places is not.
    assert!(
        authenticate(&app, &basic(id, secret), &[("client_id", id)], from)
            .await
            .is_ok()
    );
    assert_eq!(
        refused_with(
            authenticate(&app, &basic(id, secret), &[("client_secret", secret)], from).await
        ),
        ("invalid_request", StatusCode::BAD_REQUEST)
    );
    // Wrong or missing secrets, unknown clients.
    for (headers, fields) in [
        (basic(id, "wrong"), vec![]),
        (
            none.clone(),
            vec![("client_id", id), ("client_secret", "wrong")],
        ),
        (none.clone(), vec![("client_id", id)]),
        (basic("app_unknown", secret), vec![]),
        (none.clone(), vec![]),
    ] {
        assert_eq!(
            refused_with(authenticate(&app, &headers, &fields, from).await),
            ("invalid_client", StatusCode::UNAUTHORIZED),
            "{fields:?}"
        );
    }
    // A public client names itself, where the endpoint allows public clients.
    let phone = public.client_id.as_str();
    assert!(
        authenticate(&app, &none, &[("client_id", phone)], from)
            .await
            .is_ok()
    );
    let confidential_only = client_auth::authenticate_client(
        &app.core,
        &none,
        &form(&[("client_id", phone)]),
        ip(from),
        false,
    )
    .await;
    assert_eq!(refused_with(confidential_only).0, "invalid_client");
    let with_a_secret = authenticate(
        &app,
        &none,
        &[("client_id", phone), ("client_secret", "made-up")],
        from,
    )
    .await;
    assert_eq!(refused_with(with_a_secret).0, "invalid_client");
}

#[tokio::test]
async fn wrong_client_secrets_are_throttled_per_client_and_address() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn().await;
    let created = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let id = created.client_id.as_str();
    let secret = created.client_secret.unwrap();
    let secret = secret.expose_secret();
    let (attacker, office) = ("203.0.113.7", "198.51.100.20");

    // A success clears the count: nine failures, a success, nine more, and the secret still works.
    for _ in 0..9 {
        assert!(
            authenticate(&app, &basic(id, "wrong"), &[], attacker)
                .await
                .is_err()
        );
    }
    assert!(
        authenticate(&app, &basic(id, secret), &[], attacker)
            .await
            .is_ok()
    );
    for _ in 0..9 {
        assert!(
            authenticate(&app, &basic(id, "wrong"), &[], attacker)
                .await
                .is_err()
        );
    }
    assert!(
        authenticate(&app, &basic(id, secret), &[], attacker)
            .await
            .is_ok()
    );

    // Ten failures in a row fill the counter. From that address further wrong secrets are refused
    // without being counted, for the rest of the 15 minutes, while the right secret still works:
    // failures must not lock the real application out.
    for _ in 0..10 {
        assert!(
            authenticate(&app, &basic(id, "wrong"), &[], attacker)
                .await
                .is_err()
        );
    }
    assert_eq!(failures(&app, id, attacker).await, Some(10));
    for _ in 0..5 {
        assert_eq!(
            refused_with(authenticate(&app, &basic(id, "wrong"), &[], attacker).await),
            ("invalid_client", StatusCode::UNAUTHORIZED)
        );
    }
    assert_eq!(
        failures(&app, id, attacker).await,
        Some(10),
        "refused beyond the limit without being counted"
    );
    assert!(
        authenticate(&app, &basic(id, secret), &[], office)
            .await
            .is_ok()
    );
    assert_eq!(failures(&app, id, attacker).await, Some(10));
    app.clock.advance(14 * 60);
    assert!(
        authenticate(&app, &basic(id, secret), &[], attacker)
            .await
            .is_ok(),
        "the right secret works while the counter is full"
    );
    assert_eq!(failures(&app, id, attacker).await, None, "and clears it");
}

/// The `oauth.refused` events of the audit log, newest first.
async fn refusals(app: &TestApp) -> Vec<promio_server::store::audit::AuditRow> {
    app.audit()
        .await
        .into_iter()
        .filter(|e| e.action == AuditAction::OAuthRefused)
        .collect()
}

/// The failed client authentications counted for `client_id` from `from`.
async fn failures(app: &TestApp, client_id: &str, from: &str) -> Option<i64> {
    let key = format!("oauth-client:{client_id}:{from}");
    app.core
        .store
        .throttle_row(&key)
        .await
        .unwrap()
        .map(|row| row.failures)
}

#[tokio::test]
async fn refused_client_authentications_are_audited_once_per_client_address_and_hour() {
    use secrecy::ExposeSecret;
    let app = TestApp::spawn().await;
    let created = apps::create(
        &app.core,
        "",
        NewApp {
            name: "Wiki".into(),
            redirect_uris: vec!["https://wiki.example/cb".into()],
            ..NewApp::default()
        },
    )
    .await
    .unwrap();
    let id = created.client_id.as_str();
    let secret = created.client_secret.unwrap();
    let (attacker, office) = ("203.0.113.7", "198.51.100.20");

    for _ in 0..3 {
        assert!(
            authenticate(&app, &basic(id, "wrong"), &[], attacker)
                .await
                .is_err()
        );
    }
    let logged = refusals(&app).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].detail.contains(id), "{}", logged[0].detail);
    assert!(
        logged[0].detail.contains("wrong or missing client secret"),
        "{}",
        logged[0].detail
    );
    assert_eq!(logged[0].ip.as_deref(), Some(attacker));

    // Another address gets its own row; unknown clients and missing credentials one per address.
    assert!(
        authenticate(&app, &basic(id, "wrong"), &[], office)
            .await
            .is_err()
    );
    for _ in 0..3 {
        let unknown = basic("app_unknown", secret.expose_secret());
        assert!(authenticate(&app, &unknown, &[], attacker).await.is_err());
        assert!(
            authenticate(&app, &HeaderMap::new(), &[], attacker)
                .await
                .is_err()
        );
    }
    let logged = refusals(&app).await;
    assert_eq!(logged.len(), 3, "{logged:?}");
    assert!(
        logged
            .iter()
            .any(|e| e.detail.contains("unknown client") && e.ip.as_deref() == Some(attacker)),
        "{logged:?}"
    );

    // An hour later the first refusal from the attacker's address is written again.
    app.clock.advance(3600);
    assert!(
        authenticate(&app, &basic(id, "wrong"), &[], attacker)
            .await
            .is_err()
    );
    assert_eq!(refusals(&app).await.len(), 4);
}
