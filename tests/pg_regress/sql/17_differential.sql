-- One answer: segment_of, classify, the to_sql expression and refresh agree on every row for every rule the
-- validator accepts. First the cases that once differed, each shown with its four answers; then random rule
-- trees over every column type, NULLs and edge values (tests/fuzz/fuzz.sql), and mutated rule documents.
SET TimeZone = 'UTC';

CREATE TABLE fuzz.cases (id int PRIMARY KEY, f8 float8, num numeric, i8 bigint, ch char(6), ci text COLLATE fuzz.nocase,
                         txt text, d date);
INSERT INTO fuzz.cases VALUES
  (1, 'NaN', 'NaN', 9007199254740993, 'ab', 'ABC', E'a\nb', '5874897-12-31'),
  (2, 5, 0.1000000000000000001, 9007199254740992, 'ab ', 'abc', 'é', '2024-01-31'),
  (3, 'Infinity', 1e400, 1152921504606846976, 'AB', 'Abc', 'word boundary', 'infinity'),
  (4, NULL, 0.1, NULL, NULL, NULL, 'A1', NULL);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('cases', 'fuzz.cases', 'id');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('cases', 'hit', 'true');

-- the rows the rule puts in "hit" by each evaluator (they must be the same list four times)
CREATE FUNCTION fuzz.hits(rule jsonb, OUT segment_of int[], OUT classify int[], OUT to_sql int[], OUT refresh int[])
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE segments.segment SET rule = hits.rule WHERE segmentation = 'cases';
    PERFORM segments.refresh('cases');
    SELECT array_agg(c.id ORDER BY c.id) FILTER (WHERE segments.segment_of(c, 'cases') = 'hit'),
           array_agg(c.id ORDER BY c.id) FILTER (WHERE segments.classify(c, segments.ruleset('cases')) = 'hit')
      INTO segment_of, classify FROM fuzz.cases c;
    EXECUTE format('SELECT array_agg(t.id ORDER BY t.id) FILTER (WHERE (%s) = ''hit'') FROM fuzz.cases t', segments.to_sql('cases'))
      INTO to_sql;
    SELECT array_agg(m.account_key::int ORDER BY m.account_key::int) INTO refresh
      FROM segments.membership m WHERE m.segmentation = 'cases' AND upper_inf(m.valid) AND m.segment = 'hit';
END $$;

-- NaN is above every number, as PostgreSQL orders float8 and numeric
SELECT * FROM fuzz.hits('{"attr": "f8", "op": ">", "value": 1e300}');
SELECT * FROM fuzz.hits('{"attr": "num", "op": ">=", "value": 1e300}');
SELECT * FROM fuzz.hits('{"attr": "f8", "op": "!=", "value": 5}');
-- numerics are compared exactly, also beyond double precision's range and digits
SELECT * FROM fuzz.hits('{"attr": "num", "op": ">", "value": 0.1}');
SELECT * FROM fuzz.hits('{"attr": "num", "op": "=", "value": 0.1}');
-- integers beyond 2^53 against fractions and rounded doubles
SELECT * FROM fuzz.hits('{"attr": "i8", "op": ">", "value": 9007199254740992.0}');
SELECT * FROM fuzz.hits('{"attr": "i8", "op": "=", "value": 1152921504606846976}');
SELECT * FROM fuzz.hits('{"attr": "i8", "op": "=", "value": 1.152921504606847e18}');
-- char(n) is compared without its blank padding, as text; a constant's trailing blank counts
SELECT * FROM fuzz.hits('{"attr": "ch", "op": "=", "value": "ab"}');
SELECT * FROM fuzz.hits('{"attr": "ch", "op": "=", "value": "ab "}');
SELECT * FROM fuzz.hits('{"attr": "ch", "op": "matches", "value": "^ab$"}');
-- text compares byte by byte whatever the column's collation (here case-insensitive where ICU exists)
SELECT * FROM fuzz.hits('{"attr": "ci", "op": "=", "value": "abc"}');
SELECT * FROM fuzz.hits('{"attr": "ci", "op": "in", "value": ["ABC", "x"]}');
SELECT * FROM fuzz.hits('{"attr": "ci", "op": "<", "value": "B"}');
-- patterns: "." takes a newline; \w and [[:alpha:]] are ASCII; the common subset reads alike
SELECT * FROM fuzz.hits('{"attr": "txt", "op": "matches", "value": "^a.b$"}');
SELECT * FROM fuzz.hits('{"attr": "txt", "op": "matches", "value": "^\\w+$"}');
SELECT * FROM fuzz.hits('{"attr": "txt", "op": "matches", "value": "^[[:alpha:]]"}');
SELECT * FROM fuzz.hits('{"attr": "txt", "op": "matches", "value": "[[:upper:]]\\d"}');
-- dates after the last timestamp (294276 AD) count as infinity against a timestamp, as in PostgreSQL
SELECT * FROM fuzz.hits('{"attr": "d", "op": ">", "value": "294276-12-31"}');
SELECT * FROM fuzz.hits('{"attr": "d", "op": "within", "value": "1 year", "as_of": "2024-06-30"}');

-- What reads differently in the two regex dialects is refused when saved (2201B), with the reason.
SELECT p AS pattern, e.sqlstate, e.message
FROM unnest(ARRAY['\bword\b', '\Bx', '(?P<name>a)', '\p{Lu}', '(?i)abc', '\x41', 'a{256}', 'a|', '\1', '[[.a.]]', '[a&&b]']) p,
     LATERAL error_of(format('SELECT segments.validate_rule(%L, %L)',
                             jsonb_build_object('attr', 'txt', 'op', 'matches', 'value', p), 'fuzz.cases')) e;

-- Random rule trees: every accepted one answers alike in the four evaluators on all 240 rows.
SELECT fuzz.fill(1);
SELECT count(*) AS accounts, count(*) FILTER (WHERE f8 = 'NaN' OR num = 'NaN') AS nans,
       count(*) FILTER (WHERE d > '294276-12-31') AS far_dates
FROM fuzz.t;
SELECT * FROM fuzz.differential(150, 1);
-- Mutated rule documents (values beyond range, deep nesting, any regex dialect, unknown keys, huge lists):
-- each is refused with a fitting SQLSTATE and no panic, or accepted and then answers alike.
SELECT * FROM fuzz.differential(150, 2, 70);
DELETE FROM segments.membership WHERE segmentation = 'cases';
DELETE FROM segments.segmentation WHERE name = 'cases';
