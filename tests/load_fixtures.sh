#!/usr/bin/env bash
# Creates database $1 on the cluster in PGHOST/PGPORT with pg_segments installed and the Telco data loaded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
db=$1
psql() { /usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
header=$(head -1 "$ROOT/data/telco_customer_churn.csv" | tr -d '\r' | sed 's/\([A-Za-z]*\)/"\1" text/g')
psql -d "$db" -c "CREATE SCHEMA telco" -c "CREATE TABLE telco.raw ($header)"
psql -d "$db" -c "\copy telco.raw FROM '$ROOT/data/telco_customer_churn.csv' CSV HEADER"
psql -d "$db" -f "$ROOT/data/telco.sql"
