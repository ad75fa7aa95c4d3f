//! Row-level validation: every input row is either turned into typed values or
//! rejected with the column at fault and a reason. Nothing here aborts; only
//! unreadable files and missing columns stop a run (see `ingest`).

use crate::dates::{format_day, parse_iso_date, DateError, Day};
use crate::model::{GoalScale, Measurements, Phase, NO_KEY, NO_SESSION};
use crate::registry::Registry;

/// One measurement row as text, straight from the file (`None` = empty or absent column).
#[derive(Debug, Default, Clone, Copy)]
pub struct RawMeasurement<'a> {
    pub client_id: Option<&'a str>,
    pub episode_id: Option<&'a str>,
    pub therapist_id: Option<&'a str>,
    pub site_id: Option<&'a str>,
    pub date: Option<&'a str>,
    pub session: Option<&'a str>,
    pub phase: Option<&'a str>,
    pub measure: Option<&'a str>,
    pub score: Option<&'a str>,
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
pub fn present(v: Option<&str>) -> Option<&str> {
    v.map(trim).filter(|s| !s.is_empty())
}

/// `str::trim`, with a fast path for the usual value, which starts and ends with a
/// visible ASCII character and so has no white space to trim (every value of every row
/// is trimmed, and `str::trim` decodes characters to find Unicode white space).
#[inline]
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Shortens a value for quoting in a message.
fn quoted(v: &str) -> String {
    let short: String = v.chars().take(40).collect();
    if short.len() < v.len() {
        format!("'{short}…'")
    } else {
        format!("'{short}'")
    }
}

fn empty_row() -> Fault {
    fault("", "empty_row", "the row is empty (a blank line, or only commas)".into())
}

fn required<'a>(v: Option<&'a str>, column: &'static str) -> Result<&'a str, Fault> {
    present(v).ok_or_else(|| fault(column, "missing_value", format!("{column} is empty")))
}

fn check_date(v: Option<&str>, column: &'static str, today: Day) -> Result<Day, Fault> {
    let raw = required(v, column)?;
    match parse_iso_date(raw) {
        Ok(d) if d > today => Err(fault(
            column,
            "future_date",
            format!("{column} {} is after today ({})", quoted(raw), format_day(today)),
        )),
        Ok(d) => Ok(d),
        Err(DateError::Impossible) => {
            Err(fault(column, "impossible_date", format!("{column} {} is not a day of the calendar", quoted(raw))))
        }
        Err(DateError::Format) => Err(fault(
            column,
            "unparseable_date",
            format!("{column} {} is not a date of the form YYYY-MM-DD", quoted(raw)),
        )),
    }
}

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
    registry: &Registry,
    today: Day,
) -> Result<CheckedMeasurement<'a>, Fault> {
    // A row with a client is not empty: the emptiness check waits for a missing client.
    let client_id = required(raw.client_id, "client_id").map_err(|f| {
        let r = raw;
        let fields =
            [r.client_id, r.episode_id, r.therapist_id, r.site_id, r.date, r.session, r.phase, r.measure, r.score];
        if fields.iter().all(|f| present(*f).is_none()) {
            empty_row()
        } else {
            f
        }
    })?;
    let date = check_date(raw.date, "date", today)?;
    let session = match present(raw.session) {
        None => NO_SESSION,
        Some(s) => match parse_number(s) {
            Some(x) if x < 0.0 => {
                return Err(fault("session", "negative_session", format!("session {} is negative", quoted(s))))
            }
            Some(x) if x.fract() == 0.0 && x <= f64::from(i32::MAX) => x as i32,
            _ => return Err(fault("session", "bad_session", format!("session {} is not a whole number", quoted(s)))),
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
    let measure = registry.find(measure_raw).ok_or_else(|| {
        fault(
            "measure",
            "unknown_measure",
            format!(
                "measure {} is not in the registry (see `sustain measures`; add it with --measures)",
                quoted(measure_raw)
            ),
        )
    })?;
    let m = registry.get(measure);
    let score_raw = required(raw.score, "score")?;
    let score = parse_number(score_raw)
        .ok_or_else(|| fault("score", "bad_score", format!("score {} is not a number", quoted(score_raw))))?;
    if score < m.min || score > m.max {
        return Err(fault(
            "score",
            "score_out_of_range",
            format!("score {score} is outside the {} range {} to {}", m.code, m.min, m.max),
        ));
    }
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
    })
}

impl Measurements {
    /// Appends a checked row (rows stay in record order: see [`crate::model::RecordOf`]).
    pub fn push(&mut self, r: &CheckedMeasurement) {
        let keys = &mut self.keys;
        self.client.push(keys.clients.intern(r.client_id));
        self.episode.push(keys.episodes.intern(r.episode_id));
        self.therapist.push(r.therapist_id.map_or(NO_KEY, |t| keys.therapists.intern(t)));
        self.site.push(r.site_id.map_or(NO_KEY, |s| keys.sites.intern(s)));
        self.date.push(r.date);
        self.session.push(r.session);
        self.phase.push(r.phase);
        self.measure.push(r.measure);
        self.score.push(r.score);
    }
}

impl crate::model::GoalRatings {
    /// Appends a checked goal rating (in record order, as measurements).
    pub fn push(&mut self, r: &CheckedGoal) {
        let (names, rows) = (&mut self.names, &mut self.rows);
        rows.client.push(names.clients.intern(r.client_id));
        rows.episode.push(names.episodes.intern(r.episode_id));
        rows.goal.push(names.goals.intern(r.goal_id));
        rows.parent.push(r.parent_goal_id.map_or(NO_KEY, |p| names.goals.intern(p)));
        rows.date.push(r.date);
        rows.phase.push(r.phase);
        rows.scale.push(r.scale);
        rows.rating.push(r.rating);
        rows.weight.push(r.weight);
    }
}

/// One goal rating as text.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawGoal<'a> {
    pub client_id: Option<&'a str>,
    pub episode_id: Option<&'a str>,
    pub goal_id: Option<&'a str>,
    pub parent_goal_id: Option<&'a str>,
    pub date: Option<&'a str>,
    pub phase: Option<&'a str>,
    pub scale: Option<&'a str>,
    pub rating: Option<&'a str>,
    pub weight: Option<&'a str>,
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
    pub weight: f64,
}

/// Checks one goal rating: GBO 0–10; GAS a whole number from −2 to +2; weight > 0.
pub fn check_goal<'a>(raw: &RawGoal<'a>, today: Day) -> Result<CheckedGoal<'a>, Fault> {
    let client_id = required(raw.client_id, "client_id").map_err(|f| {
        let r = raw;
        let fields =
            [r.client_id, r.episode_id, r.goal_id, r.parent_goal_id, r.date, r.phase, r.scale, r.rating, r.weight];
        if fields.iter().all(|f| present(*f).is_none()) {
            empty_row()
        } else {
            f
        }
    })?;
    let goal_id = required(raw.goal_id, "goal_id")?;
    let date = check_date(raw.date, "date", today)?;
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
        _ => std::borrow::Cow::Owned(crate::registry::normalise_code(scale_raw)),
    };
    let scale = match code.as_ref() {
        "GBO" => GoalScale::Gbo,
        "GAS" => GoalScale::Gas,
        _ => {
            return Err(fault("scale", "unknown_scale", format!("scale {} is neither GBO nor GAS", quoted(scale_raw))))
        }
    };
    let rating_raw = required(raw.rating, "rating")?;
    let rating = parse_number(rating_raw)
        .ok_or_else(|| fault("rating", "bad_rating", format!("rating {} is not a number", quoted(rating_raw))))?;
    let in_range = match scale {
        GoalScale::Gbo => (0.0..=10.0).contains(&rating),
        GoalScale::Gas => (-2.0..=2.0).contains(&rating) && rating.fract() == 0.0,
    };
    if !in_range {
        let rule = match scale {
            GoalScale::Gbo => "a GBO rating is 0 to 10",
            GoalScale::Gas => "a GAS rating is a whole number from -2 to +2",
        };
        return Err(fault("rating", "rating_out_of_range", format!("rating {rating} is invalid: {rule}")));
    }
    let weight = match present(raw.weight) {
        None => 1.0,
        Some(w) => match parse_number(w) {
            Some(x) if x > 0.0 => x,
            _ => return Err(fault("weight", "bad_weight", format!("weight {} is not a number above 0", quoted(w)))),
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
    })
}

/// A row that repeats another.
#[derive(Debug, Clone, PartialEq)]
pub enum Duplicate {
    /// Same key and same score as an earlier row, which is kept.
    Exact { kept_row: usize },
    /// Same key as another row with a different score: none of them is used.
    Conflicting { rows_in_group: usize },
}

/// Finds duplicates among rows in `order`, which must be sorted so that equal keys are
/// adjacent with the earliest input record first. Rows with the same key and value
/// repeat the first (which is kept); a key with differing values conflicts, and none
/// of its rows is used. Returns `(row, why)` pairs.
pub fn find_duplicates<K: PartialEq>(
    order: &[u32],
    key: impl Fn(usize) -> K,
    value: impl Fn(usize) -> f64,
) -> Vec<(usize, Duplicate)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let first = order[start] as usize;
        let first_key = key(first);
        let mut end = start + 1;
        while end < order.len() && key(order[end] as usize) == first_key {
            end += 1;
        }
        if end - start > 1 {
            let group = &order[start..end];
            let same = group.iter().all(|&r| value(r as usize) == value(first));
            for &r in if same { &group[1..] } else { group } {
                let why = if same {
                    Duplicate::Exact { kept_row: first }
                } else {
                    Duplicate::Conflicting { rows_in_group: group.len() }
                };
                out.push((r as usize, why));
            }
        }
        start = end;
    }
    out
}

/// Duplicate measurement rows: same client, episode, measure, session and date.
pub fn measurement_duplicates(order: &[u32], m: &Measurements) -> Vec<(usize, Duplicate)> {
    find_duplicates(order, |i| (m.client[i], m.episode[i], m.measure[i], m.session[i], m.date[i]), |i| m.score[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>() -> RawMeasurement<'a> {
        RawMeasurement {
            client_id: Some("c1"),
            date: Some("2024-03-01"),
            measure: Some("PHQ-9"),
            score: Some("14"),
            ..Default::default()
        }
    }

    fn today() -> Day {
        parse_iso_date("2025-01-01").unwrap()
    }

    fn code_of(raw: RawMeasurement) -> &'static str {
        check_measurement(&raw, &Registry::builtin(), today()).unwrap_err().code
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
        let r = check_measurement(&row(), &Registry::builtin(), today()).unwrap();
        assert_eq!(r.client_id, "c1");
        assert_eq!(r.episode_id, "");
        assert_eq!(r.session, NO_SESSION);
        assert_eq!(r.phase, Phase::Treatment);
        assert_eq!(r.score, 14.0);
    }

    #[test]
    fn each_kind_of_bad_value_has_its_own_reason() {
        assert_eq!(code_of(RawMeasurement { client_id: Some(" "), ..row() }), "missing_value");
        assert_eq!(code_of(RawMeasurement { date: Some("2024-02-30"), ..row() }), "impossible_date");
        assert_eq!(code_of(RawMeasurement { date: Some("01/03/2024"), ..row() }), "unparseable_date");
        assert_eq!(code_of(RawMeasurement { date: Some("2025-01-02"), ..row() }), "future_date");
        assert_eq!(code_of(RawMeasurement { session: Some("-1"), ..row() }), "negative_session");
        assert_eq!(code_of(RawMeasurement { session: Some("2.5"), ..row() }), "bad_session");
        assert_eq!(code_of(RawMeasurement { phase: Some("discharged"), ..row() }), "unknown_phase");
        assert_eq!(code_of(RawMeasurement { measure: Some("XYZ"), ..row() }), "unknown_measure");
        assert_eq!(code_of(RawMeasurement { score: Some("abc"), ..row() }), "bad_score");
        assert_eq!(code_of(RawMeasurement { score: Some("NaN"), ..row() }), "bad_score");
        assert_eq!(code_of(RawMeasurement { score: Some("28"), ..row() }), "score_out_of_range");
        assert_eq!(code_of(RawMeasurement { score: Some("-1"), ..row() }), "score_out_of_range");
    }

    #[test]
    fn today_itself_is_not_in_the_future_and_range_ends_are_valid() {
        let reg = Registry::builtin();
        assert!(check_measurement(&RawMeasurement { date: Some("2025-01-01"), ..row() }, &reg, today()).is_ok());
        assert!(check_measurement(&RawMeasurement { score: Some("27"), ..row() }, &reg, today()).is_ok());
        assert!(check_measurement(&RawMeasurement { score: Some("0"), ..row() }, &reg, today()).is_ok());
        assert!(check_measurement(&RawMeasurement { session: Some("3.0"), ..row() }, &reg, today()).is_ok());
    }

    #[test]
    fn goal_rows_follow_their_scale() {
        let ok = RawGoal {
            client_id: Some("c1"),
            goal_id: Some("g1"),
            date: Some("2024-03-01"),
            scale: Some("gas"),
            rating: Some("-2"),
            ..Default::default()
        };
        let g = check_goal(&ok, today()).unwrap();
        assert_eq!((g.scale, g.rating, g.weight), (GoalScale::Gas, -2.0, 1.0));
        let code = |raw: RawGoal| check_goal(&raw, today()).unwrap_err().code;
        assert_eq!(code(RawGoal { rating: Some("0.5"), ..ok }), "rating_out_of_range");
        assert_eq!(code(RawGoal { scale: Some("GBO"), rating: Some("11"), ..ok }), "rating_out_of_range");
        assert_eq!(code(RawGoal { scale: Some("SDQ"), ..ok }), "unknown_scale");
        assert_eq!(code(RawGoal { weight: Some("0"), ..ok }), "bad_weight");
        assert_eq!(code(RawGoal { goal_id: None, ..ok }), "missing_value");
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
