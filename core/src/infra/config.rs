//! Settings: defaults, then an optional TOML file (`PROMIO_CONFIG`), then environment variables, the
//! last one winning. Every setting is checked at start; a bad one stops the start with a message
//! that names it.
//!
//! The layering is done here rather than with figment because figment parses environment values
//! ("123" becomes a number), which would refuse an all-digit secret or password.

use crate::domain::CompanyId;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{SecretBox, SecretString};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

/// The names a setting can be given under, as environment variables and as TOML keys (lower case).
pub const KEYS: &[&str] = &[
    "DATABASE_URL",
    "PUBLIC_URL",
    "SMTP_URL",
    "MAIL_FROM",
    "SECRET_KEY",
    "DATA_DIR",
    "PLATFORM_COMPANY_ID",
    "SESSION_IDLE_MINUTES",
    "SESSION_ABSOLUTE_HOURS",
    "HASH_WORKERS",
    "HASH_QUEUE",
    "ASYNC_WORKERS",
    "DATABASE_POOL_SIZE",
    "METRICS_TOKEN",
    "LEPTOS_SITE_ADDR",
    "LEPTOS_HASH_FILES",
    "LOG_FORMAT",
    "TOTP_ISSUER",
    "TRUSTED_PROXIES",
    "MAIL_TIME_ZONE",
    "MAIL_RETRY_SECONDS",
    "SSO_ALLOW_HTTP_ISSUER",
    "AUDIT_RETENTION_DAYS",
    "HOUSEKEEPING_MINUTES",
    "BOOTSTRAP_OPERATOR_USERNAME",
    "BOOTSTRAP_OPERATOR_EMAIL",
    "BOOTSTRAP_OPERATOR_PASSWORD",
];

/// The first operator, made from the environment on a start that finds none (as Keycloak's
/// bootstrap admin); ignored once any operator exists.
pub struct BootstrapOperator {
    pub username: String,
    pub email: String,
    pub password: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
}

fn bad(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

pub struct Settings {
    pub database_url: String,
    /// Connections to the database at most.
    pub database_pool_size: u32,
    /// The origin of mail links and the SSO redirect; never taken from a request.
    pub public_url: Url,
    pub site_addr: SocketAddr,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub secret_key: SecretBox<[u8; 32]>,
    pub data_dir: PathBuf,
    pub platform_company_id: CompanyId,
    pub session_idle_secs: i64,
    pub session_absolute_secs: i64,
    pub hash_workers: usize,
    /// Threads of the async runtime (HTTP, database I/O, mail, token signing); password hashing
    /// has threads of its own.
    pub async_workers: usize,
    /// The wait before a failed mail is tried again (doubling with each failure, up to 1 hour).
    pub mail_retry_secs: i64,
    /// How many password checks may wait for a hashing worker; more get "try again" (503) at once.
    pub hash_queue: usize,
    /// When set, `/metrics` answers only with `Authorization: Bearer <token>`; unset, only to
    /// loopback peers.
    pub metrics_token: Option<SecretString>,
    pub log_json: bool,
    /// Whether the site's file names carry content hashes (when cargo-leptos left its hash file
    /// beside the binary); `LEPTOS_HASH_FILES`.
    pub hash_files: bool,
    /// The issuer that authenticator apps show for the TOTP record.
    pub totp_issuer: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The time zone in which mails and link pages state expiry times.
    pub time_zone: jiff::tz::TimeZone,
    /// Whether an identity provider may be reached over plain http (on this machine's loopback
    /// only, for tests and local IdPs); `SSO_ALLOW_HTTP_ISSUER`, off by default. It is also what
    /// lets requests to identity providers go to loopback addresses at all (see `sso::target`).
    pub sso_allow_http_issuer: bool,
    /// Audit rows older than this many days are deleted by housekeeping (`AUDIT_RETENTION_DAYS`).
    pub audit_retention_days: i64,
    /// How often each instance runs housekeeping, in seconds (`HOUSEKEEPING_MINUTES`).
    pub housekeeping_secs: i64,
    /// `BOOTSTRAP_OPERATOR_USERNAME`, `…_EMAIL`, `…_PASSWORD`: all three or none.
    pub bootstrap_operator: Option<BootstrapOperator>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("public_url", &self.public_url.as_str())
            .field("site_addr", &self.site_addr)
            .field("smtp", &self.smtp_url.is_some())
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// Hides a URL's password, for log lines.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => raw.to_owned(),
    }
}

impl Settings {
    /// Reads the process environment (and the file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::from_sources(&env)
    }

    /// Layers the optional file under the given environment and checks the result.
    pub fn from_sources(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut raw: HashMap<&'static str, String> = HashMap::new();
        if let Some(path) = env.get("PROMIO_CONFIG").filter(|p| !p.is_empty()) {
            for (key, value) in read_file(Path::new(path))? {
                raw.insert(key, value);
            }
        }
        for key in KEYS {
            if let Some(value) = env.get(*key).filter(|v| !v.is_empty()) {
                raw.insert(key, value.clone());
            }
        }
        Self::from_raw(&raw)
    }

    fn from_raw(raw: &HashMap<&'static str, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| raw.get(k).map(|s| s.trim().to_owned());

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "data".to_owned()));

        let site_addr: SocketAddr = get("LEPTOS_SITE_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
            .parse()
            .map_err(|e| {
                bad(
                    "LEPTOS_SITE_ADDR",
                    format!("not an address like 127.0.0.1:3000 ({e})"),
                )
            })?;

        let public_url = match get("PUBLIC_URL") {
            Some(u) => parse_public_url(&u)?,
            // A loopback listener is reached as `localhost`: a domain name, which passkeys need.
            None if site_addr.ip().is_loopback() => {
                parse_public_url(&format!("http://localhost:{}", site_addr.port()))?
            }
            None => parse_public_url(&format!("http://{site_addr}"))?,
        };

        let database_url = get("DATABASE_URL").unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("promio.db").display())
        });
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "DATABASE_URL",
                "must start with sqlite: or postgres://",
            ));
        }
        if database_url.starts_with("sqlite:") {
            crate::store::sqlite_file(&database_url)
                .map_err(|e| bad("DATABASE_URL", e.to_string()))?;
        }

        let smtp_url = match get("SMTP_URL") {
            Some(u) => {
                let parsed = Url::parse(&u).map_err(|e| bad("SMTP_URL", e.to_string()))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
                    return Err(bad(
                        "SMTP_URL",
                        "must look like smtp://host:port or smtps://user:pass@host",
                    ));
                }
                Some(SecretString::from(u))
            }
            None => None,
        };

        let mail_from = get("MAIL_FROM").unwrap_or_else(|| {
            format!(
                "promio.connect <no-reply@{}>",
                public_url.host_str().unwrap_or("localhost")
            )
        });
        if !mail_from.contains('@') {
            return Err(bad(
                "MAIL_FROM",
                "must be an email address, optionally with a name: Name <a@b.example>",
            ));
        }

        let secret_key = match get("SECRET_KEY") {
            Some(k) => decode_key(&k).map_err(|reason| bad("SECRET_KEY", reason))?,
            None => load_or_create_key(&data_dir)?,
        };

        let platform_company_id =
            CompanyId::parse(&get("PLATFORM_COMPANY_ID").unwrap_or_else(|| "promio".to_owned()))
                .map_err(|e| bad("PLATFORM_COMPANY_ID", format!("{:?}", e.problem)))?;

        let session_idle_minutes = number(&get, "SESSION_IDLE_MINUTES", 60, 1, 24 * 60)?;
        let session_absolute_hours = number(&get, "SESSION_ABSOLUTE_HOURS", 24, 1, 24 * 30)?;
        let default_workers = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(2);
        let hash_workers = number(&get, "HASH_WORKERS", default_workers, 1, 256)? as usize;
        let hash_queue = number(&get, "HASH_QUEUE", 64, 0, 100_000)? as usize;
        // Half the cores: password hashing runs on threads of its own, which under login load
        // take every core; an async worker for each core as well mostly adds wake-ups between
        // workers (on 2 cores, with 1 worker instead of 2 the rest of the server took a quarter less
        // CPU per login; the token endpoint alone then answers fewer codes, see the README).
        let async_workers =
            number(&get, "ASYNC_WORKERS", (default_workers / 2).max(1), 1, 256)? as usize;
        // SQLite runs each connection on a thread of its own and writes one at a time: as many
        // connections as cores (and two more, for password logins and their checkpoints, see
        // `store::hot`) keeps those threads busy instead of waking ever different ones.
        let default_pool = if database_url.starts_with("sqlite:") {
            default_workers.max(2)
        } else {
            16
        };
        let database_pool_size = number(&get, "DATABASE_POOL_SIZE", default_pool, 1, 1000)? as u32;
        let mail_retry_secs = number(&get, "MAIL_RETRY_SECONDS", 30, 1, 3600)?;
        let audit_retention_days = number(&get, "AUDIT_RETENTION_DAYS", 730, 30, 36_500)?;
        let housekeeping_minutes = number(&get, "HOUSEKEEPING_MINUTES", 10, 1, 24 * 60)?;
        let bootstrap_operator = match (
            get("BOOTSTRAP_OPERATOR_USERNAME"),
            get("BOOTSTRAP_OPERATOR_EMAIL"),
            get("BOOTSTRAP_OPERATOR_PASSWORD"),
        ) {
            (None, None, None) => None,
            (Some(username), Some(email), Some(password)) => Some(BootstrapOperator {
                username,
                email,
                password: SecretString::from(password),
            }),
            (username, email, _) => {
                let missing = if username.is_none() {
                    "BOOTSTRAP_OPERATOR_USERNAME"
                } else if email.is_none() {
                    "BOOTSTRAP_OPERATOR_EMAIL"
                } else {
                    "BOOTSTRAP_OPERATOR_PASSWORD"
                };
                return Err(bad(
                    missing,
                    "the first operator needs BOOTSTRAP_OPERATOR_USERNAME, _EMAIL and _PASSWORD together",
                ));
            }
        };
        let metrics_token = match get("METRICS_TOKEN") {
            Some(t) if t.len() < 16 => {
                return Err(bad("METRICS_TOKEN", "must be at least 16 characters"));
            }
            Some(t) => Some(SecretString::from(t)),
            None => None,
        };

        let log_json = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(_) => return Err(bad("LOG_FORMAT", "must be text or json")),
        };
        let hash_files = match get("LEPTOS_HASH_FILES").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(bad("LEPTOS_HASH_FILES", "must be true or false")),
        };
        let sso_allow_http_issuer = match get("SSO_ALLOW_HTTP_ISSUER").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(bad("SSO_ALLOW_HTTP_ISSUER", "must be true or false")),
        };
        let trusted_proxies = get("TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| bad("TRUSTED_PROXIES", format!("{s} is not an IP address")))
            })
            .collect::<Result<Vec<std::net::IpAddr>, _>>()?;
        let totp_issuer = get("TOTP_ISSUER").unwrap_or_else(|| "promio.net GmbH".to_owned());

        if totp_issuer.is_empty() || totp_issuer.len() > 100 || totp_issuer.contains(':') {
            return Err(bad(
                "TOTP_ISSUER",
                "must be 1 to 100 characters without ':'",
            ));
        }

        let zone_name = get("MAIL_TIME_ZONE").unwrap_or_else(|| "Europe/Berlin".to_owned());
        let time_zone = jiff::tz::TimeZone::get(&zone_name).map_err(|_| {
            bad(
                "MAIL_TIME_ZONE",
                format!("{zone_name} is not a known time zone (e.g. Europe/Berlin)"),
            )
        })?;

        Ok(Settings {
            time_zone,
            database_url,
            database_pool_size,
            public_url,
            site_addr,
            smtp_url,
            mail_from,
            secret_key,
            data_dir,
            platform_company_id,
            session_idle_secs: session_idle_minutes * 60,
            session_absolute_secs: session_absolute_hours * 3600,
            hash_workers,
            async_workers,
            mail_retry_secs,
            hash_queue,
            metrics_token,
            log_json,
            hash_files,
            totp_issuer,
            trusted_proxies,
            sso_allow_http_issuer,
            audit_retention_days,
            housekeeping_secs: housekeeping_minutes * 60,
            bootstrap_operator,
        })
    }

    /// Whether cookies may carry `Secure` and the `__Host-` prefix.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// `scheme://host[:port]` of `PUBLIC_URL`, as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The settings as they take effect, one `NAME = value` per line, secrets masked (for
    /// `promio-connect config check`).
    pub fn describe(&self) -> String {
        let masked = |set: bool| if set { "(set, not shown)" } else { "(unset)" };
        let proxies: Vec<String> = self.trusted_proxies.iter().map(|p| p.to_string()).collect();
        let lines = [
            ("DATABASE_URL", redact_url(&self.database_url)),
            ("DATABASE_POOL_SIZE", self.database_pool_size.to_string()),
            ("PUBLIC_URL", self.public_url.to_string()),
            ("LEPTOS_SITE_ADDR", self.site_addr.to_string()),
            (
                "SMTP_URL",
                match &self.smtp_url {
                    Some(url) => {
                        use secrecy::ExposeSecret;
                        redact_url(url.expose_secret())
                    }
                    None => format!("(unset: mails go to {}/outbox)", self.data_dir.display()),
                },
            ),
            ("MAIL_FROM", self.mail_from.clone()),
            ("SECRET_KEY", masked(true).to_owned()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            ("PLATFORM_COMPANY_ID", self.platform_company_id.to_string()),
            (
                "SESSION_IDLE_MINUTES",
                (self.session_idle_secs / 60).to_string(),
            ),
            (
                "SESSION_ABSOLUTE_HOURS",
                (self.session_absolute_secs / 3600).to_string(),
            ),
            ("HASH_WORKERS", self.hash_workers.to_string()),
            ("HASH_QUEUE", self.hash_queue.to_string()),
            ("ASYNC_WORKERS", self.async_workers.to_string()),
            ("MAIL_RETRY_SECONDS", self.mail_retry_secs.to_string()),
            (
                "METRICS_TOKEN",
                masked(self.metrics_token.is_some()).to_owned(),
            ),
            (
                "LOG_FORMAT",
                if self.log_json { "json" } else { "text" }.to_owned(),
            ),
            ("LEPTOS_HASH_FILES", self.hash_files.to_string()),
            ("TOTP_ISSUER", self.totp_issuer.clone()),
            ("TRUSTED_PROXIES", proxies.join(",")),
            (
                "MAIL_TIME_ZONE",
                self.time_zone.iana_name().unwrap_or("UTC").to_owned(),
            ),
            (
                "SSO_ALLOW_HTTP_ISSUER",
                self.sso_allow_http_issuer.to_string(),
            ),
            (
                "AUDIT_RETENTION_DAYS",
                self.audit_retention_days.to_string(),
            ),
            (
                "HOUSEKEEPING_MINUTES",
                (self.housekeeping_secs / 60).to_string(),
            ),
            (
                "BOOTSTRAP_OPERATOR_USERNAME",
                self.bootstrap_operator
                    .as_ref()
                    .map(|b| b.username.clone())
                    .unwrap_or_else(|| "(unset)".to_owned()),
            ),
            (
                "BOOTSTRAP_OPERATOR_PASSWORD",
                masked(self.bootstrap_operator.is_some()).to_owned(),
            ),
        ];
        lines
            .iter()
            .map(|(name, value)| format!("{name} = {value}\n"))
            .collect()
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(bad(
                name,
                format!("must be a whole number from {min} to {max}"),
            )),
        },
    }
}

/// Plain http is only for a browser on the same machine; anything reachable from elsewhere must
/// be https so that cookies can be `Secure`.
fn parse_public_url(raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| bad("PUBLIC_URL", format!("{e}")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "PUBLIC_URL",
                "must use https (plain http only for localhost)",
            ));
        }
        _ => return Err(bad("PUBLIC_URL", "must be an http(s) URL")),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "PUBLIC_URL",
            "must be an origin only, like https://login.example.com",
        ));
    }
    Ok(url)
}

fn decode_key(encoded: &str) -> Result<SecretBox<[u8; 32]>, String> {
    let bytes = BASE64
        .decode(encoded.trim())
        .map_err(|_| "is not base64".to_owned())?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        "must be 32 bytes, base64-encoded (e.g. openssl rand -base64 32)".to_owned()
    })?;
    Ok(SecretBox::new(Box::new(key)))
}

/// The key is generated once and kept next to the database, so that encrypted data stays readable
/// across restarts of a single-node deployment. Several instances must share one `SECRET_KEY`.
fn load_or_create_key(data_dir: &Path) -> Result<SecretBox<[u8; 32]>, ConfigError> {
    let path = data_dir.join("secret.key");
    let fail = |reason: String| bad("SECRET_KEY", format!("{reason} ({})", path.display()));
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        return decode_key(&text).map_err(fail);
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| fail(format!("cannot create the data folder: {e}")))?;
    let key: [u8; 32] = rand::random();
    write_private(&path, BASE64.encode(key).as_bytes())
        .map_err(|e| fail(format!("cannot write: {e}")))?;
    Ok(SecretBox::new(Box::new(key)))
}

fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(content)
}

fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let fail = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.to_string()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let name = KEYS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&key))
            .ok_or_else(|| fail(format!("unknown setting {key}")))?;
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(fail(format!(
                    "{key} must be a string or number, not {}",
                    other.type_str()
                )));
            }
        };
        out.push((*name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("SECRET_KEY".into())
            .or_insert_with(|| BASE64.encode([7u8; 32]));
        Settings::from_sources(&env)
    }

    fn failing_setting(pairs: &[(&str, &str)]) -> &'static str {
        match settings(pairs) {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("expected a refused setting, got {other:?}"),
        }
    }

    #[test]
    fn hashed_file_names_are_on_unless_turned_off_and_other_values_are_refused() {
        assert!(settings(&[]).unwrap().hash_files);
        assert!(
            settings(&[("LEPTOS_HASH_FILES", "true")])
                .unwrap()
                .hash_files
        );
        assert!(
            !settings(&[("LEPTOS_HASH_FILES", "false")])
                .unwrap()
                .hash_files
        );
        assert_eq!(
            failing_setting(&[("LEPTOS_HASH_FILES", "no")]),
            "LEPTOS_HASH_FILES"
        );
    }

    #[test]
    fn http_issuers_are_off_unless_allowed_and_other_values_are_refused() {
        assert!(!settings(&[]).unwrap().sso_allow_http_issuer);
        assert!(
            settings(&[("SSO_ALLOW_HTTP_ISSUER", "true")])
                .unwrap()
                .sso_allow_http_issuer
        );
        assert!(
            !settings(&[("SSO_ALLOW_HTTP_ISSUER", "false")])
                .unwrap()
                .sso_allow_http_issuer
        );
        assert_eq!(
            failing_setting(&[("SSO_ALLOW_HTTP_ISSUER", "yes")]),
            "SSO_ALLOW_HTTP_ISSUER"
        );
    }

    #[test]
    fn defaults_serve_localhost_on_sqlite() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.public_url.as_str(), "http://localhost:3000/");
        assert_eq!(s.public_origin(), "http://localhost:3000");
        assert!(s.database_url.starts_with("sqlite://data/promio.db"));
        assert_eq!(s.session_idle_secs, 3600);
        assert_eq!(s.session_absolute_secs, 24 * 3600);
        assert_eq!(s.platform_company_id.as_str(), "promio");
        assert!(!s.is_https());
        assert!(s.database_pool_size >= 2);
    }

    #[test]
    fn async_workers_are_half_the_cores_unless_set() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let default = (cores / 2).max(1);
        assert_eq!(settings(&[]).unwrap().async_workers, default);
        // Never the default, so that the setting is seen applied on any machine.
        let chosen = default + 2;
        let set = settings(&[("ASYNC_WORKERS", &chosen.to_string())]).unwrap();
        assert_eq!(set.async_workers, chosen);
        assert!(
            set.describe()
                .contains(&format!("ASYNC_WORKERS = {chosen}")),
            "{}",
            set.describe()
        );
        for bad in ["0", "257", "two"] {
            assert_eq!(failing_setting(&[("ASYNC_WORKERS", bad)]), "ASYNC_WORKERS");
        }
    }

    #[test]
    fn the_pool_size_follows_the_database_unless_set() {
        let pg = settings(&[("DATABASE_URL", "postgres://db/promio")]).unwrap();
        assert_eq!(pg.database_pool_size, 16);
        let set = settings(&[("DATABASE_POOL_SIZE", "5")]).unwrap();
        assert_eq!(set.database_pool_size, 5);
        assert_eq!(
            failing_setting(&[("DATABASE_POOL_SIZE", "0")]),
            "DATABASE_POOL_SIZE"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            failing_setting(&[("PUBLIC_URL", "http://login.example.com")]),
            "PUBLIC_URL"
        );
        assert_eq!(
            failing_setting(&[("PUBLIC_URL", "https://login.example.com/path")]),
            "PUBLIC_URL"
        );
        assert_eq!(
            failing_setting(&[("PUBLIC_URL", "not a url")]),
            "PUBLIC_URL"
        );
        assert_eq!(
            failing_setting(&[("DATABASE_URL", "mysql://x")]),
            "DATABASE_URL"
        );
        assert_eq!(
            failing_setting(&[("DATABASE_URL", "sqlite::memory:")]),
            "DATABASE_URL"
        );
        assert_eq!(
            failing_setting(&[("DATABASE_URL", "sqlite://promio.db?mode=memory")]),
            "DATABASE_URL"
        );
        assert_eq!(failing_setting(&[("SMTP_URL", "http://mail")]), "SMTP_URL");
        assert_eq!(failing_setting(&[("SECRET_KEY", "c2hvcnQ=")]), "SECRET_KEY");
        assert_eq!(failing_setting(&[("SECRET_KEY", "%%%")]), "SECRET_KEY");
        assert_eq!(
            failing_setting(&[("SESSION_IDLE_MINUTES", "0")]),
            "SESSION_IDLE_MINUTES"
        );
        assert_eq!(
            failing_setting(&[("SESSION_ABSOLUTE_HOURS", "many")]),
            "SESSION_ABSOLUTE_HOURS"
        );
        assert_eq!(
            failing_setting(&[("LEPTOS_SITE_ADDR", "localhost")]),
            "LEPTOS_SITE_ADDR"
        );
        assert_eq!(
            failing_setting(&[("PLATFORM_COMPANY_ID", "x")]),
            "PLATFORM_COMPANY_ID"
        );
    }

    #[test]
    fn https_public_urls_are_accepted_anywhere() {
        let s = settings(&[("PUBLIC_URL", "https://login.example.com")]).unwrap();
        assert!(s.is_https());
        assert_eq!(s.public_origin(), "https://login.example.com");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("promio-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("promio.toml");
        std::fs::write(
            &file,
            "public_url = \"https://file.example\"\nsession_idle_minutes = 15\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let s = settings(&[("PROMIO_CONFIG", file)]).unwrap();
        assert_eq!(s.public_origin(), "https://file.example");
        assert_eq!(s.session_idle_secs, 15 * 60);
        let s = settings(&[
            ("PROMIO_CONFIG", file),
            ("PUBLIC_URL", "https://env.example"),
        ])
        .unwrap();
        assert_eq!(s.public_origin(), "https://env.example");
        std::fs::write(dir.join("bad.toml"), "colour = \"blue\"\n").unwrap();
        let bad = dir.join("bad.toml");
        assert!(matches!(
            settings(&[("PROMIO_CONFIG", bad.to_str().unwrap())]),
            Err(ConfigError::File { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_key_is_generated_once_and_then_reused() {
        let dir = std::env::temp_dir().join(format!("promio-key-{}", uuid::Uuid::new_v4()));
        use secrecy::ExposeSecret;
        let first = load_or_create_key(&dir).unwrap();
        let second = load_or_create_key(&dir).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
