-- Runs last: grants cover every table and function the other files created.
---------------------------------------------------------------------------------------------------------
-- Roles: segments_editor may change definitions; segments_reader may read them and call the functions
---------------------------------------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'segments_reader') THEN
        CREATE ROLE segments_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'segments_editor') THEN
        CREATE ROLE segments_editor NOLOGIN;
    END IF;
END $$;
GRANT segments_reader TO segments_editor;
GRANT USAGE ON SCHEMA segments TO segments_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA segments TO segments_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA segments TO segments_reader;
GRANT INSERT, UPDATE, DELETE ON segments.segmentation, segments.segment, segments.related_source TO segments_editor;
-- membership is written by the extension's SECURITY DEFINER functions only
-- the audit log is written by its SECURITY DEFINER trigger only
-- reads a relation as its owner on behalf of refresh and backfill: theirs alone
REVOKE ALL ON FUNCTION segments._read_as_owner(oid, text) FROM PUBLIC, segments_reader;
