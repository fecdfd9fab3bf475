//! gzip, deterministic and parallel on the way out, strict and overlapped on the way in.
//!
//! Writer invariant: the output depends only on the input bytes and the level — never
//! on the number of cores. The input is cut into fixed 1 MiB blocks; each block is
//! deflated independently (like `pigz -i`) and ends on a byte boundary with a sync
//! flush, so blocks concatenate into one valid deflate stream inside one gzip member
//! (mtime 0, no name, OS "unknown").
//!
//! Reader invariant: exactly one gzip member with airlock's exact header, inflated by
//! zlib-rs through `flate2` with its CRC-32 and length checked ([`super::inflate`]),
//! nothing after it; decompression runs on its own thread so tar parsing and hashing
//! overlap with it.

use super::piece::{Home, Piece, Pool};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

pub const BLOCK: usize = 1 << 20;

/// The only gzip header airlock writes and accepts: deflate, no flags, mtime 0, XFL 0,
/// OS unknown. Being exact, a flipped bit anywhere in it is refused.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

fn deflate_block(data: &[u8], level: u32, last: bool) -> Vec<u8> {
    let mut c = Compress::new(Compression::new(level), false);
    // SQL text compresses 5-8x: start small, grow if it does not.
    let mut out = Vec::with_capacity(data.len() / 4 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(256 * 1024);
        }
        let before_in = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .expect("deflate cannot fail on valid state");
        input = &input[(c.total_in() - before_in) as usize..];
        match status {
            Status::StreamEnd => break,
            _ if !last && input.is_empty() && out.capacity() > out.len() => break,
            _ => {}
        }
    }
    out
}

type Job = (u64, Vec<u8>, bool);

/// A gzip writer that deflates 1 MiB blocks on worker threads, in order.
pub struct ParallelGzWriter<W: Write> {
    inner: Option<W>,
    buf: Vec<u8>,
    crc: Crc,
    next_id: u64,
    next_out: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    jobs: Option<SyncSender<Job>>,
    results: Receiver<(u64, Vec<u8>)>,
    workers: Vec<std::thread::JoinHandle<()>>,
    in_flight: usize,
    max_in_flight: usize,
    header_written: bool,
    block: usize,
}

impl<W: Write> ParallelGzWriter<W> {
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        Self::with_block_size(inner, level, threads, BLOCK)
    }

    /// Another block size: only tests use it (bundles always use [`BLOCK`]).
    pub(crate) fn with_block_size(inner: W, level: u32, threads: usize, block: usize) -> Self {
        let threads = threads.max(1);
        let (jtx, jrx) = mpsc::sync_channel::<Job>(threads);
        let (rtx, rrx) = mpsc::channel();
        let jrx = Arc::new(Mutex::new(jrx));
        let workers = (0..threads)
            .map(|_| {
                let jrx = Arc::clone(&jrx);
                let rtx = rtx.clone();
                std::thread::spawn(move || loop {
                    let job = { jrx.lock().expect("job queue").recv() };
                    let Ok((id, data, last)) = job else { break };
                    let out = deflate_block(&data, level, last);
                    if rtx.send((id, out)).is_err() {
                        break;
                    }
                })
            })
            .collect();
        ParallelGzWriter {
            inner: Some(inner),
            buf: Vec::with_capacity(block),
            crc: Crc::new(),
            next_id: 0,
            next_out: 0,
            pending: BTreeMap::new(),
            jobs: Some(jtx),
            results: rrx,
            workers,
            in_flight: 0,
            max_in_flight: threads * 2,
            header_written: false,
            block,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.as_mut().expect("open").write_all(&GZIP_HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Collect finished blocks (waiting for one when `block`) and write, in order,
    /// every block whose turn has come.
    fn drain(&mut self, block: bool) -> io::Result<()> {
        if block && self.in_flight > 0 {
            let (id, out) = self
                .results
                .recv()
                .map_err(|_| io::Error::other("compression worker died"))?;
            self.in_flight -= 1;
            self.pending.insert(id, out);
        }
        while let Ok((id, out)) = self.results.try_recv() {
            self.in_flight -= 1;
            self.pending.insert(id, out);
        }
        while let Some(out) = self.pending.remove(&self.next_out) {
            self.inner.as_mut().expect("open").write_all(&out)?;
            self.next_out += 1;
        }
        Ok(())
    }

    fn submit(&mut self, last: bool) -> io::Result<()> {
        self.write_header()?;
        let data = std::mem::replace(
            &mut self.buf,
            if last {
                Vec::new()
            } else {
                Vec::with_capacity(self.block)
            },
        );
        self.jobs
            .as_ref()
            .expect("open")
            .send((self.next_id, data, last))
            .map_err(|_| io::Error::other("compression worker died"))?;
        self.next_id += 1;
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight {
            self.drain(true)?;
        }
        self.drain(false)
    }

    /// Write the last block and the gzip trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while self.in_flight > 0 {
            self.drain(true)?;
        }
        self.drain(false)?;
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let mut inner = self.inner.take().expect("open");
        inner.write_all(&self.crc.sum().to_le_bytes())?;
        inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(inner)
    }
}

impl<W: Write> Write for ParallelGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.block - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.crc.update(&data[..n]);
        if self.buf.len() == self.block {
            self.submit(false)?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ParallelGzWriter<W> {
    fn drop(&mut self) {
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Decompressed bytes arrive from a decoder thread in pieces of [`PIECE`] bytes; errors
/// (bad gzip, trailing data, a second member) arrive in order, after the good bytes.
/// Spent pieces go back to the decoder to be filled again, so the stream costs no
/// allocation (nor zeroing) per piece. zlib keeps its own window: a piece is only the
/// bytes it holds.
pub struct ThreadedGzReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    /// Spent pieces, back to the decoder.
    spent: Pool,
    decoder: Option<std::thread::JoinHandle<()>>,
    /// The piece being read (shared with the [`Piece`]s taken of it).
    cur: Arc<Vec<u8>>,
    pos: usize,
    done: bool,
}

/// Bytes the decoder hands over at a time.
const PIECE: usize = 256 * 1024;

/// Pieces the decoder may be ahead by: a quarter of a manifest chunk (2 MiB), enough
/// to keep it inflating while the reader hashes; more holds memory for little time
/// (quiet, paired, with the SQL judge's queue at 48 batches: 4 MiB ahead peaked at
/// 30.5–32.6 MiB, 2 MiB at 27.7; docs/performance.md, "Memory on the trust path").
const AHEAD: usize = (crate::hashing::CHUNK as usize) / PIECE / 4;

/// Spent pieces kept to be filled again: what the decoder is ahead by, a chunk the
/// reader is hashing and the batches queued for judging ([`Piece`]s taken of them come
/// back when the judging is done), with room to spare.
const SPENT: usize = 24 * AHEAD;

impl ThreadedGzReader {
    pub fn new<R: Read + Send + 'static>(file: R) -> ThreadedGzReader {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(AHEAD);
        let spent = Pool::new(SPENT);
        let recycled = spent.clone();
        let decoder = std::thread::spawn(move || decode(file, &tx, &recycled));
        ThreadedGzReader {
            rx,
            spent,
            decoder: Some(decoder),
            cur: Arc::new(Vec::new()),
            pos: 0,
            done: false,
        }
    }

    /// Make the current piece one with bytes left to read: false at the end.
    fn next_piece(&mut self) -> io::Result<bool> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(false);
            }
            match self.rx.recv() {
                Ok(Ok(piece)) => {
                    let spent = std::mem::replace(&mut self.cur, Arc::new(piece));
                    // A piece still shared goes back when its last taker drops it.
                    if let Some(spent) = Arc::into_inner(spent) {
                        self.spent.give(spent);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The next bytes of the stream, at most `max` of them, as a [`Piece`] of the
    /// decoder's own buffer (no copy): `None` at the end.
    pub fn take_piece(&mut self, max: usize) -> io::Result<Option<Piece>> {
        if !self.next_piece()? {
            return Ok(None);
        }
        let n = max.min(self.cur.len() - self.pos);
        let piece = Piece::shared(&self.cur, self.pos..self.pos + n, Home(self.spent.clone()));
        self.pos += n;
        Ok(Some(piece))
    }
}

/// The decoder thread: the exact header, then the strict body, piece by piece, into
/// `tx`; stops at the first error (sent last) or when the reader is gone.
fn decode<R: Read>(file: R, tx: &SyncSender<io::Result<Vec<u8>>>, recycled: &Pool) {
    // The caller counts compressed bytes (ratio limit, progress) in `file`.
    let mut buffered = io::BufReader::with_capacity(PIECE, file);
    // Read whole, however few bytes each read gives (a pipe's).
    let mut head = [0u8; GZIP_HEADER.len()];
    if buffered.read_exact(&mut head).is_err() || head != GZIP_HEADER {
        let _ = tx.send(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an airlock bundle: the gzip header is not the exact one airlock writes (mtime 0, no flags, no name)",
        )));
        return;
    }
    let mut dec = match super::inflate::StrictGzBody::new(buffered) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    let fresh = |recycled: &Pool| {
        let mut piece = recycled.take().unwrap_or_default();
        piece.resize(PIECE, 0);
        piece
    };
    loop {
        let mut piece = fresh(recycled);
        let (filled, err) = fill(&mut dec, &mut piece);
        piece.truncate(filled);
        if filled > 0 && tx.send(Ok(piece)).is_err() {
            return;
        }
        if let Some(e) = err {
            let _ = tx.send(Err(e));
            return;
        }
        if filled < PIECE {
            // StrictGzBody checked the trailer and that nothing follows it.
            return;
        }
    }
}

/// Fill `piece` from the decoder: how many bytes, and the error that stopped it early.
fn fill<R: BufRead>(
    dec: &mut super::inflate::StrictGzBody<R>,
    piece: &mut [u8],
) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < piece.len() {
        match dec.fill(&mut piece[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                // The decoder's own errors already say what is wrong.
                let e = if e.kind() == io::ErrorKind::InvalidData {
                    e
                } else {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("gzip stream is corrupt or truncated: {e}"),
                    )
                };
                return (filled, Some(e));
            }
        }
    }
    (filled, None)
}

/// The decoder thread never outlives its reader: dropping the receiver makes its next
/// send fail (it stops within one piece), then we wait for it. Found by fuzzing: when
/// verification failed early, the detached thread was still running after
/// `read_bundle` returned (LeakSanitizer saw its thread-local state).
impl Drop for ThreadedGzReader {
    fn drop(&mut self) {
        let (_, closed) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.rx, closed));
        if let Some(d) = self.decoder.take() {
            let _ = d.join();
        }
    }
}

impl Read for ThreadedGzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.next_piece()? {
            return Ok(0);
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"INSERT INTO t VALUES (1, 'abc');\n"[i % 33] ^ ((i / 7919) as u8 & 3))
            .collect()
    }

    #[test]
    fn output_is_independent_of_thread_count_and_decodes() {
        let data = sample(3 * BLOCK + 12345);
        let mut outs = vec![];
        for threads in [1, 2, 4] {
            let mut w = ParallelGzWriter::new(Vec::new(), 6, threads);
            for piece in data.chunks(77_777) {
                w.write_all(piece).unwrap();
            }
            outs.push(w.finish().unwrap());
        }
        assert_eq!(outs[0], outs[1]);
        assert_eq!(outs[0], outs[2]);
        let mut back = vec![];
        flate2::read::GzDecoder::new(&outs[0][..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let mut back2 = vec![];
        ThreadedGzReader::new(std::io::Cursor::new(outs[0].clone()))
            .read_to_end(&mut back2)
            .unwrap();
        assert_eq!(back2, data);
    }

    /// A source a byte at a time (a pipe's way): the header is read whole all the same.
    #[test]
    fn a_bundle_read_a_byte_at_a_time_decodes() {
        struct OneByte(std::io::Cursor<Vec<u8>>);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let data = sample(BLOCK + 4321);
        let mut w = ParallelGzWriter::new(Vec::new(), 6, 2);
        w.write_all(&data).unwrap();
        let file = w.finish().unwrap();
        let mut back = vec![];
        ThreadedGzReader::new(OneByte(std::io::Cursor::new(file)))
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let w = ParallelGzWriter::new(Vec::new(), 6, 2);
        let out = w.finish().unwrap();
        let mut back = vec![];
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
    }

    #[test]
    fn trailing_data_is_an_error() {
        let mut w = ParallelGzWriter::new(Vec::new(), 6, 2);
        w.write_all(b"hello").unwrap();
        let mut out = w.finish().unwrap();
        let second = out.clone();
        out.extend_from_slice(&second);
        let mut back = vec![];
        let err = ThreadedGzReader::new(std::io::Cursor::new(out))
            .read_to_end(&mut back)
            .unwrap_err();
        assert!(err.to_string().contains("after the end of the gzip stream"));
    }
}
