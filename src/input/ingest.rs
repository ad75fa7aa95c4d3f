//! Reading the input tables: CSV text split into records as it is validated
//! ([`csv_records`], with csv-core), or Parquet row groups read by polars.
//! Either way validation gets each row's contract values and checks them itself, so that
//! a bad value rejects one row rather than the file: as text, except that a Parquet
//! column of numbers in a number column, or of dates in the date column, is handed over
//! typed ([`Number`], [`DateValue`]), with the outcome its text would have.
//!
//! Also here: matching headers case-insensitively, refusing files that carry direct
//! identifiers, and turning record indices into the file's line numbers.

use crate::domain::columns::Table;
use crate::error::{Error, Result};
use crate::input::csv_records::{self, BOM};
use crate::input::privacy::{header_is_identifier, ColumnScreen, IdentifierKind};
use crate::input::validate::{DateRules, DateValue, Number};
use memmap2::{Advice, Mmap, UncheckedAdvice};
use polars::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Contract columns of the measurements table: (name, required).
pub const MEASUREMENT_COLUMNS: &[(&str, bool)] = &[
    ("client_id", true),
    ("episode_id", false),
    ("therapist_id", false),
    ("site_id", false),
    ("date", true),
    ("session", false),
    ("phase", false),
    ("measure", true),
    ("score", true),
    ("episode_end", false),
];

/// Contract columns of the goals table: (name, required).
pub const GOAL_COLUMNS: &[(&str, bool)] = &[
    ("client_id", true),
    ("episode_id", false),
    ("goal_id", true),
    ("parent_goal_id", false),
    ("date", true),
    ("phase", false),
    ("scale", true),
    ("rating", true),
    ("weight", false),
    ("episode_end", false),
];

/// How many contract columns either table has.
const CONTRACT_WIDTH: usize = 10;

/// The measurements' number columns (session, score), as indices of [`MEASUREMENT_COLUMNS`].
const MEASUREMENT_NUMBERS: [usize; 2] = [5, 8];
/// The goals' number columns (rating, weight), as indices of [`GOAL_COLUMNS`].
const GOAL_NUMBERS: [usize; 2] = [7, 8];
/// The date column of either table.
const DATE_COLUMN: usize = 4;

/// Columns whose values are pseudonymous keys: a personal name there is never expected.
const KEY_COLUMNS: &[&str] = &["client_id", "episode_id", "therapist_id", "goal_id", "parent_goal_id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

/// One block of consecutive records of a table.
pub struct Block {
    pub n_rows: usize,
    /// The record index of the block's first row.
    pub first_record: u64,
    cells: Cells,
}

/// A block's values: CSV text split as it is validated, or Parquet columns read value by value.
enum Cells {
    Text {
        text: MappedText,
        /// Byte ranges of whole records, one per worker thread, each with the index (in
        /// the block) of its first record.
        ranges: Vec<csv_records::RecordRange>,
        /// What each field of a record is, in the header's order.
        slots: Arc<[Slot]>,
    },
    Columns {
        /// The contract columns, in the table's column order (`None` if not in the file).
        columns: Vec<Option<ColumnValues>>,
        /// Columns outside the contract, in [`TableReader::ignored`] order: screened for
        /// identifiers, otherwise unused.
        extra: Vec<ColumnValues>,
    },
}

/// A Parquet column as validation reads it. Whole and real numbers stay numbers: typed
/// in the number columns, elsewhere written as text one value at a time, exactly as
/// polars' cast writes them (`itoa`, `zmij`; casting whole columns made fresh string
/// arrays for every block, a tenth of a Parquet run's page faults). The date column's
/// dates stay days. Columns of other types are cast to text by polars.
#[derive(Clone)]
enum ColumnValues {
    Text(StringChunked),
    Int(Int64Chunked),
    Float(Float64Chunked),
    /// The contract's date column as day numbers, when every day is in [`TYPED_DAYS`].
    Day(Int32Chunked),
}

/// The days a date column is read as days for: years 0000 to 9999, which polars' cast
/// writes as `YYYY-MM-DD` (others it writes with a sign and more digits, which validation
/// refuses as text).
const TYPED_DAYS: std::ops::RangeInclusive<crate::domain::dates::Day> = -719_528..=2_932_896;

impl ColumnValues {
    fn of(col: &Column) -> PolarsResult<ColumnValues> {
        let text = |c: Column| -> PolarsResult<ColumnValues> { Ok(ColumnValues::Text(c.str()?.clone())) };
        // Dates stay day numbers (not written as text to be parsed back) unless a day is
        // outside the years whose text validation reads.
        let days = |c: Column| -> PolarsResult<ColumnValues> {
            let d = c.date()?.physical();
            match (d.min(), d.max()) {
                (Some(lo), Some(hi)) if !(TYPED_DAYS.contains(&lo) && TYPED_DAYS.contains(&hi)) => {
                    text(c.cast(&DataType::String)?)
                }
                _ => Ok(ColumnValues::Day(d.clone())),
            }
        };
        let is_date = || normalise_header(col.name()) == "date";
        match col.dtype() {
            DataType::Int64 => Ok(ColumnValues::Int(col.i64()?.clone())),
            // Narrower whole numbers as wide ones: the same values, and the same text.
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => Ok(ColumnValues::Int(col.cast(&DataType::Int64)?.i64()?.clone())),
            DataType::Float64 => Ok(ColumnValues::Float(col.f64()?.clone())),
            DataType::Date if is_date() => days(col.clone()),
            // A timestamp of the day a measure was taken stands for that day. (With a time
            // zone the day depends on the zone: a fixed offset's midnights were turned into
            // days before this, `zoned_days`; other zones refuse the file when it is opened,
            // `check_parquet_types`.)
            DataType::Datetime(_, None) if is_date() => days(col.cast(&DataType::Date)?),
            // Elsewhere (only screened), the instant without its zone: polars formats a
            // zoned timestamp only with the zone database.
            DataType::Datetime(unit, Some(_)) => {
                text(col.cast(&DataType::Datetime(*unit, None))?.cast(&DataType::String)?)
            }
            _ => text(col.cast(&DataType::String)?),
        }
    }

    /// Rows `range` of the column (zero-copy).
    fn slice(&self, range: &std::ops::Range<usize>) -> ColumnValues {
        let (at, n) = (range.start as i64, range.len());
        match self {
            ColumnValues::Text(c) => ColumnValues::Text(c.slice(at, n)),
            ColumnValues::Int(c) => ColumnValues::Int(c.slice(at, n)),
            ColumnValues::Float(c) => ColumnValues::Float(c.slice(at, n)),
            ColumnValues::Day(c) => ColumnValues::Day(c.slice(at, n)),
        }
    }
}

/// What a column of the file is to validation.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// The contract column at this index of the table's column list.
    Contract(usize),
    /// The column outside the contract at this index of [`TableReader::ignored`].
    Extra(usize),
}

/// A block's text: a range of the mapped file. When the block is done its pages leave
/// the process (they stay in the page cache): a mapped page counts in the resident set
/// once touched, and the whole file's would.
struct MappedText {
    map: Arc<Mmap>,
    range: std::ops::Range<usize>,
}

impl MappedText {
    fn bytes(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// Whether `bytes` hold any valid UTF-8 beyond ASCII (between the bytes that are not UTF-8).
fn has_utf8_beyond_ascii(bytes: &[u8]) -> bool {
    let mut at = 0;
    loop {
        match std::str::from_utf8(&bytes[at..]) {
            Ok(rest) => return !rest.is_ascii(),
            Err(e) => {
                if !bytes[at..at + e.valid_up_to()].is_ascii() {
                    return true;
                }
                at += e.valid_up_to() + e.error_len().unwrap_or(bytes.len() - at - e.valid_up_to());
            }
        }
    }
}

impl Drop for MappedText {
    fn drop(&mut self) {
        release(&self.map, self.range.clone());
    }
}

/// Takes the pages of `range` of a mapped file out of the process's resident set (they
/// stay in the page cache). Without it the resident set would grow by every page read.
fn release(map: &Mmap, range: std::ops::Range<usize>) {
    // SAFETY: the mapping is a read-only shared mapping of a file: dropping its pages only
    // means that a later read of them (the page a block shares with the next) maps them
    // again from the page cache, with the same bytes.
    let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, range.start, range.len()) };
}

/// A UTF-8 copy of `bytes` (a file in `encoding`) in a temporary file, mapped. Newlines,
/// quotes and commas are ASCII in both, so records and line numbers are those of the
/// original file.
fn decoded_copy(path: &Path, bytes: &[u8], encoding: &'static encoding_rs::Encoding) -> Result<Arc<Mmap>> {
    use std::io::Write;
    let failed = |e: std::io::Error| Error::TemporaryFile { what: "the decoded text", source: e };
    if bytes.is_empty() {
        return map_file(path);
    }
    let file = tempfile::tempfile().map_err(failed)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut buffer = vec![0u8; 1 << 20];
    for (i, chunk) in bytes.chunks(1 << 19).enumerate() {
        let last = (i + 1) * (1 << 19) >= bytes.len();
        let mut at = 0;
        loop {
            let (result, read, written, _) = decoder.decode_to_utf8(&chunk[at..], &mut buffer, last);
            out.write_all(&buffer[..written]).map_err(failed)?;
            at += read;
            if result == encoding_rs::CoderResult::InputEmpty {
                break;
            }
        }
    }
    out.flush().map_err(failed)?;
    drop(out);
    // SAFETY: the temporary file is this process's own, unlinked, and only read from now on.
    let map = unsafe { Mmap::map(&file) }.map_err(failed)?;
    Ok(Arc::new(map))
}

/// Maps a CSV file into memory. Reading through the mapping instead of into buffers saves
/// the kernel's copy of every byte (0.3–0.6 s of system time per 500 MB on the benchmark machine).
fn map_file(path: &Path) -> Result<Arc<Mmap>> {
    let file = File::open(path).map_err(|e| unreadable(path, e))?;
    // SAFETY: the file is only read. Like any program that maps its input (polars' own CSV
    // reader does), sustain assumes the file is not truncated or rewritten while it runs.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| unreadable(path, e))?;
    // Read front to back: the kernel reads ahead further.
    let _ = map.advise(Advice::Sequential);
    Ok(Arc::new(map))
}

/// The part of a block one worker validates.
#[derive(Debug, Clone)]
enum RowRange {
    /// Whole records of the text, and the index in the block of the first.
    Text { bytes: std::ops::Range<usize>, first: u64 },
    /// Rows of the columns.
    Rows(std::ops::Range<usize>),
}

impl Block {
    /// How many columns outside the contract the block holds.
    fn extra_columns(&self) -> usize {
        match &self.cells {
            Cells::Text { slots, .. } => slots.iter().filter(|s| matches!(s, Slot::Extra(_))).count(),
            Cells::Columns { extra, .. } => extra.len(),
        }
    }

    /// The block cut into one part per worker thread, in record order.
    fn ranges(&self) -> Vec<RowRange> {
        match &self.cells {
            Cells::Text { ranges, .. } => {
                ranges.iter().map(|(bytes, first)| RowRange::Text { bytes: bytes.clone(), first: *first }).collect()
            }
            Cells::Columns { .. } => row_ranges(self.n_rows).into_iter().map(RowRange::Rows).collect(),
        }
    }
}

/// Bytes of CSV text per block (about a million rows of a typical export). Only the text
/// of the block being validated is in memory, never the whole file's: the text columns
/// are several times larger than the typed rows they become.
const CSV_BLOCK_BYTES: usize = 48 << 20;
/// Rows per Parquet block (whole row groups are read, so a block may be larger). A quarter
/// of a million: a decoded block (string views and their buffers, two blocks in flight)
/// costs far more memory than its text would. With a million rows a block, the 10 M
/// benchmark's Parquet run peaked at 1.05 GiB; with a quarter million, at 0.7 GiB (the
/// CSV run's peak) and in the same time.
const PARQUET_BLOCK_ROWS: usize = 1 << 18;

/// Where a table's records come from: one file, or the part files of a folder (read in
/// the order of their names as one table, records numbered on across them).
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// The file or folder as given.
    pub path: PathBuf,
    pub format: Format,
    /// Each part file (one for a plain file) and the table-wide index of its first record.
    pub parts: Vec<(PathBuf, u64)>,
}

impl TableFiles {
    /// The part holding table-wide record `record`, and the record's index in that part.
    pub fn locate(&self, record: u64) -> (usize, u64) {
        let part = self.parts.partition_point(|(_, first)| *first <= record).saturating_sub(1);
        (part, record - self.parts.get(part).map_or(0, |p| p.1))
    }

    /// The file and line on which each record (table-wide, increasing) starts.
    pub fn lines(&self, records: &[u64]) -> Result<Vec<(usize, u64)>> {
        let located: Vec<(usize, u64)> = records.iter().map(|r| self.locate(*r)).collect();
        let mut out = Vec::with_capacity(records.len());
        for group in located.chunk_by(|a, b| a.0 == b.0) {
            let local: Vec<u64> = group.iter().map(|(_, r)| *r).collect();
            let lines = record_lines(&self.parts[group[0].0].0, self.format, &local)?;
            out.extend(lines.into_iter().map(|l| (group[0].0, l)));
        }
        Ok(out)
    }
}

/// The files of a table given as `path`: the file itself, or every `.csv` or every
/// `.parquet` file in the folder, in name order.
fn part_files(path: &Path) -> Result<(Format, Vec<PathBuf>)> {
    if !path.is_dir() {
        if !path.is_file() {
            return Err(unreadable(path, "no such file"));
        }
        return Ok((format_of(path)?, vec![path.to_path_buf()]));
    }
    let entries = std::fs::read_dir(path).map_err(|e| unreadable(path, e))?;
    let mut parts: Vec<(Format, PathBuf)> = Vec::new();
    for entry in entries {
        let p = entry.map_err(|e| unreadable(path, e))?.path();
        let hidden = p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if p.is_file() && !hidden {
            if let Ok(format) = format_of(&p) {
                parts.push((format, p));
            }
        }
    }
    parts.sort_by(|a, b| a.1.cmp(&b.1));
    let Some(format) = parts.first().map(|p| p.0) else {
        return Err(unreadable(path, "the folder holds no .csv or .parquet part files"));
    };
    if parts.iter().any(|p| p.0 != format) {
        return Err(unreadable(path, "the folder mixes CSV and Parquet part files; use one format"));
    }
    Ok((format, parts.into_iter().map(|p| p.1).collect()))
}

/// An input table opened for reading block by block.
pub struct TableReader {
    pub path: PathBuf,
    pub format: Format,
    /// Each contract column's header as written in the file (for messages).
    pub headers: BTreeMap<&'static str, String>,
    /// Columns not in the contract, ignored (named in a warning).
    pub ignored: Vec<String>,
    /// For each column of the file, in order: what it is to validation.
    slots: Arc<[Slot]>,
    /// The column names of the first part, which every other part must repeat.
    names: Vec<String>,
    /// The part file being read.
    source: Source,
    /// The part files still to come, the next one last.
    to_come: Vec<PathBuf>,
    files: TableFiles,
    /// Records read so far.
    records: u64,
    /// About how many records the table holds (see [`TableReader::estimated_rows`]).
    estimated_rows: u64,
    block_bytes: usize,
    block_rows: usize,
    encoding: Encoding,
}

/// The character encoding of a CSV table (`--encoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    #[default]
    Utf8,
    /// Windows' Western European code page, as older Windows programs save "CSV": read
    /// through a UTF-8 copy in a temporary file.
    Windows1252,
}

enum Source {
    Csv {
        map: Arc<Mmap>,
        /// Where the next block starts.
        at: usize,
    },
    Parquet {
        metadata: polars::io::parquet::metadata::FileMetadataRef,
        next_group: usize,
    },
}

pub fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("parquet") | Some("pq") => Ok(Format::Parquet),
        _ => Err(Error::UnknownFormat { path: path.to_path_buf() }),
    }
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> Error {
    let detail = e.to_string();
    let detail = detail.lines().next().unwrap_or("").to_string();
    Error::Unreadable { path: path.to_path_buf(), detail }
}

/// Refuses a "CSV" that is binary (a spreadsheet or Parquet file renamed), which the
/// CSV reader would otherwise read as one odd header.
fn check_text(path: &Path, head: &[u8]) -> Result<()> {
    if head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]) {
        return Err(unreadable(path, "it is UTF-16 text (as Excel's \"Unicode text\" saves it); save it as CSV UTF-8"));
    }
    let head = &head[..head.len().min(8192)];
    let Some(nul) = memchr::memchr(0, head) else { return Ok(()) };
    let before = &head[..nul];
    // Text with a whole header before the NUL is a text file with a stray byte: name its line.
    if before.contains(&b'\n') && std::str::from_utf8(before).is_ok() {
        let line = 1 + memchr::memchr_iter(b'\n', before).count();
        return Err(unreadable(path, format!("line {line} holds a NUL byte, which is not text; remove it")));
    }
    Err(unreadable(path, "it holds binary data, not text (is it a spreadsheet or Parquet file named .csv?)"))
}

/// The separator a one-column CSV header is really split by, if it holds one: European
/// spreadsheets save "CSV" with semicolons, and "text" exports use tabs.
fn other_separator(header: &str) -> Option<&'static str> {
    [(';', "semicolons"), ('\t', "tabs"), ('|', "vertical bars")]
        .into_iter()
        .find(|(c, _)| header.contains(*c))
        .map(|(_, name)| name)
}

/// A CSV file's header: its column names (a byte-order mark before the first dropped)
/// and where the first data record may start; `None` for a file without one.
fn read_header(text: &[u8]) -> std::result::Result<(Vec<String>, usize), &'static str> {
    let mut reading = csv_records::Records::header(text);
    let header = match reading.next() {
        None => return Err("it is empty (no header line)"),
        Some(Err(_)) => return Err("its header line opens a quote that is never closed"),
        Some(Ok(header)) => header,
    };
    let values = header.bytes();
    let names = (0..header.width()).map(|k| String::from_utf8_lossy(&values[header.range(k)]).into_owned()).collect();
    Ok((names, header.raw.end))
}

/// A block's records cut for the workers, or the record and field of a quote the
/// file ends inside.
type Planned = std::result::Result<csv_records::Plan, (u64, csv_records::Unclosed)>;

/// The next block of the CSV text from byte `at` on: its length (about `block` bytes of
/// whole records) and its records cut into `parts` ranges; `None` at the end.
fn next_csv_text(text: &[u8], at: usize, (block, parts): (usize, usize)) -> Option<(usize, Planned)> {
    let mut want = block;
    loop {
        let end = at.saturating_add(want).min(text.len());
        let whole = end == text.len();
        match csv_records::plan(&text[at..end], parts, whole) {
            Ok(Some(plan)) => return Some((plan.end, Ok(plan))),
            Ok(None) if whole => return None,
            // One record longer than a block: take more.
            Ok(None) => want *= 2,
            Err(open) => return Some((end - at, Err(open))),
        }
    }
}

fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Opens one file of a table: reads its header (CSV) or schema (Parquet).
fn open_part(path: &Path, format: Format, encoding: Encoding) -> Result<(Vec<String>, Source)> {
    Ok(match format {
        Format::Csv => {
            // The header is the first record; the first block starts past it.
            let map = map_file(path)?;
            check_text(path, &map)?;
            let map = match encoding {
                Encoding::Utf8 => map,
                Encoding::Windows1252 => decoded_copy(path, &map, encoding_rs::WINDOWS_1252)?,
            };
            let (names, header_end) = read_header(&map).map_err(|why| unreadable(path, why))?;
            (names, Source::Csv { map, at: header_end })
        }
        Format::Parquet => {
            let file = File::open(path).map_err(|e| unreadable(path, e))?;
            let mut reader = ParquetReader::new(file);
            let schema = reader.schema().map_err(|e| unreadable(path, e))?;
            check_parquet_types(path, &schema)?;
            let metadata = reader.get_metadata().map_err(|e| unreadable(path, e))?.clone();
            let names = schema.iter_names().map(|n| n.to_string()).collect();
            (names, Source::Parquet { metadata, next_group: 0 })
        }
    })
}

/// The offset from UTC, in seconds, of a time zone that is a fixed offset (`UTC`,
/// `+01:00`); `None` for a zone whose offset changes (`Europe/London`), which would need
/// a zone database.
fn fixed_offset(zone: &str) -> Option<i64> {
    if ["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Zulu", "Etc/Zulu", "Universal", "Etc/Universal"].contains(&zone) {
        return Some(0);
    }
    let (sign, rest) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    let (h, m) = match rest.len() {
        2 => (rest, "00"),
        4 => rest.split_at(2),
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit()).then(|| t.parse::<i64>().ok()).flatten();
    let (h, m) = (digits(h)?, digits(m)?);
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// A `date` column of timestamps in a fixed-offset zone as the days they begin, when each
/// is at midnight in its zone (dates written as timestamps: pandas with `utc=True`, Spark,
/// databases): `None` for any other column. A time of day is an instant whose calendar day
/// depends on where the practice is: its row (0-based), its text and the zone, to refuse.
fn zoned_days(col: &Column) -> Option<std::result::Result<Column, (usize, String, String)>> {
    let DataType::Datetime(unit, Some(zone)) = col.dtype() else { return None };
    if normalise_header(col.name()) != "date" {
        return None;
    }
    // Other zones refused the file when it was opened.
    let offset = fixed_offset(zone)?;
    let per_second: i64 = match unit {
        TimeUnit::Nanoseconds => 1_000_000_000,
        TimeUnit::Microseconds => 1_000_000,
        TimeUnit::Milliseconds => 1_000,
    };
    let per_day = 86_400 * per_second;
    let stamps = col.datetime().ok()?.physical();
    let mut local = stamps.iter().map(|v| v.map(|v| v.saturating_add(offset * per_second)));
    if let Some(row) = local.position(|v| v.is_some_and(|v| v.rem_euclid(per_day) != 0)) {
        let v = stamps.get(row).unwrap_or_default().saturating_add(offset * per_second);
        let (day, seconds) = (v.div_euclid(per_day), v.rem_euclid(per_day) / per_second);
        let text = format!(
            "{} {:02}:{:02}:{:02}",
            crate::domain::dates::format_day(day.clamp(i32::MIN.into(), i32::MAX.into()) as i32),
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
        return Some(Err((row, text, zone.to_string())));
    }
    // Days beyond i32 are beyond any calendar validation reads: out of the typed range,
    // written as text and refused row by row.
    let days: Int32Chunked = stamps
        .iter()
        .map(|v| {
            v.map(|v| (v.saturating_add(offset * per_second) / per_day).clamp(i32::MIN.into(), i32::MAX.into()) as i32)
        })
        .collect();
    Some(Ok(days.with_name(col.name().clone()).into_date().into_column()))
}

/// Refuses a Parquet file with a column of a type sustain cannot read as text, numbers
/// or dates (and so could neither validate nor screen for identifiers), or with zoned
/// timestamps in `date`, naming the column, before any row is read: polars would refuse
/// some of these types only while reading, and panic on others.
fn check_parquet_types(path: &Path, schema: &ArrowSchema) -> Result<()> {
    for field in schema.iter_values() {
        let column = field.name.to_string();
        if let Some(kind) = unreadable_kind(&field.dtype) {
            return Err(Error::UnreadableColumn { path: path.to_path_buf(), column, kind });
        }
        // Zoned timestamps elsewhere are only screened, as instants without their zone.
        if let (ArrowDataType::Timestamp(_, Some(zone)), "date") = (&field.dtype, normalise_header(&column).as_str()) {
            if fixed_offset(zone).is_none() {
                return Err(Error::ZonedDates { path: path.to_path_buf(), column, zone: zone.to_string() });
            }
        }
    }
    Ok(())
}

/// What a column of this type holds, in words, if sustain cannot read it; `None` if it can.
fn unreadable_kind(dtype: &ArrowDataType) -> Option<&'static str> {
    use ArrowDataType as A;
    match dtype {
        A::Null | A::Boolean | A::Int8 | A::Int16 | A::Int32 | A::Int64 => None,
        A::UInt8 | A::UInt16 | A::UInt32 | A::UInt64 | A::Float32 | A::Float64 => None,
        A::Decimal(..) | A::Decimal32(..) | A::Decimal64(..) => None,
        A::Decimal256(precision, _) if *precision <= 38 => None,
        A::Decimal256(..) => Some("decimals of more than 38 digits"),
        A::Utf8 | A::LargeUtf8 | A::Utf8View | A::Binary | A::LargeBinary | A::BinaryView => None,
        A::FixedSizeBinary(_) | A::Date32 | A::Date64 | A::Timestamp(..) | A::Time32(_) | A::Time64(_) => None,
        A::Dictionary(_, values, _) if !matches!(**values, A::Dictionary(..)) => unreadable_kind(values),
        A::Int128 | A::UInt128 => Some("128-bit integers"),
        A::Float16 => Some("half-precision numbers"),
        A::Duration(_) | A::Interval(_) => Some("durations"),
        A::List(_) | A::LargeList(_) | A::FixedSizeList(..) => Some("lists"),
        A::Struct(_) | A::Map(..) | A::Union(_) => Some("nested records"),
        _ => Some("values of a type sustain does not know"),
    }
}

/// About how many records a table holds, from its first part just opened: Parquet's row
/// count, or a CSV file's size over the mean length of the lines in its first mebibyte;
/// other parts counted by their size against the first's.
fn estimate_rows(first: &Source, path: &Path, others: &[PathBuf]) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let in_first = match first {
        Source::Csv { map, at } => {
            let sample = &map[*at..map.len().min(*at + (1 << 20))];
            let lines = memchr::memchr_iter(b'\n', sample).count().max(1);
            (map.len() - at) as f64 * lines as f64 / sample.len().max(1) as f64
        }
        Source::Parquet { metadata, .. } => metadata.num_rows as f64,
    };
    let others: u64 = others.iter().map(|p| size(p)).sum();
    (in_first * (1.0 + others as f64 / size(path).max(1) as f64)).ceil() as u64
}

impl TableReader {
    /// Opens an input table: reads its header (CSV) or schema (Parquet), refusing the
    /// table if a required column is missing or a header names a direct identifier. A
    /// folder is read as one table made of its part files (see [`TableFiles`]).
    pub fn open(path: &Path, table: Table) -> Result<TableReader> {
        Self::open_encoded(path, table, Encoding::Utf8)
    }

    /// As [`TableReader::open`], for CSV text in `encoding`.
    pub fn open_encoded(path: &Path, table: Table, encoding: Encoding) -> Result<TableReader> {
        Self::open_with_encoding(path, table, CSV_BLOCK_BYTES, PARQUET_BLOCK_ROWS, encoding)
    }

    #[cfg(test)]
    fn open_with(path: &Path, table: Table, block_bytes: usize, block_rows: usize) -> Result<TableReader> {
        Self::open_with_encoding(path, table, block_bytes, block_rows, Encoding::Utf8)
    }

    fn open_with_encoding(
        path: &Path,
        table: Table,
        block_bytes: usize,
        block_rows: usize,
        encoding: Encoding,
    ) -> Result<TableReader> {
        let (format, mut to_come) = part_files(path)?;
        to_come.reverse();
        let first = to_come.pop().expect("at least one part");
        let (names, source) = open_part(&first, format, encoding)?;
        let estimated_rows = estimate_rows(&source, &first, &to_come);
        let files = TableFiles { path: path.to_path_buf(), format, parts: vec![(first.clone(), 0)] };
        let path = first.as_path();
        let spec = match table {
            Table::Measurements => MEASUREMENT_COLUMNS,
            Table::Goals => GOAL_COLUMNS,
        };
        let (mut headers, mut ignored, mut slots) = (BTreeMap::new(), Vec::new(), Vec::new());
        for header in names.iter().cloned() {
            if header_is_identifier(&header) {
                return Err(identifier(path, &header, IdentifierKind::Header, 1));
            }
            let role = spec.iter().map(|(name, _)| *name).find(|name| *name == normalise_header(&header));
            match role {
                Some(name) if headers.contains_key(name) => {
                    return Err(Error::DuplicateColumn { path: path.to_path_buf(), column: header })
                }
                Some(name) => {
                    headers.insert(name, header);
                }
                None => ignored.push(header),
            }
            slots.push(match role {
                Some(name) => Slot::Contract(spec.iter().position(|(n, _)| *n == name).expect("a contract column")),
                None => Slot::Extra(ignored.len() - 1),
            });
        }
        let table_name = match table {
            Table::Measurements => "measurements",
            Table::Goals => "goals",
        };
        for (name, required) in spec {
            if *required && !headers.contains_key(name) {
                if let (Format::Csv, [header]) = (format, names.as_slice()) {
                    if let Some(separator) = other_separator(header) {
                        return Err(Error::NotCommaSeparated { path: path.to_path_buf(), separator });
                    }
                }
                return Err(Error::MissingColumn { path: path.to_path_buf(), column: name, table: table_name });
            }
        }
        Ok(TableReader {
            path: files.path.clone(),
            format,
            headers,
            ignored,
            slots: slots.into(),
            names,
            source,
            to_come,
            files,
            records: 0,
            estimated_rows,
            block_bytes,
            block_rows,
            encoding,
        })
    }

    /// About how many records the table holds, known before it is read: to plan memory.
    pub fn estimated_rows(&self) -> u64 {
        self.estimated_rows
    }

    /// The files read so far (all of them once the last block has been read).
    pub fn files(&self) -> &TableFiles {
        &self.files
    }

    /// Data records read so far (all of them once the last block has been read).
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Reads the next block of records (`None` after the last of the last part).
    pub fn next_block(&mut self) -> Result<Option<Block>> {
        loop {
            if let Some(block) = self.next_block_of_part()? {
                return Ok(Some(block));
            }
            let Some(next) = self.to_come.pop() else { return Ok(None) };
            let (names, source) = open_part(&next, self.format, self.encoding)?;
            if names != self.names {
                let detail = format!(
                    "its columns ({}) are not those of the first part file ({})",
                    names.join(", "),
                    self.names.join(", ")
                );
                return Err(unreadable(&next, detail));
            }
            self.source = source;
            self.files.parts.push((next, self.records));
        }
    }

    fn next_block_of_part(&mut self) -> Result<Option<Block>> {
        let (path, part_start) = self.files.parts.last().expect("a part is open");
        let path = path.as_path();
        let df = match &mut self.source {
            Source::Csv { map, at } => {
                let cut = (self.block_bytes, rayon::current_num_threads());
                let Some((len, planned)) = next_csv_text(map, *at, cut) else { return Ok(None) };
                let range = *at..*at + len;
                *at += len;
                // The record index (in this part) of the block's first record.
                let first = self.records - part_start;
                let plan =
                    planned.map_err(|(record, open)| match record_lines(path, Format::Csv, &[first + record]) {
                        Ok(lines) => Error::UnclosedQuote {
                            path: path.to_path_buf(),
                            line: lines[0],
                            column: self.names.get(open.field).map_or(String::new(), |n| format!(", column `{n}`")),
                        },
                        Err(e) => e,
                    })?;
                let text = MappedText { map: map.clone(), range };
                let block = Block {
                    n_rows: plan.records as usize,
                    first_record: self.records,
                    cells: Cells::Text { text, ranges: plan.ranges, slots: self.slots.clone() },
                };
                self.records += plan.records;
                return Ok(Some(block));
            }
            Source::Parquet { metadata, next_group } => {
                let groups = &metadata.row_groups;
                if *next_group >= groups.len() {
                    return Ok(None);
                }
                let mut rows = 0;
                while *next_group < groups.len() && rows < self.block_rows {
                    rows += groups[*next_group].num_rows();
                    *next_group += 1;
                }
                let file = File::open(path).map_err(|e| unreadable(path, e))?;
                let first = self.records - part_start;
                let mut reader = ParquetReader::new(file).with_slice(Some((first as usize, rows)));
                reader.set_metadata(metadata.clone());
                reader.finish().map_err(|e| unreadable(path, e))?
            }
        };
        if df.width() != self.slots.len() {
            return Err(unreadable(
                path,
                format!("a block has {} columns, the header {}", df.width(), self.slots.len()),
            ));
        }
        let texts: Vec<ColumnValues> = {
            use rayon::prelude::*;
            df.columns()
                .par_iter()
                .map(|col| {
                    let days = zoned_days(col).transpose().map_err(|(row, value, zone)| Error::ZonedTimes {
                        path: path.to_path_buf(),
                        column: col.name().to_string(),
                        row: self.records - part_start + row as u64 + 1,
                        value,
                        zone,
                    })?;
                    ColumnValues::of(days.as_ref().unwrap_or(col)).map_err(|e| unreadable(path, e))
                })
                .collect::<Result<_>>()?
        };
        // The contract columns of either table.
        let (mut columns, mut extra) = (vec![None; CONTRACT_WIDTH], Vec::new());
        for (text, slot) in texts.into_iter().zip(self.slots.iter()) {
            match *slot {
                Slot::Contract(c) => columns[c] = Some(text),
                Slot::Extra(_) => extra.push(text),
            }
        }
        let block = Block { n_rows: df.height(), first_record: self.records, cells: Cells::Columns { columns, extra } };
        self.records += block.n_rows as u64;
        Ok(Some(block))
    }
}

fn identifier(path: &Path, header: &str, kind: IdentifierKind, line: u64) -> Error {
    Error::Identifier { path: path.to_path_buf(), column: header.to_string(), kind: kind.describe(), line }
}

/// Refuses the table if a screen found direct identifiers in a column.
fn refuse_on(files: &TableFiles, header: &str, screen: &ColumnScreen) -> Result<()> {
    let key = KEY_COLUMNS.contains(&normalise_header(header).as_str());
    match screen.verdict(key) {
        Some((kind, record)) => {
            let (part, line) = files.lines(&[record]).map_or((files.locate(record).0, 0), |l| l[0]);
            Err(identifier(&files.parts[part].0, header, kind, line))
        }
        None => Ok(()),
    }
}

/// A record whose text cannot be read as a row: rejected on its own, and the run goes on.
#[derive(Debug, Clone, Copy)]
enum TextFault {
    /// More fields than the header has columns.
    TooManyFields,
    /// A quoted value with text after its closing quote, in this field (0-based).
    BadlyQuoted(usize),
    /// A byte-order mark at the start of the record (files joined end to end).
    StrayBom,
    /// Bytes that are not UTF-8.
    NotUtf8,
}

impl TextFault {
    fn rejection(self, table: Table, record: u64, columns: usize) -> crate::domain::columns::Rejection {
        let (code, message) = match self {
            TextFault::TooManyFields => (
                "too_many_fields",
                format!("the line has more values than the header has columns ({columns}); is a comma missing its quotes?"),
            ),
            TextFault::BadlyQuoted(i) => (
                "badly_quoted",
                format!(
                    "value {} of the line has text after its closing quote (write a quote inside a quoted value as `\"\"`)",
                    i + 1
                ),
            ),
            TextFault::StrayBom => (
                "stray_bom",
                "the line starts with a byte-order mark (U+FEFF), as where two exported files were joined end to \
                 end; its first value would carry it"
                    .into(),
            ),
            TextFault::NotUtf8 => (
                "not_utf8",
                "the line holds bytes that are not UTF-8 text (typed in another encoding; if the whole file was \
                 saved by a Windows program, use --encoding windows-1252)"
                    .into(),
            ),
        };
        crate::domain::columns::Rejection { table, record, column: "", code, message, duplicate_of: None }
    }
}

/// Refuses a CSV table read as UTF-8 that is another encoding as a whole: two or more
/// lines rejected as `not_utf8` and no UTF-8 beyond ASCII anywhere is how a Windows-1252
/// export looks (every accented letter a byte that is not UTF-8). One such line, or a file
/// that also holds UTF-8 letters, is a few bad lines: those rows are rejected.
fn check_encoding(reader: &TableReader, rejected: &[crate::domain::columns::Rejection]) -> Result<()> {
    let bad = rejected.iter().filter(|r| r.code == "not_utf8").count();
    if bad < 2 || reader.encoding != Encoding::Utf8 || reader.format != Format::Csv {
        return Ok(());
    }
    for (path, _) in &reader.files().parts {
        if has_utf8_beyond_ascii(&map_file(path)?) {
            return Ok(());
        }
    }
    Err(unreadable(
        &reader.files().parts[0].0,
        format!(
            "{bad} lines hold bytes that are not UTF-8 and no line holds UTF-8 letters beyond ASCII: it looks like \
             Windows-1252 text, as older Windows programs save CSV; run again with --encoding windows-1252, or save it \
             as CSV UTF-8"
        ),
    ))
}

/// Validates a table block by block (each block's row ranges in parallel, the columns
/// outside the contract screened beside them), merging the parts in record order; each
/// block's text is freed once it is validated. Refuses the table if the values of any
/// column hold direct identifiers: columns outside the contract first, then the contract
/// columns in `spec` order.
fn validate_blocks<T: Default + Send>(
    reader: &mut TableReader,
    spec: &[(&str, bool)],
    validate: impl Fn(&Block, RowRange, T) -> Part<T> + Sync,
    append: impl Fn(&mut T, &mut T) + Copy + Sync,
    mut after_block: impl FnMut(&mut T) -> Result<()> + Send,
    yielding: Option<&crate::tuning::Yielding>,
) -> Result<(T, Vec<crate::domain::columns::Rejection>)> {
    use rayon::prelude::*;
    let mut all: Part<T> = Part::new(reader.ignored.len());
    // The next block is read and parsed on a thread of its own while this one is
    // validated: on their own the two keep about 1.6 of the 2 cores busy (reading the
    // file and merging each block are serial), overlapped nearly both (BENCHMARKS.md).
    // At most two blocks are in memory: the one being validated and the one waiting.
    std::thread::scope(|scope| -> Result<()> {
        let (send, blocks) = std::sync::mpsc::sync_channel::<Result<Block>>(0);
        let reading = &mut *reader;
        scope.spawn(move || loop {
            let next = reading.next_block().transpose();
            let go_on = matches!(next, Some(Ok(_)));
            // A send fails only once validation has stopped (an error): nothing more is wanted.
            if next.is_none_or(|n| send.send(n).is_err()) || !go_on {
                break;
            }
        });
        // Each range's rows are validated into emptied columns of an earlier block's:
        // fresh ones for every block were a fifth of a run's page faults.
        let mut spare: Vec<T> = Vec::new();
        for block in blocks {
            let block = block?;
            let step = || -> Result<()> {
                let ranges = block.ranges();
                let columns: Vec<T> = ranges.iter().map(|_| spare.pop().unwrap_or_default()).collect();
                let parts: Vec<Part<T>> =
                    ranges.into_par_iter().zip(columns).map(|(r, rows)| validate(&block, r, rows)).collect();
                // Each range's rows go straight onto the table's (not first onto the block's
                // first range: that copied half of every block once more).
                spare.extend(merge(&mut all, parts, append));
                after_block(&mut all.rows)
            };
            crate::tuning::run(yielding, step)?;
        }
        Ok(())
    })?;
    check_encoding(reader, &all.rejected)?;
    for (header, screen) in reader.ignored.iter().zip(&all.extra) {
        refuse_on(reader.files(), header, screen)?;
    }
    for ((name, _), screen) in spec.iter().zip(&all.screens) {
        if let Some(header) = reader.headers.get(name) {
            refuse_on(reader.files(), header, screen)?;
        }
    }
    Ok((all.rows, all.rejected))
}

/// The line number on which each data record starts (records 0-based, in increasing
/// order; lines 1-based with the header on line 1), records read as [`csv_records`]
/// reads them: a quoted value may span lines, and blank lines are no records. A line
/// ends at `\n`, `\r\n` or a lone `\r`. For Parquet the "line" is the 1-based row number.
pub fn record_lines(path: &Path, format: Format, records: &[u64]) -> Result<Vec<u64>> {
    if format == Format::Parquet {
        return Ok(records.iter().map(|r| r + 1).collect());
    }
    let text = map_file(path)?;
    let mut out = Vec::with_capacity(records.len());
    let mut want = records.iter().copied().peekable();
    // The line at byte `counted`, and the index of the record that starts next (the
    // header is record -1).
    // The file's byte-order mark is not read (as `read_header` does not).
    let from = csv_records::text_start(&text);
    let (mut line, mut counted, mut record, mut from) = (1u64, 0usize, -1i64, from);
    while want.peek().is_some() {
        let Some((len, _)) = next_csv_text(&text, from, (1 << 20, 1)) else { break };
        csv_records::record_starts(&text[from..from + len], |start| {
            let start = from + start;
            if want.peek().is_some_and(|&w| w as i64 == record) {
                line += csv_records::line_ends(&text, counted..start);
                counted = start;
                while want.next_if(|&w| w as i64 == record).is_some() {
                    out.push(line);
                }
            }
            record += 1;
        });
        release(&text, from..from + len);
        from += len;
    }
    // Records past the end (not expected): report them after the last line.
    let last = line + csv_records::line_ends(&text, counted..text.len());
    out.extend(want.map(|_| last));
    Ok(out)
}

/// One row's contract values, in the table's column order (`None` = empty value or
/// absent column).
struct Values<'s> {
    /// Each value as text, but for those in `typed` and `day`.
    text: [Option<&'s str>; CONTRACT_WIDTH],
    /// The values of the table's two number columns ([`Values::number`]) when a Parquet
    /// column of numbers holds them.
    typed: [Option<Number<'s>>; 2],
    /// The column indices of the number columns.
    number_columns: [usize; 2],
    /// The date ([`DATE_COLUMN`]) when a Parquet column of dates holds it.
    day: Option<crate::domain::dates::Day>,
}

impl<'s> Values<'s> {
    /// Number column `k` (of the table's two): its typed value, or its text.
    #[inline]
    fn number(&self, k: usize) -> Option<Number<'s>> {
        self.typed[k].or(self.text[self.number_columns[k]].map(Number::Text))
    }

    /// The date: its day, or its text.
    #[inline]
    fn date(&self) -> Option<DateValue<'s>> {
        self.day.map(DateValue::Day).or(self.text[DATE_COLUMN].map(DateValue::Text))
    }
}

/// The contract columns (in the table's order) over the records of `range`, one row
/// at a time: text, but for the values of Parquet columns of numbers in `number_columns`
/// and of dates in [`DATE_COLUMN`], which are passed as numbers and days. Also screens
/// each value for direct identifiers (contract columns into `part.screens`, the others
/// into `part.extra`). Stops at a record the text cannot be read past.
fn for_each_row<T>(
    raw: &Block,
    range: RowRange,
    part: &mut Part<T>,
    (table, number_columns): (Table, [usize; 2]),
    mut f: impl for<'s> FnMut(&mut T, &mut Vec<crate::domain::columns::Rejection>, u64, &Values<'s>),
) {
    let Part { rows, rejected, screens, extra } = part;
    match (&raw.cells, range) {
        (Cells::Text { text: mapped, slots, .. }, RowRange::Text { bytes, first }) => {
            // The range's records end at `bytes.end`.
            let all = &mapped.bytes()[..bytes.end];
            let mut reading = csv_records::Records::new(all, bytes.start, true);
            // Only a record with a quote can be badly quoted.
            let quotes = reading.quoted();
            let mut quote_check = csv_records::QuoteCheck::default();
            // The range's text checked once (a check per record of 50 bytes costs more).
            let range_text = std::str::from_utf8(&all[bytes.start..]).ok();
            let mut record = raw.first_record + first;
            while let Some(read) = reading.next() {
                // `plan` found every quote of the block closed.
                let Ok(read) = read else { unreachable!("a block holds whole records") };
                let mut row: [Option<&str>; CONTRACT_WIDTH] = [None; CONTRACT_WIDTH];
                // All the record's values are UTF-8 (as they nearly always are), or each
                // is checked on its own: a contract value that is not rejects the row.
                // (Not csv-core's copy as a whole: two values that are not UTF-8 can make
                // a character together there.)
                let text = match (read.text_range(), range_text) {
                    (Some(r), Some(t)) => Some(&t[r.start - bytes.start..r.end - bytes.start]),
                    _ => None,
                };
                let value = |k: usize| -> std::result::Result<&str, Cow<'_, str>> {
                    let bytes = &read.bytes()[read.range(k)];
                    match text {
                        Some(text) => Ok(&text[read.range(k)]),
                        None => std::str::from_utf8(bytes).map_err(|_| String::from_utf8_lossy(bytes)),
                    }
                };
                let fault = if read.width() > slots.len() {
                    Some(TextFault::TooManyFields)
                } else if let Some(k) = quotes.then(|| quote_check.badly_quoted(&all[read.raw.clone()])).flatten() {
                    Some(TextFault::BadlyQuoted(k))
                } else if all[read.raw.clone()].starts_with(BOM) {
                    Some(TextFault::StrayBom)
                } else {
                    let mut fault = None;
                    for (k, slot) in slots.iter().enumerate().take(read.width()) {
                        match (value(k), *slot) {
                            (Ok(""), _) => {}
                            (Ok(v), Slot::Contract(c)) => row[c] = Some(v),
                            (Err(_), Slot::Contract(_)) => fault = Some(TextFault::NotUtf8),
                            // Outside the contract a value is only screened; bytes that are
                            // not UTF-8 reach the screen as U+FFFD, and the row is used.
                            (Ok(v), Slot::Extra(e)) => extra[e].add(record, v),
                            (Err(v), Slot::Extra(e)) => extra[e].add(record, &v),
                        }
                    }
                    fault
                };
                if let Some(fault) = fault {
                    rejected.push(fault.rejection(table, record, slots.len()));
                    record += 1;
                    continue;
                }
                for (v, screen) in row.iter().zip(screens.iter_mut()) {
                    if let Some(v) = v {
                        screen.add(record, v);
                    }
                }
                f(rows, rejected, record, &Values { text: row, typed: [None; 2], number_columns, day: None });
                record += 1;
            }
        }
        (Cells::Columns { columns, extra: extra_columns }, RowRange::Rows(range)) => {
            // An absent column has no values (all `None`).
            let sliced: Vec<Option<ColumnValues>> =
                columns.iter().map(|c| c.as_ref().map(|c| c.slice(&range))).collect();
            let others: Vec<Option<ColumnValues>> = extra_columns.iter().map(|c| Some(c.slice(&range))).collect();
            // The columns read as text, then the number columns and the date column.
            let typed = |c: &usize| number_columns.contains(c) || *c == DATE_COLUMN;
            let text_columns: Vec<usize> = (0..CONTRACT_WIDTH).filter(|c| !typed(c)).collect();
            let mut cols: Vec<ValueCursor> = text_columns.iter().map(|&c| ValueCursor::new(&sliced[c])).collect();
            let mut numbers = number_columns.map(|c| TypedCursor::new(&sliced[c]));
            let mut dates = DayCursor::new(&sliced[DATE_COLUMN]);
            let mut other_cols: Vec<ValueCursor> = others.iter().map(ValueCursor::new).collect();
            for record in range {
                let record = raw.first_record + record as u64;
                let mut values = Values { text: [None; CONTRACT_WIDTH], typed: [None; 2], number_columns, day: None };
                match dates.next() {
                    Some(TypedDay::Text(v)) => {
                        values.text[DATE_COLUMN] = Some(v);
                        screens[DATE_COLUMN].add(record, v);
                    }
                    // `YYYY-MM-DD`: eight digits, no `@` or space.
                    Some(TypedDay::Day(d)) => {
                        values.day = Some(d);
                        screens[DATE_COLUMN].add_plain();
                    }
                    None => {}
                }
                for (&c, cursor) in text_columns.iter().zip(cols.iter_mut()) {
                    values.text[c] = cursor.next();
                    if let Some(v) = values.text[c] {
                        screens[c].add(record, v);
                    }
                }
                for (k, cursor) in numbers.iter_mut().enumerate() {
                    let c = number_columns[k];
                    match cursor.next() {
                        Some(Typed::Text(v)) => {
                            values.text[c] = Some(v);
                            screens[c].add(record, v);
                        }
                        Some(Typed::Number(n)) => {
                            values.typed[k] = Some(n);
                            screen_number(&mut screens[c], record, n);
                        }
                        None => {}
                    }
                }
                for (c, screen) in other_cols.iter_mut().zip(extra.iter_mut()) {
                    if let Some(v) = c.next() {
                        screen.add(record, v);
                    }
                }
                f(rows, rejected, record, &values);
            }
        }
        _ => unreachable!("a block's ranges are of its own kind"),
    }
}

/// A column's values one at a time over its chunks: a plain cursor, as the chained
/// per-chunk iterators (called through a box for each of nine columns) were a visible
/// share of validation at tens of millions of values.
struct Chunks<'a, A> {
    /// Each chunk and its length.
    chunks: Vec<(&'a A, usize)>,
    chunk: usize,
    at: usize,
}

impl<'a, A> Chunks<'a, A> {
    fn new(chunks: impl Iterator<Item = (&'a A, usize)>) -> Chunks<'a, A> {
        Chunks { chunks: chunks.collect(), chunk: 0, at: 0 }
    }

    /// The chunk holding the next value, and its index there (`None` past the end).
    #[inline]
    fn next(&mut self) -> Option<(&'a A, usize)> {
        while let Some(&(arr, len)) = self.chunks.get(self.chunk) {
            if self.at < len {
                self.at += 1;
                return Some((arr, self.at - 1));
            }
            self.chunk += 1;
            self.at = 0;
        }
        None
    }
}

type TextArray = <StringType as PolarsDataType>::Array;
type IntArray = <Int64Type as PolarsDataType>::Array;
type FloatArray = <Float64Type as PolarsDataType>::Array;
type DayArray = <Int32Type as PolarsDataType>::Array;

/// A column's values as text, one at a time; numbers are written into the cursor's own
/// buffer, so a value lives until the next is asked for.
enum ValueCursor<'a> {
    Text(Chunks<'a, TextArray>),
    Int(Chunks<'a, IntArray>, itoa::Buffer),
    Float(Chunks<'a, FloatArray>, zmij::Buffer),
    Day(Chunks<'a, DayArray>, [u8; 10]),
    Absent,
}

impl<'a> ValueCursor<'a> {
    fn new(column: &'a Option<ColumnValues>) -> ValueCursor<'a> {
        match column {
            None => ValueCursor::Absent,
            Some(ColumnValues::Text(c)) => ValueCursor::Text(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            Some(ColumnValues::Int(c)) => {
                ValueCursor::Int(Chunks::new(c.downcast_iter().map(|a| (a, a.len()))), itoa::Buffer::new())
            }
            Some(ColumnValues::Float(c)) => {
                ValueCursor::Float(Chunks::new(c.downcast_iter().map(|a| (a, a.len()))), zmij::Buffer::new())
            }
            Some(ColumnValues::Day(c)) => {
                ValueCursor::Day(Chunks::new(c.downcast_iter().map(|a| (a, a.len()))), [0; 10])
            }
        }
    }

    /// The next value (`None` for a null, and past the end).
    #[inline]
    fn next(&mut self) -> Option<&str> {
        match self {
            ValueCursor::Text(c) => c.next().and_then(|(a, i)| a.get(i)),
            ValueCursor::Int(c, text) => c.next().and_then(|(a, i)| a.get(i)).map(|v| text.format(v)),
            ValueCursor::Float(c, text) => c.next().and_then(|(a, i)| a.get(i)).map(|v| text.format(v)),
            ValueCursor::Day(c, text) => c.next().and_then(|(a, i)| a.get(i)).map(|v| {
                *text = crate::domain::dates::day_bytes(v);
                std::str::from_utf8(text).expect("ASCII")
            }),
            ValueCursor::Absent => None,
        }
    }
}

/// A value of a number column as [`TypedCursor`] reads it.
enum Typed<'a> {
    Text(&'a str),
    Number(Number<'static>),
}

/// A number column's values one at a time: a Parquet column of numbers as numbers (not
/// written out as text to be parsed back), any other as text.
enum TypedCursor<'a> {
    Whole(Chunks<'a, IntArray>),
    Real(Chunks<'a, FloatArray>),
    Other(ValueCursor<'a>),
}

impl<'a> TypedCursor<'a> {
    fn new(column: &'a Option<ColumnValues>) -> TypedCursor<'a> {
        match column {
            Some(ColumnValues::Int(c)) => TypedCursor::Whole(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            Some(ColumnValues::Float(c)) => TypedCursor::Real(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            other => TypedCursor::Other(ValueCursor::new(other)),
        }
    }

    /// The next value (`None` for a null, and past the end).
    #[inline]
    fn next(&mut self) -> Option<Typed<'_>> {
        match self {
            TypedCursor::Whole(c) => c.next().and_then(|(a, i)| a.get(i)).map(|v| Typed::Number(Number::Whole(v))),
            TypedCursor::Real(c) => c.next().and_then(|(a, i)| a.get(i)).map(|v| Typed::Number(Number::Real(v))),
            TypedCursor::Other(c) => c.next().map(Typed::Text),
        }
    }
}

/// The date column's values one at a time: a Parquet column of dates as days, any other
/// as text.
enum DayCursor<'a> {
    Day(Chunks<'a, DayArray>),
    Other(ValueCursor<'a>),
}

/// A value of the date column as [`DayCursor`] reads it.
enum TypedDay<'a> {
    Text(&'a str),
    Day(crate::domain::dates::Day),
}

impl<'a> DayCursor<'a> {
    fn new(column: &'a Option<ColumnValues>) -> DayCursor<'a> {
        match column {
            Some(ColumnValues::Day(c)) => DayCursor::Day(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            other => DayCursor::Other(ValueCursor::new(other)),
        }
    }

    /// The next value (`None` for a null, and past the end).
    #[inline]
    fn next(&mut self) -> Option<TypedDay<'_>> {
        match self {
            DayCursor::Day(c) => c.next().and_then(|(a, i)| a.get(i)).map(TypedDay::Day),
            DayCursor::Other(c) => c.next().map(TypedDay::Text),
        }
    }
}

/// Screens a typed number as [`ColumnScreen::add`] would screen its text. Text written
/// from a whole number below 10⁹, or from a whole real below 10⁸ (at most eight digits
/// and `.0`), has fewer than ten digits and no `@` or space: no identifier can be read in
/// it, so it is only counted. Any other is written out and screened.
#[inline]
fn screen_number(screen: &mut ColumnScreen, record: u64, n: Number) {
    match n {
        Number::Whole(v) if v.unsigned_abs() < 1_000_000_000 => screen.add_plain(),
        Number::Real(v) if v.fract() == 0.0 && v.abs() < 1e8 => screen.add_plain(),
        _ => n.with_text(|s| screen.add(record, s)),
    }
}

/// Record ranges for the parallel row passes: one per worker thread, in file order.
fn row_ranges(n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = rayon::current_num_threads().max(1);
    let size = n.div_ceil(parts).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Rows validated over one range of records, and the identifier screens of its values.
struct Part<T> {
    rows: T,
    rejected: Vec<crate::domain::columns::Rejection>,
    /// The contract columns' screens, in the table's column order.
    screens: [ColumnScreen; CONTRACT_WIDTH],
    /// The other columns' screens, in [`TableReader::ignored`] order.
    extra: Vec<ColumnScreen>,
}

impl<T: Default> Part<T> {
    fn new(extra: usize) -> Part<T> {
        Part::with(T::default(), extra)
    }
}

impl<T> Part<T> {
    /// A part whose rows go into `rows` (emptied columns to reuse).
    fn with(rows: T, extra: usize) -> Part<T> {
        Part { rows, rejected: Vec::new(), screens: Default::default(), extra: vec![ColumnScreen::default(); extra] }
    }
}

/// Merges the parts of consecutive record ranges onto `all`, in order, and returns the
/// parts' rows for reuse.
fn merge<T>(all: &mut Part<T>, parts: Vec<Part<T>>, append: impl Fn(&mut T, &mut T) + Copy) -> Vec<T> {
    let mut emptied = Vec::with_capacity(parts.len());
    for mut part in parts {
        append(&mut all.rows, &mut part.rows);
        all.rejected.extend(part.rejected);
        for (s, later) in all.screens.iter_mut().zip(&part.screens) {
            s.merge(later);
        }
        for (s, later) in all.extra.iter_mut().zip(&part.extra) {
            s.merge(later);
        }
        emptied.push(part.rows);
    }
    emptied
}

/// Validates every measurement row: typed rows out, rejected rows listed; refuses the
/// table if its values hold direct identifiers. Row ranges are validated in parallel and
/// merged in order, so ids and output equal a single pass.
pub fn measurements(
    reader: &mut TableReader,
    registry: &crate::domain::registry::Registry,
    dates: DateRules,
) -> Result<(crate::domain::columns::Measurements, Vec<crate::domain::columns::Rejection>)> {
    let validate = |block: &Block, r, rows| measurements_in(block, registry, dates, r, rows);
    validate_blocks(
        reader,
        MEASUREMENT_COLUMNS,
        validate,
        crate::domain::columns::Measurements::append,
        |_| Ok(()),
        None,
    )
}

fn measurements_in(
    raw: &Block,
    registry: &crate::domain::registry::Registry,
    dates: DateRules,
    range: RowRange,
    rows: crate::domain::columns::Measurements,
) -> Part<crate::domain::columns::Measurements> {
    use crate::domain::columns::Rejection;
    use crate::input::validate::{check_measurement, RawMeasurement};
    let mut part = Part::with(rows, raw.extra_columns());
    let mut measures = registry.finder();
    for_each_row(raw, range, &mut part, (Table::Measurements, MEASUREMENT_NUMBERS), |m, rejected, record, v| {
        let f = &v.text;
        let row = RawMeasurement {
            client_id: f[0],
            episode_id: f[1],
            therapist_id: f[2],
            site_id: f[3],
            date: v.date(),
            session: v.number(0),
            phase: f[6],
            measure: f[7],
            score: v.number(1),
            episode_end: f[9].map(DateValue::Text),
        };
        match check_measurement(&row, &mut measures, dates) {
            Ok(r) => m.push(&r),
            Err(f) => rejected.push(Rejection {
                table: Table::Measurements,
                record,
                column: f.column,
                code: f.code,
                message: f.message,
                duplicate_of: None,
            }),
        }
    });
    part
}

/// Validates every goal row, then sorts the rows into the goal analysis' order and drops
/// duplicate ratings (same client, episode, goal, scale and date). Beyond `budget` rows
/// the table goes through temporary files ([`crate::input::goal_rows`]). With `yielding`, each
/// block's checks and merge, and the sort, run through it (at the lowest priority until
/// it is stopped); the block reader keeps the usual priority.
pub fn goals(
    reader: &mut TableReader,
    dates: DateRules,
    budget: usize,
    yielding: Option<&crate::tuning::Yielding>,
) -> Result<(crate::input::goal_rows::GoalRows, Vec<crate::domain::columns::Rejection>)> {
    let validate = |block: &Block, r, rows| goals_in(block, dates, r, rows);
    let mut rows = crate::input::goal_rows::Builder::new(budget);
    let mut end_dates = crate::domain::columns::EndDates::new();
    let after_block = |g: &mut crate::domain::columns::GoalRatings| {
        g.take_end_dates(&mut end_dates);
        rows.after_block(g).map_err(temporary_file)
    };
    let (mut g, mut rejected) = validate_blocks(
        reader,
        GOAL_COLUMNS,
        validate,
        crate::domain::columns::GoalRatings::append,
        after_block,
        yielding,
    )?;
    g.take_end_dates(&mut end_dates);
    // So far `rejected` holds validation's rejections, in record order.
    let record_of = crate::domain::columns::RecordOf::new(rejected.iter().map(|r| r.record));
    let finish = || rows.finish(g, &record_of, &mut rejected).map_err(temporary_file);
    let mut rows = crate::tuning::run(yielding, finish)?;
    rows.episode_end = end_dates;
    Ok((rows, rejected))
}

fn temporary_file(source: std::io::Error) -> Error {
    Error::TemporaryFile { what: "the goal ratings", source }
}

fn goals_in(
    raw: &Block,
    dates: DateRules,
    range: RowRange,
    rows: crate::domain::columns::GoalRatings,
) -> Part<crate::domain::columns::GoalRatings> {
    use crate::domain::columns::Rejection;
    use crate::input::validate::{check_goal, RawGoal};
    let mut part = Part::with(rows, raw.extra_columns());
    for_each_row(raw, range, &mut part, (Table::Goals, GOAL_NUMBERS), |g, rejected, record, v| {
        let f = &v.text;
        let row = RawGoal {
            client_id: f[0],
            episode_id: f[1],
            goal_id: f[2],
            parent_goal_id: f[3],
            date: v.date(),
            phase: f[5],
            scale: f[6],
            rating: v.number(0),
            weight: v.number(1),
            episode_end: f[9].map(DateValue::Text),
        };
        match check_goal(&row, dates) {
            Ok(r) => g.push(&r),
            Err(f) => rejected.push(Rejection {
                table: Table::Goals,
                record,
                column: f.column,
                code: f.code,
                message: f.message,
                duplicate_of: None,
            }),
        }
    });
    part
}

/// A rejection for a duplicate row; `record_of` maps a row to its input record.
pub fn duplicate_rejection(
    table: Table,
    record: u64,
    value_column: &'static str,
    why: &crate::domain::duplicates::Duplicate,
    record_of: impl Fn(usize) -> u64,
) -> crate::domain::columns::Rejection {
    use crate::domain::duplicates::Duplicate;
    let (code, message, duplicate_of) = match why {
        Duplicate::Exact { kept_row } => ("exact_duplicate", "exact duplicate".to_string(), Some(record_of(*kept_row))),
        Duplicate::Conflicting { rows_in_group } => (
            "conflicting_duplicate",
            format!("{rows_in_group} rows share client, episode, measure (or goal), date and session but differ in {value_column}; none is used"),
            None,
        ),
    };
    crate::domain::columns::Rejection { table, record, column: value_column, code, message, duplicate_of }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn line_numbers_follow_quoted_newlines_and_count_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        let mut f = File::create(&p).unwrap();
        write!(f, "a,b\n1,x\n\n2,\"multi\nline\"\n3,y\r\n4,z\r5,w\n").unwrap();
        drop(f);
        // Records: 1,x on line 2; (a blank line 3, no record); 2,"multi… on line 4; 3,y
        // on 6; 4,z on 7, ended by a lone `\r`; 5,w on 8.
        assert_eq!(record_lines(&p, Format::Csv, &[0, 1, 2, 3, 4]).unwrap(), vec![2, 4, 6, 7, 8]);
        assert_eq!(record_lines(&p, Format::Csv, &[2]).unwrap(), vec![6]);
        assert_eq!(record_lines(&p, Format::Parquet, &[0, 9]).unwrap(), vec![1, 10]);
    }

    /// Validates `p` read in blocks of `block_bytes` (CSV) or `block_rows` (Parquet).
    /// Validates a measurements table with the built-in registry, as of 2025-01-01.
    fn validate_table(reader: &mut TableReader) -> Result<(crate::domain::columns::Measurements, Vec<Rejection>)> {
        let today = crate::domain::dates::parse_iso_date("2025-01-01").unwrap();
        measurements(reader, &crate::domain::registry::Registry::builtin(), DateRules::iso(today))
    }

    fn validated(
        p: &Path,
        block_bytes: usize,
        block_rows: usize,
    ) -> (crate::domain::columns::Measurements, Vec<Rejection>, u64) {
        let mut reader = TableReader::open_with(p, Table::Measurements, block_bytes, block_rows).unwrap();
        let (m, rej) = validate_table(&mut reader).unwrap();
        (m, rej, reader.records_read())
    }

    fn assert_same(
        a: &(crate::domain::columns::Measurements, Vec<Rejection>, u64),
        b: &(crate::domain::columns::Measurements, Vec<Rejection>, u64),
    ) {
        assert_eq!((&a.0.client, &a.0.episode, &a.0.therapist), (&b.0.client, &b.0.episode, &b.0.therapist));
        assert_eq!((&a.0.score, &a.0.session), (&b.0.score, &b.0.session));
        assert_eq!((&a.1, a.2), (&b.1, b.2));
        let names = |i: &crate::domain::columns::Interner| {
            (0..i.len() as u32).map(|k| i.name(k).to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names(&a.0.keys.clients), names(&b.0.keys.clients));
    }

    use crate::domain::columns::Rejection;

    #[test]
    fn reading_in_small_blocks_equals_one_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        let mut text = String::from("client_id,episode_id,therapist_id,date,session,measure,score,note\n");
        for i in 0..25 {
            // Clients recur across blocks; some rows are bad, blank or hold a quoted newline.
            let score = if i % 7 == 3 { "x".to_string() } else { (i % 20).to_string() };
            let note = if i % 5 == 1 { "\"two\nlines, one \"\"quote\"\"\"" } else { "" };
            let line =
                format!("c{},e{},t{},2024-01-{:02},{},PHQ9,{score},{note}\n", i % 4, i % 2, i % 3, i % 28 + 1, i / 4);
            text.push_str(&line);
            if i % 9 == 4 {
                text.push('\n');
            }
        }
        text.push_str("c1,e1,t1,2024-01-02,0,PHQ9,1,\"last\"");
        std::fs::write(&p, &text).unwrap();
        let whole = validated(&p, 1 << 20, 1);
        assert_eq!(whole.2, 26, "25 rows and a last row without a newline (blank lines are no records)");
        assert_eq!(whole.1.len(), 4, "four bad scores");
        for bytes in [1, 7, 40, 64, 100] {
            assert_same(&validated(&p, bytes, 1), &whole);
        }
        // The line numbers of rejected rows agree with the blocks' record indices.
        let lines = record_lines(&p, Format::Csv, &whole.1.iter().map(|r| r.record).collect::<Vec<_>>()).unwrap();
        assert_eq!(lines[0], 6, "the first bad score (i = 3) on line 6, after a quoted newline");
    }

    #[test]
    fn parquet_numbers_read_as_text_equal_polars_cast_to_text() {
        let ints = Column::new("i".into(), [Some(0i64), None, Some(-17), Some(i64::MAX), Some(i64::MIN), Some(42)]);
        let reals = [Some(0.0f64), Some(-0.0), None, Some(27.0), Some(0.1), Some(1e21), Some(-2.5e-8)];
        let floats =
            Column::new("f".into(), reals.into_iter().chain([Some(f64::NAN), Some(f64::INFINITY)]).collect::<Vec<_>>());
        for col in [ints, floats] {
            let values = ColumnValues::of(&col).unwrap();
            assert!(!matches!(values, ColumnValues::Text(_)), "numbers stay numbers");
            // Rows 1.. as a block's range would take them.
            let sliced = Some(values.slice(&(1..col.len())));
            let mut cursor = ValueCursor::new(&sliced);
            let mut ours = Vec::new();
            for _ in 1..col.len() {
                ours.push(cursor.next().map(str::to_string));
            }
            assert_eq!(cursor.next(), None, "nothing past the end");
            let cast = col.cast(&DataType::String).unwrap();
            let text = cast.str().unwrap();
            let theirs: Vec<Option<String>> = (1..col.len()).map(|i| text.get(i).map(str::to_string)).collect();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn typed_numbers_read_and_screen_as_polars_cast_text() {
        let ints = [0i64, -17, 42, 999_999_999, -999_999_999, 1_000_000_000, -1_000_000_000, i64::MAX, i64::MIN];
        let reals = [0.0f64, -0.0, 27.0, 0.1, 12.5, 99_999_999.0, -99_999_999.0, 1e8, 123_456_789.0, 1234.56789, 1e21];
        let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -2.5e-8];
        let cols = [
            Column::new("i".into(), ints.iter().map(|&v| Some(v)).chain([None]).collect::<Vec<_>>()),
            Column::new("f".into(), reals.iter().chain(&odd).map(|&v| Some(v)).chain([None]).collect::<Vec<_>>()),
        ];
        for col in cols {
            let values = Some(ColumnValues::of(&col).unwrap());
            let mut cursor = TypedCursor::new(&values);
            let cast = col.cast(&DataType::String).unwrap();
            let cast = cast.str().unwrap();
            for (i, text) in (0..col.len()).map(|i| cast.get(i)).enumerate() {
                let Some(Typed::Number(n)) = cursor.next() else {
                    assert_eq!(text, None, "row {i}: a null reads as none");
                    continue;
                };
                assert_eq!(n.with_text(str::to_string).as_str(), text.unwrap(), "row {i}");
                let (mut typed, mut as_text) = (ColumnScreen::default(), ColumnScreen::default());
                screen_number(&mut typed, 7, n);
                as_text.add(7, text.unwrap());
                assert_eq!(format!("{typed:?}"), format!("{as_text:?}"), "row {i}");
            }
            assert!(cursor.next().is_none(), "nothing past the end");
        }
        // Ten digits are screened as text: `7700900123.0` reads as a phone number.
        let mut screen = ColumnScreen::default();
        screen_number(&mut screen, 3, Number::Whole(7_700_900_123));
        screen_number(&mut screen, 4, Number::Real(7_700_900_123.0));
        assert_eq!((screen.non_empty, screen.phones, screen.first_phone), (2, 1, Some(4)));
        // The number columns are the ones the contract names.
        assert_eq!(MEASUREMENT_NUMBERS.map(|c| MEASUREMENT_COLUMNS[c].0), ["session", "score"]);
        assert_eq!(GOAL_NUMBERS.map(|c| GOAL_COLUMNS[c].0), ["rating", "weight"]);
        assert_eq!((MEASUREMENT_COLUMNS[DATE_COLUMN].0, GOAL_COLUMNS[DATE_COLUMN].0), ("date", "date"));
    }

    #[test]
    fn parquet_dates_and_timestamps_read_as_their_day() {
        // What validation reads of a column's first value (or the refusal).
        let text_of = |col: Column| match ColumnValues::of(&col) {
            Ok(ColumnValues::Text(t)) => t.get(0).map(str::to_string).unwrap_or_default(),
            Ok(ColumnValues::Day(d)) => format!("day {}", crate::domain::dates::format_day(d.get(0).unwrap())),
            Ok(_) => panic!("dates are read as text or days"),
            Err(e) => format!("refused: {e}"),
        };
        let date_column = |name: &str, days: &[i32]| Column::new(name.into(), days).cast(&DataType::Date).unwrap();
        // 2024-01-01 is day 19723 of the Unix epoch.
        assert_eq!(text_of(date_column("date", &[19723])), "day 2024-01-01");
        assert_eq!(text_of(date_column("visited", &[19723])), "2024-01-01", "other columns are only screened");
        // Days are read as days in years 0000 to 9999, whose text polars writes as
        // validation reads it; a column with a day outside is read as polars' text.
        let (first, last) =
            (crate::domain::dates::days_from_civil(0, 1, 1), crate::domain::dates::days_from_civil(9999, 12, 31));
        assert_eq!(TYPED_DAYS, first..=last);
        for day in [first - 1, first, last, last + 1] {
            let col = date_column("date", &[day]);
            let theirs = col.cast(&DataType::String).unwrap().str().unwrap().get(0).unwrap().to_string();
            let ours = text_of(date_column("date", &[19723, day]).slice(1, 1));
            if TYPED_DAYS.contains(&day) {
                assert_eq!(ours, format!("day {theirs}"));
            } else {
                assert_eq!(ours, theirs);
                assert!(crate::domain::dates::parse_iso_date(&theirs).is_err(), "{theirs}");
            }
        }
        let micros = ((19723 + 31) * 86_400 + 14 * 3600 + 1800) * 1_000_000i64; // 2024-02-01 14:30
        let stamp = |name: &str, zone: Option<TimeZone>| {
            Column::from(Series::new(name.into(), [micros]).into_datetime(TimeUnit::Microseconds, zone))
        };
        assert_eq!(text_of(stamp("Date", None)), "day 2024-02-01", "a timestamp stands for its day");
        let zone = TimeZone::opt_try_new(Some("America/New_York")).unwrap();
        // A zoned `date` column refuses its file as it is opened (elsewhere a zoned
        // timestamp is only screened, as its instant).
        let zdir = tempfile::tempdir().unwrap();
        let zoned = zdir.path().join("zoned.parquet");
        let mut df = df!("client_id" => ["c1"], "measure" => ["PHQ-9"], "score" => [20.0]).unwrap();
        df.with_column(stamp("Date", zone.clone())).unwrap();
        ParquetWriter::new(File::create(&zoned).unwrap()).finish(&mut df).unwrap();
        let refused = TableReader::open(&zoned, Table::Measurements).err().unwrap();
        let named = matches!(&refused, Error::ZonedDates { column, zone, .. } if column == "Date" && zone == "America/New_York");
        assert!(named, "{refused}");
        let elsewhere = text_of(stamp("logged", zone));
        assert!(elsewhere.starts_with("2024-02-01 14:30"), "only screened, read as it is: {elsewhere}");
        // UTC and fixed offsets need no zone database: the file opens.
        let fixed = zdir.path().join("fixed.parquet");
        let mut df = df!("client_id" => ["c1"], "measure" => ["PHQ-9"], "score" => [20.0]).unwrap();
        df.with_column(stamp("date", TimeZone::opt_try_new(Some("UTC")).unwrap())).unwrap();
        ParquetWriter::new(File::create(&fixed).unwrap()).finish(&mut df).unwrap();
        assert!(TableReader::open(&fixed, Table::Measurements).is_ok());

        // Through a file: a date column is validated as the same dates in text; a future
        // day is rejected with its text, a missing one as missing.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.parquet");
        let mut df = df!(
            "client_id" => ["c1", "c1", "c1", "c1"],
            "measure" => ["PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9"],
            "score" => [20.0, 8.0, 7.0, 6.0],
        )
        .unwrap();
        let days = Column::new("date".into(), [Some(19723i32), Some(19754), Some(40_000), None]);
        df.with_column(days.cast(&DataType::Date).unwrap()).unwrap();
        ParquetWriter::new(File::create(&p).unwrap()).finish(&mut df).unwrap();
        let (m, rejected, _) = validated(&p, 1, 1 << 20);
        let day = |d| crate::domain::dates::parse_iso_date(d).unwrap();
        assert_eq!(m.date, vec![day("2024-01-01"), day("2024-02-01")]);
        let reasons: Vec<&str> = rejected.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(reasons, ["date '2079-07-08' is after today (2025-01-01)", "date is empty"]);
    }

    /// Narrow whole numbers and decimals (as pandas and databases write them) are read as
    /// the same values, with the same rejections, as the text they stand for; a column of a
    /// type with no text to screen is refused by name before a row is read.
    #[test]
    fn parquet_narrow_integers_and_decimals_read_as_the_text_they_stand_for() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, mut df: DataFrame| {
            let p = dir.path().join(name);
            ParquetWriter::new(File::create(&p).unwrap()).finish(&mut df).unwrap();
            p
        };
        let frame = |session: Column, score: Column, extra: Column| {
            let mut df = df!(
                "client_id" => ["c1", "c1", "c1", "c1"],
                "date" => ["2024-02-01", "2024-02-08", "2024-02-15", "2024-02-22"],
                "measure" => ["PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9"],
            )
            .unwrap();
            for c in [session, score, extra] {
                df.with_column(c).unwrap();
            }
            df
        };
        let (sessions, scores) = ([0i64, 1, -1, 3], [20.0, 8.5, 7.0, 28.0]);
        let text = write(
            "text.parquet",
            frame(
                Column::new("session".into(), sessions.map(|s| s.to_string())),
                Column::new("score".into(), ["20.00", "8.50", "7.00", "28.00"]),
                Column::new("visits".into(), ["1", "2", "3", "4"]),
            ),
        );
        let expected = validated(&text, 1, 1 << 20);
        assert_eq!(expected.0.session, [0, 1]);
        let reasons: Vec<&str> = expected.1.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(reasons, ["session '-1' is negative", "score 28 is outside the PHQ9 range 0 to 27"]);
        for (i, (narrow, unsigned)) in [
            (DataType::Int8, DataType::UInt8),
            (DataType::Int16, DataType::UInt16),
            (DataType::Int32, DataType::UInt32),
        ]
        .into_iter()
        .enumerate()
        {
            let typed = write(
                &format!("typed{i}.parquet"),
                frame(
                    Column::new("session".into(), sessions).cast(&narrow).unwrap(),
                    Column::new("score".into(), scores).cast(&DataType::Decimal(5, 2)).unwrap(),
                    Column::new("visits".into(), [1i64, 2, 3, 4]).cast(&unsigned).unwrap(),
                ),
            );
            assert_same(&validated(&typed, 1, 1 << 20), &expected);
        }

        let list = Series::new("tags".into(), [Series::new("".into(), [1i64]), Series::new("".into(), [2i64, 3])]);
        let mut df = df!("client_id" => ["c1", "c2"], "date" => ["2024-02-01"; 2], "measure" => ["PHQ-9"; 2]).unwrap();
        df.with_column(list.into()).unwrap();
        df.with_column(Column::new("score".into(), [1.0, 2.0])).unwrap();
        let refused = TableReader::open(&write("list.parquet", df), Table::Measurements).err().unwrap();
        assert!(matches!(&refused, Error::UnreadableColumn { column, kind: "lists", .. } if column == "tags"));
        assert!(refused.is_input_error());
    }

    #[test]
    fn parquet_row_groups_read_in_blocks_equal_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.parquet");
        let n = 23;
        let mut df = df!(
            "client_id" => (0..n).map(|i| format!("c{}", i % 4)).collect::<Vec<_>>(),
            "date" => (0..n).map(|i| format!("2024-02-{:02}", i + 1)).collect::<Vec<_>>(),
            "session" => (0..n).map(|i| i64::from(i / 4)).collect::<Vec<_>>(),
            "measure" => vec!["GAD-7"; n as usize],
            "score" => (0..n).map(|i| f64::from(i % 23)).collect::<Vec<_>>(),
        )
        .unwrap();
        let file = File::create(&p).unwrap();
        ParquetWriter::new(file).with_row_group_size(Some(5)).finish(&mut df).unwrap();
        let whole = validated(&p, 1, 1 << 20);
        assert_eq!(whole.2, 23);
        assert_eq!(TableReader::open(&p, Table::Measurements).unwrap().estimated_rows(), 23, "the file's own count");
        assert_eq!(whole.1.len(), 1, "one score above the GAD-7 maximum of 21");
        for rows in [1, 4, 6, 100] {
            assert_same(&validated(&p, 1, rows), &whole);
        }
    }

    #[test]
    fn a_folder_of_parts_reads_as_one_table_with_lines_per_part() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.csv");
        let parts = dir.path().join("parts");
        std::fs::create_dir(&parts).unwrap();
        let header = "client_id,date,measure,score\n";
        let rows: Vec<String> =
            (0..9).map(|i| format!("c{},2024-03-{:02},PHQ-9,{}\n", i % 3, i + 1, 25 + i % 4)).collect();
        std::fs::write(&whole, format!("{header}{}", rows.concat())).unwrap();
        // Parts in name order; ".hidden" and the notes file are not parts.
        std::fs::write(parts.join("b.csv"), format!("{header}{}", rows[4..].concat())).unwrap();
        std::fs::write(parts.join("a.csv"), format!("{header}{}", rows[..4].concat())).unwrap();
        std::fs::write(parts.join(".hidden.csv"), "x\n").unwrap();
        std::fs::write(parts.join("notes.txt"), "x\n").unwrap();
        let (one, many) = (validated(&whole, 1 << 20, 1), validated(&parts, 9, 1));
        assert_same(&one, &many);
        // Scores 28 are above the PHQ-9 maximum of 27: rows 3 and 7 (0-based).
        assert_eq!(many.1.iter().map(|r| r.record).collect::<Vec<_>>(), vec![3, 7]);
        let mut reader = TableReader::open(&parts, Table::Measurements).unwrap();
        // a.csv's 4 rows scaled by the two files' sizes (121 and 144 bytes): 8.76.
        assert_eq!(reader.estimated_rows(), 9);
        assert_eq!(TableReader::open(&whole, Table::Measurements).unwrap().estimated_rows(), 9, "one file: exact");
        while reader.next_block().unwrap().is_some() {}
        let files = reader.files();
        assert_eq!(files.parts.iter().map(|p| p.1).collect::<Vec<_>>(), vec![0, 4]);
        assert_eq!(files.lines(&[3, 7]).unwrap(), vec![(0, 5), (1, 5)], "line 5 of a.csv, line 5 of b.csv");
    }

    #[test]
    fn parts_with_other_columns_or_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.csv"), "client_id,date,measure,score\nc,2024-01-01,PHQ-9,3\n").unwrap();
        std::fs::write(dir.path().join("b.csv"), "client_id,date,score,measure\nc,2024-01-02,4,PHQ-9\n").unwrap();
        let mut reader = TableReader::open(dir.path(), Table::Measurements).unwrap();
        let err = loop {
            match reader.next_block() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the second part should be refused"),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("b.csv") && err.contains("first part"), "{err}");
        std::fs::write(dir.path().join("c.parquet"), "").unwrap();
        let err = TableReader::open(dir.path(), Table::Measurements).err().unwrap().to_string();
        assert!(err.contains("mixes CSV and Parquet"), "{err}");
    }

    #[test]
    fn a_bad_later_part_stops_validation_with_its_name() {
        // Blocks are read on a thread of their own: the error of a later part still ends
        // validation, after the blocks before it, and names that part.
        let dir = tempfile::tempdir().unwrap();
        let rows: String = (0..30).map(|i| format!("c{i},2024-01-02,PHQ9,3\n")).collect();
        std::fs::write(dir.path().join("a.csv"), format!("client_id,date,measure,score\n{rows}")).unwrap();
        std::fs::write(dir.path().join("b.csv"), "client_id,date,score,measure\nc,2024-01-02,4,PHQ9\n").unwrap();
        let mut reader = TableReader::open_with(dir.path(), Table::Measurements, 64, 1).unwrap();
        let err = validate_table(&mut reader).unwrap_err().to_string();
        assert!(err.contains("b.csv") && err.contains("first part"), "{err}");
        assert_eq!(reader.records_read(), 30, "every block of the first part was read");
    }

    #[test]
    fn a_value_repeated_down_a_column_is_screened_each_time() {
        // A personal name in a free-text column counts once it is in ≥ 3 values and a fifth
        // of them; here one name on three consecutive rows (each row counts), then plain
        // site names.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        let mut text = String::from("client_id,date,measure,score,site_id\n");
        for i in 0..12 {
            let site = if (3..6).contains(&i) { "Mary Smith" } else { "north" };
            text.push_str(&format!("c{i},2024-01-02,PHQ9,3,{site}\n"));
        }
        std::fs::write(&p, &text).unwrap();
        let refused = validate_table(&mut TableReader::open(&p, Table::Measurements).unwrap()).unwrap_err().to_string();
        assert!(refused.contains("site_id") && refused.contains("line 5"), "{refused}");
        // Two such rows out of twelve are not a pattern.
        std::fs::write(&p, text.replacen("Mary Smith", "north", 1)).unwrap();
        assert!(validate_table(&mut TableReader::open(&p, Table::Measurements).unwrap()).is_ok());
    }

    /// The error reading `text` as a measurements table, in blocks of `block_bytes`.
    fn refusal(text: &[u8], block_bytes: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(&p, text).unwrap();
        let mut reader = TableReader::open_with(&p, Table::Measurements, block_bytes, 1).unwrap();
        validate_table(&mut reader).unwrap_err().to_string()
    }

    #[test]
    fn a_quote_never_closed_refuses_the_file_by_line_and_column() {
        let head = "client_id,date,measure,score\nc,2024-01-02,PHQ9,3\n\"a\nb\",2024-01-02,PHQ9,3\n";
        for bytes in [16, 1 << 20] {
            let err = refusal(format!("{head}c,\"2024-01-03,PHQ9,4\nc,2024-01-04,PHQ9,5\n").as_bytes(), bytes);
            assert!(err.contains("line 5, column `date`") && err.contains("never closed"), "{err}");
        }
    }

    #[test]
    fn a_malformed_record_is_one_rejected_row_and_the_rest_are_read() {
        // Record 1 (lines 3–4) spans two lines; the bad records, 2 to 6, come after it.
        let mut text = b"client_id,date,measure,score\nc,2024-01-02,PHQ9,3\n\"a\nb\",2024-01-02,PHQ9,3\n".to_vec();
        text.extend(b"c,2024-01-03,PHQ9,4,x\n"); // record 2: too many fields
        text.extend(b"c,2024-01-04,\"PHQ9\"x,4\n"); // 3: text after a closing quote
        text.extend(b"c,2024-01-05,PHQ\xff,4\n"); // 4: not UTF-8
        text.extend(b"\xEF\xBB\xBFc,2024-01-06,PHQ9,4\n"); // 5: a byte-order mark
        text.extend(b"c,2024-01-07,\"PHQ\xe9\",5\n"); // 6: not UTF-8 inside quotes
        text.extend("d\u{e9},2024-01-08,PHQ9,6\n".as_bytes()); // 7: fine (UTF-8: the file is)
        for (bytes, rows) in [(16, 1), (1 << 20, 1), (1 << 20, 3)] {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("m.csv");
            std::fs::write(&p, &text).unwrap();
            let (m, rejected, read) = validated(&p, bytes, rows);
            assert_eq!(read, 8);
            let codes: Vec<(u64, &str)> = rejected.iter().map(|r| (r.record, r.code)).collect();
            assert_eq!(
                codes,
                [(2, "too_many_fields"), (3, "badly_quoted"), (4, "not_utf8"), (5, "stray_bom"), (6, "not_utf8")],
                "blocks of {bytes} bytes"
            );
            assert_eq!(m.len(), 3, "records 0, 1 and 7 are used");
            assert_eq!(m.keys.clients.name(m.client[1]), "a\nb");
            assert_eq!(m.keys.clients.name(m.client[2]), "d\u{e9}");
            let lines = record_lines(&p, Format::Csv, &[2, 3, 4, 5, 6]).unwrap();
            assert_eq!(lines, [5, 6, 7, 8, 9]);
        }
    }

    #[test]
    fn a_windows_1252_file_is_read_with_its_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(
            &p,
            b"client_id,date,measure,score,note\nc\xe9,2024-01-02,PHQ9,3,caf\xe9\n\"d\n\",2024-01-02,PHQ9,4,\x80\n",
        )
        .unwrap();
        let read = |encoding| {
            let mut reader = TableReader::open_encoded(&p, Table::Measurements, encoding).unwrap();
            let (m, rejected) = validate_table(&mut reader).unwrap();
            let clients: Vec<String> = (0..m.len()).map(|i| m.keys.clients.name(m.client[i]).to_string()).collect();
            (clients, rejected.iter().map(|r| r.code).collect::<Vec<_>>())
        };
        // (Values are trimmed: the quoted "d\n" is the key d.)
        assert_eq!(read(Encoding::Windows1252), (vec!["c\u{e9}".to_string(), "d".into()], vec![]));
        // Read as UTF-8, a line with such bytes in a contract column is one rejected row;
        // in a column outside the contract they do not matter.
        assert_eq!(read(Encoding::Utf8), (vec!["d".to_string()], vec!["not_utf8"]));
        assert_eq!(record_lines(&p, Format::Csv, &[1]).unwrap(), [3]);
        // Two bad values side by side in a quoted file: csv-core's copy of them reads
        // as `é`, but each value alone is not UTF-8.
        std::fs::write(&p, b"client_id,date,measure,score,note\n\"c\",2024-01-02,PHQ\xc3,\xa9\ne,2024-01-02,PHQ9,4,\n")
            .unwrap();
        assert_eq!(read(Encoding::Utf8), (vec!["e".to_string()], vec!["not_utf8"]));
        // Two such lines and no UTF-8 letter anywhere: a Windows-1252 file, refused.
        let latin =
            b"client_id,date,measure,score\nc\xe9,2024-01-02,PHQ9,3\nd\xe9,2024-01-02,PHQ9,4\ne,2024-01-02,PHQ9,4\n";
        std::fs::write(&p, latin).unwrap();
        let mut reader = TableReader::open(&p, Table::Measurements).unwrap();
        let err = validate_table(&mut reader).unwrap_err().to_string();
        assert!(
            err.contains("2 lines hold bytes that are not UTF-8") && err.contains("--encoding windows-1252"),
            "{err}"
        );
        // With a UTF-8 letter elsewhere it is a UTF-8 file with two bad lines.
        std::fs::write(&p, [&latin[..], "f\u{e9},2024-01-02,PHQ9,4\n".as_bytes()].concat()).unwrap();
        assert_eq!(read(Encoding::Utf8), (vec!["e".to_string(), "f\u{e9}".into()], vec!["not_utf8", "not_utf8"]));
    }

    #[test]
    fn a_record_longer_than_a_block_is_read_whole() {
        let long = format!("a,\"{}\n{}\"\nb,c\n", "x".repeat(100), "y".repeat(100));
        let end = |text: &[u8]| csv_records::plan(text, 1, false).unwrap().map(|p| p.end);
        assert_eq!(end(long.as_bytes()), Some(long.len()));
        assert_eq!(end(&long.as_bytes()[..50]), None);
        assert_eq!(read_header(long.as_bytes()).map(|h| h.1), Ok(long.len() - 4));
        // A byte-order mark before a quoted first name.
        let names = |text: &[u8]| read_header(text).map(|h| h.0);
        assert_eq!(names(b"\xEF\xBB\xBF\"a,b\",c\n"), Ok(vec!["a,b".to_string(), "c".into()]));
        assert_eq!(names(b"\xEF\xBB\xBFa,c\n"), Ok(vec!["a".to_string(), "c".into()]));
        assert_eq!(names(b"\"a,c\n"), Err("its header line opens a quote that is never closed"));
    }

    /// Every goal row as the analysis would see it: names, not ids.
    /// Weights as bits: a rating without one holds NaN, which `==` never equals.
    fn goal_table(rows: &crate::input::goal_rows::GoalRows) -> Vec<(String, String, String, String, i32, f64, u64)> {
        let n = &rows.names;
        let mut out = Vec::new();
        rows.for_each_run(|g| {
            for i in 0..g.len() {
                let parent = if g.parent[i] == crate::domain::columns::NO_KEY { "" } else { n.goals.name(g.parent[i]) };
                out.push((
                    n.clients.name(g.client[i]).to_string(),
                    n.episodes.name(g.episode[i]).to_string(),
                    n.goals.name(g.goal[i]).to_string(),
                    parent.to_string(),
                    g.date[i],
                    g.rating[i],
                    g.weight[i].to_bits(),
                ));
            }
        })
        .unwrap();
        out
    }

    #[test]
    fn fixed_offsets_are_read_without_a_zone_database() {
        for (zone, seconds) in
            [("UTC", Some(0)), ("Etc/UTC", Some(0)), ("+01:00", Some(3600)), ("-0530", Some(-19_800))]
        {
            assert_eq!(fixed_offset(zone), seconds, "{zone}");
        }
        assert_eq!(fixed_offset("+09"), Some(32_400));
        for zone in ["Europe/London", "America/New_York", "+1:00", "+24:00", "+01:60", "", "UTC+1"] {
            assert_eq!(fixed_offset(zone), None, "{zone}");
        }
    }

    #[test]
    fn zoned_midnights_are_their_days_and_a_time_of_day_is_refused_with_its_row() {
        let day = 19_754i64; // 2024-02-01
        let column = |name: &str, zone: &str, stamps: &[i64]| {
            Column::from(
                Series::new(name.into(), stamps)
                    .into_datetime(TimeUnit::Milliseconds, TimeZone::opt_try_new(Some(zone)).unwrap()),
            )
        };
        let ms = |seconds: i64| seconds * 1000;
        // Midnight in UTC, and midnight at +01:00 (23:00 UTC the evening before).
        for (zone, instant) in [("UTC", ms(day * 86_400)), ("+01:00", ms(day * 86_400 - 3600))] {
            let days = zoned_days(&column("Date", zone, &[instant])).unwrap().unwrap();
            assert_eq!(days.dtype(), &DataType::Date);
            assert_eq!(days.date().unwrap().physical().get(0), Some(day as i32), "{zone}");
        }
        // 23:00 UTC is a time of day; the second row is the one named.
        let times = column("date", "UTC", &[ms(day * 86_400), ms(day * 86_400 + 23 * 3600)]);
        let (row, text, zone) = zoned_days(&times).unwrap().unwrap_err();
        assert_eq!((row, text.as_str(), zone.as_str()), (1, "2024-02-01 23:00:00", "UTC"));
        // Columns other than `date`, and other zones, are left alone here.
        assert!(zoned_days(&column("logged", "UTC", &[0])).is_none());
        assert!(zoned_days(&column("date", "Europe/London", &[0])).is_none());
    }

    #[test]
    fn goals_checked_at_low_priority_equal_goals_checked_as_usual() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.csv");
        let mut text = String::from("client_id,episode_id,goal_id,parent_goal_id,date,phase,scale,rating,weight\n");
        for c in 0..60 {
            for k in 0..5 {
                let date = format!("2024-0{}-1{}", 1 + k % 9, k % 10);
                text += &format!("C{c},E1,G1,,{date},treatment,GBO,{},\n", (c + k) % 11);
                text += &format!("C{c},E1,O{k},G1,{date},treatment,GBO,{},2\n", (c * k) % 11);
            }
            // A second rating of G1 on its first day (a conflicting duplicate, or an exact one
            // where the ratings agree) and a rating off the scale: all rejected.
            text += &format!("C{c},E1,G1,,2024-01-10,treatment,GBO,3,\nC{c},E1,G2,,2024-01-11,treatment,GBO,12,\n");
        }
        std::fs::write(&p, text).unwrap();
        let today = DateRules::iso(crate::domain::dates::parse_iso_date("2025-01-01").unwrap());
        let read = |budget: usize, yielding: Option<&crate::tuning::Yielding>| {
            let mut reader = TableReader::open_with(&p, Table::Goals, 2000, 1).unwrap();
            let (rows, rejected) = goals(&mut reader, today, budget, yielding).unwrap();
            (goal_table(&rows), rejected)
        };
        for budget in [1 << 20, 100] {
            let usual = read(budget, None);
            assert!(usual.0.len() > 500 && usual.1.len() >= 120, "{} rows, {} rejected", usual.0.len(), usual.1.len());
            let yielding = crate::tuning::Yielding::new();
            assert_eq!(read(budget, Some(&yielding)), usual);
            yielding.stop();
            assert_eq!(read(budget, Some(&yielding)), usual);
        }
    }
}
