//! Model scores in rules: `{"score": <a model from segments.logistic_regression>, "op": ">=", "value": 0.6}`
//! is true when the model's probability for the row compares so (false when the probability is NULL: a NULL
//! feature or a category level the model has not seen). Compiled, evaluated, explained and written as SQL
//! here, like every other condition.

use super::ast::Op;
use super::compile::{Cell, Check, ColumnType, Columns, Row, Scalar};
use super::number::Number;
use super::sql::{catalog_op, float_literal, ordering_sql, quote_ident, quote_literal};
use crate::error::{Result, SegError};
use crate::models::logistic::{probability_of, FeatureKind, Scorer, Value as Feature};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRule {
    pub path: String,
    pub scorer: Scorer,
    pub op: Op,
    pub value: Value,
}

/// Parses `{"score": model, "op": ..., "value": ...}`.
pub fn parse(map: &Map<String, Value>, path: &str) -> Result<ScoreRule> {
    for key in map.keys() {
        if !matches!(key.as_str(), "score" | "op" | "value") {
            return Err(SegError::invalid_rule(
                &format!("{path}.{key}"),
                format!("unknown key \"{key}\""),
                "a score condition has the keys score (a model), op and value",
            ));
        }
    }
    let scorer = Scorer::from_json(&map["score"]).map_err(|e| {
        SegError::invalid_rule(
            &format!("{path}.score"),
            e.to_string(),
            "put the value of segments.logistic_regression() there",
        )
    })?;
    let op = match map.get("op").and_then(Value::as_str).and_then(Op::parse) {
        Some(op @ (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Between)) => op,
        _ => {
            return Err(SegError::invalid_rule(
                &format!("{path}.op"),
                "a score compares with =, !=, <, <=, >, >= or between",
                "e.g. {\"score\": model, \"op\": \">=\", \"value\": 0.6}",
            ))
        }
    };
    Ok(ScoreRule {
        path: path.to_string(),
        scorer,
        op,
        value: map.get("value").cloned().unwrap_or(Value::Null),
    })
}

#[derive(Debug, Clone)]
pub struct ScoreTest {
    pub rule: ScoreRule,
    cols: Vec<usize>,
    check: Check,
}

fn probability_value(v: &Value, path: &str) -> Result<Scalar> {
    match v.as_f64() {
        Some(p) => Ok(Scalar::Num(Number::new(p, v.as_i64()))),
        None => Err(SegError::type_mismatch(
            path,
            format!("a score compares with a number, not {v}"),
            "e.g. 0.6",
        )),
    }
}

/// Resolves the model's features against the columns and its comparison against its value.
pub fn compile(rule: &ScoreRule, columns: &dyn Columns) -> Result<ScoreTest> {
    let mut cols = vec![];
    for f in &rule.scorer.features {
        let fits = |ty: &ColumnType| match f.kind {
            FeatureKind::Number => ty.is_number(),
            FeatureKind::Boolean => *ty == ColumnType::Bool,
            FeatureKind::Category(_) => *ty == ColumnType::Text,
        };
        match columns.lookup(&f.name) {
            None => {
                return Err(SegError::UnknownAttribute {
                    path: format!("{}.score.features", rule.path),
                    attr: f.name.clone(),
                    source_name: columns.relation_name(),
                    hint: format!(
                        "the model needs the column; available columns: {}",
                        columns.names().join(", ")
                    ),
                })
            }
            Some((_, ty)) if !fits(&ty) => {
                return Err(SegError::type_mismatch(
                    &format!("{}.score.features", rule.path),
                    format!(
                        "column \"{}\" is {}, not what the model was fitted on",
                        f.name,
                        ty.describe()
                    ),
                    "score rows of the relation the model was fitted on",
                ))
            }
            Some((col, _)) => cols.push(col),
        }
    }
    let vpath = format!("{}.value", rule.path);
    let check = match (rule.op, rule.value.as_array().map(Vec::as_slice)) {
        (Op::Between, Some([lo, hi])) => Check::Between(
            probability_value(lo, &format!("{vpath}[0]"))?,
            probability_value(hi, &format!("{vpath}[1]"))?,
        ),
        (Op::Between, _) => {
            return Err(SegError::invalid_rule(
                &vpath,
                "\"between\" takes [low, high]",
                "e.g. [0.3, 0.6]",
            ))
        }
        (op, _) => Check::Compare(op, probability_value(&rule.value, &vpath)?),
    };
    Ok(ScoreTest {
        rule: rule.clone(),
        cols,
        check,
    })
}

impl ScoreTest {
    /// The columns of the model's features.
    pub fn columns(&self) -> &[usize] {
        &self.cols
    }

    /// The model's probability for the row, or None (a NULL feature, an unseen level).
    pub fn probability<R: Row + ?Sized>(&self, row: &R) -> Option<f64> {
        let features = &self.rule.scorer.features;
        self.rule
            .scorer
            .log_odds(|j| feature_value(row, self.cols[j], &features[j].kind))
            .map(probability_of)
    }

    pub fn eval<R: Row + ?Sized>(&self, row: &R) -> bool {
        self.probability(row)
            .is_some_and(|p| self.check.eval(Cell::Float(p)))
    }

    pub fn explain(&self, row: &dyn Row) -> Value {
        let p = self.probability(row);
        json!({"score": {"features": self.rule.scorer.features.iter().map(|f| f.name.clone()).collect::<Vec<_>>()},
               "op": self.rule.op.name(), "value": self.rule.value, "probability": p, "pass": self.eval(row)})
    }

    /// The probability as SQL over the row's columns, computed in the order the evaluator computes it.
    fn probability_sql(&self) -> String {
        let (plus, times) = (catalog_op("+"), catalog_op("*"));
        let beta = &self.rule.scorer.beta;
        let mut eta = format!("({}::pg_catalog.float8", float_literal(beta[0]));
        let mut at = 1;
        for f in &self.rule.scorer.features {
            let col = quote_ident(&f.name);
            let term = match &f.kind {
                // a NaN or infinite value scores NULL, as in the evaluator: abs(x) < Infinity is false for
                // both (PostgreSQL sorts NaN above Infinity)
                FeatureKind::Number => format!(
                    "((CASE WHEN pg_catalog.abs({col}::pg_catalog.float8) {} 'Infinity'::pg_catalog.float8 THEN {col}::pg_catalog.float8 END) {times} {})",
                    catalog_op("<"),
                    float_literal(beta[at])
                ),
                FeatureKind::Boolean => {
                    format!(
                        "({col}::pg_catalog.int4::pg_catalog.float8 {times} {})",
                        float_literal(beta[at])
                    )
                }
                FeatureKind::Category(levels) => {
                    // no ELSE: a level the model has not seen gives NULL, as in the evaluator
                    let text = format!("({col}::pg_catalog.text COLLATE pg_catalog.\"C\")");
                    let whens: Vec<String> = levels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            let b = if i == 0 {
                                "0".to_string()
                            } else {
                                float_literal(beta[at + i - 1])
                            };
                            format!(
                                "WHEN {text} {} {} THEN {b}::pg_catalog.float8",
                                catalog_op("="),
                                quote_literal(l)
                            )
                        })
                        .collect();
                    format!("(CASE {} END)", whens.join(" "))
                }
            };
            at += match &f.kind {
                FeatureKind::Category(levels) => levels.len() - 1,
                _ => 1,
            };
            eta = format!("({eta} {plus} {term})");
        }
        eta.push(')');
        // ½ + ½·tanh(η/2), as probability_of computes it
        let half = "0.5::pg_catalog.float8";
        format!("({half} {plus} ({half} {times} pg_catalog.tanh({half} {times} {eta})))")
    }

    pub fn sql(&self) -> String {
        let p = self.probability_sql();
        let lit = |s: &Scalar| match s {
            Scalar::Num(n) => n.literal().to_string(),
            _ => "NULL".into(),
        };
        let body = ordering_sql(&p, &self.check, &lit);
        format!("COALESCE({body}, false)")
    }
}

/// A row's value of one model feature: a finite number, a boolean or a text level; None for NULL, NaN, an
/// infinity or a column of another kind (the model then scores NULL).
pub fn feature_value<'r, R: Row + ?Sized>(
    row: &'r R,
    col: usize,
    kind: &FeatureKind,
) -> Option<Feature<'r>> {
    match (kind, row.cell(col)) {
        (_, Cell::Null) => None,
        (FeatureKind::Number, _) => row
            .float(col)
            .filter(|x| x.is_finite())
            .map(Feature::Number),
        (FeatureKind::Boolean, Cell::Bool(b)) => Some(Feature::Boolean(b)),
        (FeatureKind::Category(_), Cell::Text(t)) => Some(Feature::Level(t)),
        _ => None,
    }
}

/// Whether a rule object is a score condition.
pub fn is_score(map: &Map<String, Value>) -> bool {
    map.contains_key("score")
}
