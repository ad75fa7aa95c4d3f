//! The goal tables: one row per goal, one per episode.

use super::*;

/// The columns of `goals.csv`, in order.
pub(super) const GOAL_COLUMNS: [&str; 22] = [
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
pub(super) const GOAL_EPISODE_COLUMNS: [&str; 13] = [
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
