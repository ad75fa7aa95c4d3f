//! The library's error type. Every message names the file and says what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {detail}\nit must be a CSV file (UTF-8, comma-separated, with a header row) or a Parquet file")]
    Unreadable { path: PathBuf, detail: String },

    #[error("cannot read {path}: column `{column}` holds {kind}, which sustain cannot read or screen for identifiers\nwrite the column as text, numbers or dates, or leave it out of the file; then run again. Nothing was written")]
    UnreadableColumn { path: PathBuf, column: String, kind: &'static str },

    #[error("cannot read {path}: line {line}{column}: a quoted value is never closed (a `\"` without its closing `\"`)\nclose it, or write a quote inside a quoted value as `\"\"`; then run again. Nothing was written")]
    UnclosedQuote { path: PathBuf, line: u64, column: String },

    #[error("{path} is neither .csv nor .parquet; rename it or convert it")]
    UnknownFormat { path: PathBuf },

    #[error("{path} has no `{column}` column, which the {table} table requires; add it, or rename the column that holds it (names are matched case-insensitively)")]
    MissingColumn { path: PathBuf, column: &'static str, table: &'static str },

    #[error("cannot read {path}: column `{column}` holds timestamps in time zone {zone}, whose calendar day depends on a zone database sustain does not carry\nwrite it as dates (or as text YYYY-MM-DD) in the practice's own time zone; then run again. Nothing was written")]
    ZonedDates { path: PathBuf, column: String, zone: String },

    #[error("cannot read {path}: row {row} of column `{column}` is {value} in time zone {zone}, a time of day; which calendar day that was for the practice depends on the practice's own time zone\nwrite the column as dates (or as text YYYY-MM-DD) in the practice's own time zone; then run again. Nothing was written")]
    ZonedTimes { path: PathBuf, column: String, row: u64, value: String, zone: String },

    #[error("{path} has one column, whose name holds {separator}: the file looks separated by {separator}, not commas\nsave or export it as comma-separated CSV (UTF-8); then run again. Nothing was written")]
    NotCommaSeparated { path: PathBuf, separator: &'static str },

    #[error("{path} has two columns named `{column}` (names are matched case-insensitively); remove or rename one")]
    DuplicateColumn { path: PathBuf, column: String },

    #[error("{path}: column `{column}` looks like it holds {kind} (first at line {line}); inputs must be anonymized. Remove the column or replace its values with pseudonymous keys, then run again. Nothing was written")]
    Identifier { path: PathBuf, column: String, kind: &'static str, line: u64 },

    #[error("measure file {path}: {detail}")]
    MeasureFile { path: PathBuf, detail: String },

    #[error("no measurements file in {dir}: expected measurements.csv or measurements.parquet there, or pass --measurements FILE")]
    NoMeasurements { dir: PathBuf },

    #[error("give the input as a folder (`sustain analyze DIR`) or with --measurements FILE")]
    NoInput,

    #[error("{0}")]
    Usage(String),

    #[error("the output folder {out} holds the input table {input}: results written beside it (goals.csv among them, the name of an input table) would replace input or be read as input by the next run\ngive --out a folder of its own, for example {suggestion}. Nothing was read or written")]
    OutputHoldsInput { out: PathBuf, input: PathBuf, suggestion: PathBuf },

    #[error(
        "--out {out} is a file; give a folder for the results (it is created if missing). Nothing was read or written"
    )]
    OutputIsAFile { out: PathBuf },

    #[error("cannot use a temporary file for {what}: {source}\nlarge tables go through temporary files; set TMPDIR to a folder with room, or raise --memory-rows")]
    TemporaryFile {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Input that was refused (exit code 2) as opposed to a failure to write (1).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Write { .. } | Error::TemporaryFile { .. })
    }
}

pub type Result<T> = std::result::Result<T, Error>;
