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
    /// The text as a QR code (SVG), to carry it with a phone's camera;
    /// `None` when it is too long for one.
    pub qr_svg: Option<String>,
}

/// `text` as a QR code in SVG, with medium error correction when it fits
/// (a screen photographed at an angle), else low; `None` past a QR code's
/// capacity.
pub fn qr_svg(text: &str) -> Option<String> {
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(text, EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(text, EcLevel::L))
        .ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    )
}

/// The name an activation request is saved under: the request id's start,
/// so two requests never share a file.
pub fn request_file_name(request_id: &str) -> String {
    let short: String = request_id.chars().take(8).collect();
    format!("activation-request-{short}.txt")
}

/// The name a deactivation file is saved under.
pub const DEACTIVATION_FILE_NAME: &str = "license-deactivation.txt";

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
    let path = save_file(&app, &request_file_name(&pending.request_id), &text);
    Ok(OfflineFileView {
        qr_svg: qr_svg(&text),
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
    let path = save_file(&app, DEACTIVATION_FILE_NAME, &text);
    Ok(OfflineFileView {
        qr_svg: qr_svg(&text),
        text,
        path,
        request_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::qr_svg;

    #[test]
    fn a_request_sized_text_is_a_qr_code_and_an_oversized_one_is_not() {
        let svg = qr_svg(&"x".repeat(1_500)).expect("1,500 bytes fit a QR code");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"));
        // Larger text, more modules: the picture encodes the text given.
        let small = qr_svg("short").unwrap();
        assert!(small.len() < svg.len());
        assert_eq!(
            qr_svg(&"x".repeat(3_000)),
            None,
            "past any QR code's capacity"
        );
    }
}
