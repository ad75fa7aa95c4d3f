#!/usr/bin/env python3
"""Reliable change indices of `episodes.csv` against the formulas of docs/METHODS.md §2.

Usage: rci_methods.py EPISODES_CSV MEASURE METHOD RELIABILITY [--r-post R2] [--better lower|higher] [--sd S]

The sample is the measure's paired episodes (those with a final score): the mean and SD
(n - 1) of their baselines, and the mean of their final scores. Each paired episode's
index is computed from its baseline and final score and compared with sustain's `rci` and
`reliable_change`. Prints the sample, the counts and the number of differences; exits 1
if there is any.
"""
import argparse
import csv
import math
import statistics
import sys

Z = 1.959963984540054


def index(method, r, r_post, sd, m_pre, m_post, pre, post):
    se_m = sd * math.sqrt(1 - r)
    se_pred = sd * math.sqrt(1 - r**2)
    if method == "jt":
        return (post - pre) / math.sqrt(2 * se_m**2)
    if method == "gln":
        return ((post - m_pre) - r * (pre - m_pre)) / se_pred
    if method == "hll":
        return ((post - m_post) - r * (pre - m_pre)) / se_pred
    expected = r * (pre - m_pre) + m_pre
    if method == "en":
        return (post - expected) / se_m
    if method == "nk":
        return (post - expected) / math.sqrt(r**2 * sd**2 * (1 - r) + sd**2 * (1 - r_post))
    raise SystemExit(f"unknown method {method}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("episodes")
    p.add_argument("measure")
    p.add_argument("method", choices=["jt", "gln", "hll", "en", "nk"])
    p.add_argument("reliability", type=float)
    p.add_argument("--r-post", type=float)
    p.add_argument("--better", choices=["lower", "higher"], default="lower")
    p.add_argument("--sd", type=float)
    a = p.parse_args()
    rows = [
        r
        for r in csv.DictReader(open(a.episodes, newline=""))
        if r["measure"] == a.measure and r["final"] != ""
    ]
    pre = [float(r["baseline"]) for r in rows]
    post = [float(r["final"]) for r in rows]
    m_pre, m_post = statistics.fmean(pre), statistics.fmean(post)
    sd = a.sd if a.sd is not None else statistics.stdev(pre)
    r_post = a.r_post if a.r_post is not None else a.reliability
    direction = -1 if a.better == "lower" else 1
    print(f"{a.measure} {a.method}: {len(rows)} paired, baseline mean {m_pre:.6f} SD {sd:.6f}, final mean {m_post:.6f}")
    counts = {"improved": 0, "no_change": 0, "deteriorated": 0}
    differences = 0
    for r, x, y in zip(rows, pre, post):
        want = index(a.method, a.reliability, r_post, sd, m_pre, m_post, x, y)
        category = "improved" if direction * want > Z else "deteriorated" if direction * want < -Z else "no_change"
        counts[category] += 1
        got = float(r["rci"])
        if abs(got - want) > 1e-9 * max(1.0, abs(want)) or r["reliable_change"] != category:
            differences += 1
            if differences <= 10:
                print(f"  {r['client_id']}/{r['episode_id']}: sustain {got} {r['reliable_change']}, here {want} {category}")
    print(f"  {counts}; {differences} differences")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
