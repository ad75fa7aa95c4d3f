//! From the command line's input options to validated rows sorted into episodes: the
//! tables found and read, the checks that stop a run that cannot mean anything, and
//! `rejected.csv`.

use super::*;

/// Settings resolved from the flags.
pub struct RunConfig {
    pub measurements: PathBuf,
    pub goals: Option<PathBuf>,
    pub registry: Registry,
    /// How dates are read: `--today`, `--date-format`.
    pub dates: crate::input::validate::DateRules,
    /// The CSV tables' encoding (`--encoding`).
    pub encoding: ingest::Encoding,
    /// How episodes are judged ended or open (`--as-of`, `--inactive-days`).
    pub ending: crate::domain::episodes::EndRule,
    pub out: PathBuf,
    /// Goal ratings held in memory at once (`--memory-rows`).
    pub memory_rows: usize,
}

/// `DIR/stem.csv`, `DIR/stem.parquet`, or a folder `DIR/stem/` of part files, the first
/// of them present; when more than one is, a warning names the one read, since the others
/// may be stale copies.
pub(super) fn find_table(dir: &Path, stem: &str, quiet: bool) -> Option<PathBuf> {
    let files = ["csv", "parquet"].iter().map(|ext| dir.join(format!("{stem}.{ext}"))).filter(|p| p.is_file());
    let found: Vec<PathBuf> = files.chain(Some(dir.join(stem)).filter(|p| p.is_dir())).collect();
    if let [read, others @ ..] = found.as_slice() {
        if !others.is_empty() && !quiet {
            let others: Vec<String> = others.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "sustain: warning: reading {}, not {} (pass --{stem} FILE to choose)",
                read.display(),
                others.join(" nor ")
            );
        }
    }
    found.into_iter().next()
}

pub fn load_registry(path: Option<&Path>) -> Result<Registry> {
    let reg = Registry::builtin();
    let Some(path) = path else { return Ok(reg) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::MeasureFile { path: path.to_path_buf(), detail: e.to_string() })?;
    reg.with_overrides(&text).map_err(|detail| Error::MeasureFile { path: path.to_path_buf(), detail })
}

pub fn resolve(args: &InputArgs) -> Result<RunConfig> {
    let measurements = match (&args.measurements, &args.dir) {
        (Some(p), _) => p.clone(),
        (None, Some(dir)) => {
            find_table(dir, "measurements", args.quiet).ok_or_else(|| Error::NoMeasurements { dir: dir.clone() })?
        }
        (None, None) => return Err(Error::NoInput),
    };
    let goals = args.goals.clone().or_else(|| args.dir.as_deref().and_then(|d| find_table(d, "goals", args.quiet)));
    let today = match &args.today {
        None => today_utc(),
        Some(t) => {
            parse_iso_date(t).map_err(|_| Error::Usage(format!("--today {t} is not a date of the form YYYY-MM-DD")))?
        }
    };
    check_output_folder(&args.out, [Some(&measurements), goals.as_ref()].into_iter().flatten())?;
    Ok(RunConfig {
        measurements,
        goals,
        registry: load_registry(args.measures.as_deref())?,
        dates: crate::input::validate::DateRules { today, order: args.date_format.into() },
        encoding: args.encoding.into(),
        ending: crate::domain::episodes::EndRule::default(),
        out: args.out.clone(),
        memory_rows: args.memory_rows.max(1),
    })
}

/// Refuses, before anything is read, an output path that is a file, and an output folder
/// that holds an input table (a file, or a folder of parts): a run writes `goals.csv`
/// there, which replaced the user's goals table, and any later run would read the results
/// as its input.
pub(super) fn check_output_folder<'a>(out: &Path, inputs: impl Iterator<Item = &'a PathBuf>) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::OutputIsAFile { out: out.to_path_buf() });
    }
    // A folder that does not exist yet holds nothing.
    let Ok(out_dir) = std::fs::canonicalize(out) else { return Ok(()) };
    for input in inputs {
        let input_path = std::fs::canonicalize(input).ok();
        // The folder holding the table, or the table itself when it is a folder of parts
        // (results there would be read as parts by the next run).
        let holder = input_path.as_deref().and_then(Path::parent);
        if holder == Some(out_dir.as_path()) || input_path.as_deref() == Some(out_dir.as_path()) {
            return Err(Error::OutputHoldsInput {
                out: out.to_path_buf(),
                input: input.clone(),
                suggestion: out.join("reports"),
            });
        }
    }
    Ok(())
}

/// Everything read and validated, with the episodes built on every valid row.
pub struct Loaded {
    pub keys: Keys,
    pub rows: SeriesRows,
    pub episodes: Episodes,
    pub goals: Option<GoalRows>,
    pub rejections: Vec<Rejection>,
    pub inputs: BTreeMap<&'static str, TableCounts>,
    /// Where each table came from, for line numbers.
    pub sources: BTreeMap<Table, ingest::TableFiles>,
}

/// A table's counts once read (rejections are added with `TableCounts::with_rejected`).
pub(super) fn counts(raw: &TableReader) -> TableCounts {
    TableCounts {
        file: raw.path.display().to_string(),
        rows_read: raw.records_read(),
        rows_used: raw.records_read(),
        rows_rejected: 0,
        ignored_columns: raw.ignored.clone(),
    }
}

pub(super) fn warn_ignored(raw: &TableReader, quiet: bool) {
    if !raw.ignored.is_empty() && !quiet {
        eprintln!(
            "sustain: warning: {} has columns that are not in the contract and are ignored: {}",
            raw.path.display(),
            raw.ignored.join(", ")
        );
    }
}

pub fn load(cfg: &RunConfig, progress: &Progress, quiet: bool) -> Result<Loaded> {
    let mut raw = TableReader::open_encoded(&cfg.measurements, Table::Measurements, cfg.encoding)?;
    warn_ignored(&raw, quiet);
    // The goals are read beside the measurements (reading either keeps about 1.7 of two
    // cores busy, the two together nearly both), and beside the sort that follows; one
    // after the other instead when the measurements pass four times the memory budget
    // (32 M rows by default), where the sort's peak and the goals' read would add up to
    // gigabytes. The table's size tells before it is read.
    let side_by_side = cfg.goals.is_some() && raw.estimated_rows() <= (cfg.memory_rows as u64).saturating_mul(4);
    if side_by_side {
        progress.stage("reading, validating and screening measurement and goal rows; sorting rows into series");
    } else {
        progress.stage("reading, validating and screening measurement rows");
    }
    let read_measurements = move || -> Result<_> {
        // The file is read block by block: only one block's text is in memory at a time.
        let (m, rejections) = progress.part("reading and validating the measurements", || {
            ingest::measurements(&mut raw, &cfg.registry, cfg.dates)
        })?;
        let (counts, source) = (counts(&raw), raw.files().clone());
        drop(raw);
        if !side_by_side {
            progress.stage("sorting rows into series, episode outcomes");
        }
        // Validation's rejections, in record order, tell each row's record.
        let record_of = crate::domain::columns::RecordOf::new(rejections.iter().map(|r| r.record));
        let series = progress.part("sorting rows into series, episode outcomes", || {
            into_series(m, &cfg.registry, &cfg.ending, &record_of)
        });
        Ok((series, rejections, counts, source))
    };
    let read_goals = || {
        cfg.goals.as_deref().map(|path| {
            if !side_by_side {
                progress.stage("reading, validating and screening goal rows");
            }
            progress.part("reading and validating the goals", || -> Result<_> {
                let mut raw = TableReader::open_encoded(path, Table::Goals, cfg.encoding)?;
                warn_ignored(&raw, quiet);
                let (g, rej) = ingest::goals(&mut raw, cfg.dates, cfg.memory_rows)?;
                Ok((g, rej, counts(&raw), raw.files().clone()))
            })
        })
    };
    // The goals on a thread of their own and the measurements on this one, neither of them
    // rayon's: each waits on its reader's blocks and hands their validation to rayon's
    // threads, so the goals take the CPU the measurements' serial steps leave.
    let (measurements, goals) = if side_by_side {
        std::thread::scope(|s| {
            let goals = s.spawn(read_goals);
            let measurements = read_measurements();
            (measurements, goals.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        })
    } else {
        (read_measurements(), None)
    };
    // The measurements' refusal first, as when the goals were read after them.
    let ((keys, mut episodes, rows, left_out), mut rejections, measurement_counts, source) = measurements?;
    let goals = if side_by_side { goals } else { read_goals() };
    let mut inputs = BTreeMap::new();
    let mut sources = BTreeMap::new();
    sources.insert(Table::Measurements, source);
    rejections.extend(left_out);
    inputs.insert("measurements", measurement_counts.with_rejected(rejections.len()));

    let goals = match goals {
        None => None,
        Some(read) => {
            let (g, rej, goal_counts, source) = read?;
            // The goals table's discharge days end episodes too.
            crate::domain::episodes::apply_end_dates(&mut episodes, &keys, &g.episode_end, &cfg.registry);
            sources.insert(Table::Goals, source);
            inputs.insert("goals", goal_counts.with_rejected(rej.len()));
            rejections.extend(rej);
            Some(g)
        }
    };
    rejections.sort_by_key(|r| (r.table, r.record));
    Ok(Loaded { keys, rows, episodes, goals, rejections, inputs, sources })
}

/// Sorts the measurements into series and builds the episodes; the rows left out on the way
/// (duplicates, follow-up-only series) become rejections. Only the keys outlive this call:
/// the row columns are freed as soon as the series' rows are laid out.
pub(super) fn into_series(
    m: Measurements,
    registry: &Registry,
    ending: &crate::domain::episodes::EndRule,
    record_of: &crate::domain::columns::RecordOf,
) -> (Keys, Episodes, SeriesRows, Vec<Rejection>) {
    let prepared = crate::domain::episodes::prepare(m, registry, ending);
    let record = |row: usize| record_of.record(row);
    let mut left_out = Vec::with_capacity(prepared.duplicates.len() + prepared.orphans.len());
    for (row, why) in &prepared.duplicates {
        left_out.push(ingest::duplicate_rejection(Table::Measurements, record(*row), "score", why, record));
    }
    for &row in &prepared.orphans {
        left_out.push(Rejection {
            table: Table::Measurements,
            record: record(row),
            column: "phase",
            code: "followup_without_treatment",
            message: "a follow-up score on a measure with no score before follow-up in its episode: \
                      there is no baseline to compare it with"
                .into(),
            duplicate_of: None,
        });
    }
    (prepared.keys, prepared.episodes, prepared.rows, left_out)
}

/// `rejected.csv` with line numbers read back from the files.
pub(super) fn rejected_file(loaded: &Loaded) -> Result<Vec<u8>> {
    // (table, record) → (part file, line)
    let mut line_of: BTreeMap<(Table, u64), (usize, u64)> = BTreeMap::new();
    for (table, files) in &loaded.sources {
        let mut records: Vec<u64> = loaded
            .rejections
            .iter()
            .filter(|r| r.table == *table)
            .flat_map(|r| std::iter::once(r.record).chain(r.duplicate_of))
            .collect();
        records.sort_unstable();
        records.dedup();
        let lines = files.lines(&records)?;
        line_of.extend(records.into_iter().zip(lines).map(|(r, l)| ((*table, r), l)));
    }
    let names: BTreeMap<(Table, usize), String> = (loaded.sources.iter())
        .flat_map(|(t, files)| files.parts.iter().enumerate().map(|(i, p)| ((*t, i), p.0.display().to_string())))
        .collect();
    let reasons: Vec<String> = loaded
        .rejections
        .iter()
        .map(|r| match r.duplicate_of {
            Some(k) => {
                let ((part, _), (kept_part, line)) = (line_of[&(r.table, r.record)], line_of[&(r.table, k)]);
                let other_file =
                    if kept_part == part { String::new() } else { format!(" of {}", names[&(r.table, kept_part)]) };
                format!("{} of line {line}{other_file} (that row is used)", r.message)
            }
            None => r.message.clone(),
        })
        .collect();
    let lines: Vec<RejectedLine> = loaded
        .rejections
        .iter()
        .zip(&reasons)
        .map(|(r, reason)| RejectedLine {
            file: &names[&(r.table, line_of[&(r.table, r.record)].0)],
            line: line_of[&(r.table, r.record)].1,
            column: r.column,
            code: r.code,
            reason,
        })
        .collect();
    Ok(crate::output::staging::to_bytes(|w| tables::rejected_csv(w, &lines)))
}

/// Refuses disclosure options that would not do what they say: the thresholds of
/// published results without `--publish`, and client pages in published results.
pub(super) fn check_disclosure_flags(args: &AnalyzeArgs) -> Result<()> {
    let (below, round) = (args.suppress_below, args.caseload.round_to);
    if !args.publish && (below.is_some_and(|n| n > 0) || round.is_some()) {
        return Err(Error::Usage(
            "--suppress-below and --round-to apply to published results: add --publish (without it every count \
             is exact, for use within the practice)"
                .into(),
        ));
    }
    if args.publish && below == Some(0) {
        return Err(Error::Usage(
            "--publish --suppress-below 0 would publish counts of single people: give 5 (the NHS rule) or more, \
             or leave out --publish for exact counts within the practice"
                .into(),
        ));
    }
    if args.publish && !args.client.is_empty() {
        return Err(Error::Usage(
            "--client writes a page about one client, which published results never hold: run without --publish \
             for client pages"
                .into(),
        ));
    }
    Ok(())
}

/// Whether `summary.json` at `path` is that of a `--publish` run.
fn published_summary(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else { return false };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["published"] == true)
}

/// Refuses to publish into a folder holding anything a published run would not write (the
/// tables of single episodes of an earlier run would sit beside the published results).
pub(super) fn check_publish_folder(out: &Path) -> Result<()> {
    let mut stray = Vec::new();
    let mut folders = vec![out.to_path_buf()];
    while let Some(dir) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            // Not followed: a link (or a loop of them) is listed as it is.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(path);
                continue;
            }
            // An internal run's summary in a published file's name: exact counts.
            if path.file_name().is_some_and(|n| n == "summary.json") && !published_summary(&path) {
                stray.push(path.strip_prefix(out).unwrap_or(&path).to_string_lossy().into_owned());
                continue;
            }
            let name = path.strip_prefix(out).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            // A pack's files sit in by_therapist/ID/ or by_site/ID/.
            let own = match name.split_once('/') {
                Some(("by_therapist" | "by_site", rest)) => rest.split_once('/').map_or(rest, |(_, file)| file),
                _ => &name,
            };
            if !publishable(own) {
                stray.push(name);
            }
        }
    }
    if stray.is_empty() {
        return Ok(());
    }
    stray.sort();
    Err(Error::Usage(format!(
        "{} holds files that published results never include ({}{}): give --out a new or empty folder for \
         published results. Nothing was written",
        out.display(),
        stray.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        if stray.len() > 3 { format!(" and {} more", stray.len() - 3) } else { String::new() }
    )))
}

/// Refuses, before anything is written, a run that cannot mean anything: an extract date
/// before the data's last date, a table most of whose rows were rejected for one reason,
/// no usable measurement, or a filter that matches nothing.
pub(super) fn check_loaded(
    loaded: &Loaded,
    cfg: &RunConfig,
    args: &AnalyzeArgs,
    filter: &crate::domain::episodes::Filter,
) -> Result<()> {
    let x = loaded.episodes.extract;
    if !x.from_data && x.as_of < x.latest {
        return Err(Error::Usage(format!(
            "--as-of {} is before the latest date in the measurements ({}): the extract date is the day the \
             export was taken, so no score can come after it; give a date on or after {}. Nothing was written",
            crate::domain::dates::format_day(x.as_of),
            crate::domain::dates::format_day(x.latest),
            crate::domain::dates::format_day(x.latest)
        )));
    }
    check_rejections(loaded, cfg)?;
    if loaded.episodes.items.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no row could be used, so there is nothing to analyse; `sustain validate` lists every row's \
             reason. Nothing was written",
            cfg.measurements.display()
        )));
    }
    check_filter(loaded, filter)?;
    if args.by.is_some() && !args.client.is_empty() {
        // Each --client must exist somewhere; its page is written in its unit's pack.
        client_series(&loaded.keys, &loaded.episodes, &args.client, true)?;
    }
    Ok(())
}

/// The rule that stops a run whose table lost most of its rows to one reason: the
/// figures would describe the few rows left, and the cause is nearly always one setting
/// (the date order, the measure names, the encoding).
pub(super) const MOST_REJECTED: &str =
    "sustain stops when more than half of a table's rows are rejected for one reason";

pub(super) fn check_rejections(loaded: &Loaded, cfg: &RunConfig) -> Result<()> {
    for (table, name) in [(Table::Measurements, "measurements"), (Table::Goals, "goals")] {
        let Some(counts) = loaded.inputs.get(name) else { continue };
        let mut by_code: BTreeMap<&str, (u64, &Rejection)> = BTreeMap::new();
        // Blank lines (trailing empty rows of a spreadsheet export) and exact repeats (an
        // export written twice) lose nothing: the rows used are all there is.
        let harmless = |r: &&Rejection| r.code == "empty_row" || r.code == "exact_duplicate";
        for r in loaded.rejections.iter().filter(|r| r.table == table && !harmless(r)) {
            by_code.entry(r.code).or_insert((0, r)).0 += 1;
        }
        let Some((code, (k, first))) = by_code.into_iter().max_by_key(|(_, (k, _))| *k) else { continue };
        if 2 * k <= counts.rows_read {
            continue;
        }
        let files = &loaded.sources[&table];
        let (part, line) = files.lines(&[first.record])?[0];
        let same = |r: &&Rejection| r.table == table && r.code == code;
        let fix = match code {
            "unparseable_date" | "impossible_date" => {
                // The order in which most of the rejected dates read (day/month and
                // month/day agree on dates up to the 12th: the later days decide).
                let values: Vec<&str> = loaded
                    .rejections
                    .iter()
                    .filter(same)
                    .filter_map(|r| crate::input::validate::quoted_value(&r.message))
                    .collect();
                let fits = |o: &DateOrder| values.iter().filter(|v| o.parse(v).is_ok()).count();
                let others: Vec<DateOrder> = DateOrder::ALL.into_iter().filter(|o| *o != cfg.dates.order).collect();
                let best = others.iter().map(fits).max().unwrap_or(0);
                let orders: Vec<&str> =
                    others.iter().filter(|o| best > 0 && fits(o) == best).map(|o| o.as_str()).collect();
                match orders.as_slice() {
                    [] => format!(
                        "write the dates as {}, or give their order with --date-format",
                        cfg.dates.order.pattern()
                    ),
                    [order] => format!("the dates read in another order: run again with --date-format {order}"),
                    _ => format!(
                        "the dates read either day first or month first: run again with --date-format {}",
                        orders.join(" or ")
                    ),
                }
            }
            "future_date" => format!(
                "the dates are after today ({}): check the date column, or give the day the export was taken \
                 with --today",
                crate::domain::dates::format_day(cfg.dates.today)
            ),
            "unknown_measure" => "name the instruments as `sustain measures` lists them (PHQ-9, GAD-7, CORE-10, \
                                  ...), or add them with --measures FILE"
                .into(),
            "score_out_of_range" => "check that the scores are totals on the instrument's own scale (not item \
                                     means or T-scores), or give the instrument's range in a --measures file"
                .into(),
            "not_utf8" => "the file is not UTF-8 text; if a Windows program saved it, run again with \
                           --encoding windows-1252, or save it as CSV UTF-8"
                .into(),
            "too_many_fields" => "its lines have more values than its header: check the separator (a comma) and \
                                  that values holding commas are quoted"
                .into(),
            _ => format!("correct the `{}` column (`sustain validate` lists every row's reason)", first.column),
        };
        return Err(Error::Usage(format!(
            "{}: {k} of {} rows were rejected as {code} (line {line}: {}); {fix}. Nothing was written\n({MOST_REJECTED}.)",
            files.parts[part].0.display(),
            counts.rows_read,
            first.message,
        )));
    }
    Ok(())
}

/// Refuses a filter that keeps no episode, naming a few of the values that exist.
pub(super) fn check_filter(loaded: &Loaded, filter: &crate::domain::episodes::Filter) -> Result<()> {
    let keys = &loaded.keys;
    let some = |i: &crate::domain::columns::Interner| {
        let mut names: Vec<&str> = (0..i.len() as u32).map(|id| i.name(id)).collect();
        names.sort_unstable();
        let shown: Vec<&str> = names.iter().copied().take(5).collect();
        let more = if names.len() > 5 { format!(", … ({} in all)", names.len()) } else { String::new() };
        if names.is_empty() {
            "none: the data name no such keys".to_string()
        } else {
            format!("{}{more}", shown.join(", "))
        }
    };
    for (flag, wanted, interner) in
        [("--therapist", &filter.therapists, &keys.therapists), ("--site", &filter.sites, &keys.sites)]
    {
        let unknown: Vec<&str> = wanted
            .iter()
            .map(String::as_str)
            .filter(|w| !(0..interner.len() as u32).any(|id| interner.name(id) == *w))
            .collect();
        if !unknown.is_empty() {
            return Err(Error::Usage(format!(
                "{flag} {}: no such key in the data (keys are matched exactly); the data have: {}. Nothing was written",
                unknown.join(","),
                some(interner)
            )));
        }
    }
    if !filter.is_empty() && !loaded.episodes.items.iter().any(|it| filter.keeps(keys, it)) {
        let dates = loaded.episodes.items.iter().map(|it| it.last_date);
        let (lo, hi) = (dates.clone().min().unwrap_or(0), dates.max().unwrap_or(0));
        return Err(Error::Usage(format!(
            "the filters (--therapist, --site, --from, --to) together keep no episode; episodes' final scores run \
             from {} to {}. Nothing was written",
            crate::domain::dates::format_day(lo),
            crate::domain::dates::format_day(hi)
        )));
    }
    Ok(())
}

pub(super) fn parse_day(flag: &str, v: &Option<String>) -> Result<Option<Day>> {
    v.as_deref()
        .map(|t| {
            parse_iso_date(t).map_err(|_| Error::Usage(format!("{flag} {t} is not a date of the form YYYY-MM-DD")))
        })
        .transpose()
}

/// The earlier period the headline rates are compared with: `--compare-to FROM..TO`, or
/// with `--from` and `--to` the period of the same length just before; `None` otherwise.
pub(super) fn earlier_period(
    a: &crate::app::cli::CaseloadArgs,
    filter: &crate::domain::episodes::Filter,
) -> Result<Option<(Day, Day)>> {
    match &a.compare_to {
        Some(text) => {
            let bad = || {
                Error::Usage(format!(
                    "--compare-to {text}: give the earlier period as FROM..TO, two dates YYYY-MM-DD with the earlier first"
                ))
            };
            let (from, to) = text.split_once("..").ok_or_else(bad)?;
            let (from, to) =
                (parse_iso_date(from.trim()).map_err(|_| bad())?, parse_iso_date(to.trim()).map_err(|_| bad())?);
            if from > to {
                return Err(bad());
            }
            // The two periods' episodes must be apart for the difference's interval.
            if filter.from.is_none_or(|start| to >= start) {
                return Err(Error::Usage(format!(
                    "--compare-to {text}: the earlier period must end before this run's period begins; give --from \
                     (and --to) for this run's period, after {}",
                    crate::domain::dates::format_day(to)
                )));
            }
            Ok(Some((from, to)))
        }
        None => Ok(match (filter.from, filter.to) {
            (Some(from), Some(to)) => Some((from - 1 - (to - from), from - 1)),
            _ => None,
        }),
    }
}

pub(super) fn filter_of(a: &crate::app::cli::CaseloadArgs) -> Result<crate::domain::episodes::Filter> {
    let (from, to) = (parse_day("--from", &a.from)?, parse_day("--to", &a.to)?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Error::Usage(format!(
                "--from {} is after --to {}: no episode could be kept; give the earlier date to --from",
                a.from.as_deref().unwrap_or_default(),
                a.to.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(crate::domain::episodes::Filter { therapists: a.therapist.clone(), sites: a.site.clone(), from, to })
}
