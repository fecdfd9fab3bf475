//! Running bundle files (tiers, rollback files) inside the deploy transaction: each
//! behind the prelude, the streamed file as it streams, the operator's Ctrl-C seen
//! between files, an [`Observer`] told what runs.
//!
//! Invariant: a failure names the tier (or rollback file), the file and the line, and
//! says what became of the transaction; nothing here commits.

use crate::deploy::options::Observer;
use crate::{deploy::exec, session::conn, sqlstate, DbError};
use airlock_bundle::archive::VerifyError;
use airlock_bundle::manifest::Manifest;
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The files of these tiers, with their sizes (for an [`Observer`]).
fn tier_files<'m>(m: &'m Manifest, idx: &[usize]) -> Vec<(&'m str, u64)> {
    idx.iter()
        .flat_map(|&i| m.tier[i].files.iter())
        .map(|f| (f.as_str(), file_size(m, f)))
        .collect()
}

/// The bytes of these files of the bundle, in all.
pub(crate) fn bytes_of(m: &Manifest, files: &[String]) -> u64 {
    files.iter().map(|f| file_size(m, f)).sum()
}

fn file_size(m: &Manifest, path: &str) -> u64 {
    m.files
        .binary_search_by(|f| f.path.as_str().cmp(path))
        .map(|i| m.files[i].size)
        .unwrap_or(0)
}

/// Step: the tiers `idx` (0-based), in order, each file behind `prelude`; the first
/// write of an apply.
pub(crate) fn run_tiers(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    prelude: &str,
    idx: &[usize],
    observer: Option<&dyn Observer>,
) -> Result<(), DbError> {
    let m = vb.manifest();
    let n = m.tier.len();
    let guard = begin_bundle_sql(tx)?;
    if let Some(o) = observer {
        let files = tier_files(m, idx);
        o.start("apply", files.len(), files.iter().map(|f| f.1).sum());
        if let Some(&first) = idx.first() {
            o.measure(tx, crate::deploy::options::TierEdge::Before(first));
        }
    }
    // Small files run a string of them at a time (exec::run_group): within a tier, or
    // across tiers when nobody looks at a tier's edges (a rehearsal measures there).
    let across = observer.is_none_or(|o| o.tiers_share_messages());
    let mut told = Told {
        idx,
        next: 0,
        observer,
        m,
    };
    let mut group: Vec<Grouped<'_>> = Vec::new();
    for (k, &i) in idx.iter().enumerate() {
        let tier = &m.tier[i];
        let failed = |e: FileFailure, f: &str| tier_failure(e, i, n, &tier.name, f);
        for f in &tier.files {
            interrupted_check()?;
            if let Some(segment) = prepared(tx, &guard, prelude, vb, f, observer)
                .map_err(|e| failed(FileFailure::of(e), f))?
            {
                let held: usize = group.iter().map(|g| g.segment.len()).sum();
                if held + segment.len() > exec::GROUP_BYTES {
                    run_group(tx, &guard, vb, &mut group, &mut told)?;
                }
                group.push(Grouped {
                    at: k,
                    file: f,
                    segment,
                });
                continue;
            }
            run_group(tx, &guard, vb, &mut group, &mut told)?;
            told.upto(k);
            run_observed(tx, &guard, prelude, vb, f, observer).map_err(|e| failed(e, f))?;
        }
        if !across {
            run_group(tx, &guard, vb, &mut group, &mut told)?;
            told.upto(k);
            if let Some(o) = observer {
                o.measure(tx, crate::deploy::options::TierEdge::After(i));
            }
        }
    }
    run_group(tx, &guard, vb, &mut group, &mut told)?;
    told.upto(idx.len().saturating_sub(1));
    interrupted_check()
}

/// A file made into its message, kept to go in one string with others: of the tier
/// `idx[at]`.
struct Grouped<'m> {
    at: usize,
    file: &'m str,
    segment: exec::Segment,
}

/// Tells the observer each tier as its first file is sent (or, for a tier without
/// files, as the files after it are), in order.
struct Told<'a, 'o> {
    idx: &'a [usize],
    /// The position in `idx` of the next tier to tell.
    next: usize,
    observer: Option<&'o dyn Observer>,
    m: &'a Manifest,
}

impl Told<'_, '_> {
    /// Every tier up to `idx[k]` told.
    fn upto(&mut self, k: usize) {
        while self.next <= k && self.next < self.idx.len() {
            let i = self.idx[self.next];
            if let Some(o) = self.observer {
                o.tier(i, self.m.tier.len(), &self.m.tier[i].name);
            }
            self.next += 1;
        }
    }
}

/// What a tier file's failure says: the tier, the file, the line, and that nothing
/// was changed.
fn tier_failure(e: FileFailure, i: usize, n: usize, tier: &str, f: &str) -> DbError {
    e.into_error(
        || format!("tier {}/{n} {tier:?}, file {f}", i + 1),
        f,
        "the whole transaction was rolled back, nothing was changed",
    )
}

/// The one message `f` is sent as, made and kept to go with the files beside it
/// ([`exec::run_group`]), when it is one: a file held whole and small, none of whose
/// statements is timed alone; `None` for the others (run by [`run_observed`]).
fn prepared(
    tx: &mut Transaction<'_>,
    guard: &exec::TxGuard,
    prelude: &str,
    vb: &VerifiedBundle,
    f: &str,
    observer: Option<&dyn Observer>,
) -> Result<Option<exec::Segment>, exec::FileError> {
    let small = file_size(vb.manifest(), f) <= exec::GROUP_FILE_BYTES as u64;
    let streamed = vb.streamed_file().as_deref() == Some(f);
    let timed = observer.is_some_and(|o| !o.time_alone(f).is_empty());
    if !small || streamed || timed {
        return Ok(None);
    }
    let payload = vb.payload(f).map_err(exec::FileError::Unverified)?;
    exec::prepare(tx, guard, prelude, f, payload, vb.limits().message_bytes)
}

/// The files of `group` in one string ([`exec::run_group`]), told to the observer
/// before and after; the group is emptied. A failure names its tier and file.
fn run_group(
    tx: &mut Transaction<'_>,
    guard: &exec::TxGuard,
    vb: &VerifiedBundle,
    group: &mut Vec<Grouped<'_>>,
    told: &mut Told<'_, '_>,
) -> Result<(), DbError> {
    if group.is_empty() {
        return Ok(());
    }
    let files = std::mem::take(group);
    let m = vb.manifest();
    let size = |f: &str| file_size(m, f);
    for g in &files {
        told.upto(g.at);
        if let Some(o) = told.observer {
            o.file(g.file, size(g.file));
        }
    }
    let (places, segments): (Vec<(usize, &str)>, Vec<exec::Segment>) = files
        .into_iter()
        .map(|g| ((g.at, g.file), g.segment))
        .unzip();
    exec::run_group(tx, guard, &segments).map_err(|(k, e)| {
        let (at, f) = places[k];
        let i = told.idx[at];
        tier_failure(FileFailure::of(e), i, m.tier.len(), &m.tier[i].name, f)
    })?;
    if let Some(o) = told.observer {
        places.iter().for_each(|(_, f)| o.file_done(f, size(f)));
    }
    Ok(())
}

/// Step: the rollback files, in order, each behind `prelude`.
pub(crate) fn run_rollback_files(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    prelude: &str,
    files: &[String],
    observer: Option<&dyn Observer>,
) -> Result<(), DbError> {
    let m = vb.manifest();
    let guard = begin_bundle_sql(tx)?;
    if let Some(o) = observer {
        let bytes = files.iter().map(|f| file_size(m, f)).sum();
        o.start("rollback", files.len(), bytes);
    }
    for f in files {
        interrupted_check()?;
        run_observed(tx, &guard, prelude, vb, f, observer).map_err(|e| {
            e.into_error(
                || format!("rollback file {f}"),
                f,
                "the rollback was rolled back, the database is as it was",
            )
        })?;
    }
    Ok(())
}

/// Marks where bundle SQL begins (see [`exec::TxGuard`]).
fn begin_bundle_sql(tx: &mut Transaction<'_>) -> Result<exec::TxGuard, DbError> {
    exec::TxGuard::begin(tx).map_err(|e| crate::sql_err("marking where bundle SQL begins", &e))
}

/// One file, told to the observer before and after.
fn run_observed(
    tx: &mut Transaction<'_>,
    guard: &exec::TxGuard,
    prelude: &str,
    vb: &VerifiedBundle,
    f: &str,
    observer: Option<&dyn Observer>,
) -> Result<(), FileFailure> {
    let size = file_size(vb.manifest(), f);
    if let Some(o) = observer {
        o.file(f, size);
    }
    run_file(tx, guard, prelude, vb, f, observer)?;
    if let Some(o) = observer {
        o.file_done(f, size);
    }
    Ok(())
}

/// Run one tier or rollback file as it was verified (see [`exec`]): behind the prelude
/// that re-asserts the bundle's settings (search_path, standard_conforming_strings as
/// lint read it, timeouts…), because an earlier file may have changed them; a small
/// file is one message with the prelude, so no round trip is added.
fn run_file(
    tx: &mut Transaction<'_>,
    guard: &exec::TxGuard,
    prelude: &str,
    vb: &VerifiedBundle,
    file: &str,
    observer: Option<&dyn Observer>,
) -> Result<(), FileFailure> {
    let mut timing = Timing {
        alone: observer.map(|o| o.time_alone(file)).unwrap_or_default(),
        observer,
        file,
    };
    let unverified = |e: VerifyError| FileFailure::of(exec::FileError::Unverified(e));
    let message_bytes = vb.limits().message_bytes;
    let result = if vb.streamed_file().as_deref() == Some(file) {
        // Executed as it streams from the archive: each chunk authenticated (and
        // linted) by the reader before it is handed on.
        let total = vb.manifest().file(file).map_or(0, |f| f.size);
        let mut next = || vb.next_chunk(file).map_err(exec::FileError::Unverified);
        exec::run_source(
            tx,
            guard,
            prelude,
            file,
            exec::Source::Stream {
                next: &mut next,
                total,
            },
            message_bytes,
            &mut timing,
        )
    } else {
        let payload = vb.payload(file).map_err(unverified)?;
        exec::run_file(
            tx,
            guard,
            prelude,
            file,
            payload,
            message_bytes,
            &mut timing,
        )
    };
    result.map_err(FileFailure::of)
}

impl FileFailure {
    /// What [`exec`] said went wrong, for the caller's message (a file that failed
    /// verification is told by the caller).
    fn of(e: exec::FileError) -> FileFailure {
        match e {
            exec::FileError::Sql { at, error } => FileFailure {
                line: at.as_ref().map(|p| p.line),
                place: at.map(Box::new),
                lock_timeout: sqlstate(&error) == Some("55P03"),
                cancelled: sqlstate(&error) == Some("57014") && conn::interrupted(),
                what: crate::pg_message(&error),
                ..FileFailure::default()
            },
            exec::FileError::Read(what) => FileFailure {
                what,
                ..FileFailure::default()
            },
            exec::FileError::Unverified(e) => FileFailure {
                what: e.to_string(),
                unverified: Some(Box::new(e)),
                ..FileFailure::default()
            },
            exec::FileError::Ended { lines, fate } => FileFailure {
                line: Some(lines.0),
                ended: Some((lines, fate)),
                ..FileFailure::default()
            },
            exec::FileError::Lexing { lines, found } => FileFailure {
                line: Some(lines.0),
                lexing: Some(Box::new((lines, found))),
                ..FileFailure::default()
            },
        }
    }
}

/// The statements the observer asked to time (a rehearsal), run alone and timed.
struct Timing<'o> {
    observer: Option<&'o dyn Observer>,
    file: &'o str,
    alone: BTreeSet<u64>,
}

impl exec::Watcher for Timing<'_> {
    fn alone(&self, line: u64) -> bool {
        self.alone.contains(&line)
    }
    fn timed(&mut self, line: u64, started: Instant, took: Duration) {
        if let Some(o) = self.observer {
            o.statement_timed(self.file, line, started, took);
        }
    }
}

/// The whole bundle verified (streaming loads read its rest now), or the run fails
/// with the verification error before anything commits.
pub(crate) fn all_verified(vb: &VerifiedBundle) -> Result<(), DbError> {
    vb.complete().map_err(|e| DbError::Unverified(Box::new(e)))
}

/// Why a bundle file failed, where.
#[derive(Default)]
struct FileFailure {
    line: Option<u64>,
    /// Where the failing statement is, when the server refused one.
    place: Option<Box<exec::Place>>,
    what: String,
    /// The operator's Ctrl-C cancelled the statement.
    cancelled: bool,
    /// A statement could not have its lock within `lock_timeout` (55P03).
    lock_timeout: bool,
    /// The file failed verification as it streamed (or the bundle did before it
    /// could be read back).
    unverified: Option<Box<VerifyError>>,
    /// Bundle SQL ended airlock's transaction in these lines (see [`exec::TxGuard`]).
    ended: Option<((u64, u64), exec::Fate)>,
    /// A message of these lines reached the server with other settings deciding its
    /// lexing than lint's, and nothing of it ran (see [`exec::FileError::Lexing`]).
    lexing: Option<Box<((u64, u64), String)>>,
}

impl FileFailure {
    /// The error to report when this failure is not an ordinary SQL error: the file
    /// failed verification, or it ended airlock's transaction.
    fn special(&mut self, context: impl Fn() -> String) -> Option<DbError> {
        if let Some(v) = self.unverified.take() {
            return Some(DbError::Unverified(v));
        }
        if let Some((lines, found)) = self.lexing.take().map(|b| *b) {
            return Some(DbError::LexingChanged {
                context: context(),
                lines,
                found,
            });
        }
        self.ended
            .take()
            .map(|(lines, fate)| DbError::TransactionEnded {
                context: context(),
                lines,
                fate,
            })
    }
}

impl FileFailure {
    /// The error of this failure of a tier or rollback `file` (`context` names it),
    /// whichever file it is: a lock wait that ran out is a lock timeout (run again
    /// with `--lock-retries`), the operator's Ctrl-C says so, any other SQL error
    /// ends in `rolled_back` (what became of the transaction).
    fn into_error(
        mut self,
        context: impl Fn() -> String,
        file: &str,
        rolled_back: &str,
    ) -> DbError {
        if let Some(special) = self.special(&context) {
            return special;
        }
        if self.lock_timeout {
            return DbError::lock_timeout(format!("{}{}", context(), self.at()), self.what);
        }
        let what = if self.cancelled {
            "cancelled by the operator (Ctrl-C)"
        } else {
            &self.what
        };
        self.error(context(), format!("{what}; {rolled_back}"), file)
    }

    /// ":LINE:COLUMN" of the failing statement when it is known, else " line N" when
    /// a line is.
    fn at(&self) -> String {
        match (&self.place, self.line) {
            (Some(p), _) => format!(":{}:{}", p.line, p.column),
            (None, Some(l)) => format!(" line {l}"),
            (None, None) => String::new(),
        }
    }

    /// The error of this failure in `file`, `context` naming the file (`… file F`):
    /// with the failing statement's `FILE:LINE:COLUMN` when it is known.
    fn error(&self, context: String, message: String, file: &str) -> DbError {
        match &self.place {
            Some(p) => DbError::Statement {
                context: format!("{context}{}", self.at()),
                message,
                at: Box::new(StatementAt::new(file, p)),
            },
            None => DbError::Sql {
                context: format!("{context}{}", self.at()),
                message,
            },
        }
    }
}

/// Where a statement of a bundle file failed (the `at` of an error document).
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct StatementAt {
    /// The file, as the bundle names it.
    pub file: String,
    /// 1-based line and column (in characters) of the error: where the server placed
    /// it when it did, else where the failing statement begins.
    pub line: u64,
    pub column: u64,
    /// Where the failing statement begins (its first token).
    pub statement_line: u64,
    pub statement_column: u64,
    /// The statement's first line, from its first token.
    pub statement: String,
}

impl StatementAt {
    fn new(file: &str, p: &exec::Place) -> StatementAt {
        StatementAt {
            file: file.into(),
            line: p.line,
            column: p.column,
            statement_line: p.statement_line,
            statement_column: p.statement_column,
            statement: p.statement.clone(),
        }
    }

    /// `FILE:LINE:COLUMN: first line of the statement` (where the statement begins).
    pub fn human(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            self.file, self.statement_line, self.statement_column, self.statement
        )
    }
}

/// The operator's Ctrl-C, seen between two statements.
pub(crate) fn interrupted_check() -> Result<(), DbError> {
    if conn::interrupted() {
        return Err(DbError::Interrupted);
    }
    Ok(())
}
