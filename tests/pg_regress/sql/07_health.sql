-- segments.health: one row per segment, from the metric columns the segmentation declares.
UPDATE segments.segmentation
SET source = 'telco.revenue', arr_column = 'arr_end', arr_start_column = 'arr_start', churned_column = 'churned',
    gross_margin = 0.7
WHERE name = 'contract';

SELECT segment, accounts, round(account_share::numeric, 4) AS share, arr, round(arr_share::numeric, 4) AS arr_share,
       round(avg_acv::numeric, 2) AS avg_acv, median_acv, round(100 * churn_rate::numeric, 2) AS churn_pct,
       round(churn_lower::numeric, 4) AS churn_lower, round(churn_upper::numeric, 4) AS churn_upper,
       round(nrr::numeric, 4) AS nrr, round(grr::numeric, 4) AS grr, round(arr_growth::numeric, 4) AS growth,
       nps, round(clv::numeric, 2) AS clv, small_sample
FROM segments.health('contract');

-- Independent check of the ARR columns.
SELECT contract, count(*), sum(arr_end) AS arr, percentile_cont(0.5) WITHIN GROUP (ORDER BY arr_end) AS median_acv
FROM telco.revenue GROUP BY 1 ORDER BY 1;

-- As a materialized view refreshed concurrently (the unique index on segment makes that possible).
CREATE MATERIALIZED VIEW telco.contract_health AS SELECT * FROM segments.health('contract');
CREATE UNIQUE INDEX ON telco.contract_health (segment);
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year", "Two year"]}'
WHERE segmentation = 'contract' AND name = 'One year';
REFRESH MATERIALIZED VIEW CONCURRENTLY telco.contract_health;
SELECT segment, accounts, small_sample FROM telco.contract_health ORDER BY segment;
UPDATE segments.segment SET rule = '{"attr": "contract", "op": "in", "value": ["One year"]}'
WHERE segmentation = 'contract' AND name = 'One year';
REFRESH MATERIALIZED VIEW CONCURRENTLY telco.contract_health;
SELECT segment, accounts FROM telco.contract_health ORDER BY segment;

-- A segmentation without metric columns still reports sizes; metrics are NULL.
SELECT segment, accounts, arr, churn_rate, nrr, nps, small_sample FROM segments.health('value');
SELECT * FROM error_of($$SELECT * FROM segments.health('nope')$$);
SELECT * FROM error_of($$UPDATE segments.segmentation SET churned_column = 'no_such' WHERE name = 'contract'$$);
