//! Database fingerprint: SHA-256 over a canonical description of the database's
//! schema, as `pg_dump --schema-only` would print it.
//!
//! Covered: schemas, extensions (and which objects belong to them), types of every
//! kind, tables and their columns (type, default, identity, generated, collation,
//! storage, compression, statistics target, options, ACL), partitioning,
//! inheritance, reloptions, access method, tablespace, persistence, replica
//! identity, row security, constraints, indexes (and CLUSTER ON), views and
//! materialized views with their options, sequences (definition and OWNED BY),
//! functions, procedures and aggregates (full definition, owner, ACL), operators,
//! operator classes and families, casts, collations, conversions, text search
//! objects, foreign-data wrappers, servers, user mappings, foreign tables, triggers,
//! event triggers, rules, policies, publications, subscriptions, statistics objects,
//! default privileges, languages, transforms, access methods, changed privileges on
//! `pg_catalog` objects, and the owner, ACL, comment and security labels of each.
//! Not covered: the ledger objects named in [`LEDGER`] (the ledger module checks
//! those before every use), a subscription's connection string (superuser-only),
//! the privileges of a `pg_catalog` object whose ACL a superuser set to NULL by
//! writing the catalog (GRANT and REVOKE never do), and what `pg_dump --schema-only`
//! leaves out too (data, statistics, sequence values, large objects, roles,
//! tablespaces, database settings).
//!
//! Invariant: the schema fingerprint changes exactly when `pg_dump --schema-only`
//! output does (tests/fingerprint.rs checks this one DDL step at a time), but for the
//! ledger objects and one deliberate addition: a foreign key whose internal triggers
//! were disabled, which pg_dump does not show. The description holds names and
//! server-rendered definitions, never OIDs, statistics, sequence values or physical
//! layout, so dropping and recreating an identical object, VACUUM, ANALYZE,
//! CHECKPOINT or data changes leave it alone. It
//! is computed in a savepoint that first pins every setting the server's renderers
//! read (`search_path`, `DateStyle`, …) and is rolled back afterwards, and its SQL
//! names only `pg_catalog` objects (a unit test checks this with the PostgreSQL
//! parser): neither session, role or database defaults nor objects a hostile role
//! planted change what it says. `--rows` and `--data` add per-table row counts and
//! in-server content hashes.

use super::{pg_message, DbError};
use postgres::{SimpleQueryMessage, Transaction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Schema,
    Rows,
    Data,
}

/// One described object; `hash` is the SHA-256 of its canonical line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Part {
    pub kind: String,
    pub name: String,
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Fingerprint {
    pub fingerprint: String,
    pub level: String,
    pub parts: Vec<Part>,
}

impl Fingerprint {
    pub fn short(&self) -> &str {
        &self.fingerprint[..8]
    }
}

/// The objects airlock creates for its ledger, left out of the fingerprint: the
/// ledger is created inside the apply whose before and after the fingerprints
/// describe, and `ledger` checks these objects itself before every use. Left out are
/// the schema itself (owner, ACL, comment), the table with everything attached to it
/// (columns, constraints, indexes, triggers, comments, ACLs, row type) and the
/// no-argument functions named here. Everything else in the schema counts: another
/// table, function, view or sequence there, an overload of these functions, or a
/// rule, policy or statistics object on the ledger changes the fingerprint.
pub const LEDGER: LedgerObjects = LedgerObjects {
    schema: "airlock",
    table: "ledger",
    functions: &["ledger_append_only", "ledger_no_truncate"],
};

/// See [`LEDGER`].
#[derive(Clone, Copy, Debug)]
pub struct LedgerObjects {
    pub schema: &'static str,
    /// A table in `schema`.
    pub table: &'static str,
    /// Functions in `schema` that take no arguments.
    pub functions: &'static [&'static str],
}

/// Opens the savepoint and pins what the server's renderers read (`pg_get_*def`,
/// `format_type`, reg* and value output) whatever the session, role or database
/// defaults say, then answers the server version. `SET` resolves no names.
/// `row_security = off` makes `--data` fail rather than hash the part of a table a
/// policy lets this role see; `jit = off` because compiling the description query
/// costs ten times more than running it; `enable_mergejoin = off` because costing
/// merge joins (histogram probes) is a tenth of its planning and they never win on
/// catalogs.
const PIN: &str = "SAVEPOINT airlock_fingerprint;
SET LOCAL search_path = pg_catalog, pg_temp;
SET LOCAL DateStyle = 'ISO, MDY';
SET LOCAL IntervalStyle = postgres;
SET LOCAL TimeZone = 'UTC';
SET LOCAL extra_float_digits = 1;
SET LOCAL bytea_output = hex;
SET LOCAL standard_conforming_strings = on;
SET LOCAL quote_all_identifiers = off;
SET LOCAL xmloption = content;
SET LOCAL lc_monetary = 'C';
SET LOCAL row_security = off;
SET LOCAL jit = off;
SET LOCAL enable_mergejoin = off;
SELECT pg_catalog.current_setting('server_version_num')";

/// Ends the savepoint: the pinned settings go, the caller's transaction goes on as
/// it was.
const UNPIN: &str =
    "ROLLBACK TO SAVEPOINT airlock_fingerprint; RELEASE SAVEPOINT airlock_fingerprint";

/// The description: (kind, name, definition) for every object.
const SCHEMA_SQL: &str = include_str!("fingerprint.sql");

/// The tables `--rows` and `--data` count and hash: those of the dumped schemas but
/// the ledger.
const TABLES_SQL: &str = r#"SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,m}'::pg_catalog."char"[])
  AND pg_catalog.left(n.nspname, 3) OPERATOR(pg_catalog.<>) 'pg_'
  AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
  AND NOT (n.nspname OPERATOR(pg_catalog.=) @LEDGER_SCHEMA@
       AND c.relname OPERATOR(pg_catalog.=) @LEDGER_TABLE@)"#;

/// `--rows`: the row count of `@TABLE@` (quoted and qualified).
const ROWS_SQL: &str = "SELECT pg_catalog.count(*)::pg_catalog.text FROM @TABLE@";

/// `--data`: the row count and the hash of the sorted per-row hashes, independent of
/// physical order and computed in the server.
const DATA_SQL: &str = "SELECT pg_catalog.count(*)::pg_catalog.text OPERATOR(pg_catalog.||) ' ' \
OPERATOR(pg_catalog.||) COALESCE(pg_catalog.md5(pg_catalog.string_agg(s.h, '' ORDER BY s.h)), '') \
FROM (SELECT pg_catalog.md5(t::pg_catalog.text) AS h FROM @TABLE@ t) s";

/// An SQL string literal of one of airlock's own constants.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn with_ledger(sql: &str) -> String {
    let functions: Vec<String> = LEDGER.functions.iter().map(|f| literal(f)).collect();
    sql.replace("@LEDGER_SCHEMA@", &literal(LEDGER.schema))
        .replace("@LEDGER_TABLE@", &literal(LEDGER.table))
        .replace(
            "@LEDGER_FUNCTIONS@",
            &format!("ARRAY[{}]::pg_catalog.name[]", functions.join(", ")),
        )
}

/// The description query for a server version: columns gained a compression method
/// and subscriptions binary and streaming options in PostgreSQL 14; publications
/// gained row filters, column lists and schemas in PostgreSQL 15, subscriptions
/// two-phase commit and disable-on-error.
fn schema_sql(server_version_num: u32) -> String {
    let (attcompression, subscription14) = if server_version_num >= 140000 {
        ("a.attcompression", ", s.subbinary, s.substream")
    } else {
        ("NULL::pg_catalog.\"char\"", "")
    };
    let (publication_rel, publication_namespace, subscription15) = if server_version_num >= 150000 {
        (
            "ROW(pg_catalog.pg_get_expr(r.prqual, r.prrelid),
            (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a
                WHERE a.attrelid OPERATOR(pg_catalog.=) r.prrelid
                  AND a.attnum OPERATOR(pg_catalog.=) ANY (r.prattrs::pg_catalog.int2[])))::pg_catalog.text",
            "UNION ALL
    SELECT 'pg_catalog.pg_publication_namespace'::pg_catalog.regclass, p.oid, 0, NULL,
        NULL::pg_catalog.text
    FROM pg_catalog.pg_publication_namespace p",
            ", s.subtwophasestate, s.subdisableonerr",
        )
    } else {
        ("NULL::pg_catalog.text", "", "")
    };
    with_ledger(SCHEMA_SQL)
        .replace("@PG14_ATTCOMPRESSION@", attcompression)
        .replace("@PG14_SUBSCRIPTION@", subscription14)
        .replace("@PG15_PUBLICATION_REL@", publication_rel)
        .replace("@PG15_PUBLICATION_NAMESPACE@", publication_namespace)
        .replace("@PG15_SUBSCRIPTION@", subscription15)
}

fn line_hash(kind: &str, name: &str, def: &str) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(def.as_bytes());
    hex::encode(h.finalize())
}

pub fn quote_qualified(schema: &str, table: &str) -> String {
    format!(
        "{}.{}",
        super::quote_ident(schema),
        super::quote_ident(table)
    )
}

fn fingerprint_err(what: &str, e: &postgres::Error) -> DbError {
    DbError::Sql {
        context: format!("fingerprint ({what})"),
        message: pg_message(e),
    }
}

/// One statement's result rows, every value as text.
type Rows = Vec<Vec<Option<String>>>;

/// Send a simple-query batch (one round trip); the rows of each statement, in order.
fn batch(tx: &mut Transaction<'_>, sql: &str, what: &str) -> Result<Vec<Rows>, DbError> {
    let messages = tx
        .simple_query(sql)
        .map_err(|e| fingerprint_err(what, &e))?;
    let mut statements = vec![];
    let mut rows = vec![];
    for m in messages {
        match m {
            SimpleQueryMessage::Row(r) => {
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(_) => statements.push(std::mem::take(&mut rows)),
            _ => {}
        }
    }
    Ok(statements)
}

fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// The description query prepared on one connection, for its later fingerprints
/// (`apply` takes two, before and after the tiers): PostgreSQL plans it once, and
/// planning is most of its cost. Use it only with the connection that prepared it.
///
/// A cached plan is made again when the session's temporary schema comes into use
/// after it was prepared (`pg_temp` in the pinned search_path then names a schema,
/// even for a moment: a probe's wrapper in a rolled-back savepoint, a tier's
/// temporary table). So before preparing, [`TEMP_SCHEMA`] puts it in use for the
/// rest of the caller's transaction; where that is refused (a read-only
/// transaction, no TEMP privilege) the plan is simply made again when needed.
#[derive(Default)]
pub struct Prepared {
    schema: Option<(u32, postgres::Statement)>,
}

/// Puts the session's temporary schema in use for the caller's transaction (see
/// [`Prepared`]): a function made and dropped there, in a savepoint that is released.
const TEMP_SCHEMA: &str = "SAVEPOINT airlock_fingerprint_temp;
CREATE FUNCTION pg_temp.airlock_fingerprint_temp() RETURNS pg_catalog.void LANGUAGE sql AS '';
DROP FUNCTION pg_temp.airlock_fingerprint_temp();
RELEASE SAVEPOINT airlock_fingerprint_temp";

/// Undoes a failed [`TEMP_SCHEMA`].
const TEMP_SCHEMA_FAILED: &str = "ROLLBACK TO SAVEPOINT airlock_fingerprint_temp;
RELEASE SAVEPOINT airlock_fingerprint_temp";

/// Compute the fingerprint inside the caller's transaction. It only reads, and leaves
/// the transaction's settings as they were; the schema level takes two round trips.
pub fn compute(tx: &mut Transaction<'_>, level: Level) -> Result<Fingerprint, DbError> {
    compute_prepared(tx, level, &mut Prepared::default())
}

/// [`compute`] reusing (or preparing) the description query in `prepared`. Before
/// preparing it, it makes and drops a temporary function (see [`Prepared`]).
pub fn compute_with(
    tx: &mut Transaction<'_>,
    level: Level,
    prepared: &mut Prepared,
) -> Result<Fingerprint, DbError> {
    if prepared.schema.is_none() && tx.batch_execute(TEMP_SCHEMA).is_err() {
        batch(tx, TEMP_SCHEMA_FAILED, "releasing the temporary schema")?;
    }
    compute_prepared(tx, level, prepared)
}

fn compute_prepared(
    tx: &mut Transaction<'_>,
    level: Level,
    prepared: &mut Prepared,
) -> Result<Fingerprint, DbError> {
    let pinned = batch(tx, PIN, "pinning settings")?;
    let version: u32 = pinned
        .last()
        .and_then(|rows| rows.first())
        .and_then(|row| text(row, 0).parse().ok())
        .ok_or_else(|| {
            DbError::State("fingerprint: the server sent no server_version_num".into())
        })?;
    let statement = match &prepared.schema {
        Some((v, st)) if *v == version => st.clone(),
        _ => {
            let st = tx
                .prepare(&schema_sql(version))
                .map_err(|e| fingerprint_err("schema", &e))?;
            prepared.schema = Some((version, st.clone()));
            st
        }
    };
    let described: Rows = tx
        .query(&statement, &[])
        .map_err(|e| fingerprint_err("schema", &e))?
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect();
    let tables = if level == Level::Schema {
        batch(tx, UNPIN, "releasing settings")?;
        vec![]
    } else {
        batch(tx, &with_ledger(TABLES_SQL), "tables")?
            .into_iter()
            .next()
            .unwrap_or_default()
    };
    let mut parts: Vec<Part> = described
        .iter()
        .map(|row| {
            let (kind, name, def) = (text(row, 0), text(row, 1), text(row, 2));
            Part {
                hash: line_hash(&kind, &name, &def),
                kind,
                name,
            }
        })
        .collect();
    if level != Level::Schema {
        let (kind, per_table) = match level {
            Level::Data => ("data", DATA_SQL),
            _ => ("rows", ROWS_SQL),
        };
        for t in &tables {
            let (schema, table) = (text(t, 0), text(t, 1));
            let name = format!("{schema}.{table}");
            let q = per_table.replace("@TABLE@", &quote_qualified(&schema, &table));
            let value = batch(tx, &q, &name)?
                .first()
                .and_then(|rows| rows.first())
                .map(|row| text(row, 0))
                .unwrap_or_default();
            parts.push(Part {
                hash: line_hash(kind, &name, &value),
                kind: kind.into(),
                name,
            });
        }
        batch(tx, UNPIN, "releasing settings")?;
    }
    // (kind, name) is unique; the hash only makes the order total whatever the rows.
    parts.sort_by(|a, b| (&a.kind, &a.name, &a.hash).cmp(&(&b.kind, &b.name, &b.hash)));
    let mut h = Sha256::new();
    for p in &parts {
        h.update(p.kind.as_bytes());
        h.update([0]);
        h.update(p.name.as_bytes());
        h.update([0]);
        h.update(p.hash.as_bytes());
        h.update(b"\n");
    }
    Ok(Fingerprint {
        fingerprint: hex::encode(h.finalize()),
        level: match level {
            Level::Schema => "schema",
            Level::Rows => "rows",
            Level::Data => "data",
        }
        .into(),
        parts,
    })
}

/// [`compute`] in a read-only transaction of its own on `client`, rolled back after.
pub fn compute_read_only(
    client: &mut postgres::Client,
    level: Level,
) -> Result<Fingerprint, DbError> {
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(|e| fingerprint_err("BEGIN READ ONLY", &e))?;
    let fp = compute(&mut tx, level)?;
    tx.rollback().map_err(|e| fingerprint_err("ROLLBACK", &e))?;
    Ok(fp)
}

/// Objects whose description differs between two fingerprints (for reports).
pub fn diff(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    use std::collections::BTreeMap;
    let ma: BTreeMap<(&str, &str), &str> = a
        .parts
        .iter()
        .map(|p| ((p.kind.as_str(), p.name.as_str()), p.hash.as_str()))
        .collect();
    let mb: BTreeMap<(&str, &str), &str> = b
        .parts
        .iter()
        .map(|p| ((p.kind.as_str(), p.name.as_str()), p.hash.as_str()))
        .collect();
    let mut out = vec![];
    for (k, v) in &ma {
        match mb.get(k) {
            None => out.push(format!("removed {} {}", k.0, k.1)),
            Some(w) if w != v => out.push(format!("changed {} {}", k.0, k.1)),
            _ => {}
        }
    }
    for k in mb.keys() {
        if !ma.contains_key(k) {
            out.push(format!("added {} {}", k.0, k.1));
        }
    }
    out
}

// These tests parse the statements with PostgreSQL's parser: pg-parser build only.
#[cfg(all(test, feature = "pg-parser"))]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every statement `compute` sends, for each server-version variant.
    fn everything_sent() -> Vec<(String, String)> {
        // The per-table statements name the user's table with its schema (quoted); a
        // catalog stands in for it here.
        let table = quote_qualified("pg_catalog", "pg_class");
        vec![
            ("PIN".into(), PIN.into()),
            ("TEMP_SCHEMA".into(), TEMP_SCHEMA.into()),
            ("TEMP_SCHEMA_FAILED".into(), TEMP_SCHEMA_FAILED.into()),
            ("UNPIN".into(), UNPIN.into()),
            ("schema (PostgreSQL 15+)".into(), schema_sql(150000)),
            ("schema (PostgreSQL 14)".into(), schema_sql(140000)),
            ("schema (PostgreSQL 13)".into(), schema_sql(130000)),
            ("tables".into(), with_ledger(TABLES_SQL)),
            ("rows".into(), ROWS_SQL.replace("@TABLE@", &table)),
            ("data".into(), DATA_SQL.replace("@TABLE@", &table)),
        ]
    }

    fn strings(list: &Value) -> Vec<String> {
        list.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|n| n["node"]["String"]["sval"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn qualified(list: &Value) -> bool {
        let names = strings(list);
        names.len() == 2 && names[0] == "pg_catalog"
    }

    fn walk(v: &Value, ctes: &[String], bad: &mut Vec<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, ctes, bad)),
            Value::Object(fields) => {
                for (key, node) in fields {
                    let shown = || {
                        format!(
                            "{key} {}",
                            node.to_string().chars().take(160).collect::<String>()
                        )
                    };
                    let ok = match key.as_str() {
                        "FuncCall" => qualified(&node["funcname"]),
                        // Only plain operators (also with ANY/ALL), named with their schema;
                        // IN, IS DISTINCT FROM, NULLIF, LIKE, BETWEEN look "=" or "<" up.
                        "AExpr" => {
                            matches!(node["kind"].as_i64(), Some(1..=3)) && qualified(&node["name"])
                        }
                        // x op ANY (SELECT ...) needs its operator named; IN (SELECT) has none.
                        "SubLink" => {
                            !matches!(node["sub_link_type"].as_i64(), Some(2..=4))
                                || qualified(&node["oper_name"])
                        }
                        // A type name, wrapped in a node or a field of another.
                        _ if node.get("type_oid").is_some() => {
                            strings(&node["names"]).first().map(String::as_str)
                                == Some("pg_catalog")
                        }
                        // A table name: in pg_catalog, or one of the query's own CTEs.
                        _ if node.get("relname").is_some() => {
                            node["schemaname"] == "pg_catalog"
                                || (node["schemaname"] == ""
                                    && node["relname"]
                                        .as_str()
                                        .is_some_and(|r| ctes.iter().any(|c| c == r)))
                        }
                        // CASE x WHEN y compares with "=".
                        "CaseExpr" => node["arg"].is_null(),
                        "JoinExpr" => {
                            node["is_natural"] != true
                                && node["using_clause"].as_array().is_none_or(Vec::is_empty)
                        }
                        "CollateClause" => qualified(&node["collname"]),
                        "SortBy" => node["use_op"].as_array().is_none_or(Vec::is_empty),
                        _ => true,
                    };
                    if !ok {
                        bad.push(shown());
                    }
                    walk(node, ctes, bad);
                }
            }
            _ => {}
        }
    }

    fn cte_names(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| cte_names(i, out)),
            Value::Object(fields) => {
                if let Some(name) = fields.get("ctename").and_then(Value::as_str) {
                    out.push(name.to_string());
                }
                fields.values().for_each(|f| cte_names(f, out));
            }
            _ => {}
        }
    }

    #[test]
    fn every_statement_names_only_pg_catalog_objects_and_has_no_backslash() {
        for (what, sql) in everything_sent() {
            assert!(!sql.contains('\\'), "{what}: a backslash");
            assert!(!sql.contains('@'), "{what}: a placeholder is left");
            let parsed = pg_query::parse(&sql, pg_query::ParserOptions::DEFAULT)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let tree = serde_json::to_value(&parsed.protobuf).expect("parse tree as JSON");
            let mut ctes = vec![];
            cte_names(&tree, &mut ctes);
            let mut bad = vec![];
            walk(&tree, &ctes, &mut bad);
            assert!(
                bad.is_empty(),
                "{what}: {} construct(s) could resolve outside pg_catalog:\n{}",
                bad.len(),
                bad.join("\n")
            );
        }
    }

    #[test]
    fn the_checker_catches_what_a_planted_object_could_hijack() {
        for sql in [
            "SELECT format_type(1, NULL)",
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = 'x'",
            "SELECT 1 FROM pg_class",
            "SELECT 'a'::text",
            "SELECT 1 WHERE 'a' OPERATOR(pg_catalog.=) ANY (SELECT 'b') AND 1 IN (1, 2)",
            "SELECT 1 WHERE 1 IN (SELECT 1)",
            "SELECT 1 WHERE 1 IS DISTINCT FROM 2",
            "SELECT CASE 1 WHEN 1 THEN 2 END",
            "SELECT 1 FROM pg_catalog.pg_class a JOIN pg_catalog.pg_class b USING (oid)",
            "SELECT 1 ORDER BY 1 COLLATE \"C\"",
        ] {
            let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).expect(sql);
            let tree = serde_json::to_value(&parsed.protobuf).expect("JSON");
            let mut bad = vec![];
            walk(&tree, &[], &mut bad);
            assert!(!bad.is_empty(), "not caught: {sql}");
        }
    }
}
