//! Where mails go: an SMTP server (`SMTP_URL`), a folder of .eml files (no `SMTP_URL`: development),
//! or a capture that tests read (feature `test-support`, not in the shipped server).
//!
//! No transport logs what a mail says: its links carry tokens, and no token reaches a log line.

use async_trait::async_trait;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    async fn send(&self, message: Message) -> anyhow::Result<()>;
}

pub struct Smtp(AsyncSmtpTransport<Tokio1Executor>);

impl Smtp {
    /// `smtp://host:port` (plain), `smtps://user:pass@host` (TLS); lettre's URL rules apply.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(Smtp(transport))
    }
}

#[async_trait]
impl MailTransport for Smtp {
    async fn send(&self, message: Message) -> anyhow::Result<()> {
        self.0.send(message).await?;
        Ok(())
    }
}

/// Writes each mail as `<id>.eml` into a folder; the log names the file (the file is the delivery:
/// whoever develops without an SMTP server opens it to follow the link).
pub struct Folder {
    transport: AsyncFileTransport<Tokio1Executor>,
    dir: PathBuf,
}

impl Folder {
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Folder {
            transport: AsyncFileTransport::new(&dir),
            dir,
        })
    }
}

#[async_trait]
impl MailTransport for Folder {
    async fn send(&self, message: Message) -> anyhow::Result<()> {
        let id = self.transport.send(message).await?;
        tracing::info!(file = %self.dir.join(format!("{id}.eml")).display(), "mail written");
        Ok(())
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use capture::{CapturedMail, CapturingTransport};

/// The transport of the integration tests (feature `test-support`): not part of the shipped server.
#[cfg(any(test, feature = "test-support"))]
mod capture {
    use super::MailTransport;
    use async_trait::async_trait;
    use lettre::Message;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A sent mail as tests see it.
    #[derive(Debug, Clone)]
    pub struct CapturedMail {
        pub to: String,
        pub subject: String,
        /// The whole message, headers and both parts, decoded where it was quoted-printable.
        pub raw: String,
    }

    impl CapturedMail {
        /// The first link in the mail.
        pub fn link(&self) -> Option<String> {
            let start = self.raw.find("http")?;
            let end = self.raw[start..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
                .map(|e| start + e)
                .unwrap_or(self.raw.len());
            Some(self.raw[start..end].to_owned())
        }
    }

    /// Keeps mails in memory; can be switched to fail, as an SMTP server that is down.
    #[derive(Default)]
    pub struct CapturingTransport {
        mails: Mutex<Vec<CapturedMail>>,
        down: AtomicBool,
    }

    impl CapturingTransport {
        pub fn set_down(&self, down: bool) {
            self.down.store(down, Ordering::SeqCst);
        }

        pub fn mails(&self) -> Vec<CapturedMail> {
            self.mails.lock().map(|m| m.clone()).unwrap_or_default()
        }
    }

    #[async_trait]
    impl MailTransport for CapturingTransport {
        async fn send(&self, message: Message) -> anyhow::Result<()> {
            if self.down.load(Ordering::SeqCst) {
                anyhow::bail!("connection refused (test transport is down)");
            }
            let to = message
                .envelope()
                .to()
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            let subject = message
                .headers()
                .get_raw("Subject")
                .unwrap_or_default()
                .to_owned();
            let raw = decode_qp(&String::from_utf8_lossy(&message.formatted()));
            if let Ok(mut mails) = self.mails.lock() {
                mails.push(CapturedMail { to, subject, raw });
            }
            Ok(())
        }
    }

    /// Undoes quoted-printable soft line breaks and escapes, enough for tests to read links and
    /// text.
    fn decode_qp(s: &str) -> String {
        let joined = s.replace("=\r\n", "").replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                let hex = |b: u8| (b as char).to_digit(16);
                if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Sends a registration-like mail whose link holds `token` into a new folder; returns it.
    async fn send_to_a_new_folder(token: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("promio-outbox-{}", uuid::Uuid::new_v4().simple()));
        let folder = Folder::new(dir.clone()).unwrap();
        let message = Message::builder()
            .from("promio.connect <no-reply@promio.example>".parse().unwrap())
            .to("Erika <erika@acme.example>".parse().unwrap())
            .subject("Your promio.connect account")
            .body(format!(
                "Set your password: https://login.example/set-password?token={token}\n"
            ))
            .unwrap();
        folder.send(message).await.unwrap();
        dir
    }

    #[tokio::test]
    async fn without_smtp_mails_become_eml_files_in_the_outbox_folder() {
        let dir = send_to_a_new_folder("abc").await;
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("To: Erika <erika@acme.example>"));
        assert!(text.contains("https://login.example/set-password?token=abc"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// What a subscriber wrote, for tests that read the log.
    #[derive(Clone, Default)]
    struct Log(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_folder_logs_the_file_and_never_the_link() {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let dir = send_to_a_new_folder("s3cr3t").await;

        let written = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(written.contains("mail written"), "{written}");
        assert!(written.contains(&dir.display().to_string()), "{written}");
        assert!(!written.contains("s3cr3t"), "{written}");
        assert!(!written.contains("set-password"), "{written}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
