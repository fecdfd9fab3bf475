//! The drift judgment: whether a continued apply finds the schema as the previous
//! apply left it (DESIGN §5, apply's preflight). `plan` and `apply` both judge here.
//!
//! Invariant: for the same database and host, `plan` and `apply` give the same verdict
//! in the same words with the same exit code: both take the fingerprint with a
//! [`tracker`] (which reads the description this host keeps, as the deploy does) and
//! decide with [`judge`], and nothing else decides drift.

use crate::catalog::described::Tracker;
use crate::ledger::chain::LedgerRow;
use crate::refusal::Mismatch;
pub use crate::schema_change::{DriftChanges, MAX_LISTED};
use crate::session::hermetic::SessionFacts;
use crate::DbError;
use airlock_base::text::short;

/// The fingerprint tracker of a deploy or its plan: it reads the description this host
/// keeps for the target when the run remembers (every `plan`, `apply` and `rollback`
/// of the command line; not a rehearsal's clone), and only a committed deploy writes
/// it.
pub fn tracker(facts: &SessionFacts, remember: bool) -> Tracker {
    Tracker::new(&facts.system_identifier, &facts.database, remember)
}

/// What [`judge`] decided.
#[derive(Debug)]
pub struct Judgment {
    /// One line: no drift, or DRIFT with both fingerprints.
    pub summary: String,
    /// What `plan` shows when the deploy would go on ([`Judgment::refusal`] is `None`).
    pub evidence: String,
    /// Why the deploy stops (exit 5), if it does.
    pub refusal: Option<DbError>,
    /// What changed, object by object, when the schema drifted.
    pub changes: Option<DriftChanges>,
}

/// Whether the schema fingerprint `now` is what `last` (the previous apply of this
/// bundle) left; drift stops the deploy unless `allow_drift`. `changes` names what
/// differs; it is asked only when the fingerprints differ.
pub fn judge(
    now: &str,
    last: &LedgerRow,
    allow_drift: bool,
    changes: impl FnOnce() -> DriftChanges,
) -> Judgment {
    if now == last.fingerprint_after {
        let summary = format!(
            "no drift: schema fingerprint {} is what ledger seq {} left",
            short(now),
            last.seq
        );
        return Judgment {
            evidence: summary.clone(),
            summary,
            refusal: None,
            changes: None,
        };
    }
    let changes = changes();
    let summary = format!(
        "DRIFT: schema fingerprint is {}, ledger seq {} left {}: {}",
        short(now),
        last.seq,
        short(&last.fingerprint_after),
        changes.said()
    );
    if allow_drift {
        return Judgment {
            evidence: format!("{summary} (allowed by --allow-drift)"),
            summary,
            refusal: None,
            changes: Some(changes),
        };
    }
    Judgment {
        evidence: summary.clone(),
        summary,
        refusal: Some(DbError::Mismatch(Mismatch::Drift {
            ledger_seq: last.seq,
            tiers: last.tier_names(),
            now: now.into(),
            then: last.fingerprint_after.clone(),
            changes: Box::new(changes.clone()),
        })),
        changes: Some(changes),
    }
}
