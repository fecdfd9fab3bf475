//! Files with chunk hashes (format 2): handed on a whole, authenticated chunk at a
//! time, and hashed whole on the way.
//!
//! Invariant: no byte of a chunk reaches a reader before the chunk's SHA-256 matched
//! the manifest; the file's SHA-256 covers every byte of every chunk read, in order.
//! Both hashes of a chunk (two `sha2` states) are fed each piece in turn, a piece at a
//! time as the piece arrives (still in the cache, and the inflating thread drained
//! evenly); the first chunk needs no second state (its SHA-256 is the file's hash state
//! after exactly its bytes, finalized). A chunk's bytes are handed on only after the
//! last piece is hashed and the chunk's hash matched.

use super::piece::{Piece, Tap};
use super::Pieces;
use crate::manifest;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// The file's and the chunk's SHA-256 fed the same bytes, while they are in the cache.
fn both(whole: &mut Sha256, own: &mut Sha256, bytes: &[u8]) {
    whole.update(bytes);
    own.update(bytes);
}

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
    whole: Sha256,
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
            whole: Sha256::new(),
            filled: 0,
            pos: 0,
            next: 0,
        }
    }

    /// Read and check the next chunk; false at the end of the file.
    fn fill(&mut self) -> io::Result<bool> {
        let Some(want) = self.next_len() else {
            return Ok(false);
        };
        let buf = &mut self.room.buf;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        // Each piece is hashed as it arrives, while it is in the cache, and the
        // inflating thread is drained evenly instead of a chunk at a time.
        let mut own = (self.next > 0).then(Sha256::new);
        let whole = &mut self.whole;
        read_whole(
            &mut *self.inner,
            &mut buf[..want],
            &self.path,
            |piece| match own.as_mut() {
                Some(own) => both(whole, own, piece),
                None => whole.update(piece),
            },
        )?;
        self.filled = want;
        self.pos = 0;
        self.check(own)?;
        Ok(true)
    }

    /// The length of the next chunk, if there is one.
    fn next_len(&self) -> Option<usize> {
        let start = self.next as u64 * manifest::CHUNK;
        (start < self.size).then(|| (self.size - start).min(manifest::CHUNK) as usize)
    }

    /// The chunk just read matches the manifest (`own`: its own hash, but for the
    /// first chunk, whose hash is the file's state after exactly its bytes).
    fn check(&mut self, own: Option<Sha256>) -> io::Result<()> {
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
        Ok(())
    }

    /// Hand the whole file on to `pieces`, a chunk at a time, without a copy: each
    /// chunk is taken from the inflated stream as pieces of it (through `tap`), hashed
    /// as they arrive, and handed over once the chunk's hash matched, as [`Read`]
    /// hands a chunk on.
    pub(super) fn hand_pieces(&mut self, pieces: &mut dyn Pieces, tap: &Tap) -> io::Result<()> {
        let mut chunk: Vec<Piece> = Vec::new();
        while let Some(want) = self.next_len() {
            let mut own = (self.next > 0).then(Sha256::new);
            let mut got = 0;
            while got < want {
                let Some(piece) = tap.steal(&mut *self.inner, want - got)? else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: truncated entry", self.path),
                    ));
                };
                match own.as_mut() {
                    Some(own) => both(&mut self.whole, own, piece.bytes()),
                    None => self.whole.update(piece.bytes()),
                }
                got += piece.len();
                chunk.push(piece);
            }
            self.check(own)?;
            for piece in chunk.drain(..) {
                pieces.take(piece)?;
            }
        }
        Ok(())
    }

    /// Read (and check) the chunks the sink left unread.
    pub(super) fn drain(&mut self) -> io::Result<()> {
        while self.fill()? {}
        Ok(())
    }

    /// Lowercase hex SHA-256 and length of everything read.
    pub(super) fn finish(self) -> (String, u64) {
        let len = (self.next as u64 * manifest::CHUNK).min(self.size);
        (hex::encode(self.whole.finalize()), len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Hands its bytes on in pieces of the sizes given in turn, as a reader whose cuts
    /// fall anywhere (mid-block for SHA-256) would.
    struct Cut<'a> {
        data: &'a [u8],
        at: usize,
        sizes: &'a [usize],
        turn: usize,
    }

    impl Read for Cut<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.turn % self.sizes.len()];
            self.turn += 1;
            let n = size.min(out.len()).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn file(len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 5) as u8)
            .collect()
    }

    fn chunk_hashes(data: &[u8]) -> Vec<String> {
        data.chunks(manifest::CHUNK as usize)
            .map(|c| hex::encode(Sha256::digest(c)))
            .collect()
    }

    /// Reads `data` through a verifier of `chunks`, cut in pieces of `sizes` and read
    /// 100,003 bytes at a time: the bytes handed on, the error that stopped it, and the
    /// file's hash and length.
    fn read_cut(
        data: &[u8],
        sizes: &[usize],
        chunks: &[String],
    ) -> (Vec<u8>, Option<io::Error>, (String, u64)) {
        let mut inner = Cut {
            data,
            at: 0,
            sizes,
            turn: 0,
        };
        let mut room = ChunkRoom::default();
        let size = data.len() as u64;
        let mut v = ChunkVerifier::new(&mut inner, &mut room, "sql/a.sql", size, chunks);
        let mut got = Vec::new();
        let mut buf = vec![0; 100_003];
        let err = loop {
            match v.read(&mut buf) {
                Ok(0) => break None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break Some(e),
            }
        };
        (got, err, v.finish())
    }

    /// Each piece is hashed as it arrives: wherever the reads are cut, the chunks'
    /// hashes and the file's are those of the bytes.
    #[test]
    fn pieces_cut_anywhere_hash_as_the_whole_chunks_do() {
        let chunk = manifest::CHUNK as usize;
        let data = file(2 * chunk + 1000);
        let chunks = chunk_hashes(&data);
        for sizes in [&[1 << 20][..], &[1, 63, 65, 4097, 300_001][..]] {
            let (got, err, whole) = read_cut(&data, sizes, &chunks);
            assert!(err.is_none(), "{sizes:?}: {err:?}");
            assert!(got == data, "{sizes:?}: the bytes handed on");
            assert_eq!(
                whole,
                (hex::encode(Sha256::digest(&data)), data.len() as u64)
            );
        }
    }

    /// A byte changed in the second chunk: the first chunk is handed on whole, then the
    /// mismatch, and no byte of the second chunk.
    #[test]
    fn no_byte_of_an_altered_chunk_is_handed_on() {
        let chunk = manifest::CHUNK as usize;
        let signed = file(2 * chunk + 1000);
        let chunks = chunk_hashes(&signed);
        let mut altered = signed.clone();
        altered[chunk + 4097] ^= 1;
        let (got, err, _) = read_cut(&altered, &[1, 63, 65, 4097, 300_001], &chunks);
        assert!(got == signed[..chunk], "exactly the first chunk");
        let err = err.expect("the altered chunk is refused").to_string();
        assert!(
            err.starts_with(&format!("{CHUNK_MISMATCH}sql/a.sql\t1\t{}", chunks[1])),
            "{err}"
        );
    }
}
