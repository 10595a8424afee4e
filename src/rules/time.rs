//! Date/time literals and intervals for rules, in PostgreSQL's own representation: microseconds since
//! 2000-01-01 00:00:00 UTC. Kept in pure Rust so a rule means the same thing on every server and in
//! `classify` (IMMUTABLE): times without a UTC offset are read as UTC, and calendar arithmetic is done in UTC.

pub const USECS_PER_DAY: i64 = 86_400_000_000;
const USECS_PER_SEC: i64 = 1_000_000;

/// A PostgreSQL-style interval: months, days and microseconds kept apart, as calendars need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

/// Parses `"30 days"`, `"1 year 6 months"`, `"2 weeks"`, `"12 hours"`, `"90 min"` and the like.
pub fn parse_interval(text: &str) -> Option<Interval> {
    let mut it = text.split_whitespace().peekable();
    let mut iv = Interval {
        months: 0,
        days: 0,
        micros: 0,
    };
    let mut any = false;
    while let Some(tok) = it.next() {
        // "30days" and "30 days" are both accepted
        let split = tok
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(tok.len());
        let (num, mut unit) = (&tok[..split], tok[split..].to_string());
        let n: f64 = num.parse().ok()?;
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        if unit.is_empty() {
            unit = it.next()?.to_string();
        }
        let unit = unit.to_ascii_lowercase();
        let whole = |n: f64| {
            if n.fract() == 0.0 && n < 1e8 {
                Some(n as i32)
            } else {
                None
            }
        };
        match unit.trim_end_matches('s') {
            "year" | "yr" | "y" => iv.months = iv.months.checked_add(whole(n)?.checked_mul(12)?)?,
            "month" | "mon" => iv.months = iv.months.checked_add(whole(n)?)?,
            "week" | "w" => iv.days = iv.days.checked_add(whole(n)?.checked_mul(7)?)?,
            "day" | "d" => iv.days = iv.days.checked_add(whole(n)?)?,
            "hour" | "hr" | "h" => {
                iv.micros = iv
                    .micros
                    .saturating_add((n * 3600.0 * USECS_PER_SEC as f64).round() as i64)
            }
            "minute" | "min" | "m" => {
                iv.micros = iv
                    .micros
                    .saturating_add((n * 60.0 * USECS_PER_SEC as f64).round() as i64)
            }
            "second" | "sec" | "" => {
                iv.micros = iv
                    .micros
                    .saturating_add((n * USECS_PER_SEC as f64).round() as i64)
            }
            _ => return None,
        }
        any = true;
    }
    any.then_some(iv)
}

/// Days since 2000-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - 10_957
}

pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 10_957 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `t - interval` with PostgreSQL's rules: months first (clamping the day to the month's end), then days, then time.
pub fn minus_interval(t: i64, iv: Interval) -> i64 {
    shift(t, iv, -1)
}

/// `t + interval`, as `minus_interval` subtracts it.
pub fn plus_interval(t: i64, iv: Interval) -> i64 {
    shift(t, iv, 1)
}

fn shift(t: i64, iv: Interval, sign: i64) -> i64 {
    let days = t.div_euclid(USECS_PER_DAY);
    let time = t.rem_euclid(USECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + (m as i64 - 1) + sign * iv.months as i64;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    let days = days_from_civil(ny, nm, nd) + sign * iv.days as i64;
    let t = days
        .saturating_mul(USECS_PER_DAY)
        .saturating_add(time)
        .saturating_add(sign.saturating_mul(iv.micros));
    // a window reaching past the timestamp range reaches to the end of time: ±infinity (i64::MIN / MAX,
    // as PostgreSQL stores them), so that SQL's '-infinity' / 'infinity' and the evaluator agree
    if t < TIMESTAMP_RANGE.start {
        i64::MIN
    } else if t >= TIMESTAMP_RANGE.end {
        i64::MAX
    } else {
        t
    }
}

/// PostgreSQL's finite timestamps in microseconds since 2000 (4714-11-24 BC to 294277-01-01, exclusive);
/// ±infinity are i64::MIN and i64::MAX.
pub const TIMESTAMP_RANGE: std::ops::Range<i64> =
    -211_813_488_000_000_000..9_223_371_331_200_000_000;

/// The years a rule's timestamp literal may name: PostgreSQL's timestamp range, AD.
pub const YEARS: std::ops::RangeInclusive<i64> = 1..=294_276;

/// Parses `YYYY-MM-DD`, optionally followed by ` HH:MM[:SS[.ffffff]]` (or `T`) and `Z` / `±HH[:MM]`.
/// Returns microseconds since 2000-01-01 UTC.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let s = text.trim();
    let (date, rest) = s.split_at(s.find(['T', ' ']).unwrap_or(s.len()));
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some()
        || !YEARS.contains(&y)
        || !(1..=12).contains(&m)
        || d == 0
        || d > days_in_month(y, m)
    {
        return None;
    }
    let mut micros = days_from_civil(y, m, d).checked_mul(USECS_PER_DAY)?;
    let rest = rest.trim_start_matches(['T', ' ']);
    if rest.is_empty() {
        return Some(micros);
    }
    // split off the zone: Z, +hh[:mm], -hh[:mm]
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut hms = clock.trim().split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let sec: f64 = hms.next().map(|x| x.parse().ok()).unwrap_or(Some(0.0))?;
    if hms.next().is_some() || h > 24 || mi > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    if h < 0 || mi < 0 {
        return None;
    }
    micros = micros.checked_add(
        (h * 3600 + mi * 60) * USECS_PER_SEC + (sec * USECS_PER_SEC as f64).round() as i64,
    )?;
    let zone = zone.trim();
    if !zone.is_empty() && !zone.eq_ignore_ascii_case("z") {
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let z = &zone[1..];
        if !z.bytes().all(|b| b.is_ascii_digit() || b == b':') {
            return None;
        }
        let (zh, zm) = match z.split_once(':') {
            Some((a, b)) => (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?),
            None if z.len() == 4 => (z[..2].parse().ok()?, z[2..].parse().ok()?),
            None => (z.parse().ok()?, 0),
        };
        if !(0..=15).contains(&zh) || !(0..60).contains(&zm) {
            return None;
        }
        micros = micros.checked_sub(sign * (zh * 3600 + zm * 60) * USECS_PER_SEC)?;
    }
    Some(micros)
}

/// `2024-01-31T12:00:00.000000Z`: the `as_of` of a ruleset (PostgreSQL's
/// `to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`).
pub fn format_iso_utc(t: i64) -> String {
    let ((y, m, d), (h, mi, s, us)) = calendar(t);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// The UTC calendar date and clock time (hours, minutes, seconds, microseconds) of a timestamp.
fn calendar(t: i64) -> ((i64, u32, u32), (i64, i64, i64, i64)) {
    let time = t.rem_euclid(USECS_PER_DAY);
    let (h, rem) = (time / 3_600_000_000, time % 3_600_000_000);
    let (mi, rem) = (rem / 60_000_000, rem % 60_000_000);
    (
        civil_from_days(t.div_euclid(USECS_PER_DAY)),
        (h, mi, rem / USECS_PER_SEC, rem % USECS_PER_SEC),
    )
}

/// Formats microseconds since 2000-01-01 as an ISO timestamp in UTC (for to_sql and explain).
pub fn format_timestamp(t: i64) -> String {
    let ((y, m, d), (h, mi, s, us)) = calendar(t);
    if us == 0 {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}+00")
    } else {
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}+00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_as_of() {
        let t = parse_timestamp("2024-01-31 12:00:00.5+00").unwrap();
        assert_eq!(format_iso_utc(t), "2024-01-31T12:00:00.500000Z");
        assert_eq!(format_iso_utc(0), "2000-01-01T00:00:00.000000Z");
    }

    #[test]
    fn odd_literals_are_refused_not_panics() {
        // a multi-byte character where the zone's digits should be (once a byte-index panic)
        assert_eq!(parse_timestamp("2024-01-31 12:00+a\u{e9}1"), None);
        assert_eq!(parse_timestamp("2024-01-31 12:00+99"), None);
        // beyond PostgreSQL's timestamp range (once wrapped around to a year before 2024)
        assert_eq!(parse_timestamp("300000-01-01"), None);
        assert_eq!(parse_timestamp("0000-01-01"), None);
        assert!(parse_timestamp("294276-12-31").is_some());
        // a window longer than the range saturates instead of wrapping
        let huge = parse_interval("99999999 days").unwrap();
        assert_eq!(minus_interval(0, huge), i64::MIN);
        let long = parse_interval("99999999 months").unwrap();
        assert_eq!(minus_interval(0, long), i64::MIN);
        let endless = parse_interval("1000000000000000 hours").unwrap();
        assert_eq!(minus_interval(0, endless), i64::MIN);
    }

    #[test]
    fn epoch_and_calendar() {
        assert_eq!(days_from_civil(2000, 1, 1), 0);
        assert_eq!(days_from_civil(1970, 1, 1), -10_957);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(parse_timestamp("2000-01-02"), Some(USECS_PER_DAY));
        assert_eq!(parse_timestamp("2000-01-01 01:00:00+01"), Some(0));
        assert_eq!(parse_timestamp("2000-01-01T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(parse_timestamp("2023-02-29"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(
            format_timestamp(parse_timestamp("2024-03-31 12:30:00").unwrap()),
            "2024-03-31 12:30:00+00"
        );
    }

    #[test]
    fn intervals_like_postgres() {
        assert_eq!(
            parse_interval("30 days"),
            Some(Interval {
                months: 0,
                days: 30,
                micros: 0
            })
        );
        assert_eq!(
            parse_interval("1 year 6 months"),
            Some(Interval {
                months: 18,
                days: 0,
                micros: 0
            })
        );
        assert_eq!(
            parse_interval("2 weeks 3h"),
            Some(Interval {
                months: 0,
                days: 14,
                micros: 3 * 3_600_000_000
            })
        );
        assert_eq!(parse_interval("banana"), None);
        assert_eq!(parse_interval("-3 days"), None);
        assert_eq!(parse_interval(""), None);
        // SELECT timestamp '2024-03-31' - interval '1 month' = 2024-02-29 (day clamped)
        let t = parse_timestamp("2024-03-31").unwrap();
        let iv = parse_interval("1 month").unwrap();
        assert_eq!(
            minus_interval(t, iv),
            parse_timestamp("2024-02-29").unwrap()
        );
        assert_eq!(
            minus_interval(t, parse_interval("1 day 1 hour").unwrap()),
            parse_timestamp("2024-03-29 23:00").unwrap()
        );
    }
}
