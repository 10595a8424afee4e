-- segments.health: one row per segment, from the metric columns the segmentation declares.
UPDATE segments.segmentation
SET source = 'telco.revenue', arr_column = 'arr_end', arr_start_column = 'arr_start', churned_column = 'churned',
    gross_margin = 0.7
WHERE name = 'contract';

SELECT segment, accounts, round(account_share::numeric, 4) AS share, arr, round(arr_share::numeric, 4) AS arr_share,
       round(avg_acv::numeric, 2) AS avg_acv, median_acv, round(100 * churn_rate::numeric, 2) AS churn_pct,
       round(churn_lower::numeric, 4) AS churn_lower, round(churn_upper::numeric, 4) AS churn_upper,
       round(nrr::numeric, 4) AS nrr, round(grr::numeric, 4) AS grr, round(arr_growth::numeric, 4) AS growth,
       nps, round(clv::numeric, 2) AS clv, small_sample
FROM segments.health('contract');

-- Independent check of the ARR columns.
SELECT contract, count(*), sum(arr_end) AS arr, percentile_cont(0.5) WITHIN GROUP (ORDER BY arr_end) AS median_acv
FROM telco.revenue GROUP BY 1 ORDER BY 1;

-- As a materialized view refreshed concurrently (the unique index on segment makes that possible).
CREATE MATERIALIZED VIEW telco.contract_health AS SELECT * FROM segments.health('contract');
CREATE UNIQUE INDEX ON telco.contract_health (segment);
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}'
WHERE segmentation = 'contract' AND name = 'One year';
REFRESH MATERIALIZED VIEW CONCURRENTLY telco.contract_health;
SELECT segment, accounts, small_sample FROM telco.contract_health ORDER BY segment;
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year"]}'
WHERE segmentation = 'contract' AND name = 'One year';
REFRESH MATERIALIZED VIEW CONCURRENTLY telco.contract_health;
SELECT segment, accounts FROM telco.contract_health ORDER BY segment;

-- A segmentation without metric columns still reports sizes; metrics are NULL.
SELECT segment, accounts, arr, churn_rate, nrr, nps, small_sample FROM segments.health('value');
SELECT * FROM error_of($$SELECT * FROM segments.health('nope')$$);
SELECT * FROM error_of($$UPDATE segments.segmentation SET churned_column = 'no_such' WHERE name = 'contract'$$);

-- A hierarchy: a parent reports its whole subtree (and is not flagged small for matching nothing of its own);
-- checked against the accounts whose segment_path passes through the segment.
UPDATE segments.segmentation SET churned_column = 'churned', arr_column = 'monthly_charges', min_segment_size = 1000
WHERE name = 'value';
WITH hand AS (
    SELECT s.name AS segment, count(*) AS accounts, sum(c.monthly_charges) AS arr,
           count(*) FILTER (WHERE c.churned)::float8 / count(*) AS churn
    FROM (SELECT name FROM segments.segment WHERE segmentation = 'value' UNION ALL SELECT 'Unsegmented') s
    JOIN telco.customers c ON ' > ' || segments.segment_path(c, 'value') || ' > ' LIKE '% > ' || s.name || ' > %'
    GROUP BY 1)
SELECT x.segment, x.accounts, x.accounts = coalesce(h.accounts, 0) AS accounts_ok, x.arr IS NOT DISTINCT FROM h.arr AS arr_ok,
       abs(x.churn_rate - h.churn) < 1e-12 AS churn_ok, abs(x.account_share - coalesce(h.accounts, 0) / 7043.0) < 1e-12 AS share_ok,
       x.small_sample
FROM segments.health('value') x LEFT JOIN hand h USING (segment) ORDER BY 1;
-- level 1: the macro segments, which partition the accounts; level 2 and 3: the micro ones (default always shown)
SELECT 1 AS level, string_agg(segment, ', ' ORDER BY segment) AS segments, sum(accounts) AS accounts FROM segments.health('value', 1)
UNION ALL SELECT 2, string_agg(segment, ', ' ORDER BY segment), sum(accounts) FROM segments.health('value', 2)
UNION ALL SELECT 3, string_agg(segment, ', ' ORDER BY segment), sum(accounts) FROM segments.health('value', 3)
ORDER BY 1;
SELECT (SELECT count(*) FROM segments.health('value', 4)) AS level_4_rows, (SELECT count(*) FROM segments.health('value', NULL)) AS all_rows;

-- An overlapping (tag) segmentation: every account counts under each tag it carries (a child tag needs its
-- parent's), checked against the same conditions in plain SQL; tag shares need not add up to 1.
INSERT INTO segments.segmentation (name, source, key_column, mode, churned_column, arr_column, nps_column)
VALUES ('traits', 'telco.customers', 'customer_id', 'overlapping', 'churned', 'monthly_charges', NULL);
INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
  ('traits', 'Senior', NULL, 1, '{"attr": "senior_citizen", "op": "=", "value": true}'),
  ('traits', 'Fiber', NULL, 2, '{"attr": "internet_service", "op": "=", "value": "Fiber optic"}'),
  ('traits', 'Fiber streamer', 'Fiber', 1, '{"attr": "streaming_tv", "op": "=", "value": "Yes"}'),
  ('traits', 'Long tenure', NULL, 3, '{"attr": "tenure", "op": ">=", "value": 48}');
WITH hand AS (
    SELECT v.segment, count(*) AS accounts, sum(c.monthly_charges) AS arr,
           count(*) FILTER (WHERE c.churned)::float8 / count(*) AS churn
    FROM telco.customers c CROSS JOIN LATERAL (VALUES
        ('Senior', c.senior_citizen), ('Fiber', c.internet_service = 'Fiber optic'),
        ('Fiber streamer', c.internet_service = 'Fiber optic' AND c.streaming_tv = 'Yes'), ('Long tenure', c.tenure >= 48),
        ('Unsegmented', NOT (c.senior_citizen OR c.internet_service = 'Fiber optic' OR c.tenure >= 48))) v(segment, carries)
    WHERE v.carries GROUP BY 1)
SELECT x.segment, x.accounts, x.accounts = h.accounts AS accounts_ok, x.arr = h.arr AS arr_ok,
       abs(x.churn_rate - h.churn) < 1e-12 AS churn_ok, abs(x.account_share - h.accounts / 7043.0) < 1e-12 AS share_ok,
       c.accounts = h.accounts AS coverage_ok, c.shadowed
FROM segments.health('traits') x JOIN hand h USING (segment) JOIN segments.coverage('traits') c USING (segment)
ORDER BY 1;
SELECT round(sum(account_share)::numeric, 4) AS tag_shares_sum FROM segments.health('traits');

-- ACV is averaged over paying accounts only: a prospect with no ARR does not pull it down (ARR 0, 100, 300, NULL:
-- average and median 200, not 133.33 and 100).
CREATE TABLE telco.pipeline (id int PRIMARY KEY, arr numeric);
INSERT INTO telco.pipeline VALUES (1, 0), (2, 100), (3, 300), (4, NULL);
INSERT INTO segments.segmentation (name, source, key_column, arr_column) VALUES ('pipeline', 'telco.pipeline', 'id', 'arr');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('pipeline', 'All', 'true');
SELECT segment, accounts, arr, avg_acv, median_acv FROM segments.health('pipeline');
DELETE FROM segments.segmentation WHERE name = 'pipeline';
DROP TABLE telco.pipeline;
DELETE FROM segments.segmentation WHERE name = 'traits';
UPDATE segments.segmentation SET churned_column = NULL, arr_column = NULL, min_segment_size = NULL WHERE name = 'value';

-- Data coverage: per segment and rule attribute, the share of accounts with a value, against the targets the
-- segment or its segmentation declares; checked against count(column) / count(*) in plain SQL.
INSERT INTO segments.segmentation (name, source, key_column, coverage_target)
VALUES ('billing', 'telco.customers', 'customer_id', 0.999);
INSERT INTO segments.segment (segmentation, name, priority, rule, coverage_target) VALUES
  ('billing', 'New', 1, '{"attr": "tenure", "op": "<", "value": 3}', 0.99),
  ('billing', 'Big spenders', 2, '{"attr": "total_charges", "op": ">=", "value": 3000}', NULL);
SELECT d.segment, d.attribute, d.accounts, d.with_value, round(d.coverage::numeric, 4) AS coverage, d.target, d.below_target,
       d.with_value = h.with_value AND d.accounts = h.accounts AS matches_sql
FROM segments.data_coverage('billing') d
JOIN (SELECT segments.segment_of(c, 'billing') AS segment, 'tenure' AS attribute, count(*) AS accounts, count(tenure) AS with_value
      FROM telco.customers c GROUP BY 1
      UNION ALL
      SELECT segments.segment_of(c, 'billing'), 'total_charges', count(*), count(total_charges) FROM telco.customers c GROUP BY 1) h
  USING (segment, attribute)
ORDER BY 1, 2;
SELECT sqlstate, message FROM error_of($$UPDATE segments.segment SET coverage_target = 1.5 WHERE segmentation = 'billing' AND name = 'New'$$);
DELETE FROM segments.segmentation WHERE name = 'billing';
