//! Secrets that must never reach a log line or an error message.

use std::fmt;

/// A device code, license token (access token) or refresh token.
///
/// `Debug` and `Display` print `[redacted]`, so a secret inside a struct that
/// is logged or formatted with `{:?}` stays out of the output. Read the value
/// only with [`Secret::expose`], at the point where it is sent or stored.
///
/// ```
/// use license_client::Secret;
/// let token = Secret::new("eyJhbGciOi...");
/// assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
/// assert_eq!(token.expose(), "eyJhbGciOi...");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret text, for sending it to the server or storing it in the
    /// keychain. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}
