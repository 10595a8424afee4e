# Shared by the scripted tests in tests/scripts: they run against the cluster in PGHOST/PGPORT that bin/test
# started, with PG_BIN naming that server's programs. Source it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORK=$(mktemp -d)
chmod 755 "$WORK"
trap 'rm -rf "$WORK"' EXIT

q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
qa() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
fresh_db() { q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# same_output A B WHAT: the two files are equal, or the diff is shown and the test fails
same_output() {
  if ! diff -u "$1" "$2" >"$WORK/diff"; then
    head -60 "$WORK/diff" >&2
    fail "$3"
  fi
}
