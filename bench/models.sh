#!/usr/bin/env bash
# Model fits against the reference Python implementations on the same data, in the same run:
# bgnbd_fit and gamma_gamma_fit on CDNOW against lifetimes 0.11.3; kmeans on 1,000,000 x 8 points (k = 8,
# n_init = 1) against scikit-learn. Python packages go into a venv under $RUN_DIR. Run by bin/bench.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${PG_SEGMENTS_RUN_DIR:-/tmp/pg_segments}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
venv=$RUN_DIR/venv
if ! "$venv/bin/python" -c "import lifetimes, sklearn" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet lifetimes==0.11.3 scikit-learn psycopg2-binary
fi
"$ROOT/tests/load_fixtures.sh" bench_models >/dev/null
q() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench_models "$@"; }
q -f "$ROOT/bench/setup.sql" >/dev/null 2>&1
q <<'SQL'
CREATE TABLE cdnow.rfm AS SELECT customer_id, (segments.rfm(order_date, amount, '1997-09-30')).* FROM cdnow.orders GROUP BY 1;
SELECT setseed(0.42);
CREATE TABLE bench.points AS
SELECT (i % 8) * 3 + random() AS f1, random() * 5 AS f2, (i % 3) + random() AS f3, random() AS f4,
       (i % 5) * 2 + random() AS f5, random() * 2 AS f6, (i % 7) + random() AS f7, random() AS f8
FROM generate_series(1, 1000000) i;
SQL
q -c "\\copy bench.points TO '$RUN_DIR/points.csv' CSV"
ours=$(q -At <<'SQL'
SELECT round(bench.time_ms($$SELECT segments.bgnbd_fit(frequency, recency, t) FROM cdnow.rfm$$, 5)::numeric, 1),
       round(bench.time_ms($$SELECT segments.gamma_gamma_fit(frequency, monetary) FROM cdnow.rfm$$, 5)::numeric, 1),
       round(bench.time_ms($$SELECT * FROM segments.kmeans('bench.points', ARRAY['f1','f2','f3','f4','f5','f6','f7','f8'], 8, n_init => 1)$$, 3)::numeric, 1)
SQL
)
theirs=$(POINTS="$RUN_DIR/points.csv" "$venv/bin/python" - <<'PY' 2>/dev/null
import time, statistics, warnings
warnings.filterwarnings("ignore")
import numpy as np
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from sklearn.cluster import KMeans
d = load_cdnow_summary_data_with_monetary_value()
r = d[d.frequency > 0]
def median_ms(f, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); f(); times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)
bg = median_ms(lambda: BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"]), 5)
gg = median_ms(lambda: GammaGammaFitter().fit(r["frequency"], r["monetary_value"]), 5)
import os
X = np.loadtxt(os.environ["POINTS"], delimiter=",")
km = median_ms(lambda: KMeans(n_clusters=8, n_init=1, random_state=0).fit(X), 3)
print(f"{bg:.1f}|{gg:.1f}|{km:.1f}")
PY
)
rm -f "$RUN_DIR/points.csv"
IFS='|' read -r our_bg our_gg our_km <<<"$ours"
IFS='|' read -r py_bg py_gg py_km <<<"$theirs"
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
printf '%-40s %10s %10s %7s\n' "fit" "ours ms" "ref ms" "ratio"
printf '%-40s %10s %10s %7s\n' "bgnbd_fit (CDNOW, vs lifetimes)" "$our_bg" "$py_bg" "$(ratio "$our_bg" "$py_bg")"
printf '%-40s %10s %10s %7s\n' "gamma_gamma_fit (CDNOW, vs lifetimes)" "$our_gg" "$py_gg" "$(ratio "$our_gg" "$py_gg")"
printf '%-40s %10s %10s %7s\n' "kmeans 1M x 8, k=8 (vs scikit-learn)" "$our_km" "$py_km" "$(ratio "$our_km" "$py_km")"
