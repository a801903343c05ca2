//! `close-window TITLE`: asks the X window titled TITLE to close, as a window
//! manager's close button does. Used by scripts/bench-console.sh.

fn main() -> anyhow::Result<()> {
    let title = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: close-window TITLE"))?;
    if !e2e::request_window_close(&title)? {
        anyhow::bail!("no window titled {title:?}");
    }
    Ok(())
}
