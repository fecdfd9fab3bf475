//! The decoder held to zlib (`zlib_reference.rs`, what read bundles before it) on
//! streams from several encoders and every level, and on their damaged copies.
use super::super::gz::ParallelGzWriter;
use super::super::inflate::StrictGzBody;
use super::super::zlib_reference::ZlibGzBody;
use super::*;
use flate2::{Compress, Compression, FlushCompress};
use std::io::{BufReader, Write};

/// A small generator, so every run reads the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Data of several kinds: SQL rows, random bytes, runs (distance 1), short periods
/// (distances 2 to 7), far repeats (distances near 32 KiB), and mixtures.
fn data(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 300);
    while out.len() < len {
        match rng.below(6) {
            0 => {
                let i = rng.next() % 100_000;
                out.extend_from_slice(
                    format!("INSERT INTO t VALUES ({i}, 'row {}', {});\n", i * 7, i % 13)
                        .as_bytes(),
                );
            }
            1 => {
                for _ in 0..rng.below(200) {
                    out.push(rng.next() as u8);
                }
            }
            2 => {
                let b = rng.next() as u8;
                out.extend(std::iter::repeat_n(b, rng.below(600)));
            }
            3 => {
                let period = 2 + rng.below(6);
                let pattern: Vec<u8> = (0..period).map(|_| rng.next() as u8).collect();
                for k in 0..rng.below(400) {
                    out.push(pattern[k % period]);
                }
            }
            4 if out.len() > 40_000 => {
                let from = out.len() - 32_768 + rng.below(100);
                let n = rng.below(300);
                for k in 0..n {
                    out.push(out[from + k]);
                }
            }
            _ => out.extend_from_slice(b"0123456789abcdef"),
        }
    }
    out.truncate(len);
    out
}

/// Bits written first first, as deflate packs them into bytes.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, v: u32, len: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// The bytes, the last one padded with zeros.
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn gzip_frame(body: &[u8], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(body);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A gzip member of `data` from one of several encoders: zlib at a level, with
/// flushes of each kind in between (stored, empty and fixed blocks), or airlock's
/// parallel writer.
fn encode(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    if rng.below(4) == 0 {
        let mut w = ParallelGzWriter::with_block_size(
            Vec::new(),
            1 + rng.below(9) as u32,
            2,
            1 + rng.below(5000),
        );
        w.write_all(data).unwrap();
        return w.finish().unwrap();
    }
    let mut c = Compress::new(Compression::new(rng.below(10) as u32), false);
    let mut body = Vec::with_capacity(data.len() * 2 + 1024);
    let mut at = 0;
    while at < data.len() {
        let n = (1 + rng.below(4000)).min(data.len() - at);
        let flush = match rng.below(5) {
            0 => FlushCompress::Sync,
            1 => FlushCompress::Full,
            2 => FlushCompress::Partial,
            _ => FlushCompress::None,
        };
        let mut input = &data[at..at + n];
        loop {
            body.reserve(64 * 1024);
            let before = c.total_in();
            c.compress_vec(input, &mut body, flush).unwrap();
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && body.capacity() > body.len() {
                break;
            }
        }
        at += n;
    }
    loop {
        body.reserve(64 * 1024);
        if c.compress_vec(&[], &mut body, FlushCompress::Finish)
            .unwrap()
            == flate2::Status::StreamEnd
        {
            break;
        }
    }
    gzip_frame(&body, data)
}

/// What a decoder makes of a gzip file's body, read in reads of `read` bytes from
/// a source handing `feed` bytes at a time.
fn read_all(mut d: impl Read, read: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; read];
    loop {
        match d.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn ours(file: &[u8], feed: usize) -> Result<Vec<u8>, String> {
    let body = BufReader::with_capacity(feed, &file[10..]);
    read_all(StrictGzBody::new(body).map_err(|e| e.to_string())?, 65_536)
}

/// A source that hands out 1 to `max` bytes a read (a pipe's way; `BufReader` passes
/// large reads straight through, so only a source like this gives a decoder short
/// reads).
struct Trickle<'a> {
    data: &'a [u8],
    rng: Rng,
    max: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (1 + self.rng.below(self.max))
            .min(buf.len())
            .min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Ours, reading the body from a [`Trickle`].
fn trickled(file: &[u8], max: usize, seed: u64) -> Result<Vec<u8>, String> {
    let src = Trickle {
        data: &file[10..],
        rng: Rng(seed | 1),
        max,
    };
    read_all(
        StrictGzBody::new(BufReader::with_capacity(1, src)).map_err(|e| e.to_string())?,
        65_536,
    )
}

fn zlib(file: &[u8]) -> Result<Vec<u8>, String> {
    let body = BufReader::with_capacity(4096, &file[10..]);
    read_all(ZlibGzBody::new(body).map_err(|e| e.to_string())?, 65_536)
}

/// `fill` with little room each time (a match cut off, again and again), read back
/// whole.
fn ours_in_small_pieces(file: &[u8], rng: &mut Rng) -> Result<Vec<u8>, String> {
    let mut d = StrictGzBody::new(BufReader::with_capacity(1 + rng.below(64), &file[10..]))
        .map_err(|e| e.to_string())?;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let history = out.len().min(WINDOW);
        let room = 1 + rng.below(700);
        let mut buf = out[out.len() - history..].to_vec();
        buf.resize(history + room, 0);
        match d.fill(&mut buf, history) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[history..history + n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[test]
fn every_encoding_decodes_as_zlib_decodes_it() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..300 {
        let len = [0, 1, 100, 5_000, 70_000, 300_000][case % 6];
        let data = data(&mut rng, len);
        let file = encode(&mut rng, &data);
        assert_eq!(
            zlib(&file).as_deref(),
            Ok(&data[..]),
            "case {case}: the reference"
        );
        for feed in [1, 7, 4096, 1 << 20] {
            assert_eq!(
                ours(&file, feed).as_deref(),
                Ok(&data[..]),
                "case {case}, feed {feed}"
            );
        }
        for max in [1, 3, 700] {
            assert_eq!(
                trickled(&file, max, rng.next()).as_deref(),
                Ok(&data[..]),
                "case {case}, reads of 1 to {max} bytes"
            );
        }
        assert_eq!(
            ours_in_small_pieces(&file, &mut rng).as_deref(),
            Ok(&data[..]),
            "case {case}, small pieces"
        );
    }
}

#[test]
fn damaged_streams_are_refused_where_zlib_refuses_them() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut compared = 0;
    for case in 0..400 {
        let len = [50, 2_000, 40_000][case % 3];
        let data = data(&mut rng, len);
        let good = encode(&mut rng, &data);
        for _ in 0..25 {
            let mut bad = good.clone();
            match rng.below(4) {
                0 | 1 => {
                    let at = 10 + rng.below(bad.len() - 10);
                    bad[at] ^= 1 << rng.below(8);
                }
                2 => {
                    let at = 10 + rng.below(bad.len() - 10);
                    bad[at] = rng.next() as u8;
                }
                _ => {
                    let at = 10 + rng.below(bad.len() - 10);
                    bad.truncate(at);
                }
            }
            let theirs = zlib(&bad);
            let mine = ours(&bad, [1, 4096][rng.below(2)]);
            compared += 1;
            if theirs.is_ok() && first_alignment_set(&bad) {
                // The one place zlib's `Z_BLOCK` never stopped at: the first
                // block's header. Ours refuses the set bits, and only them.
                assert!(mine.is_err(), "case {case}");
                bad[10] &= 0b111;
                assert_eq!(ours(&bad, 4096), theirs, "case {case}");
                continue;
            }
            assert_eq!(
                mine.is_ok(),
                theirs.is_ok(),
                "case {case}: ours {:?}, zlib {:?}",
                mine.as_ref().map(Vec::len),
                theirs.as_ref().map(Vec::len)
            );
            if let (Ok(a), Ok(b)) = (&mine, &theirs) {
                assert_eq!(a, b, "case {case}");
            }
        }
    }
    assert_eq!(compared, 10_000);
}

/// A stored final block, then the trailer, read from a source of a byte or a few at a
/// time: the trailer's bytes are read whatever the reads left held back (fuzzing found
/// "the gzip trailer is truncated" on such valid files).
#[test]
fn a_trailer_after_short_reads_is_read_whole() {
    for (hex, want) in [
        (
            "1f8b08000000000000ff010300fcff616263c241243503000000",
            &b"abc"[..],
        ),
        ("1f8b08000000000000ff010000ffff0000000000000000", &b""[..]),
    ] {
        let file = hex::decode(hex).unwrap();
        assert_eq!(zlib(&file).as_deref(), Ok(want), "the reference");
        for max in 1..=8 {
            for seed in 0..20 {
                assert_eq!(
                    trickled(&file, max, seed).as_deref(),
                    Ok(want),
                    "{hex}, reads of 1 to {max}"
                );
            }
        }
    }
}

/// The file's first block is stored, and a bit between its header and the next
/// byte is set.
fn first_alignment_set(file: &[u8]) -> bool {
    file.len() > 10 && file[10] & 0b110 == 0 && file[10] >> 3 != 0
}

/// A stored first block with a set alignment bit: the reference (zlib under
/// `Z_BLOCK`) read it as the same archive, since zlib reports no boundary before
/// the first block; this decoder refuses it, as it refuses any other set
/// alignment bit.
#[test]
fn a_set_alignment_bit_of_a_stored_first_block_is_refused() {
    let data = b"hello, stored world";
    let mut body = vec![0b0000_0001];
    body.extend_from_slice(&(data.len() as u16).to_le_bytes());
    body.extend_from_slice(&(!(data.len() as u16)).to_le_bytes());
    body.extend_from_slice(data);
    let good = gzip_frame(&body, data);
    assert_eq!(ours(&good, 4096).as_deref(), Ok(&data[..]));
    for bit in 3..8 {
        let mut bad = good.clone();
        bad[10] |= 1 << bit;
        assert!(zlib(&bad).is_ok(), "the reference took bit {bit}");
        let err = ours(&bad, 4096).unwrap_err();
        assert!(err.contains("stored block alignment"), "{err}");
    }
}

/// The fixed code's symbols with no meaning (literal/length 286 and 287, distances
/// 30 and 31), a distance before the start, a block type 3, an empty distance code:
/// refused, as zlib refuses them.
#[test]
fn codes_without_meaning_are_refused() {
    // Bits, first first, packed into bytes.
    fn pack(bits: &[(u32, u32)]) -> Vec<u8> {
        let mut w = BitWriter::default();
        for &(v, len) in bits {
            w.put(v, len);
        }
        w.finish()
    }
    // Fixed codes are written most significant bit first.
    let fixed = |code: u32, len: u32| (reverse(code, len), len);
    let cases: Vec<(&str, Vec<(u32, u32)>)> = vec![
        (
            "literal/length 286",
            vec![(1, 1), (1, 2), fixed(0b1100_0110, 8)],
        ),
        (
            "literal/length 287",
            vec![(1, 1), (1, 2), fixed(0b1100_0111, 8)],
        ),
        // 'a', then length 3 (symbol 257) at distance 30.
        (
            "distance 30",
            vec![
                (1, 1),
                (1, 2),
                fixed(0x30 + 97, 8),
                fixed(1, 7),
                fixed(30, 5),
            ],
        ),
        (
            "distance too far back",
            vec![
                (1, 1),
                (1, 2),
                fixed(0x30 + 97, 8),
                fixed(1, 7),
                fixed(1, 5),
            ],
        ),
        ("block type 3", vec![(1, 1), (3, 2), (0, 5)]),
    ];
    for (what, bits) in cases {
        let mut body = pack(&bits);
        body.extend_from_slice(&[0; 16]);
        let file = gzip_frame(&body, b"");
        assert!(zlib(&file).is_err(), "{what}: zlib refuses it");
        assert!(ours(&file, 4096).is_err(), "{what}: refused");
    }
}

/// Differential fuzzing against zlib for as long as asked (not in the suite's run):
///
///   FUZZ_SECS=1800 FUZZ_SEED=7 cargo test --release -p airlock-bundle --lib -- \
///       --ignored fuzz_against_zlib --nocapture
///
/// Streams of every encoder and level, random dynamic blocks with codes up to 15 bits,
/// and thousands of damaged copies of each (flips near block headers and sync flushes,
/// changed, inserted and removed bytes, cuts, splices of two streams, garbage after a
/// valid stream; half of them given the trailer a lenient inflate computes, so that
/// accepting paths are reached), decoded by zlib and three times by ours (reads of a
/// byte to a MiB with `Interrupted` among them, `fill` with little room, the threaded
/// reader): accepted and refused alike, to the same bytes. Findings go to `$FUZZ_OUT`.
mod fuzz {
    use super::*;
    use std::io::Read;

    // Differential fuzzing: `FUZZ_SECS=1800 FUZZ_SEED=7 cargo test --release -p airlock-bundle --lib -- --ignored fuzz_against_zlib --nocapture`
    struct Spotty<'a>(&'a [u8], Rng, usize, bool); // a source of 1..=max bytes a read, some `Interrupted` if asked
    impl Read for Spotty<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.3 && self.1.below(8) == 0 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = (1 + self.1.below(self.2)).min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    type Out = (Vec<u8>, Option<String>);
    fn drain(mut d: impl Read, read: usize) -> Out {
        let (mut out, mut buf) = (Vec::new(), vec![0u8; read]);
        loop {
            match d.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    fn pick(rng: &mut Rng) -> usize {
        [1 + rng.below(7), 1 + rng.below(700), 4096, 1 << 20][rng.below(4)]
    }
    fn fuzz_zlib(f: &[u8], rng: &mut Rng) -> Out {
        drain(
            ZlibGzBody::new(BufReader::with_capacity(pick(rng), &f[10..])).unwrap(),
            pick(rng),
        )
    }
    fn fuzz_ours(f: &[u8], rng: &mut Rng) -> Out {
        if rng.below(8) == 0 {
            // the production path: the header whole, then reads of 1..=max bytes
            struct Owned(io::Cursor<Vec<u8>>, Rng, usize);
            impl Read for Owned {
                fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
                    let n = if self.0.position() == 0 {
                        10
                    } else {
                        1 + self.1.below(self.2)
                    }
                    .min(b.len());
                    self.0.read(&mut b[..n])
                }
            }
            return drain(
                crate::archive::gz::ThreadedGzReader::new(Owned(
                    io::Cursor::new(f.to_vec()),
                    Rng(rng.next() | 1),
                    pick(rng),
                )),
                pick(rng),
            );
        }
        let src = Spotty(&f[10..], Rng(rng.next() | 1), pick(rng), rng.below(2) == 0); // BufReader(1): every read goes to src
        let mut d = StrictGzBody::new(BufReader::with_capacity(1, src)).unwrap();
        if rng.below(2) == 0 {
            return drain(d, pick(rng));
        }
        let (mut out, small, all) = (Vec::new(), rng.below(3) != 0, rng.below(2) == 0);
        loop {
            // `fill` with rooms of 1..700 bytes (or more), after all the output or just a window
            let history = if all {
                out.len()
            } else {
                out.len().min(WINDOW)
            };
            let mut buf = out[out.len() - history..].to_vec();
            buf.resize(
                history + if small { 1 + rng.below(700) } else { pick(rng) },
                0,
            );
            match d.fill(&mut buf, history) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[history..history + n]),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    /// The trailer of what a lenient raw inflate makes of a damaged body, if it ends.
    fn reframe(f: &[u8]) -> Vec<u8> {
        let (mut d, mut out) = (flate2::Decompress::new(false), Vec::new());
        loop {
            let (i, o) = (10 + d.total_in() as usize, out.len());
            if o > 16 << 20 {
                return f.to_vec();
            } else {
                out.reserve(1 << 16);
            }
            match d.decompress_vec(&f[i..], &mut out, flate2::FlushDecompress::None) {
                Ok(flate2::Status::StreamEnd) => {
                    return gzip_frame(&f[10..10 + d.total_in() as usize], &out)
                }
                Ok(_) if 10 + d.total_in() as usize > i || out.len() > o => {}
                _ => return f.to_vec(),
            }
        }
    }
    /// Codeword lengths of a complete code (or one codeword) of `leaves` codewords up to
    /// `max` bits over `n` symbols, `must` among them.
    fn lengths(n: usize, leaves: usize, max: u8, must: &[usize], rng: &mut Rng) -> Vec<u8> {
        let mut depth = vec![(leaves == 1) as u8];
        while depth.len() < leaves {
            // split a leaf, often the newest: long codewords
            let k = if rng.below(2) == 0 {
                depth.len() - 1
            } else {
                rng.below(depth.len())
            };
            if depth[k] < max {
                depth[k] += 1;
                depth.push(depth[k]);
            }
        }
        let (mut syms, mut rest) = (
            must.to_vec(),
            (0..n).filter(|s| !must.contains(s)).collect::<Vec<_>>(),
        );
        while !rest.is_empty() {
            syms.push(rest.swap_remove(rng.below(rest.len())));
        }
        let mut lens = vec![0u8; n];
        for (i, &d) in depth.iter().enumerate() {
            lens[syms[i]] = d;
        }
        lens
    }
    /// The canonical codewords of `lens`, reversed (as deflate writes them).
    fn codes(lens: &[u8]) -> Vec<u32> {
        let mut next = [0u32; 17];
        for l in 1..16 {
            next[l + 1] = (next[l] + lens.iter().filter(|&&x| x as usize == l).count() as u32) << 1;
        }
        lens.iter()
            .map(|&l| {
                if l == 0 {
                    0
                } else {
                    next[l as usize] += 1;
                    reverse(next[l as usize] - 1, l as u32)
                }
            })
            .collect()
    }

    /// A final dynamic block of random complete (or one-codeword) codes up to 15 bits, random symbols.
    fn random_dynamic(rng: &mut Rng) -> Vec<u8> {
        let mut w = BitWriter::default();
        let mut put = |v: u32, l: u32| w.put(v, l);
        let (nlen, ndist, max) = (
            257 + rng.below(30),
            1 + rng.below(30),
            [15, 15, 9, 12][rng.below(4)],
        );
        let ll = lengths(
            nlen,
            [1, 2 + rng.below(nlen - 1), nlen][rng.below(3)],
            max,
            &[256],
            rng,
        );
        let dl = lengths(
            ndist,
            [1, 1 + rng.below(ndist), ndist][rng.below(3)],
            max,
            &[rng.below(ndist)],
            rng,
        );
        let mut used: Vec<usize> = ll.iter().chain(&dl).map(|&l| l as usize).collect();
        used.sort();
        used.dedup();
        let pl = lengths(
            19,
            (used.len() + rng.below(20 - used.len())).max(2),
            7,
            &used,
            rng,
        );
        let (lc, dc, pc) = (codes(&ll), codes(&dl), codes(&pl));
        put(0b101, 3);
        put(nlen as u32 - 257, 5);
        put(ndist as u32 - 1, 5);
        put(15, 4);
        for &k in &PRECODE_ORDER {
            put(pl[k] as u32, 3);
        }
        for &l in ll.iter().chain(&dl) {
            put(pc[l as usize], pl[l as usize] as u32);
        }
        let (lsyms, dsyms): (Vec<usize>, Vec<usize>) = (
            (0..nlen).filter(|&s| ll[s] != 0 && s != 256).collect(),
            (0..ndist).filter(|&s| dl[s] != 0).collect(),
        );
        let mut produced = 0usize;
        for _ in 0..[0, 10, 300, 5000][rng.below(4)] {
            let Some(&s) = lsyms.get(rng.below(lsyms.len().max(1))) else {
                break;
            };
            let fits: Vec<usize> = dsyms
                .iter()
                .copied()
                .filter(|&d| DIST_BASE[d] as usize <= produced)
                .collect();
            if s > 256 && fits.is_empty() && rng.below(16) != 0 {
                continue;
            } // mostly no match before a distance fits
            put(lc[s], ll[s] as u32);
            if s < 256 {
                produced += 1;
                continue;
            }
            let extra = LENGTH_EXTRA[s - 257] as u32;
            let x = rng.next() as u32 & ((1 << extra) - 1);
            put(x, extra);
            let d = if fits.is_empty() || rng.below(64) == 0 {
                dsyms[rng.below(dsyms.len())]
            } else {
                fits[rng.below(fits.len())]
            };
            let room = produced.saturating_sub(DIST_BASE[d] as usize) as u32;
            put(dc[d], dl[d] as u32); // rarely too far back:
            put(
                (rng.next() as u32 & ((1 << DIST_EXTRA[d]) - 1))
                    .min(room.max(rng.below(64) as u32)),
                DIST_EXTRA[d] as u32,
            );
            produced += LENGTH_BASE[s - 257] as usize + x as usize;
        }
        put(lc[256], ll[256] as u32);
        reframe(&gzip_frame(&w.finish(), b""))
    }
    /// `data`'s kinds, and periods 1..16, skewed bytes (long codewords), repeats 32700..=32768 back.
    fn data2(rng: &mut Rng, len: usize) -> Vec<u8> {
        let k = rng.below(len + 1);
        let mut out = data(rng, k);
        while out.len() < len {
            let n = rng.below(3000);
            match rng.below(4) {
                0 => {
                    let p: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                    out.extend((0..n).map(|k| p[k % p.len()]));
                }
                1 => {
                    let b = rng.next() as u8;
                    out.extend(
                        (0..n)
                            .map(|_| b.wrapping_add((rng.next() | 1 << 40).trailing_zeros() as u8)),
                    );
                }
                2 if out.len() > 33_000 => {
                    let from = out.len() - 32_768 + rng.below(69);
                    for k in 0..n {
                        out.push(out[from + k]);
                    }
                }
                _ => out.extend((0..n.min(50)).map(|_| rng.next() as u8)),
            }
        }
        out.truncate(len);
        out
    }
    fn mutate(good: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
        let mut f = good.to_vec();
        for _ in 0..1 + rng.below(3) * rng.below(2) {
            let len = f.len().max(11);
            f.resize(len, 0);
            let hot: Vec<usize> = f
                .windows(4)
                .enumerate()
                .filter(|(_, w)| w == &[0, 0, 0xff, 0xff])
                .map(|(i, _)| i)
                .collect();
            let at = match rng.below(4) {
                // block headers: the start, around sync flushes, the end
                0 => 10 + rng.below(64.min(len - 10)),
                1 if !hot.is_empty() => (hot[rng.below(hot.len())] + rng.below(80))
                    .saturating_sub(8)
                    .clamp(10, len - 1),
                2 => len - 1 - rng.below(24.min(len - 10)),
                _ => 10 + rng.below(len - 10),
            };
            match rng.below(9) {
                0..=2 => f[at] ^= 1 << rng.below(8),
                3 => f[at] = rng.next() as u8,
                4 => f.truncate(at),
                5 => {
                    let k = rng.below(16);
                    f.splice(at..at, (0..k).map(|_| rng.next() as u8));
                }
                6 => {
                    let k = rng.below(16).min(f.len() - at);
                    f.drain(at..at + k);
                }
                7 => {
                    let b = 10 + rng.below(other.len().max(11) - 10);
                    f.truncate(at);
                    f.extend_from_slice(other.get(b..).unwrap_or(&[]));
                }
                _ => {
                    let k = 1 + rng.below(9);
                    f.extend((0..k).map(|_| rng.next() as u8));
                }
            }
        }
        if rng.below(2) == 0 {
            reframe(&f)
        } else {
            f
        }
    }
    fn check(f: &[u8], rng: &mut Rng, st: &mut [u64; 4], why: &str) {
        let ((zo, ze), mut bad) = (fuzz_zlib(f, rng), vec![]);
        let exception = ze.is_none() && first_alignment_set(f);
        for _ in 0..3 {
            let (mut r2, _) = (Rng(rng.next() | 1), st[1] += 1);
            let Ok((mo, me)) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fuzz_ours(f, &mut r2)))
            else {
                bad.push("ours panicked".into());
                break;
            };
            let common = mo.len().min(zo.len());
            if mo[..common] != zo[..common] {
                bad.push(format!("outputs differ before {common} ({me:?} / {ze:?})"));
            } else if exception && me.is_none() {
                bad.push("a set alignment bit of a first stored block accepted".into());
            } else if !exception
                && (me.is_none() != ze.is_none() || (me.is_none() && mo.len() != zo.len()))
            {
                bad.push(format!(
                    "ours {} {me:?}, zlib {} {ze:?}",
                    mo.len(),
                    zo.len()
                ));
            }
        }
        st[2] += ze.is_none() as u64;
        if exception && f[10] & 0b111 != 0 {
            let mut g = f.to_vec();
            g[10] &= 0b111;
            check(&g, rng, st, why);
        }
        if !bad.is_empty() {
            let (dir, mut c) = (
                std::env::var("FUZZ_OUT").unwrap_or("/tmp/deflate-fuzz".into()),
                flate2::Crc::new(),
            );
            let _ = (c.update(f), std::fs::create_dir_all(&dir), st[3] += 1);
            let name = format!("{dir}/{:08x}", c.sum());
            std::fs::write(format!("{name}.gz"), f).unwrap();
            std::fs::write(format!("{name}.txt"), format!("{why}\n{bad:#?}\n")).unwrap();
            eprintln!("FOUND {name}: {why}: {bad:?}");
        }
    }
    /// Every run: `FUZZ_STREAMS` streams (default 4) from seed `FUZZ_SEED` (default 1),
    /// each with its mutants, decoded by both; `FUZZ_SECS=N` fuzzes for N seconds
    /// instead (the long runs of docs/security.md).
    #[test]
    fn fuzz_against_zlib() {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        let (secs, max_streams, t0, mut st, mut prev) = (
            env("FUZZ_SECS"),
            env("FUZZ_STREAMS").unwrap_or(4),
            std::time::Instant::now(),
            [0u64; 4],
            vec![0u8; 64],
        );
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15
            ^ env("FUZZ_SEED")
                .unwrap_or(1)
                .wrapping_mul(0x2545_f491_4f6c_dd1d)
            | 1);
        for streams in 1.. {
            // st: mutants, our decodes, zlib accepted, divergences
            let done = match secs {
                Some(secs) => t0.elapsed().as_secs() >= secs,
                None => streams > max_streams,
            };
            if done {
                eprintln!(
                    "{} streams, [mutants, runs, accepted, found] {st:?}",
                    streams - 1
                );
                break;
            }
            let (file, why) = match rng.below(8) {
                0 => (random_dynamic(&mut rng), "random dynamic"),
                1 => (
                    gzip_frame(
                        &(0..rng.below(2000))
                            .map(|_| rng.next() as u8)
                            .collect::<Vec<_>>(),
                        b"",
                    ),
                    "random",
                ),
                _ => {
                    let len = [
                        0,
                        1 + rng.below(300),
                        rng.below(70_000),
                        rng.below(300_000),
                        rng.below(4 << 20),
                    ][rng.below(5)];
                    let d = data2(&mut rng, len);
                    (encode(&mut rng, &d), "encoded")
                }
            };
            check(&file, &mut rng, &mut st, why);
            let size = file.len() + zlib(&file).map_or(0, |o| o.len());
            for _ in 0..(30_000_000 / (size + 1000)).clamp(5, 1000) {
                st[0] += 1;
                check(&mutate(&file, &prev, &mut rng), &mut rng, &mut st, why);
            }
            if streams % 50 == 0 {
                eprintln!("{:?} {streams} streams, {st:?}", t0.elapsed());
            }
            prev = file;
        }
        assert_eq!(st[3], 0, "divergences: see $FUZZ_OUT");
    }
}
