//! Therapist and site effects: how much of the variation in improvement lies between
//! therapists (or sites) once their clients' severity at baseline is allowed for. A linear
//! mixed model with a random intercept per unit,
//! `improvement ~ baseline + (1 | unit)`, fitted by REML as lme4's `lmer` fits it.
//!
//! It answers the supervisor's first question before any comparison of units: do they
//! differ beyond chance at all? The intraclass correlation (ICC) is the share of the
//! variance in improvement between units, and a likelihood-ratio test (with the boundary
//! mixture of Self & Liang 1987) says whether it is more than zero. Each unit's effect is
//! its conditional mode (BLUP): points of improvement above or below what its case mix
//! predicts, shrunk toward 0 the more the fewer episodes it has.
//!
//! With t = τ²/σ², a unit j with nⱼ episodes has Aⱼ = 1 + t nⱼ and kⱼ = t / Aⱼ, and the
//! profiled REML criterion is lme4's for one random intercept:
//!
//! ```text
//! REML(t) = Σ log Aⱼ + log|M| + (N − 2)(1 + log(2π r² / (N − 2)))
//! M = Σ (XⱼᵀXⱼ − kⱼ XⱼᵀZⱼ ZⱼᵀXⱼ),  v = Σ (Xⱼᵀyⱼ − kⱼ XⱼᵀZⱼ Σyⱼ),  r² = Σ (yⱼᵀyⱼ − kⱼ (Σyⱼ)²) − vᵀM⁻¹v
//! ```
//!
//! which depends on a unit only through six sums.

use serde::Serialize;

/// A symmetric 2 × 2 matrix `[a, b; b, c]` as `[a, b, c]`.
type Sym = [f64; 3];

/// One unit's episodes as the model sees them: x the baseline less the centre, y the
/// improvement (positive = better, in the measure's direction).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UnitSums {
    n: f64,
    sx: f64,
    sxx: f64,
    sy: f64,
    sxy: f64,
    syy: f64,
}

impl UnitSums {
    pub fn of(points: impl Iterator<Item = (f64, f64)>) -> UnitSums {
        let mut s = UnitSums::default();
        for (x, y) in points {
            s.n += 1.0;
            s.sx += x;
            s.sxx += x * x;
            s.sy += y;
            s.sxy += x * y;
            s.syy += y * y;
        }
        s
    }
}

/// The fitted model of one measure and one kind of unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitEffects {
    /// Units and paired episodes in the model.
    pub units: u64,
    pub episodes: u64,
    /// Expected improvement at the mean baseline, and its change per point of baseline.
    pub improvement_at_mean_baseline: f64,
    pub per_baseline_point: f64,
    /// SD of the units' effects (τ) and of episodes around them (σ), in points.
    pub sd_between_units: f64,
    pub sigma: f64,
    /// τ² / (τ² + σ²): the share of the variance in improvement between units.
    pub icc: f64,
    /// Likelihood-ratio statistic of τ² = 0 (REML criteria) and its p-value, half the χ²₁
    /// tail for a variance on its boundary.
    pub lrt: f64,
    pub p_value: f64,
    /// τ at (nearly) 0, lme4's isSingular rule: the units do not differ beyond chance, and
    /// every unit's effect is 0.
    pub singular: bool,
    /// The REML criterion at the optimum.
    pub criterion: f64,
    #[serde(skip)]
    t: f64,
    #[serde(skip)]
    beta: [f64; 2],
}

/// The model needs this many units and more episodes than units plus two.
const MIN_UNITS: usize = 3;

/// lme4's isSingular tolerance, on θ = τ/σ.
const SINGULAR_TOLERANCE: f64 = 1e-4;

fn det(s: &Sym) -> f64 {
    s[0] * s[2] - s[1] * s[1]
}

/// Σ log Aⱼ, M, v and Σ (yⱼᵀyⱼ − kⱼ (Σyⱼ)²) at t.
fn parts(t: f64, units: &[UnitSums]) -> (f64, Sym, [f64; 2], f64) {
    let (mut logdet, mut m, mut v, mut w) = (0.0, [0.0; 3], [0.0; 2], 0.0);
    for u in units {
        let a = 1.0 + t * u.n;
        let k = t / a;
        logdet += a.ln();
        m[0] += u.n - k * u.n * u.n;
        m[1] += u.sx - k * u.n * u.sx;
        m[2] += u.sxx - k * u.sx * u.sx;
        v[0] += u.sy - k * u.n * u.sy;
        v[1] += u.sxy - k * u.sx * u.sy;
        w += u.syy - k * u.sy * u.sy;
    }
    (logdet, m, v, w)
}

/// β̂ and r² from the parts.
fn solve(m: &Sym, v: [f64; 2], w: f64) -> ([f64; 2], f64) {
    let d = det(m);
    let beta = [(m[2] * v[0] - m[1] * v[1]) / d, (m[0] * v[1] - m[1] * v[0]) / d];
    (beta, w - (beta[0] * v[0] + beta[1] * v[1]))
}

/// The REML criterion at t (+∞ where it is not defined).
fn criterion(t: f64, units: &[UnitSums], n: f64) -> f64 {
    let (logdet, m, v, w) = parts(t, units);
    let (_, r2) = solve(&m, v, w);
    let dof = n - 2.0;
    let d = logdet + det(&m).ln() + dof * (1.0 + (2.0 * std::f64::consts::PI * r2 / dof).ln());
    if d.is_finite() && det(&m) > 0.0 && r2 > 0.0 {
        d
    } else {
        f64::INFINITY
    }
}

/// t at the minimum of the criterion over [0, ∞): a grid over log t (10⁻¹² … 10⁴, eight
/// points a decade) and t = 0, then golden-section search between the best point's
/// neighbours. The criterion of one variance ratio is smooth; the grid keeps the search
/// from a local dip and finds the boundary.
fn optimum(units: &[UnitSums], n: f64) -> f64 {
    let f = |log_t: f64| criterion(10f64.powf(log_t), units, n);
    let grid: Vec<f64> = (-96..=32).map(|k| f64::from(k) / 8.0).collect();
    let values: Vec<f64> = grid.iter().map(|&g| f(g)).collect();
    let best = (0..grid.len()).min_by(|&a, &b| values[a].total_cmp(&values[b])).expect("grid");
    if criterion(0.0, units, n) <= values[best] || best == 0 {
        return 0.0;
    }
    let (mut lo, mut hi) = (grid[best - 1], grid[(best + 1).min(grid.len() - 1)]);
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - phi * (hi - lo), lo + phi * (hi - lo));
    let (mut fa, mut fb) = (f(a), f(b));
    while hi - lo > 1e-12 {
        if fa <= fb {
            (hi, b, fb) = (b, a, fa);
            a = hi - phi * (hi - lo);
            fa = f(a);
        } else {
            (lo, a, fa) = (a, b, fb);
            b = lo + phi * (hi - lo);
            fb = f(b);
        }
    }
    // The criterion is flat at its minimum, so comparing values finds it only to about
    // √ε; Newton steps on central differences find where its slope vanishes (their
    // values differ from the bracket's by rounding only, so the steps are judged by size).
    let mut u = (lo + hi) / 2.0;
    let h = 1e-4;
    for _ in 0..4 {
        let (fm, f0, fp) = (f(u - h), f(u), f(u + h));
        let (slope, curvature) = ((fp - fm) / (2.0 * h), (fp - 2.0 * f0 + fm) / (h * h));
        let step = slope / curvature;
        if curvature.is_nan() || curvature <= 0.0 || !step.is_finite() || step.abs() > 1e-3 {
            break;
        }
        u -= step;
        if step.abs() < 1e-13 {
            break;
        }
    }
    10f64.powf(u)
}

/// Fits the model to the units' sums (their baselines centred by the caller, so that
/// the intercept is the improvement at the centre). `None` with fewer than three units,
/// too few episodes, or baselines that never vary.
pub fn fit(units: &[UnitSums]) -> Option<UnitEffects> {
    let n: f64 = units.iter().map(|u| u.n).sum();
    if units.len() < MIN_UNITS || n <= units.len() as f64 + 2.0 {
        return None;
    }
    let t = optimum(units, n);
    let (d, d0) = (criterion(t, units, n), criterion(0.0, units, n));
    if !d.is_finite() || !d0.is_finite() {
        return None;
    }
    let (_, m, v, w) = parts(t, units);
    let (beta, r2) = solve(&m, v, w);
    let sigma2 = r2 / (n - 2.0);
    let tau2 = t * sigma2;
    let lrt = (d0 - d).max(0.0);
    Some(UnitEffects {
        units: units.len() as u64,
        episodes: n as u64,
        improvement_at_mean_baseline: beta[0],
        per_baseline_point: beta[1],
        sd_between_units: tau2.sqrt(),
        sigma: sigma2.sqrt(),
        icc: tau2 / (tau2 + sigma2),
        lrt,
        p_value: if lrt > 0.0 { 0.5 * chi2_1_tail(lrt) } else { 1.0 },
        singular: t.sqrt() < SINGULAR_TOLERANCE,
        criterion: d,
        t,
        beta,
    })
}

/// P(χ²₁ ≥ x) = 2 (1 − Φ(√x)).
fn chi2_1_tail(x: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    2.0 * Normal::standard().sf(x.sqrt())
}

impl UnitEffects {
    /// A unit's effect: its conditional mode (BLUP), kⱼ (Σyⱼ − β̂₀ nⱼ − β̂₁ Σxⱼ), in points
    /// of improvement beyond what its case mix predicts.
    pub fn effect(&self, u: &UnitSums) -> f64 {
        let k = self.t / (1.0 + self.t * u.n);
        k * (u.sy - self.beta[0] * u.n - self.beta[1] * u.sx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(what: &str, ours: f64, theirs: f64, rel: f64) {
        assert!((ours - theirs).abs() <= rel * theirs.abs().max(1e-300), "{what}: {ours} against {theirs}");
    }

    /// Units whose clients' baselines are 10, 14 and 18 (centred on 14), with these
    /// improvements.
    fn at_baselines_10_14_18(ys: &[[f64; 3]]) -> Vec<UnitSums> {
        ys.iter().map(|y| UnitSums::of([-4.0, 0.0, 4.0].into_iter().zip(y.iter().copied()))).collect()
    }

    /// Four units with the same baselines (10, 14, 18): a balanced design, where REML has
    /// the ANOVA solution. Pooled within-unit slope Sxy/Sxx = 17/32 = 0.53125; residual
    /// mean square 62.5/84 = 0.744048 on 12 − 4 − 1 = 7 df; unit means 17/3, 3, 25/3, 4,
    /// so MSB = 3 · var(means) = 16.305556 and τ² = (MSB − σ²)/3 = 5.187169.
    #[test]
    fn a_balanced_design_gives_the_anova_solution() {
        let ys = [[3.0, 6.0, 8.0], [1.0, 2.0, 6.0], [6.0, 9.0, 10.0], [2.0, 5.0, 5.0]];
        let units = at_baselines_10_14_18(&ys);
        let e = fit(&units).unwrap();
        close("slope", e.per_baseline_point, 0.53125, 1e-10);
        close("mean improvement", e.improvement_at_mean_baseline, 5.25, 1e-10);
        let sigma2: f64 = 62.5 / 84.0;
        close("sigma", e.sigma, sigma2.sqrt(), 1e-8);
        let msb = 3.0 * {
            let m = [17.0 / 3.0, 3.0, 25.0 / 3.0, 4.0];
            let mean = m.iter().sum::<f64>() / 4.0;
            m.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 3.0
        };
        let tau2 = (msb - sigma2) / 3.0;
        close("tau", e.sd_between_units, tau2.sqrt(), 1e-8);
        close("icc", e.icc, tau2 / (tau2 + sigma2), 1e-8);
        assert!(!e.singular && e.lrt > 0.0 && e.p_value < 0.05, "{e:?}");
        // The BLUPs of a balanced design: nτ²/(nτ² + σ²) times the unit's mean deviation.
        let shrink = 3.0 * tau2 / (3.0 * tau2 + sigma2);
        close("unit A", e.effect(&units[0]), shrink * (17.0 / 3.0 - 5.25), 1e-8);
    }

    /// Units that differ less than chance allows: τ at its boundary, every effect 0 and
    /// the test's p-value 1.
    #[test]
    fn units_alike_beyond_chance_give_a_singular_fit() {
        let ys = [[3.0, 6.0, 8.0], [8.0, 3.0, 6.0], [6.0, 8.0, 3.0], [5.0, 6.0, 6.0]];
        let units = at_baselines_10_14_18(&ys);
        let e = fit(&units).unwrap();
        assert!(e.singular && e.icc == 0.0 && e.p_value == 1.0, "{e:?}");
        assert_eq!(e.effect(&units[0]), 0.0);
    }

    #[test]
    fn too_few_units_or_episodes_give_no_model() {
        let one = UnitSums::of([(0.0, 1.0), (1.0, 2.0), (2.0, 2.0)].into_iter());
        assert!(fit(&[one, one]).is_none(), "two units");
        let single = UnitSums::of([(0.0, 1.0)].into_iter());
        assert!(fit(&[single, single, single, single]).is_none(), "one episode each");
    }

    #[test]
    fn the_boundary_p_value_is_half_the_chi_square_tail() {
        close("3.841459", chi2_1_tail(3.841_458_820_694_124), 0.05, 1e-9);
    }
}
