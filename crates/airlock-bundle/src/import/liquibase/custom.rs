//! Liquibase's `customChange`: a Java class Liquibase runs, which airlock cannot. The
//! team maps each class once, in the project file (`[import.custom_change]` in
//! `airlock.toml`): the SQL that does what it does, or `skip` with the reason it need
//! not run. A mapping is not an edit of the changelog: the changeset keeps its text,
//! its identity and its DATABASECHANGELOG row; the tier runs the mapped SQL in the
//! class's place, and the tier's header and the import report say so.
//!
//! Invariant: a changeset that becomes a tier and holds a class nobody mapped is never
//! written: import refuses, naming every unmapped class at once (with where each is
//! used) and the block to fill in. A changeset the target's history records as run is
//! no tier, and its classes need no mapping.

use crate::import::{ImportError, Migration};
use std::collections::BTreeMap;

/// What the team says one class does.
#[derive(Clone, Debug)]
pub enum CustomChange {
    /// Run this SQL in the class's place: `file` as the project file names it (for
    /// the report and the tier's header), `text` its content.
    Sql { file: String, text: String },
    /// Run nothing: the class need not run, and why.
    Skip { why: String },
}

/// Each class's mapping, by its fully qualified name.
pub type CustomChanges = BTreeMap<String, CustomChange>;

/// One `customChange` of a changeset written as a tier, and what ran in its place.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct CustomChangeUse {
    /// The class, as the changelog names it.
    pub class: String,
    /// `file:line (changeset author:id)` of the `customChange`.
    pub at: String,
    /// `sql FILE` or `skipped: WHY`.
    pub mapped: String,
}

/// One `customChange` of a changeset as read: `mapped` is the report's line (`sql
/// FILE`, `skipped: WHY`), None when no mapping names the class.
#[derive(Clone, Debug)]
pub(in crate::import) struct Found {
    pub class: String,
    pub at: String,
    pub mapped: Option<String>,
}

impl Found {
    /// `` `customChange class="…"`: MAPPED `` for the report and the tier's header;
    /// None when nobody mapped the class.
    pub(super) fn said(&self) -> Option<String> {
        Some(format!(
            "`customChange class={:?}`: {}",
            self.class,
            self.mapped.as_deref()?
        ))
    }
}

/// What a `customChange` of class `class` becomes: its statements and the report's
/// line; None when no mapping names it.
pub(super) fn mapped(custom: &CustomChanges, class: &str) -> Option<(Vec<String>, String)> {
    Some(match custom.get(class)? {
        CustomChange::Sql { file, text } => {
            let said = format!("sql {file}");
            let mut sql = text.trim().to_string();
            if !sql.is_empty() && !sql.ends_with(';') {
                sql.push(';');
            }
            // The tier says what stands in for the class, where approvers read it.
            let statements = if sql.is_empty() {
                vec![]
            } else {
                vec![format!(
                    "-- customChange {}: {said} (airlock.toml)\n{sql}",
                    class.replace(['\n', '\r'], " ")
                )]
            };
            (statements, said)
        }
        CustomChange::Skip { why } => (vec![], format!("skipped: {why}")),
    })
}

/// The `customChange`s of the changesets written as tiers, for the report; refused
/// ([`ImportError::UnmappedCustomChange`]) when any class is mapped by nobody, every
/// such class named at once.
pub(in crate::import) fn of_tiers(
    migrations: &[Migration],
) -> Result<Vec<CustomChangeUse>, ImportError> {
    let mut uses = vec![];
    let mut unmapped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in migrations
        .iter()
        .filter_map(|m| m.lb.as_deref())
        .flat_map(|lb| &lb.custom)
    {
        match &f.mapped {
            Some(m) => uses.push(CustomChangeUse {
                class: f.class.clone(),
                at: f.at.clone(),
                mapped: m.clone(),
            }),
            None => unmapped
                .entry(f.class.clone())
                .or_default()
                .push(f.at.clone()),
        }
    }
    if unmapped.is_empty() {
        return Ok(uses);
    }
    Err(ImportError::UnmappedCustomChange {
        count: unmapped.len(),
        text: unmapped_text(&unmapped),
    })
}

/// The refusal's text for the classes nobody mapped (`class` → where each is used):
/// each class with its uses, then the block to paste into `airlock.toml`.
pub(in crate::import) fn unmapped_text(unmapped: &BTreeMap<String, Vec<String>>) -> String {
    let mut s = String::new();
    for (class, uses) in unmapped {
        s.push_str(&format!("\n  {class}: {}", uses.join("; ")));
    }
    s.push_str("\nadd to airlock.toml, one line a class (the SQL that does what the class does, or skip with the reason it need not run here):\n[import.custom_change]");
    for class in unmapped.keys() {
        s.push_str(&format!(
            "\n{} = {{ sql = \"custom/{}.sql\" }}   # or {{ skip = \"why it need not run\" }}",
            toml_key(class),
            class.rsplit('.').next().unwrap_or(class)
        ));
    }
    s
}

/// A class name as a TOML key (quoted: it holds dots).
fn toml_key(class: &str) -> String {
    format!("\"{}\"", class.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_runs_in_the_class_place_and_skip_runs_nothing() {
        let mut m = CustomChanges::new();
        m.insert(
            "a.B".into(),
            CustomChange::Sql {
                file: "custom/b.sql".into(),
                text: "\nUPDATE t SET x = 1\n".into(),
            },
        );
        m.insert(
            "a.C".into(),
            CustomChange::Skip {
                why: "no rows".into(),
            },
        );
        assert_eq!(
            mapped(&m, "a.B"),
            Some((
                vec![
                    "-- customChange a.B: sql custom/b.sql (airlock.toml)\nUPDATE t SET x = 1;"
                        .to_string()
                ],
                "sql custom/b.sql".into()
            ))
        );
        assert_eq!(mapped(&m, "a.C"), Some((vec![], "skipped: no rows".into())));
        assert_eq!(mapped(&m, "a.D"), None);
    }

    #[test]
    fn the_refusal_names_each_class_and_gives_the_block_to_fill() {
        let mut u = BTreeMap::new();
        u.insert("org.k.Two".to_string(), vec!["x.xml:3".to_string()]);
        u.insert(
            "org.k.One".to_string(),
            vec!["x.xml:1".to_string(), "y.xml:9".to_string()],
        );
        let t = unmapped_text(&u);
        assert!(
            t.contains("\n  org.k.One: x.xml:1; y.xml:9\n  org.k.Two: x.xml:3\n"),
            "{t}"
        );
        assert!(
            t.contains("[import.custom_change]\n\"org.k.One\" = { sql = \"custom/One.sql\" }"),
            "{t}"
        );
        let block = &t[t.find("[import.custom_change]").unwrap()..];
        let parsed: toml::Value = toml::from_str(
            &block
                .lines()
                .map(|l| l.split("   #").next().unwrap())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .expect("the block is TOML");
        assert_eq!(
            parsed["import"]["custom_change"]["org.k.Two"]["sql"].as_str(),
            Some("custom/Two.sql")
        );
    }
}
