//! `basis orchestrator`: run the self-hostable orchestrator (docs/PROTOCOL.md), manage its API
//! keys
//! (`keys create`, `keys hash`; `keys list|revoke|set-limits` in `orchestrator_keys`), or act
//! on its task market as the operator (`tasks resolve`,
//! in `orchestrator_tasks`) and settle its credits (`settle …`, in `orchestrator_settle`). Parses flags, calls `crate::orchestrator` (`run`,
//! `keys::create_in_database`) or the operation, renders.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use secrecy::ExposeSecret;

use super::{orchestrator_keys, orchestrator_settle, orchestrator_tasks, output};
use crate::domain::{ErrorCode, Problem};
use crate::orchestrator::config::Database;
use crate::orchestrator::keys::{CreateKeyError, CreatedKey, KeyRole, KeySha256};
use crate::orchestrator::{self, OrchestratorConfig, Overrides, ServeError};
use crate::wire::{KeyLimits, RegistrationMode};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Flags of the server itself (and, for `--config` and `--db`, of `keys create`).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8787 (port 0 picks a free port; the bound address
    /// is printed as `listening on http://ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// orchestrator.toml: registration mode, keys (as sha256), limits, database path and its
    /// durability (db_synchronous = "full", the default, or "normal": survives kill -9 only).
    #[arg(long, value_name = "FILE", env = "BASIS_ORCHESTRATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Development mode: anyone may register (overrides the configured registration mode).
    #[arg(long)]
    pub open: bool,
    /// The `SQLite` database file (default: `orchestrator.db` in the state directory).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// PostgreSQL instead of SQLite: postgres://USER@HOST/DB. Prefer the environment variable
    /// to the flag when the URL holds a password (flags show in `ps`).
    #[arg(
        long,
        value_name = "URL",
        env = "BASIS_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Who may register new workers: open, gated (enrollment key) or closed.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub registration: Option<RegistrationMode>,
}

fn parse_mode(s: &str) -> Result<RegistrationMode, String> {
    s.parse()
        .map_err(|e: crate::wire::UnknownRegistrationMode| e.to_string())
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Manage API keys (admin, client, evaluator).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Operator actions on workers (revoke one).
    #[command(subcommand)]
    Workers(WorkersCommand),
    /// Operator actions on the task market (resolve a dispute).
    #[command(subcommand)]
    Tasks(orchestrator_tasks::TasksCommand),
    /// Settlement: close pending credits into a batch, export its file for your own wallet to
    /// sign and pay, record the payment (basis never signs or pays).
    #[command(subcommand)]
    Settle(orchestrator_settle::SettleCommand),
    /// Apply the database's pending schema migrations and exit, without serving (run it before
    /// starting new replicas; serving also migrates).
    Migrate {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Copy a single-node SQLite database into an empty PostgreSQL database (stop the
    /// orchestrator first). Verifies every table's row count and the ledger before it commits;
    /// refuses a target that holds data.
    Copy {
        /// The source: sqlite:PATH (the orchestrator's `db`).
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The target: postgres://USER@HOST/DB (default: BASIS_DATABASE_URL).
        #[arg(
            long,
            value_name = "URL",
            env = "BASIS_DATABASE_URL",
            hide_env_values = true
        )]
        to: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum WorkersCommand {
    /// Revoke a worker at once: its device key (or legacy token) is refused on every route and
    /// every replica, and its open channel closes. An admin re-registration lifts it. Needs the
    /// admin key.
    Revoke {
        /// The worker's id.
        id: String,
        #[command(flatten)]
        admin: orchestrator_keys::AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key: printed ONCE on stdout; only its sha256 is stored in the database.
    Create {
        /// What the key may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A note stored with the key's hash (who holds it).
        #[arg(long)]
        label: Option<String>,
        /// A client key's quotas (change them later with `keys set-limits`).
        #[command(flatten)]
        limits: orchestrator_keys::LimitArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Print the sha256 of a key read from stdin, for `enrollment_key_sha256` or
    /// `admin_key_sha256` in orchestrator.toml.
    Hash,
    /// List every key of a running orchestrator: id, role, label, state, a client key's
    /// quotas and today's usage (needs the admin key).
    List {
        #[command(flatten)]
        admin: orchestrator_keys::AdminArgs,
    },
    /// A key's usage per UTC day: requests, credited tokens and the amount charged at
    /// `[pricing]` (for billing its holder). Needs the admin key.
    Usage {
        /// The key's id, as `keys list` shows it.
        #[arg(value_name = "ID")]
        id: String,
        /// How many days back, today included.
        #[arg(long, value_name = "N", default_value_t = crate::wire::USAGE_DAYS_DEFAULT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::wire::USAGE_DAYS_MAX)))]
        days: u32,
        #[command(flatten)]
        admin: orchestrator_keys::AdminArgs,
    },
    /// Revoke a key at once, on every route (and every replica). Needs the admin key.
    Revoke {
        /// The key's id, as `keys list` shows it (key: + hex of its sha256).
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        admin: orchestrator_keys::AdminArgs,
    },
    /// Replace a client key's quotas (a limit left out is removed). Needs the admin key.
    SetLimits {
        /// The key's id, as `keys list` shows it.
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        limits: orchestrator_keys::LimitArgs,
        #[command(flatten)]
        admin: orchestrator_keys::AdminArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    Client,
    Evaluator,
}

impl From<RoleArg> for KeyRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => KeyRole::Admin,
            RoleArg::Client => KeyRole::Client,
            RoleArg::Evaluator => KeyRole::Evaluator,
        }
    }
}

/// Whether this command serves the orchestrator on its `SQLite` file (the embedded default),
/// whose one writer thread then gets a core of its own ([`super::Cli::threads`]). A
/// configuration that does not load counts as no: `serve` reports it.
pub fn serves_sqlite(args: &Args) -> bool {
    args.command.is_none()
        && matches!(
            OrchestratorConfig::load_database(&overrides(&args.serve)),
            Ok(Database::Sqlite { .. })
        )
}

fn overrides(a: &ServeArgs) -> Overrides {
    Overrides {
        config_file: a.config.clone(),
        listen: a.listen,
        db: a.db.clone(),
        database_url: a.database_url.clone(),
        open: a.open,
        registration: a.registration,
    }
}

pub async fn run(args: Args) -> ExitCode {
    let result = match args.command {
        None => serve(&args.serve).await,
        Some(Sub::Keys(KeysCommand::Create {
            role,
            label,
            limits,
            serve,
        })) => create_key(role.into(), label, limits.into(), &serve).await,
        Some(Sub::Keys(KeysCommand::Hash)) => hash_key(),
        Some(Sub::Keys(KeysCommand::List { admin })) => {
            return orchestrator_keys::list(&admin).await;
        }
        Some(Sub::Keys(KeysCommand::Usage { id, days, admin })) => {
            return orchestrator_keys::usage(&id, days, &admin).await;
        }
        Some(Sub::Keys(KeysCommand::Revoke { id, admin })) => {
            return orchestrator_keys::revoke(&id, &admin).await;
        }
        Some(Sub::Keys(KeysCommand::SetLimits { id, limits, admin })) => {
            return orchestrator_keys::set_limits(&id, limits, &admin).await;
        }
        Some(Sub::Workers(WorkersCommand::Revoke { id, admin })) => {
            return orchestrator_keys::revoke_worker(&id, &admin).await;
        }
        Some(Sub::Tasks(command)) => return orchestrator_tasks::run(command).await,
        Some(Sub::Settle(command)) => return orchestrator_settle::run(command).await,
        Some(Sub::Migrate { serve }) => migrate(&serve).await,
        Some(Sub::Copy { from, to }) => copy(&from, &to).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => output::failure(false, &problem),
    }
}

async fn copy(from: &str, to: &str) -> Result<(), Problem> {
    let invalid = |m: String, fix: &str| Problem::new(ErrorCode::InvalidArgument, m).with_fix(fix);
    let Some(path) = from.strip_prefix("sqlite:") else {
        return Err(invalid(
            "--from must be sqlite:PATH".into(),
            "Name the orchestrator's SQLite file, e.g. --from sqlite:/var/lib/basis/orchestrator.db.",
        ));
    };
    let path = std::path::Path::new(path);
    if !path.is_file() {
        return Err(invalid(
            format!("{} is not a file", path.display()),
            "Give the path of the orchestrator's database file (its `db`).",
        ));
    }
    let to = orchestrator::DatabaseUrl::parse(to).map_err(|m| {
        invalid(
            m,
            "Give the target as postgres://USER@HOST/DB (or in BASIS_DATABASE_URL).",
        )
    })?;
    let report = orchestrator::sqlite_to_postgres(path, &to)
        .await
        .map_err(|e| match e {
            orchestrator::CopyError::Store(e) => serve_problem(ServeError::Store(e)),
            other => Problem::new(ErrorCode::InvalidArgument, other.to_string()).with_fix(
                "Copy into a new, empty PostgreSQL database (createdb), from a stopped \
                 orchestrator's file; nothing was written.",
            ),
        })?;
    for (table, rows) in &report.rows {
        println!("{table}: {rows} rows");
    }
    println!(
        "copied into {}; every count and the ledger verified (pending rewards {} atomic units)",
        to.shown(),
        report.pending_total
    );
    Ok(())
}

async fn migrate(args: &ServeArgs) -> Result<(), Problem> {
    let database =
        OrchestratorConfig::load_database(&overrides(args)).map_err(|e| config_problem(&e))?;
    orchestrator::open_store(&database)
        .await
        .map_err(|e| serve_problem(ServeError::Store(e)))?;
    println!("{}: schema up to date", database.shown());
    Ok(())
}

async fn serve(args: &ServeArgs) -> Result<(), Problem> {
    let config = OrchestratorConfig::load(&overrides(args)).map_err(|e| config_problem(&e))?;
    orchestrator::run(config).await.map_err(serve_problem)
}

async fn create_key(
    role: KeyRole,
    label: Option<String>,
    limits: KeyLimits,
    args: &ServeArgs,
) -> Result<(), Problem> {
    let CreatedKey { key, database } =
        orchestrator::keys::create_in_database(&overrides(args), role, label, limits)
            .await
            .map_err(|e| match e {
                CreateKeyError::Label(refused) => Problem::from(refused),
                CreateKeyError::Config(e) => config_problem(&e),
                CreateKeyError::Store(e) => serve_problem(e.into()),
                e @ CreateKeyError::LimitsNotForRole(_) => {
                    Problem::new(ErrorCode::InvalidArgument, e.to_string()).with_fix(
                        "Give --requests-per-minute and --tokens-per-day with --role client only.",
                    )
                }
            })?;
    let _ = writeln!(std::io::stdout().lock(), "{}", key.expose_secret());
    let id = key_id(&KeySha256::of(key.expose_secret()));
    let _ = writeln!(
        std::io::stderr().lock(),
        "created {} {role} key ({id}) for {database}. It is shown only this once: store it now (only its sha256 is kept).",
        if role == KeyRole::Admin { "an" } else { "a" }
    );
    Ok(())
}

/// `key:` + the first hex digits of the sha256, as `keys list` shows it.
fn key_id(sha: &KeySha256) -> String {
    format!("key:{}", &hex::encode(sha.0)[..crate::wire::KEY_ID_HEX])
}

fn hash_key() -> Result<(), Problem> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Problem::new(ErrorCode::IoError, format!("cannot read stdin: {e}")))?;
    let key = line.trim();
    if key.is_empty() {
        return Err(Problem::new(ErrorCode::InvalidArgument, "no key on stdin")
            .with_fix("Pipe the key in: `printf %s \"$KEY\" | basis orchestrator keys hash`."));
    }
    let _ = writeln!(std::io::stdout().lock(), "{}", KeySha256::of(key));
    Ok(())
}

fn config_problem(e: &orchestrator::ConfigError) -> Problem {
    Problem::new(ErrorCode::ConfigInvalid, e.to_string())
        .with_fix("Fix orchestrator.toml (or the flags); `basis orchestrator --help` lists them.")
}

fn serve_problem(e: ServeError) -> Problem {
    match e {
        ServeError::Config(e) => config_problem(&e),
        ServeError::Bind { addr, .. } => Problem::new(ErrorCode::IoError, e.to_string()).with_fix(
            format!("Is something else listening on {addr}? Pick another address with --listen."),
        ),
        ServeError::Store(_) | ServeError::Serve(_) => {
            Problem::new(ErrorCode::IoError, e.to_string()).with_fix(
                "Check the database: the SQLite path (--db) and its directory's \
                     permissions, or that PostgreSQL at database_url is up and this user may \
                     connect and create tables.",
            )
        }
    }
}
