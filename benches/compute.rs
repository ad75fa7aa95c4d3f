//! Criterion benches of the hot computations on fixed synthetic caseloads (the demo
//! generator, seed 1): row validation, the shared sort with duplicate detection, the sort
//! with episode outcomes and the series' rows laid out (`prepare`), sudden gains, follow-up, caseload aggregates (units, funnels, trends),
//! trajectories and the growth model's fit. The whole binary is timed by `benches/run.sh`.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use sustain::app::demo::generate;
use sustain::domain::columns::Measurements;
use sustain::domain::dates::parse_iso_date;
use sustain::domain::episodes::{prepare, sort_rows, EndRule};
use sustain::domain::registry::Registry;
use sustain::input::validate::{check_measurement, DateValue, Number, RawMeasurement};

/// Splits the demo CSV into fields once, outside the timed code.
fn demo_rows(clients: u64) -> Vec<Vec<String>> {
    let text = generate(clients, 1).measurements;
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn raw(f: &[String]) -> RawMeasurement<'_> {
    let get = |i: usize| f.get(i).map(String::as_str).filter(|s| !s.is_empty());
    RawMeasurement {
        client_id: get(0),
        episode_id: get(1),
        therapist_id: get(2),
        site_id: get(3),
        date: get(4).map(DateValue::Text),
        session: get(5).map(Number::Text),
        phase: get(6),
        measure: get(7),
        score: get(8).map(Number::Text),
        episode_end: get(9).map(DateValue::Text),
    }
}

fn validate_all(rows: &[Vec<String>], reg: &Registry, today: i32) -> Measurements {
    let mut m = Measurements::default();
    let mut measures = reg.finder();
    for f in rows {
        if let Ok(r) = check_measurement(&raw(f), &mut measures, sustain::input::validate::DateRules::iso(today)) {
            m.push(&r);
        }
    }
    m
}

fn benches(c: &mut Criterion) {
    let reg = Registry::builtin();
    let today = parse_iso_date("2026-11-26").unwrap();
    let mut group = c.benchmark_group("compute");
    group.sample_size(10);
    for clients in [10_000u64, 100_000] {
        let rows = demo_rows(clients);
        group.throughput(Throughput::Elements(rows.len() as u64));
        group.bench_with_input(BenchmarkId::new("validate", clients), &rows, |b, rows| {
            b.iter(|| black_box(validate_all(rows, &reg, today)))
        });
        let m = validate_all(&rows, &reg, today);
        group.bench_with_input(BenchmarkId::new("sort_rows", clients), &m, |b, m| b.iter(|| black_box(sort_rows(m))));
        group.bench_with_input(BenchmarkId::new("prepare", clients), &m, |b, m| {
            b.iter_batched(|| m.clone(), |m| black_box(prepare(m, &reg, &EndRule::default())), BatchSize::LargeInput)
        });
        let p = prepare(m, &reg, &EndRule::default());
        let (rows, eps) = (&p.rows, &p.episodes);
        let sg = sustain::analyses::sudden_gains::Options::default();
        group.bench_with_input(BenchmarkId::new("sudden_gains", clients), rows, |b, rows| {
            b.iter(|| black_box(sustain::analyses::sudden_gains::find_all(rows, eps, &reg, &sg)))
        });
        let fu = sustain::analyses::followup::Options::default();
        group.bench_with_input(BenchmarkId::new("follow_up", clients), rows, |b, rows| {
            b.iter(|| {
                black_box(sustain::analyses::followup::follow_up(rows, eps, &fu, |scores| {
                    black_box(scores);
                }))
            })
        });
        let durability = sustain::analyses::followup::follow_up(rows, eps, &fu, |_| {});
        let caseload = sustain::analyses::caseload::Options {
            suppression: sustain::stats::rates::Suppression { threshold: 5, round_to: 1 },
            overdispersion: None,
            period: sustain::analyses::caseload::TrendPeriod::Month,
        };
        group.bench_with_input(BenchmarkId::new("caseload", clients), &p.keys, |b, keys| {
            b.iter(|| black_box(sustain::analyses::caseload::analyse(keys, eps, &durability, &caseload)))
        });
        let tr = sustain::analyses::trajectories::Options::default();
        group.bench_with_input(BenchmarkId::new("trajectories", clients), rows, |b, rows| {
            b.iter(|| {
                black_box(sustain::analyses::trajectories::analyse(rows, eps, &tr, |_, t| {
                    black_box(t);
                }))
            })
        });
        // The PHQ-9 growth model over the paired series (as `trajectories::analyse` adds
        // them: sessions since baseline, before follow-up).
        let phq = reg.find("PHQ9").unwrap() as u16;
        let mut growth = sustain::stats::growth::GrowthData::new(15.0);
        let mut points = Vec::new();
        for it in eps.items.iter().filter(|it| it.measure == phq && it.paired()) {
            points.clear();
            let treatment = it.rows.clone().filter(|&r| rows.phase[r] != sustain::domain::columns::Phase::FollowUp);
            points.extend(treatment.map(|r| (rows.session[r], rows.score[r])));
            let s0 = points[0].0;
            points.iter_mut().for_each(|p| p.0 -= s0);
            growth.add(&points);
        }
        group.bench_with_input(BenchmarkId::new("growth_fit", clients), &growth, |b, g| {
            b.iter(|| black_box(g.fit(true)))
        });
    }
    group.finish();
}

criterion_group!(compute, benches);
criterion_main!(compute);
