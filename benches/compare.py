#!/usr/bin/env python3
"""Straightforward pandas and polars-python versions of sustain's episode outcomes, timed
beside the sustain binary on the same file, with their results checked against sustain's.

What they compute (a subset of what `sustain analyze` does in its time): row validation
(missing values, dates, future dates, unknown measures, scores out of range, sessions),
duplicate rows (exact: keep the first; conflicting: drop all), series with only follow-up
scores, then per episode x measure the baseline, final score, change, reliable change,
caseness, recovery and reliable recovery; per measure the counts that summary.json
reports; per therapist (the episode's most frequent therapist) reliable recovery.
Rules come from `sustain measures --format json`, so all three use the same numbers.

Usage: benches/compare.py DATA_DIR [--sustain target/release/sustain] [--today YYYY-MM-DD]
Needs: pip install pandas polars pyarrow
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd
import polars as pl

KEY = ["client_id", "episode_id", "measure", "date", "session"]
PHASES = {"assessment", "treatment", "end", "follow_up"}


def registry(binary):
    out = subprocess.run([binary, "measures", "--format", "json"], check=True, capture_output=True, text=True)
    rules = {}
    for m in json.loads(out.stdout):
        rc, cut = m["reliable_change"], m["cutoff"]
        if not (rc and rc["kind"] == "fixed"):
            continue  # the comparison covers measures with fixed reliable-change rules
        rule = {
            "min": m["min"],
            "max": m["max"],
            "lower": m["direction"] == "lower",
            "rc": rc["value"],
            "cut": cut["value"] if cut and cut["kind"] == "fixed" else None,
        }
        for name in [m["code"]] + m["aliases"]:
            rules[name] = (m["code"], rule)
    return rules


def norm_code(s):
    return "".join(c for c in s if c.isalnum()).upper()


# ---------------------------------------------------------------- pandas


def with_pandas(path, rules, today):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["row"] = range(len(df))
    for c in ["client_id", "episode_id", "therapist_id", "date", "session", "phase", "measure", "score"]:
        df[c] = df[c].str.strip()
    df["day"] = pd.to_datetime(df["date"], format="%Y-%m-%d", errors="coerce")
    names = df["measure"].drop_duplicates()
    df["code"] = df["measure"].map(dict(zip(names, [rules.get(norm_code(s), (None, None))[0] for s in names])))
    df["score_n"] = pd.to_numeric(df["score"], errors="coerce")
    df["session_n"] = pd.to_numeric(df["session"], errors="coerce")
    lo = df["code"].map({c: r["min"] for c, r in rules.values()})
    hi = df["code"].map({c: r["max"] for c, r in rules.values()})
    phase = df["phase"].str.lower().replace({"": "treatment", "follow-up": "follow_up", "followup": "follow_up"})
    ok = (
        (df["client_id"] != "")
        & df["day"].notna()
        & (df["day"] <= pd.Timestamp(today))
        & df["code"].notna()
        & df["score_n"].between(lo, hi)
        & ((df["session"] == "") | ((df["session_n"] >= 0) & (df["session_n"] % 1 == 0)))
        & phase.isin(PHASES)
    )
    df = df[ok].assign(phase=phase[ok], measure=df["code"][ok])
    # Duplicates: same key and score -> keep the first; same key, other scores -> drop all.
    n_scores = df.groupby(KEY)["score_n"].transform("nunique")
    df = df[n_scores == 1].drop_duplicates(KEY, keep="first")
    sess = df["session_n"].where(df["session"] != "", math.inf)
    df["skey"] = sess.where(~((df["session"] == "") & (df["phase"] == "assessment")), -math.inf)
    df = df.sort_values(["client_id", "episode_id", "measure", "skey", "day", "row"])
    series = ["client_id", "episode_id", "measure"]
    df = df[(df["phase"] != "follow_up").groupby([df[c] for c in series]).transform("any")]
    tr = df[df["phase"] != "follow_up"]
    g = tr.groupby(series, sort=False)["score_n"]
    ep = pd.DataFrame({"baseline": g.first(), "final": g.last(), "n": g.size()}).reset_index()
    ep.loc[ep["n"] < 2, "final"] = math.nan
    outcomes = []
    for code, e in ep.groupby("measure"):
        r = next(rule for c, rule in rules.values() if c == code)
        sign = -1.0 if r["lower"] else 1.0
        gain = sign * (e["final"] - e["baseline"])
        paired = e["final"].notna()
        improved = paired & (gain >= r["rc"])
        row = {"measure": code, "episodes": len(e), "paired": int(paired.sum()), "reliable_improvement": int(improved.sum())}
        if r["cut"] is not None:
            case0 = e["baseline"] >= r["cut"] if r["lower"] else e["baseline"] < r["cut"]
            case1 = e["final"] >= r["cut"] if r["lower"] else e["final"] < r["cut"]
            at_case = paired & case0
            row["at_caseness"] = int(at_case.sum())
            row["recovery"] = int((at_case & ~case1).sum())
            row["reliable_recovery"] = int((at_case & ~case1 & improved).sum())
        outcomes.append(row)
    # The episode's therapist: the most frequent, ties to the earliest (date, row).
    t = df[df["therapist_id"] != ""]
    t = t.groupby(["client_id", "episode_id", "therapist_id"]).agg(k=("row", "size"), d=("day", "min"), r=("row", "min"))
    t = t.reset_index().sort_values(["k", "d", "r"], ascending=[False, True, True])
    t = t.drop_duplicates(["client_id", "episode_id"])[["client_id", "episode_id", "therapist_id"]]
    return pd.DataFrame(outcomes).set_index("measure"), ep.merge(t, how="left")


# ---------------------------------------------------------------- polars


def with_polars(path, rules, today):
    codes = {norm: c for norm, (c, _) in rules.items()}
    limits = pl.DataFrame(
        {
            "measure": [c for c, _ in rules.values()],
            "lo": [r["min"] for _, r in rules.values()],
            "hi": [r["max"] for _, r in rules.values()],
        }
    ).unique("measure")
    s = pl.col
    df = (
        pl.scan_csv(path, infer_schema=False)
        .with_row_index("row")
        .with_columns([s(c).str.strip_chars().fill_null("") for c in ["client_id", "episode_id", "therapist_id", "date", "session", "phase", "measure", "score"]])
        .with_columns(
            day=s("date").str.to_date("%Y-%m-%d", strict=False),
            measure=s("measure").str.replace_all(r"[^A-Za-z0-9]", "").str.to_uppercase().replace_strict(codes, default=None),
            score_n=s("score").cast(pl.Float64, strict=False),
            session_n=s("session").cast(pl.Float64, strict=False),
            phase=s("phase").str.to_lowercase().replace({"": "treatment", "follow-up": "follow_up", "followup": "follow_up"}),
        )
        .join(limits.lazy(), on="measure", how="left")
        .filter(
            (s("client_id") != "")
            & s("day").is_not_null()
            & (s("day") <= pl.lit(today).str.to_date())
            & s("measure").is_not_null()
            & s("score_n").is_between(s("lo"), s("hi"))
            & ((s("session") == "") | ((s("session_n") >= 0) & (s("session_n") % 1 == 0)))
            & s("phase").is_in(list(PHASES))
        )
        .filter(s("score_n").n_unique().over(KEY) == 1)
        .unique(KEY, keep="first", maintain_order=True)
        .with_columns(
            skey=pl.when(s("session") != "")
            .then(s("session_n"))
            .when(s("phase") == "assessment")
            .then(-math.inf)
            .otherwise(math.inf)
        )
        .sort(["client_id", "episode_id", "measure", "skey", "day", "row"])
        .filter((s("phase") != "follow_up").any().over(["client_id", "episode_id", "measure"]))
        .collect()
    )
    ep = (
        df.lazy()
        .filter(s("phase") != "follow_up")
        .group_by(["client_id", "episode_id", "measure"], maintain_order=True)
        .agg(baseline=s("score_n").first(), last=s("score_n").last(), n=pl.len())
        .with_columns(final=pl.when(s("n") >= 2).then(s("last")))
        .collect()
    )
    outcomes = []
    for (code,), e in ep.group_by("measure"):
        r = next(rule for c, rule in rules.values() if c == code)
        sign = -1.0 if r["lower"] else 1.0
        paired = s("final").is_not_null()
        improved = paired & (sign * (s("final") - s("baseline")) >= r["rc"])
        cols = {"episodes": pl.len(), "paired": paired.sum(), "reliable_improvement": improved.sum()}
        if r["cut"] is not None:
            case0 = s("baseline") >= r["cut"] if r["lower"] else s("baseline") < r["cut"]
            case1 = s("final") >= r["cut"] if r["lower"] else s("final") < r["cut"]
            at_case = paired & case0
            cols |= {
                "at_caseness": at_case.sum(),
                "recovery": (at_case & ~case1).sum(),
                "reliable_recovery": (at_case & ~case1 & improved).sum(),
            }
        row = e.select(**cols).row(0, named=True)
        outcomes.append({"measure": code, **row})
    therapist = (
        df.filter(s("therapist_id") != "")
        .group_by(["client_id", "episode_id", "therapist_id"])
        .agg(k=pl.len(), d=s("day").min(), r=s("row").min())
        .sort(["k", "d", "r"], descending=[True, False, False])
        .unique(["client_id", "episode_id"], keep="first")
        .select(["client_id", "episode_id", "therapist_id"])
    )
    return pd.DataFrame(outcomes).set_index("measure"), ep.join(therapist, on=["client_id", "episode_id"], how="left")


# ---------------------------------------------------------------- the run


def timed(f):
    start = time.perf_counter()
    out = f()
    return time.perf_counter() - start, out


def check(name, ours, summary):
    """Compares per-measure counts with sustain's summary.json; returns the differences."""
    diffs = []
    for code, row in ours.iterrows():
        s = summary["measures"].get(code)
        if s is None:
            diffs.append(f"{code}: not in sustain's summary")
            continue
        want = {
            "episodes": s["episodes"],
            "paired": s["paired"],
            "reliable_improvement": s["rates"].get("reliable_improvement", {}).get("numerator"),
            "at_caseness": s["at_caseness"],
            "recovery": s["rates"].get("recovery", {}).get("numerator"),
            "reliable_recovery": s["rates"].get("reliable_recovery", {}).get("numerator"),
        }
        for k, v in want.items():
            if k in row and not pd.isna(row[k]) and v is not None and int(row[k]) != int(v):
                diffs.append(f"{code} {k}: {name} {int(row[k])}, sustain {v}")
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--sustain", default="target/release/sustain")
    ap.add_argument("--today", default=time.strftime("%Y-%m-%d"))
    args = ap.parse_args()
    path = os.path.join(args.data, "measurements.csv")
    rules = registry(args.sustain)
    with tempfile.TemporaryDirectory() as out:
        cmd = [args.sustain, "analyze", "--quiet", "--measurements", path, "--today", args.today, "--suppress-below", "0", "--out", out]
        t_sustain, _ = timed(lambda: subprocess.run(cmd, check=True))
        with open(os.path.join(out, "summary.json")) as f:
            summary = json.load(f)
    print(f"rows: {sum(1 for _ in open(path)) - 1:,}  ({path})")
    print(f"sustain analyze (every analysis, every table, the report): {t_sustain:8.2f} s")
    t_pl, (pl_out, _) = timed(lambda: with_polars(path, rules, args.today))
    print(f"polars-python (episode outcomes and per-therapist join):   {t_pl:8.2f} s  ({t_pl / t_sustain:.1f} x sustain)")
    t_pd, (pd_out, _) = timed(lambda: with_pandas(path, rules, args.today))
    print(f"pandas (episode outcomes and per-therapist join):          {t_pd:8.2f} s  ({t_pd / t_sustain:.1f} x sustain)")
    bad = check("polars", pl_out, summary) + check("pandas", pd_out, summary)
    print("per-measure counts equal sustain's summary.json" if not bad else "differences:\n  " + "\n  ".join(bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
