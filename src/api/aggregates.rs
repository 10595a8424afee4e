//! Health-metric aggregates. States are float8[] (see `metrics::layout`): small, non-internal, combined by
//! element-wise addition, so parallel query and Citus partial aggregation both work. Transition functions
//! update the state array in place when called as an aggregate, as PostgreSQL's own float8_accum does,
//! so a row costs a few additions rather than an array copy. Declarations are in sql/metrics.sql.

use super::row::numeric_to_f64;
use super::{arg, c_function, composite, f8, new_state, raise, raise_with, state_arg, OrRaise};
use crate::metrics::{self, layout, Interval, Moments};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;
use std::collections::BTreeMap;

/// Bytes from an array's start to its data, for a 1-D array without a null bitmap (ARR_OVERHEAD_NONULLS(1)).
const ARRAY_DATA_OFFSET: usize = 24;

pub(super) unsafe fn in_aggregate(fcinfo: pg_sys::FunctionCallInfo) -> bool {
    unsafe {
        let cx = (*fcinfo).context;
        !cx.is_null()
            && matches!(
                (*cx).type_,
                pg_sys::NodeTag::T_AggState | pg_sys::NodeTag::T_WindowAggState
            )
    }
}

/// The state array of argument `arg`, writable: the aggregate's own copy when called as an aggregate,
/// a fresh copy otherwise (a function must not scribble on its inputs).
unsafe fn state_mut<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    arg: usize,
    len: usize,
) -> (&'a mut [f64], pg_sys::Datum) {
    unsafe {
        let nd = (*fcinfo).args.as_slice(arg + 1)[arg];
        let arr = if nd.isnull {
            let mut cx = std::ptr::null_mut();
            let target = if pg_sys::AggCheckCallContext(fcinfo, &mut cx) != 0 {
                cx
            } else {
                pg_sys::CurrentMemoryContext
            };
            PgMemoryContexts::For(target).switch_to(|_| zero_array(len))
        } else {
            let mut v = nd.value.cast_mut_ptr::<pg_sys::varlena>();
            if !pgrx::varlena::varatt_is_4b_u(v) || !in_aggregate(fcinfo) {
                // detoast and copy: the result is ours to change
                v = pg_sys::pg_detoast_datum_copy(v);
            }
            v as *mut pg_sys::ArrayType
        };
        match float8_elements(arr) {
            Some(state) if state.len() == len => (state, pg_sys::Datum::from(arr)),
            _ => raise_with(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!("aggregate state is not a float8[{len}] without NULLs"),
                None,
                Some("the state functions are internal to pg_segments' aggregates".into()),
            ),
        }
    }
}

/// A float8[] of `len` zeros in the current memory context.
pub(super) unsafe fn zero_array(len: usize) -> *mut pg_sys::ArrayType {
    unsafe {
        let zeros = vec![pg_sys::Datum::from(0.0f64.to_bits()); len];
        pg_sys::construct_array(
            zeros.as_ptr() as *mut _,
            len as i32,
            pg_sys::FLOAT8OID,
            8,
            true,
            b'd' as _,
        )
    }
}

/// The elements of a float8[] without NULLs, or None for anything else.
pub(super) unsafe fn float8_elements<'a>(arr: *mut pg_sys::ArrayType) -> Option<&'a mut [f64]> {
    unsafe {
        let ok = (*arr).ndim == 1 && (*arr).dataoffset == 0 && (*arr).elemtype == pg_sys::FLOAT8OID;
        ok.then(|| {
            let len = *(arr as *const u8).add(16).cast::<i32>() as usize;
            std::slice::from_raw_parts_mut(
                (arr as *mut u8).add(ARRAY_DATA_OFFSET).cast::<f64>(),
                len,
            )
        })
    }
}

/// Direction of a transition: +1 adds a row, -1 removes it (moving-window inverse).
unsafe fn nps_step(fcinfo: pg_sys::FunctionCallInfo, len: usize, sign: f64) -> pg_sys::Datum {
    unsafe {
        let (state, datum) = state_mut(fcinfo, 0, len);
        if let Some(score) = score_arg(fcinfo, 1) {
            let bucket = metrics::nps_bucket(score).or_raise();
            state[0] += sign;
            match bucket {
                1 => state[1] += sign,
                -1 => state[2] += sign,
                _ => {}
            }
            if len > layout::NPS {
                state[3] += sign * confidence_arg(fcinfo, 2);
            }
        }
        datum
    }
}

/// An NPS answer of any integer type, or a numeric that holds a whole number (the overloads share one C
/// function: the declared argument type says how to read the datum).
unsafe fn score_arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<i64> {
    unsafe {
        let d = arg(fcinfo, i)?;
        Some(match super::declared_arg_type(fcinfo, i) {
            pg_sys::INT2OID => d.value() as i16 as i64,
            pg_sys::INT8OID => d.value() as i64,
            pg_sys::NUMERICOID => metrics::whole_score(numeric_to_f64(d)).or_raise(),
            _ => d.value() as i32 as i64,
        })
    }
}

unsafe fn churn_step(fcinfo: pg_sys::FunctionCallInfo, len: usize, sign: f64) -> pg_sys::Datum {
    unsafe {
        let (state, datum) = state_mut(fcinfo, 0, len);
        if let Some(churned) = arg(fcinfo, 1) {
            state[0] += sign;
            state[1] += sign * (churned.value() != 0) as u8 as f64;
            if len > layout::CHURN {
                state[2] += sign * confidence_arg(fcinfo, 2);
            }
        }
        datum
    }
}

/// The confidence level of an interval aggregate. It is summed with the row count, so the state stays
/// additive across workers and windows; the final divides it back out.
unsafe fn confidence_arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> f64 {
    let c = unsafe { arg(fcinfo, i) }
        .map(|d| f64::from_bits(d.value() as u64))
        .unwrap_or(0.95);
    metrics::check_confidence(c).or_raise()
}

c_function!(pg_finfo__nps_accum, _nps_accum, |fcinfo| {
    nps_step(fcinfo, layout::NPS, 1.0)
});
c_function!(pg_finfo__nps_retract, _nps_retract, |fcinfo| {
    nps_step(fcinfo, layout::NPS, -1.0)
});
c_function!(pg_finfo__nps_ci_accum, _nps_ci_accum, |fcinfo| {
    nps_step(fcinfo, layout::NPS + 1, 1.0)
});
c_function!(pg_finfo__nps_ci_retract, _nps_ci_retract, |fcinfo| {
    nps_step(fcinfo, layout::NPS + 1, -1.0)
});
c_function!(pg_finfo__churn_accum, _churn_accum, |fcinfo| {
    churn_step(fcinfo, layout::CHURN, 1.0)
});
c_function!(pg_finfo__churn_retract, _churn_retract, |fcinfo| {
    churn_step(fcinfo, layout::CHURN, -1.0)
});
c_function!(pg_finfo__churn_ci_accum, _churn_ci_accum, |fcinfo| {
    churn_step(fcinfo, layout::CHURN + 1, 1.0)
});
c_function!(pg_finfo__churn_ci_retract, _churn_ci_retract, |fcinfo| {
    churn_step(fcinfo, layout::CHURN + 1, -1.0)
});

unsafe fn arr_arg(fcinfo: pg_sys::FunctionCallInfo, i: usize, what: &str) -> Option<f64> {
    unsafe { arg(fcinfo, i) }
        .map(|d| metrics::check_arr(unsafe { numeric_to_f64(d) }, what).or_raise())
}

c_function!(pg_finfo__revenue_accum, _revenue_accum, |fcinfo| {
    let (state, datum) = state_mut(fcinfo, 0, layout::REVENUE);
    let start = arr_arg(fcinfo, 1, "arr_start");
    let end = arr_arg(fcinfo, 2, "arr_end");
    metrics::revenue_add(state, start, end, 1.0);
    datum
});

c_function!(pg_finfo__clv_accum, _clv_accum, |fcinfo| {
    let (state, datum) = state_mut(fcinfo, 0, layout::CLV);
    let arpa = arr_arg(fcinfo, 1, "arpa");
    let margin = arg(fcinfo, 2).map(|d| f64::from_bits(d.value() as u64));
    if let (Some(arpa), Some(margin), Some(churned)) = (arpa, margin, arg(fcinfo, 3)) {
        if !(0.0..=1.0).contains(&margin) {
            raise(crate::error::SegError::out_of_range(
                format!("gross margin {margin} is outside 0..1"),
                "write 70% as 0.7",
            ));
        }
        state[0] += 1.0;
        state[1] += arpa;
        state[2] += (churned.value() != 0) as u8 as f64;
        state[3] += margin;
    }
    datum
});

// Combine for every float8[] state: element-wise sum into the first.
c_function!(pg_finfo__state_add, _state_add, |fcinfo| {
    let len = |i: usize| {
        let a = (*fcinfo).args.as_slice(2)[i]
            .value
            .cast_mut_ptr::<pg_sys::ArrayType>();
        *(pg_sys::pg_detoast_datum(a.cast()) as *const u8)
            .add(16)
            .cast::<i32>() as usize
    };
    let n = len(0);
    if len(1) != n {
        raise_with(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            "aggregate states differ in length".into(),
            None,
            None,
        );
    }
    let (a, datum) = state_mut(fcinfo, 0, n);
    let (b, _) = state_mut(fcinfo, 1, n);
    a.iter_mut().zip(b.iter()).for_each(|(x, y)| *x += y);
    datum
});

// Finals with a single number; the states arrive as arrays.
#[pg_extern(immutable, parallel_safe, strict, name = "_churn_rate_final")]
fn churn_rate_final(state: Vec<Option<f64>>) -> Option<f64> {
    metrics::churn_rate(&metrics::checked_state(&state, layout::CHURN).or_raise())
}
#[pg_extern(immutable, parallel_safe, strict, name = "_nrr_final")]
fn nrr_final(state: Vec<Option<f64>>) -> Option<f64> {
    metrics::nrr(&metrics::checked_state(&state, layout::REVENUE).or_raise())
}
#[pg_extern(immutable, parallel_safe, strict, name = "_grr_final")]
fn grr_final(state: Vec<Option<f64>>) -> Option<f64> {
    metrics::grr(&metrics::checked_state(&state, layout::REVENUE).or_raise())
}
#[pg_extern(immutable, parallel_safe, strict, name = "_arr_growth_final")]
fn arr_growth_final(state: Vec<Option<f64>>) -> Option<f64> {
    metrics::arr_growth(&metrics::checked_state(&state, layout::REVENUE).or_raise())
}
#[pg_extern(immutable, parallel_safe, strict, name = "_clv_final")]
fn clv_final(state: Vec<Option<f64>>) -> Option<f64> {
    metrics::clv_of_group(&metrics::checked_state(&state, layout::CLV).or_raise())
}

/// Customer lifetime value, per-period formula: arpa × gross_margin / churn_rate.
#[pg_extern(immutable, parallel_safe, strict)]
fn clv(arpa: f64, gross_margin: f64, churn_rate: f64) -> f64 {
    metrics::clv(arpa, gross_margin, churn_rate).or_raise()
}

unsafe fn interval_result(fcinfo: pg_sys::FunctionCallInfo, iv: Option<Interval>) -> pg_sys::Datum {
    unsafe {
        match iv {
            Some(iv) => composite(
                fcinfo,
                &[
                    f8(iv.estimate),
                    f8(iv.lower),
                    f8(iv.upper),
                    Some(pg_sys::Datum::from(iv.n as i64)),
                ],
            ),
            None => {
                (*fcinfo).isnull = true;
                pg_sys::Datum::from(0)
            }
        }
    }
}

/// The confidence that was summed into `slot` alongside `n` rows.
fn mean_confidence(sum: f64, n: f64) -> f64 {
    // summed in float; a 12-digit rounding recovers the constant the rows carried
    ((sum / n) * 1e12).round() / 1e12
}

c_function!(
    pg_finfo__churn_rate_ci_final,
    _churn_rate_ci_final,
    |fcinfo| {
        let (s, _) = state_mut(fcinfo, 0, layout::CHURN + 1);
        let iv = if s[0] > 0.0 {
            metrics::wilson(s[1], s[0], mean_confidence(s[2], s[0]))
        } else {
            None
        };
        interval_result(fcinfo, iv)
    }
);

c_function!(pg_finfo__nps_ci_final, _nps_ci_final, |fcinfo| {
    let (s, _) = state_mut(fcinfo, 0, layout::NPS + 1);
    let iv = if s[0] > 0.0 {
        metrics::nps_interval(s, mean_confidence(s[3], s[0]))
    } else {
        None
    };
    interval_result(fcinfo, iv)
});

// separation(segment, value): one-way ANOVA. Its state maps segment names to moments, so it is `internal`,
// with serialize/deserialize for parallel workers.
type Groups = BTreeMap<String, Moments>;

c_function!(pg_finfo__separation_accum, _separation_accum, |fcinfo| {
    let groups = match state_arg::<Groups>(fcinfo, 0) {
        Some(g) => g,
        None => new_state(fcinfo, Groups::new()),
    };
    if let (Some(seg), Some(value)) = (arg(fcinfo, 1), arg(fcinfo, 2)) {
        let x = f64::from_bits(value.value() as u64);
        if x.is_finite() {
            let key = String::from_datum(seg, false).unwrap_or_default();
            let m = groups.entry(key).or_default();
            m.n += 1.0;
            m.sum += x;
            m.sum_sq += x * x;
        }
    }
    pg_sys::Datum::from(groups as *mut Groups)
});

c_function!(
    pg_finfo__separation_combine,
    _separation_combine,
    |fcinfo| {
        let target = match state_arg::<Groups>(fcinfo, 0) {
            Some(g) => g,
            None => new_state(fcinfo, Groups::new()),
        };
        if let Some(other) = state_arg::<Groups>(fcinfo, 1) {
            for (k, m) in other.iter() {
                let t = target.entry(k.clone()).or_default();
                t.n += m.n;
                t.sum += m.sum;
                t.sum_sq += m.sum_sq;
            }
        }
        pg_sys::Datum::from(target as *mut Groups)
    }
);

c_function!(
    pg_finfo__separation_serialize,
    _separation_serialize,
    |fcinfo| {
        let groups = state_arg::<Groups>(fcinfo, 0)
            .map(|g| &*g)
            .cloned()
            .unwrap_or_default();
        let rows: Vec<(String, f64, f64, f64)> = groups
            .into_iter()
            .map(|(k, m)| (k, m.n, m.sum, m.sum_sq))
            .collect();
        serde_json::to_vec(&rows)
            .unwrap_or_default()
            .into_datum()
            .unwrap_or(pg_sys::Datum::from(0))
    }
);

c_function!(
    pg_finfo__separation_deserialize,
    _separation_deserialize,
    |fcinfo| {
        let bytes: Vec<u8> = arg(fcinfo, 0)
            .and_then(|d| Vec::<u8>::from_datum(d, false))
            .unwrap_or_default();
        let rows: Vec<(String, f64, f64, f64)> = serde_json::from_slice(&bytes).unwrap_or_default();
        let groups = new_state(fcinfo, Groups::new());
        for (k, n, sum, sum_sq) in rows {
            groups.insert(k, Moments { n, sum, sum_sq });
        }
        pg_sys::Datum::from(groups as *mut Groups)
    }
);

c_function!(pg_finfo__separation_final, _separation_final, |fcinfo| {
    let groups: Vec<Moments> = state_arg::<Groups>(fcinfo, 0)
        .map(|g| g.values().copied().collect())
        .unwrap_or_default();
    match metrics::separation(&groups) {
        Some(s) => composite(
            fcinfo,
            &[
                f8(s.f),
                f8(s.p_value),
                f8(s.eta_squared),
                Some(pg_sys::Datum::from(s.df_between as i32)),
                Some(pg_sys::Datum::from(s.df_within as i64)),
                Some(pg_sys::Datum::from(s.groups as i32)),
                Some(pg_sys::Datum::from(s.n as i64)),
            ],
        ),
        None => {
            (*fcinfo).isnull = true;
            pg_sys::Datum::from(0)
        }
    }
});

// ---------------------------------------------------------------------------------------------------------
// time_to_close: exact percentiles of durations. Exact percentiles need every value, so the state is the
// durations themselves (microseconds) behind a header [n, k, fraction_1 .. fraction_k]; slots past n are
// spare room that lets the array grow by doubling. A float8[] rather than `internal`, so parallel workers
// (and Citus) hand partial states on as ordinary values.
// ---------------------------------------------------------------------------------------------------------

fn not_a_durations_state() -> ! {
    raise(crate::error::SegError::invalid_argument(
        "not a state of time_to_close",
        "the state functions are internal to time_to_close",
    ))
}

/// The elements of a durations state array.
unsafe fn durations_state<'a>(arr: *mut pg_sys::ArrayType) -> &'a mut [f64] {
    unsafe { float8_elements(arr) }.unwrap_or_else(|| not_a_durations_state())
}

/// A durations state's parts: (n, fractions, values); 22023 for an array that is not one.
fn durations_parts(s: &[f64]) -> (usize, &[f64], &[f64]) {
    let bad = not_a_durations_state;
    if s.len() < 2 {
        bad()
    }
    let (n, k) = (s[0], s[1]);
    if n < 0.0 || k < 1.0 || n.fract() != 0.0 || k.fract() != 0.0 || 2.0 + k + n > s.len() as f64 {
        bad()
    }
    let (n, k) = (n as usize, k as usize);
    (n, &s[2..2 + k], &s[2 + k..2 + k + n])
}

/// The fractions asked for: the aggregate's third argument, a number or an array; the median without one.
unsafe fn fractions_arg(fcinfo: pg_sys::FunctionCallInfo) -> Vec<f64> {
    unsafe {
        if (*fcinfo).nargs < 4 {
            return vec![0.5];
        }
        let Some(d) = arg(fcinfo, 3) else {
            raise_with(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                "the percentile of time_to_close must not be NULL".into(),
                None,
                Some("leave it out for the median".into()),
            )
        };
        let fractions = if super::declared_arg_type(fcinfo, 3) == pg_sys::FLOAT8OID {
            vec![f64::from_bits(d.value() as u64)]
        } else {
            let arr = pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as *mut pg_sys::ArrayType;
            match float8_elements(arr) {
                Some(f) if !f.is_empty() => f.to_vec(),
                _ => raise_with(
                    PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                    "the percentiles of time_to_close must be a one-dimensional float8[] without NULLs".into(),
                    None,
                    Some("e.g. ARRAY[0.5, 0.9]".into()),
                ),
            }
        };
        fractions
            .into_iter()
            .map(|f| metrics::check_fraction(f).or_raise())
            .collect()
    }
}

/// A time or date argument as microseconds (a date is midnight of its day).
unsafe fn instant_arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<i64> {
    unsafe {
        let d = arg(fcinfo, i)?;
        let (us, infinite) = if super::declared_arg_type(fcinfo, i) == pg_sys::DATEOID {
            let days = d.value() as i32;
            (
                days as i64 * 86_400_000_000,
                days == i32::MIN || days == i32::MAX,
            )
        } else {
            let us = d.value() as i64;
            (us, us == i64::MIN || us == i64::MAX)
        };
        if infinite {
            raise_with(
                PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
                "time_to_close of an infinite time".into(),
                None,
                Some("leave the row out, or pass NULL for a deal still open".into()),
            );
        }
        Some(us)
    }
}

c_function!(pg_finfo__durations_accum, _durations_accum, |fcinfo| {
    let fractions = fractions_arg(fcinfo);
    let state = (*fcinfo).args.as_slice(1)[0];
    let (Some(opened), Some(closed)) = (instant_arg(fcinfo, 1), instant_arg(fcinfo, 2)) else {
        // an open deal: no duration yet
        (*fcinfo).isnull = state.isnull;
        return state.value;
    };
    if closed < opened {
        raise_with(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "time_to_close: a deal closed before it opened".into(),
            Some(format!("closed {} µs before it opened", opened - closed)),
            Some("check the order of the arguments: time_to_close(opened, closed)".into()),
        );
    }
    let header = 2 + fractions.len();
    let mut arr = if state.isnull {
        let arr = zero_array(header + 64);
        let s = durations_state(arr);
        s[1] = fractions.len() as f64;
        s[2..header].copy_from_slice(&fractions);
        arr
    } else {
        let v = state.value.cast_mut_ptr::<pg_sys::varlena>();
        if pgrx::varlena::varatt_is_4b_u(v) && in_aggregate(fcinfo) {
            v as *mut pg_sys::ArrayType // the aggregate's own copy: ours to change
        } else {
            pg_sys::pg_detoast_datum_copy(v) as *mut pg_sys::ArrayType
        }
    };
    let s = durations_state(arr);
    let (n, asked, _) = durations_parts(s);
    if asked != fractions.as_slice() {
        raise_with(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "time_to_close was asked for different percentiles on different rows".into(),
            None,
            Some("pass the percentiles as a constant".into()),
        );
    }
    if header + n == s.len() {
        // full: a copy twice the size (the aggregate moves it into its own context and frees this one)
        let grown = zero_array(header + 2 * n);
        durations_state(grown)[..s.len()].copy_from_slice(s);
        arr = grown;
    }
    let s = durations_state(arr);
    s[header + n] = (closed - opened) as f64;
    s[0] = (n + 1) as f64;
    pg_sys::Datum::from(arr)
});

/// Detoasted durations state of argument `i`.
unsafe fn durations_arg<'a>(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> &'a [f64] {
    unsafe {
        let d = arg(fcinfo, i).unwrap_or_else(|| not_a_durations_state());
        durations_state(pg_sys::pg_detoast_datum(d.cast_mut_ptr()) as *mut pg_sys::ArrayType)
    }
}

// Combine (strict: PostgreSQL passes the other state on when one is NULL): the two samples side by side.
c_function!(pg_finfo__durations_combine, _durations_combine, |fcinfo| {
    let (a, b) = (durations_arg(fcinfo, 0), durations_arg(fcinfo, 1));
    let ((na, fa, va), (nb, fb, vb)) = (durations_parts(a), durations_parts(b));
    if fa != fb {
        not_a_durations_state();
    }
    let header = 2 + fa.len();
    let arr = zero_array(header + na + nb);
    let s = durations_state(arr);
    s[..header].copy_from_slice(&a[..header]);
    s[0] = (na + nb) as f64;
    s[header..header + na].copy_from_slice(va);
    s[header + na..].copy_from_slice(vb);
    pg_sys::Datum::from(arr)
});

/// The percentiles a durations state was asked for, as microsecond counts.
unsafe fn durations_percentiles(fcinfo: pg_sys::FunctionCallInfo) -> Option<Vec<i64>> {
    let (_, fractions, values) = durations_parts(unsafe { durations_arg(fcinfo, 0) });
    metrics::percentiles(&mut values.to_vec(), fractions)
        .map(|p| p.into_iter().map(|us| us.round() as i64).collect())
}

/// An interval of `us` microseconds, whole days split off as justify_hours would.
unsafe fn interval_datum(us: i64) -> pg_sys::Datum {
    unsafe {
        let iv = pg_sys::palloc(std::mem::size_of::<pg_sys::Interval>()) as *mut pg_sys::Interval;
        (*iv).month = 0;
        (*iv).day = us.div_euclid(86_400_000_000) as i32;
        (*iv).time = us.rem_euclid(86_400_000_000);
        pg_sys::Datum::from(iv)
    }
}

c_function!(pg_finfo__durations_final, _durations_final, |fcinfo| {
    match durations_percentiles(fcinfo) {
        Some(p) => interval_datum(p[0]),
        None => {
            (*fcinfo).isnull = true;
            pg_sys::Datum::from(0)
        }
    }
});

c_function!(
    pg_finfo__durations_final_array,
    _durations_final_array,
    |fcinfo| {
        match durations_percentiles(fcinfo) {
            Some(p) => {
                let items: Vec<pg_sys::Datum> =
                    p.into_iter().map(|us| interval_datum(us)).collect();
                let size = std::mem::size_of::<pg_sys::Interval>() as i32;
                pg_sys::Datum::from(pg_sys::construct_array(
                    items.as_ptr() as *mut _,
                    items.len() as i32,
                    pg_sys::INTERVALOID,
                    size,
                    false,
                    b'd' as _,
                ))
            }
            None => {
                (*fcinfo).isnull = true;
                pg_sys::Datum::from(0)
            }
        }
    }
);
