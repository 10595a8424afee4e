-- Health over time on 1,000,000 accounts and 13 monthly snapshots (12,500,000 fact rows), each against a
-- baseline written by hand in the same run:
--  * backfill of the 13 snapshots vs. the same history computed and inserted by hand (CASE per snapshot row,
--    gaps and islands, INSERT into a table with membership's indexes);
--  * a 12-month health_series vs. the same series by hand (membership validity ranges joined to the ARR
--    snapshots at each period's start and end, FILTER aggregates) computing only a core of its columns.
-- Scale with: psql -v accounts=50000 -f bench/health_series.sql
\if :{?accounts}
\else
\set accounts 1000000
\endif
SET work_mem = '256MB';
DROP TABLE IF EXISTS bench.hs_snapshots, bench.hs_accounts, bench.hand_history CASCADE;
CREATE TABLE bench.hs_snapshots AS
SELECT a AS id, timestamptz '2024-01-01 00:00+00' + k * interval '1 month' AS taken_at,
       (a * 37) % 5000 + k * (a % 4) * 40 AS employees,
       CASE WHEN a % 9 = 0 THEN 0 ELSE 1000 + (a % 50) * 500 + k * (a % 3) * 200 END::numeric AS arr
FROM generate_series(1, :accounts) a, generate_series(0, 12) k
WHERE NOT (a % 23 = 0 AND k > a % 12);
CREATE TABLE bench.hs_accounts AS SELECT id, employees, arr FROM bench.hs_snapshots WHERE taken_at = '2025-01-01 00:00+00';
ALTER TABLE bench.hs_accounts ADD PRIMARY KEY (id);
VACUUM ANALYZE bench.hs_snapshots, bench.hs_accounts;

DELETE FROM segments.segmentation WHERE name = 'hs';
INSERT INTO segments.segmentation (name, source, key_column, arr_facts, arr_facts_time, arr_facts_value)
VALUES ('hs', 'bench.hs_accounts', 'id', 'bench.hs_snapshots', 'taken_at', 'arr');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('hs', 'Enterprise', 1, '{"attr": "employees", "op": ">=", "value": 3000}'),
  ('hs', 'Mid-Market', 2, '{"attr": "employees", "op": ">=", "value": 500}'),
  ('hs', 'SMB', 3, 'true');

CREATE TEMP TABLE timings (what text, ms float8);

-- backfill (three runs, each on an empty history) against the hand-written history
DO $$
DECLARE t0 timestamptz;
BEGIN
    FOR i IN 1..3 LOOP
        DROP TABLE IF EXISTS bench.hand_history;
        CREATE TABLE bench.hand_history (LIKE segments.membership INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
        CHECKPOINT;
        t0 := clock_timestamp();
        INSERT INTO bench.hand_history (segmentation, account_key, segment, valid, exclusive)
        WITH seen AS (
            SELECT id::text AS account_key, taken_at,
                   CASE WHEN employees >= 3000 THEN 'Enterprise' WHEN employees >= 500 THEN 'Mid-Market' ELSE 'SMB' END AS segment
            FROM bench.hs_snapshots),
        snaps AS (SELECT taken_at, row_number() OVER (ORDER BY taken_at) AS k, lead(taken_at) OVER (ORDER BY taken_at) AS next_at
                  FROM (SELECT DISTINCT taken_at FROM bench.hs_snapshots) x),
        runs AS (SELECT s.account_key, s.segment, n.taken_at, n.next_at,
                        n.k - row_number() OVER (PARTITION BY s.account_key, s.segment ORDER BY n.k) AS run
                 FROM seen s JOIN snaps n USING (taken_at))
        SELECT 'hs', account_key, segment,
               tstzrange(min(taken_at), CASE WHEN bool_or(next_at IS NULL) THEN NULL ELSE max(next_at) END), true
        FROM runs GROUP BY account_key, segment, run;
        INSERT INTO timings VALUES ('baseline: history by hand', extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END $$;
-- each backfill is its own transaction, as a one-off job's would be
DELETE FROM segments.membership WHERE segmentation = 'hs';
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM segments.backfill('hs', 'bench.hs_snapshots', 'taken_at');
INSERT INTO timings VALUES ('segments.backfill', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);
DELETE FROM segments.membership WHERE segmentation = 'hs';
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM segments.backfill('hs', 'bench.hs_snapshots', 'taken_at');
INSERT INTO timings VALUES ('segments.backfill', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);
SELECT count(*) AS ranges, (SELECT count(*) FROM bench.hand_history) AS hand_ranges,
       (SELECT count(*) FROM (SELECT account_key, segment, valid FROM segments.membership WHERE segmentation = 'hs'
                              EXCEPT SELECT account_key, segment, valid FROM bench.hand_history) d) AS differing
FROM segments.membership WHERE segmentation = 'hs';
ANALYZE segments.membership;

WITH medians AS (SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM timings GROUP BY what)
SELECT what, round(ms::numeric) AS ms, round((ms / (SELECT ms FROM medians WHERE what LIKE 'baseline%'))::numeric, 2) AS ratio
FROM medians ORDER BY ratio;
TRUNCATE timings;

-- the series against the hand-written one
INSERT INTO timings
SELECT 'segments.health_series, 12 months' AS what,
       bench.time_ms($q$SELECT count(*) FROM segments.health_series('hs', '2024-01-01 00:00+00', '2025-01-01 00:00+00')$q$, 3) AS ms
UNION ALL
-- by hand: the same figures (accounts at start and end, entered, exited, moved, ARR at start and end, logo
-- churn, NRR, GRR, ACV) for the cohort each segment held at each month's start
SELECT 'baseline: series by hand', bench.time_ms($q$
    WITH periods AS (SELECT p AS s, p + interval '1 month' AS e
                     FROM generate_series(timestamptz '2024-01-01 00:00+00', '2024-12-01 00:00+00', '1 month') p),
    spans AS (SELECT p.s, p.e, m.account_key, m.segment, bool_or(m.valid @> p.s) AS in_start, bool_or(m.valid @> p.e) AS in_end
              FROM periods p JOIN segments.membership m ON m.segmentation = 'hs' AND m.valid && tstzrange(p.s, p.e, '[]')
              GROUP BY 1, 2, 3, 4),
    accts AS (SELECT s, account_key, bool_or(in_start) AS any_start, bool_or(in_end) AS any_end FROM spans GROUP BY 1, 2),
    arr AS (SELECT id::text AS account_key, taken_at, sum(arr) AS arr FROM bench.hs_snapshots GROUP BY 1, 2),
    rows AS (SELECT x.*, a.any_start, a.any_end, coalesce(a0.arr, 0) AS arr_start, coalesce(a1.arr, 0) AS arr_end
             FROM spans x JOIN accts a USING (s, account_key)
             LEFT JOIN arr a0 ON a0.account_key = x.account_key AND a0.taken_at = x.s
             LEFT JOIN arr a1 ON a1.account_key = x.account_key AND a1.taken_at = x.e)
    SELECT count(*) FROM (
        SELECT s, segment, count(*) FILTER (WHERE in_start) AS accounts, count(*) FILTER (WHERE in_end) AS accounts_end,
               count(*) FILTER (WHERE NOT in_start) AS entered, count(*) FILTER (WHERE NOT in_end) AS exited,
               count(*) FILTER (WHERE NOT in_start AND any_start) AS moved_in, count(*) FILTER (WHERE NOT in_end AND any_end) AS moved_out,
               sum(arr_start) FILTER (WHERE in_start), sum(arr_end) FILTER (WHERE in_start),
               count(*) FILTER (WHERE in_start AND arr_start > 0 AND arr_end = 0)::float8
                   / nullif(count(*) FILTER (WHERE in_start AND arr_start > 0), 0) AS churn,
               sum(arr_end) FILTER (WHERE in_start AND arr_start > 0) / nullif(sum(arr_start) FILTER (WHERE in_start AND arr_start > 0), 0) AS nrr,
               sum(least(arr_start, arr_end)) FILTER (WHERE in_start AND arr_start > 0)
                   / nullif(sum(arr_start) FILTER (WHERE in_start AND arr_start > 0), 0) AS grr,
               avg(arr_start) FILTER (WHERE in_start AND arr_start > 0) AS avg_acv,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY arr_start) FILTER (WHERE in_start AND arr_start > 0) AS median_acv
        FROM rows GROUP BY 1, 2) x
$q$, 3);
WITH medians AS (SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM timings GROUP BY what)
SELECT what, round(ms::numeric) AS ms, round((ms / (SELECT ms FROM medians WHERE what LIKE 'baseline%'))::numeric, 2) AS ratio
FROM medians ORDER BY ratio;
