-- Health on distributed tables: a generated CRM (20,000 accounts, 7 monthly snapshots, NPS answers), its
-- tables distributed and co-located by account, and the same tables local. Every figure agrees.
SET client_min_messages = warning;
SET TimeZone = 'UTC';
CREATE TABLE local.snapshots AS
SELECT a AS id, timestamptz '2024-01-01 00:00+00' + k * interval '1 month' AS taken_at,
       (a * 37) % 1400 + k * (a % 4) * 60 AS employees,
       CASE WHEN a % 9 = 0 THEN 0 ELSE 1000 + (a % 50) * 500 + k * (a % 3) * 200 END::numeric AS arr
FROM generate_series(1, 20000) a, generate_series(0, 6) k
WHERE NOT (a % 11 = 0 AND k > a % 6) AND NOT (a % 13 = 0 AND k < 2);
CREATE TABLE local.accounts AS SELECT id, employees, arr, id % 17 = 0 AS churned, ((id * 3) % 11)::int AS nps FROM local.snapshots WHERE taken_at = '2024-07-01';
ALTER TABLE local.accounts ADD PRIMARY KEY (id);
CREATE TABLE local.nps_answers AS
SELECT a AS id, timestamptz '2024-01-05 00:00+00' + ((a * 13) % 180) * interval '1 day' AS answered_at, (a * 7) % 11 AS score
FROM generate_series(1, 20000) a WHERE a % 2 = 0;
CREATE TABLE dist.accounts (LIKE local.accounts INCLUDING ALL);
CREATE TABLE dist.snapshots (LIKE local.snapshots);
CREATE TABLE dist.nps_answers (LIKE local.nps_answers);
SELECT create_distributed_table('dist.accounts', 'id', shard_count := 32);
SELECT create_distributed_table('dist.snapshots', 'id', colocate_with := 'dist.accounts');
SELECT create_distributed_table('dist.nps_answers', 'id', colocate_with := 'dist.accounts');
INSERT INTO dist.accounts SELECT * FROM local.accounts;
INSERT INTO dist.snapshots SELECT * FROM local.snapshots;
INSERT INTO dist.nps_answers SELECT * FROM local.nps_answers;
ANALYZE local.accounts, local.snapshots, local.nps_answers, dist.accounts, dist.snapshots, dist.nps_answers;

DO $$
DECLARE twin text;
BEGIN
    FOREACH twin IN ARRAY ARRAY['dist', 'local'] LOOP
        INSERT INTO segments.segmentation (name, source, key_column, gross_margin, min_segment_size, arr_column, churned_column,
                                           nps_column, arr_facts, arr_facts_time, arr_facts_value, nps_facts, nps_facts_time, nps_facts_value)
        VALUES ('tier_' || twin, (twin || '.accounts')::regclass, 'id', 0.8, 40, 'arr', 'churned', 'nps',
                (twin || '.snapshots')::regclass, 'taken_at', 'arr', (twin || '.nps_answers')::regclass, 'answered_at', 'score');
        INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
          ('tier_' || twin, 'Enterprise', NULL, 1, '{"attr": "employees", "op": ">=", "value": 800}'),
          ('tier_' || twin, 'Large enterprise', 'Enterprise', 1, '{"attr": "employees", "op": ">=", "value": 1200}'),
          ('tier_' || twin, 'Mid-Market', NULL, 2, '{"attr": "employees", "op": ">=", "value": 200}'),
          ('tier_' || twin, 'SMB', NULL, 3, '{"attr": "employees", "op": "<", "value": 200}');
    END LOOP;
END $$;

-- snapshot health, by leaf and by level
SELECT segment, accounts, arr, round(churn_rate::numeric, 4) AS churn_rate, round(nps::numeric, 2) AS nps FROM segments.health('tier_dist') ORDER BY segment;
SELECT * FROM disagreements($$SELECT * FROM segments.health('tier_dist')$$, $$SELECT * FROM segments.health('tier_local')$$, 'segment');
SELECT * FROM disagreements($$SELECT * FROM segments.health('tier_dist', 1)$$, $$SELECT * FROM segments.health('tier_local', 1)$$, 'segment');
-- coverage and data coverage
SELECT * FROM disagreements($$SELECT * FROM segments.coverage('tier_dist')$$, $$SELECT * FROM segments.coverage('tier_local')$$, 'segment');
SELECT * FROM differences($$SELECT * FROM segments.data_coverage('tier_dist')$$, $$SELECT * FROM segments.data_coverage('tier_local')$$);

-- history from the snapshots, then health over periods
SELECT 'dist' AS twin, * FROM segments.backfill('tier_dist', 'dist.snapshots', 'taken_at')
UNION ALL SELECT 'local', * FROM segments.backfill('tier_local', 'local.snapshots', 'taken_at');
ANALYZE segments.membership;
SELECT * FROM differences(
  $$SELECT account_key, segment, valid FROM segments.membership WHERE segmentation = 'tier_dist'$$,
  $$SELECT account_key, segment, valid FROM segments.membership WHERE segmentation = 'tier_local'$$);
SELECT segment, accounts, churned FROM segments.period_health('tier_dist', '2024-02-01', '2024-06-01') ORDER BY segment;
SELECT * FROM disagreements(
  $$SELECT * FROM segments.period_health('tier_dist', '2024-02-01', '2024-06-01')$$,
  $$SELECT * FROM segments.period_health('tier_local', '2024-02-01', '2024-06-01')$$, 'segment');
SELECT * FROM disagreements(
  $$SELECT period_start::text || segment AS k, * FROM segments.health_series('tier_dist', '2024-01-01', '2024-07-01')$$,
  $$SELECT period_start::text || segment AS k, * FROM segments.health_series('tier_local', '2024-01-01', '2024-07-01')$$, 'k');
SELECT * FROM differences(
  $$SELECT * FROM segments.migration_series('tier_dist', '2024-01-01', '2024-07-01')$$,
  $$SELECT * FROM segments.migration_series('tier_local', '2024-01-01', '2024-07-01')$$);
