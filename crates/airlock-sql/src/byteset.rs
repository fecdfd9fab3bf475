//! Finding the next byte of a set in a run of text, 32 bytes at a time where the CPU
//! can (AVX2), a byte at a time where it cannot: the same answer either way.
//!
//! The lexer's runs of DML text stop at a few byte values (quotes, parentheses, `;`,
//! a newline, …) that come every few bytes; between them it has nothing to do. A set
//! is split by each byte's two nibbles (the usual `pshufb` lookup): a byte is in the
//! set when the bits its low nibble selects meet the bit its high nibble selects. That
//! is exact when the set's rows (the low nibbles present under each high nibble) are
//! at most 8 different ones, which [`ByteSet::new`] checks at compile time.

/// A set of byte values, with its table and its nibble lookup.
pub(super) struct ByteSet {
    member: [bool; 256],
    low: [u8; 16],
    high: [u8; 16],
}

/// What the last wide read of a text found: the bits of the 32-byte block at `start`
/// (bit i for `start + i`) whose bytes [`ByteSet::find_or_start_kept`] stops at. Only
/// for the one text it was read from, and only blocks after that text's first byte.
#[derive(Clone, Copy, Debug)]
pub(super) struct Kept {
    start: usize,
    bits: u32,
}

impl Default for Kept {
    fn default() -> Self {
        Kept {
            start: usize::MAX,
            bits: 0,
        }
    }
}

impl Kept {
    /// From `j` on, within the kept block: the first stop (`Ok`), or where the block
    /// ends when it has none left (`Err`); `None` when `j` is not in it.
    #[inline]
    fn after(&self, j: usize) -> Option<Result<usize, usize>> {
        let k = j.checked_sub(self.start).filter(|k| *k < 32)?;
        let left = self.bits >> k;
        Some(if left != 0 {
            Ok(j + left.trailing_zeros() as usize)
        } else {
            Err(self.start + 32)
        })
    }

    /// The first byte of `bytes` (the text the block was read from) at or after `from`
    /// that the block found and `want` takes, when there is one in the block; `None`
    /// says nothing of the bytes after the block.
    #[inline]
    pub(super) fn first(
        &self,
        bytes: &[u8],
        from: usize,
        want: impl Fn(u8) -> bool,
    ) -> Option<usize> {
        let k = from.checked_sub(self.start).filter(|k| *k < 32)?;
        let mut left = self.bits >> k;
        while left != 0 {
            let at = from + left.trailing_zeros() as usize;
            if want(bytes[at]) {
                return Some(at);
            }
            left &= left - 1;
        }
        None
    }
}

impl ByteSet {
    /// The set of the bytes whose `class` is not 0. Fails to compile if the set's rows
    /// need more than 8 bits.
    pub(super) const fn new(class: &[u8; 256]) -> ByteSet {
        let mut member = [false; 256];
        let mut rows = [0u16; 16];
        let mut b = 0;
        while b < 256 {
            if class[b] != 0 {
                member[b] = true;
                rows[b >> 4] |= 1 << (b & 15);
            }
            b += 1;
        }
        // One bit for each distinct non-empty row.
        let mut seen = [0u16; 8];
        let mut used = 0;
        let mut high = [0u8; 16];
        let mut h = 0;
        while h < 16 {
            if rows[h] != 0 {
                let mut k = 0;
                while k < used && seen[k] != rows[h] {
                    k += 1;
                }
                if k == used {
                    assert!(used < 8, "more than 8 distinct rows");
                    seen[used] = rows[h];
                    used += 1;
                }
                high[h] = 1 << k;
            }
            h += 1;
        }
        let mut low = [0u8; 16];
        let mut l = 0;
        while l < 16 {
            let mut k = 0;
            while k < used {
                if seen[k] & (1 << l) != 0 {
                    low[l] |= 1 << k;
                }
                k += 1;
            }
            l += 1;
        }
        ByteSet { member, low, high }
    }

    #[cfg(test)]
    pub(super) fn contains(&self, b: u8) -> bool {
        self.member[b as usize]
    }

    /// The first index at or after `from` whose byte is in the set (`bytes.len()` if
    /// none).
    #[inline]
    pub(super) fn find(&self, bytes: &[u8], from: usize) -> usize {
        let mut j = from;
        #[cfg(target_arch = "x86_64")]
        if bytes.len().saturating_sub(j) >= 32 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            match unsafe { self.find_avx2(bytes, j) } {
                Ok(found) => return found,
                Err(end) => j = end,
            }
        }
        while j < bytes.len() && !self.member[bytes[j] as usize] {
            j += 1;
        }
        j
    }

    /// [`find`](Self::find) for the members of `self`, or of `starts` where the byte
    /// before is not one of `word` (at `from` itself the byte before does not count:
    /// a byte of `starts` there is found). The lexer keeps its blocks
    /// ([`find_or_start_kept`](Self::find_or_start_kept)); the tests read afresh.
    #[cfg(test)]
    pub(super) fn find_or_start(
        &self,
        starts: &ByteSet,
        word: &ByteSet,
        bytes: &[u8],
        from: usize,
    ) -> usize {
        self.find_or_start_kept(starts, word, bytes, from, &mut Kept::default())
    }

    /// [`find_or_start`](Self::find_or_start), keeping in `kept` what the last wide
    /// block read of `bytes` found: a run that stops at several bytes of one block
    /// (a row's parentheses and quotes) reads the block once, not once a stop. The
    /// same answer: the block's bits are [`find_or_start`]'s own test of each byte
    /// after `from` (the byte at `from` is tested on its own, as there).
    #[inline(always)]
    pub(super) fn find_or_start_kept(
        &self,
        starts: &ByteSet,
        word: &ByteSet,
        bytes: &[u8],
        from: usize,
        kept: &mut Kept,
    ) -> usize {
        #[cfg(not(target_arch = "x86_64"))]
        let _ = kept;
        let hit = |j: usize| {
            let b = bytes[j] as usize;
            self.member[b]
                || (starts.member[b] && (j == from || !word.member[bytes[j - 1] as usize]))
        };
        let mut j = from;
        if j < bytes.len() && hit(j) {
            return j;
        }
        j += 1;
        #[cfg(target_arch = "x86_64")]
        if bytes.len().saturating_sub(j) >= 32 && std::arch::is_x86_feature_detected!("avx2") {
            if let Some(found) = kept.after(j) {
                match found {
                    Ok(found) => return found,
                    Err(end) => j = end,
                }
            }
            if bytes.len() - j >= 32 {
                // SAFETY: the CPU has AVX2 (checked just above); j >= 1.
                match unsafe { self.find_or_start_avx2(starts, word, bytes, j, kept) } {
                    Ok(found) => return found,
                    Err(end) => j = end,
                }
            }
        }
        while j < bytes.len() && !hit(j) {
            j += 1;
        }
        j.min(bytes.len())
    }

    /// The set's lookup tables, in both lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn tables(&self) -> (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i) {
        use std::arch::x86_64::*;
        // SAFETY: 16-byte unaligned loads of the two 16-byte tables.
        let (low, high) = unsafe {
            (
                _mm_loadu_si128(self.low.as_ptr().cast()),
                _mm_loadu_si128(self.high.as_ptr().cast()),
            )
        };
        (
            _mm256_broadcastsi128_si256(low),
            _mm256_broadcastsi128_si256(high),
        )
    }

    /// Blocks from `j` (at least 1) on, as [`find_avx2`](Self::find_avx2), for
    /// [`find_or_start`](Self::find_or_start): each block is read again one byte back
    /// for the bytes before.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn find_or_start_avx2(
        &self,
        starts: &ByteSet,
        word: &ByteSet,
        bytes: &[u8],
        mut j: usize,
        kept: &mut Kept,
    ) -> Result<usize, usize> {
        use std::arch::x86_64::*;
        let set = self.tables();
        let start = starts.tables();
        let words = word.tables();
        while j + 32 <= bytes.len() {
            // SAFETY: bytes[j - 1..j + 32] is in bounds (j >= 1 and the loop's condition).
            let (x, before) = unsafe {
                (
                    _mm256_loadu_si256(bytes.as_ptr().add(j).cast()),
                    _mm256_loadu_si256(bytes.as_ptr().add(j - 1).cast()),
                )
            };
            let found = members(set, x) | (members(start, x) & !members(words, before));
            if found != 0 {
                *kept = Kept {
                    start: j,
                    bits: found,
                };
                return Ok(j + found.trailing_zeros() as usize);
            }
            j += 32;
        }
        Err(j)
    }

    /// Whole 32-byte blocks from `j` on: the index of the first member in them, or
    /// where the blocks end (fewer than 32 bytes left).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn find_avx2(&self, bytes: &[u8], mut j: usize) -> Result<usize, usize> {
        use std::arch::x86_64::*;
        let tables = self.tables();
        while j + 32 <= bytes.len() {
            // SAFETY: bytes[j..j + 32] is in bounds (the loop's condition).
            let x = unsafe { _mm256_loadu_si256(bytes.as_ptr().add(j).cast()) };
            let found = members(tables, x);
            if found != 0 {
                return Ok(j + found.trailing_zeros() as usize);
            }
            j += 32;
        }
        Err(j)
    }
}

/// Which of the 32 bytes of `x` are in the set whose [`ByteSet::tables`] are given: bit
/// i for byte i (each byte's low nibble picks a row of `low`, its high nibble one of
/// `high`; a member is where the two share a bit).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn members(
    (low, high): (std::arch::x86_64::__m256i, std::arch::x86_64::__m256i),
    x: std::arch::x86_64::__m256i,
) -> u32 {
    use std::arch::x86_64::*;
    let nibble = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(x, nibble);
    let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
    let hit = _mm256_and_si256(_mm256_shuffle_epi8(low, lo), _mm256_shuffle_epi8(high, hi));
    !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hit, _mm256_setzero_si256())) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value, at every place in a block and across block ends, is found
    /// exactly when it is a member (so the wide path answers as the byte loop does).
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
    /// where the search begins), wherever it sits in a block: the same as the byte loop.
    #[test]
    fn finds_starts_only_after_a_non_word_byte() {
        let set = ByteSet::new(&class_of(b"(;"));
        let starts = ByteSet::new(&class_of(b"sS"));
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
                    let found = set.find_or_start(&starts, &word, &text, from);
                    let slow = (from..text.len())
                        .find(|&j| {
                            set.member[text[j] as usize]
                                || (starts.member[text[j] as usize]
                                    && (j == from || !word.member[text[j - 1] as usize]))
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
        assert_eq!(
            set.find_or_start(&starts, &word, &text, 3),
            50,
            "an s inside a word"
        );
        text[39] = b' ';
        assert_eq!(
            set.find_or_start(&starts, &word, &text, 3),
            40,
            "an s starting a word"
        );
        assert_eq!(
            set.find_or_start(&starts, &word, &text, 40),
            40,
            "an s where it begins"
        );
    }

    /// A search that keeps its blocks answers as one that reads afresh, from every
    /// place on, in the order a run of text goes (each search from past the last
    /// stop, or from further on); a kept block's `first` finds what a byte loop finds
    /// in it.
    #[test]
    fn kept_blocks_answer_as_fresh_reads() {
        let set = ByteSet::new(&class_of(b"(;'\n"));
        let starts = ByteSet::new(&class_of(b"sS"));
        let word = ByteSet::new(&class_of(
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$",
        ));
        let pieces: [&[u8]; 8] = [b"ab", b" s", b"(", b"'x'", b"\n", b"ss ", b";", b"xyzS"];
        for seed in 0..200u32 {
            let mut text = Vec::new();
            let mut r = seed.wrapping_mul(2_654_435_761);
            while text.len() < 150 {
                r = r.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                text.extend_from_slice(pieces[(r >> 16) as usize % pieces.len()]);
            }
            for step in [1usize, 2, 5] {
                let mut kept = Kept::default();
                let mut from = 0;
                while from < text.len() {
                    let fresh = set.find_or_start(&starts, &word, &text, from);
                    let kept_answer =
                        set.find_or_start_kept(&starts, &word, &text, from, &mut kept);
                    assert_eq!(kept_answer, fresh, "seed {seed}, from {from}");
                    if let Some(at) = kept.first(&text, from, |b| b == b'\'') {
                        let loop_at = (from..).find(|&j| text[j] == b'\'').unwrap();
                        assert_eq!(at, loop_at, "seed {seed}, from {from}");
                    }
                    from = (fresh + 1).max(from + step);
                }
            }
        }
    }

    fn class_of(bytes: &[u8]) -> [u8; 256] {
        let mut class = [0u8; 256];
        for b in bytes {
            class[*b as usize] = 1;
        }
        class
    }
}
