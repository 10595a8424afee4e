-- The per-row functions and aggregates give the same answers in every execution context: plain SELECT,
-- CTAS, materialized views (create, refresh, refresh concurrently), views, PL/pgSQL, prepared statements,
-- cursors and triggers, under forced parallel plans too, with definitions read in parallel mode and the
-- row types of subqueries and CTEs after parallel operations.
SET client_min_messages = warning;
CREATE TABLE ctx_expected AS
SELECT c.customer_id, segments.segment_of(c, 'contract') AS contract, segments.segment_path(c, 'value') AS path
FROM telco.customers c;
CREATE TABLE ctx_expected_health AS
SELECT segments.segment_of(c, 'contract') AS segment, count(*) AS accounts, segments.churn_rate(churned) AS churn,
       segments.nrr(monthly_charges * 12, CASE WHEN churned THEN 0 ELSE monthly_charges * 12 END) AS nrr
FROM telco.customers c GROUP BY 1;
-- the first query an analyst writes, checked against plain SQL
SELECT e.segment, e.accounts, round(e.churn::numeric, 4) AS churn,
       e.accounts = (SELECT count(*) FROM telco.customers WHERE contract = e.segment) AS counts_agree
FROM ctx_expected_health e ORDER BY 1;

-- a comparison helper: rows of a query that differ from the expected per-row answers
CREATE FUNCTION ctx_diff(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM ((%s) EXCEPT ALL (TABLE ctx_expected)) d', q) INTO n;
    RETURN n + (SELECT count(*) FROM telco.customers) - (SELECT count(*) FROM ctx_expected);
END $$;
CREATE FUNCTION ctx_health_diff(q text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (SELECT segment, accounts, round(churn::numeric, 12), round(nrr::numeric, 12) FROM (%s) x
                    EXCEPT ALL SELECT segment, accounts, round(churn::numeric, 12), round(nrr::numeric, 12) FROM ctx_expected_health) d', q) INTO n;
    RETURN n;
END $$;

-- every context, first at default settings, then with parallel plans forced
CREATE FUNCTION ctx_run(label text) RETURNS TABLE (context text, differing_rows bigint) LANGUAGE plpgsql AS $$
DECLARE
    per_row text := 'SELECT c.customer_id, segments.segment_of(c, ''contract''), segments.segment_path(c, ''value'') FROM telco.customers c';
    health text := 'SELECT segments.segment_of(c, ''contract'') AS segment, count(*) AS accounts, segments.churn_rate(churned) AS churn,
                    segments.nrr(monthly_charges * 12, CASE WHEN churned THEN 0 ELSE monthly_charges * 12 END) AS nrr
                    FROM telco.customers c GROUP BY 1';
    r record;
    n bigint := 0;
    cur refcursor;
BEGIN
    context := label || ': select'; differing_rows := ctx_diff(per_row); RETURN NEXT;
    context := label || ': aggregate'; differing_rows := ctx_health_diff(health); RETURN NEXT;

    EXECUTE 'DROP TABLE IF EXISTS ctx_ctas';
    EXECUTE 'CREATE TABLE ctx_ctas AS ' || health;
    context := label || ': create table as'; differing_rows := ctx_health_diff('TABLE ctx_ctas'); RETURN NEXT;

    EXECUTE 'DROP MATERIALIZED VIEW IF EXISTS ctx_mv';
    EXECUTE 'CREATE MATERIALIZED VIEW ctx_mv AS ' || health;
    EXECUTE 'CREATE UNIQUE INDEX ON ctx_mv (segment)';
    context := label || ': materialized view'; differing_rows := ctx_health_diff('TABLE ctx_mv'); RETURN NEXT;
    EXECUTE 'REFRESH MATERIALIZED VIEW ctx_mv';
    context := label || ': refresh materialized view'; differing_rows := ctx_health_diff('TABLE ctx_mv'); RETURN NEXT;
    EXECUTE 'REFRESH MATERIALIZED VIEW CONCURRENTLY ctx_mv';
    context := label || ': refresh concurrently'; differing_rows := ctx_health_diff('TABLE ctx_mv'); RETURN NEXT;

    EXECUTE 'CREATE OR REPLACE VIEW ctx_view AS ' || per_row;
    context := label || ': view'; differing_rows := ctx_diff('TABLE ctx_view'); RETURN NEXT;

    -- a subquery's and a CTE's row type (anonymous records, shared with parallel workers)
    context := label || ': subquery row';
    differing_rows := ctx_diff('SELECT s.customer_id, segments.segment_of(s, ''contract''), segments.segment_path(s, ''value'')
                                FROM (SELECT customer_id, contract, monthly_charges, internet_service, streaming_tv, streaming_movies, tenure FROM telco.customers) s');
    RETURN NEXT;
    context := label || ': cte row';
    differing_rows := ctx_diff('WITH s AS MATERIALIZED (SELECT customer_id, contract, monthly_charges, internet_service, streaming_tv, streaming_movies, tenure FROM telco.customers)
                                SELECT s.customer_id, segments.segment_of(s, ''contract''), segments.segment_path(s, ''value'') FROM s');
    RETURN NEXT;

    -- PL/pgSQL row by row, and a cursor
    n := 0;
    FOR r IN SELECT c, e.contract FROM telco.customers c JOIN ctx_expected e USING (customer_id) LOOP
        IF segments.segment_of(r.c, 'contract') IS DISTINCT FROM r.contract THEN n := n + 1; END IF;
    END LOOP;
    context := label || ': plpgsql loop'; differing_rows := n; RETURN NEXT;
    CREATE TEMP TABLE ctx_fetched (customer_id text, contract text, path text);
    OPEN cur FOR EXECUTE per_row;
    LOOP
        FETCH cur INTO r;
        EXIT WHEN NOT FOUND;
        INSERT INTO ctx_fetched VALUES (r.customer_id, r.segment_of, r.segment_path);
    END LOOP;
    CLOSE cur;
    n := ctx_diff('TABLE ctx_fetched');
    DROP TABLE ctx_fetched;
    context := label || ': cursor'; differing_rows := n; RETURN NEXT;
END $$;

SELECT * FROM ctx_run('default');

-- prepared statements
PREPARE ctx_prepared AS SELECT c.customer_id, segments.segment_of(c, 'contract'), segments.segment_path(c, 'value') FROM telco.customers c;
CREATE TABLE ctx_from_prepared AS EXECUTE ctx_prepared;
SELECT ctx_diff('TABLE ctx_from_prepared') AS prepared_statement;

-- a trigger that stores each new row's segment
CREATE TABLE ctx_triggered (LIKE telco.customers);
ALTER TABLE ctx_triggered ADD COLUMN segment text;
CREATE FUNCTION ctx_assign() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.segment := segments.segment_of(NEW, 'contract');
    RETURN NEW;
END $$;
CREATE TRIGGER ctx_assign BEFORE INSERT ON ctx_triggered FOR EACH ROW EXECUTE FUNCTION ctx_assign();
INSERT INTO ctx_triggered SELECT * FROM telco.customers;
SELECT count(*) AS rows, count(*) FILTER (WHERE t.segment IS DISTINCT FROM e.contract) AS trigger_differing_rows
FROM ctx_triggered t JOIN ctx_expected e USING (customer_id);

-- forced parallel plans (PostgreSQL 15 calls the setting force_parallel_mode, 16+ debug_parallel_query)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
DO $$ BEGIN PERFORM set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
    THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false); END $$;
-- a new session's backend cache is empty: definitions are then read in parallel mode
\c
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
DO $$ BEGIN PERFORM set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
    THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false); END $$;
-- compiled into the plan (23_plan_compilation), the CASE runs in the workers; a segmentation named by a
-- setting is not a constant and keeps the per-row call, which reads the definitions in each worker
EXPLAIN (COSTS OFF) SELECT segments.segment_of(c, 'contract'), count(*) FROM telco.customers c GROUP BY 1;
SET ctx.segmentation = 'contract';
EXPLAIN (COSTS OFF) SELECT segments.segment_of(c, current_setting('ctx.segmentation')), count(*) FROM telco.customers c GROUP BY 1;
SELECT count(*) AS differing_rows FROM telco.customers c JOIN ctx_expected e USING (customer_id)
WHERE segments.segment_of(c, current_setting('ctx.segmentation')) IS DISTINCT FROM e.contract;
SELECT * FROM ctx_run('parallel');
RESET ALL;

DROP MATERIALIZED VIEW ctx_mv;
DROP VIEW ctx_view;
DROP TABLE ctx_ctas, ctx_from_prepared, ctx_triggered, ctx_expected, ctx_expected_health;
DROP FUNCTION ctx_run(text), ctx_diff(text), ctx_health_diff(text), ctx_assign();
