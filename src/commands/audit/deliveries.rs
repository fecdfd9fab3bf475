//! Receipts delivered, hidden, or reissued: what an audit reads from the ledger's
//! `receipt` rows ([`crate::db::delivery`]).
//!
//! Invariant: a row of what ran whose receipt the ledger records as delivered needs
//! that very receipt (same bytes); a reissued receipt stands in only for rows no
//! delivered receipt covers; a row with neither is named as interrupted, with the
//! command that writes its receipt. Without a ledger, a reissue's claim rests on
//! nothing (UNVERIFIED).

use super::ledgers::Ledger;
use super::{Finding, ReadReceipt, Verdicts};
use crate::db::ledger::chain::{Delivery, LedgerRow};
use crate::report::short;
use std::collections::BTreeMap;

/// One delivery row of a ledger: its row and what it records.
struct Delivered<'l> {
    row: &'l LedgerRow,
    delivery: Delivery,
}

/// The deliveries of `rows` that cover ledger row `seq`.
fn covering(rows: &[LedgerRow], seq: i64) -> Vec<Delivered<'_>> {
    rows.iter()
        .filter_map(|row| row.delivery().map(|delivery| Delivered { row, delivery }))
        .filter(|d| d.delivery.covers.contains(&seq))
        .collect()
}

fn described(d: &Delivered<'_>) -> String {
    format!(
        "ledger row {} ({}, {} receipt {}, by {})",
        d.row.seq,
        d.row.at,
        if d.delivery.reissued {
            "reissued"
        } else {
            "delivered"
        },
        short(&d.delivery.sha256),
        d.row.operator
    )
}

const BASIS: &str = "the ledger's receipt rows (written after each receipt was saved: the SHA-256 of its bytes and the rows it holds) against this receipt's bytes";

/// The "delivery" verdict of a receipt, against its database's ledger (`rows`), or
/// with none given. True when it lets the audit pass.
pub(super) fn receipt_delivery(
    receipt: &ReadReceipt,
    ledger: Option<&Ledger>,
    verdicts: &mut Verdicts,
) -> bool {
    let subject = receipt.subject.as_str();
    let reissued = receipt.doc.reissued.is_some();
    let Some(ledger) = ledger else {
        if !reissued {
            return true;
        }
        return verdicts.push(
            subject,
            "delivery",
            Finding::Unverified,
            "a reissued receipt: whether its rows' own receipt was delivered is recorded in the ledger, which was not given",
            "give --db (or --ledger with an export) for the receipt's database",
        );
    };
    let rows = ledger.rows.as_slice();
    let before_era = receipt
        .doc
        .ledger
        .iter()
        .find(|r| ledger.era.is_none_or(|since| r.seq < since));
    if let (true, Some(row)) = (reissued, before_era) {
        return verdicts.check(
            subject,
            "delivery",
            false,
            format!(
                "a reissue of ledger row {}, written before the ledger recorded deliveries: its receipt is the one its run wrote then",
                row.seq
            ),
            BASIS,
        );
    }
    // Every delivery covering one of the receipt's rows, once.
    let mut found: BTreeMap<i64, Delivered<'_>> = BTreeMap::new();
    for row in &receipt.doc.ledger {
        for d in covering(rows, row.seq) {
            found.entry(d.row.seq).or_insert(d);
        }
    }
    let (finding, detail) = judged(receipt, &found);
    verdicts.push(subject, "delivery", finding, detail, BASIS)
}

/// What the deliveries `found` for a receipt's rows say of it.
fn judged(receipt: &ReadReceipt, found: &BTreeMap<i64, Delivered<'_>>) -> (Finding, String) {
    let reissued = receipt.doc.reissued.is_some();
    let mine = found.values().find(|d| d.delivery.sha256 == receipt.sha256);
    let delivered: Vec<&Delivered<'_>> = found.values().filter(|d| !d.delivery.reissued).collect();
    match (reissued, mine) {
        (false, Some(d)) if !d.delivery.reissued => (
            Finding::Pass,
            format!("these exact bytes were delivered: {}", described(d)),
        ),
        (false, _) => match delivered.first() {
            Some(d) => (
                Finding::Fail,
                format!(
                    "the ledger records the delivery of other bytes for these rows, {}: this receipt was changed after it was delivered",
                    described(d)
                ),
            ),
            None => (
                Finding::Note,
                "its delivery is not recorded (a ledger from before airlock recorded deliveries, or the record failed after the receipt was saved)".to_string(),
            ),
        },
        (true, _) if !delivered.is_empty() => (
            Finding::Fail,
            format!(
                "a receipt of these rows was delivered, {}: a reissue does not stand in for it (that receipt was hidden or lost)",
                described(delivered[0])
            ),
        ),
        (true, Some(d)) => (
            Finding::Pass,
            format!(
                "reissued after an interrupted run ({}): no receipt of its rows was delivered; {}",
                receipt
                    .doc
                    .reissued
                    .as_ref()
                    .map(|r| format!("at {} by {}", r.at, r.by))
                    .unwrap_or_default(),
                described(d)
            ),
        ),
        (true, None) => (
            Finding::Fail,
            match found.values().next() {
                Some(d) => format!(
                    "not the reissue the ledger recorded for these rows, {}: a leftover copy (leave it out)",
                    described(d)
                ),
                None => "a reissued receipt whose delivery the ledger does not record".to_string(),
            },
        ),
    }
}

/// The "ledger row N receipt" verdict of one row of what ran, when receipts were
/// given: `given` maps the row hashes the receipts hold to whether only reissued
/// receipts hold them.
pub(super) fn row_receipt(
    subject: &str,
    ledger: &Ledger,
    row: &LedgerRow,
    given: &BTreeMap<String, bool>,
    verdicts: &mut Verdicts,
) {
    let check = format!("ledger row {} receipt", row.seq);
    let basis = "the row's row_hash against the ledger rows the receipts hold, and the ledger's receipt rows";
    let (rows, database) = (ledger.rows.as_slice(), ledger.database.as_str());
    let deliveries = covering(rows, row.seq);
    let tracked = ledger.era.is_some_and(|since| row.seq >= since);
    match given.get(&row.row_hash) {
        Some(false) => {
            verdicts.check(subject, &check, true, "matched by a receipt", basis);
        }
        Some(true) => {
            // The reissued receipt's own verdict says whether it may stand in.
            let detail = match deliveries.iter().find(|d| !d.delivery.reissued) {
                Some(d) => format!(
                    "matched only by a reissued receipt, but its receipt was delivered, {}",
                    described(d)
                ),
                None => "matched by a reissued receipt (its run was interrupted)".to_string(),
            };
            let ok = deliveries.iter().all(|d| d.delivery.reissued);
            verdicts.check(subject, &check, ok, detail, basis);
        }
        None => {
            let detail = match deliveries.first() {
                Some(d) => format!(
                    "its receipt was delivered, {}, but is not among those given: hidden or lost",
                    described(d)
                ),
                None if !tracked => "no receipt given for this row (written before the ledger recorded deliveries: its receipt is the one its run wrote then)".to_string(),
                None => format!(
                    "no receipt given, and the ledger records none delivered: its run was interrupted before its receipt was written; `airlock reissue BUNDLE --trust STORE --db \"dbname={}\"` writes it from the ledger",
                    database
                ),
            };
            verdicts.check(subject, &check, false, detail, basis);
        }
    }
}
