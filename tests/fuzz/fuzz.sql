-- The SQL fuzzer and differential tester, loaded into a test database (tests/load_fixtures.sh; bin/fuzz).
--
--   fuzz.differential(rulesets, seed): random segmentations (random rule trees over every column type of
--     fuzz.t, whose rows hold NULLs and edge values, behavioral conditions over fuzz.ev, and scores of a model
--     fitted on them) must give the same answer from segment_of, classify, the to_sql expression, the to_query
--     query and refresh on every row; segments_of and refresh's tags for overlapping ones.
--   fuzz.mutations(probes, seed): random and mutated rule documents must be accepted or refused with a
--     fitting SQLSTATE: never XX000, never a panic or a backtrace in the message.
--
-- Both draw from their own generator (MINSTD) so a seed gives the same rules on every server version;
-- tests/pg_regress/sql/17_differential.sql runs a bounded amount, bin/fuzz runs them for as long as asked.

CREATE SCHEMA fuzz;
CREATE TYPE fuzz.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN fuzz.score AS integer;
-- a case-insensitive column where the server has ICU (its "=" says 'abc' = 'ABC'; the rules compare bytes)
DO $$
BEGIN
    CREATE COLLATION fuzz.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
EXCEPTION WHEN OTHERS THEN
    CREATE COLLATION fuzz.nocase FROM "C";
END $$;

CREATE TABLE fuzz.t (
    id   integer PRIMARY KEY,
    i2   smallint, i4 integer, i8 bigint, sc fuzz.score,
    f4   real, f8 double precision, num numeric,
    b    boolean,
    txt  text, vc varchar(12), ch char(6), nm name, ci text COLLATE fuzz.nocase,
    d    date, ts timestamp, tz timestamptz,
    mood fuzz.mood, u uuid, j jsonb, arr integer[], by bytea, tm time, iv interval,
    tags text[], narr numeric[], f8b double precision, num2 numeric, i4b integer, txt2 text, d2 date, tz2 timestamptz
);

-- The accounts' events, for behavioral conditions: some accounts have none, some events have no account or
-- an account that does not exist, times tie, values are NULL.
CREATE TABLE fuzz.ev (id bigserial PRIMARY KEY, account_id integer, type text, at timestamptz, amount numeric, flag boolean);
CREATE INDEX ON fuzz.ev (account_id, at);

-- Each column's kind (what the rules may do with it) and its edge values, as text for the column's input function.
CREATE TABLE fuzz.domain (col text PRIMARY KEY, kind text NOT NULL, pool text[] NOT NULL);
INSERT INTO fuzz.domain VALUES
  ('i2', 'int', '{-32768,-1,0,1,7,32767}'),
  ('i4', 'int', '{-2147483648,0,5,100,2147483647}'),
  ('i8', 'int', '{9007199254740992,9007199254740993,-9007199254740993,9223372036854775807,-9223372036854775808,0,1152921504606846976,1152921504606847000}'),
  ('sc', 'int', '{1,50,100}'),
  ('f4', 'float', '{NaN,Infinity,-Infinity,0.1,0,-0,1e30,3.4e38,16777217}'),
  ('f8', 'float', '{NaN,Infinity,-Infinity,0.1,0.30000000000000004,1e300,-1e-300,5e-324,9007199254740993,0}'),
  ('num', 'float', '{NaN,Infinity,-Infinity,0.1,0.1000000000000000001,0.09999999999999999999,1e400,-1e400,9007199254740993,12345678901234567890.5,0,-0.0,1e-400,100}'),
  ('b', 'bool', '{true,false}'),
  ('txt', 'text', E'{"","a","A","abc","ABC","é","É","straße","a b","ab ","line1\\nline2","x_y","100%","a.b","café","\\\\","abc123","Ab3"}'),
  ('vc', 'text', '{"","abc","ABC","é","a.b","x_y"}'),
  ('ch', 'text', '{"ab","ab  ","","AB","é","ab c"}'),
  ('nm', 'text', '{"abc","Abc",""}'),
  ('ci', 'text', '{"abc","ABC","Abc","é","É"}'),
  ('d', 'time', '{2024-01-31,-infinity,infinity,"4713-01-01 BC",5874897-12-31,2000-01-01,2024-02-29,2024-06-30}'),
  ('ts', 'time', '{"2024-01-31 12:00",infinity,-infinity,"294276-12-31 23:59:59","4713-01-01 00:00 BC","2024-06-30 00:00","2000-01-01 00:00:00.000001"}'),
  ('tz', 'time', '{"2024-01-31 12:00+00",infinity,-infinity,"2024-06-29 23:59:59.999999+00","2024-01-31 10:00+00","1999-12-31 23:59:59+00"}'),
  ('mood', 'other', '{sad,ok,happy}'),
  ('u', 'other', '{00000000-0000-0000-0000-000000000000}'),
  ('j', 'other', ARRAY['{}', 'null', '[1]', '{"k": "abc"}', '{"k": "ABC"}', '{"k": 5}', '{"k": 0.1}', '{"k": null}',
                       '{"k": true}', '{"k": {"z": "abc"}}', '{"k": {"z": 5, "y": [1]}}', '{"k": [1, 2]}', '"abc"', '5',
                       '{"k": "", "z": 1}', '{"k": 12345678901234567890.5}', '{"k": "café"}']),
  ('j.k', 'json', '{_}'),
  ('j.k.z', 'json', '{_}'),
  ('arr', 'arr_int', ARRAY['{}', '{1,NULL}', '{5}', '{0,7,100}', '{{1,2},{5,7}}', '{NULL}', '{-2147483648,2147483647}']),
  ('tags', 'arr_text', ARRAY['{}', '{abc}', '{abc,ABC}', '{NULL}', '{é,"a b"}', '{""}', '{a,b,c,abc}', '{ABC,NULL}']),
  ('narr', 'arr_float', ARRAY['{}', '{0.1}', '{0.1000000000000000001,NaN}', '{100,1e30}', '{NULL,0}', '{-0.5,1.5}']),
  ('f8b', 'float', '{NaN,0.1,100,-1e300,0}'),
  ('num2', 'float', '{0.1,0.1000000000000000001,100,NaN,9007199254740993}'),
  ('i4b', 'int', '{0,5,100,-1}'),
  ('txt2', 'text', '{"",abc,ABC,"ab "}'),
  ('d2', 'time', '{2024-01-31,2024-06-30,infinity}'),
  ('tz2', 'time', '{"2024-01-31 12:00+00","2024-06-30 00:00+00"}'),
  ('by', 'other', '{"\\\\x","\\\\x00"}'),
  ('tm', 'other', '{00:00,24:00}'),
  ('iv', 'other', '{0,"1 day"}');

-- Rule constants by kind, as jsonb (numbers beyond 2^53, fractions against integers, strings with blanks, ...).
CREATE TABLE fuzz.constants (kind text PRIMARY KEY, pool jsonb NOT NULL);
INSERT INTO fuzz.constants VALUES
  ('int', '[0, 1, -1, 7, 100, 0.5, -0.5, 1.5, 9007199254740992, 9007199254740993, 1152921504606846976, 1.152921504606847e18, 1e300, -1e300, 32767, 2147483647.5, 9223372036854775807, 9.3e18, 5.0]'),
  ('float', '[0, 0.1, 0.30000000000000004, 1e300, -1e300, 0.1000000000000000001, 1e-300, 5e-324, 9007199254740993, 12345678901234567890, 3.4e38, 1e30, 16777217, 100, -0.0]'),
  ('text', '["", "a", "A", "abc", "ABC", "é", "É", "straße", "a b", "ab", "ab ", "ab  ", "x_y", "100%", "a.b", "\\", "AB", "b", "c", "ab c", "line1\nline2"]'),
  ('pattern', '["^a", "b$", "^.$", "\\d", "\\w+$", "\\s", "[[:upper:]]", "^[[:alpha:]]+$", "a.b", "é", "(?:ab|AB)c", "^$", "line1.line2", "[^a-z]", "x{1,2}", "\\.", "^ab $", "ab$", "[é-ê]", "\\W", "^\\S+$", "[[:space:]]", "a*?b", "(ab)+", "É"]'),
  ('time', '["2024-01-31", "2024-01-31 12:00:00", "2024-01-31 12:00:00+02", "2000-01-01", "1999-12-31 23:59:59.999999", "2024-06-29 23:59:59.999999", "2024-06-30"]'),
  ('interval', '["30 days", "1 year", "100000 years", "1 microsecond", "0 days", "6 months", "12 hours"]'),
  ('bool', '[true, false]'),
  ('json', '["abc", "ABC", "", 5, 0.1, 4.9, 100, true, false, "a", "café", 12345678901234567890.5]');

CREATE TABLE fuzz.ops (kind text, op text, arity text);  -- arity: one, two (between), list, none
INSERT INTO fuzz.ops
SELECT k, o, CASE WHEN o = 'between' THEN 'two' WHEN o IN ('in', 'not_in') THEN 'list'
                  WHEN o IN ('is_null', 'not_null') THEN 'none' ELSE 'one' END
FROM unnest('{int,float,text,time,bool}'::text[]) k,
     unnest('{=,!=,<,<=,>,>=,between,in,not_in,is_null,not_null}'::text[]) o
UNION ALL SELECT 'text', o, 'one' FROM unnest('{contains,starts_with,ends_with,matches}'::text[]) o
UNION ALL SELECT 'time', o, 'interval' FROM unnest('{within,older_than,within_next,later_than}'::text[]) o
UNION ALL SELECT 'other', o, 'none' FROM unnest('{is_null,not_null}'::text[]) o
UNION ALL SELECT 'json', o, CASE WHEN o = 'between' THEN 'two' WHEN o IN ('in', 'not_in') THEN 'list'
                                 WHEN o IN ('is_null', 'not_null') THEN 'none' ELSE 'one' END
  FROM unnest('{=,!=,<,<=,>,>=,between,in,not_in,is_null,not_null,contains,starts_with,ends_with}'::text[]) o
UNION ALL SELECT k, o, CASE WHEN o = 'has' THEN 'one' WHEN o IN ('has_any', 'has_all') THEN 'list'
                            WHEN o = 'length' THEN 'length' ELSE 'none' END
  FROM unnest('{arr_int,arr_text,arr_float}'::text[]) k, unnest('{has,has_any,has_all,is_empty,is_null,not_null,length}'::text[]) o;

-- MINSTD: the state lives in a session setting so that every function draws from one sequence.
CREATE FUNCTION fuzz.seed(s bigint) RETURNS void LANGUAGE sql AS
$$ SELECT set_config('fuzz.state', (1 + abs(s) % 2147483646)::text, false) $$;

CREATE FUNCTION fuzz.pick(n integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE s bigint := current_setting('fuzz.state')::bigint * 48271 % 2147483647;
BEGIN
    PERFORM set_config('fuzz.state', s::text, false);
    RETURN (s / 7) % n;
END $$;

CREATE FUNCTION fuzz.one_of(a jsonb) RETURNS jsonb LANGUAGE sql AS
$$ SELECT a -> fuzz.pick(jsonb_array_length(a)) $$;

-- The rows: 240 accounts (n), each column NULL one time in five, else one of its edge values; 3 events per
-- account on average (events_per_account), half the accounts without any.
CREATE FUNCTION fuzz.fill(seed bigint, n integer DEFAULT 240, events_per_account integer DEFAULT 3) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r record;
    row jsonb;
    v text;
BEGIN
    PERFORM fuzz.seed(seed);
    TRUNCATE fuzz.t;
    TRUNCATE fuzz.ev;
    FOR i IN 1..n * events_per_account LOOP
        INSERT INTO fuzz.ev (account_id, type, at, amount, flag)
        VALUES (CASE WHEN fuzz.pick(20) = 0 THEN NULL WHEN fuzz.pick(20) = 0 THEN n + 1 ELSE 1 + fuzz.pick(n / 2) END,
                CASE WHEN fuzz.pick(8) = 0 THEN NULL ELSE (fuzz.one_of('["login", "export", "Login", "view", ""]') #>> '{}') END,
                CASE WHEN fuzz.pick(10) = 0 THEN NULL
                     ELSE timestamptz '2024-06-30 00:00+00' - fuzz.pick(60) * interval '1 day' - fuzz.pick(2) * interval '12 hours' END,
                CASE WHEN fuzz.pick(8) = 0 THEN NULL ELSE (fuzz.one_of('[0, 1, 5, 9.5, 100, 0.1, -3]') #>> '{}')::numeric END,
                CASE WHEN fuzz.pick(5) = 0 THEN NULL ELSE fuzz.pick(2) = 0 END);
    END LOOP;
    FOR i IN 1..n LOOP
        row := jsonb_build_object('id', i);
        FOR r IN SELECT col, pool FROM fuzz.domain ORDER BY col LOOP
            IF fuzz.pick(5) > 0 THEN
                v := r.pool[1 + fuzz.pick(cardinality(r.pool))];
                -- a jsonb column takes the document itself, every other column its text
                row := row || jsonb_build_object(r.col, CASE WHEN r.col = 'j' THEN v::jsonb ELSE to_jsonb(v) END);
            END IF;
        END LOOP;
        INSERT INTO fuzz.t SELECT * FROM jsonb_populate_record(NULL::fuzz.t, row);
    END LOOP;
END $$;

-- A behavioral condition over fuzz.ev: an aggregate, maybe filtered by a rule of its own, a window, the last
-- rows, compared with a constant of the aggregate's kind.
CREATE FUNCTION fuzz.random_related() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    agg text := fuzz.one_of('["count", "count", "sum", "avg", "min", "max", "last", "first"]') #>> '{}';
    attr text;
    cond jsonb;
    value_kind text;
BEGIN
    attr := CASE agg WHEN 'count' THEN CASE WHEN fuzz.pick(3) = 0 THEN 'amount' END
                     WHEN 'sum' THEN 'amount' WHEN 'avg' THEN 'amount'
                     WHEN 'min' THEN fuzz.one_of('["amount", "type", "at"]') #>> '{}'
                     WHEN 'max' THEN fuzz.one_of('["amount", "type", "at"]') #>> '{}'
                     ELSE fuzz.one_of('["amount", "type", "at", "flag"]') #>> '{}' END;
    value_kind := CASE WHEN agg = 'count' OR attr = 'amount' THEN 'int' WHEN attr = 'type' THEN 'text'
                 WHEN attr = 'at' THEN 'time' ELSE 'bool' END;
    cond := jsonb_build_object('related', 'ev', 'agg', agg);
    IF attr IS NOT NULL THEN cond := cond || jsonb_build_object('attr', attr); END IF;
    IF fuzz.pick(2) = 0 THEN
        cond := cond || jsonb_build_object('where', fuzz.one_of('[{"attr": "type", "op": "=", "value": "login"},
            {"attr": "type", "op": "in", "value": ["login", "export"], "ignore_case": true}, {"attr": "amount", "op": ">=", "value": 5},
            {"attr": "flag", "op": "=", "value": true}, {"not": {"attr": "type", "op": "contains", "value": "o"}},
            {"attr": "at", "op": "within", "value": "7 days", "as_of": "2024-06-30"}, {"attr": "amount", "op": "is_null"}]'));
    END IF;
    IF fuzz.pick(2) = 0 THEN
        cond := cond || jsonb_build_object('within', fuzz.one_of('["30 days", "7 days", "1 year", "12 hours"]'),
                                           'as_of', fuzz.one_of('["2024-06-30", "2024-06-15 12:00:00", "2024-05-01"]'));
    END IF;
    IF fuzz.pick(4) = 0 THEN cond := cond || jsonb_build_object('last', 1 + fuzz.pick(3)); END IF;
    cond := cond || jsonb_build_object('op', fuzz.one_of('["=", "!=", "<", ">=", "is_null", "not_null", "in", "between"]'));
    RETURN cond || CASE cond ->> 'op'
        WHEN 'is_null' THEN '{}'::jsonb WHEN 'not_null' THEN '{}'::jsonb
        WHEN 'in' THEN jsonb_build_object('value', jsonb_build_array(fuzz.one_of((SELECT pool FROM fuzz.constants WHERE constants.kind = value_kind)),
                                                                     fuzz.one_of((SELECT pool FROM fuzz.constants WHERE constants.kind = value_kind))))
        WHEN 'between' THEN jsonb_build_object('value', jsonb_build_array(fuzz.one_of((SELECT pool FROM fuzz.constants WHERE constants.kind = value_kind)),
                                                                          fuzz.one_of((SELECT pool FROM fuzz.constants WHERE constants.kind = value_kind))))
        ELSE jsonb_build_object('value', CASE WHEN value_kind = 'int' THEN fuzz.one_of('[0, 1, 2, 3, 5, 9.5, 100, 0.1, -3, 2.5]')
                                              ELSE fuzz.one_of((SELECT pool FROM fuzz.constants WHERE constants.kind = value_kind)) END) END;
END $$;

CREATE FUNCTION fuzz.random_cond() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    c record;
    o record;
    pool jsonb;
    cond jsonb;
    list jsonb := '[]';
    others text[];
BEGIN
    IF fuzz.pick(8) = 0 THEN
        RETURN fuzz.random_related();
    END IF;
    -- now and then membership in a segment of the two referenced segmentations fuzz.differential defines
    IF fuzz.pick(14) = 0 AND EXISTS (SELECT 1 FROM segments.segmentation WHERE name = 'fuzz_ref') THEN
        RETURN fuzz.one_of('[{"in_segment": "r1", "of": "fuzz_ref"}, {"in_segment": "r2", "of": "fuzz_ref"},
                             {"in_segment": "r3", "of": "fuzz_ref"}, {"in_segment": "t1", "of": "fuzz_ref_tags"},
                             {"in_segment": "t2", "of": "fuzz_ref_tags"}]');
    END IF;
    -- now and then a model's score (fitted on the rows by fuzz.differential), compared with a probability
    IF fuzz.pick(12) = 0 AND current_setting('fuzz.model', true) <> '' THEN
        cond := jsonb_build_object('score', current_setting('fuzz.model')::jsonb,
                                   'op', fuzz.one_of('[">=", "<", "=", "!=", "between"]'));
        RETURN cond || jsonb_build_object('value', CASE WHEN cond ->> 'op' = 'between'
            THEN jsonb_build_array(fuzz.one_of('[0, 0.1, 0.5]'), fuzz.one_of('[0.5, 0.9, 1]'))
            ELSE fuzz.one_of('[0, 0.1, 0.3, 0.5, 0.9, 1]') END);
    END IF;
    SELECT * INTO c FROM fuzz.domain ORDER BY col OFFSET fuzz.pick((SELECT count(*)::int FROM fuzz.domain)) LIMIT 1;
    SELECT * INTO o FROM fuzz.ops WHERE kind = c.kind ORDER BY op
      OFFSET fuzz.pick((SELECT count(*)::int FROM fuzz.ops WHERE kind = c.kind)) LIMIT 1;
    pool := (SELECT fuzz.constants.pool FROM fuzz.constants
             WHERE kind = CASE WHEN o.op = 'matches' THEN 'pattern' WHEN o.arity = 'interval' THEN 'interval'
                               WHEN c.kind LIKE 'arr\_%' THEN substr(c.kind, 5)
                               WHEN o.op IN ('contains', 'starts_with', 'ends_with') THEN 'text' ELSE c.kind END);
    cond := jsonb_build_object('attr', c.col, 'op', o.op);
    -- now and then the column against another of its kind
    IF o.arity IN ('one', 'two', 'list') AND o.op IN ('=', '!=', '<', '<=', '>', '>=') AND fuzz.pick(6) = 0
       AND c.kind IN ('int', 'float', 'text', 'bool', 'time') THEN
        -- (num is left out: its values beyond double precision's range cannot meet a float, in PostgreSQL either)
        SELECT array_agg(d.col ORDER BY d.col) INTO others FROM fuzz.domain d
         WHERE CASE WHEN c.kind IN ('int', 'float') THEN d.kind IN ('int', 'float') AND d.col <> 'num' AND c.col <> 'num'
                    WHEN c.col LIKE 'tz%' THEN d.col LIKE 'tz%'
                    WHEN c.kind = 'time' THEN d.kind = 'time' AND d.col NOT LIKE 'tz%'
                    ELSE d.kind = c.kind END;
        IF others IS NOT NULL THEN
            RETURN cond || jsonb_build_object('value', jsonb_build_object('attr', others[1 + fuzz.pick(cardinality(others))]));
        END IF;
    END IF;
    -- text tests now and then ignoring case
    IF c.kind IN ('text', 'json') AND o.op IN ('=', '!=', 'in', 'not_in', 'contains', 'starts_with', 'ends_with')
       AND fuzz.pick(3) = 0 THEN
        cond := cond || '{"ignore_case": true}';
    END IF;
    IF o.arity = 'length' THEN
        o.op := fuzz.one_of('["=", "!=", "<", ">=", "between", "in"]') #>> '{}';
        cond := jsonb_build_object('length', c.col, 'op', o.op, 'value', CASE
            WHEN o.op = 'between' THEN jsonb_build_array(fuzz.pick(3), fuzz.pick(5))
            WHEN o.op = 'in' THEN jsonb_build_array(fuzz.pick(4), fuzz.pick(4))
            ELSE to_jsonb(fuzz.pick(5)) END);
        RETURN cond;
    END IF;
    IF o.op = 'matches' AND fuzz.pick(2) = 0 THEN
        cond := cond || jsonb_build_object('value', fuzz.random_pattern());
    ELSIF o.arity = 'one' OR o.arity = 'interval' THEN
        cond := cond || jsonb_build_object('value', fuzz.one_of(pool));
        IF o.arity = 'interval' AND fuzz.pick(3) = 0 THEN
            cond := cond || jsonb_build_object('as_of', fuzz.one_of((SELECT fuzz.constants.pool FROM fuzz.constants WHERE kind = 'time')));
        END IF;
    ELSIF o.arity = 'two' THEN
        cond := cond || jsonb_build_object('value', jsonb_build_array(fuzz.one_of(pool), fuzz.one_of(pool)));
    ELSIF o.arity = 'list' THEN
        FOR i IN 0..fuzz.pick(3) LOOP
            list := list || jsonb_build_array(fuzz.one_of(pool));
        END LOOP;
        cond := cond || jsonb_build_object('value', list);
    END IF;
    RETURN cond;
END $$;

CREATE FUNCTION fuzz.random_rule(depth integer DEFAULT 3) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    k integer := fuzz.pick(10);
    items jsonb := '[]';
BEGIN
    IF depth > 0 AND fuzz.pick(14) = 0 THEN  -- points of sub-rules against a threshold
        FOR i IN 0..fuzz.pick(3) LOOP
            items := items || jsonb_build_object('rule', fuzz.random_rule(depth - 1),
                                                 'points', fuzz.one_of('[-30, 10, 25, 40, 0]'));
        END LOOP;
        RETURN jsonb_build_object('points', items, 'op', fuzz.one_of('[">=", "<", "=", "!="]'),
                                  'value', fuzz.one_of('[0, 10, 25, 35.5, 50, -5]'));
    END IF;
    IF depth <= 0 OR k < 5 THEN
        RETURN fuzz.random_cond();
    ELSIF k < 9 THEN
        FOR i IN 1..fuzz.pick(4) LOOP
            items := items || jsonb_build_array(fuzz.random_rule(depth - 1));
        END LOOP;
        RETURN jsonb_build_object(CASE WHEN k < 7 THEN 'all' ELSE 'any' END, items);
    ELSE
        RETURN jsonb_build_object('not', fuzz.random_rule(depth - 1));
    END IF;
END $$;

-- A pattern from the characters that matter to one regex dialect or another (mostly outside the subset).
CREATE FUNCTION fuzz.random_pattern() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    parts text[] := ARRAY['a', 'b', 'é', '.', '*', '+', '?', '|', '^', '$', '(', ')', '(?:', '[', ']', '[^', '-', '{2}',
                          '{1,3}', '\d', '\w', '\s', '\D', '\b', '\B', '\p{Lu}', '(?P<x>', '(?i)', '[:alpha:]', '\.', '\\',
                          '\x41', '\1', '{', '}', ' ', 'A', 'x', '&&', '~~', '--', '\n', '\<'];
    p text := '';
BEGIN
    FOR i IN 0..fuzz.pick(7) LOOP
        p := p || parts[1 + fuzz.pick(cardinality(parts))];
    END LOOP;
    RETURN p;
END $$;

-- A rule document broken in one of the ways users (and fuzzers) break them.
CREATE FUNCTION fuzz.mutate(rule jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    weird jsonb := '[1e400, -1e400, 1e-400, "2024-01-31 12:00+aé1", "", [], {}, null, true, [[1]], "9999999-01-01",
                     "300000-01-01", "-60 days", "1e400 days", 12345678901234567890123, -0.0, "NaN", "infinity",
                     "\u0000x", "ÿ", {"all": []}, "2024-02-30", "24:00", "1 fortnight"]';
    k integer := fuzz.pick(8);
    deep jsonb := rule;
BEGIN
    IF k = 0 THEN          -- a weird value
        RETURN jsonb_build_object('attr', fuzz.one_of('["i2","i8","num","f4","txt","ch","d","ts","tz","b","j","nope"]'),
                                  'op', fuzz.one_of('["=","<","between","in","within","older_than","matches","contains","is_null"]'),
                                  'value', fuzz.one_of(weird));
    ELSIF k = 1 THEN       -- nesting beyond the limit
        FOR i IN 1..20 + fuzz.pick(30) LOOP
            deep := jsonb_build_object(fuzz.one_of('["not","all"]') #>> '{}', deep);
            IF deep ? 'all' THEN deep := jsonb_build_object('all', jsonb_build_array(deep -> 'all')); END IF;
        END LOOP;
        RETURN deep;
    ELSIF k = 2 THEN       -- a pattern from any dialect
        RETURN jsonb_build_object('attr', 'txt', 'op', 'matches', 'value', fuzz.random_pattern());
    ELSIF k = 3 THEN       -- an unknown operator, attribute or key
        RETURN rule || fuzz.one_of('[{"op": "~"}, {"op": ""}, {"attr": "nope"}, {"attr": 3}, {"extra": 1}, {"as_of": "x"}, {"op": null},
                                     {"attr": "j."}, {"attr": "i4.x"}, {"attr": "j.k..z"}, {"attr": "arr", "op": "="}, {"length": "i4"},
                                     {"length": "tags", "op": "has"}, {"value": {"attr": "nope"}}, {"value": {"attr": "u"}},
                                     {"value": {"attr": "tz", "x": 1}}, {"ignore_case": 1}, {"ignore_case": true, "op": "<"},
                                     {"op": "has_all", "value": []}, {"op": "within_next", "value": "-60 days"}]');
    ELSIF k = 4 THEN       -- not a rule at all
        RETURN fuzz.one_of('[false, 0, "all", [], {}, {"all": {}}, {"any": [1]}, {"not": []}, {"nearest": {}}, {"nearest": {"features": ["i2"], "centroids": [[1, 2]], "cluster": 5}},
                             {"points": []}, {"points": [{"rule": true}]}, {"points": [{"rule": true, "points": 0.5}], "op": ">", "value": 0},
                             {"points": [{"rule": true, "points": 1e9}], "op": ">", "value": 0}, {"points": [{"rule": true, "points": 1}], "op": "has", "value": 1},
                             {"points": [{"rule": true, "points": 1}], "op": ">", "value": "x"}, {"points": [{"rule": false, "points": 1}], "op": ">", "value": 0},
                             {"related": "nope", "agg": "count", "op": ">", "value": 0}, {"related": "ev", "agg": "sum", "op": ">", "value": 0},
                             {"related": "ev", "agg": "median", "attr": "amount", "op": ">", "value": 0}, {"related": "ev", "agg": "count", "last": 0, "op": ">", "value": 0},
                             {"related": "ev", "agg": "sum", "attr": "type", "op": ">", "value": 0}, {"related": "ev", "agg": "count", "op": ">", "value": "x"},
                             {"related": "ev", "agg": "count", "where": {"related": "ev", "agg": "count", "op": ">", "value": 0}, "op": ">", "value": 0},
                             {"related": "ev", "agg": "count", "within": "soon", "op": ">", "value": 0}, {"related": "ev", "agg": "max", "attr": "flag", "op": "=", "value": true},
                             {"related": "ev", "agg": "count", "op": "<", "value": {"attr": "i4"}}, {"related": "ev", "agg": "count", "where": {"attr": "nope", "op": "is_null"}, "op": ">", "value": 0},
                             {"related": 5, "agg": "count", "op": ">", "value": 0}, {"related": "ev", "agg": "count", "op": "within", "value": "3 days"}]');
    ELSIF k = 5 THEN       -- an empty or huge list
        RETURN jsonb_build_object('attr', 'i4', 'op', fuzz.one_of('["in","not_in","between"]'),
                                  'value', (SELECT jsonb_agg(g) FROM generate_series(1, fuzz.pick(3) * 2000) g));
    ELSIF k = 6 THEN       -- a time rule with a bad as_of or interval
        RETURN jsonb_build_object('attr', fuzz.one_of('["d","ts","tz"]'), 'op', fuzz.one_of('["within","older_than"]'),
                                  'value', fuzz.one_of(weird), 'as_of', fuzz.one_of(weird));
    ELSE                   -- a valid rule with one constant swapped for a weird one
        RETURN jsonb_set(rule, '{value}', fuzz.one_of(weird), true);
    END IF;
END $$;

-- Random segmentations over fuzz.t; counts every row on which two evaluators differ (and shows the first few).
CREATE FUNCTION fuzz.differential(rulesets integer, seed bigint DEFAULT 1, mutated_percent integer DEFAULT 0,
    OUT defined integer, OUT refused integer, OUT comparisons bigint, OUT disagreements bigint)
LANGUAGE plpgsql AS $$
DECLARE
    seg text;
    mode text;
    n integer;
    bad bigint;
    sqlcase text;
    refused_state text;
    message text;
    detail text;
    hint text;
BEGIN
    defined := 0; refused := 0; comparisons := 0; disagreements := 0;
    -- a churn-like model of b over the current rows for score conditions (rows with NaN or infinite f4, and
    -- NULLs, are left out of the fit and score NULL); none when these rows admit no fit
    BEGIN
        PERFORM set_config('fuzz.model', segments.logistic_regression('fuzz.t', 'b', ARRAY['i2', 'sc', 'vc', 'f4'])::text, false);
    EXCEPTION WHEN OTHERS THEN
        PERFORM set_config('fuzz.model', '', false);
    END;
    PERFORM fuzz.seed(seed);
    -- two segmentations the random rules may refer to (exclusive with a child, overlapping), random rules of
    -- their own; a draw they refuse is replaced by true
    INSERT INTO segments.segmentation (name, source, key_column) VALUES ('fuzz_ref', 'fuzz.t', 'id');
    INSERT INTO segments.segmentation (name, source, key_column, mode) VALUES ('fuzz_ref_tags', 'fuzz.t', 'id', 'overlapping');
    FOR i IN 1..5 LOOP
        BEGIN
            INSERT INTO segments.segment (segmentation, name, parent, priority, rule)
            VALUES (CASE WHEN i <= 3 THEN 'fuzz_ref' ELSE 'fuzz_ref_tags' END,
                    CASE WHEN i <= 3 THEN 'r' || i ELSE 't' || i - 3 END,
                    CASE WHEN i = 3 THEN 'r1' END, i, fuzz.random_rule(2));
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO segments.segment (segmentation, name, parent, priority, rule)
            VALUES (CASE WHEN i <= 3 THEN 'fuzz_ref' ELSE 'fuzz_ref_tags' END,
                    CASE WHEN i <= 3 THEN 'r' || i ELSE 't' || i - 3 END,
                    CASE WHEN i = 3 THEN 'r1' END, i, 'true');
        END;
    END LOOP;
    FOR k IN 1..rulesets LOOP
        seg := 'fuzz_' || k;
        mode := CASE WHEN fuzz.pick(3) = 0 THEN 'overlapping' ELSE 'exclusive' END;
        BEGIN
            INSERT INTO segments.segmentation (name, source, key_column, mode) VALUES (seg, 'fuzz.t', 'id', mode);
            INSERT INTO segments.related_source (segmentation, name, relation, key_column, time_column)
            VALUES (seg, 'ev', 'fuzz.ev', 'account_id', 'at');
            n := 1 + fuzz.pick(4);
            FOR i IN 1..n LOOP
                INSERT INTO segments.segment (segmentation, name, parent, priority, rule)
                VALUES (seg, 's' || i, CASE WHEN i > 1 AND fuzz.pick(4) = 0 THEN 's' || fuzz.pick(i - 1) + 1 END,
                        fuzz.pick(3), CASE WHEN fuzz.pick(100) < mutated_percent THEN fuzz.mutate(fuzz.random_rule())
                                           ELSE fuzz.random_rule() END);
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS refused_state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                                    detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
            -- a refusal names what is wrong with a fitting SQLSTATE; an internal error or a panic is a bug
            IF refused_state LIKE 'XX%' OR refused_state LIKE '58%'
               OR concat_ws(' ', message, detail, hint) ~* 'panick|backtrace|\.rs:|unwrap'
               OR (mutated_percent = 0 AND refused_state NOT IN ('22023', '42804', '2201B', '22007', '22008', '22003', '54001')) THEN
                RAISE WARNING 'rule refused with %: % (%; %)', refused_state, message, detail, hint;
                disagreements := disagreements + 1;
            END IF;
            refused := refused + 1;
            CONTINUE;
        END;
        defined := defined + 1;
        BEGIN
            PERFORM segments.refresh(seg);
            sqlcase := segments.to_sql(seg);
            -- refresh keeps an exclusive account's segment, or an overlapping one's tags (the default when none)
            EXECUTE format($q$
                SELECT count(*) FILTER (WHERE a IS DISTINCT FROM b OR a IS DISTINCT FROM c OR a IS DISTINCT FROM d
                                        OR (%3$L = 'exclusive' AND mtags IS DISTINCT FROM ARRAY[a])
                                        OR (%3$L = 'overlapping' AND COALESCE(NULLIF(tags, '{}'), ARRAY[a]) IS DISTINCT FROM mtags))
                FROM (SELECT segments.segment_of(t, %1$L) AS a,
                             segments.classify(t, segments.ruleset(%1$L)) AS b,
                             %2$s AS c,
                             ARRAY(SELECT x FROM unnest(segments.segments_of(t, %1$L)) x ORDER BY x COLLATE "C") AS tags,
                             m.member_of AS mtags, q.segments_segment AS d
                      FROM fuzz.t t
                      LEFT JOIN (SELECT x.id AS query_id, x.segments_segment FROM (%4$s) x) q ON q.query_id = t.id
                      LEFT JOIN (SELECT account_key, array_agg(segment ORDER BY segment) AS member_of FROM segments.membership
                                 WHERE segmentation = %1$L AND upper_inf(valid) GROUP BY 1) m ON m.account_key = t.id::text) s$q$,
                seg, sqlcase, mode, segments.to_query(seg))
            INTO bad;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS refused_state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
            RAISE WARNING 'segmentation % failed with %: %', seg, refused_state, message;
            bad := (SELECT count(*) FROM fuzz.t);
        END;
        comparisons := comparisons + (SELECT count(*) FROM fuzz.t);
        IF bad > 0 THEN
            disagreements := disagreements + bad;
            RAISE WARNING 'segmentation % (%) disagrees on % rows: %', seg, mode, bad,
                (SELECT jsonb_agg(jsonb_build_object('name', s.name, 'parent', s.parent, 'rule', s.rule) ORDER BY s.name)
                 FROM segments.segment s WHERE s.segmentation = seg);
        END IF;
        DELETE FROM segments.membership WHERE segmentation = seg;
        DELETE FROM segments.segmentation WHERE name = seg;
    END LOOP;
    -- the overlapping one may refer to the exclusive one (not the other way: its segments came later)
    DELETE FROM segments.segmentation WHERE name = 'fuzz_ref_tags';
    DELETE FROM segments.segmentation WHERE name = 'fuzz_ref';
END $$;
