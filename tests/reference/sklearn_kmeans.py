"""Reference figures for tests/pg_regress/sql/10_kmeans.sql, from scikit-learn (pip install scikit-learn).

Run: python3 tests/reference/sklearn_kmeans.py
Printed on 2026-11-22 with scikit-learn 1.9.1: 44448.4554479337 [81, 39, 35, 23, 22] for every random_state.
"""
import csv
import pathlib

import numpy as np
from sklearn.cluster import KMeans

data = pathlib.Path(__file__).resolve().parents[2] / "data" / "mall_customers.csv"
rows = list(csv.DictReader(data.open()))
X = np.array([[float(r["Annual Income (k$)"]), float(r["Spending Score (1-100)"])] for r in rows])
for seed in range(3):
    km = KMeans(n_clusters=5, n_init=10, random_state=seed).fit(X)
    print(repr(km.inertia_), sorted(np.bincount(km.labels_).tolist(), reverse=True))
