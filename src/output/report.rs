//! The human-readable outputs: `report.html` (one self-contained file, no scripts)
//! and the registry listing. Rendering computes no statistics: it formats the
//! `Summary` through a view model and a minijinja template with HTML auto-escaping.

use crate::analyses::summary::{Rate, Summary};
use crate::domain::outcomes::ResolvedRule;
use crate::domain::registry::{Cutoff, Direction, JtCutoff, Measure, RciMethod, Registry, ReliableChange};
use crate::stats::rates::Suppression;
use serde::Serialize;

#[derive(Clone, Copy)]
pub struct ReportInput<'a> {
    pub summary: &'a Summary,
    pub registry: &'a Registry,
    /// Published results: counts below the threshold are shown as "<N" and rates built on
    /// them are withheld, other counts rounded; [`Suppression::NONE`] for internal use.
    pub suppression: Suppression,
    pub figures: &'a [crate::output::figures::Figure],
    /// The open series that need attention, in the order to show (by therapist).
    pub attention: &'a [AttentionRow],
    /// A unit's pack (`--by`): the unit beside the practice.
    pub pack: Option<&'a PackView>,
}

/// What a unit's pack is compared with.
pub struct PackInput<'a> {
    pub kind: &'static str,
    pub unit: &'a str,
    /// The pack's own figures and the practice's.
    pub pack: &'a Summary,
    pub practice: &'a Summary,
    /// The practice's units, each with its funnel limits and flag.
    pub practice_units: &'a [crate::analyses::caseload::Unit],
    pub registry: &'a Registry,
    pub suppression: Suppression,
}

/// A unit's headline rates beside the practice's, as a pack's report opens with them.
#[derive(Debug, Clone, Serialize)]
pub struct PackView {
    /// "therapist T03", and as a heading "Therapist T03".
    pub unit: String,
    pub title: String,
    pub practice_episodes: String,
    pub rows: Vec<PackRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackRow {
    pub measure: String,
    pub label: &'static str,
    pub unit: RateView,
    pub practice: RateView,
    /// Where the unit's reliable-recovery rate lies in the practice's funnel plot.
    pub position: String,
}

/// The rates a pack sets beside the practice's, in order.
const PACK_RATES: &[(&str, &str)] = &[
    ("reliable_recovery", "Reliable recovery"),
    ("recovery", "Recovery"),
    ("reliable_improvement", "Reliable improvement"),
    ("reliable_deterioration", "Reliable deterioration"),
];

/// The unit's headline rates per measure beside the practice's, with its place in the
/// practice's funnel plot (reliable recovery).
pub fn pack_comparison(input: &PackInput) -> PackView {
    let sup = Suppressor(input.suppression);
    let mut rows = Vec::new();
    for (code, mine) in &input.pack.measures {
        let Some(theirs) = input.practice.measures.get(code) else { continue };
        let funnel = input.registry.find(code).and_then(|m| {
            input
                .practice_units
                .iter()
                .find(|u| u.kind == input.kind && u.unit == input.unit && u.measure as usize == m)
        });
        for (key, label) in PACK_RATES {
            let (Some(a), Some(b)) = (mine.rates.get(key), theirs.rates.get(key)) else { continue };
            let position = match (*key, funnel.and_then(|u| u.funnel_flag)) {
                ("reliable_recovery", Some(flag)) => funnel_position(flag),
                _ => String::new(),
            };
            rows.push(PackRow {
                measure: code.clone(),
                label,
                unit: sup.rate(label, a, ""),
                practice: sup.rate(label, b, ""),
                position,
            });
        }
    }
    let mut kind = input.kind.to_string();
    kind[..1].make_ascii_uppercase();
    PackView {
        unit: format!("{} {}", input.kind, input.unit),
        title: format!("{kind} {}", input.unit),
        practice_episodes: sup.count(input.practice.episodes),
        rows,
    }
}

/// A funnel flag in words.
fn funnel_position(flag: &str) -> String {
    match flag {
        "within" => "within the practice's limits".into(),
        f => {
            let (side, limit) = f.split_once('_').unwrap_or((f, ""));
            format!("{side} the practice's {limit} % limit")
        }
    }
}

/// An open episode that needs attention, as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionRow {
    pub therapist: String,
    pub client: String,
    pub episode: String,
    /// Each measure's first and latest score (`PHQ9 18 → 17; GAD7 11 → 15`).
    pub scores: String,
    /// Scores so far (the most of any measure).
    pub sessions: u32,
    pub latest_date: String,
    /// Every reason that applies, most serious first.
    pub reason: String,
}

/// At most this many episodes needing attention are listed in the report; all are in
/// current.csv.
pub const ATTENTION_SHOWN: usize = 200;

/// A table of label → rate rows for a report section.
#[derive(Serialize)]
struct RateTable {
    title: String,
    rows: Vec<RateView>,
}

/// A titled list of `label: value` lines.
#[derive(Serialize)]
struct Facts {
    title: String,
    rows: Vec<(String, String)>,
}

/// A rate as the report shows it: its counts (as published) and percentage.
#[derive(Debug, Clone, Serialize)]
pub struct RateView {
    label: &'static str,
    numerator: String,
    denominator: String,
    percent: String,
    denominator_note: &'static str,
}

#[derive(Serialize)]
struct MeasureView {
    code: String,
    name: String,
    episodes: String,
    in_treatment: String,
    ended: String,
    paired: String,
    at_caseness: String,
    rates: Vec<RateView>,
    outcomes: Vec<(String, String)>,
}

#[derive(Serialize)]
struct MethodView {
    code: String,
    name: String,
    /// The standard codes, e.g. `SNOMED CT 720433000` and `LOINC 44261-6`.
    codes: Vec<String>,
    better: &'static str,
    range: String,
    cutoff: String,
    reliable_change: String,
    source: String,
    unverified: String,
}

#[derive(Serialize)]
struct View {
    pack: Option<PackView>,
    standards: Vec<StandardView>,
    comparison: Option<ComparisonView>,
    figures: std::collections::BTreeMap<&'static str, Vec<crate::output::figures::Figure>>,
    trajectories: Vec<Facts>,
    sudden_gains: Vec<Facts>,
    sustained: Vec<RateTable>,
    goals: Vec<RateTable>,
    caseload: Vec<Facts>,
    version: &'static str,
    inputs: Vec<(String, String, u64, u64, u64)>,
    rows_read: u64,
    rows_used: u64,
    rows_rejected: u64,
    rejections: Vec<(String, u64)>,
    /// Per measure with any: series whose assessment is not the baseline, and series
    /// dated out of session order.
    series_checks: Vec<(String, String, String)>,
    /// Each goal check with any goals: what it is, and how many.
    goal_checks: Vec<(&'static str, String)>,
    clients: String,
    episodes: String,
    /// The extract date and the episodes ended and open on it, in a sentence.
    status_line: String,
    /// Open series needing attention (at most [`ATTENTION_SHOWN`]), and how many more.
    attention: Vec<AttentionRow>,
    attention_more: usize,
    open_series: String,
    needing_attention: String,
    no_score_days: i32,
    headline: Vec<RateView>,
    headline_title: String,
    measures: Vec<MeasureView>,
    methods: Vec<MethodView>,
    suppress_below: u64,
}

struct Suppressor(Suppression);

impl Suppressor {
    fn count(&self, n: u64) -> String {
        self.0.value(n).map_or_else(|| format!("<{}", self.0.threshold), |v| v.to_string())
    }

    /// Below this many people or episodes nothing is shown (0: results for internal use).
    fn threshold(&self) -> u64 {
        self.0.threshold
    }

    fn rate(&self, label: &'static str, r: &Rate, denominator_note: &'static str) -> RateView {
        let hidden = self.0.hides(r.numerator, r.denominator);
        RateView {
            label,
            numerator: self.count(r.numerator),
            denominator: self.count(r.denominator),
            percent: match r.rate {
                Some(_) if hidden => "suppressed".into(),
                Some(x) => format!("{:.1} %", 100.0 * x),
                None => "–".into(),
            },
            denominator_note,
        }
    }
}

/// Every rate the report shows, in order: key, label, what the denominator is.
const RATE_LABELS: &[(&str, &str, &str)] = &[
    ("recovery", "Recovery", "finished episodes at caseness at baseline"),
    ("reliable_recovery", "Reliable recovery", "finished episodes at caseness at baseline"),
    ("reliable_improvement", "Reliable improvement", "all finished episodes"),
    ("reliable_deterioration", "Reliable deterioration", "all finished episodes"),
    ("response", "Response (≥ 50 % reduction)", "finished episodes with a baseline above 0"),
    ("remission", "Remission", "finished episodes at caseness at baseline"),
    ("relapse", "Relapse", "recovered at the end and followed up"),
    ("recovery_maintained", "Recovery maintained", "recovered at the end and followed up"),
    ("improvement_lost", "Improvement lost", "reliably improved at the end and followed up"),
    ("late_improvement", "Late improvement", "not reliably improved at the end, followed up"),
    ("deteriorated_since_end", "Reliable deterioration since the end", "paired and followed up"),
    ("last_scores_held", "Last scores all below caseness", "paired with enough scores"),
    ("gbo_reliable_improvement", "GBO goals reliably improved", "goals rated at least twice"),
    ("gbo_reliable_deterioration", "GBO goals reliably worse", "goals rated at least twice"),
    ("gbo_held_at_followup", "GBO goals held at follow-up", "goals rated at follow-up"),
    ("gas_expected_attainment_at_end", "GAS expected attainment (T ≥ 50) at the end", "episodes with GAS goals"),
    ("gas_held_at_followup", "GAS attainment held at follow-up", "episodes at T ≥ 50 rated at follow-up"),
];

fn rates(s: &Suppressor, rates: &std::collections::BTreeMap<&'static str, Rate>) -> Vec<RateView> {
    RATE_LABELS.iter().filter_map(|(k, label, note)| rates.get(k).map(|r| s.rate(label, r, note))).collect()
}

/// Describes a measure's cut-off rule in words.
pub fn cutoff_text(m: &Measure, rule: Option<&ResolvedRule>) -> String {
    let resolved = rule.and_then(|r| r.cutoff).map(|c| format!(" = {}", round3(c))).unwrap_or_default();
    match (&m.cutoff, m.direction) {
        (None, _) => "none".into(),
        (Some(Cutoff::Fixed { value }), Direction::Lower) => format!("case when score ≥ {value}"),
        (Some(Cutoff::Fixed { value }), Direction::Higher) => format!("case when score < {value}"),
        (Some(Cutoff::JacobsonTruax { method, .. }), _) => {
            let letter = match method {
                JtCutoff::A => "a",
                JtCutoff::B => "b",
                JtCutoff::C => "c",
            };
            format!("Jacobson–Truax {letter} from the data{resolved}")
        }
    }
}

/// Describes a measure's reliable-change rule in words.
pub fn reliable_change_text(m: &Measure, rule: Option<&ResolvedRule>) -> String {
    match &m.reliable_change {
        None => "none".into(),
        Some(ReliableChange::Fixed { value }) => format!("change of ≥ {value} points"),
        Some(ReliableChange::Reliability { reliability, sd, method, reliability_post }) => {
            let sd_text = sd.map_or("SD of paired baselines".to_string(), |s| format!("SD {s}"));
            let post = reliability_post.map(|r| format!(", later r = {r}")).unwrap_or_default();
            let error = match method {
                RciMethod::Jt => "S_diff",
                RciMethod::Gln | RciMethod::Hll => "SE_pred",
                RciMethod::En => "SE_m",
                RciMethod::Nk => "SE",
            };
            let se = rule.and_then(|r| r.rci).map(|i| format!(", {error} = {}", round3(i.denominator)));
            let index = if *method == RciMethod::Jt { String::new() } else { format!("{} ", method.name()) };
            format!("{index}|RCI| > 1.96 (r = {reliability}{post}, {sd_text}{})", se.unwrap_or_default())
        }
    }
}

fn round3(x: f64) -> String {
    format!("{:.3}", x).trim_end_matches('0').trim_end_matches('.').to_string()
}

fn method_view(m: &Measure, rule: Option<&ResolvedRule>) -> MethodView {
    MethodView {
        code: m.code.clone(),
        name: m.name.clone(),
        codes: (m.snomed.iter().map(|c| format!("SNOMED CT {c}")))
            .chain(m.loinc.iter().map(|c| format!("LOINC {c}")))
            .collect(),
        better: match m.direction {
            Direction::Lower => "lower",
            Direction::Higher => "higher",
        },
        range: format!("{}–{}", m.min, m.max),
        cutoff: cutoff_text(m, rule),
        reliable_change: reliable_change_text(m, rule),
        source: m.source.clone(),
        unverified: m.unverified.join(", "),
    }
}

/// Renders `report.html`.
pub fn render_html(input: &ReportInput) -> String {
    render("report.html", &view_of(input))
}

fn view_of(input: &ReportInput) -> View {
    let s = input.summary;
    let sup = Suppressor(input.suppression);
    let (headline_title, headline) = headline_view(s, &sup);
    let methods = s
        .measures
        .keys()
        .filter_map(|code| input.registry.find(code))
        .map(|i| method_view(input.registry.get(i), s.measures.get(&input.registry.get(i).code).map(|m| &m.rule)))
        .collect();
    let mut figures: std::collections::BTreeMap<&'static str, Vec<crate::output::figures::Figure>> = Default::default();
    for f in input.figures {
        figures.entry(f.section).or_default().push(f.clone());
    }
    View {
        pack: input.pack.cloned(),
        standards: s.standards.iter().map(|r| standard_view(r, &sup)).collect(),
        comparison: s.comparison.as_ref().map(|c| comparison_view(c, &sup)),
        figures,
        trajectories: trajectory_facts(s, &sup),
        sudden_gains: sudden_gain_facts(s, &sup),
        sustained: sustained_tables(s, &sup),
        goals: goal_tables(s, &sup),
        caseload: caseload_facts(s, &sup),
        version: s.sustain_version,
        inputs: s
            .inputs
            .iter()
            .map(|(k, t)| (k.to_string(), t.file.clone(), t.rows_read, t.rows_used, t.rows_rejected))
            .collect(),
        rows_read: s.rows_read,
        rows_used: s.rows_used,
        rows_rejected: s.rows_rejected,
        rejections: s.rejections_by_reason.iter().map(|(k, n)| (k.replace('_', " "), *n)).collect(),
        series_checks: s
            .measures
            .iter()
            .filter(|(_, m)| m.series_checks.any())
            .map(|(code, m)| {
                let c = m.series_checks;
                (code.clone(), sup.count(c.assessment_not_baseline), sup.count(c.dates_out_of_session_order))
            })
            .collect(),
        goal_checks: s
            .goals
            .iter()
            .flat_map(|g| {
                [
                    ("Ratings name more than one parent goal", g.checks.parents_differ),
                    ("GAS ratings give different weights", g.checks.weights_differ),
                ]
            })
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| (what, sup.count(n)))
            .collect(),
        clients: sup.count(s.clients),
        episodes: sup.count(s.episodes),
        status_line: status_line(&sup, &s.status),
        attention: input.attention.iter().take(ATTENTION_SHOWN).cloned().collect(),
        attention_more: input.attention.len().saturating_sub(ATTENTION_SHOWN),
        open_series: sup.count(s.current.as_ref().map_or(0, |c| c.open_series)),
        needing_attention: sup.count(s.current.as_ref().map_or(0, |c| c.needing_attention)),
        no_score_days: s.current.as_ref().and_then(|c| c.options).map_or(0, |o| o.no_score_days),
        headline,
        headline_title,
        measures: measure_views(s, &sup),
        methods,
        suppress_below: input.suppression.threshold,
    }
}

/// The report's table of each measure's counts and rates.
fn measure_views(s: &Summary, sup: &Suppressor) -> Vec<MeasureView> {
    s.measures
        .iter()
        .map(|(code, ms)| MeasureView {
            code: code.clone(),
            name: ms.name.clone(),
            episodes: sup.count(ms.episodes),
            in_treatment: sup.count(ms.in_treatment),
            ended: sup.count(ms.ended),
            paired: sup.count(ms.paired),
            at_caseness: sup.count(ms.at_caseness),
            rates: rates(sup, &ms.rates),
            outcomes: ms.outcomes.iter().map(|(k, n)| (k.replace('_', " "), sup.count(*n))).collect(),
        })
        .collect()
}

/// The headline rates beside an earlier period's, as the report shows them.
#[derive(Serialize)]
struct ComparisonView {
    period: String,
    earlier: String,
    rows: Vec<ChangeRow>,
}

#[derive(Serialize)]
struct ChangeRow {
    scope: String,
    label: &'static str,
    now: RateView,
    earlier: RateView,
    change: String,
}

/// The rates the comparison shows, in order (those of [`PACK_RATES`]).
fn comparison_view(c: &crate::analyses::summary::ComparisonSummary, sup: &Suppressor) -> ComparisonView {
    let mut rows: Vec<(usize, ChangeRow)> = c
        .rates
        .iter()
        .filter_map(|r| {
            let label = PACK_RATES.iter().find(|(k, _)| *k == r.rate)?.1;
            let (now, earlier) = (sup.rate(label, &r.now, ""), sup.rate(label, &r.earlier, ""));
            let withheld = now.percent == "suppressed" || earlier.percent == "suppressed";
            let points = |x: f64| format!("{:+.1}", 100.0 * x).replace('-', "−");
            let change = match (r.difference, r.ci_low, r.ci_high) {
                _ if withheld => "withheld".to_string(),
                (Some(d), Some(lo), Some(hi)) => {
                    format!("{} points (95 % CI {} to {})", points(d), points(lo), points(hi))
                }
                _ => "–".to_string(),
            };
            let scope = if r.scope == "talking_therapies" { "PHQ-9 + GAD-7".to_string() } else { r.scope.clone() };
            let order = PACK_RATES.iter().position(|(k, _)| *k == r.rate).unwrap_or(usize::MAX);
            Some((order, ChangeRow { scope, label, now, earlier, change }))
        })
        .collect();
    // The scopes in their order, each's rates in the headline's.
    let scopes: Vec<String> = rows.iter().map(|(_, r)| r.scope.clone()).fold(Vec::new(), |mut v, s| {
        if !v.contains(&s) {
            v.push(s);
        }
        v
    });
    rows.sort_by_key(|(order, r)| (scopes.iter().position(|s| *s == r.scope), *order));
    let rows = rows.into_iter().map(|(_, r)| r).collect();
    ComparisonView {
        period: format!("{} to {}", c.period.0, c.period.1),
        earlier: format!("{} to {}", c.earlier.0, c.earlier.1),
        rows,
    }
}

/// A published standard beside the run's rate, as the report shows it.
#[derive(Serialize)]
struct StandardView {
    name: String,
    target: String,
    rate: RateView,
    met: &'static str,
    source: String,
}

fn standard_view(r: &crate::analyses::summary::StandardResult, sup: &Suppressor) -> StandardView {
    let s = &r.standard;
    let rate = sup.rate("", &Rate::new(r.numerator, r.denominator), "");
    let met = match r.met {
        _ if rate.percent == "suppressed" => "withheld",
        Some(true) => "met",
        Some(false) => "not met",
        None => "–",
    };
    let scope = if s.scope == "talking_therapies" { "PHQ-9 + GAD-7 combined".to_string() } else { s.scope.clone() };
    StandardView {
        name: format!("{} — {scope}", s.name),
        target: format!(
            "{} {:.0} %",
            if s.meets == crate::domain::standards::Meets::AtLeast { "≥" } else { "≤" },
            100.0 * s.target
        ),
        rate,
        met,
        source: format!(
            "{} ({}){}",
            s.source,
            s.year,
            if s.unverified { "; as commonly quoted, not checked against the publication" } else { "" }
        ),
    }
}

/// The headline table's title and rates: the NHS Talking Therapies combined figures
/// where there are any, else the first measure's.
fn headline_view(s: &Summary, sup: &Suppressor) -> (String, Vec<RateView>) {
    match (&s.talking_therapies, s.measures.iter().next()) {
        (Some(tt), _) => (
            format!(
                "NHS Talking Therapies combined PHQ-9 + GAD-7 ({} finished courses of treatment: ended, with paired \
                 scores; {} episodes still in treatment are not counted{})",
                sup.count(tt.paired),
                sup.count(s.status.open),
                match tt.rules_from_measure_file.as_slice() {
                    [] => String::new(),
                    codes =>
                        format!("; {} judged by the measure file's rule, not the NHS thresholds", codes.join(", ")),
                }
            ),
            rates(sup, &tt.rates),
        ),
        (None, Some((code, ms))) => (
            format!(
                "{code} ({} finished episodes: ended, with paired scores; {} still in treatment are not counted)",
                sup.count(ms.paired),
                sup.count(ms.in_treatment)
            ),
            rates(sup, &ms.rates),
        ),
        (None, None) => ("No episodes".into(), vec![]),
    }
}

/// Each measure's trajectory shapes, dips, not-on-track flag and growth model, as facts.
fn trajectory_facts(s: &Summary, sup: &Suppressor) -> Vec<Facts> {
    let pct = |x: Option<f64>| x.map_or("–".to_string(), |v| format!("{:.0} %", 100.0 * v));
    s.trajectories
        .iter()
        .flat_map(|t| t.by_measure.iter())
        .map(|(code, t)| {
            let mut rows: Vec<(String, String)> =
                t.shapes.iter().map(|(k, n)| (format!("shape: {}", k.replace('_', " ")), sup.count(*n))).collect();
            rows.extend(
                t.dips.iter().map(|(k, n)| (format!("dip followed by: {}", k.replace('_', " ")), sup.count(*n))),
            );
            for (label, group) in
                [("after the discomfort zone", &t.with_discomfort_zone), ("without any dip", &t.without_dip)]
            {
                if let Some(r) = group.get("reliable_improvement") {
                    let v = sup.rate("", r, "");
                    rows.push((
                        format!("reliably improved {label}"),
                        format!("{} of {} ({})", v.numerator, v.denominator, v.percent),
                    ));
                }
            }
            let a = &t.not_on_track;
            let shown = |x: Option<f64>, (k, n): (u64, u64)| if sup.0.hides(k, n) { "withheld".into() } else { pct(x) };
            rows.push((
                "not-on-track flag: sensitivity for a poor outcome".into(),
                shown(a.sensitivity, (a.flagged_poor, a.unflagged_poor)),
            ));
            rows.push((
                "not-on-track flag: specificity".into(),
                shown(a.specificity, (a.flagged_good, a.unflagged_good)),
            ));
            // A model of fewer series than the suppression threshold describes those few.
            if let Some(g) = t.growth_model.as_ref().filter(|g| g.series >= sup.threshold()) {
                let (lo, hi) = (g.slope - 1.959964 * g.se_slope, g.slope + 1.959964 * g.se_slope);
                rows.push((
                    format!("growth model ({} series): change per session", g.series),
                    format!("{:.2} points (95 % CI {lo:.2} to {hi:.2})", g.slope),
                ));
                rows.push(("growth model: score at baseline".into(), format!("{:.1}", g.intercept)));
                rows.push((
                    "growth model: SD between clients of the change per session".into(),
                    format!("{:.2} points", g.sd_slope),
                ));
                let v = &t.change_vs_typical;
                if let Some(h) = v.growth_model.as_ref().filter(|h| h.series >= sup.threshold()) {
                    let n = |k: &str| sup.count(v.series.get(k).copied().unwrap_or(0));
                    let label =
                        format!("growth model: change against the typical client ({} series, ≥ 3 scores)", h.series);
                    let value = if v.index_given {
                        format!(
                            "reliably more improvement {} · as typical {} · reliably less {}",
                            n("more_improvement"),
                            n("as_typical"),
                            n("less_improvement")
                        )
                    } else {
                        "not given: the slopes vary no more than the baselines carry (a singular model)".into()
                    };
                    rows.push((label, value));
                }
                if g.singular {
                    rows.push((
                        "growth model: singular fit".into(),
                        "a between-client SD is estimated at 0 (or no score varies about its line): \
                         read the SDs and the shrunken slopes as those of a simpler model"
                            .into(),
                    ));
                }
            }
            Facts { title: code.clone(), rows }
        })
        .collect()
}

/// Each measure's sudden gains and losses, as facts.
fn sudden_gain_facts(s: &Summary, sup: &Suppressor) -> Vec<Facts> {
    s.sudden_gains
        .iter()
        .flat_map(|g| g.by_measure.iter())
        .map(|(code, t)| Facts {
            title: code.clone(),
            rows: if t.no_criterion {
                vec![
                    ("series".into(), sup.count(t.series)),
                    (
                        "not searched".into(),
                        "no criterion applies: no reliable-change threshold for criterion 1, criteria 2 and 3 off"
                            .into(),
                    ),
                ]
            } else {
                vec![
                    ("series tested".into(), sup.count(t.series)),
                    (
                        "sudden gains".into(),
                        format!("{} in {} series", sup.count(t.gains), sup.count(t.series_with_gain)),
                    ),
                    ("gains later reversed".into(), sup.count(t.gain_reversals)),
                    (
                        "sudden losses".into(),
                        format!("{} in {} series", sup.count(t.losses), sup.count(t.series_with_loss)),
                    ),
                    ("criterion-1 cut-off (points)".into(), t.cutoff.map_or("off".into(), round3)),
                ]
            },
        })
        .collect()
}

/// Each measure's rates at follow-up, for measures with any follow-up score.
fn sustained_tables(s: &Summary, sup: &Suppressor) -> Vec<RateTable> {
    s.sustained
        .iter()
        .flat_map(|x| x.by_measure.iter())
        .filter(|(_, m)| m.followup_scores > 0)
        .map(|(code, m)| RateTable {
            title: format!(
                "{code}: {} follow-up scores; recovered but never seen again: {}",
                sup.count(m.followup_scores),
                sup.count(m.recovered_lost_to_followup)
            ),
            rows: rates(sup, &m.rates),
        })
        .collect()
}

/// The goal counts and rates.
fn goal_tables(s: &Summary, sup: &Suppressor) -> Vec<RateTable> {
    s
        .goals
        .iter()
        .map(|g| RateTable {
            title: format!(
                "{} GBO goals with {} objectives; {} GAS goals; goals and symptoms both improved in {} episodes, goals only {}, symptoms only {}, neither {}",
                sup.count(g.gbo_goals),
                sup.count(g.gbo_objectives),
                sup.count(g.gas_goals),
                sup.count(g.agreement["both_improved"]),
                sup.count(g.agreement["goals_only"]),
                sup.count(g.agreement["symptoms_only"]),
                sup.count(g.agreement["neither"]),
            ),
            rows: rates(sup, &g.rates),
        })
        .collect()
}

/// Units outside the funnel limits, trend statements and the therapist and site effects
/// models large enough to show.
/// How many units of a funnel plot lie outside its limits beside how many chance alone
/// would put there, in a sentence.
fn outside_by_chance(f: &crate::analyses::summary::FunnelSummary) -> (String, String) {
    // Counts of units, not of people: never withheld.
    let u = &f.units;
    let plural = |n: u64| if n == 1 { f.unit.to_string() } else { format!("{}s", f.unit) };
    (
        format!("{} on {}", plural(u.with_episodes), f.measure),
        format!(
            "{} {} {} outside the 95 % limits ({} outside the 99.8 %) among {}; chance alone would put about {:.1} \
             outside the 95 % limits and {:.2} outside the 99.8 %",
            u.outside_95,
            plural(u.outside_95),
            if u.outside_95 == 1 { "lies" } else { "lie" },
            u.outside_998,
            u.with_episodes,
            u.expected_outside_95,
            u.expected_outside_998
        ),
    )
}

fn caseload_facts(s: &Summary, sup: &Suppressor) -> Vec<Facts> {
    let mut caseload: Vec<Facts> = s
        .caseload
        .iter()
        .map(|c| Facts {
            title: "Outside the funnel limits (reliable recovery, adjusted for intake severity)".into(),
            rows: c
                .funnels
                .iter()
                .map(outside_by_chance)
                .chain(c.outside_limits.iter().map(|u| {
                    let r = sup.rate("", &Rate::new(u.numerator, u.denominator), "");
                    let counts = match u.adjusted_rate {
                        _ if r.percent == "suppressed" => {
                            format!("{} of {}, rate withheld", r.numerator, r.denominator)
                        }
                        Some(a) => {
                            format!("{} of {}, {}; adjusted {:.1} %", r.numerator, r.denominator, r.percent, 100.0 * a)
                        }
                        None => format!("{} of {}, {}", r.numerator, r.denominator, r.percent),
                    };
                    (
                        format!("{} {} on {}", u.unit_kind, u.unit, u.measure),
                        format!(
                            "{} ({counts})",
                            u.flag.replace('_', " ").replace("above", "above the").replace("below", "below the")
                                + " % limit"
                        ),
                    )
                }))
                .chain(c.trend_statements.iter().map(|t| ("trend".to_string(), t.clone())))
                .collect(),
        })
        .collect();
    // The effects models, where any is large enough to show.
    let effects = s.caseload.iter().map(|c| Facts {
        title: "Differences between therapists and sites, baselines allowed for (mixed model)".into(),
        rows: c
            .unit_effects
            .iter()
            .filter(|e| e.model.episodes >= sup.threshold())
            .map(|e| {
                let m = &e.model;
                let label =
                    format!("{}s on {} ({} {}s, {} paired episodes)", e.unit, e.measure, m.units, e.unit, m.episodes);
                let value = if m.singular {
                    format!("no difference beyond chance ({})", p_value(m.p_value))
                } else {
                    format!(
                        "{:.1} % of the variation in improvement; SD {:.2} points between {}s; {}",
                        100.0 * m.icc,
                        m.sd_between_units,
                        e.unit,
                        p_value(m.p_value)
                    )
                };
                (label, value)
            })
            .collect(),
    });
    caseload.extend(effects.filter(|f| !f.rows.is_empty()));
    caseload
}

/// The extract date and what was ended and open on it, in one sentence.
fn status_line(sup: &Suppressor, st: &crate::analyses::summary::StatusSummary) -> String {
    let x = &st.extract;
    let day = crate::domain::dates::format_day(x.as_of);
    let whence = if x.from_data { "the latest date in the data" } else { "given with --as-of" };
    format!(
        "Extract date {day} ({whence}): {} episodes had ended and {} were still in treatment. Outcome figures \
         count ended episodes only; an episode ended with an end date, an end-phase or follow-up score, or no \
         score for more than {} days.",
        sup.count(st.ended),
        sup.count(st.open),
        x.inactive_days
    )
}

/// Renders `report.md`: the same content as the HTML report, without the charts.
pub fn render_markdown(input: &ReportInput) -> String {
    render("report.md", &view_of(&ReportInput { figures: &[], ..*input }))
}

/// Makes text safe in a Markdown table cell: no pipes, no line breaks, no markup.
fn md(value: String) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Renders one of the templates with HTML auto-escaping (the CSS is shared).
fn render(name: &str, view: &impl Serialize) -> String {
    let mut env = minijinja::Environment::new();
    // HTML escaping for the HTML templates; Markdown cells go through the `md` filter.
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".md") {
            minijinja::AutoEscape::None
        } else {
            minijinja::AutoEscape::Html
        }
    });
    env.add_filter("md", md);
    env.add_template("report.md", include_str!("templates/report.md")).expect("template parses");
    env.add_template("style.css", include_str!("templates/style.css")).expect("template parses");
    env.add_template("report.html", include_str!("templates/report.html")).expect("template parses");
    env.add_template("client.html", include_str!("templates/client.html")).expect("template parses");
    env.get_template(name).and_then(|t| t.render(minijinja::value::Serde(view))).expect("template renders")
}

/// One episode × measure on a client page.
#[derive(Serialize)]
pub struct ClientEpisode {
    pub episode: String,
    pub measure: String,
    pub facts: Vec<(String, String)>,
    pub figures: Vec<crate::output::figures::Figure>,
}

#[derive(Serialize)]
struct ClientView<'a> {
    version: &'static str,
    client: &'a str,
    episodes: &'a [ClientEpisode],
}

/// Renders the page for one client (`--client ID`).
pub fn render_client(client: &str, episodes: &[ClientEpisode]) -> String {
    render("client.html", &ClientView { version: env!("CARGO_PKG_VERSION"), client, episodes })
}

/// The registry as a plain-text table for `sustain measures`.
pub fn registry_table(reg: &Registry) -> String {
    let mut out = String::new();
    for m in reg.measures() {
        let v = method_view(m, None);
        out.push_str(&format!(
            "{code}  {name}\n    range {range}, {better} is better\n    cut-off: {cutoff}\n    reliable change: {rc}\n    aliases: {aliases}\n    codes: {codes}\n    source: {source}\n{unverified}\n",
            code = v.code,
            name = v.name,
            range = v.range,
            better = v.better,
            cutoff = v.cutoff,
            rc = v.reliable_change,
            aliases = if m.aliases.is_empty() { "-".to_string() } else { m.aliases.join(", ") },
            codes = if v.codes.is_empty() { "-".to_string() } else { v.codes.join(" · ") },
            source = v.source,
            unverified = if v.unverified.is_empty() { String::new() } else { format!("    not verified against a primary source: {}\n", v.unverified) },
        ));
    }
    out
}

/// A p-value as a reader expects it: "p = 0.004", and "p < 0.001" below that (with
/// no-break spaces, so that a line never breaks inside it).
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p\u{a0}<\u{a0}0.001".into()
    } else {
        format!("p\u{a0}=\u{a0}{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_cannot_break_a_table_or_carry_markup() {
        assert_eq!(md("a|b\nc <script>&".into()), "a\\|b c &lt;script&gt;&amp;");
    }

    #[test]
    fn suppressed_rates_show_no_percentage() {
        let s = Suppressor(Suppression { threshold: 5, round_to: 1 });
        assert_eq!(s.count(4), "<5");
        let v = s.rate("x", &Rate::new(3, 40), "");
        assert_eq!((v.numerator.as_str(), v.percent.as_str()), ("<5", "suppressed"));
        assert_eq!(s.rate("x", &Rate::new(10, 40), "").percent, "25.0 %");
    }
}
