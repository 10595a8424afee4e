#!/usr/bin/env bash
# Behavioral conditions on 1,000,000 accounts and 20,000,000 events (BENCH_ACCOUNTS, BENCH_EVENTS), in the
# same run as their hand-written baselines: a segmentation with two behavioral conditions ("at least 20 logins
# in the last 30 days", "no export in 90 days") assigned by refresh (steady state: nothing changed), by
# to_query and by the to_sql expression, against the same assignment written by hand as a LEFT JOIN of GROUP BY aggregates and a
# CASE; and segment_of on single accounts against the hand-written correlated subqueries for the same
# accounts. Run by bin/bench.
set -euo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
accounts=${BENCH_ACCOUNTS:-1000000}
events=${BENCH_EVENTS:-20000000}
q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }
q <<SQL
SELECT setseed(0.7);
DROP TABLE IF EXISTS bench.beh_accounts, bench.beh_events CASCADE;
CREATE TABLE bench.beh_accounts AS SELECT i AS id, 'Account ' || i AS name FROM generate_series(1, $accounts) i;
ALTER TABLE bench.beh_accounts ADD PRIMARY KEY (id);
CREATE TABLE bench.beh_events AS
SELECT 1 + (random() * random() * ($accounts - 1))::int AS account_id,   -- some accounts far busier than others
       CASE WHEN random() < 0.8 THEN 'login' ELSE 'feature' END AS type,
       CASE WHEN random() < 0.3 THEN 'export' ELSE 'report' END AS feature,
       timestamptz '2025-03-01' - random() * interval '180 days' AS at
FROM generate_series(1, $events);
CREATE INDEX ON bench.beh_events (account_id, at);
VACUUM ANALYZE bench.beh_accounts, bench.beh_events;
DELETE FROM segments.segmentation WHERE name = 'bench_beh';
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('bench_beh', 'bench.beh_accounts', 'id');
INSERT INTO segments.related_source (segmentation, name, relation, key_column, time_column)
VALUES ('bench_beh', 'events', 'bench.beh_events', 'account_id', 'at');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('bench_beh', 'Power users', 1, '{"related": "events", "agg": "count", "where": {"attr": "type", "op": "=", "value": "login"}, "within": "30 days", "as_of": "2025-03-01", "op": ">=", "value": 20}'),
  ('bench_beh', 'Never exports', 2, '{"related": "events", "agg": "count", "where": {"attr": "feature", "op": "=", "value": "export"}, "within": "90 days", "as_of": "2025-03-01", "op": "=", "value": 0}');
SELECT segments.refresh('bench_beh');
SQL
by_hand="SELECT a.id, CASE WHEN coalesce(l.n, 0) >= 20 THEN 'Power users' WHEN coalesce(e.n, 0) = 0 THEN 'Never exports' ELSE 'Unsegmented' END AS segment
FROM bench.beh_accounts a
LEFT JOIN (SELECT account_id, count(*) AS n FROM bench.beh_events WHERE type = 'login' AND at BETWEEN '2025-01-30' AND '2025-03-01' GROUP BY 1) l ON l.account_id = a.id
LEFT JOIN (SELECT account_id, count(*) AS n FROM bench.beh_events WHERE feature = 'export' AND at BETWEEN '2024-12-01' AND '2025-03-01' GROUP BY 1) e ON e.account_id = a.id"
one_by_hand="SELECT CASE WHEN (SELECT count(*) FROM bench.beh_events e WHERE e.account_id = a.id AND e.type = 'login' AND e.at BETWEEN '2025-01-30' AND '2025-03-01') >= 20 THEN 'Power users'
                         WHEN (SELECT count(*) FROM bench.beh_events e WHERE e.account_id = a.id AND e.feature = 'export' AND e.at BETWEEN '2024-12-01' AND '2025-03-01') = 0 THEN 'Never exports'
                         ELSE 'Unsegmented' END"
q -v by_hand="$by_hand" -v one_by_hand="$one_by_hand" <<'SQL'
SET TimeZone = 'UTC';
SET max_parallel_workers_per_gather = 0;
-- they must agree before they are timed
SELECT count(*) AS disagreements FROM (:by_hand) h
LEFT JOIN segments.membership m ON m.segmentation = 'bench_beh' AND upper_inf(m.valid) AND m.account_key = h.id::text
WHERE m.segment IS DISTINCT FROM h.segment;
SELECT format('SELECT %s AS s, count(*) FROM bench.beh_accounts t GROUP BY 1', segments.to_sql('bench_beh')) AS to_sql_query \gset
SELECT format('SELECT segments_segment, count(*) FROM (%s) q GROUP BY 1', segments.to_query('bench_beh')) AS to_query_query \gset
CREATE TEMP TABLE results (query text, ms float8);
INSERT INTO results VALUES
  ('hand-written LEFT JOIN of GROUP BY + CASE', bench.time_ms(format('SELECT segment, count(*) FROM (%s) h GROUP BY 1', :'by_hand'), 3)),
  ('refresh (nothing changed)', bench.time_ms($$SELECT segments.refresh('bench_beh')$$, 3)),
  ('to_query (one query, aggregates joined)', bench.time_ms(:'to_query_query', 3)),
  ('to_sql expression (correlated subqueries)', bench.time_ms(:'to_sql_query', 3));
-- single accounts: 2,000 lookups of spread-out accounts in one statement each way
INSERT INTO results VALUES
  ('hand-written correlated subqueries, 2000 accounts', bench.time_ms(format(
      'SELECT count(x.s) FROM generate_series(1, 2000) k, LATERAL (SELECT (%s) AS s FROM bench.beh_accounts a WHERE a.id = 1 + (k * 7919) %% (SELECT count(*) FROM bench.beh_accounts)) x', :'one_by_hand'), 5)),
  ('segment_of(a), 2000 accounts', bench.time_ms(
      $$SELECT count(x.s) FROM generate_series(1, 2000) k, LATERAL (SELECT segments.segment_of(a, 'bench_beh') AS s FROM bench.beh_accounts a WHERE a.id = 1 + (k * 7919) % (SELECT count(*) FROM bench.beh_accounts)) x$$, 5));
SELECT query, round(ms::numeric, 1) AS ms,
       round((ms / CASE WHEN query LIKE '%2000 accounts' THEN (SELECT ms FROM results WHERE query LIKE 'hand-written correlated%')
                        ELSE (SELECT ms FROM results WHERE query LIKE 'hand-written LEFT JOIN%') END)::numeric, 2) AS ratio,
       CASE WHEN query LIKE '%2000 accounts' THEN round((ms / 2000)::numeric, 4) END AS ms_per_account
FROM results;
SQL
