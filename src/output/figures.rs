//! The report's figures: results turned into chart specifications (`charts`) with a
//! title and a caption. Everything is aggregated (binned points, percentiles, rates) so
//! that a report on 100,000 episodes stays small and readable. Units and periods whose
//! counts are suppressed are left out of the charts too.

use crate::analyses::caseload::{Period, Unit};
use crate::analyses::followup::Curve;
use crate::analyses::trajectories::EtrPoint;
use crate::domain::episodes::Episodes;
use crate::domain::outcomes::Outcome;
use crate::domain::registry::Registry;
use crate::output::charts::{self, Band, BarChart, Line, Markers, XyChart};
use crate::stats::rates::{Suppression, Z95, Z998};
use serde::Serialize;
use std::collections::BTreeMap;

/// One figure of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: String,
    pub section: &'static str,
    pub svg: String,
    pub caption: String,
}

/// Everything the figures draw from.
pub struct Inputs<'a> {
    pub eps: &'a Episodes,
    pub registry: &'a Registry,
    /// The expected-response percentiles.
    pub etr: &'a [EtrPoint],
    pub curves: &'a [Curve],
    pub units: &'a [Unit],
    /// The practice rate and dispersion of each funnel plot (measure and unit kind).
    pub funnel_refs: &'a [crate::analyses::caseload::FunnelReference],
    pub periods: &'a [Period],
    /// In a unit's pack, the practice's periods, drawn under the unit's.
    pub practice_periods: Option<&'a [Period]>,
    /// Drawn by [`goal_progress`] where the goal results are made (they are large and
    /// are dropped once written).
    pub goal_progress: Option<Figure>,
    pub suppression: Suppression,
}

fn figure(id: &str, section: &'static str, svg: Result<String, String>, caption: String) -> Option<Figure> {
    svg.ok().map(|svg| Figure { id: id.into(), section, svg, caption })
}

/// The measure with most paired episodes: the report's main measure.
pub fn main_measure(eps: &Episodes) -> Option<u16> {
    let mut n: BTreeMap<u16, usize> = BTreeMap::new();
    for it in eps.items.iter().filter(|it| it.finished()) {
        *n.entry(it.measure).or_default() += 1;
    }
    n.into_iter().max_by_key(|(m, c)| (*c, std::cmp::Reverse(*m))).map(|(m, _)| m)
}

const OUTCOME_COLORS: [(Outcome, charts::RGBColor); 5] = [
    (Outcome::Recovered, charts::GREEN),
    (Outcome::Improved, charts::SKY),
    (Outcome::Unchanged, charts::GREY),
    (Outcome::Deteriorated, charts::VERMILLION),
    (Outcome::NotAtCaseness, charts::YELLOW),
];

/// All figures, in report order.
pub fn all(i: &Inputs) -> Vec<Figure> {
    use rayon::prelude::*;
    // Drawn side by side (each reads the episodes on its own; the run's last stage
    // otherwise has one core idle), in this order.
    type Draw<'a> = Box<dyn Fn() -> Option<Figure> + Send + Sync + 'a>;
    let mut draw: Vec<Draw> = vec![Box::new(|| outcomes_by_measure(i))];
    if let Some(m) = main_measure(i.eps) {
        draw.push(Box::new(move || jacobson(i, m)));
        draw.push(Box::new(move || outcomes_by_month(i, m)));
        draw.push(Box::new(move || dose_response(i, m)));
        draw.push(Box::new(move || expected_response(i, m)));
        draw.push(Box::new(move || relapse(i, m)));
        for kind in ["therapist", "site"] {
            draw.push(Box::new(move || funnel(i, m, kind)));
        }
        draw.push(Box::new(move || trend(i, m)));
    }
    let mut out: Vec<Figure> = draw.par_iter().filter_map(|d| d()).collect();
    out.extend(i.goal_progress.clone());
    out
}

fn code(i: &Inputs, m: u16) -> String {
    i.registry.get(m as usize).code.clone()
}

fn outcomes_by_measure(i: &Inputs) -> Option<Figure> {
    let mut by: BTreeMap<u16, BTreeMap<Outcome, f64>> = BTreeMap::new();
    let mut n: BTreeMap<u16, u64> = BTreeMap::new();
    for it in i.eps.items.iter().filter(|it| it.finished()) {
        if let Some(o) = it.classification.outcome {
            *by.entry(it.measure).or_default().entry(o).or_default() += 1.0;
            *n.entry(it.measure).or_default() += 1;
        }
    }
    by.retain(|m, _| n[m] >= i.suppression.threshold);
    if by.is_empty() {
        return None;
    }
    let categories: Vec<String> =
        by.keys().map(|m| format!("{} (n={})", code(i, *m), published_count(i.suppression, n[m]))).collect();
    let withheld: BTreeMap<u16, Vec<Outcome>> =
        by.iter().map(|(m, v)| (*m, withheld_cells(v, i.suppression))).collect();
    let share = |m: &u16, v: &BTreeMap<Outcome, f64>, o: &Outcome| {
        if withheld[m].contains(o) {
            0.0
        } else {
            v.get(o).unwrap_or(&0.0) / n[m] as f64
        }
    };
    let series = OUTCOME_COLORS
        .iter()
        .map(|(o, c)| (o.as_str().replace('_', " "), *c, by.iter().map(|(m, v)| share(m, v, o)).collect()))
        .collect();
    let note = if withheld.values().any(|w| !w.is_empty()) {
        format!(" Categories of fewer than {} episodes are withheld, with the next smallest where one alone would be, so bars may not reach 100 %.", i.suppression.threshold)
    } else {
        String::new()
    };
    let total: u64 = n.values().sum();
    figure(
        "outcomes-by-measure",
        "outcomes",
        charts::bars(&BarChart {
            title: "Outcome of finished episodes, by measure".into(),
            x_label: "Measure (finished episodes)".into(),
            y_label: "Share of finished episodes".into(),
            categories,
            series,
            y_percent: true,
        }),
        format!("Jacobson–Truax outcome categories as a share of each measure's finished episodes (ended, with paired scores; {} episode × measure pairs; episodes still in treatment are not counted). Not at caseness = below the clinical cut-off at baseline.{note}", published_count(i.suppression, total)),
    )
}

fn jacobson(i: &Inputs, m: u16) -> Option<Figure> {
    let rule = i.eps.rules[m as usize].as_ref()?;
    let meas = i.registry.get(m as usize);
    let mut cells: BTreeMap<(i64, i64), u32> = BTreeMap::new();
    let mut n = 0;
    for it in i.eps.items.iter().filter(|it| it.measure == m && it.finished()) {
        let f = it.final_score?;
        *cells.entry((it.baseline.round() as i64, f.round() as i64)).or_default() += 1;
        n += 1;
    }
    // Each point is the episodes of one (baseline, final) pair of scores, most of them one
    // client's: published results leave the plot out.
    if i.suppression.publishing() {
        return None;
    }
    let max = cells.values().copied().max().unwrap_or(1) as f64;
    let (lo, hi) = if meas.min.is_finite() && meas.max.is_finite() {
        (meas.min, meas.max)
    } else {
        let v: Vec<f64> = cells.keys().flat_map(|(a, b)| [*a as f64, *b as f64]).collect();
        (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    };
    let points = cells.iter().map(|((x, y), c)| (*x as f64, *y as f64, 0.6 + 1.6 * (*c as f64 / max).sqrt())).collect();
    let mut lines = vec![Line {
        name: Some("no change".into()),
        color: charts::GREY,
        points: vec![(lo, lo), (hi, hi)],
        dashed: false,
    }];
    let mut bands = Vec::new();
    // The band is the same width everywhere; only a regression-based index tilts it.
    if let (Some((l0, u0)), Some((l1, u1))) = (rule.no_change_band(lo), rule.no_change_band(hi)) {
        let half = crate::output::tables::num(((u0 - l0) / 2.0 * 100.0).round() / 100.0);
        let method = match rule.rci {
            Some(index) if index.method != crate::domain::registry::RciMethod::Jt => {
                format!("{} ", index.method.abbreviation())
            }
            _ => String::new(),
        };
        bands.push(Band {
            name: Some(format!("within reliable change ({method}±{half})")),
            color: charts::SKY,
            opacity: 0.25,
            x: vec![lo, hi],
            lower: vec![l0, l1],
            upper: vec![u0, u1],
        });
    }
    if let Some(c) = rule.cutoff {
        lines.push(Line {
            name: Some(format!("clinical cut-off ({})", crate::output::tables::num((c * 100.0).round() / 100.0))),
            color: charts::VERMILLION,
            points: vec![(c, lo), (c, hi)],
            dashed: true,
        });
        lines.push(Line { name: None, color: charts::VERMILLION, points: vec![(lo, c), (hi, c)], dashed: true });
    }
    figure(
        "jacobson",
        "outcomes",
        charts::xy(&XyChart {
            title: format!("{}: baseline against final score", meas.code),
            x_label: format!("Baseline {} score", meas.code),
            y_label: format!("Final {} score", meas.code),
            x_range: (lo, hi),
            y_range: (lo, hi),
            bands,
            lines,
            markers: vec![Markers { name: Some("episodes (larger = more)".into()), color: charts::BLUE, points, filled: true }],
            y_percent: false,
            x_names: vec![],
        }),
        format!("The Jacobson plot of {n} finished {} episodes. Points below the diagonal improved; those outside the shaded band changed reliably; the dashed lines are the clinical cut-off. Identical pairs of scores share one point, sized by how many episodes it holds.", meas.code),
    )
}

fn month(day: i32) -> String {
    let (y, m, _) = crate::domain::dates::civil_from_days(day);
    format!("{y}-{m:02}")
}

fn outcomes_by_month(i: &Inputs, m: u16) -> Option<Figure> {
    let mut by: BTreeMap<String, BTreeMap<Outcome, f64>> = BTreeMap::new();
    for it in i.eps.items.iter().filter(|it| it.measure == m && it.finished()) {
        if let Some(o) = it.classification.outcome {
            *by.entry(month(it.last_date)).or_default().entry(o).or_default() += 1.0;
        }
    }
    let months: Vec<String> = by.keys().rev().take(18).rev().cloned().collect();
    let months: Vec<String> =
        months.into_iter().filter(|k| by[k].values().sum::<f64>() >= i.suppression.threshold as f64).collect();
    if months.len() < 2 {
        return None;
    }
    let n: f64 = months.iter().map(|k| by[k].values().sum::<f64>()).sum();
    let withheld: BTreeMap<&String, Vec<Outcome>> =
        months.iter().map(|k| (k, withheld_cells(&by[k], i.suppression))).collect();
    let series = OUTCOME_COLORS
        .iter()
        .map(|(o, c)| {
            let v = months
                .iter()
                .map(|k| {
                    let hidden = withheld[k].contains(o);
                    if hidden {
                        0.0
                    } else {
                        by[k].get(o).unwrap_or(&0.0) / by[k].values().sum::<f64>()
                    }
                })
                .collect();
            (o.as_str().replace('_', " "), *c, v)
        })
        .collect();
    let any_withheld = withheld.values().any(|w| !w.is_empty());
    figure(
        "outcomes-by-month",
        "outcomes",
        charts::bars(&BarChart {
            title: format!("{} outcomes by month of the final score", code(i, m)),
            x_label: "Month treatment ended".into(),
            y_label: "Share of finished episodes".into(),
            categories: months.iter().map(|k| k[2..].to_string()).collect(),
            series,
            y_percent: true,
        }),
        if i.suppression.publishing() {
            format!("Outcome categories of {} finished {} episodes by the month of their final score (the last 18 months with at least {t} episodes).{}", published_count(i.suppression, n as u64), code(i, m), if any_withheld { format!(" Categories of fewer than {t} episodes in a month are withheld, with the next smallest where one alone would be, so bars may not reach 100 %.", t = i.suppression.threshold) } else { String::new() }, t = i.suppression.threshold)
        } else {
            format!("Outcome categories of {n} finished {} episodes by the month of their final score (the last 18 months).", code(i, m))
        },
    )
}

/// The outcome categories of one month a published chart withholds: those of fewer
/// episodes than the threshold (but none), and where that is one alone, the next smallest
/// too, so that no withheld count follows from the others (secondary suppression).
fn withheld_cells(cells: &BTreeMap<Outcome, f64>, suppression: Suppression) -> Vec<Outcome> {
    let t = suppression.threshold as f64;
    let mut withheld: Vec<Outcome> = cells.iter().filter(|(_, n)| **n > 0.0 && **n < t).map(|(o, _)| *o).collect();
    if withheld.len() == 1 {
        let next = cells.iter().filter(|(o, n)| **n > 0.0 && !withheld.contains(o)).min_by(|a, b| a.1.total_cmp(b.1));
        withheld.extend(next.map(|(o, _)| *o));
    }
    withheld
}

fn dose_response(i: &Inputs, m: u16) -> Option<Figure> {
    let mut by: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for it in i
        .eps
        .items
        .iter()
        .filter(|it| it.measure == m && it.finished() && it.classification.caseness_start == Some(true))
    {
        let e = by.entry((it.n_scores - 1).min(20)).or_default();
        e.1 += 1;
        e.0 += u64::from(it.classification.outcome == Some(Outcome::Recovered));
    }
    let shown: Vec<(f64, f64, f64)> = by
        .iter()
        .filter(|(_, (k, n))| !i.suppression.hides(*k, *n))
        .map(|(s, (k, n))| (f64::from(*s), *k as f64 / *n as f64, 0.8 + (*n as f64).log10() * 0.4))
        .collect();
    if shown.len() < 2 {
        return None;
    }
    let total: u64 = by.values().map(|v| v.1).sum();
    let x_max = shown.iter().map(|p| p.0).fold(0.0, f64::max);
    figure(
        "dose-response",
        "outcomes",
        charts::xy(&XyChart {
            title: format!("{}: reliable recovery by number of sessions", code(i, m)),
            x_label: "Scored sessions after baseline (20 = 20 or more)".into(),
            y_label: "Reliably recovered".into(),
            x_range: (0.0, x_max + 1.0),
            y_range: (0.0, 1.0),
            bands: vec![],
            lines: vec![Line { name: None, color: charts::BLUE, points: shown.iter().map(|p| (p.0, p.1)).collect(), dashed: false }],
            markers: vec![Markers { name: Some("share (larger = more episodes)".into()), color: charts::BLUE, points: shown, filled: true }],
            y_percent: true,
            x_names: vec![],
        }),
        format!("Share of {} finished {} episodes at caseness that ended reliably recovered, by how many sessions were scored after baseline; larger points rest on more episodes.{} This is descriptive: clients who recover may also leave earlier.", published_count(i.suppression, total), code(i, m), if i.suppression.publishing() { format!(" Points with fewer than {} episodes or recoveries are withheld.", i.suppression.threshold) } else { String::new() }),
    )
}

fn expected_response(i: &Inputs, m: u16) -> Option<Figure> {
    let pts: Vec<_> = i.etr.iter().filter(|p| p.measure == m).collect();
    if pts.is_empty() {
        return None;
    }
    let colors = [charts::GREEN, charts::BLUE, charts::ORANGE, charts::VERMILLION, charts::PURPLE, charts::SKY];
    let mut by: BTreeMap<usize, Vec<&crate::analyses::trajectories::EtrPoint>> = BTreeMap::new();
    for p in &pts {
        by.entry(p.band).or_default().push(p);
    }
    let mut bands = Vec::new();
    let mut lines = Vec::new();
    for (b, v) in &by {
        let c = colors[b % colors.len()];
        let label = format!(
            "intake {}–{}",
            crate::output::tables::num(v[0].band_low),
            crate::output::tables::num(v[0].band_high)
        );
        bands.push(Band {
            name: None,
            color: c,
            opacity: 0.12,
            x: v.iter().map(|p| f64::from(p.session)).collect(),
            lower: v.iter().map(|p| p.p25).collect(),
            upper: v.iter().map(|p| p.p75).collect(),
        });
        lines.push(Line {
            name: Some(label),
            color: c,
            points: v.iter().map(|p| (f64::from(p.session), p.p50)).collect(),
            dashed: false,
        });
    }
    let meas = i.registry.get(m as usize);
    let (lo, hi) = (
        pts.iter().map(|p| p.p10).fold(f64::INFINITY, f64::min),
        pts.iter().map(|p| p.p90).fold(f64::NEG_INFINITY, f64::max),
    );
    let x_max = pts.iter().map(|p| p.session).max().unwrap_or(1);
    figure(
        "expected-response",
        "trajectories",
        charts::xy(&XyChart {
            title: format!("{}: expected response by intake severity", meas.code),
            x_label: "Sessions since baseline".into(),
            y_label: format!("{} score", meas.code),
            x_range: (1.0, f64::from(x_max)),
            y_range: (lo.min(meas.min.max(lo)), hi),
            bands,
            lines,
            markers: vec![],
            y_percent: false,
            x_names: vec![],
        }),
        format!("Median {} score at each session for clients in each intake-severity band (lines), with the middle half of scores shaded (25th–75th percentile); sessions with fewer than 10 scores are left out. Built from {} scores of this practice's own episodes.", meas.code, pts.iter().map(|p| p.n).sum::<usize>()),
    )
}

fn steps(
    rows: &[crate::stats::survival::KmRow],
    f: impl Fn(&crate::stats::survival::KmRow) -> Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let (mut x, mut y) = (vec![0.0], vec![1.0]);
    let mut prev = 1.0;
    for r in rows {
        let Some(v) = f(r) else { break };
        x.push(r.time / 30.44);
        y.push(prev);
        x.push(r.time / 30.44);
        y.push(v);
        prev = v;
    }
    (x, y)
}

fn relapse(i: &Inputs, m: u16) -> Option<Figure> {
    let overall = i.curves.iter().find(|c| c.measure == m && c.stratification == "overall")?;
    if overall.fit.records < i.suppression.threshold {
        return None;
    }
    let (x, s) = steps(&overall.fit.rows, |r| Some(r.surv));
    let (_, lo) = steps(&overall.fit.rows, |r| Some(r.lower.unwrap_or(0.0)));
    let (_, hi) = steps(&overall.fit.rows, |r| Some(r.upper.unwrap_or(1.0)));
    let mut lines = vec![Line {
        name: Some(format!("all recovered (n={})", published_count(i.suppression, overall.fit.records))),
        color: charts::BLUE,
        points: x.iter().copied().zip(s).collect(),
        dashed: false,
    }];
    let colors = [charts::ORANGE, charts::GREEN];
    for (k, c) in i
        .curves
        .iter()
        .filter(|c| c.measure == m && c.stratification == "residual" && c.fit.records >= i.suppression.threshold)
        .enumerate()
    {
        let (x, s) = steps(&c.fit.rows, |r| Some(r.surv));
        lines.push(Line {
            name: Some(format!("{} (n={})", c.stratum, published_count(i.suppression, c.fit.records))),
            color: colors[k % 2],
            points: x.into_iter().zip(s).collect(),
            dashed: true,
        });
    }
    let x_max = x.last().copied().unwrap_or(12.0).max(1.0);
    figure(
        "relapse",
        "sustained",
        charts::xy(&XyChart {
            title: format!("{}: staying well after recovery", code(i, m)),
            x_label: "Months since the end of treatment".into(),
            y_label: "Not relapsed (Kaplan–Meier)".into(),
            x_range: (0.0, x_max),
            y_range: (0.0, 1.0),
            bands: vec![Band { name: Some("95 % confidence band".into()), color: charts::SKY, opacity: 0.3, x: x.clone(), lower: lo, upper: hi }],
            lines,
            markers: vec![],
            y_percent: true,
            x_names: vec![],
        }),
        format!("Share of the {} episodes recovered at the end of treatment and seen again that had not relapsed (back at caseness), by time since the end; {} relapses. A relapse is dated at the follow-up score that shows it (it began at some time before: the times are interval-censored), so the curve steps down at follow-ups. Number at risk {}. Dashed: by residual symptoms at the end.", published_count(i.suppression, overall.fit.records), published_count(i.suppression, overall.fit.events), at_risk_note(&overall.fit, x_max, i.suppression)),
    )
}

/// The number at risk under a Kaplan–Meier curve at 0, 3, 6, 12, 24 and 36 months (those
/// within the chart), in words: "at 0, 3 and 6 months: 120, 80 and 45".
fn at_risk_note(fit: &crate::stats::survival::KmFit, x_max: f64, suppression: Suppression) -> String {
    const MONTH_DAYS: f64 = 30.44;
    let months: Vec<f64> = [0.0, 3.0, 6.0, 12.0, 24.0, 36.0].into_iter().filter(|m| *m <= x_max).collect();
    let at = |m: f64| {
        let day = m * MONTH_DAYS;
        // Those whose time is at or after `day`: the first row from then on has them.
        let n = fit.rows.iter().find(|r| r.time >= day).map_or(0, |r| r.n_risk);
        published_count(suppression, n)
    };
    let list = |items: Vec<String>| match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.join(""),
    };
    let labels = list(months.iter().map(|m| format!("{m:.0}")).collect());
    format!("at {labels} months: {}", list(months.iter().map(|m| at(*m)).collect()))
}

/// What a funnel plot's limits are, in a sentence.
fn limits_note(d: &crate::stats::rates::Dispersion) -> String {
    if !crate::analyses::caseload::overdispersion_applied(d) {
        return "The limits are exact binomial ones (no overdispersion applied).".into();
    }
    let estimate = match d.method {
        crate::stats::rates::Overdispersion::Multiplicative => format!("φ = {:.2}", d.phi),
        _ => format!("τ² = {:.4}", d.tau2),
    };
    format!("The limits allow for more variation between units than chance (overdispersion: {estimate}, from winsorised z-scores).")
}

/// The caption's note of the units a published funnel plot leaves out, each with its flag.
fn too_small_units(withheld: &[&Unit], kind: &str, threshold: u64) -> String {
    if withheld.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = withheld
            .iter()
            .map(|u| match u.funnel_flag.filter(|f| *f != "within") {
                Some(flag) => format!("{} (outside the limits: {})", u.unit, flag.replace('_', " ")),
                None => u.unit.clone(),
            })
            .collect();
        format!(
            " Not shown, having fewer than {} recoveries or episodes: {} {kind}{} ({}).",
            threshold,
            withheld.len(),
            if withheld.len() == 1 { "" } else { "s" },
            names.join(", ")
        )
    }
}

fn funnel(i: &Inputs, m: u16, kind: &str) -> Option<Figure> {
    let reference = i.funnel_refs.iter().find(|r| r.measure == m && r.kind == kind)?;
    let units: Vec<&Unit> =
        i.units.iter().filter(|u| u.kind == kind && u.measure == m && u.reliable_recovery.n > 0).collect();
    // Published results leave out the points of units too small to show, and name them.
    let (shown, withheld): (Vec<&Unit>, Vec<&Unit>) =
        units.iter().partition(|u| !i.suppression.hides(u.reliable_recovery.k, u.reliable_recovery.n));
    if shown.len() < 2 {
        return None;
    }
    let n: u64 = units.iter().map(|u| u.reliable_recovery.n).sum();
    let p0 = reference.rate;
    let n_max = units.iter().map(|u| u.reliable_recovery.n).max().unwrap_or(1) as f64 * 1.1;
    let grid: Vec<u64> = (0..=60).map(|j| (2.0 + (n_max - 2.0) * (j as f64 / 60.0)).round() as u64).collect();
    let limit = |z: f64, upper: bool| -> Vec<(f64, f64)> {
        grid.iter()
            .map(|&g| {
                let (lo, hi) = reference.limits(g, z);
                (g as f64, if upper { hi } else { lo })
            })
            .collect()
    };
    let lines = vec![
        Line {
            name: Some("practice rate".into()),
            color: charts::INK,
            points: vec![(0.0, p0), (n_max, p0)],
            dashed: false,
        },
        Line { name: Some("95 % limits".into()), color: charts::ORANGE, points: limit(Z95, true), dashed: true },
        Line { name: None, color: charts::ORANGE, points: limit(Z95, false), dashed: true },
        Line { name: Some("99.8 % limits".into()), color: charts::VERMILLION, points: limit(Z998, true), dashed: true },
        Line { name: None, color: charts::VERMILLION, points: limit(Z998, false), dashed: true },
    ];
    // Each unit where it is judged: its case-mix-adjusted rate.
    let point = |u: &&Unit| (u.reliable_recovery.n as f64, crate::analyses::caseload::funnel_rate(u), 1.2);
    let outside = |u: &&&Unit| u.funnel_flag.is_some_and(|f| f != "within");
    let points = shown.iter().filter(|u| !outside(u)).map(point).collect();
    let flagged: Vec<(f64, f64, f64)> = shown.iter().filter(outside).map(point).collect();
    let too_small = too_small_units(&withheld, kind, i.suppression.threshold);
    figure(
        &format!("funnel-{kind}"),
        "caseload",
        charts::xy(&XyChart {
            title: format!("{}: reliable recovery by {kind}", code(i, m)),
            x_label: "Paired episodes at caseness (denominator)".into(),
            y_label: "Reliably recovered, adjusted for intake severity".into(),
            x_range: (0.0, n_max),
            y_range: (0.0, 1.0),
            bands: vec![],
            lines,
            markers: vec![
                Markers { name: Some(format!("one {kind}")), color: charts::BLUE, points, filled: true },
                Markers {
                    name: (!flagged.is_empty()).then(|| "outside the 95 % limits".into()),
                    color: charts::VERMILLION,
                    points: flagged,
                    filled: true,
                },
            ],
            y_percent: true,
            x_names: vec![],
        }),
        format!("Funnel plot (Spiegelhalter 2005): each point is one {kind}'s reliable-recovery rate, adjusted for its clients' intake severity (observed over expected recoveries, times the practice rate), against how many episodes it rests on ({} in all). Points outside the limits differ from the practice rate more than chance would suggest; inside them, differences are noise. {} By chance alone about 1 {kind} in 20 lies outside the 95 % limits and 1 in 500 outside the 99.8 %. This is not a ranking.{too_small}", published_count(i.suppression, n), limits_note(&reference.dispersion)),
    )
}

/// A count in a caption: as it is, or "fewer than N" where published results withhold it.
fn published_count(suppression: Suppression, n: u64) -> String {
    suppression.value(n).map_or_else(|| format!("fewer than {}", suppression.threshold), |v| v.to_string())
}

/// The distribution of change per GBO goal.
pub fn goal_progress(tally: &crate::analyses::summary::GoalsTally, suppression: Suppression) -> Option<Figure> {
    let hist: BTreeMap<i64, f64> = tally.gbo_change.iter().map(|(c, n)| (*c, *n as f64)).collect();
    let n: u64 = tally.gbo_change.values().sum();
    if n < suppression.threshold {
        return None;
    }
    let cats: Vec<i64> = (-10..=10).collect();
    let color_of = |c: i64| {
        if c >= 3 {
            0
        } else if c <= -3 {
            2
        } else {
            1
        }
    };
    let series = [
        ("reliably improved (≥ 3)", charts::GREEN),
        ("no reliable change", charts::GREY),
        ("reliably worse (≤ −3)", charts::VERMILLION),
    ]
    .iter()
    .enumerate()
    .map(|(k, (name, col))| {
        (
            name.to_string(),
            *col,
            cats.iter().map(|c| if color_of(*c) == k { hist.get(c).copied().unwrap_or(0.0) } else { 0.0 }).collect(),
        )
    })
    .collect();
    figure(
        "goal-progress",
        "goals",
        charts::bars(&BarChart {
            title: "Goal-Based Outcomes: change per goal".into(),
            x_label: "Change from first to last rating (points, 0–10 scale)".into(),
            y_label: "Goals".into(),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            series,
            y_percent: false,
        }),
        format!("How far each of {n} goals moved from its first to its last rating before follow-up. A change of 3 points or more is reliable (NHS England)."),
    )
}

/// One client's episode × measure: scores by weeks since baseline, follow-ups after their
/// gap, the clinical cut-off, the band of change that is not reliable around the
/// baseline, and sudden gains and losses marked.
pub fn client_trajectory(
    series: &crate::domain::episodes::SeriesRows,
    eps: &Episodes,
    gains: &crate::analyses::sudden_gains::SuddenGains,
    registry: &Registry,
    idx: usize,
) -> Option<Figure> {
    let it = &eps.items[idx];
    let rule = eps.rules[it.measure as usize].as_ref()?;
    let meas = registry.get(it.measure as usize);
    let d0 = it.first_date;
    let weeks = |d: i32| f64::from(d - d0) / 7.0;
    let rows: Vec<usize> = it.rows.clone().collect();
    let (treat, fu) = treatment_and_follow_up_points(series, &rows, &weeks);
    let all: Vec<f64> = treat.iter().chain(&fu).map(|p| p.0).collect();
    let x_max = all.iter().copied().fold(1.0, f64::max) + 1.0;
    let (lo, hi) = if meas.min.is_finite() && meas.max.is_finite() {
        (meas.min, meas.max)
    } else {
        (0.0, treat.iter().chain(&fu).map(|p| p.1).fold(1.0, f64::max))
    };
    let mut bands = Vec::new();
    if let Some((lower, upper)) = rule.no_change_band(it.baseline) {
        bands.push(Band {
            name: Some("no reliable change from baseline".into()),
            color: charts::SKY,
            opacity: 0.25,
            x: vec![0.0, x_max],
            lower: vec![lower; 2],
            upper: vec![upper; 2],
        });
    }
    let lines = trajectory_lines(&treat, &fu, rule.cutoff, x_max);
    let rings = sudden_gain_rings(series, &rows, &weeks, gains, idx);
    let n_gains = gains.found.iter().filter(|f| f.item == idx).count();
    let markers = trajectory_markers(&treat, &fu, rings);
    figure(
        &format!("client-{idx}"),
        "client",
        charts::xy(&XyChart {
            title: format!("{} over time", meas.code),
            x_label: "Weeks since the first score".into(),
            y_label: format!("{} score ({} is better)", meas.code, if rule.direction == crate::domain::registry::Direction::Lower { "lower" } else { "higher" }),
            x_range: (0.0, x_max),
            y_range: (lo, hi),
            bands,
            lines,
            markers,
            y_percent: false,
            x_names: vec![],
        }),
        format!("{} scores in treatment and {} after it; the shaded band is the change from baseline that is within measurement error; {n_gains} sudden gains or losses are ringed.", treat.len(), fu.len()),
    )
}

/// Points of a chart: (weeks, score).
type Points = Vec<(f64, f64)>;

/// A series' scores as (weeks, score): those before follow-up in row order, and the
/// follow-ups by date.
fn treatment_and_follow_up_points(
    series: &crate::domain::episodes::SeriesRows,
    rows: &[usize],
    weeks: &impl Fn(i32) -> f64,
) -> (Points, Points) {
    use crate::domain::columns::Phase;
    let treat: Vec<(f64, f64)> = rows
        .iter()
        .filter(|&&r| series.phase[r] != Phase::FollowUp)
        .map(|&r| (weeks(series.date[r]), series.score[r]))
        .collect();
    let mut fu: Vec<(f64, f64)> = rows
        .iter()
        .filter(|&&r| series.phase[r] == Phase::FollowUp)
        .map(|&r| (weeks(series.date[r]), series.score[r]))
        .collect();
    fu.sort_by(|a, b| a.0.total_cmp(&b.0));
    (treat, fu)
}

/// The treatment line, the dashed follow-up line on from its last score, and the
/// clinical cut-off, in drawing order.
fn trajectory_lines(treat: &[(f64, f64)], fu: &[(f64, f64)], cutoff: Option<f64>, x_max: f64) -> Vec<Line> {
    let mut lines =
        vec![Line { name: Some("treatment".into()), color: charts::BLUE, points: treat.to_vec(), dashed: false }];
    if let (Some(last), false) = (treat.last(), fu.is_empty()) {
        let mut p = vec![*last];
        p.extend(fu.iter().copied());
        lines.push(Line {
            name: Some("after treatment (follow-up)".into()),
            color: charts::PURPLE,
            points: p,
            dashed: true,
        });
    }
    if let Some(c) = cutoff {
        lines.push(Line {
            name: Some("clinical cut-off".into()),
            color: charts::VERMILLION,
            points: vec![(0.0, c), (x_max, c)],
            dashed: true,
        });
    }
    lines
}

/// The rings (week, score, size) around the scores before and after each sudden gain or
/// loss of series `idx`.
fn sudden_gain_rings(
    series: &crate::domain::episodes::SeriesRows,
    rows: &[usize],
    weeks: &impl Fn(i32) -> f64,
    gains: &crate::analyses::sudden_gains::SuddenGains,
    idx: usize,
) -> Vec<(f64, f64, f64)> {
    use crate::domain::columns::Phase;
    // Sudden gains: ring the pregain and postgain scores (found by session number).
    let session_week: std::collections::HashMap<i32, f64> = rows
        .iter()
        .filter(|&&r| series.phase[r] != Phase::FollowUp)
        .map(|&r| (series.session[r], weeks(series.date[r])))
        .collect();
    let mut rings = Vec::new();
    for f in gains.found.iter().filter(|f| f.item == idx) {
        for (s, y) in [(f.pregain_session, f.event.pregain_score), (f.pregain_session + 1, f.event.postgain_score)] {
            if let Some(w) = session_week.get(&s) {
                rings.push((*w, y, 1.8));
            }
        }
    }
    rings
}

/// Markers on the treatment and follow-up scores, then on the sudden gains' rings (if
/// any), in drawing order.
fn trajectory_markers(treat: &[(f64, f64)], fu: &[(f64, f64)], rings: Vec<(f64, f64, f64)>) -> Vec<Markers> {
    let mut markers = vec![
        Markers {
            name: None,
            color: charts::BLUE,
            points: treat.iter().map(|p| (p.0, p.1, 0.9)).collect(),
            filled: true,
        },
        Markers {
            name: None,
            color: charts::PURPLE,
            points: fu.iter().map(|p| (p.0, p.1, 0.9)).collect(),
            filled: true,
        },
    ];
    if !rings.is_empty() {
        markers.push(Markers {
            name: Some("sudden gain or loss".into()),
            color: charts::ORANGE,
            points: rings,
            filled: false,
        });
    }
    markers
}

/// One client's scores over the expected-response percentiles of clients who started in
/// the same intake-severity band (the curves are built without this client's episode
/// only for the not-on-track flag; the drawn bands include everyone).
pub fn client_vs_expected(
    series: &crate::domain::episodes::SeriesRows,
    eps: &Episodes,
    etr: &[EtrPoint],
    trajectory: &crate::analyses::trajectories::Trajectory,
    registry: &Registry,
    idx: usize,
) -> Option<Figure> {
    use crate::domain::columns::Phase;
    let it = &eps.items[idx];
    let band = trajectory.band?;
    let pts: Vec<_> = etr.iter().filter(|p| p.measure == it.measure && p.band == band).collect();
    if pts.len() < 2 {
        return None;
    }
    let rows: Vec<usize> = it.rows.clone().filter(|&r| series.phase[r] != Phase::FollowUp).collect();
    if rows.iter().any(|&r| series.session[r] == crate::domain::columns::NO_SESSION) {
        return None;
    }
    let s0 = series.session[rows[0]];
    let own: Vec<(f64, f64)> = rows.iter().map(|&r| (f64::from(series.session[r] - s0), series.score[r])).collect();
    let meas = registry.get(it.measure as usize);
    let x: Vec<f64> = pts.iter().map(|p| f64::from(p.session)).collect();
    let x_max = x.iter().chain(own.iter().map(|p| &p.0)).copied().fold(1.0, f64::max);
    let own_markers = own.iter().map(|p| (p.0, p.1, 0.9)).collect();
    figure(
        &format!("client-expected-{idx}"),
        "client",
        charts::xy(&XyChart {
            title: format!("{} against similar clients", meas.code),
            x_label: "Sessions since baseline".into(),
            y_label: format!("{} score", meas.code),
            x_range: (0.0, x_max),
            y_range: (meas.min.max(0.0).min(meas.min), if meas.max.is_finite() { meas.max } else { x_max }),
            bands: vec![
                Band { name: Some("10th–90th percentile".into()), color: charts::SKY, opacity: 0.18, x: x.clone(), lower: pts.iter().map(|p| p.p10).collect(), upper: pts.iter().map(|p| p.p90).collect() },
                Band { name: Some("25th–75th percentile".into()), color: charts::SKY, opacity: 0.35, x: x.clone(), lower: pts.iter().map(|p| p.p25).collect(), upper: pts.iter().map(|p| p.p75).collect() },
            ],
            lines: vec![
                Line { name: Some("median of similar clients".into()), color: charts::GREY, points: pts.iter().map(|p| (f64::from(p.session), p.p50)).collect(), dashed: true },
                Line { name: Some("this client".into()), color: charts::BLUE, points: own, dashed: false },
            ],
            markers: vec![Markers { name: None, color: charts::BLUE, points: own_markers, filled: true }],
            y_percent: false,
            x_names: vec![],
        }),
        format!(
            "This client's {} scores by session, over the scores of this practice's clients whose intake was in the same band ({}–{}); a line above the shaded area (below it on higher-is-better scales) is off the usual track.",
            meas.code,
            crate::output::tables::num(pts[0].band_low),
            crate::output::tables::num(pts[0].band_high)
        ),
    )
}

mod trend;
use trend::*;

#[cfg(test)]
mod tests;
