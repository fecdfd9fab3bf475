//! Hashing while reading: the SHA-256 (and, for large files, one SHA-256 per
//! [`CHUNK`]) of whatever passes through a reader. How a file's manifest entry is made
//! (lint), re-checked while packing, and checked while verifying.
//!
//! Invariant: the hashes cover exactly the bytes the caller read, in order, and
//! nothing else.

use sha2::{Digest, Sha256};

/// A payload file larger than this many bytes gets one SHA-256 per `CHUNK` bytes in
/// its manifest entry (`chunks`), so a reader can authenticate it piece by piece.
pub const CHUNK: u64 = 8 << 20;

/// SHA-256 and length of whatever is read through it: how a file's manifest entry is
/// made (lint), re-checked while packing, and checked while verifying.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
    /// The hash of the current [`CHUNK`] and those of the chunks done, when asked for.
    chunk: Option<(Sha256, Vec<String>)>,
}

impl<R> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
            chunk: None,
        }
    }

    /// As [`new`](Self::new), also hashing each [`CHUNK`] bytes (`pack`).
    pub fn with_chunks(inner: R) -> Self {
        HashingReader {
            chunk: Some((Sha256::new(), vec![])),
            ..Self::new(inner)
        }
    }

    /// Lowercase hex SHA-256 and length of everything read.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.len)
    }

    /// [`finish`](Self::finish), plus the chunk hashes the manifest lists for a file of
    /// this length (`None` up to [`CHUNK`] bytes, or when not made
    /// [`with_chunks`](Self::with_chunks)).
    pub fn finish_with_chunks(self) -> (String, u64, Option<Vec<String>>) {
        let len = self.len;
        let chunks = self.chunk.and_then(|(h, mut done)| {
            if !len.is_multiple_of(CHUNK) {
                done.push(hex::encode(h.finalize()));
            }
            (len > CHUNK).then_some(done)
        });
        (hex::encode(self.hasher.finalize()), len, chunks)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some((h, done)) = &mut self.chunk else {
            self.hasher.update(&buf[..n]);
            self.len += n as u64;
            return Ok(n);
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let room = (CHUNK - self.len % CHUNK) as usize;
            let (part, after) = rest.split_at(room.min(rest.len()));
            // The first chunk's SHA-256 is the file's hash state after exactly its
            // bytes: only the later chunks need a second state (fed the same bytes).
            let first = self.len < CHUNK;
            if first {
                self.hasher.update(part);
            } else {
                self.hasher.update(part);
                h.update(part);
            }
            self.len += part.len() as u64;
            rest = after;
            if self.len.is_multiple_of(CHUNK) {
                let own = if first {
                    hex::encode(self.hasher.clone().finalize())
                } else {
                    hex::encode(std::mem::take(h).finalize())
                };
                done.push(own);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Read;

    /// Whatever the read sizes, the chunk hashes are those of each [`CHUNK`] bytes and
    /// the file's hash that of all of them.
    #[test]
    fn chunk_hashes_are_each_chunks_own() {
        let chunk = CHUNK as usize;
        for len in [chunk + 1, 2 * chunk, 2 * chunk + 12_345] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4099) as u8).collect();
            for piece in [4096, 1 << 20, 3 * chunk] {
                let mut r = HashingReader::with_chunks(&data[..]);
                let mut buf = vec![0u8; piece];
                while r.read(&mut buf).unwrap() > 0 {}
                let (whole, n, chunks) = r.finish_with_chunks();
                let own: Vec<String> = data
                    .chunks(chunk)
                    .map(|c| hex::encode(Sha256::digest(c)))
                    .collect();
                assert_eq!(
                    whole,
                    hex::encode(Sha256::digest(&data)),
                    "{len} by {piece}"
                );
                assert_eq!(n, len as u64);
                assert_eq!(chunks, Some(own), "{len} by {piece}");
            }
        }
        let mut small = HashingReader::with_chunks(&b"abc"[..]);
        small.read_to_end(&mut vec![]).unwrap();
        assert_eq!(small.finish_with_chunks().2, None);
    }
}
