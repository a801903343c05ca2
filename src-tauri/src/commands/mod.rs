//! Tauri commands, grouped by domain. Each is thin: parse, call, map the
//! error. Which commands exist is said once, in `list.rs`.

pub mod app;
pub mod connection;
pub mod license;
pub mod offline;
#[cfg(any(debug_assertions, feature = "perf-probe"))]
pub mod probe;
pub mod settings;

#[cfg(test)]
pub(crate) mod tests {
    use tauri::ipc::{CallbackFn, InvokeBody};
    use tauri::test::INVOKE_KEY;
    use tauri::webview::InvokeRequest;
    use tauri::Manager;

    /// `cmd` without arguments, as the console's own page sends it.
    pub(crate) fn ipc_request(cmd: &str) -> InvokeRequest {
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().expect("url"),
            body: InvokeBody::default(),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        }
    }

    #[test]
    fn the_capabilities_let_the_window_call_its_commands_and_no_core_command() {
        // The real context: the app manifest and capabilities as built.
        let app = crate::setup(tauri::test::mock_builder())
            .build(tauri::generate_context!(test = true))
            .expect("app builds");
        let webview = match app.get_webview_window("main") {
            Some(window) => window,
            None => tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
                .build()
                .expect("window builds"),
        };
        tauri::test::get_ipc_response(&webview, ipc_request("app_info")).expect("granted");
        #[cfg(debug_assertions)]
        tauri::test::get_ipc_response(&webview, ipc_request("panel_painted"))
            .expect("the probe is granted in debug builds");
        let denied = tauri::test::get_ipc_response(&webview, ipc_request("plugin:window|close"))
            .expect_err("closing the window is not granted");
        assert!(denied.to_string().contains("not allowed"), "{denied}");
        // The console's own commands too are the main window's only.
        let other = tauri::WebviewWindowBuilder::new(&app, "other", Default::default())
            .build()
            .expect("window builds");
        let denied = tauri::test::get_ipc_response(&other, ipc_request("app_info"))
            .expect_err("no capability names this window");
        assert!(denied.to_string().contains("not allowed"), "{denied}");
    }

    /// Each command of `console_commands!` with whether every build has it.
    macro_rules! always {
        ($($(#[cfg($($cfg:tt)*)])? $module:ident::$command:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
            vec![$((stringify!($command), <[&str]>::is_empty(&[$(stringify!($($cfg)*))?]))),*]
        };
    }

    fn granted(file: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).expect("capability")).expect("json");
        json["permissions"]
            .as_array()
            .expect("permissions")
            .iter()
            .map(|p| p.as_str().expect("identifier").to_string())
            .collect()
    }

    fn allow(commands: &[(&str, bool)], always: bool) -> Vec<String> {
        commands
            .iter()
            .filter(|(_, a)| *a == always)
            .map(|(name, _)| format!("allow-{}", name.replace('_', "-")))
            .collect()
    }

    #[test]
    fn the_window_is_granted_the_listed_commands_and_event_listening_only() {
        let commands = console_commands!(always);
        let mut expected = vec![
            "core:event:allow-listen".to_string(),
            "core:event:allow-unlisten".to_string(),
        ];
        expected.extend(allow(&commands, true));
        assert_eq!(granted("capabilities/default.json"), expected);
        assert_eq!(
            granted("capabilities/probe/probe.json"),
            allow(&commands, false),
            "the probe capability grants the probe only"
        );
    }
}
