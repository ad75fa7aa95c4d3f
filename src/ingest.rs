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

/// A table as read: contract columns as text.
pub struct RawTable {
    pub path: PathBuf,
    pub format: Format,
    pub n_rows: usize,
    pub columns: BTreeMap<&'static str, StringChunked>,
    /// Each contract column's header as written in the file (for messages).
    pub headers: BTreeMap<&'static str, String>,
    /// Columns not in the contract, ignored (named in a warning).
    pub ignored: Vec<String>,
    /// The record index of the first row (0 unless this is a block of a larger table).
    pub first_record: u64,
}

/// Rows per block in validation: a block's text is freed once it is validated, so the
/// text and the typed rows of a whole table are never in memory together.
const BLOCK_ROWS: usize = 1 << 20;

impl RawTable {
    pub fn column(&self, name: &str) -> Option<&StringChunked> {
        self.columns.get(name)
    }

    /// Splits the table into consecutive blocks of `rows` rows (zero-copy slices). Text
    /// buffers are shared with the slices, so each is freed when the last block using
    /// it is dropped.
    fn into_blocks(self, rows: usize) -> Vec<RawTable> {
        (0..self.n_rows)
            .step_by(rows.max(1))
            .map(|start| {
                let len = rows.min(self.n_rows - start);
                RawTable {
                    path: self.path.clone(),
                    format: self.format,
                    n_rows: len,
                    columns: self.columns.iter().map(|(k, c)| (*k, c.slice(start as i64, len))).collect(),
                    headers: self.headers.clone(),
                    ignored: self.ignored.clone(),
                    first_record: self.first_record + start as u64,
                }
            })
            .collect()
    }
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
fn check_text(path: &Path) -> Result<()> {
    let mut head = [0u8; 8192];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(|e| unreadable(path, e))?;
    if head[..n].contains(&0) {
        return Err(unreadable(
            path,
            "it holds binary data, not text (is it a spreadsheet or Parquet file named .csv?)",
        ));
    }
    Ok(())
}

fn read_frame(path: &Path, format: Format) -> Result<DataFrame> {
    if format == Format::Csv {
        check_text(path)?;
    }
    match format {
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            // Every column as text: validation parses values itself so that one bad
            // value rejects one row with a reason instead of failing the file.
            .with_infer_schema_length(Some(0))
            .with_raise_if_empty(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(|e| unreadable(path, e)),
        Format::Parquet => {
            let file = File::open(path).map_err(|e| unreadable(path, e))?;
            ParquetReader::new(file).finish().map_err(|e| unreadable(path, e))
        }
    }
}

fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Reads one input table, refusing it if a required column is missing or any column
/// looks like a direct identifier.
pub fn read_table(path: &Path, table: Table) -> Result<RawTable> {
    let format = format_of(path)?;
    if !path.is_file() {
        return Err(unreadable(path, "no such file"));
    }
    let df = read_frame(path, format)?;
    let spec = match table {
        Table::Measurements => MEASUREMENT_COLUMNS,
        Table::Goals => GOAL_COLUMNS,
    };
    let table_name = match table {
        Table::Measurements => "measurements",
        Table::Goals => "goals",
    };
    // Headers are checked here, and the values of columns outside the contract, in
    // parallel; among these checks the first refusal in column order wins. The values of
    // contract columns are screened during validation (one pass over them).
    let screened: Vec<Result<(String, StringChunked)>> = {
        use rayon::prelude::*;
        df.columns()
            .par_iter()
            .map(|col| {
                let header = col.name().to_string();
                if header_is_identifier(&header) {
                    return Err(identifier(path, &header, IdentifierKind::Header, 1));
                }
                let text =
                    col.cast(&DataType::String).and_then(|c| c.str().cloned()).map_err(|e| unreadable(path, e))?;
                if !spec.iter().any(|(name, _)| *name == normalise_header(&header)) {
                    screen_column(path, format, &header, &text)?;
                }
                Ok((header, text))
            })
            .collect()
    };
    let mut columns = BTreeMap::new();
    let mut headers = BTreeMap::new();
    let mut ignored = Vec::new();
    for col in screened {
        let (header, text) = col?;
        let norm = normalise_header(&header);
        match spec.iter().find(|(name, _)| *name == norm) {
            Some((name, _)) => {
                if columns.insert(*name, text).is_some() {
                    return Err(Error::DuplicateColumn { path: path.to_path_buf(), column: header });
                }
                headers.insert(*name, header);
            }
            None => ignored.push(header),
        }
    }
    for (name, required) in spec {
        if *required && !columns.contains_key(name) {
            return Err(Error::MissingColumn { path: path.to_path_buf(), column: name, table: table_name });
        }
    }
    Ok(RawTable { path: path.to_path_buf(), format, n_rows: df.height(), columns, headers, ignored, first_record: 0 })
}

fn identifier(path: &Path, header: &str, kind: IdentifierKind, line: u64) -> Error {
    Error::Identifier { path: path.to_path_buf(), column: header.to_string(), kind: kind.describe(), line }
}

/// Refuses the table if a screen found direct identifiers in a column.
fn refuse_on(path: &Path, format: Format, header: &str, screen: &ColumnScreen) -> Result<()> {
    let key = KEY_COLUMNS.contains(&normalise_header(header).as_str());
    match screen.verdict(key) {
        Some((kind, record)) => {
            let line = record_lines(path, format, &[record]).map(|l| l[0]).unwrap_or(0);
            Err(identifier(path, header, kind, line))
        }
        None => Ok(()),
    }
}

fn screen_column(path: &Path, format: Format, header: &str, text: &StringChunked) -> Result<()> {
    let mut screen = ColumnScreen::default();
    for (i, v) in text.iter().enumerate() {
        if let Some(v) = v {
            screen.add(i as u64, v);
        }
    }
    refuse_on(path, format, header, &screen)
}

/// Refuses the table if the screens of its contract columns (in `spec` order) found
/// direct identifiers.
fn refuse_identifiers(
    (path, format, headers): &(PathBuf, Format, BTreeMap<&'static str, String>),
    spec: &[(&str, bool)],
    screens: &[ColumnScreen; 9],
) -> Result<()> {
    for ((name, _), screen) in spec.iter().zip(screens) {
        if let Some(header) = headers.get(name) {
            refuse_on(path, *format, header, screen)?;
        }
    }
    Ok(())
}

/// Validates a table block by block (each block's row ranges in parallel), merging the
/// parts in record order, and freeing each block's text once it is validated.
fn validate_in_blocks<T: Default + Send>(
    raw: RawTable,
    block_rows: usize,
    spec: &[(&str, bool)],
    validate: impl Fn(&RawTable, std::ops::Range<usize>) -> Part<T> + Sync,
    append: impl Fn(&mut T, T) + Copy,
) -> Result<(T, Vec<crate::model::Rejection>)> {
    use rayon::prelude::*;
    let source = (raw.path.clone(), raw.format, raw.headers.clone());
    let mut all: Option<Part<T>> = None;
    for block in raw.into_blocks(block_rows) {
        let parts: Vec<Part<T>> = row_ranges(block.n_rows).into_par_iter().map(|r| validate(&block, r)).collect();
        let part = merge(parts, append);
        all = Some(match all {
            None => part,
            Some(earlier) => merge(vec![earlier, part], append),
        });
    }
    let (rows, rejected, screens) = all.unwrap_or_default();
    refuse_identifiers(&source, spec, &screens)?;
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
    raw: &RawTable,
    spec: &[(&str, bool)],
    range: std::ops::Range<usize>,
    screens: &mut [ColumnScreen; 9],
    mut f: impl for<'s> FnMut(u64, [Option<&'s str>; 9]),
) {
    // Slicing a chunked column is zero-copy; an absent column yields `None`s.
    let sliced: Vec<Option<StringChunked>> =
        spec.iter().map(|(name, _)| raw.column(name).map(|c| c.slice(range.start as i64, range.len()))).collect();
    let mut cols: Vec<Box<dyn Iterator<Item = Option<&str>> + '_>> = sliced
        .iter()
        .map(|c| match c {
            Some(c) => Box::new(c.iter()) as Box<dyn Iterator<Item = Option<&str>>>,
            None => Box::new(std::iter::repeat(None)),
        })
        .collect();
    for record in range {
        let mut row: [Option<&str>; 9] = [None; 9];
        for ((slot, c), screen) in row.iter_mut().zip(cols.iter_mut()).zip(screens.iter_mut()) {
            *slot = c.next().flatten();
            if let Some(v) = *slot {
                screen.add(raw.first_record + record as u64, v);
            }
        }
        f(raw.first_record + record as u64, row);
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
    raw: RawTable,
    registry: &crate::registry::Registry,
    today: crate::dates::Day,
) -> Result<(crate::model::Measurements, Vec<crate::model::Rejection>)> {
    measurements_by_blocks(raw, BLOCK_ROWS, registry, today)
}

fn measurements_by_blocks(
    raw: RawTable,
    block_rows: usize,
    registry: &crate::registry::Registry,
    today: crate::dates::Day,
) -> Result<(crate::model::Measurements, Vec<crate::model::Rejection>)> {
    let validate = |block: &RawTable, r| measurements_in(block, registry, today, r);
    validate_in_blocks(raw, block_rows, MEASUREMENT_COLUMNS, validate, crate::model::Measurements::append)
}

fn measurements_in(
    raw: &RawTable,
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
            Ok(r) => m.push(&r, record),
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

/// Validates every goal row, then drops duplicate ratings (same client, episode, goal,
/// scale and date).
pub fn goals(
    raw: RawTable,
    today: crate::dates::Day,
) -> Result<(crate::model::GoalRatings, Vec<crate::model::Rejection>)> {
    let validate = |block: &RawTable, r| goals_in(block, today, r);
    let (g, mut rejected) =
        validate_in_blocks(raw, BLOCK_ROWS, GOAL_COLUMNS, validate, crate::model::GoalRatings::append)?;
    let g = drop_goal_duplicates(g, &mut rejected);
    Ok((g, rejected))
}

fn goals_in(
    raw: &RawTable,
    today: crate::dates::Day,
    range: std::ops::Range<usize>,
) -> Part<crate::model::GoalRatings> {
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
            Ok(r) => g.push(&r, record),
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

/// Drops duplicate goal ratings (validated rows in, rows and rejections out).
fn drop_goal_duplicates(
    mut g: crate::model::GoalRatings,
    rejected: &mut Vec<crate::model::Rejection>,
) -> crate::model::GoalRatings {
    use crate::validate::find_duplicates;
    let key = |i: usize| (g.client[i], g.episode[i], g.goal[i], g.scale[i], g.date[i]);
    let order =
        crate::model::sort_grouped(g.len(), g.clients.len(), |i| g.client[i] as usize, |i| (key(i), g.record[i]));
    let dups = find_duplicates(&order, key, |i| g.rating[i]);
    for (row, why) in &dups {
        rejected.push(duplicate_rejection(Table::Goals, g.record[*row], "rating", why, |r| g.record[r]));
    }
    if !dups.is_empty() {
        let mut keep = vec![true; g.len()];
        for (r, _) in &dups {
            keep[*r] = false;
        }
        g = g.retain_rows(&keep);
    }
    g
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

    #[test]
    fn validating_in_small_blocks_equals_one_block() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        let mut text = String::from("client_id,episode_id,therapist_id,date,session,measure,score\n");
        for i in 0..25 {
            // Clients recur across blocks; some rows are bad or duplicated.
            let score = if i % 7 == 3 { "x".to_string() } else { (i % 20).to_string() };
            let line = format!("c{},e{},t{},2024-01-{:02},{},PHQ9,{score}\n", i % 4, i % 2, i % 3, i % 28 + 1, i / 4);
            text.push_str(&line);
        }
        text.push_str("c1,e1,t1,2024-01-02,0,PHQ9,1\n\n");
        std::fs::write(&p, text).unwrap();
        let registry = crate::registry::Registry::builtin();
        let today = crate::dates::parse_iso_date("2025-01-01").unwrap();
        let read = || read_table(&p, Table::Measurements).unwrap();
        let (whole, whole_rej) = measurements_by_blocks(read(), 1 << 20, &registry, today).unwrap();
        let (blocks, block_rej) = measurements_by_blocks(read(), 3, &registry, today).unwrap();
        assert_eq!((whole.client, whole.episode, whole.therapist), (blocks.client, blocks.episode, blocks.therapist));
        assert_eq!((whole.record, whole.score, whole.session), (blocks.record, blocks.score, blocks.session));
        assert_eq!(whole_rej, block_rej);
        assert_eq!(whole_rej.len(), 5, "four bad scores and the blank line");
        let names = |i: &crate::model::Interner| (0..i.len() as u32).map(|k| i.name(k).to_string()).collect::<Vec<_>>();
        assert_eq!(names(&whole.clients), names(&blocks.clients));
    }
}
