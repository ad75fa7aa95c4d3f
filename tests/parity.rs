//! Agreement with hand-computed values and with the reference R packages' outputs
//! (clinicalsignificance, suddengains, lme4), through the binary.

mod common;

use common::{analyze, episode, fixture, read_csv, read_json, Row};
use std::fs;
use std::path::Path;

fn rate(summary: &serde_json::Value, measure: &str, name: &str) -> (u64, u64) {
    let r = &summary["measures"][measure]["rates"][name];
    (r["numerator"].as_u64().unwrap(), r["denominator"].as_u64().unwrap())
}

#[test]
fn small_clinic_outcomes_match_hand_computed_values() {
    let out = analyze(&fixture("small_clinic.csv"), &[]);
    let eps = read_csv(&out.path().join("episodes.csv"));
    assert_eq!(eps.len(), 7);

    let a = episode(&eps, "A", "PHQ9");
    let got: Vec<&str> = [
        "baseline",
        "final",
        "change",
        "n_scores",
        "n_followup",
        "reliable_change",
        "outcome",
        "recovery",
        "response",
        "remission",
    ]
    .iter()
    .map(|c| a[*c].as_str())
    .collect();
    assert_eq!(
        got,
        ["18", "8", "-10", "3", "1", "improved", "recovered", "true", "true", "false"],
        "follow-up 14 is not final"
    );
    let a_gad = episode(&eps, "A", "GAD7");
    assert_eq!((a_gad["change"].as_str(), a_gad["outcome"].as_str()), ("-6", "recovered"));
    assert_eq!(
        [
            &a["tt_caseness"],
            &a["tt_recovery"],
            &a["tt_reliable_improvement"],
            &a["tt_reliable_deterioration"],
            &a["tt_reliable_recovery"]
        ],
        ["true", "true", "true", "false", "true"]
    );

    let b = episode(&eps, "B", "PHQ9");
    assert_eq!(
        [&b["reliable_change"], &b["outcome"], &b["recovery"], &b["reliable_recovery"]],
        ["no_change", "unchanged", "true", "false"]
    );
    let c = episode(&eps, "C", "PHQ9");
    assert_eq!([&c["reliable_change"], &c["outcome"], &c["caseness_end"]], ["deteriorated", "deteriorated", "true"]);
    let d = episode(&eps, "D", "ORS");
    assert_eq!([&d["change"], &d["outcome"], &d["response"]], ["6.5", "recovered", ""]);
    let e = episode(&eps, "E", "CORE10");
    assert_eq!(
        [&e["paired"], &e["caseness_start"], &e["final"], &e["outcome"], &e["recovery"]],
        ["false", "true", "", "", ""]
    );
    let f = episode(&eps, "F", "PHQ9");
    assert_eq!([&f["outcome"], &f["reliable_change"], &f["remission"]], ["not_at_caseness", "no_change", "true"]);
    assert_eq!(a["therapist_id"], "T1");

    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(s["measures"]["PHQ9"]["paired"], 4);
    assert_eq!(s["measures"]["PHQ9"]["at_caseness"], 3);
    assert_eq!(rate(&s, "PHQ9", "recovery"), (2, 3));
    assert_eq!(rate(&s, "PHQ9", "reliable_recovery"), (1, 3));
    assert_eq!(rate(&s, "PHQ9", "reliable_improvement"), (1, 4));
    assert_eq!(rate(&s, "PHQ9", "reliable_deterioration"), (1, 4));
    assert_eq!(rate(&s, "PHQ9", "response"), (2, 4));
    assert_eq!(rate(&s, "PHQ9", "remission"), (0, 3));
    assert_eq!(s["measures"]["CORE10"]["unpaired"], 1);
    assert_eq!(s["talking_therapies"]["paired"], 1);
    assert_eq!(s["talking_therapies"]["rules_from_measure_file"], serde_json::json!([]));
    assert_eq!(
        (s["rows_read"].as_u64(), s["rows_used"].as_u64(), s["rows_rejected"].as_u64()),
        (Some(16), Some(16), Some(0))
    );
}

/// Compares our episodes with clinicalsignificance 3.0.0's participant table.
fn assert_matches_clinicalsignificance(ours: &[Row], reference: &Path, combined: bool) {
    let reference = read_csv(reference);
    assert_eq!(reference.len(), 26);
    for r in &reference {
        let o = episode(ours, &r["id"], "GDS");
        let rci: f64 = o["rci"].parse().unwrap();
        let want: f64 = r["rci"].parse().unwrap();
        assert!((rci - want).abs() < 1e-9, "subject {}: rci {rci} vs {want}", r["id"]);
        let category = r["category"].to_lowercase();
        let reliable = match category.as_str() {
            "recovered" | "improved" if combined => "improved",
            "unchanged" => "no_change",
            other => other,
        };
        assert_eq!(o["reliable_change"], reliable, "subject {}", r["id"]);
        if combined {
            let clinical_pre = r["clinical_pre"] == "TRUE";
            let outcome = if clinical_pre { category.as_str() } else { "not_at_caseness" };
            assert_eq!(o["outcome"], outcome, "subject {}", r["id"]);
            assert_eq!(o["caseness_start"] == "true", clinical_pre, "subject {}", r["id"]);
            assert_eq!(o["caseness_end"] == "false", r["functional_post"] == "TRUE", "subject {}", r["id"]);
        }
    }
    // Subjects 27–30 have no post score: unpaired, not dropped.
    for id in ["27", "28", "29", "30"] {
        assert_eq!(episode(ours, id, "GDS")["paired"], "false");
    }
}

#[test]
fn jacobson_1989_gds_cutoff_a_equals_clinicalsignificance() {
    let out = analyze(
        &fixture("jacobson_1989_gds_measurements.csv"),
        &["--measures", fixture("gds_cutoff_a.toml").to_str().unwrap()],
    );
    let eps = read_csv(&out.path().join("episodes.csv"));
    assert_matches_clinicalsignificance(&eps, &fixture("ref_jacobson_gds_cutoffa_participants.csv"), true);
    assert_matches_clinicalsignificance(&eps, &fixture("ref_jacobson_gds_distribution_participants.csv"), false);
    let s = read_json(&out.path().join("summary.json"));
    let rule = &s["measures"]["GDS"]["rule"];
    assert!((rule["cutoff"].as_f64().unwrap() - 56.9496854509736).abs() < 1e-9);
    assert!((rule["s_diff"].as_f64().unwrap() - 3.85929447517987).abs() < 1e-9);
    assert_eq!(s["measures"]["GDS"]["outcomes"]["recovered"], 10);
    assert_eq!(rate(&s, "GDS", "reliable_improvement"), (14, 26));
    // The four missing post scores are rejected rows, each with its line.
    let rejected = read_csv(&out.path().join("rejected.csv"));
    let lines: Vec<&str> = rejected.iter().map(|r| r["line"].as_str()).collect();
    assert_eq!(lines, ["55", "57", "59", "61"]);
}

/// The regression-based indices (`rci_method`) on the same 26 pairs (pre mean 69.1538,
/// SD 6.10208; post mean 59.3077), with the values computed apart from sustain by the
/// formulas of clinicalsignificance's `calc_rci.R` (in Python, as `tests/crosscheck/rci_methods.py`
/// writes them).
#[test]
fn jacobson_1989_gds_by_each_regression_index() {
    let cases = [
        ("gln", "", (16, 0), -4.760881597444737),
        ("hll", "", (7, 8), -2.0715927868846014),
        ("en", "", (17, 0), -6.387392930828531),
        ("nk", "reliability_post = 0.9\n", (17, 0), -5.982341592011214),
    ];
    for (method, extra, (improved, deteriorated), subject_2) in cases {
        let dir = tempfile::tempdir().unwrap();
        let measures = dir.path().join("gds.toml");
        let toml = fs::read_to_string(fixture("gds_cutoff_a.toml")).unwrap();
        fs::write(&measures, format!("{toml}rci_method = \"{method}\"\n{extra}")).unwrap();
        let out = analyze(&fixture("jacobson_1989_gds_measurements.csv"), &["--measures", measures.to_str().unwrap()]);
        let eps = read_csv(&out.path().join("episodes.csv"));
        let rci: f64 = episode(&eps, "2", "GDS")["rci"].parse().unwrap();
        assert!((rci - subject_2).abs() < 1e-9, "{method}: {rci}");
        let s = read_json(&out.path().join("summary.json"));
        assert_eq!(rate(&s, "GDS", "reliable_improvement"), (improved, 26), "{method}");
        assert_eq!(rate(&s, "GDS", "reliable_deterioration"), (deteriorated, 26), "{method}");
        assert_eq!(s["measures"]["GDS"]["rule"]["rci"]["method"], method);
        let report = fs::read_to_string(out.path().join("report.html")).unwrap();
        let name = ["Gulliksen–Lord–Novick", "Hsu–Linn–Lord", "Edwards–Nunnally", "Nunnally–Kotsch"];
        assert!(name.iter().any(|n| report.contains(n)), "{method}: the report names the index");
    }
}

#[test]
fn jacobson_1989_gds_cutoff_c_equals_clinicalsignificance() {
    let out = analyze(
        &fixture("jacobson_1989_gds_measurements.csv"),
        &["--measures", fixture("gds_cutoff_c.toml").to_str().unwrap()],
    );
    let eps = read_csv(&out.path().join("episodes.csv"));
    assert_matches_clinicalsignificance(&eps, &fixture("ref_jacobson_gds_cutoffc_participants.csv"), true);
    let s = read_json(&out.path().join("summary.json"));
    assert!((s["measures"]["GDS"]["rule"]["cutoff"].as_f64().unwrap() - 50.918580540294).abs() < 1e-9);
    assert_eq!(s["measures"]["GDS"]["outcomes"]["recovered"], 3);
}

#[test]
fn the_growth_model_of_sleepstudy_equals_lme4() {
    // lme4's sleepstudy in the contract's layout: a subject is a client, a day a session.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("client_id,date,session,measure,score\n");
    for r in read_csv(&fixture("lme4_sleepstudy.csv")) {
        let day: u32 = r["Days"].parse().unwrap();
        text.push_str(&format!("S{},2024-01-{:02},{day},RT,{}\n", r["Subject"], day + 1, r["Reaction"]));
    }
    let (data, measures) = (dir.path().join("sleep.csv"), dir.path().join("rt.toml"));
    fs::write(&data, text).unwrap();
    fs::write(&measures, "[[measure]]\ncode = 'RT'\nbetter = 'lower'\nmin = 0\nmax = 10000\n").unwrap();
    let out = analyze(&data, &["--measures", measures.to_str().unwrap()]);
    let model = &read_json(&out.path().join("summary.json"))["trajectories"]["by_measure"]["RT"]["growth_model"];
    let exact = read_csv(&fixture("ref_lme4_sleepstudy_summary.csv"))
        .into_iter()
        .find(|r| r["fit"] == "sleepstudy_REML_closed_form")
        .unwrap();
    for (ours, theirs, rel) in [
        ("intercept", "fixef_intercept", 1e-12),
        ("slope", "fixef_slope", 1e-12),
        ("se_intercept", "se_intercept", 1e-8),
        ("se_slope", "se_slope", 1e-8),
        ("sd_intercept", "sd_intercept", 1e-8),
        ("sd_slope", "sd_slope", 1e-8),
        ("correlation", "corr_intercept_slope", 1e-7),
        ("sigma", "sigma", 1e-8),
        ("log_likelihood", "logLik", 1e-12),
        ("criterion", "REMLcrit", 1e-12),
        ("aic", "AIC", 1e-12),
        ("bic", "BIC", 1e-12),
    ] {
        let (x, y) = (model[ours].as_f64().unwrap(), exact[theirs].parse::<f64>().unwrap());
        assert!((x - y).abs() <= rel * y.abs(), "{ours}: {x} against lme4's {y}");
    }
    assert_eq!((model["series"].as_u64(), model["scores"].as_u64()), (Some(18), Some(180)));
    assert_eq!(model["singular"], false, "sleepstudy's subjects differ in intercept and slope");
    // Each subject's own line, shrunken toward the average: subject 335 gets faster
    // (its own OLS slope is −2.88 ms a day); the model pulls it toward the mean of 10.5.
    let rows = read_csv(&out.path().join("trajectories.csv"));
    let s335 = rows.iter().find(|r| r["client_id"] == "S335").unwrap();
    let (ols, shrunken): (f64, f64) =
        (s335["slope_per_session"].parse().unwrap(), s335["shrunken_slope_per_session"].parse().unwrap());
    assert!((ols + 2.8810).abs() < 1e-4 && ols < shrunken && shrunken < 10.47, "{ols} → {shrunken}");
    // Its slope lies far below the typical one (RT: lower is better), reliably so by
    // clinicalsignificance's HLM index; the summary counts the series by category.
    let rci: f64 = s335["slope_rci"].parse().unwrap();
    assert!(rci < -z_975() && s335["change_vs_typical"] == "more_improvement", "{rci}");
    let counted = &read_json(&out.path().join("summary.json"))["trajectories"]["by_measure"]["RT"]["change_vs_typical"];
    for category in ["more_improvement", "as_typical", "less_improvement"] {
        let n = rows.iter().filter(|r| r["change_vs_typical"] == category).count() as u64;
        assert_eq!(counted["series"][category].as_u64(), Some(n), "{category}");
    }
    assert_eq!(counted["growth_model"]["series"], 18, "every subject has 10 scores");
    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("growth model (18 series): change per session"), "the report states the model");
}

#[test]
fn a_growth_model_without_differences_between_clients_is_reported_as_singular() {
    // Six clients with the very same scores: nothing varies between series, so both
    // between-client SDs sit at 0, the boundary lme4's isSingular reports.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("client_id,date,session,measure,score\n");
    for c in 1..=6 {
        for (session, score) in [(0, 14), (1, 11), (2, 12), (3, 8)] {
            text.push_str(&format!("C{c},2024-01-{:02},{session},RT,{score}\n", session + 1));
        }
    }
    let (data, measures) = (dir.path().join("same.csv"), dir.path().join("rt.toml"));
    fs::write(&data, text).unwrap();
    fs::write(&measures, "[[measure]]\ncode = 'RT'\nbetter = 'lower'\nmin = 0\nmax = 30\n").unwrap();
    let out = analyze(&data, &["--measures", measures.to_str().unwrap()]);
    let model = &read_json(&out.path().join("summary.json"))["trajectories"]["by_measure"]["RT"]["growth_model"];
    assert_eq!(model["singular"], true, "{model}");
    assert!((model["slope"].as_f64().unwrap() + 1.7).abs() < 1e-6, "the pooled least-squares slope: {model}");
    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("growth model: singular fit"), "the report says so");
    // Slopes without variance of their own give no HLM index: the ratio of two zeros.
    let typical = &read_json(&out.path().join("summary.json"))["trajectories"]["by_measure"]["RT"]["change_vs_typical"];
    assert_eq!(typical["index_given"], false, "{typical}");
    let rows = read_csv(&out.path().join("trajectories.csv"));
    assert!(rows.iter().all(|r| r["slope_rci"].is_empty() && r["change_vs_typical"].is_empty()));
    assert!(html.contains("not given: the slopes vary no more than the baselines carry"));
}

#[test]
fn therapist_effects_of_a_balanced_caseload_are_the_anova_solution() {
    // Four therapists, each with clients at PHQ-9 baselines 10, 14 and 18: a balanced
    // design, where the mixed model's REML estimates are the ANOVA ones (unit test of
    // unit_effects): σ² = 62.5/84 and τ² = (MSB − σ²)/3 with MSB = 16.305556.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("client_id,therapist_id,date,session,measure,score\n");
    let improvements = [[3, 6, 8], [1, 2, 6], [6, 9, 10], [2, 5, 5]];
    for (t, ys) in improvements.iter().enumerate() {
        for (c, (baseline, y)) in [10, 14, 18].iter().zip(ys).enumerate() {
            let client = format!("C{t}{c}");
            text.push_str(&format!("{client},T{t},2024-01-01,0,PHQ-9,{baseline}\n"));
            text.push_str(&format!("{client},T{t},2024-03-01,8,PHQ-9,{}\n", baseline - y));
        }
    }
    let data = dir.path().join("balanced.csv");
    fs::write(&data, text).unwrap();
    let out = analyze(&data, &[]);
    let summary = read_json(&out.path().join("summary.json"));
    let model =
        &summary["caseload"]["unit_effects"].as_array().unwrap().iter().find(|e| e["unit"] == "therapist").unwrap()
            ["model"];
    let sigma2: f64 = 62.5 / 84.0;
    let tau2 = (16.305_555_555_555_557 - sigma2) / 3.0;
    let icc = model["icc"].as_f64().unwrap();
    assert!((icc - tau2 / (tau2 + sigma2)).abs() < 1e-8, "{model}");
    assert_eq!((model["units"].as_u64(), model["episodes"].as_u64()), (Some(4), Some(12)));
    // Each therapist's effect: nτ²/(nτ² + σ²) of its mean improvement's distance from 5.25.
    let shrink = 3.0 * tau2 / (3.0 * tau2 + sigma2);
    for row in read_csv(&out.path().join("therapists.csv")) {
        let t: usize = row["therapist_id"][1..].parse().unwrap();
        let mean = improvements[t].iter().sum::<i32>() as f64 / 3.0;
        let effect: f64 = row["improvement_effect"].parse().unwrap();
        assert!((effect - shrink * (mean - 5.25)).abs() < 1e-7, "T{t}: {effect}");
    }
    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("therapists on PHQ9 (4 therapists, 12 paired episodes)"), "the report states the model");
}

/// Runs the sudden-gains reference set-up: sessions 1–12 numbered from 1, cut-off 7.
fn sgdata_run(extra: &[&str]) -> tempfile::TempDir {
    let mut args = vec!["--sg-cutoff", "7", "--sg-start-session", "1", "--sg-identify-1to2", "false"];
    args.extend_from_slice(extra);
    analyze(&fixture("sgdata_bdi_measurements.csv"), &args)
}

/// One event as comparable text: client, kind, session, scores, magnitude, midpoint, reversal.
fn event_key(fields: [&str; 7], reversal: bool) -> String {
    format!("{}|{reversal}", fields.join("|"))
}

#[test]
fn sudden_gains_and_losses_equal_suddengains_on_sgdata() {
    let out = sgdata_run(&[]);
    let ours: Vec<String> = read_csv(&out.path().join("sudden_gains.csv"))
        .iter()
        .map(|r| {
            event_key(
                [
                    "client_id",
                    "kind",
                    "pregain_session",
                    "pregain_score",
                    "postgain_score",
                    "magnitude",
                    "reversal_value",
                ]
                .map(|c| r[c].as_str()),
                r["reversal"] == "true",
            )
        })
        .collect();
    let mut want: Vec<String> = ["ref_sg_events.csv", "ref_sl_events.csv"]
        .iter()
        .flat_map(|f| read_csv(&fixture(f)))
        .map(|r| {
            event_key(
                [
                    "client_id",
                    "kind",
                    "pregain_index",
                    "pregain_score",
                    "postgain_score",
                    "magnitude",
                    "reversal_value",
                ]
                .map(|c| r[c].as_str()),
                r["reversal"] == "1",
            )
        })
        .collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    want.sort();
    assert_eq!(ours_sorted, want);
    assert_eq!(ours.iter().filter(|k| k.contains("|gain|")).count(), 24);

    let s = read_json(&out.path().join("summary.json"));
    let t = &s["sudden_gains"]["by_measure"]["BDI2"];
    assert_eq!(
        (t["series"].as_u64(), t["intervals_tested"].as_u64(), t["intervals_evaluable"].as_u64()),
        (Some(43), Some(387), Some(298))
    );
    assert_eq!(
        (t["gains"].as_u64(), t["series_with_gain"].as_u64(), t["gain_reversals"].as_u64()),
        (Some(24), Some(15), Some(4))
    );
    assert_eq!((t["losses"].as_u64(), t["loss_reversals"].as_u64()), (Some(3), Some(2)));
}

#[test]
fn one_gain_per_client_by_each_rule_equals_create_byperson() {
    for rule in ["first", "last", "smallest", "largest"] {
        let out = sgdata_run(&["--sg-select", rule]);
        let ours = read_csv(&out.path().join("sudden_gains_byclient.csv"));
        for (kind, prefix) in [("sg", "gain"), ("sl", "loss")] {
            for r in read_csv(&fixture(&format!("ref_{kind}_byperson_{rule}.csv"))) {
                let o = ours.iter().find(|o| o["client_id"] == r["id"]).unwrap();
                let reversal = match r["sg_reversal"].as_str() {
                    "1" => "true",
                    "0" => "false",
                    _ => "",
                };
                let count = if kind == "sg" { &o["n_gains"] } else { &o["n_losses"] };
                assert_eq!(
                    (
                        o[&format!("{prefix}_pregain_session")].as_str(),
                        o[&format!("{prefix}_magnitude")].as_str(),
                        o[&format!("{prefix}_reversal")].as_str(),
                        count.as_str()
                    ),
                    (r["sg_session_n"].as_str(), r["sg_magnitude"].as_str(), reversal, r["sg_freq_byperson"].as_str()),
                    "{rule} {kind} client {}",
                    r["id"]
                );
            }
        }
    }
}

#[test]
fn the_package_loss_criterion_gives_the_same_three_losses_on_sgdata() {
    // Quirk S6: with all three criteria both settings agree on sgdata.
    let out = sgdata_run(&["--sl-crit2-package"]);
    let losses: Vec<String> = read_csv(&out.path().join("sudden_gains.csv"))
        .iter()
        .filter(|r| r["kind"] == "loss")
        .map(|r| format!("{}@{}", r["client_id"], r["pregain_session"]))
        .collect();
    assert_eq!(losses, ["34@7", "35@7", "4@9"]);
    // Criterion 2 alone flags far more "losses" with the package's rule.
    let loose = analyze(
        &fixture("sgdata_bdi_measurements.csv"),
        &[
            "--sg-start-session",
            "1",
            "--sg-identify-1to2",
            "false",
            "--sl-crit2-package",
            "--sg-no-crit1",
            "--sg-no-crit3",
        ],
    );
    let s = read_json(&loose.path().join("summary.json"));
    assert!(s["sudden_gains"]["by_measure"]["BDI2"]["losses"].as_u64().unwrap() > 200);
}

/// The two-sided 5 % critical value, qnorm(0.975).
fn z_975() -> f64 {
    1.959_963_984_540_054
}
