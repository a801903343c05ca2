//! Tokens and license documents: the refresh grant, the token response,
//! the license fetch, verification against the cached JWK Set (with the
//! server's `Date` as a check on this computer's clock), revocation and the
//! JWK Set cache.

use license_core::jwk::JwkSet;
use license_core::protocol::REFRESH_TOKEN_GRANT;
use license_core::token::{verify, AccountClaims, Expectation, LicenseClaims, VerifyError};
use license_core::wording::duration_in_words;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use time::OffsetDateTime;
use url::Url;

use super::{lock, oauth_error, parse, unexpected_status, LicenseClient, Reply};
use crate::error::{clean, ClientError};
use crate::secret::Secret;
use crate::server_url::url_string;

/// A license token (access token) and refresh token pair, with the license
/// token's claims verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The license token (secret).
    pub access_token: Secret,
    /// The refresh token (secret); the previous one is used up on refresh.
    pub refresh_token: Secret,
    /// Lifetime of the license token in seconds, as the server said.
    pub expires_in: u64,
    /// The license token's claims, verified (signature, issuer, audience,
    /// expiry).
    pub claims: LicenseClaims,
}

/// The signed license account document, verified.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseDocument {
    /// The compact JWS as received, to cache on disk and verify again with
    /// [`LicenseClient::verify_document`].
    pub raw: String,
    /// Its verified claims.
    pub claims: AccountClaims,
}

#[derive(Deserialize)]
pub(super) struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct LicenseResponse {
    license_document: String,
}

impl LicenseClient {
    /// Exchanges a refresh token for a new pair (rotation: the old refresh
    /// token is used up). The new license token is verified at `now`.
    ///
    /// Fails with [`ClientError::Revoked`] when the server answers
    /// `invalid_grant` (license removed, device revoked, refresh token
    /// expired or reused).
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<TokenSet, ClientError> {
        let metadata = self.metadata().await?;
        let request = self.inner.http.post(&metadata.token_endpoint).form(&[
            ("grant_type", REFRESH_TOKEN_GRANT),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.inner.client_id.as_str()),
        ]);
        let reply = self.send(request, "token (refresh)").await?;
        if reply.status == StatusCode::OK {
            return self.token_set(&reply, Some(refresh_token), now).await;
        }
        match oauth_error(&reply) {
            Some(e) if e.error == "invalid_grant" => Err(ClientError::Revoked {
                reason: e.describe(),
            }),
            Some(e) if reply.status.is_client_error() => Err(ClientError::protocol(format!(
                "the token endpoint refused the refresh ({})",
                e.describe()
            ))),
            _ => Err(unexpected_status(&reply)),
        }
    }

    /// A token response: Bearer, with a license token that verifies.
    pub(super) async fn token_set(
        &self,
        reply: &Reply,
        previous_refresh: Option<&Secret>,
        now: OffsetDateTime,
    ) -> Result<TokenSet, ClientError> {
        let r: TokenResponse = parse(&reply.body, "token response")?;
        if !r.token_type.eq_ignore_ascii_case("bearer") {
            return Err(ClientError::protocol(format!(
                "the token type is {:?}, not Bearer",
                clean(&r.token_type)
            )));
        }
        // RFC 6749 section 6: a refresh response may leave the refresh token
        // out, and then the old one stays valid.
        let refresh_token = match (r.refresh_token, previous_refresh) {
            (Some(t), _) if !t.is_empty() => Secret::new(t),
            (_, Some(previous)) => previous.clone(),
            _ => {
                return Err(ClientError::protocol(
                    "the token response has no refresh token",
                ))
            }
        };
        let (claims, now): (LicenseClaims, _) = self
            .verify_fresh(
                &r.access_token,
                Expectation::license_token,
                "license token",
                reply,
                now,
            )
            .await?;
        Ok(TokenSet {
            access_token: Secret::new(r.access_token),
            refresh_token,
            expires_in: r
                .expires_in
                .unwrap_or_else(|| u64::try_from(claims.exp - now.unix_timestamp()).unwrap_or(0)),
            claims,
        })
    }

    /// Fetches the signed license account document with the license token
    /// and verifies it at `now` (issuer, audience, signature, expiry).
    ///
    /// Fails with [`ClientError::Revoked`] when the server refuses the
    /// license token (401 `invalid_token`: revoked, expired or unknown;
    /// refresh first when the token is near its expiry).
    pub async fn fetch_license(
        &self,
        access_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<LicenseDocument, ClientError> {
        let metadata = self.metadata().await?;
        let request = self
            .inner
            .http
            .get(&metadata.license_endpoint)
            .bearer_auth(access_token.expose());
        let reply = self.send(request, "license").await?;
        if reply.status == StatusCode::UNAUTHORIZED {
            let reason = oauth_error(&reply)
                .map(|e| e.describe())
                .or_else(|| {
                    reply
                        .headers
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(clean)
                })
                .unwrap_or_else(|| "the license token was not accepted".to_owned());
            return Err(ClientError::Revoked { reason });
        }
        if reply.status != StatusCode::OK {
            return Err(unexpected_status(&reply));
        }
        let r: LicenseResponse = parse(&reply.body, "license response")?;
        let (claims, _): (AccountClaims, _) = self
            .verify_fresh(
                &r.license_document,
                Expectation::license_document,
                "license document",
                &reply,
                now,
            )
            .await?;
        tracing::info!(server_id = %claims.sub, "license document fetched and verified");
        Ok(LicenseDocument {
            raw: r.license_document,
            claims,
        })
    }

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
    async fn verify_fresh<C>(
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

    /// Revokes the refresh token and with it the device's license at the
    /// server (RFC 7009: "Remove license"). An unknown token also succeeds.
    pub async fn revoke(&self, refresh_token: &Secret) -> Result<(), ClientError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.revocation_endpoint else {
            return Err(ClientError::protocol(
                "the server does not publish a revocation endpoint",
            ));
        };
        let request = self.inner.http.post(&endpoint).form(&[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.inner.client_id.as_str()),
        ]);
        let reply = self.send(request, "revoke").await?;
        if reply.status == StatusCode::OK {
            tracing::info!("refresh token revoked");
            return Ok(());
        }
        match oauth_error(&reply) {
            Some(e) if reply.status.is_client_error() => Err(ClientError::protocol(format!(
                "the server refused the revocation ({})",
                e.describe()
            ))),
            _ => Err(unexpected_status(&reply)),
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
