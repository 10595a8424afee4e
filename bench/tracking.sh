#!/usr/bin/env bash
# Trigger-mode overhead: single-row updates with pgbench on 100,000 accounts, without and with
# segments.track(), as a latency ratio. Run by bin/bench (PGHOST/PGPORT point at the bench cluster).
set -euo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }
q <<'SQL'
DROP TABLE IF EXISTS bench.tracked CASCADE;
CREATE TABLE bench.tracked AS
SELECT i AS id, (random() * 5000)::int AS employees, round((random() * 200000)::numeric, 2) AS arr
FROM generate_series(1, 100000) i;
ALTER TABLE bench.tracked ADD PRIMARY KEY (id);
DELETE FROM segments.segmentation WHERE name = 'tracked';
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('tracked', 'bench.tracked', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('tracked', 'Enterprise', 1, '{"attr": "employees", "op": ">=", "value": 3000}'),
  ('tracked', 'Mid', 2, '{"attr": "employees", "op": ">=", "value": 500}'),
  ('tracked', 'SMB', 3, 'true');
VACUUM ANALYZE bench.tracked;
SQL
script=$(mktemp)
cat > "$script" <<'SQL'
\set id random(1, 100000)
UPDATE bench.tracked SET employees = (employees + 997) % 5000 WHERE id = :id;
SQL
latency() {  # average latency in ms over a 15 s run, one client
  "$PG_BIN/pgbench" -n -c 1 -T 15 -f "$script" bench 2>/dev/null | awk '/latency average/ {print $4}'
}
plain=$(latency)
q -c "SELECT segments.track('tracked')" >/dev/null
tracked=$(latency)
q -c "SELECT segments.untrack('tracked')" >/dev/null
rm -f "$script"
echo "single-row UPDATE latency: untracked ${plain} ms, tracked ${tracked} ms, ratio $(echo "$tracked / $plain" | bc -l | xargs printf '%.2f')"
