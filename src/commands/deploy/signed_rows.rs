//! Which rows of a live ledger an operator key signed (DESIGN §5.1: evidence only from
//! what airlock signed): for `audit` and the dossier (a row's time is evidence only
//! when signed), and for a deploy whose trust store requires signed receipts (the
//! rows that decide the run must be signed: [`Vouched`]).
//!
//! Code running as the deploy login can write the ledger's table: a row, even one
//! chained correctly, shows that the chain holds it, not that airlock wrote it or
//! when. A run given an operator key (`--sign-receipt`) signs the rows it wrote, and
//! the delivery row of its receipt keeps that signature
//! ([`crate::db::ledger::signed_rows`]). Here each such signature is judged as a
//! receipt's is (a key of the store with role `operator`, not revoked, valid at the
//! time it claims) over the rows it names, rebuilt from the ledger.
//!
//! Invariant: a row's time is evidence only when a signature that counts covers it;
//! a signature that does not verify over the rows the ledger holds is a finding,
//! never skipped.

use crate::db::ledger::chain::LedgerRow;
use crate::db::ledger::signed_rows;
use crate::minisign::SignatureBox;
use crate::trust::{self, NotCounted};
use crate::trust_history::History;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Who signed a row, and when they say they did.
pub(crate) struct Signer {
    pub key_id: String,
    pub signed_at: DateTime<Utc>,
    /// The delivery row that keeps the signature.
    pub kept_in: i64,
}

/// The signatures over a ledger's rows, judged.
#[derive(Default)]
pub(crate) struct Signed {
    /// The rows a signature that counts covers, by `seq`.
    pub rows: BTreeMap<i64, Signer>,
    /// Signatures that do not verify over the rows the ledger holds, or name other
    /// rows: the rows were changed after they were signed (delivery row, why).
    pub broken: Vec<(i64, String)>,
    /// Signatures that verify but do not count (unknown, revoked or not an operator's
    /// key): the rows they cover are as good as unsigned (delivery row, why).
    pub not_counted: Vec<(i64, String)>,
}

impl Signed {
    /// The rows of what ran (`apply`, `rollback`, `step`) of `rows` no counted
    /// signature covers.
    pub fn unsigned<'l>(&self, rows: &'l [LedgerRow]) -> Vec<&'l LedgerRow> {
        rows.iter()
            .filter(|r| r.ran() && !self.rows.contains_key(&r.seq))
            .collect()
    }
}

/// Judge every signature the delivery rows of `rows` (the live ledger of database
/// `database`, its chain verified: the caller's part, as is leaving out an export,
/// whose rows are as good as its custody) keep, each with the trust store in force
/// when the last row it covers was written.
pub(crate) fn judge(
    database: &str,
    rows: &[LedgerRow],
    history: &History,
    now: DateTime<Utc>,
) -> Signed {
    let mut out = Signed::default();
    let by_seq: BTreeMap<i64, &LedgerRow> = rows.iter().map(|r| (r.seq, r)).collect();
    for delivery_row in rows {
        let Some(delivery) = delivery_row.delivery() else {
            continue;
        };
        let Some(text) = delivery.signature.as_deref() else {
            continue;
        };
        let seq = delivery_row.seq;
        // Only rows before the delivery, each the chain holds and that ran.
        let covered: Option<Vec<&LedgerRow>> = delivery
            .covers
            .iter()
            .map(|s| by_seq.get(s).copied().filter(|r| r.seq < seq && r.ran()))
            .collect();
        let Some(covered) = covered.filter(|c| !c.is_empty()) else {
            out.broken.push((
                seq,
                "its signature names rows the ledger does not hold before it".into(),
            ));
            continue;
        };
        let sig = match SignatureBox::parse(text) {
            Ok(sig) => sig,
            Err(e) => {
                out.broken
                    .push((seq, format!("its signature cannot be read: {e}")));
                continue;
            }
        };
        let Some((bundle_id, event, last)) = signed_rows::claim(&covered) else {
            continue;
        };
        let when = trust::parse_rfc3339(&covered[covered.len() - 1].at).unwrap_or(now);
        let in_force = history.in_force(when.min(now));
        let claim = trust::ReceiptClaim {
            tag: signed_rows::TAG,
            bundle_id: &bundle_id,
            event: &event,
            ledger_seq: last,
        };
        let doc = signed_rows::document(database, covered.iter().copied());
        let name = format!("the signature in ledger row {seq}");
        let check = trust::judge_receipt_signature(&in_force.store, &doc, &name, &sig, &claim, now);
        let signed_at = check.signed_at.as_deref().and_then(trust::parse_rfc3339);
        match (check.counted, signed_at) {
            (true, Some(signed_at)) => {
                for r in &covered {
                    out.rows.entry(r.seq).or_insert(Signer {
                        key_id: check.key_id.clone(),
                        signed_at,
                        kept_in: seq,
                    });
                }
            }
            _ => {
                let why = check.note.clone().unwrap_or_else(|| check.basis.clone());
                match check.not_counted {
                    Some(NotCounted::BadSignature | NotCounted::OtherBundle) => {
                        out.broken.push((seq, why))
                    }
                    _ => out.not_counted.push((seq, why)),
                }
            }
        }
    }
    out
}

/// For a deploy whose trust store requires signed receipts: which ledger rows an
/// operator key signed, judged as the audit judges them ([`judge`]).
pub(crate) struct Vouched {
    store: crate::trust::TrustStore,
}

impl Vouched {
    /// Some when `store` requires signed receipts (`require_signed_receipts`).
    pub(crate) fn required_by(store: &crate::trust::TrustStore) -> Option<Vouched> {
        store.require_signed_receipts.then(|| Vouched {
            store: store.clone(),
        })
    }
}

impl crate::db::ledger::signed_rows::Vouch for Vouched {
    /// `rows`: a deploy's, read under its lock with the hash chain verified
    /// (`chain::read_chained`, `lock_for_deploy`), as the audit reads a live ledger.
    fn unsigned(&self, database: &str, rows: &[LedgerRow]) -> Vec<i64> {
        let history = crate::commands::common::trust_history(&self.store);
        let signed = judge(database, rows, &history, chrono::Utc::now());
        signed.unsigned(rows).iter().map(|r| r.seq).collect()
    }
}
