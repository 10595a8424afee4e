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

pub(super) fn internal_error(what: &str) -> ! {
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

/// Puts the extension owner's identity, and the security context it came with, back in place when dropped:
/// however the work ends (an ERROR unwinds through the drop).
struct Restore {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Restore {
    fn drop(&mut self) {
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

/// Runs one statement of the extension's own through SPI (search_path pinned).
fn run(sql: &str) {
    with_safe_search_path(|| unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            internal_error("could not connect to SPI");
        }
        let sql = std::ffi::CString::new(sql).unwrap_or_default();
        if pg_sys::SPI_execute(sql.as_ptr(), false, 0) < 0 {
            internal_error("a statement copying a source failed");
        }
        pg_sys::SPI_finish();
    })
}

/// The relation a SECURITY DEFINER function (refresh, backfill) may read for the caller: a table, partitioned
/// table or materialized view itself (reading one runs no code); a view or foreign table copied into the
/// temporary table `pg_temp.<copy_name>`, read as the relation's owner, as PostgreSQL runs a materialized
/// view's query as its owner: the view's functions (and a foreign
/// table's user mapping) run with the rights of the role that wrote them, inside a security-restricted
/// operation, never with the extension owner's — whoever calls the extension's SECURITY DEFINER function
/// (refresh, backfill), a superuser's scheduled job included. The caller's own right to read the relation is
/// checked before (segments._check_caller_reads_all). The copy is data only, which the function then reads.
#[pg_extern(volatile, parallel_unsafe, name = "_read_as_owner")]
fn read_as_owner(relation: pg_sys::Oid, copy_name: &str) -> pg_sys::Oid {
    unsafe {
        if matches!(pg_sys::get_rel_relkind(relation) as u8, b'r' | b'p' | b'm') {
            return relation;
        }
        let relname = pg_sys::get_rel_name(relation);
        if relname.is_null() {
            super::raise_with(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", relation.to_u32()),
                None,
                None,
            );
        }
        let source = CStr::from_ptr(pg_sys::quote_qualified_identifier(
            pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relation)),
            relname,
        ))
        .to_string_lossy()
        .into_owned();
        // quote_identifier may hand back its argument itself: the CString must outlive `target`
        let into = std::ffi::CString::new(copy_name).unwrap_or_default();
        let target = format!(
            "pg_temp.{}",
            CStr::from_ptr(pg_sys::quote_identifier(into.as_ptr())).to_string_lossy()
        );
        // only for what the caller may read itself (and only the extension's functions may call this at all)
        if pg_sys::pg_class_aclcheck(
            relation,
            pg_sys::GetOuterUserId(),
            pg_sys::ACL_SELECT as pg_sys::AclMode,
        ) != pg_sys::AclResult::ACLCHECK_OK
        {
            super::raise_with(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("permission denied for {source}"),
                None,
                None,
            );
        }
        let owner = read_first(
            c"SELECT c.relowner::regrole::text FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.oid",
            &[Some(&relation.to_u32().to_string())],
            |d| d.map(|d| String::from_datum(d, false).unwrap_or_default()),
        )
        .unwrap_or_default();
        let owner_oid = pg_sys::get_role_oid(
            std::ffi::CString::new(owner.as_str())
                .unwrap_or_default()
                .as_ptr(),
            false,
        );
        // the empty copy is made from the catalog, not from a query: planning one could run the view's
        // immutable functions here, as the extension's owner
        let columns: String = read_first(
            c"SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
              FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped",
            &[Some(&relation.to_u32().to_string())],
            |d| d.map(|d| String::from_datum(d, false).unwrap_or_default()),
        )
        .unwrap_or_default();
        // a copy left by an earlier call in this transaction is replaced
        let oid_of = |name: &str| {
            read_first(
                c"SELECT pg_catalog.to_regclass($1)::pg_catalog.oid::pg_catalog.text",
                &[Some(name)],
                |d| d.and_then(|d| String::from_datum(d, false)),
            )
        };
        if oid_of(&target).is_some() {
            run(&format!("DROP TABLE {target}"));
        }
        run(&format!(
            "CREATE TEMP TABLE {target} ({columns}) ON COMMIT DROP"
        ));
        run(&format!("GRANT INSERT ON {target} TO {owner}"));
        let mut user = pg_sys::Oid::INVALID;
        let mut context = 0;
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let _restore = Restore { user, context };
        pg_sys::SetUserIdAndSecContext(
            owner_oid,
            context
                | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION)
                    as i32,
        );
        run(&format!("INSERT INTO {target} SELECT * FROM {source}"));
        drop(_restore);
        let copy = oid_of(&target)
            .and_then(|o| o.parse::<u32>().ok())
            .unwrap_or_default();
        pg_sys::Oid::from(copy)
    }
}
