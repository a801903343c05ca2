//! The seal over the console's state file: any bytes as the sealed file
//! (`{"generation": n, "seal": tag, "state": {...}}`, the console's
//! envelope), checked against a fixed key at several latest generations.
//! No panic; a seal is accepted (intact or stale) only if it is exactly the
//! tag this target's key makes of that body and generation; intact and
//! stale follow the generations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use license_core::seal::{check, seal, Seal};
use serde::Deserialize;
use serde_json::value::RawValue;

const KEY: [u8; 32] = [0x3c; 32];

/// The console's envelope (src-tauri's `store::SealedFile`): the body is
/// the raw text of `state`, sealed as written.
#[derive(Deserialize)]
struct SealedFile<'a> {
    generation: u64,
    seal: String,
    #[serde(borrow)]
    state: &'a RawValue,
}

fuzz_target!(|data: &[u8]| {
    let Ok(file) = serde_json::from_slice::<SealedFile>(data) else {
        return;
    };
    let body = file.state.get().as_bytes();
    for latest in [0, 1, 5, file.generation, u64::MAX] {
        match check(&KEY, latest, file.generation, body, &file.seal) {
            Seal::Broken => {}
            verdict => {
                assert_eq!(
                    file.seal,
                    seal(&KEY, file.generation, body),
                    "a seal the key did not make was accepted"
                );
                match verdict {
                    Seal::Intact => assert!(file.generation >= latest),
                    Seal::Stale {
                        generation,
                        latest: l,
                    } => {
                        assert!(generation == file.generation && l == latest && generation < l)
                    }
                    Seal::Broken => unreachable!(),
                }
            }
        }
    }
});
