//! The validated data passed between stages: rows as columns of plain values, keys
//! interned to integers, and the list of rejected input rows.

use crate::domain::dates::Day;

/// Where a row sits in the course of care (the contract's `phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    Assessment,
    Treatment,
    End,
    FollowUp,
}

impl Phase {
    /// Parses the contract's phase words; absent or empty means `treatment`.
    pub fn parse(raw: Option<&str>) -> Option<Phase> {
        let Some(raw) = raw.map(crate::domain::text::trim).filter(|s| !s.is_empty()) else {
            return Some(Phase::Treatment);
        };
        // The exact contract words first: no allocation on the common path.
        match raw {
            "treatment" => return Some(Phase::Treatment),
            "assessment" => return Some(Phase::Assessment),
            "end" => return Some(Phase::End),
            "follow_up" => return Some(Phase::FollowUp),
            _ => {}
        }
        let norm: String = raw.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        match norm.as_str() {
            "assessment" => Some(Phase::Assessment),
            "treatment" => Some(Phase::Treatment),
            "end" => Some(Phase::End),
            "followup" => Some(Phase::FollowUp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Assessment => "assessment",
            Phase::Treatment => "treatment",
            Phase::End => "end",
            Phase::FollowUp => "follow_up",
        }
    }
}

/// Strings to dense integer ids, in first-seen order. The names are kept once, end to end
/// in one string, and the table of ids finds a name by its hash: at millions of clients a
/// boxed string per name, held twice (in the list and as a map's key), took about 110
/// bytes a name, and this about 25.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    /// Every name, end to end.
    text: String,
    /// Where each name ends in `text` (it starts where the one before ends).
    ends: Vec<usize>,
    /// The ids, found by their name's hash and compared against `text`.
    ids: hashbrown::HashTable<u32>,
    /// Fast and fixed (deterministic); SipHash's protection against crafted keys is not
    /// needed for keys from the user's own files.
    hasher: foldhash::fast::FixedState,
    /// The id returned last: exports list a client's rows together, so most lookups
    /// repeat the previous key and need one comparison instead of a hash.
    last: Option<u32>,
    /// [`Interner::sort_ranks`], computed once (sorting the names is not free at
    /// millions of keys, and several stages need the order).
    ranks: std::sync::OnceLock<Vec<u32>>,
}

/// Whether two names are equal, written out for short ones: a key compared once per row
/// (the interner's previous key, the registry's recent measures) is a few bytes long, and
/// the library call `==` makes for it costs more than the comparison.
#[inline]
pub fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_text`] for bytes.
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two loads that overlap cover every length from one width to twice it.
    let u64_at = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => u32_at(a, 0) == u32_at(b, 0) && u32_at(a, n - 4) == u32_at(b, n - 4),
        8..=16 => u64_at(a, 0) == u64_at(b, 0) && u64_at(a, n - 8) == u64_at(b, n - 8),
        _ => a == b,
    }
}

/// Name `id` of an interner's `text` and `ends`.
#[inline]
fn name_in<'a>(text: &'a str, ends: &[usize], id: u32) -> &'a str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &text[start..ends[i]]
}

impl Interner {
    /// The id of `s`, a new one if it is new. The usual case (the previous key again) is
    /// inlined into the caller; the hash lookup is not.
    #[inline]
    pub fn intern(&mut self, s: &str) -> u32 {
        match self.last {
            Some(last) if same_text(self.name(last), s) => last,
            _ => self.intern_hashed(s),
        }
    }

    #[inline(never)]
    fn intern_hashed(&mut self, s: &str) -> u32 {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(s);
        let (text, ends) = (&self.text, &self.ends);
        let id = match self.ids.find(hash, |&id| same_text(name_in(text, ends, id), s)) {
            Some(&id) => id,
            None => {
                let id = self.ends.len() as u32;
                self.text.push_str(s);
                self.ends.push(self.text.len());
                let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
                self.ids.insert_unique(hash, id, |&i| hasher.hash_one(name_in(text, ends, i)));
                self.ranks.take();
                id
            }
        };
        self.last = Some(id);
        id
    }

    /// Interns every name of `other` and returns `map[other_id] = id here`. Merging
    /// chunk interners in chunk order gives the ids a single pass would have given.
    pub fn absorb(&mut self, other: &Interner) -> Vec<u32> {
        (0..other.len() as u32).map(|id| self.intern(other.name(id))).collect()
    }

    #[inline]
    pub fn name(&self, id: u32) -> &str {
        name_in(&self.text, &self.ends, id)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Forgets every name, keeping the memory for the next ones.
    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.ids.clear();
        self.last = None;
        self.ranks.take();
    }

    /// `rank[id]` = position of the name in byte order, for deterministic sorting.
    pub fn sort_ranks(&self) -> &[u32] {
        self.ranks.get_or_init(|| {
            let mut order: Vec<u32> = (0..self.len() as u32).collect();
            order.sort_unstable_by(|&a, &b| self.name(a).cmp(self.name(b)));
            let mut rank = vec![0u32; order.len()];
            for (r, &id) in order.iter().enumerate() {
                rank[id as usize] = r as u32;
            }
            rank
        })
    }
}

/// Row indices sorted by `group(i)` (a dense id below `n_groups`), then by `key(i)`
/// within each group. A counting sort puts each client's rows together in one linear pass,
/// and the comparison sorts that follow are small and stay in cache: at millions of
/// rows this is several times faster than one sort that looks up every key through the
/// row index. `key` must tell all rows of a group apart (end it with the record).
pub fn sort_grouped<K: Ord + Send>(
    n_rows: usize,
    n_groups: usize,
    group: impl Fn(usize) -> usize,
    key: impl Fn(usize) -> K + Sync,
) -> Vec<u32> {
    use rayon::prelude::*;
    // `end[g]` first counts group g's rows, then is the cursor where its next row goes, and
    // ends as where the group ends (u32, like the order: at millions of groups every array
    // here counts, as the sort is where a run's memory peaks).
    let mut end = vec![0u32; n_groups + 1];
    for i in 0..n_rows {
        end[group(i) + 1] += 1;
    }
    for g in 0..n_groups {
        end[g + 1] += end[g];
    }
    let mut order = vec![0u32; n_rows];
    for i in 0..n_rows {
        let g = group(i);
        order[end[g] as usize] = i as u32;
        end[g] += 1;
    }
    // end[g] now holds where group g ends. The groups are sorted in parallel, a block of
    // whole groups per task (a few dozen blocks, not a slice per group).
    let per_block = n_rows.div_ceil(rayon::current_num_threads().max(1) * 16).max(1);
    let mut blocks: Vec<(&mut [u32], usize, &[u32])> = Vec::new();
    let (mut rest, mut offset, mut g) = (&mut order[..], 0usize, 0usize);
    while g < n_groups {
        let first = g;
        while g < n_groups && (end[g] as usize) - offset < per_block {
            g += 1;
        }
        g = (g + 1).min(n_groups);
        let block_end = end[g - 1] as usize;
        let (block, tail) = rest.split_at_mut(block_end - offset);
        blocks.push((block, offset, &end[first..g]));
        rest = tail;
        offset = block_end;
    }
    blocks.into_par_iter().for_each(|(block, offset, ends)| {
        let mut from = 0;
        for &e in ends {
            let to = e as usize - offset;
            block[from..to].sort_unstable_by_key(|&i| key(i as usize));
            from = to;
        }
    });
    order
}

/// Marks an absent optional key (therapist, site) in the id columns.
pub const NO_KEY: u32 = u32::MAX;
/// Marks an absent session number.
pub const NO_SESSION: i32 = -1;

/// Validated measurement rows (one entry per used or duplicate-checked row). Rows are kept
/// in record order, so later stages break ties by row index, which orders rows as records
/// do, and a row's record is found from the rejected ones ([`RecordOf`]).
#[derive(Debug, Default, Clone)]
pub struct Measurements {
    pub client: Vec<u32>,
    pub episode: Vec<u32>,
    pub therapist: KeyColumn,
    pub site: KeyColumn,
    pub date: Vec<Day>,
    pub session: Vec<i32>,
    pub phase: Vec<Phase>,
    pub measure: Vec<u16>,
    pub score: Vec<f64>,
    /// Rows with an `episode_end` (row index, day), sparse: most rows have none, and a
    /// row repeating the previous entry's episode and day is not kept again (an export
    /// writes the discharge day on every row of an ended episode).
    pub episode_end: Vec<(u32, Day)>,
    pub keys: Keys,
}

/// The input record of each row of a table whose rows are the records that passed
/// validation, in record order (every other record of the table was rejected there):
/// row `i` is record `i` plus the number of rejected records before it, found by a binary
/// search over the rejected records. Rows carry no record number (8 bytes a row).
#[derive(Debug, Clone, Default)]
pub struct RecordOf {
    /// For the `j`-th rejected record `r` (in order): `r − j`, the number of rows before it.
    rows_before: Vec<u64>,
}

impl RecordOf {
    /// From the records rejected by validation, in increasing order.
    pub fn new(rejected: impl IntoIterator<Item = u64>) -> RecordOf {
        let rows_before: Vec<u64> = rejected.into_iter().enumerate().map(|(j, r)| r - j as u64).collect();
        debug_assert!(rows_before.windows(2).all(|w| w[0] <= w[1]), "rejected records in increasing order");
        RecordOf { rows_before }
    }

    /// The record of row `row`.
    pub fn record(&self, row: usize) -> u64 {
        let row = row as u64;
        // The rejected records before it are those with at most `row` rows before them.
        row + self.rows_before.partition_point(|&b| b <= row) as u64
    }
}

/// The names behind the measurements' id columns. They outlive the rows: once the
/// series are built (`episodes::prepare`) the analyses and tables need only these.
#[derive(Debug, Default, Clone)]
pub struct Keys {
    pub clients: Interner,
    pub episodes: Interner,
    pub therapists: Interner,
    pub sites: Interner,
}

/// Maps chunk-local ids through `map`, leaving [`NO_KEY`] alone.
fn remap<'a>(ids: &'a [u32], map: &'a [u32]) -> impl Iterator<Item = u32> + 'a {
    ids.iter().map(move |&i| if i == NO_KEY { NO_KEY } else { map[i as usize] })
}

/// The id column of a key with few values (therapist, site): two bytes a row while the ids
/// fit, four once a table has more than 65,535 of them. At 100 M rows the narrow columns
/// hold 378 MB less, at the point where a large run's memory peaks (the sort).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyColumn {
    /// Ids below `u16::MAX`; `u16::MAX` marks an absent key.
    Narrow(Vec<u16>),
    /// Ids as they are; [`NO_KEY`] marks an absent key.
    Wide(Vec<u32>),
}

impl Default for KeyColumn {
    fn default() -> KeyColumn {
        KeyColumn::Narrow(Vec::new())
    }
}

impl KeyColumn {
    const ABSENT: u16 = u16::MAX;

    /// Appends an id (or [`NO_KEY`]), widening the column when the id needs it.
    pub fn push(&mut self, id: u32) {
        if let KeyColumn::Narrow(ids) = self {
            if id == NO_KEY {
                ids.push(Self::ABSENT);
                return;
            }
            if id < u32::from(Self::ABSENT) {
                ids.push(id as u16);
                return;
            }
            let wide = ids.iter().map(|&x| if x == Self::ABSENT { NO_KEY } else { u32::from(x) }).collect();
            *self = KeyColumn::Wide(wide);
        }
        if let KeyColumn::Wide(ids) = self {
            ids.push(id);
        }
    }

    /// Row `i`'s id, or [`NO_KEY`].
    pub fn get(&self, i: usize) -> u32 {
        match self {
            KeyColumn::Narrow(ids) if ids[i] == Self::ABSENT => NO_KEY,
            KeyColumn::Narrow(ids) => u32::from(ids[i]),
            KeyColumn::Wide(ids) => ids[i],
        }
    }

    pub fn len(&self) -> usize {
        match self {
            KeyColumn::Narrow(ids) => ids.len(),
            KeyColumn::Wide(ids) => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the column (narrow again), keeping a narrow column's memory.
    fn clear(&mut self) {
        match self {
            KeyColumn::Narrow(ids) => ids.clear(),
            KeyColumn::Wide(_) => *self = KeyColumn::default(),
        }
    }

    /// Appends a later chunk's ids, mapped through `map` (absent keys stay absent).
    fn extend_remapped(&mut self, other: &KeyColumn, map: &[u32]) {
        for i in 0..other.len() {
            let id = other.get(i);
            self.push(if id == NO_KEY { NO_KEY } else { map[id as usize] });
        }
    }
}

impl Measurements {
    /// Moves the rows of a later chunk (validated on its own) onto these, re-keying its
    /// ids, and leaves `other` empty with its memory kept for the next chunk (fresh
    /// columns for every chunk were a tenth of a run's page faults).
    pub fn append(&mut self, other: &mut Measurements) {
        let (keys, more) = (&mut self.keys, &mut other.keys);
        let (c, e) = (keys.clients.absorb(&more.clients), keys.episodes.absorb(&more.episodes));
        let (t, s) = (keys.therapists.absorb(&more.therapists), keys.sites.absorb(&more.sites));
        let offset = self.len() as u32;
        self.episode_end.extend(other.episode_end.drain(..).map(|(row, day)| (row + offset, day)));
        self.client.extend(remap(&other.client, &c));
        self.episode.extend(remap(&other.episode, &e));
        self.therapist.extend_remapped(&other.therapist, &t);
        self.site.extend_remapped(&other.site, &s);
        self.date.extend_from_slice(&other.date);
        self.session.extend_from_slice(&other.session);
        self.phase.extend_from_slice(&other.phase);
        self.measure.extend_from_slice(&other.measure);
        self.score.extend_from_slice(&other.score);
        for ids in [&mut other.client, &mut other.episode] {
            ids.clear();
        }
        other.therapist.clear();
        other.site.clear();
        other.date.clear();
        other.session.clear();
        other.phase.clear();
        other.measure.clear();
        other.score.clear();
        for names in [&mut more.clients, &mut more.episodes, &mut more.therapists, &mut more.sites] {
            names.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.score.len()
    }

    pub fn is_empty(&self) -> bool {
        self.score.is_empty()
    }
}

/// Goal scales of the contract's `goals` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GoalScale {
    /// Goal-Based Outcomes, 0–10, higher is better.
    Gbo,
    /// Goal Attainment Scaling, −2…+2, 0 = the expected outcome.
    Gas,
}

impl GoalScale {
    pub fn as_str(self) -> &'static str {
        match self {
            GoalScale::Gbo => "GBO",
            GoalScale::Gas => "GAS",
        }
    }
}

/// Validated goal ratings: the rows, and the names their ids stand for.
#[derive(Debug, Default, Clone)]
pub struct GoalRatings {
    pub rows: GoalColumns,
    pub names: GoalNames,
    /// Rows with an `episode_end` (row index, day), sparse as in [`Measurements`].
    pub episode_end: Vec<(u32, Day)>,
}

/// Notes a row's `episode_end` in `ends` (row index, day), unless the last note is the same
/// day of the same episode (an export writes the discharge day on every row of an episode,
/// and its rows usually come together).
pub fn note_end_date(
    ends: &mut Vec<(u32, Day)>,
    clients: &[u32],
    episodes: &[u32],
    (client, episode): (u32, u32),
    day: Day,
) {
    let repeat = ends
        .last()
        .is_some_and(|&(row, d)| d == day && clients[row as usize] == client && episodes[row as usize] == episode);
    if !repeat {
        ends.push((clients.len() as u32, day));
    }
}

/// Discharge days (`episode_end`) by (client, episode) names.
pub type EndDates = std::collections::BTreeMap<(String, String), Day>;

/// Goal rating rows as columns, ids interned in a [`GoalNames`].
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GoalColumns {
    pub client: Vec<u32>,
    pub episode: Vec<u32>,
    pub goal: Vec<u32>,
    pub parent: Vec<u32>,
    pub date: Vec<Day>,
    pub phase: Vec<Phase>,
    pub scale: Vec<GoalScale>,
    pub rating: Vec<f64>,
    /// NaN where the rating gives no weight (the goal's weight is the last one given).
    pub weight: Vec<f64>,
}

/// The goal table in the goal analysis' order (client, episode, scale, goal by name, then
/// date), duplicates dropped, handed out a run of whole clients at a time. The input layer
/// holds it in memory or, for a large table, in temporary files it reads back run by run.
pub trait GoalRuns {
    /// The names behind the ids.
    fn names(&self) -> &GoalNames;
    /// The table's `episode_end` days.
    fn episode_end(&self) -> &EndDates;
    /// Hands the rows to `each` one run of whole clients at a time, in order; fails only if
    /// a run cannot be read back.
    fn each_run(&self, each: &mut dyn FnMut(&GoalColumns)) -> std::io::Result<()>;
}

/// The names behind the goal table's ids (its own interners: goal clients need not be
/// symptom clients).
#[derive(Debug, Default, Clone)]
pub struct GoalNames {
    pub clients: Interner,
    pub episodes: Interner,
    pub goals: Interner,
}

impl GoalRatings {
    /// Takes the `episode_end` days out, keyed by (client, episode) names: the latest of
    /// each episode, merged into `into`. The rows are sorted and may go through temporary
    /// files; the few discharge days are kept apart.
    pub fn take_end_dates(&mut self, into: &mut EndDates) {
        for (row, day) in self.episode_end.drain(..) {
            let (c, e) = (self.rows.client[row as usize], self.rows.episode[row as usize]);
            let key = (self.names.clients.name(c).to_string(), self.names.episodes.name(e).to_string());
            let at = into.entry(key).or_insert(day);
            *at = (*at).max(day);
        }
    }

    /// Moves the rows of a later chunk (validated on its own) onto these, re-keying its
    /// ids, and leaves `other` empty with its memory kept (as [`Measurements::append`]).
    pub fn append(&mut self, other: &mut GoalRatings) {
        let (names, rows) = (&mut self.names, &mut self.rows);
        let c = names.clients.absorb(&other.names.clients);
        let e = names.episodes.absorb(&other.names.episodes);
        let g = names.goals.absorb(&other.names.goals);
        let offset = rows.len() as u32;
        self.episode_end.extend(other.episode_end.drain(..).map(|(row, day)| (row + offset, day)));
        let o = &mut other.rows;
        rows.client.extend(remap(&o.client, &c));
        rows.episode.extend(remap(&o.episode, &e));
        rows.goal.extend(remap(&o.goal, &g));
        rows.parent.extend(remap(&o.parent, &g));
        rows.date.extend_from_slice(&o.date);
        rows.phase.extend_from_slice(&o.phase);
        rows.scale.extend_from_slice(&o.scale);
        rows.rating.extend_from_slice(&o.rating);
        rows.weight.extend_from_slice(&o.weight);
        for ids in [&mut o.client, &mut o.episode, &mut o.goal, &mut o.parent] {
            ids.clear();
        }
        o.date.clear();
        o.phase.clear();
        o.scale.clear();
        o.rating.clear();
        o.weight.clear();
        for n in [&mut other.names.clients, &mut other.names.episodes, &mut other.names.goals] {
            n.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl GoalColumns {
    pub fn len(&self) -> usize {
        self.rating.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rating.is_empty()
    }

    /// The rows at `order`, in that order; each column is freed as soon as its copy
    /// exists, so at most two columns are held twice (the two halves of the columns are
    /// gathered side by side: this is on the longest path of loading).
    pub fn gathered(self, order: &[u32]) -> GoalColumns {
        fn pick<T: Copy>(v: Vec<T>, order: &[u32]) -> Vec<T> {
            order.iter().map(|&i| v[i as usize]).collect()
        }
        let GoalColumns { client, episode, goal, parent, date, phase, scale, rating, weight } = self;
        let ((client, episode, goal, parent, date), (phase, scale, rating, weight)) = rayon::join(
            || (pick(client, order), pick(episode, order), pick(goal, order), pick(parent, order), pick(date, order)),
            || (pick(phase, order), pick(scale, order), pick(rating, order), pick(weight, order)),
        );
        GoalColumns { client, episode, goal, parent, date, phase, scale, rating, weight }
    }
}

/// Which input table a row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Measurements,
    Goals,
}

/// An input row that was not used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub table: Table,
    /// 0-based data record index in the input file (turned into a line number on output).
    pub record: u64,
    /// The column at fault, where there is one.
    pub column: &'static str,
    /// A stable short code for counting (`missing_value`, `impossible_date`, …).
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// For an exact duplicate: the record of the row that is used instead.
    pub duplicate_of: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_equals_the_library_comparison_at_every_length_and_position() {
        let base: Vec<u8> = (0..40u8).map(|i| b'A' + i).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a), "{n}");
            assert!(!same_bytes(a, &base[..n.saturating_sub(1)]) || n == 0, "{n}");
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!same_bytes(a, &b), "{n} {i}");
            }
        }
        assert!(same_text("C00001", "C00001") && !same_text("C00001", "C00002") && !same_text("é", "e"));
    }

    #[test]
    fn a_rows_record_counts_the_rejected_records_before_it() {
        // Records 0 … 11; 0, 3, 4 and 9 rejected: the rows are records 1 2 5 6 7 8 10 11.
        let of = RecordOf::new([0, 3, 4, 9]);
        let records: Vec<u64> = (0..8).map(|row| of.record(row)).collect();
        assert_eq!(records, [1, 2, 5, 6, 7, 8, 10, 11]);
        // Nothing rejected: a row is its record; everything before rejected: shifted.
        assert_eq!(RecordOf::new([]).record(7), 7);
        assert_eq!(RecordOf::new([0, 1, 2]).record(0), 3);
    }

    #[test]
    fn phase_words_are_parsed_leniently_and_absent_means_treatment() {
        assert_eq!(Phase::parse(None), Some(Phase::Treatment));
        assert_eq!(Phase::parse(Some("  ")), Some(Phase::Treatment));
        assert_eq!(Phase::parse(Some("Follow-up")), Some(Phase::FollowUp));
        assert_eq!(Phase::parse(Some("follow_up")), Some(Phase::FollowUp));
        assert_eq!(Phase::parse(Some("END")), Some(Phase::End));
        assert_eq!(Phase::parse(Some("discharged")), None);
    }

    #[test]
    fn interner_ranks_follow_byte_order() {
        let mut i = Interner::default();
        for s in ["b", "a", "c", "a"] {
            i.intern(s);
        }
        assert_eq!(i.len(), 3);
        assert_eq!(i.sort_ranks(), [1, 0, 2]);
        i.intern("0");
        assert_eq!(i.sort_ranks(), [2, 1, 3, 0], "a new name resets the cached order");
    }

    #[test]
    fn interned_names_round_trip_through_growth_and_collisions_of_prefixes() {
        let mut i = Interner::default();
        // Names that are prefixes of each other, the empty name, non-ASCII, and enough of
        // them to make the table grow several times.
        let names: Vec<String> = ["", "a", "ab", "abc", "b", "é", "éé"]
            .iter()
            .map(|s| s.to_string())
            .chain((0..5000).map(|k| format!("C{k:07}")))
            .collect();
        let ids: Vec<u32> = names.iter().map(|n| i.intern(n)).collect();
        assert_eq!(ids, (0..names.len() as u32).collect::<Vec<_>>(), "first-seen order");
        for (n, &id) in names.iter().zip(&ids).rev() {
            assert_eq!(i.intern(n), id);
            assert_eq!(i.name(id), n);
        }
        assert_eq!(i.len(), names.len());
    }

    #[test]
    fn a_key_column_widens_when_an_id_needs_it_and_keeps_absent_keys() {
        let mut c = KeyColumn::default();
        for id in [0, NO_KEY, 65_534] {
            c.push(id);
        }
        assert!(matches!(c, KeyColumn::Narrow(_)));
        c.push(65_535);
        assert!(matches!(c, KeyColumn::Wide(_)));
        c.push(NO_KEY);
        let got: Vec<u32> = (0..c.len()).map(|i| c.get(i)).collect();
        assert_eq!(got, [0, NO_KEY, 65_534, 65_535, NO_KEY]);
        let mut d = KeyColumn::default();
        d.push(NO_KEY);
        d.extend_remapped(&c, &[7; 70_000]);
        let got: Vec<u32> = (0..d.len()).map(|i| d.get(i)).collect();
        assert_eq!(got, [NO_KEY, 7, NO_KEY, 7, 7, NO_KEY]);
    }

    #[test]
    fn grouped_sort_equals_a_plain_sort_by_group_then_key() {
        let group = [2u32, 0, 1, 0, 2, 1, 0];
        let val = [5, 9, 1, 3, 5, 0, 3];
        let order = sort_grouped(7, 3, |i| group[i] as usize, |i| (val[i], i));
        let mut plain: Vec<u32> = (0..7).collect();
        plain.sort_by_key(|&i| (group[i as usize], val[i as usize], i));
        assert_eq!(order, plain);
        assert_eq!(order, vec![3, 6, 1, 5, 2, 0, 4]);
        // Enough rows for many blocks, empty groups and a group bigger than a block.
        let n = 20_000;
        let group = |i: usize| if i % 7 == 0 { 3 } else { (i * 7919) % 997 } * 2;
        let val = |i: usize| (i * 104_729) % 613;
        let order = sort_grouped(n, 2000, group, |i| (val(i), i));
        let mut plain: Vec<u32> = (0..n as u32).collect();
        plain.sort_by_key(|&i| (group(i as usize), val(i as usize), i));
        assert_eq!(order, plain);
    }

    #[test]
    fn merged_chunks_get_the_ids_of_one_pass() {
        let mut one = Interner::default();
        let ids: Vec<u32> = ["c", "a", "c", "b", "a"].iter().map(|s| one.intern(s)).collect();
        let (mut first, mut second) = (Interner::default(), Interner::default());
        let left: Vec<u32> = ["c", "a"].iter().map(|s| first.intern(s)).collect();
        let right: Vec<u32> = ["c", "b", "a"].iter().map(|s| second.intern(s)).collect();
        let map = first.absorb(&second);
        let merged: Vec<u32> = left.into_iter().chain(right.iter().map(|&i| map[i as usize])).collect();
        assert_eq!(merged, ids);
        assert_eq!(first.name(2), "b");
    }

    /// Rows of a chunk: (client, therapist or none, score).
    fn chunk(part: &mut Measurements, rows: &[(&str, Option<&str>, f64)]) {
        for &(client, therapist, score) in rows {
            part.client.push(part.keys.clients.intern(client));
            part.episode.push(part.keys.episodes.intern("1"));
            part.therapist.push(therapist.map_or(NO_KEY, |t| part.keys.therapists.intern(t)));
            part.site.push(NO_KEY);
            part.date.push(0);
            part.session.push(NO_SESSION);
            part.phase.push(Phase::Treatment);
            part.measure.push(0);
            part.score.push(score);
        }
    }

    #[test]
    fn a_chunk_emptied_by_append_is_as_good_as_a_new_one() {
        let (a, b): (&[_], &[_]) = (&[("x", Some("t2"), 1.0), ("y", None, 2.0)], &[("y", Some("t1"), 3.0)]);
        let (mut fresh, mut reused) = (Measurements::default(), Measurements::default());
        let mut part = Measurements::default();
        for rows in [a, b] {
            let mut new = Measurements::default();
            chunk(&mut new, rows);
            fresh.append(&mut new);
            chunk(&mut part, rows);
            reused.append(&mut part);
            assert!(part.is_empty() && part.keys.clients.is_empty() && part.therapist.is_empty());
        }
        assert_eq!(reused.client, [0, 1, 1]);
        assert_eq!(reused.therapist, KeyColumn::Narrow(vec![0, KeyColumn::ABSENT, 1]));
        assert_eq!(reused.score, [1.0, 2.0, 3.0]);
        assert_eq!((reused.client, reused.therapist, reused.score), (fresh.client, fresh.therapist, fresh.score));
        assert_eq!(reused.keys.therapists.name(1), "t1");
    }
}
