//! The WAL checkpointer.

use std::time::Duration;

use sqlx::{Connection, SqliteConnection, SqlitePool};

/// How often the WAL is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`], on a
/// connection of its own, until the store closes. SQLite's automatic
/// checkpoint would run in the writer's commit that fills the WAL to 1,000
/// pages, and copying and syncing those takes milliseconds that every
/// request of the batch behind it waits for; a passive checkpoint here runs
/// alongside the writer.
pub(super) async fn checkpoint_wal(mut conn: SqliteConnection, write: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if write.is_closed() {
            break;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}
