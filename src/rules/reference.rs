//! Segment references: `{"in_segment": "Power users", "of": "engagement"}` is true when the row is in that
//! segment of another segmentation, as `segment_of` / `segments_of` of that segmentation would say: in an
//! exclusive one, assigned to the segment or one of its descendants; in an overlapping one, carrying it. The
//! referenced segmentation's rules are evaluated on the same row (so they must read columns the row has).
//! Save-time checks (unknown names with their JSON path, cycles, references to removed segments) are in
//! sql/definitions.sql; renames are carried to the referring rules there too.

use super::compile::{Columns, Expr, Row};
use super::ruleset::{Mode, Ruleset};
use super::sql::{catalog_op, expr_sql_in, quote_literal, to_sql_in, Form};
use crate::error::{Result, SegError};
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct InSegmentRule {
    pub path: String,
    pub segment: String,
    pub segmentation: String,
}

/// Whether a rule object is a segment reference.
pub fn is_reference(map: &Map<String, Value>) -> bool {
    map.contains_key("in_segment")
}

pub fn parse(map: &Map<String, Value>, path: &str) -> Result<InSegmentRule> {
    const EXAMPLE: &str = "e.g. {\"in_segment\": \"Power users\", \"of\": \"engagement\"}";
    for key in map.keys() {
        if !matches!(key.as_str(), "in_segment" | "of") {
            return Err(SegError::invalid_rule(
                &format!("{path}.{key}"),
                format!("unknown key \"{key}\""),
                format!("a segment reference has the keys in_segment and of; {EXAMPLE}"),
            ));
        }
    }
    let text = |key: &str| match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(SegError::invalid_rule(
            &format!("{path}.{key}"),
            format!("\"{key}\" takes a name"),
            format!("\"in_segment\" names a segment of the segmentation \"of\" names; {EXAMPLE}"),
        )),
    };
    Ok(InSegmentRule {
        path: path.to_string(),
        segment: text("in_segment")?,
        segmentation: text("of")?,
    })
}

#[derive(Debug, Clone)]
pub struct InSegmentTest {
    pub rule: InSegmentRule,
    pub ruleset: Arc<Ruleset>,
    target: usize,
    /// the segments whose assignment counts as being in the target (exclusive: it and its descendants)
    members: Vec<usize>,
}

pub fn compile(rule: &InSegmentRule, columns: &dyn Columns) -> Result<InSegmentTest> {
    let ruleset =
        columns
            .referenced(&rule.segmentation)?
            .ok_or_else(|| SegError::UnknownObject {
                path: format!("{}.of", rule.path),
                message: format!("segmentation \"{}\" does not exist", rule.segmentation),
                hint: "\"of\" names another segmentation".into(),
            })?;
    let target = ruleset
        .segments
        .iter()
        .position(|s| s.name == rule.segment)
        .ok_or_else(|| SegError::UnknownObject {
            path: format!("{}.in_segment", rule.path),
            message: format!(
                "segmentation \"{}\" has no active segment \"{}\"",
                rule.segmentation, rule.segment
            ),
            hint: format!(
                "its active segments: {}",
                ruleset
                    .segments
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    let mut members = vec![target];
    if ruleset.mode == Mode::Exclusive {
        let mut i = 0;
        while i < members.len() {
            members.extend(ruleset.segments[members[i]].children.iter().copied());
            i += 1;
        }
    }
    Ok(InSegmentTest {
        rule: rule.clone(),
        ruleset,
        target,
        members,
    })
}

impl InSegmentTest {
    pub fn eval<R: Row + ?Sized>(&self, row: &R) -> bool {
        match self.ruleset.mode {
            Mode::Exclusive => self
                .ruleset
                .assign(row)
                .is_some_and(|s| self.members.contains(&s)),
            Mode::Overlapping => self.ruleset.matches(row).contains(&self.target),
        }
    }

    pub fn explain(&self, row: &dyn Row) -> Value {
        let rs = &self.ruleset;
        let actual = match rs.mode {
            Mode::Exclusive => Value::from(rs.path_of(rs.assign(row))),
            Mode::Overlapping => Value::from(
                rs.matches(row)
                    .iter()
                    .map(|&i| rs.segments[i].name.clone())
                    .collect::<Vec<_>>(),
            ),
        };
        json!({"in_segment": self.rule.segment, "of": self.rule.segmentation, "actual": actual,
               "pass": self.eval(row)})
    }

    pub fn sql(&self, form: Form) -> String {
        let rs = &self.ruleset;
        match rs.mode {
            Mode::Exclusive => {
                let names: Vec<String> = self
                    .members
                    .iter()
                    .map(|&i| quote_literal(&rs.segments[i].name))
                    .collect();
                format!(
                    "COALESCE(({}) {} ANY (ARRAY[{}]::pg_catalog.text[]), false)",
                    to_sql_in(rs, form),
                    catalog_op("="),
                    names.join(", ")
                )
            }
            Mode::Overlapping => {
                let mut conds = vec![];
                let mut at = Some(self.target);
                while let Some(j) = at {
                    conds.push(expr_sql_in(&rs.segments[j].expr, form));
                    at = rs.segments[j].parent;
                }
                format!("({})", conds.join(" AND "))
            }
        }
    }

    /// The referenced segmentation's compiled segment rules.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.ruleset.segments.iter().map(|s| &s.expr)
    }
}
