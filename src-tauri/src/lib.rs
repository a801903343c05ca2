//! The License Console: a thin Tauri shell over `license-core` and
//! `license-client`. `main.rs` only calls [`run`].

// The one list of commands, as the macro `console_commands!`.
include!("commands/list.rs");

#[cfg(test)]
mod bindings;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod error;
pub mod licensing;
pub mod notify;
pub mod settings;
pub mod store;
pub mod tray;
pub mod vault;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Builder, Emitter, Manager, Runtime};

use crate::clock::SystemClock;
use crate::error::CommandError;
use crate::licensing::{AuthorizationView, Events, Licensing};
use crate::store::StateFile;
use crate::vault::Keychain;
use crate::view::LicenseView;

/// Event carrying a [`LicenseView`] whenever the license changes.
pub const LICENSE_CHANGED: &str = "license-changed";
/// Event carrying a [`CommandError`] when a background authorization ends without a license.
pub const AUTHORIZATION_FAILED: &str = "authorization-failed";
/// Event carrying an [`AuthorizationView`] as the authorization in progress waits.
pub const AUTHORIZATION_WAITING: &str = "authorization-waiting";

/// How often the background task looks at the plan. Deadlines are wall-clock
/// times from `license-core`, so a short tick also covers sleep and clock jumps.
const TICK: Duration = Duration::from_secs(30);

struct TauriEvents<R: Runtime>(AppHandle<R>);

impl<R: Runtime> Events for TauriEvents<R> {
    fn license_changed(&self, view: &LicenseView) {
        let _ = self.0.emit(LICENSE_CHANGED, view);
        if let Some(tray) = self.0.tray_by_id(tray::TRAY_ID) {
            let _ = tray.set_tooltip(Some(tray::tooltip(view)));
        }
    }
    fn authorization_failed(&self, error: &CommandError) {
        let _ = self.0.emit(AUTHORIZATION_FAILED, error);
    }
    fn authorization_waiting(&self, view: &AuthorizationView) {
        let _ = self.0.emit(AUTHORIZATION_WAITING, view);
    }
}

/// Whether the tray icon exists (then closing the window hides it).
struct TrayPresent(bool);

/// The invoke handler of the commands in `console_commands!`.
macro_rules! invoke_handler {
    ($($(#[cfg($($cfg:tt)*)])? $module:ident::$command:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
        tauri::generate_handler![$($(#[cfg($($cfg)*)])? commands::$module::$command),*]
    };
}

/// Registers every command on a builder of any runtime, so the same wiring
/// runs in the real app and under `tauri::test::mock_builder()`.
pub fn setup<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder.invoke_handler(console_commands!(invoke_handler))
}

/// Opens the license state and starts the background refresh.
fn start_licensing<R: Runtime>(app: &AppHandle<R>) -> Result<(), Box<dyn std::error::Error>> {
    let dir = app.path().app_data_dir()?;
    // Held for the life of the window: a command-line subcommand waits for
    // no one and refuses while it is held (see cli.rs).
    app.manage(store::StateLock::take(&dir)?);
    let default_url = std::env::var("LICENSE_CONSOLE_SERVER_URL").ok();
    let events: Arc<dyn Events> = Arc::new(TauriEvents(app.clone()));
    let licensing = tauri::async_runtime::block_on(Licensing::open(
        Arc::new(SystemClock),
        Arc::new(Keychain),
        StateFile::in_dir(&dir),
        events,
        default_url,
    ))
    .map_err(|e| e.message)?;
    app.manage(Arc::clone(&licensing));
    let app_for_notices = app.clone();
    tauri::async_runtime::spawn(async move {
        // At start the panel shows the cached account at once; then refresh.
        if licensing.is_licensed().await {
            let _ = licensing.refresh().await;
        }
        let focus = app_for_notices.clone();
        let desktop: Arc<dyn notify::Notifier> = Arc::new(notify::Desktop::new(move || {
            let app = focus.clone();
            let _ = focus.run_on_main_thread(move || tray::show_main(&app));
        }));
        loop {
            if let Err(err) = licensing.deliver_notices(Arc::clone(&desktop)).await {
                tracing::warn!(code = ?err.code, "could not record notices");
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = licensing.changed() => {}
            }
            if licensing.refresh_due().await {
                if let Err(err) = licensing.refresh().await {
                    tracing::warn!(code = ?err.code, "background refresh failed");
                }
            }
        }
    });
    Ok(())
}

/// Starts the console and blocks until it quits.
pub fn run() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "license_console_lib=info,license_client=info".into()),
        )
        .try_init();
    let context = tauri::generate_context!();
    let app = setup(tauri::Builder::default())
        // First: a second launch only focuses the console already running.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tray::show_main(app)
        }))
        .plugin(tauri_plugin_opener::init())
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name(settings::AUTOSTART_NAME)
                .build(),
        )
        .setup(|app| {
            start_licensing(app.handle())?;
            let has_tray = match tray::build(app.handle()) {
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(error = %err, "no tray icon; closing the window quits");
                    false
                }
            };
            app.manage(TrayPresent(has_tray));
            Ok(())
        })
        .on_window_event(|window, event| {
            // With a tray, closing the window keeps refreshes and notifications going.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                if window.try_state::<TrayPresent>().is_some_and(|t| t.0) {
                    api.prevent_close();
                    let _ = window.hide();
                }
            }
        })
        .build(context);
    match app {
        Ok(app) => app.run(|_, _| {}),
        Err(err) => {
            eprintln!("license-console: {err}");
            std::process::exit(1);
        }
    }
}
