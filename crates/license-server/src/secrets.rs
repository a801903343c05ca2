//! Random secrets, their hashes, and user codes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

/// RFC 8628 §6.1: consonants only, no vowels (no words), no look-alikes.
pub const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a secret; the only form in which secrets are stored.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The refresh token that follows `previous` in its chain:
/// HMAC-SHA256(`key`, `previous`), with a key only the server holds. Deriving
/// it (instead of drawing it at random) lets a client that lost a refresh
/// response retry and receive the same pair, while the database holds only
/// hashes; the key makes sure that a token seen once (a backup, a log, a
/// proxy) gives nothing about the tokens after it.
pub fn successor_refresh_token(key: &[u8; 32], previous: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"license-server/refresh-successor/v2\0");
    mac.update(previous.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The successor as servers before keyed successors derived it (anyone
/// could): only ever looked for when a token exchanged by such a server is
/// retried, never used to make a new one.
pub fn legacy_successor_refresh_token(previous: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"license-server/refresh-successor/v1\0");
    h.update(previous.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// 32 random bytes, for a new key.
pub fn random_key() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A new user code: 8 letters, normalized (no dash).
pub fn new_user_code() -> String {
    (0..8)
        .map(|_| USER_CODE_ALPHABET[OsRng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

/// `BCDFGHJK` -> `BCDF-GHJK`.
pub fn display_user_code(code: &str) -> String {
    if code.len() == 8 {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

/// Case-, dash- and space-insensitive; `None` unless 8 letters of the alphabet.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// A stable, human-friendly device identifier: `SRV-` + 16 base32 characters.
pub fn new_server_id() -> String {
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id: String = (0..16)
        .map(|_| B32[OsRng.gen_range(0..B32.len())] as char)
        .collect();
    format!("SRV-{id}")
}

/// A readable password for generated admin accounts (about 120 bits).
pub fn new_password() -> String {
    let mut bytes = [0u8; 15];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Comparison whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_compare_ignoring_case_and_dashes() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(
            normalize_user_code("ABCD-EFGH"),
            None,
            "vowels are not in the alphabet"
        );
        let code = new_user_code();
        assert_eq!(normalize_user_code(&display_user_code(&code)), Some(code));
    }

    #[test]
    fn successor_is_stable_and_distinct() {
        let t = random_token();
        let key = random_key();
        assert_eq!(
            successor_refresh_token(&key, &t),
            successor_refresh_token(&key, &t)
        );
        assert_ne!(successor_refresh_token(&key, &t), t);
        assert_ne!(
            successor_refresh_token(&key, &t),
            URL_SAFE_NO_PAD.encode(hash(&t))
        );
        assert_ne!(
            successor_refresh_token(&key, &t),
            successor_refresh_token(&random_key(), &t),
            "another key, another successor"
        );
        assert_ne!(
            successor_refresh_token(&key, &t),
            legacy_successor_refresh_token(&t)
        );
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
    }
}
