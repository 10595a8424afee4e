-- Membership over time on the Telco data: refresh, point-in-time lookups, migration matrix.
CREATE TABLE telco.plans AS SELECT customer_id, contract, monthly_charges, churned FROM telco.customers;
ALTER TABLE telco.plans ADD PRIMARY KEY (customer_id);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('plan', 'telco.plans', 'customer_id');
INSERT INTO segments.segment (segmentation, name, priority, rule)
SELECT 'plan', name, priority, rule FROM segments.segment WHERE segmentation = 'contract';

-- first refresh: everyone enters; a second changes nothing
SELECT * FROM segments.refresh('plan');
SELECT * FROM segments.refresh('plan');
SELECT segment, count(*) FROM segments.current_membership WHERE segmentation = 'plan' GROUP BY 1 ORDER BY 1;

-- ten accounts change contract
CREATE TEMP TABLE moved_accounts AS
SELECT customer_id, contract AS old_contract FROM telco.plans WHERE contract = 'Month-to-month'
ORDER BY customer_id LIMIT 10;
SELECT clock_timestamp() AS before_change \gset
SELECT pg_sleep(0.01);
UPDATE telco.plans SET contract = 'Two year' WHERE customer_id IN (SELECT customer_id FROM moved_accounts);
SELECT * FROM segments.refresh('plan');

-- the migration matrix shows them; before the change they were still month-to-month
SELECT * FROM segments.transitions('plan', :'before_change', now() + interval '1 hour');
SELECT count(*) FILTER (WHERE segments.segment_at('plan', customer_id, :'before_change') = 'Month-to-month') AS old_segment_then,
       count(*) FILTER (WHERE segments.segment_at('plan', customer_id) = 'Two year') AS new_segment_now
FROM moved_accounts;
SELECT segments.segment_at('plan', 'no such account') IS NULL AS unknown_account_is_null;
-- no account ever has two overlapping memberships
SELECT count(*) AS overlaps FROM segments.membership a JOIN segments.membership b
  ON a.segmentation = b.segmentation AND a.account_key = b.account_key AND a.ctid <> b.ctid AND a.valid && b.valid
WHERE a.segmentation = 'plan';
-- and cannot: a closed membership overlapping another, or a second open one, is refused
BEGIN;
SET CONSTRAINTS segments.one_segment_at_a_time IMMEDIATE;  -- deferred to commit otherwise
SELECT sqlstate, message FROM error_of($$
    INSERT INTO segments.membership SELECT segmentation, account_key, 'Two year', valid, true FROM segments.membership
    WHERE segmentation = 'plan' AND NOT upper_inf(valid) LIMIT 1$$);
SELECT sqlstate, message FROM error_of($$
    INSERT INTO segments.membership SELECT segmentation, account_key, 'Two year', tstzrange(now(), NULL), true
    FROM segments.membership WHERE segmentation = 'plan' AND upper_inf(valid) LIMIT 1$$);
ROLLBACK;

-- a deleted account leaves; a new one enters
DELETE FROM telco.plans WHERE customer_id = '7590-VHVEG';
INSERT INTO telco.plans VALUES ('0000-NEW01', 'One year', 50, false);
SELECT * FROM segments.refresh('plan');
SELECT segments.segment_at('plan', '7590-VHVEG') AS deleted_now, segments.segment_at('plan', '0000-NEW01') AS new_now;

-- Cohort-correct metrics: each account counts in the segment it was in at the start of the period, so the
-- ten migrants are counted once, in Month-to-month (where they were), not in Two year.
SELECT m.segment AS segment_at_start, count(*) AS accounts, round(100 * segments.churn_rate(p.churned)::numeric, 2) AS churn_pct
FROM telco.plans p JOIN segments.membership m
  ON m.segmentation = 'plan' AND m.account_key = p.customer_id AND m.valid @> :'before_change'::timestamptz
GROUP BY 1 ORDER BY 1;
SELECT segments.segment_of(p, 'plan') AS segment_now, count(*) AS accounts FROM telco.plans p GROUP BY 1 ORDER BY 1;

-- Preview: who would enter or leave if a rule changed; nothing is changed.
SELECT current_segment, new_segment, count(*)
FROM segments.preview('plan', 'One year', '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}')
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT rule FROM segments.segment WHERE segmentation = 'plan' AND name = 'One year';
SELECT * FROM error_of($$SELECT * FROM segments.preview('plan', 'Nope', 'true')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.preview('plan', 'One year', '{"attr": "x", "op": "=", "value": 1}')$$);

-- Live mode: triggers move accounts in the same transaction as the data change, and NOTIFY.
UPDATE segments.segmentation SET notify = true WHERE name = 'plan';
SELECT segments.track('plan');
-- a second session listens (through dblink), as an application would
CREATE EXTENSION dblink;
SELECT dblink_connect('listener', format('dbname=%s port=%s host=%s', current_database(), current_setting('port'),
                                         current_setting('unix_socket_directories')));
SELECT dblink_exec('listener', 'LISTEN segments_membership');
BEGIN;
UPDATE telco.plans SET contract = 'Two year' WHERE customer_id = '0002-ORFBO';
SELECT segment FROM segments.current_membership WHERE segmentation = 'plan' AND account_key = '0002-ORFBO';
COMMIT;
INSERT INTO telco.plans VALUES ('0000-NEW02', 'Month-to-month', 20, false);
DELETE FROM telco.plans WHERE customer_id = '0000-NEW01';
SELECT account_key, segment FROM segments.current_membership
WHERE segmentation = 'plan' AND account_key IN ('0002-ORFBO', '0000-NEW02', '0000-NEW01') ORDER BY 1;
-- notifications reach the listener asynchronously: collect them for up to 10 s
CREATE TEMP TABLE received (notify_name text, payload jsonb);
DO $$
BEGIN
    FOR i IN 1..100 LOOP
        INSERT INTO received SELECT notify_name, extra::jsonb FROM dblink_get_notify('listener');
        EXIT WHEN (SELECT count(*) FROM received) >= 3;
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
-- a payload names the segmentation and the instant, never an account; changes() says who moved then
SELECT notify_name, array(SELECT jsonb_object_keys(payload) ORDER BY 1) AS payload_keys, count(*)
FROM received GROUP BY 1, 2;
SELECT c.* FROM received r, segments.changes(r.payload ->> 'segmentation', (r.payload ->> 'at')::timestamptz) c
ORDER BY 1;
SELECT dblink_disconnect('listener');
-- a bulk change (over 100 rows) takes the set-based path that refresh uses
UPDATE telco.plans SET contract = 'One year' WHERE contract = 'Month-to-month' AND monthly_charges < 25;
-- membership and live evaluation agree after all that
SELECT count(*) AS disagreements FROM telco.plans p
LEFT JOIN segments.current_membership m ON m.segmentation = 'plan' AND m.account_key = p.customer_id
WHERE m.segment IS DISTINCT FROM segments.segment_of(p, 'plan');
-- while tracked: an edited rule applies from the next statement on, a changed key leaves and enters,
-- and a renamed segmentation stays tracked under its new name (all rolled back afterwards)
BEGIN;
UPDATE segments.segment SET rule = '{"attr": "monthly_charges", "op": ">", "value": 1000}'
WHERE segmentation = 'plan' AND name = 'Two year';
UPDATE telco.plans SET churned = churned WHERE customer_id = '0002-ORFBO';
SELECT segment AS after_rule_edit FROM segments.current_membership WHERE segmentation = 'plan' AND account_key = '0002-ORFBO';
UPDATE telco.plans SET customer_id = '0000-NEW03' WHERE customer_id = '0000-NEW02';
SELECT account_key, segment FROM segments.current_membership
WHERE segmentation = 'plan' AND account_key IN ('0000-NEW02', '0000-NEW03') ORDER BY 1;
UPDATE segments.segmentation SET name = 'plan renamed' WHERE name = 'plan';
UPDATE telco.plans SET contract = 'One year' WHERE customer_id = '0000-NEW03';
SELECT segmentation, segment FROM segments.current_membership WHERE account_key = '0000-NEW03' AND segmentation LIKE 'plan%';
ROLLBACK;
SELECT * FROM segments.refresh('plan');
SELECT segments.untrack('plan');
SELECT count(*) AS tracking_triggers FROM pg_trigger WHERE tgrelid = 'telco.plans'::regclass AND NOT tgisinternal;
SELECT sqlstate, message FROM error_of($$SELECT segments.track('contract')$$);
-- a NULL key in a tracked table whose key column allows NULL, and the trigger called by hand
CREATE TABLE telco.loose (id int, seats int);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('loose', 'telco.loose', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES ('loose', 'Big', 1, '{"attr": "seats", "op": ">=", "value": 10}');
SELECT * FROM error_of($$SELECT segments.track('loose')$$);  -- tracking needs a unique key
CREATE UNIQUE INDEX ON telco.loose (id);                   -- which still allows NULL
SELECT segments.track('loose');
INSERT INTO telco.loose VALUES (1, 20), (2, 5);
SELECT account_key, segment FROM segments.current_membership WHERE segmentation = 'loose' ORDER BY 1;
SELECT * FROM error_of($$INSERT INTO telco.loose VALUES (NULL, 20)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments._track()$$);
DELETE FROM telco.loose WHERE id = 1;
SELECT account_key, segment FROM segments.current_membership WHERE segmentation = 'loose' ORDER BY 1;
TRUNCATE telco.loose;  -- every account leaves
SELECT count(*) AS open_after_truncate FROM segments.current_membership WHERE segmentation = 'loose';
DELETE FROM segments.segmentation WHERE name = 'loose';
DROP TABLE telco.loose;

-- tracking an overlapping segmentation: every tag an account gains or loses
SELECT segments.track('tags');
UPDATE telco.customers SET tech_support = 'Yes', partner = NOT partner WHERE customer_id IN ('0002-ORFBO', '0003-MKNFE');
SELECT count(*) AS tag_disagreements FROM telco.customers c
WHERE segments.segments_of(c, 'tags') IS DISTINCT FROM coalesce(
    (SELECT array_agg(m.segment ORDER BY s.priority) FROM segments.current_membership m
     JOIN segments.segment s ON s.segmentation = m.segmentation AND s.name = m.segment
     WHERE m.segmentation = 'tags' AND m.account_key = c.customer_id), '{}');
SELECT segments.untrack('tags');

-- Switching a segmentation to overlapping mode ends its exclusive memberships; refresh starts over.
UPDATE segments.segmentation SET mode = 'overlapping' WHERE name = 'plan';
SELECT count(*) AS open_after_mode_change FROM segments.current_membership WHERE segmentation = 'plan';
SELECT * FROM segments.refresh('plan');
UPDATE segments.segmentation SET mode = 'exclusive' WHERE name = 'plan';
SELECT * FROM segments.refresh('plan');

-- Bad input: clear errors, membership untouched.
CREATE TEMP TABLE before AS SELECT * FROM segments.membership;
SELECT * FROM error_of($$SELECT * FROM segments.refresh('no_such')$$);
CREATE TABLE telco.dupes (id int, contract text);
INSERT INTO telco.dupes VALUES (1, 'One year'), (1, 'Two year'), (2, 'One year');
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('dupes', 'telco.dupes', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule)
SELECT 'dupes', name, priority, rule FROM segments.segment WHERE segmentation = 'plan';
SELECT sqlstate, message, hint FROM error_of($$SELECT * FROM segments.refresh('dupes')$$);
UPDATE telco.dupes SET id = NULL WHERE contract = 'Two year';
SELECT * FROM error_of($$SELECT * FROM segments.refresh('dupes')$$);
ALTER TABLE telco.dupes RENAME COLUMN id TO account_id;
SELECT * FROM error_of($$SELECT * FROM segments.refresh('dupes')$$);
SELECT (SELECT count(*) FROM segments.membership) = (SELECT count(*) FROM before) AS membership_untouched,
       NOT EXISTS (SELECT * FROM segments.membership EXCEPT SELECT * FROM before) AS same_rows;
-- a key that turns up twice after its account has a membership is an error too, not a silent "unchanged"
CREATE TABLE telco.twice (id int, contract text);
INSERT INTO telco.twice VALUES (1, 'One year'), (2, 'Two year');
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('twice', 'telco.twice', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule)
SELECT 'twice', name, priority, rule FROM segments.segment WHERE segmentation = 'plan';
SELECT * FROM segments.refresh('twice');
INSERT INTO telco.twice VALUES (2, 'Two year');
SELECT * FROM error_of($$SELECT * FROM segments.refresh('twice')$$);
DELETE FROM segments.segmentation WHERE name = 'twice';
DROP TABLE telco.twice;
-- a view as the source (the contract segmentation reads telco.revenue): the planner picks the joins
SELECT * FROM segments.refresh('contract');
SELECT * FROM segments.refresh('contract');
DELETE FROM segments.membership WHERE segmentation = 'contract';
