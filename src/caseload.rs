//! Caseload and supervision: per-therapist and per-site outcomes compared fairly.
//! Every unit's rate comes with its Wilson interval, funnel-plot limits around the
//! practice rate (Spiegelhalter 2005), a case-mix-adjusted rate (observed over expected
//! from a logistic model of the practice's own episodes) and an empirical-Bayes shrunken
//! estimate. Units are flagged when outside the limits; they are never ranked. Small
//! counts are suppressed as NHS publications do. Formulas: docs/METHODS.md §7f.

use serde::Serialize;

/// z for two-sided 95 % and 99.8 % limits.
pub const Z95: f64 = 1.959_963_984_540_054;
pub const Z998: f64 = 3.090_232_306_167_813;

/// The Wilson score interval for `k` of `n` at normal quantile `z`.
pub fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// How funnel limits allow for between-unit variation beyond chance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Overdispersion {
    /// Binomial limits only.
    None,
    /// Spiegelhalter's additive random-effects τ² (DerSimonian–Laird) from 10 %-winsorised z-scores.
    Additive,
    /// Spiegelhalter's multiplicative φ from 10 %-winsorised z-scores.
    Multiplicative,
}

/// What overdispersion was estimated from the units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Dispersion {
    /// φ = mean of the squared winsorised z-scores.
    pub phi: f64,
    /// τ² of the additive model (0 when φ ≤ (k − 1)/k).
    pub tau2: f64,
    pub method: Overdispersion,
}

/// Estimates φ and τ² from units' (events, denominators) around the pooled rate.
pub fn dispersion(units: &[(u64, u64)], p0: f64, method: Overdispersion) -> Dispersion {
    let used: Vec<(f64, f64)> = units
        .iter()
        .filter(|u| u.1 > 0)
        .map(|&(k, n)| (k as f64 / n as f64, (p0 * (1.0 - p0) / n as f64).sqrt()))
        .collect();
    let k = used.len();
    if k < 2 || p0 <= 0.0 || p0 >= 1.0 {
        return Dispersion { phi: 1.0, tau2: 0.0, method };
    }
    let mut z: Vec<f64> = used.iter().map(|(y, s)| (y - p0) / s).collect();
    // Winsorise at the 10th and 90th percentiles (as FunnelPlotR does).
    let mut sorted = z.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (crate::trajectories::quantile(&sorted, 0.1), crate::trajectories::quantile(&sorted, 0.9));
    for v in &mut z {
        *v = v.clamp(lo, hi);
    }
    let phi = z.iter().map(|v| v * v).sum::<f64>() / k as f64;
    let w: Vec<f64> = used.iter().map(|(_, s)| 1.0 / (s * s)).collect();
    let (sw, sw2) = (w.iter().sum::<f64>(), w.iter().map(|x| x * x).sum::<f64>());
    let tau2 = if k as f64 * phi > (k - 1) as f64 { (k as f64 * phi - (k - 1) as f64) / (sw - sw2 / sw) } else { 0.0 };
    Dispersion { phi, tau2, method }
}

/// Funnel limits at denominator `n` around `p0`: (lower, upper) for a z.
pub fn funnel_limits(p0: f64, n: u64, z: f64, d: &Dispersion) -> (f64, f64) {
    let var = p0 * (1.0 - p0) / n as f64;
    let sd = match d.method {
        Overdispersion::None => var.sqrt(),
        Overdispersion::Multiplicative => (var * d.phi.max(1.0)).sqrt(),
        Overdispersion::Additive => (var + d.tau2).sqrt(),
    };
    ((p0 - z * sd).max(0.0), (p0 + z * sd).min(1.0))
}

/// p-chart control limits (3 σ) for a subgroup of size `n` around `p0`.
pub fn p_chart_limits(p0: f64, n: u64) -> (f64, f64) {
    let sd = (p0 * (1.0 - p0) / n as f64).sqrt();
    ((p0 - 3.0 * sd).max(0.0), (p0 + 3.0 * sd).min(1.0))
}

/// Small-number suppression: counts below `threshold` become "*"; others are rounded to
/// the nearest `round_to` when it is above 1.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Suppression {
    pub threshold: u64,
    pub round_to: u64,
}

impl Suppression {
    pub fn count(&self, n: u64) -> String {
        if n < self.threshold {
            "*".into()
        } else if self.round_to > 1 {
            let r = self.round_to;
            (((n + r / 2) / r) * r).to_string()
        } else {
            n.to_string()
        }
    }

    /// A rate is withheld when its numerator or denominator is suppressed.
    pub fn hides(&self, k: u64, n: u64) -> bool {
        k < self.threshold || n < self.threshold
    }
}

/// Pre–post effect size: d = (mean pre − mean post) / SD pre, signed so that improvement is
/// positive, with the 95 % interval from Becker's (1988) variance for paired designs,
/// var(d) = 2(1 − r)/n + d²/(2n), r the pre–post correlation.
pub fn prepost_d(pairs: &[(f64, f64)], lower_is_better: bool) -> Option<(f64, f64, f64)> {
    let n = pairs.len();
    if n < 3 {
        return None;
    }
    let nf = n as f64;
    let (mp, mq) = (pairs.iter().map(|p| p.0).sum::<f64>() / nf, pairs.iter().map(|p| p.1).sum::<f64>() / nf);
    let sp = (pairs.iter().map(|p| (p.0 - mp).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    let sq = (pairs.iter().map(|p| (p.1 - mq).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    if sp <= 0.0 {
        return None;
    }
    let r = if sq > 0.0 {
        pairs.iter().map(|p| (p.0 - mp) * (p.1 - mq)).sum::<f64>() / ((nf - 1.0) * sp * sq)
    } else {
        0.0
    };
    let sign = if lower_is_better { 1.0 } else { -1.0 };
    let d = sign * (mp - mq) / sp;
    let se = (2.0 * (1.0 - r) / nf + d * d / (2.0 * nf)).sqrt();
    Some((d, d - Z95 * se, d + Z95 * se))
}

/// Empirical-Bayes (beta-binomial, method of moments) shrinkage of units' rates toward the
/// pooled rate: returns each unit's posterior mean (k + α) / (n + α + β).
pub fn shrink(units: &[(u64, u64)]) -> Vec<Option<f64>> {
    let used: Vec<&(u64, u64)> = units.iter().filter(|u| u.1 > 0).collect();
    let (sk, sn): (u64, u64) = used.iter().fold((0, 0), |a, u| (a.0 + u.0, a.1 + u.1));
    if sn == 0 {
        return units.iter().map(|_| None).collect();
    }
    let mu = sk as f64 / sn as f64;
    // Between-unit variance: observed weighted variance minus the binomial part.
    let k = used.len() as f64;
    let obs_var = used.iter().map(|u| (u.0 as f64 / u.1 as f64 - mu).powi(2)).sum::<f64>() / k.max(1.0);
    let binom = used.iter().map(|u| mu * (1.0 - mu) / u.1 as f64).sum::<f64>() / k.max(1.0);
    let between = obs_var - binom;
    units
        .iter()
        .map(|&(kk, n)| {
            if n == 0 {
                return None;
            }
            if between <= 0.0 || mu <= 0.0 || mu >= 1.0 {
                return Some(mu);
            }
            let ab = (mu * (1.0 - mu) / between - 1.0).max(1e-9);
            Some((kk as f64 + mu * ab) / (n as f64 + ab))
        })
        .collect()
}

/// Logistic regression of a 0/1 outcome on one covariate by Newton–Raphson; returns
/// (intercept, slope), or `None` when it does not converge (e.g. complete separation).
pub fn logistic(xy: &[(f64, bool)]) -> Option<(f64, f64)> {
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut g0, mut g1, mut h00, mut h01, mut h11) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(x, y) in xy {
            let p = 1.0 / (1.0 + (-(a + b * x)).exp());
            let r = f64::from(u8::from(y)) - p;
            let w = p * (1.0 - p);
            g0 += r;
            g1 += r * x;
            h00 += w;
            h01 += w * x;
            h11 += w * x * x;
        }
        let det = h00 * h11 - h01 * h01;
        if det.abs() < 1e-12 {
            return None;
        }
        let (da, db) = ((h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det);
        a += da;
        b += db;
        if da.abs() < 1e-10 && db.abs() < 1e-10 {
            return (a.is_finite() && b.is_finite()).then_some((a, b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_open_per_period_by_hand() {
        // Months 5..=7, 6..=6, 9..=9 (a one-month episode) and one given backwards (none).
        let open = open_per_period(&[(5, 7), (6, 6), (9, 9), (8, 7)]);
        let counts: Vec<u64> = (3..=11).map(&open).collect();
        assert_eq!(counts, vec![0, 0, 1, 2, 1, 0, 1, 0, 0]);
        assert_eq!(open_per_period(&[])(0), 0);
    }

    #[test]
    fn wilson_interval_by_hand() {
        // 8 of 10: centre (0.8 + 0.19208)/1.38415 = 0.71678; half 0.2064…
        let (lo, hi) = wilson(8, 10, Z95).unwrap();
        assert!((lo - 0.4901625).abs() < 1e-6, "{lo}");
        assert!((hi - 0.9433178).abs() < 1e-6, "{hi}");
        let (lo, hi) = wilson(0, 5, Z95).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.4344825).abs() < 1e-6, "{hi}");
        assert_eq!(wilson(0, 0, Z95), None);
    }

    #[test]
    fn funnel_limits_with_and_without_overdispersion() {
        let none = Dispersion { phi: 1.0, tau2: 0.0, method: Overdispersion::None };
        // p0 = 0.5, n = 100: sd 0.05; 95 %: 0.5 ± 0.098; 99.8 %: 0.5 ± 0.1545.
        let (lo, hi) = funnel_limits(0.5, 100, Z95, &none);
        assert!((lo - 0.40200180).abs() < 1e-7 && (hi - 0.59799820).abs() < 1e-7);
        let (lo, _) = funnel_limits(0.5, 100, Z998, &none);
        assert!((lo - 0.34548838).abs() < 1e-7);
        let mult = Dispersion { phi: 4.0, tau2: 0.0, method: Overdispersion::Multiplicative };
        let (lo, _) = funnel_limits(0.5, 100, Z95, &mult);
        assert!((lo - (0.5 - Z95 * 0.1)).abs() < 1e-12, "φ = 4 doubles the SD");
        let add = Dispersion { phi: 4.0, tau2: 0.0075, method: Overdispersion::Additive };
        let (lo, _) = funnel_limits(0.5, 100, Z95, &add);
        assert!((lo - (0.5 - Z95 * 0.1)).abs() < 1e-12, "0.0025 + 0.0075 = 0.01");
    }

    #[test]
    fn overdispersion_is_estimated_from_winsorised_z_scores() {
        // Identical rates: φ = 0 and no τ².
        let d = dispersion(&[(50, 100), (50, 100), (50, 100)], 0.5, Overdispersion::Additive);
        assert_eq!((d.phi, d.tau2), (0.0, 0.0));
        // Two units at 0.3 and 0.7 of 100: z = ±4, winsorised to the 10th/90th percentiles
        // (type 7: ±3.2), so φ = 10.24.
        let d = dispersion(&[(30, 100), (70, 100)], 0.5, Overdispersion::Additive);
        assert!((d.phi - 10.24).abs() < 1e-9);
        // τ² = (2·10.24 − 1) / (Σw − Σw²/Σw), w = 400 each: 19.48 / (800 − 400) = 0.0487.
        assert!((d.tau2 - 0.0487).abs() < 1e-12);
    }

    #[test]
    fn p_chart_limits_by_hand() {
        let (lo, hi) = p_chart_limits(0.5, 25);
        assert!((lo - 0.2).abs() < 1e-12 && (hi - 0.8).abs() < 1e-12);
    }

    #[test]
    fn suppression_and_rounding_follow_nhs_rules() {
        let s = Suppression { threshold: 5, round_to: 5 };
        assert_eq!(
            [s.count(0), s.count(4), s.count(5), s.count(7), s.count(8), s.count(12)],
            ["*", "*", "5", "5", "10", "10"]
        );
        let plain = Suppression { threshold: 5, round_to: 1 };
        assert_eq!(plain.count(7), "7");
        assert!(s.hides(4, 20) && s.hides(10, 4) && !s.hides(5, 20));
    }

    #[test]
    fn prepost_effect_size_by_hand() {
        // Pre 10, 12, 14 (SD 2), post 6, 8, 10: d = 4 / 2 = 2, r = 1: var = 4/6, SE 0.8165.
        let (d, lo, hi) = prepost_d(&[(10.0, 6.0), (12.0, 8.0), (14.0, 10.0)], true).unwrap();
        assert!((d - 2.0).abs() < 1e-12);
        let se = (4.0f64 / 6.0).sqrt();
        assert!((lo - (2.0 - Z95 * se)).abs() < 1e-12 && (hi - (2.0 + Z95 * se)).abs() < 1e-12);
    }

    #[test]
    fn shrinkage_pulls_small_units_toward_the_pooled_rate() {
        let est = shrink(&[(9, 10), (100, 200), (40, 200), (1, 2)]);
        let pooled = 150.0 / 412.0;
        let small = est[3].unwrap();
        assert!((small - pooled).abs() < (0.5f64 - pooled).abs(), "{small}");
        assert!(est[0].unwrap() < 0.9 && est[0].unwrap() > pooled);
    }

    #[test]
    fn logistic_regression_recovers_a_known_slope() {
        // y = 1 when x > 0 with some overlap: the slope is positive and finite.
        let data: Vec<(f64, bool)> = (-10..=10).map(|i| (i as f64, i > 0 || i == -3)).chain([(4.0, false)]).collect();
        let (_, b) = logistic(&data).unwrap();
        assert!(b > 0.0);
        // Complete separation does not converge.
        assert_eq!(logistic(&[(0.0, false), (1.0, true)]), None);
    }
}

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
    pub effect_size: Option<(f64, f64, f64)>,
    /// Expected recoveries from the practice's case-mix model, and the adjusted rate.
    pub expected_recovery: Option<f64>,
    pub adjusted_recovery: Option<f64>,
    pub shrunken_recovery: Option<f64>,
    /// Funnel limits for reliable recovery at this unit's denominator: 95 % and 99.8 %.
    pub funnel95: Option<(f64, f64)>,
    pub funnel998: Option<(f64, f64)>,
    pub funnel_flag: Option<&'static str>,
    /// The unit's effect on improvement under the case-mix-adjusted mixed model
    /// ([`crate::unit_effects`]): points above (+) or below (−) what its clients'
    /// baselines predict, shrunk toward 0.
    pub improvement_effect: Option<f64>,
}

/// The therapist (or site) effects model of one measure.
#[derive(Debug, Clone, Serialize)]
pub struct EffectsModel {
    pub measure: u16,
    pub kind: &'static str,
    pub model: crate::unit_effects::UnitEffects,
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
    pub overdispersion: Overdispersion,
    /// `month` or `quarter`.
    pub period: &'static str,
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
    /// (baseline, final) of the paired episodes.
    pairs: Vec<(f64, f64)>,
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
            expected_recovery: None,
            adjusted_recovery: None,
            shrunken_recovery: None,
            funnel95: None,
            funnel998: None,
            funnel_flag: None,
            improvement_effect: None,
        };
        Tally { unit, sessions: Vec::new(), pairs: Vec::new(), expected: 0.0 }
    }

    fn add(
        &mut self,
        it: &crate::episodes::EpisodeMeasure,
        flags: &crate::followup::Durability,
        model: Option<(f64, f64)>,
    ) {
        use crate::outcomes::{Outcome, ReliableCategory};
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

    fn into_unit(self, lower: bool, modelled: bool) -> Unit {
        let mut u = self.unit;
        u.median_sessions = median(self.sessions);
        u.effect_size = prepost_d(&self.pairs, lower);
        u.expected_recovery = (modelled && u.reliable_recovery.n > 0).then_some(self.expected);
        u
    }
}

/// Per-therapist and per-site units, funnel references and trends.
pub fn analyse(
    keys: &crate::model::Keys,
    eps: &crate::episodes::Episodes,
    flags: &[crate::followup::Durability],
    opts: &Options,
) -> (Vec<Unit>, Vec<FunnelReference>, Vec<Period>, Vec<EffectsModel>) {
    use crate::model::NO_KEY;
    use crate::outcomes::Outcome;
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
        let lower = rule.direction == crate::registry::Direction::Lower;
        // Case-mix model: reliable recovery on intake score, among paired cases.
        let cases: Vec<(f64, bool)> = items
            .iter()
            .map(|&i| &eps.items[i])
            .filter(|it| it.finished() && it.classification.caseness_start == Some(true))
            .map(|it| (it.baseline, it.classification.outcome == Some(Outcome::Recovered)))
            .collect();
        let model = logistic(&cases);
        for kind in ["therapist", "site"] {
            // One pass over the episodes in order, each added to its unit's tally (units are
            // few: their tallies stay in cache, where reading each unit's episodes apart
            // jumped across the whole table), then the units ordered by name.
            let interner = if kind == "therapist" { &keys.therapists } else { &keys.sites };
            let mut tallies: Vec<Option<Tally>> = vec![None; interner.len()];
            for &i in &items {
                let it = &eps.items[i];
                let id = if kind == "therapist" { it.therapist } else { it.site };
                if id != NO_KEY {
                    let name = || interner.name(id);
                    tallies[id as usize]
                        .get_or_insert_with(|| Tally::new(kind, name(), measure))
                        .add(it, &flags[i], model);
                }
            }
            let mut groups: Vec<Tally> = tallies.into_iter().flatten().collect();
            groups.sort_unstable_by(|a, b| a.unit.unit.cmp(&b.unit.unit));
            if groups.is_empty() {
                continue;
            }
            // Therapist (site) effects on improvement, the baselines centred on their mean.
            let (sum, count) = groups.iter().flat_map(|t| &t.pairs).fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + 1.0));
            let centre = if count > 0.0 { sum / count } else { 0.0 };
            let sums: Vec<crate::unit_effects::UnitSums> = groups
                .iter()
                .map(|t| {
                    crate::unit_effects::UnitSums::of(
                        t.pairs.iter().map(|&(b, f)| (b - centre, if lower { b - f } else { f - b })),
                    )
                })
                .collect();
            let with_pairs: Vec<crate::unit_effects::UnitSums> =
                groups.iter().zip(&sums).filter(|(t, _)| !t.pairs.is_empty()).map(|(_, s)| *s).collect();
            let fitted = crate::unit_effects::fit(&with_pairs);
            let first = units.len();
            units.extend(groups.into_iter().zip(&sums).map(|(t, s)| {
                let paired = !t.pairs.is_empty();
                let mut u = t.into_unit(lower, model.is_some());
                u.improvement_effect = fitted.as_ref().filter(|_| paired).map(|e| e.effect(s));
                u
            }));
            if let Some(model) = fitted {
                effects.push(EffectsModel { measure, kind, model });
            }
            // Funnel, adjustment and shrinkage over this kind's units.
            let group = &mut units[first..];
            let counts: Vec<(u64, u64)> =
                group.iter().map(|u| (u.reliable_recovery.k, u.reliable_recovery.n)).collect();
            let (k, n) = counts.iter().fold((0, 0), |a, c| (a.0 + c.0, a.1 + c.1));
            if n == 0 {
                continue;
            }
            let p0 = k as f64 / n as f64;
            let d = dispersion(&counts, p0, opts.overdispersion);
            refs.push(FunnelReference { measure, kind, rate: p0, dispersion: d });
            for (u, s) in group.iter_mut().zip(shrink(&counts)) {
                u.shrunken_recovery = s;
                if let Some(e) = u.expected_recovery.filter(|e| *e > 0.0) {
                    u.adjusted_recovery = Some((u.reliable_recovery.k as f64 / e * p0).min(1.0));
                }
                let c = u.reliable_recovery;
                if c.n == 0 {
                    continue;
                }
                let (l95, h95) = funnel_limits(p0, c.n, Z95, &d);
                let (l998, h998) = funnel_limits(p0, c.n, Z998, &d);
                let r = c.k as f64 / c.n as f64;
                u.funnel95 = Some((l95, h95));
                u.funnel998 = Some((l998, h998));
                u.funnel_flag = Some(if r > h998 {
                    "above_99.8"
                } else if r > h95 {
                    "above_95"
                } else if r < l998 {
                    "below_99.8"
                } else if r < l95 {
                    "below_95"
                } else {
                    "within"
                });
            }
        }
    }
    let periods = trends(eps, &measures, opts);
    (units, refs, periods, effects)
}

/// The month (or quarter) of a day as a number that sorts like its label: months or
/// quarters since year 0. Labels are made once per period, not once per episode.
fn period_of(day: crate::dates::Day, by: &str) -> i32 {
    let (y, mo, _) = crate::dates::civil_from_days(day);
    if by == "quarter" {
        y * 4 + (mo - 1) / 3
    } else {
        y * 12 + (mo - 1)
    }
}

fn period_label(period: i32, by: &str) -> String {
    if by == "quarter" {
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
fn trends(eps: &crate::episodes::Episodes, measures: &[u16], opts: &Options) -> Vec<Period> {
    use crate::outcomes::{Outcome, ReliableCategory};
    use std::collections::BTreeMap;
    let mut out = Vec::new();
    for &measure in measures {
        let items: Vec<&crate::episodes::EpisodeMeasure> =
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
