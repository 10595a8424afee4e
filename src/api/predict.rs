//! The boundary of predictive segmentation: fitting a logistic regression over a relation (read once through a
//! cursor) and scoring rows with a stored model, per call site like `classify`.

use super::models::{append_row, qualified_name, rows, scan_query, unchanged_rows};
use super::row::{composite_header, jsonb_value, stored_bytes, RowReader, TupleColumns};
use super::{arg, c_function, composite, f8, raise, OrRaise};
use crate::error::SegError;
use crate::models::logistic::{self, Design, Feature, FeatureKind, Scorer, Value};
use crate::models::{evaluate, tree};
use crate::rules::score::feature_value;
use crate::rules::sql::quote_ident;
use crate::rules::{Cell, ColumnType, Columns, Row};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{JsonB, PgMemoryContexts, PgRelation};
use serde_json::json;
use std::collections::HashMap;

/// A feature column's kind, from its type: numbers, booleans, and text as categories.
fn feature_kind(columns: &TupleColumns, name: &str, path: &str) -> FeatureKind {
    match columns.lookup(name) {
        None => raise(SegError::UnknownAttribute {
            path: path.into(),
            attr: name.into(),
            source_name: columns.relation_name(),
            hint: format!("available columns: {}", columns.names().join(", ")),
        }),
        Some((_, ty)) if ty.is_number() => FeatureKind::Number,
        Some((_, ColumnType::Bool)) => FeatureKind::Boolean,
        Some((_, ColumnType::Text)) => FeatureKind::Category(vec![]),
        Some((_, ty)) => raise(SegError::type_mismatch(
            path,
            format!(
                "feature \"{name}\" is {}: features are numbers, booleans or text (categories)",
                ty.describe()
            ),
            "cast it in a view, e.g. extract(epoch FROM ...) for a time",
        )),
    }
}

/// Training rows read from a relation: the outcome, and per feature its value (a category as the rank of its
/// level in byte order); rows with a NULL or non-finite value are left out and counted.
struct Training {
    features: Vec<Feature>,
    rows: Vec<(bool, Vec<f64>)>,
    dropped: usize,
}

fn read_training(
    source: &PgRelation,
    outcome: &str,
    features: Vec<Option<String>>,
    what: &str,
) -> Training {
    let names = super::models::feature_names(features);
    if names.is_empty() {
        raise(SegError::invalid_argument(
            format!("a {what} needs at least one feature"),
            "pass e.g. ARRAY['tenure', 'contract']",
        ));
    }
    let columns = TupleColumns::of_relation(source.oid(), what);
    match columns.lookup(outcome) {
        Some((_, ColumnType::Bool)) => {}
        None => raise(SegError::UnknownAttribute {
            path: "outcome".into(),
            attr: outcome.into(),
            source_name: columns.relation_name(),
            hint: format!("available columns: {}", columns.names().join(", ")),
        }),
        Some((_, ty)) => raise(SegError::type_mismatch(
            "outcome",
            format!(
                "the outcome \"{outcome}\" is {}, not boolean",
                ty.describe()
            ),
            "pass a boolean column, e.g. churned (or a view with churn = 'Yes' AS churned)",
        )),
    }
    let mut kinds: Vec<FeatureKind> = names
        .iter()
        .map(|n| feature_kind(&columns, n, "features"))
        .collect();
    let list: Vec<String> = std::iter::once(outcome)
        .chain(names.iter().map(String::as_str))
        .map(quote_ident)
        .collect();
    let query = format!("SELECT {} FROM {}", list.join(", "), qualified_name(source));

    // one pass: numbers and booleans as they are, category levels interned (codes in first-seen order)
    let mut levels: Vec<HashMap<String, usize>> = vec![HashMap::new(); names.len()];
    let mut rows: Vec<(bool, Vec<f64>)> = Vec::new();
    let mut dropped = 0usize;
    scan_query(&query, |reader| {
        let view = reader.view();
        let y = match view.cell(0) {
            Cell::Bool(b) => b,
            _ => {
                dropped += 1;
                return;
            }
        };
        let mut x = Vec::with_capacity(names.len());
        for (j, kind) in kinds.iter().enumerate() {
            match feature_value(&view, j + 1, kind) {
                Some(Value::Number(v)) => x.push(v),
                Some(Value::Boolean(b)) => x.push(b as u8 as f64),
                Some(Value::Level(l)) => {
                    // a new String only for a level not seen yet
                    let code = match levels[j].get(l) {
                        Some(&code) => code,
                        None => {
                            let code = levels[j].len();
                            levels[j].insert(l.to_string(), code);
                            code
                        }
                    };
                    x.push(code as f64)
                }
                None => {
                    dropped += 1;
                    return;
                }
            }
        }
        rows.push((y, x));
    });
    if rows.is_empty() {
        raise(SegError::invalid_argument(
            format!(
                "no row of {} has the outcome and every feature",
                columns.relation_name()
            ),
            "rows with a NULL outcome or feature are left out",
        ));
    }
    // category levels in byte order; codes become ranks
    for (j, kind) in kinds.iter_mut().enumerate() {
        if let FeatureKind::Category(list) = kind {
            let mut sorted: Vec<(String, usize)> = levels[j].drain().collect();
            sorted.sort();
            let mut rank = vec![0; sorted.len()];
            for (r, (_, code)) in sorted.iter().enumerate() {
                rank[*code] = r;
            }
            rows.iter_mut()
                .for_each(|(_, x)| x[j] = rank[x[j] as usize] as f64);
            *list = sorted.into_iter().map(|(l, _)| l).collect();
        }
    }
    // a feature with one value explains nothing (and makes the logistic fit singular)
    for j in 0..names.len() {
        let first = rows[0].1[j];
        if rows.iter().all(|(_, x)| x[j] == first) {
            raise(SegError::invalid_argument(
                format!("feature \"{}\" has one value in every row used", names[j]),
                "a feature with one value cannot explain anything: leave it out",
            ));
        }
    }
    let features = names
        .into_iter()
        .zip(kinds)
        .map(|(name, kind)| Feature { name, kind })
        .collect();
    Training {
        features,
        rows,
        dropped,
    }
}

/// Logistic regression of a boolean outcome column on feature columns of a relation (rows with a NULL or
/// non-finite value are left out and counted). Text features are categories, one-hot encoded with the first
/// level in byte order as the reference.
#[pg_extern(stable, parallel_unsafe)]
fn logistic_regression(
    source: PgRelation,
    outcome: &str,
    features: Vec<Option<String>>,
    l2: default!(f64, 0.0),
    max_iterations: default!(i32, 100),
) -> JsonB {
    if !(l2.is_finite() && l2 >= 0.0) || max_iterations < 1 {
        raise(SegError::invalid_argument(
            "l2 must be a finite number ≥ 0 and max_iterations ≥ 1",
            "l2 => 0 fits by maximum likelihood; l2 => λ adds λ/2 × the sum of squared slopes (scikit-learn's C = 1/λ)",
        ));
    }
    let Training {
        features: model_features,
        rows,
        dropped,
    } = read_training(&source, outcome, features, "logistic regression");
    let k = logistic::terms(&model_features).len();
    let mut design = Design {
        k,
        x: Vec::with_capacity(rows.len() * k),
        y: Vec::with_capacity(rows.len()),
    };
    for (y, x) in &rows {
        design.x.push(1.0);
        for (j, f) in model_features.iter().enumerate() {
            match &f.kind {
                FeatureKind::Category(list) => {
                    let rank = x[j] as usize;
                    design
                        .x
                        .extend((1..list.len()).map(|i| (i == rank) as u8 as f64));
                }
                _ => design.x.push(x[j]),
            }
        }
        design.y.push(*y);
    }
    drop(rows);
    let fit = logistic::fit(&design, l2, max_iterations as usize).or_raise();
    if !fit.converged {
        pgrx::warning!("logistic regression did not converge in {max_iterations} iterations: raise max_iterations, or look for a separating feature");
    }
    JsonB(logistic::model_json(
        outcome,
        &model_features,
        &fit,
        l2,
        design.y.len(),
        dropped,
    ))
}

/// A call site's model, compiled against the row type it meets.
struct ScoreSite {
    key: Vec<u8>,
    reader: RowReader,
    scorer: Scorer,
    cols: Vec<usize>,
}

unsafe fn score_site<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    header: pg_sys::HeapTupleHeader,
    model: pg_sys::Datum,
) -> &'a mut ScoreSite {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        // the model as stored (a TOAST pointer for a big one): no detoasting per row
        let bytes = stored_bytes(model);
        let cached = (*flinfo).fn_extra as *mut ScoreSite;
        if !cached.is_null() && (*cached).key == bytes && (*cached).reader.same_type(header) {
            return &mut *cached;
        }
        let reader = RowReader::new(header);
        let scorer = Scorer::from_json(&jsonb_value(model, "model").or_raise()).or_raise();
        let cols = scorer
            .features
            .iter()
            .map(|f| {
                let kind = feature_kind(&reader.columns, &f.name, "model.features");
                if std::mem::discriminant(&kind) != std::mem::discriminant(&f.kind) {
                    raise(SegError::type_mismatch(
                        "model.features",
                        format!("column \"{}\" of {} is not of the kind the model was fitted on", f.name, reader.columns.relation_name()),
                        "score rows of the relation the model was fitted on (or one with the same columns)",
                    ));
                }
                reader.columns.lookup(&f.name).map(|(c, _)| c).unwrap_or_default()
            })
            .collect();
        let site = ScoreSite {
            key: bytes.to_vec(),
            reader,
            scorer,
            cols,
        };
        let ptr = PgMemoryContexts::For((*flinfo).fn_mcxt).leak_and_drop_on_delete(site);
        (*flinfo).fn_extra = ptr.cast();
        &mut *ptr
    }
}

/// Arg 0 the row, arg 1 the model; the feature values of the row, or NULL for the call.
unsafe fn with_scored_row(
    fcinfo: pg_sys::FunctionCallInfo,
    f: impl FnOnce(&Scorer, &[Option<Value>]) -> Option<pg_sys::Datum>,
) -> pg_sys::Datum {
    unsafe {
        let args = (*fcinfo).args.as_slice(2);
        if args[0].isnull || args[1].isnull {
            (*fcinfo).isnull = true;
            return pg_sys::Datum::from(0);
        }
        let header = composite_header(args[0].value);
        let site = score_site(fcinfo, header, args[1].value);
        site.reader.store(header);
        let site: &ScoreSite = site;
        let view = site.reader.view();
        let values: Vec<Option<Value>> = site
            .cols
            .iter()
            .zip(&site.scorer.features)
            .map(|(&c, feat)| feature_value(&view, c, &feat.kind))
            .collect();
        match f(&site.scorer, &values) {
            Some(d) => d,
            None => {
                (*fcinfo).isnull = true;
                pg_sys::Datum::from(0)
            }
        }
    }
}

c_function!(pg_finfo_score, score, |fcinfo| {
    // the per-row path: values read straight from the row into the log-odds, nothing allocated
    let args = (*fcinfo).args.as_slice(2);
    if args[0].isnull || args[1].isnull {
        return null_result(fcinfo);
    }
    let header = composite_header(args[0].value);
    let site = score_site(fcinfo, header, args[1].value);
    site.reader.store(header);
    let site: &ScoreSite = site;
    let view = site.reader.view();
    let features = &site.scorer.features;
    match site
        .scorer
        .log_odds(|j| feature_value(&view, site.cols[j], &features[j].kind))
    {
        Some(eta) => pg_sys::Datum::from(logistic::probability_of(eta).to_bits()),
        None => null_result(fcinfo),
    }
});

c_function!(pg_finfo_explain_score, explain_score, |fcinfo| {
    with_scored_row(fcinfo, |scorer, values| {
        let terms = logistic::terms(&scorer.features);
        let x = scorer.design_row(values)?;
        let eta: f64 = x.iter().zip(&scorer.beta).map(|(a, b)| a * b).sum();
        let contributions: Vec<serde_json::Value> = terms
            .iter()
            .zip(&x)
            .zip(&scorer.beta)
            .map(|((t, v), b)| json!({"term": t, "value": v, "coefficient": b, "contribution": v * b}))
            .collect();
        let value = json!({"probability": logistic::probability_of(eta), "log_odds": eta, "contributions": contributions});
        JsonB(value).into_datum()
    })
});

// Evaluation aggregates over (score, outcome[, parameter]): the rows are kept in the rows state the lifetime
// fits use (models.rs), as [score, 0/1, parameter].
c_function!(pg_finfo__scored_accum, _scored_accum, |fcinfo| {
    let (Some(score), Some(outcome)) = (arg(fcinfo, 1), arg(fcinfo, 2)) else {
        return unchanged_rows(fcinfo);
    };
    let score = f64::from_bits(score.value() as u64);
    if score.is_nan() {
        raise(SegError::out_of_range(
            "a score is NaN",
            "evaluate finite scores (rows with a NULL score are left out)",
        ));
    }
    let mut row = vec![score, (outcome.value() != 0) as u8 as f64];
    if (*fcinfo).nargs == 4 {
        let argtype = super::declared_arg_type(fcinfo, 3);
        let parameter = arg(fcinfo, 3).unwrap_or_else(|| {
            raise(SegError::invalid_argument(
                "the evaluation parameter is NULL",
                "pass a confidence such as 0.95, or a number of groups such as 10",
            ))
        });
        row.push(if argtype == pg_sys::INT4OID {
            parameter.value() as i32 as f64
        } else {
            f64::from_bits(parameter.value() as u64)
        });
    }
    append_row(fcinfo, &row)
});

/// The state's pairs and its parameter (the first row's), or None for no rows.
unsafe fn scored(fcinfo: pg_sys::FunctionCallInfo) -> Option<(Vec<(f64, bool)>, f64)> {
    let rows = unsafe { rows(fcinfo) };
    let parameter = rows.first()?.get(2).copied().unwrap_or(f64::NAN);
    Some((
        rows.iter().map(|r| (r[0], r[1] != 0.0)).collect(),
        parameter,
    ))
}

fn null_result(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe { (*fcinfo).isnull = true };
    pg_sys::Datum::from(0)
}

/// Finals returning a float8 or a jsonb, NULL without rows.
macro_rules! scored_final {
    ($finfo:ident, $name:ident, |$pairs:ident, $parameter:ident| $body:expr) => {
        c_function!($finfo, $name, |fcinfo| {
            match scored(fcinfo) {
                None => null_result(fcinfo),
                Some(($pairs, $parameter)) => {
                    let _ = $parameter;
                    $body
                        .or_raise()
                        .into_datum()
                        .unwrap_or_else(|| null_result(fcinfo))
                }
            }
        });
    };
}

scored_final!(pg_finfo__auc_final, _auc_final, |pairs, p| evaluate::auc(
    &pairs
)
.map(|a| a.0));
scored_final!(pg_finfo__log_loss_final, _log_loss_final, |pairs, p| {
    evaluate::log_loss(&pairs)
});
scored_final!(pg_finfo__brier_final, _brier_final, |pairs, p| {
    evaluate::brier(&pairs)
});
scored_final!(
    pg_finfo__calibration_final,
    _calibration_final,
    |pairs, groups| { evaluate::calibration(&pairs, groups as usize).map(JsonB) }
);
scored_final!(pg_finfo__gains_final, _gains_final, |pairs, groups| {
    evaluate::gains(&pairs, groups as usize).map(JsonB)
});

c_function!(pg_finfo__auc_ci_final, _auc_ci_final, |fcinfo| {
    let Some((pairs, confidence)) = scored(fcinfo) else {
        return null_result(fcinfo);
    };
    // auc_ci(score, outcome) carries no confidence: 95%
    let confidence = if confidence.is_nan() {
        0.95
    } else {
        confidence
    };
    if !(confidence > 0.0 && confidence < 1.0) {
        raise(SegError::out_of_range(
            "confidence must be between 0 and 1",
            "e.g. 0.95",
        ));
    }
    let (a, lower, upper) = evaluate::auc_interval(&pairs, confidence).or_raise();
    composite(
        fcinfo,
        &[
            f8(a),
            f8(lower),
            f8(upper),
            Some(pg_sys::Datum::from(pairs.len() as i64)),
        ],
    )
});

/// One column the tree splits on: a number or boolean feature, or one level of a category (0/1).
struct TreeColumn {
    feature: usize,
    level: Option<usize>,
}

/// Grows a classification tree on a boolean outcome and saves it as an exclusive segmentation: every node
/// below the root is a segment whose rule is its split condition, under its parent's segment, so the leaves
/// are where segment_of puts accounts. Returns every segment with its training counts.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn segmentation_from_tree(
    name: &str,
    source: PgRelation,
    key_column: &str,
    outcome: &str,
    features: Vec<Option<String>>,
    max_depth: default!(i32, 3),
    min_leaf: default!(i32, 1),
    min_impurity_decrease: default!(f64, 0.0),
) -> TableIterator<
    'static,
    (
        name!(segment, String),
        name!(parent, Option<String>),
        name!(depth, i32),
        name!(leaf, bool),
        name!(rows, i64),
        name!(positives, i64),
        name!(outcome_rate, f64),
    ),
> {
    let Training {
        features,
        rows,
        dropped,
    } = read_training(&source, outcome, features, "decision tree");
    let mut layout = vec![];
    for (j, f) in features.iter().enumerate() {
        match &f.kind {
            FeatureKind::Category(levels) => layout.extend((0..levels.len()).map(|l| TreeColumn {
                feature: j,
                level: Some(l),
            })),
            _ => layout.push(TreeColumn {
                feature: j,
                level: None,
            }),
        }
    }
    // as scikit-learn reads them: float32, categories one-hot (one 0/1 column per level)
    let columns: Vec<Vec<f32>> = layout
        .iter()
        .map(|c| {
            rows.iter()
                .map(|(_, x)| match c.level {
                    Some(l) => (x[c.feature] as usize == l) as u8 as f32,
                    None => x[c.feature] as f32,
                })
                .collect()
        })
        .collect();
    let y: Vec<bool> = rows.iter().map(|r| r.0).collect();
    let params = tree::Params {
        max_depth: max_depth.max(0) as usize,
        min_leaf: min_leaf.max(0) as usize,
        min_impurity_decrease,
    };
    let root = tree::grow(&columns, &y, &params).or_raise();
    let names: Vec<&str> = features.iter().map(|f| f.name.as_str()).collect();
    let description = format!(
        "decision tree of {outcome} (Gini; max_depth {max_depth}, min_leaf {min_leaf}, min_impurity_decrease {min_impurity_decrease}) over {}; {} training rows{}",
        names.join(", "),
        y.len(),
        if dropped > 0 { format!(" ({dropped} with a NULL left out)") } else { String::new() }
    );
    Spi::run_with_args(
        "INSERT INTO segments.segmentation (name, source, key_column, description) VALUES ($1, $2, $3, $4)",
        &[name.into(), source.oid().into(), key_column.into(), description.into()],
    )
    .unwrap_or_else(|e| raise(SegError::invalid_argument(e.to_string(), "")));
    // the condition of one side of a split: (rule, readable text)
    let side = |c: &TreeColumn, threshold: f64, left: bool| -> (serde_json::Value, String) {
        let f = &features[c.feature];
        match (&f.kind, c.level) {
            (FeatureKind::Category(levels), Some(l)) => {
                let level = &levels[l];
                if left {
                    (
                        json!({"attr": f.name, "op": "not_in", "value": [level]}),
                        format!("{} ≠ {level}", f.name),
                    )
                } else {
                    (
                        json!({"attr": f.name, "op": "in", "value": [level]}),
                        format!("{} = {level}", f.name),
                    )
                }
            }
            (FeatureKind::Boolean, _) => (
                json!({"attr": f.name, "op": "=", "value": !left}),
                format!("{}{}", if left { "not " } else { "" }, f.name),
            ),
            _ => {
                let shown = (threshold * 100.0).round() / 100.0;
                if left {
                    (
                        json!({"attr": f.name, "op": "<=", "value": threshold}),
                        format!("{} ≤ {shown}", f.name),
                    )
                } else {
                    (
                        json!({"attr": f.name, "op": ">", "value": threshold}),
                        format!("{} > {shown}", f.name),
                    )
                }
            }
        }
    };
    let mut out = vec![];
    let mut stack: Vec<(&tree::Node, Option<String>, i32)> = vec![(&root, None, 0)];
    while let Some((node, path, depth)) = stack.pop() {
        if let tree::Node::Split {
            column,
            threshold,
            left,
            right,
            ..
        } = node
        {
            for (priority, child, is_left) in [(1, left.as_ref(), true), (2, right.as_ref(), false)]
            {
                let (rule, text) = side(&layout[*column], *threshold, is_left);
                let segment = match &path {
                    Some(p) => format!("{p} & {text}"),
                    None => text,
                };
                let rate = child.positives() as f64 / child.rows() as f64;
                let about = format!(
                    "{} training rows, {:.1}% {outcome} ({})",
                    child.rows(),
                    100.0 * rate,
                    child.positives()
                );
                Spi::run_with_args(
                    "INSERT INTO segments.segment (segmentation, name, parent, priority, rule, description) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[name.into(), segment.clone().into(), path.clone().into(), (priority as i32).into(), JsonB(rule).into(), about.into()],
                )
                .unwrap_or_else(|e| raise(SegError::invalid_argument(e.to_string(), "")));
                out.push((
                    segment.clone(),
                    path.clone(),
                    depth + 1,
                    matches!(child, tree::Node::Leaf { .. }),
                    child.rows() as i64,
                    child.positives() as i64,
                    rate,
                ));
                stack.push((child, Some(segment), depth + 1));
            }
        }
    }
    if out.is_empty() {
        pgrx::warning!("the tree has no split: its segmentation has no segments (every account is in the default segment)");
    }
    TableIterator::new(out)
}

/// P(χ² > x) with `df` degrees of freedom (the profile and association tests).
#[pg_extern(immutable, parallel_safe, strict, name = "_chi2_sf")]
fn chi2_sf(x: f64, df: f64) -> Option<f64> {
    (df > 0.0 && x.is_finite()).then(|| crate::metrics::stats::chi2_sf(x, df))
}

/// Two-sided p-value of Student's t with `df` degrees of freedom (Welch's test in the profile).
#[pg_extern(immutable, parallel_safe, strict, name = "_t_two_sided")]
fn t_two_sided(t: f64, df: f64) -> Option<f64> {
    (df > 0.0 && !t.is_nan()).then(|| crate::metrics::stats::t_two_sided(t, df))
}
