//! The SQL rules a bundle's files must pass before anything acts on them, judged once
//! and the same way by `verify` and by every command that loads a bundle to run it
//! (`gate`, `plan`, `apply`, `rehearse`, `rollback`, through `verified`): each
//! file the spec names with a role (gates, probes, tier and rollback files), through
//! `airlock_sql`, which is also what `lint` and `pack` run on a source directory.
//!
//! Invariant: a bundle `verify` accepts is one the same airlock will run. A verdict
//! about SQL is a [`VerifyError::SqlRule`], never reported as tampering, and it is only
//! given for bytes whose integrity was proven first (a tampered file is reported as
//! tampered, whatever its SQL says).

use crate::archive::piece::Piece;
use crate::archive::{Opened, Pieces, Sink, VerifyError, SQL_RULE};
use crate::bundle_path::BundlePath;
use crate::manifest::Manifest;
use crate::verdicts::Verdicts;
use airlock_sql::{ScriptChecker, SqlProblem, SqlRole, MAX_QUERY_FILE};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

/// The role of every SQL file a bundle's spec names.
#[derive(Debug, Default)]
pub struct Roles(BTreeMap<String, SqlRole>);

impl Roles {
    pub fn of(manifest: &Manifest) -> Roles {
        Roles(
            manifest
                .spec()
                .named_files()
                .into_iter()
                .filter_map(|(file, role, _)| Some((file, role?)))
                .collect(),
        )
    }

    pub fn get(&self, path: &str) -> Option<SqlRole> {
        self.0.get(path).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, SqlRole)> {
        self.0.iter().map(|(f, r)| (f.as_str(), *r))
    }

    /// These roles but `path`'s (a file judged elsewhere).
    fn without(mut self, path: Option<String>) -> Roles {
        if let Some(p) = path {
            self.0.remove(&p);
        }
        self
    }
}

/// One file's judgment, fed its bytes as they are read (scripts in bounded memory;
/// a gate or probe is one query, at most [`MAX_QUERY_FILE`] bytes, judged whole).
pub enum FileJudge<'f> {
    Script(Box<ScriptChecker<'f>>),
    Query {
        file: &'f str,
        role: SqlRole,
        bytes: Vec<u8>,
    },
}

impl<'f> FileJudge<'f> {
    pub fn new(file: &'f str, role: SqlRole) -> Self {
        match role {
            SqlRole::Script | SqlRole::Online => FileJudge::Script(Box::new(
                ScriptChecker::new(file).online(role == SqlRole::Online),
            )),
            SqlRole::Gate | SqlRole::Probe => FileJudge::Query {
                file,
                role,
                bytes: Vec::new(),
            },
        }
    }

    /// The next bytes of the file (any split).
    pub fn feed(&mut self, data: &[u8]) {
        match self {
            FileJudge::Script(c) => c.feed(data),
            FileJudge::Query { bytes, .. } => {
                let room = (MAX_QUERY_FILE as usize + 1).saturating_sub(bytes.len());
                bytes.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    }

    /// A problem already certain before the end of the file (a script's statements
    /// are judged as they end).
    pub fn first_problem(&self) -> Option<&SqlProblem> {
        match self {
            FileJudge::Script(c) => c.first_problem(),
            FileJudge::Query { .. } => None,
        }
    }

    /// The verdict at the end of the file: its first problem, if any.
    pub fn finish(self) -> Option<SqlProblem> {
        match self {
            FileJudge::Script(c) => c.finish().into_iter().next(),
            FileJudge::Query { file, role, bytes } => {
                airlock_sql::check_reader(file, &mut bytes.as_slice(), role)
                    .ok()?
                    .into_iter()
                    .next()
            }
        }
    }
}

/// The verdict on one SQL problem.
pub fn violated(p: &SqlProblem) -> VerifyError {
    VerifyError::SqlRule(p.to_string())
}

/// The same verdict as an I/O error of a sink, which the archive reader turns back
/// into [`VerifyError::SqlRule`].
pub fn violated_io(p: &SqlProblem) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{SQL_RULE}{p}"))
}

/// Judge a whole file from `r`.
pub fn judge(file: &str, role: SqlRole, r: &mut dyn Read) -> Result<(), VerifyError> {
    let mut judge = FileJudge::new(file, role);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| VerifyError::Write(format!("reading {file} back: {e}")))?;
        if n == 0 || judge.first_problem().is_some() {
            break;
        }
        judge.feed(&buf[..n]);
    }
    match judge.finish() {
        Some(p) => Err(violated(&p)),
        None => Ok(()),
    }
}

/// A sink that judges every file with a role as `inner` reads it (what it leaves
/// unread is read and judged too). The verdict is kept for [`Judged::verdict`], asked
/// once the whole bundle verified, so that integrity is always judged first.
///
/// The judging runs on a thread of its own ([`JudgeThread`]), a file after another in
/// bundle order, on the very bytes the reader handed on (already authenticated: a
/// file with chunk hashes reaches a sink one verified chunk at a time), while the
/// reader inflates and hashes what follows. The verdict is the one judging inline
/// gives: the first problem of the first file that has one.
pub struct Judged<'a> {
    inner: &'a mut dyn Sink,
    roles: Roles,
    judge: Option<JudgeThread>,
    /// The file of the manifest judged elsewhere, if any (a streamed tier file).
    leave_out: fn(&Manifest) -> Option<String>,
    verdicts: Verdicts,
    /// The bundle's verdict was remembered ([`Verdicts::passed`]): nothing is judged.
    remembered: bool,
}

/// How a bundle's SQL came to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Judgment {
    /// Judged now, every file.
    Judged,
    /// This build judged this bundle on this host before, and it passed
    /// ([`crate::verdicts`]).
    Remembered,
}

impl<'a> Judged<'a> {
    pub fn new(inner: &'a mut dyn Sink) -> Self {
        Judged {
            inner,
            roles: Roles::default(),
            judge: None,
            leave_out: |_| None,
            verdicts: Verdicts::none(),
            remembered: false,
        }
    }

    /// Judges nothing of a bundle whose verdict `verdicts` remembers.
    pub fn remembering(mut self, verdicts: &Verdicts) -> Self {
        self.verdicts = verdicts.clone();
        self
    }

    /// Judges every file with a role but the one `pick` names in the manifest (judged
    /// by the caller as it reads it).
    pub fn leaving_out(mut self, pick: fn(&Manifest) -> Option<String>) -> Self {
        self.leave_out = pick;
        self
    }

    /// The SQL verdict on every file read. The caller remembers a pass once
    /// everything else about the bundle verified too.
    pub fn verdict(mut self) -> Result<Judgment, VerifyError> {
        match self.judge.take().and_then(JudgeThread::finish) {
            Some(p) => Err(violated(&p)),
            None if self.remembered => Ok(Judgment::Remembered),
            None => Ok(Judgment::Judged),
        }
    }
}

/// Bytes handed to the judging thread at a time.
const PIECE: usize = 256 << 10;

/// Batches on their way to the judging thread: 48, about 12 MiB of a big file's pieces
/// (a batch of a big file is one piece; of small files, under two pieces of bytes).
/// The reader hands a chunk it authenticated on and goes on to hash the next while the
/// judging catches up. On two cores the three threads (inflate, hash, judge) share the
/// cores, and the queue absorbs the scheduler's turns: the shallower it is, the more
/// often a core waits, and the deeper, the more memory a first verify holds. Measured
/// on 256 MiB (docs/performance.md, "Memory on the trust path"), quiet, paired against
/// 72 batches with a whole chunk inflated ahead (peak 38–40 MiB): 48 with a quarter
/// of a chunk ahead peaked at 27.7 MiB (max 30.4) at 1.05x the time; 24 with half a
/// chunk ahead at 26.6 MiB, 1.11x.
const QUEUED: usize = 48;

/// Messages in a batch at most (a bundle of many empty files sends names only).
const BATCH: usize = 1024;

/// A file's last piece smaller than this is sent as a copy of its size, and the piece
/// filled again: a batch of small files holds their bytes, not a piece each.
const SMALL: usize = PIECE / 4;

enum ToJudge {
    File(String, SqlRole),
    Bytes(Piece),
    End,
}

/// The judging thread's side of the channel: the messages of one batch, then the next
/// batch's.
struct Inbox {
    rx: Receiver<Vec<ToJudge>>,
    batch: std::vec::IntoIter<ToJudge>,
}

impl Inbox {
    fn recv(&mut self) -> Option<ToJudge> {
        loop {
            if let Some(msg) = self.batch.next() {
                return Some(msg);
            }
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// The thread that judges files, in the order they are sent; it stops judging at the
/// first file with a problem, and never outlives its [`Judged`]. Messages go in batches
/// of about a piece of bytes (a bundle of many small files wakes the thread once a
/// batch, not three times a file).
struct JudgeThread {
    tx: Option<SyncSender<Vec<ToJudge>>>,
    /// Messages not sent yet, and how many bytes they carry.
    batch: Vec<ToJudge>,
    batched: usize,
    /// A piece kept to be filled again (a small file's was copied).
    spare: Option<Vec<u8>>,
    /// Spent pieces, back from the thread to be filled again.
    spent: Receiver<Vec<u8>>,
    /// Set once a file had a problem: later files need no judging.
    failed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Option<SqlProblem>>>,
}

impl JudgeThread {
    fn start() -> JudgeThread {
        let (tx, rx) = mpsc::sync_channel::<Vec<ToJudge>>(QUEUED);
        let (give_back, spent) = mpsc::sync_channel::<Vec<u8>>(QUEUED + 2);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let thread = std::thread::spawn(move || {
            let mut rx = Inbox {
                rx,
                batch: Vec::new().into_iter(),
            };
            let mut first = None;
            let mut next = rx.recv();
            while let Some(msg) = next.take() {
                let ToJudge::File(file, role) = msg else {
                    next = rx.recv();
                    continue;
                };
                let mut judge = FileJudge::new(&file, role);
                loop {
                    match rx.recv() {
                        Some(ToJudge::Bytes(piece)) => {
                            if first.is_none() && judge.first_problem().is_none() {
                                judge.feed(piece.bytes());
                            }
                            // A piece of the inflated stream goes back to be inflated
                            // into again; one of this sink's own is kept here.
                            if let Some(bytes) = piece.into_spare() {
                                if bytes.capacity() >= PIECE {
                                    let _ = give_back.try_send(bytes);
                                }
                            }
                        }
                        // A file cut short (its reading failed, and so the bundle).
                        Some(another @ ToJudge::File(..)) => {
                            next = Some(another);
                            break;
                        }
                        Some(ToJudge::End) | None => break,
                    }
                }
                if first.is_none() {
                    first = judge.finish();
                    if first.is_some() {
                        flag.store(true, Ordering::Relaxed);
                    }
                }
                if next.is_none() {
                    next = rx.recv();
                }
            }
            first
        });
        JudgeThread {
            tx: Some(tx),
            batch: Vec::new(),
            batched: 0,
            spare: None,
            spent,
            failed,
            thread: Some(thread),
        }
    }

    /// Queue `msg`; the batch goes once it carries a piece of bytes or [`BATCH`]
    /// messages.
    fn send(&mut self, msg: ToJudge) -> io::Result<()> {
        if let ToJudge::Bytes(b) = &msg {
            self.batched += b.len();
        }
        self.batch.push(msg);
        if self.batched >= PIECE || self.batch.len() >= BATCH {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batched = 0;
        let batch = std::mem::take(&mut self.batch);
        self.tx
            .as_ref()
            .expect("running")
            .send(batch)
            .map_err(|_| io::Error::other("internal: the thread judging SQL stopped"))
    }

    /// A piece to fill from its start: its length is how much of it is initialized
    /// (a spent piece comes back whole, so filling it again zeroes nothing).
    fn piece(&mut self) -> Vec<u8> {
        self.spare
            .take()
            .or_else(|| self.spent.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(PIECE))
    }

    /// The first problem of the files sent. A judging that panicked panics here, as
    /// it did when judging was inline: never a verdict it did not reach.
    fn finish(mut self) -> Option<SqlProblem> {
        // A thread that stopped early has its verdict: the join below gives it.
        let _ = self.send_batch();
        self.tx.take();
        match self.thread.take()?.join() {
            Ok(first) => first,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for JudgeThread {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Hands `data` on to a reader and, a piece at a time, to the judging thread.
struct Tee<'r, 'j> {
    data: &'r mut dyn Read,
    judge: &'j mut JudgeThread,
    /// The piece being filled: its first `filled` bytes are the file's; its length is
    /// what of it is initialized, never shortened while it is filled.
    piece: Vec<u8>,
    filled: usize,
    /// Bytes of the file not yet read (its size says how many): a small file's last
    /// read needs no whole piece zeroed for it.
    left: u64,
}

impl Tee<'_, '_> {
    fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.left = self.left.saturating_sub(bytes.len() as u64);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rest.len().min(PIECE - self.filled);
            self.room(n);
            self.piece[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
            if self.filled == PIECE {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Room for `n` more bytes after those filled (zeroed only where the piece never
    /// held any).
    fn room(&mut self, n: usize) {
        if self.piece.len() < self.filled + n {
            self.piece.resize(self.filled + n, 0);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let full = if self.filled < SMALL {
            // A file's short end (all of a small file): its bytes alone, the piece kept.
            self.piece[..self.filled].to_vec()
        } else {
            let mut full = std::mem::replace(&mut self.piece, self.judge.piece());
            full.truncate(self.filled);
            full
        };
        self.filled = 0;
        self.judge.send(ToJudge::Bytes(Piece::owned(full)))
    }

    /// Read what the reader left unread straight into the pieces, then the end.
    fn finish(mut self) -> io::Result<()> {
        loop {
            let at = self.filled;
            // Room for what is left and one byte more (to see the end), at most a piece.
            let left = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
            let want = left.min(PIECE - at);
            self.room(want);
            let n = loop {
                match self.data.read(&mut self.piece[at..at + want]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            }?;
            self.filled += n;
            self.left = self.left.saturating_sub(n as u64);
            if n == 0 {
                break;
            }
            if self.filled == PIECE {
                self.flush()?;
            }
        }
        self.flush()?;
        self.judge.spare = Some(std::mem::take(&mut self.piece));
        self.judge.send(ToJudge::End)
    }
}

impl Read for Tee<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(out)?;
        self.push(&out[..n])?;
        Ok(n)
    }
}

impl Judged<'_> {
    /// The role `path` is judged in, unless a file before it had a problem (the
    /// verdict is then known).
    fn role(&self, path: &BundlePath) -> Option<SqlRole> {
        let failed = |j: &JudgeThread| j.failed.load(Ordering::Relaxed);
        self.roles
            .get(path.as_str())
            .filter(|_| !self.judge.as_ref().is_some_and(failed))
    }
}

/// A file's pieces straight to the judging thread (filled by the reader, each of an
/// authenticated chunk).
struct JudgePieces<'j> {
    judge: &'j mut JudgeThread,
}

impl Pieces for JudgePieces<'_> {
    fn take(&mut self, piece: Piece) -> io::Result<()> {
        self.judge.send(ToJudge::Bytes(piece))
    }
}

impl Sink for Judged<'_> {
    fn begin(&mut self, opened: &Opened) -> Result<(), VerifyError> {
        self.remembered = self.verdicts.passed(&opened.bundle_id);
        self.roles = if self.remembered {
            Roles::default()
        } else {
            Roles::of(&opened.manifest).without((self.leave_out)(&opened.manifest))
        };
        self.inner.begin(opened)
    }

    fn holds_until_verified(&self) -> bool {
        // The judging thread reads bytes as they come.
        self.remembered && self.inner.holds_until_verified()
    }

    fn chunks_proven(&self) -> bool {
        // A verdict is remembered only once the whole bundle verified, every chunk
        // hash included: the same files' hashes now prove the same bytes, when no one
        // reads them early.
        self.holds_until_verified()
    }

    fn keeps_bytes(&self) -> bool {
        self.inner.keeps_bytes()
    }

    fn pieces(
        &mut self,
        path: &BundlePath,
        _size: u64,
        fill: &mut dyn FnMut(&mut dyn Pieces) -> io::Result<()>,
    ) -> io::Result<bool> {
        // The judging thread takes the pieces themselves when nothing else needs the
        // bytes (verify's own reading).
        if self.inner.keeps_bytes() {
            return Ok(false);
        }
        let Some(role) = self.role(path) else {
            return Ok(false);
        };
        let judge = self.judge.get_or_insert_with(JudgeThread::start);
        judge.send(ToJudge::File(path.as_str().to_string(), role))?;
        let mut taker = JudgePieces { judge };
        let read = fill(&mut taker);
        let ended = taker.judge.send(ToJudge::End);
        read?;
        ended?;
        Ok(true)
    }

    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let Some(role) = self.role(path) else {
            return self.inner.file(path, size, data);
        };
        let judge = self.judge.get_or_insert_with(JudgeThread::start);
        judge.send(ToJudge::File(path.as_str().to_string(), role))?;
        let piece = judge.piece();
        let mut tee = Tee {
            data,
            judge,
            piece,
            filled: 0,
            left: size,
        };
        self.inner.file(path, size, &mut tee)?;
        tee.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Discard;

    fn path(p: &str) -> BundlePath {
        BundlePath::new(p).unwrap()
    }

    /// A sink that reads what it is handed in small pieces, or fails after `fail_at`
    /// bytes of the file named `fail_in`.
    struct Nibbler {
        fail_in: &'static str,
        fail_at: usize,
    }

    impl Sink for Nibbler {
        fn file(&mut self, p: &BundlePath, _: u64, data: &mut dyn Read) -> io::Result<()> {
            let mut buf = [0u8; 7];
            let mut read = 0;
            loop {
                if p.as_str() == self.fail_in && read >= self.fail_at {
                    return Err(io::Error::other("disk full"));
                }
                match data.read(&mut buf)? {
                    0 => return Ok(()),
                    n => read += n,
                }
            }
        }
    }

    fn judged(sink: &mut dyn Sink, files: &[(&str, Vec<u8>)]) -> Result<(), VerifyError> {
        let mut judged = Judged::new(sink);
        judged.roles = Roles(
            files
                .iter()
                .filter(|(f, _)| f.ends_with(".sql"))
                .map(|(f, _)| (f.to_string(), SqlRole::Script))
                .collect(),
        );
        for (f, bytes) in files {
            judged
                .file(&path(f), bytes.len() as u64, &mut &bytes[..])
                .map_err(|e| VerifyError::Write(e.to_string()))?;
        }
        judged.verdict().map(drop)
    }

    /// On its own thread, the judging gives the verdict judging inline gives: the first
    /// problem of the first file with one, whatever the sink reads of each file and
    /// however large the files are (many pieces).
    #[test]
    fn the_first_problem_of_the_first_bad_file_whatever_the_sink_reads() {
        let big: Vec<u8> = "INSERT INTO t VALUES (1, 'a');\n"
            .repeat(40_000)
            .into_bytes();
        let mut bad = big.clone();
        bad.extend_from_slice(b"VACUUM t;\n");
        let worse = b"COMMIT;\nVACUUM u;\n".to_vec();
        let files = [
            ("sql/a.sql", big.clone()),
            ("notes.txt", b"VACUUM;".to_vec()),
            ("sql/b.sql", bad.clone()),
            ("sql/c.sql", worse.clone()),
        ];
        let expected = |f: &str, bytes: &[u8]| {
            judge(f, SqlRole::Script, &mut &bytes[..])
                .unwrap_err()
                .to_string()
        };
        let want = expected("sql/b.sql", &bad);
        assert!(want.contains("sql/b.sql"), "{want}");
        for sink in [
            &mut Discard as &mut dyn Sink,
            &mut Nibbler {
                fail_in: "",
                fail_at: 0,
            },
        ] {
            assert_eq!(judged(sink, &files).unwrap_err().to_string(), want);
        }
        let good = [("sql/a.sql", big.clone()), ("sql/d.sql", big)];
        assert!(judged(&mut Discard, &good).is_ok());
        // Only later files with problems: the first of them.
        let later = [("sql/c.sql", worse.clone()), ("sql/b.sql", bad)];
        assert_eq!(
            judged(&mut Discard, &later).unwrap_err().to_string(),
            expected("sql/c.sql", &worse)
        );
    }

    /// Many small files go to the judging thread in batches, and a statement split
    /// across a piece's end still reads as one: the verdict is still the first problem
    /// of the first bad file, whichever batch it is in, and a bundle of small good
    /// files passes.
    #[test]
    fn small_files_in_batches_keep_the_first_problem() {
        let names: Vec<String> = (0..3000).map(|i| format!("sql/{i:04}.sql")).collect();
        let body = |i: usize| -> Vec<u8> {
            format!("CREATE TABLE t{i} (id int);\nCREATE INDEX ON t{i} (id);\n").into_bytes()
        };
        let mut files: Vec<(&str, Vec<u8>)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), body(i)))
            .collect();
        assert!(judged(&mut Discard, &files).is_ok());
        // A file as large as a small file may be, next to one that fills a piece.
        files[10].1 = "INSERT INTO t VALUES (1);\n"
            .repeat(PIECE / 20)
            .into_bytes();
        files[11].1 = "INSERT INTO t VALUES (1);\n"
            .repeat(SMALL / 26 - 1)
            .into_bytes();
        assert!(judged(&mut Discard, &files).is_ok());
        files[2500].1.extend_from_slice(b"VACUUM t;\n");
        files[2900].1.extend_from_slice(b"COMMIT;\n");
        let want = judge(files[2500].0, SqlRole::Script, &mut &files[2500].1[..])
            .unwrap_err()
            .to_string();
        assert!(want.contains("sql/2500.sql"), "{want}");
        assert_eq!(judged(&mut Discard, &files).unwrap_err().to_string(), want);
    }

    /// Pieces are filled again without being cleared: the judging thread gets exactly
    /// each file's bytes, never what a piece held before. A file of long constants
    /// fills many pieces (spent ones come back), then short and mid-sized files are
    /// filled into them; a byte left over from the constants would open a string that
    /// never closes (a problem), so the bundle passes only if none is judged.
    #[test]
    fn a_piece_filled_again_holds_only_its_files_bytes() {
        let quoted = format!("SELECT '{}';\n", "x".repeat(4000));
        let big = quoted.repeat(PIECE * 3 / quoted.len()).into_bytes();
        let mid = "SELECT 1;\n".repeat(SMALL / 10 + 7).into_bytes();
        let files = [
            ("sql/a.sql", big.clone()),
            ("sql/b.sql", b"SELECT 2;\n".to_vec()),
            ("sql/c.sql", big.clone()),
            ("sql/d.sql", mid.clone()),
            ("sql/e.sql", big),
            ("sql/f.sql", mid),
            ("sql/g.sql", b"SELECT 3".to_vec()),
        ];
        for sink in [
            &mut Discard as &mut dyn Sink,
            &mut Nibbler {
                fail_in: "",
                fail_at: 0,
            },
        ] {
            assert!(judged(sink, &files).is_ok());
        }
        // The same files with a constant left open: judged as the problem it is.
        let mut open = files.clone();
        open[6].1 = b"SELECT 'x".to_vec();
        let err = judged(&mut Discard, &open).unwrap_err().to_string();
        assert!(err.contains("sql/g.sql"), "{err}");
    }

    /// A sink failing in the middle of a file ends the reading; the judging thread
    /// stops with it (nothing hangs, nothing outlives the reading).
    #[test]
    fn a_failing_sink_stops_the_judging_thread() {
        let big: Vec<u8> = "INSERT INTO t VALUES (1);\n".repeat(50_000).into_bytes();
        let files = [("sql/a.sql", big.clone()), ("sql/b.sql", big)];
        let mut sink = Nibbler {
            fail_in: "sql/b.sql",
            fail_at: 300_000,
        };
        let err = judged(&mut sink, &files).unwrap_err().to_string();
        assert!(err.contains("disk full"), "{err}");
    }
}
