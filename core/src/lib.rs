//! promio.connect's core: everything behind the API contract (`promio_api`) that is not a front
//! door, in layers that import only downwards (ARCHITECTURE.md; the server's `tests/layers.rs`
//! checks it): `domain` < `store` < `infra` < `idm`. The front doors (server functions, plain
//! routes, the OpenID Provider, the command line) are in the crates above. This file only wires the
//! layers together.

pub mod domain;
pub mod idm;
pub mod infra;
pub mod store;

pub use idm::Core;

use domain::clock::Clock;
use idm::SessionPolicy;
use infra::config::{self, Settings};
use infra::mail::{self, MailTransport, Mailer};
use infra::password::Hasher;
use std::sync::Arc;
use store::Store;

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
        let passkeys = idm::passkeys::Passkeys::new(&settings.public_url);
        let sso = idm::sso::Sso::new(settings.sso_allow_http_issuer)?;
        let core = Core {
            hasher: Hasher::new(settings.hash_workers, settings.hash_queue)?,
            sessions: SessionPolicy {
                idle_secs: settings.session_idle_secs,
                absolute_secs: settings.session_absolute_secs,
            },
            metrics: Arc::new(infra::metrics::Metrics::new(clock.now())),
            settings,
            store,
            clock,
            mailer,
            time_zone,
            sso,
            background: infra::background::Background::default(),
            passkeys,
            op: idm::signing::Op::new(),
        };
        idm::provisioning::ensure_platform_client(&core)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        idm::signing::ensure_key(&core)
            .await
            .map_err(|e| anyhow::anyhow!("cannot make the ID-token signing key: {e}"))?;
        Ok(core)
    }
}
