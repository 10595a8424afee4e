//! Behavioral conditions: an aggregate of a related relation's rows of the account (events, NPS answers,
//! tickets), filtered by its own rule and a time window, compared with a value.
//!
//! ```json
//! {"related": "events", "agg": "count", "where": {"attr": "type", "op": "=", "value": "login"},
//!  "within": "30 days", "op": ">=", "value": 20}
//! ```
//!
//! The related sources are declared once per segmentation (`segments.related_source`: relation, key column,
//! time column) and travel in the ruleset. A condition compiles to one SQL query over the related relation
//! for the account's key: run per row through a prepared statement by `segment_of` (see `api::related`),
//! and written as a correlated scalar subquery by `to_sql`. Both run the same SQL text, so they agree.

use super::ast::{Cond, Rule};
use super::compile::{compile as compile_rule, ColumnType, Columns, Expr, Row, Test};
use super::sql::{catalog_op, expr_sql, quote_ident, test_sql_on, window_bound_sql, Bound, Form};
use super::time::{
    format_timestamp, minus_interval, parse_interval, parse_timestamp, TIMESTAMP_RANGE,
};
use crate::error::{Result, SegError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A related source as the ruleset carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedDecl {
    /// the relation, schema-qualified
    pub relation: String,
    /// its column holding the account key
    pub key: String,
    /// its time column, for windows and last / first
    #[serde(default)]
    pub time: Option<String>,
}

/// A declared related source, resolved against the server: its columns, and where the account's key is in
/// the rows being classified.
pub struct RelatedSource<'a> {
    pub decl: &'a RelatedDecl,
    pub columns: &'a dyn Columns,
    /// position and name of the account key column in the classified rows (None: they have none)
    pub account_key: Option<(usize, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Last,
    First,
}

const AGGS: &str = "count, sum, avg, min, max, last, first";
const EXAMPLE: &str = "e.g. {\"related\": \"events\", \"agg\": \"count\", \"where\": {\"attr\": \"type\", \"op\": \"=\", \"value\": \"login\"}, \"within\": \"30 days\", \"op\": \">=\", \"value\": 20}";

impl Agg {
    fn parse(s: &str) -> Option<Agg> {
        Some(match s {
            "count" => Agg::Count,
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "last" => Agg::Last,
            "first" => Agg::First,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::Sum => "sum",
            Agg::Avg => "avg",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Last => "last",
            Agg::First => "first",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelatedRule {
    pub path: String,
    pub source: String,
    pub agg: Agg,
    pub attr: Option<String>,
    pub filter: Option<Box<Rule>>,
    pub within: Option<String>,
    pub as_of: Option<String>,
    /// only the account's last n rows (by time)
    pub last: Option<u32>,
    /// the comparison of the aggregate, as a condition on it
    pub cond: Cond,
}

impl RelatedRule {
    pub fn reads_clock(&self) -> bool {
        (self.within.is_some() && self.as_of.is_none())
            || self.filter.as_ref().is_some_and(|f| f.reads_clock())
            || (self.cond.op.is_window() && self.cond.as_of.is_none())
    }
}

/// Whether a rule object is a behavioral condition.
pub fn is_related(map: &Map<String, Value>) -> bool {
    map.contains_key("related")
}

pub fn parse(
    map: &Map<String, Value>,
    path: &str,
    parse_rule: &dyn Fn(&Value, &str) -> Result<Rule>,
) -> Result<RelatedRule> {
    const KEYS: &str = "related, agg, attr, where, within, as_of, last, op, value, ignore_case";
    for key in map.keys() {
        if !KEYS.split(", ").any(|k| k == key) {
            return Err(SegError::invalid_rule(
                &format!("{path}.{key}"),
                format!("unknown key \"{key}\""),
                format!("a behavioral condition has the keys {KEYS}; {EXAMPLE}"),
            ));
        }
    }
    let text = |key: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(SegError::invalid_rule(
                &format!("{path}.{key}"),
                format!("\"{key}\" takes a non-empty string"),
                EXAMPLE,
            )),
        }
    };
    let source = text("related")?.ok_or_else(|| {
        SegError::invalid_rule(
            &format!("{path}.related"),
            "\"related\" names a related source of the segmentation",
            EXAMPLE,
        )
    })?;
    let agg = match map.get("agg") {
        Some(Value::String(s)) => Agg::parse(s).ok_or_else(|| {
            SegError::invalid_rule(
                &format!("{path}.agg"),
                format!("unknown aggregate \"{s}\""),
                format!("valid aggregates: {AGGS}"),
            )
        })?,
        _ => {
            return Err(SegError::invalid_rule(
                &format!("{path}.agg"),
                "a behavioral condition needs \"agg\"",
                format!("valid aggregates: {AGGS}"),
            ))
        }
    };
    let attr = text("attr")?;
    if attr.is_none() && agg != Agg::Count {
        return Err(SegError::invalid_rule(
            &format!("{path}.attr"),
            format!(
                "\"{}\" needs \"attr\", a column of the related source",
                agg.name()
            ),
            "count counts rows; the other aggregates read a column",
        ));
    }
    let filter = match map.get("where") {
        None | Some(Value::Null) => None,
        Some(r) => Some(Box::new(parse_rule(r, &format!("{path}.where"))?)),
    };
    let last = match map.get("last") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| {
                    SegError::invalid_rule(
                        &format!("{path}.last"),
                        format!(
                            "\"last\" is a whole number of rows between 1 and 1000000, not {v}"
                        ),
                        "e.g. \"last\": 2 for the account's two latest rows",
                    )
                })? as u32,
        ),
    };
    // the comparison, read as a condition on the aggregate
    let mut cond_map = Map::new();
    cond_map.insert("attr".into(), Value::from(agg.name()));
    for key in ["op", "value", "ignore_case"] {
        if let Some(v) = map.get(key) {
            cond_map.insert(key.into(), v.clone());
        }
    }
    let cond = match super::ast::parse(&Value::Object(cond_map), path)? {
        Rule::Cond(c) if c.other.is_none() && !c.op.is_window() => c,
        _ => {
            return Err(SegError::invalid_rule(
                &format!("{path}.op"),
                "the aggregate compares with a constant",
                EXAMPLE,
            ))
        }
    };
    Ok(RelatedRule {
        path: path.to_string(),
        source,
        agg,
        attr,
        filter,
        within: text("within")?,
        as_of: text("as_of")?,
        last,
        cond,
    })
}

/// The query of a compiled condition; `$1` is the account's key, `$2` / `$3` the window (when there is one).
#[derive(Debug, Clone)]
pub struct Lookup {
    /// position of the account key in the classified rows
    pub key_col: usize,
    pub sql: String,
    /// the window's bounds and the time column's type (the type of $2 and $3)
    pub window: Option<(i64, i64, ColumnType)>,
}

#[derive(Debug, Clone)]
pub struct RelatedTest {
    pub rule: RelatedRule,
    pub lookup: Lookup,
    /// the correlated subquery `to_sql` writes (the outer row's key column in place of $1)
    correlated: String,
    /// the aggregate of every account at once, `(segments_key, segments_value)`, for `to_query`
    grouped: String,
    /// the account key column of the rows, which `to_query` joins the aggregate on
    pub key_name: String,
    test: Test,
}

/// The one-column "relation" the aggregate is compared in.
struct Aggregate(ColumnType);
impl Columns for Aggregate {
    fn lookup(&self, _: &str) -> Option<(usize, ColumnType)> {
        Some((0, self.0.clone()))
    }
    fn names(&self) -> Vec<String> {
        vec![]
    }
    fn relation_name(&self) -> String {
        "the aggregate".into()
    }
}

pub fn compile(rule: &RelatedRule, columns: &dyn Columns, now: i64) -> Result<RelatedTest> {
    let source = columns.related(&rule.source).ok_or_else(|| {
        let names = columns.related_names();
        SegError::UnknownObject {
            path: format!("{}.related", rule.path),
            message: format!("related source \"{}\" is not declared", rule.source),
            hint: if names.is_empty() {
                "declare it in segments.related_source (segmentation, name, relation, key_column, time_column)".into()
            } else {
                format!("declared related sources: {}", names.join(", "))
            },
        }
    })?;
    let rel = source.columns;
    let column = |name: &str, path: String| {
        rel.lookup(name).ok_or_else(|| SegError::UnknownAttribute {
            path,
            attr: name.to_string(),
            source_name: rel.relation_name(),
            hint: format!("available columns: {}", rel.names().join(", ")),
        })
    };
    let attr_ty = match &rule.attr {
        Some(a) => Some(column(a, format!("{}.attr", rule.path))?.1),
        None => None,
    };
    let agg_ty = match (rule.agg, &attr_ty) {
        (Agg::Count, _) => ColumnType::Int,
        (Agg::Sum | Agg::Avg, Some(ColumnType::Float)) => ColumnType::Float,
        (Agg::Sum | Agg::Avg, Some(t)) if t.is_number() => ColumnType::Numeric,
        (Agg::Min | Agg::Max, Some(t)) if t.is_number() || t.is_time() || *t == ColumnType::Text => {
            t.clone()
        }
        (Agg::Last | Agg::First, Some(t))
            if t.is_number() || t.is_time() || matches!(t, ColumnType::Text | ColumnType::Bool) =>
        {
            t.clone()
        }
        (agg, t) => {
            return Err(SegError::type_mismatch(
                &format!("{}.attr", rule.path),
                format!(
                    "\"{}\" does not apply to column \"{}\" ({})",
                    agg.name(),
                    rule.attr.as_deref().unwrap_or_default(),
                    t.as_ref().map(|t| t.describe()).unwrap_or_default()
                ),
                "sum and avg take numbers; min and max numbers, text and times; last and first those and booleans",
            ))
        }
    };
    let needs_time =
        rule.within.is_some() || rule.last.is_some() || matches!(rule.agg, Agg::Last | Agg::First);
    let time = match (&source.decl.time, needs_time) {
        (Some(t), _) => Some((t.as_str(), column(t, format!("{}.related", rule.path))?.1)),
        (None, false) => None,
        (None, true) => {
            return Err(SegError::invalid_rule(
                &format!("{}.related", rule.path),
                format!("related source \"{}\" has no time column: within, last and the last / first aggregates need one", rule.source),
                "set segments.related_source.time_column",
            ))
        }
    };
    let window = match &rule.within {
        None => None,
        Some(text) => {
            let iv = parse_interval(text).ok_or_else(|| SegError::InvalidDatetime {
                path: format!("{}.within", rule.path),
                what: "interval",
                value: text.clone(),
                hint: "write an interval as \"30 days\", \"6 months\", \"1 year 2 weeks\", \"12 hours\"".into(),
            })?;
            let anchor = match &rule.as_of {
                Some(s) => parse_timestamp(s).ok_or_else(|| SegError::InvalidDatetime {
                    path: format!("{}.as_of", rule.path),
                    what: "timestamp",
                    value: s.clone(),
                    hint:
                        "write dates as \"2024-01-31\" and times as \"2024-01-31 12:00:00\" (UTC)"
                            .into(),
                })?,
                None => now,
            };
            let ty = time
                .as_ref()
                .map(|(_, t)| t.clone())
                .unwrap_or(ColumnType::TimestampTz);
            Some((minus_interval(anchor, iv), anchor, ty))
        }
    };
    let filter = match &rule.filter {
        Some(f) => Some(compile_rule(f, rel, now).map_err(|e| match e {
            SegError::UnknownObject { path, .. } => SegError::invalid_rule(
                &path,
                "behavioral conditions do not nest: the where rule reads the related source's own columns",
                "",
            ),
            e => e,
        })?),
        None => None,
    };
    let test = super::compile::compile_cond(&rule.cond, &Aggregate(agg_ty), now)?;
    let (key_col, key_name) = source.account_key.clone().ok_or_else(|| {
        SegError::invalid_rule(
            &format!("{}.related", rule.path),
            format!(
                "behavioral conditions look the account up by the segmentation's key column, which {} does not have",
                columns.relation_name()
            ),
            "classify rows of the segmentation's source",
        )
    })?;
    let query = Query {
        rule,
        decl: source.decl,
        time: time.map(|(t, _)| t),
        filter: filter.as_ref(),
        window: window.as_ref(),
    };
    Ok(RelatedTest {
        rule: rule.clone(),
        lookup: Lookup {
            key_col,
            sql: query.sql(&Bind::Params),
            window: window.clone(),
        },
        correlated: query.sql(&Bind::Outer(key_name.clone())),
        grouped: query.grouped(),
        key_name,
        test,
    })
}

/// How the query gets the account's key and the window: as parameters (the prepared lookup) or from the
/// outer row and as literals (`to_sql`).
enum Bind {
    Params,
    Outer(String),
}

struct Query<'a> {
    rule: &'a RelatedRule,
    decl: &'a RelatedDecl,
    time: Option<&'a str>,
    filter: Option<&'a Expr>,
    window: Option<&'a (i64, i64, ColumnType)>,
}

impl Query<'_> {
    /// The rows of the account (or, `grouped`, of every account) the aggregate reads: the window, the
    /// where rule, and for the ordered aggregates a time.
    fn conditions(&self, window: Option<(String, String)>) -> Vec<String> {
        let r = |c: &str| format!("segments_related.{}", quote_ident(c));
        let mut conds = vec![];
        if let (Some(t), Some((from, to))) = (self.time, window) {
            conds.push(format!("{} {} {from}", r(t), catalog_op(">=")));
            conds.push(format!("{} {} {to}", r(t), catalog_op("<=")));
        }
        if let Some(f) = self.filter {
            // the where rule's columns are the related relation's, the only relation in scope
            conds.push(expr_sql(f));
        }
        if self.ordered() {
            conds.push(format!("{} IS NOT NULL", r(self.time.unwrap_or_default())));
        }
        conds
    }

    /// The window's bounds as SQL: from `now()` when anchored at the current time (see `sql::cutoff_sql`).
    fn window_sql(&self) -> Option<(String, String)> {
        let (from, to, ty) = self.window?;
        let from_now = self
            .rule
            .as_of
            .is_none()
            .then(|| self.rule.within.as_deref())
            .flatten();
        // both bounds follow now() or neither: the window is decided by its start
        let to_now = TIMESTAMP_RANGE.contains(from).then_some(from_now).flatten();
        Some((
            window_bound_sql(from_now, *from, Bound::Back, ty),
            window_bound_sql(to_now, *to, Bound::Anchor, ty),
        ))
    }

    fn ordered(&self) -> bool {
        self.rule.last.is_some() || matches!(self.rule.agg, Agg::Last | Agg::First)
    }

    /// `ORDER BY` of the ordered aggregates: by time, ties broken by the value itself, so the rows taken
    /// give one answer (without a value, as for a count of the last rows, any of the tied rows do).
    fn order(&self, x: &str) -> (String, u32) {
        let dir = if self.rule.agg == Agg::First {
            "ASC"
        } else {
            "DESC"
        };
        let tie_break = match &self.rule.attr {
            Some(_) => format!(", {x} {dir} NULLS LAST"),
            None => String::new(),
        };
        let limit = match self.rule.agg {
            Agg::Last | Agg::First => 1,
            _ => self.rule.last.unwrap_or(1),
        };
        (
            format!(
                "segments_related.{} {dir}{tie_break}",
                quote_ident(self.time.unwrap_or_default())
            ),
            limit,
        )
    }

    fn agg_of(&self, x: &str) -> String {
        match self.rule.agg {
            Agg::Count if self.rule.attr.is_some() => format!("pg_catalog.count({x})"),
            Agg::Count => "pg_catalog.count(*)".into(),
            Agg::Sum => format!("pg_catalog.sum({x})"),
            Agg::Avg => format!("pg_catalog.avg({x})"),
            Agg::Min => format!("pg_catalog.min({x})"),
            Agg::Max => format!("pg_catalog.max({x})"),
            // one row per account is left: its value
            Agg::Last | Agg::First => format!("(pg_catalog.array_agg({x}))[1]"),
        }
    }

    fn value(&self) -> String {
        match &self.rule.attr {
            Some(a) => format!("segments_related.{}", quote_ident(a)),
            None => "NULL".into(),
        }
    }

    /// Every account's aggregate at once: `SELECT segments_key, segments_value ... GROUP BY 1`.
    fn grouped(&self) -> String {
        let conds = self.conditions(self.window_sql());
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let key = format!("segments_related.{}", quote_ident(&self.decl.key));
        let x = self.value();
        let rel = &self.decl.relation;
        if !self.ordered() {
            return format!(
                "SELECT {key} AS segments_key, {} AS segments_value FROM {rel} AS segments_related{filter} GROUP BY 1",
                self.agg_of(&x)
            );
        }
        let (order, limit) = self.order(&x);
        format!(
            "SELECT segments_rows.k AS segments_key, {} AS segments_value FROM (SELECT {key} AS k, {x} AS x, \
             pg_catalog.row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS n FROM {rel} AS segments_related{filter}) AS segments_rows \
             WHERE segments_rows.n {} {limit} GROUP BY 1",
            self.agg_of("segments_rows.x"),
            catalog_op("<=")
        )
    }

    fn sql(&self, bind: &Bind) -> String {
        let (key, window) = match (bind, self.window) {
            (Bind::Params, Some(_)) => {
                ("$1".to_string(), Some(("$2".to_string(), "$3".to_string())))
            }
            (Bind::Params, None) => ("$1".to_string(), None),
            (Bind::Outer(_), _) => ("segments_key.account_key".to_string(), self.window_sql()),
        };
        let mut conds = vec![format!(
            "segments_related.{} {} {key}",
            quote_ident(&self.decl.key),
            catalog_op("=")
        )];
        conds.extend(self.conditions(window));
        // the outer row's key is read in a FROM-less subquery: there no column of the related relation can
        // shadow it, whatever the two relations' column names
        let from_clause = match bind {
            Bind::Params => format!("{} AS segments_related", self.decl.relation),
            Bind::Outer(k) => format!(
                "(SELECT {} AS account_key) AS segments_key, {} AS segments_related",
                quote_ident(k),
                self.decl.relation
            ),
        };
        let x = self.value();
        let rows = format!("FROM {from_clause} WHERE {}", conds.join(" AND "));
        if !self.ordered() {
            return format!("(SELECT {} {rows})", self.agg_of(&x));
        }
        let (order, limit) = self.order(&x);
        format!(
            "(SELECT {} FROM (SELECT {x} AS x {rows} ORDER BY {order} LIMIT {limit}) AS segments_rows)",
            self.agg_of("segments_rows.x")
        )
    }
}

impl RelatedTest {
    pub fn eval<R: Row + ?Sized>(&self, row: &R) -> bool {
        row.related(&self.lookup, &mut |cell| self.test.check.eval(cell))
    }

    pub fn explain(&self, row: &dyn Row) -> Value {
        let mut actual = Value::Null;
        let pass = row.related(&self.lookup, &mut |cell| {
            actual = super::compile::cell_json(cell);
            self.test.check.eval(cell)
        });
        let mut node = json!({"related": self.rule.source, "agg": self.rule.agg.name(), "op": self.rule.cond.op.name(),
                              "actual": actual, "pass": pass});
        if let Some(a) = &self.rule.attr {
            node["attr"] = Value::from(a.clone());
        }
        if !self.rule.cond.value.is_null() {
            node["value"] = self.rule.cond.value.clone();
        }
        if let Some((from, to, _)) = &self.lookup.window {
            node["from"] = Value::from(format_timestamp(*from));
            node["to"] = Value::from(format_timestamp(*to));
        }
        if let Some(n) = self.rule.last {
            node["last"] = Value::from(n);
        }
        node
    }

    pub fn sql(&self, form: Form) -> String {
        let value = match form {
            Form::Expression => self.correlated.clone(),
            Form::Joined(all) => {
                let i = all
                    .iter()
                    .position(|r| std::ptr::eq(*r, self))
                    .unwrap_or_default();
                // an account without rows has no joined row: its count is 0, every other aggregate NULL
                match self.rule.agg {
                    Agg::Count => format!("COALESCE(segments_agg_{i}.segments_value, 0)"),
                    _ => format!("segments_agg_{i}.segments_value"),
                }
            }
        };
        test_sql_on(&self.test, value)
    }

    pub fn grouped_sql(&self) -> &str {
        &self.grouped
    }
}
