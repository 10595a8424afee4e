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
}
