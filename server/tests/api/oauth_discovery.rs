//! The OpenID Provider's base: discovery names the issuer (`PUBLIC_URL`) and every endpoint under
//! it; the JWKS publishes the key that signs, a rotated key is published an hour before it signs
//! and the one it replaces leaves the JWKS once its tokens expired; sessions record how the
//! person logged in (the ID token's `amr`).

use crate::helpers::{PASSWORD, START, TestApp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use promio_app::api::LoginOutcome;
use promio_server::idm::signing as keys;
use serde_json::{Value, json};
use std::process::{Command, Stdio};

async fn discovery(app: &TestApp) -> (reqwest::header::HeaderMap, Value) {
    let response = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

/// The JWKS as a relying party reads it: from the `jwks_uri` that discovery names.
async fn jwks(app: &TestApp) -> Value {
    let (_, document) = discovery(app).await;
    let uri = document["jwks_uri"].as_str().unwrap().to_owned();
    let response = app.client.get(uri).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=300",
        "relying parties may keep the keys a few minutes"
    );
    response.json().await.unwrap()
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    jwks(app).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn sign(app: &TestApp) -> String {
    keys::sign(&app.core, &json!({"sub": "someone", "aud": "app_x"}), "JWT")
        .await
        .unwrap()
}

fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(header).unwrap()).unwrap()
}

fn kid_of(jwt: &str) -> String {
    header_of(jwt)["kid"].as_str().unwrap().to_owned()
}

/// Checks a JWT's RS256 signature with the JWK alone (as a relying party does), with OpenSSL.
fn signed_by(jwt: &str, jwk: &Value) -> bool {
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::sign::Verifier;
    let part =
        |name: &str| BigNum::from_slice(&B64.decode(jwk[name].as_str().unwrap()).unwrap()).unwrap();
    let key = PKey::from_rsa(Rsa::from_public_components(part("n"), part("e")).unwrap()).unwrap();
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key).unwrap();
    verifier.update(input.as_bytes()).unwrap();
    verifier
        .verify(&B64.decode(signature).unwrap())
        .unwrap_or(false)
}

#[tokio::test]
async fn discovery_names_the_public_url_as_issuer_and_every_endpoint_under_it() {
    let app = TestApp::spawn().await;
    let (headers, document) = discovery(&app).await;
    // PUBLIC_URL is `http://127.0.0.1:PORT` (the app's address), without a `/` added.
    assert_eq!(document["issuer"], app.address.as_str());
    assert_eq!(
        document["issuer"],
        app.core.settings.public_url.as_str().trim_end_matches('/')
    );
    let issuer = document["issuer"].as_str().unwrap();
    for (name, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("jwks_uri", "/oauth/jwks"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        let url = document[name].as_str().unwrap_or_default();
        assert_eq!(url, format!("{issuer}{path}"), "{name}");
    }
    assert_eq!(document["response_types_supported"], json!(["code"]));
    assert_eq!(document["response_modes_supported"], json!(["query"]));
    assert_eq!(
        document["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        document["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(document["subject_types_supported"], json!(["public"]));
    assert_eq!(
        document["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    for flag in [
        "authorization_response_iss_parameter_supported",
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
    ] {
        assert_eq!(document[flag], true, "{flag}");
    }
    for flag in [
        "claims_parameter_supported",
        "request_parameter_supported",
        "request_uri_parameter_supported",
    ] {
        assert_eq!(document[flag], false, "{flag}");
    }
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(
            document["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(scope)),
            "{scope}"
        );
    }
    for claim in [
        "sub",
        "amr",
        "auth_time",
        "company_id",
        "company_name",
        "sid",
    ] {
        assert!(
            document["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    assert_eq!(document["ui_locales_supported"], json!(["de", "en"]));
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert_eq!(headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn the_jwks_publishes_the_key_that_signs() {
    let app = TestApp::spawn().await;
    let token = sign(&app).await;
    let header = header_of(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let set = jwks(&app).await;
    let published = set["keys"].as_array().unwrap();
    assert_eq!(published.len(), 1, "one key at first start: {set}");
    let key = &published[0];
    assert_eq!(key["kid"], header["kid"]);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert!(key.get("d").is_none(), "no private part: {key}");
    assert!(
        signed_by(&token, key),
        "the published key verifies the token"
    );
    assert_eq!(
        keys::verify(&app.core, &token).await,
        Some(json!({"sub": "someone", "aud": "app_x"}))
    );
    let logout = keys::sign(&app.core, &json!({"sub": "someone"}), "logout+jwt")
        .await
        .unwrap();
    assert_eq!(header_of(&logout)["typ"], "logout+jwt");

    // A second instance on the same database signs with the same key (none is made twice).
    let other = app.second_instance().await;
    let theirs = keys::sign(&other, &json!({"sub": "someone"}), "JWT")
        .await
        .unwrap();
    assert_eq!(kid_of(&theirs), kid_of(&token));
    assert_eq!(app.count_rows("oauth_keys").await, 1);
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_signs_an_hour_later_and_the_old_one_leaves() {
    let app = TestApp::spawn().await;
    let old_token = sign(&app).await;
    let first = kid_of(&old_token);

    let (next, signs_from) = keys::rotate(&app.core).await.unwrap();
    assert_ne!(next, first);
    assert_eq!(signs_from, START + 3600);
    let published = published_kids(&app).await;
    assert!(
        published.contains(&first) && published.contains(&next),
        "both published at once: {published:?}"
    );
    assert_eq!(
        kid_of(&sign(&app).await),
        first,
        "the first key still signs"
    );
    app.clock.advance(3599);
    assert_eq!(kid_of(&sign(&app).await), first, "until the hour is over");
    app.clock.advance(1);
    let new_token = sign(&app).await;
    assert_eq!(kid_of(&new_token), next, "then the next key signs");
    let set = jwks(&app).await;
    let next_jwk = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == next.as_str())
        .unwrap()
        .clone();
    assert!(signed_by(&new_token, &next_jwk));

    // The first key's last ID token (signed just before it retired) lives an hour more; the
    // key stays published until then, with five minutes of skew.
    app.clock.set(signs_from + 3600 + 300 - 1);
    assert!(published_kids(&app).await.contains(&first));
    app.clock.set(signs_from + 3600 + 300);
    assert_eq!(published_kids(&app).await, vec![next.clone()]);
    // As long as it is stored, a token it signed still verifies (an id_token_hint at logout).
    assert!(keys::verify(&app.core, &old_token).await.is_some());

    let audit = app.audit().await;
    assert!(
        audit
            .iter()
            .any(|e| e.action == "keys.rotated" && e.detail.contains(&next)),
        "rotation audited"
    );
}

#[tokio::test]
async fn keys_rotate_on_the_command_line_prints_the_kid_and_when_it_signs() {
    // The binary reads the real clock: so does this app, so that its key signs until then.
    let app = TestApp::spawn_at_real_time().await;
    let started = {
        use promio_server::domain::clock::Clock;
        app.clock.now()
    };
    let data = std::env::temp_dir().join(format!("promio-keys-{}", uuid::Uuid::new_v4().simple()));
    let out = Command::new(env!("CARGO_BIN_EXE_promio-connect"))
        .args(["keys", "rotate"])
        .env_clear()
        .env("DATABASE_URL", &app.core.settings.database_url)
        .env("SECRET_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .env("PUBLIC_URL", app.core.settings.public_url.as_str())
        .env("DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run promio-connect");
    let _ = std::fs::remove_dir_all(data);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kid: "))
        .unwrap_or_else(|| panic!("no kid: {stdout}"))
        .to_owned();
    let at: jiff::Timestamp = stdout
        .lines()
        .find_map(|l| l.strip_prefix("signs from: "))
        .unwrap_or_else(|| panic!("no time: {stdout}"))
        .parse()
        .expect("an RFC 3339 time");
    let hour_later = at.as_second() - started;
    assert!(
        (3600..3600 + 120).contains(&hour_later),
        "signs an hour after the rotation: {hour_later} s"
    );
    // This instance reads the keys again within seconds.
    app.clock.advance(keys::CACHE_SECS);
    let published = published_kids(&app).await;
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(published.contains(&kid));
    assert_ne!(
        kid_of(&sign(&app).await),
        kid,
        "the new key does not sign yet"
    );
}

/// The session's `amr` as stored for the browser's session cookie.
async fn session_amr(app: &TestApp) -> Option<String> {
    let token = app.session_cookie().expect("a session cookie");
    sqlx::query_scalar::<_, Option<String>>("SELECT amr FROM sessions WHERE token_hash = $1")
        .bind(promio_server::infra::token::hash(&token))
        .fetch_one(app.core.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_records_how_the_person_logged_in() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    assert_eq!(session_amr(&app).await.as_deref(), Some(r#"["pwd"]"#));

    let (app, secret, _) = TestApp::with_2fa("ACME", "bob").await;
    let response = app.login("ACME", "bob", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::TwoFactorRequired
    );
    let code = app.totp_code(&secret, 0);
    let response = app.call("2fa/login", &[("code", &code)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        session_amr(&app).await.as_deref(),
        Some(r#"["pwd","otp","mfa"]"#)
    );
    assert_eq!(
        promio_server::edge::oauth::parse_amr(session_amr(&app).await.as_deref()),
        ["pwd", "otp", "mfa"]
    );
}
