//! Where mails go: an SMTP server (`SMTP_URL`), a folder of .eml files (no `SMTP_URL`: development),
//! or a capture that tests read (feature `test-support`, not in the shipped server).
//!
//! No transport logs what a mail says: its links carry tokens, and no token reaches a log line.
//! The folder's files hold those links, so they do not stay: housekeeping removes the files
//! written a week ago, and deleting a user removes theirs at once (see [`Folder`]).

use crate::domain::clock::{Clock, UnixTime};
use async_trait::async_trait;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    async fn send(&self, message: Message) -> anyhow::Result<()>;

    /// Sends a mail to the user `user_id` (the outbox row's user, when it names one). A transport
    /// that keeps copies notes the user, so that [`MailTransport::remove_for_user`] finds them;
    /// the others just send.
    async fn send_to_user(&self, message: Message, _user_id: Option<&str>) -> anyhow::Result<()> {
        self.send(message).await
    }

    /// Removes the kept copies of mails written before `before`; returns how many (0 for a
    /// transport that keeps none).
    async fn remove_written_before(&self, _before: UnixTime) -> anyhow::Result<u64> {
        Ok(0)
    }

    /// Removes the kept copies of the mails to the user `user_id`; returns how many.
    async fn remove_for_user(&self, _user_id: &str) -> anyhow::Result<u64> {
        Ok(0)
    }
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

/// Writes each mail as an .eml file into a folder; the log names the file (the file is the
/// delivery: whoever develops without an SMTP server opens it to follow the link).
///
/// A file is named `<unix time>_<user>_<random>.eml`: the time from the injected clock, the user
/// the outbox row's user id (`nobody` when it names none). So housekeeping and a user's deletion
/// find the files by their names alone, whatever address or display name the mail carried (an
/// address changed since, a name lettre encoded). Files without such a name (written by an older
/// version) count from their modification time. Writing the file ourselves (not with lettre's
/// `AsyncFileTransport`, which names files by a random id only) is what lets the name say this;
/// the content is the same, the formatted message.
pub struct Folder {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
}

impl Folder {
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Folder { dir, clock })
    }

    /// Removes the folder's .eml files for which `doomed(path, file name)` holds, off the
    /// executor (the folder is read with blocking calls).
    async fn remove_where(
        &self,
        doomed: impl Fn(&Path, &str) -> bool + Send + 'static,
    ) -> anyhow::Result<u64> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || remove_files(&dir, doomed)).await?
    }
}

#[async_trait]
impl MailTransport for Folder {
    async fn send(&self, message: Message) -> anyhow::Result<()> {
        self.send_to_user(message, None).await
    }

    async fn send_to_user(&self, message: Message, user_id: Option<&str>) -> anyhow::Result<()> {
        let random = uuid::Uuid::new_v4().simple().to_string();
        let name = file_name(self.clock.now(), user_id, &random);
        let path = self.dir.join(name);
        let bytes = message.formatted();
        let target = path.clone();
        tokio::task::spawn_blocking(move || std::fs::write(target, bytes)).await??;
        tracing::info!(file = %path.display(), "mail written");
        Ok(())
    }

    async fn remove_written_before(&self, before: UnixTime) -> anyhow::Result<u64> {
        self.remove_where(move |path, name| written_at(path, name).is_some_and(|at| at < before))
            .await
    }

    async fn remove_for_user(&self, user_id: &str) -> anyhow::Result<u64> {
        let tag = user_tag(Some(user_id));
        self.remove_where(move |_, name| {
            parse_file_name(name).is_some_and(|(_, owner)| owner == tag)
        })
        .await
    }
}

/// The user part of a file name: the id itself when it is made of letters, digits and hyphens (as
/// the store's ids are), else `x` and its bytes in hex, so that no id can reach outside the folder
/// or break the name apart.
fn user_tag(user_id: Option<&str>) -> String {
    let Some(id) = user_id else {
        return "nobody".to_owned();
    };
    let plain = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if plain {
        id.to_owned()
    } else {
        let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x{hex}")
    }
}

fn file_name(at: UnixTime, user_id: Option<&str>, random: &str) -> String {
    format!("{at}_{}_{random}.eml", user_tag(user_id))
}

/// When the file named `name` was written and its user part, if the name has both.
fn parse_file_name(name: &str) -> Option<(UnixTime, &str)> {
    let mut parts = name.strip_suffix(".eml")?.splitn(3, '_');
    let at = parts.next()?.parse().ok()?;
    let owner = parts.next()?;
    parts.next()?;
    Some((at, owner))
}

/// When a file was written: by its name, else by its modification time.
fn written_at(path: &Path, name: &str) -> Option<UnixTime> {
    if let Some((at, _)) = parse_file_name(name) {
        return Some(at);
    }
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    UnixTime::try_from(since.as_secs()).ok()
}

/// Removes the .eml files in `dir` that `doomed` picks; other files stay. A missing folder holds
/// nothing, and a file removed meanwhile (by hand, or by another instance sharing the folder)
/// does not count.
fn remove_files(dir: &Path, doomed: impl Fn(&Path, &str) -> bool) -> anyhow::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".eml") || !entry.file_type()?.is_file() || !doomed(&path, name) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

#[cfg(any(test, feature = "test-support"))]
pub use capture::{CapturedMail, CapturingTransport};

/// The transport of the integration tests (feature `test-support`): not part of the shipped server.
#[cfg(any(test, feature = "test-support"))]
mod capture {
    use crate::infra::mail::transport::MailTransport;
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
        let clock = Arc::new(crate::domain::clock::ManualClock::new(0));
        let folder = Folder::new(dir.clone(), clock).unwrap();
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
        // Another test thread may have cached "no subscriber wants this event" for the callsite
        // (tracing caches interest per callsite across threads): ask again with this one set.
        tracing::callsite::rebuild_interest_cache();

        let dir = send_to_a_new_folder("s3cr3t").await;

        let written = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(written.contains("mail written"), "{written}");
        assert!(written.contains(&dir.display().to_string()), "{written}");
        assert!(!written.contains("s3cr3t"), "{written}");
        assert!(!written.contains("set-password"), "{written}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_name_says_when_and_for_whom() {
        let name = file_name(1_800_000_000, Some("0b8e-41aa"), "r4nd0m");
        assert_eq!(name, "1800000000_0b8e-41aa_r4nd0m.eml");
        assert_eq!(parse_file_name(&name), Some((1_800_000_000, "0b8e-41aa")));
        // An id that could leave the folder or break the name apart is written in hex.
        let odd = file_name(5, Some("../a_b"), "r");
        assert_eq!(odd, "5_x2e2e2f615f62_r.eml");
        assert_eq!(parse_file_name(&odd), Some((5, "x2e2e2f615f62")));
        assert_eq!(
            parse_file_name(&file_name(5, None, "r")),
            Some((5, "nobody"))
        );
        // Names that other writers chose carry no time.
        assert_eq!(parse_file_name("3f2a9c.eml"), None);
        assert_eq!(parse_file_name("1_2_3.txt"), None);
    }

    #[tokio::test]
    async fn old_files_and_a_users_files_are_removed_and_nothing_else() {
        let dir =
            std::env::temp_dir().join(format!("promio-outbox-{}", uuid::Uuid::new_v4().simple()));
        let clock = crate::domain::clock::ManualClock::new(1_000);
        let folder = Folder::new(dir.clone(), Arc::new(clock.clone())).unwrap();
        let mail = |to: &str| {
            Message::builder()
                .from("promio.connect <no-reply@promio.example>".parse().unwrap())
                .to(to.parse().unwrap())
                .subject("s")
                .body("b".to_owned())
                .unwrap()
        };
        folder
            .send_to_user(mail("a@acme.example"), Some("user-a"))
            .await
            .unwrap();
        clock.set(2_000);
        folder
            .send_to_user(mail("b@acme.example"), Some("user-b"))
            .await
            .unwrap();
        folder
            .send_to_user(mail("a@acme.example"), Some("user-a"))
            .await
            .unwrap();
        std::fs::write(dir.join("notes.txt"), "not a mail").unwrap();

        assert_eq!(folder.remove_written_before(1_000).await.unwrap(), 0);
        assert_eq!(folder.remove_written_before(1_001).await.unwrap(), 1);
        assert_eq!(folder.remove_for_user("user-a").await.unwrap(), 1);
        assert_eq!(folder.remove_for_user("user-a").await.unwrap(), 0);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].starts_with("2000_user-b_"), "{left:?}");
        assert_eq!(left[1], "notes.txt");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
