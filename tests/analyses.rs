//! How the analyses treat particular data: changed rules, goals, standard codes, follow-ups,
//! far session numbers, measures without a criterion and series to check, through the binary.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze, analyze_on, analyze_small_clinic_with_goals, demo, episode, fixture, read_csv, read_json};
use predicates::str::contains;
use std::fs;

/// A measure file that changes PHQ-9's rule changes the combined Talking Therapies
/// figures too; the summary and the report's headline say so, as they are then not the
/// service's published definition.
#[test]
fn a_changed_phq9_rule_is_named_beside_the_talking_therapies_figures() {
    let dir = tempfile::tempdir().unwrap();
    let measures = dir.path().join("m.toml");
    fs::write(&measures, "[[measure]]\ncode = 'PHQ9'\nreliable_change = 5\n").unwrap();
    let out = analyze(&fixture("small_clinic.csv"), &["--measures", measures.to_str().unwrap()]);
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(s["talking_therapies"]["rules_from_measure_file"], serde_json::json!(["PHQ9"]));
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        report.contains("PHQ9 judged by the measure file&#x27;s rule, not the NHS thresholds"),
        "the headline says so"
    );
}

#[test]
fn goals_are_validated_and_counted() {
    let out = analyze(&fixture("small_clinic.csv"), &["--goals", fixture("small_goals.csv").to_str().unwrap()]);
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(s["inputs"]["goals"]["rows_read"], 6);
    assert_eq!(s["inputs"]["goals"]["rows_rejected"], 3);
    let rejected = read_csv(&out.path().join("rejected.csv"));
    let codes: Vec<(&str, &str)> = rejected.iter().map(|r| (r["line"].as_str(), r["code"].as_str())).collect();
    // Line 6: GAS 3 is out of range. Lines 3 and 7: G1 rated 7 and 8 at the end (same day) conflict.
    assert_eq!(codes, [("3", "conflicting_duplicate"), ("6", "rating_out_of_range"), ("7", "conflicting_duplicate")]);

    // What is left: G1 rated once, its objective G1.1 once, and GAS goal A1 (+1, weight 2).
    let goals = read_csv(&out.path().join("goals.csv"));
    let g1 = goals.iter().find(|g| g["goal_id"] == "G1").unwrap();
    assert_eq!([&g1["n_ratings"], &g1["change"], &g1["n_objectives"], &g1["level"]], ["1", "", "1", "goal"]);
    let o = goals.iter().find(|g| g["goal_id"] == "G1.1").unwrap();
    assert_eq!([&o["level"], &o["parent_goal_id"]], ["objective", "G1"]);
    // T = 50 + 10 · 2 · 1 / √(0.7 · 4 + 0.3 · 4) = 60.
    let ep = &read_csv(&out.path().join("goals_episodes.csv"))[0];
    assert_eq!([&ep["gas_goals"], &ep["gas_t_end"], &ep["agreement"]], ["1", "60", "both_improved"]);
}

/// An objective whose ratings name two parent goals is kept under the first and marked,
/// in goals.csv, summary.json and the report's data-quality section.
#[test]
fn an_objective_whose_ratings_name_two_parents_is_marked() {
    let out = analyze_small_clinic_with_goals(
        "client_id,episode_id,goal_id,parent_goal_id,date,phase,scale,rating\n\
         A,1,G1,,2024-01-08,assessment,GBO,2\n\
         A,1,G2,,2024-01-08,assessment,GBO,3\n\
         A,1,O1,G1,2024-01-08,assessment,GBO,1\n\
         A,1,O1,G2,2024-01-22,end,GBO,6\n",
    );
    let goals = read_csv(&out.path().join("goals.csv"));
    let checks: Vec<(&str, &str, &str)> =
        goals.iter().map(|g| (g["goal_id"].as_str(), g["parent_goal_id"].as_str(), g["goal_check"].as_str())).collect();
    assert_eq!(checks, [("G1", "", ""), ("G2", "", ""), ("O1", "G1", "parents_differ")]);
    let g1 = goals.iter().find(|g| g["goal_id"] == "G1").unwrap();
    assert_eq!(g1["n_objectives"], "1");
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(s["goals"]["checks"]["parents_differ"], 1);
    assert_eq!(s["rows_rejected"], 0, "the ratings are used");
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        report.contains("<td>Ratings name more than one parent goal</td><td class=\"num\">1</td>"),
        "the report says so"
    );
}

#[test]
fn standard_codes_in_the_measure_column_give_the_results_of_its_names() {
    // The small clinic with each instrument named by a SNOMED CT or LOINC code instead.
    let text = fs::read_to_string(fixture("small_clinic.csv")).unwrap();
    let (mut phq, mut coded) = (0, String::new());
    for line in text.lines() {
        let (rest, score) = line.rsplit_once(',').unwrap();
        let (front, measure) = rest.rsplit_once(',').unwrap();
        let code = match measure {
            "PHQ-9" | "PHQ9" | "phq9" => {
                phq += 1;
                if phq % 2 == 0 {
                    "720433000"
                } else {
                    "44261-6"
                }
            }
            "GAD-7" => "70274-6",
            "CORE-10" => "718583008",
            "ORS" => "716613004",
            other => other,
        };
        coded.push_str(&format!("{front},{code},{score}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coded.csv");
    fs::write(&path, coded).unwrap();
    let (named, coded) = (analyze(&fixture("small_clinic.csv"), &[]), analyze(&path, &[]));
    for table in ["episodes.csv", "sudden_gains.csv", "rejected.csv"] {
        let read = |dir: &tempfile::TempDir| fs::read_to_string(dir.path().join(table)).unwrap();
        assert_eq!(read(&coded), read(&named), "{table}");
    }
    let summary = read_json(&coded.path().join("summary.json"));
    assert_eq!(summary["measures"]["PHQ9"]["snomed"], "720433000");
    assert_eq!(summary["measures"]["PHQ9"]["loinc"], "44261-6");
    assert_eq!(summary["measures"]["CORE10"]["loinc"], serde_json::Value::Null);
    let html = fs::read_to_string(coded.path().join("report.html")).unwrap();
    assert!(html.contains("SNOMED CT 720433000<br>LOINC 44261-6"), "the Methods table names the codes");
    let md = fs::read_to_string(coded.path().join("report.md")).unwrap();
    assert!(md.contains("(Patient Health Questionnaire-9; SNOMED CT 720433000 · LOINC 44261-6)"), "{md}");
    cargo_bin_cmd!("sustain")
        .args(["measures"])
        .assert()
        .success()
        .stdout(contains("codes: SNOMED CT 445455005 · LOINC 70274-6"));
}

#[test]
fn follow_up_edge_cases_are_classified_as_documented() {
    let out = analyze(&fixture("followups.csv"), &[]);
    let eps = read_csv(&out.path().join("episodes.csv"));
    let a = episode(&eps, "A", "PHQ9");
    assert_eq!(
        [&a["n_followup"], &a["relapse"], &a["relapse_date"], &a["recovery_maintained"], &a["improvement_lost"]],
        ["3", "true", "2024-07-15", "false", "true"],
        "14 is only 4 below the baseline of 18: reliable improvement is lost too"
    );
    let b = episode(&eps, "B", "PHQ9");
    assert_eq!([&b["paired"], &b["n_followup"], &b["relapse"], &b["late_improvement"]], ["false", "1", "", ""]);
    let c = episode(&eps, "C", "PHQ9");
    assert_eq!(
        [&c["outcome"], &c["relapse"], &c["deteriorated_since_end"], &c["late_improvement"]],
        ["not_at_caseness", "", "true", "false"]
    );
    let d = episode(&eps, "D", "PHQ9");
    assert_eq!([&d["n_followup"], &d["relapse"]], ["0", ""], "a follow-up before the end is not used");

    let fu = read_csv(&out.path().join("followup.csv"));
    let a_windows: Vec<&str> = fu.iter().filter(|r| r["client_id"] == "A").map(|r| r["window"].as_str()).collect();
    assert_eq!(a_windows, ["3m", "3m", "6m"]);
    let b_fu = fu.iter().find(|r| r["client_id"] == "B").unwrap();
    assert_eq!([&b_fu["reliable_vs_baseline"], &b_fu["change_from_end"]], ["improved", ""]);
    let d_fu = fu.iter().find(|r| r["client_id"] == "D").unwrap();
    assert_eq!([&d_fu["status"], &d_fu["days_after_end"]], ["before_end_of_treatment", "-12"]);

    let rejected = read_csv(&out.path().join("rejected.csv"));
    assert_eq!(rejected.len(), 1);
    assert_eq!([&rejected[0]["line"], &rejected[0]["code"]], ["17", "followup_without_treatment"]);

    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        html.contains("<td>Relapse</td>") && html.contains("Recovery maintained"),
        "durability rates reach the report"
    );
    let s = read_json(&out.path().join("summary.json"));
    let phq = &s["sustained"]["by_measure"]["PHQ9"];
    assert_eq!(rate_of(&phq["rates"]["relapse"]), (1, 1));
    assert_eq!(phq["followup_scores_before_end"], 1);
    assert_eq!(phq["followup_scores_by_window"]["3m"], 4, "two of A, and B and C at about 90 days");
}

fn rate_of(r: &serde_json::Value) -> (u64, u64) {
    (r["numerator"].as_u64().unwrap(), r["denominator"].as_u64().unwrap())
}

#[test]
fn a_goals_table_beyond_memory_rows_gives_the_same_results() {
    let d = demo("150", "8");
    // Duplicate ratings, to be found across the runs too: an exact repeat and a conflict.
    let path = d.path().join("goals.csv");
    // Every other GAS rating without its weight (the goal keeps the last one given), so
    // that ratings without one go through the temporary files too.
    let text: String = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| match l.strip_suffix(|c: char| c.is_ascii_digit()) {
            Some(blank) if i % 2 == 0 && l.contains(",GAS,") => format!("{blank}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(text.lines().any(|l| l.contains(",GAS,") && l.ends_with(',')), "some weights blanked");
    let lines: Vec<&str> = text.lines().collect();
    let gbo: Vec<&str> = lines.iter().copied().filter(|l| l.contains(",GBO,")).collect();
    let mut fields: Vec<String> = gbo[40].split(',').map(String::from).collect();
    fields[7] = if fields[7] == "0" { "1".into() } else { "0".into() };
    fs::write(&path, format!("{text}{}\n{}\n", gbo[7], fields.join(","))).unwrap();

    let run = |flags: &[&str]| analyze_on("2026-11-26", &d.path().join("measurements.csv"), flags);
    let goals = path.to_str().unwrap();
    let whole = run(&["--goals", goals]);
    let in_runs = run(&["--goals", goals, "--memory-rows", "97"]);
    let mut compared = 0;
    for entry in fs::read_dir(whole.path()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.contains('.') {
            let same = fs::read(whole.path().join(&name)).unwrap() == fs::read(in_runs.path().join(&name)).unwrap();
            assert!(same, "{name} differs when the goals are read in runs");
            compared += 1;
        }
    }
    assert!(compared >= 15, "{compared}");
    let codes: Vec<String> = read_csv(&whole.path().join("rejected.csv"))
        .iter()
        .filter(|r| r["file"].ends_with("goals.csv"))
        .map(|r| r["code"].clone())
        .collect();
    assert_eq!(codes.iter().filter(|c| *c == "exact_duplicate").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "conflicting_duplicate").count(), 2, "{codes:?}");
}

/// One row with a session number of 10⁹ (a date typed into `session`, say) is a valid
/// row: the run completes, the series' sudden gains and trajectories are those of the
/// series without the gap, and the interval count is the package's. It used to make
/// every series of the measure 10⁹ positions long and exhaust memory.
#[test]
fn a_session_numbered_a_billion_neither_exhausts_memory_nor_changes_other_results() {
    let dir = tempfile::tempdir().unwrap();
    let header = "client_id,episode_id,date,session,measure,score\n";
    let mut rows = String::new();
    for (c, scores) in [("A", [20, 19, 18, 8, 8, 7]), ("B", [18, 17, 17, 16, 15, 15])] {
        for (s, score) in scores.iter().enumerate() {
            rows.push_str(&format!("{c},E1,2025-01-{:02},{s},PHQ-9,{score}\n", 1 + 5 * s));
        }
    }
    let plain = dir.path().join("plain.csv");
    fs::write(&plain, format!("{header}{rows}")).unwrap();
    let far = dir.path().join("far.csv");
    fs::write(&far, format!("{header}{rows}C,E1,2025-01-01,0,PHQ-9,20\nC,E1,2025-02-01,1000000000,PHQ-9,5\n")).unwrap();
    let (a, b) = (analyze(&plain, &[]), analyze(&far, &[]));
    let gains = |d: &tempfile::TempDir| read_csv(&d.path().join("sudden_gains.csv"));
    assert_eq!(gains(&a), gains(&b));
    assert_eq!(gains(&a).len(), 1, "A's drop from 18 to 8 at session 2");
    // (C's baseline moves the edges of the intake-severity bands, and so A's band; C's
    // series joins the growth model, which moves every series' shrunken line.)
    let trajectories = |d: &tempfile::TempDir| {
        let mut rows = read_csv(&d.path().join("trajectories.csv"))[..2].to_vec();
        for r in &mut rows {
            for column in ["etr_band", "shrunken_baseline", "shrunken_slope_per_session"] {
                r.remove(column);
            }
        }
        rows
    };
    assert_eq!(trajectories(&a), trajectories(&b));
    let tested = |d: &tempfile::TempDir| {
        read_json(&d.path().join("summary.json"))["sudden_gains"]["by_measure"]["PHQ9"]["intervals_tested"].as_u64()
    };
    assert_eq!(tested(&a), Some(2 * 3));
    assert_eq!(tested(&b), Some(3 * (1_000_000_001 - 3)), "every series spans the measure's sessions");
}

/// A measure with no reliable-change threshold has no criterion 1; with criteria 2 and 3
/// switched off no criterion applies to it. The package refuses to run without a
/// criterion; sustain counts the measure's series, does not search them, and says so,
/// while the other measures are searched as usual. Flagging every interval, as an empty
/// product of criteria would, laid out a series of 10⁹ sessions whole and exhausted memory.
#[test]
fn a_measure_with_no_criterion_left_is_not_searched_for_sudden_gains() {
    let dir = tempfile::tempdir().unwrap();
    let measures = dir.path().join("measures.toml");
    fs::write(&measures, "[[measure]]\ncode = 'XYZ'\nname = 'No threshold'\nbetter = 'lower'\nmin = 0\nmax = 60\n")
        .unwrap();
    let path = dir.path().join("m.csv");
    let mut text = String::from("client_id,episode_id,date,session,measure,score\n");
    for (c, scores) in [("A", [20, 19, 18, 8, 8, 7]), ("B", [40, 39, 30, 10, 9, 9])] {
        for (s, score) in scores.iter().enumerate() {
            for m in ["PHQ-9", "XYZ"] {
                let score = if m == "PHQ-9" { score.min(&27) } else { score };
                text.push_str(&format!("{c},E1,2025-01-{:02},{s},{m},{score}\n", 1 + 5 * s));
            }
        }
    }
    text.push_str("C,E1,2025-01-01,0,XYZ,50\nC,E1,2025-02-01,1000000000,XYZ,5\n");
    fs::write(&path, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let assert = cargo_bin_cmd!("sustain")
        .args(["analyze", "--today", "2025-06-01", "--suppress-below", "0", "--sg-no-crit2", "--sg-no-crit3"])
        .arg("--measures")
        .arg(&measures)
        .arg("--measurements")
        .arg(&path)
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(stderr.contains("no sudden-gain criterion applies to XYZ"), "{stderr}");
    let sg = &read_json(&out.path().join("summary.json"))["sudden_gains"]["by_measure"];
    assert_eq!(sg["XYZ"]["no_criterion"], true);
    assert_eq!(sg["XYZ"]["series"], 3);
    assert_eq!(sg["XYZ"]["intervals_tested"], 0);
    assert_eq!(sg["XYZ"]["gains"], 0);
    assert_eq!(sg["PHQ9"]["no_criterion"], false);
    assert_eq!(sg["PHQ9"]["gains"], 2, "A's 18 → 8 and B's 27 → 10 pass criterion 1 (6 points)");
    let gains = read_csv(&out.path().join("sudden_gains.csv"));
    assert!(gains.iter().all(|r| r["measure"] == "PHQ9"), "{gains:?}");
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(report.contains("no criterion applies"));
}

/// Scores are ordered by session number (the contract), so an assessment numbered after
/// treatment sessions is not the baseline, and a session dated before the one numbered
/// before it goes unnoticed in the figures: both kinds of series are marked in
/// episodes.csv, counted in summary.json and listed in the report's data quality.
#[test]
fn series_whose_numbers_disagree_with_their_phases_or_dates_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    fs::write(
        &path,
        "client_id,date,session,phase,measure,score\n\
         A,2025-01-08,1,treatment,PHQ-9,15\nA,2025-01-15,2,treatment,PHQ-9,12\nA,2025-01-01,3,assessment,PHQ-9,18\n\
         B,2025-01-01,0,assessment,PHQ-9,18\nB,2025-01-20,1,treatment,PHQ-9,15\nB,2025-01-10,2,end,PHQ-9,8\n\
         C,2025-01-01,0,assessment,PHQ-9,18\nC,2025-01-10,1,end,PHQ-9,8\n",
    )
    .unwrap();
    let out = analyze(&path, &[]);
    let eps = read_csv(&out.path().join("episodes.csv"));
    let checks: Vec<(&str, &str)> = eps.iter().map(|r| (r["client_id"].as_str(), r["series_check"].as_str())).collect();
    assert_eq!(
        checks,
        [("A", "assessment_not_baseline;dates_out_of_session_order"), ("B", "dates_out_of_session_order"), ("C", "")]
    );
    // The session order still decides baseline and final.
    assert_eq!([&eps[0]["baseline"], &eps[0]["final"]], ["15", "18"]);
    let s = read_json(&out.path().join("summary.json"));
    let c = &s["measures"]["PHQ9"]["series_checks"];
    assert_eq!([&c["assessment_not_baseline"], &c["dates_out_of_session_order"]], [1, 2]);
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(report.contains("Series to check"));
}
