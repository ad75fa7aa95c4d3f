//! `sustain import-fhir`: questionnaire totals from FHIR Observations (a bulk-export
//! NDJSON file, a Bundle, or one resource) into the measurements table, with
//! pseudonymous keys. An Observation holds the total of a completed questionnaire
//! (`valueQuantity`), names the instrument by a LOINC or SNOMED CT code, and points to
//! its patient and performer by reference. The references become keys through a keyed
//! hash (HMAC-SHA256 with the practice's own key), so the same patient gets the same key
//! in every export made with that key, and nothing of the record's identifiers is
//! copied: no names, no identifiers, no free text.

use crate::domain::registry::Registry;
use hmac::{KeyInit, Mac};
use serde_json::Value;

/// One measurement taken from an Observation.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedRow {
    pub client_id: String,
    /// Empty where the Observation names no practitioner as performer.
    pub therapist_id: String,
    /// `YYYY-MM-DD`, as written in the record (in the record's own time offset).
    pub date: String,
    /// The registry's code of the instrument.
    pub measure: String,
    pub score: f64,
}

/// Keys from FHIR references, keyed by the practice's secret.
pub struct Pseudonyms {
    key: Vec<u8>,
}

/// The shortest key `import-fhir` takes, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

impl Pseudonyms {
    /// `None` for a key shorter than [`MIN_KEY_BYTES`].
    pub fn new(key: &[u8]) -> Option<Pseudonyms> {
        (key.len() >= MIN_KEY_BYTES).then(|| Pseudonyms { key: key.to_vec() })
    }

    /// The key of a reference: the first 16 hex digits (64 bits) of HMAC-SHA256. Among a
    /// million patients the chance that two share a key is about 3 in 100 million.
    pub fn of(&self, reference: &str) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(reference.as_bytes());
        mac.finalize().into_bytes()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The resources of a file, each with its record number: the line for NDJSON (one
/// resource per line), the entry for a Bundle, 1 for a single resource. A line that is
/// not JSON is an `Err` with its reason.
pub fn resources(text: &str) -> Vec<(u64, Result<Value, &'static str>)> {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        if v["resourceType"] == "Bundle" {
            let entries = v["entry"].as_array().cloned().unwrap_or_default();
            return (entries.into_iter().enumerate())
                .map(|(i, e)| (i as u64 + 1, Ok(e.get("resource").cloned().unwrap_or(Value::Null))))
                .collect();
        }
        return vec![(1, Ok(v))];
    }
    (text.lines().enumerate())
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i as u64 + 1, serde_json::from_str(line).map_err(|_| "not_json")))
        .collect()
}

/// A literal reference to another resource (`Patient/123`), not a contained one (`#p1`).
fn reference(r: &Value) -> Option<&str> {
    r["reference"].as_str().filter(|s| s.contains('/') && !s.starts_with('#'))
}

/// The measurement an Observation holds, or why it holds none (the reasons of
/// `import_rejected.csv`).
pub fn observation(v: &Value, registry: &Registry, keys: &Pseudonyms) -> Result<ImportedRow, &'static str> {
    if v["resourceType"] != "Observation" {
        return Err("not_an_observation");
    }
    // Preliminary, cancelled or entered-in-error results are not results.
    if !matches!(v["status"].as_str(), Some("final" | "amended" | "corrected")) {
        return Err("status_not_final");
    }
    let subject = reference(&v["subject"]).ok_or("no_subject_reference")?;
    let therapist = (v["performer"].as_array().into_iter().flatten())
        .filter_map(reference)
        .find(|r| r.starts_with("Practitioner/") || r.starts_with("PractitionerRole/"));
    let codings = v["code"]["coding"].as_array().into_iter().flatten();
    let measure =
        codings.filter_map(|c| c["code"].as_str()).find_map(|code| registry.find(code)).ok_or("unknown_measure")?;
    let when = [&v["effectiveDateTime"], &v["effectiveInstant"], &v["effectivePeriod"]["start"]]
        .into_iter()
        .find_map(Value::as_str)
        .ok_or("no_date")?;
    // A year or a month alone has no day.
    let day = when.get(..10).filter(|d| crate::domain::dates::parse_iso_date(d).is_ok()).ok_or("no_day")?;
    if v.get("dataAbsentReason").is_some() {
        return Err("no_value");
    }
    let score = (v["valueQuantity"]["value"].as_f64())
        .or_else(|| v["valueInteger"].as_f64())
        .filter(|x| x.is_finite())
        .ok_or("no_value")?;
    Ok(ImportedRow {
        client_id: keys.of(subject),
        therapist_id: therapist.map(|t| keys.of(t)).unwrap_or_default(),
        date: day.to_string(),
        measure: registry.get(measure).code.clone(),
        score,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> Pseudonyms {
        Pseudonyms::new(b"a practice's key, 16+ bytes").unwrap()
    }

    /// A PHQ-9 total as the FHIR pattern gives it (LOINC 44261-6, UCUM `{score}`).
    fn phq9() -> Value {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6", "display": "PHQ-9 total score"}]},
            "subject": {"reference": "Patient/123", "display": "Jane Example"},
            "performer": [{"reference": "Organization/9"}, {"reference": "Practitioner/77"}],
            "effectiveDateTime": "2024-03-05T09:30:00+01:00",
            "valueQuantity": {"value": 14, "unit": "{score}", "system": "http://unitsofmeasure.org"}
        })
    }

    #[test]
    fn an_observation_becomes_a_row_with_keyed_pseudonyms_and_nothing_else() {
        let k = keys();
        let row = observation(&phq9(), &Registry::builtin(), &k).unwrap();
        assert_eq!(row.measure, "PHQ9");
        assert_eq!((row.date.as_str(), row.score), ("2024-03-05", 14.0));
        assert_eq!(row.client_id, k.of("Patient/123"));
        assert_eq!(row.therapist_id, k.of("Practitioner/77"));
        assert_eq!(row.client_id.len(), 16);
        assert!(!format!("{row:?}").contains("Jane") && !format!("{row:?}").contains("Patient"), "{row:?}");
        // Another key gives other pseudonyms; the same key the same.
        let other = Pseudonyms::new(b"another practice's key").unwrap();
        assert_ne!(other.of("Patient/123"), row.client_id);
        assert_eq!(keys().of("Patient/123"), row.client_id);
        assert!(Pseudonyms::new(b"too short").is_none());
    }

    /// HMAC-SHA256 itself, against RFC 4231 test case 2 (key "Jefe").
    #[test]
    fn the_keyed_hash_is_hmac_sha256() {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn other_codes_dates_and_values_are_read_and_the_rest_rejected_with_a_reason() {
        let (reg, k) = (Registry::builtin(), keys());
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = phq9();
            f(&mut v);
            observation(&v, &reg, &k)
        };
        let gad = with(&|v| {
            v["code"]["coding"] = json!([{"system": "http://snomed.info/sct", "code": "445455005"}]);
            v["valueQuantity"] = Value::Null;
            v["valueInteger"] = json!(9);
            v["effectiveDateTime"] = Value::Null;
            v["effectivePeriod"] = json!({"start": "2024-04-01", "end": "2024-04-01"});
        })
        .unwrap();
        assert_eq!((gad.measure.as_str(), gad.score, gad.date.as_str()), ("GAD7", 9.0, "2024-04-01"));
        let no_performer = with(&|v| v["performer"] = Value::Null).unwrap();
        assert_eq!(no_performer.therapist_id, "");
        let rejected = |f: &dyn Fn(&mut Value)| with(f).unwrap_err();
        assert_eq!(rejected(&|v| v["status"] = json!("preliminary")), "status_not_final");
        assert_eq!(rejected(&|v| v["resourceType"] = json!("Patient")), "not_an_observation");
        assert_eq!(
            rejected(&|v| v["subject"] = json!({"identifier": {"value": "943 476 5919"}})),
            "no_subject_reference"
        );
        assert_eq!(rejected(&|v| v["code"]["coding"][0]["code"] = json!("1234-5")), "unknown_measure");
        assert_eq!(rejected(&|v| v["effectiveDateTime"] = json!("2024-03")), "no_day");
        assert_eq!(rejected(&|v| v["effectiveDateTime"] = json!("2024-02-30")), "no_day");
        assert_eq!(rejected(&|v| v["effectiveDateTime"] = Value::Null), "no_date");
        assert_eq!(rejected(&|v| v["valueQuantity"] = json!({"unit": "{score}"})), "no_value");
        assert_eq!(rejected(&|v| v["dataAbsentReason"] = json!({"text": "asked, declined"})), "no_value");
    }

    #[test]
    fn files_hold_a_bundle_one_resource_or_a_resource_per_line() {
        let obs = phq9().to_string();
        let ndjson = format!("{obs}\n\n{{not json\n{obs}\n");
        let records: Vec<(u64, bool)> = resources(&ndjson).into_iter().map(|(n, r)| (n, r.is_ok())).collect();
        assert_eq!(records, vec![(1, true), (3, false), (4, true)]);
        let bundle = format!(r#"{{"resourceType": "Bundle", "entry": [{{"resource": {obs}}}, {{"fullUrl": "x"}}]}}"#);
        let entries = resources(&bundle);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].1, Ok(Value::Null), "an entry without a resource is rejected later");
        assert_eq!(resources(&obs).len(), 1);
    }
}
