//! The drift judgment: whether a continued apply finds the schema as the previous
//! apply left it (DESIGN §5, apply's preflight). `plan` and `apply` both judge here.
//!
//! Invariant: for the same database and host, `plan` and `apply` give the same verdict
//! in the same words with the same exit code: both take the fingerprint with a
//! [`tracker`] (which reads the description this host keeps, as the deploy does) and
//! decide with [`judge`], and nothing else decides drift.

use super::described::Tracker;
use super::fingerprint::SchemaChange;
use super::ledger::LedgerRow;
use super::options::Options;
use super::refusal::Mismatch;
use super::session::SessionFacts;
use super::DbError;
use airlock_base::text::short;
use schemars::JsonSchema;
use serde::Serialize;

/// The fingerprint tracker of a deploy or its plan: it reads the description this host
/// keeps for the target when the run remembers (every `plan`, `apply` and `rollback`
/// of the command line; not a rehearsal's clone), and only a committed deploy writes
/// it.
pub fn tracker(facts: &SessionFacts, opts: &Options<'_>) -> Tracker {
    Tracker::new(&facts.system_identifier, &facts.database, opts.remember)
}

/// The most changed objects a drift report lists (`total` counts them all).
pub const MAX_LISTED: usize = 50;

/// The most a one-line drift message names; the rest are counted.
const MAX_SAID: usize = 5;

/// What changed since the previous apply, object by object, from the description this
/// host kept of the schema that apply left.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DriftChanges {
    /// The first objects that differ (at most 50), by kind and name.
    pub changes: Vec<SchemaChange>,
    /// How many objects differ in all (0 when they cannot be named).
    pub total: usize,
    /// Why the objects cannot be named, when they cannot: this host keeps no
    /// description of the schema the previous apply left (it was made from another
    /// host, or another deploy from this host came since).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unnamed: Option<String>,
}

impl DriftChanges {
    /// From what [`Tracker::changes_since`] found.
    pub fn from(found: Result<Vec<SchemaChange>, String>) -> DriftChanges {
        match found {
            Ok(mut changes) => {
                let total = changes.len();
                changes.truncate(MAX_LISTED);
                DriftChanges {
                    changes,
                    total,
                    unnamed: None,
                }
            }
            Err(why) => DriftChanges {
                changes: vec![],
                total: 0,
                unnamed: Some(why),
            },
        }
    }

    /// One clause: the first objects and how many more, or why none are named.
    pub fn said(&self) -> String {
        if let Some(why) = &self.unnamed {
            return format!("which objects changed is not known here: {why}");
        }
        if self.total == 0 {
            // Equal descriptions with different fingerprints: not expected.
            return "no object's description differs".into();
        }
        let named: Vec<String> = self
            .changes
            .iter()
            .take(MAX_SAID)
            .map(ToString::to_string)
            .collect();
        let more = self.total.saturating_sub(named.len());
        match more {
            0 => named.join(", "),
            n => format!(
                "{} and {n} more (--json lists up to {MAX_LISTED})",
                named.join(", ")
            ),
        }
    }
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
            changes: changes.clone(),
        })),
        changes: Some(changes),
    }
}
