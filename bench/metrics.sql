-- Each health aggregate over 5,000,000 rows against the same metric written by hand in SQL, serial and with
-- 2 parallel workers.
DROP TABLE IF EXISTS bench.facts;
CREATE TABLE bench.facts AS
SELECT i AS id, (i % 11)::int AS score, (i % 7 = 0) AS churned,
       round((1000 + (i % 997) * 13.7)::numeric, 2) AS arr_start,
       CASE WHEN i % 9 = 0 THEN NULL ELSE round((900 + (i % 991) * 14.1)::numeric, 2) END AS arr_end
FROM generate_series(1, 5000000) i;
VACUUM ANALYZE bench.facts;

CREATE TEMP TABLE metric_queries (metric text, ours text, hand text);
INSERT INTO metric_queries VALUES
  ('nps', 'SELECT segments.nps(score) FROM bench.facts',
   'SELECT 100 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6))::numeric / count(score) FROM bench.facts'),
  ('churn_rate', 'SELECT segments.churn_rate(churned) FROM bench.facts',
   'SELECT (count(*) FILTER (WHERE churned))::float8 / count(churned) FROM bench.facts'),
  ('nrr', 'SELECT segments.nrr(arr_start, arr_end) FROM bench.facts',
   'SELECT (sum(coalesce(arr_end, 0)) FILTER (WHERE arr_start > 0) / sum(arr_start) FILTER (WHERE arr_start > 0))::float8 FROM bench.facts'),
  ('grr', 'SELECT segments.grr(arr_start, arr_end) FROM bench.facts',
   'SELECT (sum(least(coalesce(arr_end, 0), arr_start)) FILTER (WHERE arr_start > 0) / sum(arr_start) FILTER (WHERE arr_start > 0))::float8 FROM bench.facts'),
  ('arr_growth', 'SELECT segments.arr_growth(arr_start, arr_end) FROM bench.facts',
   'SELECT ((sum(coalesce(arr_end, 0)) - sum(coalesce(arr_start, 0))) / sum(coalesce(arr_start, 0)))::float8 FROM bench.facts'),
  ('churn_rate_ci', 'SELECT segments.churn_rate_ci(churned) FROM bench.facts',
   'SELECT count(*) FILTER (WHERE churned), count(churned) FROM bench.facts');

CREATE TEMP TABLE metric_results (metric text, workers int, ours_ms float8, hand_ms float8);
SET max_parallel_workers_per_gather = 0;
INSERT INTO metric_results SELECT metric, 0, bench.time_ms(ours, 3), bench.time_ms(hand, 3) FROM metric_queries;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
INSERT INTO metric_results SELECT metric, 2, bench.time_ms(ours, 3), bench.time_ms(hand, 3) FROM metric_queries;

SELECT s.metric, round(s.ours_ms::numeric) AS serial_ms, round(s.hand_ms::numeric) AS hand_serial_ms,
       round((s.ours_ms / s.hand_ms)::numeric, 2) AS ratio_serial,
       round((p.ours_ms / p.hand_ms)::numeric, 2) AS ratio_2_workers,
       round((s.ours_ms / p.ours_ms)::numeric, 2) AS speedup_2_workers
FROM metric_results s JOIN metric_results p ON p.metric = s.metric AND p.workers = 2
WHERE s.workers = 0 ORDER BY s.metric;
