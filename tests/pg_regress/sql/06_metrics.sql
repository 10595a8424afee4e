-- Health metrics as aggregates, each checked against the same metric written by hand in plain SQL.
-- Telco: churn by contract segment (published figures: 42.71 %, 11.27 %, 2.83 %).
SELECT segments.segment_of(c, 'contract') AS segment, count(*) AS accounts,
       count(*) FILTER (WHERE churned) AS churned,
       round(100 * segments.churn_rate(churned)::numeric, 2) AS churn_pct,
       segments.churn_rate(churned) = (count(*) FILTER (WHERE churned))::float8 / count(*) AS matches_hand_sql
FROM telco.customers c GROUP BY 1 ORDER BY 1;

-- Wilson score interval, against the formula in SQL.
SELECT seg AS segment, round((ci).lower::numeric, 6) AS lower, round((ci).upper::numeric, 6) AS upper, (ci).n,
       abs((ci).lower - lo) < 1e-12 AND abs((ci).upper - hi) < 1e-12 AS matches_formula
FROM (SELECT seg, ci, ((p + z*z/(2*n)) - z * sqrt(p*(1-p)/n + z*z/(4*n*n))) / (1 + z*z/n) AS lo,
             ((p + z*z/(2*n)) + z * sqrt(p*(1-p)/n + z*z/(4*n*n))) / (1 + z*z/n) AS hi
      FROM (SELECT segments.segment_of(c, 'contract') AS seg, segments.churn_rate_ci(churned) AS ci,
                   count(*) FILTER (WHERE churned)::float8 / count(*) AS p, count(*)::float8 AS n,
                   1.959963984540054::float8 AS z
            FROM telco.customers c GROUP BY 1) s) t
ORDER BY 1;
SELECT round(((segments.churn_rate_ci(churned, 0.99)).lower)::numeric, 6) AS lower_99,
       round(((segments.churn_rate_ci(churned, 0.5)).upper)::numeric, 6) AS upper_50
FROM telco.customers;

-- Revenue: ARR now = monthly_charges × 12; ARR a period ago = average monthly charge over tenure × 12;
-- churned accounts have no ARR now.
CREATE VIEW telco.revenue AS
SELECT customer_id, contract, churned,
       CASE WHEN tenure > 0 THEN round(total_charges / tenure * 12, 2) END AS arr_start,
       CASE WHEN NOT churned THEN monthly_charges * 12 END AS arr_end
FROM telco.customers;

SELECT contract,
       round(segments.nrr(arr_start, arr_end)::numeric, 6) AS nrr,
       round(segments.grr(arr_start, arr_end)::numeric, 6) AS grr,
       round(segments.arr_growth(arr_start, arr_end)::numeric, 6) AS arr_growth
FROM telco.revenue GROUP BY 1 ORDER BY 1;

-- The same three by hand; relative difference below 1e-12.
SELECT r.contract,
       abs(r.nrr / h.nrr - 1) < 1e-12 AS nrr_ok, abs(r.grr / h.grr - 1) < 1e-12 AS grr_ok,
       abs(r.growth / h.growth - 1) < 1e-12 AS growth_ok
FROM (SELECT contract, segments.nrr(arr_start, arr_end) AS nrr, segments.grr(arr_start, arr_end) AS grr,
             segments.arr_growth(arr_start, arr_end) AS growth FROM telco.revenue GROUP BY 1) r
JOIN (SELECT contract,
             (sum(coalesce(arr_end, 0)) FILTER (WHERE arr_start > 0) / sum(arr_start) FILTER (WHERE arr_start > 0))::float8 AS nrr,
             (sum(least(coalesce(arr_end, 0), arr_start)) FILTER (WHERE arr_start > 0) / sum(arr_start) FILTER (WHERE arr_start > 0))::float8 AS grr,
             ((sum(coalesce(arr_end, 0)) - sum(coalesce(arr_start, 0))) / sum(coalesce(arr_start, 0)))::float8 AS growth
      FROM telco.revenue GROUP BY 1) h USING (contract)
ORDER BY 1;

-- NPS on a deterministic survey of 1000 answers, and its interval (multinomial variance).
CREATE TABLE telco.survey AS
SELECT i AS id, (ARRAY['A', 'B', 'C'])[1 + i % 3] AS team, (i * 7919) % 11 AS score,
       date '2024-01-01' + (i % 12) * interval '1 month' AS month
FROM generate_series(1, 1000) i;
UPDATE telco.survey SET score = NULL WHERE id % 50 = 0;

SELECT team, segments.nps(score) AS nps,
       100.0 * (count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6)) / count(score) AS hand_nps,
       round(((segments.nps_ci(score)).lower)::numeric, 6) AS lower, round(((segments.nps_ci(score)).upper)::numeric, 6) AS upper
FROM telco.survey GROUP BY 1 ORDER BY 1;
SELECT team, abs((ci).upper - (ci).estimate - z * 100 * sqrt((p + d - (p - d) ^ 2) / n)) < 1e-9 AS interval_ok
FROM (SELECT team, segments.nps_ci(score) AS ci, 1.959963984540054 AS z, count(score)::float8 AS n,
             count(*) FILTER (WHERE score >= 9)::float8 / count(score) AS p,
             count(*) FILTER (WHERE score <= 6)::float8 / count(score) AS d
      FROM telco.survey GROUP BY 1) s ORDER BY 1;
-- smallint, bigint and numeric scores give what integer scores give; a numeric answer is a whole number
SELECT team, segments.nps(score::smallint) = segments.nps(score) AS smallint_same,
       segments.nps(score::bigint) = segments.nps(score) AS bigint_same,
       segments.nps(score::numeric) = segments.nps(score) AS numeric_same,
       segments.nps_ci(score::numeric) = segments.nps_ci(score) AS ci_same,
       segments.nps_ci(score::smallint, 0.9) = segments.nps_ci(score, 0.9) AS ci_90_same
FROM telco.survey GROUP BY 1 ORDER BY 1;
SELECT segments.nps(x) AS numeric_nps FROM (VALUES (9.0), (10), (3)) v(x);
SELECT sqlstate, message FROM error_of($$SELECT segments.nps(9.5)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.nps(11::bigint)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.nps('NaN'::numeric)$$);

-- Win rate: won / decided opportunities (NULL = open), with the Wilson interval written out in plain SQL
CREATE TEMP TABLE deals AS
SELECT team, CASE WHEN score IS NOT NULL THEN score >= 7 END AS won FROM telco.survey;
SELECT team, (w).n = decided AS n_ok, abs((w).estimate - k / decided) < 1e-12 AS rate_ok,
       abs((w).lower - (center - half)) < 1e-12 AS lower_ok, abs((w).upper - (center + half)) < 1e-12 AS upper_ok
FROM (SELECT team, w, k, decided,
             (k / decided + z * z / (2 * decided)) / (1 + z * z / decided) AS center,
             z / (1 + z * z / decided) * sqrt(k / decided * (1 - k / decided) / decided + z * z / (4 * decided * decided)) AS half
      FROM (SELECT team, segments.win_rate(won) AS w, count(won)::float8 AS decided,
                   count(*) FILTER (WHERE won)::float8 AS k, 1.959963984540054 AS z
            FROM deals GROUP BY 1) a) b ORDER BY 1;
SELECT round((segments.win_rate(won, 0.99)).lower::numeric, 6) AS lower_99, segments.win_rate(NULL::boolean) AS none
FROM deals;

-- Time to close: percentiles of closed − opened, as percentile_cont computes them over the same differences
-- (to the microsecond: both interpolate, in float8 microseconds and in interval arithmetic)
CREATE TEMP TABLE opportunities AS
SELECT g AS id, g % 3 AS team, timestamptz '2024-01-01 09:00+00' + g * interval '7 hours 11 minutes' AS opened,
       CASE WHEN g % 10 <> 0 THEN timestamptz '2024-01-01 09:00+00' + g * interval '7 hours 11 minutes'
                                  + ((g * 7919) % 1000) * interval '1 hour 3 minutes 7.123457 seconds' END AS closed
FROM generate_series(1, 3000) g;
SELECT team, count(closed) AS closed_deals,
       abs(extract(epoch FROM segments.time_to_close(opened, closed)
           - percentile_cont(0.5) WITHIN GROUP (ORDER BY closed - opened))) <= 1e-6 AS median_ok,
       abs(extract(epoch FROM segments.time_to_close(opened, closed, 0.9)
           - percentile_cont(0.9) WITHIN GROUP (ORDER BY closed - opened))) <= 1e-6 AS p90_ok,
       segments.time_to_close(opened, closed, 0.0) = min(closed - opened) AS min_ok,
       segments.time_to_close(opened, closed, 1.0) = max(closed - opened) AS max_ok
FROM opportunities GROUP BY 1 ORDER BY 1;
SELECT team, bool_and(abs(extract(epoch FROM mine - theirs)) <= 1e-6) AND count(*) = 4 AS percentiles_ok
FROM (SELECT team, segments.time_to_close(opened, closed, ARRAY[0.1, 0.25, 0.75, 0.99]) AS a,
             percentile_cont(ARRAY[0.1, 0.25, 0.75, 0.99]) WITHIN GROUP (ORDER BY closed - opened) AS b
      FROM opportunities GROUP BY 1) s, unnest(a, b) u(mine, theirs)
GROUP BY 1 ORDER BY 1;
-- dates count whole days; timestamps without time zone see no DST shift (Berlin moved its clocks on 2024-03-31)
SELECT abs(extract(epoch FROM segments.time_to_close(opened::date, closed::date)) / 86400
           - percentile_cont(0.5) WITHIN GROUP (ORDER BY closed::date - opened::date)) < 1e-9 AS date_median_ok
FROM opportunities;
SET TimeZone = 'Europe/Berlin';
SELECT segments.time_to_close(timestamp '2024-03-30 12:00', timestamp '2024-03-31 12:00') AS across_dst,
       segments.time_to_close(timestamptz '2024-01-01 00:00+00', timestamptz '2024-01-13 03:00+00') AS twelve_days,
       segments.time_to_close(opened, closed) AS none_closed
FROM (VALUES (now(), NULL::timestamptz)) v(opened, closed);
RESET TimeZone;
SELECT sqlstate, message FROM error_of($$SELECT segments.time_to_close(now(), now() - interval '1 day')$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.time_to_close(now(), now(), 1.5)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.time_to_close(now(), now(), NULL::float8)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.time_to_close(now(), 'infinity')$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.time_to_close(now(), now(), p) FROM (VALUES (0.5), (0.9)) v(p)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments._durations_final('{1,1}')$$);

-- Trailing windows use the moving-aggregate inverse: NPS over the current and two preceding months.
SELECT m.month::date,
       round((SELECT segments.nps(score) FROM telco.survey s WHERE s.month BETWEEN m.month - interval '2 months' AND m.month), 6) AS hand_3m,
       round(w.nps, 6) AS window_3m
FROM (SELECT DISTINCT month FROM telco.survey) m
JOIN (SELECT DISTINCT month, segments.nps(score) OVER (ORDER BY month RANGE BETWEEN interval '2 months' PRECEDING AND CURRENT ROW) AS nps
      FROM telco.survey) w USING (month)
ORDER BY 1;

-- Lifetime value: per-period formula and per segment (mean ARPA × margin / churn rate).
SELECT segments.clv(1200, 0.7, 0.2) AS clv_scalar;
SELECT segments.segment_of(c, 'contract') AS segment,
       round(segments.clv(monthly_charges * 12, 0.7, churned)::numeric, 2) AS clv,
       round((avg(monthly_charges * 12) * 0.7 / (count(*) FILTER (WHERE churned)::numeric / count(*))), 2) AS hand_clv
FROM telco.customers c GROUP BY 1 ORDER BY 1;

-- Edge cases: empty input, all NULL, one row, zero denominators.
SELECT segments.nps(score) AS nps_empty, segments.churn_rate(churned) AS churn_empty,
       segments.nrr(arr_start, arr_end) AS nrr_empty, segments.churn_rate_ci(churned) AS ci_empty,
       segments.separation(contract, tenure::float8) AS separation_empty
FROM (SELECT NULL::int AS score, NULL::boolean AS churned, NULL::numeric AS arr_start, NULL::numeric AS arr_end,
             NULL::text AS contract, NULL::int AS tenure WHERE false) e;
SELECT segments.nps(NULL::int) AS nps_all_null, segments.churn_rate(NULL::boolean) AS churn_all_null,
       segments.nrr(NULL::numeric, NULL::numeric) AS nrr_all_null, segments.arr_growth(NULL, NULL) AS growth_all_null
FROM generate_series(1, 3);
SELECT segments.nps(10) AS one_promoter, segments.churn_rate(true) AS one_churn, segments.nrr(100, 150) AS one_nrr,
       segments.grr(100, 150) AS one_grr, round((segments.churn_rate_ci(true)).lower::numeric, 6) AS one_lower;
SELECT segments.nrr(0, 100) AS nrr_no_base, segments.arr_growth(0, 100) AS growth_no_base, segments.grr(NULL, 5) AS grr_no_base;

-- Bad input: scores outside 0..10, negative or non-finite ARR, impossible confidence or margin (22003).
SELECT * FROM error_of($$SELECT segments.nps(s) FROM (VALUES (3), (11)) v(s)$$);
SELECT * FROM error_of($$SELECT segments.nps(-1)$$);
SELECT * FROM error_of($$SELECT segments.nrr(-5, 10)$$);
SELECT * FROM error_of($$SELECT segments.grr(10, 'NaN')$$);
SELECT * FROM error_of($$SELECT segments.arr_growth(10, 'Infinity')$$);
SELECT * FROM error_of($$SELECT segments.churn_rate_ci(true, 1.5)$$);
SELECT * FROM error_of($$SELECT segments.clv(100, 0.7, 0)$$);
SELECT * FROM error_of($$SELECT segments.clv(100::numeric, 1.7, true)$$);

-- Separation: are contract segments measurably different? One-way ANOVA, against the sums of squares in SQL
-- and against scipy.stats.f_oneway on the same data (F = 20.828045474730267, p = 9.575270975922414e-10).
SELECT round((a).f::numeric, 9) AS f, (a).p_value::numeric(20, 15) AS p_value, round((a).eta_squared::numeric, 9) AS eta2,
       (a).df_between, (a).df_within, (a).groups, (a).n,
       abs((a).f / 20.828045474730267 - 1) < 1e-12 AS f_matches_scipy,
       abs((a).p_value / 9.575270975922414e-10 - 1) < 1e-9 AS p_matches_scipy
FROM (SELECT segments.separation(contract, monthly_charges::float8) AS a FROM telco.customers) s;
WITH g AS (SELECT contract, count(*) AS n, avg(monthly_charges::float8) AS m FROM telco.customers GROUP BY 1),
     grand AS (SELECT avg(monthly_charges::float8) AS m, count(*) AS n FROM telco.customers),
     ssb AS (SELECT sum(g.n * (g.m - grand.m) ^ 2) AS v FROM g, grand),
     ssw AS (SELECT sum((c.monthly_charges::float8 - g.m) ^ 2) AS v FROM telco.customers c JOIN g USING (contract))
SELECT abs(((ssb.v / 2) / (ssw.v / (grand.n - 3))) / (s.a).f - 1) < 1e-10 AS f_matches_sql,
       abs(ssb.v / (ssb.v + ssw.v) - (s.a).eta_squared) < 1e-12 AS eta2_matches_sql
FROM ssb, ssw, grand, (SELECT segments.separation(contract, monthly_charges::float8) AS a FROM telco.customers) s;

-- Forced parallel plans: Partial Aggregate in the plan, and the same answer as serial.
CREATE TABLE telco.big AS SELECT c.* FROM telco.customers c, generate_series(1, 20);
ANALYZE telco.big;
CREATE TEMP TABLE serial_result AS
SELECT contract, segments.churn_rate(churned) AS churn, segments.nps(tenure % 11) AS nps,
       segments.nrr(total_charges, monthly_charges) AS nrr, segments.separation(gender, tenure::float8) AS sep,
       segments.churn_rate_ci(churned) AS ci, segments.clv(monthly_charges, 0.5, churned) AS clv,
       segments.win_rate(churned) AS win, segments.time_to_close(date '2024-01-01', date '2024-01-01' + tenure, ARRAY[0.5, 0.9]) AS ttc
FROM telco.big GROUP BY 1;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
-- force_parallel_mode (PostgreSQL 15), debug_parallel_query (16 on)
DO $$ BEGIN PERFORM set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
    THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false); END $$;
DO $$
DECLARE
    line text;
    plan text := '';
BEGIN
    FOR line IN EXECUTE $q$EXPLAIN (COSTS OFF) SELECT contract, segments.churn_rate(churned), segments.nps(tenure % 11),
        segments.nrr(total_charges, monthly_charges), segments.separation(gender, tenure::float8),
        segments.churn_rate_ci(churned), segments.clv(monthly_charges, 0.5, churned)
        FROM telco.big GROUP BY 1$q$ LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RAISE NOTICE 'plan has a partial aggregate: %, under a gather: %', plan ~ 'Partial', plan ~ 'Gather';
END $$;
SELECT s.contract,
       p.churn = s.churn AS churn_same, p.nps = s.nps AS nps_same, abs(p.nrr / s.nrr - 1) < 1e-12 AS nrr_same,
       abs((p.sep).f / (s.sep).f - 1) < 1e-9 AS separation_same, abs((p.ci).lower - (s.ci).lower) < 1e-12 AS ci_same,
       abs(p.clv / s.clv - 1) < 1e-12 AS clv_same, abs((p.win).lower - (s.win).lower) < 1e-12 AS win_same,
       p.ttc = s.ttc AS time_to_close_same
FROM serial_result s JOIN (
    SELECT contract, segments.churn_rate(churned) AS churn, segments.nps(tenure % 11) AS nps,
           segments.nrr(total_charges, monthly_charges) AS nrr, segments.separation(gender, tenure::float8) AS sep,
           segments.churn_rate_ci(churned) AS ci, segments.clv(monthly_charges, 0.5, churned) AS clv,
           segments.win_rate(churned) AS win,
           segments.time_to_close(date '2024-01-01', date '2024-01-01' + tenure, ARRAY[0.5, 0.9]) AS ttc
    FROM telco.big GROUP BY 1) p USING (contract)
ORDER BY 1;
RESET ALL;

-- Aggregates are parallel safe, with combine functions and non-internal states (separation aside).
SELECT p.proname, a.aggtranstype::regtype, a.aggcombinefn <> 0 AS has_combine, p.proparallel,
       a.aggminvtransfn <> 0 AS moving
FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
WHERE p.pronamespace = 'segments'::regnamespace ORDER BY 1, 2;
