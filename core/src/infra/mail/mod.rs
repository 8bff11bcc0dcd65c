//! Mail: texts (`templates`), transports (SMTP, a folder of .eml files, or a capture for tests),
//! and delivery from the transactional outbox.
//!
//! Nothing is lost: a mail is a row before it is sent. The worker claims due rows with a lease,
//! sends them, and marks them sent; a failure reschedules the row with a growing delay (30 s, 1 min,
//! 2 min … up to 1 h), and a crash leaves the lease to run out so that another worker (or this one
//! after a restart) picks the mail up again.
//!
//! No live link rests in the database: [`Mailer::enqueue`] seals a mail's bodies with a key derived
//! from `SECRET_KEY` (every instance shares it), the worker opens them to send, and a sent row's
//! bodies are emptied. Without `SMTP_URL` the mails are .eml files in the outbox folder; they go
//! after a week (housekeeping) and with their user (see `transport::Folder`). A mail has exactly
//! one recipient, the stored address; the display name is kept apart and handed to lettre, which
//! quotes or encodes it, so no name can add or change a recipient or a header.

pub mod templates;
pub mod transport;

use crate::domain::audit::{AuditAction, Event, Outcome};
use crate::domain::clock::{Clock, UnixTime};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::store::Store;
use crate::store::clients::ClientRow;
use crate::store::outbox::{self, NewMail, OutboxRow};
use crate::store::users::UserRow;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};
use promio_api::i18n::Lang;
use secrecy::{ExposeSecret, SecretBox};
use sqlx::AnyConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
pub use transport::MailTransport;
#[cfg(any(test, feature = "test-support"))]
pub use transport::{CapturedMail, CapturingTransport};

/// How long a claimed mail is reserved for the worker that claimed it.
const LEASE_SECS: i64 = 120;
const BATCH: i64 = 20;
/// How often the worker looks for due mails when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);
/// Derives the outbox's key from `SECRET_KEY` (see `crate::infra::crypto`).
const KEY_LABEL: &str = "promio.connect mail outbox";

#[derive(Clone)]
pub struct Mailer {
    store: Store,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn MailTransport>,
    from: Mailbox,
    wake: Arc<Notify>,
    /// Seals and opens the bodies in the outbox.
    key: Arc<SecretBox<[u8; 32]>>,
    /// The wait before the first retry of a failed mail; it doubles with each failure (to 1 h).
    retry_base_secs: i64,
    /// The zone in which mails state times (`MAIL_TIME_ZONE`).
    time_zone: jiff::tz::TimeZone,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
}

/// How a mail addresses the user: their full name, else their user name.
pub fn display_name(user: &UserRow) -> String {
    let full = format!("{} {}", user.first_name, user.last_name);
    let full = full.trim();
    if full.is_empty() {
        user.username.clone()
    } else {
        full.to_owned()
    }
}

/// The delay before the next attempt after `attempts` failures.
pub fn backoff_secs(base: i64, attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 12) - 1;
    (base.max(1) * (1i64 << exp)).min(3600)
}

impl Mailer {
    /// `secret_key` is the deployment's `SECRET_KEY`; the mailer derives its own key from it, so
    /// every instance with the same `SECRET_KEY` can send what any of them queued.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn MailTransport>,
        from: Mailbox,
        secret_key: &SecretBox<[u8; 32]>,
    ) -> Self {
        let key = crate::infra::crypto::derive_key(secret_key.expose_secret(), KEY_LABEL);
        Mailer {
            store,
            clock,
            transport,
            from,
            wake: Arc::new(Notify::new()),
            key: Arc::new(SecretBox::new(Box::new(key))),
            retry_base_secs: 30,
            time_zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// Sets the zone in which mails state times (`MAIL_TIME_ZONE`).
    pub fn with_time_zone(mut self, time_zone: jiff::tz::TimeZone) -> Self {
        self.time_zone = time_zone;
        self
    }

    /// Queues a mail about their account to a user, on `conn` (the caller's transaction): in their
    /// language, to their address, with their name only ever as the display name. The one place
    /// that writes to a user; call [`Mailer::wake`] after the commit.
    pub async fn notify_user(
        &self,
        conn: &mut AnyConnection,
        client: &ClientRow,
        user: &UserRow,
        content: &templates::MailContent,
    ) -> ServiceResult<()> {
        let name = display_name(user);
        let recipient = templates::Recipient {
            display_name: &name,
            company_id: &client.company_id,
            username: &user.username,
            lang: Lang::from_code(&user.language).unwrap_or_default(),
        };
        let rendered = templates::render(content, &recipient, &self.time_zone);
        let mail = NewMail {
            recipient: &user.email,
            recipient_name: &name,
            subject: &rendered.subject,
            body_text: &rendered.text,
            body_html: &rendered.html,
            client_id: Some(&client.id),
            user_id: Some(&user.id),
            kind: content.kind(),
        };
        self.enqueue(conn, mail, self.clock.now()).await?;
        Ok(())
    }

    /// Queues a mail on `conn` (normally the caller's transaction, so that the mail exists exactly
    /// when the change that causes it does), its bodies sealed. Call [`Mailer::wake`] after the
    /// commit to send it at once.
    pub async fn enqueue(
        &self,
        conn: &mut AnyConnection,
        mail: NewMail<'_>,
        now: UnixTime,
    ) -> ServiceResult<String> {
        let seal = |plain: &str| {
            crate::infra::crypto::seal(self.key.expose_secret(), plain.as_bytes()).ok_or_else(
                || ServiceError::Internal(anyhow::anyhow!("cannot seal a mail for the outbox")),
            )
        };
        let body_text = seal(mail.body_text)?;
        let body_html = seal(mail.body_html)?;
        let sealed = NewMail {
            body_text: &body_text,
            body_html: &body_html,
            ..mail
        };
        Ok(outbox::insert_sealed(conn, sealed, now).await?)
    }

    /// Sets the wait before the first retry (`MAIL_RETRY_SECONDS`).
    pub fn with_retry_base(mut self, secs: i64) -> Self {
        self.retry_base_secs = secs;
        self
    }

    /// Tells the worker that a mail was queued (it would find it at its next poll anyway).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends every mail that is due now; returns how many were sent and how many failed.
    pub async fn deliver_due(&self) -> Result<Delivery, sqlx::Error> {
        let mut report = Delivery::default();
        loop {
            let now = self.clock.now();
            let batch = self.store.claim_mails(now, LEASE_SECS, BATCH).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            for mail in batch {
                match self.send(&mail).await {
                    Ok(()) => {
                        self.store
                            .mark_mail_sent(&mail.id, self.clock.now())
                            .await?;
                        self.audit(&mail, Outcome::Success, "").await?;
                        tracing::info!(mail_id = %mail.id, kind = %mail.kind, "mail sent");
                        report.sent += 1;
                    }
                    Err(e) => {
                        let next =
                            self.clock.now() + backoff_secs(self.retry_base_secs, mail.attempts);
                        let reason = format!("{e:#}");
                        self.store.reschedule_mail(&mail.id, next, &reason).await?;
                        self.audit(&mail, Outcome::Failure, &reason).await?;
                        tracing::warn!(mail_id = %mail.id, attempts = mail.attempts, error = %reason, "mail not sent; will retry");
                        report.failed += 1;
                    }
                }
            }
            if report.failed > 0 {
                // Do not spin on a transport that is down: the rescheduled mails wait for their time.
                return Ok(report);
            }
        }
    }

    async fn send(&self, mail: &OutboxRow) -> anyhow::Result<()> {
        let to = recipient(&mail.recipient, &mail.recipient_name)?;
        let (text, html) = if mail.sealed != 0 {
            (self.open(&mail.body_text)?, self.open(&mail.body_html)?)
        } else {
            (mail.body_text.clone(), mail.body_html.clone())
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        self.transport
            .send_to_user(message, mail.user_id.as_deref())
            .await
    }

    fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let plain =
            crate::infra::crypto::open(self.key.expose_secret(), sealed).ok_or_else(|| {
                anyhow::anyhow!(
                    "the mail cannot be opened (was SECRET_KEY changed since it was queued?)"
                )
            })?;
        Ok(String::from_utf8(plain)?)
    }

    async fn audit(
        &self,
        mail: &OutboxRow,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        // The stored kind is one the templates named; a row from an unknown version says so.
        let kind = templates::MAIL_KINDS
            .iter()
            .find(|k| **k == mail.kind)
            .copied()
            .unwrap_or("unknown");
        let event = Event::new(AuditAction::Mail(kind), outcome)
            .client(mail.client_id.as_deref())
            .subject(mail.user_id.as_deref())
            .detail(detail);
        self.store.record(event, self.clock.now()).await
    }

    /// Runs the delivery loop until the process ends.
    pub fn spawn_worker(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.deliver_due().await {
                    tracing::warn!(error = %e, "mail delivery could not read the outbox");
                }
                tokio::select! {
                    () = self.wake.notified() => {},
                    () = tokio::time::sleep(POLL) => {},
                }
            }
        })
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Removes what the transport keeps of the mails written before `before` (without
    /// `SMTP_URL`, the .eml files in the outbox folder); returns how many.
    pub async fn remove_kept_before(&self, before: UnixTime) -> anyhow::Result<u64> {
        self.transport.remove_written_before(before).await
    }

    /// Removes what the transport keeps of the mails to a user (their deletion); returns how many.
    pub async fn remove_kept_for_user(&self, user_id: &str) -> anyhow::Result<u64> {
        self.transport.remove_for_user(user_id).await
    }
}

/// The one recipient of a mail: the stored address, with the display name beside it. The name is
/// given to lettre as a name (which quotes or encodes it), never parsed as part of an address, and
/// line breaks and other control characters in it become spaces. Rows queued before migration 0008
/// hold `Name <address>` in `recipient`; they are read as one mailbox, as they were then.
fn recipient(address: &str, name: &str) -> anyhow::Result<Mailbox> {
    let Ok(address) = address.trim().parse::<Address>() else {
        return Ok(address.parse::<Mailbox>()?);
    };
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_owned()),
        address,
    ))
}

#[cfg(test)]
mod tests {
    use super::{backoff_secs, recipient};

    #[test]
    fn retries_back_off_up_to_an_hour() {
        assert_eq!(backoff_secs(30, 1), 30);
        assert_eq!(backoff_secs(30, 2), 60);
        assert_eq!(backoff_secs(30, 3), 120);
        assert_eq!(backoff_secs(30, 7), 1920);
        assert_eq!(backoff_secs(30, 8), 3600);
        assert_eq!(backoff_secs(30, 50), 3600);
        assert_eq!(backoff_secs(1, 1), 1);
        assert_eq!(backoff_secs(1, 3), 4);
    }

    /// The address in each `To`, `Cc` or `Bcc` header of a formatted message.
    fn header_recipients(message: &lettre::Message) -> Vec<String> {
        let raw = String::from_utf8(message.formatted()).unwrap();
        let head = raw.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
        head.split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| ["to", "cc", "bcc"].contains(&name.to_ascii_lowercase().as_str()))
            .flat_map(|(_, value)| value.trim().parse::<lettre::message::Mailboxes>().unwrap())
            .map(|mailbox| mailbox.email.to_string())
            .collect()
    }

    #[test]
    fn a_display_name_never_adds_or_changes_a_recipient_or_a_header() {
        for name in [
            "Eve <eve@evil.example>, x",
            "\"a\r\nBcc: x@evil.example",
            "a\nCc: x@evil.example\r\n\r\nbody",
            "Erika \"the boss\" Mustermann, Jr.",
            "Jürgen",
            "",
        ] {
            let to = recipient("erika@acme.example", name).unwrap();
            let message = lettre::Message::builder()
                .from("promio.connect <no-reply@promio.example>".parse().unwrap())
                .to(to)
                .subject("s")
                .body("b".to_owned())
                .unwrap();
            let envelope: Vec<String> = message
                .envelope()
                .to()
                .iter()
                .map(|a| a.to_string())
                .collect();
            assert_eq!(envelope, ["erika@acme.example"], "{name:?}");
            assert_eq!(
                header_recipients(&message),
                ["erika@acme.example"],
                "{name:?}"
            );
        }
    }

    #[test]
    fn rows_from_before_the_name_column_are_still_addressed() {
        let to = recipient("Erika Mustermann <erika@acme.example>", "").unwrap();
        assert_eq!(to.email.to_string(), "erika@acme.example");
        assert_eq!(to.name.as_deref(), Some("Erika Mustermann"));
    }
}
