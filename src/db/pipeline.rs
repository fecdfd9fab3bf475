//! The deploy pipeline: the checks and steps of a deploy as named values, run by one
//! skeleton. `plan`, `apply`, `rollback` and `rehearse` are compositions of it:
//!
//! ```text
//!   Deploy::start   Database          connect · name guard · version · pins
//!   decide(pass)    Ledger            read (under the deploy lock when the pass writes)
//!                   RememberedHead    the ledger still holds what this host saw
//!                   DeployLock        who holds it now (plan only: a deploy holds it)
//!                   LedgerState       next tiers, or a refusal        (Precheck stops)
//!                   RequiredParams
//!                   GateRole          a role without outside powers, when one is needed
//!                   Gates             READY, or BLOCKED
//!                   Preflight|Drift   first apply: the probe; continuation: the schema
//!                   BundleRole        who the tiers run as            (Plan stops)
//!   in_deploy_tx    RunFiles · Repin · Probe · LedgerRow · COMMIT · Remember
//! ```
//!
//! - `plan` = [`Deploy::start`] + [`plan_on`]: [`decide`] with [`Pass::Plan`] (every check a
//!   row, a check that only judges does not stop the others) in a transaction that is
//!   rolled back: the same pipeline, stopped before the first write.
//! - `apply` = start, decide before the lock ([`Pass::Plan`] on a terminal, then the
//!   question; else [`Pass::Precheck`]), then per transaction [`Deploy::in_deploy_tx`]
//!   around `decide(Pass::UnderLock)` and the writes: the same step functions decide
//!   again under the lock, so `plan` and `apply` cannot disagree.
//! - `rollback` = start, the preview, then `in_deploy_tx` around the Ledger,
//!   RememberedHead and BundleRole steps and the rollback files.
//! - `rehearse` = clone, `apply`/`rollback` on the clone, compare, drop.
//!
//! Where the next steps slot in: online (non-transactional, `CONCURRENTLY`) steps are
//! a [`Step`] after `Commit` that runs outside [`Deploy::in_deploy_tx`]; a declared
//! deploy role is resolved in [`Deploy::start`] next to the pins and checked as a
//! [`CheckName`] row before `Ledger`.
//!
//! Invariant: nothing is written unless, inside the same transaction, the deploy lock
//! is held, the ledger permits it, the gates of the tiers about to run said READY under
//! read-only enforcement, and the preflight (or no-drift) check held; any failure before
//! COMMIT rolls back everything, ledger included.

use super::bundle_role::{self, BundleRole};
use super::checks::{grants_in, Check, CheckName, PlanReport};
use super::described::Tracker;
use super::gate::{self, GateReport, ProbeReport};
use super::ledger::{self, LedgerRow};
use super::options::Options;
use super::policy::{check_required, gates_for, next_tiers};
use super::receipt::{self, planned, Receipt};
use super::refusal::Mismatch;
use super::session::{BundlePins, SessionFacts};
use super::target::{self, set_params, LazyHarness, Session};
use super::{drift, files, remembered, sql_err, DbError};
use crate::spec::TxMode;
use crate::verified::VerifiedBundle;
use postgres::Transaction;
use std::time::Instant;

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

/// The checks a deploy makes against the database, in order.
const CHECKS: [CheckName; 11] = [
    CheckName::Database,
    CheckName::Ledger,
    CheckName::RememberedHead,
    CheckName::DeployLock,
    CheckName::LedgerState,
    CheckName::RequiredParams,
    CheckName::GateRole,
    CheckName::Gates,
    CheckName::Preflight,
    CheckName::Drift,
    CheckName::BundleRole,
];

/// The writes that follow the checks, in order.
const WRITES: [Step; 6] = [
    Step::RunFiles,
    Step::Repin,
    Step::Probe,
    Step::LedgerRow,
    Step::Commit,
    Step::Remember,
];

/// How far [`decide`] goes, and what it does at each check.
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

/// What the checks decided, for the steps that follow.
pub(crate) struct Decision {
    /// The tiers applied before this transaction.
    pub applied: Vec<String>,
    /// The tiers this pass covers (0-based; one in a per-tier transaction).
    pub idx: Vec<usize>,
    pub last_apply: Option<LedgerRow>,
    /// `None` when the gates were assumed open (a rehearsal's `--assume-gates`).
    pub gates: Option<GateReport>,
    pub preflight: Option<ProbeReport>,
    /// The schema fingerprint before anything ran (taken under the lock).
    pub before: Option<String>,
    pub bundle_role: Option<BundleRole>,
}

/// What every step reads.
pub(crate) struct Ctx<'a> {
    pub vb: &'a VerifiedBundle,
    pub opts: &'a Options<'a>,
    pub facts: &'a SessionFacts,
    pub pins: &'a BundlePins,
    /// The prelude every bundle file runs behind (before the bundle role's switch).
    pub prelude: &'a str,
}

/// The gate/probe harness (resolved when first needed) and the fingerprint tracker.
pub(crate) struct Tools {
    pub harness: LazyHarness,
    pub tracker: Tracker,
}

impl Tools {
    fn new(facts: &SessionFacts, pins: &BundlePins, opts: &Options<'_>) -> Tools {
        Tools {
            harness: LazyHarness::new(pins.clone(), opts.gate_role.clone()),
            tracker: drift::tracker(facts, opts),
        }
    }
}

/// Records the checks of a pass: rows for `plan`, the first failure for everyone.
pub(crate) struct Recorder<'r> {
    pass: Pass,
    report: Option<&'r mut PlanReport>,
    first: Option<DbError>,
    /// The checks made, in the order made (held to [`Pass::steps`] in debug builds).
    trace: Vec<CheckName>,
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

    fn on_report(&mut self, f: impl FnOnce(&mut PlanReport)) {
        if let Some(r) = self.report.as_deref_mut() {
            f(r);
        }
    }

    /// Whether the checks made so far came in the order `steps` lists them.
    fn follows(&self, steps: &[Step]) -> bool {
        let mut steps = steps.iter();
        self.trace
            .iter()
            .all(|c| steps.any(|s| *s == Step::Check(*c)))
    }

    fn ok(&mut self, name: CheckName, evidence: impl FnOnce() -> String) {
        self.trace.push(name);
        self.on_report(|r| r.push(Check::ok(name, evidence())));
    }

    fn fail(&mut self, name: CheckName, e: DbError) {
        self.trace.push(name);
        self.on_report(|r| r.push(Check::failed(name, &e)));
        self.first.get_or_insert(e);
    }

    /// A check whose value the next steps need: every pass stops at its failure (plan
    /// marks the checks not reached SKIPPED, saying `why`).
    fn need<T>(
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
    fn judge(&mut self, name: CheckName, r: Result<String, DbError>) -> Option<()> {
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
    fn go_on(&self) -> Option<()> {
        self.pass.records().then_some(())
    }

    fn stop<T>(&mut self, why: &str) -> Option<T> {
        self.on_report(|r| r.skip_rest(why));
        None
    }
}

/// The checks, in [`CheckName`]'s order, as `pass` makes them. `None`: a check failed
/// and the pass stopped (the recorder holds why); a plan may also return `Some` with
/// failures recorded.
pub(crate) fn decide(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    rec: &mut Recorder<'_>,
) -> Option<Decision> {
    let decision = decide_steps(tx, cx, tools, rec);
    debug_assert!(
        rec.follows(&rec.pass.steps()),
        "{:?} made its checks out of order: {:?}",
        rec.pass,
        rec.trace
    );
    decision
}

/// The steps of [`decide`], each returning what the next needs.
fn decide_steps(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    rec: &mut Recorder<'_>,
) -> Option<Decision> {
    // 1. Ledger (under the deploy lock when the pass writes), 2. RememberedHead.
    let rows = ledger_step(tx, cx, rec)?;
    remembered_step(cx, &rows, rec)?;
    // 3. DeployLock: who holds it now (a pass that writes holds it since step 1).
    if rec.pass.runs(CheckName::DeployLock) {
        deploy_lock_step(tx, rec)?;
    }
    // 4. LedgerState: the tiers to run, 5. RequiredParams.
    let mut d = ledger_state_step(cx, &rows, rec)?;
    required_params_step(cx, &d.idx, rec)?;
    if !rec.pass.runs(CheckName::GateRole) {
        return Some(d);
    }
    // 6. GateRole, when a gate or probe will run, 7. Gates.
    let gates = gate_sql_step(cx, &d.idx, rec)?;
    gate_role_step(tx, cx, tools, &d, !gates.is_empty(), rec)?;
    d.gates = gates_step(tx, cx, tools, &d.idx, gates, rec)?;
    // 8. Preflight (first apply) or Drift (continuation), after the fingerprint the
    //    ledger row records (taken only by a pass that writes).
    if rec.pass.locks() {
        d.before = Some(fingerprint_before_step(tx, tools, &d, rec)?);
    }
    if d.applied.is_empty() {
        d.preflight = preflight_step(tx, cx, tools, rec)?;
    } else if let Some(last) = d.last_apply.clone() {
        drift_step(tx, cx, tools, &d, &last, rec)?;
    }
    // 9. BundleRole: who the tiers run as, decided last before they run.
    d.bundle_role = Some(bundle_role_step(tx, cx, rec)?);
    Some(d)
}

/// The SQL of the gates guarding the tiers about to run (a failure to read it is the
/// Gates check's).
fn gate_sql_step(
    cx: &Ctx<'_>,
    idx: &[usize],
    rec: &mut Recorder<'_>,
) -> Option<Vec<(String, String, String)>> {
    match gates_for(cx.vb, idx) {
        Ok(gates) => Some(gates),
        Err(e) => {
            rec.fail(CheckName::Gates, e);
            rec.stop("the bundle's gate files could not be read")
        }
    }
}

/// The schema fingerprint before anything runs (under the lock).
fn fingerprint_before_step(
    tx: &mut Transaction<'_>,
    tools: &mut Tools,
    d: &Decision,
    rec: &mut Recorder<'_>,
) -> Option<String> {
    let name = match d.applied.is_empty() {
        true => CheckName::Preflight,
        false => CheckName::Drift,
    };
    match tools.tracker.fingerprint(tx) {
        Ok(fp) => Some(fp),
        Err(e) => {
            rec.fail(name, e);
            None
        }
    }
}

/// Ledger: airlock's own, chain intact; read under the deploy lock when the pass
/// writes (waiting up to `--lock-timeout`).
fn ledger_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    rec: &mut Recorder<'_>,
) -> Option<Vec<LedgerRow>> {
    let rows = if rec.pass.locks() {
        ledger::lock_for_deploy(tx, &cx.opts.lock_timeout)
    } else {
        ledger::read_chained(tx)
    };
    rec.need(
        CheckName::Ledger,
        rows,
        "apply refuses an untrusted or damaged ledger",
        |rows| match rows.last() {
            None => "no ledger yet: this would be the database's first apply".into(),
            Some(last) => format!(
                "{} row(s), airlock's own, hash chain intact; head seq {} ({})",
                rows.len(),
                last.seq,
                crate::report::short(&last.row_hash)
            ),
        },
    )
}

/// RememberedHead: the ledger still holds the head this host saw (anti-rollback).
fn remembered_step(
    cx: &Ctx<'_>,
    rows: &[LedgerRow],
    rec: &mut Recorder<'_>,
) -> Option<Option<remembered::Head>> {
    rec.need(
        CheckName::RememberedHead,
        remembered::check(&cx.facts.system_identifier, &cx.facts.database, rows),
        "apply refuses a ledger that lost history",
        |head| match head {
            Some(head) => format!(
                "this host saw seq {} ({}); the ledger still holds it",
                head.seq,
                crate::report::short(&head.row_hash)
            ),
            None => {
                "this host remembers no head for this database yet (its first apply here)".into()
            }
        },
    )
}

/// DeployLock (plan): who holds it now; shown, never decisive.
fn deploy_lock_step(tx: &mut Transaction<'_>, rec: &mut Recorder<'_>) -> Option<()> {
    let holders = ledger::lock_holders(tx).map(|holders| {
        if holders.is_empty() {
            "free: no other session holds it now".to_string()
        } else {
            format!(
                "held now by {}: apply waits up to --lock-timeout for it, then refuses (exit 6)",
                holders.join("; ")
            )
        }
    });
    rec.judge(CheckName::DeployLock, holders)
}

/// LedgerState: the tiers to run next, or the ledger's refusal. Under the lock, a
/// per-tier bundle covers its next tier only.
fn ledger_state_step(cx: &Ctx<'_>, rows: &[LedgerRow], rec: &mut Recorder<'_>) -> Option<Decision> {
    let (vb, m) = (cx.vb, cx.vb.manifest());
    let st = ledger::state_of(rows, vb.id());
    let next = next_tiers(m, vb.id(), rows, cx.opts.through.as_deref());
    rec.on_report(|r| {
        r.already_applied = st.applied.clone();
        if let Err(DbError::Refused(refusal)) = &next {
            r.refusal = Some(refusal.to_string());
        }
    });
    let n = m.tier.len();
    let (applied, mut idx) = rec.need(
        CheckName::LedgerState,
        next,
        "apply refuses at the ledger",
        |(applied, idx)| {
            let names: Vec<&str> = idx.iter().map(|&i| m.tier[i].name.as_str()).collect();
            format!(
                "{}; apply would run {} of {n} tier(s): {}",
                if applied.is_empty() {
                    format!("{} is not applied here", m.bundle.name)
                } else {
                    format!(
                        "applied so far: {} ({} of {n})",
                        applied.join(", "),
                        applied.len()
                    )
                },
                idx.len(),
                names.join(", ")
            )
        },
    )?;
    rec.on_report(|r| r.tiers = planned(vb, &idx));
    if rec.pass.locks() && m.bundle.transaction == TxMode::PerTier {
        idx.truncate(1);
    }
    Some(Decision {
        applied,
        idx,
        last_apply: st.last_apply,
        gates: None,
        preflight: None,
        before: None,
        bundle_role: None,
    })
}

/// RequiredParams: given, when a gated tier is about to run.
fn required_params_step(cx: &Ctx<'_>, idx: &[usize], rec: &mut Recorder<'_>) -> Option<()> {
    let m = cx.vb.manifest();
    let checked = check_required(cx.vb, idx, &cx.opts.params).map(|()| {
        let gated = idx.iter().any(|&i| !m.tier[i].gates.is_empty());
        let required: Vec<&str> = m
            .params
            .iter()
            .filter(|(_, p)| p.required)
            .map(|(k, _)| k.as_str())
            .collect();
        if required.is_empty() {
            "the bundle requires no param".to_string()
        } else if gated {
            format!("given: {}", required.join(", "))
        } else {
            format!(
                "not needed: no gated tier runs (required for the gated tiers: {})",
                required.join(", ")
            )
        }
    });
    rec.judge(CheckName::RequiredParams, checked)
}

/// GateRole: the role gates and probes run as has no outside powers, resolved when a
/// gate, the preflight or the verify probe will run. Plan adds the grants that role
/// needs for this bundle.
fn gate_role_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    d: &Decision,
    gated: bool,
    rec: &mut Recorder<'_>,
) -> Option<()> {
    let m = cx.vb.manifest();
    let needs_role = (gated && !cx.opts.skip_gates)
        || (d.applied.is_empty() && m.preflight.is_some())
        || (d.idx.last() == Some(&(m.tier.len() - 1)) && m.verify.is_some());
    if !needs_role {
        rec.ok(CheckName::GateRole, || {
            "not needed: no gate or probe runs for these tiers".into()
        });
        return Some(());
    }
    let resolved = tools.harness.get(tx).map(|h| h.role.clone());
    let role = resolved.as_ref().ok().cloned();
    let failed = resolved.is_err();
    let judged = rec.judge(
        CheckName::GateRole,
        resolved.map(|role| match role {
            Some(r) => format!("gates and probes run as role {r}"),
            None => "gates and probes run as airlock's own role (no outside powers)".into(),
        }),
    );
    if let Some(report) = rec.report.as_deref_mut() {
        grants_in(
            tx,
            cx.vb,
            cx.opts.gate_role.as_deref(),
            cx.pins,
            role,
            report,
        );
    }
    judged?;
    if failed {
        return rec.stop("gates and probes need a role without outside powers");
    }
    Some(())
}

/// Gates: the params set, then the gates of the tiers about to run, read-only.
/// `Some(None)`: assumed open (`--assume-gates` on a rehearsal's clone).
fn gates_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    idx: &[usize],
    gates: Vec<(String, String, String)>,
    rec: &mut Recorder<'_>,
) -> Option<Option<GateReport>> {
    if let Err(e) = set_params(tx, &cx.opts.params) {
        rec.fail(CheckName::Gates, e);
        return rec.stop("the params could not be set");
    }
    if gates.is_empty() || cx.opts.skip_gates {
        rec.ok(CheckName::Gates, || {
            "no gate guards the tiers about to run".into()
        });
        let none = GateReport::from_results(vec![]);
        rec.on_report(|r| r.gates = Some(none.clone()));
        return Some((!cx.opts.skip_gates).then_some(none));
    }
    let run = match tools.harness.get(tx) {
        Ok(h) => gate::run_gates(tx, &gates, h),
        Err(e) => Err(e),
    };
    let report = match run {
        Ok(report) => report,
        Err(e) => {
            rec.fail(CheckName::Gates, e);
            return rec.go_on().map(|()| None);
        }
    };
    let verdict = if report.ready() {
        let names: Vec<&str> = report.gates.iter().map(|r| r.name.as_str()).collect();
        Ok(format!("READY: {}", names.join(", ")))
    } else {
        let m = cx.vb.manifest();
        let open = |name: &String| report.gates.iter().any(|r| &r.name == name && r.ready);
        let runnable: Vec<String> = idx
            .iter()
            .map(|&i| &m.tier[i])
            .take_while(|t| t.gates.iter().all(open))
            .map(|t| t.name.clone())
            .collect();
        rec.on_report(|r| r.runnable_now = runnable);
        Err(DbError::Blocked(format!(
            "{}; nothing was changed",
            report.blocked_summary()
        )))
    };
    rec.on_report(|r| r.gates = Some(report.clone()));
    rec.judge(CheckName::Gates, verdict)?;
    Some(Some(report))
}

/// Preflight (first apply): the probe equals its expectation.
fn preflight_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    rec: &mut Recorder<'_>,
) -> Option<Option<ProbeReport>> {
    let Some(p) = &cx.vb.manifest().preflight else {
        rec.ok(CheckName::Preflight, || {
            "the bundle has no preflight probe".into()
        });
        return Some(None);
    };
    match run_probe(tx, cx.vb, tools, &p.file, &p.expect) {
        Ok(pr) => {
            rec.on_report(|r| r.preflight = Some(pr.clone()));
            let verdict = if pr.matches {
                Ok(format!(
                    "{}: all {} expectation(s) hold",
                    p.file,
                    p.expect.len()
                ))
            } else {
                Err(DbError::Mismatch(Mismatch::Preflight {
                    described: pr.describe(),
                }))
            };
            rec.judge(CheckName::Preflight, verdict)?;
            Some(Some(pr))
        }
        Err(e) => {
            rec.fail(CheckName::Preflight, e);
            rec.go_on().map(|()| None)
        }
    }
}

/// Drift (continuation): the schema is what the previous apply left, judged on the
/// description this host keeps (read here; only a commit writes it).
fn drift_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    d: &Decision,
    last: &LedgerRow,
    rec: &mut Recorder<'_>,
) -> Option<()> {
    let now = match &d.before {
        Some(fp) => Ok(fp.clone()),
        None => tools.tracker.fingerprint(tx),
    };
    let verdict = now.and_then(|fp| {
        let j = drift::judge(&fp, last, cx.opts.allow_drift);
        rec.on_report(|r| r.drift = Some(j.summary));
        match j.refusal {
            None => Ok(j.evidence),
            Some(e) => Err(e),
        }
    });
    rec.judge(CheckName::Drift, verdict)
}

/// BundleRole: who the tiers run as, decided last before they run (under the lock).
fn bundle_role_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    rec: &mut Recorder<'_>,
) -> Option<BundleRole> {
    let role = match bundle_role::resolve(tx, &cx.vb.manifest().target) {
        Ok(role) => role,
        Err(e) => {
            rec.fail(CheckName::BundleRole, e);
            return None;
        }
    };
    let guarded = bundle_role::guard(tx, &role).map(|()| role.describe_guarded());
    rec.on_report(|r| r.bundle_role = Some(role.clone()));
    let passed = guarded.is_ok();
    rec.judge(CheckName::BundleRole, guarded)?;
    passed.then_some(role)
}

/// A probe of the bundle, run as the gate role.
fn run_probe(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    tools: &mut Tools,
    file: &str,
    expect: &std::collections::BTreeMap<String, String>,
) -> Result<ProbeReport, DbError> {
    let sql = vb.sql(file).map_err(|e| DbError::State(e.to_string()))?;
    let h = tools.harness.get(tx)?;
    gate::run_probe(tx, file, sql, expect, h)
}

/// Step Probe: run a probe and hold it to its expectation; a mismatch is the refusal
/// `mismatch` makes of the probe's description.
pub(crate) fn expect_probe(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    tools: &mut Tools,
    file: &str,
    expect: &std::collections::BTreeMap<String, String>,
    mismatch: fn(String) -> Mismatch,
) -> Result<ProbeReport, DbError> {
    let pr = run_probe(tx, vb, tools, file, expect)?;
    if !pr.matches {
        return Err(DbError::Mismatch(mismatch(pr.describe())));
    }
    Ok(pr)
}

/// A deploy under way: the pinned session on the target, the prelude every bundle
/// file runs behind, the gate/probe harness and the fingerprint tracker.
pub(crate) struct Deploy {
    pub session: Session,
    pub pins: BundlePins,
    pub prelude: String,
    pub tools: Tools,
    pub started: Instant,
    pub started_at: String,
}

impl Deploy {
    /// Step Database: connect, name guard, server version, session settings.
    pub(crate) fn start(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Deploy, DbError> {
        let (started, started_at) = (Instant::now(), receipt::now());
        let m = vb.manifest();
        let session = target::open(opts.conn, &opts.expected_db, m, &opts.statement_timeout)?;
        let mut d = Deploy::on(session, vb, opts);
        (d.started, d.started_at) = (started, started_at);
        Ok(d)
    }

    /// A deploy on a session already open.
    pub(crate) fn on(session: Session, vb: &VerifiedBundle, opts: &Options<'_>) -> Deploy {
        let pins = session.pins(vb.manifest(), opts);
        Deploy {
            prelude: pins.prelude(),
            tools: Tools::new(&session.facts, &pins, opts),
            pins,
            session,
            started: Instant::now(),
            started_at: receipt::now(),
        }
    }

    /// A receipt for `event` on this bundle and server, before anything ran.
    pub(crate) fn receipt(
        &self,
        event: &str,
        outcome: &str,
        vb: &VerifiedBundle,
        opts: &Options<'_>,
    ) -> Receipt {
        let mut r = Receipt::new(
            event,
            outcome,
            vb,
            &self.session.info,
            &opts.params,
            self.started_at.clone(),
        );
        r.system_identifier = self.session.facts.system_identifier.clone();
        r
    }

    /// `pass` ([`Pass::Plan`] or [`Pass::Precheck`]) in a transaction that is rolled
    /// back, with its own harness and tracker: nothing it does outlives it.
    pub(crate) fn dry(
        &mut self,
        vb: &VerifiedBundle,
        opts: &Options<'_>,
        rec: &mut Recorder<'_>,
    ) -> Result<(), DbError> {
        let Deploy {
            session,
            pins,
            prelude,
            ..
        } = self;
        let mut tools = Tools::new(&session.facts, pins, opts);
        let cx = Ctx {
            vb,
            opts,
            facts: &session.facts,
            pins,
            prelude,
        };
        let mut tx = session
            .client
            .transaction()
            .map_err(|e| sql_err("BEGIN", &e))?;
        decide(&mut tx, &cx, &mut tools, rec);
        let _ = tx.rollback();
        Ok(())
    }

    /// One deploy transaction: BEGIN → `body` (decide again under the lock, run,
    /// append the ledger row) → Ctrl-C check → the whole bundle verified → COMMIT →
    /// remember. A `body` that returns no ledger row had nothing to do: rolled back.
    pub(crate) fn in_deploy_tx<T>(
        &mut self,
        vb: &VerifiedBundle,
        opts: &Options<'_>,
        body: impl FnOnce(
            &mut Transaction<'_>,
            &Ctx<'_>,
            &mut Tools,
        ) -> Result<(Option<LedgerRow>, T), DbError>,
    ) -> Result<(Option<LedgerRow>, T), DbError> {
        let Deploy {
            session,
            pins,
            prelude,
            tools,
            ..
        } = self;
        let cx = Ctx {
            vb,
            opts,
            facts: &session.facts,
            pins,
            prelude,
        };
        let mut tx = session
            .client
            .transaction()
            .map_err(|e| sql_err("BEGIN", &e))?;
        let (row, value) = body(&mut tx, &cx, tools)?;
        let Some(row) = row else {
            tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
            return Ok((None, value));
        };
        files::interrupted_check()?;
        // Nothing commits before the whole bundle verified (a streamed tier ran while
        // the rest of the archive was still being read).
        files::all_verified(vb)?;
        tx.commit().map_err(|e| sql_err("COMMIT", &e))?;
        remember(opts, cx.facts, &row, &tools.tracker);
        Ok((Some(row), value))
    }
}

/// Step Remember, after a commit: remember the new head and keep the schema
/// description (a failure is only a warning; the change has committed).
fn remember(opts: &Options<'_>, facts: &SessionFacts, row: &LedgerRow, tracker: &Tracker) {
    if opts.remember {
        if let Some(w) = remembered::remember(&facts.system_identifier, &facts.database, row) {
            eprintln!("{w}");
        }
        if let Some(w) = tracker.keep() {
            eprintln!("{w}");
        }
    }
}

/// The checks under the lock, as a deploy makes them: stop at the first failure.
pub(crate) fn decide_under_lock(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
) -> Result<Decision, DbError> {
    let mut rec = Recorder::new(Pass::UnderLock, None);
    decide(tx, cx, tools, &mut rec).ok_or_else(|| rec.into_error())
}

/// Rollback's Ledger and RememberedHead steps, as every deploy makes them.
pub(crate) fn ledger_under_lock(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
) -> Result<Vec<LedgerRow>, DbError> {
    let mut rec = Recorder::new(Pass::UnderLock, None);
    let rows = ledger_step(tx, cx, &mut rec).and_then(|rows| {
        remembered_step(cx, &rows, &mut rec)?;
        Some(rows)
    });
    debug_assert!(rec.follows(&rollback_steps()), "{:?}", rec.trace);
    rows.ok_or_else(|| rec.into_error())
}

/// Rollback's BundleRole step, as every deploy makes it.
pub(crate) fn bundle_role_under_lock(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
) -> Result<BundleRole, DbError> {
    let mut rec = Recorder::new(Pass::UnderLock, None);
    let role = bundle_role_step(tx, cx, &mut rec);
    debug_assert!(rec.follows(&rollback_steps()), "{:?}", rec.trace);
    role.ok_or_else(|| rec.into_error())
}

/// The plan on an open session: every check, in apply's order, in one transaction
/// that is rolled back; also what `apply` runs before it asks for the database name.
/// Returns the first error as `apply` would have raised it.
pub fn plan_on(
    session: Session,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    report: PlanReport,
) -> (PlanReport, Option<DbError>) {
    let mut deploy = Deploy::on(session, vb, opts);
    plan_deploy(&mut deploy, vb, opts, report)
}

pub(crate) fn plan_deploy(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    mut report: PlanReport,
) -> (PlanReport, Option<DbError>) {
    let info = &deploy.session.info;
    report.database = info.database.clone();
    report.push(Check::ok(
        CheckName::Database,
        format!(
            "connected to {} (server_version_num {}) as {}{}",
            info.database,
            info.server_version_num,
            info.session_user,
            match deploy.session.facts.overridden.as_str() {
                "" => String::new(),
                names => format!("; database/role settings not inherited (the server's own values instead): {names}"),
            }
        ),
    ));
    let mut rec = Recorder::new(Pass::Plan, Some(&mut report));
    let began = deploy.dry(vb, opts, &mut rec);
    let first = rec.first.take();
    drop(rec);
    match began {
        Ok(()) => (report.finish(), first),
        Err(e) => {
            report.push(Check::failed(CheckName::Ledger, &e));
            report.skip_rest("apply stops above");
            (report.finish(), Some(e))
        }
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
