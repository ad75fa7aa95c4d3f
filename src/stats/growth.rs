//! The growth model: a linear mixed-effects model of each measure's scores on sessions
//! since baseline, with a random intercept and a random slope per series,
//! `score ~ 1 + session + (1 + session | series)`, fitted by REML as lme4's `lmer` fits it.
//! It gives the practice's average rate of change, how much clients differ in it, and
//! each series' shrunken (empirical-Bayes) slope, which a short, noisy series borrows
//! from the others.
//!
//! The profiled criterion is lme4's (Bates, Mächler, Bolker & Walker 2015): with the
//! random effects' covariance σ² T Tᵀ, T lower triangular with entries θ, a series i
//! with design Gᵢ = ZᵢᵀZᵢ and gᵢ = Zᵢᵀyᵢ has Aᵢ = TᵀGᵢT + I, and
//!
//! ```text
//! REML(θ) = Σ log|Aᵢ| + log|M| + (n − 2)(1 + log(2π r² / (n − 2)))
//! ML(θ)   = Σ log|Aᵢ| + n (1 + log(2π r² / n))
//! M = Σ (Gᵢ − Gᵢ Kᵢ Gᵢ),  v = Σ (gᵢ − Gᵢ Kᵢ gᵢ),  Kᵢ = T Aᵢ⁻¹ Tᵀ
//! r² = Σ yᵢᵀyᵢ − Σ gᵢᵀ Kᵢ gᵢ − vᵀ M⁻¹ v,  β̂ = M⁻¹ v
//! ```
//!
//! Every term depends on a series only through Gᵢ (its count of sessions, their sum and
//! their sum of squares), gᵢ, gᵢgᵢᵀ and yᵢᵀyᵢ. Series with the same sessions share Gᵢ,
//! so they are added up into one *pattern*: the criterion is then evaluated over the few
//! distinct patterns, not over a million series, and exactly (no approximation).

use std::collections::BTreeMap;

/// lme4's `isSingular` tolerance on the diagonal of the relative covariance factor.
const SINGULAR_TOLERANCE: f64 = 1e-4;
/// A residual sum of squares at this fraction of the (centred) total is rounding.
const DEGENERATE_RESIDUAL: f64 = 1e-10;

/// A symmetric 2 × 2 matrix `[a, b; b, c]`, stored as `[a, b, c]`.
type Sym = [f64; 3];

fn det(s: &Sym) -> f64 {
    s[0] * s[2] - s[1] * s[1]
}

fn inverse(s: &Sym) -> Sym {
    let d = det(s);
    [s[2] / d, -s[1] / d, s[0] / d]
}

fn sym_times(s: &Sym, v: [f64; 2]) -> [f64; 2] {
    [s[0] * v[0] + s[1] * v[1], s[1] * v[0] + s[2] * v[1]]
}

/// T Tᵀ for the relative covariance factor T = [θ₀, 0; θ₁, θ₂].
fn factor_squared(theta: &[f64; 3]) -> Sym {
    let [a, b, c] = *theta;
    [a * a, a * b, b * b + c * c]
}

/// Aᵢ's determinant and Kᵢ = T Aᵢ⁻¹ Tᵀ for a design G, with Aᵢ = TᵀGT + I, written
/// out for the lower-triangular T = [θ₀, 0; θ₁, θ₂]: this runs for every pattern at
/// every evaluation of the criterion.
#[inline]
fn det_and_k(theta: &[f64; 3], g: &Sym) -> (f64, Sym) {
    let [a, b, c] = *theta;
    let a00 = a * a * g[0] + 2.0 * a * b * g[1] + b * b * g[2] + 1.0;
    let a01 = c * (a * g[1] + b * g[2]);
    let a11 = c * c * g[2] + 1.0;
    let det = a00 * a11 - a01 * a01;
    let (i00, i01, i11) = (a11 / det, -a01 / det, a00 / det);
    (det, [a * a * i00, a * (b * i00 + c * i01), b * b * i00 + 2.0 * b * c * i01 + c * c * i11])
}

/// The criterion's sums over a run of patterns: (Σ log|Aᵢ|, M, v, Σ yᵀy − Σ gᵀKg).
type Parts = (f64, Sym, [f64; 2], f64);

fn parts_of(theta: &[f64; 3], patterns: &[(Sym, Pattern)]) -> Parts {
    let (mut logdet, mut m, mut v, mut w) = (0.0, [0.0; 3], [0.0; 2], 0.0);
    // |Aᵢ| ≥ 1 (Aᵢ is I plus a positive semi-definite matrix), so the determinants of
    // single-series patterns are multiplied up and their logarithm taken now and then:
    // where most patterns hold one series, the logarithms were half the cost.
    let mut product = 1.0;
    for (g, p) in patterns {
        let (det, k) = det_and_k(theta, g);
        if p.series == 1.0 {
            product *= det;
            if product > 1e250 {
                logdet += product.ln();
                product = 1.0;
            }
        } else {
            logdet += p.series * det.ln();
        }
        // G K G, G K h and tr(K H), for symmetric G, K and H.
        let r = [
            g[0] * k[0] + g[1] * k[1],
            g[0] * k[1] + g[1] * k[2],
            g[1] * k[0] + g[2] * k[1],
            g[1] * k[1] + g[2] * k[2],
        ];
        m[0] += p.series * (g[0] - (r[0] * g[0] + r[1] * g[1]));
        m[1] += p.series * (g[1] - (r[0] * g[1] + r[1] * g[2]));
        m[2] += p.series * (g[2] - (r[2] * g[1] + r[3] * g[2]));
        let kh = sym_times(&k, p.g);
        let gkh = sym_times(g, kh);
        v[0] += p.g[0] - gkh[0];
        v[1] += p.g[1] - gkh[1];
        w += p.yy - (k[0] * p.gg[0] + 2.0 * k[1] * p.gg[1] + k[2] * p.gg[2]);
    }
    (logdet + product.ln(), m, v, w)
}

/// Patterns per parallel part of an evaluation; below two parts' worth an evaluation
/// runs on one thread.
const PATTERNS_PER_PART: usize = 16_384;

/// Series that share their sessions (so their Gᵢ), added up.
#[derive(Debug, Clone, Default, PartialEq)]
struct Pattern {
    series: f64,
    /// Σ gᵢ over the pattern's series.
    g: [f64; 2],
    /// Σ gᵢgᵢᵀ.
    gg: Sym,
    /// Σ yᵢᵀyᵢ.
    yy: f64,
}

/// The data of one measure's model, series by series. Scores are taken less `center`
/// (the intercept is given back on the scores' own scale), which keeps the sums of
/// squares small where scores sit far from zero.
#[derive(Debug, Clone)]
pub struct GrowthData {
    center: f64,
    /// By (scores, Σ session, Σ session²): sessions are whole numbers, so equal keys are
    /// exactly equal designs. (A session may be as large as 2³¹, so its square is summed
    /// in 128 bits.)
    patterns: BTreeMap<(u32, i64, i128), Pattern>,
    series: u64,
    scores: u64,
}

/// One series' design and response sums, as the model sees it.
struct SeriesSums {
    key: (u32, i64, i128),
    g: [f64; 2],
    yy: f64,
}

impl SeriesSums {
    fn of(points: &[(i32, f64)], center: f64) -> SeriesSums {
        let (mut s1, mut s2, mut g, mut yy) = (0i64, 0i128, [0.0; 2], 0.0);
        for &(x, y) in points {
            let (x, y) = (i64::from(x), y - center);
            s1 += x;
            s2 += i128::from(x * x);
            g[0] += y;
            g[1] += x as f64 * y;
            yy += y * y;
        }
        SeriesSums { key: (points.len() as u32, s1, s2), g, yy }
    }

    fn design(&self) -> Sym {
        let (n, s1, s2) = self.key;
        [f64::from(n), s1 as f64, s2 as f64]
    }
}

impl GrowthData {
    pub fn new(center: f64) -> GrowthData {
        GrowthData { center, patterns: BTreeMap::new(), series: 0, scores: 0 }
    }

    /// Adds a series: (sessions since baseline, score) in any order.
    pub fn add(&mut self, points: &[(i32, f64)]) {
        if points.is_empty() {
            return;
        }
        let s = SeriesSums::of(points, self.center);
        let p = self.patterns.entry(s.key).or_default();
        p.series += 1.0;
        p.g[0] += s.g[0];
        p.g[1] += s.g[1];
        p.gg[0] += s.g[0] * s.g[0];
        p.gg[1] += s.g[0] * s.g[1];
        p.gg[2] += s.g[1] * s.g[1];
        p.yy += s.yy;
        self.series += 1;
        self.scores += points.len() as u64;
    }

    /// The data of the series with at least `min` scores alone. A series' pattern key
    /// holds its count of scores, so these are whole patterns, with the very sums that
    /// adding those series alone would give.
    pub fn with_min_scores(&self, min: usize) -> GrowthData {
        let mut part = GrowthData::new(self.center);
        for (key, p) in self.patterns.range((min as u32, i64::MIN, i128::MIN)..) {
            part.patterns.insert(*key, p.clone());
            part.series += p.series as u64;
            part.scores += u64::from(key.0) * p.series as u64;
        }
        part
    }

    /// How many series and scores were added.
    pub fn counts(&self) -> (u64, u64) {
        (self.series, self.scores)
    }

    /// The patterns in key order, each with its design Gᵢ.
    fn flat(&self) -> Vec<(Sym, Pattern)> {
        let design = |&(n, s1, s2): &(u32, i64, i128)| [f64::from(n), s1 as f64, s2 as f64];
        self.patterns.iter().map(|(key, p)| (design(key), p.clone())).collect()
    }

    /// Every `step`-th pattern (in key order) as data of their own: a sample of the
    /// designs, to start the search near the optimum when patterns are many.
    fn every(&self, step: usize) -> GrowthData {
        let mut sample = GrowthData::new(self.center);
        for (key, p) in self.patterns.iter().step_by(step) {
            sample.series += p.series as u64;
            sample.scores += u64::from(key.0) * p.series as u64;
            sample.patterns.insert(*key, p.clone());
        }
        sample
    }
}

/// The criterion's parts at θ over the patterns, in parallel parts whose sums are added
/// in pattern order (so the result does not depend on the threads).
fn parts(theta: &[f64; 3], patterns: &[(Sym, Pattern)]) -> Parts {
    if patterns.len() < 2 * PATTERNS_PER_PART {
        return parts_of(theta, patterns);
    }
    use rayon::prelude::*;
    let each: Vec<Parts> = patterns.par_chunks(PATTERNS_PER_PART).map(|run| parts_of(theta, run)).collect();
    each.into_iter().fold((0.0, [0.0; 3], [0.0; 2], 0.0), |(l, m, v, w), (l2, m2, v2, w2)| {
        (l + l2, [m[0] + m2[0], m[1] + m2[1], m[2] + m2[2]], [v[0] + v2[0], v[1] + v2[1]], w + w2)
    })
}

/// The profiled criterion at θ from its parts: REML or ML deviance (+∞ where it is not
/// defined), for `n` scores.
fn criterion(theta: &[f64; 3], patterns: &[(Sym, Pattern)], n: f64, reml: bool) -> f64 {
    let (logdet, m, v, w) = parts(theta, patterns);
    let beta = sym_times(&inverse(&m), v);
    let r2 = w - (beta[0] * v[0] + beta[1] * v[1]);
    let dof = if reml { n - 2.0 } else { n };
    let d = logdet + dof * (1.0 + (2.0 * std::f64::consts::PI * r2 / dof).ln());
    let d = if reml { d + det(&m).ln() } else { d };
    if d.is_finite() && det(&m) > 0.0 && r2 > 0.0 {
        d
    } else {
        f64::INFINITY
    }
}

/// Above this many patterns the search starts from the optimum of a sample of them.
const SAMPLE_PATTERNS: usize = 20_000;

impl GrowthData {
    /// θ at the optimum of the criterion, and how many evaluations it took. With many
    /// patterns (sessions numbered by an appointment counter give every series its own),
    /// each evaluation over all of them is costly: the simplex runs on a sample of the
    /// patterns, and the full data are only used to polish (and, where the polish cannot
    /// finish, to search again from the sample's optimum with a small simplex).
    fn optimum(&self, patterns: &[(Sym, Pattern)], reml: bool) -> Option<([f64; 3], u32)> {
        self.optimum_sampling(patterns, reml, SAMPLE_PATTERNS)
    }

    /// [`GrowthData::optimum`] over `patterns` (this data's, [`GrowthData::flat`]),
    /// sampling above `most` of them.
    fn optimum_sampling(&self, patterns: &[(Sym, Pattern)], reml: bool, most: usize) -> Option<([f64; 3], u32)> {
        let n = self.scores as f64;
        let f = |t: &[f64; 3]| criterion(t, patterns, n, reml);
        let start = [1.0, 0.0, 1.0];
        if patterns.len() <= most {
            let (x, fx, e1) = nelder_mead(&f, start, 0.5);
            let (x, _, _, e2) = polish(&f, x, fx);
            return Some((x, e1 + e2));
        }
        let sample = self.every(patterns.len().div_ceil(most));
        let (near, _) = sample.optimum_sampling(&sample.flat(), reml, most)?;
        if !f(&near).is_finite() {
            return None;
        }
        let (x, _, done, e1) = polish(&f, near, f(&near));
        if done {
            return Some((x, e1 + 1));
        }
        let (x, fx, e2) = nelder_mead(&f, x, 0.05);
        let (x, _, _, e3) = polish(&f, x, fx);
        Some((x, e1 + e2 + e3 + 1))
    }

    /// Fits the model by REML (`reml`) or maximum likelihood. `None` when the data cannot
    /// identify it: fewer than three series, or no more scores than twice the series
    /// (lme4 refuses such a model too), or sessions that never vary.
    pub fn fit(&self, reml: bool) -> Option<GrowthFit> {
        self.fit_by(reml, |patterns| self.optimum(patterns, reml))
    }

    /// [`GrowthData::fit`] with the search started at `near`, the optimum of related data
    /// (a measure's whole model for its longer series): Newton steps from there, and a
    /// small simplex first where they cannot finish, as after a sample's optimum.
    pub fn fit_near(&self, reml: bool, near: [f64; 3]) -> Option<GrowthFit> {
        self.fit_by(reml, |patterns| {
            let n = self.scores as f64;
            let f = |t: &[f64; 3]| criterion(t, patterns, n, reml);
            if !f(&near).is_finite() {
                return self.optimum(patterns, reml);
            }
            let (x, _, done, e1) = polish(&f, near, f(&near));
            if done {
                return Some((x, e1 + 1));
            }
            let (x, fx, e2) = nelder_mead(&f, x, 0.05);
            let (x, _, _, e3) = polish(&f, x, fx);
            Some((x, e1 + e2 + e3 + 1))
        })
    }

    fn fit_by(
        &self,
        reml: bool,
        optimum: impl FnOnce(&[(Sym, Pattern)]) -> Option<([f64; 3], u32)>,
    ) -> Option<GrowthFit> {
        let n = self.scores as f64;
        if self.series < 3 || self.scores <= 2 * self.series {
            return None;
        }
        let patterns = self.flat();
        let (theta, evaluations) = optimum(&patterns)?;
        let d = criterion(&theta, &patterns, n, reml);
        if !d.is_finite() {
            return None;
        }
        let (_, m, v, w) = parts(&theta, &patterns);
        let m_inv = inverse(&m);
        let beta = sym_times(&m_inv, v);
        let r2 = w - (beta[0] * v[0] + beta[1] * v[1]);
        let sigma2 = r2 / if reml { n - 2.0 } else { n };
        let cov = factor_squared(&theta).map(|c| c * sigma2);
        let (sd_intercept, sd_slope) = (cov[0].sqrt(), cov[2].sqrt());
        // Parameters: two fixed effects, three covariance terms and σ.
        let k = 6.0;
        // lme4's isSingular: a variance on its boundary, a diagonal entry of T below 1e-4
        // (the entries are relative to σ). Scores that all lie on their series' lines
        // leave r² at rounding, where T means nothing: a degenerate fit, flagged alike.
        let degenerate = r2 <= DEGENERATE_RESIDUAL * w;
        let singular = theta[0].abs() < SINGULAR_TOLERANCE || theta[2].abs() < SINGULAR_TOLERANCE || degenerate;
        Some(GrowthFit {
            reml,
            series: self.series,
            scores: self.scores,
            intercept: beta[0] + self.center,
            slope: beta[1],
            se_intercept: (sigma2 * m_inv[0]).sqrt(),
            se_slope: (sigma2 * m_inv[2]).sqrt(),
            sd_intercept,
            sd_slope,
            correlation: (sd_intercept > 0.0 && sd_slope > 0.0).then(|| cov[1] / (sd_intercept * sd_slope)),
            sigma: sigma2.sqrt(),
            log_likelihood: -d / 2.0,
            criterion: d,
            aic: d + 2.0 * k,
            bic: d + k * n.ln(),
            theta,
            singular,
            own_slope_variance: theta[2].abs() >= SINGULAR_TOLERANCE && !degenerate,
            evaluations,
            center: self.center,
            beta_centered: beta,
        })
    }
}

/// A fitted growth model of one measure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrowthFit {
    /// REML (the default, as lme4's) or maximum likelihood.
    pub reml: bool,
    pub series: u64,
    pub scores: u64,
    /// The average score at baseline, and its change per session.
    pub intercept: f64,
    pub slope: f64,
    pub se_intercept: f64,
    pub se_slope: f64,
    /// How much series differ in their baseline and in their slope (SDs of the random
    /// effects), and the correlation of the two (`None` when an SD is 0).
    pub sd_intercept: f64,
    pub sd_slope: f64,
    pub correlation: Option<f64>,
    /// The SD of scores around their series' own line.
    pub sigma: f64,
    pub log_likelihood: f64,
    /// The REML criterion (REML fits) or the deviance (ML fits), −2 log-likelihood.
    pub criterion: f64,
    pub aic: f64,
    pub bic: f64,
    /// The relative covariance factor's entries at the optimum.
    pub theta: [f64; 3],
    /// A boundary (singular) fit: a between-series SD estimated at zero, or no residual
    /// variation at all. The SDs, the correlation and the shrunken lines then describe
    /// a simpler model than the one asked for (lme4 warns alike).
    pub singular: bool,
    /// Evaluations of the criterion the optimiser made.
    pub evaluations: u32,
    /// The slopes vary beyond what the intercepts carry (T's slope diagonal off its
    /// boundary) and the residual is not degenerate: the slope RCI means something.
    #[serde(skip)]
    own_slope_variance: bool,
    #[serde(skip)]
    center: f64,
    #[serde(skip)]
    beta_centered: [f64; 2],
}

impl GrowthFit {
    /// A series' own line under the model, (intercept, slope): the fixed effects plus its
    /// conditional modes (BLUPs) bᵢ = Kᵢ (gᵢ − Gᵢ β̂), which pull a short or noisy
    /// series toward the average.
    pub fn series_line(&self, points: &[(i32, f64)]) -> (f64, f64) {
        let (b, _) = self.conditional_modes(points);
        (self.intercept + b[0], self.slope + b[1])
    }

    /// A series' conditional modes bᵢ and its Kᵢ (σ² Kᵢ is their conditional covariance).
    fn conditional_modes(&self, points: &[(i32, f64)]) -> ([f64; 2], Sym) {
        let s = SeriesSums::of(points, self.center);
        let design = s.design();
        let (_, k) = det_and_k(&self.theta, &design);
        let fitted = sym_times(&design, self.beta_centered);
        (sym_times(&k, [s.g[0] - fitted[0], s.g[1] - fitted[1]]), k)
    }

    /// clinicalsignificance's HLM reliable-change index of a series: the conditional mode
    /// of its slope deviation from the average slope, over its conditional SD. Given the
    /// data (β at its estimate, as lme4's `condVar`), the random effects have covariance
    /// σ² Kᵢ. Not given where the slopes have no variance of their own (T's slope diagonal
    /// at its boundary, or no residual variation): the slope deviation is then a multiple
    /// of the intercept's, its mode and SD both near 0, and their ratio would measure the
    /// intercept.
    pub fn gives_slope_rci(&self) -> bool {
        self.own_slope_variance
    }

    /// The series' slope RCI (see [`GrowthFit::gives_slope_rci`]).
    pub fn slope_rci(&self, points: &[(i32, f64)]) -> Option<f64> {
        if !self.own_slope_variance {
            return None;
        }
        let (b, k) = self.conditional_modes(points);
        let sd = self.sigma * k[2].sqrt();
        (sd > 0.0 && sd.is_finite()).then(|| b[1] / sd)
    }
}

/// Evaluations one simplex search may make. A well-posed fit takes 250–500; a criterion
/// that is flat to its rounding (scores without any spread) would keep the simplex
/// chasing rounding noise.
const MAX_EVALUATIONS: u32 = 2000;

/// Minimises `f` over ℝ³ by Nelder and Mead's simplex (standard coefficients), from
/// `start` with steps of `step` (relative where a coordinate is not near 0), restarted
/// from its best point with smaller steps until a restart no longer improves it.
/// Returns the point, its value and how many evaluations were made.
fn nelder_mead(f: &impl Fn(&[f64; 3]) -> f64, start: [f64; 3], step: f64) -> ([f64; 3], f64, u32) {
    let evaluations = std::cell::Cell::new(0u32);
    let eval = |x: &[f64; 3]| {
        evaluations.set(evaluations.get() + 1);
        f(x)
    };
    let (mut best, mut best_f) = (start, eval(&start));
    let mut step = step;
    for _restart in 0..50 {
        let mut simplex: Vec<([f64; 3], f64)> = vec![(best, best_f)];
        for i in 0..3 {
            let mut x = best;
            x[i] += if x[i].abs() > 1e-3 { step * x[i].abs() } else { step };
            simplex.push((x, eval(&x)));
        }
        while evaluations.get() < MAX_EVALUATIONS {
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            let (lo, hi) = (simplex[0].1, simplex[3].1);
            // (Where the criterion is undefined at every vertex there is nothing to follow.)
            if !lo.is_finite() || (hi - lo).abs() <= 1e-10 * (1.0 + lo.abs()) {
                break;
            }
            let centroid = |k: usize| (simplex[0].0[k] + simplex[1].0[k] + simplex[2].0[k]) / 3.0;
            let c = [centroid(0), centroid(1), centroid(2)];
            let worst = simplex[3].0;
            let towards = |t: f64| [0, 1, 2].map(|k| c[k] + t * (worst[k] - c[k]));
            let reflected = towards(-1.0);
            let fr = eval(&reflected);
            if fr < simplex[0].1 {
                let expanded = towards(-2.0);
                let fe = eval(&expanded);
                simplex[3] = if fe < fr { (expanded, fe) } else { (reflected, fr) };
            } else if fr < simplex[2].1 {
                simplex[3] = (reflected, fr);
            } else {
                let contracted = if fr < simplex[3].1 { towards(-0.5) } else { towards(0.5) };
                let fc = eval(&contracted);
                if fc < fr.min(simplex[3].1) {
                    simplex[3] = (contracted, fc);
                } else {
                    // Shrink toward the best point.
                    let b = simplex[0].0;
                    for s in simplex.iter_mut().skip(1) {
                        s.0 = [0, 1, 2].map(|k| b[k] + 0.5 * (s.0[k] - b[k]));
                        s.1 = eval(&s.0);
                    }
                }
            }
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let improved = best_f - simplex[0].1 > 1e-13 * (1.0 + best_f.abs());
        (best, best_f) = (simplex[0].0, simplex[0].1);
        if (!improved && step < 1e-2) || evaluations.get() >= MAX_EVALUATIONS {
            break;
        }
        step = (step * 0.1).max(1e-6);
    }
    (best, best_f, evaluations.get())
}

/// Newton steps on central-difference derivatives from `best` (where `f` is `best_f`).
/// The simplex stops where the criterion is flat to its rounding, which leaves θ good to
/// about 1e-6 only; the polish finds where the gradient vanishes, which rounding disturbs
/// much less (steps of 1e-5: smaller ones drown in rounding, larger ones in the third
/// derivative; on sleepstudy θ then agrees with the exact solution to about 1e-9).
/// Returns the point (θ with a non-negative diagonal, as lme4 reports it: T and −T, or T
/// with its second column negated, give the same covariance), its value, whether the
/// steps came down to 1e-9, and the evaluations made.
fn polish(f: &impl Fn(&[f64; 3]) -> f64, mut best: [f64; 3], mut best_f: f64) -> ([f64; 3], f64, bool, u32) {
    let mut evaluations = 0u32;
    let mut eval = |x: &[f64; 3]| {
        evaluations += 1;
        f(x)
    };
    let mut done = false;
    for _ in 0..8 {
        let h = best.map(|t| 1e-5 * (1.0 + t.abs()));
        let at = |i: usize, di: f64, j: usize, dj: f64| {
            let mut x = best;
            x[i] += di;
            x[j] += dj;
            x
        };
        let mut grad = [0.0; 3];
        let mut hess = [[0.0; 3]; 3];
        for i in 0..3 {
            let (up, down) = (eval(&at(i, h[i], i, 0.0)), eval(&at(i, -h[i], i, 0.0)));
            grad[i] = (up - down) / (2.0 * h[i]);
            hess[i][i] = (up - 2.0 * best_f + down) / (h[i] * h[i]);
            for j in 0..i {
                let mut corner = |si: f64, sj: f64| eval(&at(i, si * h[i], j, sj * h[j]));
                let v = (corner(1.0, 1.0) - corner(1.0, -1.0) - corner(-1.0, 1.0) + corner(-1.0, -1.0))
                    / (4.0 * h[i] * h[j]);
                (hess[i][j], hess[j][i]) = (v, v);
            }
        }
        let Some(step) = solve3(&hess, &grad) else { break };
        let next = [0, 1, 2].map(|k| best[k] - step[k]);
        let f_next = eval(&next);
        // Near the optimum the criterion is flat to its rounding: a step that does not
        // raise it beyond that is taken.
        if f_next > best_f + 1e-12 * (1.0 + best_f.abs()) {
            break;
        }
        let size = step.iter().zip(&best).map(|(s, t)| s.abs() / (1.0 + t.abs())).fold(0.0, f64::max);
        (best, best_f) = (next, f_next.min(best_f));
        if size < 1e-9 {
            done = true;
            break;
        }
    }
    if best[0] < 0.0 {
        best[0] = -best[0];
        best[1] = -best[1];
    }
    best[2] = best[2].abs();
    (best, best_f, done, evaluations)
}

/// Solves the 3 × 3 system `a x = b` by Cramer's rule; `None` unless `a` is positive
/// definite (a Newton step is only taken toward a minimum).
fn solve3(a: &[[f64; 3]; 3], b: &[f64; 3]) -> Option<[f64; 3]> {
    let det3 = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let minor2 = a[0][0] * a[1][1] - a[0][1] * a[1][0];
    let d = det3(a);
    if !(a[0][0] > 0.0 && minor2 > 0.0 && d > 0.0) {
        return None;
    }
    Some([0, 1, 2].map(|k| {
        let mut m = *a;
        for (row, &bi) in m.iter_mut().zip(b) {
            row[k] = bi;
        }
        det3(&m) / d
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lme4's sleepstudy: 18 subjects, reaction times on days 0–9.
    fn sleepstudy() -> Vec<Vec<(i32, f64)>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lme4_sleepstudy.csv");
        let text = std::fs::read_to_string(path).unwrap();
        let mut by_subject: BTreeMap<String, Vec<(i32, f64)>> = BTreeMap::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            by_subject
                .entry(f[2].trim_matches('"').to_string())
                .or_default()
                .push((f[1].parse().unwrap(), f[0].parse().unwrap()));
        }
        by_subject.into_values().collect()
    }

    fn close(what: &str, ours: f64, theirs: f64, rel: f64) {
        assert!((ours - theirs).abs() <= rel * theirs.abs(), "{what}: {ours} against {theirs}");
    }

    /// The exact (closed-form) rows of the lme4 reference, by REML and ML: the design is
    /// balanced, so the optimum is known without an optimiser.
    #[test]
    fn sleepstudy_fits_equal_the_exact_lme4_values() {
        let mut data = GrowthData::new(300.0);
        for s in sleepstudy() {
            data.add(&s);
        }
        assert_eq!(data.counts(), (18, 180));
        assert_eq!(data.patterns.len(), 1, "every subject has days 0–9");
        let mut reference = csv::Reader::from_path(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ref_lme4_sleepstudy_summary.csv"),
        )
        .unwrap();
        let headers = reference.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = reference.records().map(Result::unwrap).collect();
        for (reml, exact) in [(true, "sleepstudy_REML_closed_form"), (false, "sleepstudy_ML_closed_form")] {
            let row = rows.iter().find(|r| &r[0] == exact).unwrap();
            let theirs = |column: &str| row[headers.iter().position(|h| h == column).unwrap()].parse::<f64>().unwrap();
            let fit = serde_json::to_value(data.fit(reml).unwrap()).unwrap();
            let criterion = if reml { "REMLcrit" } else { "deviance_ML" };
            // Fixed effects and likelihoods to rounding; the variance terms to the
            // precision of the optimum (lme4's tight optimiser reaches 2e-9 to 1.1e-6).
            for (ours, column, rel) in [
                ("intercept", "fixef_intercept", 1e-12),
                ("slope", "fixef_slope", 1e-12),
                ("se_intercept", "se_intercept", 1e-8),
                ("se_slope", "se_slope", 1e-8),
                ("sd_intercept", "sd_intercept", 1e-8),
                ("sd_slope", "sd_slope", 1e-8),
                ("correlation", "corr_intercept_slope", 1e-7),
                ("sigma", "sigma", 1e-8),
                ("log_likelihood", "logLik", 1e-12),
                ("criterion", criterion, 1e-12),
                ("aic", "AIC", 1e-12),
                ("bic", "BIC", 1e-12),
            ] {
                close(&format!("{exact} {ours}"), fit[ours].as_f64().unwrap(), theirs(column), rel);
            }
        }
    }

    /// In a balanced design a subject's BLUP is Σ̂ V̂⁻¹ (bᵢ − β̂), with bᵢ its own OLS line
    /// and V̂ = Σ̂ + σ̂² (XᵀX)⁻¹: an independent formula for the same numbers.
    #[test]
    fn series_lines_equal_the_balanced_design_formula() {
        let subjects = sleepstudy();
        let mut data = GrowthData::new(0.0);
        for s in &subjects {
            data.add(s);
        }
        let fit = data.fit(true).unwrap();
        let sigma2 = fit.sigma * fit.sigma;
        let c = fit.correlation.unwrap() * fit.sd_intercept * fit.sd_slope;
        let cov = [fit.sd_intercept.powi(2), c, fit.sd_slope.powi(2)];
        let xtx = [10.0, 45.0, 285.0];
        let xtx_inv = inverse(&xtx);
        let v = [0, 1, 2].map(|k| cov[k] + sigma2 * xtx_inv[k]);
        // Σ̂ V̂⁻¹, row by row.
        let vi = inverse(&v);
        let shrink = [
            [cov[0] * vi[0] + cov[1] * vi[1], cov[0] * vi[1] + cov[1] * vi[2]],
            [cov[1] * vi[0] + cov[2] * vi[1], cov[1] * vi[1] + cov[2] * vi[2]],
        ];
        for s in &subjects {
            let sy: f64 = s.iter().map(|p| p.1).sum();
            let sxy: f64 = s.iter().map(|p| f64::from(p.0) * p.1).sum();
            let ols = sym_times(&xtx_inv, [sy, sxy]);
            let d = [ols[0] - fit.intercept, ols[1] - fit.slope];
            let expected = (
                fit.intercept + shrink[0][0] * d[0] + shrink[0][1] * d[1],
                fit.slope + shrink[1][0] * d[0] + shrink[1][1] * d[1],
            );
            let ours = fit.series_line(s);
            close("intercept", ours.0, expected.0, 1e-9);
            close("slope", ours.1, expected.1, 1e-9);
        }
    }

    /// The slope RCI's denominator against the textbook posterior of a series' random
    /// effects with β known, Var(b | y) = (Σ⁻¹ + ZᵀZ / σ²)⁻¹, and its numerator against
    /// the BLUP of `series_line`.
    #[test]
    fn the_slope_rci_is_the_slope_blup_over_its_conditional_sd() {
        let subjects = sleepstudy();
        let mut data = GrowthData::new(300.0);
        for s in &subjects {
            data.add(s);
        }
        let fit = data.fit(true).unwrap();
        let sigma2 = fit.sigma * fit.sigma;
        let c = fit.correlation.unwrap() * fit.sd_intercept * fit.sd_slope;
        let sigma_inv = inverse(&[fit.sd_intercept.powi(2), c, fit.sd_slope.powi(2)]);
        let ztz = [10.0, 45.0, 285.0];
        let posterior = inverse(&[0, 1, 2].map(|k| sigma_inv[k] + ztz[k] / sigma2));
        let mut signs = (0, 0);
        for s in &subjects {
            let blup = fit.series_line(s).1 - fit.slope;
            let rci = fit.slope_rci(s).unwrap();
            close("slope RCI", rci, blup / posterior[2].sqrt(), 1e-9);
            if rci > crate::stats::rates::Z95 {
                signs.0 += 1;
            } else if rci < -crate::stats::rates::Z95 {
                signs.1 += 1;
            }
        }
        // Reaction times rise with sleep deprivation (higher is worse): a few subjects'
        // slopes lie reliably above and below the average one.
        assert!(signs.0 > 0 && signs.1 > 0, "{signs:?}");
    }

    #[test]
    fn the_series_of_three_or_more_scores_taken_out_equal_those_added_alone() {
        let series: Vec<Vec<(i32, f64)>> = (0..60)
            .map(|i| (0..2 + i % 4).map(|s| (s * (1 + i % 3), 20.0 - f64::from(s) * 0.7 + f64::from(i % 7))).collect())
            .collect();
        let (mut all, mut longer) = (GrowthData::new(12.0), GrowthData::new(12.0));
        for s in &series {
            all.add(s);
            if s.len() >= 3 {
                longer.add(s);
            }
        }
        let part = all.with_min_scores(3);
        assert_eq!(part.counts(), longer.counts());
        assert!(part.counts().0 < all.counts().0, "some series have 2 scores");
        assert_eq!(part.fit(true), longer.fit(true), "the same sums, bit for bit");
    }

    #[test]
    fn a_search_started_near_the_whole_models_optimum_finds_the_longer_series_optimum() {
        let all = scattered(3000);
        let longer = all.with_min_scores(3);
        let (cold, warm) = (longer.fit(true).unwrap(), longer.fit_near(true, all.fit(true).unwrap().theta).unwrap());
        close("criterion", warm.criterion, cold.criterion, 1e-13);
        for k in 0..3 {
            assert!((warm.theta[k] - cold.theta[k]).abs() < 1e-7 * (1.0 + cold.theta[k].abs()), "{warm:?} {cold:?}");
        }
        assert!(warm.evaluations < cold.evaluations, "{} against {}", warm.evaluations, cold.evaluations);
    }

    #[test]
    fn unbalanced_series_are_grouped_by_their_sessions_and_refused_when_too_few() {
        let mut data = GrowthData::new(10.0);
        data.add(&[(0, 20.0), (1, 18.0)]);
        data.add(&[(1, 15.0), (0, 19.0)]);
        data.add(&[(0, 16.0), (2, 12.0)]);
        assert_eq!(data.patterns.len(), 2, "the same sessions in another order are one design");
        assert_eq!(data.counts(), (3, 6));
        assert!(data.fit(true).is_none(), "6 scores are not more than twice 3 series");
        data.add(&[(0, 17.0), (3, 11.0)]);
        data.add(&[(0, 22.0), (1, 21.0), (2, 17.0), (4, 14.0)]);
        data.add(&[(0, 12.0), (3, 9.0), (5, 8.0)]);
        let fit = data.fit(true).expect("15 scores of 6 series");
        assert!(fit.slope < 0.0 && fit.sigma > 0.0, "{fit:?}");
    }

    /// Series of 2 to 7 scores at pseudo-random sessions (most series their own pattern),
    /// with a true slope of −0.5 a session that varies between series.
    fn scattered(series: usize) -> GrowthData {
        let mut data = GrowthData::new(15.0);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for _ in 0..series {
            let (len, start, slope) =
                (2 + next(6) as usize, 15.0 + next(100) as f64 / 10.0, -0.5 + (next(60) as f64 - 30.0) / 100.0);
            let mut x = 0;
            let points: Vec<(i32, f64)> = (0..len)
                .map(|_| {
                    let p = (x, start + slope * f64::from(x) + (next(40) as f64 - 20.0) / 10.0);
                    x += 1 + next(40) as i32;
                    p
                })
                .collect();
            data.add(&points);
        }
        data
    }

    #[test]
    fn a_search_started_from_a_sample_of_the_patterns_finds_the_same_optimum() {
        let data = scattered(3000);
        assert!(data.patterns.len() > 1000, "{} patterns", data.patterns.len());
        let n = data.scores as f64;
        let (all, _) = data.optimum_sampling(&data.flat(), true, usize::MAX).unwrap();
        let (sampled, _) = data.optimum_sampling(&data.flat(), true, 200).unwrap();
        let patterns = data.flat();
        let (f_all, f_sampled) = (criterion(&all, &patterns, n, true), criterion(&sampled, &patterns, n, true));
        close("criterion", f_sampled, f_all, 1e-13);
        for k in 0..3 {
            assert!((all[k] - sampled[k]).abs() < 1e-7 * (1.0 + all[k].abs()), "θ{k}: {all:?} against {sampled:?}");
        }
    }

    #[test]
    fn parts_summed_in_parallel_equal_one_pass() {
        let data = scattered(3 * PATTERNS_PER_PART);
        let patterns = data.flat();
        assert!(patterns.len() >= 2 * PATTERNS_PER_PART, "{} patterns: the parallel path", patterns.len());
        let theta = [1.3, -0.2, 0.4];
        let (one, split) = (parts_of(&theta, &patterns), parts(&theta, &patterns));
        close("log-determinants", split.0, one.0, 1e-13);
        for k in 0..3 {
            close("M", split.1[k], one.1[k], 1e-13);
        }
        close("w", split.3, one.3, 1e-13);
        assert_eq!(parts(&theta, &patterns), split, "the same sums on every run");
    }

    #[test]
    fn scores_without_any_spread_end_the_search_without_a_slope() {
        // r² is 0 up to rounding for every θ: a degenerate model (lme4 warns of a
        // singular fit), which must neither hang the search nor invent a change.
        let mut data = GrowthData::new(0.0);
        for _ in 0..5 {
            data.add(&[(0, 10.0), (1, 10.0), (2, 10.0)]);
        }
        let (_, evaluations) = data.optimum(&data.flat(), true).unwrap();
        assert!(evaluations < 5000, "{evaluations} evaluations");
        if let Some(fit) = data.fit(true) {
            assert!(fit.slope.abs() < 1e-9 && (fit.intercept - 10.0).abs() < 1e-9, "{fit:?}");
            assert!(fit.singular, "a fit without residual variation is flagged: {fit:?}");
        }
    }

    /// Copies of one series carry no between-series variation: both SDs go to their
    /// boundary at 0, which lme4's isSingular reports; sleepstudy's fit is regular.
    #[test]
    fn a_variance_at_its_boundary_is_a_singular_fit() {
        let mut data = GrowthData::new(10.0);
        for _ in 0..6 {
            data.add(&[(0, 14.0), (1, 11.0), (2, 12.0), (3, 8.0)]);
        }
        let fit = data.fit(true).unwrap();
        assert!(fit.singular, "{fit:?}");
        assert!(fit.sd_intercept < 1e-3 && fit.sd_slope < 1e-3, "{fit:?}");
        assert_eq!(fit.slope_rci(&[(0, 14.0), (1, 11.0), (2, 12.0), (3, 8.0)]), None, "no slope variance of its own");
        // The fixed line is then the pooled least-squares line: Sxy = −8.5, Sxx = 5, so
        // slope −1.7 and intercept 11.25 + 1.7 × 1.5 = 13.8.
        close("slope", fit.slope, -1.7, 1e-6);
        close("intercept", fit.intercept, 13.8, 1e-6);
        let mut data = GrowthData::new(300.0);
        for s in sleepstudy() {
            data.add(&s);
        }
        assert!(!data.fit(true).unwrap().singular);
    }

    /// Centering the scores only moves the intercept: the same fit for any centre.
    #[test]
    fn the_centre_does_not_change_the_fit() {
        let fits: Vec<GrowthFit> = [0.0, 250.0, -1000.0]
            .iter()
            .map(|&c| {
                let mut data = GrowthData::new(c);
                for s in sleepstudy() {
                    data.add(&s[1..]);
                }
                data.fit(true).unwrap()
            })
            .collect();
        for f in &fits[1..] {
            close("intercept", f.intercept, fits[0].intercept, 1e-10);
            close("slope", f.slope, fits[0].slope, 1e-10);
            // Scores far from the centre cost digits to cancellation in r² (which is why
            // they are centred), and the optimum moves within them.
            close("sd slope", f.sd_slope, fits[0].sd_slope, 1e-6);
            close("criterion", f.criterion, fits[0].criterion, 1e-11);
        }
    }
}
