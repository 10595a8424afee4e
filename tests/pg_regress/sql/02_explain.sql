-- explain: each segment's rule tree with pass/fail per node and the values compared.
SELECT jsonb_pretty(segments.explain(c, 'value'))
FROM telco.customers c WHERE customer_id = '7590-VHVEG';

SELECT customer_id, monthly_charges, internet_service,
       segments.explain(c, 'value') -> 'path' AS path,
       segments.explain(c, 'value') #> '{segments,0,rule,actual}' AS high_spend_actual
FROM telco.customers c WHERE customer_id IN ('7590-VHVEG', '9237-HQITU', '7892-POOKP') ORDER BY 1;

-- Time-relative rules: within / older_than an interval before now, or before an explicit as_of.
CREATE TABLE telco.logins (id int PRIMARY KEY, last_login_at timestamptz, signup date);
INSERT INTO telco.logins VALUES
  (1, '2024-06-29 12:00+00', '2020-01-01'), (2, '2024-05-01 00:00+00', '2024-06-01'), (3, NULL, NULL);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('activity', 'telco.logins', 'id');
INSERT INTO segments.segment (segmentation, name, priority, rule) VALUES
  ('activity', 'active', 1, '{"attr": "last_login_at", "op": "within", "value": "7 days", "as_of": "2024-06-30"}'),
  ('activity', 'dormant', 2, '{"attr": "last_login_at", "op": "older_than", "value": "30 days", "as_of": "2024-06-30"}'),
  ('activity', 'new', 3, '{"attr": "signup", "op": ">=", "value": "2024-01-01"}');
SELECT id, segments.segment_of(l, 'activity'),
       segments.explain(l, 'activity') #> '{segments,0,rule}' AS active_test
FROM telco.logins l ORDER BY id;
