//! The Settings screen.

use std::sync::Arc;

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State};
use tauri_plugin_autostart::AutoLaunchManager;

use crate::error::{CommandError, ErrorCode};
use crate::licensing::Licensing;
use crate::settings::{self, Settings, MIN_REFRESH_HOURS};
use crate::view::LicenseView;

/// The settings with the limits the server's policy sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// The saved settings.
    pub settings: Settings,
    /// The license server (changed by removing the license and acquiring anew).
    pub server_url: Option<String>,
    /// The server's refresh interval, in hours: the longest allowed.
    pub policy_refresh_hours: u32,
    /// The shortest refresh interval allowed, in hours.
    pub min_refresh_hours: u32,
    /// The server's token expiry warnings, in hours.
    pub policy_warning_hours: Vec<u32>,
    /// Where the autostart entry is written.
    pub autostart_file: Option<String>,
}

/// Whole hours of `secs`, saturated rather than wrapped.
fn hours(secs: u64) -> u32 {
    u32::try_from(secs / 3600).unwrap_or(u32::MAX)
}

/// The settings and their limits.
#[tauri::command]
pub async fn get_settings(
    licensing: State<'_, Arc<Licensing>>,
) -> Result<SettingsView, CommandError> {
    let (settings, policy) = licensing.settings().await;
    let view = licensing.view().await;
    Ok(SettingsView {
        settings,
        server_url: view.server_url,
        policy_refresh_hours: hours(policy.refresh_interval_secs).max(1),
        min_refresh_hours: MIN_REFRESH_HOURS,
        policy_warning_hours: policy
            .token_expiry_warnings_secs
            .iter()
            .map(|s| hours(*s))
            .collect(),
        autostart_file: settings::autostart_file().map(|p| p.display().to_string()),
    })
}

/// Saves the settings (validated against the server's policy) and applies
/// start at login.
#[tauri::command]
pub async fn save_settings<R: Runtime>(
    app: AppHandle<R>,
    licensing: State<'_, Arc<Licensing>>,
    settings: Settings,
) -> Result<LicenseView, CommandError> {
    let (previous, policy) = licensing.settings().await;
    settings.validate(&policy)?;
    if previous.start_at_login != settings.start_at_login {
        set_start_at_login(&app, settings.start_at_login)?;
    }
    licensing.save_settings(settings).await
}

/// Adds or removes the start-at-login entry through tauri-plugin-autostart
/// (XDG autostart on Linux, the `Run` key on Windows, a launch agent on
/// macOS).
fn set_start_at_login<R: Runtime>(app: &AppHandle<R>, enabled: bool) -> Result<(), CommandError> {
    let Some(launcher) = app.try_state::<AutoLaunchManager>() else {
        return Err(CommandError::new(
            ErrorCode::Unsupported,
            "Start at login is not available in this build.",
        ));
    };
    let changed = match enabled {
        true => launcher.enable(),
        false if launcher.is_enabled().unwrap_or(true) => launcher.disable(),
        false => Ok(()),
    };
    changed.map_err(|e| {
        CommandError::new(
            ErrorCode::Storage,
            format!("Cannot change start at login: {e}"),
        )
    })
}
