//! The connectivity check behind the console's **Test connection** action:
//! what the network between this computer and the license server lets
//! through, step by step, and the exact rule to ask the network team for.
//!
//! [`check`] runs, for the configured server URL:
//!
//! 1. **Resolve**: every address of the host name (an IP literal needs none).
//! 2. **Connect**: a TCP connection to each address on the port, all at once.
//!    When a proxy is in use (see [`select_proxy`]) the console never
//!    connects to the server's addresses itself, so the check connects to the
//!    proxy instead and, for https, opens the tunnel with `CONNECT`; the
//!    direct connections are not tried, because a firewall that blocks them
//!    is normal behind a proxy and would only add false alarms.
//! 3. **Tls** (https only): the handshake with the same rustls, ring provider
//!    and Mozilla roots as the client's `reqwest` (plus
//!    [`ClientConfig::extra_ca_pem`]), recording the certificate chain: an
//!    unknown issuer is reported as probable TLS inspection, with the issuer
//!    to ask the CA certificate of.
//! 4. **Metadata**: [`LicenseClient::metadata`] itself, so the verdict is the
//!    one the console would meet (issuer and endpoints checked).
//! 5. **Clock**: the server's `Date` header (read on the connection of the
//!    steps above) against this computer's clock; more than
//!    [`DEFAULT_LEEWAY_SECS`] off is a warning.
//!
//! Every step is bounded by [`STEP_TIMEOUT`] and the whole check by
//! [`CHECK_TIMEOUT`]; a step that cannot run because an earlier one failed
//! is [`StepStatus::Skipped`]. The decisions that need no network
//! ([`select_proxy`], [`rule_text`], [`summary`], the classification of
//! failures, the clock verdict) are plain functions of their inputs.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use license_core::protocol::METADATA_PATH;
pub use license_core::token::DEFAULT_LEEWAY_SECS;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::{Host, Url};

use crate::client::{ClientConfig, LicenseClient};
use crate::error::{clean, ClientError};
use crate::secret::Secret;
use crate::server_url::{parse_server_url, url_string};

/// Longest wait for one step (a DNS answer, a TCP connect, a handshake, an
/// HTTP answer).
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the whole check; later steps get what is left.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// At most this many resolved addresses are tried (and reported).
const MAX_ADDRESSES: usize = 16;
/// Largest HTTP response head read from the server or the proxy.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What a step checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Resolving the server's host name.
    Resolve,
    /// A TCP connection to one address (or to the proxy).
    Connect,
    /// The TLS handshake and the server's certificate.
    Tls,
    /// Fetching the server's metadata as the console does.
    Metadata,
    /// This computer's clock against the server's `Date`.
    Clock,
}

impl StepKind {
    /// The step's name for the table and the summary.
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Resolve => "Name resolution",
            StepKind::Connect => "Connection",
            StepKind::Tls => "Secure connection (TLS)",
            StepKind::Metadata => "License server answer",
            StepKind::Clock => "Clock",
        }
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It works.
    Ok,
    /// It works, but something needs attention.
    Warning,
    /// It does not work.
    Failed,
    /// Not tried: an earlier step failed, or it does not apply.
    Skipped,
}

/// One row of the check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// What was checked.
    pub kind: StepKind,
    /// What it was checked against: `IP:port`, `host:port`, a URL.
    pub target: String,
    /// How it went.
    pub status: StepStatus,
    /// What happened, for the person at the console.
    pub detail: String,
    /// What to do about it, when there is something to do.
    pub advice: Option<String>,
}

impl Step {
    fn new(kind: StepKind, target: impl Into<String>, status: StepStatus, detail: String) -> Step {
        Step {
            kind,
            target: target.into(),
            status,
            detail,
            advice: None,
        }
    }

    fn advise(self, advice: String) -> Step {
        Step {
            advice: Some(advice),
            ..self
        }
    }

    fn skipped(kind: StepKind, target: impl Into<String>, why: &str) -> Step {
        Step::new(kind, target, StepStatus::Skipped, why.to_owned())
    }
}

/// The proxy the console uses for the server URL, from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyInfo {
    /// The proxy URL, any user name and password replaced by `[redacted]`.
    pub url: String,
    /// The proxy's host.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// The environment variable it came from (`HTTPS_PROXY`, ...).
    pub variable: String,
    /// `Proxy-Authorization` value from the URL's credentials; never
    /// serialized, printed or reported.
    #[serde(skip)]
    authorization: Option<Secret>,
}

/// The server's certificate as the TLS step saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsInfo {
    /// The certificate's subject (RFC 4514), e.g. `CN=licenses.example.com`.
    pub subject: String,
    /// Who issued it (RFC 4514).
    pub issuer: String,
    /// When it expires (RFC 3339, UTC); empty if unreadable.
    pub not_after: String,
    /// Certificates the server sent, its own included.
    pub chain_length: usize,
    /// Whether this computer trusts it for the host (with the extra CA).
    pub trusted: bool,
    /// Whether it comes from a CA outside the public roots: a proxy or
    /// security appliance that inspects HTTPS traffic, most likely.
    pub probable_inspection: bool,
}

/// What to ask the network team to allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirewallRule {
    /// The server's host name (or IP).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Every address the name resolved to here.
    pub ips: Vec<IpAddr>,
    /// The proxy exception to ask for, when a proxy is in use.
    pub proxy_exception: Option<String>,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The server URL as checked (normalised), or as entered if invalid.
    pub server_url: String,
    /// The server's host; empty when the URL is invalid.
    pub host: String,
    /// The server's port (0 when the URL is invalid).
    pub port: u16,
    /// `https` or `http` (empty when the URL is invalid).
    pub scheme: String,
    /// The proxy in use, if any.
    pub proxy: Option<ProxyInfo>,
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The addresses the host name resolved to.
    pub addresses: Vec<IpAddr>,
    /// The server's clock minus this computer's, in seconds.
    pub clock_offset_secs: Option<i64>,
    /// The server's certificate, when a TLS handshake got that far.
    pub tls: Option<TlsInfo>,
    /// What to ask the network team for.
    pub rule: FirewallRule,
}

impl Report {
    /// The first step that failed, else the first with a warning: what to
    /// fix first.
    pub fn first_problem(&self) -> Option<&Step> {
        let with = |status| self.steps.iter().find(|s| s.status == status);
        with(StepStatus::Failed).or_else(|| with(StepStatus::Warning))
    }
}

/// Checks how far this computer gets to the license server of `config`,
/// through the proxy the console's HTTP client takes ([`proxy_of`]: the
/// desktop's settings the configuration carries, else the environment).
/// `clock` is read for the certificate's validity and when the server's
/// `Date` arrives. Never fails: every problem is a step of the report.
pub async fn check(
    config: &ClientConfig,
    clock: impl Fn() -> OffsetDateTime + Send + Sync,
) -> Report {
    check_via(config, proxy_of(config), clock).await
}

/// [`check`] with the proxy given (from [`select_proxy`]), not read from the
/// configuration. The metadata step still uses the console's own client,
/// whose proxy comes from the configuration ([`proxy_of`]).
pub async fn check_via(
    config: &ClientConfig,
    proxy: Option<ProxyInfo>,
    clock: impl Fn() -> OffsetDateTime + Send + Sync,
) -> Report {
    let budget = Budget {
        deadline: Instant::now() + CHECK_TIMEOUT,
    };
    let url = match parse_server_url(&config.server_url) {
        Ok(url) => url,
        Err(e) => return invalid_url(config, &e.to_string()),
    };
    let server = Server::of(&url);
    let Some(server) = server else {
        return invalid_url(config, "The license server URL has no host name.");
    };
    let mut steps = Vec::new();

    let (resolve, addresses) = resolve(&server, proxy.as_ref(), &budget).await;
    steps.push(resolve);

    let (connects, stream) = match &proxy {
        None => connect_direct(&server, &addresses, &budget).await,
        Some(p) => connect_proxy(&server, p, &budget).await,
    };
    steps.extend(connects);

    let mut tls = None;
    let mut server_date = None;
    let reachable = match stream {
        None => {
            steps.push(Step::skipped(
                StepKind::Tls,
                server.authority(),
                "Not tried: no connection.",
            ));
            false
        }
        Some(stream) if server.https => {
            let now = clock();
            match handshake(
                stream,
                &server,
                config.extra_ca_pem.as_deref(),
                now,
                &budget,
            )
            .await
            {
                Handshake::Done { step, info, stream } => {
                    steps.push(step);
                    tls = Some(info);
                    server_date = read_date(stream, &server, None, &budget).await;
                    true
                }
                Handshake::Failed { step, info } => {
                    steps.push(step);
                    tls = info;
                    false
                }
            }
        }
        Some(stream) => {
            steps.push(Step::skipped(
                StepKind::Tls,
                server.authority(),
                "Not used: the server URL is http://, not https://.",
            ));
            server_date = read_date(stream, &server, proxy.as_ref(), &budget).await;
            true
        }
    };
    let server_date = server_date.map(|date| (date, clock()));

    let metadata_url = format!("{}{METADATA_PATH}", url_string(&url));
    if reachable {
        steps.push(metadata(config, &metadata_url, &budget).await);
    } else {
        steps.push(Step::skipped(
            StepKind::Metadata,
            metadata_url,
            "Not tried: the server cannot be reached.",
        ));
    }

    let (clock_step, clock_offset_secs) = match server_date {
        Some((date, local)) => clock_verdict(date, local),
        None if reachable => (
            Step::skipped(
                StepKind::Clock,
                "Date header",
                "Not measured: the server's answer had no readable Date header.",
            ),
            None,
        ),
        None => (
            Step::skipped(
                StepKind::Clock,
                "Date header",
                "Not measured: no answer from the server.",
            ),
            None,
        ),
    };
    steps.push(clock_step);

    let rule = FirewallRule {
        host: server.host.clone(),
        port: server.port,
        ips: addresses.clone(),
        proxy_exception: proxy.as_ref().map(|p| proxy_exception(&server, p)),
    };
    Report {
        server_url: url_string(&url),
        host: server.host,
        port: server.port,
        scheme: url.scheme().to_owned(),
        proxy,
        steps,
        addresses,
        clock_offset_secs,
        tls,
        rule,
    }
}

/// The lines to paste into a ticket for the network team: a
/// `Component | Port | IP address` table with one line per resolved
/// address, then the proxy exception, if a proxy is in use.
pub fn rule_text(report: &Report) -> String {
    let rule = &report.rule;
    let protocol = if report.scheme == "http" {
        "HTTP"
    } else {
        "HTTPS"
    };
    let mut out = String::from("Component | Port | IP address\n");
    let ips: Vec<String> = if rule.ips.is_empty() {
        vec!["(the name does not resolve on this computer)".to_owned()]
    } else {
        rule.ips.iter().map(IpAddr::to_string).collect()
    };
    for ip in ips {
        out.push_str(&format!(
            "{} | {} ({protocol}) | {ip}\n",
            rule.host, rule.port
        ));
    }
    if let Some(exception) = &rule.proxy_exception {
        out.push_str(&format!("Proxy exception: {exception}\n"));
    }
    out
}

/// One line: what to fix or ask for first. Decided here only, from the
/// first failed step (else the first warning) and its advice.
pub fn summary(report: &Report) -> String {
    match report.first_problem() {
        None => format!(
            "The license server {} is reachable on port {}: there is nothing to ask the network \
             team for.",
            report.host, report.port
        ),
        Some(step) => {
            let what = match step.status {
                StepStatus::Warning => "needs attention",
                _ => "failed",
            };
            let todo = step.advice.as_deref().unwrap_or(&step.detail);
            format!("{} {what} ({}): {todo}", step.kind.label(), step.target)
        }
    }
}

/// The proxy the client of `config` uses: from the desktop's settings when
/// the configuration carries them, else from the environment.
pub fn proxy_of(config: &ClientConfig) -> Option<ProxyInfo> {
    match &config.desktop_proxy {
        Some(desktop) => {
            select_proxy(&config.server_url, &|name| desktop.get(name)).map(|p| ProxyInfo {
                variable: format!("{} ({})", desktop.source, p.variable),
                ..p
            })
        }
        None => select_proxy(&config.server_url, &|name| std::env::var(name).ok()),
    }
}

/// The proxy the console's client uses for `server_url`, from the
/// environment as `env` reads it: `HTTPS_PROXY`/`https_proxy` (https) or
/// `HTTP_PROXY`/`http_proxy` (http), then `ALL_PROXY`/`all_proxy`; none when
/// `NO_PROXY`/`no_proxy` covers the host, or the value is not a usable URL
/// (the client ignores it too).
pub fn select_proxy(server_url: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<ProxyInfo> {
    let url = parse_server_url(server_url).ok()?;
    let server = Server::of(&url)?;
    let read = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let no_proxy = read("NO_PROXY").or_else(|| read("no_proxy"));
    if let Some(list) = no_proxy {
        if no_proxy_covers(&list, &server.host) {
            return None;
        }
    }
    let names: [&str; 4] = if server.https {
        ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    let (variable, value) = names
        .iter()
        .find_map(|name| read(name).map(|v| (*name, v)))?;
    parse_proxy(variable, value.trim())
}

/// Whether a `NO_PROXY` list covers `host`: `*`, the host itself, a parent
/// domain (`example.com` or `.example.com`), an IP or an IP range
/// (`10.0.0.0/8`).
fn no_proxy_covers(list: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    list.split(',')
        .map(|entry| entry.trim().to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some(ip) = ip {
                return ip_matches(&entry, ip);
            }
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
}

fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    let entry = entry.trim_start_matches('[').trim_end_matches(']');
    let Some((net, bits)) = entry.split_once('/') else {
        return entry.parse::<IpAddr>().is_ok_and(|e| e == ip);
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

fn parse_proxy(variable: &str, value: &str) -> Option<ProxyInfo> {
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme).ok()?;
    let host = match url.host()? {
        Host::Domain(d) => d.to_owned(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    let port = url.port_or_known_default().unwrap_or(match url.scheme() {
        s if s.starts_with("socks") => 1080,
        _ => 80,
    });
    let authorization = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let decode = percent_decode;
        let pair = format!(
            "{}:{}",
            decode(url.username()),
            decode(url.password().unwrap_or(""))
        );
        Some(Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )))
    };
    let credentials = if authorization.is_some() {
        "[redacted]@"
    } else {
        ""
    };
    let shown_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    Some(ProxyInfo {
        url: format!("{}://{credentials}{shown_host}:{port}", url.scheme()),
        host,
        port,
        variable: variable.to_owned(),
        authorization,
    })
}

impl ProxyInfo {
    /// The proxy for reqwest: every request through it, with the
    /// credentials of its URL.
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Proxy, ClientError> {
        let scheme = self.url.split("://").next().unwrap_or("http");
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let bad = |detail: String| ClientError::InvalidInput {
            reason: format!(
                "The proxy {} ({}) cannot be used: {detail}. Use an HTTP proxy.",
                self.url, self.variable
            ),
        };
        let mut proxy = reqwest::Proxy::all(format!("{scheme}://{host}:{}", self.port))
            .map_err(|e| bad(e.to_string()))?;
        if let Some(auth) = &self.authorization {
            let value = reqwest::header::HeaderValue::from_str(auth.expose())
                .map_err(|e| bad(e.to_string()))?;
            proxy = proxy.custom_http_auth(value);
        }
        Ok(proxy)
    }
}

/// `%XX` decoding of a URL's user name or password (the `url` crate keeps
/// them encoded); invalid escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'%'), Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (Some(&b), _, _) => {
                out.push(b);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn proxy_exception(server: &Server, proxy: &ProxyInfo) -> String {
    let via = format!(
        "the proxy {}:{} ({})",
        proxy.host, proxy.port, proxy.variable
    );
    if server.https {
        format!(
            "allow CONNECT to {} through {via}, without TLS inspection",
            server.authority()
        )
    } else {
        format!("allow http://{} through {via}", server.authority())
    }
}

/// The server's host and port, from the normalised URL.
struct Server {
    host: String,
    ip: Option<IpAddr>,
    port: u16,
    https: bool,
    /// Path of the metadata document, the URL's path prefix included.
    metadata_path: String,
}

impl Server {
    fn of(url: &Url) -> Option<Server> {
        let (host, ip) = match url.host()? {
            Host::Domain(d) => (d.to_owned(), None),
            Host::Ipv4(ip) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Host::Ipv6(ip) => (ip.to_string(), Some(IpAddr::V6(ip))),
        };
        let https = url.scheme() == "https";
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let metadata_path = format!("{}{METADATA_PATH}", url.path().trim_end_matches('/'));
        Some(Server {
            host,
            ip,
            port,
            https,
            metadata_path,
        })
    }

    /// `host:port`, an IPv6 host in brackets.
    fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn invalid_url(config: &ClientConfig, message: &str) -> Report {
    let step = Step::new(
        StepKind::Resolve,
        clean(&config.server_url),
        StepStatus::Failed,
        message.to_owned(),
    )
    .advise("Correct the license server URL.".to_owned());
    Report {
        server_url: clean(&config.server_url),
        host: String::new(),
        port: 0,
        scheme: String::new(),
        proxy: None,
        steps: vec![step],
        addresses: Vec::new(),
        clock_offset_secs: None,
        tls: None,
        rule: FirewallRule {
            host: String::new(),
            port: 0,
            ips: Vec::new(),
            proxy_exception: None,
        },
    }
}

/// What is left of [`CHECK_TIMEOUT`], at most [`STEP_TIMEOUT`] per step.
struct Budget {
    deadline: Instant,
}

impl Budget {
    async fn run<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left.min(STEP_TIMEOUT), work)
            .await
            .ok()
    }
}

// --- Resolve ----------------------------------------------------------------

async fn resolve(
    server: &Server,
    proxy: Option<&ProxyInfo>,
    budget: &Budget,
) -> (Step, Vec<IpAddr>) {
    let target = server.host.clone();
    if let Some(ip) = server.ip {
        let step = Step::new(
            StepKind::Resolve,
            target,
            StepStatus::Ok,
            format!("{ip} is an IP address: there is no name to resolve."),
        );
        return (step, vec![ip]);
    }
    let lookup = budget
        .run(tokio::net::lookup_host((server.host.as_str(), server.port)))
        .await;
    let failure = match lookup {
        Some(Ok(found)) => {
            let mut seen = BTreeSet::new();
            let addresses: Vec<IpAddr> = found
                .map(|a| a.ip())
                .filter(|ip| seen.insert(*ip))
                .take(MAX_ADDRESSES)
                .collect();
            if !addresses.is_empty() {
                let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
                let step = Step::new(
                    StepKind::Resolve,
                    target,
                    StepStatus::Ok,
                    format!("{} resolves to {}.", server.host, list.join(", ")),
                );
                return (step, addresses);
            }
            ResolveFailure::NoAddress
        }
        Some(Err(e)) => ResolveFailure::Error(clean(&e.to_string())),
        None => ResolveFailure::Timeout,
    };
    (resolve_failed(&server.host, &failure, proxy), Vec::new())
}

/// Why a host name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResolveFailure {
    NoAddress,
    Error(String),
    Timeout,
}

fn resolve_failed(host: &str, failure: &ResolveFailure, proxy: Option<&ProxyInfo>) -> Step {
    let why = match failure {
        ResolveFailure::NoAddress => "the DNS answer holds no address".to_owned(),
        ResolveFailure::Error(e) => e.clone(),
        ResolveFailure::Timeout => format!("no DNS answer within {} s", STEP_TIMEOUT.as_secs()),
    };
    let detail = format!("The name {host} could not be resolved on this computer ({why}).");
    match proxy {
        // Behind a proxy the proxy resolves the name; this computer need not.
        Some(p) => Step::new(
            StepKind::Resolve,
            host,
            StepStatus::Warning,
            format!("{detail} The proxy {} resolves it for the console.", p.url),
        )
        .advise(format!(
            "If the proxy cannot reach the server either, check the server URL and ask the \
             network team whether {host} resolves on their side."
        )),
        None => Step::new(StepKind::Resolve, host, StepStatus::Failed, detail).advise(format!(
            "Check the server URL for typing errors; if it is right, ask the network team why \
             this computer's DNS does not resolve {host}."
        )),
    }
}

// --- Connect ----------------------------------------------------------------

/// Connects to every address at once; returns a step per address and the
/// first connection that worked (in address order).
async fn connect_direct(
    server: &Server,
    addresses: &[IpAddr],
    budget: &Budget,
) -> (Vec<Step>, Option<TcpStream>) {
    if addresses.is_empty() {
        let step = Step::skipped(
            StepKind::Connect,
            server.authority(),
            "Not tried: the name did not resolve.",
        );
        return (vec![step], None);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (index, ip) in addresses.iter().enumerate() {
        let addr = SocketAddr::new(*ip, server.port);
        let left = budget.deadline.saturating_duration_since(Instant::now());
        tasks.spawn(async move {
            let started = Instant::now();
            let result =
                tokio::time::timeout(left.min(STEP_TIMEOUT), TcpStream::connect(addr)).await;
            (index, addr, started.elapsed(), result)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(r) = joined {
            results.push(r);
        }
    }
    results.sort_by_key(|r| r.0);
    let mut steps = Vec::new();
    let mut first = None;
    for (_, addr, took, result) in results {
        let target = addr.to_string();
        let outcome = match result {
            Ok(Ok(stream)) => {
                if first.is_none() {
                    first = Some(stream);
                }
                steps.push(Step::new(
                    StepKind::Connect,
                    target,
                    StepStatus::Ok,
                    format!("Connected in {} ms.", took.as_millis()),
                ));
                continue;
            }
            Ok(Err(e)) => ConnectFailure::from_io(&e),
            Err(_) => ConnectFailure::Timeout,
        };
        steps.push(connect_failed(&target, &outcome, None));
    }
    (steps, first)
}

/// Why a TCP connection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ConnectFailure {
    Refused,
    Timeout,
    Unreachable,
    Other(String),
}

impl ConnectFailure {
    fn from_io(e: &std::io::Error) -> ConnectFailure {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => ConnectFailure::Refused,
            K::TimedOut => ConnectFailure::Timeout,
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                ConnectFailure::Unreachable
            }
            _ => ConnectFailure::Other(clean(&e.to_string())),
        }
    }
}

/// The step for a failed connection to `target` (`IP:port`), or to the
/// proxy when `proxy` is given.
fn connect_failed(target: &str, failure: &ConnectFailure, proxy: Option<&ProxyInfo>) -> Step {
    let detail = match failure {
        ConnectFailure::Refused => format!(
            "Connection refused: nothing accepts connections on {target}, or a firewall rejects \
             them."
        ),
        ConnectFailure::Timeout => format!(
            "No answer within {} s: a firewall probably drops the connection to {target}.",
            STEP_TIMEOUT.as_secs()
        ),
        ConnectFailure::Unreachable => {
            format!("This computer has no route to {target} (network unreachable).")
        }
        ConnectFailure::Other(e) => format!("The connection to {target} failed: {e}."),
    };
    let advice = match proxy {
        Some(p) => format!(
            "The proxy {} ({}) does not accept connections: check the proxy setting, or ask the \
             network team which proxy this computer must use.",
            p.url, p.variable
        ),
        None => format!(
            "Check that the license server is running; if it is, ask the network team for a \
             firewall rule allowing TCP from this computer to {target} (see the rule below)."
        ),
    };
    Step::new(StepKind::Connect, target, StepStatus::Failed, detail).advise(advice)
}

/// Connects to the proxy and, for https, opens the tunnel to the server.
async fn connect_proxy(
    server: &Server,
    proxy: &ProxyInfo,
    budget: &Budget,
) -> (Vec<Step>, Option<TcpStream>) {
    let target = format!("{} (proxy)", authority(&proxy.host, proxy.port));
    let connected = budget
        .run(TcpStream::connect((proxy.host.as_str(), proxy.port)))
        .await;
    let mut stream = match connected {
        Some(Ok(stream)) => stream,
        Some(Err(e)) => {
            let step = connect_failed(&target, &ConnectFailure::from_io(&e), Some(proxy));
            return (vec![step], None);
        }
        None => {
            let step = connect_failed(&target, &ConnectFailure::Timeout, Some(proxy));
            return (vec![step], None);
        }
    };
    let note = "Direct connections to the server's addresses are not tried: the console goes \
                through the proxy.";
    if !server.https {
        let step = Step::new(
            StepKind::Connect,
            target,
            StepStatus::Ok,
            format!("Connected to the proxy {}. {note}", proxy.url),
        );
        return (vec![step], Some(stream));
    }
    let answer = budget
        .run(open_tunnel(
            &mut stream,
            server,
            proxy.authorization.as_ref(),
        ))
        .await;
    let step = match answer {
        Some(Ok(())) => Step::new(
            StepKind::Connect,
            target,
            StepStatus::Ok,
            format!(
                "The proxy {} opened a tunnel to {}. {note}",
                proxy.url,
                server.authority()
            ),
        ),
        Some(Err(e)) => tunnel_failed(&target, server, proxy, &e),
        None => tunnel_failed(&target, server, proxy, &TunnelFailure::Timeout),
    };
    let ok = step.status == StepStatus::Ok;
    (vec![step], ok.then_some(stream))
}

/// Why the proxy did not open a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TunnelFailure {
    Status(u16),
    NotHttp,
    Io(String),
    Timeout,
}

async fn open_tunnel(
    stream: &mut TcpStream,
    server: &Server,
    authorization: Option<&Secret>,
) -> Result<(), TunnelFailure> {
    let target = server.authority();
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = authorization {
        request.push_str(&format!("Proxy-Authorization: {}\r\n", auth.expose()));
    }
    request.push_str("\r\n");
    let io = |e: std::io::Error| TunnelFailure::Io(clean(&e.to_string()));
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    // Byte by byte: what follows the head belongs to the TLS handshake.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < MAX_HEAD_BYTES {
        let byte = stream.read_u8().await.map_err(io)?;
        head.push(byte);
    }
    match status_code(&head) {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(TunnelFailure::Status(code)),
        None => Err(TunnelFailure::NotHttp),
    }
}

fn tunnel_failed(
    target: &str,
    server: &Server,
    proxy: &ProxyInfo,
    failure: &TunnelFailure,
) -> Step {
    let to = server.authority();
    let ask = format!(
        "Ask the network team for a proxy exception allowing CONNECT to {to} through {}.",
        proxy.url
    );
    let (detail, advice) = match failure {
        TunnelFailure::Status(407) => (
            format!(
                "The proxy {} asks for a user name and password (HTTP 407).",
                proxy.url
            ),
            format!(
                "Put the proxy user name and password in {} (http://user:password@proxy:port), \
                 or {}",
                proxy.variable,
                ask.to_lowercase()
            ),
        ),
        TunnelFailure::Status(code) => (
            format!(
                "The proxy {} refused the tunnel to {to} (HTTP {code}).",
                proxy.url
            ),
            ask,
        ),
        TunnelFailure::NotHttp => (
            format!("The proxy {} did not answer as an HTTP proxy.", proxy.url),
            format!("Check the proxy setting in {}.", proxy.variable),
        ),
        TunnelFailure::Io(e) => (
            format!("The proxy {} closed the connection: {e}.", proxy.url),
            ask,
        ),
        TunnelFailure::Timeout => (
            format!(
                "The proxy {} did not open the tunnel to {to} within {} s.",
                proxy.url,
                STEP_TIMEOUT.as_secs()
            ),
            ask,
        ),
    };
    Step::new(StepKind::Connect, target, StepStatus::Failed, detail).advise(advice)
}

/// The status code of an HTTP/1.x response head.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

// --- TLS --------------------------------------------------------------------

enum Handshake {
    Done {
        step: Step,
        info: TlsInfo,
        stream: Box<tokio_rustls::client::TlsStream<TcpStream>>,
    },
    Failed {
        step: Step,
        info: Option<TlsInfo>,
    },
}

/// Why the TLS step failed, from rustls's error.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TlsFailure {
    UnknownIssuer,
    Expired,
    NotValidYet,
    WrongName,
    BadCertificate(String),
    /// The extra CA certificate from the settings is unreadable.
    BadExtraCa(String),
    /// No TLS at all: the port speaks something else, or the connection
    /// was cut.
    Handshake(String),
    Timeout,
}

impl TlsFailure {
    fn from_rustls(e: &rustls::Error) -> TlsFailure {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::NotValidYet
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::WrongName,
                other => TlsFailure::BadCertificate(clean(&format!("{other:?}"))),
            },
            other => TlsFailure::Handshake(clean(&other.to_string())),
        }
    }

    fn from_io(e: &std::io::Error) -> TlsFailure {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => TlsFailure::from_rustls(tls),
            None => TlsFailure::Handshake(match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    "the connection was closed during the handshake".to_owned()
                }
                _ => clean(&e.to_string()),
            }),
        }
    }
}

/// The TLS step's verdict: status, detail and advice, from the failure (if
/// any) and the server's certificate as read.
fn tls_step(
    host: &str,
    target: &str,
    failure: Option<&TlsFailure>,
    cert: Option<&TlsInfo>,
) -> Step {
    let issuer = cert.map_or("an unknown issuer", |c| c.issuer.as_str());
    let Some(failure) = failure else {
        let (subject, not_after) =
            cert.map_or(("?", "?"), |c| (c.subject.as_str(), c.not_after.as_str()));
        let mut detail = format!(
            "Trusted certificate for {subject}, issued by {issuer}, valid until {not_after}."
        );
        if cert.is_some_and(|c| c.probable_inspection) {
            detail.push_str(
                " It is trusted through the extra CA certificate from the settings: a proxy \
                 inspects HTTPS traffic on this network.",
            );
        }
        return Step::new(StepKind::Tls, target, StepStatus::Ok, detail);
    };
    let failed = |detail: String, advice: String| {
        Step::new(StepKind::Tls, target, StepStatus::Failed, detail).advise(advice)
    };
    match failure {
        TlsFailure::UnknownIssuer => failed(
            format!(
                "The certificate presented for {host} was issued by \"{issuer}\", which this \
                 computer does not trust: a proxy or security appliance probably inspects HTTPS \
                 traffic."
            ),
            format!(
                "Ask the network team for the CA certificate of \"{issuer}\" (PEM) and add it as \
                 the extra CA certificate (the console: start it with \
                 LICENSE_CONSOLE_EXTRA_CA=/path/to/ca.pem), or ask for an exception so that \
                 {host} is not inspected."
            ),
        ),
        TlsFailure::Expired => failed(
            format!(
                "The server's certificate expired on {}.",
                cert.map_or("an unknown date", |c| c.not_after.as_str())
            ),
            "Ask the license server's administrator to renew its certificate; if the date is \
             wrong, set this computer's clock right."
                .to_owned(),
        ),
        TlsFailure::NotValidYet => failed(
            "The server's certificate is not valid yet by this computer's clock.".to_owned(),
            "Set this computer's date and time right (or turn on network time).".to_owned(),
        ),
        TlsFailure::WrongName => failed(
            format!(
                "The certificate presented is for {}, not for {host}.",
                cert.map_or("another name", |c| c.subject.as_str())
            ),
            format!(
                "Check that the server URL uses the name on the server's certificate; if it \
                 does, something on the network answers in the server's place: ask the network \
                 team about {host}."
            ),
        ),
        TlsFailure::BadCertificate(why) => failed(
            format!("The server's certificate cannot be accepted ({why})."),
            "Ask the license server's administrator to check its certificate.".to_owned(),
        ),
        TlsFailure::BadExtraCa(why) => failed(
            format!("The extra CA certificate cannot be read ({why})."),
            "Use a PEM file starting with -----BEGIN CERTIFICATE-----.".to_owned(),
        ),
        TlsFailure::Handshake(why) => failed(
            format!("No secure connection could be set up with {target} ({why})."),
            format!(
                "Check that the URL's scheme and port are right (the server may not speak HTTPS \
                 on this port); if they are, ask the network team whether something cuts HTTPS \
                 connections to {host}."
            ),
        ),
        TlsFailure::Timeout => failed(
            format!(
                "The TLS handshake did not finish within {} s.",
                STEP_TIMEOUT.as_secs()
            ),
            format!("Ask the network team whether something holds up HTTPS connections to {host}."),
        ),
    }
}

async fn handshake(
    stream: TcpStream,
    server: &Server,
    extra_ca_pem: Option<&[u8]>,
    now: OffsetDateTime,
    budget: &Budget,
) -> Handshake {
    let target = server.authority();
    let fail = |failure: TlsFailure, info: Option<TlsInfo>| Handshake::Failed {
        step: tls_step(&server.host, &target, Some(&failure), info.as_ref()),
        info,
    };
    let recorder = match Recorder::new(extra_ca_pem, now) {
        Ok(r) => Arc::new(r),
        Err(failure) => return fail(failure, None),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth(),
        Err(e) => return fail(TlsFailure::Handshake(clean(&e.to_string())), None),
    };
    let mut config = config;
    // The Date probe speaks HTTP/1.1 on this connection.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = match ServerName::try_from(server.host.clone()) {
        Ok(name) => name,
        Err(e) => return fail(TlsFailure::Handshake(clean(&e.to_string())), None),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = budget.run(connector.connect(name, stream)).await;
    let info = recorder.info();
    match result {
        Some(Ok(stream)) => Handshake::Done {
            step: tls_step(&server.host, &target, None, info.as_ref()),
            info: info.unwrap_or_else(|| TlsInfo {
                subject: String::new(),
                issuer: String::new(),
                not_after: String::new(),
                chain_length: 0,
                trusted: true,
                probable_inspection: false,
            }),
            stream: Box::new(stream),
        },
        Some(Err(e)) => fail(TlsFailure::from_io(&e), info),
        None => fail(TlsFailure::Timeout, info),
    }
}

/// Verifies the server's chain exactly as webpki does for the client (the
/// Mozilla roots plus the extra CA), at the check's `now`, and keeps what it
/// saw for the report. It never accepts what the inner verifier refuses.
#[derive(Debug)]
struct Recorder {
    verifier: Arc<WebPkiServerVerifier>,
    /// The public roots alone, when an extra CA is configured: tells
    /// whether the chain needs it (TLS inspection).
    public: Option<Arc<WebPkiServerVerifier>>,
    now: UnixTime,
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    trusted: bool,
    needs_extra_ca: bool,
}

impl Recorder {
    fn new(extra_ca_pem: Option<&[u8]>, now: OffsetDateTime) -> Result<Recorder, TlsFailure> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let public_roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let build = |roots: RootCertStore| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| TlsFailure::BadExtraCa(clean(&e.to_string())))
        };
        let mut roots = public_roots.clone();
        let public = match extra_ca_pem {
            None => None,
            Some(pem) => {
                let mut added = 0;
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| TlsFailure::BadExtraCa(clean(&e.to_string())))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsFailure::BadExtraCa(clean(&e.to_string())))?;
                    added += 1;
                }
                if added == 0 {
                    return Err(TlsFailure::BadExtraCa("no certificate found".to_owned()));
                }
                Some(build(public_roots)?)
            }
        };
        let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        Ok(Recorder {
            verifier: build(roots)?,
            public,
            now: UnixTime::since_unix_epoch(Duration::from_secs(secs)),
            seen: Mutex::new(Seen::default()),
        })
    }

    fn info(&self) -> Option<TlsInfo> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let leaf = seen.chain.first()?;
        let (subject, issuer, not_after) = describe_certificate(leaf).unwrap_or_else(|| {
            (
                "(unreadable)".to_owned(),
                "(unreadable)".to_owned(),
                String::new(),
            )
        });
        Some(TlsInfo {
            subject,
            issuer,
            not_after,
            chain_length: seen.chain.len(),
            trusted: seen.trusted,
            probable_inspection: seen.needs_extra_ca,
        })
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            self.now,
        );
        let needs_extra_ca = verdict.is_ok()
            && self.public.as_ref().is_some_and(|public| {
                matches!(
                    public.verify_server_cert(
                        end_entity,
                        intermediates,
                        server_name,
                        ocsp_response,
                        self.now
                    ),
                    Err(rustls::Error::InvalidCertificate(
                        CertificateError::UnknownIssuer
                    ))
                )
            });
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        seen.trusted = verdict.is_ok();
        // Unknown issuer: inspection, most likely; expired or wrong name
        // from a public CA is not.
        seen.needs_extra_ca = needs_extra_ca
            || matches!(
                verdict,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer
                ))
            );
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// Subject, issuer and expiry (RFC 3339) of a DER certificate.
fn describe_certificate(der: &[u8]) -> Option<(String, String, String)> {
    use x509_cert::der::Decode as _;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = &cert.tbs_certificate;
    let secs = i64::try_from(tbs.validity.not_after.to_unix_duration().as_secs()).ok()?;
    let not_after = OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .map(rfc3339)
        .unwrap_or_default();
    Some((
        clean(&tbs.subject.to_string()),
        clean(&tbs.issuer.to_string()),
        not_after,
    ))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// --- Metadata and clock -----------------------------------------------------

async fn metadata(config: &ClientConfig, url: &str, budget: &Budget) -> Step {
    let left = budget
        .deadline
        .saturating_duration_since(Instant::now())
        .min(STEP_TIMEOUT);
    let config = ClientConfig {
        connect_timeout: left,
        request_timeout: left,
        dpop_key: None,
        ..config.clone()
    };
    let result = match LicenseClient::new(config) {
        Ok(client) => budget.run(client.metadata()).await,
        Err(e) => Some(Err(e)),
    };
    match result {
        Some(Ok(m)) => Step::new(
            StepKind::Metadata,
            url,
            StepStatus::Ok,
            format!("The license server {} answered.", clean(&m.issuer)),
        ),
        Some(Err(e)) => Step::new(StepKind::Metadata, url, StepStatus::Failed, e.to_string()),
        None => Step::new(
            StepKind::Metadata,
            url,
            StepStatus::Failed,
            format!("No answer within {} s.", STEP_TIMEOUT.as_secs()),
        )
        .advise("The server accepts connections but does not answer: ask its administrator whether it is overloaded.".to_owned()),
    }
}

/// Asks for the metadata on `stream` (through the proxy for plain http when
/// `proxy` is given) and returns the answer's `Date`, if readable.
async fn read_date<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    server: &Server,
    proxy: Option<&ProxyInfo>,
    budget: &Budget,
) -> Option<OffsetDateTime> {
    let host = if (server.https && server.port == 443) || (!server.https && server.port == 80) {
        server.host.clone()
    } else {
        server.authority()
    };
    let target = match proxy {
        Some(_) => format!("http://{host}{}", server.metadata_path),
        None => server.metadata_path.clone(),
    };
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(auth) = proxy.and_then(|p| p.authorization.as_ref()) {
        request.push_str(&format!("Proxy-Authorization: {}\r\n", auth.expose()));
    }
    request.push_str("\r\n");
    let head = budget
        .run(async {
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD_BYTES {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
                }
            }
            Some(head)
        })
        .await
        .flatten()?;
    date_header(&head)
}

/// The `Date` of an HTTP/1.x response head.
fn date_header(head: &[u8]) -> Option<OffsetDateTime> {
    status_code(head)?;
    let text = String::from_utf8_lossy(head);
    let value = text
        .split("\r\n")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("date")
                .then(|| value.trim())
        })?;
    let date = httpdate::parse_http_date(value).ok()?;
    Some(OffsetDateTime::from(date))
}

/// The clock step: the server's `Date` against this computer's clock when
/// it arrived.
fn clock_verdict(server: OffsetDateTime, local: OffsetDateTime) -> (Step, Option<i64>) {
    let offset = (server - local).whole_seconds();
    let target = "Date header";
    let step = if offset.abs() <= DEFAULT_LEEWAY_SECS {
        Step::new(
            StepKind::Clock,
            target,
            StepStatus::Ok,
            format!(
                "This computer's clock is within {} s of the server's.",
                offset.abs().max(1)
            ),
        )
    } else {
        let way = if offset > 0 { "behind" } else { "ahead of" };
        Step::new(
            StepKind::Clock,
            target,
            StepStatus::Warning,
            format!(
                "This computer's clock is {} {way} the server's (server time {}).",
                span(offset.unsigned_abs()),
                rfc3339(server)
            ),
        )
        .advise(format!(
            "Set this computer's date and time right (or turn on network time): license checks \
             tolerate only {DEFAULT_LEEWAY_SECS} s of difference."
        ))
    };
    (step, Some(offset))
}

/// "90 s", "12 min", "5 h", "3 days", rounded to the nearest unit (the
/// `Date` header has whole seconds, and the answer takes some time).
fn span(secs: u64) -> String {
    let round = |unit: u64| secs.saturating_add(unit / 2) / unit;
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", round(60)),
        s if s < 172_800 => format!("{} h", round(3600)),
        _ => format!("{} days", round(86_400)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn the_proxy_follows_the_scheme_and_its_credentials_are_redacted() {
        let vars = env(&[
            ("HTTPS_PROXY", "http://alice:s3cr%40t@proxy.corp:3128"),
            ("HTTP_PROXY", "http://plain.corp:8080"),
        ]);
        let p = select_proxy("https://licenses.example.com", &vars).unwrap();
        assert_eq!(p.url, "http://[redacted]@proxy.corp:3128");
        assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
        assert_eq!(p.variable, "HTTPS_PROXY");
        let auth = p.authorization.as_ref().unwrap().expose().to_owned();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(decoded, b"alice:s3cr@t");
        for shown in [format!("{p:?}"), serde_json::to_string(&p).unwrap()] {
            assert!(
                !shown.contains("s3cr") && !shown.contains("alice"),
                "{shown}"
            );
        }
        let p = select_proxy("http://licenses.example.com", &vars).unwrap();
        assert_eq!(p.url, "http://plain.corp:8080");
        assert!(p.authorization.is_none());
    }

    #[test]
    fn lower_case_and_all_proxy_are_fallbacks_and_no_scheme_means_http() {
        let p = select_proxy("https://h.example", &env(&[("https_proxy", "proxy:3128")])).unwrap();
        assert_eq!(
            (p.url.as_str(), p.variable.as_str()),
            ("http://proxy:3128", "https_proxy")
        );
        let p = select_proxy("https://h.example", &env(&[("ALL_PROXY", "http://all:1")])).unwrap();
        assert_eq!(p.variable, "ALL_PROXY");
        assert!(select_proxy("https://h.example", &env(&[("HTTP_PROXY", "http://p:1")])).is_none());
        assert!(select_proxy("https://h.example", &env(&[("HTTPS_PROXY", "  ")])).is_none());
        assert!(select_proxy("https://h.example", &env(&[])).is_none());
        assert!(select_proxy("not a url", &env(&[("HTTPS_PROXY", "http://p:1")])).is_none());
    }

    #[test]
    fn no_proxy_turns_the_proxy_off_for_the_hosts_it_covers() {
        let with = |no_proxy: &str, url: &str| {
            select_proxy(
                url,
                &env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", no_proxy)]),
            )
        };
        assert!(with("licenses.example.com", "https://licenses.example.com").is_none());
        assert!(with(".example.com", "https://licenses.example.com").is_none());
        assert!(with("example.com", "https://licenses.example.com").is_none());
        assert!(with("localhost, *", "https://licenses.example.com").is_none());
        assert!(with("10.0.0.0/8", "https://10.1.2.3").is_none());
        assert!(with("127.0.0.1", "https://127.0.0.1:8443").is_none());
        assert!(with("otherexample.com", "https://example.com").is_some());
        assert!(with("ample.com", "https://example.com").is_some());
        assert!(with("10.0.0.0/8", "https://11.1.2.3").is_some());
        assert!(with("10.0.0.0/99,garbage/,/", "https://10.1.2.3").is_some());
        let lower = env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "example.com")]);
        assert!(select_proxy("https://example.com", &lower).is_none());
    }

    fn report(ips: &[&str], proxy: Option<ProxyInfo>, steps: Vec<Step>) -> Report {
        let server = Server::of(&Url::parse("https://one.xopero.com").unwrap()).unwrap();
        let ips: Vec<IpAddr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        Report {
            server_url: "https://one.xopero.com".into(),
            host: server.host.clone(),
            port: server.port,
            scheme: "https".into(),
            rule: FirewallRule {
                host: server.host.clone(),
                port: server.port,
                ips: ips.clone(),
                proxy_exception: proxy.as_ref().map(|p| proxy_exception(&server, p)),
            },
            proxy,
            steps,
            addresses: ips,
            clock_offset_secs: None,
            tls: None,
        }
    }

    #[test]
    fn the_rule_text_is_a_table_line_per_address_then_the_proxy_exception() {
        let r = report(&["213.222.221.126", "2001:db8::1"], None, vec![]);
        assert_eq!(
            rule_text(&r),
            "Component | Port | IP address\n\
             one.xopero.com | 443 (HTTPS) | 213.222.221.126\n\
             one.xopero.com | 443 (HTTPS) | 2001:db8::1\n"
        );
        let proxy = select_proxy(
            "https://one.xopero.com",
            &env(&[("HTTPS_PROXY", "http://bob:pw@proxy.corp:3128")]),
        );
        let text = rule_text(&report(&[], proxy, vec![]));
        assert_eq!(
            text,
            "Component | Port | IP address\n\
             one.xopero.com | 443 (HTTPS) | (the name does not resolve on this computer)\n\
             Proxy exception: allow CONNECT to one.xopero.com:443 through the proxy \
             proxy.corp:3128 (HTTPS_PROXY), without TLS inspection\n"
        );
        assert!(!text.contains("pw"));
    }

    fn step(kind: StepKind, status: StepStatus, advice: Option<&str>) -> Step {
        Step {
            kind,
            target: "t".into(),
            status,
            detail: format!("{kind:?} detail"),
            advice: advice.map(str::to_owned),
        }
    }

    #[test]
    fn the_summary_names_the_first_failure_before_any_warning() {
        use StepKind as K;
        use StepStatus as S;
        let ok = report(
            &["1.2.3.4"],
            None,
            vec![
                step(K::Resolve, S::Ok, None),
                step(K::Tls, S::Skipped, None),
            ],
        );
        assert!(summary(&ok).contains("nothing to ask"), "{}", summary(&ok));
        let r = report(
            &["1.2.3.4"],
            None,
            vec![
                step(K::Resolve, S::Warning, Some("resolve advice")),
                step(K::Connect, S::Failed, Some("ask for a firewall rule")),
                step(K::Clock, S::Failed, None),
            ],
        );
        assert_eq!(
            summary(&r),
            "Connection failed (t): ask for a firewall rule"
        );
        let r = report(&[], None, vec![step(K::Clock, S::Warning, None)]);
        assert_eq!(summary(&r), "Clock needs attention (t): Clock detail");
    }

    #[test]
    fn an_unknown_issuer_is_probable_inspection_with_the_ca_to_add() {
        let cert = TlsInfo {
            subject: "CN=one.xopero.com".into(),
            issuer: "CN=Corp Inspection CA".into(),
            not_after: "2030-01-01T00:00:00Z".into(),
            chain_length: 2,
            trusted: false,
            probable_inspection: true,
        };
        let failure = TlsFailure::from_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert_eq!(failure, TlsFailure::UnknownIssuer);
        let s = tls_step(
            "one.xopero.com",
            "one.xopero.com:443",
            Some(&failure),
            Some(&cert),
        );
        assert_eq!(s.status, StepStatus::Failed);
        assert!(s.detail.contains("inspects HTTPS"), "{}", s.detail);
        let advice = s.advice.unwrap();
        assert!(
            advice.contains("CN=Corp Inspection CA") && advice.contains("LICENSE_CONSOLE_EXTRA_CA"),
            "{advice}"
        );

        let expired = TlsFailure::from_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::Expired,
        ));
        let s = tls_step("h", "h:443", Some(&expired), Some(&cert));
        assert!(
            s.detail.contains("expired on 2030-01-01T00:00:00Z"),
            "{}",
            s.detail
        );
        let name = TlsFailure::from_rustls(&rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        let s = tls_step("h", "h:443", Some(&name), Some(&cert));
        assert_eq!(s.status, StepStatus::Failed);
        assert!(
            s.detail.contains("is for CN=one.xopero.com, not for h"),
            "{}",
            s.detail
        );
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(TlsFailure::from_io(&io), TlsFailure::UnknownIssuer);
    }

    #[test]
    fn refused_and_dropped_connections_point_at_the_firewall_and_the_server() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let s = connect_failed("1.2.3.4:443", &ConnectFailure::from_io(&refused), None);
        assert!(s.detail.contains("Connection refused"), "{}", s.detail);
        let advice = s.advice.unwrap();
        assert!(
            advice.contains("firewall rule") && advice.contains("running"),
            "{advice}"
        );
        let s = connect_failed("1.2.3.4:443", &ConnectFailure::Timeout, None);
        assert!(s.detail.contains("drops"), "{}", s.detail);
    }

    #[test]
    fn the_clock_warns_beyond_the_leeway_only() {
        let local = time::macros::datetime!(2026-01-01 12:00:00 UTC);
        let at = |secs: i64| local + time::Duration::seconds(secs);
        for (offset, status) in [
            (0, StepStatus::Ok),
            (DEFAULT_LEEWAY_SECS, StepStatus::Ok),
            (-DEFAULT_LEEWAY_SECS, StepStatus::Ok),
            (DEFAULT_LEEWAY_SECS + 1, StepStatus::Warning),
            (-DEFAULT_LEEWAY_SECS - 1, StepStatus::Warning),
        ] {
            let (step, got) = clock_verdict(at(offset), local);
            assert_eq!((step.status, got), (status, Some(offset)), "{offset}");
        }
        let (step, _) = clock_verdict(at(600), local);
        assert!(step.detail.contains("10 min behind"), "{}", step.detail);
        let (step, _) = clock_verdict(at(-599), local);
        assert!(step.detail.contains("10 min ahead of"), "{}", step.detail);
        assert_eq!(span(u64::MAX), format!("{} days", u64::MAX / 86_400));
        assert!(step.advice.unwrap().contains("60 s"));
    }

    #[test]
    fn the_date_comes_from_a_response_head_only() {
        let head =
            b"HTTP/1.1 200 OK\r\nContent-Type: x\r\ndate: Thu, 01 Jan 2026 12:00:00 GMT\r\n\r\n";
        assert_eq!(
            date_header(head),
            Some(time::macros::datetime!(2026-01-01 12:00:00 UTC))
        );
        assert_eq!(
            date_header(b"SSH-2.0-OpenSSH\r\nDate: Thu, 01 Jan 2026 12:00:00 GMT\r\n\r\n"),
            None
        );
        assert_eq!(
            date_header(b"HTTP/1.1 200 OK\r\nDate: yesterday\r\n\r\n"),
            None
        );
        assert_eq!(
            date_header(b"HTTP/1.1 200 OK\r\n\r\nDate: Thu, 01 Jan 2026 12:00:00 GMT"),
            None
        );
        assert_eq!(date_header(&[0xff, 0xfe, b'\n']), None);
        assert_eq!(
            status_code(b"HTTP/1.1 407 Proxy Authentication Required\r\n"),
            Some(407)
        );
        assert_eq!(status_code(b"HTTP/1.0 200\r\n"), Some(200));
        assert_eq!(status_code(b"garbage"), None);
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%40b%zz%4"), "a@b%zz%4");
    }
}
