//! Headline figures of a run, as written to `summary.json` and shown in the report.
//!
//! Every rate carries its numerator and denominator. Denominators follow NHS Talking
//! Therapies: recovery and reliable recovery over paired episodes that were a case at
//! baseline; reliable improvement and deterioration over all paired episodes.

use crate::domain::columns::Rejection;
use crate::domain::episodes::Episodes;
use crate::domain::outcomes::{Outcome, ReliableCategory, ResolvedRule};
use crate::domain::registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;

/// A proportion with what it counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
    /// `numerator / denominator`; absent when the denominator is 0.
    pub rate: Option<f64>,
}

impl Rate {
    pub fn new(numerator: u64, denominator: u64) -> Rate {
        Rate { numerator, denominator, rate: (denominator > 0).then(|| numerator as f64 / denominator as f64) }
    }

    /// Counts the `hit`s among items that are `in_denominator`.
    pub fn count<T>(items: &[&T], in_denominator: impl Fn(&T) -> bool, hit: impl Fn(&T) -> bool) -> Rate {
        let den = items.iter().filter(|t| in_denominator(t)).count() as u64;
        let num = items.iter().filter(|t| in_denominator(t) && hit(t)).count() as u64;
        Rate::new(num, den)
    }
}

/// Rows read, used and rejected for one input table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableCounts {
    pub file: String,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
    pub ignored_columns: Vec<String>,
}

impl TableCounts {
    /// The same table once `rejected` of its rows are known to be rejected.
    pub fn with_rejected(self, rejected: usize) -> TableCounts {
        let rows_rejected = rejected as u64;
        TableCounts { rows_used: self.rows_read - rows_rejected, rows_rejected, ..self }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MeasureSummary {
    pub name: String,
    /// The instrument's standard codes ([`crate::domain::registry::Measure::snomed`], `loinc`).
    pub snomed: Option<String>,
    pub loinc: Option<String>,
    /// Every episode with a score on the measure, ended or open.
    pub episodes: u64,
    /// Open on the extract date (in treatment): in no figure below.
    pub in_treatment: u64,
    /// Ended on the extract date; `paired`, `unpaired`, `at_caseness`, the outcomes and
    /// the rates are of these.
    pub ended: u64,
    /// Ended and paired (NHS Talking Therapies' "finished a course of treatment").
    pub paired: u64,
    pub unpaired: u64,
    pub at_caseness: u64,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub rates: BTreeMap<&'static str, Rate>,
    pub rule: ResolvedRule,
    /// Series whose orders disagree, to check (counts of episodes: suppressed as such).
    pub series_checks: SeriesCheckCounts,
}

/// How many of a measure's series carry each [`crate::domain::episodes::SeriesChecks`] flag.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SeriesCheckCounts {
    pub assessment_not_baseline: u64,
    pub dates_out_of_session_order: u64,
}

impl SeriesCheckCounts {
    pub fn any(&self) -> bool {
        self.assessment_not_baseline + self.dates_out_of_session_order > 0
    }
}

/// How many episodes (client × episode) were ended or open on the extract date.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSummary {
    pub extract: crate::domain::episodes::Extract,
    /// The rule, in words.
    pub rule: &'static str,
    pub ended: u64,
    pub open: u64,
    /// Ended episodes by the first rule that ended them.
    pub ended_by: BTreeMap<&'static str, u64>,
}

/// The rule that judges an episode ended, as `summary.json` and the report state it.
pub const ENDED_RULE: &str = "ended when its episode_end is on or before the extract date, or it has an end-phase \
     score, or a follow-up score, or its last score is more than inactive_days before the extract date (the first \
     that applies names it); otherwise open (in treatment)";

/// Episodes (client × episode; their items are consecutive) by status.
pub fn status_summary(episodes: &Episodes) -> StatusSummary {
    let mut ended_by: BTreeMap<&'static str, u64> =
        crate::domain::episodes::EndedBy::ALL.iter().map(|b| (b.as_str(), 0)).collect();
    let (mut ended, mut open) = (0, 0);
    let mut last = None;
    for it in &episodes.items {
        if last == Some((it.client, it.episode)) {
            continue;
        }
        last = Some((it.client, it.episode));
        match it.status().ended_by() {
            Some(by) => {
                ended += 1;
                *ended_by.entry(by.as_str()).or_default() += 1;
            }
            None => open += 1,
        }
    }
    StatusSummary { extract: episodes.extract, rule: ENDED_RULE, ended, open, ended_by }
}

#[derive(Debug, Clone, Serialize)]
pub struct TalkingTherapiesSummary {
    /// Ended episodes with paired PHQ-9 and GAD-7 (finished courses).
    pub paired: u64,
    /// Episodes with paired PHQ-9 and GAD-7 still in treatment: in no figure here.
    pub in_treatment: u64,
    pub at_caseness: u64,
    pub rates: BTreeMap<&'static str, Rate>,
    /// PHQ-9 and GAD-7 (by code) where the measure file changed the cut-off or the
    /// reliable-change rule: the combined figures then follow that rule, not NHS Talking
    /// Therapies' own (PHQ-9 ≥ 10 and 6 points, GAD-7 ≥ 8 and 4 points).
    pub rules_from_measure_file: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub sustain_version: &'static str,
    /// Results for publication (`--publish`): disclosure control applied.
    pub published: bool,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
    pub inputs: BTreeMap<&'static str, TableCounts>,
    pub rejections_by_reason: BTreeMap<&'static str, u64>,
    pub clients: u64,
    pub episodes: u64,
    pub episode_measures: u64,
    /// Episodes ended or open on the extract date, and the rule that judged them.
    pub status: StatusSummary,
    pub measures: BTreeMap<String, MeasureSummary>,
    pub talking_therapies: Option<TalkingTherapiesSummary>,
    /// Each published standard beside the rate it applies to.
    pub standards: Vec<StandardResult>,
    /// The headline rates beside those of an earlier period (`--compare-to`, or the
    /// period before `--from`..`--to`).
    pub comparison: Option<ComparisonSummary>,
    /// Absent until the sudden-gains stage has run.
    pub sudden_gains: Option<SuddenGainsSummary>,
    /// Absent until the follow-up stage has run.
    pub sustained: Option<SustainedSummary>,
    /// Absent without a goals table.
    pub goals: Option<GoalsSummary>,
    /// Absent until the trajectory stage has run.
    pub trajectories: Option<TrajectorySummary>,
    /// Absent until the caseload stage has run.
    pub caseload: Option<CaseloadSummary>,
    /// The open episodes on the extract date and how many need attention.
    pub current: Option<crate::analyses::current::CurrentSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseloadSummary {
    pub options: crate::analyses::caseload::Options,
    /// Practice reliable-recovery rate and overdispersion behind each funnel plot.
    pub funnels: Vec<FunnelSummary>,
    /// Units outside the 95 % or 99.8 % limits (never a ranking; small units withheld).
    pub outside_limits: Vec<FlaggedUnit>,
    /// Months (or quarters) whose reliable-recovery rate is outside its p-chart limits.
    pub trend_statements: Vec<String>,
    /// By kind of unit and measure, how much of the variation in improvement lies
    /// between units once baselines are allowed for (a mixed model, `unit_effects`).
    pub unit_effects: Vec<EffectsSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EffectsSummary {
    pub measure: String,
    pub unit: &'static str,
    /// Withheld ("*" in JSON) when the model has fewer paired episodes than the
    /// suppression threshold.
    pub model: crate::analyses::unit_effects::UnitEffects,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunnelSummary {
    pub measure: String,
    pub unit: &'static str,
    pub practice_reliable_recovery: f64,
    /// How the limits allow for overdispersion (`none`, `additive`, `multiplicative`),
    /// and whether any was found and applied (else the limits are exact binomial).
    pub overdispersion: crate::stats::rates::Overdispersion,
    pub overdispersion_applied: bool,
    pub phi: f64,
    pub tau2: f64,
    /// How many units lie outside each limit, and how many would by chance alone.
    pub units: UnitsOutside,
}

/// Units of one funnel plot outside its limits, beside the number chance alone would put
/// there (5 % and 0.2 % of the units). Counts of units, not of people.
#[derive(Debug, Clone, Serialize)]
pub struct UnitsOutside {
    pub with_episodes: u64,
    pub outside_95: u64,
    pub outside_998: u64,
    pub expected_outside_95: f64,
    pub expected_outside_998: f64,
}

/// A unit outside its funnel limits. A flag is never withheld: in published results a
/// unit too small to show keeps its flag, and its counts and rate are `null`.
#[derive(Debug, Clone, Serialize)]
pub struct FlaggedUnit {
    pub unit_kind: &'static str,
    pub unit: String,
    pub measure: String,
    pub flag: &'static str,
    /// Reliably recovered episodes (numerator) of those paired at caseness (denominator):
    /// the funnel's axes.
    pub numerator: u64,
    pub denominator: u64,
    pub rate: Option<f64>,
    /// The rate the unit is judged on: adjusted for intake severity where the practice's
    /// case-mix model gives one.
    pub adjusted_rate: Option<f64>,
}

/// A funnel plot's practice rate, overdispersion, and units outside its limits beside
/// the number chance alone would put there.
fn funnel_summary(
    r: &crate::analyses::caseload::FunnelReference,
    units: &[crate::analyses::caseload::Unit],
    measure: String,
) -> FunnelSummary {
    let mine: Vec<&crate::analyses::caseload::Unit> =
        units.iter().filter(|u| u.kind == r.kind && u.measure == r.measure && u.funnel_flag.is_some()).collect();
    let outside = |limit: &str| mine.iter().filter(|u| u.funnel_flag.is_some_and(|f| f.ends_with(limit))).count();
    let (n, out998) = (mine.len() as u64, outside("99.8") as u64);
    let d = r.dispersion;
    FunnelSummary {
        measure,
        unit: r.kind,
        practice_reliable_recovery: r.rate,
        overdispersion: d.method,
        overdispersion_applied: crate::analyses::caseload::overdispersion_applied(&d),
        phi: d.phi,
        tau2: d.tau2,
        units: UnitsOutside {
            with_episodes: n,
            // Outside the 99.8 % limits is outside the 95 % ones too.
            outside_95: outside("95") as u64 + out998,
            outside_998: out998,
            expected_outside_95: 0.05 * n as f64,
            expected_outside_998: 0.002 * n as f64,
        },
    }
}

/// The caseload section: funnel references, units outside the limits, trend statements.
pub fn caseload_summary(
    units: &[crate::analyses::caseload::Unit],
    refs: &[crate::analyses::caseload::FunnelReference],
    periods: &[crate::analyses::caseload::Period],
    effects: &[crate::analyses::caseload::EffectsModel],
    options: &crate::analyses::caseload::Options,
    registry: &Registry,
) -> CaseloadSummary {
    let s = &options.suppression;
    let code = |m: u16| registry.get(m as usize).code.clone();
    let outside_limits = units
        .iter()
        .filter_map(|u| {
            let flag = u.funnel_flag.filter(|f| *f != "within")?;
            let c = u.reliable_recovery;
            Some(FlaggedUnit {
                unit_kind: u.kind,
                unit: u.unit.clone(),
                measure: code(u.measure),
                flag,
                numerator: c.k,
                denominator: c.n,
                rate: c.rate(),
                adjusted_rate: u.adjusted_recovery,
            })
        })
        .collect();
    // Every month outside the limits is named; a published one whose counts are withheld
    // says so instead of giving its rate.
    let trend_statements = periods
        .iter()
        .filter_map(|p| {
            let side = p.outside?;
            let (lo, hi) = p.limits?;
            let rate = if s.hides(p.recovery.k, p.recovery.n) {
                format!("reliable recovery (counts below {} withheld)", s.threshold)
            } else {
                format!(
                    "reliable recovery {} of {} ({:.0} %)",
                    s.count(p.recovery.k),
                    s.count(p.recovery.n),
                    100.0 * p.recovery.rate().unwrap_or(0.0)
                )
            };
            Some(format!(
                "{} {}: {rate} is {side} the control limits ({:.0}–{:.0} %)",
                code(p.measure),
                p.period,
                100.0 * lo,
                100.0 * hi
            ))
        })
        .collect();
    CaseloadSummary {
        options: options.clone(),
        funnels: refs.iter().map(|r| funnel_summary(r, units, code(r.measure))).collect(),
        outside_limits,
        trend_statements,
        unit_effects: effects
            .iter()
            .map(|e| EffectsSummary { measure: code(e.measure), unit: e.kind, model: e.model.clone() })
            .collect(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrajectorySummary {
    pub options: crate::analyses::trajectories::Options,
    pub by_measure: BTreeMap<String, TrajectoryMeasure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrajectoryMeasure {
    pub shapes: BTreeMap<&'static str, u64>,
    /// Paired episodes with a temporary worsening, by what followed.
    pub dips: BTreeMap<&'static str, u64>,
    /// Final outcomes of episodes that went through the discomfort zone and of those with
    /// no dip at all.
    pub with_discomfort_zone: BTreeMap<&'static str, Rate>,
    pub without_dip: BTreeMap<&'static str, Rate>,
    pub not_on_track: crate::analyses::trajectories::FlagAccuracy,
    /// The measure's growth model over its paired series (absent where the data do not
    /// identify one).
    pub growth_model: Option<crate::stats::growth::GrowthFit>,
    /// Series whose change per session is reliably more or less than the typical
    /// series' (clinicalsignificance's HLM method), with the model that says so.
    pub change_vs_typical: VsTypical,
}

/// The HLM reliable-change categories of one measure's series of 3 or more scores.
#[derive(Debug, Clone, Serialize)]
pub struct VsTypical {
    /// The growth model over the series of 3 or more scores (absent where the data do
    /// not identify one; then no series is classified).
    pub growth_model: Option<crate::stats::growth::GrowthFit>,
    /// Whether the model gives the index: not where the slopes vary no more than the
    /// intercepts carry (a singular model), see [`crate::stats::growth::GrowthFit::gives_slope_rci`].
    pub index_given: bool,
    /// Series by category ([`crate::analyses::trajectories::VS_TYPICAL`]).
    pub series: BTreeMap<&'static str, u64>,
}

/// Shapes and dips of the paired series counted by measure as their trajectories are
/// handed on (series by series, see [`crate::analyses::trajectories::analyse`]), with the recovery
/// and improvement counts of those with a discomfort zone and of those without a dip.
#[derive(Debug, Clone, Default)]
pub struct TrajectoryTally {
    by_measure: BTreeMap<u16, ShapeTally>,
}

#[derive(Debug, Clone)]
struct ShapeTally {
    shapes: BTreeMap<&'static str, u64>,
    dips: BTreeMap<&'static str, u64>,
    with_discomfort_zone: OutcomeTally,
    without_dip: OutcomeTally,
    vs_typical: BTreeMap<&'static str, u64>,
}

impl ShapeTally {
    /// Every shape and dip kind at 0 (so that the summary lists them all).
    fn new() -> ShapeTally {
        use crate::analyses::trajectories::Shape;
        ShapeTally {
            shapes: Shape::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
            dips: ["discomfort_zone", "lasting_deterioration", "no_improvement_after"]
                .iter()
                .map(|k| (*k, 0))
                .collect(),
            with_discomfort_zone: OutcomeTally::default(),
            without_dip: OutcomeTally::default(),
            vs_typical: crate::analyses::trajectories::VS_TYPICAL.iter().map(|k| (*k, 0)).collect(),
        }
    }
}

/// Reliable recovery among those at caseness at baseline, reliable improvement among all.
#[derive(Debug, Clone, Copy, Default)]
struct OutcomeTally {
    at_caseness: u64,
    recovered: u64,
    all: u64,
    improved: u64,
}

impl OutcomeTally {
    fn add(&mut self, it: &crate::domain::episodes::EpisodeMeasure) {
        let c = &it.classification;
        if c.caseness_start == Some(true) {
            self.at_caseness += 1;
            self.recovered += u64::from(c.outcome == Some(Outcome::Recovered));
        }
        self.all += 1;
        self.improved += u64::from(c.reliable_change == Some(ReliableCategory::Improved));
    }

    fn rates(&self) -> BTreeMap<&'static str, Rate> {
        BTreeMap::from([
            ("reliable_recovery", Rate::new(self.recovered, self.at_caseness)),
            ("reliable_improvement", Rate::new(self.improved, self.all)),
        ])
    }
}

impl TrajectoryTally {
    /// Counts one series' trajectory (only finished series count).
    pub fn add(&mut self, it: &crate::domain::episodes::EpisodeMeasure, t: &crate::analyses::trajectories::Trajectory) {
        // Shapes and their outcomes are of finished courses: an open one's is unfinished.
        if !it.finished() {
            return;
        }
        let m = self.by_measure.entry(it.measure).or_insert_with(ShapeTally::new);
        if let Some(s) = t.shape {
            *m.shapes.entry(s.as_str()).or_default() += 1;
        }
        if let Some(c) = t.change_vs_typical {
            *m.vs_typical.entry(c).or_default() += 1;
        }
        match &t.dip {
            Some(d) => {
                *m.dips.entry(d.kind).or_default() += 1;
                if d.kind == "discomfort_zone" {
                    m.with_discomfort_zone.add(it);
                }
            }
            None => m.without_dip.add(it),
        }
    }
}

/// Shapes, dips and the not-on-track flag's accuracy by measure.
pub fn trajectory_summary(
    eps: &Episodes,
    tally: &TrajectoryTally,
    expected: &crate::analyses::trajectories::ExpectedResponse,
    options: &crate::analyses::trajectories::Options,
    registry: &Registry,
) -> TrajectorySummary {
    let mut by_measure = BTreeMap::new();
    let none = ShapeTally::new();
    for (i, rule) in eps.rules.iter().enumerate() {
        if rule.is_none() {
            continue;
        }
        let t = tally.by_measure.get(&(i as u16)).unwrap_or(&none);
        by_measure.insert(
            registry.get(i).code.clone(),
            TrajectoryMeasure {
                shapes: t.shapes.clone(),
                dips: t.dips.clone(),
                with_discomfort_zone: t.with_discomfort_zone.rates(),
                without_dip: t.without_dip.rates(),
                not_on_track: expected.accuracy.get(&(i as u16)).cloned().unwrap_or_default(),
                growth_model: expected.growth.get(&(i as u16)).cloned(),
                change_vs_typical: VsTypical {
                    growth_model: expected.hlm.get(&(i as u16)).cloned(),
                    index_given: expected.hlm.get(&(i as u16)).is_some_and(|h| h.gives_slope_rci()),
                    series: t.vs_typical.clone(),
                },
            },
        );
    }
    TrajectorySummary { options: options.clone(), by_measure }
}

#[derive(Debug, Clone, Serialize)]
pub struct GoalsSummary {
    pub options: crate::analyses::goals::Options,
    pub episodes_with_goals: u64,
    /// Of these, still in treatment on the extract date: in no goal figure.
    pub episodes_in_treatment: u64,
    pub gbo_goals: u64,
    pub gbo_objectives: u64,
    pub gas_goals: u64,
    pub rates: BTreeMap<&'static str, Rate>,
    pub gas_mean_t_end: Option<f64>,
    pub gas_mean_t_followup: Option<f64>,
    /// Episodes by agreement of goal progress with symptom change.
    pub agreement: BTreeMap<&'static str, u64>,
    /// Goals and objectives to check (counts of goals: suppressed as such).
    pub checks: GoalCheckCounts,
}

/// How many goals and objectives carry each `goal_check` flag of `goals.csv`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct GoalCheckCounts {
    /// Goals whose ratings name more than one parent goal.
    pub parents_differ: u64,
    /// GAS goals whose ratings give different weights.
    pub weights_differ: u64,
}

/// Goal figures for `summary.json`, counted client by client as the goal results are
/// made (sums and counts, so adding clients in any grouping gives the same summary as
/// long as they are added in the same order).
#[derive(Debug, Clone, Default)]
pub struct GoalsTally {
    episodes_with_goals: u64,
    episodes_in_treatment: u64,
    gbo_goals: u64,
    gbo_objectives: u64,
    gas_goals: u64,
    /// (numerator, denominator) of each rate, in [`GOAL_RATES`] order.
    rates: [(u64, u64); 5],
    /// (sum, count) of the GAS T-scores at the end and at follow-up.
    t_end: (f64, u64),
    t_followup: (f64, u64),
    agreement: [u64; 4],
    checks: GoalCheckCounts,
    /// Change of each GBO goal with a change, rounded to whole points: count (the chart).
    pub gbo_change: BTreeMap<i64, u64>,
}

const GOAL_RATES: [&str; 5] = [
    "gbo_reliable_improvement",
    "gbo_reliable_deterioration",
    "gbo_held_at_followup",
    "gas_expected_attainment_at_end",
    "gas_held_at_followup",
];
const AGREEMENT: [&str; 4] = ["both_improved", "goals_only", "symptoms_only", "neither"];

impl GoalsTally {
    pub fn add(&mut self, goals: &[crate::analyses::goals::GoalResult], eps: &[crate::analyses::goals::EpisodeGoals]) {
        use crate::domain::columns::{GoalScale, NO_KEY};
        let mut count = |k: usize, in_denominator: bool, hit: bool| {
            self.rates[k].1 += u64::from(in_denominator);
            self.rates[k].0 += u64::from(in_denominator && hit);
        };
        // Goal outcomes count in ended episodes only (the episodes are one client's: few).
        let ended = |g: &crate::analyses::goals::GoalResult| {
            eps.iter().find(|x| (x.client, x.episode) == (g.client, g.episode)).is_none_or(|x| x.ended)
        };
        for g in goals {
            self.checks.parents_differ += u64::from(g.parents_differ);
            self.checks.weights_differ += u64::from(g.weights_differ);
            match (g.scale, g.parent == NO_KEY) {
                (GoalScale::Gbo, true) if ended(g) => {
                    let rc = g.reliable_change;
                    count(0, rc.is_some(), rc == Some(ReliableCategory::Improved));
                    count(1, rc.is_some(), rc == Some(ReliableCategory::Deteriorated));
                    count(2, g.held_at_followup.is_some(), g.held_at_followup == Some(true));
                    self.gbo_goals += 1;
                    if let Some(c) = g.change {
                        *self.gbo_change.entry(c.round() as i64).or_default() += 1;
                    }
                }
                (GoalScale::Gbo, true) => self.gbo_goals += 1,
                (GoalScale::Gbo, false) => self.gbo_objectives += 1,
                (GoalScale::Gas, _) => self.gas_goals += 1,
            }
        }
        self.episodes_with_goals += eps.len() as u64;
        self.episodes_in_treatment += eps.iter().filter(|x| !x.ended).count() as u64;
        for x in eps.iter().filter(|x| x.ended) {
            count(3, x.gas_t_end.is_some(), x.gas_t_end.is_some_and(|t| t >= 50.0));
            count(4, x.gas_held.is_some(), x.gas_held == Some(true));
            if let Some(t) = x.gas_t_end {
                self.t_end = (self.t_end.0 + t, self.t_end.1 + 1);
            }
            if let Some(t) = x.gas_t_followup {
                self.t_followup = (self.t_followup.0 + t, self.t_followup.1 + 1);
            }
            if let Some(a) = x.agreement {
                let k = AGREEMENT.iter().position(|k| *k == a).expect("a known agreement");
                self.agreement[k] += 1;
            }
        }
    }

    pub fn summary(&self, options: &crate::analyses::goals::Options) -> GoalsSummary {
        let mean = |(sum, n): (f64, u64)| (n > 0).then(|| sum / n as f64);
        GoalsSummary {
            options: options.clone(),
            episodes_with_goals: self.episodes_with_goals,
            episodes_in_treatment: self.episodes_in_treatment,
            gbo_goals: self.gbo_goals,
            gbo_objectives: self.gbo_objectives,
            gas_goals: self.gas_goals,
            rates: GOAL_RATES.iter().zip(self.rates).map(|(k, (num, den))| (*k, Rate::new(num, den))).collect(),
            gas_mean_t_end: mean(self.t_end),
            gas_mean_t_followup: mean(self.t_followup),
            agreement: AGREEMENT.iter().copied().zip(self.agreement).collect(),
            checks: self.checks,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SustainedSummary {
    pub options: crate::analyses::followup::Options,
    pub by_measure: BTreeMap<String, SustainedMeasure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SustainedMeasure {
    /// Usable follow-up scores, and those dated before the end of treatment (not used).
    pub followup_scores: u64,
    pub followup_scores_before_end: u64,
    pub followup_scores_by_window: BTreeMap<String, u64>,
    /// Recovered at the end but never seen again.
    pub recovered_lost_to_followup: u64,
    /// Reliably improved at the end but never seen again.
    pub improved_lost_to_followup: u64,
    pub rates: BTreeMap<&'static str, Rate>,
    pub survival: Vec<SurvivalSummary>,
    pub log_rank: Vec<LogRankSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SurvivalSummary {
    pub stratification: &'static str,
    pub stratum: String,
    pub records: u64,
    pub events: u64,
    pub median_days: Option<f64>,
    pub median_lower: Option<f64>,
    pub median_upper: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogRankSummary {
    pub stratification: &'static str,
    pub strata: Vec<String>,
    pub chisq: f64,
    pub df: usize,
    pub p_value: f64,
}

/// Follow-up scores counted by measure as they are judged (series by series, see
/// [`crate::analyses::followup::follow_up`]): the usable ones by window (the last slot: outside
/// every window) and those dated before the end of treatment.
#[derive(Debug, Clone, Default)]
pub struct FollowUpTally {
    /// measure → (usable scores by window index, scores before the end).
    by_measure: BTreeMap<u16, (Vec<u64>, u64)>,
}

impl FollowUpTally {
    /// Counts one series' scores; `n_windows` is the number of follow-up windows.
    pub fn add(&mut self, eps: &Episodes, scores: &[crate::analyses::followup::FollowUpScore], n_windows: usize) {
        for s in scores {
            let (per_window, before_end) =
                self.by_measure.entry(eps.items[s.item].measure).or_insert_with(|| (vec![0; n_windows + 1], 0));
            if s.before_end {
                *before_end += 1;
            } else {
                per_window[s.window.unwrap_or(n_windows)] += 1;
            }
        }
    }
}

/// Durability rates and relapse survival by measure.
pub fn sustained_summary(
    eps: &Episodes,
    tally: &FollowUpTally,
    flags: &[crate::analyses::followup::Durability],
    curves: &[crate::analyses::followup::Curve],
    tests: &[crate::analyses::followup::Comparison],
    options: &crate::analyses::followup::Options,
    registry: &Registry,
) -> SustainedSummary {
    use crate::analyses::followup::Durability;
    let mut by_measure = BTreeMap::new();
    for (i, rule) in eps.rules.iter().enumerate() {
        if rule.is_none() {
            continue;
        }
        let pairs: Vec<(&crate::domain::episodes::EpisodeMeasure, &Durability)> =
            eps.items.iter().zip(flags).filter(|(it, _)| it.measure as usize == i).collect();
        let ds: Vec<&Durability> = pairs.iter().map(|p| p.1).collect();
        let flag_rate =
            |f: fn(&Durability) -> Option<bool>| Rate::count(&ds, |d| f(d).is_some(), |d| f(d) == Some(true));
        let mut rates = BTreeMap::new();
        rates.insert("relapse", flag_rate(|d| d.relapse));
        rates.insert("recovery_maintained", flag_rate(|d| d.recovery_maintained));
        rates.insert("improvement_lost", flag_rate(|d| d.improvement_lost));
        rates.insert("late_improvement", flag_rate(|d| d.late_improvement));
        rates.insert("deteriorated_since_end", flag_rate(|d| d.deteriorated_since_end));
        rates.insert("last_scores_held", flag_rate(|d| d.last_scores_held));
        let none = (vec![0; options.months.len() + 1], 0);
        let (per_window, before_end) = tally.by_measure.get(&(i as u16)).unwrap_or(&none);
        let mut by_window: BTreeMap<String, u64> = BTreeMap::new();
        for (w, &n) in per_window.iter().enumerate().filter(|(_, n)| **n > 0) {
            let label = options.months.get(w).map_or("outside windows".to_string(), |m| format!("{m}m"));
            *by_window.entry(label).or_default() += n;
        }
        // Of finished courses only: an open one has not been discharged to be followed up.
        let lost = |pred: fn(&crate::domain::episodes::EpisodeMeasure) -> bool| {
            pairs.iter().filter(|(it, d)| it.finished() && pred(it) && d.n_followup == 0).count() as u64
        };
        let code = registry.get(i).code.clone();
        by_measure.insert(
            code,
            SustainedMeasure {
                followup_scores: per_window.iter().sum(),
                followup_scores_before_end: *before_end,
                followup_scores_by_window: by_window,
                recovered_lost_to_followup: lost(|it| it.classification.outcome == Some(Outcome::Recovered)),
                improved_lost_to_followup: lost(|it| {
                    it.classification.reliable_change == Some(ReliableCategory::Improved)
                }),
                rates,
                survival: curves
                    .iter()
                    .filter(|c| c.measure as usize == i)
                    .map(|c| SurvivalSummary {
                        stratification: c.stratification,
                        stratum: c.stratum.clone(),
                        records: c.fit.records,
                        events: c.fit.events,
                        median_days: c.fit.median,
                        median_lower: c.fit.median_lower,
                        median_upper: c.fit.median_upper,
                    })
                    .collect(),
                log_rank: tests
                    .iter()
                    .filter(|t| t.measure as usize == i)
                    .map(|t| LogRankSummary {
                        stratification: t.stratification,
                        strata: t.strata.clone(),
                        chisq: t.test.chisq,
                        df: t.test.df,
                        p_value: t.test.p_value,
                    })
                    .collect(),
            },
        );
    }
    SustainedSummary { options: options.clone(), by_measure }
}

#[derive(Debug, Clone, Serialize)]
pub struct SuddenGainsSummary {
    pub options: crate::analyses::sudden_gains::Options,
    pub by_measure: BTreeMap<String, crate::analyses::sudden_gains::MeasureTally>,
}

/// The sudden-gains counts by measure code.
pub fn sudden_gains_summary(
    sg: &crate::analyses::sudden_gains::SuddenGains,
    options: &crate::analyses::sudden_gains::Options,
    registry: &Registry,
) -> SuddenGainsSummary {
    SuddenGainsSummary {
        options: options.clone(),
        by_measure: sg.by_measure.iter().map(|(m, t)| (registry.get(*m as usize).code.clone(), t.clone())).collect(),
    }
}

/// How many rows were rejected for each reason (`summary.json` and `data_quality.json`).
pub fn rejections_by_reason(rejections: &[Rejection]) -> BTreeMap<&'static str, u64> {
    let mut by_reason = BTreeMap::new();
    for r in rejections {
        *by_reason.entry(r.code).or_insert(0) += 1;
    }
    by_reason
}

/// Builds the per-measure and combined figures.
pub fn summarise(
    episodes: &Episodes,
    registry: &Registry,
    inputs: BTreeMap<&'static str, TableCounts>,
    rejections: &[Rejection],
    n_clients: u64,
) -> Summary {
    let mut measures = BTreeMap::new();
    for (i, rule) in episodes.rules.iter().enumerate() {
        let Some(rule) = rule else { continue };
        measures.insert(registry.get(i).code.clone(), measure_summary(episodes, registry, i, rule));
    }
    let talking_therapies = talking_therapies_summary(episodes, registry);
    let standards = standard_results(registry, &measures, talking_therapies.as_ref());

    Summary {
        sustain_version: env!("CARGO_PKG_VERSION"),
        published: false,
        rows_read: inputs.values().map(|t| t.rows_read).sum(),
        rows_used: inputs.values().map(|t| t.rows_used).sum(),
        rows_rejected: inputs.values().map(|t| t.rows_rejected).sum(),
        inputs,
        rejections_by_reason: rejections_by_reason(rejections),
        clients: n_clients,
        episodes: episodes.n_episodes as u64,
        episode_measures: episodes.items.len() as u64,
        status: status_summary(episodes),
        measures,
        talking_therapies,
        standards,
        comparison: None,
        sudden_gains: None,
        sustained: None,
        goals: None,
        trajectories: None,
        caseload: None,
        current: None,
    }
}

/// One measure's counts and rates; outcome figures over its ended episodes only.
fn measure_summary(episodes: &Episodes, registry: &Registry, i: usize, rule: &ResolvedRule) -> MeasureSummary {
    let all: Vec<_> = episodes.items.iter().filter(|it| it.measure as usize == i).collect();
    // Outcome figures are over ended episodes only.
    let items: Vec<_> = all.iter().copied().filter(|it| it.ended()).collect();
    let paired = |it: &crate::domain::episodes::EpisodeMeasure| it.paired();
    let case =
        |it: &crate::domain::episodes::EpisodeMeasure| it.paired() && it.classification.caseness_start == Some(true);
    let rc = |it: &crate::domain::episodes::EpisodeMeasure, c| it.classification.reliable_change == Some(c);
    let mut rates = BTreeMap::new();
    if rule.cutoff.is_some() {
        rates.insert("recovery", Rate::count(&items, case, |it| it.classification.recovery == Some(true)));
        rates.insert(
            "reliable_recovery",
            Rate::count(&items, case, |it| it.classification.outcome == Some(Outcome::Recovered)),
        );
    }
    if rule.rc_threshold.is_some() || rule.s_diff.is_some() {
        rates.insert("reliable_improvement", Rate::count(&items, paired, |it| rc(it, ReliableCategory::Improved)));
        rates
            .insert("reliable_deterioration", Rate::count(&items, paired, |it| rc(it, ReliableCategory::Deteriorated)));
    }
    if items.iter().any(|it| it.classification.response.is_some()) {
        rates.insert(
            "response",
            Rate::count(
                &items,
                |it| it.classification.response.is_some(),
                |it| it.classification.response == Some(true),
            ),
        );
    }
    if rule.remission_below.is_some() {
        rates.insert("remission", Rate::count(&items, case, |it| it.classification.remission == Some(true)));
    }
    let mut outcomes: BTreeMap<&'static str, u64> = Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect();
    for it in &items {
        if let Some(o) = it.classification.outcome {
            *outcomes.entry(o.as_str()).or_default() += 1;
        }
    }
    let n_paired = items.iter().filter(|it| it.paired()).count() as u64;
    let m = registry.get(i);
    MeasureSummary {
        name: m.name.clone(),
        snomed: m.snomed.clone(),
        loinc: m.loinc.clone(),
        episodes: all.len() as u64,
        in_treatment: (all.len() - items.len()) as u64,
        ended: items.len() as u64,
        paired: n_paired,
        unpaired: items.len() as u64 - n_paired,
        at_caseness: items.iter().filter(|it| case(it)).count() as u64,
        outcomes,
        rates,
        rule: rule.clone(),
        series_checks: SeriesCheckCounts {
            assessment_not_baseline: all.iter().filter(|it| it.checks.assessment_not_baseline()).count() as u64,
            dates_out_of_session_order: all.iter().filter(|it| it.checks.dates_out_of_session_order()).count() as u64,
        },
    }
}

/// The NHS Talking Therapies combined PHQ-9 + GAD-7 figures over ended episodes, if any.
fn talking_therapies_summary(episodes: &Episodes, registry: &Registry) -> Option<TalkingTherapiesSummary> {
    let phq = |it: &&crate::domain::episodes::EpisodeMeasure| Some(it.measure as usize) == registry.find("PHQ9");
    let tt: Vec<_> =
        episodes.items.iter().filter(phq).filter(|it| it.ended()).filter_map(|it| it.talking_therapies).collect();
    let tt_open =
        episodes.items.iter().filter(phq).filter(|it| !it.ended() && it.talking_therapies.is_some()).count() as u64;
    (!tt.is_empty()).then(|| {
        let all: Vec<_> = tt.iter().collect();
        let mut rates = BTreeMap::new();
        rates.insert("recovery", Rate::count(&all, |t| t.caseness, |t| t.recovery));
        rates.insert("reliable_recovery", Rate::count(&all, |t| t.caseness, |t| t.reliable_recovery));
        rates.insert("reliable_improvement", Rate::count(&all, |_| true, |t| t.reliable_improvement));
        rates.insert("reliable_deterioration", Rate::count(&all, |_| true, |t| t.reliable_deterioration));
        let builtin = Registry::builtin();
        let changed = |code: &str| {
            let (Some(now), Some(nhs)) = (registry.find(code), builtin.find(code)) else { return false };
            let (now, nhs) = (registry.get(now), builtin.get(nhs));
            now.cutoff != nhs.cutoff || now.reliable_change != nhs.reliable_change
        };
        TalkingTherapiesSummary {
            paired: tt.len() as u64,
            in_treatment: tt_open,
            at_caseness: tt.iter().filter(|t| t.caseness).count() as u64,
            rates,
            rules_from_measure_file: ["PHQ9", "GAD7"].into_iter().filter(|c| changed(c)).map(String::from).collect(),
        }
    })
}

mod comparison;
mod disclosure;
pub use comparison::*;
pub use disclosure::suppress_json;

#[cfg(test)]
mod tests;
