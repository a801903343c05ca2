#!/usr/bin/env bash
# The license server's test suite on PostgreSQL: starts a throwaway cluster
# (scripts/pg-cluster.sh: a temporary data directory, a free port), runs
# every server test with each test server on a database of its own in it,
# then stops the cluster and removes it, whatever the outcome.
#   scripts/test-postgres.sh [cargo test filters...]
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d /tmp/license-pg.XXXXXX)
cleanup() {
  ./scripts/pg-cluster.sh stop "$dir/pg" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
url=$(./scripts/pg-cluster.sh start "$dir/pg")
echo "PostgreSQL cluster: $url ($(psql "$url" -Atc 'SHOW server_version'))"
LICENSE_SERVER_TEST_POSTGRES="$url" cargo test -p license-server --tests --locked "$@"
