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
            if len % CHUNK != 0 {
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
        self.hasher.update(&buf[..n]);
        if let Some((h, done)) = &mut self.chunk {
            let mut rest = &buf[..n];
            let mut at = self.len;
            while !rest.is_empty() {
                let room = (CHUNK - at % CHUNK) as usize;
                let take = room.min(rest.len());
                h.update(&rest[..take]);
                at += take as u64;
                rest = &rest[take..];
                if at % CHUNK == 0 {
                    done.push(hex::encode(std::mem::take(h).finalize()));
                }
            }
        }
        self.len += n as u64;
        Ok(n)
    }
}
