//! Supervision: results for internal use show every count and every flag; `--publish`
//! applies disclosure control to every output and still never hides a flag.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze_on, demo, read_csv, read_json};
use predicates::str::contains;
use std::fs;
use std::path::{Path, PathBuf};

/// Eight therapists who reliably recover half of 40 clients each, and T9, who recovers 3
/// of 40: far below the practice, and a count below 5.
fn practice_with_one_low_therapist(dir: &Path) -> PathBuf {
    let mut text = String::from("client_id,therapist_id,date,measure,score\n");
    for t in 1..=9 {
        for c in 0..40 {
            let recovered = if t == 9 { c < 3 } else { c % 2 == 0 };
            let last = if recovered { 5 } else { 18 };
            text += &format!("T{t}C{c},T{t},2024-01-10,PHQ-9,20\nT{t}C{c},T{t},2024-03-10,PHQ-9,{last}\n");
        }
    }
    let path = dir.join("measurements.csv");
    fs::write(&path, text).unwrap();
    path
}

fn therapist<'a>(rows: &'a [common::Row], id: &str) -> &'a common::Row {
    rows.iter().find(|r| r["therapist_id"] == id && r["measure"] == "PHQ9").unwrap()
}

#[test]
fn a_therapist_with_3_recoveries_of_40_is_flagged_inside_the_practice_and_in_published_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = practice_with_one_low_therapist(dir.path());
    for extra in [&[][..], &["--publish"][..]] {
        let mut args = vec!["--as-of", "2025-01-01"];
        args.extend_from_slice(extra);
        let out = analyze_on("2025-01-01", &path, &args);
        let rows = read_csv(&out.path().join("therapists.csv"));
        let t9 = therapist(&rows, "T9");
        assert_eq!(t9["funnel_flag"], "below_99.8", "{extra:?}");
        assert_eq!(therapist(&rows, "T1")["funnel_flag"], "within", "{extra:?}");
        let summary = read_json(&out.path().join("summary.json"));
        let flagged = summary["caseload"]["outside_limits"].as_array().unwrap();
        let t9 = flagged.iter().find(|u| u["unit"] == "T9").expect("T9 is listed outside the limits");
        assert_eq!(t9["flag"], "below_99.8");
        let report = fs::read_to_string(out.path().join("report.html")).unwrap();
        assert!(report.contains("therapist T9 on PHQ9"), "{extra:?}: the report names T9");
        if extra.is_empty() {
            // Internal results: exact counts, the rate given.
            assert_eq!((t9["numerator"].as_u64(), t9["denominator"].as_u64()), (Some(3), Some(40)));
            assert_eq!(read_csv(&out.path().join("therapists.csv")).len(), 9);
            assert!(report.contains("3 of 40, 7.5 %"), "the report gives T9's rate");
        } else {
            // Published: the 3 is withheld with the rate, the flag is not.
            assert!(t9["numerator"].is_null() && t9["rate"].is_null(), "{t9}");
            assert_eq!(t9["denominator"], 40);
            assert_eq!(t9["suppressed"], serde_json::json!(["adjusted_rate", "numerator", "rate"]));
            assert!(t9["adjusted_rate"].is_null(), "a rate made from a withheld count is withheld");
            assert!(report.contains("&lt;5 of 40, rate withheld"), "the report withholds T9's rate");
        }
    }
}

#[test]
fn a_therapist_s_pack_names_the_therapist_and_sets_the_practice_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = practice_with_one_low_therapist(dir.path());
    let out = analyze_on("2025-01-01", &path, &["--as-of", "2025-01-01", "--by", "therapist"]);
    let read = |unit: &str| {
        let html = fs::read_to_string(out.path().join(format!("by_therapist/{unit}/report.html"))).unwrap();
        html.replace("&#x27;", "'")
    };
    let pack = read("T9");
    assert!(pack.contains("<h1>Outcome report: therapist T9</h1>"), "the pack names its unit");
    assert!(pack.contains("Therapist T9 beside the practice"));
    assert!(pack.contains("40 episodes of 40 clients"), "the pack counts its own clients");
    // T9's reliable recovery, the practice's (8 × 20 + 3 of 360), and T9's place in the funnel.
    assert!(pack.contains("3 of 40 (7.5 %)") && pack.contains("163 of 360 (45.3 %)"));
    assert!(pack.contains("below the practice's 99.8 % limit"));
    assert!(read("T1").contains("within the practice's limits"));
    // The pack's own tables judge T9 among the practice's therapists, not alone.
    let rows = read_csv(&out.path().join("by_therapist/T9/therapists.csv"));
    assert_eq!((rows.len(), rows[0]["funnel_flag"].as_str()), (1, "below_99.8"));
    let summary = read_json(&out.path().join("by_therapist/T9/summary.json"));
    assert_eq!(summary["caseload"]["outside_limits"][0]["unit"], "T9");
}

/// Flags follow the case-mix-adjusted rate: T9 takes only severe clients (PHQ-9 26 at
/// intake), who recover as often with T9 as with anyone (1 in 5), so its raw rate is low
/// but its adjusted rate is the practice's.
#[test]
fn a_therapist_with_severe_intake_and_an_average_adjusted_rate_is_not_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("client_id,therapist_id,date,measure,score\n");
    let mut client = |t: u32, c: u32, baseline: u32, last: u32| {
        text += &format!("T{t}C{c},T{t},2024-01-10,PHQ-9,{baseline}\nT{t}C{c},T{t},2024-03-10,PHQ-9,{last}\n");
    };
    for t in 1..=8 {
        for c in 0..20 {
            // Moderate intake: 14 of 20 recover; severe intake: 4 of 20.
            client(t, c, 12, if c < 14 { 4 } else { 12 });
            client(t, 20 + c, 26, if c < 4 { 5 } else { 24 });
        }
    }
    for c in 0..40 {
        client(9, c, 26, if c < 8 { 5 } else { 24 });
    }
    let path = dir.path().join("measurements.csv");
    fs::write(&path, text).unwrap();
    let out = analyze_on("2025-01-01", &path, &["--as-of", "2025-01-01"]);
    let rows = read_csv(&out.path().join("therapists.csv"));
    let t9 = therapist(&rows, "T9");
    assert_eq!(t9["reliable_recovery_rate"], "0.2");
    let adjusted: f64 = t9["adjusted_reliable_recovery"].parse().unwrap();
    let practice: f64 = t9["practice_reliable_recovery"].parse().unwrap();
    assert!((adjusted - practice).abs() < 0.02, "adjusted {adjusted}, practice {practice}");
    assert_eq!(t9["funnel_flag"], "within", "judged on its adjusted rate, not its raw 20 %");
    // On its raw rate it would be below the 95 % limit.
    let low: f64 = t9["funnel95_low"].parse().unwrap();
    assert!(0.2 < low, "{low}");
    // The summary says how many would fall outside by chance.
    let summary = read_json(&out.path().join("summary.json"));
    let funnel = &summary["caseload"]["funnels"].as_array().unwrap()[0]["units"];
    assert_eq!((funnel["with_episodes"].as_u64(), funnel["outside_95"].as_u64()), (Some(9), Some(0)));
    assert!((funnel["expected_outside_95"].as_f64().unwrap() - 0.45).abs() < 1e-12);
}

/// A number in running text that counts something: followed by one of these.
const COUNT_WORDS: &[&str] =
    &[" of ", " episodes", " clients", " finished", " paired", " series", " recover", " relaps", " follow-up scores"];

/// Every count written in `text` (a number followed by a [`COUNT_WORDS`] word, not part
/// of a date, a decimal or a name such as PHQ-9), with what follows it.
fn counts_in(text: &str) -> Vec<(u64, String)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"-.,:/<;_".contains(&bytes[i - 1])))
        {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let rest = &text[i..];
            if let Some(word) = COUNT_WORDS.iter().find(|w| rest.starts_with(**w)) {
                found.push((text[start..i].parse().unwrap(), format!("{}{}", &text[start..i], word)));
            } else if text[..start].ends_with("n=") || text[..start].ends_with("n = ") {
                found.push((text[start..i].parse().unwrap(), format!("n={}", &text[start..i])));
            }
        }
        i += 1;
    }
    found
}

#[test]
fn the_count_finder_finds_counts_and_nothing_else() {
    let found = counts_in("3 of 40 episodes; PHQ-9 of 2024-03 <5 of 12, 0.5 of, T3 of 7 clients (n=2)");
    assert_eq!(found.iter().map(|f| f.0).collect::<Vec<_>>(), [3, 40, 7, 2]);
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(
                files_under(&path).into_iter().map(|f| format!("{}/{f}", path.file_name().unwrap().to_string_lossy())),
            );
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    out
}

/// Keys of `summary.json` that count input records or hold settings, not people.
const NOT_PEOPLE: &[&str] = &[
    "rows_read",
    "rows_used",
    "rows_rejected",
    "inputs",
    "rejections_by_reason",
    "options",
    "rule",
    "df",
    "units",
    "extract",
];

fn no_small_count_in_json(v: &serde_json::Value, key: &str, file: &str) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m.iter().filter(|(k, _)| !NOT_PEOPLE.contains(&k.as_str())) {
                no_small_count_in_json(c, k, file);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| no_small_count_in_json(c, key, file)),
        serde_json::Value::Number(n) if n.is_u64() => assert!(n.as_u64().unwrap() >= 5, "{file}: {key} = {n}"),
        serde_json::Value::String(s) => assert_ne!(s, "*", "{file}: {key} is a number or null"),
        _ => {}
    }
}

#[test]
fn a_published_run_shows_no_count_below_five_in_any_output_charts_included() {
    let d = demo("300", "2");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &["--publish", "--by", "therapist"]);
    let files = files_under(out.path());
    let published = ["summary.json", "report.html", "report.md", "therapists.csv", "sites.csv", "trends.csv"];
    for f in &files {
        let own = f.rsplit('/').next().unwrap();
        assert!(published.contains(&own), "{f} is not a published file");
    }
    assert!(files.iter().any(|f| f.starts_with("by_therapist/")), "the packs are written");
    for f in &files {
        let text = fs::read_to_string(out.path().join(f)).unwrap();
        if f.ends_with(".csv") {
            for r in read_csv(&out.path().join(f)) {
                for (col, v) in &r {
                    let is_count = col.ends_with("_n")
                        || col.ends_with("_of")
                        || ["episodes", "in_treatment", "paired", "at_caseness", "caseload"].contains(&col.as_str());
                    if is_count {
                        assert!(v == "*" || v.parse::<u64>().unwrap() >= 5, "{f} {col} = {v}");
                    }
                }
            }
        } else if f.ends_with(".json") {
            no_small_count_in_json(&serde_json::from_str(&text).unwrap(), "", f);
        } else {
            // The report and its charts (inline SVG, captions, tables).
            for (n, what) in counts_in(&text) {
                assert!(n >= 5 || n == 0, "{f}: \"{what}\"");
            }
        }
    }
}

#[test]
fn publishing_options_are_refused_where_they_would_not_do_what_they_say() {
    let d = demo("30", "2");
    let m = d.path().join("measurements.csv");
    let run = |args: &[&str], out: &Path| {
        let mut cmd = cargo_bin_cmd!("sustain");
        cmd.args(["analyze", "--quiet", "--today", "2027-01-01", "--measurements"]).arg(&m).arg("--out").arg(out);
        cmd.args(args).assert()
    };
    let out = tempfile::tempdir().unwrap();
    run(&["--suppress-below", "10"], out.path()).code(2).stderr(contains("add --publish"));
    run(&["--publish", "--client", "C00001"], out.path()).code(2).stderr(contains("without --publish"));
    run(&["--publish", "--suppress-below", "0"], out.path()).code(2).stderr(contains("counts of single people"));
    // An internal run's tables of single episodes never end up beside published results.
    run(&[], out.path()).success();
    run(&["--publish"], out.path()).code(2).stderr(contains("episodes.csv")).stderr(contains("new or empty folder"));
    let fresh = tempfile::tempdir().unwrap();
    run(&["--publish"], fresh.path()).success();
    // Published again into its own folder.
    run(&["--publish"], fresh.path()).success();
}

/// A network of many therapists: the demo deals its clients to them, and the relapse
/// analysis draws each one's curve but tests no difference among more than 20 strata.
#[test]
fn many_therapists_get_their_curves_but_no_log_rank_test_among_them() {
    let dir = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["demo", "--quiet", "--clients", "600", "--therapists", "30", "--sites", "4", "--out"])
        .arg(dir.path())
        .assert()
        .success();
    let out = analyze_on("2027-01-01", &dir.path().join("measurements.csv"), &[]);
    let therapists = read_csv(&out.path().join("therapists.csv"));
    let ids: std::collections::BTreeSet<&str> = therapists.iter().map(|r| r["therapist_id"].as_str()).collect();
    assert_eq!(ids.len(), 30, "{ids:?}");
    assert!(ids.contains("T01") && ids.contains("T30"));
    let summary = read_json(&out.path().join("summary.json"));
    let tests = summary["sustained"]["by_measure"]["PHQ9"]["log_rank"].as_array().unwrap();
    let by: Vec<&str> = tests.iter().map(|t| t["stratification"].as_str().unwrap()).collect();
    assert!(by.contains(&"site") && !by.contains(&"therapist"), "{by:?}");
    let curves = read_csv(&out.path().join("relapse_survival.csv"));
    assert!(curves.iter().any(|r| r["stratification"] == "therapist"), "each therapist's curve is there");
}

/// Headline rates stand beside the published standards, each with its source and year; a
/// measure file replaces one, and --no-standards leaves them out.
#[test]
fn headline_rates_stand_beside_published_standards() {
    let d = demo("300", "2");
    let m = d.path().join("measurements.csv");
    let out = analyze_on("2027-01-01", &m, &[]);
    let summary = read_json(&out.path().join("summary.json"));
    let standards = summary["standards"].as_array().unwrap();
    let recovery = standards.iter().find(|s| s["standard"]["rate"] == "recovery").unwrap();
    let standard = &recovery["standard"];
    assert_eq!((standard["scope"].as_str(), standard["target"].as_f64()), (Some("talking_therapies"), Some(0.5)));
    let (k, n) = (recovery["numerator"].as_u64().unwrap(), recovery["denominator"].as_u64().unwrap());
    assert_eq!(recovery["met"].as_bool(), Some(k as f64 / n as f64 >= 0.5));
    assert_eq!(summary["talking_therapies"]["rates"]["recovery"]["numerator"].as_u64(), Some(k));
    let report = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(report.contains("NHS Talking Therapies recovery standard (50 %)"));
    // A measure file sets its own target.
    let file = d.path().join("standards.toml");
    fs::write(
        &file,
        "[[standard]]\nscope = \"talking_therapies\"\nrate = \"recovery\"\ntarget = 0.99\nmeets = \"at_least\"\n\
         name = \"Our own aim\"\nsource = \"The practice's plan\"\nyear = 2026\n",
    )
    .unwrap();
    let own = analyze_on("2027-01-01", &m, &["--measures", file.to_str().unwrap()]);
    let own = read_json(&own.path().join("summary.json"));
    let recovery =
        own["standards"].as_array().unwrap().iter().find(|s| s["standard"]["rate"] == "recovery").unwrap().clone();
    assert_eq!((recovery["standard"]["name"].as_str(), recovery["met"].as_bool()), (Some("Our own aim"), Some(false)));
    assert_eq!(own["standards"].as_array().unwrap().len(), standards.len(), "the others stay");
    let none = analyze_on("2027-01-01", &m, &["--no-standards"]);
    assert_eq!(read_json(&none.path().join("summary.json"))["standards"], serde_json::json!([]));
}

/// With --from and --to the headline rates stand beside those of the period of the same
/// length just before (or of --compare-to), each difference with its interval; the earlier
/// rates are those a run of that period alone gives.
#[test]
fn a_period_is_compared_with_the_one_before() {
    let d = demo("300", "2");
    let m = d.path().join("measurements.csv");
    let run = analyze_on("2027-01-01", &m, &["--from", "2024-07-01", "--to", "2024-12-31"]);
    let summary = read_json(&run.path().join("summary.json"));
    let c = &summary["comparison"];
    assert_eq!(c["period"], serde_json::json!(["2024-07-01", "2024-12-31"]));
    assert_eq!(c["earlier"], serde_json::json!(["2023-12-30", "2024-06-30"]), "184 days before");
    let earlier = analyze_on("2027-01-01", &m, &["--from", "2023-12-30", "--to", "2024-06-30"]);
    let earlier = read_json(&earlier.path().join("summary.json"));
    let change = c["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scope"] == "PHQ9" && r["rate"] == "reliable_recovery")
        .unwrap();
    assert_eq!(change["now"], summary["measures"]["PHQ9"]["rates"]["reliable_recovery"]);
    assert_eq!(change["earlier"], earlier["measures"]["PHQ9"]["rates"]["reliable_recovery"]);
    let (now, then) = (change["now"]["rate"].as_f64().unwrap(), change["earlier"]["rate"].as_f64().unwrap());
    assert!((change["difference"].as_f64().unwrap() - (now - then)).abs() < 1e-12);
    assert!(change["ci_low"].as_f64().unwrap() < now - then && now - then < change["ci_high"].as_f64().unwrap());
    let report = fs::read_to_string(run.path().join("report.html")).unwrap();
    assert!(report.contains("What changed: final scores 2024-07-01 to 2024-12-31 beside 2023-12-30 to 2024-06-30"));
    // An explicit period, and one written wrongly.
    let explicit = analyze_on("2027-01-01", &m, &["--from", "2024-01-01", "--compare-to", "2023-01-01..2023-12-31"]);
    let explicit = read_json(&explicit.path().join("summary.json"));
    assert_eq!(explicit["comparison"]["earlier"], serde_json::json!(["2023-01-01", "2023-12-31"]));
    let out = tempfile::tempdir().unwrap();
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2027-01-01", "--measurements"])
        .arg(&m)
        .arg("--out")
        .arg(out.path())
        .args(["--compare-to", "2023-12-31..2023-01-01"])
        .assert()
        .code(2)
        .stderr(contains("FROM..TO"));
    // Periods that overlap (or this run's being everything) are not independent samples.
    cargo_bin_cmd!("sustain")
        .args(["analyze", "--quiet", "--today", "2027-01-01", "--measurements"])
        .arg(&m)
        .arg("--out")
        .arg(out.path())
        .args(["--compare-to", "2023-01-01..2023-12-31"])
        .assert()
        .code(2)
        .stderr(contains("must end before"));
    // Without a period there is nothing to compare.
    assert!(read_json(&analyze_on("2027-01-01", &m, &[]).path().join("summary.json"))["comparison"].is_null());
}

/// A pack's trend chart draws the practice's monthly rate under the unit's; the
/// practice's own report has no such line.
#[test]
fn a_pack_s_trend_sets_the_unit_s_months_over_the_practice_s() {
    let d = demo("300", "2");
    let out = analyze_on("2027-01-01", &d.path().join("measurements.csv"), &["--by", "therapist"]);
    let pack = fs::read_to_string(out.path().join("by_therapist/T07/report.html")).unwrap();
    assert!(pack.contains("id=\"fig-trend\"") && pack.contains("practice, monthly"));
    assert!(!fs::read_to_string(out.path().join("report.html")).unwrap().contains("practice, monthly"));
}
