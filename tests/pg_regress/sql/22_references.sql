-- Segment references: a segment built from another segmentation's segment and excluding a third, equal to
-- the hand-written SQL; unknown names, cycles and removals of referenced segments refused; renames carried.
SET TimeZone = 'UTC';
CREATE SCHEMA refs;
CREATE TABLE refs.accounts (id integer PRIMARY KEY, logins_30d integer, nps smallint, open_tickets integer, employees integer);
INSERT INTO refs.accounts SELECT i, (i * 7) % 45, CASE WHEN i % 9 = 0 THEN NULL ELSE i % 11 END, (i * 3) % 5, (i * 37) % 3000
FROM generate_series(1, 1000) i;
INSERT INTO segments.segmentation (name, source, key_column) VALUES
  ('engagement', 'refs.accounts', 'id'), ('risk', 'refs.accounts', 'id'),
  ('plays', 'refs.accounts', 'id'), ('size', 'refs.accounts', 'id');
INSERT INTO segments.segmentation (name, source, key_column, mode) VALUES ('tags', 'refs.accounts', 'id', 'overlapping');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
  ('engagement', 'Power users', NULL, 1, '{"attr": "logins_30d", "op": ">=", "value": 20}'),
  ('engagement', 'Daily', 'Power users', 1, '{"attr": "logins_30d", "op": ">=", "value": 30}'),
  ('engagement', 'Casual', NULL, 2, 'true'),
  ('risk', 'At-Risk', NULL, 1, '{"any": [{"attr": "nps", "op": "<=", "value": 6}, {"attr": "open_tickets", "op": ">=", "value": 4}]}'),
  ('size', 'Enterprise', NULL, 1, '{"attr": "employees", "op": ">=", "value": 1000}'),
  ('tags', 'Promoter', NULL, 1, '{"attr": "nps", "op": ">=", "value": 9}');
-- a segment built from another (power users, "Daily" below it included) and excluding a third (at risk)
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('plays', 'Expansion', 1, '{"all": [{"in_segment": "Power users", "of": "engagement"}, {"not": {"in_segment": "At-Risk", "of": "risk"}}]}'),
  ('plays', 'Advocacy', 2, '{"all": [{"in_segment": "Promoter", "of": "tags"}, {"in_segment": "Enterprise", "of": "size"}]}');

CREATE VIEW refs.by_hand AS
SELECT id, CASE WHEN logins_30d >= 20 AND NOT (coalesce(nps <= 6, false) OR open_tickets >= 4) THEN 'Expansion'
                WHEN nps >= 9 AND employees >= 1000 THEN 'Advocacy'
                ELSE 'Unsegmented' END AS segment
FROM refs.accounts;
SELECT h.segment, count(*) AS accounts, count(*) FILTER (WHERE segments.segment_of(a, 'plays') = h.segment) AS segment_of_agrees
FROM refs.accounts a JOIN refs.by_hand h USING (id) GROUP BY 1 ORDER BY 1;
SELECT segments.refresh('plays');
SELECT count(*) AS refresh_disagrees FROM refs.by_hand h
LEFT JOIN segments.membership m ON m.segmentation = 'plays' AND upper_inf(m.valid) AND m.account_key = h.id::text
WHERE m.segment IS DISTINCT FROM h.segment;
DO $$
DECLARE bad bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM refs.accounts t JOIN refs.by_hand h USING (id) WHERE (%s) IS DISTINCT FROM h.segment',
                   segments.to_sql('plays')) INTO bad;
    RAISE NOTICE 'to_sql disagrees with the hand-written SQL on % accounts', bad;
    EXECUTE format('SELECT count(*) FROM (%s) q JOIN refs.by_hand h USING (id) WHERE q.segments_segment IS DISTINCT FROM h.segment',
                   segments.to_query('plays')) INTO bad;
    RAISE NOTICE 'to_query disagrees with the hand-written SQL on % accounts', bad;
END $$;
-- explain shows where the row is in the referenced segmentation
SELECT jsonb_pretty(segments.explain(a, 'plays') -> 'segments' -> 0 -> 'rule') FROM refs.accounts a WHERE id = 5;

-- renames are carried to the referring rules, of a segment and of a segmentation
UPDATE segments.segment SET name = 'Power' WHERE segmentation = 'engagement' AND name = 'Power users';
UPDATE segments.segmentation SET name = 'usage' WHERE name = 'engagement';
SELECT rule FROM segments.segment WHERE segmentation = 'plays' AND name = 'Expansion';
SELECT count(*) AS disagrees_after_renames FROM refs.accounts a JOIN refs.by_hand h USING (id)
WHERE segments.segment_of(a, 'plays') IS DISTINCT FROM h.segment;

-- a referenced segment cannot be deleted or deactivated (nor one above it), nor its segmentation deleted
SELECT * FROM error_of($$DELETE FROM segments.segment WHERE segmentation = 'risk' AND name = 'At-Risk'$$);
SELECT * FROM error_of($$UPDATE segments.segment SET active = false WHERE segmentation = 'usage' AND name = 'Power'$$);
SELECT * FROM error_of($$DELETE FROM segments.segmentation WHERE name = 'risk'$$);
-- what is not referenced can go
UPDATE segments.segment SET active = false WHERE segmentation = 'usage' AND name = 'Casual';

-- save-time errors: unknown names with their JSON path, cycles (directly or through others)
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('plays', 'bad', '{"in_segment": "Power", "of": "nope"}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('plays', 'bad', '{"all": [{"in_segment": "Nope", "of": "usage"}]}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('plays', 'bad', '{"in_segment": "Casual", "of": "usage"}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('plays', 'bad', '{"in_segment": "Expansion", "of": "plays"}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('risk', 'bad', '{"in_segment": "Expansion", "of": "plays"}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('plays', 'bad', '{"in_segment": "Power", "of": "usage", "extra": 1}')$$);
SELECT * FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule) VALUES ('plays', 'bad', '{"in_segment": 3, "of": "usage"}')$$);
