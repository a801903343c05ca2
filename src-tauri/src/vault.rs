//! License token and refresh token, kept only in the OS keychain: the Secret
//! Service on Linux, Credential Manager on Windows, Keychain on macOS. One
//! entry per server and device. There is no plaintext fallback: when the
//! keychain is unavailable or locked the console says so and stops.
//!
//! Besides tokens, one entry of each kind per install (per state file): its
//! [`Guard`], and its DPoP key (RFC 9449), which binds its tokens to it.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use license_client::Secret;
use license_core::JwkSet;
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

/// Keychain account of the [`Guard`] of the state file at `scope` (its path:
/// one guard per state file).
fn guard_account(scope: &str) -> String {
    format!("state-guard {scope}")
}

/// Keychain account of the DPoP key of the install whose state file is at
/// `scope`.
fn install_key_account(scope: &str) -> String {
    format!("dpop-key {scope}")
}

/// What the console keeps in the keychain besides tokens, in one entry: the
/// key that seals the state file and the generation last written, the
/// facts a changed file must not undo (the highest time seen, a revocation),
/// and the trust anchor of each license server (its keys as pinned at
/// authorization, changed only as `license_core::anchor` allows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guard {
    /// The state file's seal key, 32 bytes, base64url.
    pub seal_key: String,
    /// The generation of the state file last written.
    pub generation: u64,
    /// The highest time seen, unix seconds.
    #[serde(default)]
    pub highest_seen: Option<i64>,
    /// The license server said the license was revoked.
    #[serde(default)]
    pub revoked: bool,
    /// Trust anchors by license server URL.
    #[serde(default)]
    pub anchors: BTreeMap<String, JwkSet>,
    /// The license server URL of the state file last written.
    #[serde(default)]
    pub server_url: Option<String>,
    /// The Server ID of the state file last written.
    #[serde(default)]
    pub server_id: Option<String>,
    /// The issue time (unix seconds) of the last offline license given up:
    /// none issued at or before it is taken again (a restored state file
    /// or an old response cannot bring a deactivated license back).
    #[serde(default)]
    pub offline_given_up: Option<i64>,
}

impl Guard {
    /// A new guard with a fresh random seal key, generation 0.
    pub fn new() -> Guard {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Guard {
            seal_key: URL_SAFE_NO_PAD.encode(key),
            generation: 0,
            highest_seen: None,
            revoked: false,
            anchors: BTreeMap::new(),
            server_url: None,
            server_id: None,
            offline_given_up: None,
        }
    }

    /// The seal key; `None` if the entry holds no usable one.
    pub fn key(&self) -> Option<[u8; 32]> {
        URL_SAFE_NO_PAD
            .decode(&self.seal_key)
            .ok()
            .and_then(|k| k.try_into().ok())
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
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
    /// Reads the [`Guard`] of the state file at `scope`, if there is one.
    fn load_guard(&self, scope: &str) -> Result<Option<Guard>, VaultError>;
    /// Writes the [`Guard`] of the state file at `scope`, replacing any.
    fn save_guard(&self, scope: &str, guard: &Guard) -> Result<(), VaultError>;
    /// Reads the DPoP key of the install whose state file is at `scope`
    /// (the private key's 32-byte seed, base64url), if there is one.
    fn load_install_key(&self, scope: &str) -> Result<Option<Secret>, VaultError>;
    /// Writes the DPoP key of the install at `scope`, replacing any.
    fn save_install_key(&self, scope: &str, seed: &Secret) -> Result<(), VaultError>;
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

    fn load_guard(&self, scope: &str) -> Result<Option<Guard>, VaultError> {
        let entry = keyring::Entry::new(SERVICE, &guard_account(scope)).map_err(map_err)?;
        match entry.get_password() {
            Ok(json) => Ok(Some(
                serde_json::from_str(&json).map_err(|_| VaultError::Corrupt)?,
            )),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_err(err)),
        }
    }

    fn save_guard(&self, scope: &str, guard: &Guard) -> Result<(), VaultError> {
        let json = serde_json::to_string(guard).map_err(|_| VaultError::Corrupt)?;
        keyring::Entry::new(SERVICE, &guard_account(scope))
            .map_err(map_err)?
            .set_password(&json)
            .map_err(map_err)
    }

    fn load_install_key(&self, scope: &str) -> Result<Option<Secret>, VaultError> {
        let entry = keyring::Entry::new(SERVICE, &install_key_account(scope)).map_err(map_err)?;
        match entry.get_password() {
            Ok(seed) => Ok(Some(Secret::new(seed))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(map_err(err)),
        }
    }

    fn save_install_key(&self, scope: &str, seed: &Secret) -> Result<(), VaultError> {
        keyring::Entry::new(SERVICE, &install_key_account(scope))
            .map_err(map_err)?
            .set_password(seed.expose())
            .map_err(map_err)
    }
}

/// An in-memory vault for tests that need isolation from the desktop. Not
/// in release builds: a release console keeps tokens only in the keychain.
#[cfg(debug_assertions)]
#[derive(Debug, Default)]
pub struct MemoryVault {
    entries: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    guards: std::sync::Mutex<std::collections::HashMap<String, Guard>>,
    install_keys: std::sync::Mutex<std::collections::HashMap<String, Secret>>,
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

    fn load_guard(&self, scope: &str) -> Result<Option<Guard>, VaultError> {
        let guards = self.guards.lock().map_err(|_| VaultError::Corrupt)?;
        Ok(guards.get(scope).cloned())
    }

    fn save_guard(&self, scope: &str, guard: &Guard) -> Result<(), VaultError> {
        let mut guards = self.guards.lock().map_err(|_| VaultError::Corrupt)?;
        guards.insert(scope.to_owned(), guard.clone());
        Ok(())
    }

    fn load_install_key(&self, scope: &str) -> Result<Option<Secret>, VaultError> {
        let keys = self.install_keys.lock().map_err(|_| VaultError::Corrupt)?;
        Ok(keys.get(scope).cloned())
    }

    fn save_install_key(&self, scope: &str, seed: &Secret) -> Result<(), VaultError> {
        let mut keys = self.install_keys.lock().map_err(|_| VaultError::Corrupt)?;
        keys.insert(scope.to_owned(), seed.clone());
        Ok(())
    }
}
