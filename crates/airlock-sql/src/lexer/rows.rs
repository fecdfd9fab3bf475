//! A data file's rows, 64 bytes at a time.
//!
//! A dump's or a seed's INSERT statements come one after the other, each a few dozen
//! bytes with a few stops (parentheses, quotes, its `;`), so reading them a stop at a
//! time costs more in stops than in bytes. Here each 64-byte block is classified at
//! once (AVX2 where the CPU has it): where its constants begin and end (the parity of
//! its quotes), its parentheses and `;` outside them, its newlines, and the few bytes
//! that could make a statement read otherwise (a comment, a quoted identifier, a dollar
//! quote, a psql variable or meta-command, a NUL, a backslash before a quote, a
//! `set_config` call). An `E'…'` constant reads otherwise than a plain one only where a
//! backslash escapes a quote, which the backslash rule sees. A DML statement with none of those is read whole:
//! it ends at its first `;` outside constants and parentheses, and all it changes is
//! the line count. The bytes between its `;` and the next statement's first word, when
//! they repeat what the lexer last read there, are read at once too.
//!
//! Invariant: the lane reads a statement only where reading it byte by byte would end
//! it at the same `;`, with the same lines and nothing to report; at anything else it
//! stops at the statement's first unread byte and the lexer reads on as before. The
//! property tests that hold the lexer's fast paths to its byte-by-byte reading
//! (`tests.rs`) hold this one too.

use super::{is_blank, is_word_byte, Keep, Kind, Lex, Lexer, Mode, Stmt, MAX_STATEMENT};

/// One 64-byte block: bit i for byte i.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits {
    quote: u64,
    semi: u64,
    open: u64,
    close: u64,
    newline: u64,
    backslash: u64,
    /// Bytes that may change how a statement reads ([`RARE`]).
    rare: u64,
}

/// Outside a constant, the bytes that may begin something other than plain text: a
/// quoted identifier, a dollar quote or parameter, a NUL, a meta-command, a comment, a
/// psql variable, a `set_config` call ([`rare_reads_plain`] looks at each).
const RARE: &[u8] = b"\"$\0\\-/:_";

/// Statements the lexer reads itself after the lane stopped before one it could not
/// vouch for, before the lane tries again (a file whose rows all hold, say, `E'…'`
/// constants is not classified twice).
pub(super) const BACKOFF: u32 = 16;

/// Bits of a block, one byte at a time: the reference, and the reading where the CPU
/// has no AVX2.
fn classify_bytes(block: &[u8; 64]) -> Bits {
    let mut b = Bits::default();
    for (i, &c) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match c {
            b'\'' => b.quote |= bit,
            b';' => b.semi |= bit,
            b'(' => b.open |= bit,
            b')' => b.close |= bit,
            b'\n' => b.newline |= bit,
            _ => {}
        }
        if c == b'\\' {
            b.backslash |= bit;
        }
        if RARE.contains(&c) {
            b.rare |= bit;
        }
    }
    b
}

/// [`RARE`] as two nibble tables (`byteset.rs` explains the lookup): one bit for each
/// high nibble its bytes have (at most 8), set in the low nibbles' entries of its bytes.
const RARE_NIBBLES: ([u8; 16], [u8; 16]) = {
    let mut low = [0u8; 16];
    let mut high = [0u8; 16];
    let mut used = 0;
    let mut i = 0;
    while i < RARE.len() {
        let h = (RARE[i] >> 4) as usize;
        if high[h] == 0 {
            assert!(used < 8, "more than 8 high nibbles");
            high[h] = 1 << used;
            used += 1;
        }
        low[(RARE[i] & 15) as usize] |= high[h];
        i += 1;
    }
    (low, high)
};

/// How a CPU reads a block: the bits of its bytes, and a prefix XOR.
trait Wide {
    fn classify(block: &[u8; 64]) -> Bits;

    /// Bit i set when an odd number of bits 0..=i are: inside a constant, for quotes.
    #[inline(always)]
    fn prefix_xor(mut x: u64) -> u64 {
        x ^= x << 1;
        x ^= x << 2;
        x ^= x << 4;
        x ^= x << 8;
        x ^= x << 16;
        x ^= x << 32;
        x
    }
}

/// A byte at a time: the reference, and the reading where the CPU has no AVX2.
struct Narrow;

impl Wide for Narrow {
    fn classify(block: &[u8; 64]) -> Bits {
        classify_bytes(block)
    }
}

/// A lane compiled for `features` (`$lane`, unsafe: for a CPU that has them) and
/// `$has`, whether this CPU has them: one list says both, so no lane runs on a CPU
/// checked for fewer features than it is compiled with.
macro_rules! wide_lane {
    ($(#[$doc:meta])* $lane:ident, $has:ident, $wide:ty, [$($feature:tt),+]) => {
        $(#[$doc])*
        #[cfg(target_arch = "x86_64")]
        $(#[target_feature(enable = $feature)])+
        unsafe fn $lane(&mut self, rest: &[u8]) -> (usize, Stop) {
            self.lane::<$wide>(rest)
        }

        /// Whether this CPU has every feature the lane above is compiled for.
        #[cfg(target_arch = "x86_64")]
        fn $has() -> bool {
            true $(&& std::arch::is_x86_feature_detected!($feature))+
        }
    };
}

/// AVX2, with a carry-less multiply for the prefix XOR (only called from
/// [`Lexer::dml_lane_avx2`], which the CPU is checked for).
#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Wide for Avx2 {
    #[inline(always)]
    fn classify(block: &[u8; 64]) -> Bits {
        // SAFETY: only inlined into `dml_lane_avx2`, run where the CPU has AVX2.
        unsafe { classify_avx2(block) }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        // SAFETY: as above, where the CPU has PCLMULQDQ.
        unsafe { clmul_prefix_xor(x) }
    }
}

/// AVX-512 (BW): a block is one register, and a comparison gives its bits at once.
#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Wide for Avx512 {
    #[inline(always)]
    fn classify(block: &[u8; 64]) -> Bits {
        // SAFETY: only inlined into `dml_lane_avx512`, run where the CPU has AVX-512 BW.
        unsafe { classify_avx512(block) }
    }

    #[inline(always)]
    fn prefix_xor(x: u64) -> u64 {
        // SAFETY: as above, where the CPU has PCLMULQDQ.
        unsafe { clmul_prefix_xor(x) }
    }
}

/// [`classify_bytes`] with AVX-512 (BW).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn classify_avx512(block: &[u8; 64]) -> Bits {
    use std::arch::x86_64::*;
    // SAFETY: a 64-byte unaligned load of the block; two 16-byte loads of the tables.
    let (x, low, high) = unsafe {
        (
            _mm512_loadu_si512(block.as_ptr().cast()),
            _mm512_broadcast_i32x4(_mm_loadu_si128(RARE_NIBBLES.0.as_ptr().cast())),
            _mm512_broadcast_i32x4(_mm_loadu_si128(RARE_NIBBLES.1.as_ptr().cast())),
        )
    };
    let eq = |c: u8| _mm512_cmpeq_epi8_mask(x, _mm512_set1_epi8(c as i8));
    let nibble = _mm512_set1_epi8(0x0f);
    let lo = _mm512_and_si512(x, nibble);
    let hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), nibble);
    let hit = _mm512_and_si512(_mm512_shuffle_epi8(low, lo), _mm512_shuffle_epi8(high, hi));
    Bits {
        quote: eq(b'\''),
        semi: eq(b';'),
        open: eq(b'('),
        close: eq(b')'),
        newline: eq(b'\n'),
        backslash: eq(b'\\'),
        rare: _mm512_test_epi8_mask(hit, hit),
    }
}

/// [`classify_bytes`] with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn classify_avx2(block: &[u8; 64]) -> Bits {
    use std::arch::x86_64::*;
    // SAFETY: two 32-byte unaligned loads of the 64-byte block; two 16-byte loads of
    // the 16-byte tables.
    let (halves, low, high) = unsafe {
        (
            [
                _mm256_loadu_si256(block.as_ptr().cast()),
                _mm256_loadu_si256(block.as_ptr().add(32).cast()),
            ],
            _mm256_broadcastsi128_si256(_mm_loadu_si128(RARE_NIBBLES.0.as_ptr().cast())),
            _mm256_broadcastsi128_si256(_mm_loadu_si128(RARE_NIBBLES.1.as_ptr().cast())),
        )
    };
    let mut b = Bits::default();
    for (h, x) in halves.into_iter().enumerate() {
        let shift = 32 * h;
        let eq = |c: u8| -> u64 {
            let m = _mm256_movemask_epi8(_mm256_cmpeq_epi8(x, _mm256_set1_epi8(c as i8)));
            u64::from(m as u32) << shift
        };
        b.quote |= eq(b'\'');
        b.semi |= eq(b';');
        b.open |= eq(b'(');
        b.close |= eq(b')');
        b.newline |= eq(b'\n');
        b.backslash |= eq(b'\\');
        let nibble = _mm256_set1_epi8(0x0f);
        let lo = _mm256_and_si256(x, nibble);
        let hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
        let hit = _mm256_and_si256(_mm256_shuffle_epi8(low, lo), _mm256_shuffle_epi8(high, hi));
        let none = _mm256_movemask_epi8(_mm256_cmpeq_epi8(hit, _mm256_setzero_si256()));
        b.rare |= u64::from(!(none as u32)) << shift;
    }
    b
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
fn clmul_prefix_xor(x: u64) -> u64 {
    use std::arch::x86_64::*;
    let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
    _mm_cvtsi128_si64(product) as u64
}

/// The `;` among a block's bytes outside constants that end a statement (outside
/// parentheses), and the parentheses' depth after the block, from `depth` before it:
/// psql's count, in which a `)` too many is ignored. Rows nest parentheses one deep at
/// most, mostly: then their parity is the depth, found for the whole block at once.
#[inline(always)]
fn statement_ends<W: Wide>(open: u64, close: u64, semi: u64, depth: u32) -> (u64, u32) {
    let parens = open | close;
    if depth <= 1 {
        let level = W::prefix_xor(parens) ^ if depth == 1 { !0 } else { 0 };
        if open & !level == 0 && close & level == 0 {
            return (semi & !level, (level >> 63) as u32);
        }
    }
    let (mut ends, mut d) = (0, depth);
    let mut events = parens | semi;
    while events != 0 {
        let bit = events & events.wrapping_neg();
        if open & bit != 0 {
            d = d.saturating_add(1);
        } else if close & bit != 0 {
            d = d.saturating_sub(1);
        } else if d == 0 {
            ends |= bit;
        }
        events &= events - 1;
    }
    (ends, d)
}

/// Whether the rare byte at `rest[j]` (outside a constant, or a backslash inside one:
/// `inside`) reads as plain text byte by byte: a `-` or `/` that opens no comment, a
/// `::` cast, a `_` of no `set_config` word, a backslash inside a constant before
/// anything but a quote (before one, the mark of a legacy file, or the escape of one
/// in an `E'…'` constant). What the bytes in view cannot tell is not plain.
fn rare_reads_plain(rest: &[u8], j: usize, inside: bool) -> bool {
    let next = rest.get(j + 1).copied();
    match rest[j] {
        b'\\' => inside && next.is_some_and(|n| n != b'\''),
        b'-' => next.is_some_and(|n| n != b'-'),
        b'/' => next.is_some_and(|n| n != b'*'),
        b':' => cast(rest, j),
        b'_' => !maybe_set_config(rest, j),
        _ => false,
    }
}

/// The `:` at `rest[j]` is one of a `::` cast (no third `:` on either side), which
/// the lexer's Colon state passes over.
fn cast(rest: &[u8], j: usize) -> bool {
    if j < 2 {
        return false;
    }
    let (before2, before) = (rest[j - 2], rest[j - 1]);
    let (next, next2) = (rest.get(j + 1).copied(), rest.get(j + 2).copied());
    let not_colon = |b: Option<u8>| b.is_some_and(|b| b != b':');
    let first = next == Some(b':') && not_colon(next2) && before != b':';
    let second = before == b':' && not_colon(next) && before2 != b':';
    first || second
}

/// The `_` at `rest[j]` may be the one of a `set_config` word that the lexer's
/// `set_config` watch takes for a call (a word that starts there, then a byte that is
/// no word byte): true also when the bytes in view cannot tell.
fn maybe_set_config(rest: &[u8], j: usize) -> bool {
    let Some(start) = j.checked_sub(3).filter(|&s| s > 0) else {
        return true;
    };
    if !rest[start..j].eq_ignore_ascii_case(b"set") || is_word_byte(rest[start - 1]) {
        return false;
    }
    match rest.get(j + 1..j + 7) {
        Some(word) if word.eq_ignore_ascii_case(b"config") => {
            rest.get(j + 7).is_none_or(|&b| !is_word_byte(b))
        }
        Some(_) => false,
        None => true,
    }
}

/// The bytes between a `;` and the first word of the statement after it (the blanks,
/// the word, the blank that ends it: at most 16), as the lexer last read them.
struct Opening {
    bytes: u128,
    mask: u128,
    len: usize,
    newlines: usize,
    /// Where the word begins.
    word_at: usize,
}

impl Opening {
    /// `rest` (a `;` first) goes on with these bytes.
    #[inline(always)]
    fn follows(&self, rest: &[u8]) -> bool {
        match rest.get(1..17) {
            Some(next) => {
                let next = u128::from_le_bytes(next.try_into().expect("16 bytes"));
                next & self.mask == self.bytes
            }
            None => rest.get(1..1 + self.len) == Some(&self.bytes.to_le_bytes()[..self.len]),
        }
    }
}

/// Why the lane stopped.
pub(super) enum Stop {
    /// At the end of the bytes it was given, or where the lexer must decide something
    /// of its own (another kind of statement, a comment between two).
    Done,
    /// Before a statement whose text it cannot vouch for.
    Blank,
}

impl Lexer {
    /// The lexer is where the lane reads: lint's reading of a script, inside a plain
    /// DML statement (not MERGE, whose version lint judges) in Normal text between
    /// words, keeping no text, no `set_config` call seen or under way.
    pub(super) fn lane_ready(&self) -> bool {
        self.mode == Mode::Script
            && self.keep == Keep::NonDml
            && !self.dml_events
            && !self.keep_dml
            && self.lex == Lex::Normal
            && self.stmt == Stmt::Known
            && self.kind == Kind::Dml
            && !self.merge
            && !self.in_word
            && !self.capturing
            && self.meta.is_none()
            && self.begin_depth == 0
            && !self.stopped
            && self.set_config.idle()
            && !self.set_config.saw_calls()
    }

    /// Read whole DML statements from `rest[0]` on, which [`lane_ready`](Self::lane_ready)
    /// says is the text of one: how many bytes were read (each statement read is read
    /// to the end of its next one's first word), and why it stopped.
    pub(super) fn dml_lane(&mut self, rest: &[u8]) -> (usize, Stop) {
        #[cfg(test)]
        match tests::PATH.with(|p| p.get()) {
            tests::Path::Narrow => return self.lane::<Narrow>(rest),
            // SAFETY: the tests choose a path only where the CPU has it.
            #[cfg(target_arch = "x86_64")]
            tests::Path::Avx2 => return unsafe { self.dml_lane_avx2(rest) },
            _ => {}
        }
        #[cfg(target_arch = "x86_64")]
        if Self::has_avx512() {
            // SAFETY: the CPU has every feature the lane is compiled for.
            return unsafe { self.dml_lane_avx512(rest) };
        }
        #[cfg(target_arch = "x86_64")]
        if Self::has_avx2() {
            // SAFETY: as above.
            return unsafe { self.dml_lane_avx2(rest) };
        }
        self.lane::<Narrow>(rest)
    }

    wide_lane!(
        /// [`dml_lane`](Self::dml_lane) with the lane compiled for AVX2 (and the popcount
        /// and carry-less multiply the CPUs that have AVX2 have).
        dml_lane_avx2, has_avx2, Avx2, ["avx2", "pclmulqdq", "popcnt", "bmi1"]
    );

    wide_lane!(
        /// [`dml_lane`](Self::dml_lane) with a block read by one 64-byte register.
        dml_lane_avx512, has_avx512, Avx512,
        ["avx512f", "avx512bw", "pclmulqdq", "popcnt", "bmi1"]
    );

    #[inline(always)]
    fn lane<W: Wide>(&mut self, rest: &[u8]) -> (usize, Stop) {
        let mut opening = None;
        // Everything before `from` is read; from it on, the text of a statement.
        let mut from: usize = 0;
        // Newlines between `from` and the block being read.
        let mut newlines = 0;
        // At the start of block k: inside a constant, and the depth.
        let (mut inside, mut depth) = (false, self.paren_depth);
        let mut k = 0;
        let mut padded = [b' '; 64];
        'blocks: while k * 64 < rest.len() {
            let base = k * 64;
            let block: &[u8; 64] = match rest.get(base..base + 64) {
                Some(whole) => whole.try_into().expect("64 bytes"),
                None => {
                    // The last bytes, then blanks that begin nothing.
                    let n = rest.len() - base;
                    padded[..n].copy_from_slice(&rest[base..]);
                    padded[n..].fill(b' ');
                    &padded
                }
            };
            let b = W::classify(block);
            let within = W::prefix_xor(b.quote) ^ if inside { !0 } else { 0 };
            let outside = !within;
            let mut blank = 0;
            let mut look = (b.rare & outside) | (b.backslash & within);
            while look != 0 {
                let i = look.trailing_zeros() as usize;
                if !rare_reads_plain(rest, base + i, within >> i & 1 == 1) {
                    blank |= 1 << i;
                }
                look &= look - 1;
            }
            let (ends, depth_after) =
                statement_ends::<W>(b.open & outside, b.close & outside, b.semi & outside, depth);
            let mut lo = from.saturating_sub(base);
            loop {
                let left = !0u64 << lo;
                let here = ends & left;
                let upto = if here == 0 {
                    left
                } else {
                    left & ((here & here.wrapping_neg()) - 1)
                };
                if blank & upto != 0 {
                    return (from, Stop::Blank);
                }
                newlines += (b.newline & upto).count_ones() as usize;
                if here == 0 {
                    break;
                }
                // The statement's text up to its `;`, then the `;` and the next one's
                // first word.
                let semi = base + here.trailing_zeros() as usize;
                self.offset += (semi - from) as u64;
                self.line += newlines;
                newlines = 0;
                self.in_word = false;
                self.paren_depth = 0;
                self.bracket_depth = 0;
                let (read, again) = self.lane_boundary(&rest[semi..], &mut opening);
                from = semi + read;
                if !again && !self.lane_ready() {
                    return (from, Stop::Done);
                }
                if from >= base + 64 {
                    // Blanks and a word between: no constant, parenthesis or `;`.
                    k = from / 64;
                    inside = false;
                    depth = 0;
                    continue 'blocks;
                }
                lo = from - base;
            }
            inside = within >> 63 == 1;
            depth = depth_after;
            k += 1;
        }
        (from, Stop::Done)
    }

    /// The `;` at `rest[0]` that ends a statement the lane read, and the next
    /// statement's first word: at once when the bytes repeat the `opening` last read
    /// here (true: the lexer is as it was then), else as
    /// [`dml_boundary`](Self::dml_boundary) reads them (remembered when the lane may
    /// read on after them). How many bytes were read.
    #[inline(always)]
    fn lane_boundary(&mut self, rest: &[u8], opening: &mut Option<Opening>) -> (usize, bool) {
        if let Some(o) = opening {
            if o.follows(rest) {
                // As `end_statement` ends a DML statement lint does not judge (no
                // `set_config` call in it: the watch is as that left it), then the
                // blanks and the word, which leave all else as the last time.
                #[cfg(test)]
                self.ends.push(self.offset as usize);
                if self.offset - self.stmt_start > MAX_STATEMENT as u64 {
                    self.long_dml = true;
                }
                self.line += o.newlines;
                self.stmt_line = self.line;
                self.stmt_start = self.offset + 1 + o.word_at as u64;
                self.offset += 1 + o.len as u64;
                return (1 + o.len, true);
            }
        }
        let n = self.dml_boundary(rest);
        let gap = &rest[1..n.max(1)];
        if self.lane_ready() && gap.len() <= 16 && gap.last() == Some(&b' ') {
            let mut bytes = [0; 16];
            bytes[..gap.len()].copy_from_slice(gap);
            *opening = Some(Opening {
                bytes: u128::from_le_bytes(bytes),
                mask: u128::MAX >> (128 - 8 * gap.len()),
                len: gap.len(),
                newlines: gap.iter().filter(|&&b| b == b'\n').count(),
                word_at: gap.iter().position(|&b| !is_blank(b)).unwrap_or(0),
            });
        }
        (n, false)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::cell::Cell;

    /// Which of the lane's readings the tests take (`Best`: the one the CPU gives).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Path {
        Best,
        Avx2,
        Narrow,
    }

    thread_local! {
        pub(crate) static PATH: Cell<Path> = const { Cell::new(Path::Best) };
    }

    /// Every reading this CPU can take, the best first.
    pub(crate) fn paths() -> Vec<Path> {
        let mut paths = vec![Path::Best];
        #[cfg(target_arch = "x86_64")]
        if Lexer::has_avx512() && Lexer::has_avx2() {
            paths.push(Path::Avx2);
        }
        paths.push(Path::Narrow);
        paths
    }

    /// The wide reading of a block says what the byte-by-byte one says, for every byte
    /// value at every place.
    #[test]
    fn blocks_read_wide_as_byte_by_byte() {
        for c in 0..=255u8 {
            for at in [0usize, 1, 15, 16, 31, 32, 33, 47, 62, 63] {
                let mut block = [b'a'; 64];
                block[at] = c;
                block[(at + 17) % 64] = b'\'';
                #[cfg(target_arch = "x86_64")]
                if Lexer::has_avx2() {
                    assert_eq!(
                        Avx2::classify(&block),
                        classify_bytes(&block),
                        "byte {c:#x} at {at}"
                    );
                }
                #[cfg(target_arch = "x86_64")]
                if Lexer::has_avx512() {
                    assert_eq!(
                        Avx512::classify(&block),
                        classify_bytes(&block),
                        "byte {c:#x} at {at}, AVX-512"
                    );
                }
            }
        }
    }

    #[test]
    fn parentheses_one_deep_or_not_give_the_same_ends() {
        // Every arrangement of three stops in a few places, from depths 0 to 2.
        let kinds = [0u8, 1, 2, 3];
        for depth in 0..3 {
            for a in kinds {
                for b in kinds {
                    for c in kinds {
                        for d in kinds {
                            let (mut open, mut close, mut semi) = (0u64, 0u64, 0u64);
                            for (i, k) in [a, b, c, d].into_iter().enumerate() {
                                let bit = 1 << (i * 7 + 3);
                                match k {
                                    1 => open |= bit,
                                    2 => close |= bit,
                                    3 => semi |= bit,
                                    _ => {}
                                }
                            }
                            let mut ends = 0;
                            let mut dd = depth;
                            for i in 0..64 {
                                let bit = 1 << i;
                                if open & bit != 0 {
                                    dd += 1;
                                } else if close & bit != 0 {
                                    dd = u32::saturating_sub(dd, 1);
                                } else if semi & bit != 0 && dd == 0 {
                                    ends |= bit;
                                }
                            }
                            assert_eq!(
                                statement_ends::<Narrow>(open, close, semi, depth),
                                (ends, dd),
                                "{a} {b} {c} {d} from {depth}"
                            );
                        }
                    }
                }
            }
        }
    }
}
