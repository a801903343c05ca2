//! The real license server, in process, on 127.0.0.1:0 with a temporary
//! SQLite database and the demo account.
#![allow(dead_code)]

pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use license_client::{ClientConfig, DeviceAuthorization, LicenseClient, PollOutcome, TokenSet};
use license_server::{
    approval, demo, keys, AppState, Clock, Config, Keys, ManualClock, Store, SystemClock,
};
use time::OffsetDateTime;

pub const DEVICE: &str = "Store 001 POS Server";

pub struct TestServer {
    pub base: String,
    pub state: AppState,
    /// Set when the server runs on a clock the test moves.
    pub manual: Option<Arc<ManualClock>>,
    pub db_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Which clock the server reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ServerClock {
    /// Real time: the polling loop's sleeps count.
    System,
    /// Stands still until the test advances it.
    Manual,
}

/// A server polled every second (real clock), so loops finish quickly.
pub async fn start() -> TestServer {
    start_with(ServerClock::System, |_| {}).await
}

pub async fn start_with(clock: ServerClock, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("license.db");
    let store = Store::open(&db_path).await.unwrap();
    let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let now = start.unix_timestamp();
    keys::rotate(&store, now).await.unwrap();
    demo::seed(&store, now).await.unwrap().unwrap();
    let keys = Keys::load(&store, now).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::new(&base);
    config.poll_interval_secs = 1;
    tweak(&mut config);
    let (manual, server_clock): (Option<Arc<ManualClock>>, Arc<dyn Clock>) = match clock {
        ServerClock::System => (None, Arc::new(SystemClock)),
        ServerClock::Manual => {
            let m = Arc::new(ManualClock::new(start));
            (Some(m.clone()), m)
        }
    };
    let state = AppState::new(store, keys, server_clock, config);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let serving = state.clone();
    tokio::spawn(async move {
        license_server::serve(listener, serving, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestServer {
        base,
        state,
        manual,
        db_path,
        _dir: dir,
        shutdown: Some(tx),
    }
}

impl TestServer {
    pub fn client(&self) -> LicenseClient {
        LicenseClient::new(ClientConfig::new(&self.base)).unwrap()
    }

    /// Moves the server's manual clock.
    pub fn advance(&self, secs: i64) {
        self.manual
            .as_ref()
            .expect("a server on the manual clock")
            .advance(time::Duration::seconds(secs));
    }

    pub fn now(&self) -> OffsetDateTime {
        self.state.clock.now()
    }

    /// Stops serving; waits until the port refuses connections.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn stopped(&mut self) {
        self.stop();
        let addr = self.base.trim_start_matches("http://").to_owned();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not stop");
    }

    /// What an admin does on the Authorize Device page, through the
    /// server's `device authorize` command.
    pub async fn authorize(&self, user_code: &str) {
        let out = license_server::cli::authorize_device(
            &license_server::store::Location::Sqlite(self.db_path.clone()),
            demo::DEMO_ORG,
            license_server::cli::DeviceArg {
                name: DEVICE,
                register: false,
            },
            user_code,
            None,
        )
        .await
        .unwrap();
        assert!(out.contains(DEVICE), "{out}");
    }

    /// An admin denies the user code (the page's Deny button).
    pub async fn deny(&self, user_code: &str) {
        let code = license_server::secrets::normalize_user_code(user_code).unwrap();
        let now = self.now().unix_timestamp();
        let pending = self
            .state
            .db
            .pending_device_code(&code, now)
            .await
            .unwrap()
            .expect("a pending code");
        let org = self
            .state
            .db
            .org_by_name(demo::DEMO_ORG)
            .await
            .unwrap()
            .unwrap();
        let device = self
            .state
            .db
            .device_by_name(org.id, DEVICE)
            .await
            .unwrap()
            .unwrap();
        let decision = approval::Decision {
            org_id: org.id,
            code: &pending,
            target: approval::Target::Existing(device),
            approve: false,
            user_id: None,
            actor: "test",
            now,
        };
        let decided = approval::decide(&self.state.db, decision).await.unwrap();
        assert!(decided.is_some(), "the code was pending");
    }

    /// The Server ID of the demo device.
    pub async fn server_id(&self) -> String {
        let org = self
            .state
            .db
            .org_by_name(demo::DEMO_ORG)
            .await
            .unwrap()
            .unwrap();
        self.state
            .db
            .device_by_name(org.id, DEVICE)
            .await
            .unwrap()
            .unwrap()
            .server_id
    }
}

/// A device licensed through the whole flow: start, approve, poll once.
pub async fn licensed(
    server: &TestServer,
    client: &LicenseClient,
) -> (DeviceAuthorization, TokenSet) {
    let auth = client.start_device_authorization().await.unwrap();
    server.authorize(&auth.user_code).await;
    match client
        .poll_once(&auth, OffsetDateTime::now_utc())
        .await
        .unwrap()
    {
        PollOutcome::Granted(tokens) => (auth, tokens),
        other => panic!("expected tokens, got {other:?}"),
    }
}
