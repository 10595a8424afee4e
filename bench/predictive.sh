#!/usr/bin/env bash
# Predictive models on 1,000,000 rows x 10 features (8 numbers, 2 categories) against the references on the
# same data, in the same run: logistic_regression (reading the table included) vs statsmodels' Logit on the
# design matrix in memory; scoring every row with segments.score vs the same linear formula written by hand in
# SQL; a depth-5 segmentation_from_tree (reading included) vs scikit-learn's DecisionTreeClassifier in memory.
# Python packages go into a venv under $RUN_DIR. Run by bin/bench.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${PG_SEGMENTS_RUN_DIR:-/tmp/pg_segments}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
venv=$RUN_DIR/venv-predictive
if ! "$venv/bin/python" -c "import statsmodels, sklearn" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet numpy==2.2.6 scipy==1.15.3 statsmodels==0.14.4 scikit-learn==1.6.1 pandas==2.2.3
fi
q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench "$@"; }
csv=$RUN_DIR/predictive.csv
q <<SQL
SELECT setseed(0.42);
DROP TABLE IF EXISTS bench.lr CASCADE;
CREATE TABLE bench.lr AS
SELECT i AS id, x1, x2, x3, x4, x5, x6, x7, x8, c1, c2,
       random() < 1 / (1 + exp(-(-0.5 + 0.8 * x1 - 0.5 * x2 + 0.3 * x3 - 0.2 * x4 + 0.1 * x5 + 0.05 * x6 - 0.4 * x7 + 0.6 * x8
                                 + CASE c1 WHEN 'b' THEN 0.4 WHEN 'c' THEN -0.3 WHEN 'd' THEN 0.2 WHEN 'e' THEN 0.7 ELSE 0 END
                                 + CASE c2 WHEN 'q' THEN -0.6 WHEN 'r' THEN 0.3 WHEN 's' THEN 0.1 ELSE 0 END))) AS y
FROM (SELECT i, random() * 2 - 1 AS x1, random() * 2 - 1 AS x2, random() AS x3, random() * 3 AS x4, random() AS x5,
             random() * 10 AS x6, random() - 0.5 AS x7, random() AS x8,
             (ARRAY['a', 'b', 'c', 'd', 'e'])[1 + (random() * 4.999)::int] AS c1, (ARRAY['p', 'q', 'r', 's'])[1 + (random() * 3.999)::int] AS c2
      FROM generate_series(1, ${BENCH_ROWS:-1000000}) i) g;
ALTER TABLE bench.lr ADD PRIMARY KEY (id);
VACUUM ANALYZE bench.lr;
\copy (SELECT y, x1, x2, x3, x4, x5, x6, x7, x8, c1, c2 FROM bench.lr) TO '$csv' CSV
DROP TABLE IF EXISTS bench.lr_model;
CREATE TABLE bench.lr_model AS SELECT segments.logistic_regression('bench.lr', 'y',
    ARRAY['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'c1', 'c2']) AS model;
SQL
# the hand-written formula: the fitted coefficients pasted into SQL
formula=$(q -At -c "SELECT string_agg(CASE WHEN t = '(intercept)' THEN b::text
                                          WHEN t LIKE 'c_=%' THEN format('CASE WHEN %s = %L THEN %s ELSE 0 END', split_part(t, '=', 1), split_part(t, '=', 2), b)
                                          ELSE format('%s * %s', b, t) END, ' + ' ORDER BY n)
                    FROM bench.lr_model, jsonb_array_elements(model -> 'coefficients') WITH ORDINALITY c(x, n),
                         LATERAL (SELECT x ->> 'term' AS t, (x ->> 'estimate')::float8 AS b) v")
features="ARRAY['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'c1', 'c2']"
ours=$(q -At <<SQL
SELECT round(bench.time_ms(\$\$SELECT segments.logistic_regression('bench.lr', 'y', $features)\$\$, 3)::numeric, 1),
       round(bench.time_ms(\$\$SELECT sum(segments.score(t, m.model)) FROM bench.lr t, bench.lr_model m\$\$, 5)::numeric, 1),
       round(bench.time_ms(\$\$SELECT sum(1 / (1 + exp(-($formula)))) FROM bench.lr\$\$, 5)::numeric, 1),
       round(bench.time_ms(\$\$SELECT count(*) FROM segments.segmentation_from_tree('bench_tree', 'bench.lr', 'id', 'y', $features, 5, 1);
                             DELETE FROM segments.segmentation WHERE name = 'bench_tree'\$\$, 3)::numeric, 1)
SQL
)
theirs=$("$venv/bin/python" - "$csv" <<'PY' 2>/dev/null
import sys, time, statistics, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, statsmodels.api as sm
from sklearn.tree import DecisionTreeClassifier
d = pd.read_csv(sys.argv[1], header=None, names=["y"] + [f"x{i}" for i in range(1, 9)] + ["c1", "c2"])
y = (d.pop("y") == "t").to_numpy(dtype=float)
lr = sm.add_constant(pd.get_dummies(d, columns=["c1", "c2"], drop_first=True, dtype=float)).to_numpy()
tree = pd.get_dummies(d, columns=["c1", "c2"], dtype=float).to_numpy(dtype=np.float32)
def median_ms(f, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); f(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
logit = median_ms(lambda: sm.Logit(y, lr).fit(method="newton", disp=0), 3)
cart = median_ms(lambda: DecisionTreeClassifier(max_depth=5, random_state=0).fit(tree, y), 3)
print(f"{logit:.1f}|{cart:.1f}")
PY
)
rm -f "$csv"
IFS='|' read -r our_lr our_score hand_score our_tree <<<"$ours"
IFS='|' read -r py_lr py_tree <<<"$theirs"
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
printf '%-58s %10s %10s %7s\n' "${BENCH_ROWS:-1000000} rows x 10 features" "ours ms" "ref ms" "ratio"
printf '%-58s %10s %10s %7s\n' "logistic_regression, reading included (vs statsmodels)" "$our_lr" "$py_lr" "$(ratio "$our_lr" "$py_lr")"
printf '%-58s %10s %10s %7s\n' "score every row (vs the formula by hand in SQL)" "$our_score" "$hand_score" "$(ratio "$our_score" "$hand_score")"
printf '%-58s %10s %10s %7s\n' "depth-5 tree, reading included (vs scikit-learn)" "$our_tree" "$py_tree" "$(ratio "$our_tree" "$py_tree")"
