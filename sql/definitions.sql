-- pg_segments: segment definitions, their audit log, and the SQL declarations of the per-row functions.
-- Runs inside CREATE EXTENSION, with @extschema@ = segments first on the search_path.

---------------------------------------------------------------------------------------------------------
-- Definitions
---------------------------------------------------------------------------------------------------------
CREATE TABLE segments.segmentation (
    name             text PRIMARY KEY CHECK (name <> ''),
    source           regclass NOT NULL,
    key_column       text NOT NULL,
    mode             text NOT NULL DEFAULT 'exclusive' CHECK (mode IN ('exclusive', 'overlapping')),
    default_segment  text NOT NULL DEFAULT 'Unsegmented',
    min_segment_size integer CHECK (min_segment_size >= 0),
    description      text,
    -- optional metric columns of the source, used by segments.health()
    arr_column       text,
    arr_start_column text,
    churned_column   text,
    nps_column       text,
    gross_margin     float8 CHECK (gross_margin BETWEEN 0 AND 1),
    notify           boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- optional time-varying facts, for period metrics (segments.period_health, health_series): relations
    -- keyed by a column named like key_column, with a time column and a value column
    arr_facts        regclass,
    arr_facts_time   text,
    arr_facts_value  text,
    nps_facts        regclass,
    nps_facts_time   text,
    nps_facts_value  text,
    coverage_target  float8 CHECK (coverage_target BETWEEN 0 AND 1)
);
COMMENT ON TABLE segments.segmentation IS 'A named segmentation scheme over one account relation';
COMMENT ON COLUMN segments.segmentation.name IS 'Segmentation name, e.g. gtm_tier, lifecycle, health';
COMMENT ON COLUMN segments.segmentation.source IS 'The account relation (table, view or materialized view) that is segmented';
COMMENT ON COLUMN segments.segmentation.key_column IS 'Column of the source that identifies an account';
COMMENT ON COLUMN segments.segmentation.mode IS 'exclusive: one segment per account (first match by priority); overlapping: tags, all matches';
COMMENT ON COLUMN segments.segmentation.default_segment IS 'Segment of accounts that match no rule';
COMMENT ON COLUMN segments.segmentation.min_segment_size IS 'Segments with fewer accounts are flagged as small samples';
COMMENT ON COLUMN segments.segmentation.description IS 'What the segmentation is for';
COMMENT ON COLUMN segments.segmentation.arr_column IS 'Source column with current ARR (optional; for health metrics)';
COMMENT ON COLUMN segments.segmentation.arr_start_column IS 'Source column with ARR one period ago (optional; for NRR/GRR/growth)';
COMMENT ON COLUMN segments.segmentation.churned_column IS 'Source boolean column, true when the account churned (optional)';
COMMENT ON COLUMN segments.segmentation.nps_column IS 'Source column with the account''s 0-10 NPS answer (optional)';
COMMENT ON COLUMN segments.segmentation.gross_margin IS 'Gross margin (0..1) for lifetime value in segments.health(); NULL: no CLV';
COMMENT ON COLUMN segments.segmentation.notify IS 'Send NOTIFY segments_membership for every account that enters, leaves or moves';
COMMENT ON COLUMN segments.segmentation.created_at IS 'When the segmentation was defined';
COMMENT ON COLUMN segments.segmentation.updated_at IS 'When the segmentation row last changed';
COMMENT ON COLUMN segments.segmentation.arr_facts IS 'ARR snapshots for period metrics: a relation with the account key (named as key_column), a snapshot time and ARR; an account missing from a snapshot has ARR 0 then';
COMMENT ON COLUMN segments.segmentation.arr_facts_time IS 'Snapshot time column of arr_facts (date, timestamp or timestamptz)';
COMMENT ON COLUMN segments.segmentation.arr_facts_value IS 'ARR column of arr_facts (a number; several rows of one account and snapshot are added)';
COMMENT ON COLUMN segments.segmentation.nps_facts IS 'NPS answers for period metrics: a relation with the account key (named as key_column), an answer time and a 0-10 score';
COMMENT ON COLUMN segments.segmentation.nps_facts_time IS 'Answer time column of nps_facts (date, timestamp or timestamptz)';
COMMENT ON COLUMN segments.segmentation.coverage_target IS 'Share of a segment''s accounts that should have a value in each attribute its rules read (e.g. 0.8); segments.data_coverage() flags the gaps';
COMMENT ON COLUMN segments.segmentation.nps_facts_value IS 'Score column of nps_facts (smallint, integer, bigint or whole numeric, 0-10)';

CREATE TABLE segments.segment (
    segmentation text NOT NULL REFERENCES segments.segmentation (name) ON UPDATE CASCADE ON DELETE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    parent       text,
    priority     integer NOT NULL DEFAULT 100,
    rule         jsonb NOT NULL DEFAULT 'true',
    description  text,
    playbook     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(playbook) = 'object'),
    active       boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    coverage_target float8 CHECK (coverage_target BETWEEN 0 AND 1),
    PRIMARY KEY (segmentation, name),
    FOREIGN KEY (segmentation, parent) REFERENCES segments.segment (segmentation, name) ON UPDATE CASCADE
);
COMMENT ON TABLE segments.segment IS 'A named, documented group of accounts within a segmentation';
COMMENT ON COLUMN segments.segment.segmentation IS 'The segmentation this segment belongs to';
COMMENT ON COLUMN segments.segment.name IS 'Segment name, unique within its segmentation';
COMMENT ON COLUMN segments.segment.parent IS 'Parent segment (macro > micro hierarchy) in the same segmentation, or NULL';
COMMENT ON COLUMN segments.segment.priority IS 'Lower wins: segments are tried in (priority, name) order among siblings';
COMMENT ON COLUMN segments.segment.rule IS 'Membership rule in the pg_segments rule language (jsonb), validated when saved';
COMMENT ON COLUMN segments.segment.description IS 'Who is in the segment and why it matters';
COMMENT ON COLUMN segments.segment.playbook IS 'How to work the segment: marketing approach, sales model, CS engagement, ... (jsonb object)';
COMMENT ON COLUMN segments.segment.active IS 'Inactive segments (and their children) are ignored by evaluation';
COMMENT ON COLUMN segments.segment.coverage_target IS 'This segment''s data coverage target (e.g. 0.95 for enterprise), overriding the segmentation''s';
COMMENT ON COLUMN segments.segment.updated_at IS 'When the segment row last changed';

CREATE TABLE segments.related_source (
    segmentation text NOT NULL REFERENCES segments.segmentation (name) ON UPDATE CASCADE ON DELETE CASCADE,
    name         text NOT NULL CHECK (name <> ''),
    relation     regclass NOT NULL,
    key_column   text NOT NULL,
    time_column  text,
    description  text,
    PRIMARY KEY (segmentation, name)
);
COMMENT ON TABLE segments.related_source IS 'A relation of rows about accounts (events, NPS answers, tickets) that behavioral conditions of a segmentation''s rules aggregate';
COMMENT ON COLUMN segments.related_source.segmentation IS 'The segmentation whose rules may read it';
COMMENT ON COLUMN segments.related_source.name IS 'The name rules use: {"related": name, ...}';
COMMENT ON COLUMN segments.related_source.relation IS 'The relation (table, view, ...)';
COMMENT ON COLUMN segments.related_source.key_column IS 'Its column holding the account key, compared with the segmentation''s key column (index it)';
COMMENT ON COLUMN segments.related_source.time_column IS 'Its date, timestamp or timestamptz column, for windows ("within") and last / first (optional)';
COMMENT ON COLUMN segments.related_source.description IS 'What the rows are';

CREATE TABLE segments.definition_log (
    id         bigserial PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by text NOT NULL DEFAULT current_user,
    table_name text NOT NULL,
    operation  text NOT NULL,
    old_row    jsonb,
    new_row    jsonb
);
COMMENT ON TABLE segments.definition_log IS 'Audit log: every insert, update, delete and truncate of segmentations and segments, written only by the extension';
COMMENT ON COLUMN segments.definition_log.id IS 'Order of the changes';
COMMENT ON COLUMN segments.definition_log.changed_at IS 'Transaction time of the change';
COMMENT ON COLUMN segments.definition_log.changed_by IS 'Role that made the change';
COMMENT ON COLUMN segments.definition_log.table_name IS 'segmentation, segment or related_source';
COMMENT ON COLUMN segments.definition_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE';
COMMENT ON COLUMN segments.definition_log.old_row IS 'The row before the change (NULL for INSERT)';
COMMENT ON COLUMN segments.definition_log.new_row IS 'The row after the change (NULL for DELETE)';

-- pg_dump keeps user rows of extension tables only when they are registered.
SELECT pg_catalog.pg_extension_config_dump('segments.segmentation', '');
SELECT pg_catalog.pg_extension_config_dump('segments.segment', '');
SELECT pg_catalog.pg_extension_config_dump('segments.related_source', '');
SELECT pg_catalog.pg_extension_config_dump('segments.definition_log', '');
SELECT pg_catalog.pg_extension_config_dump('segments.definition_log_id_seq', '');

---------------------------------------------------------------------------------------------------------
-- Validation and audit triggers
---------------------------------------------------------------------------------------------------------
-- a raw C function (src/api/classify.rs), so that it reads the rule's jsonb itself
CREATE FUNCTION segments.validate_rule(rule jsonb, source regclass, path text DEFAULT 'rule') RETURNS boolean
    STRICT STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'validate_rule_wrapper';

-- pg_dump's scripts (plain and through pg_restore) turn check_function_bodies off before they restore
-- anything. A superuser's session in that state is taken to be a restore: the dumped rows are written as
-- they were (no validation, no new timestamps, no log entries: the log is restored too), and CREATE
-- EXTENSION does not seed rows that the dump brings back.
CREATE FUNCTION segments._restoring() RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN NOT pg_catalog.current_setting('check_function_bodies')::boolean
       AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = pg_catalog.current_user());
COMMENT ON FUNCTION segments._restoring() IS
    'Whether this session is restoring a dump (check_function_bodies off, as pg_dump sets it, and a superuser)';

-- A definer must be able to read what the segmentation reads: the source and every column its key, metric
-- columns and rules name (else a privileged refresh would copy data the definer cannot see into membership).
-- The acting role is asked, not current_user: the checks also run inside SECURITY DEFINER functions.
CREATE FUNCTION segments._check_readable(source regclass, columns text[], what text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col text;
    caller text := segments._acting_role();
BEGIN
    FOREACH col IN ARRAY columns LOOP
        IF col IS NOT NULL AND NOT has_column_privilege(caller, source, col, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied: role % cannot read column "%" of %', caller, col, source
                USING ERRCODE = '42501', DETAIL = format('%s reads it', what),
                      HINT = 'a segmentation may only read what the role defining it may SELECT';
        END IF;
    END LOOP;
END $$;

-- Membership is written only by the extension's SECURITY DEFINER functions (refresh, track, the tracking
-- trigger, renames and deletions): each first checks that the acting role could read every account itself,
-- so that running as the extension's owner never shows it more than its own rights do.
CREATE FUNCTION segments._check_caller_reads_all(g segments.segmentation, action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    caller text := segments._acting_role();
    rel pg_class;
BEGIN
    SELECT * INTO rel FROM pg_class c WHERE c.oid = g.source;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the relation of segmentation "%" does not exist', g.name
            USING ERRCODE = '42P01', HINT = 'point segments.segmentation.source at an existing relation, or delete the segmentation';
    END IF;
    IF NOT has_table_privilege(caller, g.source, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied: role % cannot % segmentation "%": it cannot read %', caller, action, g.name, g.source
            USING ERRCODE = '42501', HINT = 'grant the role SELECT on the source';
    END IF;
    -- row-level security that applies to the caller would hide accounts (and close their memberships)
    IF rel.relrowsecurity
       AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = caller AND (r.rolsuper OR r.rolbypassrls))
       AND (rel.relforcerowsecurity OR NOT pg_has_role(caller, rel.relowner, 'USAGE')) THEN
        RAISE EXCEPTION 'cannot % segmentation "%": row-level security hides rows of % from role %', action, g.name, g.source, caller
            USING ERRCODE = '42501', HINT = 'run it as a role that sees every row (the table owner, or one with BYPASSRLS)';
    END IF;
    -- behavioral conditions count rows of the related sources: the caller must see them all too
    FOR rel IN SELECT c.* FROM segments.related_source r JOIN pg_class c ON c.oid = r.relation WHERE r.segmentation = g.name LOOP
        IF NOT has_table_privilege(caller, rel.oid, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied: role % cannot % segmentation "%": it cannot read %', caller, action, g.name, rel.oid::regclass
                USING ERRCODE = '42501', HINT = 'grant the role SELECT on the related source';
        END IF;
        IF rel.relrowsecurity
           AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = caller AND (r.rolsuper OR r.rolbypassrls))
           AND (rel.relforcerowsecurity OR NOT pg_has_role(caller, rel.relowner, 'USAGE')) THEN
            RAISE EXCEPTION 'cannot % segmentation "%": row-level security hides rows of % from role %', action, g.name, rel.oid::regclass, caller
                USING ERRCODE = '42501', HINT = 'run it as a role that sees every row (the table owner, or one with BYPASSRLS)';
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION segments._check_segment() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src regclass;
    key text;
    related jsonb;
    at text := NEW.parent;
    steps int := 0;
    todo text[];
    seen text[] := '{}';
    target text;
BEGIN
    IF segments._restoring() THEN
        RETURN NEW;
    END IF;
    SELECT g.source, g.key_column, segments._related_of(g.name) INTO src, key, related
    FROM segments.segmentation g WHERE g.name = NEW.segmentation;
    -- segment references must not lead back to this segmentation (through any number of others): follow
    -- them, segmentation by segmentation (a rule without references costs nothing)
    todo := ARRAY(SELECT DISTINCT r #>> '{}' FROM jsonb_path_query(NEW.rule, 'lax $.**.of') r);
    WHILE cardinality(todo) > 0 LOOP
        target := todo[1];
        todo := todo[2:];
        CONTINUE WHEN target = ANY (seen);
        seen := seen || target;
        IF target = NEW.segmentation THEN
            RAISE EXCEPTION 'invalid rule: the segment references of "%" lead back to its own segmentation "%"', NEW.name, NEW.segmentation
                USING ERRCODE = '22023', DETAIL = format('JSON path: segment "%s" rule, an "of" leads back to "%s"', NEW.name, NEW.segmentation),
                  HINT = 'segment references must not form a cycle; within a segmentation, use a child segment instead';
        END IF;
        todo := todo || ARRAY(SELECT DISTINCT r #>> '{}' FROM segments.segment s, jsonb_path_query(s.rule, 'lax $.**.of') r
                              WHERE s.segmentation = target);
    END LOOP;
    IF src IS NOT NULL THEN
        PERFORM segments._validate_rule(NEW.rule, src, key, related, format('segment "%s" rule', NEW.name));
        PERFORM segments._check_readable(src, segments._rule_columns(NEW.rule, src, key, related),
            format('segment "%s" rule', NEW.name));
    END IF;
    -- the parent's existence is the foreign key's job (23503); a cycle is ours
    WHILE at IS NOT NULL LOOP
        IF at = NEW.name OR steps > 1000 THEN
            RAISE EXCEPTION 'invalid segment hierarchy: segment "%" would be its own ancestor', NEW.name
                USING ERRCODE = '22023', DETAIL = format('parent chain from "%s" leads back to "%s"', NEW.parent, NEW.name),
                      HINT = 'parents must form a tree (macro > micro)';
        END IF;
        SELECT s.parent INTO at FROM segments.segment s WHERE s.segmentation = NEW.segmentation AND s.name = at;
        steps := steps + 1;
    END LOOP;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER check_segment BEFORE INSERT OR UPDATE ON segments.segment
    FOR EACH ROW EXECUTE FUNCTION segments._check_segment();

-- Segments of other segmentations whose rules refer to segment "name" of "segmentation" or to a segment
-- below it (its subtree), as segmentation.segment.
CREATE FUNCTION segments._referrers_of(segmentation text, name text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE subtree(name) AS (
        SELECT _referrers_of.name
        UNION SELECT c.name FROM segments.segment c JOIN subtree p ON c.parent = p.name
        WHERE c.segmentation = _referrers_of.segmentation)
    SELECT array_agg(DISTINCT format('%s.%s', s.segmentation, s.name))
    FROM segments.segment s, subtree t
    WHERE s.segmentation <> _referrers_of.segmentation
      AND jsonb_path_exists(s.rule, 'lax $.** ? (@.of == $g && @.in_segment == $n)',
                            jsonb_build_object('g', _referrers_of.segmentation, 'n', t.name))
$$;

-- A segment that other segments' rules refer to is not deleted or deactivated from under them (nor is
-- its segmentation deleted); renames are carried to the referring rules.
CREATE FUNCTION segments._check_referenced() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    referrers text[];
BEGIN
    -- a rename of the whole segmentation reaches its segments as an update of their segmentation column:
    -- the referring rules follow it (_carry_renames)
    IF segments._restoring() OR (TG_OP = 'UPDATE' AND (NOT OLD.active OR NEW.active)
                                 AND (NEW.segmentation IS NOT DISTINCT FROM OLD.segmentation
                                      OR NOT EXISTS (SELECT 1 FROM segments.segmentation g WHERE g.name = OLD.segmentation))) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    referrers := segments._referrers_of(OLD.segmentation, OLD.name);
    IF referrers IS NOT NULL THEN
        RAISE EXCEPTION 'segment "%" of segmentation "%" is referred to by %', OLD.name, OLD.segmentation,
                        array_to_string(referrers, ', ')
            USING ERRCODE = '2BP01', DETAIL = format('%s would leave those rules referring to a segment that is not there',
                                                     CASE TG_OP WHEN 'DELETE' THEN 'deleting it' ELSE 'deactivating or moving it' END),
                  HINT = 'change or delete the referring segments'' rules first';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
CREATE TRIGGER check_referenced BEFORE UPDATE OR DELETE ON segments.segment
    FOR EACH ROW EXECUTE FUNCTION segments._check_referenced();

CREATE FUNCTION segments._carry_renames() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF segments._restoring() THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'segment' THEN
        UPDATE segments.segment s SET rule = segments._renamed_references(s.rule, NEW.segmentation, OLD.name, NEW.name, NULL)
        WHERE s.segmentation <> NEW.segmentation
          AND jsonb_path_exists(s.rule, 'lax $.** ? (@.of == $g && @.in_segment == $n)',
                                jsonb_build_object('g', NEW.segmentation, 'n', OLD.name));
    ELSE
        UPDATE segments.segment s SET rule = segments._renamed_references(s.rule, OLD.name, NULL, NULL, NEW.name)
        WHERE jsonb_path_exists(s.rule, 'lax $.** ? (@.of == $g)', jsonb_build_object('g', OLD.name));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER rename_references AFTER UPDATE OF name ON segments.segment
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION segments._carry_renames();
CREATE TRIGGER rename_references AFTER UPDATE OF name ON segments.segmentation
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION segments._carry_renames();

-- A segmentation's related sources as the ruleset carries them: name -> relation (qualified), key, time.
CREATE FUNCTION segments._related_of(segmentation text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(jsonb_object_agg(r.name, jsonb_build_object('relation', r.relation::text, 'key', r.key_column,
                                                                'time', r.time_column) ORDER BY r.name), '{}')
    FROM segments.related_source r WHERE r.segmentation = _related_of.segmentation
$$;

-- The segments whose rules read a related source.
CREATE FUNCTION segments._readers_of(segmentation text, related text) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT array_agg(s.name ORDER BY s.name) FROM segments.segment s
    WHERE s.segmentation = _readers_of.segmentation
      AND jsonb_path_exists(s.rule, 'lax $.** ? (@.related == $r)', jsonb_build_object('r', related))
$$;

-- A related source: columns that exist, a key comparable with the segmentation's, a time column of a time
-- type, readable by the role declaring it; renamed or removed only when no rule reads it.
CREATE FUNCTION segments._check_related() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation;
    typ regtype;
    col text;
    readers text[];
BEGIN
    IF segments._restoring() THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND (TG_OP = 'DELETE' OR NEW.name IS DISTINCT FROM OLD.name
                                          OR NEW.segmentation IS DISTINCT FROM OLD.segmentation) THEN
        readers := segments._readers_of(OLD.segmentation, OLD.name);
        -- a segmentation deleted as a whole takes its related sources along
        IF readers IS NOT NULL AND EXISTS (SELECT 1 FROM segments.segmentation WHERE name = OLD.segmentation) THEN
            RAISE EXCEPTION 'related source "%" of segmentation "%" is read by segments %', OLD.name, OLD.segmentation,
                            array_to_string(readers, ', ')
                USING ERRCODE = '2BP01', HINT = 'change or delete those segments'' rules first';
        END IF;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    SELECT * INTO g FROM segments.segmentation WHERE name = NEW.segmentation;
    -- refresh and tracking read it as the extension's owner: a view or foreign table would run its code so
    IF (SELECT relkind FROM pg_class WHERE oid = NEW.relation) NOT IN ('r', 'p', 'm') THEN
        RAISE EXCEPTION 'related source "%": % is not a table', NEW.name, NEW.relation
            USING ERRCODE = '0A000', HINT = 'declare a table, partitioned table or materialized view (a view''s code would run as the extension''s owner)';
    END IF;
    FOREACH col IN ARRAY ARRAY[NEW.key_column, NEW.time_column] LOOP
        CONTINUE WHEN col IS NULL;
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
        WHERE a.attrelid = NEW.relation AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, NEW.relation
                USING ERRCODE = '42703', DETAIL = format('related source "%s" of segmentation "%s" names it', NEW.name, NEW.segmentation),
                      HINT = 'key_column names the account key of the relation, time_column its time';
        END IF;
        IF col = NEW.time_column AND typ NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
            RAISE EXCEPTION 'column "%" of % is %, not a time', col, NEW.relation, typ
                USING ERRCODE = '42804', HINT = 'the time column must be date, timestamp or timestamptz';
        END IF;
    END LOOP;
    -- the two keys must compare with "="
    BEGIN
        EXECUTE format('SELECT NULL::%s OPERATOR(pg_catalog.=) NULL::%s',
                       (SELECT a.atttypid::regtype FROM pg_attribute a WHERE a.attrelid = NEW.relation AND a.attname = NEW.key_column),
                       (SELECT a.atttypid::regtype FROM pg_attribute a WHERE a.attrelid = g.source AND a.attname = g.key_column));
    EXCEPTION WHEN undefined_function THEN
        RAISE EXCEPTION 'column "%" of % cannot be compared with the key column "%" of %', NEW.key_column, NEW.relation,
                        g.key_column, g.source
            USING ERRCODE = '42804', HINT = 'the related source''s key column holds the account key: give it the key''s type';
    END;
    PERFORM segments._check_readable(NEW.relation, ARRAY[NEW.key_column, NEW.time_column],
                                     format('related source "%s" of segmentation "%s"', NEW.name, NEW.segmentation));
    IF NOT has_table_privilege(segments._acting_role(), NEW.relation, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied: role % cannot read %', segments._acting_role(), NEW.relation
            USING ERRCODE = '42501', HINT = 'behavioral conditions read any column of the related source: grant SELECT on it';
    END IF;
    -- the rules that read it must still hold (another relation, key or time column)
    IF TG_OP = 'UPDATE' THEN
        PERFORM segments._validate_rule(s.rule, g.source, g.key_column,
                                        segments._related_of(g.name) || jsonb_build_object(NEW.name,
                                            jsonb_build_object('relation', NEW.relation::text, 'key', NEW.key_column, 'time', NEW.time_column)),
                                        format('segment "%s" rule', s.name))
        FROM segments.segment s WHERE s.segmentation = g.name;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER check_related BEFORE INSERT OR UPDATE OR DELETE ON segments.related_source
    FOR EACH ROW EXECUTE FUNCTION segments._check_related();

-- A facts declaration (arr_facts, nps_facts): all three parts or none, columns that exist, a time column of a
-- time type, a numeric value column, and readable by the role declaring it.
CREATE FUNCTION segments._check_facts(segmentation text, what text, facts regclass, key_column text,
                                      time_column text, value_column text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col text;
    typ regtype;
BEGIN
    IF facts IS NULL AND time_column IS NULL AND value_column IS NULL THEN
        RETURN;
    END IF;
    IF facts IS NULL OR time_column IS NULL OR value_column IS NULL THEN
        RAISE EXCEPTION '% of segmentation "%" is incomplete', what, segmentation
            USING ERRCODE = '22023', HINT = format('set %1$s, %1$s_time and %1$s_value together (or none of them)', what);
    END IF;
    FOREACH col IN ARRAY ARRAY[key_column, time_column, value_column] LOOP
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
        WHERE a.attrelid = facts AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, facts
                USING ERRCODE = '42703', DETAIL = format('%s of segmentation "%s" names it', what, segmentation),
                      HINT = 'the facts relation needs the account key (named as key_column), a time and a value column';
        END IF;
        IF col = time_column AND typ NOT IN ('date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype) THEN
            RAISE EXCEPTION 'column "%" of % is %, not a time', col, facts, typ
                USING ERRCODE = '42804', HINT = 'the time column must be date, timestamp or timestamptz';
        END IF;
        IF col = value_column AND typ NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                              'numeric'::regtype, 'real'::regtype, 'double precision'::regtype) THEN
            RAISE EXCEPTION 'column "%" of % is %, not a number', col, facts, typ
                USING ERRCODE = '42804', HINT = 'the value column must be numeric';
        END IF;
    END LOOP;
    PERFORM segments._check_readable(facts, ARRAY[key_column, time_column, value_column],
                                     format('%s of segmentation "%s"', what, segmentation));
END $$;

-- SECURITY DEFINER: a change of mode closes memberships (which only the extension writes)
CREATE FUNCTION segments._check_segmentation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    col text;
BEGIN
    IF segments._restoring() THEN
        RETURN NEW;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = NEW.source AND attname = NEW.key_column
                   AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" does not exist in %', NEW.key_column, NEW.source
            USING ERRCODE = '42703', HINT = 'key_column must name the account key column of the source';
    END IF;
    FOREACH col IN ARRAY ARRAY[NEW.arr_column, NEW.arr_start_column, NEW.churned_column, NEW.nps_column] LOOP
        IF col IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = NEW.source
                                           AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" does not exist in %', col, NEW.source
                USING ERRCODE = '42703', HINT = 'metric columns must name columns of the source';
        END IF;
    END LOOP;
    PERFORM segments._check_readable(NEW.source, ARRAY[NEW.key_column, NEW.arr_column, NEW.arr_start_column,
                                                        NEW.churned_column, NEW.nps_column],
                                     format('segmentation "%s"', NEW.name));
    PERFORM segments._check_facts(NEW.name, 'arr_facts', NEW.arr_facts, NEW.key_column, NEW.arr_facts_time, NEW.arr_facts_value);
    PERFORM segments._check_facts(NEW.name, 'nps_facts', NEW.nps_facts, NEW.key_column, NEW.nps_facts_time, NEW.nps_facts_value);
    -- memberships recorded under the old mode end now; the next refresh records them under the new one
    IF TG_OP = 'UPDATE' AND NEW.mode IS DISTINCT FROM OLD.mode THEN
        UPDATE segments.membership SET valid = tstzrange(lower(valid), now())
        WHERE segmentation = OLD.name AND upper_inf(valid) AND lower(valid) < now();
        DELETE FROM segments.membership WHERE segmentation = OLD.name AND upper_inf(valid);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.source IS DISTINCT FROM OLD.source THEN
        FOR s IN SELECT * FROM segments.segment WHERE segmentation = NEW.name LOOP
            PERFORM segments._validate_rule(s.rule, NEW.source, NEW.key_column, segments._related_of(NEW.name),
                                            format('segment "%s" rule', s.name));
        END LOOP;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER check_segmentation BEFORE INSERT OR UPDATE ON segments.segmentation
    FOR EACH ROW EXECUTE FUNCTION segments._check_segmentation();

-- The log is written by the extension alone: this trigger runs as the extension's owner (readers and
-- editors may read the log, never write it) and records the role that made the change, as SET ROLE left it
-- (a SECURITY DEFINER function on the caller's side does not disguise it). TRUNCATE is logged too.
CREATE FUNCTION segments._log_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF segments._restoring() THEN
        RETURN NULL;
    END IF;
    INSERT INTO segments.definition_log (changed_by, table_name, operation, old_row, new_row)
    VALUES (segments._acting_role(), TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END,
            CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION segments._log_change() FROM PUBLIC;

CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON segments.segmentation
    FOR EACH ROW EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON segments.segment
    FOR EACH ROW EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_truncate AFTER TRUNCATE ON segments.segmentation
    FOR EACH STATEMENT EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_truncate AFTER TRUNCATE ON segments.segment
    FOR EACH STATEMENT EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON segments.related_source
    FOR EACH ROW EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_truncate AFTER TRUNCATE ON segments.related_source
    FOR EACH STATEMENT EXECUTE FUNCTION segments._log_change();

-- Backends cache parsed rulesets; every change to the definitions invalidates them everywhere.
CREATE FUNCTION segments._invalidate_rulesets() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM segments._definitions_changed(TG_RELID::regclass);
    RETURN NULL;
END $$;
CREATE TRIGGER invalidate_rulesets AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segments.segmentation
    FOR EACH STATEMENT EXECUTE FUNCTION segments._invalidate_rulesets();
CREATE TRIGGER invalidate_rulesets AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segments.segment
    FOR EACH STATEMENT EXECUTE FUNCTION segments._invalidate_rulesets();
CREATE TRIGGER invalidate_rulesets AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segments.related_source
    FOR EACH STATEMENT EXECUTE FUNCTION segments._invalidate_rulesets();

---------------------------------------------------------------------------------------------------------
-- The ruleset: a segmentation's active segments as one jsonb value
---------------------------------------------------------------------------------------------------------
-- Reads the definitions (segments.ruleset() keeps what it reads, per statement and per backend)
CREATE FUNCTION segments._read_ruleset(segmentation text) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    g segments.segmentation;
    n int;
BEGIN
    IF _read_ruleset.segmentation IS NULL THEN
        SELECT count(*) INTO n FROM segments.segmentation;
        IF n <> 1 THEN
            RAISE EXCEPTION '% segmentations are defined: name the one to use', n
                USING ERRCODE = CASE WHEN n = 0 THEN '42704' ELSE '22023' END,
                      HINT = 'pass the segmentation name, e.g. segments.segment_of(a, ''gtm_tier'')';
        END IF;
        SELECT * INTO g FROM segments.segmentation;
    ELSE
        SELECT * INTO g FROM segments.segmentation s WHERE s.name = _read_ruleset.segmentation;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'segmentation "%" does not exist', _read_ruleset.segmentation
                USING ERRCODE = '42704',
                      HINT = coalesce('defined segmentations: ' ||
                                      (SELECT string_agg(name, ', ' ORDER BY name) FROM segments.segmentation),
                                      'no segmentation is defined in this database');
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'segmentation', g.name,
        'mode', g.mode,
        'default_segment', g.default_segment,
        'as_of', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'key_column', g.key_column,
        'related', segments._related_of(g.name),
        'segments', coalesce((
            -- active segments whose ancestors are all active
            WITH RECURSIVE live AS (
                SELECT s.* FROM segments.segment s
                WHERE s.segmentation = g.name AND s.active AND s.parent IS NULL
                UNION ALL
                SELECT c.* FROM segments.segment c JOIN live p ON c.segmentation = p.segmentation AND c.parent = p.name
                WHERE c.active
            )
            SELECT jsonb_agg(jsonb_build_object('name', name, 'parent', parent, 'priority', priority, 'rule', rule)
                             ORDER BY priority, name)
            FROM live), '[]'::jsonb));
END $$;
-- The public form: the same value, read once per statement however many rows call it (a raw C function,
-- src/api/classify.rs), so classify(a, segments.ruleset('x')) does not re-read the definitions per row.
CREATE FUNCTION segments.ruleset(segmentation text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ruleset' LANGUAGE c STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segments.ruleset(text) IS
    'The segmentation''s active segments, rules and as-of time as one jsonb value: the argument of segments.classify()';

---------------------------------------------------------------------------------------------------------
-- Per-row evaluation (raw C functions: see src/api/classify.rs)
---------------------------------------------------------------------------------------------------------
CREATE FUNCTION segments.segment_of(account record, segmentation text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_of' LANGUAGE c STABLE PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments.segment_of(record, text) IS
    'The segment of one account row (pass the row: segment_of(a)), evaluated live; NULL segmentation = the only one defined';

CREATE FUNCTION segments.segments_of(account record, segmentation text DEFAULT NULL) RETURNS text[]
    AS 'MODULE_PATHNAME', 'segments_of' LANGUAGE c STABLE PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments.segments_of(record, text) IS
    'Every segment the account matches (its rule and its ancestors'' rules), in priority order';

CREATE FUNCTION segments.segment_path(account record, segmentation text DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_path' LANGUAGE c STABLE PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments.segment_path(record, text) IS
    'The account''s segment with its ancestors, e.g. Enterprise > Healthcare';

CREATE FUNCTION segments.explain(account record, segmentation text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'explain' LANGUAGE c STABLE PARALLEL SAFE COST 50;
COMMENT ON FUNCTION segments.explain(record, text) IS
    'Why the account is in its segment: every segment''s rule tree with pass/fail per node and the values compared';

CREATE FUNCTION segments.classify(account record, ruleset jsonb) RETURNS text
    AS 'MODULE_PATHNAME', 'classify' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments.classify(record, jsonb) IS
    'Pure evaluator: the segment of the row under a ruleset passed in (from segments.ruleset()); reads no table';

CREATE FUNCTION segments._classify_all(account record, ruleset jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', '_classify_all' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments._classify_all(record, jsonb) IS
    'Every match of the row under a ruleset passed in (segments_of as classify is segment_of); used by backfill';

-- The evaluators a distributed query sends the shards in place of segment_path and explain, with the ruleset
-- as a constant (src/api/distributed.rs); classify and _classify_all stand in for segment_of and segments_of.
CREATE FUNCTION segments._classify_path(account record, ruleset jsonb) RETURNS text
    AS 'MODULE_PATHNAME', '_classify_path' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments._classify_path(record, jsonb) IS
    'segment_path under a ruleset passed in (as classify is segment_of''s): what a distributed query runs on the shards';
CREATE FUNCTION segments._explain_with(account record, ruleset jsonb) RETURNS jsonb
    AS 'MODULE_PATHNAME', '_explain_with' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 50;
COMMENT ON FUNCTION segments._explain_with(record, jsonb) IS
    'explain under a ruleset passed in: what a distributed query runs on the shards';

-- Plan-time compilation (src/api/inline.rs): with a constant segmentation, the planner replaces these calls on
-- a table's rows by the segmentation's CASE expression, and the plan depends on the definition tables.
CREATE FUNCTION segments._segment_of_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', '_segment_of_support' LANGUAGE c STRICT;
ALTER FUNCTION segments.segment_of(record, text) SUPPORT segments._segment_of_support;
ALTER FUNCTION segments.segment_path(record, text) SUPPORT segments._segment_of_support;
ALTER FUNCTION segments.segments_of(record, text) SUPPORT segments._segment_of_support;
ALTER FUNCTION segments.classify(record, jsonb) SUPPORT segments._segment_of_support;
ALTER FUNCTION segments._classify_path(record, jsonb) SUPPORT segments._segment_of_support;
ALTER FUNCTION segments._classify_all(record, jsonb) SUPPORT segments._segment_of_support;
COMMENT ON FUNCTION segments._segment_of_support(internal) IS
    'Planner support of segment_of, segment_path, segments_of, classify and their forms over a ruleset passed in: compiles a constant segmentation into the plan';

COMMENT ON FUNCTION segments.to_sql(text) IS
    'The segmentation compiled to a plain SQL CASE expression over the source''s columns';
COMMENT ON FUNCTION segments.to_query(text) IS
    'The segmentation as one plain SQL query over its source, (key, segments_segment): behavioral conditions read each related table once, grouped by the key';
COMMENT ON FUNCTION segments._assignment_sql(text, oid) IS
    'to_query over a relation with the source''s columns (refresh reads a view''s rows from a copy)';
COMMENT ON FUNCTION segments.validate_rule(jsonb, regclass, text) IS
    'Checks a rule against a relation''s columns; raises the first fault with its JSON path';
CREATE FUNCTION segments._validate_rule(rule jsonb, source regclass, key_column text, related jsonb, path text)
    RETURNS boolean STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'validate_segment_rule_wrapper';
COMMENT ON FUNCTION segments._validate_rule(jsonb, regclass, text, jsonb, text) IS
    'validate_rule with the segmentation''s key column and related sources (behavioral conditions)';

-- A segmentation's row by name; an unknown name raises 42704 (through ruleset(), which lists the names).
CREATE FUNCTION segments._definition(name text) RETURNS segments.segmentation
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE g segments.segmentation;
BEGIN
    SELECT * INTO g FROM segments.segmentation s WHERE s.name = _definition.name;
    IF NOT FOUND THEN
        PERFORM segments.ruleset(name);  -- raises 42704 with the list of defined segmentations
    END IF;
    RETURN g;
END $$;

---------------------------------------------------------------------------------------------------------
-- Coverage and quality report
---------------------------------------------------------------------------------------------------------
-- The segmentation's source, or 42P01 naming the segmentation when the relation was dropped (the regclass
-- column then holds a bare OID): for the functions that read the source.
CREATE FUNCTION segments._source(g segments.segmentation) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = g.source) THEN
        RAISE EXCEPTION 'the relation of segmentation "%" does not exist', g.name
            USING ERRCODE = '42P01', DETAIL = format('relation OID %s was dropped after the segmentation was defined', g.source::oid),
                  HINT = 'point segments.segmentation.source at an existing relation, or delete the segmentation';
    END IF;
    RETURN g.source;
END $$;

-- Each active segment with itself and each of its ancestors: (segment, ancestor, the ancestor's level, 1 = top,
-- and its path); the default segment is its own ancestor at level 1.
CREATE FUNCTION segments._lineage(segmentation text)
RETURNS TABLE (segment text, ancestor text, level integer, path text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE up AS (
        SELECT s.name AS segment, s.name AS ancestor, s.parent, s.name AS path
        FROM segments.segment s WHERE s.segmentation = _lineage.segmentation AND s.active
        UNION ALL
        SELECT u.segment, p.name, p.parent, p.name || ' > ' || u.path
        FROM up u JOIN segments.segment p ON p.segmentation = _lineage.segmentation AND p.name = u.parent
    ), self AS (
        SELECT u.segment, count(*)::integer AS level, max(u.path) FILTER (WHERE u.parent IS NULL) AS path
        FROM up u GROUP BY u.segment
    )
    SELECT u.segment, u.ancestor, a.level, a.path FROM up u JOIN self a ON a.segment = u.ancestor
    UNION ALL
    SELECT g.default_segment, g.default_segment, 1, g.default_segment
    FROM segments.segmentation g WHERE g.name = _lineage.segmentation
$$;

-- The FROM list that puts each row of `rows` (with the segment_of result `seg` and the segments_of result `hits`)
-- under every segment it counts in, as `counted`.
CREATE FUNCTION segments._counted_in(g segments.segmentation)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE g.mode
        WHEN 'exclusive' THEN 'rows r JOIN lineage counted ON counted.segment = r.seg'
        ELSE format('rows r CROSS JOIN LATERAL unnest(CASE WHEN cardinality(r.hits) > 0 THEN r.hits ELSE ARRAY[%L] END)'
                    ' AS counted(ancestor)', g.default_segment)
    END
$$;

CREATE FUNCTION segments.coverage(segmentation text)
RETURNS TABLE (segment text, path text, accounts bigint, share float8, matching bigint, shadowed bigint,
               below_min_size boolean, never_wins boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
BEGIN
    -- accounts count as in segments.health() (segments._counted_in): a parent its subtree, a tag its carriers
    RETURN QUERY EXECUTE format($q$
        WITH lineage AS (SELECT * FROM segments._lineage(%1$L)),
        rows AS (
            -- the rules run twice per account (assignment, all matches)
            SELECT segments.segment_of(t.*, %1$L) AS seg, segments.segments_of(t.*, %1$L) AS hits FROM %2$s t
        ), total AS (SELECT count(*) AS n FROM rows),
        defs AS (
            SELECT s.name, s.priority FROM segments.segment s WHERE s.segmentation = %1$L AND s.active
            UNION ALL SELECT %3$L, NULL
        ),
        assigned AS (SELECT counted.ancestor AS seg, count(*) AS n FROM %5$s GROUP BY 1),
        -- in an exclusive segmentation, a hit that is neither the assigned segment nor one of its ancestors lost
        -- on priority; in an overlapping one every hit counts
        hits AS (
            SELECT h AS seg, count(*) AS matching,
                   count(*) FILTER (WHERE %6$L = 'exclusive'
                                    AND NOT EXISTS (SELECT 1 FROM lineage l WHERE l.segment = r.seg AND l.ancestor = h))
                       AS shadowed
            FROM rows r, unnest(r.hits) h GROUP BY h
        )
        SELECT d.name, coalesce(p.path, d.name), coalesce(a.n, 0),
               coalesce(a.n, 0)::float8 / nullif((SELECT n FROM total), 0),
               coalesce(h.matching, a.n, 0), coalesce(h.shadowed, 0),
               coalesce(a.n, 0) < coalesce(%4$s, 0),
               coalesce(a.n, 0) = 0 AND coalesce(h.shadowed, 0) > 0
        FROM defs d LEFT JOIN assigned a ON a.seg = d.name LEFT JOIN hits h ON h.seg = d.name
             LEFT JOIN lineage p ON p.segment = d.name AND p.ancestor = d.name
        ORDER BY d.priority NULLS LAST, d.name
    $q$, g.name, segments._source(g), g.default_segment, coalesce(g.min_segment_size::text, 'NULL'),
         segments._counted_in(g), g.mode);
END $$;
COMMENT ON FUNCTION segments.coverage(text) IS
    'Quality report: accounts and share per segment (default segment last; a parent counts its subtree, a tag '
    'every account carrying it), matches lost to higher-priority segments (shadowed), segments under '
    'min_segment_size, and rules that never win on the current data';

-- Data coverage: for each attribute the rules read, the share of each segment's accounts (counted as in
-- coverage()) that have a value, against the target the segment or its segmentation declares.
CREATE FUNCTION segments.data_coverage(segmentation text)
RETURNS TABLE (segment text, attribute text, accounts bigint, with_value bigint, coverage float8, target float8,
               below_target boolean)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g segments.segmentation := segments._definition(segmentation);
    attributes text[];
BEGIN
    PERFORM segments._source(g);
    SELECT array_agg(a ORDER BY a) INTO attributes
    FROM (SELECT DISTINCT unnest(segments._rule_columns(s.rule, g.source, g.key_column, segments._related_of(g.name))) AS a
          FROM segments.segment s
          WHERE s.segmentation = g.name AND s.active) x;
    IF attributes IS NULL THEN
        RETURN;  -- rules that read no attribute
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH lineage AS (SELECT * FROM segments._lineage(%1$L)),
        rows AS (
            -- num_nonnulls: a value is there unless it is NULL itself (a row value with NULL fields is a value)
            SELECT segments.segment_of(t.*, %1$L) AS seg, %4$s AS hits, ARRAY[%3$s] AS present FROM %2$s t),
        per AS (
            SELECT counted.ancestor AS segment, v.attribute, count(*) AS accounts, count(*) FILTER (WHERE v.present) AS with_value
            FROM %5$s CROSS JOIN LATERAL unnest($1, r.present) v(attribute, present)
            GROUP BY 1, 2),
        defs AS (
            SELECT s.name, s.priority, s.coverage_target FROM segments.segment s WHERE s.segmentation = %1$L AND s.active
            UNION ALL SELECT %6$L, NULL, NULL)
        SELECT d.name, a.attribute, coalesce(p.accounts, 0), coalesce(p.with_value, 0),
               p.with_value::float8 / nullif(p.accounts, 0), coalesce(d.coverage_target, %7$s),
               p.with_value::float8 / nullif(p.accounts, 0) < coalesce(d.coverage_target, %7$s)
        FROM defs d CROSS JOIN unnest($1) a(attribute)
        LEFT JOIN per p ON p.segment = d.name AND p.attribute = a.attribute
        ORDER BY d.priority NULLS LAST, d.name, a.attribute
    $q$, g.name, segments._source(g),
         (SELECT string_agg(format('pg_catalog.num_nonnulls(t.%I) = 1', a), ', ' ORDER BY a) FROM unnest(attributes) a),
         CASE g.mode WHEN 'exclusive' THEN 'NULL::text[]' ELSE format('segments.segments_of(t.*, %L)', g.name) END,
         segments._counted_in(g), g.default_segment, coalesce(g.coverage_target::text, 'NULL::float8'))
    USING attributes;
END $$;
COMMENT ON FUNCTION segments.data_coverage(text) IS
    'Data coverage per segment and rule attribute: accounts, how many have a value, the share, and whether it is '
    'below the coverage_target the segment (or else its segmentation) declares';

