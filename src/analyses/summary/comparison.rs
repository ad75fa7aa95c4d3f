//! The headline rates beside an earlier period's (`--compare-to`) and beside published
//! standards.

use super::*;

/// The headline rates of this period beside an earlier one's.
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonSummary {
    /// The periods, as the days of the final scores they cover (`YYYY-MM-DD`).
    pub period: (String, String),
    pub earlier: (String, String),
    pub rates: Vec<RateChange>,
}

/// One rate now and then, with the difference (now − then) and its 95 % interval
/// (Newcombe's hybrid score interval; the periods' episodes are independent).
#[derive(Debug, Clone, Serialize)]
pub struct RateChange {
    /// A measure's code or `talking_therapies`.
    pub scope: String,
    pub rate: &'static str,
    pub now: Rate,
    pub earlier: Rate,
    pub difference: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

/// The rates `now` and `earlier` both have (the combined figures first, then each
/// measure's), with their differences.
pub fn compare(
    now: &Summary,
    earlier: &Summary,
    period: (String, String),
    before: (String, String),
) -> ComparisonSummary {
    type Rates = BTreeMap<&'static str, Rate>;
    let mut scopes: Vec<(String, &Rates, &Rates)> = Vec::new();
    if let (Some(a), Some(b)) = (&now.talking_therapies, &earlier.talking_therapies) {
        scopes.push(("talking_therapies".into(), &a.rates, &b.rates));
    }
    for (code, m) in &now.measures {
        if let Some(e) = earlier.measures.get(code) {
            scopes.push((code.clone(), &m.rates, &e.rates));
        }
    }
    let mut rates = Vec::new();
    for (scope, a, b) in scopes {
        for (key, r) in a {
            let Some(e) = b.get(key) else { continue };
            let d = crate::stats::rates::difference_newcombe(
                r.numerator,
                r.denominator,
                e.numerator,
                e.denominator,
                crate::stats::rates::Z95,
            );
            rates.push(RateChange {
                scope: scope.clone(),
                rate: key,
                now: *r,
                earlier: *e,
                difference: d.map(|x| x.0),
                ci_low: d.map(|x| x.1),
                ci_high: d.map(|x| x.2),
            });
        }
    }
    ComparisonSummary { period, earlier: before, rates }
}

/// A published standard and the run's rate beside it.
#[derive(Debug, Clone, Serialize)]
pub struct StandardResult {
    pub standard: crate::domain::standards::Standard,
    pub numerator: u64,
    pub denominator: u64,
    pub rate: Option<f64>,
    /// Whether the rate meets the standard; `None` without a rate.
    pub met: Option<bool>,
}

/// Each standard whose rate the run has, with that rate.
pub(super) fn standard_results(
    registry: &Registry,
    measures: &BTreeMap<String, MeasureSummary>,
    talking_therapies: Option<&TalkingTherapiesSummary>,
) -> Vec<StandardResult> {
    registry
        .standards()
        .iter()
        .filter_map(|s| {
            let rates = match s.scope.as_str() {
                "talking_therapies" => &talking_therapies?.rates,
                code => &measures.get(code)?.rates,
            };
            let r = rates.get(s.rate.as_str())?;
            Some(StandardResult {
                standard: s.clone(),
                numerator: r.numerator,
                denominator: r.denominator,
                rate: r.rate,
                met: r.rate.map(|v| s.met_by(v)),
            })
        })
        .collect()
}
