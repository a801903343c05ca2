//! What can go wrong talking to the license server, in words the console can
//! show and with a stable code it can branch on.

use std::error::Error as _;

/// Why a call to the license server failed.
///
/// The console branches on [`ClientError::code`] (stable strings) and shows
/// the `Display` text, which is written for the person at the console. No
/// variant ever carries a token or a device code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached: connection refused, name not
    /// resolved, network unreachable, connection dropped.
    #[error(
        "Cannot reach the license server at {server}: {reason}. Check that this computer can \
         reach the server's URL and port."
    )]
    Offline {
        /// The configured server URL.
        server: String,
        /// What failed, in a few words ("connection refused").
        reason: String,
    },
    /// The server accepted the connection but did not answer in time.
    #[error(
        "The license server at {server} did not answer in time. Check the network connection \
         and try again; if it keeps happening, the server may be overloaded."
    )]
    Timeout {
        /// The configured server URL.
        server: String,
    },
    /// No trusted TLS connection could be set up (unknown certificate
    /// authority, wrong host name, not an HTTPS server).
    #[error(
        "Cannot open a secure connection to the license server at {server}: {reason}. If a \
         proxy inspects HTTPS traffic on this network, add its CA certificate in the settings."
    )]
    Tls {
        /// The configured server URL.
        server: String,
        /// What the TLS layer reported.
        reason: String,
    },
    /// The server answered with an unexpected HTTP status (5xx, 404, 429...).
    #[error(
        "The license server answered with an error (HTTP {status}). Check the server URL; if it \
         is right, try again later or contact the server's administrator."
    )]
    ServerError {
        /// The HTTP status code.
        status: u16,
    },
    /// The answer is not what the protocol allows: bad JSON, a body too
    /// large, a bad signature, a wrong issuer or audience, an OAuth error
    /// this client does not expect.
    #[error(
        "The license server's answer could not be accepted: {reason}. Check that the URL points \
         at the license server; if it does, contact the server's administrator."
    )]
    Protocol {
        /// What was wrong, in a few words.
        reason: String,
    },
    /// What the server signed is not valid yet by this computer's clock:
    /// the clock is behind the server's by more than the leeway.
    #[error(
        "This computer's clock is about {behind} behind the license server's: the {what} it sent \
         is valid only from {valid_from}. Set the date and time right (or turn on network time), \
         then try again."
    )]
    ClockBehind {
        /// "license token" or "license document".
        what: String,
        /// When it becomes valid (RFC 3339, UTC).
        valid_from: String,
        /// How far behind, in words ("3 hours", "2 days").
        behind: String,
    },
    /// What the server sent is already expired by this computer's clock,
    /// which is ahead of the server's (its `Date`) by more than the
    /// tolerance: the clock was set forward.
    #[error(
        "This computer's clock is about {ahead} ahead of the license server's (the server's time \
         is {server_time}), so what the server sends looks expired. Set the date and time right \
         (or turn on network time); the console recovers by itself once the clock is right."
    )]
    ClockAhead {
        /// How far ahead, in words ("7 days").
        ahead: String,
        /// The server's time (RFC 3339, UTC).
        server_time: String,
    },
    /// The authorization was denied at the license server (`access_denied`).
    #[error(
        "The authorization was denied at the license server. Start again and approve the device \
         on the Authorize Device page."
    )]
    Denied,
    /// The device code (and its user code) expired or is no longer valid
    /// (`expired_token`, or already used).
    #[error(
        "The user code expired before it was approved, or was already used. Start the \
         authorization again to get a new user code."
    )]
    CodeExpired,
    /// The server no longer accepts this device's tokens (`invalid_grant`
    /// on refresh, `invalid_token` on the license endpoint): the license was
    /// removed, the device revoked, or the refresh token expired.
    #[error(
        "The license server no longer accepts this device's authorization ({reason}). Authorize \
         the device again."
    )]
    Revoked {
        /// What the server said, shortened and cleaned.
        reason: String,
    },
    /// The server refused this client's DPoP proof (`invalid_dpop_proof`,
    /// or `use_dpop_nonce` again after the retry with its nonce): the
    /// tokens are bound to another key (this install's key was replaced),
    /// or the proof was not acceptable. A refused refresh leaves the refresh
    /// token unused.
    #[error(
        "The license server refused this console's proof of its key ({reason}). If the console's \
         key was replaced, authorize the device again; otherwise check this computer's date and \
         time and try again."
    )]
    DpopRefused {
        /// What the server said, shortened and cleaned.
        reason: String,
    },
    /// Bad input from the caller: a server URL that is not an http(s) URL,
    /// an unreadable CA certificate.
    #[error("{reason}")]
    InvalidInput {
        /// The full sentence to show.
        reason: String,
    },
    /// The caller cancelled the wait (the user closed the dialog).
    #[error("The authorization was cancelled.")]
    Cancelled,
}

impl ClientError {
    /// A stable code for the UI to branch on: `offline`, `timeout`, `tls`,
    /// `server_error`, `protocol`, `clock`, `denied`, `code_expired`, `revoked`,
    /// `dpop_refused`, `invalid_input` or `cancelled`.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Offline { .. } => "offline",
            ClientError::Timeout { .. } => "timeout",
            ClientError::Tls { .. } => "tls",
            ClientError::ServerError { .. } => "server_error",
            ClientError::Protocol { .. } => "protocol",
            ClientError::ClockBehind { .. } | ClientError::ClockAhead { .. } => "clock",
            ClientError::Denied => "denied",
            ClientError::CodeExpired => "code_expired",
            ClientError::Revoked { .. } => "revoked",
            ClientError::DpopRefused { .. } => "dpop_refused",
            ClientError::InvalidInput { .. } => "invalid_input",
            ClientError::Cancelled => "cancelled",
        }
    }

    /// Whether the failure is the network's (offline, timeout, TLS): the
    /// console keeps its cached license and retries later.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            ClientError::Offline { .. } | ClientError::Timeout { .. } | ClientError::Tls { .. }
        )
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            reason: reason.into(),
        }
    }

    /// Classifies a transport failure. Never includes the request body or
    /// headers, which may hold secrets.
    pub(crate) fn from_transport(e: &reqwest::Error, server: &str) -> ClientError {
        let server = server.to_owned();
        if e.is_timeout() {
            return ClientError::Timeout { server };
        }
        if e.is_builder() {
            return ClientError::InvalidInput {
                reason: format!("The request to the license server could not be built: {e}."),
            };
        }
        let mut io_kind = None;
        let mut invalid_data = false;
        let mut dns = false;
        let mut innermost = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            // `io::Error::source` skips the error it wraps; descend into it.
            let mut next = s.source();
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                io_kind.get_or_insert(io.kind());
                invalid_data |= io.kind() == std::io::ErrorKind::InvalidData;
                if let Some(inner) = io.get_ref() {
                    next = Some(inner as &(dyn std::error::Error + 'static));
                }
            }
            // hyper-util's resolver error has no public type; its message is
            // the stable marker.
            if s.to_string().starts_with("dns error") {
                dns = true;
            }
            innermost = s.to_string();
            source = next;
        }
        // Inside a connect, rustls failures surface as `InvalidData` I/O
        // errors (bad certificate, not TLS at all, handshake failure).
        if e.is_connect() && invalid_data {
            return ClientError::Tls {
                server,
                reason: clean(&innermost),
            };
        }
        use std::io::ErrorKind as K;
        let reason = if dns {
            "the server name could not be resolved".to_owned()
        } else {
            match io_kind {
                Some(K::ConnectionRefused) => "connection refused".to_owned(),
                Some(K::ConnectionReset) => "the connection was reset".to_owned(),
                Some(K::ConnectionAborted) => "the connection was aborted".to_owned(),
                Some(K::TimedOut) => return ClientError::Timeout { server },
                _ if !e.is_connect() => {
                    format!("the connection was interrupted ({})", clean(&innermost))
                }
                _ => clean(&innermost),
            }
        };
        ClientError::Offline { server, reason }
    }
}

/// Server-supplied text made safe to show: control characters dropped, at
/// most 200 characters.
pub(crate) fn clean(text: &str) -> String {
    const MAX: usize = 200;
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(MAX).collect();
    if text.chars().filter(|c| !c.is_control()).count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let cases = [
            (
                ClientError::Offline {
                    server: "s".into(),
                    reason: "r".into(),
                },
                "offline",
            ),
            (ClientError::Timeout { server: "s".into() }, "timeout"),
            (
                ClientError::Tls {
                    server: "s".into(),
                    reason: "r".into(),
                },
                "tls",
            ),
            (ClientError::ServerError { status: 503 }, "server_error"),
            (ClientError::protocol("x"), "protocol"),
            (ClientError::Denied, "denied"),
            (ClientError::CodeExpired, "code_expired"),
            (ClientError::Revoked { reason: "r".into() }, "revoked"),
            (
                ClientError::DpopRefused { reason: "r".into() },
                "dpop_refused",
            ),
            (
                ClientError::InvalidInput { reason: "r".into() },
                "invalid_input",
            ),
            (ClientError::Cancelled, "cancelled"),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn offline_message_names_the_server_and_what_to_check() {
        let e = ClientError::Offline {
            server: "http://127.0.0.1:9".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "Cannot reach the license server at http://127.0.0.1:9: connection refused. Check \
             that this computer can reach the server's URL and port."
        );
    }

    #[test]
    fn server_text_is_shortened_and_stripped_of_control_characters() {
        assert_eq!(clean("bad\r\ngrant"), "badgrant");
        let long = "x".repeat(500);
        assert_eq!(clean(&long).chars().count(), 201);
    }
}
