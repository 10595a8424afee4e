-- Plan-time compilation: when the segmentation is a constant and the row is a table's own row, the planner
-- replaces segment_of, segment_path, segments_of and classify(row, ruleset) by the segmentation's CASE (an
-- array of matches for segments_of) over the row's columns. Results are the same as the per-row path's,
-- and no cached plan serves a stale definition.
SET client_min_messages = warning;
CREATE TABLE plan_seen (id int PRIMARY KEY, seen_at timestamptz);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('plan_clock', 'plan_seen', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule)
VALUES ('plan_clock', 'just seen', 1, '{"attr": "seen_at", "op": "within", "value": "2 seconds"}');
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('plan_tier', 'telco.customers', 'customer_id');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
  ('plan_tier', 'High', NULL, 1, '{"attr": "monthly_charges", "op": ">=", "value": 80}'),
  ('plan_tier', 'Fiber', 'High', 1, '{"attr": "internet_service", "op": "=", "value": "Fiber optic"}'),
  ('plan_tier', 'Low', NULL, 2, '{"any": [{"attr": "tenure", "op": "<", "value": 6}, {"attr": "total_charges", "op": "is_null"}]}');

-- the plan holds the CASE, not the call
EXPLAIN (VERBOSE, COSTS OFF) SELECT segments.segment_of(c, 'plan_tier') FROM telco.customers c;
EXPLAIN (VERBOSE, COSTS OFF) SELECT segments.segment_path(c, 'plan_tier') FROM telco.customers c;
EXPLAIN (VERBOSE, COSTS OFF) SELECT segments.segments_of(c, 'plan_tier') FROM telco.customers c;

-- which calls are compiled: 'compiled' when no pg_segments function is left in the plan's output
CREATE FUNCTION plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE line text; calls boolean := false;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || q LOOP
        calls := calls OR line ~ 'segments\.(segment_of|segment_path|segments_of|classify|explain)\(';
    END LOOP;
    RETURN CASE WHEN calls THEN 'per-row' ELSE 'compiled' END;
END $$;
SELECT q, plan_of(q) FROM (VALUES
  ('SELECT segments.segment_of(c, ''plan_tier'') FROM telco.customers c'),
  ('SELECT segments.segment_path(c, ''value'') FROM telco.customers c'),
  ('SELECT segments.segments_of(c, ''tags'') FROM telco.customers c'),
  ('SELECT segments.classify(c, segments.ruleset(''contract'')) FROM telco.customers c'),
  ('SELECT segments.classify(c, ''{"segmentation": "old", "segments": [{"name": "Old", "rule": {"attr": "tenure", "op": ">", "value": 60}}]}'') FROM telco.customers c'),
  ('SELECT count(*) FROM telco.customers c WHERE segments.segment_of(c, ''plan_tier'') = ''Fiber'''),
  ('SELECT segments.segment_of(c, ''plan_tier''), count(*) FROM telco.customers c GROUP BY 1'),
  -- kept per row: a segmentation that is not a constant, a row that is not a table's own, the nullable side
  -- of an outer join, rules that read related tables, a constant ruleset with its own as_of and time
  -- windows, an unknown segmentation, and explain (always per row)
  ('SELECT segments.explain(c, ''value'') FROM telco.customers c'),
  ('SELECT segments.segment_of(c, (SELECT ''plan_tier'')) FROM telco.customers c'),
  ('SELECT segments.segment_of(s.c, s.name) FROM (SELECT c, ''plan_tier''::text AS name FROM telco.customers c OFFSET 0) s'),
  ('SELECT segments.classify(ROW(c.monthly_charges), segments.ruleset(''plan_tier'')) FROM telco.customers c'),
  ('SELECT segments.segment_of(c, ''plan_tier'') FROM (SELECT 1) x LEFT JOIN telco.customers c ON true'),
  ('SELECT segments.segment_of(c, ''plan_tier'') FROM telco.customers c LEFT JOIN (SELECT 1) x ON true'),  -- the preserved side: compiled
  ('SELECT segments.segment_of(l, ''activity'') FROM telco.logins l'),  -- within / older_than an explicit as_of: compiled
  ('SELECT segments.segment_of(s, ''plan_clock'') FROM plan_seen s'),  -- within the last 2 seconds: bounds from now()
  ('SELECT segments.classify(s, ''{"segmentation": "c", "as_of": "2025-01-01", "segments": [{"name": "recent", "rule": {"attr": "seen_at", "op": "within", "value": "1 day"}}]}'') FROM plan_seen s'),
  ('SELECT segments.segment_of(a, ''health'') FROM beh.accounts a'),
  ('SELECT segments.segment_of(c, ''no_such_segmentation'') FROM telco.customers c')
) t(q);

-- compiled and per-row answers agree on every row of every segmentation the tests have defined (plain
-- columns, arrays, JSON fields, time windows, points, k-means, references, behavioral conditions)
CREATE FUNCTION plan_differences(segmentation text, OUT plan text, OUT rows bigint, OUT differing bigint,
                                 OUT differing_paths bigint, OUT differing_matches bigint) LANGUAGE plpgsql AS $$
DECLARE source text := (SELECT g.source::text FROM segments.segmentation g WHERE g.name = segmentation);
BEGIN
    plan := plan_of(format('SELECT segments.segment_of(t, %L), segments.segment_path(t, %L), segments.segments_of(t, %L) FROM %s t',
                           segmentation, segmentation, segmentation, source));
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE segments.segment_of(t, %1$L) IS DISTINCT FROM segments.segment_of(t, (SELECT %1$L::text))),
                           count(*) FILTER (WHERE segments.segment_path(t, %1$L) IS DISTINCT FROM segments.segment_path(t, (SELECT %1$L::text))),
                           count(*) FILTER (WHERE segments.segments_of(t, %1$L) IS DISTINCT FROM segments.segments_of(t, (SELECT %1$L::text)))
                    FROM %2$s t', segmentation, source)
        INTO rows, differing, differing_paths, differing_matches;
END $$;
SELECT g.name AS segmentation, g.mode, d.* FROM segments.segmentation g CROSS JOIN LATERAL plan_differences(g.name) d ORDER BY 1;
DROP FUNCTION plan_differences(text);
-- the backend keeps each compiled call and plans with a copy: the same segmentation over the table at another
-- place in the range table, before and after, gives the same members
SELECT (SELECT count(*) FILTER (WHERE segments.segment_of(c, 'plan_tier') = 'Fiber') FROM telco.customers c) AS first,
       (SELECT count(*) FILTER (WHERE segments.segment_of(c, 'plan_tier') = 'Fiber') FROM generate_series(1, 2) g, telco.customers c) AS twice,
       (SELECT count(*) FILTER (WHERE segments.segment_of(c, 'plan_tier') = 'Fiber') FROM telco.customers c) AS again,
       (SELECT count(*) FROM telco.customers WHERE monthly_charges >= 80 AND internet_service = 'Fiber optic') AS by_hand;
-- and the counts equal plain SQL
SELECT segments.segment_path(c, 'plan_tier') AS path, count(*) AS accounts,
       count(*) = CASE segments.segment_path(c, 'plan_tier')
         WHEN 'High > Fiber' THEN (SELECT count(*) FROM telco.customers WHERE monthly_charges >= 80 AND internet_service = 'Fiber optic')
         WHEN 'High' THEN (SELECT count(*) FROM telco.customers WHERE monthly_charges >= 80 AND internet_service IS DISTINCT FROM 'Fiber optic')
         WHEN 'Low' THEN (SELECT count(*) FROM telco.customers WHERE monthly_charges < 80 AND (tenure < 6 OR total_charges IS NULL))
         ELSE (SELECT count(*) FROM telco.customers WHERE monthly_charges < 80 AND NOT (tenure < 6 OR total_charges IS NULL)) END AS agrees
FROM telco.customers c GROUP BY 1 ORDER BY 1;

-- A definition changed after planning is seen by every cached plan: a prepared statement (generic plan),
-- a PL/pgSQL function, a SQL function and a materialized view (on refresh).
SET plan_cache_mode = force_generic_plan;
PREPARE fiber_count AS SELECT count(*) FROM telco.customers c WHERE segments.segment_of(c, 'plan_tier') = 'Fiber';
CREATE FUNCTION fiber_count_plpgsql() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN RETURN (SELECT count(*) FROM telco.customers c WHERE segments.segment_of(c, 'plan_tier') = 'Fiber'); END $$;
CREATE FUNCTION fiber_rows_plpgsql() RETURNS TABLE (path text, accounts bigint) LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY SELECT segments.segment_path(c, 'plan_tier'), count(*) FROM telco.customers c GROUP BY 1 ORDER BY 1; END $$;
CREATE FUNCTION fiber_count_sql() RETURNS bigint LANGUAGE sql STABLE
BEGIN ATOMIC SELECT count(*) FROM telco.customers c WHERE segments.segment_of(c, 'plan_tier') = 'Fiber'; END;
CREATE MATERIALIZED VIEW plan_tier_sizes AS
SELECT segments.segment_of(c, 'plan_tier') AS segment, count(*) AS accounts FROM telco.customers c GROUP BY 1;
CREATE FUNCTION fiber_everywhere(high numeric, loyal_first boolean DEFAULT false) RETURNS TABLE (context text, fiber bigint) LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE 'EXECUTE fiber_count' INTO n;
    context := 'prepared statement'; fiber := n; RETURN NEXT;
    context := 'plpgsql'; fiber := fiber_count_plpgsql(); RETURN NEXT;
    context := 'plpgsql return query'; fiber := (SELECT accounts FROM fiber_rows_plpgsql() WHERE path = 'High > Fiber'); RETURN NEXT;
    context := 'sql function'; fiber := fiber_count_sql(); RETURN NEXT;
    context := 'materialized view'; fiber := (SELECT accounts FROM plan_tier_sizes WHERE segment = 'Fiber'); RETURN NEXT;
    context := 'plain SQL'; fiber := (SELECT count(*) FROM telco.customers WHERE monthly_charges >= high AND internet_service = 'Fiber optic'
                                         AND NOT (loyal_first AND tenure > 70)); RETURN NEXT;
END $$;
SELECT * FROM fiber_everywhere(80);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE fiber_count;

-- the rule changes: every context but the unrefreshed materialized view follows at once
UPDATE segments.segment SET rule = '{"attr": "monthly_charges", "op": ">=", "value": 100}'
WHERE segmentation = 'plan_tier' AND name = 'High';
SELECT * FROM fiber_everywhere(100);
REFRESH MATERIALIZED VIEW plan_tier_sizes;
SELECT accounts = (SELECT count(*) FROM telco.customers WHERE monthly_charges >= 100 AND internet_service = 'Fiber optic') AS refreshed_view_follows
FROM plan_tier_sizes WHERE segment = 'Fiber';

-- a segment added before the others takes accounts from Fiber; then the segmentation is renamed: the
-- prepared statement's name no longer exists, and the per-row path reports it at execution, as it always has
INSERT INTO segments.segment (segmentation, name, priority, rule)
VALUES ('plan_tier', 'Loyal', 0, '{"attr": "tenure", "op": ">", "value": 70}');
SELECT * FROM fiber_everywhere(100, loyal_first => true) WHERE context <> 'materialized view';
UPDATE segments.segmentation SET name = 'plan_tier_renamed' WHERE name = 'plan_tier';
SELECT * FROM error_of('EXECUTE fiber_count');
SELECT * FROM error_of('SELECT fiber_count_plpgsql()');
UPDATE segments.segmentation SET name = 'plan_tier' WHERE name = 'plan_tier_renamed';
EXECUTE fiber_count;
RESET plan_cache_mode;

-- A view's owner reads a table in a schema the querying role may not use: the compiled view works for that
-- role as the per-row call did (the table is taken by its OID, never looked up by name)
CREATE SCHEMA plan_private;
CREATE TABLE plan_private.accounts AS SELECT customer_id, contract FROM telco.customers;
CREATE VIEW plan_contract_sizes AS
SELECT segments.segment_of(a, 'contract') AS segment, count(*) AS accounts FROM plan_private.accounts a GROUP BY 1;
CREATE ROLE plan_viewer;
GRANT segments_reader TO plan_viewer;
GRANT SELECT ON plan_contract_sizes TO plan_viewer;
SET ROLE plan_viewer;
SELECT * FROM error_of('SELECT count(*) FROM plan_private.accounts');
SELECT v.*, v.accounts = (SELECT count(*) FROM telco.customers c WHERE c.contract = v.segment) AS agrees
FROM plan_contract_sizes v ORDER BY 1;
SELECT plan_of('SELECT * FROM plan_contract_sizes') AS plan;
RESET ROLE;
DROP VIEW plan_contract_sizes;
DROP TABLE plan_private.accounts;
DROP SCHEMA plan_private;
REVOKE segments_reader FROM plan_viewer;
DROP ROLE plan_viewer;

-- A column's type changed after a statement was compiled: the next planning compiles afresh (the backend's
-- compiled SQL is forgotten with the relation's invalidation); a rule that no longer fits is the per-row error
CREATE TABLE plan_alter (id int PRIMARY KEY, score int);
INSERT INTO plan_alter SELECT i, i FROM generate_series(1, 20) i;
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('plan_alter', 'plan_alter', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES ('plan_alter', 'high', 1, '{"attr": "score", "op": ">=", "value": 15}');
SELECT segments.segment_of(a, 'plan_alter') AS segment, count(*) FROM plan_alter a GROUP BY 1 ORDER BY 1;
ALTER TABLE plan_alter ALTER COLUMN score TYPE text;
SELECT * FROM error_of($$SELECT segments.segment_of(a, 'plan_alter') FROM plan_alter a$$);
ALTER TABLE plan_alter ALTER COLUMN score TYPE numeric USING score::numeric / 2 + 5;
SELECT segments.segment_of(a, 'plan_alter') AS segment, count(*), plan_of('SELECT segments.segment_of(a, ''plan_alter'') FROM plan_alter a') AS plan
FROM plan_alter a GROUP BY 1 ORDER BY 1;
DELETE FROM segments.segmentation WHERE name = 'plan_alter';
DROP TABLE plan_alter;

-- Time windows anchored at the current time are compiled as bounds computed from now(): compiled and
-- per-row answers agree on times around now, for every window operator and time type, months at month ends
CREATE TABLE plan_times (id int PRIMARY KEY, tz timestamptz, ts timestamp, d date);
INSERT INTO plan_times
SELECT k, t, t AT TIME ZONE 'UTC', (t AT TIME ZONE 'UTC')::date
FROM (SELECT k, now() + k * interval '7 hours 13 minutes 1.5 seconds' AS t FROM generate_series(-3000, 3000) k) x;
INSERT INTO plan_times VALUES (10000, NULL, NULL, NULL);
-- one segmentation per window, each checked three ways: compiled, per row, and written by hand (windows are
-- computed on UTC's calendar, which the hand-written SQL gets from the session's time zone)
SET TimeZone = 'UTC';
CREATE FUNCTION plan_window(rule jsonb, by_hand text) RETURNS TABLE (plan text, has_members boolean, differing_per_row bigint, differing_by_hand bigint)
LANGUAGE plpgsql AS $$
DECLARE q text := 'SELECT segments.segment_of(t, ''plan_window'') FROM plan_times t'; members bigint;
BEGIN
    INSERT INTO segments.segmentation (name, source, key_column) VALUES ('plan_window', 'plan_times', 'id');
    INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES ('plan_window', 'in', 1, rule);
    plan := plan_of(q);
    EXECUTE format('SELECT count(*) FILTER (WHERE c = ''in''), count(*) FILTER (WHERE c IS DISTINCT FROM p),
                           count(*) FILTER (WHERE c IS DISTINCT FROM CASE WHEN coalesce(%s, false) THEN ''in'' ELSE ''Unsegmented'' END)
                    FROM (SELECT t.*, segments.segment_of(t, ''plan_window'') AS c,
                                 segments.segment_of(t, (SELECT ''plan_window''::text)) AS p FROM plan_times t) x', by_hand)
        INTO members, differing_per_row, differing_by_hand;
    -- how many depends on today's date (month lengths): that there are some, and not all
    has_members := members BETWEEN 1 AND 6000;
    DELETE FROM segments.segmentation WHERE name = 'plan_window';
    RETURN NEXT;
END $$;
SELECT w.rule, r.* FROM (VALUES
  ('{"attr": "tz", "op": "within", "value": "1 month"}'::jsonb, 'tz >= now() - interval ''1 month'''),
  ('{"attr": "tz", "op": "older_than", "value": "1 year 2 days"}', 'tz < now() - interval ''1 year 2 days'''),
  ('{"attr": "tz", "op": "within_next", "value": "3 weeks 12 hours"}', 'tz BETWEEN now() AND now() + interval ''3 weeks 12 hours'''),
  ('{"attr": "tz", "op": "later_than", "value": "5 months"}', 'tz > now() + interval ''5 months'''),
  ('{"attr": "ts", "op": "within", "value": "90 min"}', 'ts >= localtimestamp - interval ''90 minutes'''),
  ('{"attr": "ts", "op": "later_than", "value": "2 years"}', 'ts > localtimestamp + interval ''2 years'''),
  ('{"attr": "d", "op": "within_next", "value": "45 days"}', 'd BETWEEN current_date AND localtimestamp + interval ''45 days'''),
  ('{"attr": "d", "op": "older_than", "value": "1 month"}', 'd < localtimestamp - interval ''1 month'''),
  ('{"attr": "d", "op": "within", "value": "1 year"}', 'd >= localtimestamp - interval ''1 year''')
) w(rule, by_hand) CROSS JOIN LATERAL plan_window(w.rule, w.by_hand) r;
-- the same in another time zone (a month back across a daylight saving change): compiled and per row agree
SET TimeZone = 'America/New_York';
SELECT w.rule, r.plan, r.has_members, r.differing_per_row FROM (VALUES
  ('{"attr": "tz", "op": "within", "value": "1 month"}'::jsonb), ('{"attr": "tz", "op": "older_than", "value": "1 year 2 days"}'),
  ('{"attr": "ts", "op": "within_next", "value": "8 months"}'), ('{"attr": "d", "op": "within_next", "value": "45 days"}')
) w(rule) CROSS JOIN LATERAL plan_window(w.rule, 'true') r;
RESET TimeZone;
DROP FUNCTION plan_window(jsonb, text);

-- within / older_than keep each execution's own time: the same cached plan, two clocks (the row is seen a
-- second ahead: within the last 2 seconds now, not 3.5 seconds later)
SET plan_cache_mode = force_generic_plan;
INSERT INTO plan_seen VALUES (1, clock_timestamp() + interval '1 second'), (2, clock_timestamp() - interval '1 hour');
PREPARE just_seen AS SELECT count(*) FILTER (WHERE segments.segment_of(s, 'plan_clock') = 'just seen') AS just_seen FROM plan_seen s;
SELECT plan_of('EXECUTE just_seen') AS plan;
EXECUTE just_seen;
SELECT pg_sleep(3.5);
EXECUTE just_seen;
RESET plan_cache_mode;

DEALLOCATE fiber_count;
DEALLOCATE just_seen;
DROP MATERIALIZED VIEW plan_tier_sizes;
DROP FUNCTION fiber_everywhere(numeric, boolean), fiber_count_plpgsql(), fiber_rows_plpgsql(), fiber_count_sql(), plan_of(text);
DELETE FROM segments.segmentation WHERE name IN ('plan_tier', 'plan_clock');
DROP TABLE plan_seen, plan_times;
