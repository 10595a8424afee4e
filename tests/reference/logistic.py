"""Checks segments.logistic_regression against statsmodels' Logit (unpenalised) and scikit-learn's
LogisticRegression (L2), on the same rows and the same encoding: categories one-hot with the first level in
byte order as the reference. Usage: logistic.py ROWS.csv MODEL.json [L2 MODEL_L2.json]
ROWS.csv holds the outcome (t/f) then the features in the model's order, as psql's COPY writes them."""
import csv, json, sys

import numpy as np
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression


def design(rows, model):
    x, y = [], []
    for r in rows:
        y.append(r[0] == "t")
        line = [1.0]
        for value, f in zip(r[1:], model["features"]):
            if f["kind"] == "number":
                line.append(float(value))
            elif f["kind"] == "boolean":
                line.append(1.0 if value == "t" else 0.0)
            else:
                line.extend(1.0 if value == level else 0.0 for level in f["levels"][1:])
        x.append(line)
    return np.array(x), np.array(y, dtype=float)


def close(ours, theirs, rel, what):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    worst = np.max(np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300))
    if not worst <= rel:
        sys.exit(f"FAIL {what}: largest relative difference {worst:.3g} > {rel}\n ours   {ours}\n theirs {theirs}")
    print(f"ok {what}: largest relative difference {worst:.2g} (tolerance {rel})")


rows = list(csv.reader(open(sys.argv[1])))
model = json.load(open(sys.argv[2]))
x, y = design(rows, model)
coef = model["coefficients"]
assert [c["term"] for c in coef][0] == "(intercept)" and x.shape[1] == len(coef)
fit = sm.Logit(y, x).fit(method="newton", tol=1e-12, maxiter=200, disp=0)
close([c["estimate"] for c in coef], fit.params, 1e-6, "coefficients vs statsmodels")
close([c["std_error"] for c in coef], fit.bse, 1e-5, "standard errors vs statsmodels")
close([c["p_value"] for c in coef], fit.pvalues, 1e-5, "p-values vs statsmodels")
close([c["z"] for c in coef], fit.tvalues, 1e-5, "z vs statsmodels")
close([model["log_likelihood"], model["null_log_likelihood"], model["pseudo_r2"], model["aic"]],
      [fit.llf, fit.llnull, fit.prsquared, fit.aic], 1e-8, "log-likelihoods, pseudo-R², AIC vs statsmodels")

if len(sys.argv) > 3:
    l2, penalised = float(sys.argv[3]), json.load(open(sys.argv[4]))
    # scikit-learn penalises the slopes, not the intercept; C = 1 / λ (newton-cholesky: converged to the tolerance asked)
    sk = LogisticRegression(C=1.0 / l2, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(x[:, 1:], y)
    close([c["estimate"] for c in penalised["coefficients"]], np.concatenate([sk.intercept_, sk.coef_[0]]),
          1e-5, f"L2 = {l2} coefficients vs scikit-learn")
