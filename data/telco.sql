-- IBM Telco Customer Churn as a typed account table (see data/README.md for source and license).
-- Run with psql after loading the CSV into telco.raw (every column text, as in the file).
CREATE TABLE telco.customers (
    customer_id       text PRIMARY KEY,
    gender            text NOT NULL,
    senior_citizen    boolean NOT NULL,
    partner           boolean NOT NULL,
    dependents        boolean NOT NULL,
    tenure            integer NOT NULL,
    phone_service     boolean NOT NULL,
    multiple_lines    text NOT NULL,
    internet_service  text NOT NULL,
    online_security   text NOT NULL,
    online_backup     text NOT NULL,
    device_protection text NOT NULL,
    tech_support      text NOT NULL,
    streaming_tv      text NOT NULL,
    streaming_movies  text NOT NULL,
    contract          text NOT NULL,
    paperless_billing boolean NOT NULL,
    payment_method    text NOT NULL,
    monthly_charges   numeric(8,2) NOT NULL,
    total_charges     numeric(10,2),          -- blank in the file for 11 brand-new accounts
    churned           boolean NOT NULL
);
COMMENT ON TABLE telco.customers IS 'IBM Telco Customer Churn sample (7043 accounts), Apache-2.0, see data/README.md';

INSERT INTO telco.customers
SELECT "customerID", gender, "SeniorCitizen" = '1', "Partner" = 'Yes', "Dependents" = 'Yes', tenure::int,
       "PhoneService" = 'Yes', "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup",
       "DeviceProtection", "TechSupport", "StreamingTV", "StreamingMovies", "Contract",
       "PaperlessBilling" = 'Yes', "PaymentMethod", "MonthlyCharges"::numeric,
       nullif(trim("TotalCharges"), '')::numeric, "Churn" = 'Yes'
FROM telco.raw;
DROP TABLE telco.raw;
ANALYZE telco.customers;
