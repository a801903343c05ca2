//! Device codes (RFC 8628): issued, polled, decided by an admin, consumed
//! into a token chain.

use std::collections::HashSet;

use serde::Serialize;
use sqlx::{AnyPool, FromRow};
use tokio::sync::mpsc;

use super::audit::{self, NewAudit};
use super::sql::{execute, optional, scalar};
use super::{batch, devices, hex, to_json, Backend, DbResult, Store};

/// Where a device code stands. Stored as `pending`, `approved`, `denied`,
/// `used`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCodeStatus {
    /// Waiting for an admin.
    Pending,
    /// Approved; the next poll receives a token pair.
    Approved,
    /// Denied by an admin.
    Denied,
    /// Exchanged for a token pair.
    Used,
}

#[derive(Debug, Clone, FromRow)]
pub struct DeviceCode {
    pub id: i64,
    pub user_code: String,
    pub client_id: String,
    pub last_poll_at: Option<i64>,
    pub interval_secs: i64,
    pub expires_at: i64,
    pub device_id: Option<i64>,
    pub status: DeviceCodeStatus,
}

/// The device a decision is for.
#[derive(Debug, Clone, Copy)]
pub enum RegisterDevice<'a> {
    /// A device that exists.
    Existing(i64),
    /// A device registered in the same transaction.
    New {
        org_id: i64,
        name: &'a str,
        server_id: &'a str,
    },
}

/// An admin's decision on a pending device code, with its audit entries.
#[derive(Debug)]
pub struct DeviceDecision<'a> {
    pub code_id: i64,
    pub approve: bool,
    pub device: Option<RegisterDevice<'a>>,
    pub user_id: Option<i64>,
    pub now: i64,
    pub audit: &'a [NewAudit<'a>],
}

/// `SELECT` the columns of [`DeviceCode`] `FROM device_codes`, then the rest.
macro_rules! select_device_codes {
    ($rest:literal) => {
        concat!("SELECT id, user_code, client_id, expires_at, interval_secs, last_poll_at, status, device_id FROM device_codes ", $rest)
    };
}

/// A device authorization to store: its code (as a hash), the user code
/// shown to the admin, and its times.
#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    pub code_hash: Vec<u8>,
    /// Normalized: 8 upper-case letters.
    pub user_code: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub now: i64,
    pub expires_at: i64,
    pub interval_secs: i64,
}

pub(super) type CodeJob = batch::Job<NewDeviceCode, bool>;

/// Stores each code whose user code no live code has (pending or approved,
/// not expired), all in one statement: one commit and one round trip to the
/// connection's thread per batch of authorizations, whatever its size.
/// Returns the user codes stored.
const INSERT_CODES_SQLITE: &str =
    "INSERT INTO device_codes (code_hash, user_code, client_id, scope,
                                          created_at, expires_at, interval_secs)
SELECT unhex(j.value ->> 'hash'), j.value ->> 'user_code', j.value ->> 'client_id',
       j.value ->> 'scope', j.value ->> 'now', j.value ->> 'expires_at', j.value ->> 'interval'
  FROM json_each($1) AS j
 WHERE NOT EXISTS (SELECT 1 FROM device_codes d
                    WHERE d.user_code = j.value ->> 'user_code'
                      AND d.expires_at > j.value ->> 'now'
                      AND d.status IN ('pending', 'approved'))
RETURNING user_code";

/// [`INSERT_CODES_SQLITE`] for PostgreSQL. Replicas insert at once, so a
/// unique index on live user codes settles a clash the check cannot see.
const INSERT_CODES_POSTGRES: &str = "INSERT INTO device_codes (code_hash, user_code, client_id,
                                          scope, created_at, expires_at, interval_secs)
SELECT decode(j ->> 'hash', 'hex'), j ->> 'user_code', j ->> 'client_id', j ->> 'scope',
       (j ->> 'now')::BIGINT, (j ->> 'expires_at')::BIGINT, (j ->> 'interval')::BIGINT
  FROM jsonb_array_elements($1::jsonb) AS j
 WHERE NOT EXISTS (SELECT 1 FROM device_codes d
                    WHERE d.user_code = j ->> 'user_code'
                      AND d.expires_at > (j ->> 'now')::BIGINT
                      AND d.status IN ('pending', 'approved'))
ON CONFLICT DO NOTHING
RETURNING user_code";

/// Stores a batch of device codes ([`INSERT_CODES_SQLITE`]); per code, whether it
/// was stored (`false`: its user code is taken, by a live code or by an
/// earlier code of the same batch).
async fn insert_codes(
    pool: &AnyPool,
    backend: Backend,
    batch: &[&NewDeviceCode],
) -> DbResult<Vec<bool>> {
    #[derive(Serialize)]
    struct Row<'a> {
        hash: String,
        user_code: &'a str,
        client_id: &'a str,
        scope: Option<&'a str>,
        now: i64,
        expires_at: i64,
        interval: i64,
    }
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(batch.len());
    let unique: Vec<bool> = batch
        .iter()
        .map(|c| seen.insert(c.user_code.as_str()))
        .collect();
    for (c, _) in batch.iter().zip(&unique).filter(|(_, u)| **u) {
        rows.push(Row {
            hash: hex(&c.code_hash),
            user_code: &c.user_code,
            client_id: &c.client_id,
            scope: c.scope.as_deref(),
            now: c.now,
            expires_at: c.expires_at,
            interval: c.interval_secs,
        });
    }
    let sql = match backend {
        Backend::Sqlite => INSERT_CODES_SQLITE,
        Backend::Postgres => INSERT_CODES_POSTGRES,
    };
    let stored: Vec<String> = sqlx::query_scalar(sql)
        .bind(to_json(&rows)?)
        .fetch_all(pool)
        .await?;
    let stored: HashSet<&str> = stored.iter().map(String::as_str).collect();
    Ok(batch
        .iter()
        .zip(unique)
        .map(|(c, unique)| unique && stored.contains(c.user_code.as_str()))
        .collect())
}

/// Starts the device-code writer on the write pool; returns its queue.
pub(super) fn spawn_code_writer(
    write: AnyPool,
    backend: Backend,
) -> mpsc::UnboundedSender<CodeJob> {
    let (queue, jobs) = mpsc::unbounded_channel();
    tokio::spawn(batch::serve_batches(
        "device_codes",
        jobs,
        async move |codes: &[&NewDeviceCode]| insert_codes(&write, backend, codes).await,
    ));
    queue
}

impl Store {
    /// Stores a new device code, in a batch with whatever other codes are
    /// waiting. `false` when its user code is taken by a live code: draw
    /// another.
    pub async fn insert_device_code(&self, code: NewDeviceCode) -> DbResult<bool> {
        batch::ask(&self.codes, code).await
    }

    pub async fn device_code(&self, code_hash: &[u8]) -> DbResult<Option<DeviceCode>> {
        let sql = select_device_codes!("WHERE code_hash = $1");
        optional(&self.write, sql, args![code_hash]).await
    }

    pub async fn pending_device_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> DbResult<Option<DeviceCode>> {
        let sql = select_device_codes!("WHERE user_code = $1 AND status = $2 AND expires_at > $3");
        let pending = DeviceCodeStatus::Pending;
        optional(&self.write, sql, args![user_code, pending, now]).await
    }

    pub async fn record_poll(&self, id: i64, now: i64, interval: i64) -> DbResult<()> {
        let sql = "UPDATE device_codes SET last_poll_at = $1, interval_secs = $2 WHERE id = $3";
        execute(&self.write, sql, args![now, interval, id]).await?;
        Ok(())
    }

    /// Approves or denies a pending code, registering a new device first if
    /// asked, and writes the audit entries: all or nothing. `false` (and
    /// nothing written) if the code was no longer pending.
    pub async fn decide_device_code(&self, d: &DeviceDecision<'_>) -> DbResult<bool> {
        use DeviceCodeStatus::{Approved, Denied, Pending};
        let mut tx = self.write.begin().await?;
        let device_id = match d.device {
            Some(RegisterDevice::Existing(id)) => Some(id),
            Some(RegisterDevice::New {
                org_id,
                name,
                server_id,
            }) => Some(devices::insert(&mut tx, org_id, name, server_id, d.now).await?),
            None => None,
        };
        let status = if d.approve { Approved } else { Denied };
        let decide = "UPDATE device_codes SET status = $1, device_id = $2, decided_by = $3
                       WHERE id = $4 AND status = $5 AND expires_at > $6";
        let decision = args![status, device_id, d.user_id, d.code_id, Pending, d.now];
        if execute(&mut *tx, decide, decision).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let (true, Some(device_id)) = (d.approve, device_id) {
            let authorize = "UPDATE devices SET revoked_at = NULL, possible_copy_at = NULL,
                                    authorized_at = $1 WHERE id = $2";
            execute(&mut *tx, authorize, args![d.now, device_id]).await?;
        }
        for entry in d.audit {
            audit::insert(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Consumes an approved code and starts a token chain; `None` if another
    /// request consumed it first.
    /// Uses an approved code up and opens the device's token chain (bound to
    /// `dpop_jkt`, the key of the grant's DPoP proof, if any), in one
    /// transaction. Refused when the code is not approved any more (used by
    /// another poll) or the device was revoked since it was approved.
    pub async fn consume_device_code(
        &self,
        id: i64,
        device_id: i64,
        client_id: &str,
        dpop_jkt: Option<&str>,
        now: i64,
    ) -> DbResult<Consumed> {
        use DeviceCodeStatus::{Approved, Used};
        let mut tx = self.write.begin().await?;
        // A device removed since counts as revoked, and so does one whose
        // organization is suspended.
        let revoked = "SELECT COUNT(*) FROM devices d JOIN organizations o ON o.id = d.org_id
                        WHERE d.id = $1 AND d.revoked_at IS NULL AND o.suspended_at IS NULL";
        if scalar::<i64>(&mut *tx, revoked, args![device_id]).await? == 0 {
            return Ok(Consumed::DeviceRevoked);
        }
        let consume = "UPDATE device_codes SET status = $1 WHERE id = $2 AND status = $3";
        if execute(&mut *tx, consume, args![Used, id, Approved]).await? != 1 {
            return Ok(Consumed::AlreadyUsed);
        }
        let chain = "INSERT INTO token_chains (device_id, client_id, dpop_jkt, created_at)
                     VALUES ($1, $2, $3, $4) RETURNING id";
        let chain = scalar(&mut *tx, chain, args![device_id, client_id, dpop_jkt, now]).await?;
        tx.commit().await?;
        Ok(Consumed::Chain(chain))
    }
}

/// What [`Store::consume_device_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumed {
    /// The code is used up; the new chain's id.
    Chain(i64),
    /// Another poll used the code first.
    AlreadyUsed,
    /// The device was revoked (or removed) after the code was approved.
    DeviceRevoked,
}

super::sql::text_column!(DeviceCodeStatus { Pending => "pending", Approved => "approved", Denied => "denied", Used => "used" });
