//! Admin users, their memberships and their sessions.

use sqlx::FromRow;

use super::sql::{execute, optional, scalar};
use super::{DbResult, Org, Store};

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub email: String,
    pub org_id: Option<i64>,
}

impl Store {
    pub async fn user_count(&self) -> DbResult<i64> {
        scalar(&self.read, "SELECT COUNT(*) FROM users", args![]).await
    }

    pub async fn create_user(&self, email: &str, password_hash: &str, now: i64) -> DbResult<i64> {
        let sql =
            "INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?) RETURNING id";
        scalar(&self.write, sql, args![email, password_hash, now]).await
    }

    pub async fn user_by_email(&self, email: &str) -> DbResult<Option<User>> {
        let sql = "SELECT id, email, password_hash FROM users WHERE email = ? COLLATE NOCASE";
        optional(&self.read, sql, args![email]).await
    }

    pub async fn add_member(&self, user_id: i64, org_id: i64) -> DbResult<()> {
        let sql = "INSERT OR IGNORE INTO memberships (user_id, org_id) VALUES (?, ?)";
        execute(&self.write, sql, args![user_id, org_id]).await?;
        Ok(())
    }

    pub async fn user_orgs(&self, user_id: i64) -> DbResult<Vec<Org>> {
        let sql = "SELECT o.id, o.name, o.features, o.hub_server_name, o.hub_server_url,
                          o.renewal_date, o.valid_from, o.valid_until
                     FROM organizations o JOIN memberships m ON m.org_id = o.id
                    WHERE m.user_id = ? ORDER BY o.name";
        sqlx::query_as_with(sql, args![user_id])
            .fetch_all(&self.read)
            .await
    }

    pub async fn is_member(&self, user_id: i64, org_id: i64) -> DbResult<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = ? AND org_id = ?)";
        scalar(&self.read, sql, args![user_id, org_id]).await
    }

    /// Starts a session (in `org_id`, if given); expired sessions go.
    pub async fn create_session(
        &self,
        id_hash: &[u8],
        user_id: i64,
        org_id: Option<i64>,
        now: i64,
        expires_at: i64,
    ) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        let purge = "DELETE FROM sessions WHERE expires_at <= ?";
        execute(&mut *tx, purge, args![now]).await?;
        let sql = "INSERT INTO sessions (id_hash, user_id, org_id, created_at, expires_at)
                   VALUES (?, ?, ?, ?, ?)";
        let session = args![id_hash, user_id, org_id, now, expires_at];
        execute(&mut *tx, sql, session).await?;
        tx.commit().await
    }

    pub async fn session(&self, id_hash: &[u8], now: i64) -> DbResult<Option<SessionRow>> {
        let sql =
            "SELECT s.user_id, u.email, s.org_id FROM sessions s JOIN users u ON u.id = s.user_id
                    WHERE s.id_hash = ? AND s.expires_at > ?";
        optional(&self.read, sql, args![id_hash, now]).await
    }

    pub async fn set_session_org(&self, id_hash: &[u8], org_id: i64) -> DbResult<()> {
        let sql = "UPDATE sessions SET org_id = ? WHERE id_hash = ?";
        execute(&self.write, sql, args![org_id, id_hash]).await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> DbResult<()> {
        let sql = "DELETE FROM sessions WHERE id_hash = ?";
        execute(&self.write, sql, args![id_hash]).await?;
        Ok(())
    }
}
