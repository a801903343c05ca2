//! Keeping the license: refresh (token rotation, then the signed license
//! account), what a failure records, and removal.

use license_client::{ClientError, LicenseClient, TokenSet};
use license_core::anchor::accept_key_set;
use license_core::{next_refresh, AccountClaims, JwkSet};
use time::OffsetDateTime;

use super::{verify_document, Inner, Licensing};
use crate::error::{CommandError, ErrorCode};
use crate::store::Persisted;
use crate::vault::{Tokens, VaultKey};
use crate::view::LicenseView;

impl Licensing {
    /// Fetches the license account with fresh `tokens` and records the
    /// outcome: the panel and the plan follow either way.
    pub(super) async fn fetch_and_record(
        &self,
        client: &LicenseClient,
        tokens: &TokenSet,
    ) -> Result<(), CommandError> {
        let fetched = client
            .fetch_license(&tokens.access_token, self.verification_now().await)
            .await;
        let jwks = client.jwks().await.ok();
        let mut inner = self.inner.lock().await;
        match fetched {
            Ok(doc) => {
                // The keys that verified the document must be the anchor's,
                // or follow from it; then the document is checked against
                // the anchor itself.
                // At the server's signing time: the client checked expiry at
                // the right time already; this checks whose key signed it.
                let signed_at = OffsetDateTime::from_unix_timestamp(doc.claims.server_time)
                    .unwrap_or_else(|_| self.clock.now());
                if let Err(err) =
                    self.update_anchor(&mut inner, client, jwks.as_ref(), &doc.raw, signed_at)
                {
                    self.record_failure(&mut inner, &err)?;
                    return Err(err.into());
                }
                let claims: AccountClaims = doc.claims;
                let server_time = OffsetDateTime::from_unix_timestamp(claims.server_time).ok();
                let state = &mut inner.persisted.state;
                state.account = Some(claims.account);
                state.policy = claims.policy;
                state.revoked = false;
                state.apply_token(&tokens.claims);
                state.record_success(self.clock.now(), server_time);
                inner.persisted.license_document = Some(doc.raw);
                if jwks.is_some() {
                    inner.persisted.jwks = jwks;
                }
                inner.client = Some(client.clone());
                self.save(&mut inner)?;
                let view = self.view_of(&inner);
                drop(inner);
                self.events.license_changed(&view);
                self.changed.notify_one();
                Ok(())
            }
            Err(err) => {
                self.record_failure(&mut inner, &err)?;
                Err(err.into())
            }
        }
    }

    /// Takes the server's key set `offered` into the trust anchor as
    /// `license_core::anchor` allows (pinned at authorization, when there
    /// is none yet), then verifies `document` against the anchor, at the
    /// time the server signed it.
    fn update_anchor(
        &self,
        inner: &mut Inner,
        client: &LicenseClient,
        offered: Option<&JwkSet>,
        document: &str,
        signed_at: OffsetDateTime,
    ) -> Result<(), ClientError> {
        let url = client.server_url().to_owned();
        let now = self.clock.now();
        let pinned = inner.guard.anchors.get(&url).cloned();
        let anchor = match (pinned, offered) {
            (None, Some(offered)) => JwkSet::new(offered.keys.clone()),
            // The server's rollovers let a console that was away through
            // whole rotations follow them from the key it pinned.
            (Some(pinned), Some(offered)) => {
                accept_key_set(&url, &pinned, offered, &offered.rollovers, now).map_err(|e| {
                    ClientError::Protocol {
                        reason: format!(
                            "{e}. Remove the license and acquire it again if the server's keys \
                         were replaced on purpose"
                        ),
                    }
                })?
            }
            (Some(pinned), None) => pinned,
            (None, None) => {
                return Err(ClientError::Protocol {
                    reason: "the server's keys could not be fetched".to_owned(),
                })
            }
        };
        verify_document(&url, client.client_id(), &anchor, document, signed_at).map_err(|e| {
            ClientError::Protocol {
                reason: format!("the license document does not verify with the pinned keys ({e})"),
            }
        })?;
        inner.guard.anchors.insert(url, anchor);
        Ok(())
    }

    fn record_failure(&self, inner: &mut Inner, err: &ClientError) -> Result<(), CommandError> {
        if matches!(err, ClientError::Revoked { .. }) {
            inner.persisted.state.revoked = true;
        }
        inner.persisted.state.record_failure(self.clock.now());
        self.save(inner)?;
        let view = self.view_of(inner);
        self.events.license_changed(&view);
        self.changed.notify_one();
        Ok(())
    }
    /// "Refresh": a new license token and the license account, now. A
    /// refresh already running is joined rather than repeated.
    pub async fn refresh(&self) -> Result<LicenseView, CommandError> {
        let started = self.clock.now();
        let _gate = self.refresh_gate.lock().await;
        let (client, key) = {
            let inner = self.inner.lock().await;
            // Joined a refresh that finished while we waited: its result stands.
            if inner
                .persisted
                .state
                .last_verified
                .is_some_and(|t| t >= started)
            {
                return Ok(self.view_of(&inner));
            }
            if inner.persisted.offline_license.is_some() {
                return Err(CommandError::new(
                    ErrorCode::LicensedOffline,
                    "This server is licensed by file (offline): there is nothing to refresh online. Renew it with a new activation request before the offline license runs out.",
                ));
            }
            let (Some(url), Some(id)) = (
                inner.persisted.server_url.clone(),
                inner.persisted.server_id.clone(),
            ) else {
                return Err(CommandError::new(
                    ErrorCode::NotLicensed,
                    "This console is not licensed yet: acquire a license first.",
                ));
            };
            (
                inner.client.clone(),
                VaultKey {
                    server_url: url,
                    server_id: id,
                },
            )
        };
        // Every request carries a proof by the install's key.
        let client = match client {
            Some(c) => self.with_install_key(c).await?,
            None => self.keyed_client(&key.server_url).await?,
        };
        let k = key.clone();
        let Some(tokens) = self.vault_call(move |v| v.load(&k)).await? else {
            return Err(CommandError::new(
                ErrorCode::KeychainMissing,
                "The license tokens are missing from the system keychain. Remove the license and acquire it again.",
            ));
        };
        match client
            .refresh(&tokens.refresh_token, self.verification_now().await)
            .await
        {
            Ok(new) => {
                let stored = Tokens {
                    license_token: new.access_token.clone(),
                    refresh_token: new.refresh_token.clone(),
                };
                let k = key.clone();
                self.vault_call(move |v| v.save(&k, &stored)).await?;
                self.fetch_and_record(&client, &new).await?;
                Ok(self.view().await)
            }
            Err(err) => {
                let mut inner = self.inner.lock().await;
                self.record_failure(&mut inner, &err)?;
                Err(err.into())
            }
        }
    }
    /// Whether a refresh is due now (the background task asks every tick).
    pub async fn refresh_due(&self) -> bool {
        let inner = self.inner.lock().await;
        if inner.persisted.server_id.is_none() || inner.persisted.state.revoked {
            return false;
        }
        let now = self.clock.now();
        let state = &inner.persisted.state;
        // Tokens in the keychain but no verified document (the state file
        // was deleted or its document did not verify): ask the server, at
        // most once a minute.
        if state.account.is_none() {
            return state
                .last_failure
                .is_none_or(|f| now - f >= time::Duration::minutes(1));
        }
        next_refresh(&Self::effective_state(&inner), now).is_some_and(|at| at <= now)
    }

    /// "Remove license": revokes at the server, deletes the tokens from the
    /// keychain and forgets the account. With `force`, a server that cannot
    /// be reached does not stop the removal from this computer.
    pub async fn remove(&self, force: bool) -> Result<LicenseView, CommandError> {
        let _gate = self.refresh_gate.lock().await;
        let (client, key) = {
            let inner = self.inner.lock().await;
            let key = match (&inner.persisted.server_url, &inner.persisted.server_id) {
                (Some(url), Some(id)) => Some(VaultKey {
                    server_url: url.clone(),
                    server_id: id.clone(),
                }),
                _ => None,
            };
            (inner.client.clone(), key)
        };
        if let Some(key) = &key {
            let k = key.clone();
            let tokens = self.vault_call(move |v| v.load(&k)).await?;
            if let (Some(tokens), Some(client)) = (tokens, client) {
                // A chain bound to the install's key is revoked with a proof.
                let revoked = match self.with_install_key(client).await {
                    Ok(client) => client
                        .revoke(&tokens.refresh_token)
                        .await
                        .map_err(CommandError::from),
                    Err(err) => Err(err),
                };
                if let Err(mut e) = revoked {
                    if !force {
                        e.message.push_str(
                            " The license was not removed. Choose Remove anyway to remove it from this computer only.",
                        );
                        return Err(e);
                    }
                }
            }
            let k = key.clone();
            self.vault_call(move |v| v.delete(&k)).await?;
        }
        let mut inner = self.inner.lock().await;
        let server_url = inner.persisted.server_url.clone();
        let settings = inner.persisted.settings.clone();
        let highest_seen = inner.persisted.state.latest_seen();
        if let Some(url) = &server_url {
            inner.guard.anchors.remove(url);
        }
        inner.persisted = Persisted {
            server_url,
            settings,
            ..Persisted::default()
        };
        inner.persisted.state.highest_seen = highest_seen;
        self.save(&mut inner)?;
        let view = self.view_of(&inner);
        drop(inner);
        self.events.license_changed(&view);
        Ok(view)
    }
}
