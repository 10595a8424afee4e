-- Discovery and prediction: RFM, BG/NBD, Gamma-Gamma and shifted-beta-geometric models (see src/models/).

CREATE TYPE segments.rfm_summary AS (frequency integer, recency float8, t float8, monetary float8);
COMMENT ON TYPE segments.rfm_summary IS
    'Repeat purchase days, time from first to last purchase, time from first purchase to the end of observation, mean repeat purchase value';
CREATE TYPE segments.bgnbd_params AS (r float8, alpha float8, a float8, b float8, log_likelihood float8, n bigint);
COMMENT ON TYPE segments.bgnbd_params IS 'Fitted BG/NBD model: Gamma(r, alpha) purchase rates, Beta(a, b) dropout, with the log-likelihood and customers';
CREATE TYPE segments.gamma_gamma_params AS (p float8, q float8, v float8, log_likelihood float8, n bigint);
COMMENT ON TYPE segments.gamma_gamma_params IS 'Fitted Gamma-Gamma spend model, with the log-likelihood and the repeat buyers it was fitted on';
CREATE TYPE segments.sbg_params AS (alpha float8, beta float8, log_likelihood float8);
COMMENT ON TYPE segments.sbg_params IS 'Fitted shifted-beta-geometric model: Beta(alpha, beta) churn probabilities';

-- RFM: one row per order, grouped by customer
CREATE FUNCTION segments._rfm_accum(internal, timestamptz, numeric, timestamptz, text) RETURNS internal
    AS 'MODULE_PATHNAME', '_rfm_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._rfm_accum(internal, timestamptz, numeric, timestamptz) RETURNS internal
    AS 'MODULE_PATHNAME', '_rfm_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._rfm_final(internal) RETURNS segments.rfm_summary
    AS 'MODULE_PATHNAME', '_rfm_final' LANGUAGE c PARALLEL SAFE;
CREATE AGGREGATE segments.rfm(order_time timestamptz, amount numeric, observation_end timestamptz, time_unit text) (
    SFUNC = segments._rfm_accum, STYPE = internal, FINALFUNC = segments._rfm_final);
CREATE AGGREGATE segments.rfm(order_time timestamptz, amount numeric, observation_end timestamptz) (
    SFUNC = segments._rfm_accum, STYPE = internal, FINALFUNC = segments._rfm_final);
COMMENT ON AGGREGATE segments.rfm(timestamptz, numeric, timestamptz, text) IS
    'RFM summary of one customer''s orders (GROUP BY customer): same-day orders merged, orders after observation_end ignored; time_unit day, week (default), month or year';
COMMENT ON AGGREGATE segments.rfm(timestamptz, numeric, timestamptz) IS 'RFM summary in weeks';

-- Model fits: the rows of floats are collected, then fitted by maximum likelihood in the final function. The
-- state is a float8[] [width, rows, values...] that grows in place (src/api/models.rs); its combine
-- concatenates, so parallel plans and Citus workers aggregate partially.
CREATE FUNCTION segments._rows_accum(float8[], float8, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_rows_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._rows_accum(float8[], float8, float8, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_rows_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._rows_combine(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_rows_combine' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._bgnbd_final(float8[]) RETURNS segments.bgnbd_params
    AS 'MODULE_PATHNAME', '_bgnbd_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._gamma_gamma_final(float8[]) RETURNS segments.gamma_gamma_params
    AS 'MODULE_PATHNAME', '_gamma_gamma_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._sbg_final(float8[]) RETURNS segments.sbg_params
    AS 'MODULE_PATHNAME', '_sbg_final' LANGUAGE c PARALLEL SAFE;

CREATE AGGREGATE segments.bgnbd_fit(frequency float8, recency float8, t float8) (
    SFUNC = segments._rows_accum, STYPE = float8[], FINALFUNC = segments._bgnbd_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.bgnbd_fit(float8, float8, float8) IS
    'Maximum-likelihood BG/NBD over customers'' (frequency, recency, T); rows with a NULL are skipped';
CREATE AGGREGATE segments.gamma_gamma_fit(frequency float8, monetary float8) (
    SFUNC = segments._rows_accum, STYPE = float8[], FINALFUNC = segments._gamma_gamma_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.gamma_gamma_fit(float8, float8) IS
    'Maximum-likelihood Gamma-Gamma spend model over repeat buyers (frequency > 0); others are skipped';
CREATE AGGREGATE segments.sbg_fit(period float8, alive float8) (
    SFUNC = segments._rows_accum, STYPE = float8[], FINALFUNC = segments._sbg_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.sbg_fit(float8, float8) IS
    'Shifted-beta-geometric fit to a survival curve: (period 0, 1, 2, ..., customers still active)';

-- Predictions from fitted parameters
CREATE FUNCTION segments.bgnbd_expected(params segments.bgnbd_params, horizon float8, frequency float8,
                                        recency float8, t float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN segments._bgnbd_expected(params.r, params.alpha, params.a, params.b, horizon, frequency, recency, t);
COMMENT ON FUNCTION segments.bgnbd_expected(segments.bgnbd_params, float8, float8, float8, float8) IS
    'Expected purchases in the next `horizon` time units for a customer with this (frequency, recency, T)';

CREATE FUNCTION segments.p_alive(params segments.bgnbd_params, frequency float8, recency float8, t float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN segments._p_alive(params.r, params.alpha, params.a, params.b, frequency, recency, t);
COMMENT ON FUNCTION segments.p_alive(segments.bgnbd_params, float8, float8, float8) IS
    'Probability that the customer is still active (BG/NBD)';

CREATE FUNCTION segments.expected_spend(params segments.gamma_gamma_params, frequency float8, monetary float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN segments._expected_spend(params.p, params.q, params.v, frequency, monetary);
COMMENT ON FUNCTION segments.expected_spend(segments.gamma_gamma_params, float8, float8) IS
    'Expected mean spend per purchase given the customer''s frequency and mean repeat spend (Gamma-Gamma)';

CREATE FUNCTION segments.predicted_clv(bgnbd segments.bgnbd_params, gamma_gamma segments.gamma_gamma_params,
                                       frequency float8, recency float8, t float8, monetary float8,
                                       months integer DEFAULT 12, monthly_discount float8 DEFAULT 0.01,
                                       time_unit text DEFAULT 'week') RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN segments._predicted_clv(bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b, gamma_gamma.p, gamma_gamma.q, gamma_gamma.v,
                               frequency, recency, t, monetary, months, monthly_discount, time_unit);
COMMENT ON FUNCTION segments.predicted_clv(segments.bgnbd_params, segments.gamma_gamma_params, float8, float8, float8, float8, integer, float8, text) IS
    'Discounted value of the next `months` months: Σ expected purchases in month m × expected spend / (1 + monthly_discount)^m';

CREATE FUNCTION segments.sbg_survival(params segments.sbg_params, t float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN segments._sbg_survival(params.alpha, params.beta, t);
COMMENT ON FUNCTION segments.sbg_survival(segments.sbg_params, float8) IS 'Share of a cohort still active after t periods: B(α, β + t) / B(α, β)';
CREATE FUNCTION segments.sbg_retention(params segments.sbg_params, t float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN segments._sbg_retention(params.alpha, params.beta, t);
COMMENT ON FUNCTION segments.sbg_retention(segments.sbg_params, float8) IS 'Retention rate in period t: (β + t − 1) / (α + β + t − 1)';

-- Named RFM segments from 1-5 scores. The built-in map is part of the extension (recreated by every install,
-- so never dumped); a user's own map is a table of its own (kept by pg_dump). Were the built-in rows seeded
-- into the user's table, a restore would meet them there and collide with the dumped ones.
CREATE TABLE segments.rfm_default_map (
    segment  text PRIMARY KEY,
    priority integer NOT NULL UNIQUE,
    r_min int NOT NULL, r_max int NOT NULL, f_min int NOT NULL, f_max int NOT NULL, m_min int NOT NULL, m_max int NOT NULL
);
COMMENT ON TABLE segments.rfm_default_map IS 'The built-in RFM map (Champions ... Hibernating), used while segments.rfm_segment_map is empty';
COMMENT ON COLUMN segments.rfm_default_map.segment IS 'Segment name';
COMMENT ON COLUMN segments.rfm_default_map.priority IS 'Lower is tried first';
COMMENT ON COLUMN segments.rfm_default_map.r_min IS 'Lowest recency score (1-5, 5 = most recent)';
COMMENT ON COLUMN segments.rfm_default_map.r_max IS 'Highest recency score';
COMMENT ON COLUMN segments.rfm_default_map.f_min IS 'Lowest frequency score (1-5, 5 = most frequent)';
COMMENT ON COLUMN segments.rfm_default_map.f_max IS 'Highest frequency score';
COMMENT ON COLUMN segments.rfm_default_map.m_min IS 'Lowest monetary score (1-5, 5 = highest value)';
COMMENT ON COLUMN segments.rfm_default_map.m_max IS 'Highest monetary score';
INSERT INTO segments.rfm_default_map VALUES
    ('Champions',          1, 4, 5, 4, 5, 4, 5),
    ('Can''t Lose Them',   2, 1, 1, 4, 5, 4, 5),
    ('New',                3, 4, 5, 1, 1, 1, 5),
    ('Promising',          4, 3, 3, 1, 1, 1, 5),
    ('Lost',               5, 1, 1, 1, 2, 1, 5),
    ('Loyal',              6, 2, 5, 3, 5, 3, 5),
    ('Potential Loyalist', 7, 3, 5, 1, 3, 1, 5),
    ('At Risk',            8, 1, 2, 2, 5, 2, 5),
    ('Need Attention',     9, 2, 3, 2, 3, 1, 5),
    ('About to Sleep',    10, 2, 3, 1, 2, 1, 5),
    ('Hibernating',       11, 1, 2, 1, 2, 1, 5);

CREATE TABLE segments.rfm_segment_map (
    segment  text PRIMARY KEY,
    priority integer NOT NULL UNIQUE,
    r_min int NOT NULL, r_max int NOT NULL, f_min int NOT NULL, f_max int NOT NULL, m_min int NOT NULL, m_max int NOT NULL
);
COMMENT ON TABLE segments.rfm_segment_map IS
    'Your RFM map: score ranges of named segments, the first match by priority wins; while empty, segments.rfm_default_map applies';
COMMENT ON COLUMN segments.rfm_segment_map.segment IS 'Segment name';
COMMENT ON COLUMN segments.rfm_segment_map.priority IS 'Lower is tried first';
COMMENT ON COLUMN segments.rfm_segment_map.r_min IS 'Lowest recency score (1-5, 5 = most recent)';
COMMENT ON COLUMN segments.rfm_segment_map.r_max IS 'Highest recency score';
COMMENT ON COLUMN segments.rfm_segment_map.f_min IS 'Lowest frequency score (1-5, 5 = most frequent)';
COMMENT ON COLUMN segments.rfm_segment_map.f_max IS 'Highest frequency score';
COMMENT ON COLUMN segments.rfm_segment_map.m_min IS 'Lowest monetary score (1-5, 5 = highest value)';
COMMENT ON COLUMN segments.rfm_segment_map.m_max IS 'Highest monetary score';
SELECT pg_catalog.pg_extension_config_dump('segments.rfm_segment_map', '');

CREATE FUNCTION segments.rfm_segment(r integer, f integer, m integer) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE found_segment text;
BEGIN
    IF r NOT BETWEEN 1 AND 5 OR f NOT BETWEEN 1 AND 5 OR m NOT BETWEEN 1 AND 5 THEN
        RAISE EXCEPTION 'RFM scores must be 1-5, got r=%, f=%, m=%', r, f, m
            USING ERRCODE = '22003', HINT = 'score with ntile(5) OVER (ORDER BY ...)';
    END IF;
    IF EXISTS (SELECT FROM segments.rfm_segment_map) THEN
        SELECT s.segment INTO found_segment FROM segments.rfm_segment_map s
        WHERE r BETWEEN s.r_min AND s.r_max AND f BETWEEN s.f_min AND s.f_max AND m BETWEEN s.m_min AND s.m_max
        ORDER BY s.priority LIMIT 1;
    ELSE
        SELECT s.segment INTO found_segment FROM segments.rfm_default_map s
        WHERE r BETWEEN s.r_min AND s.r_max AND f BETWEEN s.f_min AND s.f_max AND m BETWEEN s.m_min AND s.m_max
        ORDER BY s.priority LIMIT 1;
    END IF;
    RETURN coalesce(found_segment, 'Others');
END $$;
COMMENT ON FUNCTION segments.rfm_segment(integer, integer, integer) IS
    'The named RFM segment (Champions, Loyal, ..., Lost) of 1-5 recency, frequency and monetary scores, from segments.rfm_segment_map (or, while it is empty, segments.rfm_default_map)';

COMMENT ON FUNCTION segments.kmeans(regclass, text[], integer, integer, integer, integer, boolean) IS
    'k-means++ clusters of a relation on numeric features: size, centroid (in the features'' units) and within-cluster sum of squares';
COMMENT ON FUNCTION segments.choose_k(regclass, text[], integer, integer, integer, integer, boolean, integer) IS
    'Inertia and mean silhouette for each k in k_min..k_max (silhouette on a seeded sample above sample_size rows)';
COMMENT ON FUNCTION segments.segmentation_from_clusters(text, regclass, text, text[], integer, integer, integer, boolean) IS
    'Fits k-means and saves the clusters as a segmentation whose segments have nearest-centroid rules';

-- Predictive models: a logistic regression is fitted by segments.logistic_regression (src/api/predict.rs) into
-- a jsonb value that can be stored anywhere; score and explain_score read it per row like classify (raw C
-- functions: the model is compiled once per call site).
COMMENT ON FUNCTION segments.logistic_regression(regclass, text, text[], float8, integer) IS
    'Logistic regression of a boolean outcome on numeric, boolean and text (categorical, one-hot with the first level as reference) columns: coefficients, standard errors, z, p-values, odds ratios, log-likelihoods, pseudo-R², AIC; optional L2 penalty';
CREATE FUNCTION segments.score(account record, model jsonb) RETURNS float8
    AS 'MODULE_PATHNAME', 'score' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments.score(record, jsonb) IS
    'The model''s probability of the outcome for the row (NULL when a feature is NULL or a category level was not seen in training)';
CREATE FUNCTION segments.explain_score(account record, model jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'explain_score' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 50;
COMMENT ON FUNCTION segments.explain_score(record, jsonb) IS
    'The row''s score with each term''s coefficient and contribution to the log-odds';

-- Evaluation: aggregates over (score, outcome), so they go by segment, by split arm or by model with GROUP BY.
-- The rows are kept (AUC and groups need them all) in the lifetime fits' state, partial aggregation included.
CREATE FUNCTION segments._scored_accum(float8[], float8, boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_scored_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._scored_accum(float8[], float8, boolean, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_scored_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._scored_accum(float8[], float8, boolean, integer) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_scored_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._auc_final(float8[]) RETURNS float8 AS 'MODULE_PATHNAME', '_auc_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._auc_ci_final(float8[]) RETURNS segments.estimate AS 'MODULE_PATHNAME', '_auc_ci_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._log_loss_final(float8[]) RETURNS float8 AS 'MODULE_PATHNAME', '_log_loss_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._brier_final(float8[]) RETURNS float8 AS 'MODULE_PATHNAME', '_brier_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._calibration_final(float8[]) RETURNS jsonb AS 'MODULE_PATHNAME', '_calibration_final' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._gains_final(float8[]) RETURNS jsonb AS 'MODULE_PATHNAME', '_gains_final' LANGUAGE c PARALLEL SAFE;

CREATE AGGREGATE segments.auc(score float8, outcome boolean) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._auc_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.auc(float8, boolean) IS
    'Area under the ROC curve: the probability that a positive row outscores a negative one (ties count half)';
CREATE AGGREGATE segments.auc_ci(score float8, outcome boolean) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._auc_ci_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.auc_ci(float8, boolean) IS 'AUC with its 95% DeLong confidence interval';
CREATE AGGREGATE segments.auc_ci(score float8, outcome boolean, confidence float8) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._auc_ci_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.auc_ci(float8, boolean, float8) IS 'AUC with its DeLong confidence interval';
CREATE AGGREGATE segments.log_loss(probability float8, outcome boolean) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._log_loss_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.log_loss(float8, boolean) IS 'Mean negative log-likelihood of the outcomes under the probabilities';
CREATE AGGREGATE segments.brier(probability float8, outcome boolean) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._brier_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.brier(float8, boolean) IS 'Brier score: mean squared difference between probability and outcome';
CREATE AGGREGATE segments.calibration(probability float8, outcome boolean, groups integer) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._calibration_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.calibration(float8, boolean, integer) IS
    'Calibration table (jsonb): per score group, highest first, rows, mean predicted probability and observed rate';
CREATE AGGREGATE segments.gains(score float8, outcome boolean, groups integer) (
    SFUNC = segments._scored_accum, STYPE = float8[], FINALFUNC = segments._gains_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.gains(float8, boolean, integer) IS
    'Gains and lift table (jsonb): per score group, highest first, positives, rate, lift over the base rate, cumulative share of positives';

-- Deterministic assignment to named arms (train/test, holdouts, A/B groups): u is the first 52 bits of
-- md5(salt || ':' || key) as a fraction of 2^52, and the arm is the first whose cumulative weight share exceeds u.
-- The same on every run, machine and PostgreSQL version; a new salt gives an independent split.
CREATE FUNCTION segments.split(key text, arms text[] DEFAULT ARRAY['train', 'test'], weights float8[] DEFAULT ARRAY[0.8, 0.2],
                               salt text DEFAULT 'pg_segments') RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    u float8 := ('x' || substr(md5(salt || ':' || key), 1, 13))::bit(52)::bigint / 4503599627370496.0;
    total float8 := 0;
    acc float8 := 0;
BEGIN
    IF cardinality(arms) = 0 OR cardinality(arms) <> cardinality(weights)
       OR EXISTS (SELECT 1 FROM unnest(weights) w WHERE w IS NULL OR w < 0 OR w = 'Infinity') THEN
        RAISE EXCEPTION 'split needs one non-negative, finite weight per arm'
            USING ERRCODE = '22023', HINT = 'e.g. segments.split(key, ARRAY[''train'', ''validation'', ''test''], ARRAY[0.6, 0.2, 0.2])';
    END IF;
    SELECT sum(w) INTO total FROM unnest(weights) w;
    IF total <= 0 THEN
        RAISE EXCEPTION 'split weights sum to 0' USING ERRCODE = '22023';
    END IF;
    FOR i IN 1..cardinality(arms) LOOP
        acc := acc + weights[i] / total;
        IF u < acc THEN
            RETURN arms[i];
        END IF;
    END LOOP;
    RETURN arms[cardinality(arms)];
END $$;
COMMENT ON FUNCTION segments.split(text, text[], float8[], text) IS
    'The arm of an account key by a stable hash (md5 of salt:key): train/test splits, holdouts and A/B groups';
COMMENT ON FUNCTION segments.segmentation_from_tree(text, regclass, text, text, text[], integer, integer, float8) IS
    'Grows a classification tree (CART, Gini) on a boolean outcome and saves it as an exclusive segmentation: one segment per node, its split as the rule, the tree''s levels as the hierarchy, training size and outcome rate in the description';

-- What makes a segment different: each attribute of the source, in the segment vs the rest of the accounts.
-- Numbers: the means, Welch's t test; booleans and text: each level's share, Pearson's χ² test of the
-- segment × level table (no continuity correction). A parent segment is its whole subtree; in an
-- overlapping segmentation, the accounts tagged with it. NULL values are left out of each attribute's test.
CREATE FUNCTION segments._numeric_profile(source text, attribute text, membership text,
    OUT n1 bigint, OUT mean1 float8, OUT var1 float8, OUT n2 bigint, OUT mean2 float8, OUT var2 float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    EXECUTE format('SELECT count(v) FILTER (WHERE m), avg(v) FILTER (WHERE m), var_samp(v) FILTER (WHERE m),
                           count(v) FILTER (WHERE NOT m), avg(v) FILTER (WHERE NOT m), var_samp(v) FILTER (WHERE NOT m)
                    FROM (SELECT t.%I::float8 AS v, %s AS m FROM %s t) x', attribute, membership, source)
    INTO n1, mean1, var1, n2, mean2, var2;
END $$;

CREATE FUNCTION segments._profile(segmentation text, segment text, attributes text[])
RETURNS TABLE (attribute text, level text, segment_value float8, rest_value float8, lift float8, test text,
               statistic float8, df float8, p_value float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    src text := segments._source(g)::text;
    membership text;
    a record;
    s record;
    se float8;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM segments.segment x WHERE x.segmentation = g.name AND x.name = _profile.segment) THEN
        RAISE EXCEPTION 'segment "%" does not exist in segmentation "%"', _profile.segment, g.name
            USING ERRCODE = '42704', HINT = 'see segments.segment for its segments';
    END IF;
    -- membership: the segment or any segment below it (exclusive), or its tag (overlapping)
    membership := CASE WHEN g.mode = 'exclusive' THEN
        format('segments.segment_of(t, %L) = ANY (%L::text[])', g.name,
               (WITH RECURSIVE below(name) AS (SELECT _profile.segment
                                                UNION SELECT x.name FROM segments.segment x JOIN below b ON x.parent = b.name
                                                WHERE x.segmentation = g.name)
                SELECT array_agg(name) FROM below))
        ELSE format('%L = ANY (segments.segments_of(t, %L))', _profile.segment, g.name) END;
    FOR a IN
        SELECT att.attname::text AS name, ty.typcategory AS category FROM pg_attribute att
        JOIN pg_type ty ON ty.oid = att.atttypid
        WHERE att.attrelid = g.source AND att.attnum > 0 AND NOT att.attisdropped AND att.attname <> g.key_column
          AND ty.typcategory IN ('N', 'B', 'S') AND (attributes IS NULL OR att.attname = ANY (attributes))
        ORDER BY att.attnum
    LOOP
        IF a.category = 'N' THEN
            s := segments._numeric_profile(src, a.name, membership);
            se := sqrt(s.var1 / s.n1 + s.var2 / s.n2);
            attribute := a.name; level := NULL; test := 'welch_t';
            segment_value := s.mean1; rest_value := s.mean2; lift := s.mean1 / nullif(s.mean2, 0);
            statistic := (s.mean1 - s.mean2) / nullif(se, 0);
            df := (s.var1 / s.n1 + s.var2 / s.n2) ^ 2
                  / nullif((s.var1 / s.n1) ^ 2 / (s.n1 - 1) + (s.var2 / s.n2) ^ 2 / (s.n2 - 1), 0);
            p_value := segments._t_two_sided(statistic, df);
            RETURN NEXT;
        ELSE
            -- one row per level; the attribute's χ² over the 2 × levels table on each
            RETURN QUERY EXECUTE format($q$
                WITH c AS (SELECT t.%1$I::text AS v, %2$s AS m, count(*) AS n FROM %3$s t WHERE t.%1$I IS NOT NULL GROUP BY 1, 2),
                levels AS (SELECT v, coalesce(sum(n) FILTER (WHERE m), 0) AS i, coalesce(sum(n) FILTER (WHERE NOT m), 0) AS o FROM c GROUP BY v),
                totals AS (SELECT sum(i) AS ti, sum(o) AS tot, sum(i) + sum(o) AS n, count(*) AS k FROM levels),
                chi AS (SELECT sum((l.i - e.ei) ^ 2 / nullif(e.ei, 0) + (l.o - e.eo) ^ 2 / nullif(e.eo, 0)) AS x
                        FROM levels l, totals t, LATERAL (SELECT (l.i + l.o) * t.ti / t.n AS ei, (l.i + l.o) * t.tot / t.n AS eo) e)
                SELECT %4$L, l.v, l.i / nullif(t.ti, 0)::float8, l.o / nullif(t.tot, 0)::float8,
                       (l.i / nullif(t.ti, 0)::float8) / nullif(l.o / nullif(t.tot, 0)::float8, 0), 'chi2',
                       chi.x::float8, (t.k - 1)::float8, segments._chi2_sf(chi.x, t.k - 1)
                FROM levels l, totals t, chi$q$, a.name, membership, src, a.name);
        END IF;
    END LOOP;
END $$;
-- ordered by effect: the strongest evidence first, then the largest statistic
CREATE FUNCTION segments.profile(segmentation text, segment text, attributes text[] DEFAULT NULL)
RETURNS TABLE (attribute text, level text, segment_value float8, rest_value float8, lift float8, test text,
               statistic float8, df float8, p_value float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM segments._profile(segmentation, segment, attributes) p
    ORDER BY p.p_value NULLS LAST, abs(p.statistic) DESC NULLS LAST, p.attribute, p.level
$$;
COMMENT ON FUNCTION segments.profile(text, text, text[]) IS
    'What is special about a segment: per attribute, the segment vs the rest (means with Welch''s t test; level shares with Pearson''s χ²), lift and p-value';

-- The CHAID statistic: χ² of the outcome against each attribute (numbers cut into deciles of their rank, ties
-- kept together so the bins do not depend on row order).
CREATE FUNCTION segments.association(source regclass, outcome text, attributes text[] DEFAULT NULL)
RETURNS TABLE (attribute text, levels bigint, statistic float8, df float8, p_value float8, cramers_v float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE a record;
BEGIN
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = source AND attname = outcome AND NOT attisdropped) IS DISTINCT FROM 'boolean'::regtype THEN
        RAISE EXCEPTION 'the outcome "%" of % is not a boolean column', outcome, source
            USING ERRCODE = '42804', HINT = 'pass a boolean column, e.g. churned';
    END IF;
    FOR a IN
        SELECT att.attname::text AS name, ty.typcategory AS category FROM pg_attribute att JOIN pg_type ty ON ty.oid = att.atttypid
        WHERE att.attrelid = source AND att.attnum > 0 AND NOT att.attisdropped AND att.attname <> outcome
          AND ty.typcategory IN ('N', 'B', 'S') AND (attributes IS NULL OR att.attname = ANY (attributes))
          -- a unique key has one level per row: nothing to test (unless asked for by name)
          AND (attributes IS NOT NULL OR NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = source AND i.indisunique
                                                     AND i.indnatts = 1 AND i.indkey[0] = att.attnum))
        ORDER BY att.attnum
    LOOP
        RETURN QUERY EXECUTE format($q$
            WITH r AS (SELECT %2$s AS v, t.%3$I AS y FROM %4$s t WHERE t.%1$I IS NOT NULL AND t.%3$I IS NOT NULL),
            c AS (SELECT v, count(*) FILTER (WHERE y) AS i, count(*) FILTER (WHERE NOT y) AS o FROM r GROUP BY v),
            totals AS (SELECT sum(i) AS ti, sum(o) AS tot, sum(i) + sum(o) AS n, count(*) AS k FROM c),
            chi AS (SELECT sum((c.i - (c.i + c.o) * t.ti / t.n) ^ 2 / nullif((c.i + c.o) * t.ti / t.n, 0)
                             + (c.o - (c.i + c.o) * t.tot / t.n) ^ 2 / nullif((c.i + c.o) * t.tot / t.n, 0)) AS x FROM c, totals t)
            SELECT %5$L, t.k, chi.x::float8, (t.k - 1)::float8, segments._chi2_sf(chi.x, t.k - 1), sqrt(chi.x / t.n)::float8
            FROM totals t, chi$q$,
            a.name, CASE WHEN a.category = 'N' THEN format('least(width_bucket(percent_rank() OVER (ORDER BY t.%I), 0, 1, 10), 10)::text', a.name) ELSE format('t.%I::text', a.name) END,
            outcome, source, a.name);
    END LOOP;
END $$;
COMMENT ON FUNCTION segments.association(regclass, text, text[]) IS
    'χ² association of a boolean outcome with each attribute (the CHAID statistic; numbers in deciles of their rank), with p-value and Cramér''s V';
