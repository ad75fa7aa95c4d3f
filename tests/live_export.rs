//! A practice's live export (issue 32): open and ended episodes, the current caseload,
//! malformed records, and runs that cannot mean anything, through the binary.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze_on, demo, read_csv, read_json, Row};
use predicates::str::contains;
use std::fs;
use std::path::Path;

/// A hand-made export taken on 2024-06-30 (its latest date): four episodes ended, one
/// by each rule, and four still in treatment.
const LIVE: &str = "client_id,episode_id,therapist_id,date,session,phase,measure,score,episode_end
E1,1,T1,2024-01-01,0,assessment,PHQ-9,18,2024-03-01
E1,1,T1,2024-02-01,1,treatment,PHQ-9,8,2024-03-01
R1,1,T1,2024-04-01,0,assessment,PHQ-9,18,
R1,1,T1,2024-05-01,1,treatment,PHQ-9,17,
R1,1,T1,2024-06-01,2,end,PHQ-9,16,
F1,1,T2,2024-01-01,0,assessment,PHQ-9,15,
F1,1,T2,2024-02-01,1,treatment,PHQ-9,9,
F1,1,T2,2024-05-01,,follow_up,PHQ-9,8,
I1,1,T2,2024-01-01,0,assessment,PHQ-9,20,
I1,1,T2,2024-02-01,1,treatment,PHQ-9,12,
O1,1,T1,2024-05-01,0,assessment,PHQ-9,10,
O1,1,T1,2024-06-15,1,treatment,PHQ-9,17,
O2,1,T2,2024-04-20,0,assessment,PHQ-9,15,
O2,1,T2,2024-05-20,1,treatment,PHQ-9,13,
O3,1,T1,2024-06-01,0,assessment,PHQ-9,15,
O3,1,T1,2024-06-30,1,treatment,PHQ-9,12,
P1,1,T2,2024-06-10,0,assessment,PHQ-9,14,2024-12-31
P1,1,T2,2024-06-24,1,treatment,PHQ-9,11,2024-12-31
";

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// `sustain analyze` on `measurements` with today fixed and suppression off; succeeds.
fn run(measurements: &Path, extra: &[&str]) -> tempfile::TempDir {
    analyze_on("2025-01-01", measurements, &[&["--suppress-below", "0"], extra].concat())
}

/// `sustain analyze` that must stop with exit code 2, naming each of `parts`, and write
/// nothing at all.
fn refused(measurements: &Path, extra: &[&str], parts: &[&str]) {
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("reports");
    let mut assert = cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2025-01-01", "--measurements"])
        .arg(measurements)
        .arg("--out")
        .arg(&out)
        .args(extra)
        .assert()
        .code(2);
    for part in parts {
        assert = assert.stderr(contains(*part));
    }
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0, "nothing is written");
}

fn by_client<'a>(rows: &'a [Row], client: &str) -> &'a Row {
    rows.iter().find(|r| r["client_id"] == client).unwrap_or_else(|| panic!("no row for {client}"))
}

fn rate(summary: &serde_json::Value, name: &str) -> (u64, u64) {
    let r = &summary["measures"]["PHQ9"]["rates"][name];
    (r["numerator"].as_u64().unwrap(), r["denominator"].as_u64().unwrap())
}

#[test]
fn each_end_rule_and_open_episodes_absent_from_every_rate() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&write(dir.path(), "m.csv", LIVE), &[]);
    let eps = read_csv(&out.path().join("episodes.csv"));
    let status: Vec<(&str, &str, &str)> =
        eps.iter().map(|r| (r["client_id"].as_str(), r["status"].as_str(), r["ended_by"].as_str())).collect();
    assert_eq!(
        status,
        [
            ("E1", "ended", "end_date"),
            ("F1", "ended", "follow_up"),
            ("I1", "ended", "inactive"),
            ("O1", "open", ""),
            ("O2", "open", ""),
            ("O3", "open", ""),
            ("P1", "open", ""),
            ("R1", "ended", "end_row"),
        ]
    );
    // `paired` keeps its meaning on every episode.
    assert!(eps.iter().all(|r| r["paired"] == "true"));

    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(s["status"]["extract"]["as_of"], "2024-06-30");
    assert_eq!(s["status"]["extract"]["from_data"], true);
    assert_eq!((s["status"]["ended"].as_u64(), s["status"]["open"].as_u64()), (Some(4), Some(4)));
    for by in ["end_date", "end_row", "follow_up", "inactive"] {
        assert_eq!(s["status"]["ended_by"][by], 1, "{by}");
    }
    let phq = &s["measures"]["PHQ9"];
    let counts: Vec<u64> =
        ["episodes", "in_treatment", "ended", "paired"].iter().map(|k| phq[k].as_u64().unwrap()).collect();
    assert_eq!(counts, [8, 4, 4, 4]);
    // Over the four ended: E1 18→8, R1 18→16, F1 15→9, I1 20→12 (reliable change 6,
    // caseness at 10). O1's reliable deterioration (10→17) is in treatment: in no rate.
    assert_eq!(rate(&s, "reliable_improvement"), (3, 4));
    assert_eq!(rate(&s, "reliable_deterioration"), (0, 4));
    assert_eq!(rate(&s, "recovery"), (2, 4));
    assert_eq!(rate(&s, "reliable_recovery"), (2, 4));

    let units = read_csv(&out.path().join("therapists.csv"));
    for t in ["T1", "T2"] {
        let u = units.iter().find(|r| r["therapist_id"] == t && r["measure"] == "PHQ9").unwrap();
        assert_eq!((u["episodes"].as_str(), u["in_treatment"].as_str()), ("2", "2"), "{t}");
    }
    // Trends: the final scores of finished episodes only (2024-02: E1, F1, I1; 2024-06: R1).
    let trends = read_csv(&out.path().join("trends.csv"));
    let periods: Vec<(&str, &str)> =
        trends.iter().map(|r| (r["period"].as_str(), r["reliable_improvement_of"].as_str())).collect();
    assert_eq!(periods, [("2024-02", "3"), ("2024-06", "1")]);

    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        report.contains(
            "Extract date 2024-06-30 (the latest date in the data): 4 episodes had ended and 4 were still in treatment"
        ),
        "the report's first lines say what the rates are over"
    );
    assert!(report.contains("4 ended episodes (4 more in treatment, in no outcome figure below)"));
}

#[test]
fn the_current_caseload_names_who_needs_attention_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&write(dir.path(), "m.csv", LIVE), &[]);
    let current = read_csv(&out.path().join("current.csv"));
    let rows: Vec<(&str, &str, &str, &str)> = current
        .iter()
        .map(|r| {
            (
                r["client_id"].as_str(),
                r["days_since_last_score"].as_str(),
                r["latest_score"].as_str(),
                r["attention"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("O1", "15", "17", "reliable_deterioration"),
            ("O2", "41", "13", "no_score_for_28_days"),
            ("O3", "0", "12", ""),
            ("P1", "6", "11", ""),
        ]
    );
    let o1 = by_client(&current, "O1");
    assert_eq!((o1["change_so_far"].as_str(), o1["reliable_change_so_far"].as_str()), ("7", "deteriorated"));
    assert_eq!((o1["therapist_id"].as_str(), o1["sessions_so_far"].as_str()), ("T1", "2"));
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!((s["current"]["open_series"].as_u64(), s["current"]["needing_attention"].as_u64()), (Some(4), Some(2)));
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(report.contains("Clients in treatment who may need attention"));
    assert!(report.contains("PHQ9 reliably worse than at the start") && report.contains("no score for 41 days"));
    assert!(report.contains("PHQ9\u{a0}10\u{a0}→\u{a0}17"), "first and latest scores beside the reason");
    // The limit is an option.
    let patient = run(&dir.path().join("m.csv"), &["--no-score-days", "60"]);
    let o2 = by_client(&read_csv(&patient.path().join("current.csv")), "O2").clone();
    assert_eq!(o2["attention"], "");
}

#[test]
fn a_finished_study_counts_every_episode_once_the_extract_date_is_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&write(dir.path(), "m.csv", LIVE), &["--as-of", "2030-01-01"]);
    let eps = read_csv(&out.path().join("episodes.csv"));
    assert!(eps.iter().all(|r| r["status"] == "ended"));
    assert_eq!(by_client(&eps, "P1")["ended_by"], "end_date", "its end date has come");
    assert_eq!(by_client(&eps, "O3")["ended_by"], "inactive");
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(rate(&s, "reliable_improvement"), (3, 8));
    assert_eq!(rate(&s, "reliable_deterioration"), (1, 8));
    assert_eq!(s["status"]["extract"]["from_data"], false);
    assert!(read_csv(&out.path().join("current.csv")).is_empty());
    // A shorter inactivity limit ends what the default leaves open.
    let short = run(&dir.path().join("m.csv"), &["--inactive-days", "30"]);
    let o2 = by_client(&read_csv(&short.path().join("episodes.csv")), "O2").clone();
    assert_eq!((o2["status"].as_str(), o2["ended_by"].as_str()), ("ended", "inactive"));
    // An extract date before the data's last is refused.
    refused(&dir.path().join("m.csv"), &["--as-of", "2024-06-01"], &["--as-of 2024-06-01 is before", "2024-06-30"]);
}

#[test]
fn the_goals_table_may_carry_the_discharge_day() {
    let dir = tempfile::tempdir().unwrap();
    let goals = "client_id,episode_id,goal_id,date,phase,scale,rating,episode_end
O3,1,G1,2024-06-01,assessment,GBO,2,2024-06-30
O3,1,G1,2024-06-30,treatment,GBO,7,2024-06-30
Q1,1,G1,2024-06-01,assessment,GBO,2,2024-06-20
Q1,1,G1,2024-06-25,treatment,GBO,6,2024-06-20
Q2,1,G1,2024-06-01,assessment,GBO,2,
Q2,1,G1,2024-06-25,treatment,GBO,6,
";
    let g = write(dir.path(), "goals.csv", goals);
    let out = run(&write(dir.path(), "m.csv", LIVE), &["--goals", g.to_str().unwrap()]);
    let o3 = by_client(&read_csv(&out.path().join("episodes.csv")), "O3").clone();
    assert_eq!((o3["status"].as_str(), o3["ended_by"].as_str()), ("ended", "end_date"));
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(rate(&s, "reliable_improvement"), (3, 5), "O3 (15→12) counts now");
    // Goals alone: Q1 discharged, Q2 still in treatment; only ended episodes count.
    let eps = read_csv(&out.path().join("goals_episodes.csv"));
    let status: Vec<(&str, &str)> = eps.iter().map(|r| (r["client_id"].as_str(), r["status"].as_str())).collect();
    assert_eq!(status, [("O3", "ended"), ("Q1", "ended"), ("Q2", "open")]);
    let gbo = &s["goals"]["rates"]["gbo_reliable_improvement"];
    assert_eq!((gbo["numerator"].as_u64(), gbo["denominator"].as_u64()), (Some(2), Some(2)));
}

#[test]
fn malformed_records_are_rejected_rows_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = LIVE.as_bytes().to_vec();
    text.extend(b"X1,1,T1,2024-06-01,0,assessment,PHQ-9,12,,surplus\n"); // line 20
    text.extend(b"X2,1,T1,2024-06-01,0,assessment,\"PHQ-9\"9,12,\n"); // 21
    text.extend(b"X3,1,T\xe9,2024-06-01,0,assessment,PHQ-9,12,\n"); // 22
    text.extend(b"\xef\xbb\xbfE1,1,T1,2024-02-08,2,treatment,PHQ-9,8,\n"); // 23
    let out = run(&write(dir.path(), "m.csv", &text), &[]);
    let rejected = read_csv(&out.path().join("rejected.csv"));
    let got: Vec<(&str, &str)> = rejected.iter().map(|r| (r["line"].as_str(), r["code"].as_str())).collect();
    assert_eq!(got, [("20", "too_many_fields"), ("21", "badly_quoted"), ("22", "not_utf8"), ("23", "stray_bom")]);
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!((s["rows_read"].as_u64(), s["rows_used"].as_u64()), (Some(22), Some(18)));
    assert_eq!(s["clients"], 8, "no second E1 with a byte-order mark in its key");
}

#[test]
fn crlf_and_cr_line_ends_read_as_lf_and_blank_lines_are_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lf = run(&write(dir.path(), "lf.csv", LIVE), &[]);
    let want = read_csv(&lf.path().join("episodes.csv"));
    for (name, end) in [("crlf.csv", "\r\n"), ("cr.csv", "\r"), ("blank.csv", "\n\n")] {
        let out = run(&write(dir.path(), name, LIVE.replace('\n', end)), &[]);
        assert_eq!(read_csv(&out.path().join("episodes.csv")), want, "{name}");
        let s = read_json(&out.path().join("summary.json"));
        assert_eq!((s["rows_read"].as_u64(), s["rows_rejected"].as_u64()), (Some(18), Some(0)), "{name}");
    }
    // Line numbers count every line end, blank lines included: the bad score is on line 6.
    let text = LIVE
        .replacen("\n", "\r\n\r\n", 2)
        .replace("R1,1,T1,2024-04-01,0,assessment,PHQ-9,18,", "R1,1,T1,2024-04-01,0,assessment,PHQ-9,x,");
    let out = run(&write(dir.path(), "bad.csv", text), &[]);
    let rejected = read_csv(&out.path().join("rejected.csv"));
    assert_eq!((rejected[0]["line"].as_str(), rejected[0]["code"].as_str()), ("6", "bad_score"));
}

#[test]
fn a_windows_1252_export_is_refused_with_the_option_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let latin: Vec<u8> = LIVE
        .lines()
        .enumerate()
        .flat_map(|(i, l)| {
            let mut line = l.as_bytes().to_vec();
            line.extend(if i == 0 { &b",site_id\n"[..] } else { &b",Montr\xe9al\n"[..] });
            line
        })
        .collect();
    let path = write(dir.path(), "latin.csv", &latin);
    refused(&path, &[], &["18 lines hold bytes that are not UTF-8", "--encoding windows-1252"]);
    let out = run(&path, &["--encoding", "windows-1252"]);
    let eps = read_csv(&out.path().join("episodes.csv"));
    assert_eq!(eps.len(), 8);
    assert!(eps.iter().all(|r| r["site_id"] == "Montréal"));
}

#[test]
fn uk_dates_stop_the_run_with_the_fix_and_read_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let uk: String = LIVE
        .lines()
        .map(|l| {
            let f: Vec<String> = l
                .split(',')
                .map(|v| match v.split('-').collect::<Vec<_>>()[..] {
                    [y, m, d] if y.len() == 4 => format!("{d}/{m}/{y}"),
                    _ => v.to_string(),
                })
                .collect();
            f.join(",") + "\n"
        })
        .collect();
    let path = write(dir.path(), "uk.csv", &uk);
    refused(&path, &[], &["uk.csv", "rows were rejected as unparseable_date", "--date-format dmy", "line 2"]);
    let iso = run(&write(dir.path(), "m.csv", LIVE), &[]);
    let dmy = run(&path, &["--date-format", "dmy"]);
    for file in ["episodes.csv", "current.csv", "summary.json"] {
        let (a, b) = (fs::read(iso.path().join(file)).unwrap(), fs::read(dmy.path().join(file)).unwrap());
        if file == "summary.json" {
            let (a, b): (serde_json::Value, serde_json::Value) =
                (serde_json::from_slice(&a).unwrap(), serde_json::from_slice(&b).unwrap());
            assert_eq!(a["measures"], b["measures"]);
        } else {
            assert_eq!(a, b, "{file}");
        }
    }
    // US dates, month first, name mdy.
    let us =
        uk.lines().map(|l| l.split(',').map(swap_day_month).collect::<Vec<_>>().join(",") + "\n").collect::<String>();
    refused(&write(dir.path(), "us.csv", us), &[], &["--date-format mdy"]);
}

fn swap_day_month(v: &str) -> String {
    match v.split('/').collect::<Vec<_>>()[..] {
        [d, m, y] => format!("{m}/{d}/{y}"),
        _ => v.to_string(),
    }
}

#[test]
fn filters_that_match_nothing_stop_the_run_naming_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "m.csv", LIVE);
    refused(&path, &["--therapist", "T99"], &["--therapist T99", "no such key", "T1, T2"]);
    refused(&path, &["--site", "S1"], &["--site S1", "none"]);
    refused(&path, &["--from", "2029-01-01"], &["keep no episode", "2024-02-01", "2024-06-30"]);
    refused(&path, &["--client", "Z9"], &["--client Z9"]);
    refused(&path, &["--by", "therapist", "--client", "Z9"], &["--client Z9"]);
    // With --by, a client's page is written in its own unit's pack.
    let out = run(&path, &["--by", "therapist", "--client", "O1"]);
    assert!(out.path().join("client_O1.html").is_file());
    assert!(out.path().join("by_therapist/T1/client_O1.html").is_file());
    assert!(!out.path().join("by_therapist/T2/client_O1.html").exists());
    let pack = read_csv(&out.path().join("by_therapist/T1/current.csv"));
    assert!(pack.iter().all(|r| r["therapist_id"] == "T1") && pack.len() == 2);
}

#[test]
fn a_run_that_cannot_mean_anything_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "m.csv", "client_id,date,measure,score\nc1,2024-01-01,PHQ-9,99\n");
    refused(&path, &[], &["1 of 1 rows were rejected as score_out_of_range", "totals on the instrument's own scale"]);
    // Two reasons, neither of most rows: no row is usable all the same.
    let path =
        write(dir.path(), "n.csv", "client_id,date,measure,score\nc1,2024-01-01,PHQ-9,99\nc1,2024-01-01,XYZ,9\n");
    refused(&path, &[], &["no row could be used"]);
    // Blank lines and exact repeats lose nothing: however many, the run goes on.
    let blank = format!("{LIVE}{}", ",,,,,,,,\n".repeat(40));
    run(&write(dir.path(), "b.csv", blank), &[]);
}

/// The attention reasons that come from other stages: off track against the practice's
/// expected-response curve (trajectories), and a sudden loss (sudden gains).
#[test]
fn off_track_and_sudden_losses_reach_the_current_caseload() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("client_id,date,session,phase,measure,score\n");
    let day = |d: u32| format!("2024-05-{:02}", d);
    // Twelve finished courses alike: 20, 15, 10, 8.
    for c in 0..12 {
        for (k, score) in [20, 15, 10, 8].iter().enumerate() {
            let phase = if k == 3 { "end" } else { "treatment" };
            text.push_str(&format!("F{c:02},{},{k},{phase},PHQ-9,{score}\n", day(1 + 7 * k as u32)));
        }
    }
    // In treatment: N1 worse than all of them at sessions 1 and 2, but not reliably worse
    // than at the start; S1 a sudden loss of 8 points after a sudden gain.
    for (k, score) in [20, 21, 22].iter().enumerate() {
        text.push_str(&format!("N1,{},{k},treatment,PHQ-9,{score}\n", day(10 + 7 * k as u32)));
    }
    for (k, score) in [16, 6, 7, 6, 14, 15, 14].iter().enumerate() {
        text.push_str(&format!("S1,2024-06-{:02},{k},treatment,PHQ-9,{score}\n", 1 + 4 * k));
    }
    let out = run(&write(dir.path(), "m.csv", text), &["--etr-bands", "1"]);
    let current = read_csv(&out.path().join("current.csv"));
    let n1 = by_client(&current, "N1");
    assert_eq!((n1["not_on_track"].as_str(), n1["attention"].as_str()), ("true", "not_on_track"));
    assert_eq!(n1["expected_score"], "10", "the practice's median at session 2");
    let s1 = by_client(&current, "S1");
    assert_eq!((s1["sudden_loss"].as_str(), s1["attention"].as_str()), ("true", "sudden_loss"));
}

#[test]
fn dropout_is_an_ended_episode_that_did_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    // D1 ended after its assessment alone (a dropout); D2 after two scores (finished).
    let extra = "D1,1,T2,2024-01-01,0,assessment,PHQ-9,15,2024-02-01\nD2,1,T2,2024-01-01,0,assessment,PHQ-9,15,2024-02-01\nD2,1,T2,2024-01-08,1,treatment,PHQ-9,14,2024-02-01\n";
    let out = run(&write(dir.path(), "m.csv", format!("{LIVE}{extra}")), &[]);
    let t2 = read_csv(&out.path().join("therapists.csv"))
        .into_iter()
        .find(|r| r["therapist_id"] == "T2" && r["measure"] == "PHQ9")
        .unwrap();
    // T2's ended episodes: F1, I1, D1, D2; in treatment: O2, P1.
    let got = [&t2["episodes"], &t2["in_treatment"], &t2["dropout_n"], &t2["dropout_of"]];
    assert_eq!(got, ["4", "2", "1", "4"]);
}

#[test]
fn the_demo_is_a_live_export() {
    let dir = demo("400", "3");
    let out = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2026-01-01"])
        .arg(dir.path())
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(s["status"]["extract"]["as_of"], "2025-06-30");
    let (ended, open) = (s["status"]["ended"].as_u64().unwrap(), s["status"]["open"].as_u64().unwrap());
    assert!(open >= 20 && ended > 5 * open, "ended {ended}, open {open}");
    for by in ["end_date", "end_row", "follow_up", "inactive"] {
        assert!(s["status"]["ended_by"][by].as_u64().unwrap() >= 5, "{by}: {}", s["status"]["ended_by"]);
    }
    let current = read_csv(&out.path().join("current.csv"));
    assert!(current.iter().any(|r| r["attention"] == "not_on_track"));
    assert!(current.iter().any(|r| r["attention"] == "reliable_deterioration"));
    // The headline says what its rates are over, with the number in treatment beside it.
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    let headline = format!("; {open} episodes still in treatment are not counted");
    assert!(report.contains(&headline) && report.contains(&format!("{open} were still in treatment")), "{headline}");
    // What was planted agrees: an episode open on the extract date is open in the results.
    let truth = read_csv(&dir.path().join("truth.csv"));
    let eps = read_csv(&out.path().join("episodes.csv"));
    for t in truth.iter().filter(|t| t["open_at_extract"] == "true") {
        let e = eps.iter().find(|e| e["client_id"] == t["client_id"] && e["episode_id"] == t["episode_id"]);
        assert_eq!(e.map(|e| e["status"].as_str()), Some("open"), "{t:?}");
    }
}

/// SIGBUS (a mapped input cut short under the reader raises it) ends the run with a
/// message and exit code 2. The signal is sent while the run waits to open a FIFO (its
/// key file, which `import-fhir` opens first): a moment that can be waited for.
#[cfg(target_os = "linux")]
#[test]
fn an_input_cut_short_while_read_is_reported_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let input = write(dir.path(), "obs.ndjson", "{}\n");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("sustain"))
        .args(["import-fhir", "--quiet", "--key-file"])
        .arg(&fifo)
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it waits for a writer to the FIFO (its handler is installed by then).
    let wchan = format!("/proc/{}/wchan", child.id());
    let waiting = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        fs::read_to_string(&wchan).is_ok_and(|w| w.contains("fifo") || w.contains("partner"))
    });
    assert!(waiting, "the run reached the FIFO: {:?}", fs::read_to_string(&wchan));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-BUS", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shortened or rewritten while it was read"), "{stderr}");
    assert!(!dir.path().join("out").exists());
}
