-- pg_segments 0.1.0 -> 0.2.0. Applied by ALTER EXTENSION pg_segments UPDATE; tests/scripts/upgrade.sh checks
-- that the result equals a fresh 0.2.0 install and that the users' data is kept.

---------------------------------------------------------------------------------------------------------
-- Restores keep the dumped rows as they were; the audit log is written by the extension alone
---------------------------------------------------------------------------------------------------------
CREATE FUNCTION segments._acting_role() RETURNS text STRICT STABLE PARALLEL SAFE
    LANGUAGE c AS 'MODULE_PATHNAME', 'acting_role_wrapper';
-- SECURITY DEFINER functions read views and foreign tables as their owners (refresh, backfill)
CREATE FUNCTION segments._read_as_owner(relation oid, copy_name text) RETURNS oid STRICT VOLATILE PARALLEL UNSAFE
    LANGUAGE c AS 'MODULE_PATHNAME', 'read_as_owner_wrapper';
-- the columns a rule reads, for the read checks and data_coverage (src/api/classify.rs)
CREATE FUNCTION segments._rule_columns(rule jsonb, source oid, key_column text, related jsonb) RETURNS text[]
    STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'rule_columns_wrapper';

CREATE FUNCTION segments._restoring() RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN NOT pg_catalog.current_setting('check_function_bodies')::boolean
       AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = pg_catalog.current_user());

COMMENT ON FUNCTION segments._restoring() IS
    'Whether this session is restoring a dump (check_function_bodies off, as pg_dump sets it, and a superuser)';

CREATE OR REPLACE FUNCTION segments._check_readable(source regclass, columns text[], what text) RETURNS void
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

CREATE OR REPLACE FUNCTION segments._check_caller_reads_all(g segments.segmentation, action text) RETURNS void
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

CREATE OR REPLACE FUNCTION segments._check_segment() RETURNS trigger
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

-- Time-varying facts a segmentation declares, for period metrics
ALTER TABLE segments.segmentation
    ADD COLUMN arr_facts regclass, ADD COLUMN arr_facts_time text, ADD COLUMN arr_facts_value text,
    ADD COLUMN nps_facts regclass, ADD COLUMN nps_facts_time text, ADD COLUMN nps_facts_value text,
    ADD COLUMN coverage_target float8 CHECK (coverage_target BETWEEN 0 AND 1);
ALTER TABLE segments.segment ADD COLUMN coverage_target float8 CHECK (coverage_target BETWEEN 0 AND 1);

---------------------------------------------------------------------------------------------------------
-- Behavioral conditions: related sources declared per segmentation
---------------------------------------------------------------------------------------------------------
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
SELECT pg_catalog.pg_extension_config_dump('segments.related_source', '');
COMMENT ON COLUMN segments.definition_log.table_name IS 'segmentation, segment or related_source';
CREATE TRIGGER log_change AFTER INSERT OR UPDATE OR DELETE ON segments.related_source
    FOR EACH ROW EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_truncate AFTER TRUNCATE ON segments.related_source
    FOR EACH STATEMENT EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER invalidate_rulesets AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segments.related_source
    FOR EACH STATEMENT EXECUTE FUNCTION segments._invalidate_rulesets();
CREATE FUNCTION segments.to_query(segmentation text DEFAULT NULL) RETURNS text STABLE PARALLEL SAFE
    LANGUAGE c AS 'MODULE_PATHNAME', 'to_query_wrapper';
COMMENT ON FUNCTION segments.to_query(text) IS
    'The segmentation as one plain SQL query over its source, (key, segments_segment): behavioral conditions read each related table once, grouped by the key';
CREATE FUNCTION segments._assignment_sql(segmentation text, source oid) RETURNS text STRICT STABLE PARALLEL SAFE
    LANGUAGE c AS 'MODULE_PATHNAME', 'assignment_sql_wrapper';
COMMENT ON FUNCTION segments._assignment_sql(text, oid) IS
    'to_query over a relation with the source''s columns (refresh reads a view''s rows from a copy)';
CREATE FUNCTION segments._validate_rule(rule jsonb, source regclass, key_column text, related jsonb, path text)
    RETURNS boolean STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'validate_segment_rule_wrapper';
COMMENT ON FUNCTION segments._validate_rule(jsonb, regclass, text, jsonb, text) IS
    'validate_rule with the segmentation''s key column and related sources (behavioral conditions)';

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
GRANT SELECT ON segments.related_source TO segments_reader;
GRANT INSERT, UPDATE, DELETE ON segments.related_source TO segments_editor;
COMMENT ON COLUMN segments.segmentation.coverage_target IS 'Share of a segment''s accounts that should have a value in each attribute its rules read (e.g. 0.8); segments.data_coverage() flags the gaps';
COMMENT ON COLUMN segments.segment.coverage_target IS 'This segment''s data coverage target (e.g. 0.95 for enterprise), overriding the segmentation''s';
COMMENT ON COLUMN segments.segmentation.arr_facts IS 'ARR snapshots for period metrics: a relation with the account key (named as key_column), a snapshot time and ARR; an account missing from a snapshot has ARR 0 then';
COMMENT ON COLUMN segments.segmentation.arr_facts_time IS 'Snapshot time column of arr_facts (date, timestamp or timestamptz)';
COMMENT ON COLUMN segments.segmentation.arr_facts_value IS 'ARR column of arr_facts (a number; several rows of one account and snapshot are added)';
COMMENT ON COLUMN segments.segmentation.nps_facts IS 'NPS answers for period metrics: a relation with the account key (named as key_column), an answer time and a 0-10 score';
COMMENT ON COLUMN segments.segmentation.nps_facts_time IS 'Answer time column of nps_facts (date, timestamp or timestamptz)';
COMMENT ON COLUMN segments.segmentation.nps_facts_value IS 'Score column of nps_facts (smallint, integer, bigint or whole numeric, 0-10)';

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

CREATE OR REPLACE FUNCTION segments._check_segmentation() RETURNS trigger
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

CREATE OR REPLACE FUNCTION segments._log_change() RETURNS trigger
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
CREATE TRIGGER log_truncate AFTER TRUNCATE ON segments.segmentation
    FOR EACH STATEMENT EXECUTE FUNCTION segments._log_change();
CREATE TRIGGER log_truncate AFTER TRUNCATE ON segments.segment
    FOR EACH STATEMENT EXECUTE FUNCTION segments._log_change();

COMMENT ON TABLE segments.definition_log IS 'Audit log: every insert, update, delete and truncate of segmentations and segments, written only by the extension';

COMMENT ON COLUMN segments.definition_log.operation IS 'INSERT, UPDATE, DELETE or TRUNCATE';

REVOKE INSERT ON segments.definition_log FROM segments_editor;
REVOKE USAGE ON SEQUENCE segments.definition_log_id_seq FROM segments_editor;

---------------------------------------------------------------------------------------------------------
-- Every function is immune to objects planted on the caller's search_path, and generated SQL to odd
-- column names (a column named t, a % in a key column's name)
---------------------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION segments._read_ruleset(segmentation text) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION segments.ruleset(segmentation text DEFAULT NULL) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'ruleset' LANGUAGE c STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION segments._definition(name text) RETURNS segments.segmentation
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE g segments.segmentation;
BEGIN
    SELECT * INTO g FROM segments.segmentation s WHERE s.name = _definition.name;
    IF NOT FOUND THEN
        PERFORM segments.ruleset(name);  -- raises 42704 with the list of defined segmentations
    END IF;
    RETURN g;
END $$;

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

CREATE OR REPLACE FUNCTION segments.coverage(segmentation text)
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

CREATE OR REPLACE FUNCTION segments.health(segmentation text)
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


CREATE OR REPLACE FUNCTION segments._null_key(segmentation text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION segments._sync_sql(g segments.segmentation, scope text, at text, into_clause text DEFAULT '') RETURNS text
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

CREATE OR REPLACE FUNCTION segments._key_is_unique(g segments.segmentation) RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
               WHERE i.indrelid = g.source AND i.indisunique AND i.indimmediate AND i.indnkeyatts = 1
                 AND i.indpred IS NULL AND a.attname = g.key_column);

CREATE OR REPLACE FUNCTION segments._lock_key(segmentation text) RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    RETURN (SELECT hashtextextended('pg_segments.source:' || g.source::oid::text, 0)
            FROM segments.segmentation g WHERE g.name = _lock_key.segmentation);

CREATE OR REPLACE FUNCTION segments.segment_at(segmentation text, account_key text, at timestamptz DEFAULT now()) RETURNS text
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

CREATE OR REPLACE FUNCTION segments.transitions(segmentation text, from_time timestamptz, to_time timestamptz)
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

CREATE OR REPLACE FUNCTION segments._trigger_name(segmentation text, op text) RETURNS name LANGUAGE sql IMMUTABLE
    RETURN pg_catalog.concat('segments_track_', op, '_', pg_catalog.left(pg_catalog.md5(segmentation), 12))::pg_catalog.name;

CREATE OR REPLACE FUNCTION segments._tracking_sql(segmentation text, op text) RETURNS text LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- tracking covers partitions: _drop_tracking finds the triggers wherever they are (no source argument)
DROP FUNCTION segments._drop_tracking(text, regclass);
-- The tables that carry a segmentation's tracking triggers: the source and every partition of it, since a
-- statement on a partition fires only the partition's own statement triggers (foreign partitions excluded:
-- their triggers cannot have transition tables, and their rows change elsewhere).
CREATE FUNCTION segments._tracked_tables(source regclass) RETURNS SETOF regclass LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT source UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(source) t
    JOIN pg_catalog.pg_class c ON c.oid = t.relid WHERE c.relkind IN ('r', 'p')
$$;

-- Removes a segmentation's tracking triggers wherever they are: its source, the partitions, a detached one.
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

-- Installs the triggers where they are missing (so it also serves partitions created or attached later).
CREATE OR REPLACE FUNCTION segments._create_tracking(segmentation text, source regclass) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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

-- sources tracked before the upgrade get the triggers on their partitions too
SELECT segments._create_tracking(s.name, s.source) FROM segments.segmentation s
WHERE EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = s.source AND t.tgname = segments._trigger_name(s.name, 'insert'));

CREATE OR REPLACE FUNCTION segments._untrack_deleted() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM segments.membership WHERE segmentation = OLD.name;
    PERFORM segments._drop_tracking(OLD.name);
    RETURN OLD;
END $$;

CREATE OR REPLACE FUNCTION segments._rename_membership() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE segments.membership SET segmentation = NEW.name WHERE segmentation = OLD.name;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = OLD.source AND tgname = segments._trigger_name(OLD.name, 'update')) THEN
        PERFORM segments._drop_tracking(OLD.name);
        PERFORM segments._create_tracking(NEW.name, NEW.source);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION segments.preview(segmentation text, segment text, new_rule jsonb)
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

CREATE OR REPLACE FUNCTION segments.refresh(segmentation text, OUT entered bigint, OUT "left" bigint, OUT moved bigint,
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

CREATE OR REPLACE FUNCTION segments._check_caller_may_trigger(g segments.segmentation) RETURNS void
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

CREATE OR REPLACE FUNCTION segments.track(segmentation text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
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

CREATE OR REPLACE FUNCTION segments.untrack(segmentation text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE g segments.segmentation := segments._definition(segmentation);
BEGIN
    PERFORM segments._check_caller_may_trigger(g);
    PERFORM segments._drop_tracking(g.name);
END $$;

CREATE OR REPLACE FUNCTION segments._nps_final(s float8[]) RETURNS numeric LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN s[1] OPERATOR(pg_catalog.>) 0 THEN
        100 OPERATOR(pg_catalog.*) (s[2] OPERATOR(pg_catalog.-) s[3])::pg_catalog.numeric
            OPERATOR(pg_catalog./) s[1]::pg_catalog.numeric END;

---------------------------------------------------------------------------------------------------------
-- RFM names: the built-in map moves out of the user's table (a restore collided with it)
---------------------------------------------------------------------------------------------------------

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

-- a 0.1.0 map still equal to the built-in one is the built-in one: empty it, so that later versions' built-in
-- names reach it; an edited map is the user's and stays as it is
DELETE FROM segments.rfm_segment_map
WHERE (SELECT count(*) FROM segments.rfm_segment_map) = (SELECT count(*) FROM segments.rfm_default_map)
  AND NOT EXISTS (SELECT * FROM segments.rfm_segment_map EXCEPT SELECT * FROM segments.rfm_default_map);

COMMENT ON TABLE segments.rfm_segment_map IS
    'Your RFM map: score ranges of named segments, the first match by priority wins; while empty, segments.rfm_default_map applies';

CREATE OR REPLACE FUNCTION segments.rfm_segment(r integer, f integer, m integer) RETURNS text
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

---------------------------------------------------------------------------------------------------------
-- Membership is readable only where the role can read the source
---------------------------------------------------------------------------------------------------------

ALTER TABLE segments.membership ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable_source ON segments.membership
    USING (segmentation IN (SELECT g.name FROM segments.segmentation g
                            WHERE pg_catalog.has_table_privilege(g.source, 'SELECT')))
    WITH CHECK (segmentation IN (SELECT g.name FROM segments.segmentation g
                                 WHERE pg_catalog.has_table_privilege(g.source, 'SELECT')));

ALTER VIEW segments.current_membership SET (security_invoker = true);

-- notifications carry no account data; a listener asks segments.changes() who moved

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

-- membership is written by the extension's SECURITY DEFINER functions only
ALTER FUNCTION segments._track() SECURITY DEFINER;
REVOKE INSERT, UPDATE, DELETE ON segments.membership FROM segments_editor;

---------------------------------------------------------------------------------------------------------
-- NPS over any whole-number score type; win rate and time to close of opportunities
---------------------------------------------------------------------------------------------------------
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

CREATE FUNCTION segments._classify_all(account record, ruleset jsonb) RETURNS text[]
    AS 'MODULE_PATHNAME', '_classify_all' LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE COST 10;
COMMENT ON FUNCTION segments._classify_all(record, jsonb) IS
    'Every match of the row under a ruleset passed in (segments_of as classify is segment_of); used by backfill';

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

---------------------------------------------------------------------------------------------------------
-- Predictive segmentation: logistic regression, scoring, evaluation and hash splits
---------------------------------------------------------------------------------------------------------
CREATE FUNCTION segments.logistic_regression(
	"source" regclass,
	"outcome" TEXT,
	"features" TEXT[],
	"l2" double precision DEFAULT 0.0,
	"max_iterations" INT DEFAULT 100
) RETURNS jsonb
STRICT STABLE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'logistic_regression_wrapper';
CREATE FUNCTION segments.segmentation_from_tree(
	"name" TEXT,
	"source" regclass,
	"key_column" TEXT,
	"outcome" TEXT,
	"features" TEXT[],
	"max_depth" INT DEFAULT 3,
	"min_leaf" INT DEFAULT 1,
	"min_impurity_decrease" double precision DEFAULT 0.0
) RETURNS TABLE (
	"segment" TEXT,
	"parent" TEXT,
	"depth" INT,
	"leaf" bool,
	"rows" bigint,
	"positives" bigint,
	"outcome_rate" double precision
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'segmentation_from_tree_wrapper';
CREATE FUNCTION segments._chi2_sf("x" double precision, "df" double precision) RETURNS double precision
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'chi2_sf_wrapper';
CREATE FUNCTION segments._t_two_sided("t" double precision, "df" double precision) RETURNS double precision
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 't_two_sided_wrapper';
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

-- The model fits' state: from an internal value (collected rows) to a float8[] that grows in place, with a
-- concatenating combine (partial aggregation on Citus workers). CREATE OR REPLACE AGGREGATE keeps the
-- aggregates' identity, so views over them survive the upgrade.
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
CREATE OR REPLACE AGGREGATE segments.bgnbd_fit(frequency float8, recency float8, t float8) (
    SFUNC = segments._rows_accum, STYPE = float8[], FINALFUNC = segments._bgnbd_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE segments.gamma_gamma_fit(frequency float8, monetary float8) (
    SFUNC = segments._rows_accum, STYPE = float8[], FINALFUNC = segments._gamma_gamma_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
CREATE OR REPLACE AGGREGATE segments.sbg_fit(period float8, alive float8) (
    SFUNC = segments._rows_accum, STYPE = float8[], FINALFUNC = segments._sbg_final,
    COMBINEFUNC = segments._rows_combine, PARALLEL = SAFE);
DROP FUNCTION segments._rows_accum(internal, float8, float8), segments._rows_accum(internal, float8, float8, float8),
    segments._rows_combine(internal, internal), segments._rows_serialize(internal),
    segments._rows_deserialize(bytea, internal), segments._bgnbd_final(internal),
    segments._gamma_gamma_final(internal), segments._sbg_final(internal);

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

---------------------------------------------------------------------------------------------------------
-- Segment references: removals refused, renames carried
---------------------------------------------------------------------------------------------------------
CREATE FUNCTION segments._renamed_references(rule jsonb, segmentation text, old_segment text, new_segment text,
                                             new_segmentation text) RETURNS jsonb
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'renamed_references_wrapper';
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

---------------------------------------------------------------------------------------------------------
-- Grants for the new objects, as roles.sql gives them at install
---------------------------------------------------------------------------------------------------------
GRANT SELECT ON segments.rfm_default_map, segments.segmentation_overview TO segments_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA segments TO segments_reader;
REVOKE ALL ON FUNCTION segments._read_as_owner(oid, text) FROM PUBLIC, segments_reader;

---------------------------------------------------------------------------------------------------------
-- Rules that 0.2.0 refuses (a matches pattern outside the regex subset both engines read alike, ...) are
-- named here, not changed: segment_of raises the same error for them until they are edited
---------------------------------------------------------------------------------------------------------
DO $$
DECLARE s record;
BEGIN
    FOR s IN SELECT x.segmentation, x.name, x.rule, g.source FROM segments.segment x
             JOIN segments.segmentation g ON g.name = x.segmentation ORDER BY 1, 2
    LOOP
        BEGIN
            PERFORM segments.validate_rule(s.rule, s.source);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'segment "%" of segmentation "%" has a rule pg_segments 0.2.0 refuses: %', s.name, s.segmentation, SQLERRM
                USING HINT = 'edit the rule (README: The rule language)';
        END;
    END LOOP;
END $$;
