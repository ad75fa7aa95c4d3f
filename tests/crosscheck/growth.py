"""An independent REML fit of the growth model (docs/METHODS.md §7e) by the marginal
likelihood: every series' covariance matrix built and inverted, scipy's optimisers, none
of sustain's profiling or pattern sums. Prints the estimates to compare with summary.json
trajectories.by_measure.<code>.growth_model.

Usage: python3 tests/crosscheck/growth.py D/measurements.csv PHQ-9   (needs numpy, scipy)"""
import csv, numpy as np, json, sys
from scipy.optimize import minimize
path, measure = sys.argv[1], sys.argv[2]
series = {}
for r in csv.DictReader(open(path)):
    if r['measure'] != measure or r['phase'] == 'follow_up': continue
    series.setdefault((r['client_id'], r['episode_id']), []).append((int(r['session']), float(r['score'])))
data = []
for k, v in series.items():
    if len(v) < 2: continue
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
