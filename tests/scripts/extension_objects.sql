-- Every object of the pg_segments extension, described from the catalogs in a stable text form, so that two
-- databases can be compared line by line (an upgraded one with a fresh install).
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d
    JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
    WHERE e.extname = 'pg_segments' AND d.deptype = 'e'
)
SELECT line FROM (
    -- functions and aggregates: signature, result, kind, volatility, parallel safety, strictness, security,
    -- settings, cost, source symbol or body, comment, grants
    SELECT format('function %s(%s) returns %s kind=%s volatile=%s parallel=%s strict=%s definer=%s leakproof=%s config=%s cost=%s rows=%s support=%s src=%s acl=%s comment=%s',
                  p.oid::regproc, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid), p.prokind,
                  p.provolatile, p.proparallel, p.proisstrict, p.prosecdef, p.proleakproof, p.proconfig, p.procost,
                  p.prorows, p.prosupport, CASE WHEN l.lanname = 'c' THEN p.prosrc ELSE md5(p.prosrc) END,
                  coalesce(p.proacl, acldefault('f'::"char", p.proowner)), obj_description(p.oid, 'pg_proc')) AS line
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    JOIN pg_language l ON l.oid = p.prolang
    UNION ALL
    SELECT format('aggregate %s(%s) sfunc=%s stype=%s final=%s combine=%s serial=%s deserial=%s init=%s finalmodify=%s msfunc=%s',
                  p.oid::regproc, pg_get_function_arguments(p.oid), a.aggtransfn, a.aggtranstype::regtype,
                  a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.agginitval, a.aggfinalmodify, a.aggmtransfn)
    FROM members m JOIN pg_aggregate a ON m.classid = 'pg_proc'::regclass AND a.aggfnoid = m.objid
    JOIN pg_proc p ON p.oid = a.aggfnoid
    UNION ALL
    -- relations: kind, persistence, options, grants (NULL meaning the default grants), comment, row security
    SELECT format('relation %s kind=%s persistence=%s rls=%s force_rls=%s options=%s acl=%s comment=%s',
                  c.oid::regclass, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
                  c.reloptions, coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)),
                  obj_description(c.oid, 'pg_class'))
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    -- columns in order, with type, nullability, default, collation, grants and comment
    SELECT format('column %s.%s #%s %s notnull=%s default=%s collation=%s acl=%s comment=%s',
                  c.oid::regclass, a.attname,
                  row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attcollation::regcollation, a.attacl,
                  col_description(c.oid, a.attnum))
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
    UNION ALL
    -- views: their definitions
    SELECT format('view %s: %s', c.oid::regclass, pg_get_viewdef(c.oid))
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid AND c.relkind IN ('v', 'm')
    UNION ALL
    -- constraints, indexes, triggers and policies of the extension's tables
    SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
    FROM members m JOIN pg_constraint co ON m.classid = 'pg_class'::regclass AND co.conrelid = m.objid
    UNION ALL
    SELECT format('index on %s: %s', i.indrelid::regclass, regexp_replace(pg_get_indexdef(i.indexrelid), ' INDEX \S+ ON ', ' INDEX ON '))
    FROM members m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
    WHERE NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid)
    UNION ALL
    SELECT format('trigger %s on %s: %s enabled=%s', t.tgname, t.tgrelid::regclass, pg_get_triggerdef(t.oid), t.tgenabled)
    FROM members m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s on %s: %s %s to %s using %s check %s', po.polname, po.polrelid::regclass, po.polcmd,
                  po.polpermissive, po.polroles::regrole[], pg_get_expr(po.polqual, po.polrelid),
                  pg_get_expr(po.polwithcheck, po.polrelid))
    FROM members m JOIN pg_policy po ON m.classid = 'pg_class'::regclass AND po.polrelid = m.objid
    UNION ALL
    -- types (composites, enums, domains) and schemas
    SELECT format('type %s kind=%s', t.oid::regtype, t.typtype)
    FROM members m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT format('schema %s acl=%s comment=%s', n.nspname, n.nspacl, obj_description(n.oid, 'pg_namespace'))
    FROM members m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    -- rows of extension tables registered for pg_dump, with their filters
    SELECT format('config table %s filter=%s', cfg.tbl, cfg.cond)
    FROM pg_extension e, unnest(e.extconfig::regclass[], e.extcondition) AS cfg(tbl, cond)
    WHERE e.extname = 'pg_segments'
    UNION ALL
    SELECT format('schema of %s: %s', n.nspname, 'exists')
    FROM pg_namespace n WHERE n.nspname LIKE 'segments%'
) objects
ORDER BY line COLLATE "C";
