//! Real processes and peers for the scale and fault tests: server instances (the built binary),
//! a fresh PostgreSQL database, an SMTP sink that can be switched off, and a TCP switch in front
//! of PostgreSQL.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const SERVER: &str = env!("CARGO_BIN_EXE_promio-connect");
const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Polls `check` every 100 ms until it holds; panics after `limit` naming `what`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the CLI against the given settings; panics with its stderr when it fails.
pub fn cli(env: &HashMap<String, String>, args: &[&str], input: Option<&str>) {
    use std::io::Write;
    let mut child = std::process::Command::new(SERVER)
        .args(args)
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the CLI");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("CLI output");
    assert!(
        out.status.success(),
        "promio-connect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh database on the server `TEST_DATABASE_URL` names, dropped at the end.
pub struct PgDatabase {
    pub url: String,
    admin_url: String,
    name: String,
    pool: sqlx::PgPool,
}

impl PgDatabase {
    pub async fn fresh() -> PgDatabase {
        let admin_url = std::env::var("TEST_DATABASE_URL").expect(
            "these tests need PostgreSQL: set TEST_DATABASE_URL (make test does when one answers)",
        );
        let (url, name) = crate::pg::create(&admin_url, "s").await;
        let pool = sqlx::PgPool::connect_lazy(&url).expect("pool");
        PgDatabase {
            url,
            admin_url,
            name,
            pool,
        }
    }

    pub fn port(&self) -> u16 {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(5432)
    }

    /// The same database through another local port (a [`TcpSwitch`]).
    pub fn url_via(&self, port: u16) -> String {
        let mut url = url::Url::parse(&self.url).expect("URL");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(port)).expect("port");
        url.to_string()
    }

    /// Queues `n` mails at once, each to its own recipient.
    pub async fn queue_mails(&self, n: usize) {
        let mut tx = self.pool.begin().await.expect("begin");
        for i in 0..n {
            sqlx::query(
                "INSERT INTO mail_outbox (id, created_at, recipient, subject, body_text, body_html,
                    kind, next_attempt_at)
                 VALUES ($1, 0, $2, $3, 'text', '<p>html</p>', 'test', 0)",
            )
            .bind(format!("m{i:03}"))
            .bind(format!("r{i:03}@acme.example"))
            .bind(format!("mail {i}"))
            .execute(&mut *tx)
            .await
            .expect("queue a mail");
        }
        tx.commit().await.expect("commit");
    }

    pub async fn unsent_mails(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .expect("count unsent mails")
    }

    /// Whether a mail has been tried and is free again (no worker holds it).
    pub async fn mail_attempted(&self) -> bool {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM mail_outbox WHERE attempts >= 1 AND locked_until IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .is_ok_and(|n| n >= 1)
    }

    pub async fn users_named(&self, username: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username_key = $1")
            .bind(username)
            .fetch_one(&self.pool)
            .await
            .expect("count users")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        crate::pg::drop_database(self.admin_url.clone(), self.name.clone());
    }
}

/// One server process on its own port.
pub struct Instance {
    base: String,
    child: tokio::process::Child,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Instance {
    pub fn env_for(database_url: &str, smtp_port: u16, http_port: u16) -> HashMap<String, String> {
        HashMap::from([
            ("DATABASE_URL".into(), database_url.to_owned()),
            ("SMTP_URL".into(), format!("smtp://127.0.0.1:{smtp_port}")),
            ("SECRET_KEY".into(), SECRET_KEY.into()),
            ("LEPTOS_SITE_ADDR".into(), format!("127.0.0.1:{http_port}")),
            ("PUBLIC_URL".into(), format!("http://127.0.0.1:{http_port}")),
            ("HASH_WORKERS".into(), "1".into()),
            ("MAIL_RETRY_SECONDS".into(), "1".into()),
            ("RUST_LOG".into(), "error".into()),
        ])
    }

    pub async fn start(database_url: &str, smtp_port: u16) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("promio-scale-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut env = Self::env_for(database_url, smtp_port, port);
        env.insert("DATA_DIR".into(), dir.display().to_string());
        let child = tokio::process::Command::new(SERVER)
            .arg("serve")
            .envs(&env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let instance = Instance {
            base: format!("http://127.0.0.1:{port}"),
            child,
            _dir: TempDir(dir),
        };
        wait_until(Duration::from_secs(30), "the server to get ready", || {
            let url = instance.url("/health/ready");
            async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        instance
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.expect("GET")
    }

    /// SIGKILL: no graceful shutdown.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the server");
    }
}

/// A minimal SMTP server that records each message's recipients; while "down" it closes every
/// connection at once, as a failed SMTP server would. A slow one takes a while to accept each
/// message, as a busy server does.
pub struct SmtpSink {
    pub port: u16,
    up: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_slow(Duration::ZERO).await
    }

    /// A sink that takes `per_mail` to accept each message.
    pub async fn start_slow(per_mail: Duration) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let port = listener.local_addr().expect("address").port();
        let up = Arc::new(AtomicBool::new(true));
        let received = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (up, received) = (Arc::clone(&up), Arc::clone(&received));
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(stream);
                        continue;
                    }
                    let received = Arc::clone(&received);
                    tokio::spawn(async move {
                        let _ = smtp_session(stream, received, per_mail).await;
                    });
                }
            })
        };
        SmtpSink {
            port,
            up,
            received,
            task,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    pub fn recipients(&self) -> Vec<String> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn smtp_session(
    stream: TcpStream,
    received: Arc<Mutex<Vec<String>>>,
    per_mail: Duration,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut recipients: Vec<String> = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let address = line[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned();
            recipients.push(address);
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go on\r\n").await?;
            while let Some(data) = lines.next_line().await? {
                if data == "." {
                    break;
                }
            }
            if !per_mail.is_zero() {
                tokio::time::sleep(per_mail).await;
            }
            if let Ok(mut all) = received.lock() {
                all.append(&mut recipients);
            }
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // MAIL FROM, RSET, NOOP and anything else.
            recipients.retain(|_| !upper.starts_with("RSET"));
            write.write_all(b"250 OK\r\n").await?;
        }
    }
    Ok(())
}

/// A TCP forwarder to a local port that can be switched off (every connection is cut and new
/// ones are closed at once) and on again: the database "goes away".
pub struct TcpSwitch {
    pub port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpSwitch {
    pub async fn start(target_port: u16) -> TcpSwitch {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind switch");
        let port = listener.local_addr().expect("address").port();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let target: SocketAddr = ([127, 0, 0, 1], target_port).into();
        let task = {
            let (up, connections) = (Arc::clone(&up), Arc::clone(&connections));
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let handle = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    if let Ok(mut all) = connections.lock() {
                        all.push(handle);
                    }
                }
            })
        };
        TcpSwitch {
            port,
            up,
            connections,
            task,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if let (false, Ok(mut all)) = (up, self.connections.lock()) {
            for connection in all.drain(..) {
                connection.abort();
            }
        }
    }
}

impl Drop for TcpSwitch {
    fn drop(&mut self) {
        self.task.abort();
        self.set_up(false);
    }
}
