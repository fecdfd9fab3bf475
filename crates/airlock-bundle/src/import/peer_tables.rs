//! The migration tools' own history tables (`schema_migrations`, `flyway_schema_history`,
//! …): a history that changes one (a column added to golang-migrate's table) ran
//! where the peer had made it, and fails on a database where it did not: airlock never
//! makes it. Import names each such statement (a warning of its report), unless the
//! history itself creates the table first.
//!
//! Invariant: read-only over the tier files written; a statement that does not parse
//! is judged elsewhere (lint), never here.

use airlock_sql::pg_query::{self, NodeEnum};
use std::collections::BTreeSet;

/// (schema or "" for any, table, the tool whose history table it is).
const PEER_TABLES: &[(&str, &str, &str)] = &[
    (
        "",
        "schema_migrations",
        "golang-migrate's, dbmate's or Rails'",
    ),
    ("", "flyway_schema_history", "Flyway's"),
    ("", "goose_db_version", "goose's"),
    ("", "__diesel_schema_migrations", "diesel's"),
    ("", "_prisma_migrations", "Prisma's"),
    ("", "atlas_schema_revisions", "Atlas's"),
    ("", "databasechangelog", "Liquibase's"),
    ("", "databasechangeloglock", "Liquibase's"),
    ("sqitch", "", "Sqitch's"),
];

/// Whose history table `(schema, name)` is, if it is one.
fn whose(schema: &str, name: &str) -> Option<&'static str> {
    PEER_TABLES
        .iter()
        .find(|(s, t, _)| (s.is_empty() || *s == schema) && (t.is_empty() || *t == name))
        .map(|(.., who)| *who)
}

/// The relations a statement changes (schema as written, or "", and name), and
/// whether it creates them.
fn changed(node: &NodeEnum) -> (Vec<(String, String)>, bool) {
    let of = |r: &pg_query::protobuf::RangeVar| (r.schemaname.clone(), r.relname.clone());
    let one = |r: &Option<pg_query::protobuf::RangeVar>| r.as_ref().map(of).into_iter().collect();
    match node {
        NodeEnum::CreateStmt(s) => (one(&s.relation), true),
        NodeEnum::AlterTableStmt(s) => (one(&s.relation), false),
        NodeEnum::InsertStmt(s) => (one(&s.relation), false),
        NodeEnum::UpdateStmt(s) => (one(&s.relation), false),
        NodeEnum::DeleteStmt(s) => (one(&s.relation), false),
        NodeEnum::IndexStmt(s) => (one(&s.relation), false),
        NodeEnum::RenameStmt(s) => (one(&s.relation), false),
        NodeEnum::TruncateStmt(s) => {
            let rels = (s.relations.iter())
                .filter_map(|n| match n.node.as_ref() {
                    Some(NodeEnum::RangeVar(r)) => Some(of(r)),
                    _ => None,
                })
                .collect();
            (rels, false)
        }
        _ => (vec![], false),
    }
}

/// One warning per statement of the tiers (`(file, bytes)`, in order) that changes a
/// peer tool's history table the history did not create before it.
pub(super) fn warnings(tiers: &[(&str, &[u8])]) -> Vec<String> {
    let mut made = BTreeSet::new();
    let mut out = vec![];
    for (file, bytes) in tiers {
        let Ok(sql) = std::str::from_utf8(bytes) else {
            continue;
        };
        let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
            continue;
        };
        for raw in &parsed.protobuf.stmts {
            let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
                continue;
            };
            let (rels, creates) = changed(node);
            for (schema, name) in rels {
                if creates {
                    made.insert(name);
                    continue;
                }
                let Some(who) = whose(&schema, &name) else {
                    continue;
                };
                if made.contains(&name) {
                    continue;
                }
                let line = 1 + sql[..(raw.stmt_location as usize).min(sql.len())]
                    .matches('\n')
                    .count();
                let shown = if schema.is_empty() {
                    name
                } else {
                    format!("{schema}.{name}")
                };
                out.push(format!(
                    "{file}:{line}: changes {shown}, {who} own history table: airlock never makes it (its ledger is airlock.ledger), so on a database the peer tool did not set up this statement fails; take the statement out of the tier, or apply only where that table is there"
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_table_changed_is_named_unless_the_history_made_it() {
        let w = warnings(&[(
            "a.sql",
            b"CREATE TABLE t (i int);\n\nALTER TABLE schema_migrations ADD c int;\n",
        )]);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("a.sql:3: changes schema_migrations"),
            "{w:?}"
        );
        let w = warnings(&[
            ("a.sql", b"CREATE TABLE schema_migrations (v int);\n"),
            ("b.sql", b"INSERT INTO schema_migrations VALUES (1);\n"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            warnings(&[("s.sql", b"UPDATE sqitch.changes SET note = '';\n")]).len(),
            1
        );
    }
}
