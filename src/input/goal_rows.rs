//! The goal ratings in the order the goal analysis reads them (client, episode, scale,
//! goal, by name; then date; then record order), duplicate ratings dropped.
//!
//! A table within the row budget is sorted in memory. A larger one never is: its rows go
//! to a temporary file as they are validated, and are dealt out from there into runs of
//! whole clients (consecutive in name order, each within the budget), one file each; each
//! run is then sorted, its duplicates dropped, and written back in order (sorting it again
//! when it is read instead measured slower at 10 M ratings). The goal analysis reads one
//! run at a time, so the
//! memory the goal table needs stays near one budget of rows however long the table is
//! (issue 7: 100 million measurements come with about 70 million goal ratings). Every
//! goal figure depends on its own client's ratings alone, and the runs follow each other
//! in client order, so the results are those of one run over everything, in the same
//! order.

use crate::domain::columns::{GoalColumns, GoalNames, GoalRatings, GoalScale, Phase, RecordOf, Rejection, Table};
use crate::domain::duplicates::{find_duplicates, Duplicate};
use crate::input::ingest::duplicate_rejection;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Goal ratings held in memory at most (42 bytes each on disk, about as much in memory)
/// before the table goes through temporary files: about 340 MB.
pub const DEFAULT_BUDGET: usize = 8_000_000;

/// The goal table in analysis order.
pub struct GoalRows {
    pub names: GoalNames,
    /// The goal table's `episode_end` days, by (client, episode) names.
    pub episode_end: crate::domain::columns::EndDates,
    store: Store,
}

enum Store {
    Memory(GoalColumns),
    /// Runs of whole clients, in order: each in a temporary file (deleted when closed),
    /// sorted, with its number of rows.
    Files(Vec<(File, usize)>),
}

impl GoalRows {
    /// Sorts validated ratings in memory, dropping duplicates silently (tests, benches).
    pub fn in_memory(g: GoalRatings) -> GoalRows {
        let mut rejected = Vec::new();
        Builder::new(usize::MAX).finish(g, &RecordOf::new([]), &mut rejected).expect("no file is used in memory")
    }

    /// How many runs the rows are read in (1 when they are held in memory).
    pub fn runs(&self) -> usize {
        match &self.store {
            Store::Memory(_) => 1,
            Store::Files(runs) => runs.len(),
        }
    }

    /// Hands the rows to `each` one run of whole clients at a time, in order.
    pub fn for_each_run(&self, mut each: impl FnMut(&GoalColumns)) -> io::Result<()> {
        match &self.store {
            Store::Memory(rows) => each(rows),
            Store::Files(runs) => {
                for (file, n) in runs {
                    each(&read_run(file, *n)?.0);
                }
            }
        }
        Ok(())
    }
}

impl crate::domain::columns::GoalRuns for GoalRows {
    fn names(&self) -> &GoalNames {
        &self.names
    }

    fn episode_end(&self) -> &crate::domain::columns::EndDates {
        &self.episode_end
    }

    fn each_run(&self, each: &mut dyn FnMut(&GoalColumns)) -> io::Result<()> {
        self.for_each_run(each)
    }
}

/// Collects the goal table while it is validated block by block (see the module notes).
pub struct Builder {
    budget: usize,
    /// The rows beyond the budget, in record order.
    spill: Option<BufWriter<File>>,
    spilled: usize,
    /// Rows per client id among those spilled.
    per_client: Vec<u32>,
}

impl Builder {
    pub fn new(budget: usize) -> Builder {
        Builder { budget: budget.max(1), spill: None, spilled: 0, per_client: Vec::new() }
    }

    /// After each validated block: once the rows held reach the budget, they go to the
    /// temporary file (only the names stay), and from then on every block's rows do.
    pub fn after_block(&mut self, g: &mut GoalRatings) -> io::Result<()> {
        if g.len() >= self.budget || (self.spill.is_some() && !g.is_empty()) {
            self.spill_rows(g)?;
        }
        Ok(())
    }

    fn spill_rows(&mut self, g: &mut GoalRatings) -> io::Result<()> {
        let w = match &mut self.spill {
            Some(w) => w,
            None => self.spill.insert(BufWriter::with_capacity(1 << 20, tempfile::tempfile()?)),
        };
        let rows = std::mem::take(&mut g.rows);
        self.per_client.resize(g.names.clients.len(), 0);
        for i in 0..rows.len() {
            self.per_client[rows.client[i] as usize] += 1;
            write_row(w, &rows, i, (self.spilled + i) as u32)?;
        }
        self.spilled += rows.len();
        Ok(())
    }

    /// The table in analysis order. Duplicates become rejections in `rejected`;
    /// `record_of` maps a row (its index among the validated rows) to its record.
    pub fn finish(
        mut self,
        mut g: GoalRatings,
        record_of: &RecordOf,
        rejected: &mut Vec<Rejection>,
    ) -> io::Result<GoalRows> {
        if self.spill.is_none() {
            let rows = std::mem::take(&mut g.rows);
            let sorted = into_order(rows, |i| i as u32, &g.names, record_of, rejected);
            return Ok(GoalRows { names: g.names, episode_end: Default::default(), store: Store::Memory(sorted) });
        }
        self.spill_rows(&mut g)?;
        let spill = self.spill.take().expect("spilled").into_inner().map_err(|e| e.into_error())?;
        // A run is a quarter of the budget: it is sorted with its order and a column's copy
        // beside it, and held while the other analyses run.
        let (run_of, sizes) = runs_of_clients(&g.names, &self.per_client, (self.budget / 4).max(1));
        // One pass deals the rows out to a file per run (in record order within each).
        let mut runs: Vec<BufWriter<File>> = Vec::with_capacity(sizes.len());
        for _ in &sizes {
            runs.push(BufWriter::with_capacity(1 << 16, tempfile::tempfile()?));
        }
        let mut spill_file = &spill;
        spill_file.seek(SeekFrom::Start(0))?;
        let mut r = BufReader::with_capacity(1 << 20, spill_file);
        let mut record = [0u8; RECORD];
        for _ in 0..self.spilled {
            r.read_exact(&mut record)?;
            let client = u32::from_le_bytes(record[0..4].try_into().expect("four bytes"));
            runs[run_of[client as usize] as usize].write_all(&record)?;
        }
        drop(r);
        drop(spill);
        // Each run is sorted, its duplicates dropped, and written back in analysis order
        // (its unsorted file is deleted once read).
        let mut files = Vec::with_capacity(sizes.len());
        for (run, n) in runs.into_iter().zip(sizes) {
            let file = run.into_inner().map_err(|e| e.into_error())?;
            let (rows, index) = read_run(&file, n)?;
            drop(file);
            let sorted = into_order(rows, |i| index[i], &g.names, record_of, rejected);
            drop(index);
            let mut w = BufWriter::with_capacity(1 << 20, tempfile::tempfile()?);
            for i in 0..sorted.len() {
                write_row(&mut w, &sorted, i, 0)?;
            }
            files.push((w.into_inner().map_err(|e| e.into_error())?, sorted.len()));
        }
        Ok(GoalRows { names: g.names, episode_end: Default::default(), store: Store::Files(files) })
    }
}

/// Splits the clients, in name order, into runs of at most `budget` rows (a client with
/// more has a run of its own). Returns each client id's run and each run's row count.
fn runs_of_clients(names: &GoalNames, per_client: &[u32], budget: usize) -> (Vec<u32>, Vec<usize>) {
    let ranks = names.clients.sort_ranks();
    let mut by_rank = vec![0u32; ranks.len()];
    for (id, &rank) in ranks.iter().enumerate() {
        by_rank[rank as usize] = id as u32;
    }
    let mut run_of = vec![0u32; ranks.len()];
    let mut sizes = vec![0usize];
    for id in by_rank {
        let n = per_client.get(id as usize).copied().unwrap_or(0) as usize;
        let last = sizes.len() - 1;
        if sizes[last] > 0 && sizes[last] + n > budget {
            sizes.push(0);
        }
        let last = sizes.len() - 1;
        sizes[last] += n;
        run_of[id as usize] = last as u32;
    }
    (run_of, sizes)
}

/// Sorts rows into analysis order and drops duplicate ratings (same client, episode,
/// goal, scale and date), which become rejections. `index(i)` is row `i`'s place among
/// all validated rows.
fn into_order(
    rows: GoalColumns,
    index: impl Fn(usize) -> u32 + Sync,
    names: &GoalNames,
    record_of: &RecordOf,
    rejected: &mut Vec<Rejection>,
) -> GoalColumns {
    let mut order = analysis_order(&rows, &index, names);
    let dropped = duplicates(&rows, &order, &index, record_of, rejected);
    drop_rows(&mut order, &dropped, rows.len());
    let dropped = parent_cycles(&rows, &order, &index, names, record_of, rejected);
    drop_rows(&mut order, &dropped, rows.len());
    rows.gathered(&order)
}

fn drop_rows(order: &mut Vec<u32>, dropped: &[u32], n: usize) {
    if !dropped.is_empty() {
        let mut is_dropped = vec![false; n];
        for &i in dropped {
            is_dropped[i as usize] = true;
        }
        order.retain(|&i| !is_dropped[i as usize]);
    }
}

/// Goals whose parent goals lead back to them (G2 under G3, G3 under G2), within one
/// client, episode and scale, as the roll-up looks parents up. Each such goal would be an
/// objective of another and none a goal, so all of them dropped out of the episode's goal
/// counts and GAS score, as a goal naming itself did (`own_parent`). Every row of every
/// goal on a cycle becomes a rejection; their rows are returned. A goal's parent is the
/// first one its rows name, as in the goal analysis; a goal below a cycle is kept (its
/// parent is then one never rated).
fn parent_cycles(
    r: &GoalColumns,
    order: &[u32],
    index: impl Fn(usize) -> u32,
    names: &GoalNames,
    record_of: &RecordOf,
    rejected: &mut Vec<Rejection>,
) -> Vec<u32> {
    type Map = std::collections::HashMap<u32, usize, foldhash::fast::FixedState>;
    let group = |i: usize| (r.client[i], r.episode[i], r.scale[i]);
    let mut dropped = Vec::new();
    // Reused from group to group: each goal's first place in `order` and its place among
    // the group's goals; each goal's parent (as a goal of the group) and walk state.
    let (mut starts, mut of_goal, mut parent, mut state): (Vec<usize>, Map, Vec<Option<usize>>, Vec<u8>) =
        Default::default();
    let mut path = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let g0 = group(order[start] as usize);
        let end = start + order[start..].iter().take_while(|&&i| group(i as usize) == g0).count();
        let group_rows = &order[start..end];
        if group_rows.iter().any(|&i| r.parent[i as usize] != crate::domain::columns::NO_KEY) {
            starts.clear();
            of_goal.clear();
            for (k, &i) in group_rows.iter().enumerate() {
                if k == 0 || r.goal[i as usize] != r.goal[group_rows[k - 1] as usize] {
                    of_goal.insert(r.goal[i as usize], starts.len());
                    starts.push(start + k);
                }
            }
            // Each goal's parent is the first one its rows name, as in the goal analysis.
            parent.clear();
            for (g, &s) in starts.iter().enumerate() {
                let rows = &order[s..starts.get(g + 1).copied().unwrap_or(end)];
                let named = rows.iter().map(|&i| r.parent[i as usize]).find(|&p| p != crate::domain::columns::NO_KEY);
                parent.push(named.and_then(|p| of_goal.get(&p).copied()));
            }
            // 0 = not seen, 1 = on the walk being followed, 2 = done.
            state.clear();
            state.resize(starts.len(), 0);
            for first in 0..starts.len() {
                path.clear();
                let mut at = Some(first);
                while let Some(g) = at.filter(|&g| state[g] != 2) {
                    if state[g] == 1 {
                        // Back on the walk: the goals from `g` on form a cycle.
                        let cycle = &path[path.iter().position(|&p| p == g).expect("on the walk")..];
                        let (message, rows) = cycle_rows(r, order, (&starts, end), cycle, names);
                        for i in rows {
                            rejected.push(Rejection {
                                table: Table::Goals,
                                record: record_of.record(index(i as usize) as usize),
                                column: "parent_goal_id",
                                code: "parent_cycle",
                                message: message.clone(),
                                duplicate_of: None,
                            });
                            dropped.push(i);
                        }
                        break;
                    }
                    state[g] = 1;
                    path.push(g);
                    at = parent[g];
                }
                path.iter().for_each(|&g| state[g] = 2);
            }
        }
        start = end;
    }
    dropped
}

/// The rows of the goals on one cycle (`cycle`: places among the group's goals, each the
/// parent of the one before and the first the parent of the last; `starts`: each goal's
/// first place in `order`, and where the group ends), with the reason they are rejected.
fn cycle_rows(
    r: &GoalColumns,
    order: &[u32],
    (starts, group_end): (&[usize], usize),
    cycle: &[usize],
    names: &GoalNames,
) -> (String, Vec<u32>) {
    let name = |g: usize| crate::input::validate::quoted(names.goals.name(r.goal[order[starts[g]] as usize]));
    let walk: Vec<String> = cycle.iter().chain(&cycle[..1]).map(|&g| name(g)).collect();
    let message = format!("parent goals form a cycle: {}; none of these goals is used", walk.join(" under "));
    let rows = cycle
        .iter()
        .flat_map(|&g| order[starts[g]..starts.get(g + 1).copied().unwrap_or(group_end)].iter().copied())
        .collect();
    (message, rows)
}

/// Row indices in analysis order: client, episode, scale, goal (by name), date, then
/// record order.
fn analysis_order(r: &GoalColumns, index: impl Fn(usize) -> u32 + Sync, names: &GoalNames) -> Vec<u32> {
    let (cr, er, gr) = (names.clients.sort_ranks(), names.episodes.sort_ranks(), names.goals.sort_ranks());
    crate::domain::columns::sort_grouped(
        r.len(),
        names.clients.len(),
        |i| cr[r.client[i] as usize] as usize,
        |i| (er[r.episode[i] as usize], r.scale[i], gr[r.goal[i] as usize], r.date[i], index(i)),
    )
}

/// Duplicate ratings among rows in analysis `order` (where equal keys are adjacent,
/// earliest record first, as duplicate detection needs), added to `rejected`; returns
/// their row numbers.
fn duplicates(
    r: &GoalColumns,
    order: &[u32],
    index: impl Fn(usize) -> u32,
    record_of: &RecordOf,
    rejected: &mut Vec<Rejection>,
) -> Vec<u32> {
    let key = |i: usize| (r.client[i], r.episode[i], r.goal[i], r.scale[i], r.date[i]);
    let record = |row: usize| record_of.record(row);
    let dups = find_duplicates(order, key, |i| r.rating[i]);
    for (row, why) in &dups {
        let why = match why {
            Duplicate::Exact { kept_row } => Duplicate::Exact { kept_row: index(*kept_row) as usize },
            other => other.clone(),
        };
        rejected.push(duplicate_rejection(Table::Goals, record(index(*row) as usize), "rating", &why, record));
    }
    dups.into_iter().map(|(row, _)| row as u32).collect()
}

/// Bytes of one row in the temporary files: client, episode, goal, parent, date, row
/// index (u32 / i32), rating, weight (f64), phase, scale (u8), little-endian.
const RECORD: usize = 42;

fn write_row(w: &mut impl Write, c: &GoalColumns, i: usize, index: u32) -> io::Result<()> {
    let mut b = [0u8; RECORD];
    b[0..4].copy_from_slice(&c.client[i].to_le_bytes());
    b[4..8].copy_from_slice(&c.episode[i].to_le_bytes());
    b[8..12].copy_from_slice(&c.goal[i].to_le_bytes());
    b[12..16].copy_from_slice(&c.parent[i].to_le_bytes());
    b[16..20].copy_from_slice(&c.date[i].to_le_bytes());
    b[20..24].copy_from_slice(&index.to_le_bytes());
    b[24..32].copy_from_slice(&c.rating[i].to_le_bytes());
    b[32..40].copy_from_slice(&c.weight[i].to_le_bytes());
    b[40] = match c.phase[i] {
        Phase::Assessment => 0,
        Phase::Treatment => 1,
        Phase::End => 2,
        Phase::FollowUp => 3,
    };
    b[41] = match c.scale[i] {
        GoalScale::Gbo => 0,
        GoalScale::Gas => 1,
    };
    w.write_all(&b)
}

/// The `n` rows of a run file, and each row's index.
fn read_run(file: &File, n: usize) -> io::Result<(GoalColumns, Vec<u32>)> {
    let mut file = file;
    file.seek(SeekFrom::Start(0))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut c = GoalColumns {
        client: Vec::with_capacity(n),
        episode: Vec::with_capacity(n),
        goal: Vec::with_capacity(n),
        parent: Vec::with_capacity(n),
        date: Vec::with_capacity(n),
        phase: Vec::with_capacity(n),
        scale: Vec::with_capacity(n),
        rating: Vec::with_capacity(n),
        weight: Vec::with_capacity(n),
    };
    let mut index = Vec::with_capacity(n);
    let mut b = [0u8; RECORD];
    let corrupt = || io::Error::new(io::ErrorKind::InvalidData, "a temporary goal file was changed while in use");
    for _ in 0..n {
        r.read_exact(&mut b)?;
        let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"));
        let f64_at = |at: usize| f64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        c.client.push(u32_at(0));
        c.episode.push(u32_at(4));
        c.goal.push(u32_at(8));
        c.parent.push(u32_at(12));
        c.date.push(u32_at(16) as i32);
        index.push(u32_at(20));
        c.rating.push(f64_at(24));
        c.weight.push(f64_at(32));
        c.phase.push(match b[40] {
            0 => Phase::Assessment,
            1 => Phase::Treatment,
            2 => Phase::End,
            3 => Phase::FollowUp,
            _ => return Err(corrupt()),
        });
        c.scale.push(match b[41] {
            0 => GoalScale::Gbo,
            1 => GoalScale::Gas,
            _ => return Err(corrupt()),
        });
    }
    Ok((c, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends one rating of episode "1" in treatment, weight 1 (`parent` empty: none).
    fn push(g: &mut GoalRatings, (client, goal, parent): (&str, &str, &str), date: i32, scale: GoalScale, rating: f64) {
        let (n, r) = (&mut g.names, &mut g.rows);
        r.client.push(n.clients.intern(client));
        r.episode.push(n.episodes.intern("1"));
        r.goal.push(n.goals.intern(goal));
        r.parent.push(if parent.is_empty() { crate::domain::columns::NO_KEY } else { n.goals.intern(parent) });
        r.date.push(date);
        r.phase.push(Phase::Treatment);
        r.scale.push(scale);
        r.rating.push(rating);
        r.weight.push(1.0);
    }

    /// Rows (client, goal, date, rating), arriving in blocks of `block` rows as ingest
    /// hands them over, through a builder with `budget`.
    fn built(rows: &[(&str, &str, i32, f64)], block: usize, budget: usize) -> (GoalRows, Vec<Rejection>) {
        let mut builder = Builder::new(budget);
        let mut g = GoalRatings::default();
        for chunk in rows.chunks(block) {
            let mut part = GoalRatings::default();
            for &(client, goal, date, rating) in chunk {
                push(&mut part, (client, goal, ""), date, GoalScale::Gbo, rating);
            }
            g.append(&mut part);
            builder.after_block(&mut g).unwrap();
        }
        // Validation rejected record 3: rows from 3 on are records 4, 5, …
        let mut rejected = Vec::new();
        let rows = builder.finish(g, &RecordOf::new([3]), &mut rejected).unwrap();
        rejected.sort_by_key(|r| r.record);
        (rows, rejected)
    }

    fn all_rows(g: &GoalRows) -> Vec<(String, String, i32, f64)> {
        let mut out = Vec::new();
        g.for_each_run(|c| {
            for i in 0..c.len() {
                let name = |id| g.names.goals.name(id).to_string();
                out.push((g.names.clients.name(c.client[i]).to_string(), name(c.goal[i]), c.date[i], c.rating[i]));
            }
        })
        .unwrap();
        out
    }

    const ROWS: [(&str, &str, i32, f64); 9] = [
        ("b", "G2", 5, 3.0),
        ("a", "G1", 1, 2.0),
        ("c", "G1", 1, 4.0),
        ("b", "G1", 9, 1.0),
        ("a", "G1", 1, 2.0), // repeats row 1: dropped, row 1 kept
        ("c", "G1", 1, 6.0), // conflicts with row 2: both dropped
        ("a", "G1", 0, 5.0),
        ("b", "G2", 2, 7.0),
        ("c", "G2", 3, 8.0),
    ];

    #[test]
    fn rows_come_in_client_goal_date_order_without_duplicates() {
        let (g, rejected) = built(&ROWS, 4, usize::MAX);
        assert_eq!(g.runs(), 1);
        let want = [("a", "G1", 0, 5.0), ("a", "G1", 1, 2.0), ("b", "G1", 9, 1.0), ("b", "G2", 2, 7.0)];
        let want: Vec<_> = (want.iter().chain(&[("b", "G2", 5, 3.0), ("c", "G2", 3, 8.0)]))
            .map(|&(c, g, d, r)| (c.to_string(), g.to_string(), d, r))
            .collect();
        assert_eq!(all_rows(&g), want);
        // Rows 2, 4 and 5 are records 2, 5 and 6; the kept row 1 is record 1.
        let got: Vec<_> = rejected.iter().map(|r| (r.record, r.code, r.duplicate_of)).collect();
        assert_eq!(
            got,
            [(2, "conflicting_duplicate", None), (5, "exact_duplicate", Some(1)), (6, "conflicting_duplicate", None)]
        );
    }

    #[test]
    fn a_table_beyond_the_budget_gives_the_same_rows_in_runs_of_whole_clients() {
        let (whole, whole_rejected) = built(&ROWS, 4, usize::MAX);
        for (block, budget) in [(1, 1), (2, 2), (4, 3), (9, 5)] {
            let (runs, rejected) = built(&ROWS, block, budget);
            assert!(runs.runs() > 1, "block {block}, budget {budget}");
            assert_eq!(all_rows(&runs), all_rows(&whole), "block {block}, budget {budget}");
            assert_eq!(rejected, whole_rejected, "block {block}, budget {budget}");
            let mut clients_per_run = Vec::new();
            runs.for_each_run(|c| clients_per_run.push(c.client.clone())).unwrap();
            for (i, run) in clients_per_run.iter().enumerate() {
                // No client straddles two runs, and a run holds more than the budget only
                // when it is one client's.
                let later = clients_per_run[i + 1..].iter().flatten();
                assert!(later.clone().all(|c| !run.contains(c)));
                assert!(run.len() <= budget || run.iter().all(|&c| c == run[0]));
            }
        }
    }

    /// Rows (client, goal, parent, date) of one episode's goals (GAS for goals named A…,
    /// else GBO), sorted in memory or in runs; returns the kept rows as client, goal and
    /// date ("aG1@1") and the rejections in record order.
    fn with_parents(rows: &[(&str, &str, &str, i32)], budget: usize) -> (Vec<String>, Vec<Rejection>) {
        let mut builder = Builder::new(budget);
        let mut g = GoalRatings::default();
        for &(client, goal, parent, date) in rows {
            let (scale, rating) = if goal.starts_with('A') { (GoalScale::Gas, 1.0) } else { (GoalScale::Gbo, 5.0) };
            push(&mut g, (client, goal, parent), date, scale, rating);
            builder.after_block(&mut g).unwrap();
        }
        let mut rejected = Vec::new();
        let kept = builder.finish(g, &RecordOf::new([]), &mut rejected).unwrap();
        rejected.sort_by_key(|r| r.record);
        (all_rows(&kept).into_iter().map(|(c, g, d, _)| format!("{c}{g}@{d}")).collect(), rejected)
    }

    #[test]
    fn goals_whose_parents_lead_back_to_them_are_rejected_row_by_row() {
        let rows = [
            ("a", "G2", "G3", 1), // record 0: G2 under G3 …
            ("a", "G3", "G2", 1), // 1: … under G2: a cycle
            ("a", "G2", "", 5),   // 2: a later rating of G2 naming no parent: still G3
            ("a", "G1", "G2", 1), // 3: below the cycle: kept, under a goal never rated
            ("a", "G4", "G5", 1), // 4: a chain G4 under G5 under G6: kept
            ("a", "G5", "G6", 1), // 5
            ("a", "G6", "", 1),   // 6
            ("b", "G7", "G8", 1), // 7: a cycle of three: G7 under G8 under G9 under G7
            ("b", "G8", "G9", 2), // 8
            ("b", "G9", "G7", 3), // 9
            ("b", "G2", "G3", 1), // 10: the same names, another client: no cycle
            ("c", "G1", "A1", 1), // 11: a GBO goal under a GAS goal is looked up in its own
            ("c", "A1", "G1", 1), // 12: scale, as the roll-up does: no cycle
            ("d", "G1", "", 1),   // 13: G1's parent is named on its later rating only …
            ("d", "G1", "G2", 2), // 14
            ("d", "G2", "G1", 1), // 15: … and G2 is under G1: a cycle
        ];
        for budget in [usize::MAX, 2] {
            let (kept, rejected) = with_parents(&rows, budget);
            assert_eq!(kept, ["aG1@1", "aG4@1", "aG5@1", "aG6@1", "bG2@1", "cG1@1", "cA1@1"], "budget {budget}");
            let codes: Vec<(u64, &str)> = rejected.iter().map(|r| (r.record, r.code)).collect();
            let cycle = |r| (r, "parent_cycle");
            let want = [0, 1, 2, 7, 8, 9, 13, 14, 15].map(cycle);
            assert_eq!(codes, want, "budget {budget}");
            assert_eq!(
                rejected[0].message,
                "parent goals form a cycle: 'G2' under 'G3' under 'G2'; none of these goals is used"
            );
            assert!(rejected[3].message.contains("'G7' under 'G8' under 'G9' under 'G7'"), "{}", rejected[3].message);
        }
    }

    #[test]
    fn clients_are_split_into_runs_by_name_within_the_budget() {
        let mut names = GoalNames::default();
        for c in ["d", "b", "a", "c"] {
            names.clients.intern(c);
        }
        // Rows per client id (d, b, a, c): a 1, b 4, c 2, d 1; budget 3.
        let (run_of, sizes) = runs_of_clients(&names, &[1, 4, 1, 2], 3);
        // a | b (alone: more than the budget) | c, d
        assert_eq!((run_of, sizes), (vec![2, 1, 0, 2], vec![1, 4, 3]));
    }
}
