-- The Citus suite: every function on distributed tables (32 shards over two workers), each result compared
-- with the same call on a local copy of the table. The IBM Telco data is loaded by tests/load_fixtures.sh.
SET client_min_messages = warning;
CREATE EXTENSION pg_segments CASCADE;
SELECT nodename, count(*) AS nodes FROM pg_dist_node GROUP BY 1;

-- the extension reached every node (Citus propagates CREATE EXTENSION)
SELECT result = (SELECT extversion FROM pg_extension WHERE extname = 'pg_segments') AS same_version_on_worker
FROM run_command_on_workers($$SELECT extversion FROM pg_extension WHERE extname = 'pg_segments'$$);

CREATE FUNCTION public.error_of(statement text)
RETURNS TABLE (sqlstate text, message text, detail text, hint text) LANGUAGE plpgsql AS $$
DECLARE
    s text; m text; d text; h text;
BEGIN
    EXECUTE statement;
    RETURN QUERY SELECT 'no error'::text, NULL::text, NULL::text, NULL::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN QUERY SELECT s, m, nullif(d, ''), nullif(h, '');
END $$;

-- Rows of the first query missing from the second and the other way round (multisets): 0 | 0 is agreement.
CREATE FUNCTION public.differences(distributed text, local text, OUT only_distributed bigint, OUT only_local bigint)
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) d', distributed, local) INTO only_distributed;
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (%s)) d', local, distributed) INTO only_local;
END $$;

-- a and b equal to 1e-12 relative (sums over shards add in another order)
CREATE FUNCTION public.close(a float8, b float8) RETURNS boolean LANGUAGE sql IMMUTABLE
RETURN (a IS NULL AND b IS NULL) OR abs(a - b) <= 1e-12 * greatest(abs(a), abs(b));

-- The distributed plan of a query as text (one task shown; no ports or shard names compared).
CREATE FUNCTION public.plan_of(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; plan text := '';
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RETURN plan;
END $$;

-- Telco twice: distributed by account (32 shards) and local, with a last-seen time for the time rules
CREATE SCHEMA dist;
CREATE SCHEMA local;
CREATE TABLE local.customers AS
SELECT c.*, now() - (c.tenure % 45) * interval '1 day' AS last_seen FROM telco.customers c;
ALTER TABLE local.customers ADD PRIMARY KEY (customer_id);
CREATE TABLE dist.customers (LIKE local.customers INCLUDING ALL);
SELECT create_distributed_table('dist.customers', 'customer_id', shard_count := 32);
INSERT INTO dist.customers SELECT * FROM local.customers;
ANALYZE local.customers, dist.customers;
SELECT (SELECT count(*) FROM dist.customers) AS distributed, (SELECT count(*) FROM local.customers) AS local;

CREATE TABLE local.mall AS SELECT * FROM models.mall;
CREATE TABLE dist.mall AS SELECT * FROM models.mall;
SELECT create_distributed_table('dist.mall', 'customer_id', shard_count := 32);

-- Each segmentation twice: over the distributed table and over the local copy, with the same segments.
CREATE FUNCTION public.define(name text, mode text, segments jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE twin text;
BEGIN
    FOREACH twin IN ARRAY ARRAY['dist', 'local'] LOOP
        INSERT INTO segments.segmentation (name, source, key_column, mode)
        VALUES (name || '_' || twin, (twin || '.customers')::regclass, 'customer_id', mode);
        INSERT INTO segments.segment (segmentation, name, parent, priority, rule)
        SELECT name || '_' || twin, s->>'name', s->>'parent', (s->>'priority')::int, s->'rule'
        FROM jsonb_array_elements(segments) s;
    END LOOP;
END $$;

SELECT public.define('contract', 'exclusive', '[
  {"name": "Month-to-month", "priority": 1, "rule": {"attr": "contract", "op": "=", "value": "Month-to-month"}},
  {"name": "One year", "priority": 2, "rule": {"attr": "contract", "op": "in", "value": ["One year"]}},
  {"name": "Two year", "priority": 3, "rule": {"attr": "contract", "op": "=", "value": "Two year"}}]');
SELECT public.define('value', 'exclusive', '[
  {"name": "High spend", "priority": 1, "rule": {"attr": "monthly_charges", "op": ">=", "value": 70}},
  {"name": "Fiber", "parent": "High spend", "priority": 1, "rule": {"attr": "internet_service", "op": "=", "value": "Fiber optic"}},
  {"name": "Streaming", "parent": "Fiber", "priority": 1,
   "rule": {"all": [{"attr": "streaming_tv", "op": "=", "value": "Yes"}, {"attr": "streaming_movies", "op": "=", "value": "Yes"}]}},
  {"name": "Mid spend", "priority": 2, "rule": {"attr": "monthly_charges", "op": "between", "value": [35, 70]}},
  {"name": "Long tenure", "parent": "Mid spend", "priority": 1, "rule": {"attr": "tenure", "op": ">", "value": 48}}]');
SELECT public.define('services', 'overlapping', '[
  {"name": "Streaming", "priority": 1, "rule": {"any": [{"attr": "streaming_tv", "op": "=", "value": "Yes"}, {"attr": "streaming_movies", "op": "=", "value": "Yes"}]}},
  {"name": "Secured", "priority": 2, "rule": {"attr": "online_security", "op": "=", "value": "Yes"}},
  {"name": "Paperless", "priority": 3, "rule": {"attr": "paperless_billing", "op": "=", "value": true}}]');
-- time windows, NULLs (total_charges is blank for 11 accounts) and case-insensitive text
SELECT public.define('activity', 'exclusive', '[
  {"name": "Seen this week", "priority": 1, "rule": {"attr": "last_seen", "op": "within", "value": "7 days"}},
  {"name": "No charges yet", "priority": 2, "rule": {"attr": "total_charges", "op": "is_null"}},
  {"name": "Card payers", "priority": 3, "rule": {"attr": "payment_method", "op": "contains", "value": "CARD", "ignore_case": true}},
  {"name": "Dormant", "priority": 4, "rule": {"attr": "last_seen", "op": "older_than", "value": "30 days"}}]');
SELECT name, source FROM segments.segmentation ORDER BY name;

-- Field-by-field disagreements of two queries' rows matched on a key: numbers to 1e-12 relative, the rest exactly.
CREATE FUNCTION public.disagreements(distributed text, local text, key text)
RETURNS TABLE (row_key text, field text, distributed_value jsonb, local_value jsonb) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH d AS (SELECT to_jsonb(x) AS j FROM (%s) x), l AS (SELECT to_jsonb(x) AS j FROM (%s) x)
        SELECT coalesce(d.j, l.j)->>%3$L, f.key, d.j->f.key, l.j->f.key
        FROM d FULL JOIN l ON d.j->%3$L = l.j->%3$L
        CROSS JOIN LATERAL jsonb_object_keys(coalesce(d.j, l.j)) AS f(key)
        WHERE NOT CASE WHEN jsonb_typeof(d.j->f.key) = 'number' AND jsonb_typeof(l.j->f.key) = 'number'
                       THEN public.close((d.j->>f.key)::float8, (l.j->>f.key)::float8)
                       ELSE (d.j->f.key) IS NOT DISTINCT FROM (l.j->f.key) END
        ORDER BY 1, 2$q$, distributed, local, key);
END $$;
