-- Bad input is an ERROR with a fitting SQLSTATE, never XX000, a panic or a Rust backtrace (the test
-- cluster runs with RUST_BACKTRACE=full set); out-of-domain model parameters raise instead of answering.
SET client_min_messages = warning;
CREATE SCHEMA probe;
CREATE TYPE probe.mood AS ENUM ('happy', 'sad');
CREATE TABLE probe.accounts (id int PRIMARY KEY, score numeric, seen timestamptz, tag uuid, props jsonb,
                             tags text[], blob bytea, at_time time, wait interval, mood probe.mood);
INSERT INTO probe.accounts VALUES
    (1, 10, '2024-01-01', gen_random_uuid(), '{"a": 1}', '{x}', '\x00', '12:00', '1 day', 'happy'),
    (2, 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, NULL, '-infinity', gen_random_uuid(), 'null', '{}', '', '00:00', '0 s', 'sad');
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('probe', 'probe.accounts', 'id');

-- numbers beyond float8, nesting beyond the limit (ours: 32 levels; serde's: 128)
SELECT sqlstate, message, hint FROM error_of($$SELECT segments.validate_rule('{"attr": "score", "op": ">", "value": 1e400}', 'probe.accounts')$$);
SELECT sqlstate, message FROM error_of(format('SELECT segments.validate_rule(%L, %L)',
    repeat('{"not": ', 40) || 'true' || repeat('}', 40), 'probe.accounts'));
SELECT sqlstate, message FROM error_of(format('SELECT segments.validate_rule(%L, %L)',
    repeat('{"not": ', 200) || 'true' || repeat('}', 200), 'probe.accounts'));
SELECT sqlstate, message FROM error_of(format('SELECT segments.classify(a, %L) FROM probe.accounts a',
    '{"segmentation": "x", "mode": "exclusive", "default_segment": "d", "segments": [{"name": "s", "rule": '
    || repeat('{"not": ', 200) || 'true' || repeat('}', 200) || '}]}'));
-- timestamps: a multi-byte character in the zone, beyond the timestamp range
SELECT sqlstate, message FROM error_of($$SELECT segments.validate_rule('{"attr": "seen", "op": ">", "value": "2024-01-31 12:00+aé1"}', 'probe.accounts')$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.validate_rule('{"attr": "seen", "op": ">", "value": "300000-01-01"}', 'probe.accounts')$$);
-- a window longer than history reaches -infinity, in segment_of and to_sql alike
INSERT INTO segments.segment (segmentation, name, rule)
VALUES ('probe', 'ever', '{"attr": "seen", "op": "within", "value": "99999999 days"}');
SELECT segments.to_sql('probe');
SELECT a.id, segments.segment_of(a, 'probe') FROM probe.accounts a ORDER BY a.id;

-- is_null / not_null read every type's NULL bit (uuid, jsonb, arrays, bytea, time, interval, enums)
SELECT col, count(*) FILTER (WHERE segments.classify(a, r) = 'null') AS null_by_rule,
       count(*) FILTER (WHERE CASE col WHEN 'tag' THEN a.tag IS NULL WHEN 'props' THEN a.props IS NULL
                                       WHEN 'tags' THEN a.tags IS NULL WHEN 'blob' THEN a.blob IS NULL
                                       WHEN 'at_time' THEN a.at_time IS NULL WHEN 'wait' THEN a.wait IS NULL
                                       WHEN 'mood' THEN a.mood IS NULL END) AS null_by_sql
FROM probe.accounts a,
     unnest(ARRAY['tag', 'props', 'tags', 'blob', 'at_time', 'wait', 'mood']) col,
     LATERAL (SELECT jsonb_build_object('segmentation', 'p', 'mode', 'exclusive', 'default_segment', 'set',
              'segments', jsonb_build_array(jsonb_build_object('name', 'null', 'rule',
                  jsonb_build_object('attr', col, 'op', 'is_null'))))) x(r)
GROUP BY col ORDER BY col;

-- a dropped source: 42P01 naming the segmentation
CREATE TABLE probe.gone (id int);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('gone', 'probe.gone', 'id');
DROP TABLE probe.gone;
SELECT sqlstate, message, hint FROM error_of($$SELECT segments.to_sql('gone')$$);
DELETE FROM segments.segmentation WHERE name = 'gone';

-- NULL feature names, hand-made aggregate states
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.kmeans('probe.accounts', ARRAY[NULL, 'score'], 2)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments._nrr_final('{1}')$$);
SELECT sqlstate, message FROM error_of($$SELECT segments._churn_rate_final('{1, NULL}')$$);
-- sums beyond float8
SELECT sqlstate, message FROM error_of($$SELECT segments.arr_growth(1e308, 1e308) FROM generate_series(1, 3)$$);

-- models outside their domain
SELECT sqlstate, message FROM error_of($$SELECT segments.bgnbd_expected(ROW(0.243, 4.414, 0.793, 2.426, 0, 1)::segments.bgnbd_params, 1e12, 2, 30.43, 38.86)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.expected_spend(ROW(6.25, 0.5, 15.4, 0, 1)::segments.gamma_gamma_params, 2, 30)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.gamma_gamma_fit(f, 25) FROM generate_series(1, 20) f$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.rfm(t, 10, now()) FROM (VALUES ('-infinity'::timestamptz), ('2024-01-01')) o(t)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.predicted_clv(ROW(0.243, 4.414, 0.793, 2.426, 0, 1)::segments.bgnbd_params,
    ROW(6.25, 3.74, 15.44, 0, 1)::segments.gamma_gamma_params, 2, 30.43, 38.86, 35, 3000000)$$);

-- no message or detail of any error above carried a backtrace; this one is raised by the Rust code
SELECT sqlstate, detail FROM error_of($$SELECT segments.to_sql('no such segmentation')$$);

DELETE FROM segments.segmentation WHERE name = 'probe';
DROP SCHEMA probe CASCADE;

-- A dropped source: every function that reads it says so (42P01, naming the segmentation); history stays readable.
CREATE TABLE public.doomed (id int PRIMARY KEY, x int);
INSERT INTO public.doomed VALUES (1, 5);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('doomed', 'public.doomed', 'id');
INSERT INTO segments.segment (segmentation, name, rule) VALUES ('doomed', 'large', '{"attr": "x", "op": ">", "value": 3}');
SELECT entered FROM segments.refresh('doomed');
DROP TABLE public.doomed;
SELECT sqlstate, message, hint FROM error_of($$SELECT segments.refresh('doomed')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.health('doomed')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.coverage('doomed')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.data_coverage('doomed')$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.to_sql('doomed')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.preview('doomed', 'large', 'true')$$);
SELECT segments.segment_at('doomed', '1') AS still_recorded;
DELETE FROM segments.segmentation WHERE name = 'doomed';

-- Long loops check for interrupts: statement_timeout stops a k-means that would run for minutes within a second
-- of the timeout (300,000 points, k = 20, ten starts).
CREATE TABLE public.many_points AS
SELECT i AS id, sin(i) AS a, cos(i * 1.3) AS b, sin(i * 0.7) AS c, cos(i * 2.1) AS d FROM generate_series(1, 300000) i;
SET statement_timeout = '200ms';
SELECT clock_timestamp() AS started \gset
SELECT count(*) FROM segments.kmeans('public.many_points', ARRAY['a', 'b', 'c', 'd'], 20, n_init => 10);
RESET statement_timeout;
SELECT clock_timestamp() - :'started'::timestamptz < interval '1.5 seconds' AS stopped_within_a_second;
DROP TABLE public.many_points;
