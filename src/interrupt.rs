//! Cancellation for the pure core's long loops. The core knows nothing of Postgres: the pgrx boundary
//! installs a check (CHECK_FOR_INTERRUPTS) when the library loads, and every loop that can run long calls
//! `check()`, so `statement_timeout`, `pg_cancel_backend` and `pg_terminate_backend` stop it within moments.
//! Without the hook (plain `cargo test`) the check does nothing.

use std::sync::OnceLock;

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Installs the interrupt check; later calls are ignored.
pub fn install(check: fn()) {
    let _ = HOOK.set(check);
}

/// Gives a pending cancel or terminate request its chance to end the statement (by unwinding).
#[inline]
pub fn check() {
    if let Some(f) = HOOK.get() {
        f()
    }
}
