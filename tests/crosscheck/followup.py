"""An independent implementation of docs/METHODS.md §1-§4 and §7b (baseline, final,
outcome, the follow-up flags, durability, last_scores_held), written from the text of
METHODS rather than from the code, compared with sustain's episodes.csv episode by episode.

Usage: sustain demo --clients 3000 --seed 11 --out D
       sustain analyze D --out D/out --today TODAY --suppress-below 0
       python3 tests/crosscheck/followup.py D TODAY
Only the demo's four measures, with their built-in rules."""
import csv, sys
d, today = sys.argv[1], sys.argv[2]
RULES = {  # code: (lower_is_better, cutoff, rc)
    "PHQ9": (True, 10, 6), "GAD7": (True, 8, 4), "CORE10": (True, 11, 5), "ORS": (False, 25, 5)}
ALIAS = {"PHQ-9": "PHQ9", "GAD-7": "GAD7", "CORE-10": "CORE10", "ORS": "ORS"}
held_n = 2
series = {}
for r in csv.DictReader(open(f"{d}/measurements.csv")):
    if r["date"] > today: continue  # future-dated rows are rejected
    m = ALIAS.get(r["measure"], r["measure"])
    key = (r["client_id"], r["episode_id"] or "", m)
    series.setdefault(key, []).append(r)
def case(m, x):
    lower, cut, _ = RULES[m]
    return x >= cut if lower else x < cut
def improved(m, a, b):  # reliable improvement from a to b
    lower, _, rc = RULES[m]
    return (a - b >= rc) if lower else (b - a >= rc)
def deteriorated(m, a, b):
    lower, _, rc = RULES[m]
    return (b - a >= rc) if lower else (a - b >= rc)
ours = {}
for key, rows in series.items():
    m = key[2]
    tr = [r for r in rows if r["phase"] != "follow_up"]
    fu = [r for r in rows if r["phase"] == "follow_up"]
    if not tr:
        continue
    tr.sort(key=lambda r: (int(r["session"]) if r["session"] else 10**9, r["date"]))
    base, fin = float(tr[0]["score"]), float(tr[-1]["score"])
    paired = len(tr) >= 2
    end_date = tr[-1]["date"] if paired else tr[0]["date"]
    usable = sorted([r for r in fu if r["date"] >= end_date], key=lambda r: r["date"])
    out = {"n_followup": str(len(usable))}
    rc_cat = None
    if paired:
        rc_cat = "improved" if improved(m, base, fin) else "deteriorated" if deteriorated(m, base, fin) else "no_change"
        outcome = ("not_at_caseness" if not case(m, base) else "recovered" if rc_cat == "improved" and not case(m, fin)
                   else "improved" if rc_cat == "improved" else "deteriorated" if rc_cat == "deteriorated" else "unchanged")
    flags = dict(relapse="", relapse_date="", recovery_maintained="", improvement_lost="", late_improvement="",
                 deteriorated_since_end="", durability="")
    if paired and usable:
        scores = [float(r["score"]) for r in usable]
        b = lambda x: "true" if x else "false"
        if outcome == "recovered":
            rel = [r for r in usable if case(m, float(r["score"]))]
            flags["relapse"] = b(rel)
            flags["relapse_date"] = rel[0]["date"] if rel else ""
            flags["recovery_maintained"] = b(all(improved(m, base, x) and not case(m, x) for x in scores))
        if rc_cat == "improved":
            flags["improvement_lost"] = b(any(not improved(m, base, x) for x in scores))
        else:
            flags["late_improvement"] = b(any(improved(m, base, x) for x in scores))
        flags["deteriorated_since_end"] = b(any(deteriorated(m, fin, x) for x in scores))
        flags["durability"] = "" if fin == base else repr((scores[-1] - base) / (fin - base))
    out.update(flags)
    if paired and len(tr) >= held_n:
        out["last_scores_held"] = "true" if all(not case(m, float(r["score"])) for r in tr[-held_n:]) else "false"
    else:
        out["last_scores_held"] = ""
    ours[key] = out
theirs = {(r["client_id"], r["episode_id"], r["measure"]): r for r in csv.DictReader(open(f"{d}/out/episodes.csv"))}
diff = 0
for key, o in ours.items():
    t = theirs.get(key)
    if t is None:
        print("missing", key); diff += 1; continue
    for k, v in o.items():
        tv = t[k]
        if k == "durability" and v and tv:
            same = abs(float(v) - float(tv)) < 1e-12
        else:
            same = v == tv
        if not same:
            diff += 1
            if diff < 15: print(key, k, "ours", v, "sustain", tv)
print("episode-measures", len(ours), "in sustain", len(theirs), "differences", diff)
