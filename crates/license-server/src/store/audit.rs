//! The audit log.

use sqlx::{AnyConnection, FromRow};

use super::sql::execute;
use super::{DbResult, Store};

#[derive(Debug, Clone, FromRow)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// An entry to write: who did what, when, in which organization.
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub org_id: Option<i64>,
    pub action: &'a str,
    pub detail: String,
}

/// Writes `entry` on `conn`, inside whatever transaction it is in.
pub(super) async fn insert(conn: &mut AnyConnection, entry: &NewAudit<'_>) -> DbResult<()> {
    let sql =
        "INSERT INTO audit_log (at, actor, org_id, action, detail) VALUES ($1, $2, $3, $4, $5)";
    let e = entry;
    execute(
        conn,
        sql,
        args![e.at, e.actor, e.org_id, e.action, &e.detail],
    )
    .await?;
    Ok(())
}

/// An audit log entry with its id (the vendor API's page cursor) and
/// organization.
#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub org_id: Option<i64>,
    pub action: String,
    pub detail: String,
}

impl Store {
    /// The newest audit entries (of one organization, or of all) with an id
    /// below `before`.
    pub async fn audit_page(
        &self,
        org_id: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<AuditRow>> {
        let sql = "SELECT id, at, actor, org_id, action, detail FROM audit_log
                    WHERE ($1 IS NULL OR org_id = $1) AND ($2 IS NULL OR id < $2)
                    ORDER BY id DESC LIMIT $3";
        sqlx::query_as_with(sql, args![org_id, before, limit])
            .fetch_all(&self.read)
            .await
    }

    pub async fn audit(&self, entry: &NewAudit<'_>) -> DbResult<()> {
        insert(&mut *self.write.acquire().await?, entry).await
    }

    pub async fn audit_log(&self, org_id: i64, limit: i64) -> DbResult<Vec<AuditEntry>> {
        let sql = "SELECT at, actor, action, detail FROM audit_log WHERE org_id = $1
                   ORDER BY id DESC LIMIT $2";
        sqlx::query_as_with(sql, args![org_id, limit])
            .fetch_all(&self.read)
            .await
    }
}
