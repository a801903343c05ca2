//! Tests of the token path: the batch writer, the batch reader and the
//! memory of issued tokens, against a temporary database.

use license_core::model::LicenseKind;
use tokio::sync::{mpsc, oneshot};

use super::batch::{serve_batches, store_batch, Job};
use super::*;

const NOW: i64 = 2_000_000_000;

/// A store with one device and one token chain.
async fn store_with_chain(dir: &tempfile::TempDir) -> (Store, i64, i64) {
    let store = Store::open(&dir.path().join("t.db")).await.unwrap();
    let org = store
        .create_org(
            &OrgInput {
                name: "Acme".into(),
                features: vec![],
                hub_server_name: "hub".into(),
                hub_server_url: "https://hub.example".into(),
                renewal_date: None,
                valid_from: NOW,
                valid_until: NOW + 1000,
            },
            NOW,
        )
        .await
        .unwrap();
    let device = store
        .create_device(org, "Server 1", "SRV-1", NOW)
        .await
        .unwrap()
        .id;
    let chain: i64 = sqlx::query_scalar(
        "INSERT INTO token_chains (device_id, client_id, created_at) VALUES ($1, 'c', $2) RETURNING id",
    )
    .bind(device)
    .bind(NOW)
    .fetch_one(&store.write)
    .await
    .unwrap();
    (store, device, chain)
}

/// [`store_with_chain`], with the chain's first refresh token (hash 1)
/// stored.
async fn store_with_token(dir: &tempfile::TempDir) -> (Store, i64, i64) {
    let (store, device, chain) = store_with_chain(dir).await;
    assert!(store
        .store_tokens(pair(chain, device, 1, None))
        .await
        .unwrap());
    (store, device, chain)
}

fn pair(chain: i64, device: i64, hash: u8, exchanged: Option<u8>) -> NewTokens {
    NewTokens {
        dpop_jkt: None,
        chain_id: chain,
        client_id: "c".into(),
        subject: TokenSubject {
            device_id: device,
            server_id: "SRV-1".into(),
            org_name: "Org".into(),
            features: "[]".into(),
            renewal_date: None,
            hub_server_name: String::new(),
            hub_server_url: String::new(),
        },
        refresh_hash: vec![hash; 32],
        refresh_expires_at: NOW + 100,
        access_expires_at: NOW + 50 + i64::from(hash),
        kid: "k".into(),
        key_last_exp: None,
        now: NOW,
        exchanged: exchanged.map(|h| Exchanged {
            hash: vec![h; 32],
            successor_claims: format!("claims of {hash}"),
        }),
    }
}

async fn used_at(store: &Store, hash: u8) -> Option<Option<i64>> {
    sqlx::query_scalar("SELECT used_at FROM refresh_tokens WHERE token_hash = $1")
        .bind(vec![hash; 32])
        .fetch_optional(&store.read)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_exchanges_each_refresh_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, device, chain) = store_with_token(&dir).await;

    // Two pairs exchanging token 1 in one batch: only the first wins.
    // The loser's key `last_exp` is written all the same (its caller
    // counts it as written).
    store.add_key("k", &[7; 32], &[8; 32], NOW).await.unwrap();
    let mut loser = pair(chain, device, 3, Some(1));
    loser.key_last_exp = Some(NOW + 500);
    let batch = [pair(chain, device, 2, Some(1)), loser];
    let stored = store_batch(&store.write, store.backend, &[&batch[0], &batch[1]])
        .await
        .unwrap();
    assert_eq!(stored, [true, false]);
    assert_eq!(used_at(&store, 1).await, Some(Some(NOW)));
    assert_eq!(used_at(&store, 2).await, Some(None));
    assert_eq!(used_at(&store, 3).await, None, "the loser stored nothing");
    let claims: String =
        sqlx::query_scalar("SELECT successor_claims FROM refresh_tokens WHERE token_hash = $1")
            .bind(vec![1u8; 32])
            .fetch_one(&store.read)
            .await
            .unwrap();
    assert_eq!(claims, "claims of 2");
    let expiry = store.device(device).await.unwrap().unwrap().token_expiry;
    assert_eq!(expiry, Some(NOW + 52));
    let key = store.keys().await.unwrap().pop().unwrap();
    assert_eq!(key.last_exp, NOW + 500);

    // Token 1 again in a later batch: already used.
    assert!(!store
        .store_tokens(pair(chain, device, 4, Some(1)))
        .await
        .unwrap());
}

#[tokio::test]
async fn one_bad_pair_does_not_fail_the_others_of_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (store, device, chain) = store_with_token(&dir).await;

    // Queue three pairs before the writer runs, so they form one batch;
    // the second repeats an existing refresh token hash.
    let (queue, jobs) = mpsc::unbounded_channel();
    let mut answers = Vec::new();
    for t in [
        pair(chain, device, 5, None),
        pair(chain, device, 1, None),
        pair(chain, device, 6, None),
    ] {
        let (reply, answer) = oneshot::channel();
        queue.send(Job { request: t, reply }).unwrap();
        answers.push(answer);
    }
    drop(queue);
    let write = store.write.clone();
    serve_batches("tokens", jobs, async |batch: &[&NewTokens]| {
        store_batch(&write, Backend::Sqlite, batch).await
    })
    .await;
    let mut results = Vec::new();
    for answer in answers {
        results.push(answer.await.unwrap());
    }
    assert!(matches!(results[0], Ok(true)));
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert!(matches!(results[2], Ok(true)));
    assert_eq!(used_at(&store, 5).await, Some(None));
    assert_eq!(used_at(&store, 6).await, Some(None));
}

#[tokio::test]
async fn a_token_answered_from_memory_is_checked_again_when_exchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, device, chain) = store_with_token(&dir).await;

    // Revoked behind this process's back (another process on the same
    // database): memory still answers the token as it was stored...
    sqlx::query("UPDATE token_chains SET revoked_at = $1 WHERE id = $2")
        .bind(NOW)
        .bind(chain)
        .execute(&store.write)
        .await
        .unwrap();
    let row = store.refresh_token(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(row.chain_revoked, None);
    assert_eq!(row.subject.device_id, device);
    // ...but the writer refuses to exchange it, and the lookup the grant
    // then makes again reads the database.
    assert!(!store
        .store_tokens(pair(chain, device, 2, Some(1)))
        .await
        .unwrap());
    assert_eq!(used_at(&store, 1).await, Some(None));
    let row = store.refresh_token(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(row.chain_revoked, Some(NOW));

    // A revocation through the store empties the memory at once.
    sqlx::query("UPDATE token_chains SET revoked_at = NULL WHERE id = $1")
        .bind(chain)
        .execute(&store.write)
        .await
        .unwrap();
    assert!(store
        .store_tokens(pair(chain, device, 3, None))
        .await
        .unwrap());
    store.revoke_device(device, NOW + 1).await.unwrap();
    let row = store.refresh_token(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(row.device_revoked, Some(NOW + 1));
}

#[tokio::test]
async fn lookups_waiting_together_are_answered_each() {
    let dir = tempfile::tempdir().unwrap();
    let (store, device, chain) = store_with_chain(&dir).await;
    for hash in [1, 2] {
        assert!(store
            .store_tokens(pair(chain, device, hash, None))
            .await
            .unwrap());
    }
    let lookups = [1u8, 2, 9, 1].map(|h| {
        let store = store.clone();
        tokio::spawn(async move { store.refresh_token(&[h; 32]).await.unwrap() })
    });
    let mut found = Vec::new();
    for lookup in lookups {
        found.push(lookup.await.unwrap().map(|r| (r.token_hash[0], r.chain_id)));
    }
    assert_eq!(
        found,
        [Some((1, chain)), Some((2, chain)), None, Some((1, chain))]
    );
    let row = store.refresh_token(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(row.subject.server_id, "SRV-1");
    assert_eq!(row.subject.org_name, "Acme");
    assert_eq!(row.used_at, None);
}

#[tokio::test]
async fn the_batched_lookup_uses_the_primary_key() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = store_with_chain(&dir).await;
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT r.chain_id FROM refresh_tokens r
         WHERE r.token_hash IN (SELECT unhex(value) FROM json_each($1))",
    )
    .bind("[]")
    .fetch_all(&store.read)
    .await
    .unwrap();
    let plan: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
    assert!(
        plan.iter()
            .any(|d| d.contains("USING INDEX") && d.contains("token_hash=?")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|d| d.starts_with("SCAN r")), "{plan:?}");
}

#[tokio::test]
async fn a_decision_is_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = store_with_chain(&dir).await;
    let stored = store.insert_device_code(code("BCDFGHJK", 9)).await.unwrap();
    assert!(stored);
    let code = store.pending_device_code("BCDFGHJK", NOW).await.unwrap();
    let code = code.unwrap();
    let audit = [NewAudit {
        at: NOW,
        actor: "admin",
        org_id: Some(1),
        action: "device.registered",
        detail: "registered device \"Late\"".into(),
    }];
    let late = DeviceDecision {
        code_id: code.id,
        approve: true,
        device: Some(RegisterDevice::New {
            org_id: 1,
            name: "Late",
            server_id: "SRV-LATE",
        }),
        user_id: None,
        now: NOW + 20,
        audit: &audit,
    };

    // The code expired: no device registered, no audit entry.
    assert!(!store.decide_device_code(&late).await.unwrap());
    assert!(store.device_by_name(1, "Late").await.unwrap().is_none());
    assert!(store.audit_log(1, 10).await.unwrap().is_empty());

    // In time: the device, its authorization, the code and the entry.
    let in_time = DeviceDecision {
        now: NOW + 1,
        ..late
    };
    assert!(store.decide_device_code(&in_time).await.unwrap());
    let device = store.device_by_name(1, "Late").await.unwrap().unwrap();
    assert_eq!(device.authorized_at, Some(NOW + 1));
    assert_eq!(store.audit_log(1, 10).await.unwrap().len(), 1);
    let code = store.device_code(&[9u8; 32]).await.unwrap().unwrap();
    assert_eq!(code.status, DeviceCodeStatus::Approved);
    assert_eq!(code.device_id, Some(device.id));
}

#[tokio::test]
async fn a_package_update_is_written_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = store_with_chain(&dir).await;
    let id = store
        .create_package(1, "Basic", NOW, NOW + 100)
        .await
        .unwrap();
    let update = PackageUpdate {
        name: "Renamed",
        status: PackageStatus::Suspended,
        valid_from: NOW,
        valid_until: NOW + 200,
    };
    let audit = NewAudit {
        at: NOW,
        actor: "admin",
        org_id: Some(1),
        action: "package.updated",
        detail: "updated".into(),
    };

    // The second total breaks the table's check: nothing is written.
    let totals = [(LicenseKind::Endpoint, 5), (LicenseKind::Server, -1)];
    let failed = store.update_package(id, &update, &totals, &audit).await;
    assert!(failed.is_err());
    let package = store.package(id).await.unwrap().unwrap();
    assert_eq!(package.name, "Basic");
    assert_eq!(package.status, PackageStatus::Active);
    let (_, licenses, _) = store.packages(1).await.unwrap();
    assert!(licenses.is_empty());
    assert!(store.audit_log(1, 10).await.unwrap().is_empty());

    let totals = [(LicenseKind::Endpoint, 5)];
    store
        .update_package(id, &update, &totals, &audit)
        .await
        .unwrap();
    let package = store.package(id).await.unwrap().unwrap();
    assert_eq!(package.name, "Renamed");
    assert_eq!(package.status, PackageStatus::Suspended);
    let (_, licenses, _) = store.packages(1).await.unwrap();
    assert_eq!(licenses.len(), 1);
    assert_eq!(store.audit_log(1, 10).await.unwrap().len(), 1);
}

/// A new device code with this user code and a code hash of `byte`s.
fn code(user_code: &str, byte: u8) -> NewDeviceCode {
    NewDeviceCode {
        code_hash: vec![byte; 32],
        user_code: user_code.into(),
        client_id: "c".into(),
        scope: None,
        now: NOW,
        expires_at: NOW + 10,
        interval_secs: 5,
    }
}

/// Codes stored in one batch: a user code taken by a live code, or by an
/// earlier code of the same batch, is refused (the caller draws another);
/// the others are stored.
#[tokio::test]
async fn device_codes_are_stored_in_batches_with_unique_user_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = store_with_chain(&dir).await;
    assert!(store.insert_device_code(code("BCDFGHJK", 1)).await.unwrap());
    let batch = [
        code("BCDFGHJK", 2),
        code("LMNPQRST", 3),
        code("LMNPQRST", 4),
        code("VWXZBCDF", 5),
    ];
    let answers = futures_join(&store, &batch).await;
    assert_eq!(answers, [false, true, false, true]);
    assert!(store
        .pending_device_code("LMNPQRST", NOW)
        .await
        .unwrap()
        .is_some());
    // Once the first code expired, its user code may be drawn again.
    let mut later = code("BCDFGHJK", 6);
    later.now = NOW + 11;
    later.expires_at = NOW + 20;
    assert!(store.insert_device_code(later).await.unwrap());
}

/// Asks for all `codes` at once, so that they share batches.
async fn futures_join(store: &Store, codes: &[NewDeviceCode]) -> Vec<bool> {
    let tasks: Vec<_> = codes
        .iter()
        .cloned()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_device_code(c).await.unwrap() })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
