-- Tracking a partitioned source: writes through the parent and straight into any partition (a sub-partition,
-- one created or attached after track()) keep membership equal to segment_of; a detached table stops being
-- tracked. (A statement on a partition fires only that partition's statement triggers: track() puts its
-- triggers on every partition, and an event trigger on new ones.)
SET TimeZone = 'UTC';
CREATE SCHEMA parts;
CREATE TABLE parts.accounts (id int PRIMARY KEY, arr numeric) PARTITION BY RANGE (id);
CREATE TABLE parts.p1 PARTITION OF parts.accounts FOR VALUES FROM (0) TO (1000);
CREATE TABLE parts.p2 PARTITION OF parts.accounts FOR VALUES FROM (1000) TO (2000) PARTITION BY RANGE (id);
CREATE TABLE parts.p2a PARTITION OF parts.p2 FOR VALUES FROM (1000) TO (1500);
CREATE TABLE parts.p2b PARTITION OF parts.p2 FOR VALUES FROM (1500) TO (2000);
INSERT INTO parts.accounts SELECT g, (g % 7) * 5000 FROM generate_series(1, 1999, 10) g;

INSERT INTO segments.segmentation (name, source, key_column) VALUES ('tiers', 'parts.accounts', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('tiers', 'Enterprise', 1, '{"attr": "arr", "op": ">=", "value": 25000}'),
  ('tiers', 'Mid-Market', 2, '{"attr": "arr", "op": ">=", "value": 10000}');

-- accounts, open memberships, and how many of them disagree with segment_of (or belong to no account)
CREATE FUNCTION parts.check(OUT accounts bigint, OUT members bigint, OUT stale bigint) LANGUAGE sql AS $$
    SELECT (SELECT count(*) FROM parts.accounts),
           (SELECT count(*) FROM segments.membership m WHERE m.segmentation = 'tiers' AND upper_inf(m.valid)),
           (SELECT count(*) FROM parts.accounts a
            LEFT JOIN segments.membership m ON m.segmentation = 'tiers' AND m.account_key = a.id::text AND upper_inf(m.valid)
            WHERE m.segment IS DISTINCT FROM segments.segment_of(a, 'tiers'))
         + (SELECT count(*) FROM segments.membership m WHERE m.segmentation = 'tiers' AND upper_inf(m.valid)
            AND NOT EXISTS (SELECT 1 FROM parts.accounts a WHERE a.id::text = m.account_key))
$$;
CREATE FUNCTION parts.triggers() RETURNS TABLE (tbl regclass, triggers bigint) LANGUAGE sql AS $$
    SELECT c.oid::regclass, count(t.tgname) FROM pg_class c
    LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgfoid = 'segments._track()'::regprocedure
    WHERE c.relnamespace = 'parts'::regnamespace AND c.relkind IN ('r', 'p') GROUP BY 1 ORDER BY 1::text
$$;

SELECT segments.track('tiers');
SELECT * FROM parts.triggers();
SELECT * FROM parts.check();
-- straight into a partition and a sub-partition: update, insert, delete
UPDATE parts.p1 SET arr = 30000 WHERE id < 300;
SELECT * FROM parts.check();
INSERT INTO parts.p2a VALUES (1002, 50000), (1003, 0);
SELECT * FROM parts.check();
DELETE FROM parts.p2b WHERE id > 1800;
SELECT * FROM parts.check();
-- through the parent, moving rows across partitions
UPDATE parts.accounts SET id = id + 1000, arr = arr + 1 WHERE id BETWEEN 901 AND 999;
SELECT * FROM parts.check();
-- a partition created after track(), and one attached (empty) after it
CREATE TABLE parts.p3 PARTITION OF parts.accounts FOR VALUES FROM (2000) TO (3000);
INSERT INTO parts.p3 SELECT g, 26000 FROM generate_series(2000, 2040) g;
SELECT * FROM parts.check();
CREATE TABLE parts.p4 (id int NOT NULL, arr numeric);
ALTER TABLE parts.accounts ATTACH PARTITION parts.p4 FOR VALUES FROM (3000) TO (4000);
INSERT INTO parts.p4 VALUES (3001, 12000), (3002, 1);
UPDATE parts.p4 SET arr = 99999 WHERE id = 3002;
SELECT * FROM parts.check();
SELECT * FROM parts.triggers();
-- a detached table loses its triggers: writing to it leaves membership alone (its accounts left the source
-- without a data change, as with ATTACH of a filled table: the next refresh settles them)
ALTER TABLE parts.accounts DETACH PARTITION parts.p3;
UPDATE parts.p3 SET arr = 0;
SELECT * FROM parts.triggers() WHERE tbl = 'parts.p3'::regclass;
SELECT * FROM parts.check();
SELECT entered, "left", moved FROM segments.refresh('tiers');
SELECT * FROM parts.check();
-- truncating one partition closes its accounts' memberships
TRUNCATE parts.p1;
SELECT * FROM parts.check();
-- untrack takes the triggers off every partition
SELECT segments.untrack('tiers');
SELECT sum(triggers) AS tracking_triggers_left FROM parts.triggers();
DELETE FROM segments.segmentation WHERE name = 'tiers';
