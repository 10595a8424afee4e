//! A compiled ruleset written out as one plain SQL `CASE` expression over the source's columns, giving the
//! same answer as `segment_of` on every row (NULLs included: every test is wrapped so NULL counts as false).

use super::ast::Op;
use super::compile::{Check, ColumnType, Expr, NearestTest, Scalar, Target, Test};
use super::related::RelatedTest;
use super::ruleset::{Mode, Ruleset};
use super::time::{format_timestamp, parse_interval, Interval, TIMESTAMP_RANGE};

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal that means the same whatever `standard_conforming_strings` says.
pub fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// An operator of pg_catalog, named so that one planted on the reader's search_path is never chosen
/// (`OPERATOR(...)` binds like any other operator, tighter than comparisons: callers parenthesize).
pub(super) fn catalog_op(sym: &str) -> String {
    format!("OPERATOR(pg_catalog.{sym})")
}

pub(super) fn float_literal(f: f64) -> String {
    // {:?} keeps the shortest round-trip form and always has a digit after the point or an exponent
    let s = format!("{f:?}");
    if s.contains(['e', 'E']) {
        format!("'{s}'::pg_catalog.float8")
    } else {
        s
    }
}

fn scalar(s: &Scalar, ty: &ColumnType) -> String {
    match s {
        Scalar::Bool(b) => b.to_string(),
        Scalar::Num(n) => n.literal().to_string(),
        Scalar::Text(t) => quote_literal(t),
        Scalar::Time(t) => time_literal(*t, ty),
    }
}

pub(super) fn time_literal(t: i64, ty: &ColumnType) -> String {
    // a cutoff beyond the range (a window longer than history) is the infinity on its side
    let ts = if t < TIMESTAMP_RANGE.start {
        "-infinity".to_string()
    } else if t >= TIMESTAMP_RANGE.end {
        "infinity".to_string()
    } else {
        format_timestamp(t)
    };
    if !TIMESTAMP_RANGE.contains(&t) {
        let cast = if *ty == ColumnType::TimestampTz {
            "pg_catalog.timestamptz"
        } else {
            "pg_catalog.timestamp"
        };
        return format!("'{ts}'::{cast}");
    }
    match ty {
        ColumnType::TimestampTz => format!("'{ts}'::pg_catalog.timestamptz"),
        _ => format!("'{}'::pg_catalog.timestamp", &ts[..ts.len() - 3]),
    }
}

fn each_of(list: &[Scalar], test: &dyn Fn(&Scalar) -> String, joiner: &str) -> String {
    let tests: Vec<String> = list.iter().map(test).collect();
    format!("({})", tests.join(joiner))
}

/// The SQL of what a condition tests (a column, a field's JSON value, a length), and of that value read as
/// a constant's type: text of any kind (varchar, char(n) without its padding, name, a domain, any collation)
/// as segment_of compares it, as text byte by byte (the C collation), also for = and in; a JSON field as the
/// constant's JSON type, NULL when the field has another type.
struct Operand {
    /// the tested value itself (for IS NULL)
    value: String,
    target: Target,
    ty: ColumnType,
    fold: bool,
}

impl Operand {
    fn new(t: &Test) -> Operand {
        let value = match &t.target {
            Target::Column => quote_ident(&t.cond.attr),
            Target::Field(keys) => {
                let column = t.cond.attr.split_once('.').map_or("", |(c, _)| c);
                keys.iter().fold(quote_ident(column), |acc, k| {
                    format!(
                        "({acc} {} {}::pg_catalog.text)",
                        catalog_op("->"),
                        quote_literal(k)
                    )
                })
            }
            // char_length of text as segment_of counts it (char(n) without its padding)
            Target::Length { of_text: true } => format!(
                "pg_catalog.char_length({}::pg_catalog.text)",
                quote_ident(&t.cond.attr)
            ),
            Target::Length { of_text: false } => {
                format!("pg_catalog.cardinality({})", quote_ident(&t.cond.attr))
            }
        };
        Operand {
            value,
            target: t.target.clone(),
            ty: t.ty.clone(),
            fold: matches!(t.check, Check::IgnoreCase(_)),
        }
    }

    /// The value as text (for text tests).
    fn text(&self) -> String {
        let text = match self.target {
            Target::Field(_) => format!(
                "(CASE WHEN {} THEN ({} {} '{{}}'::pg_catalog.text[]) END COLLATE pg_catalog.\"C\")",
                self.json_type_is("string"),
                self.value,
                catalog_op("#>>")
            ),
            _ => format!("({}::pg_catalog.text COLLATE pg_catalog.\"C\")", self.value),
        };
        if self.fold {
            format!("pg_catalog.lower({text})")
        } else {
            text
        }
    }

    fn json_type_is(&self, name: &str) -> String {
        format!(
            "pg_catalog.jsonb_typeof({}) {} '{name}'",
            self.value,
            catalog_op("=")
        )
    }

    /// The value in the representation a constant compares with.
    fn as_scalar(&self, s: &Scalar) -> String {
        match (&self.target, s) {
            (_, Scalar::Text(_)) if self.ty == ColumnType::Text || self.ty == ColumnType::Json => {
                self.text()
            }
            (Target::Field(_), Scalar::Num(_)) => format!(
                "(CASE WHEN {} THEN {}::pg_catalog.numeric END)",
                self.json_type_is("number"),
                self.value
            ),
            (Target::Field(_), Scalar::Bool(_)) => format!(
                "(CASE WHEN {} THEN {}::pg_catalog.bool END)",
                self.json_type_is("boolean"),
                self.value
            ),
            _ => self.value.clone(),
        }
    }

    fn is_null(&self) -> String {
        match self.target {
            Target::Field(_) => {
                format!("({} IS NULL OR {})", self.value, self.json_type_is("null"))
            }
            _ => format!("({} IS NULL)", self.value),
        }
    }
}

fn test_sql(t: &Test) -> String {
    check_sql(t, Operand::new(t))
}

/// A test's check written on a value given as SQL (a behavioral condition's subquery).
pub(super) fn test_sql_on(t: &Test, value: String) -> String {
    let mut v = Operand::new(t);
    v.value = value;
    check_sql(t, v)
}

fn check_sql(t: &Test, v: Operand) -> String {
    let check = match &t.check {
        Check::IgnoreCase(inner) => inner.as_ref(),
        other => other,
    };
    let lit = |s: &Scalar| scalar(s, &t.ty);
    let cmp = |sym: &str, s: &Scalar| format!("{} {} {}", v.as_scalar(s), catalog_op(sym), lit(s));
    let body = match check {
        Check::IsNull => return v.is_null(),
        Check::NotNull => return format!("(NOT {})", v.is_null()),
        Check::Compare(op, s) => {
            ordering_sql(&v.as_scalar(s), &Check::Compare(*op, s.clone()), &lit)
        }
        Check::Between(lo, hi) => format!("{} AND {}", cmp(">=", lo), cmp("<=", hi)),
        // x IN (a, b) is x = a OR x = b; x NOT IN (a, b) is x <> a AND x <> b (the lists hold no NULL)
        Check::In(list) => each_of(list, &|s| cmp("=", s), " OR "),
        Check::NotIn(list) => each_of(list, &|s| cmp("<>", s), " AND "),
        Check::Contains(s) => format!(
            "pg_catalog.strpos({}, {}) {} 0",
            v.text(),
            quote_literal(s),
            catalog_op(">")
        ),
        Check::StartsWith(s) => {
            format!("pg_catalog.starts_with({}, {})", v.text(), quote_literal(s))
        }
        Check::EndsWith(s) => format!(
            "pg_catalog.\"right\"({}, {}) {} {}",
            v.text(),
            s.chars().count(),
            catalog_op("="),
            quote_literal(s)
        ),
        Check::Matches(pattern, _) => {
            format!(
                "{} {} {}",
                v.text(),
                catalog_op("~"),
                quote_literal(pattern)
            )
        }
        Check::NotBefore(cut) => time_cmp(&v.value, ">=", &cutoff_sql(t, *cut, Bound::Back)),
        Check::Before(cut) => time_cmp(&v.value, "<", &cutoff_sql(t, *cut, Bound::Back)),
        Check::After(cut) => time_cmp(&v.value, ">", &cutoff_sql(t, *cut, Bound::Ahead)),
        Check::Window(from, to) => {
            let start = if t.ty == ColumnType::Date {
                Bound::DayStart
            } else {
                Bound::Anchor
            };
            format!(
                "{} AND {}",
                time_cmp(&v.value, ">=", &cutoff_sql(t, *from, start)),
                time_cmp(&v.value, "<=", &cutoff_sql(t, *to, Bound::Ahead))
            )
        }
        Check::Has { values, all } => each_of(
            values,
            &|s| {
                let element = match s {
                    Scalar::Text(text) => format!(
                        "({}::pg_catalog.text COLLATE pg_catalog.\"C\")",
                        quote_literal(text)
                    ),
                    s => lit(s),
                };
                format!("{element} {} ANY ({})", catalog_op("="), v.value)
            },
            if *all { " AND " } else { " OR " },
        ),
        Check::IsEmpty => format!("pg_catalog.cardinality({}) {} 0", v.value, catalog_op("=")),
        Check::Column(op, _, other_ty) => column_comparison_sql(t, *op, other_ty),
        Check::IgnoreCase(_) => "false".into(),
    };
    format!("COALESCE({body}, false)")
}

/// Two columns compared as `Test::compare_columns` compares them: in double precision when either is a
/// float, exactly as numeric when a numeric meets an integer or a numeric, text byte by byte.
fn column_comparison_sql(t: &Test, op: Op, other_ty: &ColumnType) -> String {
    let cast = match (&t.ty, other_ty) {
        (ColumnType::Float, _) | (_, ColumnType::Float) => "::pg_catalog.float8",
        (ColumnType::Numeric, _) | (_, ColumnType::Numeric) => "::pg_catalog.numeric",
        (ColumnType::Text, _) => "::pg_catalog.text COLLATE pg_catalog.\"C\"",
        _ => "",
    };
    let side = |name: &str| format!("({}{cast})", quote_ident(name));
    let sym = match op {
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        _ => ">=",
    };
    format!(
        "{} {} {}",
        side(&t.cond.attr),
        catalog_op(sym),
        side(t.cond.other.as_deref().unwrap_or_default())
    )
}

fn time_cmp(value: &str, sym: &str, cut: &str) -> String {
    format!("{value} {} {cut}", catalog_op(sym))
}

/// Where a window's bound lies from its anchor.
#[derive(Clone, Copy)]
pub(super) enum Bound {
    Back,
    Ahead,
    Anchor,
    /// the anchor's day, from midnight (a date column's `within_next`)
    DayStart,
}

/// A time window's bound. Anchored at an explicit `as_of`, the instant compiled; anchored at the current
/// time, the same bound computed from `now()` when the SQL runs: a view of `to_sql` or a cached plan keeps
/// answering what segment_of answers as time passes. segment_of anchors windows at the transaction start
/// (`now()`) in UTC, and shifts by an interval as PostgreSQL's `timestamp ± interval` does (months, then
/// days, then time), hence the arithmetic on `now()` as a UTC timestamp. A bound past the end of time at
/// compile time stays the infinity it is.
fn cutoff_sql(t: &Test, compiled: i64, bound: Bound) -> String {
    let from_now = t
        .cond
        .as_of
        .is_none()
        .then(|| t.cond.value.as_str())
        .flatten();
    window_bound_sql(from_now, compiled, bound, &t.ty)
}

/// A window's bound of `interval` (None: anchored at an explicit as_of), compiled as `compiled`: from
/// `now()`, or the compiled instant when the window is anchored at as_of or already reaches past the end of
/// time (see `cutoff_sql`).
pub(super) fn window_bound_sql(
    interval: Option<&str>,
    compiled: i64,
    bound: Bound,
    ty: &ColumnType,
) -> String {
    match interval.and_then(parse_interval) {
        Some(iv) if TIMESTAMP_RANGE.contains(&compiled) => clock_bound_sql(iv, bound, ty),
        _ => time_literal(compiled, ty),
    }
}

/// `now()` shifted to a window's bound, as a value of the column's kind (timestamptz, else timestamp).
fn clock_bound_sql(iv: Interval, bound: Bound, ty: &ColumnType) -> String {
    let now = "pg_catalog.timezone('UTC'::pg_catalog.text, pg_catalog.now())";
    let shift = |sym: &str| {
        format!(
            "({now} {} '{} mons {} days {} microseconds'::pg_catalog.interval)",
            catalog_op(sym),
            iv.months,
            iv.days,
            iv.micros
        )
    };
    let at = match bound {
        Bound::Back => shift("-"),
        Bound::Ahead => shift("+"),
        Bound::Anchor => now.to_string(),
        Bound::DayStart => format!("pg_catalog.date_trunc('day'::pg_catalog.text, {now})"),
    };
    match ty {
        ColumnType::TimestampTz => format!("pg_catalog.timezone('UTC'::pg_catalog.text, {at})"),
        _ => at,
    }
}

/// A comparison or a range test of `lhs`, with pg_catalog's operators (BETWEEN spelled out: its operators
/// would be looked up on the search_path).
pub(super) fn ordering_sql(lhs: &str, check: &Check, lit: &dyn Fn(&Scalar) -> String) -> String {
    match check {
        Check::Between(lo, hi) => format!(
            "{lhs} {} {} AND {lhs} {} {}",
            catalog_op(">="),
            lit(lo),
            catalog_op("<="),
            lit(hi)
        ),
        Check::Compare(op, s) => {
            let sym = match op {
                Op::Eq => "=",
                Op::Ne => "<>",
                Op::Lt => "<",
                Op::Le => "<=",
                Op::Gt => ">",
                _ => ">=",
            };
            format!("{lhs} {} {}", catalog_op(sym), lit(s))
        }
        _ => "false".into(),
    }
}

fn nearest_sql(n: &NearestTest) -> String {
    let r = &n.rule;
    let dist = |k: usize| {
        let terms: Vec<String> = r
            .features
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let z = format!(
                    "((({}::pg_catalog.float8 {} {}) {} {}) {} {})",
                    quote_ident(f),
                    catalog_op("-"),
                    float_literal(r.center[j]),
                    catalog_op("/"),
                    float_literal(r.scale[j]),
                    catalog_op("-"),
                    float_literal(r.centroids[k][j])
                );
                format!("({z} {} {z})", catalog_op("*"))
            })
            .collect();
        format!("({})", terms.join(&format!(" {} ", catalog_op("+"))))
    };
    let me = dist(r.cluster);
    let parts: Vec<String> = (0..r.centroids.len())
        .filter(|&k| k != r.cluster)
        .map(|k| {
            if k < r.cluster {
                format!("{me} {} {}", catalog_op("<"), dist(k))
            } else {
                format!("{me} {} {}", catalog_op("<="), dist(k))
            }
        })
        .collect();
    if parts.is_empty() {
        let nulls: Vec<String> = r
            .features
            .iter()
            .map(|f| format!("{} IS NOT NULL", quote_ident(f)))
            .collect();
        return format!("({})", nulls.join(" AND "));
    }
    format!("COALESCE({}, false)", parts.join(" AND "))
}

/// How behavioral conditions are written: as correlated subqueries (an expression over the row) or as
/// columns of aggregates joined to the source (`to_query`).
#[derive(Clone, Copy)]
pub enum Form<'a> {
    Expression,
    Joined(&'a [&'a RelatedTest]),
}

pub fn expr_sql(e: &Expr) -> String {
    expr_sql_in(e, Form::Expression)
}

pub fn expr_sql_in(e: &Expr, form: Form) -> String {
    let each = |es: &[Expr], joiner: &str| {
        let parts: Vec<String> = es.iter().map(|e| expr_sql_in(e, form)).collect();
        format!("({})", parts.join(joiner))
    };
    match e {
        Expr::True => "true".into(),
        Expr::All(es) if es.is_empty() => "true".into(),
        Expr::Any(es) if es.is_empty() => "false".into(),
        Expr::All(es) => each(es, " AND "),
        Expr::Any(es) => each(es, " OR "),
        Expr::Not(e) => format!("(NOT {})", expr_sql_in(e, form)),
        Expr::Test(t) => test_sql(t),
        Expr::Nearest(n) => nearest_sql(n),
        Expr::Score(s) => s.sql(),
        Expr::Points(p) => p.sql(form),
        Expr::Related(r) => r.sql(form),
        Expr::InSegment(r) => r.sql(form),
    }
}

/// What each branch of a segmentation's CASE answers: the segment's name (`segment_of`) or its path from
/// the root (`segment_path`). The default segment is its own name either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Label {
    Name,
    Path,
}

impl Label {
    fn of(self, rs: &Ruleset, i: usize) -> String {
        quote_literal(match self {
            Label::Name => &rs.segments[i].name,
            Label::Path => &rs.segments[i].path,
        })
    }
}

/// The segmentation as `CASE ... END`, answering what `segment_of` answers.
pub fn to_sql(rs: &Ruleset) -> String {
    to_sql_labelled(rs, Label::Name)
}

/// The segmentation as `CASE ... END` answering `label` (plan-time compilation of segment_of and segment_path).
pub fn to_sql_labelled(rs: &Ruleset, label: Label) -> String {
    case_sql(rs, Form::Expression, label)
}

pub(super) fn to_sql_in(rs: &Ruleset, form: Form) -> String {
    case_sql(rs, form, Label::Name)
}

fn case_sql(rs: &Ruleset, form: Form, label: Label) -> String {
    let default = quote_literal(&rs.default_segment);
    match rs.mode {
        Mode::Exclusive => level_sql(rs, &rs.roots, &default, form, label),
        Mode::Overlapping => {
            // first match in priority order
            let whens: Vec<String> = (0..rs.segments.len())
                .map(|i| format!("WHEN {} THEN {}", match_sql(rs, i, form), label.of(rs, i)))
                .collect();
            if whens.is_empty() {
                return default;
            }
            format!("CASE {} ELSE {default} END", whens.join(" "))
        }
    }
}

/// Whether the row matches segment `i`: its rule and its ancestors' rules.
fn match_sql(rs: &Ruleset, i: usize, form: Form) -> String {
    let mut conds = vec![];
    let mut at = Some(i);
    while let Some(j) = at {
        conds.push(expr_sql_in(&rs.segments[j].expr, form));
        at = rs.segments[j].parent;
    }
    conds.reverse();
    conds.join(" AND ")
}

/// Every segment the row matches, in priority order, as a `text[]`: what `segments_of` answers.
pub fn to_sql_matches(rs: &Ruleset) -> String {
    let each: Vec<String> = (0..rs.segments.len())
        .map(|i| {
            let name = Label::Name.of(rs, i);
            format!(
                "CASE WHEN {} THEN {name} END",
                match_sql(rs, i, Form::Expression)
            )
        })
        .collect();
    format!(
        "pg_catalog.array_remove(ARRAY[{}]::pg_catalog.text[], NULL::pg_catalog.text)",
        each.join(", ")
    )
}

fn level_sql(rs: &Ruleset, level: &[usize], otherwise: &str, form: Form, label: Label) -> String {
    if level.is_empty() {
        return otherwise.to_string();
    }
    let whens: Vec<String> = level
        .iter()
        .map(|&i| {
            let s = &rs.segments[i];
            format!(
                "WHEN {} THEN {}",
                expr_sql_in(&s.expr, form),
                level_sql(rs, &s.children, &label.of(rs, i), form, label)
            )
        })
        .collect();
    format!("CASE {} ELSE {otherwise} END", whens.join(" "))
}

/// The segmentation as one query over its source, `SELECT key, segment`: each behavioral condition's
/// aggregate computed for every account at once (one pass over the related table, grouped by the key) and
/// joined to the accounts — the plan a hand-written `LEFT JOIN` of `GROUP BY` aggregates gets. The segment
/// column is `segments_segment`; it answers what `segment_of` answers.
pub fn to_query(rs: &Ruleset, source: &str, key: &str) -> String {
    // (each aggregate joins on the key column its own segmentation declares: a referenced segmentation's may differ)
    let mut related = vec![];
    for s in &rs.segments {
        collect_related(&s.expr, &mut related);
    }
    let case = to_sql_in(rs, Form::Joined(&related));
    let key = quote_ident(key);
    let joins: String = related
        .iter()
        .enumerate()
        .map(|(i, r)| {
            format!(
                " LEFT JOIN ({}) AS segments_agg_{i} ON segments_agg_{i}.segments_key {} segments_source.{}",
                r.grouped_sql(),
                catalog_op("="),
                quote_ident(&r.key_name)
            )
        })
        .collect();
    format!("SELECT segments_source.{key}, {case} AS segments_segment FROM {source} AS segments_source{joins}")
}

/// The behavioral conditions of an expression (each a subquery in the expression form).
pub fn collect_related<'a>(e: &'a Expr, out: &mut Vec<&'a RelatedTest>) {
    match e {
        Expr::All(es) | Expr::Any(es) => es.iter().for_each(|e| collect_related(e, out)),
        Expr::Not(e) => collect_related(e, out),
        Expr::Points(p) => p.parts().for_each(|e| collect_related(e, out)),
        Expr::Related(r) => out.push(r),
        Expr::InSegment(r) => r.exprs().for_each(|e| collect_related(e, out)),
        Expr::True | Expr::Test(_) | Expr::Nearest(_) | Expr::Score(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_injection_safe() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            quote_literal("x'); DROP TABLE t; --"),
            "'x''); DROP TABLE t; --'"
        );
        assert_eq!(quote_literal("a\\'b"), "E'a\\\\''b'");
        assert_eq!(float_literal(0.1), "0.1");
        assert_eq!(float_literal(1e300), "'1e300'::pg_catalog.float8");
    }
}
