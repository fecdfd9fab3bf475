//! The "ratification" check of a receipt: the approvals it carries, verified again
//! offline against the audited bundle's `[ratification]` and today's trust store.
//!
//! Invariant: an apply receipt of a bundle that asks for ratification passes only
//! when a gated tier did not run, or the approvals it carries, each verified again
//! over its exact document bytes, meet the quorum for that bundle, its sequence and
//! the receipt's params. What the receipt says about them is never believed.

use super::{ReceiptDoc, Verdicts};
use crate::approval::{self, QuorumReport, RunClaim};
use crate::archive::Opened;
use crate::trust::{parse_rfc3339, TrustStore};
use std::collections::BTreeMap;

/// What a receipt carries of its gates: the quorum judged when it ran.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub(super) struct ReceiptGates {
    #[serde(default)]
    pub ratification: Option<QuorumReport>,
}

/// The basis every ratification verdict rests on.
const BASIS: &str = "the approvals the receipt's gate report carries and those its apply ledger row records (which --db or --ledger vouches for), both meeting the quorum, each signature verified again over its exact document with today's trust store (role approver), judged at the time the receipt says the apply judged them, against the audited bundle's [ratification], id, sequence and the receipt's params";

/// Record the ratification verdict of `doc` (its bundle `opened`); true when it lets
/// the audit pass. Nothing is recorded for a bundle that asks for none.
pub(super) fn check(
    subject: &str,
    doc: &ReceiptDoc,
    opened: &Opened,
    store: &TrustStore,
    verdicts: &mut Verdicts,
) -> bool {
    let m = &opened.manifest;
    let Some(ratification) = &m.ratification else {
        return true;
    };
    if doc.event.as_deref() != Some("apply") {
        return true;
    }
    let gated = guarded_tiers(doc, m, ratification);
    if gated.is_empty() {
        return verdicts.check(
            subject,
            "ratification",
            true,
            "no tier whose gates [ratification] guards ran in this apply: no approval was needed",
            BASIS,
        );
    }
    let carried = doc.gates.as_ref().and_then(|g| g.ratification.as_ref());
    if let (None, Some(_), Some(signed)) = (carried, &doc.reissued, recorded_approvals(doc)) {
        // A receipt reissued from the ledger before it carried the approvals: those
        // its apply row records (the ledger vouches for the row) are the evidence.
        return from_ledger_row(subject, doc, opened, store, &signed, verdicts);
    }
    let Some(carried) = carried else {
        return verdicts.check(
            subject,
            "ratification",
            false,
            format!(
                "gated tier(s) {} ran, but the receipt carries no approvals: the bundle asks for {} (a ratified tier ran without its quorum)",
                gated.join(", "),
                ratification.threshold
            ),
            BASIS,
        );
    };
    let at = parse_rfc3339(&carried.judged_at)
        .or_else(|| doc.started_at.as_deref().and_then(parse_rfc3339))
        .unwrap_or_else(chrono::Utc::now);
    let no_params = BTreeMap::new();
    let claim = RunClaim {
        bundle_id: &opened.bundle_id,
        manifest: m,
        params: doc.params.as_ref().unwrap_or(&no_params),
    };
    let judge = |signed: &[approval::SignedApproval]| {
        approval::judge_quorum(store, ratification, &claim, signed, at)
    };
    // What the gate report carries, and what the apply's ledger row records (which
    // the database's hash chain vouches for): each must meet the quorum.
    let reported: Vec<_> = carried.approvals.iter().map(|a| a.signed()).collect();
    let reported = judge(&reported);
    let recorded = recorded_approvals(doc).map(|signed| judge(&signed));
    let judged = match recorded {
        Some(row) if !row.met || reported.met => row,
        _ => reported,
    };
    verdicts.check(subject, "ratification", judged.met, who(&judged), BASIS)
}

/// The ratification verdict of a reissued receipt that carries no gate report: the
/// approvals its apply ledger row records, judged as of that row's time.
fn from_ledger_row(
    subject: &str,
    doc: &ReceiptDoc,
    opened: &Opened,
    store: &TrustStore,
    signed: &[approval::SignedApproval],
    verdicts: &mut Verdicts,
) -> bool {
    let m = &opened.manifest;
    let Some(ratification) = &m.ratification else {
        return true;
    };
    let at = doc
        .ledger
        .iter()
        .rev()
        .find(|r| r.event == "apply")
        .and_then(|r| parse_rfc3339(&r.at))
        .unwrap_or_else(chrono::Utc::now);
    let no_params = BTreeMap::new();
    let claim = RunClaim {
        bundle_id: &opened.bundle_id,
        manifest: m,
        params: doc.params.as_ref().unwrap_or(&no_params),
    };
    let judged = approval::judge_quorum(store, ratification, &claim, signed, at);
    let detail = format!(
        "{} (a reissued receipt: the approvals the ledger row records, which the ledger vouches for)",
        who(&judged)
    );
    verdicts.check(subject, "ratification", judged.met, detail, BASIS)
}

/// The tiers the receipt ran that `[ratification]` guards.
fn guarded_tiers<'d>(
    doc: &'d ReceiptDoc,
    m: &crate::manifest::Manifest,
    ratification: &crate::spec::Ratification,
) -> Vec<&'d str> {
    doc.tiers
        .iter()
        .flatten()
        .filter(|t| {
            m.tier
                .iter()
                .any(|s| &s.name == *t && ratification.guards(&s.gates))
        })
        .map(String::as_str)
        .collect()
}

/// The approvals the receipt's last apply ledger row records, when it records them.
fn recorded_approvals(doc: &ReceiptDoc) -> Option<Vec<approval::SignedApproval>> {
    let rows = doc
        .ledger
        .iter()
        .rev()
        .find(|r| r.event == "apply")?
        .recorded_approvals()?;
    Some(
        rows.into_iter()
            .map(|a| approval::SignedApproval {
                file: format!("the ledger row's approval by {}", a.key_id),
                document: a.document,
                signature: a.signature,
            })
            .collect(),
    )
}

/// Who ratified what: each approval that counted, then the summary.
fn who(q: &QuorumReport) -> String {
    let by: Vec<String> = q
        .approvals
        .iter()
        .filter(|a| a.counted)
        .map(|a| {
            let comment = if a.comment.is_empty() {
                String::new()
            } else {
                format!(", \"{}\"", a.comment)
            };
            format!(
                "key {} approved at {}{comment}",
                a.key_id,
                a.approved_at.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let other_params = q
        .approvals
        .iter()
        .any(|a| a.refused == Some(approval::Refusal::OtherParams));
    let head = if q.met {
        "ratified"
    } else if other_params {
        "NOT ratified (the approvals consent to other params than this receipt records: were its params edited after the run?)"
    } else {
        "NOT ratified (a ratified tier ran without its quorum)"
    };
    if by.is_empty() {
        format!("{head}: {}", q.summary())
    } else {
        format!("{head}: {}; {}", by.join("; "), q.summary())
    }
}
