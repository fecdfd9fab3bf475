//! `VerifiedBundle`: the only way bundle content reaches gate/plan/apply/rollback.
//!
//! Invariant: a `VerifiedBundle` was read in one pass from one file, verified against
//! a trust store (threshold, windows, expiry, hashes, structure), its SQL re-checked
//! with the parser rules, and it executes from the bytes kept during that pass — the
//! bundle file is never re-opened by path.
//!
//! Where those bytes live: small files (gates, probes, most tiers) in memory; a file
//! larger than [`ExecLimits::spill_above`] in one private, nameless temporary file
//! (`O_TMPFILE`, mode 0600, in `$TMPDIR`), written in the same pass that hashes it:
//! the bytes written are the bytes the hash was computed over, the file has no name
//! anyone could open, and only this process holds its descriptor. So a data release of
//! any size is applied in bounded memory, with no size cap.

use crate::archive::{self, Judge, Limits, Opened, Sink, VerifyError};
use crate::bundle_path::BundlePath;
use crate::manifest::{Manifest, ManifestError};
use crate::sql_rules::{self, violated_io, FileJudge, Judged, Judgment, Roles};
use crate::trust::TrustStore;
use crate::verdicts::Verdicts;
use airlock_sql::{self, SqlRole};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};

/// How a verified bundle keeps and runs its payload. Tests lower both to exercise the
/// large-file paths with small files.
#[derive(Clone, Debug)]
pub struct ExecLimits {
    /// Payload files larger than this go to the private spill file instead of memory.
    pub spill_above: u64,
    /// A large tier file is sent in simple-query messages of about this many bytes,
    /// cut at statement boundaries (a small file is one message).
    pub message_bytes: usize,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            spill_above: 8 << 20,
            message_bytes: 8 << 20,
        }
    }
}

/// Where one verified file's bytes are.
enum Kept {
    Memory(Vec<u8>),
    Spilled { offset: u64, len: u64 },
}

/// Which held files [`VerifiedBundle::recheck_sql`] judges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recheck {
    /// Every one: none was judged as it was read (the files before a streamed one).
    All,
    /// Those read back from the spill file; the reader judged the others as it kept
    /// them.
    Spilled,
}

pub struct VerifiedBundle {
    pub opened: Opened,
    files: BTreeMap<String, Kept>,
    spill: Option<File>,
    limits: ExecLimits,
    /// Streaming ([`VerifiedBundle::load_streaming`]): the reader still at work.
    stream: Mutex<Stream>,
    /// Streaming: the files after the streamed one, once the whole bundle verified.
    tail: OnceLock<Tail>,
    /// Where this bundle's SQL verdict is remembered once all of it verified, and
    /// whether it already was (then its files in memory are not judged again).
    verdicts: Verdicts,
    judgment: Judgment,
}

/// Files kept after the streamed one (and their spill file).
struct Tail {
    files: BTreeMap<String, Kept>,
    spill: Option<File>,
}

/// Where a streaming load stands.
enum Stream {
    /// Everything was verified before the bundle was handed out (the usual load).
    None,
    /// The reader thread is at (or before) the file `path`, which it hands on chunk by
    /// chunk (`taken`: the executor asked for it).
    Running {
        path: String,
        rx: Receiver<Msg>,
        handle: std::thread::JoinHandle<Result<ReadOutcome, VerifyError>>,
        taken: bool,
    },
    /// The whole bundle verified.
    Done,
    /// Verification failed part-way (said once; later calls refuse with this).
    Failed(String),
}

/// What the reader thread sends.
enum Msg {
    /// Everything before the streamed file: its first chunk follows.
    Head {
        opened: Box<Opened>,
        files: BTreeMap<String, Kept>,
        spill: Option<File>,
        judgment: Judgment,
    },
    /// The next authenticated (and linted) chunk of the streamed file.
    Chunk(Vec<u8>),
    /// The streamed file ended (the rest of the bundle is still being read).
    End,
}

/// What the reader thread ends with: the files it kept (after the head, if it sent
/// one).
struct ReadOutcome {
    opened: Opened,
    files: BTreeMap<String, Kept>,
    spill: Option<File>,
    judgment: Judgment,
}

/// A streamed file is handed on in slices of this many bytes, each from a chunk
/// already authenticated whole (the reader holds one chunk while it is checked).
const SLICE: usize = 1 << 20;

/// Slices the reader may run ahead of the executor: one chunk
/// ([`crate::manifest::CHUNK`]) in the queue, one more being authenticated.
const QUEUE: usize = 8;

/// The tier file `apply` can execute as it streams from the archive, if any: the first
/// tier file (in execution order) that carries chunk hashes, listed once, such that
/// every file the run needs before it (all gates, the preflight, the tier files before
/// it) comes earlier in the archive. Never for `transaction = "per-tier"`, whose first
/// tiers commit before the rest of the bundle is read.
pub fn stream_candidate(m: &Manifest) -> Option<String> {
    if m.bundle.transaction == crate::spec::TxMode::PerTier {
        return None;
    }
    let named = m.spec().named_files();
    let mut before: Vec<&str> = m.gate.iter().map(|g| g.file.as_str()).collect();
    if let Some(p) = &m.preflight {
        before.push(&p.file);
    }
    // An online tier's steps commit one by one: nothing of it, nor after it, streams.
    for t in m.tier.iter().take_while(|t| !t.online) {
        for f in &t.files {
            let chunked = m.file(f).is_some_and(|e| e.chunks.is_some());
            let once = named.iter().filter(|(p, _, _)| p == f).count() == 1;
            if chunked && once && before.iter().all(|b| *b < f.as_str()) {
                return Some(f.clone());
            }
            before.push(f);
        }
    }
    None
}

/// The verified bytes of one file, wherever they are kept.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    Memory(&'a [u8]),
    Spilled {
        file: &'a File,
        offset: u64,
        len: u64,
    },
}

impl Payload<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Payload::Memory(b) => b.len() as u64,
            Payload::Spilled { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` from byte `pos` of the file (less only at its end); returns the count.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.len();
        if pos >= len {
            return Ok(0);
        }
        let want = buf.len().min((len - pos) as usize);
        match self {
            Payload::Memory(b) => {
                buf[..want].copy_from_slice(&b[pos as usize..pos as usize + want]);
            }
            Payload::Spilled { file, offset, .. } => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut buf[..want], offset + pos)?;
            }
        }
        Ok(want)
    }

    /// Bytes `from..to` appended to `out`.
    pub fn append_range(&self, from: u64, to: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + (to - from) as usize, 0);
        let n = self.read_at(from, &mut out[start..])?;
        if n as u64 != to - from {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range beyond the end of the verified file",
            ));
        }
        Ok(())
    }
}

/// Reads a [`Payload`] from its start.
pub struct PayloadReader<'a> {
    payload: Payload<'a>,
    pos: u64,
}

impl Read for PayloadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.payload.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

pub fn reader_of(payload: Payload<'_>) -> PayloadReader<'_> {
    PayloadReader { payload, pos: 0 }
}

/// Keeps what streams by: small files, gates and probes in memory, large ones appended
/// to the spill file.
struct KeepSink {
    spill_above: u64,
    /// Gates and probes: one query each, read whole; kept in memory up to the size the
    /// re-check allows them.
    queries: std::collections::BTreeSet<String>,
    files: BTreeMap<String, Kept>,
    spill: Option<File>,
    spilled: u64,
}

impl KeepSink {
    fn new(spill_above: u64) -> KeepSink {
        KeepSink {
            spill_above,
            queries: Default::default(),
            files: BTreeMap::new(),
            spill: None,
            spilled: 0,
        }
    }

    /// Append `data` to the spill file, created on first use; returns its length.
    /// Errors reading `data` pass through as they are (the reader's own verdicts);
    /// errors writing say where the file was being kept.
    fn spill_one(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<u64> {
        let write_err = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!(
                    "keeping {path} ({size} bytes) in a private temporary file under {} (TMPDIR): {e}",
                    std::env::temp_dir().display()
                ),
            )
        };
        if self.spill.is_none() {
            // Nameless (O_TMPFILE where the filesystem has it, else created and
            // unlinked at once), 0600: nobody can open it by path.
            self.spill = Some(tempfile::tempfile().map_err(write_err)?);
        }
        let file = self.spill.as_mut().expect("created above");
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            file.write_all(&buf[..n]).map_err(write_err)?;
            len += n as u64;
        }
        Ok(len)
    }
}

impl Sink for KeepSink {
    fn begin(&mut self, opened: &Opened) -> Result<(), VerifyError> {
        self.queries = opened
            .manifest
            .spec()
            .named_files()
            .into_iter()
            .filter(|(_, role, _)| matches!(role, Some(SqlRole::Gate | SqlRole::Probe)))
            .map(|(file, _, _)| file)
            .collect();
        Ok(())
    }

    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let query = size <= airlock_sql::MAX_QUERY_FILE && self.queries.contains(path.as_str());
        let kept = if size <= self.spill_above || query {
            let mut buf = Vec::with_capacity(size as usize);
            data.read_to_end(&mut buf)?;
            Kept::Memory(buf)
        } else {
            let offset = self.spilled;
            let len = self.spill_one(path, size, data)?;
            self.spilled += len;
            Kept::Spilled { offset, len }
        };
        self.files.insert(path.as_str().to_string(), kept);
        Ok(())
    }

    fn holds_until_verified(&self) -> bool {
        true
    }
}

/// The reader thread's sink: keeps files as [`KeepSink`] does, except the streamed
/// one, which it hands on chunk by chunk once the chunk is authenticated and linted.
struct StreamSink {
    keep: KeepSink,
    tx: SyncSender<Msg>,
    opened: Option<Opened>,
    path: Option<String>,
    verdicts: Verdicts,
    /// The bundle's verdict is remembered: the streamed file is not judged either.
    judgment: Judgment,
}

fn gone() -> io::Error {
    io::Error::other("the run stopped reading the bundle")
}

impl Sink for StreamSink {
    fn begin(&mut self, opened: &Opened) -> Result<(), VerifyError> {
        self.path = stream_candidate(&opened.manifest);
        self.opened = Some(opened.clone());
        // The judging sink asked first: the same answer (`Verdicts` reads it once).
        if self.verdicts.passed(&opened.bundle_id) {
            self.judgment = Judgment::Remembered;
        }
        self.keep.begin(opened)
    }

    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()> {
        if self.path.as_deref() != Some(path.as_str()) {
            return self.keep.file(path, size, data);
        }
        let head = Msg::Head {
            opened: Box::new(self.opened.clone().expect("begin ran")),
            files: std::mem::take(&mut self.keep.files),
            spill: self.keep.spill.take(),
            judgment: self.judgment,
        };
        self.keep.spilled = 0;
        self.tx.send(head).map_err(|_| gone())?;
        // The same checks the re-check makes, as the file streams: a slice is handed on
        // only when every statement that ends in it passed.
        let mut checker = FileJudge::new(path.as_str(), airlock_sql::SqlRole::Script);
        loop {
            let mut buf = vec![0u8; SLICE];
            let mut n = 0;
            while n < buf.len() {
                match data.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            if self.judgment == Judgment::Judged {
                checker.feed(&buf);
                if let Some(p) = checker.first_problem() {
                    return Err(violated_io(p));
                }
            }
            self.tx.send(Msg::Chunk(buf)).map_err(|_| gone())?;
        }
        if self.judgment == Judgment::Judged {
            if let Some(p) = checker.finish() {
                return Err(violated_io(&p));
            }
        }
        self.tx.send(Msg::End).map_err(|_| gone())
    }
}

/// Read and verify the whole bundle at `path` through `judged`; then its SQL verdict
/// (after integrity: a tampered file is reported as tampered, whatever its SQL says).
fn read_judged(
    path: &Path,
    judge: Judge<'_>,
    mut judged: Judged<'_>,
) -> Result<(Opened, Judgment), VerifyError> {
    let opened = archive::read_bundle(path, judge, &Limits::default(), &mut judged)?;
    Ok((opened, judged.verdict()?))
}

/// The reader thread of [`VerifiedBundle::load_streaming`]: the whole bundle read and
/// verified, the streamed file handed on through `tx` as it goes.
fn read_streaming(
    path: &Path,
    store: &TrustStore,
    at: DateTime<Utc>,
    spill_above: u64,
    tx: SyncSender<Msg>,
    verdicts: &Verdicts,
) -> Result<ReadOutcome, VerifyError> {
    let mut sink = StreamSink {
        keep: KeepSink::new(spill_above),
        tx,
        opened: None,
        path: None,
        verdicts: verdicts.clone(),
        judgment: Judgment::Judged,
    };
    // Every file but the streamed one (judged as it streams) is judged on a thread of
    // its own as it is read.
    let judged = Judged::new(&mut sink)
        .leaving_out(stream_candidate)
        .remembering(verdicts);
    let (opened, judgment) = read_judged(path, Judge::Trust { store, at }, judged)?;
    Ok(ReadOutcome {
        opened,
        files: sink.keep.files,
        spill: sink.keep.spill,
        judgment,
    })
}

impl VerifiedBundle {
    /// Read and verify the bundle at `path`; its SQL is judged unless `verdicts`
    /// remembers that this build passed it, and remembered once it passed.
    pub fn load(
        path: &Path,
        store: &TrustStore,
        at: DateTime<Utc>,
        verdicts: &Verdicts,
    ) -> Result<VerifiedBundle, VerifyError> {
        Self::load_with(path, store, at, ExecLimits::default(), verdicts)
    }

    /// [`load`](Self::load) with other execution limits (tests).
    pub fn load_with(
        path: &Path,
        store: &TrustStore,
        at: DateTime<Utc>,
        limits: ExecLimits,
        verdicts: &Verdicts,
    ) -> Result<VerifiedBundle, VerifyError> {
        Self::load_judge(path, Judge::Trust { store, at }, limits, verdicts)
    }

    /// [`load`](Self::load) judged as `judging` says: at its time, with the evidence it
    /// holds that the bundle existed (a ledger row, a signed receipt), so a signature
    /// by a key revoked or retired since counts as `audit` counts it. For the
    /// auditor's commands only: the operator's commands judge now, with no evidence.
    pub fn load_judging(
        path: &Path,
        store: &TrustStore,
        judging: crate::trust::Judging,
        verdicts: &Verdicts,
    ) -> Result<VerifiedBundle, VerifyError> {
        Self::load_judge(
            path,
            Judge::Judged { store, judging },
            ExecLimits::default(),
            verdicts,
        )
    }

    fn load_judge(
        path: &Path,
        judge: Judge<'_>,
        limits: ExecLimits,
        verdicts: &Verdicts,
    ) -> Result<VerifiedBundle, VerifyError> {
        let mut sink = KeepSink::new(limits.spill_above);
        // The SQL rules judged on their own thread while the reader inflates and
        // hashes what follows, as `verify` judges them.
        let judged = Judged::new(&mut sink).remembering(verdicts);
        let (opened, judgment) = read_judged(path, judge, judged)?;
        let vb = VerifiedBundle {
            opened,
            files: sink.files,
            spill: sink.spill,
            limits,
            stream: Mutex::new(Stream::None),
            tail: OnceLock::new(),
            verdicts: verdicts.clone(),
            judgment,
        };
        vb.recheck_sql(Recheck::Spilled)?;
        vb.remember();
        Ok(vb)
    }

    /// Load for `apply`: as [`load`](Self::load), except that the tier file
    /// [`stream_candidate`] names is not kept but handed on as it is read, one
    /// authenticated chunk at a time ([`take_stream`](Self::take_stream)). The bundle
    /// comes back once everything before that file verified (trust first, then each
    /// file); the rest is verified as the run goes, and [`complete`](Self::complete)
    /// says whether all of it did: the run must not commit before it says so.
    pub fn load_streaming(
        path: &Path,
        store: &TrustStore,
        at: DateTime<Utc>,
        limits: ExecLimits,
        verdicts: &Verdicts,
    ) -> Result<VerifiedBundle, VerifyError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let path: PathBuf = path.to_path_buf();
        let store = store.clone();
        let spill_above = limits.spill_above;
        let reader_verdicts = verdicts.clone();
        let handle = std::thread::Builder::new()
            .name("airlock-reader".into())
            .spawn(move || read_streaming(&path, &store, at, spill_above, tx, &reader_verdicts))
            .map_err(|e| VerifyError::Write(format!("cannot start the reader: {e}")))?;
        let joined = |handle: std::thread::JoinHandle<Result<ReadOutcome, VerifyError>>| {
            handle
                .join()
                .unwrap_or_else(|_| Err(VerifyError::Write("the reader thread panicked".into())))
        };
        match rx.recv() {
            Ok(Msg::Head {
                opened,
                files,
                spill,
                judgment,
            }) => {
                let path = stream_candidate(&opened.manifest).expect("the reader streams it");
                let vb = VerifiedBundle {
                    opened: *opened,
                    files,
                    spill,
                    limits,
                    stream: Mutex::new(Stream::Running {
                        path,
                        rx,
                        handle,
                        taken: false,
                    }),
                    tail: OnceLock::new(),
                    verdicts: verdicts.clone(),
                    judgment,
                };
                // The files before the streamed one run before the reader's verdict
                // on them: judged here, all of them (unless remembered).
                vb.recheck_sql(match judgment {
                    Judgment::Judged => Recheck::All,
                    Judgment::Remembered => Recheck::Spilled,
                })?;
                Ok(vb)
            }
            Ok(_) => Err(VerifyError::Write(
                "internal: the reader sent no head".into(),
            )),
            // The reader finished without streaming anything: a plain load.
            Err(_) => {
                let out = joined(handle)?;
                let vb = VerifiedBundle {
                    opened: out.opened,
                    files: out.files,
                    spill: out.spill,
                    limits,
                    stream: Mutex::new(Stream::None),
                    tail: OnceLock::new(),
                    verdicts: verdicts.clone(),
                    judgment: out.judgment,
                };
                vb.recheck_sql(Recheck::Spilled)?;
                vb.remember();
                Ok(vb)
            }
        }
    }

    /// The file being streamed, if this load streams one and it was not yet taken.
    pub fn streamed_file(&self) -> Option<String> {
        match &*self.stream.lock().expect("stream state") {
            Stream::Running { path, taken, .. } if !taken => Some(path.clone()),
            _ => None,
        }
    }

    /// The next authenticated chunk of the streamed file `path` (`None` at its end);
    /// the first call claims the stream (a second claim is refused).
    pub fn next_chunk(&self, path: &str) -> Result<Option<Vec<u8>>, VerifyError> {
        let mut state = self.stream.lock().expect("stream state");
        let Stream::Running {
            path: streamed,
            rx,
            taken,
            ..
        } = &mut *state
        else {
            return Err(VerifyError::Write(format!(
                "internal: {path} is not being streamed"
            )));
        };
        if streamed != path {
            return Err(VerifyError::Write(format!(
                "internal: {path} is not being streamed"
            )));
        }
        *taken = true;
        match rx.recv() {
            Ok(Msg::Chunk(b)) => Ok(Some(b)),
            Ok(Msg::End) => Ok(None),
            Ok(Msg::Head { .. }) => Err(VerifyError::Write("internal: a second head".into())),
            // The reader stopped: it says why.
            Err(_) => {
                drop(state);
                self.complete()?;
                Err(VerifyError::Write(
                    "internal: the reader ended inside the streamed file".into(),
                ))
            }
        }
    }

    /// Finish reading the bundle (streaming loads; nothing to do otherwise): the rest
    /// of the archive read and verified as strictly as `verify` (every hash, size,
    /// limit, trailing data), and the SQL of the files after the streamed one
    /// re-checked. Chunks of the streamed file nobody took are read and dropped.
    pub fn complete(&self) -> Result<(), VerifyError> {
        let mut state = self.stream.lock().expect("stream state");
        match std::mem::replace(&mut *state, Stream::Done) {
            Stream::None => {
                *state = Stream::None;
                Ok(())
            }
            Stream::Done => Ok(()),
            Stream::Failed(why) => {
                *state = Stream::Failed(why.clone());
                Err(VerifyError::Earlier(why))
            }
            Stream::Running { rx, handle, .. } => {
                while rx.recv().is_ok() {}
                let result = handle.join().unwrap_or_else(|_| {
                    Err(VerifyError::Write("the reader thread panicked".into()))
                });
                let out = match result {
                    Ok(out) => out,
                    Err(e) => {
                        *state = Stream::Failed(e.to_string());
                        return Err(e);
                    }
                };
                let _ = self.tail.set(Tail {
                    files: out.files,
                    spill: out.spill,
                });
                drop(state);
                if let Err(e) = self.recheck_sql(Recheck::Spilled) {
                    *self.stream.lock().expect("stream state") = Stream::Failed(e.to_string());
                    return Err(e);
                }
                self.remember();
                Ok(())
            }
        }
    }

    /// Judge the SQL rules ([`crate::sql_rules`], as `verify` does) on the exact bytes
    /// that will execute (scripts stream through the checker in bounded memory): those
    /// read back from the spill file always, those held in memory when `which` says
    /// so (otherwise the reader judged them as it kept them: [`Judged`]).
    fn recheck_sql(&self, which: Recheck) -> Result<(), VerifyError> {
        for (file, role) in Roles::of(self.manifest()).iter() {
            // Streaming: files not read yet are checked when they are (the streamed
            // one as it streams, the rest when the reader finishes).
            let Some(payload) = self.held(file) else {
                continue;
            };
            if which == Recheck::Spilled && matches!(payload, Payload::Memory(_)) {
                continue;
            }
            sql_rules::judge(file, role, &mut reader_of(payload))?;
        }
        Ok(())
    }

    pub fn manifest(&self) -> &Manifest {
        &self.opened.manifest
    }

    /// How the SQL of this bundle came to pass.
    pub fn judgment(&self) -> Judgment {
        self.judgment
    }

    /// The whole bundle verified and its SQL passed: remembered, unless it was.
    fn remember(&self) {
        if self.judgment == Judgment::Judged {
            self.verdicts.remember(&self.opened.bundle_id);
        }
    }

    pub fn id(&self) -> &str {
        &self.opened.bundle_id
    }

    pub fn limits(&self) -> &ExecLimits {
        &self.limits
    }

    /// The verified bytes of a payload file. Streaming, a file after the streamed
    /// one is only handed out once the whole bundle verified (this waits for it).
    pub fn payload(&self, path: &str) -> Result<Payload<'_>, VerifyError> {
        if let Some(p) = self.held(path) {
            return Ok(p);
        }
        self.complete()?;
        self.held(path)
            .ok_or_else(|| VerifyError::Missing { path: path.into() })
    }

    /// A file's bytes if they are in hand (head, or tail once complete).
    fn held(&self, path: &str) -> Option<Payload<'_>> {
        let (kept, spill) = match self.files.get(path) {
            Some(k) => (k, &self.spill),
            None => {
                let t = self.tail.get()?;
                (t.files.get(path)?, &t.spill)
            }
        };
        Some(match kept {
            Kept::Memory(b) => Payload::Memory(b),
            Kept::Spilled { offset, len } => Payload::Spilled {
                file: spill.as_ref().expect("a spilled file has a spill file"),
                offset: *offset,
                len: *len,
            },
        })
    }

    /// Bytes of payload held in memory (the rest is in the spill file).
    pub fn bytes_in_memory(&self) -> u64 {
        self.files
            .values()
            .chain(self.tail.get().into_iter().flat_map(|t| t.files.values()))
            .map(|k| match k {
                Kept::Memory(b) => b.len() as u64,
                Kept::Spilled { .. } => 0,
            })
            .sum()
    }

    /// A whole file read into memory, for files shown to a person (runbooks).
    pub fn read_all(&self, path: &str) -> Result<Vec<u8>, VerifyError> {
        let payload = self.payload(path)?;
        let mut out = Vec::new();
        reader_of(payload)
            .read_to_end(&mut out)
            .map_err(|e| VerifyError::Write(format!("reading {path} back: {e}")))?;
        Ok(out)
    }

    /// A gate or probe as text: one query, so always kept in memory (a query file
    /// larger than the limit was refused by the re-check).
    pub fn sql(&self, path: &str) -> Result<&str, VerifyError> {
        let bytes = match self.payload(path)? {
            Payload::Memory(b) => b,
            Payload::Spilled { .. } => {
                return Err(VerifyError::Manifest(ManifestError::Invalid(format!(
                    "{path} is too large to be read as one query"
                ))))
            }
        };
        std::str::from_utf8(bytes).map_err(|_| {
            VerifyError::Manifest(ManifestError::Invalid(format!("{path} is not UTF-8")))
        })
    }

    /// Every statement of the tier and rollback files that reaches beyond the target
    /// database (roles, database settings, tablespaces, subscriptions…), in file order.
    pub fn reaches_beyond(&self) -> Result<Vec<airlock_sql::Reach>, VerifyError> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (file, role, _) in self.manifest().spec().named_files() {
            if !matches!(role, Some(SqlRole::Script | SqlRole::Online))
                || !seen.insert(file.clone())
            {
                continue;
            }
            let found = airlock_sql::reaches_in(&file, &mut reader_of(self.payload(&file)?))
                .map_err(|e| VerifyError::Write(format!("reading {file} back: {e}")))?;
            out.extend(found);
        }
        Ok(out)
    }

    pub fn role_of(&self, path: &str) -> Option<SqlRole> {
        self.manifest()
            .spec()
            .named_files()
            .into_iter()
            .find(|(f, _, _)| f == path)
            .and_then(|(_, r, _)| r)
    }
}
