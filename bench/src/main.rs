//! `make bench`: measures the release server on this machine against baselines taken in the same
//! run, and prints one table. Every loop is bounded in time and count, and only loopback is used.
//!
//! 1. Password-login throughput through the real HTTP endpoint (concurrent clients) against the
//!    fastest raw argon2id verification among the candidate implementations
//!    (`password::Implementation`), each verifying the same PHC string with the same parameters on
//!    as many threads as the server hashes with, its memory taken once per thread and reused as the
//!    server's hashing threads do.
//! 2. p50/p99 latency of a session check while password logins saturate the CPU.
//! 3. Peak server memory during a flood of 500 concurrent login attempts, against the bound of
//!    hashing workers × argon2's 19 MiB over the server's memory at rest.
//! 4. The login page's WASM + JS + CSS as served with `Accept-Encoding: br`.
//! 5. ID tokens signed per second by the server's signing code, against raw RS256 signing with
//!    OpenSSL and the server's own key; and codes redeemed at the token endpoint (each redemption
//!    signs one ID token) by concurrent clients, against the same raw rate; all in the same run,
//!    on as many threads as the server hashes with.
//!
//! Usage: promio-bench [SERVER_BINARY] [SITE_ROOT] (defaults: target/release/promio-connect,
//! target/site). Exits 1 when a figure misses its target.

mod loadgen;

use anyhow::{Context, anyhow, bail};
use promio_server::infra::password;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(6);
/// Throughput is measured in this many HTTP rounds, each between two raw rounds.
const ROUNDS: usize = 15;
const ROUND_WINDOW: Duration = Duration::from_secs(2);
/// Each round counts completions inside a window that opens after this warm-up (threads started,
/// argon2 memory touched, connections made), for the baseline and the server alike.
const WARM_UP: Duration = Duration::from_millis(500);
const LOGIN_CLIENTS: usize = 8;
const FLOOD: usize = 500;
const PASSWORD: &str = "a long and unusual bench passphrase";
const ARGON2_MIB: f64 = password::MEMORY_KIB as f64 / 1024.0;
/// The bench application's redirect URI: nothing listens there, the bench reads the
/// authorization response's `Location`.
const RP_REDIRECT: &str = "http://127.0.0.1:9/callback";
const REDEEM_CLIENTS: usize = 8;

struct Row {
    figure: String,
    value: String,
    target: String,
    ok: bool,
}

// One thread drives the bench's HTTP clients (the login figure's own are `loadgen`'s threads): a
// load generator should take as little of the CPU it measures as it can (the baseline's threads
// are plain OS threads).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let server_bin = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "target/release/promio-connect".into()),
    );
    let site_root = args.next().unwrap_or_else(|| "target/site".into());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);

    // `PROMIO_BENCH_ONLY=logins` measures the login figure alone; any other value is refused
    // rather than taken for a full run.
    let only_logins = match std::env::var("PROMIO_BENCH_ONLY") {
        Err(std::env::VarError::NotPresent) => false,
        Ok(value) if value == "logins" => true,
        Ok(value) => {
            bail!("PROMIO_BENCH_ONLY={value:?}: the one part that runs alone is \"logins\"")
        }
        Err(e) => bail!("PROMIO_BENCH_ONLY: {e}"),
    };

    let server = Server::start(&server_bin, &site_root, workers).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rest_mib = server.rss_mib()?;
    let mut rows = Vec::new();

    // 1. Raw argon2id of every candidate on `workers` threads and logins through HTTP, in turns:
    // each HTTP round is compared with the raw rounds just before and after it, so that a change
    // in the machine's speed during the run (it is shared) touches both sides of each ratio alike.
    // Every candidate verifies the same PHC string, made by the server's implementation.
    let phc: Arc<str> = password::hash_blocking(PASSWORD)
        .map_err(|e| anyhow!("argon2: {e}"))?
        .into();
    check_candidates(&phc)?;
    let mut raws = vec![raw_round(workers, &phc, false)?];
    let mut https = Vec::new();
    let mut cpu = CpuSplit::default();
    for round in 0..ROUNDS {
        let before = CpuSplit::now(server.pid)?;
        let logins = server.logins_per_sec(LOGIN_CLIENTS, ROUND_WINDOW).await?;
        cpu.add(&CpuSplit::now(server.pid)?.minus(&before));
        cpu.logins += logins.logins;
        https.push(logins.rate);
        raws.push(raw_round(workers, &phc, round % 2 == 0)?);
    }
    let ratios = round_ratios(&raws, &https);
    let candidates = password::Implementation::ALL;
    // Each candidate's rates over the raw rounds, in the order of `candidates`.
    let rates: Vec<Vec<f64>> = (0..candidates.len())
        .map(|i| raws.iter().map(|round| round[i]).collect())
        .collect();
    let means: Vec<f64> = rates
        .iter()
        .map(|r| r.iter().sum::<f64>() / r.len() as f64)
        .collect();
    let fastest = (0..candidates.len())
        .max_by(|a, b| means[*a].total_cmp(&means[*b]))
        .ok_or_else(|| anyhow!("no argon2id implementation to measure"))?;
    // The server hashes with the fastest of those that wipe their memory.
    let fastest_wiping = (0..candidates.len())
        .filter(|i| candidates[*i].wipes_memory())
        .map(|i| means[i])
        .fold(0.0_f64, f64::max);
    for (i, candidate) in candidates.iter().enumerate() {
        let (lowest, highest) = range(&rates[i]);
        let server = *candidate == password::Implementation::SERVER;
        rows.push(Row {
            figure: format!(
                "raw argon2id/s, {} ({workers} threads, memory reused per thread{})",
                candidate.name(),
                match (server, candidate.wipes_memory()) {
                    (true, _) => ", the server's",
                    (false, true) => "",
                    (false, false) => ", memory not wiped",
                }
            ),
            value: format!(
                "{:.1} ({lowest:.1} to {highest:.1}, {} rounds)",
                means[i],
                rates[i].len()
            ),
            target: if server {
                "the fastest that wipes its memory".into()
            } else {
                "—".into()
            },
            ok: !server || means[i] >= fastest_wiping,
        });
    }
    let raw = means[fastest];
    let http = https.iter().sum::<f64>() / https.len() as f64;
    // The median of the rounds' ratios: a round in which a neighbour took the machine moves it
    // little.
    let ratio = median(ratios.clone());
    let (lowest, highest) = range(&ratios);
    rows.push(Row {
        figure: format!(
            "password logins/s via HTTP ({LOGIN_CLIENTS} clients) ÷ the fastest raw argon2id/s \
             ({workers} threads)"
        ),
        value: format!(
            "{http:.1} / {raw:.1} ({}); median of {ROUNDS} rounds {ratio:.2} ({lowest:.2} to \
             {highest:.2})",
            candidates[fastest].name()
        ),
        target: "≥ 0.95".into(),
        ok: ratio >= 0.95,
    });

    // `PROMIO_BENCH_ONLY=logins` stops here: the login figure alone, for trying a change to the
    // login path (it exits 1 only when the rows above miss their targets).
    if only_logins {
        drop(server);
        return print_table(&cpu, workers, &rows);
    }

    // 2. A session check while logins saturate the CPU.
    let (p50, p99, probes) = server.latency_under_load(LOGIN_CLIENTS, WINDOW).await?;
    rows.push(Row {
        figure: format!("session check under login load: p50 / p99 ({probes} probes)"),
        value: format!("{p50:.1} ms / {p99:.1} ms"),
        target: "p99 < 50 ms".into(),
        ok: p99 < 50.0,
    });

    // 3. Memory during a flood.
    let flood = server.flood(FLOOD).await?;
    // The fixed base: the server at rest, plus up to 64 KiB for each of the flood's connections
    // while it is open (buffers of HTTP/1 connections); the queue itself holds no memory.
    let connections_mib = FLOOD as f64 * 64.0 / 1024.0;
    let bound = rest_mib + workers as f64 * ARGON2_MIB + connections_mib;
    rows.push(Row {
        figure: format!(
            "peak RSS in a flood of {FLOOD} logins (before it {:.1} MiB; {} hashed, {} told to retry, {:.0} ms)",
            flood.before_mib, flood.hashed, flood.retry, flood.millis
        ),
        value: format!("{:.1} MiB", flood.peak_mib),
        target: format!(
            "≤ rest + {workers} workers × {ARGON2_MIB:.0} MiB + {FLOOD} connections × 64 KiB = {bound:.1} MiB"
        ),
        ok: flood.peak_mib <= bound,
    });
    rows.push(Row {
        figure: "server memory at rest (started, ready, before any login)".into(),
        value: format!("{rest_mib:.1} MiB"),
        target: "< 50 MiB".into(),
        ok: rest_mib < 50.0,
    });

    // 4. What the browser downloads for the login page.
    let assets = server.login_page_assets().await?;
    let total: usize = assets.iter().map(|a| a.bytes).sum();
    let all_br = assets.iter().all(|a| a.encoding == "br");
    let cached = assets.iter().all(|a| a.immutable);
    rows.push(Row {
        figure: format!(
            "login page WASM + JS + CSS as served ({})",
            assets
                .iter()
                .map(|a| format!("{} {} B {}", a.name, a.bytes, a.encoding))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        value: format!("{:.1} KB", total as f64 / 1000.0),
        target: "< 250 KB, br".into(),
        ok: total < 250_000 && all_br,
    });
    rows.push(Row {
        figure: "those files under hashed names with a long-lived Cache-Control".into(),
        value: if cached { "yes" } else { "no" }.into(),
        target: "yes".into(),
        ok: cached,
    });
    // 5. ID tokens: raw RS256 signing with the server's own key, the server's signing code with
    // it, then codes redeemed through HTTP.
    // On a runtime of their own with as many threads as the server hashes with (this one has a
    // single thread), the server's parts beside it over the same database and data folder.
    let env = server.env.clone();
    let (kid, raw_signs, signed) = std::thread::spawn(move || -> anyhow::Result<_> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let beside = core_beside(&env).await?;
            let (kid, key) = promio_server::idm::signing::signing_key(&beside)
                .await
                .map_err(|e| anyhow!("reading the server's signing key: {e:?}"))?;
            let raw_signs = raw_signs_per_sec(workers, ROUND_WINDOW, key)?;
            let signed = signed_per_sec(&beside, workers, ROUND_WINDOW).await?;
            Ok((kid, raw_signs, signed))
        })
    })
    .join()
    .map_err(|_| anyhow!("the signing measurement panicked"))??;
    let sign_ratio = signed / raw_signs;
    let redeemed = server
        .codes_redeemed_per_sec(REDEEM_CLIENTS, ROUND_WINDOW, raw_signs)
        .await?;
    rows.push(Row {
        figure: format!(
            "raw RS256 signs/s (OpenSSL, the server's signing key {kid}, {workers} threads)"
        ),
        value: format!("{raw_signs:.0}"),
        target: "—".into(),
        ok: true,
    });
    rows.push(Row {
        figure: format!(
            "ID tokens signed/s by the server's signing code (that key, {workers} at a time) ÷ raw \
             RS256 signs/s"
        ),
        value: format!("{signed:.0} / {raw_signs:.0} = {sign_ratio:.2}"),
        target: "≥ 0.9".into(),
        ok: sign_ratio >= 0.9,
    });
    rows.push(Row {
        figure: format!(
            "codes redeemed/s via HTTP ({REDEEM_CLIENTS} clients; each also authenticates the \
             application, redeems the code, writes two tokens and an audit row) ÷ raw RS256 signs/s"
        ),
        value: format!(
            "{redeemed:.0} / {raw_signs:.0} = {:.2}",
            redeemed / raw_signs
        ),
        target: "—".into(),
        ok: true,
    });
    drop(server);
    print_table(&cpu, workers, &rows)
}

/// Prints where the CPU went and the table; exits 1 when a target was missed.
fn print_table(cpu: &CpuSplit, workers: usize, rows: &[Row]) -> anyhow::Result<()> {
    println!();
    println!("{}", cpu.describe(workers));
    println!("| figure | measured | target | met |");
    println!("|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.figure,
            row.value,
            row.target,
            if row.ok { "yes" } else { "NO" }
        );
    }
    if rows.iter().all(|r| r.ok) {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

/// The users every figure logs in as: one per concurrent client (the account throttle counts an
/// attempt before hashing, so concurrent logins to one account would wait), all with the same
/// password hash, written straight into the database before the server starts.
const USERS: usize = FLOOD + 10;

fn user(i: usize) -> String {
    format!("u{i}")
}

async fn seed(database_url: &str) -> anyhow::Result<()> {
    use promio_server::domain::{ClientName, CompanyId, EmailAddress, PersonName, UserName};
    use promio_server::store::{Store, users::NewUser, users::UserStatus};
    let store = Store::connect(database_url, 2).await?;
    store.migrate().await?;
    let client = store
        .insert_client(
            &CompanyId::parse("BENCH")?,
            &ClientName::parse("Bench GmbH")?,
            0,
        )
        .await?
        .ok_or_else(|| anyhow!("the bench client exists already"))?;
    let phc = password::hash_blocking(PASSWORD).map_err(|e| anyhow!("argon2: {e}"))?;
    let name = PersonName::parse(promio_app::api::Field::FirstName, "Bench")?;
    for i in 0..USERS {
        store
            .insert_user(
                NewUser {
                    client_id: &client.id,
                    username: &UserName::parse(&user(i))?,
                    email: &EmailAddress::parse(&format!("{}@bench.example", user(i)))?,
                    first_name: &name,
                    last_name: &name,
                    role: promio_server::domain::Role::User,
                    language: "en",
                    password_hash: Some(phc.clone()),
                    status: UserStatus::Active,
                    email_verified: true,
                },
                0,
            )
            .await?;
    }
    store.pool().close().await;
    Ok(())
}

/// Every candidate verifies the bench's PHC string and a hash made by each candidate, and refuses a
/// wrong password: they read and write the same PHC strings, so their rates compare like with like.
fn check_candidates(phc: &str) -> anyhow::Result<()> {
    for maker in password::Implementation::ALL {
        let made = maker.worker().hash(PASSWORD)?;
        for checker in password::Implementation::ALL {
            let mut worker = checker.worker();
            for phc in [phc, made.as_str()] {
                anyhow::ensure!(
                    worker.verify(phc, PASSWORD) && !worker.verify(phc, "not the password"),
                    "{} does not verify {phc} (made by {} or the server)",
                    checker.name(),
                    maker.name()
                );
            }
        }
    }
    Ok(())
}

/// One raw round: each candidate's verifications per second in turn, in the order of
/// `Implementation::ALL` (measured in reverse order when `reverse`, so that none always runs
/// first).
fn raw_round(threads: usize, phc: &Arc<str>, reverse: bool) -> anyhow::Result<Vec<f64>> {
    let all = password::Implementation::ALL;
    let mut order: Vec<usize> = (0..all.len()).collect();
    if reverse {
        order.reverse();
    }
    let mut rates = vec![0.0; all.len()];
    for i in order {
        rates[i] = raw_verifications_per_sec(all[i], threads, ROUND_WINDOW, phc)?;
    }
    Ok(rates)
}

/// Verifications per second of one implementation with the server's argon2id parameters on
/// `threads` threads.
fn raw_verifications_per_sec(
    implementation: password::Implementation,
    threads: usize,
    window: Duration,
    phc: &Arc<str>,
) -> anyhow::Result<f64> {
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let phc = Arc::clone(phc);
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                // As the server's workers do: argon2's memory taken once per thread and reused.
                let mut worker = implementation.worker();
                while started.elapsed() < WARM_UP + window {
                    assert!(worker.verify(&phc, PASSWORD));
                    if in_window(started.elapsed(), window) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow!("a verification thread panicked"))?;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
}

/// One code from the authorization endpoint for the logged-in `browser` (PKCE S256 of
/// `verifier`), read from the redirect's `Location`.
async fn authorize_code(
    browser: &reqwest::Client,
    authorize: &str,
    client_id: &str,
    verifier: &str,
) -> anyhow::Result<String> {
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let url = reqwest::Url::parse_with_params(
        authorize,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", RP_REDIRECT),
            ("scope", "openid profile email"),
            ("state", "bench"),
            ("nonce", "bench"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )?;
    let response = browser.get(url).send().await?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let status = response.status();
    response.bytes().await?;
    let location =
        location.ok_or_else(|| anyhow!("the authorization endpoint answered {status}"))?;
    reqwest::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow!("no code in the authorization response: {location}"))
}

/// RS256 signatures per second with OpenSSL and `key` (the server's) on `threads` threads, over
/// an input of an ID token's size: the raw rate the server's signing is compared with.
fn raw_signs_per_sec(
    threads: usize,
    window: Duration,
    key: Arc<openssl::pkey::PKey<openssl::pkey::Private>>,
) -> anyhow::Result<f64> {
    use openssl::hash::MessageDigest;
    use openssl::sign::Signer;
    // About an ID token's header and claims, base64url-encoded.
    let input: Arc<[u8]> = vec![b'x'; 700].into();
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (key, input, count) = (Arc::clone(&key), Arc::clone(&input), Arc::clone(&count));
            std::thread::spawn(move || -> Result<(), openssl::error::ErrorStack> {
                while started.elapsed() < WARM_UP + window {
                    let mut signer = Signer::new(MessageDigest::sha256(), &**key)?;
                    signer.update(&input)?;
                    signer.sign_to_vec()?;
                    if in_window(started.elapsed(), window) {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle
            .join()
            .map_err(|_| anyhow!("a signing thread panicked"))??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
}

/// The server's parts in this process, over the same database and data folder as the server
/// started with `env` (its signing key and `SECRET_KEY` among them): what the signing figures are
/// measured with.
async fn core_beside(env: &[(String, String)]) -> anyhow::Result<Arc<promio_server::Core>> {
    // What the server child sees: this process's environment with the server's settings over it.
    let env: std::collections::HashMap<String, String> =
        std::env::vars().chain(env.iter().cloned()).collect();
    let settings = promio_server::infra::config::Settings::from_sources(&env)
        .map_err(|e| anyhow!("the server's settings: {e}"))?;
    let clock = Arc::new(promio_server::domain::clock::SystemClock);
    Ok(Arc::new(promio_server::Core::start(settings, clock).await?))
}

/// ID tokens signed per second by the server's own signing code (`idm::signing::sign`: the key
/// from its cache, the header and claims encoded, the signature off the executor), `concurrent`
/// at a time, with claims of an ID token's size.
async fn signed_per_sec(
    core: &Arc<promio_server::Core>,
    concurrent: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:3000", "sub": "0f5c1d7e-6a4b-4e8f-9a51-3c2b7d9e1f00",
        "aud": "app_bench", "azp": "app_bench", "iat": 1_800_000_000, "exp": 1_800_003_600,
        "auth_time": 1_800_000_000, "nonce": "n-0S6_WzA2Mj", "amr": ["pwd"],
        "sid": "q1w2e3r4t5y6u7i8o9p0", "preferred_username": "bench-user",
        "name": "Bench User", "given_name": "Bench", "family_name": "User",
        "email": "bench-user@bench.example", "email_verified": true,
        "company_id": "BENCH", "company_name": "Bench GmbH",
    });
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrent {
        let (core, claims, count) = (Arc::clone(core), claims.clone(), Arc::clone(&count));
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < WARM_UP + window {
                promio_server::idm::signing::sign(&core, &claims, "JWT")
                    .await
                    .map_err(|e| anyhow!("signing: {e:?}"))?;
                if in_window(started.elapsed(), window) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
}

/// Each HTTP round's rate over the fastest candidate's raw rate around it, the mean of the raw
/// rounds just before and after it (`raws` has one more round than `https`, and a rate per
/// candidate in each).
fn round_ratios(raws: &[Vec<f64>], https: &[f64]) -> Vec<f64> {
    https
        .iter()
        .zip(raws.windows(2))
        .map(|(http, around)| {
            let fastest = around[0]
                .iter()
                .zip(&around[1])
                .map(|(before, after)| (before + after) / 2.0)
                .fold(0.0_f64, f64::max);
            http / fastest
        })
        .collect()
}

/// The lowest and the highest value.
fn range(values: &[f64]) -> (f64, f64) {
    values.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    })
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Whether a completion at `elapsed` since the start counts towards a throughput.
fn in_window(elapsed: Duration, window: Duration) -> bool {
    elapsed >= WARM_UP && elapsed <= WARM_UP + window
}

struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    dir: PathBuf,
    http: reqwest::Client,
    /// The binary and its settings, for the command line (`app create`).
    bin: PathBuf,
    env: Vec<(String, String)>,
}

struct Throughput {
    rate: f64,
    /// Every login answered, the warm-up's too (the CPU split counts those).
    logins: u64,
}

struct Flood {
    before_mib: f64,
    peak_mib: f64,
    hashed: usize,
    retry: usize,
    millis: f64,
}

struct Asset {
    name: String,
    bytes: usize,
    encoding: String,
    immutable: bool,
}

impl Server {
    async fn start(bin: &PathBuf, site_root: &str, workers: usize) -> anyhow::Result<Server> {
        let dir = std::env::temp_dir().join(format!("promio-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let env = [
            (
                "DATABASE_URL".to_owned(),
                format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
            ),
            ("DATA_DIR".to_owned(), dir.display().to_string()),
            ("LEPTOS_SITE_ADDR".to_owned(), format!("127.0.0.1:{port}")),
            ("PUBLIC_URL".to_owned(), base.clone()),
            ("HASH_WORKERS".to_owned(), workers.to_string()),
            ("LEPTOS_SITE_ROOT".to_owned(), site_root.to_owned()),
            ("LEPTOS_SITE_PKG_DIR".to_owned(), "pkg".to_owned()),
            ("LEPTOS_OUTPUT_NAME".to_owned(), "promio-connect".to_owned()),
            ("RUST_LOG".to_owned(), "error".to_owned()),
        ];
        seed(&env[0].1).await?;
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("the server has no pid"))?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let server = Server {
            child,
            pid,
            base,
            dir,
            http,
            bin: bin.clone(),
            env: env.to_vec(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = server
                .http
                .get(server.url("/health/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not get ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(server)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `clients` loops of password logins for `window`; the successful logins per second. The
    /// load comes from `loadgen`, which takes as little of the measured cores as it can.
    async fn logins_per_sec(&self, clients: usize, window: Duration) -> anyhow::Result<Throughput> {
        let host = self.base.trim_start_matches("http://").to_owned();
        let addr: std::net::SocketAddr = host.parse()?;
        let requests: Vec<_> = (0..clients)
            .map(|i| {
                loadgen::LoginRequest::new(
                    &host,
                    &[
                        ("company_id", "BENCH"),
                        ("username", &user(i)),
                        ("password", PASSWORD),
                    ],
                )
            })
            .collect();
        let counted =
            tokio::task::spawn_blocking(move || loadgen::logins(addr, &requests, WARM_UP, window))
                .await??;
        Ok(Throughput {
            rate: counted.in_window as f64 / window.as_secs_f64(),
            logins: counted.all,
        })
    }

    /// Codes redeemed per second at the token endpoint by `clients` loops for `window` (each
    /// redemption signs one ID token). The application is registered with the command line, a
    /// user logs in, and the codes are fetched from the authorization endpoint beforehand: enough
    /// for the window at twice `expected` per second (they live a minute).
    async fn codes_redeemed_per_sec(
        &self,
        clients: usize,
        window: Duration,
        expected: f64,
    ) -> anyhow::Result<f64> {
        let (client_id, client_secret) = self.register_app().await?;
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let username = user(USERS - 1);
        let login = browser
            .post(self.url("/api/login"))
            .form(&[
                ("company_id", "BENCH"),
                ("username", username.as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await?;
        anyhow::ensure!(login.status() == 200, "login answered {}", login.status());
        login.bytes().await?;

        let wanted = ((expected * (WARM_UP + window).as_secs_f64() * 2.0) as usize)
            .clamp(200, 20_000)
            .div_ceil(clients);
        let mut fetchers = Vec::new();
        for c in 0..clients {
            let browser = browser.clone();
            let authorize = self.url("/oauth/authorize");
            let client_id = client_id.clone();
            fetchers.push(tokio::spawn(async move {
                let mut codes = Vec::with_capacity(wanted);
                for i in 0..wanted {
                    let verifier = format!("bench-code-verifier-{c:04}-{i:032}");
                    let code = authorize_code(&browser, &authorize, &client_id, &verifier).await?;
                    codes.push((code, verifier));
                }
                anyhow::Ok(codes)
            }));
        }
        let mut codes = Vec::new();
        for fetcher in fetchers {
            codes.extend(fetcher.await??);
        }
        let codes = Arc::new(std::sync::Mutex::new(codes));

        let ok = Arc::new(AtomicU64::new(0));
        let ran_out = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (ok, ran_out, codes) = (Arc::clone(&ok), Arc::clone(&ran_out), Arc::clone(&codes));
            let http = self.http.clone();
            let token = self.url("/oauth/token");
            let (client_id, client_secret) = (client_id.clone(), client_secret.clone());
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < WARM_UP + window {
                    let next = codes.lock().map_err(|_| anyhow!("codes lock"))?.pop();
                    let Some((code, verifier)) = next else {
                        ran_out.store(true, Ordering::Relaxed);
                        break;
                    };
                    let response = http
                        .post(&token)
                        .form(&[
                            ("grant_type", "authorization_code"),
                            ("code", code.as_str()),
                            ("redirect_uri", RP_REDIRECT),
                            ("code_verifier", verifier.as_str()),
                            ("client_id", client_id.as_str()),
                            ("client_secret", client_secret.as_str()),
                        ])
                        .send()
                        .await?;
                    let status = response.status();
                    let body = response.text().await?;
                    anyhow::ensure!(
                        status == 200 && body.contains("\"id_token\""),
                        "the token endpoint answered {status}: {body}"
                    );
                    if in_window(started.elapsed(), window) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        anyhow::ensure!(
            !ran_out.load(Ordering::Relaxed),
            "the {} codes fetched beforehand ran out before the window closed",
            wanted * clients
        );
        Ok(ok.load(Ordering::Relaxed) as f64 / window.as_secs_f64())
    }

    /// Registers a confidential application with `promio-connect app create`; returns its
    /// client_id and client_secret.
    async fn register_app(&self) -> anyhow::Result<(String, String)> {
        let out = tokio::process::Command::new(&self.bin)
            .args([
                "app",
                "create",
                "--name",
                "Bench app",
                "--redirect-uri",
                RP_REDIRECT,
            ])
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .await
            .context("run promio-connect app create")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "app create failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .ok_or_else(|| anyhow!("app create printed no {name}: {stdout}"))
        };
        Ok((field("client_id: ")?, field("client_secret: ")?))
    }

    fn handle(&self) -> ServerHandle {
        ServerHandle {
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }

    /// p50 and p99 (ms) of session checks (`/api/me` with a session) every 20 ms while `clients`
    /// loops of logins keep the hashing workers busy.
    async fn latency_under_load(
        &self,
        clients: usize,
        window: Duration,
    ) -> anyhow::Result<(f64, f64, usize)> {
        let probe = reqwest::Client::builder().cookie_store(true).build()?;
        let response = probe
            .post(self.url("/api/login"))
            .form(&[
                ("company_id", "BENCH"),
                ("username", user(USERS - 1).as_str()),
                ("password", PASSWORD),
            ])
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200, "probe login failed");
        let stop = Arc::new(AtomicBool::new(false));
        let mut load = Vec::new();
        for i in 0..clients {
            let server = self.handle();
            let stop = Arc::clone(&stop);
            load.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(response) = server.login(&user(i)).await {
                        let _ = response.bytes().await;
                    }
                }
            }));
        }
        // Let the load reach the CPU first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut samples = Vec::new();
        let started = Instant::now();
        while started.elapsed() < window && samples.len() < 2000 {
            let t = Instant::now();
            let response = probe.post(self.url("/api/me")).send().await?;
            let body = response.text().await?;
            anyhow::ensure!(
                body.contains(&user(USERS - 1)),
                "the session check lost the session: {body}"
            );
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for task in load {
            let _ = task.await;
        }
        samples.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Ok((pick(0.50), pick(0.99), samples.len()))
    }

    fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        rss_of(&status).ok_or_else(|| anyhow!("no VmRSS for the server"))
    }

    /// `n` login attempts at once, each on its own connection; RSS sampled every 5 ms.
    async fn flood(&self, n: usize) -> anyhow::Result<Flood> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before_mib = self.rss_mib()?;
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = Arc::clone(&done);
            let pid = self.pid;
            tokio::spawn(async move {
                let mut peak: f64 = 0.0;
                let path = format!("/proc/{pid}/status");
                while !done.load(Ordering::Relaxed) {
                    if let Some(mib) = std::fs::read_to_string(&path)
                        .ok()
                        .as_deref()
                        .and_then(rss_of)
                    {
                        peak = peak.max(mib);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                peak
            })
        };
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let base = self.base.clone();
            let username = user(i);
            tasks.push(tokio::spawn(async move {
                // A connection of its own, as 500 separate browsers would have.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()?;
                let response = tokio::time::timeout(
                    Duration::from_secs(60),
                    client
                        .post(format!("{base}/api/login"))
                        .form(&[
                            ("company_id", "BENCH"),
                            ("username", username.as_str()),
                            ("password", PASSWORD),
                        ])
                        .send(),
                )
                .await??;
                anyhow::Ok(response.status().as_u16())
            }));
        }
        let (mut hashed, mut retry) = (0, 0);
        for task in tasks {
            match task.await?? {
                200 => hashed += 1,
                503 => retry += 1,
                other => anyhow::bail!("a flood login answered {other}"),
            }
        }
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        done.store(true, Ordering::Relaxed);
        let peak_mib = sampler.await?.max(self.rss_mib()?);
        Ok(Flood {
            before_mib,
            peak_mib,
            hashed,
            retry,
            millis,
        })
    }

    /// The scripts, WASM and styles the login page loads, fetched as a browser does.
    async fn login_page_assets(&self) -> anyhow::Result<Vec<Asset>> {
        let page = self
            .http
            .get(self.url("/login"))
            .send()
            .await?
            .text()
            .await?;
        let mut paths: Vec<String> = Vec::new();
        for quote in page.split('"').skip(1).step_by(2) {
            let path = quote.trim();
            let wanted = path.starts_with("/pkg/")
                && [".js", ".wasm", ".css"]
                    .iter()
                    .any(|ext| path.ends_with(ext));
            if wanted && !paths.iter().any(|p| p == path) {
                paths.push(path.to_owned());
            }
        }
        anyhow::ensure!(
            paths.iter().any(|p| p.ends_with(".wasm")),
            "the login page names no WASM file: {paths:?}"
        );
        let mut assets = Vec::new();
        // Scripts the page's modules import statically load with it; chunks imported on demand
        // (`import(...)`, the lazily loaded pages) do not.
        let mut next = 0;
        while next < paths.len() {
            let path = paths[next].clone();
            next += 1;
            if path.ends_with(".js") {
                let source = self
                    .http
                    .get(self.url(&path))
                    .header("accept-encoding", "identity")
                    .send()
                    .await?
                    .text()
                    .await?;
                let dir = &path[..path.rfind('/').unwrap_or(0)];
                for import in static_imports(&source) {
                    let import = format!("{dir}/{}", import.trim_start_matches("./"));
                    if !paths.contains(&import) {
                        paths.push(import);
                    }
                }
            }
            let response = self
                .http
                .get(self.url(&path))
                .header("accept-encoding", "br, gzip")
                .send()
                .await?;
            anyhow::ensure!(response.status() == 200, "{path}: {}", response.status());
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let encoding = header("content-encoding");
            let cache = header("cache-control");
            let immutable = cache.contains("immutable") || cache.contains("max-age=31536000");
            let bytes = response.bytes().await?.len();
            assets.push(Asset {
                name: path.rsplit('/').next().unwrap_or_default().to_owned(),
                bytes,
                encoding: if encoding.is_empty() {
                    "identity".into()
                } else {
                    encoding
                },
                immutable,
            });
        }
        Ok(assets)
    }
}

/// The relative modules a script imports statically (`import … from "./x.js"`, `import "./x.js"`),
/// minified or not; dynamic `import("./x.js")` calls are left out.
fn static_imports(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in source.match_indices("import") {
        let rest = &source[at + "import".len()..];
        if rest.trim_start().starts_with('(') {
            continue;
        }
        // The statement ends at the first `;` or line end; its module is the last quoted text.
        let end = rest.find([';', '\n']).unwrap_or(rest.len());
        let statement = &rest[..end];
        let quoted = statement
            .rsplit(['"', '\''])
            .nth(1)
            .filter(|q| q.starts_with("./") && q.ends_with(".js"));
        if let Some(module) = quoted {
            found.push(module.to_owned());
        }
    }
    found
}

/// CPU time (clock ticks) spent while logins ran over HTTP: the server's hashing threads, the rest
/// of the server, and this load generator.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct CpuSplit {
    hashing: u64,
    server_rest: u64,
    load_generator: u64,
    wall: Duration,
    /// The logins answered meanwhile.
    logins: u64,
}

impl CpuSplit {
    fn now(server_pid: u32) -> anyhow::Result<CpuSplit> {
        let mut split = CpuSplit::default();
        for (name, ticks) in thread_ticks(&format!("/proc/{server_pid}/task"))? {
            if name.starts_with("argon2-") {
                split.hashing += ticks;
            } else {
                split.server_rest += ticks;
            }
        }
        // The process's own line: it keeps the time of threads that have ended (the load
        // generator's end with each round).
        split.load_generator = parse_thread_stat(&std::fs::read_to_string("/proc/self/stat")?)
            .map(|(_, ticks)| ticks)
            .ok_or_else(|| anyhow!("cannot read /proc/self/stat"))?;
        split.wall = started_at().elapsed();
        Ok(split)
    }

    fn minus(&self, earlier: &CpuSplit) -> CpuSplit {
        CpuSplit {
            hashing: self.hashing.saturating_sub(earlier.hashing),
            server_rest: self.server_rest.saturating_sub(earlier.server_rest),
            load_generator: self.load_generator.saturating_sub(earlier.load_generator),
            wall: self.wall.saturating_sub(earlier.wall),
            logins: self.logins.saturating_sub(earlier.logins),
        }
    }

    fn add(&mut self, other: &CpuSplit) {
        self.hashing += other.hashing;
        self.server_rest += other.server_rest;
        self.load_generator += other.load_generator;
        self.wall += other.wall;
        self.logins += other.logins;
    }

    /// Shares of the machine's CPU time (all `cores`) over the measured wall time.
    fn describe(&self, cores: usize) -> String {
        // Linux reports thread times in USER_HZ, which is 100 on every architecture it runs on.
        let capacity = self.wall.as_secs_f64() * 100.0 * cores as f64;
        let share = |ticks: u64| 100.0 * ticks as f64 / capacity.max(1.0);
        // Milliseconds of CPU per login answered: steadier than the shares when the machine's
        // speed changes, and what a change to the login path moves.
        let per_login = |ticks: u64| 10.0 * ticks as f64 / (self.logins.max(1) as f64);
        format!(
            "CPU while logins ran over HTTP ({cores} cores, {:.1} s): hashing threads {:.0} %, \
             rest of the server {:.0} %, load generator {:.0} %; per login ({} logins) hashing \
             {:.2} ms, rest of the server {:.2} ms, load generator {:.2} ms",
            self.wall.as_secs_f64(),
            share(self.hashing),
            share(self.server_rest),
            share(self.load_generator),
            self.logins,
            per_login(self.hashing),
            per_login(self.server_rest),
            per_login(self.load_generator)
        )
    }
}

fn started_at() -> Instant {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Each thread's name and user + system time (clock ticks) under a /proc/PID/task folder.
fn thread_ticks(task_dir: &str) -> anyhow::Result<Vec<(String, u64)>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(task_dir)? {
        let Ok(stat) = std::fs::read_to_string(entry?.path().join("stat")) else {
            continue; // the thread ended
        };
        if let Some(thread) = parse_thread_stat(&stat) {
            threads.push(thread);
        }
    }
    Ok(threads)
}

/// A thread's name and utime + stime from a /proc/…/stat line (`pid (name) state … utime stime`).
fn parse_thread_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3 of the line, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// The resident set (MiB) in a /proc/PID/status text.
fn rss_of(status: &str) -> Option<f64> {
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib / 1024.0)
}

#[derive(Clone)]
struct ServerHandle {
    base: String,
    http: reqwest::Client,
}

impl ServerHandle {
    async fn login(&self, username: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self
            .http
            .post(format!("{}/api/login", self.base))
            .form(&[
                ("company_id", "BENCH"),
                ("username", username),
                ("password", PASSWORD),
            ])
            .send()
            .await?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuSplit, median, parse_thread_stat, round_ratios, static_imports};
    use std::time::Duration;

    #[test]
    fn each_http_round_is_compared_with_the_fastest_raw_rate_around_it() {
        // Two candidates: the second is the faster around the first HTTP round (120 against
        // 110), the first around the second (100 against 95).
        let raws = [vec![100.0, 110.0], vec![120.0, 130.0], vec![80.0, 60.0]];
        assert_eq!(
            round_ratios(&raws, &[99.0, 90.0]),
            [99.0 / 120.0, 90.0 / 100.0]
        );
    }

    #[test]
    fn thread_times_are_read_from_a_stat_line_even_with_odd_names() {
        let stat = "4242 (argon2-1 (x)) R 1 4242 4242 0 -1 4194368 90 0 0 0 1234 56 0 0 20 0 \
                    1 0 100 1000 10 18446744073709551615";
        assert_eq!(
            parse_thread_stat(stat),
            Some(("argon2-1 (x)".to_owned(), 1234 + 56))
        );
        assert_eq!(parse_thread_stat("4242 (cut"), None);
    }

    #[test]
    fn cpu_is_told_per_login_in_milliseconds() {
        // 10 s of wall time on 2 cores; ticks are hundredths of a second.
        let split = CpuSplit {
            hashing: 1600,
            server_rest: 200,
            load_generator: 40,
            wall: Duration::from_secs(10),
            logins: 2000,
        };
        let line = split.describe(2);
        assert!(line.contains("hashing threads 80 %"), "{line}");
        assert!(line.contains("(2000 logins)"), "{line}");
        assert!(
            line.contains("hashing 8.00 ms, rest of the server 1.00 ms, load generator 0.20 ms"),
            "{line}"
        );
    }

    #[test]
    fn the_median_ignores_one_outlier() {
        assert_eq!(median(vec![0.91, 0.5, 0.92, 0.93, 0.9]), 0.91);
        assert_eq!(median(vec![1.0, 3.0]), 2.0);
    }

    #[test]
    fn static_imports_are_found_and_dynamic_ones_left_out() {
        let source = "import*as e from\"./__wasm_split.Ab.js\";import './side.js';\n\
                      const x = import(\"./lazy.js\"); new URL('x.wasm', import.meta.url);";
        assert_eq!(
            static_imports(source),
            ["./__wasm_split.Ab.js", "./side.js"]
        );
    }
}
