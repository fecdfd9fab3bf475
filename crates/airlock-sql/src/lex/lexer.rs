//! The one lexer of the SQL room. Tokens follow PostgreSQL's `scan.l`
//! (standard_conforming_strings on); where a statement ends follows psql's
//! `psqlscan.l` (a `;` ends it unless inside parentheses or inside the `BEGIN … END` of a
//! `CREATE [OR REPLACE] FUNCTION|PROCEDURE`); what follows `COPY … FROM STDIN;` is data
//! up to a line that is exactly `\.`, as psql reads it (`copy.rs`). Lint
//! (`classify.rs`) and execution (`split.rs`) both read files through this one state
//! machine, so they agree byte for byte on every boundary.
//!
//! Invariant: memory is bounded whatever the input. The only buffer that grows is the
//! text of one statement that is not plain DML, and it stops growing at
//! [`MAX_STATEMENT`] (the statement is then reported as too long, never half-judged).

use super::copy::{self, CopyVerdict, DataScan};
use crate::lex::byteset::ByteSet;
use crate::lex::lexing::SetConfigWatch;
use crate::lex::meta;
use crate::lex::wrapper::{self, Wrappers};

/// The longest statement that is not plain DML lint will hold to classify (8 MiB).
/// DML (INSERT, UPDATE, …) and COPY data are never held, whatever their size.
pub const MAX_STATEMENT: usize = 8 << 20;

/// The longest dollar-quote tag (`$tag$`) read; a longer one is refused.
const MAX_TAG: usize = 1 << 16;

/// What the file is: a script (tiers, rollbacks: COPY data and `\restrict` lines are
/// understood) or one query (gates and probes: neither is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Script,
    Query,
}

/// Which statements' text the owner needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Every statement that is not plain DML (lint classifies them).
    NonDml,
    /// Only COPY statements (execution needs to know whether data follows).
    Copy,
}

/// What a statement is, as far as its first word tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, TABLE, WITH: data manipulation
    /// whatever follows; never held.
    Dml,
    Copy,
    Other,
}

/// One statement the lexer found.
#[derive(Debug)]
pub(crate) struct Statement {
    /// Offset of its `;`, or the end of the file when `semi` is false.
    pub end: u64,
    pub semi: bool,
    pub line: usize,
    pub kind: Kind,
    /// Its text up to (not including) the `;`, when the owner keeps this kind and it
    /// fits in [`MAX_STATEMENT`].
    pub text: Option<Vec<u8>>,
    /// Longer than [`MAX_STATEMENT`] (and not DML): its text was not kept.
    pub too_long: bool,
    /// `COPY … FROM STDIN`: a [`Event::CopyData`] follows.
    pub copy_in: bool,
    /// A COPY form airlock refuses (already reported as a [`Event::Problem`]).
    pub copy_refused: bool,
    /// The first word is MERGE (PostgreSQL 15).
    pub merge: bool,
    /// It holds a psql construct already reported (a `:variable`, a meta-command).
    pub psql: bool,
}

#[derive(Debug)]
pub(crate) enum Event {
    Statement(Statement),
    /// The data of the COPY statement just reported: `[data_start, data_end)` is sent as
    /// CopyData; the `\.` line ends at `end`.
    CopyData {
        data_start: u64,
        data_end: u64,
        end: u64,
    },
    /// Bytes sent nowhere, ending at `end`: a psql meta-command line airlock skips
    /// (pg_dump's `\restrict KEY`, `\set ON_ERROR_STOP 1`…), a transaction wrapper
    /// statement (`wrapper.rs`), a byte-order mark.
    Skip {
        end: u64,
    },
    /// Something accepted that lint says it accepted (what was skipped, a warning).
    Note {
        line: usize,
        message: String,
    },
    /// Something accepted that may not do what its author meant (lint warns).
    Warning {
        line: usize,
        message: String,
    },
    Problem {
        line: usize,
        message: String,
    },
}

/// Where the lexer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    Normal,
    /// `-` in Normal: a comment if another `-` follows.
    Dash,
    /// `/` in Normal: a comment if `*` follows.
    Slash,
    LineComment,
    /// Inside `/* */` (nested, depth in `comment_depth`).
    Block,
    /// Inside a string constant (`e_string`: backslash escapes, E'...').
    Str,
    /// A quote inside a string: `''` continues it, anything else ends it.
    StrQuote,
    /// After a backslash in an E'...' string.
    StrBackslash,
    /// After a string: whitespace (and `--` comments) before any newline; a string
    /// that resumes after a newline continues the same constant (scan.l `quotecontinue`).
    GapBefore,
    GapBeforeDash,
    GapBeforeComment,
    /// The gap after its newline.
    GapAfter,
    GapAfterDash,
    GapAfterComment,
    /// Inside a `"quoted identifier"`.
    Ident,
    IdentQuote,
    /// `$` at a token start: reading a dollar-quote tag, or a `$1` parameter.
    DollarTag,
    /// Inside `$tag$ ... $tag$`; `dollar_matched` bytes of the closing delimiter seen.
    Dollar,
    /// The arguments of a meta-command, up to the end of its line (`meta_args`).
    MetaArgs,
    /// `:` in Normal: a psql variable reference if a name or a quote follows.
    Colon,
    /// The rest of the line of a `COPY … FROM STDIN;`: only blanks and a `--` comment.
    CopyRest,
    CopyRestDash,
    CopyRestComment,
    /// COPY data lines (`copy_data`).
    CopyData,
}

/// A backslash outside quotes: a psql meta-command being read.
#[derive(Debug)]
struct Meta {
    line: usize,
    /// The command's name read so far, with its backslash.
    name: String,
    /// It began a statement (only whitespace and comments before it since the last
    /// statement's end): a line airlock may skip. Otherwise psql would run it in the
    /// middle of the statement's text, which is refused.
    at_start: bool,
    /// The statement's kept text before the backslash: the meta-command is not part
    /// of it (psql leaves it out of the query buffer).
    kept: usize,
}

/// A UTF-8 byte-order mark, which psql drops from the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the current statement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stmt {
    /// No token yet (only whitespace and comments).
    Empty,
    /// The first token is a word still being read.
    FirstWord,
    /// Its kind is known (`kind`).
    Known,
}

/// The first bytes of a word kept to recognise keywords (`PROCEDURE` is the longest).
const WORD_BUF: usize = 9;

/// First keywords of statements that are data manipulation whatever follows: they can
/// neither end the transaction nor refuse to run inside one, so they are never held
/// (the server parses each statement whole before running it).
const DML: [&[u8]; 8] = [
    b"SELECT", b"INSERT", b"UPDATE", b"DELETE", b"MERGE", b"VALUES", b"TABLE", b"WITH",
];

/// Whitespace outside quotes and comments: scan.l's `space`, `[ \t\n\r\f\v]` as PostgreSQL 17
/// reads it (before 17 a vertical tab is no whitespace, and the server refuses it).
const fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

pub(crate) const fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// What a byte of Normal text inside DML is to [`Lexer::dml_normal`]: a byte that may
/// change the lexer's state, a parenthesis, an `s`/`S` that may start a `set_config`,
/// a quote (a plain constant is read in the run when it surely ends as one), a newline
/// (counted in the run), or nothing.
const DML_STOP: u8 = 1;
const DML_OPEN: u8 = 2;
const DML_CLOSE: u8 = 3;
const DML_S: u8 = 4;
const DML_QUOTE: u8 = 5;
const DML_NEWLINE: u8 = 6;
static DML_CLASS: [u8; 256] = {
    let mut t = [0; 256];
    let stops = b"\"-/;\\$\0:";
    let mut i = 0;
    while i < stops.len() {
        t[stops[i] as usize] = DML_STOP;
        i += 1;
    }
    t[b'\'' as usize] = DML_QUOTE;
    t[b'\n' as usize] = DML_NEWLINE;
    t[b'(' as usize] = DML_OPEN;
    t[b')' as usize] = DML_CLOSE;
    t[b'[' as usize] = DML_OPEN;
    t[b']' as usize] = DML_CLOSE;
    t[b's' as usize] = DML_S;
    t[b'S' as usize] = DML_S;
    t
};
/// The `s`/`S` that may start a `set_config`.
const DML_S_BYTES: [u8; 256] = {
    let mut t = [0; 256];
    t[b's' as usize] = DML_S;
    t[b'S' as usize] = DML_S;
    t
};
/// The bytes of [`DML_CLASS`] that are not nothing, but `s`/`S`, to find the next at
/// once; an `s`/`S` matters only where a word starts (its starts, in the same table),
/// and only while the `set_config` watch looks.
static DML_SET: ByteSet = ByteSet::new(&{
    let mut t = DML_CLASS;
    t[b's' as usize] = 0;
    t[b'S' as usize] = 0;
    t
})
.with_starts(&ByteSet::new(&DML_S_BYTES));
/// The bytes [`is_word_byte`] says are.
static WORD_BYTES: ByteSet = ByteSet::new(&{
    let mut t = [0; 256];
    let mut b = 0;
    while b < 256 {
        if is_word_byte(b as u8) {
            t[b] = 1;
        }
        b += 1;
    }
    t
});

/// The closing quote of the `'…'` constant opened at `rest[open]`, when it surely ends
/// there as a plain constant: on the same line, no backslash before the close (a
/// legacy `\'` is read byte by byte, to be named), and followed by a byte that ends
/// it for certain (`,`, `)`, `;` or `:`, not a `'` of a doubled quote or a gap that may
/// continue it).
fn plain_constant_end(rest: &[u8], open: usize) -> Option<usize> {
    let close = open + 1 + memchr::memchr2(b'\'', b'\n', &rest[open + 1..])?;
    (rest[close] == b'\''
        && rest[close - 1] != b'\\'
        && matches!(rest.get(close + 1), Some(b',' | b')' | b';' | b':')))
    .then_some(close)
}

/// The lexer. Feed it bytes, then take `events`.
pub(crate) struct Lexer {
    mode: Mode,
    keep: Keep,
    /// Report every DML statement too (an online tier refuses them); otherwise lint
    /// skips them unreported.
    pub(crate) dml_events: bool,
    lex: Lex,
    e_string: bool,
    comment_depth: u32,
    comment_prev: u8,
    tag: Vec<u8>,
    dollar_matched: usize,
    /// Line of the byte being processed (1-based).
    line: usize,
    /// Line where the current quoted construct or comment began (for "unterminated").
    opened_at: usize,
    /// Offset of the byte being processed, from the start of the file.
    offset: u64,
    stmt: Stmt,
    kind: Kind,
    stmt_line: usize,
    /// The first line of the last statement ended, of any kind (DML too, though lint
    /// reports none): what follows a statement in its file.
    pub(crate) last_line: Option<usize>,
    /// Offset of the current statement's first byte (its kept text starts there).
    stmt_start: u64,
    /// A DML statement spanned more than [`MAX_STATEMENT`] bytes: whether or not its
    /// text was kept, one pass cannot say what calls it makes (`reach_pass.rs` reads
    /// such a file again). Set for every mode; one comparison a statement.
    pub(crate) long_dml: bool,
    merge: bool,
    /// The current statement's text, while `capturing`.
    pub(crate) capture: Vec<u8>,
    capturing: bool,
    too_long: bool,
    /// The current word, uppercased (first [`WORD_BUF`] bytes), its length, whether
    /// one is being read and whether it started with a digit (then not an identifier).
    word: [u8; WORD_BUF],
    word_len: usize,
    in_word: bool,
    word_digit: bool,
    /// psql's statement-end heuristic (psqlscan.l): parentheses, and in
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE` statements BEGIN/CASE … END nesting
    /// outside parentheses; `idents` holds the first letter of the first four
    /// identifiers when they are CREATE, OR, REPLACE, FUNCTION or PROCEDURE.
    paren_depth: u32,
    begin_depth: u32,
    ident_count: u32,
    idents: [u8; 4],
    /// A backslash outside quotes being read, and its arguments (at most
    /// [`meta::MAX_ARGS`] bytes kept).
    meta: Option<Meta>,
    meta_args: Vec<u8>,
    /// `[` … `]` depth: a `:name` inside brackets is an array slice (`a[lo:hi]`), which
    /// psql leaves alone when no variable of that name is set (airlock sets none).
    bracket_depth: u32,
    /// The first bytes of the file while they may still be a byte-order mark.
    head: Option<Vec<u8>>,
    /// The statement's first word is BEGIN, START, COMMIT or END: its text is kept (up
    /// to [`wrapper::MAX_WRAPPER`] bytes) to recognise a transaction wrapper.
    txn_word: bool,
    wrappers: Wrappers,
    /// The last byte read inside a `'…'` constant was a backslash.
    str_backslash: bool,
    /// First line with `\'` ending a plain `'…'` constant (legal, but the mark of a
    /// file written for standard_conforming_strings off), and whether a problem
    /// already said so.
    legacy_quote: Option<usize>,
    /// Lint saw `ALTER … ADD VALUE`: DML text is kept from then on (bounded as any
    /// statement's), to find a use of the new value (`enum_values.rs`).
    keep_dml: bool,
    /// Hold the text of `UPDATE` statements (alone of DML): the lock plan's look for an
    /// UPDATE of every row.
    keep_update: bool,
    /// The statement's first word is UPDATE.
    update_word: bool,
    /// A psql construct airlock refuses (a variable, a meta-command) is inside the
    /// current statement: it is reported, and the statement is not judged further.
    stmt_psql: bool,
    copy_data: DataScan,
    /// Line of the COPY statement whose data is being read.
    copy_line: usize,
    utf8_carry: Vec<u8>,
    /// `set_config(…)` calls in DML, for lint: a call changing how SQL text is lexed is
    /// refused (`lexing.rs`; other statements are judged on their kept text).
    set_config: SetConfigWatch,
    /// Invalid UTF-8 seen: nothing after it can be judged.
    pub(crate) stopped: bool,
    /// Tests turn the whole-token fast paths off to compare (`word_run`, `dml_string`).
    #[cfg(test)]
    pub(crate) byte_by_byte: bool,
    /// Where each statement ended (its `;`, or the end of the file), whether or not it
    /// is reported: observed by the differential test against PostgreSQL's own
    /// splitter, never read by the lexer.
    #[cfg(test)]
    pub(crate) ends: Vec<usize>,
    pub(crate) events: Vec<Event>,
}

impl Lexer {
    pub(crate) fn new(mode: Mode, keep: Keep) -> Self {
        Lexer {
            mode,
            keep,
            dml_events: false,
            lex: Lex::Normal,
            e_string: false,
            comment_depth: 0,
            comment_prev: 0,
            tag: Vec::new(),
            dollar_matched: 0,
            line: 1,
            opened_at: 1,
            offset: 0,
            stmt: Stmt::Empty,
            kind: Kind::Other,
            stmt_line: 1,
            last_line: None,
            stmt_start: 0,
            long_dml: false,
            merge: false,
            capture: Vec::new(),
            capturing: false,
            too_long: false,
            word: [0; WORD_BUF],
            word_len: 0,
            in_word: false,
            word_digit: false,
            paren_depth: 0,
            begin_depth: 0,
            ident_count: 0,
            idents: [0; 4],
            meta: None,
            meta_args: Vec::new(),
            bracket_depth: 0,
            head: Some(Vec::new()),
            txn_word: false,
            wrappers: Wrappers::default(),
            str_backslash: false,
            legacy_quote: None,
            stmt_psql: false,
            keep_dml: false,
            keep_update: false,
            update_word: false,
            copy_data: DataScan::new(0),
            copy_line: 1,
            utf8_carry: Vec::new(),
            set_config: SetConfigWatch::default(),
            stopped: false,
            #[cfg(test)]
            byte_by_byte: false,
            #[cfg(test)]
            ends: Vec::new(),
            events: Vec::new(),
        }
    }

    fn problem(&mut self, line: usize, message: String) {
        self.events.push(Event::Problem { line, message });
    }

    /// Keep DML text from the first statement on: earlier files of the transaction
    /// added enum values whose uses lint looks for (`enum_values.rs`).
    pub(crate) fn keep_dml_text(&mut self) {
        self.keep_dml = true;
    }

    /// Hold the text of `UPDATE` statements, no other DML's.
    pub(crate) fn keep_update_text(&mut self) {
        self.keep_update = true;
    }

    fn keeps_this_dml(&self) -> bool {
        self.keep_dml || (self.keep_update && self.update_word)
    }

    /// The file is an online tier's: a `BEGIN;` … `COMMIT;` wrapper is refused, not
    /// skipped (`wrapper.rs`).
    pub(crate) fn online_wrappers(&mut self, online: bool) {
        self.wrappers.online = online;
    }

    /// Once a file showed the mark of standard_conforming_strings off (`\'` closing a
    /// `'…'` constant), a problem at or after that line says so (with that legacy
    /// setting the backslash escapes the quote, and everything after reads differently):
    /// what to add to the message of a problem at `line`.
    pub(crate) fn legacy_hint(&self, line: usize) -> Option<String> {
        match self.legacy_quote {
            Some(at) if at <= line => {
                let line = at;
                Some(format!(" (this looks like a file written for standard_conforming_strings = off, as pg_dump wrote before PostgreSQL 9.1: line {line} has `\\'` inside a '…' string, which only that legacy setting reads as an escaped quote; airlock reads every file with it on, as PostgreSQL has by default since 9.1. Dump the database again with a current pg_dump, or write such strings as 'O''Reilly' or E'O\\'Reilly')"))
            }
            _ => None,
        }
    }

    /// Feed the next bytes of the file (any split, including inside a UTF-8 character).
    /// A UTF-8 byte-order mark at the very start is dropped, as psql drops it.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        let Some(head) = &mut self.head else {
            return self.feed_text(bytes);
        };
        let take = (BOM.len() - head.len()).min(bytes.len());
        head.extend_from_slice(&bytes[..take]);
        if head.len() < BOM.len() && BOM.starts_with(head) {
            return;
        }
        let head = self.head.take().expect("head");
        if head == BOM {
            self.offset = BOM.len() as u64;
            if self.mode == Mode::Script {
                self.events.push(Event::Skip { end: self.offset });
                self.events.push(Event::Note {
                    line: 1,
                    message:
                        "starts with a UTF-8 byte-order mark, which is skipped (as psql skips it)"
                            .into(),
                });
            } else {
                self.problem(1, "starts with a UTF-8 byte-order mark: a gate or probe is one query, run as it is. Remove the mark (save the file as UTF-8 without BOM)".into());
                self.stopped = true;
            }
        } else {
            self.feed_text(&head);
        }
        self.feed_text(&bytes[take..]);
    }

    fn feed_text(&mut self, bytes: &[u8]) {
        if self.stopped {
            return;
        }
        let carried;
        let bytes = if self.utf8_carry.is_empty() {
            bytes
        } else {
            let mut v = std::mem::take(&mut self.utf8_carry);
            v.extend_from_slice(bytes);
            carried = v;
            &carried[..]
        };
        // std's errors, at SIMD speed (a piece often ends inside a character).
        let valid = match simdutf8::compat::from_utf8(bytes) {
            Ok(_) => bytes.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                let upto = e.valid_up_to();
                self.lex_bytes(&bytes[..upto]);
                let line = self.line;
                self.problem(line, "is not UTF-8 (SQL files must be UTF-8)".into());
                self.stopped = true;
                return;
            }
        };
        self.lex_bytes(&bytes[..valid]);
        self.utf8_carry.extend_from_slice(&bytes[valid..]);
    }

    /// Inside COPY data: where the data starts, and where the bytes lexed so far are
    /// certainly data (not the `\.` line), so they can be sent before the end is seen.
    pub fn copy_progress(&self) -> Option<(u64, u64)> {
        (self.lex == Lex::CopyData)
            .then(|| (self.copy_data.start, self.copy_data.safe_end(self.offset)))
    }

    fn lex_bytes(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() && !self.stopped {
            if self.lex == Lex::CopyData {
                let scan = self.copy_data.scan(&bytes[i..], self.offset);
                i += scan.consumed;
                self.offset += scan.consumed as u64;
                self.line += scan.newlines;
                if let Some(done) = scan.done {
                    self.lex = Lex::Normal;
                    self.events.push(Event::CopyData {
                        data_start: self.copy_data.start,
                        data_end: done.data_end,
                        end: done.end,
                    });
                }
                continue;
            }
            // Fast path: a run inside a constant or comment that decides nothing.
            let run = self.quiet_run(&bytes[i..]);
            if run > 0 {
                self.skip(&bytes[i..i + run]);
                i += run;
                continue;
            }
            let token = self.whole_token(&bytes[i..]);
            if token > 0 {
                i += token;
                continue;
            }
            self.step(bytes[i]);
            i += 1;
        }
    }

    /// A token at the start of `rest` read at once, when reading it byte by byte would
    /// end in exactly the same state: the first word of a statement, or a plain string
    /// constant inside DML. How many bytes were read (0: none).
    fn whole_token(&mut self, rest: &[u8]) -> usize {
        #[cfg(test)]
        if self.byte_by_byte {
            return 0;
        }
        if self.lex != Lex::Normal || self.meta.is_some() {
            return 0;
        }
        match self.stmt {
            Stmt::Empty | Stmt::FirstWord => self.word_run(rest),
            Stmt::Known if self.kind == Kind::Dml && rest[0] == b'\'' => self.dml_string(rest),
            Stmt::Known if self.kind == Kind::Dml => self.dml_normal(rest),
            Stmt::Known => 0,
        }
    }

    /// Normal text inside DML up to the next byte that may change the lexer's state,
    /// and on through the `;` that ends the statement into the next one while that is
    /// DML too (a data file's rows, one after the other).
    fn dml_normal(&mut self, rest: &[u8]) -> usize {
        let mut at = 0;
        loop {
            at += self.dml_run(&rest[at..]);
            if rest.get(at) != Some(&b';') {
                return at;
            }
            let boundary = self.dml_boundary(&rest[at..]);
            at += boundary;
            // The next statement's text, when it is DML read as this one was.
            if boundary == 0
                || self.stmt != Stmt::Known
                || self.kind != Kind::Dml
                || self.lex != Lex::Normal
                || self.stopped
            {
                return at;
            }
        }
    }

    /// One run of [`dml_normal`](Self::dml_normal), up to a stop (a `;` among them):
    /// only the parentheses, the current word and the `set_config` watch see it. The
    /// watch is handed only the bytes from an `s`/`S` on while a match is under way;
    /// between, a byte changes nothing of it but whether the last byte was a word byte.
    fn dml_run(&mut self, rest: &[u8]) -> usize {
        let watch = self.watching();
        let mut j = 0;
        if watch && !self.set_config.idle() {
            j = self.watch_busy(rest, 0);
        }
        loop {
            j = if watch {
                DML_SET.find_or_start(&WORD_BYTES, rest, j)
            } else {
                DML_SET.find(rest, j)
            };
            let Some(&b) = rest.get(j) else { break };
            match DML_CLASS[b as usize] {
                DML_STOP => break,
                DML_OPEN | DML_CLOSE => {
                    self.parenthesis(b);
                    j += 1;
                }
                DML_QUOTE => match self.run_string(rest, j, watch) {
                    Some(end) => j = end,
                    None => break,
                },
                // Whitespace that ends a word, as any byte not a word byte; only the
                // lines are counted here (the watch, busy, reads it byte by byte).
                DML_NEWLINE if watch && !self.set_config.idle() => break,
                DML_NEWLINE => {
                    self.line += 1;
                    j += 1;
                }
                // An `s` inside a word starts no `set_config` while the watch is idle:
                // it changes nothing but `prev_word`, which the next `s` and the run's
                // end set from the byte before them.
                _ if watch && j > 0 && is_word_byte(rest[j - 1]) && self.set_config.idle() => {
                    j += 1
                }
                _ if watch => {
                    if j > 0 {
                        self.set_config.after(is_word_byte(rest[j - 1]));
                    }
                    j = self.watch_busy(rest, j);
                }
                _ => j += 1,
            }
        }
        if j == 0 {
            return 0;
        }
        let run = &rest[..j];
        if watch {
            self.set_config.after(is_word_byte(run[j - 1]));
        }
        if self.capturing {
            self.keep_bytes(run);
        }
        self.offset += j as u64;
        // Only the first bytes and the length of the word the run ends in matter.
        let tail = run.iter().rev().take_while(|&&b| is_word_byte(b)).count();
        if tail < j {
            self.end_word(true);
        }
        for &b in &run[j - tail..][..tail.min(WORD_BUF + 1)] {
            self.word_byte(b);
        }
        self.word_len += tail.saturating_sub(WORD_BUF + 1);
        j
    }

    /// The `;` at `rest[0]` that ends a DML statement, when reading it changes nothing
    /// but that (outside parentheses, the `set_config` watch idle; DML keeps its text
    /// only while `keep_dml`, and the statement takes it before the `;`), and
    /// the whitespace and first word of the statement after it, up to the blank that
    /// ends that word: a data file's row after row, read without a byte-by-byte step
    /// between them. How many bytes were read (0: none).
    fn dml_boundary(&mut self, rest: &[u8]) -> usize {
        if self.paren_depth != 0
            || self.begin_depth != 0
            || (self.watching() && !self.set_config.idle())
        {
            return 0;
        }
        // As `step(b';')`: the watch, idle, is reset when the statement ends.
        self.end_statement(true);
        self.offset += 1;
        if self.lex != Lex::Normal || self.stopped || self.stmt != Stmt::Empty {
            return 1;
        }
        // Blanks between statements (Normal's whitespace: nothing but lines).
        let mut i = 1;
        while let Some(&b) = rest.get(i).filter(|&&b| is_blank(b)) {
            if b == b'\n' {
                self.line += 1;
            }
            self.offset += 1;
            i += 1;
        }
        let word = self.word_run(&rest[i..]);
        if word == 0 || self.stopped {
            return i;
        }
        i += word;
        // The blank after the first word ends it: the statement's kind is decided.
        if rest.get(i) == Some(&b' ') {
            self.end_word(true);
            if self.capturing {
                self.keep_bytes(b" ");
            }
            self.offset += 1;
            i += 1;
        }
        i
    }

    /// The `'…'` constant at `rest[j]`, inside a run of DML text, when reading it at once
    /// ends as [`dml_string`](Self::dml_string) would (a plain constant after a byte
    /// that is no word byte, so no `E'…'`, on one line, no backslash before its close,
    /// followed by a byte that surely ends it): where the run goes on (None: it stops
    /// at the quote). Inside a constant only its end matters; the run's end settles
    /// the word and the watch.
    fn run_string(&mut self, rest: &[u8], j: usize, watch: bool) -> Option<usize> {
        if j == 0
            || is_word_byte(rest[j - 1])
            || self.capturing
            || (watch && !self.set_config.idle())
        {
            return None;
        }
        let close = plain_constant_end(rest, j)?;
        self.opened_at = self.line;
        self.e_string = false;
        Some(close + 1)
    }

    /// The watch reads `rest` from `j` on, byte by byte, while it is busy (at least one
    /// byte, unless it is a stop, a quote or a newline): where it stopped.
    fn watch_busy(&mut self, rest: &[u8], mut j: usize) -> usize {
        while j < rest.len()
            && !matches!(
                DML_CLASS[rest[j] as usize],
                DML_STOP | DML_QUOTE | DML_NEWLINE
            )
        {
            let b = rest[j];
            self.set_config.byte(b, true, is_word_byte(b), self.line);
            self.parenthesis(b);
            j += 1;
            if self.set_config.idle() {
                break;
            }
        }
        j
    }

    /// psql's rule: a `;` inside parentheses ends nothing (a `)` too many is ignored,
    /// so the count goes in order). Brackets are counted for `:name` (`bracket_depth`).
    fn parenthesis(&mut self, b: u8) {
        match b {
            b'(' => self.paren_depth += 1,
            b')' => self.paren_depth = self.paren_depth.saturating_sub(1),
            b'[' => self.bracket_depth += 1,
            b']' => self.bracket_depth = self.bracket_depth.saturating_sub(1),
            _ => {}
        }
    }

    /// The ASCII letters, digits and `_` that start `rest`, in a statement whose first
    /// word is not read yet: only the word's first bytes and length matter (and the
    /// statement's text is kept from its first byte).
    fn word_run(&mut self, rest: &[u8]) -> usize {
        let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let len = rest.iter().position(|b| !plain(b)).unwrap_or(rest.len());
        if len < 2 {
            return 0;
        }
        let run = &rest[..len];
        // The first byte as `word_byte` reads it (it may start the word, and the
        // statement); the rest only extend it.
        self.word_byte(run[0]);
        let from = self.word_len.min(WORD_BUF);
        for (slot, &b) in self.word[from..].iter_mut().zip(&run[1..]) {
            *slot = b.to_ascii_uppercase();
        }
        self.word_len += len - 1;
        if self.capturing {
            self.keep_bytes(run);
        }
        self.offset += len as u64;
        len
    }

    /// A `'…'` constant in DML, on one line, with no `''` in it and followed by a byte
    /// that ends it for certain (`,`, `)`, `;` or `:`), read at once: DML keeps no text,
    /// and inside a constant nothing but its end matters. Not an `E'…'` constant
    /// (backslashes), and not while a `set_config` match is under way.
    fn dml_string(&mut self, rest: &[u8]) -> usize {
        if rest[0] != b'\''
            || self.capturing
            || (self.in_word && self.word_len == 1 && self.word[0] == b'E')
            || (self.watching() && !self.set_config.idle())
        {
            return 0;
        }
        let Some(close) = plain_constant_end(rest, 0) else {
            return 0;
        };
        // As `normal` at the opening quote and the `Str` state up to the closing one.
        self.end_word(true);
        self.opened_at = self.line;
        self.e_string = false;
        if self.watching() {
            self.set_config.quoted(&rest[..=close], self.line);
        }
        self.offset += close as u64 + 1;
        close + 1
    }

    /// How many leading bytes of `rest` change no state (never a newline: lines are
    /// counted one byte at a time).
    fn quiet_run(&self, rest: &[u8]) -> usize {
        // Generic, not `dyn`: the byte test must inline into the scan.
        fn upto(rest: &[u8], stop: impl Fn(u8) -> bool) -> usize {
            rest.iter().position(|&c| stop(c)).unwrap_or(rest.len())
        }
        match self.lex {
            Lex::Str if self.e_string => upto(rest, |c| c == b'\\' || c == b'\'' || c == b'\n'),
            Lex::Str => upto(rest, |c| c == b'\'' || c == b'\n'),
            Lex::LineComment => upto(rest, |c| c == b'\n' || c == b'\r'),
            Lex::Block if self.comment_prev == 0 => {
                upto(rest, |c| c == b'*' || c == b'/' || c == b'\n')
            }
            Lex::Dollar if self.dollar_matched == 0 => upto(rest, |c| c == b'$' || c == b'\n'),
            Lex::Ident => upto(rest, |c| c == b'"' || c == b'\n'),
            _ => 0,
        }
    }

    /// Bytes that change no state (inside a constant or comment).
    fn skip(&mut self, run: &[u8]) {
        if self.lex == Lex::Str {
            self.str_backslash = run.last() == Some(&b'\\');
        }
        if self.capturing {
            self.keep_bytes(run);
        }
        if self.watching() {
            self.set_config.quoted(run, self.line);
        }
        self.offset += run.len() as u64;
    }

    fn step(&mut self, b: u8) {
        if self.watching() {
            let normal = self.lex == Lex::Normal;
            self.set_config.byte(b, normal, is_word_byte(b), self.line);
        }
        self.lex_byte(b);
        if self.capturing {
            self.keep_bytes(&[b]);
        }
        if b == b'\n' {
            self.line += 1;
        }
        self.offset += 1;
    }

    /// Lint of a script, inside DML: where `set_config` calls are looked for.
    fn watching(&self) -> bool {
        self.keep == Keep::NonDml
            && self.mode == Mode::Script
            && self.kind == Kind::Dml
            && self.stmt == Stmt::Known
    }

    /// Judge the `set_config` calls of the statement that just ended.
    fn judge_set_config(&mut self) {
        if !self.set_config.saw_calls() {
            self.set_config = Default::default();
            return;
        }
        for (line, message) in self.set_config.finish() {
            self.problem(line, message);
        }
    }

    fn keep_bytes(&mut self, bytes: &[u8]) {
        if self.keep == Keep::Copy
            && self.kind == Kind::Other
            && self.capture.len() + bytes.len() > wrapper::MAX_WRAPPER
        {
            // Kept only to recognise a wrapper, and too long to be one.
            self.capturing = false;
            self.capture = Vec::new();
        } else if self.capture.len() + bytes.len() > MAX_STATEMENT {
            self.too_long = true;
            self.capturing = false;
            self.capture = Vec::new();
        } else {
            self.capture.extend_from_slice(bytes);
        }
    }

    /// The current byte begins a token (`prefix`: the byte before it does too): the
    /// statement starts here if it had not started yet.
    fn significant(&mut self, prefix: Option<u8>) {
        if self.stmt == Stmt::Empty {
            self.stmt = Stmt::FirstWord;
            self.kind = Kind::Other;
            self.stmt_line = self.line;
            self.stmt_start = self.offset - u64::from(prefix.is_some());
            self.merge = false;
            self.txn_word = false;
            self.capturing = true;
            self.too_long = false;
            if let Some(p) = prefix {
                self.capture.push(p);
            }
        }
    }

    /// The statement's first token is not a word.
    fn first_token_not_a_word(&mut self) {
        if self.stmt == Stmt::FirstWord && !self.in_word {
            self.decide(Kind::Other);
        }
    }

    fn decide(&mut self, kind: Kind) {
        self.stmt = Stmt::Known;
        self.kind = kind;
        let keep = match kind {
            Kind::Dml => self.keeps_this_dml(),
            Kind::Copy => true,
            Kind::Other => self.keep == Keep::NonDml || self.txn_word,
        };
        if !keep {
            self.capturing = false;
            self.capture.clear();
        }
    }

    fn is_word(&self, keyword: &[u8]) -> bool {
        self.word_len == keyword.len() && &self.word[..keyword.len()] == keyword
    }

    /// The end of a word; `identifier`: false for the `E` of `E'…'` and its kin, which
    /// scan.l reads as part of the string.
    fn end_word(&mut self, identifier: bool) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        if self.stmt == Stmt::FirstWord {
            self.merge = self.is_word(b"MERGE");
            self.update_word = self.is_word(b"UPDATE");
            self.txn_word = [&b"BEGIN"[..], b"START", b"COMMIT", b"END"]
                .iter()
                .any(|k| self.is_word(k));
            let kind = if self.word_len <= 6 && DML.iter().any(|d| self.is_word(d)) {
                Kind::Dml
            } else if self.is_word(b"COPY") {
                Kind::Copy
            } else {
                Kind::Other
            };
            self.decide(kind);
        }
        // DML never opens a block: psql's heuristic needs CREATE first.
        if self.kind == Kind::Dml || !identifier || self.word_digit {
            return;
        }
        self.identifier();
    }

    /// psqlscan.l's `{identifier}` rule: track `CREATE [OR REPLACE] FUNCTION|PROCEDURE`
    /// and, in those, BEGIN/CASE … END outside parentheses.
    fn identifier(&mut self) {
        if self.ident_count == 0 {
            self.idents = [0; 4];
        }
        let slot = self.ident_count as usize;
        if slot < self.idents.len()
            && [&b"CREATE"[..], b"FUNCTION", b"PROCEDURE", b"OR", b"REPLACE"]
                .iter()
                .any(|k| self.is_word(k))
        {
            self.idents[slot] = self.word[0];
        }
        self.ident_count = self.ident_count.saturating_add(1);
        let routine = self.idents[0] == b'C'
            && (matches!(self.idents[1], b'F' | b'P')
                || (self.idents[1] == b'O'
                    && self.idents[2] == b'R'
                    && matches!(self.idents[3], b'F' | b'P')));
        if routine && self.paren_depth == 0 {
            if self.is_word(b"BEGIN") {
                self.begin_depth += 1;
            } else if self.is_word(b"CASE") {
                // CASE also ends with END; it only matters inside a BEGIN.
                if self.begin_depth >= 1 {
                    self.begin_depth += 1;
                }
            } else if self.is_word(b"END") {
                self.begin_depth = self.begin_depth.saturating_sub(1);
            }
        }
    }

    fn word_byte(&mut self, b: u8) {
        if !self.in_word {
            self.in_word = true;
            self.word_len = 0;
            self.word_digit = b.is_ascii_digit();
            if self.stmt == Stmt::Empty {
                self.significant(None);
            }
        }
        if self.word_len < WORD_BUF {
            self.word[self.word_len] = b.to_ascii_uppercase();
        }
        self.word_len += 1;
    }

    /// The `;` that ends a statement (`semi`), or the end of the file.
    fn end_statement(&mut self, semi: bool) {
        self.end_word(true);
        self.paren_depth = 0;
        self.bracket_depth = 0;
        self.begin_depth = 0;
        self.ident_count = 0;
        if self.stmt == Stmt::Empty {
            return;
        }
        self.judge_set_config();
        #[cfg(test)]
        self.ends.push(self.offset as usize);
        self.last_line = Some(self.stmt_line);
        let kind = self.kind;
        if kind == Kind::Dml && self.offset - self.stmt_start > MAX_STATEMENT as u64 {
            self.long_dml = true;
        }
        if kind == Kind::Dml
            && !self.merge
            && self.keep == Keep::NonDml
            && !self.dml_events
            && !self.keeps_this_dml()
        {
            // Lint judges no DML (but MERGE's version): nothing to report.
            self.stmt = Stmt::Empty;
            self.kind = Kind::Other;
            self.too_long = false;
            return;
        }
        let text = self.capturing.then(|| std::mem::take(&mut self.capture));
        self.capture.clear();
        if self.keep == Keep::NonDml && kind == Kind::Other && !self.keep_dml {
            // Decided here, not by lint's reader, so that it holds from the next
            // statement on whatever the chunking.
            self.keep_dml = text
                .as_deref()
                .is_some_and(crate::enum_values::may_add_value);
        }
        self.capturing = false;
        let mut statement = Statement {
            end: self.offset,
            semi,
            line: self.stmt_line,
            kind,
            text,
            too_long: self.too_long,
            copy_in: false,
            copy_refused: false,
            merge: self.merge,
            psql: std::mem::take(&mut self.stmt_psql),
        };
        self.stmt = Stmt::Empty;
        self.kind = Kind::Other;
        self.too_long = false;
        if self.txn_word && self.mode == Mode::Script && self.wrapper(&statement, semi) {
            return;
        }
        if kind == Kind::Copy && self.mode == Mode::Script {
            let verdict = match &statement.text {
                Some(text) => copy::judge(&String::from_utf8_lossy(text)),
                None => CopyVerdict::Refused(format!(
                    "this COPY statement is longer than {MAX_STATEMENT} bytes"
                )),
            };
            match verdict {
                CopyVerdict::FromStdin if semi => {
                    statement.copy_in = true;
                    self.copy_line = statement.line;
                    self.lex = Lex::CopyRest;
                }
                CopyVerdict::FromStdin => {
                    statement.copy_refused = true;
                    self.problem(
                        statement.line,
                        "COPY … FROM STDIN ends the file without its `;` and data: psql would send no rows".into(),
                    );
                }
                CopyVerdict::Refused(why) => {
                    statement.copy_refused = true;
                    self.problem(statement.line, why);
                }
            }
        }
        self.events.push(Event::Statement(statement));
    }

    /// A statement whose first word may begin or end a transaction: true when it is
    /// one half of a wrapper (skipped, or refused here), so the caller is done with it.
    fn wrapper(&mut self, statement: &Statement, semi: bool) -> bool {
        let wrap = statement.text.as_deref().and_then(wrapper::recognise);
        match self.wrappers.statement(wrap, statement.line) {
            wrapper::Verdict::Statement => false,
            wrapper::Verdict::Skip(note) => {
                self.events.push(Event::Skip {
                    end: statement.end + u64::from(semi),
                });
                match note {
                    Some(wrapper::Said::Note(message)) => self.events.push(Event::Note {
                        line: statement.line,
                        message,
                    }),
                    Some(wrapper::Said::Warning(message)) => self.events.push(Event::Warning {
                        line: statement.line,
                        message,
                    }),
                    None => {}
                }
                true
            }
            wrapper::Verdict::Problem(line, message) => {
                self.problem(line, message);
                true
            }
        }
    }

    fn lex_byte(&mut self, b: u8) {
        match self.lex {
            Lex::Normal => self.normal(b),
            Lex::Dash => {
                if b == b'-' {
                    self.lex = Lex::LineComment;
                } else {
                    self.lex = Lex::Normal;
                    self.significant(Some(b'-'));
                    self.first_token_not_a_word();
                    self.normal(b);
                }
            }
            Lex::Slash => {
                if b == b'*' {
                    self.lex = Lex::Block;
                    self.opened_at = self.line;
                    self.comment_depth = 0;
                    self.comment_prev = 0;
                } else {
                    self.lex = Lex::Normal;
                    self.significant(Some(b'/'));
                    self.first_token_not_a_word();
                    self.normal(b);
                }
            }
            Lex::LineComment => {
                if b == b'\n' || b == b'\r' {
                    self.lex = Lex::Normal;
                }
            }
            Lex::Block => {
                if self.comment_prev == b'/' && b == b'*' {
                    self.comment_depth += 1;
                    self.comment_prev = 0;
                } else if self.comment_prev == b'*' && b == b'/' {
                    if self.comment_depth == 0 {
                        self.lex = Lex::Normal;
                    } else {
                        self.comment_depth -= 1;
                    }
                    self.comment_prev = 0;
                } else {
                    self.comment_prev = b;
                }
            }
            Lex::Str => {
                if b == b'\'' {
                    if self.str_backslash && !self.e_string && self.legacy_quote.is_none() {
                        self.legacy_quote = Some(self.line);
                    }
                    self.lex = Lex::StrQuote;
                } else if b == b'\\' && self.e_string {
                    self.lex = Lex::StrBackslash;
                }
                self.str_backslash = b == b'\\';
            }
            Lex::StrBackslash => self.lex = Lex::Str,
            Lex::StrQuote => {
                if b == b'\'' {
                    self.lex = Lex::Str;
                } else {
                    self.lex = Lex::GapBefore;
                    self.gap(b);
                }
            }
            Lex::GapBefore
            | Lex::GapBeforeDash
            | Lex::GapBeforeComment
            | Lex::GapAfter
            | Lex::GapAfterDash
            | Lex::GapAfterComment => self.gap(b),
            Lex::Ident => {
                if b == b'"' {
                    self.lex = Lex::IdentQuote;
                }
            }
            Lex::IdentQuote => {
                if b == b'"' {
                    self.lex = Lex::Ident;
                } else {
                    self.lex = Lex::Normal;
                    self.normal(b);
                }
            }
            Lex::DollarTag => self.dollar_tag(b),
            Lex::Dollar => self.dollar(b),
            Lex::MetaArgs => self.meta_arg(b),
            Lex::Colon => self.colon(b),
            Lex::CopyRest | Lex::CopyRestDash | Lex::CopyRestComment => self.copy_rest(b),
            Lex::CopyData => unreachable!("COPY data is scanned by lex_bytes"),
        }
    }

    /// Inside `$tag` of a dollar quote's opening delimiter.
    #[inline]
    fn dollar_tag(&mut self, b: u8) {
        let tag_byte = b.is_ascii_alphabetic()
            || b == b'_'
            || b >= 0x80
            || (b.is_ascii_digit() && !self.tag.is_empty());
        if b == b'$' {
            self.lex = Lex::Dollar;
            self.dollar_matched = 0;
        } else if tag_byte && self.tag.len() < MAX_TAG {
            self.tag.push(b);
        } else if tag_byte {
            // Memory stays bounded: no real file has such a tag.
            let line = self.line;
            self.problem(
                line,
                format!("a dollar-quote tag longer than {MAX_TAG} bytes"),
            );
            self.stopped = true;
        } else {
            // `$1` (a parameter) or a stray `$`: not a dollar quote, and no
            // keyword or identifier.
            self.lex = Lex::Normal;
            self.in_word = true;
            self.word_digit = true;
            self.word_len = WORD_BUF + 1;
            self.normal(b);
        }
    }

    /// Inside a dollar-quoted string, looking for its closing `$tag$`.
    #[inline]
    fn dollar(&mut self, b: u8) {
        // The closing delimiter is `$tag$`; the tag holds no `$`, so a mismatch
        // restarts the match at 0, or at 1 when this byte is a `$`.
        let want = if self.dollar_matched == 0 || self.dollar_matched == self.tag.len() + 1 {
            b'$'
        } else {
            self.tag[self.dollar_matched - 1]
        };
        if b == want {
            self.dollar_matched += 1;
            if self.dollar_matched == self.tag.len() + 2 {
                self.lex = Lex::Normal;
            }
        } else {
            self.dollar_matched = usize::from(b == b'$');
        }
    }

    /// The gap after a string constant (scan.l: `quotecontinue`
    /// = `{whitespace_with_newline}{quote}`). Before its newline, the whitespace that
    /// is no newline: `[ \t\f\v]` since PostgreSQL 17 (`non_newline_space`); before,
    /// a vertical tab was no whitespace at all, and the server refuses the text.
    fn gap(&mut self, b: u8) {
        let horiz = matches!(b, b' ' | b'\t' | 0x0b | 0x0c);
        let newline = b == b'\n' || b == b'\r';
        match self.lex {
            Lex::GapBefore if horiz => {}
            Lex::GapBefore if newline => self.lex = Lex::GapAfter,
            Lex::GapBefore if b == b'-' => self.lex = Lex::GapBeforeDash,
            Lex::GapBeforeDash if b == b'-' => self.lex = Lex::GapBeforeComment,
            Lex::GapBeforeComment if newline => self.lex = Lex::GapAfter,
            Lex::GapBeforeComment => {}
            Lex::GapAfter if horiz || newline => {}
            Lex::GapAfter if b == b'\'' => self.lex = Lex::Str, // same constant, same kind
            Lex::GapAfter if b == b'-' => self.lex = Lex::GapAfterDash,
            Lex::GapAfterDash if b == b'-' => self.lex = Lex::GapAfterComment,
            Lex::GapAfterComment if newline => self.lex = Lex::GapAfter,
            Lex::GapAfterComment => {}
            // No continuation: the string ended at its quote. What the gap held was
            // whitespace and comments, which mean the same in Normal; a pending `-`
            // becomes Normal's own `-`.
            Lex::GapBeforeDash | Lex::GapAfterDash => {
                self.lex = Lex::Dash;
                self.lex_byte(b);
            }
            _ => {
                self.lex = Lex::Normal;
                self.normal(b);
            }
        }
    }

    fn normal(&mut self, b: u8) {
        if self.meta.is_some() && self.meta_byte(b) {
            return;
        }
        if is_word_byte(b) {
            if b == b'$' && !self.in_word {
                self.significant(None);
                self.first_token_not_a_word();
                self.opened_at = self.line;
                self.lex = Lex::DollarTag;
                self.tag.clear();
                return;
            }
            self.word_byte(b);
            return;
        }
        // `E'…'`, `B'…'`, `X'…'`, `N'…'`: the letter belongs to the string.
        let prefix = (b == b'\'' && self.in_word && self.word_len == 1).then_some(self.word[0]);
        let literal_prefix = matches!(prefix, Some(b'E' | b'B' | b'X' | b'N'));
        self.end_word(!literal_prefix);
        match b {
            b if is_blank(b) => {}
            b'-' => self.lex = Lex::Dash,
            b'/' => self.lex = Lex::Slash,
            b'\'' => {
                self.significant(None);
                self.first_token_not_a_word();
                self.opened_at = self.line;
                self.e_string = prefix == Some(b'E');
                self.str_backslash = false;
                self.lex = Lex::Str;
            }
            b'"' => {
                self.significant(None);
                self.first_token_not_a_word();
                self.opened_at = self.line;
                self.lex = Lex::Ident;
            }
            b';' => {
                if self.paren_depth == 0 && self.begin_depth == 0 {
                    self.end_statement(true);
                }
            }
            b'(' | b')' | b'[' | b']' => {
                self.significant(None);
                self.first_token_not_a_word();
                self.parenthesis(b);
            }
            b':' => {
                self.significant(None);
                self.first_token_not_a_word();
                self.lex = Lex::Colon;
            }
            b'\\' => {
                self.meta = Some(Meta {
                    line: self.line,
                    name: "\\".into(),
                    at_start: self.stmt == Stmt::Empty,
                    kept: self.capture.len(),
                });
            }
            0 => {
                let line = self.line;
                self.problem(line, "contains a NUL byte".into());
            }
            _ => {
                self.significant(None);
                self.first_token_not_a_word();
            }
        }
    }

    /// A byte after a backslash outside quotes: part of the command's name, or the end
    /// of it (true when the byte was consumed).
    fn meta_byte(&mut self, b: u8) -> bool {
        let Some(meta) = &mut self.meta else {
            return false;
        };
        // psql reads a command name up to a blank or the next backslash.
        if b.is_ascii_graphic() && b != b'\\' && meta.name.len() < 24 {
            meta.name.push(b as char);
            return true;
        }
        self.meta_args.clear();
        if b == b'\n' {
            self.meta_line_end(self.offset + 1);
        } else {
            self.lex = Lex::MetaArgs;
            self.meta_arg(b);
        }
        true
    }

    /// A byte of a meta-command's arguments: psql reads them to the end of the line.
    fn meta_arg(&mut self, b: u8) {
        if b == b'\n' {
            self.lex = Lex::Normal;
            self.meta_line_end(self.offset + 1);
        } else if self.meta_args.len() <= meta::MAX_ARGS {
            self.meta_args.push(b);
        }
    }

    /// The meta-command's line ended at `end` (after its newline, or the end of the
    /// file): skipped with a note, or refused.
    fn meta_line_end(&mut self, end: u64) {
        let meta = self.meta.take().expect("a meta-command");
        let args = String::from_utf8_lossy(&self.meta_args).into_owned();
        let args = args.trim_end_matches('\r');
        let verdict = if self.mode == Mode::Query {
            meta::Verdict::Refuse(format!("psql meta-command `{}` in a gate or probe, which is one query run as it is. Remove it", meta.name))
        } else if self.meta_args.len() > meta::MAX_ARGS {
            meta::Verdict::Refuse(format!(
                "psql meta-command `{}` has a line longer than {} bytes. Remove it",
                meta.name,
                meta::MAX_ARGS
            ))
        } else {
            meta::judge(&meta.name, args)
        };
        match verdict {
            meta::Verdict::Skip(note) if meta.at_start => {
                self.events.push(Event::Skip { end });
                if let Some(message) = note {
                    self.events.push(Event::Note {
                        line: meta.line,
                        message,
                    });
                }
            }
            meta::Verdict::Skip(_) => {
                self.capture.truncate(meta.kept);
                self.stmt_psql = true;
                self.problem(meta.line, format!("psql meta-command `{}` in the middle of a statement (psql would run it with the statement half read); airlock skips it only on a line of its own between statements. Move it, or remove it", meta.name));
            }
            meta::Verdict::Refuse(message) => {
                self.capture.truncate(meta.kept);
                self.stmt_psql = !meta.at_start;
                self.problem(meta.line, message);
            }
        }
    }

    /// The byte after a `:` in Normal text: `::` is a cast; `:name`, `:'name'` and
    /// `:"name"` are psql variable references (a bare `:name` inside brackets is an
    /// array slice, left alone as psql leaves an unset variable).
    fn colon(&mut self, b: u8) {
        self.lex = Lex::Normal;
        if b == b':' {
            return;
        }
        let quoted = b == b'\'' || b == b'"';
        let name = b.is_ascii_alphabetic() || b == b'_' || b >= 0x80;
        if quoted || (name && self.bracket_depth == 0) {
            self.stmt_psql = true;
            let line = self.line;
            self.problem(line, meta::INTERPOLATION.into());
        }
        self.normal(b);
    }

    /// The rest of the line after `COPY … FROM STDIN;`: psql reads the data from the
    /// next line and would run anything else on this one after the data.
    fn copy_rest(&mut self, b: u8) {
        match (self.lex, b) {
            (_, b'\n') => {
                self.lex = Lex::CopyData;
                self.copy_data = DataScan::new(self.offset + 1);
            }
            (Lex::CopyRestComment, _) => {}
            (Lex::CopyRest, b' ' | b'\t' | b'\r' | 0x0b | 0x0c) => {}
            (Lex::CopyRest, b'-') => self.lex = Lex::CopyRestDash,
            (Lex::CopyRestDash, b'-') => self.lex = Lex::CopyRestComment,
            _ => {
                let line = self.line;
                self.problem(
                    line,
                    "nothing but a `--` comment may follow `COPY … FROM STDIN;` on its line: the data starts on the next line".into(),
                );
                self.lex = Lex::CopyRestComment;
            }
        }
    }

    /// End of the file: the last statement, and anything left open.
    pub(crate) fn finish(&mut self) {
        if let Some(head) = self.head.take() {
            self.feed_text(&head);
        }
        if self.stopped {
            return;
        }
        if !self.utf8_carry.is_empty() {
            let line = self.line;
            self.problem(line, "is not UTF-8 (SQL files must be UTF-8)".into());
            self.stopped = true;
            return;
        }
        if self.meta.is_some() {
            // The command's line ends with the file.
            if self.lex == Lex::Normal {
                self.meta_args.clear();
            }
            self.lex = Lex::Normal;
            self.meta_line_end(self.offset);
        }
        let open = match self.lex {
            Lex::Str | Lex::StrBackslash => Some("string constant"),
            Lex::Ident => Some("quoted identifier"),
            Lex::Block => Some("/* comment"),
            Lex::Dollar | Lex::DollarTag => Some("dollar-quoted string"),
            Lex::Dash => {
                self.significant(Some(b'-'));
                self.first_token_not_a_word();
                None
            }
            Lex::Slash => {
                self.significant(Some(b'/'));
                self.first_token_not_a_word();
                None
            }
            Lex::Colon => {
                self.lex = Lex::Normal;
                None
            }
            Lex::CopyRest | Lex::CopyRestDash | Lex::CopyRestComment => {
                self.opened_at = self.copy_line;
                Some("COPY data (no `\\.` line ends it)")
            }
            Lex::CopyData => {
                if let Some(done) = self.copy_data.finish(self.offset) {
                    self.events.push(Event::CopyData {
                        data_start: self.copy_data.start,
                        data_end: done.data_end,
                        end: done.end,
                    });
                    None
                } else {
                    self.opened_at = self.copy_line;
                    Some("COPY data (no `\\.` line ends it)")
                }
            }
            _ => None,
        };
        if let Some(what) = open {
            let line = self.opened_at;
            self.problem(
                line,
                format!("unterminated {what}: the server would refuse the whole file"),
            );
            self.stopped = true;
        } else {
            self.end_statement(false);
            if let Some((line, message)) = self.wrappers.finish() {
                self.problem(line, message);
            }
        }
    }

    /// Offset of the end of what was fed.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod byte_sets {
    use super::*;

    /// The tables the run scans with say what the byte rules say.
    #[test]
    fn the_run_tables_agree_with_the_byte_rules() {
        for b in 0..=255u8 {
            assert_eq!(WORD_BYTES.contains(b), is_word_byte(b), "{b:#x}");
            let class = DML_CLASS[b as usize];
            assert_eq!(DML_SET.contains(b), class != 0 && class != DML_S, "{b:#x}");
            assert_eq!(DML_SET.is_start(b), class == DML_S, "{b:#x}");
        }
    }
}
