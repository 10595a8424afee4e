-- Health over time: history backfilled from snapshots, cohort-correct periods, monthly series, migration.
-- A generated CRM: 600 accounts in 7 monthly snapshots (2024-01-01 .. 2024-07-01). Head counts grow for some
-- accounts (they move up a tier), some accounts churn (they vanish from later snapshots), some are prospects
-- (ARR 0) and some join in March. Every figure is checked against plain SQL over the snapshots themselves.
SET TimeZone = 'UTC';  -- the dates below are UTC midnights
CREATE SCHEMA crm;
CREATE TABLE crm.snapshots AS
SELECT a AS id, timestamptz '2024-01-01 00:00+00' + k * interval '1 month' AS taken_at,
       (a * 37) % 1400 + k * (a % 4) * 60 AS employees,
       CASE WHEN a % 9 = 0 THEN 0 ELSE 1000 + (a % 50) * 500 + k * (a % 3) * 200 END::numeric AS arr
FROM generate_series(1, 600) a, generate_series(0, 6) k
WHERE NOT (a % 11 = 0 AND k > a % 6)     -- churned: gone from the later snapshots
  AND NOT (a % 13 = 0 AND k < 2);        -- new accounts from March on
-- the accounts table holds today's data: the last snapshot's
CREATE TABLE crm.accounts AS SELECT id, employees, arr FROM crm.snapshots WHERE taken_at = '2024-07-01';
ALTER TABLE crm.accounts ADD PRIMARY KEY (id);
CREATE TABLE crm.nps_answers AS
SELECT a AS id, timestamptz '2024-01-05 00:00+00' + ((a * 13) % 180) * interval '1 day' AS answered_at,
       (a * 7) % 11 AS score
FROM generate_series(1, 600) a WHERE a % 2 = 0;

INSERT INTO segments.segmentation (name, source, key_column, gross_margin, min_segment_size,
                                   arr_facts, arr_facts_time, arr_facts_value, nps_facts, nps_facts_time, nps_facts_value)
VALUES ('tier', 'crm.accounts', 'id', 0.8, 40,
        'crm.snapshots', 'taken_at', 'arr', 'crm.nps_answers', 'answered_at', 'score');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
  ('tier', 'Enterprise', NULL, 1, '{"attr": "employees", "op": ">=", "value": 800}'),
  ('tier', 'Large enterprise', 'Enterprise', 1, '{"attr": "employees", "op": ">=", "value": 1200}'),
  ('tier', 'Mid-Market', NULL, 2, '{"attr": "employees", "op": ">=", "value": 200}'),
  ('tier', 'SMB', NULL, 3, '{"attr": "employees", "op": "<", "value": 200}'),
  ('tier', 'Unused', NULL, 4, '{"attr": "employees", "op": ">", "value": 100000}');

-- Declarations are checked when saved.
SELECT * FROM error_of($$UPDATE segments.segmentation SET nps_facts_time = NULL WHERE name = 'tier'$$);
SELECT * FROM error_of($$UPDATE segments.segmentation SET arr_facts_time = 'employees' WHERE name = 'tier'$$);
SELECT * FROM error_of($$UPDATE segments.segmentation SET arr_facts_value = 'nope' WHERE name = 'tier'$$);

-- 1. Backfill: history as if refresh() had run at each snapshot.
SELECT * FROM segments.backfill('tier', 'crm.snapshots', 'taken_at');
SELECT count(*) AS ranges, count(*) FILTER (WHERE upper_inf(valid)) AS open_ranges
FROM segments.membership WHERE segmentation = 'tier';
-- rerunning changes nothing
SELECT * FROM segments.backfill('tier', 'crm.snapshots', 'taken_at');
-- the same history as refresh() run at each snapshot of a live table (its instants mapped to the snapshot times)
CREATE TABLE crm.live (LIKE crm.accounts);
ALTER TABLE crm.live ADD PRIMARY KEY (id);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('tier_live', 'crm.live', 'id');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule)
SELECT 'tier_live', name, parent, priority, rule FROM segments.segment WHERE segmentation = 'tier' ORDER BY parent NULLS FIRST;
DO $$
DECLARE t timestamptz;
BEGIN
    FOR t IN SELECT DISTINCT taken_at FROM crm.snapshots ORDER BY 1 LOOP
        DELETE FROM crm.live;
        INSERT INTO crm.live SELECT id, employees, arr FROM crm.snapshots WHERE taken_at = t;
        PERFORM segments.refresh('tier_live');
    END LOOP;
END $$;
WITH instants AS (
    SELECT at, row_number() OVER (ORDER BY at) AS k
    FROM (SELECT lower(valid) AS at FROM segments.membership WHERE segmentation = 'tier_live'
          UNION SELECT upper(valid) FROM segments.membership WHERE segmentation = 'tier_live' AND NOT upper_inf(valid)) x),
snaps AS (SELECT taken_at, row_number() OVER (ORDER BY taken_at) AS k FROM (SELECT DISTINCT taken_at FROM crm.snapshots) s),
live AS (
    SELECT m.account_key, m.segment, sl.taken_at AS from_at, su.taken_at AS to_at
    FROM segments.membership m JOIN instants il ON il.at = lower(m.valid) JOIN snaps sl ON sl.k = il.k
    LEFT JOIN instants iu ON iu.at = upper(m.valid) LEFT JOIN snaps su ON su.k = iu.k
    WHERE m.segmentation = 'tier_live'),
back AS (SELECT account_key, segment, lower(valid), upper(valid) FROM segments.membership WHERE segmentation = 'tier')
SELECT (SELECT count(*) FROM instants) AS refresh_instants, (SELECT count(*) FROM live) AS refreshed_ranges,
       (SELECT count(*) FROM back) AS backfilled_ranges,
       (SELECT count(*) FROM (SELECT * FROM live EXCEPT SELECT * FROM back) d) AS only_refreshed,
       (SELECT count(*) FROM (SELECT * FROM back EXCEPT SELECT * FROM live) d) AS only_backfilled;
-- segment_at and transitions answer for last year on day one
SELECT segments.segment_at('tier', '4', '2024-01-15') AS jan, segments.segment_at('tier', '4', '2024-06-15') AS jun,
       (SELECT employees FROM crm.snapshots WHERE id = 4 AND taken_at = '2024-01-01') AS jan_employees,
       (SELECT employees FROM crm.snapshots WHERE id = 4 AND taken_at = '2024-06-01') AS jun_employees;

-- 2. Periods: each month's cohort is the accounts a tier held at the month's start (a parent holds its subtree).
CREATE TEMP VIEW hand AS
WITH snap AS (
    SELECT id, taken_at, arr,
           CASE WHEN employees >= 800 THEN CASE WHEN employees >= 1200 THEN 'Large enterprise' ELSE 'Enterprise' END
                WHEN employees >= 200 THEN 'Mid-Market' ELSE 'SMB' END AS leaf
    FROM crm.snapshots),
placed AS (SELECT s.*, seg FROM snap s, unnest(CASE s.leaf WHEN 'Large enterprise' THEN ARRAY['Large enterprise', 'Enterprise']
                                                        ELSE ARRAY[s.leaf] END) seg),
periods AS (SELECT p AS period_start, p + interval '1 month' AS period_end
            FROM generate_series(timestamptz '2024-01-01 00:00+00', '2024-06-01 00:00+00', '1 month') p),
pairs AS (  -- each account under each tier it held at the start or the end of a period
    SELECT p.period_start, x.id, x.seg, EXISTS (SELECT 1 FROM placed y WHERE y.taken_at = p.period_start AND y.id = x.id AND y.seg = x.seg) AS in_start,
           true AS in_end
    FROM periods p JOIN placed x ON x.taken_at = p.period_end
    UNION
    SELECT p.period_start, x.id, x.seg, true,
           EXISTS (SELECT 1 FROM placed y WHERE y.taken_at = p.period_end AND y.id = x.id AND y.seg = x.seg)
    FROM periods p JOIN placed x ON x.taken_at = p.period_start),
rows AS (
    SELECT q.*, s0.arr AS arr_start, coalesce(s1.arr, 0) AS arr_end, s0.id IS NOT NULL AS any_start, s1.id IS NOT NULL AS any_end
    FROM pairs q
    LEFT JOIN crm.snapshots s0 ON s0.id = q.id AND s0.taken_at = q.period_start
    LEFT JOIN crm.snapshots s1 ON s1.id = q.id AND s1.taken_at = q.period_start + interval '1 month'),
nps AS (
    SELECT r.period_start, r.seg, count(*) AS responses,
           100.0 * (count(*) FILTER (WHERE n.score >= 9) - count(*) FILTER (WHERE n.score <= 6)) / count(*) AS nps
    FROM rows r JOIN crm.nps_answers n ON n.id = r.id AND n.answered_at >= r.period_start
                                      AND n.answered_at < r.period_start + interval '1 month'
    WHERE r.in_start GROUP BY 1, 2)
SELECT r.period_start, r.seg AS segment,
       count(*) FILTER (WHERE in_start) AS accounts, count(*) FILTER (WHERE in_end) AS accounts_end,
       count(*) FILTER (WHERE NOT in_start) AS entered, count(*) FILTER (WHERE NOT in_end) AS exited,
       count(*) FILTER (WHERE NOT in_start AND any_start) AS moved_in, count(*) FILTER (WHERE NOT in_end AND any_end) AS moved_out,
       sum(arr_start) FILTER (WHERE in_start) AS arr_start, sum(arr_end) FILTER (WHERE in_start) AS arr_end,
       count(*) FILTER (WHERE in_start AND arr_start > 0) AS paying,
       count(*) FILTER (WHERE in_start AND arr_start > 0 AND arr_end = 0) AS churned,
       sum(arr_end) FILTER (WHERE in_start AND arr_start > 0) / sum(arr_start) FILTER (WHERE in_start AND arr_start > 0) AS nrr,
       sum(least(arr_start, arr_end)) FILTER (WHERE in_start AND arr_start > 0)
           / sum(arr_start) FILTER (WHERE in_start AND arr_start > 0) AS grr,
       avg(arr_start) FILTER (WHERE in_start AND arr_start > 0) AS avg_acv,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY arr_start) FILTER (WHERE in_start AND arr_start > 0) AS median_acv,
       max(v.responses) AS responses, max(v.nps) AS nps
FROM rows r LEFT JOIN nps v ON v.period_start = r.period_start AND v.seg = r.seg
GROUP BY 1, 2;

CREATE TEMP TABLE series AS SELECT * FROM segments.health_series('tier', '2024-01-01 00:00+00', '2024-07-01 00:00+00');
SELECT count(*) AS series_rows, count(DISTINCT period_start) AS periods FROM series;
SELECT s.segment, count(*) AS periods,
       bool_and(s.accounts = coalesce(h.accounts, 0) AND s.accounts_end = coalesce(h.accounts_end, 0)) AS accounts_ok,
       bool_and(s.entered = coalesce(h.entered, 0) AND s.exited = coalesce(h.exited, 0)) AS entered_exited_ok,
       bool_and(s.moved_in = coalesce(h.moved_in, 0) AND s.moved_out = coalesce(h.moved_out, 0)) AS moved_ok,
       bool_and(s.arr_start IS NOT DISTINCT FROM h.arr_start AND s.arr_end IS NOT DISTINCT FROM h.arr_end) AS arr_ok,
       bool_and(s.paying_accounts = coalesce(h.paying, 0) AND s.churned = coalesce(h.churned, 0)) AS churn_counts_ok,
       bool_and(h.paying IS NULL OR abs(s.churn_rate - h.churned::float8 / h.paying) < 1e-12) AS churn_rate_ok,
       bool_and(h.nrr IS NULL OR abs(s.nrr - h.nrr::float8) <= 1e-12 * h.nrr AND abs(s.grr - h.grr::float8) <= 1e-12 * h.grr) AS nrr_grr_ok,
       bool_and(h.avg_acv IS NULL OR abs(s.avg_acv - h.avg_acv::float8) <= 1e-12 * h.avg_acv AND s.median_acv = h.median_acv) AS acv_ok,
       bool_and(s.nps_responses = coalesce(h.responses, 0)
                AND (s.nps IS NULL AND h.nps IS NULL OR abs(s.nps - h.nps) < 1e-12)) AS nps_ok,
       sum(s.accounts) AS account_months, sum(s.churned) AS churned
FROM series s LEFT JOIN hand h USING (period_start, segment)
GROUP BY 1 ORDER BY 1;
-- shares of the top level add up to 1; CLV = mean ARR × margin / churn; small segments flagged
SELECT period_start::date, round(sum(account_share) FILTER (WHERE level = 1)::numeric, 12) AS top_level_shares,
       round(sum(arr_share) FILTER (WHERE level = 1)::numeric, 12) AS top_level_arr_shares
FROM series GROUP BY 1 ORDER BY 1;
SELECT period_start::date, segment, accounts, churned, round(churn_rate::numeric, 6) AS churn_rate,
       round(clv::numeric, 2) AS clv,
       round((avg_acv * 0.8 / churn_rate)::numeric, 2) AS hand_clv, small_sample
FROM series WHERE period_start = '2024-03-01' ORDER BY segment;
-- a single period equals its row of the series
SELECT count(*) AS differing_rows FROM (
    (SELECT * FROM segments.period_health('tier', '2024-04-01 00:00+00', '2024-05-01 00:00+00')
     EXCEPT SELECT * FROM series WHERE period_start = '2024-04-01')
    UNION ALL
    (SELECT * FROM series WHERE period_start = '2024-04-01'
     EXCEPT SELECT * FROM segments.period_health('tier', '2024-04-01 00:00+00', '2024-05-01 00:00+00'))) d;
-- after the last snapshot the end is unknown: no churn yet, the cohort and its starting ARR are known
SELECT segment, accounts, arr_start, arr_end, churn_rate, paying_accounts
FROM segments.period_health('tier', '2024-07-01 00:00+00', '2024-08-01 00:00+00') ORDER BY segment;

-- 3. Migration per month: accounts and ARR from tier to tier, against the snapshots.
SELECT count(*) AS cells, sum(accounts) AS accounts,
       count(*) FILTER (WHERE from_segment IS DISTINCT FROM to_segment) AS moving_cells
FROM segments.migration_series('tier', '2024-01-01 00:00+00', '2024-07-01 00:00+00');
WITH leaf AS (
    SELECT id, taken_at, arr, CASE WHEN employees >= 800 THEN CASE WHEN employees >= 1200 THEN 'Large enterprise' ELSE 'Enterprise' END
                                   WHEN employees >= 200 THEN 'Mid-Market' ELSE 'SMB' END AS seg FROM crm.snapshots),
hand AS (
    SELECT coalesce(a.taken_at, b.taken_at - interval '1 month') AS period_start, a.seg AS from_segment, b.seg AS to_segment,
           count(*) AS accounts, sum(coalesce(a.arr, 0)) AS arr_start, sum(coalesce(b.arr, 0)) AS arr_end
    FROM (SELECT * FROM leaf WHERE taken_at < '2024-07-01') a
    FULL JOIN (SELECT * FROM leaf WHERE taken_at > '2024-01-01') b ON b.id = a.id AND b.taken_at = a.taken_at + interval '1 month'
    GROUP BY 1, 2, 3)
SELECT count(*) AS differing_cells FROM (
    (SELECT period_start, from_segment, to_segment, accounts, arr_start, arr_end
     FROM segments.migration_series('tier', '2024-01-01 00:00+00', '2024-07-01 00:00+00') EXCEPT SELECT * FROM hand)
    UNION ALL
    (SELECT * FROM hand EXCEPT SELECT period_start, from_segment, to_segment, accounts, arr_start, arr_end
     FROM segments.migration_series('tier', '2024-01-01 00:00+00', '2024-07-01 00:00+00'))) d;
SELECT from_segment, to_segment, accounts, arr_start, arr_end
FROM segments.migration_series('tier', '2024-03-01 00:00+00', '2024-04-01 00:00+00')
WHERE from_segment IS DISTINCT FROM to_segment ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;

-- 4. Backfill conflicts: a history that disagrees is kept unless overwrite is asked for.
UPDATE crm.snapshots SET employees = 5000 WHERE id = 1 AND taken_at = '2024-02-01';
SELECT sqlstate, message, detail, hint FROM error_of($$SELECT segments.backfill('tier', 'crm.snapshots', 'taken_at')$$);
SELECT * FROM segments.backfill('tier', 'crm.snapshots', 'taken_at', overwrite => true);
SELECT segment, lower(valid)::date AS since, upper(valid)::date AS until FROM segments.membership
WHERE segmentation = 'tier' AND account_key = '1' ORDER BY lower(valid);
-- a later refresh continues the backfilled history (today's data is the last snapshot's: nothing changes)
SELECT entered, "left", moved, unchanged FROM segments.refresh('tier');

-- Tags: an overlapping segmentation backfilled from the same snapshots counts each account under every tag it
-- carried at a period's start (checked against the tag conditions in plain SQL).
INSERT INTO segments.segmentation (name, source, key_column, mode, arr_facts, arr_facts_time, arr_facts_value)
VALUES ('traits', 'crm.accounts', 'id', 'overlapping', 'crm.snapshots', 'taken_at', 'arr');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('traits', 'Big', 1, '{"attr": "employees", "op": ">=", "value": 1000}'),
  ('traits', 'Paying', 2, '{"attr": "arr", "op": ">", "value": 0}');
SELECT snapshot_times, accounts, ranges_written FROM segments.backfill('traits', 'crm.snapshots', 'taken_at');
WITH tags AS (
    SELECT s.id, s.taken_at, s.arr, t.tag
    FROM crm.snapshots s CROSS JOIN LATERAL (VALUES ('Big', s.employees >= 1000), ('Paying', s.arr > 0),
                                                    ('Unsegmented', NOT (s.employees >= 1000 OR s.arr > 0))) t(tag, carries)
    WHERE t.carries),
hand AS (
    SELECT a.taken_at AS period_start, a.tag AS segment, count(*) AS accounts, sum(a.arr) AS arr_start,
           sum(coalesce(e.arr, 0)) AS arr_end, count(b.id) AS accounts_end_of_cohort
    FROM tags a LEFT JOIN crm.snapshots e ON e.id = a.id AND e.taken_at = a.taken_at + interval '1 month'
    LEFT JOIN tags b ON b.id = a.id AND b.tag = a.tag AND b.taken_at = a.taken_at + interval '1 month'
    WHERE a.taken_at < '2024-07-01' GROUP BY 1, 2)
SELECT s.segment, count(*) AS periods, sum(s.accounts) AS account_months,
       bool_and(s.accounts = h.accounts AND s.arr_start = h.arr_start AND s.arr_end = h.arr_end) AS cohort_ok,
       bool_and(s.accounts - s.exited = h.accounts_end_of_cohort) AS stayed_ok
FROM segments.health_series('traits', '2024-01-01', '2024-07-01') s JOIN hand h USING (period_start, segment)
GROUP BY 1 ORDER BY 1;
DELETE FROM segments.segmentation WHERE name = 'traits';

-- Moves inside a period (history from tracking or refreshes mid-month), worked by hand. January 2024:
--   a1 A all month; a2 A until the 15th, then B (a downgrade); a3 B from the 10th to the 20th (new, then gone);
--   a4 A until the 5th, then gone; a5 B, A from the 12th to the 25th, then B again; a6 new in A from the 20th.
-- A: start {a1 a2 a4} = 3, end {a1 a6} = 2, entered {a5 a6} = 2 (moved in: a5), exited {a2 a4 a5} = 3 (moved
--    out: a2 a5); ARR 100+50+80 = 230 at the start, 120+50+0 = 170 at the end: NRR 170/230, GRR 150/230,
--    a4 churned (1 of 3 paying).
-- B: start {a5} = 1, end {a2 a5} = 2, entered {a2 a3} = 2 (moved in: a2), exited {a3} = 1 (moved out: none);
--    ARR 30 → 0: a5 churned.
CREATE TABLE crm.moves_arr (id text, at timestamptz, arr numeric);
INSERT INTO crm.moves_arr VALUES ('a1', '2024-01-01', 100), ('a2', '2024-01-01', 50), ('a4', '2024-01-01', 80),
    ('a5', '2024-01-01', 30), ('a1', '2024-02-01', 120), ('a2', '2024-02-01', 50), ('a5', '2024-02-01', 0),
    ('a6', '2024-02-01', 200);
CREATE TABLE crm.moves (id text PRIMARY KEY);
INSERT INTO segments.segmentation (name, source, key_column, arr_facts, arr_facts_time, arr_facts_value)
VALUES ('moves', 'crm.moves', 'id', 'crm.moves_arr', 'at', 'arr');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES ('moves', 'A', 1, 'true'), ('moves', 'B', 2, 'true');
INSERT INTO segments.membership (segmentation, account_key, segment, valid, exclusive) VALUES
  ('moves', 'a1', 'A', '[2024-01-01,)', true),
  ('moves', 'a2', 'A', '[2024-01-01,2024-01-15)', true), ('moves', 'a2', 'B', '[2024-01-15,)', true),
  ('moves', 'a3', 'B', '[2024-01-10,2024-01-20)', true),
  ('moves', 'a4', 'A', '[2023-12-01,2024-01-05)', true),
  ('moves', 'a5', 'B', '[2024-01-01,2024-01-12)', true), ('moves', 'a5', 'A', '[2024-01-12,2024-01-25)', true),
  ('moves', 'a5', 'B', '[2024-01-25,)', true),
  ('moves', 'a6', 'A', '[2024-01-20,)', true);
SELECT segment, accounts, accounts_end, entered, exited, moved_in, moved_out, arr_start, arr_end,
       round(nrr::numeric, 6) AS nrr, round(170.0 / 230, 6) AS a_nrr_by_hand, round(grr::numeric, 6) AS grr,
       round(150.0 / 230, 6) AS a_grr_by_hand, paying_accounts, churned
FROM segments.period_health('moves', '2024-01-01', '2024-02-01') ORDER BY segment;
-- a period before any history: every count 0, ARR unknown
SELECT segment, accounts, accounts_end, entered, exited, arr_start, churn_rate
FROM segments.period_health('moves', '2023-06-01', '2023-07-01') ORDER BY segment;
DELETE FROM segments.segmentation WHERE name = 'moves';

-- A reader may backfill (as it may refresh) what it can read, but only an editor may replace recorded history.
CREATE ROLE regress_history_reader IN ROLE segments_reader;
GRANT USAGE ON SCHEMA crm TO regress_history_reader;
GRANT SELECT ON crm.accounts, crm.snapshots TO regress_history_reader;
SET ROLE regress_history_reader;
SELECT snapshot_times, ranges_written FROM segments.backfill('tier', 'crm.snapshots', 'taken_at');
SELECT sqlstate, message FROM error_of($$SELECT segments.backfill('tier', 'crm.snapshots', 'taken_at', overwrite => true)$$);
RESET ROLE;
REVOKE SELECT ON crm.snapshots FROM regress_history_reader;
SET ROLE regress_history_reader;
SELECT sqlstate, message FROM error_of($$SELECT segments.backfill('tier', 'crm.snapshots', 'taken_at')$$);
RESET ROLE;
DROP OWNED BY regress_history_reader;
DROP ROLE regress_history_reader;

-- Bad input.
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.health_series('tier', '2024-06-01', '2024-01-01')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.health_series('tier', '2024-01-01', '2024-06-01', '0 days')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.health_series('tier', '2024-01-01', '3024-06-01', '1 hour')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.period_health('tier', NULL, '2024-01-01')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.backfill('tier', 'crm.snapshots', 'employees')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.backfill('tier', 'crm.nps_answers', 'answered_at')$$);
INSERT INTO segments.segmentation (name, source, key_column, mode) VALUES ('tier_tags', 'crm.accounts', 'id', 'overlapping');
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.migration_series('tier_tags', '2024-01-01', '2024-02-01')$$);
DELETE FROM segments.segmentation WHERE name IN ('tier_tags', 'tier_live');
RESET TimeZone;

-- BI-ready views: commented, flat columns, created per segmentation.
SET TimeZone = 'UTC';
SELECT v::text AS view FROM segments.create_views('tier', 'crm') v ORDER BY 1;
SELECT c.relname, count(*) AS columns, count(*) FILTER (WHERE col_description(c.oid, a.attnum) IS NULL) AS uncommented,
       count(*) FILTER (WHERE a.atttypid IN ('tstzrange'::regtype, 'regclass'::regtype)
                           OR (SELECT typtype FROM pg_type WHERE oid = a.atttypid) = 'c') AS not_flat
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
WHERE c.relnamespace = 'crm'::regnamespace AND c.relname LIKE 'tier\_%' GROUP BY 1 ORDER BY 1;
SELECT (SELECT count(*) FROM crm.tier_health_monthly) AS monthly_rows,
       (SELECT count(DISTINCT period_start) FROM crm.tier_health_monthly) AS months,
       (SELECT count(*) FROM crm.tier_membership) = (SELECT count(*) FROM segments.membership WHERE segmentation = 'tier') AS membership_complete,
       (SELECT count(*) FROM crm.tier_membership WHERE is_current) AS current_members,
       (SELECT count(*) FROM crm.tier_health) AS health_rows;
SELECT segmentation, source, key_column, mode, active_segments FROM segments.segmentation_overview WHERE segmentation = 'tier';
SELECT sqlstate, message FROM error_of($$SELECT segments.create_views('tier', 'crm', 0)$$);
RESET TimeZone;
