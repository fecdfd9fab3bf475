//! The deploy pipeline: the checks and steps of a deploy as named values, run by one
//! skeleton. This module holds its shape (the [`Step`]s, the [`Pass`]es, the
//! `Recorder`); [`crate::deploy::decide`] holds the checks and [`crate::deploy::skeleton`] the
//! skeleton. `plan`, `apply`, `rollback` and `rehearse` are compositions of it:
//!
//! ```text
//!   Deploy::start   Database          connect · name guard · version · pins
//!   decide(pass)    Ledger            read (under the deploy lock when the pass writes)
//!                   RememberedHead    the ledger still holds what this host saw
//!                   DeployLock        who holds it now (plan only: a deploy holds it)
//!                   LedgerState       next tiers, or a refusal
//!                   RequiredParams                                    (Precheck stops)
//!                   GateRole          a role without outside powers, when one is needed
//!                   Gates             READY, or BLOCKED
//!                   Preflight|Drift   first apply: the probe; continuation: the schema
//!                   BundleRole        who the tiers run as                (Plan stops)
//!   in_deploy_tx    RunFiles · Repin · Probe · LedgerRow · COMMIT · Remember
//!                   (when the next tier of the run is online: decide(UnderLock) for it,
//!                   in a savepoint, before COMMIT; see online::decide_next)
//! ```
//!
//! - `plan` = `Deploy::start` + `decide(Pass::Plan)` (every check a row; a check that
//!   only judges does not stop the others) in a transaction that is rolled back: the
//!   same pipeline, stopped before the first write.
//! - `apply` = start; on a terminal `Pass::Plan` and the question; then per
//!   transaction `in_deploy_tx` around `decide(Pass::UnderLock)` and the writes, whose
//!   Ledger step asks for the deploy lock without waiting and, only when another
//!   session holds it, makes `Pass::Precheck` (the ledger's verdict) before waiting,
//!   so that a refusal is not kept waiting. The same step functions decide again
//!   under the lock, so `plan` and `apply` cannot disagree.
//! - `rollback` = start, the preview, then `in_deploy_tx` around the Ledger,
//!   RememberedHead and BundleRole steps and the rollback files ([`rollback_steps`]).
//! - `rehearse` = clone, `apply`/`rollback` on the clone, compare, drop.
//!
//! Where the next steps slot in: online (non-transactional, `CONCURRENTLY`) steps are
//! a [`Step`] after `Commit`, run outside `in_deploy_tx` by the deploy skeleton; a
//! declared deploy role is resolved in `Deploy::start` next to the pins and checked as
//! a [`CheckName`] row before `Ledger`.
//!
//! Invariant: nothing is written unless, inside the same transaction, the deploy lock
//! is held, the ledger permits it, the gates of the tiers about to run said READY under
//! read-only enforcement, and the preflight (or no-drift) check held; any failure before
//! COMMIT rolls back everything, ledger included.

use crate::deploy::checks::{Check, CheckName, PlanReport, CHECKS};
use crate::DbError;

/// One named step of a deploy, in the order a deploy takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A read-only check (a row of `plan`).
    Check(CheckName),
    /// Bundle SQL runs (the tiers, or the rollback files): the first write.
    RunFiles,
    /// airlock's own settings restored after bundle SQL.
    Repin,
    /// apply: the verify probe after the last tier; rollback: the rollback probe.
    Probe,
    /// The ledger row (with the fingerprint after).
    LedgerRow,
    Commit,
    /// This host remembers the new ledger head and keeps the schema description.
    Remember,
}

impl Step {
    /// Whether the step changes the database (or this host's memory of it).
    pub fn writes(self) -> bool {
        !matches!(self, Step::Check(_))
    }
}

/// The writes that follow the checks, in order.
const WRITES: [Step; 6] = [
    Step::RunFiles,
    Step::Repin,
    Step::Probe,
    Step::LedgerRow,
    Step::Commit,
    Step::Remember,
];

/// How far `decide` goes, and what it does at each check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// `plan`, and apply's preview before it asks: every check, each a row; a check
    /// that only judges (params, gates, preflight, drift) does not stop the others. No
    /// lock, nothing written.
    Plan,
    /// apply without a question, before the lock: the ledger's verdict and the params
    /// it needs, so a refusal is not kept waiting behind another session's lock.
    Precheck,
    /// Inside the transaction that runs the files: every check, under the deploy lock,
    /// stopping at the first that fails; the writes follow.
    UnderLock,
}

impl Pass {
    /// Whether this pass makes check `c`.
    pub fn runs(self, c: CheckName) -> bool {
        match self {
            Pass::Plan => true,
            Pass::Precheck => matches!(
                c,
                CheckName::Database
                    | CheckName::Ledger
                    | CheckName::RememberedHead
                    | CheckName::LedgerState
                    | CheckName::RequiredParams
            ),
            // The lock is taken with the ledger read; nobody else can hold it.
            Pass::UnderLock => c != CheckName::DeployLock,
        }
    }

    /// Whether every check is recorded as a row (and judging checks go on after a
    /// failure).
    pub fn records(self) -> bool {
        self == Pass::Plan
    }

    /// Whether the ledger is read under the deploy lock (and the writes follow).
    pub fn locks(self) -> bool {
        self == Pass::UnderLock
    }

    /// The steps of this pass, in order (a run makes either Preflight or Drift).
    pub fn steps(self) -> Vec<Step> {
        let checks = CHECKS
            .into_iter()
            .filter(|c| self.runs(*c))
            .map(Step::Check);
        match self {
            Pass::UnderLock => checks.chain(WRITES).collect(),
            _ => checks.collect(),
        }
    }
}

/// The steps of `rollback`, in order: no gate, preflight or drift (a rollback undoes
/// what the ledger says is applied, whatever the gates say now).
pub fn rollback_steps() -> Vec<Step> {
    [
        CheckName::Database,
        CheckName::Ledger,
        CheckName::RememberedHead,
        CheckName::LedgerState,
        CheckName::BundleRole,
    ]
    .into_iter()
    .map(Step::Check)
    .chain(WRITES)
    .collect()
}

/// Records the checks of a pass: rows for `plan`, the first failure for everyone.
pub(crate) struct Recorder<'r> {
    pub(crate) pass: Pass,
    pub(crate) report: Option<&'r mut PlanReport>,
    pub(crate) first: Option<DbError>,
    /// The checks made, in the order made (held to [`Pass::steps`] in debug builds).
    pub(crate) trace: Vec<CheckName>,
}

impl<'r> Recorder<'r> {
    pub(crate) fn new(pass: Pass, report: Option<&'r mut PlanReport>) -> Recorder<'r> {
        Recorder {
            pass,
            report: report.filter(|_| pass.records()),
            first: None,
            trace: vec![],
        }
    }

    /// The first failure, as the deploy raises it.
    pub(crate) fn into_error(self) -> DbError {
        self.first
            .unwrap_or_else(|| DbError::State("the deploy stopped without a reason".into()))
    }

    /// The pass's verdict: its first failure, if any.
    pub(crate) fn result(self) -> Result<(), DbError> {
        self.first.map_or(Ok(()), Err)
    }

    pub(crate) fn on_report(&mut self, f: impl FnOnce(&mut PlanReport)) {
        if let Some(r) = self.report.as_deref_mut() {
            f(r);
        }
    }

    /// Whether the checks made so far came in the order `steps` lists them.
    pub(crate) fn follows(&self, steps: &[Step]) -> bool {
        let mut steps = steps.iter();
        self.trace
            .iter()
            .all(|c| steps.any(|s| *s == Step::Check(*c)))
    }

    pub(crate) fn ok(&mut self, name: CheckName, evidence: impl FnOnce() -> String) {
        self.trace.push(name);
        self.on_report(|r| r.push(Check::ok(name, evidence())));
    }

    /// A check this pass does not judge now, saying why (SKIPPED; passes).
    pub(crate) fn skip(&mut self, name: CheckName, why: &str) {
        self.trace.push(name);
        self.on_report(|r| r.push(Check::skipped(name, why)));
    }

    pub(crate) fn fail(&mut self, name: CheckName, e: DbError) {
        self.trace.push(name);
        self.on_report(|r| r.push(Check::failed(name, &e)));
        self.first.get_or_insert(e);
    }

    /// A check whose value the next steps need: every pass stops at its failure (plan
    /// marks the checks not reached SKIPPED, saying `why`).
    pub(crate) fn need<T>(
        &mut self,
        name: CheckName,
        r: Result<T, DbError>,
        why: &str,
        evidence: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        match r {
            Ok(v) => {
                self.ok(name, || evidence(&v));
                Some(v)
            }
            Err(e) => {
                self.fail(name, e);
                self.stop(why)
            }
        }
    }

    /// A check that only judges: a deploy stops at its failure, plan records it and
    /// goes on.
    pub(crate) fn judge(&mut self, name: CheckName, r: Result<String, DbError>) -> Option<()> {
        match r {
            Ok(evidence) => {
                self.ok(name, || evidence);
                Some(())
            }
            Err(e) => {
                self.fail(name, e);
                self.go_on()
            }
        }
    }

    /// After a judging check failed: `Some` when the pass goes on (plan).
    pub(crate) fn go_on(&self) -> Option<()> {
        self.pass.records().then_some(())
    }

    pub(crate) fn stop<T>(&mut self, why: &str) -> Option<T> {
        self.on_report(|r| r.skip_rest(why));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(steps: &[Step]) -> Vec<CheckName> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Check(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_recorder_knows_checks_made_out_of_order() {
        let mut rec = Recorder::new(Pass::UnderLock, None);
        rec.ok(CheckName::Ledger, String::new);
        rec.ok(CheckName::Gates, String::new);
        assert!(rec.follows(&Pass::UnderLock.steps()));
        assert!(!rec.follows(&rollback_steps()), "rollback runs no gate");
        rec.ok(CheckName::GateRole, String::new);
        assert!(!rec.follows(&Pass::UnderLock.steps()));
    }

    #[test]
    fn a_failed_judgment_stops_a_deploy_and_not_a_plan() {
        let mut deploy = Recorder::new(Pass::UnderLock, None);
        let blocked = || Err(DbError::Blocked("g".into()));
        assert_eq!(deploy.judge(CheckName::Gates, blocked()), None);
        assert!(matches!(deploy.into_error(), DbError::Blocked(_)));
        let mut plan = Recorder::new(Pass::Plan, None);
        assert_eq!(plan.judge(CheckName::Gates, blocked()), Some(()));
        let broken = Err::<(), _>(DbError::State("broken".into()));
        assert_eq!(
            plan.need(CheckName::Ledger, broken, "", |_| String::new()),
            None
        );
        // The first failure is the one apply raises.
        assert!(matches!(plan.result(), Err(DbError::Blocked(_))));
    }

    #[test]
    fn plan_is_the_deploy_stopped_before_its_first_write() {
        let plan = Pass::Plan.steps();
        let deploy = Pass::UnderLock.steps();
        assert!(plan.iter().all(|s| !s.writes()));
        let first_write = deploy.iter().position(|s| s.writes()).unwrap();
        assert_eq!(deploy[first_write], Step::RunFiles);
        // Every check the deploy makes under the lock, plan makes in the same order;
        // plan adds only who holds the lock now.
        let mut planned = checks(&plan);
        planned.retain(|c| *c != CheckName::DeployLock);
        assert_eq!(planned, checks(&deploy[..first_write]));
    }

    #[test]
    fn checks_keep_the_plan_schemas_order() {
        // The `plan --json` rows come in CheckName's declared order (after the
        // command's own Signatures and Params rows).
        let order = |c: CheckName| serde_json::to_string(&c).unwrap();
        let names: Vec<String> = Pass::Plan
            .steps()
            .iter()
            .filter_map(|s| match s {
                Step::Check(c) => Some(order(*c)),
                _ => None,
            })
            .collect();
        assert_eq!(
            names.join(" "),
            "\"database\" \"ledger\" \"remembered-head\" \"deploy-lock\" \"ledger-state\" \"required-params\" \"gate-role\" \"gates\" \"preflight\" \"drift\" \"bundle-role\""
        );
    }

    #[test]
    fn the_precheck_stops_at_the_ledgers_verdict_and_takes_no_lock() {
        assert_eq!(
            checks(&Pass::Precheck.steps()),
            [
                CheckName::Database,
                CheckName::Ledger,
                CheckName::RememberedHead,
                CheckName::LedgerState,
                CheckName::RequiredParams
            ]
        );
        assert!(!Pass::Precheck.locks() && !Pass::Plan.locks() && Pass::UnderLock.locks());
        assert!(!Pass::UnderLock.runs(CheckName::DeployLock));
    }

    #[test]
    fn writes_come_in_one_order_and_commit_before_remembering() {
        let deploy = Pass::UnderLock.steps();
        let tail: Vec<Step> = deploy.into_iter().filter(|s| s.writes()).collect();
        assert_eq!(tail, WRITES);
        let at = |s| WRITES.iter().position(|w| *w == s).unwrap();
        assert!(at(Step::LedgerRow) < at(Step::Commit));
        assert!(at(Step::Commit) < at(Step::Remember));
    }

    #[test]
    fn rollback_runs_no_gate_preflight_or_drift_and_writes_as_apply_does() {
        let rb = rollback_steps();
        for c in [
            CheckName::Gates,
            CheckName::Preflight,
            CheckName::Drift,
            CheckName::RequiredParams,
        ] {
            assert!(!rb.contains(&Step::Check(c)), "{c:?}");
        }
        assert_eq!(rb.iter().filter(|s| s.writes()).count(), WRITES.len());
        assert_eq!(
            rb.iter().position(|s| s.writes()),
            rb.iter().position(|s| *s == Step::RunFiles)
        );
    }
}
