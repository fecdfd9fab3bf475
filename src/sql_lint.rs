//! SQL classification: a streaming lexer for tier files, then one of two classifiers
//! for what it finds: PostgreSQL's own parser (`parser.rs`, the `pg-parser` build) or a
//! token classifier that needs no libclang to build (`tokens.rs`, the default build).
//!
//! Invariant: a gate or probe file passes only if it is exactly one plain read-only
//! query (SELECT / VALUES / WITH without data-modifying parts, no SELECT INTO, no row
//! locks, no `set_config`); a tier file passes only if every statement can run inside
//! the apply transaction and none ends it. Both are checked at pack time and again
//! before anything runs. The token classifier never accepts what the parser refuses
//! for what a statement does; it refuses whatever it cannot prove (differential test
//! in `tokens.rs`).

#[cfg(feature = "pg-parser")]
mod parser;
mod tokens;

use std::io::{self, Read};

/// Which classifier judges gates, probes and non-DML tier statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classifier {
    /// PostgreSQL's own parser (libpg_query): the full check.
    #[cfg(feature = "pg-parser")]
    Parser,
    /// The token classifier: fails closed on anything it cannot prove.
    Tokens,
}

impl Classifier {
    /// The classifier this build uses.
    #[cfg(feature = "pg-parser")]
    pub const BUILD: Classifier = Classifier::Parser;
    /// The classifier this build uses.
    #[cfg(not(feature = "pg-parser"))]
    pub const BUILD: Classifier = Classifier::Tokens;

    /// How `airlock --version` and refusals name it.
    pub fn describe(self) -> &'static str {
        match self {
            #[cfg(feature = "pg-parser")]
            Classifier::Parser => "PostgreSQL parser (pg-parser build)",
            Classifier::Tokens => "token classifier (default build, without pg-parser)",
        }
    }

    fn query_problems(self, sql: &str, role: SqlRole) -> Vec<(usize, String)> {
        match self {
            #[cfg(feature = "pg-parser")]
            Classifier::Parser => parser::query_problems(sql, role),
            Classifier::Tokens => tokens::query_problems(sql, role),
        }
    }

    fn script_problems(self, sql: &str, line: usize) -> Vec<(usize, String)> {
        match self {
            #[cfg(feature = "pg-parser")]
            Classifier::Parser => parser::script_problems(sql, line),
            Classifier::Tokens => tokens::script_problems(sql, line),
        }
    }
}

/// What a file is used for decides which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlRole {
    /// One read-only statement answering `ready [, reason]`.
    Gate,
    /// One read-only statement answering `(key, value)` rows.
    Probe,
    /// Any number of statements, all transaction-safe (tiers and rollback files).
    Script,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SqlProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// psql meta-commands (`\set`, `\i`, `\connect`…) are client-side and never reach the
/// server; a bundle that relies on them would run differently under airlock.
fn meta_commands(file: &str, sql: &str) -> Vec<SqlProblem> {
    sql.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with('\\'))
        .map(|(i, l)| SqlProblem {
            file: file.into(),
            line: i + 1,
            message: format!(
                "psql meta-command `{}` is not SQL; airlock sends files to the server as they are. Remove it (use [params] for variables)",
                l.split_whitespace().next().unwrap_or("\\")
            ),
        })
        .collect()
}

/// Check one SQL file for its role. Returns every problem found (empty = clean).
pub fn check(file: &str, sql: &str, role: SqlRole) -> Vec<SqlProblem> {
    match role {
        SqlRole::Gate | SqlRole::Probe => check_query(file, sql, role),
        SqlRole::Script => {
            let mut c = ScriptChecker::new(file);
            c.feed(sql.as_bytes());
            c.finish()
        }
    }
}

/// Gates and probes are small; more than this is refused unread.
pub const MAX_QUERY_FILE: u64 = 1 << 20;

/// [`check`] reading from `r`: scripts stream through in bounded memory whatever their
/// size; gates and probes are read whole (up to [`MAX_QUERY_FILE`]).
pub fn check_reader(file: &str, r: &mut dyn Read, role: SqlRole) -> io::Result<Vec<SqlProblem>> {
    let problem = |message: String| SqlProblem {
        file: file.into(),
        line: 1,
        message,
    };
    match role {
        SqlRole::Gate | SqlRole::Probe => {
            let mut bytes = Vec::new();
            r.take(MAX_QUERY_FILE + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_QUERY_FILE {
                return Ok(vec![problem(format!(
                    "is larger than {MAX_QUERY_FILE} bytes; a gate or probe is one query"
                ))]);
            }
            Ok(match String::from_utf8(bytes) {
                Ok(sql) => check_query(file, &sql, role),
                Err(_) => vec![problem("SQL files must be UTF-8".into())],
            })
        }
        SqlRole::Script => {
            let mut c = ScriptChecker::new(file);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = r.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                c.feed(&buf[..n]);
                if c.gave_up() {
                    break;
                }
            }
            Ok(c.finish())
        }
    }
}

/// One read-only query (gates and probes): the whole text through the build's
/// classifier.
fn check_query(file: &str, sql: &str, role: SqlRole) -> Vec<SqlProblem> {
    check_query_with(file, sql, role, Classifier::BUILD)
}

fn check_query_with(file: &str, sql: &str, role: SqlRole, how: Classifier) -> Vec<SqlProblem> {
    let problems = meta_commands(file, sql);
    if !problems.is_empty() {
        return problems;
    }
    how.query_problems(sql, role)
        .into_iter()
        .map(|(line, message)| SqlProblem {
            file: file.into(),
            line,
            message,
        })
        .collect()
}

/// First keywords of statements that are data manipulation whatever follows: they can
/// neither end the transaction nor refuse to run inside one, so the parser need not
/// see them again (the server parses the whole file before running any of it).
const DML: [&[u8]; 8] = [
    b"SELECT", b"INSERT", b"UPDATE", b"DELETE", b"MERGE", b"VALUES", b"TABLE", b"WITH",
];

/// Where the lexer is, following PostgreSQL's scan.l (standard_conforming_strings on).
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
}

/// What the current statement is, as far as its first token tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stmt {
    /// No token yet (only whitespace and comments).
    Empty,
    /// The first token is a word still being read (captured in case it is not DML).
    FirstWord,
    /// Data manipulation: nothing to capture.
    Dml,
    /// Anything else: captured whole for the parser.
    Parse,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Bytes that may change the lexer's state in Normal (everything else only ends or
/// continues a word); a newline is here so lines are counted one by one.
const NORMAL_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let stops = b"'\"-/;\\$\n\0";
    let mut i = 0;
    while i < stops.len() {
        t[stops[i] as usize] = true;
        i += 1;
    }
    t
};

/// Streams a tier or rollback file through a PostgreSQL-faithful lexer: statement
/// boundaries, line numbers, psql backslashes outside quotes, unterminated constructs;
/// every statement that is not plain DML is judged by the build's [`Classifier`].
/// Memory: the largest non-DML statement, whatever the file's size.
pub struct ScriptChecker<'f> {
    file: &'f str,
    classifier: Classifier,
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
    stmt: Stmt,
    stmt_line: usize,
    /// Every byte since the last `;` (not kept for DML); the statement's own text
    /// starts at `sig_offset`, after leading whitespace and comments.
    capture: Vec<u8>,
    sig_offset: usize,
    /// The current word, uppercased (first 8 bytes), its length, and whether it is one.
    word: [u8; 8],
    word_len: usize,
    in_word: bool,
    /// In a captured CREATE statement: BEGIN/CASE … END nesting, so that the `;` of a
    /// `BEGIN ATOMIC … END` body does not end it (as psql does).
    create_depth: u32,
    stmt_is_create: bool,
    utf8_carry: Vec<u8>,
    /// Invalid UTF-8 seen: nothing after it can be judged.
    stopped: bool,
    /// Offset of the byte being processed, from the start of the file.
    offset: usize,
    /// Where each statement ended (its `;`, or the end of the file); kept for the
    /// differential test against PostgreSQL's own splitter.
    #[cfg(test)]
    ends: Vec<usize>,
    /// A backslash outside quotes: its line and the command name read so far.
    meta: Option<(usize, String)>,
    problems: Vec<SqlProblem>,
}

/// Enough problems to act on; a generated file with a systematic mistake stops here.
const MAX_PROBLEMS: usize = 50;

impl<'f> ScriptChecker<'f> {
    pub fn new(file: &'f str) -> Self {
        Self::with_classifier(file, Classifier::BUILD)
    }

    /// A checker judging with `classifier` (both exist in the pg-parser build, for the
    /// differential test).
    pub fn with_classifier(file: &'f str, classifier: Classifier) -> Self {
        ScriptChecker {
            file,
            classifier,
            lex: Lex::Normal,
            e_string: false,
            comment_depth: 0,
            comment_prev: 0,
            tag: Vec::new(),
            dollar_matched: 0,
            line: 1,
            opened_at: 1,
            stmt: Stmt::Empty,
            stmt_line: 1,
            capture: Vec::new(),
            sig_offset: 0,
            word: [0; 8],
            word_len: 0,
            in_word: false,
            create_depth: 0,
            stmt_is_create: false,
            utf8_carry: Vec::new(),
            stopped: false,
            offset: 0,
            #[cfg(test)]
            ends: Vec::new(),
            meta: None,
            problems: Vec::new(),
        }
    }

    /// True once there are enough problems to stop reading.
    pub fn gave_up(&self) -> bool {
        self.stopped || self.problems.len() >= MAX_PROBLEMS
    }

    fn problem(&mut self, line: usize, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(SqlProblem {
                file: self.file.into(),
                line,
                message,
            });
        }
    }

    /// Feed the next bytes of the file (any split, including inside a UTF-8 character).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.gave_up() {
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
        let valid = match std::str::from_utf8(bytes) {
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

    fn lex_bytes(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            // Fast path: a run inside a constant or comment that decides nothing.
            let run = self.quiet_run(&bytes[i..]);
            if run > 0 {
                self.skip(&bytes[i..i + run]);
                i += run;
                continue;
            }
            self.step(bytes[i]);
            i += 1;
        }
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
            // Inside DML only the word state matters, and the run's tail tells it.
            Lex::Normal if self.stmt == Stmt::Dml && self.meta.is_none() => {
                upto(rest, |c| NORMAL_STOP[c as usize])
            }
            _ => 0,
        }
    }

    /// Bytes that change no state (inside a constant or comment), or, in Normal within
    /// DML, only the current word.
    fn skip(&mut self, run: &[u8]) {
        if self.stmt != Stmt::Dml {
            self.capture.extend_from_slice(run);
        }
        self.offset += run.len();
        if self.lex == Lex::Normal {
            let tail = run.iter().rev().take_while(|&&b| is_word_byte(b)).count();
            if tail < run.len() {
                self.end_word();
                self.in_word = false;
            }
            // Only "one byte" and "at most 8 bytes" matter about a word's length.
            for &b in &run[run.len() - tail..][..tail.min(9)] {
                self.word_byte(b);
            }
        }
    }

    fn step(&mut self, b: u8) {
        if self.stmt != Stmt::Dml {
            self.capture.push(b);
        }
        self.lex_byte(b);
        if b == b'\n' {
            self.line += 1;
        }
        self.offset += 1;
    }

    /// The last `back` captured bytes begin a token: the statement starts there if it
    /// had not started yet.
    fn significant(&mut self, back: usize) {
        if self.stmt == Stmt::Empty {
            self.stmt = Stmt::Parse;
            self.stmt_line = self.line;
            self.sig_offset = self.capture.len().saturating_sub(back);
        }
    }

    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        let w = &self.word[..self.word_len.min(8)];
        if self.stmt == Stmt::FirstWord {
            if self.word_len <= 8 && DML.contains(&w) {
                self.stmt = Stmt::Dml;
                self.capture.clear();
            } else {
                self.stmt = Stmt::Parse;
                self.stmt_is_create = self.word_len == 6 && w == b"CREATE";
            }
        } else if self.stmt == Stmt::Parse && self.stmt_is_create {
            if (self.word_len == 5 && w == b"BEGIN") || (self.word_len == 4 && w == b"CASE") {
                self.create_depth += 1;
            } else if self.word_len == 3 && w == b"END" {
                self.create_depth = self.create_depth.saturating_sub(1);
            }
        }
    }

    fn word_byte(&mut self, b: u8) {
        if !self.in_word {
            self.in_word = true;
            self.word_len = 0;
            if self.stmt == Stmt::Empty {
                self.significant(1);
                self.stmt = Stmt::FirstWord;
            }
        }
        if self.word_len < 8 {
            self.word[self.word_len] = b.to_ascii_uppercase();
        }
        self.word_len += 1;
    }

    /// The `;` that ends a statement (or the end of the file).
    fn end_statement(&mut self) {
        self.end_word();
        #[cfg(test)]
        if self.stmt != Stmt::Empty {
            self.ends.push(self.offset);
        }
        if self.stmt == Stmt::Parse {
            let text = std::mem::take(&mut self.capture);
            self.parse_captured(&text[self.sig_offset.min(text.len())..]);
            self.capture = text;
        }
        self.capture.clear();
        self.sig_offset = 0;
        self.stmt = Stmt::Empty;
        self.stmt_is_create = false;
        self.create_depth = 0;
    }

    fn parse_captured(&mut self, text: &[u8]) {
        let line = self.stmt_line;
        let Ok(sql) = std::str::from_utf8(text) else {
            self.problem(line, "is not UTF-8 (SQL files must be UTF-8)".into());
            return;
        };
        if sql.contains('\0') {
            self.problem(line, "contains a NUL byte".into());
            return;
        }
        for (at_line, message) in self.classifier.script_problems(sql, line) {
            self.problem(at_line, message);
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
                    self.significant(2);
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
                    self.significant(2);
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
                    self.lex = Lex::StrQuote;
                } else if b == b'\\' && self.e_string {
                    self.lex = Lex::StrBackslash;
                }
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
            Lex::DollarTag => {
                let tag_byte = b.is_ascii_alphabetic()
                    || b == b'_'
                    || b >= 0x80
                    || (b.is_ascii_digit() && !self.tag.is_empty());
                if b == b'$' {
                    self.lex = Lex::Dollar;
                    self.dollar_matched = 0;
                } else if tag_byte {
                    self.tag.push(b);
                } else {
                    // `$1` (a parameter) or a stray `$`: not a dollar quote.
                    self.lex = Lex::Normal;
                    self.in_word = true;
                    self.word_len = 9; // never a keyword
                    self.normal(b);
                }
            }
            Lex::Dollar => {
                // The closing delimiter is `$tag$`; the tag holds no `$`, so a mismatch
                // restarts the match at 0, or at 1 when this byte is a `$`.
                let want = if self.dollar_matched == 0 || self.dollar_matched == self.tag.len() + 1
                {
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
        }
    }

    /// The gap after a string constant (scan.l: `quotecontinue`
    /// = `{whitespace_with_newline}{quote}`).
    fn gap(&mut self, b: u8) {
        let horiz = matches!(b, b' ' | b'\t' | 0x0c);
        let newline = b == b'\n' || b == b'\r';
        match self.lex {
            Lex::GapBefore if horiz => {}
            Lex::GapBefore if newline => self.lex = Lex::GapAfter,
            Lex::GapBefore if b == b'-' => self.lex = Lex::GapBeforeDash,
            Lex::GapBeforeDash if b == b'-' => self.lex = Lex::GapBeforeComment,
            Lex::GapBeforeComment if newline => self.lex = Lex::GapAfter,
            Lex::GapBeforeComment => {}
            Lex::GapAfter if horiz || newline || b == 0x0b => {}
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
        if let Some((line, name)) = &mut self.meta {
            if b.is_ascii_alphanumeric() && name.len() < 24 {
                name.push(b as char);
            } else {
                let (line, name) = (*line, std::mem::take(name));
                self.meta = None;
                self.meta_problem(line, &name);
            }
        }
        if is_word_byte(b) {
            if b == b'$' && !self.in_word {
                self.significant(1);
                self.opened_at = self.line;
                self.lex = Lex::DollarTag;
                self.tag.clear();
                return;
            }
            self.word_byte(b);
            return;
        }
        let e_prefix = self.in_word && self.word_len == 1 && self.word[0] == b'E';
        self.end_word();
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {}
            b'-' => self.lex = Lex::Dash,
            b'/' => self.lex = Lex::Slash,
            b'\'' => {
                self.significant(1);
                self.opened_at = self.line;
                self.e_string = e_prefix;
                self.lex = Lex::Str;
            }
            b'"' => {
                self.significant(1);
                self.opened_at = self.line;
                self.lex = Lex::Ident;
            }
            b';' => {
                if self.stmt == Stmt::Parse && self.stmt_is_create && self.create_depth > 0 {
                    return;
                }
                self.end_statement();
            }
            b'\\' => {
                self.significant(1);
                self.meta = Some((self.line, "\\".into()));
            }
            0 => {
                let line = self.line;
                self.problem(line, "contains a NUL byte".into());
            }
            _ => self.significant(1),
        }
    }

    fn meta_problem(&mut self, line: usize, name: &str) {
        self.problem(
            line,
            format!("psql meta-command `{name}` is not SQL; airlock sends files to the server as they are. Remove it (use [params] for variables)"),
        );
    }

    /// End of the file: the last statement, and anything left open.
    pub fn finish(self) -> Vec<SqlProblem> {
        self.finish_with_ends().0
    }

    #[cfg(all(test, feature = "pg-parser"))]
    fn finish_ends(self) -> Vec<usize> {
        self.finish_with_ends().1
    }

    fn finish_with_ends(mut self) -> (Vec<SqlProblem>, Vec<usize>) {
        if self.stopped {
            return (self.problems, Vec::new());
        }
        if let Some((line, name)) = self.meta.take() {
            self.meta_problem(line, &name);
        }
        if !self.utf8_carry.is_empty() {
            let line = self.line;
            self.problem(line, "is not UTF-8 (SQL files must be UTF-8)".into());
        }
        let open = match self.lex {
            Lex::Str | Lex::StrBackslash => Some("string constant"),
            Lex::Ident => Some("quoted identifier"),
            Lex::Block => Some("/* comment"),
            Lex::Dollar | Lex::DollarTag => Some("dollar-quoted string"),
            Lex::Dash | Lex::Slash => {
                self.significant(1);
                None
            }
            _ => None,
        };
        if let Some(what) = open {
            let line = self.opened_at;
            self.problem(
                line,
                format!("unterminated {what}: the server would refuse the whole file"),
            );
        } else {
            self.end_statement();
        }
        #[cfg(test)]
        let ends = std::mem::take(&mut self.ends);
        #[cfg(not(test))]
        let ends = Vec::new();
        (self.problems, ends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str, role: SqlRole) -> bool {
        check("f.sql", sql, role).is_empty()
    }

    #[test]
    fn gates_must_be_one_read_only_query() {
        assert!(ok("SELECT true AS ready, 'x' AS reason;", SqlRole::Gate));
        assert!(ok(
            "WITH a AS (SELECT 1) SELECT count(*) >= 1 AS ready FROM a",
            SqlRole::Gate
        ));
        assert!(ok("VALUES (true)", SqlRole::Gate));
        assert!(!ok("SELECT 1; SELECT 2", SqlRole::Gate));
        assert!(!ok(
            "WITH d AS (DELETE FROM t RETURNING 1) SELECT true",
            SqlRole::Gate
        ));
        assert!(!ok("SELECT * INTO newt FROM t", SqlRole::Gate));
        assert!(!ok("SET transaction_read_only = off", SqlRole::Gate));
        assert!(!ok("RESET transaction_read_only", SqlRole::Gate));
        assert!(!ok(
            "SELECT set_config('transaction_read_only','off',true)",
            SqlRole::Gate
        ));
        assert!(!ok("SELECT nextval('s') > 0 AS ready", SqlRole::Gate));
        assert!(!ok("SELECT 1 FROM t FOR UPDATE", SqlRole::Gate));
        assert!(!ok("COMMIT", SqlRole::Gate));
        assert!(!ok("", SqlRole::Probe));
    }

    #[test]
    fn scripts_refuse_non_transactional_statements_with_line() {
        let sql = "CREATE TABLE a(i int);\n\nCREATE INDEX CONCURRENTLY i ON a(i);\n";
        let p = check("t.sql", sql, SqlRole::Script);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
        for bad in [
            "VACUUM",
            "COMMIT",
            "ROLLBACK",
            "BEGIN",
            "ALTER SYSTEM SET work_mem='1MB'",
            "CREATE DATABASE x",
        ] {
            assert!(!ok(bad, SqlRole::Script), "{bad} should be refused");
        }
        assert!(ok(
            "CREATE TABLE a(i int); INSERT INTO a VALUES (1);",
            SqlRole::Script
        ));
    }

    #[test]
    fn meta_commands_are_named_with_their_line() {
        let p = check("t.sql", "SELECT 1;\n\\set x 1\n", SqlRole::Script);
        assert_eq!(p[0].line, 2);
        assert!(p[0].message.contains("`\\set`"), "{}", p[0].message);
        // Inside a string or a dollar-quoted body a backslash is data.
        assert!(ok(
            "INSERT INTO t VALUES ('\\set');\nDO $$ BEGIN RAISE NOTICE '\\n'; END $$;",
            SqlRole::Script
        ));
    }

    fn lines(sql: &str) -> Vec<(usize, String)> {
        check("t.sql", sql, SqlRole::Script)
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn hidden_semicolons_and_keywords_stay_hidden() {
        // Each of these is one harmless INSERT to PostgreSQL.
        for sql in [
            "INSERT INTO t VALUES ('a; COMMIT; b');",
            "INSERT INTO t VALUES ('it''s; COMMIT');",
            "INSERT INTO t VALUES (E'\\'; COMMIT; --');",
            "INSERT INTO t VALUES ($$; COMMIT;$$);",
            "INSERT INTO t VALUES ($q$ $$; COMMIT; $q$);",
            "INSERT INTO \"we;ird\"\"; COMMIT\" VALUES (1);",
            "INSERT INTO t /* a /* nested; COMMIT; */ still comment; COMMIT */ VALUES (1);",
            "INSERT INTO t VALUES (1) -- ; COMMIT;\n;",
        ] {
            assert_eq!(lines(sql), vec![], "{sql}");
        }
    }

    #[test]
    fn what_postgres_would_run_is_seen() {
        for (sql, line) in [
            ("INSERT INTO t VALUES ('a');\nCOMMIT;", 2),
            // standard_conforming_strings: a backslash does not escape the quote.
            ("INSERT INTO t VALUES ('\\');\n COMMIT; --');", 2),
            // `xe` is an identifier, not an E prefix: the string is a standard one.
            ("SELECT xe'\\';\nCOMMIT; --';", 2),
            // A `$` inside a word is part of it, not a dollar quote.
            ("SELECT a$b$c;\nCOMMIT;\nSELECT 'x$b$';", 2),
            // E'…' continued after a newline keeps its backslash escapes (scan.l
            // quotecontinue): the COMMIT is outside the constant.
            ("SELECT E'a'\n'\\'';\nCOMMIT;", 3),
            ("SELECT E'a' -- gap comment\n  '\\'';\nCOMMIT;", 3),
            // No newline in the gap: two constants, the second a standard one.
            ("SELECT E'a' '\\';\nCOMMIT; --';", 2),
            ("VACUUM;", 1),
            ("SELECT 1;\n\n   CREATE INDEX CONCURRENTLY i ON t(a);", 3),
            ("DROP INDEX CONCURRENTLY i;", 1),
            ("REINDEX DATABASE d;", 1),
            ("DISCARD ALL;", 1),
            ("CLUSTER;", 1),
            ("/* leading\ncomment */ BEGIN;", 2),
        ] {
            let got = lines(sql);
            assert_eq!(got.len(), 1, "{sql}: {got:?}");
            assert_eq!(got[0].0, line, "{sql}: {got:?}");
        }
    }

    #[test]
    fn begin_atomic_bodies_are_one_statement_and_parsed() {
        let f = "CREATE FUNCTION f() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND;\nCOMMIT;\n";
        assert_eq!(lines(f), vec![(6, lines("COMMIT")[0].1.clone())]);
    }

    #[cfg(feature = "pg-parser")]
    #[test]
    fn syntax_errors_in_parsed_statements_are_named() {
        let got = lines("SELECT 1;\nCREATE TABLE (;\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.contains("does not parse"), "{got:?}");
    }

    #[test]
    fn unterminated_constructs_are_named() {
        for (sql, what, line) in [
            (
                "SELECT 1;\nINSERT INTO t VALUES ('oops);\n",
                "string constant",
                2,
            ),
            ("SELECT $x$ never closed", "dollar-quoted", 1),
            ("SELECT 1;\n/* open", "/* comment", 2),
            ("SELECT \"open", "quoted identifier", 1),
        ] {
            let got = lines(sql);
            assert!(
                got.len() == 1 && got[0].0 == line && got[0].1.contains(what),
                "{sql}: {got:?}"
            );
        }
        let p = check("t.sql", "SELECT 1;\0", SqlRole::Script);
        assert!(p[0].message.contains("NUL"));
    }

    #[test]
    fn invalid_utf8_is_refused_and_a_split_character_is_not() {
        let mut c = ScriptChecker::new("t.sql");
        c.feed(b"INSERT INTO t VALUES ('caf\xc3");
        c.feed(b"\xa9');\n");
        assert!(c.finish().is_empty());
        let mut c = ScriptChecker::new("t.sql");
        c.feed(b"SELECT 1;\nINSERT INTO t VALUES ('\xff');");
        let p = c.finish();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 2);
        assert!(p[0].message.contains("UTF-8"));
    }

    #[test]
    fn a_large_data_file_is_checked_in_bounded_memory() {
        let mut c = ScriptChecker::new("big.sql");
        let line = b"INSERT INTO t VALUES (1, 'x; COMMIT', $$y$$, E'\\'');\n";
        for _ in 0..200_000 {
            c.feed(line);
        }
        assert!(c.capture.capacity() < 4096, "DML must not be captured");
        c.feed(b"COMMIT;\n");
        let p = c.finish();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 200_001);
    }

    mod differential {
        //! The lexer must split exactly where PostgreSQL's parser splits, on any text
        //! the parser accepts; and must not depend on how the bytes are chunked.
        use super::super::*;
        use proptest::prelude::*;

        fn content() -> BoxedStrategy<String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("a"),
                    Just(" "),
                    Just(";"),
                    Just("'"),
                    Just("\""),
                    Just("$"),
                    Just("\\"),
                    Just("\n"),
                    Just("-"),
                    Just("--"),
                    Just("/*"),
                    Just("*/"),
                    Just("*"),
                    Just("COMMIT"),
                    Just("é"),
                    Just("$$"),
                    Just("$q$"),
                ],
                0..8,
            )
            .prop_map(|v| v.concat())
            .boxed()
        }

        fn gap() -> BoxedStrategy<String> {
            prop_oneof![
                Just(" "),
                Just("\n"),
                Just(" \t\n  "),
                Just(" -- c;'\n"),
                Just("\n-- c\n "),
                Just("/* c; ' */"),
                Just("\r\n"),
                Just(""),
            ]
            .prop_map(str::to_string)
            .boxed()
        }

        fn literal() -> BoxedStrategy<String> {
            let tags = prop_oneof![Just(""), Just("q"), Just("tag"), Just("x1")];
            prop_oneof![
                content().prop_map(|c| format!("'{}'", c.replace('\'', "''"))),
                content()
                    .prop_map(|c| format!("E'{}'", c.replace('\\', "\\\\").replace('\'', "\\'"))),
                (content(), gap(), content()).prop_map(|(a, g, b)| format!(
                    "E'{}'{g}'{}'",
                    a.replace('\\', "\\\\").replace('\'', "''"),
                    b.replace('\\', "\\\\").replace('\'', "\\'")
                )),
                (content(), gap(), content()).prop_map(|(a, g, b)| format!(
                    "'{}'{g}'{}'",
                    a.replace('\'', "''"),
                    b.replace('\'', "''")
                )),
                (tags, content()).prop_map(|(t, c)| {
                    let close = format!("${t}$");
                    format!("{close}{}{close}", c.replace('$', ""))
                }),
                content().prop_map(|c| format!("\"{}x\"", c.replace('"', "\"\""))),
                Just("1".to_string()),
                Just("a$b".to_string()),
                // `$` inside an identifier never opens a dollar quote.
                Just("a$q$x".to_string()),
                Just("x$$y".to_string()),
            ]
            .boxed()
        }

        fn statement() -> BoxedStrategy<String> {
            prop_oneof![
                (literal(), gap()).prop_map(|(l, g)| format!("SELECT{g} {l}")),
                (literal(), gap(), literal())
                    .prop_map(|(a, g, b)| format!("INSERT INTO t VALUES ({a},{g}{b})")),
                Just("COMMIT".to_string()),
                Just("VACUUM".to_string()),
                literal().prop_map(|l| format!(
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT {l}; SELECT CASE WHEN true THEN 1 END; END"
                )),
                literal().prop_map(|l| format!("DO $body$ BEGIN PERFORM {l}; END $body$")),
            ]
        .boxed()
        }

        fn script() -> BoxedStrategy<String> {
            proptest::collection::vec((statement(), gap(), gap()), 1..6)
                .prop_map(|v| {
                    v.into_iter()
                        .map(|(s, g1, g2)| format!("{g1}{s}{g2};"))
                        .collect::<String>()
                })
                .boxed()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]
            #[cfg(feature = "pg-parser")]
            #[test]
            fn statement_ends_match_postgres(sql in script(), chunk in 1usize..64) {
                if let Some(theirs) = super::super::parser::statement_ends(&sql) {
                    let mut c = ScriptChecker::new("p.sql");
                    for piece in sql.as_bytes().chunks(chunk) {
                        c.feed(piece);
                    }
                    prop_assert_eq!(c.finish_ends(), theirs, "{:?}", sql);
                }
            }

            #[test]
            fn chunking_does_not_change_the_verdict(sql in script(), chunk in 1usize..17) {
                let whole = check("p.sql", &sql, SqlRole::Script);
                let mut c = ScriptChecker::new("p.sql");
                for piece in sql.as_bytes().chunks(chunk) {
                    c.feed(piece);
                }
                prop_assert_eq!(c.finish(), whole);
            }
        }
    }
}
