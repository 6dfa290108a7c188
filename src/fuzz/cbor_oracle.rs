//! A second opinion on canonical CBOR, for the fuzz targets.
//!
//! `cbor::decode_canonical` accepts bytes only if re-encoding the decoded
//! value gives them back, so asserting `decode(x).encode() == x` after it
//! succeeds can never fail. This module is an independent statement of the
//! rules of docs/FORMAT.md §3, written from that text alone: it shares no code
//! with `cbor.rs`, minicbor or the project's encoders, and knows no schema.
//! When a project decoder accepts bytes that this oracle calls non-canonical,
//! one of the two is wrong.
//!
//! The subset (FORMAT.md §3): unsigned integers, byte strings, UTF-8 text
//! strings, arrays, maps whose keys are the unsigned integers `0, 1, …, n−1`
//! in that order, and `null`; definite lengths and shortest heads only; one
//! item, nothing after it. Nesting is bounded by [`MAX_NESTING`]. The oracle
//! allocates nothing and recurses at most [`MAX_NESTING`] + 1 levels.

/// Deepest container nesting accepted. The deepest documents nest 3 levels
/// (an envelope's signature list, a keyset's key entries), so 16 only bounds
/// the recursion, it rejects no real document.
pub const MAX_NESTING: usize = 16;

/// Why bytes are not canonical, with the byte offset of the offending head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// The input ends inside the item that starts at `at`.
    Truncated { at: usize },
    /// Bytes remain after the top-level item, from `at`.
    Trailing { at: usize },
    /// An integer or length head longer than the shortest that fits.
    LongHead { at: usize },
    /// An indefinite length (additional information 31), or a lone break byte.
    Indefinite { at: usize },
    /// Additional information 28–30: not well-formed CBOR.
    Malformed { at: usize },
    /// Major type 1.
    Negative { at: usize },
    /// Major type 6.
    Tag { at: usize },
    /// Half, single or double precision float.
    Float { at: usize },
    /// A simple value other than `null` (`false`, `true`, `undefined`, others).
    Simple { at: usize },
    /// A text string that is not valid UTF-8.
    InvalidUtf8 { at: usize },
    /// A map key that is not an unsigned integer.
    KeyNotUint { at: usize },
    /// A map key not greater than the previous one: a duplicate or unsorted key.
    KeyOrder { at: usize, key: u64, prev: u64 },
    /// A map key greater than its position: a key is missing before it.
    KeyMissing { at: usize, key: u64, expected: u64 },
    /// Containers nested deeper than [`MAX_NESTING`].
    TooDeep { at: usize },
}

/// One head as the oracle reads it (strings with their content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Uint(u64),
    Bytes(&'a [u8]),
    Text(&'a str),
    /// An array head with its item count; the items follow.
    Array(u64),
    /// A map head with its entry count; `2 × count` items follow.
    Map(u64),
    Null,
}

/// Reads heads one by one, in document order, checking each.
pub struct Walker<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Walker<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Walker { data, pos: 0 }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    /// `n` bytes, or `Truncated` naming the item that began at `start`.
    fn take(&mut self, n: u64, start: usize) -> Result<&'a [u8], Reject> {
        let left = self.data.len() - self.pos;
        if n > left as u64 {
            return Err(Reject::Truncated { at: start });
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    /// The argument of a head whose additional information is `info`,
    /// rejecting any longer form than the value needs (RFC 8949 §4.2.1).
    fn argument(&mut self, info: u8, start: usize) -> Result<u64, Reject> {
        let (width, least) = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => (1, 24),
            25 => (2, 1 << 8),
            26 => (4, 1 << 16),
            27 => (8, 1 << 32),
            31 => return Err(Reject::Indefinite { at: start }),
            _ => return Err(Reject::Malformed { at: start }),
        };
        let v = self.take(width, start)?.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        if v < least {
            return Err(Reject::LongHead { at: start });
        }
        Ok(v)
    }

    /// The next head. For a container only the head is read; its items follow.
    pub fn head(&mut self) -> Result<Item<'a>, Reject> {
        let start = self.pos;
        let initial = self.take(1, start)?[0];
        let (major, info) = (initial >> 5, initial & 0x1f);
        match major {
            0 => Ok(Item::Uint(self.argument(info, start)?)),
            1 => Err(Reject::Negative { at: start }),
            2 | 3 => {
                let len = self.argument(info, start)?;
                let content = self.take(len, start)?;
                if major == 2 {
                    Ok(Item::Bytes(content))
                } else {
                    std::str::from_utf8(content)
                        .map(Item::Text)
                        .map_err(|_| Reject::InvalidUtf8 { at: start })
                }
            }
            4 => Ok(Item::Array(self.argument(info, start)?)),
            5 => Ok(Item::Map(self.argument(info, start)?)),
            6 => Err(Reject::Tag { at: start }),
            _ => match info {
                22 => Ok(Item::Null),
                25..=27 => Err(Reject::Float { at: start }),
                28..=30 => Err(Reject::Malformed { at: start }),
                31 => Err(Reject::Indefinite { at: start }),
                _ => Err(Reject::Simple { at: start }),
            },
        }
    }

    /// One complete item, its contents checked; returns its head.
    pub fn skip(&mut self) -> Result<Item<'a>, Reject> {
        self.item(0)
    }

    fn item(&mut self, depth: usize) -> Result<Item<'a>, Reject> {
        let start = self.pos;
        let head = self.head()?;
        match head {
            Item::Array(n) | Item::Map(n) if depth >= MAX_NESTING && n > 0 => {
                return Err(Reject::TooDeep { at: start });
            }
            Item::Array(n) => {
                for _ in 0..n {
                    self.item(depth + 1)?;
                }
            }
            Item::Map(n) => {
                for i in 0..n {
                    let at = self.pos;
                    let Item::Uint(key) = self.head()? else { return Err(Reject::KeyNotUint { at }) };
                    if key < i {
                        return Err(Reject::KeyOrder { at, key, prev: i - 1 });
                    }
                    if key != i {
                        return Err(Reject::KeyMissing { at, key, expected: i });
                    }
                    self.item(depth + 1)?;
                }
            }
            _ => {}
        }
        Ok(head)
    }
}

/// Whether `data` is exactly one data item in the canonical form.
pub fn canonical(data: &[u8]) -> Result<(), Reject> {
    let mut w = Walker::new(data);
    w.skip()?;
    if !w.at_end() {
        return Err(Reject::Trailing { at: w.position() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_items_are_accepted() {
        for bytes in [
            &[0x00][..],
            &[0x17],
            &[0x18, 0x18],
            &[0x18, 0xff],
            &[0x19, 0x01, 0x00],
            &[0x1a, 0x00, 0x01, 0x00, 0x00],
            &[0x1b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
            &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x40],
            &[0x43, 1, 2, 3],
            &[0x60],
            &[0x63, b'a', b'b', b'c'],
            &[0x66, 0xe6, 0x96, 0xb0, 0xe9, 0x97, 0xbb], // "新闻"
            &[0x80],
            &[0x83, 0x01, 0x40, 0xf6],
            &[0xa0],
            &[0xa2, 0x00, 0x01, 0x01, 0x81, 0x60], // {0: 1, 1: [""]}
            &[0xf6],
        ] {
            assert_eq!(canonical(bytes), Ok(()), "{bytes:02x?}");
        }
        // A 24-byte string needs the one-byte length head.
        let mut s = vec![0x58, 24];
        s.extend_from_slice(&[0xaa; 24]);
        assert_eq!(canonical(&s), Ok(()));
        // Nesting exactly at the bound is fine.
        let mut deep = vec![0x81; MAX_NESTING];
        deep.push(0x80);
        assert_eq!(canonical(&deep), Ok(()));
    }

    #[test]
    fn long_integer_and_length_heads_are_rejected() {
        for bytes in [
            &[0x18, 0x05][..],
            &[0x18, 0x17],
            &[0x19, 0x00, 0xff],
            &[0x1a, 0x00, 0x00, 0xff, 0xff],
            &[0x1b, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
            &[0x58, 0x01, 0xaa],
            &[0x78, 0x01, b'a'],
            &[0x98, 0x01, 0x00],
            &[0xb8, 0x01, 0x00, 0x00],
        ] {
            assert_eq!(canonical(bytes), Err(Reject::LongHead { at: 0 }), "{bytes:02x?}");
        }
        // Inside a container, at the right offset.
        assert_eq!(canonical(&[0xa1, 0x00, 0x18, 0x05]), Err(Reject::LongHead { at: 2 }));
        assert_eq!(canonical(&[0xa1, 0x18, 0x00, 0x05]), Err(Reject::LongHead { at: 1 }));
    }

    #[test]
    fn indefinite_lengths_and_break_bytes_are_rejected() {
        for bytes in
            [&[0x9f, 0x01, 0xff][..], &[0xbf, 0x00, 0x01, 0xff], &[0x5f, 0x41, 0x00, 0xff], &[0x7f, 0xff]]
        {
            assert_eq!(canonical(bytes), Err(Reject::Indefinite { at: 0 }), "{bytes:02x?}");
        }
        assert_eq!(canonical(&[0xff]), Err(Reject::Indefinite { at: 0 }));
        assert_eq!(canonical(&[0x1f]), Err(Reject::Indefinite { at: 0 }));
        assert_eq!(canonical(&[0x1c]), Err(Reject::Malformed { at: 0 }));
    }

    #[test]
    fn duplicate_unsorted_missing_and_non_integer_map_keys_are_rejected() {
        assert_eq!(
            canonical(&[0xa2, 0x00, 0x01, 0x00, 0x01]),
            Err(Reject::KeyOrder { at: 3, key: 0, prev: 0 })
        );
        assert_eq!(
            canonical(&[0xa3, 0x00, 0x01, 0x02, 0x01, 0x01, 0x01]),
            Err(Reject::KeyMissing { at: 3, key: 2, expected: 1 })
        );
        assert_eq!(
            canonical(&[0xa3, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]),
            Err(Reject::KeyOrder { at: 5, key: 0, prev: 1 })
        );
        assert_eq!(canonical(&[0xa1, 0x01, 0x00]), Err(Reject::KeyMissing { at: 1, key: 1, expected: 0 }));
        assert_eq!(canonical(&[0xa1, 0x60, 0x00]), Err(Reject::KeyNotUint { at: 1 }));
        assert_eq!(canonical(&[0xa1, 0xf6, 0x00]), Err(Reject::KeyNotUint { at: 1 }));
        // A negative key is rejected for its type before its place as a key.
        assert_eq!(canonical(&[0xa1, 0x20, 0x00]), Err(Reject::Negative { at: 1 }));
    }

    #[test]
    fn tags_floats_negatives_and_other_simple_values_are_rejected() {
        assert_eq!(canonical(&[0xc0, 0x60]), Err(Reject::Tag { at: 0 }));
        assert_eq!(canonical(&[0xd8, 0x18, 0x40]), Err(Reject::Tag { at: 0 }));
        assert_eq!(canonical(&[0x81, 0xc2, 0x41, 0x01]), Err(Reject::Tag { at: 1 }));
        assert_eq!(canonical(&[0xf9, 0x3c, 0x00]), Err(Reject::Float { at: 0 }));
        assert_eq!(canonical(&[0xfa, 0x3f, 0x80, 0x00, 0x00]), Err(Reject::Float { at: 0 }));
        assert_eq!(canonical(&[0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]), Err(Reject::Float { at: 0 }));
        assert_eq!(canonical(&[0x20]), Err(Reject::Negative { at: 0 }));
        for simple in [&[0xf4][..], &[0xf5], &[0xf7], &[0xe0], &[0xf8, 0x20], &[0xf8, 0x16]] {
            assert_eq!(canonical(simple), Err(Reject::Simple { at: 0 }), "{simple:02x?}");
        }
    }

    #[test]
    fn trailing_bytes_and_empty_input_are_rejected() {
        assert_eq!(canonical(&[0x00, 0x00]), Err(Reject::Trailing { at: 1 }));
        assert_eq!(canonical(&[0x80, 0xf6]), Err(Reject::Trailing { at: 1 }));
        assert_eq!(canonical(&[]), Err(Reject::Truncated { at: 0 }));
    }

    #[test]
    fn truncated_input_is_rejected_at_every_cut() {
        let whole = [0xa2, 0x00, 0x43, 1, 2, 3, 0x01, 0x82, 0x19, 0x01, 0x00, 0x61, b'x'];
        assert_eq!(canonical(&whole), Ok(()));
        for cut in 0..whole.len() {
            assert!(matches!(canonical(&whole[..cut]), Err(Reject::Truncated { .. })), "cut at {cut}");
        }
        // Lengths far beyond the input neither allocate nor loop.
        assert_eq!(
            canonical(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(Reject::Truncated { at: 0 })
        );
        assert_eq!(
            canonical(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(Reject::Truncated { at: 9 })
        );
    }

    #[test]
    fn invalid_utf8_text_is_rejected() {
        for bad in [&[0x61, 0xff][..], &[0x62, 0xc3, 0x28], &[0x63, 0xed, 0xa0, 0x80], &[0x61, 0xc3]] {
            assert_eq!(canonical(bad), Err(Reject::InvalidUtf8 { at: 0 }), "{bad:02x?}");
        }
        // The same bytes are fine in a byte string.
        assert_eq!(canonical(&[0x41, 0xff]), Ok(()));
    }

    #[test]
    fn deep_nesting_is_rejected_without_deep_recursion() {
        let deep = vec![0x81u8; 100_000];
        assert_eq!(canonical(&deep), Err(Reject::TooDeep { at: MAX_NESTING }));
        let mut maps = Vec::new();
        for _ in 0..=MAX_NESTING {
            maps.extend_from_slice(&[0xa1, 0x00]);
        }
        maps.push(0x00);
        assert_eq!(canonical(&maps), Err(Reject::TooDeep { at: 2 * MAX_NESTING }));
    }

    /// Every CBOR file among the committed test vectors: the document bodies,
    /// the repository's envelopes and trees, and the two negative vectors
    /// whose fault is in the CBOR.
    #[test]
    fn every_committed_test_vector_is_canonical() {
        let vectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        let mut files = Vec::new();
        for dir in ["documents", "repo/roots", "repo/keysets", "repo/snapshots"] {
            for e in std::fs::read_dir(vectors.join(dir)).expect("vectors directory").flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".diag") {
                    files.push(e.path());
                }
            }
        }
        for e in std::fs::read_dir(vectors.join("repo/trees")).expect("trees directory").flatten() {
            files.extend(std::fs::read_dir(e.path()).expect("tree fan-out").flatten().map(|e| e.path()));
        }
        files.push(vectors.join("repo/head"));
        assert!(files.len() >= 12, "only {} vector files found", files.len());
        for f in &files {
            let bytes = std::fs::read(f).expect("vector file");
            assert_eq!(canonical(&bytes), Ok(()), "{}", f.display());
        }
        let noncanonical = std::fs::read(vectors.join("negative/head-noncanonical-int")).expect("vector");
        let mut w = Walker::new(&noncanonical);
        let (Ok(Item::Array(3)), Ok(Item::Text("head")), Ok(Item::Bytes(body))) =
            (w.head(), w.head(), w.head())
        else {
            panic!("head-noncanonical-int is not a head envelope");
        };
        assert!(matches!(canonical(body), Err(Reject::LongHead { .. })));
        let trailing = std::fs::read(vectors.join("negative/head-trailing-byte")).expect("vector");
        assert_eq!(canonical(&trailing), Err(Reject::Trailing { at: trailing.len() - 1 }));
    }
}
