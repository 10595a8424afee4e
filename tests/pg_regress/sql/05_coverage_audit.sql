-- Coverage and quality: accounts and share per segment, small segments, and rules shadowed by priority.
SELECT segment, path, accounts, round(share::numeric, 4) AS share, matching, shadowed, below_min_size, never_wins
FROM segments.coverage('contract');

-- A rule that can never win: 'Any fiber' matches accounts already taken by 'Fiber first'.
INSERT INTO segments.segmentation (name, source, key_column, min_segment_size)
VALUES ('shadow', 'telco.customers', 'customer_id', 100);
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('shadow', 'Fiber first', 1, '{"attr": "internet_service", "op": "=", "value": "Fiber optic"}'),
  ('shadow', 'Any fiber', 2, '{"attr": "internet_service", "op": "ends_with", "value": "optic"}'),
  ('shadow', 'DSL', 3, '{"attr": "internet_service", "op": "=", "value": "DSL"}');
SELECT segment, accounts, matching, shadowed, below_min_size, never_wins FROM segments.coverage('shadow');
SELECT internet_service, count(*) FROM telco.customers GROUP BY 1 ORDER BY 1;

-- In a hierarchy, matching an ancestor of the assigned segment is not an overlap; matching a sibling branch is:
-- the 8 accounts paying exactly 70.00 match both 'High spend' (>= 70) and 'Mid spend' (35-70). A parent counts
-- its whole subtree (High spend = Fiber's 2991 + its own 600).
SELECT segment, path, accounts, matching, shadowed, never_wins FROM segments.coverage('value');
SELECT count(*) AS paying_exactly_70 FROM telco.customers WHERE monthly_charges = 70;

-- Every definition change is in the audit log, with who, when, old and new row.
SELECT table_name, operation, count(*) FROM segments.definition_log GROUP BY 1, 2 ORDER BY 1, 2;
SELECT operation, old_row ->> 'rule' AS old_rule, new_row ->> 'rule' AS new_rule, changed_by = session_user AS by_me
FROM segments.definition_log WHERE table_name = 'segment' AND operation = 'UPDATE' ORDER BY id LIMIT 2;

-- Roles: segments_reader reads and evaluates; only segments_editor may change definitions.
CREATE ROLE regress_analyst LOGIN IN ROLE segments_reader;
CREATE ROLE regress_ops LOGIN IN ROLE segments_editor;
GRANT USAGE ON SCHEMA telco TO segments_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA telco TO segments_reader;
SET ROLE regress_analyst;
SELECT segments.segment_of(c, 'contract') AS segment, count(*) FROM telco.customers c GROUP BY 1 ORDER BY 1;
SELECT * FROM error_of($$UPDATE segments.segment SET priority = 5 WHERE name = 'Two year'$$);
SELECT * FROM error_of($$DELETE FROM segments.definition_log$$);
RESET ROLE;
SET ROLE regress_ops;
UPDATE segments.segment SET description = 'Two-year term, lowest churn' WHERE segmentation = 'contract' AND name = 'Two year';
SELECT * FROM error_of($$UPDATE segments.definition_log SET changed_by = 'someone else'$$);
RESET ROLE;
SELECT changed_by, operation, new_row ->> 'description' AS description
FROM segments.definition_log ORDER BY id DESC LIMIT 1;

-- Every public table, column and function is documented.
SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relnamespace = 'segments'::regnamespace AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped
  AND col_description(c.oid, a.attnum) IS NULL ORDER BY 1, 2;
SELECT p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'segments'::regnamespace AND p.proname NOT LIKE '\_%' AND obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY 1;
