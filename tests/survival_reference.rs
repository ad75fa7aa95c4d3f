//! Kaplan–Meier estimates equal R's survival 3.5-3 on the `aml` data to 1e-9.

use std::path::Path;
use sustain::stats::survival::{kaplan_meier, log_rank, KmFit};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn rows(name: &str) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(fixture(name)).unwrap();
    r.records().map(|x| x.unwrap()).collect()
}

fn num(s: &str) -> Option<f64> {
    match s {
        "" | "NA" => None,
        "Inf" => Some(f64::INFINITY),
        _ => Some(s.parse().unwrap()),
    }
}

fn close(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (Some(x), Some(y)) if x.is_infinite() && y.is_infinite() => {}
        (Some(x), Some(y)) => assert!((x - y).abs() < 1e-9, "{what}: {x} vs {y}"),
        (None, None) => {}
        _ => panic!("{what}: {a:?} vs {b:?}"),
    }
}

fn aml() -> Vec<(f64, bool, String)> {
    rows("aml.csv").iter().map(|r| (r[0].parse().unwrap(), &r[1] == "1", r[2].to_string())).collect()
}

fn check(fit: &KmFit, reference: &[&csv::StringRecord], medians: &csv::StringRecord, label: &str) {
    assert_eq!(fit.rows.len(), reference.len(), "{label}: number of times");
    for (o, r) in fit.rows.iter().zip(reference) {
        let at = format!("{label} t={}", &r[1]);
        close(Some(o.time), num(&r[1]), &at);
        assert_eq!(
            (o.n_risk, o.n_event, o.n_censor),
            (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].parse().unwrap()),
            "{at}"
        );
        close(Some(o.surv), num(&r[5]), &format!("{at} surv"));
        close(o.std_err, num(&r[6]), &format!("{at} std.err"));
        close(Some(o.std_err_cumhaz), num(&r[7]), &format!("{at} std.err_cumhaz"));
        close(o.lower, num(&r[8]), &format!("{at} lower"));
        close(o.upper, num(&r[9]), &format!("{at} upper"));
        close(Some(o.cumhaz), num(&r[10]), &format!("{at} cumhaz"));
    }
    assert_eq!(fit.records, medians[1].parse::<u64>().unwrap());
    assert_eq!(fit.events, medians[4].parse::<u64>().unwrap());
    close(Some(fit.rmean), num(&medians[5]), &format!("{label} rmean"));
    close(Some(fit.se_rmean), num(&medians[6]), &format!("{label} se(rmean)"));
    close(fit.median, num(&medians[7]), &format!("{label} median"));
    close(fit.median_lower, num(&medians[8]), &format!("{label} median LCL"));
    close(fit.median_upper, num(&medians[9]), &format!("{label} median UCL"));
}

#[test]
fn aml_by_group_equals_survfit() {
    let data = aml();
    let table = rows("ref_aml_by_x_all_times.csv");
    let medians = rows("ref_aml_by_x_medians.csv");
    for m in &medians {
        let group = &m[0];
        let fit = kaplan_meier(&data.iter().filter(|d| d.2 == group).map(|d| (d.0, d.1)).collect::<Vec<_>>());
        let reference: Vec<_> = table.iter().filter(|r| &r[0] == group).collect();
        check(&fit, &reference, m, group);
    }
}

#[test]
fn aml_overall_equals_survfit() {
    let data = aml();
    let fit = kaplan_meier(&data.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>());
    let table = rows("ref_aml_overall_all_times.csv");
    check(&fit, &table.iter().collect::<Vec<_>>(), &rows("ref_aml_overall_medians.csv")[0], "all");
}

#[test]
fn aml_log_rank_equals_survdiff() {
    // survdiff(Surv(time, status) ~ x, aml): observed 7 and 11, expected 10.69 and 7.31,
    // Chisq = 3.4 on 1 degree of freedom, p = 0.07.
    let data: Vec<(f64, bool, usize)> =
        aml().into_iter().map(|d| (d.0, d.1, usize::from(d.2 == "Nonmaintained"))).collect();
    let lr = log_rank(&data, 2).unwrap();
    assert_eq!(lr.observed, vec![7.0, 11.0]);
    assert!((lr.expected[0] - 10.69).abs() < 0.005, "{:?}", lr.expected);
    assert!((lr.chisq - 3.4).abs() < 0.05, "{}", lr.chisq);
    assert!((lr.p_value - 0.07).abs() < 0.005, "{}", lr.p_value);
    // survdiff prints rounded figures; the same formula evaluated by hand in exact
    // fractions (E = Σ d·n₁/n = 10.6893…, V = Σ d·n₁·n₂·(n − d) / (n²·(n − 1)) = 4.0075…,
    // χ² = (O − E)² / V) and p = erfc(√(χ²/2)) pin the full precision.
    assert!((lr.expected[0] - 10.689335992300725).abs() < 1e-9, "{:?}", lr.expected);
    assert!((lr.expected[1] - (18.0 - 10.689335992300725)).abs() < 1e-9, "{:?}", lr.expected);
    assert!((lr.chisq - 3.396388698977602).abs() < 1e-9, "{}", lr.chisq);
    assert!((lr.p_value - 0.06533932204050492).abs() < 1e-9, "{}", lr.p_value);
}
