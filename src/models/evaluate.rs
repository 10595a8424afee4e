//! Honest evaluation of scores against outcomes: AUC (Mann–Whitney, ties counted half, as scikit-learn's
//! `roc_auc_score`) with DeLong's standard error, log loss, Brier score, a calibration table and a gains / lift
//! table by score group. Pure Rust over (score, outcome) pairs.

use crate::error::{Result, SegError};
use crate::metrics::stats::z_for_confidence;
use serde_json::{json, Value};

/// (score, outcome) pairs; NaN scores are refused by the callers.
pub type Scored = [(f64, bool)];

fn counts(pairs: &Scored) -> Result<(usize, usize)> {
    let pos = pairs.iter().filter(|p| p.1).count();
    let neg = pairs.len() - pos;
    if pos == 0 || neg == 0 {
        return Err(SegError::invalid_argument(
            format!("the AUC needs both outcomes: {pos} positive and {neg} negative rows"),
            "evaluate on rows where the outcome is both true and false",
        ));
    }
    Ok((pos, neg))
}

/// Sorted copy, ascending by score.
fn sorted(pairs: &Scored) -> Vec<(f64, bool)> {
    let mut v = pairs.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// AUC and its DeLong variance. For each positive, the share of negatives it outranks (ties half); for each
/// negative, the share of positives above it; AUC is their mean, and var = s²₁₀/m + s²₀₁/n.
pub fn auc(pairs: &Scored) -> Result<(f64, f64)> {
    let (m, n) = counts(pairs)?;
    let v = sorted(pairs);
    let mut v10 = Vec::with_capacity(m);
    let mut v01 = Vec::with_capacity(n);
    let (mut neg_below, mut pos_below) = (0usize, 0usize);
    let mut i = 0;
    while i < v.len() {
        crate::interrupt::check();
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let tied_pos = v[i..j].iter().filter(|p| p.1).count();
        let tied_neg = (j - i) - tied_pos;
        for p in &v[i..j] {
            if p.1 {
                v10.push((neg_below as f64 + 0.5 * tied_neg as f64) / n as f64);
            } else {
                let above = m - pos_below - tied_pos;
                v01.push((above as f64 + 0.5 * tied_pos as f64) / m as f64);
            }
        }
        neg_below += tied_neg;
        pos_below += tied_pos;
        i = j;
    }
    let area = v10.iter().sum::<f64>() / m as f64;
    let variance = |xs: &[f64]| {
        if xs.len() < 2 {
            return 0.0;
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (xs.len() - 1) as f64
    };
    Ok((area, variance(&v10) / m as f64 + variance(&v01) / n as f64))
}

/// AUC with a normal (DeLong) confidence interval, clipped to [0, 1].
pub fn auc_interval(pairs: &Scored, confidence: f64) -> Result<(f64, f64, f64)> {
    let (a, var) = auc(pairs)?;
    let half = z_for_confidence(confidence) * var.sqrt();
    Ok((a, (a - half).max(0.0), (a + half).min(1.0)))
}

fn probabilities(pairs: &Scored) -> Result<()> {
    match pairs.iter().find(|p| !(0.0..=1.0).contains(&p.0)) {
        Some(p) => Err(SegError::out_of_range(
            format!("a probability of {:.6} is outside 0..1", p.0),
            "log loss and the Brier score take probabilities between 0 and 1, e.g. segments.score(...)",
        )),
        None => Ok(()),
    }
}

/// Mean negative log-likelihood (infinite when a certain prediction is wrong).
pub fn log_loss(pairs: &Scored) -> Result<f64> {
    probabilities(pairs)?;
    let sum: f64 = pairs
        .iter()
        .map(|&(p, y)| -(if y { p.ln() } else { (1.0 - p).ln() }))
        .sum();
    Ok(sum / pairs.len() as f64)
}

/// Mean squared difference between probability and outcome.
pub fn brier(pairs: &Scored) -> Result<f64> {
    probabilities(pairs)?;
    Ok(pairs
        .iter()
        .map(|&(p, y)| (p - y as u8 as f64).powi(2))
        .sum::<f64>()
        / pairs.len() as f64)
}

/// Rows split into `groups` of (nearly) equal size by score, highest first as `ntile(groups) OVER (ORDER BY
/// score DESC)` splits them (the first groups take one row more); ties go by input order.
fn by_group(pairs: &Scored, groups: usize) -> Result<Vec<Vec<(f64, bool)>>> {
    if groups < 1 || groups > pairs.len().max(1) {
        return Err(SegError::invalid_argument(
            format!("{groups} groups for {} rows", pairs.len()),
            "ask for between 1 and as many groups as rows, e.g. 10 (deciles)",
        ));
    }
    let mut v = pairs.to_vec();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (size, extra) = (v.len() / groups, v.len() % groups);
    let mut out = Vec::with_capacity(groups);
    let mut at = 0;
    for g in 0..groups {
        let len = size + (g < extra) as usize;
        out.push(v[at..at + len].to_vec());
        at += len;
    }
    Ok(out)
}

/// Calibration: per score group (highest first), rows, mean predicted probability, observed rate.
pub fn calibration(pairs: &Scored, groups: usize) -> Result<Value> {
    probabilities(pairs)?;
    let rows: Vec<Value> = by_group(pairs, groups)?
        .iter()
        .enumerate()
        .map(|(g, rows)| {
            let n = rows.len() as f64;
            json!({"group": g + 1, "rows": rows.len(),
                   "mean_score": rows.iter().map(|r| r.0).sum::<f64>() / n,
                   "observed_rate": rows.iter().filter(|r| r.1).count() as f64 / n})
        })
        .collect();
    Ok(Value::from(rows))
}

/// Gains and lift per score group (highest first): positives, their rate, lift over the base rate, and the
/// cumulative share of all positives found.
pub fn gains(pairs: &Scored, groups: usize) -> Result<Value> {
    let total = pairs.iter().filter(|p| p.1).count() as f64;
    let base = total / pairs.len().max(1) as f64;
    let mut found = 0.0;
    let rows: Vec<Value> = by_group(pairs, groups)?
        .iter()
        .enumerate()
        .map(|(g, rows)| {
            let positives = rows.iter().filter(|r| r.1).count() as f64;
            found += positives;
            let rate = positives / rows.len() as f64;
            json!({"group": g + 1, "rows": rows.len(), "positives": positives as u64, "rate": rate,
                   "lift": if base > 0.0 { Value::from(rate / base) } else { Value::Null },
                   "cumulative_gain": if total > 0.0 { Value::from(found / total) } else { Value::Null },
                   "min_score": rows.last().map(|r| r.0), "max_score": rows.first().map(|r| r.0)})
        })
        .collect();
    Ok(Value::from(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_half_and_matches_a_brute_force_count() {
        let pairs = [
            (0.1, false),
            (0.4, true),
            (0.35, false),
            (0.8, true),
            (0.4, false),
            (0.9, true),
            (0.2, true),
        ];
        let (a, var) = auc(&pairs).unwrap();
        let mut wins = 0.0;
        let (pos, neg): (Vec<&(f64, bool)>, Vec<&(f64, bool)>) = pairs.iter().partition(|p| p.1);
        for p in &pos {
            for q in &neg {
                wins += if p.0 > q.0 {
                    1.0
                } else if p.0 == q.0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
        assert!((a - wins / (pos.len() * neg.len()) as f64).abs() < 1e-15);
        assert!(var > 0.0);
        assert_eq!(auc(&[(0.5, true)]).unwrap_err().sqlstate(), "22023");
    }

    #[test]
    fn groups_are_ntile_sized() {
        let pairs: Vec<(f64, bool)> = (0..23).map(|i| (i as f64 / 23.0, i % 3 == 0)).collect();
        let g = gains(&pairs, 10).unwrap();
        let sizes: Vec<u64> = g
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rows"].as_u64().unwrap())
            .collect();
        assert_eq!(sizes, vec![3, 3, 3, 2, 2, 2, 2, 2, 2, 2]);
        assert_eq!(g[9]["cumulative_gain"], json!(1.0));
        assert_eq!(brier(&[(1.0, true), (0.0, false)]).unwrap(), 0.0);
        assert_eq!(log_loss(&[(1.5, true)]).unwrap_err().sqlstate(), "22003");
    }
}
