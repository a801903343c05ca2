//! Offline activation: an organization admin answers an air-gapped
//! console's activation request with a response file, and takes its
//! deactivation file. The work is `crate::offline`'s (the CLI's too); this
//! is the page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::page::{render, Layout, MessagePage, PageResult};
use super::session::{OfflineActivation, PermittedInOrg, Posted, Session};
use crate::approval::Target;
use crate::error::Error;
use crate::offline::{self, fmt_time, Deactivate, Refusal, Respond, Server};
use crate::store::{Device, Org};
use crate::AppState;

#[derive(Template)]
#[template(path = "offline.html")]
struct OfflinePage {
    l: Layout,
    org_name: String,
    offline_days: u32,
    /// The organization's devices that may be licensed: (id, name).
    devices: Vec<(String, String)>,
    selected: String,
    new_device_name: String,
    request: String,
    respond_error: Option<String>,
    deactivation: String,
    deactivate_error: Option<String>,
}

fn offline_page(session: &Session, org: &Org, devices: &[Device]) -> OfflinePage {
    let active: Vec<(String, String)> = devices
        .iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| (d.id.to_string(), d.name.clone()))
        .collect();
    OfflinePage {
        l: Layout::of(session, Some(org), "offline"),
        org_name: org.name.clone(),
        offline_days: org.offline_days,
        selected: active
            .first()
            .map(|d| d.0.clone())
            .unwrap_or_else(|| "new".into()),
        devices: active,
        new_device_name: String::new(),
        request: String::new(),
        respond_error: None,
        deactivation: String::new(),
        deactivate_error: None,
    }
}

/// A message as a sentence on the page: the core's start in lower case.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) async fn page(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<OfflineActivation>,
) -> PageResult {
    let devices = state.db.devices(org.id).await?;
    Ok(render(&offline_page(&session, &org, &devices)))
}

#[derive(Deserialize)]
pub(super) struct RespondForm {
    csrf: String,
    #[serde(default)]
    request: String,
    /// The request file chosen instead of pasting (a multipart upload).
    #[serde(default)]
    request_file: String,
    device: String,
    #[serde(default)]
    new_device_name: String,
}

#[derive(Deserialize)]
pub(super) struct DeactivateForm {
    csrf: String,
    #[serde(default)]
    file: String,
    /// The deactivation file chosen instead of pasting.
    #[serde(default)]
    file_upload: String,
}

/// A file chosen wins over the text field beside it.
fn chosen(upload: String, pasted: String) -> String {
    if upload.trim().is_empty() {
        pasted
    } else {
        upload
    }
}

csrf_token!(RespondForm, DeactivateForm);

#[derive(Template)]
#[template(path = "offline_response.html")]
struct ResponsePage {
    l: Layout,
    org_name: String,
    id: i64,
    device_name: String,
    server_id: String,
    expires: String,
    text: String,
    file_name: String,
}

/// "Create activation response": the response, or the form again with what
/// is wrong (400, nothing changed).
pub(super) async fn respond(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<OfflineActivation>,
    Posted(mut form): Posted<RespondForm>,
) -> PageResult {
    form.request = chosen(std::mem::take(&mut form.request_file), form.request);
    let devices = state.db.devices(org.id).await?;
    let again = |message: String| {
        let mut page = offline_page(&session, &org, &devices);
        page.selected = form.device.chars().take(20).collect();
        page.new_device_name = form.new_device_name.chars().take(100).collect();
        page.request = form.request.clone();
        page.respond_error = Some(sentence(&message));
        (StatusCode::BAD_REQUEST, render(&page)).into_response()
    };
    let target = if form.device == "new" {
        Target::New(form.new_device_name.clone())
    } else {
        let found = form
            .device
            .parse::<i64>()
            .ok()
            .and_then(|id| devices.iter().find(|d| d.id == id).cloned());
        match found {
            Some(d) => Target::Existing(d),
            None => return Ok(again("Choose a device.".into())),
        }
    };
    let answered = offline::respond(
        Server::of(&state),
        Respond {
            org_id: org.id,
            target,
            request: &form.request,
            actor: &session.email,
            now: state.clock.now(),
        },
    )
    .await;
    let done = match answered {
        Ok(done) => done,
        Err(Refusal::Db(e)) => return Err(e.into()),
        Err(refusal) => return Ok(again(refusal.to_string())),
    };
    state.cache.account_changed();
    Ok(render(&ResponsePage {
        l: Layout::of(&session, Some(&org), "offline"),
        org_name: org.name.clone(),
        id: done.id,
        file_name: file_name(&done.device_name),
        device_name: done.device_name,
        server_id: done.server_id,
        expires: fmt_time(done.expires_at),
        text: done.text,
    }))
}

/// The response file of activation `id` of the admin's organization; 404
/// for any other.
pub(super) async fn download(
    State(state): State<AppState>,
    PermittedInOrg { org, .. }: PermittedInOrg<OfflineActivation>,
    Path(id): Path<i64>,
) -> PageResult {
    let activation = state
        .db
        .offline_activation(id)
        .await?
        .filter(|a| a.org_id == org.id)
        .ok_or(Error::NotFound)?;
    let device = state
        .db
        .device(activation.device_id)
        .await?
        .ok_or(Error::NotFound)?;
    let disposition = format!("attachment; filename=\"{}\"", file_name(&device.name));
    let disposition = HeaderValue::from_str(&disposition).map_err(Error::internal)?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        activation.response,
    )
        .into_response())
}

/// `activation-response-<device name>.json`, the name reduced to letters,
/// digits, `.`, `_` and `-` (a header value and a file name anywhere).
fn file_name(device_name: &str) -> String {
    let mut name = String::new();
    for c in device_name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    let name: String = name.trim_matches(['-', '.']).chars().take(80).collect();
    let name = if name.is_empty() { "device" } else { &name };
    format!("activation-response-{name}.json")
}

/// "Deactivate": the install's own deactivation file frees its device.
pub(super) async fn deactivate(
    State(state): State<AppState>,
    PermittedInOrg { session, org, .. }: PermittedInOrg<OfflineActivation>,
    Posted(mut form): Posted<DeactivateForm>,
) -> PageResult {
    form.file = chosen(std::mem::take(&mut form.file_upload), form.file);
    let taken = offline::deactivate(
        Server::of(&state),
        Deactivate {
            org_id: Some(org.id),
            file: &form.file,
            actor: &session.email,
            now: state.clock.now(),
        },
    )
    .await;
    let done = match taken {
        Ok(done) => done,
        Err(Refusal::Db(e)) => return Err(e.into()),
        Err(refusal) => {
            let devices = state.db.devices(org.id).await?;
            let mut page = offline_page(&session, &org, &devices);
            page.deactivation = form.file;
            page.deactivate_error = Some(sentence(&refusal.to_string()));
            return Ok((StatusCode::BAD_REQUEST, render(&page)).into_response());
        }
    };
    state.cache.account_changed();
    let name = done.device_name;
    Ok(render(&MessagePage {
        l: Layout::of(&session, Some(&org), "offline"),
        title: format!("Device {name} deactivated"),
        kind: "ok",
        message: format!(
            "The console gave its offline license up, and {name} ({}) is revoked: it holds no license now.",
            done.server_id
        ),
        link: Some(("/admin/devices".into(), "View devices".into())),
    }))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(
            file_name("Store 001 POS Server"),
            "activation-response-Store-001-POS-Server.json"
        );
        assert_eq!(
            file_name("\"; filename=evil.exe\r\n"),
            "activation-response-filename-evil.exe.json"
        );
        assert_eq!(file_name("../.."), "activation-response-device.json");
        assert_eq!(file_name("Żółw 2"), "activation-response-w-2.json");
        assert_eq!(file_name("日本"), "activation-response-device.json");
    }
}
