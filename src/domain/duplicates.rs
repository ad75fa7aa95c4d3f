//! Rows that repeat another: the same key with the same value (the first is kept) or a
//! different one (none is used).

use crate::domain::columns::Measurements;

/// A row that repeats another.
#[derive(Debug, Clone, PartialEq)]
pub enum Duplicate {
    /// Same key and same score as an earlier row, which is kept.
    Exact { kept_row: usize },
    /// Same key as another row with a different score: none of them is used.
    Conflicting { rows_in_group: usize },
}

/// Finds duplicates among rows in `order`, which must be sorted so that equal keys are
/// adjacent with the earliest input record first. Rows with the same key and value
/// repeat the first (which is kept); a key with differing values conflicts, and none
/// of its rows is used. Returns `(row, why)` pairs.
pub fn find_duplicates<K: PartialEq>(
    order: &[u32],
    key: impl Fn(usize) -> K,
    value: impl Fn(usize) -> f64,
) -> Vec<(usize, Duplicate)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let first = order[start] as usize;
        let first_key = key(first);
        let mut end = start + 1;
        while end < order.len() && key(order[end] as usize) == first_key {
            end += 1;
        }
        if end - start > 1 {
            let group = &order[start..end];
            let same = group.iter().all(|&r| value(r as usize) == value(first));
            for &r in if same { &group[1..] } else { group } {
                let why = if same {
                    Duplicate::Exact { kept_row: first }
                } else {
                    Duplicate::Conflicting { rows_in_group: group.len() }
                };
                out.push((r as usize, why));
            }
        }
        start = end;
    }
    out
}

/// Duplicate measurement rows: same client, episode, measure, session and date.
pub fn measurement_duplicates(order: &[u32], m: &Measurements) -> Vec<(usize, Duplicate)> {
    find_duplicates(order, |i| (m.client[i], m.episode[i], m.measure[i], m.session[i], m.date[i]), |i| m.score[i])
}
