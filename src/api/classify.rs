//! segment_of, segments_of, segment_path, explain, classify: rows in, segments out.
//!
//! Each call site keeps its compiled ruleset and row reader in `fn_extra` (allocated in `fn_mcxt`, so it
//! lives for one execution of the query): rules are read and compiled once per query, attribute names
//! resolved once per row type, and segment names returned as ready-made text datums.

use super::row::{composite_header, jsonb_value, varlena_bytes, RowReader, RowView, TupleColumns};
use super::security::read_first;
use super::{c_function, raise_with, text_datum, OrRaise};
use crate::rules::sql::to_sql as ruleset_sql;
use crate::rules::time::format_iso_utc;
use crate::rules::{Ruleset, RulesetDef};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{JsonB, PgMemoryContexts, PgRelation};
use std::cell::RefCell;
use std::collections::HashMap;

struct CallSite {
    /// what the ruleset was built from: a segmentation name or the bytes of an inline ruleset
    key: (u8, Vec<u8>),
    reader: RowReader,
    ruleset: Ruleset,
    /// text datums in fn_mcxt: one per segment, then the default segment
    names: Vec<pg_sys::Datum>,
    paths: Vec<pg_sys::Datum>,
}

/// Where a call's rules come from, borrowed from its arguments (no copy on the per-row path).
enum Source<'a> {
    /// `segmentation text` argument (None: NULL, the only segmentation)
    Named(Option<&'a [u8]>),
    /// `ruleset jsonb` argument: the datum and its bytes
    Inline(pg_sys::Datum, &'a [u8]),
}

impl Source<'_> {
    fn key(&self) -> (u8, &[u8]) {
        match self {
            Source::Named(None) => (0, &[]),
            Source::Named(Some(name)) => (1, name),
            Source::Inline(_, bytes) => (2, bytes),
        }
    }

    unsafe fn load(&self) -> RulesetDef {
        let json = match self {
            Source::Named(name) => {
                load_ruleset_json(name.map(|n| std::str::from_utf8(n).unwrap_or_default()))
            }
            Source::Inline(d, _) => unsafe { jsonb_value(*d, "ruleset") }.or_raise(),
        };
        RulesetDef::from_json(&json).or_raise()
    }
}

thread_local! {
    /// Rulesets read in this backend, by segmentation name (None: the only one). Cleared whenever a
    /// definition table changes (see `forget_rulesets`), so per-statement work skips the catalog read.
    static RULESETS: RefCell<HashMap<Option<String>, serde_json::Value>> = RefCell::new(HashMap::new());
    static LISTENING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Invalidations seen by this backend: a read during which one arrived is not kept.
    static INVALIDATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Registers `forget_rulesets` (once per backend): what is kept of the definitions is forgotten on change.
pub fn listen_for_definition_changes() {
    if !LISTENING.with(|l| l.replace(true)) {
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(Some(forget_rulesets), pg_sys::Datum::from(0))
        };
    }
}

/// How many relcache invalidations this backend has seen: a value computed from the definitions is valid
/// while the count stays the same.
pub fn invalidations() -> u64 {
    INVALIDATIONS.get()
}

/// Relcache invalidation callback: the definition tables' triggers send one on every change (at the end of
/// the statement for this backend, at commit for the others).
unsafe extern "C-unwind" fn forget_rulesets(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    RULESETS.with(|c| c.borrow_mut().clear());
    RULESET_VALUES.with(|c| *c.borrow_mut() = None);
    INVALIDATIONS.set(INVALIDATIONS.get() + 1);
    super::tracking::forget();
}

/// The definitions of a segmentation, as `segments.ruleset(name)` gives them (errors 42704 if unknown),
/// without `as_of`: each statement evaluates time rules against its own transaction start.
///
/// What is read is kept for later statements only when it cannot be stale: not under a transaction
/// snapshot (REPEATABLE READ, SERIALIZABLE: it sees the definitions as of the transaction's start, and the
/// invalidation of a later change may already have been processed), and only if no invalidation arrived
/// while reading.
pub fn load_ruleset_json(name: Option<&str>) -> serde_json::Value {
    listen_for_definition_changes();
    let key = name.map(str::to_string);
    if let Some(json) = RULESETS.with(|c| c.borrow().get(&key).cloned()) {
        return json;
    }
    let invalidations = INVALIDATIONS.get();
    // a database still at 0.1.0 (the library is new, ALTER EXTENSION UPDATE not yet run) has only ruleset()
    let current = read_first(
        c"SELECT to_regprocedure('segments._read_ruleset(text)') IS NOT NULL",
        &[],
        |d| d.is_some_and(|d| d.value() != 0),
    );
    let query = if current {
        c"SELECT segments._read_ruleset($1)"
    } else {
        c"SELECT segments.ruleset($1)"
    };
    let mut json = read_first(query, &[name], |d| {
        d.map(|d| unsafe { jsonb_value(d, "ruleset") }.or_raise())
    })
    .unwrap_or_default();
    if let Some(obj) = json.as_object_mut() {
        obj.remove("as_of");
    }
    let transaction_snapshot =
        unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32;
    if !transaction_snapshot && INVALIDATIONS.get() == invalidations {
        RULESETS.with(|c| c.borrow_mut().insert(key, json.clone()));
    }
    json
}

thread_local! {
    /// `segments.ruleset()`'s jsonb, built once per statement and call: (name, statement start) → varlena.
    static RULESET_VALUES: RefCell<Option<(Option<String>, i64, Vec<u8>)>> = const { RefCell::new(None) };
}

// segments.ruleset(segmentation): the definitions as one jsonb value, with the transaction's time as
// `as_of`. Built once per statement from the backend cache and handed out as a copy to every row that asks.
c_function!(pg_finfo_ruleset, ruleset, |fcinfo| {
    let args = (*fcinfo).args.as_slice(1);
    let name = (!args[0].isnull && (*fcinfo).nargs > 0)
        .then(|| String::from_utf8_lossy(varlena_bytes(args[0].value)).into_owned());
    let statement = pg_sys::GetCurrentStatementStartTimestamp();
    // every row gets its own palloc'd copy, made straight from the cached bytes
    let copy_of = |bytes: &[u8]| {
        let copy = pg_sys::palloc(bytes.len()) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), copy, bytes.len());
        pg_sys::Datum::from(copy)
    };
    let cached = RULESET_VALUES.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(n, at, _)| *n == name && *at == statement)
            .map(|(_, _, bytes)| copy_of(bytes))
    });
    cached.unwrap_or_else(|| {
        let mut json = load_ruleset_json(name.as_deref());
        if let Some(obj) = json.as_object_mut() {
            let now = pg_sys::GetCurrentTransactionStartTimestamp();
            obj.insert("as_of".into(), format_iso_utc(now).into());
        }
        let datum = JsonB(json).into_datum().unwrap_or(pg_sys::Datum::from(0));
        let v = datum.cast_mut_ptr::<pg_sys::varlena>();
        let bytes =
            std::slice::from_raw_parts(v as *const u8, pgrx::varlena::varsize_any(v)).to_vec();
        RULESET_VALUES.with(|c| *c.borrow_mut() = Some((name, statement, bytes)));
        datum
    })
});

/// Called by the definition tables' statement triggers: invalidates cached rulesets in every backend.
#[pg_extern(volatile, parallel_unsafe, name = "_definitions_changed")]
fn definitions_changed(table: PgRelation) {
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(table.oid()) };
}

/// The call site's cache, (re)built when the ruleset source or the row type changes.
unsafe fn call_site<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    header: pg_sys::HeapTupleHeader,
    source: &Source,
) -> &'a mut CallSite {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let key = source.key();
        let cached = (*flinfo).fn_extra as *mut CallSite;
        if !cached.is_null()
            && (*cached).key.0 == key.0
            && (*cached).key.1 == key.1
            && (*cached).reader.same_type(header)
        {
            return &mut *cached;
        }
        let mcx = (*flinfo).fn_mcxt;
        let reader = RowReader::new(header);
        let def = source.load();
        let now = pg_sys::GetCurrentTransactionStartTimestamp();
        let ruleset = super::related::compile_ruleset(&def, &reader.columns, now);

        let (names, paths) = PgMemoryContexts::For(mcx).switch_to(|_| {
            let names = (0..=ruleset.segments.len())
                .map(|i| {
                    text_datum(ruleset.name_of(Some(i).filter(|&i| i < ruleset.segments.len())))
                })
                .collect();
            let paths = (0..=ruleset.segments.len())
                .map(|i| {
                    text_datum(ruleset.path_of(Some(i).filter(|&i| i < ruleset.segments.len())))
                })
                .collect();
            (names, paths)
        });
        let site = CallSite {
            key: (key.0, key.1.to_vec()),
            reader,
            ruleset,
            names,
            paths,
        };
        let ptr = PgMemoryContexts::For(mcx).leak_and_drop_on_delete(site);
        (*flinfo).fn_extra = ptr.cast();
        &mut *ptr
    }
}

/// Common shape of the per-row functions: arg 0 is the row, arg 1 the ruleset source.
unsafe fn with_row(
    fcinfo: pg_sys::FunctionCallInfo,
    inline: bool,
    f: impl FnOnce(&CallSite, &RowView) -> Option<pg_sys::Datum>,
) -> pg_sys::Datum {
    unsafe {
        let args = (*fcinfo).args.as_slice(2);
        if args[0].isnull || (inline && args[1].isnull) {
            (*fcinfo).isnull = true;
            return pg_sys::Datum::from(0);
        }
        let source = if inline {
            Source::Inline(args[1].value, varlena_bytes(args[1].value))
        } else if args[1].isnull || (*fcinfo).nargs < 2 {
            Source::Named(None)
        } else {
            Source::Named(Some(varlena_bytes(args[1].value)))
        };
        let header = composite_header(args[0].value);
        let site = call_site(fcinfo, header, &source);
        site.reader.store(header);
        let site: &CallSite = site;
        match f(site, &site.reader.view()) {
            Some(d) => d,
            None => {
                (*fcinfo).isnull = true;
                pg_sys::Datum::from(0)
            }
        }
    }
}

fn index(rs: &Ruleset, seg: Option<usize>) -> usize {
    seg.unwrap_or(rs.segments.len())
}

c_function!(pg_finfo_segment_of, segment_of, |fcinfo| {
    with_row(fcinfo, false, |site, row| {
        Some(site.names[index(&site.ruleset, site.ruleset.segment_of(row))])
    })
});

c_function!(pg_finfo_classify, classify, |fcinfo| {
    with_row(fcinfo, true, |site, row| {
        Some(site.names[index(&site.ruleset, site.ruleset.segment_of(row))])
    })
});

c_function!(pg_finfo_segment_path, segment_path, |fcinfo| {
    with_row(fcinfo, false, |site, row| {
        Some(site.paths[index(&site.ruleset, site.ruleset.segment_of(row))])
    })
});

/// Every matching segment's name, as a text[] datum.
fn match_names(site: &CallSite, row: &RowView) -> Option<pg_sys::Datum> {
    let rs = &site.ruleset;
    let names: Vec<String> = rs
        .matches(row)
        .iter()
        .map(|&i| rs.segments[i].name.clone())
        .collect();
    names.into_datum()
}

c_function!(pg_finfo_segments_of, segments_of, |fcinfo| {
    with_row(fcinfo, false, match_names)
});

// segments_of under a ruleset passed in (as classify is segment_of's): backfill evaluates past snapshots with it.
c_function!(pg_finfo__classify_all, _classify_all, |fcinfo| {
    with_row(fcinfo, true, match_names)
});

c_function!(pg_finfo_explain, explain, |fcinfo| {
    with_row(fcinfo, false, |site, row| {
        JsonB(site.ruleset.explain(row)).into_datum()
    })
});

// segment_path and explain under a ruleset passed in: what a distributed query sends the shards (distributed.rs)
c_function!(pg_finfo__classify_path, _classify_path, |fcinfo| {
    with_row(fcinfo, true, |site, row| {
        Some(site.paths[index(&site.ruleset, site.ruleset.segment_of(row))])
    })
});

c_function!(pg_finfo__explain_with, _explain_with, |fcinfo| {
    with_row(fcinfo, true, |site, row| {
        JsonB(site.ruleset.explain(row)).into_datum()
    })
});

/// The segmentation as a plain SQL CASE expression over its source's columns.
#[pg_extern(stable, parallel_safe)]
fn to_sql(segmentation: default!(Option<&str>, "NULL")) -> String {
    let def = RulesetDef::from_json(&load_ruleset_json(segmentation)).or_raise();
    let columns = TupleColumns::of_relation(
        source_of(&def.segmentation),
        &format!("segmentation \"{}\"", def.segmentation),
    );
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    ruleset_sql(&super::related::compile_ruleset(&def, &columns, now))
}

/// The segmentation as one query over its source: `SELECT key, segment` with each behavioral condition's
/// aggregate computed for all accounts at once and joined (see `rules::sql::to_query`).
#[pg_extern(stable, parallel_safe)]
fn to_query(segmentation: default!(Option<&str>, "NULL")) -> String {
    let def = RulesetDef::from_json(&load_ruleset_json(segmentation)).or_raise();
    assignment_query(&def, source_of(&def.segmentation))
}

/// `to_query` over another relation with the source's columns (refresh reads a view's rows from a copy).
#[pg_extern(stable, parallel_safe, name = "_assignment_sql")]
fn assignment_sql(segmentation: &str, source: pg_sys::Oid) -> String {
    let def = RulesetDef::from_json(&load_ruleset_json(Some(segmentation))).or_raise();
    assignment_query(&def, source)
}

fn assignment_query(def: &RulesetDef, source: pg_sys::Oid) -> String {
    let columns =
        TupleColumns::of_relation(source, &format!("segmentation \"{}\"", def.segmentation));
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let ruleset = super::related::compile_ruleset(def, &columns, now);
    let name = read_first(
        c"SELECT $1::pg_catalog.oid::pg_catalog.regclass::pg_catalog.text",
        &[Some(&source.to_u32().to_string())],
        |d| d.map(|d| unsafe { String::from_utf8_lossy(varlena_bytes(d)).into_owned() }),
    )
    .unwrap_or_default();
    crate::rules::sql::to_query(
        &ruleset,
        &name,
        def.key_column.as_deref().unwrap_or_default(),
    )
}

fn source_of(segmentation: &str) -> pg_sys::Oid {
    read_first(
        c"SELECT source::oid FROM segments.segmentation WHERE name = $1",
        &[Some(segmentation)],
        |d| d.map(|d| pg_sys::Oid::from(d.value() as u32)),
    )
    .unwrap_or_else(|| {
        raise_with(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("segmentation \"{segmentation}\" does not exist"),
            None,
            None,
        )
    })
}

// validate_rule: checks a rule against a relation's columns and raises the first fault (with its JSON path).
// Usable directly to test a rule before saving it; the trigger on segments.segment calls _validate_rule with
// the segmentation's key column and related sources too. Written against the raw arguments: the rule's jsonb
// is read by `jsonb_value`, which reports numbers beyond float8 and over-deep nesting as errors rather than
// failing inside a conversion.
c_function!(
    pg_finfo_validate_rule_wrapper,
    validate_rule_wrapper,
    |fcinfo| {
        let args = (*fcinfo).args.as_slice(3);
        let path = if (*fcinfo).nargs < 3 {
            "rule".to_string()
        } else {
            String::from_utf8_lossy(varlena_bytes(args[2].value)).into_owned()
        };
        let source = pg_sys::Oid::from(args[1].value.value() as u32);
        let rule = jsonb_value(args[0].value, &path).or_raise();
        validate(&rule, source, None, &Default::default(), &path);
        pg_sys::Datum::from(true)
    }
);

// _validate_rule(rule, source, key_column, related, path): validate_rule with the segmentation's key column
// and related sources (as `segments._related_of` gives them), for behavioral conditions.
c_function!(
    pg_finfo_validate_segment_rule_wrapper,
    validate_segment_rule_wrapper,
    |fcinfo| {
        let args = (*fcinfo).args.as_slice(5);
        let path = String::from_utf8_lossy(varlena_bytes(args[4].value)).into_owned();
        let source = pg_sys::Oid::from(args[1].value.value() as u32);
        let rule = jsonb_value(args[0].value, &path).or_raise();
        let key = (!args[2].isnull)
            .then(|| String::from_utf8_lossy(varlena_bytes(args[2].value)).into_owned());
        let related = related_arg(args[3].isnull, args[3].value);
        validate(&rule, source, key.as_deref(), &related, &path);
        pg_sys::Datum::from(true)
    }
);

unsafe fn related_arg(
    isnull: bool,
    d: pg_sys::Datum,
) -> std::collections::BTreeMap<String, crate::rules::related::RelatedDecl> {
    if isnull {
        return Default::default();
    }
    let json = unsafe { jsonb_value(d, "related sources") }.or_raise();
    serde_json::from_value(json).unwrap_or_else(|e| {
        raise_with(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid related sources: {e}"),
            None,
            Some("pass the value of segments._related_of(segmentation)".into()),
        )
    })
}

fn validate(
    rule: &serde_json::Value,
    source: pg_sys::Oid,
    key: Option<&str>,
    related: &std::collections::BTreeMap<String, crate::rules::related::RelatedDecl>,
    path: &str,
) -> crate::rules::compile::Expr {
    use crate::rules::ast::parse;
    use crate::rules::compile::check_time_literals;
    let columns = TupleColumns::of_relation(source, path);
    let parsed = parse(rule, path).or_raise();
    check_time_literals(&parsed, &columns).or_raise();
    super::related::compile_rule(&parsed, &columns, key, related, 0)
}

/// The columns of `source` a rule reads (for the privilege and data coverage checks), in column order.
#[pg_extern(stable, parallel_safe, name = "_rule_columns")]
fn rule_columns(
    rule: JsonB,
    source: pg_sys::Oid,
    key_column: Option<&str>,
    related: Option<JsonB>,
) -> Vec<String> {
    let related = match related {
        Some(r) => serde_json::from_value(r.0).unwrap_or_default(),
        None => Default::default(),
    };
    let expr = validate(&rule.0, source, key_column, &related, "rule");
    let columns = TupleColumns::of_relation(source, "rule");
    let mut cols = vec![];
    expr.columns(&mut cols);
    cols.sort_unstable();
    cols.dedup();
    cols.into_iter()
        .map(|i| columns.name(i).to_string())
        .collect()
}

/// A rule with its references to a renamed segment (or segmentation) renamed: every
/// `{"in_segment": old_segment, "of": segmentation}` gets `new_segment`; with `new_segmentation`, every
/// `"of": segmentation` becomes it. The rest of the rule is kept as it is.
#[pg_extern(immutable, parallel_safe, name = "_renamed_references")]
fn renamed_references(
    rule: JsonB,
    segmentation: &str,
    old_segment: Option<&str>,
    new_segment: Option<&str>,
    new_segmentation: Option<&str>,
) -> JsonB {
    fn walk(
        v: &mut serde_json::Value,
        of: &str,
        old: Option<&str>,
        new: Option<&str>,
        new_of: Option<&str>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                let is_reference = map.contains_key("in_segment")
                    && map.get("of").and_then(|o| o.as_str()) == Some(of);
                if is_reference {
                    if let (Some(old), Some(new)) = (old, new) {
                        if map.get("in_segment").and_then(|s| s.as_str()) == Some(old) {
                            map.insert("in_segment".into(), new.into());
                        }
                    }
                    if let Some(new_of) = new_of {
                        map.insert("of".into(), new_of.into());
                    }
                }
                map.values_mut().for_each(|x| walk(x, of, old, new, new_of));
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|x| walk(x, of, old, new, new_of))
            }
            _ => {}
        }
    }
    let mut rule = rule.0;
    walk(
        &mut rule,
        segmentation,
        old_segment,
        new_segment,
        new_segmentation,
    );
    JsonB(rule)
}
