//! Helpers shared by the end-to-end test files.

// Each test file compiles this module on its own and uses only some of the helpers.
#![allow(dead_code)]

use assert_cmd::cargo::cargo_bin_cmd;
use predicates::str::contains;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

pub type Row = HashMap<String, String>;

/// A CSV file's rows as maps from column name to value.
pub fn read_csv(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| headers.iter().zip(rec.unwrap().iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect())
        .collect()
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `sustain demo` data of `clients` clients from `seed`, in a fresh folder.
pub fn demo(clients: &str, seed: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["demo", "--quiet", "--clients", clients, "--seed", seed, "--out"])
        .arg(dir.path())
        .assert()
        .success();
    dir
}

/// `sustain analyze` of `measurements` into a fresh folder with today fixed; succeeds.
pub fn analyze_on(today: &str, measurements: &Path, extra: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", today, "--measurements"])
        .arg(measurements)
        .arg("--out")
        .arg(out.path())
        .args(extra)
        .assert()
        .success();
    out
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Runs `sustain analyze` on a measurements file into a fresh folder, with today fixed
/// at 2025-06-01 (the fixtures' dates are before it); counts are exact (no `--publish`),
/// as these tests compare them on tiny fixtures. The fixtures are finished studies:
/// the extract date is today, so that every episode has ended (tests/live_export.rs
/// tests exports with episodes still open).
pub fn analyze(measurements: &Path, extra: &[&str]) -> tempfile::TempDir {
    let mut args = vec!["--as-of", "2025-06-01"];
    args.extend_from_slice(extra);
    analyze_on("2025-06-01", measurements, &args)
}

/// [`analyze`] of the small clinic with `goals` (CSV text) as its goals table.
pub fn analyze_small_clinic_with_goals(goals: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("goals.csv");
    fs::write(&path, goals).unwrap();
    analyze(&fixture("small_clinic.csv"), &["--goals", path.to_str().unwrap()])
}

pub fn episode<'a>(rows: &'a [Row], client: &str, measure: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["client_id"] == client && r["measure"] == measure)
        .unwrap_or_else(|| panic!("no episode for {client} {measure}"))
}

pub fn assert_refused(file: &str, message_parts: &[&str]) {
    assert_input_refused(&fixture(file), &[&[file], message_parts].concat());
}

/// Runs `analyze` on `input` into a fresh folder: refused with exit code 2, each part in
/// the message, and nothing written (no output folder, no partial one).
pub fn assert_input_refused(input: &std::path::Path, message_parts: &[&str]) {
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
