//! Published standards that headline rates are set beside (NHS Talking Therapies'
//! recovery standard and the national reliable recovery and improvement targets), each
//! with its source and year. Built in as `[[standard]]` tables of `measures.toml`; a
//! measure file replaces one by giving the same `scope` and `rate`, and
//! `--no-standards` leaves them all out.

use serde::{Deserialize, Serialize};

/// Which side of its target a rate meets a standard on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meets {
    AtLeast,
    AtMost,
}

/// One standard: `scope` is a measure's code or `talking_therapies` (the combined
/// PHQ-9 + GAD-7 figures); `rate` one of the rates of `summary.json` there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standard {
    pub scope: String,
    pub rate: String,
    /// The target as a share (0.5 for 50 %).
    pub target: f64,
    pub meets: Meets,
    pub name: String,
    pub source: String,
    pub year: u16,
    /// Quoted widely but not checked against the publication itself.
    #[serde(default)]
    pub unverified: bool,
}

impl Standard {
    /// Whether `rate` meets the standard.
    pub fn met_by(&self, rate: f64) -> bool {
        match self.meets {
            Meets::AtLeast => rate >= self.target,
            Meets::AtMost => rate <= self.target,
        }
    }

    /// Checks a standard as a measure file gives it.
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.target) {
            return Err(format!(
                "standard {} {}: `target` {} is not a share between 0 and 1 (50 % is 0.5)",
                self.scope, self.rate, self.target
            ));
        }
        if self.scope.trim().is_empty() || self.rate.trim().is_empty() {
            return Err("a [[standard]] needs a `scope` (a measure code or talking_therapies) and a `rate`".into());
        }
        Ok(())
    }
}

/// `standards` with each of `replacing` in place of the one of the same scope and rate (or
/// added after them).
pub fn merged(mut standards: Vec<Standard>, replacing: Vec<Standard>) -> Vec<Standard> {
    for s in replacing {
        match standards.iter_mut().find(|t| t.scope == s.scope && t.rate == s.rate) {
            Some(t) => *t = s,
            None => standards.push(s),
        }
    }
    standards
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(rate: &str, target: f64) -> Standard {
        Standard {
            scope: "talking_therapies".into(),
            rate: rate.into(),
            target,
            meets: Meets::AtLeast,
            name: "n".into(),
            source: "s".into(),
            year: 2024,
            unverified: false,
        }
    }

    #[test]
    fn a_standard_is_met_on_its_side_and_replaced_by_scope_and_rate() {
        let s = standard("recovery", 0.5);
        assert!(s.met_by(0.5) && !s.met_by(0.499));
        let at_most = Standard { meets: Meets::AtMost, ..standard("reliable_deterioration", 0.1) };
        assert!(at_most.met_by(0.05) && !at_most.met_by(0.2));
        let all = merged(
            vec![standard("recovery", 0.5), standard("reliable_recovery", 0.48)],
            vec![standard("recovery", 0.6)],
        );
        assert_eq!(
            all.iter().map(|s| (s.rate.as_str(), s.target)).collect::<Vec<_>>(),
            [("recovery", 0.6), ("reliable_recovery", 0.48)]
        );
        assert!(standard("recovery", 50.0).check().unwrap_err().contains("0.5"));
    }
}
