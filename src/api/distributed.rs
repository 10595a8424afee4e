//! Distributed queries (Citus): the definitions travel inside the query.
//!
//! Citus plans a query on distributed tables from a copy of the parse tree taken before PostgreSQL's planner
//! runs and deparses each shard's query from that copy, so neither the planner support function (inline.rs)
//! nor the definition tables (which live on the coordinator) reach the workers. With pg_segments in
//! `shared_preload_libraries` after citus, this planner hook runs before Citus's: in a statement that reads a
//! Citus table it rewrites every `segment_of`, `segment_path`, `segments_of` and `explain` call with a
//! constant segmentation, and every `classify(row, segments.ruleset(<constant>))`, into the pure evaluator
//! over the ruleset as a constant (classify, _classify_path, _classify_all, _explain_with). Those are
//! IMMUTABLE, so Citus sends them to the shards, where the support function compiles them into the shard's
//! plan. The constant carries no as_of: time windows compare with each execution's own time. The plan
//! depends on the definitions as compiled plans do (the definition tables join its relation dependencies).
//!
//! What a shard cannot evaluate is refused on the coordinator (0A000): rules that read other tables
//! (behavioral conditions, segment references), a segmentation that is not a constant, and (when Citus is
//! told not to gather rows to the coordinator) the aggregates whose state is an `internal` value.

use super::classify::load_ruleset_json;
use super::inline::{constant_name, definition_tables, list_items, node_is};
use super::row::jsonb_value;
use super::security::read_first;
use super::{raise_with, OrRaise};
use crate::rules::ruleset::parse_segments;
use crate::rules::RulesetDef;
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB, PgSqlErrorCode};
use std::cell::Cell;
use std::ffi::{c_void, CStr};

static mut PREVIOUS_PLANNER: pg_sys::planner_hook_type = None;
static mut INSTALLED: bool = false;

thread_local! {
    /// Set while the hook reads definitions or the Citus catalog (its own queries are planned too).
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook when the library is preloaded (`shared_preload_libraries = 'citus,pg_segments'`): a
/// library loaded later in a session would rewrite only that session's later statements.
pub fn install() {
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        PREVIOUS_PLANNER = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(plan);
        INSTALLED = true;
    }
}

/// Refuses a call in a statement over a Citus table when the hook is not there to rewrite it (the library
/// was not preloaded): without it each shard would look for definitions it does not have. Called by the
/// planner support function, which PostgreSQL's planner reaches after Citus has taken its copy.
pub unsafe fn check_preloaded(parse: *mut pg_sys::Query) {
    unsafe {
        if INSTALLED
            || BUSY.get()
            || pg_sys::get_extension_oid(c"citus".as_ptr(), true) == pg_sys::InvalidOid
        {
            return;
        }
        let mut found = Found::default();
        collect(parse.cast(), &mut found as *mut Found as *mut c_void);
        BUSY.set(true);
        let _busy = Busy;
        if reads_citus_table(&found.relations) {
            raise_with(
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                "pg_segments is not preloaded: its calls cannot run on a distributed table".into(),
                Some("the shards hold no definitions; the coordinator's planner hook puts them into the query".into()),
                Some("set shared_preload_libraries = 'citus,pg_segments' (pg_segments after citus) on every node and restart".into()),
            )
        }
    }
}

struct Busy;
impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.set(false);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plan(
    parse: *mut pg_sys::Query,
    query_string: *const std::ffi::c_char,
    cursor_options: std::ffi::c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    unsafe {
        let rewritten = !BUSY.get() && {
            BUSY.set(true);
            let _busy = Busy;
            rewrite(parse, bound_params)
        };
        #[allow(static_mut_refs)]
        let stmt = match PREVIOUS_PLANNER {
            Some(previous) => previous(parse, query_string, cursor_options, bound_params),
            None => pg_sys::standard_planner(parse, query_string, cursor_options, bound_params),
        };
        if rewritten && !stmt.is_null() {
            for oid in definition_tables() {
                (*stmt).relationOids = pg_sys::lappend_oid((*stmt).relationOids, oid);
            }
        }
        stmt
    }
}

/// What one walk of a statement finds: our calls and the relations read.
#[derive(Default)]
struct Found {
    calls: Vec<*mut pg_sys::FuncExpr>,
    aggregates: Vec<pg_sys::Oid>,
    relations: Vec<pg_sys::Oid>,
}

/// The functions rewritten, each with its evaluator over a ruleset passed in.
const EVALUATORS: [(&[u8], &str); 4] = [
    (b"segment_of", "segments.classify(record,jsonb)"),
    (b"segment_path", "segments._classify_path(record,jsonb)"),
    (b"segments_of", "segments._classify_all(record,jsonb)"),
    (b"explain", "segments._explain_with(record,jsonb)"),
];

unsafe fn rewrite(parse: *mut pg_sys::Query, bound_params: pg_sys::ParamListInfo) -> bool {
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"segments".as_ptr(), true);
        if schema == pg_sys::InvalidOid
            || pg_sys::get_extension_oid(c"citus".as_ptr(), true) == pg_sys::InvalidOid
        {
            return false;
        }
        let mut found = Found::default();
        let context = &mut found as *mut Found as *mut c_void;
        collect(parse.cast(), context);
        found.calls.retain(|&call| {
            pg_sys::get_func_namespace((*call).funcid) == schema
                && [&b"classify"[..], b"_classify_all"]
                    .iter()
                    .chain(EVALUATORS.iter().map(|(name, _)| name))
                    .any(|name| function_name(call) == *name)
        });
        found
            .aggregates
            .retain(|&a| pg_sys::get_func_namespace(a) == schema);
        if (found.calls.is_empty() && found.aggregates.is_empty())
            || !reads_citus_table(&found.relations)
        {
            return false;
        }
        check_aggregates(&found.aggregates);
        for &call in &found.calls {
            rewrite_call(call, schema, bound_params);
        }
        !found.calls.is_empty()
    }
}

unsafe fn function_name<'a>(call: *mut pg_sys::FuncExpr) -> &'a [u8] {
    unsafe { CStr::from_ptr(pg_sys::get_func_name((*call).funcid)).to_bytes() }
}

/// Walks a statement (its subqueries, CTEs and sublinks too), collecting function calls and relations.
unsafe extern "C-unwind" fn collect(node: *mut pg_sys::Node, context: *mut c_void) -> bool {
    unsafe {
        if node.is_null() {
            return false;
        }
        let found = &mut *(context as *mut Found);
        if node_is(node, pg_sys::NodeTag::T_Query) {
            return pg_sys::query_tree_walker(
                node.cast(),
                Some(collect),
                context,
                pg_sys::QTW_EXAMINE_RTES_BEFORE as i32,
            );
        }
        if node_is(node, pg_sys::NodeTag::T_RangeTblEntry) {
            let rte = &*(node as *const pg_sys::RangeTblEntry);
            if rte.rtekind == pg_sys::RTEKind::RTE_RELATION {
                found.relations.push(rte.relid);
            }
            return false;
        }
        if node_is(node, pg_sys::NodeTag::T_FuncExpr) {
            found.calls.push(node.cast());
        }
        if node_is(node, pg_sys::NodeTag::T_Aggref) {
            found
                .aggregates
                .push((*(node as *const pg_sys::Aggref)).aggfnoid);
        }
        pg_sys::expression_tree_walker(node, Some(collect), context)
    }
}

/// With `citus.coordinator_aggregation_strategy = 'disabled'`, Citus refuses an aggregate it cannot run on the
/// workers with an internal error; say which of ours and why instead: those whose state is an `internal` value
/// Citus cannot ship (separation's moments by segment, rfm's orders).
fn check_aggregates(aggregates: &[pg_sys::Oid]) {
    let strategy = unsafe {
        pg_sys::GetConfigOption(
            c"citus.coordinator_aggregation_strategy".as_ptr(),
            true,
            false,
        )
    };
    if aggregates.is_empty()
        || strategy.is_null()
        || unsafe { CStr::from_ptr(strategy) }.to_bytes() != b"disabled"
    {
        return;
    }
    for &aggregate in aggregates {
        let internal = read_first(
            c"SELECT a.aggtranstype = 'pg_catalog.internal'::pg_catalog.regtype FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = $1::pg_catalog.oid",
            &[Some(&aggregate.to_u32().to_string())],
            |d| d.is_some_and(|d| d.value() != 0),
        );
        if internal {
            let name =
                unsafe { CStr::from_ptr(pg_sys::get_func_name(aggregate)) }.to_string_lossy();
            raise_with(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("segments.{name}() cannot be aggregated on the workers"),
                Some("its state is an internal value (per-segment moments, or orders), which Citus does not ship between nodes".into()),
                Some("with citus.coordinator_aggregation_strategy at its default, Citus gathers the rows and aggregates them on the coordinator".into()),
            )
        }
    }
}

/// Whether any of the relations is a Citus table (distributed or reference).
fn reads_citus_table(relations: &[pg_sys::Oid]) -> bool {
    if relations.is_empty() {
        return false;
    }
    let list = relations
        .iter()
        .map(|oid| oid.to_u32().to_string())
        .collect::<Vec<_>>()
        .join(",");
    read_first(
        c"SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid::oid = ANY ($1::oid[]))",
        &[Some(&format!("{{{list}}}"))],
        |d| d.is_some_and(|d| d.value() != 0),
    )
}

/// Replaces one call by its evaluator over the named segmentation's ruleset, in place.
unsafe fn rewrite_call(
    call: *mut pg_sys::FuncExpr,
    schema: pg_sys::Oid,
    bound_params: pg_sys::ParamListInfo,
) {
    unsafe {
        let args = list_items::<pg_sys::Node>((*call).args);
        let function = String::from_utf8_lossy(function_name(call)).into_owned();
        if args.len() != 2 {
            return;
        }
        let evaluator = EVALUATORS
            .iter()
            .find(|(name, _)| *name == function.as_bytes())
            .map(|(_, evaluator)| *evaluator);
        let name = match evaluator {
            Some(_) => constant_name(args[1]),
            None => match ruleset_call(args[1], schema) {
                Some(inner) => constant_name(inner),
                // a ruleset passed in (preview's edited rules) goes as it is, if a shard can run it
                None => {
                    if let Some(value) = known_value(args[1], bound_params) {
                        let json = jsonb_value(value, "ruleset").or_raise();
                        refuse_table_reads(&RulesetDef::from_json(&json).or_raise());
                    }
                    return;
                }
            },
        };
        let Some(name) = name else {
            raise_with(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("{function}() on a distributed table needs a constant segmentation name"),
                Some("the shards hold no definitions: the coordinator puts the ruleset into the query it sends them".into()),
                Some(format!("write the name in the query, e.g. segments.{function}(a, 'tier')")),
            )
        };
        let mut json = load_ruleset_json(name.as_deref());
        refuse_table_reads(&RulesetDef::from_json(&json).or_raise());
        if let Some(obj) = json.as_object_mut() {
            obj.remove("as_of");
        }
        if let Some(evaluator) = evaluator {
            (*call).funcid = regprocedure(evaluator);
        }
        let value = JsonB(json).into_datum().unwrap_or(pg_sys::Datum::from(0));
        let ruleset = pg_sys::makeConst(
            pg_sys::JSONBOID,
            -1,
            pg_sys::InvalidOid,
            -1,
            value,
            false,
            false,
        );
        (*(*(*call).args).elements.add(1)).ptr_value = ruleset.cast();
    }
}

/// Rules that read other tables cannot run on a shard (it would query distributed tables from inside a shard
/// query, and it has no definitions of referenced segmentations): refused here, before any shard sees them.
fn refuse_table_reads(def: &RulesetDef) {
    if parse_segments(def)
        .or_raise()
        .iter()
        .any(|(_, rule, _)| rule.reads_tables())
    {
        raise_with(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "segmentation \"{}\" reads other tables, which the shards of a distributed table cannot",
                def.segmentation
            ),
            Some("its rules have behavioral conditions (related tables) or segment references".into()),
            Some(format!(
                "segments.to_query('{}') gives one set-based query that assigns every account; refresh() uses it",
                def.segmentation.replace('\'', "''")
            )),
        )
    }
}

/// The jsonb value of a non-NULL constant, or of a parameter with a value given (EXECUTE ... USING).
unsafe fn known_value(
    node: *mut pg_sys::Node,
    bound_params: pg_sys::ParamListInfo,
) -> Option<pg_sys::Datum> {
    unsafe {
        if node_is(node, pg_sys::NodeTag::T_Const) {
            let c = &*(node as *const pg_sys::Const);
            return (!c.constisnull && c.consttype == pg_sys::JSONBOID).then_some(c.constvalue);
        }
        if !node_is(node, pg_sys::NodeTag::T_Param) || bound_params.is_null() {
            return None;
        }
        let param = &*(node as *const pg_sys::Param);
        let params = &*bound_params;
        if param.paramkind != pg_sys::ParamKind::PARAM_EXTERN
            || params.paramFetch.is_some()
            || param.paramid < 1
            || param.paramid > params.numParams
        {
            return None;
        }
        let value = &*params.params.as_ptr().add(param.paramid as usize - 1);
        (!value.isnull && value.ptype == pg_sys::JSONBOID).then_some(value.value)
    }
}

/// The argument of `segments.ruleset(arg)`, if the node is that call.
unsafe fn ruleset_call(node: *mut pg_sys::Node, schema: pg_sys::Oid) -> Option<*mut pg_sys::Node> {
    unsafe {
        if !node_is(node, pg_sys::NodeTag::T_FuncExpr) {
            return None;
        }
        let f = node as *mut pg_sys::FuncExpr;
        let inner = list_items::<pg_sys::Node>((*f).args);
        (pg_sys::get_func_namespace((*f).funcid) == schema
            && function_name(f) == b"ruleset"
            && inner.len() == 1)
            .then(|| inner[0])
    }
}

fn regprocedure(signature: &str) -> pg_sys::Oid {
    read_first(
        c"SELECT pg_catalog.to_regprocedure($1)",
        &[Some(signature)],
        |d| d.map(|d| pg_sys::Oid::from(d.value() as u32)),
    )
    .unwrap_or_else(|| {
        raise_with(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!("function {signature} does not exist"),
            None,
            Some("update the extension: ALTER EXTENSION pg_segments UPDATE".into()),
        )
    })
}
