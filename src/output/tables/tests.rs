use super::*;

#[test]
fn csv_out_writes_what_the_csv_crate_writes() {
    let records: Vec<Vec<&str>> = vec![
        vec!["plain", "with,comma", "with \"quote\"", "line\nbreak", "cr\rhere", ""],
        vec![""],
        vec!["", ""],
        vec!["'=formula", "ünïcödé", " spaced ", "#hash", "\"", ","],
        vec!["a long value of more than eight bytes", "eight b,", "=1+2", "-3,4", "@\"x\"", "+", "c001"],
    ];
    let mut ours = Vec::new();
    {
        let mut w = CsvOut::new(&mut ours);
        for r in &records {
            w.write_record(r).unwrap();
        }
        // Keys from the data come out as `cell` makes them, then quoted as any text.
        for r in &records {
            w.row(&r.iter().map(|&k| V::Key(k)).collect::<Vec<_>>()).unwrap();
        }
        w.row(&[V::Word("true"), V::Word(""), V::T("x\"y")]).unwrap();
        w.row(&[V::Num(1.5), V::OptNum(None), V::Int(-3), V::Day(0), V::NanEmpty(f64::NAN), "a,b".into()]).unwrap();
        w.finish().unwrap();
    }
    let mut theirs =
        csv::WriterBuilder::new().flexible(true).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    for r in &records {
        theirs.write_record(r).unwrap();
    }
    for r in &records {
        theirs.write_record(r.iter().map(|k| cell(k).into_owned())).unwrap();
    }
    theirs.write_record(["true", "", "x\"y"]).unwrap();
    theirs.write_record(["1.5", "", "-3", "1970-01-01", "", "a,b"]).unwrap();
    assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs.into_inner().unwrap()).unwrap());
}

#[test]
fn csv_out_hands_on_long_output_in_order() {
    let mut ours = Vec::new();
    let mut w = CsvOut::new(&mut ours);
    for i in 0..20_000 {
        w.row(&[V::Int(i), "x".into()]).unwrap();
    }
    w.finish().unwrap();
    let text = String::from_utf8(ours).unwrap();
    assert_eq!(text.lines().count(), 20_000);
    assert_eq!(text.lines().nth(12_345), Some("12345,x"));
}

#[test]
fn the_empty_table_header_matches_the_rows() {
    let mut keys = Keys::default();
    let reg = Registry::builtin();
    keys.clients.intern("c");
    keys.episodes.intern("");
    let it = crate::domain::episodes::EpisodeMeasure {
        client: 0,
        episode: 0,
        therapist: NO_KEY,
        site: NO_KEY,
        measure: 0,
        n_scores: 1,
        n_followup: 0,
        first_date: 0,
        last_date: 0,
        baseline: 10.0,
        final_score: None,
        classification: Default::default(),
        talking_therapies: None,
        checks: crate::domain::episodes::SeriesChecks::default()
            .with_status(crate::domain::episodes::Status::Ended(crate::domain::episodes::EndedBy::EndRow)),
        rows: 0..1,
    };
    let names: Vec<&str> = episode_row(&keys, &it, &Durability::default(), &reg).iter().map(|(n, _)| *n).collect();
    assert_eq!(names, EPISODE_COLUMNS);
}

#[test]
fn formula_like_text_is_made_inert() {
    assert_eq!(cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
    assert_eq!(cell("+1"), "'+1");
    assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(cell("c001"), "c001");
    assert_eq!(cell(""), "");
}

#[test]
fn numbers_print_shortest_and_never_negative_zero() {
    assert_eq!(num(3.0), "3");
    assert_eq!(num(-0.0), "0");
    assert_eq!(num(62.5), "62.5");
    assert_eq!(num(-1.4251309495484101), "-1.4251309495484101");
}
