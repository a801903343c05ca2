//! The authorization and license server.
//!
//! - OAuth 2.0 Device Authorization Grant (RFC 8628) for the License Console,
//!   refresh-token rotation with reuse detection, token revocation (RFC 7009)
//!   and server metadata (RFC 8414).
//! - `GET /api/v1/license`: the signed license account of the calling device.
//! - Server-rendered admin pages: sign-in, Authorize Device, devices,
//!   license packages, audit log.
//!
//! [`app`] builds the router; [`serve`] binds it. `main.rs` only parses flags.

pub mod admin;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod keys;
pub mod limits;
pub mod oauth;
pub mod secrets;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ServeArgs};
pub use error::Error;
pub use keys::Keys;
pub use store::Store;

/// The OAuth client id of the License Console (a public client).
pub const CONSOLE_CLIENT_ID: &str = "license-console";

/// Largest request body accepted by the OAuth and API routes.
pub const API_BODY_LIMIT: usize = 16 * 1024;
/// Largest request body accepted by the admin forms.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;
/// Every request must be answered within this time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Store,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    pub limits: Arc<limits::Limits>,
    pub cache: Arc<api::Cache>,
}

impl AppState {
    pub fn new(db: Store, keys: Keys, clock: Arc<dyn Clock>, config: Config) -> AppState {
        AppState {
            db,
            keys,
            clock,
            config: Arc::new(config),
            limits: Arc::new(limits::Limits::default()),
            cache: Arc::new(api::Cache::default()),
        }
    }

    /// The current time in Unix seconds, read once per decision.
    pub fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(oauth::routes())
        .merge(api::routes())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    let pages = admin::routes().layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT));
    Router::new()
        .merge(api)
        .merge(pages)
        .fallback(|| async { Error::NotFound })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` completes. Client addresses
/// are made available to the handlers (sign-in rate limits).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let background = keys::spawn_reload(state.clone());
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    background.abort();
    result
}
