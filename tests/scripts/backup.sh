#!/usr/bin/env bash
# pg_dump / pg_restore lose nothing: definitions, edited RFM names, the audit log and its sequence,
# membership history, live answers and tracking triggers come back identical, in custom and plain format,
# whole-database and with --disable-triggers; and tracking keeps working in the restored database.
source "$(dirname "$0")/lib.bash"

fresh_db backup_src
q -d backup_src -c "CREATE EXTENSION pg_segments CASCADE" -f "$HERE/sql/crm.sql" >/dev/null
q -d backup_src -f "$HERE/sql/snapshot.sql" >"$WORK/src.txt"
[ "$(grep -c '^membership' "$WORK/src.txt")" -gt 300 ] || fail "the source database has too little history"
grep -q '^rfm|.*"segment": "Best Customers"' "$WORK/src.txt" || fail "the edited RFM name is missing before the dump"

# restore DUMP_FORMAT EXTRA_RESTORE_FLAGS...
check_restore() {
  local format=$1; shift
  local db=backup_dst
  fresh_db "$db"
  case $format in
    custom)
      "$PG_BIN/pg_dump" -Fc -d backup_src -f "$WORK/dump.custom"
      "$PG_BIN/pg_restore" --exit-on-error "$@" -d "$db" "$WORK/dump.custom" ;;
    plain)
      "$PG_BIN/pg_dump" -Fp -d backup_src -f "$WORK/dump.sql"
      q -d "$db" -f "$WORK/dump.sql" >/dev/null ;;
  esac
  q -d "$db" -f "$HERE/sql/snapshot.sql" >"$WORK/dst.txt"
  same_output "$WORK/src.txt" "$WORK/dst.txt" "$format dump $* does not restore the same state"

  # tracking is live after the restore: the same change moves the same accounts in both databases
  local change="UPDATE crm.accounts SET employees = 5 WHERE id BETWEEN 1 AND 5"
  local moved="SELECT string_agg(account_key || ':' || segment, ',' ORDER BY account_key::int) FROM segments.current_membership WHERE segmentation = 'tier' AND account_key::int <= 5"
  q -d "$db" -c "BEGIN" -c "$change" -c "CREATE TEMP TABLE after AS $moved" -c "COPY after TO STDOUT" -c "ROLLBACK" >"$WORK/dst-moved.txt"
  q -d backup_src -c "BEGIN" -c "$change" -c "CREATE TEMP TABLE after AS $moved" -c "COPY after TO STDOUT" -c "ROLLBACK" >"$WORK/src-moved.txt"
  grep -q '1:SMB' "$WORK/src-moved.txt" || fail "tracking did not move account 1 in the source database"
  same_output "$WORK/src-moved.txt" "$WORK/dst-moved.txt" "tracking after a $format restore"
  # and untrack, then DROP EXTENSION, work in the restored database
  q -d "$db" -c "SELECT segments.untrack('tier')" -c "DROP EXTENSION pg_segments" >/dev/null
  echo "ok: $format dump $*"
}

check_restore custom
check_restore custom --disable-triggers
check_restore custom --single-transaction
check_restore plain
