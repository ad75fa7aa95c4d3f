//! Renders computed results as CSV bytes. Every text value that came from the data
//! passes through [`cell`], so that a key such as `=cmd|…` cannot become a formula
//! when the file is opened in a spreadsheet.

use crate::analyses::followup::{Curve, Durability, FollowUpScore};
use crate::analyses::sudden_gains::SuddenGains;
use crate::domain::columns::{Keys, NO_KEY};
use crate::domain::episodes::{EpisodeMeasure, Episodes};
use crate::domain::registry::Registry;
use std::borrow::Cow;
use std::io::{self, Write};

mod caseload;
mod change;
mod goals;
pub use caseload::*;
pub use change::*;
pub use goals::*;

/// Makes a text value inert in spreadsheets: values starting with `=`, `+`, `-`, `@`,
/// tab or carriage return get a leading apostrophe (OWASP CSV-injection advice).
pub fn cell(s: &str) -> Cow<'_, str> {
    if needs_guard(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether a spreadsheet could read `s` as a formula (see [`cell`]).
#[inline]
fn needs_guard(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

/// Whether a CSV field holding `s` must be quoted: it holds a comma, a quote, CR or LF.
#[inline]
fn needs_quotes(s: &[u8]) -> bool {
    s.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Shortest round-trip decimal form; `-0` prints as `0`.
pub fn num(x: f64) -> String {
    let mut out = Vec::new();
    push_num(&mut out, x);
    String::from_utf8(out).expect("ASCII")
}

/// Appends `x` as Rust's `{}` prints it (shortest round-trip digits, never an exponent),
/// with `-0` as `0`: integers through `itoa`, other values through `ryu`, whose digits are
/// the same shortest round-trip digits; the rare value `ryu` would write with an
/// exponent goes through `format!`.
pub fn push_num(out: &mut Vec<u8>, x: f64) {
    if x == 0.0 {
        out.push(b'0');
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
    } else if x.is_finite() {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(x);
        if s.contains('e') {
            out.extend_from_slice(format!("{x}").as_bytes());
        } else {
            out.extend_from_slice(s.as_bytes());
        }
    } else {
        out.extend_from_slice(format!("{x}").as_bytes());
    }
}

/// One value of a CSV row, formatted only as it is written: the large tables have
/// millions of rows, and a `String` per cell was most of their cost. It holds no text of
/// its own, so a row of values is built and dropped without touching the heap.
#[derive(Debug, Clone, Copy)]
pub enum V<'a> {
    /// Text, quoted if it must be.
    T(&'a str),
    /// A key from the data (client, episode, …): made inert as [`cell`] does, and quoted
    /// if it must be.
    Key(&'a str),
    /// A fixed word of ours (`true`, an outcome's name, …): written as it is, since it
    /// never holds what needs quotes (checked in debug builds).
    Word(&'static str),
    Num(f64),
    /// A number or an empty cell.
    OptNum(Option<f64>),
    /// A number, or an empty cell for NaN (the sudden-gains package's missing value).
    NanEmpty(f64),
    Int(i64),
    OptInt(Option<i64>),
    Day(crate::domain::dates::Day),
    OptDay(Option<crate::domain::dates::Day>),
}

impl<'a> From<&'a str> for V<'a> {
    fn from(s: &'a str) -> V<'a> {
        V::T(s)
    }
}

/// A CSV writer for the result tables. It writes what the `csv` crate writes with its
/// defaults and `\n` line ends (a field is quoted only when it holds a comma, a quote, CR
/// or LF, quotes doubled; a record of one empty field is `""`), but formats numbers
/// straight into its row buffer and hands the output large slices: the general writer's
/// per-field state machine was a tenth of a 10 M-row run.
pub struct CsvOut<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    /// Fields written in the current record, and where its bytes begin in `buf`.
    fields: usize,
    record_start: usize,
}

/// [`CsvOut`] hands its buffer to the writer once it holds this many bytes.
pub const CSV_CHUNK: usize = 1 << 16;

impl<'w> CsvOut<'w> {
    pub fn new(out: &'w mut dyn Write) -> CsvOut<'w> {
        CsvOut { out, buf: Vec::with_capacity(CSV_CHUNK + 4096), fields: 0, record_start: 0 }
    }

    #[inline]
    fn separate(&mut self) {
        if self.fields > 0 {
            self.buf.push(b',');
        }
        self.fields += 1;
    }

    /// One text field, quoted if it must be.
    #[inline]
    pub fn text(&mut self, s: &[u8]) {
        self.separate();
        self.push_text(b"", s);
    }

    /// `guard` then `s` as one field's bytes, quoted if `s` must be (a guard is an
    /// apostrophe, which never needs quotes).
    #[inline]
    fn push_text(&mut self, guard: &[u8], s: &[u8]) {
        if needs_quotes(s) {
            self.buf.push(b'"');
            self.buf.extend_from_slice(guard);
            for &b in s {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(guard);
            self.buf.extend_from_slice(s);
        }
    }

    /// One value (numbers, counts and dates never need quotes). Inlined into the row
    /// loops: a call per cell was a visible share of writing the large tables.
    #[inline(always)]
    pub fn value(&mut self, v: &V) {
        self.separate();
        match *v {
            V::T(s) => self.push_text(b"", s.as_bytes()),
            V::Key(s) => self.push_text(if needs_guard(s) { b"'" } else { b"" }, s.as_bytes()),
            V::Word(s) => {
                debug_assert!(!needs_quotes(s.as_bytes()) && !needs_guard(s), "{s:?} is not a plain word");
                self.buf.extend_from_slice(s.as_bytes());
            }
            V::Num(x) | V::OptNum(Some(x)) => push_num(&mut self.buf, x),
            V::NanEmpty(x) if !x.is_nan() => push_num(&mut self.buf, x),
            V::Int(i) | V::OptInt(Some(i)) => self.buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            V::Day(d) | V::OptDay(Some(d)) => self.buf.extend_from_slice(&crate::domain::dates::day_bytes(d)),
            V::OptNum(None) | V::NanEmpty(_) | V::OptInt(None) | V::OptDay(None) => {}
        }
    }

    /// Ends the current record.
    pub fn end_record(&mut self) -> io::Result<()> {
        if self.fields == 1 && self.buf.len() == self.record_start {
            self.buf.extend_from_slice(b"\"\"");
        }
        self.buf.push(b'\n');
        self.fields = 0;
        if self.buf.len() >= CSV_CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.record_start = self.buf.len();
        Ok(())
    }

    /// A record of text fields (headers, small tables).
    pub fn write_record<I, T>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        for f in fields {
            self.text(f.as_ref());
        }
        self.end_record()
    }

    /// A row of a table with fixed columns: the compiler checks that it has as many
    /// values as the table has columns.
    pub fn table_row<const N: usize>(&mut self, _columns: &[&str; N], row: &[V; N]) -> io::Result<()> {
        self.row(row)
    }

    /// A record of values.
    pub fn row(&mut self, row: &[V]) -> io::Result<()> {
        for v in row {
            self.value(v);
        }
        self.end_record()
    }

    /// A record of values each given beside its column's name.
    pub fn named_row(&mut self, row: &[(&str, V)]) -> io::Result<()> {
        for (_, v) in row {
            self.value(v);
        }
        self.end_record()
    }

    /// Writes out what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn opt_bool(x: Option<bool>) -> V<'static> {
    V::Word(match x {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    })
}

fn key(interner: &crate::domain::columns::Interner, id: u32) -> V<'_> {
    if id == NO_KEY {
        V::Word("")
    } else {
        V::Key(interner.name(id))
    }
}

/// `episodes.csv`: one row per episode × measure. Each value is built beside its column
/// name, and a test keeps those names equal to the header's, so the two cannot drift apart.
pub fn episodes_csv(
    out: &mut dyn Write,
    keys: &Keys,
    eps: &Episodes,
    flags: &[Durability],
    registry: &Registry,
) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(EPISODE_COLUMNS)?;
    for (it, d) in eps.items.iter().zip(flags) {
        w.named_row(&episode_row(keys, it, d, registry))?;
    }
    w.finish()
}

/// The columns of `episodes.csv`, in order (a test keeps it equal to the names
/// `episode_row` gives its values).
pub const EPISODE_COLUMNS: &[&str] = &[
    "client_id",
    "episode_id",
    "therapist_id",
    "site_id",
    "measure",
    "n_scores",
    "n_followup",
    "first_date",
    "last_date",
    "baseline",
    "final",
    "change",
    "rci",
    "reliable_change",
    "caseness_start",
    "caseness_end",
    "outcome",
    "recovery",
    "reliable_recovery",
    "response",
    "remission",
    "paired",
    "status",
    "ended_by",
    "relapse",
    "relapse_date",
    "recovery_maintained",
    "improvement_lost",
    "late_improvement",
    "deteriorated_since_end",
    "durability",
    "last_scores_held",
    "tt_caseness",
    "tt_recovery",
    "tt_reliable_improvement",
    "tt_reliable_deterioration",
    "tt_reliable_recovery",
    "series_check",
];

fn episode_row<'a>(
    keys: &'a Keys,
    it: &'a crate::domain::episodes::EpisodeMeasure,
    d: &Durability,
    registry: &'a Registry,
) -> [(&'static str, V<'a>); EPISODE_COLUMNS.len()] {
    let c = &it.classification;
    let tt = it.talking_therapies;
    let ttb = |f: fn(&crate::domain::episodes::TalkingTherapies) -> bool| opt_bool(tt.as_ref().map(f));
    [
        ("client_id", key(&keys.clients, it.client)),
        ("episode_id", key(&keys.episodes, it.episode)),
        ("therapist_id", key(&keys.therapists, it.therapist)),
        ("site_id", key(&keys.sites, it.site)),
        ("measure", registry.get(it.measure as usize).code.as_str().into()),
        ("n_scores", V::Int(it.n_scores as i64)),
        ("n_followup", V::Int(d.n_followup as i64)),
        ("first_date", V::Day(it.first_date)),
        ("last_date", V::OptDay(it.paired().then_some(it.last_date))),
        ("baseline", V::Num(it.baseline)),
        ("final", V::OptNum(it.final_score)),
        ("change", V::OptNum(c.change)),
        ("rci", V::OptNum(c.rci)),
        ("reliable_change", V::Word(c.reliable_change.map_or("", |r| r.as_str()))),
        ("caseness_start", opt_bool(c.caseness_start)),
        ("caseness_end", opt_bool(c.caseness_end)),
        ("outcome", V::Word(c.outcome.map_or("", |o| o.as_str()))),
        ("recovery", opt_bool(c.recovery)),
        ("reliable_recovery", opt_bool(c.reliable_recovery)),
        ("response", opt_bool(c.response)),
        ("remission", opt_bool(c.remission)),
        ("paired", opt_bool(Some(it.paired()))),
        ("status", V::Word(it.status().as_str())),
        ("ended_by", V::Word(it.status().ended_by().map_or("", |b| b.as_str()))),
        ("relapse", opt_bool(d.relapse)),
        ("relapse_date", V::OptDay(d.relapse_date)),
        ("recovery_maintained", opt_bool(d.recovery_maintained)),
        ("improvement_lost", opt_bool(d.improvement_lost)),
        ("late_improvement", opt_bool(d.late_improvement)),
        ("deteriorated_since_end", opt_bool(d.deteriorated_since_end)),
        ("durability", V::OptNum(d.durability_last)),
        ("last_scores_held", opt_bool(d.last_scores_held)),
        ("tt_caseness", ttb(|t| t.caseness)),
        ("tt_recovery", ttb(|t| t.recovery)),
        ("tt_reliable_improvement", ttb(|t| t.reliable_improvement)),
        ("tt_reliable_deterioration", ttb(|t| t.reliable_deterioration)),
        ("tt_reliable_recovery", ttb(|t| t.reliable_recovery)),
        ("series_check", V::Word(it.checks.words())),
    ]
}

/// One line of `rejected.csv`.
pub struct RejectedLine<'a> {
    pub file: &'a str,
    pub line: u64,
    pub column: &'a str,
    pub code: &'a str,
    pub reason: &'a str,
}

/// `rejected.csv`: file, line, reason (plus the column and a reason code).
pub fn rejected_csv(out: &mut dyn Write, lines: &[RejectedLine]) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(["file", "line", "reason", "column", "code"])?;
    for l in lines {
        w.write_record([&*cell(l.file), &l.line.to_string(), &*cell(l.reason), l.column, l.code])?;
    }
    w.finish()
}

#[cfg(test)]
mod tests;
