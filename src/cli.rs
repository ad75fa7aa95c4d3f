//! Command-line flags, as close to what the user types as possible; `app` resolves them.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Do clients get better, and stay better? Outcome figures from anonymized
/// session-by-session questionnaire scores.
#[derive(Debug, Parser)]
#[command(
    name = "sustain",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse the input and write every table, summary.json and report.html.
    ///
    /// Input is a folder holding measurements.csv (or .parquet) and optionally
    /// goals.csv (or .parquet), or the files named with --measurements and --goals.
    /// Rejected rows are listed in rejected.csv and do not make the run fail.
    Analyze(AnalyzeArgs),
    /// Check the input only: write rejected.csv and data_quality.json, nothing else.
    Validate(InputArgs),
    /// List the measure registry: ranges, directions, cut-offs, reliable change, sources.
    Measures(MeasuresArgs),
    /// Write realistic synthetic data in the contract's layout.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// A folder holding measurements.{csv,parquet} and optionally goals.{csv,parquet}.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The measurements table (.csv or .parquet); overrides the one in DIR.
    #[arg(long, value_name = "FILE")]
    pub measurements: Option<PathBuf>,

    /// The goals table (.csv or .parquet); overrides the one in DIR.
    #[arg(long, value_name = "FILE")]
    pub goals: Option<PathBuf>,

    /// A TOML file that overrides or adds instruments (see `sustain measures --help`).
    #[arg(long, value_name = "FILE")]
    pub measures: Option<PathBuf>,

    /// Where to write the results; created if missing. Files of the same names are replaced.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,

    /// The date that counts as today for rejecting dates in the future [default: today, UTC].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub today: Option<String>,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// In the report, show counts below this as "<N" and suppress the rates built on them
    /// (NHS practice; 0 turns suppression off). Per-episode tables are never suppressed.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub suppress_below: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

/// Lists the registry. A measure file has one `[[measure]]` table per instrument:
/// `code`, and any of `name`, `min`, `max`, `better` ("lower"/"higher"), `cutoff` (fixed) or
/// `cutoff_method` ("a", "b", "c" with `functional_mean`, `functional_sd`),
/// `reliable_change` (points) or `reliability` (with optional `sd`), `remission_below`,
/// `aliases`, `source`.
#[derive(Debug, Args)]
pub struct MeasuresArgs {
    /// A TOML file that overrides or adds instruments.
    #[arg(long, value_name = "FILE")]
    pub measures: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DataFormat {
    Csv,
    Parquet,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many clients to simulate.
    #[arg(long, default_value_t = 300)]
    pub clients: u64,

    /// Seed of the random generator: the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Where to write measurements, goals and the simulation's ground truth.
    #[arg(long, value_name = "DIR", default_value = "data/demo")]
    pub out: PathBuf,

    /// File format of the tables.
    #[arg(long, value_enum, default_value_t = DataFormat::Csv)]
    pub format: DataFormat,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}
