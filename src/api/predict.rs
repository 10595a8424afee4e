//! The boundary of predictive segmentation: fitting a logistic regression over a relation (read once through a
//! cursor) and scoring rows with a stored model, per call site like `classify`.

use super::models::{qualified_name, scan_query};
use super::row::{composite_header, jsonb_value, varlena_bytes, RowReader, RowView, TupleColumns};
use super::{c_function, raise, OrRaise};
use crate::error::SegError;
use crate::models::logistic::{self, Design, Feature, FeatureKind, Scorer, Value};
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
        Some((_, ColumnType::Int | ColumnType::Float)) => FeatureKind::Number,
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

/// One feature value of a row, as the model reads it.
fn value_of<'a>(row: &'a RowView, col: usize, kind: &FeatureKind) -> Option<Value<'a>> {
    match (kind, row.cell(col)) {
        (_, Cell::Null) => None,
        (FeatureKind::Number, _) => row.float(col).filter(|x| x.is_finite()).map(Value::Number),
        (FeatureKind::Boolean, Cell::Bool(b)) => Some(Value::Boolean(b)),
        (FeatureKind::Category(_), Cell::Text(t)) => Some(Value::Level(t)),
        _ => None,
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
    let names = super::models::feature_names(features);
    if names.is_empty() {
        raise(SegError::invalid_argument(
            "a model needs at least one feature",
            "pass e.g. ARRAY['tenure', 'contract']",
        ));
    }
    let columns = TupleColumns::of_relation(source.oid(), "logistic regression");
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
    let query = format!(
        "SELECT {} FROM {}",
        list.join(", "),
        qualified_name(&source)
    );

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
            match value_of(&view, j + 1, kind) {
                Some(Value::Number(v)) => x.push(v),
                Some(Value::Boolean(b)) => x.push(b as u8 as f64),
                Some(Value::Level(l)) => {
                    let next = levels[j].len();
                    x.push(*levels[j].entry(l.to_string()).or_insert(next) as f64)
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
    // category levels in byte order; the first is the reference
    let mut recode: Vec<Vec<usize>> = vec![vec![]; names.len()];
    for (j, kind) in kinds.iter_mut().enumerate() {
        if let FeatureKind::Category(list) = kind {
            let mut sorted: Vec<(String, usize)> = levels[j].drain().collect();
            sorted.sort();
            if sorted.len() < 2 {
                raise(SegError::invalid_argument(
                    format!("feature \"{}\" has one value in every row used", names[j]),
                    "a feature with one value cannot explain anything: leave it out",
                ));
            }
            recode[j] = vec![0; sorted.len()];
            for (rank, (_, code)) in sorted.iter().enumerate() {
                recode[j][*code] = rank;
            }
            *list = sorted.into_iter().map(|(l, _)| l).collect();
        }
    }
    let model_features: Vec<Feature> = names
        .iter()
        .zip(&kinds)
        .map(|(n, k)| Feature {
            name: n.clone(),
            kind: k.clone(),
        })
        .collect();
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
                    let rank = recode[j][x[j] as usize];
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
    for (j, f) in model_features.iter().enumerate() {
        if !matches!(f.kind, FeatureKind::Category(_)) {
            let col = design_column(&model_features, j);
            let first = design.x[col];
            if design.x.iter().skip(col).step_by(k).all(|v| *v == first) {
                raise(SegError::invalid_argument(
                    format!("feature \"{}\" has one value in every row used", names[j]),
                    "a feature with one value cannot explain anything: leave it out",
                ));
            }
        }
    }
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

/// The design-matrix column of feature `j`'s first term.
fn design_column(features: &[Feature], j: usize) -> usize {
    1 + features[..j].iter().map(|f| f.terms().len()).sum::<usize>()
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
        let bytes = varlena_bytes(model);
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
            .map(|(&c, feat)| value_of(&view, c, &feat.kind))
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
    with_scored_row(fcinfo, |scorer, values| {
        scorer.probability(values)?.into_datum()
    })
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
        let value = json!({"probability": logistic::sigmoid(eta), "log_odds": eta, "contributions": contributions});
        JsonB(value).into_datum()
    })
});
