-- Segment health metrics: aggregates over float8[] states (see src/metrics/mod.rs for the layouts and
-- formulas). Every aggregate is PARALLEL SAFE with a combine function; counting ones also move in windows.

CREATE TYPE segments.estimate AS (estimate float8, lower float8, upper float8, n bigint);
COMMENT ON TYPE segments.estimate IS 'A rate or score with its confidence interval and the number of observations';

CREATE TYPE segments.anova AS (f float8, p_value float8, eta_squared float8, df_between int, df_within bigint,
                               groups int, n bigint);
COMMENT ON TYPE segments.anova IS 'One-way ANOVA across segments: F statistic, p-value, effect size eta squared';

CREATE FUNCTION segments._state_add(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_state_add' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._nps_accum(float8[], integer) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_nps_accum' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._nps_retract(float8[], integer) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_nps_retract' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._nps_ci_accum(float8[], integer, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_nps_ci_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._nps_ci_retract(float8[], integer, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_nps_ci_retract' LANGUAGE c IMMUTABLE PARALLEL SAFE;
-- the one-argument overloads (confidence 0.95) share the C functions
CREATE FUNCTION segments._nps_ci_accum(float8[], integer) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_nps_ci_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._nps_ci_retract(float8[], integer) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_nps_ci_retract' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._churn_ci_accum(float8[], boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_churn_ci_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._churn_ci_retract(float8[], boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_churn_ci_retract' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._churn_accum(float8[], boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_churn_accum' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._churn_retract(float8[], boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_churn_retract' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._churn_ci_accum(float8[], boolean, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_churn_ci_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._churn_ci_retract(float8[], boolean, float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_churn_ci_retract' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._revenue_accum(float8[], numeric, numeric) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_revenue_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._clv_accum(float8[], numeric, float8, boolean) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_clv_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION segments._churn_rate_ci_final(float8[]) RETURNS segments.estimate
    AS 'MODULE_PATHNAME', '_churn_rate_ci_final' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._nps_ci_final(float8[]) RETURNS segments.estimate
    AS 'MODULE_PATHNAME', '_nps_ci_final' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
-- NPS is numeric: 100 × (promoters − detractors) / responses, computed exactly from the counts
CREATE FUNCTION segments._nps_final(s float8[]) RETURNS numeric LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN s[1] OPERATOR(pg_catalog.>) 0 THEN
        100 OPERATOR(pg_catalog.*) (s[2] OPERATOR(pg_catalog.-) s[3])::pg_catalog.numeric
            OPERATOR(pg_catalog./) s[1]::pg_catalog.numeric END;

CREATE AGGREGATE segments.nps(score integer) (
    SFUNC = segments._nps_accum, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = segments._nps_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._nps_accum, MINVFUNC = segments._nps_retract, MSTYPE = float8[], MINITCOND = '{0,0,0}',
    MFINALFUNC = segments._nps_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.nps(integer) IS
    'Net Promoter Score: 100 × (promoters 9-10 − detractors 0-6) / responses; NULLs ignored; no responses → NULL';

CREATE AGGREGATE segments.nps_ci(score integer, confidence float8) (
    SFUNC = segments._nps_ci_accum, STYPE = float8[], INITCOND = '{0,0,0,0}',
    FINALFUNC = segments._nps_ci_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._nps_ci_accum, MINVFUNC = segments._nps_ci_retract, MSTYPE = float8[], MINITCOND = '{0,0,0,0}',
    MFINALFUNC = segments._nps_ci_final, PARALLEL = SAFE);
CREATE AGGREGATE segments.nps_ci(score integer) (
    SFUNC = segments._nps_ci_accum, STYPE = float8[], INITCOND = '{0,0,0,0}',
    FINALFUNC = segments._nps_ci_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._nps_ci_accum, MINVFUNC = segments._nps_ci_retract, MSTYPE = float8[], MINITCOND = '{0,0,0,0}',
    MFINALFUNC = segments._nps_ci_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.nps_ci(integer, float8) IS
    'NPS with a normal confidence interval from the multinomial variance (p + d − (p − d)²) / n';
COMMENT ON AGGREGATE segments.nps_ci(integer) IS 'NPS with its 95% confidence interval';

-- The same three aggregates over smallint, bigint and numeric scores (a numeric must be a whole number):
-- the C transition functions read the datum by its declared type.
DO $$
DECLARE score_type text;
BEGIN
    FOREACH score_type IN ARRAY ARRAY['smallint', 'bigint', 'numeric'] LOOP
        EXECUTE format($f$
            CREATE FUNCTION segments._nps_accum(float8[], %1$s) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_nps_accum' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
            CREATE FUNCTION segments._nps_retract(float8[], %1$s) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_nps_retract' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
            CREATE FUNCTION segments._nps_ci_accum(float8[], %1$s, float8) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_nps_ci_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE FUNCTION segments._nps_ci_retract(float8[], %1$s, float8) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_nps_ci_retract' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE FUNCTION segments._nps_ci_accum(float8[], %1$s) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_nps_ci_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE FUNCTION segments._nps_ci_retract(float8[], %1$s) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_nps_ci_retract' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE AGGREGATE segments.nps(score %1$s) (
                SFUNC = segments._nps_accum, STYPE = float8[], INITCOND = '{0,0,0}',
                FINALFUNC = segments._nps_final, COMBINEFUNC = segments._state_add,
                MSFUNC = segments._nps_accum, MINVFUNC = segments._nps_retract, MSTYPE = float8[],
                MINITCOND = '{0,0,0}', MFINALFUNC = segments._nps_final, PARALLEL = SAFE);
            CREATE AGGREGATE segments.nps_ci(score %1$s, confidence float8) (
                SFUNC = segments._nps_ci_accum, STYPE = float8[], INITCOND = '{0,0,0,0}',
                FINALFUNC = segments._nps_ci_final, COMBINEFUNC = segments._state_add,
                MSFUNC = segments._nps_ci_accum, MINVFUNC = segments._nps_ci_retract, MSTYPE = float8[],
                MINITCOND = '{0,0,0,0}', MFINALFUNC = segments._nps_ci_final, PARALLEL = SAFE);
            CREATE AGGREGATE segments.nps_ci(score %1$s) (
                SFUNC = segments._nps_ci_accum, STYPE = float8[], INITCOND = '{0,0,0,0}',
                FINALFUNC = segments._nps_ci_final, COMBINEFUNC = segments._state_add,
                MSFUNC = segments._nps_ci_accum, MINVFUNC = segments._nps_ci_retract, MSTYPE = float8[],
                MINITCOND = '{0,0,0,0}', MFINALFUNC = segments._nps_ci_final, PARALLEL = SAFE);
            COMMENT ON AGGREGATE segments.nps(%1$s) IS %2$L;
            COMMENT ON AGGREGATE segments.nps_ci(%1$s, float8) IS %3$L;
            COMMENT ON AGGREGATE segments.nps_ci(%1$s) IS %4$L;
        $f$, score_type,
            obj_description('segments.nps(integer)'::regprocedure, 'pg_proc'),
            obj_description('segments.nps_ci(integer, float8)'::regprocedure, 'pg_proc'),
            obj_description('segments.nps_ci(integer)'::regprocedure, 'pg_proc'));
    END LOOP;
END $$;

-- Win rate of opportunities: the proportion of won ones, with its Wilson interval (churn_rate_ci's state).
CREATE AGGREGATE segments.win_rate(won boolean, confidence float8) (
    SFUNC = segments._churn_ci_accum, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = segments._churn_rate_ci_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._churn_ci_accum, MINVFUNC = segments._churn_ci_retract, MSTYPE = float8[], MINITCOND = '{0,0,0}',
    MFINALFUNC = segments._churn_rate_ci_final, PARALLEL = SAFE);
CREATE AGGREGATE segments.win_rate(won boolean) (
    SFUNC = segments._churn_ci_accum, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = segments._churn_rate_ci_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._churn_ci_accum, MINVFUNC = segments._churn_ci_retract, MSTYPE = float8[], MINITCOND = '{0,0,0}',
    MFINALFUNC = segments._churn_rate_ci_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.win_rate(boolean, float8) IS
    'Win rate: won / decided opportunities (NULL = still open, ignored), with its Wilson score interval';
COMMENT ON AGGREGATE segments.win_rate(boolean) IS 'Win rate with its 95% Wilson score interval';

-- Time to close: exact percentiles (percentile_cont's interpolation) of closed − opened. The state holds every
-- duration, so it is a float8[] that grows (8 bytes a row); the percentiles asked for are part of it.
CREATE FUNCTION segments._durations_combine(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', '_durations_combine' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._durations_final(float8[]) RETURNS interval
    AS 'MODULE_PATHNAME', '_durations_final' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segments._durations_final_array(float8[]) RETURNS interval[]
    AS 'MODULE_PATHNAME', '_durations_final_array' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE;
DO $$
DECLARE time_type text;
BEGIN
    -- date and timestamp get their own overloads: an implicit cast to timestamptz would count a DST shift
    FOREACH time_type IN ARRAY ARRAY['timestamptz', 'timestamp', 'date'] LOOP
        EXECUTE format($f$
            CREATE FUNCTION segments._durations_accum(float8[], %1$s, %1$s) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_durations_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE FUNCTION segments._durations_accum(float8[], %1$s, %1$s, float8) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_durations_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE FUNCTION segments._durations_accum(float8[], %1$s, %1$s, float8[]) RETURNS float8[]
                AS 'MODULE_PATHNAME', '_durations_accum' LANGUAGE c IMMUTABLE PARALLEL SAFE;
            CREATE AGGREGATE segments.time_to_close(opened %1$s, closed %1$s) (
                SFUNC = segments._durations_accum, STYPE = float8[], FINALFUNC = segments._durations_final,
                COMBINEFUNC = segments._durations_combine, PARALLEL = SAFE);
            CREATE AGGREGATE segments.time_to_close(opened %1$s, closed %1$s, percentile float8) (
                SFUNC = segments._durations_accum, STYPE = float8[], FINALFUNC = segments._durations_final,
                COMBINEFUNC = segments._durations_combine, PARALLEL = SAFE);
            CREATE AGGREGATE segments.time_to_close(opened %1$s, closed %1$s, percentiles float8[]) (
                SFUNC = segments._durations_accum, STYPE = float8[], FINALFUNC = segments._durations_final_array,
                COMBINEFUNC = segments._durations_combine, PARALLEL = SAFE);
            COMMENT ON AGGREGATE segments.time_to_close(%1$s, %1$s) IS
                'Median time from opened to closed (rows with a NULL time, deals still open, are left out)';
            COMMENT ON AGGREGATE segments.time_to_close(%1$s, %1$s, float8) IS
                'A percentile (0..1) of the time from opened to closed, interpolated as percentile_cont does';
            COMMENT ON AGGREGATE segments.time_to_close(%1$s, %1$s, float8[]) IS
                'Several percentiles (0..1) of the time from opened to closed, as an interval[] in their order';
        $f$, time_type);
    END LOOP;
END $$;

CREATE AGGREGATE segments.churn_rate(churned boolean) (
    SFUNC = segments._churn_accum, STYPE = float8[], INITCOND = '{0,0}',
    FINALFUNC = segments._churn_rate_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._churn_accum, MINVFUNC = segments._churn_retract, MSTYPE = float8[], MINITCOND = '{0,0}',
    MFINALFUNC = segments._churn_rate_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.churn_rate(boolean) IS 'Logo churn: churned rows / non-NULL rows; none → NULL';

CREATE AGGREGATE segments.churn_rate_ci(churned boolean, confidence float8) (
    SFUNC = segments._churn_ci_accum, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = segments._churn_rate_ci_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._churn_ci_accum, MINVFUNC = segments._churn_ci_retract, MSTYPE = float8[], MINITCOND = '{0,0,0}',
    MFINALFUNC = segments._churn_rate_ci_final, PARALLEL = SAFE);
CREATE AGGREGATE segments.churn_rate_ci(churned boolean) (
    SFUNC = segments._churn_ci_accum, STYPE = float8[], INITCOND = '{0,0,0}',
    FINALFUNC = segments._churn_rate_ci_final, COMBINEFUNC = segments._state_add,
    MSFUNC = segments._churn_ci_accum, MINVFUNC = segments._churn_ci_retract, MSTYPE = float8[], MINITCOND = '{0,0,0}',
    MFINALFUNC = segments._churn_rate_ci_final, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.churn_rate_ci(boolean, float8) IS 'Churn rate with its Wilson score interval';
COMMENT ON AGGREGATE segments.churn_rate_ci(boolean) IS 'Churn rate with its 95% Wilson score interval';

CREATE AGGREGATE segments.nrr(arr_start numeric, arr_end numeric) (
    SFUNC = segments._revenue_accum, STYPE = float8[], INITCOND = '{0,0,0,0,0,0,0}',
    FINALFUNC = segments._nrr_final, COMBINEFUNC = segments._state_add, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.nrr(numeric, numeric) IS
    'Net revenue retention: Σ arr_end / Σ arr_start over accounts with arr_start > 0; a NULL arr_end counts as 0';

CREATE AGGREGATE segments.grr(arr_start numeric, arr_end numeric) (
    SFUNC = segments._revenue_accum, STYPE = float8[], INITCOND = '{0,0,0,0,0,0,0}',
    FINALFUNC = segments._grr_final, COMBINEFUNC = segments._state_add, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.grr(numeric, numeric) IS
    'Gross revenue retention: Σ least(arr_end, arr_start) / Σ arr_start over accounts with arr_start > 0';

CREATE AGGREGATE segments.arr_growth(arr_start numeric, arr_end numeric) (
    SFUNC = segments._revenue_accum, STYPE = float8[], INITCOND = '{0,0,0,0,0,0,0}',
    FINALFUNC = segments._arr_growth_final, COMBINEFUNC = segments._state_add, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.arr_growth(numeric, numeric) IS
    'ARR growth over all rows, new accounts included: (Σ arr_end − Σ arr_start) / Σ arr_start; NULL counts as 0';

CREATE AGGREGATE segments.clv(arpa numeric, gross_margin float8, churned boolean) (
    SFUNC = segments._clv_accum, STYPE = float8[], INITCOND = '{0,0,0,0}',
    FINALFUNC = segments._clv_final, COMBINEFUNC = segments._state_add, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.clv(numeric, float8, boolean) IS
    'Lifetime value of a segment: mean ARPA × mean gross margin / churn rate of the group (NULL when none churned)';
COMMENT ON FUNCTION segments.clv(float8, float8, float8) IS
    'Customer lifetime value, per-period formula: arpa × gross_margin / churn_rate';

CREATE FUNCTION segments._separation_accum(internal, text, float8) RETURNS internal
    AS 'MODULE_PATHNAME', '_separation_accum' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._separation_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', '_separation_combine' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION segments._separation_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', '_separation_serialize' LANGUAGE c STRICT PARALLEL SAFE;
CREATE FUNCTION segments._separation_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', '_separation_deserialize' LANGUAGE c STRICT PARALLEL SAFE;
CREATE FUNCTION segments._separation_final(internal) RETURNS segments.anova
    AS 'MODULE_PATHNAME', '_separation_final' LANGUAGE c PARALLEL SAFE;
CREATE AGGREGATE segments.separation(segment text, value float8) (
    SFUNC = segments._separation_accum, STYPE = internal, FINALFUNC = segments._separation_final,
    COMBINEFUNC = segments._separation_combine, SERIALFUNC = segments._separation_serialize,
    DESERIALFUNC = segments._separation_deserialize, PARALLEL = SAFE);
COMMENT ON AGGREGATE segments.separation(text, float8) IS
    'Are segments measurably different on a metric? One-way ANOVA F, p-value and eta squared across segments';
