"""Checks segments.profile and segments.association against scipy: Pearson's χ² of a contingency table
(scipy.stats.chi2_contingency, correction=False) and Welch's t test (scipy.stats.ttest_ind, equal_var=False).
Usage: profile.py ROWS.csv OURS.csv   (ROWS: in_segment,churned,contract,tenure; OURS: what,statistic,p_value)"""
import csv, sys

import numpy as np
from scipy import stats

rows = list(csv.reader(open(sys.argv[1])))
m = np.array([r[0] == "t" for r in rows]); churned = np.array([r[1] == "t" for r in rows])
contract = np.array([r[2] for r in rows]); tenure = np.array([float(r[3]) for r in rows])
levels = sorted(set(contract))
table = lambda a, b: np.array([[np.sum(a & (contract == l)) for l in levels], [np.sum(b & (contract == l)) for l in levels]])
expected = {
    "profile contract": stats.chi2_contingency(table(m, ~m), correction=False)[:2],
    "profile tenure": tuple(stats.ttest_ind(tenure[m], tenure[~m], equal_var=False)),
    "association contract": stats.chi2_contingency(table(churned, ~churned), correction=False)[:2],
}
for what, statistic, p in csv.reader(open(sys.argv[2])):
    s_ref, p_ref = expected[what]
    for name, ours, ref in [("statistic", float(statistic), s_ref), ("p-value", float(p), p_ref)]:
        if not abs(ours - ref) <= 1e-9 * abs(ref) + 1e-300:
            sys.exit(f"FAIL {what} {name}: ours {ours!r}, scipy {ref!r}")
    print(f"ok {what}: statistic {float(statistic):.6g}, p-value {float(p):.6g}, as scipy")
