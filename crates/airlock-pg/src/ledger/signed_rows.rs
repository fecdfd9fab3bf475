//! The operator's signature over the ledger rows a run wrote (DESIGN §5.1: evidence
//! only from what airlock signed).
//!
//! Code running as the deploy login can write the ledger's table, hash chain and all:
//! a row proves that the chain holds it, not that airlock wrote it, nor when. So when
//! a run is given an operator key (`--sign-receipt`), the key signs, beside the
//! receipt, a small document naming the rows the run appended (each `seq` and
//! `row_hash`, which covers the row's time and everything in it, and the rows before
//! it by `prev_hash`), and the delivery row that records the receipt keeps that
//! signature ([`Delivery::signature`](super::chain::Delivery)). An auditor with only
//! the database then checks the rows against a key no database role holds.
//!
//! Invariant: the document is made from the rows alone, the same way when signing
//! and when judging ([`document`], [`claim`]); a signature counts only over rows the
//! chain holds, every one of them.

use crate::ledger::chain::LedgerRow;

/// The tag in the signature's trusted comment (a receipt's is `airlock-receipt`).
pub const TAG: &str = "airlock-ledger-rows";

/// The document's `format`.
const FORMAT: &str = "airlock-ledger-rows/1";

/// The exact bytes signed for `rows` (a run's rows, in ledger order) of the ledger of
/// database `database`: `{"database":…,"format":…,"rows":[{"row_hash":…,"seq":…}…]}`,
/// sorted keys, no spaces. Not a receipt: it has no receipt's fields.
pub fn document<'r>(database: &str, rows: impl IntoIterator<Item = &'r LedgerRow>) -> Vec<u8> {
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| serde_json::json!({ "seq": r.seq, "row_hash": r.row_hash }))
        .collect();
    let doc = serde_json::json!({ "format": FORMAT, "database": database, "rows": rows });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

/// What the signature's trusted comment names for `rows`: the bundle id and event of
/// the first row, and the last row's `seq` (the comment airlock writes is
/// `timestamp:T<TAB>airlock-ledger-rows<TAB>bundle_id:ID<TAB>event:E<TAB>ledger_seq:N`).
pub fn claim(rows: &[&LedgerRow]) -> Option<(String, String, i64)> {
    let (first, last) = (rows.first()?, rows.last()?);
    Some((first.bundle_id.clone(), first.event.clone(), last.seq))
}

/// The trusted comment to sign `rows` with, at `timestamp` (seconds since the epoch).
pub fn trusted_comment(rows: &[&LedgerRow], timestamp: i64) -> Option<String> {
    let (bundle_id, event, seq) = claim(rows)?;
    Some(format!(
        "timestamp:{timestamp}\t{TAG}\tbundle_id:{bundle_id}\tevent:{event}\tledger_seq:{seq}"
    ))
}

/// Which rows of a ledger an operator key signed, judged with the trust store (the
/// caller's: this crate holds none). Set on a deploy when the trust store requires
/// signed receipts (the deploy options' `vouch`).
pub trait Vouch {
    /// The rows of what ran (`apply`, `rollback`, `step`) in `rows`, the ledger of
    /// database `database`, that no signature by an operator key that counts covers.
    fn unsigned(&self, database: &str, rows: &[LedgerRow]) -> Vec<i64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, hash: &str) -> LedgerRow {
        let mut r =
            crate::ledger::chain::test_row(seq, "apply", ("shop", "1.0.0".into(), 1), "b1", &[]);
        r.row_hash = hash.into();
        r
    }

    #[test]
    fn the_document_names_the_database_and_each_row_by_seq_and_hash() {
        let (a, b) = (row(3, "aa"), row(4, "bb"));
        let doc = String::from_utf8(document("shop\ndb", [&a, &b])).unwrap();
        assert_eq!(
            doc,
            r#"{"database":"shop\ndb","format":"airlock-ledger-rows/1","rows":[{"row_hash":"aa","seq":3},{"row_hash":"bb","seq":4}]}"#
        );
        // Another database, or another row, is another document.
        assert_ne!(document("shop", [&a, &b]), document("shop2", [&a, &b]));
        assert_ne!(document("shop", [&a, &b]), document("shop", [&a]));
    }

    #[test]
    fn the_comment_names_the_first_rows_bundle_and_event_and_the_last_seq() {
        let (a, b) = (row(3, "aa"), row(4, "bb"));
        assert_eq!(
            trusted_comment(&[&a, &b], 7).unwrap(),
            "timestamp:7\tairlock-ledger-rows\tbundle_id:b1\tevent:apply\tledger_seq:4"
        );
        assert_eq!(trusted_comment(&[], 7), None);
    }
}
