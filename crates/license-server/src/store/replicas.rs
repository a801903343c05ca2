//! What replicas on one PostgreSQL database share that a single server keeps
//! in memory: attempt counters (`limits`) and the DPoP proofs taken
//! (`dpop`). These tables exist on PostgreSQL only
//! (`migrations/postgres/0002_replicas.sql`).

use super::sql::{execute, optional};
use super::{DbResult, Store};
use crate::limits::Entry;

impl Store {
    /// Applies `step` to the counter `(scope, key)` (`(0, now)` when it has
    /// none) in one transaction, holding its row lock: attempts on several
    /// replicas at once each see the ones before.
    pub async fn step_attempts<R>(
        &self,
        scope: &str,
        key: &str,
        now: i64,
        step: impl FnOnce(&mut Entry) -> R,
    ) -> DbResult<R> {
        let mut tx = self.write.begin().await?;
        let new = "INSERT INTO attempts (scope, key, n, at) VALUES ($1, $2, 0, $3)
                   ON CONFLICT DO NOTHING";
        execute(&mut *tx, new, args![scope, key, now]).await?;
        let sql = "SELECT n, at FROM attempts WHERE scope = $1 AND key = $2 FOR UPDATE";
        let (n, at): (i64, i64) = optional(&mut *tx, sql, args![scope, key])
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let mut entry = (u32::try_from(n).unwrap_or(u32::MAX), at);
        let answer = step(&mut entry);
        let sql = "UPDATE attempts SET n = $3, at = $4 WHERE scope = $1 AND key = $2";
        execute(
            &mut *tx,
            sql,
            args![scope, key, i64::from(entry.0), entry.1],
        )
        .await?;
        tx.commit().await?;
        Ok(answer)
    }

    /// The counter `(scope, key)`, if it has one.
    pub async fn attempts(&self, scope: &str, key: &str) -> DbResult<Option<Entry>> {
        let sql = "SELECT n, at FROM attempts WHERE scope = $1 AND key = $2";
        let row: Option<(i64, i64)> = optional(&self.read, sql, args![scope, key]).await?;
        Ok(row.map(|(n, at)| (u32::try_from(n).unwrap_or(u32::MAX), at)))
    }

    pub async fn forget_attempts(&self, scope: &str, key: &str) -> DbResult<()> {
        let sql = "DELETE FROM attempts WHERE scope = $1 AND key = $2";
        execute(&self.write, sql, args![scope, key]).await?;
        Ok(())
    }

    /// Records the DPoP proof `id` as taken until `forget_at`; `false` when
    /// it was taken before (by any replica) and is still remembered.
    pub async fn take_dpop_proof(&self, id: &str, now: i64, forget_at: i64) -> DbResult<bool> {
        let sql = "INSERT INTO dpop_proofs (id, forget_at) VALUES ($1, $2)
                   ON CONFLICT (id) DO UPDATE SET forget_at = EXCLUDED.forget_at
                    WHERE dpop_proofs.forget_at <= $3";
        Ok(execute(&self.write, sql, args![id, forget_at, now]).await? == 1)
    }

    /// Forgets counters and proofs that can no longer matter.
    pub(super) async fn purge_shared(&self, now: i64) -> DbResult<()> {
        let sql = "DELETE FROM attempts WHERE at < $1";
        execute(&self.write, sql, args![now - crate::limits::LOCK_SECS]).await?;
        let sql = "DELETE FROM dpop_proofs WHERE forget_at < $1";
        execute(&self.write, sql, args![now]).await?;
        Ok(())
    }
}
