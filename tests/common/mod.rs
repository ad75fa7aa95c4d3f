//! Helpers shared by the end-to-end test files.

use assert_cmd::cargo::cargo_bin_cmd;
use std::collections::HashMap;
use std::path::Path;

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
