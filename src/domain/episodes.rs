//! Episodes: validated rows grouped into episode × measure series, each reduced to
//! baseline, final and its pre–post outcome, plus the NHS Talking Therapies
//! combined PHQ-9 + GAD-7 outcome per episode.
//!
//! Every per-episode analysis shares one sort of the rows, by (client, episode,
//! measure, session with missing sessions last, date, input order). The columns the
//! analyses read are laid out once in that order ([`SeriesRows`]), so a series is a
//! contiguous slice of each.

use crate::domain::columns::{Keys, Measurements, Phase, NO_KEY, NO_SESSION};
use crate::domain::dates::Day;
use crate::domain::duplicates::{measurement_duplicates, Duplicate};
use crate::domain::outcomes::{resolve_rule, Classification, ReliableCategory, ResolvedRule};
use crate::domain::registry::Registry;
use std::ops::Range;

/// The measurement rows of every series in series order: the shared sort applied once to
/// the four columns the per-episode analyses read, so that a series is a contiguous slice
/// of each ([`EpisodeMeasure::rows`]). Once these exist the input's row columns and the
/// sort order are dropped: 17 bytes a row instead of 39, and every analysis reads its
/// series in memory order instead of gathering each value through the order.
#[derive(Debug, Clone, Default)]
pub struct SeriesRows {
    pub date: Vec<Day>,
    pub session: Vec<i32>,
    pub phase: Vec<Phase>,
    pub score: Vec<f64>,
    /// Per measure (registry index): the highest session number (a missing one counting as
    /// [`NO_SESSION`]) of any valid score before follow-up, duplicates included: the
    /// sudden-gains series span up to it.
    pub last_session: Vec<Option<i32>>,
}

impl SeriesRows {
    /// Lays out the row columns of `m` the analyses read in `order` and hands back the
    /// names. The key columns go at once (the episodes took what they need from them
    /// already, [`plan_series`]), and each other input column as soon as it is laid out,
    /// so a column and its copy are the most ever held twice.
    fn gather(m: Measurements, order: &[u32], n_measures: usize) -> (SeriesRows, Keys) {
        use rayon::prelude::*;
        fn laid_out<T: Copy + Send + Sync>(values: Vec<T>, order: &[u32]) -> Vec<T> {
            order.par_iter().with_min_len(1 << 16).map(|&r| values[r as usize]).collect()
        }
        let Measurements { client, episode, therapist, site, date, session, phase, measure, score, keys, episode_end } =
            m;
        drop((client, episode, therapist, site, episode_end));
        let mut last_session = vec![None; n_measures];
        for ((&p, &s), &x) in phase.iter().zip(&session).zip(&measure) {
            if p != Phase::FollowUp {
                let last: &mut Option<i32> = &mut last_session[x as usize];
                *last = (*last).max(Some(s));
            }
        }
        drop(measure);
        let rows = SeriesRows {
            date: laid_out(date, order),
            session: laid_out(session, order),
            phase: laid_out(phase, order),
            score: laid_out(score, order),
            last_session,
        };
        (rows, keys)
    }
    pub fn len(&self) -> usize {
        self.score.len()
    }

    pub fn is_empty(&self) -> bool {
        self.score.is_empty()
    }
}

/// What the analyses take from the measurement rows: the keys, the episodes and their rows
/// in series order; and the rows left out on the way, for the rejections.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub keys: Keys,
    pub episodes: Episodes,
    pub rows: SeriesRows,
    /// Rows (indices into `Measurements`) left out as duplicates, with why.
    pub duplicates: Vec<(usize, Duplicate)>,
    /// Rows of series with only follow-up scores (no baseline to judge them against).
    pub orphans: Vec<usize>,
}

/// Sorts the rows into series, drops duplicates and follow-up-only series, builds the
/// episodes (on every row: a run's filter applies afterwards), judges each ended or open
/// by `ending`, and lays out their rows. Consumes the rows: only their keys are handed
/// back.
pub fn prepare(m: Measurements, registry: &Registry, ending: &EndRule) -> Prepared {
    let extract = Extract::of(&m, ending);
    let end_dates = end_dates(&m);
    let mut sorted = sort_rows(&m);
    let orphans = take_orphan_follow_ups(&m, &mut sorted);
    // Each series' keys and its episode's carers are taken through the order (the
    // carers' ties go to the earliest input row); the rest of the episodes is built from
    // the laid-out rows, once the input columns are gone.
    let (plan, n_episodes) = plan_series(&m, &sorted.order);
    let (rows, keys) = SeriesRows::gather(m, &sorted.order, registry.measures().len());
    drop(sorted.order);
    let episodes = build_episodes(&rows, &plan, n_episodes, registry, &Ending { extract, end_dates });
    Prepared { keys, episodes, rows, duplicates: sorted.duplicates, orphans }
}

/// How a run decides whether an episode has ended (`--as-of`, `--inactive-days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndRule {
    /// The extract date; `None`: the latest date in the measurements.
    pub as_of: Option<Day>,
    /// An episode whose last score is more than this many days before the extract date
    /// has ended.
    pub inactive_days: i32,
}

impl Default for EndRule {
    fn default() -> EndRule {
        EndRule { as_of: None, inactive_days: 90 }
    }
}

/// The extract date a run judged episodes by, and the inactivity rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Extract {
    #[serde(serialize_with = "crate::domain::dates::serialize_day")]
    pub as_of: Day,
    /// Whether it is the latest date in the measurements (no `--as-of`).
    pub from_data: bool,
    /// The latest date in the measurements.
    #[serde(serialize_with = "crate::domain::dates::serialize_day")]
    pub latest: Day,
    pub inactive_days: i32,
}

impl Extract {
    fn of(m: &Measurements, rule: &EndRule) -> Extract {
        let latest = m.date.iter().copied().max().unwrap_or(0);
        Extract {
            as_of: rule.as_of.unwrap_or(latest),
            from_data: rule.as_of.is_none(),
            latest,
            inactive_days: rule.inactive_days,
        }
    }
}

/// Why an episode counts as ended, in the order the rules are tried (`episodes.csv`
/// `ended_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EndedBy {
    /// Its `episode_end` is on or before the extract date.
    EndDate,
    /// It has a score in the `end` phase.
    EndRow,
    /// It has a follow-up score.
    FollowUp,
    /// Its last score is more than the inactivity limit before the extract date.
    Inactive,
}

impl EndedBy {
    pub const ALL: [EndedBy; 4] = [EndedBy::EndDate, EndedBy::EndRow, EndedBy::FollowUp, EndedBy::Inactive];

    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::EndDate => "end_date",
            EndedBy::EndRow => "end_row",
            EndedBy::FollowUp => "follow_up",
            EndedBy::Inactive => "inactive",
        }
    }
}

/// An episode on the extract date: ended (and why), or open (in treatment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Open,
    Ended(EndedBy),
}

impl Status {
    /// The first rule that ends the episode, or open (the contract's order).
    pub fn judge(end_date: Option<Day>, end_row: bool, follow_up: bool, last_date: Day, x: &Extract) -> Status {
        if end_date.is_some_and(|d| d <= x.as_of) {
            Status::Ended(EndedBy::EndDate)
        } else if end_row {
            Status::Ended(EndedBy::EndRow)
        } else if follow_up {
            Status::Ended(EndedBy::FollowUp)
        } else if i64::from(x.as_of) - i64::from(last_date) > i64::from(x.inactive_days) {
            Status::Ended(EndedBy::Inactive)
        } else {
            Status::Open
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Ended(_) => "ended",
        }
    }

    pub fn ended_by(self) -> Option<EndedBy> {
        match self {
            Status::Open => None,
            Status::Ended(by) => Some(by),
        }
    }
}

/// The latest `episode_end` of each (client, episode) that has one.
fn end_dates(m: &Measurements) -> std::collections::HashMap<(u32, u32), Day, foldhash::fast::FixedState> {
    let mut out = std::collections::HashMap::with_hasher(foldhash::fast::FixedState::default());
    for &(row, day) in &m.episode_end {
        let e = out.entry((m.client[row as usize], m.episode[row as usize])).or_insert(day);
        *e = (*e).max(day);
    }
    out
}

/// What judging episodes ended or open takes.
struct Ending {
    extract: Extract,
    end_dates: std::collections::HashMap<(u32, u32), Day, foldhash::fast::FixedState>,
}

/// Judges each episode (its items are consecutive) ended or open, from all its rows.
fn judge_episodes(items: &mut [EpisodeMeasure], rows: &SeriesRows, ending: &Ending) {
    let mut i = 0;
    while i < items.len() {
        let key = (items[i].client, items[i].episode);
        let j = i + items[i..].iter().take_while(|it| (it.client, it.episode) == key).count();
        let (mut end_row, mut follow_up, mut last) = (false, false, Day::MIN);
        for it in &items[i..j] {
            let (phase, date) = (&rows.phase[it.rows.clone()], &rows.date[it.rows.clone()]);
            end_row |= phase.contains(&Phase::End);
            // A follow-up dated before the series' final score (which `followup` sets
            // aside as `before_end`) says nothing of the end.
            follow_up |=
                it.n_followup > 0 && phase.iter().zip(date).any(|(&p, &d)| p == Phase::FollowUp && d >= it.last_date);
            last = last.max(date.iter().copied().max().unwrap_or(Day::MIN));
        }
        let status = Status::judge(ending.end_dates.get(&key).copied(), end_row, follow_up, last, &ending.extract);
        for it in &mut items[i..j] {
            it.set_status(status);
        }
        i = j;
    }
}

/// The rows of the shared sort, duplicates removed.
#[derive(Debug, Clone)]
pub struct SortedRows {
    /// Row indices into `Measurements` in series order.
    pub order: Vec<u32>,
    /// Rows left out as duplicates, with why.
    pub duplicates: Vec<(usize, Duplicate)>,
}

/// Sorts rows into series order and drops duplicate rows.
pub fn sort_rows(m: &Measurements) -> SortedRows {
    let client_rank = m.keys.clients.sort_ranks();
    let episode_rank = m.keys.episodes.sort_ranks();
    let group = |i: usize| client_rank[m.client[i] as usize] as usize;
    let mut order = crate::domain::columns::sort_grouped(m.len(), m.keys.clients.len(), group, |i| {
        // Rows without a session number go after those with one, except an assessment,
        // which is the baseline where there is one (the contract).
        let session = match (m.session[i], m.phase[i]) {
            (NO_SESSION, Phase::Assessment) => i32::MIN,
            (NO_SESSION, _) => i32::MAX,
            (s, _) => s,
        };
        (episode_rank[m.episode[i] as usize], m.measure[i], session, m.date[i], i)
    });
    let duplicates = measurement_duplicates(&order, m);
    remove_rows(&mut order, duplicates.iter().map(|d| d.0));
    SortedRows { order, duplicates }
}

/// Rows of series that hold only follow-up scores: with no score before follow-up there
/// is no baseline to judge them against, so `app` rejects them. Returns their row indices
/// and removes them from the order.
fn take_orphan_follow_ups(m: &Measurements, sorted: &mut SortedRows) -> Vec<usize> {
    let order = &sorted.order;
    let key = |r: u32| (m.client[r as usize], m.episode[r as usize], m.measure[r as usize]);
    let mut orphans = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && key(order[end]) == key(order[start]) {
            end += 1;
        }
        if order[start..end].iter().all(|&r| m.phase[r as usize] == Phase::FollowUp) {
            orphans.extend(order[start..end].iter().map(|&r| r as usize));
        }
        start = end;
    }
    remove_rows(&mut sorted.order, orphans.iter().copied());
    orphans
}

/// Takes `rows` out of `order`. They are few, so they are looked up in a sorted list of
/// their own rather than in a flag per row (100 MB at 100 M rows, at the sort's peak).
fn remove_rows(order: &mut Vec<u32>, rows: impl Iterator<Item = usize>) {
    let mut rows: Vec<u32> = rows.map(|r| r as u32).collect();
    if rows.is_empty() {
        return;
    }
    rows.sort_unstable();
    order.retain(|r| rows.binary_search(r).is_err());
}

/// Which episodes a run keeps (`--therapist`, `--site`, `--from`, `--to`).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub therapists: Vec<String>,
    pub sites: Vec<String>,
    pub from: Option<Day>,
    pub to: Option<Day>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.therapists.is_empty() && self.sites.is_empty() && self.from.is_none() && self.to.is_none()
    }

    /// Whether the filter keeps an episode × measure.
    pub fn keeps(&self, keys: &Keys, it: &EpisodeMeasure) -> bool {
        fn name(i: &crate::domain::columns::Interner, id: u32) -> &str {
            if id == NO_KEY {
                ""
            } else {
                i.name(id)
            }
        }
        let end = it.last_date;
        (self.therapists.is_empty() || self.therapists.iter().any(|t| t == name(&keys.therapists, it.therapist)))
            && (self.sites.is_empty() || self.sites.iter().any(|s| s == name(&keys.sites, it.site)))
            && self.from.is_none_or(|f| end >= f)
            && self.to.is_none_or(|t| end <= t)
    }

    /// Keeps the episode × measure items that pass; rules stay as resolved on all data.
    pub fn apply(&self, keys: &Keys, eps: &mut Episodes) {
        if self.is_empty() {
            return;
        }
        eps.items.retain(|it| self.keeps(keys, it));
        let mut seen: Vec<(u32, u32)> = eps.items.iter().map(|it| (it.client, it.episode)).collect();
        seen.dedup();
        eps.n_episodes = seen.len();
    }
}

/// The NHS Talking Therapies combined outcome of an episode with paired PHQ-9 and GAD-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkingTherapies {
    /// A case on either measure at baseline.
    pub caseness: bool,
    /// A case at baseline, below caseness on both at the end.
    pub recovery: bool,
    /// At least one reliably improved and none reliably deteriorated.
    pub reliable_improvement: bool,
    /// Either reliably deteriorated.
    pub reliable_deterioration: bool,
    /// Recovery with reliable improvement.
    pub reliable_recovery: bool,
}

/// Combines the PHQ-9 and GAD-7 outcomes of one episode; `None` unless both are paired.
pub fn combine_talking_therapies(phq: &Classification, gad: &Classification) -> Option<TalkingTherapies> {
    let (ps, pe, gs, ge) = (phq.caseness_start?, phq.caseness_end?, gad.caseness_start?, gad.caseness_end?);
    let (prc, grc) = (phq.reliable_change?, gad.reliable_change?);
    let caseness = ps || gs;
    let recovery = caseness && !pe && !ge;
    let deteriorated = prc == ReliableCategory::Deteriorated || grc == ReliableCategory::Deteriorated;
    let reliable_improvement =
        (prc == ReliableCategory::Improved || grc == ReliableCategory::Improved) && !deteriorated;
    Some(TalkingTherapies {
        caseness,
        recovery,
        reliable_improvement,
        reliable_deterioration: deteriorated,
        reliable_recovery: recovery && reliable_improvement,
    })
}

/// One episode × measure.
#[derive(Debug, Clone)]
pub struct EpisodeMeasure {
    pub client: u32,
    pub episode: u32,
    pub therapist: u32,
    pub site: u32,
    pub measure: u16,
    /// Scores before follow-up.
    pub n_scores: u32,
    /// Every follow-up row of the series, including any dated before the end of treatment
    /// (`episodes.csv` reports the usable ones: `followup::Durability::n_followup`).
    pub n_followup: u32,
    pub first_date: Day,
    /// Date of the final (last non-follow-up) score.
    pub last_date: Day,
    pub baseline: f64,
    pub final_score: Option<f64>,
    pub classification: Classification,
    pub talking_therapies: Option<TalkingTherapies>,
    /// The order checks, and the episode's status ([`EpisodeMeasure::status`]).
    pub checks: SeriesChecks,
    /// This series' rows: a range of [`SeriesRows`] (and of the sort order they were laid
    /// out by).
    pub rows: Range<usize>,
}

/// Orders in a series that the data may have wrong. Scores are ordered by session, then
/// date (the contract), whatever their dates and phases say; these flag series where the
/// two disagree, for a practice to check (`episodes.csv` `series_check`). The same byte
/// holds the episode's [`Status`] (bits 2–4): one byte fits the padding of
/// [`EpisodeMeasure`], which 100 M rows hold about 9 M of, where a second byte made each
/// 8 bytes longer (measured: 3.94 → 4.09 GB at 100 M rows with the other changes of the
/// live-export work).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesChecks(u8);

impl SeriesChecks {
    const ASSESSMENT_NOT_BASELINE: u8 = 1;
    const DATES_OUT_OF_SESSION_ORDER: u8 = 2;
    /// Bits 2–4: 0 for open, 1 + the index in [`EndedBy::ALL`] for ended.
    const STATUS_SHIFT: u8 = 2;
    const STATUS_MASK: u8 = 0b111 << Self::STATUS_SHIFT;

    /// The episode's status.
    pub fn status(self) -> Status {
        match (self.0 & Self::STATUS_MASK) >> Self::STATUS_SHIFT {
            0 => Status::Open,
            k => Status::Ended(EndedBy::ALL[usize::from(k) - 1]),
        }
    }

    /// These checks with the episode's status `status`.
    pub fn with_status(self, status: Status) -> SeriesChecks {
        let code = match status {
            Status::Open => 0,
            Status::Ended(by) => 1 + EndedBy::ALL.iter().position(|b| *b == by).expect("a known rule") as u8,
        };
        SeriesChecks((self.0 & !Self::STATUS_MASK) | (code << Self::STATUS_SHIFT))
    }

    pub fn new(assessment_not_baseline: bool, dates_out_of_session_order: bool) -> SeriesChecks {
        SeriesChecks(
            u8::from(assessment_not_baseline) * Self::ASSESSMENT_NOT_BASELINE
                + u8::from(dates_out_of_session_order) * Self::DATES_OUT_OF_SESSION_ORDER,
        )
    }

    /// The series has an assessment score, but its baseline is not one: an assessment
    /// numbered after treatment sessions (its baseline and final are then those of the
    /// session order).
    pub fn assessment_not_baseline(self) -> bool {
        self.0 & Self::ASSESSMENT_NOT_BASELINE != 0
    }

    /// A score before follow-up is dated before the score that precedes it in session
    /// order.
    pub fn dates_out_of_session_order(self) -> bool {
        self.0 & Self::DATES_OUT_OF_SESSION_ORDER != 0
    }

    /// The `series_check` words of the flags that are set, joined by `;`.
    pub fn words(self) -> &'static str {
        match (self.assessment_not_baseline(), self.dates_out_of_session_order()) {
            (false, false) => "",
            (true, false) => "assessment_not_baseline",
            (false, true) => "dates_out_of_session_order",
            (true, true) => "assessment_not_baseline;dates_out_of_session_order",
        }
    }
}

impl EpisodeMeasure {
    pub fn paired(&self) -> bool {
        self.final_score.is_some()
    }

    /// Ended or open on the extract date (the same for every measure of the episode).
    pub fn status(&self) -> Status {
        self.checks.status()
    }

    pub fn set_status(&mut self, status: Status) {
        self.checks = self.checks.with_status(status);
    }

    /// Ended on the extract date: only ended episodes count in outcome figures.
    pub fn ended(&self) -> bool {
        self.status() != Status::Open
    }

    /// Ended and paired: NHS Talking Therapies' "finished a course of treatment", the
    /// episodes every outcome rate is over.
    pub fn finished(&self) -> bool {
        self.ended() && self.paired()
    }
}

/// All episode results of a run.
#[derive(Debug, Clone, Default)]
pub struct Episodes {
    pub items: Vec<EpisodeMeasure>,
    /// The rule each measure was judged by (indexed like the registry).
    pub rules: Vec<Option<ResolvedRule>>,
    pub n_episodes: usize,
    /// The extract date the episodes were judged ended or open by.
    pub extract: Extract,
}

/// The most frequent key among `(key, date, record)` rows; ties go to the key seen
/// earliest (by date, then input order). Absent keys do not count.
fn modal_key(rows: impl Iterator<Item = (u32, Day, usize)>) -> u32 {
    // An episode has one key, or a few: a linear tally beats a hash map here. Past
    // `LINEAR` keys a map finds them (a scan per row was quadratic: an episode of 60,000
    // rows, each with its own therapist, took seconds).
    const LINEAR: usize = 16;
    let mut tally: Vec<(u32, u32, (Day, usize))> = Vec::new();
    let mut index: Option<std::collections::HashMap<u32, usize, foldhash::fast::FixedState>> = None;
    for (k, d, r) in rows.filter(|r| r.0 != NO_KEY) {
        let at = match &index {
            Some(index) => index.get(&k).copied(),
            None => tally.iter().position(|e| e.0 == k),
        };
        match at {
            Some(i) => {
                let e = &mut tally[i];
                e.1 += 1;
                e.2 = e.2.min((d, r));
            }
            None => {
                tally.push((k, 1, (d, r)));
                match &mut index {
                    Some(index) => _ = index.insert(k, tally.len() - 1),
                    None if tally.len() > LINEAR => {
                        index = Some(tally.iter().enumerate().map(|(i, e)| (e.0, i)).collect());
                    }
                    None => {}
                }
            }
        }
    }
    tally.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2))).map_or(NO_KEY, |(k, _, _)| k)
}

/// Where the run of rows that starts at `start` ends (rows in series order): at the first
/// row after it for which `same` fails, or at `n`. Runs are episodes or their series.
fn run_end(same: impl Fn(usize) -> bool, start: usize, n: usize) -> usize {
    (start + 1..n).find(|&i| !same(i)).unwrap_or(n)
}

/// One series (episode × measure) in series order: its keys, its episode's therapist and
/// site, and where its rows end.
struct SeriesPlan {
    client: u32,
    episode: u32,
    therapist: u32,
    site: u32,
    measure: u16,
    end: u32,
}

/// The series in series order and the number of episodes. An episode's therapist and site
/// are the most frequent among its rows, ties to the earliest (by date, then input order).
fn plan_series(m: &Measurements, order: &[u32]) -> (Vec<SeriesPlan>, usize) {
    let (mut plan, mut n_episodes) = (Vec::new(), 0);
    let mut start = 0;
    while start < order.len() {
        let first = order[start] as usize;
        let same = |i: usize| {
            let r = order[i] as usize;
            m.client[r] == m.client[first] && m.episode[r] == m.episode[first]
        };
        let end = run_end(same, start, order.len());
        let rows = || order[start..end].iter().map(|&r| r as usize);
        let therapist = modal_key(rows().map(|r| (m.therapist.get(r), m.date[r], r)));
        let site = modal_key(rows().map(|r| (m.site.get(r), m.date[r], r)));
        let mut from = start;
        while from < end {
            let measure = m.measure[order[from] as usize];
            let to = run_end(|i| m.measure[order[i] as usize] == measure, from, end);
            let (client, episode) = (m.client[first], m.episode[first]);
            plan.push(SeriesPlan { client, episode, therapist, site, measure, end: to as u32 });
            from = to;
        }
        n_episodes += 1;
        start = end;
    }
    (plan, n_episodes)
}

/// Builds every episode × measure from the rows in series order and their plan.
fn build_episodes(
    rows: &SeriesRows,
    plan: &[SeriesPlan],
    n_episodes: usize,
    registry: &Registry,
    ending: &Ending,
) -> Episodes {
    let mut items = Vec::new();
    let mut from = 0;
    for series in plan {
        let to = series.end as usize;
        if let Some(item) = summarise_series(rows, series, from..to) {
            items.push(item);
        }
        from = to;
    }
    debug_assert_eq!(from, rows.len(), "the plan covers every row");
    judge_episodes(&mut items, rows, ending);
    let rules = settle(&mut items, registry);
    Episodes { items, rules, n_episodes, extract: ending.extract }
}

/// Resolves each measure's rule (sample-based ones from the finished series) and
/// classifies every series by it, with the combined Talking Therapies outcome.
fn settle(items: &mut [EpisodeMeasure], registry: &Registry) -> Vec<Option<ResolvedRule>> {
    // Rules that depend on the sample use the baseline and final scores of finished
    // series (a score mid-treatment is no final).
    let mut baselines: Vec<Vec<f64>> = vec![Vec::new(); registry.measures().len()];
    let mut finals: Vec<Vec<f64>> = vec![Vec::new(); registry.measures().len()];
    for it in items.iter().filter(|it| it.finished()) {
        baselines[it.measure as usize].push(it.baseline);
        finals[it.measure as usize].extend(it.final_score);
    }
    let rules: Vec<Option<ResolvedRule>> = registry
        .measures()
        .iter()
        .enumerate()
        .map(|(i, meas)| {
            let used = items.iter().any(|it| it.measure as usize == i);
            used.then(|| resolve_rule(meas, &baselines[i], &finals[i]))
        })
        .collect();
    for it in items.iter_mut() {
        let rule = rules[it.measure as usize].as_ref().expect("rule resolved for every measure in use");
        it.classification = rule.classify(it.baseline, it.final_score);
    }
    attach_talking_therapies(items, registry);
    rules
}

/// Ends the episodes whose discharge day another table gives (the goals table's
/// `episode_end`, by client and episode names) on or before the extract date: `end_date`
/// is the first rule, so it names the end of an episode ended otherwise too. Settles the
/// rules again if an open episode ended. Returns how many open episodes it ended.
pub fn apply_end_dates(
    eps: &mut Episodes,
    keys: &Keys,
    end_dates: &crate::domain::columns::EndDates,
    registry: &Registry,
) -> usize {
    if end_dates.is_empty() {
        return 0;
    }
    let (mut opened, mut last) = (0, None);
    for it in eps.items.iter_mut() {
        let key = (keys.clients.name(it.client).to_string(), keys.episodes.name(it.episode).to_string());
        if end_dates.get(&key).is_some_and(|&d| d <= eps.extract.as_of) {
            if it.status() == Status::Open && last != Some((it.client, it.episode)) {
                opened += 1;
            }
            last = Some((it.client, it.episode));
            it.set_status(Status::Ended(EndedBy::EndDate));
        }
    }
    if opened > 0 {
        eps.rules = settle(&mut eps.items, registry);
    }
    opened
}

/// Baseline, final and counts of one series (`rows`, in series order); `None` when it has
/// only follow-up rows.
fn summarise_series(r: &SeriesRows, series: &SeriesPlan, rows: Range<usize>) -> Option<EpisodeMeasure> {
    // One pass over the series' slices (no bounds checks per row): the first and last
    // score before follow-up, the counts, and the order checks.
    let (phase, date) = (&r.phase[rows.clone()], &r.date[rows.clone()]);
    let (mut base, mut last, mut n_scores, mut n_followup) = (usize::MAX, 0, 0u32, 0u32);
    let (mut later_assessment, mut dates_out_of_session_order) = (false, false);
    for (k, (&p, &d)) in phase.iter().zip(date).enumerate() {
        if p == Phase::FollowUp {
            n_followup += 1;
            continue;
        }
        if n_scores == 0 {
            base = k;
        } else {
            later_assessment |= p == Phase::Assessment;
            dates_out_of_session_order |= d < date[last];
        }
        n_scores += 1;
        last = k;
    }
    if n_scores == 0 {
        return None;
    }
    let checks = SeriesChecks::new(later_assessment && phase[base] != Phase::Assessment, dates_out_of_session_order);
    let (base, last) = (rows.start + base, rows.start + last);
    Some(EpisodeMeasure {
        client: series.client,
        episode: series.episode,
        therapist: series.therapist,
        site: series.site,
        measure: series.measure,
        n_scores,
        n_followup,
        first_date: r.date[base],
        last_date: r.date[last],
        baseline: r.score[base],
        final_score: (n_scores >= 2).then(|| r.score[last]),
        classification: Classification::default(),
        talking_therapies: None,
        checks,
        rows,
    })
}

fn attach_talking_therapies(items: &mut [EpisodeMeasure], registry: &Registry) {
    let (Some(phq), Some(gad)) = (registry.find("PHQ9"), registry.find("GAD7")) else {
        return;
    };
    let mut i = 0;
    while i < items.len() {
        let mut j = i;
        while j < items.len() && items[j].client == items[i].client && items[j].episode == items[i].episode {
            j += 1;
        }
        let ep = &items[i..j];
        let p = ep.iter().position(|it| it.measure as usize == phq);
        let g = ep.iter().position(|it| it.measure as usize == gad);
        if let (Some(p), Some(g)) = (p, g) {
            let tt = combine_talking_therapies(&ep[p].classification, &ep[g].classification);
            items[i + p].talking_therapies = tt;
            items[i + g].talking_therapies = tt;
        }
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An extract date long after every test date: every episode has ended.
    pub(crate) fn all_ended() -> EndRule {
        EndRule { as_of: Some(1_000_000), inactive_days: 90 }
    }
    use crate::domain::outcomes::Outcome;

    /// Adds a row: (client, therapist), (session, date, phase), (measure, score).
    fn push(
        m: &mut Measurements,
        reg: &Registry,
        (client, therapist): (&str, &str),
        (session, date, phase): (i32, Day, Phase),
        (code, score): (&str, f64),
    ) {
        let c = m.keys.clients.intern(client);
        let e = m.keys.episodes.intern("");
        let t = m.keys.therapists.intern(therapist);
        m.client.push(c);
        m.episode.push(e);
        m.therapist.push(t);
        m.site.push(NO_KEY);
        m.session.push(session);
        m.date.push(date);
        m.phase.push(phase);
        m.measure.push(reg.find(code).unwrap() as u16);
        m.score.push(score);
    }

    #[test]
    fn baseline_and_final_skip_follow_ups_and_missing_sessions_sort_last() {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        // Input out of order; a follow-up with no session; an end row without a session.
        push(&mut m, &reg, ("a", "t1"), (2, 14, Phase::Treatment), ("PHQ9", 12.0));
        push(&mut m, &reg, ("a", "t1"), (NO_SESSION, 200, Phase::FollowUp), ("PHQ9", 20.0));
        push(&mut m, &reg, ("a", "t2"), (0, 0, Phase::Assessment), ("PHQ9", 18.0));
        push(&mut m, &reg, ("a", "t2"), (NO_SESSION, 30, Phase::End), ("PHQ9", 7.0));
        push(&mut m, &reg, ("a", "t1"), (1, 7, Phase::Treatment), ("PHQ9", 15.0));
        let sorted = sort_rows(&m);
        assert_eq!(sorted.order, vec![2, 4, 0, 3, 1]);
        let eps = prepare(m.clone(), &reg, &all_ended()).episodes;
        assert_eq!(eps.items.len(), 1);
        let it = &eps.items[0];
        assert_eq!((it.baseline, it.final_score, it.n_scores, it.n_followup), (18.0, Some(7.0), 4, 1));
        assert_eq!(it.classification.outcome, Some(Outcome::Recovered));
        // t1 has 3 rows, t2 has 2.
        assert_eq!(m.keys.therapists.name(it.therapist), "t1");
        // The series' rows are laid out in that order.
        let p = prepare(m, &reg, &all_ended());
        assert_eq!(p.episodes.items[0].rows, 0..5);
        assert_eq!(p.rows.score, vec![18.0, 15.0, 12.0, 7.0, 20.0]);
        assert_eq!(p.rows.session, vec![0, 1, 2, NO_SESSION, NO_SESSION]);
        assert_eq!(p.rows.date, vec![0, 7, 14, 30, 200]);
        assert_eq!(p.rows.phase[4], Phase::FollowUp);
    }

    #[test]
    fn the_last_session_of_a_measure_counts_every_valid_row_before_follow_up() {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        push(&mut m, &reg, ("a", "t"), (0, 0, Phase::Assessment), ("PHQ9", 18.0));
        push(&mut m, &reg, ("a", "t"), (1, 7, Phase::Treatment), ("PHQ9", 15.0));
        // Session 5 twice with different scores: neither row is used, the session still counts.
        push(&mut m, &reg, ("a", "t"), (5, 35, Phase::Treatment), ("PHQ9", 9.0));
        push(&mut m, &reg, ("a", "t"), (5, 35, Phase::Treatment), ("PHQ9", 10.0));
        push(&mut m, &reg, ("a", "t"), (9, 300, Phase::FollowUp), ("PHQ9", 8.0));
        let p = prepare(m, &reg, &all_ended());
        assert_eq!(p.duplicates.len(), 2);
        assert_eq!(p.rows.len(), 3);
        assert_eq!(p.rows.last_session[reg.find("PHQ9").unwrap()], Some(5));
        assert_eq!(p.rows.last_session[reg.find("GAD7").unwrap()], None);
    }

    #[test]
    fn an_assessment_without_a_session_number_is_still_the_baseline() {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        push(&mut m, &reg, ("a", "t"), (1, 7, Phase::Treatment), ("PHQ9", 15.0));
        push(&mut m, &reg, ("a", "t"), (2, 14, Phase::Treatment), ("PHQ9", 9.0));
        push(&mut m, &reg, ("a", "t"), (NO_SESSION, 0, Phase::Assessment), ("PHQ9", 18.0));
        let eps = prepare(m.clone(), &reg, &all_ended()).episodes;
        assert_eq!((eps.items[0].baseline, eps.items[0].final_score), (18.0, Some(9.0)));
    }

    #[test]
    fn series_whose_session_order_disagrees_with_phases_or_dates_are_flagged() {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        // a: the assessment numbered 3, after treatment sessions 1 and 2 (dated in order).
        push(&mut m, &reg, ("a", "t"), (1, 7, Phase::Treatment), ("PHQ9", 15.0));
        push(&mut m, &reg, ("a", "t"), (2, 14, Phase::Treatment), ("PHQ9", 12.0));
        push(&mut m, &reg, ("a", "t"), (3, 21, Phase::Assessment), ("PHQ9", 18.0));
        // b: session 2 dated before session 1; a follow-up dated early is not looked at.
        push(&mut m, &reg, ("b", "t"), (0, 0, Phase::Assessment), ("PHQ9", 18.0));
        push(&mut m, &reg, ("b", "t"), (1, 20, Phase::Treatment), ("PHQ9", 15.0));
        push(&mut m, &reg, ("b", "t"), (2, 10, Phase::Treatment), ("PHQ9", 12.0));
        // c: in order; two assessments (the second a repeat at session 0, a day later),
        // and a follow-up numbered 1 but dated after the end.
        push(&mut m, &reg, ("c", "t"), (0, 0, Phase::Assessment), ("PHQ9", 18.0));
        push(&mut m, &reg, ("c", "t"), (0, 1, Phase::Assessment), ("PHQ9", 17.0));
        push(&mut m, &reg, ("c", "t"), (1, 7, Phase::FollowUp), ("PHQ9", 9.0));
        push(&mut m, &reg, ("c", "t"), (2, 5, Phase::End), ("PHQ9", 10.0));
        // d: an unnumbered score dated before the numbered ones sorts after them.
        push(&mut m, &reg, ("d", "t"), (1, 7, Phase::Treatment), ("PHQ9", 15.0));
        push(&mut m, &reg, ("d", "t"), (NO_SESSION, 3, Phase::Treatment), ("PHQ9", 12.0));
        let eps = prepare(m, &reg, &all_ended()).episodes;
        let flags: Vec<(bool, bool)> = eps
            .items
            .iter()
            .map(|it| (it.checks.assessment_not_baseline(), it.checks.dates_out_of_session_order()))
            .collect();
        assert_eq!(flags, [(true, false), (false, true), (false, false), (false, true)]);
        // The session order still decides: a's baseline is session 1, its final the assessment.
        assert_eq!((eps.items[0].baseline, eps.items[0].final_score), (15.0, Some(18.0)));
        assert_eq!(eps.items[0].checks.words(), "assessment_not_baseline");
        let both = SeriesChecks::new(true, true);
        assert_eq!(both.words(), "assessment_not_baseline;dates_out_of_session_order");
    }

    /// 100 M rows hold about 9 M series: 8 bytes more per series is 70 MB of the 4 GB
    /// budget (the order checks first took a byte more than the padding had; the status
    /// shares their byte).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_series_takes_120_bytes() {
        assert_eq!(std::mem::size_of::<EpisodeMeasure>(), 120);
    }

    #[test]
    fn the_status_shares_the_checks_byte_without_touching_them() {
        let both = SeriesChecks::new(true, true);
        for status in [Status::Open].into_iter().chain(EndedBy::ALL.map(Status::Ended)) {
            let c = both.with_status(status);
            assert_eq!((c.status(), c.words()), (status, both.words()));
            assert_eq!(c.with_status(Status::Open), both);
        }
    }

    #[test]
    fn the_first_end_rule_that_applies_names_the_end() {
        let x = Extract { as_of: 1000, from_data: true, latest: 1000, inactive_days: 90 };
        let judge = |end: Option<Day>, end_row, follow_up, last| Status::judge(end, end_row, follow_up, last, &x);
        // The extract date itself counts as "on or before"; the day after does not.
        assert_eq!(judge(Some(1000), true, true, 999), Status::Ended(EndedBy::EndDate));
        assert_eq!(judge(Some(1001), true, true, 999), Status::Ended(EndedBy::EndRow));
        assert_eq!(judge(Some(1001), false, true, 999), Status::Ended(EndedBy::FollowUp));
        // Inactive: more than 90 days, so 90 days is still open.
        assert_eq!(judge(None, false, false, 910), Status::Open);
        assert_eq!(judge(None, false, false, 909), Status::Ended(EndedBy::Inactive));
        assert_eq!(judge(Some(1001), false, false, 1000), Status::Open);
    }

    #[test]
    fn an_episode_has_one_status_across_its_measures() {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        // Client a: PHQ-9 ended by an end row on GAD-7 only; b: a single recent score.
        push(&mut m, &reg, ("a", "t"), (0, 0, Phase::Assessment), ("PHQ9", 18.0));
        push(&mut m, &reg, ("a", "t"), (1, 7, Phase::Treatment), ("PHQ9", 9.0));
        push(&mut m, &reg, ("a", "t"), (0, 0, Phase::Assessment), ("GAD7", 12.0));
        push(&mut m, &reg, ("a", "t"), (1, 7, Phase::End), ("GAD7", 5.0));
        push(&mut m, &reg, ("b", "t"), (0, 50, Phase::Assessment), ("PHQ9", 14.0));
        m.episode_end.push((4, 60));
        // c: a follow-up dated before its last treatment score ends nothing.
        push(&mut m, &reg, ("c", "t"), (0, 10, Phase::Assessment), ("PHQ9", 14.0));
        push(&mut m, &reg, ("c", "t"), (NO_SESSION, 12, Phase::FollowUp), ("PHQ9", 12.0));
        push(&mut m, &reg, ("c", "t"), (1, 45, Phase::Treatment), ("PHQ9", 9.0));
        let eps = prepare(m, &reg, &EndRule { as_of: None, inactive_days: 90 }).episodes;
        let status: Vec<Status> = eps.items.iter().map(|it| it.status()).collect();
        assert_eq!(
            status,
            [Status::Ended(EndedBy::EndRow), Status::Ended(EndedBy::EndRow), Status::Open, Status::Open]
        );
        assert_eq!((eps.extract.as_of, eps.extract.latest), (50, 50), "the latest date in the data");
        assert!(eps.items[0].finished() && !eps.items[2].finished());
    }

    #[test]
    fn therapist_ties_go_to_the_earliest() {
        let rows = [(5, 10, 0), (7, 3, 1), (5, 12, 2), (7, 4, 3)];
        assert_eq!(modal_key(rows.into_iter()), 7);
        assert_eq!(modal_key([(NO_KEY, 0, 0)].into_iter()), NO_KEY);
    }

    #[test]
    fn the_modal_key_among_many_is_found_by_the_map_as_by_the_scan() {
        // 40 keys (past the linear tally's 16): key 30 three times, key 3 three times but
        // later; the earliest of the tied keys wins, as with few keys.
        let mut rows: Vec<(u32, Day, usize)> = (0..40).map(|k| (k, 100 + k as Day, k as usize)).collect();
        rows.extend([(3, 200, 40), (30, 50, 41), (3, 201, 42), (30, 51, 43), (NO_KEY, 0, 44)]);
        assert_eq!(modal_key(rows.iter().copied()), 30, "30 was seen on day 50, 3 on day 103");
        rows.push((3, 202, 45));
        assert_eq!(modal_key(rows.iter().copied()), 3);
    }

    #[test]
    fn one_score_is_unpaired() {
        let reg = Registry::builtin();
        let mut m = Measurements::default();
        push(&mut m, &reg, ("a", "t1"), (0, 0, Phase::Assessment), ("GAD7", 12.0));
        let eps = prepare(m.clone(), &reg, &all_ended()).episodes;
        let it = &eps.items[0];
        assert!(!it.paired());
        assert_eq!(it.classification.outcome, None);
        assert_eq!(it.classification.caseness_start, Some(true));
    }

    #[test]
    fn talking_therapies_combined_rule() {
        let reg = Registry::builtin();
        let phq = resolve_rule(reg.get(reg.find("PHQ9").unwrap()), &[], &[]);
        let gad = resolve_rule(reg.get(reg.find("GAD7").unwrap()), &[], &[]);
        // PHQ-9 below caseness at start, GAD-7 a case; both end below caseness; GAD-7 reliably improved.
        let tt = combine_talking_therapies(&phq.classify(8.0, Some(5.0)), &gad.classify(12.0, Some(6.0))).unwrap();
        assert_eq!(
            tt,
            TalkingTherapies {
                caseness: true,
                recovery: true,
                reliable_improvement: true,
                reliable_deterioration: false,
                reliable_recovery: true
            }
        );
        // One improves, the other deteriorates: deterioration wins, no reliable improvement.
        let tt = combine_talking_therapies(&phq.classify(20.0, Some(10.0)), &gad.classify(8.0, Some(14.0))).unwrap();
        assert!(tt.reliable_deterioration && !tt.reliable_improvement && !tt.recovery);
        // Still a case on one measure at the end: no recovery.
        let tt = combine_talking_therapies(&phq.classify(20.0, Some(4.0)), &gad.classify(15.0, Some(9.0))).unwrap();
        assert!(!tt.recovery && tt.reliable_improvement);
        // Unpaired GAD-7: no combined outcome.
        assert!(combine_talking_therapies(&phq.classify(20.0, Some(4.0)), &gad.classify(15.0, None)).is_none());
    }
}
