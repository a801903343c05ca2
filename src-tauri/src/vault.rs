//! License token and refresh token, kept only in the OS keychain: the Secret
//! Service on Linux, Credential Manager on Windows, Keychain on macOS. One
//! entry per server and device. There is no plaintext fallback: when the
//! keychain is unavailable or locked the console says so and stops.

use license_client::Secret;
use serde::{Deserialize, Serialize};

/// Keychain service name of every entry the console writes.
pub const SERVICE: &str = "com.licenseconsole.console";

/// Which entry: the server and the device (Server ID) it licenses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultKey {
    /// License server URL.
    pub server_url: String,
    /// Server ID of this device at that server.
    pub server_id: String,
}

impl VaultKey {
    /// The keychain account name of this entry.
    pub fn account(&self) -> String {
        format!("{} {}", self.server_id, self.server_url)
    }
}

/// The two tokens of a licensed device.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The short-lived license token (a JWT).
    pub license_token: Secret,
    /// The refresh token.
    pub refresh_token: Secret,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    license_token: String,
    refresh_token: String,
}

/// Why the keychain could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The keychain is locked and must be unlocked by the user.
    #[error("The system keychain is locked. Unlock it (for example by signing in to the desktop again or with your keyring manager) and try again.")]
    Locked,
    /// No keychain service is reachable.
    #[error("No system keychain is available ({0}). The console keeps its tokens only in the keychain: start a Secret Service provider such as GNOME Keyring or KWallet and try again.")]
    Unavailable(String),
    /// The entry exists but is not ours or is damaged.
    #[error(
        "The keychain entry of this license is damaged; remove the license and acquire it again."
    )]
    Corrupt,
}

/// Where tokens are kept. The real one is [`Keychain`]; unit tests use an
/// in-memory vault for isolation.
pub trait TokenVault: Send + Sync + std::fmt::Debug {
    /// Reads the tokens of `key`, if any.
    fn load(&self, key: &VaultKey) -> Result<Option<Tokens>, VaultError>;
    /// Writes the tokens of `key`, replacing any.
    fn save(&self, key: &VaultKey, tokens: &Tokens) -> Result<(), VaultError>;
    /// Deletes the tokens of `key`; deleting a missing entry is not an error.
    fn delete(&self, key: &VaultKey) -> Result<(), VaultError>;
}

/// The OS keychain, through the `keyring` crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keychain;

fn map_err(err: keyring::Error) -> VaultError {
    match err {
        keyring::Error::NoStorageAccess(_) => VaultError::Locked,
        keyring::Error::PlatformFailure(inner) => {
            let text = inner.to_string();
            if text.contains("locked") || text.contains("Locked") {
                VaultError::Locked
            } else {
                VaultError::Unavailable(text)
            }
        }
        keyring::Error::BadEncoding(_) | keyring::Error::Ambiguous(_) => VaultError::Corrupt,
        other => VaultError::Unavailable(other.to_string()),
    }
}

impl Keychain {
    fn entry(key: &VaultKey) -> Result<keyring::Entry, VaultError> {
        keyring::Entry::new(SERVICE, &key.account()).map_err(map_err)
    }
}

impl TokenVault for Keychain {
    fn load(&self, key: &VaultKey) -> Result<Option<Tokens>, VaultError> {
        match Self::entry(key)?.get_password() {
            Ok(json) => {
                let stored: Stored =
                    serde_json::from_str(&json).map_err(|_| VaultError::Corrupt)?;
                Ok(Some(Tokens {
                    license_token: Secret::new(stored.license_token),
                    refresh_token: Secret::new(stored.refresh_token),
                }))
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_err(err)),
        }
    }

    fn save(&self, key: &VaultKey, tokens: &Tokens) -> Result<(), VaultError> {
        let json = serde_json::to_string(&Stored {
            license_token: tokens.license_token.expose().to_string(),
            refresh_token: tokens.refresh_token.expose().to_string(),
        })
        .map_err(|_| VaultError::Corrupt)?;
        Self::entry(key)?.set_password(&json).map_err(map_err)
    }

    fn delete(&self, key: &VaultKey) -> Result<(), VaultError> {
        match Self::entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(map_err(err)),
        }
    }
}

/// An in-memory vault for tests that need isolation from the desktop. Not
/// in release builds: a release console keeps tokens only in the keychain.
#[cfg(debug_assertions)]
#[derive(Debug, Default)]
pub struct MemoryVault {
    entries: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
}

#[cfg(debug_assertions)]
impl TokenVault for MemoryVault {
    fn load(&self, key: &VaultKey) -> Result<Option<Tokens>, VaultError> {
        let entries = self.entries.lock().map_err(|_| VaultError::Corrupt)?;
        Ok(entries.get(&key.account()).map(|(l, r)| Tokens {
            license_token: Secret::new(l.clone()),
            refresh_token: Secret::new(r.clone()),
        }))
    }

    fn save(&self, key: &VaultKey, tokens: &Tokens) -> Result<(), VaultError> {
        let mut entries = self.entries.lock().map_err(|_| VaultError::Corrupt)?;
        entries.insert(
            key.account(),
            (
                tokens.license_token.expose().to_string(),
                tokens.refresh_token.expose().to_string(),
            ),
        );
        Ok(())
    }

    fn delete(&self, key: &VaultKey) -> Result<(), VaultError> {
        let mut entries = self.entries.lock().map_err(|_| VaultError::Corrupt)?;
        entries.remove(&key.account());
        Ok(())
    }
}
