//! What the operator asked of a deploy (resolved), and who watches it run.
//!
//! Invariant: options are decided before the database is touched; nothing below
//! changes them.

use crate::deploy::checks::PlanReport;
use crate::session::conn::ConnSpec;
use crate::DbError;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What the operator asked for, resolved.
#[derive(Clone)]
pub struct Options<'a> {
    pub conn: &'a ConnSpec,
    /// The database the name guard requires: the bundle's target (one name, or a fleet
    /// the database must match), or a rehearsal's clone by its name.
    pub expected_db: airlock_bundle::target_db::TargetDatabase,
    pub params: BTreeMap<String, String>,
    pub through: Option<String>,
    pub lock_timeout: String,
    /// How many times a transaction (an online step) whose statement could not have
    /// its lock within `lock_timeout` runs again, with backoff, before the run is
    /// refused as lock-busy.
    pub lock_retries: u32,
    pub statement_timeout: String,
    pub allow_drift: bool,
    /// `--resume`: a continuation whose only change is the INVALID index an interrupted
    /// build of its next online step left (proven the step's own) goes on: the step
    /// drops that index and builds it again.
    pub resume: bool,
    pub gate_role: Option<String>,
    /// The signed approvals `--approval` names, for a bundle with `[ratification]`
    /// (`None`: none given).
    pub approvals: Option<&'a Approvals>,
    /// Only rehearsals on a clone set this (`--assume-gates`).
    pub skip_gates: bool,
    /// Remember the ledger head on this host after a commit, and keep the schema
    /// description between runs (read by `plan` and deploys, written after a commit);
    /// not for rehearsal clones, which are dropped.
    pub remember: bool,
    /// Asked on a terminal before anything changes; false cancels.
    pub confirm: Option<&'a dyn Fn(&PlanReport) -> bool>,
    /// Told which tier and file run (a terminal's progress line); `None` tells nobody.
    pub observer: Option<&'a dyn Observer>,
    /// Saves the receipt after the run committed, then its delivery is recorded in
    /// the ledger (`crate::deploy::delivery`); `None`: no receipt is saved (rehearsals,
    /// `plan`).
    pub deliver: Option<&'a dyn crate::ledger::receipt::Deliver>,
    /// When the trust store requires signed receipts: which ledger rows an operator
    /// key signed. The rows that decide the run (its release's, and the one it
    /// follows) must each be signed, or the run is refused (`ledger-forged`); `None`:
    /// the rows are taken as the deploy login keeps them.
    pub vouch: Option<&'a dyn crate::ledger::signed_rows::Vouch>,
}

impl Options<'_> {
    /// What this run claims when its approvals are judged (`ledger::ratify`).
    pub fn claim(&self) -> crate::ledger::ratify::Claim<'_> {
        crate::ledger::ratify::Claim {
            params: &self.params,
            approvals: self.approvals,
        }
    }

    /// The database a report names before the guard has read it: the bundle's one
    /// name (as always), or for a fleet the database the connection names.
    pub fn shown_db(&self) -> String {
        match self.expected_db.default_name() {
            Some(name) if !self.expected_db.is_fleet() => name.to_string(),
            _ => self.conn.dbname().to_string(),
        }
    }
}

pub use crate::ledger::ratify::Approvals;

/// Watches a deploy as it runs, between the messages airlock sends (never inside the
/// server's work). Every method has a do-nothing default.
pub trait Observer {
    /// `files` files of `bytes` bytes in all are about to run (apply: the tiers of this
    /// transaction; rollback: the rollback files).
    fn start(&self, _event: &str, _files: usize, _bytes: u64) {}
    /// Tier `index` (0-based) of `of` begins.
    fn tier(&self, _index: usize, _of: usize, _name: &str) {}
    /// A file of `bytes` bytes is sent and runs.
    fn file(&self, _path: &str, _bytes: u64) {}
    /// That file ran.
    fn file_done(&self, _path: &str, _bytes: u64) {}
    /// Online step `k` (1-based) of `of` begins: the statement at `file:line`, run
    /// outside any transaction.
    fn step(&self, _k: usize, _of: usize, _file: &str, _line: usize) {}
    /// A statement could not have its lock (`why`, naming who holds locks); the
    /// transaction (online: the step) runs again after `wait`.
    fn retry(&self, _attempt: u32, _of: u32, _wait: std::time::Duration, _why: &str) {}
    /// Something the operator should know that does not stop the deploy (a session
    /// squatting airlock's online-steps key, ignored).
    fn notice(&self, _line: &str) {}
    /// The deploy transaction is about to COMMIT: bundle SQL is done, the ledger row
    /// appended. A last look inside the transaction (a rehearsal reads what it changed
    /// in the cluster's shared catalogs here); an error stops the COMMIT, and
    /// everything rolls back.
    fn before_commit(&self, _tx: &mut postgres::Transaction<'_>) -> Result<(), DbError> {
        Ok(())
    }
    /// The deploy transaction committed (COMMIT returned): every lock it took is
    /// released now.
    fn committed(&self) {}
    /// The first lines of the statements of the tier file `path` to run alone, each
    /// in its own message, and time ([`Observer::statement_timed`]); a rehearsal asks
    /// for the statements that lock an existing relation. Empty (the default): the
    /// file's messages are cut by size only, as apply on a target always does.
    fn time_alone(&self, _path: &str) -> BTreeSet<u64> {
        BTreeSet::new()
    }
    /// A statement run alone (see [`Observer::time_alone`]) at line `line` of `path`
    /// was sent at `started` and had completed `took` later.
    fn statement_timed(&self, _path: &str, _line: u64, _started: Instant, _took: Duration) {}
    /// Inside a deploy transaction, before its first tier and after each tier: a
    /// rehearsal measures the tables the release changes here (`measure`).
    /// Nothing by default: an apply on a target never measures.
    fn measure(&self, _tx: &mut postgres::Transaction<'_>, _edge: TierEdge) {}
    /// Whether the small files of several tiers may go to the server in one string
    /// (one round trip): only when nothing is done at a tier's edges between them
    /// ([`Observer::measure`] is a no-op). No by default; `apply`'s progress says yes.
    fn tiers_share_messages(&self) -> bool {
        false
    }
}

/// Where in an apply's transaction [`Observer::measure`] is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierEdge {
    /// Before tier `i` (0-based), the first of its transaction.
    Before(usize),
    /// After tier `i`.
    After(usize),
}
