-- Membership over time: who was in which segment when, kept as validity ranges; refresh, live tracking,
-- point-in-time lookups, migration matrices and change previews.

-- No foreign key to segments.segmentation: checking it costs more than writing the row (a first refresh
-- writes one row per account). Triggers on segmentation carry renames and deletions over instead.
CREATE TABLE segments.membership (
    -- byte-order collation: these are identifiers, and C comparisons keep the indexes cheap
    segmentation text COLLATE "C" NOT NULL,
    account_key  text COLLATE "C" NOT NULL,
    segment      text COLLATE "C" NOT NULL,
    valid        tstzrange NOT NULL CHECK (NOT isempty(valid)),
    exclusive    boolean NOT NULL,
    -- Exclusive segmentations: one segment per account at any instant. Past (closed) ranges may not overlap:
    -- a GiST exclusion constraint. Open ranges are held to one per account by the unique index below, which
    -- costs a btree insert rather than a GiST one (30 µs a row, so 30 s for a first refresh of 1M accounts);
    -- an open range starts where the account's last closed range ended, because refresh and tracking close
    -- and open at the same instant. Deferred, so one statement may close and open in either order. The account
    -- comes first: GiST splits pages on the leading column, and a segmentation's name is the same on every row
    -- (that order makes closing a membership about a quarter cheaper).
    CONSTRAINT one_segment_at_a_time EXCLUDE USING gist
        (account_key WITH =, segmentation WITH =, valid WITH &&) WHERE (exclusive AND NOT upper_inf(valid))
        DEFERRABLE INITIALLY DEFERRED,
    -- overlapping segmentations: never the same membership twice at once
    CONSTRAINT no_repeated_membership EXCLUDE USING gist
        (account_key WITH =, segmentation WITH =, segment WITH =, valid WITH &&) WHERE (NOT exclusive AND NOT upper_inf(valid))
        DEFERRABLE INITIALLY DEFERRED
);
CREATE UNIQUE INDEX membership_open ON segments.membership (segmentation, account_key)
    WHERE upper_inf(valid) AND exclusive;
CREATE UNIQUE INDEX membership_open_tags ON segments.membership (segmentation, account_key, segment)
    WHERE upper_inf(valid) AND NOT exclusive;
COMMENT ON TABLE segments.membership IS 'Segment membership with validity ranges, written by segments.refresh() and tracking triggers';
COMMENT ON COLUMN segments.membership.segmentation IS 'The segmentation';
COMMENT ON COLUMN segments.membership.account_key IS 'The account''s key (the segmentation''s key_column, as text)';
COMMENT ON COLUMN segments.membership.segment IS 'The segment the account was in';
COMMENT ON COLUMN segments.membership.valid IS 'When: [entered, left); an open upper bound means still a member';
COMMENT ON COLUMN segments.membership.exclusive IS 'Whether the segmentation was exclusive when the row was written';
SELECT pg_catalog.pg_extension_config_dump('segments.membership', '');

-- Membership is readable (and writable, by refresh and tracking) only where the role can read the
-- segmentation's source: the policy's subquery runs once per statement (a hashed subplan), not per row.
-- The extension's owner (the superuser who installed it) is not subject to it.
ALTER TABLE segments.membership ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_source ON segments.membership
    USING (segmentation IN (SELECT g.name FROM segments.segmentation g
                            WHERE pg_catalog.has_table_privilege(g.source, 'SELECT')))
    WITH CHECK (segmentation IN (SELECT g.name FROM segments.segmentation g
                                 WHERE pg_catalog.has_table_privilege(g.source, 'SELECT')));

-- security_invoker: the view shows what its reader may see (membership's policy applies to the reader)
CREATE VIEW segments.current_membership WITH (security_invoker = true) AS
SELECT segmentation, account_key, segment, lower(valid) AS since
FROM segments.membership WHERE upper_inf(valid);
COMMENT ON VIEW segments.current_membership IS 'Open memberships: each account''s segment(s) as of the last refresh or tracked change';
COMMENT ON COLUMN segments.current_membership.segmentation IS 'The segmentation';
COMMENT ON COLUMN segments.current_membership.account_key IS 'The account''s key';
COMMENT ON COLUMN segments.current_membership.segment IS 'The segment';
COMMENT ON COLUMN segments.current_membership.since IS 'When the account entered the segment';

-- Raises the NULL-key error from inside the synchronising statement (a CASE branch taken only for a NULL).
CREATE FUNCTION segments._null_key(segmentation text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'an account of segmentation "%" has a NULL key', segmentation
        USING ERRCODE = '23502', HINT = 'every account needs a key: make the key column NOT NULL';
END $$;

-- Whether an active segment of the segmentation has a behavioral condition (reads a related table): its
-- accounts are assigned with the set-based query (to_query) rather than looked up one by one.
CREATE FUNCTION segments._reads_related(segmentation text) RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM segments.segment s WHERE s.segmentation = _reads_related.segmentation AND s.active
               AND jsonb_path_exists(s.rule, 'lax $.**.related'));

-- Whether a relation is a Citus table (distributed, reference or Citus-managed local): one that refresh reads
-- through _gathered and track() refuses. False where Citus is not installed.
CREATE FUNCTION segments._distributed(relation regclass) RETURNS boolean LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE found boolean := false;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)' INTO found USING relation;
    END IF;
    RETURN found;
END $$;

-- A distributed source's assignments, gathered into a temporary table on the coordinator by one set-based
-- statement: each shard classifies its own accounts (the planner hook sends it the ruleset) and sends back
-- only (key, segment). Citus cannot plan the synchronising statement's row-address updates of membership
-- (a local table) against a distributed table, so refresh reads this copy instead.
CREATE FUNCTION segments._gathered(g segments.segmentation) RETURNS regclass LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DROP TABLE IF EXISTS pg_temp._segments_gathered;
    EXECUTE format('CREATE TEMPORARY TABLE _segments_gathered ON COMMIT DROP AS %s',
        CASE WHEN g.mode <> 'exclusive' THEN
                 format('SELECT t.%I, segments.segments_of(t.*, %L) AS segments_segments FROM %s t', g.key_column, g.name, g.source)
             WHEN segments._reads_related(g.name) THEN
                 segments._assignment_sql(g.name, g.source)
             ELSE format('SELECT t.%I, segments.segment_of(t.*, %L) AS segments_segment FROM %s t', g.key_column, g.name, g.source)
        END);
    RETURN 'pg_temp._segments_gathered'::regclass;
END $$;

-- The one statement that brings membership in line with the source, for every account (scope NULL) or for
-- the accounts whose keys `scope` selects. It closes memberships that no longer hold, opens new ones,
-- optionally notifies, and returns (entered, left, moved, unchanged, side effects). Only the changed
-- accounts are kept between steps. Keys are compared in the C collation, the open-membership index's.
-- The main query runs `closed` to completion; `opened`, unread, runs after it (the executor finishes unread
-- data-modifying CTEs last), so an account's old range is closed before its new one opens.
CREATE FUNCTION segments._sync_sql(g segments.segmentation, scope text, at text, into_clause text DEFAULT '') RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    exclusive boolean := g.mode = 'exclusive';
    assigned text;
    -- the source is filtered on its key in the key's own type, so its index serves a tracked change
    source_filter text := CASE WHEN scope IS NULL THEN '' ELSE format('WHERE t.%I IN (%s)', g.key_column, format(scope, '')) END;
    membership_filter text := CASE WHEN scope IS NULL THEN '' ELSE format('AND m.account_key IN (%s)', format(scope, '::text')) END;
    unchanged text;
    from_relation text := g.source::text;
BEGIN
    PERFORM segments._source(g);
    PERFORM FROM pg_attribute a
    WHERE a.attrelid = g.source AND a.attname = g.key_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" does not exist in %', g.key_column, g.source
            USING ERRCODE = '42703', HINT = 'set segments.segmentation.key_column to the account key of the source';
    END IF;
    assigned := CASE WHEN exclusive THEN format('(VALUES (segments.segment_of(t.*, %L))) AS s(segment)', g.name)
                     ELSE format('unnest(coalesce(nullif(segments.segments_of(t.*, %L), ''{}''), ARRAY[%L])) AS s(segment)',
                                 g.name, g.default_segment)
                END;
    -- A distributed source's assignments, gathered from the shards (segments._gathered), are read as they are.
    IF g.source = to_regclass('pg_temp._segments_gathered') THEN
        assigned := CASE WHEN exclusive THEN '(VALUES (t.segments_segment)) AS s(segment)'
                         ELSE format('unnest(coalesce(nullif(t.segments_segments, ''{}''), ARRAY[%L])) AS s(segment)', g.default_segment)
                    END;
    -- Every account of an exclusive segmentation with behavioral conditions: the set-based query, which reads
    -- each related table once (grouped by the key) instead of looking each account up.
    ELSIF scope IS NULL AND exclusive AND segments._reads_related(g.name) THEN
        from_relation := format('(%s)', segments._assignment_sql(g.name, g.source));
        assigned := '(VALUES (t.segments_segment)) AS s(segment)';
    END IF;
    -- unchanged, without another pass over the join: exclusive, every account (a row of the source) entered,
    -- moved or stayed; overlapping, every open membership left or stayed
    unchanged := CASE WHEN exclusive THEN format('(SELECT count(*) FROM %s t %s) - count(new_segment)', g.source, source_filter)
                      ELSE format('(SELECT count(*) FROM segments.membership m WHERE m.segmentation = %L
                                    AND upper_inf(m.valid) AND NOT m.exclusive %s) - count(old_segment)', g.name, membership_filter)
                 END;
    -- Exclusive: one row per account, joined on the key alone, so a move is one row with both segments.
    -- Overlapping: one row per (account, segment) membership.
    RETURN format($q$
        WITH changed AS MATERIALIZED (
            SELECT coalesce(n.account_key, o.account_key) AS account_key, o.segment AS old_segment,
                   n.segment AS new_segment, o.row_id
            FROM (SELECT CASE WHEN t.%2$I IS NULL THEN segments._null_key(%1$L) ELSE t.%2$I::text END COLLATE "C" AS account_key,
                         s.segment
                  FROM %3$s t CROSS JOIN LATERAL %4$s
                  %5$s) n
            -- ordered in its own subquery: then the open-membership index feeds a merge join in key order
            -- (flattened into the full join, the planner would not see that order and sort again)
            FULL JOIN (SELECT m.ctid AS row_id, m.account_key, m.segment FROM segments.membership m
                       WHERE m.segmentation = %1$L AND upper_inf(m.valid) AND m.exclusive = %8$L %6$s
                       ORDER BY m.account_key) o
                 ON o.account_key = n.account_key %10$s
            WHERE n.segment IS DISTINCT FROM o.segment
        ), closed AS (
            -- by row address (a TID scan), however many there are: a join here would scan all of membership
            UPDATE segments.membership m SET valid = tstzrange(lower(m.valid), %7$s)
            WHERE m.ctid = ANY (ARRAY(SELECT c.row_id FROM changed c WHERE c.row_id IS NOT NULL))
            RETURNING 1
        ), opened AS (
            INSERT INTO segments.membership (segmentation, account_key, segment, valid, exclusive)
            SELECT %1$L, c.account_key, c.new_segment, tstzrange(%7$s, NULL), %8$L FROM changed c
            WHERE c.new_segment IS NOT NULL
            ORDER BY c.account_key  -- key order: the open-membership index fills page by page
        ), notified AS (
            -- one notification, with no account data (any role may LISTEN): segments.changes() says who moved
            SELECT count(pg_notify('segments_membership',
                                   json_build_object('segmentation', %1$L, 'at', %7$s)::text)) AS n
            FROM (SELECT 1 FROM changed LIMIT 1) c
            WHERE (SELECT s.notify FROM segments.segmentation s WHERE s.name = %1$L)
        )
        SELECT count(*) FILTER (WHERE old_segment IS NULL) AS entered,
               count(*) FILTER (WHERE new_segment IS NULL) AS "left",
               count(*) FILTER (WHERE new_segment <> old_segment) AS moved,
               %11$s AS unchanged,
               (SELECT count(*) FROM closed) + (SELECT n FROM notified) AS side_effects
        %9$s
        FROM changed
    $q$, g.name, g.key_column, from_relation, assigned, source_filter, membership_filter, at, exclusive, into_clause,
         CASE WHEN exclusive THEN '' ELSE 'AND o.segment = n.segment' END, unchanged);
END $$;

-- Whether the key column has a unique index of its own (so no two rows can share a key).
CREATE FUNCTION segments._key_is_unique(g segments.segmentation) RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               WHERE i.indrelid = g.source AND i.indisunique AND i.indimmediate AND i.indnkeyatts = 1
                 AND i.indpred IS NULL AND a.attname = g.key_column);

-- Refreshes (and backfills) take this advisory lock exclusively, tracking triggers shared. It is the lock of
-- the segmentation's source, not of the segmentation: a second refresh waits for the first to commit, and
-- refreshes of several segmentations of one table in one transaction, in any order, hold the one lock a
-- tracked write of that table waits for, so they cannot deadlock with it.
CREATE FUNCTION segments._lock_key(segmentation text) RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT hashtextextended('pg_segments.source:' || g.source::oid::text, 0)
            FROM segments.segmentation g WHERE g.name = _lock_key.segmentation);

-- Comparing every account with its open membership joins two large sets. With no open membership yet (a
-- first refresh) a hash join costs nothing; after that a merge join of the two key-sorted streams beats
-- probing a million-entry hash table, whose every probe is a cache miss. Sorts get room in memory, and
-- there is no JIT: compiling the statement costs more than it saves.
CREATE FUNCTION segments.refresh(segmentation text, OUT entered bigint, OUT "left" bigint, OUT moved bigint,
                                 OUT unchanged bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_hashjoin = on SET enable_mergejoin = on
SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    reading segments.segmentation;  -- g, reading its source from where it is safe to
    ignored bigint;
    duplicate text;
    statement text;
    page_cost text := current_setting('random_page_cost');
BEGIN
    -- runs as the extension's owner: the caller must be able to read every account itself
    PERFORM segments._check_caller_reads_all(g, 'refresh');
    PERFORM pg_advisory_xact_lock(segments._lock_key(g.name));
    -- The join method is steered for a table source only: a view's own joins are left to the planner.
    IF (SELECT relkind FROM pg_class WHERE oid = g.source) NOT IN ('r', 'p', 'm') THEN
        NULL;
    ELSIF EXISTS (SELECT 1 FROM segments.membership m WHERE m.segmentation = g.name AND upper_inf(m.valid) AND m.exclusive)
       OR EXISTS (SELECT 1 FROM segments.membership m WHERE m.segmentation = g.name AND upper_inf(m.valid) AND NOT m.exclusive) THEN
        PERFORM set_config('enable_hashjoin', 'off', true);  -- undone when refresh returns (its SET clause)
        -- Open memberships were written in key order, so reading them through their index reads the heap in
        -- order too. Right after a big refresh, before autovacuum has analyzed membership, the planner does
        -- not know that and sorts them again; pricing random reads like sequential ones (for this statement
        -- only) says it.
        PERFORM set_config('random_page_cost', current_setting('seq_page_cost'), true);
    ELSE
        PERFORM set_config('enable_mergejoin', 'off', true);
    END IF;
    -- A view or foreign table runs code when read (the view's functions, the user mapping): it is read as its
    -- owner, into a temporary copy the synchronising statement reads, never as ours (see _read_as_owner).
    reading := g;
    reading.source := CASE WHEN segments._distributed(g.source) THEN segments._gathered(g)
                           ELSE segments._read_as_owner(g.source, '_segments_source') END;
    statement := segments._sync_sql(reading, NULL, quote_literal(clock_timestamp()) || '::timestamptz');  -- checks the key column
    -- One membership per account needs one source row per key. A unique index on the key column settles it;
    -- without one, look (a duplicate agreeing with its account's membership would otherwise pass unseen).
    IF NOT segments._key_is_unique(reading) THEN
        EXECUTE format('SELECT t.%1$I::text FROM %2$s t WHERE t.%1$I IS NOT NULL GROUP BY t.%1$I HAVING count(*) > 1 LIMIT 1',
                       g.key_column, reading.source) INTO duplicate;
        IF duplicate IS NOT NULL THEN
            RAISE EXCEPTION 'segmentation "%": the key column "%" of % is not unique', g.name, g.key_column, g.source
                USING ERRCODE = '23505', DETAIL = format('key %s appears more than once', duplicate),
                      HINT = 'membership needs one row per account: use a unique key column';
        END IF;
    END IF;
    -- a duplicate key can still trip the unique index on open memberships: say what is wrong
    BEGIN
        EXECUTE statement INTO entered, "left", moved, unchanged, ignored;
        PERFORM set_config('random_page_cost', page_cost, true);
    EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'segmentation "%": the key column "%" of % is not unique', g.name, g.key_column, g.source
            USING ERRCODE = '23505', DETAIL = SQLERRM,
                  HINT = 'membership needs one row per account: use a unique key column';
    END;
END $$;
COMMENT ON FUNCTION segments.refresh(text) IS
    'Evaluates every account of the segmentation''s source and records membership with validity ranges; '
    'returns how many accounts entered, left, moved and stayed. A concurrent refresh of the same segmentation waits.';

CREATE FUNCTION segments.segment_at(segmentation text, account_key text, at timestamptz DEFAULT now()) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    found_segment text;
BEGIN
    SELECT m.segment INTO found_segment
    FROM segments.membership m LEFT JOIN segments.segment s ON s.segmentation = m.segmentation AND s.name = m.segment
    WHERE m.segmentation = g.name AND m.account_key = segment_at.account_key AND m.valid @> at
    ORDER BY s.priority NULLS LAST, m.segment LIMIT 1;
    RETURN found_segment;
END $$;
COMMENT ON FUNCTION segments.segment_at(text, text, timestamptz) IS
    'The segment an account was in at a point in time, from recorded membership (NULL if not a member then)';

CREATE FUNCTION segments.transitions(segmentation text, from_time timestamptz, to_time timestamptz)
RETURNS TABLE (from_segment text, to_segment text, accounts bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE g segments.segmentation := segments._definition(segmentation);
BEGIN
    RETURN QUERY
    SELECT f.segment, t.segment, count(*)
    FROM (SELECT m.account_key, m.segment FROM segments.membership m
          WHERE m.segmentation = g.name AND m.valid @> from_time) f
    FULL JOIN (SELECT m.account_key, m.segment FROM segments.membership m
               WHERE m.segmentation = g.name AND m.valid @> to_time) t ON t.account_key = f.account_key
    GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;
END $$;
COMMENT ON FUNCTION segments.transitions(text, timestamptz, timestamptz) IS
    'Migration matrix: accounts by segment at from_time and at to_time; from NULL = entered, to NULL = left';

-- Not SECURITY DEFINER: membership's row-level security shows the caller only what it may read.
CREATE FUNCTION segments.changes(segmentation text, at timestamptz)
RETURNS TABLE (account_key text, from_segment text, to_segment text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE g segments.segmentation := segments._definition(segmentation);
BEGIN
    -- a refresh or a tracked statement closes and opens ranges at one instant: that instant is the change
    RETURN QUERY
    SELECT coalesce(o.account_key, n.account_key), o.segment, n.segment
    FROM (SELECT m.account_key, m.segment, m.exclusive FROM segments.membership m
          WHERE m.segmentation = g.name AND upper(m.valid) = at) o
    FULL JOIN (SELECT m.account_key, m.segment, m.exclusive FROM segments.membership m
               WHERE m.segmentation = g.name AND lower(m.valid) = at) n
         ON n.account_key = o.account_key AND n.exclusive AND o.exclusive
    ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST;
END $$;
COMMENT ON FUNCTION segments.changes(text, timestamptz) IS
    'The accounts that entered, left or moved at one instant (the "at" of a segments_membership notification); '
    'from NULL = entered, to NULL = left; only for segmentations whose source the caller can read';

-- Live mode: statement-level triggers on the source table keep membership current in the same transaction.
-- The trigger function is written in Rust (src/api/tracking.rs): statements touching a few accounts of an
-- exclusive segmentation are classified there with rules compiled once per session; bigger statements and
-- overlapping segmentations run the synchronising statement below over the transition tables.
-- SECURITY DEFINER: it writes membership for whichever role changed the source
CREATE FUNCTION segments._track() RETURNS trigger
    AS 'MODULE_PATHNAME', 'track_trigger' LANGUAGE c SECURITY DEFINER;
COMMENT ON FUNCTION segments._track() IS 'The statement trigger segments.track() installs (argument: the segmentation)';

CREATE FUNCTION segments._trigger_name(segmentation text, op text) RETURNS name LANGUAGE sql IMMUTABLE
    RETURN pg_catalog.concat('segments_track_', op, '_', pg_catalog.left(pg_catalog.md5(segmentation), 12))::pg_catalog.name;

-- The set-based statement for one tracked statement: the accounts whose keys are in the transition
-- tables segments_new / segments_old (after TRUNCATE: every account), at the time given as $1.
CREATE FUNCTION segments._tracking_sql(segmentation text, op text) RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    -- %1$s is left for the cast to text where membership is filtered
    -- the scope is itself a format() string: a % in the key column's name is doubled
    key text := replace(quote_ident(g.key_column), '%', '%%');
    scope text := CASE op
        WHEN 'insert' THEN format('SELECT k.%s%%1$s FROM segments_new k', key)
        WHEN 'delete' THEN format('SELECT k.%s%%1$s FROM segments_old k', key)
        WHEN 'update' THEN format('SELECT k.%1$s%%1$s FROM segments_new k UNION SELECT k.%1$s%%1$s FROM segments_old k', key)
    END;  -- truncate: NULL, every account
BEGIN
    RETURN segments._sync_sql(g, scope, '$1');
END $$;

-- The tables that carry a segmentation's tracking triggers: the source and every partition of it, since a
-- statement on a partition fires only the partition's own statement triggers (foreign partitions excluded:
-- their triggers cannot have transition tables, and their rows change elsewhere).
CREATE FUNCTION segments._tracked_tables(source regclass) RETURNS SETOF regclass LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT source UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(source) t
    JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE c.relkind IN ('r', 'p')
$$;

-- A change to a related source re-evaluates the accounts whose keys the changed rows hold (after TRUNCATE,
-- every account), with the synchronising statement, at the time the change is made.
CREATE FUNCTION segments._track_related() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(TG_ARGV[0]);
    keys text[];
    scope text;
    at timestamptz;
BEGIN
    SELECT array_agg(DISTINCT r.key_column) INTO keys FROM segments.related_source r
    WHERE r.segmentation = g.name AND r.relation = TG_RELID;
    IF keys IS NULL THEN
        RETURN NULL;  -- no longer a related source of the segmentation
    END IF;
    PERFORM pg_advisory_xact_lock_shared(segments._lock_key(g.name));
    -- read once the lock is held, as the source's tracking does
    at := clock_timestamp();
    IF TG_OP <> 'TRUNCATE' THEN
        -- a format() string (see _sync_sql): %1$s is left for the cast to text, a % in a name is doubled
        SELECT string_agg(format('SELECT k.%s%%1$s FROM %s k', replace(quote_ident(k), '%', '%%'), tab), ' UNION ')
        INTO scope
        FROM unnest(keys) k,
             unnest(CASE TG_OP WHEN 'INSERT' THEN ARRAY['segments_new'] WHEN 'DELETE' THEN ARRAY['segments_old']
                               ELSE ARRAY['segments_new', 'segments_old'] END) tab;
    END IF;
    EXECUTE segments._sync_sql(g, scope, '$1') USING at;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION segments._track_related() IS 'The statement trigger segments.track() installs on related sources (argument: the segmentation)';

-- The tables of a segmentation's related sources (triggers go on tables only).
CREATE FUNCTION segments._related_tables(segmentation text) RETURNS SETOF regclass LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT DISTINCT r.relation FROM segments.related_source r WHERE r.segmentation = _related_tables.segmentation
$$;

-- Removes a segmentation's tracking triggers wherever they are: its source, the partitions, a detached one,
-- its related sources.
CREATE FUNCTION segments._drop_tracking(segmentation text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE t record;
BEGIN
    FOR t IN SELECT tr.tgrelid::regclass AS rel, tr.tgname FROM pg_trigger tr
             WHERE tr.tgfoid IN ('segments._track()'::regprocedure, 'segments._track_related()'::regprocedure)
               AND tr.tgname IN (SELECT segments._trigger_name(segmentation, op) FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    END LOOP;
END $$;

-- Installs the triggers where they are missing (so it also serves partitions created or attached later):
-- segments._track() on the source and its partitions, segments._track_related() on the related sources.
CREATE FUNCTION segments._create_tracking(segmentation text, source regclass) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    op text;
    rel regclass;
    fn text;
BEGIN
    FOR rel, fn IN SELECT t, 'segments._track' FROM segments._tracked_tables(source) t
                   UNION ALL SELECT t, 'segments._track_related' FROM segments._related_tables(segmentation) t LOOP
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = segments._trigger_name(segmentation, op));
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s(%L)',
                           segments._trigger_name(segmentation, op), upper(op), rel,
                           CASE op WHEN 'insert' THEN 'REFERENCING NEW TABLE AS segments_new'
                                   WHEN 'delete' THEN 'REFERENCING OLD TABLE AS segments_old'
                                   WHEN 'update' THEN 'REFERENCING NEW TABLE AS segments_new OLD TABLE AS segments_old'
                                   ELSE '' END,
                           fn, segmentation);
        END LOOP;
    END LOOP;
END $$;

-- After CREATE TABLE ... PARTITION OF and ALTER TABLE ... ATTACH / DETACH PARTITION: a new partition of a
-- tracked source gets the tracking triggers, a detached table loses them. It never fails the user's DDL.
CREATE FUNCTION segments._track_partitions() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g record;
    t record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgfoid = 'segments._track()'::regprocedure) THEN
        RETURN;  -- nothing is tracked: the usual case costs one index probe
    END IF;
    IF segments._restoring() THEN
        RETURN;  -- a restore brings the partitions' triggers back itself
    END IF;
    FOR g IN SELECT s.name, s.source FROM segments.segmentation s
             WHERE EXISTS (SELECT 1 FROM pg_trigger tr WHERE tr.tgrelid = s.source
                                                        AND tr.tgname = segments._trigger_name(s.name, 'insert'))
    LOOP
        PERFORM segments._create_tracking(g.name, g.source);
        FOR t IN SELECT tr.tgrelid::regclass AS rel, tr.tgname FROM pg_trigger tr
                 WHERE tr.tgfoid = 'segments._track()'::regprocedure
                   AND tr.tgname IN (SELECT segments._trigger_name(g.name, op) FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) op)
                   AND tr.tgrelid NOT IN (SELECT segments._tracked_tables(g.source))
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
        END LOOP;
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'pg_segments could not update the tracking triggers of partitions: %', SQLERRM
        USING HINT = 'run segments.track(segmentation) again for the tracked segmentations of this table';
END $$;
CREATE EVENT TRIGGER segments_track_partitions ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION segments._track_partitions();

-- track and untrack run as the extension's owner: the caller needs the TRIGGER privilege on the source
CREATE FUNCTION segments._check_caller_may_trigger(g segments.segmentation) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT has_table_privilege(segments._acting_role(), g.source, 'TRIGGER') THEN
        RAISE EXCEPTION 'permission denied: role % cannot track or untrack segmentation "%"', segments._acting_role(), g.name
            USING ERRCODE = '42501', HINT = format('tracking installs triggers: grant TRIGGER on %s', g.source);
    END IF;
    IF EXISTS (SELECT 1 FROM segments._related_tables(g.name) r WHERE NOT has_table_privilege(segments._acting_role(), r, 'TRIGGER')) THEN
        RAISE EXCEPTION 'permission denied: role % cannot track or untrack segmentation "%"', segments._acting_role(), g.name
            USING ERRCODE = '42501', HINT = 'tracking installs triggers on the related sources too: grant TRIGGER on them';
    END IF;
END $$;

CREATE FUNCTION segments.track(segmentation text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
BEGIN
    PERFORM segments._check_caller_may_trigger(g);
    IF (SELECT relkind FROM pg_class WHERE oid = g.source) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cannot track %: it is not a table', g.source
            USING ERRCODE = '0A000', HINT = 'track the underlying table, or schedule segments.refresh() instead';
    END IF;
    IF segments._distributed(g.source) OR EXISTS (SELECT 1 FROM segments._related_tables(g.name) r WHERE segments._distributed(r)) THEN
        RAISE EXCEPTION 'cannot track %: % is a Citus table', g.name,
            (SELECT string_agg(r::text, ', ') FROM (SELECT g.source AS r UNION ALL SELECT segments._related_tables(g.name)) t
             WHERE segments._distributed(t.r))
            USING ERRCODE = '0A000',
                  DETAIL = 'a Citus table''s triggers would run on the shards, which hold no definitions or membership',
                  HINT = 'schedule segments.refresh() instead: it gathers the assignments from the shards in one statement';
    END IF;
    IF EXISTS (SELECT 1 FROM segments._related_tables(g.name) r JOIN pg_class c ON c.oid = r WHERE c.relkind NOT IN ('r', 'p')) THEN
        RAISE EXCEPTION 'cannot track %: related source % is not a table', g.name,
            (SELECT string_agg(r::text, ', ') FROM segments._related_tables(g.name) r JOIN pg_class c ON c.oid = r WHERE c.relkind NOT IN ('r', 'p'))
            USING ERRCODE = '0A000', HINT = 'declare the underlying table as the related source, or schedule segments.refresh() instead';
    END IF;
    -- a tracked change looks its accounts up one key at a time: two rows with one key would fight
    IF NOT segments._key_is_unique(g) THEN
        RAISE EXCEPTION 'cannot track %: its key column "%" has no unique index', g.source, g.key_column
            USING ERRCODE = '55000', HINT = 'add a primary key or a unique index on the key column';
    END IF;
    PERFORM segments._drop_tracking(g.name);
    PERFORM segments.refresh(g.name);
    PERFORM segments._create_tracking(g.name, g.source);
END $$;
COMMENT ON FUNCTION segments.track(text) IS
    'Refreshes the segmentation, then installs triggers on its source table that update membership in the same '
    'transaction as every data change (NOTIFY segments_membership when the segmentation''s notify is on)';

CREATE FUNCTION segments.untrack(segmentation text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE g segments.segmentation := segments._definition(segmentation);
BEGIN
    PERFORM segments._check_caller_may_trigger(g);
    PERFORM segments._drop_tracking(g.name);
END $$;
COMMENT ON FUNCTION segments.untrack(text) IS 'Removes the tracking triggers of segments.track()';

-- Declaring, changing or removing a related source of a tracked segmentation tracks it anew: the triggers
-- follow the related sources, and membership reflects the changed rules' inputs.
CREATE FUNCTION segments._retrack_related() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE seg text;
BEGIN
    IF segments._restoring() THEN
        RETURN NULL;
    END IF;
    FOR seg IN SELECT DISTINCT x FROM (SELECT NEW.segmentation WHERE TG_OP <> 'DELETE'
                                       UNION SELECT OLD.segmentation WHERE TG_OP <> 'INSERT') s(x) LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger tr JOIN segments.segmentation g ON tr.tgrelid = g.source
                   WHERE g.name = seg AND tr.tgname = segments._trigger_name(seg, 'update')) THEN
            PERFORM segments.track(seg);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
CREATE TRIGGER retrack_related AFTER INSERT OR UPDATE OR DELETE ON segments.related_source
    FOR EACH ROW EXECUTE FUNCTION segments._retrack_related();

-- Deleting a segmentation removes its tracking triggers too, so data changes never trip over a missing one.
CREATE FUNCTION segments._untrack_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM segments.membership WHERE segmentation = OLD.name;
    PERFORM segments._drop_tracking(OLD.name);
    RETURN OLD;
END $$;
CREATE TRIGGER untrack_deleted BEFORE DELETE ON segments.segmentation
    FOR EACH ROW EXECUTE FUNCTION segments._untrack_deleted();

-- Renaming carries membership over, and tracking: the triggers name their segmentation.
CREATE FUNCTION segments._rename_membership() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE segments.membership SET segmentation = NEW.name WHERE segmentation = OLD.name;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = OLD.source AND tgname = segments._trigger_name(OLD.name, 'update')) THEN
        PERFORM segments._drop_tracking(OLD.name);
        PERFORM segments._create_tracking(NEW.name, NEW.source);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rename_membership AFTER UPDATE OF name ON segments.segmentation
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION segments._rename_membership();

CREATE FUNCTION segments.preview(segmentation text, segment text, new_rule jsonb)
RETURNS TABLE (account_key text, current_segment text, new_segment text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    current_rules jsonb := segments.ruleset(g.name);
    new_rules jsonb;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(current_rules -> 'segments') e WHERE e ->> 'name' = segment) THEN
        RAISE EXCEPTION 'segment "%" is not an active segment of "%"', segment, g.name
            USING ERRCODE = '42704', HINT = 'preview changes the rule of an existing, active segment';
    END IF;
    PERFORM segments._validate_rule(new_rule, g.source, g.key_column, segments._related_of(g.name),
                                    format('segment "%s" rule', segment));
    new_rules := jsonb_set(current_rules, '{segments}',
        (SELECT jsonb_agg(CASE WHEN e ->> 'name' = segment THEN jsonb_set(e, '{rule}', new_rule) ELSE e END ORDER BY i)
         FROM jsonb_array_elements(current_rules -> 'segments') WITH ORDINALITY AS x(e, i)));
    RETURN QUERY EXECUTE format(
        'SELECT k, c, n FROM (SELECT t.%I::text AS k, segments.classify(t.*, $1) AS c, segments.classify(t.*, $2) AS n
                              FROM %s t) x WHERE c IS DISTINCT FROM n ORDER BY k',
        g.key_column, g.source) USING current_rules, new_rules;
END $$;
COMMENT ON FUNCTION segments.preview(text, text, jsonb) IS
    'Who would change segment if the segment''s rule became new_rule: nothing is changed';

---------------------------------------------------------------------------------------------------------
-- History from the past: membership as if refresh() had run at each snapshot the CRM kept
---------------------------------------------------------------------------------------------------------
-- The snapshots relation holds the key column, a snapshot time and the attributes the rules read. Every
-- snapshot time is evaluated as refresh() would have evaluated it then (time rules as of that time); an
-- account's run of snapshots in one segment becomes one range [first snapshot, next snapshot not in it), the
-- last run ending where the recorded history after the snapshots begins (open if there is none). History
-- already recorded within that span is kept where it agrees; where it differs the call fails, unless
-- overwrite => true replaces it. Rerunning with the same snapshots changes nothing.
CREATE FUNCTION segments.backfill(segmentation text, snapshots regclass, snapshot_column text,
                                  overwrite boolean DEFAULT false,
                                  OUT snapshot_times bigint, OUT accounts bigint, OUT ranges_written bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    readable segments.segmentation;
    rs jsonb := segments._read_ruleset(g.name);
    typ regtype;
    first_at timestamptz;
    last_at timestamptz;
    cutoff timestamptz;
    conflicts bigint;
    bad text;
    evaluate text;
    relative_time boolean;
    null_time boolean;
    reading regclass;  -- where the snapshots are read: a view is copied first
BEGIN
    IF snapshots IS NULL OR snapshot_column IS NULL THEN
        RAISE EXCEPTION 'backfill needs the snapshots relation and its time column' USING ERRCODE = '22004';
    END IF;
    -- runs as the extension's owner: the caller must be able to read the source and every snapshot row
    PERFORM segments._check_caller_reads_all(g, 'backfill');
    readable := g;
    readable.source := snapshots;
    PERFORM segments._check_caller_reads_all(readable, 'backfill');
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
    WHERE a.attrelid = snapshots AND a.attname = snapshot_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" does not exist in %', snapshot_column, snapshots
            USING ERRCODE = '42703', HINT = 'name the snapshot time column of the snapshots relation';
    ELSIF typ NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
        RAISE EXCEPTION 'column "%" of % is %, not a time', snapshot_column, snapshots, typ
            USING ERRCODE = '42804', HINT = 'the snapshot column must be date, timestamp or timestamptz';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = snapshots AND a.attname = g.key_column
                   AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in %', g.key_column, snapshots
            USING ERRCODE = '42703', HINT = 'the snapshots need the account key, named as the segmentation''s key_column';
    END IF;
    -- replacing recorded history is a change to the record: editors only
    IF overwrite AND NOT pg_has_role(segments._acting_role(), 'segments_editor', 'USAGE') THEN
        RAISE EXCEPTION 'permission denied: role % may not replace recorded history', segments._acting_role()
            USING ERRCODE = '42501', HINT = 'overwrite => true needs segments_editor';
    END IF;
    PERFORM pg_advisory_xact_lock(segments._lock_key(g.name));
    -- a view of snapshots is read as its owner (see refresh)
    reading := segments._read_as_owner(snapshots, '_backfill_source');

    -- an earlier call of this transaction that failed may have left its work tables behind
    IF to_regclass('pg_temp._backfill_times') IS NOT NULL THEN DROP TABLE pg_temp._backfill_times; END IF;
    IF to_regclass('pg_temp._backfill_ranges') IS NOT NULL THEN DROP TABLE pg_temp._backfill_ranges; END IF;
    IF to_regclass('pg_temp._backfill_conflicts') IS NOT NULL THEN DROP TABLE pg_temp._backfill_conflicts; END IF;
    -- the snapshot times, numbered
    EXECUTE format($q$
        CREATE TEMP TABLE _backfill_times ON COMMIT DROP AS
        SELECT x.at, row_number() OVER (ORDER BY x.at) AS k, lead(x.at) OVER (ORDER BY x.at) AS next_at
        FROM (SELECT DISTINCT s.%1$I::timestamptz AS at FROM %2$s s) x
    $q$, snapshot_column, reading);
    SELECT min(t.at), max(t.at), count(t.at), count(*) > count(t.at)
    INTO first_at, last_at, snapshot_times, null_time FROM pg_temp._backfill_times t;
    IF null_time THEN
        RAISE EXCEPTION 'a snapshot row of % has a NULL time', snapshots
            USING ERRCODE = '23502', HINT = 'every snapshot row needs its snapshot time';
    END IF;
    IF first_at IS NULL THEN
        accounts := 0;
        ranges_written := 0;
        RETURN;
    END IF;

    -- Every account's segment(s) at every snapshot, in one pass. Rules with relative times (within,
    -- older_than) are evaluated as of each snapshot: rows then come in snapshot order, so each snapshot's rules
    -- compile once. An account's run of consecutive snapshots in one segment becomes one range: exclusive
    -- segmentations number the runs along each account's snapshots (which also finds an account held twice
    -- at one time), overlapping ones along each (account, tag) (gaps and islands). The last runs stay open
    -- until the cutoff is known.
    relative_time := jsonb_path_exists(rs, 'strict $.**.op ? (@ == "within" || @ == "older_than")');
    evaluate := format(CASE WHEN g.mode = 'exclusive' THEN 'ARRAY[segments.classify(o.account, %1$s)]'
                            ELSE 'coalesce(nullif(segments._classify_all(o.account, %1$s), ''{}''), ARRAY[%2$L])' END,
                       CASE WHEN relative_time THEN '$1 OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(''as_of'', '
                                'pg_catalog.to_char(o.at AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS.US"Z"''))'
                            ELSE '$1' END,
                       g.default_segment);
    EXECUTE format($q$
        CREATE TEMP TABLE _backfill_ranges ON COMMIT DROP AS
        WITH seen AS (
            SELECT %5$s e.account_key, t.k, t.at, t.next_at, seg.segment
            FROM (SELECT o.at, o.account_key, %3$s AS segments
                  FROM (SELECT s AS account, s.%1$I::timestamptz AS at, s.%2$I::text AS account_key FROM %4$s s %6$s) o) e
            JOIN pg_temp._backfill_times t ON t.at = e.at
            CROSS JOIN LATERAL unnest(e.segments) seg(segment)),
        stepped AS (
            SELECT s.*, lag(s.k) OVER w AS prev_k, lag(s.segment) OVER w AS prev_segment
            FROM seen s WINDOW w AS (PARTITION BY s.account_key %7$s ORDER BY s.k)),
        runs AS (
            SELECT s.*, sum(CASE WHEN s.prev_k = s.k - 1 AND s.prev_segment = s.segment THEN 0 ELSE 1 END)
                            OVER (PARTITION BY s.account_key %7$s ORDER BY s.k ROWS UNBOUNDED PRECEDING) AS run
            FROM stepped s)
        SELECT r.account_key, r.segment, tstzrange(min(r.at), max(r.next_at)) AS valid,
               bool_or(r.next_at IS NULL) AS last, bool_or(r.prev_k = r.k) AS twice
        FROM runs r GROUP BY r.account_key, r.run, r.segment
    $q$, snapshot_column, g.key_column, evaluate, reading,
         CASE WHEN g.mode = 'exclusive' THEN '' ELSE 'DISTINCT' END,
         CASE WHEN relative_time THEN format('ORDER BY s.%I OFFSET 0', snapshot_column) ELSE '' END,
         CASE WHEN g.mode = 'exclusive' THEN '' ELSE ', s.segment' END) USING rs;
    SELECT b.account_key INTO bad FROM pg_temp._backfill_ranges b WHERE b.account_key IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'a snapshot row of % has a NULL key', snapshots
            USING ERRCODE = '23502', HINT = 'every snapshot row needs the account key';
    END IF;
    SELECT format('account %s', b.account_key) INTO bad FROM pg_temp._backfill_ranges b WHERE b.twice LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'snapshots of % hold an account twice at one time', snapshots
            USING ERRCODE = '23505', DETAIL = bad, HINT = 'a snapshot needs one row per account';
    END IF;
    SELECT count(DISTINCT b.account_key) INTO accounts FROM pg_temp._backfill_ranges b;

    -- the span the backfill writes ends where the history recorded after the last snapshot begins
    SELECT min(lower(m.valid)) INTO cutoff FROM segments.membership m
    WHERE m.segmentation = g.name AND lower(m.valid) > last_at;
    UPDATE pg_temp._backfill_ranges b SET valid = tstzrange(lower(b.valid), cutoff) WHERE b.last;

    -- recorded history in the span agrees with a range when it starts there and ends there, or later than the
    -- span for the last run (a refresh since then kept the account where it was)
    CREATE TEMP TABLE _backfill_conflicts ON COMMIT DROP AS
    SELECT m.ctid AS row_id, m.valid FROM segments.membership m
    WHERE m.segmentation = g.name AND m.valid && tstzrange(first_at, cutoff)
      AND NOT EXISTS (SELECT 1 FROM pg_temp._backfill_ranges b
                      WHERE b.account_key = m.account_key AND b.segment = m.segment AND lower(b.valid) = lower(m.valid)
                        AND (upper(b.valid) IS NOT DISTINCT FROM upper(m.valid)
                             OR (upper(b.valid) = cutoff AND (upper_inf(m.valid) OR upper(m.valid) > cutoff))));
    SELECT count(*) INTO conflicts FROM pg_temp._backfill_conflicts;
    IF conflicts > 0 AND NOT overwrite THEN
        RAISE EXCEPTION 'segmentation "%" already has a different history between % and %', g.name, first_at,
                        coalesce(cutoff::text, 'now')
            USING ERRCODE = '55000', DETAIL = format('%s recorded membership ranges disagree with the snapshots', conflicts),
                  HINT = 'pass overwrite => true to replace the recorded history of that span';
    END IF;
    -- overwrite: what started before the span is cut at its start, what runs past its end keeps that part
    UPDATE segments.membership m SET valid = tstzrange(lower(m.valid), first_at)
    FROM pg_temp._backfill_conflicts c WHERE m.ctid = c.row_id AND lower(c.valid) < first_at;
    UPDATE segments.membership m SET valid = tstzrange(cutoff, upper(m.valid))
    FROM pg_temp._backfill_conflicts c
    WHERE m.ctid = c.row_id AND lower(c.valid) >= first_at AND cutoff IS NOT NULL
      AND (upper_inf(c.valid) OR upper(c.valid) > cutoff);
    DELETE FROM segments.membership m USING pg_temp._backfill_conflicts c
    WHERE m.ctid = c.row_id AND lower(c.valid) >= first_at
      AND (cutoff IS NULL OR (NOT upper_inf(c.valid) AND upper(c.valid) <= cutoff));

    INSERT INTO segments.membership (segmentation, account_key, segment, valid, exclusive)
    SELECT g.name, b.account_key, b.segment, b.valid, g.mode = 'exclusive' FROM pg_temp._backfill_ranges b
    WHERE NOT EXISTS (SELECT 1 FROM segments.membership m
                      WHERE m.segmentation = g.name AND m.account_key = b.account_key AND m.segment = b.segment
                        AND lower(m.valid) = lower(b.valid));
    GET DIAGNOSTICS ranges_written = ROW_COUNT;
    DROP TABLE pg_temp._backfill_times, pg_temp._backfill_ranges, pg_temp._backfill_conflicts;
END $$;
COMMENT ON FUNCTION segments.backfill(text, regclass, text, boolean) IS
    'Membership history from snapshots the CRM kept (key column, snapshot time, rule attributes), as if refresh() '
    'had run at each snapshot time; idempotent; recorded history that differs is replaced only with overwrite => true';
