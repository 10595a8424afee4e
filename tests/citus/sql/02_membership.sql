-- Membership of a distributed source: refresh gathers (key, segment) from the shards in one statement into
-- a temporary table on the coordinator, then synchronises segments.membership (a coordinator table) from it.
SET client_min_messages = warning;
SELECT 'dist' AS twin, * FROM segments.refresh('value_dist')
UNION ALL SELECT 'local', * FROM segments.refresh('value_local');
SELECT 'dist' AS twin, * FROM segments.refresh('services_dist')
UNION ALL SELECT 'local', * FROM segments.refresh('services_local');

-- the open memberships are exactly the live assignment
SELECT 'exclusive' AS mode, * FROM differences(
  $$SELECT account_key, segment FROM segments.membership WHERE segmentation = 'value_dist' AND upper_inf(valid)$$,
  $$SELECT customer_id, segments.segment_of(c, 'value_local') FROM local.customers c$$)
UNION ALL SELECT 'overlapping', * FROM differences(
  $$SELECT account_key, segment FROM segments.membership WHERE segmentation = 'services_dist' AND upper_inf(valid)$$,
  $$SELECT account_key, segment FROM segments.membership WHERE segmentation = 'services_local' AND upper_inf(valid)$$);

-- the same change on both copies, then refresh: the same accounts move
UPDATE dist.customers SET monthly_charges = monthly_charges + 20 WHERE tenure % 7 = 0;
UPDATE local.customers SET monthly_charges = monthly_charges + 20 WHERE tenure % 7 = 0;
UPDATE dist.customers SET streaming_tv = 'Yes' WHERE tenure % 5 = 0;
UPDATE local.customers SET streaming_tv = 'Yes' WHERE tenure % 5 = 0;
SELECT 'dist' AS twin, * FROM segments.refresh('value_dist')
UNION ALL SELECT 'local', * FROM segments.refresh('value_local');
SELECT 'dist' AS twin, * FROM segments.refresh('services_dist')
UNION ALL SELECT 'local', * FROM segments.refresh('services_local');
SELECT 'value' AS segmentation, * FROM differences(
  $$SELECT account_key, segment, upper_inf(valid) FROM segments.membership WHERE segmentation = 'value_dist'$$,
  $$SELECT account_key, segment, upper_inf(valid) FROM segments.membership WHERE segmentation = 'value_local'$$)
UNION ALL SELECT 'services', * FROM differences(
  $$SELECT account_key, segment, upper_inf(valid) FROM segments.membership WHERE segmentation = 'services_dist'$$,
  $$SELECT account_key, segment, upper_inf(valid) FROM segments.membership WHERE segmentation = 'services_local'$$);

-- history: segment_at, transitions, changes
SELECT segments.segment_at('value_dist', customer_id) = segments.segment_at('value_local', customer_id) AS same, count(*)
FROM local.customers WHERE tenure % 7 = 0 GROUP BY 1;
SELECT * FROM differences(
  $$SELECT * FROM segments.transitions('value_dist', now() - interval '1 day', now() + interval '1 day')$$,
  $$SELECT * FROM segments.transitions('value_local', now() - interval '1 day', now() + interval '1 day')$$);
SELECT sum(accounts) > 0 AS some_moved FROM segments.transitions('value_dist', now() - interval '1 day', now() + interval '1 day')
WHERE from_segment IS DISTINCT FROM to_segment;

-- preview: what a rule change would do, computed on the shards
SELECT * FROM differences(
  $$SELECT account_key, current_segment, new_segment FROM segments.preview('contract_dist', 'One year',
      '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}')$$,
  $$SELECT account_key, current_segment, new_segment FROM segments.preview('contract_local', 'One year',
      '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}')$$);

-- track(): a Citus table's triggers would run on the shards, which have no membership: refused
SELECT * FROM error_of($$SELECT segments.track('value_dist')$$);
