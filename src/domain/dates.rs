//! Calendar dates as day numbers, parsed strictly from ISO 8601 (`YYYY-MM-DD`).
//!
//! Dates are stored as `i32` days since 1970-01-01 so that sorting, differences and
//! comparisons are integer operations. The conversion is Howard Hinnant's
//! `days_from_civil` algorithm, exact for the proleptic Gregorian calendar.

/// Days since 1970-01-01.
pub type Day = i32;

/// Why a date string was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateError {
    /// Not of the form `YYYY-MM-DD`.
    Format,
    /// Well-formed but not a calendar day, such as `2025-02-30`.
    Impossible,
}

/// Parses `YYYY-MM-DD`, also accepting a trailing time (`T…` or ` …`) as exports
/// from databases often carry one; the time is ignored.
pub fn parse_iso_date(text: &str) -> Result<Day, DateError> {
    let s = crate::domain::text::trim(text);
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(DateError::Format);
    }
    if b.len() > 10 && b[10] != b'T' && b[10] != b' ' {
        return Err(DateError::Format);
    }
    let digits = |r: std::ops::Range<usize>| -> Result<i32, DateError> {
        let mut v = 0i32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return Err(DateError::Format);
            }
            v = v * 10 + i32::from(c - b'0');
        }
        Ok(v)
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(DateError::Impossible);
    }
    Ok(days_from_civil(y, m, d))
}

/// The order of day, month and year in a date column's text (`--date-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DateOrder {
    /// ISO 8601, `YYYY-MM-DD` (the contract).
    #[default]
    Ymd,
    /// Day first, `DD/MM/YYYY` (UK and most of Europe).
    Dmy,
    /// Month first, `MM/DD/YYYY` (US).
    Mdy,
}

impl DateOrder {
    pub const ALL: [DateOrder; 3] = [DateOrder::Ymd, DateOrder::Dmy, DateOrder::Mdy];

    pub fn as_str(self) -> &'static str {
        match self {
            DateOrder::Ymd => "ymd",
            DateOrder::Dmy => "dmy",
            DateOrder::Mdy => "mdy",
        }
    }

    /// How a date of this order is written, for messages.
    pub fn pattern(self) -> &'static str {
        match self {
            DateOrder::Ymd => "YYYY-MM-DD",
            DateOrder::Dmy => "DD/MM/YYYY",
            DateOrder::Mdy => "MM/DD/YYYY",
        }
    }

    /// Parses a date written in this order. ISO 8601 (`YYYY-MM-DD`, year first) reads in
    /// every order: it cannot be mistaken, and a Parquet date column's dates come as it.
    pub fn parse(self, text: &str) -> Result<Day, DateError> {
        let iso = || {
            let b = crate::domain::text::trim(text).as_bytes();
            b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
        };
        match self {
            DateOrder::Ymd => parse_iso_date(text),
            _ if iso() => parse_iso_date(text),
            DateOrder::Dmy => parse_day_first(text, false),
            DateOrder::Mdy => parse_day_first(text, true),
        }
    }
}

/// Parses `DD/MM/YYYY` (or `MM/DD/YYYY` with `month_first`): day and month of one or two
/// digits, a four-digit year, separated by `/`, `-` or `.` (the same one twice), and
/// optionally a time after a space or `T`, which is ignored. Two-digit years are refused:
/// which century they mean is a guess.
fn parse_day_first(text: &str, month_first: bool) -> Result<Day, DateError> {
    let s = crate::domain::text::trim(text);
    let date = s.split([' ', 'T']).next().unwrap_or("");
    let sep = date.bytes().find(|b| matches!(b, b'/' | b'-' | b'.')).ok_or(DateError::Format)?;
    let parts: Vec<&str> = date.split(sep as char).collect();
    let number = |p: &str, widths: std::ops::RangeInclusive<usize>| -> Result<i32, DateError> {
        if widths.contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit()) {
            Ok(p.parse().expect("digits"))
        } else {
            Err(DateError::Format)
        }
    };
    let [a, b, y] = parts.as_slice() else { return Err(DateError::Format) };
    let (a, b, y) = (number(a, 1..=2)?, number(b, 1..=2)?, number(y, 4..=4)?);
    let (d, m) = if month_first { (b, a) } else { (a, b) };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(DateError::Impossible);
    }
    Ok(days_from_civil(y, m, d))
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: i32) -> i32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a valid civil date.
pub fn days_from_civil(y: i32, m: i32, d: i32) -> Day {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number.
pub fn civil_from_days(z: Day) -> (i32, i32, i32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Formats a day number as `YYYY-MM-DD`.
pub fn format_day(day: Day) -> String {
    String::from_utf8(day_bytes(day).to_vec()).expect("ASCII")
}

/// `YYYY-MM-DD` without an allocation (years outside 0–9999 are clamped to four digits;
/// validation only lets through dates it could parse from four digits).
pub fn day_bytes(day: Day) -> [u8; 10] {
    let (y, m, d) = civil_from_days(day);
    let y = y.clamp(0, 9999) as u32;
    let (m, d) = (m as u32, d as u32);
    let digit = |v: u32| b'0' + v as u8;
    [
        digit(y / 1000),
        digit(y / 100 % 10),
        digit(y / 10 % 10),
        digit(y % 10),
        b'-',
        digit(m / 10),
        digit(m % 10),
        b'-',
        digit(d / 10),
        digit(d % 10),
    ]
}

/// Today's date in UTC from the system clock.
pub fn today_utc() -> Day {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs / 86_400) as Day
}

/// A day as `YYYY-MM-DD` in JSON.
pub fn serialize_day<S: serde::Serializer>(day: &Day, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_day(*day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_days_round_trip() {
        assert_eq!(parse_iso_date("1970-01-01"), Ok(0));
        assert_eq!(parse_iso_date("2000-03-01"), Ok(11_017));
        assert_eq!(parse_iso_date("2024-02-29"), Ok(19_782));
        for day in [-700_000, -1, 0, 59, 11_016, 19_782, 60_000, 2_932_896] {
            assert_eq!(parse_iso_date(&format_day(day)), Ok(day));
        }
    }

    #[test]
    fn impossible_calendar_days_are_rejected() {
        assert_eq!(parse_iso_date("2025-02-30"), Err(DateError::Impossible));
        assert_eq!(parse_iso_date("2023-02-29"), Err(DateError::Impossible));
        assert_eq!(parse_iso_date("1900-02-29"), Err(DateError::Impossible));
        assert_eq!(parse_iso_date("2024-13-01"), Err(DateError::Impossible));
        assert_eq!(parse_iso_date("2024-04-31"), Err(DateError::Impossible));
        assert!(parse_iso_date("2000-02-29").is_ok());
    }

    #[test]
    fn malformed_dates_are_format_errors() {
        for s in ["", "2024/01/05", "05-01-2024", "2024-1-5", "20240105", "2024-01-05x", "yesterday"] {
            assert_eq!(parse_iso_date(s), Err(DateError::Format), "{s}");
        }
    }

    #[test]
    fn day_first_and_month_first_dates() {
        let jan31 = parse_iso_date("2024-01-31");
        assert_eq!(DateOrder::Dmy.parse("31/01/2024"), jan31);
        assert_eq!(DateOrder::Dmy.parse("31.1.2024"), jan31);
        assert_eq!(DateOrder::Dmy.parse(" 31-01-2024 10:15 "), jan31);
        assert_eq!(DateOrder::Mdy.parse("1/31/2024"), jan31);
        assert_eq!(DateOrder::Dmy.parse("02/03/2024"), parse_iso_date("2024-03-02"));
        assert_eq!(DateOrder::Mdy.parse("02/03/2024"), parse_iso_date("2024-02-03"));
        assert_eq!(DateOrder::Mdy.parse("31/01/2024"), Err(DateError::Impossible));
        assert_eq!(DateOrder::Dmy.parse("29/02/2023"), Err(DateError::Impossible));
        for s in ["31/01/24", "31/01-2024", "31//2024", "a1/01/2024", "131/01/2024", ""] {
            assert_eq!(DateOrder::Dmy.parse(s), Err(DateError::Format), "{s}");
        }
        // ISO reads in every order (it cannot be mistaken for another).
        for order in DateOrder::ALL {
            assert_eq!(order.parse("2024-01-31"), jan31);
        }
    }

    #[test]
    fn a_trailing_time_is_ignored() {
        assert_eq!(parse_iso_date("2024-01-05T10:30:00Z"), parse_iso_date("2024-01-05"));
        assert_eq!(parse_iso_date("2024-01-05 00:00:00"), parse_iso_date("2024-01-05"));
    }
}
