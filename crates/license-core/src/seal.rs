//! A seal over what a console must remember beyond signed facts (failures,
//! the highest time seen, notices delivered, settings), so that an edited,
//! replaced or older copy of its state file is recognized.
//!
//! The state file lives where the customer can write; the seal's key and the
//! file's latest generation live in the OS keychain. [`seal`] tags a body
//! with its generation; [`check`] says whether a file is the one last
//! written: its tag must verify with the key (nobody without the key can
//! make one), and its generation must be the keychain's (an older copy,
//! from a backup or a VM snapshot, carries a valid tag of an earlier
//! generation).
//!
//! ```
//! use license_core::seal::{check, seal, Seal};
//! let key = [7u8; 32];
//! let tag = seal(&key, 3, b"{\"state\":1}");
//! assert_eq!(check(&key, 3, 3, b"{\"state\":1}", &tag), Seal::Intact);
//! assert_eq!(check(&key, 3, 3, b"{\"state\":2}", &tag), Seal::Broken);
//! assert_eq!(check(&key, 4, 3, b"{\"state\":1}", &tag), Seal::Stale { generation: 3, latest: 4 });
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: a tag of this kind is never a tag of another.
const DOMAIN: &[u8] = b"license-console/state-seal/v1\0";

/// What [`check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// The tag verifies and the generation is the latest.
    Intact,
    /// The tag does not verify: the file was edited, truncated, replaced or
    /// sealed with another key.
    Broken,
    /// The tag verifies, but for an earlier generation than the keychain's:
    /// an older copy of the file was put back.
    Stale {
        /// The file's generation.
        generation: u64,
        /// The latest generation written, as the keychain has it.
        latest: u64,
    },
}

/// The tag of `body` at `generation`, base64url.
pub fn seal(key: &[u8; 32], generation: u64, body: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, generation, body).finalize().into_bytes())
}

/// Whether `body` with `tag`, claiming `generation`, is the file last
/// written, given the `latest` generation the keychain remembers. The tag is
/// compared in constant time.
pub fn check(key: &[u8; 32], latest: u64, generation: u64, body: &[u8], tag: &str) -> Seal {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return Seal::Broken;
    };
    if mac(key, generation, body).verify_slice(&tag).is_err() {
        return Seal::Broken;
    }
    if generation < latest {
        return Seal::Stale { generation, latest };
    }
    Seal::Intact
}

fn mac(key: &[u8; 32], generation: u64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(DOMAIN);
    mac.update(&generation.to_be_bytes());
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [42; 32];

    #[test]
    fn every_change_breaks_the_seal() {
        let body = br#"{"highest_seen":"2030-01-01T00:00:00Z"}"#;
        let tag = seal(&KEY, 5, body);
        assert_eq!(check(&KEY, 5, 5, body, &tag), Seal::Intact);
        // A later generation than the keychain's is the file just written
        // when the keychain write was lost: still the newest, still intact.
        assert_eq!(check(&KEY, 4, 5, body, &tag), Seal::Intact);
        let mut edited = body.to_vec();
        for i in 0..edited.len() {
            edited[i] ^= 1;
            assert_eq!(check(&KEY, 5, 5, &edited, &tag), Seal::Broken, "byte {i}");
            edited[i] ^= 1;
        }
        assert_eq!(
            check(&KEY, 5, 5, &body[..body.len() - 1], &tag),
            Seal::Broken
        );
        assert_eq!(check(&KEY, 5, 6, body, &tag), Seal::Broken, "generation");
        assert_eq!(check(&[0; 32], 5, 5, body, &tag), Seal::Broken, "other key");
        assert_eq!(check(&KEY, 5, 5, body, "not base64!"), Seal::Broken);
        assert_eq!(check(&KEY, 5, 5, body, ""), Seal::Broken);
    }

    #[test]
    fn an_older_copy_is_stale() {
        let body = b"{}";
        let old = seal(&KEY, 2, body);
        assert_eq!(
            check(&KEY, 7, 2, body, &old),
            Seal::Stale {
                generation: 2,
                latest: 7
            }
        );
    }
}
