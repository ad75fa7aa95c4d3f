//! Command-line flags, as close to what the user types as possible; `app` resolves them.

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Do clients get better, and stay better? Outcome figures from anonymized
/// session-by-session questionnaire scores.
#[derive(Debug, Parser)]
#[command(name = "sustain", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse the input and write every table, summary.json and report.html.
    ///
    /// Input is a folder holding measurements.csv (or .parquet) and optionally
    /// goals.csv (or .parquet), or the files named with --measurements and --goals. A
    /// table may also be a folder of part files (measurements/part-000.parquet, …), read
    /// in name order as one table.
    /// Rejected rows are listed in rejected.csv and do not make the run fail.
    Analyze(Box<AnalyzeArgs>),
    /// Check the input only: write rejected.csv and data_quality.json, nothing else.
    Validate(InputArgs),
    /// List the measure registry: ranges, directions, cut-offs, reliable change, sources.
    Measures(MeasuresArgs),
    /// Write realistic synthetic data in the contract's layout.
    Demo(DemoArgs),
    /// Turn FHIR Observations of questionnaire totals into a measurements table.
    ///
    /// Reads NDJSON (a bulk export: one resource per line), a Bundle, or one resource.
    /// Each Observation with status final, amended or corrected, a patient reference, an
    /// instrument code the registry knows (LOINC or SNOMED CT, or any alias), a day and a
    /// value becomes a row of OUT/measurements.csv; every other resource is listed in
    /// OUT/import_rejected.csv with its line (or Bundle entry) and reason. Patient and
    /// practitioner references become keys by HMAC-SHA256 with the key in --key-file, so
    /// the same key gives the same pseudonyms in every import; nothing else of the record
    /// is copied. Then run `sustain analyze OUT`.
    ImportFhir(ImportFhirArgs),
}

#[derive(Debug, Args)]
pub struct ImportFhirArgs {
    /// FHIR JSON files: NDJSON, a Bundle, or one resource.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// A file holding the practice's secret key (at least 16 bytes; surrounding white
    /// space is ignored), for example made by `openssl rand -hex 32`. Keep it: the same
    /// key gives the same pseudonyms next time, and without it they cannot be traced back.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,

    /// The folder to write measurements.csv and import_rejected.csv into. It must not
    /// hold a measurements table already.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// A TOML file that overrides or adds instruments (their codes included).
    #[arg(long, value_name = "FILE")]
    pub measures: Option<PathBuf>,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InputArgs {
    /// A folder holding measurements.{csv,parquet} and optionally goals.{csv,parquet}
    /// (each may instead be a folder of part files: measurements/, goals/).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The measurements table (.csv or .parquet, or a folder of part files); overrides
    /// the one in DIR.
    #[arg(long, value_name = "FILE")]
    pub measurements: Option<PathBuf>,

    /// The goals table (.csv or .parquet, or a folder of part files); overrides the one in
    /// DIR.
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

    /// The order of day, month and year in the tables' dates: ymd is ISO 8601
    /// (2024-01-31, the contract), dmy day first (31/01/2024, UK), mdy month first
    /// (01/31/2024, US). Day and month may have one digit; the year needs four; `/`, `-`
    /// or `.` separate them. A time after the date is ignored.
    #[arg(long, value_enum, value_name = "ORDER", default_value_t = DateFormat::Ymd)]
    pub date_format: DateFormat,

    /// The character encoding of CSV tables: utf-8 (the contract), or windows-1252 for
    /// an export saved by an older Windows program. A line that is not UTF-8 in a UTF-8
    /// file is rejected on its own (not_utf8); a file most of whose lines are stops the run.
    #[arg(long, value_enum, value_name = "ENCODING", default_value_t = TextEncoding::Utf8)]
    pub encoding: TextEncoding,

    /// Goal ratings held in memory at once. A longer goals table goes through temporary
    /// files (in TMPDIR, deleted at the end; about 85 bytes a rating at the peak) and is
    /// analysed a run of whole clients at a time; and with more than about four times N
    /// measurement rows (judged from the file before it is read), the goals are read after
    /// the measurements are sorted rather than beside them. The results are the same.
    #[arg(long, value_name = "N", default_value_t = crate::input::goal_rows::DEFAULT_BUDGET, value_parser = clap::value_parser!(usize))]
    pub memory_rows: usize,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextEncoding {
    #[value(name = "utf-8")]
    Utf8,
    #[value(name = "windows-1252")]
    Windows1252,
}

impl From<TextEncoding> for crate::input::ingest::Encoding {
    fn from(e: TextEncoding) -> Self {
        match e {
            TextEncoding::Utf8 => crate::input::ingest::Encoding::Utf8,
            TextEncoding::Windows1252 => crate::input::ingest::Encoding::Windows1252,
        }
    }
}

/// `--date-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DateFormat {
    Ymd,
    Dmy,
    Mdy,
}

impl From<DateFormat> for crate::domain::dates::DateOrder {
    fn from(f: DateFormat) -> Self {
        match f {
            DateFormat::Ymd => crate::domain::dates::DateOrder::Ymd,
            DateFormat::Dmy => crate::domain::dates::DateOrder::Dmy,
            DateFormat::Mdy => crate::domain::dates::DateOrder::Mdy,
        }
    }
}

/// Ended and open episodes on a live export.
#[derive(Debug, Args)]
#[command(next_help_heading = "Ended and open episodes")]
pub struct LiveArgs {
    /// The extract date: the day the export was taken. Episodes are judged ended or open
    /// (in treatment) on it, and only ended ones count in outcome figures
    /// [default: the latest date in the measurements].
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub as_of: Option<String>,

    /// An episode with no end date, end-phase score or follow-up has ended when its last
    /// score is more than this many days before the extract date; until then it is open.
    #[arg(long, value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(i32).range(1..))]
    pub inactive_days: i32,

    /// In current.csv, an open episode whose last score is more than this many days
    /// before the extract date needs attention (no_score_for_N_days).
    #[arg(long, value_name = "DAYS", default_value_t = 28, value_parser = clap::value_parser!(i32).range(1..))]
    pub no_score_days: i32,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub live: LiveArgs,

    /// Results to publish outside the practice: statistical disclosure control on every
    /// output (NHS practice). Counts of people or episodes below --suppress-below are
    /// withheld, with every rate built on them, in every table, chart, label and JSON
    /// value; counts are rounded to --round-to; tables of single episodes and clients,
    /// client pages and the list of clients needing attention are not written. Flags are
    /// never withheld. Without it every count is exact: results for internal use.
    #[arg(long)]
    pub publish: bool,

    /// With --publish: counts below N are withheld [default: 5, as NHS publications].
    #[arg(long, value_name = "N")]
    pub suppress_below: Option<u64>,

    #[command(flatten)]
    pub sudden_gains: SuddenGainArgs,

    #[command(flatten)]
    pub follow_up: FollowUpArgs,

    #[command(flatten)]
    pub trajectories: TrajectoryArgs,

    #[command(flatten)]
    pub caseload: CaseloadArgs,

    /// Leave out the published standards the headline rates are set beside (NHS Talking
    /// Therapies' recovery standard and the national targets; docs/METHODS.md §7).
    #[arg(long)]
    pub no_standards: bool,

    /// Also write every chart as a PNG file (charts/NAME.png), for slides and documents.
    #[arg(long)]
    pub png: bool,

    /// Also write a page for this client (client_ID.html) for a clinician's review; repeatable.
    #[arg(long, value_name = "ID")]
    pub client: Vec<String>,

    /// Also write one complete set of results per therapist (or site) for supervision,
    /// in DIR/by_therapist/ID/ (or by_site).
    #[arg(long, value_enum, help_heading = "Caseload, supervision and filters")]
    pub by: Option<UnitKind>,

    /// GBO reliable change in points (NHS England MHSDS: 3; Edbrooke-Childs 2015: 2.45).
    #[arg(long, value_name = "POINTS", default_value_t = 3.0, value_parser = positive, help_heading = "Goals")]
    pub gbo_reliable_change: f64,

    /// GAS inter-goal correlation rho in the Kiresuk-Sherman T-score.
    #[arg(long, value_name = "RHO", default_value_t = 0.3, value_parser = zero_to_one, help_heading = "Goals")]
    pub gas_rho: f64,
}

/// Caseload and supervision.
#[derive(Debug, Args)]
#[command(next_help_heading = "Caseload, supervision and filters")]
pub struct CaseloadArgs {
    /// With --publish: round the counts not withheld to the nearest N [default: 5, as NHS
    /// publications do; 1: no rounding].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub round_to: Option<u64>,

    /// How funnel limits allow for variation between units beyond chance: by default
    /// additive (τ²) when 15 or more units have paired episodes, none for fewer.
    #[arg(long, value_enum, default_value_t = Overdispersion::Auto)]
    pub overdispersion: Overdispersion,

    /// Trend cohorts by the month or the quarter of the final score.
    #[arg(long, value_enum, default_value_t = TrendPeriod::Month)]
    pub trend_period: TrendPeriod,

    /// Only episodes whose therapist is one of these keys.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub therapist: Vec<String>,

    /// Only episodes whose site is one of these keys.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub site: Vec<String>,

    /// Only episodes whose final (or only) score is on or after this date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<String>,

    /// Only episodes whose final (or only) score is on or before this date.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<String>,

    /// Set the headline rates beside those of this earlier period (final scores from FROM
    /// to TO). With --from and --to the default is the period of the same length just
    /// before them.
    #[arg(long, value_name = "FROM..TO")]
    pub compare_to: Option<String>,
}

/// Trajectories and expected treatment response.
#[derive(Debug, Args)]
#[command(next_help_heading = "Trajectories and expected response")]
pub struct TrajectoryArgs {
    /// Early response means reliable improvement by this many sessions after baseline.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..))]
    pub early_session: i32,

    /// Intake-severity bands (quantiles of the baseline) for the expected-response curves (1 to 100).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100))]
    pub etr_bands: usize,

    /// Not on track: worse than this percentile of similar clients at the same session.
    #[arg(long, value_name = "PERCENT", default_value_t = 75.0, value_parser = percent)]
    pub etr_percentile: f64,

    /// Fewest other episodes at a session for an expected-response point.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub etr_min_n: usize,
}

impl TrajectoryArgs {
    pub fn options(&self) -> crate::analyses::trajectories::Options {
        crate::analyses::trajectories::Options {
            early_session: self.early_session,
            bands: self.etr_bands,
            percentile: self.etr_percentile,
            min_n: self.etr_min_n,
        }
    }
}

/// Follow-up: whether change lasted after treatment.
#[derive(Debug, Args)]
#[command(next_help_heading = "Follow-up and relapse")]
pub struct FollowUpArgs {
    /// Follow-up windows, in months after the last treatment score.
    #[arg(long, value_name = "MONTHS", value_delimiter = ',', default_value = "3,6,12", value_parser = positive)]
    pub followup_months: Vec<f64>,

    /// A follow-up score belongs to the nearest window within this many days of its target.
    #[arg(long, value_name = "DAYS", default_value_t = 45, value_parser = clap::value_parser!(i32).range(0..))]
    pub followup_tolerance_days: i32,

    /// The end state held if this many last treatment scores were all below caseness.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub held_scores: usize,

    /// Who enters the time-to-relapse analysis: recovered at the end (event: back at
    /// caseness) or reliably improved at the end (event: reliable improvement lost).
    #[arg(long, value_enum, default_value_t = Cohort::Recovered)]
    pub survival_cohort: Cohort,
}

impl FollowUpArgs {
    pub fn options(&self) -> crate::analyses::followup::Options {
        // Windows in increasing order, each once: a window given twice would never be the
        // nearest, and the tables list windows in this order.
        let mut months = self.followup_months.clone();
        months.sort_by(f64::total_cmp);
        months.dedup();
        crate::analyses::followup::Options {
            months,
            tolerance_days: self.followup_tolerance_days,
            held_scores: self.held_scores,
            cohort: self.survival_cohort.into(),
        }
    }
}

/// Sudden gains and losses: the options of the R package suddengains 0.7.2, with its defaults.
#[derive(Debug, Args)]
#[command(next_help_heading = "Sudden gains (Tang & DeRubeis 1999; suddengains 0.7.2)")]
pub struct SuddenGainArgs {
    /// Criterion 1: a change of at least this many points [default: the measure's reliable-change threshold].
    #[arg(long, value_name = "POINTS", value_parser = positive, conflicts_with_all = ["sg_no_crit1", "sg_cutoff_reliability"])]
    pub sg_cutoff: Option<f64>,

    /// Criterion 1 from a reliability, as define_crit1_cutoff: 1.96 · √2 · SD · √(1 − r).
    #[arg(long, value_name = "R", value_parser = zero_to_one)]
    pub sg_cutoff_reliability: Option<f64>,

    /// The SD for --sg-cutoff-reliability [default: SD of the measure's baseline scores].
    #[arg(long, value_name = "SD", value_parser = positive, requires = "sg_cutoff_reliability")]
    pub sg_cutoff_sd: Option<f64>,

    /// Switch criterion 1 off.
    #[arg(long)]
    pub sg_no_crit1: bool,

    /// Criterion 2: a change of at least this share of the pregain score.
    #[arg(long, value_name = "SHARE", default_value_t = 0.25, value_parser = non_negative)]
    pub sg_pct: f64,

    /// Switch criterion 2 off.
    #[arg(long)]
    pub sg_no_crit2: bool,

    /// Switch criterion 3 (the mean-difference t test) off.
    #[arg(long)]
    pub sg_no_crit3: bool,

    /// Criterion 3's alpha.
    #[arg(long, value_name = "ALPHA", default_value_t = 0.05, value_parser = probability)]
    pub sg_alpha: f64,

    /// Use this fixed critical value in criterion 3 instead of t adjusted to the scores available.
    #[arg(long, value_name = "T", value_parser = positive)]
    pub sg_critical_value: Option<f64>,

    /// The session number at the first position of every series (0 = assessment).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sg_start_session: i32,

    /// Number positions from 0 (the package's identify_sg_1to2); false moves the start of the
    /// reversal scan one score later, as the package's default numbering does.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub sg_identify_1to2: bool,

    /// Which gain (and loss) to keep per episode in sudden_gains_byclient.csv.
    #[arg(long, value_enum, default_value_t = Select::First)]
    pub sg_select: Select,

    /// Test sudden losses' criterion 2 as identify_sl does (a documented defect) instead of mirrored.
    #[arg(long)]
    pub sl_crit2_package: bool,
}

impl SuddenGainArgs {
    /// The resolved options.
    pub fn options(&self) -> crate::analyses::sudden_gains::Options {
        use crate::analyses::sudden_gains::{Criteria, Options};
        Options {
            criteria: Criteria {
                cutoff: self.sg_cutoff,
                pct: (!self.sg_no_crit2).then_some(self.sg_pct),
                crit3: !self.sg_no_crit3,
                alpha: self.sg_alpha,
                adjust: self.sg_critical_value.is_none(),
                critical_value: self.sg_critical_value.unwrap_or(2.776),
                identify_1to2: self.sg_identify_1to2,
                rise_pct_as_package: self.sl_crit2_package,
            },
            crit1: !self.sg_no_crit1,
            cutoff_reliability: self.sg_cutoff_reliability.map(|r| (r, self.sg_cutoff_sd)),
            start_session: self.sg_start_session,
            select: self.sg_select.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

/// Lists the registry. A measure file has one `[[measure]]` table per instrument:
/// `code`, and any of `name`, `min`, `max`, `better` ("lower"/"higher"), `cutoff` (fixed) or
/// `cutoff_method` ("a", "b", "c" with `functional_mean`, `functional_sd`),
/// `reliable_change` (points) or `reliability` (with optional `sd`, `rci_method` "jt",
/// "gln", "hll", "en" or "nk", and `reliability_post` for "nk"), `remission_below`,
/// `aliases`, `snomed` (a SNOMED CT concept id) and `loinc` (a LOINC code), both checked
/// by their check digits and accepted in the `measure` column, `source`.
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

    /// How many therapists the simulated practice has (T02 and T05 do better than the
    /// others, T07 worse).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub therapists: u32,

    /// How many sites: therapist k works at site k mod N.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub sites: u32,

    /// Write each table as this many part files in a folder (`measurements/part-000.csv`, …),
    /// clients assigned to parts by a hash of their id, as a partitioned export would be.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parts: Option<u32>,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

// Parsers for numeric flags: a value outside what the method defines is refused by clap
// with the flag's name and the rule (exit 2) instead of reaching an analysis, where it
// panicked (an alpha of 2) or quietly gave nonsense (a NaN share, a negative cut-off).

fn number(s: &str) -> Result<f64, String> {
    let x: f64 = s.trim().parse().map_err(|_| "not a number".to_string())?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err("must be a finite number".to_string())
    }
}

fn within(s: &str, ok: impl Fn(f64) -> bool, rule: &str) -> Result<f64, String> {
    let x = number(s)?;
    if ok(x) {
        Ok(x)
    } else {
        Err(format!("must be {rule}"))
    }
}

/// A number above 0 (thresholds in points, months, SDs, critical values).
fn positive(s: &str) -> Result<f64, String> {
    within(s, |x| x > 0.0, "greater than 0")
}

/// A number of at least 0 (a share of the pregain score).
fn non_negative(s: &str) -> Result<f64, String> {
    within(s, |x| x >= 0.0, "0 or more")
}

/// A correlation or reliability between 0 and 1.
fn zero_to_one(s: &str) -> Result<f64, String> {
    within(s, |x| (0.0..=1.0).contains(&x), "between 0 and 1")
}

/// A test's alpha: above 0 and below 1.
fn probability(s: &str) -> Result<f64, String> {
    within(s, |x| x > 0.0 && x < 1.0, "greater than 0 and less than 1")
}

/// A percentile, 0 to 100.
fn percent(s: &str) -> Result<f64, String> {
    within(s, |x| (0.0..=100.0).contains(&x), "between 0 and 100")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(flags: &[&str]) -> Result<AnalyzeArgs, clap::Error> {
        let args = ["sustain", "analyze"].iter().chain(flags);
        Cli::try_parse_from(args).map(|c| match c.command {
            Command::Analyze(a) => *a,
            other => panic!("parsed as {other:?}"),
        })
    }

    #[test]
    fn numeric_flags_outside_their_method_are_refused_by_name() {
        for (flag, value) in [
            ("--etr-percentile", "150"),
            ("--etr-percentile", "NaN"),
            ("--sg-alpha", "2"),
            ("--sg-alpha", "0"),
            ("--sg-pct", "NaN"),
            ("--sg-pct", "-0.1"),
            ("--sg-cutoff", "-1"),
            ("--sg-cutoff", "inf"),
            ("--sg-cutoff-reliability", "1.5"),
            ("--sg-critical-value", "0"),
            ("--gas-rho", "1.5"),
            ("--gas-rho", "NaN"),
            ("--gbo-reliable-change", "0"),
            ("--followup-months", "3,-6"),
            ("--followup-months", "inf"),
            ("--followup-tolerance-days", "-5"),
            ("--held-scores", "0"),
            ("--early-session", "0"),
            ("--etr-bands", "0"),
            ("--etr-bands", "1000000000"),
            ("--round-to", "0"),
        ] {
            let e = analyze(&[&format!("{flag}={value}")]).expect_err(&format!("{flag}={value} accepted"));
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{flag}={value}");
            assert!(e.to_string().contains(flag), "{flag}={value}: {e}");
        }
    }

    #[test]
    fn numeric_flags_at_the_ends_of_their_ranges_are_taken() {
        let a = analyze(&[
            "--etr-percentile=100",
            "--sg-pct=0",
            "--gas-rho=1",
            "--sg-cutoff-reliability=0",
            "--followup-tolerance-days=0",
            "--held-scores=1",
            "--round-to=1",
        ])
        .expect("accepted");
        assert_eq!((a.trajectories.etr_percentile, a.sudden_gains.sg_pct, a.gas_rho), (100.0, 0.0, 1.0));
        assert_eq!(a.follow_up.held_scores, 1);
        let d = analyze(&[]).expect("defaults");
        assert_eq!(d.follow_up.options().months, [3.0, 6.0, 12.0]);
        assert_eq!((d.sudden_gains.sg_alpha, d.trajectories.etr_bands, d.caseload.round_to), (0.05, 4, None));
    }

    #[test]
    fn follow_up_windows_are_put_in_order_once_each() {
        let a = analyze(&["--followup-months=12,3,6,3"]).expect("accepted");
        assert_eq!(a.follow_up.options().months, [3.0, 6.0, 12.0]);
    }
}

// The choices below mirror the analyses' own enums, so that the analyses know nothing of
// clap; each doc comment is its value's `--help` text.

/// `--by`: the unit a supervision pack is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnitKind {
    Therapist,
    Site,
}

/// `--overdispersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Overdispersion {
    /// Additive with 15 or more units, none with fewer.
    Auto,
    /// Exact binomial limits only.
    None,
    /// Spiegelhalter's additive random-effects τ² (DerSimonian–Laird) from 10 %-winsorised z-scores.
    Additive,
    /// Spiegelhalter's multiplicative φ from 10 %-winsorised z-scores.
    Multiplicative,
}

/// `None` is the analysis' own rule ([`crate::analyses::caseload::Options::overdispersion`]).
impl From<Overdispersion> for Option<crate::stats::rates::Overdispersion> {
    fn from(o: Overdispersion) -> Self {
        use crate::stats::rates::Overdispersion as O;
        match o {
            Overdispersion::Auto => None,
            Overdispersion::None => Some(O::None),
            Overdispersion::Additive => Some(O::Additive),
            Overdispersion::Multiplicative => Some(O::Multiplicative),
        }
    }
}

/// `--trend-period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrendPeriod {
    Month,
    Quarter,
}

impl From<TrendPeriod> for crate::analyses::caseload::TrendPeriod {
    fn from(p: TrendPeriod) -> Self {
        match p {
            TrendPeriod::Month => Self::Month,
            TrendPeriod::Quarter => Self::Quarter,
        }
    }
}

/// `--survival-cohort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cohort {
    /// Recovered at the end; the event is relapse (back at caseness).
    Recovered,
    /// Reliably improved at the end; the event is the loss of reliable improvement.
    Improved,
}

impl From<Cohort> for crate::analyses::followup::Cohort {
    fn from(c: Cohort) -> Self {
        match c {
            Cohort::Recovered => Self::Recovered,
            Cohort::Improved => Self::Improved,
        }
    }
}

/// `--sg-select`: suddengains' `multiple_sg_select`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Select {
    First,
    Last,
    Smallest,
    Largest,
}

impl From<Select> for crate::analyses::sudden_gains::Select {
    fn from(s: Select) -> Self {
        match s {
            Select::First => Self::First,
            Select::Last => Self::Last,
            Select::Smallest => Self::Smallest,
            Select::Largest => Self::Largest,
        }
    }
}
