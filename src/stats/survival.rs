//! Kaplan–Meier estimates and the log-rank test, computed as R's survival package
//! (3.5-3) computes them for `survfit(Surv(time, status) ~ g, conf.type = "log")` and
//! `survdiff`.
//!
//! S(t) = Π_{tᵢ ≤ t} (1 − dᵢ/nᵢ); Greenwood: SE(−log S) = √Σ dᵢ/(nᵢ(nᵢ − dᵢ)), and
//! SE(S) = S · that; log-type 95 % limits S·exp(±z·SE(−log S)), the upper capped at 1;
//! Nelson–Aalen cumulative hazard Σ dᵢ/nᵢ.

use crate::stats::rates::Z95 as Z_975;
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// One distinct time of the curve (an event, a censoring, or both).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KmRow {
    pub time: f64,
    pub n_risk: u64,
    pub n_event: u64,
    pub n_censor: u64,
    pub surv: f64,
    /// Standard error of S(t); `None` once S = 0.
    pub std_err: Option<f64>,
    /// Standard error of −log S(t) (infinite once S = 0).
    pub std_err_cumhaz: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub cumhaz: f64,
}

/// A fitted curve with its summaries (survival's `print.survfit` table).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KmFit {
    pub rows: Vec<KmRow>,
    pub records: u64,
    pub events: u64,
    pub median: Option<f64>,
    pub median_lower: Option<f64>,
    pub median_upper: Option<f64>,
    /// Restricted mean survival time up to the last observed time, and its SE.
    pub rmean: f64,
    pub se_rmean: f64,
}

/// Fits the Kaplan–Meier curve of `(time, event)` pairs.
pub fn kaplan_meier(data: &[(f64, bool)]) -> KmFit {
    let mut d: Vec<(f64, bool)> = data.to_vec();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rows = Vec::new();
    let mut n_risk = d.len() as u64;
    let (mut surv, mut greenwood, mut cumhaz) = (1.0f64, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < d.len() {
        let t = d[i].0;
        let mut j = i;
        while j < d.len() && d[j].0 == t {
            j += 1;
        }
        let n_event = d[i..j].iter().filter(|x| x.1).count() as u64;
        let n_censor = (j - i) as u64 - n_event;
        if n_event > 0 {
            let (n, e) = (n_risk as f64, n_event as f64);
            surv *= 1.0 - e / n;
            greenwood += if n_risk > n_event { e / (n * (n - e)) } else { f64::INFINITY };
            cumhaz += e / n;
        }
        let se_log = greenwood.sqrt();
        let (std_err, lower, upper) = if surv > 0.0 {
            (Some(surv * se_log), Some(surv * (-Z_975 * se_log).exp()), Some((surv * (Z_975 * se_log).exp()).min(1.0)))
        } else {
            (None, None, None)
        };
        rows.push(KmRow {
            time: t,
            n_risk,
            n_event,
            n_censor,
            surv,
            std_err,
            std_err_cumhaz: se_log,
            lower,
            upper,
            cumhaz,
        });
        n_risk -= (j - i) as u64;
        i = j;
    }
    let (rmean, se_rmean) = restricted_mean(&rows);
    KmFit {
        records: d.len() as u64,
        events: d.iter().filter(|x| x.1).count() as u64,
        median: quantile_time(&rows, |r| Some(r.surv)),
        median_lower: quantile_time(&rows, |r| r.lower),
        median_upper: quantile_time(&rows, |r| r.upper),
        rmean,
        se_rmean,
        rows,
    }
}

/// The time at which a curve first falls to 0.5 or below; where it sits exactly at 0.5
/// (within √ε) the median is the midpoint between that time and the next time the curve
/// drops, as survival's `quantile.survfit` does.
fn quantile_time(rows: &[KmRow], curve: impl Fn(&KmRow) -> Option<f64>) -> Option<f64> {
    let toler = f64::EPSILON.sqrt();
    let idx = rows.iter().position(|r| curve(r).is_some_and(|s| s <= 0.5 + toler))?;
    let s = curve(&rows[idx])?;
    if (s - 0.5).abs() < toler {
        let next = rows[idx + 1..].iter().find(|r| curve(r).is_none_or(|v| v < s - toler));
        return Some(next.map_or(rows[idx].time, |n| (rows[idx].time + n.time) / 2.0));
    }
    Some(rows[idx].time)
}

/// Area under the curve from 0 to the last observed time, and its standard error
/// √Σ Aᵢ² dᵢ/(nᵢ(nᵢ − dᵢ)) with Aᵢ the area beyond event time tᵢ.
fn restricted_mean(rows: &[KmRow]) -> (f64, f64) {
    let Some(last) = rows.last() else {
        return (0.0, 0.0);
    };
    let mut area_beyond = vec![0.0; rows.len()];
    let mut acc = 0.0;
    for k in (0..rows.len()).rev() {
        let next_t = if k + 1 < rows.len() { rows[k + 1].time } else { last.time };
        acc += rows[k].surv * (next_t - rows[k].time);
        area_beyond[k] = acc;
    }
    let first = rows[0].time.max(0.0);
    let rmean = first + acc;
    let var: f64 = rows
        .iter()
        .zip(&area_beyond)
        .filter(|(r, _)| r.n_event > 0 && r.n_risk > r.n_event)
        .map(|(r, a)| a * a * r.n_event as f64 / (r.n_risk as f64 * (r.n_risk - r.n_event) as f64))
        .sum();
    (rmean, var.sqrt())
}

/// The log-rank test of equal survival across groups (`survdiff`, rho = 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRank {
    pub chisq: f64,
    pub df: usize,
    pub p_value: f64,
    pub observed: Vec<f64>,
    pub expected: Vec<f64>,
}

/// Log-rank test over `(time, event, group)`; `None` with fewer than two groups.
pub fn log_rank(data: &[(f64, bool, usize)], n_groups: usize) -> Option<LogRank> {
    if n_groups < 2 {
        return None;
    }
    let mut d = data.to_vec();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut at_risk = vec![0f64; n_groups];
    for x in &d {
        at_risk[x.2] += 1.0;
    }
    let (mut obs, mut exp) = (vec![0f64; n_groups], vec![0f64; n_groups]);
    let mut var = vec![vec![0f64; n_groups]; n_groups];
    let mut i = 0;
    while i < d.len() {
        let t = d[i].0;
        let mut j = i;
        let mut deaths = vec![0f64; n_groups];
        while j < d.len() && d[j].0 == t {
            if d[j].1 {
                deaths[d[j].2] += 1.0;
            }
            j += 1;
        }
        let dt: f64 = deaths.iter().sum();
        let nt: f64 = at_risk.iter().sum();
        if dt > 0.0 {
            for g in 0..n_groups {
                obs[g] += deaths[g];
                exp[g] += dt * at_risk[g] / nt;
                if nt > 1.0 {
                    let f = dt * (nt - dt) / (nt * nt * (nt - 1.0));
                    for h in 0..n_groups {
                        let delta = if g == h { at_risk[g] * nt } else { 0.0 };
                        var[g][h] += f * (delta - at_risk[g] * at_risk[h]);
                    }
                }
            }
        }
        for x in &d[i..j] {
            at_risk[x.2] -= 1.0;
        }
        i = j;
    }
    // Drop the last group: (O − E)ᵀ V⁻¹ (O − E) over the first k − 1.
    let k = n_groups - 1;
    let diff: Vec<f64> = (0..k).map(|g| obs[g] - exp[g]).collect();
    let sub: Vec<Vec<f64>> = (0..k).map(|g| var[g][..k].to_vec()).collect();
    let x = solve(sub, diff.clone())?;
    let chisq: f64 = diff.iter().zip(&x).map(|(a, b)| a * b).sum();
    let p_value = 1.0 - ChiSquared::new(k as f64).ok()?.cdf(chisq);
    Some(LogRank { chisq, df: k, p_value, observed: obs, expected: exp })
}

/// Solves A x = b by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (k, row) in rest.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + k] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_curve_by_hand() {
        // Times 1, 2+, 3, 3, 4+: S(1) = 4/5, S(3) = 4/5 · (1 − 2/3) = 4/15.
        let fit = kaplan_meier(&[(3.0, true), (1.0, true), (2.0, false), (3.0, true), (4.0, false)]);
        let s: Vec<f64> = fit.rows.iter().map(|r| r.surv).collect();
        assert_eq!(s.len(), 4);
        assert!((s[0] - 0.8).abs() < 1e-15 && (s[2] - 4.0 / 15.0).abs() < 1e-15);
        assert_eq!((fit.rows[2].n_risk, fit.rows[2].n_event, fit.rows[1].n_censor), (3, 2, 1));
        // Greenwood at t = 3: 1/(5·4) + 2/(3·1).
        let g: f64 = 1.0 / 20.0 + 2.0 / 3.0;
        assert!((fit.rows[2].std_err_cumhaz - g.sqrt()).abs() < 1e-15);
        assert_eq!(fit.median, Some(3.0));
    }

    #[test]
    fn an_exact_half_gives_the_midpoint_median() {
        // S drops to 0.5 at t = 2 and to 0 at t = 6: median (2 + 6) / 2 = 4.
        let fit = kaplan_meier(&[(2.0, true), (6.0, true)]);
        assert_eq!(fit.median, Some(4.0));
    }

    #[test]
    fn two_group_log_rank_by_hand() {
        // Group 0 fails at 1, group 1 at 2; each has one subject: at t=1, n=2, d=1:
        // E0 = 0.5, V = 1·1/4 = 0.25 → χ² = 0.25 / 0.25 = 1.
        let lr = log_rank(&[(1.0, true, 0), (2.0, true, 1)], 2).unwrap();
        assert!((lr.chisq - 1.0).abs() < 1e-12);
        assert_eq!(lr.df, 1);
        assert!((lr.p_value - 0.3173105078629141).abs() < 1e-9);
    }
}
