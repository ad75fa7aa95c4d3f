//! Pre–post outcome of one episode on one measure: reliable change (Jacobson & Truax
//! 1991), caseness, the Jacobson–Truax category, NHS Talking Therapies recovery,
//! response and remission.
//!
//! `resolve_rule` turns a registry entry into concrete numbers for this run (computing
//! sample-based cut-offs and RCI denominators from the paired baselines), and
//! `classify` applies them to one baseline/final pair. Both are pure.

use crate::domain::registry::{Cutoff, Direction, JtCutoff, Measure, RciMethod, ReliableChange};
use serde::Serialize;

/// The two-sided 5 % normal critical value, `qnorm(0.975)`, as used by the
/// clinicalsignificance package (not the rounded 1.96).
pub use crate::stats::rates::Z95 as Z_975;

/// Reliable change category (the contract's `reliable_change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliableCategory {
    Improved,
    NoChange,
    Deteriorated,
}

impl ReliableCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ReliableCategory::Improved => "improved",
            ReliableCategory::NoChange => "no_change",
            ReliableCategory::Deteriorated => "deteriorated",
        }
    }
}

/// The Jacobson–Truax outcome (the contract's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Recovered,
    Improved,
    Unchanged,
    Deteriorated,
    NotAtCaseness,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Recovered, Outcome::Improved, Outcome::Unchanged, Outcome::Deteriorated, Outcome::NotAtCaseness];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Recovered => "recovered",
            Outcome::Improved => "improved",
            Outcome::Unchanged => "unchanged",
            Outcome::Deteriorated => "deteriorated",
            Outcome::NotAtCaseness => "not_at_caseness",
        }
    }
}

/// How caseness is decided at a resolved cut-off value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CasenessRule {
    /// The contract's fixed rule: `score >= c` (lower is better) or `score < c` (higher).
    Fixed,
    /// clinicalsignificance's rule for a computed cut-off: clinical at baseline when
    /// strictly beyond it, functional at the end when strictly on the healthy side, so a
    /// score exactly at the cut-off is neither.
    Strict,
}

/// Concrete thresholds for one measure in this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedRule {
    pub direction: Direction,
    pub cutoff: Option<f64>,
    pub caseness_rule: CasenessRule,
    /// Fixed reliable-change threshold in points, where the rule is a fixed one.
    pub rc_threshold: Option<f64>,
    /// The Jacobson–Truax RCI denominator S_diff = SD·√(2(1 − r)), where the rule is a
    /// reliability (whatever its `rci_method`: it judges the change between any two scores,
    /// and sudden gains' criterion 1 is built on it).
    pub s_diff: Option<f64>,
    /// The index that judges a later score against the baseline, where the rule is a
    /// reliability.
    pub rci: Option<RciIndex>,
    pub remission_below: Option<f64>,
    /// Sample statistics the rule was computed from (paired baselines), for the record.
    pub sample_n: usize,
    pub sample_mean: Option<f64>,
    pub sample_sd: Option<f64>,
    /// The mean of the paired series' final scores (the Hsu–Linn–Lord index uses it).
    pub sample_final_mean: Option<f64>,
    /// Why a part of the rule could not be computed, if so.
    pub problems: Vec<String>,
}

/// A reliable change index as the clinicalsignificance package computes it (`calc_rci.R`):
/// the later score against the score expected from the baseline if nothing changed, over
/// the method's standard error. For Jacobson–Truax the expected score is the baseline
/// itself; the others regress the baseline toward the sample's mean by the reliability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RciIndex {
    pub method: RciMethod,
    pub reliability: f64,
    /// The mean of the paired baselines (present for all but Jacobson–Truax, which does
    /// not use it).
    pub pre_mean: Option<f64>,
    /// The mean of the paired final scores (present for Hsu–Linn–Lord, which uses it).
    pub post_mean: Option<f64>,
    /// The index's standard error: S_diff, SE_pred, SE_m, or Nunnally–Kotsch's.
    pub denominator: f64,
}

impl RciIndex {
    /// The index for a later score `to` against the baseline `from`, term by term as the
    /// package writes it (so that a score at the edge falls on the same side).
    pub fn value(&self, from: f64, to: f64) -> f64 {
        // `new` made sure the means a method uses are present.
        let (m_pre, m_post) = (self.pre_mean.unwrap_or_default(), self.post_mean.unwrap_or_default());
        let (r, den) = (self.reliability, self.denominator);
        match self.method {
            RciMethod::Jt => (to - from) / den,
            RciMethod::Gln => ((to - m_pre) - r * (from - m_pre)) / den,
            RciMethod::Hll => ((to - m_post) - r * (from - m_pre)) / den,
            RciMethod::En | RciMethod::Nk => (to - (r * (from - m_pre) + m_pre)) / den,
        }
    }

    /// The later score the index expects from `from` if nothing changed (its zero).
    pub fn expected(&self, from: f64) -> f64 {
        let (m_pre, m_post) = (self.pre_mean.unwrap_or_default(), self.post_mean.unwrap_or_default());
        let r = self.reliability;
        match self.method {
            RciMethod::Jt => from,
            RciMethod::Gln | RciMethod::En | RciMethod::Nk => r * (from - m_pre) + m_pre,
            RciMethod::Hll => m_post + r * (from - m_pre),
        }
    }

    /// The index of a measure's reliability rule: `sd` is the SD for the standard errors
    /// (given, or of the paired baselines), `s_diff` Jacobson–Truax's. `None` when the
    /// method needs a sample mean there is none of.
    fn new(
        method: RciMethod,
        r: f64,
        r_post: f64,
        (sd, s_diff): (f64, f64),
        pre_mean: Option<f64>,
        post_mean: Option<f64>,
    ) -> Option<RciIndex> {
        let se_m = sd * (1.0 - r).sqrt();
        let se_pred = sd * (1.0 - r.powi(2)).sqrt();
        let denominator = match method {
            RciMethod::Jt => s_diff,
            RciMethod::Gln | RciMethod::Hll => se_pred,
            RciMethod::En => se_m,
            RciMethod::Nk => (r.powi(2) * sd.powi(2) * (1.0 - r) + sd.powi(2) * (1.0 - r_post)).sqrt(),
        };
        let (pre_mean, post_mean) = match method {
            RciMethod::Jt => (None, None),
            RciMethod::Hll => (Some(pre_mean?), Some(post_mean?)),
            RciMethod::Gln | RciMethod::En | RciMethod::Nk => (Some(pre_mean?), None),
        };
        Some(RciIndex { method, reliability: r, pre_mean, post_mean, denominator })
    }
}

/// Resolves a measure's rule, given the baseline and final scores of its paired episodes.
pub fn resolve_rule(m: &Measure, paired_baselines: &[f64], paired_finals: &[f64]) -> ResolvedRule {
    let (mean, sd) = crate::stats::descriptive::mean_sd(paired_baselines);
    let final_mean = crate::stats::descriptive::mean_sd(paired_finals).0;
    let mut problems = Vec::new();
    let d = m.direction.sign();
    let (cutoff, caseness_rule) = match &m.cutoff {
        None => (None, CasenessRule::Fixed),
        Some(Cutoff::Fixed { value }) => (Some(*value), CasenessRule::Fixed),
        Some(Cutoff::JacobsonTruax { method, functional_mean, functional_sd }) => {
            let value = match (method, mean, sd, functional_mean, functional_sd) {
                (JtCutoff::A, Some(mc), Some(sc), _, _) => Some(mc + d * 2.0 * sc),
                (JtCutoff::B, _, _, Some(mf), Some(sf)) => Some(mf - d * 2.0 * sf),
                (JtCutoff::C, Some(mc), Some(sc), Some(mf), Some(sf)) => Some((sc * mf + sf * mc) / (sc + sf)),
                _ => None,
            };
            if value.is_none() {
                problems
                    .push(format!("cut-off {method:?} needs at least two paired baselines and the functional norms"));
            }
            (value, CasenessRule::Strict)
        }
    };
    let (rc_threshold, s_diff, rci) = match &m.reliable_change {
        None => (None, None, None),
        Some(ReliableChange::Fixed { value }) => (Some(*value), None, None),
        Some(ReliableChange::Reliability { reliability: r, sd: given, method, reliability_post }) => {
            match given.or(sd) {
                Some(s) if s > 0.0 => {
                    let s_diff = s * (2.0 * (1.0 - r)).sqrt();
                    let rci = RciIndex::new(*method, *r, reliability_post.unwrap_or(*r), (s, s_diff), mean, final_mean);
                    if rci.is_none() {
                        problems.push(format!("the {} index needs paired episodes (their mean scores)", method.name()));
                    }
                    // Without its index the rule is not applied at all (not Jacobson–Truax's
                    // in its place).
                    (None, rci.map(|_| s_diff), rci)
                }
                _ => {
                    problems
                        .push("reliable change needs an SD: at least two paired baselines that differ, or `sd`".into());
                    (None, None, None)
                }
            }
        }
    };
    ResolvedRule {
        direction: m.direction,
        cutoff,
        caseness_rule,
        rc_threshold,
        s_diff,
        rci,
        remission_below: m.remission_below,
        sample_n: paired_baselines.len(),
        sample_mean: mean,
        sample_sd: sd,
        sample_final_mean: final_mean,
        problems,
    }
}

/// Everything `episodes.csv` says about one pre–post pair.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Classification {
    pub change: Option<f64>,
    pub rci: Option<f64>,
    pub reliable_change: Option<ReliableCategory>,
    pub caseness_start: Option<bool>,
    pub caseness_end: Option<bool>,
    pub outcome: Option<Outcome>,
    /// NHS Talking Therapies recovery: a case at baseline, not a case at the end.
    pub recovery: Option<bool>,
    /// Recovery with reliable improvement (= outcome `recovered`).
    pub reliable_recovery: Option<bool>,
    /// At least a 50 % reduction from baseline (lower-is-better measures, baseline > 0).
    pub response: Option<bool>,
    /// Final score below the measure's remission threshold.
    pub remission: Option<bool>,
}

impl ResolvedRule {
    /// Caseness of a score at the start of the episode.
    pub fn case_at_start(&self, score: f64) -> Option<bool> {
        let c = self.cutoff?;
        Some(match (self.direction, self.caseness_rule) {
            (Direction::Lower, CasenessRule::Fixed) => score >= c,
            (Direction::Lower, CasenessRule::Strict) => score > c,
            (Direction::Higher, _) => score < c,
        })
    }

    /// Caseness of a score at the end (or at follow-up).
    pub fn case_at_end(&self, score: f64) -> Option<bool> {
        let c = self.cutoff?;
        Some(match (self.direction, self.caseness_rule) {
            (Direction::Lower, _) => score >= c,
            (Direction::Higher, CasenessRule::Fixed) => score < c,
            (Direction::Higher, CasenessRule::Strict) => score <= c,
        })
    }

    /// Reliable change of a later score from the baseline, and the RCI where the rule is
    /// RCI-based: by the measure's index (`rci_method`).
    pub fn reliable_from_baseline(&self, baseline: f64, later: f64) -> (Option<ReliableCategory>, Option<f64>) {
        match &self.rci {
            Some(index) => {
                let rci = index.value(baseline, later);
                (Some(self.category(rci)), Some(rci))
            }
            None => self.reliable(baseline, later),
        }
    }

    /// The scores a later score must lie outside to differ reliably from `baseline`
    /// (open at both ends), as [`ResolvedRule::reliable_from_baseline`] judges it.
    pub fn no_change_band(&self, baseline: f64) -> Option<(f64, f64)> {
        if let Some(r) = self.rc_threshold {
            return Some((baseline - r, baseline + r));
        }
        let index = self.rci?;
        let (centre, half) = (index.expected(baseline), Z_975 * index.denominator);
        Some((centre - half, centre + half))
    }

    fn category(&self, rci: f64) -> ReliableCategory {
        let d = self.direction.sign();
        if d * rci > Z_975 {
            ReliableCategory::Improved
        } else if d * rci < -Z_975 {
            ReliableCategory::Deteriorated
        } else {
            ReliableCategory::NoChange
        }
    }

    /// Reliable change between any two scores (the difference rule: a fixed threshold or
    /// the Jacobson–Truax RCI, whatever the measure's `rci_method`, as the regression-based
    /// indices are defined only from a baseline), and the RCI where the rule is RCI-based.
    pub fn reliable(&self, from: f64, to: f64) -> (Option<ReliableCategory>, Option<f64>) {
        let d = self.direction.sign();
        if let Some(r) = self.rc_threshold {
            let gain = d * (to - from);
            let cat = if gain >= r {
                ReliableCategory::Improved
            } else if -gain >= r {
                ReliableCategory::Deteriorated
            } else {
                ReliableCategory::NoChange
            };
            return (Some(cat), None);
        }
        if let Some(s) = self.s_diff {
            let rci = (to - from) / s;
            return (Some(self.category(rci)), Some(rci));
        }
        (None, None)
    }

    /// Classifies a baseline and (for paired episodes) a final score.
    pub fn classify(&self, baseline: f64, final_score: Option<f64>) -> Classification {
        let caseness_start = self.case_at_start(baseline);
        let Some(fin) = final_score else {
            return Classification { caseness_start, ..Default::default() };
        };
        let (reliable_change, rci) = self.reliable_from_baseline(baseline, fin);
        let caseness_end = self.case_at_end(fin);
        let improved = reliable_change == Some(ReliableCategory::Improved);
        let outcome = match (caseness_start, reliable_change) {
            (Some(false), _) => Some(Outcome::NotAtCaseness),
            (_, None) => None,
            (_, Some(ReliableCategory::Improved)) if caseness_start == Some(true) && caseness_end == Some(false) => {
                Some(Outcome::Recovered)
            }
            (_, Some(ReliableCategory::Improved)) => Some(Outcome::Improved),
            (_, Some(ReliableCategory::Deteriorated)) => Some(Outcome::Deteriorated),
            (_, Some(ReliableCategory::NoChange)) => Some(Outcome::Unchanged),
        };
        let recovery = match (caseness_start, caseness_end) {
            (Some(s), Some(e)) => Some(s && !e),
            _ => None,
        };
        let response = match self.direction {
            Direction::Lower if baseline > 0.0 => Some(baseline - fin >= 0.5 * baseline),
            _ => None,
        };
        Classification {
            change: Some(fin - baseline),
            rci,
            reliable_change,
            caseness_start,
            caseness_end,
            outcome,
            recovery,
            reliable_recovery: recovery.map(|r| r && improved),
            response,
            remission: self.remission_below.map(|t| fin < t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::registry::Registry;

    fn rule(code: &str) -> ResolvedRule {
        let r = Registry::builtin();
        resolve_rule(r.get(r.find(code).unwrap()), &[], &[])
    }

    #[test]
    fn phq9_reliable_change_is_six_points_inclusive() {
        let r = rule("PHQ9");
        assert_eq!(r.reliable(18.0, 12.0).0, Some(ReliableCategory::Improved));
        assert_eq!(r.reliable(18.0, 13.0).0, Some(ReliableCategory::NoChange));
        assert_eq!(r.reliable(10.0, 16.0).0, Some(ReliableCategory::Deteriorated));
        assert_eq!(r.reliable(10.0, 15.0).0, Some(ReliableCategory::NoChange));
    }

    #[test]
    fn phq9_outcomes_by_hand() {
        let r = rule("PHQ9");
        // 18 -> 8: reliable (10 >= 6), case -> not case: recovered, response (>= 9), not remission.
        let c = r.classify(18.0, Some(8.0));
        assert_eq!(c.outcome, Some(Outcome::Recovered));
        assert_eq!(
            (c.recovery, c.reliable_recovery, c.response, c.remission),
            (Some(true), Some(true), Some(true), Some(false))
        );
        assert_eq!(c.change, Some(-10.0));
        // 12 -> 9: not reliable (3), but leaves caseness: TT recovery without reliable recovery.
        let c = r.classify(12.0, Some(9.0));
        assert_eq!(c.outcome, Some(Outcome::Unchanged));
        assert_eq!((c.recovery, c.reliable_recovery), (Some(true), Some(false)));
        // 24 -> 12: reliable, still a case: improved.
        assert_eq!(r.classify(24.0, Some(12.0)).outcome, Some(Outcome::Improved));
        // 10 -> 16: deteriorated.
        assert_eq!(r.classify(10.0, Some(16.0)).outcome, Some(Outcome::Deteriorated));
        // 9 -> 2: below caseness at baseline, reported apart whatever the change.
        let c = r.classify(9.0, Some(2.0));
        assert_eq!(c.outcome, Some(Outcome::NotAtCaseness));
        assert_eq!(c.reliable_change, Some(ReliableCategory::Improved));
        assert_eq!(c.remission, Some(true));
        // A single score: nothing after baseline.
        let c = r.classify(15.0, None);
        assert_eq!((c.caseness_start, c.outcome, c.change), (Some(true), None, None));
    }

    #[test]
    fn caseness_is_at_or_above_for_symptoms_and_below_for_ors() {
        let phq = rule("PHQ9");
        assert_eq!(phq.case_at_start(10.0), Some(true));
        assert_eq!(phq.case_at_start(9.0), Some(false));
        let ors = rule("ORS");
        assert_eq!(ors.case_at_start(24.9), Some(true));
        assert_eq!(ors.case_at_start(25.0), Some(false));
        // ORS 20 -> 26: +6 >= 5 reliable, case -> not case.
        assert_eq!(ors.classify(20.0, Some(26.0)).outcome, Some(Outcome::Recovered));
        assert_eq!(ors.classify(30.0, Some(20.0)).reliable_change, Some(ReliableCategory::Deteriorated));
        assert_eq!(ors.classify(20.0, Some(26.0)).response, None, "response is for symptom scales");
    }

    #[test]
    fn measures_without_cutoff_get_reliable_change_only() {
        let w = rule("WEMWBS");
        let c = w.classify(30.0, Some(40.0));
        assert_eq!(c.reliable_change, Some(ReliableCategory::Improved));
        assert_eq!(c.outcome, Some(Outcome::Improved));
        assert_eq!((c.caseness_start, c.recovery), (None, None));
    }

    #[test]
    fn jacobson_truax_cutoffs_and_rci_from_the_sample() {
        // GDS in Jacobson & Truax (1991): lower is better, r = .80, functional M = 30, SD = 7.
        let toml = "[[measure]]\ncode='GDS'\nbetter='lower'\nreliability=0.8\ncutoff_method='c'\nfunctional_mean=30\nfunctional_sd=7";
        let reg = Registry::builtin().with_overrides(toml).unwrap();
        let m = reg.get(reg.find("GDS").unwrap());
        // Baselines with mean 10 and squared deviations 25 + 4 + 0 + 4 + 25 = 58: SD = √(58 / 4).
        let base = [5.0, 8.0, 10.0, 12.0, 15.0];
        let r = resolve_rule(m, &base, &[]);
        let sd = 14.5f64.sqrt();
        assert!((r.s_diff.unwrap() - sd * (0.4f64).sqrt()).abs() < 1e-12);
        let c = (sd * 30.0 + 7.0 * 10.0) / (sd + 7.0);
        assert!((r.cutoff.unwrap() - c).abs() < 1e-12);
        // Cut-off a: mean - 2 SD; b (Jacobson & Truax): functional mean + 2 functional SD.
        let mut ma = m.clone();
        ma.cutoff = Some(Cutoff::JacobsonTruax { method: JtCutoff::A, functional_mean: None, functional_sd: None });
        assert!((resolve_rule(&ma, &base, &[]).cutoff.unwrap() - (10.0 - 2.0 * sd)).abs() < 1e-12);
        ma.cutoff =
            Some(Cutoff::JacobsonTruax { method: JtCutoff::B, functional_mean: Some(30.0), functional_sd: Some(7.0) });
        assert_eq!(resolve_rule(&ma, &base, &[]).cutoff, Some(44.0));
        // |RCI| must exceed the critical value strictly.
        let s = r.s_diff.unwrap();
        assert_eq!(r.reliable(10.0, 10.0 - Z_975 * s).0, Some(ReliableCategory::NoChange));
        assert_eq!(r.reliable(10.0, 10.0 - Z_975 * s - 1e-9).0, Some(ReliableCategory::Improved));
    }

    /// A lower-is-better measure with r = .8 and `rci_method` `method`, resolved on paired
    /// baselines 15, 20, 25 (mean 20, SD 5) and finals 10, 12, 14 (mean 12).
    fn index_rule(method: &str, extra: &str) -> ResolvedRule {
        let toml = format!(
            "[[measure]]\ncode='GDS'\nbetter='lower'\nmin=0\nmax=100\nreliability=0.8\nrci_method='{method}'\n{extra}"
        );
        let reg = Registry::builtin().with_overrides(&toml).unwrap();
        resolve_rule(reg.get(reg.find("GDS").unwrap()), &[15.0, 20.0, 25.0], &[10.0, 12.0, 14.0])
    }

    #[test]
    fn each_rci_method_by_hand() {
        // SD 5, r = .8: SE_m = 5·√.2, SE_pred = 5·√(1 − .64) = 3, S_diff = 5·√.4.
        // Baseline 24, final 14: the regression-based expected final is 20 + .8·(24 − 20) = 23.2.
        let cases = [
            ("jt", "", -10.0 / (5.0 * 0.4f64.sqrt())),
            ("gln", "", (-6.0 - 3.2) / 3.0),
            ("hll", "", (2.0 - 3.2) / 3.0),
            ("en", "", -9.2 / (5.0 * 0.2f64.sqrt())),
            // Nunnally–Kotsch with a later reliability of .9: √(.64·25·.2 + 25·.1) = √5.7.
            ("nk", "reliability_post=0.9", -9.2 / 5.7f64.sqrt()),
        ];
        for (method, extra, want) in cases {
            let r = index_rule(method, extra);
            assert!(r.problems.is_empty(), "{method}: {:?}", r.problems);
            let (cat, rci) = r.reliable_from_baseline(24.0, 14.0);
            assert!((rci.unwrap() - want).abs() < 1e-12, "{method}: {rci:?} against {want}");
            let c = r.classify(24.0, Some(14.0));
            assert_eq!((c.rci, c.reliable_change), (rci, cat), "{method}");
            // Every index but HLL's (−0.4) is beyond −1.96 here.
            let improved = if method == "hll" { ReliableCategory::NoChange } else { ReliableCategory::Improved };
            assert_eq!(cat, Some(improved), "{method}");
            // S_diff is Jacobson–Truax's whatever the method: it judges two later scores.
            assert!((r.s_diff.unwrap() - 5.0 * 0.4f64.sqrt()).abs() < 1e-12);
        }
        assert_eq!(index_rule("hll", "").sample_final_mean, Some(12.0));
    }

    #[test]
    fn a_regression_index_judges_from_the_baseline_and_the_difference_rule_between_later_scores() {
        // 24 → 18: Edwards–Nunnally (18 − 23.2) / (5·√.2) = −2.33 is reliable; the raw
        // difference −6 / (5·√.4) = −1.90 is not.
        let r = index_rule("en", "");
        assert_eq!(r.reliable_from_baseline(24.0, 18.0).0, Some(ReliableCategory::Improved));
        assert_eq!(r.reliable(24.0, 18.0).0, Some(ReliableCategory::NoChange));
        assert_eq!(r.classify(24.0, Some(18.0)).outcome, Some(Outcome::Improved));
        // GLN: the band of no reliable change from 24 is centred on 23.2, ±1.96·3.
        let (lo, hi) = index_rule("gln", "").no_change_band(24.0).unwrap();
        assert!((lo - (23.2 - Z_975 * 3.0)).abs() < 1e-12 && (hi - (23.2 + Z_975 * 3.0)).abs() < 1e-12);
        // HLL's centre moves with the mean final score: 12 + .8·(24 − 20) = 15.2.
        let (lo, hi) = index_rule("hll", "").no_change_band(24.0).unwrap();
        assert!(((lo + hi) / 2.0 - 15.2).abs() < 1e-12);
        // Jacobson–Truax's band is the baseline ± 1.96·S_diff, as before the methods.
        let (lo, hi) = index_rule("jt", "").no_change_band(24.0).unwrap();
        assert!((hi - 24.0 - Z_975 * 5.0 * 0.4f64.sqrt()).abs() < 1e-12 && ((lo + hi) / 2.0 - 24.0).abs() < 1e-12);
    }

    #[test]
    fn a_regression_index_without_paired_means_gives_no_rule() {
        // An SD is given but no episode is paired: HLL has no mean final score, and the
        // rule is not replaced by Jacobson–Truax's.
        let toml = "[[measure]]\ncode='GDS'\nbetter='lower'\nreliability=0.8\nsd=5\nrci_method='hll'";
        let reg = Registry::builtin().with_overrides(toml).unwrap();
        let r = resolve_rule(reg.get(reg.find("GDS").unwrap()), &[], &[]);
        assert_eq!((r.s_diff, r.rci), (None, None));
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.reliable_from_baseline(24.0, 10.0), (None, None));
    }

    #[test]
    fn a_computed_cutoff_uses_strict_comparisons() {
        let mut r = rule("PHQ9");
        r.cutoff = Some(50.0);
        r.caseness_rule = CasenessRule::Strict;
        assert_eq!(r.case_at_start(50.0), Some(false));
        assert_eq!(r.case_at_end(50.0), Some(true));
    }

    #[test]
    fn without_an_sd_the_reliability_rule_reports_a_problem() {
        let toml = "[[measure]]\ncode='GDS'\nbetter='lower'\nreliability=0.8";
        let reg = Registry::builtin().with_overrides(toml).unwrap();
        let r = resolve_rule(reg.get(reg.find("GDS").unwrap()), &[3.0], &[1.0]);
        assert_eq!(r.s_diff, None);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.classify(3.0, Some(1.0)).reliable_change, None);
    }
}
