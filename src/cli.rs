//! The command line: `serve`, `migrate`, `create-staff`, `create-api-key`,
//! `seed-demo`, `backup`, `config`, `openapi`.

use std::io::IsTerminal;
use std::path::Path;

use clap::{Parser, Subcommand};

use crate::app::AppState;
use crate::config::{Config, LogFormat};
use crate::store::Db;

#[derive(Parser)]
#[command(
    name = "roster",
    version,
    about = "Roster: a self-hosted backend for coaching and training organisations"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create an active platform staff user.
    CreateStaff {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Create an API key for an organisation admin and print it (once).
    CreateApiKey {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Copy the database (a consistent snapshot), the signing key and the
    /// stored files into DIR, while the server runs (SQLite deployments).
    Backup {
        /// An empty or new folder; restore by using it as ROSTER_DATA_DIR.
        dir: std::path::PathBuf,
    },
    /// Print the effective settings, secrets masked.
    Config,
    /// Print the OpenAPI 3.1 document of every operation.
    Openapi,
    /// Create a demo organisation (admin, departments, coaches, members).
    SeedDemo {
        /// Team members to create (1000000 for benchmarks).
        #[arg(long, default_value_t = 40)]
        members: usize,
        #[arg(long, default_value_t = 5)]
        coaches: usize,
        #[arg(long, default_value_t = 6)]
        departments: usize,
        #[arg(long, default_value = "Demo Coaching")]
        company: String,
        /// Email domain of the seeded users (the admin is admin@DOMAIN).
        #[arg(long, default_value = "demo.example")]
        domain: String,
        /// The password of every seeded user.
        #[arg(long, default_value = "Demo-Pass-2024!")]
        password: String,
    },
}

pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roster: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roster: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => {
                let db = open_database(&config).await?;
                db.close().await;
                println!("migrations applied");
                Ok(())
            }
            Command::CreateStaff { email, password } => {
                let state = open_state(config).await?;
                let user = crate::domain::accounts::create_staff(&state, &email, &password)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", describe_error(&e)))?;
                println!("created staff user {} (id {})", user.email, user.id);
                Ok(())
            }
            Command::SeedDemo { members, coaches, departments, company, domain, password } => {
                let state = open_state(config).await?;
                let started = std::time::Instant::now();
                let opts = crate::seed::SeedOptions { company, domain, password, departments, coaches, members };
                let seeded = crate::seed::seed_demo(&state, &opts).await?;
                println!(
                    "seeded organisation {} with {} users and {} departments in {:.1}s; log in as {} / {}",
                    seeded.organization_id,
                    seeded.users,
                    seeded.departments,
                    started.elapsed().as_secs_f64(),
                    seeded.admin_email,
                    opts.password
                );
                Ok(())
            }
            Command::CreateApiKey { email, name } => {
                let state = open_state(config).await?;
                let created = crate::domain::api_keys::create_for_email(&state, &email, &name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", describe_error(&e)))?;
                println!("{}", created.key);
                eprintln!("API key {} ({}) created; it is not shown again", created.row.id, created.row.prefix);
                Ok(())
            }
            Command::Backup { dir } => {
                let state = open_state(config).await?;
                let summary = crate::backup::backup(&state, &dir).await?;
                println!(
                    "backed up the database, {} files ({} bytes){} into {}",
                    summary.files,
                    summary.bytes,
                    if summary.secret_key { " and the signing key" } else { "" },
                    dir.display()
                );
                Ok(())
            }
            Command::Config => {
                print!("{}", config.describe());
                Ok(())
            }
            Command::Openapi => {
                let document = crate::http::openapi::document(&crate::http::operations());
                println!("{}", serde_json::to_string_pretty(&document)?);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roster: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn describe_error(e: &crate::domain::Error) -> String {
    match e {
        crate::domain::Error::Validation(fields) => fields
            .0
            .iter()
            .map(|(f, msgs)| format!("{f}: {}", msgs.join(" ")))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROSTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// Opens the database (creating the data directory for SQLite) and applies
/// migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    std::fs::create_dir_all(&config.data_dir)?;
    let url = config.database_url();
    let options = crate::store::PoolOptions {
        max_connections: config.database_max_connections,
        acquire_timeout: std::time::Duration::from_secs(config.database_acquire_timeout_secs),
        sqlite_synchronous_full: config.sqlite_synchronous_full,
        sqlite_memory_bytes: config.sqlite_memory_mib.saturating_mul(1024 * 1024),
        ..crate::store::PoolOptions::new(config.database_max_connections)
    };
    let db = Db::connect(&url, &options).await?;
    db.migrate().await?;
    Ok(db)
}

/// The configured secret key, or the one kept in `data_dir/secret_key`
/// (created on first start, readable only by its owner).
pub fn secret_key(config: &Config) -> anyhow::Result<String> {
    if let Some(key) = &config.secret_key {
        if key.len() < 32 {
            anyhow::bail!("ROSTER_SECRET_KEY must be at least 32 bytes long");
        }
        return Ok(key.clone());
    }
    let path = config.data_dir.join("secret_key");
    if path.exists() {
        let key = std::fs::read_to_string(&path)?.trim().to_string();
        if key.len() < 32 {
            anyhow::bail!("{} holds a key shorter than 32 bytes", path.display());
        }
        return Ok(key);
    }
    let mut bytes = [0u8; 48];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let key = hex::encode(bytes);
    write_private(&path, &key)?;
    tracing::info!(path = %path.display(), "generated a new secret key");
    Ok(key)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

async fn open_state(config: Config) -> anyhow::Result<AppState> {
    let db = open_database(&config).await?;
    let key = secret_key(&config)?;
    AppState::new(db, config, &key)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let state = open_state(config).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        database = state.db.backend(),
        public_url = %state.config.public_url,
        "roster is serving"
    );
    let shutdown = crate::server::shutdown_on_signals();
    crate::server::run(listener, state.clone(), shutdown).await?;
    state.db.close().await;
    tracing::info!("stopped");
    Ok(())
}
