//! The memory of issued refresh tokens: most grants need no database read.
//!
//! A token this process stored is answered once from memory: its row as
//! stored, unused. That answer may be out of date only in ways the token
//! writer checks again when the token is exchanged (used, or its chain or
//! device revoked: see `batch::STORE_BATCH`); a lost exchange looks the
//! token up again, from the database. Every change to what a stored token
//! says (revocations, organization edits) empties the memory: the store's
//! methods making such a change call [`Issued::forget_all`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::RefreshRow;

/// Emptied when it reaches this many tokens (about one per device in use).
const ISSUED_LIMIT: usize = 100_000;

#[derive(Clone, Debug, Default)]
pub(super) struct Issued(Arc<Mutex<HashMap<Vec<u8>, RefreshRow>>>);

impl Issued {
    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, RefreshRow>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a token just stored.
    pub(super) fn remember(&self, row: RefreshRow) {
        let mut issued = self.lock();
        if issued.len() >= ISSUED_LIMIT {
            issued.clear();
        }
        issued.insert(row.token_hash.clone(), row);
    }

    /// The token with this hash, once: it is forgotten as it is answered.
    pub(super) fn take(&self, hash: &[u8]) -> Option<RefreshRow> {
        self.lock().remove(hash)
    }

    /// After any change to what a stored token says.
    pub(super) fn forget_all(&self) {
        self.lock().clear();
    }
}
