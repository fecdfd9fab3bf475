//! Running one bundle file (a tier or rollback file) on the target, from its verified
//! bytes.
//!
//! A small file without COPY data is one simple-query message, the prelude first, so
//! the server parses all of it before running any of it and the file costs one round
//! trip. A large file streams through the lint lexer's [`Splitter`]: consecutive
//! statements are coalesced into messages of about [`ExecLimits::message_bytes`], cut
//! at statement boundaries; each `COPY … FROM stdin` runs through the COPY protocol,
//! its data lines sent in chunks straight from the verified bytes; `\restrict` /
//! `\unrestrict` lines (pg_dump's) are not sent (airlock runs no meta-commands).
//!
//! All-or-nothing holds per message ([`TxGuard`]): the server decodes and lexes a whole
//! message before it runs any of it, so every message ends with a trailer that puts the
//! settings the lint lexer assumed ([`session::LEXING_PINS`]: UTF-8,
//! `standard_conforming_strings = on`…) back for the next one, at session level (a
//! `SET LOCAL` would give way at COMMIT to a session value bundle SQL set), whatever
//! the message ran (a `DO` block, a trigger fired by COPY rows); after each COPY the
//! trailer goes alone; [`TxGuard::begin`] sets them too, after whatever a COMMIT before
//! it fired. And every message *begins* with [`session::lexing_check`], which proves
//! them in force for that very message before anything of it runs: a message lexed
//! otherwise runs nothing and the run stops ([`FileError::Lexing`]). The trailer also
//! asks the server whether airlock's transaction is still the one running; if bundle
//! SQL ever ended it, the run stops and says what that transaction's fate was, never
//! "nothing was changed".
//!
//! A rehearsal asks for some statements to run alone, each in its own message, timed
//! ([`Watcher::alone`]): the statements that lock an existing relation, so that the
//! lock report can say how long each held its lock. Everything else is cut as above,
//! so a large data file costs what it always did.
//!
//! Invariant: the server receives the file's verified bytes, in order, each statement
//! exactly once, with nothing of it before the prelude, each message lexed with the
//! settings lint lexed it with; memory stays bounded by the message size (or the
//! largest single statement), whatever the file's size.
//!
//! [`ExecLimits::message_bytes`]: airlock_bundle::verified::ExecLimits::message_bytes

use crate::session::hermetic as session;
use airlock_bundle::archive::VerifyError;
use airlock_bundle::verified::Payload;
use airlock_sql::{Piece, Splitter};
use postgres::Transaction;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Bytes read from a verified file per step (lexing and COPY data).
const CHUNK: usize = 1 << 20;

/// Why a file did not run, and where in it.
#[derive(Debug)]
pub enum FileError {
    /// The server refused a statement; `at` is where, when it can be told (the
    /// statement the server was running, and its error position if it gave one).
    Sql {
        at: Option<Place>,
        error: postgres::Error,
    },
    /// Reading the verified bytes back, or bytes that are not UTF-8 text.
    Read(String),
    /// A file executed as it streams from the archive failed verification (a chunk
    /// not what was signed, the archive cut short, a SQL rule): nothing of it from
    /// that chunk on was sent.
    Unverified(VerifyError),
    /// Bundle SQL ended airlock's transaction (a COMMIT, ROLLBACK or PREPARE
    /// TRANSACTION lint did not see): `lines` are the file lines of the message in
    /// which it happened, `fate` what became of the transaction.
    Ended { lines: (u64, u64), fate: Fate },
    /// A message reached the server while a setting that decides lexing was not what
    /// lint lexed with (see [`session::lexing_check`]): nothing of it ran. `lines` are
    /// its file lines, `found` the values in force.
    Lexing { lines: (u64, u64), found: String },
}

/// Where in its file a statement failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// 1-based line and column (in characters) of the error: the server's error
    /// position when it gave one, else the statement's start.
    pub line: u64,
    pub column: u64,
    /// Where the failing statement begins (its first token), 1-based.
    pub statement_line: u64,
    pub statement_column: u64,
    /// The statement's first line, from its first token (bounded).
    pub statement: String,
}

impl Place {
    /// The place of the statement whose text (from `start`, comments and blanks before
    /// its first token included) is `text`, the server's error place `error` if known.
    fn of(start: Pos, text: &[u8], error: Option<Pos>) -> Place {
        let skip = leading_blanks(text);
        let mut first = start;
        first.advance(&text[..skip]);
        let rest = &text[skip..];
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let statement = String::from_utf8_lossy(&rest[..line_end]);
        let statement = airlock_base::text::bound(statement.trim_end(), 200).into_owned();
        let at = error.unwrap_or(first);
        Place {
            line: at.line,
            column: at.col + 1,
            statement_line: first.line,
            statement_column: first.col + 1,
            statement,
        }
    }
}

/// Bytes of whitespace and comments (`--`, nested `/* */`) at the start of `text`.
fn leading_blanks(text: &[u8]) -> usize {
    let mut i = 0;
    while i < text.len() {
        match (text[i], text.get(i + 1)) {
            (b' ' | b'\t' | b'\n' | b'\r' | b'\x0c', _) => i += 1,
            (b'-', Some(b'-')) => {
                i += text[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(text.len() - i);
            }
            (b'/', Some(b'*')) => {
                let mut depth = 0usize;
                while i < text.len() {
                    if text[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if text[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            _ => break,
        }
    }
    i.min(text.len())
}

/// A place in the file being run: 1-based line, and characters (0-based) since its
/// line began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    line: u64,
    col: u64,
}

impl Pos {
    const START: Pos = Pos { line: 1, col: 0 };

    /// Move past `bytes` (UTF-8 text; a continuation byte is no character).
    fn advance(&mut self, bytes: &[u8]) {
        match bytes.iter().rposition(|&b| b == b'\n') {
            Some(nl) => {
                self.line += bytecount(bytes);
                self.col = chars(&bytes[nl + 1..]);
            }
            None => self.col += chars(bytes),
        }
    }
}

fn chars(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64
}

/// What became of airlock's transaction once bundle SQL ended it, as the server's
/// commit log tells (`pg_xact_status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Committed: everything it ran up to that point stays.
    Committed,
    /// Rolled back: nothing of it stays (statements after the end ran on their own).
    RolledBack,
    /// Neither: prepared (PREPARE TRANSACTION), waiting for COMMIT/ROLLBACK PREPARED.
    Prepared,
    /// The server could not tell (`what` says why).
    Unknown(String),
}

/// The name of the savepoint airlock sets before any bundle SQL in a transaction.
const GUARD_SAVEPOINT: &str = "airlock_guard";

/// The text the trailer's check fails with when the transaction is not airlock's.
const GUARD_MARK: &str = "airlock-guard";

/// Holds a deploy transaction to all-or-nothing while bundle SQL runs in it: made once
/// per transaction, before the first bundle file ([`TxGuard::begin`]), and handed to
/// every [`run_file`] in that transaction.
///
/// Invariant: after every message of bundle SQL, either the transaction that
/// [`TxGuard::begin`] saw is still open, or the run stops with [`FileError::Ended`].
#[derive(Clone, Debug)]
pub struct TxGuard {
    /// The transaction's id (`pg_current_xact_id()`, never reused).
    xid: String,
    trailer: String,
    /// Statements the server completes for the trailer (its leading `\n;` ends the
    /// file's last statement, or is an empty one, which the server does not count).
    trailer_statements: usize,
}

impl TxGuard {
    /// Note the transaction's id and set a savepoint marking where bundle SQL begins
    /// (one round trip). After an error, rolling back to that savepoint succeeds only
    /// in this very transaction block. The settings that decide lexing are set first,
    /// at session level (a COMMIT before, with `transaction = "per-tier"`, may have
    /// fired code that changed them; set before the savepoint, a rollback to it keeps
    /// them).
    pub fn begin(tx: &mut Transaction<'_>) -> Result<TxGuard, postgres::Error> {
        let messages = tx.simple_query(&format!(
            "{}SAVEPOINT {GUARD_SAVEPOINT}; SELECT pg_catalog.pg_current_xact_id()::pg_catalog.text",
            session::lexing_set()
        ))?;
        let xid = messages
            .iter()
            .find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default();
        // Digits only: it goes into the trailer's text.
        let xid: String = xid.chars().filter(char::is_ascii_digit).collect();
        let trailer = format!(
            "\n;{}SELECT CASE WHEN pg_catalog.pg_current_xact_id_if_assigned() OPERATOR(pg_catalog.=) '{xid}'::pg_catalog.xid8 \
             THEN 0 ELSE ('{GUARD_MARK} {xid} ' OPERATOR(pg_catalog.||) pg_catalog.pg_backend_pid()::pg_catalog.text)::pg_catalog.int4 END",
            session::lexing_set()
        );
        let trailer_statements = statements_in(trailer.trim_start_matches(['\n', ';']));
        Ok(TxGuard {
            xid,
            trailer,
            trailer_statements,
        })
    }

    /// What every message of bundle SQL ends with (see the module's opening).
    pub fn trailer(&self) -> &str {
        &self.trailer
    }

    /// After `error` from a message of bundle SQL: `None` when airlock's transaction is
    /// still open (the error is the file's own, and the transaction is rolled back to
    /// before any bundle SQL, to be rolled back whole by the caller), else what became
    /// of it. The transaction is then not airlock's any more: whatever block the
    /// session is in is rolled back.
    fn after_error(&self, tx: &mut Transaction<'_>, error: &postgres::Error) -> Option<Fate> {
        // The connection went (a server shutdown, a network error): the server rolls
        // an open transaction back, and there is nothing left to ask.
        let gone = |e: &postgres::Error| {
            e.is_closed()
                || e.code()
                    .is_some_and(|c| c.code().starts_with("57P") || c.code().starts_with("08"))
        };
        if gone(error) {
            return None;
        }
        let ours = match tx.batch_execute(&format!("ROLLBACK TO SAVEPOINT {GUARD_SAVEPOINT}")) {
            Ok(()) => true,
            Err(e) if gone(&e) => return None,
            Err(_) => false,
        };
        let marked = error
            .as_db_error()
            .is_some_and(|d| d.message().contains(&format!("{GUARD_MARK} {} ", self.xid)));
        if ours && !marked {
            return None;
        }
        let _ = tx.batch_execute("ROLLBACK");
        let status = tx.simple_query(&format!(
            "SELECT pg_catalog.pg_xact_status('{}'::pg_catalog.xid8)",
            self.xid
        ));
        Some(match status {
            Ok(messages) => match messages.iter().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_string)),
                _ => None,
            }) {
                Some(Some(s)) if s == "committed" => Fate::Committed,
                Some(Some(s)) if s == "aborted" => Fate::RolledBack,
                Some(Some(s)) if s == "in progress" => Fate::Prepared,
                other => Fate::Unknown(format!("the server reports {other:?}")),
            },
            Err(e) => Fate::Unknown(crate::pg_message(&e)),
        })
    }
}

/// Watches [`run_file`] as it goes. Every method has a do-nothing default.
pub trait Watcher {
    /// Bytes of the file done so far, of `total` (a hook for progress display).
    fn progress(&mut self, _done: u64, _total: u64) {}
    /// The statement whose first line is `line` runs alone in its own message, timed
    /// ([`Watcher::timed`]).
    fn alone(&self, _line: u64) -> bool {
        false
    }
    /// A statement run alone (see [`Watcher::alone`]) was sent at `started` and had
    /// completed `took` later (its round trip and the trailer's check included).
    fn timed(&mut self, _line: u64, _started: Instant, _took: Duration) {}
}

/// A closure watches progress only: messages are cut by size only.
impl<F: FnMut(u64, u64)> Watcher for F {
    fn progress(&mut self, done: u64, total: u64) {
        self(done, total)
    }
}

/// What [`run_file`] reports to as it goes.
pub type Observer<'a> = &'a mut dyn Watcher;

/// The next verified bytes of a streamed file, `None` at its end.
pub type NextChunk<'a> = &'a mut dyn FnMut() -> Result<Option<Vec<u8>>, FileError>;

/// Where the bytes of the file being run come from, in order.
pub enum Source<'a> {
    /// Verified bytes held in memory or in the spill file.
    Payload(Payload<'a>),
    /// Authenticated chunks as the archive reader hands them on (`total`: the size the
    /// manifest gives).
    Stream { next: NextChunk<'a>, total: u64 },
}

/// Run one file behind `prelude` inside `tx`, held by `guard` (made for `tx`).
pub fn run_file(
    tx: &mut Transaction<'_>,
    guard: &TxGuard,
    prelude: &str,
    file: &str,
    payload: Payload<'_>,
    message_bytes: usize,
    observe: Observer<'_>,
) -> Result<(), FileError> {
    run_source(
        tx,
        guard,
        prelude,
        file,
        Source::Payload(payload),
        message_bytes,
        observe,
    )
}

/// [`run_file`] from any [`Source`]: the bytes are lexed as they arrive, and only the
/// unsent tail (the statement being read, or COPY data not yet known to be data) is
/// held, so memory stays bounded whatever the file's size.
pub fn run_source(
    tx: &mut Transaction<'_>,
    guard: &TxGuard,
    prelude: &str,
    file: &str,
    source: Source<'_>,
    message_bytes: usize,
    observe: Observer<'_>,
) -> Result<(), FileError> {
    let total = match &source {
        Source::Payload(p) => p.len(),
        Source::Stream { total, .. } => *total,
    };
    Run::start(tx, guard, observe, prelude, file, source, message_bytes).all(total)
}

impl<'t, 'c, 'p> Run<'t, 'c, 'p> {
    /// A run of `file` from `source`, nothing read yet.
    fn start(
        tx: &'t mut Transaction<'c>,
        guard: &'t TxGuard,
        watcher: &'t mut dyn Watcher,
        prelude: &str,
        file: &str,
        source: Source<'p>,
        message_bytes: usize,
    ) -> Self {
        Run {
            tx,
            guard,
            watcher,
            input: Input {
                source,
                pos: 0,
                window: Vec::new(),
                base: 0,
                splitter: Some(Splitter::streaming(file)),
                queue: VecDeque::new(),
                ended: false,
            },
            message: Message::new(prelude),
            message_bytes,
            cursor: 0,
            pos: Pos::START,
            collect: Collect::Off,
        }
    }

    /// Every piece of the file, then its last message.
    fn all(&mut self, total: u64) -> Result<(), FileError> {
        let run = self;
        loop {
            while let Some(piece) = run.input.queue.pop_front() {
                run.piece(piece)?;
            }
            if run.input.ended {
                break;
            }
            run.input.pull()?;
            run.input.trim(run.cursor);
            run.watcher.progress(run.cursor, total);
        }
        // Whatever follows the last statement (comments, blank lines) rides along.
        let end = run.input.base + run.input.window.len() as u64;
        run.take_to(end)?;
        run.flush()?;
        run.watcher.progress(total, total);
        Ok(())
    }

    /// In [`prepare`]: the file cannot be one message, and the run stops here.
    fn not_one(&mut self) -> Result<(), FileError> {
        if matches!(self.collect, Collect::Off) {
            return Ok(());
        }
        self.collect = Collect::NotOne;
        Err(FileError::Read("internal: not one message".into()))
    }
}

fn read_err(e: io::Error) -> FileError {
    FileError::Read(format!("reading the verified bytes back: {e}"))
}

/// The file's bytes as they arrive: the ones not yet handled (`window`, from file
/// offset `base`), lexed into `queue`.
struct Input<'a> {
    source: Source<'a>,
    /// Bytes read from the source so far.
    pos: u64,
    window: Vec<u8>,
    base: u64,
    /// Taken at the end of the file (its last pieces, or its problem).
    splitter: Option<Splitter>,
    queue: VecDeque<Piece>,
    ended: bool,
}

impl Input<'_> {
    /// Read the next bytes and lex them; at the end, finish the splitter.
    fn pull(&mut self) -> Result<(), FileError> {
        let block = match &mut self.source {
            Source::Payload(p) => {
                let len = p.len();
                if self.pos >= len {
                    None
                } else {
                    let want = ((len - self.pos) as usize).min(CHUNK);
                    let at = self.window.len();
                    self.window.resize(at + want, 0);
                    let n = p
                        .read_at(self.pos, &mut self.window[at..])
                        .map_err(read_err)?;
                    self.window.truncate(at + n);
                    (n > 0).then_some(at)
                }
            }
            Source::Stream { next, .. } => match next()? {
                Some(bytes) => {
                    let at = self.window.len();
                    self.window.extend_from_slice(&bytes);
                    Some(at)
                }
                None => None,
            },
        };
        let mut out = Vec::new();
        match block {
            Some(at) => {
                self.pos += (self.window.len() - at) as u64;
                if let Some(s) = &mut self.splitter {
                    s.feed(&self.window[at..], &mut out);
                }
            }
            None => {
                self.ended = true;
                if let Some(s) = self.splitter.take() {
                    // The re-check at verification (or, streaming, the reader's lint)
                    // refused any problem; should one appear here all the same, the
                    // transaction fails before COMMIT.
                    let finished = s.finish(&mut out);
                    self.queue.extend(out);
                    return finished.map_err(|p| FileError::Read(p.to_string()));
                }
            }
        }
        self.queue.extend(out);
        Ok(())
    }

    /// Forget the bytes before `upto` (all handled).
    fn trim(&mut self, upto: u64) {
        let drop = upto.saturating_sub(self.base).min(self.window.len() as u64) as usize;
        if drop > 0 {
            self.window.drain(..drop);
            self.base += drop as u64;
        }
    }

    /// Bytes `from..to` of the file, which must still be held.
    fn range(&self, from: u64, to: u64) -> Result<&[u8], FileError> {
        let end = self.base + self.window.len() as u64;
        if from < self.base || to > end || from > to {
            return Err(FileError::Read(format!(
                "internal: bytes {from}..{to} are not held (held {}..{end})",
                self.base
            )));
        }
        Ok(&self.window[(from - self.base) as usize..(to - self.base) as usize])
    }
}

/// One simple-query message being built: the lexing check first
/// ([`session::lexing_check`]), the prelude (until sent once), then slices of the file,
/// remembered so that a server error position maps to a file line.
struct Message {
    /// What every message begins with: the lexing check.
    head: String,
    text: Vec<u8>,
    prelude_pending: bool,
    /// Statements the server runs before the file's text: of the lexing check, and of
    /// the prelude (while it is pending).
    head_statements: usize,
    prelude_statements: usize,
    /// (offset in `text`, file place at that offset), one per slice of the file.
    slices: Vec<(usize, Pos)>,
    /// (offset in `text`, file place there) where each statement of the file in the
    /// message begins (the blanks and comments before its first token included).
    starts: Vec<(usize, Pos)>,
    /// Statements in the message, and the line of the first one.
    statements: usize,
    first_line: u64,
}

/// Statements the server counts in `text` (airlock's own SQL: the lexing check, the
/// prelude).
fn statements_in(text: &str) -> usize {
    airlock_sql::split_all("prelude", text.as_bytes())
        .map(|pieces| {
            pieces
                .iter()
                .filter(|p| matches!(p, Piece::Sql { .. }))
                .count()
        })
        .unwrap_or(0)
}

impl Message {
    fn new(prelude: &str) -> Message {
        let head = session::lexing_check();
        let mut text = head.as_bytes().to_vec();
        text.extend_from_slice(prelude.as_bytes());
        Message {
            head_statements: statements_in(&head),
            prelude_statements: statements_in(prelude),
            head,
            text,
            prelude_pending: true,
            slices: vec![],
            starts: vec![],
            statements: 0,
            first_line: 0,
        }
    }

    fn clear(&mut self) {
        self.text.clear();
        self.text.extend_from_slice(self.head.as_bytes());
        self.slices.clear();
        self.starts.clear();
        self.statements = 0;
    }

    /// Bytes of file text in the message (the prelude not counted, so a file up to
    /// the message size is always one message).
    fn file_bytes(&self) -> usize {
        self.slices
            .first()
            .map_or(0, |&(at, _)| self.text.len() - at)
    }

    /// Holds file text (not just the prelude, or nothing).
    fn has_file_text(&self) -> bool {
        self.slices.iter().any(|&(at, _)| at < self.text.len())
    }

    /// The file place of the message's character `position` (1-based, as the server
    /// counts in an error), if it falls in file text (which ends at byte `file_end`),
    /// with its byte offset in the message.
    fn place_at(&self, position: usize, file_end: usize) -> Option<(usize, Pos)> {
        let text = std::str::from_utf8(&self.text).ok()?;
        let byte = text.char_indices().nth(position.checked_sub(1)?)?.0;
        if byte >= file_end {
            return None;
        }
        let &(at, mut pos) = self.slices.iter().rev().find(|&&(at, _)| at <= byte)?;
        pos.advance(&self.text[at..byte]);
        Some((byte, pos))
    }

    /// The file line of the message's character `position` (see [`Message::place_at`]).
    #[cfg(test)]
    fn line_at(&self, position: usize, file_end: usize) -> Option<u64> {
        self.place_at(position, file_end).map(|(_, p)| p.line)
    }

    /// Statements the server completes for the message ahead of the file's: the lexing
    /// check, and the prelude when it rides with this message.
    fn lead_statements(&self) -> usize {
        self.head_statements
            + if self.prelude_pending {
                self.prelude_statements
            } else {
                0
            }
    }

    /// Where the failing statement is, from the statements the server completed
    /// (`done`, airlock's own before the file's counted) or else from the error
    /// position; `None` when the error is in airlock's own SQL.
    /// `before`: the characters sent ahead of this message's text in the same string
    /// (the earlier files of a [`run_group`] string), which the server's position counts.
    fn failed_at(
        &self,
        done: usize,
        error: &postgres::Error,
        file_end: usize,
        before: usize,
    ) -> Option<Place> {
        let position = error_position(error)
            .and_then(|p| p.checked_sub(before))
            .and_then(|p| self.place_at(p, file_end));
        let index = match done.checked_sub(self.lead_statements()) {
            Some(i) if i < self.starts.len() => i,
            // The count says an error in the trailer or before the file: a position
            // in the file still tells.
            _ => {
                let byte = position?.0;
                self.starts.iter().rposition(|&(at, _)| at <= byte)?
            }
        };
        let (at, start) = self.starts[index];
        let end = self.starts.get(index + 1).map_or(file_end, |&(e, _)| e);
        let error = position
            .filter(|&(byte, _)| byte >= at && byte < end)
            .map(|(_, p)| p);
        Some(Place::of(start, &self.text[at..end], error))
    }
}

fn bytecount(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

struct Run<'t, 'c, 'p> {
    tx: &'t mut Transaction<'c>,
    guard: &'t TxGuard,
    watcher: &'t mut dyn Watcher,
    input: Input<'p>,
    message: Message,
    message_bytes: usize,
    /// Everything before this offset of the file is in a message or was handled.
    cursor: u64,
    /// The file place at `cursor`.
    pos: Pos,
    /// Whether the file is made into one message and kept, not sent ([`prepare`]).
    collect: Collect,
}

/// A [`Run`] that sends its messages, or one that keeps the file's one message.
enum Collect {
    /// Each message is sent as it is made.
    Off,
    /// No message made yet.
    Collecting,
    Made(Segment),
    /// The file needs more than one message (a COPY, a statement run alone, more than
    /// [`GROUP_FILE_BYTES`]).
    NotOne,
}

impl Run<'_, '_, '_> {
    fn piece(&mut self, piece: Piece) -> Result<(), FileError> {
        match piece {
            Piece::Sql { start, end, line } if self.watcher.alone(line as u64) => {
                self.not_one()?;
                // What comes before it goes first; then the statement alone, timed.
                self.take_to(start)?;
                self.flush()?;
                self.message
                    .starts
                    .push((self.message.text.len(), self.pos));
                self.take_to(end)?;
                self.message.first_line = line as u64;
                self.message.statements = 1;
                let started = Instant::now();
                self.flush()?;
                self.watcher.timed(line as u64, started, started.elapsed());
            }
            Piece::Sql { start, end, line } => {
                self.take_to(start)?;
                self.message
                    .starts
                    .push((self.message.text.len(), self.pos));
                self.take_to(end)?;
                if self.message.statements == 0 {
                    self.message.first_line = line as u64;
                }
                self.message.statements += 1;
                if self.message.file_bytes() >= self.message_bytes {
                    self.not_one()?;
                    self.flush()?;
                }
            }
            Piece::Skip { start, end } => {
                self.take_to(start)?;
                self.pass_over(end)?;
            }
            Piece::CopyBegin { stmt, line } => {
                self.not_one()?;
                // The statements before the COPY (and the prelude) go first.
                self.take_to(stmt.start)?;
                self.flush()?;
                let query = String::from_utf8(self.input.range(stmt.start, stmt.end)?.to_vec())
                    .map_err(|_| FileError::Read(format!("line {line}: not UTF-8")))?;
                let place = Place::of(self.pos, query.as_bytes(), None);
                self.pass_over(stmt.end)?;
                self.copy(&query, place)?;
            }
            Piece::Copy { .. } => {
                return Err(FileError::Read(
                    "internal: COPY data without its statement".into(),
                ))
            }
        }
        Ok(())
    }

    /// Run the COPY `query` (at file line `line`, the cursor just past it), sending its
    /// data as it arrives: what is certainly data is sent at once, the rest when more
    /// of the file is in, until its `\.` line.
    fn copy(&mut self, query: &str, place: Place) -> Result<(), FileError> {
        let sql = |error| FileError::Sql {
            at: Some(place.clone()),
            error,
        };
        let Run {
            tx,
            input,
            cursor,
            pos,
            ..
        } = self;
        let mut writer = tx.copy_in(query).map_err(sql)?;
        // The server ended the COPY early (an error in the data): `finish` says why.
        let mut refused = false;
        let mut send = |input: &Input<'_>,
                        cursor: &mut u64,
                        pos: &mut Pos,
                        from: u64,
                        to: u64|
         -> Result<(), FileError> {
            if to <= from {
                return Ok(());
            }
            // Bytes between the statement and the data (the rest of its line).
            if from > *cursor {
                pos.advance(input.range(*cursor, from)?);
            }
            let bytes = input.range(from, to)?;
            if !refused && writer.write_all(bytes).is_err() {
                refused = true;
            }
            pos.advance(bytes);
            *cursor = to;
            Ok(())
        };
        loop {
            if let Some(Piece::Copy { data, end, .. }) = input.queue.front().cloned() {
                input.queue.pop_front();
                let from = (*cursor).max(data.start);
                send(input, cursor, pos, from, data.end)?;
                // The `\.` line.
                let tail = input.range((*cursor).max(data.end), end)?;
                pos.advance(tail);
                *cursor = end;
                break;
            }
            if let Some((start, safe)) = input.splitter.as_ref().and_then(|s| s.copy_progress()) {
                let from = (*cursor).max(start);
                send(input, cursor, pos, from, safe)?;
            }
            if input.ended {
                return Err(FileError::Read("COPY data without its `\\.` line".into()));
            }
            // A failed read drops the writer unfinished, which aborts the COPY
            // (CopyFail): the transaction fails and rolls back.
            input.pull()?;
            input.trim(*cursor);
        }
        writer.finish().map_err(sql)?;
        self.after_copy(place)
    }

    /// Append the file up to `to` to the message.
    fn take_to(&mut self, to: u64) -> Result<(), FileError> {
        if to <= self.cursor {
            return Ok(());
        }
        let at = self.message.text.len();
        self.message.slices.push((at, self.pos));
        let bytes = self.input.range(self.cursor, to)?;
        self.message.text.extend_from_slice(bytes);
        self.pos.advance(&self.message.text[at..]);
        self.cursor = to;
        Ok(())
    }

    /// Move past `to` without sending (a meta-command line, the rest of a COPY line).
    fn pass_over(&mut self, to: u64) -> Result<(), FileError> {
        if to <= self.cursor {
            return Ok(());
        }
        self.pos.advance(self.input.range(self.cursor, to)?);
        self.cursor = to;
        Ok(())
    }

    /// Send the message built so far, if it holds any file text, with the guard's
    /// trailer. The prelude stays pending until it can ride with the file's first
    /// statements; before a COPY it goes alone.
    fn flush(&mut self) -> Result<(), FileError> {
        if !self.message.has_file_text() && !self.message.prelude_pending {
            self.message.clear();
            return Ok(());
        }
        let file_end = self.message.text.len();
        self.message
            .text
            .extend_from_slice(self.guard.trailer().as_bytes());
        let lines = (
            self.message.first_line.max(1),
            self.pos.line.saturating_sub(1).max(1),
        );
        match self.collect {
            Collect::Off => {}
            // A second message, or one too large to go with others.
            Collect::Made(_) | Collect::NotOne => return self.not_one(),
            Collect::Collecting if file_end > GROUP_FILE_BYTES => return self.not_one(),
            Collect::Collecting => {
                let message = std::mem::replace(&mut self.message, Message::new(""));
                let segment = Segment::of(message, file_end, lines, self.guard)?;
                self.collect = Collect::Made(segment);
                return Ok(());
            }
        }
        let text = std::str::from_utf8(&self.message.text)
            .map_err(|_| FileError::Read("not UTF-8".into()))?;
        if let Err((done, error)) = self.tx.batch_execute_counted(text) {
            if let Some(fate) = self.guard.after_error(self.tx, &error) {
                return Err(FileError::Ended { lines, fate });
            }
            if let Some(found) = session::lexing_refused(&error) {
                return Err(FileError::Lexing { lines, found });
            }
            let at = self.message.failed_at(done, &error, file_end, 0);
            return Err(FileError::Sql { at, error });
        }
        self.message.clear();
        self.message.prelude_pending = false;
        Ok(())
    }

    /// After a COPY: its rows may have fired code that changed how text is lexed, so
    /// the trailer goes alone before the next message is lexed.
    fn after_copy(&mut self, place: Place) -> Result<(), FileError> {
        if let Err(error) = self.tx.batch_execute(self.guard.trailer()) {
            let fate = self.guard.after_error(self.tx, &error);
            let line = place.statement_line;
            return Err(match fate {
                Some(fate) => FileError::Ended {
                    lines: (line, self.pos.line.saturating_sub(1).max(line)),
                    fate,
                },
                None => FileError::Sql {
                    at: Some(place),
                    error,
                },
            });
        }
        Ok(())
    }
}

/// The server's position in the string it was sent (1-based, in characters), when the
/// error gives one.
fn error_position(error: &postgres::Error) -> Option<usize> {
    error.as_db_error().and_then(|d| match d.position() {
        Some(postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
        _ => None,
    })
}

/// A file of at most this many bytes, made into one message with its prelude, may be
/// sent in one string with the files beside it ([`run_group`]).
pub const GROUP_FILE_BYTES: usize = 64 << 10;

/// The files of one string at most, in bytes ([`run_group`]).
pub const GROUP_BYTES: usize = 1 << 20;

/// Ahead of every file but the first in a string: a row larger than the server's send
/// buffer (8 KiB), which makes it send every answer before it then, not when the
/// string ends. Should the connection drop while a file runs (a server restart), the
/// answers airlock has then name that file, not one before it.
const FLUSH: &str = "SELECT pg_catalog.repeat(' ', 9000);\n";

/// One file made into exactly the message [`run_file`] would send for it (the lexing
/// check, the prelude, the file, the trailer), kept to be sent with others
/// ([`run_group`]).
pub struct Segment {
    message: Message,
    /// Where the file's text ends in the message (the trailer follows).
    file_end: usize,
    /// The file lines the message holds.
    lines: (u64, u64),
    /// Statements the server completes for the message, and its characters.
    statements: usize,
    chars: usize,
}

impl Segment {
    fn of(
        mut message: Message,
        file_end: usize,
        lines: (u64, u64),
        guard: &TxGuard,
    ) -> Result<Segment, FileError> {
        // The trailer ends in a statement without its `;`: the next file's message
        // must not run on into it.
        message.text.extend_from_slice(b";\n");
        let statements =
            message.lead_statements() + message.starts.len() + guard.trailer_statements;
        let chars = std::str::from_utf8(&message.text)
            .map_err(|_| FileError::Read("not UTF-8".into()))?
            .chars()
            .count();
        Ok(Segment {
            message,
            file_end,
            lines,
            statements,
            chars,
        })
    }

    /// The lexing check the message begins with: its bytes (ASCII, so its characters
    /// too) and the statements the server completes for it.
    fn head(&self) -> (usize, usize) {
        (self.message.head.len(), self.message.head_statements)
    }

    /// Bytes of the message.
    pub fn len(&self) -> usize {
        self.message.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message.text.is_empty()
    }
}

/// [`run_file`]'s message for `file`, made and kept, not sent: `None` when the file
/// needs more than one message (a COPY, a statement run alone, more than
/// [`GROUP_FILE_BYTES`]), to be run by [`run_file`] on its own.
pub fn prepare(
    tx: &mut Transaction<'_>,
    guard: &TxGuard,
    prelude: &str,
    file: &str,
    payload: Payload<'_>,
    message_bytes: usize,
) -> Result<Option<Segment>, FileError> {
    let total = payload.len();
    let mut quiet = |_: u64, _: u64| {};
    let source = Source::Payload(payload);
    let limit = message_bytes.min(GROUP_FILE_BYTES);
    let mut run = Run::start(tx, guard, &mut quiet, prelude, file, source, limit);
    run.collect = Collect::Collecting;
    let ran = run.all(total);
    match (run.collect, ran) {
        (Collect::NotOne, _) => Ok(None),
        (_, Err(e)) => Err(e),
        (Collect::Made(segment), Ok(())) => Ok(Some(segment)),
        // A file with nothing to send (no statement, no prelude): nothing to run.
        (_, Ok(())) => Ok(None),
    }
}

/// Files made into their messages ([`prepare`]) sent as one string, one round trip
/// for all: the server parses the string whole on arrival, with the settings the
/// first file's lexing check proves to be lint's (the same for every file in it:
/// nothing ran before that check), then runs each file's message in turn, its
/// trailer included, so after every file airlock's transaction is proven open and the
/// settings that decide lexing are put back, as when each is sent alone; the first
/// error stops the rest. Every file but the first is sent without its lexing check
/// ([`Segment::head`]): the server lexed the whole string on arrival, under the
/// settings the first check proves, so a later check would prove nothing (and cost a
/// planned statement a file). Between two files, a [`FLUSH`] row makes the server send
/// its answers so far. On an error: the index of the file it is in (by the server's
/// position, else by the statements completed) and the error as [`run_file`] gives it
/// for that file.
pub fn run_group(
    tx: &mut Transaction<'_>,
    guard: &TxGuard,
    files: &[Segment],
) -> Result<(), (usize, FileError)> {
    let mut text = String::with_capacity(files.iter().map(|f| f.len() + FLUSH.len()).sum());
    for (k, f) in files.iter().enumerate() {
        let mut sent = &f.message.text[..];
        if k > 0 {
            text.push_str(FLUSH);
            sent = &sent[f.head().0..];
        }
        // UTF-8: checked when it was made (and the check it may leave out is ASCII).
        text.push_str(&String::from_utf8_lossy(sent));
    }
    let Err((done, error)) = tx.batch_execute_counted(&text) else {
        return Ok(());
    };
    // The file it is in: by the server's position when it gave one (a syntax error:
    // nothing ran), else by the statements completed. A file's FLUSH counts as its
    // own: with it not yet answered, the file before it had finished. Counted as
    // sent: a file after the first without its check.
    let position = error_position(&error);
    let flush_chars = FLUSH.chars().count();
    let (mut statements, mut chars, mut k) = (0, 0, 0);
    let (statements, chars) = loop {
        let f = &files[k];
        let (pad, pad_chars) = if k > 0 { (1, flush_chars) } else { (0, 0) };
        let (head_chars, head_statements) = if k > 0 { f.head() } else { (0, 0) };
        let (sent_chars, sent_statements) = (f.chars - head_chars, f.statements - head_statements);
        let inside = match position {
            Some(p) => p <= chars + pad_chars + sent_chars,
            None => done < statements + pad + sent_statements,
        };
        if inside || k + 1 == files.len() {
            // Where the file's whole message would have begun, its check sent too.
            break (
                statements + pad - head_statements,
                chars + pad_chars - head_chars,
            );
        }
        statements += pad + sent_statements;
        chars += pad_chars + sent_chars;
        k += 1;
    };
    let f = &files[k];
    if let Some(fate) = guard.after_error(tx, &error) {
        let lines = f.lines;
        return Err((k, FileError::Ended { lines, fate }));
    }
    if let Some(found) = session::lexing_refused(&error) {
        let lines = f.lines;
        return Err((k, FileError::Lexing { lines, found }));
    }
    let at = (f.message).failed_at(done.saturating_sub(statements), &error, f.file_end, chars);
    Err((k, FileError::Sql { at, error }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_position_maps_to_the_file_line_past_the_prelude_and_multibyte_text() {
        let mut m = Message::new("SET LOCAL x TO 'é'; ");
        // The file from its line 7: two statements, the second on line 9.
        let at = m.text.len();
        m.slices.push((at, Pos { line: 7, col: 0 }));
        m.text
            .extend_from_slice("SELECT 'ü';\n\nSELECT nosuch;\n".as_bytes());
        let chars_before = std::str::from_utf8(&m.text[..m.text.len() - "nosuch;\n".len()])
            .unwrap()
            .chars()
            .count();
        let end = m.text.len();
        assert_eq!(m.file_bytes(), "SELECT 'ü';\n\nSELECT nosuch;\n".len());
        assert_eq!(m.line_at(chars_before + 1, end), Some(9));
        m.text.extend_from_slice(b"\n;SELECT trailer");
        assert_eq!(
            m.line_at(m.text.len() - 2, end),
            None,
            "a position in the trailer is no file line"
        );
        assert_eq!(
            m.line_at(1, end),
            None,
            "a position in the prelude is no file line"
        );
    }
}
