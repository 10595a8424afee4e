-- segments.health(segmentation): one row per segment with the core health metrics, for dashboards and
-- materialized views (stable column names; refresh CONCURRENTLY with a unique index on segment).

CREATE FUNCTION segments.health(segmentation text)
RETURNS TABLE (segment text, accounts bigint, account_share float8, arr numeric, arr_share float8,
               avg_acv float8, median_acv float8, churn_rate float8, churn_lower float8, churn_upper float8,
               nrr float8, grr float8, arr_growth float8, nps numeric, nps_lower float8, nps_upper float8,
               clv float8, small_sample boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    col text := 't.%I';
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH rows AS (
            SELECT segments.segment_of(t.*, %1$L) AS segment, %3$s::numeric AS arr, %4$s::numeric AS arr_start,
                   %5$s::boolean AS churned, %6$s::integer AS nps
            FROM %2$s t
        ), per AS (
            SELECT r.segment, count(*) AS accounts, sum(r.arr) AS arr, avg(r.arr)::float8 AS avg_acv,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.arr) AS median_acv,
                   segments.churn_rate_ci(r.churned) AS churn,
                   segments.nrr(r.arr_start, r.arr) AS nrr, segments.grr(r.arr_start, r.arr) AS grr,
                   segments.arr_growth(r.arr_start, r.arr) AS arr_growth,
                   segments.nps(r.nps) AS nps, segments.nps_ci(r.nps) AS nps_ci,
                   -- lifetime value from revenue at the start of the period: churned accounts have none now
                   segments.clv(coalesce(r.arr_start, r.arr), %7$s, r.churned) AS clv
            FROM rows r GROUP BY r.segment
        ), defs AS (
            SELECT s.name, s.priority FROM segments.segment s WHERE s.segmentation = %1$L AND s.active
            UNION SELECT %8$L, NULL
        )
        SELECT d.name, coalesce(p.accounts, 0),
               coalesce(p.accounts, 0)::float8 / nullif(sum(p.accounts) OVER (), 0),
               p.arr, p.arr::float8 / nullif(sum(p.arr) OVER (), 0)::float8,
               p.avg_acv, p.median_acv, (p.churn).estimate, (p.churn).lower, (p.churn).upper,
               p.nrr, p.grr, p.arr_growth, p.nps, (p.nps_ci).lower, (p.nps_ci).upper, p.clv,
               coalesce(p.accounts, 0) < coalesce(%9$s, 0)
        FROM defs d LEFT JOIN per p ON p.segment = d.name
        ORDER BY d.priority NULLS LAST, d.name
    $q$, g.name, g.source,
         CASE WHEN g.arr_column IS NULL THEN 'NULL' ELSE format(col, g.arr_column) END,
         CASE WHEN g.arr_start_column IS NULL THEN 'NULL' ELSE format(col, g.arr_start_column) END,
         CASE WHEN g.churned_column IS NULL THEN 'NULL' ELSE format(col, g.churned_column) END,
         CASE WHEN g.nps_column IS NULL THEN 'NULL' ELSE format(col, g.nps_column) END,
         coalesce(g.gross_margin::text, 'NULL::float8'), g.default_segment,
         coalesce(g.min_segment_size::text, 'NULL'));
END $$;
COMMENT ON FUNCTION segments.health(text) IS
    'Segment health: accounts and share, ARR and share, average and median ACV, churn with Wilson interval, '
    'NRR, GRR, ARR growth, NPS with interval, CLV and a small-sample flag, from the metric columns the '
    'segmentation declares (arr_column, arr_start_column, churned_column, nps_column, gross_margin)';
