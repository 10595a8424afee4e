#!/usr/bin/env bash
# ALTER EXTENSION pg_segments UPDATE from every archived release keeps the users' data, and leaves the
# extension's objects (tables, columns, functions with signatures, volatility and parallel labels,
# aggregates, comments, grants, triggers, policies) exactly as a fresh install of the current version.
source "$(dirname "$0")/lib.bash"
current=$(qa -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'pg_segments'")
old_versions=$(qa -d postgres -c "SELECT version FROM pg_available_extension_versions
                                  WHERE name = 'pg_segments' AND version <> '$current' ORDER BY version")
[ -n "$old_versions" ] || fail "no archived release to upgrade from is installed"

fresh_db upgrade_fresh
q -d upgrade_fresh -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_segments CASCADE"
q -d upgrade_fresh -f "$HERE/extension_objects.sql" -At >"$WORK/fresh.txt"

for old in $old_versions; do
  fresh_db upgrade_old
  q -d upgrade_old -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_segments VERSION '$old' CASCADE"
  [ "$(qa -d upgrade_old -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_segments'")" = "$old" ] \
    || fail "CREATE EXTENSION ... VERSION '$old' did not install $old"
  q -d upgrade_old -f "$HERE/sql/crm.sql" >/dev/null
  # a partitioned source tracked before the upgrade (then only through its parent)
  q -d upgrade_old -c "CREATE SCHEMA legacy" \
    -c "CREATE TABLE legacy.usage (id integer PRIMARY KEY, logins integer) PARTITION BY RANGE (id)" \
    -c "CREATE TABLE legacy.usage_1 PARTITION OF legacy.usage FOR VALUES FROM (0) TO (100)" \
    -c "INSERT INTO legacy.usage SELECT i, i FROM generate_series(1, 99) i" \
    -c "INSERT INTO segments.segmentation (name, source, key_column) VALUES ('legacy', 'legacy.usage', 'id')" \
    -c "INSERT INTO segments.segment (segmentation, name, rule) VALUES ('legacy', 'Power', '{\"attr\": \"logins\", \"op\": \">=\", \"value\": 50}')" \
    -c "SELECT segments.track('legacy')" >/dev/null
  q -d upgrade_old -f "$HERE/sql/snapshot.sql" >"$WORK/before.txt"

  q -d upgrade_old -c "ALTER EXTENSION pg_segments UPDATE"
  [ "$(qa -d upgrade_old -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_segments'")" = "$current" ] \
    || fail "ALTER EXTENSION UPDATE from $old did not reach $current"

  # the data is kept, and answers are the same
  q -d upgrade_old -f "$HERE/sql/snapshot.sql" >"$WORK/after.txt"
  same_output "$WORK/before.txt" "$WORK/after.txt" "upgrading $old -> $current changed the users' data"

  # the objects equal a fresh install's
  q -d upgrade_old -f "$HERE/extension_objects.sql" -At >"$WORK/upgraded.txt"
  same_output "$WORK/fresh.txt" "$WORK/upgraded.txt" "$old -> $current differs from a fresh $current install"

  # and tracking still works after the upgrade
  q -d upgrade_old -c "UPDATE crm.accounts SET employees = 5 WHERE id = 1"
  [ "$(qa -d upgrade_old -c "SELECT segment FROM segments.current_membership WHERE segmentation = 'tier' AND account_key = '1'")" = SMB ] \
    || fail "tracking does not move accounts after upgrading from $old"
  # the upgrade put the tracking triggers on the partitions of a tracked source: a write to one is tracked
  q -d upgrade_old -c "UPDATE legacy.usage_1 SET logins = 0 WHERE id = 60"
  [ "$(qa -d upgrade_old -c "SELECT segment FROM segments.current_membership WHERE segmentation = 'legacy' AND account_key = '60'")" = Unsegmented ] \
    || fail "a write to a partition of a source tracked before upgrading from $old is not tracked"
  echo "ok: $old -> $current"
done
echo "$(wc -l <"$WORK/fresh.txt") extension objects compared"
