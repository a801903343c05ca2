//! The real license server in process (temporary SQLite database, demo
//! account) for the console's tests.
#![allow(dead_code)]

use std::sync::Arc;

use license_console_lib::clock::{Clock, SystemClock};
use license_server::{demo, keys, AppState, Config, Keys, Store};

pub struct Server {
    pub base: String,
    pub db: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

pub async fn server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("server.sqlite");
    let store = Store::open(&db).await.expect("open");
    let now = SystemClock.now().unix_timestamp();
    keys::rotate(&store, now).await.expect("key");
    demo::seed(&store, now).await.expect("seed");
    let keys = Keys::load(&store, now).await.expect("keys");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let state = AppState::new(
        store,
        keys,
        Arc::new(license_server::SystemClock),
        Config::new(&base),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = license_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await;
    });
    Server {
        base,
        db,
        stop: Some(tx),
        _dir: dir,
    }
}

impl Server {
    pub async fn authorize(&self, user_code: &str) -> String {
        let out = license_server::cli::authorize_device(
            &license_server::store::Location::Sqlite(self.db.clone()),
            demo::DEMO_ORG,
            license_server::cli::DeviceArg {
                name: "Store 001 POS Server",
                register: false,
            },
            user_code,
            None,
        )
        .await
        .expect("authorize");
        out.rsplit_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(id, _)| id.to_string())
            .expect("server id")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.base
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a port in the base URL")
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let addr = self.base.trim_start_matches("http://").to_string();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
