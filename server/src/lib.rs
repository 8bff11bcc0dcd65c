//! promio.connect's server: everything behind the API contract of `promio_app`.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod housekeeping;
pub mod http;
pub mod lifecycle;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod operator;
pub mod passkeys;
pub mod principal;
pub mod provisioning;

pub mod services;
pub mod sso;
pub mod store;
pub mod throttle;

pub mod totp;
pub mod two_factor;

use auth::cookies::CookiePolicy;
use auth::{SessionPolicy, password::Hasher};
use clock::Clock;
use config::Settings;
use leptos::config::LeptosOptions;
use mail::{MailTransport, Mailer};
use promio_app::ssr::site_hashes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;

/// The running application's parts, shared by HTTP handlers, the CLI and tests.
pub struct Core {
    pub settings: Settings,
    pub store: Store,
    /// Password hashing on its own threads (see `auth::password`).
    pub hasher: Hasher,
    pub cookies: CookiePolicy,
    pub sessions: SessionPolicy,
    pub metrics: Arc<metrics::Metrics>,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    pub time_zone: jiff::tz::TimeZone,
    /// Identity providers: the HTTP client and the discovery cache.
    pub sso: sso::Sso,
    /// Work that requests start and do not wait for.
    pub background: background::Background,
    /// The WebAuthn relying party (none when `PUBLIC_URL` has no domain name).
    pub passkeys: passkeys::Passkeys,
    /// The OpenID Provider's caches (its signing keys).
    pub op: oauth::Op,
}

impl Core {
    /// Connects to the database, applies pending migrations and makes sure the platform client
    /// exists. Mails go to `SMTP_URL`, or into `DATA_DIR/outbox` when it is unset.
    pub async fn start(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Core> {
        let transport: Arc<dyn MailTransport> = match &settings.smtp_url {
            Some(url) => {
                use secrecy::ExposeSecret;
                Arc::new(
                    mail::transport::Smtp::from_url(url.expose_secret())
                        .map_err(|e| anyhow::anyhow!("setting SMTP_URL: {e}"))?,
                )
            }
            None => Arc::new(mail::transport::Folder::new(
                settings.data_dir.join("outbox"),
                Arc::clone(&clock),
            )?),
        };
        Self::start_with(settings, clock, transport).await
    }

    /// As [`Core::start`], with the given mail transport (tests capture mails this way).
    pub async fn start_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn MailTransport>,
    ) -> anyhow::Result<Core> {
        let store = Store::connect(&settings.database_url, settings.database_pool_size)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the database {}: {e}",
                    config::redact_url(&settings.database_url)
                )
            })?;
        store
            .migrate()
            .await
            .map_err(|e| anyhow::anyhow!("cannot migrate the database: {e}"))?;
        let from: lettre::message::Mailbox = settings
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("setting MAIL_FROM: {e}"))?;
        let mailer = Mailer::new(
            store.clone(),
            Arc::clone(&clock),
            transport,
            from,
            &settings.secret_key,
        )
        .with_retry_base(settings.mail_retry_secs)
        .with_time_zone(settings.time_zone.clone());
        let time_zone = settings.time_zone.clone();
        let passkeys = passkeys::Passkeys::new(&settings.public_url);
        let sso = sso::Sso::new(settings.sso_allow_http_issuer)?;
        let core = Core {
            hasher: Hasher::new(settings.hash_workers, settings.hash_queue)?,
            cookies: CookiePolicy {
                https: settings.is_https(),
            },
            sessions: SessionPolicy {
                idle_secs: settings.session_idle_secs,
                absolute_secs: settings.session_absolute_secs,
            },
            metrics: Arc::new(metrics::Metrics::new(clock.now())),
            settings,
            store,
            clock,
            mailer,
            time_zone,
            sso,
            background: background::Background::default(),
            passkeys,
            op: oauth::Op::new(),
        };
        provisioning::ensure_platform_client(&core)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        oauth::keys::ensure_key(&core)
            .await
            .map_err(|e| anyhow::anyhow!("cannot make the ID-token signing key: {e}"))?;
        Ok(core)
    }
}

/// The leptos settings: where the compiled site (WASM, JS, CSS) is served from. cargo-leptos
/// passes them as `LEPTOS_*` variables; without them the defaults of this workspace apply. The
/// site's file names carry content hashes when cargo-leptos left its hash file beside this binary
/// (unless `LEPTOS_HASH_FILES` is `false`).
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let hash_files = settings.hash_files && site_hashes().is_some();
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "promio-connect"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(settings.site_addr)
        .hash_files(hash_files)
        .build()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    core: Arc<Core>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = leptos_options(&core.settings);
    let app = http::router(core, options);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
