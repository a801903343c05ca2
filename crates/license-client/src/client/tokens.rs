//! Tokens and license documents: the refresh grant, the token response
//! (Bearer, or DPoP-bound to the client's key), the license fetch and
//! revocation. Verification and the JWK Set cache are in `verify`.

use license_core::protocol::REFRESH_TOKEN_GRANT;
use license_core::token::{AccountClaims, Expectation, LicenseClaims};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use time::OffsetDateTime;

use super::proved::proof_refused;
use super::{oauth_error, parse, unexpected_status, LicenseClient, Reply};
use crate::dpop::bound_thumbprint;
use crate::error::{clean, ClientError};
use crate::secret::Secret;

/// How the license token is presented to the server (RFC 9449 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// A bearer token: whoever holds it may use it.
    Bearer,
    /// Bound to the client's DPoP key (`cnf.jkt`): used only with a proof
    /// made by that key.
    DPoP,
}

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
    /// `DPoP` when the server bound the tokens to the client's key.
    pub token_type: TokenType,
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
    /// token is used up), with a DPoP proof when the client has a key. The
    /// new license token is verified at `now`.
    ///
    /// Fails with [`ClientError::Revoked`] when the server answers
    /// `invalid_grant` (license removed, device revoked, refresh token
    /// expired or reused), and with [`ClientError::DpopRefused`] when the
    /// tokens are bound to another key (the refresh token stays unused).
    pub async fn refresh(
        &self,
        refresh_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<TokenSet, ClientError> {
        let metadata = self.metadata().await?;
        let form = [
            ("grant_type", REFRESH_TOKEN_GRANT),
            ("refresh_token", refresh_token.expose()),
            ("client_id", self.inner.client_id.as_str()),
        ];
        let reply = self
            .send_proved(
                Method::POST,
                &metadata.token_endpoint,
                None,
                "token (refresh)",
                |r| r.form(&form),
            )
            .await?;
        if reply.status == StatusCode::OK {
            return self.token_set(&reply, Some(refresh_token), now).await;
        }
        if let Some(refused) = proof_refused(&reply) {
            return Err(refused);
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

    /// A token response: Bearer, or DPoP with a license token bound to this
    /// client's key; the license token must verify.
    pub(super) async fn token_set(
        &self,
        reply: &Reply,
        previous_refresh: Option<&Secret>,
        now: OffsetDateTime,
    ) -> Result<TokenSet, ClientError> {
        let r: TokenResponse = parse(&reply.body, "token response")?;
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
        let jkt = claims.cnf.as_ref().map(|c| c.jkt.as_str());
        let token_type = self.token_type(&r.token_type, jkt)?;
        Ok(TokenSet {
            access_token: Secret::new(r.access_token),
            refresh_token,
            expires_in: r
                .expires_in
                .unwrap_or_else(|| u64::try_from(claims.exp - now.unix_timestamp()).unwrap_or(0)),
            token_type,
            claims,
        })
    }

    /// The response's token type, which must agree with the verified
    /// license token's binding `jkt`: `DPoP` only for a token bound to this
    /// client's key, `Bearer` only for an unbound one.
    fn token_type(&self, token_type: &str, jkt: Option<&str>) -> Result<TokenType, ClientError> {
        let ours = self.dpop_thumbprint();
        if token_type.eq_ignore_ascii_case("bearer") {
            if jkt.is_some() {
                return Err(ClientError::protocol(
                    "the token type is Bearer, but the license token is bound to a key",
                ));
            }
            return Ok(TokenType::Bearer);
        }
        if !token_type.eq_ignore_ascii_case("dpop") {
            return Err(ClientError::protocol(format!(
                "the token type is {:?}, not Bearer or DPoP",
                clean(token_type)
            )));
        }
        match (jkt, ours) {
            (Some(jkt), Some(ours)) if jkt == ours => Ok(TokenType::DPoP),
            (_, None) => Err(ClientError::protocol(
                "the token type is DPoP, but this client sent no DPoP proof",
            )),
            _ => Err(ClientError::protocol(
                "the license token is not bound to this console's DPoP key",
            )),
        }
    }

    /// Fetches the signed license account document with the license token
    /// and verifies it at `now` (issuer, audience, signature, expiry). A
    /// token bound to a key (`cnf.jkt`) goes with the `DPoP` scheme and a
    /// proof when the client has a key; any other as `Bearer`.
    ///
    /// Fails with [`ClientError::Revoked`] when the server refuses the
    /// license token (401 `invalid_token`: revoked, expired or unknown;
    /// refresh first when the token is near its expiry), and with
    /// [`ClientError::DpopRefused`] when it refuses the proof.
    pub async fn fetch_license(
        &self,
        access_token: &Secret,
        now: OffsetDateTime,
    ) -> Result<LicenseDocument, ClientError> {
        let metadata = self.metadata().await?;
        let url = &metadata.license_endpoint;
        let token = access_token.expose();
        let reply = if self.inner.dpop.is_some() && bound_thumbprint(token).is_some() {
            let scheme = format!("DPoP {token}");
            self.send_proved(Method::GET, url, Some(token), "license", |r| {
                r.header(AUTHORIZATION, scheme.as_str())
            })
            .await?
        } else {
            let request = self.inner.http.get(url).bearer_auth(token);
            self.send(request, "license").await?
        };
        if let Some(refused) = proof_refused(&reply) {
            return Err(refused);
        }
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

    /// Revokes the refresh token and with it the device's license at the
    /// server (RFC 7009: "Remove license"), with a DPoP proof when the
    /// client has a key (a bound chain needs one). An unknown token also
    /// succeeds.
    pub async fn revoke(&self, refresh_token: &Secret) -> Result<(), ClientError> {
        let metadata = self.metadata().await?;
        let Some(endpoint) = metadata.revocation_endpoint else {
            return Err(ClientError::protocol(
                "the server does not publish a revocation endpoint",
            ));
        };
        let form = [
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.inner.client_id.as_str()),
        ];
        let reply = self
            .send_proved(Method::POST, &endpoint, None, "revoke", |r| r.form(&form))
            .await?;
        if reply.status == StatusCode::OK {
            tracing::info!("refresh token revoked");
            return Ok(());
        }
        if let Some(refused) = proof_refused(&reply) {
            return Err(refused);
        }
        match oauth_error(&reply) {
            Some(e) if reply.status.is_client_error() => Err(ClientError::protocol(format!(
                "the server refused the revocation ({})",
                e.describe()
            ))),
            _ => Err(unexpected_status(&reply)),
        }
    }
}
