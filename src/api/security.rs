//! Running the extension's own queries safely inside a caller's session.
//!
//! Every SPI query of the Rust code runs under `search_path = pg_catalog, pg_temp`, so that functions or
//! operators a role planted in a schema on the caller's path can never stand in for the built-ins the
//! query means — the same protection `SET search_path` gives a SQL function, and by the same mechanism
//! (a GUC nest level that is popped when the work is done, or by the transaction's abort on an error).

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::ffi::CStr;

/// Runs `f` with the search_path pinned to `pg_catalog, pg_temp`; restores the caller's afterwards.
pub fn with_safe_search_path<T>(f: impl FnOnce() -> T) -> T {
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        // GUC_ACTION_SAVE is what a function's SET clause uses; it is allowed in parallel mode too
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let result = f();
        pg_sys::AtEOXact_GUC(true, level);
        result
    }
}

/// Runs a read-only query of the extension's own with text parameters and hands the first column of its
/// first row (None: no row or NULL) to `f` while SPI still holds it. Read-only in the SPI sense, so it
/// starts no command: definitions can be read inside parallel operations (CTAS, materialized views, forced
/// parallel plans), where pgrx's SPI wrapper, read-write once the transaction has an xid, would fail.
pub fn read_first<T>(
    sql: &CStr,
    args: &[Option<&str>],
    f: impl FnOnce(Option<pg_sys::Datum>) -> T,
) -> T {
    with_safe_search_path(|| unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            internal_error("could not connect to SPI");
        }
        let mut types = vec![pg_sys::TEXTOID; args.len()];
        let mut values: Vec<pg_sys::Datum> = args
            .iter()
            .map(|a| a.map(super::text_datum).unwrap_or(pg_sys::Datum::from(0)))
            .collect();
        let nulls: Vec<std::ffi::c_char> = args
            .iter()
            .map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char)
            .collect();
        let rc = pg_sys::SPI_execute_with_args(
            sql.as_ptr(),
            args.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            true,
            1,
        );
        if rc < 0 {
            internal_error("a definitions query failed");
        }
        let table = pg_sys::SPI_tuptable;
        let first = if pg_sys::SPI_processed > 0 && !table.is_null() {
            let mut isnull = false;
            let d = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut isnull);
            (!isnull).then_some(d)
        } else {
            None
        };
        let result = f(first);
        pg_sys::SPI_finish();
        result
    })
}

fn internal_error(what: &str) -> ! {
    super::raise_with(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("pg_segments: {what}"),
        None,
        None,
    )
}

/// The role that is acting, as `SET ROLE` (or the login) made it: unlike `current_user`, not changed by
/// the SECURITY DEFINER function that asks. The audit log records it.
#[pg_extern(stable, parallel_safe, name = "_acting_role")]
fn acting_role() -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}
