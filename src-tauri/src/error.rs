//! The error every command returns to the UI: `{ code, message }`, so the UI
//! branches on `code` and shows `message`.

use license_client::ClientError;
use serde::{Deserialize, Serialize};

/// Every reason the UI may be told a command failed. The UI sees these as a
/// TypeScript union of the snake_case names and branches on them, never on
/// the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The license server could not be reached.
    Offline,
    /// The license server did not answer in time.
    Timeout,
    /// No trusted TLS connection to the license server.
    Tls,
    /// The license server answered with an HTTP error.
    ServerError,
    /// The server's answer breaks the protocol.
    Protocol,
    /// This computer's clock is behind the server's.
    Clock,
    /// The authorization was denied at the server.
    Denied,
    /// The User Code expired before it was authorized.
    CodeExpired,
    /// The server no longer accepts this device's tokens.
    Revoked,
    /// What the user entered cannot be used.
    InvalidInput,
    /// The wait was cancelled.
    Cancelled,
    /// Another authorization replaced this one.
    Superseded,
    /// No authorization is in progress.
    NoAuthorization,
    /// The admin has not authorized the device yet.
    AuthorizationPending,
    /// The console has no license yet.
    NotLicensed,
    /// The tokens are missing from the keychain.
    KeychainMissing,
    /// The keychain is locked.
    KeychainLocked,
    /// No keychain is available.
    KeychainUnavailable,
    /// The keychain entry is damaged.
    KeychainCorrupt,
    /// The state file or another local file could not be written.
    Storage,
    /// The browser could not be opened.
    OpenFailed,
    /// This desktop cannot do what was asked.
    Unsupported,
    /// The clipboard refused the text (set by the UI itself).
    Clipboard,
    /// An activation request, response or deactivation file was refused
    /// (damaged, edited, for another install or server, expired).
    OfflineFile,
    /// No key to check an activation response with: the console was neither
    /// authorized online nor built with the vendor's keys.
    NoTrustAnchor,
    /// Licensed by file: there is nothing to refresh online.
    LicensedOffline,
    /// A failure inside the console.
    Internal,
}

impl From<&ClientError> for ErrorCode {
    fn from(err: &ClientError) -> Self {
        match err {
            ClientError::Offline { .. } => ErrorCode::Offline,
            ClientError::Timeout { .. } => ErrorCode::Timeout,
            ClientError::Tls { .. } => ErrorCode::Tls,
            ClientError::ServerError { .. } => ErrorCode::ServerError,
            ClientError::Protocol { .. } => ErrorCode::Protocol,
            ClientError::ClockBehind { .. } | ClientError::ClockAhead { .. } => ErrorCode::Clock,
            ClientError::Denied => ErrorCode::Denied,
            ClientError::CodeExpired => ErrorCode::CodeExpired,
            // Tokens bound to another key (this install's key was replaced)
            // cannot be used any more: the device is authorized again.
            ClientError::Revoked { .. } | ClientError::DpopRefused { .. } => ErrorCode::Revoked,
            ClientError::InvalidInput { .. } => ErrorCode::InvalidInput,
            ClientError::Cancelled => ErrorCode::Cancelled,
        }
    }
}

/// A failure the UI can explain. `code` is stable; `message` is plain words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[error("{message}")]
pub struct CommandError {
    /// Stable machine-readable code, e.g. `offline`, `keychain_locked`.
    pub code: ErrorCode,
    /// What happened and what to do, for the person at the console.
    pub message: String,
}

impl CommandError {
    /// Builds an error from a stable code and a plain-words message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<&ClientError> for CommandError {
    fn from(err: &ClientError) -> Self {
        CommandError::new(err.into(), err.to_string())
    }
}

impl From<ClientError> for CommandError {
    fn from(err: ClientError) -> Self {
        CommandError::from(&err)
    }
}
