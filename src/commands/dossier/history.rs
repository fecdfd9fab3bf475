//! What happened to this release on the database, as of the page's time (`--at`, or
//! now): its ledger rows (applies, online steps, rollbacks, receipts delivered) read in
//! one read-only transaction, with the hash chain re-verified, and the tiers they
//! leave applied. A page re-made for the archive judges this past, not a new apply
//! today.
//!
//! Invariant: a row written after the page's time is never shown as having happened
//! by then (it is counted, not shown); nothing is written.

use crate::commands::deploy::signed_rows;
use crate::db::ledger::chain::{self as ledger, LedgerRow};
use crate::error::Result;
use crate::trust::parse_rfc3339;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

/// One ledger row of this release.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct HistoryRow {
    pub seq: i64,
    /// The server's time at its commit (RFC 3339).
    pub at: String,
    /// `apply`, `step`, `rollback` or `receipt`.
    pub event: String,
    /// Who ran it (the operator the run named).
    pub operator: String,
    /// The tiers it ran or undid.
    pub tiers: Vec<String>,
    /// The operator key whose signature, kept in a delivery row and counted by the
    /// trust store, covers this row (absent: unsigned; the chain holds it, and that
    /// is all it proves: code running as the deploy login could have written it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

/// The release's history on the database, as of `as_of`.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct History {
    pub database: String,
    /// The time the history is of: the page's (RFC 3339).
    pub as_of: String,
    /// This release's rows at or before `as_of`, in ledger order.
    pub rows: Vec<HistoryRow>,
    /// This release's rows written after `as_of` (not shown).
    pub later: usize,
    /// The tiers applied as of `as_of` (a rollback clears them).
    pub applied: Vec<String>,
    /// Where the ledger's hash chain breaks (`seq: why`), if it does: its rows are
    /// then as the database says, nothing more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_broken: Option<String>,
}

impl History {
    /// Every tier of the release (`tiers`) was applied as of the page's time.
    pub fn fully_applied(&self, tiers: &[String]) -> bool {
        !tiers.is_empty() && tiers.iter().all(|t| self.applied.contains(t))
    }

    /// The last apply row as of the page's time, when it is applied.
    pub fn last_apply(&self) -> Option<&HistoryRow> {
        self.rows.iter().rev().find(|r| r.event == "apply")
    }
}

/// The history of bundle `bundle_id` on the database `conn` names, as of `at`, each
/// row's operator signature judged with `store` as `audit` judges it.
pub(crate) fn read(
    conn: &crate::db::conn::ConnSpec,
    store: &crate::trust::TrustStore,
    bundle_id: &str,
    at: DateTime<Utc>,
) -> Result<History> {
    let back = crate::db::ledger::reader::read_back(&mut conn.connect()?)?;
    let mut history = of_rows(back.database, &back.rows, bundle_id, at);
    // Only a chain that holds has signatures worth judging (as the audit's).
    if history.chain_broken.is_none() {
        let trust = crate::commands::common::trust_history(store);
        let signed = signed_rows::judge(&history.database, &back.rows, &trust, Utc::now());
        for r in &mut history.rows {
            r.signed_by = signed.rows.get(&r.seq).map(|s| s.key_id.clone());
        }
    }
    Ok(history)
}

/// [`read`]'s history from rows already read (no row's signature judged yet).
fn of_rows(database: String, rows: &[LedgerRow], bundle_id: &str, at: DateTime<Utc>) -> History {
    let chain_broken = ledger::verify_chain(rows).map(|(seq, why)| format!("{seq}: {why}"));
    // A row with an unreadable time counts as later: it is not shown as past.
    let by_then = |r: &LedgerRow| parse_rfc3339(&r.at).is_some_and(|t| t <= at);
    let ours: Vec<&LedgerRow> = rows.iter().filter(|r| r.bundle_id == bundle_id).collect();
    let past: Vec<LedgerRow> = ours
        .iter()
        .filter(|r| by_then(r))
        .map(|r| (*r).clone())
        .collect();
    let applied = ledger::state_of(&past, bundle_id).applied;
    History {
        database,
        as_of: crate::trust::rfc3339(at),
        later: ours.len() - past.len(),
        rows: past
            .iter()
            .map(|r| HistoryRow {
                seq: r.seq,
                at: r.at.clone(),
                event: r.event.clone(),
                operator: r.operator.clone(),
                tiers: r.tier_names(),
                signed_by: None,
            })
            .collect(),
        applied,
        chain_broken,
    }
}
