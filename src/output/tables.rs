//! Renders computed results as CSV bytes. Every text value that came from the data
//! passes through [`cell`], so that a key such as `=cmd|…` cannot become a formula
//! when the file is opened in a spreadsheet.

use crate::analyses::followup::{Curve, Durability, FollowUpScore};
use crate::analyses::sudden_gains::SuddenGains;
use crate::domain::columns::{Keys, NO_KEY};
use crate::domain::episodes::{EpisodeMeasure, Episodes};
use crate::domain::registry::Registry;
use std::borrow::Cow;
use std::io::{self, Write};

/// Makes a text value inert in spreadsheets: values starting with `=`, `+`, `-`, `@`,
/// tab or carriage return get a leading apostrophe (OWASP CSV-injection advice).
pub fn cell(s: &str) -> Cow<'_, str> {
    if needs_guard(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether a spreadsheet could read `s` as a formula (see [`cell`]).
#[inline]
fn needs_guard(s: &str) -> bool {
    matches!(s.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

/// Whether a CSV field holding `s` must be quoted: it holds a comma, a quote, CR or LF.
#[inline]
fn needs_quotes(s: &[u8]) -> bool {
    s.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Shortest round-trip decimal form; `-0` prints as `0`.
pub fn num(x: f64) -> String {
    let mut out = Vec::new();
    push_num(&mut out, x);
    String::from_utf8(out).expect("ASCII")
}

/// Appends `x` as Rust's `{}` prints it (shortest round-trip digits, never an exponent),
/// with `-0` as `0`: integers through `itoa`, other values through `ryu`, whose digits are
/// the same shortest round-trip digits; the rare value `ryu` would write with an
/// exponent goes through `format!`.
pub fn push_num(out: &mut Vec<u8>, x: f64) {
    if x == 0.0 {
        out.push(b'0');
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
    } else if x.is_finite() {
        let mut b = ryu::Buffer::new();
        let s = b.format_finite(x);
        if s.contains('e') {
            out.extend_from_slice(format!("{x}").as_bytes());
        } else {
            out.extend_from_slice(s.as_bytes());
        }
    } else {
        out.extend_from_slice(format!("{x}").as_bytes());
    }
}

/// One value of a CSV row, formatted only as it is written: the large tables have
/// millions of rows, and a `String` per cell was most of their cost. It holds no text of
/// its own, so a row of values is built and dropped without touching the heap.
#[derive(Debug, Clone, Copy)]
pub enum V<'a> {
    /// Text, quoted if it must be.
    T(&'a str),
    /// A key from the data (client, episode, …): made inert as [`cell`] does, and quoted
    /// if it must be.
    Key(&'a str),
    /// A fixed word of ours (`true`, an outcome's name, …): written as it is, since it
    /// never holds what needs quotes (checked in debug builds).
    Word(&'static str),
    Num(f64),
    /// A number or an empty cell.
    OptNum(Option<f64>),
    /// A number, or an empty cell for NaN (the sudden-gains package's missing value).
    NanEmpty(f64),
    Int(i64),
    OptInt(Option<i64>),
    Day(crate::domain::dates::Day),
    OptDay(Option<crate::domain::dates::Day>),
}

impl<'a> From<&'a str> for V<'a> {
    fn from(s: &'a str) -> V<'a> {
        V::T(s)
    }
}

/// A CSV writer for the result tables. It writes what the `csv` crate writes with its
/// defaults and `\n` line ends (a field is quoted only when it holds a comma, a quote, CR
/// or LF, quotes doubled; a record of one empty field is `""`), but formats numbers
/// straight into its row buffer and hands the output large slices: the general writer's
/// per-field state machine was a tenth of a 10 M-row run.
pub struct CsvOut<'w> {
    out: &'w mut dyn Write,
    buf: Vec<u8>,
    /// Fields written in the current record, and where its bytes begin in `buf`.
    fields: usize,
    record_start: usize,
}

/// [`CsvOut`] hands its buffer to the writer once it holds this many bytes.
pub const CSV_CHUNK: usize = 1 << 16;

impl<'w> CsvOut<'w> {
    pub fn new(out: &'w mut dyn Write) -> CsvOut<'w> {
        CsvOut { out, buf: Vec::with_capacity(CSV_CHUNK + 4096), fields: 0, record_start: 0 }
    }

    #[inline]
    fn separate(&mut self) {
        if self.fields > 0 {
            self.buf.push(b',');
        }
        self.fields += 1;
    }

    /// One text field, quoted if it must be.
    #[inline]
    pub fn text(&mut self, s: &[u8]) {
        self.separate();
        self.push_text(b"", s);
    }

    /// `guard` then `s` as one field's bytes, quoted if `s` must be (a guard is an
    /// apostrophe, which never needs quotes).
    #[inline]
    fn push_text(&mut self, guard: &[u8], s: &[u8]) {
        if needs_quotes(s) {
            self.buf.push(b'"');
            self.buf.extend_from_slice(guard);
            for &b in s {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(guard);
            self.buf.extend_from_slice(s);
        }
    }

    /// One value (numbers, counts and dates never need quotes). Inlined into the row
    /// loops: a call per cell was a visible share of writing the large tables.
    #[inline(always)]
    pub fn value(&mut self, v: &V) {
        self.separate();
        match *v {
            V::T(s) => self.push_text(b"", s.as_bytes()),
            V::Key(s) => self.push_text(if needs_guard(s) { b"'" } else { b"" }, s.as_bytes()),
            V::Word(s) => {
                debug_assert!(!needs_quotes(s.as_bytes()) && !needs_guard(s), "{s:?} is not a plain word");
                self.buf.extend_from_slice(s.as_bytes());
            }
            V::Num(x) | V::OptNum(Some(x)) => push_num(&mut self.buf, x),
            V::NanEmpty(x) if !x.is_nan() => push_num(&mut self.buf, x),
            V::Int(i) | V::OptInt(Some(i)) => self.buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
            V::Day(d) | V::OptDay(Some(d)) => self.buf.extend_from_slice(&crate::domain::dates::day_bytes(d)),
            V::OptNum(None) | V::NanEmpty(_) | V::OptInt(None) | V::OptDay(None) => {}
        }
    }

    /// Ends the current record.
    pub fn end_record(&mut self) -> io::Result<()> {
        if self.fields == 1 && self.buf.len() == self.record_start {
            self.buf.extend_from_slice(b"\"\"");
        }
        self.buf.push(b'\n');
        self.fields = 0;
        if self.buf.len() >= CSV_CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        self.record_start = self.buf.len();
        Ok(())
    }

    /// A record of text fields (headers, small tables).
    pub fn write_record<I, T>(&mut self, fields: I) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        for f in fields {
            self.text(f.as_ref());
        }
        self.end_record()
    }

    /// A row of a table with fixed columns: the compiler checks that it has as many
    /// values as the table has columns.
    pub fn table_row<const N: usize>(&mut self, _columns: &[&str; N], row: &[V; N]) -> io::Result<()> {
        self.row(row)
    }

    /// A record of values.
    pub fn row(&mut self, row: &[V]) -> io::Result<()> {
        for v in row {
            self.value(v);
        }
        self.end_record()
    }

    /// A record of values each given beside its column's name.
    pub fn named_row(&mut self, row: &[(&str, V)]) -> io::Result<()> {
        for (_, v) in row {
            self.value(v);
        }
        self.end_record()
    }

    /// Writes out what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn opt_bool(x: Option<bool>) -> V<'static> {
    V::Word(match x {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    })
}

fn key(interner: &crate::domain::columns::Interner, id: u32) -> V<'_> {
    if id == NO_KEY {
        V::Word("")
    } else {
        V::Key(interner.name(id))
    }
}

/// `episodes.csv`: one row per episode × measure. Each value is built beside its column
/// name, and a test keeps those names equal to the header's, so the two cannot drift apart.
pub fn episodes_csv(
    out: &mut dyn Write,
    keys: &Keys,
    eps: &Episodes,
    flags: &[Durability],
    registry: &Registry,
) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(EPISODE_COLUMNS)?;
    for (it, d) in eps.items.iter().zip(flags) {
        w.named_row(&episode_row(keys, it, d, registry))?;
    }
    w.finish()
}

/// The columns of `episodes.csv`, in order (a test keeps it equal to the names
/// `episode_row` gives its values).
pub const EPISODE_COLUMNS: &[&str] = &[
    "client_id",
    "episode_id",
    "therapist_id",
    "site_id",
    "measure",
    "n_scores",
    "n_followup",
    "first_date",
    "last_date",
    "baseline",
    "final",
    "change",
    "rci",
    "reliable_change",
    "caseness_start",
    "caseness_end",
    "outcome",
    "recovery",
    "reliable_recovery",
    "response",
    "remission",
    "paired",
    "status",
    "ended_by",
    "relapse",
    "relapse_date",
    "recovery_maintained",
    "improvement_lost",
    "late_improvement",
    "deteriorated_since_end",
    "durability",
    "last_scores_held",
    "tt_caseness",
    "tt_recovery",
    "tt_reliable_improvement",
    "tt_reliable_deterioration",
    "tt_reliable_recovery",
    "series_check",
];

fn episode_row<'a>(
    keys: &'a Keys,
    it: &'a crate::domain::episodes::EpisodeMeasure,
    d: &Durability,
    registry: &'a Registry,
) -> [(&'static str, V<'a>); EPISODE_COLUMNS.len()] {
    let c = &it.classification;
    let tt = it.talking_therapies;
    let ttb = |f: fn(&crate::domain::episodes::TalkingTherapies) -> bool| opt_bool(tt.as_ref().map(f));
    [
        ("client_id", key(&keys.clients, it.client)),
        ("episode_id", key(&keys.episodes, it.episode)),
        ("therapist_id", key(&keys.therapists, it.therapist)),
        ("site_id", key(&keys.sites, it.site)),
        ("measure", registry.get(it.measure as usize).code.as_str().into()),
        ("n_scores", V::Int(it.n_scores as i64)),
        ("n_followup", V::Int(d.n_followup as i64)),
        ("first_date", V::Day(it.first_date)),
        ("last_date", V::OptDay(it.paired().then_some(it.last_date))),
        ("baseline", V::Num(it.baseline)),
        ("final", V::OptNum(it.final_score)),
        ("change", V::OptNum(c.change)),
        ("rci", V::OptNum(c.rci)),
        ("reliable_change", V::Word(c.reliable_change.map_or("", |r| r.as_str()))),
        ("caseness_start", opt_bool(c.caseness_start)),
        ("caseness_end", opt_bool(c.caseness_end)),
        ("outcome", V::Word(c.outcome.map_or("", |o| o.as_str()))),
        ("recovery", opt_bool(c.recovery)),
        ("reliable_recovery", opt_bool(c.reliable_recovery)),
        ("response", opt_bool(c.response)),
        ("remission", opt_bool(c.remission)),
        ("paired", opt_bool(Some(it.paired()))),
        ("status", V::Word(it.status().as_str())),
        ("ended_by", V::Word(it.status().ended_by().map_or("", |b| b.as_str()))),
        ("relapse", opt_bool(d.relapse)),
        ("relapse_date", V::OptDay(d.relapse_date)),
        ("recovery_maintained", opt_bool(d.recovery_maintained)),
        ("improvement_lost", opt_bool(d.improvement_lost)),
        ("late_improvement", opt_bool(d.late_improvement)),
        ("deteriorated_since_end", opt_bool(d.deteriorated_since_end)),
        ("durability", V::OptNum(d.durability_last)),
        ("last_scores_held", opt_bool(d.last_scores_held)),
        ("tt_caseness", ttb(|t| t.caseness)),
        ("tt_recovery", ttb(|t| t.recovery)),
        ("tt_reliable_improvement", ttb(|t| t.reliable_improvement)),
        ("tt_reliable_deterioration", ttb(|t| t.reliable_deterioration)),
        ("tt_reliable_recovery", ttb(|t| t.reliable_recovery)),
        ("series_check", V::Word(it.checks.words())),
    ]
}

/// The columns of `sudden_gains.csv`, in order.
const SUDDEN_GAIN_COLUMNS: [&str; 19] = [
    "client_id",
    "episode_id",
    "measure",
    "kind",
    "pregain_session",
    "postgain_session",
    "pregain_score",
    "postgain_score",
    "magnitude",
    "reversal_value",
    "reversal",
    "score_n_minus_2",
    "score_n_minus_1",
    "score_n_plus_2",
    "score_n_plus_3",
    "change_proportion",
    "n_pre",
    "n_post",
    "t_critical",
];

/// `sudden_gains.csv`: one row per sudden gain or loss.
pub fn sudden_gains_csv(
    out: &mut dyn Write,
    keys: &Keys,
    eps: &Episodes,
    sg: &SuddenGains,
    registry: &Registry,
) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(SUDDEN_GAIN_COLUMNS)?;
    for f in &sg.found {
        let it = &eps.items[f.item];
        let e = &f.event;
        w.table_row(
            &SUDDEN_GAIN_COLUMNS,
            &[
                key(&keys.clients, it.client),
                key(&keys.episodes, it.episode),
                registry.get(it.measure as usize).code.as_str().into(),
                V::Word(f.kind.as_str()),
                V::Int(f.pregain_session as i64),
                V::Int((f.pregain_session + 1) as i64),
                V::NanEmpty(e.pregain_score),
                V::NanEmpty(e.postgain_score),
                V::NanEmpty(f.magnitude),
                V::NanEmpty(e.reversal_value),
                opt_bool(e.reversal),
                V::NanEmpty(e.around[0]),
                V::NanEmpty(e.around[1]),
                V::NanEmpty(e.around[2]),
                V::NanEmpty(e.around[3]),
                V::OptNum(f.change_proportion),
                V::Int(e.interval.n_pre as i64),
                V::Int(e.interval.n_post as i64),
                V::OptNum(e.interval.t_crit),
            ],
        )?;
    }
    w.finish()
}

/// The columns of `sudden_gains_byclient.csv`, in order.
const BYCLIENT_COLUMNS: [&str; 11] = [
    "client_id",
    "episode_id",
    "measure",
    "n_gains",
    "n_losses",
    "gain_pregain_session",
    "gain_magnitude",
    "gain_reversal",
    "loss_pregain_session",
    "loss_magnitude",
    "loss_reversal",
];

/// `sudden_gains_byclient.csv`: one row per episode × measure that was tested, with the
/// number of gains and losses and the one of each kept by the selection rule.
pub fn sudden_gains_byclient_csv(
    out: &mut dyn Write,
    keys: &Keys,
    eps: &Episodes,
    sg: &SuddenGains,
    registry: &Registry,
    rule: crate::analyses::sudden_gains::Select,
) -> io::Result<()> {
    use crate::analyses::sudden_gains::{select, Found, Kind};
    let mut w = CsvOut::new(out);
    w.write_record(BYCLIENT_COLUMNS)?;
    let mut i = 0;
    for (idx, it) in eps.items.iter().enumerate() {
        let start = i;
        while i < sg.found.len() && sg.found[i].item == idx {
            i += 1;
        }
        let found = &sg.found[start..i];
        let of_kind = |k: Kind| found.iter().filter(|f| f.kind == k).cloned().collect::<Vec<_>>();
        let (gains, losses) = (of_kind(Kind::Gain), of_kind(Kind::Loss));
        let [gain, loss] = [&gains, &losses].map(|list| select(list, rule, |f| f.event.pregain, |f| f.magnitude));
        let pregain = |f: Option<&Found>| V::OptInt(f.map(|f| f.pregain_session as i64));
        let magnitude = |f: Option<&Found>| f.map_or(V::OptNum(None), |f| V::NanEmpty(f.magnitude));
        let reversal = |f: Option<&Found>| opt_bool(f.and_then(|f| f.event.reversal));
        w.table_row(
            &BYCLIENT_COLUMNS,
            &[
                key(&keys.clients, it.client),
                key(&keys.episodes, it.episode),
                registry.get(it.measure as usize).code.as_str().into(),
                V::Int(gains.len() as i64),
                V::Int(losses.len() as i64),
                pregain(gain),
                magnitude(gain),
                reversal(gain),
                pregain(loss),
                magnitude(loss),
                reversal(loss),
            ],
        )?;
    }
    w.finish()
}

/// The columns of `followup.csv`, in order.
const FOLLOWUP_COLUMNS: [&str; 16] = [
    "client_id",
    "episode_id",
    "measure",
    "date",
    "days_after_end",
    "window",
    "status",
    "score",
    "baseline",
    "final",
    "change_from_baseline",
    "reliable_vs_baseline",
    "caseness",
    "change_from_end",
    "reliable_vs_end",
    "durability",
];

/// `followup.csv` (one row per follow-up score), written series by series as the scores
/// are judged ([`crate::analyses::followup::follow_up`]).
pub struct FollowUpTable<'w> {
    w: CsvOut<'w>,
    window_labels: Vec<String>,
}

impl<'w> FollowUpTable<'w> {
    /// Starts the table (its header); `months` are the follow-up windows.
    pub fn new(out: &'w mut dyn Write, months: &[f64]) -> io::Result<FollowUpTable<'w>> {
        let mut w = CsvOut::new(out);
        w.write_record(FOLLOWUP_COLUMNS)?;
        let window_labels = months.iter().map(|&mo| format!("{}m", num(mo))).collect();
        Ok(FollowUpTable { w, window_labels })
    }

    /// The rows of some scores, in the order given.
    pub fn add(
        &mut self,
        keys: &Keys,
        eps: &Episodes,
        scores: &[FollowUpScore],
        registry: &Registry,
    ) -> io::Result<()> {
        for f in scores {
            self.row(keys, &eps.items[f.item], f, registry)?;
        }
        Ok(())
    }

    fn row(&mut self, keys: &Keys, it: &EpisodeMeasure, f: &FollowUpScore, registry: &Registry) -> io::Result<()> {
        let labels = &self.window_labels;
        self.w.table_row(
            &FOLLOWUP_COLUMNS,
            &[
                key(&keys.clients, it.client),
                key(&keys.episodes, it.episode),
                registry.get(it.measure as usize).code.as_str().into(),
                V::Day(f.date),
                V::Int(f.days_after_end as i64),
                V::T(f.window.map_or("", |i| &labels[i])),
                V::Word(if f.before_end { "before_end_of_treatment" } else { "used" }),
                V::Num(f.score),
                V::Num(it.baseline),
                V::OptNum(it.final_score),
                V::Num(f.change_from_baseline),
                V::Word(f.reliable_vs_baseline.map_or("", |r| r.as_str())),
                opt_bool(f.caseness),
                V::OptNum(f.change_from_end),
                V::Word(f.reliable_vs_end.map_or("", |r| r.as_str())),
                V::OptNum(f.durability),
            ],
        )
    }

    pub fn finish(self) -> io::Result<()> {
        self.w.finish()
    }
}

/// `relapse_survival.csv`: the Kaplan–Meier curves, one row per time per stratum.
pub fn relapse_survival_csv(out: &mut dyn Write, curves: &[Curve], registry: &Registry) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record([
        "measure",
        "stratification",
        "stratum",
        "time_days",
        "n_risk",
        "n_event",
        "n_censor",
        "surv",
        "std_err",
        "std_err_cumhaz",
        "lower",
        "upper",
        "cumhaz",
    ])?;
    for c in curves {
        for r in &c.fit.rows {
            w.write_record([
                registry.get(c.measure as usize).code.as_str(),
                c.stratification,
                &cell(&c.stratum),
                &num(r.time),
                &r.n_risk.to_string(),
                &r.n_event.to_string(),
                &r.n_censor.to_string(),
                &num(r.surv),
                &opt_num(r.std_err),
                &if r.std_err_cumhaz.is_finite() { num(r.std_err_cumhaz) } else { "Inf".into() },
                &opt_num(r.lower),
                &opt_num(r.upper),
                &num(r.cumhaz),
            ])?;
        }
    }
    w.finish()
}

/// The columns of `goals.csv`, in order.
const GOAL_COLUMNS: [&str; 22] = [
    "client_id",
    "episode_id",
    "goal_id",
    "parent_goal_id",
    "level",
    "scale",
    "n_ratings",
    "first_date",
    "first_rating",
    "last_date",
    "last_rating",
    "change",
    "reliable_change",
    "followup_date",
    "followup_rating",
    "change_since_end",
    "held_at_followup",
    "weight",
    "n_objectives",
    "objectives_mean_change",
    "n_objectives_improved",
    "goal_check",
];

/// The columns of `goals_episodes.csv`, in order.
const GOAL_EPISODE_COLUMNS: [&str; 13] = [
    "client_id",
    "episode_id",
    "gbo_goals",
    "gbo_improved",
    "gbo_deteriorated",
    "gas_goals",
    "gas_t_end",
    "gas_t_followup",
    "gas_held",
    "goal_progress",
    "symptoms_improved",
    "agreement",
    "status",
];

/// `goals.csv` (one row per goal or objective) and `goals_episodes.csv` (goal figures
/// per episode, with agreement with symptom change), written client by client as the
/// goal results are made.
pub struct GoalTables<'w> {
    goals: CsvOut<'w>,
    episodes: CsvOut<'w>,
}

impl<'w> GoalTables<'w> {
    /// Starts both tables (their headers).
    pub fn new(goals: &'w mut dyn Write, episodes: &'w mut dyn Write) -> io::Result<GoalTables<'w>> {
        let (mut goals, mut episodes) = (CsvOut::new(goals), CsvOut::new(episodes));
        goals.write_record(GOAL_COLUMNS)?;
        episodes.write_record(GOAL_EPISODE_COLUMNS)?;
        Ok(GoalTables { goals, episodes })
    }

    /// The rows of one client (as [`crate::analyses::goals::analyse_by_client`] hands them on:
    /// clients in order, each client's rows in order).
    pub fn add(
        &mut self,
        g: &crate::domain::columns::GoalNames,
        goals: &[crate::analyses::goals::GoalResult],
        eps: &[crate::analyses::goals::EpisodeGoals],
    ) -> io::Result<()> {
        let date = |x: Option<(crate::domain::dates::Day, f64)>| V::OptDay(x.map(|r| r.0));
        let rating = |x: Option<(crate::domain::dates::Day, f64)>| V::OptNum(x.map(|r| r.1));
        for x in goals {
            let row = [
                key(&g.clients, x.client),
                key(&g.episodes, x.episode),
                key(&g.goals, x.goal),
                key(&g.goals, x.parent),
                V::Word(if x.parent == NO_KEY { "goal" } else { "objective" }),
                V::Word(x.scale.as_str()),
                V::Int(x.n_ratings as i64),
                date(x.first),
                rating(x.first),
                date(x.last),
                rating(x.last),
                V::OptNum(x.change),
                V::Word(x.reliable_change.map_or("", |r| r.as_str())),
                date(x.followup),
                rating(x.followup),
                V::OptNum(x.change_since_end),
                opt_bool(x.held_at_followup),
                V::Num(x.weight),
                V::Int(x.n_objectives as i64),
                V::OptNum(x.objectives_mean_change),
                V::Int(x.n_objectives_improved as i64),
                V::Word(match (x.parents_differ, x.weights_differ) {
                    (false, false) => "",
                    (true, false) => "parents_differ",
                    (false, true) => "weights_differ",
                    (true, true) => "parents_differ;weights_differ",
                }),
            ];
            self.goals.table_row(&GOAL_COLUMNS, &row)?;
        }
        for e in eps {
            let row = [
                key(&g.clients, e.client),
                key(&g.episodes, e.episode),
                V::Int(e.gbo_goals as i64),
                V::Int(e.gbo_improved as i64),
                V::Int(e.gbo_deteriorated as i64),
                V::Int(e.gas_goals as i64),
                V::OptNum(e.gas_t_end),
                V::OptNum(e.gas_t_followup),
                opt_bool(e.gas_held),
                opt_bool(e.goal_progress),
                opt_bool(e.symptoms_improved),
                V::Word(e.agreement.unwrap_or_default()),
                V::Word(if e.ended { "ended" } else { "open" }),
            ];
            self.episodes.table_row(&GOAL_EPISODE_COLUMNS, &row)?;
        }
        Ok(())
    }

    pub fn finish(self) -> io::Result<()> {
        self.goals.finish()?;
        self.episodes.finish()
    }
}

/// The columns of `trajectories.csv`, in order.
const TRAJECTORY_COLUMNS: [&str; 28] = [
    "client_id",
    "episode_id",
    "measure",
    "n_scores",
    "slope_per_session",
    "slope_per_week",
    "log_slope",
    "early_change",
    "sessions_to_reliable_improvement",
    "days_to_reliable_improvement",
    "sessions_to_recovery",
    "days_to_recovery",
    "dip",
    "dip_start_session",
    "dip_peak_session",
    "dip_depth",
    "dip_depth_from_baseline",
    "dip_length_sessions",
    "dip_resolved",
    "dip_kind",
    "shape",
    "etr_band",
    "not_on_track",
    "not_on_track_session",
    "shrunken_baseline",
    "shrunken_slope_per_session",
    "slope_rci",
    "change_vs_typical",
];

/// `trajectories.csv` (one row per episode × measure), written series by series as the
/// trajectories are made ([`crate::analyses::trajectories::analyse`]).
pub struct TrajectoryTable<'w> {
    w: CsvOut<'w>,
}

impl<'w> TrajectoryTable<'w> {
    /// Starts the table (its header).
    pub fn new(out: &'w mut dyn Write) -> io::Result<TrajectoryTable<'w>> {
        let mut w = CsvOut::new(out);
        w.write_record(TRAJECTORY_COLUMNS)?;
        Ok(TrajectoryTable { w })
    }

    /// The row of one series.
    pub fn add(
        &mut self,
        keys: &Keys,
        it: &EpisodeMeasure,
        t: &crate::analyses::trajectories::Trajectory,
        registry: &Registry,
    ) -> io::Result<()> {
        let int = |x: Option<i32>| V::OptInt(x.map(i64::from));
        let d = t.dip.as_ref();
        self.w.table_row(
            &TRAJECTORY_COLUMNS,
            &[
                key(&keys.clients, it.client),
                key(&keys.episodes, it.episode),
                registry.get(it.measure as usize).code.as_str().into(),
                V::Int(it.n_scores as i64),
                V::OptNum(t.slope_per_session),
                V::OptNum(t.slope_per_week),
                V::OptNum(t.log_slope),
                V::OptNum(t.early_change),
                int(t.sessions_to_reliable_improvement),
                int(t.days_to_reliable_improvement),
                int(t.sessions_to_recovery),
                int(t.days_to_recovery),
                opt_bool(it.paired().then_some(d.is_some())),
                int(d.map(|d| d.start)),
                int(d.map(|d| d.peak)),
                V::OptNum(d.map(|d| d.depth)),
                V::OptNum(d.map(|d| d.depth_from_baseline)),
                int(d.map(|d| d.length)),
                opt_bool(d.map(|d| d.resolved)),
                V::Word(d.map_or("", |d| d.kind)),
                V::Word(t.shape.map_or("", |s| s.as_str())),
                V::OptInt(t.band.map(|b| b as i64 + 1)),
                opt_bool(t.not_on_track),
                int(t.not_on_track_session),
                V::OptNum(t.shrunken_baseline),
                V::OptNum(t.shrunken_slope_per_session),
                V::OptNum(t.slope_rci),
                V::Word(t.change_vs_typical.unwrap_or("")),
            ],
        )
    }

    pub fn finish(self) -> io::Result<()> {
        self.w.finish()
    }
}

/// `expected_response.csv`: percentiles of the score by session since baseline, per
/// measure and intake-severity band.
pub fn expected_response_csv(
    out: &mut dyn Write,
    etr: &[crate::analyses::trajectories::EtrPoint],
    registry: &Registry,
) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(["measure", "band", "band_low", "band_high", "session", "n", "p10", "p25", "p50", "p75", "p90"])?;
    for p in etr {
        w.write_record([
            registry.get(p.measure as usize).code.clone(),
            (p.band + 1).to_string(),
            num(p.band_low),
            num(p.band_high),
            p.session.to_string(),
            p.n.to_string(),
            num(p.p10),
            num(p.p25),
            num(p.p50),
            num(p.p75),
            num(p.p90),
        ])?;
    }
    w.finish()
}

fn count_cells(c: crate::analyses::caseload::Count, s: &crate::stats::rates::Suppression, z: f64) -> [String; 5] {
    if s.hides(c.k, c.n) {
        return [s.count(c.k), s.count(c.n), "*".into(), "*".into(), "*".into()];
    }
    let (lo, hi) =
        crate::stats::rates::wilson(c.k, c.n, z).map_or((String::new(), String::new()), |(a, b)| (num(a), num(b)));
    [s.count(c.k), s.count(c.n), opt_num(c.rate()), lo, hi]
}

/// `therapists.csv` / `sites.csv`: one row per unit × measure, small counts suppressed.
pub fn units_csv(
    out: &mut dyn Write,
    units: &[crate::analyses::caseload::Unit],
    kind: &str,
    refs: &[crate::analyses::caseload::FunnelReference],
    s: &crate::stats::rates::Suppression,
    registry: &Registry,
) -> io::Result<()> {
    use crate::stats::rates::Z95;
    let mut w = CsvOut::new(out);
    let mut header: Vec<String> = vec![
        format!("{kind}_id"),
        "measure".into(),
        "episodes".into(),
        "in_treatment".into(),
        "paired".into(),
        "paired_share".into(),
        "at_caseness".into(),
    ];
    let rates = [
        "recovery",
        "reliable_recovery",
        "reliable_improvement",
        "reliable_deterioration",
        "response",
        "dropout",
        "recovery_maintained",
    ];
    for r in rates {
        for part in ["n", "of", "rate", "ci_low", "ci_high"] {
            header.push(format!("{r}_{part}"));
        }
    }
    header.extend(
        [
            "median_sessions",
            "effect_size_d",
            "d_ci_low",
            "d_ci_high",
            "practice_reliable_recovery",
            "funnel95_low",
            "funnel95_high",
            "funnel998_low",
            "funnel998_high",
            "funnel_flag",
            "expected_reliable_recovery",
            "adjusted_reliable_recovery",
            "shrunken_reliable_recovery",
            "improvement_effect",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for u in units.iter().filter(|u| u.kind == kind) {
        let hidden = s.hides(u.reliable_recovery.k, u.reliable_recovery.n);
        let small = u.episodes < s.threshold;
        let mut row: Vec<String> = vec![
            cell(&u.unit).into_owned(),
            registry.get(u.measure as usize).code.clone(),
            s.count(u.episodes),
            s.count(u.in_treatment),
            s.count(u.paired),
            match u.episodes {
                _ if s.hides(u.paired, u.episodes) => "*".into(),
                // Every episode of the unit is still in treatment.
                0 => String::new(),
                n => num(u.paired as f64 / n as f64),
            },
            s.count(u.at_caseness),
        ];
        for c in [
            u.recovery,
            u.reliable_recovery,
            u.reliable_improvement,
            u.reliable_deterioration,
            u.response,
            u.dropout,
            u.recovery_maintained,
        ] {
            row.extend(count_cells(c, s, Z95));
        }
        let hide = |x: String| if hidden { "*".to_string() } else { x };
        row.push(if small { "*".into() } else { opt_num(u.median_sessions) });
        let (d, dl, dh) = u.effect_size.map_or((None, None, None), |(a, b, c)| (Some(a), Some(b), Some(c)));
        row.extend([d, dl, dh].map(|x| if s.hides(u.paired, u.paired) { "*".into() } else { opt_num(x) }));
        let p0 = refs.iter().find(|r| r.kind == u.kind && r.measure == u.measure).map(|r| r.rate);
        row.push(opt_num(p0));
        row.push(hide(opt_num(u.funnel95.map(|x| x.0))));
        row.push(hide(opt_num(u.funnel95.map(|x| x.1))));
        row.push(hide(opt_num(u.funnel998.map(|x| x.0))));
        row.push(hide(opt_num(u.funnel998.map(|x| x.1))));
        row.push(hide(u.funnel_flag.unwrap_or_default().to_string()));
        row.push(hide(opt_num(u.expected_recovery)));
        row.push(hide(opt_num(u.adjusted_recovery)));
        row.push(hide(opt_num(u.shrunken_recovery)));
        row.push(if s.hides(u.paired, u.paired) { "*".into() } else { opt_num(u.improvement_effect) });
        w.write_record(&row)?;
    }
    w.finish()
}

/// The columns of `current.csv`, in order.
pub const CURRENT_COLUMNS: &[&str] = &[
    "client_id",
    "episode_id",
    "therapist_id",
    "site_id",
    "measure",
    "sessions_so_far",
    "first_date",
    "baseline",
    "latest_score",
    "latest_date",
    "days_since_last_score",
    "change_so_far",
    "reliable_change_so_far",
    "caseness_now",
    "expected_score",
    "not_on_track",
    "sudden_loss",
    "reliable_deterioration",
    "attention",
];

/// `current.csv`: each open episode × measure on the extract date and whether it needs
/// attention now. Never suppressed: it is for the practice's clinicians.
pub fn current_csv(
    out: &mut dyn Write,
    keys: &Keys,
    eps: &Episodes,
    rows: &[crate::analyses::current::Current],
    opts: &crate::analyses::current::Options,
    registry: &Registry,
) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(CURRENT_COLUMNS)?;
    for r in rows {
        let it = &eps.items[r.item];
        let c = &it.classification;
        let attention = r.attention.map(|a| a.code(opts)).unwrap_or_default();
        let row: [(&str, V); CURRENT_COLUMNS.len()] = [
            ("client_id", key(&keys.clients, it.client)),
            ("episode_id", key(&keys.episodes, it.episode)),
            ("therapist_id", key(&keys.therapists, it.therapist)),
            ("site_id", key(&keys.sites, it.site)),
            ("measure", registry.get(it.measure as usize).code.as_str().into()),
            ("sessions_so_far", V::Int(it.n_scores as i64)),
            ("first_date", V::Day(it.first_date)),
            ("baseline", V::Num(it.baseline)),
            ("latest_score", V::Num(r.latest)),
            ("latest_date", V::Day(it.last_date)),
            ("days_since_last_score", V::Int(i64::from(r.days_since_last))),
            ("change_so_far", V::OptNum(c.change)),
            ("reliable_change_so_far", V::Word(c.reliable_change.map_or("", |x| x.as_str()))),
            ("caseness_now", opt_bool(c.caseness_end.or(c.caseness_start.filter(|_| !it.paired())))),
            ("expected_score", V::OptNum(r.expected)),
            ("not_on_track", opt_bool(r.not_on_track)),
            ("sudden_loss", opt_bool(Some(r.sudden_loss))),
            ("reliable_deterioration", opt_bool(r.reliable_deterioration(it))),
            ("attention", V::T(&attention)),
        ];
        debug_assert!(row.iter().zip(CURRENT_COLUMNS).all(|((name, _), column)| name == column));
        w.named_row(&row)?;
    }
    w.finish()
}

/// `trends.csv`: headline rates by the month (or quarter) of the final score, with p-chart
/// limits; small counts suppressed.
pub fn trends_csv(
    out: &mut dyn Write,
    periods: &[crate::analyses::caseload::Period],
    s: &crate::stats::rates::Suppression,
    registry: &Registry,
) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record([
        "measure",
        "period",
        "caseload",
        "reliable_recovery_n",
        "reliable_recovery_of",
        "reliable_recovery_rate",
        "control_low",
        "control_high",
        "outside_limits",
        "reliable_improvement_n",
        "reliable_improvement_of",
        "reliable_improvement_rate",
    ])?;
    for p in periods {
        let hidden = s.hides(p.recovery.k, p.recovery.n);
        let h = |x: String| if hidden { "*".to_string() } else { x };
        let hi = s.hides(p.reliable_improvement.k, p.reliable_improvement.n);
        w.write_record([
            registry.get(p.measure as usize).code.clone(),
            p.period.clone(),
            s.count(p.caseload),
            s.count(p.recovery.k),
            s.count(p.recovery.n),
            h(opt_num(p.recovery.rate())),
            h(opt_num(p.limits.map(|l| l.0))),
            h(opt_num(p.limits.map(|l| l.1))),
            h(p.outside.unwrap_or_default().to_string()),
            s.count(p.reliable_improvement.k),
            s.count(p.reliable_improvement.n),
            if hi { "*".into() } else { opt_num(p.reliable_improvement.rate()) },
        ])?;
    }
    w.finish()
}

/// One line of `rejected.csv`.
pub struct RejectedLine<'a> {
    pub file: &'a str,
    pub line: u64,
    pub column: &'a str,
    pub code: &'a str,
    pub reason: &'a str,
}

/// `rejected.csv`: file, line, reason (plus the column and a reason code).
pub fn rejected_csv(out: &mut dyn Write, lines: &[RejectedLine]) -> io::Result<()> {
    let mut w = CsvOut::new(out);
    w.write_record(["file", "line", "reason", "column", "code"])?;
    for l in lines {
        w.write_record([&*cell(l.file), &l.line.to_string(), &*cell(l.reason), l.column, l.code])?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_out_writes_what_the_csv_crate_writes() {
        let records: Vec<Vec<&str>> = vec![
            vec!["plain", "with,comma", "with \"quote\"", "line\nbreak", "cr\rhere", ""],
            vec![""],
            vec!["", ""],
            vec!["'=formula", "ünïcödé", " spaced ", "#hash", "\"", ","],
            vec!["a long value of more than eight bytes", "eight b,", "=1+2", "-3,4", "@\"x\"", "+", "c001"],
        ];
        let mut ours = Vec::new();
        {
            let mut w = CsvOut::new(&mut ours);
            for r in &records {
                w.write_record(r).unwrap();
            }
            // Keys from the data come out as `cell` makes them, then quoted as any text.
            for r in &records {
                w.row(&r.iter().map(|&k| V::Key(k)).collect::<Vec<_>>()).unwrap();
            }
            w.row(&[V::Word("true"), V::Word(""), V::T("x\"y")]).unwrap();
            w.row(&[V::Num(1.5), V::OptNum(None), V::Int(-3), V::Day(0), V::NanEmpty(f64::NAN), "a,b".into()]).unwrap();
            w.finish().unwrap();
        }
        let mut theirs =
            csv::WriterBuilder::new().flexible(true).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
        for r in &records {
            theirs.write_record(r).unwrap();
        }
        for r in &records {
            theirs.write_record(r.iter().map(|k| cell(k).into_owned())).unwrap();
        }
        theirs.write_record(["true", "", "x\"y"]).unwrap();
        theirs.write_record(["1.5", "", "-3", "1970-01-01", "", "a,b"]).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs.into_inner().unwrap()).unwrap());
    }

    #[test]
    fn csv_out_hands_on_long_output_in_order() {
        let mut ours = Vec::new();
        let mut w = CsvOut::new(&mut ours);
        for i in 0..20_000 {
            w.row(&[V::Int(i), "x".into()]).unwrap();
        }
        w.finish().unwrap();
        let text = String::from_utf8(ours).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert_eq!(text.lines().nth(12_345), Some("12345,x"));
    }

    #[test]
    fn the_empty_table_header_matches_the_rows() {
        let mut keys = Keys::default();
        let reg = Registry::builtin();
        keys.clients.intern("c");
        keys.episodes.intern("");
        let it = crate::domain::episodes::EpisodeMeasure {
            client: 0,
            episode: 0,
            therapist: NO_KEY,
            site: NO_KEY,
            measure: 0,
            n_scores: 1,
            n_followup: 0,
            first_date: 0,
            last_date: 0,
            baseline: 10.0,
            final_score: None,
            classification: Default::default(),
            talking_therapies: None,
            checks: crate::domain::episodes::SeriesChecks::default()
                .with_status(crate::domain::episodes::Status::Ended(crate::domain::episodes::EndedBy::EndRow)),
            rows: 0..1,
        };
        let names: Vec<&str> = episode_row(&keys, &it, &Durability::default(), &reg).iter().map(|(n, _)| *n).collect();
        assert_eq!(names, EPISODE_COLUMNS);
    }

    #[test]
    fn formula_like_text_is_made_inert() {
        assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("c001"), "c001");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn numbers_print_shortest_and_never_negative_zero() {
        assert_eq!(num(3.0), "3");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(62.5), "62.5");
        assert_eq!(num(-1.4251309495484101), "-1.4251309495484101");
    }
}
