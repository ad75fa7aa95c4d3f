//! The layers of `src/` as ARCHITECTURE.md draws them, checked on the source: each folder
//! names only the folders below it, and the method (domain, statistics, analyses, and the
//! row rules of the input) does no I/O and knows nothing of the command line or of polars. (One crate keeps the build
//! simple; this test is what makes the rule hold.)

use std::fs;
use std::path::Path;

/// Each folder and the folders of the crate it may name (besides itself).
const MAY_USE: &[(&str, &[&str])] = &[
    ("stats", &[]),
    ("domain", &["stats"]),
    ("analyses", &["domain", "stats"]),
    ("input", &["domain", "stats", "error"]),
    ("output", &["domain", "stats", "analyses", "error"]),
];

const FOLDERS: &[&str] = &["stats", "domain", "analyses", "input", "output", "app", "error", "tuning"];

/// What the method's folders never name: I/O, the process, the command line, polars.
const NOT_IN_THE_METHOD: &[&str] =
    &["std::fs", "std::env", "std::process", "std::net", "File::", "println!", "eprintln!", "polars", "clap", "libc"];

/// The file's path, and its code but for unit tests (which come last, after
/// `#[cfg(test)]`) and comments (which may name anything).
fn source(path: &Path) -> (String, String) {
    let text = fs::read_to_string(path).unwrap();
    let code = text.split("\n#[cfg(test)]").next().unwrap();
    let code: Vec<&str> = code.lines().map(|l| l.split("//").next().unwrap()).collect();
    (path.display().to_string(), code.join("\n"))
}

/// The non-test code of every `.rs` file under `dir`, with its path.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") && !path.ends_with("tests.rs") {
            let text = fs::read_to_string(&path).unwrap();
            // Unit tests come last in a file, after `#[cfg(test)]`.
            let code = text.split("\n#[cfg(test)]").next().unwrap();
            // Comments may name anything.
            let code: String = code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
            out.push((path.display().to_string(), code));
        }
    }
    out
}

#[test]
fn each_folder_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (folder, allowed) in MAY_USE {
        for (path, code) in sources(&src.join(folder)) {
            for other in FOLDERS.iter().filter(|f| *f != folder && !allowed.contains(f)) {
                if code.contains(&format!("crate::{other}")) {
                    wrong.push(format!("{path} names crate::{other}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_method_does_no_io_and_knows_no_command_line() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    let row_rules = ["input/validate.rs", "input/privacy.rs", "input/csv_records.rs"].map(|f| source(&src.join(f)));
    let method = ["stats", "domain", "analyses"].iter().flat_map(|folder| sources(&src.join(folder)));
    for (path, code) in method.chain(row_rules) {
        for name in NOT_IN_THE_METHOD.iter().filter(|n| code.contains(*n)) {
            wrong.push(format!("{path} names {name}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
