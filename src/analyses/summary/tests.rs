use super::*;

#[test]
fn rates_know_their_denominator() {
    assert_eq!(Rate::new(3, 4).rate, Some(0.75));
    assert_eq!(Rate::new(0, 0).rate, None);
    let xs = [1, 2, 3, 4, 5, 6];
    let refs: Vec<&i32> = xs.iter().collect();
    let r = Rate::count(&refs, |x| *x > 2, |x| x % 2 == 0);
    assert_eq!((r.numerator, r.denominator), (2, 4));
}

#[test]
fn trajectories_are_tallied_by_shape_dip_and_outcome() {
    use crate::analyses::trajectories::{Dip, Shape, Trajectory};
    use crate::domain::outcomes::Classification;
    let series = |paired: bool, case: bool, outcome: Option<Outcome>, change: Option<ReliableCategory>| {
        crate::domain::episodes::EpisodeMeasure {
            client: 0,
            episode: 0,
            therapist: 0,
            site: 0,
            measure: 0,
            n_scores: 4,
            n_followup: 0,
            first_date: 0,
            last_date: 70,
            baseline: 20.0,
            final_score: paired.then_some(6.0),
            classification: Classification {
                caseness_start: Some(case),
                outcome,
                reliable_change: change,
                ..Default::default()
            },
            talking_therapies: None,
            checks: crate::domain::episodes::SeriesChecks::default()
                .with_status(crate::domain::episodes::Status::Ended(crate::domain::episodes::EndedBy::EndRow)),
            rows: 0..4,
        }
    };
    let dip = |kind| Dip { start: 2, peak: 2, depth: 6.0, depth_from_baseline: 1.0, length: 1, resolved: true, kind };
    let traj = |shape, dip| Trajectory { shape: Some(shape), dip, ..Default::default() };
    let (recovered, improved) = (Some(Outcome::Recovered), Some(ReliableCategory::Improved));
    let mut tally = TrajectoryTally::default();
    // A discomfort zone, then recovery; one with no dip that improved without being a
    // case; a lasting deterioration; an unpaired series (not counted).
    tally.add(&series(true, true, recovered, improved), &traj(Shape::DipThenImprovement, Some(dip("discomfort_zone"))));
    tally.add(&series(true, false, None, improved), &traj(Shape::GradualResponse, None));
    let deteriorated = Some(ReliableCategory::Deteriorated);
    tally.add(&series(true, true, None, deteriorated), &traj(Shape::Deterioration, Some(dip("lasting_deterioration"))));
    tally.add(&series(false, true, None, None), &traj(Shape::Unstable, None));
    let t = &tally.by_measure[&0];
    assert_eq!(
        (
            t.shapes["dip_then_improvement"],
            t.shapes["gradual_response"],
            t.shapes["deterioration"],
            t.shapes["unstable"]
        ),
        (1, 1, 1, 0)
    );
    assert_eq!((t.dips["discomfort_zone"], t.dips["lasting_deterioration"], t.dips["no_improvement_after"]), (1, 1, 0));
    let rate = |r: &BTreeMap<&str, Rate>, k: &str| (r[k].numerator, r[k].denominator);
    let dz = t.with_discomfort_zone.rates();
    assert_eq!((rate(&dz, "reliable_recovery"), rate(&dz, "reliable_improvement")), ((1, 1), (1, 1)));
    let no_dip = t.without_dip.rates();
    assert_eq!((rate(&no_dip, "reliable_recovery"), rate(&no_dip, "reliable_improvement")), ((0, 0), (1, 1)));
}

mod suppression_tests {
    use super::*;
    use crate::stats::rates::Suppression;
    use serde_json::Value;

    #[test]
    fn small_counts_and_the_rates_on_them_are_suppressed_but_record_counts_are_not() {
        let mut v = serde_json::json!({
            "rows_read": 3, "rows_used": 2, "rows_rejected": 1,
            "rejections_by_reason": {"bad_score": 1},
            "episodes": 4, "clients": 12,
            "measures": {"PHQ9": {"rates": {
                "recovery": {"numerator": 3, "denominator": 10, "rate": 0.3},
                "reliable_improvement": {"numerator": 6, "denominator": 12, "rate": 0.5}
            }, "rule": {"sample_n": 2}}}
        });
        let publish = Suppression { threshold: 5, round_to: 1 };
        let mut raw = v.clone();
        suppress_json(&mut v, &publish);
        assert_eq!(v["rows_rejected"], 1);
        assert_eq!(v["rejections_by_reason"]["bad_score"], 1);
        assert_eq!((v["episodes"].clone(), v["clients"].clone()), (Value::Null, 12.into()));
        assert_eq!(v["suppressed"], serde_json::json!(["episodes"]));
        let r = &v["measures"]["PHQ9"]["rates"];
        assert_eq!((r["recovery"]["numerator"].clone(), r["recovery"]["rate"].clone()), (Value::Null, Value::Null));
        assert_eq!(r["recovery"]["suppressed"], serde_json::json!(["numerator", "rate"]));
        assert_eq!(r["reliable_improvement"]["rate"], 0.5);
        assert!(r["reliable_improvement"].get("suppressed").is_none());
        assert_eq!(v["measures"]["PHQ9"]["rule"]["sample_n"], 2);
        // Rounded to 5, counts stay numbers.
        let mut rounded = raw.clone();
        suppress_json(&mut rounded, &Suppression { threshold: 5, round_to: 5 });
        assert_eq!((rounded["clients"].clone(), rounded["rows_read"].clone()), (10.into(), 3.into()));
        // Internal results: nothing changes.
        let before = raw.clone();
        suppress_json(&mut raw, &Suppression::NONE);
        assert_eq!(raw, before);
    }

    #[test]
    fn a_growth_model_of_few_series_is_withheld_whole() {
        let model = |series: u64| serde_json::json!({"series": series, "scores": 40, "slope": -0.6, "evaluations": 3});
        let mut v = serde_json::json!({"PHQ9": {"growth_model": model(4)}, "GAD7": {"growth_model": model(5)}});
        suppress_json(&mut v, &Suppression { threshold: 5, round_to: 1 });
        assert_eq!(
            (v["PHQ9"]["growth_model"].clone(), v["PHQ9"]["suppressed"].clone()),
            (Value::Null, serde_json::json!(["growth_model"]))
        );
        assert_eq!(v["GAD7"]["growth_model"], model(5), "the optimiser's evaluations are not people");
    }
}
