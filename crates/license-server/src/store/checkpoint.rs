//! The WAL checkpointer, which also keeps the WAL file small.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::{AnyPool, Connection, SqliteConnection};

/// How often the WAL is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// A WAL file larger than this is checkpointed with `TRUNCATE`, on the
/// writer's connection, which waits for readers to move to the database file
/// and then empties the WAL.
pub(super) const TRUNCATE_ABOVE_BYTES: u64 = 32 << 20;

/// The writer checkpoints (passively, in its own commit) once the WAL holds
/// this many pages: 8 MiB of 4 KiB pages.
pub(super) const WRITER_CHECKPOINT_PAGES: u32 = 2048;

/// The most a WAL file keeps after SQLite resets it (`journal_size_limit`).
pub(super) const WAL_SIZE_LIMIT_BYTES: u64 = 32 << 20;

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`], on a
/// connection of its own, until the store closes: a passive checkpoint runs
/// alongside the writer, so that the checkpoints the writer makes itself
/// (every [`WRITER_CHECKPOINT_PAGES`]) find most pages copied already.
///
/// A checkpoint on another connection cannot keep the WAL short under
/// sustained writes: the writer appends while it copies, so it never
/// finishes, and SQLite only starts the WAL over when a writer finds every
/// frame copied. Measured here, 20 s of device authorizations left a 1 GB
/// WAL beside a 10 MB database. The writer's own checkpoints finish (nothing
/// is appended meanwhile), and the writer then starts the WAL over; should
/// readers still hold it so long that the file passes
/// [`TRUNCATE_ABOVE_BYTES`], a `TRUNCATE` checkpoint on the writer's
/// connection waits for them and empties the file.
pub(super) async fn checkpoint_wal(mut conn: SqliteConnection, write: AnyPool, wal: PathBuf) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if write.is_closed() {
            break;
        }
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let done = if size > TRUNCATE_ABOVE_BYTES {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&write)
                .await
                .map(drop)
        } else {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut conn)
                .await
                .map(drop)
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
    let _ = conn.close().await;
}

/// The WAL file of the database at `db`.
pub(super) fn wal_path(db: &std::path::Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}
