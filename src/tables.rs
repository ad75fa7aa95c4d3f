//! Renders computed results as CSV bytes. Every text value that came from the data
//! passes through [`cell`], so that a key such as `=cmd|…` cannot become a formula
//! when the file is opened in a spreadsheet.

use crate::dates::format_day;
use crate::episodes::Episodes;
use crate::followup::{Curve, Durability, FollowUpScore};
use crate::model::{Measurements, NO_KEY};
use crate::registry::Registry;
use crate::sudden_gains::SuddenGains;
use std::borrow::Cow;

/// Makes a text value inert in spreadsheets: values starting with `=`, `+`, `-`, `@`,
/// tab or carriage return get a leading apostrophe (OWASP CSV-injection advice).
pub fn cell(s: &str) -> Cow<'_, str> {
    match s.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

/// Shortest round-trip decimal form; `-0` prints as `0`.
pub fn num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x}")
    }
}

fn opt_num(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

fn opt_bool(x: Option<bool>) -> &'static str {
    match x {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    }
}

fn key<'a>(interner: &'a crate::model::Interner, id: u32) -> Cow<'a, str> {
    if id == NO_KEY {
        Cow::Borrowed("")
    } else {
        cell(interner.name(id))
    }
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new())
}

fn finish(w: csv::Writer<Vec<u8>>) -> Vec<u8> {
    w.into_inner().expect("writing to memory cannot fail")
}

/// `episodes.csv`: one row per episode × measure. Each value is written beside its
/// column name, so the header and the rows cannot drift apart.
pub fn episodes_csv(m: &Measurements, eps: &Episodes, flags: &[Durability], registry: &Registry) -> Vec<u8> {
    let mut w = writer();
    let mut header_written = false;
    for (it, d) in eps.items.iter().zip(flags) {
        let row = episode_row(m, it, d, registry);
        if !header_written {
            w.write_record(row.iter().map(|(name, _)| *name)).expect("in memory");
            header_written = true;
        }
        w.write_record(row.iter().map(|(_, v)| v.as_ref())).expect("in memory");
    }
    if !header_written {
        w.write_record(EPISODE_COLUMNS).expect("in memory");
    }
    finish(w)
}

/// The columns of `episodes.csv`, in order (for a run without episodes; a test keeps it
/// equal to what `episode_row` writes).
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
];

fn episode_row<'a>(
    m: &'a Measurements,
    it: &'a crate::episodes::EpisodeMeasure,
    d: &Durability,
    registry: &'a Registry,
) -> Vec<(&'static str, Cow<'a, str>)> {
    let c = &it.classification;
    let tt = it.talking_therapies;
    let ttb = |f: fn(&crate::episodes::TalkingTherapies) -> bool| opt_bool(tt.as_ref().map(f)).into();
    vec![
        ("client_id", key(&m.clients, it.client)),
        ("episode_id", key(&m.episodes, it.episode)),
        ("therapist_id", key(&m.therapists, it.therapist)),
        ("site_id", key(&m.sites, it.site)),
        ("measure", Cow::Borrowed(registry.get(it.measure as usize).code.as_str())),
        ("n_scores", it.n_scores.to_string().into()),
        ("n_followup", d.n_followup.to_string().into()),
        ("first_date", format_day(it.first_date).into()),
        ("last_date", if it.paired() { format_day(it.last_date).into() } else { "".into() }),
        ("baseline", num(it.baseline).into()),
        ("final", opt_num(it.final_score).into()),
        ("change", opt_num(c.change).into()),
        ("rci", opt_num(c.rci).into()),
        ("reliable_change", c.reliable_change.map_or("", |r| r.as_str()).into()),
        ("caseness_start", opt_bool(c.caseness_start).into()),
        ("caseness_end", opt_bool(c.caseness_end).into()),
        ("outcome", c.outcome.map_or("", |o| o.as_str()).into()),
        ("recovery", opt_bool(c.recovery).into()),
        ("reliable_recovery", opt_bool(c.reliable_recovery).into()),
        ("response", opt_bool(c.response).into()),
        ("remission", opt_bool(c.remission).into()),
        ("paired", opt_bool(Some(it.paired())).into()),
        ("relapse", opt_bool(d.relapse).into()),
        ("relapse_date", d.relapse_date.map(format_day).unwrap_or_default().into()),
        ("recovery_maintained", opt_bool(d.recovery_maintained).into()),
        ("improvement_lost", opt_bool(d.improvement_lost).into()),
        ("late_improvement", opt_bool(d.late_improvement).into()),
        ("deteriorated_since_end", opt_bool(d.deteriorated_since_end).into()),
        ("durability", opt_num(d.durability_last).into()),
        ("last_scores_held", opt_bool(d.last_scores_held).into()),
        ("tt_caseness", ttb(|t| t.caseness)),
        ("tt_recovery", ttb(|t| t.recovery)),
        ("tt_reliable_improvement", ttb(|t| t.reliable_improvement)),
        ("tt_reliable_deterioration", ttb(|t| t.reliable_deterioration)),
        ("tt_reliable_recovery", ttb(|t| t.reliable_recovery)),
    ]
}

/// The columns of `sudden_gains.csv`, in order.
pub const SUDDEN_GAIN_COLUMNS: &[&str] = &[
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

fn nan_empty(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        num(x)
    }
}

/// `sudden_gains.csv`: one row per sudden gain or loss.
pub fn sudden_gains_csv(m: &Measurements, eps: &Episodes, sg: &SuddenGains, registry: &Registry) -> Vec<u8> {
    let mut w = writer();
    w.write_record(SUDDEN_GAIN_COLUMNS).expect("in memory");
    for f in &sg.found {
        let it = &eps.items[f.item];
        let e = &f.event;
        let row: Vec<Cow<str>> = vec![
            key(&m.clients, it.client),
            key(&m.episodes, it.episode),
            Cow::Borrowed(&registry.get(it.measure as usize).code),
            f.kind.as_str().into(),
            f.pregain_session.to_string().into(),
            (f.pregain_session + 1).to_string().into(),
            nan_empty(e.pregain_score).into(),
            nan_empty(e.postgain_score).into(),
            nan_empty(f.magnitude).into(),
            nan_empty(e.reversal_value).into(),
            opt_bool(e.reversal).into(),
            nan_empty(e.around[0]).into(),
            nan_empty(e.around[1]).into(),
            nan_empty(e.around[2]).into(),
            nan_empty(e.around[3]).into(),
            opt_num(f.change_proportion).into(),
            e.interval.n_pre.to_string().into(),
            e.interval.n_post.to_string().into(),
            opt_num(e.interval.t_crit).into(),
        ];
        w.write_record(row.iter().map(|s| s.as_ref())).expect("in memory");
    }
    finish(w)
}

/// `sudden_gains_byclient.csv`: one row per episode × measure that was tested, with the
/// number of gains and losses and the one of each kept by the selection rule.
pub fn sudden_gains_byclient_csv(
    m: &Measurements,
    eps: &Episodes,
    sg: &SuddenGains,
    registry: &Registry,
    rule: crate::sudden_gains::Select,
) -> Vec<u8> {
    use crate::sudden_gains::{select, Kind};
    let mut w = writer();
    w.write_record([
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
    ])
    .expect("in memory");
    let mut i = 0;
    for (idx, it) in eps.items.iter().enumerate() {
        let start = i;
        while i < sg.found.len() && sg.found[i].item == idx {
            i += 1;
        }
        let found = &sg.found[start..i];
        let mut row: Vec<Cow<str>> = vec![
            key(&m.clients, it.client),
            key(&m.episodes, it.episode),
            Cow::Borrowed(&registry.get(it.measure as usize).code),
        ];
        let of_kind = |k: Kind| found.iter().filter(|f| f.kind == k).cloned().collect::<Vec<_>>();
        let (gains, losses) = (of_kind(Kind::Gain), of_kind(Kind::Loss));
        row.push(gains.len().to_string().into());
        row.push(losses.len().to_string().into());
        for list in [&gains, &losses] {
            match select(list, rule, |f| f.event.pregain, |f| f.magnitude) {
                Some(f) => {
                    row.push(f.pregain_session.to_string().into());
                    row.push(nan_empty(f.magnitude).into());
                    row.push(opt_bool(f.event.reversal).into());
                }
                None => row.extend(["", "", ""].map(Cow::Borrowed)),
            }
        }
        w.write_record(row.iter().map(|s| s.as_ref())).expect("in memory");
    }
    finish(w)
}

/// `followup.csv`: one row per follow-up score.
pub fn followup_csv(
    m: &Measurements,
    eps: &Episodes,
    scores: &[FollowUpScore],
    months: &[f64],
    registry: &Registry,
) -> Vec<u8> {
    let mut w = writer();
    w.write_record([
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
    ])
    .expect("in memory");
    for f in scores {
        let it = &eps.items[f.item];
        let row: Vec<Cow<str>> = vec![
            key(&m.clients, it.client),
            key(&m.episodes, it.episode),
            Cow::Borrowed(&registry.get(it.measure as usize).code),
            format_day(f.date).into(),
            f.days_after_end.to_string().into(),
            f.window.map(|i| format!("{}m", num(months[i]))).unwrap_or_default().into(),
            (if f.before_end { "before_end_of_treatment" } else { "used" }).into(),
            num(f.score).into(),
            num(it.baseline).into(),
            opt_num(it.final_score).into(),
            num(f.change_from_baseline).into(),
            f.reliable_vs_baseline.map_or("", |r| r.as_str()).into(),
            opt_bool(f.caseness).into(),
            opt_num(f.change_from_end).into(),
            f.reliable_vs_end.map_or("", |r| r.as_str()).into(),
            opt_num(f.durability).into(),
        ];
        w.write_record(row.iter().map(|s| s.as_ref())).expect("in memory");
    }
    finish(w)
}

/// `relapse_survival.csv`: the Kaplan–Meier curves, one row per time per stratum.
pub fn relapse_survival_csv(curves: &[Curve], registry: &Registry) -> Vec<u8> {
    let mut w = writer();
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
    ])
    .expect("in memory");
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
            ])
            .expect("in memory");
        }
    }
    finish(w)
}

/// `goals.csv`: one row per goal or objective.
pub fn goals_csv(g: &crate::model::GoalRatings, goals: &[crate::goals::GoalResult]) -> Vec<u8> {
    let mut w = writer();
    w.write_record([
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
    ])
    .expect("in memory");
    let mut rows: Vec<&crate::goals::GoalResult> = goals.iter().collect();
    rows.sort_by(|a, b| {
        let k = |x: &crate::goals::GoalResult| {
            (g.clients.name(x.client), g.episodes.name(x.episode), x.scale, g.goals.name(x.goal))
        };
        k(a).cmp(&k(b))
    });
    let date = |x: Option<(crate::dates::Day, f64)>| x.map(|r| format_day(r.0)).unwrap_or_default();
    let rating = |x: Option<(crate::dates::Day, f64)>| opt_num(x.map(|r| r.1));
    for x in rows {
        let row: Vec<Cow<str>> = vec![
            key(&g.clients, x.client),
            key(&g.episodes, x.episode),
            key(&g.goals, x.goal),
            key(&g.goals, x.parent),
            (if x.parent == NO_KEY { "goal" } else { "objective" }).into(),
            x.scale.as_str().into(),
            x.n_ratings.to_string().into(),
            date(x.first).into(),
            rating(x.first).into(),
            date(x.last).into(),
            rating(x.last).into(),
            opt_num(x.change).into(),
            x.reliable_change.map_or("", |r| r.as_str()).into(),
            date(x.followup).into(),
            rating(x.followup).into(),
            opt_num(x.change_since_end).into(),
            opt_bool(x.held_at_followup).into(),
            num(x.weight).into(),
            x.n_objectives.to_string().into(),
            opt_num(x.objectives_mean_change).into(),
            x.n_objectives_improved.to_string().into(),
        ];
        w.write_record(row.iter().map(|s| s.as_ref())).expect("in memory");
    }
    finish(w)
}

/// `goals_episodes.csv`: goal figures per episode, with agreement with symptom change.
pub fn goal_episodes_csv(g: &crate::model::GoalRatings, eps: &[crate::goals::EpisodeGoals]) -> Vec<u8> {
    let mut w = writer();
    w.write_record([
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
    ])
    .expect("in memory");
    for e in eps {
        let row: Vec<Cow<str>> = vec![
            key(&g.clients, e.client),
            key(&g.episodes, e.episode),
            e.gbo_goals.to_string().into(),
            e.gbo_improved.to_string().into(),
            e.gbo_deteriorated.to_string().into(),
            e.gas_goals.to_string().into(),
            opt_num(e.gas_t_end).into(),
            opt_num(e.gas_t_followup).into(),
            opt_bool(e.gas_held).into(),
            opt_bool(e.goal_progress).into(),
            opt_bool(e.symptoms_improved).into(),
            e.agreement.unwrap_or_default().into(),
        ];
        w.write_record(row.iter().map(|s| s.as_ref())).expect("in memory");
    }
    finish(w)
}

/// `trajectories.csv`: one row per episode × measure.
pub fn trajectories_csv(
    m: &Measurements,
    eps: &Episodes,
    tr: &crate::trajectories::Trajectories,
    registry: &Registry,
) -> Vec<u8> {
    let mut w = writer();
    w.write_record([
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
    ])
    .expect("in memory");
    let int = |x: Option<i32>| x.map(|v| v.to_string()).unwrap_or_default();
    for (it, t) in eps.items.iter().zip(&tr.items) {
        let d = t.dip.as_ref();
        let row: Vec<Cow<str>> = vec![
            key(&m.clients, it.client),
            key(&m.episodes, it.episode),
            Cow::Borrowed(&registry.get(it.measure as usize).code),
            it.n_scores.to_string().into(),
            opt_num(t.slope_per_session).into(),
            opt_num(t.slope_per_week).into(),
            opt_num(t.log_slope).into(),
            opt_num(t.early_change).into(),
            int(t.sessions_to_reliable_improvement).into(),
            int(t.days_to_reliable_improvement).into(),
            int(t.sessions_to_recovery).into(),
            int(t.days_to_recovery).into(),
            opt_bool(it.paired().then_some(d.is_some())).into(),
            int(d.map(|d| d.start)).into(),
            int(d.map(|d| d.peak)).into(),
            opt_num(d.map(|d| d.depth)).into(),
            opt_num(d.map(|d| d.depth_from_baseline)).into(),
            int(d.map(|d| d.length)).into(),
            opt_bool(d.map(|d| d.resolved)).into(),
            d.map_or("", |d| d.kind).into(),
            t.shape.map_or("", |s| s.as_str()).into(),
            t.band.map(|b| (b + 1).to_string()).unwrap_or_default().into(),
            opt_bool(t.not_on_track).into(),
            int(t.not_on_track_session).into(),
        ];
        w.write_record(row.iter().map(|s| s.as_ref())).expect("in memory");
    }
    finish(w)
}

/// `expected_response.csv`: percentiles of the score by session since baseline, per
/// measure and intake-severity band.
pub fn expected_response_csv(tr: &crate::trajectories::Trajectories, registry: &Registry) -> Vec<u8> {
    let mut w = writer();
    w.write_record(["measure", "band", "band_low", "band_high", "session", "n", "p10", "p25", "p50", "p75", "p90"])
        .expect("in memory");
    for p in &tr.etr {
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
        ])
        .expect("in memory");
    }
    finish(w)
}

fn count_cells(c: crate::caseload::Count, s: &crate::caseload::Suppression, z: f64) -> [String; 5] {
    if s.hides(c.k, c.n) {
        return [s.count(c.k), s.count(c.n), "*".into(), "*".into(), "*".into()];
    }
    let (lo, hi) =
        crate::caseload::wilson(c.k, c.n, z).map_or((String::new(), String::new()), |(a, b)| (num(a), num(b)));
    [s.count(c.k), s.count(c.n), opt_num(c.rate()), lo, hi]
}

/// `therapists.csv` / `sites.csv`: one row per unit × measure, small counts suppressed.
pub fn units_csv(
    units: &[crate::caseload::Unit],
    kind: &str,
    refs: &[crate::caseload::FunnelReference],
    s: &crate::caseload::Suppression,
    registry: &Registry,
) -> Vec<u8> {
    use crate::caseload::Z95;
    let mut w = writer();
    let mut header: Vec<String> = vec![
        format!("{kind}_id"),
        "measure".into(),
        "episodes".into(),
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
        ]
        .map(String::from),
    );
    w.write_record(&header).expect("in memory");
    for u in units.iter().filter(|u| u.kind == kind) {
        let hidden = s.hides(u.reliable_recovery.k, u.reliable_recovery.n);
        let small = u.episodes < s.threshold;
        let mut row: Vec<String> = vec![
            cell(&u.unit).into_owned(),
            registry.get(u.measure as usize).code.clone(),
            s.count(u.episodes),
            s.count(u.paired),
            if s.hides(u.paired, u.episodes) { "*".into() } else { num(u.paired as f64 / u.episodes as f64) },
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
        w.write_record(&row).expect("in memory");
    }
    finish(w)
}

/// `trends.csv`: headline rates by the month (or quarter) of the final score, with p-chart
/// limits; small counts suppressed.
pub fn trends_csv(
    periods: &[crate::caseload::Period],
    s: &crate::caseload::Suppression,
    registry: &Registry,
) -> Vec<u8> {
    let mut w = writer();
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
    ])
    .expect("in memory");
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
        ])
        .expect("in memory");
    }
    finish(w)
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
pub fn rejected_csv(lines: &[RejectedLine]) -> Vec<u8> {
    let mut w = writer();
    w.write_record(["file", "line", "reason", "column", "code"]).expect("in memory");
    for l in lines {
        w.write_record([&*cell(l.file), &l.line.to_string(), &*cell(l.reason), l.column, l.code]).expect("in memory");
    }
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_table_header_matches_the_rows() {
        let mut m = Measurements::default();
        let reg = Registry::builtin();
        m.clients.intern("c");
        m.episodes.intern("");
        let it = crate::episodes::EpisodeMeasure {
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
            rows: 0..1,
        };
        let names: Vec<&str> = episode_row(&m, &it, &Durability::default(), &reg).iter().map(|(n, _)| *n).collect();
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
