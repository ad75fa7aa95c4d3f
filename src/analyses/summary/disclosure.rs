//! Disclosure control of a serialised summary for published results (`--publish`).

use crate::stats::rates::Suppression;

/// Subtrees of `summary.json` that count input records or hold settings, not people or
/// episodes: they are never suppressed.
const NOT_PEOPLE: &[&str] = &[
    "rows_read",
    "rows_used",
    "rows_rejected",
    "inputs",
    "rejections_by_reason",
    "options",
    "rule",
    "df",
    "sustain_version",
    "evaluations",
    // How many therapists or sites a unit-effects model has: not a count of clients.
    "units",
    // The extract date and the inactivity limit: settings.
    "extract",
];

/// Applies disclosure control to a serialised summary for publication: every count of
/// people or episodes below the threshold is withheld, and so is every rate whose
/// numerator or denominator is below it, every growth model fitted to fewer series (its
/// estimates describe those few people) and every unit-effects model of fewer episodes;
/// other counts are rounded. A withheld value becomes `null` and its key is listed in the
/// object's `suppressed` array (in an array, the item becomes `null`). Numbers stay
/// numbers. [`Suppression::NONE`] leaves everything as it is.
pub fn suppress_json(v: &mut serde_json::Value, s: &Suppression) {
    use serde_json::Value;
    if !s.publishing() {
        return;
    }
    let small = |x: &Value| x.as_u64().is_some_and(|n| s.value(n).is_none());
    match v {
        Value::Object(map) => {
            let mut withheld: Vec<String> = Vec::new();
            let has_parts = map.contains_key("numerator") && map.contains_key("denominator");
            if has_parts && (small(&map["numerator"]) || small(&map["denominator"])) {
                // The rate, and any rate made from it (a case-mix-adjusted one).
                // (and whether it meets a standard).
                withheld.extend(map.keys().filter(|k| *k == "rate" || *k == "met" || k.ends_with("_rate")).cloned());
            }
            // A change between two rates, either of them on withheld counts.
            let withheld_rate =
                |r: Option<&Value>| r.is_some_and(|r| small(&r["numerator"]) || small(&r["denominator"]));
            if withheld_rate(map.get("now")) || withheld_rate(map.get("earlier")) {
                withheld.extend(["difference", "ci_low", "ci_high"].map(String::from));
            }
            // The not-on-track flag's accuracy rests on the four counts beside it.
            let from_small = |a: &str, b: &str| map.get(a).is_some_and(&small) || map.get(b).is_some_and(&small);
            if map.contains_key("sensitivity") && from_small("flagged_poor", "unflagged_poor") {
                withheld.push("sensitivity".into());
            }
            if map.contains_key("specificity") && from_small("flagged_good", "unflagged_good") {
                withheld.push("specificity".into());
            }
            if map.get("growth_model").is_some_and(|m| small(&m["series"])) {
                withheld.push("growth_model".into());
            }
            // A unit-effects model of few episodes describes those few people.
            if map.get("model").is_some_and(|m| small(&m["episodes"])) {
                withheld.push("model".into());
            }
            for (k, child) in map.iter_mut() {
                if NOT_PEOPLE.contains(&k.as_str()) || withheld.contains(k) {
                    continue;
                }
                match child.as_u64() {
                    Some(n) => match s.value(n) {
                        None => withheld.push(k.clone()),
                        Some(published) => *child = Value::from(published),
                    },
                    None => suppress_json(child, s),
                }
            }
            for k in &withheld {
                if let Some(child) = map.get_mut(k) {
                    *child = Value::Null;
                }
            }
            if !withheld.is_empty() {
                withheld.sort();
                map.insert("suppressed".into(), Value::from(withheld));
            }
        }
        Value::Array(items) => {
            for child in items {
                match child.as_u64() {
                    Some(n) => *child = s.value(n).map_or(Value::Null, Value::from),
                    None => suppress_json(child, s),
                }
            }
        }
        _ => {}
    }
}
