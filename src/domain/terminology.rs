//! Standard codes for instruments: SNOMED CT concept identifiers (as NHS England's
//! MHSDS codes the measures) and LOINC codes (as FHIR Observations carry them). The
//! registry accepts either in the `measure` column, and checks each code a user gives
//! by its check digit, so that a mistyped code is refused rather than matching nothing.

/// Why a code is refused (the `Err` of the checks below).
pub type Refusal = String;

/// Checks a SNOMED CT concept identifier (SCTID), as the SNOMED CT technical reference
/// defines it: 6 to 18 digits without a leading zero, whose last digit is a Verhoeff
/// check digit and whose two digits before it, the partition identifier, say "concept"
/// (`00` for a core concept, `10` for one of a national extension such as the UK's).
pub fn check_sctid(code: &str) -> Result<(), Refusal> {
    let b = code.as_bytes();
    if !(6..=18).contains(&b.len()) || !b.iter().all(u8::is_ascii_digit) || b[0] == b'0' {
        return Err(format!("SNOMED CT code {code:?} is not 6 to 18 digits without a leading zero"));
    }
    let partition = &code[b.len() - 3..b.len() - 1];
    if partition != "00" && partition != "10" {
        return Err(format!(
            "SNOMED CT code {code} does not name a concept (its partition identifier is {partition}, not 00 or 10)"
        ));
    }
    if !verhoeff_valid(b) {
        return Err(format!("SNOMED CT code {code} fails its check digit (mistyped?)"));
    }
    Ok(())
}

/// Checks a LOINC code: one to seven digits, a hyphen, and LOINC's mod-10 check digit.
pub fn check_loinc(code: &str) -> Result<(), Refusal> {
    let shape = || format!("LOINC code {code:?} is not digits, a hyphen and a check digit (as 44261-6)");
    let (number, check) = code.split_once('-').ok_or_else(shape)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(number) || number.len() > 7 || check.len() != 1 || !digits(check) {
        return Err(shape());
    }
    if mod10_check_digit(number.as_bytes()) != check.as_bytes()[0] - b'0' {
        return Err(format!("LOINC code {code} fails its check digit (mistyped?)"));
    }
    Ok(())
}

/// LOINC's check digit (the Luhn rule): from the right, every other digit starting with
/// the last is doubled, the digits of all the results are added, and the check digit
/// brings the sum up to a multiple of ten.
fn mod10_check_digit(number: &[u8]) -> u8 {
    let sum: u32 = (number.iter().rev().enumerate())
        .map(|(i, c)| {
            let d = u32::from(c - b'0') * if i % 2 == 0 { 2 } else { 1 };
            d / 10 + d % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Verhoeff's dihedral check over a whole number, check digit included: the product in
/// the dihedral group D5 of each digit, permuted by its position, is the identity.
/// The tables are built from their definitions rather than typed in, so that no entry
/// can be mistyped.
fn verhoeff_valid(digits: &[u8]) -> bool {
    // D5 with 0–4 the rotations and 5–9 the reflections.
    let multiply = |j: usize, k: usize| match (j < 5, k < 5) {
        (true, true) => (j + k) % 5,
        (true, false) => 5 + (j + k) % 5,
        (false, true) => 5 + (j + 5 - k) % 5,
        (false, false) => (j + 5 - k) % 5,
    };
    // The position permutation (0 1 5 8 9 4 2 7)(3 6), applied i times at position i.
    const P1: [usize; 10] = [1, 5, 7, 6, 2, 8, 3, 0, 9, 4];
    let permute = |times: usize, mut d: usize| {
        for _ in 0..times {
            d = P1[d];
        }
        d
    };
    let product = (digits.iter().rev().enumerate())
        .fold(0, |c, (i, &digit)| multiply(c, permute(i % 8, usize::from(digit - b'0'))));
    product == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identifiers published by SNOMED International and NHS England, and the ones
    /// the registry carries.
    const SCTIDS: [&str; 12] = [
        "138875005",        // SNOMED CT concept (the root)
        "404684003",        // clinical finding
        "22298006",         // myocardial infarction
        "73211009",         // diabetes mellitus
        "720433000",        // PHQ-9
        "445455005",        // GAD-7
        "718583008",        // CORE-10
        "716613004",        // ORS
        "718466001",        // SWEMWBS
        "718426000",        // WEMWBS
        "959951000000108",  // GBO goal score (UK extension)
        "1034351000000101", // GBO goal 1 (UK extension)
    ];

    #[test]
    fn published_snomed_codes_pass_and_any_one_mistyped_digit_fails() {
        for code in SCTIDS {
            assert_eq!(check_sctid(code), Ok(()), "{code}");
            // Verhoeff's check catches every single-digit error and every swap of
            // neighbouring digits; a changed digit may first fail the other rules.
            for at in 0..code.len() {
                for d in b'0'..=b'9' {
                    let mut typo = code.as_bytes().to_vec();
                    if typo[at] == d {
                        continue;
                    }
                    typo[at] = d;
                    assert!(!verhoeff_valid(&typo), "{code} with {} at {at}", d as char);
                }
                if at + 1 < code.len() && code.as_bytes()[at] != code.as_bytes()[at + 1] {
                    let mut swapped = code.as_bytes().to_vec();
                    swapped.swap(at, at + 1);
                    assert!(!verhoeff_valid(&swapped), "{code} with {at} and {} swapped", at + 1);
                }
            }
        }
    }

    #[test]
    fn snomed_codes_of_the_wrong_shape_or_kind_are_refused() {
        let refused = |code: &str| check_sctid(code).unwrap_err();
        assert!(refused("720433001").contains("check digit"));
        assert!(refused("12345").contains("6 to 18 digits"));
        assert!(refused("0720433000").contains("leading zero"));
        assert!(refused("72043300O").contains("6 to 18 digits"));
        assert!(refused("").contains("6 to 18 digits"));
        // 900000000000207008, the core module: a concept. PHQ-9's item number with the
        // partition of a description (01) or a relationship (02), each with its check digit.
        assert_eq!(check_sctid("900000000000207008"), Ok(()));
        assert!(refused("720433016").contains("partition identifier is 01"));
        assert!(refused("720433028").contains("partition identifier is 02"));
    }

    #[test]
    fn loinc_check_digits_follow_the_published_rule() {
        // 12345 by hand: doubled 5, 3, 1 are 10, 6, 2, digit sum 1 + 0 + 6 + 2 = 9; with
        // 4 and 2 the sum is 15, and 20 − 15 = 5.
        assert_eq!(mod10_check_digit(b"12345"), 5);
        for code in ["44249-1", "44261-6", "69737-5", "70274-6", "107332-9", "107333-7", "107334-5", "107331-1"] {
            assert_eq!(check_loinc(code), Ok(()), "{code}");
        }
        assert!(check_loinc("44261-5").unwrap_err().contains("check digit"));
        for bad in ["442616", "44261-", "-6", "44261-66", "4426a-6", "12345678-9", "44261 6"] {
            assert!(check_loinc(bad).unwrap_err().contains("not digits"), "{bad}");
        }
    }
}
