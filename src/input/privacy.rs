//! Screening for direct identifiers: inputs must be anonymized, so a column that
//! carries e-mail addresses, phone numbers, personal names or dates of birth stops
//! the run before anything is written.
//!
//! The checks are deliberately simple and explainable: a header that names an
//! identifier, or values shaped like one. Messages never echo the value itself.

/// What kind of identifier a column appears to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentifierKind {
    Email,
    Phone,
    PersonalName,
    /// The header itself names an identifier (`email`, `dob`, `surname`, …).
    Header,
}

impl IdentifierKind {
    pub fn describe(self) -> &'static str {
        match self {
            IdentifierKind::Email => "e-mail addresses",
            IdentifierKind::Phone => "phone numbers",
            IdentifierKind::PersonalName => "personal names",
            IdentifierKind::Header => "a direct identifier (by its name)",
        }
    }
}

/// Headers (normalised: lower case, letters and digits only) that name a direct identifier.
const IDENTIFIER_HEADERS: &[&str] = &[
    "name",
    "firstname",
    "lastname",
    "surname",
    "forename",
    "forenames",
    "givenname",
    "familyname",
    "fullname",
    "middlename",
    "maidenname",
    "email",
    "emailaddress",
    "mail",
    "phone",
    "phonenumber",
    "telephone",
    "tel",
    "mobile",
    "mobilenumber",
    "cellphone",
    "dob",
    "dateofbirth",
    "birthdate",
    "birthday",
    "address",
    "streetaddress",
    "street",
    "postcode",
    "zipcode",
    "zip",
    "nhsnumber",
    "nhsno",
    "ssn",
    "socialsecuritynumber",
    "nationalinsurancenumber",
    "nino",
    "mrn",
    "medicalrecordnumber",
    "hospitalnumber",
    "passportnumber",
    "ipaddress",
];

/// Headers that end in "name" but name things, not people.
const SAFE_NAME_HEADERS: &[&str] = &[
    "measurename",
    "instrumentname",
    "sitename",
    "servicename",
    "clinicname",
    "teamname",
    "goalname",
    "objectivename",
    "scalename",
    "filename",
    "organisationname",
    "organizationname",
];

fn normalise_header(h: &str) -> String {
    h.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// Does the header name a direct identifier?
pub fn header_is_identifier(header: &str) -> bool {
    let h = normalise_header(header);
    if IDENTIFIER_HEADERS.contains(&h.as_str()) {
        return true;
    }
    // client_name, patient_email, therapist_phone, …
    let person_prefixes = ["client", "patient", "service user", "therapist", "clinician", "carer", "parent"];
    let suffixes = ["name", "email", "phone", "dob", "address", "mobile", "telephone", "dateofbirth"];
    if suffixes.iter().any(|s| h.ends_with(s)) && !SAFE_NAME_HEADERS.contains(&h.as_str()) {
        return person_prefixes.iter().any(|p| h.starts_with(&normalise_header(p))) || h.ends_with("email");
    }
    false
}

/// `local@domain.tld` with no spaces.
pub fn looks_like_email(v: &str) -> bool {
    let v = v.trim();
    let Some(at) = v.find('@') else { return false };
    let (local, domain) = (&v[..at], &v[at + 1..]);
    !local.is_empty()
        && !v.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// Ten to fifteen digits written with phone punctuation: `917 - 692 - 3867`,
/// `(020) 7946 0958`, `+44 7700 900123`. Plain digit strings are not flagged, as
/// numeric pseudonymous keys are common.
pub fn looks_like_phone(v: &str) -> bool {
    let v = v.trim();
    let mut digits = 0;
    let mut separators = 0;
    for c in v.chars() {
        match c {
            '0'..='9' => digits += 1,
            ' ' | '-' | '.' | '(' | ')' | '/' => separators += 1,
            '+' => separators += 1,
            _ => return false,
        }
    }
    (10..=15).contains(&digits) && separators > 0 && !v.contains("..")
}

/// Two to four capitalised words of letters (with `'`, `-` or `.` inside), the first
/// and last of them full words and any middle one possibly an initial: `Jane Doe`,
/// `Mary-Ann O'Neil`, `John Q. Public`. Keys such as `C0012` or `north-site` do not match.
pub fn looks_like_personal_name(v: &str) -> bool {
    let words: Vec<&str> = v.split_whitespace().collect();
    if !(2..=4).contains(&words.len()) {
        return false;
    }
    let full_word = |w: &str| {
        w.chars().next().is_some_and(|c| c.is_uppercase())
            && w.chars().filter(|c| c.is_alphabetic()).count() >= 2
            && w.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-' || c == '.')
            && w.chars().skip(1).any(|c| c.is_lowercase())
    };
    let initial = |w: &str| {
        let mut cs = w.chars();
        cs.next().is_some_and(|c| c.is_uppercase()) && matches!(cs.as_str(), "" | ".")
    };
    let last = words.len() - 1;
    words.iter().enumerate().all(|(i, w)| full_word(w) || (i > 0 && i < last && initial(w)))
}

/// Tallies value shapes over one column.
#[derive(Debug, Default, Clone, Copy)]
pub struct ColumnScreen {
    pub non_empty: u64,
    pub emails: u64,
    pub phones: u64,
    pub names: u64,
    /// 0-based record index of the first suspicious value of each kind.
    pub first_email: Option<u64>,
    pub first_phone: Option<u64>,
    pub first_name: Option<u64>,
}

impl ColumnScreen {
    /// Screens one value. This runs on every value of every column (150 million at 10 M
    /// rows), so the usual value is let through by a test of a few instructions.
    #[inline]
    pub fn add(&mut self, record: u64, v: &str) {
        let v = crate::domain::text::trim(v);
        if v.is_empty() {
            return;
        }
        self.non_empty += 1;
        if could_be_identifier(v.as_bytes()) {
            self.look_closer(record, v);
        }
    }

    /// Counts a value known to hold no `@`, no space and fewer than ten digits: one that
    /// [`ColumnScreen::add`] would only count.
    #[inline]
    pub fn add_plain(&mut self) {
        self.non_empty += 1;
    }

    #[cold]
    #[inline(never)]
    fn look_closer(&mut self, record: u64, v: &str) {
        let b = v.as_bytes();
        if b.contains(&b'@') && looks_like_email(v) {
            self.emails += 1;
            self.first_email.get_or_insert(record);
        } else if b.iter().filter(|c| c.is_ascii_digit()).count() >= 10 && looks_like_phone(v) {
            self.phones += 1;
            self.first_phone.get_or_insert(record);
        } else if b.contains(&b' ') && looks_like_personal_name(v) {
            self.names += 1;
            self.first_name.get_or_insert(record);
        }
    }

    /// Adds the counts of a screen over later records (screens of consecutive record
    /// ranges, merged in order, equal one screen over all of them).
    pub fn merge(&mut self, later: &ColumnScreen) {
        self.non_empty += later.non_empty;
        self.emails += later.emails;
        self.phones += later.phones;
        self.names += later.names;
        self.first_email = self.first_email.or(later.first_email);
        self.first_phone = self.first_phone.or(later.first_phone);
        self.first_name = self.first_name.or(later.first_name);
    }

    /// The verdict: any e-mail or phone number is enough; names need to be a pattern
    /// (every value in a key column, at least a fifth of the values elsewhere) because
    /// free text such as site names can look like a name.
    pub fn verdict(&self, key_column: bool) -> Option<(IdentifierKind, u64)> {
        if let Some(r) = self.first_email {
            return Some((IdentifierKind::Email, r));
        }
        if let Some(r) = self.first_phone {
            return Some((IdentifierKind::Phone, r));
        }
        let names_matter =
            if key_column { self.names > 0 } else { self.names >= 3 && self.names * 5 >= self.non_empty };
        if names_matter {
            return self.first_name.map(|r| (IdentifierKind::PersonalName, r));
        }
        None
    }
}

/// Whether a value needs the closer looks: an e-mail address needs an `@`, a personal
/// name a space, a phone number ten digits. May say yes when none of the looks would
/// match (they decide), never no when one would. Values of 8 to 16 ASCII bytes (dates,
/// longer keys) are tested eight bytes at a time; shorter ones cannot hold ten digits.
#[inline]
fn could_be_identifier(b: &[u8]) -> bool {
    let n = b.len();
    if n < 8 {
        return b.iter().any(|&c| c == b'@' || c == b' ');
    }
    if n > 16 {
        return true;
    }
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
    // The bytes after the first eight, from the last eight shifted down past the overlap.
    let (lo, hi) = (word(0), if n == 8 { 0 } else { word(n - 8) >> (8 * (16 - n)) });
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if (lo | hi) & HIGH != 0 {
        return true; // not ASCII: let the closer looks decide
    }
    // Per byte x < 0x80: the high bit of (x ^ c) + 0x7f is set unless x == c (the
    // classic zero-byte test, exact for 7-bit bytes since no byte carries into the next).
    let is = |w: u64, c: u8| !((w ^ (ONES * c as u64)) + ONES * 0x7f) & HIGH;
    // x is a digit when x >= '0' and not x >= ':'; x + 0x50 (or + 0x46) stays below 0x100.
    let digits = |w: u64| ((w + ONES * (0x80 - b'0') as u64) & !(w + ONES * (0x80 - b':') as u64) & HIGH).count_ones();
    // The shifted-in zero bytes of `hi` are neither `@`, space nor digits.
    is(lo, b'@') | is(hi, b'@') | is(lo, b' ') | is(hi, b' ') != 0 || digits(lo) + digits(hi) >= 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_headers_are_recognised() {
        for h in [
            "email",
            "E-mail",
            "Phone Number",
            "DOB",
            "date_of_birth",
            "client_name",
            "Surname",
            "patient email",
            "NHS Number",
        ] {
            assert!(header_is_identifier(h), "{h}");
        }
        for h in ["client_id", "measure", "score", "site_name", "therapist_id", "date", "session", "measure_name"] {
            assert!(!header_is_identifier(h), "{h}");
        }
    }

    #[test]
    fn emails_and_phones_are_recognised() {
        assert!(looks_like_email("jane.doe@example.org"));
        assert!(!looks_like_email("C@1"));
        assert!(!looks_like_email("a b@c.d"));
        for p in ["917 - 692 - 3867", "(020) 7946 0958", "+44 7700 900123", "917.692.3867", "917-692-3867"] {
            assert!(looks_like_phone(p), "{p}");
        }
        for p in ["9176923867", "2024-01-05", "C-917-692-3867", "12.5", "123-456"] {
            assert!(!looks_like_phone(p), "{p}");
        }
    }

    #[test]
    fn personal_names_are_recognised_but_keys_are_not() {
        for n in ["Jane Doe", "Mary-Ann O'Neil", "John Q. Public"] {
            assert!(looks_like_personal_name(n), "{n}");
        }
        for n in ["C0012", "client 17", "JANE DOE", "north-site", "Jane", "PHQ 9"] {
            assert!(!looks_like_personal_name(n), "{n}");
        }
    }

    #[test]
    fn the_quick_test_lets_through_only_what_the_closer_looks_would_pass() {
        // The plain definition: an `@`, a space or ten digits.
        let plain =
            |v: &[u8]| v.contains(&b'@') || v.contains(&b' ') || v.iter().filter(|b| b.is_ascii_digit()).count() >= 10;
        let check = |v: &[u8]| {
            let quick = could_be_identifier(v);
            assert!(quick || !plain(v), "said no to {v:?}");
            if v.is_ascii() && v.len() <= 16 {
                assert_eq!(quick, plain(v), "{v:?}");
            }
        };
        for v in ["C00001", "E1", "T06", "2024-02-06", "assessment", "follow_up", "PHQ-9", "19", "12.5", "-2", ""] {
            assert!(!could_be_identifier(v.as_bytes()), "{v}");
        }
        for v in ["a@b.c", "Jane Doe", "0123456789", "917 - 692 - 3867", "x@", " ", "a1234567891234567", "Zoë Ann"] {
            assert!(could_be_identifier(v.as_bytes()), "{v}");
        }
        // Nine digits are not enough; ten are, wherever they sit among the 16 bytes.
        assert!(!could_be_identifier(b"12345-6789"));
        assert!(could_be_identifier(b"x123456-7890"));
        assert!(could_be_identifier(b"-----1234567890-"));
        // Mixed values (a fixed pseudo-random sequence) of every length up to 17.
        let alphabet = b"0123456789@ /:x\x7f";
        let mut state = 12345u64;
        for _ in 0..50_000 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (state >> 59) as usize % 18;
            let v: Vec<u8> = (0..len).map(|i| alphabet[(state >> (i * 3 % 56)) as usize % alphabet.len()]).collect();
            check(&v);
        }
        // Every byte, at every place.
        for len in 1..=17 {
            for at in 0..len {
                for c in 0u8..=255 {
                    let mut v = vec![b'x'; len];
                    v[at] = c;
                    check(&v);
                }
            }
        }
    }

    #[test]
    fn one_email_refuses_a_column_but_one_name_like_value_in_free_text_does_not() {
        let mut s = ColumnScreen::default();
        for (i, v) in ["a", "b", "x@y.org"].iter().enumerate() {
            s.add(i as u64, v);
        }
        assert_eq!(s.verdict(false), Some((IdentifierKind::Email, 2)));

        let mut t = ColumnScreen::default();
        for (i, v) in ["North Leeds", "s1", "s2", "s3", "s4", "s5"].iter().enumerate() {
            t.add(i as u64, v);
        }
        assert_eq!(t.verdict(false), None);
        assert_eq!(t.verdict(true), Some((IdentifierKind::PersonalName, 0)));
    }
}
