//! The proxy comes from the environment. Its own test binary: environment
//! variables are process-wide, and no other test may see these.

use license_client::{ClientConfig, LicenseClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A forward proxy that answers every request itself with metadata for
/// `issuer`, and reports the request line it saw.
async fn proxy(issuer: &'static str) -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = vec![0u8; 8192];
            let n = socket.read(&mut head).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&head[..n]);
            let line = request.lines().next().unwrap_or_default().to_owned();
            let _ = tx.send(line).await;
            let body = serde_json::json!({
                "issuer": issuer,
                "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
                "token_endpoint": format!("{issuer}/oauth/token"),
                "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
                "license_endpoint": format!("{issuer}/api/v1/license"),
            })
            .to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, rx)
}

#[tokio::test]
async fn requests_go_through_the_proxy_from_the_environment_unless_no_proxy() {
    let (proxy_url, mut seen) = proxy("http://licenses.example").await;
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HTTP_PROXY", &proxy_url);
    std::env::set_var("http_proxy", &proxy_url);

    // The name does not resolve here: only the proxy can answer.
    let client = LicenseClient::new(ClientConfig::new("http://licenses.example")).unwrap();
    let metadata = client.metadata().await.unwrap();
    assert_eq!(metadata.issuer, "http://licenses.example");
    assert_eq!(
        seen.recv().await.unwrap(),
        "GET http://licenses.example/.well-known/oauth-authorization-server HTTP/1.1"
    );

    // NO_PROXY: the client goes straight to the host, which is not there.
    std::env::set_var("NO_PROXY", "licenses.example");
    std::env::set_var("no_proxy", "licenses.example");
    let client = LicenseClient::new(ClientConfig::new("http://licenses.example")).unwrap();
    let e = client.metadata().await.unwrap_err();
    assert_eq!(e.code(), "offline", "{e:?}");
    assert!(
        seen.try_recv().is_err(),
        "the proxy was used despite NO_PROXY"
    );
}
