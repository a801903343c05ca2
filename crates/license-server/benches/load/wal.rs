//! The WAL bound under sustained writes: device authorizations and refresh
//! grants together (half the workers each) for `LOAD_WAL_SECS` (600 with
//! LOAD_ONLY=wal), the WAL file's size sampled every 100 ms. Prints its
//! peak (the bound: under 64 MB) and checks that the database holds
//! a row for every write that was answered.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{run, Load, Report, Scenario, Servers};

/// Writes answered, by kind.
#[derive(Default)]
pub struct Written {
    pub authorizations: Cell<u64>,
    pub refreshes: Cell<u64>,
}

const BOUND_BYTES: u64 = 64 << 20;

async fn count(db: &Path, table: &str) -> u64 {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open db");
    let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n as u64
}

fn wal_of(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// Runs `mixed` for `duration`, sampling the WAL; returns the run's report.
pub async fn run_bounded(
    mixed: &Rc<Scenario>,
    written: &Written,
    addr: &str,
    pid: u32,
    db: &Path,
    duration: Duration,
) -> Report {
    let codes_before = count(db, "device_codes").await;
    let tokens_before = count(db, "refresh_tokens").await;
    let wal = wal_of(db);
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let (peak, wal) = (peak.clone(), wal.clone());
        async move {
            loop {
                let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
                peak.fetch_max(size, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let report = run(mixed, &Servers::one(addr, pid), duration, Load::Closed).await;
    sampler.abort();
    let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    let db_size = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    let codes = count(db, "device_codes").await - codes_before;
    let tokens = count(db, "refresh_tokens").await - tokens_before;
    let (auths, refreshes) = (written.authorizations.get(), written.refreshes.get());
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "WAL under mixed writes for {:.0} s: peak {:.1} MiB (bound {} MiB: {}), {:.1} MiB at the end, database {:.1} MiB",
        report.secs,
        peak as f64 / 1048576.0,
        BOUND_BYTES >> 20,
        if peak < BOUND_BYTES { "met" } else { "NOT met" },
        after as f64 / 1048576.0,
        db_size as f64 / 1048576.0,
    );
    println!(
        "rows: {codes} new device codes for {auths} answered authorizations, {tokens} new refresh tokens for {refreshes} answered refresh grants: {}",
        if codes == auths && tokens == refreshes { "every row there" } else { "ROWS MISSING OR EXTRA" }
    );
    report
}
