//! `Range` headers, read against an object's size.

/// More ranges than this in one `Range` header are refused (416); 2..=this are ignored
/// and the whole object is sent (RFC 9110 lets a server ignore a Range header).
pub const MAX_RANGES: usize = 8;

/// What to do with a `Range` header for an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeDecision {
    /// Send the whole object (no usable range, or several: ignored).
    Full,
    /// Send the inclusive byte positions `first..=last`.
    Partial(u64, u64),
    /// 416: no requested range overlaps the object, or too many ranges.
    Unsatisfiable,
}

/// Parses `bytes=first-last`, `bytes=first-` and `bytes=-suffix` (RFC 9110 §14.1.2). A
/// header that does not parse is ignored, as the RFC asks.
pub fn parse_range(header: &[u8], size: u64) -> RangeDecision {
    let Ok(header) = std::str::from_utf8(header) else {
        return RangeDecision::Full;
    };
    let Some(specs) = header.trim().strip_prefix("bytes=") else {
        return RangeDecision::Full;
    };
    let specs: Vec<&str> = specs.split(',').map(str::trim).collect();
    if specs.len() > MAX_RANGES {
        return RangeDecision::Unsatisfiable;
    }
    let mut parsed = Vec::with_capacity(specs.len());
    for spec in &specs {
        let Some((first, last)) = spec.split_once('-') else {
            return RangeDecision::Full;
        };
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let resolved = match (first.trim(), last.trim()) {
            ("", suffix) => {
                let Some(suffix) = number(suffix) else {
                    return RangeDecision::Full;
                };
                (suffix > 0 && size > 0).then(|| (size - suffix.min(size), size - 1))
            }
            (first, "") => {
                let Some(first) = number(first) else {
                    return RangeDecision::Full;
                };
                (first < size).then(|| (first, size - 1))
            }
            (first, last) => {
                let (Some(first), Some(last)) = (number(first), number(last)) else {
                    return RangeDecision::Full;
                };
                if last < first {
                    return RangeDecision::Full; // invalid syntax: ignore the header
                }
                (first < size).then(|| (first, last.min(size - 1)))
            }
        };
        parsed.push(resolved);
    }
    let satisfiable: Vec<(u64, u64)> = parsed.into_iter().flatten().collect();
    match satisfiable.as_slice() {
        [] => RangeDecision::Unsatisfiable,
        [(first, last)] if specs.len() == 1 => RangeDecision::Partial(*first, *last),
        _ => RangeDecision::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_resolve_against_the_size() {
        assert_eq!(
            parse_range(b"bytes=0-99", 1000),
            RangeDecision::Partial(0, 99)
        );
        assert_eq!(
            parse_range(b"bytes=500-", 1000),
            RangeDecision::Partial(500, 999)
        );
        assert_eq!(
            parse_range(b"bytes=-100", 1000),
            RangeDecision::Partial(900, 999)
        );
        assert_eq!(
            parse_range(b"bytes=-5000", 1000),
            RangeDecision::Partial(0, 999)
        );
        assert_eq!(
            parse_range(b"bytes=990-5000", 1000),
            RangeDecision::Partial(990, 999)
        );
    }

    #[test]
    fn ranges_outside_the_object_are_unsatisfiable() {
        assert_eq!(
            parse_range(b"bytes=1000-", 1000),
            RangeDecision::Unsatisfiable
        );
        assert_eq!(
            parse_range(b"bytes=2000-3000", 1000),
            RangeDecision::Unsatisfiable
        );
        assert_eq!(parse_range(b"bytes=-0", 1000), RangeDecision::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), RangeDecision::Unsatisfiable);
    }

    #[test]
    fn headers_that_do_not_parse_are_ignored() {
        for header in [
            &b"items=0-1"[..],
            b"bytes=abc",
            b"bytes=5-1",
            b"bytes=1-2-3",
            b"bytes=+1-2",
            b"bytes=",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_range(header, 1000), RangeDecision::Full, "{header:?}");
        }
    }

    #[test]
    fn several_ranges_are_ignored_and_too_many_refused() {
        assert_eq!(parse_range(b"bytes=0-1,5-6", 1000), RangeDecision::Full);
        let many = format!("bytes={}", ["0-1"; MAX_RANGES + 1].join(","));
        assert_eq!(
            parse_range(many.as_bytes(), 1000),
            RangeDecision::Unsatisfiable
        );
    }
}
