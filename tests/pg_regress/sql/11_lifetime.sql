-- RFM and customer-lifetime models on CDNOW (Fader & Hardie's 2,357-customer sample from the lifetimes
-- package) and on the retention table of Fader & Hardie (2007).

-- RFM over the raw transactions, calibration to 1997-09-30 in weeks, reproduces the package's summaries
CREATE TABLE cdnow.rfm AS
SELECT customer_id, (segments.rfm(order_date, amount, '1997-09-30')).* FROM cdnow.orders GROUP BY 1 ORDER BY 1;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE r.frequency = s.frequency AND round(r.recency::numeric, 2) = s.recency
                          AND round(r.t::numeric, 2) = s.t) AS match_summary,
       count(*) FILTER (WHERE round(r.monetary::numeric, 2) = w.monetary) AS match_mean_spend
FROM cdnow.rfm r JOIN cdnow.summary s USING (customer_id) JOIN cdnow.summary_spend w USING (customer_id);
SELECT * FROM cdnow.rfm WHERE customer_id IN (1, 2, 3) ORDER BY 1;
SELECT (segments.rfm(order_date, amount, '1997-09-30', 'day')).* FROM cdnow.orders WHERE customer_id = 1;

-- BG/NBD: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4 (Fader, Hardie & Lee 2005)
CREATE TABLE cdnow.fits AS
SELECT (SELECT segments.bgnbd_fit(frequency, recency, t) FROM cdnow.rfm) AS bg,
       (SELECT segments.gamma_gamma_fit(frequency, monetary) FROM cdnow.rfm) AS gg;
SELECT round(r::numeric, 3) AS r, round(alpha::numeric, 3) AS alpha, round(a::numeric, 3) AS a, round(b::numeric, 3) AS b,
       round(log_likelihood::numeric, 1) AS log_likelihood, n,
       abs(r - 0.243) < 1e-3 AND abs(alpha - 4.414) < 1e-3 AND abs(a - 0.793) < 1e-3 AND abs(b - 2.426) < 1e-3
         AND abs(log_likelihood + 9582.4) < 0.05 AS matches_published
FROM (SELECT (bg).* FROM cdnow.fits) f;

-- Gamma-Gamma on the 946 repeat buyers: p = 6.25, q = 3.74, v = 15.44
SELECT round(p::numeric, 2) AS p, round(q::numeric, 2) AS q, round(v::numeric, 2) AS v, n,
       abs(p - 6.25) < 5e-3 AND abs(q - 3.74) < 5e-3 AND abs(v - 15.44) < 5e-3 AS matches_published
FROM (SELECT (gg).* FROM cdnow.fits) f;

-- Predictions: P(alive), expected purchases, expected spend, and a CLV ranking
SELECT customer_id, frequency, round(recency::numeric, 2) AS recency, round(t::numeric, 2) AS t,
       round(segments.p_alive(bg, frequency, recency, t)::numeric, 4) AS p_alive,
       round(segments.bgnbd_expected(bg, 39, frequency, recency, t)::numeric, 4) AS purchases_next_39_weeks,
       round(segments.expected_spend(gg, frequency, monetary)::numeric, 2) AS expected_spend,
       round(segments.predicted_clv(bg, gg, frequency, recency, t, monetary, 12, 0.01)::numeric, 2) AS clv_12_months
FROM cdnow.rfm, cdnow.fits
ORDER BY segments.predicted_clv(bg, gg, frequency, recency, t, monetary, 12, 0.01) DESC, customer_id LIMIT 5;
-- independent checks: p_alive by formula; expected purchases over 0 weeks is 0; spend is a weighted mean
SELECT bool_and(abs(segments.p_alive(bg, frequency, recency, t)
                    - CASE WHEN frequency = 0 THEN 1
                           ELSE 1 / (1 + ((bg).a / ((bg).b + frequency - 1)) * (((bg).alpha + t) / ((bg).alpha + recency)) ^ ((bg).r + frequency)) END) < 1e-12) AS p_alive_formula,
       bool_and(segments.bgnbd_expected(bg, 0, frequency, recency, t) = 0) AS zero_horizon,
       bool_and(abs(segments.expected_spend(gg, frequency, monetary) - (gg).p * ((gg).v + frequency * monetary) / ((gg).p * frequency + (gg).q - 1)) < 1e-9) AS spend_formula
FROM cdnow.rfm, cdnow.fits;

-- against lifetimes 0.11.3 given the same parameters (BetaGeoFitter with params_ r = 0.24259450823591788,
-- alpha = 4.413601146287799, a = 0.7929230035060278, b = 2.4259103913404596: conditional_expected_number_of_purchases_up_to_time(39, ...)
-- and conditional_probability_alive(...) for customer 509 give 12.823256639805559 and 0.94645305)
SELECT abs(segments.bgnbd_expected(p, 39, frequency, recency, t) / 12.823256639805559 - 1) < 1e-9 AS expected_matches_lifetimes,
       abs(segments.p_alive(p, frequency, recency, t) - 0.94645305) < 1e-8 AS p_alive_matches_lifetimes
FROM cdnow.rfm,
     (SELECT ROW(0.24259450823591788, 4.413601146287799, 0.7929230035060278, 2.4259103913404596, NULL, NULL)::segments.bgnbd_params AS p) x
WHERE customer_id = 509;
-- predicted CLV is the discounted sum of monthly expected purchases × expected spend (a month = 365.25/12 days)
SELECT abs(segments.predicted_clv(bg, gg, frequency, recency, t, monetary, 12, 0.01) - (
           SELECT sum((segments.bgnbd_expected(bg, m * 365.25 / 12 / 7, frequency, recency, t)
                       - segments.bgnbd_expected(bg, (m - 1) * 365.25 / 12 / 7, frequency, recency, t))
                      * segments.expected_spend(gg, frequency, monetary) / 1.01 ^ m)
           FROM generate_series(1, 12) m)) < 1e-9 AS clv_is_the_discounted_sum
FROM cdnow.rfm, cdnow.fits WHERE customer_id = 509;

-- RFM scores with ntile (R from the time since the last purchase, t - recency: 5 = most recent), and the
-- named segments (from the built-in map, segments.rfm_default_map)
WITH scored AS (
    -- ties broken by customer, so that the scores do not depend on the plan's row order
    SELECT customer_id, ntile(5) OVER (ORDER BY t - recency DESC, customer_id) AS r,
           ntile(5) OVER (ORDER BY frequency, customer_id) AS f, ntile(5) OVER (ORDER BY monetary, customer_id) AS m
    FROM cdnow.rfm)
SELECT segments.rfm_segment(r, f, m) AS segment, count(*) FROM scored GROUP BY 1 ORDER BY 2 DESC, 1;
SELECT segments.rfm_segment(5, 5, 5), segments.rfm_segment(1, 5, 5), segments.rfm_segment(5, 1, 1), segments.rfm_segment(1, 1, 1);
-- that is the built-in map (segments.rfm_default_map); your own map replaces it while it has rows
BEGIN;
INSERT INTO segments.rfm_segment_map SELECT * FROM segments.rfm_default_map;
UPDATE segments.rfm_segment_map SET segment = 'Best Customers' WHERE segment = 'Champions';
DELETE FROM segments.rfm_segment_map WHERE segment = 'Lost';
SELECT segments.rfm_segment(5, 5, 5), segments.rfm_segment(1, 5, 5), segments.rfm_segment(1, 1, 1);
ROLLBACK;

-- sBG on Fader & Hardie (2007) Table 1, years 1-7: Regular alpha 0.704, beta 1.182; High End 0.668, 3.806
SELECT 'regular' AS segment, round((s).alpha::numeric, 3) AS alpha, round((s).beta::numeric, 3) AS beta
FROM (SELECT segments.sbg_fit(year, regular * 10) AS s FROM models.retention WHERE year <= 7) x
UNION ALL
SELECT 'high end', round((s).alpha::numeric, 3), round((s).beta::numeric, 3)
FROM (SELECT segments.sbg_fit(year, high_end * 10) AS s FROM models.retention WHERE year <= 7) x;
-- projected survival for years 8-12 against the actual curve (the paper's point: the model projects well)
SELECT year, regular AS actual_pct, round(100 * segments.sbg_survival(p, year)::numeric, 1) AS projected_pct,
       round(segments.sbg_retention(p, year)::numeric, 4) AS retention
FROM models.retention, (SELECT segments.sbg_fit(year, regular * 10) AS p FROM models.retention WHERE year <= 7) f
WHERE year BETWEEN 8 AND 12 ORDER BY year;

-- input the models cannot fit is an error, never a NaN
SELECT * FROM error_of($$SELECT segments.bgnbd_fit(frequency, recency, t) FROM cdnow.rfm WHERE customer_id = 1$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.bgnbd_fit(0, 0, t) FROM cdnow.rfm$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.bgnbd_fit(frequency, t + 1, t) FROM cdnow.rfm$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.bgnbd_fit(-1, 0, 1) FROM cdnow.rfm$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.gamma_gamma_fit(frequency, monetary) FROM cdnow.rfm WHERE frequency = 0$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.sbg_fit(year, regular) FROM models.retention WHERE year IN (0, 2, 3)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.rfm(order_date, -amount, '1997-09-30') FROM cdnow.orders$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.rfm(order_date, amount, '1997-09-30', 'fortnight') FROM cdnow.orders$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.rfm_segment(6, 1, 1)$$);
SELECT sqlstate, message FROM error_of($$SELECT segments.p_alive(bg, 1, 5, 3) FROM cdnow.fits$$);
