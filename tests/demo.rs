//! The demo command and its data: folder, Parquet and partitioned inputs, and the planted
//! relapses, therapist effects and trajectory shapes found again, through the binary.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze_on, demo, read_csv, read_json, Row};
use predicates::str::contains;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Runs `sustain analyze` on the folder `dir/input` into `dir/out-input` (returned).
fn analyze_folder(dir: &Path, input: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(format!("out-{input}"));
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet"])
        .args(flags)
        .arg(dir.join(input))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    out
}

#[test]
fn a_folder_input_finds_its_tables_and_demo_data_round_trips_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["csv", "parquet"] {
        cargo_bin_cmd!("sustain")
            .args(["demo", "--quiet", "--clients", "40", "--seed", "3", "--format", format, "--out"])
            .arg(dir.path().join(format))
            .assert()
            .success();
    }
    let run = |input: &str| analyze_folder(dir.path(), input, &[]);
    let (csv_out, pq_out) = (run("csv"), run("parquet"));
    assert_eq!(fs::read(csv_out.join("episodes.csv")).unwrap(), fs::read(pq_out.join("episodes.csv")).unwrap());
    let s = read_json(&csv_out.join("summary.json"));
    assert!(s["inputs"]["goals"]["rows_read"].as_u64().unwrap() > 0);
    assert_eq!(s["rows_rejected"], 0);

    // A folder holding a table twice: the CSV is read, and a warning says so.
    let both = dir.path().join("csv");
    fs::copy(dir.path().join("parquet/measurements.parquet"), both.join("measurements.parquet")).unwrap();
    let out = dir.path().join("both-out");
    cargo_bin_cmd!("sustain")
        .arg("analyze")
        .arg(&both)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stderr(contains("warning: reading"))
        .stderr(contains("measurements.csv, not"))
        .stderr(contains("measurements.parquet (pass --measurements FILE to choose)"));
    assert_eq!(fs::read(out.join("episodes.csv")).unwrap(), fs::read(csv_out.join("episodes.csv")).unwrap());
}

#[test]
fn partitioned_input_gives_the_results_of_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let demo = |name: &str, extra: &[&str]| {
        cargo_bin_cmd!("sustain")
            .args(["demo", "--quiet", "--clients", "120", "--seed", "5", "--out"])
            .arg(dir.path().join(name))
            .args(extra)
            .assert()
            .success();
    };
    demo("whole", &[]);
    demo("csv-parts", &["--parts", "3"]);
    demo("parquet-parts", &["--parts", "4", "--format", "parquet"]);
    assert!(dir.path().join("parquet-parts/measurements/part-003.parquet").is_file());
    let run = |input: &str| analyze_folder(dir.path(), input, &["--today", "2026-11-26", "--suppress-below", "0"]);
    let whole = run("whole");
    for parts in ["csv-parts", "parquet-parts"] {
        let out = run(parts);
        let mut compared = 0;
        for entry in fs::read_dir(&whole).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".csv") && name != "rejected.csv" {
                let same = fs::read(whole.join(&name)).unwrap() == fs::read(out.join(&name)).unwrap();
                assert!(same, "{name} differs when read from {parts}");
                compared += 1;
            }
        }
        assert!(compared >= 10, "{compared}");
        let (mut a, mut b) = (read_json(&whole.join("summary.json")), read_json(&out.join("summary.json")));
        assert_eq!(a["inputs"]["measurements"]["rows_read"], b["inputs"]["measurements"]["rows_read"]);
        for s in [&mut a, &mut b] {
            s.as_object_mut().unwrap().remove("inputs");
        }
        assert_eq!(a, b, "summary.json apart from the input file names");
    }
}

#[test]
fn planted_relapses_in_demo_data_are_found() {
    let dir = demo("400", "11");
    // Demo follow-ups reach into 2026; a later "today" keeps them all.
    let out = analyze_on("2027-01-01", &dir.path().join("measurements.csv"), &[]);
    let truth = read_csv(&dir.path().join("truth.csv"));
    let eps = read_csv(&out.path().join("episodes.csv"));
    let (mut planted, mut found) = (0, 0);
    for t in truth.iter().filter(|t| t["planted_relapse"] == "true") {
        for e in eps.iter().filter(|e| e["client_id"] == t["client_id"] && e["episode_id"] == t["episode_id"]) {
            // Relapse applies to episodes recovered at the end by their observed scores.
            if e["outcome"] == "recovered" && e["measure"] != "GAD7" {
                planted += 1;
                found += usize::from(e["relapse"] == "true");
            }
        }
    }
    assert!(planted > 20, "{planted}");
    assert_eq!(found, planted, "every planted relapse of a recovered episode is found");
}

#[test]
fn planted_therapist_effects_show_on_the_funnel_and_nothing_else_does() {
    let d = demo("3000", "5");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &[]);
    let flags: Vec<(String, String)> = read_csv(&out.path().join("therapists.csv"))
        .into_iter()
        .filter(|r| r["measure"] == "PHQ9")
        .map(|r| (r["therapist_id"].clone(), r["funnel_flag"].clone()))
        .collect();
    for (t, f) in &flags {
        let want = match t.as_str() {
            "T02" | "T05" => "above_99.8",
            "T07" => "below_99.8",
            _ => "within",
        };
        assert_eq!(f, want, "{t}");
    }
}

#[test]
fn assigned_shapes_agree_with_the_planted_ones_for_most_completers() {
    let d = demo("1500", "5");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &[]);
    let truth: HashMap<String, Row> = read_csv(&d.path().join("truth.csv"))
        .into_iter()
        .map(|r| (r["client_id"].clone() + "/" + &r["episode_id"], r))
        .collect();
    let (mut n, mut agree) = (0, 0);
    for r in read_csv(&out.path().join("trajectories.csv"))
        .iter()
        .filter(|r| r["measure"] == "PHQ9" && !r["shape"].is_empty())
    {
        let t = &truth[&(r["client_id"].clone() + "/" + &r["episode_id"])];
        if t["dropout"] == "true" {
            continue;
        }
        let want = if t["shape"] == "no_response" { "no_reliable_change" } else { t["shape"].as_str() };
        n += 1;
        agree += usize::from(r["shape"] == want);
    }
    assert!(n > 500 && agree * 100 >= n * 70, "{agree} of {n}");
    let etr = read_csv(&out.path().join("expected_response.csv"));
    assert!(etr.iter().any(|r| r["measure"] == "PHQ9" && r["session"] == "1"));
    for r in &etr {
        let p: Vec<f64> = ["p10", "p25", "p50", "p75", "p90"].iter().map(|c| r[*c].parse().unwrap()).collect();
        assert!(p.windows(2).all(|w| w[0] <= w[1]) && r["n"].parse::<u64>().unwrap() >= 10);
    }
    let s = read_json(&out.path().join("summary.json"));
    let acc = &s["trajectories"]["by_measure"]["PHQ9"]["not_on_track"];
    assert!(acc["sensitivity"].as_f64().unwrap() > 0.5, "{acc}");
}
