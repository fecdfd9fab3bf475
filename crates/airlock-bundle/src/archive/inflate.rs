//! Strict gzip decoding on `flate2` (zlib-rs backend): the deflate body is zlib's; the
//! gzip header, trailer and what may follow them are ours to check, and we check them.
//!
//! `flate2::read::GzDecoder` accepts any gzip header and ignores whatever follows the
//! first member, so the member is taken apart here: the caller requires airlock's exact
//! 10-byte header; the body goes through a raw [`flate2::Decompress`] over a reader we
//! control (zlib stops exactly at the end of the deflate stream); then the 8-byte
//! trailer is read, its CRC-32 and length checked against every byte inflated, and the
//! input must be exhausted: a second member or any trailing byte is refused.
//!
//! What zlib cannot be asked for: the bits no decoder reads (the alignment bits between
//! a stored block's 3-bit header and its length, and the padding after the final
//! block) are not checked to be zero, so flipping one of them gives another file that
//! decodes to the byte-identical archive (docs/security.md, "The trust path"). What
//! verify judges — every byte of the archive, its hashes and signatures — is unchanged
//! by such a flip.
//!
//! Invariant: [`StrictGzBody`] hands out only bytes zlib inflated from the stream; it
//! reports the end (0) only after the final block, a trailer whose CRC-32 and length
//! match every byte handed out, and the end of the input; after an error every call
//! fails again, never decodes past the fault.

use flate2::{Decompress, FlushDecompress, Status};
use std::io::{self, BufRead, Read};

fn corrupt(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("gzip stream is corrupt or truncated: {what}"),
    )
}

fn data_after() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "data after the end of the gzip stream (trailing bytes or a second gzip member)",
    )
}

/// Decodes the deflate body and trailer of a gzip member whose 10-byte header the
/// caller has already consumed, then requires the end of the input.
pub struct StrictGzBody<R: BufRead> {
    inner: R,
    z: Decompress,
    crc: crc32fast::Hasher,
    /// Bytes inflated (the trailer's length is this modulo 2^32).
    len: u64,
    /// zlib saw the final block's end.
    ended: bool,
    /// The trailer and the end of the input were checked.
    done: bool,
    /// The stream was found corrupt: every later call says so again.
    failed: bool,
}

impl<R: BufRead> StrictGzBody<R> {
    pub fn new(inner: R) -> io::Result<Self> {
        Ok(StrictGzBody {
            inner,
            // Raw deflate: the gzip framing is checked here, not by zlib.
            z: Decompress::new(false),
            crc: crc32fast::Hasher::new(),
            len: 0,
            ended: false,
            done: false,
            failed: false,
        })
    }

    /// Inflate into `out`: how many bytes. 0 once the stream ended, after its trailer
    /// (CRC-32 and length) and the end of the input were checked.
    pub fn fill(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(corrupt("read again after the stream was found corrupt"));
        }
        if self.done || out.is_empty() {
            return Ok(0);
        }
        let filled = self.inflate(out);
        self.failed = filled.is_err();
        filled
    }

    fn inflate(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < out.len() && !self.ended {
            let input = self.inner.fill_buf()?;
            let at_end = input.is_empty();
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(input, &mut out[filled..], FlushDecompress::None)
                .map_err(corrupt)?;
            let used = (self.z.total_in() - in_before) as usize;
            let made = (self.z.total_out() - out_before) as usize;
            self.inner.consume(used);
            filled += made;
            match status {
                Status::StreamEnd => self.ended = true,
                // No progress: the input ended inside the stream, or (never seen) zlib
                // took nothing with room on both sides; either way, refuse, never spin.
                _ if used == 0 && made == 0 => {
                    return Err(corrupt(if at_end {
                        "the deflate stream is truncated"
                    } else {
                        "the inflater made no progress"
                    }))
                }
                _ => {}
            }
        }
        self.crc.update(&out[..filled]);
        self.len += filled as u64;
        if filled == 0 && self.ended {
            self.finish()?;
        }
        Ok(filled)
    }

    /// The stream ended: the 8-byte trailer, then nothing.
    fn finish(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.inner
            .read_exact(&mut trailer)
            .map_err(|_| corrupt("the gzip trailer is truncated"))?;
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
        let sum = self.crc.clone().finalize();
        if crc != sum {
            return Err(corrupt(format!(
                "CRC-32 mismatch (trailer {crc:08x}, data {sum:08x})"
            )));
        }
        if size != self.len as u32 {
            return Err(corrupt(format!(
                "length mismatch (trailer {size}, data {})",
                self.len as u32
            )));
        }
        if !self.inner.fill_buf()?.is_empty() {
            return Err(data_after());
        }
        self.done = true;
        Ok(())
    }
}

impl<R: BufRead> Read for StrictGzBody<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.fill(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::gz::{ParallelGzWriter, BLOCK, GZIP_HEADER};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        gz_blocks(data, BLOCK)
    }

    fn gz_blocks(data: &[u8], block: usize) -> Vec<u8> {
        let mut w = ParallelGzWriter::with_block_size(Vec::new(), 6, 2, block);
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn decode(file: &[u8]) -> io::Result<Vec<u8>> {
        assert_eq!(file[..10], GZIP_HEADER);
        // A small buffer, so the trailer and the end are also checked across refills.
        let mut d = StrictGzBody::new(io::BufReader::with_capacity(7, &file[10..]))?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
    }

    /// A gzip member with `body` as its deflate stream, and the trailer of `data`.
    fn member(body: &[u8], data: &[u8]) -> Vec<u8> {
        let mut file = GZIP_HEADER.to_vec();
        file.extend_from_slice(body);
        file.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        file.extend_from_slice(&(data.len() as u32).to_le_bytes());
        file
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[i % 3] % 7 + b'a')
            .collect()
    }

    #[test]
    fn decodes_what_the_writer_wrote() {
        for n in [0, 1, 5000, BLOCK, 2 * BLOCK + 777] {
            let data = sample(n);
            assert_eq!(decode(&gz(&data)).unwrap(), data, "{n} bytes");
        }
    }

    /// Every single-bit flip after the header is refused, or (a bit zlib does not read:
    /// stored-block alignment, the final padding) decodes to the identical bytes.
    #[test]
    fn a_single_bit_flip_is_refused_or_changes_nothing() {
        // Small writer blocks, so that several sync-flush stored blocks (with their
        // alignment bits) and the final padding are all in a few kilobytes.
        let data = sample(3 * 700 + 123);
        let good = gz_blocks(&data, 700);
        let mut accepted = vec![];
        for byte in 10..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[byte] ^= 1 << bit;
                if let Ok(out) = decode(&bad) {
                    assert_eq!(out, data, "flip at byte {byte} bit {bit}");
                    accepted.push((byte, bit));
                }
            }
        }
        // Only bits no decoder reads: a handful per sync flush, none in the trailer.
        assert!(accepted.len() < 40, "flips accepted: {accepted:?}");
        assert!(accepted.iter().all(|&(byte, _)| byte < good.len() - 8));
    }

    /// A fixed block with 'a', then a match 2 back (further than the output), then 'b',
    /// and the trailer of "b": the first read fails, and so does every read after it
    /// (zlib's "repeated call with bad state"), never the bytes after the bad one.
    #[test]
    fn after_an_error_every_read_fails() {
        let file = hex::decode("1f8b08000000000000ff4b04c22400f9efbe7101000000").unwrap();
        let mut d = StrictGzBody::new(io::BufReader::new(&file[10..])).unwrap();
        let mut buf = [0u8; 64];
        for read in 0..3 {
            let err = d.read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "read {read}");
        }
        let mut out = vec![0u8; 100];
        assert!(d.fill(&mut out).is_err());
    }

    #[test]
    fn trailing_bytes_a_second_member_and_truncation_are_refused() {
        let good = gz(b"hello");
        let mut more = good.clone();
        more.push(0);
        assert!(decode(&more)
            .unwrap_err()
            .to_string()
            .contains("after the end"));
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert!(decode(&two)
            .unwrap_err()
            .to_string()
            .contains("after the end"));
        for cut in 11..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn a_wrong_crc_or_length_is_refused() {
        let good = gz(b"hello");
        let n = good.len();
        for (at, what) in [(n - 8, "CRC-32"), (n - 4, "length")] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            let err = decode(&bad).unwrap_err().to_string();
            assert!(err.contains(what), "{err}");
        }
    }

    /// What zlib refuses, verify refuses: block type 3, stored lengths that disagree,
    /// a distance further back than the output, a block cut short.
    #[test]
    fn malformed_deflate_is_refused() {
        let cases: [(&str, &[u8]); 5] = [
            ("block type 3", &[0x07, 0x00]),
            (
                "stored length and its complement disagree",
                &[0x01, 0x05, 0x00, 0x00, 0x00],
            ),
            ("distance too far back", &[0x4b, 0x04, 0xc2, 0x24, 0x00]),
            ("a block cut short", &[0x4b]),
            (
                "a byte between the final block and the trailer",
                &[0x4b, 0x04, 0x00, 0x00],
            ),
        ];
        for (what, body) in cases {
            let file = member(body, b"a");
            assert!(decode(&file).is_err(), "{what} accepted");
        }
    }
}
