//! Tauri commands, grouped by domain. Each is thin: parse, call, map the error.

pub mod app;
pub mod license;
pub mod settings;
