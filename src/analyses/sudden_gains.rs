//! Sudden gains and sudden losses (Tang & DeRubeis, 1999), reproducing the R package
//! suddengains 0.7.2 (`identify_sg`, `identify_sl`, `create_bysg`, `create_byperson`).
//!
//! A series is an episode's scores on one measure indexed by position (session number
//! minus the first session); a missing session is a gap (`NaN`), never closed up. For k
//! positions the package tests the intervals n → n+1 for n = 1 … k−3 (0-based): the
//! first and last intervals are never tested. An interval is a gain when every
//! criterion switched on holds:
//!
//! 1. the change is at least `cutoff` points (≥);
//! 2. the change is at least `pct` of the pregain score (≥);
//! 3. the means of up to three scores before and after differ by more than
//!    t_crit · pooled SD (strict >), with at least two scores on each side and
//!    t_crit = |qt(α/2, n₁ + n₂ − 2)| (or a fixed value).
//!
//! A criterion that cannot be computed makes the interval not evaluable, even when
//! another one fails (R's `NA * 0 = NA`). See docs/METHODS.md for every quirk kept.

use serde::Serialize;
use statrs::distribution::{Continuous, ContinuousCDF, StudentsT};

/// Which way the scores move in the event looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// The score falls (a gain on a lower-is-better scale).
    Drop,
    /// The score rises (a loss on a lower-is-better scale).
    Rise,
}

/// The package's arguments, with its defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criteria {
    /// Criterion 1: minimum change in points; `None` switches it off.
    pub cutoff: Option<f64>,
    /// Criterion 2: minimum change as a share of the pregain score; `None` switches it off.
    pub pct: Option<f64>,
    /// Criterion 3 on or off.
    pub crit3: bool,
    pub alpha: f64,
    /// Adjust t_crit to the number of available scores (Lutz et al. 2013), else use
    /// `critical_value` for every interval.
    pub adjust: bool,
    pub critical_value: f64,
    /// The package's `identify_sg_1to2`: positions numbered from 0. It moves the start of
    /// the reversal scan from the third to the second score after the gain (quirk S5).
    pub identify_1to2: bool,
    /// For rises, test criterion 2 as the package's `identify_sl` does (quirk S6:
    /// x_n − x_{n+1} ≤ pct · x_n) instead of the mirrored x_{n+1} − x_n ≥ pct · x_n.
    pub rise_pct_as_package: bool,
}

impl Criteria {
    /// Whether any criterion is switched on (with none, a series is not searched).
    pub fn any_on(&self) -> bool {
        self.cutoff.is_some() || self.pct.is_some() || self.crit3
    }
}

impl Default for Criteria {
    fn default() -> Criteria {
        Criteria {
            cutoff: None,
            pct: Some(0.25),
            crit3: true,
            alpha: 0.05,
            adjust: true,
            critical_value: 2.776,
            identify_1to2: true,
            rise_pct_as_package: false,
        }
    }
}

/// |qt(α/2, df)|, the two-sided critical value of Student's t, polished with Newton
/// steps on the CDF so that it agrees with R's `qt` to ~1e-12.
pub fn t_critical(alpha: f64, df: f64) -> f64 {
    let t = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    let p = 1.0 - alpha / 2.0;
    let mut x = t.inverse_cdf(p);
    for _ in 0..4 {
        let step = (t.cdf(x) - p) / t.pdf(x);
        x -= step;
        if step.abs() < 1e-15 {
            break;
        }
    }
    x
}

/// Critical values by degrees of freedom (2, 3, 4: the only ones criterion 3 can meet).
#[derive(Debug, Clone, Copy)]
pub struct CriticalValues([f64; 3]);

impl CriticalValues {
    pub fn new(c: &Criteria) -> CriticalValues {
        if c.adjust {
            CriticalValues([t_critical(c.alpha, 2.0), t_critical(c.alpha, 3.0), t_critical(c.alpha, 4.0)])
        } else {
            CriticalValues([c.critical_value; 3])
        }
    }

    fn for_df(&self, df: usize) -> f64 {
        self.0[df - 2]
    }
}

/// One tested interval n → n+1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Position of the pregain score.
    pub pregain: usize,
    pub crit1: Option<bool>,
    pub crit2: Option<bool>,
    pub crit3: Option<bool>,
    /// All switched-on criteria hold (`Some(true)`), one fails (`Some(false)`), or one
    /// cannot be computed (`None`).
    pub flag: Option<bool>,
    pub n_pre: usize,
    pub n_post: usize,
    /// The t critical value used, where criterion 3 was computed.
    pub t_crit: Option<f64>,
}

/// The number, mean and sample variance of the scores present in a window of at most
/// three positions (`NaN` = missing). Sums run in window order, as summing an iterator
/// over the window would.
fn mean_var(window: &[f64]) -> (usize, f64, f64) {
    let mut present = [0.0; 3];
    let mut n = 0;
    for &x in window.iter().filter(|x| !x.is_nan()) {
        present[n] = x;
        n += 1;
    }
    let xs = &present[..n];
    let mean = xs.iter().sum::<f64>() / n as f64;
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    (n, mean, if n > 1 { ss / (n as f64 - 1.0) } else { f64::NAN })
}

/// The windows before and after each interval of a series: the count, mean and variance
/// of the scores present in each, which criterion 3 compares. They are the same whether
/// gains or losses are looked for, so a series' windows are summed once for both.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pre: (usize, f64, f64),
    post: (usize, f64, f64),
}

/// The windows of the intervals of `x` that [`intervals_in`] evaluates, in order.
pub fn windows(x: &[f64], out: &mut Vec<Window>) {
    out.clear();
    let k = x.len();
    if k < 4 {
        return;
    }
    let last = evaluated_up_to(x);
    out.extend((1..=last).map(|n| Window {
        pre: mean_var(&x[n.saturating_sub(2)..=n]),
        post: mean_var(&x[n + 1..=(n + 3).min(k - 1)]),
    }));
}

/// The last interval of a series (of at least four positions) that is evaluated. A
/// series is as long as the measure's longest in the data, so most of its positions may
/// lie past its last score. From two past it on, both windows are empty and every interval
/// evaluates the same but for its position: evaluated once, then repeated.
fn evaluated_up_to(x: &[f64]) -> usize {
    let blank_from = x.iter().rposition(|v| !v.is_nan()).map_or(0, |last| last + 3);
    blank_from.max(1).min(x.len() - 3)
}

/// Evaluates every tested interval of a series (`NaN` = missing score).
pub fn intervals(x: &[f64], movement: Movement, c: &Criteria, t: &CriticalValues, out: &mut Vec<Interval>) {
    let mut w = Vec::new();
    windows(x, &mut w);
    intervals_in(x, &w, movement, c, t, out);
}

/// [`intervals`] with the series' windows already made by [`windows`].
pub fn intervals_in(
    x: &[f64],
    windows: &[Window],
    movement: Movement,
    c: &Criteria,
    t: &CriticalValues,
    out: &mut Vec<Interval>,
) {
    let k = x.len();
    if k < 4 {
        return;
    }
    for n in 1..=k - 3 {
        let Some(&Window { pre: (n1, m1, v1), post: (n2, m2, v2) }) = windows.get(n - 1) else {
            let blank = Interval { pregain: n, ..out[out.len() - 1] };
            out.push(blank);
            continue;
        };
        let (pre, post) = (x[n], x[n + 1]);
        let both = !pre.is_nan() && !post.is_nan();
        // Change in the direction looked for: positive when the score moves that way.
        let change = match movement {
            Movement::Drop => pre - post,
            Movement::Rise => post - pre,
        };
        let crit1 = c.cutoff.map(|cut| both.then_some(change >= cut));
        let crit2 = c.pct.map(|pct| {
            both.then_some(match movement {
                Movement::Rise if c.rise_pct_as_package => pre - post <= pct * pre,
                _ => change >= pct * pre,
            })
        });
        let mut t_crit = None;
        let crit3 = c.crit3.then(|| {
            (n1 >= 2 && n2 >= 2).then(|| {
                let tc = t.for_df(n1 + n2 - 2);
                t_crit = Some(tc);
                let pooled = (((n1 - 1) as f64 * v1 + (n2 - 1) as f64 * v2) / (n1 + n2 - 2) as f64).sqrt();
                let diff = match movement {
                    Movement::Drop => m1 - m2,
                    Movement::Rise => m2 - m1,
                };
                diff > tc * pooled
            })
        });
        let applied = [crit1, crit2, crit3];
        let flag = applied.iter().flatten().try_fold(true, |all, v| v.map(|b| all && b));
        out.push(Interval {
            pregain: n,
            crit1: crit1.flatten(),
            crit2: crit2.flatten(),
            crit3: crit3.flatten(),
            flag,
            n_pre: n1,
            n_post: n2,
            t_crit,
        });
    }
}

/// One sudden gain or loss, as `create_bysg` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub pregain: usize,
    pub pregain_score: f64,
    pub postgain_score: f64,
    /// x_n − x_{n+1}, as the package (positive for drops).
    pub drop: f64,
    /// The midpoint of the pregain and postgain scores.
    pub reversal_value: f64,
    /// `None` when the pregain or postgain score is missing (criterion 3 alone can flag
    /// such an interval): the package's reversal is NA then.
    pub reversal: Option<bool>,
    /// Scores at positions n−2, n−1, n+2, n+3 (`NaN` where missing or outside the series).
    pub around: [f64; 4],
    pub interval: Interval,
}

/// Series up to this many positions long are laid out whole; longer ones short
/// ([`lay_out_short`]).
const WHOLE_SPAN: usize = 1024;

/// Missing positions kept on either side of a score: an interval's windows reach three
/// positions back and forward, and the reversal scan starts at most three past it.
const KEPT_GAP: usize = 3;

/// Lays out a series' scores by position (`scored`: position and score, positions in
/// increasing order; the first score at a position counts) as a series of `span`
/// positions would be, but with every run of missing positions longer than 2·[`KEPT_GAP`]
/// cut to that many. Each position cut is an interval with both windows empty, which no
/// switched-on criterion flags: it only counts as tested. Without the cut, one session
/// numbered 10⁹ made every series of its measure 10⁹ positions long (an 8 GB vector and
/// 10⁹ intervals each). Once a run is cut, `position` holds each slot's own position
/// (left empty while slot and position agree, as in nearly every series); returns how
/// many positions were cut.
pub fn lay_out_short(
    scored: impl Iterator<Item = (usize, f64)>,
    span: usize,
    x: &mut Vec<f64>,
    position: &mut Vec<usize>,
) -> usize {
    x.clear();
    position.clear();
    let mut cut = 0;
    // The real position of the next slot of `x`.
    let mut next = 0;
    // Appends slots for positions `at`, after filling in `position` on the first cut.
    let mut push = |x: &mut Vec<f64>, cut: usize, at: std::ops::Range<usize>, v: f64| {
        if cut > 0 && position.is_empty() {
            position.extend(0..x.len());
        }
        if !position.is_empty() {
            position.extend(at.clone());
        }
        x.extend(std::iter::repeat_n(v, at.len()));
    };
    for (p, v) in scored {
        if p < next {
            continue; // a second score at a position already laid out
        }
        // Missing positions next … p − 1, between the last score (or the start) and this.
        let run = p - next;
        if run > 2 * KEPT_GAP {
            push(x, cut, next..next + KEPT_GAP, f64::NAN);
            cut += run - 2 * KEPT_GAP;
            push(x, cut, p - KEPT_GAP..p, f64::NAN);
        } else {
            push(x, cut, next..p, f64::NAN);
        }
        push(x, cut, p..p + 1, v);
        next = p + 1;
    }
    // After the last score the series runs on to `span` positions.
    let run = span.max(next) - next;
    let kept = run.min(2 * KEPT_GAP);
    push(x, cut, next..next + kept, f64::NAN);
    cut + run - kept
}

/// Turns the flagged intervals of a series into events with their reversal status.
pub fn events(x: &[f64], movement: Movement, c: &Criteria, tested: &[Interval], out: &mut Vec<Event>) {
    let at = |i: isize| {
        if i >= 0 && (i as usize) < x.len() {
            x[i as usize]
        } else {
            f64::NAN
        }
    };
    // A reversal is a later score past the midpoint, so only the furthest later score
    // matters: the highest after a drop, the lowest after a rise. With several events in
    // a series these are found in one pass from the end, rather than one scan per event
    // (quadratic in a long series with many events and no reversal).
    let flagged = tested.iter().filter(|iv| iv.flag == Some(true)).count();
    let furthest = if flagged > 1 { furthest_from(x, movement) } else { Vec::new() };
    for iv in tested.iter().filter(|iv| iv.flag == Some(true)) {
        let n = iv.pregain;
        let (pre, post) = (x[n], x[n + 1]);
        let drop = pre - post;
        let reversal_value = post + drop / 2.0;
        // The package keeps later scores whose position, numbered as it numbers them,
        // lies at least two past its `sg_session_n` (quirk S5).
        let first = (if c.identify_1to2 { n + 2 } else { n + 3 }).min(x.len());
        let reversal = (!reversal_value.is_nan()).then(|| {
            let beyond = |v: f64| match movement {
                Movement::Drop => v > reversal_value,
                Movement::Rise => v < reversal_value,
            };
            match furthest.get(first) {
                Some(&v) => beyond(v),
                None => x[first..].iter().any(|&v| beyond(v)),
            }
        });
        let n = n as isize;
        out.push(Event {
            pregain: iv.pregain,
            pregain_score: pre,
            postgain_score: post,
            drop,
            reversal_value,
            reversal,
            around: [at(n - 2), at(n - 1), at(n + 2), at(n + 3)],
            interval: *iv,
        });
    }
}

/// `f[i]` = the furthest score of `x[i..]` in the direction a reversal of `movement`
/// goes (the highest after a drop, the lowest after a rise), missing scores skipped; an
/// infinity where there is none (so that no midpoint is beyond it). `f.len() = x.len() + 1`.
fn furthest_from(x: &[f64], movement: Movement) -> Vec<f64> {
    let (none, further): (f64, fn(f64, f64) -> f64) = match movement {
        Movement::Drop => (f64::NEG_INFINITY, f64::max),
        Movement::Rise => (f64::INFINITY, f64::min),
    };
    let mut f = vec![none; x.len() + 1];
    for i in (0..x.len()).rev() {
        // `max` and `min` return the other operand when one is NaN.
        f[i] = further(f[i + 1], x[i]);
    }
    f
}

/// `create_byperson`'s `multiple_sg_select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Select {
    First,
    Last,
    Smallest,
    Largest,
}

/// Picks one event by the rule, comparing signed `magnitude`s (quirk S7 for losses);
/// ties go to the earliest.
pub fn select<T>(
    events: &[T],
    rule: Select,
    pregain: impl Fn(&T) -> usize,
    magnitude: impl Fn(&T) -> f64,
) -> Option<&T> {
    let mut best: Option<&T> = None;
    for e in events {
        let better = match best {
            None => true,
            Some(b) => {
                let (m, bm) = (magnitude(e), magnitude(b));
                let earlier = pregain(e) < pregain(b);
                match rule {
                    Select::First => earlier,
                    Select::Last => pregain(e) > pregain(b),
                    Select::Smallest => m < bm || (m == bm && earlier),
                    Select::Largest => m > bm || (m == bm && earlier),
                }
            }
        };
        if better {
            best = Some(e);
        }
    }
    best
}

/// Gain or loss, in the clinical sense (toward or away from health).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Gain,
    Loss,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gain => "gain",
            Kind::Loss => "loss",
        }
    }
}

/// How sudden gains are looked for in a run.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Criteria; `cutoff: None` here means the measure's own threshold (below).
    pub criteria: Criteria,
    /// Criterion 1 on or off.
    pub crit1: bool,
    /// Criterion 1 from a reliability as `define_crit1_cutoff` computes it:
    /// 1.96 · √2 · SD · √(1 − r), SD given or that of the measure's baseline scores.
    pub cutoff_reliability: Option<(f64, Option<f64>)>,
    /// The session number at position 0 of every series.
    pub start_session: i32,
    pub select: Select,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            criteria: Criteria::default(),
            crit1: true,
            cutoff_reliability: None,
            start_session: 0,
            select: Select::First,
        }
    }
}

/// A sudden gain or loss found in one episode × measure.
#[derive(Debug, Clone)]
pub struct Found {
    /// Index into `Episodes::items`.
    pub item: usize,
    pub kind: Kind,
    pub event: Event,
    /// Session number of the pregain score.
    pub pregain_session: i32,
    /// Positive for gains, negative for losses, on any scale.
    pub magnitude: f64,
    /// `magnitude` over the change from baseline to final (same sign convention).
    pub change_proportion: Option<f64>,
}

/// Counts per measure, for `summary.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MeasureTally {
    /// Criterion 1's cut-off in points, where one applied.
    pub cutoff: Option<f64>,
    /// No switched-on criterion applies to the measure (criterion 1 has no cut-off for
    /// it and criteria 2 and 3 are off), so its series were counted but not searched.
    pub no_criterion: bool,
    pub series: u64,
    pub intervals_tested: u64,
    pub intervals_evaluable: u64,
    pub gains: u64,
    pub series_with_gain: u64,
    pub gain_reversals: u64,
    pub losses: u64,
    pub series_with_loss: u64,
    pub loss_reversals: u64,
}

/// Everything found in a run.
#[derive(Debug, Clone, Default)]
pub struct SuddenGains {
    pub found: Vec<Found>,
    pub by_measure: std::collections::BTreeMap<u16, MeasureTally>,
}

fn cutoff_for(measure: usize, opts: &Options, eps: &crate::domain::episodes::Episodes) -> Option<f64> {
    if !opts.crit1 || opts.criteria.cutoff.is_some() {
        return opts.criteria.cutoff.filter(|_| opts.crit1);
    }
    if let Some((r, sd)) = opts.cutoff_reliability {
        let baselines: Vec<f64> =
            eps.items.iter().filter(|it| it.measure as usize == measure).map(|it| it.baseline).collect();
        let sd = sd.or_else(|| crate::stats::descriptive::mean_sd(&baselines).1)?;
        return Some(1.96 * 2f64.sqrt() * sd * (1.0 - r).sqrt());
    }
    let rule = eps.rules.get(measure)?.as_ref()?;
    rule.rc_threshold.or(rule.s_diff.map(|s| 1.96 * s))
}

/// Finds sudden gains and losses in every episode × measure series.
pub fn find_all(
    rows: &crate::domain::episodes::SeriesRows,
    eps: &crate::domain::episodes::Episodes,
    registry: &crate::domain::registry::Registry,
    opts: &Options,
) -> SuddenGains {
    use crate::domain::registry::Direction;
    let n_measures = registry.measures().len();
    let span = series_spans(rows, n_measures, opts.start_session);
    let cutoffs: Vec<Option<f64>> = (0..n_measures).map(|i| cutoff_for(i, opts, eps)).collect();
    // The critical values depend only on alpha and the adjustment: compute them once.
    let t = CriticalValues::new(&opts.criteria);
    let mut out = SuddenGains::default();
    let mut x: Vec<f64> = Vec::new();
    let mut tested = Vec::new();
    let mut evs = Vec::new();
    let mut series_windows = Vec::new();
    let mut position = Vec::new();
    for (idx, it) in eps.items.iter().enumerate() {
        let mi = it.measure as usize;
        let criteria = Criteria { cutoff: cutoffs[mi], ..opts.criteria.clone() };
        let tally = out
            .by_measure
            .entry(it.measure)
            .or_insert_with(|| MeasureTally { cutoff: cutoffs[mi], ..Default::default() });
        tally.series += 1;
        if !criteria.any_on() {
            // With no criterion the package refuses to run; flagging every interval, as
            // an empty product of criteria would, is not a finding.
            tally.no_criterion = true;
            continue;
        }
        let (by_rank, left_out) =
            lay_out_series(rows, it.rows.clone(), span[mi], opts.start_session, &mut x, &mut position);
        let real = |n: usize| position.get(n).copied().unwrap_or(n);
        let lower = registry.get(mi).direction == Direction::Lower;
        let sign = if lower { 1.0 } else { -1.0 };
        let tx_change = it.final_score.map(|f| sign * (it.baseline - f));
        windows(&x, &mut series_windows);
        for kind in [Kind::Gain, Kind::Loss] {
            let movement = movement_of(kind, lower);
            tested.clear();
            evs.clear();
            intervals_in(&x, &series_windows, movement, &criteria, &t, &mut tested);
            events(&x, movement, &criteria, &tested, &mut evs);
            count_events(tally, kind, &tested, left_out, &evs);
            for mut e in evs.drain(..) {
                (e.pregain, e.interval.pregain) = (real(e.pregain), real(e.interval.pregain));
                let magnitude = sign * e.drop;
                let start = if by_rank { 0 } else { opts.start_session };
                out.found.push(Found {
                    item: idx,
                    kind,
                    pregain_session: start + e.pregain as i32,
                    magnitude,
                    change_proportion: tx_change.map(|t| magnitude / t).filter(|p| p.is_finite()),
                    event: e,
                });
            }
        }
    }
    out.found.sort_by_key(|f| (f.item, f.event.pregain, f.kind));
    out
}

/// The number of positions of each measure's series, by registry index.
fn series_spans(rows: &crate::domain::episodes::SeriesRows, n_measures: usize, start_session: i32) -> Vec<usize> {
    // A series spans positions 0 … (last session of the measure in the data − start),
    // as the columns of the package's wide table would.
    (0..n_measures)
        .map(|i| match rows.last_session.get(i).copied().flatten() {
            Some(last) if last >= start_session => (last - start_session) as usize + 1,
            _ => 0,
        })
        .collect()
}

/// Lays out one series' treatment scores in `x`; returns (in date order, positions left out).
fn lay_out_series(
    rows: &crate::domain::episodes::SeriesRows,
    series: std::ops::Range<usize>,
    span: usize,
    start_session: i32,
    x: &mut Vec<f64>,
    position: &mut Vec<usize>,
) -> (bool, usize) {
    use crate::domain::columns::{Phase, NO_SESSION};
    let (session, score, phase) = (&rows.session[series.clone()], &rows.score[series.clone()], &rows.phase[series]);
    let treatment = || (0..score.len()).filter(|&k| phase[k] != Phase::FollowUp);
    x.clear();
    let by_rank = treatment().any(|k| session[k] == NO_SESSION);
    // Positions left out of `x` (each a blank interval), and each position's own.
    let mut left_out = 0;
    position.clear();
    if by_rank {
        // No session numbers: the series is the scores in date order.
        x.extend(treatment().map(|k| score[k]));
    } else {
        let scored = treatment()
            .filter(|&k| session[k] >= start_session)
            .map(|k| ((session[k] - start_session) as usize, score[k]));
        // Series of the usual length are laid out whole, as the package does (the
        // short layout gives the same results, at a little more work per score).
        if span > WHOLE_SPAN {
            left_out = lay_out_short(scored, span, x, position);
        } else {
            x.resize(span, f64::NAN);
            for (p, v) in scored {
                if x[p].is_nan() {
                    x[p] = v;
                }
            }
        }
    }
    (by_rank, left_out)
}

/// The way the scores move in a gain or a loss, on a scale where lower is better or not.
#[inline]
fn movement_of(kind: Kind, lower: bool) -> Movement {
    match (kind, lower) {
        (Kind::Gain, true) | (Kind::Loss, false) => Movement::Drop,
        _ => Movement::Rise,
    }
}

/// Adds one kind's events in a series (and, for gains, its intervals) to the measure's tally.
#[inline]
fn count_events(tally: &mut MeasureTally, kind: Kind, tested: &[Interval], left_out: usize, evs: &[Event]) {
    if kind == Kind::Gain {
        tally.intervals_tested += (tested.len() + left_out) as u64;
        tally.intervals_evaluable += tested.iter().filter(|i| i.flag.is_some()).count() as u64;
    }
    let reversals = evs.iter().filter(|e| e.reversal == Some(true)).count() as u64;
    match kind {
        Kind::Gain => {
            tally.gains += evs.len() as u64;
            tally.series_with_gain += u64::from(!evs.is_empty());
            tally.gain_reversals += reversals;
        }
        Kind::Loss => {
            tally.losses += evs.len() as u64;
            tally.series_with_loss += u64::from(!evs.is_empty());
            tally.loss_reversals += reversals;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const NA: f64 = f64::NAN;

    fn crit(cutoff: f64) -> Criteria {
        Criteria { cutoff: Some(cutoff), identify_1to2: false, ..Criteria::default() }
    }

    fn flags(x: &[f64], movement: Movement, c: &Criteria) -> Vec<Option<bool>> {
        let mut out = Vec::new();
        intervals(x, movement, c, &CriticalValues::new(c), &mut out);
        out.iter().map(|i| i.flag).collect()
    }

    #[test]
    fn critical_values_equal_r_qt() {
        // R: abs(qt(0.025, df)) and abs(qt(0.005, df)).
        assert!((t_critical(0.05, 2.0) - 4.30265272974946).abs() < 1e-11);
        assert!((t_critical(0.05, 3.0) - 3.18244630528371).abs() < 1e-11);
        assert!((t_critical(0.05, 4.0) - 2.77644510519779).abs() < 1e-11);
        assert!((t_critical(0.01, 2.0) - 9.92484320091829).abs() < 1e-10);
        assert!((t_critical(0.01, 3.0) - 5.84090930973336).abs() < 1e-10);
        assert!((t_critical(0.01, 4.0) - 4.60409487134999).abs() < 1e-10);
    }

    #[test]
    fn first_and_last_intervals_are_never_tested() {
        // k = 6 scores: intervals 1→2, 2→3 only (0-based), i.e. k − 3.
        let x = [30.0, 10.0, 30.0, 30.0, 30.0, 10.0];
        let c = Criteria { cutoff: Some(7.0), pct: Some(0.25), crit3: false, ..Criteria::default() };
        let mut out = Vec::new();
        intervals(&x, Movement::Drop, &c, &CriticalValues::new(&c), &mut out);
        assert_eq!(out.iter().map(|i| i.pregain).collect::<Vec<_>>(), vec![1, 2, 3]);
        // The big drops 0→1 and 4→5 are outside the tested range.
        assert!(out.iter().all(|i| i.flag == Some(false)));
    }

    #[test]
    fn positions_past_the_last_score_are_tested_but_never_evaluable() {
        // Scores at positions 0-5, then padding to the length of the measure's longest
        // series: intervals 1..=k-3 are all listed; from position 8 (two past the last
        // score, 5) on, both windows are empty, so no criterion can be computed.
        let mut x = vec![25.0, 24.0, 25.0, 24.0, 12.0, 13.0];
        x.resize(14, NA);
        let c = crit(7.0);
        let mut out = Vec::new();
        intervals(&x, Movement::Drop, &c, &CriticalValues::new(&c), &mut out);
        assert_eq!(out.iter().map(|i| i.pregain).collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());
        assert_eq!(out[2].flag, Some(true), "the gain 24 -> 12 is still found");
        // Position 6: pre window 12, 13, NA, post window empty; position 7: 13, NA, NA.
        assert_eq!((out[5].n_pre, out[5].n_post), (2, 0));
        assert_eq!((out[6].n_pre, out[6].n_post), (1, 0));
        for iv in &out[7..] {
            let empty = Interval {
                pregain: iv.pregain,
                crit1: None,
                crit2: None,
                crit3: None,
                flag: None,
                n_pre: 0,
                n_post: 0,
                t_crit: None,
            };
            assert_eq!(*iv, empty);
        }
        // No score at all: every interval is empty.
        let mut none = Vec::new();
        intervals(&[NA; 6], Movement::Rise, &c, &CriticalValues::new(&c), &mut none);
        assert_eq!(none.len(), 3);
        assert!(none.iter().all(|iv| iv.flag.is_none() && iv.n_pre == 0 && iv.n_post == 0));
    }

    #[test]
    fn a_clear_gain_passes_all_three_criteria() {
        // Pre 24, 25, 24 (mean 24.33, s² 0.333); post 12, 13, 12 (mean 12.33, s² 0.333);
        // pooled SD 0.577 · 2.776 = 1.60 < 12. Drop 24 → 12 ≥ 7 and ≥ 6.
        let x = [25.0, 24.0, 25.0, 24.0, 12.0, 13.0, 12.0, 12.0];
        assert_eq!(flags(&x, Movement::Drop, &crit(7.0))[2], Some(true));
        assert_eq!(flags(&x, Movement::Rise, &crit(7.0))[2], Some(false));
    }

    #[test]
    fn criteria_1_and_2_are_inclusive_and_criterion_3_strict() {
        // Drop of exactly 7 from 28 (exactly 25 %): criteria 1 and 2 hold at equality.
        let c = Criteria { cutoff: Some(7.0), pct: Some(0.25), crit3: false, ..Criteria::default() };
        assert_eq!(flags(&[28.0, 28.0, 21.0, 21.0], Movement::Drop, &c), vec![Some(true)]);
        let c = Criteria { cutoff: Some(7.01), ..c };
        assert_eq!(flags(&[28.0, 28.0, 21.0, 21.0], Movement::Drop, &c), vec![Some(false)]);
        // Criterion 3 alone with zero spread: difference 0 is not > 0.
        let c3 = Criteria { cutoff: None, pct: None, crit3: true, ..Criteria::default() };
        assert_eq!(flags(&[5.0, 5.0, 5.0, 5.0], Movement::Drop, &c3), vec![Some(false)]);
    }

    #[test]
    fn a_missing_criterion_makes_the_interval_not_evaluable_even_if_another_fails() {
        // Pregain score missing: criteria 1 and 2 are NA; criterion 3 (windows 20,NA / 30,30) would fail.
        let x = [20.0, 20.0, NA, 30.0, 30.0, 30.0];
        let f = flags(&x, Movement::Drop, &crit(7.0));
        assert_eq!(f[1], None, "NA * 0 = NA");
        // Only one score after the gain in the window: criterion 3 is NA.
        let y = [20.0, 20.0, 20.0, 10.0, NA, NA];
        assert_eq!(flags(&y, Movement::Drop, &crit(7.0))[1], None);
        // With criterion 3 off the same interval is evaluable, and a gain.
        let c = Criteria { crit3: false, ..crit(7.0) };
        assert_eq!(flags(&y, Movement::Drop, &c)[1], Some(true));
    }

    #[test]
    fn criterion_3_uses_truncated_windows_and_adjusted_values() {
        // First tested interval (1→2): pre window has positions 0, 1 only (n₁ = 2), df = 3.
        let x = [30.0, 31.0, 20.0, 19.0, 21.0, 20.0];
        let c = crit(7.0);
        let mut out = Vec::new();
        intervals(&x, Movement::Drop, &c, &CriticalValues::new(&c), &mut out);
        assert_eq!((out[0].n_pre, out[0].n_post), (2, 3));
        assert!((out[0].t_crit.unwrap() - 3.18244630528371).abs() < 1e-11);
        // A fixed critical value replaces the adjusted one.
        let fixed = Criteria { adjust: false, ..c };
        let mut out = Vec::new();
        intervals(&x, Movement::Drop, &fixed, &CriticalValues::new(&fixed), &mut out);
        assert_eq!(out[0].t_crit, Some(2.776));
    }

    #[test]
    fn reversal_scan_starts_at_the_third_later_score_in_the_default_numbering() {
        // Gain 30 → 10 at n = 2 (midpoint 20); x[4] = 25 returns above it, x[5] and x[6] do not
        // (25 → 19 is only 6 points, so it is not a second gain).
        let x = [30.0, 30.0, 30.0, 10.0, 25.0, 19.0, 18.0];
        let c = Criteria { cutoff: Some(7.0), crit3: false, ..crit(7.0) };
        let t = CriticalValues::new(&c);
        let mut iv = Vec::new();
        intervals(&x, Movement::Drop, &c, &t, &mut iv);
        let mut ev = Vec::new();
        events(&x, Movement::Drop, &c, &iv, &mut ev);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].reversal_value, ev[0].reversal), (20.0, Some(false)), "x_(n+2) is not scanned");
        let c2 = Criteria { identify_1to2: true, ..c };
        let mut ev = Vec::new();
        events(&x, Movement::Drop, &c2, &iv, &mut ev);
        assert_eq!(ev[0].reversal, Some(true), "with identify_sg_1to2 the scan starts at x_(n+2)");
    }

    /// Every pregain position of `x` flagged (the reversal rule does not look at the
    /// criteria, only at the scores).
    fn all_flagged(x: &[f64]) -> Vec<Interval> {
        (0..x.len().saturating_sub(1))
            .map(|pregain| Interval {
                pregain,
                crit1: None,
                crit2: None,
                crit3: None,
                flag: Some(true),
                n_pre: 0,
                n_post: 0,
                t_crit: None,
            })
            .collect()
    }

    #[test]
    fn reversals_of_several_events_look_at_the_furthest_later_score() {
        // Drops at every position. Midpoints: 20→10: 15; 10→8: 9; 8→12 (a rise): 10; …
        let x = [20.0, 10.0, 8.0, 12.0, f64::NAN, 9.0, 7.0];
        let c = Criteria { identify_1to2: false, ..crit(1.0) };
        let mut ev = Vec::new();
        events(&x, Movement::Drop, &c, &all_flagged(&x), &mut ev);
        let got: Vec<(usize, Option<bool>)> = ev.iter().map(|e| (e.pregain, e.reversal)).collect();
        // n = 0: scan x[3..] = 12, 9, 7 against 15: none above. n = 1: x[4..] = 9, 7
        // against 9: none. n = 2: 8 → 12, midpoint 10, x[5..] = 9, 7: none above 10.
        // n = 3: 12 → NaN: no midpoint. n = 4: NaN → 9: none. n = 5: 9 → 7, midpoint 8,
        // nothing after x[8].
        assert_eq!(
            got,
            vec![(0, Some(false)), (1, Some(false)), (2, Some(false)), (3, None), (4, None), (5, Some(false))]
        );
        // With the scan from n + 2: n = 1 sees 12 > 9; n = 2 (midpoint 10) starts after 12.
        let c2 = Criteria { identify_1to2: true, ..c };
        let mut ev = Vec::new();
        events(&x, Movement::Drop, &c2, &all_flagged(&x), &mut ev);
        let got: Vec<Option<bool>> = ev.iter().map(|e| e.reversal).collect();
        assert_eq!(got, vec![Some(false), Some(true), Some(false), None, None, Some(false)]);
    }

    #[test]
    fn reversals_found_in_one_pass_equal_a_scan_per_event() {
        // Pseudo-random series with missing scores, every interval an event, both
        // directions and numberings; against the rule as written (a scan per event).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in [0usize, 1, 2, 3, 4, 7, 40] {
            for _ in 0..50 {
                let x: Vec<f64> =
                    (0..len).map(|_| if next() % 5 == 0 { f64::NAN } else { (next() % 28) as f64 }).collect();
                for movement in [Movement::Drop, Movement::Rise] {
                    for identify_1to2 in [false, true] {
                        let c = Criteria { identify_1to2, ..crit(1.0) };
                        let mut ev = Vec::new();
                        events(&x, movement, &c, &all_flagged(&x), &mut ev);
                        for e in &ev {
                            let first = e.pregain + if identify_1to2 { 2 } else { 3 };
                            let mid = e.reversal_value;
                            let later = x.iter().skip(first).filter(|v| !v.is_nan());
                            let expected = (!mid.is_nan()).then(|| match movement {
                                Movement::Drop => later.clone().any(|&v| v > mid),
                                Movement::Rise => later.clone().any(|&v| v < mid),
                            });
                            assert_eq!(e.reversal, expected, "{x:?} {movement:?} n = {}", e.pregain);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn loss_criterion_2_mirrored_or_as_the_package() {
        // Rise 30 → 38: +8 ≥ 7 but < 25 % of 30 (7.5 < 8 … holds); take 40 → 48 (+8 < 10).
        let x = [40.0, 40.0, 48.0, 48.0];
        let c = Criteria { cutoff: Some(7.0), crit3: false, ..Criteria::default() };
        assert_eq!(flags(&x, Movement::Rise, &c), vec![Some(false)], "mirrored: 8 < 0.25 · 40");
        let pkg = Criteria { rise_pct_as_package: true, ..c };
        assert_eq!(flags(&x, Movement::Rise, &pkg), vec![Some(true)], "package: −8 ≤ 10 always holds");
    }

    #[test]
    fn one_event_per_series_by_rule() {
        let evs = [(3usize, 11.0), (7, 12.0), (9, 11.0)];
        let pick = |r| select(&evs, r, |e| e.0, |e| e.1).map(|e| e.0);
        assert_eq!(pick(Select::First), Some(3));
        assert_eq!(pick(Select::Last), Some(9));
        assert_eq!(pick(Select::Smallest), Some(3), "ties go to the earliest");
        assert_eq!(pick(Select::Largest), Some(7));
        assert_eq!(select(&[] as &[(usize, f64)], Select::First, |e| e.0, |e| e.1), None);
    }

    /// The short layout gives what the full one gives: the same intervals at the positions
    /// it keeps (the cut ones all blank and not evaluable), the same events at the same
    /// positions, and the same count of tested intervals; on series with long gaps, a
    /// long tail, scores before and after them, and a second score at one position.
    #[test]
    fn series_laid_out_short_give_the_events_and_counts_of_the_full_series() {
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        let criteria = [
            Criteria { cutoff: Some(4.0), ..Criteria::default() },
            Criteria { cutoff: Some(4.0), identify_1to2: false, ..Criteria::default() },
            Criteria { cutoff: None, pct: None, crit3: true, ..Criteria::default() },
            Criteria { cutoff: Some(3.0), pct: None, crit3: false, ..Criteria::default() },
        ];
        let (mut short, mut position, mut full) = (Vec::new(), Vec::new(), Vec::new());
        let (mut cuts, mut found) = (0, 0);
        for round in 0..400 {
            // Positions with gaps of 0 to 30 missing ones (some series start late).
            let mut scored = Vec::new();
            let mut p = next(12) as usize;
            for _ in 0..1 + next(9) {
                scored.push((p, (5 + next(20)) as f64));
                if next(6) == 0 {
                    scored.push((p, 99.0)); // a later score at the same position: not used
                }
                p += 1 + if next(3) == 0 { next(30) as usize } else { 0 };
            }
            let span = p + next(40) as usize;
            let cut = lay_out_short(scored.iter().copied(), span, &mut short, &mut position);
            full.clear();
            full.resize(span, NA);
            for &(p, v) in &scored {
                if full[p].is_nan() {
                    full[p] = v;
                }
            }
            assert_eq!(short.len() + cut, span, "round {round}");
            cuts += usize::from(cut > 0);
            if position.is_empty() {
                // Nothing cut before the last score: every slot is its own position.
                position.extend(0..short.len());
            }
            for (k, &p) in position.iter().enumerate() {
                assert_eq!(short[k].to_bits(), full[p].to_bits(), "round {round}: position {p}");
            }
            for c in &criteria {
                for movement in [Movement::Drop, Movement::Rise] {
                    let t = CriticalValues::new(c);
                    let (mut a, mut b, mut ea, mut eb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                    intervals(&full, movement, c, &t, &mut a);
                    intervals(&short, movement, c, &t, &mut b);
                    assert_eq!(b.len() + cut, a.len(), "round {round}: intervals tested");
                    for iv in &b {
                        assert_eq!(Interval { pregain: position[iv.pregain], ..*iv }, a[position[iv.pregain] - 1]);
                    }
                    let evaluable = |v: &[Interval]| v.iter().filter(|i| i.flag.is_some()).count();
                    assert_eq!(evaluable(&b), evaluable(&a), "round {round}: cut intervals are blank");
                    events(&full, movement, c, &a, &mut ea);
                    events(&short, movement, c, &b, &mut eb);
                    for e in &mut eb {
                        (e.pregain, e.interval.pregain) = (position[e.pregain], position[e.interval.pregain]);
                    }
                    let bits = |v: &[Event]| format!("{v:?}");
                    assert_eq!(bits(&eb), bits(&ea), "round {round}: events");
                    found += ea.len();
                }
            }
        }
        assert!(cuts > 100 && found > 100, "the rounds cut series and find events: {cuts}, {found}");
    }

    #[test]
    fn one_session_numbered_a_billion_makes_a_short_series() {
        let (mut x, mut position) = (Vec::new(), Vec::new());
        let scored = [(0, 20.0), (1, 12.0), (2, 11.0), (1_000_000_000, 10.0)];
        let cut = lay_out_short(scored.into_iter(), 1_000_000_001, &mut x, &mut position);
        assert_eq!(x.len(), 3 + 6 + 1);
        assert_eq!(cut, 1_000_000_001 - 10);
        assert_eq!(position[..5], [0, 1, 2, 3, 4]);
        assert_eq!(position[6..], [999_999_997, 999_999_998, 999_999_999, 1_000_000_000]);
    }
}
