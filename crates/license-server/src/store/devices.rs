//! Devices: the servers an organization licenses, each with its Server ID.

use sqlx::{AnyConnection, FromRow};

use super::audit::{self, NewAudit};
use super::sql::{execute, optional, scalar};
use super::{DbResult, Store};

/// `SELECT` the columns of [`Device`] `FROM devices`, then the rest.
macro_rules! select_devices {
    ($rest:literal) => {
        concat!("SELECT id, org_id, name, server_id, created_at, authorized_at, last_seen, token_expiry, revoked_at, possible_copy_at FROM devices ", $rest)
    };
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
    /// When the server last saw signs of a second copy of this device's
    /// console (see `oauth::token`); cleared when it is authorized again.
    pub possible_copy_at: Option<i64>,
}

/// Registers a device on `conn`; returns its id.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    org_id: i64,
    name: &str,
    server_id: &str,
    now: i64,
) -> DbResult<i64> {
    let sql = "INSERT INTO devices (org_id, name, server_id, created_at) VALUES ($1, $2, $3, $4)
               RETURNING id";
    scalar(conn, sql, args![org_id, name, server_id, now]).await
}

/// Revokes the device and every token chain it holds, on `conn`. The
/// caller forgets the issued tokens once this is committed.
pub(super) async fn revoke(conn: &mut AnyConnection, id: i64, now: i64) -> DbResult<()> {
    let device = "UPDATE devices SET revoked_at = $1, token_expiry = NULL WHERE id = $2";
    execute(&mut *conn, device, args![now, id]).await?;
    let chains =
        "UPDATE token_chains SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL";
    execute(&mut *conn, chains, args![now, id]).await?;
    Ok(())
}

impl Store {
    pub async fn create_device(
        &self,
        org_id: i64,
        name: &str,
        server_id: &str,
        now: i64,
    ) -> DbResult<Device> {
        let id = insert(
            &mut *self.write.acquire().await?,
            org_id,
            name,
            server_id,
            now,
        )
        .await?;
        let sql = select_devices!("WHERE id = $1");
        sqlx::query_as_with(sql, args![id])
            .fetch_one(&self.write)
            .await
    }

    /// Registers a device with its audit entry, in one transaction.
    pub async fn register_device(
        &self,
        org_id: i64,
        name: &str,
        server_id: &str,
        entry: &NewAudit<'_>,
    ) -> DbResult<i64> {
        let mut tx = self.write.begin().await?;
        let id = insert(&mut tx, org_id, name, server_id, entry.at).await?;
        audit::insert(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn devices(&self, org_id: i64) -> DbResult<Vec<Device>> {
        let sql = select_devices!("WHERE org_id = $1 ORDER BY name");
        sqlx::query_as_with(sql, args![org_id])
            .fetch_all(&self.read)
            .await
    }

    pub async fn device(&self, id: i64) -> DbResult<Option<Device>> {
        let sql = select_devices!("WHERE id = $1");
        optional(&self.read, sql, args![id]).await
    }

    pub async fn device_by_name(&self, org_id: i64, name: &str) -> DbResult<Option<Device>> {
        let sql = select_devices!("WHERE org_id = $1 AND name = $2");
        optional(&self.read, sql, args![org_id, name]).await
    }

    /// Revokes the device and every token chain it holds.
    pub async fn revoke_device(&self, id: i64, now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        revoke(&mut tx, id, now).await?;
        tx.commit().await?;
        self.issued.forget_all();
        Ok(())
    }

    pub async fn touch_device(&self, id: i64, now: i64) -> DbResult<()> {
        let sql = "UPDATE devices SET last_seen = $1 WHERE id = $2";
        execute(&self.write, sql, args![now, id]).await?;
        Ok(())
    }
}
