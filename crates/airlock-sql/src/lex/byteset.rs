//! Finding the next byte of a set in a run of text, a byte at a time through a
//! 256-entry table.
//!
//! The lexer's runs of DML text stop at a few byte values (quotes, parentheses, `;`,
//! a newline, …) that come every few bytes; between them it has nothing to do. (An
//! AVX2/AVX-512 reading of 32 and 64 bytes at a time was removed, issue 67: no
//! intrinsics in airlock's own code; `memchr` finds the single bytes the lexer looks
//! for elsewhere.)
//!
//! Invariant: [`ByteSet::find`] and [`ByteSet::find_or_start`] stop at exactly the
//! first byte that is a member (or a start after a non-word byte), nowhere else.

/// A set of byte values, and optionally a second set of bytes that count only where
/// a word starts ([`with_starts`](Self::with_starts)), in one table: a run is scanned
/// with one look-up a byte.
pub(crate) struct ByteSet {
    /// [`MEMBER`] and [`START`] bits of each byte value.
    member: [u8; 256],
}

/// A byte of the set itself.
const MEMBER: u8 = 1;
/// A byte of the starts set ([`ByteSet::find_or_start`]).
const START: u8 = 2;

impl ByteSet {
    /// The set of the bytes whose `class` is not 0.
    pub(crate) const fn new(class: &[u8; 256]) -> ByteSet {
        let mut member = [0; 256];
        let mut b = 0;
        while b < 256 {
            if class[b] != 0 {
                member[b] = MEMBER;
            }
            b += 1;
        }
        ByteSet { member }
    }

    /// This set, with the members of `starts` found by
    /// [`find_or_start`](Self::find_or_start) where a word starts.
    pub(crate) const fn with_starts(self, starts: &ByteSet) -> ByteSet {
        let mut member = self.member;
        let mut b = 0;
        while b < 256 {
            if starts.member[b] & MEMBER != 0 {
                member[b] |= START;
            }
            b += 1;
        }
        ByteSet { member }
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, b: u8) -> bool {
        self.member[b as usize] & MEMBER != 0
    }

    #[cfg(test)]
    pub(crate) fn is_start(&self, b: u8) -> bool {
        self.member[b as usize] & START != 0
    }

    /// The first index at or after `from` whose byte is in the set (`bytes.len()` if
    /// none).
    #[inline]
    pub(crate) fn find(&self, bytes: &[u8], from: usize) -> usize {
        let at = bytes.get(from..).and_then(|rest| {
            rest.iter()
                .position(|&b| self.member[b as usize] & MEMBER != 0)
        });
        at.map_or(bytes.len().max(from), |at| from + at)
    }

    /// [`find`](Self::find) for the members of `self`, or of its starts
    /// ([`with_starts`](Self::with_starts)) where the byte before is not one of `word`
    /// (at `from` itself the byte before does not count: a start there is found).
    #[inline]
    pub(crate) fn find_or_start(&self, word: &ByteSet, bytes: &[u8], from: usize) -> usize {
        let mut j = from;
        while j < bytes.len() {
            // One look-up a byte; the byte before is read only at a start.
            match self.member[bytes[j] as usize] {
                0 => j += 1,
                m if m & MEMBER != 0 || j == from => return j,
                _ if word.member[bytes[j - 1] as usize] & MEMBER == 0 => return j,
                _ => j += 1,
            }
        }
        j.min(bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value, at every place, is found exactly when it is a member.
    #[test]
    fn finds_exactly_the_members_wherever_they_are() {
        let mut class = [0u8; 256];
        for b in b"'\"-/;\\$\n\0:()[]sS" {
            class[*b as usize] = 1;
        }
        let set = ByteSet::new(&class);
        for b in 0..=255u8 {
            for at in [0usize, 1, 15, 16, 31, 32, 33, 63, 64, 70] {
                let mut text = vec![b'a'; 80];
                text[at] = b;
                for from in [0usize, 1, 31, 40] {
                    let want = if class[b as usize] != 0 && at >= from {
                        at
                    } else if class[b'a' as usize] != 0 {
                        from
                    } else {
                        80
                    };
                    assert_eq!(
                        set.find(&text, from),
                        want,
                        "byte {b:#x} at {at} from {from}"
                    );
                }
            }
        }
        assert_eq!(set.find(b"", 0), 0);
    }

    /// A byte of `starts` is found only where the byte before is no word byte (or
    /// where the search begins), wherever it sits.
    #[test]
    fn finds_starts_only_after_a_non_word_byte() {
        let plain = ByteSet::new(&class_of(b"(;"));
        let starts = ByteSet::new(&class_of(b"sS"));
        let set = ByteSet::new(&class_of(b"(;")).with_starts(&starts);
        let word = ByteSet::new(&class_of(
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$",
        ));
        for at in [0usize, 1, 2, 31, 32, 33, 34, 64, 65, 70] {
            for before in [b'x', b' ', b'.', b'_', b'S', b';'] {
                for from in [0usize, 1, 33] {
                    let mut text = vec![b'x'; 80];
                    text[at] = b's';
                    if at > 0 {
                        text[at - 1] = before;
                    }
                    let found = set.find_or_start(&word, &text, from);
                    let slow = (from..text.len())
                        .find(|&j| {
                            plain.contains(text[j])
                                || (starts.contains(text[j])
                                    && (j == from || !word.contains(text[j - 1])))
                        })
                        .unwrap_or(text.len());
                    assert_eq!(
                        found, slow,
                        "s at {at} after {:?} from {from}",
                        before as char
                    );
                }
            }
        }
        let mut text = vec![b'x'; 80];
        text[40] = b's';
        text[50] = b';';
        assert_eq!(set.find_or_start(&word, &text, 3), 50, "an s inside a word");
        text[39] = b' ';
        assert_eq!(
            set.find_or_start(&word, &text, 3),
            40,
            "an s starting a word"
        );
        assert_eq!(
            set.find_or_start(&word, &text, 40),
            40,
            "an s where it begins"
        );
    }

    fn class_of(bytes: &[u8]) -> [u8; 256] {
        let mut class = [0u8; 256];
        for b in bytes {
            class[*b as usize] = 1;
        }
        class
    }
}
