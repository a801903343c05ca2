#!/usr/bin/env bash
# The end-to-end suite: builds the binaries, then runs `cargo test -p e2e` in a
# sandbox of its own: Xvfb, a private session bus with gnome-keyring unlocked,
# dbus-monitor recording notifications, a temporary HOME. Afterwards it checks
# that no process it started is still running.
# E2E_TIMEOUT_SECS stops a run that takes longer (default 1800).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$CARGO_HOME/bin:$PATH"

echo "[e2e] building the UI, the console, the server and the suite"
# The console embeds ui/dist at compile time: a stale build would test old screens.
(cd ui && npm run --silent build)
cargo build --locked -p license-server
# The console as `tauri build --debug` makes it (assets served by the custom
# protocol, as in the .deb): the bundle stage of test.sh then reuses it.
(cd ui && TAURI_APP_PATH="$ROOT/src-tauri" npx tauri build --debug --no-bundle)
cargo test --locked -p e2e --no-run

mkdir -p "$CARGO_TARGET_DIR/e2e"
rm -f "$CARGO_TARGET_DIR"/e2e/*.png "$CARGO_TARGET_DIR"/e2e/*.log

# Every process of this run carries the marker in its environment, which is
# how the check at the end finds leftovers.
export E2E_RUN_ID="e2e-$$-$RANDOM$RANDOM"
SANDBOX=$(mktemp -d /tmp/license-console-e2e.XXXXXX)
export E2E_SANDBOX="$SANDBOX"
export HOME="$SANDBOX/home"
export XDG_CONFIG_HOME="$HOME/.config" XDG_DATA_HOME="$HOME/.local/share"
export XDG_CACHE_HOME="$HOME/.cache" XDG_STATE_HOME="$HOME/.local/state"
mkdir -p "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME"

run_pids() {
  local pid
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    [ "$pid" = "$$" ] && continue
    if tr "\\0" "\\n" 2>/dev/null < "$env" | grep -qx "E2E_RUN_ID=$E2E_RUN_ID"; then
      echo "$pid"
    fi
  done
}

set +e
timeout --kill-after=30 "${E2E_TIMEOUT_SECS:-1800}" xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp" \
  dbus-run-session -- bash "$ROOT/e2e/session.sh" "$@"
rc=$?
set -e

# Give exiting processes a moment, then insist that none is left.
for _ in $(seq 1 50); do
  [ -z "$(run_pids)" ] && break
  sleep 0.1
done
left=$(run_pids)
if [ -n "$left" ]; then
  echo "[e2e] FAIL: processes of this run are still running:" >&2
  for pid in $left; do ps -o pid=,args= -p "$pid" >&2 || true; done
  kill -KILL $left 2>/dev/null || true
  rc=1
else
  echo "[e2e] no process of this run is left running"
fi
rm -rf "$SANDBOX"
echo "[e2e] screenshots and logs: $CARGO_TARGET_DIR/e2e/"
exit $rc
