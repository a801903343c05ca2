#!/usr/bin/env bash
# Prints the console's figures: cold start to the panel painted from cache,
# idle CPU with the window open and closed to the tray, memory (PSS) of the
# whole process tree beside a hello-world Tauri window, binary and .deb size.
# Release builds, a real window under Xvfb, a private session bus.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
(cd ui && npm run --silent build)
# The release console with the perf probe (`panel_painted`), which plain
# release builds leave out.
cargo build --release --locked -p license-console --features perf-probe
cargo build --release --locked -p license-server
cargo build --release --locked -p license-console --example hello
cargo build --release --locked -p e2e --bin close-window
export BENCH_IDLE_SECS="${BENCH_IDLE_SECS:-60}"
exec xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" \
  dbus-run-session -- python3 scripts/bench_console.py
