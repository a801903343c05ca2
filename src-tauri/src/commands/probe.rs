//! A performance probe for `scripts/bench-console.sh`: in debug builds (the
//! end-to-end tests) and with the `perf-probe` feature only, never in a
//! plain release build.

/// Called once by the UI when the license panel has been painted; prints
/// the wall-clock time for `scripts/bench-console.sh` (cold start figure).
#[tauri::command]
pub fn panel_painted() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ONCE: AtomicBool = AtomicBool::new(false);
    if !ONCE.swap(true, Ordering::Relaxed) {
        // Wall-clock milliseconds to line up with the bench's own clock:
        // not a licensing decision, so not the console's `Clock`.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        eprintln!("license-console: panel painted at unix-ms {now}");
    }
}
