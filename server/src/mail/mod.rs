//! Mail: texts (`templates`), transports (SMTP, a folder of .eml files, or a capture for tests),
//! and delivery from the transactional outbox.
//!
//! Nothing is lost: a mail is a row before it is sent. The worker claims due rows with a lease,
//! sends them, and marks them sent; a failure reschedules the row with a growing delay (30 s, 1 min,
//! 2 min … up to 1 h), and a crash leaves the lease to run out so that another worker (or this one
//! after a restart) picks the mail up again.

pub mod templates;
pub mod transport;

use crate::clock::{Clock, UnixTime};
use crate::store::Store;
use crate::store::audit::AuditEvent;
use crate::store::outbox::OutboxRow;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
pub use transport::{CapturedMail, CapturingTransport, MailTransport};

/// How long a claimed mail is reserved for the worker that claimed it.
const LEASE_SECS: i64 = 120;
const BATCH: i64 = 20;
/// How often the worker looks for due mails when nothing wakes it.
const POLL: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Mailer {
    store: Store,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn MailTransport>,
    from: Mailbox,
    wake: Arc<Notify>,
    /// The wait before the first retry of a failed mail; it doubles with each failure (to 1 h).
    retry_base_secs: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
}

/// The delay before the next attempt after `attempts` failures.
pub fn backoff_secs(base: i64, attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 12) - 1;
    (base.max(1) * (1i64 << exp)).min(3600)
}

impl Mailer {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        transport: Arc<dyn MailTransport>,
        from: Mailbox,
    ) -> Self {
        Mailer {
            store,
            clock,
            transport,
            from,
            wake: Arc::new(Notify::new()),
            retry_base_secs: 30,
        }
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
                        self.audit(&mail, "success", "").await?;
                        tracing::info!(mail_id = %mail.id, kind = %mail.kind, "mail sent");
                        report.sent += 1;
                    }
                    Err(e) => {
                        let next =
                            self.clock.now() + backoff_secs(self.retry_base_secs, mail.attempts);
                        let reason = format!("{e:#}");
                        self.store.reschedule_mail(&mail.id, next, &reason).await?;
                        self.audit(&mail, "failure", &reason).await?;
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
        let to: Mailbox = mail.recipient.parse()?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                mail.body_html.clone(),
            ))?;
        self.transport.send(message).await
    }

    async fn audit(
        &self,
        mail: &OutboxRow,
        outcome: &str,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        let action = format!("mail.{}", mail.kind);
        self.store
            .record(
                AuditEvent {
                    client_id: mail.client_id.as_deref(),
                    subject_user_id: mail.user_id.as_deref(),
                    action: &action,
                    outcome,
                    detail,
                    ..Default::default()
                },
                self.clock.now(),
            )
            .await
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
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

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
}
