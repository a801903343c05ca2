//! Token chains and refresh tokens: what a grant reads and writes. Pairs are
//! stored and refresh tokens looked up through the batch tasks of
//! [`super::batch`]; tokens this process stored are answered from
//! [`super::issued`].

use sqlx::{AnyPool, FromRow};

use super::batch::ask;
use super::sql::{execute, optional};
use super::{feature_list, hex, to_json, Backend, DbResult, NewAudit, Store};

/// The columns of [`TokenSubject`], for a query joining `devices d` and
/// `organizations o`.
macro_rules! subject_columns {
    () => {
        "d.id AS device_id, d.server_id, o.name AS org_name, o.features, \
         o.renewal_date, o.hub_server_name, o.hub_server_url"
    };
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshRow {
    pub token_hash: Vec<u8>,
    pub chain_id: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub successor_claims: Option<String>,
    pub successor_kid: Option<String>,
    pub client_id: String,
    pub chain_revoked: Option<i64>,
    /// When the device was revoked or its organization suspended.
    pub device_revoked: Option<i64>,
    /// The DPoP key (JWK thumbprint) the chain is bound to, if any.
    pub dpop_jkt: Option<String>,
    /// The device (its id is the chain's device) and organization a
    /// successor token is issued to, read in the same query.
    #[sqlx(flatten)]
    pub subject: TokenSubject,
}

/// What a license token says about its device and organization.
#[derive(Debug, Clone, FromRow)]
pub struct TokenSubject {
    pub device_id: i64,
    pub server_id: String,
    pub org_name: String,
    pub features: String,
    pub renewal_date: Option<i64>,
    pub hub_server_name: String,
    pub hub_server_url: String,
}

impl TokenSubject {
    pub fn feature_list(&self) -> Vec<String> {
        feature_list(&self.features)
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AccessRow {
    pub chain_id: i64,
    pub device_id: i64,
    pub chain_revoked: Option<i64>,
    /// When the device was revoked or its organization suspended.
    pub device_revoked: Option<i64>,
    /// The DPoP key (JWK thumbprint) the chain is bound to, if any.
    pub dpop_jkt: Option<String>,
}

/// A newly issued token pair, as stored.
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub chain_id: i64,
    pub client_id: String,
    /// The chain's DPoP key, if it is bound (kept with the refresh token
    /// this process remembers).
    pub dpop_jkt: Option<String>,
    /// The device and organization the pair is issued to.
    pub subject: TokenSubject,
    pub refresh_hash: Vec<u8>,
    pub refresh_expires_at: i64,
    pub access_expires_at: i64,
    pub kid: String,
    /// Also raise the key's `last_exp` to this (throttled by the caller).
    pub key_last_exp: Option<i64>,
    pub now: i64,
    /// The refresh token being exchanged for this pair, if any.
    pub exchanged: Option<Exchanged>,
}

/// A refresh token exchanged for a new pair: marked used, with what is needed
/// to re-issue the same pair to a client that lost the response.
#[derive(Debug, Clone)]
pub struct Exchanged {
    pub hash: Vec<u8>,
    pub successor_claims: String,
}
impl Store {
    /// Stores a new pair: refresh token hash, access token id, device expiry.
    /// When `t.exchanged` names the refresh token being exchanged, it is
    /// marked used in the same transaction (with the claims needed to re-issue
    /// the same pair); `false` if another request used it first, or if its
    /// chain or device has been revoked.
    ///
    /// Pairs are queued to one writer task that stores everything waiting in
    /// one transaction (group commit): under load, one commit and one round
    /// trip to the connection's thread serve many token grants.
    pub async fn store_tokens(&self, t: NewTokens) -> DbResult<bool> {
        let row = RefreshRow {
            token_hash: t.refresh_hash.clone(),
            chain_id: t.chain_id,
            expires_at: t.refresh_expires_at,
            used_at: None,
            successor_claims: None,
            successor_kid: None,
            client_id: t.client_id.clone(),
            chain_revoked: None,
            device_revoked: None,
            dpop_jkt: t.dpop_jkt.clone(),
            subject: t.subject.clone(),
        };
        let stored = ask(&self.tokens, t).await?;
        if stored {
            self.issued.remember(row);
        }
        Ok(stored)
    }

    /// The refresh token with this hash, with its chain, device and
    /// organization.
    ///
    /// A token this process stored is answered once from memory (see
    /// [`super::issued`]).
    ///
    /// Other lookups are queued to one reader task that answers everything
    /// waiting with one query, like the token writer.
    pub async fn refresh_token(&self, hash: &[u8]) -> DbResult<Option<RefreshRow>> {
        if let Some(row) = self.issued.take(hash) {
            return Ok(Some(row));
        }
        ask(&self.lookups, hash.to_vec()).await
    }

    /// The device and organization a token for `device_id` is issued to.
    pub async fn token_subject(&self, device_id: i64) -> DbResult<Option<TokenSubject>> {
        let sql = concat!(
            "SELECT ",
            subject_columns!(),
            " FROM devices d JOIN organizations o ON o.id = d.org_id WHERE d.id = $1"
        );
        optional(&self.read, sql, args![device_id]).await
    }

    /// Whether the refresh token with this hash has been exchanged.
    pub async fn refresh_token_used(&self, hash: &[u8]) -> DbResult<Option<bool>> {
        let sql = "SELECT used_at FROM refresh_tokens WHERE token_hash = $1";
        let used: Option<(Option<i64>,)> = optional(&self.write, sql, args![hash]).await?;
        Ok(used.map(|(used,)| used.is_some()))
    }

    pub async fn revoke_chain(&self, chain_id: i64, now: i64) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        let chain = "UPDATE token_chains SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2";
        execute(&mut *tx, chain, args![now, chain_id]).await?;
        // The device keeps its authorization record but holds no live token.
        let device = "UPDATE devices SET token_expiry = NULL
                       WHERE id = (SELECT device_id FROM token_chains WHERE id = $1)
                         AND NOT EXISTS (SELECT 1 FROM token_chains
                                          WHERE device_id = devices.id AND revoked_at IS NULL)";
        execute(&mut *tx, device, args![chain_id]).await?;
        tx.commit().await?;
        self.issued.forget_all();
        Ok(())
    }

    /// Counts a retry answered on the chain (a refresh token presented again
    /// while its successor was unused) and writes its audit `entry`, in one
    /// transaction; returns the time of the chain's previous retry, if any.
    pub async fn record_retry(
        &self,
        chain_id: i64,
        now: i64,
        entry: &NewAudit<'_>,
    ) -> DbResult<Option<i64>> {
        let mut tx = self.write.begin().await?;
        super::audit::insert(&mut tx, entry).await?;
        let sql = "SELECT last_retry_at FROM token_chains WHERE id = $1";
        let previous: Option<(Option<i64>,)> = optional(&mut *tx, sql, args![chain_id]).await?;
        let sql = "UPDATE token_chains SET retries = retries + 1, last_retry_at = $1 WHERE id = $2";
        execute(&mut *tx, sql, args![now, chain_id]).await?;
        tx.commit().await?;
        Ok(previous.and_then(|(p,)| p))
    }

    /// Marks the chain's device a possible copy.
    pub async fn mark_possible_copy(&self, chain_id: i64, now: i64) -> DbResult<()> {
        let sql = "UPDATE devices SET possible_copy_at = $1
                    WHERE id = (SELECT device_id FROM token_chains WHERE id = $2)";
        execute(&self.write, sql, args![now, chain_id]).await?;
        Ok(())
    }

    pub async fn chain(&self, chain_id: i64) -> DbResult<Option<AccessRow>> {
        let sql = "SELECT c.id AS chain_id, c.device_id, c.revoked_at AS chain_revoked,
                          COALESCE(d.revoked_at, o.suspended_at) AS device_revoked, c.dpop_jkt
                     FROM token_chains c JOIN devices d ON d.id = c.device_id
                     JOIN organizations o ON o.id = d.org_id
                    WHERE c.id = $1";
        optional(&self.read, sql, args![chain_id]).await
    }

    /// Deletes what can no longer be used (expired codes and tokens).
    pub async fn purge_expired(&self, now: i64) -> DbResult<()> {
        let before = now - 86_400;
        // Device codes go five minutes after they expire (a console still
        // polling meanwhile is told `expired_token`), not a day after.
        let codes = "DELETE FROM device_codes WHERE expires_at < $1";
        execute(&self.write, codes, args![now - 300]).await?;
        let tokens = "DELETE FROM refresh_tokens WHERE expires_at < $1";
        execute(&self.write, tokens, args![before]).await?;
        if self.backend == Backend::Postgres {
            self.purge_shared(now).await?;
        }
        Ok(())
    }
}

/// The refresh tokens with these hashes (one query whatever their number),
/// each answer in the order asked.
pub(super) async fn lookup_refresh_tokens(
    pool: &AnyPool,
    backend: Backend,
    hashes: &[&Vec<u8>],
) -> DbResult<Vec<Option<RefreshRow>>> {
    let hex_hashes: Vec<String> = hashes.iter().map(|h| hex(h)).collect();
    let sql = match backend {
        Backend::Sqlite => LOOKUP_SQLITE,
        Backend::Postgres => LOOKUP_POSTGRES,
    };
    let rows: Vec<RefreshRow> = sqlx::query_as_with(sql, args![to_json(&hex_hashes)?])
        .fetch_all(pool)
        .await?;
    Ok(hashes
        .iter()
        .map(|h| rows.iter().find(|r| r.token_hash == **h).cloned())
        .collect())
}

/// The refresh tokens whose hashes are in the JSON array of hex strings `$1`.
macro_rules! lookup_where {
    ($in_hashes:literal) => {
        concat!(
            "SELECT r.token_hash, r.chain_id, r.expires_at, r.used_at, r.successor_claims,
                r.successor_kid, c.client_id, c.revoked_at AS chain_revoked,
                COALESCE(d.revoked_at, o.suspended_at) AS device_revoked, c.dpop_jkt, ",
            subject_columns!(),
            " FROM refresh_tokens r JOIN token_chains c ON c.id = r.chain_id
          JOIN devices d ON d.id = c.device_id JOIN organizations o ON o.id = d.org_id
         WHERE r.token_hash IN ",
            $in_hashes
        )
    };
}
const LOOKUP_SQLITE: &str = lookup_where!("(SELECT unhex(value) FROM json_each($1))");
const LOOKUP_POSTGRES: &str =
    lookup_where!("(SELECT decode(value, 'hex') FROM jsonb_array_elements_text($1::jsonb))");
