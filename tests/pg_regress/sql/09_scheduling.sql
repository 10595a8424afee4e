-- Scheduling with the real pg_cron (1.4: minute granularity): a refresh of membership and a concurrent
-- refresh of a health materialized view, each run by cron and recorded in cron.job_run_details.
CREATE EXTENSION pg_cron;
CREATE MATERIALIZED VIEW telco.plan_health AS SELECT * FROM segments.health('plan');
CREATE UNIQUE INDEX ON telco.plan_health (segment);

-- data changes that only the scheduled jobs will pick up
UPDATE telco.plans SET contract = 'One year' WHERE customer_id IN ('0003-MKNFE', '0004-TLHLJ', '0011-IGKFF');
SELECT segment, accounts FROM telco.plan_health ORDER BY segment;

SELECT cron.schedule('refresh-plan', '* * * * *', $$SELECT segments.refresh('plan')$$) > 0 AS scheduled;
SELECT cron.schedule('refresh-plan-health', '* * * * *',
                     $$REFRESH MATERIALIZED VIEW CONCURRENTLY telco.plan_health$$) > 0 AS scheduled;

-- wait (at most 150 s) until both jobs have run
DO $$
BEGIN
    FOR i IN 1..150 LOOP
        EXIT WHEN (SELECT count(DISTINCT jobid) FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')) >= 2;
        PERFORM pg_sleep(1);
    END LOOP;
END $$;

SELECT j.jobname, d.status, d.return_message
FROM cron.job_run_details d JOIN cron.job j USING (jobid)
WHERE d.runid = (SELECT min(runid) FROM cron.job_run_details x WHERE x.jobid = d.jobid)
ORDER BY 1;
SELECT account_key, segment FROM segments.current_membership
WHERE segmentation = 'plan' AND account_key IN ('0003-MKNFE', '0004-TLHLJ', '0011-IGKFF') ORDER BY 1;
SELECT segment, accounts FROM telco.plan_health ORDER BY segment;

SELECT cron.unschedule('refresh-plan') AND cron.unschedule('refresh-plan-health') AS unscheduled;
