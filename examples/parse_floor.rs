//! The parse floor for the benchmark: the time polars alone takes to read a
//! measurements file into a DataFrame (types inferred, no validation, no analysis).
//! `cargo run --release --example parse_floor -- FILE`

use polars::prelude::*;
use std::time::Instant;

fn main() -> PolarsResult<()> {
    let path = std::env::args().nth(1).expect("usage: parse_floor FILE.csv|FILE.parquet");
    let start = Instant::now();
    let df = if path.ends_with(".parquet") {
        ParquetReader::new(std::fs::File::open(&path)?).finish()?
    } else {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.clone().into()))?
            .finish()?
    };
    println!("{:.3} s  {} rows  {}", start.elapsed().as_secs_f64(), df.height(), path);
    Ok(())
}
