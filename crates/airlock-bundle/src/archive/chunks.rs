//! Files with chunk hashes (format 2): handed on a whole, authenticated chunk at a
//! time, and hashed whole on the way.
//!
//! Invariant: no byte of a chunk reaches a reader before the chunk's SHA-256 matched
//! the manifest; the file's SHA-256 covers every byte of every chunk read, in order.
//! Both hashes of a chunk are made in one pass ([`twin_sha::update_both`]), a piece at a
//! time as the piece arrives (still in the cache, and the inflating thread drained
//! evenly); the first chunk needs no second state (its SHA-256 is the file's hash state
//! after exactly its bytes, finalized). A chunk's bytes are handed on only after the
//! last piece is hashed and the chunk's hash matched.

use crate::manifest;
use crate::twin_sha::{self, Sha256State};
use std::io::{self, Read};

/// Prefix of an I/O error that is a chunk hash mismatch (`path\tindex\texpected\tactual`).
pub(super) const CHUNK_MISMATCH: &str = "CHUNK: ";

/// What the chunks of a bundle share, file after file: the buffer a chunk is read
/// into (allocated once).
#[derive(Default)]
pub(super) struct ChunkRoom {
    buf: Vec<u8>,
}

/// Hands a file on only in whole chunks of [`manifest::CHUNK`] bytes whose SHA-256
/// matches the manifest's `chunks` entry: a chunk is read and hashed before its first
/// byte is released, so no reader of a bundle ever sees a byte of an altered chunk.
/// It also hashes the whole file, chunk by chunk as each is read (whatever the sink
/// reads of it), for the manifest's `sha256`.
pub(super) struct ChunkVerifier<'a> {
    inner: &'a mut dyn Read,
    room: &'a mut ChunkRoom,
    path: String,
    size: u64,
    chunks: &'a [String],
    /// The SHA-256 of every byte read so far.
    whole: Sha256State,
    /// How much of the buffer holds the current chunk, and how much of it was handed on.
    filled: usize,
    pos: usize,
    /// Chunks read so far.
    next: usize,
}

impl<'a> ChunkVerifier<'a> {
    pub(super) fn new(
        inner: &'a mut dyn Read,
        room: &'a mut ChunkRoom,
        path: &str,
        size: u64,
        chunks: &'a [String],
    ) -> Self {
        ChunkVerifier {
            inner,
            room,
            path: path.into(),
            size,
            chunks,
            whole: Sha256State::new(),
            filled: 0,
            pos: 0,
            next: 0,
        }
    }

    /// Read and check the next chunk; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        let start = self.next as u64 * manifest::CHUNK;
        if start >= self.size {
            return Ok(false);
        }
        let want = (self.size - start).min(manifest::CHUNK) as usize;
        let buf = &mut self.room.buf;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        // Each piece is hashed as it arrives, while it is in the cache, and the
        // inflating thread is drained evenly instead of a chunk at a time.
        let mut own = (self.next > 0).then(Sha256State::new);
        let whole = &mut self.whole;
        read_whole(&mut *self.inner, &mut buf[..want], &self.path, |piece| {
            match own.as_mut() {
                Some(own) => twin_sha::update_both(whole, own, piece),
                None => whole.update(piece),
            }
        })?;
        self.filled = want;
        // The first chunk's SHA-256 is the file's state after exactly its bytes.
        let actual = hex::encode(match own {
            Some(own) => own.finalize(),
            None => self.whole.clone().finalize(),
        });
        let expected = self.chunks.get(self.next).map(String::as_str).unwrap_or("");
        if actual != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{CHUNK_MISMATCH}{}\t{}\t{expected}\t{actual}",
                    self.path, self.next
                ),
            ));
        }
        self.next += 1;
        self.pos = 0;
        Ok(true)
    }

    /// Read (and check) the chunks the sink left unread.
    pub(super) fn drain(&mut self) -> io::Result<()> {
        while self.fill()? {}
        Ok(())
    }

    /// Lowercase hex SHA-256 and length of everything read.
    pub(super) fn finish(self) -> (String, u64) {
        let len = (self.next as u64 * manifest::CHUNK).min(self.size);
        (self.whole.hex(), len)
    }
}

impl Read for ChunkVerifier<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.filled && !self.fill()? {
            return Ok(0);
        }
        let n = out.len().min(self.filled - self.pos);
        out[..n].copy_from_slice(&self.room.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Fill `buf` from `r`, handing each piece read to `seen`, or say the entry was cut
/// short.
fn read_whole(
    r: &mut dyn Read,
    buf: &mut [u8],
    path: &str,
    mut seen: impl FnMut(&[u8]),
) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: truncated entry"),
                ))
            }
            Ok(n) => {
                seen(&buf[got..got + n]);
                got += n;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
