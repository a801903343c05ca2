//! The authorization and license server.
//!
//! - OAuth 2.0 Device Authorization Grant (RFC 8628) for the License Console,
//!   refresh-token rotation with reuse detection, token revocation (RFC 7009)
//!   and server metadata (RFC 8414).
//! - `GET /api/v1/license`: the signed license account of the calling device.
//! - Server-rendered admin pages: sign-in, Authorize Device, devices,
//!   license packages, audit log, offline activation by file.
//!
//! [`app`] builds the router; [`serve`] binds it. `main.rs` only parses flags.

pub mod accounts;
pub mod admin;
pub mod api;
pub mod approval;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod dpop;
pub mod error;
pub mod health;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod oauth;
pub mod offline;
pub mod peers;
pub mod roles;
pub mod secrets;
pub mod store;
pub mod vendor_api;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ServeArgs};
pub use error::Error;
pub use keys::Keys;
pub use store::Store;

/// The OAuth client id of the License Console (a public client).
pub use license_core::protocol::CONSOLE_CLIENT_ID;

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
    pub dpop: Arc<dpop::DpopGuard>,
}

impl AppState {
    pub fn new(db: Store, keys: Keys, clock: Arc<dyn Clock>, config: Config) -> AppState {
        let peers = peers::Peers::of(&db);
        let limits = limits::Limits::new(&db);
        let dpop = dpop::DpopGuard::new(&db);
        AppState {
            db,
            keys,
            clock,
            config: Arc::new(config),
            limits: Arc::new(limits),
            cache: Arc::new(api::Cache::new(peers)),
            dpop: Arc::new(dpop),
        }
    }

    /// The current time in Unix seconds, read once per decision.
    pub fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }
}

/// The admin pages' Content Security Policy: inline styles and scripts of
/// the server's own templates only, forms posted to the server only, never
/// framed.
/// No script at all (`default-src 'none'` covers `script-src`): the pages
/// work without one, so no name or text can ever become code.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The whole HTTP surface.
///
/// Cross-cutting behaviour is layered here, not repeated in handlers:
/// body limits, the request timeout, the admin pages' security headers, and
/// request tracing (method, path without query, status, latency: never a
/// header, a query or a body, so no token or secret reaches the log).
pub fn app(state: AppState) -> Router {
    // Over https, browsers are told to use nothing else for a year.
    let hsts = state.config.secure_cookies().then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    let api = Router::new()
        .merge(oauth::routes())
        .merge(api::routes())
        .merge(vendor_api::routes())
        .merge(health::routes())
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    let pages = admin::routes()
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    Router::new()
        .merge(api)
        .merge(pages)
        .fallback(|| async { Error::NotFound })
        .layer(axum::middleware::from_fn(metrics::record))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(tower::util::option_layer(hsts))
        // One span per request with its method and path (the query is left
        // out: it may hold a user code), one event per response.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                    )
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, _: &Span| {
                    tracing::info!(status = response.status().as_u16(), ?latency, "response");
                })
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .with_state(state)
}

/// At most this many connections are served at once; more wait in the
/// kernel's backlog.
pub const MAX_CONNECTIONS: usize = 8192;

/// Serves [`app`] on `listener` until `shutdown` completes, then lets the
/// requests in flight finish. Client addresses are made available to the
/// handlers (rate limits). A client must send a request's headers within
/// `Config::header_read_timeout`, the wait for the next request on a
/// kept-alive connection included, so connections held open by slow or
/// silent clients (slowloris) are closed.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    let background = keys::spawn_reload(state.clone());
    let listener_of_peers = peers::spawn_listener(state.clone());
    let header_read_timeout = state.config.header_read_timeout;
    let router = app(state);
    let connections = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => {
                permit.expect("the connection limit is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    background.abort();
    if let Some(task) = listener_of_peers {
        task.abort();
    }
    // Requests in flight finish; idle connections close.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(REQUEST_TIMEOUT) => {}
    }
    Ok(())
}
