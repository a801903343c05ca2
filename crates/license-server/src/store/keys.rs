//! Signing keys and refresh-successor keys.

use sqlx::FromRow;

use super::sql::{execute, scalar};
use super::{DbResult, Store};

#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub secret_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub last_exp: i64,
}

impl Store {
    pub async fn keys(&self) -> DbResult<Vec<KeyRow>> {
        let sql = "SELECT kid, secret_key, created_at, retired_at, last_exp FROM signing_keys
                   ORDER BY created_at, rowid";
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.write)
            .await
    }

    /// Adds a key that signs from now on; the previous one is retired.
    pub async fn add_key(&self, kid: &str, secret: &[u8], now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        let retire = "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL";
        execute(&mut *tx, retire, args![now]).await?;
        let add = "INSERT INTO signing_keys (kid, secret_key, created_at) VALUES (?, ?, ?)";
        execute(&mut *tx, add, args![kid, secret, now]).await?;
        tx.commit().await
    }

    /// The refresh-successor keys, newest first.
    pub async fn successor_keys(&self) -> DbResult<Vec<Vec<u8>>> {
        let sql = "SELECT secret FROM successor_keys ORDER BY id DESC";
        sqlx::query_scalar_with(sql, args![])
            .fetch_all(&self.write)
            .await
    }

    /// Adds a refresh-successor key that derives successors from now on.
    pub async fn add_successor_key(&self, secret: &[u8], now: i64) -> DbResult<i64> {
        let sql = "INSERT INTO successor_keys (secret, created_at) VALUES (?, ?) RETURNING id";
        scalar(&self.write, sql, args![secret, now]).await
    }

    /// Adds `secret` as the first refresh-successor key, unless there is one.
    pub async fn ensure_successor_key(&self, secret: &[u8], now: i64) -> DbResult<()> {
        let sql = "INSERT INTO successor_keys (secret, created_at)
                   SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM successor_keys)";
        execute(&self.write, sql, args![secret, now]).await?;
        Ok(())
    }
}
