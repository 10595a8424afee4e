-- Rules are validated when saved; each fault names its JSON path and carries a fitting SQLSTATE.
-- unknown operator, unknown key: 22023
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"all": [true, {"any": [{"attr": "tenure", "op": "~~", "value": 1}]}]}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"attr": "tenure", "operator": ">", "value": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('contract', 'bad', '42')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"attr": "tenure", "op": "between", "value": [1]}')$$);
-- attribute missing from the source: 42703
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"attr": "employees", "op": ">", "value": 1}')$$);
-- value that cannot compare with the column's type: 42804
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"all": [{"attr": "tenure", "op": ">", "value": "long"}]}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"attr": "tenure", "op": "contains", "value": "1"}')$$);
-- bad regular expression: 2201B
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('contract', 'bad', '{"attr": "payment_method", "op": "matches", "value": "(check"}')$$);
-- bad interval or date: 22007
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('activity', 'bad', '{"attr": "last_login_at", "op": "within", "value": "a fortnight"}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('activity', 'bad', '{"attr": "signup", "op": ">", "value": "2024-02-30"}')$$);
-- a parent that does not exist or sits in another segmentation: 23503; a cycle: 22023
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, parent, rule)
  VALUES ('contract', 'bad', 'Nowhere', 'true')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, parent, rule)
  VALUES ('contract', 'bad', 'High spend', 'true')$$);
SELECT * FROM error_of($$UPDATE segments.segment SET parent = 'Streaming'
  WHERE segmentation = 'value' AND name = 'High spend'$$);
-- a bad mode and an unknown key column
SELECT sqlstate, message FROM error_of($$INSERT INTO segments.segmentation (name, source, key_column, mode)
  VALUES ('x', 'telco.customers', 'customer_id', 'fuzzy')$$);
SELECT * FROM error_of($$INSERT INTO segments.segmentation (name, source, key_column)
  VALUES ('x', 'telco.customers', 'account_id')$$);
-- at evaluation, an unknown segmentation is an error (42704), never a silent default
SELECT * FROM error_of($$SELECT segments.segment_of(c, 'no_such') FROM telco.customers c LIMIT 1$$);
SELECT * FROM error_of($$SELECT segments.to_sql('no_such')$$);
-- a row type that lacks a rule's column
SELECT * FROM error_of($$SELECT segments.segment_of(r, 'value') FROM telco.recent r LIMIT 1$$);
-- classify with a malformed ruleset
SELECT * FROM error_of($$SELECT segments.classify(c, '{"segments": 3}') FROM telco.customers c LIMIT 1$$);
-- nothing bad was saved
SELECT count(*) AS bad_segments FROM segments.segment WHERE name = 'bad';
