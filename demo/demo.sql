-- pg_segments demo on the IBM Telco Customer Churn data (7043 accounts): what an analyst sees.
\pset footer off
\pset null '-'
CREATE EXTENSION IF NOT EXISTS pg_segments CASCADE;

\echo
\echo '## 1. Define segmentations once, in tables'
-- ARR now (monthly charges × 12; churned accounts have none) and a period ago (average charge over tenure × 12)
CREATE VIEW telco.accounts AS
SELECT c.*, CASE WHEN NOT churned THEN monthly_charges * 12 END AS arr,
       CASE WHEN tenure > 0 THEN round(total_charges / tenure * 12, 2) END AS arr_year_ago
FROM telco.customers c;

INSERT INTO segments.segmentation (name, source, key_column, description, min_segment_size,
                                   arr_column, arr_start_column, churned_column, gross_margin)
VALUES ('contract', 'telco.accounts', 'customer_id', 'Accounts by contract term', 1000,
        'arr', 'arr_year_ago', 'churned', 0.6),
       ('value', 'telco.accounts', 'customer_id', 'Spend tiers with service sub-segments', 500,
        'arr', 'arr_year_ago', 'churned', 0.6);

INSERT INTO segments.segment (segmentation, name, parent, priority, rule, description, playbook) VALUES
  ('contract', 'Month-to-month', NULL, 1, '{"attr": "contract", "op": "=", "value": "Month-to-month"}',
   'No commitment', '{"cs_engagement": "tech-touch", "marketing": "annual-plan upsell"}'),
  ('contract', 'One year', NULL, 2, '{"attr": "contract", "op": "in", "value": ["One year"]}', 'Annual term', '{}'),
  ('contract', 'Two year', NULL, 3, '{"attr": "contract", "op": "=", "value": "Two year"}', 'Two-year term', '{}'),
  ('value', 'High spend', NULL, 1, '{"attr": "monthly_charges", "op": ">=", "value": 70}', 'Top ARPA', '{"sales_model": "account manager"}'),
  ('value', 'Fiber', 'High spend', 1, '{"attr": "internet_service", "op": "=", "value": "Fiber optic"}', NULL, '{}'),
  ('value', 'Streamers', 'Fiber', 1, '{"all": [{"attr": "streaming_tv", "op": "=", "value": "Yes"},
                                               {"attr": "streaming_movies", "op": "=", "value": "Yes"}]}', NULL, '{}'),
  ('value', 'Mid spend', NULL, 2, '{"attr": "monthly_charges", "op": "between", "value": [35, 70]}', NULL, '{}'),
  ('value', 'Loyal', 'Mid spend', 1, '{"attr": "tenure", "op": ">", "value": 48}', NULL, '{}'),
  ('value', 'Low spend', NULL, 3, 'true', 'Everyone else', '{}');

SELECT segmentation, name AS segment, coalesce(parent, '') AS parent, priority, rule::text
FROM segments.segment ORDER BY segmentation, priority, name;

\echo
\echo '## 2. segment_of(account): accounts and churn per contract segment'
SELECT segments.segment_of(a, 'contract') AS segment, count(*) AS accounts,
       count(*) FILTER (WHERE churned) AS churned,
       round(100 * segments.churn_rate(churned)::numeric, 2) AS churn_pct
FROM telco.accounts a GROUP BY 1 ORDER BY 1;

\echo
\echo '## 3. A hierarchy: segment_path gives macro > micro'
SELECT segments.segment_path(a, 'value') AS segment, count(*) AS accounts,
       round(100 * segments.churn_rate(churned)::numeric, 1) AS churn_pct
FROM telco.accounts a GROUP BY 1 ORDER BY 1;

\echo
\echo '## 4. Why is account 7892-POOKP where it is? segments.explain'
SELECT s ->> 'segment' AS segment, s ->> 'pass' AS pass, s -> 'rule' AS rule_with_values
FROM telco.accounts a, jsonb_array_elements(segments.explain(a, 'value') -> 'segments') s
WHERE customer_id = '7892-POOKP';
SELECT segments.segment_path(a, 'value') AS "7892-POOKP is in" FROM telco.accounts a WHERE customer_id = '7892-POOKP';

\echo
\echo '## 5. Segment health (ARR = monthly charges × 12)'
SELECT segment, accounts, arr, round(100 * arr_share::numeric, 1) AS arr_pct, round(avg_acv::numeric) AS avg_acv,
       round(100 * churn_rate::numeric, 2) AS churn_pct,
       format('%s–%s', round(100 * churn_lower::numeric, 1), round(100 * churn_upper::numeric, 1)) AS churn_95ci,
       round(nrr::numeric, 3) AS nrr, round(grr::numeric, 3) AS grr, round(clv::numeric) AS clv, small_sample
FROM segments.health('contract');

\echo
\echo '## 6. Are the segments measurably different? (one-way ANOVA)'
SELECT metric, round((a).f::numeric, 1) AS f, (a).p_value, round((a).eta_squared::numeric, 3) AS eta_squared
FROM (SELECT 'monthly charges' AS metric, segments.separation(segments.segment_of(a, 'contract'), monthly_charges::float8) AS a FROM telco.accounts a
      UNION ALL
      SELECT 'tenure', segments.separation(segments.segment_of(a, 'contract'), tenure::float8) FROM telco.accounts a) t;

\echo
\echo '## 7. The same segmentation as plain SQL, for any engine (segments.to_sql)'
SELECT segments.to_sql('contract');

\echo
\echo '## 8. Coverage and quality of the value segmentation'
SELECT segment, path, accounts, round(100 * share::numeric, 1) AS pct, shadowed, below_min_size
FROM segments.coverage('value');

\echo
\echo '## 9. Membership over time: refresh, ten accounts change contract, refresh again'
CREATE TABLE telco.live AS SELECT customer_id, contract, monthly_charges, tenure, churned FROM telco.customers;
ALTER TABLE telco.live ADD PRIMARY KEY (customer_id);
INSERT INTO segments.segmentation (name, source, key_column, description)
VALUES ('plan', 'telco.live', 'customer_id', 'Contract, tracked over time');
INSERT INTO segments.segment (segmentation, name, priority, rule)
SELECT 'plan', name, priority, rule FROM segments.segment WHERE segmentation = 'contract';
SELECT 'first refresh' AS step, * FROM segments.refresh('plan');
SELECT clock_timestamp() AS before_change \gset
UPDATE telco.live SET contract = 'One year'
WHERE customer_id IN (SELECT customer_id FROM telco.live WHERE contract = 'Month-to-month' ORDER BY customer_id LIMIT 10);
SELECT 'after 10 upgrades' AS step, * FROM segments.refresh('plan');
\echo 'Migration matrix between the two refreshes:'
SELECT coalesce(from_segment, '(entered)') AS from_segment, coalesce(to_segment, '(left)') AS to_segment, accounts
FROM segments.transitions('plan', :'before_change', now() + interval '1 minute');

\echo
\echo '## 10. Segments discovered by k-means (tenure, monthly charges; standardized)'
SELECT segment, size, round(centroid[1]::numeric, 1) AS tenure_months, round(centroid[2]::numeric, 2) AS monthly_charges
FROM segments.segmentation_from_clusters('clusters', 'telco.customers', 'customer_id',
                                         ARRAY['tenure', 'monthly_charges'], 4, seed => 1)
ORDER BY segment;
SELECT segments.segment_of(c, 'clusters') AS segment, count(*) AS accounts,
       round(100 * segments.churn_rate(churned)::numeric, 1) AS churn_pct
FROM telco.customers c GROUP BY 1 ORDER BY 1;

\echo
\echo '## 11. Customer lifetime value on CDNOW (BG/NBD + Gamma-Gamma, fitted in the database)'
CREATE TABLE cdnow.rfm AS
SELECT customer_id, (segments.rfm(order_date, amount, '1997-09-30')).* FROM cdnow.orders GROUP BY 1;
CREATE TABLE cdnow.fits AS
SELECT (SELECT segments.bgnbd_fit(frequency, recency, t) FROM cdnow.rfm) AS bg,
       (SELECT segments.gamma_gamma_fit(frequency, monetary) FROM cdnow.rfm) AS gg;
SELECT round((bg).r::numeric, 3) AS r, round((bg).alpha::numeric, 3) AS alpha, round((bg).a::numeric, 3) AS a,
       round((bg).b::numeric, 3) AS b, round((gg).p::numeric, 2) AS p, round((gg).q::numeric, 2) AS q,
       round((gg).v::numeric, 2) AS v
FROM cdnow.fits;
\echo 'Top 10 customers by predicted 12-month CLV:'
SELECT customer_id, frequency, round((t - recency)::numeric, 1) AS weeks_since_last,
       round(segments.p_alive(bg, frequency, recency, t)::numeric, 3) AS p_alive,
       round(segments.predicted_clv(bg, gg, frequency, recency, t, monetary, 12, 0.01)::numeric, 2) AS clv_12m
FROM cdnow.rfm, cdnow.fits
ORDER BY 5 DESC, 1 LIMIT 10;

\echo
\echo '## 12. Health over time on the UCI Online Retail transactions (Dec 2010 - Dec 2011)'
\echo 'Monthly snapshots of every customer (value of the last 90 days, country), history backfilled from them,'
\echo 'then a monthly series: customers, revenue, logo churn and moves between value tiers.'
\if :{?retail}
CREATE SCHEMA retail;
CREATE TABLE retail.lines (invoice text, stock_code text, description text, quantity integer,
                           invoiced_at timestamp, unit_price numeric, customer_id integer, country text);
\copy retail.lines FROM PROGRAM 'gzip -dc "$PG_SEGMENTS_RETAIL_CSV"' CSV HEADER
-- a snapshot on the 1st of each month: each customer who has bought before, the value of the last 90 days
-- (cancellations included), and the country; "ARR" is that value × 4
CREATE TABLE retail.snapshots AS
WITH months AS (SELECT m::timestamptz AS month FROM generate_series(timestamp '2011-01-01', '2011-12-01', '1 month') m),
customers AS (SELECT customer_id, min(invoiced_at) AS first_order, max(country) AS country
              FROM retail.lines WHERE customer_id IS NOT NULL GROUP BY 1)
SELECT c.customer_id, m.month, c.country,
       round(coalesce(sum(l.quantity * l.unit_price), 0), 2) AS value_90d,
       greatest(round(coalesce(sum(l.quantity * l.unit_price), 0), 2), 0) * 4 AS arr
FROM months m JOIN customers c ON c.first_order < m.month
LEFT JOIN retail.lines l ON l.customer_id = c.customer_id AND l.invoiced_at >= m.month - interval '90 days'
                        AND l.invoiced_at < m.month
GROUP BY 1, 2, 3;
CREATE TABLE retail.customers AS SELECT customer_id, country, value_90d, arr FROM retail.snapshots WHERE month = '2011-12-01';
ALTER TABLE retail.customers ADD PRIMARY KEY (customer_id);
SELECT count(*) AS lines, count(DISTINCT customer_id) AS customers,
       (SELECT count(*) FROM retail.snapshots) AS snapshot_rows FROM retail.lines;

INSERT INTO segments.segmentation (name, source, key_column, default_segment, min_segment_size, gross_margin,
                                   arr_facts, arr_facts_time, arr_facts_value, description)
VALUES ('retail_value', 'retail.customers', 'customer_id', 'Lapsed', 50, 0.3,
        'retail.snapshots', 'month', 'arr', 'Value of the last 90 days, then home market');
INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
  ('retail_value', 'High value', NULL, 1, '{"attr": "value_90d", "op": ">=", "value": 2000}'),
  ('retail_value', 'High value UK', 'High value', 1, '{"attr": "country", "op": "=", "value": "United Kingdom"}'),
  ('retail_value', 'High value abroad', 'High value', 2, 'true'),
  ('retail_value', 'Mid value', NULL, 2, '{"attr": "value_90d", "op": ">=", "value": 500}'),
  ('retail_value', 'Low value', NULL, 3, '{"attr": "value_90d", "op": ">", "value": 0}');
SELECT * FROM segments.backfill('retail_value', 'retail.snapshots', 'month');
\echo 'Top-level tiers month by month (the cohort each tier held at the month''s start):'
SELECT period_start::date AS month, segment, accounts, entered, exited,
       round(arr_start / 4) AS value_90d_at_start, round(100 * churn_rate::numeric, 1) AS churn_pct,
       round(nrr::numeric, 3) AS nrr
FROM segments.health_series('retail_value', '2011-01-01', '2011-12-01')
WHERE level = 1 AND segment <> 'Lapsed' ORDER BY 1, segment;
\echo 'High value customers, UK vs abroad, by quarter:'
SELECT period_start::date AS quarter, segment, accounts, round(100 * churn_rate::numeric, 1) AS churn_pct,
       round(100 * churn_lower::numeric, 1) AS churn_lower, round(100 * churn_upper::numeric, 1) AS churn_upper
FROM segments.health_series('retail_value', '2011-01-01', '2011-10-01', '3 months')
WHERE parent = 'High value' ORDER BY 1, 2;
\echo 'Moves between tiers in November 2011 (customers and their 90-day value at the start):'
SELECT coalesce(from_segment, '(new)') AS from_segment, to_segment, accounts, round(arr_start / 4) AS value_90d
FROM segments.migration_series('retail_value', '2011-11-01', '2011-12-01')
WHERE from_segment IS DISTINCT FROM to_segment ORDER BY accounts DESC LIMIT 8;
\else
\echo 'skipped: the Online Retail file was not found (bin/demo looks for ../shared/data/online_retail.csv.gz, or set PG_SEGMENTS_RETAIL_CSV)'
\endif

\echo
\echo '## 13. Predictive segmentation on Telco: a churn model, an At-Risk segment, a churn tree, honest evaluation'
\echo 'A 60/20/20 hash split; a logistic regression of churn fitted on the train arm (coefficients as statsmodels gives them):'
CREATE VIEW telco.train AS SELECT * FROM telco.customers
WHERE segments.split(customer_id, ARRAY['train', 'validation', 'test'], ARRAY[0.6, 0.2, 0.2]) = 'train';
CREATE TABLE telco.models AS SELECT 'churn' AS name, segments.logistic_regression('telco.train', 'churned',
    ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service', 'payment_method', 'paperless_billing', 'senior_citizen']) AS model;
SELECT c ->> 'term' AS term, round((c ->> 'estimate')::numeric, 4) AS estimate, round((c ->> 'odds_ratio')::numeric, 3) AS odds_ratio,
       round((c ->> 'p_value')::numeric, 4) AS p_value
FROM telco.models, jsonb_array_elements(model -> 'coefficients') c;
\echo 'Measured on the test arm (never seen by the fit): AUC with its 95% interval, log loss, Brier score:'
CREATE VIEW telco.test_scores AS
SELECT c.customer_id, c.churned, c.contract, segments.score(c, m.model) AS risk FROM telco.customers c, telco.models m
WHERE segments.split(c.customer_id, ARRAY['train', 'validation', 'test'], ARRAY[0.6, 0.2, 0.2]) = 'test';
SELECT round((a).estimate::numeric, 3) AS auc, round((a).lower::numeric, 3) AS lower, round((a).upper::numeric, 3) AS upper,
       (a).n AS accounts, round(log_loss::numeric, 3) AS log_loss, round(brier::numeric, 3) AS brier
FROM (SELECT segments.auc_ci(risk, churned) AS a, segments.log_loss(risk, churned), segments.brier(risk, churned)
      FROM telco.test_scores) e;
\echo 'Gains by score decile on the test arm:'
SELECT (g ->> 'group')::int AS decile, (g ->> 'rows')::int AS accounts, (g ->> 'positives')::int AS churned,
       round((g ->> 'lift')::numeric, 2) AS lift, round((g ->> 'cumulative_gain')::numeric, 2) AS cumulative_gain
FROM (SELECT segments.gains(risk, churned, 10) AS t FROM telco.test_scores) x, jsonb_array_elements(t) g;
\echo 'An At-Risk segment whose rule is the model (score >= 0.6), and its health:'
INSERT INTO segments.segmentation (name, source, key_column, churned_column) VALUES ('risk', 'telco.customers', 'customer_id', 'churned');
INSERT INTO segments.segment (segmentation, name, priority, rule)
SELECT 'risk', 'At-Risk', 1, jsonb_build_object('score', model, 'op', '>=', 'value', 0.6) FROM telco.models
UNION ALL SELECT 'risk', 'Watch', 2, jsonb_build_object('score', model, 'op', '>=', 'value', 0.3) FROM telco.models;
SELECT segment, accounts, round(churn_rate::numeric, 3) AS churn_rate FROM segments.health('risk') ORDER BY churn_rate DESC;
\echo 'A churn tree (depth 3, leaves of at least 100 accounts) saved as a segmentation with readable rules:'
SELECT segment, rows AS accounts, round(outcome_rate::numeric, 3) AS churn_rate
FROM segments.segmentation_from_tree('churn_tree', 'telco.customers', 'customer_id', 'churned',
    ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service', 'payment_method', 'paperless_billing', 'senior_citizen'],
    max_depth => 3, min_leaf => 100)
WHERE leaf ORDER BY outcome_rate DESC;
\echo 'What is special about the riskiest leaf (vs every other account), strongest evidence first:'
SELECT attribute, level, round(segment_value::numeric, 3) AS leaf, round(rest_value::numeric, 3) AS rest,
       round(lift::numeric, 2) AS lift, test, round(statistic::numeric, 1) AS statistic
FROM segments.profile('churn_tree', 'contract = Month-to-month & internet_service = Fiber optic & tenure ≤ 15.5',
                      ARRAY['monthly_charges', 'payment_method', 'paperless_billing', 'senior_citizen', 'tech_support', 'gender'])
LIMIT 12;
