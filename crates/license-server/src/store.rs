//! Storage: the only module that speaks SQL. Every statement is
//! parameterized. SQLite in WAL mode with foreign keys on; writes go through
//! a single connection so they never contend for the write lock, reads use a
//! small pool of their own.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, FromRow, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

pub type DbResult<T> = Result<T, sqlx::Error>;

/// The columns of [`Org`], in `organizations`.
macro_rules! org_columns {
    () => {
        "id, name, features, hub_server_name, hub_server_url, renewal_date, valid_from, valid_until"
    };
}

/// The columns of [`Device`], in `devices`.
macro_rules! device_columns {
    () => {
        "id, org_id, name, server_id, created_at, authorized_at, last_seen, token_expiry, revoked_at"
    };
}

/// The columns of [`TokenSubject`], for a query joining `devices d` and
/// `organizations o`.
macro_rules! subject_columns {
    () => {
        "d.id AS device_id, d.server_id, o.name AS org_name, o.features, \
         o.renewal_date, o.hub_server_name, o.hub_server_url"
    };
}

#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
    /// Queue of the token writer, which stores token pairs in batches.
    tokens: mpsc::UnboundedSender<TokenJob>,
    /// Queue of the refresh token reader, which looks them up in batches.
    lookups: mpsc::UnboundedSender<Lookup>,
    /// Refresh tokens this process stored that no lookup has asked for yet,
    /// as a lookup would read them: most grants need no database read. See
    /// [`Store::refresh_token`].
    issued: Arc<Mutex<HashMap<Vec<u8>, RefreshRow>>>,
}

/// [`Store::issued`] is emptied when it reaches this many tokens (about one
/// per device in use).
const ISSUED_LIMIT: usize = 100_000;

/// At most this many token pairs are stored in one transaction, or refresh
/// tokens looked up in one query.
const TOKEN_BATCH: usize = 256;

#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub secret_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub last_exp: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct Org {
    pub id: i64,
    pub name: String,
    pub features: String,
    pub hub_server_name: String,
    pub hub_server_url: String,
    pub renewal_date: Option<i64>,
    pub valid_from: i64,
    pub valid_until: i64,
}

impl Org {
    pub fn feature_list(&self) -> Vec<String> {
        feature_list(&self.features)
    }
}

/// Features are stored as a JSON array of strings.
fn feature_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// What an admin may change on an organization's license account.
#[derive(Debug, Clone)]
pub struct OrgInput {
    pub name: String,
    pub features: Vec<String>,
    pub hub_server_name: String,
    pub hub_server_url: String,
    pub renewal_date: Option<i64>,
    pub valid_from: i64,
    pub valid_until: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct Device {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub server_id: String,
    pub created_at: i64,
    pub authorized_at: Option<i64>,
    pub last_seen: Option<i64>,
    pub token_expiry: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct Package {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub status: String,
    pub valid_from: i64,
    pub valid_until: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct PackageLicense {
    pub package_id: i64,
    pub kind: String,
    pub total: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AssignmentRow {
    pub id: i64,
    pub package_id: i64,
    pub kind: String,
    pub name: String,
    pub assignment_kind: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct DeviceCode {
    pub id: i64,
    pub user_code: String,
    pub client_id: String,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_poll_at: Option<i64>,
    pub status: String,
    pub device_id: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshRow {
    pub token_hash: Vec<u8>,
    pub chain_id: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub successor_claims: Option<String>,
    pub successor_kid: Option<String>,
    pub client_id: String,
    pub chain_revoked: Option<i64>,
    pub device_revoked: Option<i64>,
    /// The device (its id is the chain's device) and organization a
    /// successor token is issued to, read in the same query.
    #[sqlx(flatten)]
    pub subject: TokenSubject,
}

/// What a license token says about its device and organization.
#[derive(Debug, Clone, FromRow)]
pub struct TokenSubject {
    pub device_id: i64,
    pub server_id: String,
    pub org_name: String,
    pub features: String,
    pub renewal_date: Option<i64>,
    pub hub_server_name: String,
    pub hub_server_url: String,
}

impl TokenSubject {
    pub fn feature_list(&self) -> Vec<String> {
        feature_list(&self.features)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AccessRow {
    pub chain_id: i64,
    pub device_id: i64,
    pub chain_revoked: Option<i64>,
    pub device_revoked: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub email: String,
    pub org_id: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// A newly issued token pair, as stored.
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub chain_id: i64,
    pub client_id: String,
    /// The device and organization the pair is issued to.
    pub subject: TokenSubject,
    pub refresh_hash: Vec<u8>,
    pub refresh_expires_at: i64,
    pub access_expires_at: i64,
    pub kid: String,
    /// Also raise the key's `last_exp` to this (throttled by the caller).
    pub key_last_exp: Option<i64>,
    pub now: i64,
    /// The refresh token being exchanged for this pair, if any.
    pub exchanged: Option<Exchanged>,
}

/// A refresh token exchanged for a new pair: marked used, with what is needed
/// to re-issue the same pair to a client that lost the response.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub hash: Vec<u8>,
    pub successor_claims: String,
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
            .busy_timeout(Duration::from_secs(10));
        // SQLite connections do not go stale, and the default check before
        // every acquire costs a round trip to the connection's thread.
        // The writer never checkpoints the WAL itself: see `checkpoint_wal`.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
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
        tokio::spawn(checkpoint_wal(options.connect().await?, write.clone()));
        let (tokens, queue) = mpsc::unbounded_channel();
        tokio::spawn(serve_batches(queue, {
            let write = write.clone();
            async move |batch: &[&NewTokens]| store_batch(&write, batch).await
        }));
        let (lookups, queue) = mpsc::unbounded_channel();
        tokio::spawn(serve_batches(queue, {
            let read = read.clone();
            async move |hashes: &[&Vec<u8>]| lookup_refresh_tokens(&read, hashes).await
        }));
        Ok(Store {
            read,
            write,
            tokens,
            lookups,
            issued: Arc::default(),
        })
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    // ---- signing keys ----

    pub async fn keys(&self) -> DbResult<Vec<KeyRow>> {
        sqlx::query_as("SELECT kid, secret_key, created_at, retired_at, last_exp FROM signing_keys ORDER BY created_at, rowid")
            .fetch_all(&self.write)
            .await
    }

    /// Adds a key that signs from now on; the previous one is retired.
    pub async fn add_key(&self, kid: &str, secret: &[u8], now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signing_keys (kid, secret_key, created_at) VALUES (?, ?, ?)")
            .bind(kid)
            .bind(secret)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    // ---- users, organizations, sessions ----

    pub async fn user_count(&self) -> DbResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.read)
            .await
    }

    pub async fn create_user(&self, email: &str, password_hash: &str, now: i64) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&self.write)
        .await
    }

    pub async fn user_by_email(&self, email: &str) -> DbResult<Option<User>> {
        sqlx::query_as("SELECT id, email, password_hash FROM users WHERE email = ? COLLATE NOCASE")
            .bind(email)
            .fetch_optional(&self.read)
            .await
    }

    pub async fn add_member(&self, user_id: i64, org_id: i64) -> DbResult<()> {
        sqlx::query("INSERT OR IGNORE INTO memberships (user_id, org_id) VALUES (?, ?)")
            .bind(user_id)
            .bind(org_id)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    pub async fn user_orgs(&self, user_id: i64) -> DbResult<Vec<Org>> {
        sqlx::query_as(
            "SELECT o.id, o.name, o.features, o.hub_server_name, o.hub_server_url, o.renewal_date, o.valid_from, o.valid_until
             FROM organizations o JOIN memberships m ON m.org_id = o.id WHERE m.user_id = ? ORDER BY o.name",
        )
        .bind(user_id)
        .fetch_all(&self.read)
        .await
    }

    pub async fn is_member(&self, user_id: i64, org_id: i64) -> DbResult<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = ? AND org_id = ?)",
        )
        .bind(user_id)
        .bind(org_id)
        .fetch_one(&self.read)
        .await
    }

    pub async fn create_org(&self, org: &OrgInput, now: i64) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO organizations (name, features, hub_server_name, hub_server_url, renewal_date, valid_from, valid_until, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&org.name)
        .bind(serde_json::to_string(&org.features).unwrap_or_else(|_| "[]".into()))
        .bind(&org.hub_server_name)
        .bind(&org.hub_server_url)
        .bind(org.renewal_date)
        .bind(org.valid_from)
        .bind(org.valid_until)
        .bind(now)
        .fetch_one(&self.write)
        .await
    }

    pub async fn update_org(&self, id: i64, org: &OrgInput) -> DbResult<()> {
        sqlx::query(
            "UPDATE organizations SET features = ?, hub_server_name = ?, hub_server_url = ?, renewal_date = ?, valid_from = ?, valid_until = ?
             WHERE id = ?",
        )
        .bind(serde_json::to_string(&org.features).unwrap_or_else(|_| "[]".into()))
        .bind(&org.hub_server_name)
        .bind(&org.hub_server_url)
        .bind(org.renewal_date)
        .bind(org.valid_from)
        .bind(org.valid_until)
        .bind(id)
        .execute(&self.write)
        .await?;
        self.forget_issued();
        Ok(())
    }

    pub async fn org(&self, id: i64) -> DbResult<Option<Org>> {
        sqlx::query_as(concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await
    }

    pub async fn orgs(&self) -> DbResult<Vec<Org>> {
        sqlx::query_as(concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations ORDER BY name"
        ))
        .fetch_all(&self.read)
        .await
    }

    pub async fn org_by_name(&self, name: &str) -> DbResult<Option<Org>> {
        sqlx::query_as(concat!(
            "SELECT ",
            org_columns!(),
            " FROM organizations WHERE name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.read)
        .await
    }

    pub async fn create_session(
        &self,
        id_hash: &[u8],
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.write)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.write)
        .await
        .map(|_| ())
    }

    pub async fn session(&self, id_hash: &[u8], now: i64) -> DbResult<Option<SessionRow>> {
        sqlx::query_as(
            "SELECT s.user_id, u.email, s.org_id FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id_hash = ? AND s.expires_at > ?",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.read)
        .await
    }

    pub async fn set_session_org(&self, id_hash: &[u8], org_id: i64) -> DbResult<()> {
        sqlx::query("UPDATE sessions SET org_id = ? WHERE id_hash = ?")
            .bind(org_id)
            .bind(id_hash)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> DbResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(id_hash)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    // ---- devices ----

    pub async fn create_device(
        &self,
        org_id: i64,
        name: &str,
        server_id: &str,
        now: i64,
    ) -> DbResult<Device> {
        sqlx::query_as(concat!(
            "INSERT INTO devices (org_id, name, server_id, created_at) VALUES (?, ?, ?, ?) RETURNING ",
            device_columns!()
        ))
        .bind(org_id)
        .bind(name)
        .bind(server_id)
        .bind(now)
        .fetch_one(&self.write)
        .await
    }

    pub async fn devices(&self, org_id: i64) -> DbResult<Vec<Device>> {
        sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE org_id = ? ORDER BY name"
        ))
        .bind(org_id)
        .fetch_all(&self.read)
        .await
    }

    pub async fn device(&self, id: i64) -> DbResult<Option<Device>> {
        sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await
    }

    pub async fn device_by_name(&self, org_id: i64, name: &str) -> DbResult<Option<Device>> {
        sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE org_id = ? AND name = ?"
        ))
        .bind(org_id)
        .bind(name)
        .fetch_optional(&self.read)
        .await
    }

    /// Revokes the device and every token chain it holds.
    pub async fn revoke_device(&self, id: i64, now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE devices SET revoked_at = ?, token_expiry = NULL WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE token_chains SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget_issued();
        Ok(())
    }

    pub async fn touch_device(&self, id: i64, now: i64) -> DbResult<()> {
        sqlx::query("UPDATE devices SET last_seen = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    // ---- license packages ----

    pub async fn create_package(
        &self,
        org_id: i64,
        name: &str,
        valid_from: i64,
        valid_until: i64,
    ) -> DbResult<i64> {
        sqlx::query_scalar("INSERT INTO packages (org_id, name, valid_from, valid_until) VALUES (?, ?, ?, ?) RETURNING id")
            .bind(org_id)
            .bind(name)
            .bind(valid_from)
            .bind(valid_until)
            .fetch_one(&self.write)
            .await
    }

    pub async fn update_package(
        &self,
        id: i64,
        name: &str,
        status: &str,
        valid_from: i64,
        valid_until: i64,
    ) -> DbResult<()> {
        sqlx::query("UPDATE packages SET name = ?, status = ?, valid_from = ?, valid_until = ? WHERE id = ?")
            .bind(name)
            .bind(status)
            .bind(valid_from)
            .bind(valid_until)
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    pub async fn set_license_total(&self, package_id: i64, kind: &str, total: i64) -> DbResult<()> {
        if total == 0 {
            sqlx::query("DELETE FROM package_licenses WHERE package_id = ? AND kind = ?")
                .bind(package_id)
                .bind(kind)
                .execute(&self.write)
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO package_licenses (package_id, kind, total) VALUES (?, ?, ?)
             ON CONFLICT (package_id, kind) DO UPDATE SET total = excluded.total",
        )
        .bind(package_id)
        .bind(kind)
        .bind(total)
        .execute(&self.write)
        .await
        .map(|_| ())
    }

    pub async fn add_assignment(
        &self,
        package_id: i64,
        kind: &str,
        name: &str,
        assignment_kind: &str,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO assignments (package_id, kind, name, assignment_kind) VALUES (?, ?, ?, ?)",
        )
        .bind(package_id)
        .bind(kind)
        .bind(name)
        .bind(assignment_kind)
        .execute(&self.write)
        .await
        .map(|_| ())
    }

    pub async fn delete_assignment(&self, package_id: i64, id: i64) -> DbResult<()> {
        sqlx::query("DELETE FROM assignments WHERE package_id = ? AND id = ?")
            .bind(package_id)
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    pub async fn package(&self, id: i64) -> DbResult<Option<Package>> {
        sqlx::query_as(
            "SELECT id, org_id, name, status, valid_from, valid_until FROM packages WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await
    }

    /// Packages of an organization with their licenses and assignments.
    pub async fn packages(
        &self,
        org_id: i64,
    ) -> DbResult<(Vec<Package>, Vec<PackageLicense>, Vec<AssignmentRow>)> {
        let mut conn = self.read.acquire().await?;
        let packages = sqlx::query_as("SELECT id, org_id, name, status, valid_from, valid_until FROM packages WHERE org_id = ? ORDER BY id")
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
        let licenses = sqlx::query_as(
            "SELECT l.package_id, l.kind, l.total FROM package_licenses l JOIN packages p ON p.id = l.package_id WHERE p.org_id = ?",
        )
        .bind(org_id)
        .fetch_all(&mut *conn)
        .await?;
        let assignments = sqlx::query_as(
            "SELECT a.id, a.package_id, a.kind, a.name, a.assignment_kind FROM assignments a JOIN packages p ON p.id = a.package_id
             WHERE p.org_id = ? ORDER BY a.id",
        )
        .bind(org_id)
        .fetch_all(&mut *conn)
        .await?;
        Ok((packages, licenses, assignments))
    }

    // ---- device codes ----

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_device_code(
        &self,
        code_hash: &[u8],
        user_code: &str,
        client_id: &str,
        scope: Option<&str>,
        now: i64,
        expires_at: i64,
        interval: i64,
    ) -> DbResult<bool> {
        // A user code must be unambiguous among live codes.
        let clash: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM device_codes WHERE user_code = ? AND expires_at > ? AND status IN ('pending', 'approved'))",
        )
        .bind(user_code)
        .bind(now)
        .fetch_one(&self.write)
        .await?;
        if clash {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO device_codes (code_hash, user_code, client_id, scope, created_at, expires_at, interval_secs)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(code_hash)
        .bind(user_code)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .bind(expires_at)
        .bind(interval)
        .execute(&self.write)
        .await?;
        Ok(true)
    }

    pub async fn device_code(&self, code_hash: &[u8]) -> DbResult<Option<DeviceCode>> {
        sqlx::query_as(
            "SELECT id, user_code, client_id, expires_at, interval_secs, last_poll_at, status, device_id FROM device_codes WHERE code_hash = ?",
        )
        .bind(code_hash)
        .fetch_optional(&self.write)
        .await
    }

    pub async fn pending_device_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> DbResult<Option<DeviceCode>> {
        sqlx::query_as(
            "SELECT id, user_code, client_id, expires_at, interval_secs, last_poll_at, status, device_id FROM device_codes
             WHERE user_code = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(user_code)
        .bind(now)
        .fetch_optional(&self.write)
        .await
    }

    pub async fn record_poll(&self, id: i64, now: i64, interval: i64) -> DbResult<()> {
        sqlx::query("UPDATE device_codes SET last_poll_at = ?, interval_secs = ? WHERE id = ?")
            .bind(now)
            .bind(interval)
            .bind(id)
            .execute(&self.write)
            .await
            .map(|_| ())
    }

    /// Approves or denies a pending code. `false` if it was no longer pending.
    pub async fn decide_device_code(
        &self,
        id: i64,
        approve: bool,
        device_id: Option<i64>,
        user_id: Option<i64>,
        now: i64,
    ) -> DbResult<bool> {
        let status = if approve { "approved" } else { "denied" };
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE device_codes SET status = ?, device_id = ?, decided_by = ? WHERE id = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(status)
        .bind(device_id)
        .bind(user_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done && approve {
            if let Some(device_id) = device_id {
                sqlx::query("UPDATE devices SET revoked_at = NULL, authorized_at = ? WHERE id = ?")
                    .bind(now)
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Consumes an approved code and starts a token chain; `None` if another
    /// request consumed it first.
    pub async fn consume_device_code(
        &self,
        id: i64,
        device_id: i64,
        client_id: &str,
        now: i64,
    ) -> DbResult<Option<i64>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE device_codes SET status = 'used' WHERE id = ? AND status = 'approved'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(None);
        }
        let chain: i64 = sqlx::query_scalar("INSERT INTO token_chains (device_id, client_id, created_at) VALUES (?, ?, ?) RETURNING id")
            .bind(device_id)
            .bind(client_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(chain))
    }

    // ---- tokens ----

    /// Stores a new pair: refresh token hash, access token id, device expiry.
    /// When `t.exchanged` names the refresh token being exchanged, it is
    /// marked used in the same transaction (with the claims needed to re-issue
    /// the same pair); `false` if another request used it first, or if its
    /// chain or device has been revoked.
    ///
    /// Pairs are queued to one writer task that stores everything waiting in
    /// one transaction (group commit): under load, one commit and one round
    /// trip to the connection's thread serve many token grants.
    pub async fn store_tokens(&self, t: NewTokens) -> DbResult<bool> {
        let row = RefreshRow {
            token_hash: t.refresh_hash.clone(),
            chain_id: t.chain_id,
            expires_at: t.refresh_expires_at,
            used_at: None,
            successor_claims: None,
            successor_kid: None,
            client_id: t.client_id.clone(),
            chain_revoked: None,
            device_revoked: None,
            subject: t.subject.clone(),
        };
        let stored = ask(&self.tokens, t).await?;
        if stored {
            let mut issued = self.issued();
            if issued.len() >= ISSUED_LIMIT {
                issued.clear();
            }
            issued.insert(row.token_hash.clone(), row);
        }
        Ok(stored)
    }

    /// The refresh token with this hash, with its chain, device and
    /// organization.
    ///
    /// A token this process stored is answered once from memory: its row as
    /// stored, unused. That answer may be out of date only in ways the token
    /// writer checks again when the token is exchanged (used, or its chain or
    /// device revoked: see [`STORE_BATCH`]); a lost exchange looks the token
    /// up again, from the database. Changes to what a token says (revocations,
    /// organization edits) empty the memory.
    ///
    /// Other lookups are queued to one reader task that answers everything
    /// waiting with one query, like the token writer.
    pub async fn refresh_token(&self, hash: &[u8]) -> DbResult<Option<RefreshRow>> {
        if let Some(row) = self.issued().remove(hash) {
            return Ok(Some(row));
        }
        ask(&self.lookups, hash.to_vec()).await
    }

    fn issued(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, RefreshRow>> {
        self.issued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After any change to what a stored token says.
    fn forget_issued(&self) {
        self.issued().clear();
    }

    /// The device and organization a token for `device_id` is issued to.
    pub async fn token_subject(&self, device_id: i64) -> DbResult<Option<TokenSubject>> {
        sqlx::query_as(concat!(
            "SELECT ",
            subject_columns!(),
            " FROM devices d JOIN organizations o ON o.id = d.org_id WHERE d.id = ?"
        ))
        .bind(device_id)
        .fetch_optional(&self.read)
        .await
    }

    /// Whether the refresh token with this hash has been exchanged.
    pub async fn refresh_token_used(&self, hash: &[u8]) -> DbResult<Option<bool>> {
        sqlx::query_scalar("SELECT used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = ?")
            .bind(hash)
            .fetch_optional(&self.write)
            .await
    }

    pub async fn revoke_chain(&self, chain_id: i64, now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query("UPDATE token_chains SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(now)
            .bind(chain_id)
            .execute(&mut *tx)
            .await?;
        // The device keeps its authorization record but holds no live token.
        sqlx::query(
            "UPDATE devices SET token_expiry = NULL WHERE id = (SELECT device_id FROM token_chains WHERE id = ?)
             AND NOT EXISTS (SELECT 1 FROM token_chains WHERE device_id = devices.id AND revoked_at IS NULL)",
        )
        .bind(chain_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget_issued();
        Ok(())
    }

    pub async fn chain(&self, chain_id: i64) -> DbResult<Option<AccessRow>> {
        sqlx::query_as(
            "SELECT c.id AS chain_id, c.device_id, c.revoked_at AS chain_revoked, d.revoked_at AS device_revoked
             FROM token_chains c JOIN devices d ON d.id = c.device_id
             WHERE c.id = ?",
        )
        .bind(chain_id)
        .fetch_optional(&self.read)
        .await
    }

    /// Deletes what can no longer be used (expired codes and tokens).
    pub async fn purge_expired(&self, now: i64) -> DbResult<()> {
        sqlx::query("DELETE FROM device_codes WHERE expires_at < ?")
            .bind(now - 86_400)
            .execute(&self.write)
            .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < ?")
            .bind(now - 86_400)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    // ---- audit ----

    pub async fn audit(
        &self,
        now: i64,
        actor: &str,
        org_id: Option<i64>,
        action: &str,
        detail: &str,
    ) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, org_id, action, detail) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(now)
        .bind(actor)
        .bind(org_id)
        .bind(action)
        .bind(detail)
        .execute(&self.write)
        .await
        .map(|_| ())
    }

    pub async fn audit_log(&self, org_id: i64, limit: i64) -> DbResult<Vec<AuditEntry>> {
        sqlx::query_as("SELECT at, actor, action, detail FROM audit_log WHERE org_id = ? ORDER BY id DESC LIMIT ?")
            .bind(org_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await
    }
}

/// How often the WAL is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`], on a
/// connection of its own, until the store closes. SQLite's automatic
/// checkpoint would run in the writer's commit that fills the WAL to 1,000
/// pages, and copying and syncing those takes milliseconds that every
/// request of the batch behind it waits for; a passive checkpoint here runs
/// alongside the writer.
async fn checkpoint_wal(mut conn: SqliteConnection, write: SqlitePool) {
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

/// A request waiting in a batch queue, and where its answer goes.
struct Job<Q, A> {
    request: Q,
    reply: oneshot::Sender<DbResult<A>>,
}

type TokenJob = Job<NewTokens, bool>;
type Lookup = Job<Vec<u8>, Option<RefreshRow>>;

/// Queues `request` for a batch task and waits for its answer.
async fn ask<Q, A>(queue: &mpsc::UnboundedSender<Job<Q, A>>, request: Q) -> DbResult<A> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Job { request, reply })
        .map_err(|_| sqlx::Error::PoolClosed)?;
    answer.await.map_err(|_| sqlx::Error::PoolClosed)?
}

/// A batch smaller than this, after a batch of more than one request, waits
/// [`FILL_WAIT`] for more requests to join it.
const FILL_BELOW: usize = 8;
/// Half a millisecond, which tokio's timer rounds up to its next 1 ms tick.
/// Each batch costs a commit and a round trip to the connection's thread
/// whatever its size: at 3,000 grants/s this wait made batches bigger and cut
/// the server's CPU time per grant by a fifth, for about a millisecond more
/// latency. A lone request (light load) never waits.
const FILL_WAIT: Duration = Duration::from_micros(500);

/// Answers queued requests in batches: everything waiting goes to `run` at
/// once, which answers each request in order. If a batch fails, each request
/// is run again on its own, so one bad request cannot fail the others.
async fn serve_batches<Q, A>(
    mut queue: mpsc::UnboundedReceiver<Job<Q, A>>,
    run: impl AsyncFn(&[&Q]) -> DbResult<Vec<A>>,
) {
    let mut jobs = Vec::with_capacity(TOKEN_BATCH);
    let mut last_batch = 0;
    while queue.recv_many(&mut jobs, TOKEN_BATCH).await > 0 {
        if last_batch > 1 && jobs.len() < FILL_BELOW {
            // Requests are coming in together: let more join this batch.
            tokio::time::sleep(FILL_WAIT).await;
            while jobs.len() < TOKEN_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        last_batch = jobs.len();
        let batch: Vec<&Q> = jobs.iter().map(|j| &j.request).collect();
        let answers = run(&batch).await.and_then(|answers| {
            if answers.len() == batch.len() {
                Ok(answers)
            } else {
                Err(sqlx::Error::Protocol("a batch lost an answer".into()))
            }
        });
        match answers {
            Ok(answers) => {
                for (job, answer) in jobs.drain(..).zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(e) if jobs.len() == 1 => {
                let job = jobs.pop().expect("one job");
                let _ = job.reply.send(Err(e));
            }
            Err(_) => {
                for job in jobs.drain(..) {
                    let answer = run(&[&job.request]).await.and_then(|a| {
                        a.into_iter()
                            .next()
                            .ok_or_else(|| sqlx::Error::Protocol("a batch lost an answer".into()))
                    });
                    let _ = job.reply.send(answer);
                }
            }
        }
    }
}

/// Stores a batch of pairs in one transaction, sent to SQLite as one script:
/// a single round trip to the connection's thread whatever the number of
/// pairs (each round trip costs a thread wake-up on either side). The pairs
/// travel as one JSON array, bound once (`?1`) and read by every statement.
///
/// 1. Marks each exchanged refresh token used, if it still is unused and
///    neither its chain nor its device is revoked, with the claims of its
///    successor; returns the hashes it marked.
/// 2. Inserts each new refresh token whose pair has nothing to exchange, or
///    whose exchanged token carries this pair's claims now: marked by step 1,
///    as the claims hold the pair's random `jti`.
/// 3. Sets each device's token expiry from the pairs stored.
/// 4. Raises the signing keys' `last_exp` (`?2`).
const STORE_BATCH: &str = "BEGIN IMMEDIATE;
UPDATE refresh_tokens SET used_at = j.value ->> 'at', successor_claims = j.value ->> 'claims',
       successor_kid = j.value ->> 'kid'
  FROM json_each(?1) AS j
 WHERE j.value ->> 'old' IS NOT NULL AND refresh_tokens.token_hash = unhex(j.value ->> 'old')
   AND refresh_tokens.used_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM token_chains c JOIN devices d ON d.id = c.device_id
                    WHERE c.id = refresh_tokens.chain_id
                      AND (c.revoked_at IS NOT NULL OR d.revoked_at IS NOT NULL))
RETURNING refresh_tokens.token_hash;
INSERT INTO refresh_tokens (token_hash, chain_id, created_at, expires_at)
SELECT unhex(j.value ->> 'hash'), j.value ->> 'chain', j.value ->> 'at', j.value ->> 'exp'
  FROM json_each(?1) AS j
 WHERE j.value ->> 'old' IS NULL
    OR EXISTS (SELECT 1 FROM refresh_tokens o WHERE o.token_hash = unhex(j.value ->> 'old')
                AND o.successor_claims = j.value ->> 'claims');
UPDATE devices SET token_expiry = n.exp
  FROM (SELECT j.value ->> 'device' AS device, MAX(j.value ->> 'access_exp') AS exp
          FROM json_each(?1) AS j
         WHERE EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.token_hash = unhex(j.value ->> 'hash'))
         GROUP BY 1) AS n
 WHERE devices.id = n.device;
UPDATE signing_keys SET last_exp = MAX(last_exp, k.value ->> 'exp')
  FROM json_each(?2) AS k WHERE signing_keys.kid = k.value ->> 'kid';
COMMIT;";

/// Stores many pairs in one transaction ([`STORE_BATCH`]). Returns, per pair,
/// whether it was stored: `false` when its exchanged refresh token was
/// already used, including by an earlier pair of the same batch.
async fn store_batch(pool: &SqlitePool, batch: &[&NewTokens]) -> DbResult<Vec<bool>> {
    #[derive(Serialize)]
    struct Pair<'a> {
        hash: String,
        chain: i64,
        device: i64,
        at: i64,
        exp: i64,
        access_exp: i64,
        kid: &'a str,
        old: Option<String>,
        claims: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct KeyExp<'a> {
        kid: &'a str,
        exp: i64,
    }

    let mut stored = vec![true; batch.len()];
    let mut claimed = HashSet::new();
    let mut pairs = Vec::with_capacity(batch.len());
    let mut last_exp: HashMap<&str, i64> = HashMap::new();
    for (i, t) in batch.iter().enumerate() {
        // Every pair's `last_exp`, even one refused below: the caller counts
        // it as written, and a later pair of the same key may not repeat it.
        if let Some(exp) = t.key_last_exp {
            let e = last_exp.entry(&t.kid).or_insert(exp);
            *e = (*e).max(exp);
        }
        if let Some(x) = &t.exchanged {
            if !claimed.insert(x.hash.as_slice()) {
                stored[i] = false;
                continue;
            }
        }
        pairs.push(Pair {
            hash: hex(&t.refresh_hash),
            chain: t.chain_id,
            device: t.subject.device_id,
            at: t.now,
            exp: t.refresh_expires_at,
            access_exp: t.access_expires_at,
            kid: &t.kid,
            old: t.exchanged.as_ref().map(|x| hex(&x.hash)),
            claims: t.exchanged.as_ref().map(|x| x.successor_claims.as_str()),
        });
    }
    let keys: Vec<KeyExp> = last_exp
        .into_iter()
        .map(|(kid, exp)| KeyExp { kid, exp })
        .collect();

    let mut conn = pool.acquire().await?;
    let marked: Vec<Vec<u8>> = match sqlx::query_scalar(STORE_BATCH)
        .bind(to_json(&pairs)?)
        .bind(to_json(&keys)?)
        .fetch_all(&mut *conn)
        .await
    {
        Ok(marked) => marked,
        Err(e) => {
            // The script stopped part-way, maybe inside its transaction: end
            // that, or let the pool replace the connection.
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                conn.close_on_drop();
            }
            return Err(e);
        }
    };
    let marked: HashSet<&[u8]> = marked.iter().map(Vec::as_slice).collect();
    for (i, t) in batch.iter().enumerate() {
        if let Some(x) = &t.exchanged {
            stored[i] = stored[i] && marked.contains(x.hash.as_slice());
        }
    }
    Ok(stored)
}

/// The refresh tokens with these hashes (one query whatever their number),
/// each answer in the order asked.
async fn lookup_refresh_tokens(
    pool: &SqlitePool,
    hashes: &[&Vec<u8>],
) -> DbResult<Vec<Option<RefreshRow>>> {
    let hex_hashes: Vec<String> = hashes.iter().map(|h| hex(h)).collect();
    let rows: Vec<RefreshRow> = sqlx::query_as(concat!(
        "SELECT r.token_hash, r.chain_id, r.expires_at, r.used_at, r.successor_claims, r.successor_kid,
                c.client_id, c.revoked_at AS chain_revoked, d.revoked_at AS device_revoked, ",
        subject_columns!(),
        " FROM refresh_tokens r JOIN token_chains c ON c.id = r.chain_id JOIN devices d ON d.id = c.device_id
          JOIN organizations o ON o.id = d.org_id
          WHERE r.token_hash IN (SELECT unhex(value) FROM json_each(?))"
    ))
    .bind(to_json(&hex_hashes)?)
    .fetch_all(pool)
    .await?;
    Ok(hashes
        .iter()
        .map(|h| rows.iter().find(|r| r.token_hash == **h).cloned())
        .collect())
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

fn to_json<T: Serialize>(value: &T) -> DbResult<String> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 2_000_000_000;

    /// A store with one device and one token chain.
    async fn store_with_chain(dir: &tempfile::TempDir) -> (Store, i64, i64) {
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let org = store
            .create_org(
                &OrgInput {
                    name: "Acme".into(),
                    features: vec![],
                    hub_server_name: "hub".into(),
                    hub_server_url: "https://hub.example".into(),
                    renewal_date: None,
                    valid_from: NOW,
                    valid_until: NOW + 1000,
                },
                NOW,
            )
            .await
            .unwrap();
        let device = store
            .create_device(org, "Server 1", "SRV-1", NOW)
            .await
            .unwrap()
            .id;
        let chain: i64 = sqlx::query_scalar(
            "INSERT INTO token_chains (device_id, client_id, created_at) VALUES (?, 'c', ?) RETURNING id",
        )
        .bind(device)
        .bind(NOW)
        .fetch_one(&store.write)
        .await
        .unwrap();
        (store, device, chain)
    }

    /// [`store_with_chain`], with the chain's first refresh token (hash 1)
    /// stored.
    async fn store_with_token(dir: &tempfile::TempDir) -> (Store, i64, i64) {
        let (store, device, chain) = store_with_chain(dir).await;
        assert!(store
            .store_tokens(pair(chain, device, 1, None))
            .await
            .unwrap());
        (store, device, chain)
    }

    fn pair(chain: i64, device: i64, hash: u8, exchanged: Option<u8>) -> NewTokens {
        NewTokens {
            chain_id: chain,
            client_id: "c".into(),
            subject: TokenSubject {
                device_id: device,
                server_id: "SRV-1".into(),
                org_name: "Org".into(),
                features: "[]".into(),
                renewal_date: None,
                hub_server_name: String::new(),
                hub_server_url: String::new(),
            },
            refresh_hash: vec![hash; 32],
            refresh_expires_at: NOW + 100,
            access_expires_at: NOW + 50 + i64::from(hash),
            kid: "k".into(),
            key_last_exp: None,
            now: NOW,
            exchanged: exchanged.map(|h| Exchanged {
                hash: vec![h; 32],
                successor_claims: format!("claims of {hash}"),
            }),
        }
    }

    async fn used_at(store: &Store, hash: u8) -> Option<Option<i64>> {
        sqlx::query_scalar("SELECT used_at FROM refresh_tokens WHERE token_hash = ?")
            .bind(vec![hash; 32])
            .fetch_optional(&store.read)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_exchanges_each_refresh_token_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, device, chain) = store_with_token(&dir).await;

        // Two pairs exchanging token 1 in one batch: only the first wins.
        // The loser's key `last_exp` is written all the same (its caller
        // counts it as written).
        store.add_key("k", &[7; 32], NOW).await.unwrap();
        let mut loser = pair(chain, device, 3, Some(1));
        loser.key_last_exp = Some(NOW + 500);
        let batch = [pair(chain, device, 2, Some(1)), loser];
        let stored = store_batch(&store.write, &[&batch[0], &batch[1]])
            .await
            .unwrap();
        assert_eq!(stored, [true, false]);
        assert_eq!(used_at(&store, 1).await, Some(Some(NOW)));
        assert_eq!(used_at(&store, 2).await, Some(None));
        assert_eq!(used_at(&store, 3).await, None, "the loser stored nothing");
        let claims: String =
            sqlx::query_scalar("SELECT successor_claims FROM refresh_tokens WHERE token_hash = ?")
                .bind(vec![1u8; 32])
                .fetch_one(&store.read)
                .await
                .unwrap();
        assert_eq!(claims, "claims of 2");
        let expiry = store.device(device).await.unwrap().unwrap().token_expiry;
        assert_eq!(expiry, Some(NOW + 52));
        let key = store.keys().await.unwrap().pop().unwrap();
        assert_eq!(key.last_exp, NOW + 500);

        // Token 1 again in a later batch: already used.
        assert!(!store
            .store_tokens(pair(chain, device, 4, Some(1)))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn one_bad_pair_does_not_fail_the_others_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (store, device, chain) = store_with_token(&dir).await;

        // Queue three pairs before the writer runs, so they form one batch;
        // the second repeats an existing refresh token hash.
        let (queue, jobs) = mpsc::unbounded_channel();
        let mut answers = Vec::new();
        for t in [
            pair(chain, device, 5, None),
            pair(chain, device, 1, None),
            pair(chain, device, 6, None),
        ] {
            let (reply, answer) = oneshot::channel();
            queue.send(Job { request: t, reply }).unwrap();
            answers.push(answer);
        }
        drop(queue);
        let write = store.write.clone();
        serve_batches(jobs, async |batch: &[&NewTokens]| {
            store_batch(&write, batch).await
        })
        .await;
        let mut results = Vec::new();
        for answer in answers {
            results.push(answer.await.unwrap());
        }
        assert!(matches!(results[0], Ok(true)));
        assert!(results[1].is_err(), "{:?}", results[1]);
        assert!(matches!(results[2], Ok(true)));
        assert_eq!(used_at(&store, 5).await, Some(None));
        assert_eq!(used_at(&store, 6).await, Some(None));
    }

    #[tokio::test]
    async fn a_token_answered_from_memory_is_checked_again_when_exchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (store, device, chain) = store_with_token(&dir).await;

        // Revoked behind this process's back (another process on the same
        // database): memory still answers the token as it was stored...
        sqlx::query("UPDATE token_chains SET revoked_at = ? WHERE id = ?")
            .bind(NOW)
            .bind(chain)
            .execute(&store.write)
            .await
            .unwrap();
        let row = store.refresh_token(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(row.chain_revoked, None);
        assert_eq!(row.subject.device_id, device);
        // ...but the writer refuses to exchange it, and the lookup the grant
        // then makes again reads the database.
        assert!(!store
            .store_tokens(pair(chain, device, 2, Some(1)))
            .await
            .unwrap());
        assert_eq!(used_at(&store, 1).await, Some(None));
        let row = store.refresh_token(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(row.chain_revoked, Some(NOW));

        // A revocation through the store empties the memory at once.
        sqlx::query("UPDATE token_chains SET revoked_at = NULL WHERE id = ?")
            .bind(chain)
            .execute(&store.write)
            .await
            .unwrap();
        assert!(store
            .store_tokens(pair(chain, device, 3, None))
            .await
            .unwrap());
        store.revoke_device(device, NOW + 1).await.unwrap();
        let row = store.refresh_token(&[3; 32]).await.unwrap().unwrap();
        assert_eq!(row.device_revoked, Some(NOW + 1));
    }

    #[tokio::test]
    async fn lookups_waiting_together_are_answered_each() {
        let dir = tempfile::tempdir().unwrap();
        let (store, device, chain) = store_with_chain(&dir).await;
        for hash in [1, 2] {
            assert!(store
                .store_tokens(pair(chain, device, hash, None))
                .await
                .unwrap());
        }
        let lookups = [1u8, 2, 9, 1].map(|h| {
            let store = store.clone();
            tokio::spawn(async move { store.refresh_token(&[h; 32]).await.unwrap() })
        });
        let mut found = Vec::new();
        for lookup in lookups {
            found.push(lookup.await.unwrap().map(|r| (r.token_hash[0], r.chain_id)));
        }
        assert_eq!(
            found,
            [Some((1, chain)), Some((2, chain)), None, Some((1, chain))]
        );
        let row = store.refresh_token(&[2; 32]).await.unwrap().unwrap();
        assert_eq!(row.subject.server_id, "SRV-1");
        assert_eq!(row.subject.org_name, "Acme");
        assert_eq!(row.used_at, None);
    }

    #[tokio::test]
    async fn the_batched_lookup_uses_the_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _, _) = store_with_chain(&dir).await;
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT r.chain_id FROM refresh_tokens r
             WHERE r.token_hash IN (SELECT unhex(value) FROM json_each(?))",
        )
        .bind("[]")
        .fetch_all(&store.read)
        .await
        .unwrap();
        let plan: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
        assert!(
            plan.iter()
                .any(|d| d.contains("USING INDEX") && d.contains("token_hash=?")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|d| d.starts_with("SCAN r")), "{plan:?}");
    }
}
