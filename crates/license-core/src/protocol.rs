//! The OAuth protocol between the License Console and the license server,
//! as constants both sides share (RFC 8628 device authorization, RFC 6749
//! refresh), so neither can drift from the other.

/// The License Console's OAuth client id.
pub const CONSOLE_CLIENT_ID: &str = "license-console";

/// `grant_type` of the device access token request (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `grant_type` of a refresh (RFC 6749 §6).
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";

/// The grant types the license server supports, as its metadata lists them.
pub const GRANT_TYPES: [&str; 2] = [DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT];

/// Where the server's metadata lives (RFC 8414).
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// The polling interval when the server names none (RFC 8628 §3.2: 5 s).
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 5;

/// Added to the polling interval on every `slow_down` (RFC 8628 §3.5: 5 s).
pub const SLOW_DOWN_STEP_SECS: u64 = 5;

/// The longest polling interval a client accepts or grows to.
pub const MAX_POLL_INTERVAL_SECS: u64 = 300;

/// The longest life of a device code a client accepts.
pub const MAX_DEVICE_CODE_TTL_SECS: u64 = 86_400;

/// The error codes of the token endpoint while a device code waits
/// (RFC 8628 §3.5).
pub mod poll_error {
    /// The user has not completed authorization yet.
    pub const AUTHORIZATION_PENDING: &str = "authorization_pending";
    /// Polling too fast: add [`super::SLOW_DOWN_STEP_SECS`] to the interval.
    pub const SLOW_DOWN: &str = "slow_down";
    /// The user refused.
    pub const ACCESS_DENIED: &str = "access_denied";
    /// The device code ran out.
    pub const EXPIRED_TOKEN: &str = "expired_token";
}

/// The next polling interval after a `slow_down`, capped at
/// [`MAX_POLL_INTERVAL_SECS`].
pub fn slowed_down(interval_secs: u64) -> u64 {
    interval_secs
        .saturating_add(SLOW_DOWN_STEP_SECS)
        .min(MAX_POLL_INTERVAL_SECS)
}

/// A server-named interval as a client uses it: at least 1 s, at most
/// [`MAX_POLL_INTERVAL_SECS`], [`DEFAULT_POLL_INTERVAL_SECS`] when absent.
pub fn poll_interval(named: Option<u64>) -> u64 {
    named
        .unwrap_or(DEFAULT_POLL_INTERVAL_SECS)
        .clamp(1, MAX_POLL_INTERVAL_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_down_adds_five_seconds_up_to_the_cap() {
        assert_eq!(slowed_down(5), 10);
        assert_eq!(slowed_down(295), 300);
        assert_eq!(slowed_down(296), 300);
        assert_eq!(slowed_down(u64::MAX), 300);
    }

    #[test]
    fn a_named_interval_is_clamped() {
        assert_eq!(poll_interval(None), 5);
        assert_eq!(poll_interval(Some(0)), 1);
        assert_eq!(poll_interval(Some(7)), 7);
        assert_eq!(poll_interval(Some(301)), 300);
    }
}
