//! Reading the input tables with polars: CSV or Parquet in, one text column per
//! contract column out (validation parses them row by row, so that a bad value
//! rejects one row rather than the file).
//!
//! Also here: matching headers case-insensitively, refusing files that carry direct
//! identifiers, and turning record indices into the file's line numbers.

use crate::error::{Error, Result};
use crate::model::Table;
use crate::privacy::{header_is_identifier, ColumnScreen, IdentifierKind};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

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
];

/// Columns whose values are pseudonymous keys: a personal name there is never expected.
const KEY_COLUMNS: &[&str] = &["client_id", "episode_id", "therapist_id", "goal_id", "parent_goal_id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
}

/// One block of consecutive records of a table, every column as text.
pub struct Block {
    pub n_rows: usize,
    /// The contract columns present in the file.
    pub columns: BTreeMap<&'static str, StringChunked>,
    /// Columns outside the contract, in [`TableReader::ignored`] order: screened for
    /// identifiers, otherwise unused.
    pub extra: Vec<StringChunked>,
    /// The record index of the block's first row.
    pub first_record: u64,
}

impl Block {
    pub fn column(&self, name: &str) -> Option<&StringChunked> {
        self.columns.get(name)
    }
}

/// Bytes of CSV text per block (about a million rows of a typical export). Only the text
/// of the block being validated is in memory, never the whole file's: the text columns
/// are several times larger than the typed rows they become.
const CSV_BLOCK_BYTES: usize = 48 << 20;
/// Rows per Parquet block (whole row groups are read, so a block may be larger).
const PARQUET_BLOCK_ROWS: usize = 1 << 20;

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
    /// For each column of the file, in order: its contract name, or `None` if ignored.
    roles: Vec<Option<&'static str>>,
    /// The column names of the first part, which every other part must repeat.
    names: Vec<String>,
    /// The part file being read.
    source: Source,
    /// The part files still to come, the next one last.
    to_come: Vec<PathBuf>,
    files: TableFiles,
    /// Records read so far.
    records: u64,
    block_bytes: usize,
    block_rows: usize,
}

enum Source {
    Csv {
        file: File,
        /// The text of the last block, then the bytes read past it (the start of the
        /// next record); reused from block to block.
        text: Vec<u8>,
        /// The length of the last block's text.
        used: usize,
        eof: bool,
        schema: SchemaRef,
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
    if head[..head.len().min(8192)].contains(&0) {
        return Err(unreadable(
            path,
            "it holds binary data, not text (is it a spreadsheet or Parquet file named .csv?)",
        ));
    }
    Ok(())
}

/// Parses CSV text with polars, every column as text: validation parses values itself so
/// that one bad value rejects one row with a reason instead of failing the file. Without
/// a schema the text starts with the header.
fn parse_csv(text: &[u8], schema: Option<SchemaRef>) -> PolarsResult<DataFrame> {
    let options = match schema {
        None => CsvReadOptions::default().with_has_header(true).with_infer_schema_length(Some(0)),
        Some(schema) => CsvReadOptions::default().with_has_header(false).with_schema(Some(schema)),
    };
    options.with_raise_if_empty(true).into_reader_with_file_handle(std::io::Cursor::new(text)).finish()
}

/// The end of the last complete record in `text` (which starts at a record): just past
/// its newline, a newline inside a quoted field not counting.
fn last_record_end(text: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', text).is_none() {
        return memchr::memrchr(b'\n', text).map(|i| i + 1);
    }
    let mut in_quotes = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', text) {
        if text[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            last = Some(i + 1);
        }
    }
    last
}

/// Reads on into `text` until it holds at least `want` bytes or the file ends (`true`).
fn fill(file: &mut File, text: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    let missing = want.saturating_sub(text.len()) as u64;
    let n = file.take(missing).read_to_end(text)?;
    Ok((n as u64) < missing)
}

/// The next block of CSV text, ending at a record boundary: `text[..end]` (`None` at the
/// end). `text` is the same buffer from block to block (fresh memory for each block was
/// a tenth of the page faults of a run); it first drops the `used` bytes of the last
/// block and keeps what was read past it.
fn next_csv_text(
    file: &mut File,
    text: &mut Vec<u8>,
    used: &mut usize,
    eof: &mut bool,
    block: usize,
) -> std::io::Result<Option<usize>> {
    text.drain(..*used);
    *used = 0;
    let mut want = block;
    loop {
        if !*eof {
            text.reserve(want.saturating_sub(text.len()));
            *eof = fill(file, text, want)?;
        }
        let end = if *eof { Some(text.len()).filter(|&n| n > 0) } else { last_record_end(text) };
        if end.is_some() || *eof {
            *used = end.unwrap_or(0);
            return Ok(end);
        }
        // One record longer than a block: read more.
        want *= 2;
    }
}

fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Opens one file of a table: reads its header (CSV) or schema (Parquet).
fn open_part(path: &Path, format: Format) -> Result<(Vec<String>, Source)> {
    let mut file = File::open(path).map_err(|e| unreadable(path, e))?;
    Ok(match format {
        Format::Csv => {
            // The header is the first record; the bytes read past it start the first block.
            let mut text = Vec::new();
            let mut want = 1 << 16;
            let header_end = loop {
                let eof = fill(&mut file, &mut text, want).map_err(|e| unreadable(path, e))?;
                check_text(path, &text)?;
                match last_record_end(&text) {
                    Some(_) => break first_record_end(&text),
                    None if eof => break text.len(),
                    None => want *= 2,
                }
            };
            let header = parse_csv(&text[..header_end], None).map_err(|e| unreadable(path, e))?;
            let names: Vec<String> = header.get_column_names().iter().map(|n| n.to_string()).collect();
            let schema = Arc::new(names.iter().map(|n| Field::new(n.as_str().into(), DataType::String)).collect());
            (names, Source::Csv { file, text, used: header_end, eof: false, schema })
        }
        Format::Parquet => {
            let mut reader = ParquetReader::new(file);
            let schema = reader.schema().map_err(|e| unreadable(path, e))?;
            let metadata = reader.get_metadata().map_err(|e| unreadable(path, e))?.clone();
            let names = schema.iter_names().map(|n| n.to_string()).collect();
            (names, Source::Parquet { metadata, next_group: 0 })
        }
    })
}

impl TableReader {
    /// Opens an input table: reads its header (CSV) or schema (Parquet), refusing the
    /// table if a required column is missing or a header names a direct identifier. A
    /// folder is read as one table made of its part files (see [`TableFiles`]).
    pub fn open(path: &Path, table: Table) -> Result<TableReader> {
        Self::open_with(path, table, CSV_BLOCK_BYTES, PARQUET_BLOCK_ROWS)
    }

    fn open_with(path: &Path, table: Table, block_bytes: usize, block_rows: usize) -> Result<TableReader> {
        let (format, mut to_come) = part_files(path)?;
        to_come.reverse();
        let first = to_come.pop().expect("at least one part");
        let (names, source) = open_part(&first, format)?;
        let files = TableFiles { path: path.to_path_buf(), format, parts: vec![(first.clone(), 0)] };
        let path = first.as_path();
        let spec = match table {
            Table::Measurements => MEASUREMENT_COLUMNS,
            Table::Goals => GOAL_COLUMNS,
        };
        let (mut headers, mut ignored, mut roles) = (BTreeMap::new(), Vec::new(), Vec::new());
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
            roles.push(role);
        }
        let table_name = match table {
            Table::Measurements => "measurements",
            Table::Goals => "goals",
        };
        for (name, required) in spec {
            if *required && !headers.contains_key(name) {
                return Err(Error::MissingColumn { path: path.to_path_buf(), column: name, table: table_name });
            }
        }
        Ok(TableReader {
            path: files.path.clone(),
            format,
            headers,
            ignored,
            roles,
            names,
            source,
            to_come,
            files,
            records: 0,
            block_bytes,
            block_rows,
        })
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
            let (names, source) = open_part(&next, self.format)?;
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
            Source::Csv { file, text, used, eof, schema } => {
                match next_csv_text(file, text, used, eof, self.block_bytes).map_err(|e| unreadable(path, e))? {
                    None => return Ok(None),
                    Some(end) => match parse_csv(&text[..end], Some(schema.clone())) {
                        Ok(df) => df,
                        Err(e) => {
                            let first = self.records - part_start;
                            return Err(match unclosed_quote(&text[..end]) {
                                Some((record, column)) => Error::UnclosedQuote {
                                    path: path.to_path_buf(),
                                    line: record_lines(path, Format::Csv, &[first + record])?[0],
                                    column: self.names.get(column).map_or(String::new(), |n| format!(", column `{n}`")),
                                },
                                None => unreadable(path, e),
                            });
                        }
                    },
                }
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
        if df.width() != self.roles.len() {
            return Err(unreadable(
                path,
                format!("a block has {} columns, the header {}", df.width(), self.roles.len()),
            ));
        }
        // Parquet columns of other types are written as text, the one form validation reads.
        let texts: Vec<StringChunked> = {
            use rayon::prelude::*;
            df.columns()
                .par_iter()
                .map(|col| col.cast(&DataType::String).and_then(|c| c.str().cloned()))
                .collect::<PolarsResult<_>>()
                .map_err(|e| unreadable(path, e))?
        };
        let mut block =
            Block { n_rows: df.height(), columns: BTreeMap::new(), extra: Vec::new(), first_record: self.records };
        for (text, role) in texts.into_iter().zip(&self.roles) {
            match role {
                Some(name) => {
                    block.columns.insert(*name, text);
                }
                None => block.extra.push(text),
            }
        }
        self.records += block.n_rows as u64;
        Ok(Some(block))
    }
}

/// Where a quote opened in `text` (whole records) is never closed: the record (0-based)
/// and the field (0-based) in which it opens. The message for polars' parse error, which
/// names neither.
fn unclosed_quote(text: &[u8]) -> Option<(u64, usize)> {
    let (mut record, mut field, mut in_quotes) = (0u64, 0usize, false);
    let mut opened = (0, 0);
    for i in memchr::memchr3_iter(b'"', b'\n', b',', text) {
        match text[i] {
            b'"' => {
                if !in_quotes {
                    opened = (record, field);
                }
                in_quotes = !in_quotes;
            }
            _ if in_quotes => {}
            b'\n' => (record, field) = (record + 1, 0),
            _ => field += 1,
        }
    }
    in_quotes.then_some(opened)
}

/// The end of the first record in `text` (just past its newline).
fn first_record_end(text: &[u8]) -> usize {
    let mut in_quotes = false;
    for i in memchr::memchr2_iter(b'"', b'\n', text) {
        if text[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return i + 1;
        }
    }
    text.len()
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

fn screen_column(text: &StringChunked, first_record: u64) -> ColumnScreen {
    let mut screen = ColumnScreen::default();
    for (i, v) in text.iter().enumerate() {
        if let Some(v) = v {
            screen.add(first_record + i as u64, v);
        }
    }
    screen
}

/// Validates a table block by block (each block's row ranges in parallel, the columns
/// outside the contract screened beside them), merging the parts in record order; each
/// block's text is freed once it is validated. Refuses the table if the values of any
/// column hold direct identifiers: columns outside the contract first, then the contract
/// columns in `spec` order.
fn validate_blocks<T: Default + Send>(
    reader: &mut TableReader,
    spec: &[(&str, bool)],
    validate: impl Fn(&Block, std::ops::Range<usize>) -> Part<T> + Sync,
    append: impl Fn(&mut T, T) + Copy,
    mut after_block: impl FnMut(&mut T) -> Result<()>,
) -> Result<(T, Vec<crate::model::Rejection>)> {
    use rayon::prelude::*;
    let mut all: Part<T> = Default::default();
    let mut extra = vec![ColumnScreen::default(); reader.ignored.len()];
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
        for block in blocks {
            let block = block?;
            let (parts, screens) = rayon::join(
                || row_ranges(block.n_rows).into_par_iter().map(|r| validate(&block, r)).collect::<Vec<_>>(),
                || block.extra.par_iter().map(|c| screen_column(c, block.first_record)).collect::<Vec<_>>(),
            );
            for (s, later) in extra.iter_mut().zip(&screens) {
                s.merge(later);
            }
            // Each range's rows go straight onto the table's (not first onto the block's
            // first range: that copied half of every block once more).
            all = merge(std::iter::once(std::mem::take(&mut all)).chain(parts).collect(), append);
            after_block(&mut all.0)?;
        }
        Ok(())
    })?;
    let (rows, rejected, screens) = all;
    for (header, screen) in reader.ignored.iter().zip(&extra) {
        refuse_on(reader.files(), header, screen)?;
    }
    for ((name, _), screen) in spec.iter().zip(&screens) {
        if let Some(header) = reader.headers.get(name) {
            refuse_on(reader.files(), header, screen)?;
        }
    }
    Ok((rows, rejected))
}

/// The line number on which each data record starts (records 0-based, in increasing
/// order; lines 1-based with the header on line 1). As in polars' reader, a quoted
/// field may span lines and a blank line is a record (of empty fields). For Parquet
/// the "line" is the 1-based row number.
pub fn record_lines(path: &Path, format: Format, records: &[u64]) -> Result<Vec<u64>> {
    if format == Format::Parquet {
        return Ok(records.iter().map(|r| r + 1).collect());
    }
    let mut file = File::open(path).map_err(|e| unreadable(path, e))?;
    let mut out = Vec::with_capacity(records.len());
    let mut want = records.iter().copied().peekable();
    let mut buf = vec![0u8; 1 << 20];
    let mut line: u64 = 1;
    let mut in_quotes = false;
    let mut at_record_start = true;
    // The header is record -1.
    let mut record: i64 = -2;
    'scan: loop {
        let n = file.read(&mut buf).map_err(|e| unreadable(path, e))?;
        if n == 0 {
            break;
        }
        // Only quotes and newlines matter: jump from one to the next.
        let mut i = 0;
        while i < n {
            if at_record_start {
                at_record_start = false;
                record += 1;
                while want.peek().is_some_and(|&w| w as i64 == record) {
                    out.push(line);
                    want.next();
                }
                if want.peek().is_none() {
                    break 'scan;
                }
            }
            let Some(at) = memchr::memchr2(b'"', b'\n', &buf[i..n]) else { break };
            if buf[i + at] == b'"' {
                in_quotes = !in_quotes;
            } else {
                line += 1;
                at_record_start = !in_quotes;
            }
            i += at + 1;
        }
    }
    // Records past the end (not expected): report them after the last line.
    out.extend(want.map(|_| line));
    Ok(out)
}

/// The text of the nine contract columns of `spec` over records `range`, one row at a time
/// (`None` = empty value or absent column).
/// Also screens each value for direct identifiers into `screens`.
fn for_each_row(
    raw: &Block,
    spec: &[(&str, bool)],
    range: std::ops::Range<usize>,
    screens: &mut [ColumnScreen; 9],
    mut f: impl for<'s> FnMut(u64, [Option<&'s str>; 9]),
) {
    // Slicing a chunked column is zero-copy; an absent column has no chunks (all `None`).
    let sliced: Vec<Option<StringChunked>> =
        spec.iter().map(|(name, _)| raw.column(name).map(|c| c.slice(range.start as i64, range.len()))).collect();
    let mut cols: Vec<TextCursor> = sliced.iter().map(TextCursor::new).collect();
    for record in range {
        let mut row: [Option<&str>; 9] = [None; 9];
        for ((slot, c), screen) in row.iter_mut().zip(cols.iter_mut()).zip(screens.iter_mut()) {
            *slot = c.next();
            if let Some(v) = *slot {
                screen.add(raw.first_record + record as u64, v);
            }
        }
        f(raw.first_record + record as u64, row);
    }
}

type TextArray = <StringType as PolarsDataType>::Array;

/// A text column read value by value over its chunks: a plain cursor, as the chained
/// per-chunk iterators (called through a box for each of nine columns) were a visible
/// share of validation at tens of millions of values.
struct TextCursor<'a> {
    chunks: Vec<&'a TextArray>,
    chunk: usize,
    at: usize,
}

impl<'a> TextCursor<'a> {
    fn new(column: &'a Option<StringChunked>) -> TextCursor<'a> {
        let chunks = column.as_ref().map_or_else(Vec::new, |c| c.downcast_iter().collect());
        TextCursor { chunks, chunk: 0, at: 0 }
    }

    /// The next value (`None` for a null, and past the end).
    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        while let Some(arr) = self.chunks.get(self.chunk) {
            if self.at < arr.len() {
                self.at += 1;
                return arr.get(self.at - 1);
            }
            self.chunk += 1;
            self.at = 0;
        }
        None
    }
}

/// Record ranges for the parallel row passes: one per worker thread, in file order.
fn row_ranges(n: usize) -> Vec<std::ops::Range<usize>> {
    let parts = rayon::current_num_threads().max(1);
    let size = n.div_ceil(parts).max(1);
    (0..n).step_by(size).map(|s| s..(s + size).min(n)).collect()
}

/// Rows validated over one range of records, and the identifier screens of its values.
type Part<T> = (T, Vec<crate::model::Rejection>, [ColumnScreen; 9]);

/// Merges the parts of consecutive record ranges in order.
fn merge<T: Default>(parts: Vec<Part<T>>, append: impl Fn(&mut T, T) + Copy) -> Part<T> {
    let mut parts = parts.into_iter();
    let (mut all, mut rejected, mut screens) = parts.next().unwrap_or_default();
    for (rows, rej, scr) in parts {
        append(&mut all, rows);
        rejected.extend(rej);
        for (s, later) in screens.iter_mut().zip(&scr) {
            s.merge(later);
        }
    }
    (all, rejected, screens)
}

/// Validates every measurement row: typed rows out, rejected rows listed; refuses the
/// table if its values hold direct identifiers. Row ranges are validated in parallel and
/// merged in order, so ids and output equal a single pass.
pub fn measurements(
    reader: &mut TableReader,
    registry: &crate::registry::Registry,
    today: crate::dates::Day,
) -> Result<(crate::model::Measurements, Vec<crate::model::Rejection>)> {
    let validate = |block: &Block, r| measurements_in(block, registry, today, r);
    validate_blocks(reader, MEASUREMENT_COLUMNS, validate, crate::model::Measurements::append, |_| Ok(()))
}

fn measurements_in(
    raw: &Block,
    registry: &crate::registry::Registry,
    today: crate::dates::Day,
    range: std::ops::Range<usize>,
) -> Part<crate::model::Measurements> {
    use crate::model::{Measurements, Rejection};
    use crate::validate::{check_measurement, RawMeasurement};
    let mut m = Measurements::default();
    let mut rejected = Vec::new();
    let mut screens = [ColumnScreen::default(); 9];
    for_each_row(raw, MEASUREMENT_COLUMNS, range, &mut screens, |record, f| {
        let row = RawMeasurement {
            client_id: f[0],
            episode_id: f[1],
            therapist_id: f[2],
            site_id: f[3],
            date: f[4],
            session: f[5],
            phase: f[6],
            measure: f[7],
            score: f[8],
        };
        match check_measurement(&row, registry, today) {
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
    (m, rejected, screens)
}

/// Validates every goal row, then sorts the rows into the goal analysis' order and drops
/// duplicate ratings (same client, episode, goal, scale and date). Beyond `budget` rows
/// the table goes through temporary files ([`crate::goal_rows`]).
pub fn goals(
    reader: &mut TableReader,
    today: crate::dates::Day,
    budget: usize,
) -> Result<(crate::goal_rows::GoalRows, Vec<crate::model::Rejection>)> {
    let validate = |block: &Block, r| goals_in(block, today, r);
    let mut rows = crate::goal_rows::Builder::new(budget);
    let after_block = |g: &mut crate::model::GoalRatings| rows.after_block(g).map_err(temporary_file);
    let (g, mut rejected) =
        validate_blocks(reader, GOAL_COLUMNS, validate, crate::model::GoalRatings::append, after_block)?;
    // So far `rejected` holds validation's rejections, in record order.
    let record_of = crate::model::RecordOf::new(rejected.iter().map(|r| r.record));
    let rows = rows.finish(g, &record_of, &mut rejected).map_err(temporary_file)?;
    Ok((rows, rejected))
}

fn temporary_file(source: std::io::Error) -> Error {
    Error::TemporaryFile { what: "the goal ratings", source }
}

fn goals_in(raw: &Block, today: crate::dates::Day, range: std::ops::Range<usize>) -> Part<crate::model::GoalRatings> {
    use crate::model::{GoalRatings, Rejection};
    use crate::validate::{check_goal, RawGoal};
    let mut g = GoalRatings::default();
    let mut rejected = Vec::new();
    let mut screens = [ColumnScreen::default(); 9];
    for_each_row(raw, GOAL_COLUMNS, range, &mut screens, |record, f| {
        let row = RawGoal {
            client_id: f[0],
            episode_id: f[1],
            goal_id: f[2],
            parent_goal_id: f[3],
            date: f[4],
            phase: f[5],
            scale: f[6],
            rating: f[7],
            weight: f[8],
        };
        match check_goal(&row, today) {
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
    (g, rejected, screens)
}

/// A rejection for a duplicate row; `record_of` maps a row to its input record.
pub fn duplicate_rejection(
    table: Table,
    record: u64,
    value_column: &'static str,
    why: &crate::validate::Duplicate,
    record_of: impl Fn(usize) -> u64,
) -> crate::model::Rejection {
    use crate::validate::Duplicate;
    let (code, message, duplicate_of) = match why {
        Duplicate::Exact { kept_row } => ("exact_duplicate", "exact duplicate".to_string(), Some(record_of(*kept_row))),
        Duplicate::Conflicting { rows_in_group } => (
            "conflicting_duplicate",
            format!("{rows_in_group} rows share client, episode, measure (or goal), date and session but differ in {value_column}; none is used"),
            None,
        ),
    };
    crate::model::Rejection { table, record, column: value_column, code, message, duplicate_of }
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
        write!(f, "a,b\n1,x\n\n2,\"multi\nline\"\n3,y\r\n4,z\n").unwrap();
        drop(f);
        // Records: 1,x on line 2; the blank line 3; 2,"multi… on line 4; 3,y on 6; 4,z on 7.
        assert_eq!(record_lines(&p, Format::Csv, &[0, 1, 2, 3, 4]).unwrap(), vec![2, 3, 4, 6, 7]);
        assert_eq!(record_lines(&p, Format::Csv, &[3]).unwrap(), vec![6]);
        assert_eq!(record_lines(&p, Format::Parquet, &[0, 9]).unwrap(), vec![1, 10]);
    }

    /// Validates `p` read in blocks of `block_bytes` (CSV) or `block_rows` (Parquet).
    /// Validates a measurements table with the built-in registry, as of 2025-01-01.
    fn validate_table(reader: &mut TableReader) -> Result<(crate::model::Measurements, Vec<Rejection>)> {
        let today = crate::dates::parse_iso_date("2025-01-01").unwrap();
        measurements(reader, &crate::registry::Registry::builtin(), today)
    }

    fn validated(p: &Path, block_bytes: usize, block_rows: usize) -> (crate::model::Measurements, Vec<Rejection>, u64) {
        let mut reader = TableReader::open_with(p, Table::Measurements, block_bytes, block_rows).unwrap();
        let (m, rej) = validate_table(&mut reader).unwrap();
        (m, rej, reader.records_read())
    }

    fn assert_same(
        a: &(crate::model::Measurements, Vec<Rejection>, u64),
        b: &(crate::model::Measurements, Vec<Rejection>, u64),
    ) {
        assert_eq!((&a.0.client, &a.0.episode, &a.0.therapist), (&b.0.client, &b.0.episode, &b.0.therapist));
        assert_eq!((&a.0.score, &a.0.session), (&b.0.score, &b.0.session));
        assert_eq!((&a.1, a.2), (&b.1, b.2));
        let names = |i: &crate::model::Interner| (0..i.len() as u32).map(|k| i.name(k).to_string()).collect::<Vec<_>>();
        assert_eq!(names(&a.0.keys.clients), names(&b.0.keys.clients));
    }

    use crate::model::Rejection;

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
        assert_eq!(whole.2, 29, "25 rows, three blank lines and a last row without a newline");
        assert_eq!(whole.1.len(), 7, "four bad scores and three blank lines");
        for bytes in [1, 7, 40, 64, 100] {
            assert_same(&validated(&p, bytes, 1), &whole);
        }
        // The line numbers of rejected rows agree with the blocks' record indices.
        let lines = record_lines(&p, Format::Csv, &whole.1.iter().map(|r| r.record).collect::<Vec<_>>()).unwrap();
        assert_eq!(lines[0], 6, "the first bad score (i = 3) on line 6, after a quoted newline");
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

    #[test]
    fn an_unclosed_quote_is_found_by_record_and_field() {
        assert_eq!(unclosed_quote(b"a,b\n\"x\",\"y\"\n"), None, "closed quotes, and doubled ones");
        assert_eq!(unclosed_quote(b"a,\"b\"\"c\"\n"), None);
        assert_eq!(unclosed_quote(b"a,b\nc,\"d,\ne\n"), Some((1, 1)), "opens in the second field of record 1");
        assert_eq!(unclosed_quote(b"\"a\nb\"\n\"c"), Some((1, 0)), "a closed quote spanning lines is one record");
    }

    #[test]
    fn a_record_longer_than_a_block_is_read_whole() {
        let long = format!("a,\"{}\n{}\"\nb,c\n", "x".repeat(100), "y".repeat(100));
        assert_eq!(last_record_end(long.as_bytes()), Some(long.len()));
        assert_eq!(last_record_end(&long.as_bytes()[..50]), None);
        assert_eq!(first_record_end(long.as_bytes()), long.len() - 4);
    }
}
