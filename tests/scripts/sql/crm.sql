-- A small CRM with every kind of state pg_segments keeps: two segmentations (exclusive with a hierarchy,
-- overlapping), edited RFM names, an audit log, membership history, a tracked table and (from 0.2.0 on) a
-- tracked partitioned table.
SET client_min_messages = warning;
CREATE SCHEMA crm;
CREATE TABLE crm.accounts (
    id        integer PRIMARY KEY,
    name      text NOT NULL,
    employees integer,
    industry  text,
    country   text,
    arr       numeric,
    churned   boolean NOT NULL DEFAULT false
);
INSERT INTO crm.accounts
SELECT i, 'account ' || i, (i * 37) % 5000, (ARRAY['Healthcare', 'Biotech', 'Retail', 'Software'])[1 + i % 4],
       (ARRAY['US', 'DE', 'FR'])[1 + i % 3], (i * 113) % 90000, i % 11 = 0
FROM generate_series(1, 300) i;

INSERT INTO segments.segmentation (name, source, key_column, description, arr_column, churned_column)
VALUES ('tier', 'crm.accounts', 'id', 'GTM tier', 'arr', 'churned');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule, description, playbook) VALUES
    ('tier', 'Enterprise', NULL, 1, '{"attr": "employees", "op": ">=", "value": 1000}', 'big', '{"sales": "field"}'),
    ('tier', 'Enterprise Healthcare', 'Enterprise', 1, '{"attr": "industry", "op": "in", "value": ["Healthcare", "Biotech"]}', NULL, '{}'),
    ('tier', 'Mid-Market', NULL, 2, '{"attr": "employees", "op": "between", "value": [100, 999]}', NULL, '{}'),
    ('tier', 'SMB', NULL, 3, 'true', NULL, '{}');
INSERT INTO segments.segmentation (name, source, key_column, mode, default_segment)
VALUES ('tags', 'crm.accounts', 'id', 'overlapping', 'Untagged');
INSERT INTO segments.segment (segmentation, name, rule) VALUES
    ('tags', 'US', '{"attr": "country", "op": "=", "value": "US"}'),
    ('tags', 'Big ARR', '{"attr": "arr", "op": ">", "value": 50000}');

-- the user's own RFM names: one renamed, one removed, one added (from 0.2.0 on, a copy of the built-in map first)
DO $$ BEGIN
    IF to_regclass('segments.rfm_default_map') IS NOT NULL THEN
        INSERT INTO segments.rfm_segment_map SELECT * FROM segments.rfm_default_map;
    END IF;
END $$;
UPDATE segments.rfm_segment_map SET segment = 'Best Customers' WHERE segment = 'Champions';
DELETE FROM segments.rfm_segment_map WHERE segment = 'Hibernating';
INSERT INTO segments.rfm_segment_map VALUES ('Sleepers', 12, 1, 1, 1, 1, 1, 1);

-- a parent row rewritten after its child: the restore's COPY meets the child first
UPDATE segments.segment SET description = 'big accounts' WHERE segmentation = 'tier' AND name = 'Enterprise';
SELECT * FROM segments.refresh('tags');
SELECT segments.track('tier');
-- history: tracked changes move accounts, a definition change and a refresh move more
UPDATE crm.accounts SET employees = 2000 WHERE id <= 20;
UPDATE segments.segment SET rule = '{"attr": "employees", "op": "between", "value": [50, 999]}'
WHERE segmentation = 'tier' AND name = 'Mid-Market';
SELECT * FROM segments.refresh('tier');
DELETE FROM crm.accounts WHERE id BETWEEN 290 AND 300;
UPDATE crm.accounts SET country = 'US' WHERE id BETWEEN 100 AND 120;
SELECT * FROM segments.refresh('tags');

-- from 0.2.0 on: a segmentation with declared facts and history backfilled from snapshots
DO $$ BEGIN
    IF to_regprocedure('segments.backfill(text, regclass, text, boolean)') IS NOT NULL THEN
        CREATE TABLE crm.snapshots AS
        SELECT a.id, timestamptz '2024-01-01 00:00+00' + k * interval '1 month' AS taken_at,
               a.employees + k * 200 AS employees, a.arr
        FROM crm.accounts a, generate_series(0, 3) k;
        INSERT INTO segments.segmentation (name, source, key_column, arr_facts, arr_facts_time, arr_facts_value)
        VALUES ('size', 'crm.accounts', 'id', 'crm.snapshots', 'taken_at', 'arr');
        INSERT INTO segments.segment (segmentation, name, rule) VALUES
            ('size', 'Large', '{"attr": "employees", "op": ">=", "value": 2500}'),
            ('size', 'Small', 'true');
        PERFORM segments.backfill('size', 'crm.snapshots', 'taken_at');
    END IF;
END $$;

-- from 0.2.0 on: a tracked partitioned table, written straight into a partition
DO $$ BEGIN
    IF to_regprocedure('segments._tracked_tables(regclass)') IS NOT NULL THEN
        CREATE TABLE crm.usage (id integer PRIMARY KEY, logins integer) PARTITION BY RANGE (id);
        CREATE TABLE crm.usage_low PARTITION OF crm.usage FOR VALUES FROM (0) TO (150);
        CREATE TABLE crm.usage_high PARTITION OF crm.usage FOR VALUES FROM (150) TO (1000);
        INSERT INTO crm.usage SELECT i, i % 40 FROM generate_series(1, 300) i;
        INSERT INTO segments.segmentation (name, source, key_column) VALUES ('activity', 'crm.usage', 'id');
        INSERT INTO segments.segment (segmentation, name, rule) VALUES ('activity', 'Power', '{"attr": "logins", "op": ">=", "value": 30}');
        PERFORM segments.track('activity');
        UPDATE crm.usage_high SET logins = 35 WHERE id BETWEEN 150 AND 160;
    END IF;
END $$;
