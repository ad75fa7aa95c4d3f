use super::*;

#[test]
fn the_number_at_risk_is_of_those_still_followed_at_each_time() {
    // Times 10 (relapse), 100, 200 (relapse), 400 days: at 0 months 4, at 3 months
    // (91 days) 3, at 6 (183) 2, at 12 (365) 1.
    let fit = crate::stats::survival::kaplan_meier(&[(10.0, true), (100.0, false), (200.0, true), (400.0, false)]);
    assert_eq!(at_risk_note(&fit, 13.0, Suppression::NONE), "at 0, 3, 6 and 12 months: 4, 3, 2 and 1");
    let published = Suppression { threshold: 3, round_to: 1 };
    assert_eq!(at_risk_note(&fit, 4.0, published), "at 0 and 3 months: 4 and 3");
    assert_eq!(at_risk_note(&fit, 7.0, published), "at 0, 3 and 6 months: 4, 3 and fewer than 3");
}

#[test]
fn periods_sit_on_a_calendar_and_lines_break_at_gaps() {
    assert_eq!(period_ordinal("2024-03"), Some(2024 * 12 + 2));
    assert_eq!(period_ordinal("2024-Q1"), Some(2024 * 4));
    assert_eq!(period_axis_label(2024 * 12 + 2, false), "24-03");
    assert_eq!(period_axis_label(2024 * 4 + 3, true), "24-Q4");
    assert_eq!(runs_of(&[0.0, 1.0, 2.0, 5.0, 6.0, 9.0]), [0..3, 3..5, 5..6]);
}

#[test]
fn a_lone_small_category_is_withheld_with_the_next_smallest() {
    let cells: BTreeMap<Outcome, f64> =
        [(Outcome::Recovered, 20.0), (Outcome::Improved, 2.0), (Outcome::Unchanged, 9.0), (Outcome::Deteriorated, 0.0)]
            .into_iter()
            .collect();
    let published = Suppression { threshold: 5, round_to: 1 };
    assert_eq!(withheld_cells(&cells, published), [Outcome::Improved, Outcome::Unchanged]);
    assert!(withheld_cells(&cells, Suppression::NONE).is_empty());
}
