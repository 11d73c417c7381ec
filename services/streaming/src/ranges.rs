//! `Range` and `If-Range` (RFC 9110 §14) for media objects: what part of an object a GET gets.
//!
//! Byte ranges only. Several ranges are coalesced into the one span that covers them (allowed by
//! §14.2), so an answer is never multipart; players ask for one range at a time anyway. A header
//! that does not parse is ignored (the whole object), as the RFC lets a server do.

/// What to send of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// 200, the whole object.
    Whole,
    /// 206, bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// 416, with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// The span a request gets. `if_range` holds only when it is our strong `etag` (a date or a
/// weak tag never matches: the object may have changed within the same second).
pub fn span(range: Option<&str>, if_range: Option<&str>, etag: &str, size: u64) -> Span {
    let Some(range) = range else { return Span::Whole };
    if let Some(validator) = if_range
        && validator.trim() != etag
    {
        return Span::Whole;
    }
    let Some(specs) = range.trim().strip_prefix("bytes=") else { return Span::Whole };
    let mut covered: Option<(u64, u64)> = None;
    for spec in specs.split(',') {
        let Some(one) = parse_one(spec.trim(), size) else { return Span::Whole };
        if let Some((start, end)) = one {
            covered = Some(match covered {
                Some((s, e)) => (s.min(start), e.max(end)),
                None => (start, end),
            });
        }
    }
    match covered {
        Some((start, end)) => Span::Part { start, end },
        None => Span::Unsatisfiable,
    }
}

/// One range-spec: `None` when it does not parse, `Some(None)` when it is valid but asks for
/// nothing the object has, `Some(Some((start, end)))` otherwise (end inclusive, clamped).
fn parse_one(spec: &str, size: u64) -> Option<Option<(u64, u64)>> {
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Longer than u64: more than any object has.
        Some(s.parse().unwrap_or(u64::MAX))
    };
    if first.is_empty() {
        // Suffix: the last N bytes.
        let n = number(last)?;
        if n == 0 || size == 0 {
            return Some(None);
        }
        return Some(Some((size.saturating_sub(n), size - 1)));
    }
    let start = number(first)?;
    let end = if last.is_empty() { None } else { Some(number(last)?) };
    if end.is_some_and(|end| end < start) {
        return None;
    }
    if start >= size {
        return Some(None);
    }
    Some(Some((start, end.map_or(size - 1, |e| e.min(size - 1)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"abc\"";

    fn of(range: &str) -> Span {
        span(Some(range), None, TAG, 1000)
    }

    #[test]
    fn first_bytes_suffixes_and_open_ranges() {
        assert_eq!(of("bytes=0-99"), Span::Part { start: 0, end: 99 });
        assert_eq!(of("bytes=-100"), Span::Part { start: 900, end: 999 });
        assert_eq!(of("bytes=-5000"), Span::Part { start: 0, end: 999 }, "a suffix longer than the object");
        assert_eq!(of("bytes=500-"), Span::Part { start: 500, end: 999 });
        assert_eq!(of("bytes=990-2000"), Span::Part { start: 990, end: 999 }, "clamped at the end");
        assert_eq!(of("bytes=0-0"), Span::Part { start: 0, end: 0 });
    }

    #[test]
    fn beyond_the_end_is_unsatisfiable() {
        assert_eq!(of("bytes=1000-"), Span::Unsatisfiable);
        assert_eq!(of("bytes=5000-6000"), Span::Unsatisfiable);
        assert_eq!(of("bytes=-0"), Span::Unsatisfiable);
        assert_eq!(span(Some("bytes=0-"), None, TAG, 0), Span::Unsatisfiable, "an empty object");
        assert_eq!(of("bytes=5000-6000, 0-9"), Span::Part { start: 0, end: 9 }, "one satisfiable is enough");
    }

    #[test]
    fn several_ranges_are_coalesced_and_nonsense_is_ignored() {
        assert_eq!(of("bytes=0-9, 100-199"), Span::Part { start: 0, end: 199 });
        for nonsense in ["items=0-9", "bytes=9-0", "bytes=a-b", "bytes=", "bytes=--1", "bytes=1-2-3", "0-9"] {
            assert_eq!(of(nonsense), Span::Whole, "{nonsense}");
        }
        assert_eq!(
            of("bytes=99999999999999999999999-"),
            Span::Unsatisfiable,
            "a number past u64 is past the end"
        );
        assert_eq!(span(None, None, TAG, 1000), Span::Whole);
    }

    #[test]
    fn if_range_needs_the_current_strong_etag() {
        assert_eq!(span(Some("bytes=0-9"), Some(TAG), TAG, 1000), Span::Part { start: 0, end: 9 });
        assert_eq!(span(Some("bytes=0-9"), Some("\"old\""), TAG, 1000), Span::Whole);
        assert_eq!(span(Some("bytes=0-9"), Some("W/\"abc\""), TAG, 1000), Span::Whole);
        assert_eq!(span(Some("bytes=0-9"), Some("Wed, 21 Oct 2015 07:28:00 GMT"), TAG, 1000), Span::Whole);
    }
}
