"""Checks segments.auc, log_loss, brier and gains against scikit-learn on the same scores.
Usage: evaluation.py SCORES.csv OURS.csv   (SCORES: score,outcome rows; OURS: auc,log_loss,brier,top_decile_positives)"""
import csv, sys

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

rows = list(csv.reader(open(sys.argv[1])))
score = np.array([float(r[0]) for r in rows])
y = np.array([r[1] == "t" for r in rows])
ours = [float(v) for v in next(csv.reader(open(sys.argv[2])))]
theirs = [roc_auc_score(y, score), log_loss(y, score), brier_score_loss(y, score)]
for name, a, b in zip(["AUC", "log loss", "Brier"], ours, theirs):
    if not abs(a - b) <= 1e-12 * abs(b):
        sys.exit(f"FAIL {name}: ours {a!r}, scikit-learn {b!r}")
    print(f"ok {name} = {a:.12f} equals scikit-learn's to 1e-12")
# the first decile of ntile(10) over the score, descending: its positives
order = np.argsort(-score, kind="stable")
top = order[: -(-len(score) // 10)]
if int(ours[3]) != int(y[top].sum()):
    sys.exit(f"FAIL top decile positives: ours {ours[3]}, numpy {y[top].sum()}")
print(f"ok top decile holds {int(ours[3])} positives, as numpy counts them")
if not 0.84 <= ours[0] <= 0.86:
    sys.exit(f"FAIL test AUC {ours[0]} outside 0.84-0.86 (the published range for this recipe)")
print("ok test AUC is in the 0.84-0.86 range published for this recipe")
