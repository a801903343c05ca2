//! Commands of the "Manage license account" panel and of license acquisition.

use std::sync::Arc;

use tauri::{AppHandle, Runtime, State};

use crate::error::{CommandError, ErrorCode};
use crate::licensing::{AuthorizationView, Licensing};
use crate::view::LicenseView;

/// The panel as of now.
#[tauri::command]
pub async fn license_view(
    licensing: State<'_, Arc<Licensing>>,
) -> Result<LicenseView, CommandError> {
    Ok(licensing.view().await)
}

/// "Next": gets a User Code from the license server at `server_url`.
#[tauri::command]
pub async fn start_authorization(
    licensing: State<'_, Arc<Licensing>>,
    server_url: String,
) -> Result<AuthorizationView, CommandError> {
    licensing.inner().start_authorization(&server_url).await
}

/// "Complete Authorization".
#[tauri::command]
pub async fn complete_authorization(
    licensing: State<'_, Arc<Licensing>>,
) -> Result<LicenseView, CommandError> {
    licensing.inner().complete_authorization().await
}

/// "Cancel" while waiting for authorization.
#[tauri::command]
pub async fn cancel_authorization(
    licensing: State<'_, Arc<Licensing>>,
) -> Result<(), CommandError> {
    licensing.cancel_authorization().await;
    Ok(())
}

/// Opens the verification page of the authorization in progress in the
/// default browser. The URL comes from the server's answer, never from the page.
#[tauri::command]
pub async fn open_verification_page<R: Runtime>(
    app: AppHandle<R>,
    licensing: State<'_, Arc<Licensing>>,
) -> Result<(), CommandError> {
    let Some(url) = licensing.verification_page().await else {
        return Err(CommandError::new(
            ErrorCode::NoAuthorization,
            "There is no authorization in progress.",
        ));
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(CommandError::new(
            ErrorCode::Protocol,
            "The server sent a verification page that is not a web address.",
        ));
    }
    use tauri_plugin_opener::OpenerExt;
    app.opener().open_url(url, None::<&str>).map_err(|e| {
        CommandError::new(
            ErrorCode::OpenFailed,
            format!("Could not open the browser: {e}"),
        )
    })
}

/// "Refresh": verifies the license with the server now.
#[tauri::command]
pub async fn refresh_license(
    licensing: State<'_, Arc<Licensing>>,
) -> Result<LicenseView, CommandError> {
    licensing.refresh().await
}

/// "Remove license": revokes at the server and forgets the license here.
#[tauri::command]
pub async fn remove_license(
    licensing: State<'_, Arc<Licensing>>,
    force: bool,
) -> Result<LicenseView, CommandError> {
    licensing.remove(force).await
}
