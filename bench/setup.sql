-- Helpers shared by the benchmarks: time a query (median of runs, ms) and print a ratio table.
CREATE EXTENSION IF NOT EXISTS pg_segments CASCADE;
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.time_ms(query text, runs int DEFAULT 5) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    times float8[] := '{}';
BEGIN
    EXECUTE query;  -- warm the cache
    FOR i IN 1..runs LOOP
        t0 := clock_timestamp();
        EXECUTE query;
        times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times) t);
END $$;
-- Several queries timed in turns (run 1 of each, then run 2 of each, ...): on a shared, noisy machine a slow
-- spell then hits every query alike. Median ms of each, in the order given.
CREATE OR REPLACE FUNCTION bench.time_in_turns(queries text[], runs int DEFAULT 7) RETURNS float8[] LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    times float8[] := array_fill(NULL::float8, ARRAY[array_length(queries, 1), runs]);
    medians float8[] := '{}';
BEGIN
    FOR q IN 1..array_length(queries, 1) LOOP EXECUTE queries[q]; END LOOP;  -- warm the caches
    FOR r IN 1..runs LOOP
        FOR q IN 1..array_length(queries, 1) LOOP
            t0 := clock_timestamp();
            EXECUTE queries[q];
            times[q][r] := extract(epoch FROM clock_timestamp() - t0) * 1000;
        END LOOP;
    END LOOP;
    FOR q IN 1..array_length(queries, 1) LOOP
        medians := medians || (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY t) FROM unnest(times[q:q][1:runs]) t);
    END LOOP;
    RETURN medians;
END $$;
