//! Caseload and supervision: per-therapist and per-site outcomes compared fairly.
//! Every unit's rate comes with its Wilson interval, funnel-plot limits around the
//! practice rate (Spiegelhalter 2005), a case-mix-adjusted rate (observed over expected
//! from a logistic model of the practice's own episodes) and an empirical-Bayes shrunken
//! estimate. Units are flagged when outside the limits; they are never ranked. Small
//! counts are suppressed as NHS publications do. Formulas: docs/METHODS.md §7f.

use crate::stats::rates::{
    dispersion_of_rates, exact_binomial_limits, funnel_limits, logistic, p_chart_limits, prepost_g, shrink, Dispersion,
    Overdispersion, Suppression, Z95, Z998,
};
use serde::Serialize;

/// A rate with its parts, for one unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Count {
    pub k: u64,
    pub n: u64,
}

impl Count {
    fn add(&mut self, hit: bool) {
        self.n += 1;
        self.k += u64::from(hit);
    }

    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.k as f64 / self.n as f64)
    }
}

/// One therapist or site on one measure.
#[derive(Debug, Clone, Serialize)]
pub struct Unit {
    pub kind: &'static str,
    pub unit: String,
    pub measure: u16,
    /// Ended episodes: every count and rate below is of these.
    pub episodes: u64,
    /// Episodes open on the extract date (in treatment), in no figure.
    pub in_treatment: u64,
    pub paired: u64,
    pub at_caseness: u64,
    pub recovery: Count,
    pub reliable_recovery: Count,
    pub reliable_improvement: Count,
    pub reliable_deterioration: Count,
    pub response: Count,
    pub dropout: Count,
    pub recovery_maintained: Count,
    pub median_sessions: Option<f64>,
    /// Hedges' g on the practice's baseline SD, with its 95 % interval.
    pub effect_size: Option<(f64, f64, f64)>,
    /// ACORN's severity-adjusted effect size over the unit's episodes at caseness.
    pub severity_adjusted_effect_size: Option<f64>,
    /// Expected recoveries from the practice's case-mix model, and the adjusted rate.
    pub expected_recovery: Option<f64>,
    pub adjusted_recovery: Option<f64>,
    pub shrunken_recovery: Option<f64>,
    /// Funnel limits for reliable recovery at this unit's denominator: 95 % and 99.8 %.
    pub funnel95: Option<(f64, f64)>,
    pub funnel998: Option<(f64, f64)>,
    pub funnel_flag: Option<&'static str>,
    /// The unit's effect on improvement under the case-mix-adjusted mixed model
    /// ([`crate::analyses::unit_effects`]): points above (+) or below (−) what its clients'
    /// baselines predict, shrunk toward 0.
    pub improvement_effect: Option<f64>,
}

/// The therapist (or site) effects model of one measure.
#[derive(Debug, Clone, Serialize)]
pub struct EffectsModel {
    pub measure: u16,
    pub kind: &'static str,
    pub model: crate::analyses::unit_effects::UnitEffects,
}

/// One month (or quarter) of episodes ending.
#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub measure: u16,
    pub period: String,
    pub recovery: Count,
    pub reliable_improvement: Count,
    pub limits: Option<(f64, f64)>,
    pub outside: Option<&'static str>,
    /// Episodes open at any time in the period (first score on or before its end, last
    /// on or after its start).
    pub caseload: u64,
}

/// The practice-level reference for a measure's funnel plot.
#[derive(Debug, Clone, Serialize)]
pub struct FunnelReference {
    pub measure: u16,
    pub kind: &'static str,
    pub rate: f64,
    pub dispersion: Dispersion,
}

/// Caseload settings.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub suppression: Suppression,
    /// How funnel limits allow for overdispersion; `None`: additive when at least
    /// [`MIN_UNITS_FOR_OVERDISPERSION`] units have paired episodes, none for fewer.
    pub overdispersion: Option<Overdispersion>,
    pub period: TrendPeriod,
}

/// The periods trends are counted by: the month or the quarter of the final score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendPeriod {
    Month,
    Quarter,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// One unit's episodes on one measure, added up in episode order: the unit's counts, and
/// what its median, effect size and expected recoveries are made from.
#[derive(Debug, Clone)]
struct Tally {
    unit: Unit,
    /// Treatment sessions of each episode (scores after the baseline).
    sessions: Vec<f64>,
    /// (baseline, final) of the paired episodes, and of those at caseness at baseline.
    pairs: Vec<(f64, f64)>,
    clinical: Vec<(f64, f64)>,
    /// Recoveries expected from the case-mix model.
    expected: f64,
}

impl Tally {
    fn new(kind: &'static str, name: &str, measure: u16) -> Tally {
        let unit = Unit {
            kind,
            unit: name.to_string(),
            measure,
            episodes: 0,
            in_treatment: 0,
            paired: 0,
            at_caseness: 0,
            recovery: Count::default(),
            reliable_recovery: Count::default(),
            reliable_improvement: Count::default(),
            reliable_deterioration: Count::default(),
            response: Count::default(),
            dropout: Count::default(),
            recovery_maintained: Count::default(),
            median_sessions: None,
            effect_size: None,
            severity_adjusted_effect_size: None,
            expected_recovery: None,
            adjusted_recovery: None,
            shrunken_recovery: None,
            funnel95: None,
            funnel998: None,
            funnel_flag: None,
            improvement_effect: None,
        };
        Tally { unit, sessions: Vec::new(), pairs: Vec::new(), clinical: Vec::new(), expected: 0.0 }
    }

    fn add(
        &mut self,
        it: &crate::domain::episodes::EpisodeMeasure,
        flags: &crate::analyses::followup::Durability,
        model: Option<(f64, f64)>,
    ) {
        use crate::domain::outcomes::{Outcome, ReliableCategory};
        let (u, c) = (&mut self.unit, &it.classification);
        if !it.ended() {
            u.in_treatment += 1;
            return;
        }
        u.episodes += 1;
        // Dropout: an ended episode that did not finish a course of treatment (fewer than
        // two scores before follow-up: NHS Talking Therapies' "ended, not finished").
        u.dropout.add(it.n_scores < 2);
        self.sessions.push(f64::from(it.n_scores.saturating_sub(1)));
        if !it.paired() {
            return;
        }
        u.paired += 1;
        self.pairs.push((it.baseline, it.final_score.expect("paired")));
        u.reliable_improvement.add(c.reliable_change == Some(ReliableCategory::Improved));
        u.reliable_deterioration.add(c.reliable_change == Some(ReliableCategory::Deteriorated));
        if let Some(r) = c.response {
            u.response.add(r);
        }
        if c.caseness_start == Some(true) {
            self.clinical.push((it.baseline, it.final_score.expect("paired")));
            u.at_caseness += 1;
            u.recovery.add(c.recovery == Some(true));
            u.reliable_recovery.add(c.outcome == Some(Outcome::Recovered));
            if let Some((a, b)) = model {
                self.expected += 1.0 / (1.0 + (-(a + b * it.baseline)).exp());
            }
        }
        if let Some(x) = flags.recovery_maintained {
            u.recovery_maintained.add(x);
        }
    }

    fn into_unit(self, lower: bool, modelled: bool, scale: &EffectScale) -> Unit {
        let mut u = self.unit;
        u.median_sessions = median(self.sessions);
        u.effect_size = scale.sd.and_then(|sd| prepost_g(&self.pairs, sd, scale.df, lower));
        u.severity_adjusted_effect_size = scale.severity_adjusted(&self.clinical, lower);
        u.expected_recovery = (modelled && u.reliable_recovery.n > 0).then_some(self.expected);
        u
    }
}

/// The practice's scale for its units' effect sizes on one measure: the SD of the
/// baselines of its finished paired episodes (Hedges' g of every unit on one scale), and
/// for ACORN's severity-adjusted effect size the regression of change on intake among
/// those at caseness.
#[derive(Debug, Clone, Copy)]
struct EffectScale {
    /// The SD of the baselines of the finished paired episodes, and its degrees of freedom.
    sd: Option<f64>,
    df: f64,
    /// The SD of the baselines of those at caseness, for the severity-adjusted effect size.
    clinical_sd: Option<f64>,
    /// Mean change among episodes at caseness, and the change expected at an intake x:
    /// intercept + slope · x (least squares).
    mean_change: f64,
    intercept: f64,
    slope: f64,
}

impl EffectScale {
    fn of(pairs: &[(f64, f64)], clinical: &[(f64, f64)], lower: bool) -> EffectScale {
        let baseline_sd = |pairs: &[(f64, f64)]| {
            let baselines: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            crate::stats::descriptive::mean_sd(&baselines).1.filter(|sd| *sd > 0.0)
        };
        let (sd, clinical_sd) = (baseline_sd(pairs), baseline_sd(clinical));
        let change = |&(b, f): &(f64, f64)| if lower { b - f } else { f - b };
        let n = clinical.len() as f64;
        let (mx, mc) = (clinical.iter().map(|p| p.0).sum::<f64>() / n, clinical.iter().map(change).sum::<f64>() / n);
        let sxx: f64 = clinical.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxc: f64 = clinical.iter().map(|p| (p.0 - mx) * (change(p) - mc)).sum();
        let slope = if sxx > 0.0 { sxc / sxx } else { 0.0 };
        let df = pairs.len().saturating_sub(1) as f64;
        EffectScale { sd, df, clinical_sd, mean_change: mc, intercept: mc - slope * mx, slope }
    }

    /// ACORN's severity-adjusted effect size of a unit's episodes at caseness: the mean of
    /// (the practice's mean change + the episode's residualised change) over the SD of the
    /// intake scores of the practice's episodes at caseness (the reference sample).
    fn severity_adjusted(&self, clinical: &[(f64, f64)], lower: bool) -> Option<f64> {
        let sd = self.clinical_sd?;
        if clinical.is_empty() {
            return None;
        }
        let change = |&(b, f): &(f64, f64)| if lower { b - f } else { f - b };
        let residual = |p: &(f64, f64)| change(p) - (self.intercept + self.slope * p.0);
        let mean_residual = clinical.iter().map(residual).sum::<f64>() / clinical.len() as f64;
        Some((self.mean_change + mean_residual) / sd)
    }
}

/// Per-therapist and per-site units, funnel references and trends.
pub fn analyse(
    keys: &crate::domain::columns::Keys,
    eps: &crate::domain::episodes::Episodes,
    flags: &[crate::analyses::followup::Durability],
    opts: &Options,
) -> (Vec<Unit>, Vec<FunnelReference>, Vec<Period>, Vec<EffectsModel>) {
    use crate::domain::outcomes::Outcome;
    let mut units = Vec::new();
    let mut refs = Vec::new();
    let mut effects = Vec::new();
    let measures: Vec<u16> = {
        let mut v: Vec<u16> = eps.items.iter().map(|it| it.measure).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for &measure in &measures {
        let items: Vec<usize> = (0..eps.items.len()).filter(|&i| eps.items[i].measure == measure).collect();
        let rule = eps.rules[measure as usize].as_ref().expect("rule");
        let lower = rule.direction == crate::domain::registry::Direction::Lower;
        // Case-mix model: reliable recovery on intake score, among paired cases.
        let cases: Vec<(f64, bool)> = items
            .iter()
            .map(|&i| &eps.items[i])
            .filter(|it| it.finished() && it.classification.caseness_start == Some(true))
            .map(|it| (it.baseline, it.classification.outcome == Some(Outcome::Recovered)))
            .collect();
        let model = logistic(&cases);
        let scale = {
            let paired: Vec<&crate::domain::episodes::EpisodeMeasure> =
                items.iter().map(|&i| &eps.items[i]).filter(|it| it.finished()).collect();
            let pair = |it: &&crate::domain::episodes::EpisodeMeasure| (it.baseline, it.final_score.expect("finished"));
            let all: Vec<(f64, f64)> = paired.iter().map(pair).collect();
            let clinical: Vec<(f64, f64)> =
                paired.iter().filter(|it| it.classification.caseness_start == Some(true)).map(pair).collect();
            EffectScale::of(&all, &clinical, lower)
        };
        for kind in ["therapist", "site"] {
            let groups = unit_tallies(kind, keys, eps, flags, &items, model);
            if groups.is_empty() {
                continue;
            }
            let first = units.len();
            if let Some(fitted) = add_units_with_effects(groups, (lower, &scale), model.is_some(), &mut units) {
                effects.push(EffectsModel { measure, kind, model: fitted });
            }
            // Funnel, adjustment and shrinkage over this kind's units.
            if let Some(reference) = place_in_funnel(&mut units[first..], measure, kind, opts.overdispersion) {
                refs.push(reference);
            }
        }
    }
    let periods = trends(eps, &measures, opts);
    (units, refs, periods, effects)
}

/// The tallies of one kind of unit over a measure's episodes (`items`), ordered by name.
fn unit_tallies(
    kind: &'static str,
    keys: &crate::domain::columns::Keys,
    eps: &crate::domain::episodes::Episodes,
    flags: &[crate::analyses::followup::Durability],
    items: &[usize],
    model: Option<(f64, f64)>,
) -> Vec<Tally> {
    use crate::domain::columns::NO_KEY;
    // One pass over the episodes in order, each added to its unit's tally (units are
    // few: their tallies stay in cache, where reading each unit's episodes apart
    // jumped across the whole table), then the units ordered by name.
    let interner = if kind == "therapist" { &keys.therapists } else { &keys.sites };
    let mut tallies: Vec<Option<Tally>> = vec![None; interner.len()];
    for &i in items {
        let it = &eps.items[i];
        let id = if kind == "therapist" { it.therapist } else { it.site };
        if id != NO_KEY {
            let name = || interner.name(id);
            tallies[id as usize].get_or_insert_with(|| Tally::new(kind, name(), it.measure)).add(it, &flags[i], model);
        }
    }
    let mut groups: Vec<Tally> = tallies.into_iter().flatten().collect();
    groups.sort_unstable_by(|a, b| a.unit.unit.cmp(&b.unit.unit));
    groups
}

/// Appends one kind's tallies to `units` with their improvement effects; returns the model fitted.
fn add_units_with_effects(
    groups: Vec<Tally>,
    (lower, scale): (bool, &EffectScale),
    modelled: bool,
    units: &mut Vec<Unit>,
) -> Option<crate::analyses::unit_effects::UnitEffects> {
    use crate::analyses::unit_effects::UnitSums;
    // Therapist (site) effects on improvement, the baselines centred on their mean.
    let (sum, count) = groups.iter().flat_map(|t| &t.pairs).fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + 1.0));
    let centre = if count > 0.0 { sum / count } else { 0.0 };
    let sums: Vec<UnitSums> = groups
        .iter()
        .map(|t| UnitSums::of(t.pairs.iter().map(|&(b, f)| (b - centre, if lower { b - f } else { f - b }))))
        .collect();
    let with_pairs: Vec<UnitSums> =
        groups.iter().zip(&sums).filter(|(t, _)| !t.pairs.is_empty()).map(|(_, s)| *s).collect();
    let fitted = crate::analyses::unit_effects::fit(&with_pairs);
    units.extend(groups.into_iter().zip(&sums).map(|(t, s)| {
        let paired = !t.pairs.is_empty();
        let mut u = t.into_unit(lower, modelled, scale);
        u.improvement_effect = fitted.as_ref().filter(|_| paired).map(|e| e.effect(s));
        u
    }));
    fitted
}

/// Funnel limits and flags, adjusted and shrunken rates of one kind's units; `None` without cases.
fn place_in_funnel(
    group: &mut [Unit],
    measure: u16,
    kind: &'static str,
    overdispersion: Option<Overdispersion>,
) -> Option<FunnelReference> {
    let counts: Vec<(u64, u64)> = group.iter().map(|u| (u.reliable_recovery.k, u.reliable_recovery.n)).collect();
    let (k, n) = counts.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
    if n == 0 {
        return None;
    }
    let p0 = k as f64 / n as f64;
    for (u, s) in group.iter_mut().zip(shrink(&counts)) {
        u.shrunken_recovery = s;
        if let Some(e) = u.expected_recovery.filter(|e| *e > 0.0) {
            u.adjusted_recovery = Some((u.reliable_recovery.k as f64 / e * p0).min(1.0));
        }
    }
    // Each unit is judged on its case-mix-adjusted rate where the model gives one.
    let judged: Vec<(f64, u64)> =
        group.iter().filter(|u| u.reliable_recovery.n > 0).map(|u| (funnel_rate(u), u.reliable_recovery.n)).collect();
    let method = overdispersion.unwrap_or(if judged.len() >= MIN_UNITS_FOR_OVERDISPERSION {
        Overdispersion::Additive
    } else {
        Overdispersion::None
    });
    let d = dispersion_of_rates(&judged, p0, method);
    let reference = FunnelReference { measure, kind, rate: p0, dispersion: d };
    for u in group.iter_mut().filter(|u| u.reliable_recovery.n > 0) {
        let n = u.reliable_recovery.n;
        let (l95, h95) = reference.limits(n, Z95);
        let (l998, h998) = reference.limits(n, Z998);
        u.funnel95 = Some((l95, h95));
        u.funnel998 = Some((l998, h998));
        u.funnel_flag = Some(funnel_flag(funnel_rate(u), (l95, h95), (l998, h998)));
    }
    Some(reference)
}

/// Whether the limits are widened: only where the units vary more than chance (φ > 1);
/// DerSimonian–Laird's τ² is positive from φ > (k − 1)/k, less than chance allows.
pub fn overdispersion_applied(d: &crate::stats::rates::Dispersion) -> bool {
    match d.method {
        Overdispersion::None => false,
        Overdispersion::Additive => d.phi > 1.0 && d.tau2 > 0.0,
        Overdispersion::Multiplicative => d.phi > 1.0,
    }
}

/// Units with paired episodes from which overdispersion is estimated and applied by default
/// (FunnelPlotR's guidance: an estimate from fewer units is too unstable to widen limits by).
pub const MIN_UNITS_FOR_OVERDISPERSION: usize = 15;

/// The rate a unit is placed in the funnel by: case-mix adjusted where the practice's
/// model gives an expected number, else as observed.
pub fn funnel_rate(u: &Unit) -> f64 {
    let c = u.reliable_recovery;
    u.adjusted_recovery.unwrap_or(c.k as f64 / c.n.max(1) as f64)
}

impl FunnelReference {
    /// The funnel limits at `n` episodes: exact binomial around the practice rate, or,
    /// where overdispersion is applied and found, normal limits widened by it.
    pub fn limits(&self, n: u64, z: f64) -> (f64, f64) {
        let d = &self.dispersion;
        let widened = overdispersion_applied(d);
        if widened {
            funnel_limits(self.rate, n, z, d)
        } else {
            exact_binomial_limits(self.rate, n, z)
        }
    }
}

/// Where a unit's rate lies against its 95 % and 99.8 % funnel limits (lower, upper).
fn funnel_flag(rate: f64, (l95, h95): (f64, f64), (l998, h998): (f64, f64)) -> &'static str {
    if rate > h998 {
        "above_99.8"
    } else if rate > h95 {
        "above_95"
    } else if rate < l998 {
        "below_99.8"
    } else if rate < l95 {
        "below_95"
    } else {
        "within"
    }
}

/// The month (or quarter) of a day as a number that sorts like its label: months or
/// quarters since year 0. Labels are made once per period, not once per episode.
fn period_of(day: crate::domain::dates::Day, by: TrendPeriod) -> i32 {
    let (y, mo, _) = crate::domain::dates::civil_from_days(day);
    if by == TrendPeriod::Quarter {
        y * 4 + (mo - 1) / 3
    } else {
        y * 12 + (mo - 1)
    }
}

fn period_label(period: i32, by: TrendPeriod) -> String {
    if by == TrendPeriod::Quarter {
        format!("{}-Q{}", period.div_euclid(4), period.rem_euclid(4) + 1)
    } else {
        format!("{}-{:02}", period.div_euclid(12), period.rem_euclid(12) + 1)
    }
}

/// For spans of periods (first, last; inclusive), the number of spans covering a period.
fn open_per_period(spans: &[(i32, i32)]) -> impl Fn(i32) -> u64 {
    let first = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let last = spans.iter().map(|s| s.1.max(s.0)).max().unwrap_or(0);
    // Changes in the count at each period from `first` on, then their running sum.
    let mut counts = vec![0i64; (last - first) as usize + 2];
    for &(a, b) in spans.iter().filter(|s| s.1 >= s.0) {
        counts[(a - first) as usize] += 1;
        counts[(b - first) as usize + 1] -= 1;
    }
    let mut running = 0;
    for c in counts.iter_mut() {
        running += *c;
        *c = running;
    }
    move |p: i32| if p < first || p > last { 0 } else { counts[(p - first) as usize] as u64 }
}

/// Cohorts by the period of the final score, with p-chart limits around the measure's
/// overall rate.
fn trends(eps: &crate::domain::episodes::Episodes, measures: &[u16], opts: &Options) -> Vec<Period> {
    use crate::domain::outcomes::{Outcome, ReliableCategory};
    use std::collections::BTreeMap;
    let mut out = Vec::new();
    for &measure in measures {
        let items: Vec<&crate::domain::episodes::EpisodeMeasure> =
            eps.items.iter().filter(|it| it.measure == measure).collect();
        let mut by: BTreeMap<i32, (Count, Count)> = BTreeMap::new();
        for it in items.iter().filter(|it| it.finished()) {
            let e = by.entry(period_of(it.last_date, opts.period)).or_default();
            if it.classification.caseness_start == Some(true) {
                e.0.add(it.classification.outcome == Some(Outcome::Recovered));
            }
            e.1.add(it.classification.reliable_change == Some(ReliableCategory::Improved));
        }
        let (k, n) = by.values().fold((0, 0), |a, c| (a.0 + c.0.k, a.1 + c.0.n));
        let p0 = (n > 0).then(|| k as f64 / n as f64);
        // Caseload: episodes open at some time in each period, every period from the
        // first date's to the last date's (periods are consecutive numbers, so an episode
        // open across a period counts there). Counted as a running sum of the episodes
        // starting less those ended, not an entry per episode and period.
        let spans: Vec<(i32, i32)> = items
            .iter()
            .map(|it| {
                // An open episode is open to the extract date.
                let end = if !it.ended() {
                    it.last_date.max(eps.extract.as_of)
                } else if it.paired() {
                    it.last_date
                } else {
                    it.first_date
                };
                (period_of(it.first_date, opts.period), period_of(end, opts.period))
            })
            .collect();
        let open = open_per_period(&spans);
        for (period, (rec, imp)) in by {
            let limits = p0.filter(|_| rec.n > 0).map(|p| p_chart_limits(p, rec.n));
            let outside = limits.zip(rec.rate()).and_then(|((lo, hi), r)| {
                if r > hi {
                    Some("above")
                } else if r < lo {
                    Some("below")
                } else {
                    None
                }
            });
            out.push(Period {
                measure,
                caseload: open(period),
                period: period_label(period, opts.period),
                recovery: rec,
                reliable_improvement: imp,
                limits,
                outside,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_adjusted_effect_size_by_hand() {
        // The practice at caseness: intake 10 → change 2, intake 20 → change 6: slope 0.4,
        // intercept −2, mean change 4; the SD of their intakes 10 and 20 = √50.
        let practice = [(10.0, 8.0), (20.0, 14.0)];
        let scale = EffectScale::of(&practice, &practice, true);
        assert!((scale.slope - 0.4).abs() < 1e-12 && (scale.intercept + 2.0).abs() < 1e-12);
        // A unit's episode at intake 20 that improved by 8: predicted 6, residual 2, so
        // SAES = (4 + 2) / √50.
        let saes = scale.severity_adjusted(&[(20.0, 12.0)], true).unwrap();
        assert!((saes - 6.0 / 50f64.sqrt()).abs() < 1e-12);
        // Higher-is-better scales: the same episode mirrored gives the same.
        let up = EffectScale::of(&[(10.0, 12.0), (20.0, 26.0)], &[(10.0, 12.0), (20.0, 26.0)], false);
        assert!((up.severity_adjusted(&[(20.0, 28.0)], false).unwrap() - saes).abs() < 1e-12);
        assert_eq!(scale.severity_adjusted(&[], true), None);
    }

    #[test]
    fn episodes_open_per_period_by_hand() {
        // Months 5..=7, 6..=6, 9..=9 (a one-month episode) and one given backwards (none).
        let open = open_per_period(&[(5, 7), (6, 6), (9, 9), (8, 7)]);
        let counts: Vec<u64> = (3..=11).map(&open).collect();
        assert_eq!(counts, vec![0, 0, 1, 2, 1, 0, 1, 0, 0]);
        assert_eq!(open_per_period(&[])(0), 0);
    }
}
