//! The Test connection check against real local servers: the license server
//! itself, a closed port, a name that does not resolve, an HTTPS server with
//! a certificate from a private CA (a TLS-inspecting proxy), a server whose
//! clock is off and a CONNECT proxy. The proxy is passed in, never read from
//! this process's environment.

mod common;

use common::tls::{metadata, read_head, tls_server, CA};

use std::time::{Duration, SystemTime};

use license_client::connectivity::{
    check, check_via, rule_text, select_proxy, summary, Report, StepKind, StepStatus,
};
use license_client::ClientConfig;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CA_NAME: &str = "CN=License Client Test Proxy CA";

fn statuses(report: &Report) -> Vec<(StepKind, StepStatus)> {
    report.steps.iter().map(|s| (s.kind, s.status)).collect()
}

fn step(report: &Report, kind: StepKind) -> &license_client::connectivity::Step {
    report
        .steps
        .iter()
        .find(|s| s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} step in {report:#?}"))
}

#[tokio::test]
async fn the_real_server_over_http_passes_every_step() {
    let server = common::start().await;
    let report = check_via(
        &ClientConfig::new(&server.base),
        None,
        OffsetDateTime::now_utc,
    )
    .await;
    assert_eq!(
        statuses(&report),
        vec![
            (StepKind::Resolve, StepStatus::Ok),
            (StepKind::Connect, StepStatus::Ok),
            (StepKind::Tls, StepStatus::Skipped),
            (StepKind::Metadata, StepStatus::Ok),
            (StepKind::Clock, StepStatus::Ok),
        ],
        "{report:#?}"
    );
    assert_eq!(
        report.addresses,
        vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let offset = report.clock_offset_secs.expect("the server sends a Date");
    assert!(offset.abs() <= 2, "{offset}");
    assert!(report.tls.is_none() && report.proxy.is_none());
    let port = report.port;
    assert_eq!(
        rule_text(&report),
        format!("Component | Port | IP address\n127.0.0.1 | {port} (HTTP) | 127.0.0.1\n")
    );
    assert!(
        summary(&report).contains("nothing to ask"),
        "{}",
        summary(&report)
    );
    // The DTO goes to the console as JSON and comes back unchanged.
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        json.contains("\"clockOffsetSecs\"") && json.contains("\"status\":\"ok\""),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
}

#[tokio::test]
async fn a_closed_port_fails_the_connection_and_asks_for_a_firewall_rule() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let report = check_via(
        &ClientConfig::new(format!("http://127.0.0.1:{port}")),
        None,
        OffsetDateTime::now_utc,
    )
    .await;
    let connect = step(&report, StepKind::Connect);
    assert_eq!(connect.status, StepStatus::Failed, "{report:#?}");
    assert_eq!(connect.target, format!("127.0.0.1:{port}"));
    assert!(
        connect.detail.contains("Connection refused"),
        "{}",
        connect.detail
    );
    assert_eq!(
        step(&report, StepKind::Metadata).status,
        StepStatus::Skipped
    );
    assert_eq!(step(&report, StepKind::Clock).status, StepStatus::Skipped);
    let summary = summary(&report);
    assert!(
        summary.starts_with(&format!("Connection failed (127.0.0.1:{port})"))
            && summary.contains("firewall rule")
            && summary.contains("license server is running"),
        "{summary}"
    );
    assert!(rule_text(&report).contains(&format!("127.0.0.1 | {port} (HTTP) | 127.0.0.1")));
}

#[tokio::test]
async fn a_name_that_does_not_resolve_fails_the_first_step() {
    let report = check_via(
        &ClientConfig::new("https://no-such-host.invalid"),
        None,
        OffsetDateTime::now_utc,
    )
    .await;
    let resolve = step(&report, StepKind::Resolve);
    assert_eq!(resolve.status, StepStatus::Failed, "{report:#?}");
    assert!(
        resolve
            .detail
            .starts_with("The name no-such-host.invalid could not be resolved"),
        "{}",
        resolve.detail
    );
    assert!(report.addresses.is_empty());
    for kind in [
        StepKind::Connect,
        StepKind::Tls,
        StepKind::Metadata,
        StepKind::Clock,
    ] {
        assert_eq!(step(&report, kind).status, StepStatus::Skipped, "{kind:?}");
    }
    assert!(
        summary(&report).starts_with("Name resolution failed"),
        "{}",
        summary(&report)
    );
    assert!(rule_text(&report)
        .contains("no-such-host.invalid | 443 (HTTPS) | (the name does not resolve"));
}

/// The console runs the check from a Tauri command, on a multi-threaded
/// runtime: the future must be `Send`.
#[test]
fn the_check_can_run_on_any_thread() {
    fn send<T: Send>(_: &T) {}
    let config = ClientConfig::new("https://licenses.example.com");
    let future = check(&config, OffsetDateTime::now_utc);
    send(&future);
}

#[tokio::test]
async fn an_invalid_url_is_reported_not_checked() {
    let report = check(&ClientConfig::new("ftp://x"), OffsetDateTime::now_utc).await;
    assert_eq!(
        statuses(&report),
        vec![(StepKind::Resolve, StepStatus::Failed)]
    );
    assert!(
        summary(&report).contains("Correct the license server URL"),
        "{}",
        summary(&report)
    );
}

#[tokio::test]
async fn a_private_ca_is_probable_inspection_until_it_is_added() {
    let base = tls_server(metadata);
    let report = check_via(&ClientConfig::new(&base), None, OffsetDateTime::now_utc).await;
    let tls = step(&report, StepKind::Tls);
    assert_eq!(tls.status, StepStatus::Failed, "{report:#?}");
    let advice = tls.advice.as_deref().unwrap();
    assert!(
        advice.contains(CA_NAME) && advice.contains("add it as the extra CA certificate"),
        "{advice}"
    );
    let info = report.tls.as_ref().expect("the certificate was seen");
    assert!(info.probable_inspection && !info.trusted, "{info:?}");
    assert_eq!(info.subject, "CN=127.0.0.1");
    assert_eq!(info.issuer, CA_NAME);
    assert_eq!(info.not_after, "2126-10-29T23:40:16Z");
    assert_eq!(info.chain_length, 1);
    assert_eq!(
        step(&report, StepKind::Metadata).status,
        StepStatus::Skipped
    );
    assert!(
        summary(&report).contains("add it as the extra CA certificate"),
        "{}",
        summary(&report)
    );

    // The proxy's CA in the settings: trusted, still flagged as inspection.
    let config = ClientConfig {
        extra_ca_pem: Some(CA.to_vec()),
        ..ClientConfig::new(&base)
    };
    let report = check_via(&config, None, OffsetDateTime::now_utc).await;
    assert_eq!(
        statuses(&report),
        vec![
            (StepKind::Resolve, StepStatus::Ok),
            (StepKind::Connect, StepStatus::Ok),
            (StepKind::Tls, StepStatus::Ok),
            (StepKind::Metadata, StepStatus::Ok),
            (StepKind::Clock, StepStatus::Ok),
        ],
        "{report:#?}"
    );
    let info = report.tls.as_ref().unwrap();
    assert!(info.trusted && info.probable_inspection, "{info:?}");
    assert!(report.clock_offset_secs.unwrap().abs() <= 2);

    // The same certificate in 2200, by the clock the check is given.
    let later = || time::macros::datetime!(2200-01-01 00:00:00 UTC);
    let report = check_via(&config, None, later).await;
    let tls = step(&report, StepKind::Tls);
    assert_eq!(tls.status, StepStatus::Failed, "{report:#?}");
    assert!(
        tls.detail.contains("expired on 2126-10-29T23:40:16Z"),
        "{}",
        tls.detail
    );

    // An unreadable extra CA is named as such.
    let config = ClientConfig {
        extra_ca_pem: Some(b"not a certificate".to_vec()),
        ..ClientConfig::new(&base)
    };
    let report = check_via(&config, None, OffsetDateTime::now_utc).await;
    let tls = step(&report, StepKind::Tls);
    assert_eq!(tls.status, StepStatus::Failed);
    assert!(
        tls.detail.contains("extra CA certificate"),
        "{}",
        tls.detail
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_the_handshake() {
    let server = common::start().await;
    let https = server.base.replace("http://", "https://");
    let report = check_via(&ClientConfig::new(&https), None, OffsetDateTime::now_utc).await;
    let tls = step(&report, StepKind::Tls);
    assert_eq!(tls.status, StepStatus::Failed, "{report:#?}");
    assert!(
        tls.advice.as_deref().unwrap().contains("scheme and port"),
        "{tls:?}"
    );
    assert!(report.tls.is_none());
}

/// Answers every request with metadata for its own base URL and a `Date`
/// `skew` away from now.
async fn skewed_server(skew: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = metadata(&base).to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = vec![0u8; 8192];
            let _ = socket.read(&mut head).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                httpdate::fmt_http_date(SystemTime::now() + skew),
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    base
}

#[tokio::test]
async fn a_server_ten_minutes_ahead_is_a_clock_warning() {
    let base = skewed_server(Duration::from_secs(600)).await;
    let report = check_via(&ClientConfig::new(&base), None, OffsetDateTime::now_utc).await;
    assert_eq!(
        step(&report, StepKind::Metadata).status,
        StepStatus::Ok,
        "{report:#?}"
    );
    let clock = step(&report, StepKind::Clock);
    assert_eq!(clock.status, StepStatus::Warning, "{report:#?}");
    assert!(clock.detail.contains("10 min behind"), "{}", clock.detail);
    let offset = report.clock_offset_secs.unwrap();
    assert!((598..=601).contains(&offset), "{offset}");
    let summary = summary(&report);
    assert!(
        summary.starts_with("Clock needs attention") && summary.contains("60 s"),
        "{summary}"
    );
}

/// A CONNECT proxy that wants `Proxy-Authorization: Basic dXNlcjpwYXNz`
/// (user:pass) and tunnels only to `allowed`; answers 403 otherwise.
async fn connect_proxy(allowed: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let allowed = allowed.clone();
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let authorized = head.contains("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n");
                if !authorized {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                        .await;
                    return;
                }
                if !head.starts_with(&format!("CONNECT {allowed} HTTP/1.1\r\n")) {
                    let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&allowed).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn through_a_proxy_the_tunnel_is_tested_and_the_rule_names_the_exception() {
    let base = tls_server(metadata);
    let server = base.trim_start_matches("https://").to_owned();
    let proxy_addr = connect_proxy(server.clone()).await;
    let config = ClientConfig {
        extra_ca_pem: Some(CA.to_vec()),
        ..ClientConfig::new(&base)
    };
    let env = |proxy: String| move |name: &str| (name == "HTTPS_PROXY").then(|| proxy.clone());

    let proxy = select_proxy(&base, &env(format!("http://user:pass@{proxy_addr}")));
    let report = check_via(&config, proxy, OffsetDateTime::now_utc).await;
    let p = report.proxy.as_ref().expect("a proxy");
    assert_eq!(p.url, format!("http://[redacted]@{proxy_addr}"));
    let connect = step(&report, StepKind::Connect);
    assert_eq!(connect.status, StepStatus::Ok, "{report:#?}");
    assert_eq!(connect.target, format!("{proxy_addr} (proxy)"));
    assert!(
        connect.detail.contains("opened a tunnel"),
        "{}",
        connect.detail
    );
    assert_eq!(
        step(&report, StepKind::Tls).status,
        StepStatus::Ok,
        "{report:#?}"
    );
    assert_eq!(
        step(&report, StepKind::Clock).status,
        StepStatus::Ok,
        "{report:#?}"
    );
    let text = rule_text(&report);
    assert!(
        text.ends_with(&format!(
            "Proxy exception: allow CONNECT to {server} through the proxy {proxy_addr} \
             (HTTPS_PROXY), without TLS inspection\n"
        )),
        "{text}"
    );
    assert!(!text.contains("pass") && !serde_json::to_string(&report).unwrap().contains("pass"));

    // Without the password the proxy says 407; the check says what to do.
    let proxy = select_proxy(&base, &env(format!("http://{proxy_addr}")));
    let report = check_via(&config, proxy, OffsetDateTime::now_utc).await;
    let connect = step(&report, StepKind::Connect);
    assert_eq!(connect.status, StepStatus::Failed, "{report:#?}");
    assert!(connect.detail.contains("HTTP 407"), "{}", connect.detail);
    assert!(
        connect.advice.as_deref().unwrap().contains("HTTPS_PROXY"),
        "{connect:?}"
    );
    assert_eq!(step(&report, StepKind::Tls).status, StepStatus::Skipped);

    // A proxy that blocks the server: ask for the exception.
    let blocking = connect_proxy("127.0.0.1:1".to_owned()).await;
    let proxy = select_proxy(&base, &env(format!("http://user:pass@{blocking}")));
    let report = check_via(&config, proxy, OffsetDateTime::now_utc).await;
    let summary = summary(&report);
    assert!(
        summary.contains("HTTP 403") || summary.contains("proxy exception"),
        "{summary}"
    );
    assert!(
        summary.contains("proxy exception allowing CONNECT"),
        "{summary}"
    );

    // NO_PROXY covering the server: no proxy, direct connections.
    let no_proxy = |name: &str| match name {
        "HTTPS_PROXY" => Some(format!("http://{blocking}")),
        "NO_PROXY" => Some("127.0.0.1".to_owned()),
        _ => None,
    };
    assert!(select_proxy(&base, &no_proxy).is_none());
}

/// A server that accepts connections and never answers (a half-open
/// firewall, a hung service): the connection is Ok, the metadata request
/// times out within its step's bound, and the whole check stays bounded.
#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    let report = check_via(
        &ClientConfig::new(format!("http://127.0.0.1:{port}")),
        None,
        OffsetDateTime::now_utc,
    )
    .await;
    let took = started.elapsed();
    assert_eq!(
        step(&report, StepKind::Connect).status,
        StepStatus::Ok,
        "{report:#?}"
    );
    let metadata = step(&report, StepKind::Metadata);
    assert_eq!(metadata.status, StepStatus::Failed, "{report:#?}");
    // The step's bound or the client's own timeout, whichever ends first.
    assert!(
        metadata.detail.contains("No answer within")
            || metadata.detail.contains("did not answer in time"),
        "{metadata:?}"
    );
    assert!(
        took <= license_client::connectivity::CHECK_TIMEOUT + Duration::from_secs(2),
        "the check took {took:?}"
    );
    let summary = summary(&report);
    assert!(!summary.is_empty(), "{report:#?}");
}

/// A proxy that refuses connections (nothing listens on its port): the
/// connection to the proxy fails and the advice names the proxy setting.
#[tokio::test]
async fn a_proxy_that_refuses_connections_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    drop(listener);
    let base = "https://license.example.test";
    let env = move |name: &str| (name == "HTTPS_PROXY").then(|| format!("http://{proxy_addr}"));
    let proxy = select_proxy(base, &env);
    let report = check_via(&ClientConfig::new(base), proxy, OffsetDateTime::now_utc).await;
    let connect = step(&report, StepKind::Connect);
    assert_eq!(connect.status, StepStatus::Failed, "{report:#?}");
    assert!(
        connect.target.contains(&proxy_addr.to_string()),
        "{connect:?}"
    );
    let said = format!(
        "{} {}",
        connect.detail,
        connect.advice.clone().unwrap_or_default()
    );
    assert!(
        said.contains("HTTPS_PROXY") || said.contains("proxy"),
        "{said}"
    );
    assert_eq!(step(&report, StepKind::Tls).status, StepStatus::Skipped);
}
