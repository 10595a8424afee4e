#!/usr/bin/env bash
# Predictive models against the Python references, installed from PyPI into a cached venv: the logistic
# regression of churn on the IBM Telco data equals statsmodels' Logit (coefficients to 1e-6, standard errors,
# z and p-values to 1e-5) and, with an L2 penalty, scikit-learn's LogisticRegression.
source "$(dirname "$0")/lib.bash"
venv=${PG_SEGMENTS_CACHE:-/var/cache/pg_segments}/pyref
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check numpy==2.2.6 scipy==1.15.3 statsmodels==0.14.4 \
    scikit-learn==1.6.1 pandas==2.2.3
  touch "$venv/.complete"
fi
fresh_db predictive
"$HERE/../load_fixtures.sh" predictive >/dev/null 2>&1 || fail "could not load the fixtures"
q -d predictive -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_segments CASCADE"
features="tenure, monthly_charges, contract, internet_service, payment_method, paperless_billing, senior_citizen"
list="ARRAY['$(echo "$features" | sed "s/, /','/g")']"
qa -d predictive -c "SELECT segments.logistic_regression('telco.customers', 'churned', $list)" >"$WORK/model.json"
qa -d predictive -c "SELECT segments.logistic_regression('telco.customers', 'churned', $list, l2 => 2)" >"$WORK/model_l2.json"
q -d predictive -c "COPY (SELECT churned, $features FROM telco.customers) TO STDOUT (FORMAT csv)" >"$WORK/rows.csv"
"$venv/bin/python" "$HERE/../reference/logistic.py" "$WORK/rows.csv" "$WORK/model.json" 2 "$WORK/model_l2.json"

# the recipe: fit on the train arm of a hash split, evaluate on the test arm
arm="segments.split(customer_id, ARRAY['train', 'validation', 'test'], ARRAY[0.6, 0.2, 0.2])"
q -d predictive -c "CREATE VIEW telco.train AS SELECT * FROM telco.customers WHERE $arm = 'train'" \
  -c "CREATE TABLE telco.model AS SELECT segments.logistic_regression('telco.train', 'churned', $list) AS model" \
  -c "CREATE VIEW telco.test_scores AS SELECT segments.score(c, m.model) AS score, c.churned FROM telco.customers c, telco.model m WHERE $arm = 'test'"
q -d predictive -c "COPY (SELECT score, churned FROM telco.test_scores) TO STDOUT (FORMAT csv)" >"$WORK/scores.csv"
q -d predictive -c "COPY (SELECT segments.auc(score, churned), segments.log_loss(score, churned), segments.brier(score, churned),
                                 segments.gains(score, churned, 10) -> 0 -> 'positives' FROM telco.test_scores) TO STDOUT (FORMAT csv)" >"$WORK/ours.csv"
"$venv/bin/python" "$HERE/../reference/evaluation.py" "$WORK/scores.csv" "$WORK/ours.csv"
