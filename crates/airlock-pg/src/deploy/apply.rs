//! `gate`, `apply` and `rollback` against the target: compositions of the deploy
//! pipeline ([`crate::deploy::pipeline`], [`crate::deploy::skeleton`]), each written as its numbered steps.
//!
//! Invariant: nothing is written unless, inside the same transaction, the deploy lock
//! is held, the ledger permits it, the gates of the tiers about to run said READY under
//! read-only enforcement, and the preflight (or no-drift) check held; any failure before
//! COMMIT rolls back everything, ledger included. Params reach SQL only through
//! `set_config('airlock.NAME', value, true)`.

use crate::deploy::decide::{self, Ctx, Decision, Tools};
use crate::deploy::skeleton::{self as deploy, Deploy};
use crate::gates::gate::{GateReport, ProbeReport};
use crate::ledger::chain::{self as ledger, LedgerRow};
use crate::refusal::Mismatch;
use crate::{
    deploy::delivery, deploy::files, deploy::online, deploy::retry, session::hermetic as session,
    sql_err, DbError,
};
use airlock_bundle::approval::QuorumReport;
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;

// The names callers and tests use (`db::apply::Options`…), wherever they now live.
pub use crate::deploy::checks::PlanReport;
pub use crate::deploy::options::{Observer, Options};
pub use crate::deploy::target::{open, Session};
pub(crate) use crate::deploy::target::{read_checked, set_params};
pub use crate::gates::listed::all_gates;
pub(crate) use crate::gates::listed::gates_for;
pub use crate::ledger::policy::check_required;
pub(crate) use crate::ledger::policy::next_tiers;
pub use crate::ledger::receipt::{operator_name, PlannedFile, PlannedTier, Receipt};

/// `airlock apply`.
pub fn apply(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Receipt, DbError> {
    // 1. Database: connect, name guard, server version, pins.
    let mut deploy = Deploy::start(vb, opts)?;
    // 2. On a terminal, every check `plan` makes, then the question (otherwise the
    //    ledger's verdict comes first only when the lock is busy: a refusal does not
    //    wait for it).
    decide_before_lock(&mut deploy, vb, opts)?;
    // 3. Each transaction (one, or one per tier): decide again under the lock, run the
    //    tiers, verify, append the ledger row, commit, remember.
    //    An online tier is decided in such a transaction (rolled back), then runs its
    //    steps outside any, each recorded as it completes; one that follows a tier of
    //    this run is decided in the transaction that ran (or recorded) that tier,
    //    before its COMMIT (`online::decide_next`).
    //    4. Deliver the receipt, and record its delivery in the ledger.
    let mut receipt = deploy.receipt("apply", "applied", vb, opts);
    match apply_all(&mut deploy, vb, opts, &mut receipt) {
        Ok(()) => {
            let receipt = deploy.finish(receipt);
            Ok(delivery::deliver(&mut deploy, vb, opts, receipt))
        }
        Err(e) if receipt.ledger.is_empty() => Err(e),
        // Part of the run committed (online steps, tiers of a per-tier apply): its
        // receipt says what.
        Err(e) => {
            receipt.outcome = "partial".into();
            let receipt = deploy.finish(receipt);
            Err(DbError::Partial {
                error: Box::new(e),
                receipt: Box::new(delivery::deliver(&mut deploy, vb, opts, receipt)),
                saved: None,
            })
        }
    }
}

/// The bundle's tiers, in order, neither `applied` before this run nor `ran` by it.
fn remaining(vb: &VerifiedBundle, applied: &[String], ran: &[String]) -> Vec<String> {
    vb.manifest()
        .tier
        .iter()
        .filter(|t| !applied.contains(&t.name) && !ran.contains(&t.name))
        .map(|t| t.name.clone())
        .collect()
}

/// Step 3 of [`apply`]: every transaction (and online tier) of the run, each joining
/// `receipt` as it commits.
fn apply_all(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    receipt: &mut Receipt,
) -> Result<(), DbError> {
    // An online tier decided in the transaction before it (which took the online
    // lock for it): its steps run next, with no decide transaction of their own.
    let mut decided: Option<Box<Decision>> = None;
    loop {
        let (row, ran) = match decided.take() {
            Some(decision) => (None, Ran::Online(*decision)),
            None => retry::retrying(
                opts,
                deploy,
                |d| &mut d.session.client,
                |d| {
                    // A transaction that failed after deciding the next tier must not
                    // leave the online lock it took for it.
                    d.in_deploy_tx(vb, opts, apply_tx)
                        .inspect_err(|_| ledger::release_online_lock(&mut d.session.client))
                },
            )?,
        };
        let (row, mut ran) = match ran {
            Ran::Tx(applied) => (row, applied),
            Ran::Online(decision) => {
                let run = online::apply_tier(deploy, vb, opts, &decision);
                receipt.online_steps.extend(run.steps);
                let mut rows = run.rows;
                if let Some(e) = run.failed {
                    // The steps it recorded stay; the tier is not done.
                    receipt.remaining_tiers = remaining(vb, &decision.applied, &receipt.tiers);
                    if receipt.fingerprint_before.is_empty() && !rows.is_empty() {
                        receipt.fingerprint_before = decision.before.clone().unwrap_or_default();
                    }
                    if let Some(last) = rows.last() {
                        receipt.fingerprint_after = last.fingerprint_after.clone();
                    }
                    receipt.ledger.extend(rows);
                    return Err(e);
                }
                let last = rows.pop();
                receipt.ledger.extend(rows);
                let ran = Applied {
                    before: decision.before.clone().unwrap_or_default(),
                    after: run.after,
                    verify: run.probe,
                    decision,
                    next: run.next,
                };
                (last, ran)
            }
        };
        decided = ran.next.take();
        if add_to_receipt(receipt, vb, opts, row, ran) {
            // Only a tier of this run is decided ahead (`decide_next`).
            debug_assert!(decided.is_none());
            return Ok(());
        }
    }
}

/// What an apply transaction decided and did: ran tiers, or decided an online tier
/// (run after it, outside any transaction).
enum Ran {
    Tx(Applied),
    Online(Decision),
}

/// Apply's decision before the lock, on a terminal: [`Pass::Plan`] and the operator's
/// answer. Otherwise the deploy transaction asks for the lock without waiting, and
/// only when another session holds it makes [`Pass::Precheck`] (the ledger's verdict)
/// before waiting, so that a refusal is not kept waiting behind the lock.
fn decide_before_lock(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
) -> Result<(), DbError> {
    match opts.confirm {
        None => Ok(()),
        Some(confirm) => {
            let start = PlanReport::new(vb, &deploy.session.info.database, vec![]);
            let (preview, failed) = deploy::plan_deploy(deploy, vb, opts, start);
            if let Some(e) = failed {
                return Err(e);
            }
            if !confirm(&preview) {
                return Err(DbError::Cancelled);
            }
            Ok(())
        }
    }
}

/// What one apply transaction did.
struct Applied {
    decision: Decision,
    verify: Option<ProbeReport>,
    before: String,
    after: String,
    /// The next tier, online, decided before this transaction committed
    /// ([`online::decide_next`]).
    next: Option<Box<Decision>>,
}

/// One apply transaction, inside [`Deploy::in_deploy_tx`]: the checks, then the tiers
/// and the ledger row; for an online tier, the checks and the online lock only (the
/// transaction is rolled back, the steps run after it).
fn apply_tx(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
) -> Result<(Option<LedgerRow>, Ran), DbError> {
    let (vb, opts, m) = (cx.vb, cx.opts, cx.vb.manifest());
    // 1. Every check again, under the deploy lock.
    let decision = decide::decide_under_lock(tx, cx, tools)?;
    if m.tier[decision.idx[0]].online {
        if !ledger::hold_online_lock(tx)? {
            return Err(DbError::LockBusy {
                waited: "0s".into(),
                holders: crate::session::sessions::online_holders(tx)?,
            });
        }
        return Ok((None, Ran::Online(decision)));
    }
    let before = decision.before.clone().unwrap_or_default();
    // 2. The tiers, as the bundle role.
    let role = decision
        .bundle_role
        .as_ref()
        .expect("decided under the lock");
    files::run_tiers(
        tx,
        vb,
        &role.prelude(cx.prelude),
        &decision.idx,
        opts.observer,
    )?;
    // 3. The tiers may have changed any setting (search_path, role…): airlock's own
    //    statements from here on run under its pins again.
    session::repin(tx, &opts.statement_timeout)?;
    // 4. The verify probe, after the last tier.
    let verify =
        match &m.verify {
            Some(v) if decision.idx.last() == Some(&(m.tier.len() - 1)) => Some(
                decide::expect_probe(tx, vb, tools, &v.file, &v.expect, |described| {
                    Mismatch::Verify { described }
                })?,
            ),
            _ => None,
        };
    // 5. The ledger row.
    let after = tools.tracker.fingerprint(tx)?;
    let row = ledger_row(
        tx,
        cx,
        "apply",
        tier_names(cx, &decision.idx),
        &before,
        &after,
        decision
            .gates
            .as_ref()
            .and_then(|g| g.ratification.as_ref()),
    )?;
    // 6. The next tier, when it is online: decided here, before COMMIT.
    let ran = *decision.idx.last().expect("a transaction runs a tier");
    let next = online::decide_next(tx, cx, tools, ran, &after)?.map(Box::new);
    Ok((
        Some(row),
        Ran::Tx(Applied {
            decision,
            verify,
            before,
            after,
            next,
        }),
    ))
}

fn tier_names(cx: &Ctx<'_>, idx: &[usize]) -> Vec<String> {
    let m = cx.vb.manifest();
    idx.iter().map(|&i| m.tier[i].name.clone()).collect()
}

/// Step LedgerRow: the row this event appends.
fn ledger_row(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    event: &'static str,
    tiers: Vec<String>,
    before: &str,
    after: &str,
    approvals: Option<&QuorumReport>,
) -> Result<LedgerRow, DbError> {
    deploy::append_row(tx, cx.vb, cx.opts, event, tiers, (before, after), approvals)
}

/// A committed apply transaction joins the receipt; true when the run is done (the
/// last tier, or `--through`'s, ran).
fn add_to_receipt(
    receipt: &mut Receipt,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    row: Option<LedgerRow>,
    ran: Applied,
) -> bool {
    let m = vb.manifest();
    let n = m.tier.len();
    let Applied {
        decision: d,
        verify,
        before,
        after,
        next: _,
    } = ran;
    if let Some(g) = d.gates {
        merge_gates(receipt, g);
    }
    if d.preflight.is_some() {
        receipt.preflight = d.preflight;
    }
    if receipt.fingerprint_before.is_empty() {
        receipt.fingerprint_before = before;
    }
    if verify.is_some() {
        receipt.verify = verify;
    }
    receipt
        .tiers
        .extend(d.idx.iter().map(|&i| m.tier[i].name.clone()));
    receipt.fingerprint_after = after;
    receipt.ledger.extend(row);
    let through_idx = crate::ledger::policy::last_of_run(m, opts.through.as_deref());
    let done = d.idx.last().copied().unwrap_or(n - 1) >= through_idx;
    // What is left once this transaction committed: a run that stops later (a failed
    // online step) leaves exactly this, and its partial receipt says so.
    receipt.remaining_tiers = remaining(vb, &d.applied, &receipt.tiers);
    done
}

/// A gate asked again (before a later transaction of the same run: an online tier it
/// guards) keeps its place and takes its latest answer: one row per gate.
fn merge_gates(receipt: &mut Receipt, report: GateReport) {
    match &mut receipt.gates {
        None => receipt.gates = Some(report),
        Some(g) => {
            for answer in report.gates {
                match g.gates.iter_mut().find(|kept| kept.name == answer.name) {
                    Some(kept) => *kept = answer,
                    None => g.gates.push(answer),
                }
            }
            let quorum = report.ratification.or(g.ratification.take());
            *g = GateReport::from_results(std::mem::take(&mut g.gates)).with_ratification(quorum);
        }
    }
}

/// `airlock rollback`: idempotent; a no-op that says so when nothing is applied.
pub fn rollback(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Receipt, DbError> {
    let m = vb.manifest();
    // 1. Database: connect, name guard, server version, pins.
    let mut deploy = Deploy::start(vb, opts)?;
    let rb = m.rollback.as_ref().ok_or(DbError::NoRollback)?;
    // 2. On a terminal: the preview, and the question.
    if let Some(confirm) = opts.confirm {
        let applied = ledger::state_of(&deploy.session.ledger()?, vb.id()).touched(m);
        if !applied.is_empty() {
            let files = rb.files_for(&applied);
            let mut preview =
                PlanReport::preview(vb, &deploy.session.info.database, applied, vec![]);
            // What it destroys and what the data would make fail (`plan --rollback`),
            // read only once the bundle-role check passed.
            let client = &mut deploy.session.client;
            if crate::deploy::bundle_role::check(client, &m.spec().target).is_ok() {
                preview.predictions = Some(crate::predict::predict_rollback(
                    client,
                    vb,
                    &files,
                    std::time::Duration::from_secs(5),
                ));
            }
            if !confirm(&preview) {
                return Err(DbError::Cancelled);
            }
        }
    }
    // 3. One transaction: the ledger under the lock, the rollback files as the bundle
    //    role, the rollback probe, the ledger row, commit, remember. An online
    //    rollback is decided in it (rolled back), then runs outside any.
    let mut receipt = deploy.receipt("rollback", "rolled-back", vb, opts);
    let (row, undo) = retry::retrying(
        opts,
        &mut deploy,
        |d| &mut d.session.client,
        |d| d.in_deploy_tx(vb, opts, |tx, cx, tools| rollback_decide(tx, cx, tools, rb)),
    )?;
    let (row, applied, undone) = match undo {
        Undo::Nothing => {
            receipt.outcome = "nothing-to-roll-back".into();
            return Ok(deploy.finish(receipt));
        }
        Undo::Done(applied, undone) => (row, applied, undone),
        Undo::Online(decided) => {
            let applied = decided.undone.clone();
            let before = decided.before.clone();
            let mut run = online::rollback(&mut deploy, vb, opts, decided);
            if let Some(e) = run.failed {
                return Err(e);
            }
            receipt.online_steps = run.steps;
            let row = run.rows.pop();
            let undone = RolledBack {
                before,
                after: run.after,
                probe: run.probe,
            };
            (row, applied, undone)
        }
    };
    receipt.tiers = applied;
    receipt.rollback_probe = undone.probe;
    receipt.fingerprint_before = undone.before;
    receipt.fingerprint_after = undone.after;
    receipt.ledger.extend(row);
    receipt.remaining_tiers = m.tier.iter().map(|t| t.name.clone()).collect();
    // 4. Deliver the receipt, and record its delivery in the ledger.
    let receipt = deploy.finish(receipt);
    Ok(delivery::deliver(&mut deploy, vb, opts, receipt))
}

/// Rollback's transaction: the ledger under the lock, then the rollback files (or, for
/// an online rollback, the decision only: the steps run after it).
fn rollback_decide(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    rb: &airlock_bundle::spec::RollbackSpec,
) -> Result<(Option<LedgerRow>, Undo), DbError> {
    let opts = cx.opts;
    let (applied, head) = applied_under_lock(tx, cx, tools)?;
    if applied.is_empty() {
        return Ok((None, Undo::Nothing));
    }
    if rb.online {
        crate::deploy::target::set_params(tx, &opts.params)?;
        let before = tools.tracker.fingerprint(tx)?;
        let role = decide::bundle_role_under_lock(tx, cx, tools)?;
        if !ledger::hold_online_lock(tx)? {
            return Err(DbError::LockBusy {
                waited: "0s".into(),
                holders: crate::session::sessions::online_holders(tx)?,
            });
        }
        let decided = online::RollbackDecision {
            undone: applied,
            role,
            head,
            before,
        };
        return Ok((None, Undo::Online(decided)));
    }
    // After a partial apply, only the files of the tiers that ran (and those that undo
    // the whole bundle), in the order of `files`.
    let files = rb.files_for(&applied);
    let (row, undone) = rollback_tx(tx, cx, tools, &files, applied.clone())?;
    Ok((Some(row), Undo::Done(applied, undone)))
}

/// What rollback's transaction decided: nothing to undo, undone, or an online rollback
/// to run after it.
enum Undo {
    Nothing,
    Done(Vec<String>, RolledBack),
    Online(online::RollbackDecision),
}

/// Rollback's checks under the lock: the Ledger and RememberedHead steps every deploy
/// makes, then what the ledger says is applied.
fn applied_under_lock(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
) -> Result<(Vec<String>, Option<String>), DbError> {
    let rows = decide::ledger_under_lock(tx, cx, tools)?;
    let head = rows.last().map(|r| r.row_hash.clone());
    Ok((
        ledger::state_of(&rows, cx.vb.id()).touched(cx.vb.manifest()),
        head,
    ))
}

/// What one rollback transaction did.
struct RolledBack {
    before: String,
    after: String,
    probe: Option<ProbeReport>,
}

/// The rollback's writes, inside [`Deploy::in_deploy_tx`].
fn rollback_tx(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    files: &[String],
    applied: Vec<String>,
) -> Result<(LedgerRow, RolledBack), DbError> {
    let (vb, opts, m) = (cx.vb, cx.opts, cx.vb.manifest());
    // 1. Params, the fingerprint before, who the files run as.
    crate::deploy::target::set_params(tx, &opts.params)?;
    let before = tools.tracker.fingerprint(tx)?;
    let role = decide::bundle_role_under_lock(tx, cx, tools)?;
    // 2. The rollback files.
    files::run_rollback_files(tx, vb, &role.prelude(cx.prelude), files, opts.observer)?;
    // 3. airlock's own settings again.
    session::repin(tx, &opts.statement_timeout)?;
    // 4. The rollback probe.
    let rb = m.rollback.as_ref().expect("checked before the transaction");
    let probe = match (&rb.probe, &rb.expect) {
        (Some(probe), Some(expect)) => Some(decide::expect_probe(
            tx,
            vb,
            tools,
            probe,
            expect,
            |described| Mismatch::RollbackProbe { described },
        )?),
        _ => None,
    };
    // 5. The ledger row.
    let after = tools.tracker.fingerprint(tx)?;
    let row = ledger_row(tx, cx, "rollback", applied, &before, &after, None)?;
    Ok((
        row,
        RolledBack {
            before,
            after,
            probe,
        },
    ))
}

/// `airlock gate`: one transaction, always rolled back (the gates in it run read-only);
/// the session closes.
pub fn gate(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<GateReport, DbError> {
    let m = vb.manifest();
    let mut session = open(opts.conn, &opts.expected_db, m, &opts.statement_timeout)?;
    let gates = all_gates(vb)?;
    let harness = session.harness_if(!gates.is_empty(), m, opts)?;
    let mut tx = session
        .client
        // Not READ ONLY: each gate creates its wrapper function in `pg_temp` (in a
        // savepoint that is rolled back, as the whole transaction is); the gate itself
        // runs read-only and in parallel mode (`gate::run_gates`).
        .build_transaction()
        .start()
        .map_err(|e| sql_err("BEGIN", &e))?;
    set_params(&mut tx, &opts.params)?;
    let report =
        crate::ledger::ratify::gate_report(vb, &opts.claim(), None, &mut tx, &gates, &harness)?;
    tx.rollback().map_err(|e| sql_err("ROLLBACK", &e))?;
    drop(session);
    Ok(report)
}
