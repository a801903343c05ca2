//! The install's DPoP key (RFC 9449): an Ed25519 key pair made on first
//! need, its private key kept only in the OS keychain (never in the state
//! file, never in a log), and given to every client that talks to the
//! license server, so the server binds this install's tokens to it and a
//! token copied off the wire is useless elsewhere.
//!
//! The key identifies the install: "Remove license" keeps it. One that
//! cannot be read (a damaged entry) is replaced by a new one; tokens bound
//! to the old one are then refused and the device is authorized again.

use std::sync::Arc;

use license_client::{DpopKey, LicenseClient};

use super::{new_client, Licensing};
use crate::error::CommandError;
use crate::vault::{TokenVault, VaultError};

/// The install's key as the keychain holds it for `scope`; a new one,
/// stored there first, when there is none or it is unreadable. A keychain
/// that cannot be asked (locked, unavailable) is an error: no key is made
/// then, so none can be lost.
pub(super) fn load_or_create(vault: &dyn TokenVault, scope: &str) -> Result<DpopKey, VaultError> {
    match vault.load_install_key(scope) {
        Ok(Some(seed)) => match DpopKey::from_encoded_seed(seed.expose()) {
            Some(key) => return Ok(key),
            None => tracing::warn!("the install's DPoP key is unreadable: making a new one"),
        },
        Ok(None) => {}
        Err(VaultError::Corrupt) => {
            tracing::warn!("the install's DPoP key entry is damaged: making a new one")
        }
        Err(err) => return Err(err),
    }
    let key = DpopKey::generate();
    vault.save_install_key(scope, &key.encoded_seed())?;
    tracing::info!(
        thumbprint = key.thumbprint(),
        "made this install's DPoP key"
    );
    Ok(key)
}

impl Licensing {
    /// The install's DPoP key, read from the keychain (or made) once, then
    /// kept for the life of the process.
    pub(super) async fn install_key(&self) -> Result<DpopKey, CommandError> {
        // Held across the keychain call: two first needs make one key.
        let mut cached = self.install_key.lock().await;
        if let Some(key) = cached.as_ref() {
            return Ok(key.clone());
        }
        let scope = self.file.path().display().to_string();
        let key = self.vault_call(move |v| load_or_create(v, &scope)).await?;
        *cached = Some(key.clone());
        Ok(key)
    }

    /// A client of `url` that proves possession of the install's key.
    pub(super) async fn keyed_client(&self, url: &str) -> Result<LicenseClient, CommandError> {
        let key = self.install_key().await?;
        new_client(url, Arc::clone(&self.clock), Some(key))
    }

    /// `client` when it proves with the install's key; else a client of
    /// its server that does, with its cached JWK Set.
    pub(super) async fn with_install_key(
        &self,
        client: LicenseClient,
    ) -> Result<LicenseClient, CommandError> {
        let key = self.install_key().await?;
        if client.dpop_thumbprint() == Some(key.thumbprint()) {
            return Ok(client);
        }
        let keyed = new_client(client.server_url(), Arc::clone(&self.clock), Some(key))?;
        if let Some(jwks) = client.cached_jwks() {
            keyed.set_cached_jwks(jwks);
        }
        Ok(keyed)
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::licensing::{AuthorizationView, Events};
    use crate::store::StateFile;
    use crate::vault::{Guard, MemoryVault, Tokens, VaultKey};
    use crate::view::LicenseView;
    use license_client::Secret;

    /// A memory vault whose install-key entry cannot be read, with `error`.
    #[derive(Debug)]
    struct Unreadable {
        inner: MemoryVault,
        error: VaultError,
    }

    impl TokenVault for Unreadable {
        fn load(&self, key: &VaultKey) -> Result<Option<Tokens>, VaultError> {
            self.inner.load(key)
        }
        fn save(&self, key: &VaultKey, tokens: &Tokens) -> Result<(), VaultError> {
            self.inner.save(key, tokens)
        }
        fn delete(&self, key: &VaultKey) -> Result<(), VaultError> {
            self.inner.delete(key)
        }
        fn load_guard(&self, scope: &str) -> Result<Option<Guard>, VaultError> {
            self.inner.load_guard(scope)
        }
        fn save_guard(&self, scope: &str, guard: &Guard) -> Result<(), VaultError> {
            self.inner.save_guard(scope, guard)
        }
        fn load_install_key(&self, _scope: &str) -> Result<Option<Secret>, VaultError> {
            Err(self.error.clone())
        }
        fn save_install_key(&self, scope: &str, seed: &Secret) -> Result<(), VaultError> {
            self.inner.save_install_key(scope, seed)
        }
    }

    struct Quiet;

    impl Events for Quiet {
        fn license_changed(&self, _view: &LicenseView) {}
        fn authorization_failed(&self, _error: &CommandError) {}
        fn authorization_waiting(&self, _view: &AuthorizationView) {}
    }

    #[test]
    fn the_key_is_made_on_first_need_then_read_back() {
        let vault = MemoryVault::default();
        assert!(vault.load_install_key("a").unwrap().is_none());
        let key = load_or_create(&vault, "a").unwrap();
        let stored = vault.load_install_key("a").unwrap().expect("stored");
        assert_eq!(stored.expose(), key.encoded_seed().expose());
        assert_eq!(load_or_create(&vault, "a").unwrap(), key);
        // One key per install (state file).
        assert_ne!(load_or_create(&vault, "b").unwrap(), key);
        assert!(!format!("{vault:?} {key:?}").contains(stored.expose()));
    }

    #[test]
    fn an_unreadable_key_is_replaced_and_a_locked_keychain_is_an_error() {
        let vault = MemoryVault::default();
        vault
            .save_install_key("a", &Secret::new("not a key"))
            .unwrap();
        let key = load_or_create(&vault, "a").unwrap();
        let stored = vault.load_install_key("a").unwrap().unwrap();
        assert_eq!(stored.expose(), key.encoded_seed().expose());

        let damaged = Unreadable {
            inner: MemoryVault::default(),
            error: VaultError::Corrupt,
        };
        let key = load_or_create(&damaged, "a").unwrap();
        let stored = damaged.inner.load_install_key("a").unwrap().unwrap();
        assert_eq!(stored.expose(), key.encoded_seed().expose());

        let locked = Unreadable {
            inner: MemoryVault::default(),
            error: VaultError::Locked,
        };
        assert_eq!(load_or_create(&locked, "a"), Err(VaultError::Locked));
        assert!(locked.inner.load_install_key("a").unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_prove_with_the_install_key_which_survives_removal_and_restart() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(MemoryVault::default());
        let url = "http://127.0.0.1:9";
        let open = || {
            Licensing::open(
                Arc::new(SystemClock),
                vault.clone(),
                StateFile::in_dir(dir.path()),
                Arc::new(Quiet),
                Some(url.to_owned()),
            )
        };
        let licensing = open().await.unwrap();
        let scope = StateFile::in_dir(dir.path()).path().display().to_string();
        assert!(vault.load_install_key(&scope).unwrap().is_none(), "lazy");

        let client = licensing.keyed_client(url).await.unwrap();
        let seed = vault.load_install_key(&scope).unwrap().expect("made");
        let key = DpopKey::from_encoded_seed(seed.expose()).unwrap();
        assert_eq!(client.dpop_thumbprint(), Some(key.thumbprint()));
        // A client made without the key (the one `open` makes to verify
        // offline) is replaced before it talks to the server.
        let plain = new_client(url, Arc::new(SystemClock), None).unwrap();
        assert_eq!(plain.dpop_thumbprint(), None);
        let upgraded = licensing.with_install_key(plain).await.unwrap();
        assert_eq!(upgraded.dpop_thumbprint(), Some(key.thumbprint()));

        licensing.remove(true).await.unwrap();
        let kept = vault.load_install_key(&scope).unwrap().expect("kept");
        assert_eq!(kept.expose(), seed.expose());
        drop(licensing);
        let reopened = open().await.unwrap();
        let again = reopened.keyed_client(url).await.unwrap();
        assert_eq!(again.dpop_thumbprint(), Some(key.thumbprint()));
        // Never on disk.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let text = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains(seed.expose()));
        }
    }
}
