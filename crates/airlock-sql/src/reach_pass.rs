//! What a tier or rollback file reaches beyond its database, found in lint's one pass
//! over it (lint's `ScriptChecker::reaching`) rather than in a second read through
//! [`reaches_in`](super::reaches_in).
//!
//! Lint's lexer holds the text of every statement that is not plain DML, and PostgreSQL's
//! parser reads those here as `reaches_in` reads them. DML text is not held (holding it
//! is what made the second read slow), so a cheap look at the file's raw bytes
//! ([`NameWatch`]) decides whether any DML statement could name a function that reaches
//! beyond; the lexer says whether one was longer than it could ever hold. When either
//! may be so, or the file had problems (lint refuses it, and the lexer may have stopped
//! early), the pass answers [`Reaches::ReadAgain`] and the caller reads the file through
//! `reaches_in`.
//!
//! Invariant: [`Reaches::Found`] is exactly what `reaches_in` lists for the same bytes,
//! in the same order. The raw-byte test is a superset of `reach.rs`'s
//! `may_call_outside`: every word of a kept statement's text is a whole word of the file
//! (the text is the file's bytes from the statement's first token to its `;`, cut only
//! around a psql meta-command, which lint refuses), so a word that may reach in the text
//! is one in the file.

use super::reach::{by_parser, Reach, AFTER_PG};
use crate::lex::lexer::{Kind, Lexer, Statement};

/// What one pass found a script reaches beyond its database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaches {
    /// Every statement that reaches beyond, as [`reaches_in`](super::reaches_in) lists
    /// them.
    Found(Vec<Reach>),
    /// The pass cannot settle it (a DML statement may name such a function, or was
    /// over [`MAX_STATEMENT`](super::MAX_STATEMENT), or the file had problems): read
    /// the file again with [`reaches_in`](super::reaches_in).
    ReadAgain,
}

/// The reach half of lint's `ScriptChecker`, when it was asked for it.
pub(super) struct ReachPass {
    file: String,
    found: Vec<Reach>,
    watch: NameWatch,
}

impl ReachPass {
    pub(super) fn new(file: &str) -> Self {
        ReachPass {
            file: file.into(),
            found: Vec::new(),
            watch: NameWatch::default(),
        }
    }

    /// The file's next bytes, as they are fed to the lexer.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.watch.feed(bytes);
    }

    /// A statement the lexer reported: one that is not DML is read by the parser as
    /// `reaches_in` reads it; DML is left to the raw-byte watch.
    pub(super) fn statement(&mut self, s: &Statement) {
        if s.kind == Kind::Dml {
            return;
        }
        let Some(sql) = s.text.as_deref().and_then(|t| std::str::from_utf8(t).ok()) else {
            return;
        };
        for (line, statement) in by_parser(sql, s.line) {
            self.found.push(Reach {
                file: self.file.clone(),
                line,
                statement,
            });
        }
    }

    /// The answer, once the lexer has finished the file.
    pub(super) fn finish(self, lexer: &Lexer, had_problems: bool) -> Reaches {
        if self.watch.hit || lexer.long_dml || lexer.stopped || had_problems {
            Reaches::ReadAgain
        } else {
            Reaches::Found(self.found)
        }
    }
}

/// The longest pattern [`hit_in`] looks for (`pg_terminate`, `replication_`).
const LONGEST: usize = 12;

/// Whether a file's bytes hold a word that may name a function that reaches beyond
/// (a superset of `reach.rs`'s `word_may_reach`), streamed: a name may be split
/// between two reads.
#[derive(Default)]
pub(super) struct NameWatch {
    /// The last (up to) [`LONGEST`] bytes seen: where a name cut by a read begins.
    tail: Vec<u8>,
    /// The byte before `tail` (None: `tail` starts the file).
    before: Option<u8>,
    hit: bool,
}

impl NameWatch {
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if self.hit || bytes.is_empty() {
            return;
        }
        // A name that starts in the tail ends within the next LONGEST bytes.
        let mut joint = self.tail.clone();
        joint.extend_from_slice(&bytes[..bytes.len().min(LONGEST)]);
        self.hit = hit_in(&joint, self.before) || hit_in(bytes, self.tail.last().copied());
        if bytes.len() > LONGEST {
            self.before = Some(bytes[bytes.len() - LONGEST - 1]);
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - LONGEST..]);
        } else {
            let mut all = std::mem::take(&mut self.tail);
            all.extend_from_slice(bytes);
            let cut = all.len().saturating_sub(LONGEST);
            if cut > 0 {
                self.before = Some(all[cut - 1]);
            }
            self.tail = all.split_off(cut);
        }
    }

    #[cfg(test)]
    pub(super) fn hit(&self) -> bool {
        self.hit
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `buf` (preceded in the file by `before`; None: it starts the file) holds,
/// wholly, one of: a word starting (in any case) `dblink`, `lo_`, or `pg_` and one of
/// [`AFTER_PG`]; or `replication_` anywhere (`word_may_reach` looks for it anywhere in a
/// `pg_` word). Every one holds a `_` or a `k`, which memchr finds fast.
fn hit_in(buf: &[u8], before: Option<u8>) -> bool {
    let word_start = |s: usize| match s {
        0 => !before.is_some_and(is_word),
        _ => !is_word(buf[s - 1]),
    };
    let is = |s: usize, what: &[u8]| buf[s..s + what.len()].eq_ignore_ascii_case(what);
    memchr::memchr3_iter(b'_', b'k', b'K', buf).any(|p| {
        if buf[p] != b'_' {
            return p >= 5 && is(p - 5, b"dblin") && word_start(p - 5);
        }
        if p >= 11 && is(p - 11, b"replication") {
            return true;
        }
        if p < 2 || !word_start(p - 2) {
            return false;
        }
        if is(p - 2, b"lo") {
            return true;
        }
        let rest = &buf[p + 1..];
        is(p - 2, b"pg")
            && AFTER_PG
                .iter()
                .any(|n| rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n))
    })
}

#[cfg(test)]
mod tests;
