//! The pgrx boundary: argument conversion, per-call-site caches, catalog reads and error reporting.
//! Everything that decides anything lives in the pure modules (`rules`, `metrics`, `models`).

pub mod aggregates;
pub mod classify;
pub mod distributed;
pub mod inline;
pub mod models;
pub mod predict;
pub mod related;
pub mod row;
pub mod security;
pub mod tracking;

use crate::error::SegError;
use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{PgMemoryContexts, PgSqlErrorCode};

/// Reports a core error as an ERROR with its SQLSTATE, detail and hint. Never returns.
pub fn raise(e: SegError) -> ! {
    let code = match e.sqlstate() {
        "22023" => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        "42703" => PgSqlErrorCode::ERRCODE_UNDEFINED_COLUMN,
        "42704" => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        "42804" => PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
        "2201B" => PgSqlErrorCode::ERRCODE_INVALID_REGULAR_EXPRESSION,
        "22007" => PgSqlErrorCode::ERRCODE_INVALID_DATETIME_FORMAT,
        "22003" => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        "54001" => PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX,
        _ => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
    };
    raise_with(code, e.to_string(), e.detail(), e.hint())
}

pub fn raise_with(
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
) -> ! {
    let mut report = ErrorReport::new(code, message, "pg_segments");
    if let Some(d) = detail {
        report = report.set_detail(d);
    }
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR reports do not return")
}

pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, SegError> {
    fn or_raise(self) -> T {
        self.unwrap_or_else(|e| raise(e))
    }
}

/// The declared type of argument `i` of the function being called. Overloads that share one C function read
/// it to know how to read the datum. The calling expression says it when there is one; a caller without one
/// (Citus's worker_partial_agg calls an aggregate's transition function through a bare FmgrInfo) gets it
/// from the function's signature, never a guess.
pub unsafe fn declared_arg_type(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> pg_sys::Oid {
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let from_call = pg_sys::get_fn_expr_argtype(flinfo, i as i32);
        if from_call != pg_sys::InvalidOid || flinfo.is_null() {
            return from_call;
        }
        let mut types: *mut pg_sys::Oid = std::ptr::null_mut();
        let mut nargs: std::ffi::c_int = 0;
        pg_sys::get_func_signature((*flinfo).fn_oid, &mut types, &mut nargs);
        if (i as std::ffi::c_int) < nargs {
            *types.add(i)
        } else {
            pg_sys::InvalidOid
        }
    }
}

/// Declares a version-1 C function written against the raw `fcinfo`, for the hot per-row paths where
/// pgrx's argument boxing would cost more than the work (the SQL declaration is in `sql/`).
macro_rules! c_function {
    ($finfo:ident, $name:ident, |$fcinfo:ident| $body:block) => {
        #[unsafe(no_mangle)]
        #[doc(hidden)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record =
                pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }

        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name(
            $fcinfo: pgrx::pg_sys::FunctionCallInfo,
        ) -> pgrx::pg_sys::Datum {
            // turns a Rust panic into a Postgres ERROR, as #[pg_guard] does
            unsafe { pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| $body) }
        }
    };
}
pub(crate) use c_function;

/// Builds a value of the function's declared composite return type: from the calling expression when there
/// is one, else from the function's own declaration (a final function called with no expression, as in
/// Citus's combine step on the coordinator).
pub unsafe fn composite(
    fcinfo: pg_sys::FunctionCallInfo,
    values: &[Option<pg_sys::Datum>],
) -> pg_sys::Datum {
    unsafe {
        let mut type_oid = pg_sys::InvalidOid;
        let mut desc: pg_sys::TupleDesc = std::ptr::null_mut();
        let class = pg_sys::get_call_result_type(fcinfo, &mut type_oid, &mut desc);
        if class != pg_sys::TypeFuncClass::TYPEFUNC_COMPOSITE || desc.is_null() {
            raise_with(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "function returning a composite type called in a context that cannot accept one"
                    .into(),
                None,
                None,
            );
        }
        let desc = pg_sys::BlessTupleDesc(desc);
        let datums: Vec<pg_sys::Datum> = values
            .iter()
            .map(|v| v.unwrap_or(pg_sys::Datum::from(0)))
            .collect();
        let mut nulls: Vec<bool> = values.iter().map(|v| v.is_none()).collect();
        let tuple = pg_sys::heap_form_tuple(desc, datums.as_ptr() as *mut _, nulls.as_mut_ptr());
        pg_sys::Datum::from((*tuple).t_data)
    }
}

pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<pg_sys::Datum> {
    unsafe {
        if i >= (*fcinfo).nargs as usize {
            return None; // the shorter overload of an aggregate: the argument takes its default
        }
        let a = (*fcinfo).args.as_slice(i + 1)[i];
        (!a.isnull).then_some(a.value)
    }
}

/// A text datum (palloc'd in the current memory context).
pub fn text_datum(s: &str) -> pg_sys::Datum {
    unsafe {
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            s.as_ptr().cast(),
            s.len() as i32,
        ))
    }
}

pub fn f8(x: f64) -> Option<pg_sys::Datum> {
    Some(pg_sys::Datum::from(x.to_bits()))
}

/// Internal aggregate states are Rust values leaked into the aggregate's memory context and dropped with it.
unsafe fn agg_context(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::MemoryContext {
    unsafe {
        let mut cx = std::ptr::null_mut();
        if pg_sys::AggCheckCallContext(fcinfo, &mut cx) == 0 {
            raise_with(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "aggregate state functions can only be called by their aggregate".into(),
                None,
                None,
            );
        }
        cx
    }
}

pub unsafe fn state_arg<'a, T>(fcinfo: pg_sys::FunctionCallInfo, i: usize) -> Option<&'a mut T> {
    unsafe { arg(fcinfo, i).map(|d| &mut *d.cast_mut_ptr::<T>()) }
}

pub unsafe fn new_state<T>(fcinfo: pg_sys::FunctionCallInfo, value: T) -> &'static mut T {
    unsafe { &mut *PgMemoryContexts::For(agg_context(fcinfo)).leak_and_drop_on_delete(value) }
}
