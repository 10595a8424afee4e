-- segments.refresh on 1,000,000 accounts against the baseline of writing the same assignment by hand:
-- INSERT INTO t SELECT key, <hand-written CASE> FROM source.
DROP TABLE IF EXISTS bench.members CASCADE;
CREATE TABLE bench.members AS
SELECT i AS id, (random() * 5000)::int AS employees,
       (ARRAY['Healthcare', 'Retail', 'Finance', 'Tech', 'Energy'])[1 + (i % 5)] AS industry,
       round((random() * 200000)::numeric, 2) AS arr
FROM generate_series(1, 1000000) i;
ALTER TABLE bench.members ADD PRIMARY KEY (id);
VACUUM ANALYZE bench.members;

DELETE FROM segments.segmentation WHERE name = 'members';
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('members', 'bench.members', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('members', 'Strategic', 1, '{"all": [{"attr": "employees", "op": ">=", "value": 4000}, {"attr": "arr", "op": ">=", "value": 150000}]}'),
  ('members', 'Enterprise', 2, '{"attr": "employees", "op": ">=", "value": 3000}'),
  ('members', 'Regulated', 3, '{"attr": "industry", "op": "in", "value": ["Healthcare", "Finance"]}'),
  ('members', 'SMB', 4, 'true');

CREATE TEMP TABLE timings (what text, ms float8);
-- Two baselines: the issue's (an unindexed table), and the same table with a primary key on the account,
-- which a hand-kept assignment table needs for lookups (membership has one: see README > Performance).
DO $$
DECLARE
    t0 timestamptz;
    baseline record;
BEGIN
    FOR i IN 1..3 LOOP
        FOR baseline IN VALUES ('baseline: INSERT ... SELECT key, CASE', 'key text'),
                               ('keyed baseline: the same into a table with a primary key', 'key text PRIMARY KEY') LOOP
            DROP TABLE IF EXISTS bench.hand_assignment;
            EXECUTE format('CREATE TABLE bench.hand_assignment (%s, segment text)', baseline.column2);
            CHECKPOINT;  -- every timed write starts from a fresh checkpoint (no full-page-write storm mid-run)
            t0 := clock_timestamp();
            INSERT INTO bench.hand_assignment
            SELECT id::text, CASE WHEN employees >= 4000 AND arr >= 150000 THEN 'Strategic' WHEN employees >= 3000 THEN 'Enterprise'
                                  WHEN industry IN ('Healthcare', 'Finance') THEN 'Regulated' ELSE 'SMB' END
            FROM bench.members;
            INSERT INTO timings VALUES (baseline.column1, extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END LOOP;
END $$;

-- each refresh is its own transaction, as a scheduled job's would be
TRUNCATE segments.membership;
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM segments.refresh('members');
INSERT INTO timings VALUES ('first refresh', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM segments.refresh('members');
INSERT INTO timings VALUES ('refresh, no change', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM segments.refresh('members');
INSERT INTO timings VALUES ('refresh, no change', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);
UPDATE bench.members SET employees = employees + 3500 WHERE id % 100 = 0 AND employees < 1000;
UPDATE bench.members SET employees = 10 WHERE id % 100 = 0 AND employees >= 4500;
CHECKPOINT;
SELECT clock_timestamp() AS t0 \gset
SELECT * FROM segments.refresh('members');
INSERT INTO timings VALUES ('refresh after ~1% changed', extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000);

WITH medians AS (SELECT what, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS ms FROM timings GROUP BY what)
SELECT what, round(ms::numeric) AS ms,
       round((ms / (SELECT ms FROM medians WHERE what LIKE 'baseline%'))::numeric, 2) AS ratio,
       round((ms / (SELECT ms FROM medians WHERE what LIKE 'keyed baseline%'))::numeric, 2) AS ratio_to_keyed
FROM medians ORDER BY ratio;
