-- classify: the IMMUTABLE evaluator takes the rules as a value (segments.ruleset) and reads no table.
SELECT jsonb_pretty(segments.ruleset('contract') - 'as_of');

SELECT count(*) AS accounts,
       count(*) FILTER (WHERE segments.classify(c, segments.ruleset('contract')) = segments.segment_of(c, 'contract')) AS agree
FROM telco.customers c;
SELECT count(*) AS accounts,
       count(*) FILTER (WHERE segments.classify(c, segments.ruleset('value')) = segments.segment_of(c, 'value')) AS agree
FROM telco.customers c;

-- to_sql: the segmentation as a plain CASE expression.
SELECT segments.to_sql('contract');
SELECT segments.to_sql('value');

-- It agrees with segment_of on every row: run the generated SQL.
DO $$
DECLARE
    seg text;
    n bigint;
BEGIN
    FOREACH seg IN ARRAY ARRAY['contract', 'value', 'tags', 'nulls', 'activity'] LOOP
        EXECUTE format('SELECT count(*) FROM %s t WHERE (%s) IS DISTINCT FROM segments.segment_of(t, %L)',
                       (SELECT source FROM segments.segmentation WHERE name = seg), segments.to_sql(seg), seg)
        INTO n;
        RAISE NOTICE '% disagreements: %', seg, n;
    END LOOP;
END $$;

-- Quoting: an attribute named a"b and a value that tries SQL injection round-trip harmlessly.
CREATE TABLE telco.quoting ("a""b" text, id int);
INSERT INTO telco.quoting VALUES ('x''); DROP TABLE telco.quoting; --', 1), ('plain', 2), ('back\slash', 3);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('quoting', 'telco.quoting', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('quoting', 'it''s evil', 1, '{"attr": "a\"b", "op": "=", "value": "x''); DROP TABLE telco.quoting; --"}'),
  ('quoting', 'slash', 2, '{"attr": "a\"b", "op": "in", "value": ["back\\slash"]}');
SELECT segments.to_sql('quoting');
DO $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM telco.quoting t WHERE (%s) IS DISTINCT FROM segments.segment_of(t, ''quoting'')',
                   segments.to_sql('quoting')) INTO n;
    RAISE NOTICE 'quoting disagreements: %', n;
END $$;
SELECT id, segments.segment_of(q, 'quoting') FROM telco.quoting q ORDER BY id;

-- A definition change is visible to the next statement.
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}'
WHERE segmentation = 'contract' AND name = 'One year';
SELECT segments.segment_of(c, 'contract') AS segment, count(*) FROM telco.customers c GROUP BY 1 ORDER BY 1;
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year"]}'
WHERE segmentation = 'contract' AND name = 'One year';

-- Functions are marked for parallel query; per-row functions carry no SET search_path.
SELECT proname, provolatile, proparallel, proconfig IS NULL AS no_set_clause
FROM pg_proc WHERE pronamespace = 'segments'::regnamespace
  AND proname IN ('segment_of', 'segments_of', 'segment_path', 'explain', 'classify', 'ruleset', 'to_sql')
ORDER BY proname;
