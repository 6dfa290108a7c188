//! The HTTP `Range` header (RFC 9110 §14), for one representation of known length.

/// One satisfiable byte range, inclusive start, exclusive end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// What to do with a request's `Range` header.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAnswer {
    /// Serve the whole representation (no header, another unit, or too
    /// complex to be worth honouring: the header may be ignored).
    Full,
    /// Serve these ranges (sorted, non-overlapping) with 206.
    Partial(Vec<ByteRange>),
    /// No range is satisfiable: 416.
    Unsatisfiable,
}

/// Most ranges honoured in one request; more (or overlapping ones) get the
/// full representation, so a request cannot multiply the bytes sent.
pub const MAX_RANGES: usize = 16;

/// Parses `header` for a representation of `len` bytes.
pub fn parse(header: &str, len: u64) -> RangeAnswer {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeAnswer::Full };
    let mut ranges = Vec::new();
    let mut any_valid_syntax = false;
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((a, b)) = part.split_once('-') else { return RangeAnswer::Full };
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || s.len() > 19 || !s.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        };
        let r = if a.is_empty() {
            // Suffix: the last N bytes.
            let Some(n) = num(b) else { return RangeAnswer::Full };
            any_valid_syntax = true;
            if n == 0 || len == 0 {
                continue;
            }
            ByteRange { start: len.saturating_sub(n), end: len }
        } else {
            let Some(start) = num(a) else { return RangeAnswer::Full };
            let end = if b.is_empty() {
                len
            } else {
                let Some(last) = num(b) else { return RangeAnswer::Full };
                if last < start {
                    // An inverted range is a syntax error: the header is ignored.
                    return RangeAnswer::Full;
                }
                last.saturating_add(1).min(len)
            };
            any_valid_syntax = true;
            if start >= len {
                continue;
            }
            ByteRange { start, end }
        };
        ranges.push(r);
        if ranges.len() > MAX_RANGES {
            return RangeAnswer::Full;
        }
    }
    if ranges.is_empty() {
        return if any_valid_syntax { RangeAnswer::Unsatisfiable } else { RangeAnswer::Full };
    }
    ranges.sort_by_key(|r| r.start);
    if ranges.windows(2).any(|w| w[1].start < w[0].end) {
        return RangeAnswer::Full;
    }
    RangeAnswer::Partial(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn single_suffix_and_open_ranges() {
        assert_eq!(parse("bytes=0-9", 100), RangeAnswer::Partial(vec![r(0, 10)]));
        assert_eq!(parse("bytes=90-", 100), RangeAnswer::Partial(vec![r(90, 100)]));
        assert_eq!(parse("bytes=-5", 100), RangeAnswer::Partial(vec![r(95, 100)]));
        assert_eq!(parse("bytes=95-500", 100), RangeAnswer::Partial(vec![r(95, 100)]));
        assert_eq!(parse("bytes=-500", 100), RangeAnswer::Partial(vec![r(0, 100)]));
    }

    #[test]
    fn multiple_ranges_are_sorted() {
        assert_eq!(parse("bytes=50-59, 0-9", 100), RangeAnswer::Partial(vec![r(0, 10), r(50, 60)]));
    }

    #[test]
    fn unsatisfiable_ranges_get_416() {
        assert_eq!(parse("bytes=100-", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse("bytes=200-300", 100), RangeAnswer::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn inverted_overlapping_malformed_or_too_many_ranges_are_ignored() {
        assert_eq!(parse("bytes=9-0", 100), RangeAnswer::Full);
        assert_eq!(parse("bytes=0-50,10-20", 100), RangeAnswer::Full);
        assert_eq!(parse("bytes=a-b", 100), RangeAnswer::Full);
        assert_eq!(parse("items=0-1", 100), RangeAnswer::Full);
        assert_eq!(parse("bytes=99999999999999999999-", 100), RangeAnswer::Full);
        let many: Vec<String> = (0..20).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        assert_eq!(parse(&format!("bytes={}", many.join(",")), 100), RangeAnswer::Full);
    }
}
