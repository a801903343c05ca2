//! The OpenAPI 3.1 document of the vendor API, generated from the handlers'
//! `#[utoipa::path]` attributes and their types. The error answers every
//! route shares (401, 403, 404, 400/413/415/422) are added here from what
//! the route takes, so no handler can forget to document them.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use super::problem::{ProblemBody, PROBLEM_JSON};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "License server vendor API",
        version = "1",
        description = "Provisioning for the vendor's billing or CRM systems: organizations, \
license packages and totals, devices, users and invitations, the audit log. Authenticate with \
`Authorization: Bearer <token>`, a token a vendor operator created on /admin/api-tokens; a \
`read` token reads, a `write` token also changes. Errors are RFC 9457 problem details \
(application/problem+json). Times are RFC 3339 in UTC; inputs also take a date (2026-12-31)."
    ),
    modifiers(&Bearer),
    security(("bearer" = [])),
    components(schemas(ProblemBody)),
    tags(
        (name = "organizations", description = "Organizations and their license account"),
        (name = "packages", description = "License packages and their totals"),
        (name = "devices", description = "Devices of an organization"),
        (name = "users", description = "Users and invitations"),
        (name = "audit", description = "The audit log"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A vendor API token (`lsv_...`)"))
                    .build(),
            ),
        );
    }
}

/// The document before the routes add their paths.
pub fn base() -> OpenApi {
    ApiDoc::openapi()
}

fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemBody")))
                .build(),
        )
        .build()
}

/// Adds the error answers a route can give by what it takes: a token (401),
/// a write token (403), an id or a reference to something (404), a body
/// (400, 413, 415, 422), query parameters (400).
pub fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = path.ends_with("/openapi.json");
        let methods = [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Delete, &mut item.delete),
            (HttpMethod::Put, &mut item.put),
        ];
        for (method, op) in methods {
            if let Some(op) = op {
                if !public {
                    add_errors(path, method, op);
                }
            }
        }
    }
}

fn add_errors(path: &str, method: HttpMethod, op: &mut Operation) {
    let has_body = op.request_body.is_some();
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    });
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description).into());
    };
    add("401", "No token, or an unknown or revoked one");
    if !matches!(method, HttpMethod::Get) {
        add("403", "A read token; this needs a write token");
    }
    if path.contains('{') || has_body || has_query {
        add("404", "No such organization, package, device or user");
    }
    if has_body {
        add("400", "The body is not well-formed JSON");
        add("413", "The body is too large");
        add("415", "The body is not application/json");
        add(
            "422",
            "A field is missing, of the wrong type, or not acceptable",
        );
    }
    if has_query {
        add("400", "A query parameter is not acceptable");
    }
}

/// This document.
#[utoipa::path(get, operation_id = "openapi_document", path = "/api/v1/vendor/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json", body = Object)))]
pub async fn document() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        serde_json::to_string_pretty(&super::router_and_document().1).unwrap_or_default()
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.clone())
}
