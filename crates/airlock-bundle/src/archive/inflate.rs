//! Strict gzip decoding: every bit of a bundle file is accounted for.
//!
//! A deflate stream holds bits that no decoder reads: the alignment bits between a
//! stored block's 3-bit header and its length, and the padding after the final block.
//! gzip's CRC-32 covers only the decompressed data, so flipping one of those bits gives
//! a file every gzip reader accepts as the same archive. airlock's writer always leaves
//! them zero, and its decoder ([`super::deflate`]) requires it, where it meets them.
//!
//! Invariant: together with the exact gzip header (checked by the caller), the CRC-32
//! and length in the trailer and nothing after it, a stream decodes to the end only if
//! no bit of it differs from the bytes that produced its output. Any single-bit change
//! to a bundle file is refused.

use super::deflate::{Decoder, WINDOW};
use std::io::{self, BufRead, Read};

fn corrupt(what: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("gzip stream is corrupt or truncated: {}", what.into()),
    )
}

fn data_after() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "data after the end of the gzip stream (trailing bytes or a second gzip member)",
    )
}

/// Bytes the [`Read`] side decodes at a time (after the window it keeps).
const READ_AHEAD: usize = 128 * 1024;

/// Decodes the deflate body and trailer of a gzip member whose 10-byte header the
/// caller has already consumed, then requires the end of the input.
pub struct StrictGzBody<R: BufRead> {
    inner: R,
    dec: Decoder,
    crc: crc32fast::Hasher,
    /// Bytes decoded (the trailer's length is this modulo 2^32).
    len: u64,
    /// The trailer and the end were checked.
    done: bool,
    /// The stream was found corrupt: every later call says so again (zlib's "bad
    /// state"), never decodes on past the fault.
    failed: bool,
    /// For [`Read`]: the output decoded so far that was not read yet is
    /// `buf[at..end]`, after the window of bytes before it.
    buf: Vec<u8>,
    at: usize,
    end: usize,
}

impl<R: BufRead> StrictGzBody<R> {
    pub fn new(inner: R) -> io::Result<Self> {
        Ok(StrictGzBody {
            inner,
            dec: Decoder::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            done: false,
            failed: false,
            buf: Vec::new(),
            at: 0,
            end: 0,
        })
    }

    /// Decode into `out[history..]`, where `out[..history]` holds the stream's last
    /// `history` bytes decoded so far (at least [`WINDOW`], or all of them): how many
    /// bytes. 0 once the stream ended, after its trailer (CRC-32 and length) and the
    /// end of the input were checked.
    pub fn fill(&mut self, out: &mut [u8], history: usize) -> io::Result<usize> {
        if self.failed {
            return Err(corrupt("read again after the stream was found corrupt"));
        }
        if self.done {
            return Ok(0);
        }
        let filled = self.decode(out, history);
        self.failed = filled.is_err();
        filled
    }

    fn decode(&mut self, out: &mut [u8], history: usize) -> io::Result<usize> {
        let n = self.dec.decode(&mut self.inner, out, history)?;
        self.crc.update(&out[history..history + n]);
        self.len += n as u64;
        if n == 0 && self.dec.done() {
            self.finish()?;
        }
        Ok(n)
    }

    /// The stream ended: the 8-byte trailer, then nothing.
    fn finish(&mut self) -> io::Result<()> {
        let trailer = self.dec.read_after(&mut self.inner, 8)?;
        if trailer.len() < 8 {
            return Err(corrupt("the gzip trailer is truncated"));
        }
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
        if !self.dec.source_spent(&mut self.inner)? {
            return Err(data_after());
        }
        self.done = true;
        Ok(())
    }
}

impl<R: BufRead> Read for StrictGzBody<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.at == self.end {
            // The window's bytes go first, then new output after them.
            if self.buf.is_empty() {
                self.buf = vec![0; WINDOW + READ_AHEAD];
            }
            let keep = self.end.min(WINDOW);
            self.buf.copy_within(self.end - keep..self.end, 0);
            let mut buf = std::mem::take(&mut self.buf);
            let n = self.fill(&mut buf[..keep + READ_AHEAD], keep);
            self.buf = buf;
            let n = n?;
            self.at = keep;
            self.end = keep + n;
        }
        let n = out.len().min(self.end - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
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
        // A small buffer, so header checks also happen across reader refills.
        let mut d = StrictGzBody::new(io::BufReader::with_capacity(7, &file[10..]))?;
        let mut out = Vec::new();
        d.read_to_end(&mut out)?;
        Ok(out)
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

    #[test]
    fn every_single_bit_flip_is_refused() {
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
                    accepted.push((byte, bit, out == data));
                }
            }
        }
        assert!(accepted.is_empty(), "flips accepted: {accepted:?}");
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
        assert!(d.fill(&mut out, 0).is_err());
    }

    #[test]
    fn trailing_bytes_and_truncation_are_refused() {
        let good = gz(b"hello");
        let mut more = good.clone();
        more.push(0);
        assert!(decode(&more)
            .unwrap_err()
            .to_string()
            .contains("after the end"));
        for cut in 11..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
    }
}
