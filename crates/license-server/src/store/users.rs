//! Admin users, their roles and memberships, and their sessions.

use sqlx::FromRow;

use super::sql::{execute, optional, scalar};
use super::{DbResult, Org, Store};
use crate::roles::Role;

#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled_at: Option<i64>,
}

/// A user as the users pages and `user list` show them.
#[derive(Debug, Clone, FromRow)]
pub struct UserSummary {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    /// The names of the user's organizations, comma-separated.
    pub orgs: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub org_id: Option<i64>,
}

/// Why a user was not disabled or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    Done,
    NoSuchUser,
    /// The vendor would be left without an operator who can sign in.
    LastVendorOperator,
}

/// `SELECT` of [`UserSummary`], then `$rest` (`WHERE` ...).
macro_rules! select_user_summaries {
    ($rest:literal) => {
        concat!(
            "SELECT u.id, u.email, u.role, u.disabled_at, u.created_at,
                    COALESCE((SELECT string_agg(o.name, ', ' ORDER BY o.name)
                                FROM memberships m JOIN organizations o ON o.id = m.org_id
                               WHERE m.user_id = u.id), '') AS orgs
               FROM users u ",
            $rest
        )
    };
}

impl Store {
    pub async fn user_count(&self) -> DbResult<i64> {
        scalar(&self.read, "SELECT COUNT(*) FROM users", args![]).await
    }

    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        now: i64,
    ) -> DbResult<i64> {
        let sql =
            "INSERT INTO users (email, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
                   RETURNING id";
        scalar(&self.write, sql, args![email, password_hash, role, now]).await
    }

    pub async fn user_by_email(&self, email: &str) -> DbResult<Option<User>> {
        let sql = "SELECT id, email, password_hash, role, disabled_at FROM users
                    WHERE lower(email) = lower($1)";
        optional(&self.read, sql, args![email]).await
    }

    pub async fn user(&self, id: i64) -> DbResult<Option<User>> {
        let sql = "SELECT id, email, password_hash, role, disabled_at FROM users WHERE id = $1";
        optional(&self.read, sql, args![id]).await
    }

    /// Every user, by email.
    pub async fn users(&self) -> DbResult<Vec<UserSummary>> {
        let sql = select_user_summaries!("ORDER BY u.email");
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.read)
            .await
    }

    /// The members of an organization, by email.
    pub async fn org_members(&self, org_id: i64) -> DbResult<Vec<UserSummary>> {
        let sql = select_user_summaries!(
            "WHERE u.id IN (SELECT user_id FROM memberships WHERE org_id = $1) ORDER BY u.email"
        );
        sqlx::query_as_with(sql, args![org_id])
            .fetch_all(&self.read)
            .await
    }

    pub async fn set_password(&self, user_id: i64, password_hash: &str) -> DbResult<()> {
        let sql = "UPDATE users SET password_hash = $1 WHERE id = $2";
        execute(&self.write, sql, args![password_hash, user_id]).await?;
        Ok(())
    }

    /// Disables (`Some(now)`) or enables (`None`) a user; a disabled user's
    /// sessions end. The last vendor operator who can sign in stays.
    pub async fn set_user_disabled(&self, user_id: i64, at: Option<i64>) -> DbResult<UserChange> {
        let mut tx = self.write.begin().await?;
        if at.is_some() && is_last_vendor(&mut tx, user_id).await? {
            return Ok(UserChange::LastVendorOperator);
        }
        let sql = "UPDATE users SET disabled_at = $1 WHERE id = $2";
        if execute(&mut *tx, sql, args![at, user_id]).await? != 1 {
            return Ok(UserChange::NoSuchUser);
        }
        if at.is_some() {
            let sessions = "DELETE FROM sessions WHERE user_id = $1";
            execute(&mut *tx, sessions, args![user_id]).await?;
        }
        tx.commit().await?;
        Ok(UserChange::Done)
    }

    /// Removes a user (their sessions and memberships go with them). The
    /// last vendor operator who can sign in stays.
    pub async fn remove_user(&self, user_id: i64) -> DbResult<UserChange> {
        let mut tx = self.write.begin().await?;
        if is_last_vendor(&mut tx, user_id).await? {
            return Ok(UserChange::LastVendorOperator);
        }
        let sql = "DELETE FROM users WHERE id = $1";
        if execute(&mut *tx, sql, args![user_id]).await? != 1 {
            return Ok(UserChange::NoSuchUser);
        }
        tx.commit().await?;
        Ok(UserChange::Done)
    }

    /// Every membership, as (user id, organization id).
    pub async fn memberships(&self) -> DbResult<Vec<(i64, i64)>> {
        let sql = "SELECT user_id, org_id FROM memberships ORDER BY user_id, org_id";
        sqlx::query_as_with(sql, args![])
            .fetch_all(&self.read)
            .await
    }

    pub async fn add_member(&self, user_id: i64, org_id: i64) -> DbResult<()> {
        let sql = "INSERT INTO memberships (user_id, org_id) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING";
        execute(&self.write, sql, args![user_id, org_id]).await?;
        Ok(())
    }

    /// Takes the user out of the organization; their sessions in it end.
    pub async fn remove_member(&self, user_id: i64, org_id: i64) -> DbResult<bool> {
        let mut tx = self.write.begin().await?;
        let sql = "DELETE FROM memberships WHERE user_id = $1 AND org_id = $2";
        let removed = execute(&mut *tx, sql, args![user_id, org_id]).await? == 1;
        let sessions = "UPDATE sessions SET org_id = NULL WHERE user_id = $1 AND org_id = $2";
        execute(&mut *tx, sessions, args![user_id, org_id]).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// The organizations the user works in: every one for a vendor
    /// operator, their memberships for an organization admin.
    pub async fn user_orgs(&self, user_id: i64, role: Role) -> DbResult<Vec<Org>> {
        if role.may(crate::roles::Action::SeeEveryOrganization) {
            return self.orgs().await;
        }
        let sql = "SELECT o.id, o.name, o.features, o.hub_server_name, o.hub_server_url,
                          o.renewal_date, o.valid_from, o.valid_until, o.suspended_at, o.on_copy,
                          o.offline_days
                     FROM organizations o JOIN memberships m ON m.org_id = o.id
                    WHERE m.user_id = $1 ORDER BY o.name";
        sqlx::query_as_with(sql, args![user_id])
            .fetch_all(&self.read)
            .await
    }

    pub async fn is_member(&self, user_id: i64, org_id: i64) -> DbResult<bool> {
        let sql = "SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND org_id = $2";
        Ok(scalar::<i64>(&self.read, sql, args![user_id, org_id]).await? > 0)
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
        let purge = "DELETE FROM sessions WHERE expires_at <= $1";
        execute(&mut *tx, purge, args![now]).await?;
        let sql = "INSERT INTO sessions (id_hash, user_id, org_id, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5)";
        let session = args![id_hash, user_id, org_id, now, expires_at];
        execute(&mut *tx, sql, session).await?;
        tx.commit().await
    }

    /// The live session with this id, of a user who is not disabled.
    pub async fn session(&self, id_hash: &[u8], now: i64) -> DbResult<Option<SessionRow>> {
        let sql = "SELECT s.user_id, u.email, u.role, s.org_id
                     FROM sessions s JOIN users u ON u.id = s.user_id
                    WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL";
        optional(&self.read, sql, args![id_hash, now]).await
    }

    pub async fn set_session_org(&self, id_hash: &[u8], org_id: i64) -> DbResult<()> {
        let sql = "UPDATE sessions SET org_id = $1 WHERE id_hash = $2";
        execute(&self.write, sql, args![org_id, id_hash]).await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> DbResult<()> {
        let sql = "DELETE FROM sessions WHERE id_hash = $1";
        execute(&self.write, sql, args![id_hash]).await?;
        Ok(())
    }

    /// Ends every session of the user but `keep` (after a password change).
    pub async fn end_other_sessions(&self, user_id: i64, keep: &[u8]) -> DbResult<()> {
        let sql = "DELETE FROM sessions WHERE user_id = $1 AND id_hash != $2";
        execute(&self.write, sql, args![user_id, keep]).await?;
        Ok(())
    }
}

/// Whether `user_id` is the only vendor operator who is not disabled.
async fn is_last_vendor(tx: &mut sqlx::AnyConnection, user_id: i64) -> DbResult<bool> {
    let sql = "SELECT COUNT(*) FROM users
                WHERE id = $1 AND role = 'vendor' AND disabled_at IS NULL
                  AND (SELECT COUNT(*) FROM users
                        WHERE role = 'vendor' AND disabled_at IS NULL) = 1";
    Ok(scalar::<i64>(&mut *tx, sql, args![user_id]).await? > 0)
}
