//! Storage: the only module that speaks SQL. Every statement is
//! parameterized. Two backends behind sqlx's Any driver, chosen by
//! [`Location`]: SQLite (the embedded default) in WAL mode with foreign keys
//! on, where writes go through a single connection so they never contend
//! for the write lock and reads use a small pool of their own; and
//! PostgreSQL, where several server processes (replicas) share one database.
//! Statements are written once for both (see [`sql`]); the few that differ
//! are chosen by [`Backend`].
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

/// The arguments of a statement, bound in order to `$1`, `$2`, ….
macro_rules! args {
    ($($arg:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = sqlx::any::AnyArguments::default();
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
mod replicas;
pub(crate) mod sql;
mod tokens;
mod users;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor};
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

/// Where the data lives: an SQLite file (the embedded default) or a
/// PostgreSQL database, named by its URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL names a PostgreSQL database;
    /// anything else is the path of an SQLite file.
    pub fn parse(db: &str) -> Location {
        let lower = db.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Location::Postgres(db.to_owned())
        } else {
            Location::Sqlite(PathBuf::from(db))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The path, or the URL with its password (and any user name) hidden: this
/// is what messages and logs show.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// `scheme://user:password@host/...` with the credentials left out, and the
/// query too when it names a password.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(unreadable URL)".to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut shown = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => url.to_owned(),
    };
    if let Some(q) = shown.find('?') {
        if shown[q..].to_ascii_lowercase().contains("password") {
            shown.truncate(q);
            shown.push_str("?[redacted]");
        }
    }
    shown
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;

    fn from_str(db: &str) -> Result<Location, Self::Err> {
        Ok(Location::parse(db))
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

/// The database engine behind a [`Store`]; the few statements that differ
/// between the two are chosen by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`, for metrics and messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    location: Location,
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    /// Queue of the token writer, which stores token pairs in batches.
    tokens: mpsc::UnboundedSender<batch::TokenJob>,
    /// Queue of the device-code writer, which stores them in batches.
    codes: mpsc::UnboundedSender<device_codes::CodeJob>,
    /// Queue of the refresh token reader, which looks them up in batches.
    lookups: mpsc::UnboundedSender<batch::Lookup>,
    /// Refresh tokens this process stored that no lookup has asked for yet.
    issued: issued::Issued,
}

/// How long a statement waits for a connection of the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The same on PostgreSQL, where a connection may be down rather than busy.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and runs the
    /// embedded migrations.
    pub async fn open(path: &Path) -> DbResult<Store> {
        Store::connect(&Location::Sqlite(path.to_owned())).await
    }

    /// Opens the database at `location` and brings its schema up to date.
    pub async fn connect(location: &Location) -> DbResult<Store> {
        sqlx::any::install_default_drivers();
        let (read, write) = match location {
            Location::Sqlite(path) => open_sqlite(path).await?,
            Location::Postgres(url) => open_postgres(url).await?,
        };
        let backend = location.backend();
        Ok(Store {
            location: location.clone(),
            backend,
            tokens: batch::spawn_writer(write.clone(), backend),
            codes: device_codes::spawn_code_writer(write.clone(), backend),
            lookups: batch::spawn_reader(read.clone(), backend),
            read,
            write,
            issued: issued::Issued::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Tells every server on this database that something changed
    /// (PostgreSQL `NOTIFY` on `channel`; nothing to do on SQLite, which
    /// one process serves).
    pub async fn announce(&self, channel: &str, payload: &str) -> DbResult<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// A connection listening on `channel` (PostgreSQL only; `None` on
    /// SQLite).
    pub async fn listen(&self, channel: &str) -> DbResult<Option<sqlx::postgres::PgListener>> {
        let Location::Postgres(url) = &self.location else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Some(listener))
    }

    /// Writes a consistent, compacted copy of the SQLite database to `path`
    /// (which must not exist): one read transaction, so writers go on
    /// meanwhile. A PostgreSQL database is backed up with its own tools
    /// (`pg_dump`), which the README shows.
    pub async fn backup_to(&self, path: &Path) -> DbResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(sqlx::Error::Configuration(
                "`backup` copies SQLite databases; back up PostgreSQL with pg_dump".into(),
            ));
        }
        let target = path.to_str().ok_or_else(|| {
            sqlx::Error::Configuration("the backup path is not valid UTF-8".into())
        })?;
        sqlx::query("VACUUM INTO $1")
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

/// SQLite: one writer connection (so writes never contend for the write
/// lock) and a small pool of readers, with WAL and its checkpointer.
async fn open_sqlite(path: &Path) -> DbResult<(AnyPool, AnyPool)> {
    // The Any driver takes a URL; the path is percent-encoded in it, and
    // every connection sets the pragmas the native options would.
    let encoded = path
        .to_str()
        .ok_or_else(|| sqlx::Error::Configuration("the database path is not valid UTF-8".into()))?;
    let url = format!("sqlite://{}?mode=rwc", percent_encode_path(encoded));
    let pragmas = format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000; PRAGMA journal_size_limit = {};",
        checkpoint::WAL_SIZE_LIMIT_BYTES
    );
    let writer_pragmas = format!(
        "{pragmas} PRAGMA wal_autocheckpoint = {};",
        checkpoint::WRITER_CHECKPOINT_PAGES
    );
    // SQLite connections do not go stale, and the default check before
    // every acquire costs a round trip to the connection's thread.
    // How the WAL is checkpointed and kept short: see `checkpoint`.
    let write = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            let pragmas = writer_pragmas.clone();
            Box::pin(async move { conn.execute(pragmas.as_str()).await.map(drop) })
        })
        .connect(&url)
        .await?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&write)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    let read = AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            let pragmas = pragmas.clone();
            Box::pin(async move { conn.execute(pragmas.as_str()).await.map(drop) })
        })
        .connect(&url)
        .await?;
    let checkpointer = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    tokio::spawn(checkpoint::checkpoint_wal(
        checkpointer,
        write.clone(),
        checkpoint::wal_path(path),
    ));
    Ok((read, write))
}

/// PostgreSQL: every replica has a pool for the batch writers and one for
/// reads; the migrations take PostgreSQL's advisory lock, so replicas that
/// start together apply them once.
async fn open_postgres(url: &str) -> DbResult<(AnyPool, AnyPool)> {
    // A database that is down refuses connections at once, and the pool
    // retries until its timeout: a short one answers such requests 503
    // soon (`Error::status`).
    let pool = |size| {
        AnyPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
    };
    let write = pool(4).connect(url).await?;
    sqlx::migrate!("./migrations/postgres")
        .run(&write)
        .await
        .map_err(|e| sqlx::Error::Migrate(Box::new(e)))?;
    let read = pool(8).connect(url).await?;
    Ok((read, write))
}

/// A file path as the path part of an `sqlite://` URL.
fn percent_encode_path(path: &str) -> String {
    use std::fmt::Write as _;
    path.bytes()
        .fold(String::with_capacity(path.len()), |mut s, b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                s.push(b as char);
            } else {
                let _ = write!(s, "%{b:02X}");
            }
            s
        })
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
