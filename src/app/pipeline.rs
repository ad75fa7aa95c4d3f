//! One analysis of loaded rows (the practice's, or one unit's pack): the analyses run as
//! one task each over a shared [`Stage`], then their files written through the staging
//! folder.

use super::*;

/// Names the measures whose series were not searched for sudden gains because no
/// switched-on criterion applies to them (see [`crate::analyses::sudden_gains::MeasureTally`]).
pub(super) fn warn_no_criterion(
    sg: Option<&crate::analyses::summary::SuddenGainsSummary>,
    progress: &Progress,
    quiet: bool,
) {
    let unsearched: Vec<&str> = sg
        .iter()
        .flat_map(|sg| sg.by_measure.iter())
        .filter(|(_, t)| t.no_criterion)
        .map(|(code, _)| code.as_str())
        .collect();
    if !unsearched.is_empty() && !quiet {
        progress.warn(&format!(
            "no sudden-gain criterion applies to {}: no reliable-change threshold for criterion 1, and criteria 2 \
             and 3 are switched off, so these series were not searched (give the measure a reliable_change in \
             the measure file, or keep criterion 2 or 3)",
            unsearched.join(", ")
        ));
    }
}

/// A key as a file or folder name: letters, digits, `-` and `_` kept, anything else `_`.
pub(super) fn safe_file_name(key: &str) -> String {
    let s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '_' }).collect();
    if s.is_empty() {
        "_".into()
    } else {
        s
    }
}

/// Each key's [`safe_file_name`], in the keys' order, with `-2`, `-3`, … added where two
/// keys would share a name (`T 1` and `T_1`; `T1` and `t1` on a file system that ignores
/// case), so that no unit's or client's files replace another's.
pub(super) fn unique_file_names<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    let unique = |key: &str| {
        let base = safe_file_name(key);
        let mut name = base.clone();
        let mut n = 2;
        while !used.insert(name.to_ascii_lowercase()) {
            name = format!("{base}-{n}");
            n += 1;
        }
        name
    };
    keys.into_iter().map(unique).collect()
}

/// Each open series of a run, keyed by (client, episode, measure) ids: a unit's pack shows
/// these rather than its own, since the expected-response curves behind `not_on_track`
/// are the practice's, not one therapist's clients'.
pub(super) type PracticeCurrent = BTreeMap<(u32, u32, u16), crate::analyses::current::Current>;

/// What the practice's run hands to each unit's pack (`--by`): its current caseload, its
/// figures and its units' rows, for the pack to compare itself with.
pub(super) struct Practice {
    pub summary: Summary,
    pub current: PracticeCurrent,
    pub units: Vec<crate::analyses::caseload::Unit>,
    /// The practice's rates by month, drawn under each pack's own.
    pub periods: Vec<crate::analyses::caseload::Period>,
    /// The practice's funnel plots, against which each unit is judged.
    pub funnel_refs: Vec<crate::analyses::caseload::FunnelReference>,
}

/// A unit's pack: which unit, and the practice it is compared with.
#[derive(Clone, Copy)]
pub(super) struct Pack<'a> {
    pub practice: &'a Practice,
    pub kind: &'static str,
    pub unit: &'a str,
}

/// Every analysis of one run on loaded data, restricted by `filter`, written to `out`;
/// returns the summary and the current caseload. A unit's pack (`--by`) is given the
/// practice's current caseload (`practice`).
pub(super) fn analysis(
    loaded: &Loaded,
    cfg: &RunConfig,
    args: &AnalyzeArgs,
    filter: &crate::domain::episodes::Filter,
    progress: &Progress,
    out: &Path,
    pack: Option<Pack>,
) -> Result<Practice> {
    let in_pack = pack.is_some();
    let episodes = filtered_episodes(loaded, filter);
    let settings = analysis_settings(args);
    // The series of each `--client`, found before the long work so that a wrong id fails fast.
    let client_series = client_series(&loaded.keys, &episodes, &args.client, !in_pack)?;
    let for_clients: BTreeSet<usize> = client_series.iter().flat_map(|(_, items)| items.iter().copied()).collect();
    let staging = if args.publish { Staging::new(out)?.only(publishable) } else { Staging::new(out)? };
    progress.stage("trajectories, sudden gains, follow-up, caseload and goals (in parallel)");
    let stage = Stage {
        loaded,
        cfg,
        eps: &episodes,
        filter,
        settings: &settings,
        for_clients: &for_clients,
        staging: &staging,
        progress,
    };
    let mut r = run_analyses(&stage)?;
    r.summary.published = args.publish;
    if let Some(pack) = pack {
        adopt_practice_current(&mut r, &pack.practice.current, &episodes, &settings.current);
        judge_by_practice(&mut r, pack);
    }
    if let Some(earlier) = earlier_period(&args.caseload, filter)? {
        r.summary.comparison = Some(compare_with(loaded, cfg, filter, &r.summary, earlier));
    }
    warn_no_criterion(r.summary.sudden_gains.as_ref(), progress, args.input.quiet);
    progress.stage("drawing the charts");
    let practice_periods = pack.map(|p| p.practice.periods.as_slice());
    let figures = report_figures(&episodes, &cfg.registry, &mut r, settings.caseload.suppression, practice_periods);
    progress.stage("writing results");
    let comparison = pack.map(|p| {
        crate::output::report::pack_comparison(&crate::output::report::PackInput {
            kind: p.kind,
            unit: p.unit,
            pack: &r.summary,
            practice: &p.practice.summary,
            practice_units: &p.practice.units,
            registry: &cfg.registry,
            suppression: settings.caseload.suppression,
        })
    });
    let mut files = result_files(&stage, &client_series, &r, &figures, comparison.as_ref());
    if args.png {
        progress.stage("rasterising the charts");
        files.extend(chart_pngs(&figures)?);
    }
    progress.stage("rendering and writing files");
    staging.write(files)?;
    staging.commit()?;
    // Kept for the packs that follow, if any.
    let for_packs = args.by.is_some() && !in_pack;
    let current = match for_packs {
        true => r.current.iter().map(|c| (series_key(&episodes, c), c.clone())).collect(),
        false => PracticeCurrent::new(),
    };
    let units = if for_packs { std::mem::take(&mut r.units) } else { Vec::new() };
    let periods = if for_packs { std::mem::take(&mut r.periods) } else { Vec::new() };
    let funnel_refs = if for_packs { std::mem::take(&mut r.funnel_refs) } else { Vec::new() };
    Ok(Practice { summary: r.summary, current, units, periods, funnel_refs })
}

/// The headline rates of `now` (the episodes `filter` keeps) beside those of the same
/// filter over the earlier period's final scores.
fn compare_with(
    loaded: &Loaded,
    cfg: &RunConfig,
    filter: &crate::domain::episodes::Filter,
    now: &Summary,
    (from, to): (Day, Day),
) -> crate::analyses::summary::ComparisonSummary {
    use crate::domain::dates::format_day;
    let then = crate::domain::episodes::Filter { from: Some(from), to: Some(to), ..filter.clone() };
    let mut episodes = loaded.episodes.clone();
    then.apply(&loaded.keys, &mut episodes);
    let earlier = summarise(&episodes, &cfg.registry, BTreeMap::new(), &[], clients_of(&episodes));
    let x = loaded.episodes.extract;
    let period = (
        filter.from.map_or_else(|| "the first score".to_string(), format_day),
        format_day(filter.to.unwrap_or(x.as_of)),
    );
    crate::analyses::summary::compare(now, &earlier, period, (format_day(from), format_day(to)))
}

/// How many clients the analysed episodes are of (a pack's, not the practice's).
fn clients_of(episodes: &Episodes) -> u64 {
    let mut clients: Vec<u32> = episodes.items.iter().map(|it| it.client).collect();
    clients.sort_unstable();
    clients.dedup();
    clients.len() as u64
}

/// The episodes a run analyses: those loaded, or those of them that `filter` keeps.
fn filtered_episodes<'a>(
    loaded: &'a Loaded,
    filter: &crate::domain::episodes::Filter,
) -> std::borrow::Cow<'a, Episodes> {
    // Episodes were built on every row while loading; a filter keeps some (the rules stay
    // as resolved on all data).
    if filter.is_empty() {
        std::borrow::Cow::Borrowed(&loaded.episodes)
    } else {
        let mut kept = loaded.episodes.clone();
        filter.apply(&loaded.keys, &mut kept);
        std::borrow::Cow::Owned(kept)
    }
}

/// The analyses' options, from the flags.
fn analysis_settings(args: &AnalyzeArgs) -> Settings {
    Settings {
        current: crate::analyses::current::Options { no_score_days: args.live.no_score_days },
        trajectories: args.trajectories.options(),
        sudden_gains: args.sudden_gains.options(),
        follow_up: args.follow_up.options(),
        caseload: crate::analyses::caseload::Options {
            suppression: disclosure(args),
            overdispersion: args.caseload.overdispersion.into(),
            period: args.caseload.trend_period.into(),
        },
        goals: crate::analyses::goals::Options { gbo_reliable_change: args.gbo_reliable_change, gas_rho: args.gas_rho },
    }
}

/// The disclosure control of the run's outputs: none for internal use, the NHS rules with
/// `--publish`.
pub(super) fn disclosure(args: &AnalyzeArgs) -> crate::stats::rates::Suppression {
    if args.publish {
        crate::stats::rates::Suppression {
            threshold: args.suppress_below.unwrap_or(PUBLISHED_THRESHOLD),
            round_to: args.caseload.round_to.unwrap_or(PUBLISHED_ROUNDING),
        }
    } else {
        crate::stats::rates::Suppression::NONE
    }
}

/// Counts below this are withheld in published results unless `--suppress-below` says
/// otherwise (NHS England's rule, FIELD.md §7).
const PUBLISHED_THRESHOLD: u64 = 5;

/// Counts in published results are rounded to the nearest 5 unless `--round-to` says
/// otherwise (NHS England's rule, FIELD.md §7): without it a withheld count could be had
/// by subtraction (episodes − paired = unpaired).
const PUBLISHED_ROUNDING: u64 = 5;

/// The files a `--publish` run writes: aggregates only, never a table of single
/// episodes or clients (nor `rejected.csv`, which points at input rows).
pub(super) const PUBLISHED: &[&str] =
    &["summary.json", "report.html", "report.md", "therapists.csv", "sites.csv", "trends.csv"];

pub(super) fn publishable(name: &str) -> bool {
    PUBLISHED.contains(&name) || name.starts_with("charts/")
}

/// The (client, episode, measure) ids of a current-caseload entry's series.
fn series_key(episodes: &Episodes, c: &crate::analyses::current::Current) -> (u32, u32, u16) {
    let it = &episodes.items[c.item];
    (it.client, it.episode, it.measure)
}

/// A unit is judged among the practice's units, not alone: its pack's unit table, funnel
/// references and flags are the practice's for that unit.
fn judge_by_practice(r: &mut Results, pack: Pack) {
    let p = pack.practice;
    r.units = p.units.iter().filter(|u| u.kind == pack.kind && u.unit == pack.unit).cloned().collect();
    r.funnel_refs = p.funnel_refs.clone();
    if let (Some(mine), Some(theirs)) = (r.summary.caseload.as_mut(), p.summary.caseload.as_ref()) {
        mine.funnels = theirs.funnels.clone();
        mine.outside_limits =
            theirs.outside_limits.iter().filter(|f| f.unit_kind == pack.kind && f.unit == pack.unit).cloned().collect();
    }
}

/// Puts the practice's current-caseload entry of each series in place of the pack's
/// own, and summarises them again.
fn adopt_practice_current(
    r: &mut Results,
    practice: &PracticeCurrent,
    episodes: &Episodes,
    options: &crate::analyses::current::Options,
) {
    for c in &mut r.current {
        if let Some(p) = practice.get(&series_key(episodes, c)) {
            *c = crate::analyses::current::Current { item: c.item, ..p.clone() };
        }
    }
    r.summary.current = Some(crate::analyses::current::summarise(&r.current, options));
}

/// The report's charts (the goal chart, drawn with the goal results, is taken from `r`).
fn report_figures(
    episodes: &Episodes,
    registry: &Registry,
    r: &mut Results,
    suppression: crate::stats::rates::Suppression,
    practice_periods: Option<&[crate::analyses::caseload::Period]>,
) -> Vec<crate::output::figures::Figure> {
    crate::output::figures::all(&crate::output::figures::Inputs {
        eps: episodes,
        registry,
        etr: &r.etr,
        curves: &r.curves,
        units: &r.units,
        funnel_refs: &r.funnel_refs,
        periods: &r.periods,
        practice_periods,
        goal_progress: r.goal_figure.take(),
        suppression,
    })
}

/// The run's tables, `summary.json`, the two reports and the `--client` pages, in the
/// order they are written.
fn result_files<'a>(
    cx: &Stage<'a>,
    client_series: &[(&str, Vec<usize>)],
    r: &'a Results,
    figures: &[crate::output::figures::Figure],
    pack: Option<&crate::output::report::PackView>,
) -> Vec<OutputFile<'a>> {
    let (loaded, cfg, episodes) = (cx.loaded, cx.cfg, cx.eps);
    let (reg, supp) = (&cfg.registry, cx.settings.caseload.suppression);
    // Published results name no client.
    let attention = if supp.publishing() {
        Vec::new()
    } else {
        attention_rows(&loaded.keys, episodes, &r.current, &cx.settings.current, reg)
    };
    let report = crate::output::report::render_html(&crate::output::report::ReportInput {
        summary: &r.summary,
        registry: &cfg.registry,
        suppression: supp,
        figures,
        attention: &attention,
        pack,
    });
    let client_pages = client_pages(
        loaded,
        cfg,
        episodes,
        client_series,
        &ClientResults {
            trajectories: &r.client_trajectories,
            etr: &r.etr,
            durability: &r.durability,
            gains: &r.gains,
        },
    );
    let current_opts = cx.settings.current;
    let mut files: Vec<OutputFile> = vec![
        OutputFile::render("current.csv", move |w| {
            tables::current_csv(w, &loaded.keys, episodes, &r.current, &current_opts, reg)
        }),
        OutputFile::render("relapse_survival.csv", move |w| tables::relapse_survival_csv(w, &r.curves, reg)),
        OutputFile::render("expected_response.csv", move |w| tables::expected_response_csv(w, &r.etr, reg)),
        OutputFile::render("therapists.csv", move |w| {
            tables::units_csv(w, &r.units, "therapist", &r.funnel_refs, &supp, reg)
        }),
        OutputFile::render("sites.csv", move |w| tables::units_csv(w, &r.units, "site", &r.funnel_refs, &supp, reg)),
        OutputFile::render("trends.csv", move |w| tables::trends_csv(w, &r.periods, &supp, reg)),
        OutputFile::new("summary.json", {
            let mut v = serde_json::to_value(&r.summary).expect("summary serialises");
            crate::analyses::summary::suppress_json(&mut v, &supp);
            json(&v)
        }),
        OutputFile::new("report.html", report.into_bytes()),
        OutputFile::new(
            "report.md",
            crate::output::report::render_markdown(&crate::output::report::ReportInput {
                summary: &r.summary,
                registry: &cfg.registry,
                suppression: supp,
                figures: &[],
                attention: &attention,
                pack,
            })
            .into_bytes(),
        ),
    ];
    files.extend(client_pages);
    files
}

/// Each chart as a PNG file, `charts/<id>.png`.
fn chart_pngs(figures: &[crate::output::figures::Figure]) -> Result<Vec<OutputFile<'static>>> {
    let fonts = crate::output::charts::system_fonts();
    let mut files = Vec::new();
    for f in figures {
        let bytes = crate::output::charts::png(&f.svg, &fonts)
            .map_err(|e| Error::Usage(format!("cannot draw chart {} as PNG: {e}", f.id)))?;
        files.push(OutputFile::new(format!("charts/{}.png", f.id), bytes));
    }
    Ok(files)
}

/// The open episodes that need attention, as the report lists them: one row per episode
/// (its measures' scores side by side, its reasons most serious first), by therapist,
/// then by the most serious reason, then client.
pub(super) fn attention_rows(
    keys: &Keys,
    eps: &Episodes,
    current: &[crate::analyses::current::Current],
    opts: &crate::analyses::current::Options,
    registry: &Registry,
) -> Vec<crate::output::report::AttentionRow> {
    use crate::analyses::current::Attention;
    let name = |i: &crate::domain::columns::Interner, id: u32| {
        if id == crate::domain::columns::NO_KEY {
            "(none)".to_string()
        } else {
            i.name(id).to_string()
        }
    };
    let mut rows = Vec::new();
    // An episode's series are consecutive in series order.
    for group in current.chunk_by(|a, b| {
        let (x, y) = (&eps.items[a.item], &eps.items[b.item]);
        (x.client, x.episode) == (y.client, y.episode)
    }) {
        let mut reasons: Vec<(Attention, String)> = group
            .iter()
            .filter_map(|c| c.attention.map(|a| (c, a)))
            .map(|(c, a)| {
                let code = &registry.get(eps.items[c.item].measure as usize).code;
                let words = match a {
                    Attention::NoScore => format!("no score for {} days", c.days_since_last),
                    _ => format!("{code} {}", a.words(opts)),
                };
                (a, words)
            })
            .collect();
        if reasons.is_empty() {
            continue;
        }
        reasons.sort();
        reasons.dedup_by(|a, b| a.1 == b.1);
        let it = &eps.items[group[0].item];
        let scores: Vec<String> = group
            .iter()
            .map(|c| {
                let x = &eps.items[c.item];
                // No-break spaces: one measure's scores stay on one line.
                format!("{}\u{a0}{}\u{a0}→\u{a0}{}", registry.get(x.measure as usize).code, x.baseline, c.latest)
            })
            .collect();
        let row = crate::output::report::AttentionRow {
            therapist: name(&keys.therapists, it.therapist),
            client: name(&keys.clients, it.client),
            episode: name(&keys.episodes, it.episode),
            scores: scores.join("; "),
            sessions: group.iter().map(|c| eps.items[c.item].n_scores).max().unwrap_or(0),
            latest_date: crate::domain::dates::format_day(
                group.iter().map(|c| eps.items[c.item].last_date).max().unwrap_or(0),
            ),
            reason: reasons.iter().map(|r| r.1.as_str()).collect::<Vec<_>>().join("; "),
        };
        rows.push((reasons[0].0, row));
    }
    rows.sort_by(|(a, x), (b, y)| (&x.therapist, a, &x.client).cmp(&(&y.therapist, b, &y.client)));
    rows.into_iter().map(|(_, row)| row).collect()
}

/// Options of the analyses, resolved from the flags.
pub(super) struct Settings {
    current: crate::analyses::current::Options,
    trajectories: crate::analyses::trajectories::Options,
    sudden_gains: crate::analyses::sudden_gains::Options,
    follow_up: crate::analyses::followup::Options,
    caseload: crate::analyses::caseload::Options,
    goals: crate::analyses::goals::Options,
}

/// What the analyses hand on to the charts, the report and the tables written last.
pub(super) struct Results {
    summary: Summary,
    /// Every open series on the extract date ([`crate::analyses::current`]).
    current: Vec<crate::analyses::current::Current>,
    etr: Vec<crate::analyses::trajectories::EtrPoint>,
    /// The trajectories of the `--client` series (the others are written to
    /// `trajectories.csv` and dropped as they are made).
    client_trajectories: BTreeMap<usize, crate::analyses::trajectories::Trajectory>,
    gains: crate::analyses::sudden_gains::SuddenGains,
    durability: Vec<crate::analyses::followup::Durability>,
    curves: Vec<crate::analyses::followup::Curve>,
    units: Vec<crate::analyses::caseload::Unit>,
    funnel_refs: Vec<crate::analyses::caseload::FunnelReference>,
    periods: Vec<crate::analyses::caseload::Period>,
    goal_figure: Option<crate::output::figures::Figure>,
}

/// What every analysis task reads: the loaded tables, the run's settings, where results
/// are staged and where progress is shown.
pub(super) struct Stage<'a> {
    loaded: &'a Loaded,
    cfg: &'a RunConfig,
    eps: &'a Episodes,
    filter: &'a crate::domain::episodes::Filter,
    settings: &'a Settings,
    /// The series whose trajectories the client pages need.
    for_clients: &'a BTreeSet<usize>,
    staging: &'a Staging,
    progress: &'a Progress,
}

/// Follow-up: its table, the durability flags, the relapse curves and their summary.
pub(super) type FollowedUp = (
    Vec<crate::analyses::followup::Durability>,
    Vec<crate::analyses::followup::Curve>,
    crate::analyses::summary::SustainedSummary,
);

/// The caseload: units, funnel references, periods and their summary.
pub(super) type Caseload = (
    Vec<crate::analyses::caseload::Unit>,
    Vec<crate::analyses::caseload::FunnelReference>,
    Vec<crate::analyses::caseload::Period>,
    crate::analyses::summary::CaseloadSummary,
);

/// Trajectories: the expected-response curves, the `--client` series' trajectories, what
/// the current caseload needs of each open series, and their summary.
pub(super) type Trajectories = (
    Vec<crate::analyses::trajectories::EtrPoint>,
    BTreeMap<usize, crate::analyses::trajectories::Trajectory>,
    Vec<(u32, crate::analyses::current::OpenSeries)>,
    crate::analyses::summary::TrajectorySummary,
);

/// Goals: whether their tables were written, their summary and figure.
pub(super) type GoalResults =
    (Result<()>, crate::analyses::summary::GoalsSummary, Option<crate::output::figures::Figure>);

/// Runs the analyses on the episodes. They only read the episodes, so they run side by
/// side (follow-up first, then the caseload, which needs the durability flags); each also
/// summarises its own results and writes (stages) its own tables: follow-up scores, goal
/// results and trajectories are dropped there as they are written (they are large and
/// nothing later needs them, but the trajectories of the series in `for_clients`);
/// `episodes.csv` is written once the durability flags exist, beside the caseload; and
/// `rejected.csv`, which rereads the input for line numbers, by a task of its own.
pub(super) fn run_analyses(cx: &Stage) -> Result<Results> {
    let (reg, progress) = (&cx.cfg.registry, cx.progress);
    let (mut tr, mut sg, mut fu, mut goal_results, mut base) = (None, None, None, None, None);
    let mut rejected = None;
    rayon::scope(|s| {
        // The order of spawning is scheduling only (the longest chain first, for an idle
        // core to steal): every task writes its own results, so any order gives the same.
        s.spawn(|_| fu = Some(follow_up_and_caseload(cx)));
        s.spawn(|_| sg = Some(progress.part("sudden gains and losses, their tables", || sudden_gains(cx))));
        s.spawn(|_| goal_results = cx.loaded.goals.as_ref().map(|g| progress.part("goals", || goals(cx, g))));
        s.spawn(|_| tr = Some(progress.part("trajectories, trajectories.csv", || trajectories(cx))));
        s.spawn(|_| {
            // Its line numbers are found by reading the input again: off the critical path.
            rejected = Some(progress.part("rejected.csv", || {
                cx.staging.write(vec![OutputFile::new("rejected.csv", rejected_file(cx.loaded)?)])
            }));
        });
        base = Some(progress.part("summary", || {
            summarise(cx.eps, reg, cx.loaded.inputs.clone(), &cx.loaded.rejections, clients_of(cx.eps))
        }));
    });
    let done = "every task of the scope has finished";
    rejected.expect(done)?;
    let ((etr, client_trajectories, open, tr_summary), (gains, sg_summary)) = (tr.expect(done)?, sg.expect(done)?);
    // The current caseload, from what the trajectories and sudden gains found.
    let losses: Vec<usize> = {
        let mut v: Vec<usize> = gains
            .found
            .iter()
            .filter(|f| f.kind == crate::analyses::sudden_gains::Kind::Loss)
            .map(|f| f.item)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let current = crate::analyses::current::current(cx.eps, &open, &etr, &losses, &cx.settings.current);
    let ((durability, curves, sustained), caseload) = fu.expect(done)?;
    let (units, funnel_refs, periods, caseload_summary) = caseload;
    let mut summary = base.expect(done);
    summary.trajectories = Some(tr_summary);
    summary.sudden_gains = Some(sg_summary);
    summary.sustained = Some(sustained);
    summary.caseload = Some(caseload_summary);
    summary.current = Some(crate::analyses::current::summarise(&current, &cx.settings.current));
    let mut goal_figure = None;
    if let Some((written, goals_summary, figure)) = goal_results {
        written?;
        summary.goals = Some(goals_summary);
        goal_figure = figure;
    }
    Ok(Results {
        summary,
        current,
        etr,
        client_trajectories,
        gains,
        durability,
        curves,
        units,
        funnel_refs,
        periods,
        goal_figure,
    })
}

/// Follow-up, then `episodes.csv` (it shows the durability flags) beside the caseload,
/// which needs them too: the idle core takes one of the two.
pub(super) fn follow_up_and_caseload(cx: &Stage) -> Result<(FollowedUp, Caseload)> {
    let (keys, eps, reg, progress) = (&cx.loaded.keys, cx.eps, &cx.cfg.registry, cx.progress);
    let followed = progress.part("following up, followup.csv", || follow_up(cx))?;
    let (written, caseload) = rayon::join(
        || {
            progress.part("episodes.csv", || {
                cx.staging.write(vec![OutputFile::render("episodes.csv", |w| {
                    tables::episodes_csv(w, keys, eps, &followed.0, reg)
                })])
            })
        },
        || {
            progress.part("caseload", || {
                let options = &cx.settings.caseload;
                let (units, refs, periods, effects) =
                    crate::analyses::caseload::analyse(keys, eps, &followed.0, options);
                let summary =
                    crate::analyses::summary::caseload_summary(&units, &refs, &periods, &effects, options, reg);
                (units, refs, periods, summary)
            })
        },
    );
    written.map(|()| (followed, caseload))
}

/// Follow-up scores are judged, written and counted series by series: never all held.
pub(super) fn follow_up(cx: &Stage) -> Result<FollowedUp> {
    let (keys, eps, reg, options) = (&cx.loaded.keys, cx.eps, &cx.cfg.registry, &cx.settings.follow_up);
    let months = &options.months;
    let (mut tally, mut durability) = (crate::analyses::summary::FollowUpTally::default(), Vec::new());
    cx.staging.write_together(&["followup.csv"], |w| {
        let [out] = w else { return Err(std::io::Error::other("one file")) };
        let mut table = tables::FollowUpTable::new(&mut **out, months)?;
        let mut result = Ok(());
        durability = crate::analyses::followup::follow_up(&cx.loaded.rows, eps, options, |scores| {
            tally.add(eps, scores, months.len());
            if result.is_ok() {
                result = table.add(keys, eps, scores, reg);
            }
        });
        result?;
        table.finish()
    })?;
    let (curves, tests) = crate::analyses::followup::relapse_survival(keys, eps, &durability, reg, options.cohort);
    let summary = crate::analyses::summary::sustained_summary(eps, &tally, &durability, &curves, &tests, options, reg);
    Ok((durability, curves, summary))
}

/// Sudden gains and losses, their summary and their two tables.
pub(super) fn sudden_gains(
    cx: &Stage,
) -> Result<(crate::analyses::sudden_gains::SuddenGains, crate::analyses::summary::SuddenGainsSummary)> {
    let (keys, eps, reg, options) = (&cx.loaded.keys, cx.eps, &cx.cfg.registry, &cx.settings.sudden_gains);
    let sg = crate::analyses::sudden_gains::find_all(&cx.loaded.rows, eps, reg, options);
    let summary = crate::analyses::summary::sudden_gains_summary(&sg, options, reg);
    let select = options.select;
    let written = cx.staging.write(vec![
        OutputFile::render("sudden_gains.csv", |w| tables::sudden_gains_csv(w, keys, eps, &sg, reg)),
        OutputFile::render("sudden_gains_byclient.csv", |w| {
            tables::sudden_gains_byclient_csv(w, keys, eps, &sg, reg, select)
        }),
    ]);
    written.map(|()| (sg, summary))
}

/// Goal results are made, tallied and written client by client: never all held.
pub(super) fn goals(cx: &Stage, g: &GoalRows) -> GoalResults {
    let (keys, eps, options) = (&cx.loaded.keys, cx.eps, &cx.settings.goals);
    let mut tally = crate::analyses::summary::GoalsTally::default();
    // A run of a large goal table that cannot be read back is not a failure to write the
    // tables: kept apart to say so.
    let mut unreadable = None;
    let written = cx.staging.write_together(&["goals.csv", "goals_episodes.csv"], |w| {
        let [goals_out, episodes_out] = w else { return Err(std::io::Error::other("two files")) };
        let mut tables = tables::GoalTables::new(&mut **goals_out, &mut **episodes_out)?;
        let mut result = Ok(());
        let keep = goal_filter(&g.names, keys, eps, cx.filter);
        let read = crate::analyses::goals::analyse_by_client(g, keys, eps, options, keep, |goals, goal_eps| {
            tally.add(goals, goal_eps);
            if result.is_ok() {
                result = tables.add(&g.names, goals, goal_eps);
            }
        });
        if let Err(e) = read {
            unreadable = Some(e);
            return Err(std::io::Error::other("the goal ratings could not be read back"));
        }
        result?;
        tables.finish()
    });
    let written = match unreadable {
        Some(source) => Err(Error::TemporaryFile { what: "the goal ratings", source }),
        None => written,
    };
    let supp = cx.settings.caseload.suppression;
    (written, tally.summary(options), crate::output::figures::goal_progress(&tally, supp))
}

/// Trajectories are made, written and counted series by series: never all held (but those
/// of the `--client` series, for their pages).
pub(super) fn trajectories(cx: &Stage) -> Result<Trajectories> {
    let (keys, eps, reg, options) = (&cx.loaded.keys, cx.eps, &cx.cfg.registry, &cx.settings.trajectories);
    let mut tally = crate::analyses::summary::TrajectoryTally::default();
    let (mut kept, mut expected) = (BTreeMap::new(), None);
    // What the current caseload needs of each open series, in series order.
    let mut open = Vec::new();
    cx.staging.write_together(&["trajectories.csv"], |w| {
        let [out] = w else { return Err(std::io::Error::other("one file")) };
        let mut table = tables::TrajectoryTable::new(&mut **out)?;
        let mut result = Ok(());
        expected = Some(crate::analyses::trajectories::analyse(&cx.loaded.rows, eps, options, |i, t| {
            let it = &eps.items[i];
            tally.add(it, t);
            if cx.for_clients.contains(&i) {
                kept.insert(i, t.clone());
            }
            if !it.ended() {
                let band = t.band.and_then(|b| u8::try_from(b).ok());
                let (latest_session, not_on_track) = (t.latest_session, t.off_track_now);
                open.push((i as u32, crate::analyses::current::OpenSeries { band, latest_session, not_on_track }));
            }
            if result.is_ok() {
                result = table.add(keys, it, t, reg);
            }
        }));
        result?;
        table.finish()
    })?;
    let expected = expected.expect("the table was written, so the series were walked");
    let summary = crate::analyses::summary::trajectory_summary(eps, &tally, &expected, options, reg);
    Ok((expected.etr, kept, open, summary))
}

/// The series (indices into `episodes.items`) of each `--client`, in the order given.
/// A client missing from `episodes` is an error unless `required` is false (a unit's pack
/// under `--by`, which shows only its own clients' pages).
pub(super) fn client_series<'a>(
    keys: &Keys,
    episodes: &Episodes,
    clients: &'a [String],
    required: bool,
) -> Result<Vec<(&'a str, Vec<usize>)>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for client in clients.iter().filter(|client| seen.insert(client.as_str())) {
        let items: Vec<usize> =
            (0..episodes.items.len()).filter(|&i| keys.clients.name(episodes.items[i].client) == client).collect();
        if items.is_empty() && required {
            let mut names: Vec<&str> = episodes.items.iter().map(|it| keys.clients.name(it.client)).collect();
            names.sort_unstable();
            names.dedup();
            let shown = names.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            let more = if names.len() > 5 { format!(", … ({} in all)", names.len()) } else { String::new() };
            return Err(Error::Usage(format!(
                "--client {client}: no episode of that client in the data (after filters); keys are matched exactly, \
                 and the data have: {shown}{more}. Nothing was written"
            )));
        }
        if !items.is_empty() {
            out.push((client.as_str(), items));
        }
    }
    Ok(out)
}

/// What the client pages show of the analyses.
pub(super) struct ClientResults<'a> {
    /// The trajectories of the clients' series, by series.
    trajectories: &'a BTreeMap<usize, crate::analyses::trajectories::Trajectory>,
    etr: &'a [crate::analyses::trajectories::EtrPoint],
    durability: &'a [crate::analyses::followup::Durability],
    gains: &'a crate::analyses::sudden_gains::SuddenGains,
}

/// `client_<id>.html` for each `--client`: the client's episodes with their figures.
pub(super) fn client_pages(
    loaded: &Loaded,
    cfg: &RunConfig,
    episodes: &Episodes,
    clients: &[(&str, Vec<usize>)],
    results: &ClientResults,
) -> Vec<OutputFile<'static>> {
    let mut client_pages = Vec::new();
    let file_names = unique_file_names(clients.iter().map(|(client, _)| *client));
    for ((client, items), file_name) in clients.iter().zip(file_names) {
        let pages: Vec<crate::output::report::ClientEpisode> =
            items.iter().map(|&i| client_episode(loaded, cfg, episodes, results, i)).collect();
        client_pages.push(OutputFile::new(
            format!("client_{file_name}.html"),
            crate::output::report::render_client(client, &pages).into_bytes(),
        ));
    }
    client_pages
}

/// Series `i` as a client's page shows it: its facts and its two figures.
fn client_episode(
    loaded: &Loaded,
    cfg: &RunConfig,
    episodes: &Episodes,
    results: &ClientResults,
    i: usize,
) -> crate::output::report::ClientEpisode {
    let it = &episodes.items[i];
    let t = &results.trajectories[&i];
    let d = &results.durability[i];
    let mut facts = status_facts(it);
    facts.extend(course_facts(t, d));
    crate::output::report::ClientEpisode {
        episode: loaded.keys.episodes.name(it.episode).to_string(),
        measure: cfg.registry.get(it.measure as usize).code.clone(),
        facts,
        figures: [
            crate::output::figures::client_trajectory(&loaded.rows, episodes, results.gains, &cfg.registry, i),
            crate::output::figures::client_vs_expected(&loaded.rows, episodes, results.etr, t, &cfg.registry, i),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// What a client's page says of a series' status and outcome on the extract date.
fn status_facts(it: &crate::domain::episodes::EpisodeMeasure) -> Vec<(String, String)> {
    let c = &it.classification;
    let text = |x: Option<&str>| x.unwrap_or("–").replace('_', " ");
    vec![
        (
            "on the extract date".into(),
            match it.status().ended_by() {
                Some(by) => format!("ended ({})", by.as_str().replace('_', " ")),
                None => "in treatment (open): every figure here is so far, up to the latest score".into(),
            },
        ),
        (
            if it.ended() { "baseline → final" } else { "baseline → latest" }.into(),
            format!("{} → {}", tables::num(it.baseline), it.final_score.map_or("–".into(), tables::num)),
        ),
        ("reliable change".into(), text(c.reliable_change.map(|r| r.as_str()))),
        (if it.ended() { "outcome" } else { "outcome so far" }.into(), text(c.outcome.map(|o| o.as_str()))),
    ]
}

/// What a client's page says of a series' course: its trajectory, any temporary
/// worsening, and its follow-up.
fn course_facts(
    t: &crate::analyses::trajectories::Trajectory,
    d: &crate::analyses::followup::Durability,
) -> Vec<(String, String)> {
    let text = |x: Option<&str>| x.unwrap_or("–").replace('_', " ");
    vec![
        ("trajectory".into(), text(t.shape.map(|s| s.as_str()))),
        (
            "change per session".into(),
            match (t.slope_per_session, t.shrunken_slope_per_session) {
                (Some(own), Some(model)) => format!(
                    "{:.2} points from the client's own scores, {:.2} under the practice's growth model",
                    own, model
                ),
                (Some(own), None) => format!("{own:.2} points"),
                _ => "–".into(),
            },
        ),
        (
            "against the typical client".into(),
            match (t.change_vs_typical, t.slope_rci) {
                (Some(c), Some(rci)) => format!("{} (HLM index {rci:.2})", c.replace('_', " ")),
                _ => "– (fewer than 3 scores, or no index for this measure)".into(),
            },
        ),
        (
            "temporary worsening".into(),
            t.dip.as_ref().map_or("none".into(), |d| {
                format!(
                    "from session {} ({}), {} points at worst",
                    d.start,
                    d.kind.replace('_', " "),
                    tables::num(d.depth)
                )
            }),
        ),
        ("follow-up scores".into(), d.n_followup.to_string()),
        (
            "relapse".into(),
            match (d.relapse, d.relapse_date) {
                (Some(true), Some(day)) => format!("yes, {}", crate::domain::dates::format_day(day)),
                (Some(false), _) => "no".into(),
                _ => "does not apply".into(),
            },
        ),
    ]
}

/// Goals, restricted to the episodes the filter kept.
/// Which goal episodes (client, episode ids of the goal ratings) a run keeps: with a
/// filter, those with a symptom episode the filter kept; otherwise all.
pub(super) fn goal_filter<'a>(
    g: &'a GoalNames,
    keys: &'a Keys,
    episodes: &'a Episodes,
    filter: &crate::domain::episodes::Filter,
) -> impl Fn(u32, u32) -> bool + 'a {
    let kept: Option<std::collections::HashSet<(&str, &str)>> = (!filter.is_empty()).then(|| {
        episodes.items.iter().map(|it| (keys.clients.name(it.client), keys.episodes.name(it.episode))).collect()
    });
    move |c, e| kept.as_ref().is_none_or(|k| k.contains(&(g.clients.name(c), g.episodes.name(e))))
}

pub(super) fn json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("summary serialises");
    bytes.push(b'\n');
    bytes
}
