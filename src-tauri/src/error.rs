//! The error every command returns to the UI: `{ code, message }`, so the UI
//! branches on `code` and shows `message`.

use serde::Serialize;

/// A failure the UI can explain. `code` is stable; `message` is plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(export, export_to = "../../ui/src/lib/bindings/")
)]
#[error("{message}")]
pub struct CommandError {
    /// Stable machine-readable code, e.g. `offline`, `keychain_locked`.
    pub code: &'static str,
    /// What happened and what to do, for the person at the console.
    pub message: String,
}

impl CommandError {
    /// Builds an error from a stable code and a plain-words message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
