//! The request log (a tower layer in `app`): method, path, status and
//! latency of every request, and no secret. Alone in its test binary: the
//! log is captured with a thread-local subscriber, which tests running in
//! parallel on other threads would race.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;

/// The log lines written while the guard lives, on this thread (the test
/// runtime has one thread, so the server's tasks log here too).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_request_log_names_method_path_and_status_and_no_secret() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("license_server=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = start().await;
    let auth = start_device_authorization(&server).await;
    let client = browser();
    sign_in(&server, &client).await;
    let page = client
        .get(server.url(&format!("/device?user_code={}", auth.user_code)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let (status, _) = poll(&server, &auth.device_code).await;
    assert_eq!(status, 400, "still pending");

    let text = log.text();
    assert!(text.contains("method=GET"), "{text}");
    assert!(text.contains("path=/device"), "{text}");
    assert!(text.contains("method=POST"), "{text}");
    assert!(text.contains("path=/oauth/token"), "{text}");
    assert!(text.contains("status=200"), "{text}");
    assert!(text.contains("status=400"), "{text}");
    assert!(text.contains("latency="), "{text}");
    for secret in [
        auth.user_code.as_str(),
        auth.device_code.as_str(),
        server.admin_password.as_str(),
        "user_code=",
        "ls_session",
    ] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
}
