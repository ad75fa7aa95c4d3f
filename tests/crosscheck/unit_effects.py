"""Therapist (or site) effects (docs/METHODS.md §7f) by statsmodels' MixedLM, REML:
improvement ~ baseline + (1 | unit) over the paired episodes of sustain's episodes.csv,
compared with summary.json caseload.unit_effects and the improvement_effect column of
therapists.csv (sites.csv). statsmodels with BFGS (its default L-BFGS stopped at τ = 0 with an
infinite likelihood on demo data); its optimiser stops at about 1e-5 relative.

Usage: sustain analyze D --out D/out --suppress-below 0
       python3 tests/crosscheck/unit_effects.py D/out [therapist|site]   (needs pandas, statsmodels)"""
import csv, json, sys, warnings
import numpy as np, pandas as pd, statsmodels.formula.api as smf
warnings.simplefilter("ignore")
out = sys.argv[1]; kind = sys.argv[2] if len(sys.argv) > 2 else "therapist"
LOWER = {"PHQ9": True, "GAD7": True, "CORE10": True, "ORS": False}
eps = pd.read_csv(f"{out}/episodes.csv", dtype={"therapist_id": str, "site_id": str})
ours = {(e["measure"]): e["model"] for e in json.load(open(f"{out}/summary.json"))["caseload"]["unit_effects"] if e["unit"] == kind}
table = {(r[f"{kind}_id"], r["measure"]): r["improvement_effect"] for r in csv.DictReader(open(f"{out}/{kind}s.csv"))}
for code, lower in LOWER.items():
    d = eps[(eps.measure == code) & eps["final"].notna() & eps[f"{kind}_id"].notna()].copy()
    if d.empty or code not in ours: continue
    d["y"] = (d.baseline - d["final"]) if lower else (d["final"] - d.baseline)
    d["x"] = d.baseline - d.baseline.mean()
    m = smf.mixedlm("y ~ x", d, groups=d[f"{kind}_id"]).fit(reml=True, method=["bfgs"])
    tau2, s2 = float(m.cov_re.iloc[0, 0]), m.scale
    theirs = dict(improvement_at_mean_baseline=m.fe_params["Intercept"], per_baseline_point=m.fe_params["x"],
                  sd_between_units=tau2 ** 0.5, sigma=s2 ** 0.5, icc=tau2 / (tau2 + s2))
    rel = {k: abs(ours[code][k] - v) / max(abs(v), 1e-9) for k, v in theirs.items()}
    if tau2 > 0:
        blups = {u: float(r.iloc[0]) for u, r in m.random_effects.items()}
    else:  # a variance at its boundary: every effect is 0
        blups = {u: 0.0 for u in d[f"{kind}_id"].unique()}
    blup = max(abs(float(table[(u, code)]) - b) for u, b in blups.items())
    # The REML criterion, computed densely, at either's variance ratio: the lower is the
    # better optimum.
    groups = [g for _, g in d.groupby(f"{kind}_id")]
    def crit(t):
        XVX, XVy, yVy, ld = np.zeros((2, 2)), np.zeros(2), 0.0, 0.0
        for g in groups:
            X = np.column_stack([np.ones(len(g)), g.x.values]); y = g.y.values
            V = np.eye(len(g)) + t * np.ones((len(g), len(g))); Vi = np.linalg.inv(V)
            ld += np.linalg.slogdet(V)[1]; XVX += X.T @ Vi @ X; XVy += X.T @ Vi @ y; yVy += y @ Vi @ y
        r2 = yVy - np.linalg.solve(XVX, XVy) @ XVy; n = len(d)
        return ld + np.linalg.slogdet(XVX)[1] + (n - 2) * (1 + np.log(2 * np.pi * r2 / (n - 2)))
    icc = ours[code]["icc"]
    print(code, json.dumps(dict(criterion_ours=crit(icc / (1 - icc)), criterion_statsmodels=crit(tau2 / s2),
                                criterion_reported=ours[code]["criterion"])))
    print(code, json.dumps(dict(units=len(blups), episodes=len(d), worst_relative=max(rel.values()),
                                worst_effect_difference=blup, ours=ours[code]["icc"], statsmodels=theirs["icc"])))
