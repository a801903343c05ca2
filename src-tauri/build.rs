//! Declares the console's commands to Tauri (the app manifest), so a window
//! may call only those its capability grants (`capabilities/`).

// `console_commands!`: the one list of commands, shared with `src/lib.rs`.
include!("src/commands/list.rs");

/// The names of the commands in `console_commands!`.
macro_rules! names {
    ($($(#[cfg($($cfg:tt)*)])? $module:ident::$command:ident($($arg:ident: $ty:ty),*) -> $answer:ty;)*) => {
        &[$(stringify!($command)),*]
    };
}

/// Every command, the probe included: a permission for a command a build
/// leaves out grants nothing.
const COMMANDS: &[&str] = console_commands!(names);

fn main() {
    // The probe is in debug builds and with the `perf-probe` feature; so is
    // the capability that grants it (`capabilities/probe/`).
    let probe = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_some()
        || std::env::var_os("CARGO_FEATURE_PERF_PROBE").is_some();
    let capabilities = if probe {
        "./capabilities/**/*.json"
    } else {
        "./capabilities/*.json"
    };
    println!("cargo:rerun-if-changed=capabilities");
    println!("cargo:rerun-if-changed=src/commands/list.rs");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern(capabilities)
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(err) = tauri_build::try_build(attributes) {
        eprintln!("license-console build: {err:#}");
        std::process::exit(1);
    }
}
