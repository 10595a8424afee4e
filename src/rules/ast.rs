//! The rule language as parsed from jsonb, before it meets a relation's columns.
//!
//! ```json
//! {"all": [{"attr": "employees", "op": ">=", "value": 1000},
//!          {"not": {"attr": "country", "op": "=", "value": "US"}}]}
//! ```

use crate::error::{Result, SegError};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    True,
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Not(Box<Rule>),
    Cond(Cond),
    /// Nearest-centroid membership (clusters turned into segments).
    Nearest(Nearest),
    /// A model's probability compared with a value.
    Score(Box<super::score::ScoreRule>),
    /// The points of the sub-rules a row meets, added up and compared with a value.
    Points(Box<super::points::PointsRule>),
    /// An aggregate of the account's rows in a related relation, compared with a value.
    Related(Box<super::related::RelatedRule>),
    /// Membership in a segment of another segmentation.
    InSegment(super::reference::InSegmentRule),
}

impl Rule {
    /// Whether the rule compares against the current time (`within` / `older_than` without `as_of`), so a
    /// compiled copy is only good for the transaction it was compiled in.
    pub fn reads_clock(&self) -> bool {
        match self {
            Rule::All(rules) | Rule::Any(rules) => rules.iter().any(Rule::reads_clock),
            Rule::Not(rule) => rule.reads_clock(),
            Rule::Cond(c) => c.op.is_window() && c.as_of.is_none(),
            Rule::Points(p) => p.parts.iter().any(|part| part.rule.reads_clock()),
            Rule::Related(r) => r.reads_clock(),
            // the referenced segmentation's rules may read it: recompile with every transaction
            Rule::InSegment(_) => true,
            Rule::True | Rule::Nearest(_) | Rule::Score(_) => false,
        }
    }

    /// Whether evaluating the rule reads tables besides the row: a behavioral condition (a related table) or
    /// a segment reference (another segmentation's definitions).
    pub fn reads_tables(&self) -> bool {
        match self {
            Rule::All(rules) | Rule::Any(rules) => rules.iter().any(Rule::reads_tables),
            Rule::Not(rule) => rule.reads_tables(),
            Rule::Points(p) => p.parts.iter().any(|part| part.rule.reads_tables()),
            Rule::Related(_) | Rule::InSegment(_) => true,
            Rule::True | Rule::Cond(_) | Rule::Nearest(_) | Rule::Score(_) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub path: String,
    /// a column, or `column.key.key` for a field of a jsonb column
    pub attr: String,
    /// `{"length": column, ...}`: the condition compares the number of elements (characters) of the column
    pub length: bool,
    pub op: Op,
    pub value: Value,
    /// `"value": {"attr": column}`: compared with another column of the same row
    pub other: Option<String>,
    /// text compared with ASCII letters folded to lower case
    pub ignore_case: bool,
    /// Explicit reference time for `within` / `older_than` / `within_next` / `later_than`.
    pub as_of: Option<String>,
}

/// `{"nearest": {"features": [..], "centroids": [[..], ..], "cluster": i, "center": [..], "scale": [..]}}`:
/// the row belongs to cluster `i` when its (scaled) feature vector is closer to centroid `i` than to any other.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest {
    pub path: String,
    pub features: Vec<String>,
    pub centroids: Vec<Vec<f64>>,
    pub cluster: usize,
    pub center: Vec<f64>,
    pub scale: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Between,
    In,
    NotIn,
    IsNull,
    NotNull,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Within,
    OlderThan,
    WithinNext,
    LaterThan,
    Has,
    HasAny,
    HasAll,
    IsEmpty,
}

pub const OPERATORS: &str =
    "=, !=, <, <=, >, >=, between, in, not_in, is_null, not_null, contains, starts_with, \
                             ends_with, matches, within, older_than, within_next, later_than, has, has_any, \
                             has_all, is_empty";
const NODE_KEYS: &str =
    "\"all\", \"any\", \"not\", \"nearest\", true, a condition {\"attr\", \"op\", \"value\"}, a score {\"score\", \"op\", \"value\"}, points {\"points\", \"op\", \"value\"}, a behavioral condition {\"related\", \"agg\", \"op\", \"value\"} or a segment reference {\"in_segment\", \"of\"}";

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "=" => Op::Eq,
            "!=" | "<>" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "between" => Op::Between,
            "in" => Op::In,
            "not_in" => Op::NotIn,
            "is_null" => Op::IsNull,
            "not_null" => Op::NotNull,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            "matches" => Op::Matches,
            "within" => Op::Within,
            "older_than" => Op::OlderThan,
            "within_next" => Op::WithinNext,
            "later_than" => Op::LaterThan,
            "has" => Op::Has,
            "has_any" => Op::HasAny,
            "has_all" => Op::HasAll,
            "is_empty" => Op::IsEmpty,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Between => "between",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::IsNull => "is_null",
            Op::NotNull => "not_null",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Matches => "matches",
            Op::Within => "within",
            Op::OlderThan => "older_than",
            Op::WithinNext => "within_next",
            Op::LaterThan => "later_than",
            Op::Has => "has",
            Op::HasAny => "has_any",
            Op::HasAll => "has_all",
            Op::IsEmpty => "is_empty",
        }
    }

    fn takes_value(self) -> bool {
        !matches!(self, Op::IsNull | Op::NotNull | Op::IsEmpty)
    }

    /// A time window relative to as-of (now unless given): `within`, `older_than`, `within_next`, `later_than`.
    pub fn is_window(self) -> bool {
        matches!(
            self,
            Op::Within | Op::OlderThan | Op::WithinNext | Op::LaterThan
        )
    }

    /// An ordering comparison of one value with one value.
    pub fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }
}

/// How deeply `all` / `any` / `not` may nest: deeper trees are refused at save time (54001), so that
/// evaluation, explain and to_sql never recurse further.
pub const MAX_RULE_DEPTH: usize = 32;

/// Parses a rule; `path` names the node in error messages (e.g. `rule` or `rule.all[1]`).
pub fn parse(json: &Value, path: &str) -> Result<Rule> {
    parse_at(json, path, 0)
}

fn parse_at(json: &Value, path: &str, depth: usize) -> Result<Rule> {
    if depth > MAX_RULE_DEPTH {
        return Err(SegError::TooComplex {
            message: format!("rule nesting at {path} is deeper than {MAX_RULE_DEPTH} levels"),
            hint: "flatten the rule: \"all\" and \"any\" take any number of conditions".into(),
        });
    }
    match json {
        Value::Bool(true) => Ok(Rule::True),
        Value::Object(map) => {
            if map.len() == 1 {
                let (key, inner) = map.iter().next().unwrap();
                let child_path = format!("{path}.{key}");
                match key.as_str() {
                    "all" | "any" => {
                        let items = inner.as_array().ok_or_else(|| {
                            SegError::invalid_rule(
                                &child_path,
                                format!("\"{key}\" takes an array of rules"),
                                "",
                            )
                        })?;
                        let rules = items
                            .iter()
                            .enumerate()
                            .map(|(i, r)| parse_at(r, &format!("{child_path}[{i}]"), depth + 1))
                            .collect::<Result<Vec<_>>>()?;
                        return Ok(if key == "all" {
                            Rule::All(rules)
                        } else {
                            Rule::Any(rules)
                        });
                    }
                    "not" => {
                        return Ok(Rule::Not(Box::new(parse_at(
                            inner,
                            &child_path,
                            depth + 1,
                        )?)))
                    }
                    "nearest" => return parse_nearest(inner, &child_path).map(Rule::Nearest),
                    _ => {}
                }
            }
            if super::score::is_score(map) {
                return super::score::parse(map, path).map(|r| Rule::Score(Box::new(r)));
            }
            if super::reference::is_reference(map) {
                return super::reference::parse(map, path).map(Rule::InSegment);
            }
            if super::related::is_related(map) {
                return super::related::parse(map, path, &|r, p| parse_at(r, p, depth + 1))
                    .map(|r| Rule::Related(Box::new(r)));
            }
            if super::points::is_points(map) {
                return super::points::parse(map, path, &|r, p| parse_at(r, p, depth + 1))
                    .map(|r| Rule::Points(Box::new(r)));
            }
            parse_cond(map, path).map(Rule::Cond)
        }
        _ => Err(SegError::invalid_rule(
            path,
            format!("expected a rule, found {json}"),
            format!("a rule is {NODE_KEYS}"),
        )),
    }
}

fn parse_cond(map: &serde_json::Map<String, Value>, path: &str) -> Result<Cond> {
    const KEYS: &str = "a condition has the keys attr (or length), op, value, ignore_case and (for time windows) as_of";
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "attr" | "length" | "op" | "value" | "as_of" | "ignore_case"
        ) {
            return Err(SegError::invalid_rule(
                &format!("{path}.{key}"),
                format!("unknown key \"{key}\""),
                format!("a rule is {NODE_KEYS}; {KEYS}"),
            ));
        }
    }
    let length = map.contains_key("length");
    let attr_key = if length { "length" } else { "attr" };
    let attr = match map.get(attr_key) {
        Some(Value::String(s)) if !s.is_empty() && !(length && map.contains_key("attr")) => {
            s.clone()
        }
        _ => {
            return Err(SegError::invalid_rule(
                &format!("{path}.{attr_key}"),
                "a condition needs \"attr\" (a column name) or \"length\" (an array or text column), not both",
                format!("a rule is {NODE_KEYS}"),
            ))
        }
    };
    let op_path = format!("{path}.op");
    let op = match map.get("op") {
        Some(Value::String(s)) => Op::parse(s).ok_or_else(|| {
            SegError::invalid_rule(
                &op_path,
                format!("unknown operator \"{s}\""),
                format!("valid operators: {OPERATORS}"),
            )
        })?,
        _ => {
            return Err(SegError::invalid_rule(
                &op_path,
                "a condition needs \"op\"",
                format!("valid operators: {OPERATORS}"),
            ))
        }
    };
    let vpath = format!("{path}.value");
    let mut value = map.get("value").cloned().unwrap_or(Value::Null);
    if op.takes_value() && value.is_null() {
        return Err(SegError::invalid_rule(
            &vpath,
            format!("operator \"{}\" needs a value", op.name()),
            "use is_null / not_null to test for NULL",
        ));
    }
    // {"attr": column} as the value: the other column of the row
    let mut other = None;
    if let Value::Object(o) = &value {
        match (o.get("attr"), o.len()) {
            (Some(Value::String(col)), 1) if !col.is_empty() && op.is_comparison() => {
                other = Some(col.clone());
                value = Value::Null;
            }
            _ => {
                return Err(SegError::invalid_rule(
                    &vpath,
                    "an object as the value names another column: {\"attr\": column}, compared with =, !=, <, <=, > or >=",
                    "e.g. {\"attr\": \"arr\", \"op\": \"<\", \"value\": {\"attr\": \"arr_last_year\"}}",
                ))
            }
        }
    }
    if length && !(op.is_comparison() || matches!(op, Op::Between | Op::In | Op::NotIn)) {
        return Err(SegError::invalid_rule(
            &op_path,
            format!(
                "a length compares with =, !=, <, <=, >, >=, between, in or not_in, not \"{}\"",
                op.name()
            ),
            "e.g. {\"length\": \"tech_stack\", \"op\": \">=\", \"value\": 3}",
        ));
    }
    let ignore_case = match map.get("ignore_case") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true))
            if !length
                && other.is_none()
                && matches!(
                    op,
                    Op::Eq | Op::Ne | Op::In | Op::NotIn | Op::Contains | Op::StartsWith | Op::EndsWith
                ) =>
        {
            true
        }
        Some(_) => {
            return Err(SegError::invalid_rule(
                &format!("{path}.ignore_case"),
                "\"ignore_case\" is true or false and goes with =, !=, in, not_in, contains, starts_with and ends_with of a text value",
                "for a pattern, write both cases in it: [Aa]cme",
            ))
        }
    };
    let as_of = match map.get("as_of") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if op.is_window() => Some(s.clone()),
        Some(_) => {
            return Err(SegError::invalid_rule(
                &format!("{path}.as_of"),
                "\"as_of\" is a timestamp string and goes only with within, older_than, within_next and later_than",
                "",
            ))
        }
    };
    Ok(Cond {
        path: path.to_string(),
        attr,
        length,
        op,
        value,
        other,
        ignore_case,
        as_of,
    })
}

fn parse_nearest(json: &Value, path: &str) -> Result<Nearest> {
    let bad = |what: &str| {
        SegError::invalid_rule(
            path,
            format!("\"nearest\" {what}"),
            "the rule is written by segments.segmentation_from_clusters",
        )
    };
    let obj = json.as_object().ok_or_else(|| bad("takes an object"))?;
    let floats =
        |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(|x| x.as_f64()).collect() };
    let features: Vec<String> = obj
        .get("features")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().map(|x| x.as_str().map(str::to_string)).collect())
        .ok_or_else(|| bad("needs \"features\", an array of column names"))?;
    let centroids: Vec<Vec<f64>> = obj
        .get("centroids")
        .and_then(|v| v.as_array())
        .and_then(|a| a.iter().map(floats).collect())
        .ok_or_else(|| bad("needs \"centroids\", an array of number arrays"))?;
    let cluster = obj
        .get("cluster")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("needs \"cluster\", an index"))? as usize;
    let d = features.len();
    let center = obj
        .get("center")
        .map(floats)
        .unwrap_or(Some(vec![0.0; d]))
        .ok_or_else(|| bad("\"center\" must be numbers"))?;
    let scale = obj
        .get("scale")
        .map(floats)
        .unwrap_or(Some(vec![1.0; d]))
        .ok_or_else(|| bad("\"scale\" must be numbers"))?;
    if d == 0
        || centroids.is_empty()
        || centroids.iter().any(|c| c.len() != d)
        || center.len() != d
        || scale.len() != d
    {
        return Err(bad(
            "needs centroids, center and scale of the same length as features",
        ));
    }
    if cluster >= centroids.len() {
        return Err(bad("has a cluster index beyond its centroids"));
    }
    if scale.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        return Err(bad("has a zero or non-finite scale"));
    }
    Ok(Nearest {
        path: path.to_string(),
        features,
        centroids,
        cluster,
        center,
        scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_nested_rules() {
        let r = parse(
            &json!({"all": [{"attr": "a", "op": ">=", "value": 1}, {"any": [true, {"not": {"attr": "b", "op": "is_null"}}]}]}),
            "rule",
        )
        .unwrap();
        match r {
            Rule::All(v) => {
                assert_eq!(v.len(), 2);
                assert!(matches!(&v[1], Rule::Any(w) if w[0] == Rule::True));
            }
            _ => panic!("expected all"),
        }
    }

    #[test]
    fn error_names_json_path() {
        let e = parse(
            &json!({"all": [true, {"any": [{"attr": "x", "op": "~~", "value": 1}]}]}),
            "rule",
        )
        .unwrap_err();
        assert_eq!(e.detail().unwrap(), "JSON path: rule.all[1].any[0].op");
        assert_eq!(e.sqlstate(), "22023");
        let e = parse(&json!({"attr": "x", "opp": "="}), "rule").unwrap_err();
        assert_eq!(e.detail().unwrap(), "JSON path: rule.opp");
        let e = parse(&json!({"attr": "x", "op": "="}), "rule").unwrap_err();
        assert_eq!(e.detail().unwrap(), "JSON path: rule.value");
        assert!(parse(&json!(false), "rule").is_err());
        assert!(parse(&json!({"all": 3}), "rule").is_err());
    }
}
