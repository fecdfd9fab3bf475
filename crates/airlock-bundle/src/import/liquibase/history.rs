//! Liquibase's own history kept in step (issue 89, item 13): the DATABASECHANGELOG rows
//! Liquibase writes for the changesets it runs, written by import as SQL of the tier
//! that carries them (a file of that tier, so signed with it and run in its
//! transaction), and their removal as a file of the rollback. After airlock applies,
//! `liquibase status` finds nothing pending and `liquibase update` runs nothing.
//!
//! The rows are Liquibase's (4.x): ID, AUTHOR, FILENAME as the changelog names the
//! file, DATEEXECUTED the transaction's time, ORDEREXECUTED after the largest the
//! table holds, EXECTYPE `EXECUTED` (`MARK_RAN` for a changeset a precondition
//! marks), MD5SUM as `checksum.rs` computes it (NULL where it does not: Liquibase
//! then writes its own on its next update), DESCRIPTION the changes' names, COMMENTS
//! the changeset's `<comment>`, TAG a `tagDatabase`'s tag, LIQUIBASE the version
//! whose checksums import computes, DEPLOYMENT_ID one per transaction (Liquibase's
//! form: the last ten digits of the time in milliseconds).
//!
//! Invariant: only literals of the changelog reach the SQL, each quoted as a string
//! literal; nothing of the database is read at import.

/// The Liquibase version written in the LIQUIBASE column: the one `checksum.rs` was
/// compared with (its MD5SUMs are this version's `9:` checksums).
pub(in crate::import) const LIQUIBASE_VERSION: &str = "4.28.0";

/// DATABASECHANGELOG as Liquibase 4.x creates it on PostgreSQL.
const CREATE: &str = "CREATE TABLE {T} (\n    id VARCHAR(255) NOT NULL,\n    author VARCHAR(255) NOT NULL,\n    filename VARCHAR(255) NOT NULL,\n    dateexecuted TIMESTAMP WITHOUT TIME ZONE NOT NULL,\n    orderexecuted INTEGER NOT NULL,\n    exectype VARCHAR(10) NOT NULL,\n    md5sum VARCHAR(35),\n    description VARCHAR(255),\n    comments VARCHAR(255),\n    tag VARCHAR(255),\n    liquibase VARCHAR(20),\n    contexts VARCHAR(255),\n    labels VARCHAR(255),\n    deployment_id VARCHAR(10)\n);\n";

/// One DATABASECHANGELOG row to write.
#[derive(Clone, Debug)]
pub(in crate::import) struct Row {
    pub id: String,
    pub author: String,
    pub filename: String,
    /// `EXECUTED` or `MARK_RAN`.
    pub exectype: &'static str,
    pub md5sum: Option<String>,
    pub description: String,
    pub comments: Option<String>,
    pub tag: Option<String>,
}

/// `s` as an SQL string literal, cut to `max` characters (the column's width).
fn lit(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    format!("'{}'", cut.replace('\'', "''"))
}

fn opt(s: &Option<String>, max: usize) -> String {
    s.as_deref().map_or("NULL".into(), |s| lit(s, max))
}

/// The SQL that records `rows` (in order) in `table`, creating the table first when
/// `create`.
pub(in crate::import) fn record(table: &str, rows: &[Row], create: bool) -> String {
    let mut out = String::from("-- Liquibase's history kept in step (written by `airlock import`): the rows\n-- Liquibase writes for these changesets, so `liquibase status` finds them run.\n");
    if create {
        out.push_str(&CREATE.replace("{T}", table));
    }
    let values: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(k, r)| {
            format!(
                "    ({}, {}, {}, {}, '{}', {}, {}, {}, {})",
                k + 1,
                lit(&r.id, 255),
                lit(&r.author, 255),
                lit(&r.filename, 255),
                r.exectype,
                opt(&r.md5sum, 35),
                lit(&r.description, 255),
                opt(&r.comments, 255),
                opt(&r.tag, 255),
            )
        })
        .collect();
    out.push_str(&format!(
        "INSERT INTO {table} (id, author, filename, dateexecuted, orderexecuted, exectype, md5sum, description, comments, tag, liquibase, contexts, labels, deployment_id)\nSELECT r.id, r.author, r.filename, localtimestamp,\n    coalesce((SELECT max(orderexecuted) FROM {table}), 0) + r.n,\n    r.exectype, r.md5sum, r.description, r.comments, r.tag, '{LIQUIBASE_VERSION}', NULL, NULL,\n    right(floor(extract(epoch FROM transaction_timestamp()) * 1000)::bigint::text, 10)\nFROM (VALUES\n{}\n) AS r(n, id, author, filename, exectype, md5sum, description, comments, tag)\nORDER BY r.n;\n",
        values.join(",\n")
    ));
    out
}

/// The SQL that removes `rows` from `table` (and the table, when the bundle created
/// it: `drop`).
pub(in crate::import) fn remove(table: &str, rows: &[Row], drop: bool) -> String {
    let mut out = String::from("-- Liquibase's history put back (written by `airlock import`): the rows the\n-- release wrote for its changesets removed, so `liquibase status` lists them pending.\n");
    if drop {
        out.push_str(&format!(
            "-- The release created {table}: the rollback drops it.\nDROP TABLE {table};\n"
        ));
        return out;
    }
    let keys: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "    ({}, {}, {})",
                lit(&r.id, 255),
                lit(&r.author, 255),
                lit(&r.filename, 255)
            )
        })
        .collect();
    out.push_str(&format!(
        "DELETE FROM {table}\nWHERE (id, author, filename) IN (VALUES\n{}\n);\n",
        keys.join(",\n")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> Row {
        Row {
            id: id.into(),
            author: "o'neil".into(),
            filename: "db.xml".into(),
            exectype: "EXECUTED",
            md5sum: None,
            description: "createTable".into(),
            comments: None,
            tag: None,
        }
    }

    #[test]
    fn quotes_are_doubled_and_each_row_numbered_in_order() {
        let sql = record("databasechangelog", &[row("1"), row("2")], true);
        assert!(sql.starts_with("--"));
        assert!(sql.contains("CREATE TABLE databasechangelog ("));
        assert!(sql.contains("(1, '1', 'o''neil', 'db.xml', 'EXECUTED', NULL"));
        assert!(sql.contains("(2, '2', 'o''neil'"));
        let gone = remove("databasechangelog", &[row("1")], false);
        assert!(gone.contains("('1', 'o''neil', 'db.xml')"));
    }
}
