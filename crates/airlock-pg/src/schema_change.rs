//! What changed between two descriptions of a schema, object by object
//! ([`changes`]: `fingerprint --diff`, a drift refusal's evidence), and the bounded
//! list a drift refusal carries ([`DriftChanges`]). Kept apart from the fingerprint
//! and from the drift judgment, so that a refusal can hold it without either.
//!
//! Invariant: an object is named once, by kind and name; `total` counts every object
//! that differs, at most [`MAX_LISTED`] are listed, and when none can be named,
//! `unnamed` says why.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How one object differs between two descriptions of a schema.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// In the later description only.
    Added,
    /// In the earlier description only.
    Dropped,
    /// In both, described differently (its definition, owner, privileges, comment…).
    Changed,
}

/// One object that differs: its kind and qualified name as the fingerprint names them
/// (`table`, `table column`, `index`, `function`… and `schema.name`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SchemaChange {
    pub change: ChangeKind,
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let change = match self.change {
            ChangeKind::Added => "added",
            ChangeKind::Dropped => "dropped",
            ChangeKind::Changed => "changed",
        };
        write!(f, "{change} {} {}", self.kind, self.name)
    }
}

/// The objects that differ between two descriptions, each given as its parts
/// (kind, name, hash) in any order: by kind and name; an object is changed when the
/// hashes of its parts differ. The columns of a table (view, type…) added or dropped
/// whole are not named apart from it.
pub fn changes<'a>(
    before: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    after: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Vec<SchemaChange> {
    use std::collections::BTreeMap;
    type Objects<'a> = BTreeMap<(&'a str, &'a str), Vec<&'a str>>;
    let collect = |parts: &mut dyn Iterator<Item = (&'a str, &'a str, &'a str)>| {
        let mut m: Objects<'a> = BTreeMap::new();
        for (kind, name, hash) in parts {
            m.entry((kind, name)).or_default().push(hash);
        }
        for hashes in m.values_mut() {
            hashes.sort_unstable();
        }
        m
    };
    let a = collect(&mut before.into_iter());
    let b = collect(&mut after.into_iter());
    let change = |change, (kind, name): &(&str, &str)| SchemaChange {
        change,
        kind: kind.to_string(),
        name: name.to_string(),
    };
    let mut out = vec![];
    for (k, hashes) in &a {
        match b.get(k) {
            None => out.push(change(ChangeKind::Dropped, k)),
            Some(other) if other != hashes => out.push(change(ChangeKind::Changed, k)),
            _ => {}
        }
    }
    out.extend(
        b.keys()
            .filter(|k| !a.contains_key(*k))
            .map(|k| change(ChangeKind::Added, k)),
    );
    // A column of a table added or dropped whole is part of that change.
    let whole: std::collections::BTreeSet<(ChangeKind, String, String)> = out
        .iter()
        .filter(|c| c.change != ChangeKind::Changed)
        .map(|c| (c.change, c.kind.clone(), c.name.clone()))
        .collect();
    out.retain(|c| {
        let parent = c.kind.strip_suffix(" column").zip(c.name.rsplit_once('.'));
        !parent.is_some_and(|(kind, (name, _))| {
            whole.contains(&(c.change, kind.to_string(), name.to_string()))
        })
    });
    out.sort_by(|x, y| (&x.kind, &x.name).cmp(&(&y.kind, &y.name)));
    out
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
    /// From what the catalog's `Tracker::changes_since` found.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn said(before: &[(&str, &str, &str)], after: &[(&str, &str, &str)]) -> Vec<String> {
        changes(before.iter().copied(), after.iter().copied())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn objects_are_named_by_kind_and_name_and_a_new_tables_columns_go_with_it() {
        let before = [
            ("table", "app.t", "1"),
            ("table column", "app.t.a", "2"),
            ("index", "app.t_a", "3"),
            ("table", "app.gone", "4"),
            ("table column", "app.gone.x", "5"),
        ];
        let after = [
            ("table", "app.t", "1"),
            ("table column", "app.t.a", "2b"),
            ("table column", "app.t.extra", "6"),
            ("table", "app.new", "7"),
            ("table column", "app.new.y", "8"),
        ];
        assert_eq!(
            said(&before, &after),
            [
                "dropped index app.t_a",
                "dropped table app.gone",
                "added table app.new",
                "changed table column app.t.a",
                "added table column app.t.extra",
            ]
        );
        assert!(said(&before, &before).is_empty());
    }

    #[test]
    fn a_drift_list_is_bounded_and_counts_them_all() {
        let many: Vec<SchemaChange> = (0..120)
            .map(|i| SchemaChange {
                change: ChangeKind::Added,
                kind: "table".into(),
                name: format!("app.t{i}"),
            })
            .collect();
        let d = DriftChanges::from(Ok(many));
        assert_eq!((d.changes.len(), d.total), (MAX_LISTED, 120));
        assert!(
            d.said().ends_with("and 115 more (--json lists up to 50)"),
            "{}",
            d.said()
        );
        let unnamed = DriftChanges::from(Err("no description kept".into()));
        assert_eq!(unnamed.total, 0);
        assert!(unnamed.said().contains("no description kept"));
    }
}
