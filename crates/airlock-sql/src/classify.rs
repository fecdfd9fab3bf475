//! Lint: the lexer's statements judged by PostgreSQL's parser.
//!
//! Invariant: every statement that is not plain DML reaches the classifier whole (or is
//! refused as too long); every problem the lexer finds (meta-commands, refused COPY
//! forms, unterminated constructs, NUL, invalid UTF-8) is reported with its line.

use super::enum_values::{EnumValueAdded, NewEnumValues};
use super::reach_pass::{ReachPass, Reaches};
use super::{parser, version, Checked, SqlProblem, SqlRole};
use crate::lex::lexer::{Event, Keep, Kind, Lexer, Mode, MAX_STATEMENT};

/// Enough problems to act on; a generated file with a systematic mistake stops here.
const MAX_PROBLEMS: usize = 50;

/// Streams a tier or rollback file through the lexer; every statement that is not plain
/// DML is judged by PostgreSQL's parser. Memory: the largest non-DML statement
/// (at most [`MAX_STATEMENT`]), whatever the file's size.
pub struct ScriptChecker<'f> {
    file: &'f str,
    /// The bundle's `[target] min_server_version`: newer syntax is reported.
    min_server_version: Option<i64>,
    /// Judged as an online tier's steps ([`super::online`]).
    online: bool,
    pub(super) lexer: Lexer,
    problems: Vec<SqlProblem>,
    /// What was accepted and skipped (meta-commands, transaction wrappers, a
    /// byte-order mark), and warnings: lint shows them, nothing else depends on them.
    notes: Vec<SqlProblem>,
    warnings: Vec<SqlProblem>,
    /// A `SET standard_conforming_strings = off` was refused: the rest of the file,
    /// read with the standard rules, would give only artifacts.
    legacy_stop: bool,
    enum_values: NewEnumValues,
    /// Only the uses of values earlier files added are warned about (the file was
    /// judged on its own already).
    earlier_only: bool,
    /// What the file reaches beyond its database, looked for in the same pass when
    /// asked ([`reaching`](Self::reaching)).
    reach: Option<ReachPass>,
}

impl<'f> ScriptChecker<'f> {
    pub fn new(file: &'f str) -> Self {
        ScriptChecker {
            file,
            min_server_version: None,
            online: false,
            lexer: Lexer::new(Mode::Script, Keep::NonDml),
            problems: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
            legacy_stop: false,
            enum_values: NewEnumValues::default(),
            earlier_only: false,
            reach: None,
        }
    }

    /// Also find what the file reaches beyond its database, in this same pass
    /// (`reach_pass.rs`; [`finish_reaching`](Self::finish_reaching) answers).
    pub fn reaching(mut self) -> Self {
        self.reach = Some(ReachPass::new(self.file));
        self
    }

    /// Also report syntax newer than `min` (the bundle's `[target]
    /// min_server_version`), where a short table can tell it (`version.rs`).
    pub fn for_min_server_version(mut self, min: Option<i64>) -> Self {
        self.min_server_version = min;
        self
    }

    /// Judge the file as an online tier's steps (`online = true`): every statement,
    /// DML included, must be safe outside a transaction and to run again.
    pub fn online(mut self, online: bool) -> Self {
        self.online = online;
        self.lexer.dml_events = online;
        self.lexer.online_wrappers(online);
        self
    }

    /// Read the file as a later file of a transaction in which `earlier` files added
    /// these enum values: its warnings are the uses of them (and nothing else).
    pub fn after_enum_values(mut self, earlier: Vec<EnumValueAdded>) -> Self {
        self.enum_values = NewEnumValues::after(earlier);
        self.earlier_only = true;
        self.lexer.keep_dml_text();
        self
    }

    /// True once there are enough problems to stop reading.
    pub fn gave_up(&self) -> bool {
        self.lexer.stopped || self.problems.len() >= MAX_PROBLEMS
    }

    /// The first problem found so far (a streamed file stops at it).
    pub fn first_problem(&self) -> Option<&SqlProblem> {
        self.problems.first()
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

    fn note(&mut self, line: usize, message: String) {
        if self.notes.len() < MAX_PROBLEMS {
            self.notes.push(SqlProblem {
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
        if let Some(reach) = &mut self.reach {
            reach.feed(bytes);
        }
        self.lexer.feed(bytes);
        self.drain();
    }

    fn drain(&mut self) {
        let mut events = std::mem::take(&mut self.lexer.events);
        for event in events.drain(..) {
            if self.legacy_stop {
                break;
            }
            match event {
                Event::Statement(s) => {
                    if let Some(reach) = &mut self.reach {
                        reach.statement(&s);
                    }
                    if let Some(min) = self.min_server_version {
                        if s.merge && min < version::MERGE {
                            self.problem(
                                s.line,
                                version::message("the MERGE statement", version::MERGE, min),
                            );
                        }
                    }
                    if let Some(text) = &s.text {
                        self.enum_uses(text, s.line);
                    }
                    if self.online && (s.kind != Kind::Other || s.copy_refused) && !s.psql {
                        self.problem(s.line, super::online::dml_refusal());
                        continue;
                    }
                    if s.kind == Kind::Dml || s.copy_refused || s.psql {
                        continue;
                    }
                    match s.text {
                        Some(text) => self.judge(&text, s.line),
                        None if s.too_long => self.problem(
                            s.line,
                            format!("this statement is longer than {} MiB and is not plain DML (INSERT, UPDATE, …): lint cannot hold it to check it. Split it (an unclosed parenthesis or a BEGIN in a CREATE FUNCTION can also make the rest of a file one statement)", MAX_STATEMENT >> 20),
                        ),
                        None => {}
                    }
                }
                Event::Problem { line, message } => self.problem(line, message),
                Event::Note { line, message } => self.note(line, message),
                Event::Warning { line, message } => self.warn(line, message),
                Event::CopyData { .. } | Event::Skip { .. } => {}
            }
        }
        self.lexer.events = events;
    }

    /// Warnings for uses of enum values the file added (`enum_values.rs`).
    fn enum_uses(&mut self, text: &[u8], line: usize) {
        let Ok(sql) = std::str::from_utf8(text) else {
            return;
        };
        for u in self.enum_values.statement(sql, line) {
            if u.earlier || !self.earlier_only {
                self.warn(u.line, u.message);
            }
        }
    }

    fn warn(&mut self, line: usize, message: String) {
        if self.warnings.len() < MAX_PROBLEMS {
            self.warnings.push(SqlProblem {
                file: self.file.into(),
                line,
                message,
            });
        }
    }

    fn judge(&mut self, text: &[u8], line: usize) {
        let Ok(sql) = std::str::from_utf8(text) else {
            self.problem(line, "is not UTF-8 (SQL files must be UTF-8)".into());
            return;
        };
        if sql.contains('\0') {
            self.problem(line, "contains a NUL byte".into());
            return;
        }
        if let Some(message) = crate::lex::lexing::statement_problem(sql) {
            let legacy = message.starts_with(crate::lex::lexing::LEGACY_OFF);
            self.problem(line, message);
            if legacy {
                self.legacy_stop = true;
                self.lexer.stopped = true;
                return;
            }
        }
        let problems = if self.online {
            super::online::online_problems(sql, line)
        } else {
            parser::script_problems(sql, line)
        };
        for (at_line, message) in problems {
            self.problem(at_line, message);
        }
        if !self.online {
            for (at_line, message) in super::dynamic::warnings(sql, line) {
                self.warn(at_line, message);
            }
        }
        if let Some(min) = self.min_server_version {
            for (at_line, message) in version::problems(sql, line, min) {
                self.problem(at_line, message);
            }
        }
    }

    /// End of the file: the last statement, and anything left open.
    pub fn finish(self) -> Vec<SqlProblem> {
        self.finish_noted().problems
    }

    /// [`finish`](Self::finish), with the notes.
    pub fn finish_noted(self) -> Checked {
        self.finish_reaching().0
    }

    /// [`finish_noted`](Self::finish_noted), and what the file reaches beyond its
    /// database when [`reaching`](Self::reaching) asked for it.
    pub fn finish_reaching(mut self) -> (Checked, Option<Reaches>) {
        self.lexer.finish();
        self.drain();
        // The first problem at or after a `\'` that a misread quote can cause says what
        // the file looks like; a refusal of a well-formed statement (a `COPY … TO`) is
        // not blamed on quotes.
        if let Some(p) = self
            .problems
            .iter_mut()
            .find(|p| from_misread_quote(&p.message) && self.lexer.legacy_hint(p.line).is_some())
        {
            p.message += &self.lexer.legacy_hint(p.line).expect("checked");
        }
        let had_problems = !self.problems.is_empty();
        let reaches = self
            .reach
            .take()
            .map(|reach| reach.finish(&self.lexer, had_problems));
        let checked = Checked {
            problems: self.problems,
            notes: self.notes,
            warnings: self.warnings,
            enum_values_added: self.enum_values.added_here(),
        };
        (checked, reaches)
    }

    /// Where the lexer saw each statement end, reported or not (the differential test).
    #[cfg(test)]
    pub(super) fn finish_ends(mut self) -> Vec<usize> {
        self.lexer.finish();
        self.drain();
        std::mem::take(&mut self.lexer.ends)
    }
}

/// One read-only query (gates and probes): the lexer's problems (meta-commands,
/// unterminated constructs), then the whole text through PostgreSQL's parser.
pub(super) fn check_query(file: &str, sql: &str, role: SqlRole) -> Vec<SqlProblem> {
    let problem = |line: usize, message: String| SqlProblem {
        file: file.into(),
        line,
        message,
    };
    let mut lexer = Lexer::new(Mode::Query, Keep::Copy);
    lexer.feed(sql.as_bytes());
    lexer.finish();
    let problems: Vec<SqlProblem> = lexer
        .events
        .drain(..)
        .filter_map(|e| match e {
            Event::Problem { line, message } => Some(problem(line, message)),
            _ => None,
        })
        .collect();
    if !problems.is_empty() {
        return problems;
    }
    parser::query_problems(sql, role)
        .into_iter()
        .map(|(line, message)| problem(line, message))
        .collect()
}

/// A problem a `\'` read the wrong way produces: the rest of a line read as a psql
/// meta-command or variable, a statement that no longer parses, a quote left open.
fn from_misread_quote(message: &str) -> bool {
    [
        "psql meta-command",
        "psql variable",
        "does not parse as PostgreSQL",
        "unterminated",
    ]
    .iter()
    .any(|p| message.starts_with(p))
}
