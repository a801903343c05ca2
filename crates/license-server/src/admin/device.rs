//! Authorize Device: the RFC 8628 verification URI. The admin enters the
//! user code shown on the device, chooses the device, then confirms.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use super::page::{render, text, Layout, MessagePage, PageResult};
use super::session::{AuthorizeDevice, ClientAddr, PermittedInOrg, Posted, Session};
use crate::approval::{self, Decision, Target};
use crate::error::Error;
use crate::limits::USER_CODE_MAX_FAILURES;
use crate::store::{Device, DeviceCode, Org};
use crate::{secrets, AppState};

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    l: Layout,
    org_name: String,
    devices: Vec<(String, String)>,
    selected: String,
    new_device_name: String,
    user_code: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DeviceQuery {
    user_code: Option<String>,
}

fn device_page_for(session: &Session, org: &Org, devices: &[Device]) -> DevicePage {
    DevicePage {
        l: Layout::of(session, Some(org), "device"),
        org_name: org.name.clone(),
        devices: devices
            .iter()
            .map(|d| {
                let label = if d.revoked_at.is_some() {
                    format!("{} (revoked)", d.name)
                } else {
                    d.name.clone()
                };
                (d.id.to_string(), label)
            })
            .collect(),
        selected: devices
            .first()
            .map(|d| d.id.to_string())
            .unwrap_or_else(|| "new".into()),
        new_device_name: String::new(),
        user_code: String::new(),
        error: None,
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<AuthorizeDevice>,
    Query(q): Query<DeviceQuery>,
) -> PageResult {
    let devices = state.db.devices(org.id).await?;
    let mut page = device_page_for(&session, &org, &devices);
    page.user_code = q.user_code.unwrap_or_default().chars().take(12).collect();
    Ok(render(&page))
}

#[derive(Deserialize)]
pub(super) struct DeviceForm {
    csrf: String,
    device: String,
    #[serde(default)]
    new_device_name: String,
    user_code: String,
    decision: Option<String>,
}

csrf_token!(DeviceForm);

/// An Authorize Device form posted by an admin working in an organization,
/// with the address it came from (for the limits on user code entry).
pub(super) struct DeviceEntry {
    addr: String,
    session: Session,
    org: Org,
    form: DeviceForm,
}

impl FromRequest<AppState> for DeviceEntry {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(ClientAddr(addr)) = ClientAddr::from_request_parts(&mut parts, state).await;
        let PermittedInOrg { session, org, .. } =
            PermittedInOrg::<AuthorizeDevice>::from_request_parts(&mut parts, state).await?;
        let Posted(form) = Posted::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(DeviceEntry {
            addr,
            session,
            org,
            form,
        })
    }
}

/// Validates the form; on a problem, the form again with a message.
async fn check_device_form(
    state: &AppState,
    entry: &DeviceEntry,
) -> Result<Result<(Target, DeviceCode), Response>, Error> {
    let DeviceEntry {
        addr,
        session,
        org,
        form,
    } = entry;
    let now = state.now();
    let devices = state.db.devices(org.id).await?;
    let again = |message: String, status: StatusCode| {
        let mut page = device_page_for(session, org, &devices);
        page.selected = form.device.chars().take(20).collect();
        page.new_device_name = form.new_device_name.chars().take(100).collect();
        page.user_code = form.user_code.chars().take(12).collect();
        page.error = Some(message);
        (status, render(&page)).into_response()
    };
    let session_key = format!("session:{}", URL_SAFE_NO_PAD.encode(&session.id_hash));
    let addr_key = format!("addr:{addr}");
    let limiter = &state.limits.user_code;
    let locked = limiter
        .check(&session_key, USER_CODE_MAX_FAILURES, now)
        .await?
        .and(
            limiter
                .check(&addr_key, USER_CODE_MAX_FAILURES * 4, now)
                .await?,
        );
    if let Err(wait) = locked {
        let minutes = (wait + 59) / 60;
        return Ok(Err(again(
            format!("Too many wrong user codes. Code entry is locked for {minutes} minutes."),
            StatusCode::TOO_MANY_REQUESTS,
        )));
    }
    let pending = match secrets::normalize_user_code(&form.user_code) {
        Some(code) => state.db.pending_device_code(&code, now).await?,
        None => None,
    };
    let Some(pending) = pending else {
        limiter.fail(&session_key, now).await?;
        limiter.fail(&addr_key, now).await?;
        return Ok(Err(again(
            "This user code is not valid or has expired. Check the code shown on the device."
                .into(),
            StatusCode::BAD_REQUEST,
        )));
    };
    let target = if form.device == "new" {
        let name = match text(&form.new_device_name, "New device name", 100, true) {
            Ok(n) => n,
            Err(e) => return Ok(Err(again(e.public_message(), StatusCode::BAD_REQUEST))),
        };
        if devices.iter().any(|d| d.name == name) {
            return Ok(Err(again(
                format!("A device named \"{name}\" exists already; choose it from the list."),
                StatusCode::BAD_REQUEST,
            )));
        }
        Target::New(name)
    } else {
        let found = form
            .device
            .parse::<i64>()
            .ok()
            .and_then(|id| devices.iter().find(|d| d.id == id).cloned());
        match found {
            Some(d) => Target::Existing(d),
            None => {
                return Ok(Err(again(
                    "Choose a device.".into(),
                    StatusCode::BAD_REQUEST,
                )))
            }
        }
    };
    Ok(Ok((target, pending)))
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct ConfirmPage {
    l: Layout,
    org_name: String,
    device_label: String,
    server_id: String,
    device: String,
    new_device_name: String,
    user_code: String,
    user_code_display: String,
}

pub(super) async fn submit(State(state): State<AppState>, entry: DeviceEntry) -> PageResult {
    let (target, pending) = match check_device_form(&state, &entry).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let DeviceEntry { session, org, .. } = entry;
    let (device_label, server_id, device, new_device_name) = match target {
        Target::Existing(d) => (d.name, d.server_id, d.id.to_string(), String::new()),
        Target::New(name) => (
            format!("{name} (new device)"),
            "assigned on authorization".to_owned(),
            "new".to_owned(),
            name,
        ),
    };
    let page = ConfirmPage {
        l: Layout::of(&session, Some(&org), "device"),
        org_name: org.name.clone(),
        device_label,
        server_id,
        device,
        new_device_name,
        user_code_display: secrets::display_user_code(&pending.user_code),
        user_code: pending.user_code,
    };
    Ok(render(&page))
}

pub(super) async fn confirm(State(state): State<AppState>, entry: DeviceEntry) -> PageResult {
    let approve = match entry.form.decision.as_deref() {
        Some("authorize") => true,
        Some("deny") => false,
        _ => return Err(Error::InvalidRequest("choose Authorize or Deny".into()).into()),
    };
    let (target, pending) = match check_device_form(&state, &entry).await? {
        Ok(v) => v,
        Err(page) => return Ok(page),
    };
    let DeviceEntry { session, org, .. } = entry;
    let decided = approval::decide(
        &state.db,
        Decision {
            org_id: org.id,
            code: &pending,
            target,
            approve,
            user_id: Some(session.user_id),
            actor: &session.email,
            now: state.now(),
        },
    )
    .await?
    .ok_or_else(|| Error::InvalidRequest("this user code is no longer pending".into()))?;
    state.cache.account_changed();
    let name = decided.name;
    let (title, kind, message) = if approve {
        (
            "Device authorized",
            "ok",
            format!("{name} is now licensed for {}. Return to the device and choose Complete Authorization.", org.name),
        )
    } else {
        (
            "Authorization denied",
            "error",
            format!("The request of {name} was denied. The device receives no license."),
        )
    };
    let page = MessagePage {
        l: Layout::of(&session, Some(&org), "device"),
        title: title.into(),
        kind,
        message,
        link: Some(("/admin/devices".into(), "View devices".into())),
    };
    Ok(render(&page))
}
