//! DEFLATE (RFC 1951) decoded as strictly as zlib decodes it, and every bit accounted
//! for, at libdeflate's pace.
//!
//! A first verify inflates every byte of a bundle, so the decoder is on the operator's
//! critical path. It reads the stream 64 bits at a time and looks codes up in tables
//! that give, in one 32-bit entry, what a codeword means and how many bits it takes
//! with its extra bits (libdeflate's design, written anew here); a match is copied 8
//! bytes at a time. Near the end of its output or its input it goes one symbol at a
//! time, with every bound checked.
//!
//! What it accepts is what zlib's `inflate` accepts (the tests hold it to zlib on every
//! single-bit change of real streams, and on random ones): the same refusals of
//! over-subscribed and incomplete codes (an incomplete literal/length or distance code
//! only as one code of one bit, whose unused codeword is refused when read), of a block
//! type 3, of stored lengths that disagree, of symbols 286, 287 and distances 30, 31, of
//! a distance further back than the output so far, of a missing end-of-block code. And
//! it requires what no decoder reads to be zero: the bits between a stored block's
//! header and its length, and the padding after the final block.
//!
//! Invariant: [`Decoder::decode`] hands out only bytes of a stream zlib would decode
//! to the same bytes, and reaches the end only after the final block, its padding
//! checked; anything else is an `InvalidData` error that names what is wrong.

use std::io::{self, Read};

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order of the code length code's lengths in a dynamic block header.
const PRECODE_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// The most bits a codeword has.
const MAX_LEN: usize = 15;
/// How far back a match may reach.
pub const WINDOW: usize = 32 * 1024;
/// The longest match.
const MAX_MATCH: usize = 258;

/// Index bits of each kind's main table; longer codewords go on in a subtable.
const LITLEN_BITS: u32 = 11;
const DIST_BITS: u32 = 8;
const PRECODE_BITS: u32 = 7;
/// Entries a table may need at most, subtables included (as libdeflate counts them
/// for 288 and 32 symbols with these index bits; the builder checks it all the same).
const LITLEN_ENOUGH: usize = 2342;
const DIST_ENOUGH: usize = 402;
const PRECODE_ENOUGH: usize = 1 << PRECODE_BITS;

// A table entry (u32):
//   bits 0-4    bits to take: the codeword's (what is left of it, in a subtable), plus
//               a length's or distance's extra bits; for a subtable pointer, the main
//               table's index bits
//   bits 8-11   the codeword's bits alone (extra bits come after them); for a subtable
//               pointer, the subtable's index bits
//   bit 12      INVALID: no symbol has this codeword, or the symbol is not allowed
//   bit 13      END_OF_BLOCK
//   bit 14      SUBTABLE: a pointer to a subtable, which starts at the value
//   bit 15      EXCEPTIONAL: any of the three above
//   bits 16-30  the value: a literal byte, a length's or distance's base, a code
//               length symbol, a subtable's start
//   bit 31      LITERAL
const LITERAL: u32 = 1 << 31;
const EXCEPTIONAL: u32 = 1 << 15;
const SUBTABLE: u32 = 1 << 14;
const END_OF_BLOCK: u32 = 1 << 13;
const INVALID: u32 = 1 << 12;

fn corrupt(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("gzip stream is corrupt or truncated: {what}"),
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    LitLen,
    Dist,
    Precode,
}

/// The entry for `sym`, whose codeword (or what is left of it in a subtable) is `len`
/// bits.
fn leaf(kind: Kind, sym: usize, len: u32) -> u32 {
    match kind {
        Kind::LitLen if sym < 256 => LITERAL | (sym as u32) << 16 | len << 8 | len,
        Kind::LitLen if sym == 256 => EXCEPTIONAL | END_OF_BLOCK | len << 8 | len,
        Kind::LitLen if sym <= 285 => {
            let i = sym - 257;
            u32::from(LENGTH_BASE[i]) << 16 | len << 8 | (len + u32::from(LENGTH_EXTRA[i]))
        }
        Kind::Dist if sym < 30 => {
            u32::from(DIST_BASE[sym]) << 16 | len << 8 | (len + u32::from(DIST_EXTRA[sym]))
        }
        Kind::Precode => (sym as u32) << 16 | len << 8 | len,
        // Literal/length symbols 286 and 287, distances 30 and 31: they have codewords
        // (in the fixed code), but no meaning.
        _ => EXCEPTIONAL | INVALID | len << 8 | len,
    }
}

/// Fill `table` for the code whose codeword lengths `lens` gives (by symbol), or refuse
/// the lengths where zlib's `inflate_table` refuses them: over-subscribed; incomplete,
/// except for one codeword of one bit in a literal/length or distance code (its unused
/// codeword is refused when read). A code of no codewords at all refuses every one.
fn build(table: &mut [u32], lens: &[u8], bits: u32, kind: Kind) -> Result<(), &'static str> {
    let mut count = [0u16; MAX_LEN + 1];
    for &l in lens {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let max = (1..=MAX_LEN).rev().find(|&l| count[l] != 0).unwrap_or(0);
    let invalid = EXCEPTIONAL | INVALID | 1 << 8 | 1;
    table[..1 << bits].fill(invalid);
    if max == 0 {
        // zlib reads on and refuses whatever is decoded with it; a code length code
        // with no codes gives lengths of 0 only, and so no end-of-block code.
        return if kind == Kind::Precode {
            Err("invalid code lengths set")
        } else {
            Ok(())
        };
    }
    let mut left: i32 = 1;
    for &c in &count[1..] {
        left = (left << 1) - i32::from(c);
        if left < 0 {
            return Err(what_is_wrong(kind));
        }
    }
    if left > 0 && (kind == Kind::Precode || max != 1) {
        return Err(what_is_wrong(kind));
    }
    // The canonical codewords (RFC 1951 3.2.2), read from their first bit.
    let mut next = [0u32; MAX_LEN + 2];
    for l in 1..=MAX_LEN {
        next[l + 1] = (next[l] + u32::from(count[l])) << 1;
    }
    let main = 1usize << bits;
    let mask = main as u32 - 1;
    // Codewords (reversed) by symbol; the longest codeword under each main-table
    // index that is a proper prefix, and where its subtable starts.
    let mut rev = [0u16; 288];
    let mut longest = [0u8; 1 << LITLEN_BITS];
    for (sym, &l) in lens.iter().enumerate() {
        if l != 0 {
            let code = next[l as usize];
            next[l as usize] += 1;
            let r = reverse(code, u32::from(l));
            rev[sym] = r as u16;
            if u32::from(l) > bits {
                let p = (r & mask) as usize;
                longest[p] = longest[p].max(l);
            }
        }
    }
    let mut start = [0u16; 1 << LITLEN_BITS];
    let mut end = main;
    for p in 0..main {
        let l = u32::from(longest[p]);
        if l != 0 {
            let sub = l - bits;
            start[p] = end as u16;
            end += 1 << sub;
            if end > table.len() {
                return Err(what_is_wrong(kind));
            }
            table[start[p] as usize..end].fill(invalid);
            table[p] = u32::from(start[p]) << 16 | EXCEPTIONAL | SUBTABLE | sub << 8 | bits;
        }
    }
    for (sym, &l) in lens.iter().enumerate() {
        let (l, r) = (u32::from(l), u32::from(rev[sym]));
        if l == 0 {
            continue;
        }
        if l <= bits {
            let entry = leaf(kind, sym, l);
            let mut i = r as usize;
            while i < main {
                table[i] = entry;
                i += 1 << l;
            }
        } else {
            let p = (r & mask) as usize;
            let sub = u32::from(longest[p]) - bits;
            let rest = l - bits;
            let entry = leaf(kind, sym, rest);
            let first = start[p] as usize;
            let mut i = (r >> bits) as usize;
            while i < 1 << sub {
                table[first + i] = entry;
                i += 1 << rest;
            }
        }
    }
    Ok(())
}

fn what_is_wrong(kind: Kind) -> &'static str {
    match kind {
        Kind::LitLen => "invalid literal/lengths set",
        Kind::Dist => "invalid distances set",
        Kind::Precode => "invalid code lengths set",
    }
}

/// The `len` low bits of `code`, in reverse order.
fn reverse(code: u32, len: u32) -> u32 {
    code.reverse_bits() >> (32 - len)
}

/// Where the decoder is in the stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Before a block header (or, after the final block, its padding).
    Header,
    /// Inside a stored block: this many bytes left.
    Stored(u32),
    /// Inside a block of Huffman codes (its tables are built).
    Huffman,
    /// After the final block and its padding: the bytes after it are the caller's.
    Done,
}

/// Compressed bytes read ahead from the source at a time.
const INPUT: usize = 256 * 1024;
/// Bytes the fast loop may read in one symbol, with room to spare: below this much
/// input left, symbols are read one at a time.
const FAST_IN: usize = 32;
/// Output room the fast loop needs for one symbol: the longest match, copied 8 bytes
/// at a time (at least 40 of them).
const FAST_OUT: usize = MAX_MATCH + 48;

/// The compressed bytes read ahead, and the bits taken from them.
struct Input {
    buf: Box<[u8]>,
    /// The bytes `pos..len` are not read yet (but for the bits of `bitbuf`, which come
    /// from the bytes just before `pos`).
    pos: usize,
    len: usize,
    /// The source said it has no more.
    source_done: bool,
    /// Bits read ahead, the next one lowest: `bitsleft` of them. Bits above those may
    /// hold the next byte's (the refill reads 8 bytes at once); they are the same bits
    /// the next refill puts there.
    bitbuf: u64,
    bitsleft: u32,
}

impl Input {
    /// Keep at least `want` bytes (or all the source has) unread.
    fn top_up(&mut self, src: &mut dyn Read, want: usize) -> io::Result<()> {
        if self.len - self.pos >= want || self.source_done {
            return Ok(());
        }
        // The bytes the held bits came from stay (a stored block's alignment gives
        // them back).
        let behind = self.pos.min(8);
        self.buf.copy_within(self.pos - behind..self.len, 0);
        self.len -= self.pos - behind;
        self.pos = behind;
        while self.len < self.buf.len() {
            match src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.source_done = true;
                    break;
                }
                Ok(n) => {
                    self.len += n;
                    // Unread bytes, not those kept behind `pos`.
                    if self.len - self.pos >= want {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Bits from whole bytes, a byte at a time, until at least 57 are held or the
    /// input is spent.
    fn fill_bits(&mut self, src: &mut dyn Read) -> io::Result<()> {
        while self.bitsleft <= 56 {
            if self.pos == self.len {
                self.top_up(src, 1)?;
                if self.pos == self.len {
                    break;
                }
            }
            self.bitbuf |= u64::from(self.buf[self.pos]) << self.bitsleft;
            self.pos += 1;
            self.bitsleft += 8;
        }
        Ok(())
    }

    /// The next `n` bits (at most 32), taken.
    fn bits(&mut self, src: &mut dyn Read, n: u32) -> io::Result<u32> {
        if self.bitsleft < n {
            self.fill_bits(src)?;
        }
        let v = (self.bitbuf & ((1u64 << n) - 1)) as u32;
        self.taken(n)?;
        Ok(v)
    }

    /// Take `n` bits that must be there.
    fn taken(&mut self, n: u32) -> io::Result<()> {
        if self.bitsleft < n {
            return Err(corrupt("the stream ends inside a block"));
        }
        self.bitbuf >>= n;
        self.bitsleft -= n;
        Ok(())
    }

    /// Go to the next byte boundary (the bits skipped must be zero: `what` says
    /// where), and give the whole bytes held back to the input.
    fn align(&mut self, what: &str) -> io::Result<()> {
        let skip = self.bitsleft & 7;
        let bits = self.bitbuf & ((1u64 << skip) - 1);
        if bits != 0 {
            return Err(corrupt(format!(
                "{what} bit {} is set (airlock writes zeros there)",
                8 - skip + bits.trailing_zeros()
            )));
        }
        self.pos -= (self.bitsleft / 8) as usize;
        self.bitbuf = 0;
        self.bitsleft = 0;
        Ok(())
    }

    /// The next symbol's entry in `table` (a leaf: its codeword taken, not its extra
    /// bits), a bit-checked step at a time.
    fn symbol(&mut self, src: &mut dyn Read, table: &[u32], bits: u32) -> io::Result<u32> {
        if self.bitsleft < MAX_LEN as u32 {
            self.fill_bits(src)?;
        }
        let mut e = table[(self.bitbuf & ((1 << bits) - 1)) as usize];
        if e & SUBTABLE != 0 {
            self.taken(e & 0x1f)?;
            e = subtable(table, e, self.bitbuf);
        }
        if e & INVALID != 0 {
            return Err(corrupt(if bits == DIST_BITS {
                "invalid distance code"
            } else {
                "invalid literal/length code"
            }));
        }
        self.taken((e >> 8) & 0xf)?;
        Ok(e)
    }
}

/// The decoder of one raw DEFLATE stream.
pub struct Decoder {
    input: Input,
    state: State,
    /// The block being read is the final one.
    last: bool,
    /// A match cut off by the end of the output: bytes left to copy, its distance.
    pending: (usize, usize),
    litlen: Box<[u32; LITLEN_ENOUGH]>,
    dist: Box<[u32; DIST_ENOUGH]>,
    /// The fixed code's tables are in `litlen` and `dist` (built once, kept while the
    /// blocks are fixed).
    fixed_built: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            input: Input {
                buf: vec![0; INPUT].into_boxed_slice(),
                pos: 0,
                len: 0,
                source_done: false,
                bitbuf: 0,
                bitsleft: 0,
            },
            state: State::Header,
            last: false,
            pending: (0, 0),
            litlen: Box::new([0; LITLEN_ENOUGH]),
            dist: Box::new([0; DIST_ENOUGH]),
            fixed_built: false,
        }
    }

    /// The stream ended (its final block and padding read).
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// After the end: the next `n` bytes of the source (fewer at its end).
    pub fn read_after(&mut self, src: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
        debug_assert_eq!(self.state, State::Done);
        let i = &mut self.input;
        i.top_up(src, n)?;
        let take = n.min(i.len - i.pos);
        let out = i.buf[i.pos..i.pos + take].to_vec();
        i.pos += take;
        Ok(out)
    }

    /// After the end: whether the source has nothing more.
    pub fn source_spent(&mut self, src: &mut dyn Read) -> io::Result<bool> {
        self.input.top_up(src, 1)?;
        Ok(self.input.pos == self.input.len)
    }

    /// Decode into `out[start..]`, whose `out[..start]` holds the stream's output just
    /// before (at least its last [`WINDOW`] bytes, or all of it): how many bytes it
    /// decoded. 0 when `out` has no room, or the stream ended.
    pub fn decode(
        &mut self,
        src: &mut dyn Read,
        out: &mut [u8],
        start: usize,
    ) -> io::Result<usize> {
        let mut pos = start;
        loop {
            if self.pending.0 > 0 {
                pos = self.finish_match(out, pos);
                if self.pending.0 > 0 {
                    return Ok(pos - start);
                }
            }
            if pos == out.len() {
                return Ok(pos - start);
            }
            match self.state {
                State::Done => return Ok(pos - start),
                State::Header if self.last => {
                    self.input.align("padding after the final block:")?;
                    self.state = State::Done;
                }
                State::Header => self.header(src)?,
                State::Stored(left) => pos = self.stored(src, out, pos, left)?,
                State::Huffman => pos = self.huffman(src, out, pos)?,
            }
        }
    }

    /// A block header: its type, then a stored block's lengths or a dynamic block's
    /// codes.
    fn header(&mut self, src: &mut dyn Read) -> io::Result<()> {
        let i = &mut self.input;
        self.last = i.bits(src, 1)? == 1;
        match i.bits(src, 2)? {
            0 => {
                i.align("stored block alignment:")?;
                let mut four = [0u8; 4];
                for b in &mut four {
                    *b = i.bits(src, 8)? as u8;
                }
                let len = u16::from_le_bytes([four[0], four[1]]);
                let nlen = u16::from_le_bytes([four[2], four[3]]);
                if len != !nlen {
                    return Err(corrupt("invalid stored block lengths"));
                }
                // Give back what the four reads held ahead: the block's bytes are read
                // from the input itself.
                i.align("stored block alignment:")?;
                self.state = State::Stored(u32::from(len));
            }
            1 => {
                if !self.fixed_built {
                    let mut lens = [0u8; 288];
                    lens[..144].fill(8);
                    lens[144..256].fill(9);
                    lens[256..280].fill(7);
                    lens[280..].fill(8);
                    build(&mut *self.litlen, &lens, LITLEN_BITS, Kind::LitLen).map_err(corrupt)?;
                    build(&mut *self.dist, &[5; 32], DIST_BITS, Kind::Dist).map_err(corrupt)?;
                    self.fixed_built = true;
                }
                self.state = State::Huffman;
            }
            2 => {
                self.fixed_built = false;
                self.dynamic(src)?;
                self.state = State::Huffman;
            }
            _ => return Err(corrupt("invalid block type")),
        }
        Ok(())
    }

    /// A dynamic block's code lengths, read and built into its tables.
    fn dynamic(&mut self, src: &mut dyn Read) -> io::Result<()> {
        let i = &mut self.input;
        let nlen = i.bits(src, 5)? as usize + 257;
        let ndist = i.bits(src, 5)? as usize + 1;
        let ncode = i.bits(src, 4)? as usize + 4;
        if nlen > 286 || ndist > 30 {
            return Err(corrupt("too many length or distance symbols"));
        }
        let mut pre = [0u8; 19];
        for &k in &PRECODE_ORDER[..ncode] {
            pre[k] = i.bits(src, 3)? as u8;
        }
        let mut precode = [0u32; PRECODE_ENOUGH];
        build(&mut precode, &pre, PRECODE_BITS, Kind::Precode).map_err(corrupt)?;
        let mut lens = [0u8; 286 + 30];
        let mut have = 0;
        while have < nlen + ndist {
            let e = i.symbol(src, &precode, PRECODE_BITS)?;
            let sym = (e >> 16) as u8;
            let (value, repeat) = match sym {
                0..=15 => {
                    lens[have] = sym;
                    have += 1;
                    continue;
                }
                16 => {
                    if have == 0 {
                        return Err(corrupt("invalid bit length repeat"));
                    }
                    (lens[have - 1], 3 + i.bits(src, 2)? as usize)
                }
                17 => (0, 3 + i.bits(src, 3)? as usize),
                _ => (0, 11 + i.bits(src, 7)? as usize),
            };
            if have + repeat > nlen + ndist {
                return Err(corrupt("invalid bit length repeat"));
            }
            lens[have..have + repeat].fill(value);
            have += repeat;
        }
        if lens[256] == 0 {
            return Err(corrupt("invalid code -- missing end-of-block"));
        }
        build(&mut *self.litlen, &lens[..nlen], LITLEN_BITS, Kind::LitLen).map_err(corrupt)?;
        build(
            &mut *self.dist,
            &lens[nlen..nlen + ndist],
            DIST_BITS,
            Kind::Dist,
        )
        .map_err(corrupt)?;
        Ok(())
    }

    /// A stored block's bytes, as many as fit.
    fn stored(
        &mut self,
        src: &mut dyn Read,
        out: &mut [u8],
        mut pos: usize,
        mut left: u32,
    ) -> io::Result<usize> {
        let i = &mut self.input;
        while left > 0 && pos < out.len() {
            i.top_up(src, 1)?;
            let have = i.len - i.pos;
            if have == 0 {
                return Err(corrupt("the stream ends inside a stored block"));
            }
            let n = have.min(left as usize).min(out.len() - pos);
            out[pos..pos + n].copy_from_slice(&i.buf[i.pos..i.pos + n]);
            i.pos += n;
            pos += n;
            left -= n as u32;
        }
        self.state = if left == 0 {
            State::Header
        } else {
            State::Stored(left)
        };
        Ok(pos)
    }

    /// What is left of a match cut off by the end of the last output, as far as it fits.
    fn finish_match(&mut self, out: &mut [u8], mut pos: usize) -> usize {
        let (left, distance) = self.pending;
        let n = left.min(out.len() - pos);
        for i in pos..pos + n {
            out[i] = out[i - distance];
        }
        pos += n;
        self.pending.0 = left - n;
        pos
    }

    /// A Huffman block's symbols, until its end or the end of `out`.
    fn huffman(&mut self, src: &mut dyn Read, out: &mut [u8], mut pos: usize) -> io::Result<usize> {
        loop {
            self.input.top_up(src, FAST_IN)?;
            match self.fast(out, pos)? {
                (p, true) => {
                    self.state = State::Header;
                    return Ok(p);
                }
                (p, false) => pos = p,
            }
            // Near an end: one symbol, every bound checked.
            if pos == out.len() {
                return Ok(pos);
            }
            let i = &mut self.input;
            let e = i.symbol(src, &self.litlen[..], LITLEN_BITS)?;
            if e & LITERAL != 0 {
                out[pos] = (e >> 16) as u8;
                pos += 1;
                continue;
            }
            if e & END_OF_BLOCK != 0 {
                self.state = State::Header;
                return Ok(pos);
            }
            let extra = (e & 0x1f) - ((e >> 8) & 0xf);
            let length = (e >> 16) as usize + i.bits(src, extra)? as usize;
            let d = i.symbol(src, &self.dist[..], DIST_BITS)?;
            let extra = (d & 0x1f) - ((d >> 8) & 0xf);
            let distance = (d >> 16) as usize + i.bits(src, extra)? as usize;
            if distance > pos {
                return Err(corrupt("invalid distance too far back"));
            }
            self.pending = (length, distance);
            pos = self.finish_match(out, pos);
            if self.pending.0 > 0 {
                return Ok(pos);
            }
        }
    }

    /// Symbols while there is room for the longest one in the input and in `out`: the
    /// position after them, and whether the block ended.
    ///
    /// libdeflate's loop: the bits are topped up to at least 56 once a symbol (a
    /// literal/length codeword with its extra bits takes at most 20, a distance's 28),
    /// and the next literal/length entry is looked up as soon as its bits are there
    /// (a main-table codeword has at most 11), so that the lookup's latency hides
    /// behind the rest; up to three literals go on one top-up.
    fn fast(&mut self, out: &mut [u8], pos: usize) -> io::Result<(usize, bool)> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("bmi2") {
            // SAFETY: the CPU has BMI2 (checked just above).
            return unsafe { self.fast_bmi2(out, pos) };
        }
        self.fast_loop(out, pos)
    }

    /// [`fast`](Self::fast) compiled for BMI2, as libdeflate is where it can: shifts
    /// by a variable count in any register, and the low bits of a word at once.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "bmi2")]
    unsafe fn fast_bmi2(&mut self, out: &mut [u8], pos: usize) -> io::Result<(usize, bool)> {
        self.fast_loop(out, pos)
    }

    #[inline(always)]
    fn fast_loop(&mut self, out: &mut [u8], pos: usize) -> io::Result<(usize, bool)> {
        let input = &self.input.buf[..self.input.len];
        let out_end = out.len().saturating_sub(FAST_OUT);
        let in_end = input.len().saturating_sub(FAST_IN);
        if pos >= out_end || self.input.pos >= in_end {
            return Ok((pos, false));
        }
        let litlen: &[u32; LITLEN_ENOUGH] = &self.litlen;
        let dist: &[u32; DIST_ENOUGH] = &self.dist;
        // Pointers, as libdeflate keeps them: fewer registers than bases and indices.
        // SAFETY (for every pointer below): `start`, `dst` and `dst_end` are within
        // `out`, `src` and `src_end` within `input`; `dst < dst_end` and `src < src_end`
        // hold at the top of the loop, which leaves room for one symbol in each
        // (FAST_OUT and FAST_IN bytes).
        let start = out.as_mut_ptr();
        let (mut dst, dst_end) = unsafe { (start.add(pos), start.add(out_end)) };
        let (mut src, src_end) = unsafe {
            let base = input.as_ptr();
            (base.add(self.input.pos), base.add(in_end))
        };
        let mut bitbuf = self.input.bitbuf;
        // Only its low byte counts (libdeflate's way): whole entries are subtracted
        // from it, and shifts read only the low bits of their count.
        let mut bitsleft = self.input.bitsleft;
        let litlen_mask = (1u64 << LITLEN_BITS) - 1;
        let dist_mask = (1u64 << DIST_BITS) - 1;
        let mut ended = false;
        // At least 56 bits held, from the 8 bytes at `src`.
        macro_rules! refill {
            () => {
                // SAFETY: src < src_end, FAST_IN bytes before the input's end.
                let word = u64::from_le(unsafe { src.cast::<u64>().read_unaligned() });
                bitbuf |= word.wrapping_shl(bitsleft);
                src = unsafe { src.add(7 - ((bitsleft >> 3) & 7) as usize) };
                bitsleft |= 56;
            };
        }
        // Take an entry's bits: its low 5 bits count them (the next 3 are zero).
        macro_rules! take {
            ($e:expr) => {
                bitbuf = bitbuf.wrapping_shr($e);
                bitsleft = bitsleft.wrapping_sub($e);
            };
        }
        refill!();
        let mut e = litlen[(bitbuf & litlen_mask) as usize];
        // A literal: its bits taken, the next entry looked up, the byte written.
        macro_rules! literal {
            () => {
                take!(e);
                let lit = (e >> 16) as u8;
                e = litlen[(bitbuf & litlen_mask) as usize];
                // SAFETY: dst < dst_end, with room for three literals after it.
                unsafe {
                    *dst = lit;
                    dst = dst.add(1);
                }
            };
        }
        let result = loop {
            if e & SUBTABLE != 0 {
                take!(e);
                e = subtable(litlen, e, bitbuf);
            }
            if e & LITERAL != 0 {
                // Up to three literals a refill (a codeword has at most 15 bits, and
                // the next entry is looked up with 11 still held).
                literal!();
                if e & LITERAL != 0 {
                    literal!();
                    if e & LITERAL != 0 {
                        literal!();
                    }
                }
                if dst >= dst_end || src >= src_end {
                    break Ok(());
                }
                refill!();
                continue;
            }
            if e & INVALID != 0 {
                break Err(corrupt("invalid literal/length code"));
            }
            if e & END_OF_BLOCK != 0 {
                take!(e);
                ended = true;
                break Ok(());
            }
            let length = value(&mut bitbuf, &mut bitsleft, e);
            let mut d = dist[(bitbuf & dist_mask) as usize];
            if d & EXCEPTIONAL != 0 {
                if d & SUBTABLE != 0 {
                    take!(d);
                    d = subtable(dist, d, bitbuf);
                }
                if d & INVALID != 0 {
                    break Err(corrupt("invalid distance code"));
                }
            }
            let distance = value(&mut bitbuf, &mut bitsleft, d);
            refill!();
            e = litlen[(bitbuf & litlen_mask) as usize];
            // SAFETY: both within `out`.
            if distance > unsafe { dst.offset_from(start) } as usize {
                break Err(corrupt("invalid distance too far back"));
            }
            // SAFETY: dst < dst_end leaves FAST_OUT bytes; distance checked just above.
            unsafe { copy_match(dst, distance, length) };
            dst = unsafe { dst.add(length) };
            if dst >= dst_end || src >= src_end {
                break Ok(());
            }
        };
        // SAFETY: both within their buffers.
        let (pos, in_pos) = unsafe {
            (
                dst.offset_from(start) as usize,
                src.offset_from(input.as_ptr()) as usize,
            )
        };
        self.input.pos = in_pos;
        self.input.bitbuf = bitbuf;
        self.input.bitsleft = bitsleft & 0xff;
        result.map(|()| (pos, ended))
    }
}

/// The length or distance a leaf entry gives, its bits taken: its base, plus its extra
/// bits, which come after the codeword's (the shift reads only bits 8-13 of the entry:
/// the codeword's length, then two flags a length or distance has clear). Only the low
/// byte of `bitsleft` counts (the fast loop's way).
#[inline(always)]
fn value(bitbuf: &mut u64, bitsleft: &mut u32, e: u32) -> usize {
    let saved = *bitbuf;
    *bitbuf = bitbuf.wrapping_shr(e);
    *bitsleft = bitsleft.wrapping_sub(e);
    (e >> 16) as usize + (saved & ((1u64 << (e & 0x1f)) - 1)).wrapping_shr(e >> 8) as usize
}

/// The entry the subtable pointer `e` leads to for the next bits of `bitbuf` (the
/// main table's already taken): `build` put each subtable within its table, and the
/// index is the subtable's start plus fewer bits than its size.
#[inline(always)]
fn subtable(table: &[u32], e: u32, bitbuf: u64) -> u32 {
    let sub = (e >> 8) & 0xf;
    let i = (e >> 16) as usize + (bitbuf & ((1 << sub) - 1)) as usize;
    debug_assert!(i < table.len());
    // SAFETY: as above: `build` checks every subtable's end against the table's length.
    unsafe { *table.get_unchecked(i) }
}

/// Copy a match of `length` bytes from `distance` back to `dst`.
///
/// # Safety
/// `dst` has [`FAST_OUT`] bytes of room after it (it writes up to 40 past the match,
/// whose length is at most 258), and `distance` bytes before it, `distance > 0`.
#[inline(always)]
unsafe fn copy_match(dst: *mut u8, distance: usize, length: usize) {
    debug_assert!(distance > 0 && (3..=MAX_MATCH).contains(&length));
    // SAFETY: as the caller promises: every write is below dst + max(40, 264) <= dst +
    // FAST_OUT, every read at or after dst - distance, and, a word at a time from
    // distance 8 on, of bytes already written.
    unsafe {
        let src = dst.sub(distance);
        let word = |i: usize| {
            dst.add(i)
                .cast::<u64>()
                .write_unaligned(src.add(i).cast::<u64>().read_unaligned())
        };
        if distance >= 8 {
            word(0);
            word(8);
            word(16);
            word(24);
            word(32);
            let mut i = 40;
            while i < length {
                word(i);
                i += 8;
            }
        } else if distance == 1 {
            let v = u64::from(*src) * 0x0101_0101_0101_0101;
            let mut i = 0;
            while i < length {
                dst.add(i).cast::<u64>().write_unaligned(v);
                i += 8;
            }
        } else {
            // A word at a time, each `distance` on from the last (libdeflate's way):
            // every word read holds only bytes written before it.
            let mut i = 0;
            while i < length {
                word(i);
                i += distance;
            }
        }
    }
}

#[cfg(test)]
mod tests;
