"""Checks segments.segmentation_from_tree against scikit-learn's DecisionTreeClassifier: with the same
parameters, the leaves partition the rows alike (the same leaf sizes and outcome counts).
Usage: tree.py ROWS.csv LEAVES.csv MAX_DEPTH MIN_LEAF KINDS
ROWS: outcome then features (t/f for booleans); LEAVES: rows,positives per leaf; KINDS: n (number), b (boolean),
c (category: one 0/1 column per level, as the segmentation reads it) per feature, e.g. nnccb."""
import csv, sys

import numpy as np
from sklearn.tree import DecisionTreeClassifier

rows = list(csv.reader(open(sys.argv[1])))
ours = sorted(tuple(int(v) for v in r) for r in csv.reader(open(sys.argv[2])))
max_depth, min_leaf, kinds = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
y = np.array([r[0] == "t" for r in rows])
assert len(kinds) == len(rows[0]) - 1, "one kind per feature"
columns = []
for j, kind in enumerate(kinds, start=1):
    values = [r[j] for r in rows]
    if kind == "n":
        columns.append([float(v) for v in values])
    elif kind == "b":
        columns.append([1.0 if v == "t" else 0.0 for v in values])
    else:
        for level in sorted(set(values), key=lambda s: s.encode()):
            columns.append([1.0 if v == level else 0.0 for v in values])
x = np.array(columns).T
tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf, random_state=0).fit(x, y)
leaf = tree.apply(x.astype(np.float32))
theirs = sorted((int((leaf == l).sum()), int(y[leaf == l].sum())) for l in np.unique(leaf))
if ours != theirs:
    sys.exit(f"FAIL leaves differ:\n ours   {ours}\n theirs {theirs}")
print(f"ok {len(ours)} leaves, the same sizes and outcome counts as scikit-learn's: {ours}")
