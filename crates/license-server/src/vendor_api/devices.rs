//! Devices of an organization: list, revoke.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Writer};
use super::orgs::find as find_org;
use super::{rfc3339, ApiResult, Id, Problem};
use crate::store::Device;
use crate::AppState;

/// Where a device's license stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Registered, never authorized.
    NotAuthorized,
    /// Holds a license token that has not expired.
    Licensed,
    /// Its license token expired.
    TokenExpired,
    /// Authorized once, holds no token now.
    LicenseRemoved,
    Revoked,
}

/// A device (a server of the organization) and its license.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub server_id: String,
    pub state: DeviceState,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub authorized_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    #[schema(format = DateTime)]
    pub token_expiry: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl DeviceView {
    fn of(d: &Device, now: i64) -> DeviceView {
        let state = match (d.revoked_at, d.token_expiry) {
            (Some(_), _) => DeviceState::Revoked,
            (None, Some(exp)) if exp > now => DeviceState::Licensed,
            (None, Some(_)) => DeviceState::TokenExpired,
            (None, None) if d.authorized_at.is_some() => DeviceState::LicenseRemoved,
            (None, None) => DeviceState::NotAuthorized,
        };
        DeviceView {
            id: d.id,
            org_id: d.org_id,
            name: d.name.clone(),
            server_id: d.server_id.clone(),
            state,
            created_at: rfc3339(d.created_at),
            authorized_at: d.authorized_at.map(rfc3339),
            last_seen: d.last_seen.map(rfc3339),
            token_expiry: d.token_expiry.map(rfc3339),
            revoked_at: d.revoked_at.map(rfc3339),
        }
    }
}

/// The devices of an organization, by name.
#[utoipa::path(get, operation_id = "list_devices", path = "/api/v1/vendor/orgs/{org_id}/devices", tag = "devices",
    params(("org_id" = i64, Path, description = "The organization's id")),
    responses((status = 200, description = "Its devices, by name", body = [DeviceView])))]
pub async fn list(
    State(state): State<AppState>,
    _: Caller,
    Id(org_id): Id,
) -> ApiResult<Json<Vec<DeviceView>>> {
    find_org(&state, org_id).await?;
    let now = state.now();
    let devices = state.db.devices(org_id).await?;
    Ok(Json(
        devices.iter().map(|d| DeviceView::of(d, now)).collect(),
    ))
}

/// Revokes a device and every token it holds (write scope). Revoking a
/// revoked device changes nothing.
#[utoipa::path(post, operation_id = "revoke_device", path = "/api/v1/vendor/devices/{device_id}/revoke", tag = "devices",
    params(("device_id" = i64, Path, description = "The device's id")),
    responses((status = 200, description = "The device, revoked", body = DeviceView)))]
pub async fn revoke(
    State(state): State<AppState>,
    writer: Writer,
    Id(id): Id,
) -> ApiResult<Json<DeviceView>> {
    let device = state
        .db
        .device(id)
        .await?
        .ok_or_else(|| Problem::not_found("device"))?;
    let now = state.now();
    if device.revoked_at.is_none() {
        state.db.revoke_device(id, now).await?;
        state.cache.chain_revoked();
        state.cache.account_changed();
        let detail = format!("revoked device \"{}\" ({})", device.name, device.server_id);
        writer
            .record(&state, Some(device.org_id), "device.revoked", detail)
            .await?;
    }
    let device = state
        .db
        .device(id)
        .await?
        .ok_or_else(|| Problem::not_found("device"))?;
    Ok(Json(DeviceView::of(&device, now)))
}
