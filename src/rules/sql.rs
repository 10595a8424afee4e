//! A compiled ruleset written out as one plain SQL `CASE` expression over the source's columns, giving the
//! same answer as `segment_of` on every row (NULLs included: every test is wrapped so NULL counts as false).

use super::ast::Op;
use super::compile::{Check, ColumnType, Expr, NearestTest, Scalar, Test};
use super::ruleset::{Mode, Ruleset};
use super::time::{format_timestamp, TIMESTAMP_RANGE};

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

fn time_literal(t: i64, ty: &ColumnType) -> String {
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

fn test_sql(t: &Test) -> String {
    let name = quote_ident(&t.cond.attr);
    // text of any kind (varchar, char(n) without its padding, name, a domain, any collation) is compared as
    // segment_of compares it: as text, byte by byte (the C collation), also for = and in
    let col = if t.ty == ColumnType::Text {
        format!("({name}::pg_catalog.text COLLATE pg_catalog.\"C\")")
    } else {
        name.clone()
    };
    let lit = |s: &Scalar| scalar(s, &t.ty);
    let body = match &t.check {
        Check::IsNull => return format!("({name} IS NULL)"),
        Check::NotNull => return format!("({name} IS NOT NULL)"),
        Check::Compare(..) | Check::Between(..) => ordering_sql(&col, &t.check, &lit),
        // x IN (a, b) is x = a OR x = b; x NOT IN (a, b) is x <> a AND x <> b (the lists hold no NULL)
        Check::In(list) => each_of(
            list,
            &|s| format!("{col} {} {}", catalog_op("="), lit(s)),
            " OR ",
        ),
        Check::NotIn(list) => each_of(
            list,
            &|s| format!("{col} {} {}", catalog_op("<>"), lit(s)),
            " AND ",
        ),
        Check::Contains(s) => format!(
            "pg_catalog.strpos({col}, {}) {} 0",
            quote_literal(s),
            catalog_op(">")
        ),
        Check::StartsWith(s) => format!("pg_catalog.starts_with({col}, {})", quote_literal(s)),
        Check::EndsWith(s) => format!(
            "pg_catalog.\"right\"({col}, {}) {} {}",
            s.chars().count(),
            catalog_op("="),
            quote_literal(s)
        ),
        Check::Matches(pattern, _) => {
            format!("{col} {} {}", catalog_op("~"), quote_literal(pattern))
        }
        Check::NotBefore(cut) => {
            format!("{col} {} {}", catalog_op(">="), time_literal(*cut, &t.ty))
        }
        Check::Before(cut) => format!("{col} {} {}", catalog_op("<"), time_literal(*cut, &t.ty)),
    };
    format!("COALESCE({body}, false)")
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

pub fn expr_sql(e: &Expr) -> String {
    match e {
        Expr::True => "true".into(),
        Expr::All(es) if es.is_empty() => "true".into(),
        Expr::Any(es) if es.is_empty() => "false".into(),
        Expr::All(es) => format!(
            "({})",
            es.iter().map(expr_sql).collect::<Vec<_>>().join(" AND ")
        ),
        Expr::Any(es) => format!(
            "({})",
            es.iter().map(expr_sql).collect::<Vec<_>>().join(" OR ")
        ),
        Expr::Not(e) => format!("(NOT {})", expr_sql(e)),
        Expr::Test(t) => test_sql(t),
        Expr::Nearest(n) => nearest_sql(n),
        Expr::Score(s) => s.sql(),
    }
}

/// The segmentation as `CASE ... END`, answering what `segment_of` answers.
pub fn to_sql(rs: &Ruleset) -> String {
    let default = quote_literal(&rs.default_segment);
    match rs.mode {
        Mode::Exclusive => level_sql(rs, &rs.roots, &default),
        Mode::Overlapping => {
            // first match in priority order, where a match needs the segment's ancestors to match too
            let whens: Vec<String> = (0..rs.segments.len())
                .map(|i| {
                    let mut conds = vec![];
                    let mut at = Some(i);
                    while let Some(j) = at {
                        conds.push(expr_sql(&rs.segments[j].expr));
                        at = rs.segments[j].parent;
                    }
                    conds.reverse();
                    format!(
                        "WHEN {} THEN {}",
                        conds.join(" AND "),
                        quote_literal(&rs.segments[i].name)
                    )
                })
                .collect();
            if whens.is_empty() {
                return default;
            }
            format!("CASE {} ELSE {default} END", whens.join(" "))
        }
    }
}

fn level_sql(rs: &Ruleset, level: &[usize], otherwise: &str) -> String {
    if level.is_empty() {
        return otherwise.to_string();
    }
    let whens: Vec<String> = level
        .iter()
        .map(|&i| {
            let s = &rs.segments[i];
            let me = quote_literal(&s.name);
            format!(
                "WHEN {} THEN {}",
                expr_sql(&s.expr),
                level_sql(rs, &s.children, &me)
            )
        })
        .collect();
    format!("CASE {} ELSE {otherwise} END", whens.join(" "))
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
