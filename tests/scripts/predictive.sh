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

# a churn tree: its leaves partition the accounts as scikit-learn's DecisionTreeClassifier does, and
# segment_of puts exactly the leaf's accounts in each leaf segment
for params in "3 100" "5 20"; do
  read -r depth leaf <<<"$params"
  q -d predictive -c "SELECT count(*) FROM segments.segmentation_from_tree('tree_$depth', 'telco.customers', 'customer_id', 'churned', $list, max_depth => $depth, min_leaf => $leaf)" >/dev/null
  q -d predictive -c "COPY (SELECT rows, positives FROM segments.segment s JOIN LATERAL (SELECT (regexp_match(s.description, '^(\d+) training rows'))[1]::int AS rows,
                                   (regexp_match(s.description, '\((\d+)\)$'))[1]::int AS positives) d ON true
                            WHERE s.segmentation = 'tree_$depth' AND NOT EXISTS (SELECT 1 FROM segments.segment c WHERE c.segmentation = s.segmentation AND c.parent = s.name))
                      TO STDOUT (FORMAT csv)" >"$WORK/leaves.csv"
  "$venv/bin/python" "$HERE/../reference/tree.py" "$WORK/rows.csv" "$WORK/leaves.csv" "$depth" "$leaf" nncccbb
  # segment_of agrees with the tree's counts, and to_sql with segment_of, on every account
  bad=$(qa -d predictive -c "SELECT count(*) FROM (SELECT segments.segment_of(c, 'tree_$depth') AS seg, count(*) AS n, count(*) FILTER (WHERE churned) AS p
                                                   FROM telco.customers c GROUP BY 1) a
                              JOIN segments.segment s ON s.segmentation = 'tree_$depth' AND s.name = a.seg
                              WHERE s.description NOT LIKE a.n || ' training rows, %(' || a.p || ')'")
  [ "$bad" = 0 ] || fail "segment_of does not put the tree's leaf counts in $bad leaf segments"
  bad=$(qa -d predictive -c "SELECT segments.to_sql('tree_$depth')" | { read -r expr; qa -d predictive -c "SELECT count(*) FROM telco.customers t WHERE ($expr) IS DISTINCT FROM segments.segment_of(t, 'tree_$depth')"; })
  [ "$bad" = 0 ] || fail "to_sql disagrees with segment_of on $bad accounts of tree_$depth"
  echo "ok tree_$depth: segment_of gives the leaf counts, to_sql agrees on every account"
done

# what makes a leaf different (Welch t, χ²) and the CHAID statistic, against scipy
leaf="contract ≠ Month-to-month & monthly_charges > 93.67 & contract = One year"
q -d predictive -c "COPY (SELECT segments.segment_of(c, 'tree_3') = '$leaf', churned, contract, tenure FROM telco.customers c) TO STDOUT (FORMAT csv)" >"$WORK/profile_rows.csv"
q -d predictive -c "COPY (SELECT 'profile ' || attribute, statistic, p_value FROM segments.profile('tree_3', '$leaf', ARRAY['contract', 'tenure']) GROUP BY 1, 2, 3
                          UNION ALL SELECT 'association contract', statistic, p_value FROM segments.association('telco.customers', 'churned', ARRAY['contract']))
                    TO STDOUT (FORMAT csv)" >"$WORK/profile_ours.csv"
"$venv/bin/python" "$HERE/../reference/profile.py" "$WORK/profile_rows.csv" "$WORK/profile_ours.csv"
