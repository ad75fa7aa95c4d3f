//! What reading the input through the `csv` crate (csv-core, RFC 4180) would cost, for
//! BENCHMARKS.md: every record of each file split into fields as `ByteRecord`s, nothing
//! else, on one thread; with `--halves`, each file cut at the newline nearest its middle
//! and the halves read on two threads (the split sustain's blocks allow when no quoted
//! value holds a newline, as in the benchmark files); with `--ours`, the same split by
//! sustain's own `csv_records` on one thread (its path for text without quotes).
//! `cargo run --release --example csv_crate_read -- [--halves|--ours] FILE.csv...`

use std::time::Instant;

/// Records and fields in `bytes`, read by the csv crate.
fn read(bytes: &[u8]) -> (u64, u64) {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let (mut records, mut fields) = (0u64, 0u64);
    while reader.read_byte_record(&mut record).expect("readable CSV") {
        records += 1;
        fields += record.len() as u64;
    }
    (records, fields)
}

/// Records and fields in `bytes`, split by sustain's `csv_records`.
fn ours(bytes: &[u8]) -> (u64, u64) {
    use sustain::csv_records::{split_record, split_unquoted, Delimiters, QUOTE};
    let (mut records, mut fields, mut at) = (0u64, 0u64, 0);
    if memchr_quote(bytes, QUOTE) {
        while at < bytes.len() {
            at = split_record(bytes, at, |_, _, _| fields += 1).expect("every quote closed");
            records += 1;
        }
    } else {
        let mut delimiters = Delimiters::new(bytes, 0);
        while at < bytes.len() {
            at = split_unquoted(bytes, at, &mut delimiters, |_, _| fields += 1);
            records += 1;
        }
    }
    (records, fields)
}

fn memchr_quote(bytes: &[u8], quote: u8) -> bool {
    bytes.contains(&quote)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let halves = args.iter().any(|a| a == "--halves");
    let own = args.iter().any(|a| a == "--ours");
    let mut total = 0.0;
    for path in args.iter().filter(|a| !a.starts_with("--")) {
        let bytes = std::fs::read(path).expect("a readable file");
        let start = Instant::now();
        let (records, fields) = if halves {
            let middle = bytes.len() / 2;
            let cut = middle + bytes[middle..].iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
            let (a, b) = bytes.split_at(cut);
            let (x, y) = std::thread::scope(|s| {
                let x = s.spawn(|| read(a));
                (x.join().expect("a thread"), read(b))
            });
            (x.0 + y.0, x.1 + y.1)
        } else if own {
            ours(&bytes)
        } else {
            read(&bytes)
        };
        let took = start.elapsed().as_secs_f64();
        total += took;
        println!("{took:.3} s  {records} records, {fields} fields  {path}");
    }
    println!("{total:.3} s  {} (all files)", if own { "csv_records" } else { "csv crate" });
}
