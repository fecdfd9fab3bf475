//! SQL classification. One streaming lexer (`lexer.rs`, following PostgreSQL's scan.l
//! for tokens and psql for statement ends, COPY data and meta-command lines; COPY's own
//! rules in `copy.rs`, which meta-commands are skipped or refused in `meta.rs`, the
//! `BEGIN;` … `COMMIT;` wrappers run as airlock's own transaction in `wrapper.rs`) feeds
//! both lint (`classify.rs`: plain DML passes on its first
//! word, every other statement is judged by PostgreSQL's own parser, `parser.rs`) and
//! execution (`split.rs`, the [`Splitter`]). `tokens.rs` reads PostgreSQL's tokens for
//! the cheap checks that need no tree (COPY options, newer syntax).
//!
//! Invariant: a gate or probe file passes only if it is exactly one plain read-only
//! query (SELECT / VALUES / WITH without data-modifying parts, no SELECT INTO, no row
//! locks, no `set_config`); a tier file passes only if every statement can run inside
//! the apply transaction and none ends it (a balanced `BEGIN;` … `COMMIT;` wrapper is
//! never sent: lint and execution skip the same bytes). Both are checked at pack time and again
//! before anything runs, and execution cuts files where lint did. There is one judge in
//! every build: PostgreSQL's parser (libpg_query).
//!
//! Rooms import only the rooms before them (`scripts/check-layers` enforces the line
//! below): what a name, a kind or a shape is first, then the lexer, then everything
//! that reads its tokens or PostgreSQL's tree, the predictions, and the lock plan.
//!
//! Room order, lowest first: `names`, `shape`, `reads`, `view_text`, `lex` < `parser`, `version`, `highlight` < `dynamic`, `enum_values`, `online`, `reach` < `reach_pass`, `predicts` < `classify`, `locks`, `kinds` < `tests`.

// pg_query's API is safe: this crate needs no `unsafe` (issue 67).
#![forbid(unsafe_code)]

mod classify;
mod dynamic;
mod enum_values;
mod highlight;
mod kinds;
mod lex;
mod locks;
mod names;
mod online;
mod parser;
mod predicts;
mod reach;
mod reach_pass;
mod reads;
mod shape;
mod version;
mod view_text;

pub use classify::ScriptChecker;
pub use enum_values::EnumValueAdded;
pub use highlight::{highlight, Class as SqlClass, Span as SqlSpan};
pub use kinds::{kinds_in, plain as plain_kind, StatementKind};
pub use lex::lexer::MAX_STATEMENT;
pub use lex::split::{split_all, Piece, Splitter};
pub use locks::{locks_in, locks_to_end, Added, Lock, LockMode, Retype, Work};
pub use names::object_name;
pub use online::{
    online_steps, same_index_definition, IndexBuild, IndexDrop, OnlineStep, Promise, SHAPE_INDEX,
    SHAPE_TABLE,
};
pub use parser::{DECLARE_ONLINE, ROLLBACK_ONLINE};
/// PostgreSQL's own parser, for the layers above that check their SQL with it in tests
/// (the fingerprint queries): one crate depends on libpg_query.
pub use pg_query;
pub use predicts::{data_steps_in, shown, DataStep, Relation, Step, TypeRef, Using};
pub use reach::{reaches_in, Reach};
pub use reach_pass::Reaches;
pub use reads::{reads_of, Reads};
pub use shape::{GATE_SHAPE, PROBE_SHAPE};
pub use view_text::view_def_as_16;

use classify::check_query;

use std::io::{self, Read};

/// What a file is used for decides which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlRole {
    /// One read-only statement answering `ready [, reason]`.
    Gate,
    /// One read-only statement answering `(key, value)` rows.
    Probe,
    /// Any number of statements, all transaction-safe (tiers and rollback files).
    Script,
    /// The statements of an online tier (or online rollback): each safe to run
    /// outside a transaction and again after an interruption.
    Online,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SqlProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// What lint found in one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Refusals (empty = clean).
    pub problems: Vec<SqlProblem>,
    /// What was accepted and skipped (psql meta-commands airlock subsumes, transaction
    /// wrappers, a byte-order mark): shown by lint, never a refusal.
    pub notes: Vec<SqlProblem>,
    /// What will likely fail at `rehearse` though lint cannot prove it (a new enum
    /// value used in the transaction that adds it): shown by lint, never a refusal.
    pub warnings: Vec<SqlProblem>,
    /// The enum values the file adds (`ALTER TYPE … ADD VALUE`), for the later files
    /// of its transaction ([`enum_uses_after`]).
    pub enum_values_added: Vec<EnumValueAdded>,
}

/// Check one SQL file for its role. Returns every problem found (empty = clean).
pub fn check(file: &str, sql: &str, role: SqlRole) -> Vec<SqlProblem> {
    check_noted(file, sql, role).problems
}

/// [`check`], with the notes.
pub fn check_noted(file: &str, sql: &str, role: SqlRole) -> Checked {
    match role {
        SqlRole::Gate | SqlRole::Probe => Checked {
            problems: check_query(file, sql, role),
            ..Checked::default()
        },
        SqlRole::Script | SqlRole::Online => {
            let mut c = ScriptChecker::new(file).online(role == SqlRole::Online);
            c.feed(sql.as_bytes());
            c.finish_noted()
        }
    }
}

/// Gates and probes are small; more than this is refused unread.
pub const MAX_QUERY_FILE: u64 = 1 << 20;

/// [`check`] reading from `r`: scripts stream through in bounded memory whatever their
/// size; gates and probes are read whole (up to [`MAX_QUERY_FILE`]).
pub fn check_reader(file: &str, r: &mut dyn Read, role: SqlRole) -> io::Result<Vec<SqlProblem>> {
    check_reader_for(file, r, role, None)
}

/// [`check_reader`] for a bundle whose oldest target is `min_server_version` (its
/// `[target] min_server_version`): scripts also get syntax newer than that reported,
/// where lint can tell it cheaply.
pub fn check_reader_for(
    file: &str,
    r: &mut dyn Read,
    role: SqlRole,
    min_server_version: Option<i64>,
) -> io::Result<Vec<SqlProblem>> {
    Ok(check_reader_noted(file, r, role, min_server_version)?.problems)
}

/// [`check_reader_for`], with the notes (what `lint` shows).
pub fn check_reader_noted(
    file: &str,
    r: &mut dyn Read,
    role: SqlRole,
    min_server_version: Option<i64>,
) -> io::Result<Checked> {
    let only = |problems: Vec<SqlProblem>| Checked {
        problems,
        ..Checked::default()
    };
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
                return Ok(only(vec![problem(format!(
                    "is larger than {MAX_QUERY_FILE} bytes; a gate or probe is one query"
                ))]));
            }
            Ok(only(match String::from_utf8(bytes) {
                Ok(sql) => check_query(file, &sql, role),
                Err(_) => vec![problem("SQL files must be UTF-8".into())],
            }))
        }
        SqlRole::Script | SqlRole::Online => {
            let c = ScriptChecker::new(file)
                .for_min_server_version(min_server_version)
                .online(role == SqlRole::Online);
            Ok(feed_all(c, r)?.finish_noted())
        }
    }
}

/// [`check_reader_noted`] for a tier or rollback file (`online`: an online tier's), and
/// what it reaches beyond its database found in the same pass: [`Reaches::Found`] is
/// what [`reaches_in`] would list; [`Reaches::ReadAgain`] asks for `reaches_in`.
pub fn check_script_reaching(
    file: &str,
    r: &mut dyn Read,
    online: bool,
    min_server_version: Option<i64>,
) -> io::Result<(Checked, Reaches)> {
    let c = ScriptChecker::new(file)
        .for_min_server_version(min_server_version)
        .online(online)
        .reaching();
    let (checked, reaches) = feed_all(c, r)?.finish_reaching();
    Ok((checked, reaches.unwrap_or(Reaches::ReadAgain)))
}

/// The uses, in the script `file` read from `r`, of enum values that earlier files of
/// the same transaction add (`earlier`, each from [`Checked::enum_values_added`] of its
/// file, named with [`EnumValueAdded::from_file`]): warnings, as [`Checked::warnings`].
pub fn enum_uses_after(
    file: &str,
    r: &mut dyn Read,
    earlier: Vec<EnumValueAdded>,
) -> io::Result<Vec<SqlProblem>> {
    let c = ScriptChecker::new(file).after_enum_values(earlier);
    Ok(feed_all(c, r)?.finish_noted().warnings)
}

/// Feed `c` everything `r` holds, in 256 KiB reads, until the end or it gives up.
fn feed_all<'a>(mut c: ScriptChecker<'a>, r: &mut dyn Read) -> io::Result<ScriptChecker<'a>> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(c);
        }
        c.feed(&buf[..n]);
        if c.gave_up() {
            return Ok(c);
        }
    }
}

#[cfg(test)]
mod tests;
