//! Plan-time compilation: the planner support function of segment_of, segment_path, segments_of and classify.
//!
//! When the segmentation is a constant and the row is a table's own row, `segment_of(t, 'tier')` is replaced
//! in the plan by the segmentation's CASE expression over t's columns (what `to_sql` prints; for
//! segments_of, an array of the matching segments' names), so no whole-row value is built and no
//! definition is read per row. The plan then depends on the definitions: the
//! definition tables are added to its relation dependencies, and their triggers' relcache invalidations
//! (`_definitions_changed`) make every cached plan (prepared statements, PL/pgSQL, plan caches of SQL
//! functions) replan after a change; a materialized view replans on REFRESH.
//!
//! Anything else keeps the per-row path, which reads the definitions at execution: a segmentation that is
//! not a constant, a row that is not a plain relation's own (a ROW(...), a subquery's, one on the nullable
//! side of an outer join, where the whole row is NULL), rules that read related tables (subqueries the
//! planner has already been past), a constant classify ruleset with its own as_of and time windows, and a
//! ruleset that does not compile (its error is raised at execution, as before). Time windows anchored at
//! the current time are compiled as bounds computed from `now()`, so each execution of a cached plan
//! compares with its own transaction's time, as the per-row call does.

use super::c_function;
use super::classify::{invalidations, listen_for_definition_changes, load_ruleset_json};
use super::row::{jsonb_value, varlena_bytes, TupleColumns};
use super::security::{read_first, with_safe_search_path};
use crate::rules::sql::{to_sql_labelled, to_sql_matches, Label};
use crate::rules::RulesetDef;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_int, CStr, CString};

unsafe extern "C-unwind" {
    // rewriteManip.h (not in pgrx's bindings): renumbers the Vars of range table entry `rt_index`
    fn ChangeVarNodes(
        node: *mut pg_sys::Node,
        rt_index: c_int,
        new_index: c_int,
        sublevels_up: c_int,
    );
}

/// The definition tables a compiled plan depends on.
const DEFINITION_TABLES: [&CStr; 3] = [c"segmentation", c"segment", c"related_source"];

c_function!(
    pg_finfo__segment_of_support,
    _segment_of_support,
    |fcinfo| {
        let request = (*fcinfo).args.as_slice(1)[0]
            .value
            .cast_mut_ptr::<pg_sys::Node>();
        if (*request).type_ != pg_sys::NodeTag::T_SupportRequestSimplify {
            return pg_sys::Datum::from(0);
        }
        let request = &*(request as *const pg_sys::SupportRequestSimplify);
        match compiled_call(request.root, request.fcall) {
            Some(expr) => pg_sys::Datum::from(expr),
            None => pg_sys::Datum::from(0),
        }
    }
);

pub(crate) unsafe fn list_items<T>(list: *mut pg_sys::List) -> Vec<*mut T> {
    unsafe {
        if list.is_null() {
            return vec![];
        }
        (0..(*list).length as usize)
            .map(|i| (*(*list).elements.add(i)).ptr_value.cast())
            .collect()
    }
}

pub(crate) unsafe fn node_is(node: *mut pg_sys::Node, tag: pg_sys::NodeTag) -> bool {
    unsafe { !node.is_null() && (*node).type_ == tag }
}

/// What the call answers: a segment's name or path (a CASE), or every match (an array).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Answer {
    Label(Label),
    Matches,
}

/// The definitions a call classifies with: a constant segmentation name (NULL: the only one), or a
/// constant ruleset.
enum Definitions {
    Named(Option<String>),
    Given(RulesetDef),
}

/// The compiled call of each (answer, segmentation, relation), analysed (None: keep the call), so that
/// planning a statement again skips reading, compiling and parsing the definitions. Valid while no relcache
/// invalidation arrives: one comes with every change to a definition and to a relation's columns. The trees
/// live in a memory context of their own, emptied when they go stale; planning uses copies.
struct Compiled {
    seen: u64,
    context: pg_sys::MemoryContext,
    exprs: HashMap<(Answer, Option<String>, u32), Option<*mut pg_sys::Node>>,
}

thread_local! {
    static COMPILED: RefCell<Compiled> = RefCell::new(Compiled {
        seen: 0,
        context: std::ptr::null_mut(),
        exprs: HashMap::new(),
    });
}

/// The replacement of one call, or None to keep it.
unsafe fn compiled_call(
    root: *mut pg_sys::PlannerInfo,
    call: *mut pg_sys::FuncExpr,
) -> Option<*mut pg_sys::Node> {
    unsafe {
        if root.is_null() || (*root).glob.is_null() {
            return None;
        }
        super::distributed::check_preloaded((*root).parse);
        let args = list_items::<pg_sys::Node>((*call).args);
        if args.len() != 2 {
            return None;
        }
        let function = CStr::from_ptr(pg_sys::get_func_name((*call).funcid));
        let schema = pg_sys::get_func_namespace((*call).funcid);
        let (answer, definitions) = match function.to_bytes() {
            b"segment_of" => (
                Answer::Label(Label::Name),
                Definitions::Named(constant_name(args[1])?),
            ),
            b"segment_path" => (
                Answer::Label(Label::Path),
                Definitions::Named(constant_name(args[1])?),
            ),
            b"segments_of" => (Answer::Matches, Definitions::Named(constant_name(args[1])?)),
            b"classify" => (
                Answer::Label(Label::Name),
                ruleset_argument(args[1], schema)?,
            ),
            b"_classify_path" => (
                Answer::Label(Label::Path),
                ruleset_argument(args[1], schema)?,
            ),
            b"_classify_all" => (Answer::Matches, ruleset_argument(args[1], schema)?),
            _ => return None,
        };
        let (relid, varno) = own_row_of(root, args[0])?;
        let type_oid = match answer {
            Answer::Label(_) => pg_sys::TEXTOID,
            Answer::Matches => pg_sys::TEXTARRAYOID,
        };
        let analysed = |def: &RulesetDef| {
            parse_expression(&compiled_sql(answer, def, relid)?, relid, type_oid)
        };
        let expr = match definitions {
            Definitions::Named(name) => {
                let key = (answer, name, relid.to_u32());
                cached(key, |(_, name, _)| analysed(&read_named(name.as_deref())?))?
            }
            Definitions::Given(def) => analysed(&def)?,
        };
        ChangeVarNodes(expr, 1, varno, 0);
        let expr = pg_sys::eval_const_expressions(root, expr);

        let glob = (*root).glob;
        for oid in definition_tables() {
            (*glob).relationOids = pg_sys::lappend_oid((*glob).relationOids, oid);
        }
        Some(expr)
    }
}

/// The definition tables a compiled plan depends on (a change to any of them replans it).
pub(crate) fn definition_tables() -> Vec<pg_sys::Oid> {
    unsafe {
        let schema = pg_sys::get_namespace_oid(c"segments".as_ptr(), true);
        DEFINITION_TABLES
            .iter()
            .map(|table| pg_sys::get_relname_relid(table.as_ptr(), schema))
            .filter(|&oid| oid != pg_sys::InvalidOid)
            .collect()
    }
}

/// The SQL of a ruleset over a relation's rows, if it can replace the call.
unsafe fn compiled_sql(answer: Answer, def: &RulesetDef, relid: pg_sys::Oid) -> Option<String> {
    unsafe {
        let columns = TupleColumns::of_relation(relid, "the classified rows");
        let now = pg_sys::GetCurrentTransactionStartTimestamp();
        let ruleset = super::related::try_compile_ruleset(def, &columns, now).ok()?;
        // time windows become bounds computed from now() at execution; a window anchored at a ruleset's
        // own as_of (a constant classify ruleset) is not written that way: keep the call
        if ruleset.reads_related() || (def.as_of.is_some() && ruleset.reads_clock()) {
            return None;
        }
        Some(match answer {
            Answer::Label(label) => to_sql_labelled(&ruleset, label),
            Answer::Matches => to_sql_matches(&ruleset),
        })
    }
}

/// `compute(key)` (an expression in the current memory context), kept for later planning unless computed
/// under a transaction snapshot (REPEATABLE READ, SERIALIZABLE: the definitions of its snapshot) or while an
/// invalidation arrived (see `classify::load_ruleset_json`, which keeps definitions by the same rules).
fn cached<K>(key: (Answer, Option<String>, u32), compute: K) -> Option<*mut pg_sys::Node>
where
    K: FnOnce(&(Answer, Option<String>, u32)) -> Option<*mut pg_sys::Node>,
{
    listen_for_definition_changes();
    let snapshot = unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32;
    let seen = invalidations();
    let copy =
        |e: *mut pg_sys::Node| unsafe { pg_sys::copyObjectImpl(e.cast()).cast::<pg_sys::Node>() };
    if !snapshot {
        let hit = COMPILED.with(|c| {
            let c = c.borrow();
            (c.seen == seen)
                .then(|| c.exprs.get(&key).copied())
                .flatten()
        });
        if let Some(expr) = hit {
            return expr.map(copy);
        }
    }
    let expr = compute(&key);
    if !snapshot && invalidations() == seen {
        COMPILED.with(|c| unsafe {
            let mut c = c.borrow_mut();
            if c.context.is_null() {
                c.context = pg_sys::AllocSetContextCreateInternal(
                    pg_sys::TopMemoryContext,
                    c"pg_segments compiled calls".as_ptr(),
                    0,
                    8 * 1024,
                    8 * 1024 * 1024,
                );
            }
            if c.seen != seen {
                pg_sys::MemoryContextReset(c.context);
                c.exprs.clear();
                c.seen = seen;
            }
            let kept = expr.map(|e| {
                let previous = pg_sys::MemoryContextSwitchTo(c.context);
                let kept = copy(e);
                pg_sys::MemoryContextSwitchTo(previous);
                kept
            });
            c.exprs.insert(key, kept);
        });
    }
    expr
}

/// The segmentation a constant names (NULL: the only one).
pub(crate) unsafe fn constant_name(arg: *mut pg_sys::Node) -> Option<Option<String>> {
    unsafe {
        if !node_is(arg, pg_sys::NodeTag::T_Const) {
            return None;
        }
        let c = &*(arg as *const pg_sys::Const);
        Some(
            (!c.constisnull)
                .then(|| String::from_utf8_lossy(varlena_bytes(c.constvalue)).into_owned()),
        )
    }
}

/// The definitions of a named segmentation (NULL: the only one), if it exists.
fn read_named(name: Option<&str>) -> Option<RulesetDef> {
    // an unknown name is reported by the per-row path, at execution (never while planning)
    let exists = read_first(
        c"SELECT count(*) = 1 FROM segments.segmentation WHERE $1 IS NULL OR name = $1",
        &[name],
        |d| d.is_some_and(|d| d.value() != 0),
    );
    if !exists {
        return None;
    }
    RulesetDef::from_json(&load_ruleset_json(name)).ok()
}

/// classify's ruleset: a constant jsonb, or `segments.ruleset(<constant>)`.
unsafe fn ruleset_argument(arg: *mut pg_sys::Node, schema: pg_sys::Oid) -> Option<Definitions> {
    unsafe {
        if node_is(arg, pg_sys::NodeTag::T_Const) {
            let c = &*(arg as *const pg_sys::Const);
            if c.constisnull || c.consttype != pg_sys::JSONBOID {
                return None;
            }
            let def = RulesetDef::from_json(&jsonb_value(c.constvalue, "ruleset").ok()?).ok()?;
            return Some(Definitions::Given(def));
        }
        if !node_is(arg, pg_sys::NodeTag::T_FuncExpr) {
            return None;
        }
        let f = &*(arg as *const pg_sys::FuncExpr);
        let is_ruleset = pg_sys::get_func_namespace(f.funcid) == schema
            && CStr::from_ptr(pg_sys::get_func_name(f.funcid)).to_bytes() == b"ruleset";
        let inner = list_items::<pg_sys::Node>(f.args);
        if !is_ruleset || inner.len() != 1 {
            return None;
        }
        // ruleset() stamps each execution's time as as_of, which bounds computed from now() are
        Some(Definitions::Named(constant_name(inner[0])?))
    }
}

/// The relation and range table index of a whole-row Var of this query level over a plain relation whose
/// rows are never NULL-extended.
unsafe fn own_row_of(
    root: *mut pg_sys::PlannerInfo,
    arg: *mut pg_sys::Node,
) -> Option<(pg_sys::Oid, c_int)> {
    unsafe {
        if !node_is(arg, pg_sys::NodeTag::T_Var) {
            return None;
        }
        let var = &*(arg as *const pg_sys::Var);
        if var.varattno != 0 || var.varlevelsup != 0 {
            return None;
        }
        let parse = (*root).parse;
        let rtable = list_items::<pg_sys::RangeTblEntry>((*parse).rtable);
        let rte = *rtable.get((var.varno as usize).checked_sub(1)?)?;
        if (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION
            || nullable((*parse).jointree.cast(), var.varno, false)
        {
            return None;
        }
        Some(((*rte).relid, var.varno))
    }
}

/// Whether range table entry `varno` is on the nullable side of an outer join in this join tree (any join
/// but an inner one counts as nullable on the sides it may NULL-extend, or both when in doubt).
unsafe fn nullable(node: *mut pg_sys::Node, varno: c_int, under_outer: bool) -> bool {
    unsafe {
        if node_is(node, pg_sys::NodeTag::T_RangeTblRef) {
            return under_outer && (*(node as *const pg_sys::RangeTblRef)).rtindex == varno;
        }
        if node_is(node, pg_sys::NodeTag::T_FromExpr) {
            let from = &*(node as *const pg_sys::FromExpr);
            return list_items::<pg_sys::Node>(from.fromlist)
                .into_iter()
                .any(|n| nullable(n, varno, under_outer));
        }
        if node_is(node, pg_sys::NodeTag::T_JoinExpr) {
            let join = &*(node as *const pg_sys::JoinExpr);
            let (left, right) = match join.jointype {
                pg_sys::JoinType::JOIN_INNER => (false, false),
                pg_sys::JoinType::JOIN_LEFT => (false, true),
                pg_sys::JoinType::JOIN_RIGHT => (true, false),
                _ => (true, true),
            };
            return nullable(join.larg, varno, under_outer || left)
                || nullable(join.rarg, varno, under_outer || right);
        }
        // a join tree holds nothing else; an unknown node is treated as nullable
        !node.is_null()
    }
}

/// The expression `sql` analysed over the relation's columns (its Vars at range table index 1), if it has
/// the type of the call it replaces. The relation is added by OID, not looked up by name: a view's owner may
/// read a table in a schema the querying user cannot name.
unsafe fn parse_expression(
    sql: &str,
    relid: pg_sys::Oid,
    type_oid: pg_sys::Oid,
) -> Option<*mut pg_sys::Node> {
    unsafe {
        // cast as the call's type: a segmentation without segments is just its default's literal
        let cast = if type_oid == pg_sys::TEXTARRAYOID {
            "pg_catalog.text[]"
        } else {
            "pg_catalog.text"
        };
        let query = CString::new(format!("SELECT ({sql})::{cast}")).ok()?;
        let expr = with_safe_search_path(|| {
            let statements = list_items::<pg_sys::RawStmt>(pg_sys::raw_parser(
                query.as_ptr(),
                pg_sys::RawParseMode::RAW_PARSE_DEFAULT,
            ));
            let select = (*statements[0]).stmt as *mut pg_sys::SelectStmt;
            let target = list_items::<pg_sys::ResTarget>((*select).targetList)[0];
            let pstate = pg_sys::make_parsestate(std::ptr::null_mut());
            (*pstate).p_sourcetext = query.as_ptr();
            let lock = pg_sys::AccessShareLock as i32;
            let rel = pg_sys::table_open(relid, lock);
            let item = pg_sys::addRangeTableEntryForRelation(
                pstate,
                rel,
                lock,
                std::ptr::null_mut(),
                false,
                true,
            );
            pg_sys::addNSItemToQuery(pstate, item, false, true, true);
            let expr = pg_sys::transformExpr(
                pstate,
                (*target).val,
                pg_sys::ParseExprKind::EXPR_KIND_SELECT_TARGET,
            );
            pg_sys::assign_expr_collations(pstate, expr);
            pg_sys::table_close(rel, pg_sys::NoLock as i32);
            pg_sys::free_parsestate(pstate);
            expr
        });
        (pg_sys::exprType(expr) == type_oid).then_some(expr)
    }
}
