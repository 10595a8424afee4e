//! Rule numbers, compared with column values exactly as PostgreSQL compares the literal `to_sql` writes:
//! integer and numeric columns against the literal's exact decimal value, float columns in double precision,
//! NaN above every number (PostgreSQL's order for float and numeric). So `segment_of` and the SQL text agree
//! for numerics with more digits than a double holds, and for integers beyond 2^53.

use std::cmp::Ordering;

/// A number from a rule (a JSON number, hence a finite double), with the decimal text that stands for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub float: f64,
    /// the value when it is a whole number that fits i64 (the fast path for integer columns)
    pub int: Option<i64>,
    literal: String,
    groups: Groups,
}

/// A finite decimal in PostgreSQL's numeric layout: base-10000 digits, most significant first, the first
/// one worth 10000^weight; no leading or trailing zero digits (zero has none).
#[derive(Debug, Clone, PartialEq)]
struct Groups {
    negative: bool,
    weight: i32,
    digits: Vec<u16>,
}

/// A numeric column value as stored: base-10000 digits as native-endian byte pairs (a datum may be unaligned).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Numeric<'a> {
    NaN,
    Infinity,
    NegInfinity,
    Finite {
        negative: bool,
        weight: i32,
        digits: &'a [u8],
    },
}

impl Number {
    /// `float` as JSON gave it, `int` when JSON gave a whole number that fits i64. Otherwise the number
    /// stands for its shortest decimal form (`0.1`, `1.152921504606847e18`), the text an analyst wrote.
    pub fn new(float: f64, int: Option<i64>) -> Number {
        let shortest = Groups::parse(&format!("{float:?}"));
        let int = int.or_else(|| shortest.to_i64());
        let literal = match int {
            Some(i) => i.to_string(),
            None => format!("{float:?}"),
        };
        Number {
            float,
            int,
            groups: Groups::parse(&literal),
            literal,
        }
    }

    /// The SQL literal (a numeric constant) whose value the comparisons below use.
    pub fn literal(&self) -> &str {
        &self.literal
    }

    /// How an integer column value compares with this number.
    pub fn cmp_int(&self, a: i64) -> Ordering {
        match self.int {
            Some(b) => a.cmp(&b),
            None => cmp_i64_f64(a, self.float),
        }
    }

    /// How a float column value compares with this number (the literal cast to double, as PostgreSQL does).
    pub fn cmp_float(&self, a: f64) -> Ordering {
        a.partial_cmp(&self.float).unwrap_or(Ordering::Greater)
    }

    /// How a numeric column value compares with this number's exact decimal value.
    pub fn cmp_numeric(&self, a: &Numeric) -> Ordering {
        match *a {
            Numeric::NaN | Numeric::Infinity => Ordering::Greater,
            Numeric::NegInfinity => Ordering::Less,
            Numeric::Finite {
                negative,
                weight,
                digits,
            } => {
                let at = |i: usize| u16::from_ne_bytes([digits[2 * i], digits[2 * i + 1]]);
                let n = digits.len() / 2;
                // stored numerics carry no leading zero digits; skip any all the same
                let lead = (0..n).take_while(|&i| at(i) == 0).count();
                let sign = match (lead == n, negative) {
                    (true, _) => 0,
                    (false, true) => -1,
                    (false, false) => 1,
                };
                let b = &self.groups;
                if sign != b.sign() || sign == 0 {
                    return sign.cmp(&b.sign());
                }
                let len = (n - lead).max(b.digits.len());
                let magnitude = (weight - lead as i32).cmp(&b.weight).then_with(|| {
                    (0..len)
                        .map(|i| {
                            let x = if lead + i < n { at(lead + i) } else { 0 };
                            x.cmp(&b.digits.get(i).copied().unwrap_or(0))
                        })
                        .find(|o| o.is_ne())
                        .unwrap_or(Ordering::Equal)
                });
                if sign < 0 {
                    magnitude.reverse()
                } else {
                    magnitude
                }
            }
        }
    }
}

/// Exact comparison of an integer with a double (no rounding of the integer to 53 bits).
fn cmp_i64_f64(a: i64, b: f64) -> Ordering {
    if b >= 9.223_372_036_854_775_808e18 {
        return Ordering::Less;
    }
    if b < -9.223_372_036_854_775_808e18 {
        return Ordering::Greater;
    }
    let whole = b.trunc();
    a.cmp(&(whole as i64)).then_with(|| {
        // a equals b's integer part: b's fraction decides
        0.0_f64.partial_cmp(&(b - whole)).unwrap_or(Ordering::Equal)
    })
}

impl Groups {
    /// Parses decimal text as `Number::new` writes it: `-12`, `0.25`, `1.5e-7`.
    fn parse(text: &str) -> Groups {
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exp) = match text.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let decimals: Vec<u8> = whole
            .bytes()
            .chain(fraction.bytes())
            .map(|b| b - b'0')
            .collect();
        // value = decimals (as an integer) × 10^exp10
        let exp10 = exp - fraction.len() as i32;
        let first = decimals.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Groups {
                negative: false,
                weight: 0,
                digits: vec![],
            };
        };
        let decimals = &decimals[first..];
        let power = |k: usize| exp10 + (decimals.len() - 1 - k) as i32;
        let weight = power(0).div_euclid(4);
        let mut digits =
            vec![0u16; (weight - power(decimals.len() - 1).div_euclid(4) + 1) as usize];
        for (k, &d) in decimals.iter().enumerate() {
            let p = power(k);
            digits[(weight - p.div_euclid(4)) as usize] +=
                d as u16 * 10u16.pow(p.rem_euclid(4) as u32);
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Groups {
            negative,
            weight,
            digits,
        }
    }

    /// The value when it is whole and fits i64.
    fn to_i64(&self) -> Option<i64> {
        if self.weight < self.digits.len() as i32 - 1 || self.weight > 4 {
            return None;
        }
        let mut v: i128 = 0;
        for i in 0..=self.weight {
            v = v * 10_000 + self.digits.get(i as usize).copied().unwrap_or(0) as i128;
        }
        i64::try_from(if self.negative { -v } else { v }).ok()
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

/// Two numeric values in PostgreSQL's order: NaN above +Infinity above every finite value above -Infinity.
pub fn cmp_numerics(a: &Numeric, b: &Numeric) -> Ordering {
    let rank = |n: &Numeric| match n {
        Numeric::NegInfinity => 0,
        Numeric::Finite { .. } => 1,
        Numeric::Infinity => 2,
        Numeric::NaN => 3,
    };
    match (a, b) {
        (
            Numeric::Finite {
                negative: an,
                weight: aw,
                digits: ad,
            },
            Numeric::Finite {
                negative: bn,
                weight: bw,
                digits: bd,
            },
        ) => {
            let (a, b) = (Finite::new(*an, *aw, ad), Finite::new(*bn, *bw, bd));
            if a.sign != b.sign || a.sign == 0 {
                return a.sign.cmp(&b.sign);
            }
            let len = a.groups.len().max(b.groups.len());
            let magnitude = a.weight.cmp(&b.weight).then_with(|| {
                (0..len)
                    .map(|i| a.group(i).cmp(&b.group(i)))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            });
            if a.sign < 0 {
                magnitude.reverse()
            } else {
                magnitude
            }
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// A finite numeric's digits without leading zero groups.
struct Finite<'a> {
    sign: i8,
    weight: i32,
    groups: &'a [u8],
}

impl<'a> Finite<'a> {
    fn new(negative: bool, weight: i32, digits: &'a [u8]) -> Self {
        let lead = digits
            .chunks_exact(2)
            .take_while(|p| p[0] == 0 && p[1] == 0)
            .count();
        let groups = &digits[2 * lead..];
        let sign = match (groups.is_empty(), negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        Finite {
            sign,
            weight: weight - lead as i32,
            groups,
        }
    }
    fn group(&self, i: usize) -> u16 {
        match self.groups.get(2 * i..2 * i + 2) {
            Some(p) => u16::from_ne_bytes([p[0], p[1]]),
            None => 0,
        }
    }
}

/// An integer as a numeric value, its digits written into `buf`.
pub fn int_numeric(x: i64, buf: &mut [u8; 10]) -> Numeric<'_> {
    let mut magnitude = x.unsigned_abs();
    let mut groups = [0u16; 5];
    let mut n = 0;
    while magnitude > 0 {
        groups[n] = (magnitude % 10_000) as u16;
        magnitude /= 10_000;
        n += 1;
    }
    for i in 0..n {
        buf[2 * i..2 * i + 2].copy_from_slice(&groups[n - 1 - i].to_ne_bytes());
    }
    Numeric::Finite {
        negative: x < 0,
        weight: n as i32 - 1,
        digits: &buf[..2 * n],
    }
}

/// The decimal text of a numeric value (for `explain`).
pub fn numeric_text(n: &Numeric) -> String {
    match *n {
        Numeric::NaN => "NaN".into(),
        Numeric::Infinity => "Infinity".into(),
        Numeric::NegInfinity => "-Infinity".into(),
        Numeric::Finite {
            negative,
            weight,
            digits,
        } => {
            let groups: Vec<u16> = digits
                .chunks_exact(2)
                .map(|p| u16::from_ne_bytes([p[0], p[1]]))
                .collect();
            if groups.is_empty() {
                return "0".into();
            }
            let mut whole = String::new();
            let mut fraction = String::new();
            for (i, g) in groups.iter().enumerate() {
                let power = weight - i as i32;
                if power >= 0 {
                    whole.push_str(&format!("{g:04}"));
                } else {
                    // fraction groups after a gap of zero groups
                    while fraction.len() < 4 * (-power - 1) as usize {
                        fraction.push_str("0000");
                    }
                    fraction.push_str(&format!("{g:04}"));
                }
            }
            if weight >= groups.len() as i32 {
                whole.push_str(&"0000".repeat((weight + 1) as usize - groups.len()));
            }
            let whole = whole.trim_start_matches('0');
            let fraction = fraction.trim_end_matches('0');
            let mut text = String::from(if negative { "-" } else { "" });
            text.push_str(if whole.is_empty() { "0" } else { whole });
            if !fraction.is_empty() {
                text.push('.');
                text.push_str(fraction);
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(groups: &[u16]) -> Vec<u8> {
        groups.iter().flat_map(|g| g.to_ne_bytes()).collect()
    }

    #[test]
    fn numerics_compare_with_numerics_and_integers_exactly() {
        fn fin(negative: bool, weight: i32, digits: &[u8]) -> Numeric<'_> {
            Numeric::Finite {
                negative,
                weight,
                digits,
            }
        }
        // 9007199254740993 = [90, 719, 9254, 7409, 93]·10000^k; one more than 2^53, which a double cannot hold
        let big = bytes(&[90, 719, 9254, 7409, 9300]);
        let a = fin(false, 3, &big[..8]); // 90 0719 9254 7409 (leading groups only)
        let b = fin(false, 4, &big);
        assert_eq!(cmp_numerics(&a, &b), Ordering::Less);
        let mut buf = [0; 10];
        assert_eq!(
            cmp_numerics(&int_numeric(900_719_925_474_093, &mut buf), &b),
            Ordering::Less
        );
        let mut buf = [0; 10];
        let minus = int_numeric(-5, &mut buf);
        let five = bytes(&[5]);
        assert_eq!(cmp_numerics(&minus, &fin(false, 0, &five)), Ordering::Less);
        assert_eq!(cmp_numerics(&fin(true, 0, &five), &minus), Ordering::Equal);
        // zero with or without digits; NaN above infinity above every number, equal to itself
        let zero = bytes(&[0]);
        let mut buf = [0; 10];
        assert_eq!(
            cmp_numerics(&fin(true, 0, &zero), &int_numeric(0, &mut buf)),
            Ordering::Equal
        );
        assert_eq!(
            cmp_numerics(&Numeric::NaN, &Numeric::Infinity),
            Ordering::Greater
        );
        assert_eq!(cmp_numerics(&Numeric::NaN, &Numeric::NaN), Ordering::Equal);
        assert_eq!(cmp_numerics(&Numeric::NegInfinity, &minus), Ordering::Less);
        let mut buf = [0; 10];
        assert_eq!(
            cmp_numerics(&int_numeric(i64::MIN, &mut buf), &Numeric::NegInfinity),
            Ordering::Greater
        );
    }

    #[test]
    fn literals_are_exact() {
        assert_eq!(Number::new(0.1, None).literal(), "0.1");
        // 2^60's shortest form is 1.152921504606847e18: the rule means that number, in every evaluator
        assert_eq!(
            Number::new(2f64.powi(60), None).literal(),
            "1152921504606847000"
        );
        assert_eq!(Number::new(1e300, None).literal(), "1e300");
        assert_eq!(
            Number::new(9007199254740992.0, Some(9007199254740993)).literal(),
            "9007199254740993"
        );
        assert_eq!(Number::new(-1.5e-7, None).literal(), "-1.5e-7");
        assert_eq!(Number::new(5.0, None).int, Some(5));
    }

    #[test]
    fn integers_compare_exactly() {
        let big = Number::new(9007199254740992.0, None); // 2^53
        assert_eq!(big.cmp_int(9007199254740993), Ordering::Greater);
        assert_eq!(Number::new(1.5, None).cmp_int(1), Ordering::Less);
        assert_eq!(Number::new(1.5, None).cmp_int(2), Ordering::Greater);
        assert_eq!(Number::new(-1.5, None).cmp_int(-1), Ordering::Greater);
        assert_eq!(Number::new(1e19, None).cmp_int(i64::MAX), Ordering::Less);
        assert_eq!(
            Number::new(-1e19, None).cmp_int(i64::MIN),
            Ordering::Greater
        );
    }

    #[test]
    fn floats_put_nan_last() {
        assert_eq!(
            Number::new(1.0, None).cmp_float(f64::NAN),
            Ordering::Greater
        );
        assert_eq!(
            Number::new(1.0, None).cmp_float(f64::NEG_INFINITY),
            Ordering::Less
        );
    }

    #[test]
    fn numerics_compare_by_decimal_value() {
        // 0.1000000000000000001 = 0.1000 0000 0000 0000 0001 × 10000^-1..
        let above = bytes(&[1000, 0, 0, 0, 10]);
        let n = Numeric::Finite {
            negative: false,
            weight: -1,
            digits: &above,
        };
        assert_eq!(numeric_text(&n), "0.1000000000000000001");
        assert_eq!(Number::new(0.1, None).cmp_numeric(&n), Ordering::Greater);
        let tenth = bytes(&[1000]);
        let t = Numeric::Finite {
            negative: false,
            weight: -1,
            digits: &tenth,
        };
        assert_eq!(Number::new(0.1, None).cmp_numeric(&t), Ordering::Equal);
        let one = bytes(&[1]);
        let huge = Numeric::Finite {
            negative: true,
            weight: 100, // -1e400
            digits: &one,
        };
        assert_eq!(Number::new(-1e300, None).cmp_numeric(&huge), Ordering::Less);
        assert_eq!(numeric_text(&huge).len(), 402);
        let zero = Numeric::Finite {
            negative: false,
            weight: 0,
            digits: &[],
        };
        assert_eq!(Number::new(0.0, None).cmp_numeric(&zero), Ordering::Equal);
        assert_eq!(
            Number::new(-0.5, None).cmp_numeric(&zero),
            Ordering::Greater
        );
        assert_eq!(
            Number::new(12345.678, None).groups.digits,
            vec![1, 2345, 6780]
        );
        assert_eq!(Number::new(1.5e-7, None).groups.weight, -2);
        assert_eq!(Number::new(1.5e-7, None).groups.digits, vec![15]);
        assert_eq!(
            Number::new(1.0, None).cmp_numeric(&Numeric::NaN),
            Ordering::Greater
        );
    }
}
