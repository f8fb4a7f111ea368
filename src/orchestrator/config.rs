//! The orchestrator's configuration: `orchestrator.toml` (raw, every key optional), the
//! environment and the command line, resolved once into a validated [`OrchestratorConfig`]
//! that is passed explicitly. Precedence: flag > environment > file > default.
//!
//! ```toml
//! listen = "127.0.0.1:8787"
//! db = "/var/lib/basis/orchestrator.db"    # default: <state dir>/orchestrator.db
//! db_synchronous = "full"                   # full: fsync per commit | normal: survives kill -9 only
//! database_url = "postgres://basis@db/basis" # PostgreSQL instead of the SQLite file (or
//!                                           # BASIS_DATABASE_URL / --database-url)
//! database_pool_size = 16                   # PostgreSQL connections per orchestrator
//! registration = "gated"                    # open | gated | closed
//! enrollment_key_sha256 = "0x…"             # or the key itself in BASIS_ENROLLMENT_KEY
//! admin_key_sha256 = ["0x…"]                # besides keys made by `keys create --role admin`
//! heartbeat_interval_s = 10
//! online_window_s = 30
//! body_limit_bytes = 65536
//! gateway_body_limit_bytes = 4194304        # POST /v1/chat/completions
//! job_timeout_s = 300                       # a gateway job's deadline
//! queue_timeout_ms = 10000                  # how long a request waits for a busy model's worker (0: never)
//! max_queued_per_model = 256                # requests waiting per model at most
//! drain_timeout_s = 10                      # in-flight jobs get this long after SIGTERM
//! asset = "USDC"                            # the asset named in receipts
//! asset_decimals = 6                        # its decimals (default 6 for USDC; else unknown)
//! origins = ["https://orch.example"]        # the URLs workers reach it by: their signatures
//!                                           # must name one (default: the bound address;
//!                                           # required when listening on 0.0.0.0)
//!
//! [tasks]                                  # see `market::config` for every key
//! protocol_fee_bps = 250
//!
//! [http]                                   # slow or idle clients cannot hold the server open
//! header_read_timeout_s = 10                # a request's headers (and an idle keep-alive gap)
//! body_read_timeout_s = 30                  # the longest pause inside a request body
//! max_connections_per_ip = 1024             # open connections from one address; 0 = no cap
//! trusted_proxies = ["127.0.0.1"]           # reverse proxies whose client header is believed
//! client_ip_header = "x-forwarded-for"      # where they name the client (see trusted_proxies.rs)
//!
//! [pricing.models."llama3.1:8b"]          # what a gateway job pays: see `metering::config`
//! prompt_per_million = "100000"             # atomic units of `asset` per million tokens
//! completion_per_million = "300000"
//!
//! [settlement]                             # batches' token and EIP-712 domain: see `settlement::config`
//! token = "0x…"                              # the asset's ERC-20 contract
//! chain_id = 8453
//! verifying_contract = "0x…"                 # the distributor contract or Safe that checks the signature
//!
//! [replica]                               # one of several replicas on PostgreSQL: see `replica::config`
//! id = "orch-a"
//!
//! [rate_limit]
//! register_per_minute = 60
//! register_burst = 20
//! auth_failures_per_minute = 10
//! auth_failure_burst = 10
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::discovery::config::{DiscoveryConfig, RawDiscovery};
use super::hub::QueueSettings;
use super::market::{RawTaskConfig, TaskMarketConfig};
use super::metering::config::{Pricing, RawPricing};
use super::replica::{RawReplica, ReplicaConfig};
use super::settlement::config::{RawSettlement, SettlementConfig};
use super::store::postgres::{DEFAULT_POOL_SIZE, DatabaseUrl};
use super::store::{KeySha256, Synchronous};
use super::trusted_proxies::TrustedProxies;
use crate::wire::RegistrationMode;

/// The environment variable holding the enrollment key itself (hashed at startup).
pub const ENV_ENROLLMENT_KEY: &str = "BASIS_ENROLLMENT_KEY";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DB_FILE_NAME: &str = "orchestrator.db";
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
pub const DEFAULT_GATEWAY_BODY_LIMIT: usize = 4 * 1024 * 1024;
pub const DEFAULT_JOB_TIMEOUT_S: u64 = 300;
pub const DEFAULT_DRAIN_TIMEOUT_S: u64 = 10;
pub const DEFAULT_ASSET: &str = "USDC";
/// The decimals of [`DEFAULT_ASSET`].
pub const DEFAULT_ASSET_DECIMALS: u8 = 6;

/// Why the configuration cannot be used. Never contains a key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid orchestrator config: {message}")]
    Parse { path: String, message: String },
    #[error("invalid orchestrator config: {0}")]
    Invalid(String),
    #[error(
        "cannot find the state directory for the database ({0}); pass --db or set db in the config"
    )]
    NoStateDir(String),
}

/// A token bucket's shape: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Bucket {
    pub per_minute: u32,
    pub burst: u32,
}

/// Per-IP limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Registration attempts.
    pub register: Bucket,
    /// Failed authentications (wrong enrollment key, token or admin key); once spent, every
    /// registration from that address gets 429 until the bucket refills.
    pub auth_failures: Bucket,
}

/// Limits on HTTP connections (`[http]`), so that slow, silent or too many connections cannot
/// exhaust the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// How long a client may take to send a request's headers; also how long a keep-alive
    /// connection may sit idle between requests, and a new connection before its first byte.
    pub header_read_timeout: Duration,
    /// The longest pause between two pieces of a request body.
    pub body_read_timeout: Duration,
    /// Open connections one peer address may hold (workers' WebSockets included); `None` for
    /// no cap. Behind a reverse proxy every client has the proxy's address: raise it there.
    pub max_connections_per_ip: Option<u32>,
}

pub const DEFAULT_HEADER_READ_TIMEOUT_S: u64 = 10;
pub const DEFAULT_BODY_READ_TIMEOUT_S: u64 = 30;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 1024;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchestratorConfig {
    pub listen: SocketAddr,
    /// Where the store lives: the `SQLite` file above, or PostgreSQL.
    pub database: Database,
    /// Development mode: no key needed to register (and, with the gateway, to call it).
    pub open: bool,
    pub registration: RegistrationMode,
    pub enrollment_key: Option<KeySha256>,
    pub admin_keys: Vec<KeySha256>,
    pub heartbeat_interval_s: u64,
    pub online_window_s: u64,
    pub body_limit_bytes: usize,
    /// Body limit of `POST /v1/chat/completions` (prompts are larger than registrations).
    pub gateway_body_limit_bytes: usize,
    /// How long a gateway job may take before the client gets `JOB_TIMEOUT`.
    pub job_timeout_s: u64,
    /// The wait queue for busy models (`queue_timeout_ms`, `max_queued_per_model`).
    pub queue: QueueSettings,
    /// After SIGTERM: how long in-flight jobs may take before worker connections are closed.
    pub drain_timeout_s: u64,
    /// The asset receipts, prices and credits are in.
    pub asset: String,
    /// Its decimals, so clients can show amounts in whole units; `None`: not configured (for
    /// an asset other than the default).
    pub asset_decimals: Option<u8>,
    pub rate_limits: RateLimits,
    /// Connection timeouts and caps (`[http]`).
    pub http: HttpLimits,
    /// Reverse proxies whose client-address header is believed (`[http] trusted_proxies`,
    /// `client_ip_header`); none by default.
    pub trusted_proxies: TrustedProxies,
    /// The task market's rules (`[tasks]`).
    pub tasks: TaskMarketConfig,
    /// This orchestrator as one of several replicas on a shared database (`[replica]`);
    /// `None` when it is alone.
    pub replica: Option<ReplicaConfig>,
    /// Registration files and the leaderboard (`[discovery]`).
    pub discovery: DiscoveryConfig,
    /// The token and EIP-712 domain settlement batches are closed under (`[settlement]`);
    /// `None`: credits accrue, no batch can be closed.
    pub settlement: Option<SettlementConfig>,
    /// What gateway jobs pay per model (`[pricing]`); empty: every job credits 0.
    pub pricing: Pricing,
    /// The origins workers' signatures must name (docs/SECURITY.md, "Signed requests"), as
    /// `wire::signature::origin_of` writes them; empty: the server fills in the bound address's
    /// own at start (`server::effective_origins`).
    pub origins: Vec<String>,
}

/// Where the orchestrator's store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: one `SQLite` file.
    Sqlite {
        path: PathBuf,
        synchronous: Synchronous,
    },
    /// PostgreSQL, for several replicas on one database.
    Postgres { url: DatabaseUrl, pool_size: usize },
}

impl Database {
    /// How it is shown in logs and messages (a URL without its password).
    pub fn shown(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => path.display().to_string(),
            Self::Postgres { url, .. } => url.shown(),
        }
    }
}

/// What the command line may override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub db: Option<PathBuf>,
    /// `--database-url` (or `BASIS_DATABASE_URL`).
    pub database_url: Option<String>,
    pub open: bool,
    pub registration: Option<RegistrationMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<SocketAddr>,
    db: Option<PathBuf>,
    db_synchronous: Option<Synchronous>,
    database_url: Option<String>,
    database_pool_size: Option<usize>,
    open: Option<bool>,
    registration: Option<RegistrationMode>,
    enrollment_key_sha256: Option<String>,
    #[serde(default)]
    admin_key_sha256: Vec<String>,
    heartbeat_interval_s: Option<u64>,
    online_window_s: Option<u64>,
    body_limit_bytes: Option<usize>,
    gateway_body_limit_bytes: Option<usize>,
    job_timeout_s: Option<u64>,
    queue_timeout_ms: Option<u64>,
    max_queued_per_model: Option<usize>,
    drain_timeout_s: Option<u64>,
    asset: Option<String>,
    asset_decimals: Option<u8>,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default)]
    rate_limit: RawRateLimits,
    #[serde(default)]
    http: RawHttpLimits,
    #[serde(default)]
    tasks: RawTaskConfig,
    #[serde(default)]
    replica: RawReplica,
    #[serde(default)]
    discovery: RawDiscovery,
    #[serde(default)]
    settlement: RawSettlement,
    #[serde(default)]
    pricing: RawPricing,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpLimits {
    header_read_timeout_s: Option<u64>,
    body_read_timeout_s: Option<u64>,
    max_connections_per_ip: Option<u32>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    client_ip_header: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimits {
    register_per_minute: Option<u32>,
    register_burst: Option<u32>,
    auth_failures_per_minute: Option<u32>,
    auth_failure_burst: Option<u32>,
}

impl OrchestratorConfig {
    /// The online window, when other orchestrators may share this database (PostgreSQL): the
    /// registry then counts a worker connected to one of them as online while the store has
    /// heard from it within the window. `None` on `SQLite`, which one orchestrator owns.
    pub fn shared_online_window(&self) -> Option<u64> {
        matches!(self.database, Database::Postgres { .. }).then_some(self.online_window_s)
    }

    /// The asset and its decimals, for the wire's `asset_decimals`.
    pub fn asset_units(&self) -> super::market::AssetUnits<'_> {
        super::market::AssetUnits {
            asset: &self.asset,
            decimals: self.asset_decimals,
        }
    }

    /// Reads the config file (if any) and resolves it with the process environment.
    pub fn load(overrides: &Overrides) -> Result<Self, ConfigError> {
        let raw = match &overrides.config_file {
            Some(path) => read_raw(path)?,
            None => RawConfig::default(),
        };
        Self::resolve(raw, overrides, |name| std::env::var(name).ok())
    }

    /// Only the database path (for `keys create`): flag, then file, then the state dir.
    pub fn load_database(overrides: &Overrides) -> Result<Database, ConfigError> {
        let raw = match &overrides.config_file {
            Some(path) => read_raw(path)?,
            None => RawConfig::default(),
        };
        Self::database_of(&raw, overrides)
    }

    /// The database `raw` and the flags name (flag > environment, via the flag > file).
    fn database_of(raw: &RawConfig, o: &Overrides) -> Result<Database, ConfigError> {
        let url = o
            .database_url
            .clone()
            .or_else(|| raw.database_url.clone())
            .filter(|u| !u.trim().is_empty());
        if let Some(url) = url {
            let pool_size = raw.database_pool_size.unwrap_or(DEFAULT_POOL_SIZE);
            if !(1..=1024).contains(&pool_size) {
                return Err(ConfigError::Invalid(
                    "database_pool_size must be between 1 and 1024".into(),
                ));
            }
            return Ok(Database::Postgres {
                url: DatabaseUrl::parse(&url).map_err(ConfigError::Invalid)?,
                pool_size,
            });
        }
        let path = match o.db.clone().or_else(|| raw.db.clone()) {
            Some(db) => db,
            None => default_db()?,
        };
        Ok(Database::Sqlite {
            path,
            synchronous: raw.db_synchronous.unwrap_or_default(),
        })
    }

    /// Parses `text` as orchestrator.toml (for tests and tools).
    pub fn from_toml(
        text: &str,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw = parse_raw(text, "orchestrator.toml")?;
        Self::resolve(raw, overrides, env)
    }

    fn resolve(
        raw: RawConfig,
        o: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let database = Self::database_of(&raw, o)?;
        let open = o.open || raw.open.unwrap_or(false);
        let registration = if open {
            RegistrationMode::Open
        } else {
            o.registration
                .or(raw.registration)
                .unwrap_or(RegistrationMode::Open)
        };
        let env_key = env(ENV_ENROLLMENT_KEY).filter(|k| !k.is_empty());
        let enrollment_key = match (env_key, raw.enrollment_key_sha256) {
            (Some(key), _) => Some(KeySha256::of(&key)),
            (None, Some(hash)) => Some(parse_hash("enrollment_key_sha256", &hash)?),
            (None, None) => None,
        };
        if registration == RegistrationMode::Gated && enrollment_key.is_none() {
            return Err(ConfigError::Invalid(format!(
                "registration is gated but no enrollment key is configured: set {ENV_ENROLLMENT_KEY} \
                 or enrollment_key_sha256 (see `basis orchestrator keys hash`)"
            )));
        }
        let admin_keys = raw
            .admin_key_sha256
            .iter()
            .map(|h| parse_hash("admin_key_sha256", h))
            .collect::<Result<Vec<_>, _>>()?;
        let listen = match o.listen.or(raw.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("bad default listen address".into()))?,
        };
        let r = raw.rate_limit;
        let tasks = TaskMarketConfig::resolve(&raw.tasks).map_err(ConfigError::Invalid)?;
        let replica = ReplicaConfig::resolve(
            &raw.replica,
            &env,
            matches!(database, Database::Postgres { .. }),
        )
        .map_err(ConfigError::Invalid)?;
        let discovery = DiscoveryConfig::resolve(&raw.discovery).map_err(ConfigError::Invalid)?;
        let discovery_url = discovery.public_url.clone();
        let config = Self {
            listen,
            database,
            open,
            registration,
            enrollment_key,
            admin_keys,
            heartbeat_interval_s: raw.heartbeat_interval_s.unwrap_or(10),
            online_window_s: raw.online_window_s.unwrap_or(30),
            body_limit_bytes: raw.body_limit_bytes.unwrap_or(DEFAULT_BODY_LIMIT),
            gateway_body_limit_bytes: raw
                .gateway_body_limit_bytes
                .unwrap_or(DEFAULT_GATEWAY_BODY_LIMIT),
            job_timeout_s: raw.job_timeout_s.unwrap_or(DEFAULT_JOB_TIMEOUT_S),
            queue: QueueSettings::resolve(raw.queue_timeout_ms, raw.max_queued_per_model)
                .map_err(ConfigError::Invalid)?,
            drain_timeout_s: raw.drain_timeout_s.unwrap_or(DEFAULT_DRAIN_TIMEOUT_S),
            asset_decimals: raw.asset_decimals.or_else(|| {
                raw.asset
                    .as_deref()
                    .is_none_or(|a| a == DEFAULT_ASSET)
                    .then_some(DEFAULT_ASSET_DECIMALS)
            }),
            asset: raw.asset.unwrap_or_else(|| DEFAULT_ASSET.to_owned()),
            rate_limits: RateLimits {
                register: Bucket {
                    per_minute: r.register_per_minute.unwrap_or(60),
                    burst: r.register_burst.unwrap_or(20),
                },
                auth_failures: Bucket {
                    per_minute: r.auth_failures_per_minute.unwrap_or(10),
                    burst: r.auth_failure_burst.unwrap_or(10),
                },
            },
            http: http_limits(&raw.http),
            trusted_proxies: TrustedProxies::parse(
                &raw.http.trusted_proxies,
                raw.http.client_ip_header.as_deref(),
            )
            .map_err(ConfigError::Invalid)?,
            tasks,
            replica,
            discovery,
            settlement: SettlementConfig::resolve(&raw.settlement).map_err(ConfigError::Invalid)?,
            pricing: Pricing::resolve(&raw.pricing).map_err(ConfigError::Invalid)?,
            origins: origins(&raw.origins, discovery_url.as_ref()).map_err(ConfigError::Invalid)?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.heartbeat_interval_s == 0 {
            return bad("heartbeat_interval_s must be at least 1");
        }
        if self.online_window_s <= self.heartbeat_interval_s {
            return bad("online_window_s must be longer than heartbeat_interval_s");
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.body_limit_bytes) {
            return bad("body_limit_bytes must be between 1024 and 16777216");
        }
        if !(1024..=256 * 1024 * 1024).contains(&self.gateway_body_limit_bytes) {
            return bad("gateway_body_limit_bytes must be between 1024 and 268435456");
        }
        if !(1..=86_400).contains(&self.job_timeout_s) {
            return bad("job_timeout_s must be between 1 and 86400");
        }
        if self.drain_timeout_s > 3600 {
            return bad("drain_timeout_s must be at most 3600");
        }
        let asset_ok = (1..=32).contains(&self.asset.len())
            && self
                .asset
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        if !asset_ok {
            return bad("asset must be 1 to 32 letters, digits or . - _ :");
        }
        let timeouts = [self.http.header_read_timeout, self.http.body_read_timeout];
        if timeouts.iter().any(|t| !(1..=3600).contains(&t.as_secs())) {
            return bad(
                "[http] header_read_timeout_s and body_read_timeout_s must be between 1 and 3600",
            );
        }
        if self
            .asset_decimals
            .is_some_and(|d| d > crate::domain::Amount::MAX_DECIMALS)
        {
            return bad("asset_decimals must be at most 38");
        }
        let buckets = [self.rate_limits.register, self.rate_limits.auth_failures];
        if buckets.iter().any(|b| b.per_minute == 0 || b.burst == 0) {
            return bad("rate limits (per_minute and burst) must be at least 1");
        }
        Ok(())
    }
}

/// `[http]` with its defaults.
fn http_limits(raw: &RawHttpLimits) -> HttpLimits {
    HttpLimits {
        header_read_timeout: Duration::from_secs(
            raw.header_read_timeout_s
                .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_S),
        ),
        body_read_timeout: Duration::from_secs(
            raw.body_read_timeout_s
                .unwrap_or(DEFAULT_BODY_READ_TIMEOUT_S),
        ),
        max_connections_per_ip: match raw.max_connections_per_ip {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(DEFAULT_MAX_CONNECTIONS_PER_IP),
        },
    }
}

fn read_raw(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_raw(&text, &path.display().to_string())
}

fn parse_raw(text: &str, path: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: match e.span().and_then(|span| key_at(text, span.start)) {
            Some(key) => format!("{key}: {}", e.message()),
            None => e.message().to_owned(),
        },
    })
}

/// The key (with its table, `[settlement] chain_id`) on the line holding byte `at`, and the
/// line's number; never the value, which might be a secret pasted in the wrong place.
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let number = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(start..)?.lines().next()?;
    let key = line.split('=').next()?.trim();
    // Only what reads as one of our keys (lowercase snake case): a secret pasted on a line
    // of its own (base64 padded with `=`) is not echoed as one.
    let keyish = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if !key.starts_with(|c: char| c.is_ascii_lowercase())
        || key.len() > 40
        || !line.contains('=')
        || !key.chars().all(keyish)
    {
        return None;
    }
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map_or_else(String::new, |t| format!("{t} "));
    Some(format!("line {number}, {table}{key}"))
}

fn parse_hash(field: &str, value: &str) -> Result<KeySha256, ConfigError> {
    KeySha256::parse(value).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{field} must be a sha256 as 0x + 64 hex (the hash of the key, not the key)"
        ))
    })
}

fn default_db() -> Result<PathBuf, ConfigError> {
    crate::config::Dirs::resolve()
        .map(|d| d.state_dir.join(DB_FILE_NAME))
        .map_err(|e| ConfigError::NoStateDir(e.to_string()))
}

/// `origins`, each an http(s) URL without query or fragment, written as
/// `wire::signature::origin_of` writes it, plus `[discovery] public_url` when set.
fn origins(raw: &[String], public_url: Option<&url::Url>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for text in raw {
        let url = url::Url::parse(text).map_err(|e| format!("origins: `{text}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(format!(
                "origins: `{text}` must be an http(s) URL such as https://orch.example, without a \
                 user, query or fragment"
            ));
        }
        out.push(crate::wire::signature::origin_of(&url));
    }
    if let Some(url) = public_url {
        out.push(crate::wire::signature::origin_of(url));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overrides() -> Overrides {
        Overrides {
            db: Some("/tmp/x.db".into()),
            ..Overrides::default()
        }
    }

    #[test]
    fn defaults() {
        let c = OrchestratorConfig::from_toml("", &overrides(), |_| None).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.registration, RegistrationMode::Open);
        assert_eq!((c.heartbeat_interval_s, c.online_window_s), (10, 30));
        assert_eq!(c.body_limit_bytes, 65_536);
        let sqlite = |path: &str, synchronous| Database::Sqlite {
            path: path.into(),
            synchronous,
        };
        assert_eq!(
            c.database,
            sqlite("/tmp/x.db", Synchronous::Full),
            "durable through power loss"
        );
        let c =
            OrchestratorConfig::from_toml("db_synchronous = \"normal\"", &overrides(), |_| None)
                .unwrap();
        assert_eq!(c.database, sqlite("/tmp/x.db", Synchronous::Normal));
        // PostgreSQL from the file or the flag (the flag wins); the URL is never shown whole.
        let toml = "database_url = \"postgres://basis:hunter2@db/basis\"\ndatabase_pool_size = 4";
        let c = OrchestratorConfig::from_toml(toml, &overrides(), |_| None).unwrap();
        let Database::Postgres { url, pool_size } = &c.database else {
            panic!("{:?}", c.database);
        };
        assert_eq!(
            (url.expose(), *pool_size),
            ("postgres://basis:hunter2@db/basis", 4)
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        let flagged = Overrides {
            database_url: Some("postgresql://other/db".into()),
            ..overrides()
        };
        let c = OrchestratorConfig::from_toml(toml, &flagged, |_| None).unwrap();
        assert_eq!(c.database.shown(), "postgresql://other/db");
        for bad in [
            "database_url = \"mysql://x/y\"",
            "database_url = \"postgres://x/y\"\ndatabase_pool_size = 0",
        ] {
            let err = OrchestratorConfig::from_toml(bad, &overrides(), |_| None).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn gated_needs_a_key_from_file_or_env() {
        let toml = "registration = \"gated\"";
        let err = OrchestratorConfig::from_toml(toml, &overrides(), |_| None).unwrap_err();
        assert!(err.to_string().contains(ENV_ENROLLMENT_KEY));
        let c = OrchestratorConfig::from_toml(toml, &overrides(), |n| {
            (n == ENV_ENROLLMENT_KEY).then(|| "sesame".to_owned())
        })
        .unwrap();
        assert_eq!(c.enrollment_key, Some(KeySha256::of("sesame")));
        let toml = format!(
            "registration = \"gated\"\nenrollment_key_sha256 = \"{}\"",
            KeySha256::of("k")
        );
        let c = OrchestratorConfig::from_toml(&toml, &overrides(), |_| None).unwrap();
        assert_eq!(c.enrollment_key, Some(KeySha256::of("k")));
    }

    #[test]
    fn flags_win_and_open_forces_open_registration() {
        let o = Overrides {
            registration: Some(RegistrationMode::Closed),
            ..overrides()
        };
        let c = OrchestratorConfig::from_toml("registration = \"open\"", &o, |_| None).unwrap();
        assert_eq!(c.registration, RegistrationMode::Closed);
        let o = Overrides { open: true, ..o };
        let c = OrchestratorConfig::from_toml("", &o, |_| None).unwrap();
        assert_eq!(c.registration, RegistrationMode::Open);
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        for bad in [
            "registraton = \"open\"",
            "registration = \"ajar\"",
            "online_window_s = 5",
            "body_limit_bytes = 10",
            "[rate_limit]\nregister_burst = 0",
            "admin_key_sha256 = [\"not-a-hash\"]",
            "job_timeout_s = 0",
            "asset = \"US D\"",
            "asset_decimals = 39",
            "[tasks]\nprotocol_fee_bps = 10001",
            "[tasks]\nevaluator_timeout_policy = \"shrug\"",
            "[tasks]\nmax_tokens_per_s = 0",
            "[tasks]\nfee = 1",
            "db_synchronous = \"off\"",
        ] {
            assert!(
                OrchestratorConfig::from_toml(bad, &overrides(), |_| None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn asset_decimals_default_only_for_the_default_asset() {
        let decimals = |toml: &str| {
            OrchestratorConfig::from_toml(toml, &overrides(), |_| None)
                .unwrap()
                .asset_decimals
        };
        assert_eq!(decimals(""), Some(DEFAULT_ASSET_DECIMALS));
        assert_eq!(decimals("asset = \"USDC\""), Some(6));
        assert_eq!(decimals("asset = \"ETH\""), None);
        assert_eq!(decimals("asset = \"ETH\"\nasset_decimals = 18"), Some(18));
    }
}
