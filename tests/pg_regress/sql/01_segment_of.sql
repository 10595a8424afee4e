-- Define a segmentation by contract type and assign every account with segment_of(a).
INSERT INTO segments.segmentation (name, source, key_column, description, min_segment_size)
VALUES ('contract', 'telco.customers', 'customer_id', 'Accounts by contract term', 1500);

INSERT INTO segments.segment (segmentation, name, priority, rule, description, playbook) VALUES
  ('contract', 'Month-to-month', 1, '{"attr": "contract", "op": "=", "value": "Month-to-month"}',
   'No commitment: highest churn risk', '{"cs_engagement": "tech-touch", "marketing": "annual-plan upsell"}'),
  ('contract', 'One year', 2, '{"attr": "contract", "op": "in", "value": ["One year"]}', 'Annual term', '{}'),
  ('contract', 'Two year', 3, '{"attr": "contract", "op": "=", "value": "Two year"}', 'Two-year term', '{}');

SELECT segments.segment_of(c) AS segment, count(*) AS accounts
FROM telco.customers c GROUP BY 1 ORDER BY 1;

-- The segmentation argument may be omitted while only one segmentation exists.
SELECT segments.segment_of(c, 'contract') = segments.segment_of(c) AS same, count(*)
FROM telco.customers c GROUP BY 1;

-- A hierarchy: macro segments with micro segments; the most specific matching segment wins.
INSERT INTO segments.segmentation (name, source, key_column, description)
VALUES ('value', 'telco.customers', 'customer_id', 'Spend tiers with service sub-segments');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
  ('value', 'High spend', NULL, 1, '{"attr": "monthly_charges", "op": ">=", "value": 70}'),
  ('value', 'Fiber', 'High spend', 1, '{"attr": "internet_service", "op": "=", "value": "Fiber optic"}'),
  ('value', 'Streaming', 'Fiber', 1, '{"all": [{"attr": "streaming_tv", "op": "=", "value": "Yes"},
                                               {"attr": "streaming_movies", "op": "=", "value": "Yes"}]}'),
  ('value', 'Mid spend', NULL, 2, '{"attr": "monthly_charges", "op": "between", "value": [35, 70]}'),
  ('value', 'Long tenure', 'Mid spend', 1, '{"attr": "tenure", "op": ">", "value": 48}');

SELECT segments.segment_path(c, 'value') AS path, count(*) AS accounts
FROM telco.customers c GROUP BY 1 ORDER BY 1;

-- The same counts written by hand, as an independent check of the hierarchy.
SELECT CASE WHEN monthly_charges >= 70 THEN
              CASE WHEN internet_service = 'Fiber optic' THEN
                     CASE WHEN streaming_tv = 'Yes' AND streaming_movies = 'Yes' THEN 'High spend > Fiber > Streaming'
                          ELSE 'High spend > Fiber' END
                   ELSE 'High spend' END
            WHEN monthly_charges BETWEEN 35 AND 70 THEN
              CASE WHEN tenure > 48 THEN 'Mid spend > Long tenure' ELSE 'Mid spend' END
            ELSE 'Unsegmented' END AS path, count(*) AS accounts
FROM telco.customers GROUP BY 1 ORDER BY 1;

-- Passing no segmentation is an error once there are several.
SELECT * FROM error_of($$SELECT segments.segment_of(c) FROM telco.customers c LIMIT 1$$);

-- Overlapping mode: tags. segments_of lists every match in priority order.
INSERT INTO segments.segmentation (name, source, key_column, mode, default_segment)
VALUES ('tags', 'telco.customers', 'customer_id', 'overlapping', 'untagged');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('tags', 'senior', 1, '{"attr": "senior_citizen", "op": "=", "value": true}'),
  ('tags', 'family', 2, '{"any": [{"attr": "partner", "op": "=", "value": true}, {"attr": "dependents", "op": "=", "value": true}]}'),
  ('tags', 'e-check', 3, '{"attr": "payment_method", "op": "starts_with", "value": "Electronic"}'),
  ('tags', 'no-support', 4, '{"not": {"attr": "tech_support", "op": "=", "value": "Yes"}}');

SELECT customer_id, segments.segments_of(c, 'tags') AS tags, segments.segment_of(c, 'tags') AS first_tag
FROM telco.customers c ORDER BY customer_id LIMIT 5;

SELECT tag, count(*) FROM telco.customers c, unnest(segments.segments_of(c, 'tags')) AS tag GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE senior_citizen) AS senior,
       count(*) FILTER (WHERE partner OR dependents) AS family,
       count(*) FILTER (WHERE payment_method LIKE 'Electronic%') AS e_check,
       count(*) FILTER (WHERE tech_support <> 'Yes') AS no_support
FROM telco.customers;

-- Rows of views and subqueries work too; a NULL row gives NULL.
CREATE VIEW telco.recent AS SELECT customer_id, contract, tenure FROM telco.customers WHERE tenure < 12;
SELECT segments.segment_of(r, 'contract') AS segment, count(*) FROM telco.recent r GROUP BY 1 ORDER BY 1;
SELECT segments.segment_of(s, 'contract') AS segment, count(*)
FROM (SELECT contract, customer_id FROM telco.customers WHERE churned) s GROUP BY 1 ORDER BY 1;
SELECT segments.segment_of(NULL::telco.customers, 'contract') IS NULL AS null_row_gives_null;

-- NULL semantics: a NULL attribute matches only is_null (so "not" of a test on NULL is true).
CREATE TABLE telco.nulls (id int, total_charges numeric);
INSERT INTO telco.nulls VALUES (1, NULL), (2, 10), (3, 1000);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('nulls', 'telco.nulls', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('nulls', 'unknown', 1, '{"attr": "total_charges", "op": "is_null"}'),
  ('nulls', 'not big', 2, '{"not": {"attr": "total_charges", "op": ">", "value": 100}}');
SELECT id, total_charges, segments.segment_of(n, 'nulls') FROM telco.nulls n ORDER BY id;
