"""An independent REML fit of the growth model (docs/METHODS.md §7e) by the marginal
likelihood: every series' covariance matrix built and inverted, scipy's optimisers, none
of sustain's profiling or pattern sums. Prints the estimates to compare with summary.json
trajectories.by_measure.<code>.growth_model.

Usage: python3 tests/crosscheck/growth.py D/measurements.csv PHQ-9   (needs numpy, scipy)

With a third argument, D/out/trajectories.csv, the model is fitted to the series of 3 or
more scores instead, as for the HLM reliable-change index, and each series' index
(conditional mode of its slope deviation over its conditional SD, both from the marginal
form: b = S Zᵀ V⁻¹ (y − Xβ), Var(b | y) = S − S Zᵀ V⁻¹ Z S) and its category are compared
with trajectories.csv's slope_rci and change_vs_typical."""
import csv, numpy as np, json, sys
from scipy.optimize import minimize
path, measure = sys.argv[1], sys.argv[2]
hlm = sys.argv[3] if len(sys.argv) > 3 else None
min_scores = 3 if hlm else 2
series = {}
for r in csv.DictReader(open(path)):
    if r['measure'] != measure or r['phase'] == 'follow_up': continue
    series.setdefault((r['client_id'], r['episode_id']), []).append((int(r['session']), float(r['score'])))
data, keys = [], []
for k, v in series.items():
    if len(v) < min_scores: continue
    keys.append(k)
    v.sort()
    s0 = v[0][0]
    x = np.array([p[0] - s0 for p in v], float); y = np.array([p[1] for p in v])
    data.append((np.column_stack([np.ones_like(x), x]), y))
n = sum(len(y) for _, y in data); p = 2
def reml(params):
    l1, l2, l3, ls = params
    L = np.array([[l1, 0], [l2, l3]]); S = L @ L.T; s2 = np.exp(2 * ls)
    XtVX = np.zeros((2, 2)); XtVy = np.zeros(2); logdet = 0; Vis = []
    for X, y in data:
        V = X @ S @ X.T + s2 * np.eye(len(y))
        Vi = np.linalg.inv(V); Vis.append(Vi)
        logdet += np.linalg.slogdet(V)[1]
        XtVX += X.T @ Vi @ X; XtVy += X.T @ Vi @ y
    beta = np.linalg.solve(XtVX, XtVy)
    q = sum((y - X @ beta) @ Vi @ (y - X @ beta) for (X, y), Vi in zip(data, Vis))
    return logdet + np.linalg.slogdet(XtVX)[1] + q + (n - p) * np.log(2 * np.pi), beta, S, s2, XtVX
res = minimize(lambda q: reml(q)[0], [5, 0, 0.5, 1], method='Nelder-Mead', options={'xatol': 1e-10, 'fatol': 1e-12, 'maxiter': 20000, 'maxfev': 40000})
res = minimize(lambda q: reml(q)[0], res.x, method='BFGS', options={'gtol': 1e-9})
d, beta, S, s2, XtVX = reml(res.x)
se = np.sqrt(np.diag(np.linalg.inv(XtVX)))
print(json.dumps(dict(series=len(data), scores=n, criterion=d, intercept=beta[0], slope=beta[1], se=list(se), sd=list(np.sqrt(np.diag(S))), corr=S[0,1]/np.sqrt(S[0,0]*S[1,1]), sigma=np.sqrt(s2))))
if hlm:
    code = measure.replace('-', '')
    lower = code != 'ORS'
    ours = {(r['client_id'], r['episode_id']): r for r in csv.DictReader(open(hlm)) if r['measure'] == code}
    Z = 1.959963984540054
    worst, differ, n_cmp = 0.0, 0, 0
    for k, (X, y) in zip(keys, data):
        V = X @ S @ X.T + s2 * np.eye(len(y)); Vi = np.linalg.inv(V)
        b = S @ X.T @ Vi @ (y - X @ beta)
        var = S - S @ X.T @ Vi @ X @ S
        rci = b[1] / np.sqrt(var[1, 1])
        better = -rci if lower else rci
        cat = 'more_improvement' if better > Z else 'less_improvement' if better < -Z else 'as_typical'
        r = ours[k]
        n_cmp += 1
        worst = max(worst, abs(float(r['slope_rci']) - rci) / max(1.0, abs(rci)))
        differ += r['change_vs_typical'] != cat
    print(json.dumps(dict(hlm_series=n_cmp, rci_max_relative_difference=worst, category_differences=differ)))
