#!/usr/bin/env bash
# Creates database $1 (unless --existing is given) on the cluster in PGHOST/PGPORT with pg_segments installed and the Telco data loaded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
db=$1
psql() { "${PG_BIN:-/usr/lib/postgresql/15/bin}/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
# --existing: into a database made already (a Citus cluster's, with the citus extension)
[ "${2:-}" = --existing ] || psql -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
header=$(head -1 "$ROOT/data/telco_customer_churn.csv" | tr -d '\r' | sed 's/\([A-Za-z]*\)/"\1" text/g')
psql -d "$db" -c "CREATE SCHEMA telco" -c "CREATE TABLE telco.raw ($header)"
psql -d "$db" -c "\copy telco.raw FROM '$ROOT/data/telco_customer_churn.csv' CSV HEADER"
psql -d "$db" -f "$ROOT/data/telco.sql"

# Mall customers (k-means) and Fader & Hardie's retention table (sBG), shipped in data/
psql -d "$db" -c "CREATE SCHEMA models" \
  -c "CREATE TABLE models.mall (customer_id int PRIMARY KEY, genre text, age int, income numeric, spending_score numeric)" \
  -c "CREATE TABLE models.retention (year int PRIMARY KEY, regular numeric, high_end numeric)"
psql -d "$db" -c "\copy models.mall FROM '$ROOT/data/mall_customers.csv' CSV HEADER"
psql -d "$db" -c "\copy models.retention FROM '$ROOT/data/sbg_customer_retention.csv' CSV HEADER"

# CDNOW from the lifetimes wheel (not shipped: see data/README.md)
cache=${PG_SEGMENTS_RUN_DIR:-/tmp/pg_segments}/cache
wheel=$cache/Lifetimes-0.11.3-py3-none-any.whl
if ! echo "261e3dc89977c2b60767ca6728aaa29d429de0c814635070a749c36555895da8  $wheel" | sha256sum -c --quiet >/dev/null 2>&1; then
  mkdir -p "$cache"
  python3 -m pip download --quiet --no-deps --dest "$cache" lifetimes==0.11.3
  echo "261e3dc89977c2b60767ca6728aaa29d429de0c814635070a749c36555895da8  $wheel" | sha256sum -c --quiet
fi
python3 - "$wheel" "$cache" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if "datasets/" in n])
PY
datasets=$cache/lifetimes/datasets
psql -d "$db" -c "CREATE SCHEMA cdnow" \
  -c "CREATE TABLE cdnow.orders (customer_id int, order_date date, cds int, amount numeric)" \
  -c "CREATE TABLE cdnow.summary (customer_id int PRIMARY KEY, frequency int, recency numeric, t numeric)" \
  -c "CREATE TABLE cdnow.summary_spend (customer_id int PRIMARY KEY, frequency int, recency numeric, t numeric, monetary numeric)"
# CDNOW_sample.txt: whitespace-separated master id, id, yyyymmdd, CDs, dollars
sed -E 's/^ +//; s/ +/,/g' "$datasets/CDNOW_sample.txt" | cut -d, -f2- |
  psql -d "$db" -c "\copy cdnow.orders FROM STDIN CSV"
psql -d "$db" -c "\copy cdnow.summary FROM '$datasets/cdnow_customers_summary.csv' CSV HEADER"
psql -d "$db" -c "\copy cdnow.summary_spend FROM '$datasets/cdnow_customers_summary_with_transactions.csv' CSV HEADER"

# The SQL fuzzer and differential tester (tests/fuzz/fuzz.sql; run by 17_differential and bin/fuzz)
psql -d "$db" -f "$ROOT/tests/fuzz/fuzz.sql"
