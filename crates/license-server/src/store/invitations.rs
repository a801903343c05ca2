//! Invitations: single-use links that expire, stored as the SHA-256 of the
//! token only. Accepting one creates the user (or adds the organization to
//! an existing one) in the same transaction that uses the link up.

use sqlx::FromRow;

use super::sql::{execute, optional, scalar};
use super::{DbResult, Store};
use crate::roles::Role;

#[derive(Debug, Clone, FromRow)]
pub struct Invitation {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub org_id: Option<i64>,
    pub org_name: Option<String>,
    pub invited_by: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub struct NewInvitation<'a> {
    pub token_hash: &'a [u8],
    pub email: &'a str,
    pub role: Role,
    pub org_id: Option<i64>,
    pub invited_by: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// What accepting an invitation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new user, with the password given.
    NewUser(i64),
    /// An existing user, now also a member of the invitation's organization
    /// (their password unchanged).
    ExistingUser(i64),
    /// Used already, expired, or never issued.
    Invalid,
}

impl Store {
    pub async fn create_invitation(&self, inv: &NewInvitation<'_>) -> DbResult<i64> {
        let mut tx = self.write.begin().await?;
        // Expired and used invitations go.
        let purge = "DELETE FROM invitations WHERE expires_at <= $1 OR used_at IS NOT NULL";
        execute(&mut *tx, purge, args![inv.now]).await?;
        let sql = "INSERT INTO invitations
                       (token_hash, email, role, org_id, invited_by, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
        let row = args![
            inv.token_hash,
            inv.email,
            inv.role,
            inv.org_id,
            inv.invited_by,
            inv.now,
            inv.expires_at
        ];
        let id = scalar(&mut *tx, sql, row).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The live invitation with this token hash.
    pub async fn invitation(&self, token_hash: &[u8], now: i64) -> DbResult<Option<Invitation>> {
        let sql = "SELECT i.id, i.email, i.role, i.org_id, o.name AS org_name, i.invited_by,
                          i.expires_at, i.used_at
                     FROM invitations i LEFT JOIN organizations o ON o.id = i.org_id
                    WHERE i.token_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2";
        optional(&self.read, sql, args![token_hash, now]).await
    }

    /// Uses the invitation up: creates its user with `password_hash` (or
    /// finds the existing one) and adds the membership, in one transaction.
    pub async fn accept_invitation(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        now: i64,
    ) -> DbResult<Accepted> {
        let mut tx = self.write.begin().await?;
        let take = "UPDATE invitations SET used_at = $1
                     WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $3
                    RETURNING email, role, org_id";
        let taken: Option<(String, Role, Option<i64>)> =
            optional(&mut *tx, take, args![now, token_hash, now]).await?;
        let Some((email, role, org_id)) = taken else {
            return Ok(Accepted::Invalid);
        };
        let existing = "SELECT id FROM users WHERE lower(email) = lower($1)";
        let existing: Option<(i64,)> = optional(&mut *tx, existing, args![&email]).await?;
        let accepted = match existing {
            Some((id,)) => Accepted::ExistingUser(id),
            None => {
                let sql = "INSERT INTO users (email, password_hash, role, created_at)
                           VALUES ($1, $2, $3, $4) RETURNING id";
                let id = scalar(&mut *tx, sql, args![&email, password_hash, role, now]).await?;
                Accepted::NewUser(id)
            }
        };
        if let (Accepted::NewUser(user) | Accepted::ExistingUser(user), Some(org)) =
            (accepted, org_id)
        {
            let member = "INSERT INTO memberships (user_id, org_id) VALUES ($1, $2)
                          ON CONFLICT DO NOTHING";
            execute(&mut *tx, member, args![user, org]).await?;
        }
        tx.commit().await?;
        Ok(accepted)
    }
}
