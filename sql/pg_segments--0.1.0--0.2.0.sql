-- pg_segments 0.1.0 -> 0.2.0. Applied by ALTER EXTENSION pg_segments UPDATE; tests/scripts/upgrade.sh checks
-- that the result equals a fresh 0.2.0 install and that the users' data is kept.

---------------------------------------------------------------------------------------------------------
-- Restores keep the dumped rows as they were; the audit log is written by the extension alone
---------------------------------------------------------------------------------------------------------
CREATE FUNCTION segments._acting_role() RETURNS text STRICT STABLE PARALLEL SAFE
    LANGUAGE c AS 'MODULE_PATHNAME', 'acting_role_wrapper';

CREATE FUNCTION segments._restoring() RETURNS boolean LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
RETURN NOT pg_catalog.current_setting('check_function_bodies')::boolean
       AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = pg_catalog.current_user());
COMMENT ON FUNCTION segments._restoring() IS
    'Whether this session is restoring a dump (check_function_bodies off, as pg_dump sets it, and a superuser)';

CREATE OR REPLACE FUNCTION segments._check_segment() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src regclass;
    at text := NEW.parent;
    steps int := 0;
BEGIN
    IF segments._restoring() THEN
        RETURN NEW;
    END IF;
    SELECT g.source INTO src FROM segments.segmentation g WHERE g.name = NEW.segmentation;
    IF src IS NOT NULL THEN
        PERFORM segments.validate_rule(NEW.rule, src, format('segment "%s" rule', NEW.name));
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

CREATE OR REPLACE FUNCTION segments._check_segmentation() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    -- memberships recorded under the old mode end now; the next refresh records them under the new one
    IF TG_OP = 'UPDATE' AND NEW.mode IS DISTINCT FROM OLD.mode THEN
        UPDATE segments.membership SET valid = tstzrange(lower(valid), now())
        WHERE segmentation = OLD.name AND upper_inf(valid) AND lower(valid) < now();
        DELETE FROM segments.membership WHERE segmentation = OLD.name AND upper_inf(valid);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.source IS DISTINCT FROM OLD.source THEN
        FOR s IN SELECT * FROM segments.segment WHERE segmentation = NEW.name LOOP
            PERFORM segments.validate_rule(s.rule, NEW.source, format('segment "%s" rule', s.name));
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
-- Every function is immune to objects planted on the caller's search_path
---------------------------------------------------------------------------------------------------------
ALTER FUNCTION segments.ruleset(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._definition(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments.coverage(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments.health(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._null_key(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._sync_sql(segments.segmentation, text, text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._key_is_unique(segments.segmentation) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments.segment_at(text, text, timestamptz) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments.transitions(text, timestamptz, timestamptz) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._tracking_sql(text, text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._drop_tracking(text, regclass) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._create_tracking(text, regclass) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._untrack_deleted() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments._rename_membership() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION segments.preview(text, text, jsonb) SET search_path = pg_catalog, pg_temp;
-- inlinable SQL functions stay without a SET clause: their built-ins are schema-qualified instead

CREATE OR REPLACE FUNCTION segments._lock_key(segmentation text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN pg_catalog.hashtextextended('pg_segments.membership:' OPERATOR(pg_catalog.||) segmentation, 0);

CREATE OR REPLACE FUNCTION segments._trigger_name(segmentation text, op text) RETURNS name LANGUAGE sql IMMUTABLE
    RETURN pg_catalog.concat('segments_track_', op, '_', pg_catalog.left(pg_catalog.md5(segmentation), 12))::pg_catalog.name;

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
-- Grants for the new objects, as roles.sql gives them at install
---------------------------------------------------------------------------------------------------------
GRANT SELECT ON segments.rfm_default_map TO segments_reader;
GRANT EXECUTE ON FUNCTION segments._acting_role(), segments._restoring() TO segments_reader;
