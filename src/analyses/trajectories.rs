//! Trajectories: how an episode's scores moved during treatment, not only where they
//! ended. Per episode × measure: OLS slopes, early change, time to reliable improvement
//! and to recovery, the "discomfort zone" (a temporary reliable worsening followed by
//! improvement, told apart from lasting deterioration), a trajectory shape by documented
//! rules, and the expected-treatment-response curves with a not-on-track flag computed
//! without the episode itself. Rules and thresholds: docs/METHODS.md §7e.

use crate::domain::columns::{Phase, NO_SESSION};
use crate::domain::dates::Day;
use crate::domain::episodes::{EpisodeMeasure, Episodes, SeriesRows};
use crate::domain::outcomes::{ReliableCategory, ResolvedRule};
use crate::domain::registry::Direction;
use crate::stats::descriptive::{quantile, type7};
use crate::stats::growth::{GrowthData, GrowthFit};
use serde::Serialize;
use std::collections::BTreeMap;

/// Trajectory settings.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// "Early" means by this session (counted from the baseline session).
    pub early_session: i32,
    /// Number of intake-severity bands (quantiles of the baseline) for expected response.
    pub bands: usize,
    /// Not on track: worse than this percentile of similar clients at the same session
    /// (the 75th for lower-is-better scales means a score above it; mirrored otherwise).
    pub percentile: f64,
    /// Minimum number of other episodes at a session for an expected-response point.
    pub min_n: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { early_session: 4, bands: 4, percentile: 75.0, min_n: 10 }
    }
}

/// A trajectory shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    EarlyResponse,
    GradualResponse,
    DipThenImprovement,
    NoReliableChange,
    Deterioration,
    Unstable,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::EarlyResponse,
        Shape::GradualResponse,
        Shape::DipThenImprovement,
        Shape::NoReliableChange,
        Shape::Deterioration,
        Shape::Unstable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::EarlyResponse => "early_response",
            Shape::GradualResponse => "gradual_response",
            Shape::DipThenImprovement => "dip_then_improvement",
            Shape::NoReliableChange => "no_reliable_change",
            Shape::Deterioration => "deterioration",
            Shape::Unstable => "unstable",
        }
    }
}

/// A temporary worsening during treatment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dip {
    /// Session (or position) of the first worsening score.
    pub start: i32,
    /// Session of the worst score of the dip.
    pub peak: i32,
    /// How much worse the worst score of the dip is than the best score before it (points).
    pub depth: f64,
    /// How much worse the worst score is than baseline (negative: still better than baseline).
    pub depth_from_baseline: f64,
    /// Sessions from the start of the dip to the first score at least as good as the best
    /// score before it (or to the final score when none is).
    pub length: i32,
    /// A later score came back to the best level before the dip.
    pub resolved: bool,
    /// `discomfort_zone` (the episode ends reliably improved), `lasting_deterioration`
    /// (it ends reliably deteriorated), or `no_improvement_after`.
    pub kind: &'static str,
}

/// Trajectory figures of one episode × measure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trajectory {
    pub slope_per_session: Option<f64>,
    pub slope_per_week: Option<f64>,
    /// OLS slope of ln(score − min + 1) per session: proportional change per session.
    pub log_slope: Option<f64>,
    pub early_change: Option<f64>,
    pub sessions_to_reliable_improvement: Option<i32>,
    pub days_to_reliable_improvement: Option<i32>,
    pub sessions_to_recovery: Option<i32>,
    pub days_to_recovery: Option<i32>,
    pub dip: Option<Dip>,
    pub shape: Option<Shape>,
    pub band: Option<usize>,
    pub not_on_track: Option<bool>,
    pub not_on_track_session: Option<i32>,
    /// The series' own line under its measure's growth model ([`crate::stats::growth`]): the
    /// score at baseline and the change per session, shrunken toward the average.
    pub shrunken_baseline: Option<f64>,
    pub shrunken_slope_per_session: Option<f64>,
    /// clinicalsignificance's HLM reliable-change index (series of 3 or more scores):
    /// the series' slope deviation from the typical slope over its conditional SD, and
    /// what it says, [`VS_TYPICAL`].
    pub slope_rci: Option<f64>,
    pub change_vs_typical: Option<&'static str>,
    /// Sessions since baseline of the last score before follow-up.
    pub latest_session: Option<i32>,
    /// Of an open episode: whether its latest score is off track (worse than the limit at
    /// its session, as `not_on_track` judges each score); `None` where no limit is known.
    pub off_track_now: Option<bool>,
}

/// The categories of [`Trajectory::change_vs_typical`]: reliably more improvement per
/// session than the measure's typical series, reliably less, or neither.
pub const VS_TYPICAL: [&str; 3] = ["more_improvement", "as_typical", "less_improvement"];

/// Series with fewer scores have no HLM reliable-change index (clinicalsignificance's
/// rule: participants with at least 3 measurements).
pub const HLM_MIN_SCORES: usize = 3;

/// The category of a slope RCI: strict comparisons with the two-sided 5 % critical value,
/// `qnorm(0.975)`, as clinicalsignificance's `.calc_improvement`.
pub fn vs_typical(rci: f64, direction: Direction) -> &'static str {
    let better = if direction == Direction::Lower { -rci } else { rci };
    if better > crate::domain::outcomes::Z_975 {
        VS_TYPICAL[0]
    } else if better < -crate::domain::outcomes::Z_975 {
        VS_TYPICAL[2]
    } else {
        VS_TYPICAL[1]
    }
}

/// One score of a series: (session or position, day, score).
pub type Point = (i32, Day, f64);

/// OLS slope of y on x; `None` with fewer than two distinct x.
pub fn ols_slope(xy: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let n = xy.clone().count() as f64;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = xy.clone().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = xy.fold((0.0, 0.0), |(a, b), (x, y)| (a + (x - mx) * (y - my), b + (x - mx) * (x - mx)));
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Detects the first temporary worsening: a score (not the baseline, not the final) that
/// is reliably deteriorated from baseline, or reliably worse than the best score so far.
pub fn find_dip(points: &[Point], rule: &ResolvedRule, final_change: Option<ReliableCategory>) -> Option<Dip> {
    if points.len() < 3 {
        return None;
    }
    let d = rule.direction.sign();
    let baseline = points[0].2;
    let worse_than = |a: f64, b: f64| rule.reliable(b, a).0 == Some(ReliableCategory::Deteriorated);
    let worse_than_baseline =
        |a: f64| rule.reliable_from_baseline(baseline, a).0 == Some(ReliableCategory::Deteriorated);
    let mut best = baseline;
    let mut start = None;
    for (i, p) in points.iter().enumerate().take(points.len() - 1).skip(1) {
        if worse_than_baseline(p.2) || worse_than(p.2, best) {
            start = Some(i);
            break;
        }
        if d * (p.2 - best) > 0.0 {
            best = p.2;
        }
    }
    let s = start?;
    // The dip lasts until a score is back at the best level before it (or better).
    let back = (s + 1..points.len()).find(|&j| d * (points[j].2 - best) >= 0.0);
    let end = back.unwrap_or(points.len() - 1);
    let peak = (s..end.max(s + 1)).min_by(|&a, &b| (d * points[a].2).total_cmp(&(d * points[b].2)))?;
    let kind = match final_change {
        Some(ReliableCategory::Improved) => "discomfort_zone",
        Some(ReliableCategory::Deteriorated) => "lasting_deterioration",
        _ => "no_improvement_after",
    };
    Some(Dip {
        start: points[s].0,
        peak: points[peak].0,
        depth: -d * (points[peak].2 - best),
        depth_from_baseline: -d * (points[peak].2 - baseline),
        length: points[end].0 - points[s].0,
        resolved: back.is_some(),
        kind,
    })
}

/// Everything but expected response for one series (`points[0]` is the baseline).
pub fn describe(points: &[Point], rule: &ResolvedRule, it: &EpisodeMeasure, opts: &Options) -> Trajectory {
    let mut t = Trajectory::default();
    if points.len() < 2 {
        return t;
    }
    let (s0, d0, y0) = points[0];
    t.slope_per_session = ols_slope(points.iter().map(|p| (f64::from(p.0), p.2)));
    t.slope_per_week = ols_slope(points.iter().map(|p| (f64::from(p.1 - d0) / 7.0, p.2)));
    let floor = points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min).min(0.0);
    t.log_slope = ols_slope(points.iter().map(|p| (f64::from(p.0), (p.2 - floor + 1.0).ln())));
    t.early_change = points[1..].iter().rev().find(|p| p.0 - s0 <= opts.early_session).map(|p| p.2 - y0);
    let improved =
        points[1..].iter().find(|p| rule.reliable_from_baseline(y0, p.2).0 == Some(ReliableCategory::Improved));
    t.sessions_to_reliable_improvement = improved.map(|p| p.0 - s0);
    t.days_to_reliable_improvement = improved.map(|p| p.1 - d0);
    if rule.case_at_start(y0) == Some(true) {
        let recovered = points[1..].iter().find(|p| rule.case_at_end(p.2) == Some(false));
        t.sessions_to_recovery = recovered.map(|p| p.0 - s0);
        t.days_to_recovery = recovered.map(|p| p.1 - d0);
    }
    let final_change = it.classification.reliable_change;
    t.dip = find_dip(points, rule, final_change);
    t.shape = final_change.map(|fc| {
        let reached_before_final = points[1..points.len() - 1]
            .iter()
            .any(|p| rule.reliable_from_baseline(y0, p.2).0 == Some(ReliableCategory::Improved));
        match fc {
            ReliableCategory::Deteriorated => Shape::Deterioration,
            ReliableCategory::Improved if t.dip.as_ref().is_some_and(|d| d.kind == "discomfort_zone") => {
                Shape::DipThenImprovement
            }
            ReliableCategory::Improved => match t.sessions_to_reliable_improvement {
                Some(s) if s <= opts.early_session => Shape::EarlyResponse,
                _ => Shape::GradualResponse,
            },
            ReliableCategory::NoChange if reached_before_final => Shape::Unstable,
            ReliableCategory::NoChange => Shape::NoReliableChange,
        }
    });
    t
}

/// The type-7 quantile of `sorted` without the element at `skip`, in O(1) (the reference
/// for [`Cell::quantile_without`] in the tests).
#[cfg(test)]
fn quantile_without(sorted: &[f64], skip: usize, p: f64) -> f64 {
    type7(sorted.len() - 1, p, |k| if k < skip { sorted[k] } else { sorted[k + 1] })
}

/// A score as a map key, ordered as `f64::total_cmp` orders scores.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The scores of one expected-response cell (measure, baseline band, session) as
/// distinct values with counts. Scores are few distinct values (whole numbers on short
/// scales), so a cell is small whatever the number of episodes, and cells of separate
/// parts of the data add up exactly. Quantiles read the sorted values through the
/// cumulative counts, so they equal the quantiles of the sorted list of every score.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    counts: BTreeMap<Score, u64>,
}

/// A [`Cell`] ready for quantiles: its distinct values in order, and for each the number
/// of scores up to and including it.
#[derive(Debug, Clone)]
pub struct SortedCell {
    values: Vec<f64>,
    ends: Vec<u64>,
    /// The leave-one-out quantile for a score equal to each value (see
    /// [`SortedCell::with_limits`]).
    limits: Vec<f64>,
}

impl Cell {
    pub fn add(&mut self, score: f64) {
        *self.counts.entry(Score(score)).or_default() += 1;
    }

    /// Adds the scores of another cell.
    pub fn merge(&mut self, other: &Cell) {
        for (k, c) in &other.counts {
            *self.counts.entry(*k).or_default() += c;
        }
    }

    pub fn sorted(&self) -> SortedCell {
        let mut end = 0;
        let (values, ends) = self
            .counts
            .iter()
            .map(|(k, c)| {
                end += c;
                (k.0, end)
            })
            .unzip();
        SortedCell { values, ends, limits: Vec::new() }
    }
}

impl SortedCell {
    /// How many scores.
    pub fn len(&self) -> usize {
        self.ends.last().map_or(0, |&e| e as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `k`-th score in order (from 0).
    fn at(&self, k: usize) -> f64 {
        self.values[self.ends.partition_point(|&e| e as usize <= k)]
    }

    /// The type-7 quantile, as [`quantile`] of the sorted scores.
    pub fn quantile(&self, p: f64) -> f64 {
        type7(self.len(), p, |k| self.at(k))
    }

    /// Works out the not-on-track limit (the `q` quantile without the score itself) for
    /// each distinct value, when the cell has more than `min_n` scores.
    pub fn with_limits(mut self, q: f64, min_n: usize) -> SortedCell {
        // One score has no others to compare with.
        if self.len() > min_n.max(1) {
            self.limits = self.values.iter().map(|&x| self.quantile_without(x, q)).collect();
        }
        self
    }

    /// The limit for a score equal to `x` (which must be in the cell), if the cell has
    /// limits.
    pub fn limit_without(&self, x: f64) -> Option<f64> {
        if self.limits.is_empty() {
            return None;
        }
        Some(self.limits[self.values.partition_point(|v| v.total_cmp(&x).is_lt())])
    }

    /// The type-7 quantile without one score equal to `x` (which must be in the cell):
    /// every score equal to `x` leaves the same list behind, so this is the leave-one-out
    /// quantile of any of them.
    pub fn quantile_without(&self, x: f64, p: f64) -> f64 {
        let i = self.values.partition_point(|v| v.total_cmp(&x).is_lt());
        let skip = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        type7(self.len() - 1, p, |k| if k < skip { self.at(k) } else { self.at(k + 1) })
    }
}

/// Values by sessions since baseline: a vector for the first [`DENSE_SESSIONS`]
/// sessions (where nearly every score is), a map beyond, so that one session numbered 10⁹
/// is one more entry rather than a vector of 10⁹ cells.
#[derive(Debug, Clone)]
struct BySession<T> {
    dense: Vec<T>,
    sparse: BTreeMap<usize, T>,
}

impl<T> Default for BySession<T> {
    fn default() -> Self {
        BySession { dense: Vec::new(), sparse: BTreeMap::new() }
    }
}

/// Sessions since baseline kept in [`BySession`]'s vector.
const DENSE_SESSIONS: usize = 1024;

impl<T: Default> BySession<T> {
    #[inline]
    fn entry(&mut self, session: usize) -> &mut T {
        if session < self.dense.len() {
            return &mut self.dense[session];
        }
        if session >= DENSE_SESSIONS {
            return self.sparse.entry(session).or_default();
        }
        self.dense.resize_with(session + 1, T::default);
        &mut self.dense[session]
    }
}

impl<T> BySession<T> {
    #[inline]
    fn get(&self, session: usize) -> Option<&T> {
        // The vector never reaches past `DENSE_SESSIONS`; the map holds only sessions beyond.
        self.dense.get(session).or_else(|| self.sparse.get(&session))
    }

    /// Every session's value, in session order (a session below the last one in the
    /// vector that had no score holds `T::default()`).
    fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.dense.iter().enumerate().chain(self.sparse.iter().map(|(&s, v)| (s, v)))
    }

    fn map<U>(&self, f: impl Fn(&T) -> U) -> BySession<U> {
        BySession {
            dense: self.dense.iter().map(&f).collect(),
            sparse: self.sparse.iter().map(|(&s, v)| (s, f(v))).collect(),
        }
    }
}

/// One point of an expected-response curve.
#[derive(Debug, Clone, Serialize)]
pub struct EtrPoint {
    pub measure: u16,
    pub band: usize,
    pub band_low: f64,
    pub band_high: f64,
    /// Sessions since the baseline session.
    pub session: i32,
    pub n: usize,
    pub p10: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
}

/// How well the not-on-track flag predicts a poor outcome (not reliably improved).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagAccuracy {
    pub flagged_poor: u64,
    pub flagged_good: u64,
    pub unflagged_poor: u64,
    pub unflagged_good: u64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
}

/// What [`analyse`] returns once every series' trajectory is handed on: the
/// expected-response percentiles and, by measure, how well the not-on-track flag predicted
/// the outcome.
#[derive(Debug, Clone, Default)]
pub struct ExpectedResponse {
    pub etr: Vec<EtrPoint>,
    pub accuracy: BTreeMap<u16, FlagAccuracy>,
    /// By measure, its growth model (where the data identify one).
    pub growth: BTreeMap<u16, GrowthFit>,
    /// By measure, the same model over the series of [`HLM_MIN_SCORES`] or more scores,
    /// whose slope RCIs it gives.
    pub hlm: BTreeMap<u16, GrowthFit>,
}

/// The treatment scores of a series as points: session numbers where every row has one,
/// otherwise positions in date order.
fn points(series: &SeriesRows, it: &EpisodeMeasure, buf: &mut Vec<Point>) {
    buf.clear();
    let rows = it.rows.clone().filter(|&r| series.phase[r] != Phase::FollowUp);
    let by_rank = rows.clone().any(|r| series.session[r] == NO_SESSION);
    buf.extend(
        rows.enumerate()
            .map(|(k, r)| (if by_rank { k as i32 } else { series.session[r] }, series.date[r], series.score[r])),
    );
}

/// A series' points as (sessions since baseline, score), the growth model's data.
fn sessions_since_baseline(points: &[Point], out: &mut Vec<(i32, f64)>) {
    out.clear();
    out.extend(points.iter().map(|p| (p.0 - points[0].0, p.2)));
}

/// Computes every trajectory and the expected-response curves, in two walks over the
/// series: the first fills the expected-response cells; the second, once every cell is
/// complete, describes each series, sets its not-on-track flag and hands it to
/// `each(series index, trajectory)` in series order. The trajectories of all series are
/// never held together (at 100 M rows they would be 1.5 GB).
pub fn analyse(
    rows: &SeriesRows,
    eps: &Episodes,
    opts: &Options,
    mut each: impl FnMut(usize, &Trajectory),
) -> ExpectedResponse {
    let mut out = ExpectedResponse::default();
    let mut buf = Vec::new();
    let mut xy = Vec::new();
    // By measure, the paired series for its growth model. Scores are centred on the mean
    // paired baseline.
    let mut growth: BTreeMap<u16, GrowthData> = BTreeMap::new();
    // (measure, band) → by session since baseline → the scores there, as counts.
    let mut cells: BTreeMap<(u16, usize), BySession<Cell>> = BTreeMap::new();
    let bands = band_edges(eps, opts.bands);
    // Interior edges split the baselines into bands 0 … bands − 1.
    let band_of = |it: &EpisodeMeasure| {
        let edges = bands.get(&it.measure)?;
        Some(edges[1..edges.len() - 1].partition_point(|&e| e < it.baseline))
    };
    for it in eps.items.iter().filter(|it| it.paired()) {
        points(rows, it, &mut buf);
        sessions_since_baseline(&buf, &mut xy);
        let rule = eps.rules[it.measure as usize].as_ref();
        let center = rule.and_then(|r| r.sample_mean).unwrap_or(0.0);
        growth.entry(it.measure).or_insert_with(|| GrowthData::new(center)).add(&xy);
        let Some(band) = band_of(it) else { continue };
        let by_session = cells.entry((it.measure, band)).or_default();
        let s0 = buf[0].0;
        for p in &buf[1..] {
            // Points are in session order, so sessions since baseline are ≥ 0.
            by_session.entry((p.0 - s0) as usize).add(p.2);
        }
    }
    // Limits for the not-on-track flag at the chosen percentile, on the worse side.
    let p = opts.percentile / 100.0;
    let cells: BTreeMap<(u16, usize), BySession<SortedCell>> = cells
        .into_iter()
        .map(|((measure, band), by_session)| {
            let lower = eps.rules[measure as usize].as_ref().is_some_and(|r| r.direction == Direction::Lower);
            let q = if lower { p } else { 1.0 - p };
            ((measure, band), by_session.map(|c| c.sorted().with_limits(q, opts.min_n)))
        })
        .collect();
    let each_cell = cells.iter().flat_map(|(&(m, b), v)| v.iter().map(move |(s, c)| (m, b, s as i32, c)));
    for (measure, band, session, c) in each_cell {
        if !c.is_empty() && c.len() >= opts.min_n {
            let e = &bands[&measure];
            out.etr.push(EtrPoint {
                measure,
                band,
                band_low: e[band],
                band_high: e[band + 1],
                session,
                n: c.len(),
                p10: c.quantile(0.10),
                p25: c.quantile(0.25),
                p50: c.quantile(0.50),
                p75: c.quantile(0.75),
                p90: c.quantile(0.90),
            });
        }
    }
    out.growth = growth.iter().filter_map(|(&m, data)| Some((m, data.fit(true)?))).collect();
    // The series of 3 or more scores are whole patterns of the same data, and their
    // optimum lies near the whole model's: the search starts there.
    out.hlm = growth
        .iter()
        .filter_map(|(&m, data)| {
            let longer = data.with_min_scores(HLM_MIN_SCORES);
            let fit = match out.growth.get(&m) {
                Some(whole) => longer.fit_near(true, whole.theta),
                None => longer.fit(true),
            };
            Some((m, fit?))
        })
        .collect();
    // Not on track: the first score before the final one that is worse than the chosen
    // percentile of the other episodes in the same band at the same session. An open
    // episode's latest score is no final: it counts, and says whether it is off track now.
    for (idx, it) in eps.items.iter().enumerate() {
        let rule = eps.rules[it.measure as usize].as_ref().expect("rule for a measure in use");
        points(rows, it, &mut buf);
        let mut t = if it.paired() { describe(&buf, rule, it, opts) } else { Trajectory::default() };
        t.band = band_of(it);
        t.latest_session = buf.last().map(|p| p.0 - buf[0].0);
        if let Some(fit) = out.growth.get(&it.measure).filter(|_| it.paired()) {
            sessions_since_baseline(&buf, &mut xy);
            let (baseline, slope) = fit.series_line(&xy);
            (t.shrunken_baseline, t.shrunken_slope_per_session) = (Some(baseline), Some(slope));
        }
        if let Some(fit) = out.hlm.get(&it.measure).filter(|_| it.paired() && buf.len() >= HLM_MIN_SCORES) {
            sessions_since_baseline(&buf, &mut xy);
            t.slope_rci = fit.slope_rci(&xy);
            t.change_vs_typical = t.slope_rci.map(|r| vs_typical(r, rule.direction));
        }
        if let Some(band) = t.band.filter(|_| it.paired()) {
            let lower = rule.direction == Direction::Lower;
            let by_session = &cells[&(it.measure, band)];
            let s0 = buf[0].0;
            let final_session = buf[buf.len() - 1].0 - s0;
            for &(session, _, score) in &buf[1..] {
                let session = session - s0;
                let Some(limit) = by_session.get(session as usize).and_then(|c| c.limit_without(score)) else {
                    continue;
                };
                if session == final_session && it.ended() {
                    continue;
                }
                let off = if lower { score > limit } else { score < limit };
                if session == final_session {
                    t.off_track_now = Some(off);
                }
                if off && t.not_on_track_session.is_none_or(|s| session < s) {
                    t.not_on_track_session = Some(session);
                }
            }
            t.not_on_track = Some(t.not_on_track_session.is_some());
            // How well the flag foretells the outcome: of finished courses only.
            if it.finished() {
                let poor = it.classification.reliable_change != Some(ReliableCategory::Improved);
                let a = out.accuracy.entry(it.measure).or_default();
                match (t.not_on_track == Some(true), poor) {
                    (true, true) => a.flagged_poor += 1,
                    (true, false) => a.flagged_good += 1,
                    (false, true) => a.unflagged_poor += 1,
                    (false, false) => a.unflagged_good += 1,
                }
            }
        }
        each(idx, &t);
    }
    for a in out.accuracy.values_mut() {
        let ratio = |x: u64, y: u64| (x + y > 0).then(|| x as f64 / (x + y) as f64);
        a.sensitivity = ratio(a.flagged_poor, a.unflagged_poor);
        a.specificity = ratio(a.unflagged_good, a.flagged_good);
    }
    out
}

/// Band edges per measure: quantiles of the paired baselines (`bands` + 1 edges, from
/// the lowest to the highest baseline). A baseline equal to an edge goes to the lower band.
fn band_edges(eps: &Episodes, bands: usize) -> BTreeMap<u16, Vec<f64>> {
    let mut base: BTreeMap<u16, Vec<f64>> = BTreeMap::new();
    for it in eps.items.iter().filter(|it| it.paired()) {
        base.entry(it.measure).or_default().push(it.baseline);
    }
    base.into_iter()
        .filter(|(_, v)| v.len() >= 2 && bands >= 1)
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, (0..=bands).map(|b| quantile(&v, b as f64 / bands as f64)).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::registry::Registry;

    fn phq() -> ResolvedRule {
        let r = Registry::builtin();
        crate::domain::outcomes::resolve_rule(r.get(r.find("PHQ9").unwrap()), &[], &[])
    }

    fn series(scores: &[f64]) -> Vec<Point> {
        scores.iter().enumerate().map(|(k, s)| (k as i32, 7 * k as Day, *s)).collect()
    }

    fn shape(scores: &[f64]) -> (Option<Shape>, Option<Dip>) {
        let rule = phq();
        let pts = series(scores);
        let mut it = crate::domain::episodes::EpisodeMeasure {
            client: 0,
            episode: 0,
            therapist: 0,
            site: 0,
            measure: 0,
            n_scores: pts.len() as u32,
            n_followup: 0,
            first_date: 0,
            last_date: pts.last().unwrap().1,
            baseline: scores[0],
            final_score: Some(*scores.last().unwrap()),
            classification: Default::default(),
            talking_therapies: None,
            checks: crate::domain::episodes::SeriesChecks::default()
                .with_status(crate::domain::episodes::Status::Ended(crate::domain::episodes::EndedBy::EndRow)),
            rows: 0..0,
        };
        it.classification = rule.classify(it.baseline, it.final_score);
        let t = describe(&pts, &rule, &it, &Options::default());
        (t.shape, t.dip)
    }

    #[test]
    fn ols_slopes_by_hand() {
        assert_eq!(ols_slope([(0.0, 20.0), (1.0, 18.0), (2.0, 16.0)].into_iter()), Some(-2.0));
        assert_eq!(ols_slope([(1.0, 3.0), (1.0, 5.0)].into_iter()), None);
    }

    #[test]
    fn each_shape_rule_on_a_hand_made_series() {
        assert_eq!(shape(&[20.0, 12.0, 10.0, 9.0, 9.0, 8.0]).0, Some(Shape::EarlyResponse));
        assert_eq!(shape(&[20.0, 19.0, 18.0, 17.0, 16.0, 15.0, 13.0, 11.0]).0, Some(Shape::GradualResponse));
        assert_eq!(shape(&[16.0, 19.0, 23.0, 20.0, 14.0, 9.0, 7.0]).0, Some(Shape::DipThenImprovement));
        assert_eq!(shape(&[16.0, 17.0, 15.0, 16.0, 15.0]).0, Some(Shape::NoReliableChange));
        assert_eq!(shape(&[12.0, 14.0, 16.0, 18.0, 20.0]).0, Some(Shape::Deterioration));
        assert_eq!(shape(&[20.0, 16.0, 13.0, 17.0, 18.0]).0, Some(Shape::Unstable));
    }

    #[test]
    fn a_dip_is_timed_measured_and_told_apart_from_lasting_deterioration() {
        let (_, dip) = shape(&[16.0, 19.0, 23.0, 20.0, 14.0, 9.0, 7.0]);
        let dip = dip.unwrap();
        // 23 is the first score 6+ above baseline 16 (session 2), the worst (depth 7), and
        // session 4 (14) is the first back at the best level before the dip: length 2.
        assert_eq!((dip.start, dip.peak, dip.depth, dip.length, dip.resolved), (2, 2, 7.0, 2, true));
        assert_eq!(dip.depth_from_baseline, 7.0);
        assert_eq!(dip.kind, "discomfort_zone");
        let (s, dip) = shape(&[12.0, 15.0, 19.0, 20.0, 21.0]);
        assert_eq!(s, Some(Shape::Deterioration));
        let dip = dip.unwrap();
        assert_eq!((dip.kind, dip.resolved), ("lasting_deterioration", false));
    }

    #[test]
    fn a_rise_above_the_best_score_so_far_is_a_dip_too() {
        // Down to 8, back up to 15 (7 above the best, still below baseline 18), then 6.
        let (s, dip) = shape(&[18.0, 8.0, 15.0, 7.0, 6.0]);
        let dip = dip.unwrap();
        assert_eq!((dip.start, dip.depth, dip.depth_from_baseline, dip.resolved), (2, 7.0, -3.0, true));
        assert_eq!(dip.kind, "discomfort_zone");
        assert_eq!(s, Some(Shape::DipThenImprovement));
    }

    #[test]
    fn a_cell_of_counts_gives_the_quantiles_of_its_sorted_scores() {
        let scores = [3.0, 7.0, 3.0, 0.0, 12.5, 7.0, 7.0, -2.0, 3.0, 27.0, 0.0];
        let mut sorted = scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        // Two halves merged equal one cell of every score.
        let (mut a, mut b) = (Cell::default(), Cell::default());
        scores[..5].iter().for_each(|&x| a.add(x));
        scores[5..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        let c = a.sorted();
        assert_eq!(c.len(), scores.len());
        for p in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] {
            assert_eq!(c.quantile(p), quantile(&sorted, p));
            for (j, &x) in sorted.iter().enumerate() {
                assert_eq!(c.quantile_without(x, p), quantile_without(&sorted, j, p), "p {p}, without {x}");
            }
        }
    }

    #[test]
    fn quantiles_match_r_type_7_and_leave_one_out_is_exact() {
        let v = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert_eq!(quantile(&v, 0.5), 4.0);
        assert_eq!(quantile(&v, 0.75), 8.0);
        assert_eq!(quantile(&v, 0.1), 1.4);
        for skip in 0..v.len() {
            let mut rest = v.to_vec();
            rest.remove(skip);
            for p in [0.1, 0.25, 0.5, 0.75, 0.9] {
                assert_eq!(quantile_without(&v, skip, p), quantile(&rest, p));
            }
        }
    }
}
