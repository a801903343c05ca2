//! Server-rendered admin pages: sign-in, organization choice, Authorize
//! Device (RFC 8628 verification URI), devices, license packages, audit log,
//! offline activation by file.
//!
//! Sessions: a random id in an HttpOnly, SameSite=Lax cookie (Secure when the
//! issuer is https), stored server-side only as its SHA-256. Every form
//! carries a CSRF token derived from the session id (sign-in uses a
//! double-submit cookie instead, as there is no session yet). Both are
//! checked by the extractors in [`session`], so no handler can forget them.
//!
//! One module per resource; [`page`] holds what every page shares.

/// Implements [`session::CsrfToken`] for forms with a `csrf` field.
macro_rules! csrf_token {
    ($($form:ty),*) => {
        $(impl $crate::admin::session::CsrfToken for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}

mod account;
mod api_tokens;
mod audit;
mod device;
mod devices;
mod invitations;
mod keys;
mod login;
mod offline;
mod orgs;
mod packages;
mod page;
mod password;
mod session;
mod users;

use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use page::PageError;
pub use session::{ClientAddr, PageForm};

const DAY: i64 = 86_400;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/admin", get(|| async { Redirect::to("/admin/devices") }))
        .route("/admin/login", get(login::page).post(login::submit))
        .route("/admin/logout", post(login::logout))
        .route("/admin/orgs", get(orgs::page).post(orgs::choose))
        .route("/admin/orgs/new", post(orgs::create))
        .route("/device", get(device::page).post(device::submit))
        .route("/device/confirm", post(device::confirm))
        .route("/admin/devices", get(devices::page).post(devices::register))
        .route("/admin/devices/on-copy", post(devices::set_on_copy))
        .route(
            "/admin/devices/{id}/revoke",
            get(devices::confirm_revoke).post(devices::revoke),
        )
        .route(
            "/admin/packages",
            get(packages::list).post(packages::create),
        )
        .route("/admin/account", post(account::update))
        .route("/admin/account/suspend", post(account::suspend))
        .route("/admin/account/resume", post(account::resume))
        .route(
            "/admin/account/offline-days",
            post(account::set_offline_days),
        )
        .route("/admin/offline", get(offline::page))
        .route("/admin/offline/respond", post(offline::respond))
        .route("/admin/offline/deactivate", post(offline::deactivate))
        .route("/admin/offline/{id}/response", get(offline::download))
        .route(
            "/admin/packages/{id}",
            get(packages::page).post(packages::update),
        )
        .route("/admin/packages/{id}/renew", post(packages::renew))
        .route("/admin/packages/{id}/assignments", post(packages::assign))
        .route(
            "/admin/packages/{id}/assignments/{aid}/delete",
            post(packages::unassign),
        )
        .route("/admin/audit", get(audit::page))
        .route(
            "/admin/api-tokens",
            get(api_tokens::page).post(api_tokens::create),
        )
        .route("/admin/api-tokens/{id}/revoke", post(api_tokens::revoke))
        .route("/admin/keys", get(keys::page))
        .route("/admin/keys/rotate", post(keys::rotate))
        .route("/admin/keys/rotate-successor", post(keys::rotate_successor))
        .route(
            "/admin/keys/{kid}/withdraw",
            get(keys::confirm_withdraw).post(keys::withdraw),
        )
        .route("/admin/users", get(users::page))
        .route("/admin/users/invite", post(users::invite))
        .route("/admin/users/{id}/disable", post(users::disable))
        .route("/admin/users/{id}/enable", post(users::enable))
        .route("/admin/users/{id}/remove", post(users::remove))
        .route("/admin/users/{id}/leave", post(users::leave))
        .route(
            "/admin/invitations/{token}",
            get(invitations::page).post(invitations::accept),
        )
        .route(
            "/admin/password",
            get(password::page).post(password::change),
        )
}
