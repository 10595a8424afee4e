#!/usr/bin/env bash
# Crash safety, on a cluster of its own: kill -9 of the backend running refresh() of 1,000,000 accounts, and of
# the postmaster during one, leave membership exactly as it was before (nothing lost, nothing doubled); the
# next refresh completes and equals segment_of on every account. Then concurrent refreshes, tracked writes
# and definition changes under load end with one open membership per account, equal to segment_of, and no
# client error.
source "$(dirname "$0")/lib.bash"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
dir=$WORK/crash
mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
start() {
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 -o "-k $dir -c listen_addresses='' -c fsync=on -c timezone=UTC" start >/dev/null \
    || { tail -20 "$dir/server.log" >&2; fail "the server did not start"; }
}
stop() { as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; }
trap 'stop; rm -rf "$WORK"' EXIT
start
export PGHOST=$dir PGDATABASE=crash
q -d postgres -c "CREATE DATABASE crash"
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_segments CASCADE" \
  -c "CREATE TABLE accounts (id integer PRIMARY KEY, employees integer, arr numeric)" \
  -c "INSERT INTO accounts SELECT i, (i::bigint * 7919) % 20000, (i::bigint * 104729) % 500000 FROM generate_series(1, 1000000) i" \
  -c "INSERT INTO segments.segmentation (name, source, key_column) VALUES ('tier', 'accounts', 'id')" \
  -c "INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
        ('tier', 'Enterprise', 1, '{\"attr\": \"employees\", \"op\": \">=\", \"value\": 10000}'),
        ('tier', 'Mid-Market', 2, '{\"attr\": \"employees\", \"op\": \">=\", \"value\": 1000}')" \
  -c "SELECT * FROM segments.refresh('tier')" >/dev/null

# the whole membership table as one fingerprint, and whether it answers what segment_of answers
state() { qa -c "SELECT count(*) || ' ' || md5(string_agg(account_key || segment || valid::text, ',' ORDER BY account_key, lower(valid)))
                 FROM segments.membership WHERE segmentation = 'tier'"; }
stale() { qa -c "SELECT count(*) FROM accounts a LEFT JOIN segments.membership m
                   ON m.segmentation = 'tier' AND m.account_key = a.id::text AND upper_inf(m.valid)
                 WHERE m.segment IS DISTINCT FROM segments.segment_of(a, 'tier')"; }
before=$(state)
[ "$(stale)" = 0 ] || fail "the first refresh does not match segment_of"
# a rule change that moves about half the accounts
q -c "UPDATE segments.segment SET rule = '{\"attr\": \"arr\", \"op\": \">=\", \"value\": 250000}' WHERE segmentation = 'tier' AND name = 'Enterprise'"

# refresh_then_kill WHAT: starts a refresh, waits until it is writing, kills WHAT (backend or postmaster) with SIGKILL
refresh_then_kill() {
  "$PG_BIN/psql" -X -q -c "SELECT * FROM segments.refresh('tier')" >"$dir/refresh.out" 2>&1 &
  local client=$! pid="" i
  for i in $(seq 1 200); do
    pid=$(qa -c "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT * FROM segments.refresh%' AND state = 'active'")
    [ -n "$pid" ] && break
    sleep 0.05
  done
  [ -n "$pid" ] || fail "the refresh did not start"
  sleep 2  # well into the refresh (a refresh of 1M accounts takes several seconds)
  if [ "$1" = backend ]; then
    kill -9 "$pid"
  else
    # the machine going down: the postmaster and every process it started, at once
    local postmaster children
    postmaster=$(head -1 "$dir/data/postmaster.pid"); children=$(pgrep -P "$postmaster" || true)
    kill -9 "$postmaster" $children
  fi
  wait "$client" && fail "the refresh finished before it was killed: make the table bigger"
  return 0
}

refresh_then_kill backend
for i in $(seq 1 120); do qa -d postgres -c "SELECT 1" >/dev/null 2>&1 && break; sleep 0.5; done  # crash recovery
[ "$(state)" = "$before" ] || fail "kill -9 of the refreshing backend changed membership"
echo "ok: kill -9 of the backend mid-refresh left membership as it was"

refresh_then_kill postmaster
# as after a reboot: the processes are gone (here they may linger as zombies nobody reaps, which the next
# postmaster would take for a live one), so the stale lock file goes
sleep 1
pid=$(head -1 "$dir/data/postmaster.pid")
if [ ! -e "/proc/$pid" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$pid/stat"; then rm -f "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*; fi
start
[ "$(state)" = "$before" ] || fail "kill -9 of the postmaster mid-refresh changed membership"
echo "ok: kill -9 of the postmaster mid-refresh left membership as it was (after crash recovery)"

q -c "SELECT * FROM segments.refresh('tier')" >/dev/null
[ "$(stale)" = 0 ] || fail "the refresh after the crashes does not match segment_of"
echo "ok: the next refresh completes and matches segment_of on all 1000000 accounts"

# under load: 15 s of tracked writes (two clients), refreshes and definition changes side by side
q -c "SELECT segments.track('tier')" >/dev/null
load() {  # load NAME SQL: runs SQL over and over for 15 s, counting errors
  local end=$((SECONDS + 15)) errors=0
  while [ "$SECONDS" -lt "$end" ]; do
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -c "$2" >/dev/null 2>>"$dir/$1.err" || errors=$((errors + 1))
  done
  echo "$errors" >"$dir/$1.errors"
}
load writer1 "UPDATE accounts SET employees = (random() * 20000)::int WHERE id IN (SELECT (random() * 999999)::int + 1 FROM generate_series(1, 50))" &
load writer2 "BEGIN; UPDATE accounts SET arr = (random() * 500000)::int WHERE id = (random() * 999999)::int + 1; INSERT INTO accounts SELECT max(id) + 1, 5, 5 FROM accounts; COMMIT" &
load refresher "SELECT * FROM segments.refresh('tier')" &
load editor "UPDATE segments.segment SET rule = jsonb_set(rule, '{value}', to_jsonb((random() * 20000)::int)) WHERE segmentation = 'tier' AND name = 'Mid-Market'" &
wait
for c in writer1 writer2 refresher editor; do
  [ "$(cat "$dir/$c.errors")" = 0 ] || { head -5 "$dir/$c.err" >&2; fail "client $c saw errors under load"; }
done
[ "$(qa -c "SELECT count(*) FROM (SELECT account_key FROM segments.membership WHERE segmentation = 'tier' AND upper_inf(valid)
              GROUP BY 1 HAVING count(*) > 1) d")" = 0 ] || fail "an account has two open memberships after the load"
q -c "SELECT * FROM segments.refresh('tier')" >/dev/null
[ "$(stale)" = 0 ] || fail "membership after the load and a refresh does not match segment_of"
[ "$(qa -c "SELECT count(*) FROM accounts")" = "$(qa -c "SELECT count(*) FROM segments.membership WHERE segmentation = 'tier' AND upper_inf(valid)")" ] \
  || fail "accounts and open memberships differ in number after the load"
echo "ok: 15 s of concurrent tracked writes, refreshes and definition changes: no error, nothing lost or doubled"
