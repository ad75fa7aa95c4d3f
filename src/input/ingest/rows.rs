//! One row's contract values at a time, from a block's text or columns, each value also
//! screened for direct identifiers.

use super::*;

/// One row's contract values, in the table's column order (`None` = empty value or
/// absent column).
pub(super) struct Values<'s> {
    /// Each value as text, but for those in `typed` and `day`.
    pub(super) text: [Option<&'s str>; CONTRACT_WIDTH],
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
    pub(super) fn number(&self, k: usize) -> Option<Number<'s>> {
        self.typed[k].or(self.text[self.number_columns[k]].map(Number::Text))
    }

    /// The date: its day, or its text.
    #[inline]
    pub(super) fn date(&self) -> Option<DateValue<'s>> {
        self.day.map(DateValue::Day).or(self.text[DATE_COLUMN].map(DateValue::Text))
    }
}

/// The contract columns (in the table's order) over the records of `range`, one row
/// at a time: text, but for the values of Parquet columns of numbers in `number_columns`
/// and of dates in [`DATE_COLUMN`], which are passed as numbers and days. Also screens
/// each value for direct identifiers (contract columns into `part.screens`, the others
/// into `part.extra`). Stops at a record the text cannot be read past.
pub(super) fn for_each_row<T>(
    raw: &Block,
    range: RowRange,
    part: &mut Part<T>,
    (table, number_columns): (Table, [usize; 2]),
    f: impl for<'s> FnMut(&mut T, &mut Vec<crate::domain::columns::Rejection>, u64, &Values<'s>),
) {
    match (&raw.cells, range) {
        (Cells::Text { text, slots, .. }, RowRange::Text { bytes, first }) => {
            text_rows(text, slots, raw.first_record + first, bytes, part, (table, number_columns), f)
        }
        (Cells::Columns { columns, extra }, RowRange::Rows(range)) => {
            column_rows(columns, extra, raw.first_record, range, part, number_columns, f)
        }
        _ => unreachable!("a block's ranges are of its own kind"),
    }
}

/// [`for_each_row`] over whole records of CSV text, the first being record `first`.
fn text_rows<T>(
    mapped: &MappedText,
    slots: &[Slot],
    first: u64,
    bytes: std::ops::Range<usize>,
    part: &mut Part<T>,
    (table, number_columns): (Table, [usize; 2]),
    mut f: impl for<'s> FnMut(&mut T, &mut Vec<crate::domain::columns::Rejection>, u64, &Values<'s>),
) {
    let Part { rows, rejected, screens, extra } = part;
    // The range's records end at `bytes.end`.
    let all = &mapped.bytes()[..bytes.end];
    let mut reading = csv_records::Records::new(all, bytes.start, true);
    // Only a record with a quote can be badly quoted.
    let quotes = reading.quoted();
    let mut quote_check = csv_records::QuoteCheck::default();
    // The range's text checked once (a check per record of 50 bytes costs more).
    let range_text = std::str::from_utf8(&all[bytes.start..]).ok();
    let mut record = first;
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

/// [`for_each_row`] over rows `range` of a block of columns whose first row is record
/// `first_record`.
fn column_rows<T>(
    columns: &[Option<ColumnValues>],
    extra_columns: &[ColumnValues],
    first_record: u64,
    range: std::ops::Range<usize>,
    part: &mut Part<T>,
    number_columns: [usize; 2],
    mut f: impl for<'s> FnMut(&mut T, &mut Vec<crate::domain::columns::Rejection>, u64, &Values<'s>),
) {
    let Part { rows, rejected, screens, extra } = part;
    // An absent column has no values (all `None`).
    let sliced: Vec<Option<ColumnValues>> = columns.iter().map(|c| c.as_ref().map(|c| c.slice(&range))).collect();
    let others: Vec<Option<ColumnValues>> = extra_columns.iter().map(|c| Some(c.slice(&range))).collect();
    // The columns read as text, then the number columns and the date column.
    let typed = |c: &usize| number_columns.contains(c) || *c == DATE_COLUMN;
    let text_columns: Vec<usize> = (0..CONTRACT_WIDTH).filter(|c| !typed(c)).collect();
    let mut cols: Vec<ValueCursor> = text_columns.iter().map(|&c| ValueCursor::new(&sliced[c])).collect();
    let mut numbers = number_columns.map(|c| TypedCursor::new(&sliced[c]));
    let mut dates = DayCursor::new(&sliced[DATE_COLUMN]);
    let mut other_cols: Vec<ValueCursor> = others.iter().map(ValueCursor::new).collect();
    for record in range {
        let record = first_record + record as u64;
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

/// A column's values one at a time over its chunks: a plain cursor, as the chained
/// per-chunk iterators (called through a box for each of nine columns) were a visible
/// share of validation at tens of millions of values.
pub(super) struct Chunks<'a, A> {
    /// Each chunk and its length.
    chunks: Vec<(&'a A, usize)>,
    chunk: usize,
    at: usize,
}

impl<'a, A> Chunks<'a, A> {
    pub(super) fn new(chunks: impl Iterator<Item = (&'a A, usize)>) -> Chunks<'a, A> {
        Chunks { chunks: chunks.collect(), chunk: 0, at: 0 }
    }

    /// The chunk holding the next value, and its index there (`None` past the end).
    #[inline]
    pub(super) fn next(&mut self) -> Option<(&'a A, usize)> {
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

pub(super) type TextArray = <StringType as PolarsDataType>::Array;
pub(super) type IntArray = <Int64Type as PolarsDataType>::Array;
pub(super) type FloatArray = <Float64Type as PolarsDataType>::Array;
pub(super) type DayArray = <Int32Type as PolarsDataType>::Array;

/// A column's values as text, one at a time; numbers are written into the cursor's own
/// buffer, so a value lives until the next is asked for.
pub(super) enum ValueCursor<'a> {
    Text(Chunks<'a, TextArray>),
    Int(Chunks<'a, IntArray>, itoa::Buffer),
    Float(Chunks<'a, FloatArray>, zmij::Buffer),
    Day(Chunks<'a, DayArray>, [u8; 10]),
    Absent,
}

impl<'a> ValueCursor<'a> {
    pub(super) fn new(column: &'a Option<ColumnValues>) -> ValueCursor<'a> {
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
    pub(super) fn next(&mut self) -> Option<&str> {
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
pub(super) enum Typed<'a> {
    Text(&'a str),
    Number(Number<'static>),
}

/// A number column's values one at a time: a Parquet column of numbers as numbers (not
/// written out as text to be parsed back), any other as text.
pub(super) enum TypedCursor<'a> {
    Whole(Chunks<'a, IntArray>),
    Real(Chunks<'a, FloatArray>),
    Other(ValueCursor<'a>),
}

impl<'a> TypedCursor<'a> {
    pub(super) fn new(column: &'a Option<ColumnValues>) -> TypedCursor<'a> {
        match column {
            Some(ColumnValues::Int(c)) => TypedCursor::Whole(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            Some(ColumnValues::Float(c)) => TypedCursor::Real(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            other => TypedCursor::Other(ValueCursor::new(other)),
        }
    }

    /// The next value (`None` for a null, and past the end).
    #[inline]
    pub(super) fn next(&mut self) -> Option<Typed<'_>> {
        match self {
            TypedCursor::Whole(c) => c.next().and_then(|(a, i)| a.get(i)).map(|v| Typed::Number(Number::Whole(v))),
            TypedCursor::Real(c) => c.next().and_then(|(a, i)| a.get(i)).map(|v| Typed::Number(Number::Real(v))),
            TypedCursor::Other(c) => c.next().map(Typed::Text),
        }
    }
}

/// The date column's values one at a time: a Parquet column of dates as days, any other
/// as text.
pub(super) enum DayCursor<'a> {
    Day(Chunks<'a, DayArray>),
    Other(ValueCursor<'a>),
}

/// A value of the date column as [`DayCursor`] reads it.
pub(super) enum TypedDay<'a> {
    Text(&'a str),
    Day(crate::domain::dates::Day),
}

impl<'a> DayCursor<'a> {
    pub(super) fn new(column: &'a Option<ColumnValues>) -> DayCursor<'a> {
        match column {
            Some(ColumnValues::Day(c)) => DayCursor::Day(Chunks::new(c.downcast_iter().map(|a| (a, a.len())))),
            other => DayCursor::Other(ValueCursor::new(other)),
        }
    }

    /// The next value (`None` for a null, and past the end).
    #[inline]
    pub(super) fn next(&mut self) -> Option<TypedDay<'_>> {
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
pub(super) fn screen_number(screen: &mut ColumnScreen, record: u64, n: Number) {
    match n {
        Number::Whole(v) if v.unsigned_abs() < 1_000_000_000 => screen.add_plain(),
        Number::Real(v) if v.fract() == 0.0 && v.abs() < 1e8 => screen.add_plain(),
        _ => n.with_text(|s| screen.add(record, s)),
    }
}
