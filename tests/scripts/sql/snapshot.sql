-- Everything a user keeps in pg_segments, printed in a stable order: compared before and after a backup.
\pset format unaligned
\pset footer off
-- definitions without NULLs: columns an upgrade adds (NULL for existing rows) are no change to the users' data
SELECT 'segmentation', jsonb_strip_nulls(to_jsonb(g)) FROM segments.segmentation g ORDER BY g.name;
SELECT 'segment', jsonb_strip_nulls(to_jsonb(s)) FROM segments.segment s ORDER BY s.segmentation, s.name;
SELECT 'log', id, changed_at, changed_by, table_name, operation, old_row, new_row FROM segments.definition_log ORDER BY id;
SELECT 'log sequence', last_value FROM segments.definition_log_id_seq;
SELECT 'rfm', to_jsonb(r) FROM segments.rfm_segment_map r ORDER BY r.priority;
SELECT 'membership', segmentation, account_key, segment, valid, exclusive FROM segments.membership
ORDER BY segmentation, account_key, segment, lower(valid);
SELECT 'answer', a.id, segments.segment_of(a, 'tier'), segments.segment_path(a, 'tier'), segments.segments_of(a, 'tags')
FROM crm.accounts a ORDER BY a.id;
SELECT 'tracking trigger', tgrelid::regclass, tgname, tgenabled FROM pg_trigger
WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'crm'::regnamespace) AND NOT tgisinternal ORDER BY tgrelid::regclass::text, tgname;
-- the period metrics of a segmentation with declared facts (made only where the release has them)
SELECT EXISTS (SELECT 1 FROM segments.segmentation WHERE name = 'size') AS has_facts \gset
\if :has_facts
SELECT 'series', period_start, segment, accounts, accounts_end, entered, exited, arr_start, arr_end, churn_rate
FROM segments.health_series('size', '2024-01-01 00:00+00', '2024-04-01 00:00+00') ORDER BY 2, 3;
\endif
-- related sources and a behavioral segmentation's answers (where the release has them)
SELECT to_regclass('segments.related_source') IS NOT NULL AS has_related \gset
\if :has_related
SELECT count(*) > 0 AS any_related FROM segments.related_source \gset
\if :any_related
SELECT 'related', to_jsonb(r) FROM segments.related_source r ORDER BY r.segmentation, r.name;
\endif
\endif
SELECT EXISTS (SELECT 1 FROM segments.segmentation WHERE name = 'usage') AS has_usage \gset
\if :has_usage
SELECT 'usage answer', a.id, segments.segment_of(a, 'usage') FROM crm.accounts a ORDER BY a.id;
\endif
