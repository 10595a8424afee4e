//! Rules checked against a relation's columns and compiled to typed tests that evaluate a row without
//! allocating. Also the evaluator's two other faces: `explain` (the values compared) and validation errors.

use super::ast::{Cond, Nearest, Op, Rule, OPERATORS};
use super::number::{numeric_text, Number, Numeric};
use super::pattern;
use super::time::{format_timestamp, minus_interval, parse_interval, parse_timestamp};
use crate::error::{Result, SegError};
use regex::{Regex, RegexBuilder};
use serde_json::{json, Value};
use std::cmp::Ordering;

/// What the rule language knows of a column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Bool,
    Int,
    /// float4, float8 and numeric (see `number` for how each compares)
    Float,
    Text,
    Date,
    Timestamp,
    TimestampTz,
    /// Any other type: only `is_null` / `not_null` apply.
    Other(String),
}

impl ColumnType {
    fn is_time(&self) -> bool {
        matches!(
            self,
            ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz
        )
    }
    fn is_number(&self) -> bool {
        matches!(self, ColumnType::Int | ColumnType::Float)
    }
    pub fn describe(&self) -> &str {
        match self {
            ColumnType::Bool => "boolean",
            ColumnType::Int => "integer",
            ColumnType::Float => "numeric",
            ColumnType::Text => "text",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::TimestampTz => "timestamptz",
            ColumnType::Other(name) => name,
        }
    }
}

/// The columns of the relation (or row type) a rule is compiled against.
pub trait Columns {
    /// Position (0-based) and type of a column, by exact name.
    fn lookup(&self, name: &str) -> Option<(usize, ColumnType)>;
    fn names(&self) -> Vec<String>;
    fn relation_name(&self) -> String;
}

/// One column value of the row being classified, borrowed from the row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Numeric(Numeric<'a>),
    Text(&'a str),
    /// microseconds since 2000-01-01 (dates at midnight)
    Time(i64),
    /// a value of a type rules only test for presence (uuid, jsonb, arrays, ...): not NULL, never compared
    Opaque,
}

pub trait Row {
    fn cell(&self, col: usize) -> Cell<'_>;

    /// A number column as double precision (k-means distances), None for NULL; a row whose numerics can be
    /// converted more cheaply than through their text overrides it.
    fn float(&self, col: usize) -> Option<f64> {
        match self.cell(col) {
            Cell::Int(i) => Some(i as f64),
            Cell::Float(f) => Some(f),
            Cell::Numeric(n) => numeric_text(&n).parse().ok(),
            _ => None,
        }
    }
}

/// A rule constant, converted once to the column's representation.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Num(Number),
    Text(String),
    Time(i64),
}

#[derive(Debug, Clone)]
pub enum Check {
    IsNull,
    NotNull,
    Compare(Op, Scalar),
    Between(Scalar, Scalar),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    /// the pattern as PostgreSQL reads it, and as compiled for Rust (see `pattern`)
    Matches(String, Regex),
    /// `within`: at or after the cutoff
    NotBefore(i64),
    /// `older_than`: strictly before the cutoff
    Before(i64),
}

#[derive(Debug, Clone)]
pub struct Test {
    pub col: usize,
    pub ty: ColumnType,
    pub cond: Cond,
    pub check: Check,
}

#[derive(Debug, Clone)]
pub struct NearestTest {
    pub cols: Vec<usize>,
    pub rule: Nearest,
}

#[derive(Debug, Clone)]
pub enum Expr {
    True,
    All(Vec<Expr>),
    Any(Vec<Expr>),
    Not(Box<Expr>),
    Test(Test),
    Nearest(NearestTest),
    Score(Box<super::score::ScoreTest>),
}

/// Compiles a parsed rule against `columns`; `now` (µs since 2000-01-01) anchors `within` / `older_than`.
pub fn compile(rule: &Rule, columns: &dyn Columns, now: i64) -> Result<Expr> {
    Ok(match rule {
        Rule::True => Expr::True,
        Rule::All(rs) => Expr::All(
            rs.iter()
                .map(|r| compile(r, columns, now))
                .collect::<Result<_>>()?,
        ),
        Rule::Any(rs) => Expr::Any(
            rs.iter()
                .map(|r| compile(r, columns, now))
                .collect::<Result<_>>()?,
        ),
        Rule::Not(r) => Expr::Not(Box::new(compile(r, columns, now)?)),
        Rule::Cond(c) => Expr::Test(compile_cond(c, columns, now)?),
        Rule::Score(r) => Expr::Score(Box::new(super::score::compile(r, columns)?)),
        Rule::Nearest(n) => {
            let cols = n
                .features
                .iter()
                .map(|f| {
                    let (col, ty) = resolve(columns, f, &format!("{}.features", n.path))?;
                    if !ty.is_number() {
                        return Err(SegError::type_mismatch(
                            &n.path,
                            format!("feature \"{f}\" is {}, not a number", ty.describe()),
                            "k-means features must be numeric columns",
                        ));
                    }
                    Ok(col)
                })
                .collect::<Result<_>>()?;
            Expr::Nearest(NearestTest {
                cols,
                rule: n.clone(),
            })
        }
    })
}

fn resolve(columns: &dyn Columns, attr: &str, path: &str) -> Result<(usize, ColumnType)> {
    columns
        .lookup(attr)
        .ok_or_else(|| SegError::UnknownAttribute {
            path: path.to_string(),
            attr: attr.to_string(),
            source_name: columns.relation_name(),
            hint: format!("available columns: {}", columns.names().join(", ")),
        })
}

fn compile_cond(c: &Cond, columns: &dyn Columns, now: i64) -> Result<Test> {
    let (col, ty) = resolve(columns, &c.attr, &format!("{}.attr", c.path))?;
    let vpath = format!("{}.value", c.path);
    let mismatch = |what: &str| {
        SegError::type_mismatch(
            &vpath,
            format!(
                "operator \"{}\" on column \"{}\" ({}) {what}",
                c.op.name(),
                c.attr,
                ty.describe()
            ),
            value_hint(&ty),
        )
    };
    if let ColumnType::Other(_) = ty {
        if !matches!(c.op, Op::IsNull | Op::NotNull) {
            return Err(mismatch(
                "is not supported: rules compare booleans, numbers, text and dates/times",
            ));
        }
    }
    let scalar = |v: &Value, path: &str| {
        scalar_for(v, &ty, path).ok_or_else(|| mismatch(&format!("cannot compare with {v}")))
    };
    let text = || {
        c.value
            .as_str()
            .map(str::to_string)
            .filter(|_| ty == ColumnType::Text)
    };
    let check = match c.op {
        Op::IsNull => Check::IsNull,
        Op::NotNull => Check::NotNull,
        Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            Check::Compare(c.op, scalar(&c.value, &vpath)?)
        }
        Op::Between => match c.value.as_array().map(|a| a.as_slice()) {
            Some([lo, hi]) => Check::Between(
                scalar(lo, &format!("{vpath}[0]"))?,
                scalar(hi, &format!("{vpath}[1]"))?,
            ),
            _ => {
                return Err(SegError::invalid_rule(
                    &vpath,
                    "\"between\" takes [low, high]",
                    "e.g. {\"attr\": \"age\", \"op\": \"between\", \"value\": [18, 65]}",
                ))
            }
        },
        Op::In | Op::NotIn => {
            let items = c.value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                SegError::invalid_rule(&vpath, format!("\"{}\" takes a non-empty array", c.op.name()), "e.g. {\"attr\": \"industry\", \"op\": \"in\", \"value\": [\"Healthcare\", \"Biotech\"]}")
            })?;
            let list = items
                .iter()
                .enumerate()
                .map(|(i, v)| scalar(v, &format!("{vpath}[{i}]")))
                .collect::<Result<Vec<_>>>()?;
            if c.op == Op::In {
                Check::In(list)
            } else {
                Check::NotIn(list)
            }
        }
        Op::Contains => {
            Check::Contains(text().ok_or_else(|| mismatch("needs a text column and a string"))?)
        }
        Op::StartsWith => {
            Check::StartsWith(text().ok_or_else(|| mismatch("needs a text column and a string"))?)
        }
        Op::EndsWith => {
            Check::EndsWith(text().ok_or_else(|| mismatch("needs a text column and a string"))?)
        }
        Op::Matches => {
            let pattern =
                text().ok_or_else(|| mismatch("needs a text column and a pattern string"))?;
            let invalid = |message: String| SegError::InvalidRegex {
                path: vpath.clone(),
                message,
            };
            let rust = pattern::translate(&pattern).map_err(invalid)?;
            let regex = RegexBuilder::new(&rust)
                .dot_matches_new_line(true)
                .build()
                .map_err(|e| {
                    // the crate's message spans lines; its last line says what is wrong
                    invalid(
                        e.to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim_start_matches("error: ")
                            .to_string(),
                    )
                })?;
            Check::Matches(pattern, regex)
        }
        Op::Within | Op::OlderThan => {
            if !ty.is_time() {
                return Err(mismatch("needs a date, timestamp or timestamptz column"));
            }
            let text = c
                .value
                .as_str()
                .ok_or_else(|| mismatch("takes an interval string such as \"30 days\""))?;
            let iv = parse_interval(text).ok_or_else(|| SegError::InvalidDatetime {
                path: vpath.clone(),
                what: "interval",
                value: text.to_string(),
                hint: "write an interval as \"30 days\", \"6 months\", \"1 year 2 weeks\", \"12 hours\"".into(),
            })?;
            let anchor = match &c.as_of {
                Some(s) => parse_time_literal(s, &format!("{}.as_of", c.path))?,
                None => now,
            };
            let cutoff = minus_interval(anchor, iv);
            if c.op == Op::Within {
                Check::NotBefore(cutoff)
            } else {
                Check::Before(cutoff)
            }
        }
    };
    Ok(Test {
        col,
        ty,
        cond: c.clone(),
        check,
    })
}

fn value_hint(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Bool => "compare a boolean column with true or false".into(),
        ColumnType::Int | ColumnType::Float => "compare a numeric column with a JSON number".into(),
        ColumnType::Text => "compare a text column with a JSON string".into(),
        ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz => {
            "compare a date/time column with a string such as \"2024-01-31\" or \"2024-01-31 12:00:00+00\"".into()
        }
        ColumnType::Other(_) => format!("valid operators for this column: is_null, not_null (all operators: {OPERATORS})"),
    }
}

fn parse_time_literal(s: &str, path: &str) -> Result<i64> {
    parse_timestamp(s).ok_or_else(|| SegError::InvalidDatetime {
        path: path.to_string(),
        what: "timestamp",
        value: s.to_string(),
        hint: "write dates as \"2024-01-31\" and times as \"2024-01-31 12:00:00\" (UTC) or with an offset \"+02\"".into(),
    })
}

fn scalar_for(v: &Value, ty: &ColumnType, path: &str) -> Option<Scalar> {
    match (ty, v) {
        (ColumnType::Bool, Value::Bool(b)) => Some(Scalar::Bool(*b)),
        (ColumnType::Int | ColumnType::Float, Value::Number(n)) => {
            Some(Scalar::Num(Number::new(n.as_f64()?, n.as_i64())))
        }
        (ColumnType::Text, Value::String(s)) => Some(Scalar::Text(s.clone())),
        // a bad date/time string is 22007, raised here rather than as a type mismatch
        (t, Value::String(s)) if t.is_time() => match parse_time_literal(s, path) {
            Ok(t) => Some(Scalar::Time(t)),
            Err(_) => None,
        },
        _ => None,
    }
}

/// Validates date/time constants separately so that a malformed one reports 22007, not 42804.
pub fn check_time_literals(rule: &Rule, columns: &dyn Columns) -> Result<()> {
    match rule {
        Rule::All(rs) | Rule::Any(rs) => {
            rs.iter().try_for_each(|r| check_time_literals(r, columns))
        }
        Rule::Not(r) => check_time_literals(r, columns),
        Rule::Cond(c) => {
            if let Some((_, ty)) = columns.lookup(&c.attr) {
                if ty.is_time() && !matches!(c.op, Op::Within | Op::OlderThan) {
                    let vpath = format!("{}.value", c.path);
                    let values: Vec<(String, &Value)> = match &c.value {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (format!("{vpath}[{i}]"), v))
                            .collect(),
                        v => vec![(vpath, v)],
                    };
                    for (p, v) in values {
                        if let Value::String(s) = v {
                            parse_time_literal(s, &p)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Rule::True | Rule::Nearest(_) | Rule::Score(_) => Ok(()),
    }
}

/// Equality without ordering: text compares lengths before bytes.
fn equals(cell: &Cell, s: &Scalar) -> bool {
    match (cell, s) {
        (Cell::Text(a), Scalar::Text(b)) => *a == b.as_str(),
        _ => compare(cell, s) == Some(Ordering::Equal),
    }
}

fn compare(cell: &Cell, s: &Scalar) -> Option<Ordering> {
    match (cell, s) {
        (Cell::Bool(a), Scalar::Bool(b)) => Some(a.cmp(b)),
        (Cell::Int(a), Scalar::Num(b)) => Some(b.cmp_int(*a)),
        (Cell::Float(a), Scalar::Num(b)) => Some(b.cmp_float(*a)),
        (Cell::Numeric(a), Scalar::Num(b)) => Some(b.cmp_numeric(a)),
        (Cell::Text(a), Scalar::Text(b)) => Some((*a).cmp(b.as_str())),
        (Cell::Time(a), Scalar::Time(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Check {
    /// NULL matches only `is_null`; every other test on NULL is false (so `not` of it is true).
    pub(crate) fn eval(&self, cell: Cell) -> bool {
        if let Cell::Null = cell {
            return matches!(self, Check::IsNull);
        }
        let text = match cell {
            Cell::Text(t) => t,
            _ => "",
        };
        match self {
            Check::IsNull => false,
            Check::NotNull => true,
            Check::Compare(Op::Eq, s) => equals(&cell, s),
            Check::Compare(op, s) => compare(&cell, s).is_some_and(|o| match op {
                Op::Eq => o == Ordering::Equal,
                Op::Ne => o != Ordering::Equal,
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
            Check::Between(lo, hi) => {
                compare(&cell, lo).is_some_and(|o| o != Ordering::Less)
                    && compare(&cell, hi).is_some_and(|o| o != Ordering::Greater)
            }
            Check::In(list) => list.iter().any(|s| equals(&cell, s)),
            Check::NotIn(list) => list
                .iter()
                .all(|s| matches!(compare(&cell, s), Some(o) if o != Ordering::Equal)),
            Check::Contains(s) => text.contains(s.as_str()),
            Check::StartsWith(s) => text.starts_with(s.as_str()),
            Check::EndsWith(s) => text.ends_with(s.as_str()),
            Check::Matches(_, re) => re.is_match(text),
            Check::NotBefore(cut) => matches!(cell, Cell::Time(t) if t >= *cut),
            Check::Before(cut) => matches!(cell, Cell::Time(t) if t < *cut),
        }
    }
}

impl NearestTest {
    /// Index of the nearest centroid, or None when a feature is NULL. Ties go to the lower index.
    pub fn nearest<R: Row + ?Sized>(&self, row: &R) -> Option<usize> {
        let n = &self.rule;
        let mut x = Vec::with_capacity(self.cols.len());
        for (j, &col) in self.cols.iter().enumerate() {
            let v = row.float(col)?;
            x.push((v - n.center[j]) / n.scale[j]);
        }
        let mut best = (f64::INFINITY, 0);
        for (k, c) in n.centroids.iter().enumerate() {
            let d: f64 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            if d < best.0 {
                best = (d, k);
            }
        }
        Some(best.1)
    }
}

impl Expr {
    /// Generic over the row so the per-row path is monomorphized (no virtual call per cell).
    pub fn eval<R: Row + ?Sized>(&self, row: &R) -> bool {
        match self {
            Expr::True => true,
            Expr::All(es) => es.iter().all(|e| e.eval(row)),
            Expr::Any(es) => es.iter().any(|e| e.eval(row)),
            Expr::Not(e) => !e.eval(row),
            Expr::Test(t) => t.check.eval(row.cell(t.col)),
            Expr::Nearest(n) => n.nearest(row) == Some(n.rule.cluster),
            Expr::Score(s) => s.eval(row),
        }
    }

    /// The rule tree with each node's outcome and, for conditions, the row's value.
    pub fn explain(&self, row: &dyn Row) -> Value {
        let pass = self.eval(row);
        match self {
            Expr::True => json!({"rule": true, "pass": pass}),
            Expr::All(es) => {
                json!({"all": es.iter().map(|e| e.explain(row)).collect::<Vec<_>>(), "pass": pass})
            }
            Expr::Any(es) => {
                json!({"any": es.iter().map(|e| e.explain(row)).collect::<Vec<_>>(), "pass": pass})
            }
            Expr::Not(e) => json!({"not": e.explain(row), "pass": pass}),
            Expr::Test(t) => {
                let mut node = json!({"attr": t.cond.attr, "op": t.cond.op.name(), "actual": cell_json(row.cell(t.col)), "pass": pass});
                if !t.cond.value.is_null() {
                    node["value"] = t.cond.value.clone();
                }
                match t.check {
                    Check::NotBefore(cut) | Check::Before(cut) => {
                        node["cutoff"] = Value::from(format_timestamp(cut))
                    }
                    _ => {}
                }
                node
            }
            Expr::Nearest(n) => {
                json!({"nearest": {"features": n.rule.features, "cluster": n.rule.cluster}, "nearest_cluster": n.nearest(row), "pass": pass})
            }
            Expr::Score(s) => s.explain(row),
        }
    }
}

pub fn cell_json(cell: Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::from(b),
        Cell::Int(i) => Value::from(i),
        Cell::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::from(f.to_string())),
        Cell::Numeric(n) => {
            let text = numeric_text(&n);
            match text.parse::<serde_json::Number>() {
                Ok(number) => Value::Number(number),
                Err(_) => Value::from(text),
            }
        }
        Cell::Text(t) => Value::from(t),
        Cell::Time(t) => Value::from(format_timestamp(t)),
        Cell::Opaque => Value::from("(not shown)"),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::rules::ast::parse;

    /// A fixed schema for unit tests: name, type; rows are vectors of owned values.
    pub struct TestColumns(pub Vec<(&'static str, ColumnType)>);
    impl Columns for TestColumns {
        fn lookup(&self, name: &str) -> Option<(usize, ColumnType)> {
            self.0
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| (i, self.0[i].1.clone()))
        }
        fn names(&self) -> Vec<String> {
            self.0.iter().map(|(n, _)| n.to_string()).collect()
        }
        fn relation_name(&self) -> String {
            "test".into()
        }
    }
    #[derive(Clone)]
    pub enum V {
        N,
        B(bool),
        I(i64),
        F(f64),
        T(&'static str),
        Ts(i64),
    }
    pub struct TestRow(pub Vec<V>);
    impl Row for TestRow {
        fn cell(&self, col: usize) -> Cell<'_> {
            match &self.0[col] {
                V::N => Cell::Null,
                V::B(b) => Cell::Bool(*b),
                V::I(i) => Cell::Int(*i),
                V::F(f) => Cell::Float(*f),
                V::T(t) => Cell::Text(t),
                V::Ts(t) => Cell::Time(*t),
            }
        }
    }

    pub fn cols() -> TestColumns {
        TestColumns(vec![
            ("employees", ColumnType::Int),
            ("industry", ColumnType::Text),
            ("arr", ColumnType::Float),
            ("last_login_at", ColumnType::TimestampTz),
            ("active", ColumnType::Bool),
            ("blob", ColumnType::Other("bytea".into())),
        ])
    }

    fn eval(rule: Value, row: &TestRow) -> bool {
        let now = parse_timestamp("2024-06-30 00:00:00").unwrap();
        compile(&parse(&rule, "rule").unwrap(), &cols(), now)
            .unwrap()
            .eval(row)
    }

    fn err(rule: Value) -> SegError {
        compile(&parse(&rule, "rule").unwrap(), &cols(), 0).unwrap_err()
    }

    fn row() -> TestRow {
        TestRow(vec![
            V::I(1500),
            V::T("Healthcare"),
            V::F(120000.5),
            V::Ts(parse_timestamp("2024-06-20").unwrap()),
            V::B(true),
            V::N,
        ])
    }

    #[test]
    fn operators() {
        let r = row();
        assert!(eval(
            json!({"attr": "employees", "op": ">=", "value": 1000}),
            &r
        ));
        assert!(!eval(
            json!({"attr": "employees", "op": "<", "value": 1000}),
            &r
        ));
        assert!(eval(
            json!({"attr": "employees", "op": ">", "value": 1499.5}),
            &r
        ));
        assert!(eval(
            json!({"attr": "arr", "op": "between", "value": [100000, 120000.5]}),
            &r
        ));
        assert!(eval(
            json!({"attr": "industry", "op": "in", "value": ["Biotech", "Healthcare"]}),
            &r
        ));
        assert!(!eval(
            json!({"attr": "industry", "op": "not_in", "value": ["Biotech", "Healthcare"]}),
            &r
        ));
        assert!(eval(
            json!({"attr": "industry", "op": "starts_with", "value": "Health"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "industry", "op": "ends_with", "value": "care"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "industry", "op": "contains", "value": "thc"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "industry", "op": "matches", "value": "^H.*e$"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "last_login_at", "op": "within", "value": "30 days"}),
            &r
        ));
        assert!(!eval(
            json!({"attr": "last_login_at", "op": "older_than", "value": "30 days"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "last_login_at", "op": "older_than", "value": "1 week"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "last_login_at", "op": "older_than", "value": "5 days", "as_of": "2024-07-01"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "last_login_at", "op": ">", "value": "2024-06-19 23:59:59"}),
            &r
        ));
        assert!(eval(
            json!({"attr": "active", "op": "=", "value": true}),
            &r
        ));
        assert!(eval(json!({"attr": "blob", "op": "is_null"}), &r));
        assert!(eval(
            json!({"all": [true, {"not": {"attr": "industry", "op": "=", "value": "Retail"}}]}),
            &r
        ));
        assert!(!eval(json!({"any": []}), &r));
        assert!(eval(json!({"all": []}), &r));
    }

    #[test]
    fn null_matches_only_is_null() {
        let r = TestRow(vec![V::N, V::N, V::N, V::N, V::N, V::N]);
        for op in ["=", "!=", "<", ">="] {
            assert!(
                !eval(json!({"attr": "employees", "op": op, "value": 1}), &r),
                "{op}"
            );
        }
        assert!(!eval(
            json!({"attr": "industry", "op": "not_in", "value": ["x"]}),
            &r
        ));
        assert!(!eval(
            json!({"attr": "last_login_at", "op": "older_than", "value": "1 day"}),
            &r
        ));
        assert!(eval(json!({"attr": "employees", "op": "is_null"}), &r));
        assert!(!eval(json!({"attr": "employees", "op": "not_null"}), &r));
        // not(...) of a NULL comparison is true: the condition did not match
        assert!(eval(
            json!({"not": {"attr": "industry", "op": "=", "value": "US"}}),
            &r
        ));
    }

    #[test]
    fn validation_errors_carry_sqlstate_and_path() {
        assert_eq!(
            err(json!({"attr": "nope", "op": "=", "value": 1})).sqlstate(),
            "42703"
        );
        let e = err(json!({"all": [{"attr": "employees", "op": "=", "value": "many"}]}));
        assert_eq!(
            (e.sqlstate(), e.detail().unwrap().as_str()),
            ("42804", "JSON path: rule.all[0].value")
        );
        assert_eq!(
            err(json!({"attr": "industry", "op": "matches", "value": "(unclosed"})).sqlstate(),
            "2201B"
        );
        assert_eq!(
            err(json!({"attr": "last_login_at", "op": "within", "value": "soon"})).sqlstate(),
            "22007"
        );
        assert_eq!(
            err(json!({"attr": "employees", "op": "within", "value": "3 days"})).sqlstate(),
            "42804"
        );
        assert_eq!(
            err(json!({"attr": "blob", "op": "=", "value": "x"})).sqlstate(),
            "42804"
        );
        assert_eq!(
            err(json!({"attr": "employees", "op": "between", "value": [1]})).sqlstate(),
            "22023"
        );
        assert_eq!(
            err(json!({"attr": "employees", "op": "in", "value": []})).sqlstate(),
            "22023"
        );
        let bad_date = parse(
            &json!({"attr": "last_login_at", "op": ">", "value": "2024-13-01"}),
            "rule",
        )
        .unwrap();
        assert_eq!(
            check_time_literals(&bad_date, &cols())
                .unwrap_err()
                .sqlstate(),
            "22007"
        );
    }
}
