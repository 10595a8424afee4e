//! Segment health metrics: the aggregate states (flat float8 arrays, so Postgres and Citus can combine them
//! across workers), their finals, intervals, and the separation test. Pure Rust.

pub mod stats;

use crate::error::{Result, SegError};
use stats::{f_survival, z_for_confidence};

/// Layout of the aggregate states: one float8[] each, counts and sums only, so `combine` is element-wise
/// addition and moving-window inverses are element-wise subtraction.
pub mod layout {
    /// nps: responses, promoters (9-10), detractors (0-6)
    pub const NPS: usize = 3;
    /// churn_rate: non-NULL rows, churned rows
    pub const CHURN: usize = 2;
    /// nrr / grr / arr_growth: all rows Σstart Σend, then over rows with start > 0: n, Σstart, Σend, Σleast
    pub const REVENUE: usize = 7;
    /// clv: accounts, Σarpa, churned accounts, Σgross margin
    pub const CLV: usize = 4;
}

/// A state array handed to a final function, checked before use: it has its layout's length and no NULLs
/// (22023: a hand-made array is not an aggregate's state), and its sums stayed finite (22003: overflow).
pub fn checked_state(state: &[Option<f64>], len: usize) -> Result<Vec<f64>> {
    if state.len() != len || state.iter().any(Option::is_none) {
        return Err(SegError::invalid_argument(
            format!(
                "not a state of this aggregate: expected {len} numbers without NULLs, got {}",
                state.len()
            ),
            "final functions are called by their aggregates",
        ));
    }
    let state: Vec<f64> = state.iter().flatten().copied().collect();
    if state.iter().any(|x| !x.is_finite()) {
        return Err(SegError::out_of_range(
            "the aggregate's sums overflowed double precision",
            "aggregate fewer or smaller values (e.g. ARR in thousands)",
        ));
    }
    Ok(state)
}

pub fn check_confidence(confidence: f64) -> Result<f64> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(confidence)
    } else {
        Err(SegError::out_of_range(
            format!("confidence {confidence} is not between 0 and 1"),
            "use e.g. 0.95 for a 95% interval",
        ))
    }
}

/// Checks an NPS answer and returns its bucket: +1 promoter, -1 detractor, 0 passive.
pub fn nps_bucket(score: i64) -> Result<i8> {
    match score {
        9..=10 => Ok(1),
        7..=8 => Ok(0),
        0..=6 => Ok(-1),
        _ => Err(SegError::out_of_range(
            format!("NPS score {score} is outside 0..10"),
            "NPS answers are integers from 0 to 10",
        )),
    }
}

/// A numeric NPS answer: a whole number (9.0 is 9; 9.5 is no answer on the 0-10 scale).
pub fn whole_score(x: f64) -> Result<i64> {
    if x.fract() == 0.0 && x.abs() <= 1e15 {
        Ok(x as i64)
    } else {
        Err(SegError::out_of_range(
            format!("NPS score {x} is not a whole number"),
            "NPS answers are integers from 0 to 10",
        ))
    }
}

/// A percentile's fraction: 0 is the minimum, 0.5 the median, 1 the maximum.
pub fn check_fraction(fraction: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&fraction) {
        Ok(fraction)
    } else {
        Err(SegError::out_of_range(
            format!("percentile {fraction} is not between 0 and 1"),
            "ask for the median as 0.5, the 90th percentile as 0.9",
        ))
    }
}

/// Percentiles by linear interpolation between the closest ranks, as percentile_cont defines them;
/// sorts `values` in place. None for no values.
pub fn percentiles(values: &mut [f64], fractions: &[f64]) -> Option<Vec<f64>> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(f64::total_cmp);
    let last = values.len() - 1;
    Some(
        fractions
            .iter()
            .map(|f| {
                let rank = f * last as f64;
                let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
                values[lo] + (rank - lo as f64) * (values[hi] - values[lo])
            })
            .collect(),
    )
}

/// Checks one ARR value: finite and not negative.
pub fn check_arr(value: f64, what: &str) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(SegError::out_of_range(
            format!("{what} {value} is not a finite, non-negative amount"),
            "ARR is a non-negative amount; use NULL when unknown",
        ))
    }
}

/// Net Promoter Score, -100..100; None without responses.
pub fn nps(state: &[f64]) -> Option<f64> {
    let (n, p, d) = (state[0], state[1], state[2]);
    (n > 0.0).then(|| 100.0 * (p - d) / n)
}

/// A rate with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub n: f64,
}

/// NPS with a normal interval from the multinomial variance: Var = (p + d - (p - d)²) / n, in points.
pub fn nps_interval(state: &[f64], confidence: f64) -> Option<Interval> {
    let (n, p, d) = (state[0], state[1] / state[0], state[2] / state[0]);
    if state[0] <= 0.0 {
        return None;
    }
    let estimate = 100.0 * (p - d);
    let se = 100.0 * ((p + d - (p - d) * (p - d)) / n).max(0.0).sqrt();
    let z = z_for_confidence(confidence);
    Some(Interval {
        estimate,
        lower: (estimate - z * se).max(-100.0),
        upper: (estimate + z * se).min(100.0),
        n,
    })
}

pub fn churn_rate(state: &[f64]) -> Option<f64> {
    (state[0] > 0.0).then(|| state[1] / state[0])
}

/// Wilson score interval for a proportion.
pub fn wilson(successes: f64, n: f64, confidence: f64) -> Option<Interval> {
    if n <= 0.0 {
        return None;
    }
    let z = z_for_confidence(confidence);
    let p = successes / n;
    let z2n = z * z / n;
    let center = (p + z2n / 2.0) / (1.0 + z2n);
    let half = z / (1.0 + z2n) * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt();
    // the bounds are exactly 0 and 1 at the extremes; say so rather than leave rounding dust
    let lower = if successes <= 0.0 {
        0.0
    } else {
        (center - half).max(0.0)
    };
    let upper = if successes >= n {
        1.0
    } else {
        (center + half).min(1.0)
    };
    Some(Interval {
        estimate: p,
        lower,
        upper,
        n,
    })
}

/// Adds one account's revenue to a REVENUE state. A NULL end counts as 0 (churned); a NULL start as 0 (new).
pub fn revenue_add(state: &mut [f64], start: Option<f64>, end: Option<f64>, sign: f64) {
    let (s, e) = (start.unwrap_or(0.0), end.unwrap_or(0.0));
    state[0] += sign * s;
    state[1] += sign * e;
    if s > 0.0 {
        state[2] += sign;
        state[3] += sign * s;
        state[4] += sign * e;
        state[5] += sign * e.min(s);
    }
    state[6] += sign;
}

/// Net revenue retention: Σ end / Σ start over accounts that had revenue at the start.
pub fn nrr(state: &[f64]) -> Option<f64> {
    (state[3] > 0.0).then(|| state[4] / state[3])
}

/// Gross revenue retention: Σ least(end, start) / Σ start over the same accounts.
pub fn grr(state: &[f64]) -> Option<f64> {
    (state[3] > 0.0).then(|| state[5] / state[3])
}

/// ARR growth over all rows, new accounts included: (Σ end − Σ start) / Σ start.
pub fn arr_growth(state: &[f64]) -> Option<f64> {
    (state[0] > 0.0).then(|| (state[1] - state[0]) / state[0])
}

/// Customer lifetime value per period formula: ARPA × gross margin / churn rate (periods of the churn rate).
pub fn clv(arpa: f64, gross_margin: f64, churn_rate: f64) -> Result<f64> {
    check_arr(arpa, "ARPA")?;
    if !(0.0..=1.0).contains(&gross_margin) {
        return Err(SegError::out_of_range(
            format!("gross margin {gross_margin} is outside 0..1"),
            "write 70% as 0.7",
        ));
    }
    if !(churn_rate > 0.0 && churn_rate <= 1.0) {
        return Err(SegError::out_of_range(
            format!("churn rate {churn_rate} is outside (0, 1]"),
            "with no churn the expected lifetime is unbounded; CLV needs a churn rate above 0",
        ));
    }
    Ok(arpa * gross_margin / churn_rate)
}

/// Aggregate CLV: mean ARPA × mean gross margin / churn rate of the group; None when nobody churned.
pub fn clv_of_group(state: &[f64]) -> Option<f64> {
    let (n, arpa, churned, margin) = (state[0], state[1], state[2], state[3]);
    (n > 0.0 && churned > 0.0).then(|| (arpa / n) * (margin / n) / (churned / n))
}

/// Per-group sufficient statistics for one-way ANOVA.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub n: f64,
    pub sum: f64,
    pub sum_sq: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Separation {
    pub f: f64,
    pub p_value: f64,
    pub eta_squared: f64,
    pub df_between: f64,
    pub df_within: f64,
    pub groups: usize,
    pub n: f64,
}

/// One-way ANOVA across segments. None with fewer than 2 groups or no within-group degrees of freedom.
pub fn separation(groups: &[Moments]) -> Option<Separation> {
    let groups: Vec<&Moments> = groups.iter().filter(|g| g.n > 0.0).collect();
    let k = groups.len();
    let n: f64 = groups.iter().map(|g| g.n).sum();
    if k < 2 || n - k as f64 <= 0.0 {
        return None;
    }
    let grand = groups.iter().map(|g| g.sum).sum::<f64>() / n;
    // within: Σ over groups of Σ(x − mean_g)², computed from moments
    let ss_within: f64 = groups
        .iter()
        .map(|g| (g.sum_sq - g.sum * g.sum / g.n).max(0.0))
        .sum();
    let ss_between: f64 = groups
        .iter()
        .map(|g| g.n * (g.sum / g.n - grand).powi(2))
        .sum();
    let (df_b, df_w) = ((k - 1) as f64, n - k as f64);
    let f = (ss_between / df_b) / (ss_within / df_w);
    let total = ss_between + ss_within;
    Some(Separation {
        f,
        p_value: if f.is_finite() {
            f_survival(f, df_b, df_w)
        } else {
            0.0
        },
        eta_squared: if total > 0.0 { ss_between / total } else { 0.0 },
        df_between: df_b,
        df_within: df_w,
        groups: k,
        n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_and_buckets() {
        assert_eq!(nps_bucket(10).unwrap(), 1);
        assert_eq!(nps_bucket(7).unwrap(), 0);
        assert_eq!(nps_bucket(0).unwrap(), -1);
        assert_eq!(nps_bucket(11).unwrap_err().sqlstate(), "22003");
        assert_eq!(nps(&[4.0, 2.0, 1.0]), Some(25.0));
        assert_eq!(nps(&[0.0, 0.0, 0.0]), None);
        let iv = nps_interval(&[100.0, 50.0, 20.0], 0.95).unwrap();
        // p=.5 d=.2: var = (.7 - .09)/100 = .0061, se = 7.8102 points
        assert!(
            (iv.upper - iv.estimate - 1.959963984540054 * 100.0 * 0.0061f64.sqrt()).abs() < 1e-9
        );
    }

    #[test]
    fn wilson_matches_textbook() {
        // Wilson 95% for 1655/3875 (Telco month-to-month churn)
        let iv = wilson(1655.0, 3875.0, 0.95).unwrap();
        let (p, n, z) = (1655.0 / 3875.0, 3875.0, 1.959963984540054f64);
        let center = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
        assert!(
            (iv.lower - (center - half)).abs() < 1e-15
                && (iv.upper - (center + half)).abs() < 1e-15
        );
        assert!(wilson(0.0, 0.0, 0.95).is_none());
        assert_eq!(wilson(0.0, 10.0, 0.95).unwrap().lower, 0.0);
    }

    #[test]
    fn revenue_retention() {
        let mut s = [0.0; layout::REVENUE];
        revenue_add(&mut s, Some(100.0), Some(120.0), 1.0); // expansion
        revenue_add(&mut s, Some(100.0), None, 1.0); // churned
        revenue_add(&mut s, None, Some(50.0), 1.0); // new
        assert_eq!(nrr(&s), Some(0.6));
        assert_eq!(grr(&s), Some(0.5));
        assert_eq!(arr_growth(&s), Some((170.0 - 200.0) / 200.0));
        revenue_add(&mut s, Some(100.0), None, -1.0);
        assert_eq!(nrr(&s), Some(1.2));
        assert!(check_arr(-1.0, "arr_start").is_err() && check_arr(f64::NAN, "x").is_err());
    }

    #[test]
    fn clv_formula() {
        assert_eq!(clv(100.0, 0.8, 0.02).unwrap(), 4000.0);
        assert!(clv(100.0, 0.8, 0.0).is_err());
        assert_eq!(
            clv_of_group(&[4.0, 400.0, 1.0, 3.2]),
            Some(100.0 * 0.8 / 0.25)
        );
        assert_eq!(clv_of_group(&[4.0, 400.0, 0.0, 3.2]), None);
    }

    #[test]
    fn anova_against_hand_computation() {
        // groups {1,2,3}, {4,5,6}: means 2 and 5, grand 3.5; SSB = 3*2.25*2 = 13.5, SSW = 2+2 = 4
        let g = |xs: &[f64]| Moments {
            n: xs.len() as f64,
            sum: xs.iter().sum(),
            sum_sq: xs.iter().map(|x| x * x).sum(),
        };
        let s = separation(&[g(&[1.0, 2.0, 3.0]), g(&[4.0, 5.0, 6.0])]).unwrap();
        assert!((s.f - 13.5).abs() < 1e-12);
        assert!((s.eta_squared - 13.5 / 17.5).abs() < 1e-12);
        assert_eq!((s.df_between, s.df_within), (1.0, 4.0));
        // P(F(1,4) > 13.5) = I_x(2, 1/2) with x = 4/17.5, which has the closed form
        // (4/3 − 2√(1−x) + (2/3)(1−x)^1.5) / (4/3)
        let y: f64 = 1.0 - 4.0 / 17.5;
        let exact = (4.0 / 3.0 - 2.0 * y.sqrt() + 2.0 / 3.0 * y.powf(1.5)) / (4.0 / 3.0);
        assert!(
            (s.p_value - exact).abs() < 1e-12,
            "{} vs {exact}",
            s.p_value
        );
        assert!(separation(&[g(&[1.0, 2.0])]).is_none());
    }

    #[test]
    fn percentiles_interpolate_like_percentile_cont() {
        let mut v = vec![10.0, 1.0, 4.0, 3.0];
        // sorted 1 3 4 10: rank 0.5*3 = 1.5 → 3.5; rank 0.9*3 = 2.7 → 4 + 0.7*6
        let p = percentiles(&mut v, &[0.0, 0.5, 0.9, 1.0]).unwrap();
        assert_eq!((p[0], p[1], p[3]), (1.0, 3.5, 10.0));
        assert!((p[2] - 8.2).abs() < 1e-12);
        assert_eq!(percentiles(&mut [], &[0.5]), None);
        assert!(check_fraction(1.5).is_err() && check_fraction(f64::NAN).is_err());
    }
}
