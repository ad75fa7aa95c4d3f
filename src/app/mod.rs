//! The only orchestrator: resolve options → ingest → validate → compute → render →
//! write. Each subcommand is one function here; `load` reads and checks the input,
//! `pipeline` runs the analyses and writes their files.

pub mod cli;
pub mod demo;
mod load;
mod pipeline;
mod progress;

pub use load::{load, load_registry, resolve, Loaded, RunConfig};
pub use progress::Progress;

use load::*;
use pipeline::*;

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
    earlier_period(&args.caseload, &filter)?;
    let sg = &args.sudden_gains;
    if sg.sg_no_crit1 && sg.sg_no_crit2 && sg.sg_no_crit3 {
        return Err(Error::Usage(
            "--sg-no-crit1, --sg-no-crit2 and --sg-no-crit3 together leave no criterion: every interval would be \
             a sudden gain; keep at least one"
                .into(),
        ));
    }
    check_disclosure_flags(args)?;
    let mut cfg = resolve(&args.input)?;
    if args.no_standards {
        cfg.registry = cfg.registry.without_standards();
    }
    if args.publish {
        check_publish_folder(&cfg.out)?;
    }
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
    let practice = analysis(&loaded, &cfg, args, &filter, &progress, &cfg.out, None)?;
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
            let unit = Pack { practice: &practice, kind, unit: name };
            analysis(&loaded, &cfg, args, &f, &progress, &pack, Some(unit))?;
        }
    }
    progress.done(&closing_line(&practice.summary, &cfg.out));
    Ok(())
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
