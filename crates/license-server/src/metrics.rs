//! Prometheus metrics, served at `/metrics` on a listen address of their own
//! (`--metrics-listen`), never on the public one: requests by route and
//! status, latency histograms by route, grants by type and outcome, the
//! batch writers' batch sizes, the license endpoint's cache hits and misses,
//! and the database pools.
//!
//! One registry per process ([`global`]): counters are plain atomics and
//! small maps under a mutex, recorded on the request path in well under a
//! microsecond. Labels are bounded: routes are axum's route templates
//! (`/admin/devices/{id}/revoke`, never a real id), unmatched paths are one
//! label, statuses and grant outcomes are fixed codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds of the batch size histogram buckets.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A cumulative histogram with fixed buckets.
#[derive(Clone, Default)]
struct Histogram {
    /// Per bucket (not cumulative here), then +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(bounds.len());
        self.counts[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// Which cache of the license endpoint.
#[derive(Debug, Clone, Copy)]
pub enum CacheKind {
    /// Verified license tokens.
    Tokens,
    /// Organizations' license accounts.
    Accounts,
}

/// What one route template saw.
#[derive(Default)]
struct RouteStats {
    /// (method, status) → requests.
    requests: BTreeMap<(&'static str, u16), u64>,
    latency: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    /// route template → its requests and latency.
    routes: Mutex<BTreeMap<String, RouteStats>>,
    /// (grant type, outcome) → grants.
    grants: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// batch writer → batch sizes.
    batches: Mutex<BTreeMap<&'static str, Histogram>>,
    /// hits and misses of the token cache, then of the account cache.
    cache: [AtomicU64; 4],
}

/// The process's registry.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);
    &METRICS
}

impl Metrics {
    /// One answered request: one lock, and an allocation only the first
    /// time a route is seen.
    pub fn request(&self, route: &str, method: &'static str, status: u16, latency: Duration) {
        let mut routes = lock(&self.routes);
        let stats = match routes.get_mut(route) {
            Some(stats) => stats,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats.requests.entry((method, status)).or_default() += 1;
        stats
            .latency
            .observe(&LATENCY_BUCKETS, latency.as_secs_f64());
    }

    /// A token request: `grant` is the grant type's short name
    /// (`device_code`, `refresh_token`, `unsupported`), `outcome` `issued`
    /// or the OAuth error code.
    pub fn grant(&self, grant: &'static str, outcome: &'static str) {
        *lock(&self.grants).entry((grant, outcome)).or_default() += 1;
    }

    /// A batch of `size` requests written or read at once by `writer`.
    pub fn batch(&self, writer: &'static str, size: usize) {
        lock(&self.batches)
            .entry(writer)
            .or_default()
            .observe(&BATCH_BUCKETS, size as f64);
    }

    pub fn cache(&self, kind: CacheKind, hit: bool) {
        let i = match (kind, hit) {
            (CacheKind::Tokens, true) => 0,
            (CacheKind::Tokens, false) => 1,
            (CacheKind::Accounts, true) => 2,
            (CacheKind::Accounts, false) => 3,
        };
        self.cache[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4) of everything, with
    /// the database pools of `state`.
    pub fn render(&self, state: &AppState) -> String {
        let mut out = String::new();
        out += "# HELP license_server_http_requests_total HTTP requests by route template, method and status.\n";
        out += "# TYPE license_server_http_requests_total counter\n";
        let routes = lock(&self.routes);
        for (route, stats) in routes.iter() {
            for ((method, status), n) in &stats.requests {
                let _ = writeln!(
                    out,
                    "license_server_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                    escape(route),
                );
            }
        }
        out += "# HELP license_server_http_request_duration_seconds Time to answer, by route template.\n";
        out += "# TYPE license_server_http_request_duration_seconds histogram\n";
        for (route, stats) in routes.iter() {
            stats.latency.render(
                &mut out,
                "license_server_http_request_duration_seconds",
                &format!("route=\"{}\"", escape(route)),
                &LATENCY_BUCKETS,
            );
        }
        out += "# HELP license_server_grants_total Token requests by grant type and outcome (issued, or the OAuth error code).\n";
        out += "# TYPE license_server_grants_total counter\n";
        for ((grant, outcome), n) in lock(&self.grants).iter() {
            let _ = writeln!(
                out,
                "license_server_grants_total{{grant_type=\"{grant}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out += "# HELP license_server_batch_size Requests per database batch, by batch writer or reader.\n";
        out += "# TYPE license_server_batch_size histogram\n";
        for (writer, h) in lock(&self.batches).iter() {
            h.render(
                &mut out,
                "license_server_batch_size",
                &format!("writer=\"{writer}\""),
                &BATCH_BUCKETS,
            );
        }
        out += "# HELP license_server_cache_requests_total License endpoint cache lookups by cache and result.\n";
        out += "# TYPE license_server_cache_requests_total counter\n";
        for (i, (cache, result)) in [
            ("tokens", "hit"),
            ("tokens", "miss"),
            ("accounts", "hit"),
            ("accounts", "miss"),
        ]
        .iter()
        .enumerate()
        {
            let n = self.cache[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "license_server_cache_requests_total{{cache=\"{cache}\",result=\"{result}\"}} {n}"
            );
        }
        out += "# HELP license_server_db_pool_connections Database pool connections by pool and state.\n";
        out += "# TYPE license_server_db_pool_connections gauge\n";
        for (pool, size, idle) in state.db.pool_stats() {
            let _ = writeln!(
                out,
                "license_server_db_pool_connections{{pool=\"{pool}\",state=\"idle\"}} {idle}"
            );
            let _ = writeln!(
                out,
                "license_server_db_pool_connections{{pool=\"{pool}\",state=\"busy\"}} {}",
                (size as usize).saturating_sub(idle)
            );
        }
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records every request of the public app: route template, method, status
/// and latency.
pub async fn record(request: Request, next: Next) -> Response {
    // A cheap clone (the template is shared), kept across the handler.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    global().request(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The metrics app, for the metrics listen address.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = global().render(&state).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
