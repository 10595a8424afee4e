-- segment_of, segment_path, segments_of, explain and classify on a distributed table: each shard classifies
-- its own rows (the coordinator's planner hook puts the ruleset into the query it sends them).
SET client_min_messages = warning;
SELECT segments.segment_of(c, 'contract_dist') AS segment, count(*) FROM dist.customers c GROUP BY 1 ORDER BY 1;

-- every function, every row, against the local copy
SELECT 'segment_of' AS function, * FROM differences(
  $$SELECT customer_id, segments.segment_of(c, 'value_dist') FROM dist.customers c$$,
  $$SELECT customer_id, segments.segment_of(c, 'value_local') FROM local.customers c$$)
UNION ALL SELECT 'segment_path', * FROM differences(
  $$SELECT customer_id, segments.segment_path(c, 'value_dist') FROM dist.customers c$$,
  $$SELECT customer_id, segments.segment_path(c, 'value_local') FROM local.customers c$$)
UNION ALL SELECT 'segments_of', * FROM differences(
  $$SELECT customer_id, segments.segments_of(c, 'services_dist') FROM dist.customers c$$,
  $$SELECT customer_id, segments.segments_of(c, 'services_local') FROM local.customers c$$)
UNION ALL SELECT 'explain', * FROM differences(
  $$SELECT customer_id, replace(segments.explain(c, 'value_dist')::text, 'value_dist', 'value') FROM dist.customers c$$,
  $$SELECT customer_id, replace(segments.explain(c, 'value_local')::text, 'value_local', 'value') FROM local.customers c$$)
UNION ALL SELECT 'classify(ruleset())', * FROM differences(
  $$SELECT customer_id, segments.classify(c, segments.ruleset('contract_dist')) FROM dist.customers c$$,
  $$SELECT customer_id, segments.classify(c, segments.ruleset('contract_local')) FROM local.customers c$$)
UNION ALL SELECT 'time windows', * FROM differences(
  $$SELECT customer_id, segments.segment_of(c, 'activity_dist') FROM dist.customers c$$,
  $$SELECT customer_id, segments.segment_of(c, 'activity_local') FROM local.customers c$$)
UNION ALL SELECT 'in WHERE and a join', * FROM differences(
  $$SELECT c.customer_id FROM dist.customers c JOIN dist.customers d USING (customer_id)
    WHERE segments.segment_of(c, 'value_dist') = 'High spend > Fiber' AND segments.segment_path(d, 'value_dist') LIKE 'High%'$$,
  $$SELECT c.customer_id FROM local.customers c WHERE segments.segment_of(c, 'value_local') = 'High spend > Fiber'$$);

-- the same counts written by hand
SELECT segments.segment_path(c, 'value_dist') AS path, count(*) FROM dist.customers c GROUP BY 1
EXCEPT ALL
SELECT CASE WHEN monthly_charges >= 70 THEN
              CASE WHEN internet_service = 'Fiber optic' THEN
                     CASE WHEN streaming_tv = 'Yes' AND streaming_movies = 'Yes' THEN 'High spend > Fiber > Streaming'
                          ELSE 'High spend > Fiber' END
                   ELSE 'High spend' END
            WHEN monthly_charges BETWEEN 35 AND 70 THEN
              CASE WHEN tenure > 48 THEN 'Mid spend > Long tenure' ELSE 'Mid spend' END
            ELSE 'Unsegmented' END, count(*)
FROM local.customers GROUP BY 1;

-- Where it runs: on the workers, as the compiled CASE (no call to segment_of or ruleset() reaches a shard)
SELECT plan ~ 'Task Count: 32' AS on_32_shards,
       plan ~ 'Query: SELECT CASE WHEN' AS shards_run_the_case,
       plan !~ 'segment_of\(|ruleset\(' AS no_definition_reads
FROM plan_of($$SELECT segments.segment_of(c, 'contract_dist'), count(*) FROM dist.customers c GROUP BY 1$$) plan;
SELECT plan ~ 'Task Count: 32' AS on_32_shards, plan !~ 'segments\.ruleset\(' AS ruleset_read_once_on_the_coordinator
FROM plan_of($$SELECT segments.classify(c, segments.ruleset('contract_dist')) FROM dist.customers c$$) plan;

-- A prepared statement, a PL/pgSQL function's cached plan and a materialized view see a change made afterwards.
PREPARE by_contract AS SELECT segments.segment_of(c, 'contract_dist') AS segment, count(*) FROM dist.customers c GROUP BY 1 ORDER BY 1;
CREATE FUNCTION public.one_year() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN RETURN (SELECT count(*) FROM dist.customers c WHERE segments.segment_of(c, 'contract_dist') = 'One year'); END $$;
CREATE MATERIALIZED VIEW public.contract_counts AS
SELECT segments.segment_of(c, 'contract_dist') AS segment, count(*) FROM dist.customers c GROUP BY 1;
EXECUTE by_contract; EXECUTE by_contract; EXECUTE by_contract; EXECUTE by_contract; EXECUTE by_contract;
SELECT public.one_year(), public.one_year(), public.one_year(), public.one_year(), public.one_year(), public.one_year();
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}'
WHERE segmentation = 'contract_dist' AND name = 'One year';
EXECUTE by_contract;
SELECT public.one_year();
REFRESH MATERIALIZED VIEW public.contract_counts;
SELECT * FROM public.contract_counts ORDER BY 1;
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year"]}'
WHERE segmentation = 'contract_dist' AND name = 'One year';
EXECUTE by_contract;

-- What a shard cannot evaluate is refused on the coordinator, never answered wrong
SELECT * FROM error_of($$SELECT segments.segment_of(c, c.contract) FROM dist.customers c$$);
SELECT * FROM error_of($$SELECT segments.segment_of(c, 'nope') FROM dist.customers c$$);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('by_reference', 'dist.customers', 'customer_id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('by_reference', 'Fiber month-to-month', 1, '{"all": [{"in_segment": "Month-to-month", "of": "contract_dist"},
                                                         {"attr": "internet_service", "op": "=", "value": "Fiber optic"}]}');
SELECT * FROM error_of($$SELECT segments.segment_of(c, 'by_reference') FROM dist.customers c$$);
-- its plain SQL form runs anywhere
SELECT segments.to_sql('by_reference') IS NOT NULL AS exported;
DELETE FROM segments.segment WHERE segmentation = 'by_reference';
DELETE FROM segments.segmentation WHERE name = 'by_reference';
