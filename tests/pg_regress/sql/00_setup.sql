-- The extension, and a helper that shows an error's SQLSTATE, message, detail and hint as a row.
CREATE EXTENSION pg_segments CASCADE;
SELECT extname, extversion IS NOT NULL AS has_version FROM pg_extension WHERE extname IN ('pg_segments', 'btree_gist') ORDER BY 1;

CREATE FUNCTION public.error_of(statement text)
RETURNS TABLE (sqlstate text, message text, detail text, hint text) LANGUAGE plpgsql AS $$
DECLARE
    s text; m text; d text; h text;
BEGIN
    EXECUTE statement;
    RETURN QUERY SELECT 'no error'::text, NULL::text, NULL::text, NULL::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN QUERY SELECT s, m, nullif(d, ''), nullif(h, '');
END $$;

-- The IBM Telco data (7043 accounts) is loaded by tests/load_fixtures.sh.
SELECT count(*) AS accounts, count(*) FILTER (WHERE total_charges IS NULL) AS blank_total_charges FROM telco.customers;
