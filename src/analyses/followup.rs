//! Follow-up: did the change last? Each follow-up score is placed in a window (about
//! 3, 6, 12 months after the last treatment score) and judged against baseline and
//! against the end of treatment; each episode × measure gets the durability flags
//! defined in docs/METHODS.md (relapse, recovery maintained, improvement lost, late
//! improvement, reliable deterioration since the end), and the relapse cohort for
//! Kaplan–Meier.

use crate::domain::columns::{Keys, Phase};
use crate::domain::dates::Day;
use crate::domain::episodes::{EpisodeMeasure, Episodes, SeriesRows};
use crate::domain::outcomes::{Outcome, ReliableCategory};
use serde::Serialize;

/// Follow-up settings.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Window targets in months after the last treatment score.
    pub months: Vec<f64>,
    /// A score belongs to the nearest target within this many days.
    pub tolerance_days: i32,
    /// How many of the last treatment scores must all be below caseness for the end
    /// state to count as held (`last_scores_held`).
    pub held_scores: usize,
    /// Kaplan–Meier cohort: episodes recovered at the end (event: relapse), or also
    /// those reliably improved (event: reliable improvement lost).
    pub cohort: Cohort,
}

impl Default for Options {
    fn default() -> Options {
        Options { months: vec![3.0, 6.0, 12.0], tolerance_days: 45, held_scores: 2, cohort: Cohort::Recovered }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohort {
    /// Recovered at the end; the event is relapse (back at caseness).
    Recovered,
    /// Reliably improved at the end; the event is the loss of reliable improvement.
    Improved,
}

/// One follow-up score.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpScore {
    /// Index into `Episodes::items`.
    pub item: usize,
    pub date: Day,
    pub score: f64,
    /// Days after the last treatment score (negative: before it).
    pub days_after_end: i32,
    /// Index into `Options::months`.
    pub window: Option<usize>,
    /// Dated before the end of treatment: listed but not used.
    pub before_end: bool,
    pub change_from_baseline: f64,
    pub reliable_vs_baseline: Option<ReliableCategory>,
    pub caseness: Option<bool>,
    pub change_from_end: Option<f64>,
    pub reliable_vs_end: Option<ReliableCategory>,
    /// Change at follow-up over change at the end (1 = all of it kept).
    pub durability: Option<f64>,
}

/// Durability flags of one episode × measure (`None` where a flag does not apply).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durability {
    /// Usable follow-up scores (not before the end).
    pub n_followup: u32,
    pub relapse: Option<bool>,
    pub relapse_date: Option<Day>,
    pub recovery_maintained: Option<bool>,
    pub improvement_lost: Option<bool>,
    pub improvement_lost_date: Option<Day>,
    pub late_improvement: Option<bool>,
    pub deteriorated_since_end: Option<bool>,
    /// Durability at the last follow-up.
    pub durability_last: Option<f64>,
    pub last_followup_date: Option<Day>,
    /// The last `held_scores` treatment scores all below caseness.
    pub last_scores_held: Option<bool>,
}

/// Nearest window within tolerance.
pub fn window_of(days_after_end: i32, opts: &Options) -> Option<usize> {
    opts.months
        .iter()
        .enumerate()
        .map(|(i, m)| (i, (days_after_end - (m * 365.25 / 12.0).round() as i32).abs()))
        .filter(|(_, d)| *d <= opts.tolerance_days)
        .min_by_key(|(_, d)| *d)
        .map(|(i, _)| i)
}

/// Judges every follow-up score and derives each episode's durability flags. Each
/// series' judged scores (in date order) are handed to `each` as they are made, series in
/// order: the scores of all series are never held together (at 100 M rows they would be
/// over a GB), so whoever needs them writes or counts them there.
pub fn follow_up(
    series: &SeriesRows,
    eps: &Episodes,
    opts: &Options,
    mut each: impl FnMut(&[FollowUpScore]),
) -> Vec<Durability> {
    let mut scores = Vec::new();
    let mut flags = Vec::with_capacity(eps.items.len());
    for (idx, it) in eps.items.iter().enumerate() {
        let rule = eps.rules[it.measure as usize].as_ref().expect("rule for a measure in use");
        let rows = || it.rows.clone();
        scores.clear();
        for r in rows().filter(|&r| series.phase[r] == Phase::FollowUp) {
            let (date, score) = (series.date[r], series.score[r]);
            let days = date - it.last_date;
            let before_end = days < 0;
            let fin = it.final_score;
            scores.push(FollowUpScore {
                item: idx,
                date,
                score,
                days_after_end: days,
                window: if before_end { None } else { window_of(days, opts) },
                before_end,
                change_from_baseline: score - it.baseline,
                reliable_vs_baseline: rule.reliable_from_baseline(it.baseline, score).0,
                caseness: rule.case_at_end(score),
                change_from_end: fin.map(|f| score - f),
                reliable_vs_end: fin.and_then(|f| rule.reliable(f, score).0),
                durability: fin.filter(|f| *f != it.baseline).map(|f| (score - it.baseline) / (f - it.baseline)),
            });
        }
        // Follow-ups sort after treatment rows but not necessarily by date (no session).
        scores.sort_by_key(|s| s.date);
        let mut d = durability(it, &scores);
        // The last `held_scores` treatment scores, read backwards (no allocation per series).
        let treatment = || rows().filter(|&r| series.phase[r] != Phase::FollowUp);
        // Of finished courses only: an open one's last scores are not its last.
        if opts.held_scores > 0
            && rule.cutoff.is_some()
            && it.finished()
            && treatment().count() >= opts.held_scores.max(2)
        {
            d.last_scores_held = Some(
                treatment().rev().take(opts.held_scores).all(|r| rule.case_at_end(series.score[r]) == Some(false)),
            );
        }
        flags.push(d);
        if !scores.is_empty() {
            each(&scores);
        }
    }
    flags
}

/// The durability flags of one episode × measure from its (date-ordered) follow-ups.
pub fn durability(it: &EpisodeMeasure, fus: &[FollowUpScore]) -> Durability {
    let valid: Vec<&FollowUpScore> = fus.iter().filter(|f| !f.before_end).collect();
    let mut d = Durability { n_followup: valid.len() as u32, ..Default::default() };
    // Follow-up judges ended courses only (an episode with a follow-up score has ended).
    if valid.is_empty() || !it.finished() {
        return d;
    }
    let c = &it.classification;
    let improved = |f: &&FollowUpScore| f.reliable_vs_baseline == Some(ReliableCategory::Improved);
    if c.outcome == Some(Outcome::Recovered) {
        let first = valid.iter().find(|f| f.caseness == Some(true));
        d.relapse = Some(first.is_some());
        d.relapse_date = first.map(|f| f.date);
        d.recovery_maintained = Some(valid.iter().all(|f| improved(f) && f.caseness == Some(false)));
    }
    match c.reliable_change {
        Some(ReliableCategory::Improved) => {
            let lost = valid.iter().find(|f| !improved(f));
            d.improvement_lost = Some(lost.is_some());
            d.improvement_lost_date = lost.map(|f| f.date);
        }
        Some(_) => d.late_improvement = Some(valid.iter().any(improved)),
        None => {}
    }
    if c.reliable_change.is_some() {
        d.deteriorated_since_end =
            Some(valid.iter().any(|f| f.reliable_vs_end == Some(ReliableCategory::Deteriorated)));
    }
    d.durability_last = valid.last().and_then(|f| f.durability);
    d.last_followup_date = valid.last().map(|f| f.date);
    d
}

/// The Kaplan–Meier subjects: `(item, days to event or censoring, event)`, for episodes
/// in the cohort with at least one usable follow-up.
pub fn survival_subjects(eps: &Episodes, flags: &[Durability], cohort: Cohort) -> Vec<(usize, f64, bool)> {
    eps.items
        .iter()
        .zip(flags)
        .enumerate()
        .filter_map(|(i, (it, d))| {
            let end = it.last_date;
            let last = d.last_followup_date?;
            let (event_date, in_cohort) = match cohort {
                Cohort::Recovered => (d.relapse_date, d.relapse.is_some()),
                Cohort::Improved => (d.improvement_lost_date, d.improvement_lost.is_some()),
            };
            in_cohort.then(|| (i, f64::from(event_date.unwrap_or(last) - end), event_date.is_some()))
        })
        .collect()
}

/// Names the stratum an episode falls in, if any.
type StratumOf<'a> = Box<dyn Fn(&EpisodeMeasure) -> Option<String> + 'a>;

/// A Kaplan–Meier curve for one stratum.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub measure: u16,
    /// `overall`, `therapist`, `site` or `residual`.
    pub stratification: &'static str,
    pub stratum: String,
    pub fit: crate::stats::survival::KmFit,
}

/// A log-rank comparison of the strata of one stratification.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub measure: u16,
    pub stratification: &'static str,
    pub strata: Vec<String>,
    pub test: crate::stats::survival::LogRank,
}

/// The most strata a log-rank test compares: beyond it a stratification gets its curves
/// but no test.
pub const MAX_STRATA_TESTED: usize = 20;

/// Relapse-free time since the end of treatment, per measure: overall, by therapist, by
/// site and (for measures with a remission threshold) by residual symptoms at the end.
pub fn relapse_survival(
    keys: &Keys,
    eps: &Episodes,
    flags: &[Durability],
    registry: &crate::domain::registry::Registry,
    cohort: Cohort,
) -> (Vec<Curve>, Vec<Comparison>) {
    use crate::domain::columns::NO_KEY;
    use crate::stats::survival::{kaplan_meier, log_rank};
    use std::collections::BTreeMap;
    let subjects = survival_subjects(eps, flags, cohort);
    let mut by_measure: BTreeMap<u16, Vec<(usize, f64, bool)>> = BTreeMap::new();
    for s in subjects {
        by_measure.entry(eps.items[s.0].measure).or_default().push(s);
    }
    let (mut curves, mut tests) = (Vec::new(), Vec::new());
    for (measure, subj) in by_measure {
        let meas = registry.get(measure as usize);
        let key_name = |interner: &crate::domain::columns::Interner, id: u32| {
            if id == NO_KEY {
                "(none)".to_string()
            } else {
                interner.name(id).to_string()
            }
        };
        let stratifications: Vec<(&'static str, StratumOf)> = vec![
            ("overall", Box::new(|_| Some("all".to_string()))),
            ("therapist", Box::new(|it| Some(key_name(&keys.therapists, it.therapist)))),
            ("site", Box::new(|it| Some(key_name(&keys.sites, it.site)))),
            (
                "residual",
                Box::new(move |it| {
                    let r = meas.remission_below?;
                    let f = it.final_score?;
                    Some(if f < r {
                        format!("{} < {r} at the end", meas.code)
                    } else {
                        format!("{} >= {r} at the end", meas.code)
                    })
                }),
            ),
        ];
        for (name, stratum_of) in &stratifications {
            let mut groups: BTreeMap<String, Vec<(f64, bool)>> = BTreeMap::new();
            for &(i, t, e) in &subj {
                if let Some(g) = stratum_of(&eps.items[i]) {
                    groups.entry(g).or_default().push((t, e));
                }
            }
            if groups.is_empty() {
                continue;
            }
            let names: Vec<String> = groups.keys().cloned().collect();
            // A test of "any difference" among dozens of therapists says nothing about which
            // differ (the funnel plot does), and its cost grows with the square of the
            // strata at every event time and their cube in the end.
            if (2..=MAX_STRATA_TESTED).contains(&groups.len()) {
                let data: Vec<(f64, bool, usize)> =
                    groups.values().enumerate().flat_map(|(g, v)| v.iter().map(move |&(t, e)| (t, e, g))).collect();
                if let Some(test) = log_rank(&data, groups.len()) {
                    tests.push(Comparison { measure, stratification: name, strata: names.clone(), test });
                }
            }
            for (stratum, data) in groups {
                curves.push(Curve { measure, stratification: name, stratum, fit: kaplan_meier(&data) });
            }
        }
    }
    (curves, tests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::columns::{Measurements, NO_KEY, NO_SESSION};
    use crate::domain::episodes::prepare;
    use crate::domain::registry::Registry;

    /// One PHQ-9 episode: (session, day, phase, score) rows.
    fn episode(rows: &[(i32, Day, Phase, f64)]) -> (Vec<FollowUpScore>, Durability) {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        for (s, d, p, x) in rows {
            m.client.push(m.keys.clients.intern("a"));
            m.episode.push(m.keys.episodes.intern(""));
            m.therapist.push(NO_KEY);
            m.site.push(NO_KEY);
            m.session.push(*s);
            m.date.push(*d);
            m.phase.push(*p);
            m.measure.push(reg.find("PHQ9").unwrap() as u16);
            m.score.push(*x);
        }
        let p = prepare(m, &reg, &crate::domain::episodes::EndRule { as_of: Some(1_000_000), inactive_days: 90 });
        let mut scores = Vec::new();
        let mut flags = follow_up(&p.rows, &p.episodes, &Options::default(), |s| scores.extend_from_slice(s));
        (scores, flags.remove(0))
    }

    use Phase::{Assessment as A, FollowUp as F, Treatment as T};

    #[test]
    fn windows_go_to_the_nearest_target_within_tolerance() {
        let o = Options::default();
        assert_eq!(window_of(91, &o), Some(0));
        assert_eq!(window_of(130, &o), Some(0));
        assert_eq!(window_of(140, &o), Some(1), "49 days from 3 months, 43 from 6");
        assert_eq!(window_of(250, &o), None, "between 6 and 12 months, outside both");
        assert_eq!(window_of(400, &o), Some(2));
    }

    #[test]
    fn a_recovered_client_who_relapses_at_six_months() {
        // 18 → 6 recovered; 3 months 7 (held), 6 months 12 (case again), 12 months 8.
        let (s, d) = episode(&[
            (0, 0, A, 18.0),
            (1, 7, T, 12.0),
            (2, 14, T, 6.0),
            (NO_SESSION, 105, F, 7.0),
            (NO_SESSION, 196, F, 12.0),
            (NO_SESSION, 380, F, 8.0),
        ]);
        assert_eq!(s.iter().map(|f| f.window).collect::<Vec<_>>(), vec![Some(0), Some(1), Some(2)]);
        assert_eq!((d.relapse, d.relapse_date), (Some(true), Some(196)));
        assert_eq!(d.recovery_maintained, Some(false));
        // 12 is 6 below 18: still reliably improved, so improvement is not lost.
        assert_eq!(d.improvement_lost, Some(false));
        assert_eq!(d.deteriorated_since_end, Some(true), "12 − 6 ≥ 6");
        assert_eq!(d.late_improvement, None);
        assert_eq!(d.n_followup, 3);
        // Durability at the last follow-up: (8 − 18) / (6 − 18).
        assert!((d.durability_last.unwrap() - 10.0 / 12.0).abs() < 1e-12);
        assert_eq!(d.last_scores_held, Some(false), "12 was still a case");
    }

    #[test]
    fn recovery_maintained_needs_every_follow_up_improved_and_below_caseness() {
        let (_, d) = episode(&[
            (0, 0, A, 20.0),
            (1, 7, T, 8.0),
            (2, 14, T, 5.0),
            (NO_SESSION, 100, F, 6.0),
            (NO_SESSION, 200, F, 9.0),
        ]);
        assert_eq!((d.relapse, d.recovery_maintained, d.improvement_lost), (Some(false), Some(true), Some(false)));
        assert_eq!(d.last_scores_held, Some(true));
    }

    #[test]
    fn late_improvement_and_no_flags_without_follow_up() {
        let (_, d) = episode(&[(0, 0, A, 20.0), (1, 7, T, 18.0), (NO_SESSION, 100, F, 12.0)]);
        assert_eq!((d.late_improvement, d.relapse, d.improvement_lost), (Some(true), None, None));
        let (_, d) = episode(&[(0, 0, A, 20.0), (1, 7, T, 8.0)]);
        assert_eq!((d.n_followup, d.relapse, d.recovery_maintained), (0, None, None));
    }

    #[test]
    fn a_follow_up_dated_before_the_end_is_flagged_and_not_used() {
        let (s, d) = episode(&[(0, 0, A, 20.0), (1, 7, T, 14.0), (2, 30, T, 6.0), (NO_SESSION, 20, F, 19.0)]);
        assert!(s[0].before_end && s[0].window.is_none());
        assert_eq!((d.n_followup, d.relapse), (0, None));
    }

    #[test]
    fn follow_up_without_an_end_score_is_judged_against_baseline_only() {
        let (s, d) = episode(&[(0, 0, A, 20.0), (NO_SESSION, 100, F, 9.0)]);
        assert_eq!(s[0].reliable_vs_baseline, Some(ReliableCategory::Improved));
        assert_eq!((s[0].change_from_end, s[0].durability), (None, None));
        assert_eq!((d.n_followup, d.relapse, d.late_improvement), (1, None, None));
    }
}
