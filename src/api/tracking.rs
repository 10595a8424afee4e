//! Live mode: `segments._track(segmentation)`, the statement trigger `segments.track()` puts on a source
//! table (AFTER INSERT / UPDATE / DELETE with transition tables, and AFTER TRUNCATE).
//!
//! A statement touching at most `ROW_BY_ROW_LIMIT` accounts of an exclusive segmentation is handled here:
//! each touched row is classified in Rust with rules compiled once per backend; each touched account costs
//! one index lookup of its open membership and, only if its segment changed, an update and an insert
//! (prepared statements, planned once per backend). Bigger statements and overlapping segmentations run
//! the set-based statement that refresh uses, restricted to the touched keys (after TRUNCATE: all of them).

use super::classify::load_ruleset_json;
use super::row::attributes;
use super::row::RowReader;
use super::security::with_safe_search_path;
use super::{raise_with, text_datum, OrRaise};
use crate::rules::compile::Columns;
use crate::rules::{Ruleset, RulesetDef};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};

const ROW_BY_ROW_LIMIT: i64 = 100;

/// What a tracked statement needs to know of its segmentation, built once per backend.
struct Tracked {
    /// the invalidation generation it was built in
    generation: u64,
    relid: pg_sys::Oid,
    /// the transaction start the rules were compiled against (matters only if they read the clock)
    compiled_at: pg_sys::TimestampTz,
    exclusive: bool,
    notify: bool,
    lock_key: i64,
    key_column: usize,
    key_type: pg_sys::Oid,
    key_output: pg_sys::Oid,
    /// `SELECT 1 FROM source WHERE key = $1`: whether an old key is still in the source
    still_there: CString,
    reader: RowReader,
    ruleset: Ruleset,
}

thread_local! {
    /// By segmentation name. An entry is taken out while a statement uses it (its SPI queries may process
    /// invalidations, which must not find the map borrowed) and put back afterwards.
    static TRACKED: RefCell<HashMap<String, Tracked>> = RefCell::new(HashMap::new());
    /// Bumped on every relcache invalidation (definition changes, ALTER TABLE of a source; see
    /// `classify::forget_rulesets`): entries built in an earlier generation are rebuilt.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static PLANS: RefCell<HashMap<&'static CStr, pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
}

pub fn forget() {
    GENERATION.with(|g| g.set(g.get() + 1));
}

/// The statements of the row-by-row path, prepared once per backend (the segmentation is a parameter).
const LOOKUP_SQL: &CStr = c"SELECT ctid, segment FROM segments.membership
    WHERE segmentation = $1 AND account_key = $2 AND upper_inf(valid) AND exclusive";
const CLOSE_SQL: &CStr =
    c"UPDATE segments.membership SET valid = tstzrange(lower(valid), $2) WHERE ctid = $1";
const OPEN_SQL: &CStr =
    c"INSERT INTO segments.membership (segmentation, account_key, segment, valid, exclusive)
    VALUES ($1, $2, $3, tstzrange($4, NULL), true)";
// no account data: any role may LISTEN; segments.changes() tells a listener who may read them who moved
// (identical notifications of one transaction are delivered once)
const NOTIFY_SQL: &CStr = c"SELECT pg_notify('segments_membership',
    json_build_object('segmentation', $1, 'at', $2)::text)";

fn internal(what: &str) -> ! {
    raise_with(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("segments tracking trigger: {what}"),
        None,
        None,
    )
}

unsafe fn build(name: &str, relation: pg_sys::Relation) -> Tracked {
    unsafe {
        let generation = GENERATION.get();
        let definition = Spi::connect(|c| {
            let row = c
                .select(
                    // _definition raises 42704 for an unknown segmentation
                    "SELECT g.mode = 'exclusive', g.notify, g.key_column, segments._lock_key(g.name)
                     FROM segments._definition($1) g",
                    Some(1),
                    &[name.into()],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>((
                row.get::<bool>(1)?,
                row.get::<bool>(2)?,
                row.get::<String>(3)?,
                row.get::<i64>(4)?,
            ))
        });
        let (exclusive, notify, key_name, lock_key) =
            definition.unwrap_or_else(|e| internal(&e.to_string()));
        let desc = (*relation).rd_att;
        let relid = (*relation).rd_id;
        let relname = CStr::from_ptr(pg_sys::quote_qualified_identifier(
            pg_sys::get_namespace_name((*(*relation).rd_rel).relnamespace),
            (*(*relation).rd_rel).relname.data.as_ptr(),
        ))
        .to_string_lossy()
        .into_owned();
        let reader = RowReader::from_desc(desc, (*(*relation).rd_rel).reltype, -1, relname.clone());
        let key_name = key_name.unwrap_or_default();
        let Some((key_column, _)) = reader.columns.lookup(&key_name) else {
            raise_with(
                PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
                format!("column \"{key_name}\" does not exist in {relname}"),
                None,
                Some(
                    "set segments.segmentation.key_column to the account key of the source".into(),
                ),
            )
        };
        let key_type = attributes(desc)[key_column].atttypid;
        let mut key_output = pg_sys::InvalidOid;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(key_type, &mut key_output, &mut varlena);
        let key_ident = CStr::from_ptr(pg_sys::quote_identifier(
            CString::new(key_name).unwrap_or_default().as_ptr(),
        ))
        .to_string_lossy()
        .into_owned();
        let still_there = CString::new(format!(
            "SELECT 1 FROM {relname} WHERE {key_ident} = $1 LIMIT 1"
        ))
        .unwrap_or_default();
        let def = RulesetDef::from_json(&load_ruleset_json(Some(name))).or_raise();
        let compiled_at = pg_sys::GetCurrentTransactionStartTimestamp();
        let ruleset = super::related::compile_ruleset(&def, &reader.columns, compiled_at);
        Tracked {
            generation,
            relid,
            compiled_at,
            exclusive: exclusive.unwrap_or(true),
            notify: notify.unwrap_or(false),
            lock_key: lock_key.unwrap_or(0),
            key_column,
            key_type,
            key_output,
            still_there,
            reader,
            ruleset,
        }
    }
}

/// Reads every tuple of a transition table through its own read pointer (as a tuplestore scan does).
unsafe fn each_tuple(
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    mut f: impl FnMut(pg_sys::HeapTupleHeader),
) {
    if store.is_null() {
        return;
    }
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &pg_sys::TTSOpsMinimalTuple);
        let pointer = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, pointer);
        pg_sys::tuplestore_rescan(store);
        while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
            let mut should_free = false;
            let tuple = pg_sys::ExecFetchSlotHeapTuple(slot, false, &mut should_free);
            f((*tuple).t_data);
            if should_free {
                pg_sys::heap_freetuple(tuple);
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

fn count(store: *mut pg_sys::Tuplestorestate) -> i64 {
    if store.is_null() {
        0
    } else {
        unsafe { pg_sys::tuplestore_tuple_count(store) }
    }
}

/// The touched accounts of a small statement with their segment now (None: gone from the source).
unsafe fn touched_accounts(
    name: &str,
    t: &mut Tracked,
    data: *mut pg_sys::TriggerData,
) -> Vec<(String, Option<String>)> {
    unsafe {
        let desc = (*(*data).tg_relation).rd_att;
        let mut touched = vec![];
        let mut seen = HashSet::new();
        each_tuple((*data).tg_newtable, desc, |header| {
            t.reader.store(header);
            let Some(key) = t.reader.datum(t.key_column) else {
                raise_with(
                    PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
                    format!("an account of segmentation \"{name}\" has a NULL key"),
                    None,
                    Some("every account needs a key: make the key column NOT NULL".into()),
                )
            };
            let key = key_text(t, key);
            let segment = t
                .ruleset
                .name_of(t.ruleset.segment_of(&t.reader.view()))
                .to_string();
            seen.insert(key.clone());
            touched.push((key, Some(segment)));
        });
        let mut old_keys = vec![];
        each_tuple((*data).tg_oldtable, desc, |header| {
            t.reader.store(header);
            if let Some(key) = t.reader.datum(t.key_column) {
                let text = key_text(t, key);
                if !seen.contains(&text) {
                    // the key datum points into the tuple: check it before the tuple goes
                    old_keys.push((text, still_in_source(t, key)));
                }
            }
        });
        touched.extend(
            old_keys
                .into_iter()
                .filter(|(_, there)| !there)
                .map(|(k, _)| (k, None)),
        );
        touched
    }
}

unsafe fn key_text(t: &Tracked, key: pg_sys::Datum) -> String {
    unsafe {
        CStr::from_ptr(pg_sys::OidOutputFunctionCall(t.key_output, key))
            .to_string_lossy()
            .into_owned()
    }
}

unsafe fn still_in_source(t: &Tracked, key: pg_sys::Datum) -> bool {
    unsafe {
        let mut types = [t.key_type];
        let mut values = [key];
        let nulls = [b' ' as std::ffi::c_char];
        let rc = pg_sys::SPI_execute_with_args(
            t.still_there.as_ptr(),
            1,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            false, // a fresh snapshot: the statement's own snapshot still sees the rows it deleted
            1,
        );
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            internal("could not look up a key in the source");
        }
        pg_sys::SPI_processed > 0
    }
}

/// Runs one of the row-by-row statements (NULL parameters: None); returns how many rows it processed.
unsafe fn run(sql: &'static CStr, params: &[(pg_sys::Oid, Option<pg_sys::Datum>)]) -> u64 {
    unsafe {
        let plan = PLANS.with(|plans| {
            *plans.borrow_mut().entry(sql).or_insert_with(|| {
                let mut types: Vec<pg_sys::Oid> = params.iter().map(|p| p.0).collect();
                let plan =
                    pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
                if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                    internal("could not prepare a membership statement");
                }
                plan
            })
        });
        let mut values: Vec<pg_sys::Datum> = params
            .iter()
            .map(|p| p.1.unwrap_or(pg_sys::Datum::from(0)))
            .collect();
        let nulls: Vec<std::ffi::c_char> = params
            .iter()
            .map(|p| (if p.1.is_some() { b' ' } else { b'n' }) as std::ffi::c_char)
            .collect();
        if pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), false, 0) < 0 {
            internal("a membership statement failed");
        }
        pg_sys::SPI_processed
    }
}

/// Brings one account's open membership in line with its segment now: closes the open range and opens
/// the new one at `at` when the segment changed, and notifies if asked to.
unsafe fn move_account(
    name: pg_sys::Datum,
    key: &str,
    segment: Option<&str>,
    at: pg_sys::TimestampTz,
    notify: bool,
) {
    use pg_sys::{TEXTOID, TIDOID, TIMESTAMPTZOID};
    unsafe {
        let key_datum = text_datum(key);
        let (mut row_id, mut old) = (None, None);
        if run(
            LOOKUP_SQL,
            &[(TEXTOID, Some(name)), (TEXTOID, Some(key_datum))],
        ) > 0
        {
            let table = pg_sys::SPI_tuptable;
            let (tuple, desc) = (*(*table).vals, (*table).tupdesc);
            let mut isnull = false;
            let tid = pg_sys::SPI_getbinval(tuple, desc, 1, &mut isnull);
            row_id = Some(*tid.cast_mut_ptr::<pg_sys::ItemPointerData>());
            let text = pg_sys::SPI_getvalue(tuple, desc, 2);
            old = Some(CStr::from_ptr(text).to_string_lossy().into_owned());
        }
        if old.as_deref() == segment {
            return;
        }
        let at = Some(pg_sys::Datum::from(at));
        if let Some(mut tid) = row_id {
            let tid = pg_sys::Datum::from(&mut tid as *mut pg_sys::ItemPointerData);
            run(CLOSE_SQL, &[(TIDOID, Some(tid)), (TIMESTAMPTZOID, at)]);
        }
        let new = segment.map(text_datum);
        if new.is_some() {
            let params = [
                (TEXTOID, Some(name)),
                (TEXTOID, Some(key_datum)),
                (TEXTOID, new),
                (TIMESTAMPTZOID, at),
            ];
            run(OPEN_SQL, &params);
        }
        if notify {
            run(NOTIFY_SQL, &[(TEXTOID, Some(name)), (TIMESTAMPTZOID, at)]);
        }
    }
}

/// The set-based path: the synchronising statement over the touched keys, reading the transition tables.
unsafe fn sync_in_bulk(name: &str, data: *mut pg_sys::TriggerData, at: pg_sys::TimestampTz) {
    unsafe {
        let op = match (*data).tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_INSERT => "insert",
            pg_sys::TRIGGER_EVENT_DELETE => "delete",
            pg_sys::TRIGGER_EVENT_UPDATE => "update",
            _ => "truncate",
        };
        let sql = Spi::get_one_with_args::<String>(
            "SELECT segments._tracking_sql($1, $2)",
            &[name.into(), op.into()],
        )
        .ok()
        .flatten()
        .unwrap_or_else(|| internal("no statement for tracking"));
        let sql = CString::new(sql).unwrap_or_default();
        if pg_sys::SPI_register_trigger_data(data) != pg_sys::SPI_OK_TD_REGISTER as i32 {
            internal("could not read the transition tables");
        }
        let mut types = [pg_sys::TIMESTAMPTZOID];
        let mut values = [pg_sys::Datum::from(at)];
        let nulls = [b' ' as std::ffi::c_char];
        let rc = pg_sys::SPI_execute_with_args(
            sql.as_ptr(),
            1,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            false,
            0,
        );
        if rc < 0 {
            internal("the synchronising statement failed");
        }
    }
}

unsafe fn on_statement(data: *mut pg_sys::TriggerData) {
    unsafe {
        let trigger = (*data).tg_trigger;
        if (*trigger).tgnargs != 1 {
            internal("expects the segmentation name as its argument");
        }
        let name = CStr::from_ptr(*(*trigger).tgargs)
            .to_string_lossy()
            .into_owned();
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            internal("could not connect to SPI");
        }
        let relation = (*data).tg_relation;
        let mut t = TRACKED
            .with(|c| c.borrow_mut().remove(&name))
            .filter(|t| {
                t.generation == GENERATION.get()
                    && t.relid == (*relation).rd_id
                    && !(t.ruleset.reads_clock()
                        && t.compiled_at != pg_sys::GetCurrentTransactionStartTimestamp())
            })
            .unwrap_or_else(|| build(&name, relation));
        // tracked changes may run side by side; a refresh of the segmentation waits for them (and they for it)
        pg_sys::OidFunctionCall1Coll(
            pg_sys::Oid::from(pg_sys::F_PG_ADVISORY_XACT_LOCK_SHARED_INT8),
            pg_sys::InvalidOid,
            pg_sys::Datum::from(t.lock_key),
        );
        // the time of the change is read once the lock is held: a refresh that committed while this statement
        // waited opened memberships at its own time, which this one must not close before
        let at = pg_sys::GetCurrentTimestamp();
        let rows = count((*data).tg_newtable) + count((*data).tg_oldtable);
        let truncated =
            (*data).tg_event & pg_sys::TRIGGER_EVENT_OPMASK == pg_sys::TRIGGER_EVENT_TRUNCATE;
        if !t.exclusive || truncated || rows > ROW_BY_ROW_LIMIT {
            sync_in_bulk(&name, data, at);
        } else {
            let touched = touched_accounts(&name, &mut t, data);
            let name_datum = text_datum(&name);
            for (key, segment) in &touched {
                move_account(name_datum, key, segment.as_deref(), at, t.notify);
            }
        }
        // under a transaction snapshot the definitions read are as of the transaction's start: keep them
        // for this statement only (see load_ruleset_json)
        if pg_sys::XactIsoLevel < pg_sys::XACT_REPEATABLE_READ as i32 {
            TRACKED.with(|c| c.borrow_mut().insert(name, t));
        }
        pg_sys::SPI_finish();
    }
}

super::c_function!(pg_finfo_track_trigger, track_trigger, |fcinfo| {
    {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
            raise_with(
                PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "segments._track() can only be called as a trigger".into(),
                None,
                Some("use segments.track(segmentation) to install it".into()),
            );
        }
        with_safe_search_path(|| on_statement(context.cast()));
        pg_sys::Datum::from(0)
    }
});
