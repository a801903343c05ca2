#!/usr/bin/env bash
# Sets up whatever is missing, builds, and starts the main job: the license
# server with a demo account, and the console pointed at it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

PORT="${LICENSE_SERVER_PORT:-8300}"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}/license-server-demo"
mkdir -p "$DATA"

echo "[run] building (release)"
(cd ui && npm run --silent build)
cargo build --release --locked -p license-console -p license-server

if [ -z "${DISPLAY:-}" ]; then
  echo "[run] no DISPLAY: starting Xvfb on :77 (screenshot: DISPLAY=:77 import -window root shot.png)"
  Xvfb :77 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb=$!
  export DISPLAY=:77
  sleep 1
fi

./target/release/license-server demo --db "$DATA/demo.sqlite" --listen "127.0.0.1:$PORT" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  [ -n "${xvfb:-}" ] && kill "$xvfb" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || { echo "[run] the license server did not start" >&2; exit 1; }
  sleep 0.1
done

echo "[run] console: License Console, server http://127.0.0.1:$PORT"
export LICENSE_CONSOLE_SERVER_URL="http://127.0.0.1:$PORT"
if [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  ./target/release/license-console
else
  dbus-run-session -- ./target/release/license-console
fi
