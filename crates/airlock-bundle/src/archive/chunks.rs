//! Files with chunk hashes (format 2): handed on a whole, authenticated chunk at a
//! time, and hashed whole on the way.
//!
//! Invariant: no byte of a chunk reaches a reader before the chunk's SHA-256 matched
//! the manifest; the file's SHA-256 covers every byte of every chunk read, in order.
//! Both hashes of a chunk are made at once, the file's on the reading thread and the
//! chunk's own on a [`ChunkHasher`] thread; the first chunk needs no second pass (its
//! SHA-256 is the file's hash state after exactly its bytes, finalized).

use crate::manifest;
use sha2::digest::Output;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

/// Prefix of an I/O error that is a chunk hash mismatch (`path\tindex\texpected\tactual`).
pub(super) const CHUNK_MISMATCH: &str = "CHUNK: ";

/// What the chunks of a bundle share, file after file: the buffer a chunk is read
/// into (allocated once) and the thread that hashes chunks (started at the first
/// chunk that needs it, stopped when the bundle's reading ends).
#[derive(Default)]
pub(super) struct ChunkRoom {
    buf: Arc<Vec<u8>>,
    hasher: Option<ChunkHasher>,
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
        let start = self.next as u64 * manifest::CHUNK;
        if start >= self.size {
            return Ok(false);
        }
        let want = (self.size - start).min(manifest::CHUNK) as usize;
        // The hasher let go of the buffer before it answered for the last chunk.
        if Arc::get_mut(&mut self.room.buf).is_none() {
            self.room.buf = Arc::default();
        }
        let buf = Arc::get_mut(&mut self.room.buf).expect("the buffer is not shared");
        if buf.len() < want {
            buf.resize(want, 0);
        }
        read_whole(&mut *self.inner, &mut buf[..want], &self.path)?;
        self.filled = want;
        let actual = hex::encode(self.hash_chunk()?);
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

    /// Add the chunk in the buffer to the file's hash; its own SHA-256.
    fn hash_chunk(&mut self) -> io::Result<Output<Sha256>> {
        let chunk = &self.room.buf[..self.filled];
        if self.next == 0 {
            self.whole.update(chunk);
            return Ok(self.whole.clone().finalize());
        }
        let hasher = self.room.hasher.get_or_insert_with(ChunkHasher::start);
        hasher.send(Arc::clone(&self.room.buf), self.filled)?;
        self.whole.update(chunk);
        hasher.digest()
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

/// Fill `buf` from `r`, or say the entry was cut short.
fn read_whole(r: &mut dyn Read, buf: &mut [u8], path: &str) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{path}: truncated entry"),
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A thread that hashes one chunk at a time: the first `len` bytes of the buffer it
/// is sent, which it lets go of before it answers.
struct ChunkHasher {
    jobs: Option<SyncSender<(Arc<Vec<u8>>, usize)>>,
    digests: Receiver<Output<Sha256>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChunkHasher {
    fn start() -> ChunkHasher {
        let (jobs, todo) = mpsc::sync_channel::<(Arc<Vec<u8>>, usize)>(1);
        let (done, digests) = mpsc::sync_channel(1);
        let thread = std::thread::spawn(move || {
            while let Ok((buf, len)) = todo.recv() {
                let digest = Sha256::digest(&buf[..len]);
                drop(buf);
                if done.send(digest).is_err() {
                    break;
                }
            }
        });
        ChunkHasher {
            jobs: Some(jobs),
            digests,
            thread: Some(thread),
        }
    }

    fn send(&self, buf: Arc<Vec<u8>>, len: usize) -> io::Result<()> {
        self.jobs
            .as_ref()
            .expect("running")
            .send((buf, len))
            .map_err(|_| gone())
    }

    fn digest(&self) -> io::Result<Output<Sha256>> {
        self.digests.recv().map_err(|_| gone())
    }
}

fn gone() -> io::Error {
    io::Error::other("internal: the thread hashing chunks stopped")
}

/// The thread stops when its job queue closes, and never outlives the reading.
impl Drop for ChunkHasher {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
