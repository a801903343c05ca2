//! Air-gapped activation by file: a site that can never reach the license
//! server is licensed by carrying three small printable files by hand.
//!
//! 1. The console writes an **activation request** ([`sign_request`]): the
//!    install's public key, a random request id, its version and the
//!    license server's URL, signed with the install's key (the DPoP key kept
//!    in the keychain). It is a compact JWS: one line of base64url text.
//! 2. An organization admin gives it to the license server, which answers
//!    with an **activation response** ([`ActivationResponse`], JSON): the
//!    server's key set with its rollovers, the signed license document, and
//!    an **offline license** ([`OfflineLicenseClaims`]) bound to the
//!    install's key (`cnf.jkt`) and to the request, valid for the
//!    organization's offline period.
//! 3. The console takes the response only through [`verify_response`]: the
//!    keys must be the anchor it trusts or be vouched for by it (rollovers),
//!    the offline license must be signed by one of them, for this server,
//!    this install and the request it is waiting for. Giving the license up
//!    writes a **deactivation** (a request of kind
//!    [`RequestKind::Deactivate`] naming the offline license), which the
//!    server takes as the install's own word.
//!
//! Pure, like the rest of the crate: every check that needs the time takes
//! `now`.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::anchor::{vouched_keys, AnchorError};
use crate::dpop::{sign_self, verify_self, DpopError};
use crate::jwk::JwkSet;
use crate::token::{
    encode, registered_claims, verify, AccountClaims, Confirmation, Expectation, VerifyError,
    DEFAULT_LEEWAY_SECS,
};

/// The JWS `typ` of an activation request.
pub const REQUEST_TYP: &str = "license-activation-request+jwt";
/// The JWS `typ` of a deactivation.
pub const DEACTIVATION_TYP: &str = "license-deactivation+jwt";
/// The JWS `typ` of an offline license.
pub const OFFLINE_LICENSE_TYP: &str = "license-offline+jwt";
/// The `format` of an activation response.
pub const RESPONSE_FORMAT: &str = "license-activation-response/1";
/// Files longer than this are refused before parsing.
pub const MAX_FILE_LEN: usize = 64 * 1024;
/// The offline period when an organization sets none, in days.
pub const DEFAULT_OFFLINE_DAYS: u32 = 30;
/// The longest offline period an organization may set, in days.
pub const MAX_OFFLINE_DAYS: u32 = 366;

/// What a console asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A license for this install (first activation or renewal).
    Activate,
    /// This install gives its offline license up.
    Deactivate,
}

impl RequestKind {
    fn typ(self) -> &'static str {
        match self {
            RequestKind::Activate => REQUEST_TYP,
            RequestKind::Deactivate => DEACTIVATION_TYP,
        }
    }
}

/// The claims of an activation request or a deactivation, signed by the
/// install's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestClaims {
    /// Activation or deactivation.
    pub kind: RequestKind,
    /// Random, unique per request; the response names it.
    pub request_id: String,
    /// The license server this console is set up for.
    pub server_url: String,
    /// The console's version.
    pub console_version: String,
    /// When the console made it, unix seconds (the console's clock: shown,
    /// never trusted).
    pub iat: i64,
    /// The Server ID the console holds a license for (renewal,
    /// deactivation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// Deactivation: the `jti` of the offline license given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_id: Option<String>,
}

/// A request whose signature verified: its claims and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The claims.
    pub claims: RequestClaims,
    /// The JWK thumbprint (RFC 7638) of the install's key that signed it.
    pub jkt: String,
}

/// The offline license: "this install may run, licensed to `sub`, until
/// `exp`", signed by the license server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineLicenseClaims {
    /// The license server's URL.
    pub iss: String,
    /// The console's client id.
    pub aud: String,
    /// The Server ID.
    pub sub: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Not before, unix seconds.
    pub nbf: i64,
    /// The offline expiry, unix seconds.
    pub exp: i64,
    /// Unique id; a deactivation names it.
    pub jti: String,
    /// The request this answers.
    pub request_id: String,
    /// The install's key (its thumbprint): no other install can use it.
    pub cnf: Confirmation,
}

registered_claims!(OfflineLicenseClaims);

/// The file the license server gives back for a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationResponse {
    /// Always [`RESPONSE_FORMAT`].
    pub format: String,
    /// The license server's URL.
    pub server_url: String,
    /// The server's keys with their rollovers.
    pub keys: JwkSet,
    /// The signed license document (as `/api/v1/license` serves it).
    pub license_document: String,
    /// The signed offline license.
    pub offline_license: String,
}

impl ActivationResponse {
    /// The response as the file's text (indented JSON, a final newline).
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a response serializes");
        text.push('\n');
        text
    }
}

/// Why a file was refused; each message says what is wrong in the admin's
/// words, and none changes anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    /// Empty, too long, cut short or not the expected kind of file.
    #[error("this is not {expected} (it may be truncated or damaged): {detail}")]
    Malformed {
        /// What was expected ("an activation request", ...).
        expected: &'static str,
        /// What did not parse.
        detail: String,
    },
    /// The signature does not verify: the file was edited.
    #[error("the {what}'s signature does not verify: the file was changed after it was made")]
    Edited {
        /// "activation request", "offline license", ...
        what: &'static str,
    },
    /// Made for, or by, another license server.
    #[error("this file is for the license server {found}, not {expected}")]
    OtherServer {
        /// The file's server.
        found: String,
        /// This side's server.
        expected: String,
    },
    /// The response's keys are not keys this console trusts.
    #[error("the response is not signed by a key this console trusts: {0}")]
    UntrustedKeys(#[from] AnchorError),
    /// The response was made for another install's request.
    #[error("this activation response was made for another installation; save a new activation request on this server and use the response to that one")]
    OtherInstall,
    /// Not the answer to the request this console is waiting for.
    #[error("this activation response answers another request ({found}); use the response to the latest activation request saved on this server")]
    OtherRequest {
        /// The request id it answers.
        found: String,
    },
    /// The console waits for no response.
    #[error(
        "this server is not waiting for an activation response; save an activation request first"
    )]
    NoRequest,
    /// The offline license has run out.
    #[error("the offline license in this response expired on {at}; ask for a new one")]
    Expired {
        /// Its expiry.
        at: OffsetDateTime,
    },
    /// A deactivation was expected and an activation request came, or the
    /// other way round.
    #[error("this is {found}, not {expected}")]
    WrongKind {
        /// What came.
        found: &'static str,
        /// What was expected.
        expected: &'static str,
    },
}

fn kind_words(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Activate => "an activation request",
        RequestKind::Deactivate => "a deactivation file",
    }
}

/// Signs a request (or deactivation) with the install's key.
pub fn sign_request(key: &SigningKey, claims: &RequestClaims) -> String {
    sign_self(key, claims.kind.typ(), claims)
}

/// Reads a request or deactivation of `kind` made for `server_url`:
/// whitespace around it is ignored (files are carried by hand), the rest
/// must be the JWS the console wrote, signed by the key it names.
pub fn read_request(
    text: &str,
    kind: RequestKind,
    server_url: &str,
) -> Result<SignedRequest, OfflineError> {
    let expected = kind_words(kind);
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_FILE_LEN {
        return Err(OfflineError::Malformed {
            expected,
            detail: format!("{} bytes", text.len()),
        });
    }
    let other = match kind {
        RequestKind::Activate => RequestKind::Deactivate,
        RequestKind::Deactivate => RequestKind::Activate,
    };
    let (claims, jkt) = match verify_self::<RequestClaims>(text, kind.typ()) {
        Ok(read) => read,
        Err(DpopError::WrongType) if verify_self::<RequestClaims>(text, other.typ()).is_ok() => {
            return Err(OfflineError::WrongKind {
                found: kind_words(other),
                expected,
            })
        }
        Err(DpopError::BadSignature) => {
            return Err(OfflineError::Edited {
                what: match kind {
                    RequestKind::Activate => "activation request",
                    RequestKind::Deactivate => "deactivation file",
                },
            })
        }
        Err(e) => {
            return Err(OfflineError::Malformed {
                expected,
                detail: e.to_string(),
            })
        }
    };
    if claims.kind != kind {
        return Err(OfflineError::WrongKind {
            found: kind_words(claims.kind),
            expected,
        });
    }
    let id_ok = |s: &str| !s.is_empty() && s.len() <= 128;
    if !id_ok(&claims.request_id)
        || claims.console_version.len() > 64
        || claims.server_id.as_deref().is_some_and(|s| !id_ok(s))
        || claims.license_id.as_deref().is_some_and(|s| !id_ok(s))
        || (kind == RequestKind::Deactivate && claims.license_id.is_none())
    {
        return Err(OfflineError::Malformed {
            expected,
            detail: "a field is missing or too long".into(),
        });
    }
    if claims.server_url != server_url {
        return Err(OfflineError::OtherServer {
            found: claims.server_url.chars().take(200).collect(),
            expected: server_url.to_owned(),
        });
    }
    Ok(SignedRequest { claims, jkt })
}

/// Signs an offline license with the server's key `kid`/`key`.
pub fn sign_offline_license(claims: &OfflineLicenseClaims, kid: &str, key: &SigningKey) -> String {
    encode(claims, OFFLINE_LICENSE_TYP, kid, key)
}

/// What a console checks a response against.
#[derive(Debug, Clone, Copy)]
pub struct ResponseCheck<'a> {
    /// The license server the console is set up for.
    pub server_url: &'a str,
    /// The console's client id.
    pub client_id: &'a str,
    /// The thumbprint of this install's key.
    pub jkt: &'a str,
    /// The request the console waits an answer to.
    pub pending_request: Option<&'a str>,
    /// The keys the console trusts (pinned, or the vendor's keys it ships
    /// with).
    pub anchor: &'a JwkSet,
}

/// A response that passed [`verify_response`].
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedActivation {
    /// The keys to pin from now on.
    pub anchor: JwkSet,
    /// The license document's claims.
    pub document: AccountClaims,
    /// The offline license's claims.
    pub offline: OfflineLicenseClaims,
    /// The response as given (its two signed parts are kept).
    pub response: ActivationResponse,
}

/// Checks an activation response at `now` (see the module docs); nothing is
/// taken unless everything holds.
pub fn verify_response(
    text: &str,
    check: &ResponseCheck<'_>,
    now: OffsetDateTime,
) -> Result<VerifiedActivation, OfflineError> {
    let expected = "an activation response";
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_FILE_LEN {
        return Err(OfflineError::Malformed {
            expected,
            detail: format!("{} bytes", text.len()),
        });
    }
    let response: ActivationResponse =
        serde_json::from_str(text).map_err(|e| OfflineError::Malformed {
            expected,
            detail: e.to_string(),
        })?;
    if response.format != RESPONSE_FORMAT {
        return Err(OfflineError::Malformed {
            expected,
            detail: "unknown format".into(),
        });
    }
    if response.server_url != check.server_url {
        return Err(OfflineError::OtherServer {
            found: response.server_url.chars().take(200).collect(),
            expected: check.server_url.to_owned(),
        });
    }
    // Only keys pinned or vouched for by rollovers verify anything: a key
    // listed beside a trusted one proves nothing (anyone can write a file).
    let anchor = vouched_keys(
        check.server_url,
        check.anchor,
        &response.keys,
        &response.keys.rollovers,
        now,
    )?;
    let offline: OfflineLicenseClaims = verify(
        &response.offline_license,
        &anchor,
        &offline_expectation(check.server_url, check.client_id),
        now,
    )
    .map_err(|e| signed_part_error(e, "offline license", check.server_url))?;
    if offline.cnf.jkt != check.jkt {
        return Err(OfflineError::OtherInstall);
    }
    match check.pending_request {
        None => return Err(OfflineError::NoRequest),
        Some(id) if id != offline.request_id => {
            return Err(OfflineError::OtherRequest {
                found: offline.request_id.chars().take(64).collect(),
            })
        }
        Some(_) => {}
    }
    let document: AccountClaims = verify(
        &response.license_document,
        &anchor,
        &Expectation::license_document(check.server_url, check.client_id),
        now,
    )
    .map_err(|e| signed_part_error(e, "license document", check.server_url))?;
    if document.sub != offline.sub {
        return Err(OfflineError::Edited {
            what: "license document",
        });
    }
    Ok(VerifiedActivation {
        anchor,
        document,
        offline,
        response,
    })
}

/// Checks a kept offline license's signature, issuer, audience, type and
/// binding against `anchor`, whatever the time: how long it counts is
/// `license_core::assess`'s decision (from its `exp`).
pub fn verify_offline_license_signature(
    raw: &str,
    anchor: &JwkSet,
    server_url: &str,
    client_id: &str,
    jkt: &str,
) -> Result<OfflineLicenseClaims, OfflineError> {
    let any_time = Expectation {
        leeway_secs: i64::MAX / 4,
        ..offline_expectation(server_url, client_id)
    };
    let claims: OfflineLicenseClaims =
        verify(raw, anchor, &any_time, OffsetDateTime::UNIX_EPOCH)
            .map_err(|e| signed_part_error(e, "offline license", server_url))?;
    if claims.cnf.jkt != jkt {
        return Err(OfflineError::OtherInstall);
    }
    Ok(claims)
}

fn offline_expectation(server_url: &str, client_id: &str) -> Expectation {
    Expectation {
        issuer: server_url.to_owned(),
        audience: client_id.to_owned(),
        typ: OFFLINE_LICENSE_TYP,
        leeway_secs: DEFAULT_LEEWAY_SECS,
    }
}

fn signed_part_error(err: VerifyError, what: &'static str, server_url: &str) -> OfflineError {
    match err {
        VerifyError::Expired { at } => OfflineError::Expired { at },
        VerifyError::WrongIssuer { found } => OfflineError::OtherServer {
            found: found.chars().take(200).collect(),
            expected: server_url.to_owned(),
        },
        VerifyError::BadSignature | VerifyError::UnknownKey { .. } => OfflineError::Edited { what },
        other => OfflineError::Malformed {
            expected: "an activation response",
            detail: format!("{what}: {other}"),
        },
    }
}

/// The offline expiry the server gives: the organization's offline period
/// from `now`, never past the end of the license's validity.
pub fn offline_expiry(now: i64, offline_days: u32, valid_until: i64) -> i64 {
    let days = i64::from(offline_days.clamp(1, MAX_OFFLINE_DAYS));
    now.saturating_add(days * 86_400).min(valid_until)
}
