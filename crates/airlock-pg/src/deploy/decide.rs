//! The checks of a deploy ([`CheckName`]'s order), each a function that returns the
//! typed value the next needs, made by one `decide` for every pass
//! ([`Pass`]): `plan`'s rows, apply's precheck, and apply's decision under the lock.
//!
//! Invariant: `plan` and `apply` judge through these functions only, so they cannot
//! disagree; nothing here writes (params are `SET LOCAL`, the transaction is the
//! caller's).

use crate::catalog::described::Tracker;
use crate::deploy::bundle_role::{self, BundleRole};
use crate::deploy::checks::{grants_in, CheckName};
use crate::deploy::options::Options;
use crate::deploy::pipeline::{rollback_steps, Pass, Recorder};
use crate::deploy::target::{set_params, LazyHarness};
use crate::gates::gate::{self, GateReport, ProbeReport};
use crate::gates::listed::gates_for;
use crate::ledger::chain::{self as ledger, LedgerRow};
use crate::ledger::policy::{check_required, next_tiers};
use crate::ledger::receipt::planned;
use crate::refusal::Mismatch;
use crate::session::hermetic::{BundlePins, SessionFacts};
use crate::{ledger::drift, ledger::remembered, DbError};
use airlock_bundle::spec::TxMode;
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;

/// What the checks decided, for the steps that follow.
pub(crate) struct Decision {
    /// The tiers applied before this transaction.
    pub applied: Vec<String>,
    /// The tiers this pass covers (0-based; one in a per-tier transaction).
    pub idx: Vec<usize>,
    pub last_apply: Option<LedgerRow>,
    /// The ledger's head row (any bundle's) when the checks read it.
    pub head: Option<String>,
    /// Online steps recorded of the first tier to run (when it is online).
    pub steps_done: usize,
    /// `None` when the gates were assumed open (a rehearsal's `--assume-gates`).
    pub gates: Option<GateReport>,
    pub preflight: Option<ProbeReport>,
    /// The schema fingerprint before anything ran (taken under the lock).
    pub before: Option<String>,
    pub bundle_role: Option<BundleRole>,
}

/// What every step reads.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub vb: &'a VerifiedBundle,
    pub opts: &'a Options<'a>,
    pub facts: &'a SessionFacts,
    pub pins: &'a BundlePins,
    /// The prelude every bundle file runs behind (before the bundle role's switch).
    pub prelude: &'a str,
    /// The schema fingerprint this transaction took after its last bundle statement,
    /// when it decides the next tier itself (an online tier decided in the transaction
    /// before it, [`crate::deploy::online::decide_next`]): the fingerprint before that tier,
    /// without describing the schema again. `None`: described when needed.
    pub taken: Option<&'a str>,
}

/// The gate/probe harness (resolved when first needed) and the fingerprint tracker.
pub(crate) struct Tools {
    pub harness: LazyHarness,
    pub tracker: Tracker,
    /// The owner-code check, prepared on this connection ([`bundle_role::guard_prepared`]).
    pub owner_code: Option<postgres::Statement>,
    /// The ledger's inspection, prepared on this connection ([`ledger::lock_for_deploy`]).
    pub ledger: Option<postgres::Statement>,
    /// Sessions squatting the online key were named in a notice this run.
    pub squatters_named: bool,
    /// Ledger rows the body of the deploy transaction running now appended, when it
    /// appends more than one (`reissue`'s deliveries): what the last look before
    /// COMMIT holds the ledger to ([`crate::ledger::chain::ours_only`]).
    pub appended_rows: i64,
    /// The rows that decide this run were found signed ([`Options::vouch`]) in an
    /// earlier transaction of it: the rows after them are this run's own, signed
    /// only when its receipt is delivered.
    pub vouched: bool,
}

impl Tools {
    pub(crate) fn new(facts: &SessionFacts, pins: &BundlePins, opts: &Options<'_>) -> Tools {
        Tools {
            harness: LazyHarness::new(pins.clone(), opts.gate_role.clone()),
            tracker: drift::tracker(facts, opts.remember),
            owner_code: None,
            ledger: None,
            squatters_named: false,
            appended_rows: 0,
            vouched: false,
        }
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
    let rows = ledger_step(tx, cx, tools, true, rec)?;
    remembered_step(cx, &rows, rec)?;
    // 3. DeployLock: who holds it now (a pass that writes holds it since step 1), and
    //    whether an airlock run's online steps keep it.
    let online_run = rec.pass.runs(CheckName::DeployLock) && deploy_lock_step(tx, rec)?;
    // 4. LedgerState: the tiers to run, 5. RequiredParams.
    let mut d = ledger_state_step(cx, tools, &rows, rec)?;
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
        d.before = Some(fingerprint_before_step(tx, cx, tools, &d, rec)?);
    }
    // (A run is a continuation once anything of it is recorded: a tier, or an
    //  online step.) Not while a run's online steps change the schema: apply waits
    //  for that run first.
    match d.last_apply.clone() {
        _ if online_run => schema_unjudged_step(&d, rec),
        None => d.preflight = preflight_step(tx, cx, tools, rec)?,
        Some(last) => drift_step(tx, cx, tools, &d, &last, rec)?,
    }
    // 9. BundleRole: who the tiers run as, decided last before they run.
    d.bundle_role = Some(bundle_role_step(tx, cx, tools, rec)?);
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
    cx: &Ctx<'_>,
    tools: &mut Tools,
    d: &Decision,
    rec: &mut Recorder<'_>,
) -> Option<String> {
    let name = match d.applied.is_empty() {
        true => CheckName::Preflight,
        false => CheckName::Drift,
    };
    let taken = cx.taken.map(|fp| Ok(fp.to_string()));
    match taken.unwrap_or_else(|| tools.tracker.fingerprint(tx)) {
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
    tools: &mut Tools,
    prechecked: bool,
    rec: &mut Recorder<'_>,
) -> Option<Vec<LedgerRow>> {
    let mut squatted = false;
    let rows = if rec.pass.locks() {
        let mut inspect = tools.ledger.take();
        let locked = ledger::lock_for_deploy(
            tx,
            &cx.opts.lock_timeout,
            &mut |tx| {
                if prechecked {
                    precheck(tx, cx, tools)
                } else {
                    Ok(())
                }
            },
            &mut inspect,
        );
        tools.ledger = inspect;
        let locked = locked.map(|locked| {
            squatted = locked.online_squatted;
            // The ledger's creation has ended: the fingerprint before the tiers sees
            // all of it, and the one after does not take it for a change.
            if let Some(xid) = locked.created_by {
                tools.tracker.finished(xid);
            }
            locked.rows
        });
        // Named once a run (every deploy transaction of it sees them).
        if let (true, false, Some(o)) = (squatted, tools.squatters_named, cx.opts.observer) {
            tools.squatters_named = true;
            for who in crate::session::sessions::online_squatters(tx) {
                o.notice(&format!("ignored: {who}"));
            }
        }
        locked
    } else {
        ledger::read_chained(tx)
    };
    rec.need(
        CheckName::Ledger,
        rows,
        "apply refuses an untrusted or damaged ledger",
        |rows| match rows.last() {
            None => "no apply recorded yet (the ledger is empty or not made yet): this would be the database's first apply".into(),
            Some(last) => format!(
                "{} row(s), airlock's own, hash chain intact; head seq {} ({})",
                rows.len(),
                last.seq,
                airlock_base::text::short(&last.row_hash)
            ),
        },
    )
}

/// While another session holds the deploy lock, before waiting for it: apply's
/// [`Pass::Precheck`] (the ledger's verdict, read without the lock), so that a refusal
/// is not kept waiting. Rollback waits without one.
fn precheck(tx: &mut Transaction<'_>, cx: &Ctx<'_>, tools: &mut Tools) -> Result<(), DbError> {
    let mut rec = Recorder::new(Pass::Precheck, None);
    decide(tx, cx, tools, &mut rec);
    rec.result()
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
                airlock_base::text::short(&head.row_hash)
            ),
            None => {
                "this host remembers no head for this database yet (its first apply here)".into()
            }
        },
    )
}

/// DeployLock (plan): who holds it now. A deploy transaction's hold is shown, never
/// decisive (it ends with that transaction); an airlock run running online steps
/// ([`ledger::online_runs`], what apply waits for) fails the check as apply would
/// (exit 6), naming its session. `Some(true)`: such a run holds it.
fn deploy_lock_step(tx: &mut Transaction<'_>, rec: &mut Recorder<'_>) -> Option<bool> {
    match ledger::online_runs(tx) {
        Ok(holders) if holders.is_empty() => {}
        Ok(holders) => {
            rec.fail(CheckName::DeployLock, DbError::OnlineRun { holders });
            return rec.go_on().map(|()| true);
        }
        Err(e) => {
            rec.fail(CheckName::DeployLock, e);
            return rec.go_on().map(|()| false);
        }
    }
    let holders = crate::session::sessions::lock_holders(tx).map(|holders| {
        if holders.is_empty() {
            "free: no other session holds it now".to_string()
        } else {
            format!(
                "held now by {}: apply waits up to --lock-timeout for it, then refuses (exit 6)",
                holders.join("; ")
            )
        }
    });
    rec.judge(CheckName::DeployLock, holders).map(|()| false)
}

/// Preflight or Drift (plan), while an airlock run's online steps change the schema:
/// not judged. What that run leaves is judged once it has ended, as apply judges it
/// (apply waits for the run first); judged now, the index its step is building would
/// look like drift.
fn schema_unjudged_step(d: &Decision, rec: &mut Recorder<'_>) {
    let name = match d.last_apply {
        None => CheckName::Preflight,
        Some(_) => CheckName::Drift,
    };
    rec.skip(
        name,
        "not judged now: an airlock run is running online steps on this database (deploy-lock above) and changes the schema until it ends; apply judges it once that run has ended: plan again then",
    );
}

/// LedgerState: the tiers to run next, or the ledger's refusal. Under the lock, a
/// per-tier bundle covers its next tier only.
fn ledger_state_step(
    cx: &Ctx<'_>,
    tools: &mut Tools,
    rows: &[LedgerRow],
    rec: &mut Recorder<'_>,
) -> Option<Decision> {
    let (vb, m) = (cx.vb, cx.vb.manifest());
    let st = ledger::state_of(rows, vb.id());
    let next = vouched(cx, tools, rows)
        .and_then(|()| next_tiers(m, vb.id(), rows, cx.opts.through.as_deref()));
    rec.on_report(|r| {
        r.already_applied = st.applied.clone();
        if let Err(DbError::Refused(refusal)) = &next {
            r.refusal = Some(refusal.to_string());
            r.refusal_kind = Some(refusal.kind());
        }
    });
    let n = m.tier.len();
    let (applied, mut idx) = rec.need(
        CheckName::LedgerState,
        next,
        "apply refuses at the ledger",
        |(applied, idx)| {
            let names: Vec<&str> = idx.iter().map(|&i| m.tier[i].name.as_str()).collect();
            let steps = match idx.first().map(|&i| &m.tier[i]) {
                Some(t) if t.online => match st.steps.get(&t.name) {
                    Some(k) => format!(
                        "; online tier {:?}: {k} step(s) done and recorded, apply continues with step {}",
                        t.name,
                        k + 1
                    ),
                    None => String::new(),
                },
                _ => String::new(),
            };
            let follows = match (&m.follows, crate::ledger::policy::refuse_unfollowed(m, rows)) {
                (Some(f), Ok(Some(row))) => format!(
                    "follows {} {}, applied here at {} (ledger seq {}); ",
                    f.name,
                    f.version,
                    airlock_bundle::trust::shown(&row.at),
                    row.seq
                ),
                _ => String::new(),
            };
            format!(
                "{follows}{}; apply would run {} of {n} tier(s): {}{steps}",
                // The release, by version: its train may well be applied here (the
                // release it follows, named just before).
                if applied.is_empty() {
                    format!("{} {} is not applied here", m.bundle.name, m.bundle.version)
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
    if rec.pass.locks() {
        idx = one_transaction(m, idx);
    }
    let steps_done = idx
        .first()
        .and_then(|&i| st.steps.get(&m.tier[i].name))
        .copied()
        .unwrap_or(0);
    Some(Decision {
        applied,
        idx,
        last_apply: st.last_apply,
        head: rows.last().map(|r| r.row_hash.clone()),
        steps_done,
        gates: None,
        preflight: None,
        before: None,
        bundle_role: None,
    })
}

/// With a trust store that requires signed receipts ([`Options::vouch`]), the rows
/// that decide what this run does (already applied, a downgrade, the release it
/// follows: every row of its release's name, and of the release it follows) must each
/// be signed by an operator key. A row none covers was written by something other
/// than airlock (the deploy login's password used directly, a superuser), or by a
/// run of airlock stopped before its receipt: refused, naming the rows, nothing done.
fn vouched(cx: &Ctx<'_>, tools: &mut Tools, rows: &[LedgerRow]) -> Result<(), DbError> {
    let Some(vouch) = cx.opts.vouch.filter(|_| !tools.vouched) else {
        return Ok(());
    };
    let m = cx.vb.manifest();
    let follows = m.follows.as_ref().map(|f| f.bundle_id.as_str());
    let unsigned = vouch.unsigned(&cx.facts.database, rows);
    let deciding: Vec<String> = rows
        .iter()
        .filter(|r| unsigned.contains(&r.seq))
        .filter(|r| r.bundle_name == m.bundle.name || Some(r.bundle_id.as_str()) == follows)
        .map(|r| {
            format!(
                "{} ({} of {} {})",
                r.seq, r.event, r.bundle_name, r.bundle_version
            )
        })
        .collect();
    if deciding.is_empty() {
        tools.vouched = true;
        return Ok(());
    }
    Err(DbError::LedgerForged {
        message: format!(
            "ledger row(s) {} decide what this run does, and no operator key signed them, though the trust store requires signed receipts: something other than airlock wrote them (the deploy login's password used directly, a superuser), or a run of airlock that wrote them stopped before its receipt; refused, nothing was done. A run of yours that was interrupted: check its rows (airlock status), then `airlock reissue BUNDLE --sign-receipt KEY` signs them",
            deciding.join(", ")
        ),
    })
}

/// Of the tiers to run, those the next transaction runs: an online tier alone (its
/// steps run after it, outside any transaction), else the tiers up to the next online
/// one (one with `transaction = "per-tier"`).
fn one_transaction(m: &airlock_bundle::manifest::Manifest, mut idx: Vec<usize>) -> Vec<usize> {
    let online = |i: &usize| m.tier[*i].online;
    match idx.first() {
        Some(first) if online(first) => idx.truncate(1),
        _ => {
            let cut = idx.iter().position(online).unwrap_or(idx.len());
            idx.truncate(cut);
            if m.bundle.transaction == TxMode::PerTier {
                idx.truncate(1);
            }
        }
    }
    idx
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
        // The rollback probe runs as the gate role too (at rollback): plan still
        // derives what it needs.
        if let Some(report) = rec.report.as_deref_mut().filter(|_| m.rollback.is_some()) {
            let role = cx.opts.gate_role.as_deref();
            grants_in(tx, cx.vb, role, cx.pins, None, report);
        }
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
    // READY needs the database's gates and, when the bundle asks for it, the quorum
    // of signed approvals (judged by the one function `gate` uses too).
    let run = tools.harness.get(tx).cloned().and_then(|h| {
        crate::ledger::ratify::gate_report(cx.vb, &cx.opts.claim(), Some(idx), tx, &gates, &h)
    });
    let report = match run {
        Ok(report) => report,
        Err(e) => {
            rec.fail(CheckName::Gates, e);
            return rec.go_on().map(|()| None);
        }
    };
    let verdict = if report.ready() {
        let names: Vec<&str> = report.gates.iter().map(|r| r.name.as_str()).collect();
        let quorum = report
            .ratification
            .as_ref()
            .map(|q| format!("; {}", q.summary()))
            .unwrap_or_default();
        Ok(format!("READY: {}{quorum}", names.join(", ")))
    } else {
        let m = cx.vb.manifest();
        let ratified = report.ratification.as_ref().is_none_or(|q| q.met);
        let needs_quorum =
            |gates: &[String]| m.ratification.as_ref().is_some_and(|r| r.guards(gates));
        let open = |name: &String| report.gates.iter().any(|r| &r.name == name && r.ready);
        // The leading tiers `apply --through` would run past the gates: open, with
        // the params a gated one requires. (Whether the other checks let it run at
        // all is judged once they are made: [`PlanReport::finish`].)
        let runnable: Vec<String> = idx
            .iter()
            .take_while(|&&i| check_required(cx.vb, &[i], &cx.opts.params).is_ok())
            .map(|&i| &m.tier[i])
            .take_while(|t| {
                t.gates.is_empty()
                    || ((ratified || !needs_quorum(&t.gates)) && t.gates.iter().all(open))
            })
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
    let tracker = &tools.tracker;
    let verdict = now.and_then(|fp| as_recorded(tx, fp, last)).and_then(|fp| {
        let j = drift::judge(&fp, last, cx.opts.allow_drift, || {
            drift::DriftChanges::from(tracker.changes_since(&last.fingerprint_after))
        });
        let finished = match &j.refusal {
            Some(_) => finished_builds(tx, cx, d, tracker, last)
                .or_else(|| resumed_leftovers(tx, cx, d, tracker, last))
                .or_else(|| stopped_drop(cx, d, tracker, last)),
            None => None,
        };
        if let Some(evidence) = finished {
            rec.on_report(|r| r.drift = Some(evidence.clone()));
            return Ok(evidence);
        }
        rec.on_report(|r| {
            r.drift = Some(j.summary);
            r.drift_changes = j.changes.clone();
        });
        match j.refusal {
            None => Ok(j.evidence),
            Some(e) => Err(explain_leftovers(tx, cx, d, e)),
        }
    });
    rec.judge(CheckName::Drift, verdict)
}

/// The fingerprint drift is judged on: `now`, or the one `last` recorded when an
/// airlock before fingerprint format 4 wrote it ([`fingerprint::compute_legacy`]: the
/// schema described as it described it, on the major that wrote it) and the schema
/// has not changed since. Asked only when `now` differs from what `last` recorded.
fn as_recorded(tx: &mut Transaction<'_>, now: String, last: &LedgerRow) -> Result<String, DbError> {
    if now == last.fingerprint_after {
        return Ok(now);
    }
    let legacy = crate::catalog::fingerprint::compute_legacy(tx)?;
    Ok(if legacy == last.fingerprint_after {
        legacy
    } else {
        now
    })
}

/// The next tier when it is online, and the indexes its steps not yet done build that
/// are there already, each the step's own: `finished` (VALID, a build the server
/// finished after its run stopped) or INVALID leftovers of an interrupted build. None
/// when the next tier is not online or there are none.
fn own_indexes<'c>(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'c>,
    d: &Decision,
    finished: bool,
) -> Option<(&'c airlock_bundle::spec::TierSpec, Vec<String>)> {
    let m = cx.vb.manifest();
    let tier = d.idx.first().map(|&i| &m.tier[i]).filter(|t| t.online)?;
    let (files, from, path) = (&tier.files, d.steps_done, &cx.pins.search_path);
    let found = if finished {
        crate::catalog::invalid_index::finished_builds(tx, cx.vb, files, from, path)
    } else {
        crate::catalog::invalid_index::leftovers(tx, cx.vb, files, from, path)
    };
    (!found.is_empty()).then_some((tier, found))
}

/// Drift on a continuation of an online tier that is only the indexes its steps not
/// yet recorded build, found finished (a run stopped while its `CREATE INDEX
/// CONCURRENTLY` went on, and the server finished the build): the very indexes the
/// next steps build, not drift. The evidence, when the schema without them is what
/// `last` left; the steps record them as done when they come ([`crate::deploy::online`]).
fn finished_builds(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    d: &Decision,
    tracker: &crate::catalog::described::Tracker,
    last: &LedgerRow,
) -> Option<String> {
    let (tier, built) = own_indexes(tx, cx, d, true)?;
    if !only_these(tracker, last, &built) {
        return None;
    }
    Some(format!(
        "no drift: the schema is what ledger seq {} left, apart from {} {}, which online tier {:?} builds in a step not yet recorded: the build of a run that stopped, finished by the server (the step is recorded as done, not built again)",
        last.seq,
        if built.len() == 1 { "the index" } else { "the indexes" },
        built.join(", "),
        tier.name
    ))
}

/// Drift on a continuation of an online tier that is only the index its next step
/// (the one running when a run stopped) drops with `DROP INDEX CONCURRENTLY name`:
/// that drop, finished or half done (INVALID), not drift. The evidence; the step finds
/// the index gone (done) or drops it again ([`crate::deploy::online`]).
fn stopped_drop(
    cx: &Ctx<'_>,
    d: &Decision,
    tracker: &crate::catalog::described::Tracker,
    last: &LedgerRow,
) -> Option<String> {
    let m = cx.vb.manifest();
    let tier = d.idx.first().map(|&i| &m.tier[i]).filter(|t| t.online)?;
    let steps = crate::catalog::invalid_index::steps_of(cx.vb, &tier.files).ok()?;
    let drop = steps.get(d.steps_done)?.1.drops.clone()?;
    let schemas = match &drop.schema {
        Some(s) => vec![s.clone()],
        None => cx.pins.search_path.clone(),
    };
    let names: Vec<String> = (schemas.iter())
        .map(|s| format!("{s}.{}", drop.index))
        .collect();
    let changes = tracker.changes_since(&last.fingerprint_after).ok()?;
    if changes.is_empty()
        || !changes
            .iter()
            .all(|c| c.kind == "index" && names.contains(&c.name))
    {
        return None;
    }
    Some(format!(
        "no drift: the schema is what ledger seq {} left, apart from the index {}, which online tier {:?} drops in its next step (DROP INDEX CONCURRENTLY): the drop of a run that stopped",
        last.seq, changes[0].name, tier.name
    ))
}

/// Whether the schema's only change since `last` is the indexes `names`: added since
/// (the schema without them is what `last` left), or, when this host kept the
/// description `last` left, each change one of them (an INVALID build that was there
/// at `last`, finished since).
fn only_these(
    tracker: &crate::catalog::described::Tracker,
    last: &LedgerRow,
    names: &[String],
) -> bool {
    let added = tracker.fingerprint_without("index", names).as_deref()
        == Some(last.fingerprint_after.as_str());
    added
        || tracker
            .changes_since(&last.fingerprint_after)
            .is_ok_and(|changes| {
                changes
                    .iter()
                    .all(|c| c.kind == "index" && names.contains(&c.name))
            })
}

/// `--resume`: drift on a continuation of an online tier that is only the INVALID
/// indexes interrupted builds of its steps not yet recorded left (each the step's own
/// and built by nobody now). The evidence; the step drops each and builds it again
/// ([`crate::deploy::online`]).
fn resumed_leftovers(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    d: &Decision,
    tracker: &crate::catalog::described::Tracker,
    last: &LedgerRow,
) -> Option<String> {
    if !cx.opts.resume {
        return None;
    }
    let (tier, left) = own_indexes(tx, cx, d, false)?;
    if !only_these(tracker, last, &left) {
        return None;
    }
    Some(format!(
        "no drift (--resume): the schema is what ledger seq {} left, apart from the INVALID {} {}, left by an interrupted build of online tier {:?}'s next step and built by no session now; the step drops it and builds it again",
        last.seq,
        if left.len() == 1 { "index" } else { "indexes" },
        left.join(", "),
        tier.name
    ))
}

/// Drift on a continuation of an online tier whose run stopped during an index
/// build: the INVALID index the build left is (part of) the change. Name it, with the
/// command that removes it (the step builds it again).
fn explain_leftovers(tx: &mut Transaction<'_>, cx: &Ctx<'_>, d: &Decision, e: DbError) -> DbError {
    let m = cx.vb.manifest();
    let Some(tier) = d.idx.first().map(|&i| &m.tier[i]).filter(|t| t.online) else {
        return e;
    };
    let cmds = crate::catalog::invalid_index::leftover_commands(
        tx,
        cx.vb,
        &tier.files,
        d.steps_done,
        &cx.pins.search_path,
    );
    if cmds.is_empty() {
        return e;
    }
    // The drift's own advice ("continue with --allow-drift") would keep the INVALID
    // index for good: the advice here replaces it.
    let said = e.to_string();
    let advice = match &e {
        DbError::Mismatch(m) => m.hint(),
        _ => None,
    };
    let said = advice
        .and_then(|a| said.strip_suffix(a))
        .map_or(said.as_str(), str::trim_end);
    DbError::State(format!(
        "{said} An interrupted run of online tier {:?} left an INVALID index (a concurrent build that never finished), which is part of that change. If nothing else changed, apply again with --resume (airlock proves the index the step's own, drops it and builds it again), or remove it yourself and apply again: {}",
        tier.name,
        cmds.join(" ")
    ))
}

/// BundleRole: who the tiers run as, decided last before they run (under the lock).
fn bundle_role_step(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    rec: &mut Recorder<'_>,
) -> Option<BundleRole> {
    let role = match bundle_role::resolve(tx, &cx.vb.manifest().target) {
        Ok(role) => role,
        Err(e) => {
            rec.fail(CheckName::BundleRole, e);
            return None;
        }
    };
    // A pass that runs the tiers holds the answer until they ran.
    let hold = rec.pass.locks().then_some(cx.opts.lock_timeout.as_str());
    let guarded = bundle_role::guard_prepared(tx, &role, &mut tools.owner_code, hold)
        .map(|()| role.describe_guarded());
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
    tools: &mut Tools,
) -> Result<Vec<LedgerRow>, DbError> {
    let mut rec = Recorder::new(Pass::UnderLock, None);
    let rows = ledger_step(tx, cx, tools, false, &mut rec).and_then(|rows| {
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
    tools: &mut Tools,
) -> Result<BundleRole, DbError> {
    let mut rec = Recorder::new(Pass::UnderLock, None);
    let role = bundle_role_step(tx, cx, tools, &mut rec);
    debug_assert!(rec.follows(&rollback_steps()), "{:?}", rec.trace);
    role.ok_or_else(|| rec.into_error())
}
