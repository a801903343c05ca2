//! Air-gapped activation by file (`license_core::offline` has the formats
//! and every check): save an activation request signed with the install's
//! key, load the response the Authorization server made for it, give the
//! license up with a deactivation file. Files carry no secret: a response
//! is bound to this install's key, which never leaves the keychain.

use std::sync::Arc;

use license_core::offline::{
    verify_offline_license_signature, verify_response, OfflineError, OfflineLicenseClaims,
    RequestClaims, RequestKind, ResponseCheck,
};
use license_core::protocol::CONSOLE_CLIENT_ID;
use license_core::{JwkSet, LicenseState};
use time::OffsetDateTime;

use super::{apply_signed_facts, new_client, normalize_server_url, Inner, Licensing};
use crate::error::{CommandError, ErrorCode};
use crate::store::{PendingRequest, Persisted};
use crate::vault::VaultKey;
use crate::view::{rfc3339, LicenseView};

/// The vendor's keys this console was built with
/// (`LICENSE_CONSOLE_VENDOR_KEYS` at compile time: a JWK Set as JSON), the
/// trust anchor of a first activation by file. Debug builds (the tests)
/// also read a JWK Set file named by the same variable at run time; release
/// builds never do, so nothing on the customer's machine can name the keys.
pub fn vendor_keys() -> Option<JwkSet> {
    if let Some(json) = option_env!("LICENSE_CONSOLE_VENDOR_KEYS") {
        if let Ok(keys) = serde_json::from_str::<JwkSet>(json) {
            return Some(keys);
        }
    }
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("LICENSE_CONSOLE_VENDOR_KEYS") {
        let text = std::fs::read_to_string(path).ok()?;
        return serde_json::from_str(&text).ok();
    }
    None
}

fn file_error(err: OfflineError) -> CommandError {
    let mut message = err.to_string();
    if let Some(first) = message.get(..1) {
        message = first.to_uppercase() + &message[1..];
    }
    message.push_str(". Nothing was changed.");
    CommandError::new(ErrorCode::OfflineFile, message)
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

/// A kept offline license, checked against the anchor and this install's
/// key and not given up since: its claims, or why it no longer counts.
pub(super) fn kept_offline_license(
    raw: &str,
    anchor: &JwkSet,
    server_url: &str,
    jkt: &str,
    given_up: Option<i64>,
) -> Result<OfflineLicenseClaims, OfflineError> {
    let claims = verify_offline_license_signature(raw, anchor, server_url, CONSOLE_CLIENT_ID, jkt)?;
    if given_up.is_some_and(|t| claims.iat <= t) {
        return Err(OfflineError::NoRequest);
    }
    Ok(claims)
}

/// Takes the offline license's facts into the state: licensed until its
/// expiry, with no online refresh meanwhile.
pub(super) fn apply_offline(state: &mut LicenseState, claims: &OfflineLicenseClaims) {
    state.offline_until = OffsetDateTime::from_unix_timestamp(claims.exp).ok();
    state.offline_id = Some(claims.jti.clone());
}

/// At start: the kept offline license counts only if it verifies against
/// `anchor`, is bound to this install's key (read from the keychain) and
/// was not given up; otherwise it is dropped and the console says why in
/// its log.
pub(super) async fn restore_offline(
    vault: &Arc<dyn crate::vault::TokenVault>,
    file: &crate::store::StateFile,
    guard: &crate::vault::Guard,
    anchor: &JwkSet,
    server_url: &str,
    persisted: &mut Persisted,
) {
    persisted.state.offline_until = None;
    persisted.state.offline_id = None;
    let Some(raw) = persisted.offline_license.clone() else {
        return;
    };
    let vault = Arc::clone(vault);
    let scope = file.path().display().to_string();
    let key = tokio::task::spawn_blocking(move || vault.load_install_key(&scope)).await;
    let jkt = match key {
        Ok(Ok(Some(seed))) => license_client::DpopKey::from_encoded_seed(seed.expose())
            .map(|k| k.thumbprint().to_owned()),
        _ => None,
    };
    let Some(jkt) = jkt else {
        tracing::warn!("the install's key cannot be read: the offline license is not checked now");
        return;
    };
    match kept_offline_license(&raw, anchor, server_url, &jkt, guard.offline_given_up) {
        Ok(claims) => apply_offline(&mut persisted.state, &claims),
        Err(err) => {
            tracing::warn!(error = %err, "the kept offline license does not count");
            persisted.offline_license = None;
        }
    }
}

impl Licensing {
    /// Makes an activation request for `server_url` as typed (or the
    /// configured server), remembers it as the one awaiting a response, and
    /// returns its text. While licensed by file, it is the renewal.
    pub async fn activation_request(
        &self,
        server_url: Option<&str>,
    ) -> Result<(PendingRequest, String), CommandError> {
        let key = self.install_key().await?;
        let mut inner = self.inner.lock().await;
        let p = &inner.persisted;
        let url = match server_url {
            Some(typed) if !typed.trim().is_empty() => normalize_server_url(typed)?,
            _ => p.server_url.clone().ok_or_else(|| {
                CommandError::new(
                    ErrorCode::InvalidInput,
                    "Enter the license server URL first: the request names the server that answers it.",
                )
            })?,
        };
        let licensed_online = p.server_id.is_some() && p.offline_license.is_none();
        if licensed_online {
            return Err(CommandError::new(
                ErrorCode::InvalidInput,
                "This server is licensed online; it refreshes its license by itself. Remove the license first to license it by file.",
            ));
        }
        if p.offline_license.is_some() && p.server_url.as_deref() != Some(url.as_str()) {
            return Err(CommandError::new(
                ErrorCode::InvalidInput,
                "This server is licensed by another license server; deactivate that license first.",
            ));
        }
        let now = self.clock.now();
        let pending = PendingRequest {
            request_id: random_id(),
            server_url: url.clone(),
            created_at: rfc3339(now),
        };
        let claims = RequestClaims {
            kind: RequestKind::Activate,
            request_id: pending.request_id.clone(),
            server_url: url.clone(),
            console_version: env!("CARGO_PKG_VERSION").to_owned(),
            iat: now.unix_timestamp(),
            server_id: p.offline_license.as_ref().and(p.server_id.clone()),
            license_id: None,
        };
        let text = key.sign_offline_request(&claims);
        inner.persisted.server_url = Some(url);
        inner.persisted.offline_request = Some(pending.clone());
        self.save(&mut inner)?;
        self.publish(&inner);
        Ok((pending, text))
    }

    /// Loads an activation response: verified against the anchor (or the
    /// vendor's keys on a first activation), bound to this install's key and
    /// to the request waiting; then the console is licensed by file.
    pub async fn load_activation_response(&self, text: &str) -> Result<LicenseView, CommandError> {
        let key = self.install_key().await?;
        let mut inner = self.inner.lock().await;
        let pending = inner.persisted.offline_request.clone();
        let Some(url) = pending
            .as_ref()
            .map(|p| p.server_url.clone())
            .or(inner.persisted.server_url.clone())
        else {
            return Err(file_error(OfflineError::NoRequest));
        };
        let anchor = inner
            .guard
            .anchors
            .get(&url)
            .cloned()
            .or_else(vendor_keys)
            .ok_or_else(|| {
                CommandError::new(
                    ErrorCode::NoTrustAnchor,
                    format!(
                        "This console has no key of {url} to check the response with: it must be \
                         authorized online once, or be installed from a package built with the \
                         vendor's keys. Nothing was changed."
                    ),
                )
            })?;
        let now = inner.persisted.state.effective_now(self.clock.now());
        let check = ResponseCheck {
            server_url: &url,
            client_id: CONSOLE_CLIENT_ID,
            jkt: key.thumbprint(),
            pending_request: pending.as_ref().map(|p| p.request_id.as_str()),
            anchor: &anchor,
        };
        let verified = verify_response(text, &check, now).map_err(file_error)?;
        if inner
            .guard
            .offline_given_up
            .is_some_and(|t| verified.offline.iat <= t)
        {
            return Err(file_error(OfflineError::NoRequest));
        }
        // Online tokens of an earlier license give way to the file.
        if let Some(id) = inner.persisted.server_id.clone() {
            let k = VaultKey {
                server_url: url.clone(),
                server_id: id,
            };
            if let Err(err) = self.vault_call(move |v| v.delete(&k)).await {
                tracing::warn!(code = ?err.code, "old tokens not deleted from the keychain");
            }
        }
        inner.guard.anchors.insert(url.clone(), verified.anchor);
        let p = &mut inner.persisted;
        let highest_seen = p.state.latest_seen();
        let settings = p.settings.clone();
        let delivered = std::mem::take(&mut p.delivered);
        *p = Persisted {
            server_url: Some(url.clone()),
            server_id: Some(verified.offline.sub.clone()),
            license_document: Some(verified.response.license_document.clone()),
            offline_license: Some(verified.response.offline_license.clone()),
            settings,
            delivered,
            ..Persisted::default()
        };
        p.state.highest_seen = highest_seen;
        apply_signed_facts(&mut p.state, verified.document);
        apply_offline(&mut p.state, &verified.offline);
        let client = new_client(&url, Arc::clone(&self.clock), None)?;
        if let Some(anchor) = inner.guard.anchors.get(&url) {
            client.set_cached_jwks(anchor.clone());
        }
        inner.client = Some(client);
        self.save(&mut inner)?;
        tracing::info!(until = verified.offline.exp, "licensed by file");
        Ok(self.publish(&inner))
    }

    /// Gives the offline license up: the console forgets it (and will not
    /// take it back) and returns the deactivation file for the
    /// Authorization server, which frees the device.
    pub async fn deactivate_offline(&self) -> Result<String, CommandError> {
        let key = self.install_key().await?;
        let mut inner = self.inner.lock().await;
        let p = &inner.persisted;
        let (Some(url), Some(server_id), Some(license_id), Some(_)) = (
            p.server_url.clone(),
            p.server_id.clone(),
            p.state.offline_id.clone(),
            p.offline_license.as_ref(),
        ) else {
            return Err(CommandError::new(
                ErrorCode::NotLicensed,
                "This server holds no offline license to deactivate.",
            ));
        };
        let now = self.clock.now();
        let claims = RequestClaims {
            kind: RequestKind::Deactivate,
            request_id: random_id(),
            server_url: url.clone(),
            console_version: env!("CARGO_PKG_VERSION").to_owned(),
            iat: now.unix_timestamp(),
            server_id: Some(server_id),
            license_id: Some(license_id),
        };
        let text = key.sign_offline_request(&claims);
        let given_up = inner
            .guard
            .anchors
            .get(&url)
            .and_then(|anchor| {
                let raw = inner.persisted.offline_license.as_deref()?;
                verify_offline_license_signature(
                    raw,
                    anchor,
                    &url,
                    CONSOLE_CLIENT_ID,
                    key.thumbprint(),
                )
                .ok()
            })
            .map(|c| c.iat);
        inner.guard.offline_given_up = inner.guard.offline_given_up.max(given_up);
        let p = &mut inner.persisted;
        let highest_seen = p.state.latest_seen();
        *p = Persisted {
            server_url: Some(url),
            settings: p.settings.clone(),
            ..Persisted::default()
        };
        p.state.highest_seen = highest_seen;
        self.save(&mut inner)?;
        self.publish(&inner);
        Ok(text)
    }

    /// Sends the new view to the window and wakes the background task.
    fn publish(&self, inner: &Inner) -> LicenseView {
        let view = self.view_of(inner);
        self.events.license_changed(&view);
        self.changed.notify_one();
        view
    }
}
