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
    $q$, g.name, segments._source(g),
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

---------------------------------------------------------------------------------------------------------
-- Health over time. A period [start, end) is measured on its cohort: the accounts a segment held at the
-- period's start, from membership history (refresh, tracking, backfill), with the facts the segmentation
-- declares: ARR at a time t is the account's ARR in the latest arr_facts snapshot at or before t (0 when
-- absent from it; NULL before the first snapshot and after the last), NPS the answers given in the period.
---------------------------------------------------------------------------------------------------------

-- The CTEs `arr_snaps` (each period with its snapshot times at start and end) and `arr_at` (ARR per snapshot
-- time and account) over a CTE `periods (period_start, period_end)`: ARR at a time, for every period query.
CREATE FUNCTION segments._arr_ctes(g segments.segmentation) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE WHEN g.arr_facts IS NULL THEN
        'arr_snaps AS (SELECT p.period_start, NULL::timestamptz AS snap_start, NULL::timestamptz AS snap_end FROM periods p),
         arr_at AS (SELECT NULL::timestamptz AS at, NULL::text AS account_key, NULL::numeric AS arr WHERE false)'
    ELSE format(
        'snaps AS (SELECT DISTINCT f.%2$I::timestamptz AS at FROM %1$s f WHERE f.%2$I IS NOT NULL),
         arr_snaps AS (
             SELECT p.period_start,
                    (SELECT max(s.at) FROM snaps s WHERE s.at <= p.period_start) AS snap_start,
                    CASE WHEN p.period_end <= (SELECT max(s.at) FROM snaps s)
                         THEN (SELECT max(s.at) FROM snaps s WHERE s.at <= p.period_end) END AS snap_end
             FROM periods p),
         arr_at AS (
             SELECT f.%2$I::timestamptz AS at, f.%3$I::text AS account_key, sum(f.%4$I)::numeric AS arr FROM %1$s f
             WHERE f.%2$I::timestamptz IN (SELECT snap_start FROM arr_snaps UNION SELECT snap_end FROM arr_snaps)
             GROUP BY 1, 2)',
        g.arr_facts, g.arr_facts_time, g.key_column, g.arr_facts_value)
    END
$$;

-- One period and segment: the row of segments.period_health() and segments.health_series().
CREATE TYPE segments.period_health AS (
    period_start timestamptz, period_end timestamptz, segment text, parent text, level integer,
    accounts bigint, accounts_end bigint, entered bigint, exited bigint, moved_in bigint, moved_out bigint,
    account_share float8, arr_start numeric, arr_end numeric, arr_share float8, arr_growth float8,
    nrr float8, grr float8, paying_accounts bigint, churned bigint, churn_rate float8,
    churn_lower float8, churn_upper float8, avg_acv float8, median_acv float8, nps_responses bigint,
    nps numeric, nps_lower float8, nps_upper float8, clv float8, small_sample boolean);
COMMENT ON TYPE segments.period_health IS 'Health of one segment in one period, for the cohort it held at the period''s start';

-- Period metrics for periods [starts[i], ends[i]): the one query behind period_health and health_series.
CREATE FUNCTION segments._health_periods(segmentation text, starts timestamptz[], ends timestamptz[])
RETURNS SETOF segments.period_health
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
-- the planner underestimates how many memberships overlap a period (a range join) and would sort them for
-- merge joins; hash joins are what these set sizes want
SET enable_mergejoin = off SET work_mem = '256MB' AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH periods AS (SELECT u.s AS period_start, u.e AS period_end FROM unnest($1, $2) u(s, e)),
        -- where a membership counts: exclusive, under the segment and its ancestors; tags, under the tag
        lineage AS (SELECT * FROM segments._lineage(%1$L) l WHERE %2$s),
        -- each account under each segment it belonged to at some instant of the period, and whether at the
        -- start and at the end (a history segment since deleted counts under its own name)
        spans AS (
            SELECT p.period_start, m.account_key, coalesce(l.ancestor, m.segment) AS segment,
                   bool_or(m.valid @> p.period_start) AS in_start, bool_or(m.valid @> p.period_end) AS in_end
            FROM periods p
            JOIN segments.membership m ON m.segmentation = %1$L AND m.valid && tstzrange(p.period_start, p.period_end, '[]')
            LEFT JOIN lineage l ON l.segment = m.segment
            GROUP BY 1, 2, 3),
        %3$s,
        -- each account of the period: in any segment at start / at end (a move, not a new or lost account),
        -- and its ARR then
        acct AS (
            SELECT s.period_start, s.account_key, bool_or(s.in_start) AS any_start, bool_or(s.in_end) AS any_end,
                   CASE WHEN max(a.snap_start) IS NOT NULL THEN coalesce(max(a0.arr), 0) END AS arr_start,
                   CASE WHEN max(a.snap_end) IS NOT NULL THEN coalesce(max(a1.arr), 0) END AS arr_end
            FROM spans s JOIN arr_snaps a ON a.period_start = s.period_start
            LEFT JOIN arr_at a0 ON a0.at = a.snap_start AND a0.account_key = s.account_key
            LEFT JOIN arr_at a1 ON a1.at = a.snap_end AND a1.account_key = s.account_key
            GROUP BY 1, 2),
        totals AS (
            SELECT a.period_start, count(*) FILTER (WHERE a.any_start) AS accounts,
                   sum(a.arr_start) FILTER (WHERE a.any_start) AS arr
            FROM acct a GROUP BY 1),
        rows AS (
            SELECT s.*, a.any_start, a.any_end, a.arr_start, a.arr_end,
                   coalesce(s.in_start AND a.arr_start > 0, false) AS paying,
                   -- logo churn: paying at the start, no ARR at the end (unknown while the end is unknown)
                   CASE WHEN s.in_start AND a.arr_start > 0 THEN a.arr_end = 0 END AS churned
            FROM spans s JOIN acct a USING (period_start, account_key)),
        per AS (
            SELECT r.period_start, r.segment,
                   count(*) FILTER (WHERE r.in_start) AS accounts, count(*) FILTER (WHERE r.in_end) AS accounts_end,
                   count(*) FILTER (WHERE NOT r.in_start) AS entered, count(*) FILTER (WHERE NOT r.in_end) AS exited,
                   count(*) FILTER (WHERE NOT r.in_start AND r.any_start) AS moved_in,
                   count(*) FILTER (WHERE NOT r.in_end AND r.any_end) AS moved_out,
                   sum(r.arr_start) FILTER (WHERE r.in_start) AS arr_start,
                   sum(r.arr_end) FILTER (WHERE r.in_start) AS arr_end,
                   segments.arr_growth(r.arr_start, r.arr_end) FILTER (WHERE r.in_start) AS arr_growth,
                   segments.nrr(r.arr_start, r.arr_end) FILTER (WHERE r.in_start) AS nrr,
                   segments.grr(r.arr_start, r.arr_end) FILTER (WHERE r.in_start) AS grr,
                   count(*) FILTER (WHERE r.paying) AS paying, count(*) FILTER (WHERE r.churned) AS churned,
                   segments.churn_rate_ci(r.churned) AS churn,
                   avg(r.arr_start) FILTER (WHERE r.paying)::float8 AS avg_acv,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY r.arr_start) FILTER (WHERE r.paying) AS median_acv,
                   segments.clv(r.arr_start, %4$s, r.churned) AS clv
            FROM rows r GROUP BY 1, 2),
        nps AS (%5$s),
        defs AS (
            SELECT l.segment AS name, s.parent, l.level, s.priority
            FROM segments._lineage(%1$L) l JOIN segments.segment s ON s.segmentation = %1$L AND s.name = l.segment
            WHERE l.ancestor = l.segment
            UNION ALL SELECT %6$L, NULL, 1, NULL),
        names AS (SELECT d.name FROM defs d UNION SELECT x.segment FROM per x)
        SELECT p.period_start, p.period_end, n.name, d.parent, d.level,
               coalesce(x.accounts, 0), coalesce(x.accounts_end, 0), coalesce(x.entered, 0), coalesce(x.exited, 0),
               coalesce(x.moved_in, 0), coalesce(x.moved_out, 0),
               coalesce(x.accounts, 0)::float8 / nullif(t.accounts, 0),
               x.arr_start, x.arr_end, x.arr_start::float8 / nullif(t.arr, 0)::float8, x.arr_growth, x.nrr, x.grr,
               coalesce(x.paying, 0), coalesce(x.churned, 0), (x.churn).estimate, (x.churn).lower, (x.churn).upper,
               x.avg_acv, x.median_acv, coalesce(v.responses, 0), v.nps, (v.ci).lower, (v.ci).upper, x.clv,
               coalesce(x.accounts, 0) < coalesce(%7$s, 0)
        FROM periods p CROSS JOIN names n
        LEFT JOIN defs d ON d.name = n.name
        LEFT JOIN per x ON x.period_start = p.period_start AND x.segment = n.name
        LEFT JOIN totals t ON t.period_start = p.period_start
        LEFT JOIN nps v ON v.period_start = p.period_start AND v.segment = n.name
        ORDER BY p.period_start, d.priority NULLS LAST, n.name
    $q$, g.name,
         CASE g.mode WHEN 'exclusive' THEN 'true' ELSE 'l.ancestor = l.segment' END,
         segments._arr_ctes(g),
         coalesce(g.gross_margin::text, 'NULL::float8'),
         CASE WHEN g.nps_facts IS NULL THEN
             'SELECT NULL::timestamptz AS period_start, NULL::text AS segment, 0::bigint AS responses,
                     NULL::numeric AS nps, NULL::segments.estimate AS ci WHERE false'
         ELSE format(
             -- the answers the period's cohort gave during the period
             'SELECT s.period_start, s.segment, count(f.%2$I) AS responses, segments.nps(f.%2$I) AS nps,
                     segments.nps_ci(f.%2$I) AS ci
              FROM spans s JOIN periods p ON p.period_start = s.period_start
              JOIN %1$s f ON f.%3$I::text = s.account_key
                         AND f.%4$I::timestamptz >= p.period_start AND f.%4$I::timestamptz < p.period_end
              WHERE s.in_start GROUP BY 1, 2',
             g.nps_facts, g.nps_facts_value, g.key_column, g.nps_facts_time)
         END,
         g.default_segment, coalesce(g.min_segment_size::text, 'NULL'))
    USING starts, ends;
END $$;

-- A period runs from an earlier to a later finite time.
CREATE FUNCTION segments._check_period(from_time timestamptz, to_time timestamptz) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF from_time IS NULL OR to_time IS NULL THEN
        RAISE EXCEPTION 'a period needs a start and an end' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(from_time) OR NOT isfinite(to_time) OR from_time >= to_time THEN
        RAISE EXCEPTION 'a period runs from an earlier to a later finite time'
            USING ERRCODE = '22023', DETAIL = format('from %s to %s', from_time, to_time);
    END IF;
END $$;

-- The periods of a series: [from + k·step, from + (k+1)·step) up to to_time (the last one cut there).
CREATE FUNCTION segments._series_periods(from_time timestamptz, to_time timestamptz, step interval,
                                         OUT starts timestamptz[], OUT ends timestamptz[])
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM segments._check_period(from_time, to_time);
    IF step IS NULL OR from_time + step <= from_time THEN
        RAISE EXCEPTION 'step % does not move forward', coalesce(step::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'e.g. ''1 month''';
    END IF;
    IF from_time + 10000 * step < to_time THEN
        RAISE EXCEPTION 'a series of more than 10000 periods is too long'
            USING ERRCODE = '54000', HINT = 'use a longer step or a shorter span';
    END IF;
    SELECT array_agg(s ORDER BY s), array_agg(least(s + step, to_time) ORDER BY s) INTO starts, ends
    FROM generate_series(from_time, to_time, step) s WHERE s < to_time;
END $$;

CREATE FUNCTION segments.period_health(segmentation text, from_time timestamptz, to_time timestamptz)
RETURNS SETOF segments.period_health
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM segments._check_period(from_time, to_time);
    RETURN QUERY SELECT * FROM segments._health_periods(segmentation, ARRAY[from_time], ARRAY[to_time]);
END $$;
COMMENT ON FUNCTION segments.period_health(text, timestamptz, timestamptz) IS
    'Health of one period [from_time, to_time) for its cohort (the accounts each segment held at the start): '
    'accounts at start and end, entered, exited, moved in and out, ARR at start and end with share, growth, NRR '
    'and GRR, logo churn with Wilson interval, ACV of paying accounts, NPS of the period''s answers, CLV';

CREATE FUNCTION segments.health_series(segmentation text, from_time timestamptz, to_time timestamptz,
                                       step interval DEFAULT '1 month')
RETURNS SETOF segments.period_health
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT h.* FROM segments._series_periods(health_series.from_time, health_series.to_time, health_series.step) s,
                    segments._health_periods(health_series.segmentation, s.starts, s.ends) h
$$;
COMMENT ON FUNCTION segments.health_series(text, timestamptz, timestamptz, interval) IS
    'One row per period and segment from from_time to to_time at step (default a month), with the columns of '
    'segments.period_health: the query behind a trend chart or a scheduled materialized view';

-- Migration per period: accounts (and their ARR) by segment at each period's start and at its end.
CREATE FUNCTION segments.migration_series(segmentation text, from_time timestamptz, to_time timestamptz,
                                          step interval DEFAULT '1 month')
RETURNS TABLE (period_start timestamptz, period_end timestamptz, from_segment text, to_segment text,
               accounts bigint, arr_start numeric, arr_end numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    p record;
BEGIN
    IF g.mode <> 'exclusive' THEN
        RAISE EXCEPTION 'segmentation "%" is overlapping: its accounts carry tags, they do not move between segments', g.name
            USING ERRCODE = '0A000', HINT = 'segments.health_series() counts who entered and exited each tag';
    END IF;
    p := segments._series_periods(from_time, to_time, step);
    RETURN QUERY EXECUTE format($q$
        WITH periods AS (SELECT u.s AS period_start, u.e AS period_end FROM unnest($1, $2) u(s, e)),
        %2$s,
        at_start AS (SELECT p.period_start, m.account_key, m.segment FROM periods p
                     JOIN segments.membership m ON m.segmentation = %1$L AND m.valid @> p.period_start),
        at_end AS (SELECT p.period_start, m.account_key, m.segment FROM periods p
                   JOIN segments.membership m ON m.segmentation = %1$L AND m.valid @> p.period_end),
        moves AS (
            SELECT coalesce(f.period_start, t.period_start) AS period_start,
                   coalesce(f.account_key, t.account_key) AS account_key, f.segment AS from_segment, t.segment AS to_segment
            FROM at_start f FULL JOIN at_end t ON t.period_start = f.period_start AND t.account_key = f.account_key)
        SELECT m.period_start, p.period_end, m.from_segment, m.to_segment, count(*),
               sum(CASE WHEN a.snap_start IS NOT NULL THEN coalesce(a0.arr, 0) END),
               sum(CASE WHEN a.snap_end IS NOT NULL THEN coalesce(a1.arr, 0) END)
        FROM moves m JOIN periods p USING (period_start) JOIN arr_snaps a USING (period_start)
        LEFT JOIN arr_at a0 ON a0.at = a.snap_start AND a0.account_key = m.account_key
        LEFT JOIN arr_at a1 ON a1.at = a.snap_end AND a1.account_key = m.account_key
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 3 NULLS FIRST, 4 NULLS FIRST
    $q$, g.name, segments._arr_ctes(g))
    USING p.starts, p.ends;
END $$;
COMMENT ON FUNCTION segments.migration_series(text, timestamptz, timestamptz, interval) IS
    'Migration matrix per period: accounts and their ARR at start and end, by segment at the period''s start and at '
    'its end (from NULL = new to the segmentation, to NULL = gone; from = to: stayed)';

---------------------------------------------------------------------------------------------------------
-- BI-ready views: commented, flat columns (numbers, text, times; no composites or ranges)
---------------------------------------------------------------------------------------------------------

-- What each column of the health views means: the comments segments.create_views() puts on them.
CREATE FUNCTION segments._column_docs() RETURNS TABLE (column_name text, description text)
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    VALUES
    ('period_start', 'Start of the period (inclusive); the cohort is the accounts in the segment then'),
    ('period_end', 'End of the period (exclusive)'),
    ('segment', 'Segment name (the default segment holds accounts that match no rule)'),
    ('parent', 'Parent segment in the hierarchy (NULL for a top-level segment)'),
    ('level', 'Depth in the hierarchy: 1 = top level (filter on it for macro or micro segments)'),
    ('accounts', 'Accounts in the segment (a parent counts its subtree; a tag every account carrying it)'),
    ('accounts_end', 'Accounts in the segment at the end of the period'),
    ('entered', 'Accounts in the segment at some time in the period but not at its start'),
    ('exited', 'Accounts in the segment at some time in the period but not at its end'),
    ('moved_in', 'Entered accounts that were in another segment at the start'),
    ('moved_out', 'Exited accounts that are in another segment at the end'),
    ('account_share', 'Accounts / all accounts (0..1; tags may add up to more than 1)'),
    ('arr', 'Total ARR of the segment''s accounts (the arr column)'),
    ('arr_start', 'ARR of the cohort at the start of the period'),
    ('arr_end', 'ARR of the cohort at the end of the period (NULL when not yet known)'),
    ('arr_share', 'ARR / the ARR of all accounts (0..1)'),
    ('avg_acv', 'Average contract value: mean ARR of the paying accounts (ARR > 0)'),
    ('median_acv', 'Median ARR of the paying accounts (ARR > 0)'),
    ('paying_accounts', 'Cohort accounts with ARR > 0 at the start'),
    ('churned', 'Paying accounts with no ARR at the end (logo churn)'),
    ('churn_rate', 'Churn rate (0..1): of the churned column (health), or logo churn of the paying cohort (periods)'),
    ('churn_lower', 'Lower bound of the 95% Wilson interval of the churn rate'),
    ('churn_upper', 'Upper bound of the 95% Wilson interval of the churn rate'),
    ('nrr', 'Net revenue retention: ARR at the end / ARR at the start, over accounts with ARR at the start'),
    ('grr', 'Gross revenue retention: like NRR with expansion capped at the starting ARR'),
    ('arr_growth', 'ARR growth: (ARR at the end - ARR at the start) / ARR at the start'),
    ('nps_responses', 'NPS answers given in the period by the cohort'),
    ('nps', 'Net Promoter Score (-100..100)'),
    ('nps_lower', 'Lower bound of the 95% interval of the NPS'),
    ('nps_upper', 'Upper bound of the 95% interval of the NPS'),
    ('clv', 'Customer lifetime value: mean ARR x gross margin / churn rate'),
    ('small_sample', 'Fewer accounts than the segmentation''s min_segment_size'),
    ('segmentation', 'The segmentation'),
    ('account_key', 'The account''s key (the segmentation''s key column, as text)'),
    ('valid_from', 'When the account entered the segment'),
    ('valid_to', 'When the account left the segment (NULL: still a member)'),
    ('is_current', 'Whether the account is in the segment now')
$$;

-- the columns of the period type carry the same descriptions
DO $$
DECLARE col record;
BEGIN
    FOR col IN SELECT a.attname, d.description FROM pg_attribute a
               JOIN segments._column_docs() d ON d.column_name = a.attname
               WHERE a.attrelid = 'segments.period_health'::regclass AND a.attnum > 0 LOOP
        EXECUTE format('COMMENT ON COLUMN segments.period_health.%I IS %L', col.attname, col.description);
    END LOOP;
END $$;

-- Creates (or replaces) the views a dashboard reads for one segmentation, in schema `into_schema`:
-- <name>_health (now), <name>_health_monthly (the last `months` full months) and <name>_membership
-- (history with valid_from / valid_to), every column commented.
CREATE FUNCTION segments.create_views(segmentation text, into_schema name DEFAULT 'public', months integer DEFAULT 12)
RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    v text;
    col record;
BEGIN
    IF months IS NULL OR months < 1 OR months > 1200 THEN
        RAISE EXCEPTION 'months must be between 1 and 1200' USING ERRCODE = '22023';
    END IF;
    v := format('%I.%I', into_schema, g.name || '_health');
    EXECUTE format('CREATE OR REPLACE VIEW %s AS SELECT * FROM segments.health(%L)', v, g.name);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v, format('Health of segmentation %s now (segments.health)', g.name));
    RETURN NEXT v::regclass;
    v := format('%I.%I', into_schema, g.name || '_health_monthly');
    EXECUTE format($q$CREATE OR REPLACE VIEW %s AS
        SELECT * FROM segments.health_series(%L, date_trunc('month', now()) - %s * interval '1 month', date_trunc('month', now()))$q$,
        v, g.name, months);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v,
                   format('Health of segmentation %s per month over the last %s full months (segments.health_series)', g.name, months));
    RETURN NEXT v::regclass;
    v := format('%I.%I', into_schema, g.name || '_membership');
    -- security_invoker: a reader sees only the memberships its own rights allow
    EXECUTE format($q$CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS
        SELECT m.segmentation, m.account_key, m.segment, lower(m.valid) AS valid_from, upper(m.valid) AS valid_to,
               upper_inf(m.valid) AS is_current
        FROM segments.membership m WHERE m.segmentation = %L$q$, v, g.name);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v, format('Membership history of segmentation %s (source %s)', g.name, g.source));
    RETURN NEXT v::regclass;
    FOR col IN
        SELECT c.oid::regclass AS view, a.attname, d.description
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
        JOIN segments._column_docs() d ON d.column_name = a.attname
        WHERE n.nspname = into_schema AND c.relname IN (g.name || '_health', g.name || '_health_monthly', g.name || '_membership')
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', col.view, col.attname, col.description);
    END LOOP;
END $$;
COMMENT ON FUNCTION segments.create_views(text, name, integer) IS
    'Creates or replaces commented, flat views for BI tools: <segmentation>_health, <segmentation>_health_monthly '
    '(the last months full months) and <segmentation>_membership (valid_from / valid_to), in the schema given';

-- The segmentations with their source as text, for BI tools (which do not read regclass).
CREATE VIEW segments.segmentation_overview AS
SELECT g.name AS segmentation, g.source::text AS source, g.key_column, g.mode, g.default_segment, g.description,
       (SELECT count(*) FROM segments.segment s WHERE s.segmentation = g.name AND s.active) AS active_segments,
       g.updated_at
FROM segments.segmentation g;
COMMENT ON VIEW segments.segmentation_overview IS 'The segmentations, with their source as text (for BI tools)';
COMMENT ON COLUMN segments.segmentation_overview.segmentation IS 'The segmentation';
COMMENT ON COLUMN segments.segmentation_overview.source IS 'The relation it segments, as a qualified name';
COMMENT ON COLUMN segments.segmentation_overview.key_column IS 'The account key column of the source';
COMMENT ON COLUMN segments.segmentation_overview.mode IS 'exclusive (one segment per account) or overlapping (tags)';
COMMENT ON COLUMN segments.segmentation_overview.default_segment IS 'Segment of accounts that match no rule';
COMMENT ON COLUMN segments.segmentation_overview.description IS 'What the segmentation is for';
COMMENT ON COLUMN segments.segmentation_overview.active_segments IS 'Number of active segments';
COMMENT ON COLUMN segments.segmentation_overview.updated_at IS 'When the segmentation row last changed';
