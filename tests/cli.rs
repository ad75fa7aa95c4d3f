//! End-to-end tests: run the binary on fixtures and compare what it writes with
//! hand-computed expectations and with the reference R packages' outputs.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze_on, demo, read_csv, read_json, Row};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs `sustain analyze` on a measurements file into a fresh folder, with today fixed
/// at 2025-06-01 (the fixtures' dates are before it) and small-number suppression off, as
/// these tests compare exact counts on tiny fixtures. The fixtures are finished studies:
/// the extract date is today, so that every episode has ended (tests/live_export.rs
/// tests exports with episodes still open).
fn analyze(measurements: &Path, extra: &[&str]) -> tempfile::TempDir {
    let mut args = vec!["--suppress-below", "0", "--as-of", "2025-06-01"];
    args.extend_from_slice(extra);
    analyze_on("2025-06-01", measurements, &args)
}

/// [`analyze`] of the small clinic with `goals` (CSV text) as its goals table.
fn analyze_small_clinic_with_goals(goals: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("goals.csv");
    fs::write(&path, goals).unwrap();
    analyze(&fixture("small_clinic.csv"), &["--goals", path.to_str().unwrap()])
}

fn episode<'a>(rows: &'a [Row], client: &str, measure: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["client_id"] == client && r["measure"] == measure)
        .unwrap_or_else(|| panic!("no episode for {client} {measure}"))
}

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
fn every_kind_of_bad_row_is_rejected_with_its_line() {
    let out = analyze(&fixture("bad_rows.csv"), &[]);
    let rejected = read_csv(&out.path().join("rejected.csv"));
    let got: Vec<(&str, &str)> = rejected.iter().map(|r| (r["line"].as_str(), r["code"].as_str())).collect();
    assert_eq!(
        got,
        [
            ("4", "impossible_date"),
            ("5", "future_date"),
            ("6", "bad_score"),
            ("7", "score_out_of_range"),
            ("8", "unknown_measure"),
            ("9", "missing_value"),
            ("10", "negative_session"),
            ("11", "unknown_phase"),
            ("12", "exact_duplicate"),
            ("13", "conflicting_duplicate"),
            ("15", "conflicting_duplicate"),
            ("16", "empty_row"),
            ("18", "unparseable_date"),
            ("19", "bad_session"),
        ]
    );
    assert!(rejected[8]["reason"].contains("line 3"), "the kept row is named: {}", rejected[8]["reason"]);
    assert!(rejected.iter().all(|r| r["file"].ends_with("bad_rows.csv")));
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!(
        (s["rows_read"].as_u64(), s["rows_used"].as_u64(), s["rows_rejected"].as_u64()),
        (Some(17), Some(3), Some(14))
    );
    assert_eq!(s["rejections_by_reason"]["conflicting_duplicate"], 2);
}

fn assert_refused(file: &str, message_parts: &[&str]) {
    assert_input_refused(&fixture(file), &[&[file], message_parts].concat());
}

/// Runs `analyze` on `input` into a fresh folder: refused with exit code 2, each part in
/// the message, and nothing written (no output folder, no partial one).
fn assert_input_refused(input: &std::path::Path, message_parts: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reports");
    let mut assert = cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--measurements"])
        .arg(input)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2);
    for part in message_parts {
        assert = assert.stderr(contains(*part));
    }
    assert!(!out.exists(), "nothing is written for refused input");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no partial output is left behind");
}

/// Parquet dates: a date column is read; a zoned timestamp column is refused with advice
/// unless its zone is a fixed offset and its times are midnights, and so is a column of a
/// type with no text to check (a list), by name.
#[test]
fn parquet_date_columns_are_read_and_zoned_timestamps_refused() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, date: Column| {
        let mut df = df!("client_id" => ["c1", "c1"], "measure" => ["PHQ-9", "PHQ-9"], "score" => [20.0, 8.0]).unwrap();
        df.with_column(date).unwrap();
        let path = dir.path().join(name);
        ParquetWriter::new(fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        path
    };
    // 2024-01-01 and 2024-03-01 as days of the Unix epoch.
    let days = Column::new("date".into(), [19723i32, 19783]).cast(&DataType::Date).unwrap();
    let out = analyze(&write("dates.parquet", days), &[]);
    let episodes = read_csv(&out.path().join("episodes.csv"));
    let e = episode(&episodes, "c1", "PHQ9");
    assert_eq!((e["first_date"].as_str(), e["last_date"].as_str()), ("2024-01-01", "2024-03-01"));
    let zone = TimeZone::opt_try_new(Some("Europe/London")).unwrap();
    let stamps = Series::new("date".into(), [19723i64 * 86_400_000, 19783 * 86_400_000])
        .into_datetime(TimeUnit::Milliseconds, zone);
    let zoned = write("zoned.parquet", Column::from(stamps));
    assert_input_refused(&zoned, &["zoned.parquet", "column `date`", "time zone Europe/London", "as dates"]);
    // UTC needs no zone database: its midnights are those days (pandas' `utc=True`).
    let utc = |stamps: [i64; 2]| {
        let zone = TimeZone::opt_try_new(Some("UTC")).unwrap();
        Column::from(Series::new("date".into(), stamps).into_datetime(TimeUnit::Milliseconds, zone))
    };
    let out = analyze(&write("utc.parquet", utc([19723 * 86_400_000, 19783 * 86_400_000])), &[]);
    let e = episode(&read_csv(&out.path().join("episodes.csv")), "c1", "PHQ9").clone();
    assert_eq!((e["first_date"].as_str(), e["last_date"].as_str()), ("2024-01-01", "2024-03-01"));
    // An instant with a time of day is a day only where the practice is: refused, by row.
    let evening = write("evening.parquet", utc([19723 * 86_400_000, 19782 * 86_400_000 + 23 * 3_600_000]));
    assert_input_refused(&evening, &["evening.parquet", "row 2 of column `date`", "2024-02-29 23:00:00", "UTC"]);
    let lists = Series::new("date".into(), [Series::new("".into(), [19723i32]), Series::new("".into(), [19783i32])]);
    let listed = write("listed.parquet", Column::from(lists));
    assert_input_refused(&listed, &["listed.parquet", "column `date` holds lists", "Nothing was written"]);
}

/// Contract columns are screened while rows are validated in parallel ranges; an
/// identifier late in the file must still be found, on the right line.
#[test]
fn identifiers_in_a_key_column_are_found_in_any_range_of_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measurements.csv");
    let mut text = String::from("client_id,date,measure,score\n");
    for i in 0..40 {
        let client = if i == 29 { "jo.bloggs@example.org".to_string() } else { format!("c{}", i / 4) };
        text.push_str(&format!("{client},2024-01-{:02},PHQ9,{}\n", i % 28 + 1, i % 20));
    }
    fs::write(&path, text).unwrap();
    assert_input_refused(&path, &["`client_id`", "e-mail addresses", "line 31"]);
}

#[test]
fn a_column_of_email_addresses_is_refused() {
    assert_refused("with_email.csv", &["`contact`", "e-mail addresses", "line 3", "anonymized"]);
}

#[test]
fn a_column_with_a_phone_number_is_refused() {
    assert_refused("with_phone.csv", &["`ref`", "phone numbers", "line 4"]);
}

#[test]
fn personal_names_as_client_keys_are_refused() {
    assert_refused("with_name_as_key.csv", &["`client_id`", "personal names"]);
}

#[test]
fn a_date_of_birth_column_is_refused_by_its_name() {
    assert_refused("with_dob_header.csv", &["`Date of Birth`"]);
}

#[test]
fn a_missing_required_column_is_named() {
    assert_refused("missing_measure_column.csv", &["`measure`", "requires"]);
}

#[test]
fn an_unclosed_quote_is_refused_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measurements.csv");
    // A quoted value spanning lines is fine; the one opened on line 5 never closes.
    let text = "client_id,date,measure,score,note\nc1,2024-01-01,PHQ9,10,\"two\nlines\"\n\
                c1,2024-02-01,PHQ9,9,\nc2,2024-01-01,PHQ9,12,\"open\nc2,2024-02-01,PHQ9,8,\n";
    fs::write(&path, text).unwrap();
    assert_input_refused(&path, &["measurements.csv", "line 5, column `note`", "never closed", "close it"]);
    // The file is CSV: the reminder of what a readable input is would mislead here.
    let out = dir.path().join("again");
    let mut run = cargo_bin_cmd!("sustain");
    run.args(["analyze", "--quiet", "--measurements"]).arg(&path).arg("--out").arg(&out);
    let stderr = String::from_utf8(run.output().unwrap().stderr).unwrap();
    assert!(!stderr.contains("it must be a CSV file"), "{stderr}");
}

#[test]
fn text_the_reader_cannot_take_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measurements.csv");
    let head = "client_id,date,measure,score\nc1,2024-01-01,PHQ9,10\n";
    // A malformed line is one rejected row, named by its line: a comma left unquoted
    // inside a value (one value too many), text after a closing quote, bytes that are
    // not UTF-8.
    let mut text =
        format!("{head}c1,2024-02-01,PHQ9,9\nc2,2024-01-01,PHQ,9,12\nc2,2024-01-01,\"PHQ\"9,12\n").into_bytes();
    text.extend(b"c3,2024-01-01,PHQ\xe9,3\nc3,2024-01-01,PHQ9,3\nc3,2024-02-01,PHQ9,3\nc4,2024-02-01,PHQ9,3\n");
    fs::write(&path, text).unwrap();
    let out = analyze(&path, &[]);
    let rejected: Vec<(String, String)> = read_csv(&out.path().join("rejected.csv"))
        .into_iter()
        .map(|r| (r["line"].clone(), r["code"].clone()))
        .collect();
    let want = [("4", "too_many_fields"), ("5", "badly_quoted"), ("6", "not_utf8")];
    assert_eq!(rejected, want.map(|(l, c)| (l.to_string(), c.to_string())));
    fs::write(&path, format!("{head}c2,2024-01-01,PHQ\09,12\n")).unwrap();
    assert_input_refused(&path, &["line 3 holds a NUL byte"]);
    fs::write(&path, b"PK\x03\x04\x00\x00 a spreadsheet").unwrap();
    assert_input_refused(&path, &["binary data", "spreadsheet or Parquet file"]);
    // Spreadsheet exports that are not comma-separated UTF-8 say what they are.
    let utf16: Vec<u8> = [0xff, 0xfe].into_iter().chain(head.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    fs::write(&path, utf16).unwrap();
    assert_input_refused(&path, &["measurements.csv", "it is UTF-16 text", "save it as CSV UTF-8"]);
    for (separator, name) in [(";", "semicolons"), ("\t", "tabs")] {
        fs::write(&path, head.replace(',', separator)).unwrap();
        assert_input_refused(&path, &["measurements.csv", &format!("looks separated by {name}, not commas")]);
    }
}

#[test]
fn an_unreadable_file_is_refused_without_a_panic() {
    assert_refused("not_a_table.csv", &["cannot read"]);
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--measurements", "no/such/file.csv"])
        .assert()
        .code(2)
        .stderr(contains("no/such/file.csv"));
}

#[test]
fn the_same_input_gives_byte_identical_output() {
    let a = analyze(&fixture("small_clinic.csv"), &["--goals", fixture("small_goals.csv").to_str().unwrap()]);
    let b = analyze(&fixture("small_clinic.csv"), &["--goals", fixture("small_goals.csv").to_str().unwrap()]);
    for f in ["episodes.csv", "rejected.csv", "summary.json", "report.html"] {
        assert_eq!(fs::read(a.path().join(f)).unwrap(), fs::read(b.path().join(f)).unwrap(), "{f}");
    }
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

/// Two goals that name each other as parent goals are rejected with their lines; the
/// episode keeps its other goals. Both used to be objectives and neither a goal, so they
/// dropped out of the episode's goal counts without a word.
#[test]
fn goals_that_are_each_others_parents_are_rejected_with_their_lines() {
    let out = analyze_small_clinic_with_goals(
        "client_id,episode_id,goal_id,parent_goal_id,date,phase,scale,rating\n\
         A,1,G1,,2024-01-08,assessment,GBO,2\n\
         A,1,G2,G3,2024-01-08,assessment,GBO,3\n\
         A,1,G3,G2,2024-01-08,assessment,GBO,4\n\
         A,1,G1,,2024-01-22,end,GBO,7\n",
    );
    let rejected = read_csv(&out.path().join("rejected.csv"));
    let got: Vec<(&str, &str, &str)> =
        rejected.iter().map(|r| (r["line"].as_str(), r["column"].as_str(), r["code"].as_str())).collect();
    assert_eq!(got, [("3", "parent_goal_id", "parent_cycle"), ("4", "parent_goal_id", "parent_cycle")]);
    let s = read_json(&out.path().join("summary.json"));
    assert_eq!([&s["inputs"]["goals"]["rows_read"], &s["inputs"]["goals"]["rows_rejected"]], [4, 2]);
    let goals = read_csv(&out.path().join("goals.csv"));
    assert_eq!(goals.iter().map(|g| g["goal_id"].as_str()).collect::<Vec<_>>(), ["G1"]);
    let ep = &read_csv(&out.path().join("goals_episodes.csv"))[0];
    assert_eq!(ep["gbo_goals"], "1");
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
fn keys_that_look_like_markup_or_formulas_come_out_inert() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.csv");
    fs::write(
        &input,
        "client_id,therapist_id,site_id,date,measure,score\n\
         \"<script>alert(1)</script>\",=cmd|' /C calc'!A0,\"\"\"quoted\"\"\",2024-01-01,PHQ9,15\n\
         \"<script>alert(1)</script>\",=cmd|' /C calc'!A0,\"\"\"quoted\"\"\",2024-02-01,PHQ9,5\n\
         c2,@SUM(A1),s,2024-01-01,<b>PHQ9</b>,3\n",
    )
    .unwrap();
    let out = analyze(&input, &[]);
    let eps = fs::read_to_string(out.path().join("episodes.csv")).unwrap();
    assert!(eps.contains("'=cmd|"), "{eps}");
    assert!(!eps.contains(",=cmd"), "{eps}");
    let rejected = fs::read_to_string(out.path().join("rejected.csv")).unwrap();
    assert!(rejected.contains("'<b>PHQ9</b>'"), "the bad measure is quoted in the reason: {rejected}");
    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>"), "no markup from the data reaches the report");
    let md = fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(!md.contains("<script>") && !md.contains("<b>"), "nor the Markdown report");
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

#[test]
fn fhir_observations_import_into_a_table_that_analyze_reads() {
    let dir = tempfile::tempdir().unwrap();
    let obs = |patient: u32, date: &str, code: &str, value: u32, status: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"{status}","code":{{"coding":[{{"system":"http://loinc.org","code":"{code}"}}]}},"subject":{{"reference":"Patient/{patient}","display":"A Name"}},"performer":[{{"reference":"Practitioner/7"}}],"effectiveDateTime":"{date}T10:00:00+00:00","valueQuantity":{{"value":{value},"unit":"{{score}}"}}}}"#
        )
    };
    let mut lines = vec![r#"{"resourceType":"Patient","id":"1","name":[{"family":"Example"}]}"#.to_string()];
    // Patient 1 goes from 18 to 6 on the PHQ-9 (recovered), patient 2 from 15 to 14;
    // the GAD-7 by its SNOMED CT code; one preliminary result.
    for (week, (a, b)) in [(18, 15), (12, 15), (6, 14)].into_iter().enumerate() {
        let date = format!("2024-01-{:02}", 1 + 7 * week);
        lines.push(obs(1, &date, "44261-6", a, "final"));
        lines.push(obs(2, &date, "44261-6", b, "amended"));
    }
    lines.push(obs(1, "2024-01-01", "445455005", 12, "final").replace("http://loinc.org", "http://snomed.info/sct"));
    lines.push(obs(2, "2024-01-22", "44261-6", 3, "preliminary"));
    let input = dir.path().join("export.ndjson");
    fs::write(&input, lines.join("\n")).unwrap();
    let key = dir.path().join("key");
    fs::write(&key, "9f2c4e1a7b3d5f60c8e2a4b6d8f0a1c3\n").unwrap();
    let out = dir.path().join("clinic");
    let import = |out: &Path, key: &Path| {
        let mut cmd = cargo_bin_cmd!("sustain");
        cmd.args(["import-fhir", "--quiet"]).arg(&input).arg("--key-file").arg(key).arg("--out").arg(out);
        cmd
    };
    import(&out, &key).assert().success();
    let rows = read_csv(&out.join("measurements.csv"));
    assert_eq!(rows.len(), 7, "six PHQ-9 scores and one GAD-7");
    let text = fs::read_to_string(out.join("measurements.csv")).unwrap();
    assert!(!text.contains("Patient") && !text.contains("Name") && !text.contains("Practitioner"), "{text}");
    let rejected: Vec<(String, String)> = read_csv(&out.join("import_rejected.csv"))
        .into_iter()
        .map(|r| (r["record"].clone(), r["reason"].clone()))
        .collect();
    assert_eq!(rejected, [("1".into(), "not_an_observation".into()), ("9".into(), "status_not_final".into())]);
    // The same key gives the same pseudonyms; the table analyses like any other.
    let again = dir.path().join("again");
    import(&again, &key).assert().success();
    assert_eq!(fs::read_to_string(again.join("measurements.csv")).unwrap(), text);
    let result = analyze(&out.join("measurements.csv"), &[]);
    let episodes = read_csv(&result.path().join("episodes.csv"));
    let first = &rows[0]["client_id"];
    let e = episodes.iter().find(|e| &e["client_id"] == first && e["measure"] == "PHQ9").unwrap();
    assert_eq!((e["baseline"].as_str(), e["final"].as_str(), e["outcome"].as_str()), ("18", "6", "recovered"));
    assert_eq!(e["therapist_id"], rows[0]["therapist_id"]);
    // An import never replaces a table, and a short key is refused.
    import(&out, &key).assert().code(2).stderr(contains("already holds measurements.csv"));
    fs::write(&key, "short").unwrap();
    import(&dir.path().join("third"), &key).assert().code(2).stderr(contains("fewer than 16 bytes"));
    assert!(!dir.path().join("third").exists(), "nothing written");
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

#[test]
fn no_aggregate_table_shows_a_count_below_the_threshold() {
    let d = demo("300", "2");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &[]);
    for file in ["therapists.csv", "sites.csv", "trends.csv"] {
        let rows = read_csv(&out.path().join(file));
        assert!(!rows.is_empty(), "{file}");
        for r in &rows {
            for (col, v) in r {
                let is_count = col.ends_with("_n")
                    || col.ends_with("_of")
                    || ["episodes", "in_treatment", "paired", "at_caseness", "caseload"].contains(&col.as_str());
                if is_count {
                    assert!(v == "*" || v.parse::<u64>().unwrap() >= 5, "{file} {col} = {v}");
                }
            }
            if r.get("reliable_recovery_n").is_some_and(|v| v == "*") {
                assert_eq!(r["reliable_recovery_rate"], "*", "{file}: a rate on a suppressed count is withheld");
            }
        }
    }
    // summary.json too: every count of people or episodes is suppressed or at least 5.
    fn walk(v: &serde_json::Value, key: &str) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, c) in m {
                    if ![
                        "rows_read",
                        "rows_used",
                        "rows_rejected",
                        "inputs",
                        "rejections_by_reason",
                        "options",
                        "rule",
                        "df",
                        // How many therapists or sites a model has: not people.
                        "units",
                        // The extract date and inactivity limit: settings.
                        "extract",
                    ]
                    .contains(&k.as_str())
                    {
                        walk(c, k);
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| walk(c, key)),
            serde_json::Value::Number(n) if n.is_u64() => assert!(n.as_u64().unwrap() >= 5, "summary.json {key} = {n}"),
            _ => {}
        }
    }
    walk(&read_json(&out.path().join("summary.json")), "");
    // The threshold is configurable; with rounding every shown count is a multiple of 5.
    let rounded =
        analyze_on("2027-01-01", &d.path().join("measurements.csv"), &["--suppress-below", "10", "--round-to", "5"]);
    for r in read_csv(&rounded.path().join("therapists.csv")) {
        let v = &r["episodes"];
        assert!(v == "*" || v.parse::<u64>().unwrap() % 5 == 0, "{v}");
    }
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

#[test]
fn png_charts_are_written_on_request() {
    let d = demo("300", "1");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &["--png"]);
    let jacobson = fs::read(out.path().join("charts/jacobson.png")).unwrap();
    assert!(jacobson.starts_with(b"\x89PNG\r\n\x1a\n") && jacobson.len() > 10_000);
    let plain = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &[]);
    assert!(!plain.path().join("charts").exists(), "PNGs only when asked");
}

/// An unknown `--client` is refused before any work is done, and leaves nothing behind.
#[test]
fn an_unknown_client_is_refused_and_leaves_nothing_behind() {
    let d = demo("60", "5");
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("reports");
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2027-01-01", "--client", "no-such-client"])
        .arg(d.path())
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(contains("no-such-client"));
    assert!(!out.exists(), "no output folder");
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0, "no staging folder either");
}

/// Every table is staged before the files are moved into place; a failure then (here
/// `charts` in the output folder is a file, so the PNG charts cannot go in) leaves the
/// earlier run's results as they were and no staging folder.
#[test]
fn a_run_that_fails_after_staging_every_table_leaves_nothing_behind() {
    let d = demo("60", "5");
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("reports");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("episodes.csv"), "an earlier run's").unwrap();
    fs::write(out.join("charts"), "not a folder").unwrap();
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--png", "--today", "2027-01-01"])
        .arg(d.path())
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1)
        .stderr(contains("charts"));
    assert_eq!(fs::read_to_string(out.join("charts")).unwrap(), "not a folder");
    assert_eq!(fs::read_to_string(out.join("episodes.csv")).unwrap(), "an earlier run's");
    assert_eq!(fs::read_dir(&out).unwrap().count(), 2, "no new result left in the folder");
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 1, "no staging folder left beside it");
}

/// An output path that is a file, or an output folder holding an input table, is refused
/// before anything is read: run into its own input folder, a run replaced the goals
/// table with its `goals.csv` result.
#[test]
fn an_output_folder_that_is_a_file_or_holds_the_input_is_refused() {
    let d = demo("60", "5");
    let run = |input: &[&std::ffi::OsStr], out: &Path| {
        cargo_bin_cmd!("sustain")
            .args(["analyze", "--quiet", "--today", "2027-01-01"])
            .args(input)
            .arg("--out")
            .arg(out)
            .assert()
    };
    let dir = [d.path().as_os_str()];
    let goals = fs::read(d.path().join("goals.csv")).unwrap();
    for out in [d.path().to_path_buf(), d.path().join(".")] {
        run(&dir, &out).code(2).stderr(contains("holds the input table").and(contains("measurements.csv")));
    }
    assert_eq!(fs::read(d.path().join("goals.csv")).unwrap(), goals, "the goals table is untouched");
    assert_eq!(fs::read_dir(d.path()).unwrap().count(), 3, "nothing written beside the input");
    run(&dir, &d.path().join("truth.csv")).code(2).stderr(contains("is a file"));
    // Nor into a folder of part files.
    let parts = d.path().join("parts");
    fs::create_dir(&parts).unwrap();
    fs::copy(d.path().join("measurements.csv"), parts.join("part-0.csv")).unwrap();
    run(&["--measurements".as_ref(), parts.as_os_str()], &parts).code(2).stderr(contains("holds the input table"));
    assert_eq!(fs::read_dir(&parts).unwrap().count(), 1);
    fs::remove_dir_all(&parts).unwrap();
    // A folder inside the input folder is the output's own.
    let out = d.path().join("reports");
    run(&dir, &out).success();
    assert!(out.join("goals.csv").exists());
}

/// Option values outside what a method defines are refused by name (exit 2), not
/// carried into an analysis: an alpha of 2 and a percentile of 150 panicked there.
#[test]
fn out_of_range_options_are_refused_before_any_work() {
    let d = demo("60", "5");
    for flags in [
        &["--sg-alpha", "2"][..],
        &["--etr-percentile", "150"],
        &["--sg-pct", "NaN"],
        &["--from", "2026-01-01", "--to", "2025-01-01"],
        &["--sg-no-crit1", "--sg-no-crit2", "--sg-no-crit3"],
    ] {
        let parent = tempfile::tempdir().unwrap();
        let out = parent.path().join("reports");
        cargo_bin_cmd!("sustain")
            .args(["analyze", "--quiet", "--today", "2027-01-01"])
            .args(flags)
            .arg(d.path())
            .arg("--out")
            .arg(&out)
            .assert()
            .code(2)
            .stderr(contains(flags[0]));
        assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0, "{flags:?}: nothing written");
    }
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

/// The report's Jacobson plot of a measure with fewer paired episodes than the
/// suppression threshold is left out, as the other charts are: its caption gave the count
/// ("3 paired PHQ9 episodes") that the tables show as "<5".
#[test]
fn a_chart_of_too_few_episodes_is_left_out_of_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    let mut text = String::from("client_id,date,measure,score\n");
    for (c, a, b) in [("A", 20, 20), ("B", 15, 4), ("C", 6, 18)] {
        text.push_str(&format!("{c},2025-01-01,PHQ-9,{a}\n{c},2025-02-01,PHQ-9,{b}\n"));
    }
    fs::write(&path, text).unwrap();
    let report = |d: &tempfile::TempDir| fs::read_to_string(d.path().join("report.html")).unwrap();
    let suppressed = analyze_on("2025-06-01", &path, &["--as-of", "2025-06-01"]);
    assert!(!report(&suppressed).contains("Jacobson plot of"), "left out under the default threshold");
    let shown = analyze(&path, &[]);
    assert!(report(&shown).contains("The Jacobson plot of 3 finished PHQ9 episodes"), "shown with suppression off");
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

/// The two-sided 5 % critical value, qnorm(0.975).
fn z_975() -> f64 {
    1.959_963_984_540_054
}
