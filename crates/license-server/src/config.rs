//! Server configuration: flags with environment fallbacks.

use crate::store::Location;
use std::net::SocketAddr;

use license_core::model::Policy;

/// Flags of `serve` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// The database: an SQLite file (created if missing) or a
    /// `postgres://` URL.
    #[arg(long, env = "LICENSE_SERVER_DB")]
    pub db: Location,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LICENSE_SERVER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Public base URL (the `iss` of every token). Defaults to http://<bound address>.
    #[arg(long, env = "LICENSE_SERVER_ISSUER")]
    pub issuer: Option<String>,
    /// Lifetime of a license token (access token).
    #[arg(long, env = "LICENSE_SERVER_TOKEN_TTL_SECS", default_value_t = 259_200)]
    pub token_ttl_secs: u64,
    /// Lifetime of a refresh token (each rotation starts a new one).
    #[arg(
        long,
        env = "LICENSE_SERVER_REFRESH_TOKEN_TTL_SECS",
        default_value_t = 7_776_000
    )]
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of a device code / user code.
    #[arg(
        long,
        env = "LICENSE_SERVER_DEVICE_CODE_TTL_SECS",
        default_value_t = 900
    )]
    pub device_code_ttl_secs: u64,
    /// Minimum polling interval of the token endpoint.
    #[arg(long, env = "LICENSE_SERVER_POLL_INTERVAL_SECS", default_value_t = 5)]
    pub poll_interval_secs: u64,
    /// A reverse proxy in front of the server (repeatable): for requests
    /// from these addresses, rate limits apply to the client address in
    /// `X-Forwarded-For` instead (its last entry not itself a trusted proxy).
    #[arg(
        long = "trusted-proxy",
        env = "LICENSE_SERVER_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Device authorizations one client address may start per 15 minutes
    /// (each is a device code kept until it expires). Raise it for a load
    /// test from one address.
    #[arg(
        long,
        env = "LICENSE_SERVER_DEVICE_AUTHORIZATIONS_PER_ADDRESS",
        default_value_t = 100
    )]
    pub device_authorizations_per_address: u32,
    /// How long a refresh token of an unbound (bearer) chain may be presented
    /// again after its exchange and get the same pair (a lost response).
    /// Chains bound to a DPoP key have no such limit.
    #[arg(
        long,
        env = "LICENSE_SERVER_REFRESH_RETRY_WINDOW_SECS",
        default_value_t = 120
    )]
    pub refresh_retry_window_secs: u64,
    /// Refuse token requests without a DPoP proof (RFC 9449): every new
    /// token chain is then bound to its client's key. Without it, a client
    /// that sends no proof gets bearer tokens (the console always sends one).
    #[arg(long, env = "LICENSE_SERVER_REQUIRE_DPOP")]
    pub require_dpop: bool,
    /// Ask every DPoP proof for a fresh server nonce (`DPoP-Nonce`), not
    /// only those whose `iat` is off by more than 5 minutes.
    #[arg(long, env = "LICENSE_SERVER_DPOP_NONCE")]
    pub dpop_nonce: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Serve Prometheus metrics at `/metrics` on this address (keep it
    /// private: it is not authenticated). Off unless set.
    #[arg(long, env = "LICENSE_SERVER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// The policy sent to consoles in every license document: flags of
/// `serve`, `demo` and `offline respond`.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Policy sent to consoles: how often to refresh the license.
    #[arg(
        long,
        env = "LICENSE_SERVER_POLICY_REFRESH_INTERVAL_SECS",
        default_value_t = 86_400
    )]
    pub policy_refresh_interval_secs: u64,
    /// Policy sent to consoles: how long to keep working without verification.
    #[arg(
        long,
        env = "LICENSE_SERVER_POLICY_GRACE_PERIOD_SECS",
        default_value_t = 259_200
    )]
    pub policy_grace_period_secs: u64,
    /// Policy sent to consoles: warn this many days before the renewal date.
    #[arg(
        long,
        env = "LICENSE_SERVER_POLICY_RENEWAL_WARNING_DAYS",
        default_value_t = 30
    )]
    pub policy_renewal_warning_days: u32,
}

impl PolicyArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            refresh_interval_secs: self.policy_refresh_interval_secs,
            grace_period_secs: self.policy_grace_period_secs,
            renewal_warning_days: self.policy_renewal_warning_days,
            ..Policy::default()
        }
    }
}

/// What `offline respond` and `offline deactivate` need of the server's
/// configuration, from the same flags and environment as `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct OfflineArgs {
    /// The database: an SQLite file or a `postgres://` URL.
    #[arg(long, env = "LICENSE_SERVER_DB")]
    pub db: Location,
    /// The server's public base URL, as `serve --issuer` has it: requests
    /// are made for it, and responses signed as it.
    #[arg(long, env = "LICENSE_SERVER_ISSUER")]
    pub issuer: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

impl OfflineArgs {
    pub fn config(&self) -> Config {
        Config {
            policy: self.policy.policy(),
            ..Config::new(&self.issuer)
        }
    }
}

/// Runtime configuration, resolved once the listener is bound.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL without trailing slash.
    pub issuer: String,
    pub token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub device_code_ttl_secs: i64,
    pub poll_interval_secs: i64,
    /// Device authorizations one client address may start per 15 minutes.
    pub device_authorizations_per_address: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A client must send a request's headers within this time (slowloris).
    pub header_read_timeout: std::time::Duration,
    /// A client that lost a refresh response may retry with the previous
    /// refresh token this long and receives the same new pair.
    pub refresh_retry_window_secs: i64,
    /// Token requests need a DPoP proof.
    pub require_dpop: bool,
    /// Every DPoP proof needs a server nonce.
    pub dpop_nonce: bool,
    pub policy: Policy,
}

impl Config {
    /// Defaults for `issuer` (tests and embedding).
    pub fn new(issuer: impl Into<String>) -> Config {
        Config {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            token_ttl_secs: 259_200,
            refresh_token_ttl_secs: 7_776_000,
            device_code_ttl_secs: 900,
            poll_interval_secs: 5,
            device_authorizations_per_address: 100,
            trusted_proxies: Vec::new(),
            header_read_timeout: std::time::Duration::from_secs(10),
            refresh_retry_window_secs: 120,
            require_dpop: false,
            dpop_nonce: false,
            policy: Policy::default(),
        }
    }

    pub fn from_args(args: &ServeArgs, bound: SocketAddr) -> Config {
        let issuer = args
            .issuer
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        let policy = args.policy.policy();
        Config {
            token_ttl_secs: clamp(args.token_ttl_secs),
            refresh_token_ttl_secs: clamp(args.refresh_token_ttl_secs),
            device_code_ttl_secs: clamp(args.device_code_ttl_secs),
            poll_interval_secs: clamp(args.poll_interval_secs),
            device_authorizations_per_address: args.device_authorizations_per_address.max(1),
            trusted_proxies: args.trusted_proxies.clone(),
            refresh_retry_window_secs: clamp(args.refresh_retry_window_secs),
            require_dpop: args.require_dpop,
            dpop_nonce: args.dpop_nonce,
            policy,
            ..Config::new(issuer)
        }
    }

    /// Cookies get `Secure` when the server is reached over https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / 4).max(1)
}
