//! The tables of change within and after treatment: sudden gains and losses, follow-up
//! and relapse, trajectories.

use super::*;

/// The columns of `sudden_gains.csv`, in order.
pub(super) const SUDDEN_GAIN_COLUMNS: [&str; 19] = [
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
pub(super) const BYCLIENT_COLUMNS: [&str; 11] = [
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
pub(super) const FOLLOWUP_COLUMNS: [&str; 16] = [
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

/// The columns of `trajectories.csv`, in order.
pub(super) const TRAJECTORY_COLUMNS: [&str; 28] = [
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
