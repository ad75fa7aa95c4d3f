//! The only orchestrator: resolve options → ingest → validate → compute → render →
//! write. Each subcommand is one function here.

pub mod cli;
pub mod demo;
mod progress;

pub use progress::Progress;

use crate::analyses::summary::{summarise, Summary, TableCounts};
use crate::app::cli::{AnalyzeArgs, Cli, Command, InputArgs, ListFormat, MeasuresArgs};
use crate::domain::columns::{GoalNames, Keys, Measurements, Rejection, Table};
use crate::domain::dates::{parse_iso_date, today_utc, DateOrder, Day};
use crate::domain::episodes::{Episodes, SeriesRows};
use crate::domain::registry::Registry;
use crate::error::{Error, Result};
use crate::input::goal_rows::GoalRows;
use crate::input::ingest::{self, TableReader};
use crate::output::staging::{write_all, OutputFile, Staging};
use crate::output::tables::{self, RejectedLine};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Runs one command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Analyze(args) => analyze(&args),
        Command::Validate(args) => validate(&args),
        Command::Measures(args) => list_measures(&args),
        Command::Demo(args) => crate::app::demo::run(&args),
        Command::ImportFhir(args) => import_fhir(&args),
    }
}

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
fn find_table(dir: &Path, stem: &str, quiet: bool) -> Option<PathBuf> {
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
fn check_output_folder<'a>(out: &Path, inputs: impl Iterator<Item = &'a PathBuf>) -> Result<()> {
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
fn counts(raw: &TableReader) -> TableCounts {
    TableCounts {
        file: raw.path.display().to_string(),
        rows_read: raw.records_read(),
        rows_used: raw.records_read(),
        rows_rejected: 0,
        ignored_columns: raw.ignored.clone(),
    }
}

fn warn_ignored(raw: &TableReader, quiet: bool) {
    if !raw.ignored.is_empty() && !quiet {
        eprintln!(
            "sustain: warning: {} has columns that are not in the contract and are ignored: {}",
            raw.path.display(),
            raw.ignored.join(", ")
        );
    }
}

/// Names the measures whose series were not searched for sudden gains because no
/// switched-on criterion applies to them (see [`crate::analyses::sudden_gains::MeasureTally`]).
fn warn_no_criterion(sg: Option<&crate::analyses::summary::SuddenGainsSummary>, progress: &Progress, quiet: bool) {
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
        crate::tuning::return_freed_memory();
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
    let read_goals = |yielding: Option<&crate::tuning::Yielding>| {
        cfg.goals.as_deref().map(|path| {
            if !side_by_side {
                progress.stage("reading, validating and screening goal rows");
            }
            progress.part("reading and validating the goals", || -> Result<_> {
                let mut raw = TableReader::open_encoded(path, Table::Goals, cfg.encoding)?;
                warn_ignored(&raw, quiet);
                let (g, rej) = ingest::goals(&mut raw, cfg.dates, cfg.memory_rows, yielding)?;
                Ok((g, rej, counts(&raw), raw.files().clone()))
            })
        })
    };
    // The goals on a thread of their own and the measurements on this one, neither of them
    // rayon's: each waits on its reader's blocks and hands their validation to rayon's
    // threads, the goals' to threads of the lowest priority until the measurements are
    // sorted. So the goals take the CPU the measurements leave (the serial steps of their
    // reading, and the sort, which left a core idle when the two shared the cores evenly).
    let (measurements, goals) = if side_by_side {
        let yielding = crate::tuning::Yielding::new();
        std::thread::scope(|s| {
            let goals = s.spawn(|| read_goals(Some(&yielding)));
            let measurements = read_measurements();
            yielding.stop();
            (measurements, goals.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        })
    } else {
        (read_measurements(), None)
    };
    // The measurements' refusal first, as when the goals were read after them.
    let ((keys, mut episodes, rows, left_out), mut rejections, measurement_counts, source) = measurements?;
    let goals = if side_by_side { goals } else { read_goals(None) };
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
fn into_series(
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
fn rejected_file(loaded: &Loaded) -> Result<Vec<u8>> {
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

fn json(value: &impl serde::Serialize) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("summary serialises");
    bytes.push(b'\n');
    bytes
}

fn closing_line(s: &Summary, out: &Path) -> String {
    format!(
        "sustain: {} rows read, {} used, {} rejected; {} episodes of {} clients; results in {}",
        s.rows_read,
        s.rows_used,
        s.rows_rejected,
        s.episodes,
        s.clients,
        out.display()
    )
}

/// `sustain analyze`.
pub fn analyze(args: &AnalyzeArgs) -> Result<()> {
    let quiet = args.input.quiet;
    // Flags are checked before a row is read.
    let filter = filter_of(&args.caseload)?;
    let sg = &args.sudden_gains;
    if sg.sg_no_crit1 && sg.sg_no_crit2 && sg.sg_no_crit3 {
        return Err(Error::Usage(
            "--sg-no-crit1, --sg-no-crit2 and --sg-no-crit3 together leave no criterion: every interval would be \
             a sudden gain; keep at least one"
                .into(),
        ));
    }
    let mut cfg = resolve(&args.input)?;
    cfg.ending = crate::domain::episodes::EndRule {
        as_of: parse_day("--as-of", &args.live.as_of)?,
        inactive_days: args.live.inactive_days,
    };
    let progress = Progress::new(quiet);
    let loaded = load(&cfg, &progress, quiet)?;
    check_loaded(&loaded, &cfg, args, &filter)?;
    if !quiet && loaded.episodes.items.iter().all(|it| !it.ended()) {
        let x = loaded.episodes.extract;
        progress.warn(&format!(
            "no episode has ended on the extract date {}, so every outcome rate is empty; if these data are a \
             finished study, give --as-of a date more than {} days after the last score (or mark the last \
             scores phase `end`)",
            crate::domain::dates::format_day(x.as_of),
            x.inactive_days
        ));
    }
    let (summary, practice) = analysis(&loaded, &cfg, args, &filter, &progress, &cfg.out, None)?;
    if let Some(by) = args.by {
        // One report per unit for supervision, each in its own folder.
        let (kind, interner) = match by {
            cli::UnitKind::Site => ("site", &loaded.keys.sites),
            cli::UnitKind::Therapist => ("therapist", &loaded.keys.therapists),
        };
        let mut names: Vec<&str> = (0..interner.len() as u32).map(|i| interner.name(i)).collect();
        names.sort_unstable();
        let folders = unique_file_names(names.iter().copied());
        for (name, folder) in names.into_iter().zip(folders) {
            progress.stage(format!("report for {kind} {name}"));
            let mut f = filter.clone();
            if kind == "site" {
                f.sites = vec![name.to_string()];
            } else {
                f.therapists = vec![name.to_string()];
            }
            let pack = cfg.out.join(format!("by_{kind}")).join(folder);
            analysis(&loaded, &cfg, args, &f, &progress, &pack, Some(&practice))?;
        }
    }
    progress.done(&closing_line(&summary, &cfg.out));
    Ok(())
}

/// Refuses, before anything is written, a run that cannot mean anything: an extract date
/// before the data's last date, a table most of whose rows were rejected for one reason,
/// no usable measurement, or a filter that matches nothing.
fn check_loaded(
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
const MOST_REJECTED: &str = "sustain stops when more than half of a table's rows are rejected for one reason";

fn check_rejections(loaded: &Loaded, cfg: &RunConfig) -> Result<()> {
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
fn check_filter(loaded: &Loaded, filter: &crate::domain::episodes::Filter) -> Result<()> {
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

/// A key as a file or folder name: letters, digits, `-` and `_` kept, anything else `_`.
fn safe_file_name(key: &str) -> String {
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
fn unique_file_names<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
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
type PracticeCurrent = BTreeMap<(u32, u32, u16), crate::analyses::current::Current>;

/// Every analysis of one run on loaded data, restricted by `filter`, written to `out`;
/// returns the summary and the current caseload. A unit's pack (`--by`) is given the
/// practice's current caseload (`practice`).
fn analysis(
    loaded: &Loaded,
    cfg: &RunConfig,
    args: &AnalyzeArgs,
    filter: &crate::domain::episodes::Filter,
    progress: &Progress,
    out: &Path,
    practice: Option<&PracticeCurrent>,
) -> Result<(Summary, PracticeCurrent)> {
    let in_pack = practice.is_some();
    // Episodes were built on every row while loading; a filter keeps some (the rules stay
    // as resolved on all data).
    let episodes: std::borrow::Cow<Episodes> = if filter.is_empty() {
        std::borrow::Cow::Borrowed(&loaded.episodes)
    } else {
        let mut kept = loaded.episodes.clone();
        filter.apply(&loaded.keys, &mut kept);
        std::borrow::Cow::Owned(kept)
    };
    let settings = Settings {
        current: crate::analyses::current::Options { no_score_days: args.live.no_score_days },
        trajectories: args.trajectories.options(),
        sudden_gains: args.sudden_gains.options(),
        follow_up: args.follow_up.options(),
        caseload: crate::analyses::caseload::Options {
            suppression: crate::stats::rates::Suppression {
                threshold: args.suppress_below,
                round_to: args.caseload.round_to,
            },
            overdispersion: args.caseload.overdispersion.into(),
            period: args.caseload.trend_period.into(),
        },
        goals: crate::analyses::goals::Options { gbo_reliable_change: args.gbo_reliable_change, gas_rho: args.gas_rho },
    };
    // The series of each `--client`, found before the long work so that a wrong id fails fast.
    let client_series = client_series(&loaded.keys, &episodes, &args.client, !in_pack)?;
    let for_clients: BTreeSet<usize> = client_series.iter().flat_map(|(_, items)| items.iter().copied()).collect();
    let staging = Staging::new(out)?;
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
    let key = |c: &crate::analyses::current::Current| {
        let it = &episodes.items[c.item];
        (it.client, it.episode, it.measure)
    };
    if let Some(practice) = practice {
        for c in &mut r.current {
            if let Some(p) = practice.get(&key(c)) {
                *c = crate::analyses::current::Current { item: c.item, ..p.clone() };
            }
        }
        r.summary.current = Some(crate::analyses::current::summarise(&r.current, &settings.current));
    }
    warn_no_criterion(r.summary.sudden_gains.as_ref(), progress, args.input.quiet);
    let (reg, supp) = (&cfg.registry, settings.caseload.suppression);
    progress.stage("drawing the charts");
    let figures = crate::output::figures::all(&crate::output::figures::Inputs {
        eps: &episodes,
        registry: &cfg.registry,
        etr: &r.etr,
        curves: &r.curves,
        units: &r.units,
        periods: &r.periods,
        goal_progress: r.goal_figure,
        suppression: supp,
    });
    progress.stage("writing results");
    let attention = attention_rows(&loaded.keys, &episodes, &r.current, &settings.current, reg);
    let report = crate::output::report::render_html(&crate::output::report::ReportInput {
        summary: &r.summary,
        registry: &cfg.registry,
        suppress_below: args.suppress_below,
        figures: &figures,
        attention: &attention,
    });
    let client_pages = client_pages(
        loaded,
        cfg,
        &episodes,
        &client_series,
        &ClientResults {
            trajectories: &r.client_trajectories,
            etr: &r.etr,
            durability: &r.durability,
            gains: &r.gains,
        },
    );
    let current_opts = settings.current;
    let mut files: Vec<OutputFile> = vec![
        OutputFile::render("current.csv", |w| {
            tables::current_csv(w, &loaded.keys, &episodes, &r.current, &current_opts, reg)
        }),
        OutputFile::render("relapse_survival.csv", |w| tables::relapse_survival_csv(w, &r.curves, reg)),
        OutputFile::render("expected_response.csv", |w| tables::expected_response_csv(w, &r.etr, reg)),
        OutputFile::render("therapists.csv", |w| {
            tables::units_csv(w, &r.units, "therapist", &r.funnel_refs, &supp, reg)
        }),
        OutputFile::render("sites.csv", |w| tables::units_csv(w, &r.units, "site", &r.funnel_refs, &supp, reg)),
        OutputFile::render("trends.csv", |w| tables::trends_csv(w, &r.periods, &supp, reg)),
        OutputFile::new("summary.json", {
            let mut v = serde_json::to_value(&r.summary).expect("summary serialises");
            crate::analyses::summary::suppress_json(&mut v, args.suppress_below);
            json(&v)
        }),
        OutputFile::new("report.html", report.into_bytes()),
        OutputFile::new(
            "report.md",
            crate::output::report::render_markdown(&crate::output::report::ReportInput {
                summary: &r.summary,
                registry: &cfg.registry,
                suppress_below: args.suppress_below,
                figures: &[],
                attention: &attention,
            })
            .into_bytes(),
        ),
    ];
    files.extend(client_pages);
    if args.png {
        progress.stage("rasterising the charts");
        let fonts = crate::output::charts::system_fonts();
        for f in &figures {
            let bytes = crate::output::charts::png(&f.svg, &fonts)
                .map_err(|e| Error::Usage(format!("cannot draw chart {} as PNG: {e}", f.id)))?;
            files.push(OutputFile::new(format!("charts/{}.png", f.id), bytes));
        }
    }
    progress.stage("rendering and writing files");
    staging.write(files)?;
    staging.commit()?;
    // Kept for the packs that follow, if any.
    let current = match args.by {
        Some(_) if !in_pack => r.current.iter().map(|c| (key(c), c.clone())).collect(),
        _ => PracticeCurrent::new(),
    };
    Ok((r.summary, current))
}

/// The open episodes that need attention, as the report lists them: one row per episode
/// (its measures' scores side by side, its reasons most serious first), by therapist,
/// then by the most serious reason, then client.
fn attention_rows(
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
struct Settings {
    current: crate::analyses::current::Options,
    trajectories: crate::analyses::trajectories::Options,
    sudden_gains: crate::analyses::sudden_gains::Options,
    follow_up: crate::analyses::followup::Options,
    caseload: crate::analyses::caseload::Options,
    goals: crate::analyses::goals::Options,
}

/// What the analyses hand on to the charts, the report and the tables written last.
struct Results {
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
struct Stage<'a> {
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
type FollowedUp = (
    Vec<crate::analyses::followup::Durability>,
    Vec<crate::analyses::followup::Curve>,
    crate::analyses::summary::SustainedSummary,
);

/// The caseload: units, funnel references, periods and their summary.
type Caseload = (
    Vec<crate::analyses::caseload::Unit>,
    Vec<crate::analyses::caseload::FunnelReference>,
    Vec<crate::analyses::caseload::Period>,
    crate::analyses::summary::CaseloadSummary,
);

/// Trajectories: the expected-response curves, the `--client` series' trajectories, what
/// the current caseload needs of each open series, and their summary.
type Trajectories = (
    Vec<crate::analyses::trajectories::EtrPoint>,
    BTreeMap<usize, crate::analyses::trajectories::Trajectory>,
    Vec<(u32, crate::analyses::current::OpenSeries)>,
    crate::analyses::summary::TrajectorySummary,
);

/// Goals: whether their tables were written, their summary and figure.
type GoalResults = (Result<()>, crate::analyses::summary::GoalsSummary, Option<crate::output::figures::Figure>);

/// Runs the analyses on the episodes. They only read the episodes, so they run side by
/// side (follow-up first, then the caseload, which needs the durability flags); each also
/// summarises its own results and writes (stages) its own tables: follow-up scores, goal
/// results and trajectories are dropped there as they are written (they are large and
/// nothing later needs them, but the trajectories of the series in `for_clients`);
/// `episodes.csv` is written once the durability flags exist, beside the caseload; and
/// `rejected.csv`, which rereads the input for line numbers, by a task of its own.
fn run_analyses(cx: &Stage) -> Result<Results> {
    let (keys, reg, progress) = (&cx.loaded.keys, &cx.cfg.registry, cx.progress);
    let (mut tr, mut sg, mut fu, mut goal_results, mut base) = (None, None, None, None, None);
    let mut rejected = None;
    rayon::scope(|s| {
        // The idle core steals the oldest task, this one takes the newest once the summary
        // is done. So the longest chain (follow-up, then `episodes.csv` and the caseload)
        // is spawned first and sudden gains second, for the other core to take after it,
        // while this one does `rejected.csv`, trajectories, then goals: at 10 M rows the
        // two cores then finish together (sudden gains spawned fourth left one idle for
        // 0.8 s while the other did the goals; BENCHMARKS.md).
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
            summarise(cx.eps, reg, cx.loaded.inputs.clone(), &cx.loaded.rejections, keys.clients.len() as u64)
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
fn follow_up_and_caseload(cx: &Stage) -> Result<(FollowedUp, Caseload)> {
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
fn follow_up(cx: &Stage) -> Result<FollowedUp> {
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
fn sudden_gains(
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
fn goals(cx: &Stage, g: &GoalRows) -> GoalResults {
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
fn trajectories(cx: &Stage) -> Result<Trajectories> {
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
fn client_series<'a>(
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
struct ClientResults<'a> {
    /// The trajectories of the clients' series, by series.
    trajectories: &'a BTreeMap<usize, crate::analyses::trajectories::Trajectory>,
    etr: &'a [crate::analyses::trajectories::EtrPoint],
    durability: &'a [crate::analyses::followup::Durability],
    gains: &'a crate::analyses::sudden_gains::SuddenGains,
}

/// `client_<id>.html` for each `--client`: the client's episodes with their figures.
fn client_pages(
    loaded: &Loaded,
    cfg: &RunConfig,
    episodes: &Episodes,
    clients: &[(&str, Vec<usize>)],
    results: &ClientResults,
) -> Vec<OutputFile<'static>> {
    let mut client_pages = Vec::new();
    let file_names = unique_file_names(clients.iter().map(|(client, _)| *client));
    for ((client, items), file_name) in clients.iter().zip(file_names) {
        let pages: Vec<crate::output::report::ClientEpisode> = items
            .iter()
            .map(|&i| {
                let it = &episodes.items[i];
                let c = &it.classification;
                let t = &results.trajectories[&i];
                let d = &results.durability[i];
                let text = |x: Option<&str>| x.unwrap_or("–").replace('_', " ");
                crate::output::report::ClientEpisode {
                    episode: loaded.keys.episodes.name(it.episode).to_string(),
                    measure: cfg.registry.get(it.measure as usize).code.clone(),
                    facts: vec![
                        (
                            "on the extract date".into(),
                            match it.status().ended_by() {
                                Some(by) => format!("ended ({})", by.as_str().replace('_', " ")),
                                None => "in treatment (open): every figure here is so far, up to the latest score".into(),
                            },
                        ),
                        (
                            if it.ended() { "baseline → final" } else { "baseline → latest" }.into(),
                            format!(
                                "{} → {}",
                                tables::num(it.baseline),
                                it.final_score.map_or("–".into(), tables::num)
                            ),
                        ),
                        ("reliable change".into(), text(c.reliable_change.map(|r| r.as_str()))),
                        (
                            if it.ended() { "outcome" } else { "outcome so far" }.into(),
                            text(c.outcome.map(|o| o.as_str())),
                        ),
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
                    ],
                    figures: [
                        crate::output::figures::client_trajectory(&loaded.rows, episodes, results.gains, &cfg.registry, i),
                        crate::output::figures::client_vs_expected(&loaded.rows, episodes, results.etr, t, &cfg.registry, i),
                    ]
                    .into_iter()
                    .flatten()
                    .collect(),
                }
            })
            .collect();
        client_pages.push(OutputFile::new(
            format!("client_{file_name}.html"),
            crate::output::report::render_client(client, &pages).into_bytes(),
        ));
    }
    client_pages
}

/// Goals, restricted to the episodes the filter kept.
/// Which goal episodes (client, episode ids of the goal ratings) a run keeps: with a
/// filter, those with a symptom episode the filter kept; otherwise all.
fn goal_filter<'a>(
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

fn parse_day(flag: &str, v: &Option<String>) -> Result<Option<Day>> {
    v.as_deref()
        .map(|t| {
            parse_iso_date(t).map_err(|_| Error::Usage(format!("{flag} {t} is not a date of the form YYYY-MM-DD")))
        })
        .transpose()
}

fn filter_of(a: &crate::app::cli::CaseloadArgs) -> Result<crate::domain::episodes::Filter> {
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

/// `sustain validate`: the data-quality part of a run, quickly.
pub fn validate(args: &InputArgs) -> Result<()> {
    let cfg = resolve(args)?;
    let progress = Progress::new(args.quiet);
    let loaded = load(&cfg, &progress, args.quiet)?;
    let quality = serde_json::json!({
        "sustain_version": env!("CARGO_PKG_VERSION"),
        "rows_read": loaded.inputs.values().map(|t| t.rows_read).sum::<u64>(),
        "rows_used": loaded.inputs.values().map(|t| t.rows_used).sum::<u64>(),
        "rows_rejected": loaded.inputs.values().map(|t| t.rows_rejected).sum::<u64>(),
        "inputs": loaded.inputs,
        "rejections_by_reason": crate::analyses::summary::rejections_by_reason(&loaded.rejections),
        "clients": loaded.keys.clients.len(),
    });
    let files = vec![
        OutputFile::new("rejected.csv", rejected_file(&loaded)?),
        OutputFile::new("data_quality.json", json(&quality)),
    ];
    write_all(&cfg.out, files)?;
    progress.done(&format!(
        "sustain: {} rows read, {} rejected; see {}",
        quality["rows_read"],
        quality["rows_rejected"],
        cfg.out.join("rejected.csv").display()
    ));
    Ok(())
}

/// `sustain measures`.
/// `sustain import-fhir`: the Observations' measurements into `measurements.csv` in the
/// output folder, and every resource that holds none into `import_rejected.csv`.
pub fn import_fhir(args: &crate::app::cli::ImportFhirArgs) -> Result<()> {
    let registry = load_registry(args.measures.as_deref())?;
    let key = std::fs::read(&args.key_file)
        .map_err(|e| Error::Usage(format!("cannot read the key file {}: {e}", args.key_file.display())))?;
    let keys = crate::input::fhir::Pseudonyms::new(key.trim_ascii()).ok_or_else(|| {
        Error::Usage(format!(
            "the key file {} holds fewer than {} bytes; make one with `openssl rand -hex 32 > FILE` and keep it",
            args.key_file.display(),
            crate::input::fhir::MIN_KEY_BYTES
        ))
    })?;
    for table in ["measurements.csv", "measurements.parquet"] {
        if args.out.join(table).exists() {
            return Err(Error::Usage(format!(
                "{} already holds {table}; import into a folder of its own, so that no table is replaced. Nothing was written",
                args.out.display()
            )));
        }
    }
    let (mut rows, mut rejected) = (Vec::new(), Vec::new());
    for path in &args.files {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!(
                "cannot read {}: {e}\nit must be FHIR JSON in UTF-8: NDJSON (one resource per line), a Bundle or one resource",
                path.display()
            ))
        })?;
        for (record, resource) in crate::input::fhir::resources(&text) {
            match resource.and_then(|v| crate::input::fhir::observation(&v, &registry, &keys)) {
                Ok(row) => rows.push(row),
                Err(reason) => rejected.push((path.display().to_string(), record, reason)),
            }
        }
    }
    let (n_used, n_rejected) = (rows.len(), rejected.len());
    let measurements = OutputFile::render("measurements.csv", move |w| {
        let mut out = tables::CsvOut::new(w);
        out.write_record(["client_id", "therapist_id", "date", "measure", "score"])?;
        for r in &rows {
            out.write_record([&r.client_id, &r.therapist_id, &r.date, &r.measure, &tables::num(r.score)])?;
        }
        out.finish()
    });
    let rejected_file = OutputFile::render("import_rejected.csv", move |w| {
        let mut out = tables::CsvOut::new(w);
        out.write_record(["file", "record", "reason"])?;
        for (file, record, reason) in &rejected {
            out.write_record([file.as_str(), &record.to_string(), reason])?;
        }
        out.finish()
    });
    write_all(&args.out, vec![measurements, rejected_file])?;
    if !args.quiet {
        eprintln!(
            "sustain: {} resources read: {n_used} measurements written to {}, {n_rejected} rejected (import_rejected.csv)",
            n_used + n_rejected,
            args.out.join("measurements.csv").display()
        );
    }
    Ok(())
}

pub fn list_measures(args: &MeasuresArgs) -> Result<()> {
    let reg = load_registry(args.measures.as_deref())?;
    match args.format {
        ListFormat::Json => println!("{}", String::from_utf8(json(&reg.measures())).expect("utf-8")),
        ListFormat::Table => print!("{}", crate::output::report::registry_table(&reg)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_would_share_a_file_name_get_their_own() {
        let names = unique_file_names(["T 1", "T_1", "t_1", "T/1", "", "é", "T_1-2", "S1"]);
        assert_eq!(names, ["T_1", "T_1-2", "t_1-3", "T_1-4", "_", "_-2", "T_1-2-2", "S1"]);
    }
}
