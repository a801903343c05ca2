//! Signing keys and refresh-successor keys.

use sqlx::FromRow;

use super::sql::{execute, scalar};
use super::{DbResult, Store};

#[derive(Debug, Clone, FromRow)]
pub struct KeyRow {
    pub kid: String,
    /// The Ed25519 seed; empty once erased.
    pub secret_key: Vec<u8>,
    /// The Ed25519 public key (stored since keys can be erased).
    pub public_key: Option<Vec<u8>>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub withdrawn_at: Option<i64>,
    pub last_exp: i64,
}

/// An erased private key: an empty blob.
const ERASED: &[u8] = &[];

impl Store {
    pub async fn keys(&self) -> DbResult<Vec<KeyRow>> {
        let sql = "SELECT kid, secret_key, public_key, created_at, retired_at, withdrawn_at,
                          last_exp
                     FROM signing_keys ORDER BY created_at, rowid";
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.write)
            .await
    }

    /// Adds a key that signs from now on; the previous one is retired.
    pub async fn add_key(&self, kid: &str, secret: &[u8], public: &[u8], now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        let retire = "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL";
        execute(&mut *tx, retire, args![now]).await?;
        let add = "INSERT INTO signing_keys (kid, secret_key, public_key, created_at)
                   VALUES ($1, $2, $3, $4)";
        execute(&mut *tx, add, args![kid, secret, public, now]).await?;
        tx.commit().await
    }

    /// Stores the public key of a row from before public keys were stored.
    pub async fn set_public_key(&self, kid: &str, public: &[u8]) -> DbResult<()> {
        let sql = "UPDATE signing_keys SET public_key = $1 WHERE kid = $2 AND public_key IS NULL";
        execute(&self.write, sql, args![public, kid]).await?;
        Ok(())
    }

    /// Withdraws a retired key: out of the JWKS, its private key erased.
    /// `false` if there is no such retired key.
    pub async fn withdraw_key(&self, kid: &str, now: i64) -> DbResult<bool> {
        let sql = "UPDATE signing_keys SET withdrawn_at = COALESCE(withdrawn_at, $1),
                          secret_key = $3
                    WHERE kid = $2 AND retired_at IS NOT NULL";
        Ok(execute(&self.write, sql, args![now, kid, ERASED]).await? == 1)
    }

    /// Erases the private keys of keys retired before `before`: they sign
    /// nothing any more. Returns how many were erased.
    pub async fn erase_retired_secrets(&self, before: i64) -> DbResult<u64> {
        let sql = "UPDATE signing_keys SET secret_key = $2
                    WHERE retired_at IS NOT NULL AND retired_at < $1 AND length(secret_key) > 0
                      AND public_key IS NOT NULL";
        execute(&self.write, sql, args![before, ERASED]).await
    }

    /// Every key rollover: (signed by, vouched for, JWS), oldest first.
    pub async fn key_rollovers(&self) -> DbResult<Vec<(String, String, String)>> {
        let sql = "SELECT signed_by, next_kid, jws FROM key_rollovers ORDER BY created_at, rowid";
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.write)
            .await
    }

    pub async fn add_key_rollover(
        &self,
        signed_by: &str,
        next_kid: &str,
        jws: &str,
        now: i64,
    ) -> DbResult<()> {
        let sql = "INSERT INTO key_rollovers (signed_by, next_kid, jws, created_at)
                   VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        execute(&self.write, sql, args![signed_by, next_kid, jws, now]).await?;
        Ok(())
    }

    /// The refresh-successor keys, newest first.
    pub async fn successor_keys(&self) -> DbResult<Vec<Vec<u8>>> {
        let sql = "SELECT secret FROM successor_keys ORDER BY id DESC";
        sqlx::query_scalar_with(sql, args![])
            .fetch_all(&self.write)
            .await
    }

    /// When each refresh-successor key was made: (id, created at), newest
    /// first (the secrets stay in the store).
    pub async fn successor_key_times(&self) -> DbResult<Vec<(i64, i64)>> {
        let sql = "SELECT id, created_at FROM successor_keys ORDER BY id DESC";
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.write)
            .await
    }

    /// Adds a refresh-successor key that derives successors from now on.
    pub async fn add_successor_key(&self, secret: &[u8], now: i64) -> DbResult<i64> {
        let sql = "INSERT INTO successor_keys (secret, created_at) VALUES ($1, $2) RETURNING id";
        scalar(&self.write, sql, args![secret, now]).await
    }

    /// Adds `secret` as the first refresh-successor key, unless there is one.
    pub async fn ensure_successor_key(&self, secret: &[u8], now: i64) -> DbResult<()> {
        let sql = "INSERT INTO successor_keys (secret, created_at)
                   SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM successor_keys)";
        execute(&self.write, sql, args![secret, now]).await?;
        Ok(())
    }
}
