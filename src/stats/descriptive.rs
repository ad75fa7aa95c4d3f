//! Descriptive statistics shared by the analyses.

/// The quantile of sorted values by R's default (type 7) definition.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    type7(sorted.len(), p, |k| sorted[k])
}

/// The type-7 quantile of `n` sorted values, the `k`-th of which is `at(k)`: every
/// quantile here goes through this one interpolation, so all agree to the last bit.
pub fn type7(n: usize, p: f64, at: impl Fn(usize) -> f64) -> f64 {
    let h = (n - 1) as f64 * p;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    let hi = (lo + 1).min(n - 1);
    at(lo) + frac * (at(hi) - at(lo))
}
