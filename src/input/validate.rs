//! Row-level validation: every input row is either turned into typed values or
//! rejected with the column at fault and a reason. Nothing here aborts; only
//! unreadable files and missing columns stop a run (see `ingest`).

use crate::domain::columns::{GoalScale, Measurements, Phase, NO_KEY, NO_SESSION};
use crate::domain::dates::{format_day, DateError, DateOrder, Day};
use crate::domain::registry::MeasureFinder;
use crate::domain::text::trim;

/// One measurement row straight from the file (`None` = empty or absent column).
#[derive(Debug, Default, Clone, Copy)]
pub struct RawMeasurement<'a> {
    pub client_id: Option<&'a str>,
    pub episode_id: Option<&'a str>,
    pub therapist_id: Option<&'a str>,
    pub site_id: Option<&'a str>,
    pub date: Option<DateValue<'a>>,
    pub session: Option<Number<'a>>,
    pub phase: Option<&'a str>,
    pub measure: Option<&'a str>,
    pub score: Option<Number<'a>>,
    pub episode_end: Option<DateValue<'a>>,
}

/// A value of a number column: text (CSV, or a Parquet column of text), or the number a
/// Parquet column of whole or real numbers holds. Typed values are checked as numbers
/// rather than written out and parsed back; every rule and message is the same as for
/// the text polars' cast would write (`itoa`, `zmij`), which is what they once were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number<'a> {
    Text(&'a str),
    Whole(i64),
    Real(f64),
}

impl<'a> Number<'a> {
    /// The value without surrounding white space; `None` if it is blank text.
    #[inline]
    fn present(self) -> Option<Number<'a>> {
        match self {
            Number::Text(s) => present(Some(s)).map(Number::Text),
            typed => Some(typed),
        }
    }

    /// The finite number it holds, if any. A whole number converts to the same `f64` as
    /// its text parses to (both round to nearest).
    #[inline]
    fn value(self) -> Option<f64> {
        match self {
            Number::Text(s) => parse_number(s),
            Number::Whole(v) => Some(v as f64),
            Number::Real(v) => Some(v).filter(|x| x.is_finite()),
        }
    }

    /// Calls `f` with the value as text: typed values written as polars' cast writes them.
    pub fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            Number::Text(s) => f(s),
            Number::Whole(v) => f(itoa::Buffer::new().format(v)),
            Number::Real(v) => f(zmij::Buffer::new().format(v)),
        }
    }

    /// The value quoted for a message.
    fn quoted(self) -> String {
        self.with_text(quoted)
    }
}

/// A measurement row that passed every row-level rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedMeasurement<'a> {
    pub client_id: &'a str,
    pub episode_id: &'a str,
    pub therapist_id: Option<&'a str>,
    pub site_id: Option<&'a str>,
    pub date: Day,
    pub session: i32,
    pub phase: Phase,
    pub measure: u16,
    pub score: f64,
    pub episode_end: Option<Day>,
}

/// How the dates of a table are read: the order of their parts (`--date-format`), and
/// the day after which a date is in the future (`--today`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRules {
    pub today: Day,
    pub order: DateOrder,
}

impl DateRules {
    pub fn iso(today: Day) -> DateRules {
        DateRules { today, order: DateOrder::Ymd }
    }
}

/// A value of a date column: text, or the day a Parquet column of dates holds (read for
/// years 0000 to 9999 only, whose text polars' cast writes as `YYYY-MM-DD`, the text
/// [`format_day`] writes; so every rule and message is the one that text gives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DateValue<'a> {
    Text(&'a str),
    Day(Day),
}

impl<'a> DateValue<'a> {
    #[inline]
    fn present(self) -> Option<DateValue<'a>> {
        match self {
            DateValue::Text(s) => present(Some(s)).map(DateValue::Text),
            day => Some(day),
        }
    }
}

/// Why a row was rejected: the column, a stable code and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub column: &'static str,
    pub code: &'static str,
    pub message: String,
}

fn fault(column: &'static str, code: &'static str, message: String) -> Fault {
    Fault { column, code, message }
}

/// Trims and maps empty text to `None`.
#[inline]
pub fn present(v: Option<&str>) -> Option<&str> {
    v.map(trim).filter(|s| !s.is_empty())
}

/// Shortens a value for quoting in a message.
pub(crate) fn quoted(v: &str) -> String {
    let short: String = v.chars().take(40).collect();
    if short.len() < v.len() {
        format!("'{short}…'")
    } else {
        format!("'{short}'")
    }
}

/// A number for a message: as Rust writes it when that is short, in scientific notation
/// when it is not (`1e300` rather than 301 digits). Depends on the value only, so a row
/// gives the same message from CSV text and from a Parquet number.
fn shown(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || (1e-6..1e15).contains(&a) {
        x.to_string()
    } else {
        format!("{x:e}")
    }
}

fn empty_row() -> Fault {
    fault("", "empty_row", "the row is empty (only commas)".into())
}

fn required<'a>(v: Option<&'a str>, column: &'static str) -> Result<&'a str, Fault> {
    present(v).ok_or_else(|| missing(column))
}

fn missing(column: &'static str) -> Fault {
    fault(column, "missing_value", format!("{column} is empty"))
}

/// Whether every value of a row is blank or absent.
fn all_blank(text: &[Option<&str>], numbers: &[Option<Number>]) -> bool {
    text.iter().all(|v| present(*v).is_none()) && numbers.iter().all(|v| v.and_then(Number::present).is_none())
}

fn check_date(v: Option<DateValue>, column: &'static str, rules: DateRules) -> Result<Day, Fault> {
    let today = rules.today;
    let raw = match v.and_then(DateValue::present).ok_or_else(|| missing(column))? {
        DateValue::Text(raw) => raw,
        DateValue::Day(d) if d > today => return Err(future(column, &format_day(d), today)),
        DateValue::Day(d) => return Ok(d),
    };
    match parse_date(raw, column, rules.order)? {
        d if d > today => Err(future(column, raw, today)),
        d => Ok(d),
    }
}

/// An optional date (`episode_end`): blank is `None`. A day after today is allowed (a
/// planned discharge): it ends nothing before it comes.
fn check_optional_date(v: Option<DateValue>, column: &'static str, order: DateOrder) -> Result<Option<Day>, Fault> {
    match v.and_then(DateValue::present) {
        None => Ok(None),
        Some(DateValue::Day(d)) => Ok(Some(d)),
        Some(DateValue::Text(raw)) => parse_date(raw, column, order).map(Some),
    }
}

/// Parses a date's text in `order`; the fault says which other order the text reads in,
/// if any (so that a file of UK dates names `--date-format dmy`).
fn parse_date(raw: &str, column: &'static str, order: DateOrder) -> Result<Day, Fault> {
    let error = match order.parse(raw) {
        Ok(d) => return Ok(d),
        Err(e) => e,
    };
    let hint = match DateOrder::ALL.into_iter().find(|o| *o != order && o.parse(raw).is_ok()) {
        Some(other) => format!(" (it reads as {}: use --date-format {})", other.pattern(), other.as_str()),
        None => String::new(),
    };
    Err(match error {
        DateError::Impossible => {
            fault(column, "impossible_date", format!("{column} {} is not a day of the calendar{hint}", quoted(raw)))
        }
        DateError::Format => fault(
            column,
            "unparseable_date",
            format!("{column} {} is not a date of the form {}{hint}", quoted(raw), order.pattern()),
        ),
    })
}

/// The value a rejection's message quotes (its first `'…'`), such as the date text.
pub fn quoted_value(message: &str) -> Option<&str> {
    message.split('\'').nth(1)
}

fn future(column: &'static str, raw: &str, today: Day) -> Fault {
    fault(column, "future_date", format!("{column} {} is after today ({})", quoted(raw), format_day(today)))
}

#[inline]
fn parse_number(raw: &str) -> Option<f64> {
    // Most scores and sessions are small whole numbers: read those digit by digit (the
    // same value the float parser gives), everything else through it.
    let b = raw.as_bytes();
    if !b.is_empty() && b.len() <= 9 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0')).into());
    }
    raw.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Checks one measurement row against the contract and the registry.
pub fn check_measurement<'a>(
    raw: &RawMeasurement<'a>,
    measures: &mut MeasureFinder,
    dates: DateRules,
) -> Result<CheckedMeasurement<'a>, Fault> {
    // A row with a client is not empty: the emptiness check waits for a missing client.
    let client_id = required(raw.client_id, "client_id").map_err(|f| {
        let r = raw;
        let text = [r.client_id, r.episode_id, r.therapist_id, r.site_id, r.phase, r.measure];
        if all_blank(&text, &[r.session, r.score]) && r.date.and_then(DateValue::present).is_none() {
            empty_row()
        } else {
            f
        }
    })?;
    let date = check_date(raw.date, "date", dates)?;
    let session = match raw.session.and_then(Number::present) {
        None => NO_SESSION,
        Some(s) => match s.value() {
            Some(x) if x < 0.0 => {
                return Err(fault("session", "negative_session", format!("session {} is negative", s.quoted())))
            }
            Some(x) if x.fract() == 0.0 && x <= f64::from(i32::MAX) => x as i32,
            _ => return Err(fault("session", "bad_session", format!("session {} is not a whole number", s.quoted()))),
        },
    };
    let phase = Phase::parse(raw.phase).ok_or_else(|| {
        fault(
            "phase",
            "unknown_phase",
            format!(
                "phase {} is not one of assessment, treatment, end, follow_up",
                quoted(raw.phase.unwrap_or_default().trim())
            ),
        )
    })?;
    let measure_raw = required(raw.measure, "measure")?;
    let measure = measures.find(measure_raw).ok_or_else(|| {
        fault(
            "measure",
            "unknown_measure",
            format!(
                "measure {} is not in the registry (see `sustain measures`; add it with --measures)",
                quoted(measure_raw)
            ),
        )
    })?;
    let m = measures.registry().get(measure);
    let score_raw = raw.score.and_then(Number::present).ok_or_else(|| missing("score"))?;
    let score = score_raw
        .value()
        .ok_or_else(|| fault("score", "bad_score", format!("score {} is not a number", score_raw.quoted())))?;
    if score < m.min || score > m.max {
        return Err(fault(
            "score",
            "score_out_of_range",
            format!("score {} is outside the {} range {} to {}", shown(score), m.code, m.min, m.max),
        ));
    }
    let episode_end = check_optional_date(raw.episode_end, "episode_end", dates.order)?;
    Ok(CheckedMeasurement {
        client_id,
        episode_id: present(raw.episode_id).unwrap_or(""),
        therapist_id: present(raw.therapist_id),
        site_id: present(raw.site_id),
        date,
        session,
        phase,
        measure: measure as u16,
        score,
        episode_end,
    })
}

impl Measurements {
    /// Appends a checked row (rows stay in record order: see [`crate::domain::columns::RecordOf`]).
    pub fn push(&mut self, r: &CheckedMeasurement) {
        let keys = &mut self.keys;
        let (client, episode) = (keys.clients.intern(r.client_id), keys.episodes.intern(r.episode_id));
        if let Some(day) = r.episode_end {
            crate::domain::columns::note_end_date(
                &mut self.episode_end,
                &self.client,
                &self.episode,
                (client, episode),
                day,
            );
        }
        self.client.push(client);
        self.episode.push(episode);
        self.therapist.push(r.therapist_id.map_or(NO_KEY, |t| keys.therapists.intern(t)));
        self.site.push(r.site_id.map_or(NO_KEY, |s| keys.sites.intern(s)));
        self.date.push(r.date);
        self.session.push(r.session);
        self.phase.push(r.phase);
        self.measure.push(r.measure);
        self.score.push(r.score);
    }
}

impl crate::domain::columns::GoalRatings {
    /// Appends a checked goal rating (in record order, as measurements).
    pub fn push(&mut self, r: &CheckedGoal) {
        let (names, rows) = (&mut self.names, &mut self.rows);
        let (client, episode) = (names.clients.intern(r.client_id), names.episodes.intern(r.episode_id));
        if let Some(day) = r.episode_end {
            crate::domain::columns::note_end_date(
                &mut self.episode_end,
                &rows.client,
                &rows.episode,
                (client, episode),
                day,
            );
        }
        rows.client.push(client);
        rows.episode.push(episode);
        rows.goal.push(names.goals.intern(r.goal_id));
        rows.parent.push(r.parent_goal_id.map_or(NO_KEY, |p| names.goals.intern(p)));
        rows.date.push(r.date);
        rows.phase.push(r.phase);
        rows.scale.push(r.scale);
        rows.rating.push(r.rating);
        rows.weight.push(r.weight.unwrap_or(f64::NAN));
    }
}

/// One goal rating straight from the file.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawGoal<'a> {
    pub client_id: Option<&'a str>,
    pub episode_id: Option<&'a str>,
    pub goal_id: Option<&'a str>,
    pub parent_goal_id: Option<&'a str>,
    pub date: Option<DateValue<'a>>,
    pub phase: Option<&'a str>,
    pub scale: Option<&'a str>,
    pub rating: Option<Number<'a>>,
    pub weight: Option<Number<'a>>,
    pub episode_end: Option<DateValue<'a>>,
}

/// A goal rating that passed every row-level rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedGoal<'a> {
    pub client_id: &'a str,
    pub episode_id: &'a str,
    pub goal_id: &'a str,
    pub parent_goal_id: Option<&'a str>,
    pub date: Day,
    pub phase: Phase,
    pub scale: GoalScale,
    pub rating: f64,
    /// `None` where the rating gives no weight: the goal's weight is the last one its
    /// ratings give (in the goal analysis).
    pub weight: Option<f64>,
    pub episode_end: Option<Day>,
}

/// Checks one goal rating: GBO 0–10; GAS a whole number from −2 to +2; weight > 0.
pub fn check_goal<'a>(raw: &RawGoal<'a>, dates: DateRules) -> Result<CheckedGoal<'a>, Fault> {
    let client_id = required(raw.client_id, "client_id").map_err(|f| {
        let r = raw;
        let text = [r.client_id, r.episode_id, r.goal_id, r.parent_goal_id, r.phase, r.scale];
        if all_blank(&text, &[r.rating, r.weight]) && r.date.and_then(DateValue::present).is_none() {
            empty_row()
        } else {
            f
        }
    })?;
    let goal_id = required(raw.goal_id, "goal_id")?;
    // An objective of itself would be neither a goal nor any goal's objective: it dropped
    // out of the episode's goal counts and GAS score without a word.
    if present(raw.parent_goal_id) == Some(goal_id) {
        return Err(fault(
            "parent_goal_id",
            "own_parent",
            format!("goal {} names itself as its parent goal", quoted(goal_id)),
        ));
    }
    let date = check_date(raw.date, "date", dates)?;
    let phase = Phase::parse(raw.phase).ok_or_else(|| {
        fault(
            "phase",
            "unknown_phase",
            format!(
                "phase {} is not one of assessment, treatment, end, follow_up",
                quoted(raw.phase.unwrap_or_default().trim())
            ),
        )
    })?;
    let scale_raw = required(raw.scale, "scale")?;
    let code = match scale_raw {
        "GBO" | "GAS" => std::borrow::Cow::Borrowed(scale_raw),
        _ => std::borrow::Cow::Owned(crate::domain::registry::normalise_code(scale_raw)),
    };
    let scale = match code.as_ref() {
        "GBO" => GoalScale::Gbo,
        "GAS" => GoalScale::Gas,
        _ => {
            return Err(fault("scale", "unknown_scale", format!("scale {} is neither GBO nor GAS", quoted(scale_raw))))
        }
    };
    let rating_raw = raw.rating.and_then(Number::present).ok_or_else(|| missing("rating"))?;
    let rating = rating_raw
        .value()
        .ok_or_else(|| fault("rating", "bad_rating", format!("rating {} is not a number", rating_raw.quoted())))?;
    let in_range = match scale {
        GoalScale::Gbo => (0.0..=10.0).contains(&rating),
        GoalScale::Gas => (-2.0..=2.0).contains(&rating) && rating.fract() == 0.0,
    };
    if !in_range {
        let rule = match scale {
            GoalScale::Gbo => "a GBO rating is 0 to 10",
            GoalScale::Gas => "a GAS rating is a whole number from -2 to +2",
        };
        return Err(fault("rating", "rating_out_of_range", format!("rating {} is invalid: {rule}", shown(rating))));
    }
    let weight = match raw.weight.and_then(Number::present) {
        None => None,
        Some(w) => match w.value() {
            Some(x) if x > 0.0 => Some(x),
            _ => return Err(fault("weight", "bad_weight", format!("weight {} is not a number above 0", w.quoted()))),
        },
    };
    Ok(CheckedGoal {
        client_id,
        episode_id: present(raw.episode_id).unwrap_or(""),
        goal_id,
        parent_goal_id: present(raw.parent_goal_id),
        date,
        phase,
        scale,
        rating,
        weight,
        episode_end: check_optional_date(raw.episode_end, "episode_end", dates.order)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dates::parse_iso_date;
    use crate::domain::duplicates::{measurement_duplicates, Duplicate};
    use crate::domain::registry::Registry;

    fn row<'a>() -> RawMeasurement<'a> {
        RawMeasurement {
            client_id: Some("c1"),
            date: Some(DateValue::Text("2024-03-01")),
            measure: Some("PHQ-9"),
            score: Some(Number::Text("14")),
            ..Default::default()
        }
    }

    fn goal_row<'a>() -> RawGoal<'a> {
        RawGoal {
            client_id: Some("c1"),
            goal_id: Some("g1"),
            date: Some(DateValue::Text("2024-03-01")),
            scale: Some("GBO"),
            rating: Some(Number::Text("4")),
            ..Default::default()
        }
    }

    fn today() -> DateRules {
        DateRules::iso(parse_iso_date("2025-01-01").unwrap())
    }

    fn code_of(raw: RawMeasurement) -> &'static str {
        check_measurement(&raw, &mut Registry::builtin().finder(), today()).unwrap_err().code
    }

    #[test]
    fn the_fast_trim_equals_str_trim() {
        for s in ["", " ", "a", " a", "a ", "\u{a0}a", "a\u{a0}", "é", " é ", "\ta\n", "C001", "x y", "\u{3000}"] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn whole_numbers_read_digit_by_digit_equal_the_float_parser() {
        for s in ["0", "7", "007", "27", "123456789", "1234567890", "12.5", "1e3", "-3", "+4", "inf", "x", ""] {
            assert_eq!(parse_number(s), s.parse::<f64>().ok().filter(|x| x.is_finite()), "{s}");
        }
    }

    #[test]
    fn a_clean_row_passes_with_defaults_for_optional_columns() {
        let r = check_measurement(&row(), &mut Registry::builtin().finder(), today()).unwrap();
        assert_eq!(r.client_id, "c1");
        assert_eq!(r.episode_id, "");
        assert_eq!(r.session, NO_SESSION);
        assert_eq!(r.phase, Phase::Treatment);
        assert_eq!(r.score, 14.0);
    }

    #[test]
    fn each_kind_of_bad_value_has_its_own_reason() {
        assert_eq!(code_of(RawMeasurement { client_id: Some(" "), ..row() }), "missing_value");
        assert_eq!(code_of(RawMeasurement { date: Some(DateValue::Text("2024-02-30")), ..row() }), "impossible_date");
        assert_eq!(code_of(RawMeasurement { date: Some(DateValue::Text("01/03/2024")), ..row() }), "unparseable_date");
        assert_eq!(code_of(RawMeasurement { date: Some(DateValue::Text("2025-01-02")), ..row() }), "future_date");
        assert_eq!(code_of(RawMeasurement { session: Some(Number::Text("-1")), ..row() }), "negative_session");
        assert_eq!(code_of(RawMeasurement { session: Some(Number::Text("2.5")), ..row() }), "bad_session");
        assert_eq!(code_of(RawMeasurement { phase: Some("discharged"), ..row() }), "unknown_phase");
        assert_eq!(code_of(RawMeasurement { measure: Some("XYZ"), ..row() }), "unknown_measure");
        assert_eq!(code_of(RawMeasurement { score: Some(Number::Text("abc")), ..row() }), "bad_score");
        assert_eq!(code_of(RawMeasurement { score: Some(Number::Text("NaN")), ..row() }), "bad_score");
        assert_eq!(code_of(RawMeasurement { score: Some(Number::Text("28")), ..row() }), "score_out_of_range");
        assert_eq!(code_of(RawMeasurement { score: Some(Number::Text("-1")), ..row() }), "score_out_of_range");
    }

    #[test]
    fn a_date_in_another_order_names_the_flag_that_reads_it() {
        let fault = |date: &'static str, order: DateOrder| {
            let raw = RawMeasurement { date: Some(DateValue::Text(date)), ..row() };
            let rules = DateRules { order, ..today() };
            check_measurement(&raw, &mut Registry::builtin().finder(), rules).map(|r| r.date).map_err(|f| f.message)
        };
        let uk = fault("31/01/2024", DateOrder::Ymd).unwrap_err();
        assert_eq!(
            uk,
            "date '31/01/2024' is not a date of the form YYYY-MM-DD (it reads as DD/MM/YYYY: use --date-format dmy)"
        );
        assert_eq!(quoted_value(&uk), Some("31/01/2024"));
        assert!(fault("01/31/2024", DateOrder::Ymd).unwrap_err().ends_with("use --date-format mdy)"));
        assert!(fault("yesterday", DateOrder::Ymd).unwrap_err().ends_with("of the form YYYY-MM-DD"));
        assert_eq!(fault("31/01/2024", DateOrder::Dmy), Ok(parse_iso_date("2024-01-31").unwrap()));
        assert_eq!(fault("2024-01-31", DateOrder::Dmy), Ok(parse_iso_date("2024-01-31").unwrap()));
        assert_eq!(
            fault("01/31/2024", DateOrder::Dmy).unwrap_err(),
            "date '01/31/2024' is not a day of the calendar (it reads as MM/DD/YYYY: use --date-format mdy)"
        );
    }

    #[test]
    fn episode_end_is_an_optional_date_that_may_be_after_today() {
        let check = |end: Option<&'static str>| {
            let raw = RawMeasurement { episode_end: end.map(DateValue::Text), ..row() };
            check_measurement(&raw, &mut Registry::builtin().finder(), today())
                .map(|r| r.episode_end)
                .map_err(|f| f.code)
        };
        assert_eq!(check(None), Ok(None));
        assert_eq!(check(Some(" ")), Ok(None));
        assert_eq!(check(Some("2024-06-30")), Ok(Some(parse_iso_date("2024-06-30").unwrap())));
        assert_eq!(check(Some("2025-06-30")), Ok(Some(parse_iso_date("2025-06-30").unwrap())));
        assert_eq!(check(Some("30/06/2024")), Err("unparseable_date"));
        assert_eq!(check(Some("2024-06-31")), Err("impossible_date"));
    }

    #[test]
    fn an_out_of_range_value_is_written_short_in_its_message() {
        let message = |score: Number| {
            let raw = RawMeasurement { score: Some(score), ..row() };
            check_measurement(&raw, &mut Registry::builtin().finder(), today()).unwrap_err().message
        };
        let range = "is outside the PHQ9 range 0 to 27";
        assert_eq!(message(Number::Text("28")), format!("score 28 {range}"));
        assert_eq!(message(Number::Text("28.50")), format!("score 28.5 {range}"));
        assert_eq!(message(Number::Text("-0.000001")), format!("score -0.000001 {range}"));
        assert_eq!(message(Number::Text("-1e-7")), format!("score -1e-7 {range}"));
        assert_eq!(message(Number::Text("1e300")), format!("score 1e300 {range}"));
        assert_eq!(message(Number::Real(1e300)), format!("score 1e300 {range}"));
        assert_eq!(message(Number::Whole(1_000_000_000_000_000)), format!("score 1e15 {range}"));
        assert_eq!(message(Number::Text("999999999999999")), format!("score 999999999999999 {range}"));
        let goal = RawGoal { rating: Some(Number::Text("2e20")), ..goal_row() };
        let fault = check_goal(&goal, today()).unwrap_err();
        assert_eq!(fault.message, "rating 2e20 is invalid: a GBO rating is 0 to 10");
    }

    #[test]
    fn today_itself_is_not_in_the_future_and_range_ends_are_valid() {
        let reg = Registry::builtin();
        let mut reg = reg.finder();
        assert!(check_measurement(
            &RawMeasurement { date: Some(DateValue::Text("2025-01-01")), ..row() },
            &mut reg,
            today()
        )
        .is_ok());
        assert!(
            check_measurement(&RawMeasurement { score: Some(Number::Text("27")), ..row() }, &mut reg, today()).is_ok()
        );
        assert!(
            check_measurement(&RawMeasurement { score: Some(Number::Text("0")), ..row() }, &mut reg, today()).is_ok()
        );
        assert!(check_measurement(&RawMeasurement { session: Some(Number::Text("3.0")), ..row() }, &mut reg, today())
            .is_ok());
    }

    /// Typed numbers (Parquet columns of numbers) give every row the result and message
    /// that their text, as polars' cast writes it, gives.
    #[test]
    fn typed_numbers_are_checked_as_their_text() {
        let reg = Registry::builtin();
        let mut reg = reg.finder();
        let mut outcome = |raw: RawMeasurement| match check_measurement(&raw, &mut reg, today()) {
            Ok(r) => Ok((r.session, r.score)),
            Err(f) => Err((f.code, f.message)),
        };
        // Each typed value beside the text polars' cast writes of it (`zmij` for reals,
        // pinned to the cast in `ingest`; plain decimal for whole numbers).
        let reals = [14.0, 3.0, 3.5, -1.0, -0.0, 28.0, 1e300, 0.1, f64::NAN, f64::INFINITY, -f64::INFINITY]
            .map(|v| (Number::Real(v), zmij::Buffer::new().format(v).to_string()));
        let max = i64::from(i32::MAX);
        let wholes = [0, 14, -1, 27, 28, max, max + 1, i64::MAX, i64::MIN, 9_007_199_254_740_993]
            .map(|v| (Number::Whole(v), v.to_string()));
        for (n, text) in reals.iter().chain(&wholes) {
            let mut same = |typed: RawMeasurement, as_text: RawMeasurement| {
                assert_eq!(outcome(typed), outcome(as_text), "{text}");
            };
            let t = Some(Number::Text(text));
            same(RawMeasurement { score: Some(*n), ..row() }, RawMeasurement { score: t, ..row() });
            same(RawMeasurement { session: Some(*n), ..row() }, RawMeasurement { session: t, ..row() });
        }
        fn goal(rating: Number, weight: Number) -> Result<(f64, Option<f64>), (&'static str, String)> {
            let raw = RawGoal { scale: Some("GAS"), rating: Some(rating), weight: Some(weight), ..goal_row() };
            check_goal(&raw, today()).map(|g| (g.rating, g.weight)).map_err(|f| (f.code, f.message))
        }
        for (r, w) in [(-2, 1), (3, 1), (1, 0), (0, -4)] {
            let (rt, wt) = (r.to_string(), w.to_string());
            assert_eq!(goal(Number::Whole(r), Number::Whole(w)), goal(Number::Text(&rt), Number::Text(&wt)));
        }
        // Typed days: the results of their text.
        for text in ["2024-02-29", "2025-01-01", "2025-01-02", "0000-01-01", "9999-12-31"] {
            let day = parse_iso_date(text).unwrap();
            assert_eq!(
                outcome(RawMeasurement { date: Some(DateValue::Day(day)), ..row() }),
                outcome(RawMeasurement { date: Some(DateValue::Text(text)), ..row() }),
                "{text}"
            );
        }
        // A row of typed numbers is not empty; one of blank text is.
        let blank = RawMeasurement { client_id: None, date: None, measure: None, ..Default::default() };
        assert_eq!(code_of(RawMeasurement { score: Some(Number::Text(" ")), ..blank }), "empty_row");
        assert_eq!(code_of(RawMeasurement { score: Some(Number::Whole(3)), ..blank }), "missing_value");
    }

    #[test]
    fn goal_rows_follow_their_scale() {
        let ok = RawGoal { scale: Some("gas"), rating: Some(Number::Text("-2")), ..goal_row() };
        let g = check_goal(&ok, today()).unwrap();
        assert_eq!((g.scale, g.rating, g.weight), (GoalScale::Gas, -2.0, None));
        let code = |raw: RawGoal| check_goal(&raw, today()).unwrap_err().code;
        assert_eq!(code(RawGoal { rating: Some(Number::Text("0.5")), ..ok }), "rating_out_of_range");
        assert_eq!(code(RawGoal { scale: Some("GBO"), rating: Some(Number::Text("11")), ..ok }), "rating_out_of_range");
        assert_eq!(code(RawGoal { scale: Some("SDQ"), ..ok }), "unknown_scale");
        assert_eq!(code(RawGoal { weight: Some(Number::Text("0")), ..ok }), "bad_weight");
        assert_eq!(code(RawGoal { goal_id: None, ..ok }), "missing_value");
        assert_eq!(code(RawGoal { parent_goal_id: Some(" g1 "), ..ok }), "own_parent");
        assert!(check_goal(&RawGoal { parent_goal_id: Some("g0"), ..ok }, today()).is_ok());
    }

    #[test]
    fn exact_duplicates_keep_the_first_and_conflicts_drop_all() {
        let mut m = Measurements::default();
        // rows 0,1 identical; rows 2,3,4 share a key with differing scores; row 5 alone.
        let scores = [10.0, 10.0, 12.0, 12.0, 13.0, 9.0];
        let sessions = [1, 1, 2, 2, 2, 3];
        for i in 0..6 {
            m.client.push(0);
            m.episode.push(0);
            m.measure.push(0);
            m.session.push(sessions[i]);
            m.date.push(100);
            m.score.push(scores[i]);
        }
        let order: Vec<u32> = (0..6).collect();
        let d = measurement_duplicates(&order, &m);
        assert_eq!(
            d,
            vec![
                (1, Duplicate::Exact { kept_row: 0 }),
                (2, Duplicate::Conflicting { rows_in_group: 3 }),
                (3, Duplicate::Conflicting { rows_in_group: 3 }),
                (4, Duplicate::Conflicting { rows_in_group: 3 }),
            ]
        );
    }
}
