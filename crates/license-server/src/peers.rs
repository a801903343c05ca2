//! Replicas: several server processes on one PostgreSQL database. What one
//! of them keeps in memory must never make another wrong, so each change
//! that empties a cache here (a revocation, an edit of an organization's
//! account, a key rotation or withdrawal) is announced to the others with
//! PostgreSQL's `NOTIFY`, and each replica empties the same cache when it
//! hears it (`LISTEN`). A replica that loses its listening connection
//! empties every cache, as it may have missed announcements, and listens
//! again.
//!
//! On SQLite (one process per database) there is nobody to tell.

use std::time::Duration;

use crate::AppState;

/// The `NOTIFY` channel.
pub const CHANNEL: &str = "license_server_changes";

/// What changed, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A token chain, device or organization was revoked or suspended:
    /// verified license tokens are checked against the database again.
    Revoked,
    /// An organization's account (packages, devices, features) changed.
    Account,
    /// Signing keys were rotated or withdrawn: read them again.
    Keys,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Revoked => "revoked",
            Change::Account => "account",
            Change::Keys => "keys",
        }
    }

    fn parse(s: &str) -> Option<Change> {
        match s {
            "revoked" => Some(Change::Revoked),
            "account" => Some(Change::Account),
            "keys" => Some(Change::Keys),
            _ => None,
        }
    }
}

/// Announces changes to the other replicas, marked with this replica's id so
/// that it does not act on its own announcements.
#[derive(Clone)]
pub struct Peers {
    db: crate::Store,
    replica: u64,
}

impl Peers {
    /// `None` where there are no other replicas to tell (SQLite).
    pub fn of(db: &crate::Store) -> Option<Peers> {
        (db.backend() == crate::store::Backend::Postgres).then(|| Peers {
            db: db.clone(),
            replica: rand::random(),
        })
    }

    /// Sends the announcement in the background: the change it is about is
    /// committed already, and a failure to announce is logged (the other
    /// replicas still see key changes at their next reload, within 5 s).
    pub fn announce(&self, change: Change) {
        let db = self.db.clone();
        let payload = format!("{} {:016x}", change.as_str(), self.replica);
        tokio::spawn(async move {
            if let Err(e) = db.announce(CHANNEL, &payload).await {
                tracing::warn!(error = %e, "announcing a change to the other replicas failed");
            }
        });
    }

    /// The change another replica announced in `payload`; `None` for this
    /// replica's own and for anything unreadable.
    fn heard(&self, payload: &str) -> Option<Change> {
        let (change, replica) = payload.split_once(' ')?;
        if u64::from_str_radix(replica, 16).ok()? == self.replica {
            return None;
        }
        Change::parse(change)
    }
}

/// Tells every replica to read the keys again (from a replica's page or
/// from the command line, which has no replica id: every server acts on it).
pub async fn announce_keys(db: &crate::Store) {
    let payload = format!("{} {:016x}", Change::Keys.as_str(), 0);
    if let Err(e) = db.announce(CHANNEL, &payload).await {
        tracing::warn!(error = %e, "announcing a key change to the replicas failed");
    }
}

/// How long a replica waits before listening again after losing the
/// connection.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Applies what other replicas announce, for as long as the server runs.
/// Nothing to do on SQLite.
pub fn spawn_listener(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    let peers = state.cache.peers()?.clone();
    Some(tokio::spawn(async move {
        loop {
            match state.db.listen(CHANNEL).await {
                Ok(Some(mut listener)) => {
                    // Announcements made while nobody listened are lost.
                    forget_everything(&state).await;
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) => {
                                if let Some(change) = peers.heard(n.payload()) {
                                    apply(&state, change).await;
                                }
                            }
                            // The connection was lost: sqlx reconnects at
                            // the next call, and what was sent meanwhile is
                            // lost.
                            Ok(None) => forget_everything(&state).await,
                            Err(e) => {
                                tracing::warn!(error = %e, "listening to the other replicas failed");
                                break;
                            }
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening to the other replicas failed");
                }
            }
            forget_everything(&state).await;
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }))
}

async fn apply(state: &AppState, change: Change) {
    match change {
        Change::Revoked | Change::Account => state.cache.forget(change),
        Change::Keys => crate::keys::reload_keys(state, state.now()).await,
    }
}

async fn forget_everything(state: &AppState) {
    state.cache.forget(Change::Account);
    crate::keys::reload_keys(state, state.now()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_name_the_change_and_the_replica() {
        for change in [Change::Revoked, Change::Account, Change::Keys] {
            assert_eq!(Change::parse(change.as_str()), Some(change));
        }
        assert_eq!(Change::parse("drop table"), None);
    }
}
