//! Where each release train stands in a ledger. A train is the releases of one bundle
//! name, in `sequence` order (a release follows the one before it); the database
//! stands at the latest of them with a tier applied. The releases before it are
//! superseded (their tiers stay; the later one builds on them), and a release rolled
//! back is no longer in force (on top of the one the database stands at, or before it).
//!
//! Invariant: a pure function of the ledger rows, read as `apply` and `rollback` read
//! them ([`state_of`](crate::ledger::chain::state_of)); a release is in force exactly
//! when a rollback of it would have something to undo.

use crate::ledger::chain::{self as ledger, LedgerRow};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

/// A release's place on its train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// The release the database stands at: the latest (by sequence) with a tier
    /// applied (or an online step recorded).
    Current,
    /// In force before the current release, which builds on it: nothing of it is to
    /// apply again (`apply` refuses it: already applied, or a downgrade).
    Superseded,
    /// Rolled back: nothing of it is in force (above the current release, it was
    /// rolled back on top).
    RolledBack,
}

/// One release of a train, as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Release {
    pub version: String,
    pub sequence: i64,
    pub bundle_id: String,
    pub place: Place,
}

/// Where one train stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Train {
    /// The bundle name the train's releases share.
    pub name: String,
    /// The release the database stands at (absent: none is in force: no release of
    /// the train reached this database, or every one was rolled back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stands_at: Option<Release>,
    /// Every release of the train the ledger holds, in sequence order.
    pub releases: Vec<Release>,
}

impl Train {
    /// A train the ledger holds nothing of (a bundle given that never reached it).
    pub fn empty(name: &str) -> Train {
        Train {
            name: name.to_string(),
            stands_at: None,
            releases: vec![],
        }
    }

    /// Its releases at `place`, in sequence order.
    pub fn at(&self, place: Place) -> Vec<&Release> {
        self.releases.iter().filter(|r| r.place == place).collect()
    }

    /// Its releases rolled back above the one the database stands at (`on_top`), or
    /// the others (all of them when it stands at none).
    pub fn rolled_back(&self, on_top: bool) -> Vec<&Release> {
        let current = self.stands_at.as_ref().map(|r| r.sequence);
        self.at(Place::RolledBack)
            .into_iter()
            .filter(|r| current.is_some_and(|c| r.sequence > c) == on_top)
            .collect()
    }
}

/// Every train the ledger holds, by name; each release by its first row that ran.
pub fn trains(rows: &[LedgerRow]) -> Vec<Train> {
    let mut by_name: BTreeMap<&str, Vec<&LedgerRow>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.ran()) {
        let releases = by_name.entry(row.bundle_name.as_str()).or_default();
        if !releases.iter().any(|r| r.bundle_id == row.bundle_id) {
            releases.push(row);
        }
    }
    by_name
        .into_iter()
        .map(|(name, firsts)| train_of(name, firsts, rows))
        .collect()
}

/// One train from the first row of each of its releases.
fn train_of(name: &str, mut firsts: Vec<&LedgerRow>, rows: &[LedgerRow]) -> Train {
    firsts.sort_by_key(|r| (r.sequence, r.seq));
    let in_force: Vec<bool> = firsts
        .iter()
        .map(|r| {
            let st = ledger::state_of(rows, &r.bundle_id);
            !st.applied.is_empty() || !st.steps.is_empty()
        })
        .collect();
    let top = in_force.iter().rposition(|&f| f);
    let releases: Vec<Release> = firsts
        .iter()
        .enumerate()
        .map(|(i, r)| Release {
            version: r.bundle_version.clone(),
            sequence: r.sequence,
            bundle_id: r.bundle_id.clone(),
            place: match (in_force[i], Some(i) == top) {
                (true, true) => Place::Current,
                (true, false) => Place::Superseded,
                (false, _) => Place::RolledBack,
            },
        })
        .collect();
    Train {
        name: name.to_string(),
        stands_at: top.map(|i| releases[i].clone()),
        releases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, event: &str, name: &str, sequence: i64, tiers: &[&str]) -> LedgerRow {
        let release = (name, format!("1.{}.0", sequence - 1), sequence);
        crate::ledger::chain::test_row(seq, event, release, &format!("{name}{sequence}"), tiers)
    }

    fn places(t: &Train) -> Vec<(&str, Place)> {
        t.releases
            .iter()
            .map(|r| (r.version.as_str(), r.place))
            .collect()
    }

    #[test]
    fn the_latest_release_in_force_is_current_and_the_ones_before_it_superseded() {
        let rows = [
            row(1, "apply", "shop", 1, &["a"]),
            row(2, "apply", "shop", 2, &["b"]),
            row(3, "apply", "shop", 3, &["c"]),
        ];
        let t = &trains(&rows)[0];
        assert_eq!(t.stands_at.as_ref().unwrap().version, "1.2.0");
        use Place::*;
        assert_eq!(
            places(t),
            [
                ("1.0.0", Superseded),
                ("1.1.0", Superseded),
                ("1.2.0", Current)
            ]
        );
    }

    #[test]
    fn a_release_rolled_back_on_top_leaves_the_train_at_the_one_before() {
        let rows = [
            row(1, "apply", "shop", 1, &["a"]),
            row(2, "apply", "shop", 2, &["b"]),
            row(3, "apply", "shop", 3, &["c"]),
            row(4, "receipt", "shop", 3, &[]),
            row(5, "rollback", "shop", 3, &["c"]),
            row(6, "apply", "billing", 1, &["x"]),
        ];
        let all = trains(&rows);
        assert_eq!(
            all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["billing", "shop"]
        );
        let shop = &all[1];
        assert_eq!(shop.stands_at.as_ref().unwrap().version, "1.1.0");
        let names = |rs: Vec<&Release>| rs.iter().map(|r| r.version.clone()).collect::<Vec<_>>();
        assert_eq!(names(shop.at(Place::Superseded)), ["1.0.0"]);
        assert_eq!(names(shop.rolled_back(true)), ["1.2.0"]);
        assert!(shop.rolled_back(false).is_empty());
        assert_eq!(all[0].stands_at.as_ref().unwrap().version, "1.0.0");
    }

    #[test]
    fn every_release_rolled_back_leaves_the_train_standing_nowhere() {
        let rows = [
            row(1, "apply", "shop", 1, &["a"]),
            row(2, "rollback", "shop", 1, &["a"]),
        ];
        let t = &trains(&rows)[0];
        assert_eq!(t.stands_at, None);
        assert_eq!(places(t), [("1.0.0", Place::RolledBack)]);
        assert!(
            t.rolled_back(true).is_empty(),
            "nothing is on top of nothing"
        );
        assert_eq!(t.rolled_back(false).len(), 1);
    }

    #[test]
    fn an_online_step_alone_puts_a_release_in_force() {
        let rows = [
            row(1, "apply", "shop", 1, &["a"]),
            row(2, "step", "shop", 2, &["b"]),
        ];
        let t = &trains(&rows)[0];
        assert_eq!(t.stands_at.as_ref().unwrap().version, "1.1.0");
    }
}
