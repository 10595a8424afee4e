//! Rules checked against a relation's columns and compiled to typed tests that evaluate a row without
//! allocating. Also the evaluator's two other faces: `explain` (the values compared) and validation errors.

use super::ast::{Cond, Nearest, Op, Rule, OPERATORS};
use super::number::{cmp_numerics, int_numeric, numeric_text, Number, Numeric};
use super::pattern;
use super::time::{
    format_timestamp, minus_interval, parse_interval, parse_timestamp, plus_interval, USECS_PER_DAY,
};
use crate::error::{Result, SegError};
use regex::{Regex, RegexBuilder};
use serde_json::{json, Value};
use std::cmp::Ordering;

/// What the rule language knows of a column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Bool,
    Int,
    /// float4 and float8 (see `number` for how each number type compares)
    Float,
    Numeric,
    Text,
    Date,
    Timestamp,
    TimestampTz,
    /// jsonb: rules read its fields (`column.key`)
    Json,
    /// an array of text or numbers (the element type)
    Array(Box<ColumnType>),
    /// Any other type: only `is_null` / `not_null` apply.
    Other(String),
}

impl ColumnType {
    pub fn is_time(&self) -> bool {
        matches!(
            self,
            ColumnType::Date | ColumnType::Timestamp | ColumnType::TimestampTz
        )
    }
    pub fn is_number(&self) -> bool {
        matches!(
            self,
            ColumnType::Int | ColumnType::Float | ColumnType::Numeric
        )
    }
    pub fn describe(&self) -> String {
        match self {
            ColumnType::Bool => "boolean".into(),
            ColumnType::Int => "integer".into(),
            ColumnType::Float => "double precision".into(),
            ColumnType::Numeric => "numeric".into(),
            ColumnType::Text => "text".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp => "timestamp".into(),
            ColumnType::TimestampTz => "timestamptz".into(),
            ColumnType::Json => "jsonb".into(),
            ColumnType::Array(elem) => format!("{}[]", elem.describe()),
            ColumnType::Other(name) => name.clone(),
        }
    }
}

/// The columns of the relation (or row type) a rule is compiled against.
pub trait Columns {
    /// Position (0-based) and type of a column, by exact name.
    fn lookup(&self, name: &str) -> Option<(usize, ColumnType)>;
    fn names(&self) -> Vec<String>;
    fn relation_name(&self) -> String;
    /// A related source declared for the segmentation (behavioral conditions), by name.
    fn related(&self, name: &str) -> Option<super::related::RelatedSource<'_>> {
        let _ = name;
        None
    }
    fn related_names(&self) -> Vec<String> {
        vec![]
    }
    /// Another segmentation compiled against these columns, for segment references (None: no such
    /// segmentation).
    fn referenced(&self, segmentation: &str) -> Result<Option<std::sync::Arc<super::Ruleset>>> {
        let _ = segmentation;
        Ok(None)
    }
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
    /// an array's elements
    Array(Elements<'a>),
    /// a value of a type rules only test for presence (uuid, a whole jsonb, a JSON object, ...): not NULL,
    /// never compared
    Opaque,
}

/// An array value of a row, read element by element where it is stored.
pub trait ElementSource {
    /// The number of elements (of every dimension), NULLs included: SQL's `cardinality`.
    fn count(&self) -> usize;
    /// Calls `f` on each element until it returns true; whether one did.
    fn any(&self, f: &mut dyn FnMut(Cell) -> bool) -> bool;
}

#[derive(Clone, Copy)]
pub struct Elements<'a>(pub &'a dyn ElementSource);

impl std::fmt::Debug for Elements<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "array of {}", self.0.count())
    }
}

impl PartialEq for Elements<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(self.0, other.0)
    }
}

pub trait Row {
    fn cell(&self, col: usize) -> Cell<'_>;

    /// A field of the jsonb column `col`, found by its keys from the top: a JSON string as `Text`, a number
    /// as `Numeric`, true/false as `Bool`, an object or an array as `Opaque`; a missing key, a JSON null or
    /// a key below a non-object as `Null`.
    fn json_field(&self, col: usize, keys: &[String]) -> Cell<'_> {
        let _ = (col, keys);
        Cell::Null
    }

    /// Runs a behavioral condition's query for this row's account and calls `f` with the aggregate (NULL
    /// when the row cannot run queries); returns what `f` returned.
    fn related(&self, lookup: &super::related::Lookup, f: &mut dyn FnMut(Cell) -> bool) -> bool {
        let _ = lookup;
        f(Cell::Null)
    }

    /// A date column's value as days since 2000-01-01 (dates beyond the timestamp range, which `cell` gives
    /// as infinity, kept apart), None for NULL.
    fn days(&self, col: usize) -> Option<i64> {
        match self.cell(col) {
            Cell::Time(t) => Some(t.div_euclid(USECS_PER_DAY)),
            _ => None,
        }
    }

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
    /// `within_next`: from the first to the second time, both included
    Window(i64, i64),
    /// `later_than`: strictly after the cutoff
    After(i64),
    /// an array with an element equal to each of the values (`has`, `has_all`) or to one (`has_any`)
    Has {
        values: Vec<Scalar>,
        all: bool,
    },
    IsEmpty,
    /// the check of text with ASCII letters folded to lower case (its constants are folded already)
    IgnoreCase(Box<Check>),
    /// a comparison with another column of the row
    Column(Op, usize, ColumnType),
}

/// What of the row a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// the column's value
    Column,
    /// a field of a jsonb column, by its keys
    Field(Vec<String>),
    /// the number of elements of an array column, of characters of a text column
    Length { of_text: bool },
}

#[derive(Debug, Clone)]
pub struct Test {
    pub col: usize,
    /// the type of the value tested: the column's, `Json` for a field, `Int` for a length
    pub ty: ColumnType,
    pub target: Target,
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
    Points(Box<super::points::PointsTest>),
    Related(Box<super::related::RelatedTest>),
    InSegment(Box<super::reference::InSegmentTest>),
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
        Rule::Points(r) => Expr::Points(Box::new(super::points::compile(r, columns, now)?)),
        Rule::Related(r) => Expr::Related(Box::new(super::related::compile(r, columns, now)?)),
        Rule::InSegment(r) => Expr::InSegment(Box::new(super::reference::compile(r, columns)?)),
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

/// Finds what a condition reads: a column, a field of a jsonb column (`column.key.key`) or a length.
fn resolve_target(c: &Cond, columns: &dyn Columns) -> Result<(usize, ColumnType, Target)> {
    let apath = format!("{}.{}", c.path, if c.length { "length" } else { "attr" });
    if let Some((col, ty)) = columns.lookup(&c.attr) {
        if !c.length {
            return Ok((col, ty, Target::Column));
        }
        return match ty {
            ColumnType::Array(_) | ColumnType::Text => Ok((
                col,
                ColumnType::Int,
                Target::Length {
                    of_text: ty == ColumnType::Text,
                },
            )),
            _ => Err(SegError::type_mismatch(
                &apath,
                format!(
                    "\"length\" counts the elements of an array or the characters of text; column \"{}\" is {}",
                    c.attr,
                    ty.describe()
                ),
                "compare the column itself with \"attr\"",
            )),
        };
    }
    if let Some((column, keys)) = c.attr.split_once('.').filter(|_| !c.length) {
        if let Some((col, ty)) = columns.lookup(column) {
            if ty != ColumnType::Json {
                return Err(SegError::type_mismatch(
                    &apath,
                    format!(
                        "\"{}\" reads a field of column \"{column}\", which is {}, not jsonb",
                        c.attr,
                        ty.describe()
                    ),
                    "a dotted attribute (props.tier) reads a key of a jsonb column",
                ));
            }
            let keys: Vec<String> = keys.split('.').map(str::to_string).collect();
            if keys.iter().any(String::is_empty) {
                return Err(SegError::invalid_rule(
                    &apath,
                    format!("\"{}\" has an empty key", c.attr),
                    "write a field as column.key or column.key.subkey",
                ));
            }
            return Ok((col, ColumnType::Json, Target::Field(keys)));
        }
    }
    resolve(columns, &c.attr, &apath).map(|(col, ty)| (col, ty, Target::Column))
}

pub(crate) fn compile_cond(c: &Cond, columns: &dyn Columns, now: i64) -> Result<Test> {
    let (col, ty, target) = resolve_target(c, columns)?;
    let vpath = format!("{}.value", c.path);
    let mismatch = |what: &str| {
        SegError::type_mismatch(
            &vpath,
            format!(
                "operator \"{}\" on {} \"{}\" ({}) {what}",
                c.op.name(),
                match target {
                    Target::Column => "column",
                    Target::Field(_) => "field",
                    Target::Length { .. } => "the length of",
                },
                c.attr,
                ty.describe()
            ),
            value_hint(&ty),
        )
    };
    if let ColumnType::Other(_) = ty {
        if !matches!(c.op, Op::IsNull | Op::NotNull) {
            return Err(mismatch(
                "is not supported: rules compare booleans, numbers, text, dates/times, arrays and jsonb fields",
            ));
        }
    }
    let is_array = matches!(ty, ColumnType::Array(_));
    let array_op = matches!(c.op, Op::Has | Op::HasAny | Op::HasAll | Op::IsEmpty);
    if is_array && !(array_op || matches!(c.op, Op::IsNull | Op::NotNull)) {
        return Err(mismatch(
            "is not supported: an array takes has, has_any, has_all, is_empty, is_null, not_null, or {\"length\": column}",
        ));
    }
    if array_op && !is_array {
        return Err(mismatch("needs an array column"));
    }
    if ty == ColumnType::Json && c.attr.split_once('.').is_none() {
        if !matches!(c.op, Op::IsNull | Op::NotNull) {
            return Err(mismatch(
                "is not supported: a rule reads a field of a jsonb column, written column.key",
            ));
        }
    }
    // the type a constant is converted to: an array's element type; a JSON field's, the constant's own
    let value_type = match &ty {
        ColumnType::Array(elem) => (**elem).clone(),
        other => other.clone(),
    };
    let scalar = |v: &Value, path: &str| {
        scalar_for(v, &value_type, path)
            .ok_or_else(|| mismatch(&format!("cannot compare with {v}")))
    };
    let text = || {
        c.value
            .as_str()
            .map(str::to_string)
            .filter(|_| matches!(ty, ColumnType::Text | ColumnType::Json))
    };
    let list = || -> Result<Vec<Scalar>> {
        let items = c.value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            SegError::invalid_rule(
                &vpath,
                format!("\"{}\" takes a non-empty array", c.op.name()),
                format!(
                    "e.g. {{\"attr\": \"{}\", \"op\": \"{}\", \"value\": [\"Healthcare\", \"Biotech\"]}}",
                    c.attr,
                    c.op.name()
                ),
            )
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| scalar(v, &format!("{vpath}[{i}]")))
            .collect()
    };
    let check = match c.op {
        Op::IsNull => Check::IsNull,
        Op::NotNull => Check::NotNull,
        _ if c.other.is_some() => compile_column_comparison(c, columns, &ty)?,
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
        Op::In => Check::In(list()?),
        Op::NotIn => Check::NotIn(list()?),
        Op::Has => Check::Has {
            values: vec![scalar(&c.value, &vpath)?],
            all: true,
        },
        Op::HasAny | Op::HasAll => Check::Has {
            values: list()?,
            all: c.op == Op::HasAll,
        },
        Op::IsEmpty => Check::IsEmpty,
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
        Op::Within | Op::OlderThan | Op::WithinNext | Op::LaterThan => {
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
                hint: "write an interval as \"30 days\", \"6 months\", \"1 year 2 weeks\", \"12 hours\"; for a window ahead use within_next / later_than".into(),
            })?;
            let anchor = match &c.as_of {
                Some(s) => parse_time_literal(s, &format!("{}.as_of", c.path))?,
                None => now,
            };
            match c.op {
                Op::Within => Check::NotBefore(minus_interval(anchor, iv)),
                Op::OlderThan => Check::Before(minus_interval(anchor, iv)),
                // a date column's window starts with the anchor's day (today's renewal is in it)
                Op::WithinNext if ty == ColumnType::Date => Check::Window(
                    anchor.div_euclid(USECS_PER_DAY) * USECS_PER_DAY,
                    plus_interval(anchor, iv),
                ),
                Op::WithinNext => Check::Window(anchor, plus_interval(anchor, iv)),
                _ => Check::After(plus_interval(anchor, iv)),
            }
        }
    };
    let check = if c.ignore_case {
        if !matches!(ty, ColumnType::Text | ColumnType::Json) {
            return Err(mismatch("takes ignore_case only on text"));
        }
        Check::IgnoreCase(Box::new(fold_constants(check)))
    } else {
        check
    };
    Ok(Test {
        col,
        ty,
        target,
        cond: c.clone(),
        check,
    })
}

/// `{"attr": a, "op": "<", "value": {"attr": b}}`: both columns of one kind (numbers, text, booleans,
/// dates with timestamps without time zone, timestamptz with timestamptz).
fn compile_column_comparison(c: &Cond, columns: &dyn Columns, ty: &ColumnType) -> Result<Check> {
    let other = c.other.as_deref().unwrap_or_default();
    let opath = format!("{}.value.attr", c.path);
    let (col, other_ty) = resolve(columns, other, &opath)?;
    let kind = |t: &ColumnType| match t {
        t if t.is_number() => 1,
        ColumnType::Text => 2,
        ColumnType::Bool => 3,
        ColumnType::Date | ColumnType::Timestamp => 4,
        ColumnType::TimestampTz => 5,
        _ => 0,
    };
    if kind(ty) == 0 || kind(ty) != kind(&other_ty) {
        return Err(SegError::type_mismatch(
            &opath,
            format!(
                "cannot compare column \"{}\" ({}) with column \"{other}\" ({})",
                c.attr,
                ty.describe(),
                other_ty.describe()
            ),
            "compare numbers with numbers, text with text, booleans with booleans, dates and timestamps with each other, timestamptz with timestamptz",
        ));
    }
    Ok(Check::Column(c.op, col, other_ty))
}

/// A check's text constants with ASCII letters in lower case, for `IgnoreCase`.
fn fold_constants(check: Check) -> Check {
    let fold = |s: Scalar| match s {
        Scalar::Text(t) => Scalar::Text(t.to_ascii_lowercase()),
        other => other,
    };
    match check {
        Check::Compare(op, s) => Check::Compare(op, fold(s)),
        Check::In(list) => Check::In(list.into_iter().map(fold).collect()),
        Check::NotIn(list) => Check::NotIn(list.into_iter().map(fold).collect()),
        Check::Contains(s) => Check::Contains(s.to_ascii_lowercase()),
        Check::StartsWith(s) => Check::StartsWith(s.to_ascii_lowercase()),
        Check::EndsWith(s) => Check::EndsWith(s.to_ascii_lowercase()),
        other => other,
    }
}

fn value_hint(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Bool => "compare a boolean column with true or false".into(),
        ColumnType::Int | ColumnType::Float | ColumnType::Numeric => "compare a numeric column with a JSON number".into(),
        ColumnType::Json => "compare a JSON field with a string, a number or true/false: a field of another JSON type does not match".into(),
        ColumnType::Array(_) => "e.g. {\"attr\": \"tech_stack\", \"op\": \"has\", \"value\": \"Salesforce\"}; has_any / has_all take a list".into(),
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
        (ColumnType::Int | ColumnType::Float | ColumnType::Numeric, Value::Number(n)) => {
            Some(Scalar::Num(Number::new(n.as_f64()?, n.as_i64())))
        }
        (ColumnType::Text, Value::String(s)) => Some(Scalar::Text(s.clone())),
        // a JSON field is compared by the constant's JSON type
        (ColumnType::Json, Value::Bool(b)) => Some(Scalar::Bool(*b)),
        (ColumnType::Json, Value::Number(n)) => {
            Some(Scalar::Num(Number::new(n.as_f64()?, n.as_i64())))
        }
        (ColumnType::Json, Value::String(s)) => Some(Scalar::Text(s.clone())),
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
                if ty.is_time() && !c.op.is_window() && c.other.is_none() && !c.length {
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
        Rule::Points(p) => p
            .parts
            .iter()
            .try_for_each(|part| check_time_literals(&part.rule, columns)),
        // the where rule is checked against the related relation when compiled
        Rule::Related(_) | Rule::InSegment(_) => Ok(()),
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
        let text = |f: &dyn Fn(&str) -> bool| matches!(cell, Cell::Text(t) if f(t));
        let time = |f: &dyn Fn(i64) -> bool| matches!(cell, Cell::Time(t) if f(t));
        match self {
            Check::IsNull => false,
            Check::NotNull => true,
            Check::Compare(Op::Eq, s) => equals(&cell, s),
            Check::Compare(op, s) => compare(&cell, s).is_some_and(|o| holds(*op, o)),
            Check::Between(lo, hi) => {
                compare(&cell, lo).is_some_and(|o| o != Ordering::Less)
                    && compare(&cell, hi).is_some_and(|o| o != Ordering::Greater)
            }
            Check::In(list) => list.iter().any(|s| equals(&cell, s)),
            Check::NotIn(list) => list
                .iter()
                .all(|s| matches!(compare(&cell, s), Some(o) if o != Ordering::Equal)),
            Check::Contains(s) => text(&|t| t.contains(s.as_str())),
            Check::StartsWith(s) => text(&|t| t.starts_with(s.as_str())),
            Check::EndsWith(s) => text(&|t| t.ends_with(s.as_str())),
            Check::Matches(_, re) => text(&|t| re.is_match(t)),
            Check::NotBefore(cut) => time(&|t| t >= *cut),
            Check::Before(cut) => time(&|t| t < *cut),
            Check::Window(from, to) => time(&|t| t >= *from && t <= *to),
            Check::After(cut) => time(&|t| t > *cut),
            Check::Has { values, all } => match cell {
                Cell::Array(a) => {
                    let has = |s: &Scalar| a.0.any(&mut |e| equals(&e, s));
                    if *all {
                        values.iter().all(has)
                    } else {
                        values.iter().any(has)
                    }
                }
                _ => false,
            },
            Check::IsEmpty => matches!(cell, Cell::Array(a) if a.0.count() == 0),
            Check::IgnoreCase(inner) => match cell {
                Cell::Text(t) => inner.eval(Cell::Text(&t.to_ascii_lowercase())),
                other => inner.eval(other),
            },
            // needs the row: see Test::eval
            Check::Column(..) => false,
        }
    }
}

fn holds(op: Op, o: Ordering) -> bool {
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Gt => o == Ordering::Greater,
        _ => o != Ordering::Less,
    }
}

/// Doubles in PostgreSQL's order: NaN equals NaN and sorts above every number.
fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

impl Test {
    /// The value the condition tests: the column's, a field's, or a length.
    pub fn value<'r, R: Row + ?Sized>(&self, row: &'r R) -> Cell<'r> {
        match &self.target {
            Target::Column => row.cell(self.col),
            Target::Field(keys) => row.json_field(self.col, keys),
            Target::Length { .. } => match row.cell(self.col) {
                Cell::Array(a) => Cell::Int(a.0.count() as i64),
                Cell::Text(t) => Cell::Int(t.chars().count() as i64),
                _ => Cell::Null,
            },
        }
    }

    pub fn eval<R: Row + ?Sized>(&self, row: &R) -> bool {
        match &self.check {
            Check::Column(op, other, _) => self
                .compare_columns(row, *other)
                .is_some_and(|o| holds(*op, o)),
            check => check.eval(self.value(row)),
        }
    }

    /// Two columns of the row compared as PostgreSQL compares them (see `to_sql`): integers exactly with
    /// integers and numerics, anything with a double precision column in double precision.
    fn compare_columns<R: Row + ?Sized>(&self, row: &R, other: usize) -> Option<Ordering> {
        let (a, b) = (row.cell(self.col), row.cell(other));
        if let (ColumnType::Date, Check::Column(_, _, ColumnType::Date)) = (&self.ty, &self.check) {
            return Some(row.days(self.col)?.cmp(&row.days(other)?));
        }
        Some(match (a, b) {
            (Cell::Null, _) | (_, Cell::Null) => return None,
            (Cell::Float(_), _) | (_, Cell::Float(_)) => {
                cmp_f64(row.float(self.col)?, row.float(other)?)
            }
            (Cell::Int(x), Cell::Int(y)) => x.cmp(&y),
            (Cell::Int(x), Cell::Numeric(y)) => cmp_numerics(&int_numeric(x, &mut [0; 10]), &y),
            (Cell::Numeric(x), Cell::Int(y)) => cmp_numerics(&x, &int_numeric(y, &mut [0; 10])),
            (Cell::Numeric(x), Cell::Numeric(y)) => cmp_numerics(&x, &y),
            (Cell::Text(x), Cell::Text(y)) => x.cmp(y),
            (Cell::Bool(x), Cell::Bool(y)) => x.cmp(&y),
            (Cell::Time(x), Cell::Time(y)) => x.cmp(&y),
            _ => return None,
        })
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
            Expr::Test(t) => t.eval(row),
            Expr::Nearest(n) => n.nearest(row) == Some(n.rule.cluster),
            Expr::Score(s) => s.eval(row),
            Expr::Points(p) => p.eval(row),
            Expr::Related(r) => r.eval(row),
            Expr::InSegment(r) => r.eval(row),
        }
    }

    /// The columns the rule reads (positions, possibly repeated).
    pub fn columns(&self, out: &mut Vec<usize>) {
        match self {
            Expr::True => {}
            Expr::All(es) | Expr::Any(es) => es.iter().for_each(|e| e.columns(out)),
            Expr::Not(e) => e.columns(out),
            Expr::Test(t) => {
                out.push(t.col);
                if let Check::Column(_, other, _) = t.check {
                    out.push(other);
                }
            }
            Expr::Nearest(n) => out.extend(&n.cols),
            Expr::Score(s) => out.extend(s.columns()),
            Expr::Points(p) => p.parts().for_each(|e| e.columns(out)),
            Expr::Related(r) => out.push(r.lookup.key_col),
            Expr::InSegment(r) => r.exprs().for_each(|e| e.columns(out)),
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
                let key = if t.cond.length { "length" } else { "attr" };
                let mut node = json!({key: t.cond.attr, "op": t.cond.op.name(), "actual": cell_json(t.value(row)), "pass": pass});
                if !t.cond.value.is_null() {
                    node["value"] = t.cond.value.clone();
                }
                if t.cond.ignore_case {
                    node["ignore_case"] = Value::from(true);
                }
                match t.check {
                    Check::NotBefore(cut) | Check::Before(cut) | Check::After(cut) => {
                        node["cutoff"] = Value::from(format_timestamp(cut))
                    }
                    Check::Window(from, to) => {
                        node["from"] = Value::from(format_timestamp(from));
                        node["to"] = Value::from(format_timestamp(to));
                    }
                    Check::Column(_, other, _) => {
                        node["value"] = json!({"attr": t.cond.other});
                        node["other"] = cell_json(row.cell(other));
                    }
                    _ => {}
                }
                node
            }
            Expr::Nearest(n) => {
                json!({"nearest": {"features": n.rule.features, "cluster": n.rule.cluster}, "nearest_cluster": n.nearest(row), "pass": pass})
            }
            Expr::Score(s) => s.explain(row),
            Expr::Points(p) => p.explain(row),
            Expr::Related(r) => r.explain(row),
            Expr::InSegment(r) => r.explain(row),
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
        Cell::Array(a) => {
            let mut items = vec![];
            a.0.any(&mut |e| {
                items.push(cell_json(e));
                false
            });
            Value::Array(items)
        }
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
