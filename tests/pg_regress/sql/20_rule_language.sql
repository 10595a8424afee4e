-- The rule language on a CRM: arrays, jsonb fields, windows ahead, case-insensitive text, column against
-- column, and points-based scores. Each segment of the seed material is defined on the table itself (no
-- hand-built view), checked against the same question written by hand in SQL, explained and exported.
SET TimeZone = 'UTC';
CREATE SCHEMA crm;
CREATE TABLE crm.accounts (
    id              integer PRIMARY KEY,
    name            text NOT NULL,
    country         text,
    industry        text,
    employees       integer,
    tech_stack      text[],
    use_cases       varchar(20)[],
    seats_per_team  integer[],
    props           jsonb,
    arr             numeric(12, 2),
    arr_last_year   numeric(12, 2),
    renewal_date    date,
    logins_30d      integer,
    nps             smallint,
    open_tickets    integer
);
-- 2,000 accounts, every property drawn from the id so the expected answers can be recomputed by hand
INSERT INTO crm.accounts
SELECT i,
       (ARRAY['Acme', 'acme labs', 'ACME Corp', 'Globex', 'Initech', 'Umbrella'])[1 + i % 6] || ' ' || i,
       (ARRAY['US', 'DE', 'US', 'FR', NULL])[1 + i % 5],
       (ARRAY['SaaS', 'Tech', 'Retail', 'SaaS', 'Healthcare', 'Tech', NULL])[1 + i % 7],
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 37) % 2000 END,
       CASE i % 9 WHEN 0 THEN NULL WHEN 1 THEN '{}'
                  ELSE (ARRAY[ARRAY['Salesforce', 'Slack'], ARRAY['HubSpot', 'Slack'], ARRAY['Salesforce', 'Marketo'],
                              ARRAY['Zendesk', NULL], ARRAY['Salesforce', 'salesforce'], ARRAY['Jira', 'Slack'],
                              ARRAY['HubSpot', 'Salesforce'], ARRAY['Marketo', 'Marketo']])[1 + i % 8 : 1 + i % 8][1:2] END,
       (CASE WHEN i % 4 = 0 THEN '{analytics}' WHEN i % 4 = 1 THEN '{analytics,billing}' ELSE '{}' END)::varchar(20)[],
       CASE WHEN i % 6 = 0 THEN NULL ELSE ARRAY[i % 5, (i * 3) % 7] END,
       CASE i % 8
           WHEN 0 THEN NULL
           WHEN 1 THEN jsonb_build_object('abm_tier', 'A', 'crm', jsonb_build_object('owner', 'kim', 'score', i % 100))
           WHEN 2 THEN jsonb_build_object('abm_tier', 'b', 'crm', jsonb_build_object('score', (i % 100)::text))
           WHEN 3 THEN jsonb_build_object('abm_tier', NULL, 'beta', true)
           WHEN 4 THEN jsonb_build_object('abm_tier', 'B', 'beta', false, 'crm', 'legacy')
           WHEN 5 THEN '[1, 2]'::jsonb
           ELSE jsonb_build_object('crm', jsonb_build_object('score', (i % 100) + 0.5))
       END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE 1000 + (i * 7919) % 99000 END,
       CASE WHEN i % 17 = 0 THEN NULL ELSE 1000 + (i * 104729) % 99000 END,
       DATE '2025-01-01' + (i * 29) % 400 - 30,
       (i * 13) % 45,
       CASE WHEN i % 10 = 0 THEN NULL ELSE i % 11 END,
       (i * 7) % 6
FROM generate_series(1, 2000) i;

INSERT INTO segments.segmentation (name, source, key_column) VALUES ('crm', 'crm.accounts', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  -- "mid-market SaaS companies in the US that use Salesforce and have between 50 and 500 employees"
  ('crm', 'US mid-market SaaS on Salesforce', 10,
   '{"all": [{"attr": "country", "op": "=", "value": "US"}, {"attr": "industry", "op": "=", "value": "SaaS"},
             {"attr": "employees", "op": "between", "value": [50, 500]},
             {"attr": "tech_stack", "op": "has", "value": "Salesforce"}]}'),
  -- "customers approaching their renewal": within the next 60 days of the as-of date
  ('crm', 'Renewing soon', 20, '{"attr": "renewal_date", "op": "within_next", "value": "60 days", "as_of": "2025-03-01"}'),
  -- a health score from usage, NPS, tickets and renewal proximity: At-Risk below 20 points
  ('crm', 'At-Risk', 30,
   '{"points": [{"rule": {"attr": "logins_30d", "op": ">=", "value": 20}, "points": 40},
                {"rule": {"attr": "nps", "op": ">=", "value": 9}, "points": 30},
                {"rule": {"attr": "nps", "op": "<=", "value": 6}, "points": -20},
                {"rule": {"attr": "open_tickets", "op": ">=", "value": 3}, "points": -25},
                {"rule": {"attr": "renewal_date", "op": "within_next", "value": "90 days", "as_of": "2025-03-01"}, "points": -10}],
     "op": "<", "value": 20}'),
  ('crm', 'Shrinking', 40, '{"attr": "arr", "op": "<", "value": {"attr": "arr_last_year"}}'),
  ('crm', 'Tier A', 50, '{"attr": "props.abm_tier", "op": "=", "value": "a", "ignore_case": true}'),
  ('crm', 'Big stack', 60, '{"length": "tech_stack", "op": ">=", "value": 2}');

-- each segment's members equal the hand-written SQL of the same question (as a whole exclusive assignment)
CREATE VIEW crm.by_hand AS
SELECT id, CASE
    WHEN country = 'US' AND industry = 'SaaS' AND employees BETWEEN 50 AND 500 AND 'Salesforce' = ANY (tech_stack)
        THEN 'US mid-market SaaS on Salesforce'
    WHEN renewal_date >= DATE '2025-03-01' AND renewal_date <= DATE '2025-03-01' + 60 THEN 'Renewing soon'
    WHEN (CASE WHEN logins_30d >= 20 THEN 40 ELSE 0 END) + (CASE WHEN nps >= 9 THEN 30 ELSE 0 END)
         + (CASE WHEN nps <= 6 THEN -20 ELSE 0 END) + (CASE WHEN open_tickets >= 3 THEN -25 ELSE 0 END)
         + (CASE WHEN renewal_date BETWEEN DATE '2025-03-01' AND DATE '2025-03-01' + 90 THEN -10 ELSE 0 END) < 20
        THEN 'At-Risk'
    WHEN arr < arr_last_year THEN 'Shrinking'
    WHEN lower(props ->> 'abm_tier') = 'a' AND jsonb_typeof(props -> 'abm_tier') = 'string' THEN 'Tier A'
    WHEN cardinality(tech_stack) >= 2 THEN 'Big stack'
    ELSE 'Unsegmented' END AS segment
FROM crm.accounts;
SELECT h.segment, count(*) AS accounts,
       count(*) FILTER (WHERE segments.segment_of(a, 'crm') = h.segment) AS segment_of_agrees
FROM crm.accounts a JOIN crm.by_hand h USING (id) GROUP BY 1 ORDER BY 1;
SELECT segments.refresh('crm');
SELECT count(*) AS disagreements FROM crm.by_hand h
LEFT JOIN segments.membership m ON m.segmentation = 'crm' AND upper_inf(m.valid) AND m.account_key = h.id::text
WHERE m.segment IS DISTINCT FROM h.segment;
SELECT segment, accounts FROM segments.coverage('crm') ORDER BY segment;

-- explain shows what each condition read: the field, the length, the other column, each part's points
SELECT jsonb_pretty(segments.explain(a, 'crm')) FROM crm.accounts a WHERE id = 10;
SELECT segments.explain(a, 'crm') -> 'segments' -> 4 -> 'rule' AS tier_a FROM crm.accounts a WHERE id = 1;

-- to_sql writes every new condition as plain SQL that gives segment_of's answers (one WHEN per line here)
SELECT regexp_split_to_table(segments.to_sql('crm'), ' (?=WHEN |ELSE ''Unsegmented'')') AS to_sql;
DO $$
DECLARE bad bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM crm.accounts t JOIN crm.by_hand h USING (id) WHERE (%s) IS DISTINCT FROM h.segment',
                   segments.to_sql('crm')) INTO bad;
    RAISE NOTICE 'to_sql disagrees with the hand-written SQL on % accounts', bad;
END $$;

-- Arrays: has / has_any / has_all compare elements exactly (NULL elements match nothing); is_empty is an
-- array with no elements (a NULL array is not empty: it is NULL, and only is_null matches it); length is
-- cardinality (every element of every dimension, NULLs included).
CREATE TABLE crm.arrays (id int PRIMARY KEY, a text[], n integer[]);
INSERT INTO crm.arrays VALUES (1, '{x,y}', '{1,2}'), (2, '{}', '{}'), (3, NULL, NULL), (4, '{NULL,x}', '{{1,2},{3,NULL}}'), (5, '{X}', '{5}');
SELECT id,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "a", "op": "has", "value": "x"}}]}') AS has_x,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "a", "op": "has_any", "value": ["y", "X"]}}]}') AS has_any,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "a", "op": "has_all", "value": ["x", "y"]}}]}') AS has_all,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "a", "op": "is_empty"}}]}') AS is_empty,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"not": {"attr": "a", "op": "is_empty"}}}]}') AS not_empty,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "n", "op": "has", "value": 3}}]}') AS has_3,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"length": "n", "op": ">=", "value": 2}}]}') AS n_len_2
FROM crm.arrays r ORDER BY id;

-- JSON fields: a field is compared as the constant's JSON type: a string with strings, a number with numbers
-- (exactly, as numeric), true/false with booleans. A missing key, a JSON null, a key below a non-object are
-- NULL (only is_null matches); a field of another type matches no comparison, not even !=.
CREATE TABLE crm.docs (id int PRIMARY KEY, props jsonb);
INSERT INTO crm.docs VALUES (1, '{"tier": "A", "n": 5}'), (2, '{"tier": 5, "n": "5"}'), (3, '{"tier": null}'), (4, '{}'),
                            (5, '"A"'), (6, '{"tier": {"x": 1}}'), (7, NULL), (8, '{"tier": "a", "n": 5.0}');
SELECT id,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "props.tier", "op": "=", "value": "A"}}]}') AS eq_a,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "props.tier", "op": "!=", "value": "A"}}]}') AS ne_a,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "props.tier", "op": "in", "value": ["a"], "ignore_case": true}}]}') AS in_a_ci,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "props.n", "op": "=", "value": 5}}]}') AS n_is_5,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "props.tier", "op": "is_null"}}]}') AS tier_null,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "props.tier.x", "op": ">", "value": 0}}]}') AS nested
FROM crm.docs r ORDER BY id;

-- Windows both ways from as-of: within (the past interval), older_than, within_next (as-of to as-of + interval;
-- a date column from as-of's day), later_than (after as-of + interval)
CREATE TABLE crm.dates (id int PRIMARY KEY, d date, ts timestamptz);
INSERT INTO crm.dates VALUES (1, '2025-02-28', '2025-02-28 23:00+00'), (2, '2025-03-01', '2025-03-01 12:00+00'),
                             (3, '2025-03-31', '2025-03-31 12:00+00'), (4, '2025-04-01', '2025-04-01 00:00+00'), (5, NULL, NULL);
SELECT id,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "d", "op": "within_next", "value": "30 days", "as_of": "2025-03-01 12:00"}}]}') AS d_next_30,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "ts", "op": "within_next", "value": "30 days", "as_of": "2025-03-01 12:00"}}]}') AS ts_next_30,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "d", "op": "later_than", "value": "30 days", "as_of": "2025-03-01"}}]}') AS d_after_30,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "ts", "op": "within", "value": "1 day", "as_of": "2025-03-01 12:00"}}]}') AS ts_last_day
FROM crm.dates r ORDER BY id;

-- Column against column: numbers with numbers (integers and numerics exactly, with a float in double
-- precision), text with text (byte order), dates with timestamps; NULL on either side matches nothing.
CREATE TABLE crm.pairs (id int PRIMARY KEY, a numeric, b bigint, f float8, s text, t text, d date, ts timestamp);
INSERT INTO crm.pairs VALUES (1, 9007199254740993, 9007199254740992, 9007199254740992, 'a', 'B', '2025-01-01', '2025-01-01 00:00'),
                             (2, 5, 5, 'NaN', 'b', 'b', '2025-01-02', '2025-01-01 23:59'), (3, NULL, 1, 1, NULL, 'x', NULL, NULL);
SELECT id,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "a", "op": ">", "value": {"attr": "b"}}}]}') AS a_gt_b,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "a", "op": ">", "value": {"attr": "f"}}}]}') AS a_gt_f,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "f", "op": ">", "value": {"attr": "b"}}}]}') AS f_gt_b,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "s", "op": "<", "value": {"attr": "t"}}}]}') AS s_lt_t,
       segments.classify(r, '{"segmentation": "t", "segments": [{"name": "yes", "rule": {"attr": "d", "op": "=", "value": {"attr": "ts"}}}]}') AS d_eq_ts
FROM crm.pairs r ORDER BY id;

-- Points: the total of the parts a row meets (whole numbers), compared with the value; explain lists each part
SELECT jsonb_pretty(segments.explain(a, 'crm') -> 'segments' -> 2 -> 'rule') FROM crm.accounts a WHERE id = 7;

-- validate_rule and the columns a rule reads (privilege checks and data_coverage use them)
SELECT segments._rule_columns('{"all": [{"attr": "props.crm.owner", "op": "=", "value": "kim"},
                                          {"attr": "arr", "op": "<", "value": {"attr": "arr_last_year"}},
                                          {"length": "tech_stack", "op": ">", "value": 1}]}', 'crm.accounts'::regclass);
SELECT attribute, sum(accounts) AS accounts, sum(with_value) AS with_value FROM segments.data_coverage('crm') GROUP BY 1 ORDER BY 1;

-- Save-time errors: the JSON path in DETAIL, the valid choices in HINT
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "tech_stack", "op": "=", "value": "Slack"}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "industry", "op": "has", "value": "Slack"}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "tech_stack", "op": "has", "value": 3}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "tech_stack", "op": "has_all", "value": []}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"length": "employees", "op": ">", "value": 3}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"length": "tech_stack", "op": "has", "value": 3}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "employees.x", "op": "=", "value": 3}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "props..x", "op": "=", "value": 3}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "props", "op": "=", "value": 3}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "props.tier", "op": "within", "value": "3 days"}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "renewal_date", "op": "within_next", "value": "-60 days"}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "arr", "op": "<", "value": {"attr": "name"}}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "arr", "op": "<", "value": {"attr": "nope"}}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "arr", "op": "in", "value": {"attr": "arr_last_year"}}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "employees", "op": "=", "value": 3, "ignore_case": true}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"attr": "name", "op": "matches", "value": "^a", "ignore_case": true}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"points": [{"rule": true, "points": 0.5}], "op": ">", "value": 0}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"points": [{"rule": {"attr": "nope", "op": "is_null"}, "points": 5}], "op": ">", "value": 0}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"points": [{"rule": true, "points": 5}], "op": "has", "value": 0}', 'crm.accounts')$$);
SELECT * FROM error_of($$SELECT segments.validate_rule('{"points": [], "op": ">", "value": 0}', 'crm.accounts')$$);

-- tracking keeps the new conditions current: an account that adopts Salesforce moves when its row changes
SELECT segments.track('crm');
UPDATE crm.accounts SET tech_stack = tech_stack || '{Salesforce}'::text[], employees = 100
WHERE id = 10 RETURNING id, country, industry, tech_stack;
SELECT segment FROM segments.membership WHERE segmentation = 'crm' AND account_key = '10' AND upper_inf(valid);
SELECT segments.untrack('crm');
