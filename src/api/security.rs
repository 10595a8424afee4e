//! Running the extension's own queries safely inside a caller's session.
//!
//! Every SPI query of the Rust code runs under `search_path = pg_catalog, pg_temp`, so that functions or
//! operators a role planted in a schema on the caller's path can never stand in for the built-ins the
//! query means — the same protection `SET search_path` gives a SQL function, and by the same mechanism
//! (a GUC nest level that is popped when the work is done, or by the transaction's abort on an error).

use pgrx::pg_sys;
use pgrx::prelude::*;
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

/// The role that is acting, as `SET ROLE` (or the login) made it: unlike `current_user`, not changed by
/// the SECURITY DEFINER function that asks. The audit log records it.
#[pg_extern(stable, parallel_safe, name = "_acting_role")]
fn acting_role() -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}
