#!/usr/bin/env bash
# Sets up whatever is missing, then runs every check: formatting, lints, the
# Rust tests, the UI tests, a brief fuzzing run, the end-to-end suite, and the
# .deb bundle.
# Every stage prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

passed=0
started=0
stage_started=0
stage() {
  if [ -n "${stage_name:-}" ]; then
    printf '[time] %s: %ss\n' "$stage_name" "$((SECONDS - stage_started))"
  fi
  stage_name="$*"
  stage_started=$SECONDS
  printf '\n\033[1;34m== %s ==\033[0m\n' "$*"
}
# A stage that fails stops the script (set -e): each command stands alone,
# never as `cmd && ok`, which set -e would let fail silently.
ok() { passed=$((passed + 1)); }

stage "Setup (Debian packages, tools, npm packages)"
./scripts/setup.sh

stage "UI build (the console embeds it)"
(cd ui && npm run --silent build)
ok

stage "cargo fmt --check"
cargo fmt --all --check
ok

stage "Unused dependencies (scripts/unused-deps.py)"
python3 scripts/unused-deps.py
ok

stage "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
ok

stage "Rust tests (workspace)"
cargo test --workspace --exclude e2e --locked
# The tests also regenerate the UI's TypeScript types from the Rust DTOs
# (ts-rs); the committed ones must be what they generate.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  stale=$(git status --porcelain -- ui/src/lib/bindings)
  if [ -n "$stale" ]; then
    echo "ui/src/lib/bindings differs from what the Rust DTOs generate; commit it:" >&2
    echo "$stale" >&2
    exit 1
  fi
fi
ok

# The same server tests again on PostgreSQL, in a cluster of their own.
stage "License server tests on PostgreSQL (scripts/test-postgres.sh)"
./scripts/test-postgres.sh
ok

stage "UI checks and tests (svelte-check, vitest)"
(cd ui && npm run --silent check && npm test --silent)
ok

# Each parser of untrusted input, fuzzed briefly: a crash or an accepted
# forgery fails the tests. ./scripts/fuzz.sh alone runs 10^6 executions each.
stage "Fuzz (brief: 20000 executions per target)"
FUZZ_RUNS=20000 ./scripts/fuzz.sh
ok

stage "End-to-end suite (real console in Xvfb, real license server)"
./scripts/e2e.sh
ok

# The .deb is bundled from the debug build the suites above already made:
# bundling is what is checked here; release builds (LTO) belong to
# scripts/run.sh and the benchmarks.
stage "Bundle: tauri build --debug --bundles deb"
(cd ui && TAURI_APP_PATH="$ROOT/src-tauri" npx tauri build --debug --bundles deb)
ok
deb=$(ls -t target/debug/bundle/deb/*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ] || [ ! -s "$deb" ]; then
  echo "no .deb was produced under target/debug/bundle/deb" >&2
  exit 1
fi
printf 'deb: %s (%s bytes, %s)\n' "$deb" "$(stat -c %s "$deb")" "$(du -h "$deb" | cut -f1)"
dpkg-deb --info "$deb" | grep -E '^ (Package|Version|Depends):'
dpkg-deb --contents "$deb" | grep -qE ' (\./)?usr/bin/license-console$' \
  || { echo "the .deb holds no /usr/bin/license-console" >&2; exit 1; }

stage "Server .deb (scripts/server-deb.sh: build, contents, unit check)"
./scripts/server-deb.sh
ok

stage "done"
echo "stages: $((passed)) passed, 0 failed, $((SECONDS - started))s in all"
