// The console's commands: the one list behind the invoke handler (`lib.rs`),
// the app manifest that the capabilities grant from (`build.rs`, which
// includes this file) and `ui/src/lib/bindings/Commands.ts` (written by a
// test in `bindings.rs`). An entry reads
// `module::command(argument: Type, ...) -> Answer;`: the arguments as the UI
// sends them (camelCase on the wire) and what a success answers; a failure
// is always a `CommandError`.
//
// `$then` is a macro that receives the whole list.
macro_rules! console_commands {
    ($then:ident) => {
        $then! {
            app::app_info() -> AppInfo;
            #[cfg(any(debug_assertions, feature = "perf-probe"))]
            probe::panel_painted() -> ();
            license::license_view() -> LicenseView;
            license::start_authorization(server_url: String) -> AuthorizationView;
            license::complete_authorization() -> LicenseView;
            license::cancel_authorization() -> ();
            license::open_verification_page() -> ();
            license::refresh_license() -> LicenseView;
            license::remove_license(force: bool) -> LicenseView;
            settings::get_settings() -> SettingsView;
            settings::save_settings(settings: Settings) -> LicenseView;
            connection::test_connection(server_url: Option<String>) -> ConnectionReportView;
            offline::save_activation_request(server_url: Option<String>) -> OfflineFileView;
            offline::load_activation_response(text: String) -> LicenseView;
            offline::deactivate_offline_license() -> OfflineFileView;
        }
    };
}
