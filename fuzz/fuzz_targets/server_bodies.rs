//! The license server's parsers of request bodies, through the real router
//! and a real (temporary) database: OAuth forms, admin forms (signed in as
//! the vendor operator, with the session's CSRF token), vendor API JSON
//! (with a write token), DPoP and Authorization headers. The first byte
//! chooses the request, the rest is its body (or header). No panic, and no
//! input gets a 5xx: malformed input is the client's error, never the
//! server's.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use license_fuzz::server::{Server, Target, TARGETS};

static SERVER: LazyLock<Server> = LazyLock::new(Server::start);

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let target: &Target = &TARGETS[usize::from(which) % TARGETS.len()];
    if let Some(status) = SERVER.send(target, body) {
        assert!(
            status < 500,
            "{} {} answered {status} to {:?}",
            target.method,
            target.path,
            String::from_utf8_lossy(body)
        );
    }
});
