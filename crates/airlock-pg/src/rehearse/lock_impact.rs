//! The lock impact measured on a rehearsal's clone: for every tier statement that locks
//! a relation which existed before the apply, the heaviest mode it takes on it, how
//! long the statement ran and how long the lock was held — in a transactional tier
//! from the moment the statement was sent until its transaction's COMMIT returned, in
//! an online tier the statement's own run. The production outage window, measured on
//! production's own data.
//!
//! Which statements lock what is read statically ([`crate::deploy::lock_plan`], plan's lock
//! plan); the clock is the rehearsal's: those statements run alone, each in its own
//! message ([`Observer::time_alone`]), so each has its own start and end; every other
//! statement (DML, COPY data) is cut into messages as apply always cuts them, so a large
//! data file costs what it always did. Apply on a real target never asks for this.
//!
//! Invariant: every duration reported was measured on the clone (none is estimated): a
//! statement the apply did not run, or a transaction that did not commit, is not
//! reported; a held time is never shorter than its statement's own.

use crate::deploy::lock_plan::{self, PlannedLock, RelSize};
use crate::deploy::options::Observer;
use crate::ledger::receipt::StepDone;
use crate::session::conn::{self, ConnSpec};
use crate::DbError;
use airlock_bundle::verified::VerifiedBundle;
use airlock_sql::LockMode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// At most this many locks are reported (the ones held longest); the rest are counted.
pub const MAX_REPORTED: usize = 50;

/// Until when a lock was held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HeldUntil {
    /// A transactional tier: until its transaction's COMMIT returned.
    Commit,
    /// An online tier: until the statement itself completed (no transaction holds it).
    StatementEnd,
}

/// One statement's heaviest lock on one relation that existed before the apply, as
/// measured on the clone.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct HeldLock {
    pub tier: String,
    /// The bundle path of the file.
    pub file: String,
    /// The statement's first line.
    pub line: usize,
    /// What the statement is, e.g. `CREATE INDEX`.
    pub statement: String,
    /// The relation as the statement names it.
    pub relation: String,
    /// The heaviest mode the statement takes on it.
    pub mode: LockMode,
    /// The relation's size on the clone before the apply.
    pub size: RelSize,
    pub held_until: HeldUntil,
    /// The statement's own run: sent to completed (its round trip included).
    pub statement_ms: u64,
    /// From the moment the statement was sent until the lock was released
    /// (`held_until`): what other sessions wanting a conflicting lock on the relation
    /// would have waited on the target.
    pub held_ms: u64,
}

/// The rehearsal's lock report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
pub struct LockImpact {
    /// In the order the apply ran them; at most [`MAX_REPORTED`], the ones held
    /// longest.
    pub locks: Vec<HeldLock>,
    /// How many more were measured and left out (held shorter than those listed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
    /// Why the locks could not be read (the apply then ran as usual, untimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The locks the bundle's tiers take on relations that exist on the clone now (before
/// the apply), with their sizes: statically, then one read-only round trip.
pub(crate) fn planned(
    vb: &VerifiedBundle,
    clone: &ConnSpec,
    expected: &str,
) -> Result<Vec<PlannedLock>, DbError> {
    let tiers: Vec<String> = vb.manifest().tier.iter().map(|t| t.name.clone()).collect();
    let mut locks = lock_plan::of_tiers(vb, &tiers)?;
    if locks.is_empty() {
        return Ok(locks);
    }
    let mut c = clone.connect()?;
    conn::name_guard_exact(&mut c, expected)?;
    let path = vb.manifest().spec().target.search_path();
    lock_plan::size(&mut c, &path, &mut locks, None)?;
    locks.retain(|l| l.size.is_some());
    Ok(locks)
}

/// A statement run alone, sent at `started`, done `took` later.
struct Timed {
    file: String,
    line: u64,
    started: Instant,
    took: Duration,
}

/// The rehearsal's apply observer: asks for the statements that lock an existing
/// relation to run alone, times them, and closes them at COMMIT; everything else goes
/// on to `inner` (the operator's progress, the cluster watch).
pub(crate) struct Timer<'a> {
    inner: &'a dyn Observer,
    planned: Vec<PlannedLock>,
    error: Option<String>,
    /// Per file of a transactional tier, the statements to run alone.
    alone: BTreeMap<String, BTreeSet<u64>>,
    /// Timed in the transaction running now.
    pending: RefCell<Vec<Timed>>,
    /// Timed, and their transaction committed: (statement, held).
    done: RefCell<Vec<(Timed, Duration)>>,
}

impl<'a> Timer<'a> {
    pub(crate) fn new(
        vb: &VerifiedBundle,
        planned: Result<Vec<PlannedLock>, DbError>,
        inner: &'a dyn Observer,
    ) -> Timer<'a> {
        let m = vb.manifest();
        let online = |tier: &str| m.tier.iter().any(|t| t.name == tier && t.online);
        let (planned, error) = match planned {
            Ok(p) => (p, None),
            Err(e) => (vec![], Some(e.to_string())),
        };
        let mut alone: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for l in planned.iter().filter(|l| !online(&l.tier)) {
            alone
                .entry(l.lock.file.clone())
                .or_default()
                .insert(l.lock.line as u64);
        }
        Timer {
            inner,
            planned,
            error,
            alone,
            pending: RefCell::new(vec![]),
            done: RefCell::new(vec![]),
        }
    }

    /// The report: every planned lock whose statement was measured (transactional:
    /// timed and committed; online: a step the apply completed, `online_steps`).
    pub(crate) fn report(self, vb: &VerifiedBundle, online_steps: &[StepDone]) -> LockImpact {
        let m = vb.manifest();
        let done = self.done.into_inner();
        let measured = |l: &PlannedLock| -> Option<(HeldUntil, Duration, Duration)> {
            let line = l.lock.line as u64;
            if m.tier.iter().any(|t| t.name == l.tier && t.online) {
                let s = online_steps
                    .iter()
                    .find(|s| s.file == l.lock.file && s.line == l.lock.line)?;
                let d = Duration::from_millis(s.duration_ms);
                return Some((HeldUntil::StatementEnd, d, d));
            }
            let (t, held) = done
                .iter()
                .rev()
                .find(|(t, _)| t.file == l.lock.file && t.line == line)?;
            Some((HeldUntil::Commit, t.took, *held))
        };
        // The heaviest mode per statement and relation.
        let mut heaviest: BTreeMap<(String, usize, String), &PlannedLock> = BTreeMap::new();
        for l in &self.planned {
            let key = (l.lock.file.clone(), l.lock.line, l.lock.relation.clone());
            let e = heaviest.entry(key).or_insert(l);
            if l.lock.mode > e.lock.mode {
                *e = l;
            }
        }
        let mut locks: Vec<((usize, usize, usize), HeldLock)> = heaviest
            .into_values()
            .filter_map(|l| {
                let (held_until, took, held) = measured(l)?;
                Some((order(vb, l), held_lock(l, held_until, took, held)))
            })
            .collect();
        let omitted = locks.len().saturating_sub(MAX_REPORTED);
        if omitted > 0 {
            locks.sort_by_key(|(_, h)| std::cmp::Reverse((h.held_ms, h.mode)));
            locks.truncate(MAX_REPORTED);
        }
        locks.sort_by_key(|(k, _)| *k);
        LockImpact {
            locks: locks.into_iter().map(|(_, l)| l).collect(),
            omitted,
            error: self.error,
        }
    }
}

/// Where a statement runs in the apply: (tier, file in it, line).
fn order(vb: &VerifiedBundle, l: &PlannedLock) -> (usize, usize, usize) {
    let m = vb.manifest();
    let tier = m.tier.iter().position(|t| t.name == l.tier).unwrap_or(0);
    let file = m.tier[tier]
        .files
        .iter()
        .position(|f| *f == l.lock.file)
        .unwrap_or(0);
    (tier, file, l.lock.line)
}

fn held_lock(l: &PlannedLock, held_until: HeldUntil, took: Duration, held: Duration) -> HeldLock {
    HeldLock {
        tier: l.tier.clone(),
        file: l.lock.file.clone(),
        line: l.lock.line,
        statement: l.lock.statement.clone(),
        relation: l.lock.relation.clone(),
        mode: l.lock.mode,
        size: l.size.clone().expect("only existing relations are planned"),
        held_until,
        statement_ms: took.as_millis() as u64,
        held_ms: held.as_millis() as u64,
    }
}

impl Observer for Timer<'_> {
    fn start(&self, event: &str, files: usize, bytes: u64) {
        // A transaction's tiers begin (again, after a retry): nothing of an earlier
        // attempt counts.
        self.pending.borrow_mut().clear();
        self.inner.start(event, files, bytes);
    }
    fn tier(&self, index: usize, of: usize, name: &str) {
        self.inner.tier(index, of, name);
    }
    fn file(&self, path: &str, bytes: u64) {
        self.inner.file(path, bytes);
    }
    fn file_done(&self, path: &str, bytes: u64) {
        self.inner.file_done(path, bytes);
    }
    fn retry(&self, attempt: u32, of: u32, wait: Duration, why: &str) {
        self.inner.retry(attempt, of, wait, why);
    }
    fn before_commit(&self, tx: &mut postgres::Transaction<'_>) -> Result<(), DbError> {
        self.inner.before_commit(tx)
    }
    fn committed(&self) {
        let now = Instant::now();
        let mut done = self.done.borrow_mut();
        for t in self.pending.borrow_mut().drain(..) {
            let held = now.duration_since(t.started);
            done.push((t, held));
        }
        self.inner.committed();
    }
    fn time_alone(&self, path: &str) -> BTreeSet<u64> {
        let mut lines = self.inner.time_alone(path);
        lines.extend(self.alone.get(path).into_iter().flatten());
        lines
    }
    fn statement_timed(&self, path: &str, line: u64, started: Instant, took: Duration) {
        if self.alone.get(path).is_some_and(|l| l.contains(&line)) {
            self.pending.borrow_mut().push(Timed {
                file: path.to_string(),
                line,
                started,
                took,
            });
        }
        self.inner.statement_timed(path, line, started, took);
    }
    fn measure(&self, tx: &mut postgres::Transaction<'_>, edge: crate::deploy::options::TierEdge) {
        self.inner.measure(tx, edge);
    }
}
