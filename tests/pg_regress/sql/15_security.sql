-- Playing the attacker: a malicious editor, a reader, row-level security, forged log rows, and functions
-- planted on a superuser's search_path. Each attack fails.
SET client_min_messages = warning;
CREATE ROLE sec_eve IN ROLE segments_editor;
CREATE ROLE sec_rita IN ROLE segments_reader;
CREATE SCHEMA hr;
CREATE TABLE hr.salaries (id int PRIMARY KEY, salary numeric NOT NULL);
INSERT INTO hr.salaries SELECT i, 50000 + i * 1000 FROM generate_series(1, 100) i;
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, region text NOT NULL, spend numeric NOT NULL);
INSERT INTO shop.customers SELECT i, CASE WHEN i % 3 = 0 THEN 'EU' ELSE 'US' END, i * 10 FROM generate_series(1, 300) i;
GRANT USAGE ON SCHEMA shop TO sec_eve, sec_rita;
GRANT SELECT ON shop.customers TO sec_eve, sec_rita;
-- row-level security lets the editor see EU customers only, the reader all of them
ALTER TABLE shop.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY eu_only ON shop.customers TO sec_eve USING (region = 'EU');
CREATE POLICY everything ON shop.customers TO sec_rita USING (true);

-- 1. an editor cannot point a segmentation (or a rule) at data she cannot read
SET ROLE sec_eve;
SELECT sqlstate, message FROM error_of($$INSERT INTO segments.segmentation (name, source, key_column)
                                        VALUES ('who', 'pg_catalog.pg_authid', 'rolname')$$);
SELECT sqlstate FROM error_of($$INSERT INTO segments.segmentation (name, source, key_column) VALUES ('pay', 'hr.salaries', 'id')$$);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('regions', 'shop.customers', 'id');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('regions', 'big', '{"attr": "spend", "op": ">", "value": 1500}');
RESET ROLE;
REVOKE SELECT ON shop.customers FROM sec_eve;
GRANT SELECT (id, region) ON shop.customers TO sec_eve;
SET ROLE sec_eve;
SELECT sqlstate, message FROM error_of($$UPDATE segments.segment SET rule = '{"attr": "spend", "op": ">", "value": 100}'
                                        WHERE segmentation = 'regions'$$);
RESET ROLE;
GRANT SELECT ON shop.customers TO sec_eve;

-- 2. a refresh by a role that row-level security limits refuses, instead of closing the memberships of the
-- accounts it cannot see
SET ROLE sec_eve;
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.refresh('regions')$$);
RESET ROLE;
SELECT * FROM segments.refresh('regions');

-- an editor who can read every row refreshes (the function runs as the extension's owner); she cannot
-- write membership herself, nor install triggers on a table she may not put triggers on
CREATE TABLE shop.products (id int PRIMARY KEY, price numeric NOT NULL);
INSERT INTO shop.products SELECT i, i FROM generate_series(1, 50) i;
GRANT SELECT ON shop.products TO sec_eve, sec_rita;
CREATE ROLE sec_app;
GRANT USAGE ON SCHEMA shop TO sec_app;
GRANT SELECT, UPDATE ON shop.products TO sec_app;
SET ROLE sec_eve;
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('prices', 'shop.products', 'id');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('prices', 'dear', '{"attr": "price", "op": ">", "value": 40}');
SELECT * FROM segments.refresh('prices');
SELECT sqlstate FROM error_of($$DELETE FROM segments.membership WHERE segmentation = 'prices'$$) AS delete_membership;
SELECT sqlstate FROM error_of($$INSERT INTO segments.membership VALUES ('prices', '1', 'dear', tstzrange(now(), NULL), true)$$) AS forge_membership;
SELECT sqlstate, message FROM error_of($$SELECT segments.track('prices')$$);
RESET ROLE;
SELECT segments.track('prices');
-- an application role with no rights on membership writes the tracked table; membership follows
SET ROLE sec_app;
UPDATE shop.products SET price = 100 WHERE id = 1;
RESET ROLE;
SELECT segment FROM segments.current_membership WHERE segmentation = 'prices' AND account_key = '1';
SELECT segments.untrack('prices');

-- 3. the audit log cannot be forged: editors and readers cannot write it; it names who made each change
SET ROLE sec_eve;
SELECT sqlstate FROM error_of($$INSERT INTO segments.definition_log (changed_by, table_name, operation)
                               VALUES ('postgres', 'segment', 'DELETE')$$);
SELECT sqlstate FROM error_of($$UPDATE segments.definition_log SET changed_by = 'postgres'$$);
SELECT sqlstate FROM error_of($$DELETE FROM segments.definition_log$$);
RESET ROLE;
SELECT changed_by, table_name, operation FROM segments.definition_log
WHERE coalesce(new_row, old_row) ->> 'name' IN ('regions', 'big') OR new_row ->> 'segmentation' = 'regions' ORDER BY id;
BEGIN;
TRUNCATE segments.segment;
SELECT changed_by, table_name, operation FROM segments.definition_log ORDER BY id DESC LIMIT 1;
ROLLBACK;

-- 4. membership is readable only by roles that can read the source
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('pay', 'hr.salaries', 'id');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('pay', 'high', '{"attr": "salary", "op": ">", "value": 100000}');
SELECT * FROM segments.refresh('pay');
SET ROLE sec_rita;
SELECT segmentation, count(*) FROM segments.membership WHERE segmentation IN ('pay', 'regions') GROUP BY 1 ORDER BY 1;
SELECT segmentation, count(*) FROM segments.current_membership WHERE segmentation IN ('pay', 'regions') GROUP BY 1 ORDER BY 1;
SELECT segments.segment_at('pay', '100') AS pay_segment, segments.segment_at('regions', '300') AS region_segment;
RESET ROLE;

-- 4b. a reader calls every function the README gives readers; writing definitions is for editors
SET ROLE sec_rita;
SELECT count(DISTINCT segments.segment_of(c, 'regions')) AS segment_of, count(segments.segments_of(c, 'regions')) AS segments_of,
       count(segments.segment_path(c, 'regions')) AS segment_path, count(segments.explain(c, 'regions')) AS explain,
       count(*) FILTER (WHERE segments.classify(c, segments.ruleset('regions')) = segments.segment_of(c, 'regions')) AS classify
FROM shop.customers c;
SELECT segments.validate_rule('{"attr": "spend", "op": ">", "value": 1}', 'shop.customers') AS validate_rule,
       length(segments.to_sql('regions')) > 0 AS to_sql,
       (SELECT sum(accounts) FROM segments.coverage('regions')) AS coverage,
       (SELECT sum(accounts) FROM segments.health('regions')) AS health,
       (SELECT count(*) FROM segments.preview('regions', 'big', '{"attr": "spend", "op": ">", "value": 2990}')) AS preview,
       (SELECT sum(accounts) FROM segments.transitions('regions', now() - interval '1 day', now())) AS transitions,
       (SELECT count(*) FROM segments.kmeans('shop.customers', ARRAY['spend'], 2)) AS kmeans,
       (SELECT count(*) FROM segments.choose_k('shop.customers', ARRAY['spend'], 2, 3)) AS choose_k,
       (SELECT (segments.churn_rate_ci(region = 'EU')).n FROM shop.customers) AS churn_rate_ci;
SELECT entered + "left" + moved + unchanged AS refreshed FROM segments.refresh('prices');
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.segmentation_from_clusters('rita', 'shop.customers', 'id', ARRAY['spend'], 2)$$);
RESET ROLE;

-- 4c. NOTIFY payloads carry no account data: a stranger with no grants may LISTEN, and learns only that a
-- segmentation changed and when; who moved is for roles that can read the source (segments.changes)
CREATE ROLE sec_stranger LOGIN;
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('stranger', format('dbname=%s port=%s host=%s user=sec_stranger', current_database(),
                                         current_setting('port'), current_setting('unix_socket_directories')));
SELECT dblink_exec('stranger', 'LISTEN segments_membership');
UPDATE segments.segmentation SET notify = true WHERE name = 'prices';
SELECT segments.track('prices');
UPDATE shop.products SET price = 1 WHERE id IN (1, 2);
CREATE TEMP TABLE heard (payload jsonb);
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        INSERT INTO heard SELECT extra::jsonb FROM dblink_get_notify('stranger');
        EXIT WHEN EXISTS (SELECT 1 FROM heard);
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT array(SELECT jsonb_object_keys(payload) ORDER BY 1) AS stranger_heard, payload ->> 'segmentation' AS segmentation
FROM heard;
SELECT sqlstate, message FROM error_of(format($$SELECT * FROM dblink('stranger', %L) AS t(n bigint)$$,
    format('SELECT count(*) FROM segments.changes(%L, %L)', 'prices', (SELECT payload ->> 'at' FROM heard))));
SELECT dblink_disconnect('stranger');
SELECT lower(valid) AS pay_at FROM segments.membership WHERE segmentation = 'pay' LIMIT 1 \gset
SELECT payload ->> 'at' AS prices_at FROM heard \gset
SELECT count(*) AS pay_changes_for_superuser FROM segments.changes('pay', :'pay_at');
SET ROLE sec_rita;
SELECT * FROM segments.changes('prices', :'prices_at');
SELECT count(*) AS pay_changes_for_rita FROM segments.changes('pay', :'pay_at');
RESET ROLE;
SELECT segments.untrack('prices');

-- 5. functions, aggregates and operators planted in public are never called by the extension, even for a
-- superuser whose search_path puts public first
GRANT CREATE ON SCHEMA public TO sec_eve;
CREATE TABLE public.sec_canary (planted text);
GRANT INSERT ON public.sec_canary TO sec_eve;
SET ROLE sec_eve;
CREATE FUNCTION public.sec_trap(s jsonb, v jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.sec_canary VALUES ('jsonb_agg');
    BEGIN EXECUTE 'ALTER ROLE sec_eve SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    RETURN coalesce(s, '[]') || v;
END $$;
CREATE AGGREGATE public.jsonb_agg(jsonb) (SFUNC = public.sec_trap, STYPE = jsonb);
CREATE FUNCTION public.lower(tstzrange) RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.sec_canary VALUES ('lower'); RETURN pg_catalog.lower($1); END $$;
CREATE FUNCTION public.upper_inf(tstzrange) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.sec_canary VALUES ('upper_inf'); RETURN pg_catalog.upper_inf($1); END $$;
CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.sec_canary VALUES ('unnest'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE FUNCTION public.sec_contains(tstzrange, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.sec_canary VALUES ('@>'); RETURN $1 OPERATOR(pg_catalog.@>) $2; END $$;
CREATE OPERATOR public.@> (LEFTARG = tstzrange, RIGHTARG = timestamptz, FUNCTION = public.sec_contains);
-- an exact match for numeric > integer beats pg_catalog's numeric > numeric wherever it sits on the path
CREATE FUNCTION public.sec_gt(numeric, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.sec_canary VALUES ('>'); RETURN $1 OPERATOR(pg_catalog.>) $2; END $$;
CREATE OPERATOR public.> (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.sec_gt);
-- the traps work: the editor's own query calls them
SELECT jsonb_agg(x) AS trapped FROM (VALUES ('1'::jsonb)) v(x);
SELECT lower(tstzrange(now(), NULL)) IS NOT NULL AS trapped;
SELECT 2.5 > 1 AS trapped;
RESET ROLE;
SELECT count(*) AS armed FROM public.sec_canary;
TRUNCATE public.sec_canary;
-- a new backend (empty rule caches) of a superuser with public first on the path
\c
SET client_min_messages = warning;
SET search_path = public, pg_catalog;
SELECT segments.segment_of(c, 'regions') AS segment, count(*) FROM shop.customers c GROUP BY 1 ORDER BY 1;
SELECT count(*) > 0 AS refreshed FROM segments.refresh('regions');
SELECT segment, accounts FROM segments.coverage('regions') ORDER BY 1;
SELECT segment, accounts FROM segments.health('regions') ORDER BY 1;
SELECT segments.segment_at('regions', '300');
SELECT sum(accounts) = (SELECT count(*) FROM shop.customers) AS all_entered_today
FROM segments.transitions('regions', now() - interval '1 day', now()) WHERE from_segment IS NULL;
SELECT count(*) = (SELECT count(*) FROM shop.customers WHERE spend > 10.0 AND spend <= 1500.0) AS preview_agrees
FROM segments.preview('regions', 'big', '{"attr": "spend", "op": ">", "value": 10}');
SELECT segments.track('regions');
UPDATE shop.customers SET spend = 5000 WHERE id = 1;
UPDATE shop.customers SET spend = spend + 1 WHERE id <= 200;
SELECT segments.to_sql('regions');
-- the CASE expression runs in the caller's query, on the caller's path: pg_catalog's operators are named
SELECT format('SELECT %s AS segment, count(*) FROM shop.customers GROUP BY 1 ORDER BY 1', segments.to_sql('regions')) \gexec
SELECT segments.untrack('regions');
RESET search_path;
SELECT count(*) AS planted_calls FROM public.sec_canary;
SELECT rolsuper AS eve_became_superuser FROM pg_roles WHERE rolname = 'sec_eve';

-- 6. an editor's view runs as the editor, never as the extension's owner: refresh and backfill are SECURITY
-- DEFINER (they write membership), and read a view or foreign table as its owner, as PostgreSQL runs a
-- materialized view's query as its owner; a superuser's scheduled refresh of it cannot escalate either.
CREATE SCHEMA eve AUTHORIZATION sec_eve;
CREATE TABLE public.sec_ran_as (who text);
GRANT INSERT ON public.sec_ran_as TO sec_eve;
SET ROLE sec_eve;
CREATE TABLE eve.accounts (id int PRIMARY KEY, score int, taken_at timestamptz DEFAULT '2024-01-01 00:00+00');
INSERT INTO eve.accounts (id, score) VALUES (1, 1), (2, 5);
CREATE FUNCTION eve.payload() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.sec_ran_as VALUES (current_user);
    BEGIN
        EXECUTE 'ALTER ROLE sec_eve SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN 0;
END $$;
CREATE VIEW eve.scored AS SELECT id, score + eve.payload() AS score, taken_at FROM eve.accounts;
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('eve_view', 'eve.scored', 'id');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('eve_view', 'high', '{"attr": "score", "op": ">", "value": 3}');
SELECT entered FROM segments.refresh('eve_view');
SELECT snapshot_times, accounts FROM segments.backfill('eve_view', 'eve.scored', 'taken_at', overwrite => true);
SELECT sqlstate FROM error_of($$SELECT segments._read_as_owner('eve.scored'::regclass, 'x')$$);
RESET ROLE;
SELECT entered, unchanged FROM segments.refresh('eve_view');
SELECT who, count(*) AS calls FROM public.sec_ran_as GROUP BY 1;
SELECT rolsuper AS eve_became_superuser FROM pg_roles WHERE rolname = 'sec_eve';
SELECT account_key, segment FROM segments.current_membership WHERE segmentation = 'eve_view' ORDER BY 1;
DELETE FROM segments.segmentation WHERE name = 'eve_view';
DROP TABLE public.sec_ran_as;

DELETE FROM segments.segmentation WHERE name IN ('regions', 'pay', 'prices');
DROP SCHEMA hr, shop, eve CASCADE;
DROP TABLE public.sec_canary;
DROP OPERATOR public.@> (tstzrange, timestamptz), public.> (numeric, integer);
DROP FUNCTION public.sec_gt(numeric, integer);
DROP FUNCTION public.sec_contains(tstzrange, timestamptz), public.lower(tstzrange), public.upper_inf(tstzrange), public.unnest(text[]);
DROP AGGREGATE public.jsonb_agg(jsonb);
DROP FUNCTION public.sec_trap(jsonb, jsonb);
REVOKE CREATE ON SCHEMA public FROM sec_eve;
DROP OWNED BY sec_eve, sec_rita, sec_app, sec_stranger;
DROP ROLE sec_eve, sec_rita, sec_app, sec_stranger;
