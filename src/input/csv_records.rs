//! CSV text split into records and fields by the `csv-core` crate (the parser under the
//! `csv` crate): comma-separated, `"` quoting with `""` for a quote inside a quoted
//! value (RFC 4180), records ended by `\n`, `\r\n` or `\r`. Where RFC 4180 leaves a text
//! undefined, csv-core's reading is the rule: a blank line is no record, a quote inside an
//! unquoted value is a character of it. One exception: a quoted value with text after its
//! closing quote (`"ab"c`, which csv-core reads as `abc`) is reported ([`QuoteCheck`]),
//! so that the row can be rejected rather than read as something nobody wrote.
//!
//! Text without a quote is read without csv-core, every value the text between two
//! delimiters ([`Delimiters`]): csv-core reads it alike (tests pin the two to the `csv`
//! crate) but made the 10 M-row benchmark about a seventh slower (BENCHMARKS.md).
//!
//! Besides reading, here: cutting a block of text into ranges of whole records for the
//! workers ([`plan`]), and where each record starts ([`record_starts`]), for line numbers.
//! Pure functions over bytes; `ingest` does the reading.

use csv_core::{ReadFieldResult, ReadRecordResult};
use std::ops::Range;

pub const QUOTE: u8 = b'"';

/// Whether `b` ends a record (outside quotes).
#[inline]
fn is_terminator(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// A csv-core reader with the contract's dialect (its defaults), [`primed`].
fn reader() -> csv_core::Reader {
    let mut reader = csv_core::Reader::new();
    prime(&mut reader);
    reader
}

/// csv-core drops a byte-order mark before the first record it reads; sustain skips a
/// file's own mark itself ([`text_start`]), so a fresh or reset reader is handed a blank
/// line first (which it skips) and a mark further on stays in the text, to be reported.
fn prime(reader: &mut csv_core::Reader) {
    let _ = reader.read_record(b"\n", &mut [0u8; 1], &mut [0usize; 1]);
}

/// Where a file's first record starts: past its byte-order mark, if it has one.
pub fn text_start(text: &[u8]) -> usize {
    if text.starts_with(BOM) {
        BOM.len()
    } else {
        0
    }
}

/// A byte-order mark (U+FEFF in UTF-8).
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The text ends inside a quoted value, which swallows the rest of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unclosed {
    /// Where the unfinished record starts (an offset in the text read).
    pub start: usize,
    /// The index of the unfinished value in its record.
    pub field: usize,
}

/// One record: its values, unescaped, and where its text lies.
#[derive(Debug)]
pub struct Record<'r> {
    /// The record's text, from its first byte to its terminator (inclusive).
    pub raw: Range<usize>,
    /// The values: csv-core's copy, one after the other; or, for text without quotes, the
    /// record's own text, the values apart by one separator (`gap`).
    values: &'r [u8],
    ends: &'r [usize],
    gap: usize,
}

impl<'r> Record<'r> {
    /// How many values the record has.
    pub fn width(&self) -> usize {
        self.ends.len()
    }

    /// All its values (to check their UTF-8 in one go), with separators between them
    /// when the text had no quotes.
    pub fn bytes(&self) -> &'r [u8] {
        self.values
    }

    /// Where [`Record::bytes`] lie in the text, when they are the text's own (no quotes).
    pub fn text_range(&self) -> Option<Range<usize>> {
        (self.gap == 1).then(|| self.raw.start..self.raw.start + self.values.len())
    }

    /// Value `k`'s range in [`Record::bytes`].
    #[inline]
    pub fn range(&self, k: usize) -> Range<usize> {
        let start = if k == 0 { 0 } else { self.ends[k - 1] + self.gap };
        start..self.ends[k]
    }
}

/// How [`Records`] reads: csv-core, or, for text without a quote, where every value is
/// the text between two delimiters, those found 64 bytes at a time ([`Delimiters`]).
/// csv-core made the 10 M-row benchmark about a seventh slower end to end, as did
/// `memchr::memchr3_iter` (a search set up for every value of a few bytes); BENCHMARKS.md,
/// "CSV reading". The readings are pinned to each other by `records_equal_the_csv_crate…`.
enum Reading<'a> {
    Core(Box<csv_core::Reader>),
    Unquoted(Delimiters<'a>),
}

/// The records of a text, one after the other: RFC 4180 as csv-core reads it.
pub struct Records<'a> {
    text: &'a [u8],
    at: usize,
    reading: Reading<'a>,
    values: Vec<u8>,
    ends: Vec<usize>,
    /// With `whole` every byte of the text belongs to a record; otherwise a record the
    /// text ends inside of is left unread (its bytes come with the next block).
    whole: bool,
}

impl<'a> Records<'a> {
    /// The records of `text` from `at` (a record's start, or a terminator before one).
    /// Looks through the whole text for a quote first: for a block, not a file.
    pub fn new(text: &'a [u8], at: usize, whole: bool) -> Records<'a> {
        let reading = match memchr::memchr(QUOTE, &text[at..]) {
            None => Reading::Unquoted(Delimiters::new(text, at)),
            Some(_) => Reading::Core(Box::new(reader())),
        };
        Records { text, at, reading, values: vec![0; 256], ends: vec![0; 16], whole }
    }

    /// A file's first record (its header), read by csv-core from past its byte-order mark
    /// without looking through the whole file for a quote.
    pub fn header(text: &'a [u8]) -> Records<'a> {
        let reading = Reading::Core(Box::new(reader()));
        Records { text, at: text_start(text), reading, values: vec![0; 256], ends: vec![0; 16], whole: true }
    }

    /// Whether the text holds a quote (and so is read by csv-core).
    pub fn quoted(&self) -> bool {
        matches!(self.reading, Reading::Core(_))
    }

    /// Where reading stands: past the last record read.
    pub fn position(&self) -> usize {
        self.at
    }

    /// The next record; `None` at the text's end (or, without `whole`, at a record the
    /// text ends inside of); an error if the text ends inside a quoted value.
    #[allow(clippy::should_implement_trait)] // a lending iterator: the record borrows the buffers
    pub fn next(&mut self) -> Option<Result<Record<'_>, Unclosed>> {
        let Reading::Core(reader) = &mut self.reading else { return self.next_unquoted().map(Ok) };
        let from = self.at;
        let (mut n_values, mut n_ends) = (0, 0);
        loop {
            let input = &self.text[self.at..];
            if input.is_empty() && !self.text[from..].iter().all(|&b| is_terminator(b)) {
                // The text ends inside a record: without `whole` it is left for later.
                if !self.whole {
                    self.at = from;
                    return None;
                }
                // With it, the record ends here, unless a quote is still open: then a
                // newline would not end it either. (A clone of the reader cannot try it
                // first: csv-core 0.1.13's `Dfa::clone` copies only its transitions.)
                self.values.resize(self.values.len().max(n_values + 1), 0);
                self.ends.resize(self.ends.len().max(n_ends + 1), 0);
                let (res, _, nout, nend) =
                    reader.read_record(b"\n", &mut self.values[n_values..], &mut self.ends[n_ends..]);
                let start = record_start(self.text, from);
                if res != ReadRecordResult::Record {
                    return Some(Err(Unclosed { start, field: count_values(&self.text[start..]) - 1 }));
                }
                let values = &self.values[..n_values + nout];
                return Some(Ok(Record { raw: start..self.at, values, ends: &self.ends[..n_ends + nend], gap: 0 }));
            }
            let (res, nin, nout, nend) =
                reader.read_record(input, &mut self.values[n_values..], &mut self.ends[n_ends..]);
            self.at += nin;
            n_values += nout;
            n_ends += nend;
            match res {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.values.resize(self.values.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    let raw = record_start(self.text, from)..self.at;
                    return Some(Ok(Record {
                        raw,
                        values: &self.values[..n_values],
                        ends: &self.ends[..n_ends],
                        gap: 0,
                    }));
                }
                ReadRecordResult::End => return None,
            }
        }
    }
}

impl<'a> Records<'a> {
    /// [`Records::next`] for text without quotes: the values between separators, a record
    /// at each terminator but for blank lines.
    #[inline]
    fn next_unquoted(&mut self) -> Option<Record<'_>> {
        let Reading::Unquoted(delimiters) = &mut self.reading else { unreachable!("text without quotes") };
        let (mut start, mut n) = (self.at, 0);
        loop {
            if n == self.ends.len() {
                self.ends.resize(n * 2, 0);
            }
            let (end, next) = match delimiters.next() {
                Some(p) => (p, p + 1),
                None if start < self.text.len() && self.whole => (self.text.len(), self.text.len()),
                None => {
                    // Without `whole`, a record the text ends inside of waits.
                    self.at = start;
                    return None;
                }
            };
            self.ends[n] = end - start;
            n += 1;
            if end == self.text.len() || is_terminator(self.text[end]) {
                if n == 1 && end == start {
                    // A blank line (or the `\n` of a `\r\n`): no record.
                    (start, n) = (next, 0);
                    continue;
                }
                self.at = next;
                let values = &self.text[start..end];
                return Some(Record { raw: start..next, values, ends: &self.ends[..n], gap: 1 });
            }
        }
    }
}

/// The separators and terminators of a text, in order. They are found 64 bytes at a
/// time, a bit per byte, so a value costs a few instructions however short it is.
pub struct Delimiters<'a> {
    text: &'a [u8],
    /// Where the 64 bytes of `mask` start.
    chunk: usize,
    /// A bit for each delimiter of the chunk not yet handed out.
    mask: u64,
}

impl<'a> Delimiters<'a> {
    /// The delimiters of `text` from `at` on.
    pub fn new(text: &'a [u8], at: usize) -> Delimiters<'a> {
        let mut d = Delimiters { text, chunk: at, mask: 0 };
        d.mask = d.mask_at(at);
        d
    }

    /// Bit `i` set where `text[at + i]` is a delimiter, for the 64 bytes from `at`.
    #[inline]
    fn mask_at(&self, at: usize) -> u64 {
        match self.text.get(at..at + 64) {
            Some(chunk) => chunk.chunks_exact(8).enumerate().fold(0, |m, (j, w)| {
                m | delimiter_bits(u64::from_le_bytes(w.try_into().expect("eight bytes"))) << (8 * j)
            }),
            None => self.text[at.min(self.text.len())..]
                .iter()
                .enumerate()
                .fold(0, |m, (i, &b)| m | u64::from(b == b',' || is_terminator(b)) << i),
        }
    }
}

impl Iterator for Delimiters<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.chunk += 64;
            if self.chunk >= self.text.len() {
                return None;
            }
            self.mask = self.mask_at(self.chunk);
        }
        let i = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.chunk + i)
    }
}

/// Bit `i` set where byte `i` of the eight in `w` (little-endian) is `,`, `\n` or `\r`.
#[inline]
fn delimiter_bits(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW: u64 = ONES * 0x7f;
    // The high bit of each zero byte of `x` (exact: no byte carries into the next).
    let zero = |x: u64| !(((x & LOW) + LOW) | x | LOW);
    let high =
        zero(w ^ (ONES * u64::from(b','))) | zero(w ^ (ONES * u64::from(b'\n'))) | zero(w ^ (ONES * u64::from(b'\r')));
    // Gathers the eight high bits into the top byte, byte i's at bit 56 + i.
    ((high >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The first byte at or after `at` that is not a terminator (blank lines skipped).
fn record_start(text: &[u8], at: usize) -> usize {
    text[at..].iter().position(|&b| !is_terminator(b)).map_or(text.len(), |p| at + p)
}

/// How many values csv-core reads in the text of one record (or the start of one).
fn count_values(text: &[u8]) -> usize {
    let mut reader = reader();
    let mut out = vec![0u8; text.len() + 1];
    let (mut at, mut count) = (0, 0);
    loop {
        let (res, nin, _) = reader.read_field(&text[at..], &mut out);
        at += nin;
        match res {
            ReadFieldResult::Field { record_end } => {
                count += 1;
                if record_end {
                    return count;
                }
            }
            ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => {}
            ReadFieldResult::End => return count.max(1),
        }
    }
}

/// Finds quoted values with text after their closing quote (`"ab"c`), which csv-core
/// reads on as unquoted text. One per worker: its reader is made once (building csv-core's
/// tables for each record of a file whose every value is quoted would cost more than
/// reading it).
pub struct QuoteCheck {
    reader: csv_core::Reader,
    out: Vec<u8>,
}

impl Default for QuoteCheck {
    fn default() -> Self {
        QuoteCheck { reader: reader(), out: Vec::new() }
    }
}

impl QuoteCheck {
    /// The index of the first value of a record (`raw`, its text) that is quoted and has
    /// text after its closing quote, if any. A well-formed quoted value is two longer than
    /// its value plus one for each quote in it, and ends with a quote.
    pub fn badly_quoted(&mut self, raw: &[u8]) -> Option<usize> {
        memchr::memchr(QUOTE, raw)?;
        self.reader.reset();
        prime(&mut self.reader);
        self.out.resize(self.out.len().max(raw.len() + 1), 0);
        // The value being read: where its text starts, and how much of it is out.
        let (mut at, mut start, mut written, mut k) = (0, 0, 0, 0);
        loop {
            let (res, nin, nout) = self.reader.read_field(&raw[at..], &mut self.out[written..]);
            (at, written) = (at + nin, written + nout);
            let record_end = match res {
                ReadFieldResult::Field { record_end } => record_end,
                ReadFieldResult::InputEmpty => continue,
                ReadFieldResult::OutputFull | ReadFieldResult::End => return None,
            };
            let mut text = &raw[start..at];
            if text.last().is_some_and(|&b| b == b',' || is_terminator(b)) {
                text = &text[..text.len() - 1];
            }
            if text.first() == Some(&QUOTE) {
                let quotes = self.out[..written].iter().filter(|&&b| b == QUOTE).count();
                if text.len() < 2 || !text.ends_with(&[QUOTE]) || text.len() != written + 2 + quotes {
                    return Some(k);
                }
            }
            if record_end {
                return None;
            }
            (start, written, k) = (at, 0, k + 1);
        }
    }
}

/// How many records of text without quotes lie in `text` (which starts at a record's
/// start or a terminator): csv-core's count, without reading the values.
fn count_unquoted(text: &[u8]) -> u64 {
    let first = u64::from(text.first().is_some_and(|&b| !is_terminator(b)));
    let after = memchr::memchr2_iter(b'\n', b'\r', text)
        .filter(|&p| text.get(p + 1).is_some_and(|&b| !is_terminator(b)))
        .count() as u64;
    first + after
}

/// A byte range of whole records and the index of its first record.
pub type RecordRange = (Range<usize>, u64);

/// A block of text cut into ranges of records for the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// About one range per worker, in order; every record of the block in one of them.
    pub ranges: Vec<RecordRange>,
    pub records: u64,
    /// Where the last planned record ends.
    pub end: usize,
}

/// Cuts the records at the start of `text` into about `parts` ranges. With `whole`
/// every byte of the text belongs to a record (the file's end); otherwise only records
/// ended by a terminator are planned (`None` if there is none), the rest left for the
/// next block. Errs with the record (its index in the text) and value of a quote the
/// text ends inside.
pub fn plan(text: &[u8], parts: usize, whole: bool) -> Result<Option<Plan>, (u64, Unclosed)> {
    let size = text.len().div_ceil(parts.max(1)).max(1);
    let mut ranges = Vec::with_capacity(parts);
    let (mut from, mut first, mut records) = (0, 0u64, 0u64);
    if memchr::memchr(QUOTE, text).is_none() {
        // Without quotes every terminator ends a record (or a blank line).
        let end = if whole { text.len() } else { memchr::memrchr2(b'\n', b'\r', text).map_or(0, |i| i + 1) };
        while from < end {
            let cut = match memchr::memchr2(b'\n', b'\r', &text[(from + size).min(end) - 1..end]) {
                Some(p) => (from + size).min(end) + p,
                None => end,
            };
            records += count_unquoted(&text[from..cut]);
            ranges.push((from..cut, first));
            (from, first) = (cut, records);
        }
        return Ok((end > 0).then_some(Plan { ranges, records, end }));
    }
    let mut reading = Records::new(text, 0, whole);
    loop {
        match reading.next() {
            Some(Ok(_)) => records += 1,
            Some(Err(open)) => return Err((records, open)),
            None => break,
        }
        let at = reading.position();
        if at - from >= size {
            ranges.push((from..at, first));
            (from, first) = (at, records);
        }
    }
    let end = if whole { text.len() } else { reading.position() };
    if end > from {
        ranges.push((from..end, first));
    }
    Ok((end > 0).then_some(Plan { ranges, records, end }))
}

/// Calls `start` with the offset of each record's first byte in `text` (whole records,
/// as [`plan`] cuts them), in order; for a record the text ends inside a quoted value of,
/// its start is the last.
pub fn record_starts(text: &[u8], mut start: impl FnMut(usize)) {
    if memchr::memchr(QUOTE, text).is_none() {
        if text.first().is_some_and(|&b| !is_terminator(b)) {
            start(0);
        }
        for p in memchr::memchr2_iter(b'\n', b'\r', text) {
            if text.get(p + 1).is_some_and(|&b| !is_terminator(b)) {
                start(p + 1);
            }
        }
        return;
    }
    let mut reading = Records::new(text, 0, true);
    while let Some(record) = reading.next() {
        match record {
            Ok(r) => start(r.raw.start),
            Err(open) => {
                start(open.start);
                return;
            }
        }
    }
}

/// How many lines end in `text[range]`: at each `\n`, and at each `\r` not followed by
/// `\n` (looked up past the range's end: a record may end at the `\r` of a `\r\n`).
pub fn line_ends(text: &[u8], range: Range<usize>) -> u64 {
    memchr::memchr2_iter(b'\n', b'\r', &text[range.clone()])
        .filter(|&p| text[range.start + p] == b'\n' || text.get(range.start + p + 1) != Some(&b'\n'))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record's values as text, read by [`Records`] (with `whole`).
    fn values(text: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut reading = Records::new(text, 0, true);
        while let Some(r) = reading.next() {
            let r = r.unwrap();
            out.push((0..r.width()).map(|k| String::from_utf8_lossy(&r.bytes()[r.range(k)]).into_owned()).collect());
        }
        out
    }

    /// The `csv` crate's reading of the same text (`flexible`: records of any length).
    fn csv_crate(text: &[u8]) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text)
            .byte_records()
            .map(|r| r.unwrap().iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect())
            .collect()
    }

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Text made of what matters to the dialect: separators, `\n`, `\r\n` and `\r`,
    /// blank lines, quoted values with separators, newlines and doubled quotes inside,
    /// stray quotes in unquoted values, text after a closing quote, byte-order marks,
    /// long values (past the reader's first buffers), and, in some texts, no quotes at all.
    fn tricky_text(seed: &mut u64) -> Vec<u8> {
        let quotes = xorshift(seed) % 3 != 0;
        let mut text = Vec::new();
        for _ in 0..1 + xorshift(seed) % 12 {
            for f in 0..xorshift(seed) % 6 {
                if f > 0 {
                    text.push(b',');
                }
                let piece: &[u8] = match xorshift(seed) % 11 {
                    0 => b"",
                    1 if quotes => b"\"\"",
                    2 if quotes => b"\"a,b\"",
                    3 if quotes => b"\"x\"\"y\nz\r\"",
                    4 if quotes => b"a\"b",
                    5 if quotes => b"\"ab\"c",
                    6 => "é 1".as_bytes(),
                    7 => b"\xef\xbb\xbfv",
                    8 => &[b'w'; 300],
                    _ => b"12",
                };
                text.extend_from_slice(piece);
            }
            let end: &[u8] = [b"\n".as_slice(), b"\r\n", b"\r", b"\n\n", b"\r\n\r\n"][(xorshift(seed) % 5) as usize];
            text.extend_from_slice(end);
        }
        if xorshift(seed) % 3 == 0 {
            text.pop();
        }
        text
    }

    #[test]
    fn quoted_values_hold_separators_newlines_and_doubled_quotes() {
        let s = |v: &str| v.to_string();
        let text = b"a,\"b,c\",\"d\ne\"\r\n\"x\"\"y\",,\"\"\n\n\nlast";
        assert_eq!(values(text), [vec![s("a"), s("b,c"), s("d\ne")], vec![s("x\"y"), s(""), s("")], vec![s("last")]]);
        // A quote inside an unquoted value is a character; `\r` alone ends a record.
        assert_eq!(values(b"a\"b,c\rd"), [vec![s("a\"b"), s("c")], vec![s("d")]]);
        let mut check = QuoteCheck::default();
        let mut badly_quoted = |raw: &[u8]| check.badly_quoted(raw);
        assert_eq!(badly_quoted(b"a,\"ab\"c,d\n"), Some(1));
        assert_eq!(badly_quoted(b"\"ab\"\"c\",\"\"\n"), None);
        assert_eq!(badly_quoted(b"a,\"ab\"c\"\n"), Some(1), "a quote after the text too");
        assert_eq!(badly_quoted(b"a\"b,c\n"), None, "not quoted: csv-core's character");
    }

    #[test]
    fn records_equal_the_csv_crate_on_every_text() {
        let mut seed = 0x5851_f42d_4c95_7f2du64;
        for case in 0..3000 {
            let text = tricky_text(&mut seed);
            // The csv crate reads an unclosed quote to the end; sustain refuses it.
            let mut reading = Records::new(&text, 0, true);
            let mut unclosed = false;
            while let Some(r) = reading.next() {
                unclosed |= r.is_err();
                if unclosed {
                    break;
                }
            }
            if unclosed {
                continue;
            }
            // A byte-order mark at the very start is the csv crate's to drop, not sustain's.
            let theirs = csv_crate(&[b"\n".as_slice(), &text].concat());
            assert_eq!(values(&text), theirs, "case {case}: {:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn plans_and_record_starts_agree_with_the_records_read() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..3000 {
            let text = tricky_text(&mut seed);
            let Ok(records) = (|| {
                let mut starts = Vec::new();
                let mut reading = Records::new(&text, 0, true);
                while let Some(r) = reading.next() {
                    starts.push(r?.raw.start);
                }
                Ok::<_, Unclosed>(starts)
            })() else {
                continue;
            };
            let mut starts = Vec::new();
            record_starts(&text, |s| starts.push(s));
            assert_eq!(starts, records, "case {case}");
            for parts in [1, 2, 5] {
                let Plan { ranges, records: n, end } =
                    plan(&text, parts, true).unwrap().unwrap_or(Plan { ranges: vec![], records: 0, end: 0 });
                assert_eq!((n, end), (records.len() as u64, text.len()), "case {case} in {parts}");
                // Each range starts at a record boundary, and its first record's index;
                // a worker reading the range alone reads its records, value for value.
                let mut at = 0;
                let all = values(&text);
                for (range, first) in &ranges {
                    assert_eq!(range.start, at, "case {case}");
                    assert_eq!(*first, records.iter().filter(|&&s| s < range.start).count() as u64, "case {case}");
                    let mut reading = Records::new(&text[..range.end], range.start, true);
                    let mut k = *first as usize;
                    while let Some(r) = reading.next() {
                        let r = r.unwrap();
                        assert_eq!(r.raw.start, records[k], "case {case}");
                        let row: Vec<String> = (0..r.width())
                            .map(|v| String::from_utf8_lossy(&r.bytes()[r.range(v)]).into_owned())
                            .collect();
                        assert_eq!(row, all[k], "case {case}");
                        k += 1;
                    }
                    assert_eq!(k, records.iter().filter(|&&s| s < range.end).count(), "case {case}");
                    at = range.end;
                }
            }
            // Not at the end: only terminated records; the rest waits for the next block.
            if let Some(cut) = plan(&text, 2, false).unwrap() {
                let terminated = records.iter().filter(|&&s| s < cut.end).count() as u64;
                assert_eq!(cut.records, terminated, "case {case}");
                assert!(is_terminator(text[cut.end - 1]), "case {case}");
            }
        }
    }

    #[test]
    fn a_quote_the_text_ends_inside_is_found_with_its_record_and_value() {
        assert_eq!(plan(b"a,b\nc,\"d\ne", 2, true), Err((1, Unclosed { start: 4, field: 1 })));
        assert_eq!(plan(b"a,b\n\"c\"\"", 1, true), Err((1, Unclosed { start: 4, field: 0 })));
        let end = |text: &[u8]| plan(text, 2, false).unwrap().map(|p| (p.end, p.records));
        assert_eq!(end(b"a,\"b\nc\"\nd,\"e\n"), Some((8, 1)));
        assert_eq!(end(b"a,b\nc"), Some((4, 1)));
        assert_eq!(end(b"a,b"), None);
        let mut starts = Vec::new();
        record_starts(b"h\n\nx,\"y\n", |s| starts.push(s));
        assert_eq!(starts, [0, 3]);
    }

    #[test]
    fn delimiters_are_every_separator_and_terminator() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..500 {
            let len = (xorshift(&mut seed) % 200) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| [b',', b'\n', b'\r', b'a', 0x80, 0xac, b'"', 0x2c ^ 0x80][(xorshift(&mut seed) % 8) as usize])
                .collect();
            let at = (xorshift(&mut seed) as usize) % (len + 1);
            let want: Vec<usize> = (at..len).filter(|&i| matches!(text[i], b',' | b'\n' | b'\r')).collect();
            assert_eq!(Delimiters::new(&text, at).collect::<Vec<_>>(), want, "{text:?} from {at}");
        }
    }

    #[test]
    fn lines_end_at_each_newline_and_each_lone_carriage_return() {
        let text = b"a\r\nb\rc\n\nd\r";
        assert_eq!(line_ends(text, 0..text.len()), 5);
        assert_eq!(line_ends(text, 0..2), 0, "the `\\r` of a `\\r\\n` is not a line end");
    }
}
