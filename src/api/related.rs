//! Behavioral conditions at the server: the related sources a ruleset declares, resolved to relations, and
//! each condition's query run for one account through a statement prepared once per backend.

use super::row::{RowReader, RowView, TupleColumns};
use super::security::with_safe_search_path;
use super::{raise_with, OrRaise};
use crate::rules::ast::Rule;
use crate::rules::compile::{compile, Cell, ColumnType, Columns, Expr};
use crate::rules::related::{Lookup, RelatedDecl, RelatedSource};
use crate::rules::{Ruleset, RulesetDef};
use pgrx::pg_sys;
use pgrx::PgSqlErrorCode;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::sync::Arc;

/// The columns of the classified rows, with the segmentation's related sources.
pub struct WithRelated<'a> {
    base: &'a TupleColumns,
    sources: Vec<(String, RelatedDecl, TupleColumns)>,
    key: Option<(usize, String)>,
    /// the time referenced segmentations are compiled against
    now: i64,
}

impl<'a> WithRelated<'a> {
    pub fn new(
        base: &'a TupleColumns,
        key_column: Option<&str>,
        related: &BTreeMap<String, RelatedDecl>,
        now: i64,
    ) -> Self {
        let sources = related
            .iter()
            .map(|(name, decl)| {
                let relid = relation_oid(&decl.relation, name);
                let what = format!("related source \"{name}\"");
                (
                    name.clone(),
                    decl.clone(),
                    TupleColumns::of_relation(relid, &what),
                )
            })
            .collect();
        let key = key_column.and_then(|k| base.lookup(k).map(|(i, _)| (i, k.to_string())));
        WithRelated {
            base,
            sources,
            key,
            now,
        }
    }
}

impl Columns for WithRelated<'_> {
    fn lookup(&self, name: &str) -> Option<(usize, ColumnType)> {
        self.base.lookup(name)
    }
    fn names(&self) -> Vec<String> {
        self.base.names()
    }
    fn relation_name(&self) -> String {
        self.base.relation_name()
    }
    fn related(&self, name: &str) -> Option<RelatedSource<'_>> {
        let (_, decl, columns) = self.sources.iter().find(|(n, _, _)| n == name)?;
        Some(RelatedSource {
            decl,
            columns,
            account_key: self.key.clone(),
        })
    }
    fn related_names(&self) -> Vec<String> {
        self.sources.iter().map(|(n, _, _)| n.clone()).collect()
    }
    /// The referenced segmentation's definitions, compiled against these rows (its own related sources
    /// and references resolved the same way).
    fn referenced(&self, segmentation: &str) -> crate::error::Result<Option<Arc<Ruleset>>> {
        let exists = super::security::read_first(
            c"SELECT EXISTS (SELECT 1 FROM segments.segmentation WHERE name = $1)",
            &[Some(segmentation)],
            |d| d.is_some_and(|d| d.value() != 0),
        );
        if !exists {
            return Ok(None);
        }
        // saving refuses cycles; this bounds what a cycle made some other way would cost
        let depth = REFERENCE_DEPTH.get();
        if depth >= 16 {
            return Err(crate::error::SegError::TooComplex {
                message: format!("segment references reach \"{segmentation}\" through more than 16 segmentations"),
                hint: "segment references must not form a cycle".into(),
            });
        }
        REFERENCE_DEPTH.set(depth + 1);
        // read afresh, not from the backend's cache: a rename carried to the referring rules is checked
        // within the statement that made it, before the cache hears of it
        let json = super::security::read_first(
            c"SELECT segments._read_ruleset($1)",
            &[Some(segmentation)],
            |d| d.map(|d| unsafe { super::row::jsonb_value(d, "ruleset") }),
        )
        .unwrap_or(Ok(serde_json::Value::Null));
        let def = json.and_then(|mut j| {
            if let Some(obj) = j.as_object_mut() {
                obj.remove("as_of");
            }
            RulesetDef::from_json(&j)
        });
        let compiled = def.and_then(|def| {
            let columns =
                WithRelated::new(self.base, def.key_column.as_deref(), &def.related, self.now);
            Ruleset::compile(&def, &columns, self.now)
        });
        REFERENCE_DEPTH.set(depth);
        compiled.map(|r| Some(Arc::new(r)))
    }
}

thread_local! {
    static REFERENCE_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The OID of a related source's relation, by its (qualified) name.
fn relation_oid(relation: &str, name: &str) -> pg_sys::Oid {
    let oid = super::security::read_first(
        c"SELECT pg_catalog.to_regclass($1)::pg_catalog.oid",
        &[Some(relation)],
        |d| d.map(|d| pg_sys::Oid::from(d.value() as u32)),
    );
    oid.unwrap_or_else(|| {
        raise_with(
            PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
            format!("the relation {relation} of related source \"{name}\" does not exist"),
            None,
            Some("point segments.related_source.relation at an existing relation".into()),
        )
    })
}

/// A ruleset compiled against rows of `base`, its behavioral conditions against its related sources.
pub fn compile_ruleset(def: &RulesetDef, base: &TupleColumns, now: i64) -> Ruleset {
    try_compile_ruleset(def, base, now).or_raise()
}

pub fn try_compile_ruleset(
    def: &RulesetDef,
    base: &TupleColumns,
    now: i64,
) -> crate::error::Result<Ruleset> {
    let columns = WithRelated::new(base, def.key_column.as_deref(), &def.related, now);
    Ruleset::compile(def, &columns, now)
}

/// One rule compiled as `compile_ruleset` compiles the segments' rules.
pub fn compile_rule(
    rule: &Rule,
    base: &TupleColumns,
    key_column: Option<&str>,
    related: &BTreeMap<String, RelatedDecl>,
    now: i64,
) -> Expr {
    compile(rule, &WithRelated::new(base, key_column, related, now), now).or_raise()
}

thread_local! {
    /// Prepared lookups by (SQL, key type, time type). A plan is taken out while it runs (its query may
    /// classify rows, and come back here) and put back afterwards.
    static PLANS: RefCell<HashMap<(String, u32, u32), pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
}

/// Runs a behavioral condition's query for the current row's account; `f` sees the aggregate.
pub fn run(row: &RowView, lookup: &Lookup, f: &mut dyn FnMut(Cell) -> bool) -> bool {
    let key = row.datum(lookup.key_col);
    let key_type = row.type_of(lookup.key_col);
    let (from, to, time_type) = match &lookup.window {
        Some((from, to, ty)) => (
            *from,
            *to,
            if *ty == ColumnType::TimestampTz {
                pg_sys::TIMESTAMPTZOID
            } else {
                pg_sys::TIMESTAMPOID
            },
        ),
        None => (0, 0, pg_sys::TIMESTAMPTZOID),
    };
    let cache_key = (lookup.sql.clone(), key_type.to_u32(), time_type.to_u32());
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            super::security::internal_error("could not connect to SPI");
        }
        let plan = PLANS
            .with(|p| p.borrow_mut().remove(&cache_key))
            .unwrap_or_else(|| {
                let sql = CString::new(lookup.sql.as_str()).unwrap_or_default();
                let mut types = [key_type, time_type, time_type];
                let plan = with_safe_search_path(|| {
                    pg_sys::SPI_prepare(sql.as_ptr(), 3, types.as_mut_ptr())
                });
                if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                    super::security::internal_error(
                        "could not prepare a behavioral condition's query",
                    );
                }
                plan
            });
        let mut values = [
            key.unwrap_or(pg_sys::Datum::from(0)),
            pg_sys::Datum::from(from),
            pg_sys::Datum::from(to),
        ];
        let nulls = [
            if key.is_some() { b' ' } else { b'n' } as std::ffi::c_char,
            b' ' as std::ffi::c_char,
            b' ' as std::ffi::c_char,
        ];
        let rc = pg_sys::SPI_execute_plan(plan, values.as_mut_ptr(), nulls.as_ptr(), true, 1);
        PLANS.with(|p| p.borrow_mut().insert(cache_key, plan));
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            super::security::internal_error("a behavioral condition's query failed");
        }
        let table = pg_sys::SPI_tuptable;
        let result = if pg_sys::SPI_processed == 0 || table.is_null() {
            f(Cell::Null)
        } else {
            let tuple = *(*table).vals;
            let mut reader =
                RowReader::from_desc((*table).tupdesc, pg_sys::RECORDOID, -1, "related".into());
            reader.store((*tuple).t_data);
            let view = reader.view();
            f(crate::rules::compile::Row::cell(&view, 0))
        };
        pg_sys::SPI_finish();
        result
    }
}
