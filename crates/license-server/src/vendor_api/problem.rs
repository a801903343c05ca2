//! Errors of the vendor API as RFC 9457 problem details
//! (`application/problem+json`). Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProblemBody {
    /// `about:blank`: the status code says what kind of problem it is.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status code's phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a person to read.
    pub detail: String,
}

/// An error answer of the vendor API.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    detail: String,
}

pub type ApiResult<T> = Result<T, Problem>;

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
        }
    }

    /// 400 or 422: a request body or parameter that is not acceptable.
    pub fn invalid(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, format!("no such {what}"))
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, detail)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            type_: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
        }
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        let status = e.status();
        if status.is_server_error() {
            tracing::error!(error = %e, "vendor API request failed");
        }
        let detail = match e {
            Error::NotFound => "no such resource".to_owned(),
            other => other.public_message(),
        };
        // The OAuth error codes answer 400 for everything; here a
        // well-formed but unacceptable request is 422.
        Problem::new(status, detail)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Problem {
        // Two requests creating the same name at once: the second loses.
        if e.as_database_error()
            .is_some_and(|d| d.is_unique_violation())
        {
            return Problem::conflict("the name is taken");
        }
        Error::from(e).into()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vendor-api\""),
            );
        }
        response
    }
}
