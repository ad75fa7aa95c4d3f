use super::*;
use std::io::Write;

#[test]
fn line_numbers_follow_quoted_newlines_and_count_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    let mut f = File::create(&p).unwrap();
    write!(f, "a,b\n1,x\n\n2,\"multi\nline\"\n3,y\r\n4,z\r5,w\n").unwrap();
    drop(f);
    // Records: 1,x on line 2; (a blank line 3, no record); 2,"multi… on line 4; 3,y
    // on 6; 4,z on 7, ended by a lone `\r`; 5,w on 8.
    assert_eq!(record_lines(&p, Format::Csv, &[0, 1, 2, 3, 4]).unwrap(), vec![2, 4, 6, 7, 8]);
    assert_eq!(record_lines(&p, Format::Csv, &[2]).unwrap(), vec![6]);
    assert_eq!(record_lines(&p, Format::Parquet, &[0, 9]).unwrap(), vec![1, 10]);
}

/// Validates `p` read in blocks of `block_bytes` (CSV) or `block_rows` (Parquet).
/// Validates a measurements table with the built-in registry, as of 2025-01-01.
fn validate_table(reader: &mut TableReader) -> Result<(crate::domain::columns::Measurements, Vec<Rejection>)> {
    let today = crate::domain::dates::parse_iso_date("2025-01-01").unwrap();
    measurements(reader, &crate::domain::registry::Registry::builtin(), DateRules::iso(today))
}

fn validated(
    p: &Path,
    block_bytes: usize,
    block_rows: usize,
) -> (crate::domain::columns::Measurements, Vec<Rejection>, u64) {
    let mut reader = TableReader::open_with(p, Table::Measurements, block_bytes, block_rows).unwrap();
    let (m, rej) = validate_table(&mut reader).unwrap();
    (m, rej, reader.records_read())
}

fn assert_same(
    a: &(crate::domain::columns::Measurements, Vec<Rejection>, u64),
    b: &(crate::domain::columns::Measurements, Vec<Rejection>, u64),
) {
    assert_eq!((&a.0.client, &a.0.episode, &a.0.therapist), (&b.0.client, &b.0.episode, &b.0.therapist));
    assert_eq!((&a.0.score, &a.0.session), (&b.0.score, &b.0.session));
    assert_eq!((&a.1, a.2), (&b.1, b.2));
    let names =
        |i: &crate::domain::columns::Interner| (0..i.len() as u32).map(|k| i.name(k).to_string()).collect::<Vec<_>>();
    assert_eq!(names(&a.0.keys.clients), names(&b.0.keys.clients));
}

use crate::domain::columns::Rejection;

#[test]
fn reading_in_small_blocks_equals_one_block() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    let mut text = String::from("client_id,episode_id,therapist_id,date,session,measure,score,note\n");
    for i in 0..25 {
        // Clients recur across blocks; some rows are bad, blank or hold a quoted newline.
        let score = if i % 7 == 3 { "x".to_string() } else { (i % 20).to_string() };
        let note = if i % 5 == 1 { "\"two\nlines, one \"\"quote\"\"\"" } else { "" };
        let line =
            format!("c{},e{},t{},2024-01-{:02},{},PHQ9,{score},{note}\n", i % 4, i % 2, i % 3, i % 28 + 1, i / 4);
        text.push_str(&line);
        if i % 9 == 4 {
            text.push('\n');
        }
    }
    text.push_str("c1,e1,t1,2024-01-02,0,PHQ9,1,\"last\"");
    std::fs::write(&p, &text).unwrap();
    let whole = validated(&p, 1 << 20, 1);
    assert_eq!(whole.2, 26, "25 rows and a last row without a newline (blank lines are no records)");
    assert_eq!(whole.1.len(), 4, "four bad scores");
    for bytes in [1, 7, 40, 64, 100] {
        assert_same(&validated(&p, bytes, 1), &whole);
    }
    // The line numbers of rejected rows agree with the blocks' record indices.
    let lines = record_lines(&p, Format::Csv, &whole.1.iter().map(|r| r.record).collect::<Vec<_>>()).unwrap();
    assert_eq!(lines[0], 6, "the first bad score (i = 3) on line 6, after a quoted newline");
}

#[test]
fn parquet_numbers_read_as_text_equal_polars_cast_to_text() {
    let ints = Column::new("i".into(), [Some(0i64), None, Some(-17), Some(i64::MAX), Some(i64::MIN), Some(42)]);
    let reals = [Some(0.0f64), Some(-0.0), None, Some(27.0), Some(0.1), Some(1e21), Some(-2.5e-8)];
    let floats =
        Column::new("f".into(), reals.into_iter().chain([Some(f64::NAN), Some(f64::INFINITY)]).collect::<Vec<_>>());
    for col in [ints, floats] {
        let values = ColumnValues::of(&col).unwrap();
        assert!(!matches!(values, ColumnValues::Text(_)), "numbers stay numbers");
        // Rows 1.. as a block's range would take them.
        let sliced = Some(values.slice(&(1..col.len())));
        let mut cursor = ValueCursor::new(&sliced);
        let mut ours = Vec::new();
        for _ in 1..col.len() {
            ours.push(cursor.next().map(str::to_string));
        }
        assert_eq!(cursor.next(), None, "nothing past the end");
        let cast = col.cast(&DataType::String).unwrap();
        let text = cast.str().unwrap();
        let theirs: Vec<Option<String>> = (1..col.len()).map(|i| text.get(i).map(str::to_string)).collect();
        assert_eq!(ours, theirs);
    }
}

#[test]
fn typed_numbers_read_and_screen_as_polars_cast_text() {
    let ints = [0i64, -17, 42, 999_999_999, -999_999_999, 1_000_000_000, -1_000_000_000, i64::MAX, i64::MIN];
    let reals = [0.0f64, -0.0, 27.0, 0.1, 12.5, 99_999_999.0, -99_999_999.0, 1e8, 123_456_789.0, 1234.56789, 1e21];
    let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -2.5e-8];
    let cols = [
        Column::new("i".into(), ints.iter().map(|&v| Some(v)).chain([None]).collect::<Vec<_>>()),
        Column::new("f".into(), reals.iter().chain(&odd).map(|&v| Some(v)).chain([None]).collect::<Vec<_>>()),
    ];
    for col in cols {
        let values = Some(ColumnValues::of(&col).unwrap());
        let mut cursor = TypedCursor::new(&values);
        let cast = col.cast(&DataType::String).unwrap();
        let cast = cast.str().unwrap();
        for (i, text) in (0..col.len()).map(|i| cast.get(i)).enumerate() {
            let Some(Typed::Number(n)) = cursor.next() else {
                assert_eq!(text, None, "row {i}: a null reads as none");
                continue;
            };
            assert_eq!(n.with_text(str::to_string).as_str(), text.unwrap(), "row {i}");
            let (mut typed, mut as_text) = (ColumnScreen::default(), ColumnScreen::default());
            screen_number(&mut typed, 7, n);
            as_text.add(7, text.unwrap());
            assert_eq!(format!("{typed:?}"), format!("{as_text:?}"), "row {i}");
        }
        assert!(cursor.next().is_none(), "nothing past the end");
    }
    // Ten digits are screened as text: `7700900123.0` reads as a phone number.
    let mut screen = ColumnScreen::default();
    screen_number(&mut screen, 3, Number::Whole(7_700_900_123));
    screen_number(&mut screen, 4, Number::Real(7_700_900_123.0));
    assert_eq!((screen.non_empty, screen.phones, screen.first_phone), (2, 1, Some(4)));
    // The number columns are the ones the contract names.
    assert_eq!(MEASUREMENT_NUMBERS.map(|c| MEASUREMENT_COLUMNS[c].0), ["session", "score"]);
    assert_eq!(GOAL_NUMBERS.map(|c| GOAL_COLUMNS[c].0), ["rating", "weight"]);
    assert_eq!((MEASUREMENT_COLUMNS[DATE_COLUMN].0, GOAL_COLUMNS[DATE_COLUMN].0), ("date", "date"));
}

#[test]
fn parquet_dates_and_timestamps_read_as_their_day() {
    // What validation reads of a column's first value (or the refusal).
    let text_of = |col: Column| match ColumnValues::of(&col) {
        Ok(ColumnValues::Text(t)) => t.get(0).map(str::to_string).unwrap_or_default(),
        Ok(ColumnValues::Day(d)) => format!("day {}", crate::domain::dates::format_day(d.get(0).unwrap())),
        Ok(_) => panic!("dates are read as text or days"),
        Err(e) => format!("refused: {e}"),
    };
    let date_column = |name: &str, days: &[i32]| Column::new(name.into(), days).cast(&DataType::Date).unwrap();
    // 2024-01-01 is day 19723 of the Unix epoch.
    assert_eq!(text_of(date_column("date", &[19723])), "day 2024-01-01");
    assert_eq!(text_of(date_column("visited", &[19723])), "2024-01-01", "other columns are only screened");
    // Days are read as days in years 0000 to 9999, whose text polars writes as
    // validation reads it; a column with a day outside is read as polars' text.
    let (first, last) =
        (crate::domain::dates::days_from_civil(0, 1, 1), crate::domain::dates::days_from_civil(9999, 12, 31));
    assert_eq!(TYPED_DAYS, first..=last);
    for day in [first - 1, first, last, last + 1] {
        let col = date_column("date", &[day]);
        let theirs = col.cast(&DataType::String).unwrap().str().unwrap().get(0).unwrap().to_string();
        let ours = text_of(date_column("date", &[19723, day]).slice(1, 1));
        if TYPED_DAYS.contains(&day) {
            assert_eq!(ours, format!("day {theirs}"));
        } else {
            assert_eq!(ours, theirs);
            assert!(crate::domain::dates::parse_iso_date(&theirs).is_err(), "{theirs}");
        }
    }
    let micros = ((19723 + 31) * 86_400 + 14 * 3600 + 1800) * 1_000_000i64; // 2024-02-01 14:30
    let stamp = |name: &str, zone: Option<TimeZone>| {
        Column::from(Series::new(name.into(), [micros]).into_datetime(TimeUnit::Microseconds, zone))
    };
    assert_eq!(text_of(stamp("Date", None)), "day 2024-02-01", "a timestamp stands for its day");
    let zone = TimeZone::opt_try_new(Some("America/New_York")).unwrap();
    // A zoned `date` column refuses its file as it is opened (elsewhere a zoned
    // timestamp is only screened, as its instant).
    let zdir = tempfile::tempdir().unwrap();
    let zoned = zdir.path().join("zoned.parquet");
    let mut df = df!("client_id" => ["c1"], "measure" => ["PHQ-9"], "score" => [20.0]).unwrap();
    df.with_column(stamp("Date", zone.clone())).unwrap();
    ParquetWriter::new(File::create(&zoned).unwrap()).finish(&mut df).unwrap();
    let refused = TableReader::open(&zoned, Table::Measurements).err().unwrap();
    let named =
        matches!(&refused, Error::ZonedDates { column, zone, .. } if column == "Date" && zone == "America/New_York");
    assert!(named, "{refused}");
    let elsewhere = text_of(stamp("logged", zone));
    assert!(elsewhere.starts_with("2024-02-01 14:30"), "only screened, read as it is: {elsewhere}");
    // UTC and fixed offsets need no zone database: the file opens.
    let fixed = zdir.path().join("fixed.parquet");
    let mut df = df!("client_id" => ["c1"], "measure" => ["PHQ-9"], "score" => [20.0]).unwrap();
    df.with_column(stamp("date", TimeZone::opt_try_new(Some("UTC")).unwrap())).unwrap();
    ParquetWriter::new(File::create(&fixed).unwrap()).finish(&mut df).unwrap();
    assert!(TableReader::open(&fixed, Table::Measurements).is_ok());

    // Through a file: a date column is validated as the same dates in text; a future
    // day is rejected with its text, a missing one as missing.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.parquet");
    let mut df = df!(
        "client_id" => ["c1", "c1", "c1", "c1"],
        "measure" => ["PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9"],
        "score" => [20.0, 8.0, 7.0, 6.0],
    )
    .unwrap();
    let days = Column::new("date".into(), [Some(19723i32), Some(19754), Some(40_000), None]);
    df.with_column(days.cast(&DataType::Date).unwrap()).unwrap();
    ParquetWriter::new(File::create(&p).unwrap()).finish(&mut df).unwrap();
    let (m, rejected, _) = validated(&p, 1, 1 << 20);
    let day = |d| crate::domain::dates::parse_iso_date(d).unwrap();
    assert_eq!(m.date, vec![day("2024-01-01"), day("2024-02-01")]);
    let reasons: Vec<&str> = rejected.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(reasons, ["date '2079-07-08' is after today (2025-01-01)", "date is empty"]);
}

/// Narrow whole numbers and decimals (as pandas and databases write them) are read as
/// the same values, with the same rejections, as the text they stand for; a column of a
/// type with no text to screen is refused by name before a row is read.
#[test]
fn parquet_narrow_integers_and_decimals_read_as_the_text_they_stand_for() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, mut df: DataFrame| {
        let p = dir.path().join(name);
        ParquetWriter::new(File::create(&p).unwrap()).finish(&mut df).unwrap();
        p
    };
    let frame = |session: Column, score: Column, extra: Column| {
        let mut df = df!(
            "client_id" => ["c1", "c1", "c1", "c1"],
            "date" => ["2024-02-01", "2024-02-08", "2024-02-15", "2024-02-22"],
            "measure" => ["PHQ-9", "PHQ-9", "PHQ-9", "PHQ-9"],
        )
        .unwrap();
        for c in [session, score, extra] {
            df.with_column(c).unwrap();
        }
        df
    };
    let (sessions, scores) = ([0i64, 1, -1, 3], [20.0, 8.5, 7.0, 28.0]);
    let text = write(
        "text.parquet",
        frame(
            Column::new("session".into(), sessions.map(|s| s.to_string())),
            Column::new("score".into(), ["20.00", "8.50", "7.00", "28.00"]),
            Column::new("visits".into(), ["1", "2", "3", "4"]),
        ),
    );
    let expected = validated(&text, 1, 1 << 20);
    assert_eq!(expected.0.session, [0, 1]);
    let reasons: Vec<&str> = expected.1.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(reasons, ["session '-1' is negative", "score 28 is outside the PHQ9 range 0 to 27"]);
    for (i, (narrow, unsigned)) in
        [(DataType::Int8, DataType::UInt8), (DataType::Int16, DataType::UInt16), (DataType::Int32, DataType::UInt32)]
            .into_iter()
            .enumerate()
    {
        let typed = write(
            &format!("typed{i}.parquet"),
            frame(
                Column::new("session".into(), sessions).cast(&narrow).unwrap(),
                Column::new("score".into(), scores).cast(&DataType::Decimal(5, 2)).unwrap(),
                Column::new("visits".into(), [1i64, 2, 3, 4]).cast(&unsigned).unwrap(),
            ),
        );
        assert_same(&validated(&typed, 1, 1 << 20), &expected);
    }

    let list = Series::new("tags".into(), [Series::new("".into(), [1i64]), Series::new("".into(), [2i64, 3])]);
    let mut df = df!("client_id" => ["c1", "c2"], "date" => ["2024-02-01"; 2], "measure" => ["PHQ-9"; 2]).unwrap();
    df.with_column(list.into()).unwrap();
    df.with_column(Column::new("score".into(), [1.0, 2.0])).unwrap();
    let refused = TableReader::open(&write("list.parquet", df), Table::Measurements).err().unwrap();
    assert!(matches!(&refused, Error::UnreadableColumn { column, kind: "lists", .. } if column == "tags"));
    assert!(refused.is_input_error());
}

#[test]
fn parquet_row_groups_read_in_blocks_equal_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.parquet");
    let n = 23;
    let mut df = df!(
        "client_id" => (0..n).map(|i| format!("c{}", i % 4)).collect::<Vec<_>>(),
        "date" => (0..n).map(|i| format!("2024-02-{:02}", i + 1)).collect::<Vec<_>>(),
        "session" => (0..n).map(|i| i64::from(i / 4)).collect::<Vec<_>>(),
        "measure" => vec!["GAD-7"; n as usize],
        "score" => (0..n).map(|i| f64::from(i % 23)).collect::<Vec<_>>(),
    )
    .unwrap();
    let file = File::create(&p).unwrap();
    ParquetWriter::new(file).with_row_group_size(Some(5)).finish(&mut df).unwrap();
    let whole = validated(&p, 1, 1 << 20);
    assert_eq!(whole.2, 23);
    assert_eq!(TableReader::open(&p, Table::Measurements).unwrap().estimated_rows(), 23, "the file's own count");
    assert_eq!(whole.1.len(), 1, "one score above the GAD-7 maximum of 21");
    for rows in [1, 4, 6, 100] {
        assert_same(&validated(&p, 1, rows), &whole);
    }
}

#[test]
fn a_folder_of_parts_reads_as_one_table_with_lines_per_part() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.csv");
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    let header = "client_id,date,measure,score\n";
    let rows: Vec<String> = (0..9).map(|i| format!("c{},2024-03-{:02},PHQ-9,{}\n", i % 3, i + 1, 25 + i % 4)).collect();
    std::fs::write(&whole, format!("{header}{}", rows.concat())).unwrap();
    // Parts in name order; ".hidden" and the notes file are not parts.
    std::fs::write(parts.join("b.csv"), format!("{header}{}", rows[4..].concat())).unwrap();
    std::fs::write(parts.join("a.csv"), format!("{header}{}", rows[..4].concat())).unwrap();
    std::fs::write(parts.join(".hidden.csv"), "x\n").unwrap();
    std::fs::write(parts.join("notes.txt"), "x\n").unwrap();
    let (one, many) = (validated(&whole, 1 << 20, 1), validated(&parts, 9, 1));
    assert_same(&one, &many);
    // Scores 28 are above the PHQ-9 maximum of 27: rows 3 and 7 (0-based).
    assert_eq!(many.1.iter().map(|r| r.record).collect::<Vec<_>>(), vec![3, 7]);
    let mut reader = TableReader::open(&parts, Table::Measurements).unwrap();
    // a.csv's 4 rows scaled by the two files' sizes (121 and 144 bytes): 8.76.
    assert_eq!(reader.estimated_rows(), 9);
    assert_eq!(TableReader::open(&whole, Table::Measurements).unwrap().estimated_rows(), 9, "one file: exact");
    while reader.next_block().unwrap().is_some() {}
    let files = reader.files();
    assert_eq!(files.parts.iter().map(|p| p.1).collect::<Vec<_>>(), vec![0, 4]);
    assert_eq!(files.lines(&[3, 7]).unwrap(), vec![(0, 5), (1, 5)], "line 5 of a.csv, line 5 of b.csv");
}

#[test]
fn parts_with_other_columns_or_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "client_id,date,measure,score\nc,2024-01-01,PHQ-9,3\n").unwrap();
    std::fs::write(dir.path().join("b.csv"), "client_id,date,score,measure\nc,2024-01-02,4,PHQ-9\n").unwrap();
    let mut reader = TableReader::open(dir.path(), Table::Measurements).unwrap();
    let err = loop {
        match reader.next_block() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the second part should be refused"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(err.contains("b.csv") && err.contains("first part"), "{err}");
    std::fs::write(dir.path().join("c.parquet"), "").unwrap();
    let err = TableReader::open(dir.path(), Table::Measurements).err().unwrap().to_string();
    assert!(err.contains("mixes CSV and Parquet"), "{err}");
}

#[test]
fn a_bad_later_part_stops_validation_with_its_name() {
    // Blocks are read on a thread of their own: the error of a later part still ends
    // validation, after the blocks before it, and names that part.
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..30).map(|i| format!("c{i},2024-01-02,PHQ9,3\n")).collect();
    std::fs::write(dir.path().join("a.csv"), format!("client_id,date,measure,score\n{rows}")).unwrap();
    std::fs::write(dir.path().join("b.csv"), "client_id,date,score,measure\nc,2024-01-02,4,PHQ9\n").unwrap();
    let mut reader = TableReader::open_with(dir.path(), Table::Measurements, 64, 1).unwrap();
    let err = validate_table(&mut reader).unwrap_err().to_string();
    assert!(err.contains("b.csv") && err.contains("first part"), "{err}");
    assert_eq!(reader.records_read(), 30, "every block of the first part was read");
}

#[test]
fn a_value_repeated_down_a_column_is_screened_each_time() {
    // A personal name in a free-text column counts once it is in ≥ 3 values and a fifth
    // of them; here one name on three consecutive rows (each row counts), then plain
    // site names.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    let mut text = String::from("client_id,date,measure,score,site_id\n");
    for i in 0..12 {
        let site = if (3..6).contains(&i) { "Mary Smith" } else { "north" };
        text.push_str(&format!("c{i},2024-01-02,PHQ9,3,{site}\n"));
    }
    std::fs::write(&p, &text).unwrap();
    let refused = validate_table(&mut TableReader::open(&p, Table::Measurements).unwrap()).unwrap_err().to_string();
    assert!(refused.contains("site_id") && refused.contains("line 5"), "{refused}");
    // Two such rows out of twelve are not a pattern.
    std::fs::write(&p, text.replacen("Mary Smith", "north", 1)).unwrap();
    assert!(validate_table(&mut TableReader::open(&p, Table::Measurements).unwrap()).is_ok());
}

/// The error reading `text` as a measurements table, in blocks of `block_bytes`.
fn refusal(text: &[u8], block_bytes: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    std::fs::write(&p, text).unwrap();
    let mut reader = TableReader::open_with(&p, Table::Measurements, block_bytes, 1).unwrap();
    validate_table(&mut reader).unwrap_err().to_string()
}

#[test]
fn a_quote_never_closed_refuses_the_file_by_line_and_column() {
    let head = "client_id,date,measure,score\nc,2024-01-02,PHQ9,3\n\"a\nb\",2024-01-02,PHQ9,3\n";
    for bytes in [16, 1 << 20] {
        let err = refusal(format!("{head}c,\"2024-01-03,PHQ9,4\nc,2024-01-04,PHQ9,5\n").as_bytes(), bytes);
        assert!(err.contains("line 5, column `date`") && err.contains("never closed"), "{err}");
    }
}

#[test]
fn a_malformed_record_is_one_rejected_row_and_the_rest_are_read() {
    // Record 1 (lines 3–4) spans two lines; the bad records, 2 to 6, come after it.
    let mut text = b"client_id,date,measure,score\nc,2024-01-02,PHQ9,3\n\"a\nb\",2024-01-02,PHQ9,3\n".to_vec();
    text.extend(b"c,2024-01-03,PHQ9,4,x\n"); // record 2: too many fields
    text.extend(b"c,2024-01-04,\"PHQ9\"x,4\n"); // 3: text after a closing quote
    text.extend(b"c,2024-01-05,PHQ\xff,4\n"); // 4: not UTF-8
    text.extend(b"\xEF\xBB\xBFc,2024-01-06,PHQ9,4\n"); // 5: a byte-order mark
    text.extend(b"c,2024-01-07,\"PHQ\xe9\",5\n"); // 6: not UTF-8 inside quotes
    text.extend("d\u{e9},2024-01-08,PHQ9,6\n".as_bytes()); // 7: fine (UTF-8: the file is)
    for (bytes, rows) in [(16, 1), (1 << 20, 1), (1 << 20, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(&p, &text).unwrap();
        let (m, rejected, read) = validated(&p, bytes, rows);
        assert_eq!(read, 8);
        let codes: Vec<(u64, &str)> = rejected.iter().map(|r| (r.record, r.code)).collect();
        assert_eq!(
            codes,
            [(2, "too_many_fields"), (3, "badly_quoted"), (4, "not_utf8"), (5, "stray_bom"), (6, "not_utf8")],
            "blocks of {bytes} bytes"
        );
        assert_eq!(m.len(), 3, "records 0, 1 and 7 are used");
        assert_eq!(m.keys.clients.name(m.client[1]), "a\nb");
        assert_eq!(m.keys.clients.name(m.client[2]), "d\u{e9}");
        let lines = record_lines(&p, Format::Csv, &[2, 3, 4, 5, 6]).unwrap();
        assert_eq!(lines, [5, 6, 7, 8, 9]);
    }
}

#[test]
fn a_windows_1252_file_is_read_with_its_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.csv");
    std::fs::write(
        &p,
        b"client_id,date,measure,score,note\nc\xe9,2024-01-02,PHQ9,3,caf\xe9\n\"d\n\",2024-01-02,PHQ9,4,\x80\n",
    )
    .unwrap();
    let read = |encoding| {
        let mut reader = TableReader::open_encoded(&p, Table::Measurements, encoding).unwrap();
        let (m, rejected) = validate_table(&mut reader).unwrap();
        let clients: Vec<String> = (0..m.len()).map(|i| m.keys.clients.name(m.client[i]).to_string()).collect();
        (clients, rejected.iter().map(|r| r.code).collect::<Vec<_>>())
    };
    // (Values are trimmed: the quoted "d\n" is the key d.)
    assert_eq!(read(Encoding::Windows1252), (vec!["c\u{e9}".to_string(), "d".into()], vec![]));
    // Read as UTF-8, a line with such bytes in a contract column is one rejected row;
    // in a column outside the contract they do not matter.
    assert_eq!(read(Encoding::Utf8), (vec!["d".to_string()], vec!["not_utf8"]));
    assert_eq!(record_lines(&p, Format::Csv, &[1]).unwrap(), [3]);
    // Two bad values side by side in a quoted file: csv-core's copy of them reads
    // as `é`, but each value alone is not UTF-8.
    std::fs::write(&p, b"client_id,date,measure,score,note\n\"c\",2024-01-02,PHQ\xc3,\xa9\ne,2024-01-02,PHQ9,4,\n")
        .unwrap();
    assert_eq!(read(Encoding::Utf8), (vec!["e".to_string()], vec!["not_utf8"]));
    // Two such lines and no UTF-8 letter anywhere: a Windows-1252 file, refused.
    let latin =
        b"client_id,date,measure,score\nc\xe9,2024-01-02,PHQ9,3\nd\xe9,2024-01-02,PHQ9,4\ne,2024-01-02,PHQ9,4\n";
    std::fs::write(&p, latin).unwrap();
    let mut reader = TableReader::open(&p, Table::Measurements).unwrap();
    let err = validate_table(&mut reader).unwrap_err().to_string();
    assert!(err.contains("2 lines hold bytes that are not UTF-8") && err.contains("--encoding windows-1252"), "{err}");
    // With a UTF-8 letter elsewhere it is a UTF-8 file with two bad lines.
    std::fs::write(&p, [&latin[..], "f\u{e9},2024-01-02,PHQ9,4\n".as_bytes()].concat()).unwrap();
    assert_eq!(read(Encoding::Utf8), (vec!["e".to_string(), "f\u{e9}".into()], vec!["not_utf8", "not_utf8"]));
}

#[test]
fn a_record_longer_than_a_block_is_read_whole() {
    let long = format!("a,\"{}\n{}\"\nb,c\n", "x".repeat(100), "y".repeat(100));
    let end = |text: &[u8]| csv_records::plan(text, 1, false).unwrap().map(|p| p.end);
    assert_eq!(end(long.as_bytes()), Some(long.len()));
    assert_eq!(end(&long.as_bytes()[..50]), None);
    assert_eq!(read_header(long.as_bytes()).map(|h| h.1), Ok(long.len() - 4));
    // A byte-order mark before a quoted first name.
    let names = |text: &[u8]| read_header(text).map(|h| h.0);
    assert_eq!(names(b"\xEF\xBB\xBF\"a,b\",c\n"), Ok(vec!["a,b".to_string(), "c".into()]));
    assert_eq!(names(b"\xEF\xBB\xBFa,c\n"), Ok(vec!["a".to_string(), "c".into()]));
    assert_eq!(names(b"\"a,c\n"), Err("its header line opens a quote that is never closed"));
}

/// Every goal row as the analysis would see it: names, not ids.
/// Weights as bits: a rating without one holds NaN, which `==` never equals.
fn goal_table(rows: &crate::input::goal_rows::GoalRows) -> Vec<(String, String, String, String, i32, f64, u64)> {
    let n = &rows.names;
    let mut out = Vec::new();
    rows.for_each_run(|g| {
        for i in 0..g.len() {
            let parent = if g.parent[i] == crate::domain::columns::NO_KEY { "" } else { n.goals.name(g.parent[i]) };
            out.push((
                n.clients.name(g.client[i]).to_string(),
                n.episodes.name(g.episode[i]).to_string(),
                n.goals.name(g.goal[i]).to_string(),
                parent.to_string(),
                g.date[i],
                g.rating[i],
                g.weight[i].to_bits(),
            ));
        }
    })
    .unwrap();
    out
}

#[test]
fn fixed_offsets_are_read_without_a_zone_database() {
    for (zone, seconds) in [("UTC", Some(0)), ("Etc/UTC", Some(0)), ("+01:00", Some(3600)), ("-0530", Some(-19_800))] {
        assert_eq!(fixed_offset(zone), seconds, "{zone}");
    }
    assert_eq!(fixed_offset("+09"), Some(32_400));
    for zone in ["Europe/London", "America/New_York", "+1:00", "+24:00", "+01:60", "", "UTC+1"] {
        assert_eq!(fixed_offset(zone), None, "{zone}");
    }
}

#[test]
fn zoned_midnights_are_their_days_and_a_time_of_day_is_refused_with_its_row() {
    let day = 19_754i64; // 2024-02-01
    let column = |name: &str, zone: &str, stamps: &[i64]| {
        Column::from(
            Series::new(name.into(), stamps)
                .into_datetime(TimeUnit::Milliseconds, TimeZone::opt_try_new(Some(zone)).unwrap()),
        )
    };
    let ms = |seconds: i64| seconds * 1000;
    // Midnight in UTC, and midnight at +01:00 (23:00 UTC the evening before).
    for (zone, instant) in [("UTC", ms(day * 86_400)), ("+01:00", ms(day * 86_400 - 3600))] {
        let days = zoned_days(&column("Date", zone, &[instant])).unwrap().unwrap();
        assert_eq!(days.dtype(), &DataType::Date);
        assert_eq!(days.date().unwrap().physical().get(0), Some(day as i32), "{zone}");
    }
    // 23:00 UTC is a time of day; the second row is the one named.
    let times = column("date", "UTC", &[ms(day * 86_400), ms(day * 86_400 + 23 * 3600)]);
    let (row, text, zone) = zoned_days(&times).unwrap().unwrap_err();
    assert_eq!((row, text.as_str(), zone.as_str()), (1, "2024-02-01 23:00:00", "UTC"));
    // Columns other than `date`, and other zones, are left alone here.
    assert!(zoned_days(&column("logged", "UTC", &[0])).is_none());
    assert!(zoned_days(&column("date", "Europe/London", &[0])).is_none());
}

#[test]
fn goals_sorted_through_temporary_files_equal_goals_sorted_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.csv");
    let mut text = String::from("client_id,episode_id,goal_id,parent_goal_id,date,phase,scale,rating,weight\n");
    for c in 0..60 {
        for k in 0..5 {
            let date = format!("2024-0{}-1{}", 1 + k % 9, k % 10);
            text += &format!("C{c},E1,G1,,{date},treatment,GBO,{},\n", (c + k) % 11);
            text += &format!("C{c},E1,O{k},G1,{date},treatment,GBO,{},2\n", (c * k) % 11);
        }
        // A second rating of G1 on its first day (a conflicting duplicate, or an exact one
        // where the ratings agree) and a rating off the scale: all rejected.
        text += &format!("C{c},E1,G1,,2024-01-10,treatment,GBO,3,\nC{c},E1,G2,,2024-01-11,treatment,GBO,12,\n");
    }
    std::fs::write(&p, text).unwrap();
    let today = DateRules::iso(crate::domain::dates::parse_iso_date("2025-01-01").unwrap());
    let read = |budget: usize| {
        let mut reader = TableReader::open_with(&p, Table::Goals, 2000, 1).unwrap();
        let (rows, rejected) = goals(&mut reader, today, budget).unwrap();
        (goal_table(&rows), rejected)
    };
    let in_memory = read(1 << 20);
    assert!(
        in_memory.0.len() > 500 && in_memory.1.len() >= 120,
        "{} rows, {} rejected",
        in_memory.0.len(),
        in_memory.1.len()
    );
    assert_eq!(read(100), in_memory);
}

/// Parquet files polars panics on (found by fuzzing) are refused as damaged, not a crash:
/// a footer polars-parquet cannot parse ("thrift bool field"), refused when opened, and a
/// date column whose days polars cannot write as dates ("out-of-range date").
#[test]
fn parquet_files_polars_panics_on_are_refused_not_a_crash() {
    let fixture = |name: &str| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    for table in [Table::Measurements, Table::Goals] {
        let err = TableReader::open(&fixture("damaged_footer.parquet"), table).err().expect("refused");
        assert!(err.to_string().contains("damaged") && err.is_input_error(), "{err}");
    }
    // Refused when opened (its schema) or when a block is read, whichever polars fails at.
    let err = match TableReader::open(&fixture("out_of_range_date.parquet"), Table::Measurements) {
        Err(e) => e,
        Ok(mut reader) => {
            std::iter::from_fn(|| reader.next_block().transpose()).find_map(|b| b.err()).expect("refused")
        }
    };
    assert!(err.to_string().contains("damaged") && err.is_input_error(), "{err}");
}
