//! The measure registry: each instrument's range, direction, clinical cut-off and
//! reliable-change rule, with the published source of every value.
//!
//! Built-in values follow NHS Talking Therapies and NHS England MHSDS where sources
//! disagree (docs/METHODS.md names the alternatives). A user TOML file (`--measures`)
//! overrides fields of a built-in instrument or adds new ones.

use serde::{Deserialize, Serialize};

/// Which end of the scale is the healthy one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Symptom scales: a lower score is better (PHQ-9, GAD-7, CORE-10, …).
    Lower,
    /// Well-being scales: a higher score is better (ORS, WEMWBS, GBO, …).
    Higher,
}

impl Direction {
    /// +1 when a rise is an improvement, −1 when a fall is (clinicalsignificance's `direction`).
    pub fn sign(self) -> f64 {
        match self {
            Direction::Lower => -1.0,
            Direction::Higher => 1.0,
        }
    }
}

/// Which Jacobson–Truax (1991) cut-off to compute from the data and the functional norms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JtCutoff {
    /// Two SDs of the clinical (baseline) sample from its mean, toward the functional end.
    A,
    /// Two SDs of the functional population from its mean, toward the clinical end.
    B,
    /// The point between the two means weighted by their SDs.
    C,
}

/// How the clinical cut-off is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cutoff {
    /// Caseness is `score >= value` (lower is better) or `score < value` (higher is better).
    Fixed { value: f64 },
    /// Computed per run from the baseline scores of paired episodes (and functional norms).
    JacobsonTruax { method: JtCutoff, functional_mean: Option<f64>, functional_sd: Option<f64> },
}

/// How reliable change is judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReliableChange {
    /// A change of at least `value` points in the better (worse) direction is reliable.
    Fixed { value: f64 },
    /// A reliable change index from a reliability coefficient; `sd` absent means the SD of
    /// the baseline scores of the paired episodes in the data. `reliability_post` is the
    /// Nunnally–Kotsch index's reliability at the later occasion (absent: `reliability`).
    Reliability { reliability: f64, sd: Option<f64>, method: RciMethod, reliability_post: Option<f64> },
}

/// Which reliable change index a reliability gives (the clinicalsignificance package's
/// `rci_method`). Jacobson–Truax compares the raw difference with its standard error; the
/// others compare the later score with the one expected from the baseline by regression
/// toward the sample's mean (docs/METHODS.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RciMethod {
    /// Jacobson & Truax (1991).
    #[default]
    Jt,
    /// Gulliksen, Lord & Novick (Hsu 1989).
    Gln,
    /// Hsu, Linn & Lord (Hsu 1989).
    Hll,
    /// Edwards & Nunnally, in Speer's (1992) form.
    En,
    /// Nunnally & Kotsch (1983).
    Nk,
}

impl RciMethod {
    /// The method named in a measure file (`jt`, `gln`, `hll`, `en`, `nk`).
    pub fn parse(name: &str) -> Result<RciMethod, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jt" => Ok(RciMethod::Jt),
            "gln" => Ok(RciMethod::Gln),
            "hll" => Ok(RciMethod::Hll),
            "en" => Ok(RciMethod::En),
            "nk" => Ok(RciMethod::Nk),
            // Not an index on the same footing: HA brings its own cut-offs and categories,
            // and HLM is a model of whole series, which sustain reports beside every rule.
            "ha" => Err("`rci_method` \"ha\" (Hageman & Arrindell) is not supported: it changes the cut-offs and \
                         the categories as well as the index"
                .into()),
            "hlm" => Err("`rci_method` \"hlm\" is not a per-episode rule: the growth model's index is in \
                          trajectories.csv (`slope_rci`) for every measure"
                .into()),
            other => Err(format!("`rci_method` {other:?} is not one of jt, gln, hll, en, nk")),
        }
    }

    /// The method's usual abbreviation (JT, GLN, …).
    pub fn abbreviation(self) -> &'static str {
        match self {
            RciMethod::Jt => "JT",
            RciMethod::Gln => "GLN",
            RciMethod::Hll => "HLL",
            RciMethod::En => "EN",
            RciMethod::Nk => "NK",
        }
    }

    /// The method's name in words.
    pub fn name(self) -> &'static str {
        match self {
            RciMethod::Jt => "Jacobson–Truax",
            RciMethod::Gln => "Gulliksen–Lord–Novick",
            RciMethod::Hll => "Hsu–Linn–Lord",
            RciMethod::En => "Edwards–Nunnally",
            RciMethod::Nk => "Nunnally–Kotsch",
        }
    }
}

/// One instrument.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measure {
    pub code: String,
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub direction: Direction,
    pub cutoff: Option<Cutoff>,
    pub reliable_change: Option<ReliableChange>,
    /// Remission: final score strictly below this value (lower-is-better scales only).
    pub remission_below: Option<f64>,
    /// Extra spellings accepted in the `measure` column (matched after normalising).
    pub aliases: Vec<String>,
    /// The SNOMED CT concept of the instrument's score, as NHS England's MHSDS codes it;
    /// accepted in the `measure` column like an alias.
    pub snomed: Option<String>,
    /// The LOINC code of the instrument's total score (as in a FHIR Observation);
    /// accepted in the `measure` column like an alias.
    pub loinc: Option<String>,
    /// Where the range, cut-off and reliable-change values come from.
    pub source: String,
    /// Values widely quoted but not verified against a primary source.
    pub unverified: Vec<String>,
}

/// Upper-cases and drops everything but letters and digits: `PHQ-9`, `phq 9` → `PHQ9`.
pub fn normalise_code(raw: &str) -> String {
    raw.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// The built-in instruments: `measures.toml`, read as a user's measure file is.
pub fn builtin_measures() -> Vec<Measure> {
    Registry::builtin().measures
}

/// A user override or addition as written in the TOML file. Absent fields keep the
/// built-in value (or are left unset for a new instrument).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    pub code: String,
    pub name: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub better: Option<Direction>,
    /// A fixed clinical cut-off (caseness rule as in the contract).
    pub cutoff: Option<f64>,
    /// Compute the cut-off as Jacobson–Truax `a`, `b` or `c` instead.
    pub cutoff_method: Option<JtCutoff>,
    pub functional_mean: Option<f64>,
    pub functional_sd: Option<f64>,
    /// A fixed reliable-change threshold in points.
    pub reliable_change: Option<f64>,
    /// A reliability coefficient: reliable change by an RCI (Jacobson–Truax unless
    /// `rci_method` names another).
    pub reliability: Option<f64>,
    /// The SD for the RCI; absent means the SD of baseline scores in the data.
    pub sd: Option<f64>,
    /// `jt` (the default), `gln`, `hll`, `en` or `nk`; needs `reliability`.
    pub rci_method: Option<String>,
    /// The reliability at the later occasion, for `rci_method = "nk"` (absent: `reliability`).
    pub reliability_post: Option<f64>,
    pub remission_below: Option<f64>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A SNOMED CT concept identifier, checked by its check digit.
    pub snomed: Option<String>,
    /// A LOINC code (`44261-6`), checked by its check digit.
    pub loinc: Option<String>,
    pub source: Option<String>,
    /// Values of `source` widely quoted but not verified against a primary source.
    #[serde(default)]
    pub unverified: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MeasureFile {
    #[serde(default, rename = "measure")]
    measures: Vec<MeasureSpec>,
    #[serde(default, rename = "standard")]
    standards: Vec<crate::domain::standards::Standard>,
}

/// The resolved registry: instruments by code, plus an alias table.
#[derive(Debug, Clone)]
pub struct Registry {
    measures: Vec<Measure>,
    /// The published standards headline rates are set beside.
    standards: Vec<crate::domain::standards::Standard>,
    /// Normalised codes and aliases. Hashed (fast and fixed): it is looked up once per
    /// input row, where a tree of strings was a visible share of validation.
    lookup: std::collections::HashMap<String, usize, foldhash::fast::FixedState>,
}

impl Registry {
    /// The built-in registry.
    pub fn builtin() -> Registry {
        Registry::from_measures(Vec::new())
            .with_overrides(include_str!("measures.toml"))
            .expect("the built-in measure file is valid (a unit test reads it)")
    }

    fn from_measures(measures: Vec<Measure>) -> Registry {
        let mut lookup = std::collections::HashMap::with_hasher(foldhash::fast::FixedState::default());
        for (i, m) in measures.iter().enumerate() {
            lookup.insert(normalise_code(&m.code), i);
            for a in m.aliases.iter().chain(&m.snomed).chain(&m.loinc) {
                lookup.insert(normalise_code(a), i);
            }
        }
        Registry { measures, lookup, standards: Vec::new() }
    }

    /// Applies the `[[measure]]` tables of a TOML document on top of this registry.
    pub fn with_overrides(mut self, toml_text: &str) -> Result<Registry, String> {
        let file: MeasureFile = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        for s in &file.standards {
            s.check()?;
        }
        let standards = crate::domain::standards::merged(std::mem::take(&mut self.standards), file.standards);
        for spec in file.measures {
            let code = normalise_code(&spec.code);
            if code.is_empty() {
                return Err("a [[measure]] has an empty `code`".into());
            }
            let existing = self.lookup.get(&code).copied();
            let spellings = (spec.aliases.iter().map(|a| ("alias", a)))
                .chain(spec.snomed.iter().map(|c| ("SNOMED CT code", c)))
                .chain(spec.loinc.iter().map(|c| ("LOINC code", c)));
            for (what, spelling) in spellings {
                let key = normalise_code(spelling);
                if key.is_empty() {
                    return Err(format!("measure {code}: the {what} {spelling:?} has no letters or digits"));
                }
                // A spelling of another instrument would quietly take its rows.
                if let Some(other) = self.lookup.get(&key).copied().filter(|&j| Some(j) != existing) {
                    let other = &self.measures[other].code;
                    return Err(format!("measure {code}: the {what} {spelling:?} already names measure {other}"));
                }
            }
            let mut m = match existing {
                Some(i) => self.measures[i].clone(),
                None => Measure {
                    code: code.clone(),
                    name: code.clone(),
                    min: f64::NEG_INFINITY,
                    max: f64::INFINITY,
                    direction: spec
                        .better
                        .ok_or_else(|| format!("measure {code} is new: give `better = \"lower\"` or `\"higher\"`"))?,
                    cutoff: None,
                    reliable_change: None,
                    remission_below: None,
                    aliases: vec![],
                    snomed: None,
                    loinc: None,
                    source: "user measure file".into(),
                    unverified: vec![],
                },
            };
            apply_spec(&mut m, spec)?;
            let mut measures = std::mem::take(&mut self.measures);
            match existing {
                Some(i) => measures[i] = m,
                None => measures.push(m),
            }
            self = Registry::from_measures(measures);
        }
        self.standards = standards;
        Ok(self)
    }

    /// The published standards headline rates are set beside.
    pub fn standards(&self) -> &[crate::domain::standards::Standard] {
        &self.standards
    }

    /// Leaves the standards out (`--no-standards`).
    pub fn without_standards(mut self) -> Registry {
        self.standards.clear();
        self
    }

    /// The instrument for a code or alias, as written in the data.
    pub fn find(&self, raw: &str) -> Option<usize> {
        // Normalise into a stack buffer: this runs once per input row.
        let mut buf = [0u8; 48];
        let mut n = 0;
        for b in raw.bytes().filter(u8::is_ascii_alphanumeric) {
            if n == buf.len() {
                return self.lookup.get(&normalise_code(raw)).copied();
            }
            buf[n] = b.to_ascii_uppercase();
            n += 1;
        }
        let code = std::str::from_utf8(&buf[..n]).expect("ASCII");
        self.lookup.get(code).copied()
    }

    /// A [`MeasureFinder`] over this registry.
    pub fn finder(&self) -> MeasureFinder<'_> {
        MeasureFinder { registry: self, recent: [([0; RECENT_BYTES], 0, 0); RECENT], count: 0 }
    }

    pub fn get(&self, idx: usize) -> &Measure {
        &self.measures[idx]
    }

    pub fn measures(&self) -> &[Measure] {
        &self.measures
    }
}

/// How many spellings a [`MeasureFinder`] remembers, and how long each may be.
const RECENT: usize = 4;
const RECENT_BYTES: usize = 16;

/// [`Registry::find`] for one row after another. It remembers the last few spellings it
/// found (a file names the same few instruments row after row), whose comparison costs
/// less than normalising and hashing the spelling again.
#[derive(Debug, Clone)]
pub struct MeasureFinder<'r> {
    registry: &'r Registry,
    /// Spelling (its bytes and length) and measure; the first `count.min(RECENT)` are set.
    recent: [([u8; RECENT_BYTES], u8, u16); RECENT],
    /// Spellings remembered so far; the next one replaces `recent[count % RECENT]`.
    count: usize,
}

impl<'r> MeasureFinder<'r> {
    pub fn registry(&self) -> &'r Registry {
        self.registry
    }

    /// What [`Registry::find`] gives for `raw`.
    #[inline]
    pub fn find(&mut self, raw: &str) -> Option<usize> {
        for (text, len, idx) in &self.recent[..self.count.min(RECENT)] {
            if crate::domain::columns::same_bytes(&text[..usize::from(*len)], raw.as_bytes()) {
                return Some(usize::from(*idx));
            }
        }
        self.find_new(raw)
    }

    #[inline(never)]
    fn find_new(&mut self, raw: &str) -> Option<usize> {
        let idx = self.registry.find(raw)?;
        // Unknown spellings are rejected rows, and long ones rare: neither is remembered.
        if let (true, Ok(id)) = (raw.len() <= RECENT_BYTES, u16::try_from(idx)) {
            let slot = &mut self.recent[self.count % RECENT];
            slot.0[..raw.len()].copy_from_slice(raw.as_bytes());
            (slot.1, slot.2) = (raw.len() as u8, id);
            self.count += 1;
        }
        Some(idx)
    }
}

fn apply_spec(m: &mut Measure, mut spec: MeasureSpec) -> Result<(), String> {
    let code = m.code.clone();
    if let Some(v) = spec.name.take() {
        m.name = v;
    }
    apply_scale(m, &spec, &code)?;
    if let Some(v) = spec.better {
        m.direction = v;
    }
    apply_cutoff(m, &spec, &code)?;
    apply_reliable_change(m, &spec, &code)?;
    if let Some(v) = spec.remission_below {
        m.remission_below = Some(v);
    }
    apply_codes_and_source(m, spec, &code)
}

/// Sets the scale's range from `spec`, then checks the values that must lie on it.
fn apply_scale(m: &mut Measure, spec: &MeasureSpec, code: &str) -> Result<(), String> {
    let finite = |name: &str, v: Option<f64>| match v {
        Some(x) if !x.is_finite() => Err(format!("measure {code}: `{name}` must be a finite number")),
        _ => Ok(v),
    };
    if let Some(v) = finite("min", spec.min)? {
        m.min = v;
    }
    if let Some(v) = finite("max", spec.max)? {
        m.max = v;
    }
    if m.min > m.max {
        return Err(format!("measure {code}: min {} is above max {}", m.min, m.max));
    }
    // A cut-off or remission bound outside the scale would make every score, or none, a case.
    let on_scale = |name: &str, v: Option<f64>| -> Result<(), String> {
        match finite(name, v)? {
            Some(x) if x < m.min || x > m.max => {
                Err(format!("measure {code}: `{name}` {x} is outside the scale ({} to {})", m.min, m.max))
            }
            _ => Ok(()),
        }
    };
    on_scale("cutoff", spec.cutoff)?;
    on_scale("remission_below", spec.remission_below)?;
    finite("functional_mean", spec.functional_mean)?;
    if matches!(finite("functional_sd", spec.functional_sd)?, Some(sd) if sd <= 0.0) {
        return Err(format!("measure {code}: `functional_sd` must be above 0"));
    }
    Ok(())
}

/// Sets the clinical cut-off: a fixed value, or a Jacobson–Truax method with the norms it needs.
fn apply_cutoff(m: &mut Measure, spec: &MeasureSpec, code: &str) -> Result<(), String> {
    match (spec.cutoff, spec.cutoff_method) {
        (Some(_), Some(_)) => return Err(format!("measure {code}: give either `cutoff` or `cutoff_method`, not both")),
        (Some(value), None) => m.cutoff = Some(Cutoff::Fixed { value }),
        (None, Some(method)) => {
            if method != JtCutoff::A && (spec.functional_mean.is_none() || spec.functional_sd.is_none()) {
                return Err(format!(
                    "measure {code}: cut-off method {method:?} needs `functional_mean` and `functional_sd`"
                ));
            }
            m.cutoff = Some(Cutoff::JacobsonTruax {
                method,
                functional_mean: spec.functional_mean,
                functional_sd: spec.functional_sd,
            });
        }
        (None, None) => {}
    }
    Ok(())
}

/// Sets the reliable-change rule: a fixed threshold, or an index from a reliability.
fn apply_reliable_change(m: &mut Measure, spec: &MeasureSpec, code: &str) -> Result<(), String> {
    match (spec.reliable_change, spec.reliability) {
        (Some(_), Some(_)) => {
            return Err(format!("measure {code}: give either `reliable_change` or `reliability`, not both"))
        }
        (Some(value), None) if value > 0.0 => m.reliable_change = Some(ReliableChange::Fixed { value }),
        (Some(_), None) => return Err(format!("measure {code}: `reliable_change` must be above 0")),
        (None, Some(r)) if (0.0..1.0).contains(&r) => {
            if matches!(spec.sd, Some(sd) if sd <= 0.0) {
                return Err(format!("measure {code}: `sd` must be above 0"));
            }
            let method = spec.rci_method.as_deref().map_or(Ok(RciMethod::Jt), RciMethod::parse);
            let method = method.map_err(|e| format!("measure {code}: {e}"))?;
            match spec.reliability_post {
                Some(_) if method != RciMethod::Nk => {
                    return Err(format!("measure {code}: `reliability_post` is used only by `rci_method = \"nk\"`"))
                }
                Some(rp) if !(0.0..1.0).contains(&rp) => {
                    return Err(format!("measure {code}: `reliability_post` must be in [0, 1)"))
                }
                _ => {}
            }
            m.reliable_change = Some(ReliableChange::Reliability {
                reliability: r,
                sd: spec.sd,
                method,
                reliability_post: spec.reliability_post,
            })
        }
        (None, Some(_)) => return Err(format!("measure {code}: `reliability` must be in [0, 1)")),
        (None, None) => {}
    }
    if spec.reliability.is_none() && (spec.rci_method.is_some() || spec.reliability_post.is_some()) {
        return Err(format!("measure {code}: `rci_method` and `reliability_post` need `reliability`"));
    }
    Ok(())
}

/// Adds the aliases and the terminology codes (each checked), then the source.
fn apply_codes_and_source(m: &mut Measure, spec: MeasureSpec, code: &str) -> Result<(), String> {
    m.aliases.extend(spec.aliases);
    // A mistyped code would match no row, and the rows would be rejected as an unknown measure.
    if let Some(c) = spec.snomed {
        crate::domain::terminology::check_sctid(&c).map_err(|e| format!("measure {code}: {e}"))?;
        m.snomed = Some(c);
    }
    if let Some(c) = spec.loinc {
        crate::domain::terminology::check_loinc(&c).map_err(|e| format!("measure {code}: {e}"))?;
        m.loinc = Some(c);
    }
    if let Some(s) = spec.source {
        m.source = s;
        m.unverified.clear();
    }
    if !spec.unverified.is_empty() {
        m.unverified = spec.unverified;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finder_finds_what_find_finds_while_it_remembers_and_forgets() {
        let reg = Registry::builtin();
        let mut finder = reg.finder();
        // More spellings than it remembers, a long one, unknown ones, and repeats.
        let spellings =
            "PHQ-9|GAD-7|phq9|PHQ-9|CORE-10|GAD 7|ORS|XYZ|PHQ-9|GAD-7|  P . H . Q . - 9  |  P . H . Q . - 9  \
                         |P.H.Q.-9 (nine items)||GAD7|CORE10|phq-9|XYZ";
        assert_eq!(reg.find("  P . H . Q . - 9  "), reg.find("PHQ9"), "a long spelling that is found");
        for round in 0..3 {
            for s in spellings.split('|') {
                assert_eq!(finder.find(s), reg.find(s), "{s:?} in round {round}");
            }
        }
    }

    #[test]
    fn aliases_are_matched_after_normalising() {
        let r = Registry::builtin();
        let phq = r.find("PHQ9").unwrap();
        for raw in ["PHQ-9", "phq9", "Phq 9", " phq_9 "] {
            assert_eq!(r.find(raw), Some(phq), "{raw}");
        }
        assert_eq!(r.find("BDI-II"), r.find("BDI2"));
        assert_eq!(r.find("OQ-45.2"), r.find("OQ45"));
        assert_eq!(r.find("XYZ"), None);
    }

    #[test]
    fn standard_codes_name_their_instruments_and_pass_their_checks() {
        let r = Registry::builtin();
        let find = |raw: &str| r.find(raw).map(|i| r.get(i).code.as_str());
        assert_eq!(find("720433000"), Some("PHQ9"));
        assert_eq!(find("44261-6"), Some("PHQ9"));
        assert_eq!(find("445455005"), Some("GAD7"));
        assert_eq!(find("70274-6"), Some("GAD7"));
        assert_eq!(find("718583008"), Some("CORE10"));
        assert_eq!(find("716613004"), Some("ORS"));
        assert_eq!(find("959951000000108"), Some("GBO"));
        // A mistyped code names nothing.
        assert_eq!(find("720433001"), None);
        for m in r.measures() {
            if let Some(c) = &m.snomed {
                assert_eq!(crate::domain::terminology::check_sctid(c), Ok(()), "{}", m.code);
            }
            if let Some(c) = &m.loinc {
                assert_eq!(crate::domain::terminology::check_loinc(c), Ok(()), "{}", m.code);
            }
        }
        assert_eq!(r.measures().iter().filter(|m| m.snomed.is_some()).count(), 7, "the MHSDS codes of measures.toml");
    }

    #[test]
    fn a_user_file_gives_codes_checked_by_their_check_digits() {
        let with =
            |body: &str| Registry::builtin().with_overrides(&format!("[[measure]]\ncode='XX'\nbetter='lower'\n{body}"));
        // A code another instrument holds would take its rows.
        let r = with("snomed='718583008'").unwrap_err();
        assert!(r.contains("SNOMED CT code \"718583008\" already names measure CORE10"), "{r}");
        let r = with("snomed='720433001'").unwrap_err();
        assert!(r.contains("measure XX: SNOMED CT code 720433001 fails its check digit"), "{r}");
        let r = with("loinc='44261-5'").unwrap_err();
        assert!(r.contains("LOINC code 44261-5 fails its check digit"), "{r}");
        let r = with("snomed='404684003'\nloinc='107332-9'").unwrap();
        let xx = r.find("XX");
        assert_eq!((r.find("404684003"), r.find("107332-9")), (xx, xx));
        assert_eq!(r.get(xx.unwrap()).loinc.as_deref(), Some("107332-9"));
        // A built-in instrument's code may be replaced (here by the child version's, CORS);
        // the old one then names nothing.
        let r = Registry::builtin().with_overrides("[[measure]]\ncode='ORS'\nsnomed='718458005'").unwrap();
        assert_eq!(r.find("718458005"), r.find("ORS"));
        assert_eq!(r.find("716613004"), None);
    }

    #[test]
    fn nhs_values_are_the_defaults() {
        let r = Registry::builtin();
        let phq = r.get(r.find("PHQ9").unwrap());
        assert_eq!(phq.cutoff, Some(Cutoff::Fixed { value: 10.0 }));
        assert_eq!(phq.reliable_change, Some(ReliableChange::Fixed { value: 6.0 }));
        let gad = r.get(r.find("GAD7").unwrap());
        assert_eq!(gad.cutoff, Some(Cutoff::Fixed { value: 8.0 }));
        assert_eq!(gad.reliable_change, Some(ReliableChange::Fixed { value: 4.0 }));
        assert_eq!(r.get(r.find("ORS").unwrap()).direction, Direction::Higher);
    }

    #[test]
    fn a_user_file_overrides_and_adds() {
        let toml = r#"
            [[measure]]
            code = "GAD-7"
            reliable_change = 5

            [[measure]]
            code = "GDS"
            better = "lower"
            min = 0
            max = 100
            reliability = 0.8
            cutoff_method = "c"
            functional_mean = 30
            functional_sd = 7
            aliases = ["global distress"]
        "#;
        let r = Registry::builtin().with_overrides(toml).unwrap();
        let gad = r.get(r.find("gad7").unwrap());
        assert_eq!(gad.reliable_change, Some(ReliableChange::Fixed { value: 5.0 }));
        assert_eq!(gad.cutoff, Some(Cutoff::Fixed { value: 8.0 }), "untouched fields stay");
        let gds = r.get(r.find("Global Distress").unwrap());
        assert_eq!(
            gds.reliable_change,
            Some(ReliableChange::Reliability {
                reliability: 0.8,
                sd: None,
                method: RciMethod::Jt,
                reliability_post: None
            })
        );
        assert!(matches!(gds.cutoff, Some(Cutoff::JacobsonTruax { method: JtCutoff::C, .. })));
    }

    #[test]
    fn contradictory_or_incomplete_specs_are_refused() {
        let both = "[[measure]]\ncode='PHQ9'\nreliable_change=6\nreliability=0.8";
        assert!(Registry::builtin().with_overrides(both).is_err());
        let new_without_direction = "[[measure]]\ncode='NEW'";
        assert!(Registry::builtin().with_overrides(new_without_direction).is_err());
        let c_without_norms = "[[measure]]\ncode='PHQ9'\ncutoff_method='c'";
        assert!(Registry::builtin().with_overrides(c_without_norms).is_err());
        let unknown_key = "[[measure]]\ncode='PHQ9'\ncutof=3";
        assert!(Registry::builtin().with_overrides(unknown_key).is_err());
    }

    #[test]
    fn values_off_the_scale_and_borrowed_aliases_are_refused() {
        let refused = |body: &str| {
            let toml = format!("[[measure]]\ncode='XX'\nbetter='lower'\nmin=0\nmax=10\n{body}");
            Registry::builtin().with_overrides(&toml).expect_err(body)
        };
        assert!(refused("cutoff=50").contains("`cutoff` 50 is outside the scale (0 to 10)"));
        assert!(refused("cutoff=-1").contains("outside the scale"));
        assert!(refused("remission_below=11").contains("`remission_below`"));
        assert!(refused("cutoff_method='c'\nfunctional_mean=2\nfunctional_sd=-1").contains("`functional_sd`"));
        assert!(refused("cutoff=nan").contains("finite"));
        assert!(refused("aliases=['PHQ-9']").contains("already names measure PHQ9"));
        assert!(refused("aliases=['--']").contains("no letters or digits"));
        let nan_max = "[[measure]]\ncode='XX'\nbetter='lower'\nmin=0\nmax=nan";
        assert!(Registry::builtin().with_overrides(nan_max).unwrap_err().contains("`max` must be a finite number"));
        // The ends of the scale, and an instrument's own alias given again, are taken.
        let ok = "[[measure]]\ncode='XX'\nbetter='lower'\nmin=0\nmax=10\ncutoff=10\nremission_below=0\n\
                  [[measure]]\ncode='PHQ9'\naliases=['PHQ-9', 'phq nine']";
        let r = Registry::builtin().with_overrides(ok).unwrap();
        assert_eq!(r.find("phq nine"), r.find("PHQ9"));
    }

    #[test]
    fn rci_methods_are_read_and_checked() {
        let with = |fields: &str| {
            Registry::builtin().with_overrides(&format!("[[measure]]\ncode='GDS'\nbetter='lower'\n{fields}"))
        };
        let gds = with("reliability=0.8\nrci_method='NK'\nreliability_post=0.9").unwrap();
        assert_eq!(
            gds.get(gds.find("GDS").unwrap()).reliable_change,
            Some(ReliableChange::Reliability {
                reliability: 0.8,
                sd: None,
                method: RciMethod::Nk,
                reliability_post: Some(0.9)
            })
        );
        for (fields, says) in [
            ("reliability=0.8\nrci_method='ha'", "Hageman"),
            ("reliability=0.8\nrci_method='hlm'", "slope_rci"),
            ("reliability=0.8\nrci_method='xyz'", "not one of jt, gln, hll, en, nk"),
            ("reliable_change=5\nrci_method='gln'", "need `reliability`"),
            ("rci_method='gln'", "need `reliability`"),
            ("reliability=0.8\nrci_method='gln'\nreliability_post=0.9", "only by `rci_method = \"nk\"`"),
            ("reliability=0.8\nrci_method='nk'\nreliability_post=1", "`reliability_post` must be in [0, 1)"),
        ] {
            let e = with(fields).unwrap_err();
            assert!(e.contains(says), "{fields}: {e}");
        }
    }
}
