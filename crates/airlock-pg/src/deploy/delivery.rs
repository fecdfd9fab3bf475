//! Receipts delivered, and receipts reissued after an interrupted run.
//!
//! After a run's receipt was saved, one `receipt` row in the ledger records that it
//! left the run: the SHA-256 of its exact bytes and the rows it holds
//! ([`ledger::Delivery`]). A run killed after a commit and before its receipt leaves
//! rows no delivery covers; `airlock reissue` writes their receipt from the ledger,
//! marked as reissued, and records that delivery too. So an auditor tells the two
//! apart from the ledger alone: rows with a delivery whose receipt is not given were
//! hidden (or lost), rows without one were interrupted, and a reissue stands in only
//! for those.
//!
//! Invariant: a delivery row is appended only after the receipt's bytes were saved,
//! in its own transaction under the deploy lock, never inside the run's own (so a row
//! no delivery covers was never delivered); a reissue covers only rows no delivery
//! covers, and only those of the bundle it was given.

use crate::deploy::decide::{Ctx, Tools};
use crate::deploy::options::Options;
use crate::deploy::skeleton::Deploy;
use crate::ledger::chain::{self as ledger, Delivery, LedgerRow, NewRow, RECEIPT_EVENT};
use crate::ledger::receipt::{self, operator_name, Receipt, Reissued, StepDone};
pub use crate::ledger::receipt::{Deliver, Delivered, DeliveryRecord};
use crate::{ledger::remembered, sql_err, DbError};
use airlock_bundle::verified::VerifiedBundle;
use postgres::Transaction;
use std::collections::{BTreeMap, BTreeSet};

/// Deliver a finished run's receipt ([`Options::deliver`]) and record the delivery;
/// the receipt, with what became of that ([`Receipt::delivery`]). Nothing here fails
/// the run: its change has committed.
pub(crate) fn deliver(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    mut receipt: Receipt,
) -> Receipt {
    let Some(deliverer) = opts.deliver else {
        return receipt;
    };
    if receipt.ledger.is_empty() {
        return receipt;
    }
    let Some(delivered) = deliverer.deliver(&receipt) else {
        return receipt;
    };
    let recorded = record(deploy, vb, opts, &receipt, delivered);
    receipt.delivery = Some(match recorded {
        Ok(row) => DeliveryRecord {
            ledger_seq: Some(row.seq),
            warning: None,
        },
        Err(e) => DeliveryRecord {
            ledger_seq: None,
            warning: Some(format!(
                "the receipt was saved, but its delivery could not be recorded in the ledger ({e}): an audit will take its rows for an interrupted run's"
            )),
        },
    });
    receipt
}

/// The `receipt` row of a delivered (not reissued) receipt, in its own transaction
/// under the deploy lock; the host remembers it as the ledger's head.
fn record(
    deploy: &mut Deploy,
    vb: &VerifiedBundle,
    opts: &Options<'_>,
    receipt: &Receipt,
    delivered: Delivered,
) -> Result<LedgerRow, DbError> {
    let mut tx = deploy
        .session
        .client
        .transaction()
        .map_err(|e| sql_err("BEGIN", &e))?;
    ledger::lock_head_for_record(&mut tx, &opts.lock_timeout, &mut deploy.tools.ledger)?;
    let row = append_delivery(&mut tx, vb, receipt, delivered, false)?;
    tx.commit().map_err(|e| sql_err("COMMIT", &e))?;
    if opts.remember {
        let facts = &deploy.session.facts;
        if let Some(w) = remembered::remember(&facts.system_identifier, &facts.database, &row) {
            eprintln!("{w}");
        }
    }
    Ok(row)
}

/// Append the `receipt` row of `receipt` (saved as `delivered` says) inside the
/// caller's transaction, which holds the deploy lock.
fn append_delivery(
    tx: &mut Transaction<'_>,
    vb: &VerifiedBundle,
    receipt: &Receipt,
    delivered: Delivered,
    reissued: bool,
) -> Result<LedgerRow, DbError> {
    let (first, last) = match (receipt.ledger.first(), receipt.ledger.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => {
            return Err(DbError::State(
                "a receipt without ledger rows is not delivered".into(),
            ))
        }
    };
    let widened = ledger::allow_receipts(tx)?;
    let covers: Vec<i64> = receipt.ledger.iter().map(|r| r.seq).collect();
    ledger::append(
        tx,
        NewRow {
            event: RECEIPT_EVENT,
            bundle_name: receipt.bundle_name.clone(),
            bundle_version: receipt.bundle_version.clone(),
            sequence: receipt.sequence as i64,
            bundle_id: receipt.bundle_id.clone(),
            tiers: receipt.tiers.clone(),
            params: receipt.params.clone(),
            operator: operator_name(),
            fingerprint_before: first.fingerprint_before.clone(),
            fingerprint_after: last.fingerprint_after.clone(),
            bundle_tiers: vb.manifest().tier.iter().map(|t| t.name.clone()).collect(),
            approvals: vec![],
            receipt: Some(Delivery {
                sha256: delivered.sha256,
                since: widened.then(|| covers.iter().copied().min()).flatten(),
                covers,
                reissued,
                signature: delivered.rows_signature,
            }),
        },
    )
}

/// The rows of what ran (`apply`, `rollback`, `step`) that no delivered receipt holds,
/// in ledger order, from the ledger's delivery era on (`era`: [`ledger::delivery_era`];
/// rows before it were written when no delivery was recorded); of one bundle when
/// `bundle_id` is given.
pub fn undelivered<'r>(
    rows: &'r [LedgerRow],
    era: Option<i64>,
    bundle_id: Option<&str>,
) -> Vec<&'r LedgerRow> {
    let Some(since) = era else {
        return vec![];
    };
    let covered: BTreeSet<i64> = rows
        .iter()
        .filter_map(LedgerRow::delivery)
        .flat_map(|d| d.covers)
        .collect();
    rows.iter()
        .filter(|r| r.ran() && r.seq >= since && !covered.contains(&r.seq))
        .filter(|r| bundle_id.is_none_or(|id| r.bundle_id == id))
        .collect()
}

/// The runs `rows` (undelivered rows of one bundle, in ledger order) came from: a run
/// of an apply is its `apply` and `step` rows, a rollback's its own; a rollback row
/// (or, after one, an apply row) starts another run.
fn runs<'r>(rows: &[&'r LedgerRow]) -> Vec<Vec<&'r LedgerRow>> {
    let mut out: Vec<Vec<&LedgerRow>> = vec![];
    for &row in rows {
        let joins = out.last().is_some_and(|run: &Vec<&LedgerRow>| {
            let open = run.last().expect("a run has rows");
            row.event != "rollback" && open.event != "rollback"
        });
        if joins {
            out.last_mut().expect("checked").push(row);
        } else {
            out.push(vec![row]);
        }
    }
    out
}

/// The receipt of an interrupted run, from its ledger rows alone (`rows`: the whole
/// ledger, for what remains after it): what the ledger records (tiers, params,
/// fingerprints, online steps, the operator who ran it), marked as reissued; what only
/// the run knew (its gates', probes' and preflight's answers, each step's place) is
/// absent.
fn reissued_receipt(cx: &Ctx<'_>, rows: &[LedgerRow], run: &[&LedgerRow]) -> Receipt {
    let (vb, m) = (cx.vb, cx.vb.manifest());
    let (first, last) = (run[0], run[run.len() - 1]);
    let event = if first.event == "rollback" {
        "rollback"
    } else {
        "apply"
    };
    // A run whose rows end inside an online tier stopped part way; one whose rows end
    // at a tier's end stopped between its commit and its receipt.
    let outcome = match (event, last.event.as_str()) {
        ("rollback", _) => "rolled-back",
        (_, "step") => "partial",
        _ => "applied",
    };
    let params: BTreeMap<String, String> = serde_json::from_str(&last.params).unwrap_or_default();
    let mut r = Receipt::new(
        event,
        outcome,
        vb,
        &cx.facts.info(),
        &params,
        first.at.clone(),
    );
    r.system_identifier = cx.facts.system_identifier.clone();
    r.operator = last.operator.clone();
    r.tiers = run
        .iter()
        .filter(|row| row.event != "step")
        .flat_map(|row| row.tier_names())
        .collect();
    r.fingerprint_before = first.fingerprint_before.clone();
    r.fingerprint_after = last.fingerprint_after.clone();
    r.ledger = run.iter().map(|&row| row.clone()).collect();
    r.online_steps = run
        .iter()
        .filter(|row| row.event == "step")
        .map(|row| StepDone {
            tier: row.tier_names().join(", "),
            step: 0,
            of: 0,
            file: String::new(),
            line: 0,
            duration_ms: 0,
            notes: vec![format!(
                "ledger row {}: reissued, the step's place was not recorded",
                row.seq
            )],
        })
        .collect();
    // What the ledger says is applied once the run's last row was written.
    let upto: Vec<LedgerRow> = rows.iter().filter(|x| x.seq <= last.seq).cloned().collect();
    let applied = ledger::state_of(&upto, vb.id()).applied;
    r.remaining_tiers = m
        .tier
        .iter()
        .map(|t| t.name.clone())
        .filter(|t| !applied.contains(t))
        .collect();
    r.finished_at = last.at.clone();
    let mut from_ledger = vec![
        "tiers, params, operator and schema fingerprints (each row)".to_string(),
        "each online step completed (its row)".to_string(),
    ];
    r.gates = recorded_gates(cx, run, &params);
    if let Some(q) = r.gates.as_ref().and_then(|g| g.ratification.as_ref()) {
        from_ledger.push(format!(
            "the signed approvals the apply row records, verified again as of that row's time ({})",
            q.summary()
        ));
    }
    r.reissued = Some(Reissued {
        at: receipt::now(),
        by: operator_name(),
        reason: "the run that wrote these ledger rows stopped before its receipt was delivered: no receipt row of the ledger covers them".into(),
        from_ledger,
        not_recorded: vec![
            "each gate's own answer (the run passed them: no tier runs otherwise)".into(),
            "the preflight, verify and rollback probes' answers".into(),
            "each online step's file, line and duration".into(),
        ],
    });
    r
}

/// The gate report the ledger vouches for: the approvals the run's apply row records
/// (a ratified tier ran on them), judged again with the trust store `reissue` was
/// given, as of the row's time, for the row's params. `None` when no row records any
/// or the bundle asks for no ratification.
fn recorded_gates(
    cx: &Ctx<'_>,
    run: &[&LedgerRow],
    params: &BTreeMap<String, String>,
) -> Option<crate::gates::gate::GateReport> {
    let m = cx.vb.manifest();
    let ratification = m.ratification.as_ref()?;
    let store = &cx.opts.approvals?.store;
    let row = run
        .iter()
        .rev()
        .find(|r| r.event == "apply" && r.approvals.is_some())?;
    let signed: Vec<airlock_bundle::approval::SignedApproval> = row
        .recorded_approvals()?
        .into_iter()
        .map(|a| airlock_bundle::approval::SignedApproval {
            file: format!("ledger row {}'s approval by {}", row.seq, a.key_id),
            document: a.document,
            signature: a.signature,
        })
        .collect();
    let claim = airlock_bundle::approval::RunClaim {
        bundle_id: cx.vb.id(),
        manifest: m,
        params,
    };
    let at = chrono::DateTime::parse_from_rfc3339(&row.at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| chrono::Utc::now());
    let quorum = airlock_bundle::approval::judge_quorum(store, ratification, &claim, &signed, at);
    Some(crate::gates::gate::GateReport::from_results(vec![]).with_ratification(Some(quorum)))
}

/// `airlock reissue`: under the deploy lock, the receipt of every run of this bundle
/// whose rows no delivered receipt holds, each saved by [`Options::deliver`] and its
/// delivery recorded (reissued), then COMMIT. Nothing to reissue: an empty list.
pub fn reissue(vb: &VerifiedBundle, opts: &Options<'_>) -> Result<Vec<Receipt>, DbError> {
    let deliverer = opts
        .deliver
        .ok_or_else(|| DbError::State("reissue needs somewhere to save receipts".into()))?;
    let mut deploy = Deploy::start(vb, opts)?;
    let (_, receipts) = deploy.in_deploy_tx(vb, opts, |tx, cx, tools| {
        reissue_tx(tx, cx, tools, deliverer)
    })?;
    Ok(receipts)
}

/// [`reissue`]'s transaction body: the ledger under the lock (checked, chained, the
/// host's remembered head held), each run's receipt saved and its delivery appended.
fn reissue_tx(
    tx: &mut Transaction<'_>,
    cx: &Ctx<'_>,
    tools: &mut Tools,
    deliverer: &dyn Deliver,
) -> Result<(Option<LedgerRow>, Vec<Receipt>), DbError> {
    let rows = crate::deploy::decide::ledger_under_lock(tx, cx, tools)?;
    let others = crate::session::sessions::airlock_sessions(tx)?;
    if !others.is_empty() {
        return Err(DbError::RunInProgress { sessions: others });
    }
    let era = ledger::delivery_era(&rows, ledger::has_receipt_column(tx)?);
    let pending = undelivered(&rows, era, Some(cx.vb.id()));
    let mut receipts = vec![];
    let mut last_row = None;
    for run in runs(&pending) {
        let mut receipt = reissued_receipt(cx, &rows, &run);
        let Some(delivered) = deliverer.deliver(&receipt) else {
            return Err(DbError::State(format!(
                "the reissued receipt of ledger row(s) {} could not be saved; nothing was recorded",
                seqs(&run)
            )));
        };
        let row = append_delivery(tx, cx.vb, &receipt, delivered, true)?;
        receipt.delivery = Some(DeliveryRecord {
            ledger_seq: Some(row.seq),
            warning: None,
        });
        last_row = Some(row);
        receipts.push(receipt);
        tools.appended_rows += 1;
    }
    Ok((last_row, receipts))
}

fn seqs(run: &[&LedgerRow]) -> String {
    run.iter()
        .map(|r| r.seq.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
