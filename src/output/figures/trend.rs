//! The trend chart (p-chart) of reliable recovery by month or quarter, on a calendar axis.

use super::*;

/// A period's place on a calendar axis ("2024-03": months since year 0, "2024-Q1":
/// quarters), so that a month without finished episodes is a gap rather than skipped.
pub(super) fn period_ordinal(period: &str) -> Option<i64> {
    let (year, rest) = period.split_once('-')?;
    let year: i64 = year.parse().ok()?;
    match rest.strip_prefix('Q') {
        Some(q) => Some(year * 4 + q.parse::<i64>().ok()? - 1),
        None => Some(year * 12 + rest.parse::<i64>().ok()? - 1),
    }
}

/// The label of [`period_ordinal`]'s number, shortened for an axis ("24-03", "24-Q1").
pub(super) fn period_axis_label(ordinal: i64, quarters: bool) -> String {
    if quarters {
        format!("{:02}-Q{}", ordinal.div_euclid(4) % 100, ordinal.rem_euclid(4) + 1)
    } else {
        format!("{:02}-{:02}", ordinal.div_euclid(12) % 100, ordinal.rem_euclid(12) + 1)
    }
}

/// Runs of consecutive calendar positions: a line is drawn within a run, never across a gap.
pub(super) fn runs_of(xs: &[f64]) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    for k in 1..=xs.len() {
        if k == xs.len() || xs[k] - xs[k - 1] > 1.0 {
            runs.push(start..k);
            start = k;
        }
    }
    runs
}

/// The caption's note of the periods a trend chart leaves out, naming those outside the
/// limits.
pub(super) fn gaps_note(withheld: &[PeriodAt], unit: &str, threshold: u64) -> String {
    if withheld.is_empty() {
        format!("Every {unit} with a finished episode is shown; the line breaks where a {unit} has none.")
    } else {
        let flagged: Vec<String> = withheld
            .iter()
            .filter_map(|(p, _)| p.outside.map(|side| format!("{} ({side} the limits)", p.period)))
            .collect();
        format!(
            "{} {unit}s with fewer than {t} episodes or recoveries are withheld, and the line breaks there{}; the dashed overall rate includes them.",
            withheld.len(),
            if flagged.is_empty() { String::new() } else { format!(" (outside the limits among them: {})", flagged.join(", ")) },
            t = threshold
        )
    }
}

/// In a unit's pack, the practice's monthly rate over the unit's months (published
/// results withhold it where the unit's are withheld), broken at gaps.
pub(super) fn practice_lines(i: &Inputs, m: u16, first: i64, last: i64) -> Vec<Line> {
    let Some(periods) = i.practice_periods else { return Vec::new() };
    let points: Vec<(f64, f64)> = periods
        .iter()
        .filter(|p| p.measure == m && !i.suppression.hides(p.recovery.k, p.recovery.n))
        .filter_map(|p| Some((period_ordinal(&p.period)?, p.recovery.rate()?)))
        .filter(|(o, _)| (first..=last).contains(o))
        .map(|(o, r)| ((o - first) as f64, r))
        .collect();
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    runs_of(&xs)
        .into_iter()
        .enumerate()
        .map(|(j, run)| Line {
            name: (j == 0).then(|| "practice, monthly".into()),
            color: charts::GREY,
            points: points[run].to_vec(),
            dashed: false,
        })
        .collect()
}

/// A period and its place on the calendar axis ([`period_ordinal`]).
pub(super) type PeriodAt<'a> = (&'a Period, i64);

/// The control limits of each run of consecutive periods as a band (none across a gap).
fn limit_bands(shown: &[PeriodAt], xs: &[f64], runs: &[std::ops::Range<usize>], p0: f64) -> Vec<Band> {
    runs.iter()
        .enumerate()
        .map(|(j, run)| Band {
            name: (j == 0).then(|| "control limits (3 σ)".into()),
            color: charts::SKY,
            opacity: 0.25,
            x: xs[run.clone()].to_vec(),
            lower: shown[run.clone()].iter().map(|(p, _)| p.limits.map_or(p0, |l| l.0)).collect(),
            upper: shown[run.clone()].iter().map(|(p, _)| p.limits.map_or(p0, |l| l.1)).collect(),
        })
        .collect()
}

pub(super) fn trend(i: &Inputs, m: u16) -> Option<Figure> {
    let all: Vec<PeriodAt> = i
        .periods
        .iter()
        .filter(|p| p.measure == m && p.recovery.n > 0)
        .filter_map(|p| Some((p, period_ordinal(&p.period)?)))
        .collect();
    // Published results withhold months of few episodes or recoveries: gaps in the line.
    let (shown, withheld): (Vec<PeriodAt>, Vec<PeriodAt>) =
        all.iter().partition(|(p, _)| !i.suppression.hides(p.recovery.k, p.recovery.n));
    if shown.len() < 3 {
        return None;
    }
    let quarters = all.iter().any(|(p, _)| p.period.contains('Q'));
    let (first, last) = (all[0].1, all[all.len() - 1].1);
    let xs: Vec<f64> = shown.iter().map(|(_, o)| (o - first) as f64).collect();
    // The limits are drawn around the rate over every period, as `caseload` computes them.
    let (k, n) =
        i.periods.iter().filter(|p| p.measure == m).fold((0, 0), |a, p| (a.0 + p.recovery.k, a.1 + p.recovery.n));
    let p0 = k as f64 / n as f64;
    let rates: Vec<(f64, f64)> =
        shown.iter().zip(&xs).map(|((p, _), x)| (*x, p.recovery.rate().unwrap_or(0.0))).collect();
    let runs = runs_of(&xs);
    let bands = limit_bands(&shown, &xs, &runs, p0);
    let mut lines: Vec<Line> = runs
        .iter()
        .enumerate()
        .map(|(j, run)| Line {
            name: (j == 0).then(|| "monthly rate".into()),
            color: charts::BLUE,
            points: rates[run.clone()].to_vec(),
            dashed: false,
        })
        .collect();
    let span = (last - first) as f64;
    lines.push(Line {
        name: Some("overall rate".into()),
        color: charts::INK,
        points: vec![(0.0, p0), (span, p0)],
        dashed: true,
    });
    lines.extend(practice_lines(i, m, first, last));
    let outside: Vec<(f64, f64, f64)> =
        shown.iter().zip(&rates).filter(|((p, _), _)| p.outside.is_some()).map(|(_, r)| (r.0, r.1, 1.6)).collect();
    let unit = if quarters { "quarter" } else { "month" };
    let gaps = gaps_note(&withheld, unit, i.suppression.threshold);
    figure(
        "trend",
        "caseload",
        charts::xy(&XyChart {
            title: format!("{}: reliable recovery by {unit} (p-chart)", code(i, m)),
            x_label: format!("{} treatment ended ({} to {})", if quarters { "Quarter" } else { "Month" }, all[0].0.period, all[all.len() - 1].0.period),
            y_label: "Reliably recovered".into(),
            x_range: (0.0, span.max(1.0)),
            y_range: (0.0, 1.0),
            bands,
            lines,
            markers: vec![
                Markers { name: None, color: charts::BLUE, points: rates.iter().map(|r| (r.0, r.1, 0.8)).collect(), filled: true },
                Markers {
                    name: (!outside.is_empty()).then(|| "outside the limits".into()),
                    color: charts::VERMILLION,
                    points: outside,
                    filled: false,
                },
            ],
            y_percent: true,
            x_names: (first..=last).map(|o| period_axis_label(o, quarters)).collect(),
        }),
        format!("Reliable-recovery rate of {} finished {} episodes at caseness, by the {unit} treatment ended, with control limits that widen for {unit}s with fewer episodes. {gaps} trends.csv lists every {unit}.", published_count(i.suppression, n), code(i, m)),
    )
}
