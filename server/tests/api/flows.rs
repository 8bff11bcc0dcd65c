//! The flows called directly, without HTTP: each takes the principal the edge would have resolved
//! (or a `Caller`) and answers with its value and the cookies it wants set.

use crate::helpers::{PASSWORD, TestApp};
use promio_app::api::{LinkState, LoginForm, LoginOutcome, Role, UserForm};
use promio_app::i18n::Lang;
use promio_server::domain::{CompanyId, UserName};
use promio_server::edge::cookies;
use promio_server::edge::principal::{Admin, Caller, CookieIntent, Operator, Pending, Session};
use promio_server::idm::login;
use promio_server::idm::{admin, links, operator, two_factor};
use promio_server::infra::error::ServiceError;
use promio_server::infra::token;
use promio_server::store::users::UserRow;

async fn user(app: &TestApp, company_id: &str, username: &str) -> UserRow {
    let client = client(app, company_id).await;
    app.core
        .store
        .user_by_name(&client.id, &UserName::parse(username).unwrap())
        .await
        .unwrap()
        .expect("the user")
}

async fn client(app: &TestApp, company_id: &str) -> promio_server::store::clients::ClientRow {
    app.core
        .store
        .client_by_company_id(&CompanyId::parse(company_id).unwrap())
        .await
        .unwrap()
        .expect("the client")
}

async fn admin_of(app: &TestApp, company_id: &str, username: &str) -> Admin {
    Admin {
        admin: user(app, company_id, username).await,
        client: client(app, company_id).await,
        ip: Some("192.0.2.1".into()),
        lang: Lang::En,
    }
}

fn caller() -> Caller {
    Caller {
        ip: Some("192.0.2.1".into()),
        ip_bucket: Some("192.0.2.1".into()),
        lang: Lang::En,
        ..Caller::default()
    }
}

fn form(company_id: &str, username: &str) -> LoginForm {
    LoginForm {
        company_id: company_id.into(),
        username: username.into(),
        password: PASSWORD.into(),
    }
}

#[tokio::test]
async fn an_admin_principal_acts_on_its_clients_users_only() {
    let app = TestApp::spawn().await;
    app.create_client("ACME").await;
    app.create_client("OTHER").await;
    app.create_user("ACME", "boss", Role::Admin).await;
    app.create_user("ACME", "bob", Role::User).await;
    app.create_user("OTHER", "eve", Role::User).await;
    let boss = admin_of(&app, "ACME", "boss").await;
    let bob = user(&app, "ACME", "bob").await;
    admin::set_active(&app.core, &boss, bob.id.to_string(), false)
        .await
        .unwrap();
    assert_eq!(
        user(&app, "ACME", "bob").await.status,
        promio_server::domain::UserStatus::Deactivated,
        "acted on its own client's user"
    );
    let eve = user(&app, "OTHER", "eve").await;
    let other = admin::set_active(&app.core, &boss, eve.id.to_string(), false).await;
    assert!(matches!(other, Err(ServiceError::NotFound)), "{other:?}");
    let own = admin::set_active(&app.core, &boss, boss.admin.id.to_string(), false).await;
    assert!(matches!(own, Err(ServiceError::Forbidden)), "{own:?}");
}

#[tokio::test]
async fn a_platform_admin_principal_cannot_touch_an_operator() {
    let app = TestApp::spawn().await;
    app.create_user("promio", "ops", Role::Operator).await;
    app.create_user("promio", "padmin", Role::Admin).await;
    let padmin = admin_of(&app, "promio", "padmin").await;
    let ops = user(&app, "promio", "ops").await;
    let form = UserForm {
        first_name: "Test".into(),
        last_name: "ops".into(),
        email: "attacker@evil.example".into(),
        username: "ops".into(),
        role: "operator".into(),
    };
    let result = admin::update_user(&app.core, &padmin, ops.id.to_string(), form).await;
    assert!(matches!(result, Err(ServiceError::Forbidden)), "{result:?}");
    let result = admin::send_link(
        &app.core,
        &padmin,
        ops.id.to_string(),
        promio_server::domain::LinkKind::PasswordReset,
    )
    .await;
    assert!(matches!(result, Err(ServiceError::Forbidden)), "{result:?}");
}

#[tokio::test]
async fn an_operator_principal_creates_a_client() {
    let app = TestApp::spawn().await;
    app.create_user("promio", "ops", Role::Operator).await;
    let ops = Operator {
        user_id: user(&app, "promio", "ops").await.id,
        ip: None,
    };
    let form = promio_app::api::ClientForm {
        company_id: "NEU".into(),
        name: "Neu GmbH".into(),
        registration_link_hours: "24".into(),
        reset_link_hours: "2".into(),
        deletion_months: "3".into(),
        inactivity_months: String::new(),
        passkeys: None,
        require_2fa: false,
        sso_issuer: String::new(),
        sso_client_id: String::new(),
        sso_client_secret: String::new(),
        sso_domains: String::new(),
        sso_email_claim: String::new(),
        sso_jit: false,
    };
    let created = operator::create(&app.core, &ops, form).await.unwrap();
    assert_eq!(created.company_id, "NEU");
    let stored = client(&app, "NEU").await;
    assert_eq!(
        (
            stored.reset_link_hours,
            stored.deletion_months,
            stored.inactivity_months
        ),
        (2, 3, None)
    );
}

#[tokio::test]
async fn the_password_step_answers_with_the_cookie_it_wants() {
    let app = TestApp::with_user("ACME", "alice").await;
    let flow = login::password_step(&app.core, &caller(), form("ACME", "alice"))
        .await
        .unwrap();
    assert_eq!(flow.value, LoginOutcome::LoggedIn);
    let [CookieIntent::Session(token)] = flow.cookies.as_slice() else {
        panic!("one session cookie");
    };
    let hash = token::hash_secret(token);
    assert!(app.core.store.session(&hash).await.unwrap().is_some());
    let failed = login::password_step(
        &app.core,
        &caller(),
        LoginForm {
            password: "not the password at all".into(),
            ..form("ACME", "alice")
        },
    )
    .await;
    assert!(matches!(failed, Err(ServiceError::LoginFailed { .. })));
}

#[tokio::test]
async fn the_second_step_starts_a_session_and_clears_the_pending_cookie() {
    let (app, secret, _) = TestApp::with_2fa("ACME", "alice").await;
    let flow = login::password_step(&app.core, &caller(), form("ACME", "alice"))
        .await
        .unwrap();
    assert_eq!(flow.value, LoginOutcome::TwoFactorRequired);
    let [CookieIntent::PendingSecondFactor(token, _)] = flow.cookies.as_slice() else {
        panic!("one pending second factor cookie");
    };
    let row = app
        .core
        .store
        .pending_second_factor(&token::hash_secret(token))
        .await
        .unwrap()
        .expect("the pending second factor");
    assert!(
        app.core
            .store
            .session(&token::hash_secret(token))
            .await
            .unwrap()
            .is_none(),
        "not a session"
    );
    let pending = Pending {
        row,
        user: user(&app, "ACME", "alice").await,
        client: client(&app, "ACME").await,
    };
    let code = app.totp_code(&secret, 0);
    let flow = two_factor::login(&app.core, pending, &caller(), code)
        .await
        .unwrap();
    assert_eq!(flow.value, LoginOutcome::LoggedIn);
    assert!(matches!(
        flow.cookies.as_slice(),
        [
            CookieIntent::Session(_),
            CookieIntent::Clear(cookies::PENDING)
        ]
    ));
}

#[tokio::test]
async fn renewing_recovery_codes_long_after_the_login_needs_the_password() {
    let (app, secret, _) = TestApp::with_2fa("ACME", "alice").await;
    let alice = user(&app, "ACME", "alice").await;
    let session = Session {
        user: alice,
        client: client(&app, "ACME").await,
        token_hash: "no-such-session".into(),
        created_at: app.core.clock.now() - two_factor::REAUTH_SECS,
        ip: None,
        lang: Lang::En,
    };
    let code = app.totp_code(&secret, 0);
    let without =
        two_factor::new_recovery_codes(&app.core, &session, code.clone(), String::new()).await;
    assert!(matches!(without, Err(ServiceError::ReauthRequired)));
    let with = two_factor::new_recovery_codes(&app.core, &session, code, PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(with.len(), 10);
}

#[tokio::test]
async fn a_link_page_states_the_expiry_in_the_callers_language() {
    let app = TestApp::with_user("ACME", "alice").await;
    app.call(
        "forgot-password",
        &[("company_id", "ACME"), ("username", "alice")],
    )
    .await;
    let token = TestApp::token_of(&app.mail_to("alice@acme.example").await);
    let german = Caller {
        lang: Lang::De,
        ..caller()
    };
    let state = links::link_info(&app.core, &german, token).await.unwrap();
    let LinkState::Valid { until, .. } = state else {
        panic!("a valid link: {state:?}");
    };
    assert!(until.contains("Uhr"), "{until}");
}

#[test]
fn a_session_cookie_intent_becomes_an_http_only_set_cookie() {
    let policy = cookies::CookiePolicy { https: true };
    let header = policy.header(&CookieIntent::Session(secrecy::SecretString::from(
        "tok".to_owned(),
    )));
    let header = header.to_str().unwrap();
    assert!(header.starts_with("__Host-session=tok"), "{header}");
    assert!(
        header.contains("HttpOnly") && header.contains("Secure"),
        "{header}"
    );
    let cleared = policy.header(&CookieIntent::Clear(cookies::PENDING));
    assert!(
        cleared.to_str().unwrap().contains("Max-Age=0"),
        "{cleared:?}"
    );
}
