//! The boundary of `models`: k-means over a relation (read once, in chunks, into a flat buffer), clusters
//! turned into segments, the RFM aggregate, and the lifetime-model fits and predictions.

use super::aggregates::{float8_elements, in_aggregate, zero_array};
use super::row::{RowReader, TupleColumns};
use super::security::with_safe_search_path;
use super::{arg, c_function, composite, f8, new_state, raise, raise_with, state_arg, OrRaise};
use crate::error::SegError;
use crate::models::kmeans::{kmeans as fit_kmeans, sample_rows, silhouette, Clustering, Points};
use crate::models::lifetime::{self, BgNbd, GammaGamma, Rfm, Sbg};
use crate::models::rfm;
use crate::rules::sql::quote_ident;
use crate::rules::Columns;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{JsonB, PgMemoryContexts, PgRelation};
use std::collections::BTreeMap;
use std::ffi::CString;

pub(super) fn qualified_name(rel: &PgRelation) -> String {
    format!(
        "{}.{}",
        quote_ident(rel.namespace()),
        quote_ident(rel.name())
    )
}

/// The feature columns named; a NULL name is an error (22004), not a skipped feature.
pub(super) fn feature_names(features: Vec<Option<String>>) -> Vec<String> {
    features
        .into_iter()
        .map(|f| {
            f.unwrap_or_else(|| {
                raise_with(
                    PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    "a feature column name is NULL".into(),
                    None,
                    Some("pass the feature columns by name, e.g. ARRAY['income', 'score']".into()),
                )
            })
        })
        .collect()
}

/// Reads the features of every row into a flat buffer, in the order of their values (whatever order the
/// relation gives them in); rows with a NULL feature are skipped and counted.
fn read_points(rel: &PgRelation, features: &[String]) -> (Points, usize) {
    if features.is_empty() {
        raise(SegError::invalid_argument(
            "k-means needs at least one feature column",
            "pass e.g. ARRAY['income', 'score']",
        ));
    }
    let columns = TupleColumns::of_relation(rel.oid(), "k-means");
    for f in features {
        match columns.lookup(f) {
            None => raise(SegError::UnknownAttribute {
                path: "features".into(),
                attr: f.clone(),
                source_name: columns.relation_name(),
                hint: format!("available columns: {}", columns.names().join(", ")),
            }),
            Some((_, ty)) if ty.is_number() => {}
            Some((_, ty)) => raise(SegError::type_mismatch(
                "features",
                format!("feature \"{f}\" is {}, not a number", ty.describe()),
                "k-means features must be numeric columns",
            )),
        }
    }
    let list: Vec<String> = features
        .iter()
        .map(|f| format!("{}::float8", quote_ident(f)))
        .collect();
    let query = format!("SELECT {} FROM {}", list.join(", "), qualified_name(rel));
    let d = features.len();
    let mut data = Vec::new();
    let mut skipped = 0usize;
    scan_query(&query, |reader| {
        let row: Option<Vec<f64>> = (0..d)
            .map(|j| reader.datum(j).map(|v| f64::from_bits(v.value() as u64)))
            .collect();
        match row {
            Some(r) => data.extend(r),
            None => skipped += 1,
        }
    });
    if skipped > 0 {
        pgrx::notice!("k-means skipped {skipped} rows with a NULL feature");
    }
    let mut points = Points { d, data };
    points.sort_rows();
    (points, skipped)
}

/// Runs a query through a cursor, 50,000 rows at a time, handing each row to `each` deformed in Rust.
pub(super) fn scan_query(query: &str, mut each: impl FnMut(&RowReader)) {
    let query = CString::new(query).unwrap_or_default();
    with_safe_search_path(|| unsafe {
        pg_sys::SPI_connect();
        let plan = pg_sys::SPI_prepare(query.as_ptr(), 0, std::ptr::null_mut());
        let portal = pg_sys::SPI_cursor_open(
            std::ptr::null(),
            plan,
            std::ptr::null_mut(),
            std::ptr::null(),
            true,
        );
        let mut reader: Option<RowReader> = None;
        loop {
            crate::interrupt::check();
            pg_sys::SPI_cursor_fetch(portal, true, 50_000);
            let table = pg_sys::SPI_tuptable;
            let n = pg_sys::SPI_processed as usize;
            if table.is_null() || n == 0 {
                break;
            }
            let reader = reader.get_or_insert_with(|| {
                RowReader::from_desc((*table).tupdesc, pg_sys::RECORDOID, -1, "query".into())
            });
            for i in 0..n {
                reader.store((**(*table).vals.add(i)).t_data);
                each(reader);
            }
            pg_sys::SPI_freetuptable(table);
        }
        pg_sys::SPI_cursor_close(portal);
        pg_sys::SPI_finish();
    })
}

fn fit(points: &Points, k: i32, seed: i32, n_init: i32, max_iter: i32) -> Clustering {
    if k < 1 || n_init < 1 || max_iter < 1 {
        raise(SegError::invalid_argument(
            "k, n_init and max_iter must be at least 1",
            "",
        ));
    }
    fit_kmeans(
        points,
        k as usize,
        seed as u64,
        n_init as usize,
        max_iter as usize,
    )
    .or_raise()
}

/// A clustering of a relation, with the scaling it was fitted under.
struct Fitted {
    c: Clustering,
    d: usize,
    center: Vec<f64>,
    scale: Vec<f64>,
}

#[allow(clippy::too_many_arguments)]
fn fit_relation(
    source: &PgRelation,
    features: &[String],
    k: i32,
    seed: i32,
    n_init: i32,
    max_iter: i32,
    standardize: bool,
) -> Fitted {
    let (mut points, _) = read_points(source, features);
    let d = points.d;
    let (center, scale) = if standardize {
        points.standardize()
    } else {
        (vec![0.0; d], vec![1.0; d])
    };
    Fitted {
        c: fit(&points, k, seed, n_init, max_iter),
        d,
        center,
        scale,
    }
}

/// Cluster order: largest first (ties by index), so "Cluster 1" is the biggest.
fn by_size(c: &Clustering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..c.sizes.len()).collect();
    order.sort_by(|&a, &b| c.sizes[b].cmp(&c.sizes[a]).then(a.cmp(&b)));
    order
}

fn original_units(centroid: &[f64], center: &[f64], scale: &[f64]) -> Vec<f64> {
    centroid
        .iter()
        .enumerate()
        .map(|(j, c)| c * scale[j] + center[j])
        .collect()
}

/// k-means++ clustering of a relation's rows on numeric features.
#[pg_extern(volatile, parallel_unsafe)]
fn kmeans(
    source: PgRelation,
    features: Vec<Option<String>>,
    k: i32,
    seed: default!(i32, 0),
    n_init: default!(i32, 10),
    max_iter: default!(i32, 300),
    standardize: default!(bool, false),
) -> TableIterator<
    'static,
    (
        name!(cluster, i32),
        name!(size, i64),
        name!(centroid, Vec<f64>),
        name!(inertia, f64),
    ),
> {
    let Fitted {
        c,
        d,
        center,
        scale,
    } = fit_relation(
        &source,
        &feature_names(features),
        k,
        seed,
        n_init,
        max_iter,
        standardize,
    );
    let rows: Vec<_> = by_size(&c)
        .into_iter()
        .enumerate()
        .map(|(rank, i)| {
            (
                (rank + 1) as i32,
                c.sizes[i] as i64,
                original_units(c.centroid(i, d), &center, &scale),
                c.inertia[i],
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Inertia and silhouette for each k, to choose the number of clusters.
#[pg_extern(volatile, parallel_unsafe)]
fn choose_k(
    source: PgRelation,
    features: Vec<Option<String>>,
    k_min: i32,
    k_max: i32,
    seed: default!(i32, 0),
    n_init: default!(i32, 10),
    standardize: default!(bool, false),
    sample_size: default!(i32, 10000),
) -> TableIterator<'static, (name!(k, i32), name!(inertia, f64), name!(silhouette, f64))> {
    if k_min < 2 || k_max < k_min || sample_size < 2 {
        raise(SegError::invalid_argument(
            format!("need 2 <= k_min <= k_max and sample_size >= 2, got k_min {k_min}, k_max {k_max}, sample_size {sample_size}"),
            "the silhouette needs at least two clusters",
        ));
    }
    let features = feature_names(features);
    let (mut points, _) = read_points(&source, &features);
    if standardize {
        points.standardize();
    }
    let d = points.d;
    // the silhouette is exact up to sample_size points, and computed on a seeded sample above it
    let sample = sample_rows(points.n(), sample_size as usize, seed as u64);
    let sampled = Points {
        d,
        data: sample
            .iter()
            .flat_map(|&i| points.row(i).to_vec())
            .collect(),
    };
    let rows: Vec<_> = (k_min..=k_max)
        .map(|k| {
            let c = fit(&points, k, seed, n_init, 300);
            let labels: Vec<usize> = sample.iter().map(|&i| c.labels[i]).collect();
            (
                k,
                c.total_inertia(),
                silhouette(&sampled, &labels, k as usize),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Fits k-means and saves the clusters as a new segmentation whose segments carry nearest-centroid rules.
#[pg_extern(volatile, parallel_unsafe)]
fn segmentation_from_clusters(
    name: &str,
    source: PgRelation,
    key_column: &str,
    features: Vec<Option<String>>,
    k: i32,
    seed: default!(i32, 0),
    n_init: default!(i32, 10),
    standardize: default!(bool, true),
) -> TableIterator<
    'static,
    (
        name!(segment, String),
        name!(size, i64),
        name!(centroid, Vec<f64>),
    ),
> {
    let features = feature_names(features);
    let Fitted {
        c,
        d,
        center,
        scale,
    } = fit_relation(&source, &features, k, seed, n_init, 300, standardize);
    let order = by_size(&c);
    let centroids: Vec<Vec<f64>> = order.iter().map(|&i| c.centroid(i, d).to_vec()).collect();
    let description = format!(
        "k-means (k = {k}, seed {seed}, n_init {n_init}{}) over {}",
        if standardize { ", standardized" } else { "" },
        features.join(", ")
    );
    Spi::run_with_args(
        "INSERT INTO segments.segmentation (name, source, key_column, description) VALUES ($1, $2, $3, $4)",
        &[name.into(), source.oid().into(), key_column.into(), description.into()],
    )
    .unwrap_or_else(|e| raise_with(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string(), None, None));
    let mut rows = vec![];
    for (rank, &i) in order.iter().enumerate() {
        let segment = format!("Cluster {}", rank + 1);
        let rule = serde_json::json!({"nearest": {
            "features": features, "centroids": centroids, "cluster": rank, "center": center, "scale": scale
        }});
        let at = original_units(c.centroid(i, d), &center, &scale);
        let about: Vec<String> = features
            .iter()
            .zip(&at)
            .map(|(f, v)| format!("{f} {v:.4}"))
            .collect();
        Spi::run_with_args(
            "INSERT INTO segments.segment (segmentation, name, priority, rule, description) VALUES ($1, $2, $3, $4, $5)",
            &[name.into(), segment.clone().into(), (rank as i32 + 1).into(), JsonB(rule).into(), format!("centroid: {}", about.join(", ")).into()],
        )
        .unwrap_or_else(|e| raise_with(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, e.to_string(), None, None));
        rows.push((segment, c.sizes[i] as i64, at));
    }
    TableIterator::new(rows)
}

// --- RFM: an aggregate over one customer's orders; internal state = purchase day → value that day.

struct RfmState {
    days: BTreeMap<i32, f64>,
    end_day: i32,
    unit: f64,
}

unsafe fn day_of(timestamptz: pg_sys::Datum) -> i32 {
    // infinite times have no calendar day (date() gives ±infinity, which would count as days)
    let t = timestamptz.value() as i64;
    if t == i64::MIN || t == i64::MAX {
        raise_with(
            PgSqlErrorCode::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "RFM needs finite order and observation times, got infinity".into(),
            None,
            Some("filter out orders with infinite times".into()),
        );
    }
    // the calendar day in the session's time zone, as date(order_time) gives it
    unsafe {
        pgrx::direct_function_call::<i32>(pg_sys::timestamptz_date, &[Some(timestamptz)])
            .unwrap_or(i32::MAX)
    }
}

c_function!(pg_finfo__rfm_accum, _rfm_accum, |fcinfo| {
    let state = match state_arg::<RfmState>(fcinfo, 0) {
        Some(s) => s,
        None => {
            let unit = match arg(fcinfo, 4) {
                Some(u) => {
                    rfm::unit_days(&String::from_datum(u, false).unwrap_or_default()).or_raise()
                }
                None => 7.0,
            };
            let end_day = match arg(fcinfo, 3) {
                Some(e) => day_of(e),
                None => raise(SegError::invalid_argument(
                    "observation_end must not be NULL",
                    "pass the end of the calibration period",
                )),
            };
            new_state(
                fcinfo,
                RfmState {
                    days: BTreeMap::new(),
                    end_day,
                    unit,
                },
            )
        }
    };
    if let (Some(t), Some(amount)) = (arg(fcinfo, 1), arg(fcinfo, 2)) {
        let value = super::row::numeric_to_f64(amount);
        if !value.is_finite() || value < 0.0 {
            raise(SegError::out_of_range(
                format!("order amount {value} is not a finite, non-negative number"),
                "refunds and corrections belong outside the RFM input",
            ));
        }
        *state.days.entry(day_of(t)).or_insert(0.0) += value;
    }
    pg_sys::Datum::from(state as *mut RfmState)
});

c_function!(pg_finfo__rfm_final, _rfm_final, |fcinfo| {
    let summary =
        state_arg::<RfmState>(fcinfo, 0).and_then(|s| rfm::summarize(&s.days, s.end_day, s.unit));
    match summary {
        Some(s) => composite(
            fcinfo,
            &[
                Some(pg_sys::Datum::from(s.frequency)),
                f8(s.recency),
                f8(s.t),
                f8(s.monetary),
            ],
        ),
        None => {
            (*fcinfo).isnull = true;
            pg_sys::Datum::from(0)
        }
    }
});

// --- Model fits and evaluations: aggregates whose state is a flat list of float rows, a float8[]
// [width, rows, the rows' values..., spare room]. It grows by doubling and is written in place while the
// aggregate runs; its combine concatenates, so parallel plans and Citus workers aggregate partially.

const ROWS_HEADER: usize = 2;

fn not_a_rows_state() -> ! {
    raise_with(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        "not a state of this aggregate: expected [width, rows, values...]".into(),
        None,
        Some("the state functions are internal to pg_segments' aggregates".into()),
    )
}

/// A rows state's width and row count; 22023 for an array that is not one.
fn rows_header(s: &[f64]) -> (usize, usize) {
    if s.len() < ROWS_HEADER {
        not_a_rows_state()
    }
    let (w, n) = (s[0], s[1]);
    if w < 1.0
        || n < 0.0
        || w.fract() != 0.0
        || n.fract() != 0.0
        || ROWS_HEADER as f64 + w * n > s.len() as f64
    {
        not_a_rows_state()
    }
    (w as usize, n as usize)
}

/// The rows state in argument `i`, writable: the aggregate's own copy while it runs, else a copy.
unsafe fn rows_arg<'a>(
    fcinfo: pg_sys::FunctionCallInfo,
    i: usize,
) -> Option<(&'a mut [f64], *mut pg_sys::ArrayType)> {
    unsafe {
        let d = (*fcinfo).args.as_slice(i + 1)[i];
        if d.isnull {
            return None;
        }
        let mut v = d.value.cast_mut_ptr::<pg_sys::varlena>();
        if !pgrx::varlena::varatt_is_4b_u(v) || !in_aggregate(fcinfo) {
            v = pg_sys::pg_detoast_datum_copy(v);
        }
        let arr = v as *mut pg_sys::ArrayType;
        let s = float8_elements(arr).unwrap_or_else(|| not_a_rows_state());
        Some((s, arr))
    }
}

/// A rows state with room for `capacity` rows of `width`, holding a copy of `rows` (values, row-major).
/// Made where the executor expects it: in the current context for a float8[] state (the aggregate copies
/// it into its own); in the aggregate's context for the `internal` state that 0.1.0 declared (a database not
/// yet updated, running this library), which the executor keeps as a bare pointer.
unsafe fn new_rows(
    fcinfo: pg_sys::FunctionCallInfo,
    width: usize,
    rows: &[f64],
    capacity: usize,
) -> *mut pg_sys::ArrayType {
    unsafe {
        let len = ROWS_HEADER + width * capacity.max(rows.len() / width.max(1));
        let mut aggregate_context = std::ptr::null_mut();
        let arr = if super::declared_arg_type(fcinfo, 0) == pg_sys::INTERNALOID
            && pg_sys::AggCheckCallContext(fcinfo, &mut aggregate_context) != 0
        {
            PgMemoryContexts::For(aggregate_context).switch_to(|_| zero_array(len))
        } else {
            zero_array(len)
        };
        let s = float8_elements(arr).unwrap_or_default();
        s[0] = width as f64;
        s[1] = (rows.len() / width.max(1)) as f64;
        s[ROWS_HEADER..ROWS_HEADER + rows.len()].copy_from_slice(rows);
        arr
    }
}

/// Appends `values` as one row to the rows state in argument 0 (a new state when NULL); the state datum.
pub(super) unsafe fn append_row(fcinfo: pg_sys::FunctionCallInfo, values: &[f64]) -> pg_sys::Datum {
    unsafe {
        let width = values.len();
        let arr = match rows_arg(fcinfo, 0) {
            None => new_rows(fcinfo, width, values, 64),
            Some((s, arr)) => {
                let (w, n) = rows_header(s);
                if w != width {
                    not_a_rows_state()
                }
                let used = ROWS_HEADER + n * width;
                let arr = if used + width > s.len() {
                    // full: a copy twice the size (the aggregate moves it into its own context, frees this one)
                    new_rows(fcinfo, width, &s[ROWS_HEADER..used], 2 * n)
                } else {
                    arr
                };
                let s = float8_elements(arr).unwrap_or_default();
                s[used..used + width].copy_from_slice(values);
                s[1] = (n + 1) as f64;
                return pg_sys::Datum::from(arr);
            }
        };
        pg_sys::Datum::from(arr)
    }
}

/// The state in argument 0 unchanged (a row with a NULL adds nothing).
pub(super) unsafe fn unchanged_rows(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let d = (*fcinfo).args.as_slice(1)[0];
        (*fcinfo).isnull = d.isnull;
        d.value
    }
}

c_function!(pg_finfo__rows_accum, _rows_accum, |fcinfo| {
    let width = (*fcinfo).nargs as usize - 1;
    let values: Option<Vec<f64>> = (1..=width)
        .map(|i| arg(fcinfo, i).map(|d| f64::from_bits(d.value() as u64)))
        .collect();
    match values {
        Some(v) => append_row(fcinfo, &v),
        None => unchanged_rows(fcinfo),
    }
});

// Combine: the rows of both, in a state with room for them.
c_function!(pg_finfo__rows_combine, _rows_combine, |fcinfo| {
    let a = rows_arg(fcinfo, 0);
    let b = rows_arg(fcinfo, 1);
    match (a, b) {
        (None, None) => {
            (*fcinfo).isnull = true;
            pg_sys::Datum::from(0)
        }
        (Some((_, arr)), None) => pg_sys::Datum::from(arr),
        (None, Some((s, _))) => {
            let (w, n) = rows_header(s);
            pg_sys::Datum::from(new_rows(fcinfo, w, &s[ROWS_HEADER..ROWS_HEADER + w * n], n))
        }
        (Some((sa, _)), Some((sb, _))) => {
            let ((wa, na), (wb, nb)) = (rows_header(sa), rows_header(sb));
            if wa != wb {
                not_a_rows_state()
            }
            let mut all = sa[ROWS_HEADER..ROWS_HEADER + wa * na].to_vec();
            all.extend_from_slice(&sb[ROWS_HEADER..ROWS_HEADER + wb * nb]);
            pg_sys::Datum::from(new_rows(fcinfo, wa, &all, na + nb))
        }
    }
});

// The 0.1.0 declarations' parallel support (until ALTER EXTENSION UPDATE): the state's bytes as they are.
c_function!(pg_finfo__rows_serialize, _rows_serialize, |fcinfo| {
    pg_sys::Datum::from(pg_sys::pg_detoast_datum_copy(
        (*fcinfo).args.as_slice(1)[0].value.cast_mut_ptr(),
    ))
});
c_function!(pg_finfo__rows_deserialize, _rows_deserialize, |fcinfo| {
    let bytes = (*fcinfo).args.as_slice(1)[0]
        .value
        .cast_mut_ptr::<pg_sys::varlena>();
    let mut aggregate_context = std::ptr::null_mut();
    if pg_sys::AggCheckCallContext(fcinfo, &mut aggregate_context) == 0 {
        aggregate_context = pg_sys::CurrentMemoryContext;
    }
    PgMemoryContexts::For(aggregate_context)
        .switch_to(|_| pg_sys::Datum::from(pg_sys::pg_detoast_datum_copy(bytes)))
});

/// The rows of the state in argument 0 (none for NULL).
pub(super) unsafe fn rows<'a>(fcinfo: pg_sys::FunctionCallInfo) -> Vec<&'a [f64]> {
    unsafe {
        let d = (*fcinfo).args.as_slice(1)[0];
        if d.isnull {
            return vec![];
        }
        let arr = pg_sys::pg_detoast_datum(d.value.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let s: &[f64] = float8_elements(arr).unwrap_or_else(|| not_a_rows_state());
        let (w, n) = rows_header(s);
        s[ROWS_HEADER..ROWS_HEADER + w * n]
            .chunks_exact(w)
            .collect()
    }
}

fn n_datum(n: usize) -> Option<pg_sys::Datum> {
    Some(pg_sys::Datum::from(n as i64))
}

c_function!(pg_finfo__bgnbd_final, _bgnbd_final, |fcinfo| {
    let customers: Vec<Rfm> = rows(fcinfo)
        .iter()
        .map(|r| Rfm {
            frequency: r[0],
            recency: r[1],
            t: r[2],
        })
        .collect();
    let fit = lifetime::fit_bgnbd(&customers).or_raise();
    let p = fit.params;
    composite(
        fcinfo,
        &[
            f8(p.r),
            f8(p.alpha),
            f8(p.a),
            f8(p.b),
            f8(fit.log_likelihood),
            n_datum(fit.n),
        ],
    )
});

c_function!(pg_finfo__gamma_gamma_final, _gamma_gamma_final, |fcinfo| {
    let customers: Vec<(f64, f64)> = rows(fcinfo).iter().map(|r| (r[0], r[1])).collect();
    let fit = lifetime::fit_gamma_gamma(&customers).or_raise();
    let p = fit.params;
    composite(
        fcinfo,
        &[
            f8(p.p),
            f8(p.q),
            f8(p.v),
            f8(fit.log_likelihood),
            n_datum(fit.n),
        ],
    )
});

c_function!(pg_finfo__sbg_final, _sbg_final, |fcinfo| {
    let mut curve = vec![];
    for r in rows(fcinfo) {
        if r[0].fract() != 0.0 || r[0] < 0.0 {
            raise(SegError::invalid_argument(
                format!("period {} is not a whole number >= 0", r[0]),
                "",
            ));
        }
        curve.push((r[0] as u32, r[1]));
    }
    let fit = lifetime::fit_sbg(&curve).or_raise();
    composite(
        fcinfo,
        &[
            f8(fit.params.alpha),
            f8(fit.params.beta),
            f8(fit.log_likelihood),
        ],
    )
});

fn customer(frequency: f64, recency: f64, t: f64) -> Rfm {
    let c = Rfm {
        frequency,
        recency,
        t,
    };
    c.check().or_raise();
    c
}

#[pg_extern(immutable, parallel_safe, strict, name = "_bgnbd_expected")]
fn bgnbd_expected(
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    horizon: f64,
    frequency: f64,
    recency: f64,
    t: f64,
) -> f64 {
    if horizon < 0.0 {
        raise(SegError::invalid_argument(
            format!("horizon {horizon} is negative"),
            "",
        ));
    }
    BgNbd { r, alpha, a, b }
        .expected(horizon, &customer(frequency, recency, t))
        .or_raise()
}

#[pg_extern(immutable, parallel_safe, strict, name = "_p_alive")]
fn p_alive(r: f64, alpha: f64, a: f64, b: f64, frequency: f64, recency: f64, t: f64) -> f64 {
    BgNbd { r, alpha, a, b }.p_alive(&customer(frequency, recency, t))
}

#[pg_extern(immutable, parallel_safe, strict, name = "_expected_spend")]
fn expected_spend(p: f64, q: f64, v: f64, frequency: f64, monetary: f64) -> f64 {
    GammaGamma { p, q, v }
        .expected_spend(frequency, monetary)
        .or_raise()
}

/// A lifetime horizon beyond a century says nothing about a customer (and costs a series per month).
const MAX_CLV_MONTHS: i32 = 1200;

/// Σ over months m = 1..months of E[purchases in month m] × E[spend] / (1 + monthly_discount)^m,
/// a month being 365.25/12 days expressed in `time_unit`.
#[pg_extern(immutable, parallel_safe, strict, name = "_predicted_clv")]
#[allow(clippy::too_many_arguments)]
fn predicted_clv(
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    p: f64,
    q: f64,
    v: f64,
    frequency: f64,
    recency: f64,
    t: f64,
    monetary: f64,
    months: i32,
    monthly_discount: f64,
    time_unit: &str,
) -> f64 {
    if !(0..=MAX_CLV_MONTHS).contains(&months) || monthly_discount <= -1.0 {
        raise(SegError::invalid_argument(
            format!("months must be between 0 and {MAX_CLV_MONTHS} and monthly_discount > -1"),
            "e.g. 12 months at 0.01",
        ));
    }
    let month = rfm::unit_days("month").or_raise() / rfm::unit_days(time_unit).or_raise();
    let model = BgNbd { r, alpha, a, b };
    let c = customer(frequency, recency, t);
    let spend = GammaGamma { p, q, v }
        .expected_spend(frequency, monetary)
        .or_raise();
    (1..=months)
        .map(|m| {
            crate::interrupt::check();
            let purchases = model.expected(m as f64 * month, &c).or_raise()
                - model.expected((m - 1) as f64 * month, &c).or_raise();
            purchases * spend / (1.0 + monthly_discount).powi(m)
        })
        .sum()
}

#[pg_extern(immutable, parallel_safe, strict, name = "_sbg_survival")]
fn sbg_survival(alpha: f64, beta: f64, t: f64) -> f64 {
    Sbg { alpha, beta }.survival(t)
}

#[pg_extern(immutable, parallel_safe, strict, name = "_sbg_retention")]
fn sbg_retention(alpha: f64, beta: f64, t: f64) -> f64 {
    if t < 1.0 {
        raise(SegError::invalid_argument(
            format!("retention is defined from period 1, got {t}"),
            "",
        ));
    }
    Sbg { alpha, beta }.retention(t)
}
