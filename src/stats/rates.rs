//! Rates and their uncertainty, with no clinical meaning of their own: Wilson intervals,
//! funnel-plot limits with overdispersion (Spiegelhalter 2005), p-chart limits, small-count
//! suppression, a pre–post effect size, empirical-Bayes shrinkage and a one-predictor
//! logistic regression. Formulas: docs/METHODS.md §7f.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// Estimates φ and τ² from units' (rate, denominator) around `p0` (the rates may be
/// case-mix adjusted).
pub fn dispersion_of_rates(units: &[(f64, u64)], p0: f64, method: Overdispersion) -> Dispersion {
    let used: Vec<(f64, f64)> =
        units.iter().filter(|u| u.1 > 0).map(|&(y, n)| (y, (p0 * (1.0 - p0) / n as f64).sqrt())).collect();
    let k = used.len();
    if k < 2 || p0 <= 0.0 || p0 >= 1.0 {
        return Dispersion { phi: 1.0, tau2: 0.0, method };
    }
    let mut z: Vec<f64> = used.iter().map(|(y, s)| (y - p0) / s).collect();
    // Winsorise at the 10th and 90th percentiles (as FunnelPlotR does).
    let mut sorted = z.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) =
        (crate::stats::descriptive::quantile(&sorted, 0.1), crate::stats::descriptive::quantile(&sorted, 0.9));
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

/// Exact binomial funnel limits for a rate of `n` trials around `p0`, with the two-sided
/// coverage of `z` (z 1.96: the 2.5 % tails). The binomial quantile is interpolated as
/// Spiegelhalter (2005, Appendix A.1.1) does, so that the limits are smooth in n: with F
/// the Binomial(n, p0) distribution function, q the tail (Φ(−z)) and r the smallest count
/// with F(r) ≥ q, the lower limit is (r − α)/n, α = (F(r) − q)/(F(r) − F(r − 1)). The upper
/// limit is the same construction on the failures, 1 − lower(1 − p0), so that a unit is
/// above it exactly when its upper tail is as unlikely as a unit below the lower limit.
pub fn exact_binomial_limits(p0: f64, n: u64, z: f64) -> (f64, f64) {
    use statrs::distribution::{ContinuousCDF, Normal};
    let Ok(normal) = Normal::new(0.0, 1.0) else { return (0.0, 1.0) };
    let tail = normal.cdf(-z);
    (lower_binomial_limit(p0, n, tail), 1.0 - lower_binomial_limit(1.0 - p0, n, tail))
}

/// The interpolated lower `tail` quantile of Binomial(n, p), as a share of n.
fn lower_binomial_limit(p: f64, n: u64, tail: f64) -> f64 {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let Ok(b) = Binomial::new(p.clamp(0.0, 1.0), n) else { return 0.0 };
    if n == 0 {
        return 0.0;
    }
    let cdf = |r: i64| if r < 0 { 0.0 } else { b.cdf(r as u64) };
    // The smallest r with F(r) ≥ tail, by bisection (F is increasing in r).
    let (mut lo, mut hi) = (0i64, n as i64);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if cdf(mid) >= tail {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (f, below) = (cdf(lo), cdf(lo - 1));
    let alpha = if f > below { (f - tail) / (f - below) } else { 0.0 };
    ((lo as f64 - alpha) / n as f64).clamp(0.0, 1.0)
}

/// The difference of two independent proportions k1/n1 − k2/n2 with Newcombe's (1998,
/// method 10) hybrid score interval from the two Wilson intervals: lower d − √((p1 − l1)² +
/// (u2 − p2)²), upper d + √((u1 − p1)² + (p2 − l2)²). `None` when either has no trials.
pub fn difference_newcombe(k1: u64, n1: u64, k2: u64, n2: u64, z: f64) -> Option<(f64, f64, f64)> {
    let (l1, u1) = wilson(k1, n1, z)?;
    let (l2, u2) = wilson(k2, n2, z)?;
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let d = p1 - p2;
    Some((d, d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(), d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt()))
}

/// p-chart control limits (3 σ) for a subgroup of size `n` around `p0`.
pub fn p_chart_limits(p0: f64, n: u64) -> (f64, f64) {
    let sd = (p0 * (1.0 - p0) / n as f64).sqrt();
    ((p0 - 3.0 * sd).max(0.0), (p0 + 3.0 * sd).min(1.0))
}

/// Small-number suppression for published results: counts below `threshold` become "*";
/// others are rounded to the nearest `round_to` when it is above 1. [`Suppression::NONE`]
/// (results for internal use) leaves every count exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub threshold: u64,
    pub round_to: u64,
}

impl Suppression {
    /// Every count exact, nothing withheld.
    pub const NONE: Suppression = Suppression { threshold: 0, round_to: 1 };

    /// Whether anything is withheld or rounded (results for publication).
    pub fn publishing(&self) -> bool {
        *self != Suppression::NONE
    }

    /// A count as published: withheld (`None`) below the threshold, else rounded.
    pub fn value(&self, n: u64) -> Option<u64> {
        if n < self.threshold {
            None
        } else if self.round_to > 1 {
            let r = self.round_to;
            Some(((n + r / 2) / r) * r)
        } else {
            Some(n)
        }
    }

    /// A count as published, as text: "*" where it is withheld.
    pub fn count(&self, n: u64) -> String {
        self.value(n).map_or_else(|| "*".into(), |v| v.to_string())
    }

    /// A rate is withheld when its numerator or denominator is suppressed.
    pub fn hides(&self, k: u64, n: u64) -> bool {
        k < self.threshold || n < self.threshold
    }
}

/// A unit's pre–post effect size on a common scale: Hedges' g, the mean change over `sd`
/// (the practice's baseline SD, so that units are comparable), signed so that improvement
/// is positive, times the small-sample correction J = 1 − 3/(4·df − 1) (Hedges 1981) for
/// the `df` of that SD (the practice's paired episodes − 1: near 1 for any practice). Its
/// 95 % interval treats the practice's SD as known: SE = J · SD(change) / (√n · sd), the
/// unit's own spread of change. At least three pairs.
pub fn prepost_g(pairs: &[(f64, f64)], sd: f64, df: f64, lower_is_better: bool) -> Option<(f64, f64, f64)> {
    let n = pairs.len();
    if n < 3 || sd <= 0.0 || df < 2.0 {
        return None;
    }
    let sign = if lower_is_better { 1.0 } else { -1.0 };
    let changes: Vec<f64> = pairs.iter().map(|p| sign * (p.0 - p.1)).collect();
    let nf = n as f64;
    let mean = changes.iter().sum::<f64>() / nf;
    let sd_change = (changes.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
    let j = 1.0 - 3.0 / (4.0 * df - 1.0);
    let g = j * mean / sd;
    let se = j * sd_change / (nf.sqrt() * sd);
    Some((g, g - Z95 * se, g + Z95 * se))
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
        let d = dispersion_of_rates(&[(0.5, 100), (0.5, 100), (0.5, 100)], 0.5, Overdispersion::Additive);
        assert_eq!((d.phi, d.tau2), (0.0, 0.0));
        // Two units at 0.3 and 0.7 of 100: z = ±4, winsorised to the 10th/90th percentiles
        // (type 7: ±3.2), so φ = 10.24.
        let d = dispersion_of_rates(&[(0.3, 100), (0.7, 100)], 0.5, Overdispersion::Additive);
        assert!((d.phi - 10.24).abs() < 1e-9);
        // τ² = (2·10.24 − 1) / (Σw − Σw²/Σw), w = 400 each: 19.48 / (800 − 400) = 0.0487.
        assert!((d.tau2 - 0.0487).abs() < 1e-12);
    }

    #[test]
    fn exact_binomial_limits_interpolate_the_quantiles_as_spiegelhalter_does() {
        // By hand (exact binomial sums, docs/METHODS.md §7f): n = 10, p0 = 0.5, 2.5 %:
        // F(1) = 0.0107, F(2) = 0.0547, so r = 2, α = 0.675, limit = 1.325 / 10; the upper
        // limits are 1 − the lower ones of 1 − p0.
        for (p0, n, want) in [
            (0.5, 10, [0.13244444444444445, 0.8675555555555555, 0.00024000000000000686, 0.99976]),
            (0.45, 40, [0.28358904030693793, 0.6185298671411416, 0.20157721190900935, 0.7069090170643184]),
            (0.3, 200, [0.2350305370686571, 0.3670407753492053, 0.20052326021092873, 0.4051054062282001]),
        ] {
            let (l95, h95) = exact_binomial_limits(p0, n, Z95);
            let (l998, h998) = exact_binomial_limits(p0, n, Z998);
            for (got, want) in [l95, h95, l998, h998].into_iter().zip(want) {
                assert!((got - want).abs() < 1e-9, "p0 {p0}, n {n}: {got} against {want}");
            }
        }
        // At p0 = 0.5, n = 10: 9 of 10 (upper tail 0.011) is above the 95 % limit, 8 of 10
        // (0.055) is not, as 1 and 2 of 10 mirror them below; 10 of 10 (0.00098) is above
        // the 99.8 % limit, and a unit of 1 is never outside.
        let (l, h) = exact_binomial_limits(0.5, 10, Z95);
        assert!(0.9 > h && 0.8 < h && 0.1 < l && 0.2 > l);
        assert!(1.0 > exact_binomial_limits(0.5, 10, Z998).1);
        assert_eq!(exact_binomial_limits(0.5, 1, Z998), (0.0, 1.0));
    }

    #[test]
    fn hedges_g_on_the_practice_sd_by_hand() {
        // Changes 4, 4, 6, 6 (mean 5, SD 1.1547) on a practice SD of 5 with 99 df:
        // J = 1 − 3/395, g = J · 1, SE = J · 1.1547 / (2 · 5).
        let pairs = [(10.0, 6.0), (12.0, 8.0), (14.0, 8.0), (16.0, 10.0)];
        let (g, lo, hi) = prepost_g(&pairs, 5.0, 99.0, true).unwrap();
        let j = 1.0 - 3.0 / 395.0;
        assert!((g - j).abs() < 1e-12);
        let se = j * (4.0f64 / 3.0).sqrt() / 10.0;
        assert!((hi - g - Z95 * se).abs() < 1e-12 && (g - lo - Z95 * se).abs() < 1e-12);
        // Higher-is-better measures: improvement is still positive.
        let mirrored: Vec<(f64, f64)> = pairs.iter().map(|p| (p.1, p.0)).collect();
        assert!((prepost_g(&mirrored, 5.0, 99.0, false).unwrap().0 - g).abs() < 1e-12);
        assert!(prepost_g(&pairs[..2], 5.0, 99.0, true).is_none(), "fewer than three pairs");
        assert_eq!(
            crate::stats::descriptive::mean_sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).1,
            Some((32.0f64 / 7.0).sqrt())
        );
    }

    #[test]
    fn newcombe_difference_matches_his_worked_example() {
        // Newcombe (1998), Table II example (h): 56/70 − 48/80 = 0.2, 95 % CI 0.0524 to 0.3339.
        let (d, lo, hi) = difference_newcombe(56, 70, 48, 80, Z95).unwrap();
        assert!((d - 0.2).abs() < 1e-12);
        assert!((lo - 0.0524).abs() < 5e-5 && (hi - 0.3339).abs() < 5e-5, "{lo} {hi}");
        assert!(difference_newcombe(1, 0, 1, 2, Z95).is_none());
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
        assert_eq!([s.value(4), s.value(7), plain.value(7)], [None, Some(5), Some(7)]);
        // Internal results: every count exact, nothing withheld.
        let none = Suppression::NONE;
        assert_eq!([none.count(0), none.count(1), none.count(7)], ["0", "1", "7"]);
        assert!(!none.hides(0, 1) && !none.publishing() && s.publishing() && plain.publishing());
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
