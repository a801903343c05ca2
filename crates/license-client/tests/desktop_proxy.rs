//! The desktop's proxy settings, as GNOME Settings writes them, read with
//! the real `gsettings` command (its keyfile backend in a temporary folder,
//! so this machine's own settings are neither read nor changed): the client
//! and the connectivity check both go through the proxy they name, and
//! `ignore-hosts` turns it off for the server.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::tls::{metadata, read_head, tls_server, CA};
use license_client::connectivity::{check, StepKind, StepStatus};
use license_client::desktop_proxy::{gsettings_get, DesktopProxy};
use license_client::{ClientConfig, LicenseClient};
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// `gsettings` on a settings file of its own under `dir`.
fn gsettings(dir: &std::path::Path) -> Command {
    let mut command = Command::new("gsettings");
    command
        .env("GSETTINGS_BACKEND", "keyfile")
        .env("XDG_CONFIG_HOME", dir);
    command
}

fn set(dir: &std::path::Path, schema: &str, key: &str, value: &str) {
    let status = gsettings(dir)
        .args(["set", schema, key, value])
        .status()
        .expect("gsettings runs (scripts/setup.sh installs libglib2.0-bin)");
    assert!(status.success(), "gsettings set {schema} {key} {value}");
}

fn read(dir: &std::path::Path) -> Option<DesktopProxy> {
    DesktopProxy::from_gnome(&mut |schema, key| gsettings_get(&mut gsettings(dir), schema, key))
}

/// A CONNECT proxy without authentication that counts the tunnels it opens.
async fn counting_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&tunnels);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                else {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, tunnels)
}

#[tokio::test]
async fn gnome_proxy_settings_carry_the_client_and_the_check() {
    let base = tls_server(metadata);
    let (proxy, tunnels) = counting_proxy().await;
    let (host, port) = proxy.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Nothing set yet: GNOME's default mode is 'none'.
    assert_eq!(read(dir.path()), None);

    set(dir.path(), "org.gnome.system.proxy", "mode", "manual");
    set(dir.path(), "org.gnome.system.proxy.https", "host", host);
    set(dir.path(), "org.gnome.system.proxy.https", "port", port);
    set(
        dir.path(),
        "org.gnome.system.proxy",
        "ignore-hosts",
        "['localhost']",
    );
    let desktop = read(dir.path()).expect("a manual proxy");
    let config = ClientConfig {
        extra_ca_pem: Some(CA.to_vec()),
        desktop_proxy: Some(desktop),
        ..ClientConfig::new(&base)
    };

    // The client itself goes through the proxy.
    LicenseClient::new(config.clone())
        .unwrap()
        .metadata()
        .await
        .expect("metadata through the desktop's proxy");
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        1,
        "one tunnel for the client"
    );

    // The check names the proxy and where it came from, and passes.
    let report = check(&config, OffsetDateTime::now_utc).await;
    let p = report.proxy.as_ref().expect("the desktop's proxy is noted");
    assert_eq!(p.variable, "GNOME proxy settings (HTTPS_PROXY)");
    assert_eq!(p.url, format!("http://{proxy}"));
    for step in &report.steps {
        assert_ne!(step.status, StepStatus::Failed, "{report:#?}");
    }
    let connect = report
        .steps
        .iter()
        .find(|s| s.kind == StepKind::Connect)
        .unwrap();
    assert_eq!(connect.target, format!("{proxy} (proxy)"));
    assert!(
        tunnels.load(Ordering::SeqCst) >= 3,
        "the check's own tunnel and its metadata request went through the proxy"
    );

    // ignore-hosts covering the server: direct, for the client and the check.
    set(
        dir.path(),
        "org.gnome.system.proxy",
        "ignore-hosts",
        "['localhost', '127.0.0.0/8']",
    );
    let config = ClientConfig {
        desktop_proxy: read(dir.path()),
        ..config
    };
    let before = tunnels.load(Ordering::SeqCst);
    LicenseClient::new(config.clone())
        .unwrap()
        .metadata()
        .await
        .expect("metadata, direct");
    let report = check(&config, OffsetDateTime::now_utc).await;
    assert!(report.proxy.is_none(), "{report:#?}");
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        before,
        "nothing through the proxy"
    );
}
