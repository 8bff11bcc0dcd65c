//! The `promio-connect` command line: serve (the default), migrate, and the client and user
//! commands that operators use for bootstrap and testers for fixtures. A refused value is named
//! with its flag, and the process exits non-zero.

use crate::domain::Role;
use crate::domain::clock::SystemClock;
use crate::idm::provisioning::{self, Actor, ClientSettings, UserInput};
use crate::infra::config::Settings;
use crate::infra::error::ServiceError;
use crate::store::users::UserStatus;
use crate::{Core, serve};
use clap::{Args, Parser, Subcommand};
use promio_app::api::Field;
use promio_app::i18n::Lang;
use secrecy::SecretString;
use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "promio-connect",
    version,
    about = "promio.connect: login and accounts for B2B clients"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply pending migrations, then serve HTTP (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage clients (companies).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage applications that log people in through promio.connect (OpenID Connect).
    #[command(subcommand)]
    App(AppCommand),
    /// The keys that sign ID tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run one pass of the clean-up that every serving instance runs (expired sessions and links,
    /// old counters, mails and audit rows, users past their client's retention).
    Housekeeping,
    /// Check the settings: print them as they take effect (secrets masked); exit 1 on a bad one.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a consistent copy of the SQLite database to FILE, also while the server runs.
    Backup {
        /// Where the copy goes; it must not exist yet.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Make the next signing key: published at once, signing an hour later (applications
    /// fetch it first); the current key stays published until its tokens expired.
    Rotate,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the effective settings with secrets masked; exit 1 when one is bad.
    Check,
}

#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// Create a demo client and admin with a random password on first start, and print how to log in.
    #[arg(long)]
    demo: bool,
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Create a client.
    Create {
        #[arg(long)]
        company_id: String,
        #[arg(long)]
        name: String,
    },
    /// Change a client's settings.
    Set {
        #[arg(long)]
        company_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Validity of registration links, whole hours from 1 to 720.
        #[arg(long, value_name = "N")]
        registration_link_hours: Option<i64>,
        /// Validity of password reset links, whole hours from 1 to 720.
        #[arg(long, value_name = "N")]
        reset_link_hours: Option<i64>,
        #[arg(long = "require-2fa", value_name = "true|false")]
        require_2fa: Option<bool>,
        /// Months after which deactivated users are deleted, 1 to 24 (6 by default).
        #[arg(long, value_name = "N")]
        deletion_months: Option<i64>,
        /// Months without a login after which users are deactivated, 3 to 36, or never.
        #[arg(long, value_name = "N|never")]
        inactivity_months: Option<String>,
        /// Whether the client's users may use passkeys (on by default).
        #[arg(long, value_name = "true|false")]
        passkeys: Option<bool>,
    },
    /// Connect a client to its identity provider (OpenID Connect), or turn SSO off with --off.
    /// The issuer's discovery document is fetched and checked first.
    Sso {
        #[arg(long)]
        company_id: String,
        /// The issuer URL (https; its /.well-known/openid-configuration must name this issuer).
        #[arg(long, required_unless_present = "off")]
        issuer: Option<String>,
        #[arg(long, required_unless_present = "off")]
        client_id: Option<String>,
        /// May be left out when the client has one stored already. Prefer --client-secret-stdin:
        /// a secret on the command line is visible to other users of the machine.
        #[arg(long, conflicts_with = "client_secret_stdin")]
        client_secret: Option<String>,
        /// Read the client secret from standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        /// Email domains routed to this identity provider, separated by commas.
        #[arg(long, required_unless_present = "off", value_name = "DOMAIN[,…]")]
        domains: Option<String>,
        /// The claim that holds the email address (ADFS often sends it as upn).
        #[arg(long, default_value = "email")]
        email_claim: String,
        /// Make the user (role user) on the first SSO login of someone from the client's domains.
        /// `true` or `false`, as `--require-2fa` takes it; the flag alone means `true`.
        #[arg(
            long = "create-users",
            value_name = "true|false",
            action = clap::ArgAction::Set,
            num_args = 0..=1,
            default_value = "false",
            default_missing_value = "true"
        )]
        create_users: bool,
        /// Turn single sign-on off (the users can then be sent password links).
        #[arg(long, conflicts_with_all = ["issuer", "client_id", "client_secret", "domains"])]
        off: bool,
    },
    /// List clients (company ID, name, status, SSO), optionally those matching --search.
    List {
        #[arg(long, default_value = "")]
        search: String,
    },
    /// Show one client's settings.
    Show {
        #[arg(long)]
        company_id: String,
    },
}

#[derive(Subcommand, Debug)]
enum AppCommand {
    /// Register an application; prints its client_id and, unless --public, its client_secret
    /// (shown this once: only its hash is stored).
    Create {
        #[arg(long)]
        name: String,
        /// Where a login returns to, matched exactly: https, or http on localhost, 127.0.0.1 or
        /// [::1]. Repeat for more (at most 10).
        #[arg(long, value_name = "URI", required = true)]
        redirect_uri: Vec<String>,
        /// Where a logout may return to (exact match, same rules). Repeat for more.
        #[arg(long, value_name = "URI")]
        post_logout_redirect_uri: Vec<String>,
        /// Where back-channel logout tokens are posted (same rules).
        #[arg(long, value_name = "URI")]
        backchannel_logout_uri: Option<String>,
        /// Only this client's users may log in to the application (default: any client's).
        #[arg(long)]
        company_id: Option<String>,
        /// A public client (a browser or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// `false`: a confidential application that cannot send PKCE may log people in without it
        /// (default `true`; a public one always uses PKCE).
        #[arg(
            long,
            value_name = "true|false",
            action = clap::ArgAction::Set,
            default_value = "true",
            conflicts_with = "public"
        )]
        pkce_required: bool,
    },
    /// Change an application's registration: whether its logins must use PKCE (`false` only for
    /// a confidential application).
    Set {
        #[arg(long)]
        client_id: String,
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set, required = true)]
        pkce_required: bool,
    },
    /// List applications (client_id, name, public/confidential, company, redirect URIs).
    List,
    /// Delete an application and everything issued to it.
    Delete {
        #[arg(long)]
        client_id: String,
    },
    /// Give a confidential application a new secret (the old one stops working at once).
    RotateSecret {
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user. Without --password-stdin the user is Invited and gets the registration mail.
    Create {
        #[arg(long)]
        company_id: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        #[arg(long, default_value = "user", value_parser = ["user", "admin", "operator"])]
        role: String,
        /// The user's language for mails: de or en.
        #[arg(long, default_value = "en", value_parser = ["de", "en"])]
        language: String,
        /// Read the password from standard input (the user is Active at once).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List a client's users (user name, status, role, email, name, 2FA, passkeys).
    List {
        #[arg(long)]
        company_id: String,
        /// Part of a user name, email address or name.
        #[arg(long, default_value = "")]
        search: String,
        #[arg(long, value_parser = ["invited", "active", "deactivated"])]
        status: Option<String>,
    },
    /// Change a user: role, status (deactivating ends their sessions), email, names.
    Set {
        #[arg(long)]
        company_id: String,
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["user", "admin", "operator"])]
        role: Option<String>,
        #[arg(long, value_parser = ["active", "deactivated"])]
        status: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
    },
    /// Delete a user at once: the account and everything of it but the audit log, where a
    /// pseudonym takes the user's place. The user name is free again.
    Delete {
        #[arg(long)]
        company_id: String,
        #[arg(long)]
        username: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let checking = matches!(cli.command, Some(Command::Config(ConfigCommand::Check)));
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("promio-connect: {e}");
            return if checking {
                ExitCode::FAILURE
            } else {
                ExitCode::from(2)
            };
        }
    };
    if checking {
        // Nothing is opened or created: only the settings are read and shown.
        print!("{}", settings.describe());
        println!("settings are valid");
        return ExitCode::SUCCESS;
    }
    init_tracing(settings.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.async_workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("promio-connect: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("promio-connect: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let core = Core::start(settings, Arc::new(SystemClock)).await?;
    match command {
        Command::Serve(args) => run_server(core, args).await,
        Command::Migrate => {
            println!("migrations applied");
            Ok(())
        }
        Command::Client(cmd) => client_command(&core, cmd).await,
        Command::User(cmd) => user_command(&core, cmd).await,
        Command::App(cmd) => app_command(&core, cmd).await,
        Command::Keys(KeysCommand::Rotate) => {
            let (kid, signs_from) = crate::idm::signing::rotate(&core).await.map_err(explain)?;
            let at = jiff::Timestamp::from_second(signs_from)?;
            println!("kid: {kid}");
            println!("signs from: {at}");
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => Ok(()),
        Command::Housekeeping => {
            let holder = crate::store::new_id();
            match crate::idm::housekeeping::run_once(&core, &holder)
                .await
                .map_err(explain)?
            {
                Some(report) => {
                    for (table, n) in &report.deleted {
                        println!("{table}: {n} deleted");
                    }
                    if report.mail_files > 0 {
                        println!("outbox folder: {} mail files deleted", report.mail_files);
                    }
                    let l = report.lifecycle;
                    println!(
                        "users deactivated for inactivity: {}; notices mailed: {}",
                        l.users_deactivated,
                        l.deletion_notices + l.inactivity_notices
                    );
                    // The notices go out now; what fails stays queued for the server's worker.
                    let _ = core.mailer.deliver_due().await;
                    Ok(())
                }
                None => anyhow::bail!(
                    "another instance is running housekeeping now; try again in a few minutes"
                ),
            }
        }
        Command::Backup { file } => {
            crate::store::backup::write(&core.store, &file).await?;
            println!("backup written to {}", file.display());
            Ok(())
        }
    }
}

async fn run_server(core: Core, args: ServeArgs) -> anyhow::Result<()> {
    bootstrap_operator(&core).await?;
    if args.demo {
        demo(&core).await?;
    }
    let addr = core.settings.site_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (LEPTOS_SITE_ADDR): {e}"))?;
    tracing::info!(%addr, public_url = %core.settings.public_url, "serving");
    println!(
        "promio.connect listening on http://{addr} (public URL {})",
        core.settings.public_url
    );
    let worker = core.mailer.clone().spawn_worker();
    let core = Arc::new(core);
    let housekeeping = crate::idm::housekeeping::spawn(Arc::clone(&core));
    let logout_sweeper = crate::edge::oauth::logout::spawn_sweeper(Arc::clone(&core));
    serve(Arc::clone(&core), listener, shutdown_signal()).await?;
    // Work that answered requests left behind them (a reset mail being queued) finishes first.
    if tokio::time::timeout(std::time::Duration::from_secs(10), core.background.idle())
        .await
        .is_err()
    {
        tracing::warn!("background work still running at shutdown");
    }
    worker.abort();
    housekeeping.abort();
    logout_sweeper.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// The first operator from `BOOTSTRAP_OPERATOR_*`, when there is none yet; refused (with a
/// warning, the start goes on) once any operator exists, so the variables cannot make a second
/// one or take over an account.
pub async fn bootstrap_operator(core: &Core) -> anyhow::Result<()> {
    let Some(first) = &core.settings.bootstrap_operator else {
        return Ok(());
    };
    if core.store.has_operator().await? {
        tracing::warn!("BOOTSTRAP_OPERATOR_* ignored: an operator exists already");
        println!("BOOTSTRAP_OPERATOR_* ignored: an operator exists already (remove the variables)");
        return Ok(());
    }
    let rename = |message: String| {
        for (flag, variable) in [
            ("--username", "BOOTSTRAP_OPERATOR_USERNAME"),
            ("--email", "BOOTSTRAP_OPERATOR_EMAIL"),
            ("--password-stdin", "BOOTSTRAP_OPERATOR_PASSWORD"),
        ] {
            if let Some(rest) = message.strip_prefix(flag) {
                return anyhow::anyhow!("{variable}{rest}");
            }
        }
        anyhow::anyhow!("BOOTSTRAP_OPERATOR_*: {message}")
    };
    let user = provisioning::create_user(
        core,
        Actor::default(),
        UserInput {
            company_id: core.settings.platform_company_id.to_string(),
            username: first.username.clone(),
            email: first.email.clone(),
            first_name: String::new(),
            last_name: String::new(),
            role: Role::Operator,
            language: "en".into(),
            password: Some(first.password.clone()),
        },
    )
    .await
    .map_err(|e| rename(explain(e).to_string()))?;
    tracing::info!(username = %user.username, "first operator created from BOOTSTRAP_OPERATOR_*");
    println!(
        "first operator {} created in {} (from BOOTSTRAP_OPERATOR_*; remove the variables now)",
        user.username, core.settings.platform_company_id
    );
    Ok(())
}

/// The demo client for `make run`: made once, with a random password printed once.
async fn demo(core: &Core) -> anyhow::Result<()> {
    let company = "demo";
    let exists = core
        .store
        .client_by_company_id(
            &crate::domain::CompanyId::parse(company).map_err(|e| anyhow::anyhow!("{e}"))?,
        )
        .await?
        .is_some();
    if exists {
        println!(
            "Demo client exists: log in with company ID {company}, user name demo and the password printed at its first start."
        );
        return Ok(());
    }
    provisioning::create_client(core, Actor::default(), company, "Demo GmbH")
        .await
        .map_err(explain)?;
    let password = random_password();
    provisioning::create_user(
        core,
        Actor::default(),
        UserInput {
            company_id: company.into(),
            username: "demo".into(),
            email: "demo@demo.example".into(),
            first_name: "Demo".into(),
            last_name: "Admin".into(),
            role: Role::Admin,
            language: "en".into(),
            password: Some(SecretString::from(password.clone())),
        },
    )
    .await
    .map_err(explain)?;
    println!();
    println!("  Demo login (printed once; keep it):");
    println!("    Company ID: {company}");
    println!("    User name:  demo");
    println!("    Password:   {password}");
    println!();
    Ok(())
}

/// 20 characters from an unambiguous alphabet: about 113 bits.
fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

async fn client_command(core: &Core, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Create { company_id, name } => {
            let client = provisioning::create_client(core, Actor::default(), &company_id, &name)
                .await
                .map_err(explain)?;
            println!("client {} created ({})", client.company_id, client.name);
        }
        ClientCommand::Set {
            company_id,
            name,
            registration_link_hours,
            reset_link_hours,
            require_2fa,
            deletion_months,
            inactivity_months,
            passkeys,
        } => {
            let inactivity_months = match inactivity_months.as_deref().map(str::trim) {
                None => None,
                Some("never") | Some("") => Some(None),
                Some(n) => Some(Some(n.parse::<i64>().map_err(|_| {
                    anyhow::anyhow!(
                        "--inactivity-months: a number of months from 3 to 36, or never"
                    )
                })?)),
            };
            let settings = ClientSettings {
                name,
                registration_link_hours,
                reset_link_hours,
                require_2fa,
                deletion_months,
                inactivity_months,
                passkeys,
            };
            let client = provisioning::update_client(core, Actor::default(), &company_id, settings)
                .await
                .map_err(explain)?;
            let inactivity = client
                .inactivity_months
                .map(|m| format!("after {m} months"))
                .unwrap_or_else(|| "never".to_owned());
            println!(
                "client {}: registration link {} h, reset link {} h, 2FA required: {}, deactivated users deleted after {} months, inactive users deactivated: {inactivity}",
                client.company_id,
                client.registration_link_hours,
                client.reset_link_hours,
                client.requires_2fa(),
                client.deletion_months,
            );
        }
        ClientCommand::Sso {
            company_id,
            issuer,
            client_id,
            client_secret,
            client_secret_stdin,
            domains,
            email_claim,
            create_users,
            off,
        } => {
            let client_secret = if client_secret_stdin {
                Some(read_secret("--client-secret-stdin")?)
            } else {
                client_secret
            };
            let input = if off {
                crate::idm::sso::SsoInput::default()
            } else {
                crate::idm::sso::SsoInput {
                    issuer: issuer.unwrap_or_default(),
                    client_id: client_id.unwrap_or_default(),
                    client_secret: client_secret.unwrap_or_default(),
                    domains: domains.unwrap_or_default(),
                    email_claim,
                    jit: create_users,
                }
            };
            let client = crate::idm::sso::configure(core, Actor::default(), &company_id, input)
                .await
                .map_err(explain)?;
            match &client.sso_issuer {
                Some(issuer) => println!(
                    "client {}: single sign-on through {issuer} for {}; redirect URI to register at the identity provider: {}",
                    client.company_id,
                    core.store.sso_domains(&client.id).await?.join(", "),
                    core.settings.public_url.join("sso/callback")?,
                ),
                None => println!("client {}: single sign-on off", client.company_id),
            }
        }
        ClientCommand::List { search } => {
            let mut page = 0;
            println!("company_id\tname\tstatus\tsso\tusers");
            loop {
                let (clients, _) = core.store.list_clients(&search, 100, page * 100).await?;
                if clients.is_empty() {
                    break;
                }
                for c in &clients {
                    let users = core.store.count_users(&c.id).await?;
                    println!(
                        "{}\t{}\t{}\t{}\t{users}",
                        c.company_id,
                        c.name,
                        if c.is_active() {
                            "active"
                        } else {
                            "deactivated"
                        },
                        c.sso_issuer.as_deref().unwrap_or("-"),
                    );
                }
                page += 1;
            }
        }
        ClientCommand::Show { company_id } => {
            let c = provisioning::client(core, &company_id)
                .await
                .map_err(explain)?;
            let users = core.store.count_users(&c.id).await?;
            let domains = core.store.sso_domains(&c.id).await?;
            println!("company ID: {}", c.company_id);
            println!("name: {}", c.name);
            println!(
                "status: {}",
                if c.is_active() {
                    "active"
                } else {
                    "deactivated"
                }
            );
            println!("users: {users}");
            println!("registration link: {} h", c.registration_link_hours);
            println!("reset link: {} h", c.reset_link_hours);
            println!("2FA required: {}", c.requires_2fa());
            println!("passkeys: {}", c.allows_passkeys() && !c.uses_sso());
            println!(
                "deactivated users deleted after: {} months",
                c.deletion_months
            );
            println!(
                "inactive users deactivated after: {}",
                c.inactivity_months
                    .map(|m| format!("{m} months"))
                    .unwrap_or_else(|| "never".to_owned())
            );
            match &c.sso_issuer {
                Some(issuer) => {
                    println!("SSO issuer: {issuer}");
                    println!(
                        "SSO client ID: {}",
                        c.sso_client_id.as_deref().unwrap_or("")
                    );
                    println!(
                        "SSO client secret: {}",
                        if c.sso_client_secret.is_some() {
                            "set"
                        } else {
                            "not set"
                        }
                    );
                    println!("SSO email domains: {}", domains.join(", "));
                    println!("SSO creates users: {}", c.sso_creates_users());
                }
                None => println!("SSO: off"),
            }
        }
    }
    Ok(())
}

async fn app_command(core: &Core, cmd: AppCommand) -> anyhow::Result<()> {
    use crate::idm::apps;
    use secrecy::ExposeSecret;
    match cmd {
        AppCommand::Create {
            name,
            redirect_uri,
            post_logout_redirect_uri,
            backchannel_logout_uri,
            company_id,
            public,
            pkce_required,
        } => {
            let new = apps::NewApp {
                name,
                redirect_uris: redirect_uri,
                post_logout_redirect_uris: post_logout_redirect_uri,
                backchannel_logout_uri,
                company_id,
                public,
                pkce_optional: !pkce_required,
            };
            // The refusal names the option (`--redirect-uri: http is only allowed on …`).
            let created = apps::create(core, "", new)
                .await
                .map_err(|refusal| anyhow::anyhow!("{refusal}"))?;
            println!("client_id: {}", created.client_id);
            if let Some(secret) = &created.client_secret {
                println!("client_secret: {}", secret.expose_secret());
                eprintln!("the client secret is shown this once: store it now");
            }
        }
        AppCommand::Set {
            client_id,
            pkce_required,
        } => {
            if !apps::set_pkce_required(core, "", &client_id, pkce_required)
                .await
                .map_err(explain)?
            {
                match apps::find(core, &client_id).await.map_err(explain)? {
                    // A public application uses PKCE: asking for that changes nothing.
                    Some(app) if app.public && pkce_required => {}
                    Some(_) => {
                        anyhow::bail!("--pkce-required: a public application always uses PKCE")
                    }
                    None => anyhow::bail!("--client-id: no such application"),
                }
            }
            let rule = if pkce_required {
                "required"
            } else {
                "optional"
            };
            println!("application {client_id}: PKCE {rule}");
        }
        AppCommand::List => {
            println!("client_id\tname\ttype\tcompany\tredirect_uris");
            for app in apps::list(core).await.map_err(explain)? {
                let kind = match (app.public, app.pkce_required) {
                    (true, _) => "public",
                    (false, true) => "confidential",
                    (false, false) => "confidential (PKCE optional)",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    app.client_id,
                    app.name,
                    kind,
                    app.company_id.as_deref().unwrap_or("-"),
                    app.redirect_uris.join(" "),
                );
            }
        }
        AppCommand::Delete { client_id } => {
            if !apps::delete(core, "", &client_id).await.map_err(explain)? {
                anyhow::bail!("--client-id: no such application");
            }
            println!("application {client_id} deleted");
        }
        AppCommand::RotateSecret { client_id } => {
            match apps::rotate_secret(core, "", &client_id)
                .await
                .map_err(explain)?
            {
                Some(secret) => {
                    println!("client_secret: {}", secret.expose_secret());
                    eprintln!("the client secret is shown this once: store it now");
                }
                None => match apps::find(core, &client_id).await.map_err(explain)? {
                    Some(_) => anyhow::bail!("--client-id: a public application has no secret"),
                    None => anyhow::bail!("--client-id: no such application"),
                },
            }
        }
    }
    Ok(())
}

/// One line from standard input (without its trailing newline), for secrets.
fn read_secret(flag: &str) -> anyhow::Result<String> {
    let mut raw = String::new();
    std::io::stdin()
        .read_to_string(&mut raw)
        .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    let raw = raw
        .strip_suffix('\n')
        .map(|r| r.strip_suffix('\r').unwrap_or(r))
        .unwrap_or(&raw)
        .to_owned();
    anyhow::ensure!(!raw.is_empty(), "{flag}: standard input was empty");
    Ok(raw)
}

async fn user_command(core: &Core, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Delete {
            company_id,
            username,
        } => delete_user(core, &company_id, &username).await,
        UserCommand::List {
            company_id,
            search,
            status,
        } => {
            let client = provisioning::client(core, &company_id)
                .await
                .map_err(explain)?;
            let filter_status = status.as_deref().and_then(UserStatus::from_filter);
            println!("username\tstatus\trole\temail\tname\t2fa\tpasskeys");
            let mut offset = 0;
            loop {
                let filter = crate::store::users::UserFilter {
                    search: search.clone(),
                    status: filter_status,
                    limit: 500,
                    offset,
                };
                let (users, _) = core.store.list_users(&client.id, &filter).await?;
                if users.is_empty() {
                    break;
                }
                for u in &users {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        u.username,
                        u.status().as_str(),
                        u.role().as_str(),
                        u.email,
                        format!("{} {}", u.first_name, u.last_name).trim(),
                        if u.has_totp() { "on" } else { "off" },
                        u.passkeys
                    );
                }
                offset += 500;
            }
            Ok(())
        }
        UserCommand::Set {
            company_id,
            username,
            role,
            status,
            email,
            first_name,
            last_name,
        } => {
            let changes = provisioning::UserChanges {
                role: role.as_deref().and_then(Role::parse),
                active: status.as_deref().map(|s| s == "active"),
                email,
                first_name,
                last_name,
            };
            let (client, user) = client_user(core, &company_id, &username).await?;
            let user = provisioning::change_user(core, &client, &user, changes)
                .await
                .map_err(explain)?;
            println!(
                "user {}: {} {}, {}, {}",
                user.username,
                user.status().as_str(),
                user.role().as_str(),
                user.email,
                format!("{} {}", user.first_name, user.last_name).trim()
            );
            Ok(())
        }
        UserCommand::Create {
            company_id,
            username,
            email,
            first_name,
            last_name,
            role,
            language,
            password_stdin,
        } => {
            let input = UserInput {
                company_id,
                username,
                email,
                first_name,
                last_name,
                role: Role::parse(&role)
                    .ok_or_else(|| anyhow::anyhow!("--role: must be user, admin or operator"))?,
                language,
                password: None,
            };
            create_user(core, input, password_stdin).await
        }
    }
}

/// A user of a client, or an error that names the flag.
async fn client_user(
    core: &Core,
    company_id: &str,
    username: &str,
) -> anyhow::Result<(
    crate::store::clients::ClientRow,
    crate::store::users::UserRow,
)> {
    let client = provisioning::client(core, company_id)
        .await
        .map_err(explain)?;
    let name = crate::domain::UserName::parse(username).map_err(|e| explain(e.into()))?;
    let user = core
        .store
        .user_by_name(&client.id, &name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--username: no such user in {}", client.company_id))?;
    Ok((client, user))
}

/// `user delete`: any client's user, operators included (the command line is the operators').
async fn delete_user(core: &Core, company_id: &str, username: &str) -> anyhow::Result<()> {
    let (client, user) = client_user(core, company_id, username).await?;
    crate::idm::lifecycle::delete_user(
        core,
        &client,
        &user,
        crate::idm::lifecycle::DeletedBy::CommandLine,
    )
    .await
    .map_err(explain)?;
    println!(
        "user {} of {} deleted ({} in the audit log)",
        user.username,
        client.company_id,
        crate::idm::lifecycle::pseudonym(core, &user.id)
    );
    Ok(())
}

async fn create_user(core: &Core, input: UserInput, password_stdin: bool) -> anyhow::Result<()> {
    let password = if password_stdin {
        let mut raw = String::new();
        std::io::stdin()
            .read_to_string(&mut raw)
            .map_err(|e| anyhow::anyhow!("--password-stdin: {e}"))?;
        // One trailing newline is what `echo` and here-strings add; it is not part of the password.
        let raw = raw
            .strip_suffix('\n')
            .map(|r| r.strip_suffix('\r').unwrap_or(r))
            .unwrap_or(&raw)
            .to_owned();
        Some(SecretString::from(raw))
    } else {
        None
    };
    let user = provisioning::create_user(core, Actor::default(), UserInput { password, ..input })
        .await
        .map_err(explain)?;
    println!("user {} created ({})", user.username, user.status.as_str());
    if user.status == UserStatus::Invited {
        // Send the registration mail now; if that fails, the server's outbox worker retries it.
        match core.mailer.deliver_due().await {
            Ok(d) if d.failed == 0 => println!("registration mail sent to {}", user.email),
            _ => println!(
                "registration mail queued for {}; the server will retry",
                user.email
            ),
        }
    }
    Ok(())
}

/// Turns a service error into a message that names the command-line flag.
fn explain(err: ServiceError) -> anyhow::Error {
    match err {
        ServiceError::Invalid(invalid) => {
            let flag = match invalid.field {
                Field::CompanyId => "--company-id",
                Field::UserName => "--username",
                Field::Email => "--email",
                Field::FirstName => "--first-name",
                Field::LastName => "--last-name",
                Field::Name => "--name",
                Field::Role => "--role",
                Field::RegistrationLinkHours => "--registration-link-hours",
                Field::ResetLinkHours => "--reset-link-hours",
                Field::Password | Field::NewPassword | Field::RepeatPassword => "--password-stdin",
                Field::SsoIssuer => "--issuer",
                Field::SsoClientId => "--client-id",
                Field::SsoClientSecret => "--client-secret",
                Field::SsoDomains => "--domains",
                Field::SsoEmailClaim => "--email-claim",
                Field::DeletionMonths => "--deletion-months",
                Field::InactivityMonths => "--inactivity-months",
                Field::RedirectUris => "--redirect-uri",
                Field::PostLogoutRedirectUris => "--post-logout-redirect-uri",
                Field::BackchannelLogoutUri => "--backchannel-logout-uri",
                Field::PkceOptional => "--pkce-required",
            };
            let message = promio_app::api::ApiError::from(invalid).message(Lang::En);
            anyhow::anyhow!("{flag}: {message}")
        }
        ServiceError::NotFound => anyhow::anyhow!("--company-id: no such client"),
        ServiceError::SsoProvider(detail) => anyhow::anyhow!("--issuer: {detail}"),
        ServiceError::Forbidden => {
            anyhow::anyhow!("--company-id: the platform client cannot use single sign-on")
        }
        other => anyhow::anyhow!(
            "{}",
            promio_app::api::ApiError::from(other).message(Lang::En)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default() {
        let cli = Cli::try_parse_from(["promio-connect"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["promio-connect", "--demo"]).unwrap();
        assert!(cli.serve.demo);
    }

    #[test]
    fn keys_rotate_is_a_command() {
        let cli = Cli::try_parse_from(["promio-connect", "keys", "rotate"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys(KeysCommand::Rotate))
        ));
    }

    #[test]
    fn require_2fa_takes_true_or_false() {
        let ok = Cli::try_parse_from([
            "promio-connect",
            "client",
            "set",
            "--company-id",
            "ACME",
            "--require-2fa",
            "true",
        ]);
        assert!(ok.is_ok());
        let bad = Cli::try_parse_from([
            "promio-connect",
            "client",
            "set",
            "--company-id",
            "ACME",
            "--require-2fa",
            "yes",
        ]);
        assert!(bad.is_err());
    }

    #[test]
    fn pkce_required_takes_true_or_false_and_not_beside_public() {
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "promio-connect",
                "app",
                "create",
                "--name",
                "Wiki",
                "--redirect-uri",
                "https://wiki.example/cb",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Some(Command::App(AppCommand::Create { pkce_required, .. })) => pkce_required,
                other => panic!("not parsed as app create: {other:?}"),
            })
        };
        assert!(parse(&[]).unwrap(), "required unless said otherwise");
        assert!(!parse(&["--pkce-required", "false"]).unwrap());
        assert!(parse(&["--pkce-required", "true"]).unwrap());
        assert!(parse(&["--pkce-required", "no"]).is_err());
        assert!(parse(&["--public", "--pkce-required", "false"]).is_err());
        assert!(parse(&["--public"]).unwrap());

        let set = Cli::try_parse_from([
            "promio-connect",
            "app",
            "set",
            "--client-id",
            "app_x",
            "--pkce-required",
            "false",
        ])
        .unwrap();
        assert!(matches!(
            set.command,
            Some(Command::App(AppCommand::Set {
                pkce_required: false,
                ..
            }))
        ));
        assert!(
            Cli::try_parse_from(["promio-connect", "app", "set", "--client-id", "app_x"]).is_err()
        );
    }

    #[test]
    fn create_users_takes_true_or_false_as_documented() {
        let parse = |extra: &[&str]| {
            let mut args = vec![
                "promio-connect",
                "client",
                "sso",
                "--company-id",
                "ACME",
                "--issuer",
                "https://idp.example",
                "--client-id",
                "id",
                "--client-secret",
                "secret",
                "--domains",
                "acme.example",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Some(Command::Client(ClientCommand::Sso { create_users, .. })) => create_users,
                _ => panic!("not parsed as client sso"),
            })
        };
        assert!(!parse(&[]).unwrap());
        assert!(parse(&["--create-users", "true"]).unwrap());
        assert!(!parse(&["--create-users", "false"]).unwrap());
        assert!(parse(&["--create-users"]).unwrap());
        assert!(parse(&["--create-users", "yes"]).is_err());
    }

    #[test]
    fn app_create_takes_repeated_redirect_uris() {
        let cli = Cli::try_parse_from([
            "promio-connect",
            "app",
            "create",
            "--name",
            "Wiki",
            "--redirect-uri",
            "https://wiki.example/cb",
            "--redirect-uri",
            "http://localhost:8080/cb",
            "--public",
        ])
        .unwrap();
        let Some(Command::App(AppCommand::Create {
            redirect_uri,
            public,
            ..
        })) = cli.command
        else {
            panic!("not parsed as app create");
        };
        assert_eq!(
            redirect_uri,
            ["https://wiki.example/cb", "http://localhost:8080/cb"]
        );
        assert!(public);
        let missing = Cli::try_parse_from(["promio-connect", "app", "create", "--name", "Wiki"]);
        assert!(missing.is_err());
        let rotate = Cli::try_parse_from([
            "promio-connect",
            "app",
            "rotate-secret",
            "--client-id",
            "app_x",
        ]);
        assert!(rotate.is_ok());
    }

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, random_password());
    }
}
