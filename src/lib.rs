//! pg_segments: customer segmentation inside PostgreSQL.
//!
//! Layout: `rules` (rule language), `metrics` (segment health), `models` (clustering and lifetime models) are
//! pure Rust with plain tests; `api` is the thin pgrx boundary; hand-written SQL lives in `sql/`.

// Published constants (normal quantiles, Lanczos) are written as printed; the boundary's unsafe helpers are
// internal and documented where they are defined; SQL signatures decide the argument counts.
#![allow(
    clippy::excessive_precision,
    clippy::missing_safety_doc,
    clippy::too_many_arguments
)]

use pgrx::prelude::*;

pub mod api;
pub mod error;
pub mod interrupt;
pub mod metrics;
pub mod models;
pub mod rules;

::pgrx::pg_module_magic!(name, version);

/// Runs once per backend, when the library loads.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx appends a Rust backtrace to an ERROR's DETAIL whenever the server was started with RUST_BACKTRACE
    // set; users (and BI tools showing errors verbatim) must never see one. RUST_LIB_BACKTRACE takes
    // precedence for captured backtraces, and the backend is single-threaded here.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    interrupt::install(check_for_interrupts);
    api::distributed::install();
}

fn check_for_interrupts() {
    pgrx::check_for_interrupts!();
}

// Hand-written SQL: tables, triggers, aggregates, views and the declarations of the raw C functions, each
// after the pgrx-generated functions it names; roles and grants last.
extension_sql_file!(
    "../sql/definitions.sql",
    name = "definitions",
    requires = [
        api::classify::to_sql,
        api::classify::to_query,
        api::classify::assignment_sql,
        api::classify::definitions_changed,
        api::security::acting_role
    ]
);
extension_sql_file!(
    "../sql/metrics.sql",
    name = "metrics",
    requires = [
        api::aggregates::clv,
        api::aggregates::churn_rate_final,
        api::aggregates::nrr_final,
        api::aggregates::grr_final,
        api::aggregates::arr_growth_final,
        api::aggregates::clv_final
    ]
);
extension_sql_file!(
    "../sql/health.sql",
    name = "health",
    requires = ["definitions", "metrics"]
);
extension_sql_file!(
    "../sql/membership.sql",
    name = "membership",
    requires = ["definitions"]
);
extension_sql_file!(
    "../sql/models.sql",
    name = "models",
    requires = [
        "definitions",
        api::models::kmeans,
        api::models::choose_k,
        api::models::segmentation_from_clusters,
        api::models::bgnbd_expected,
        api::models::p_alive,
        api::models::expected_spend,
        api::models::predicted_clv,
        api::models::sbg_survival,
        api::models::sbg_retention,
        api::predict::logistic_regression,
        api::predict::segmentation_from_tree,
        api::predict::chi2_sf,
        api::predict::t_two_sided
    ]
);
extension_sql_file!("../sql/roles.sql", name = "roles", finalize);

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
