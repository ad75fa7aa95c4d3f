//! Properties of a whole run on generated measurement tables: every row is used or
//! rejected, neither the order of the columns nor the order of the rows changes a result,
//! and the same table as CSV or as Parquet gives the same results.

mod common;

use common::{analyze, read_json};
use proptest::prelude::*;
use std::fs;

/// One generated row: client, episode, session, score; `bad` rows break one rule each.
#[derive(Debug, Clone)]
enum Line {
    Good { client: u8, episode: u8, session: u8, score: u8 },
    BadScore { client: u8 },
    FutureDate { client: u8 },
    Empty,
}

const HEADER: [&str; 6] = ["client_id", "episode_id", "date", "session", "measure", "score"];

impl Line {
    /// The row's values in [`HEADER`]'s order.
    fn values(&self) -> [String; 6] {
        let s = |v: &str| v.to_string();
        match *self {
            // One session a week from 2024-01-01; the session decides the date, so that a
            // series' order is the same whichever order its rows come in.
            Line::Good { client, episode, session, score } => [
                format!("C{client}"),
                format!("{episode}"),
                format!("2024-{:02}-{:02}", 1 + (session as u32 * 7) / 28, 1 + (session as u32 * 7) % 28),
                format!("{session}"),
                s("PHQ-9"),
                format!("{score}"),
            ],
            Line::BadScore { client } => [format!("C{client}"), s("1"), s("2024-03-01"), s("9"), s("PHQ-9"), s("x")],
            Line::FutureDate { client } => [format!("C{client}"), s("1"), s("2031-01-01"), s("9"), s("PHQ-9"), s("10")],
            Line::Empty => Default::default(),
        }
    }
}

/// Good rows (each client, episode and session at most once) and a few bad ones.
fn table() -> impl Strategy<Value = Vec<Line>> {
    let good = proptest::collection::btree_map((0u8..6, 1u8..3, 0u8..8), 0u8..=27, 4..40).prop_map(|m| {
        m.into_iter()
            .map(|((client, episode, session), score)| Line::Good { client, episode, session, score })
            .collect::<Vec<_>>()
    });
    let bad = proptest::collection::vec(
        prop_oneof![
            (0u8..6).prop_map(|client| Line::BadScore { client }),
            (0u8..6).prop_map(|client| Line::FutureDate { client }),
            Just(Line::Empty),
        ],
        0..3,
    );
    (good, bad).prop_map(|(mut good, bad)| {
        good.extend(bad);
        good
    })
}

/// The table as CSV with its columns in `order` (a permutation of the header's indices).
fn csv(lines: &[Line], order: &[usize]) -> String {
    let mut out = order.iter().map(|&c| HEADER[c]).collect::<Vec<_>>().join(",") + "\n";
    for line in lines {
        let v = line.values();
        out += &(order.iter().map(|&c| v[c].as_str()).collect::<Vec<_>>().join(",") + "\n");
    }
    out
}

/// The table as Parquet: every column text, or (`typed`) the session and score whole
/// numbers where every row's are (as a database export would hold them).
fn parquet(lines: &[Line], path: &std::path::Path, typed: bool) {
    use polars::prelude::*;
    let rows: Vec<[String; 6]> = lines.iter().map(Line::values).collect();
    let columns: Vec<Column> = HEADER
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let text: Vec<&str> = rows.iter().map(|r| r[c].as_str()).collect();
            let whole: Option<Vec<i64>> = text.iter().map(|v| v.parse().ok()).collect();
            match whole {
                Some(whole) if typed && (*name == "session" || *name == "score") => Column::new((*name).into(), whole),
                _ => Column::new((*name).into(), text),
            }
        })
        .collect();
    let mut df = DataFrame::new(rows.len(), columns).unwrap();
    ParquetWriter::new(fs::File::create(path).unwrap()).finish(&mut df).unwrap();
}

/// How the generated table is written for a run.
#[derive(Debug, Clone, Copy)]
enum Form {
    Csv,
    ParquetText,
    ParquetTyped,
}

/// Every result file of a run (but the report, which shows the run's date and paths).
fn results(lines: &[Line], order: &[usize]) -> Vec<(String, String)> {
    results_of(lines, order, Form::Csv)
}

/// [`results`] of the table written as `form`. `rejected.csv` is left out for Parquet,
/// whose "line" is the row number (the header is no line).
fn results_of(lines: &[Line], order: &[usize], form: Form) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = match form {
        Form::Csv => dir.path().join("measurements.csv"),
        Form::ParquetText | Form::ParquetTyped => dir.path().join("measurements.parquet"),
    };
    match form {
        Form::Csv => fs::write(&path, csv(lines, order)).unwrap(),
        Form::ParquetText => parquet(lines, &path, false),
        Form::ParquetTyped => parquet(lines, &path, true),
    }
    let out = analyze(&path, &[]);
    let mut files: Vec<(String, String)> = fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .filter(|p| matches!(form, Form::Csv) || !p.ends_with("rejected.csv"))
        // `rejected.csv` names the input file, which lies in a folder of its own each run.
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap().replace(&*path.to_string_lossy(), "INPUT");
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    let mut summary = read_json(&out.path().join("summary.json"));
    summary["inputs"] = serde_json::Value::Null;
    files.push(("summary.json".into(), summary.to_string()));
    files
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_row_is_used_or_rejected(lines in table()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        fs::write(&path, csv(&lines, &[0, 1, 2, 3, 4, 5])).unwrap();
        let s = read_json(&analyze(&path, &[]).path().join("summary.json"));
        let (read, used, rejected) =
            (s["rows_read"].as_u64().unwrap(), s["rows_used"].as_u64().unwrap(), s["rows_rejected"].as_u64().unwrap());
        prop_assert_eq!(read, lines.len() as u64);
        prop_assert_eq!(read, used + rejected);
        let bad = lines.iter().filter(|l| !matches!(l, Line::Good { .. })).count() as u64;
        prop_assert_eq!(rejected, bad);
    }

    #[test]
    fn the_order_of_the_columns_changes_no_result(lines in table(), order in Just(vec![0usize, 1, 2, 3, 4, 5]).prop_shuffle()) {
        prop_assert_eq!(results(&lines, &order), results(&lines, &[0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn the_order_of_good_rows_changes_no_episode(lines in table().prop_shuffle()) {
        // Bad rows keep their lines (rejected.csv names them); good rows come in any order.
        let good: Vec<Line> = lines.iter().filter(|l| matches!(l, Line::Good { .. })).cloned().collect();
        let mut sorted = good.clone();
        sorted.sort_by_key(|l| match *l {
            Line::Good { client, episode, session, .. } => (client, episode, session),
            _ => unreachable!("good rows only"),
        });
        let episodes = |lines: &[Line]| {
            results(lines, &[0, 1, 2, 3, 4, 5]).into_iter().find(|(name, _)| name == "episodes.csv").unwrap().1
        };
        prop_assert_eq!(episodes(&good), episodes(&sorted));
    }

    #[test]
    fn csv_and_parquet_give_the_same_results(lines in table(), typed in any::<bool>()) {
        let good_only: Vec<Line> = lines.iter().filter(|l| matches!(l, Line::Good { .. })).cloned().collect();
        let (lines, form) = if typed { (good_only, Form::ParquetTyped) } else { (lines, Form::ParquetText) };
        let csv = results_of(&lines, &[0, 1, 2, 3, 4, 5], Form::Csv);
        let csv: Vec<_> = csv.into_iter().filter(|(name, _)| name != "rejected.csv").collect();
        prop_assert_eq!(results_of(&lines, &[0, 1, 2, 3, 4, 5], form), csv);
    }
}
