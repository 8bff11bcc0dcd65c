//! `TestApp`: one running server per test, with its own database, a clock the test moves, and an
//! HTTP client that keeps cookies and does not follow redirects.

use promio_app::api::{ApiError, LoginOutcome, Me};
use promio_server::domain::Role;
use promio_server::domain::clock::ManualClock;
use promio_server::idm::provisioning::{self, Actor, ClientSettings, UserInput};
use promio_server::infra::config::Settings;
use promio_server::infra::mail::{CapturedMail, CapturingTransport, MailTransport};
use promio_server::store::audit::AuditRow;
use promio_server::{Core, serve};
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// 2027-01-15T08:00:00Z: tests start at a fixed moment and move from there.
pub const START: i64 = 1_800_000_000;

pub const PASSWORD: &str = "a long and unusual passphrase";
/// A password that a test sets instead of [`PASSWORD`], and one more after it.
pub const NEW_PASSWORD: &str = "violet orbit canvas thunder";
pub const NEWER_PASSWORD: &str = "amber harbor lantern meadow";

pub struct TestApp {
    pub mails: Arc<CapturingTransport>,
    pub address: String,
    pub core: Arc<Core>,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    shutdown: Option<oneshot::Sender<()>>,
    database: TestDatabase,
}

enum TestDatabase {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts an app with extra settings (environment-variable names and values).
    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        Self::spawn_at(START, extra).await
    }

    /// Starts an app whose clock begins at the real time: for tests with another process (an
    /// identity provider) that stamps what it issues with the real clock.
    pub async fn spawn_at_real_time() -> TestApp {
        #[allow(clippy::disallowed_methods)]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time after 1970")
            .as_secs() as i64;
        Self::spawn_at(now, &[]).await
    }

    /// An app whose `PUBLIC_URL` names `localhost` (passkeys need a domain name).
    pub async fn spawn_on_localhost() -> TestApp {
        Self::spawn_full(START, &[], "localhost").await
    }

    pub async fn spawn_at(start: i64, extra: &[(&str, &str)]) -> TestApp {
        Self::spawn_full(start, extra, "127.0.0.1").await
    }

    async fn spawn_full(start: i64, extra: &[(&str, &str)], public_host: &str) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let addr = listener.local_addr().expect("local address");
        let (database_url, database) = fresh_database().await;

        let mut env: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), database_url),
            ("LEPTOS_SITE_ADDR".into(), addr.to_string()),
            (
                "PUBLIC_URL".into(),
                format!("http://{public_host}:{}", addr.port()),
            ),
            (
                "SECRET_KEY".into(),
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            ),
            ("HASH_WORKERS".into(), "2".into()),
            // The tests' identity provider listens on plain http on loopback.
            ("SSO_ALLOW_HTTP_ISSUER".into(), "true".into()),
        ]);
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let settings = Settings::from_sources(&env).expect("test settings");
        let clock = ManualClock::new(start);
        let mails = Arc::new(CapturingTransport::default());
        let transport: Arc<dyn MailTransport> = mails.clone();
        let core = Arc::new(
            Core::start_with(settings, Arc::new(clock.clone()), transport)
                .await
                .expect("start the app"),
        );

        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(serve(Arc::clone(&core), listener, async {
            let _ = rx.await;
        }));

        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        TestApp {
            mails,
            address: format!("http://{addr}"),
            core,
            clock,
            client,
            jar,
            shutdown: Some(tx),
            database,
        }
    }

    /// Another instance on the same database and clock (as a second server behind a load
    /// balancer), without an HTTP listener.
    pub async fn second_instance(&self) -> Arc<Core> {
        self.instance_with(self.mails.clone()).await
    }

    /// As [`TestApp::second_instance`], sending its mails with `transport` (a `Folder`, say).
    pub async fn instance_with(&self, transport: Arc<dyn MailTransport>) -> Arc<Core> {
        let env: HashMap<String, String> = HashMap::from([
            (
                "DATABASE_URL".into(),
                self.core.settings.database_url.clone(),
            ),
            (
                "PUBLIC_URL".into(),
                self.core.settings.public_url.to_string(),
            ),
            (
                "SECRET_KEY".into(),
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".into(),
            ),
            ("HASH_WORKERS".into(), "1".into()),
        ]);
        let settings = Settings::from_sources(&env).expect("test settings");
        Arc::new(
            Core::start_with(settings, Arc::new(self.clock.clone()), transport)
                .await
                .expect("start a second instance"),
        )
    }

    /// Runs one housekeeping pass (as this instance) and returns what it did.
    pub async fn housekeeping(&self) -> promio_server::idm::housekeeping::Report {
        self.core.background.idle().await;
        promio_server::idm::housekeeping::run_once(&self.core, "test")
            .await
            .expect("housekeeping")
            .expect("no other instance holds the lease")
    }

    /// The rows of a table.
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.core.store.pool())
            .await
            .expect("count rows")
            .get::<i64, _>("n")
    }

    /// Every table's rows, by table name (the tables as the database lists them, so that a table
    /// a later migration adds is counted too), once the work that requests left behind them is
    /// done.
    pub async fn count_every_table(&self) -> std::collections::BTreeMap<String, i64> {
        use sqlx::Row;
        self.core.background.idle().await;
        let list = match &self.database {
            TestDatabase::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            }
            TestDatabase::Postgres { .. } => {
                "SELECT CAST(tablename AS TEXT) AS name FROM pg_tables
                 WHERE schemaname = current_schema()"
            }
        };
        let names: Vec<String> = sqlx::query(list)
            .fetch_all(self.core.store.pool())
            .await
            .expect("list the tables")
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        assert!(names.len() >= 10, "every table listed: {names:?}");
        let mut counts = std::collections::BTreeMap::new();
        for name in names {
            let n = self.count_rows(&name).await;
            counts.insert(name, n);
        }
        counts
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn create_client(&self, company_id: &str) {
        provisioning::create_client(
            &self.core,
            Actor::default(),
            company_id,
            &format!("{company_id} GmbH"),
        )
        .await
        .expect("create client");
    }

    pub async fn set_client(&self, company_id: &str, settings: ClientSettings) {
        provisioning::update_client(&self.core, Actor::default(), company_id, settings)
            .await
            .expect("update client");
    }

    /// Creates an active user with [`PASSWORD`].
    pub async fn create_user(&self, company_id: &str, username: &str, role: impl Into<Role>) {
        self.create_user_with(company_id, username, role, Some(PASSWORD))
            .await;
    }

    pub async fn create_user_with(
        &self,
        company_id: &str,
        username: &str,
        role: impl Into<Role>,
        password: Option<&str>,
    ) {
        provisioning::create_user(
            &self.core,
            Actor::default(),
            UserInput {
                company_id: company_id.into(),
                username: username.into(),
                email: format!("{username}@{}.example", company_id.to_lowercase()),
                first_name: "Test".into(),
                last_name: username.into(),
                role: role.into(),
                language: "en".into(),
                password: password.map(|p| SecretString::from(p.to_owned())),
            },
        )
        .await
        .expect("create user");
    }

    /// A client and an active user in it, the common start of a test.
    pub async fn with_user(company_id: &str, username: &str) -> TestApp {
        let app = TestApp::spawn().await;
        app.create_client(company_id).await;
        app.create_user(company_id, username, Role::User).await;
        app
    }

    /// Turns 2FA on for the user logged in a moment ago; returns the secret and the recovery codes.
    pub async fn activate_2fa(&self) -> (Vec<u8>, Vec<String>) {
        let enrolment: promio_app::api::TwoFactorEnrolment =
            self.call("2fa/start", &[]).await.json().await.unwrap();
        let secret = totp_rs::Secret::try_from_base32(&enrolment.secret)
            .expect("a base32 secret")
            .as_ref()
            .to_vec();
        let code = self.totp_code(&secret, 0);
        let response = self.call("2fa/activate", &[("code", &code)]).await;
        assert_eq!(response.status(), 200);
        (secret, response.json().await.unwrap())
    }

    /// The TOTP code of `secret`, `offset_steps` steps from the test's now.
    pub fn totp_code(&self, secret: &[u8], offset_steps: i64) -> String {
        use promio_server::domain::clock::Clock;
        let at = self.clock.now() + offset_steps * promio_server::infra::totp::STEP_SECS;
        promio_server::infra::totp::code_at(secret, at).expect("a TOTP code")
    }

    /// `username` at `company_id` with 2FA on, logged out again, the clock one TOTP step on.
    /// Returns the app, the secret and the recovery codes.
    pub async fn with_2fa(company_id: &str, username: &str) -> (TestApp, Vec<u8>, Vec<String>) {
        let app = TestApp::with_user(company_id, username).await;
        app.login_ok(company_id, username).await;
        let (secret, codes) = app.activate_2fa().await;
        app.client.post(app.url("/logout")).send().await.unwrap();
        app.clock.advance(promio_server::infra::totp::STEP_SECS);
        (app, secret, codes)
    }

    /// Calls a server function with form fields, as the browser does.
    pub async fn call(&self, endpoint: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/{endpoint}")))
            .form(fields)
            .send()
            .await
            .expect("request")
    }

    pub async fn login(
        &self,
        company_id: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.call(
            "login",
            &[
                ("company_id", company_id),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn login_ok(&self, company_id: &str, username: &str) {
        let response = self.login(company_id, username, PASSWORD).await;
        assert_eq!(response.status(), 200, "login should succeed");
        let outcome: LoginOutcome = response.json().await.expect("outcome");
        assert_eq!(outcome, LoginOutcome::LoggedIn);
    }

    pub async fn me(&self) -> Option<Me> {
        let response = self.call("me", &[]).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("me")
    }

    /// The session cookie's value in the jar, if any.
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = self.address.parse().ok()?;
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|c| c.strip_prefix("session="))
            .map(str::to_owned)
    }

    /// A client without cookies that presents the given session token.
    pub async fn me_with_token(&self, token: &str) -> Option<Me> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("session={token}")).expect("cookie header"),
        );
        let response = reqwest::Client::new()
            .post(self.url("/api/me"))
            .headers(headers)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        response.json().await.expect("me")
    }

    /// Delivers every due mail now (the tests run no background worker), once the work that
    /// requests left behind them is done.
    pub async fn deliver(&self) -> promio_server::infra::mail::Delivery {
        self.core.background.idle().await;
        self.core.mailer.deliver_due().await.expect("deliver mails")
    }

    /// Delivers due mails and returns the newest one sent to `address`.
    pub async fn mail_to(&self, address: &str) -> CapturedMail {
        self.deliver().await;
        self.mails
            .mails()
            .into_iter()
            .rev()
            .find(|m| m.to.contains(address))
            .unwrap_or_else(|| panic!("no mail to {address}"))
    }

    pub fn mails_to(&self, address: &str) -> usize {
        self.mails
            .mails()
            .iter()
            .filter(|m| m.to.contains(address))
            .count()
    }

    /// The token of the link in a mail.
    pub fn token_of(mail: &CapturedMail) -> String {
        let link = mail.link().expect("a link in the mail");
        let url = url::Url::parse(&link).expect("a URL");
        url.query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .expect("a token")
    }

    pub async fn user_id(&self, company_id: &str, username: &str) -> String {
        self.user_row(company_id, username).await.id.into_string()
    }

    /// The user's row as the store reads it.
    pub async fn user_row(
        &self,
        company_id: &str,
        username: &str,
    ) -> promio_server::store::users::UserRow {
        let client = self
            .core
            .store
            .client_by_company_id(&promio_server::domain::CompanyId::parse(company_id).unwrap())
            .await
            .unwrap()
            .unwrap();
        self.core
            .store
            .user_by_name(
                &client.id,
                &promio_server::domain::UserName::parse(username).unwrap(),
            )
            .await
            .unwrap()
            .unwrap()
    }

    /// Logs in with [`PASSWORD`] in another browser (see [`TestApp::new_browser`]).
    pub async fn login_in(
        &self,
        browser: &reqwest::Client,
        company_id: &str,
        username: &str,
    ) -> reqwest::Response {
        browser
            .post(self.url("/api/login"))
            .form(&[
                ("company_id", company_id),
                ("username", username),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .expect("request")
    }

    /// Who another browser is logged in as.
    pub async fn me_in(&self, browser: &reqwest::Client) -> Option<Me> {
        browser
            .post(self.url("/api/me"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("me")
    }

    /// A second client (own cookie jar) on the same server.
    pub fn new_browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client")
    }

    /// The audit log, newest first, once the work that requests left behind them is done.
    pub async fn audit(&self) -> Vec<AuditRow> {
        self.core.background.idle().await;
        self.core
            .store
            .audit_events(None, 1000)
            .await
            .expect("audit events")
    }

    pub async fn active_sessions(&self) -> i64 {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM sessions")
            .fetch_one(self.core.store.pool())
            .await
            .expect("count sessions")
            .get::<i64, _>("n")
    }
}

/// Reads an error answer's body.
pub async fn api_error(response: reqwest::Response) -> ApiError {
    response.json().await.expect("an ApiError body")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match &self.database {
            TestDatabase::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            TestDatabase::Postgres { admin_url, name } => {
                crate::pg::drop_database(admin_url.clone(), name.clone());
            }
        }
    }
}

async fn fresh_database() -> (String, TestDatabase) {
    match std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin_url) => {
            let (url, name) = crate::pg::create(&admin_url, "t").await;
            (url, TestDatabase::Postgres { admin_url, name })
        }
        None => {
            let dir =
                std::env::temp_dir().join(format!("promio-test-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
            (url, TestDatabase::Sqlite(dir))
        }
    }
}
