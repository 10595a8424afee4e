//! Logistic regression by Newton–Raphson (iteratively reweighted least squares), optionally with an L2 penalty
//! on the slopes (not the intercept, as scikit-learn's `LogisticRegression` with `C = 1 / l2`). Unpenalised, it
//! is the maximum-likelihood fit statsmodels' `Logit` computes, with the same standard errors (the inverse of
//! the observed information) and Wald z tests. Pure Rust: the design matrix comes in as rows of numbers.

use crate::error::{Result, SegError};
use crate::metrics::stats::normal_sf;
use serde_json::{json, Value as Json};

/// A design matrix: `n` rows of `k` columns, the first of them the intercept's 1.
pub struct Design {
    pub k: usize,
    pub x: Vec<f64>,
    pub y: Vec<bool>,
}

#[derive(Debug, Clone)]
pub struct Fit {
    pub beta: Vec<f64>,
    pub std_error: Vec<f64>,
    pub log_likelihood: f64,
    pub null_log_likelihood: f64,
    pub iterations: usize,
    pub converged: bool,
}

impl Fit {
    pub fn z(&self) -> Vec<f64> {
        self.beta
            .iter()
            .zip(&self.std_error)
            .map(|(b, s)| b / s)
            .collect()
    }
    /// Two-sided p-values of the Wald z statistics.
    pub fn p_values(&self) -> Vec<f64> {
        self.z().iter().map(|z| 2.0 * normal_sf(z.abs())).collect()
    }
    /// McFadden's pseudo-R²: 1 − LL / LL₀.
    pub fn pseudo_r2(&self) -> f64 {
        1.0 - self.log_likelihood / self.null_log_likelihood
    }
    pub fn aic(&self) -> f64 {
        2.0 * self.beta.len() as f64 - 2.0 * self.log_likelihood
    }
}

/// log(1 + e^t) without overflow.
fn log1p_exp(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

pub fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// A score's probability from its log-odds: ½ + ½·tanh(η/2), the logistic function in a form that never
/// overflows or underflows, written the same way (and so computed to the same bits) in the SQL `to_sql`
/// gives a score condition. PostgreSQL's exp() raises an error where the result underflows to 0.
pub fn probability_of(eta: f64) -> f64 {
    0.5 + 0.5 * (0.5 * eta).tanh()
}

/// Cholesky factor of a symmetric positive-definite matrix (row-major k×k), or None when it is not.
fn cholesky(a: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = (0..j).map(|m| l[i * k + m] * l[j * k + m]).sum();
            if i == j {
                let d = a[i * k + i] - s;
                // relative to the diagonal: a singular information matrix is collinear features
                if d <= a[i * k + i].abs() * 1e-12 || !d.is_finite() {
                    return None;
                }
                l[i * k + i] = d.sqrt();
            } else {
                l[i * k + j] = (a[i * k + j] - s) / l[j * k + j];
            }
        }
    }
    Some(l)
}

/// Solves L Lᵀ x = b.
fn solve(l: &[f64], k: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; k];
    for i in 0..k {
        z[i] = (b[i] - (0..i).map(|m| l[i * k + m] * z[m]).sum::<f64>()) / l[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        x[i] = (z[i] - (i + 1..k).map(|m| l[m * k + i] * x[m]).sum::<f64>()) / l[i * k + i];
    }
    x
}

/// Fits the model. `l2` ≥ 0 penalises every coefficient but the first (the intercept).
pub fn fit(d: &Design, l2: f64, max_iter: usize) -> Result<Fit> {
    let (k, n) = (d.k, d.y.len());
    let positives = d.y.iter().filter(|&&y| y).count();
    if positives == 0 || positives == n {
        return Err(SegError::invalid_argument(
            format!("the outcome has one value in all {n} rows: there is nothing to predict"),
            "fit on rows where the outcome is both true and false",
        ));
    }
    let rate = positives as f64 / n as f64;
    let null_ll = positives as f64 * rate.ln() + (n - positives) as f64 * (1.0 - rate).ln();
    let mut beta = vec![0.0; k];
    beta[0] = (rate / (1.0 - rate)).ln();
    let mut ll_prev = f64::NEG_INFINITY;
    let mut info = vec![0.0; k * k];
    for iteration in 1..=max_iter {
        crate::interrupt::check();
        // gradient and information at beta
        let mut grad = vec![0.0; k];
        info.iter_mut().for_each(|v| *v = 0.0);
        let mut ll = 0.0;
        let mut worst_residual = 0.0f64;
        for (row, &y) in d.x.chunks_exact(k).zip(&d.y) {
            let eta: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = sigmoid(eta);
            ll += if y { -log1p_exp(-eta) } else { -log1p_exp(eta) };
            let r = if y { 1.0 - p } else { -p };
            worst_residual = worst_residual.max(r.abs());
            let w = p * (1.0 - p);
            // category indicators are mostly zero: skip their terms
            for i in 0..k {
                if row[i] == 0.0 {
                    continue;
                }
                grad[i] += row[i] * r;
                let wi = w * row[i];
                let lower = &mut info[i * k..i * k + i + 1];
                for (cell, x) in lower.iter_mut().zip(&row[..=i]) {
                    *cell += wi * x;
                }
            }
        }
        for i in 0..k {
            for j in 0..i {
                info[j * k + i] = info[i * k + j];
            }
        }
        for i in 1..k {
            grad[i] -= l2 * beta[i];
            info[i * k + i] += l2;
        }
        let penalty = 0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>();
        let objective = ll - penalty;
        let Some(l) = cholesky(&info, k) else {
            // the weights p(1 - p) vanish as the fit separates the outcomes: say so, not "singular"
            return Err(if worst_residual < 1e-3 {
                separation()
            } else {
                SegError::FitFailed {
                    message: "the features are collinear: the information matrix is singular"
                        .into(),
                    detail: "drop one of the collinear features".into(),
                }
            });
        };
        let step = solve(&l, k, &grad);
        beta.iter_mut().zip(&step).for_each(|(b, s)| *b += s);
        let largest = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        if !beta.iter().all(|b| b.is_finite()) {
            break;
        }
        if largest < 1e-10
            || (objective - ll_prev).abs() < 1e-14 * objective.abs().max(1.0) && largest < 1e-6
        {
            // the information a step this small left unchanged (to ~1e-10) gives the standard errors
            return finish(d, beta, l2, null_ll, iteration, true, Some(l));
        }
        ll_prev = objective;
    }
    finish(d, beta, l2, null_ll, max_iter, false, None)
}

fn separation() -> SegError {
    SegError::FitFailed {
        message: "perfect separation: the features predict the outcome exactly, so the maximum-likelihood coefficients are infinite".into(),
        detail: "an outcome that follows from the features needs no model; or fit with an L2 penalty (l2 => 1)".into(),
    }
}

/// Log-likelihood and standard errors at the final coefficients (from `factor`, the Cholesky factor of the
/// information just computed, when the last step was too small to change it).
#[allow(clippy::too_many_arguments)]
fn finish(
    d: &Design,
    beta: Vec<f64>,
    l2: f64,
    null_ll: f64,
    iterations: usize,
    converged: bool,
    factor: Option<Vec<f64>>,
) -> Result<Fit> {
    let k = d.k;
    let mut info = vec![0.0; if factor.is_some() { 0 } else { k * k }];
    let mut ll = 0.0;
    let mut separated = true;
    for (row, &y) in d.x.chunks_exact(k).zip(&d.y) {
        let eta: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
        let p = sigmoid(eta);
        ll += if y { -log1p_exp(-eta) } else { -log1p_exp(eta) };
        separated &= (p - if y { 1.0 } else { 0.0 }).abs() < 1e-6;
        if factor.is_some() {
            continue;
        }
        let w = p * (1.0 - p);
        for i in 0..k {
            if row[i] == 0.0 {
                continue;
            }
            let wi = w * row[i];
            for (cell, x) in info[i * k..(i + 1) * k].iter_mut().zip(row) {
                *cell += wi * x;
            }
        }
    }
    if separated || !ll.is_finite() {
        return Err(separation());
    }
    if factor.is_none() {
        for i in 1..k {
            info[i * k + i] += l2;
        }
    }
    let l = factor
        .or_else(|| cholesky(&info, k))
        .ok_or_else(|| SegError::FitFailed {
            message: "the information matrix is singular at the fit (quasi-complete separation or collinear features)".into(),
            detail: "a feature (or a category) that is all one outcome separates it: drop it or fit with an L2 penalty".into(),
        })?;
    let std_error = (0..k)
        .map(|i| {
            let mut e = vec![0.0; k];
            e[i] = 1.0;
            solve(&l, k, &e)[i].sqrt()
        })
        .collect();
    Ok(Fit {
        beta,
        std_error,
        log_likelihood: ll,
        null_log_likelihood: null_ll,
        iterations,
        converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y = 1 for x in a noisy band; compared with a fit computed by hand-checked Newton steps elsewhere,
    /// here only its defining property: the score equations are zero at the optimum.
    #[test]
    fn the_gradient_vanishes_at_the_fit() {
        let xs = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0];
        let ys = [
            false, false, true, false, true, false, true, true, true, true,
        ];
        let d = Design {
            k: 2,
            x: xs.iter().flat_map(|&x| [1.0, x]).collect(),
            y: ys.to_vec(),
        };
        let f = fit(&d, 0.0, 100).unwrap();
        assert!(f.converged);
        let (mut g0, mut g1) = (0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            let r = (y as u8 as f64) - sigmoid(f.beta[0] + f.beta[1] * x);
            g0 += r;
            g1 += r * x;
        }
        assert!(g0.abs() < 1e-9 && g1.abs() < 1e-9, "{g0} {g1}");
        assert!(f.log_likelihood > f.null_log_likelihood);
        // with a penalty the slope shrinks
        let p = fit(&d, 10.0, 100).unwrap();
        assert!(p.beta[1].abs() < f.beta[1].abs());
    }

    #[test]
    fn separation_and_constant_outcomes_are_errors() {
        let d = Design {
            k: 2,
            x: vec![1.0, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0],
            y: vec![false, false, true, true],
        };
        assert_eq!(fit(&d, 0.0, 100).unwrap_err().sqlstate(), "22000");
        let same = Design {
            k: 2,
            x: vec![1.0, 0.0, 1.0, 1.0],
            y: vec![true, true],
        };
        assert_eq!(fit(&same, 0.0, 100).unwrap_err().sqlstate(), "22023");
        let constant = Design {
            k: 2,
            x: vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            y: vec![true, false, true],
        };
        assert_eq!(fit(&constant, 0.0, 100).unwrap_err().sqlstate(), "22000");
    }
}

/// How a feature enters the model.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureKind {
    /// a number, as it is
    Number,
    /// true = 1, false = 0
    Boolean,
    /// one indicator per level but the first (in byte order), the reference level
    Category(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
}

/// One feature's value in a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    Boolean(bool),
    Level(&'a str),
}

impl Feature {
    /// The names of the feature's columns in the design matrix.
    pub fn terms(&self) -> Vec<String> {
        match &self.kind {
            FeatureKind::Category(levels) => levels[1..]
                .iter()
                .map(|l| format!("{}={l}", self.name))
                .collect(),
            _ => vec![self.name.clone()],
        }
    }

    /// Appends the feature's design columns for `v`; false for a category level the model has not seen.
    pub fn encode(&self, v: Value, out: &mut Vec<f64>) -> bool {
        match (&self.kind, v) {
            (FeatureKind::Number, Value::Number(x)) => out.push(x),
            (FeatureKind::Boolean, Value::Boolean(b)) => out.push(b as u8 as f64),
            (FeatureKind::Category(levels), Value::Level(l)) => {
                let Ok(at) = levels.binary_search_by(|x| x.as_str().cmp(l)) else {
                    return false;
                };
                out.extend((1..levels.len()).map(|i| (i == at) as u8 as f64));
            }
            _ => return false,
        }
        true
    }
}

/// Terms of a whole model: the intercept, then each feature's.
pub fn terms(features: &[Feature]) -> Vec<String> {
    std::iter::once("(intercept)".to_string())
        .chain(features.iter().flat_map(Feature::terms))
        .collect()
}

/// The fitted model as the jsonb value users store: what it predicts, how each feature is encoded, and the
/// statistics statsmodels reports.
pub fn model_json(
    outcome: &str,
    features: &[Feature],
    fit: &Fit,
    l2: f64,
    n: usize,
    dropped: usize,
) -> Json {
    let names = terms(features);
    let (z, p) = (fit.z(), fit.p_values());
    let coefficients: Vec<Json> = (0..names.len())
        .map(|i| {
            json!({"term": names[i], "estimate": fit.beta[i], "std_error": fit.std_error[i], "z": z[i],
                   "p_value": p[i], "odds_ratio": fit.beta[i].exp()})
        })
        .collect();
    let features: Vec<Json> = features
        .iter()
        .map(|f| match &f.kind {
            FeatureKind::Number => json!({"name": f.name, "kind": "number"}),
            FeatureKind::Boolean => json!({"name": f.name, "kind": "boolean"}),
            FeatureKind::Category(levels) => {
                json!({"name": f.name, "kind": "category", "levels": levels, "reference": levels[0]})
            }
        })
        .collect();
    json!({
        "model": "logistic", "outcome": outcome, "features": features, "coefficients": coefficients,
        "log_likelihood": fit.log_likelihood, "null_log_likelihood": fit.null_log_likelihood,
        "pseudo_r2": fit.pseudo_r2(), "aic": fit.aic(), "iterations": fit.iterations, "converged": fit.converged,
        "rows": n, "rows_dropped": dropped, "l2": l2
    })
}

/// A stored model read back for scoring.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorer {
    pub features: Vec<Feature>,
    pub beta: Vec<f64>,
}

impl Scorer {
    pub fn from_json(v: &Json) -> Result<Scorer> {
        let bad = |what: &str| {
            SegError::invalid_argument(
                format!("not a logistic model: {what}"),
                "pass the value segments.logistic_regression() returned",
            )
        };
        if v.get("model").and_then(Json::as_str) != Some("logistic") {
            return Err(bad("\"model\" is not \"logistic\""));
        }
        let features = v
            .get("features")
            .and_then(Json::as_array)
            .ok_or_else(|| bad("no \"features\""))?
            .iter()
            .map(|f| {
                let name = f
                    .get("name")
                    .and_then(Json::as_str)
                    .ok_or_else(|| bad("a feature without a name"))?;
                let kind = match f.get("kind").and_then(Json::as_str) {
                    Some("number") => FeatureKind::Number,
                    Some("boolean") => FeatureKind::Boolean,
                    Some("category") => {
                        let levels: Option<Vec<String>> = f
                            .get("levels")
                            .and_then(Json::as_array)
                            .map(|a| a.iter().map(|l| l.as_str().map(String::from)).collect())
                            .unwrap_or(None);
                        let mut levels = levels
                            .filter(|l| l.len() >= 2)
                            .ok_or_else(|| bad("a category without levels"))?;
                        let reference = levels[0].clone();
                        levels[1..].sort();
                        if levels.windows(2).any(|w| w[0] >= w[1]) || levels[0] != reference {
                            return Err(bad("category levels out of order"));
                        }
                        FeatureKind::Category(levels)
                    }
                    _ => return Err(bad("a feature kind other than number, boolean, category")),
                };
                Ok(Feature {
                    name: name.to_string(),
                    kind,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let coefficients = v
            .get("coefficients")
            .and_then(Json::as_array)
            .ok_or_else(|| bad("no \"coefficients\""))?;
        let names = terms(&features);
        if coefficients.len() != names.len() {
            return Err(bad("the coefficients do not match the features"));
        }
        let beta = coefficients
            .iter()
            .zip(&names)
            .map(|(c, name)| {
                match (
                    c.get("term").and_then(Json::as_str),
                    c.get("estimate").and_then(Json::as_f64),
                ) {
                    (Some(t), Some(b)) if t == name && b.is_finite() => Ok(b),
                    _ => Err(bad(&format!(
                        "coefficient \"{name}\" is missing or not finite"
                    ))),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Scorer { features, beta })
    }

    /// The row's design values (1 for the intercept, the number, 0/1 indicators), or None when a value is
    /// NULL or a level unseen.
    pub fn design_row(&self, values: &[Option<Value>]) -> Option<Vec<f64>> {
        let mut x = Vec::with_capacity(self.beta.len());
        x.push(1.0);
        for (f, v) in self.features.iter().zip(values) {
            if !f.encode((*v)?, &mut x) {
                return None;
            }
        }
        Some(x)
    }

    /// The log-odds of a row whose feature `j` is `value(j)`, or None for a NULL feature or an unseen level.
    /// Sums the terms in design order without building the row (zero indicators add nothing), so it equals
    /// Σ xᵢβᵢ over `design_row` and the SQL `to_sql` writes.
    pub fn log_odds<'v>(&self, value: impl Fn(usize) -> Option<Value<'v>>) -> Option<f64> {
        let mut eta = self.beta[0];
        let mut at = 1;
        for (j, f) in self.features.iter().enumerate() {
            match (&f.kind, value(j)?) {
                (FeatureKind::Number, Value::Number(x)) => eta += x * self.beta[at],
                (FeatureKind::Boolean, Value::Boolean(b)) => {
                    eta += (b as u8 as f64) * self.beta[at]
                }
                (FeatureKind::Category(levels), Value::Level(l)) => {
                    let i = levels.binary_search_by(|x| x.as_str().cmp(l)).ok()?;
                    if i > 0 {
                        eta += self.beta[at + i - 1];
                    }
                    at += levels.len() - 2;
                }
                _ => return None,
            }
            at += 1;
        }
        Some(eta)
    }

    /// P(outcome) for one row's feature values (None: a NULL feature or an unseen level).
    pub fn probability(&self, values: &[Option<Value>]) -> Option<f64> {
        self.log_odds(|j| values[j]).map(probability_of)
    }
}
