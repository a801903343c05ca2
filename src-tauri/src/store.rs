//! The console's non-secret state, one JSON file in the app data folder,
//! written atomically (temporary file, fsync, rename, fsync of the folder) so
//! a crash leaves the old file or the new one, never half of one. Nothing in
//! it is trusted without verification: the license account is kept as the
//! signed document the server sent and verified again on load.

use std::io::Write;
use std::path::{Path, PathBuf};

use license_core::{DeliveredNotices, JwkSet, LicenseState};
use serde::{Deserialize, Serialize};

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
    /// The server's public keys, to verify the document offline.
    pub jwks: Option<JwkSet>,
    /// Times of verifications and failures, token expiry, highest time seen.
    pub state: LicenseState,
    /// Notices already delivered.
    pub delivered: DeliveredNotices,
    /// The user's settings.
    pub settings: crate::settings::Settings,
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
    /// set aside as `state.json.damaged` (nothing is lost) and also a fresh start.
    pub fn load(&self) -> Result<Persisted, StoreError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Persisted::default())
            }
            Err(source) => {
                return Err(StoreError::Io {
                    action: "read",
                    path: self.path.clone(),
                    source,
                })
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(state) => Ok(state),
            Err(err) => {
                tracing::warn!(path = %self.path.display(), error = %err, "state file is damaged; starting fresh");
                let aside = self.path.with_extension("json.damaged");
                let _ = std::fs::rename(&self.path, aside);
                Ok(Persisted::default())
            }
        }
    }

    /// Writes the state atomically.
    pub fn save(&self, state: &Persisted) -> Result<(), StoreError> {
        let io = |action, source| StoreError::Io {
            action,
            path: self.path.clone(),
            source,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| io("serialize", std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut file = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
            file.write_all(&json).map_err(|e| io("write", e))?;
            file.sync_all().map_err(|e| io("sync", e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| io("replace", e))?;
        if let Ok(folder) = std::fs::File::open(dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_state_loads_back_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::in_dir(dir.path());
        assert_eq!(file.load().expect("load"), Persisted::default());
        let state = Persisted {
            version: 1,
            server_url: Some("http://127.0.0.1:8300".into()),
            server_id: Some("SRV-1".into()),
            ..Persisted::default()
        };
        file.save(&state).expect("save");
        assert_eq!(file.load().expect("load"), state);
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
        assert_eq!(file.load().expect("load"), Persisted::default());
        let aside = dir.path().join("state.json.damaged");
        assert_eq!(std::fs::read(aside).expect("kept"), b"{not json");
    }
}
