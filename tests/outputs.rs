//! The files and pages written: determinism, the validate, measures and help commands,
//! filters and per-therapist packs, PNG charts and client pages, through the binary.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze, analyze_on, demo, fixture, read_csv, read_json, Row};
use predicates::str::contains;
use std::fs;

#[test]
fn the_same_input_gives_byte_identical_output() {
    let a = analyze(&fixture("small_clinic.csv"), &["--goals", fixture("small_goals.csv").to_str().unwrap()]);
    let b = analyze(&fixture("small_clinic.csv"), &["--goals", fixture("small_goals.csv").to_str().unwrap()]);
    for f in ["episodes.csv", "rejected.csv", "summary.json", "report.html"] {
        assert_eq!(fs::read(a.path().join(f)).unwrap(), fs::read(b.path().join(f)).unwrap(), "{f}");
    }
}

#[test]
fn validate_writes_only_the_data_quality_files() {
    let out = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["validate", "--quiet", "--today", "2025-06-01", "--measurements"])
        .arg(fixture("bad_rows.csv"))
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let mut names: Vec<String> =
        fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["data_quality.json", "rejected.csv"]);
    assert_eq!(read_json(&out.path().join("data_quality.json"))["rows_rejected"], 14);
}

#[test]
fn measures_lists_the_registry_with_sources() {
    cargo_bin_cmd!("sustain")
        .args(["measures"])
        .assert()
        .success()
        .stdout(contains("PHQ9"))
        .stdout(contains("reliable change: change of ≥ 6 points"))
        .stdout(contains("PMC8411661"));
    cargo_bin_cmd!("sustain")
        .args(["measures", "--measures"])
        .arg(fixture("gds_cutoff_c.toml"))
        .args(["--format", "json"])
        .assert()
        .success()
        .stdout(contains("\"GDS\""));
}

#[test]
fn help_explains_every_option() {
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--help"])
        .assert()
        .success()
        .stdout(contains("--measurements"))
        .stdout(contains("--suppress-below"))
        .stdout(contains("--today"));
}

#[test]
fn filters_and_per_therapist_reports() {
    let out = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2025-06-01", "--measurements"])
        .arg(fixture("small_clinic.csv"))
        .args(["--therapist", "T2", "--by", "therapist", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let eps = read_csv(&out.path().join("episodes.csv"));
    assert!(!eps.is_empty() && eps.iter().all(|r| r["therapist_id"] == "T2"));
    assert!(out.path().join("by_therapist/T1/report.html").is_file());
    let t1 = read_csv(&out.path().join("by_therapist/T1/episodes.csv"));
    assert!(t1.iter().all(|r| r["therapist_id"] == "T1"));
    let dated = analyze(&fixture("small_clinic.csv"), &["--from", "2024-03-01", "--to", "2024-03-31"]);
    let clients: Vec<String> =
        read_csv(&dated.path().join("episodes.csv")).into_iter().map(|r| r["client_id"].clone()).collect();
    assert_eq!(clients, ["C", "D", "E", "F"]);
}

/// Two therapists whose ids make the same folder name each keep their own report.
#[test]
fn per_therapist_folders_never_replace_one_another() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.csv");
    let rows = ["c1,T 1,2024-01-01,20", "c1,T 1,2024-03-01,8", "c2,T_1,2024-01-01,18", "c2,T_1,2024-03-01,17"];
    fs::write(&input, format!("client_id,therapist_id,date,score,measure\n{}\n", rows.join(",PHQ-9\n") + ",PHQ-9"))
        .unwrap();
    let out = analyze(&input, &["--by", "therapist"]);
    for (folder, therapist) in [("T_1", "T 1"), ("T_1-2", "T_1")] {
        let eps = read_csv(&out.path().join("by_therapist").join(folder).join("episodes.csv"));
        assert_eq!(eps.len(), 1, "{folder}");
        assert_eq!(eps[0]["therapist_id"], therapist, "{folder}");
    }
}

#[test]
fn png_charts_are_written_on_request() {
    let d = demo("300", "1");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &["--png"]);
    let jacobson = fs::read(out.path().join("charts/jacobson.png")).unwrap();
    assert!(jacobson.starts_with(b"\x89PNG\r\n\x1a\n") && jacobson.len() > 10_000);
    let plain = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &[]);
    assert!(!plain.path().join("charts").exists(), "PNGs only when asked");
}

/// A `--client` page shows that client's series: the trajectory shape and the temporary
/// worsening named for each equal that series' row of `trajectories.csv` (the table is
/// written by the trajectories task, which then keeps only the clients' trajectories).
#[test]
fn a_client_page_shows_the_clients_own_trajectories() {
    let d = demo("120", "5");
    let out = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2027-01-01", "--client", "C00007", "--client", "C00042"])
        .arg(d.path())
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let trajectories = read_csv(&out.path().join("trajectories.csv"));
    for client in ["C00007", "C00042"] {
        let page = fs::read_to_string(out.path().join(format!("client_{client}.html"))).unwrap();
        let facts = |name: &str| -> Vec<String> {
            let tag = format!("<dt>{name}</dt><dd>");
            page.split(&tag).skip(1).map(|s| s[..s.find("</dd>").unwrap()].to_string()).collect()
        };
        let rows: Vec<&Row> = trajectories.iter().filter(|r| r["client_id"] == client).collect();
        assert!(!rows.is_empty(), "{client} has series");
        let shapes: Vec<String> = rows
            .iter()
            .map(|r| if r["shape"].is_empty() { "–".into() } else { r["shape"].replace('_', " ") })
            .collect();
        assert_eq!(facts("trajectory"), shapes, "{client}");
        let dips: Vec<String> =
            rows.iter()
                .map(|r| {
                    if r["dip"] == "true" {
                        format!("from session {}", r["dip_start_session"])
                    } else {
                        "none".into()
                    }
                })
                .collect();
        let shown: Vec<String> =
            facts("temporary worsening").iter().map(|f| f.split(" (").next().unwrap().to_string()).collect();
        assert_eq!(shown, dips, "{client}");
        // The change per session: the series' own OLS slope and its shrunken one.
        let two = |x: &str| x.parse::<f64>().map_or("–".to_string(), |v| format!("{v:.2}"));
        let slopes: Vec<String> = rows
            .iter()
            .map(|r| match (two(&r["slope_per_session"]).as_str(), two(&r["shrunken_slope_per_session"]).as_str()) {
                ("–", _) => "–".into(),
                (own, "–") => format!("{own} points"),
                (own, model) => format!(
                    "{own} points from the client&#x27;s own scores, {model} under the practice&#x27;s growth model"
                ),
            })
            .collect();
        assert_eq!(facts("change per session"), slopes, "{client}");
        let against: Vec<String> = rows
            .iter()
            .map(|r| match r["change_vs_typical"].as_str() {
                "" => "– (fewer than 3 scores, or no index for this measure)".into(),
                c => format!("{} (HLM index {})", c.replace('_', " "), two(&r["slope_rci"])),
            })
            .collect();
        assert_eq!(facts("against the typical client"), against, "{client}");
        assert!(page.contains("<svg"), "{client}: figures drawn");
    }
}
