//! Opening a table (CSV or Parquet, one file or a folder of parts, a text encoding) and
//! handing out its records block by block, with the file and line each came from.

use super::*;

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
    pub(super) cells: Cells,
}

/// A block's values: CSV text split as it is validated, or Parquet columns read value by value.
pub(super) enum Cells {
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
pub(super) enum ColumnValues {
    Text(StringChunked),
    Int(Int64Chunked),
    Float(Float64Chunked),
    /// The contract's date column as day numbers, when every day is in [`TYPED_DAYS`].
    Day(Int32Chunked),
}

/// The days a date column is read as days for: years 0000 to 9999, which polars' cast
/// writes as `YYYY-MM-DD` (others it writes with a sign and more digits, which validation
/// refuses as text).
pub(super) const TYPED_DAYS: std::ops::RangeInclusive<crate::domain::dates::Day> = -719_528..=2_932_896;

impl ColumnValues {
    pub(super) fn of(col: &Column) -> PolarsResult<ColumnValues> {
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
    pub(super) fn slice(&self, range: &std::ops::Range<usize>) -> ColumnValues {
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
pub(super) enum Slot {
    /// The contract column at this index of the table's column list.
    Contract(usize),
    /// The column outside the contract at this index of [`TableReader::ignored`].
    Extra(usize),
}

/// A block's text: a range of the mapped file. When the block is done its pages leave
/// the process (they stay in the page cache): a mapped page counts in the resident set
/// once touched, and the whole file's would.
pub(super) struct MappedText {
    map: Arc<Mmap>,
    range: std::ops::Range<usize>,
}

impl MappedText {
    pub(super) fn bytes(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// Whether `bytes` hold any valid UTF-8 beyond ASCII (between the bytes that are not UTF-8).
pub(super) fn has_utf8_beyond_ascii(bytes: &[u8]) -> bool {
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
pub(super) fn release(map: &Mmap, range: std::ops::Range<usize>) {
    // SAFETY: the mapping is a read-only shared mapping of a file: dropping its pages only
    // means that a later read of them (the page a block shares with the next) maps them
    // again from the page cache, with the same bytes.
    let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, range.start, range.len()) };
}

/// A UTF-8 copy of `bytes` (a file in `encoding`) in a temporary file, mapped. Newlines,
/// quotes and commas are ASCII in both, so records and line numbers are those of the
/// original file.
pub(super) fn decoded_copy(path: &Path, bytes: &[u8], encoding: &'static encoding_rs::Encoding) -> Result<Arc<Mmap>> {
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
pub(super) fn map_file(path: &Path) -> Result<Arc<Mmap>> {
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
pub(super) enum RowRange {
    /// Whole records of the text, and the index in the block of the first.
    Text { bytes: std::ops::Range<usize>, first: u64 },
    /// Rows of the columns.
    Rows(std::ops::Range<usize>),
}

impl Block {
    /// How many columns outside the contract the block holds.
    pub(super) fn extra_columns(&self) -> usize {
        match &self.cells {
            Cells::Text { slots, .. } => slots.iter().filter(|s| matches!(s, Slot::Extra(_))).count(),
            Cells::Columns { extra, .. } => extra.len(),
        }
    }

    /// The block cut into one part per worker thread, in record order.
    pub(super) fn ranges(&self) -> Vec<RowRange> {
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
pub(super) const CSV_BLOCK_BYTES: usize = 48 << 20;
/// Rows per Parquet block (whole row groups are read, so a block may be larger). A quarter
/// of a million: a decoded block (string views and their buffers, two blocks in flight)
/// costs far more memory than its text would. With a million rows a block, the 10 M
/// benchmark's Parquet run peaked at 1.05 GiB; with a quarter million, at 0.7 GiB (the
/// CSV run's peak) and in the same time.
pub(super) const PARQUET_BLOCK_ROWS: usize = 1 << 18;

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
pub(super) fn part_files(path: &Path) -> Result<(Format, Vec<PathBuf>)> {
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
    pub(super) encoding: Encoding,
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

pub(super) enum Source {
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

pub(super) fn unreadable(path: &Path, e: impl std::fmt::Display) -> Error {
    let detail = e.to_string();
    let detail = detail.lines().next().unwrap_or("").to_string();
    Error::Unreadable { path: path.to_path_buf(), detail }
}

/// Refuses a "CSV" that is binary (a spreadsheet or Parquet file renamed), which the
/// CSV reader would otherwise read as one odd header.
pub(super) fn check_text(path: &Path, head: &[u8]) -> Result<()> {
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
pub(super) fn other_separator(header: &str) -> Option<&'static str> {
    [(';', "semicolons"), ('\t', "tabs"), ('|', "vertical bars")]
        .into_iter()
        .find(|(c, _)| header.contains(*c))
        .map(|(_, name)| name)
}

/// A CSV file's header: its column names (a byte-order mark before the first dropped)
/// and where the first data record may start; `None` for a file without one.
pub(super) fn read_header(text: &[u8]) -> std::result::Result<(Vec<String>, usize), &'static str> {
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
pub(super) type Planned = std::result::Result<csv_records::Plan, (u64, csv_records::Unclosed)>;

/// The next block of the CSV text from byte `at` on: its length (about `block` bytes of
/// whole records) and its records cut into `parts` ranges; `None` at the end.
pub(super) fn next_csv_text(text: &[u8], at: usize, (block, parts): (usize, usize)) -> Option<(usize, Planned)> {
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

pub(super) fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Opens one file of a table: reads its header (CSV) or schema (Parquet).
pub(super) fn open_part(path: &Path, format: Format, encoding: Encoding) -> Result<(Vec<String>, Source)> {
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
            let (schema, metadata) = damage_as_error(path, || {
                let mut reader = ParquetReader::new(file);
                let schema = reader.schema().map_err(|e| unreadable(path, e))?;
                let metadata = reader.get_metadata().map_err(|e| unreadable(path, e))?.clone();
                Ok((schema, metadata))
            })?;
            check_parquet_types(path, &schema)?;
            let names = schema.iter_names().map(|n| n.to_string()).collect();
            (names, Source::Parquet { metadata, next_group: 0 })
        }
    })
}

/// Runs a step of polars' Parquet reader, turning a panic into the file's refusal:
/// polars-parquet 0.55 panics on some damaged footers ("thrift bool field", found by the
/// `parquet_tables` fuzz target) where it should return an error. The panic's own message
/// still reaches stderr before sustain's.
pub(super) fn damage_as_error<T>(path: &Path, step: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).unwrap_or_else(|_| {
        Err(unreadable(path, "the Parquet file is damaged (its reader failed on it); export it again"))
    })
}

/// The offset from UTC, in seconds, of a time zone that is a fixed offset (`UTC`,
/// `+01:00`); `None` for a zone whose offset changes (`Europe/London`), which would need
/// a zone database.
pub(super) fn fixed_offset(zone: &str) -> Option<i64> {
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
pub(super) fn zoned_days(col: &Column) -> Option<std::result::Result<Column, (usize, String, String)>> {
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
pub(super) fn check_parquet_types(path: &Path, schema: &ArrowSchema) -> Result<()> {
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
pub(super) fn unreadable_kind(dtype: &ArrowDataType) -> Option<&'static str> {
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
pub(super) fn estimate_rows(first: &Source, path: &Path, others: &[PathBuf]) -> u64 {
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
    pub(super) fn open_with(path: &Path, table: Table, block_bytes: usize, block_rows: usize) -> Result<TableReader> {
        Self::open_with_encoding(path, table, block_bytes, block_rows, Encoding::Utf8)
    }

    pub(super) fn open_with_encoding(
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

    /// The next block of the open part: whole records of CSV text, or whole Parquet row
    /// groups read as columns, then each column placed in its slot. (Kept whole, a little
    /// over 80 lines: the two formats' arms share the record bookkeeping around them.)
    pub(super) fn next_block_of_part(&mut self) -> Result<Option<Block>> {
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
                damage_as_error(path, || {
                    let mut reader = ParquetReader::new(file).with_slice(Some((first as usize, rows)));
                    reader.set_metadata(metadata.clone());
                    reader.finish().map_err(|e| unreadable(path, e))
                })?
            }
        };
        if df.width() != self.slots.len() {
            return Err(unreadable(
                path,
                format!("a block has {} columns, the header {}", df.width(), self.slots.len()),
            ));
        }
        // polars may panic on a damaged file's columns too (found by fuzzing).
        let texts: Vec<ColumnValues> = damage_as_error(path, || {
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
                .collect::<Result<_>>()
        })?;
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

/// Record ranges for the parallel row passes: one per worker thread, in file order.
pub(super) fn row_ranges(n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = rayon::current_num_threads().max(1);
    let size = n.div_ceil(parts).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}
