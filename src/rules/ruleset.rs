//! A segmentation's segments as one self-contained value (the jsonb that `segments.ruleset()` returns and
//! `segments.classify()` takes), compiled into a priority-ordered tree that assigns rows.

use super::ast::{parse, Rule};
use super::compile::{compile, Columns, Expr, Row};
use super::time::parse_timestamp;
use crate::error::{Result, SegError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Exclusive,
    Overlapping,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RulesetDef {
    pub segmentation: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "default_segment")]
    pub default_segment: String,
    /// Reference time for `within` / `older_than`; `ruleset()` stamps it so `classify` stays IMMUTABLE.
    #[serde(default)]
    pub as_of: Option<String>,
    pub segments: Vec<SegmentDef>,
    /// the source's account key column (behavioral conditions look the account up by it)
    #[serde(default)]
    pub key_column: Option<String>,
    /// the related sources behavioral conditions read, by name
    #[serde(default)]
    pub related: std::collections::BTreeMap<String, super::related::RelatedDecl>,
}

fn default_segment() -> String {
    "Unsegmented".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentDef {
    pub name: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub priority: i32,
    pub rule: Value,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    /// `Enterprise > Healthcare`
    pub path: String,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub priority: i32,
    pub rule: Rule,
    pub expr: Expr,
}

/// Compiled segments, sorted by (priority, name); `roots` and `children` keep that order.
#[derive(Debug, Clone)]
pub struct Ruleset {
    pub name: String,
    pub mode: Mode,
    pub default_segment: String,
    pub segments: Vec<Segment>,
    pub roots: Vec<usize>,
}

impl RulesetDef {
    pub fn from_json(v: &Value) -> Result<Self> {
        serde_json::from_value(v.clone()).map_err(|e| {
            SegError::invalid_argument(
                format!("invalid ruleset: {e}"),
                "pass the value of segments.ruleset(segmentation)",
            )
        })
    }
}

/// Parses every segment's rule and orders the segments; no columns needed (used by validation and to_sql).
pub fn parse_segments(def: &RulesetDef) -> Result<Vec<(SegmentDef, Rule, Option<usize>)>> {
    let mut defs: Vec<&SegmentDef> = def.segments.iter().collect();
    defs.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    let index = |name: &str| defs.iter().position(|d| d.name == name);
    let mut out = Vec::with_capacity(defs.len());
    for d in &defs {
        if index(&d.name) != defs.iter().rposition(|x| x.name == d.name) {
            return Err(SegError::invalid_argument(
                format!("segment \"{}\" is defined twice", d.name),
                "",
            ));
        }
        let parent = match &d.parent {
            None => None,
            Some(p) => Some(index(p).ok_or_else(|| SegError::Hierarchy {
                message: format!(
                    "parent \"{p}\" of segment \"{}\" is not an active segment of \"{}\"",
                    d.name, def.segmentation
                ),
                hint: "a parent must be an active segment of the same segmentation".into(),
            })?),
        };
        out.push((
            (*d).clone(),
            parse(&d.rule, &format!("segment \"{}\" rule", d.name))?,
            parent,
        ));
    }
    // A cycle makes some segment its own ancestor.
    for start in 0..out.len() {
        let (mut at, mut steps) = (out[start].2, 0);
        while let Some(p) = at {
            steps += 1;
            if p == start || steps > out.len() {
                return Err(SegError::Hierarchy {
                    message: format!("segment \"{}\" is its own ancestor", out[start].0.name),
                    hint: "parents must form a tree (macro > micro)".into(),
                });
            }
            at = out[p].2;
        }
    }
    Ok(out)
}

impl Ruleset {
    /// Whether evaluation depends on the time the ruleset was compiled at (see `Rule::reads_clock`).
    pub fn reads_clock(&self) -> bool {
        self.segments.iter().any(|s| s.rule.reads_clock())
    }

    /// Whether some rule reads a related table (a behavioral condition, here or in a referenced segmentation).
    pub fn reads_related(&self) -> bool {
        let mut found = vec![];
        for s in &self.segments {
            super::sql::collect_related(&s.expr, &mut found);
        }
        !found.is_empty()
    }

    /// Compiles against `columns`; `now` is used unless the ruleset carries `as_of`.
    pub fn compile(def: &RulesetDef, columns: &dyn Columns, now: i64) -> Result<Ruleset> {
        let now = match &def.as_of {
            Some(s) => parse_timestamp(s).ok_or_else(|| SegError::InvalidDatetime {
                path: "ruleset.as_of".into(),
                what: "timestamp",
                value: s.clone(),
                hint: "as_of is an ISO timestamp".into(),
            })?,
            None => now,
        };
        let parsed = parse_segments(def)?;
        let mut segments: Vec<Segment> = Vec::with_capacity(parsed.len());
        for (d, rule, parent) in parsed {
            let expr = compile(&rule, columns, now)?;
            segments.push(Segment {
                name: d.name,
                path: String::new(),
                parent,
                children: vec![],
                priority: d.priority,
                rule,
                expr,
            });
        }
        let mut roots = vec![];
        for i in 0..segments.len() {
            match segments[i].parent {
                Some(p) => segments[p].children.push(i),
                None => roots.push(i),
            }
        }
        for i in 0..segments.len() {
            let mut names = vec![segments[i].name.clone()];
            let mut at = segments[i].parent;
            while let Some(p) = at {
                names.push(segments[p].name.clone());
                at = segments[p].parent;
            }
            names.reverse();
            segments[i].path = names.join(" > ");
        }
        Ok(Ruleset {
            name: def.segmentation.clone(),
            mode: def.mode,
            default_segment: def.default_segment.clone(),
            segments,
            roots,
        })
    }

    /// Exclusive assignment: the first matching root by priority, then its first matching child, and so on
    /// down to the most specific segment that matches. None means the default segment.
    pub fn assign<R: Row + ?Sized>(&self, row: &R) -> Option<usize> {
        let mut found = None;
        let mut level = &self.roots;
        while let Some(&i) = level.iter().find(|&&i| self.segments[i].expr.eval(row)) {
            found = Some(i);
            level = &self.segments[i].children;
        }
        found
    }

    /// Every segment whose rule and whose ancestors' rules all match, in (priority, name) order.
    pub fn matches<R: Row + ?Sized>(&self, row: &R) -> Vec<usize> {
        let mut out = vec![];
        let mut stack: Vec<usize> = self.roots.clone();
        while let Some(i) = stack.pop() {
            if self.segments[i].expr.eval(row) {
                out.push(i);
                stack.extend(&self.segments[i].children);
            }
        }
        out.sort_unstable();
        out
    }

    /// The segment `segment_of` reports: exclusive assignment, or in overlapping mode the first match.
    pub fn segment_of<R: Row + ?Sized>(&self, row: &R) -> Option<usize> {
        match self.mode {
            Mode::Exclusive => self.assign(row),
            Mode::Overlapping => self.matches(row).first().copied(),
        }
    }

    pub fn name_of(&self, seg: Option<usize>) -> &str {
        seg.map_or(self.default_segment.as_str(), |i| {
            self.segments[i].name.as_str()
        })
    }

    pub fn path_of(&self, seg: Option<usize>) -> &str {
        seg.map_or(self.default_segment.as_str(), |i| {
            self.segments[i].path.as_str()
        })
    }

    /// Segments depth-first: each root by priority, followed by its descendants.
    pub fn tree_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.segments.len());
        let mut stack: Vec<usize> = self.roots.iter().rev().copied().collect();
        while let Some(i) = stack.pop() {
            out.push(i);
            stack.extend(self.segments[i].children.iter().rev());
        }
        out
    }

    pub fn explain(&self, row: &dyn Row) -> Value {
        let seg = self.segment_of(row);
        let segments: Vec<Value> = self
            .tree_order()
            .into_iter()
            .map(|i| &self.segments[i])
            .map(|s| {
                json!({
                    "segment": s.name,
                    "parent": s.parent.map(|p| self.segments[p].name.clone()),
                    "priority": s.priority,
                    "pass": s.expr.eval(row),
                    "rule": s.expr.explain(row),
                })
            })
            .collect();
        json!({
            "segmentation": self.name,
            "mode": self.mode,
            "segment": self.name_of(seg),
            "path": self.path_of(seg),
            "matches": self.matches(row).iter().map(|&i| self.segments[i].name.clone()).collect::<Vec<_>>(),
            "segments": segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::compile::tests::{cols, TestRow, V};

    pub fn def(mode: &str) -> RulesetDef {
        RulesetDef::from_json(&json!({
            "segmentation": "gtm", "mode": mode, "default_segment": "Unsegmented",
            "segments": [
                {"name": "SMB", "priority": 20, "rule": true},
                {"name": "Enterprise", "priority": 10, "rule": {"attr": "employees", "op": ">=", "value": 1000}},
                {"name": "Healthcare", "parent": "Enterprise", "priority": 1, "rule": {"attr": "industry", "op": "=", "value": "Healthcare"}},
                {"name": "Retail", "parent": "Enterprise", "priority": 2, "rule": {"attr": "industry", "op": "=", "value": "Retail"}}
            ]
        }))
        .unwrap()
    }

    fn acct(employees: i64, industry: &'static str) -> TestRow {
        TestRow(vec![
            V::I(employees),
            V::T(industry),
            V::N,
            V::N,
            V::N,
            V::N,
        ])
    }

    #[test]
    fn exclusive_descends_to_most_specific() {
        let rs = Ruleset::compile(&def("exclusive"), &cols(), 0).unwrap();
        let seg = |r: &TestRow| rs.path_of(rs.segment_of(r)).to_string();
        assert_eq!(seg(&acct(5000, "Healthcare")), "Enterprise > Healthcare");
        assert_eq!(seg(&acct(5000, "Mining")), "Enterprise");
        assert_eq!(seg(&acct(50, "Healthcare")), "SMB");
        assert_eq!(rs.name_of(rs.segment_of(&acct(5000, "Retail"))), "Retail");
    }

    #[test]
    fn only_relative_time_rules_read_the_clock() {
        let with_rule = |rule: Value| {
            let mut d = def("exclusive");
            d.segments[0].rule = rule;
            Ruleset::compile(&d, &cols(), 0).unwrap().reads_clock()
        };
        assert!(!with_rule(json!(true)));
        assert!(with_rule(
            json!({"not": {"attr": "last_login_at", "op": "within", "value": "30 days"}})
        ));
        assert!(with_rule(
            json!({"any": [{"attr": "last_login_at", "op": "older_than", "value": "1 day"}]})
        ));
        assert!(!with_rule(
            json!({"attr": "last_login_at", "op": "older_than", "value": "1 day", "as_of": "2024-07-01"})
        ));
    }

    #[test]
    fn overlapping_lists_all_matches_in_priority_order() {
        let rs = Ruleset::compile(&def("overlapping"), &cols(), 0).unwrap();
        let names: Vec<_> = rs
            .matches(&acct(5000, "Healthcare"))
            .iter()
            .map(|&i| rs.segments[i].name.clone())
            .collect();
        assert_eq!(names, ["Healthcare", "Enterprise", "SMB"]);
        assert_eq!(
            rs.name_of(rs.segment_of(&acct(5000, "Healthcare"))),
            "Healthcare"
        );
    }

    #[test]
    fn default_segment_when_nothing_matches() {
        let mut d = def("exclusive");
        d.segments.retain(|s| s.name != "SMB");
        let rs = Ruleset::compile(&d, &cols(), 0).unwrap();
        assert_eq!(rs.name_of(rs.segment_of(&acct(5, "x"))), "Unsegmented");
        let e = rs.explain(&acct(5000, "Healthcare"));
        assert_eq!(e["path"], "Enterprise > Healthcare");
        assert_eq!(e["segments"][0]["segment"], "Enterprise");
        assert_eq!(e["segments"][1]["rule"]["actual"], "Healthcare");
    }

    #[test]
    fn hierarchy_faults() {
        let mut d = def("exclusive");
        d.segments[0].parent = Some("Nowhere".into());
        assert_eq!(parse_segments(&d).unwrap_err().sqlstate(), "22023");
        let mut d = def("exclusive");
        d.segments[1].parent = Some("Retail".into());
        let e = parse_segments(&d).unwrap_err();
        assert!(e.to_string().contains("own ancestor"), "{e}");
    }
}
