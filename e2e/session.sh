#!/usr/bin/env bash
# Runs inside `xvfb-run ... dbus-run-session`, started by scripts/e2e.sh:
# unlocks a fresh gnome-keyring for the Secret Service, records notification
# calls, runs a notification daemon, then the suite. Stops what it started.
set -uo pipefail
OUT="$CARGO_TARGET_DIR/e2e"

# Creates and unlocks the login keyring in the temporary HOME (an empty
# password would leave no login collection, and the first write would prompt).
eval "$(printf 'e2e-keyring' | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL

dbus-monitor --session "type='method_call',interface='org.freedesktop.Notifications',member='Notify'" \
  > "$OUT/notifications.log" 2>&1 &
monitor=$!
dunst -config "$(dirname "$0")/dunstrc" > "$OUT/dunst.log" 2>&1 &
dunst=$!

cargo test --locked -p e2e -- --test-threads=1 "$@"
rc=$?

kill "$dunst" "$monitor" 2>/dev/null
# Only the keyring daemon of this run: it carries the run's marker.
for pid in $(pgrep -x gnome-keyring-d); do
  if tr '\0' '\n' 2>/dev/null < "/proc/$pid/environ" | grep -qx "E2E_RUN_ID=$E2E_RUN_ID"; then
    kill "$pid" 2>/dev/null
  fi
done
wait 2>/dev/null
exit $rc
