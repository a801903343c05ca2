//! The vendor API (`/api/v1/vendor/`): what the vendor's billing or CRM
//! system does to organizations, their license packages and totals,
//! devices, users and invitations, and the audit log.
//!
//! - Authentication by vendor API tokens ([`auth`]), created and revoked by
//!   vendor operators on `/admin/api-tokens`; `read` or `write` scope. Every
//!   write is in the audit log as `api:<token name>`.
//! - Errors are RFC 9457 problem details ([`problem`]); no malformed input
//!   gets a 500.
//! - The OpenAPI 3.1 document (`/api/v1/vendor/openapi.json`) is generated
//!   from the handlers and their types ([`openapi`]); routes are registered
//!   only through `utoipa_axum::routes!`, so each route is in it.
//!
//! Times are RFC 3339 strings in UTC; inputs take a date (`2026-12-31`,
//! midnight UTC) or an RFC 3339 date-time.

pub mod audit;
pub mod auth;
pub mod devices;
pub mod openapi;
pub mod orgs;
pub mod packages;
pub mod problem;
pub mod users;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
pub use problem::{ApiResult, Problem, ProblemBody};

/// Where the API lives.
pub const PREFIX: &str = "/api/v1/vendor";

/// The router and its OpenAPI document, built together.
pub fn router_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(orgs::list, orgs::create))
        .routes(routes!(orgs::get, orgs::update))
        .routes(routes!(orgs::suspend))
        .routes(routes!(orgs::resume))
        .routes(routes!(packages::list, packages::create))
        .routes(routes!(packages::get, packages::update))
        .routes(routes!(packages::renew))
        .routes(routes!(devices::list))
        .routes(routes!(devices::revoke))
        .routes(routes!(users::list))
        .routes(routes!(users::invite))
        .routes(routes!(users::remove))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(audit::list))
        .routes(routes!(openapi::document))
        .split_for_parts();
    openapi::complete(&mut doc);
    (router, doc)
}

/// The routes; anything else under the prefix is a 404 problem, and a
/// method a route does not take a 405 problem.
pub fn routes() -> Router<AppState> {
    let (router, _) = router_and_document();
    let not_found = || async { Problem::not_found("resource").into_response() };
    router
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "the resource does not take this method; see /api/v1/vendor/openapi.json",
            )
        })
        .route("/api/v1/vendor", any(not_found))
        .route("/api/v1/vendor/", any(not_found))
        .route("/api/v1/vendor/{*rest}", any(not_found))
}

/// A JSON request body; its rejections are problems (400 malformed JSON,
/// 415 not JSON, 413 too large, 422 wrong fields or types).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => Err(Problem::new(r.status(), r.body_text())),
        }
    }
}

/// A path parameter; one that does not parse names nothing (404).
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<i64>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(id)) => Ok(Id(id)),
            Err(_) => Err(Problem::not_found("resource (ids are whole numbers)")),
        }
    }
}

/// Query parameters; a wrong one is 400.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(r) => Err(Problem::bad_request(r.body_text())),
        }
    }
}

/// A stored time as RFC 3339.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A date (`2026-12-31`, midnight UTC) or an RFC 3339 date-time.
pub fn parse_time(field: &str, s: &str) -> ApiResult<i64> {
    let s = s.trim();
    let date = Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map(|d| d.midnight().assume_utc());
    date.or_else(|_| OffsetDateTime::parse(s, &Rfc3339))
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            Problem::invalid(format!(
                "{field}: expected a date like 2026-12-31 or a date-time like 2026-12-31T00:00:00Z"
            ))
        })
}

/// `from` before `until`.
pub fn check_period(from: i64, until: i64) -> ApiResult<()> {
    if until <= from {
        return Err(Problem::invalid("valid_until must be after valid_from"));
    }
    Ok(())
}

/// Trimmed text of at most `max` characters, none a control character.
pub fn text(s: &str, field: &str, max: usize, required: bool) -> ApiResult<String> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(Problem::invalid(format!("{field} must not be empty")));
    }
    if t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(Problem::invalid(format!(
            "{field}: at most {max} characters, no control characters"
        )));
    }
    Ok(t.to_owned())
}

/// For PATCH bodies: a field that is absent (`None`), `null`
/// (`Some(None)`) or set (`Some(Some(v))`).
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
