//! The parse floor for the benchmark: the time polars alone takes to read a file into a
//! DataFrame (types inferred, no validation, no analysis). With `--text`, every column
//! is read as text: the form `sustain` validates (it splits CSV text itself now, but the
//! floor stays polars' parse, as the performance issue defines it).
//! `cargo run --release --example parse_floor -- [--text] FILE...`

use polars::prelude::*;
use std::time::Instant;

fn main() -> PolarsResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = args.iter().any(|a| a == "--text");
    let files: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    assert!(!files.is_empty(), "usage: parse_floor [--text] FILE.csv|FILE.parquet...");
    let mut total = 0.0;
    for path in files {
        let start = Instant::now();
        let df = if path.ends_with(".parquet") {
            ParquetReader::new(std::fs::File::open(path)?).finish()?
        } else {
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(if text { Some(0) } else { Some(100) })
                .try_into_reader_with_file_path(Some(path.into()))?
                .finish()?
        };
        let took = start.elapsed().as_secs_f64();
        total += took;
        println!("{took:.3} s  {} rows  {path}", df.height());
    }
    println!("{total:.3} s  floor (all files)");
    Ok(())
}
