//! What every reader target does: write the input where the reader expects a file, read it
//! as both tables, and check that every record was either used or rejected. A refusal
//! (an error) is a fine outcome; a panic, an abort or a hang is a finding.

use sustain::domain::columns::Table;
use sustain::domain::dates::parse_iso_date;
use sustain::domain::registry::Registry;
use sustain::input::ingest::{self, TableReader};
use sustain::input::validate::DateRules;
use std::path::PathBuf;

/// A file of this process's own in memory-backed storage where there is one.
fn scratch(extension: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    dir.join(format!("sustain-fuzz-{}.{extension}", std::process::id()))
}

pub fn read_both(data: &[u8], extension: &str) {
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
