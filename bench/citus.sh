#!/usr/bin/env bash
# On a 3-node localhost Citus cluster (a coordinator and two workers, its own, started here), 2,000,000
# accounts (BENCH_ACCOUNTS) distributed over 32 shards: segment_of GROUP BY and the health aggregates per
# segment, against the same queries written by hand with the to_sql CASE and count(*) FILTER, in one run.
# Run by bin/bench (PostgreSQL 15 with Citus; bin/test's Citus suite builds Citus once).
set -euo pipefail
source "$(dirname "$0")/../bin/lib.sh"
provision_citus
accounts=${BENCH_ACCOUNTS:-2000000}
saved_port=${PGPORT:-}
PG_SEGMENTS_PORT=$(( ${PG_SEGMENTS_PORT:-54329} + 10 ))
citus_start bench-citus bench "shared_buffers=512MB" "work_mem=64MB"
trap 'citus_stop bench-citus' EXIT
q() { psql_q -d bench "$@"; }
q -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_segments CASCADE" -f "$ROOT/bench/setup.sql"
q <<SQL
SET client_min_messages = warning;
SELECT setseed(0.3);
CREATE TABLE bench.accounts (id bigint PRIMARY KEY, employees int, industry text, country text, arr numeric,
                             arr_start numeric, churned boolean, nps int, last_login_at timestamptz);
SELECT create_distributed_table('bench.accounts', 'id', shard_count := 32);
INSERT INTO bench.accounts
SELECT i, (random() * 5000)::int, (ARRAY['Healthcare', 'Retail', 'Finance', 'Tech', 'Energy'])[1 + (i % 5)],
       (ARRAY['US', 'DE', 'FR', 'JP'])[1 + (i % 4)], round((random() * 200000)::numeric, 2),
       round((random() * 200000)::numeric, 2), random() < 0.1, (random() * 10)::int,
       now() - (random() * 120) * interval '1 day'
FROM generate_series(1, $accounts) i;
VACUUM ANALYZE bench.accounts;
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('bench', 'bench.accounts', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('bench', 'Strategic', 1, '{"all": [{"attr": "employees", "op": ">=", "value": 4000}, {"attr": "arr", "op": ">=", "value": 150000}, {"attr": "country", "op": "=", "value": "US"}]}'),
  ('bench', 'Enterprise', 2, '{"attr": "employees", "op": ">=", "value": 3000}'),
  ('bench', 'Regulated', 3, '{"all": [{"attr": "industry", "op": "in", "value": ["Healthcare", "Finance"]}, {"attr": "arr", "op": ">", "value": 50000}]}'),
  ('bench', 'Dormant', 4, '{"attr": "last_login_at", "op": "older_than", "value": "60 days"}'),
  ('bench', 'Mid-market', 5, '{"all": [{"attr": "employees", "op": "between", "value": [500, 2999]}, {"attr": "country", "op": "!=", "value": "JP"}]}'),
  ('bench', 'SMB', 6, '{"attr": "employees", "op": "<", "value": 500}');
SELECT segments.to_sql('bench') AS case_sql \gset

-- they must agree before they are timed
SELECT count(*) AS disagreements FROM (
  (SELECT segments.segment_of(a, 'bench') AS s, count(*) FROM bench.accounts a GROUP BY 1
   EXCEPT SELECT :case_sql, count(*) FROM bench.accounts GROUP BY 1)
  UNION ALL
  (SELECT :case_sql, count(*) FROM bench.accounts GROUP BY 1
   EXCEPT SELECT segments.segment_of(a, 'bench'), count(*) FROM bench.accounts a GROUP BY 1)) d;

CREATE TEMP TABLE queries (i int, query text, baseline int, sql text);
INSERT INTO queries VALUES
  (1, 'CASE GROUP BY', 1, format('SELECT %s AS s, count(*) FROM bench.accounts GROUP BY 1', :'case_sql')),
  (2, 'segment_of GROUP BY', 1, \$\$SELECT segments.segment_of(a, 'bench'), count(*) FROM bench.accounts a GROUP BY 1\$\$),
  (3, 'health by hand (CASE, FILTER)', 3, format(\$\$SELECT %s AS s, count(*), count(*) FILTER (WHERE churned)::float8 / count(*) AS churn,
       sum(coalesce(arr, 0)) FILTER (WHERE arr_start > 0) / nullif(sum(arr_start) FILTER (WHERE arr_start > 0), 0) AS nrr,
       100.0 * (count(*) FILTER (WHERE nps >= 9) - count(*) FILTER (WHERE nps <= 6)) / count(nps) AS nps
     FROM bench.accounts GROUP BY 1\$\$, :'case_sql')),
  (4, 'health aggregates by segment_of', 3, \$\$SELECT segments.segment_of(a, 'bench'), count(*), segments.churn_rate(churned),
       segments.nrr(arr_start, arr), segments.nps(nps) FROM bench.accounts a GROUP BY 1\$\$);
CREATE TEMP TABLE results AS
SELECT q.i, q.query, q.baseline, t.ms[q.i] AS ms
FROM queries q, (SELECT bench.time_in_turns(array_agg(sql ORDER BY i)) AS ms FROM queries) t;
SELECT r.query, round(r.ms::numeric, 1) AS ms, round((r.ms / b.ms)::numeric, 2) AS ratio_to_baseline
FROM results r JOIN results b ON b.i = r.baseline ORDER BY r.i;
SQL
