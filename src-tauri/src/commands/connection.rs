//! **Test connection**: the connectivity check of `license_client` as the
//! Not licensed screen, the panel and Settings show it. The check decides
//! everything (steps, verdicts, advice, the rule, the summary); this module
//! only mirrors its report as a DTO the UI's types are generated from.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use license_client::connectivity::{self, Report, Step, StepKind, StepStatus};
use serde::Serialize;
use tauri::State;

use crate::error::CommandError;
use crate::licensing::{Licensing, EXTRA_CA_VAR};

/// What a step of the check checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStepKind {
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

impl From<StepKind> for ConnectionStepKind {
    fn from(kind: StepKind) -> Self {
        match kind {
            StepKind::Resolve => Self::Resolve,
            StepKind::Connect => Self::Connect,
            StepKind::Tls => Self::Tls,
            StepKind::Metadata => Self::Metadata,
            StepKind::Clock => Self::Clock,
        }
    }
}

/// How a step (or the whole check) went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStepStatus {
    /// It works.
    Ok,
    /// It works, but something needs attention.
    Warning,
    /// It does not work.
    Failed,
    /// Not tried: an earlier step failed, or it does not apply.
    Skipped,
}

impl From<StepStatus> for ConnectionStepStatus {
    fn from(status: StepStatus) -> Self {
        match status {
            StepStatus::Ok => Self::Ok,
            StepStatus::Warning => Self::Warning,
            StepStatus::Failed => Self::Failed,
            StepStatus::Skipped => Self::Skipped,
        }
    }
}

/// One row of the table: Component | Port | IP address | Status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStepRow {
    /// What was checked.
    pub kind: ConnectionStepKind,
    /// The step's name ("Name resolution", "Connection", ...).
    pub label: String,
    /// What it was checked against: `IP:port`, `host:port`, a URL.
    pub target: String,
    /// The port, with its protocol ("443 (HTTPS)"), when the step has one.
    pub port: Option<String>,
    /// The addresses the step concerns: the one connected to, or every
    /// address the name resolved to.
    pub ips: Vec<String>,
    /// How it went.
    pub status: ConnectionStepStatus,
    /// What happened.
    pub detail: String,
    /// What to do about it, when there is something to do.
    pub advice: Option<String>,
}

/// The proxy the console uses for the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionProxy {
    /// The proxy URL, any credentials replaced by `[redacted]`.
    pub url: String,
    /// The proxy's host.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// The environment variable it came from (`HTTPS_PROXY`, ...).
    pub variable: String,
}

/// The server's certificate as the TLS step saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTls {
    /// The certificate's subject (RFC 4514).
    pub subject: String,
    /// Who issued it (RFC 4514).
    pub issuer: String,
    /// When it expires (RFC 3339, UTC); empty if unreadable.
    pub not_after: String,
    /// Certificates the server sent, its own included.
    pub chain_length: u32,
    /// Whether this computer trusts it for the host.
    pub trusted: bool,
    /// Whether it comes from a CA outside the public roots: probably a
    /// proxy that inspects HTTPS traffic.
    pub probable_inspection: bool,
    /// How to make the console trust that CA, when it is not trusted yet.
    pub inspection_advice: Option<String>,
}

/// What to ask the network team to allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRule {
    /// The server's host name (or IP).
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Every address the name resolved to here.
    pub ips: Vec<String>,
    /// The proxy exception to ask for, when a proxy is in use.
    pub proxy_exception: Option<String>,
}

/// The result of **Test connection**.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct ConnectionReportView {
    /// The server URL as checked.
    pub server_url: String,
    /// The server's host; empty when the URL is invalid.
    pub host: String,
    /// The server's port (0 when the URL is invalid).
    pub port: u16,
    /// `https` or `http` (empty when the URL is invalid).
    pub scheme: String,
    /// The worst status of any step (skipped steps aside).
    pub outcome: ConnectionStepStatus,
    /// One line: what to fix or ask for first.
    pub summary: String,
    /// The proxy in use, if any.
    pub proxy: Option<ConnectionProxy>,
    /// Every step, in order.
    pub steps: Vec<ConnectionStepRow>,
    /// The addresses the host name resolved to.
    pub addresses: Vec<String>,
    /// The server's clock minus this computer's, in seconds (saturated).
    pub clock_offset_secs: Option<i32>,
    /// The server's certificate, when a TLS handshake got that far.
    pub tls: Option<ConnectionTls>,
    /// What to ask the network team for.
    pub rule: ConnectionRule,
    /// The rule as lines to paste into a ticket (Component | Port | IP address).
    pub rule_text: String,
}

fn ips(addresses: &[IpAddr]) -> Vec<String> {
    addresses.iter().map(IpAddr::to_string).collect()
}

/// The step as a row: the port and addresses it concerns, read from its
/// target (`IP:port` for a direct connection) and the report.
fn row(report: &Report, step: &Step) -> ConnectionStepRow {
    let protocol = if report.scheme == "http" {
        "HTTP"
    } else {
        "HTTPS"
    };
    let server_port = (report.port != 0).then(|| format!("{} ({protocol})", report.port));
    let (port, addresses) = match (step.kind, step.target.parse::<SocketAddr>()) {
        (StepKind::Connect, Ok(addr)) => (
            Some(format!("{} ({protocol})", addr.port())),
            vec![addr.ip().to_string()],
        ),
        // Through the proxy: its port, no address of the server.
        (StepKind::Connect, Err(_)) => (
            report
                .proxy
                .as_ref()
                .map(|p| format!("{} (proxy)", p.port))
                .or(server_port),
            Vec::new(),
        ),
        (StepKind::Resolve, _) => (server_port, ips(&report.addresses)),
        (StepKind::Tls | StepKind::Metadata, _) => (server_port, Vec::new()),
        (StepKind::Clock, _) => (None, Vec::new()),
    };
    ConnectionStepRow {
        kind: step.kind.into(),
        label: step.kind.label().to_owned(),
        target: step.target.clone(),
        port,
        ips: addresses,
        status: step.status.into(),
        detail: step.detail.clone(),
        advice: step.advice.clone(),
    }
}

impl From<&Report> for ConnectionReportView {
    fn from(report: &Report) -> Self {
        let has = |status| report.steps.iter().any(|s| s.status == status);
        let outcome = if has(StepStatus::Failed) {
            ConnectionStepStatus::Failed
        } else if has(StepStatus::Warning) {
            ConnectionStepStatus::Warning
        } else {
            ConnectionStepStatus::Ok
        };
        ConnectionReportView {
            server_url: report.server_url.clone(),
            host: report.host.clone(),
            port: report.port,
            scheme: report.scheme.clone(),
            outcome,
            summary: connectivity::summary(report),
            proxy: report.proxy.as_ref().map(|p| ConnectionProxy {
                url: p.url.clone(),
                host: p.host.clone(),
                port: p.port,
                variable: p.variable.clone(),
            }),
            steps: report.steps.iter().map(|s| row(report, s)).collect(),
            addresses: ips(&report.addresses),
            clock_offset_secs: report
                .clock_offset_secs
                .map(|s| i32::try_from(s).unwrap_or(if s < 0 { i32::MIN } else { i32::MAX })),
            tls: report.tls.as_ref().map(|t| ConnectionTls {
                subject: t.subject.clone(),
                issuer: t.issuer.clone(),
                not_after: t.not_after.clone(),
                chain_length: u32::try_from(t.chain_length).unwrap_or(u32::MAX),
                trusted: t.trusted,
                probable_inspection: t.probable_inspection,
                // The console takes its extra CA from the environment, not
                // from a setting: say how, in the console's own terms.
                inspection_advice: (t.probable_inspection && !t.trusted).then(|| {
                    format!(
                        "Ask the network team for the CA certificate of \"{}\" as a PEM file, \
                         then start the console with {EXTRA_CA_VAR}=/path/to/that-ca.pem so it \
                         trusts that certificate; or ask for an exception so that {} is not \
                         inspected.",
                        t.issuer, report.host
                    )
                }),
            }),
            rule: ConnectionRule {
                host: report.rule.host.clone(),
                port: report.rule.port,
                ips: ips(&report.rule.ips),
                proxy_exception: report.rule.proxy_exception.clone(),
            },
            rule_text: connectivity::rule_text(report),
        }
    }
}

/// "Test connection": checks the way to the license server at
/// `server_url` as typed (before it is saved) or, when `None`, the
/// configured one. Never fails on a network problem: each is a step.
#[tauri::command]
pub async fn test_connection(
    licensing: State<'_, Arc<Licensing>>,
    server_url: Option<String>,
) -> Result<ConnectionReportView, CommandError> {
    let report = licensing.check_connection(server_url.as_deref()).await?;
    Ok(ConnectionReportView::from(&report))
}

#[cfg(test)]
mod tests {
    use license_client::connectivity::{select_proxy, FirewallRule, TlsInfo};

    use super::*;

    fn step(kind: StepKind, target: &str, status: StepStatus) -> Step {
        Step {
            kind,
            target: target.to_owned(),
            status,
            detail: format!("{target}: {status:?}"),
            advice: (status == StepStatus::Failed).then(|| "Ask the network team.".to_owned()),
        }
    }

    fn report(steps: Vec<Step>) -> Report {
        let ips: Vec<IpAddr> = vec![
            "203.0.113.7".parse().expect("ip"),
            "2001:db8::7".parse().expect("ip"),
        ];
        Report {
            server_url: "https://licenses.example.com".to_owned(),
            host: "licenses.example.com".to_owned(),
            port: 443,
            scheme: "https".to_owned(),
            proxy: None,
            steps,
            addresses: ips.clone(),
            clock_offset_secs: Some(-5_000_000_000),
            tls: None,
            rule: FirewallRule {
                host: "licenses.example.com".to_owned(),
                port: 443,
                ips,
                proxy_exception: None,
            },
        }
    }

    #[test]
    fn each_step_is_a_row_with_the_port_and_addresses_it_concerns() {
        let report = report(vec![
            step(StepKind::Resolve, "licenses.example.com", StepStatus::Ok),
            step(StepKind::Connect, "203.0.113.7:443", StepStatus::Ok),
            step(StepKind::Connect, "[2001:db8::7]:443", StepStatus::Failed),
            step(StepKind::Tls, "licenses.example.com:443", StepStatus::Ok),
            step(StepKind::Metadata, "https://x/.well-known", StepStatus::Ok),
            step(StepKind::Clock, "Date header", StepStatus::Warning),
        ]);
        let view = ConnectionReportView::from(&report);
        assert_eq!(view.outcome, ConnectionStepStatus::Failed);
        let rows: Vec<(ConnectionStepKind, Option<&str>, Vec<&str>)> = view
            .steps
            .iter()
            .map(|r| {
                let ips = r.ips.iter().map(String::as_str).collect();
                (r.kind, r.port.as_deref(), ips)
            })
            .collect();
        use ConnectionStepKind as K;
        assert_eq!(
            rows,
            [
                (
                    K::Resolve,
                    Some("443 (HTTPS)"),
                    vec!["203.0.113.7", "2001:db8::7"]
                ),
                (K::Connect, Some("443 (HTTPS)"), vec!["203.0.113.7"]),
                (K::Connect, Some("443 (HTTPS)"), vec!["2001:db8::7"]),
                (K::Tls, Some("443 (HTTPS)"), vec![]),
                (K::Metadata, Some("443 (HTTPS)"), vec![]),
                (K::Clock, None, vec![]),
            ]
        );
        assert_eq!(view.steps[2].status, ConnectionStepStatus::Failed);
        assert_eq!(view.steps[2].label, "Connection");
        // The engine's words, computed once there.
        assert_eq!(view.summary, connectivity::summary(&report));
        assert_eq!(view.rule_text, connectivity::rule_text(&report));
        assert!(view
            .rule_text
            .contains("licenses.example.com | 443 (HTTPS) | 2001:db8::7"));
        assert_eq!(view.clock_offset_secs, Some(i32::MIN), "saturated");
    }

    #[test]
    fn a_warning_alone_is_the_outcome_and_skipped_steps_do_not_count() {
        let view = ConnectionReportView::from(&report(vec![
            step(StepKind::Resolve, "licenses.example.com", StepStatus::Ok),
            step(
                StepKind::Tls,
                "licenses.example.com:443",
                StepStatus::Skipped,
            ),
            step(StepKind::Clock, "Date header", StepStatus::Warning),
        ]));
        assert_eq!(view.outcome, ConnectionStepStatus::Warning);
        let view = ConnectionReportView::from(&report(vec![step(
            StepKind::Tls,
            "licenses.example.com:443",
            StepStatus::Skipped,
        )]));
        assert_eq!(view.outcome, ConnectionStepStatus::Ok);
    }

    #[test]
    fn behind_a_proxy_the_connection_row_names_the_proxy_port() {
        let env = |name: &str| (name == "HTTPS_PROXY").then(|| "http://proxy.corp:3128".to_owned());
        let mut report = report(vec![step(
            StepKind::Connect,
            "proxy.corp:3128 (proxy)",
            StepStatus::Ok,
        )]);
        report.proxy = select_proxy("https://licenses.example.com", &env);
        let view = ConnectionReportView::from(&report);
        assert_eq!(view.steps[0].port.as_deref(), Some("3128 (proxy)"));
        assert!(view.steps[0].ips.is_empty());
        let proxy = view.proxy.expect("proxy");
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.corp", 3128));
        assert_eq!(proxy.variable, "HTTPS_PROXY");
    }

    #[test]
    fn an_untrusted_inspecting_ca_gets_the_consoles_way_to_add_it() {
        let tls = |trusted| TlsInfo {
            subject: "CN=licenses.example.com".to_owned(),
            issuer: "CN=Corp Inspection CA".to_owned(),
            not_after: "2031-01-01T00:00:00Z".to_owned(),
            chain_length: 2,
            trusted,
            probable_inspection: true,
        };
        let mut report = report(Vec::new());
        report.tls = Some(tls(false));
        let view = ConnectionReportView::from(&report);
        let advice = view.tls.and_then(|t| t.inspection_advice).expect("advice");
        assert!(advice.contains("CN=Corp Inspection CA"), "{advice}");
        assert!(advice.contains(EXTRA_CA_VAR), "{advice}");
        // Already trusted through the extra CA: nothing more to do.
        report.tls = Some(tls(true));
        let view = ConnectionReportView::from(&report);
        assert_eq!(view.tls.expect("tls").inspection_advice, None);
    }
}
