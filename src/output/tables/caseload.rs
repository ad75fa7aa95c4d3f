//! The supervision tables: units against the practice, the current caseload, trends,
//! expected response.

use super::*;

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

pub(super) fn count_cells(
    c: crate::analyses::caseload::Count,
    s: &crate::stats::rates::Suppression,
    z: f64,
) -> [String; 5] {
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
    w.write_record(unit_header(kind))?;
    for u in units.iter().filter(|u| u.kind == kind) {
        w.write_record(unit_row(u, refs, s, registry, Z95))?;
    }
    w.finish()
}

/// The header of `therapists.csv` / `sites.csv`.
fn unit_header(kind: &str) -> Vec<String> {
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
            "effect_size_g",
            "g_ci_low",
            "g_ci_high",
            "severity_adjusted_effect_size",
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
    header
}

/// One unit × measure row of `therapists.csv` / `sites.csv`.
fn unit_row(
    u: &crate::analyses::caseload::Unit,
    refs: &[crate::analyses::caseload::FunnelReference],
    s: &crate::stats::rates::Suppression,
    registry: &Registry,
    z: f64,
) -> Vec<String> {
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
        row.extend(count_cells(c, s, z));
    }
    let hide = |x: String| if hidden { "*".to_string() } else { x };
    row.push(if small { "*".into() } else { opt_num(u.median_sessions) });
    let (d, dl, dh) = u.effect_size.map_or((None, None, None), |(a, b, c)| (Some(a), Some(b), Some(c)));
    row.extend([d, dl, dh].map(|x| if s.hides(u.paired, u.paired) { "*".into() } else { opt_num(x) }));
    let saes = u.severity_adjusted_effect_size;
    row.push(if s.hides(u.at_caseness, u.at_caseness) { "*".into() } else { opt_num(saes) });
    let p0 = refs.iter().find(|r| r.kind == u.kind && r.measure == u.measure).map(|r| r.rate);
    row.push(opt_num(p0));
    row.push(hide(opt_num(u.funnel95.map(|x| x.0))));
    row.push(hide(opt_num(u.funnel95.map(|x| x.1))));
    row.push(hide(opt_num(u.funnel998.map(|x| x.0))));
    row.push(hide(opt_num(u.funnel998.map(|x| x.1))));
    // A flag is never withheld, even where the rate it rests on is.
    row.push(u.funnel_flag.unwrap_or_default().to_string());
    row.push(hide(opt_num(u.expected_recovery)));
    row.push(hide(opt_num(u.adjusted_recovery)));
    row.push(hide(opt_num(u.shrunken_recovery)));
    row.push(if s.hides(u.paired, u.paired) { "*".into() } else { opt_num(u.improvement_effect) });
    row
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
            // A flag is never withheld.
            p.outside.unwrap_or_default().to_string(),
            s.count(p.reliable_improvement.k),
            s.count(p.reliable_improvement.n),
            if hi { "*".into() } else { opt_num(p.reliable_improvement.rate()) },
        ])?;
    }
    w.finish()
}
