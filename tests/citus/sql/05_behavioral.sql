-- Behavioral conditions over a distributed events table co-located with the accounts (the CRM of 03_health):
-- refresh assigns with the set-based query (to_query, grouped by the key), which Citus pushes down to the
-- co-located shards; per-row calls would query a distributed table from inside a shard query: refused.
SET client_min_messages = warning;
CREATE TABLE local.events AS
SELECT (1 + (g::bigint * g) % 15000)::int AS account_id, CASE WHEN g % 3 = 0 THEN 'feature' ELSE 'login' END AS type,
       timestamptz '2024-07-01 00:00+00' - ((g::bigint * 7919) % (60 * 24)) * interval '1 hour' AS at
FROM generate_series(1, 200000) g WHERE g % 97 <> 0;
CREATE TABLE dist.events (LIKE local.events);
SELECT create_distributed_table('dist.events', 'account_id', colocate_with := 'dist.accounts');
INSERT INTO dist.events SELECT * FROM local.events;
ANALYZE local.events, dist.events;
DO $$
DECLARE twin text;
BEGIN
    FOREACH twin IN ARRAY ARRAY['dist', 'local'] LOOP
        INSERT INTO segments.segmentation (name, source, key_column) VALUES ('usage_' || twin, (twin || '.accounts')::regclass, 'id');
        INSERT INTO segments.related_source (segmentation, name, relation, key_column, time_column)
        VALUES ('usage_' || twin, 'events', (twin || '.events')::regclass, 'account_id', 'at');
        INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
          ('usage_' || twin, 'Power users', 1, '{"related": "events", "agg": "count", "where": {"attr": "type", "op": "=", "value": "login"},
                                                 "within": "30 days", "as_of": "2024-07-01", "op": ">=", "value": 25}'),
          ('usage_' || twin, 'Active', 2, '{"related": "events", "agg": "count", "within": "60 days", "as_of": "2024-07-01", "op": ">=", "value": 10}');
    END LOOP;
END $$;
SELECT 'dist' AS twin, * FROM segments.refresh('usage_dist') UNION ALL SELECT 'local', * FROM segments.refresh('usage_local');
SELECT segment, count(*) FROM segments.membership WHERE segmentation = 'usage_dist' AND upper_inf(valid) GROUP BY 1 ORDER BY 1;
SELECT * FROM differences(
  $$SELECT account_key, segment FROM segments.membership WHERE segmentation = 'usage_dist' AND upper_inf(valid)$$,
  $$SELECT account_key, segment FROM segments.membership WHERE segmentation = 'usage_local' AND upper_inf(valid)$$);
-- the same assignment written by hand: a LEFT JOIN of GROUP BY aggregates and a CASE
SELECT * FROM differences(
  $$SELECT account_key, segment FROM segments.membership WHERE segmentation = 'usage_dist' AND upper_inf(valid)$$,
  $$SELECT a.id::text, CASE WHEN coalesce(e.logins, 0) >= 25 THEN 'Power users' WHEN coalesce(e.events, 0) >= 10 THEN 'Active'
                            ELSE 'Unsegmented' END
    FROM local.accounts a LEFT JOIN (
        SELECT account_id, count(*) FILTER (WHERE type = 'login' AND at > '2024-07-01'::timestamptz - interval '30 days') AS logins,
               count(*) FILTER (WHERE at > '2024-07-01'::timestamptz - interval '60 days') AS events
        FROM local.events WHERE at <= '2024-07-01' GROUP BY 1) e ON e.account_id = a.id$$);
-- to_query runs on the cluster as it is
SELECT * FROM differences(
  format('SELECT * FROM (%s) q', segments.to_query('usage_dist')),
  format('SELECT * FROM (%s) q', segments.to_query('usage_local')));

-- per-row evaluation is refused, with the way out
SELECT * FROM error_of($$SELECT segments.segment_of(a, 'usage_dist') FROM dist.accounts a$$);
SELECT * FROM error_of($$SELECT * FROM segments.health('usage_dist')$$);
SELECT * FROM error_of($$SELECT * FROM segments.preview('usage_dist', 'Active',
  '{"related": "events", "agg": "count", "within": "10 days", "as_of": "2024-07-01", "op": ">=", "value": 1}')$$);
