//! Points-based scores in rules: the sub-rules a row meets earn their points, and the total is compared with
//! a value — a health score written as a rule:
//!
//! ```json
//! {"points": [{"rule": {"attr": "logins_30d", "op": ">=", "value": 20}, "points": 40},
//!             {"rule": {"attr": "open_tickets", "op": ">=", "value": 3}, "points": -30}],
//!  "op": "<", "value": 20}
//! ```
//!
//! Points are whole numbers (|points| ≤ 1,000,000), so the total is exact in the evaluator and in SQL alike.

use super::ast::{Op, Rule};
use super::compile::{compile as compile_rule, Cell, Check, Columns, Expr, Row, Scalar};
use super::number::Number;
use super::sql::{catalog_op, expr_sql_in, ordering_sql, Form};
use crate::error::{Result, SegError};
use serde_json::{json, Map, Value};

const MAX_POINTS: i64 = 1_000_000;
const EXAMPLE: &str = "e.g. {\"points\": [{\"rule\": {\"attr\": \"nps\", \"op\": \">=\", \"value\": 9}, \"points\": 30}], \"op\": \">=\", \"value\": 50}";

#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub rule: Rule,
    pub points: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PointsRule {
    pub path: String,
    pub parts: Vec<Part>,
    pub op: Op,
    pub value: Value,
}

/// Whether a rule object is a points condition.
pub fn is_points(map: &Map<String, Value>) -> bool {
    map.contains_key("points")
}

/// Parses `{"points": [{"rule": r, "points": n}, ...], "op": ..., "value": ...}`; `parse_rule` reads the
/// sub-rules (one level deeper).
pub fn parse(
    map: &Map<String, Value>,
    path: &str,
    parse_rule: &dyn Fn(&Value, &str) -> Result<Rule>,
) -> Result<PointsRule> {
    for key in map.keys() {
        if !matches!(key.as_str(), "points" | "op" | "value") {
            return Err(SegError::invalid_rule(
                &format!("{path}.{key}"),
                format!("unknown key \"{key}\""),
                format!("a points condition has the keys points, op and value; {EXAMPLE}"),
            ));
        }
    }
    let ppath = format!("{path}.points");
    let items = map["points"]
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            SegError::invalid_rule(
                &ppath,
                "\"points\" takes a non-empty array of {\"rule\": ..., \"points\": n}",
                EXAMPLE,
            )
        })?;
    let mut parts = vec![];
    for (i, item) in items.iter().enumerate() {
        let at = format!("{ppath}[{i}]");
        let obj = item
            .as_object()
            .filter(|o| o.len() == 2 && o.contains_key("rule") && o.contains_key("points"))
            .ok_or_else(|| {
                SegError::invalid_rule(&at, "a part is {\"rule\": ..., \"points\": n}", EXAMPLE)
            })?;
        let points = obj["points"]
            .as_i64()
            .filter(|p| p.abs() <= MAX_POINTS)
            .ok_or_else(|| {
                SegError::invalid_rule(
                    &format!("{at}.points"),
                    format!(
                        "points are whole numbers between -{MAX_POINTS} and {MAX_POINTS}, not {}",
                        obj["points"]
                    ),
                    "scale the points: 25 rather than 0.25",
                )
            })?;
        parts.push(Part {
            rule: parse_rule(&obj["rule"], &format!("{at}.rule"))?,
            points,
        });
    }
    let op = match map.get("op").and_then(Value::as_str).and_then(Op::parse) {
        Some(op) if op.is_comparison() || op == Op::Between => op,
        _ => {
            return Err(SegError::invalid_rule(
                &format!("{path}.op"),
                "a points total compares with =, !=, <, <=, >, >= or between",
                EXAMPLE,
            ))
        }
    };
    Ok(PointsRule {
        path: path.to_string(),
        parts,
        op,
        value: map.get("value").cloned().unwrap_or(Value::Null),
    })
}

#[derive(Debug, Clone)]
pub struct PointsTest {
    pub rule: PointsRule,
    parts: Vec<(Expr, i64)>,
    check: Check,
}

pub fn compile(rule: &PointsRule, columns: &dyn Columns, now: i64) -> Result<PointsTest> {
    let parts = rule
        .parts
        .iter()
        .map(|p| Ok((compile_rule(&p.rule, columns, now)?, p.points)))
        .collect::<Result<Vec<_>>>()?;
    let vpath = format!("{}.value", rule.path);
    let number = |v: &Value, path: &str| match v {
        Value::Number(n) => Ok(Scalar::Num(Number::new(
            n.as_f64().unwrap_or_default(),
            n.as_i64(),
        ))),
        _ => Err(SegError::type_mismatch(
            path,
            format!("a points total compares with a number, not {v}"),
            EXAMPLE,
        )),
    };
    let check = match (rule.op, rule.value.as_array().map(Vec::as_slice)) {
        (Op::Between, Some([lo, hi])) => Check::Between(
            number(lo, &format!("{vpath}[0]"))?,
            number(hi, &format!("{vpath}[1]"))?,
        ),
        (Op::Between, _) => {
            return Err(SegError::invalid_rule(
                &vpath,
                "\"between\" takes [low, high]",
                "e.g. [20, 60]",
            ))
        }
        (op, _) => Check::Compare(op, number(&rule.value, &vpath)?),
    };
    Ok(PointsTest {
        rule: rule.clone(),
        parts,
        check,
    })
}

impl PointsTest {
    /// The parts' compiled rules.
    pub fn parts(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().map(|(e, _)| e)
    }

    pub fn total<R: Row + ?Sized>(&self, row: &R) -> i64 {
        self.parts
            .iter()
            .filter(|(e, _)| e.eval(row))
            .map(|(_, p)| p)
            .sum()
    }

    pub fn eval<R: Row + ?Sized>(&self, row: &R) -> bool {
        self.check.eval(Cell::Int(self.total(row)))
    }

    /// Each part's rule explained with the points it earned, the total and the outcome.
    pub fn explain(&self, row: &dyn Row) -> Value {
        let parts: Vec<Value> = self
            .parts
            .iter()
            .map(|(e, p)| {
                let met = e.eval(row);
                json!({"points": p, "earned": if met { *p } else { 0 }, "rule": e.explain(row)})
            })
            .collect();
        json!({"points": parts, "total": self.total(row), "op": self.rule.op.name(),
               "value": self.rule.value, "pass": self.eval(row)})
    }

    pub fn sql(&self, form: Form) -> String {
        let terms: Vec<String> = self
            .parts
            .iter()
            .map(|(e, p)| {
                format!(
                    "(CASE WHEN {} THEN {p} ELSE 0::pg_catalog.int8 END)",
                    expr_sql_in(e, form)
                )
            })
            .collect();
        let total = format!("({})", terms.join(&format!(" {} ", catalog_op("+"))));
        let lit = |s: &Scalar| match s {
            Scalar::Num(n) => n.literal().to_string(),
            _ => "NULL".into(),
        };
        format!(
            "COALESCE({}, false)",
            ordering_sql(&total, &self.check, &lit)
        )
    }
}
