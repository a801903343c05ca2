//! Facts about the console itself.

use serde::Serialize;
use tauri::{AppHandle, Runtime};

/// Name and version of the running console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    /// Product name from `tauri.conf.json`.
    pub name: String,
    /// Version from `tauri.conf.json`.
    pub version: String,
}

/// Returns the product name and version shown in the footer.
#[tauri::command]
pub fn app_info<R: Runtime>(app: AppHandle<R>) -> AppInfo {
    let info = app.package_info();
    AppInfo {
        name: info.name.clone(),
        version: info.version.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use tauri::test::{mock_builder, mock_context, noop_assets};

    use crate::commands::tests::ipc_request;

    #[test]
    fn app_info_reports_the_configured_name_and_version() {
        let app = crate::setup(mock_builder())
            .build(mock_context(noop_assets()))
            .expect("mock app builds");
        let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .expect("mock window builds");
        let response = tauri::test::get_ipc_response(&webview, ipc_request("app_info"))
            .expect("app_info succeeds");
        let info: serde_json::Value = response.deserialize().expect("json");
        // The mock context carries the workspace's package name and version.
        assert_eq!(info["name"], app.package_info().name.as_str());
        assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    }
}
