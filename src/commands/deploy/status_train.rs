//! `status` and the release train: the line that says where each train stands (the
//! release the database stands at, the ones before it, one rolled back on top), and
//! each given bundle judged against its train by the policy `apply` decides with.
//!
//! Invariant: renders [`Train`] as `--json` has it, and a given bundle's refusal is
//! `apply`'s own ([`policy::apply_refusal`]), never a guess of status's.

use crate::db::ledger::chain::LedgerRow;
use crate::db::ledger::train::{Place, Release, Train};
use crate::db::policy;
use crate::db::refusal::RefusalKind;
use crate::manifest::Manifest;
use serde::Serialize;

/// Why `apply` would refuse a given bundle here, while tiers of it remain.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ApplyRefusal {
    /// Which refusal (`refusal_kind` of `plan` and `apply`).
    pub kind: RefusalKind,
    /// The refusal's evidence, as `plan` and `apply` word it.
    pub reason: String,
}

/// A given bundle judged against its train: the refusal `apply` would give it here
/// when tiers of it remain (absent: apply would run them, or none remains).
pub(crate) fn apply_refusal(
    manifest: &Manifest,
    id: &str,
    rows: &[LedgerRow],
    remaining: &[String],
) -> Option<ApplyRefusal> {
    if remaining.is_empty() {
        return None;
    }
    policy::apply_refusal(manifest, id, rows).map(|r| ApplyRefusal {
        kind: r.kind(),
        reason: r.evidence(),
    })
}

/// The trains of the ledger and, with nothing in the ledger, of each bundle given, by
/// name.
pub(crate) fn with_given<'a>(
    mut trains: Vec<Train>,
    given: impl Iterator<Item = &'a str>,
) -> Vec<Train> {
    for name in given {
        if !trains.iter().any(|t| t.name == name) {
            trains.push(Train::empty(name));
        }
    }
    trains.sort_by(|a, b| a.name.cmp(&b.name));
    trains
}

/// Where a train stands, one line: "shop stands at 1.1.0 (sequence 2); before it:
/// 1.0.0; rolled back on top: 1.2.0".
pub(crate) fn stands_line(train: &Train) -> String {
    let versions = |releases: Vec<&Release>| {
        releases
            .iter()
            .map(|r| r.version.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = vec![match &train.stands_at {
        Some(r) => format!(
            "{} stands at {} (sequence {})",
            train.name, r.version, r.sequence
        ),
        None => format!("{}: nothing applied here", train.name),
    }];
    let mut part = |label: &str, releases: Vec<&Release>| {
        if !releases.is_empty() {
            parts.push(format!("{label}: {}", versions(releases)));
        }
    };
    part("before it", train.at(Place::Superseded));
    part("rolled back on top", train.rolled_back(true));
    part("rolled back", train.rolled_back(false));
    format!("\n{}", parts.join("; "))
}

/// A given bundle's refusal, as a line under the table.
pub(crate) fn refusal_line(name: &str, version: &str, refusal: &ApplyRefusal) -> String {
    format!(
        "\n{name} {version}: apply would refuse it: {}",
        refusal.reason
    )
}
