#!/usr/bin/env bash
# The full kill test of issue 13 (crash-safe rotation): the real console is
# killed with SIGKILL at random points of its refresh path KILLS times
# (default 200) and restarted each time later than a bearer chain's retry
# window allows; the license must stay valid throughout. It is the test of
# e2e/tests/kill.rs (which the suite runs with 20 kills), run through
# scripts/e2e.sh (Xvfb, a private session bus, gnome-keyring), which builds
# the console first.
#
#   KILLS=N            number of kills (default 200)
#   KILL_SEED=S        repeat the random choices of an earlier run
#   KILL_RESTART_AFTER_SECS, KILL_RETRY_WINDOW_SECS, KILL_TOKEN_TTL_SECS
#                      see e2e/tests/kill.rs
#
# Prints: kills, kills that landed between the server's answer and the
# console's keychain write (retries the server answered), lost licenses,
# revoked chains. A run takes about 3.3 s per kill; scripts/e2e.sh stops any
# run after 30 minutes (about 500 kills).
set -euo pipefail
cd "$(dirname "$0")/.."
export KILLS="${KILLS:-200}"
log=$(mktemp /tmp/kill-test.XXXXXX.log)
echo "[kill-test] $KILLS kills; full log: $log"
set +e
./scripts/e2e.sh --nocapture sigkill_anywhere_in_the_refresh_path_loses_no_license 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
line=$(grep -a '^KILL-TEST ' "$log" | tail -n 1 || true)
if [ -z "$line" ]; then
  echo "[kill-test] FAIL: the test printed no figures (exit $rc)" >&2
  exit 1
fi
figure() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
echo
echo "== kill test figures =="
echo "kills:                                      $(figure kills)"
echo "kills between server answer and keychain:   $(figure gap_kills)"
echo "lost licenses:                              $(figure lost_licenses)"
echo "revoked chains:                             $(figure revoked_chains)"
echo "details: ${line#KILL-TEST }"
[ "$rc" -eq 0 ] && echo "[kill-test] PASS" || echo "[kill-test] FAIL (exit $rc)"
exit "$rc"
