//! Liquibase's checksum of a changeset, as Liquibase 4.x computes it (`9:` and 32 hex
//! digits in DATABASECHANGELOG's MD5SUM), so `import --history` can tell a changeset
//! edited since Liquibase ran it.
//!
//! Liquibase's rules (`ChangeSet.generateCheckSum`, `CheckSum.compute`,
//! `AbstractChange.generateCheckSum` with `StringChangeLogSerializer`,
//! `AbstractSQLChange.generateCheckSum`): a changeset's is the MD5 of each of its
//! changes' checksums followed by `:` (a `sql` or `sqlFile` change for another dbms
//! left out), then each of its `modifySql` edits' followed by `;` (`of_visitor`);
//! a `sql`/`sqlFile` change's is the MD5 of its SQL with every space, tab,
//! CR and LF removed; any other change's is the MD5 of its serialization: its name,
//! then `[`, its fields one a line (`name="value"`, sorted, indented by four spaces a
//! level; a column list as `columns=[…]`, a column's `constraints` as a nested `[…]`
//! with no name), then `]`. Text is hashed with line endings as LF, U+FFFD removed
//! and in NFC.
//!
//! Invariant: fail closed: a change this module has not been compared with the real
//! Liquibase on has no checksum (an `Err` naming it), never a guess.

use super::changes::INDEX_COLUMN_IGNORED;
use super::tree::Node;
use md5::{Digest, Md5};
use std::collections::BTreeSet;
use unicode_normalization::UnicodeNormalization;

/// A checksum (`9:…`), or why import cannot compute it as Liquibase does.
pub(in crate::import) type Sum = Result<String, String>;

/// The change types whose checksum was compared with the real Liquibase's (4.28)
/// (tests/import_liquibase.rs, `each_md5sum_…`); `sql` and `sqlFile` hash their SQL,
/// `createView` its fields and its query.
const SERIALIZED: &[&str] = &[
    "addAutoIncrement",
    "addColumn",
    "addDefaultValue",
    "addForeignKeyConstraint",
    "addNotNullConstraint",
    "addPrimaryKey",
    "addUniqueConstraint",
    "alterSequence",
    "createIndex",
    "createSequence",
    "createTable",
    "createView",
    "delete",
    "dropColumn",
    "dropDefaultValue",
    "dropForeignKeyConstraint",
    "dropIndex",
    "dropNotNullConstraint",
    "dropPrimaryKey",
    "dropSequence",
    "dropTable",
    "dropUniqueConstraint",
    "dropView",
    "insert",
    "modifyDataType",
    "renameColumn",
    "renameSequence",
    "renameTable",
    "renameView",
    "setColumnRemarks",
    "setTableRemarks",
    "tagDatabase",
    "update",
];

/// Fields Liquibase holds as numbers (`BigInteger`): written back in their canonical
/// form.
const INTEGERS: &[&str] = &[
    "startValue",
    "incrementBy",
    "minValue",
    "maxValue",
    "cacheSize",
];

fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// `CheckSum.compute(String)`: LF line endings, no U+FFFD, NFC, then MD5.
pub(in crate::import) fn of_text(s: &str) -> String {
    let s = s
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\u{FFFD}', "");
    let s: String = s.nfc().collect();
    format!("9:{}", md5_hex(s.as_bytes()))
}

/// A `sql` or `sqlFile` change's checksum: the MD5 of its SQL without whitespace.
pub(in crate::import) fn of_sql(sql: &str) -> String {
    let kept: Vec<u8> = (sql.bytes())
        .filter(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .collect();
    format!("9:{}", md5_hex(&kept))
}

/// A changeset's checksum from its changes' (a `sql`/`sqlFile` for another dbms left
/// out by the caller, as Liquibase leaves it out), then its `modifySql` edits'
/// (`visitors`: those for PostgreSQL or every dbms; `liquibase update` on PostgreSQL
/// leaves the others out, as `calculate-checksum` with no database does not), each
/// followed by `;`.
pub(in crate::import) fn of_changeset(changes: Vec<Sum>, visitors: Vec<Sum>) -> Sum {
    let mut text = String::new();
    for c in changes {
        text.push_str(&c?);
        text.push(':');
    }
    for v in visitors {
        text.push_str(&v?);
        text.push(';');
    }
    Ok(of_text(&text))
}

/// The checksum of the edit `e` of the `modifySql` `m` (`AbstractSqlVisitor`): its
/// name and its fields serialized as a change's are, `applyToRollback` among them;
/// from checksum version 9 on, not its dbms, context or labels.
pub(in crate::import) fn of_visitor(m: &Node, e: &Node) -> Sum {
    let fields: &[&str] = match e.name.as_str() {
        "replace" | "regExpReplace" => &["replace", "with"],
        "append" | "prepend" => &["value"],
        other => {
            return Err(format!(
                "a `modifySql` `{other}`, whose checksum import does not compute"
            ))
        }
    };
    let to_rollback = m.is("applyToRollback");
    let mut attrs = vec![("applyToRollback".to_string(), to_rollback.to_string())];
    for f in fields {
        if let Some(v) = e.get(f) {
            attrs.push((f.to_string(), v));
        }
    }
    let fields = Node {
        name: e.name.clone(),
        attrs,
        ..Node::default()
    };
    Ok(of_text(&format!("{}:{}", e.name, object(&fields, 1)?)))
}

/// The checksum of the change `n` (an `sqlFile`'s is its file's: [`of_sql`]).
pub(in crate::import) fn of_change(n: &Node) -> Sum {
    match n.name.as_str() {
        "sql" => Ok(of_sql(&n.get("sql").unwrap_or_else(|| n.text.clone()))),
        "customChange" => of_custom(n),
        // Its fields but the query, then the query as SQL (`CreateViewChange`).
        "createView" if n.attr("path").is_none() => {
            let mut fields = n.clone();
            fields.text.clear();
            fields
                .attrs
                .retain(|(k, _)| !["selectQuery", "encoding"].contains(&k.as_str()));
            let query = n.get("selectQuery").unwrap_or_else(|| n.text.clone());
            let head = of_text(&format!("createView:{}", object(&fields, 1)?));
            Ok(of_text(&format!("{head}:{}", of_sql(&query))))
        }
        name if SERIALIZED.contains(&name) => Ok(of_text(&format!("{name}:{}", object(n, 1)?))),
        name => Err(format!(
            "its `{name}` change, whose checksum import does not compute as Liquibase does"
        )),
    }
}

/// A `customChange`'s checksum (`CustomChangeWrapper`): its `class`, then its `param`s
/// (`<param name="…" value="…"/>`) as a map, `[]` when there are none. An attribute
/// of the element other than `class` is a parameter only when the Java class has such
/// a property, which import cannot know: no checksum then. (A class that implements
/// `CustomChangeChecksum` makes its own, which import cannot know either.)
fn of_custom(n: &Node) -> Sum {
    if let Some((k, _)) = n.attrs.iter().find(|(k, _)| k != "class") {
        return Err(format!(
            "a `customChange` attribute `{k}`, whose checksum import does not compute"
        ));
    }
    let mut params = std::collections::BTreeMap::new();
    for c in &n.children {
        match (c.name.as_str(), c.attr("name"), c.attr("value")) {
            ("param", Some(name), Some(value)) if c.children.is_empty() => {
                params.insert(name.to_string(), value.to_string());
            }
            _ => {
                return Err(format!(
                    "a `customChange` `<{}>` other than `<param name value>`, whose checksum import does not compute",
                    c.name
                ))
            }
        }
    }
    let param = if params.is_empty() {
        "[]".to_string()
    } else {
        let lines: Vec<String> = (params.iter())
            .map(|(k, v)| format!("{}{k}=\"{v}\"", pad(2)))
            .collect();
        format!("{{\n{}\n{}}}", lines.join(",\n"), pad(1))
    };
    let class = n.attr("class").unwrap_or_default();
    Ok(of_text(&format!(
        "customChange:[\n{p}class=\"{class}\"\n{p}param={param}\n]",
        p = pad(1)
    )))
}

fn pad(indent: usize) -> String {
    " ".repeat(4 * indent)
}

/// A field's value as Liquibase writes it back: booleans and integers in their Java
/// form, the rest as written.
fn value(key: &str, v: &str) -> String {
    let t = v.trim();
    if ["value", "defaultValue", "defaultNullValue", "remarks"].contains(&key) {
        return v.to_string();
    }
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return t.to_ascii_lowercase();
    }
    if INTEGERS.contains(&key) {
        if let Ok(n) = t.parse::<i128>() {
            return n.to_string();
        }
    }
    v.to_string()
}

/// The column `c` of the change `n` as Liquibase serializes it: a `createIndex`
/// column's `type` is not (Liquibase 4.28 leaves it out); the other attributes
/// Liquibase ignores there were not compared: no checksum.
fn index_column(n: &Node, c: &Node) -> Result<Node, String> {
    if n.name != "createIndex" {
        return Ok(c.clone());
    }
    let mut c = c.clone();
    c.attrs.retain(|(k, _)| k != "type");
    let other = (c.attrs.iter().map(|(k, _)| k.as_str()))
        .find(|k| INDEX_COLUMN_IGNORED.contains(k) && *k != "valueComputed")
        .or(c.children.first().map(|k| k.name.as_str()));
    match other {
        Some(k) => Err(format!(
            "`{k}` of a `createIndex` column, whose checksum import does not compute"
        )),
        None => Ok(c),
    }
}

/// `StringChangeLogSerializer.serializeObject` of the element `n` at `indent`.
fn object(n: &Node, indent: usize) -> Result<String, String> {
    let p = pad(indent);
    let mut lines = BTreeSet::new();
    for (k, v) in &n.attrs {
        lines.insert(format!("{p}{k}=\"{}\"", value(k, v)));
    }
    if !n.text.trim().is_empty() {
        return Err(format!(
            "the text of its `{}`, whose checksum import does not compute",
            n.name
        ));
    }
    let columns: Vec<Node> = (n.children.iter())
        .filter(|c| c.name == "column")
        .map(|c| index_column(n, c))
        .collect::<Result<_, _>>()?;
    if !columns.is_empty() {
        let mut list = String::from("[\n");
        for (i, c) in columns.iter().enumerate() {
            list.push_str(&pad(indent + 1));
            list.push_str(&object(c, indent + 2)?);
            list.push_str(if i + 1 < columns.len() { ",\n" } else { "\n" });
        }
        list.push_str(&p);
        list.push(']');
        lines.insert(format!("{p}columns={list}"));
    }
    for c in n.children.iter().filter(|c| c.name != "column") {
        match c.name.as_str() {
            "constraints" => lines.insert(format!("{p}{}", object(c, indent + 1)?)),
            "where" => lines.insert(format!("{p}where=\"{}\"", c.text.trim())),
            // Not serialized: Liquibase 4.28 leaves `whereParams` out of the checksum
            // (compared with its MD5SUMs; `where` is there as written).
            "whereParams" => false,
            other => {
                return Err(format!(
                    "its `<{other}>` in `{}`, whose checksum import does not compute",
                    n.name
                ))
            }
        };
    }
    let mut out = String::from("[");
    if !lines.is_empty() {
        out.push('\n');
        out.push_str(&lines.into_iter().collect::<Vec<_>>().join("\n"));
        out.push('\n');
    }
    out.push_str(&pad(indent - 1));
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_liquibase_s_for_sql_and_for_a_serialized_change() {
        // As Liquibase 4.28 records them.
        let sql = of_sql("CREATE INDEX CONCURRENTLY idx_orders_customer ON orders (customer_id)");
        assert_eq!(sql, "9:f3f9ba3900cac07a02b3b6af64e1d4bd");
        assert_eq!(
            of_changeset(vec![Ok(sql)], vec![]).unwrap(),
            "9:7d856a5f87f49eb49c4ef6141d4b7804"
        );
        let tag = Node {
            name: "tagDatabase".into(),
            attrs: vec![("tag".into(), "v1.0".into())],
            ..Node::default()
        };
        assert_eq!(
            of_change(&tag).unwrap(),
            "9:ad2dc040c0dbde31f9d6909f1c260f59"
        );
        // A `customChange` of a class with no parameter, as Liquibase 4.28 recorded it.
        let custom = Node {
            name: "customChange".into(),
            attrs: vec![("class".into(), "org.example.kc.FillQty".into())],
            ..Node::default()
        };
        assert_eq!(
            of_changeset(vec![of_change(&custom)], vec![]).unwrap(),
            "9:9cf92d790c1f6ff3414185af13fa4189"
        );
    }
}
