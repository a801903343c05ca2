//! Storage: the only module that speaks SQL. Every statement is
//! parameterized. SQLite in WAL mode with foreign keys on; writes go through
//! a single connection so they never contend for the write lock, reads use a
//! small pool of their own.
//!
//! One module per table family adds its methods to [`Store`]. The token
//! path has three helpers of its own: the batch writer and reader
//! ([`batch`]), the memory of issued refresh tokens ([`issued`]) and the WAL
//! checkpointer ([`checkpoint`]). Statuses are Rust enums stored as the
//! same TEXT values as ever.
//!
//! A write of several steps (a package with its totals, a renewal, a device
//! registered and authorized) is one method and one transaction, with its
//! audit entry.

/// The arguments of a statement, bound in order.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = sqlx::sqlite::SqliteArguments::default();
        $(sqlx::Arguments::add(&mut args, $arg).map_err(sqlx::Error::Encode)?;)*
        args
    }};
}

mod api_tokens;
mod audit;
mod batch;
mod checkpoint;
mod device_codes;
mod devices;
mod invitations;
mod issued;
mod keys;
mod offline;
mod orgs;
mod packages;
mod sql;
mod tokens;
mod users;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub use api_tokens::{ApiScope, ApiToken};
pub use audit::{AuditEntry, AuditRow, NewAudit};
pub use device_codes::{
    Consumed, DeviceCode, DeviceCodeStatus, DeviceDecision, NewDeviceCode, RegisterDevice,
};
pub use devices::Device;
pub use invitations::{Accepted, Invitation, NewInvitation};
pub use keys::KeyRow;
pub use offline::{Activated, Deactivation, NewOfflineActivation, OfflineActivation};
pub use orgs::{OnCopy, Org, OrgInput};
pub use packages::{
    build_packages, AssignedTo, AssignmentRow, Package, PackageLicense, PackageStatus,
    PackageUpdate,
};
pub use tokens::{AccessRow, Exchanged, NewTokens, RefreshRow, TokenSubject};
pub use users::{SessionRow, User, UserChange, UserSummary};

pub type DbResult<T> = Result<T, sqlx::Error>;

#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    /// Queue of the token writer, which stores token pairs in batches.
    tokens: mpsc::UnboundedSender<batch::TokenJob>,
    /// Queue of the device-code writer, which stores them in batches.
    codes: mpsc::UnboundedSender<device_codes::CodeJob>,
    /// Queue of the refresh token reader, which looks them up in batches.
    lookups: mpsc::UnboundedSender<batch::Lookup>,
    /// Refresh tokens this process stored that no lookup has asked for yet.
    issued: issued::Issued,
}

impl Store {
    /// Opens (creating if needed) the database and runs the embedded migrations.
    pub async fn open(path: &Path) -> DbResult<Store> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma(
                "journal_size_limit",
                checkpoint::WAL_SIZE_LIMIT_BYTES.to_string(),
            );
        // SQLite connections do not go stale, and the default check before
        // every acquire costs a round trip to the connection's thread.
        // How the WAL is checkpointed and kept short: see `checkpoint`.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_with(options.clone().pragma(
                "wal_autocheckpoint",
                checkpoint::WRITER_CHECKPOINT_PAGES.to_string(),
            ))
            .await?;
        sqlx::migrate!("./migrations")
            .run(&write)
            .await
            .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        tokio::spawn(checkpoint::checkpoint_wal(
            options.connect().await?,
            write.clone(),
            checkpoint::wal_path(path),
        ));
        Ok(Store {
            tokens: batch::spawn_writer(write.clone()),
            codes: device_codes::spawn_code_writer(write.clone()),
            lookups: batch::spawn_reader(read.clone()),
            read,
            write,
            issued: issued::Issued::default(),
        })
    }

    /// Writes a consistent, compacted copy of the database to `path` (which
    /// must not exist): one read transaction, so writers go on meanwhile.
    pub async fn backup_to(&self, path: &Path) -> DbResult<()> {
        let target = path.to_str().ok_or_else(|| {
            sqlx::Error::Configuration("the backup path is not valid UTF-8".into())
        })?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.read)
            .await?;
        Ok(())
    }

    /// Each pool's name, size and idle connections (metrics).
    pub fn pool_stats(&self) -> [(&'static str, u32, usize); 2] {
        [
            ("read", self.read.size(), self.read.num_idle()),
            ("write", self.write.size(), self.write.num_idle()),
        ]
    }

    /// Both connection pools answer a query (readiness).
    pub async fn ping(&self) -> DbResult<()> {
        for pool in [&self.read, &self.write] {
            sqlx::query("SELECT 1").execute(pool).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// A stored Unix time as a date-time; `None` when out of range.
pub fn to_time(unix: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix).ok()
}

/// Features are stored as a JSON array of strings.
fn feature_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn to_json<T: Serialize>(value: &T) -> DbResult<String> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}
