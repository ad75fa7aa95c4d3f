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

mod reader;
mod rows;
pub use reader::*;
use rows::*;

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
            let ranges = block.ranges();
            let columns: Vec<T> = ranges.iter().map(|_| spare.pop().unwrap_or_default()).collect();
            let parts: Vec<Part<T>> =
                ranges.into_par_iter().zip(columns).map(|(r, rows)| validate(&block, r, rows)).collect();
            // Each range's rows go straight onto the table's (not first onto the block's
            // first range: that copied half of every block once more).
            spare.extend(merge(&mut all, parts, append));
            after_block(&mut all.rows)?;
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
    validate_blocks(reader, MEASUREMENT_COLUMNS, validate, crate::domain::columns::Measurements::append, |_| Ok(()))
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
/// the table goes through temporary files ([`crate::input::goal_rows`]).
pub fn goals(
    reader: &mut TableReader,
    dates: DateRules,
    budget: usize,
) -> Result<(crate::input::goal_rows::GoalRows, Vec<crate::domain::columns::Rejection>)> {
    let validate = |block: &Block, r, rows| goals_in(block, dates, r, rows);
    let mut rows = crate::input::goal_rows::Builder::new(budget);
    let mut end_dates = crate::domain::columns::EndDates::new();
    let after_block = |g: &mut crate::domain::columns::GoalRatings| {
        g.take_end_dates(&mut end_dates);
        rows.after_block(g).map_err(temporary_file)
    };
    let (mut g, mut rejected) =
        validate_blocks(reader, GOAL_COLUMNS, validate, crate::domain::columns::GoalRatings::append, after_block)?;
    g.take_end_dates(&mut end_dates);
    // So far `rejected` holds validation's rejections, in record order.
    let record_of = crate::domain::columns::RecordOf::new(rejected.iter().map(|r| r.record));
    let mut rows = rows.finish(g, &record_of, &mut rejected).map_err(temporary_file)?;
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
mod tests;
