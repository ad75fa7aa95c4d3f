//! The human-readable outputs: `report.html` (one self-contained file, no scripts)
//! and the registry listing. Rendering computes no statistics: it formats the
//! `Summary` through a view model and a minijinja template with HTML auto-escaping.

use crate::outcomes::ResolvedRule;
use crate::registry::{Cutoff, Direction, Measure, Registry, ReliableChange};
use crate::summary::{Rate, Summary};
use serde::Serialize;

pub struct ReportInput<'a> {
    pub summary: &'a Summary,
    pub registry: &'a Registry,
    /// Counts below this are shown as "<N" and rates built on them are withheld.
    pub suppress_below: u64,
}

#[derive(Serialize)]
struct RateView {
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
    paired: String,
    at_caseness: String,
    rates: Vec<RateView>,
    outcomes: Vec<(String, String)>,
}

#[derive(Serialize)]
struct MethodView {
    code: String,
    name: String,
    better: &'static str,
    range: String,
    cutoff: String,
    reliable_change: String,
    source: String,
    unverified: String,
}

#[derive(Serialize)]
struct View {
    version: &'static str,
    inputs: Vec<(String, String, u64, u64, u64)>,
    rows_read: u64,
    rows_used: u64,
    rows_rejected: u64,
    rejections: Vec<(String, u64)>,
    clients: String,
    episodes: String,
    headline: Vec<RateView>,
    headline_title: String,
    measures: Vec<MeasureView>,
    methods: Vec<MethodView>,
    suppress_below: u64,
}

struct Suppressor(u64);

impl Suppressor {
    fn count(&self, n: u64) -> String {
        if n < self.0 {
            format!("<{}", self.0)
        } else {
            n.to_string()
        }
    }

    fn rate(&self, label: &'static str, r: &Rate, denominator_note: &'static str) -> RateView {
        let hidden = r.numerator < self.0 || r.denominator < self.0;
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

fn rate_label(key: &str) -> (&'static str, &'static str) {
    match key {
        "recovery" => ("Recovery", "paired episodes at caseness at baseline"),
        "reliable_recovery" => ("Reliable recovery", "paired episodes at caseness at baseline"),
        "reliable_improvement" => ("Reliable improvement", "all paired episodes"),
        "reliable_deterioration" => ("Reliable deterioration", "all paired episodes"),
        "response" => ("Response (≥ 50 % reduction)", "paired episodes with a baseline above 0"),
        "remission" => ("Remission", "paired episodes at caseness at baseline"),
        _ => ("Other", ""),
    }
}

fn rates(s: &Suppressor, rates: &std::collections::BTreeMap<&'static str, Rate>) -> Vec<RateView> {
    let order =
        ["recovery", "reliable_recovery", "reliable_improvement", "reliable_deterioration", "response", "remission"];
    order
        .iter()
        .filter_map(|k| rates.get(k).map(|r| (k, r)))
        .map(|(k, r)| {
            let (label, note) = rate_label(k);
            s.rate(label, r, note)
        })
        .collect()
}

/// Describes a measure's cut-off rule in words.
pub fn cutoff_text(m: &Measure, rule: Option<&ResolvedRule>) -> String {
    let resolved = rule.and_then(|r| r.cutoff).map(|c| format!(" = {}", round3(c))).unwrap_or_default();
    match (&m.cutoff, m.direction) {
        (None, _) => "none".into(),
        (Some(Cutoff::Fixed { value }), Direction::Lower) => format!("case when score ≥ {value}"),
        (Some(Cutoff::Fixed { value }), Direction::Higher) => format!("case when score < {value}"),
        (Some(Cutoff::JacobsonTruax { method, .. }), _) => format!("Jacobson–Truax {method:?} from the data{resolved}")
            .replace("A from", "a from")
            .replace("B from", "b from")
            .replace("C from", "c from"),
    }
}

/// Describes a measure's reliable-change rule in words.
pub fn reliable_change_text(m: &Measure, rule: Option<&ResolvedRule>) -> String {
    match &m.reliable_change {
        None => "none".into(),
        Some(ReliableChange::Fixed { value }) => format!("change of ≥ {value} points"),
        Some(ReliableChange::Reliability { reliability, sd }) => {
            let sd_text = sd.map_or("SD of paired baselines".to_string(), |s| format!("SD {s}"));
            let s_diff = rule.and_then(|r| r.s_diff).map(|s| format!(", S_diff = {}", round3(s))).unwrap_or_default();
            format!("|RCI| > 1.96 (r = {reliability}, {sd_text}{s_diff})")
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
    let s = input.summary;
    let sup = Suppressor(input.suppress_below);
    let measures: Vec<MeasureView> = s
        .measures
        .iter()
        .map(|(code, ms)| MeasureView {
            code: code.clone(),
            name: ms.name.clone(),
            episodes: sup.count(ms.episodes),
            paired: sup.count(ms.paired),
            at_caseness: sup.count(ms.at_caseness),
            rates: rates(&sup, &ms.rates),
            outcomes: ms.outcomes.iter().map(|(k, n)| (k.replace('_', " "), sup.count(*n))).collect(),
        })
        .collect();
    let (headline_title, headline) = match (&s.talking_therapies, s.measures.iter().next()) {
        (Some(tt), _) => (
            format!("NHS Talking Therapies combined PHQ-9 + GAD-7 ({} paired episodes)", sup.count(tt.paired)),
            rates(&sup, &tt.rates),
        ),
        (None, Some((code, ms))) => {
            (format!("{code} ({} paired episodes)", sup.count(ms.paired)), rates(&sup, &ms.rates))
        }
        (None, None) => ("No episodes".into(), vec![]),
    };
    let methods = s
        .measures
        .keys()
        .filter_map(|code| input.registry.find(code))
        .map(|i| method_view(input.registry.get(i), s.measures.get(&input.registry.get(i).code).map(|m| &m.rule)))
        .collect();
    let view = View {
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
        clients: sup.count(s.clients),
        episodes: sup.count(s.episodes),
        headline,
        headline_title,
        measures,
        methods,
        suppress_below: input.suppress_below,
    };
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("report.html", include_str!("templates/report.html")).expect("template parses");
    env.get_template("report.html").and_then(|t| t.render(minijinja::value::Serde(&view))).expect("template renders")
}

/// The registry as a plain-text table for `sustain measures`.
pub fn registry_table(reg: &Registry) -> String {
    let mut out = String::new();
    for m in reg.measures() {
        let v = method_view(m, None);
        out.push_str(&format!(
            "{code}  {name}\n    range {range}, {better} is better\n    cut-off: {cutoff}\n    reliable change: {rc}\n    aliases: {aliases}\n    source: {source}\n{unverified}\n",
            code = v.code,
            name = v.name,
            range = v.range,
            better = v.better,
            cutoff = v.cutoff,
            rc = v.reliable_change,
            aliases = if m.aliases.is_empty() { "-".to_string() } else { m.aliases.join(", ") },
            source = v.source,
            unverified = if v.unverified.is_empty() { String::new() } else { format!("    not verified against a primary source: {}\n", v.unverified) },
        ));
    }
    out
}
