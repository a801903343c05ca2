//! The console's non-secret state, one JSON file in the app data folder,
//! written atomically (temporary file, fsync, rename, fsync of the folder) so
//! a crash leaves the old file or the new one, never half of one.
//!
//! The customer can write the file, so it decides nothing by itself: the
//! license account is the signed document the server sent, verified on load
//! against the trust anchor in the keychain (never against keys in the
//! file), and what the console remembers beyond signed facts is sealed
//! (`license_core::seal`) with a key and a generation kept in the keychain
//! ([`crate::vault::Guard`]). [`integrity`] says whether the file read is
//! the one last written.

use std::io::Write;
use std::path::{Path, PathBuf};

use license_core::seal::{self, Seal};
use license_core::{DeliveredNotices, JwkSet, LicenseState};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::vault::Guard;

/// The lock that keeps one process at a time on a state folder: the
/// console's window holds it while it runs, a command-line subcommand while
/// it works, so neither writes over what the other just wrote. The operating
/// system lets it go when the process ends, however it ends.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    const FILE: &'static str = "console.lock";

    fn open(dir: &Path) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(dir)?;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(Self::FILE))
    }

    /// Takes the lock of `dir`, waiting while another process holds it.
    pub fn take(dir: &Path) -> std::io::Result<Self> {
        let file = Self::open(dir)?;
        file.lock()?;
        Ok(Self { _file: file })
    }

    /// Takes the lock of `dir` if no other process holds it.
    pub fn try_take(dir: &Path) -> std::io::Result<Option<Self>> {
        let file = Self::open(dir)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Everything the console remembers between runs, except tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    /// Format version of this file.
    pub version: u32,
    /// License server URL the user chose last.
    pub server_url: Option<String>,
    /// Server ID of this device at that server (once licensed).
    pub server_id: Option<String>,
    /// The signed license account document (a JWS), verified on every load.
    pub license_document: Option<String>,
    /// The server's public keys as last fetched (informational: documents
    /// are verified against the keychain's anchor only).
    pub jwks: Option<JwkSet>,
    /// Times of verifications and failures, token expiry, highest time seen.
    pub state: LicenseState,
    /// Notices already delivered.
    pub delivered: DeliveredNotices,
    /// The user's settings.
    pub settings: crate::settings::Settings,
    /// Licensed by file: the signed offline license (a JWS, verified on
    /// every load against the anchor and this install's key).
    pub offline_license: Option<String>,
    /// The activation request waiting for its response.
    pub offline_request: Option<PendingRequest>,
}

/// An activation request the console saved and waits an answer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Its id (the response must name it).
    pub request_id: String,
    /// The license server it was made for.
    pub server_url: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
}

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The state file.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file `state.json` in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("state.json"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state. A missing file is a fresh start; a damaged one is
    /// set aside as `state.json.damaged` (nothing is lost) and also a fresh
    /// start. [`Loaded::envelope`] says how the file stood, for [`integrity`].
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Loaded::fresh(Envelope::Missing))
            }
            Err(source) => {
                return Err(StoreError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        if let Ok(file) = serde_json::from_slice::<SealedFile>(&bytes) {
            if let Ok(persisted) = serde_json::from_str(file.state.get()) {
                return Ok(Loaded {
                    persisted,
                    envelope: Envelope::Sealed {
                        generation: file.generation,
                        seal: file.seal,
                        body: file.state.get().to_owned(),
                    },
                });
            }
        } else if let Ok(persisted) = serde_json::from_slice(&bytes) {
            return Ok(Loaded {
                persisted,
                envelope: Envelope::Unsealed,
            });
        }
        tracing::warn!(path = %self.path.display(), "state file is damaged; starting fresh");
        let aside = self.path.with_extension("json.damaged");
        let _ = std::fs::rename(&self.path, aside);
        Ok(Loaded::fresh(Envelope::Damaged))
    }

    /// Writes the state atomically, sealed with `key` as `generation`.
    pub fn save(
        &self,
        state: &Persisted,
        key: &[u8; 32],
        generation: u64,
    ) -> Result<(), StoreError> {
        let io = |action, source| StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
        let body = serde_json::to_string_pretty(state)
            .map_err(|e| io("serialize", std::io::Error::other(e)))?;
        let tag = seal::seal(key, generation, body.as_bytes());
        // The body is written as it was sealed, byte for byte.
        let json = format!(
            "{{\n\"generation\": {generation},\n\"seal\": \"{tag}\",\n\"state\": {body}\n}}\n"
        );
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
            file.write_all(json.as_bytes())
                .map_err(|e| io("write", e))?;
            file.sync_all().map_err(|e| io("sync", e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| io("replace", e))?;
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
}

/// The file as written: the state, its generation and its seal.
#[derive(Deserialize)]
struct SealedFile<'a> {
    generation: u64,
    seal: String,
    #[serde(borrow)]
    state: &'a RawValue,
}

/// What [`StateFile::load`] read.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The state as the file has it (defaults when missing or damaged).
    pub persisted: Persisted,
    /// How the file stood.
    pub envelope: Envelope,
}

impl Loaded {
    fn fresh(envelope: Envelope) -> Loaded {
        Loaded {
            persisted: Persisted::default(),
            envelope,
        }
    }
}

/// How the state file stood when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    /// There was no file.
    Missing,
    /// The file was not a state file (set aside).
    Damaged,
    /// A state file without a seal (written before seals, or edited).
    Unsealed,
    /// A sealed state file.
    Sealed {
        /// Its generation.
        generation: u64,
        /// Its seal.
        seal: String,
        /// The state exactly as sealed.
        body: String,
    },
}

/// Whether the state file read is the one the console last wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum StateIntegrity {
    /// It is (or this is the console's first start, or its first with seals).
    Intact,
    /// It was edited, replaced or damaged.
    Edited,
    /// An older copy of it was put back (a backup, a VM snapshot).
    OlderCopy,
    /// It was deleted.
    Deleted,
}

impl StateIntegrity {
    /// What happened to the file, in words for a notice ("was edited").
    pub fn words(self) -> Option<&'static str> {
        match self {
            StateIntegrity::Intact => None,
            StateIntegrity::Edited => Some("was edited or replaced"),
            StateIntegrity::OlderCopy => Some("was replaced by an older copy"),
            StateIntegrity::Deleted => Some("was deleted"),
        }
    }
}

/// The one decision on the file's integrity, from how it stood and the
/// keychain's [`Guard`] (`None`: the keychain has none yet). A first start
/// has neither file nor guard; a file from before seals has no seal and the
/// keychain no guard: both are intact. Every other file that is not the one
/// the guard's key sealed last is not.
pub fn integrity(envelope: &Envelope, guard: Option<&Guard>) -> StateIntegrity {
    let Some(guard) = guard else {
        return match envelope {
            Envelope::Missing | Envelope::Unsealed => StateIntegrity::Intact,
            // Sealed with a key the keychain no longer has, or damaged.
            Envelope::Sealed { .. } | Envelope::Damaged => StateIntegrity::Edited,
        };
    };
    let Some(key) = guard.key() else {
        return StateIntegrity::Edited;
    };
    match envelope {
        Envelope::Missing if guard.generation == 0 => StateIntegrity::Intact,
        Envelope::Missing => StateIntegrity::Deleted,
        Envelope::Damaged | Envelope::Unsealed => StateIntegrity::Edited,
        Envelope::Sealed {
            generation,
            seal: tag,
            body,
        } => match seal::check(&key, guard.generation, *generation, body.as_bytes(), tag) {
            Seal::Intact => StateIntegrity::Intact,
            Seal::Broken => StateIntegrity::Edited,
            Seal::Stale { .. } => StateIntegrity::OlderCopy,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [3; 32];

    fn guard(generation: u64) -> Guard {
        Guard {
            seal_key: base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                KEY,
            ),
            generation,
            ..Guard::new()
        }
    }

    fn sample() -> Persisted {
        Persisted {
            version: 2,
            server_url: Some("http://127.0.0.1:8300".into()),
            server_id: Some("SRV-1".into()),
            ..Persisted::default()
        }
    }

    #[test]
    fn a_saved_state_loads_back_intact_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::in_dir(dir.path());
        let fresh = file.load().expect("load");
        assert_eq!(fresh.persisted, Persisted::default());
        assert_eq!(integrity(&fresh.envelope, None), StateIntegrity::Intact);
        file.save(&sample(), &KEY, 1).expect("save");
        let loaded = file.load().expect("load");
        assert_eq!(loaded.persisted, sample());
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(1))),
            StateIntegrity::Intact
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn a_damaged_file_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::in_dir(dir.path());
        std::fs::write(file.path(), b"{not json").expect("write");
        let loaded = file.load().expect("load");
        assert_eq!(loaded.persisted, Persisted::default());
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(1))),
            StateIntegrity::Edited
        );
        let aside = dir.path().join("state.json.damaged");
        assert_eq!(std::fs::read(aside).expect("kept"), b"{not json");
    }

    #[test]
    fn an_edited_deleted_or_older_file_is_recognized() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::in_dir(dir.path());
        file.save(&sample(), &KEY, 1).expect("save");
        let older = std::fs::read(file.path()).expect("read");
        file.save(&sample(), &KEY, 2).expect("save");
        let current = std::fs::read_to_string(file.path()).expect("read");

        // Edited: one character of the state changed.
        std::fs::write(file.path(), current.replace("SRV-1", "SRV-2")).expect("write");
        let loaded = file.load().expect("load");
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(2))),
            StateIntegrity::Edited
        );
        // Its seal removed: an unsealed file where a sealed one belongs.
        std::fs::write(file.path(), serde_json::to_vec(&sample()).expect("json")).expect("write");
        let loaded = file.load().expect("load");
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(2))),
            StateIntegrity::Edited
        );
        // An older copy put back.
        std::fs::write(file.path(), &older).expect("write");
        let loaded = file.load().expect("load");
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(2))),
            StateIntegrity::OlderCopy
        );
        // Deleted.
        std::fs::remove_file(file.path()).expect("remove");
        let loaded = file.load().expect("load");
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(2))),
            StateIntegrity::Deleted
        );
        // Sealed with another key.
        file.save(&sample(), &[9; 32], 2).expect("save");
        let loaded = file.load().expect("load");
        assert_eq!(
            integrity(&loaded.envelope, Some(&guard(2))),
            StateIntegrity::Edited
        );
    }
}
