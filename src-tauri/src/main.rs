// Prevents an extra console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

use license_console_lib::cli::{self, Cli};

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Cli::Window) => {
            license_console_lib::run();
            ExitCode::SUCCESS
        }
        Ok(subcommand) => cli::run(subcommand),
        Err(message) => cli::usage_error(&message),
    }
}
