//! Synthetic practice data in the contract's layout, for the demo, the tests and the
//! benchmarks. The generator plants what the analyses must find (trajectory shapes,
//! relapses after recovery, therapist effects) and writes that ground truth to
//! `truth.csv` beside the tables.
//!
//! Its random numbers come from xoshiro256** seeded by SplitMix64, written out here so
//! that a seed gives the same files on every platform and crate version.

use crate::app::cli::{DataFormat, DemoArgs};
use crate::domain::dates::{days_from_civil, format_day, Day};
use crate::error::Result;
use std::fmt::Write as _;

/// xoshiro256** (Blackman & Vigna 2018).
pub struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The course a simulated client's symptoms take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Most of the change by the third or fourth session.
    EarlyResponse,
    /// Steady improvement across treatment.
    GradualResponse,
    /// A reliable worsening in the first sessions (the discomfort zone), then improvement.
    DipThenImprovement,
    NoResponse,
    Deterioration,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::EarlyResponse => "early_response",
            Shape::GradualResponse => "gradual_response",
            Shape::DipThenImprovement => "dip_then_improvement",
            Shape::NoResponse => "no_response",
            Shape::Deterioration => "deterioration",
        }
    }
}

/// How many therapists and sites the simulated practice has; clients are dealt to
/// therapists at random, therapist k to site k mod sites.
#[derive(Debug, Clone, Copy)]
pub struct Staff {
    pub therapists: usize,
    pub sites: usize,
}

impl Default for Staff {
    /// The demo's practice: eight therapists at three sites.
    fn default() -> Staff {
        Staff { therapists: 8, sites: 3 }
    }
}

impl Staff {
    /// Therapist `k`'s id: `T01` … `T08`, with as many digits as the largest number needs.
    fn therapist(&self, k: usize) -> String {
        let width = self.therapists.to_string().len().max(2);
        format!("T{:0width$}", k + 1)
    }

    fn site(&self, therapist: usize) -> String {
        format!("S{}", therapist % self.sites + 1)
    }
}

/// Planted therapist effects: T02 and T05 do clearly better, T07 clearly worse.
fn therapist_effect(t: usize) -> f64 {
    match t {
        1 | 4 => 1.6,
        6 => 0.4,
        _ => 1.0,
    }
}

fn draw_shape(rng: &mut Rng, effect: f64) -> Shape {
    let good = [0.24 * effect, 0.30 * effect, 0.14 * effect];
    let bad = [0.22 / effect, 0.10 / effect];
    let total: f64 = good.iter().chain(bad.iter()).sum();
    let mut u = rng.uniform() * total;
    let shapes = [
        Shape::EarlyResponse,
        Shape::GradualResponse,
        Shape::DipThenImprovement,
        Shape::NoResponse,
        Shape::Deterioration,
    ];
    for (shape, w) in shapes.iter().zip(good.iter().chain(bad.iter())) {
        if u < *w {
            return *shape;
        }
        u -= w;
    }
    Shape::NoResponse
}

/// Severity change (positive = better) at session `k` of `n`, as a share of the total.
fn course(shape: Shape, k: usize, n: usize, dip_peak: usize) -> f64 {
    let (k, n) = (k as f64, n.max(1) as f64);
    match shape {
        Shape::EarlyResponse => 1.0 - (-k / 1.1).exp(),
        Shape::GradualResponse => k / n,
        Shape::DipThenImprovement => {
            let p = dip_peak as f64;
            if k <= p {
                -k / p
            } else {
                -1.0 + 2.0 * ((k - p) / (n - p).max(1.0))
            }
        }
        Shape::NoResponse => 0.0,
        Shape::Deterioration => -k / n,
    }
}

struct Instrument {
    code: &'static str,
    max: f64,
    higher_is_better: bool,
    /// Maps PHQ-9-like severity (0–27) to this scale.
    scale: f64,
    noise: f64,
}

const PHQ9: Instrument = Instrument { code: "PHQ-9", max: 27.0, higher_is_better: false, scale: 1.0, noise: 1.3 };
const GAD7: Instrument = Instrument { code: "GAD-7", max: 21.0, higher_is_better: false, scale: 0.72, noise: 1.2 };
const CORE10: Instrument = Instrument { code: "CORE-10", max: 40.0, higher_is_better: false, scale: 1.35, noise: 1.8 };
const ORS: Instrument = Instrument { code: "ORS", max: 40.0, higher_is_better: true, scale: 1.2, noise: 1.6 };

fn score(inst: &Instrument, severity: f64, noise: f64) -> f64 {
    let s = (severity * inst.scale + noise * inst.noise).clamp(0.0, inst.max);
    if inst.higher_is_better {
        // ORS is marked on 10 cm lines: one decimal.
        ((inst.max - s) * 10.0).round() / 10.0
    } else {
        s.round()
    }
}

/// The generated tables as CSV text.
#[derive(Default)]
pub struct DemoData {
    pub measurements: String,
    pub goals: String,
    pub truth: String,
    pub n_measurements: u64,
}

const MEASUREMENTS_HEADER: &str =
    "client_id,episode_id,therapist_id,site_id,date,session,phase,measure,score,episode_end\n";
const GOALS_HEADER: &str = "client_id,episode_id,goal_id,parent_goal_id,date,phase,scale,rating,weight\n";
const TRUTH_HEADER: &str = "client_id,episode_id,therapist_id,shape,dropout,dip_peak_session,planted_relapse,\
                            relapse_followup_months,open_at_extract\n";

/// The day the demo export was taken: nothing later is in it, and the clients whose
/// treatment runs past it are still in treatment (open episodes).
pub const EXTRACT_DATE: (i32, i32, i32) = (2025, 6, 30);

/// Clients per batch when writing: the data are made and written a batch at a time, so
/// that the 100 M-row benchmark set takes no more memory than a small one.
const BATCH_CLIENTS: u64 = 20_000;

/// Generates `n_clients` clients (all in memory; see [`generate_batches`]).
pub fn generate(n_clients: u64, seed: u64) -> DemoData {
    let mut all = DemoData {
        measurements: MEASUREMENTS_HEADER.into(),
        goals: GOALS_HEADER.into(),
        truth: TRUTH_HEADER.into(),
        n_measurements: 0,
    };
    let collect = |b: DemoData| {
        all.measurements.push_str(&b.measurements);
        all.goals.push_str(&b.goals);
        all.truth.push_str(&b.truth);
        all.n_measurements += b.n_measurements;
        Ok(())
    };
    generate_batches(n_clients, seed, n_clients.max(1), Staff::default(), collect)
        .expect("collecting in memory cannot fail");
    all
}

/// Generates `n_clients` clients and hands them on `batch` clients at a time (CSV text
/// without headers); the same seed gives the same rows whatever the batch size.
pub fn generate_batches(
    n_clients: u64,
    seed: u64,
    batch: u64,
    staff: Staff,
    mut each: impl FnMut(DemoData) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut out = DemoData::default();
    let first_start = days_from_civil(2023, 1, 2);
    let (y, m_, d) = EXTRACT_DATE;
    let extract = days_from_civil(y, m_, d);
    // Clients keep arriving until the week before the extract date.
    let last_start = extract - 7;
    for c in 0..n_clients {
        write_client(&mut out, &mut rng, c, (first_start, last_start), extract, staff);
        if (c + 1) % batch == 0 || c + 1 == n_clients {
            each(std::mem::take(&mut out))?;
        }
    }
    Ok(())
}

/// Draws client `c` (number `c + 1`), starting between the two days given, and writes
/// the rows of their episodes.
fn write_client(
    out: &mut DemoData,
    rng: &mut Rng,
    c: u64,
    (first_start, last_start): (Day, Day),
    extract: Day,
    staff: Staff,
) {
    let client = format!("C{:05}", c + 1);
    let ther = rng.int(0, staff.therapists as i64 - 1) as usize;
    let (therapist, site) = (staff.therapist(ther), staff.site(ther));
    let n_episodes = if rng.chance(0.08) { 2 } else { 1 };
    let mut start: Day = first_start + rng.int(0, i64::from(last_start - first_start)) as Day;
    for e in 0..n_episodes {
        // A second course that would begin after the extract date is not in the export.
        if start > last_start {
            break;
        }
        let episode = format!("E{}", e + 1);
        let ids = EpisodeIds { client: &client, episode: &episode, therapist: &therapist, site: &site };
        let last_date = write_episode(out, rng, ids, ther, start, extract);
        start = last_date + rng.int(120, 300) as Day;
    }
}

/// The ids that the rows of one episode start with.
#[derive(Clone, Copy)]
struct EpisodeIds<'a> {
    client: &'a str,
    episode: &'a str,
    therapist: &'a str,
    site: &'a str,
}

/// The drawn course of one episode, before its dates.
struct Plan {
    shape: Shape,
    dropout: bool,
    /// Sessions planned; a dropout stops after `n_sessions`.
    planned: usize,
    n_sessions: usize,
    dip_peak: usize,
    intake: f64,
    gain: f64,
    dip_depth: f64,
    instruments: Vec<&'static Instrument>,
}

impl Plan {
    /// The severity at session `k` (0 = assessment) of the planned course.
    fn severity_at(&self, k: usize) -> f64 {
        let Plan { shape, planned, dip_peak, intake, gain, dip_depth, .. } = *self;
        let f = course(shape, k, planned, dip_peak);
        match shape {
            Shape::Deterioration => intake + gain * -f,
            Shape::DipThenImprovement if f < 0.0 => intake + dip_depth * -f,
            Shape::DipThenImprovement => intake + dip_depth - (gain + dip_depth) * f,
            _ => intake - gain * f,
        }
    }
}

/// Draws an episode's course for a therapist of the given effect.
fn draw_plan(rng: &mut Rng, effect: f64) -> Plan {
    let shape = draw_shape(rng, effect);
    let dropout = rng.chance(0.14);
    let planned = rng.int(6, 16) as usize;
    let n_sessions = if dropout { rng.int(1, 3) as usize } else { planned };
    let dip_peak = rng.int(2, 3) as usize;
    let intake = (15.0 + 4.5 * rng.normal()).clamp(3.0, 27.0);
    let gain = match shape {
        Shape::Deterioration => rng.between(7.0, 10.0),
        Shape::NoResponse => 0.0,
        _ => intake * rng.between(0.5, 0.85),
    };
    let dip_depth = rng.between(6.5, 9.0);
    let instruments: Vec<&'static Instrument> = match rng.uniform() {
        u if u < 0.74 => vec![&PHQ9, &GAD7],
        u if u < 0.88 => vec![&CORE10],
        u if u < 0.95 => vec![&ORS],
        _ => vec![&PHQ9, &GAD7, &ORS],
    };
    Plan { shape, dropout, planned, n_sessions, dip_peak, intake, gain, dip_depth, instruments }
}

/// One episode being written: its ids, its drawn course and its session dates.
struct Episode<'a> {
    ids: EpisodeIds<'a>,
    start: Day,
    plan: Plan,
    /// The assessment's and each session's date, some after the extract date.
    dates: Vec<Day>,
    /// Whether the last session, if attended, is marked `end`.
    end_phase: bool,
    /// Still in treatment on the extract date.
    open: bool,
    /// The discharge day written in every row (empty where none is recorded).
    discharge: String,
    extract: Day,
}

/// Draws and writes one episode starting on `start` (measurements, ground truth and
/// goals); returns the date of its last session up to the extract date.
fn write_episode(out: &mut DemoData, rng: &mut Rng, ids: EpisodeIds<'_>, ther: usize, start: Day, extract: Day) -> Day {
    let plan = draw_plan(rng, therapist_effect(ther));
    let end_phase = rng.chance(0.5);
    // Courses running past the extract date are cut there: still in treatment.
    let dates: Vec<Day> =
        (0..=plan.n_sessions).map(|k| start + 7 * k as Day + rng.int(-1, 1) as Day * i32::from(k > 0)).collect();
    let open = dates.last().is_some_and(|&d| d > extract);
    // One site's system records the discharge day of each finished course (a
    // dropout's referral is closed four weeks after the last contact).
    let discharge = (ids.site == "S1" && !open)
        .then(|| dates[plan.n_sessions] + if plan.dropout { 28 } else { 0 })
        .filter(|&d| d <= extract)
        .map(format_day)
        .unwrap_or_default();
    let ep = Episode { ids, start, plan, dates, end_phase, open, discharge, extract };
    let (last_date, final_severity) = write_sessions(out, rng, &ep);
    let (relapsed, relapse_months) = write_follow_ups(out, rng, &ep, last_date, final_severity);
    let EpisodeIds { client, episode, therapist, .. } = ids;
    let Plan { shape, dropout, n_sessions, dip_peak, .. } = ep.plan;
    let _ = writeln!(
        out.truth,
        "{client},{episode},{therapist},{},{dropout},{},{relapsed},{relapse_months},{open}",
        shape.as_str(),
        if shape == Shape::DipThenImprovement { dip_peak.to_string() } else { String::new() }
    );
    let course = Course { start, end: last_date, n_sessions, shape, relapsed, extract };
    write_goals(&mut out.goals, rng, client, episode, &course);
    last_date
}

/// Writes the scores of the assessment and the sessions up to the extract date; returns
/// the last of those sessions' date and severity.
/// Writes one row per instrument of the episode's plan, scored at severity `sev`, on
/// (date, session, phase).
fn write_scores(out: &mut DemoData, rng: &mut Rng, ep: &Episode, (date, session, phase): (Day, &str, &str), sev: f64) {
    let EpisodeIds { client, episode, therapist, site } = ep.ids;
    for inst in &ep.plan.instruments {
        let s = score(inst, sev, rng.normal());
        let _ = writeln!(
            out.measurements,
            "{client},{episode},{therapist},{site},{},{session},{phase},{},{s},{}",
            format_day(date),
            inst.code,
            ep.discharge
        );
        out.n_measurements += 1;
    }
}

fn write_sessions(out: &mut DemoData, rng: &mut Rng, ep: &Episode) -> (Day, f64) {
    let plan = &ep.plan;
    let n_sessions = plan.n_sessions;
    let mut last_date = ep.start;
    let mut final_severity = plan.intake;
    for (k, &date) in ep.dates.iter().enumerate() {
        if date > ep.extract {
            break;
        }
        last_date = date;
        let sev = plan.severity_at(k);
        final_severity = sev;
        // About one questionnaire set in twelve is not completed (never the assessment).
        if k > 0 && rng.chance(0.085) {
            continue;
        }
        let phase = match k {
            0 => "assessment",
            _ if k == n_sessions && ep.end_phase && !plan.dropout => "end",
            _ => "treatment",
        };
        write_scores(out, rng, ep, (date, &k.to_string(), phase), sev);
    }
    (last_date, final_severity)
}

/// Writes the follow-up scores of a finished course, planting a relapse in some of the
/// recovered; returns whether one was planted and at which follow-up (in months).
fn write_follow_ups(
    out: &mut DemoData,
    rng: &mut Rng,
    ep: &Episode,
    last_date: Day,
    final_severity: f64,
) -> (bool, String) {
    let plan = &ep.plan;
    let (intake, dropout) = (plan.intake, plan.dropout);
    // Follow-ups after treatment ends: about 3, 6 and 12 months, some missed.
    let recovered_like = final_severity < 9.0 && intake >= 10.0;
    let relapse_at = (!dropout && recovered_like && rng.chance(0.35)).then(|| rng.int(0, 2) as usize);
    let mut relapsed = false;
    let mut relapse_months = String::new();
    if !dropout && !ep.open {
        for (i, (months, days, p)) in [(3, 91, 0.75), (6, 182, 0.6), (12, 365, 0.45)].into_iter().enumerate() {
            let date = last_date + days + rng.int(-10, 10) as Day;
            if !rng.chance(p) || date > ep.extract {
                continue;
            }
            if relapse_at == Some(i) {
                relapsed = true;
                relapse_months = months.to_string();
            }
            let sev = if relapsed {
                (intake * rng.between(0.85, 1.05)).max(14.5)
            } else {
                (final_severity + rng.between(-1.5, 2.5)).max(0.0)
            };
            write_scores(out, rng, ep, (date, "", "follow_up"), sev);
        }
    }
    (relapsed, relapse_months)
}

/// What the goal ratings of one episode follow.
struct Course {
    start: Day,
    /// The last session's date (up to the extract date).
    end: Day,
    n_sessions: usize,
    shape: Shape,
    relapsed: bool,
    /// No rating after this day is written.
    extract: Day,
}

fn write_goals(g: &mut String, rng: &mut Rng, client: &str, episode: &str, course: &Course) {
    let &Course { start, end, n_sessions, shape, relapsed, extract } = course;
    let progress = match shape {
        Shape::EarlyResponse | Shape::GradualResponse | Shape::DipThenImprovement => rng.between(0.5, 1.0),
        Shape::NoResponse => rng.between(-0.1, 0.35),
        Shape::Deterioration => rng.between(-0.3, 0.1),
    };
    let mid = start + (end - start) / 2;
    let fu = end + 91 + rng.int(-7, 7) as Day;
    let mut dates = vec![(start, "assessment", 0.0)];
    if n_sessions >= 4 {
        dates.push((mid, "treatment", 0.5));
    }
    if n_sessions >= 2 {
        dates.push((end, "treatment", 1.0));
        if rng.chance(0.6) {
            dates.push((fu, "follow_up", if relapsed { 0.3 } else { 1.0 }));
        }
    }
    dates.retain(|d| d.0 <= extract);
    // A course cut short by the extract date may have had no session after the first:
    // one rating a day.
    dates.dedup_by_key(|d| d.0);
    for goal in 1..=rng.int(1, 3) {
        let gid = format!("G{goal}");
        let first = rng.int(0, 4) as f64;
        let rate = |share: f64, rng: &mut Rng| {
            (first + share * progress * (10.0 - first) + rng.normal() * 0.7).round().clamp(0.0, 10.0)
        };
        for &(d, phase, share) in &dates {
            let r = rate(share, rng);
            let _ = writeln!(g, "{client},{episode},{gid},,{},{phase},GBO,{r},", format_day(d));
        }
        for obj in 1..=rng.int(0, 2) {
            let oid = format!("{gid}.{obj}");
            for &(d, phase, share) in &dates {
                let r = rate(share, rng);
                let _ = writeln!(g, "{client},{episode},{oid},{gid},{},{phase},GBO,{r},", format_day(d));
            }
        }
    }
    if rng.chance(0.4) && n_sessions >= 2 {
        for goal in 1..=3 {
            let weight = rng.int(1, 3);
            for &(d, phase, share) in dates.iter().filter(|x| x.2 > 0.9) {
                let level = (-1.0 + share * progress * 2.5 + rng.normal() * 0.6).round().clamp(-2.0, 2.0);
                let _ = writeln!(g, "{client},{episode},A{goal},,{},{phase},GAS,{level},{weight}", format_day(d));
            }
        }
    }
}

/// Writes CSV batches of one demo table as Parquet: each batch is parsed with the table's
/// fixed column types (inferring them per batch could disagree between batches) and
/// written as its own row groups.
struct ParquetTable<'w> {
    name: &'static str,
    schema: polars::prelude::SchemaRef,
    writer: polars::io::parquet::write::BatchedWriter<&'w mut dyn std::io::Write>,
}

fn parquet_error(name: &str, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("cannot write {name} as Parquet: {e}"))
}

impl<'w> ParquetTable<'w> {
    /// `typed`: the columns that are not text, with their types.
    fn new(
        name: &'static str,
        header: &str,
        typed: &[(&str, polars::prelude::DataType)],
        out: &'w mut dyn std::io::Write,
    ) -> std::io::Result<ParquetTable<'w>> {
        use polars::prelude::*;
        let schema: Schema = (header.trim_end().split(','))
            .map(|n| {
                let dtype = typed.iter().find(|(t, _)| *t == n).map_or(DataType::String, |(_, d)| d.clone());
                Field::new(n.into(), dtype)
            })
            .collect();
        let writer = ParquetWriter::new(out).batched(&schema).map_err(|e| parquet_error(name, e))?;
        Ok(ParquetTable { name, schema: Arc::new(schema), writer })
    }

    fn add(&mut self, text: &str) -> std::io::Result<()> {
        use polars::prelude::*;
        let mut df = CsvReadOptions::default()
            .with_has_header(false)
            .with_schema(Some(self.schema.clone()))
            .into_reader_with_file_handle(std::io::Cursor::new(text.as_bytes()))
            .finish()
            .map_err(|e| parquet_error(self.name, e))?;
        // One row group per batch: the reader's chunks (a few thousand rows each) would
        // otherwise each become a row group of their own.
        df.rechunk_mut_par();
        self.writer.write_batch(&df).map_err(|e| parquet_error(self.name, e))
    }

    fn finish(self) -> std::io::Result<()> {
        self.writer.finish().map(|_| ()).map_err(|e| parquet_error(self.name, e))
    }
}

/// One demo table being written: CSV or Parquet, as one file or as part files.
struct TableSink<'w> {
    parts: Vec<PartSink<'w>>,
    /// Per part: the rows of the current batch that go to it.
    split: Vec<String>,
}

enum PartSink<'w> {
    Csv(&'w mut dyn std::io::Write),
    Parquet(Box<ParquetTable<'w>>),
}

/// The part of a partitioned table that a client's rows go to: FNV-1a of the id, so
/// that a client's rows are all in one part, spread evenly, the same on every machine.
fn part_of(client: &str, parts: usize) -> usize {
    let hash = client.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (hash % parts as u64) as usize
}

impl<'w> TableSink<'w> {
    fn new(
        format: DataFormat,
        (name, header): (&'static str, &str),
        typed: &[(&str, polars::prelude::DataType)],
        outs: &'w mut [&mut dyn std::io::Write],
    ) -> std::io::Result<TableSink<'w>> {
        let mut parts = Vec::new();
        for out in outs.iter_mut() {
            parts.push(match format {
                DataFormat::Csv => {
                    out.write_all(header.as_bytes())?;
                    PartSink::Csv(&mut **out)
                }
                DataFormat::Parquet => PartSink::Parquet(Box::new(ParquetTable::new(name, header, typed, &mut **out)?)),
            });
        }
        let split = vec![String::new(); parts.len()];
        Ok(TableSink { parts, split })
    }

    fn add(&mut self, text: &str) -> std::io::Result<()> {
        if self.parts.len() > 1 {
            self.split.iter_mut().for_each(String::clear);
            for line in text.split_inclusive('\n') {
                let client = line.split(',').next().unwrap_or_default();
                self.split[part_of(client, self.parts.len())].push_str(line);
            }
        }
        for (k, part) in self.parts.iter_mut().enumerate() {
            let text = if self.split.len() > 1 { self.split[k].as_str() } else { text };
            if text.is_empty() {
                continue;
            }
            match part {
                PartSink::Csv(out) => out.write_all(text.as_bytes())?,
                PartSink::Parquet(table) => table.add(text)?,
            }
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        for part in self.parts {
            if let PartSink::Parquet(table) = part {
                table.finish()?;
            }
        }
        Ok(())
    }
}

/// `sustain demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    write_demo(args, BATCH_CLIENTS)
}

fn write_demo(args: &DemoArgs, batch: u64) -> Result<()> {
    use polars::prelude::DataType;
    let ext = match args.format {
        DataFormat::Csv => "csv",
        DataFormat::Parquet => "parquet",
    };
    let n_parts = args.parts.map_or(1, |p| p.max(1) as usize);
    let name = |stem: &str, k: usize| match args.parts {
        None => format!("{stem}.{ext}"),
        Some(_) => format!("{stem}/part-{k:03}.{ext}"),
    };
    let mut names: Vec<String> = (0..n_parts).map(|k| name("measurements", k)).collect();
    names.extend((0..n_parts).map(|k| name("goals", k)));
    names.push("truth.csv".into());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let staging = crate::output::staging::Staging::new(&args.out)?;
    let mut n = 0;
    staging.write_together(&names, |w| {
        let (tables, truth) = w.split_at_mut(2 * n_parts);
        let [truth] = truth else { return Err(std::io::Error::other("one truth file")) };
        let (mw, gw) = tables.split_at_mut(n_parts);
        // ORS scores are decimals, the others whole numbers; dates are Parquet dates.
        let m_types = [
            ("date", DataType::Date),
            ("session", DataType::Int64),
            ("score", DataType::Float64),
            ("episode_end", DataType::Date),
        ];
        let mut m = TableSink::new(args.format, ("measurements", MEASUREMENTS_HEADER), &m_types, mw)?;
        let g_types = [("date", DataType::Date), ("rating", DataType::Int64), ("weight", DataType::Int64)];
        let mut g = TableSink::new(args.format, ("goals", GOALS_HEADER), &g_types, gw)?;
        truth.write_all(TRUTH_HEADER.as_bytes())?;
        let staff = Staff { therapists: args.therapists as usize, sites: args.sites as usize };
        generate_batches(args.clients, args.seed, batch, staff, |b| {
            n += b.n_measurements;
            m.add(&b.measurements)?;
            g.add(&b.goals)?;
            truth.write_all(b.truth.as_bytes())
        })?;
        m.finish()?;
        g.finish()
    })?;
    staging.commit()?;
    if !args.quiet {
        eprintln!("sustain: wrote {} clients, {n} measurement rows to {}", args.clients, args.out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let a = generate(20, 7);
        let b = generate(20, 7);
        assert_eq!(a.measurements, b.measurements);
        assert_ne!(a.measurements, generate(20, 8).measurements);
    }

    #[test]
    fn batches_join_up_to_the_data_made_at_once() {
        let whole = generate(25, 3);
        let mut joined = DemoData::default();
        let mut batches = 0;
        generate_batches(25, 3, 7, Staff::default(), |b| {
            batches += 1;
            joined.measurements.push_str(&b.measurements);
            joined.goals.push_str(&b.goals);
            joined.truth.push_str(&b.truth);
            joined.n_measurements += b.n_measurements;
            Ok(())
        })
        .unwrap();
        assert_eq!(batches, 4, "7 + 7 + 7 + 4 clients");
        assert_eq!(format!("{MEASUREMENTS_HEADER}{}", joined.measurements), whole.measurements);
        assert_eq!(format!("{GOALS_HEADER}{}", joined.goals), whole.goals);
        assert_eq!(format!("{TRUTH_HEADER}{}", joined.truth), whole.truth);
        assert_eq!(joined.n_measurements, whole.n_measurements);
    }

    #[test]
    fn parquet_written_in_batches_holds_the_rows_of_the_csv() {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::domain::registry::Registry::builtin();
        let today = crate::domain::dates::parse_iso_date("2026-11-26").unwrap();
        let read = |format: DataFormat| {
            let out = dir.path().join(format!("{format:?}"));
            let args = DemoArgs {
                clients: 25,
                seed: 2,
                out: out.clone(),
                format,
                parts: None,
                quiet: true,
                therapists: 8,
                sites: 3,
            };
            write_demo(&args, 7).unwrap();
            let ext = if format == DataFormat::Csv { "csv" } else { "parquet" };
            let path = out.join(format!("measurements.{ext}"));
            let mut reader =
                crate::input::ingest::TableReader::open(&path, crate::domain::columns::Table::Measurements).unwrap();
            let (m, rejected) = crate::input::ingest::measurements(
                &mut reader,
                &registry,
                crate::input::validate::DateRules::iso(today),
            )
            .unwrap();
            assert!(rejected.is_empty());
            (
                m.client,
                m.date,
                m.session,
                m.score,
                (0..m.keys.clients.len() as u32).map(|i| m.keys.clients.name(i).to_string()).collect::<Vec<_>>(),
            )
        };
        let csv = read(DataFormat::Csv);
        assert!(csv.0.len() > 100);
        assert_eq!(read(DataFormat::Parquet), csv);
    }

    #[test]
    fn uniform_and_normal_look_right() {
        let mut r = Rng::new(1);
        let xs: Vec<f64> = (0..20_000).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{mean} {var}");
        assert!((0..1000).map(|_| r.uniform()).all(|u| (0.0..1.0).contains(&u)));
    }

    #[test]
    fn dip_course_worsens_then_improves() {
        let c: Vec<f64> = (0..=10).map(|k| course(Shape::DipThenImprovement, k, 10, 3)).collect();
        assert_eq!(c[3], -1.0);
        assert!(c[1] < 0.0 && c[10] > 0.99);
    }
}
