//! Commands of air-gapped activation by file: thin over
//! `licensing/offline.rs`. Files are saved to the Downloads folder (or the
//! home folder) and their text is returned too, to copy, type or carry as
//! a QR code.

use std::sync::Arc;

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State};

use crate::error::CommandError;
use crate::licensing::Licensing;
use crate::view::LicenseView;

/// A file the console made for the Authorization server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct OfflineFileView {
    /// The file's text.
    pub text: String,
    /// Where it was saved, when it could be.
    pub path: Option<String>,
    /// The request's id (activation requests only).
    pub request_id: Option<String>,
}

/// Saves `text` as `name` in the Downloads folder (else the home folder).
fn save_file<R: Runtime>(app: &AppHandle<R>, name: &str, text: &str) -> Option<String> {
    let dir = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .ok()?;
    let path = dir.join(name);
    match std::fs::write(&path, text) {
        Ok(()) => Some(path.display().to_string()),
        Err(err) => {
            tracing::warn!(error = %err, "the file was not saved; its text is shown");
            None
        }
    }
}

/// "Save activation request" (also the renewal of an offline license).
#[tauri::command]
pub async fn save_activation_request<R: Runtime>(
    app: AppHandle<R>,
    licensing: State<'_, Arc<Licensing>>,
    server_url: Option<String>,
) -> Result<OfflineFileView, CommandError> {
    let (pending, text) = licensing.activation_request(server_url.as_deref()).await?;
    let short: String = pending.request_id.chars().take(8).collect();
    let path = save_file(&app, &format!("activation-request-{short}.txt"), &text);
    Ok(OfflineFileView {
        text,
        path,
        request_id: Some(pending.request_id),
    })
}

/// "Load activation response": the text of the response file.
#[tauri::command]
pub async fn load_activation_response(
    licensing: State<'_, Arc<Licensing>>,
    text: String,
) -> Result<LicenseView, CommandError> {
    licensing.load_activation_response(&text).await
}

/// "Deactivate": gives the offline license up and writes the file that
/// frees the device at the Authorization server.
#[tauri::command]
pub async fn deactivate_offline_license<R: Runtime>(
    app: AppHandle<R>,
    licensing: State<'_, Arc<Licensing>>,
) -> Result<OfflineFileView, CommandError> {
    let text = licensing.deactivate_offline().await?;
    let path = save_file(&app, "license-deactivation.txt", &text);
    Ok(OfflineFileView {
        text,
        path,
        request_id: None,
    })
}
