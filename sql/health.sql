-- segments.health(segmentation [, level]): one row per segment with the core health metrics, for dashboards and
-- materialized views (stable column names; refresh CONCURRENTLY with a unique index on segment).
--
-- Where an account counts: in an exclusive segmentation under its segment and every ancestor of it (a parent
-- reports the rollup of its subtree); in an overlapping one under each of its tags (segments_of), so shares of
-- tags need not sum to 1. Accounts matching nothing count under the default segment.

CREATE FUNCTION segments.health(segmentation text, level integer)
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
        WITH lineage AS (SELECT * FROM segments._lineage(%1$L)),
        rows AS (
            SELECT %10$s AS seg, %11$s AS hits, %3$s::numeric AS arr, %4$s::numeric AS arr_start,
                   %5$s::boolean AS churned, %6$s AS nps
            FROM %2$s t
        ), totals AS (SELECT count(*) AS accounts, sum(r.arr) AS arr FROM rows r),
        per AS (
            SELECT counted.ancestor AS segment, count(*) AS accounts, sum(r.arr) AS arr,
                   -- ACV is a contract value: accounts without ARR (prospects, churned) are not averaged in
                   avg(r.arr) FILTER (WHERE r.arr > 0)::float8 AS avg_acv,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.arr) FILTER (WHERE r.arr > 0) AS median_acv,
                   segments.churn_rate_ci(r.churned) AS churn,
                   segments.nrr(r.arr_start, r.arr) AS nrr, segments.grr(r.arr_start, r.arr) AS grr,
                   segments.arr_growth(r.arr_start, r.arr) AS arr_growth,
                   segments.nps(r.nps) AS nps, segments.nps_ci(r.nps) AS nps_ci,
                   -- lifetime value from revenue at the start of the period: churned accounts have none now
                   segments.clv(coalesce(r.arr_start, r.arr), %7$s, r.churned) AS clv
            FROM %12$s GROUP BY counted.ancestor
        ), defs AS (
            SELECT s.name, s.priority, l.level FROM segments.segment s
            JOIN lineage l ON l.segment = s.name AND l.ancestor = s.name
            WHERE s.segmentation = %1$L AND s.active
            UNION SELECT %8$L, NULL, NULL
        )
        SELECT d.name, coalesce(p.accounts, 0),
               coalesce(p.accounts, 0)::float8 / nullif(totals.accounts, 0),
               p.arr, p.arr::float8 / nullif(totals.arr, 0)::float8,
               p.avg_acv, p.median_acv, (p.churn).estimate, (p.churn).lower, (p.churn).upper,
               p.nrr, p.grr, p.arr_growth, p.nps, (p.nps_ci).lower, (p.nps_ci).upper, p.clv,
               coalesce(p.accounts, 0) < coalesce(%9$s, 0)
        FROM defs d CROSS JOIN totals LEFT JOIN per p ON p.segment = d.name
        WHERE $1 IS NULL OR d.level IS NULL OR d.level = $1
        ORDER BY d.priority NULLS LAST, d.name
    $q$, g.name, g.source,
         CASE WHEN g.arr_column IS NULL THEN 'NULL' ELSE format(col, g.arr_column) END,
         CASE WHEN g.arr_start_column IS NULL THEN 'NULL' ELSE format(col, g.arr_start_column) END,
         CASE WHEN g.churned_column IS NULL THEN 'NULL' ELSE format(col, g.churned_column) END,
         CASE WHEN g.nps_column IS NULL THEN 'NULL::integer' ELSE format(col, g.nps_column) END,
         coalesce(g.gross_margin::text, 'NULL::float8'), g.default_segment,
         coalesce(g.min_segment_size::text, 'NULL'),
         format('segments.segment_of(t.*, %L)', g.name),
         CASE g.mode WHEN 'exclusive' THEN 'NULL::text[]' ELSE format('segments.segments_of(t.*, %L)', g.name) END,
         segments._counted_in(g))
    USING level;
END $$;
COMMENT ON FUNCTION segments.health(text, integer) IS
    'Segment health at one level of the hierarchy (1 = top; NULL = every segment; the default segment always): '
    'the columns of segments.health(segmentation)';

CREATE FUNCTION segments.health(segmentation text)
RETURNS TABLE (segment text, accounts bigint, account_share float8, arr numeric, arr_share float8,
               avg_acv float8, median_acv float8, churn_rate float8, churn_lower float8, churn_upper float8,
               nrr float8, grr float8, arr_growth float8, nps numeric, nps_lower float8, nps_upper float8,
               clv float8, small_sample boolean)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM segments.health(health.segmentation, NULL::integer)
$$;
COMMENT ON FUNCTION segments.health(text) IS
    'Segment health: accounts and share, ARR and share, average and median ACV (paying accounts), churn with '
    'Wilson interval, NRR, GRR, ARR growth, NPS with interval, CLV and a small-sample flag, from the metric columns '
    'the segmentation declares (arr_column, arr_start_column, churned_column, nps_column, gross_margin); a parent '
    'reports its subtree, a tag every account that carries it';
