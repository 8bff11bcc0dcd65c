//! Passkeys with webauthn-rs's software authenticator: adding, listing, renaming and removing
//! them; the second factor; logging in with a passkey alone; and what is refused (wrong origin or
//! relying party, a replayed answer, a cloned credential, an expired ceremony, a removed passkey,
//! SSO clients and clients that turned passkeys off).

use crate::helpers::{PASSWORD, TestApp, api_error};
use promio_app::api::{
    ApiError, LoginOutcome, PasskeyInfo, PasskeyOptions, PasskeyStatus, Role, SecondFactorMethods,
};
use promio_server::domain::audit::AuditAction;
use promio_server::idm::provisioning::ClientSettings;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url, Uuid};

/// A device with a software authenticator that verifies its user (as a PIN or a fingerprint would).
struct Device {
    authenticator: SoftPasskey,
    origin: Url,
    /// The credential it made, once it made one.
    credential_id: Vec<u8>,
}

impl Device {
    fn at(app: &TestApp) -> Device {
        let origin = app.core.settings.public_url.origin().ascii_serialization();
        Device {
            authenticator: SoftPasskey::new(true),
            origin: Url::parse(&origin).unwrap(),
            credential_id: Vec::new(),
        }
    }

    /// Answers a registration's options as a browser would (JSON for the server).
    fn register(&mut self, options: &str) -> String {
        let options: CreationChallengeResponse = serde_json::from_str(options).unwrap();
        let credential = self
            .authenticator
            .do_registration(self.origin.clone(), options)
            .expect("the authenticator registers");
        self.credential_id = credential.raw_id.clone();
        serde_json::to_string(&credential).unwrap()
    }

    /// Answers an authentication's options with this device's credential.
    fn authenticate(&mut self, options: &str) -> String {
        serde_json::to_string(&self.assertion(options, None)).unwrap()
    }

    /// Answers a login with a passkey alone: the credential names its user (`user_id`), as a
    /// discoverable credential does. (The software authenticator keeps no discoverable
    /// credentials, so it is told which one to use, and the user handle is added to its answer;
    /// neither is part of what it signs.)
    fn sign_in(&mut self, options: &str, user_id: &str) -> String {
        let handle = Uuid::parse_str(user_id).unwrap().as_bytes().to_vec();
        serde_json::to_string(&self.assertion(options, Some(handle))).unwrap()
    }

    fn assertion(
        &mut self,
        options: &str,
        user_handle: Option<Vec<u8>>,
    ) -> webauthn_rs::prelude::PublicKeyCredential {
        let mut options: RequestChallengeResponse = serde_json::from_str(options).unwrap();
        if options.public_key.allow_credentials.is_empty() {
            options.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
                type_: "public-key".into(),
                id: self.credential_id.clone(),
                transports: None,
            }];
        }
        let mut answer = self
            .authenticator
            .do_authentication(self.origin.clone(), options)
            .expect("the authenticator signs");
        if user_handle.is_some() {
            answer.response.user_handle = user_handle;
        }
        answer
    }
}

async fn options(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let options: PasskeyOptions = response.json().await.unwrap();
    options.options
}

async fn status(app: &TestApp) -> PasskeyStatus {
    let response = app.call("passkeys/status", &[]).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `alice` at ACME on a localhost app, logged in a moment ago.
async fn localhost_app() -> TestApp {
    let app = TestApp::spawn_on_localhost().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", Role::User).await;
    app.login_ok("ACME", "alice").await;
    app
}

/// Adds a passkey for the logged-in user.
async fn add_passkey(app: &TestApp, device: &mut Device, name: &str) -> PasskeyInfo {
    let request = options(app.call("passkeys/register-start", &[]).await).await;
    let credential = device.register(&request);
    let response = app
        .call(
            "passkeys/register-finish",
            &[("credential", &credential), ("name", name)],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A whole login with the device's passkey alone: begun, answered, finished.
async fn sign_in(app: &TestApp, device: &mut Device, user_id: &str) -> reqwest::Response {
    let request = options(app.call("passkeys/login-start", &[]).await).await;
    let answer = device.sign_in(&request, user_id);
    app.call("passkeys/login-finish", &[("credential", &answer)])
        .await
}

/// Sends a login answer that must be refused; returns the error.
async fn finish_login(app: &TestApp, answer: String) -> ApiError {
    api_error(
        app.call("passkeys/login-finish", &[("credential", &answer)])
            .await,
    )
    .await
}

async fn logout(app: &TestApp) {
    app.client.post(app.url("/logout")).send().await.unwrap();
}

#[tokio::test]
async fn a_passkey_is_added_listed_renamed_and_removed_with_the_password_again() {
    let app = localhost_app().await;
    let mut device = Device::at(&app);
    let before = status(&app).await;
    assert!(before.available && before.passkeys.is_empty() && !before.reauth_needed);

    let added = add_passkey(&app, &mut device, "  Laptop ").await;
    assert_eq!(added.name, "Laptop");
    assert_eq!(added.last_used, None);
    let listed = status(&app).await;
    assert_eq!(listed.passkeys, vec![added.clone()]);
    // The user is told, and it is audited.
    let mail = app.mail_to("alice@acme.example").await;
    assert!(mail.raw.contains("A passkey was added"), "{}", mail.raw);
    assert!(mail.raw.contains("Laptop"));
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::PasskeyAdded && r.detail == "Laptop")
    );

    let renamed: PasskeyInfo = app
        .call(
            "passkeys/rename",
            &[("id", &added.id), ("name", "Work laptop")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed.name, "Work laptop");

    // Five minutes after the login, removing needs the password.
    app.clock.advance(6 * 60);
    let response = app.call("passkeys/remove", &[("id", &added.id)]).await;
    assert_eq!(api_error(response).await, ApiError::ReauthRequired);
    let response = app
        .call(
            "passkeys/remove",
            &[("id", &added.id), ("password", "not the password")],
        )
        .await;
    assert_eq!(api_error(response).await, ApiError::WrongPassword);
    let response = app
        .call(
            "passkeys/remove",
            &[("id", &added.id), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(status(&app).await.passkeys.is_empty());
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::PasskeyRemoved && r.detail == "Work laptop")
    );
    // Adding needs it too now.
    let response = app.call("passkeys/register-start", &[]).await;
    assert_eq!(api_error(response).await, ApiError::ReauthRequired);
    let response = app
        .call("passkeys/register-start", &[("password", PASSWORD)])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn after_the_password_a_passkey_is_the_second_factor_and_an_answer_counts_once() {
    let app = localhost_app().await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;

    // The password alone is not enough any more.
    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    let methods: SecondFactorMethods = app
        .call("passkeys/second-factor-methods", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        methods,
        SecondFactorMethods {
            code: false,
            passkey: true
        }
    );
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let answer = device.authenticate(&request);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::LoggedIn
    );
    assert_eq!(app.me().await.unwrap().username, "alice");
    assert!(app.audit().await.iter().any(|r| {
        r.action == AuditAction::LoginSecondFactor
            && r.outcome == "success"
            && r.detail == "passkey Laptop"
    }));
    let used = status(&app).await.passkeys.remove(0);
    assert!(used.last_used.is_some());

    // The same answer again, to a new ceremony: its challenge is spent.
    logout(&app).await;
    app.login("ACME", "alice", PASSWORD).await;
    let fresh = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    // And the ceremony it was tried against is gone too: even the right answer to that
    // ceremony's own challenge is refused now.
    let right = device.authenticate(&fresh);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &right)])
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    assert!(app.me().await.is_none());
    // The pending login itself goes on: a new ceremony, answered, logs in.
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let answer = device.authenticate(&request);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.me().await.unwrap().username, "alice");
}

#[tokio::test]
async fn a_passkey_alone_logs_in_with_the_rules_of_every_login() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Phone").await;
    logout(&app).await;
    assert!(app.me().await.is_none());

    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    assert!(options_text.contains("\"mediation\":\"conditional\""));
    let answer = device.sign_in(&options_text, &alice);
    let response = app
        .call("passkeys/login-finish", &[("credential", &answer)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::LoggedIn
    );
    assert_eq!(app.me().await.unwrap().username, "alice");
    assert_eq!(app.active_sessions().await, 1);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::LoginPasskey
                && r.outcome == "success"
                && r.subject_user_id.as_deref() == Some(alice.as_str()))
    );

    // Another login with the passkey ends the browser's session before: one session.
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.active_sessions().await, 1);

    // A deactivated user is refused.
    sqlx::query("UPDATE users SET status = 'deactivated' WHERE id = $1")
        .bind(&alice)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::LoginPasskey
                && r.outcome == "failure"
                && r.detail == "user not active")
    );
}

#[tokio::test]
async fn a_wrong_origin_a_wrong_relying_party_and_a_cloned_passkey_are_refused() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;

    // Another origin (another port of the same host): the browser signs, the server refuses.
    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let mut elsewhere = Device {
        authenticator: std::mem::take(&mut device.authenticator),
        origin: Url::parse("http://localhost:1").unwrap(),
        credential_id: device.credential_id.clone(),
    };
    let answer = elsewhere.sign_in(&options_text, &alice);
    device.authenticator = std::mem::take(&mut elsewhere.authenticator);
    assert_eq!(finish_login(&app, answer).await, ApiError::PasskeyFailed);

    // Signed for another relying party: its hash in the authenticator data is not ours.
    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let mut answer = device.assertion(
        &options_text,
        Some(Uuid::parse_str(&alice).unwrap().as_bytes().to_vec()),
    );
    let other: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"evil.example").into();
    answer.response.authenticator_data[..32].copy_from_slice(&other);
    assert_eq!(
        finish_login(&app, serde_json::to_string(&answer).unwrap()).await,
        ApiError::PasskeyFailed
    );

    // A clone: the stored counter is ahead of what this authenticator signs.
    let row = app.core.store.passkeys_of(&alice).await.unwrap().remove(0);
    let mut stored: serde_json::Value = serde_json::from_str(&row.passkey).unwrap();
    stored["cred"]["counter"] = serde_json::json!(1_000);
    sqlx::query("UPDATE passkeys SET passkey = $1 WHERE id = $2")
        .bind(stored.to_string())
        .bind(&row.id)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let answer = device.sign_in(&options_text, &alice);
    assert_eq!(finish_login(&app, answer).await, ApiError::PasskeyFailed);
    assert!(app.me().await.is_none());
    let refusals: Vec<String> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.action == AuditAction::LoginPasskey && r.outcome == "failure")
        .map(|r| r.detail)
        .collect();
    // Each for its own reason (the three happened in the same second: in any order).
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    for reason in [
        "origin does not match",
        "relying party id hash does not match",
        "may have be compromised",
    ] {
        let found = refusals.iter().filter(|r| r.contains(reason)).count();
        assert_eq!(found, 1, "{reason}: {refusals:?}");
    }
}

#[tokio::test]
async fn an_expired_ceremony_and_a_removed_passkey_are_refused() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    let added = add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;

    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let answer = device.sign_in(&options_text, &alice);
    app.clock.advance(5 * 60 + 1);
    let response = app
        .call("passkeys/login-finish", &[("credential", &answer)])
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);

    // Removed, the passkey logs nobody in (it is removed in a session it made itself).
    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let answer = device.sign_in(&options_text, &alice);
    assert_eq!(
        app.call("passkeys/login-finish", &[("credential", &answer)])
            .await
            .status(),
        200
    );
    let response = app.call("passkeys/remove", &[("id", &added.id)]).await;
    assert_eq!(response.status(), 200);
    logout(&app).await;
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    // Without passkeys the password alone logs in again.
    app.login_ok("ACME", "alice").await;
}

#[tokio::test]
async fn sso_clients_and_clients_that_turned_passkeys_off_have_none() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;

    // Turned off for the client: not offered, not accepted, and no longer a second factor (the
    // password alone does not log in either: see the test after this one).
    app.set_client(
        "ACME",
        ClientSettings {
            passkeys: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert!(!status(&app).await.available);
    let response = app.call("passkeys/register-start", &[]).await;
    assert_eq!(api_error(response).await, ApiError::Forbidden);
    logout(&app).await;
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);

    // An SSO client: its identity provider does this.
    app.set_client(
        "ACME",
        ClientSettings {
            passkeys: Some(true),
            ..Default::default()
        },
    )
    .await;
    sqlx::query("UPDATE clients SET sso_issuer = 'https://idp.example' WHERE company_key = 'acme'")
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    assert!(
        app.audit()
            .await
            .iter()
            .any(|r| r.action == AuditAction::LoginPasskey
                && r.detail == "passkeys not allowed for the client")
    );
}

#[tokio::test]
async fn a_passkey_only_user_sets_up_another_second_factor_once_passkeys_are_off() {
    let app = localhost_app().await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;
    app.set_client(
        "ACME",
        ClientSettings {
            passkeys: Some(false),
            ..Default::default()
        },
    )
    .await;

    // The password alone is not a session: the second factor they chose is gone, so they set up
    // another first, as where the client requires 2FA.
    let response = app.login("ACME", "alice", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<LoginOutcome>().await.unwrap(),
        LoginOutcome::TwoFactorEnrolmentRequired
    );
    assert!(app.me().await.is_none(), "no session before the enrolment");
    assert_eq!(app.active_sessions().await, 0);
    // Not another passkey: they are off.
    let response = app.call("passkeys/register-start", &[]).await;
    assert_eq!(api_error(response).await, ApiError::Forbidden);

    // An authenticator app it is, and then there is a session.
    let (secret, codes) = app.activate_2fa().await;
    assert_eq!(codes.len(), 10);
    assert_eq!(app.me().await.unwrap().username, "alice");

    // From now on the code is the second factor.
    logout(&app).await;
    app.clock.advance(promio_server::infra::totp::STEP_SECS);
    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    let code = app.totp_code(&secret, 0);
    let response = app.call("2fa/login", &[("code", &code)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.me().await.unwrap().username, "alice");
}

#[tokio::test]
async fn with_an_ip_address_as_public_url_there_are_no_passkeys() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.login_ok("ACME", "alice").await;
    assert!(!status(&app).await.available);
    let response = app.call("passkeys/login-start", &[]).await;
    assert_eq!(api_error(response).await, ApiError::Forbidden);
}

#[tokio::test]
async fn the_enrolment_a_client_requires_accepts_a_passkey() {
    let app = TestApp::spawn_on_localhost().await;
    app.create_client("ACME").await;
    app.create_user("ACME", "alice", Role::User).await;
    app.set_client(
        "ACME",
        ClientSettings {
            require_2fa: Some(true),
            ..Default::default()
        },
    )
    .await;
    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorEnrolmentRequired);
    assert!(app.me().await.is_none());
    let mut device = Device::at(&app);
    let added = add_passkey(&app, &mut device, "Key").await;
    assert_eq!(added.name, "Key");
    assert_eq!(app.me().await.unwrap().username, "alice");
    // From now on the passkey is the second factor.
    logout(&app).await;
    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
}

#[tokio::test]
async fn an_admin_removes_a_users_passkeys_and_the_user_is_told() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.login_ok("ACME", "boss").await;
    let page: promio_app::api::UserPage = app
        .call(
            "users/list",
            &[("search", "alice"), ("status", ""), ("page", "1")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.users[0].passkeys, 1);
    let response = app.call("users/remove-passkeys", &[("id", &alice)]).await;
    assert_eq!(response.status(), 200);
    assert!(app.core.store.passkeys_of(&alice).await.unwrap().is_empty());
    // (The mail about the passkey being added was queued in the same second: look at all.)
    app.deliver().await;
    assert!(app.mails.mails().iter().any(|m| {
        m.to.contains("alice@acme.example")
            && m.raw
                .contains("passkeys of your promio.connect account were removed")
    }));
    // Not one's own here.
    let boss = app.user_id("ACME", "boss").await;
    let response = app.call("users/remove-passkeys", &[("id", &boss)]).await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn two_instances_finish_each_others_ceremonies() {
    use promio_server::infra::token;
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;
    let second = app.second_instance().await;

    // Begun on this instance (over HTTP), finished on the other.
    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let cookie = {
        use reqwest::cookie::CookieStore;
        let header = app.jar.cookies(&app.address.parse().unwrap()).unwrap();
        header
            .to_str()
            .unwrap()
            .split("; ")
            .find_map(|c| c.strip_prefix("passkey="))
            .unwrap()
            .to_owned()
    };
    let caller = promio_server::edge::principal::Caller {
        passkey_token: token::parse_presented(&cookie).map(|t| token::hash_secret(&t)),
        ..Default::default()
    };
    let answer = device.sign_in(&options_text, &alice);
    let flow = promio_server::idm::passkeys::login_finish(&second, &caller, answer.clone())
        .await
        .expect("the other instance finishes the ceremony");
    assert_eq!(flow.value, LoginOutcome::LoggedIn);
    // Once: this instance cannot finish it again.
    let response = app
        .call("passkeys/login-finish", &[("credential", &answer)])
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
}

#[tokio::test]
async fn an_older_answer_finishing_after_a_newer_one_is_refused() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;
    // Two browsers begin; the device answers the first, then the second (a higher counter).
    let (first, second) = (app.new_browser(), app.new_browser());
    let begin = |browser: &reqwest::Client| {
        let request = browser.post(app.url("/api/passkeys/login-start")).send();
        async move { options(request.await.unwrap()).await }
    };
    let options_first = begin(&first).await;
    let options_second = begin(&second).await;
    let older = device.sign_in(&options_first, &alice);
    let newer = device.sign_in(&options_second, &alice);
    let finish = |browser: &reqwest::Client, answer: String| {
        let request = browser
            .post(app.url("/api/passkeys/login-finish"))
            .form(&[("credential", answer)])
            .send();
        async move { request.await.unwrap() }
    };
    assert_eq!(finish(&second, newer).await.status(), 200);
    let response = finish(&first, older).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    assert!(app.me_in(&first).await.is_none());
}

#[tokio::test]
async fn a_user_has_at_most_twenty_passkeys() {
    let app = localhost_app().await;
    for i in 0..promio_server::idm::passkeys::MAX_PER_USER {
        let mut device = Device::at(&app);
        add_passkey(&app, &mut device, &format!("Key {i}")).await;
    }
    let response = app.call("passkeys/register-start", &[]).await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        api_error(response).await,
        ApiError::PasskeyLimit { max: 20 }
    );
}

/// The device's answer to `options` with its own credential, whatever credentials they allow
/// (`user_id`: the user handle a discoverable credential adds).
fn own_credential_answer(
    device: &mut Device,
    mut options: RequestChallengeResponse,
    user_id: Option<&str>,
) -> String {
    options.public_key.allow_credentials = vec![webauthn_rs_proto::AllowCredentials {
        type_: "public-key".into(),
        id: device.credential_id.clone(),
        transports: None,
    }];
    let mut answer = device
        .authenticator
        .do_authentication(device.origin.clone(), options)
        .expect("the authenticator signs");
    if let Some(user_id) = user_id {
        answer.response.user_handle = Some(Uuid::parse_str(user_id).unwrap().as_bytes().to_vec());
    }
    serde_json::to_string(&answer).unwrap()
}

/// The device answers for its own credential where the server asked for another one.
fn answer_with_own_credential(device: &mut Device, options: &str) -> String {
    own_credential_answer(device, serde_json::from_str(options).unwrap(), None)
}

/// The device's answer signed without verifying its user (no PIN, no fingerprint): the client
/// asked the authenticator for less than the server did, so the flags it signs say "user present"
/// but not "user verified". The signature itself is good.
fn unverified_answer(device: &mut Device, options: &str, user_id: Option<&str>) -> String {
    let mut options: RequestChallengeResponse = serde_json::from_str(options).unwrap();
    options.public_key.user_verification = webauthn_rs_proto::UserVerificationPolicy::Preferred;
    own_credential_answer(device, options, user_id)
}

/// The reasons of the refused logins with a passkey alone, as the audit log has them.
async fn passkey_login_refusals(app: &TestApp) -> Vec<String> {
    app.audit()
        .await
        .into_iter()
        .filter(|r| r.action == AuditAction::LoginPasskey && r.outcome == "failure")
        .map(|r| r.detail)
        .collect()
}

#[tokio::test]
async fn a_passkey_alone_is_refused_for_another_user_unverified_unknown_or_deactivated_client() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    app.create_user("ACME", "bob", Role::User).await;
    let bob = app.user_id("ACME", "bob").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    // A credential made for a registration that was never finished: the server does not know it.
    let request = options(app.call("passkeys/register-start", &[]).await).await;
    let mut unknown = Device::at(&app);
    let _never_sent = unknown.register(&request);
    logout(&app).await;

    // Alice's passkey, presented as bob's (the user handle names him).
    let response = sign_in(&app, &mut device, &bob).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    // Alice's passkey, signed without verifying the person at the device.
    let options_text = options(app.call("passkeys/login-start", &[]).await).await;
    let answer = unverified_answer(&mut device, &options_text, Some(alice.as_str()));
    assert_eq!(finish_login(&app, answer).await, ApiError::PasskeyFailed);
    // The credential nobody registered.
    let response = sign_in(&app, &mut unknown, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    // Alice's passkey, signed as it should be, but her client is deactivated.
    sqlx::query("UPDATE clients SET active = 0 WHERE company_key = 'acme'")
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);

    assert!(app.me().await.is_none());
    assert_eq!(app.active_sessions().await, 0);
    // Each for its own reason (all in the same second: in any order). The unverified answer is
    // refused by webauthn-rs's policy or by the check after it, whose texts both say "verif…".
    let refusals = passkey_login_refusals(&app).await;
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    for reason in [
        "passkey of another user",
        "verif",
        "unknown passkey",
        "client deactivated",
    ] {
        let found = refusals.iter().filter(|r| r.contains(reason)).count();
        assert_eq!(found, 1, "{reason}: {refusals:?}");
    }
}

#[tokio::test]
async fn another_users_passkey_or_an_unverified_one_is_no_second_factor() {
    let app = localhost_app().await;
    let mut alices = Device::at(&app);
    add_passkey(&app, &mut alices, "Laptop").await;
    app.create_user("ACME", "bob", Role::User).await;
    app.login_ok("ACME", "bob").await;
    let mut bobs = Device::at(&app);
    add_passkey(&app, &mut bobs, "Phone").await;
    logout(&app).await;

    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    // Bob's passkey answers the challenge of alice's second step.
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let answer = answer_with_own_credential(&mut bobs, &request);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    // Alice's own passkey, without verifying her at the device.
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let answer = unverified_answer(&mut alices, &request, None);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    assert!(app.me().await.is_none());
    let refused = app
        .audit()
        .await
        .iter()
        .filter(|r| {
            r.action == AuditAction::LoginSecondFactor
                && r.outcome == "failure"
                && r.detail == "passkey refused"
        })
        .count();
    assert_eq!(refused, 2);

    // Each counted as a wrong code, not more: her own passkey, verified, still logs her in.
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let answer = alices.authenticate(&request);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.me().await.unwrap().username, "alice");
}

#[tokio::test]
async fn logins_with_a_passkey_begun_from_one_address_are_capped() {
    let app = TestApp::spawn_on_localhost().await;
    let cap = promio_server::idm::passkeys::LOGIN_STARTS_PER_IP;
    for n in 1..=cap {
        let response = app.call("passkeys/login-start", &[]).await;
        assert_eq!(response.status(), 200, "start {n}");
    }
    let response = app.call("passkeys/login-start", &[]).await;
    assert_eq!(response.status(), 429);
    assert!(matches!(
        api_error(response).await,
        ApiError::TooManyAttempts { .. }
    ));
    assert_eq!(
        app.count_rows("webauthn_ceremonies").await,
        cap,
        "a refused start stores no ceremony"
    );
    // Five minutes on, the address may begin again.
    app.clock.advance(5 * 60);
    assert_eq!(app.call("passkeys/login-start", &[]).await.status(), 200);
}

/// Failed logins counted on the test client's address.
async fn address_failures(app: &TestApp) -> i64 {
    app.core
        .store
        .throttle_row(&promio_server::idm::throttle::ip_key("127.0.0.1"))
        .await
        .unwrap()
        .map_or(0, |row| row.failures)
}

#[tokio::test]
async fn while_the_address_waits_even_the_right_passkey_is_refused() {
    use promio_server::idm::throttle::IP_FAILURES;
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;

    // A refused answer counts on the address, as a wrong password does.
    let before = address_failures(&app).await;
    let _ = options(app.call("passkeys/login-start", &[]).await).await;
    assert_eq!(
        finish_login(&app, "{}".to_owned()).await,
        ApiError::PasskeyFailed
    );
    assert_eq!(address_failures(&app).await, before + 1);

    // After its 100th failure the address waits (30 s here): even the right passkey is not
    // looked at.
    sqlx::query("UPDATE throttle SET failures = $1, blocked_until = $2 WHERE key = $3")
        .bind(IP_FAILURES)
        .bind(promio_server::domain::clock::Clock::now(&app.clock) + 30)
        .bind(promio_server::idm::throttle::ip_key("127.0.0.1"))
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(response.status(), 429);
    assert!(matches!(
        api_error(response).await,
        ApiError::TooManyAttempts { .. }
    ));
    assert!(app.me().await.is_none());

    // The wait over, the same passkey logs in.
    app.clock.advance(30);
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.me().await.unwrap().username, "alice");
}

#[tokio::test]
async fn deleting_a_user_removes_their_passkeys_and_ceremonies_at_once() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    // Another registration begun and not finished.
    let _ = options(app.call("passkeys/register-start", &[]).await).await;
    let passkeys = format!("passkeys WHERE user_id = '{alice}'");
    let ceremonies = format!("webauthn_ceremonies WHERE user_id = '{alice}'");
    assert_eq!(app.count_rows(&passkeys).await, 1);
    assert_eq!(app.count_rows(&ceremonies).await, 1);

    app.create_user("ACME", "boss", Role::Admin).await;
    app.login_ok("ACME", "boss").await;
    let response = app.call("users/delete", &[("id", &alice)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count_rows(&passkeys).await, 0);
    assert_eq!(app.count_rows(&ceremonies).await, 0);
    logout(&app).await;
    let response = sign_in(&app, &mut device, &alice).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
}

/// Asks for a password reset of alice; returns the link's token.
async fn reset_token(app: &TestApp) -> String {
    // Mails queued before (the passkey added) are sent first: queued in the same second, their
    // order among each other is not fixed.
    app.deliver().await;
    app.call(
        "forgot-password",
        &[("company_id", "ACME"), ("username", "alice")],
    )
    .await;
    TestApp::token_of(&app.mail_to("alice@acme.example").await)
}

/// Sets `password` through the reset link, confirmed with a passkey's answer.
async fn finish_reset(
    app: &TestApp,
    token: &str,
    password: &str,
    credential: &str,
) -> reqwest::Response {
    app.call(
        "passkeys/reset-finish",
        &[
            ("token", token),
            ("new_password", password),
            ("repeat_password", password),
            ("credential", credential),
        ],
    )
    .await
}

#[tokio::test]
async fn a_reset_of_a_user_whose_second_factor_is_a_passkey_needs_the_passkey() {
    let app = localhost_app().await;
    let alice = app.user_id("ACME", "alice").await;
    let key = promio_server::idm::throttle::totp_key(&alice);
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;
    let token = reset_token(&app).await;
    let state: promio_app::api::LinkState = app
        .call("link", &[("token", &token)])
        .await
        .json()
        .await
        .unwrap();
    assert!(
        matches!(
            state,
            promio_app::api::LinkState::Valid {
                code_required: false,
                passkey: true,
                ..
            }
        ),
        "{state:?}"
    );

    // The mail link alone does not set the password, nor does a code (there is none that could be
    // right); the answer says what to do.
    let new = "violet orbit canvas thunder";
    let form = [
        ("token", token.as_str()),
        ("new_password", new),
        ("repeat_password", new),
    ];
    let response = app.call("set-password", &form).await;
    assert_eq!(response.status(), 401);
    assert_eq!(api_error(response).await, ApiError::PasskeyRequired);
    let mut with_code = form.to_vec();
    with_code.push(("code", "123456"));
    let response = app.call("set-password", &with_code).await;
    assert_eq!(api_error(response).await, ApiError::PasskeyRequired);
    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::TwoFactorRequired,
        "the password is unchanged"
    );
    logout(&app).await;

    // A wrong passkey answer (signed for another relying party) counts like a wrong code: on the
    // second factor's counter, on the link, in the audit log.
    let request = options(app.call("passkeys/reset-start", &[("token", &token)]).await).await;
    let mut wrong = device.assertion(&request, None);
    let other: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"evil.example").into();
    wrong.response.authenticator_data[..32].copy_from_slice(&other);
    let wrong = serde_json::to_string(&wrong).unwrap();
    let response = finish_reset(&app, &token, new, &wrong).await;
    assert_eq!(response.status(), 401);
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    let counted = app.core.store.throttle_row(&key).await.unwrap();
    assert_eq!(counted.map(|r| r.failures), Some(1));
    let link_failures: i64 = sqlx::query_scalar("SELECT MAX(code_failures) FROM link_tokens")
        .fetch_one(app.core.store.pool())
        .await
        .unwrap();
    assert_eq!(link_failures, 1);
    assert!(app.audit().await.iter().any(|r| {
        r.action == AuditAction::LinkSecondFactor
            && r.outcome == "failure"
            && r.detail == "passkey refused"
    }));

    // The passkey itself confirms it: the new password is set, the counter starts afresh, and the
    // passkey stays the second factor.
    let request = options(app.call("passkeys/reset-start", &[("token", &token)]).await).await;
    let answer = device.authenticate(&request);
    let response = finish_reset(&app, &token, new, &answer).await;
    assert_eq!(response.status(), 200);
    assert!(app.core.store.throttle_row(&key).await.unwrap().is_none());
    let outcome: LoginOutcome = app.login("ACME", "alice", new).await.json().await.unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    // The link is used: no second reset through it.
    let response = app.call("passkeys/reset-start", &[("token", &token)]).await;
    assert_eq!(response.status(), 410);
}

#[tokio::test]
async fn a_refused_passkey_at_the_second_step_counts_on_the_second_factors_counter() {
    let app = localhost_app().await;
    let key = promio_server::idm::throttle::totp_key(&app.user_id("ACME", "alice").await);
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;
    let outcome: LoginOutcome = app
        .login("ACME", "alice", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(outcome, LoginOutcome::TwoFactorRequired);
    // Near the lock, one refused passkey locks the second factor; then even the right one is not
    // checked.
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let mut wrong = device.assertion(&request, None);
    let other: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(b"evil.example").into();
    wrong.response.authenticator_data[..32].copy_from_slice(&other);
    let response = app
        .call(
            "passkeys/second-factor-finish",
            &[("credential", &serde_json::to_string(&wrong).unwrap())],
        )
        .await;
    assert_eq!(api_error(response).await, ApiError::PasskeyFailed);
    let counted = app.core.store.throttle_row(&key).await.unwrap();
    assert_eq!(counted.map(|r| r.failures), Some(1));
    sqlx::query("UPDATE throttle SET failures = 99, blocked_until = 0 WHERE key = $1")
        .bind(&key)
        .execute(app.core.store.pool())
        .await
        .unwrap();
    let request = options(app.call("passkeys/second-factor-start", &[]).await).await;
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", "{}")])
        .await;
    assert_eq!(api_error(response).await, ApiError::SecondFactorLocked);
    let answer = device.authenticate(&request);
    let response = app
        .call("passkeys/second-factor-finish", &[("credential", &answer)])
        .await;
    assert_eq!(api_error(response).await, ApiError::SecondFactorLocked);
    assert!(app.me().await.is_none());
}

#[tokio::test]
async fn passkey_confirmations_of_one_reset_link_are_capped() {
    let app = localhost_app().await;
    let mut device = Device::at(&app);
    add_passkey(&app, &mut device, "Laptop").await;
    logout(&app).await;
    let token = reset_token(&app).await;
    let ceremonies = "webauthn_ceremonies";
    let before = app.count_rows(ceremonies).await;
    for _ in 0..promio_server::idm::passkeys::RESET_STARTS_PER_LINK {
        options(app.call("passkeys/reset-start", &[("token", &token)]).await).await;
    }
    let started = app.count_rows(ceremonies).await;
    assert_eq!(
        started - before,
        promio_server::idm::passkeys::RESET_STARTS_PER_LINK
    );
    // One more is refused and stores nothing.
    let response = app.call("passkeys/reset-start", &[("token", &token)]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(app.count_rows(ceremonies).await, started);
    // The window ends: the link may start again (its ceremonies are gone by then too).
    app.clock.advance(5 * 60 + 1);
    options(app.call("passkeys/reset-start", &[("token", &token)]).await).await;
}
