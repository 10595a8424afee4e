-- Aggregates on distributed tables: those with array states and combine functions run as partial aggregates
-- on the workers, also with citus.coordinator_aggregation_strategy = 'disabled'. Citus calls their transition
-- functions without a calling expression: the overloads of each argument type (numeric and int8 scores, dates)
-- read their datums by the declared types.
SET client_min_messages = warning;
-- the shard queries run in the workers' sessions (Citus does not pass TimeZone on): one zone everywhere
SET TimeZone = 'UTC';
CREATE VIEW public.metrics_by_contract_dist AS
SELECT segments.segment_of(c, 'contract_dist') AS segment, count(*) AS accounts,
       segments.churn_rate(churned) AS churn_rate, (segments.churn_rate_ci(churned)).*,
       segments.nps((tenure % 11)::int) AS nps, (segments.nps_ci((tenure % 11)::int, 0.9)).estimate AS nps_ci_90,
       (segments.win_rate(partner)).estimate AS win_rate,
       segments.nrr(total_charges, total_charges + monthly_charges) AS nrr,
       segments.grr(total_charges, total_charges - monthly_charges) AS grr,
       segments.arr_growth(total_charges, total_charges + monthly_charges) AS arr_growth,
       segments.clv(monthly_charges, 0.7, churned) AS clv,
       extract(epoch FROM segments.time_to_close(last_seen - tenure * interval '1 day', last_seen, 0.9)) AS p90_seconds,
       segments.time_to_close(last_seen::date - tenure, last_seen::date, ARRAY[0.25, 0.75])::text AS quartile_days,
       segments.nps((tenure % 11)::numeric) AS nps_of_numeric, segments.nps((tenure % 11)::int8) AS nps_of_int8
FROM dist.customers c GROUP BY 1;
CREATE VIEW public.metrics_by_contract_local AS
SELECT segments.segment_of(c, 'contract_local') AS segment, count(*) AS accounts,
       segments.churn_rate(churned) AS churn_rate, (segments.churn_rate_ci(churned)).*,
       segments.nps((tenure % 11)::int) AS nps, (segments.nps_ci((tenure % 11)::int, 0.9)).estimate AS nps_ci_90,
       (segments.win_rate(partner)).estimate AS win_rate,
       segments.nrr(total_charges, total_charges + monthly_charges) AS nrr,
       segments.grr(total_charges, total_charges - monthly_charges) AS grr,
       segments.arr_growth(total_charges, total_charges + monthly_charges) AS arr_growth,
       segments.clv(monthly_charges, 0.7, churned) AS clv,
       extract(epoch FROM segments.time_to_close(last_seen - tenure * interval '1 day', last_seen, 0.9)) AS p90_seconds,
       segments.time_to_close(last_seen::date - tenure, last_seen::date, ARRAY[0.25, 0.75])::text AS quartile_days,
       segments.nps((tenure % 11)::numeric) AS nps_of_numeric, segments.nps((tenure % 11)::int8) AS nps_of_int8
FROM local.customers c GROUP BY 1;
SELECT segment, accounts, round(churn_rate::numeric, 4) AS churn_rate, round(nps::numeric, 2) AS nps
FROM public.metrics_by_contract_dist ORDER BY 1;
SELECT * FROM disagreements('SELECT * FROM public.metrics_by_contract_dist', 'SELECT * FROM public.metrics_by_contract_local', 'segment');
SET citus.coordinator_aggregation_strategy = 'disabled';
SELECT * FROM disagreements('SELECT * FROM public.metrics_by_contract_dist', 'SELECT * FROM public.metrics_by_contract_local', 'segment');
-- the workers aggregate: each shard sends one partial state per segment
SELECT plan ~ 'worker_partial_agg' AS partial_on_workers, plan ~ 'coord_combine_agg' AS combined_on_coordinator
FROM plan_of('SELECT segment, churn_rate, nrr, clv FROM public.metrics_by_contract_dist') plan;
-- the evaluation aggregates and model fits keep their rows in a float8[]: the workers collect, the coordinator
-- concatenates (AUC, log loss, Brier, calibration and gains by segment; the lifetime fits below). Gains and
-- calibration split tied scores at a group boundary by input order, which differs between nodes: untied scores here
SELECT * FROM disagreements(
  $$SELECT segments.segment_of(c, 'contract_dist') AS k, segments.auc(monthly_charges::float8, churned) AS auc,
           (segments.auc_ci(monthly_charges::float8, churned, 0.9)).*, segments.log_loss(0.4, churned) AS log_loss,
           segments.brier(0.3, churned) AS brier, segments.calibration((monthly_charges::float8 + (abs(hashtext(customer_id)) % 1000003) * 1e-9) / 200, churned, 4) AS calibration,
           segments.gains(monthly_charges::float8 + (abs(hashtext(customer_id)) % 1000003) * 1e-9, churned, 5) AS gains
    FROM dist.customers c GROUP BY 1$$,
  $$SELECT segments.segment_of(c, 'contract_local') AS k, segments.auc(monthly_charges::float8, churned) AS auc,
           (segments.auc_ci(monthly_charges::float8, churned, 0.9)).*, segments.log_loss(0.4, churned) AS log_loss,
           segments.brier(0.3, churned) AS brier, segments.calibration((monthly_charges::float8 + (abs(hashtext(customer_id)) % 1000003) * 1e-9) / 200, churned, 4) AS calibration,
           segments.gains(monthly_charges::float8 + (abs(hashtext(customer_id)) % 1000003) * 1e-9, churned, 5) AS gains
    FROM local.customers c GROUP BY 1$$, 'k');
SELECT plan ~ 'worker_partial_agg' AS partial_on_workers
FROM plan_of($$SELECT segments.auc(monthly_charges::float8, churned) FROM dist.customers$$) plan;
-- separation (moments by segment) and rfm keep an internal value, which Citus does not ship: refused here ...
SELECT * FROM error_of($$SELECT segments.separation(segments.segment_of(c, 'contract_dist'), monthly_charges::float8) FROM dist.customers c$$);
RESET citus.coordinator_aggregation_strategy;
-- ... and by default gathers their rows to the coordinator, with the same answer: F and eta² to 1e-12; the
-- p-value, a tail probability near 1e-7, to 1e-9 (its relative error is F's, times |d ln p / dF| ~ 100)
SELECT * FROM disagreements(
  $$SELECT 1 AS k, f, eta_squared, df_between, df_within FROM (SELECT (segments.separation(segments.segment_of(c, 'contract_dist'), monthly_charges::float8)).* FROM dist.customers c) s$$,
  $$SELECT 1 AS k, f, eta_squared, df_between, df_within FROM (SELECT (segments.separation(segments.segment_of(c, 'contract_local'), monthly_charges::float8)).* FROM local.customers c) s$$, 'k');
SELECT abs(d.p_value - l.p_value) <= 1e-9 * l.p_value AS p_value_agrees
FROM (SELECT (segments.separation(segments.segment_of(c, 'contract_dist'), monthly_charges::float8)).* FROM dist.customers c) d,
     (SELECT (segments.separation(segments.segment_of(c, 'contract_local'), monthly_charges::float8)).* FROM local.customers c) l;

-- kmeans and choose_k: the same clusters for a seed whatever order the shards return rows in
SELECT * FROM differences(
  $$SELECT * FROM segments.kmeans('dist.mall', ARRAY['income', 'spending_score'], 5, 42)$$,
  $$SELECT * FROM segments.kmeans('local.mall', ARRAY['income', 'spending_score'], 5, 42)$$);
SELECT * FROM differences(
  $$SELECT * FROM segments.choose_k('dist.mall', ARRAY['income', 'spending_score'], 2, 6, 7)$$,
  $$SELECT * FROM segments.choose_k('local.mall', ARRAY['income', 'spending_score'], 2, 6, 7)$$);
SELECT cluster, size FROM segments.kmeans('dist.mall', ARRAY['income', 'spending_score'], 5, 42) ORDER BY cluster;

-- a logistic model scored on the shards (score() is IMMUTABLE: it runs in the shard queries)
CREATE TABLE public.churn_model AS
SELECT segments.logistic_regression('local.customers', 'churned', ARRAY['tenure', 'monthly_charges', 'contract']) AS model;
SELECT * FROM disagreements(
  $$SELECT customer_id, segments.score(c, (SELECT model FROM public.churn_model)) AS p FROM dist.customers c$$,
  $$SELECT customer_id, segments.score(c, (SELECT model FROM public.churn_model)) AS p FROM local.customers c$$, 'customer_id');

-- a logistic model fitted on the distributed table: the same model to rounding (the fit's sums add the rows in
-- the order the shards send them), so coefficients to 1e-9 relative; a churn tree: the same leaves and rules
WITH d AS (SELECT segments.logistic_regression('dist.customers', 'churned', ARRAY['tenure', 'monthly_charges', 'contract']) AS m),
     l AS (SELECT model AS m FROM public.churn_model),
     pairs AS (SELECT (dc ->> 'estimate')::float8 AS d, (lc ->> 'estimate')::float8 AS l,
                      (dc ->> 'std_error')::float8 AS d_se, (lc ->> 'std_error')::float8 AS l_se
               FROM d, l, jsonb_array_elements(d.m -> 'coefficients') dc
               JOIN jsonb_array_elements(l.m -> 'coefficients') lc ON lc ->> 'term' = dc ->> 'term')
SELECT count(*) AS coefficients, bool_and(abs(d - l) <= 1e-9 * abs(l) AND abs(d_se - l_se) <= 1e-9 * l_se) AS agree FROM pairs;
CREATE TEMP TABLE tree_dist AS SELECT segment, parent, depth, leaf, rows, positives
FROM segments.segmentation_from_tree('tree_dist', 'dist.customers', 'customer_id', 'churned',
     ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service'], max_depth => 3, min_leaf => 100);
CREATE TEMP TABLE tree_local AS SELECT segment, parent, depth, leaf, rows, positives
FROM segments.segmentation_from_tree('tree_local', 'local.customers', 'customer_id', 'churned',
     ARRAY['tenure', 'monthly_charges', 'contract', 'internet_service'], max_depth => 3, min_leaf => 100);
SELECT count(*) AS nodes, count(*) FILTER (WHERE leaf) AS leaves FROM tree_dist;
SELECT * FROM differences('SELECT * FROM tree_dist', 'SELECT * FROM tree_local');
SELECT * FROM differences($$SELECT name, parent, rule FROM segments.segment WHERE segmentation = 'tree_dist'$$,
                          $$SELECT name, parent, rule FROM segments.segment WHERE segmentation = 'tree_local'$$);
SELECT * FROM differences($$SELECT segments.segment_of(c, 'tree_dist'), count(*) FROM dist.customers c GROUP BY 1$$,
                          $$SELECT segments.segment_of(c, 'tree_local'), count(*) FROM local.customers c GROUP BY 1$$);

-- the lifetime fits on a distributed CDNOW summary (2,357 customers): rows collected on the workers and
-- concatenated; the likelihood sums the rows in another order, so parameters to 1e-6 relative
CREATE TABLE dist.cdnow AS SELECT * FROM cdnow.summary_spend;
SELECT create_distributed_table('dist.cdnow', 'customer_id', shard_count := 32);
SET citus.coordinator_aggregation_strategy = 'disabled';
WITH d AS (SELECT (segments.bgnbd_fit(frequency, recency, t)).* FROM dist.cdnow),
     l AS (SELECT (segments.bgnbd_fit(frequency, recency, t)).* FROM cdnow.summary_spend),
     dg AS (SELECT (segments.gamma_gamma_fit(frequency, monetary)).* FROM dist.cdnow WHERE frequency > 0),
     lg AS (SELECT (segments.gamma_gamma_fit(frequency, monetary)).* FROM cdnow.summary_spend WHERE frequency > 0)
SELECT d.n AS customers, d.n = l.n AND dg.n = lg.n AS same_rows,
       abs(d.r - l.r) <= 1e-6 * l.r AND abs(d.alpha - l.alpha) <= 1e-6 * l.alpha
       AND abs(d.a - l.a) <= 1e-6 * l.a AND abs(d.b - l.b) <= 1e-6 * l.b AS bgnbd_agrees,
       abs(dg.p - lg.p) <= 1e-6 * lg.p AND abs(dg.q - lg.q) <= 1e-6 * lg.q AND abs(dg.v - lg.v) <= 1e-6 * lg.v AS gamma_gamma_agrees
FROM d, l, dg, lg;
RESET citus.coordinator_aggregation_strategy;
