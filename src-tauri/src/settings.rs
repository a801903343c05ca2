//! The user's settings: how often to refresh (never less often than the
//! server's policy asks), when to warn before the token expires, and whether
//! to start at login. Validation is pure; start at login is the autostart
//! plugin's (see `commands::settings`).

use license_core::Policy;
use serde::{Deserialize, Serialize};

use crate::error::{CommandError, ErrorCode};

/// Settings kept in the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    /// Refresh every this many hours, when more often than the server's policy.
    pub refresh_interval_hours: Option<u32>,
    /// Warn this many hours before the token expires (replaces the policy's list).
    pub token_warning_hours: Option<Vec<u32>>,
    /// Start the console when the user logs in.
    pub start_at_login: bool,
}

/// The shortest refresh interval a user may choose: an hour keeps a fleet
/// from hammering the server.
pub const MIN_REFRESH_HOURS: u32 = 1;

impl Settings {
    /// Checks the settings against the server's `policy`; the error says
    /// what to change.
    pub fn validate(&self, policy: &Policy) -> Result<(), CommandError> {
        let max_hours = (policy.refresh_interval_secs / 3600).max(1) as u32;
        if let Some(h) = self.refresh_interval_hours {
            if !(MIN_REFRESH_HOURS..=max_hours).contains(&h) {
                return Err(CommandError::new(
                    ErrorCode::InvalidInput,
                    format!(
                        "The refresh interval must be between {MIN_REFRESH_HOURS} and {max_hours} hours: the license server asks for a refresh at least every {max_hours} hours."
                    ),
                ));
            }
        }
        if let Some(list) = &self.token_warning_hours {
            if list.is_empty() || list.len() > 5 {
                return Err(CommandError::new(
                    ErrorCode::InvalidInput,
                    "Give one to five token expiry warnings, in hours (for example 24, 6, 1).",
                ));
            }
            if list.iter().any(|h| *h == 0 || *h > 24 * 14) {
                return Err(CommandError::new(
                    ErrorCode::InvalidInput,
                    "Each token expiry warning must be between 1 hour and 14 days (336 hours) before expiry.",
                ));
            }
        }
        Ok(())
    }

    /// The server's policy with these settings applied: a shorter refresh
    /// interval, other warning thresholds. Never a longer interval.
    pub fn apply(&self, policy: &Policy) -> Policy {
        let mut out = policy.clone();
        if let Some(h) = self.refresh_interval_hours {
            out.refresh_interval_secs = out.refresh_interval_secs.min(u64::from(h) * 3600);
        }
        if let Some(list) = &self.token_warning_hours {
            let mut secs: Vec<u64> = list.iter().map(|h| u64::from(*h) * 3600).collect();
            secs.sort_unstable_by(|a, b| b.cmp(a));
            secs.dedup();
            out.token_expiry_warnings_secs = secs;
        }
        out
    }
}

/// The name of the start-at-login entry (tauri-plugin-autostart): on Linux
/// the XDG autostart file `~/.config/autostart/license-console.desktop`, on
/// Windows a `Run` registry value, on macOS a launch agent.
pub const AUTOSTART_NAME: &str = "license-console";

/// Where the start-at-login entry is on Linux (the plugin writes it under
/// the home folder's `.config`, whatever `XDG_CONFIG_HOME` says), shown in
/// Settings; `None` elsewhere or without a home folder.
pub fn autostart_file() -> Option<std::path::PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from)?;
    Some(
        home.join(".config")
            .join("autostart")
            .join(format!("{AUTOSTART_NAME}.desktop")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_interval_may_be_shorter_than_the_policy_never_longer() {
        let policy = Policy::default(); // 24 h
        let ok = Settings {
            refresh_interval_hours: Some(6),
            ..Settings::default()
        };
        ok.validate(&policy).expect("6 h is within 24 h");
        assert_eq!(ok.apply(&policy).refresh_interval_secs, 6 * 3600);
        for bad in [0, 25, 1000] {
            let s = Settings {
                refresh_interval_hours: Some(bad),
                ..Settings::default()
            };
            let err = s.validate(&policy).expect_err("outside the policy");
            assert_eq!(err.code, ErrorCode::InvalidInput);
        }
        assert_eq!(
            Settings::default().apply(&policy),
            policy,
            "no settings: the policy as sent"
        );
    }

    #[test]
    fn warning_thresholds_replace_the_policy_list_sorted() {
        let s = Settings {
            token_warning_hours: Some(vec![1, 48, 12, 12]),
            ..Settings::default()
        };
        s.validate(&Policy::default()).expect("valid");
        assert_eq!(
            s.apply(&Policy::default()).token_expiry_warnings_secs,
            vec![48 * 3600, 12 * 3600, 3600]
        );
        for bad in [vec![], vec![0], vec![400], vec![1, 2, 3, 4, 5, 6]] {
            let s = Settings {
                token_warning_hours: Some(bad),
                ..Settings::default()
            };
            assert!(s.validate(&Policy::default()).is_err());
        }
    }
}
