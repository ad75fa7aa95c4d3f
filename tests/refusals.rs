//! Input and options that are refused (exit codes, nothing left behind) and rows that are
//! rejected with their lines, through the binary.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{
    analyze, analyze_small_clinic_with_goals, assert_input_refused, assert_refused, demo, episode, fixture, read_csv,
    read_json,
};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use std::fs;
use std::path::Path;

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
