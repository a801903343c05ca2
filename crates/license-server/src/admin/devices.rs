//! The devices of an organization: their license state, registering one,
//! revoking one.

use askama::Template;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::audit::{entry, record};
use super::page::{changed, fmt_time, render, see_other, text, Layout, PageResult};
use super::session::{Confirmed, ManageDevices, NameForm, PermittedInOrg, Posted};
use crate::error::Error;
use crate::store::{Device, OnCopy, Org};
use crate::{secrets, AppState};

struct DeviceRow {
    id: i64,
    name: String,
    server_id: String,
    status: &'static str,
    status_class: &'static str,
    last_seen: String,
    token_expiry: String,
    can_revoke: bool,
    /// When the server saw signs of a second copy of its console.
    possible_copy: Option<String>,
}

/// What the devices page says of a device's license, and its pill's class.
fn license_state(d: &Device, now: i64) -> (&'static str, &'static str) {
    match (d.revoked_at, d.token_expiry) {
        (Some(_), _) => ("Revoked", "bad"),
        (None, Some(exp)) if exp > now => ("Licensed", "ok"),
        (None, Some(_)) => ("Token expired", "warn"),
        (None, None) if d.authorized_at.is_some() => ("License removed", "idle"),
        (None, None) => ("Not authorized", "idle"),
    }
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    l: Layout,
    org_name: String,
    devices: Vec<DeviceRow>,
    /// The organization's choice when a copy is noticed: `flag` or `revoke`.
    on_copy: &'static str,
}

pub(super) async fn page(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageDevices>,
) -> PageResult {
    let now = state.now();
    let devices = state
        .db
        .devices(org.id)
        .await?
        .into_iter()
        .map(|d| {
            let (status, status_class) = license_state(&d, now);
            DeviceRow {
                status,
                status_class,
                last_seen: fmt_time(d.last_seen),
                token_expiry: fmt_time(d.token_expiry),
                can_revoke: d.revoked_at.is_none() && d.authorized_at.is_some(),
                possible_copy: d.possible_copy_at.map(|t| fmt_time(Some(t))),
                id: d.id,
                name: d.name,
                server_id: d.server_id,
            }
        })
        .collect();
    Ok(render(&DevicesPage {
        l: Layout::of(&session, Some(&org), "devices"),
        org_name: org.name.clone(),
        devices,
        on_copy: org.on_copy.as_str(),
    }))
}

#[derive(Deserialize)]
pub(super) struct OnCopyForm {
    csrf: String,
    on_copy: String,
}

csrf_token!(OnCopyForm);

/// What the server does when it notices a possible copy of one of the
/// organization's consoles.
pub(super) async fn set_on_copy(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageDevices>,
    Posted(form): Posted<OnCopyForm>,
) -> PageResult {
    let on_copy = OnCopy::parse(&form.on_copy)
        .ok_or_else(|| Error::InvalidRequest("choose flag or revoke".into()))?;
    state.db.set_on_copy(org.id, on_copy).await?;
    let detail = format!("possible copies of a console: {}", on_copy.as_str());
    record(&state, &session, org.id, "organization.on_copy", &detail).await?;
    see_other("/admin/devices")
}

/// Registers a new device in the organization, with a new Server ID.
pub(super) async fn register(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageDevices>,
    Posted(form): Posted<NameForm>,
) -> PageResult {
    let name = text(&form.name, "Device name", 100, true)?;
    if state.db.device_by_name(org.id, &name).await?.is_some() {
        return Err(
            Error::InvalidRequest(format!("a device named \"{name}\" exists already")).into(),
        );
    }
    let server_id = secrets::new_server_id();
    let detail = format!("registered device \"{name}\" ({server_id})");
    let audit = entry(&state, &session, org.id, "device.registered", detail);
    state
        .db
        .register_device(org.id, &name, &server_id, &audit)
        .await?;
    see_other("/admin/devices")
}

/// A device of the admin's organization; 404 for any other.
async fn org_device(state: &AppState, org: &Org, id: i64) -> Result<Device, Error> {
    state
        .db
        .device(id)
        .await?
        .filter(|d| d.org_id == org.id)
        .ok_or(Error::NotFound)
}

#[derive(Template)]
#[template(path = "device_revoke.html")]
struct RevokePage {
    l: Layout,
    org_name: String,
    id: i64,
    name: String,
    server_id: String,
}

/// "Revoke": asks first, on a page of its own. No script confirms anything
/// (the pages run none), so a device's name can never become code.
pub(super) async fn confirm_revoke(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageDevices>,
    Path(id): Path<i64>,
) -> PageResult {
    let device = org_device(&state, &org, id).await?;
    Ok(render(&RevokePage {
        l: Layout::of(&session, Some(&org), "devices"),
        org_name: org.name.clone(),
        id: device.id,
        name: device.name,
        server_id: device.server_id,
    }))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<ManageDevices>,
    Path(id): Path<i64>,
    _: Confirmed,
) -> PageResult {
    let device = org_device(&state, &org, id).await?;
    let now = state.now();
    state.db.revoke_device(device.id, now).await?;
    record(
        &state,
        &session,
        org.id,
        "device.revoked",
        &format!("revoked device \"{}\" ({})", device.name, device.server_id),
    )
    .await?;
    changed(&state, "/admin/devices")
}
