// #[pg_test]s: run inside a real PostgreSQL by `cargo pgrx test`.
use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn setup_accounts() {
        Spi::run(
            "CREATE TABLE accounts (id int PRIMARY KEY, employees int, industry text, country text);
             INSERT INTO accounts VALUES (1, 5000, 'Healthcare', 'US'), (2, 5000, 'Mining', 'DE'),
                                         (3, 20, 'Retail', 'US'), (4, NULL, NULL, NULL);
             INSERT INTO segments.segmentation (name, source, key_column) VALUES ('gtm', 'accounts', 'id');
             INSERT INTO segments.segment (segmentation, name, parent, priority, rule) VALUES
               ('gtm', 'Enterprise', NULL, 10, '{\"attr\": \"employees\", \"op\": \">=\", \"value\": 1000}'),
               ('gtm', 'Healthcare', 'Enterprise', 1, '{\"attr\": \"industry\", \"op\": \"=\", \"value\": \"Healthcare\"}'),
               ('gtm', 'SMB', NULL, 20, '{\"attr\": \"employees\", \"op\": \"<\", \"value\": 1000}');",
        )
        .unwrap();
    }

    #[pg_test]
    fn segment_of_assigns_hierarchy() {
        setup_accounts();
        let got = Spi::get_one::<String>(
            "SELECT string_agg(id || ':' || segments.segment_path(a, 'gtm'), ',' ORDER BY id) FROM accounts a",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got,
            "1:Enterprise > Healthcare,2:Enterprise,3:SMB,4:Unsegmented"
        );
    }

    #[pg_test]
    fn classify_and_to_sql_agree_with_segment_of() {
        setup_accounts();
        let disagreements = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM accounts a
             WHERE segments.segment_of(a, 'gtm') IS DISTINCT FROM segments.classify(a, segments.ruleset('gtm'))
                OR segments.segment_of(a, 'gtm') IS DISTINCT FROM ({})",
            Spi::get_one::<String>("SELECT segments.to_sql('gtm')").unwrap().unwrap()
        ))
        .unwrap()
        .unwrap();
        assert_eq!(disagreements, 0);
    }

    #[pg_test(error = "segmentation \"nope\" does not exist")]
    fn unknown_segmentation_is_an_error() {
        setup_accounts();
        Spi::get_one::<String>("SELECT segments.segment_of(a, 'nope') FROM accounts a LIMIT 1")
            .unwrap();
    }

    /// Citus's combine step on the coordinator calls an aggregate's final function with no calling
    /// expression: a composite result is built from the function's declared type all the same.
    #[pg_test]
    fn composite_results_need_no_calling_expression() {
        let state = Spi::get_one::<Vec<f64>>(
            "SELECT segments._nps_ci_accum(segments._nps_ci_accum(segments._nps_ci_accum('{0,0,0,0}', 10), 9), 3)",
        )
        .unwrap()
        .unwrap();
        let expected = Spi::get_one::<String>(&format!(
            "SELECT segments._nps_ci_final('{{{}}}'::float8[])::text",
            state
                .iter()
                .map(f64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap()
        .unwrap();
        let final_fn = Spi::get_one::<pg_sys::Oid>(
            "SELECT 'segments._nps_ci_final(float8[])'::regprocedure::oid",
        )
        .unwrap()
        .unwrap();
        let estimate = Spi::get_one::<pg_sys::Oid>("SELECT 'segments.estimate'::regtype::oid")
            .unwrap()
            .unwrap();
        let got = unsafe {
            let result = pg_sys::OidFunctionCall1Coll(
                final_fn,
                pg_sys::InvalidOid,
                state.into_datum().unwrap(),
            );
            let (mut output, mut varlena) = (pg_sys::InvalidOid, false);
            pg_sys::getTypeOutputInfo(estimate, &mut output, &mut varlena);
            std::ffi::CStr::from_ptr(pg_sys::OidOutputFunctionCall(output, result))
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(got, expected);
        assert!(got.starts_with("(33.3"), "{got}");
    }

    /// Citus's worker_partial_agg calls an aggregate's transition function through a bare FmgrInfo (no
    /// calling expression): overloads that share one C function still read each argument by its declared type
    /// (a numeric NPS answer; dates and a percentile for time_to_close, which crashed a Citus worker).
    #[pg_test]
    fn overloads_read_declared_types_without_calling_expression() {
        let oid = |signature: &str| {
            Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{signature}'::regprocedure::oid"))
                .unwrap()
                .unwrap()
        };
        let date = |text: &str| {
            Spi::get_one::<pgrx::datum::Date>(&format!("SELECT date '{text}'"))
                .unwrap()
                .unwrap()
                .into_datum()
                .unwrap()
        };
        unsafe {
            let nps = oid("segments._nps_accum(float8[],numeric)");
            let nine = Spi::get_one::<pgrx::AnyNumeric>("SELECT 9::numeric")
                .unwrap()
                .unwrap();
            let state = pg_sys::OidFunctionCall2Coll(
                nps,
                pg_sys::InvalidOid,
                vec![0.0f64, 0.0, 0.0].into_datum().unwrap(),
                nine.into_datum().unwrap(),
            );
            assert_eq!(
                Vec::<f64>::from_datum(state, false).unwrap(),
                vec![1.0, 1.0, 0.0]
            );

            let accum = oid("segments._durations_accum(float8[],date,date,float8)");
            let first = Spi::get_one::<Vec<f64>>(
                "SELECT segments._durations_accum(NULL, date '2024-01-01', date '2024-01-11', 0.9::float8)",
            )
            .unwrap()
            .unwrap();
            let state = pg_sys::OidFunctionCall4Coll(
                accum,
                pg_sys::InvalidOid,
                first.into_datum().unwrap(),
                date("2024-02-01"),
                date("2024-02-06"),
                0.9f64.into_datum().unwrap(),
            );
            let state = Vec::<f64>::from_datum(state, false).unwrap();
            // n, number of fractions, the fraction, then the durations in microseconds
            assert_eq!(
                &state[..5],
                &[2.0, 1.0, 0.9, 10.0 * 86_400e6, 5.0 * 86_400e6]
            );
        }
    }
}
