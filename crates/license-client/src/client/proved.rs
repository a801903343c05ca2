//! Requests that carry a DPoP proof (RFC 9449) when the client has a key,
//! with the one retry a server's `use_dpop_nonce` asks for, and what a
//! refused proof means.

use reqwest::{Method, RequestBuilder};

use super::{oauth_error, LicenseClient, Reply};
use crate::dpop::{dpop_error, has_nonce, DPOP_HEADER, USE_DPOP_NONCE};
use crate::error::ClientError;

impl LicenseClient {
    /// Sends `method url`, as `build` completes it (form, authorization),
    /// with a DPoP proof when the client has a key: `htm` `method`, `htu`
    /// `url`, `ath` of `access_token` when given, `iat` from the client's
    /// clock, and the server's latest nonce. When the server answers
    /// `use_dpop_nonce` with a new nonce, sends it once more with a fresh
    /// proof carrying it. Without a key, sends the request as it is.
    pub(super) async fn send_proved(
        &self,
        method: Method,
        url: &str,
        access_token: Option<&str>,
        what: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Reply, ClientError> {
        let request = || build(self.inner.http.request(method.clone(), url));
        let Some(signer) = &self.inner.dpop else {
            return self.send(request(), what).await;
        };
        let proof = || {
            let iat = self.inner.clock.now().unix_timestamp();
            signer.proof(method.as_str(), url, access_token, iat)
        };
        let reply = self
            .send(request().header(DPOP_HEADER, proof()), what)
            .await?;
        let asks_for_nonce = dpop_error(reply.status, &reply.headers, &reply.body).as_deref()
            == Some(USE_DPOP_NONCE);
        // `send` has already taken the new nonce the answer carries.
        if asks_for_nonce && has_nonce(&reply.headers) {
            tracing::debug!(
                endpoint = what,
                "the server asked for a DPoP nonce: retrying"
            );
            return self
                .send(request().header(DPOP_HEADER, proof()), what)
                .await;
        }
        Ok(reply)
    }
}

/// [`ClientError::DpopRefused`] when the server refused the request's DPoP
/// proof (`invalid_dpop_proof`, or `use_dpop_nonce` still after the retry).
pub(super) fn proof_refused(reply: &Reply) -> Option<ClientError> {
    let error = dpop_error(reply.status, &reply.headers, &reply.body)?;
    let reason = oauth_error(reply)
        .filter(|e| e.error == error)
        .map(|e| e.describe())
        .unwrap_or(error);
    Some(ClientError::DpopRefused { reason })
}
