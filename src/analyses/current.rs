//! The current caseload: every open episode × measure on the extract date, how it stands
//! so far, and whether it needs a clinician's attention now (`current.csv`).
//!
//! Pure: it reads the episodes, what the trajectories and sudden-gains stages found for
//! the open series, and the practice's expected-response curves.

use crate::analyses::trajectories::EtrPoint;
use crate::domain::episodes::{EpisodeMeasure, Episodes};
use crate::domain::outcomes::ReliableCategory;
use std::collections::BTreeMap;

/// Settings of the current caseload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Options {
    /// An open episode whose last score is more than this many days before the extract
    /// date needs attention (`no_score_for_N_days`).
    pub no_score_days: i32,
}

/// What the trajectory stage found of an open series, kept for its `current.csv` row
/// (small: at 100 M rows about a million series are open at once).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OpenSeries {
    /// The intake band of its baseline (expected-response curves; at most 100 bands).
    pub band: Option<u8>,
    /// Sessions since baseline of its latest score.
    pub latest_session: Option<i32>,
    /// Its latest score is off track ([`crate::analyses::trajectories::Trajectory::off_track_now`]).
    pub not_on_track: Option<bool>,
}

/// Why an open episode needs attention; the first that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attention {
    /// Reliably worse than at baseline so far.
    ReliableDeterioration,
    /// The latest score worse than the practice's expected-response limit for its intake
    /// band at its session.
    NotOnTrack,
    /// A sudden loss (Tang & DeRubeis' criteria, mirrored) so far.
    SuddenLoss,
    /// No score for more than [`Options::no_score_days`].
    NoScore,
}

impl Attention {
    pub const ALL: [Attention; 4] =
        [Attention::ReliableDeterioration, Attention::NotOnTrack, Attention::SuddenLoss, Attention::NoScore];

    /// The reason's code (`no_score_for_N_days` with the run's N).
    pub fn code(self, opts: &Options) -> String {
        match self {
            Attention::ReliableDeterioration => "reliable_deterioration".into(),
            Attention::NotOnTrack => "not_on_track".into(),
            Attention::SuddenLoss => "sudden_loss".into(),
            Attention::NoScore => format!("no_score_for_{}_days", opts.no_score_days),
        }
    }

    /// The reason in a few plain words, for the report.
    pub fn words(self, opts: &Options) -> String {
        match self {
            Attention::ReliableDeterioration => "reliably worse than at the start".into(),
            Attention::NotOnTrack => "off track for clients who started alike".into(),
            Attention::SuddenLoss => "a sudden loss".into(),
            Attention::NoScore => format!("no score for more than {} days", opts.no_score_days),
        }
    }
}

/// One open episode × measure on the extract date.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// Index into `Episodes::items`.
    pub item: usize,
    /// The latest score before follow-up (the baseline when it is the only one).
    pub latest: f64,
    /// The practice's median score at this session for the intake band, where the
    /// expected-response curve has one.
    pub expected: Option<f64>,
    pub not_on_track: Option<bool>,
    pub sudden_loss: bool,
    /// Days from the episode's latest score (on any measure) to the extract date.
    pub days_since_last: i32,
    pub attention: Option<Attention>,
}

impl Current {
    /// Reliably deteriorated so far (`None` with one score).
    pub fn reliable_deterioration(&self, it: &EpisodeMeasure) -> Option<bool> {
        it.classification.reliable_change.map(|c| c == ReliableCategory::Deteriorated)
    }
}

/// Every open series, in series order, with its attention reason. `open`: what the
/// trajectory stage found of each, by index into `Episodes::items`, in increasing order;
/// `losses`: the series (indices, in increasing order) with a sudden loss.
pub fn current(
    eps: &Episodes,
    open: &[(u32, OpenSeries)],
    etr: &[EtrPoint],
    losses: &[usize],
    opts: &Options,
) -> Vec<Current> {
    let expected: BTreeMap<(u16, usize, i32), f64> =
        etr.iter().map(|p| ((p.measure, p.band, p.session), p.p50)).collect();
    let as_of = eps.extract.as_of;
    // The episode's latest score, over all its measures (a measure given only at intake
    // does not make a client seen yesterday look absent); its series are consecutive.
    let mut latest = Vec::with_capacity(eps.items.len());
    for run in eps.items.chunk_by(|a, b| (a.client, a.episode) == (b.client, b.episode)) {
        let day = run.iter().map(|it| it.last_date).max().unwrap_or(0);
        latest.extend(std::iter::repeat_n(day, run.len()));
    }
    eps.items
        .iter()
        .enumerate()
        .filter(|(_, it)| !it.ended())
        .map(|(i, it)| {
            let seen = open.binary_search_by_key(&(i as u32), |o| o.0).map_or(OpenSeries::default(), |k| open[k].1);
            let expected = match (seen.band, seen.latest_session) {
                (Some(band), Some(session)) => expected.get(&(it.measure, usize::from(band), session)).copied(),
                _ => None,
            };
            let sudden_loss = losses.binary_search(&i).is_ok();
            let days_since_last = as_of - latest[i];
            let deteriorated = it.classification.reliable_change == Some(ReliableCategory::Deteriorated);
            let attention = [
                (deteriorated, Attention::ReliableDeterioration),
                (seen.not_on_track == Some(true), Attention::NotOnTrack),
                (sudden_loss, Attention::SuddenLoss),
                (days_since_last > opts.no_score_days, Attention::NoScore),
            ]
            .into_iter()
            .find_map(|(applies, why)| applies.then_some(why));
            Current {
                item: i,
                latest: it.final_score.unwrap_or(it.baseline),
                expected,
                not_on_track: seen.not_on_track,
                sudden_loss,
                days_since_last,
                attention,
            }
        })
        .collect()
}

/// How many open series need attention, by reason (`summary.json` `current`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CurrentSummary {
    pub options: Option<Options>,
    /// Open episode × measure series on the extract date.
    pub open_series: u64,
    /// Of these, how many need attention, and for which first reason.
    pub needing_attention: u64,
    pub by_reason: BTreeMap<String, u64>,
}

pub fn summarise(rows: &[Current], opts: &Options) -> CurrentSummary {
    let mut by_reason: BTreeMap<String, u64> = Attention::ALL.iter().map(|a| (a.code(opts), 0)).collect();
    for a in rows.iter().filter_map(|r| r.attention) {
        *by_reason.entry(a.code(opts)).or_default() += 1;
    }
    CurrentSummary {
        options: Some(*opts),
        open_series: rows.len() as u64,
        needing_attention: rows.iter().filter(|r| r.attention.is_some()).count() as u64,
        by_reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::columns::{Measurements, Phase};
    use crate::domain::episodes::{EndRule, EndedBy, Status};
    use crate::domain::registry::Registry;

    /// One PHQ-9 series of a client: (client, [(day, score)], phase of the last row).
    type Series<'a> = (&'a str, &'a [(i32, f64)], Phase);

    fn episodes(series: &[Series], as_of: i32) -> Episodes {
        let reg = Registry::builtin();
        let phq = reg.find("PHQ9").unwrap() as u16;
        let mut m = Measurements::default();
        for (client, scores, last_phase) in series {
            for (k, &(day, score)) in scores.iter().enumerate() {
                let c = m.keys.clients.intern(client);
                let e = m.keys.episodes.intern("");
                m.client.push(c);
                m.episode.push(e);
                m.therapist.push(crate::domain::columns::NO_KEY);
                m.site.push(crate::domain::columns::NO_KEY);
                m.date.push(day);
                m.session.push(k as i32);
                m.phase.push(if k + 1 == scores.len() { *last_phase } else { Phase::Treatment });
                m.measure.push(phq);
                m.score.push(score);
            }
        }
        crate::domain::episodes::prepare(m, &reg, &EndRule { as_of: Some(as_of), inactive_days: 90 }).episodes
    }

    #[test]
    fn each_attention_reason_in_its_order() {
        let opts = Options { no_score_days: 28 };
        let eps = episodes(
            &[
                // 6 points worse: reliable deterioration (PHQ-9 threshold 6).
                ("a", &[(0, 10.0), (7, 16.0)], Phase::Treatment),
                // Improving, but flagged off track by the trajectory stage.
                ("b", &[(0, 18.0), (7, 17.0)], Phase::Treatment),
                // A sudden loss found by the sudden-gains stage.
                ("c", &[(0, 15.0), (7, 14.0)], Phase::Treatment),
                // Last score 40 days ago.
                ("d", &[(0, 15.0), (20, 12.0)], Phase::Treatment),
                // Nothing to see.
                ("e", &[(0, 15.0), (55, 12.0)], Phase::Treatment),
                // Ended: an end row.
                ("f", &[(0, 20.0), (55, 27.0)], Phase::End),
            ],
            60,
        );
        assert_eq!(eps.items[5].status(), Status::Ended(EndedBy::EndRow));
        let open = [
            (0, OpenSeries { not_on_track: Some(true), ..Default::default() }),
            (1, OpenSeries { not_on_track: Some(true), ..Default::default() }),
            (2, OpenSeries { not_on_track: Some(false), ..Default::default() }),
        ];
        let rows = current(&eps, &open, &[], &[2], &opts);
        let reasons: Vec<Option<String>> = rows.iter().map(|r| r.attention.map(|a| a.code(&opts))).collect();
        assert_eq!(
            reasons,
            [
                Some("reliable_deterioration".to_string()),
                Some("not_on_track".into()),
                Some("sudden_loss".into()),
                Some("no_score_for_28_days".into()),
                None
            ]
        );
        assert_eq!(rows.iter().map(|r| r.days_since_last).collect::<Vec<_>>(), [53, 53, 53, 40, 5]);
        assert_eq!(rows[0].latest, 16.0);
        let s = summarise(&rows, &opts);
        assert_eq!((s.open_series, s.needing_attention), (5, 4));
    }

    #[test]
    fn the_expected_score_is_the_bands_median_at_the_latest_session() {
        let eps = episodes(&[("a", &[(0, 18.0), (7, 17.0), (14, 15.0)], Phase::Treatment)], 20);
        let point = |session, p50| EtrPoint {
            measure: eps.items[0].measure,
            band: 1,
            band_low: 15.0,
            band_high: 20.0,
            session,
            n: 12,
            p10: 0.0,
            p25: 0.0,
            p50,
            p75: 0.0,
            p90: 0.0,
        };
        let open = [(0, OpenSeries { band: Some(1), latest_session: Some(2), not_on_track: Some(false) })];
        let rows = current(&eps, &open, &[point(1, 16.0), point(2, 13.5)], &[], &Options { no_score_days: 28 });
        assert_eq!((rows[0].expected, rows[0].attention), (Some(13.5), None));
    }
}
