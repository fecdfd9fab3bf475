//! Whether the release reached every database of the audit: each database whose
//! ledger was given (`--db`, `--ledger`, each database of a `--fleet`) that an audited
//! bundle is for needs a receipt of that bundle naming it, when receipts were given;
//! without receipts, a row of that bundle in its ledger (`--fleet` only).
//!
//! Only a bundle that passed its own checks (structure, signatures, expiry) is a
//! release whose reach is judged: a forged or broken bundle fails the audit as a
//! bundle, and is never charged to each database it names.
//!
//! Invariant: a database the bundle is for is never silently left out of the
//! verdict; a tenant the release missed (no receipt, no row) fails the audit.

use super::ledgers::Ledger;
use super::{AuditedBundle, AuditedReceipt, Verdicts};
use crate::archive::Opened;
use crate::report::short;
use std::collections::BTreeMap;

/// What counts as the bundle having reached a database.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
    /// A receipt of the bundle naming the database (`--receipt` given).
    Receipt,
    /// A row of the bundle in the database's ledger (`--fleet` without `--receipt`).
    LedgerRow,
}

/// The audited bundles that passed their own checks: the releases whose reach is
/// judged (a bundle that failed verification is no release a database missed).
pub(super) fn verified<'a>(
    by_id: &BTreeMap<String, &'a Opened>,
    bundles: &[AuditedBundle],
) -> BTreeMap<String, &'a Opened> {
    by_id
        .iter()
        .filter(|(id, _)| {
            bundles
                .iter()
                .any(|b| b.ok && b.bundle_id.as_deref() == Some(id.as_str()))
        })
        .map(|(id, opened)| (id.clone(), *opened))
        .collect()
}

/// One "reached" verdict per (verified bundle, database given that it is for).
pub(super) fn reached(
    needs: Needs,
    bundles: &BTreeMap<String, &Opened>,
    ledgers: &[Ledger],
    receipts: &[AuditedReceipt],
    verdicts: &mut Verdicts,
) {
    for (id, opened) in bundles {
        let manifest = &opened.manifest;
        let release = format!(
            "{} {} ({})",
            manifest.bundle.name,
            manifest.bundle.version,
            short(id)
        );
        for ledger in ledgers
            .iter()
            .filter(|l| manifest.target.database.matching(&l.database).is_some())
        {
            let rows = ledger.rows.iter().filter(|r| &r.bundle_id == id).count();
            let recorded = if rows == 0 {
                "its ledger records no run of it: the release did not reach this database"
                    .to_string()
            } else {
                format!("its ledger has {rows} row(s) of it")
            };
            let receipt = receipts.iter().find(|r| {
                r.bundle_id.as_deref() == Some(id.as_str())
                    && r.database.as_deref() == Some(ledger.database.as_str())
            });
            let (ok, detail, basis) = match needs {
                Needs::Receipt => match receipt {
                    Some(r) => (
                        true,
                        format!("{release}: receipt {} names this database", r.file.display()),
                        RECEIPT_BASIS,
                    ),
                    None => (
                        false,
                        format!("{release} is for this database, and no receipt of it names it; {recorded}"),
                        RECEIPT_BASIS,
                    ),
                },
                Needs::LedgerRow => (
                    rows > 0,
                    format!("{release} is for this database; {recorded}"),
                    ROW_BASIS,
                ),
            };
            verdicts.check(&ledger.label(), "reached by the release", ok, detail, basis);
        }
    }
}

const RECEIPT_BASIS: &str = "the audited receipts' bundle_id and database, against each database given (--db, --ledger, --fleet) that the bundle's [target] database names or matches";
const ROW_BASIS: &str = "the database's ledger rows' bundle_id, for each database of --fleet that the bundle's [target] database names or matches";
