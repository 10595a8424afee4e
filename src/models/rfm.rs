//! Recency-frequency-monetary summaries from order histories, in the convention of Fader, Hardie & Lee
//! (and the `lifetimes` package): orders on the same day are one purchase; frequency counts repeat purchase
//! days; recency is the time from the first to the last purchase; T from the first purchase to the end of
//! observation; monetary is the mean value of the repeat purchase days.

use crate::error::{Result, SegError};
use std::collections::BTreeMap;

/// Days per unit: week 7, month 365.25/12, year 365.25.
pub fn unit_days(unit: &str) -> Result<f64> {
    Ok(match unit {
        "day" | "days" => 1.0,
        "week" | "weeks" => 7.0,
        "month" | "months" => 365.25 / 12.0,
        "year" | "years" => 365.25,
        _ => {
            return Err(SegError::invalid_argument(
                format!("unknown time unit \"{unit}\""),
                "valid time units: day, week, month, year",
            ))
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub frequency: i32,
    pub recency: f64,
    pub t: f64,
    pub monetary: f64,
}

/// Summarises one customer's purchase days (day number → total value that day) observed until `end_day`.
/// Days after `end_day` are ignored; None when nothing remains.
pub fn summarize(days: &BTreeMap<i32, f64>, end_day: i32, unit: f64) -> Option<Summary> {
    let mut kept = days.range(..=end_day);
    let (&first, _) = kept.next()?;
    let repeat: Vec<(i32, f64)> = days
        .range(first + 1..=end_day)
        .map(|(&d, &v)| (d, v))
        .collect();
    let last = repeat.last().map_or(first, |r| r.0);
    let monetary = if repeat.is_empty() {
        0.0
    } else {
        repeat.iter().map(|r| r.1).sum::<f64>() / repeat.len() as f64
    };
    Some(Summary {
        frequency: repeat.len() as i32,
        recency: (last - first) as f64 / unit,
        t: (end_day - first) as f64 / unit,
        monetary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdnow_customer_one() {
        // CDNOW_sample customer 1: 1997-01-01 29.33, 1997-01-18 29.73, 1997-08-02 14.96; end 1997-09-30
        // (day numbers relative to 1997-01-01); the package's summary: 2, 30.43, 38.86, zbar 22.35
        let days = BTreeMap::from([(0, 29.33), (17, 29.73), (213, 14.96), (400, 99.0)]);
        let s = summarize(&days, 272, 7.0).unwrap();
        assert_eq!(s.frequency, 2);
        assert_eq!((s.recency * 100.0).round() / 100.0, 30.43);
        assert_eq!((s.t * 100.0).round() / 100.0, 38.86);
        assert!((s.monetary - (29.73 + 14.96) / 2.0).abs() < 1e-12);
        assert_eq!(summarize(&BTreeMap::from([(300, 1.0)]), 272, 7.0), None);
        assert!(unit_days("fortnight").is_err());
    }
}
