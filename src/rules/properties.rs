//! Property tests of the rule language: random and mutated rule documents and rows through parse →
//! validate → compile → evaluate → explain → to_sql. Nothing may panic; whatever compiles evaluates every
//! row, explains it with the same outcome, and writes SQL. The suite runs proptest's default number of cases;
//! `PROPTEST_CASES=1000000 bin/fuzz` runs them (and the SQL fuzzer) for as long as one likes.
//! (That SQL and `segment_of` give the same answers needs a server: tests/fuzz/fuzz.sql.)

use super::ast::parse;
use super::compile::{compile, Cell, ColumnType, Columns, Row};
use super::number::{Number, Numeric};
use super::pattern;
use super::ruleset::{Ruleset, RulesetDef, SegmentDef};
use super::sql::to_sql;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::cmp::Ordering;

const COLUMNS: [(&str, ColumnType); 8] = [
    ("i", ColumnType::Int),
    ("f", ColumnType::Float),
    ("n", ColumnType::Numeric),
    ("t", ColumnType::Text),
    ("d", ColumnType::Date),
    ("ts", ColumnType::TimestampTz),
    ("b", ColumnType::Bool),
    ("j", ColumnType::Other(String::new())),
];

struct Schema;
impl Columns for Schema {
    fn lookup(&self, name: &str) -> Option<(usize, ColumnType)> {
        COLUMNS
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| (i, COLUMNS[i].1.clone()))
    }
    fn names(&self) -> Vec<String> {
        COLUMNS.iter().map(|(n, _)| n.to_string()).collect()
    }
    fn relation_name(&self) -> String {
        "accounts".into()
    }
}

#[derive(Debug, Clone)]
enum Val {
    Null,
    Int(i64),
    Float(f64),
    /// sign, weight, base-10000 digits
    Num(bool, i32, Vec<u16>),
    Text(String),
    Time(i64),
    Bool(bool),
    Opaque,
}

#[derive(Debug, Clone)]
struct TestRow(Vec<Val>, Vec<Vec<u8>>);

impl TestRow {
    fn new(vals: Vec<Val>) -> TestRow {
        let bytes = vals
            .iter()
            .map(|v| match v {
                Val::Num(_, _, d) => d.iter().flat_map(|g| g.to_ne_bytes()).collect(),
                _ => vec![],
            })
            .collect();
        TestRow(vals, bytes)
    }
}

impl Row for TestRow {
    fn cell(&self, col: usize) -> Cell<'_> {
        match &self.0[col] {
            Val::Null => Cell::Null,
            Val::Int(i) => Cell::Int(*i),
            Val::Float(f) => Cell::Float(*f),
            Val::Num(negative, weight, _) => Cell::Numeric(Numeric::Finite {
                negative: *negative,
                weight: *weight,
                digits: &self.1[col],
            }),
            Val::Text(t) => Cell::Text(t),
            Val::Time(t) => Cell::Time(*t),
            Val::Bool(b) => Cell::Bool(*b),
            Val::Opaque => Cell::Opaque,
        }
    }
}

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        Just(1 << 53),
        Just((1 << 53) + 1),
        -1000i64..1000,
    ]
}

fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.1),
        Just(-0.0),
        Just(9007199254740993.0),
        -1000.0f64..1000.0,
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-cA-C é\\n.\\\\]{0,6}",
        Just("2024-01-31 12:00+aé1".to_string()),
        Just("30 days".to_string()),
        Just("2024-06-30".to_string()),
        any::<String>(),
    ]
}

fn val(col: usize) -> BoxedStrategy<Val> {
    let value = match COLUMNS[col].1 {
        ColumnType::Int => edge_i64().prop_map(Val::Int).boxed(),
        ColumnType::Float if col == 1 => edge_f64().prop_map(Val::Float).boxed(),
        ColumnType::Float => (
            any::<bool>(),
            -10i32..10,
            prop::collection::vec(0u16..10000, 0..5),
        )
            .prop_map(|(s, w, d)| Val::Num(s, w, d))
            .boxed(),
        ColumnType::Text => text().prop_map(Val::Text).boxed(),
        ColumnType::Bool => any::<bool>().prop_map(Val::Bool).boxed(),
        ColumnType::Other(_) => Just(Val::Opaque).boxed(),
        _ => edge_i64().prop_map(Val::Time).boxed(),
    };
    prop_oneof![1 => Just(Val::Null), 4 => value].boxed()
}

fn row() -> impl Strategy<Value = TestRow> {
    (0..COLUMNS.len())
        .map(val)
        .collect::<Vec<_>>()
        .prop_map(TestRow::new)
}

/// Any JSON a rule might hold: numbers of every size, time-like strings, patterns, nesting.
fn constant() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        edge_i64().prop_map(Value::from),
        edge_f64().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        text().prop_map(Value::from),
        "[\\\\()\\[\\]{}*+?|^$.a:P<>!=,0-9-]{0,8}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Value::from)
    })
}

const OPS: [&str; 19] = [
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "between",
    "in",
    "not_in",
    "is_null",
    "not_null",
    "contains",
    "starts_with",
    "ends_with",
    "matches",
    "within",
    "older_than",
    "~",
    "",
];

fn condition() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            (0..COLUMNS.len()).prop_map(|i| COLUMNS[i].0.to_string()),
            Just("nope".to_string())
        ],
        0..OPS.len(),
        constant(),
        prop::option::of(text()),
    )
        .prop_map(|(attr, op, value, as_of)| {
            let mut c = json!({"attr": attr, "op": OPS[op], "value": value});
            if let Some(as_of) = as_of {
                c["as_of"] = Value::from(as_of);
            }
            c
        })
}

fn rule() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![8 => condition(), 1 => Just(Value::Bool(true)), 1 => constant()];
    // deep enough to pass the nesting limit now and then
    leaf.prop_recursive(40, 64, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({"all": v})),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| json!({"any": v})),
            inner.prop_map(|r| json!({"not": r})),
        ]
    })
}

/// An integer's numeric datum digits: base 10000, most significant first.
fn numeric_of(a: i64) -> (bool, i32, Vec<u8>) {
    let mut m = a.unsigned_abs();
    let mut groups = vec![];
    while m > 0 {
        groups.push((m % 10_000) as u16);
        m /= 10_000;
    }
    let weight = groups.len() as i32 - 1;
    groups.reverse();
    (
        a < 0,
        weight.max(0),
        groups.iter().flat_map(|g| g.to_ne_bytes()).collect(),
    )
}

proptest! {
    #[test]
    fn any_rule_compiles_or_is_refused_and_evaluates_consistently(
        rules in prop::collection::vec(rule(), 1..4),
        rows in prop::collection::vec(row(), 1..8),
        overlapping in any::<bool>(),
    ) {
        for (i, r) in rules.iter().enumerate() {
            if let Ok(parsed) = parse(r, "rule") {
                if let Ok(expr) = compile(&parsed, &Schema, 0) {
                    for row in &rows {
                        let pass = expr.eval(row);
                        prop_assert_eq!(&expr.explain(row)["pass"], &Value::Bool(pass), "rule {}", i);
                    }
                }
            }
        }
        let def = RulesetDef {
            segmentation: "fuzz".into(),
            mode: if overlapping { super::ruleset::Mode::Overlapping } else { super::ruleset::Mode::Exclusive },
            default_segment: "Other".into(),
            as_of: None,
            segments: rules.iter().enumerate().map(|(i, r)| SegmentDef {
                name: format!("s{i}"),
                parent: None,
                priority: i as i32,
                rule: r.clone(),
            }).collect(),
            key_column: None,
            related: Default::default(),
        };
        if let Ok(rs) = Ruleset::compile(&def, &Schema, 0) {
            let sql = to_sql(&rs);
            prop_assert!(sql.contains("CASE") || rs.segments.is_empty() || sql.starts_with('\''));
            for row in &rows {
                let seg = rs.segment_of(row);
                prop_assert!(seg.is_none_or(|s| s < rs.segments.len()));
                let _ = rs.matches(row);
                let _ = rs.explain(row);
            }
        }
    }

    #[test]
    fn integers_compare_alike_as_integers_and_as_numerics(a in edge_i64(), b in edge_f64(), exact in any::<bool>()) {
        let b = if b.is_finite() { b } else { 0.5 }; // JSON numbers are finite
        // as JSON gives it: an exact integer when the number is one, else only the double
        let int = (exact && b.fract() == 0.0 && b.abs() < 9e18).then_some(b as i64);
        let number = Number::new(b, int);
        let (negative, weight, digits) = numeric_of(a);
        let as_numeric = number.cmp_numeric(&Numeric::Finite { negative, weight, digits: &digits });
        prop_assert_eq!(number.cmp_int(a), as_numeric);
        // the float path orders the same way whenever the integer is exact in a double
        if (a as f64) as i64 == a && a.unsigned_abs() < (1 << 53) {
            prop_assert_eq!(number.cmp_float(a as f64), number.cmp_int(a));
        }
        prop_assert_eq!(number.cmp_float(f64::NAN), Ordering::Greater);
    }

    #[test]
    fn patterns_translate_or_are_refused(p in "[\\\\()\\[\\]{}*+?|^$.a-c:P<>!=,0-9dDwWsSbBpn&~ é-]{0,12}") {
        if let Ok(rust) = pattern::translate(&p) {
            prop_assert!(regex::RegexBuilder::new(&rust).dot_matches_new_line(true).build().is_ok(), "{} -> {}", p, rust);
        }
    }
}
