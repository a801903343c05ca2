//! Device codes (RFC 8628): issued, polled, decided by an admin, consumed
//! into a token chain.

use sqlx::FromRow;

use super::audit::{self, NewAudit};
use super::sql::{execute, optional, scalar};
use super::{devices, DbResult, Store};

/// Where a device code stands. Stored as `pending`, `approved`, `denied`,
/// `used`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
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

impl Store {
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
        use DeviceCodeStatus::{Approved, Pending};
        // A user code must be unambiguous among live codes.
        let live = "SELECT EXISTS (SELECT 1 FROM device_codes
                     WHERE user_code = ? AND expires_at > ? AND status IN (?, ?))";
        let clash: bool =
            scalar(&self.write, live, args![user_code, now, Pending, Approved]).await?;
        if clash {
            return Ok(false);
        }
        let sql = "INSERT INTO device_codes (code_hash, user_code, client_id, scope, created_at,
                                             expires_at, interval_secs)
                   VALUES (?, ?, ?, ?, ?, ?, ?)";
        let code = args![code_hash, user_code, client_id, scope, now, expires_at, interval];
        execute(&self.write, sql, code).await?;
        Ok(true)
    }

    pub async fn device_code(&self, code_hash: &[u8]) -> DbResult<Option<DeviceCode>> {
        let sql = select_device_codes!("WHERE code_hash = ?");
        optional(&self.write, sql, args![code_hash]).await
    }

    pub async fn pending_device_code(
        &self,
        user_code: &str,
        now: i64,
    ) -> DbResult<Option<DeviceCode>> {
        let sql = select_device_codes!("WHERE user_code = ? AND status = ? AND expires_at > ?");
        let pending = DeviceCodeStatus::Pending;
        optional(&self.write, sql, args![user_code, pending, now]).await
    }

    pub async fn record_poll(&self, id: i64, now: i64, interval: i64) -> DbResult<()> {
        let sql = "UPDATE device_codes SET last_poll_at = ?, interval_secs = ? WHERE id = ?";
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
        let decide = "UPDATE device_codes SET status = ?, device_id = ?, decided_by = ?
                       WHERE id = ? AND status = ? AND expires_at > ?";
        let decision = args![status, device_id, d.user_id, d.code_id, Pending, d.now];
        if execute(&mut *tx, decide, decision).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let (true, Some(device_id)) = (d.approve, device_id) {
            let authorize = "UPDATE devices SET revoked_at = NULL, authorized_at = ? WHERE id = ?";
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
    /// Uses an approved code up and opens the device's token chain, in one
    /// transaction. Refused when the code is not approved any more (used by
    /// another poll) or the device was revoked since it was approved.
    pub async fn consume_device_code(
        &self,
        id: i64,
        device_id: i64,
        client_id: &str,
        now: i64,
    ) -> DbResult<Consumed> {
        use DeviceCodeStatus::{Approved, Used};
        let mut tx = self.write.begin().await?;
        // A device removed since counts as revoked.
        let revoked = "SELECT COUNT(*) = 0 FROM devices WHERE id = ? AND revoked_at IS NULL";
        if scalar::<bool>(&mut *tx, revoked, args![device_id]).await? {
            return Ok(Consumed::DeviceRevoked);
        }
        let consume = "UPDATE device_codes SET status = ? WHERE id = ? AND status = ?";
        if execute(&mut *tx, consume, args![Used, id, Approved]).await? != 1 {
            return Ok(Consumed::AlreadyUsed);
        }
        let chain = "INSERT INTO token_chains (device_id, client_id, created_at) VALUES (?, ?, ?)
                     RETURNING id";
        let chain = scalar(&mut *tx, chain, args![device_id, client_id, now]).await?;
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
