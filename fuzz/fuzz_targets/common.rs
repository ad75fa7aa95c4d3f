//! What every reader target does: write the input where the reader expects a file, read it
//! as both tables, and check that every record was either used or rejected. A refusal
//! (an error) is a fine outcome; a panic, an abort or a hang is a finding.

use std::path::PathBuf;
use sustain::domain::columns::Table;
use sustain::domain::dates::parse_iso_date;
use sustain::domain::registry::Registry;
use sustain::input::ingest::{self, TableReader};
use sustain::input::validate::DateRules;

/// A file of this process's own in memory-backed storage where there is one.
fn scratch(extension: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    dir.join(format!("sustain-fuzz-{}.{extension}", std::process::id()))
}

/// polars 0.55 panics on some damaged Parquet files where it should return an error
/// (polars-parquet's "thrift bool field", polars-arrow's `todo!` for some embedded
/// schemas); sustain turns such a panic into the file's refusal (`damage_as_error`).
/// libFuzzer's panic hook aborts at any panic, before that can happen, so panics raised
/// inside polars unwind to sustain's handler; a panic sustain does not catch still ends
/// the run (libfuzzer-sys catches it at the target), and every other panic aborts here.
fn let_known_upstream_panics_through() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("/polars-")) {
                fuzzer_hook(info);
            }
        }));
    });
}

pub fn read_both(data: &[u8], extension: &str) {
    let_known_upstream_panics_through();
    let path = scratch(extension);
    std::fs::write(&path, data).expect("the scratch file can be written");
    let dates = DateRules::iso(parse_iso_date("2026-01-01").expect("a valid date"));
    let registry = Registry::builtin();
    if let Ok(mut reader) = TableReader::open(&path, Table::Measurements) {
        if let Ok((rows, rejected)) = ingest::measurements(&mut reader, &registry, dates) {
            assert_eq!(rows.len() as u64 + rejected.len() as u64, reader.records_read(), "rows lost");
        }
    }
    if let Ok(mut reader) = TableReader::open(&path, Table::Goals) {
        // A small budget, so that the temporary-file path is fuzzed as well.
        let _ = ingest::goals(&mut reader, dates, 64);
    }
    let _ = std::fs::remove_file(&path);
}
