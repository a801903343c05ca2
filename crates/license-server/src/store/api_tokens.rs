//! Vendor API tokens (stored only as SHA-256 hashes), and the two reads the
//! vendor API needs beyond the admin pages': the audit log paged by entry
//! id, across organizations, and every membership.

use sqlx::FromRow;

use super::sql::{execute, optional};
use super::{DbResult, Store};

/// What a token may do. Stored as `read`, `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiScope {
    /// Read anything.
    Read,
    /// Read anything and change it.
    Write,
}

impl ApiScope {
    pub const ALL: [ApiScope; 2] = [ApiScope::Read, ApiScope::Write];

    /// The stored and posted value.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Write => "write",
        }
    }

    pub fn parse(s: &str) -> Option<ApiScope> {
        ApiScope::ALL.into_iter().find(|a| a.as_str() == s.trim())
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scope: ApiScope,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// `last used` is written at most this often per token.
const LAST_USED_EVERY_SECS: i64 = 60;

const SELECT_TOKENS: &str =
    "SELECT id, name, scope, created_by, created_at, last_used_at, revoked_at FROM api_tokens ";

impl Store {
    /// Stores a new token; `None` when a live token has this name.
    pub async fn create_api_token(
        &self,
        name: &str,
        token_hash: &[u8],
        scope: ApiScope,
        created_by: &str,
        now: i64,
    ) -> DbResult<Option<i64>> {
        let sql = "INSERT INTO api_tokens (name, token_hash, scope, created_by, created_at)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id";
        let row: Option<(i64,)> = optional(
            &self.write,
            sql,
            args![name, token_hash, scope, created_by, now],
        )
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Every token, live ones first, newest first.
    pub async fn api_tokens(&self) -> DbResult<Vec<ApiToken>> {
        let sql = format!("{SELECT_TOKENS} ORDER BY revoked_at IS NOT NULL, id DESC");
        sqlx::query_as_with(&sql, args![])
            .fetch_all(&self.read)
            .await
    }

    /// The live token with this hash; its `last used` time is brought up to
    /// `now` (at most once a minute).
    pub async fn use_api_token(&self, token_hash: &[u8], now: i64) -> DbResult<Option<ApiToken>> {
        let sql = format!("{SELECT_TOKENS} WHERE token_hash = $1 AND revoked_at IS NULL");
        let token: Option<ApiToken> = optional(&self.read, &sql, args![token_hash]).await?;
        if let Some(t) = &token {
            if t.last_used_at
                .is_none_or(|at| now - at >= LAST_USED_EVERY_SECS)
            {
                let touch = "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2";
                execute(&self.write, touch, args![now, t.id]).await?;
            }
        }
        Ok(token)
    }

    /// Revokes a live token; `None` if there is none with this id.
    pub async fn revoke_api_token(&self, id: i64, now: i64) -> DbResult<Option<String>> {
        let sql = "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
                   RETURNING name";
        let row: Option<(String,)> = optional(&self.write, sql, args![now, id]).await?;
        Ok(row.map(|(name,)| name))
    }
}

super::sql::text_column!(ApiScope { Read => "read", Write => "write" });
