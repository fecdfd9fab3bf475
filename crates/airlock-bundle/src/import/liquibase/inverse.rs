//! The rollback Liquibase derives for a changeset without a `<rollback>`: each change's
//! inverse (`createTable` → `dropTable`, `addColumn` → `dropColumn` of each column,
//! `renameColumn` → the rename back…), the last change first. A changeset holding a
//! change with no inverse (`sql`, `insert`, `dropTable`…) has none: Liquibase refuses
//! to roll it back, and the import reports it without a down script.
//!
//! Invariant: an inverse is derived only from attributes the change names; one that
//! would need what the database holds (an unnamed primary key or unique constraint)
//! is not derived.

use super::tree::Node;

/// `(attribute of the inverse, attribute of the change)` pairs.
type Renames = &'static [(&'static str, &'static str)];

/// Each change with an inverse of one change: the inverse's name and its attributes,
/// each `(attribute of the inverse, attribute of the change)`.
const SIMPLE: &[(&str, &str, Renames)] = &[
    ("createTable", "dropTable", &[("tableName", "tableName")]),
    (
        "renameColumn",
        "renameColumn",
        &[
            ("tableName", "tableName"),
            ("oldColumnName", "newColumnName"),
            ("newColumnName", "oldColumnName"),
        ],
    ),
    (
        "renameTable",
        "renameTable",
        &[
            ("oldTableName", "newTableName"),
            ("newTableName", "oldTableName"),
        ],
    ),
    (
        "renameView",
        "renameView",
        &[
            ("oldViewName", "newViewName"),
            ("newViewName", "oldViewName"),
        ],
    ),
    (
        "renameSequence",
        "renameSequence",
        &[
            ("oldSequenceName", "newSequenceName"),
            ("newSequenceName", "oldSequenceName"),
        ],
    ),
    (
        "createIndex",
        "dropIndex",
        &[("tableName", "tableName"), ("indexName", "indexName")],
    ),
    ("createView", "dropView", &[("viewName", "viewName")]),
    (
        "createSequence",
        "dropSequence",
        &[("sequenceName", "sequenceName")],
    ),
    (
        "addForeignKeyConstraint",
        "dropForeignKeyConstraint",
        &[
            ("baseTableName", "baseTableName"),
            ("constraintName", "constraintName"),
        ],
    ),
    (
        "addPrimaryKey",
        "dropPrimaryKey",
        &[
            ("tableName", "tableName"),
            ("constraintName", "constraintName"),
        ],
    ),
    (
        "addUniqueConstraint",
        "dropUniqueConstraint",
        &[
            ("tableName", "tableName"),
            ("constraintName", "constraintName"),
        ],
    ),
    (
        "addNotNullConstraint",
        "dropNotNullConstraint",
        &[("tableName", "tableName"), ("columnName", "columnName")],
    ),
    (
        "addDefaultValue",
        "dropDefaultValue",
        &[("tableName", "tableName"), ("columnName", "columnName")],
    ),
];

/// The element `name` with `attrs` (None when one is missing), the schema of `from`
/// kept.
fn element(name: &str, from: &Node, attrs: &[(&str, Option<&str>)]) -> Option<Node> {
    let mut out = Node {
        name: name.into(),
        ..Node::default()
    };
    for (k, v) in attrs {
        out.attrs.push((k.to_string(), (*v)?.to_string()));
    }
    for k in ["schemaName", "baseTableSchemaName"] {
        if let Some(v) = from.attr(k) {
            out.attrs.push((k.to_string(), v.to_string()));
        }
    }
    Some(out)
}

/// The changes that undo `n`, in the order they run (None: Liquibase derives none).
pub(in crate::import) fn inverse(n: &Node) -> Option<Vec<Node>> {
    match n.name.as_str() {
        "addColumn" => n
            .children
            .iter()
            .rev()
            .map(|c| {
                element(
                    "dropColumn",
                    n,
                    &[
                        ("tableName", n.attr("tableName")),
                        ("columnName", c.attr("name")),
                    ],
                )
            })
            .collect(),
        "tagDatabase" | "comment" | "empty" | "output" => Some(vec![]),
        name => {
            let (_, to, attrs) = SIMPLE.iter().find(|(from, _, _)| *from == name)?;
            let attrs: Vec<(&str, Option<&str>)> =
                attrs.iter().map(|(k, from)| (*k, n.attr(from))).collect();
            Some(vec![element(to, n, &attrs)?])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_as_liquibase_derives_them() {
        let n = |name: &str, attrs: &[(&str, &str)]| Node {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Node::default()
        };
        let r = inverse(&n(
            "renameColumn",
            &[
                ("tableName", "t"),
                ("oldColumnName", "a"),
                ("newColumnName", "b"),
            ],
        ))
        .unwrap();
        assert_eq!(r[0].attr("oldColumnName"), Some("b"));
        assert_eq!(r[0].attr("newColumnName"), Some("a"));
        // An unnamed unique constraint: nothing derived.
        assert!(inverse(&n(
            "addUniqueConstraint",
            &[("tableName", "t"), ("columnNames", "a")]
        ))
        .is_none());
        assert!(inverse(&n("sql", &[])).is_none());
        let mut add = n("addColumn", &[("tableName", "t"), ("schemaName", "s")]);
        add.children = vec![n("column", &[("name", "a")]), n("column", &[("name", "b")])];
        let r = inverse(&add).unwrap();
        assert_eq!(
            r.iter()
                .map(|c| c.attr("columnName").unwrap())
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(r[0].attr("schemaName"), Some("s"));
    }
}
