//! The tray icon: the license status in its tooltip, and Refresh now, Open,
//! Quit in its menu. With it, closing the window keeps the console running,
//! so refreshes and notifications go on.

use std::sync::Arc;

use tauri::menu::{Menu, MenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

use crate::licensing::Licensing;
use crate::view::{LicenseView, VerificationCode};

/// Id of the console's tray icon.
pub const TRAY_ID: &str = "license-console";

/// Brings the main window back and focuses it.
pub fn show_main<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// The tooltip for a view: "License Console: Licensed", plus the grace state.
pub fn tooltip(view: &LicenseView) -> String {
    let mut text = format!("License Console: {}", view.status_label);
    match view.verification {
        VerificationCode::GracePeriod => text.push_str(" (verification failed, on grace period)"),
        VerificationCode::GraceExpired => text.push_str(" (verification overdue)"),
        VerificationCode::OfflineExpired => text.push_str(" (offline license expired)"),
        VerificationCode::Never | VerificationCode::Verified | VerificationCode::Offline => {}
    }
    text
}

/// Builds the tray icon. A desktop without a tray is not an error: the
/// console then simply quits when its window closes.
pub fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<TrayIcon<R>> {
    let refresh = MenuItem::with_id(app, "refresh", "Refresh now", true, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&refresh, &open, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("License Console")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "refresh" => {
                if let Some(licensing) = app.try_state::<Arc<Licensing>>() {
                    let licensing = Arc::clone(licensing.inner());
                    tauri::async_runtime::spawn(async move {
                        let _ = licensing.refresh().await;
                    });
                }
            }
            "open" => show_main(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::DoubleClick { .. } = event {
                show_main(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)
}
