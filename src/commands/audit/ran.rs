//! What ran, as the audit says it: for each receipt, and for each database's ledger
//! and each verified release it is for, the tiers run of how many, when and by whom.
//! One [`Ran`] each, drawn as a line by `human` and given as `ran` by `--json`.
//!
//! Invariant: counts are of the release's own tiers (its manifest), names in its
//! order; nothing here judges (the verdicts do): a receipt says what it says.

use super::ReceiptDoc;
use crate::archive::Opened;
use crate::db::ledger::chain::{self as ledger, LedgerRow};
use serde::Serialize;
use std::collections::BTreeMap;

/// The most tier names a line lists.
const NAMES_SHOWN: usize = 3;

/// What one receipt, or one ledger for one release, records of a run.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Ran {
    /// The release: `name version`.
    pub release: String,
    pub bundle_id: String,
    /// The event: a receipt's (`apply`, `rollback`); a ledger's last row of the
    /// release (`apply`, `step`, `rollback`), absent when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// A receipt's tiers (those its run ran or rolled back); a ledger's tiers of the
    /// release applied now (since its last rollback), in the release's order.
    pub tiers: Vec<String>,
    /// How many tiers the release has (its manifest); absent for a receipt of a
    /// bundle that was not audited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<usize>,
    /// When: the receipt's `finished_at` (else `started_at`); the ledger's last row of
    /// the release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// By whom: the operator the receipt, or that ledger row, records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What the receipt says ran; none when it names no bundle.
pub(super) fn of_receipt(doc: &ReceiptDoc, bundles: &BTreeMap<String, &Opened>) -> Option<Ran> {
    let bundle_id = doc.bundle_id.clone()?;
    Some(Ran {
        release: format!(
            "{} {}",
            doc.bundle_name.as_deref().unwrap_or("(no name)"),
            doc.bundle_version.as_deref().unwrap_or("(no version)")
        ),
        of: bundles.get(&bundle_id).map(|o| o.manifest.tier.len()),
        bundle_id,
        event: doc.event.clone(),
        tiers: doc.tiers.clone().unwrap_or_default(),
        at: doc.finished_at.clone().or_else(|| doc.started_at.clone()),
        by: doc.operator.clone(),
    })
}

/// For each of `releases` that is for `database`: what its ledger `rows` record, in
/// the order the releases follow each other (by name, then sequence), not by bundle id:
/// a train of three reads 1.0, 1.1, 1.2.
pub(super) fn of_ledger(
    database: &str,
    rows: &[LedgerRow],
    releases: &BTreeMap<String, &Opened>,
) -> Vec<Ran> {
    // In the train's order (name, then sequence), never the bundle ids' text order.
    let mut for_it: Vec<(&String, &&Opened)> = releases
        .iter()
        .filter(|(_, o)| o.manifest.target.database.matching(database).is_some())
        .collect();
    for_it.sort_by_key(|(id, o)| (&o.manifest.bundle.name, o.manifest.bundle.sequence, *id));
    for_it
        .into_iter()
        .map(|(id, o)| {
            let m = &o.manifest;
            let applied = ledger::state_of(rows, id).applied;
            let last = rows
                .iter()
                .rfind(|r| &r.bundle_id == id && r.event != "receipt");
            Ran {
                release: format!("{} {}", m.bundle.name, m.bundle.version),
                bundle_id: id.clone(),
                event: last.map(|r| r.event.clone()),
                tiers: m
                    .tier
                    .iter()
                    .map(|t| t.name.clone())
                    .filter(|t| applied.contains(t))
                    .collect(),
                of: Some(m.tier.len()),
                at: last.map(|r| r.at.clone()),
                by: last.map(|r| r.operator.clone()),
            }
        })
        .collect()
}

impl Ran {
    /// `1 of 3 tier(s)`.
    fn count(&self) -> String {
        let of = self.of.map(|n| format!(" of {n}")).unwrap_or_default();
        format!("{}{of} tier(s)", self.tiers.len())
    }

    /// ` (schema)`: the names, when some but not all of them.
    fn names(&self) -> String {
        if Some(self.tiers.len()) == self.of || self.tiers.is_empty() {
            return String::new();
        }
        let mut shown: Vec<&str> = self
            .tiers
            .iter()
            .take(NAMES_SHOWN)
            .map(String::as_str)
            .collect();
        if self.tiers.len() > NAMES_SHOWN {
            shown.push("…");
        }
        format!(" ({})", shown.join(", "))
    }

    /// `at T by U`, as far as it is known.
    fn when_and_who(&self) -> String {
        let at = self
            .at
            .as_deref()
            .map(|t| format!(" at {t}"))
            .unwrap_or_default();
        let by = self
            .by
            .as_deref()
            .map(|u| format!(" by {u}"))
            .unwrap_or_default();
        format!("{at}{by}")
    }

    /// A receipt's: `ran 1 of 3 tier(s) (schema) at T by U`.
    pub(super) fn receipt_line(&self) -> String {
        let verb = match self.event.as_deref() {
            Some("rollback") => "rolled back",
            _ => "ran",
        };
        format!(
            "{verb} {}{}{}",
            self.count(),
            self.names(),
            self.when_and_who()
        )
    }

    /// A ledger's: `shop 1.2: 1 of 3 tier(s) applied (schema), last apply at T by U`.
    pub(super) fn ledger_line(&self) -> String {
        let last = match &self.event {
            Some(event) => format!(", last {event}{}", self.when_and_who()),
            None => ", no run recorded".to_string(),
        };
        format!(
            "{}: {} applied{}{last}",
            self.release,
            self.count(),
            self.names()
        )
    }
}
