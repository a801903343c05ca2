//! What every admin page shares: the layout, rendering, error pages and the
//! formatting and checking of form fields. Security headers are not set
//! here: `crate::app` adds them to every admin response as layers.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use time::macros::format_description;
use time::Date;

use super::session::Session;
use crate::error::Error;
use crate::roles::Action;
use crate::store::{to_time, Org};
use crate::AppState;

/// An error shown as a page.
pub struct PageError(pub(super) Error);

impl<E: Into<Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "page failed");
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            s if s.is_client_error() => "Request not accepted",
            _ => "Something went wrong",
        };
        let page = MessagePage {
            l: Layout::anonymous(),
            title: title.into(),
            kind: "error",
            message: self.0.public_message(),
            link: Some(("/admin".into(), "Back to the admin pages".into())),
        };
        (status, render(&page)).into_response()
    }
}

pub(super) type PageResult = Result<Response, PageError>;

/// After a form is done: the page to see next (303 See Other).
pub(super) fn see_other(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}

/// After a change to an organization's license account (its packages,
/// devices or account): the license endpoint's caches are dropped, and the
/// admin sees `to`.
pub(super) fn changed(state: &AppState, to: &str) -> PageResult {
    state.cache.account_changed();
    see_other(to)
}

pub(super) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
        }
    }
}

/// The frame of every page: who is signed in, in which organization.
pub struct Layout {
    pub(super) signed_in: bool,
    pub(super) email: String,
    pub(super) org_name: Option<String>,
    pub(super) csrf: String,
    pub(super) active: &'static str,
    /// How the page names the signed-in user's role.
    pub(super) role: &'static str,
    /// What the role may change, for the forms a page shows.
    pub(super) manage_orgs: bool,
    pub(super) manage_packages: bool,
    pub(super) manage_users: bool,
    pub(super) manage_keys: bool,
    pub(super) manage_org_admins: bool,
}

impl Layout {
    pub(super) fn anonymous() -> Layout {
        Layout {
            signed_in: false,
            email: String::new(),
            org_name: None,
            csrf: String::new(),
            active: "",
            role: "",
            manage_orgs: false,
            manage_packages: false,
            manage_users: false,
            manage_keys: false,
            manage_org_admins: false,
        }
    }

    pub(super) fn of(session: &Session, org: Option<&Org>, active: &'static str) -> Layout {
        Layout {
            signed_in: true,
            email: session.email.clone(),
            org_name: org.map(|o| o.name.clone()),
            csrf: session.csrf.clone(),
            active,
            role: session.role.label(),
            manage_orgs: session.may(Action::ManageOrganizations),
            manage_packages: session.may(Action::ManagePackages),
            manage_users: session.may(Action::ManageUsers),
            manage_keys: session.may(Action::ManageKeys),
            manage_org_admins: session.may(Action::ManageOrgAdmins),
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
pub(super) struct MessagePage {
    pub(super) l: Layout,
    pub(super) title: String,
    pub(super) kind: &'static str,
    pub(super) message: String,
    pub(super) link: Option<(String, String)>,
}

/// Only local paths: no open redirects.
/// Where to go after signing in: only a path of this site. No scheme, no
/// `//` (another host), and no backslash, whitespace or control character
/// anywhere (browsers drop a tab or newline, so `/\t/evil.example` is read as
/// `//evil.example`, and many read `\` as `/`). Anything else: `/admin`.
pub(super) fn safe_next(next: Option<&str>) -> String {
    let same_site = |n: &str| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.len() <= 2048
            && !n
                .chars()
                .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
    };
    match next {
        Some(n) if same_site(n) => n.to_owned(),
        _ => "/admin".to_owned(),
    }
}

pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn fmt_time(t: Option<i64>) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.and_then(to_time)
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| "—".into())
}

pub(super) fn fmt_date(t: Option<i64>) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    t.and_then(to_time)
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_default()
}

pub(super) fn parse_date(s: &str, field: &str) -> Result<i64, Error> {
    let fmt = format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| Error::InvalidRequest(format!("{field}: expected a date like 2025-12-31")))
}

/// `Valid from` and `Valid until` of a form, the second after the first.
pub(super) fn parse_period(from: &str, until: &str) -> Result<(i64, i64), Error> {
    let from = parse_date(from, "Valid from")?;
    let until = parse_date(until, "Valid until")?;
    if until <= from {
        return Err(Error::InvalidRequest(
            "Valid until must be after Valid from".into(),
        ));
    }
    Ok((from, until))
}

pub(super) fn text(s: &str, field: &str, max: usize, required: bool) -> Result<String, Error> {
    let t = s.trim();
    if required && t.is_empty() {
        return Err(Error::InvalidRequest(format!("{field} is required")));
    }
    if t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
            "{field}: at most {max} characters, no control characters"
        )));
    }
    Ok(t.to_owned())
}
