-- segment_of over 1,000,000 synthetic accounts with 6 segments of 1-3 conditions, against the same
-- classification hand-written as CASE, and against segments.to_sql's generated expression. segment_of(a,
-- 'bench') is compiled into the plan; segment_of(a, (SELECT 'bench')) names the segmentation through a
-- subquery, which is not a constant, and shows the per-row call (0.2.0 before plan-time compilation).
DROP TABLE IF EXISTS bench.accounts CASCADE;
CREATE TABLE bench.accounts AS
SELECT i AS id,
       (random() * 5000)::int AS employees,
       (ARRAY['Healthcare', 'Retail', 'Finance', 'Tech', 'Energy'])[1 + (i % 5)] AS industry,
       (ARRAY['US', 'DE', 'FR', 'JP'])[1 + (i % 4)] AS country,
       round((random() * 200000)::numeric, 2) AS arr,
       now() - (random() * 120) * interval '1 day' AS last_login_at
FROM generate_series(1, 1000000) i;
ANALYZE bench.accounts;

DELETE FROM segments.segmentation WHERE name = 'bench';
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('bench', 'bench.accounts', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('bench', 'Strategic', 1, '{"all": [{"attr": "employees", "op": ">=", "value": 4000}, {"attr": "arr", "op": ">=", "value": 150000}, {"attr": "country", "op": "=", "value": "US"}]}'),
  ('bench', 'Enterprise', 2, '{"attr": "employees", "op": ">=", "value": 3000}'),
  ('bench', 'Regulated', 3, '{"all": [{"attr": "industry", "op": "in", "value": ["Healthcare", "Finance"]}, {"attr": "arr", "op": ">", "value": 50000}]}'),
  ('bench', 'Dormant', 4, '{"attr": "last_login_at", "op": "older_than", "value": "60 days"}'),
  ('bench', 'Mid-market', 5, '{"all": [{"attr": "employees", "op": "between", "value": [500, 2999]}, {"attr": "country", "op": "!=", "value": "JP"}]}'),
  ('bench', 'SMB', 6, '{"attr": "employees", "op": "<", "value": 500}');

\set case_sql 'CASE WHEN employees >= 4000 AND arr >= 150000 AND country = ''US'' THEN ''Strategic'' WHEN employees >= 3000 THEN ''Enterprise'' WHEN industry IN (''Healthcare'', ''Finance'') AND arr > 50000 THEN ''Regulated'' WHEN last_login_at < now() - interval ''60 days'' THEN ''Dormant'' WHEN employees BETWEEN 500 AND 2999 AND country <> ''JP'' THEN ''Mid-market'' WHEN employees < 500 THEN ''SMB'' ELSE ''Unsegmented'' END'

-- the three must agree before they are timed
SELECT count(*) AS disagreements FROM bench.accounts a
WHERE segments.segment_of(a, 'bench') IS DISTINCT FROM (:case_sql);

SELECT format('SELECT %s AS s, count(*) FROM bench.accounts a GROUP BY 1', segments.to_sql('bench')) AS to_sql_query \gset

CREATE TEMP TABLE results (mode text, query text, ms float8);
SET max_parallel_workers_per_gather = 0;
INSERT INTO results VALUES
  ('serial', 'hand-written CASE', bench.time_ms(format('SELECT %s AS s, count(*) FROM bench.accounts GROUP BY 1', :'case_sql'))),
  ('serial', 'segment_of(a)', bench.time_ms($$SELECT segments.segment_of(a, 'bench'), count(*) FROM bench.accounts a GROUP BY 1$$)),
  ('serial', 'segment_of(a), per-row call', bench.time_ms($$SELECT segments.segment_of(a, (SELECT 'bench')), count(*) FROM bench.accounts a GROUP BY 1$$)),
  ('serial', 'to_sql expression', bench.time_ms(:'to_sql_query'));
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
INSERT INTO results VALUES
  ('parallel', 'hand-written CASE', bench.time_ms(format('SELECT %s AS s, count(*) FROM bench.accounts GROUP BY 1', :'case_sql'))),
  ('parallel', 'segment_of(a)', bench.time_ms($$SELECT segments.segment_of(a, 'bench'), count(*) FROM bench.accounts a GROUP BY 1$$)),
  ('parallel', 'segment_of(a), per-row call', bench.time_ms($$SELECT segments.segment_of(a, (SELECT 'bench')), count(*) FROM bench.accounts a GROUP BY 1$$)),
  ('parallel', 'to_sql expression', bench.time_ms(:'to_sql_query'));

SELECT r.mode, r.query, round(r.ms::numeric, 1) AS ms,
       round((r.ms / b.ms)::numeric, 2) AS ratio_to_case
FROM results r JOIN results b ON b.mode = r.mode AND b.query = 'hand-written CASE'
ORDER BY r.mode DESC, r.ms;
