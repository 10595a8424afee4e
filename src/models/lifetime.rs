//! Customer-lifetime models fitted by maximum likelihood: BG/NBD (Fader, Hardie & Lee 2005) for repeat
//! purchasing, Gamma-Gamma for spend per purchase, and the shifted-beta-geometric model (Fader & Hardie 2007)
//! for contract renewals. Units are whatever the inputs use (weeks in the CDNOW examples).

use super::optimize::nelder_mead;
use crate::error::{Result, SegError};
use crate::metrics::stats::ln_gamma;
use std::collections::BTreeMap;

fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// One customer's repeat-purchase summary: x repeat purchases, the last at t_x, observed for T.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rfm {
    pub frequency: f64,
    pub recency: f64,
    pub t: f64,
}

impl Rfm {
    pub fn check(&self) -> Result<()> {
        let Rfm {
            frequency: x,
            recency: tx,
            t,
        } = *self;
        if !(x.is_finite() && tx.is_finite() && t.is_finite()) || x < 0.0 || tx < 0.0 || t < 0.0 {
            return Err(SegError::invalid_argument(
                format!("frequency {x}, recency {tx} and T {t} must be finite and non-negative"),
                "pass the columns of segments.rfm(...)",
            ));
        }
        if tx > t {
            return Err(SegError::invalid_argument(
                format!("recency {tx} is after the end of observation T = {t}"),
                "recency is the time from first to last purchase, T from first purchase to the end of observation",
            ));
        }
        if x.fract() != 0.0 {
            return Err(SegError::invalid_argument(
                format!("frequency {x} is not a whole number"),
                "frequency counts repeat purchases",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    /// Log-likelihood of one customer.
    pub fn ll(&self, c: &Rfm) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let Rfm {
            frequency: x,
            recency: tx,
            t,
        } = *c;
        let common = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let alive = ln_beta(a, b + x) - ln_beta(a, b) + common - (r + x) * (alpha + t).ln();
        if x > 0.0 {
            let dropped = ln_beta(a + 1.0, b + x - 1.0) - ln_beta(a, b) + common
                - (r + x) * (alpha + tx).ln();
            log_add(alive, dropped)
        } else {
            alive
        }
    }

    /// P(alive | x, t_x, T).
    pub fn p_alive(&self, c: &Rfm) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let Rfm {
            frequency: x,
            recency: tx,
            t,
        } = *c;
        if x == 0.0 {
            return 1.0;
        }
        1.0 / (1.0 + (a / (b + x - 1.0)) * ((alpha + t) / (alpha + tx)).powf(r + x))
    }

    /// Parameters inside the model's domain: all positive and finite (a = 1 exactly makes the closed form 0/0).
    pub fn check(&self) -> Result<()> {
        let BgNbd { r, alpha, a, b } = *self;
        if ![r, alpha, a, b].iter().all(|p| p.is_finite() && *p > 0.0) || a == 1.0 {
            return Err(SegError::out_of_range(
                format!("BG/NBD parameters r {r}, alpha {alpha}, a {a}, b {b} are outside the model's domain"),
                "r, alpha, a and b must be positive (a other than 1): pass the result of segments.bgnbd_fit()",
            ));
        }
        Ok(())
    }

    /// E[purchases in (T, T + horizon] | x, t_x, T].
    pub fn expected(&self, horizon: f64, c: &Rfm) -> Result<f64> {
        self.check()?;
        if !(horizon.is_finite() && horizon >= 0.0) {
            return Err(SegError::out_of_range(
                format!("horizon {horizon} must be finite and non-negative"),
                "",
            ));
        }
        let BgNbd { r, alpha, a, b } = *self;
        let Rfm {
            frequency: x,
            recency: tx,
            t,
        } = *c;
        let z = horizon / (alpha + t + horizon);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z).ok_or_else(|| {
            SegError::out_of_range(
                format!("horizon {horizon} is too long for the BG/NBD series to converge"),
                "use a horizon of the order of the observation period",
            )
        })?;
        let numerator = (a + b + x - 1.0) / (a - 1.0)
            * (1.0 - ((alpha + t) / (alpha + t + horizon)).powf(r + x) * hyp);
        let denominator = if x > 0.0 {
            1.0 + (a / (b + x - 1.0)) * ((alpha + t) / (alpha + tx)).powf(r + x)
        } else {
            1.0
        };
        let e = numerator / denominator;
        if !e.is_finite() || e < -1e-9 {
            return Err(SegError::out_of_range(
                format!("BG/NBD expectation for horizon {horizon} cannot be computed accurately"),
                "use a shorter horizon",
            ));
        }
        Ok(e.max(0.0))
    }
}

/// Gauss hypergeometric 2F1(a, b; c; z) for 0 <= z < 1, by its power series; None when the series has
/// not converged within its term limit (z close to 1), rather than a truncated sum that looks like a value.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    let (mut term, mut sum) = (1.0, 1.0);
    for n in 0..100_000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if !sum.is_finite() {
            return None;
        }
        if term.abs() < 1e-16 * sum.abs() {
            return Some(sum);
        }
    }
    None
}

#[derive(Debug)]
pub struct Fit<P> {
    pub params: P,
    pub log_likelihood: f64,
    pub n: usize,
}

fn fit_failed(model: &str, evaluations: usize) -> SegError {
    SegError::FitFailed {
        message: format!("{model} fit did not converge"),
        detail: format!("the likelihood did not settle after {evaluations} evaluations; the data may not identify the model"),
    }
}

/// Maximum-likelihood BG/NBD over customers' (x, t_x, T).
pub fn fit_bgnbd(customers: &[Rfm]) -> Result<Fit<BgNbd>> {
    customers.iter().try_for_each(Rfm::check)?;
    if customers.len() < 2 {
        return Err(SegError::invalid_argument(
            format!("BG/NBD needs at least 2 customers, got {}", customers.len()),
            "",
        ));
    }
    if customers.iter().all(|c| c.frequency == 0.0) {
        return Err(SegError::invalid_argument(
            "BG/NBD needs repeat purchases: every frequency is 0",
            "fit over a longer calibration period",
        ));
    }
    let params = |p: &[f64]| BgNbd {
        r: p[0].exp(),
        alpha: p[1].exp(),
        a: p[2].exp(),
        b: p[3].exp(),
    };
    // Customers grouped by frequency (the gamma and beta terms depend on x alone), identical (t_x, T) merged.
    let mut groups: BTreeMap<u64, BTreeMap<(u64, u64), f64>> = BTreeMap::new();
    for c in customers {
        *groups
            .entry(c.frequency as u64)
            .or_default()
            .entry((c.recency.to_bits(), c.t.to_bits()))
            .or_insert(0.0) += 1.0;
    }
    // (x, [(t_x, T, customers)])
    type Group = (f64, Vec<(f64, f64, f64)>);
    let groups: Vec<Group> = groups
        .into_iter()
        .map(|(x, cs)| {
            (
                x as f64,
                cs.into_iter()
                    .map(|((tx, t), w)| (f64::from_bits(tx), f64::from_bits(t), w))
                    .collect(),
            )
        })
        .collect();
    let nll = |p: &[f64]| {
        let BgNbd { r, alpha, a, b } = params(p);
        let base = ln_beta(a, b);
        let mut ll = 0.0;
        for (x, cs) in &groups {
            let x = *x;
            let common = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
            let alive = ln_beta(a, b + x) - base + common;
            let dropped = if x > 0.0 {
                ln_beta(a + 1.0, b + x - 1.0) - base + common
            } else {
                0.0
            };
            for &(tx, t, w) in cs {
                let la = alive - (r + x) * (alpha + t).ln();
                ll += w * if x > 0.0 {
                    log_add(la, dropped - (r + x) * (alpha + tx).ln())
                } else {
                    la
                };
            }
        }
        -ll
    };
    let mean_t = customers.iter().map(|c| c.t).sum::<f64>() / customers.len() as f64;
    let m = nelder_mead(nll, &[0.0, mean_t.max(1e-3).ln(), 0.0, 0.0], 1e-13, 40_000);
    if !m.converged {
        return Err(fit_failed("BG/NBD", m.evaluations));
    }
    Ok(Fit {
        params: params(&m.x),
        log_likelihood: -m.value,
        n: customers.len(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl GammaGamma {
    /// Log-likelihood of a mean spend `m` over `x` purchases.
    pub fn ll(&self, x: f64, m: f64) -> f64 {
        let GammaGamma { p, q, v } = *self;
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * v.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + v).ln()
    }

    /// E[mean spend | x, m]: a weighted mean of the population mean p·v/(q−1) and the customer's own mean;
    /// defined for positive p and v and q > 1 (the population mean is infinite otherwise).
    pub fn expected_spend(&self, x: f64, m: f64) -> Result<f64> {
        let GammaGamma { p, q, v } = *self;
        if ![p, q, v].iter().all(|x| x.is_finite() && *x > 0.0) || q <= 1.0 {
            return Err(SegError::out_of_range(
                format!(
                    "Gamma-Gamma parameters p {p}, q {q}, v {v} are outside the model's domain"
                ),
                "p and v must be positive and q > 1: pass the result of segments.gamma_gamma_fit()",
            ));
        }
        if !(x.is_finite() && m.is_finite()) || x < 0.0 || m < 0.0 {
            return Err(SegError::invalid_argument(
                "frequency and monetary must be finite and non-negative",
                "",
            ));
        }
        Ok(p * (v + x * m) / (p * x + q - 1.0))
    }
}

/// Maximum-likelihood Gamma-Gamma over repeat buyers' (frequency, mean spend); other customers are skipped.
pub fn fit_gamma_gamma(customers: &[(f64, f64)]) -> Result<Fit<GammaGamma>> {
    for &(x, m) in customers {
        if !(x.is_finite() && m.is_finite()) || x < 0.0 || m < 0.0 {
            return Err(SegError::invalid_argument(
                format!("frequency {x} and monetary {m} must be finite and non-negative"),
                "",
            ));
        }
    }
    let buyers: Vec<(f64, f64)> = customers
        .iter()
        .copied()
        .filter(|&(x, m)| x > 0.0 && m > 0.0)
        .collect();
    if buyers.len() < 2 {
        return Err(SegError::invalid_argument(
            format!(
                "Gamma-Gamma needs at least 2 repeat buyers with spend, got {}",
                buyers.len()
            ),
            "the model describes the spend of customers with frequency > 0",
        ));
    }
    // the model separates spend variation within and between customers: identical means leave it unidentified
    // (the likelihood grows without bound as p does)
    if buyers.iter().all(|&(_, m)| m == buyers[0].1) {
        return Err(SegError::FitFailed {
            message: "Gamma-Gamma cannot be fitted: every repeat buyer has the same mean spend"
                .into(),
            detail: format!(
                "{} repeat buyers, each with mean spend {}",
                buyers.len(),
                buyers[0].1
            ),
        });
    }
    let params = |p: &[f64]| GammaGamma {
        p: p[0].exp(),
        q: p[1].exp(),
        v: p[2].exp(),
    };
    let nll = |p: &[f64]| {
        let g = params(p);
        -buyers.iter().map(|&(x, m)| g.ll(x, m)).sum::<f64>()
    };
    let m = nelder_mead(nll, &[0.0, 0.0, 0.0], 1e-13, 40_000);
    if !m.converged {
        return Err(fit_failed("Gamma-Gamma", m.evaluations));
    }
    Ok(Fit {
        params: params(&m.x),
        log_likelihood: -m.value,
        n: buyers.len(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sbg {
    pub alpha: f64,
    pub beta: f64,
}

impl Sbg {
    /// P(T = t), t = 1, 2, ...: the share lost in period t.
    fn churn_at(&self, t: u32) -> f64 {
        let Sbg { alpha, beta } = *self;
        let mut p = alpha / (alpha + beta);
        for s in 2..=t {
            let s = s as f64;
            p *= (beta + s - 2.0) / (alpha + beta + s - 1.0);
        }
        p
    }

    /// S(t): the share still customers after t periods.
    pub fn survival(&self, t: f64) -> f64 {
        (ln_beta(self.alpha, self.beta + t) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// r(t) = S(t) / S(t − 1): retention rate in period t.
    pub fn retention(&self, t: f64) -> f64 {
        (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)
    }
}

/// Fits sBG to a survival curve: `alive[t]` customers (or shares) at period t = 0..; period 0 is the cohort.
pub fn fit_sbg(curve: &[(u32, f64)]) -> Result<Fit<Sbg>> {
    let mut curve = curve.to_vec();
    curve.sort_by_key(|&(t, _)| t);
    if curve.len() < 3 || curve[0].0 != 0 || curve.windows(2).any(|w| w[1].0 != w[0].0 + 1) {
        return Err(SegError::invalid_argument(
            "sBG needs a survival curve with periods 0, 1, 2, ... and no gaps (at least 3 periods)",
            "pass (period, customers alive) with period 0 the starting cohort",
        ));
    }
    if curve.iter().any(|&(_, n)| !n.is_finite() || n < 0.0)
        || curve.windows(2).any(|w| w[1].1 > w[0].1)
        || curve[0].1 <= 0.0
    {
        return Err(SegError::invalid_argument(
            "customers alive must be non-negative and never increase",
            "a survival curve counts the customers of one cohort still active in each period",
        ));
    }
    let last = curve.len() - 1;
    let nll = |p: &[f64]| {
        let m = Sbg {
            alpha: p[0].exp(),
            beta: p[1].exp(),
        };
        let mut ll = 0.0;
        let mut survival = 1.0;
        for t in 1..=last {
            let lost = curve[t - 1].1 - curve[t].1;
            let p_t = m.churn_at(t as u32);
            survival -= p_t;
            ll += lost * p_t.ln();
        }
        -(ll + curve[last].1 * survival.ln())
    };
    let m = nelder_mead(nll, &[0.0, 0.0], 1e-14, 20_000);
    if !m.converged {
        return Err(fit_failed("sBG", m.evaluations));
    }
    Ok(Fit {
        params: Sbg {
            alpha: m.x[0].exp(),
            beta: m.x[1].exp(),
        },
        log_likelihood: -m.value,
        n: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sbg_reproduces_fader_hardie_2007() {
        // Table 1, "Regular" segment, years 0-7 (% surviving; the fit is scale-free)
        let regular = [100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1];
        let curve: Vec<(u32, f64)> = regular
            .iter()
            .enumerate()
            .map(|(t, &s)| (t as u32, s * 10.0))
            .collect();
        let fit = fit_sbg(&curve).unwrap();
        assert!(
            (fit.params.alpha - 0.704).abs() < 1e-3 && (fit.params.beta - 1.182).abs() < 1e-3,
            "{:?}",
            fit.params
        );
        let s = fit.params;
        assert!((s.survival(1.0) - (1.0 - s.churn_at(1))).abs() < 1e-12);
        assert!((s.survival(2.0) / s.survival(1.0) - s.retention(2.0)).abs() < 1e-12);
    }

    #[test]
    fn hypergeometric_series() {
        // 2F1(1, 1; 2; z) = -ln(1 - z) / z
        let z: f64 = 0.5;
        assert!((hyp2f1(1.0, 1.0, 2.0, z).unwrap() - (-(1.0 - z).ln() / z)).abs() < 1e-14);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(fit_bgnbd(&[Rfm {
            frequency: 1.0,
            recency: 5.0,
            t: 3.0
        }])
        .is_err());
        let none = [
            Rfm {
                frequency: 0.0,
                recency: 0.0,
                t: 3.0,
            },
            Rfm {
                frequency: 0.0,
                recency: 0.0,
                t: 4.0,
            },
        ];
        assert!(fit_bgnbd(&none)
            .unwrap_err()
            .to_string()
            .contains("repeat purchases"));
        assert!(fit_gamma_gamma(&[(1.0, 10.0)]).is_err());
        assert!(fit_sbg(&[(0, 10.0), (1, 12.0), (2, 5.0)]).is_err());
    }

    #[test]
    fn p_alive_and_expectation_limits() {
        let m = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        assert_eq!(
            m.p_alive(&Rfm {
                frequency: 0.0,
                recency: 0.0,
                t: 10.0
            }),
            1.0
        );
        let c = Rfm {
            frequency: 2.0,
            recency: 30.43,
            t: 38.86,
        };
        assert!(m.expected(0.0, &c).unwrap().abs() < 1e-12);
        assert!(m.expected(52.0, &c).unwrap() > m.expected(26.0, &c).unwrap());
        // a horizon the series cannot reach is an error, not a negative expectation (was -10.8)
        assert!(m.expected(1e12, &c).is_err());
    }
}
