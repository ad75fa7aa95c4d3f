//! Text helpers every layer reads values with.

/// `str::trim`, with a fast path for the usual value, which starts and ends with a
/// visible ASCII character and so has no white space to trim (every value of every row
/// is trimmed, and `str::trim` decodes characters to find Unicode white space).
#[inline]
pub fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(b)) if a.is_ascii_graphic() && b.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}
