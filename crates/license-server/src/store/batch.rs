//! The token batch writer and reader: requests queued from many grants are
//! answered together, one transaction or one query per batch (group commit):
//! under load, one commit and one round trip to the connection's thread
//! serve many token grants.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::tokens::lookup_refresh_tokens;
use super::{hex, to_json, Backend, DbResult, NewTokens, RefreshRow};

/// At most this many token pairs are stored in one transaction, or refresh
/// tokens looked up in one query.
const TOKEN_BATCH: usize = 256;

/// A request waiting in a batch queue, and where its answer goes.
pub(super) struct Job<Q, A> {
    pub(super) request: Q,
    pub(super) reply: oneshot::Sender<DbResult<A>>,
}

pub(super) type TokenJob = Job<NewTokens, bool>;
pub(super) type Lookup = Job<Vec<u8>, Option<RefreshRow>>;

/// Queues `request` for a batch task and waits for its answer.
pub(super) async fn ask<Q, A>(queue: &mpsc::UnboundedSender<Job<Q, A>>, request: Q) -> DbResult<A> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Job { request, reply })
        .map_err(|_| sqlx::Error::PoolClosed)?;
    answer.await.map_err(|_| sqlx::Error::PoolClosed)?
}

/// A batch smaller than this, after a batch of more than one request, waits
/// [`FILL_WAIT`] for more requests to join it.
const FILL_BELOW: usize = 8;
/// Half a millisecond, which tokio's timer rounds up to its next 1 ms tick.
/// Each batch costs a commit and a round trip to the connection's thread
/// whatever its size: at 3,000 grants/s this wait made batches bigger and cut
/// the server's CPU time per grant by a fifth, for about a millisecond more
/// latency. A lone request (light load) never waits.
const FILL_WAIT: Duration = Duration::from_micros(500);

/// Answers queued requests in batches: everything waiting goes to `run` at
/// once, which answers each request in order. If a batch fails, each request
/// is run again on its own, so one bad request cannot fail the others.
pub(super) async fn serve_batches<Q, A>(
    writer: &'static str,
    mut queue: mpsc::UnboundedReceiver<Job<Q, A>>,
    run: impl AsyncFn(&[&Q]) -> DbResult<Vec<A>>,
) {
    let mut jobs = Vec::with_capacity(TOKEN_BATCH);
    let mut last_batch = 0;
    while queue.recv_many(&mut jobs, TOKEN_BATCH).await > 0 {
        if last_batch > 1 && jobs.len() < FILL_BELOW {
            // Requests are coming in together: let more join this batch.
            tokio::time::sleep(FILL_WAIT).await;
            while jobs.len() < TOKEN_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        last_batch = jobs.len();
        crate::metrics::global().batch(writer, last_batch);
        let batch: Vec<&Q> = jobs.iter().map(|j| &j.request).collect();
        let answers = run(&batch).await.and_then(|answers| {
            if answers.len() == batch.len() {
                Ok(answers)
            } else {
                Err(sqlx::Error::Protocol("a batch lost an answer".into()))
            }
        });
        match answers {
            Ok(answers) => {
                for (job, answer) in jobs.drain(..).zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(e) if jobs.len() == 1 => {
                let job = jobs.pop().expect("one job");
                let _ = job.reply.send(Err(e));
            }
            Err(_) => {
                for job in jobs.drain(..) {
                    let answer = run(&[&job.request]).await.and_then(|a| {
                        a.into_iter()
                            .next()
                            .ok_or_else(|| sqlx::Error::Protocol("a batch lost an answer".into()))
                    });
                    let _ = job.reply.send(answer);
                }
            }
        }
    }
}

/// Stores a batch of pairs in one transaction, sent to SQLite as one script:
/// a single round trip to the connection's thread whatever the number of
/// pairs (each round trip costs a thread wake-up on either side). The pairs
/// travel as one JSON array, bound once (`?1`) and read by every statement.
///
/// 1. Marks each exchanged refresh token used, if it still is unused and
///    neither its chain nor its device is revoked (nor its organization
///    suspended), with the claims of its
///    successor; returns the hashes it marked.
/// 2. Inserts each new refresh token whose pair has nothing to exchange, or
///    whose exchanged token carries this pair's claims now: marked by step 1,
///    as the claims hold the pair's random `jti`.
/// 3. Sets each device's token expiry from the pairs stored.
/// 4. Raises the signing keys' `last_exp` (`?2`).
const STORE_BATCH_SQLITE: &str = "BEGIN IMMEDIATE;
UPDATE refresh_tokens SET used_at = j.value ->> 'at', successor_claims = j.value ->> 'claims',
       successor_kid = j.value ->> 'kid'
  FROM json_each($1) AS j
 WHERE j.value ->> 'old' IS NOT NULL AND refresh_tokens.token_hash = unhex(j.value ->> 'old')
   AND refresh_tokens.used_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM token_chains c JOIN devices d ON d.id = c.device_id
                      JOIN organizations o ON o.id = d.org_id
                    WHERE c.id = refresh_tokens.chain_id
                      AND (c.revoked_at IS NOT NULL OR d.revoked_at IS NOT NULL
                           OR o.suspended_at IS NOT NULL))
RETURNING refresh_tokens.token_hash;
INSERT INTO refresh_tokens (token_hash, chain_id, created_at, expires_at)
SELECT unhex(j.value ->> 'hash'), j.value ->> 'chain', j.value ->> 'at', j.value ->> 'exp'
  FROM json_each($1) AS j
 WHERE j.value ->> 'old' IS NULL
    OR EXISTS (SELECT 1 FROM refresh_tokens o WHERE o.token_hash = unhex(j.value ->> 'old')
                AND o.successor_claims = j.value ->> 'claims');
UPDATE devices SET token_expiry = n.exp
  FROM (SELECT j.value ->> 'device' AS device, MAX(j.value ->> 'access_exp') AS exp
          FROM json_each($1) AS j
         WHERE EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.token_hash = unhex(j.value ->> 'hash'))
         GROUP BY 1) AS n
 WHERE devices.id = n.device;
UPDATE signing_keys SET last_exp = MAX(last_exp, k.value ->> 'exp')
  FROM json_each($2) AS k WHERE signing_keys.kid = k.value ->> 'kid';
COMMIT;";

/// [`STORE_BATCH_SQLITE`]'s steps as one PostgreSQL statement (one round
/// trip, one implicit transaction). Its data-modifying parts see one
/// snapshot, so step 2 reads what step 1 marked from its `RETURNING`, and
/// step 3 what step 2 inserted.
///
/// Replicas write at once: a refresh token exchanged by two of them is
/// marked by one only, as the second `UPDATE` waits for the first's row
/// lock and then finds `used_at` set (READ COMMITTED re-checks the row).
const STORE_BATCH_POSTGRES: &str =
    "WITH j AS (SELECT value AS v FROM jsonb_array_elements($1::jsonb)),
marked AS (
UPDATE refresh_tokens SET used_at = (j.v ->> 'at')::BIGINT, successor_claims = j.v ->> 'claims',
       successor_kid = j.v ->> 'kid'
  FROM j
 WHERE j.v ->> 'old' IS NOT NULL AND refresh_tokens.token_hash = decode(j.v ->> 'old', 'hex')
   AND refresh_tokens.used_at IS NULL
   AND NOT EXISTS (SELECT 1 FROM token_chains c JOIN devices d ON d.id = c.device_id
                      JOIN organizations o ON o.id = d.org_id
                    WHERE c.id = refresh_tokens.chain_id
                      AND (c.revoked_at IS NOT NULL OR d.revoked_at IS NOT NULL
                           OR o.suspended_at IS NOT NULL))
RETURNING refresh_tokens.token_hash, refresh_tokens.successor_claims),
inserted AS (
INSERT INTO refresh_tokens (token_hash, chain_id, created_at, expires_at)
SELECT decode(j.v ->> 'hash', 'hex'), (j.v ->> 'chain')::BIGINT, (j.v ->> 'at')::BIGINT,
       (j.v ->> 'exp')::BIGINT
  FROM j
 WHERE j.v ->> 'old' IS NULL
    OR EXISTS (SELECT 1 FROM marked m WHERE m.token_hash = decode(j.v ->> 'old', 'hex')
                AND m.successor_claims = j.v ->> 'claims')
RETURNING token_hash),
expiry AS (
UPDATE devices SET token_expiry = n.exp
  FROM (SELECT (j.v ->> 'device')::BIGINT AS device, MAX((j.v ->> 'access_exp')::BIGINT) AS exp
          FROM j
         WHERE EXISTS (SELECT 1 FROM inserted r WHERE r.token_hash = decode(j.v ->> 'hash', 'hex'))
         GROUP BY 1) AS n
 WHERE devices.id = n.device),
key_exp AS (
UPDATE signing_keys SET last_exp = GREATEST(last_exp, (k.value ->> 'exp')::BIGINT)
  FROM jsonb_array_elements($2::jsonb) AS k WHERE signing_keys.kid = k.value ->> 'kid')
SELECT token_hash FROM marked";

/// Stores many pairs in one transaction ([`STORE_BATCH_SQLITE`],
/// [`STORE_BATCH_POSTGRES`]). Returns, per pair,
/// whether it was stored: `false` when its exchanged refresh token was
/// already used, including by an earlier pair of the same batch.
pub(super) async fn store_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[&NewTokens],
) -> DbResult<Vec<bool>> {
    #[derive(Serialize)]
    struct Pair<'a> {
        hash: String,
        chain: i64,
        device: i64,
        at: i64,
        exp: i64,
        access_exp: i64,
        kid: &'a str,
        old: Option<String>,
        claims: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct KeyExp<'a> {
        kid: &'a str,
        exp: i64,
    }

    let mut stored = vec![true; batch.len()];
    let mut claimed = HashSet::new();
    let mut pairs = Vec::with_capacity(batch.len());
    let mut last_exp: HashMap<&str, i64> = HashMap::new();
    for (i, t) in batch.iter().enumerate() {
        // Every pair's `last_exp`, even one refused below: the caller counts
        // it as written, and a later pair of the same key may not repeat it.
        if let Some(exp) = t.key_last_exp {
            let e = last_exp.entry(&t.kid).or_insert(exp);
            *e = (*e).max(exp);
        }
        if let Some(x) = &t.exchanged {
            if !claimed.insert(x.hash.as_slice()) {
                stored[i] = false;
                continue;
            }
        }
        pairs.push(Pair {
            hash: hex(&t.refresh_hash),
            chain: t.chain_id,
            device: t.subject.device_id,
            at: t.now,
            exp: t.refresh_expires_at,
            access_exp: t.access_expires_at,
            kid: &t.kid,
            old: t.exchanged.as_ref().map(|x| hex(&x.hash)),
            claims: t.exchanged.as_ref().map(|x| x.successor_claims.as_str()),
        });
    }
    let keys: Vec<KeyExp> = last_exp
        .into_iter()
        .map(|(kid, exp)| KeyExp { kid, exp })
        .collect();

    let mut conn = pool.acquire().await?;
    let script = match backend {
        Backend::Sqlite => STORE_BATCH_SQLITE,
        Backend::Postgres => STORE_BATCH_POSTGRES,
    };
    let marked: Vec<Vec<u8>> = match sqlx::query_scalar(script)
        .bind(to_json(&pairs)?)
        .bind(to_json(&keys)?)
        .fetch_all(&mut *conn)
        .await
    {
        Ok(marked) => marked,
        Err(e) => {
            // The SQLite script stopped part-way, maybe inside its
            // transaction: end that, or let the pool replace the connection.
            // (The PostgreSQL statement is its own transaction.)
            if backend == Backend::Sqlite
                && sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err()
            {
                conn.close_on_drop();
            }
            return Err(e);
        }
    };
    let marked: HashSet<&[u8]> = marked.iter().map(Vec::as_slice).collect();
    for (i, t) in batch.iter().enumerate() {
        if let Some(x) = &t.exchanged {
            stored[i] = stored[i] && marked.contains(x.hash.as_slice());
        }
    }
    Ok(stored)
}

/// Starts the token writer on the write pool; returns its queue.
pub(super) fn spawn_writer(write: AnyPool, backend: Backend) -> mpsc::UnboundedSender<TokenJob> {
    let (queue, jobs) = mpsc::unbounded_channel();
    tokio::spawn(serve_batches(
        "tokens",
        jobs,
        async move |batch: &[&NewTokens]| store_batch(&write, backend, batch).await,
    ));
    queue
}

/// Starts the refresh token reader on the read pool; returns its queue.
pub(super) fn spawn_reader(read: AnyPool, backend: Backend) -> mpsc::UnboundedSender<Lookup> {
    let (queue, jobs) = mpsc::unbounded_channel();
    tokio::spawn(serve_batches(
        "refresh_lookups",
        jobs,
        async move |hashes: &[&Vec<u8>]| lookup_refresh_tokens(&read, backend, hashes).await,
    ));
    queue
}
