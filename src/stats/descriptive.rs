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
/// Mean and SD (n − 1) of a sample; SD is `None` below two values.
pub fn mean_sd(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (Some(mean), None);
    }
    let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    (Some(mean), Some((ss / (n - 1.0)).sqrt()))
}
