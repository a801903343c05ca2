#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for FUZZ_RUNS
# executions each (default 10^6) and prints, per target, the executions, the
# seconds and whether it crashed. Exits non-zero if any target crashed (a
# panic, a forgery accepted, a timeout or running out of memory); the input
# that did it is kept in fuzz/artifacts/<target>/.
#
#   ./scripts/fuzz.sh                    every target, 10^6 executions each
#   FUZZ_RUNS=20000 ./scripts/fuzz.sh    the brief run of ./scripts/test.sh
#   ./scripts/fuzz.sh jws anchor         only these targets
#   FUZZ_MERGE=1 ./scripts/fuzz.sh       then add the inputs that found new
#                                        coverage to the committed corpus
#
# `-s none` (no sanitizer) is what lets cargo-fuzz run on the stable
# toolchain; the coverage instrumentation works all the same, and the code
# under test forbids `unsafe`, so a sanitizer has nothing to add.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${FUZZ_RUNS:-1000000}
log() { printf '\033[1;34m[fuzz]\033[0m %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (about 1 minute)"
  cargo install cargo-fuzz --version "^0.13" --locked --quiet
fi

# The fuzz crate is its own workspace with its own Cargo.lock; `cargo fuzz`
# has no --locked, so check the lock file here: the build below then uses
# exactly the committed versions.
cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

log "building ${#targets[@]} targets"
(cd fuzz && cargo fuzz build -s none)

results=()
crashed=0
for target in "${targets[@]}"; do
  # New inputs go to a scratch corpus under fuzz/target (first folder); the
  # committed corpus (second folder) only seeds the run, so a run leaves the
  # tree as it was.
  scratch="fuzz/target/corpus/$target"
  mkdir -p "$scratch" "fuzz/corpus/$target" "fuzz/artifacts/$target"
  out="fuzz/target/fuzz-$target.log"
  log "$target: $RUNS executions"
  started=$(date +%s.%N)
  status=0
  (cd fuzz && cargo fuzz run -s none "$target" "../$scratch" "corpus/$target" -- \
    -runs="$RUNS" -print_final_stats=1) >"$out" 2>&1 || status=$?
  seconds=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    verdict="0 crashes"
  else
    verdict="CRASH (exit $status, see $out and fuzz/artifacts/$target/)"
    crashed=$((crashed + 1))
    grep -E "panicked|SUMMARY|Test unit written" "$out" >&2 || tail -n 20 "$out" >&2
  fi
  results+=("$(printf '%-18s %10s executions %7s s   %s' "$target" "${executions:-?}" "$seconds" "$verdict")")
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$status" -eq 0 ]; then
    # The committed corpus becomes the seeds plus the fewest inputs that
    # reach every edge the seeds, the old corpus and this run's finds reach
    # (libFuzzer's greedy set cover; hit counts left out), so it stays
    # small: about 1 MB in all.
    minimal="fuzz/target/minimal/$target"
    rm -rf "$minimal"
    mkdir -p "$minimal"
    (cd fuzz && cargo fuzz run -s none "$target" "../$minimal" "corpus/$target" "../$scratch" -- \
      -set_cover_merge=1 -use_counters=0) >>"$out" 2>&1
    find "fuzz/corpus/$target" -type f ! -name 'seed-*' -delete
    seeds=$(sha1sum "fuzz/corpus/$target"/seed-* 2>/dev/null | cut -d' ' -f1 || true)
    for input in "$minimal"/*; do
      [ -e "$input" ] || continue
      # libFuzzer names an input by its SHA-1: the seeds are there already.
      grep -qx "$(basename "$input")" <<<"$seeds" || cp "$input" "fuzz/corpus/$target/"
    done
    log "$target: corpus of $(find "fuzz/corpus/$target" -type f | wc -l) inputs"
  fi
done

printf '\n'
printf '%s\n' "${results[@]}"
if [ "$crashed" -gt 0 ]; then
  echo "$crashed target(s) crashed" >&2
  exit 1
fi
