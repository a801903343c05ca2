//! Verification of what the server signed: license tokens and license
//! documents, fresh (with the server's `Date` as a check on this computer's
//! clock) or cached, against the cached JWK Set, which is fetched again once
//! when a token names an unknown key.

use license_core::jwk::JwkSet;
use license_core::token::{verify, AccountClaims, Expectation, LicenseClaims, VerifyError};
use license_core::wording::duration_in_words;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use url::Url;

use super::{lock, parse, unexpected_status, LicenseClient, Reply};
use crate::error::{clean, ClientError};
use crate::server_url::url_string;

impl LicenseClient {
    /// Verifies a signed license account document (fresh or cached on disk)
    /// at `now`.
    ///
    /// Uses the cached JWK Set (see [`set_cached_jwks`](Self::set_cached_jwks)),
    /// so a cached document verifies offline; the network is used only when
    /// no JWK Set is cached or the document names a key the cached set does
    /// not have.
    pub async fn verify_document(
        &self,
        raw: &str,
        now: OffsetDateTime,
    ) -> Result<AccountClaims, ClientError> {
        self.verify_signed(raw, Expectation::license_document, "license document", now)
            .await
    }

    /// Verifies a license token (fresh or restored from the keychain) at
    /// `now`, like [`verify_document`](Self::verify_document).
    pub async fn verify_token(
        &self,
        raw: &str,
        now: OffsetDateTime,
    ) -> Result<LicenseClaims, ClientError> {
        self.verify_signed(raw, Expectation::license_token, "license token", now)
            .await
    }

    async fn verify_signed<C>(
        &self,
        raw: &str,
        expectation: fn(String, String) -> Expectation,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<C, ClientError>
    where
        C: DeserializeOwned + license_core::token::RegisteredClaims,
    {
        // Offline, before any discovery, the issuer is the configured URL
        // (discovery only ever accepts that issuer).
        let issuer = lock(&self.inner.metadata)
            .as_ref()
            .map(|m| m.issuer.clone())
            .unwrap_or_else(|| self.inner.server_url.clone());
        let expect = expectation(issuer, self.inner.client_id.clone());
        let cached = lock(&self.inner.jwks).clone();
        let first = match &cached {
            Some(jwks) => self.verify_claims(raw, jwks, &expect, now),
            None => Err(VerifyError::UnknownKey { kid: String::new() }),
        };
        match first {
            Ok(claims) => Ok(claims),
            // A key this cache has not seen (rotation): fetch the set once.
            Err(VerifyError::UnknownKey { .. }) => {
                let jwks = self.refresh_jwks().await?;
                self.verify_claims(raw, &jwks, &expect, now)
                    .map_err(|e| verify_error(what, e, now))
            }
            Err(e) => Err(verify_error(what, e, now)),
        }
    }

    /// Verifies what the server just sent, at [`confirmed_now`]
    /// (Self::confirmed_now); returns the claims and that time. When it
    /// fails but would verify at the server's own time, this computer's
    /// clock is ahead: [`ClientError::ClockAhead`] says by how much.
    pub(super) async fn verify_fresh<C>(
        &self,
        raw: &str,
        expectation: fn(String, String) -> Expectation,
        what: &str,
        reply: &Reply,
        now: OffsetDateTime,
    ) -> Result<(C, OffsetDateTime), ClientError>
    where
        C: DeserializeOwned + license_core::token::RegisteredClaims,
    {
        let now = self.confirmed_now(reply, now);
        match self.verify_signed::<C>(raw, expectation, what, now).await {
            Ok(claims) => Ok((claims, now)),
            Err(e) => Err(match self.ahead_of_server(reply) {
                Some(server)
                    if self
                        .verify_signed::<C>(raw, expectation, what, server)
                        .await
                        .is_ok() =>
                {
                    self.clock_ahead(server)
                }
                _ => e,
            }),
        }
    }

    /// The time to verify a fresh answer at: the caller's `now` (which may
    /// be a later time already seen, after a clock set back), unless the
    /// server's `Date` agrees with this computer's clock within
    /// [`CLOCK_TOLERANCE`]: then the clock is confirmed right now, and a
    /// later time seen before was the clock's mistake (once set forward),
    /// which must not make every fresh token look expired.
    fn confirmed_now(&self, reply: &Reply, now: OffsetDateTime) -> OffsetDateTime {
        let local = self.inner.clock.now();
        match server_date(reply) {
            Some(server) if (server - local).abs() <= CLOCK_TOLERANCE => local,
            _ => now,
        }
    }

    /// The server's time when this computer's clock is ahead of it by more
    /// than [`CLOCK_TOLERANCE`].
    fn ahead_of_server(&self, reply: &Reply) -> Option<OffsetDateTime> {
        server_date(reply).filter(|server| self.inner.clock.now() - *server > CLOCK_TOLERANCE)
    }

    /// An answer valid at the server's time but not at this computer's:
    /// the clock is ahead, and by how much.
    fn clock_ahead(&self, server: OffsetDateTime) -> ClientError {
        ClientError::ClockAhead {
            ahead: duration_in_words(self.inner.clock.now() - server),
            server_time: server
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| server.to_string()),
        }
    }

    /// `verify`, accepting an issuer that differs from the expected one only
    /// in spelling (case of the host, trailing slash, default port): the
    /// signature already vouches for it and discovery compares normalised.
    fn verify_claims<C>(
        &self,
        raw: &str,
        jwks: &JwkSet,
        expect: &Expectation,
        now: OffsetDateTime,
    ) -> Result<C, VerifyError>
    where
        C: DeserializeOwned + license_core::token::RegisteredClaims,
    {
        match verify::<C>(raw, jwks, expect, now) {
            Err(VerifyError::WrongIssuer { found })
                if Url::parse(&found).is_ok_and(|u| url_string(&u) == self.inner.server_url) =>
            {
                let expect = Expectation {
                    issuer: found,
                    ..expect.clone()
                };
                verify::<C>(raw, jwks, &expect, now)
            }
            other => other,
        }
    }

    /// The JWK Set: the cached one, or fetched (and cached) when none is.
    pub async fn jwks(&self) -> Result<JwkSet, ClientError> {
        if let Some(jwks) = lock(&self.inner.jwks).clone() {
            return Ok(jwks);
        }
        self.refresh_jwks().await
    }

    /// Fetches the JWK Set from the server, caches it and returns it (for the
    /// console to store alongside the license document).
    pub async fn refresh_jwks(&self) -> Result<JwkSet, ClientError> {
        let metadata = self.metadata().await?;
        let reply = self
            .send(self.inner.http.get(&metadata.jwks_uri), "jwks")
            .await?;
        if reply.status != StatusCode::OK {
            return Err(unexpected_status(&reply));
        }
        let jwks: JwkSet = parse(&reply.body, "JWK Set")?;
        if jwks.keys.is_empty() {
            return Err(ClientError::protocol("the JWK Set has no keys"));
        }
        *lock(&self.inner.jwks) = Some(jwks.clone());
        Ok(jwks)
    }

    /// Replaces the cached JWK Set (the console restores its own copy at
    /// start, so cached documents verify offline).
    pub fn set_cached_jwks(&self, jwks: JwkSet) {
        *lock(&self.inner.jwks) = Some(jwks);
    }

    /// The cached JWK Set, if any, without touching the network.
    pub fn cached_jwks(&self) -> Option<JwkSet> {
        lock(&self.inner.jwks).clone()
    }
}

fn verify_error(what: &str, e: VerifyError, now: OffsetDateTime) -> ClientError {
    let reason = match e {
        VerifyError::Expired { at } => format!(
            "the {what} expired at {at}; if that is wrong, check this computer's date and time"
        ),
        VerifyError::NotYetValid { at } => {
            return ClientError::ClockBehind {
                what: what.to_owned(),
                valid_from: at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| at.to_string()),
                behind: duration_in_words(at - now),
            }
        }
        other => format!(
            "the {what} failed verification: {}",
            clean(&other.to_string())
        ),
    };
    ClientError::protocol(reason)
}

/// How far this computer's clock may be from the server's `Date` and still
/// count as right (the `Date` header has whole seconds; networks add delay).
const CLOCK_TOLERANCE: time::Duration = time::Duration::minutes(5);

/// The server's clock from the answer's `Date` header (RFC 9110 IMF-fixdate).
fn server_date(reply: &Reply) -> Option<OffsetDateTime> {
    let value = reply.headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}
