//! pg_segments: customer segmentation inside PostgreSQL.
//!
//! Layout: `rules` (rule language), `metrics` (segment health), `models` (clustering and lifetime models) are
//! pure Rust with plain tests; `api` is the thin pgrx boundary; hand-written SQL lives in `sql/`.

use pgrx::prelude::*;

pub mod api;
pub mod error;
pub mod rules;

::pgrx::pg_module_magic!(name, version);

// Tables, views, triggers, aggregates and the declarations of the raw C functions; last, so that every
// pgrx-generated function they name already exists.
extension_sql_file!("../sql/definitions.sql", name = "definitions", finalize);

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
