//! Goals: Goal-Based Outcomes change per goal (with objectives rolled up to the goal
//! they break down), the Goal Attainment Scaling T-score per episode (Kiresuk &
//! Sherman 1968) at the end and at follow-up, whether attainment held, and whether goal
//! progress agrees with symptom change.

use crate::domain::columns::{GoalColumns, GoalNames, GoalRuns, GoalScale, Keys, Phase, NO_KEY};
use crate::domain::dates::Day;
use crate::domain::episodes::Episodes;
use crate::domain::outcomes::ReliableCategory;
use serde::Serialize;

/// Goal settings.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// GBO reliable change in points (NHS England MHSDS: 3).
    pub gbo_reliable_change: f64,
    /// GAS inter-goal correlation ρ (Kiresuk & Sherman: 0.3).
    pub gas_rho: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options { gbo_reliable_change: 3.0, gas_rho: 0.3 }
    }
}

/// The Kiresuk–Sherman T-score: 50 + 10 Σwᵢxᵢ / √((1 − ρ) Σwᵢ² + ρ (Σwᵢ)²).
pub fn gas_t_score(goals: &[(f64, f64)], rho: f64) -> Option<f64> {
    if goals.is_empty() {
        return None;
    }
    let swx: f64 = goals.iter().map(|(w, x)| w * x).sum();
    let sw2: f64 = goals.iter().map(|(w, _)| w * w).sum();
    let sw: f64 = goals.iter().map(|(w, _)| w).sum();
    Some(50.0 + 10.0 * swx / ((1.0 - rho) * sw2 + rho * sw * sw).sqrt())
}

/// One goal or objective.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalResult {
    pub client: u32,
    pub episode: u32,
    pub goal: u32,
    pub parent: u32,
    pub scale: GoalScale,
    pub n_ratings: u32,
    pub first: Option<(Day, f64)>,
    pub last: Option<(Day, f64)>,
    pub change: Option<f64>,
    pub reliable_change: Option<ReliableCategory>,
    pub followup: Option<(Day, f64)>,
    pub change_since_end: Option<f64>,
    pub held_at_followup: Option<bool>,
    pub weight: f64,
    pub n_objectives: u32,
    pub objectives_mean_change: Option<f64>,
    pub n_objectives_improved: u32,
    /// The goal's ratings name more than one parent (`parent` is the first named): the
    /// export's goal tree is ambiguous here, marked in `goals.csv` (`goal_check`).
    pub parents_differ: bool,
    /// A GAS goal's ratings give different weights (`weight` is the last one given).
    pub weights_differ: bool,
}

/// Goal figures of one episode.
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeGoals {
    pub client: u32,
    pub episode: u32,
    pub gbo_goals: u32,
    pub gbo_improved: u32,
    pub gbo_deteriorated: u32,
    pub gas_goals: u32,
    pub gas_t_end: Option<f64>,
    pub gas_t_followup: Option<f64>,
    /// Expected attainment (T ≥ 50) at the end still reached at follow-up.
    pub gas_held: Option<bool>,
    pub goal_progress: Option<bool>,
    pub symptoms_improved: Option<bool>,
    pub agreement: Option<&'static str>,
    /// Ended on the extract date: the status of the symptom episode of the same keys, or
    /// for goals alone, from the ratings (a follow-up rating, or the last rating more than
    /// the inactivity limit before the extract date). Only ended episodes count in the
    /// goal figures.
    pub ended: bool,
}

/// Computes every goal, objective and episode (all at once; see [`analyse_by_client`]).
pub fn analyse(g: &impl GoalRuns, keys: &Keys, eps: &Episodes, opts: &Options) -> (Vec<GoalResult>, Vec<EpisodeGoals>) {
    let (mut goals, mut episodes) = (Vec::new(), Vec::new());
    let read = analyse_by_client(
        g,
        keys,
        eps,
        opts,
        |_, _| true,
        |gs, es| {
            goals.extend_from_slice(gs);
            episodes.extend_from_slice(es);
        },
    );
    read.expect("goal rows in memory");
    (goals, episodes)
}

/// Computes the goals, objectives and episodes of one client at a time, in the order of
/// the clients' ids, and hands each client's to `each`: goals in the order of their keys
/// (episode, scale, goal), episodes in the order of theirs. Every goal figure depends on
/// its own client's ratings alone, so the results of all clients are never held
/// together (at ten million ratings they would be several hundred MB), nor, for a large
/// table, the ratings themselves (they are read a run of clients at a time). Only
/// episodes for which `keep(client, episode)` holds are handed on. Fails only if a run
/// cannot be read back from its temporary file.
pub fn analyse_by_client(
    g: &impl GoalRuns,
    keys: &Keys,
    eps: &Episodes,
    opts: &Options,
    keep: impl Fn(u32, u32) -> bool,
    mut each: impl FnMut(&[GoalResult], &[EpisodeGoals]),
) -> std::io::Result<()> {
    let names = g.names();
    let (er, gr) = (names.episodes.sort_ranks(), names.goals.sort_ranks());
    let mut symptoms = SymptomChange::new(keys, eps, g.episode_end());
    let (mut goals, mut episodes) = (Vec::new(), Vec::new());
    g.each_run(&mut |rows| {
        // The rows are in analysis order: each client's together, each goal's together.
        let goal_key = |i: usize| (rows.episode[i], rows.scale[i], rows.goal[i]);
        let mut start = 0;
        while start < rows.len() {
            let client = rows.client[start];
            let end = start + rows.client[start..].iter().take_while(|&&c| c == client).count();
            goals.clear();
            let mut s = start;
            while s < end {
                let e = s + (s..end).take_while(|&i| goal_key(i) == goal_key(s)).count();
                goals.push(one_goal(rows, s..e, opts));
                s = e;
            }
            roll_up_objectives(&mut goals);
            episodes.clear();
            episode_goals(names, &mut symptoms, &goals, opts, &mut episodes);
            goals.retain(|x| keep(x.client, x.episode));
            episodes.retain(|x| keep(x.client, x.episode));
            // Objectives' parents that were never rated themselves were appended: sort them in.
            goals.sort_by_key(|x| (er[x.episode as usize], x.scale, gr[x.goal as usize]));
            each(&goals, &episodes);
            start = end;
        }
    })
}

fn one_goal(g: &GoalColumns, rows: std::ops::Range<usize>, opts: &Options) -> GoalResult {
    let f = rows.start;
    let mut treatment = rows.clone().filter(|&r| g.phase[r] != Phase::FollowUp);
    let followup = rows.clone().rfind(|&r| g.phase[r] == Phase::FollowUp);
    let at = |r: usize| (g.date[r], g.rating[r]);
    let first = treatment.next().map(at);
    let last = treatment.next_back().map(at);
    let change = first.zip(last).map(|(a, b)| b.1 - a.1);
    let rc = opts.gbo_reliable_change;
    let reliable_change = match g.scale[f] {
        GoalScale::Gbo => change.map(|c| {
            if c >= rc {
                ReliableCategory::Improved
            } else if -c >= rc {
                ReliableCategory::Deteriorated
            } else {
                ReliableCategory::NoChange
            }
        }),
        GoalScale::Gas => None,
    };
    let end_rating = last.or(first);
    let fu = followup.map(at);
    let change_since_end = fu.zip(end_rating).map(|(u, e)| u.1 - e.1);
    // The parent is the goal's, not the rating's: the first one named (a blank on one
    // rating does not make an objective a goal). Another one named later is marked.
    let mut named = rows.clone().map(|r| g.parent[r]).filter(|&p| p != NO_KEY);
    let parent = named.next().unwrap_or(NO_KEY);
    let parents_differ = named.any(|p| p != parent);
    // So is the weight: the last one its ratings give (an export may give it only where
    // the goal was set), 1 where none does.
    let (mut weight, mut weights_differ) = (None, false);
    for w in rows.clone().map(|r| g.weight[r]).filter(|w| !w.is_nan()) {
        weights_differ |= weight.is_some_and(|v| v != w);
        weight = Some(w);
    }
    GoalResult {
        client: g.client[f],
        episode: g.episode[f],
        goal: g.goal[f],
        parent,
        scale: g.scale[f],
        n_ratings: rows.len() as u32,
        first,
        last,
        change,
        reliable_change,
        followup: fu,
        change_since_end,
        held_at_followup: match g.scale[f] {
            GoalScale::Gbo => change_since_end.map(|c| -c < rc),
            GoalScale::Gas => None,
        },
        weight: weight.unwrap_or(1.0),
        n_objectives: 0,
        objectives_mean_change: None,
        n_objectives_improved: 0,
        parents_differ,
        weights_differ: weights_differ && g.scale[f] == GoalScale::Gas,
    }
}

/// Rows by key (a goal's id), hashed fast.
type Map<K> = std::collections::HashMap<K, usize, foldhash::fast::FixedState>;

/// Objectives (rows with a parent) are summarised on their parent goal's row; a parent
/// that was never rated itself gets a row of its own (appended, in the order its first
/// objective is met). `goals` arrive grouped by client, episode and scale, and a parent
/// is looked for only within its objective's group, by a scan of a small group and
/// through a map of a large one (a scan per objective was quadratic: an episode of 20,000
/// goals took a second).
fn roll_up_objectives(goals: &mut Vec<GoalResult>) {
    let n = goals.len();
    let group = |x: &GoalResult| (x.client, x.episode, x.scale);
    // Reused from group to group: each goal's row, and for each row of the group (from
    // `start`) the sum and count of its objectives' changes.
    let mut row_of: Map<u32> = Map::default();
    let mut changes: Vec<(f64, u32)> = Vec::new();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && group(&goals[end]) == group(&goals[start]) {
            end += 1;
        }
        if goals[start..end].iter().any(|x| x.parent != NO_KEY) {
            roll_up_objectives_of_group(goals, start, end, &mut row_of, &mut changes);
        }
        start = end;
    }
}

/// [`roll_up_objectives`] for the group of rows `start..end`, which holds an objective.
fn roll_up_objectives_of_group(
    goals: &mut Vec<GoalResult>,
    start: usize,
    end: usize,
    row_of: &mut Map<u32>,
    changes: &mut Vec<(f64, u32)>,
) {
    const LINEAR: usize = 32;
    // A few goals (nearly every episode) are scanned; the map is for many.
    let mapped = end - start > LINEAR;
    row_of.clear();
    if mapped {
        for (i, x) in goals.iter().enumerate().take(end).skip(start) {
            row_of.entry(x.goal).or_insert(i);
        }
    }
    let added_from = goals.len();
    changes.clear();
    for o in start..end {
        let x = &goals[o];
        if x.parent == NO_KEY {
            continue;
        }
        let (parent, improved, change) = (x.parent, x.reliable_change == Some(ReliableCategory::Improved), x.change);
        let found = if mapped {
            row_of.get(&parent).copied()
        } else {
            (start..end).chain(added_from..goals.len()).find(|&i| goals[i].goal == parent)
        };
        let p = match found {
            Some(p) => p,
            None => {
                let orphan_parent = unrated_parent(&goals[o], parent);
                goals.push(orphan_parent);
                if mapped {
                    row_of.insert(parent, goals.len() - 1);
                }
                goals.len() - 1
            }
        };
        goals[p].n_objectives += 1;
        goals[p].n_objectives_improved += u32::from(improved);
        if let Some(c) = change {
            // Summed in objective order from −0.0, as `Iterator::sum` sums.
            if changes.len() <= p - start {
                changes.resize(p - start + 1, (-0.0, 0));
            }
            let (sum, n) = &mut changes[p - start];
            *sum += c;
            *n += 1;
        }
    }
    for (k, &(sum, n)) in changes.iter().enumerate().filter(|(_, c)| c.1 > 0) {
        goals[start + k].objectives_mean_change = Some(sum / f64::from(n));
    }
}

/// The row of a `parent` never rated itself, in the group of its objective `x`.
fn unrated_parent(x: &GoalResult, parent: u32) -> GoalResult {
    GoalResult {
        client: x.client,
        episode: x.episode,
        goal: parent,
        parent: NO_KEY,
        scale: x.scale,
        n_ratings: 0,
        first: None,
        last: None,
        change: None,
        reliable_change: None,
        followup: None,
        change_since_end: None,
        held_at_followup: None,
        weight: 1.0,
        n_objectives: 0,
        objectives_mean_change: None,
        n_objectives_improved: 0,
        parents_differ: false,
        weights_differ: false,
    }
}

/// Symptom change per episode, looked up in the order of the episodes' keys (client,
/// then episode, by name). The symptom episodes are in that order and goal episodes are
/// asked for in it, so one pass over both serves every lookup: no map of all episodes.
struct SymptomChange<'a> {
    keys: &'a Keys,
    items: &'a [crate::domain::episodes::EpisodeMeasure],
    at: usize,
    /// The extract date and the goal table's discharge days, for episodes with goals alone.
    extract: crate::domain::episodes::Extract,
    end_dates: &'a crate::domain::columns::EndDates,
}

impl<'a> SymptomChange<'a> {
    fn new(keys: &'a Keys, eps: &'a Episodes, end_dates: &'a crate::domain::columns::EndDates) -> SymptomChange<'a> {
        SymptomChange { keys, items: &eps.items, at: 0, extract: eps.extract, end_dates }
    }

    /// Whether at least one finished symptom measure of the episode reliably improved and
    /// none reliably deteriorated (the multi-measure rule of NHS England's MHSDS), `None`
    /// without one; and whether the symptom episode has ended, `None` without one. Calls
    /// must come in increasing (client, episode) order.
    fn improved(&mut self, client: &str, episode: &str) -> (Option<bool>, Option<bool>) {
        let key = |it: &crate::domain::episodes::EpisodeMeasure| {
            (self.keys.clients.name(it.client), self.keys.episodes.name(it.episode))
        };
        while self.items.get(self.at).is_some_and(|it| key(it) < (client, episode)) {
            self.at += 1;
        }
        let (mut change, mut ended): (Option<(bool, bool)>, Option<bool>) = (None, None);
        for it in self.items[self.at..].iter().take_while(|it| key(it) == (client, episode)) {
            ended = Some(it.ended());
            if it.finished() {
                let c = change.get_or_insert((false, false));
                c.0 |= it.classification.reliable_change == Some(ReliableCategory::Improved);
                c.1 |= it.classification.reliable_change == Some(ReliableCategory::Deteriorated);
            }
        }
        (change.map(|(improved, deteriorated)| improved && !deteriorated), ended)
    }
}

/// The goal figures of each episode among `goals` (one client's), appended to `out` in
/// the order of the episodes' ids.
fn episode_goals(
    g: &GoalNames,
    symptoms: &mut SymptomChange,
    goals: &[GoalResult],
    opts: &Options,
    out: &mut Vec<EpisodeGoals>,
) {
    let (cr, er) = (g.clients.sort_ranks(), g.episodes.sort_ranks());
    let mut idx: Vec<usize> = (0..goals.len()).collect();
    idx.sort_by_key(|&i| (cr[goals[i].client as usize], er[goals[i].episode as usize], i));
    let (mut at_end, mut at_followup) = (Vec::new(), Vec::new());
    for run in idx.chunk_by(|&a, &b| (goals[a].client, goals[a].episode) == (goals[b].client, goals[b].episode)) {
        let (client, episode) = (goals[run[0]].client, goals[run[0]].episode);
        let top =
            |scale: GoalScale| run.iter().map(|&i| &goals[i]).filter(move |x| x.scale == scale && x.parent == NO_KEY);
        let (gbo, gas) = (top(GoalScale::Gbo), top(GoalScale::Gas));
        at_end.clear();
        at_end.extend(gas.clone().filter_map(|x| x.last.or(x.first).map(|r| (x.weight, r.1))));
        at_followup.clear();
        at_followup.extend(gas.clone().filter_map(|x| x.followup.map(|r| (x.weight, r.1))));
        let t_end = gas_t_score(&at_end, opts.gas_rho);
        let t_fu = gas_t_score(&at_followup, opts.gas_rho);
        let gbo_improved = gbo.clone().filter(|x| x.reliable_change == Some(ReliableCategory::Improved)).count() as u32;
        let gbo_assessed = gbo.clone().any(|x| x.reliable_change.is_some());
        let goal_progress = match (gbo_assessed, t_end) {
            (false, None) => None,
            _ => Some(gbo_improved > 0 || t_end.is_some_and(|t| t >= 50.0)),
        };
        let (symptoms_improved, symptom_ended) = symptoms.improved(g.clients.name(client), g.episodes.name(episode));
        let ended = symptom_ended.unwrap_or_else(|| {
            // Goals alone: the same rules, from the goal table's own rows.
            let x = symptoms.extract;
            let key = (g.clients.name(client).to_string(), g.episodes.name(episode).to_string());
            let discharged = symptoms.end_dates.get(&key).is_some_and(|&d| d <= x.as_of);
            let goals = run.iter().map(|&i| &goals[i]);
            let followed_up = goals.clone().any(|x| x.followup.is_some());
            let last = goals.filter_map(|x| x.last.or(x.first).map(|r| r.0)).max().unwrap_or(Day::MIN);
            discharged || followed_up || i64::from(x.as_of) - i64::from(last) > i64::from(x.inactive_days)
        });
        let agreement = goal_progress.zip(symptoms_improved).map(|pair| match pair {
            (true, true) => "both_improved",
            (true, false) => "goals_only",
            (false, true) => "symptoms_only",
            (false, false) => "neither",
        });
        out.push(EpisodeGoals {
            client,
            episode,
            gbo_goals: gbo.clone().count() as u32,
            gbo_improved,
            gbo_deteriorated: gbo.clone().filter(|x| x.reliable_change == Some(ReliableCategory::Deteriorated)).count()
                as u32,
            gas_goals: gas.clone().count() as u32,
            gas_t_end: t_end,
            gas_t_followup: t_fu,
            gas_held: t_end.filter(|t| *t >= 50.0).and(t_fu).map(|t| t >= 50.0),
            goal_progress,
            symptoms_improved,
            agreement,
            ended,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::goal_rows::GoalRows;

    fn t(w: &[f64], x: &[f64]) -> f64 {
        let goals: Vec<(f64, f64)> = w.iter().copied().zip(x.iter().copied()).collect();
        (gas_t_score(&goals, 0.3).unwrap() * 100.0).round() / 100.0
    }

    #[test]
    fn gas_t_scores_equal_the_field_notes_test_vectors() {
        assert_eq!(t(&[1.0, 1.0, 1.0], &[1.0, 0.0, -1.0]), 50.00);
        assert_eq!(t(&[1.0, 1.0, 1.0], &[1.0, 1.0, 0.0]), 59.13);
        assert_eq!(t(&[3.0, 2.0, 1.0], &[1.0, 0.0, -1.0]), 54.41);
        assert_eq!(t(&[1.0, 1.0, 1.0], &[-1.0, -1.0, -1.0]), 36.31);
        assert_eq!(t(&[1.0, 1.0, 1.0], &[2.0, 2.0, 2.0]), 77.39);
        assert_eq!(gas_t_score(&[], 0.3), None);
    }

    /// (client, goal, parent, day, phase, scale, rating, weight)
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, Day, Phase, GoalScale, f64, f64);

    fn ratings(rows: &[Row]) -> GoalRows {
        let mut g = crate::domain::columns::GoalRatings::default();
        let (names, r) = (&mut g.names, &mut g.rows);
        for (c, goal, parent, d, p, s, x, w) in rows {
            r.client.push(names.clients.intern(c));
            r.episode.push(names.episodes.intern(""));
            r.goal.push(names.goals.intern(goal));
            r.parent.push(parent.map_or(NO_KEY, |p| names.goals.intern(p)));
            r.date.push(*d);
            r.phase.push(*p);
            r.scale.push(*s);
            r.rating.push(*x);
            r.weight.push(*w);
        }
        GoalRows::in_memory(g)
    }

    use GoalScale::{Gas, Gbo};
    use Phase::{Assessment as A, FollowUp as F, Treatment as T};

    #[test]
    fn gbo_change_reliability_objectives_and_follow_up() {
        let g = ratings(&[
            ("c", "G1", None, 0, A, Gbo, 2.0, 1.0),
            ("c", "G1", None, 50, T, Gbo, 7.0, 1.0),
            ("c", "G1", None, 150, F, Gbo, 3.0, 1.0),
            ("c", "G1.1", Some("G1"), 0, A, Gbo, 1.0, 1.0),
            ("c", "G1.1", Some("G1"), 50, T, Gbo, 5.0, 1.0),
            ("c", "G1.2", Some("G1"), 0, A, Gbo, 4.0, 1.0),
            ("c", "G1.2", Some("G1"), 50, T, Gbo, 6.0, 1.0),
            ("c", "G2.1", Some("G2"), 0, A, Gbo, 4.0, 1.0),
        ]);
        let (goals, eps) = analyse(&g, &Keys::default(), &Episodes::default(), &Options::default());
        let g1 = goals.iter().find(|x| g.names.goals.name(x.goal) == "G1").unwrap();
        assert_eq!((g1.change, g1.reliable_change), (Some(5.0), Some(ReliableCategory::Improved)));
        // 7 → 3 at follow-up: a reliable drop of 4, so the goal did not hold.
        assert_eq!((g1.change_since_end, g1.held_at_followup), (Some(-4.0), Some(false)));
        // Objectives: +4 (reliable) and +2; mean 3.
        assert_eq!((g1.n_objectives, g1.n_objectives_improved, g1.objectives_mean_change), (2, 1, Some(3.0)));
        // G2 was never rated itself: it appears through its objective.
        let g2 = goals.iter().find(|x| g.names.goals.name(x.goal) == "G2").unwrap();
        assert_eq!((g2.n_ratings, g2.n_objectives, g2.change), (0, 1, None));
        assert_eq!((eps[0].gbo_goals, eps[0].gbo_improved, eps[0].goal_progress), (2, 1, Some(true)));
        assert_eq!(eps[0].agreement, None, "no symptom scores");
    }

    /// Objectives are rolled up to the same parents whether the episode has a few goals
    /// (looked up by a scan) or many (through a map).
    #[test]
    fn objectives_roll_up_alike_among_few_goals_and_many() {
        let names: Vec<String> = (0..40).map(|i| format!("X{i}")).collect();
        for pad in [0, 40] {
            let mut rows: Vec<Row> = vec![
                ("c", "G1", None, 0, A, Gbo, 2.0, 1.0),
                ("c", "G1", None, 50, T, Gbo, 7.0, 1.0),
                ("c", "G1.1", Some("G1"), 0, A, Gbo, 1.0, 1.0),
                ("c", "G1.1", Some("G1"), 50, T, Gbo, 5.0, 1.0),
                ("c", "G2.1", Some("G2"), 0, A, Gbo, 4.0, 1.0),
                ("c", "G2.1", Some("G2"), 50, T, Gbo, 5.0, 1.0),
                ("c", "G1.2", Some("G1"), 0, A, Gbo, 4.0, 1.0),
                ("c", "G1.2", Some("G1"), 50, T, Gbo, 6.0, 1.0),
                ("c", "G2.2", Some("G2"), 0, A, Gbo, 4.0, 1.0),
                // The parent named on a later rating only: G2.3 is still G2's objective.
                ("c", "G2.3", None, 0, A, Gbo, 2.0, 1.0),
                ("c", "G2.3", Some("G2"), 50, T, Gbo, 3.0, 1.0),
            ];
            rows.extend(names[..pad].iter().map(|x| ("c", x.as_str(), None, 0, A, Gbo, 3.0, 1.0)));
            let g = ratings(&rows);
            let none = Episodes::default();
            let (goals, _) = analyse(&g, &Keys::default(), &none, &Options::default());
            let goal = |name: &str| goals.iter().find(|x| g.names.goals.name(x.goal) == name).unwrap();
            let g1 = goal("G1");
            assert_eq!((g1.n_objectives, g1.n_objectives_improved, g1.objectives_mean_change), (2, 1, Some(3.0)));
            let g2 = goal("G2");
            // G2.1 +1, G2.3 +1 (G2.2 has one rating).
            assert_eq!((g2.n_ratings, g2.n_objectives, g2.objectives_mean_change), (0, 3, Some(1.0)), "pad {pad}");
            assert_eq!(goals.iter().filter(|x| g.names.goals.name(x.goal) == "G2").count(), 1, "one G2 row");
            assert_eq!(goals.len(), 7 + pad);
        }
    }

    #[test]
    fn ratings_that_name_another_parent_are_marked_and_the_first_parent_kept() {
        let g = ratings(&[
            ("c", "G1", None, 0, A, Gbo, 2.0, 1.0),
            ("c", "G2", None, 0, A, Gbo, 2.0, 1.0),
            // O1 names G1, then nothing, then G2: kept under G1 and marked.
            ("c", "O1", Some("G1"), 0, A, Gbo, 1.0, 1.0),
            ("c", "O1", None, 50, T, Gbo, 5.0, 1.0),
            ("c", "O1", Some("G2"), 60, T, Gbo, 6.0, 1.0),
            // O2 names G2 twice and once nothing: one parent, not marked.
            ("c", "O2", None, 0, A, Gbo, 1.0, 1.0),
            ("c", "O2", Some("G2"), 50, T, Gbo, 2.0, 1.0),
            ("c", "O2", Some("G2"), 60, T, Gbo, 3.0, 1.0),
        ]);
        let none = Episodes::default();
        let (goals, _) = analyse(&g, &Keys::default(), &none, &Options::default());
        let goal = |name: &str| goals.iter().find(|x| g.names.goals.name(x.goal) == name).unwrap();
        let (o1, o2) = (goal("O1"), goal("O2"));
        assert_eq!((g.names.goals.name(o1.parent), o1.parents_differ), ("G1", true));
        assert_eq!((g.names.goals.name(o2.parent), o2.parents_differ), ("G2", false));
        assert!(!goal("G1").parents_differ && !goal("G2").parents_differ);
        assert_eq!((goal("G1").n_objectives, goal("G2").n_objectives), (1, 1));
        let mut tally = crate::analyses::summary::GoalsTally::default();
        tally.add(&goals, &[]);
        assert_eq!(tally.summary(&Options::default()).checks.parents_differ, 1);
    }

    #[test]
    fn a_goal_weight_is_the_last_one_its_ratings_give() {
        let nan = f64::NAN;
        let g = ratings(&[
            // A1: weight 3 given where the goal was set only; A2: 2, then 1 (marked); A3:
            // never given (1). GBO goal B1 with different weights is not marked.
            ("c", "A1", None, 0, A, Gas, -1.0, 3.0),
            ("c", "A1", None, 50, T, Gas, 1.0, nan),
            ("c", "A2", None, 0, A, Gas, -1.0, 2.0),
            ("c", "A2", None, 50, T, Gas, 0.0, 1.0),
            ("c", "A3", None, 50, T, Gas, -1.0, nan),
            ("c", "B1", None, 0, A, Gbo, 2.0, 1.0),
            ("c", "B1", None, 50, T, Gbo, 3.0, 2.0),
        ]);
        let none = Episodes::default();
        let (goals, eps) = analyse(&g, &Keys::default(), &none, &Options::default());
        let goal = |name: &str| goals.iter().find(|x| g.names.goals.name(x.goal) == name).unwrap();
        let got: Vec<(f64, bool)> = ["A1", "A2", "A3", "B1"].map(|n| (goal(n).weight, goal(n).weights_differ)).into();
        assert_eq!(got, [(3.0, false), (1.0, true), (1.0, false), (2.0, false)]);
        // T at the end from weights 3, 1, 1 and ratings +1, 0, −1: the field notes' 54.41
        // has weights 3, 2, 1; here 50 + 10 · 2 / √(0.7 · 11 + 0.3 · 25) = 55.13.
        assert!((eps[0].gas_t_end.unwrap() - 55.13).abs() < 0.005, "{:?}", eps[0].gas_t_end);
        let mut tally = crate::analyses::summary::GoalsTally::default();
        tally.add(&goals, &eps);
        let checks = tally.summary(&Options::default()).checks;
        assert_eq!((checks.parents_differ, checks.weights_differ), (0, 1));
    }

    #[test]
    fn gas_t_at_end_and_follow_up() {
        let g = ratings(&[
            ("c", "A1", None, 50, T, Gas, 1.0, 3.0),
            ("c", "A2", None, 50, T, Gas, 0.0, 2.0),
            ("c", "A3", None, 50, T, Gas, -1.0, 1.0),
            ("c", "A1", None, 150, F, Gas, -1.0, 3.0),
            ("c", "A2", None, 150, F, Gas, -1.0, 2.0),
            ("c", "A3", None, 150, F, Gas, -1.0, 1.0),
        ]);
        let (_, eps) = analyse(&g, &Keys::default(), &Episodes::default(), &Options::default());
        assert!((eps[0].gas_t_end.unwrap() - 54.41).abs() < 0.005);
        assert!(eps[0].gas_t_followup.unwrap() < 50.0);
        assert_eq!(eps[0].gas_held, Some(false));
    }
}
