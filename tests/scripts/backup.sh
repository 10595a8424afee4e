#!/usr/bin/env bash
# pg_dump / pg_restore lose nothing: definitions, edited RFM names, the audit log and its sequence,
# membership history, live answers and tracking triggers come back identical, in custom and plain format,
# whole-database, per schema (the data's schema and segments, with the extensions: -n ... -e ...) and with
# --disable-triggers; and tracking keeps working in the restored database.
source "$(dirname "$0")/lib.bash"

fresh_db backup_src
q -d backup_src -c "CREATE EXTENSION pg_segments CASCADE" -f "$HERE/sql/crm.sql" >/dev/null
# a behavioral segmentation over an event table, tracked
q -d backup_src >/dev/null <<'SQL'
CREATE TABLE crm.logins (id bigserial PRIMARY KEY, account_id integer NOT NULL, at timestamptz NOT NULL);
INSERT INTO crm.logins (account_id, at) SELECT a.id, timestamptz '2024-06-01' + (g * 3 + a.id) % 29 * interval '1 day'
FROM crm.accounts a, generate_series(1, (SELECT count(*)::int FROM crm.accounts) % 7 + 1) g WHERE a.id % 3 <> 0;
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('usage', 'crm.accounts', 'id');
INSERT INTO segments.related_source (segmentation, name, relation, key_column, time_column)
VALUES ('usage', 'logins', 'crm.logins', 'account_id', 'at');
INSERT INTO segments.segment (segmentation, name, rule) VALUES
  ('usage', 'Active', '{"related": "logins", "agg": "count", "within": "30 days", "as_of": "2024-06-30", "op": ">=", "value": 2}');
SELECT segments.track('usage');
SQL
q -d backup_src -f "$HERE/sql/snapshot.sql" >"$WORK/src.txt"
[ "$(grep -c '^membership' "$WORK/src.txt")" -gt 300 ] || fail "the source database has too little history"
grep -q '^rfm|.*"segment": "Best Customers"' "$WORK/src.txt" || fail "the edited RFM name is missing before the dump"

# check_restore DUMP_FORMAT "PG_DUMP_FLAGS" EXTRA_RESTORE_FLAGS...
check_restore() {
  local format=$1 dump_flags=$2; shift 2
  local db=backup_dst
  fresh_db "$db"
  case $format in
    custom)
      "$PG_BIN/pg_dump" -Fc $dump_flags -d backup_src -f "$WORK/dump.custom"
      "$PG_BIN/pg_restore" --exit-on-error "$@" -d "$db" "$WORK/dump.custom" ;;
    plain)
      "$PG_BIN/pg_dump" -Fp $dump_flags -d backup_src -f "$WORK/dump.sql"
      q -d "$db" -f "$WORK/dump.sql" >/dev/null 2>"$WORK/restore.err" || { cat "$WORK/restore.err" >&2; fail "plain restore"; } ;;
  esac
  q -d "$db" -f "$HERE/sql/snapshot.sql" >"$WORK/dst.txt"
  same_output "$WORK/src.txt" "$WORK/dst.txt" "$format dump $dump_flags $* does not restore the same state"

  # tracking is live after the restore: the same change moves the same accounts in both databases
  local change="UPDATE crm.accounts SET employees = 5 WHERE id BETWEEN 1 AND 5; UPDATE crm.usage_low SET logins = 39 WHERE id <= 5; INSERT INTO crm.logins (account_id, at) VALUES (3, '2024-06-20'), (3, '2024-06-21')"
  local moved="SELECT string_agg(segmentation || ':' || account_key || ':' || segment, ',' ORDER BY segmentation, account_key::int) FROM segments.current_membership WHERE segmentation IN ('tier', 'activity', 'usage') AND account_key::int <= 5"
  q -d "$db" -c "BEGIN" -c "$change" -c "CREATE TEMP TABLE after AS $moved" -c "COPY after TO STDOUT" -c "ROLLBACK" >"$WORK/dst-moved.txt"
  q -d backup_src -c "BEGIN" -c "$change" -c "CREATE TEMP TABLE after AS $moved" -c "COPY after TO STDOUT" -c "ROLLBACK" >"$WORK/src-moved.txt"
  grep -q 'tier:1:SMB' "$WORK/src-moved.txt" && grep -q 'activity:1:Power' "$WORK/src-moved.txt" || fail "tracking did not move account 1 in the source database"
  grep -q 'usage:3:Active' "$WORK/src-moved.txt" || fail "tracking did not follow new logins of account 3 in the source database"
  same_output "$WORK/src-moved.txt" "$WORK/dst-moved.txt" "tracking after a $format restore"
  # and untrack, then DROP EXTENSION, work in the restored database
  q -d "$db" -c "SELECT segments.untrack('tier')" -c "SELECT segments.untrack('activity')" -c "SELECT segments.untrack('usage')" -c "DROP EXTENSION pg_segments" >/dev/null
  echo "ok: $format dump $dump_flags $*"
}

per_schema="-n crm -n segments -e pg_segments -e btree_gist"
check_restore custom ""
check_restore custom "" --disable-triggers
check_restore custom "" --single-transaction
check_restore plain ""
check_restore custom "$per_schema"
check_restore custom "$per_schema" --disable-triggers
check_restore plain "$per_schema"
