//! Privacy: identifiers refused, FHIR import pseudonymized, small counts suppressed, and
//! data that looks like markup or formulas written inert, through the binary.

mod common;

use assert_cmd::cargo::cargo_bin_cmd;
use common::{analyze, analyze_on, assert_input_refused, assert_refused, read_csv};
use predicates::str::contains;
use std::fs;
use std::path::Path;

/// Contract columns are screened while rows are validated in parallel ranges; an
/// identifier late in the file must still be found, on the right line.
#[test]
fn identifiers_in_a_key_column_are_found_in_any_range_of_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("measurements.csv");
    let mut text = String::from("client_id,date,measure,score\n");
    for i in 0..40 {
        let client = if i == 29 { "jo.bloggs@example.org".to_string() } else { format!("c{}", i / 4) };
        text.push_str(&format!("{client},2024-01-{:02},PHQ9,{}\n", i % 28 + 1, i % 20));
    }
    fs::write(&path, text).unwrap();
    assert_input_refused(&path, &["`client_id`", "e-mail addresses", "line 31"]);
}

#[test]
fn a_column_of_email_addresses_is_refused() {
    assert_refused("with_email.csv", &["`contact`", "e-mail addresses", "line 3", "anonymized"]);
}

#[test]
fn a_column_with_a_phone_number_is_refused() {
    assert_refused("with_phone.csv", &["`ref`", "phone numbers", "line 4"]);
}

#[test]
fn personal_names_as_client_keys_are_refused() {
    assert_refused("with_name_as_key.csv", &["`client_id`", "personal names"]);
}

#[test]
fn a_date_of_birth_column_is_refused_by_its_name() {
    assert_refused("with_dob_header.csv", &["`Date of Birth`"]);
}

#[test]
fn keys_that_look_like_markup_or_formulas_come_out_inert() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("m.csv");
    fs::write(
        &input,
        "client_id,therapist_id,site_id,date,measure,score\n\
         \"<script>alert(1)</script>\",=cmd|' /C calc'!A0,\"\"\"quoted\"\"\",2024-01-01,PHQ9,15\n\
         \"<script>alert(1)</script>\",=cmd|' /C calc'!A0,\"\"\"quoted\"\"\",2024-02-01,PHQ9,5\n\
         c2,@SUM(A1),s,2024-01-01,<b>PHQ9</b>,3\n",
    )
    .unwrap();
    let out = analyze(&input, &[]);
    let eps = fs::read_to_string(out.path().join("episodes.csv")).unwrap();
    assert!(eps.contains("'=cmd|"), "{eps}");
    assert!(!eps.contains(",=cmd"), "{eps}");
    let rejected = fs::read_to_string(out.path().join("rejected.csv")).unwrap();
    assert!(rejected.contains("'<b>PHQ9</b>'"), "the bad measure is quoted in the reason: {rejected}");
    let html = fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(!html.contains("<script>") && !html.contains("<b>"), "no markup from the data reaches the report");
    let md = fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(!md.contains("<script>") && !md.contains("<b>"), "nor the Markdown report");
}

#[test]
fn fhir_observations_import_into_a_table_that_analyze_reads() {
    let dir = tempfile::tempdir().unwrap();
    let obs = |patient: u32, date: &str, code: &str, value: u32, status: &str| {
        format!(
            r#"{{"resourceType":"Observation","status":"{status}","code":{{"coding":[{{"system":"http://loinc.org","code":"{code}"}}]}},"subject":{{"reference":"Patient/{patient}","display":"A Name"}},"performer":[{{"reference":"Practitioner/7"}}],"effectiveDateTime":"{date}T10:00:00+00:00","valueQuantity":{{"value":{value},"unit":"{{score}}"}}}}"#
        )
    };
    let mut lines = vec![r#"{"resourceType":"Patient","id":"1","name":[{"family":"Example"}]}"#.to_string()];
    // Patient 1 goes from 18 to 6 on the PHQ-9 (recovered), patient 2 from 15 to 14;
    // the GAD-7 by its SNOMED CT code; one preliminary result.
    for (week, (a, b)) in [(18, 15), (12, 15), (6, 14)].into_iter().enumerate() {
        let date = format!("2024-01-{:02}", 1 + 7 * week);
        lines.push(obs(1, &date, "44261-6", a, "final"));
        lines.push(obs(2, &date, "44261-6", b, "amended"));
    }
    lines.push(obs(1, "2024-01-01", "445455005", 12, "final").replace("http://loinc.org", "http://snomed.info/sct"));
    lines.push(obs(2, "2024-01-22", "44261-6", 3, "preliminary"));
    let input = dir.path().join("export.ndjson");
    fs::write(&input, lines.join("\n")).unwrap();
    let key = dir.path().join("key");
    fs::write(&key, "9f2c4e1a7b3d5f60c8e2a4b6d8f0a1c3\n").unwrap();
    let out = dir.path().join("clinic");
    let import = |out: &Path, key: &Path| {
        let mut cmd = cargo_bin_cmd!("sustain");
        cmd.args(["import-fhir", "--quiet"]).arg(&input).arg("--key-file").arg(key).arg("--out").arg(out);
        cmd
    };
    import(&out, &key).assert().success();
    let rows = read_csv(&out.join("measurements.csv"));
    assert_eq!(rows.len(), 7, "six PHQ-9 scores and one GAD-7");
    let text = fs::read_to_string(out.join("measurements.csv")).unwrap();
    assert!(!text.contains("Patient") && !text.contains("Name") && !text.contains("Practitioner"), "{text}");
    let rejected: Vec<(String, String)> = read_csv(&out.join("import_rejected.csv"))
        .into_iter()
        .map(|r| (r["record"].clone(), r["reason"].clone()))
        .collect();
    assert_eq!(rejected, [("1".into(), "not_an_observation".into()), ("9".into(), "status_not_final".into())]);
    // The same key gives the same pseudonyms; the table analyses like any other.
    let again = dir.path().join("again");
    import(&again, &key).assert().success();
    assert_eq!(fs::read_to_string(again.join("measurements.csv")).unwrap(), text);
    let result = analyze(&out.join("measurements.csv"), &[]);
    let episodes = read_csv(&result.path().join("episodes.csv"));
    let first = &rows[0]["client_id"];
    let e = episodes.iter().find(|e| &e["client_id"] == first && e["measure"] == "PHQ9").unwrap();
    assert_eq!((e["baseline"].as_str(), e["final"].as_str(), e["outcome"].as_str()), ("18", "6", "recovered"));
    assert_eq!(e["therapist_id"], rows[0]["therapist_id"]);
    // An import never replaces a table, and a short key is refused.
    import(&out, &key).assert().code(2).stderr(contains("already holds measurements.csv"));
    fs::write(&key, "short").unwrap();
    import(&dir.path().join("third"), &key).assert().code(2).stderr(contains("fewer than 16 bytes"));
    assert!(!dir.path().join("third").exists(), "nothing written");
}

/// Published results leave the Jacobson plot out (each point is the episodes of one pair
/// of scores, mostly one client's; its caption gave the count "3 paired PHQ9 episodes"
/// that the tables show as "<5"); internal results show it.
#[test]
fn a_chart_of_too_few_episodes_is_left_out_of_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    let mut text = String::from("client_id,date,measure,score\n");
    for (c, a, b) in [("A", 20, 20), ("B", 15, 4), ("C", 6, 18)] {
        text.push_str(&format!("{c},2025-01-01,PHQ-9,{a}\n{c},2025-02-01,PHQ-9,{b}\n"));
    }
    fs::write(&path, text).unwrap();
    let report = |d: &tempfile::TempDir| fs::read_to_string(d.path().join("report.html")).unwrap();
    let suppressed = analyze_on("2025-06-01", &path, &["--as-of", "2025-06-01", "--publish"]);
    assert!(!report(&suppressed).contains("Jacobson plot of"), "left out of published results");
    let shown = analyze(&path, &[]);
    assert!(report(&shown).contains("The Jacobson plot of 3 finished PHQ9 episodes"), "shown for internal use");
}
