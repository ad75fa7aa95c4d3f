"""Per-therapist counts, rates and Wilson intervals (docs/METHODS.md §7f) recomputed from
sustain's own episodes.csv, compared with therapists.csv: checks the aggregation, not the
per-episode outcomes (followup.py checks those). Usage: python3 tests/crosscheck/therapists.py D
after `sustain analyze D --out D/out --suppress-below 0`."""
import csv, math, sys
d = sys.argv[1]
eps = list(csv.DictReader(open(f"{d}/out/episodes.csv")))
agg = {}
for e in eps:
    k = (e["therapist_id"], e["measure"])
    a = agg.setdefault(k, dict(episodes=0, paired=0, at_caseness=0, rec=0, rrec=0, ri=0, rd=0, resp=0))
    a["episodes"] += 1
    if e["paired"] != "true": continue
    a["paired"] += 1
    if e["caseness_start"] == "true":
        a["at_caseness"] += 1
        a["rec"] += e["recovery"] == "true"
        a["rrec"] += e["reliable_recovery"] == "true"
    a["ri"] += e["reliable_change"] == "improved"
    a["rd"] += e["reliable_change"] == "deteriorated"
    a["resp"] += e["response"] == "true"
def wilson(k, n, z=1.959963984540054):
    p = k / n; den = 1 + z*z/n; c = (p + z*z/(2*n)) / den; h = z * math.sqrt(p*(1-p)/n + z*z/(4*n*n)) / den
    return c - h, c + h
diff = 0
rows = list(csv.DictReader(open(f"{d}/out/therapists.csv")))
for r in rows:
    a = agg[(r["therapist_id"], r["measure"])]
    checks = [("episodes", a["episodes"]), ("paired", a["paired"]), ("at_caseness", a["at_caseness"]),
              ("recovery_n", a["rec"]), ("recovery_of", a["at_caseness"]), ("reliable_recovery_n", a["rrec"]),
              ("reliable_improvement_n", a["ri"]), ("reliable_improvement_of", a["paired"]),
              ("reliable_deterioration_n", a["rd"]), ("response_n", a["resp"])]
    for col, v in checks:
        if r[col] != str(v): diff += 1; print(r["therapist_id"], r["measure"], col, r[col], v)
    lo, hi = wilson(a["ri"], a["paired"])
    if abs(float(r["reliable_improvement_ci_low"]) - lo) > 1e-12 or abs(float(r["reliable_improvement_ci_high"]) - hi) > 1e-12:
        diff += 1; print("wilson", r["therapist_id"], r["measure"], r["reliable_improvement_ci_low"], lo)
print("therapist rows", len(rows), "differences", diff)
