-- Predictive segmentation: a churn model fitted in the database (checked against statsmodels and scikit-learn
-- in tests/scripts/predictive.sh), stored as a value, scored per row in any query, explained, and used in rules.
SET extra_float_digits = 0;
CREATE TABLE telco.models (name text PRIMARY KEY, model jsonb NOT NULL);
INSERT INTO telco.models
SELECT 'churn', segments.logistic_regression('telco.customers', 'churned',
    ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service', 'payment_method', 'paperless_billing', 'senior_citizen']);
SELECT model ->> 'rows' AS rows, model ->> 'rows_dropped' AS dropped, model ->> 'converged' AS converged,
       model ->> 'iterations' AS iterations, round((model ->> 'pseudo_r2')::numeric, 4) AS pseudo_r2,
       round((model ->> 'aic')::numeric, 2) AS aic
FROM telco.models;
SELECT c ->> 'term' AS term, round((c ->> 'estimate')::numeric, 5) AS estimate, round((c ->> 'std_error')::numeric, 5) AS std_error,
       round((c ->> 'odds_ratio')::numeric, 4) AS odds_ratio, (c ->> 'p_value')::float8 < 0.05 AS significant
FROM telco.models, jsonb_array_elements(model -> 'coefficients') c;

-- score equals the logistic formula written out in SQL from the stored coefficients, on every account
CREATE VIEW telco.churn_scores AS
SELECT c.customer_id, c.churned, segments.score(c, m.model) AS risk
FROM telco.customers c, telco.models m WHERE m.name = 'churn';
WITH b AS (SELECT jsonb_object_agg(x ->> 'term', (x ->> 'estimate')::float8) AS b FROM telco.models, jsonb_array_elements(model -> 'coefficients') x),
by_hand AS (
    SELECT c.customer_id, 1 / (1 + exp(-(
        (b ->> '(intercept)')::float8 + (b ->> 'tenure')::float8 * c.tenure + (b ->> 'monthly_charges')::float8 * c.monthly_charges
        + coalesce((b ->> ('contract=' || c.contract))::float8, 0) + coalesce((b ->> ('internet_service=' || c.internet_service))::float8, 0)
        + coalesce((b ->> ('payment_method=' || c.payment_method))::float8, 0)
        + (b ->> 'paperless_billing')::float8 * c.paperless_billing::int + (b ->> 'senior_citizen')::float8 * c.senior_citizen::int))) AS p
    FROM telco.customers c, b)
SELECT count(*) AS accounts, max(abs(s.risk - h.p)) < 1e-12 AS same_as_by_hand
FROM telco.churn_scores s JOIN by_hand h USING (customer_id);
-- the mean score equals the churn rate (a property of maximum likelihood with an intercept)
SELECT round(avg(risk)::numeric, 10) = round(avg(churned::int)::numeric, 10) AS calibrated_in_the_large FROM telco.churn_scores;
-- the At-Risk accounts and why one of them is
SELECT count(*) FILTER (WHERE risk >= 0.6) AS at_risk, count(*) FILTER (WHERE risk >= 0.6 AND churned) AS at_risk_churned
FROM telco.churn_scores;
SELECT round((e ->> 'probability')::numeric, 6) AS probability, round((e ->> 'log_odds')::numeric, 6) AS log_odds,
       x ->> 'term' AS term, x ->> 'value' AS value, round((x ->> 'contribution')::numeric, 6) AS contribution
FROM telco.customers c, telco.models m, segments.explain_score(c, m.model) e, jsonb_array_elements(e -> 'contributions') x
WHERE c.customer_id = '7590-VHVEG' AND m.name = 'churn';
-- parallel plans score the same
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
SELECT count(*) FILTER (WHERE risk >= 0.6) AS at_risk_in_parallel FROM telco.churn_scores;
RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size;

-- NULLs: a row with a NULL feature is left out of the fit (counted) and scores NULL; a level unseen in
-- training scores NULL too
CREATE TABLE telco.sparse AS SELECT customer_id, churned, CASE WHEN tenure % 10 = 0 THEN NULL ELSE tenure END AS tenure,
    contract FROM telco.customers;
SELECT (m ->> 'rows')::int AS rows, (m ->> 'rows_dropped')::int AS dropped,
       (SELECT count(*) FROM telco.sparse WHERE tenure IS NULL) AS null_tenure
FROM (SELECT segments.logistic_regression('telco.sparse', 'churned', ARRAY['tenure', 'contract']) AS m) f;
SELECT segments.score(s, segments.logistic_regression('telco.sparse', 'churned', ARRAY['tenure', 'contract'])) IS NULL AS null_score
FROM telco.sparse s WHERE tenure IS NULL LIMIT 1;
CREATE TABLE telco.unseen AS SELECT * FROM telco.customers ORDER BY customer_id LIMIT 3;
UPDATE telco.unseen SET contract = 'Three year' WHERE customer_id = (SELECT min(customer_id) FROM telco.unseen);
SELECT u.contract, segments.score(u, m.model) IS NULL AS null_score FROM telco.unseen u, telco.models m ORDER BY 1;

-- Bad input: clear errors, never a crash
CREATE TABLE telco.bad AS SELECT customer_id, churned, tenure, true AS always, 1 AS one, tenure > 30 AS long_tenure,
    (tenure * 2)::float8 AS double_tenure FROM telco.customers;
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'always', ARRAY['tenure'])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'long_tenure', ARRAY['tenure'])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'churned', ARRAY['tenure', 'double_tenure'])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'churned', ARRAY['one'])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'tenure', ARRAY['one'])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'churned', ARRAY['nope'])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'churned', ARRAY[NULL])$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.logistic_regression('telco.bad', 'churned', ARRAY['tenure'], l2 => -1)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.score(b, (SELECT model FROM telco.models)) FROM telco.bad b$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.score(c, '{"model": "tree"}') FROM telco.customers c$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.score(c, '[1, 2]') FROM telco.customers c$$);

-- Honest evaluation: a stable hash split, fit on train, measure on test (scikit-learn agrees to 1e-12 in
-- tests/scripts/predictive.sh)
SELECT segments.split(customer_id, ARRAY['train', 'validation', 'test'], ARRAY[0.6, 0.2, 0.2]) AS arm, count(*)
FROM telco.customers GROUP BY 1 ORDER BY 1;
SELECT segments.split('0002-ORFBO') AS default_split, segments.split('0002-ORFBO', salt => 'other') AS other_salt,
       segments.split('x', ARRAY['a', 'b'], ARRAY[0, 1]) AS all_weight_on_b;
CREATE VIEW telco.train AS SELECT * FROM telco.customers
WHERE segments.split(customer_id, ARRAY['train', 'validation', 'test'], ARRAY[0.6, 0.2, 0.2]) = 'train';
INSERT INTO telco.models SELECT 'churn_train', segments.logistic_regression('telco.train', 'churned',
    ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service', 'payment_method', 'paperless_billing', 'senior_citizen']);
CREATE VIEW telco.holdout AS
SELECT segments.split(c.customer_id, ARRAY['train', 'validation', 'test'], ARRAY[0.6, 0.2, 0.2]) AS arm, c.contract, c.churned,
       segments.score(c, m.model) AS risk
FROM telco.customers c, telco.models m WHERE m.name = 'churn_train';
SELECT arm, round(segments.auc(risk, churned)::numeric, 4) AS auc, round((segments.auc_ci(risk, churned)).lower::numeric, 4) AS lower,
       round((segments.auc_ci(risk, churned, 0.9)).upper::numeric, 4) AS upper_90,
       round(segments.log_loss(risk, churned)::numeric, 4) AS log_loss, round(segments.brier(risk, churned)::numeric, 4) AS brier
FROM telco.holdout GROUP BY arm ORDER BY arm;
-- AUC equals the share of (churned, stayed) pairs the score orders right, ties half, counted in plain SQL
WITH t AS (SELECT risk, churned FROM telco.holdout WHERE arm = 'test' AND contract = 'One year')
SELECT round(segments.auc(risk, churned)::numeric, 12) = round(
         (SELECT avg(CASE WHEN p.risk > n.risk THEN 1 WHEN p.risk = n.risk THEN 0.5 ELSE 0 END)
          FROM t p, t n WHERE p.churned AND NOT n.churned)::numeric, 12) AS auc_is_the_pair_share
FROM t;
SELECT contract, round(segments.auc(risk, churned)::numeric, 4) AS auc FROM telco.holdout WHERE arm = 'test' GROUP BY 1 ORDER BY 1;
SELECT (g ->> 'group')::int AS decile, (g ->> 'rows')::int AS rows, (g ->> 'positives')::int AS churned,
       round((g ->> 'lift')::numeric, 3) AS lift, round((g ->> 'cumulative_gain')::numeric, 3) AS cumulative_gain
FROM (SELECT segments.gains(risk, churned, 10) AS t FROM telco.holdout WHERE arm = 'test') x, jsonb_array_elements(t) g;
-- the same deciles in plain SQL
SELECT decile, count(*) AS rows, count(*) FILTER (WHERE churned) AS churned
FROM (SELECT ntile(10) OVER (ORDER BY risk DESC) AS decile, churned FROM telco.holdout WHERE arm = 'test') d
GROUP BY 1 ORDER BY 1;
SELECT (g ->> 'group')::int AS quintile, round((g ->> 'mean_score')::numeric, 3) AS predicted,
       round((g ->> 'observed_rate')::numeric, 3) AS observed
FROM (SELECT segments.calibration(risk, churned, 5) AS t FROM telco.holdout WHERE arm = 'test') x, jsonb_array_elements(t) g;
SELECT segments.auc(risk, churned) IS NULL AS no_rows_no_auc FROM telco.holdout WHERE false;
SELECT sqlstate, message FROM error_of($$SELECT segments.auc(risk, churned) FROM telco.holdout WHERE churned$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.log_loss(risk * 2, churned) FROM telco.holdout$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.auc('NaN', churned) FROM telco.holdout$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.gains(risk, churned, 0) FROM telco.holdout$$);
SELECT sqlstate, message FROM error_of($$SELECT (segments.auc_ci(risk, churned, 1.5)).lower FROM telco.holdout$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.split('x', ARRAY['a'], ARRAY[-1])$$);

-- A churn tree as a segmentation (its leaves equal scikit-learn's in tests/scripts/predictive.sh): readable
-- rules, the tree's levels as the hierarchy, counts in the descriptions; segment_of, to_sql, explain, health
SELECT segment, parent IS NULL AS top, depth, leaf, rows, positives, round(outcome_rate::numeric, 3) AS churn_rate
FROM segments.segmentation_from_tree('churn_tree', 'telco.customers', 'customer_id', 'churned',
    ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service', 'payment_method', 'paperless_billing', 'senior_citizen'],
    max_depth => 3, min_leaf => 100)
ORDER BY depth, segment;
SELECT name, rule FROM segments.segment WHERE segmentation = 'churn_tree' AND parent = 'contract = Month-to-month' ORDER BY name;
SELECT segments.segment_of(c, 'churn_tree') AS leaf, count(*) AS accounts, count(*) FILTER (WHERE churned) AS churned
FROM telco.customers c GROUP BY 1 ORDER BY 1;
DO $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM telco.customers t WHERE (%s) IS DISTINCT FROM segments.segment_of(t, ''churn_tree'')',
                   segments.to_sql('churn_tree')) INTO n;
    RAISE NOTICE 'to_sql disagreements on the tree: %', n;
END $$;
UPDATE segments.segmentation SET churned_column = 'churned' WHERE name = 'churn_tree';
SELECT segment, accounts, round(churn_rate::numeric, 3) AS churn_rate FROM segments.health('churn_tree')
WHERE segment LIKE '%tenure ≤ 15.5%' OR segment = 'Unsegmented' ORDER BY 1;
-- What is special about the riskiest leaf: its attributes against the rest, strongest evidence first
-- (equal to scipy in tests/scripts/predictive.sh)
SELECT attribute, level, round(segment_value::numeric, 3) AS segment, round(rest_value::numeric, 3) AS rest,
       round(lift::numeric, 2) AS lift, test, round(statistic::numeric, 1) AS statistic, round(df::numeric, 1) AS df,
       p_value < 1e-10 AS p_below_1e_10
FROM segments.profile('churn_tree', 'contract = Month-to-month & internet_service = Fiber optic & tenure ≤ 15.5',
                      ARRAY['tenure', 'monthly_charges', 'paperless_billing', 'payment_method', 'gender']);
-- the parent segment is its whole subtree
SELECT round(segment_value::numeric, 3) AS month_to_month_share FROM segments.profile('churn_tree', 'contract = Month-to-month', ARRAY['contract'])
WHERE level = 'Month-to-month';
SELECT attribute, levels, round(statistic::numeric, 1) AS chi2, df, round(cramers_v::numeric, 3) AS cramers_v
FROM segments.association('telco.customers', 'churned') ORDER BY statistic DESC LIMIT 5;
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.profile('churn_tree', 'no such segment')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.association('telco.customers', 'tenure')$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.segmentation_from_tree('churn_tree', 'telco.customers', 'customer_id', 'churned', ARRAY['tenure'])$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.segmentation_from_tree('t2', 'telco.customers', 'customer_id', 'churned', ARRAY['tenure'], max_depth => 0)$$);
SELECT sqlstate, message FROM error_of($$SELECT * FROM segments.segmentation_from_tree('t2', 'telco.customers', 'customer_id', 'churned', ARRAY['tenure'], min_impurity_decrease => -1)$$);
SELECT count(*) AS segments_of_a_tree_that_cannot_split FROM segments.segmentation_from_tree('t3', 'telco.customers', 'customer_id', 'churned', ARRAY['tenure'], min_leaf => 4000);
DELETE FROM segments.segmentation WHERE name IN ('churn_tree', 't3');

-- A model in a rule: the At-Risk segment of the seed material, "churn risk ≥ 0.6", with no hand-built view
INSERT INTO segments.segmentation (name, source, key_column, churned_column) VALUES ('risk', 'telco.customers', 'customer_id', 'churned');
INSERT INTO segments.segment (segmentation, name, priority, rule)
SELECT 'risk', 'At-Risk', 1, jsonb_build_object('score', model, 'op', '>=', 'value', 0.6) FROM telco.models WHERE name = 'churn'
UNION ALL
SELECT 'risk', 'Watch', 2, jsonb_build_object('score', model, 'op', 'between', 'value', jsonb_build_array(0.3, 0.6)) FROM telco.models WHERE name = 'churn';
SELECT segments.segment_of(c, 'risk') AS segment, count(*) AS accounts, count(*) FILTER (WHERE churned) AS churned
FROM telco.customers c GROUP BY 1 ORDER BY 1;
-- the same accounts as scoring in a WHERE clause, and to_sql, classify and refresh agree on every account
SELECT count(*) FILTER (WHERE (segments.segment_of(c, 'risk') = 'At-Risk') IS DISTINCT FROM (segments.score(c, m.model) >= 0.6)) AS differ_from_score
FROM telco.customers c, telco.models m WHERE m.name = 'churn';
SELECT * FROM segments.refresh('risk');
DO $$
DECLARE n bigint;
BEGIN
    EXECUTE format($q$SELECT count(*) FROM telco.customers t
                      LEFT JOIN segments.current_membership m ON m.segmentation = 'risk' AND m.account_key = t.customer_id
                      WHERE (%s) IS DISTINCT FROM segments.segment_of(t, 'risk')
                         OR segments.classify(t, segments.ruleset('risk')) IS DISTINCT FROM segments.segment_of(t, 'risk')
                         OR m.segment IS DISTINCT FROM segments.segment_of(t, 'risk')$q$, segments.to_sql('risk')) INTO n;
    RAISE NOTICE 'score rule disagreements between to_sql, classify, refresh and segment_of: %', n;
END $$;
SELECT e -> 'segments' -> 0 -> 'rule' ->> 'op' AS op, round((e -> 'segments' -> 0 -> 'rule' ->> 'probability')::numeric, 4) AS probability,
       e -> 'segments' -> 0 -> 'rule' ->> 'pass' AS pass
FROM telco.customers c, segments.explain(c, 'risk') e WHERE c.customer_id = '7590-VHVEG';
SELECT segment, accounts, round(churn_rate::numeric, 3) AS churn_rate FROM segments.health('risk') ORDER BY 1;
-- a score rule is checked when saved like any other
SELECT sqlstate, message FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  VALUES ('risk', 'bad', '{"score": {"model": "logistic"}, "op": ">=", "value": 0.5}')$$);
SELECT sqlstate, message FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  SELECT 'risk', 'bad', jsonb_build_object('score', model, 'op', 'matches', 'value', 0.5) FROM telco.models WHERE name = 'churn'$$);
SELECT sqlstate, message FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  SELECT 'risk', 'bad', jsonb_build_object('score', model, 'op', '>=', 'value', 'high') FROM telco.models WHERE name = 'churn'$$);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('risk_bad', 'telco.bad', 'customer_id');
SELECT sqlstate, message FROM error_of($$INSERT INTO segments.segment (segmentation, name, rule)
  SELECT 'risk_bad', 'bad', jsonb_build_object('score', model, 'op', '>=', 'value', 0.5) FROM telco.models WHERE name = 'churn'$$);
DELETE FROM segments.segmentation WHERE name IN ('risk', 'risk_bad');

-- A score over a float column with NaN and infinities: those rows score NULL (the condition is false) in
-- segment_of and in the to_sql text alike
CREATE TABLE telco.odd (id int PRIMARY KEY, x float8, y boolean);
INSERT INTO telco.odd SELECT i, (i % 17) - 8 + (i % 3) * 0.25, (i * 7919) % 10 < 3 + (i % 17) / 4 FROM generate_series(1, 400) i;
INSERT INTO telco.odd VALUES (1001, 'NaN', true), (1002, 'Infinity', true), (1003, '-Infinity', false), (1004, NULL, true);
INSERT INTO segments.segmentation (name, source, key_column) VALUES ('odd', 'telco.odd', 'id');
INSERT INTO segments.segment (segmentation, name, rule)
SELECT 'odd', 'likely', jsonb_build_object('score', segments.logistic_regression('telco.odd', 'y', ARRAY['x']), 'op', '>=', 'value', 0.4);
DO $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM telco.odd t WHERE (%s) IS DISTINCT FROM segments.segment_of(t, ''odd'')', segments.to_sql('odd')) INTO n;
    RAISE NOTICE 'to_sql disagreements on non-finite features: %', n;
END $$;
SELECT id, x, segments.segment_of(t, 'odd') FROM telco.odd t WHERE id > 1000 ORDER BY id;
DELETE FROM segments.segmentation WHERE name = 'odd';
