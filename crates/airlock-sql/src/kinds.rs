//! What each statement of a tier or rollback file is, in a word a reader knows (`CREATE
//! TABLE`, `ALTER TABLE … ADD COLUMN`, `INSERT`) and in plain words (`creates a table`),
//! with the object it names: the dossier's "what changes" summary, read from
//! PostgreSQL's parse tree.
//!
//! Invariant: a statement whose kind this module does not know is named by
//! PostgreSQL's own node name (`other: CreateCastStmt`), never left out and never
//! guessed; memory is bounded as the lexer bounds it (a DML statement over its limit
//! is counted as DML without its text).

use super::reach::{each_statement, Held};
use pg_query::protobuf::{AlterTableType as At, ObjectType};
use pg_query::NodeEnum as N;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

/// DML longer than this is named by its first word, not parsed: a data file of large
/// INSERTs costs one scan, not one parse per statement.
const PARSE_DML_BELOW: usize = 64 << 10;

/// One statement of a file and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatementKind {
    /// Its first line in the file.
    pub line: usize,
    /// What it is, as SQL names it: `CREATE TABLE`, `ALTER TABLE … ADD COLUMN`,
    /// `INSERT`, or `other: NODE` (PostgreSQL's node name) for a kind not listed here.
    pub kind: String,
    /// The object it names, as the statement names it (a table, view, index…), when
    /// the statement names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

/// Every statement of one tier or rollback file, in file order (streamed, bounded
/// memory). COPY data and psql meta-commands are not statements.
pub fn kinds_in(r: &mut dyn Read) -> io::Result<Vec<StatementKind>> {
    let mut out = Vec::new();
    each_statement(r, true, |held| match held {
        // A WITH is parsed whatever its size: what it deletes or updates is named.
        Held::Text { sql, line, dml }
            if dml && sql.len() >= PARSE_DML_BELOW && first_word(sql) != "WITH" =>
        {
            out.push(StatementKind {
                line,
                kind: first_word(sql),
                object: None,
            });
        }
        Held::Text { sql, line, .. } => out.extend(parsed(sql, line)),
        Held::TooLong { line } => out.push(StatementKind {
            line,
            kind: "DML".into(),
            object: None,
        }),
    })?;
    Ok(out)
}

/// A statement's kinds from the parse tree (a held text may hold several statements).
fn parsed(sql: &str, line: usize) -> Vec<StatementKind> {
    let Ok(tree) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![StatementKind {
            line,
            kind: first_word(sql),
            object: None,
        }];
    };
    let names = tree.statement_types();
    let mut out = vec![];
    for (i, (at, node)) in super::parser::statements_by_line(&tree, sql, line)
        .into_iter()
        .enumerate()
    {
        // What its WITH clauses change (`WITH gone AS (DELETE FROM t …) SELECT …`) is
        // named as the same statement written alone (`DELETE`, on `t`); a SELECT that
        // only carries them is not named besides.
        let parts = super::predicts::modifying_parts(node);
        for part in &parts {
            if let Some((kind, object)) = kind_of(part) {
                out.push(StatementKind {
                    line: at,
                    kind,
                    object,
                });
            }
        }
        if !parts.is_empty() && matches!(node, N::SelectStmt(_)) {
            continue;
        }
        let (kind, object) = kind_of(node)
            .unwrap_or_else(|| (format!("other: {}", names.get(i).unwrap_or(&"?")), None));
        out.push(StatementKind {
            line: at,
            kind,
            object,
        });
    }
    out
}

/// The first word of a statement, uppercased (what a reader calls it).
fn first_word(sql: &str) -> String {
    let word: String = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .find(|w| !w.is_empty())
        .unwrap_or("?")
        .chars()
        .take(32)
        .collect();
    word.to_ascii_uppercase()
}

fn relation(rv: &Option<pg_query::protobuf::RangeVar>) -> Option<String> {
    rv.as_ref().map(|rv| {
        if rv.schemaname.is_empty() {
            rv.relname.clone()
        } else {
            format!("{}.{}", rv.schemaname, rv.relname)
        }
    })
}

/// What SQL calls an object type (`TABLE`, `MATERIALIZED VIEW`).
fn object_word(t: i32) -> &'static str {
    match ObjectType::try_from(t).unwrap_or(ObjectType::Undefined) {
        ObjectType::ObjectTable => "TABLE",
        ObjectType::ObjectView => "VIEW",
        ObjectType::ObjectMatview => "MATERIALIZED VIEW",
        ObjectType::ObjectIndex => "INDEX",
        ObjectType::ObjectSequence => "SEQUENCE",
        ObjectType::ObjectSchema => "SCHEMA",
        ObjectType::ObjectFunction => "FUNCTION",
        ObjectType::ObjectProcedure => "PROCEDURE",
        ObjectType::ObjectTrigger => "TRIGGER",
        ObjectType::ObjectType => "TYPE",
        ObjectType::ObjectDomain => "DOMAIN",
        ObjectType::ObjectColumn => "COLUMN",
        ObjectType::ObjectPolicy => "POLICY",
        ObjectType::ObjectExtension => "EXTENSION",
        ObjectType::ObjectRule => "RULE",
        ObjectType::ObjectForeignTable => "FOREIGN TABLE",
        _ => "OBJECT",
    }
}

/// `ALTER TABLE`'s subcommand, as SQL words.
fn alter_word(subtype: i32) -> &'static str {
    match At::try_from(subtype).unwrap_or(At::Undefined) {
        At::AtAddColumn => "ALTER TABLE … ADD COLUMN",
        At::AtDropColumn => "ALTER TABLE … DROP COLUMN",
        At::AtAlterColumnType => "ALTER TABLE … ALTER COLUMN TYPE",
        At::AtSetNotNull => "ALTER TABLE … SET NOT NULL",
        At::AtDropNotNull => "ALTER TABLE … DROP NOT NULL",
        At::AtColumnDefault => "ALTER TABLE … SET DEFAULT",
        At::AtAddConstraint => "ALTER TABLE … ADD CONSTRAINT",
        At::AtDropConstraint => "ALTER TABLE … DROP CONSTRAINT",
        At::AtValidateConstraint => "ALTER TABLE … VALIDATE CONSTRAINT",
        At::AtEnableTrig | At::AtEnableAlwaysTrig | At::AtEnableReplicaTrig => {
            "ALTER TABLE … ENABLE TRIGGER"
        }
        At::AtDisableTrig => "ALTER TABLE … DISABLE TRIGGER",
        At::AtEnableRowSecurity | At::AtForceRowSecurity => {
            "ALTER TABLE … ENABLE ROW LEVEL SECURITY"
        }
        At::AtDisableRowSecurity | At::AtNoForceRowSecurity => {
            "ALTER TABLE … DISABLE ROW LEVEL SECURITY"
        }
        At::AtChangeOwner => "ALTER TABLE … OWNER TO",
        _ => "ALTER TABLE",
    }
}

/// A statement's kind and object, for the kinds listed; `None` for the rest.
fn kind_of(node: &N) -> Option<(String, Option<String>)> {
    let named = |k: &str, o: Option<String>| Some((k.to_string(), o));
    match node {
        N::CreateStmt(s) => named("CREATE TABLE", relation(&s.relation)),
        N::CreateTableAsStmt(s) => {
            let what = format!("CREATE {} AS", object_word(s.objtype));
            let rel = s.into.as_ref().and_then(|i| relation(&i.rel));
            named(&what, rel)
        }
        N::ViewStmt(s) => named("CREATE VIEW", relation(&s.view)),
        N::IndexStmt(s) => {
            let what = match (s.unique, s.concurrent) {
                (true, true) => "CREATE UNIQUE INDEX CONCURRENTLY",
                (true, false) => "CREATE UNIQUE INDEX",
                (false, true) => "CREATE INDEX CONCURRENTLY",
                (false, false) => "CREATE INDEX",
            };
            named(what, relation(&s.relation))
        }
        N::AlterTableStmt(s) => {
            let first = s.cmds.iter().find_map(|c| match c.node.as_ref() {
                Some(N::AlterTableCmd(c)) => Some(c.subtype),
                _ => None,
            });
            named(
                first.map_or("ALTER TABLE", alter_word),
                relation(&s.relation),
            )
        }
        N::DropStmt(s) => named(&format!("DROP {}", object_word(s.remove_type)), None),
        N::TruncateStmt(_) => named("TRUNCATE", None),
        N::InsertStmt(s) => named("INSERT", relation(&s.relation)),
        N::UpdateStmt(s) => named("UPDATE", relation(&s.relation)),
        N::DeleteStmt(s) => named("DELETE", relation(&s.relation)),
        N::MergeStmt(s) => named("MERGE", relation(&s.relation)),
        N::SelectStmt(_) => named("SELECT", None),
        N::CopyStmt(s) => named("COPY", relation(&s.relation)),
        N::CreateFunctionStmt(s) if s.is_procedure => named("CREATE PROCEDURE", None),
        N::CreateFunctionStmt(_) => named("CREATE FUNCTION", None),
        N::CreateTrigStmt(s) => named("CREATE TRIGGER", relation(&s.relation)),
        N::CreateSchemaStmt(s) => named("CREATE SCHEMA", Some(s.schemaname.clone())),
        N::CreateSeqStmt(s) => named("CREATE SEQUENCE", relation(&s.sequence)),
        N::AlterSeqStmt(s) => named("ALTER SEQUENCE", relation(&s.sequence)),
        N::CreateEnumStmt(_) | N::CompositeTypeStmt(_) | N::CreateRangeStmt(_) => {
            named("CREATE TYPE", None)
        }
        N::AlterEnumStmt(_) => named("ALTER TYPE … ADD VALUE", None),
        N::CreateDomainStmt(_) => named("CREATE DOMAIN", None),
        N::GrantStmt(s) if s.is_grant => named("GRANT", None),
        N::GrantStmt(_) => named("REVOKE", None),
        N::GrantRoleStmt(_) => named("GRANT ROLE", None),
        N::CommentStmt(_) => named("COMMENT", None),
        N::CreatePolicyStmt(s) => named("CREATE POLICY", relation(&s.table)),
        N::DoStmt(_) => named("DO", None),
        N::CreateExtensionStmt(s) => named("CREATE EXTENSION", Some(s.extname.clone())),
        N::RenameStmt(s) => named(
            &format!("ALTER {} … RENAME", object_word(s.rename_type)),
            relation(&s.relation),
        ),
        N::AlterOwnerStmt(s) => named(
            &format!("ALTER {} … OWNER TO", object_word(s.object_type)),
            None,
        ),
        N::VacuumStmt(s) if s.is_vacuumcmd => named("VACUUM", None),
        N::VacuumStmt(_) => named("ANALYZE", None),
        N::VariableSetStmt(_) => named("SET", None),
        N::LockStmt(_) => named("LOCK TABLE", None),
        N::RefreshMatViewStmt(s) => named("REFRESH MATERIALIZED VIEW", relation(&s.relation)),
        N::CreateStatsStmt(_) => named("CREATE STATISTICS", None),
        N::AlterDefaultPrivilegesStmt(_) => named("ALTER DEFAULT PRIVILEGES", None),
        _ => None,
    }
}

/// What a kind [`kinds_in`] names does, in words for a reader who does not read SQL.
pub fn plain(kind: &str) -> &'static str {
    match kind {
        "CREATE TABLE" => "creates a new table",
        "CREATE TABLE AS" => "creates a new table filled from a query",
        "CREATE MATERIALIZED VIEW AS" => "creates a stored query result (materialized view)",
        "CREATE VIEW" => "creates or replaces a view (a saved query; stores no data)",
        "CREATE INDEX" | "CREATE UNIQUE INDEX" => {
            "builds an index (blocks writes to the table while it builds)"
        }
        "CREATE INDEX CONCURRENTLY" | "CREATE UNIQUE INDEX CONCURRENTLY" => {
            "builds an index while writes go on"
        }
        "ALTER TABLE … ADD COLUMN" => "adds a column to an existing table",
        "ALTER TABLE … DROP COLUMN" => "removes a column and the data in it",
        "ALTER TABLE … ALTER COLUMN TYPE" => "changes a column's type (may rewrite the table)",
        "ALTER TABLE … SET NOT NULL" => "makes a column required (fails if a row has none)",
        "ALTER TABLE … DROP NOT NULL" => "makes a column optional",
        "ALTER TABLE … SET DEFAULT" => "changes a column's default value",
        "ALTER TABLE … ADD CONSTRAINT" => {
            "adds a rule the rows must keep (fails if a row breaks it)"
        }
        "ALTER TABLE … DROP CONSTRAINT" => "removes a rule the rows had to keep",
        "ALTER TABLE … VALIDATE CONSTRAINT" => "checks existing rows against a rule",
        "ALTER TABLE … ENABLE TRIGGER" => "turns on automatic actions on a table",
        "ALTER TABLE … DISABLE TRIGGER" => "turns off automatic actions on a table",
        "ALTER TABLE … ENABLE ROW LEVEL SECURITY" => "limits which rows each role sees",
        "ALTER TABLE … DISABLE ROW LEVEL SECURITY" => "stops limiting which rows each role sees",
        "ALTER TABLE … OWNER TO" => "changes who owns a table",
        "ALTER TABLE" => "changes an existing table",
        "DROP TABLE" => "deletes a table and all its rows",
        "DROP VIEW" | "DROP MATERIALIZED VIEW" => "deletes a view",
        "DROP INDEX" => "deletes an index",
        "DROP SCHEMA" => "deletes a schema",
        "DROP FUNCTION" | "DROP PROCEDURE" => "deletes a function",
        "DROP TRIGGER" => "deletes an automatic action",
        "DROP TYPE" | "DROP DOMAIN" => "deletes a type",
        "DROP SEQUENCE" => "deletes a number generator",
        "DROP COLUMN" => "deletes a column",
        "TRUNCATE" => "empties a table (deletes all its rows)",
        "INSERT" => "adds rows",
        "UPDATE" => "changes existing rows",
        "DELETE" => "deletes rows",
        "MERGE" => "adds, changes or deletes rows to match a source",
        "SELECT" => "runs a query (reads; may call functions)",
        "COPY" => "loads rows carried in the bundle",
        "DML" => "changes rows (a statement too long to read here)",
        "CREATE FUNCTION" => "creates or replaces a function",
        "CREATE PROCEDURE" => "creates or replaces a procedure",
        "CREATE TRIGGER" => "creates an automatic action on a table",
        "CREATE SCHEMA" => "creates a schema (a namespace for tables)",
        "CREATE SEQUENCE" => "creates a number generator",
        "ALTER SEQUENCE" => "changes a number generator",
        "CREATE TYPE" | "CREATE DOMAIN" => "creates a data type",
        "ALTER TYPE … ADD VALUE" => "adds a value to a list type",
        "GRANT" | "GRANT ROLE" => "gives a role rights",
        "REVOKE" => "takes rights from a role",
        "COMMENT" => "sets a description on an object",
        "CREATE POLICY" => "adds a rule for which rows a role sees",
        "DO" => "runs a block of procedural code",
        "CREATE EXTENSION" => "installs a database extension",
        "VACUUM" | "ANALYZE" => "maintenance: cleans up or refreshes statistics",
        "SET" => "changes a setting for the rest of the run",
        "LOCK TABLE" => "locks a table explicitly",
        "REFRESH MATERIALIZED VIEW" => "recomputes a stored query result",
        "CREATE STATISTICS" => "adds planner statistics",
        "ALTER DEFAULT PRIVILEGES" => "changes the rights future objects get",
        k if k.ends_with("… RENAME") => "renames an object",
        k if k.ends_with("… OWNER TO") => "changes who owns an object",
        k if k.starts_with("DROP ") => "deletes an object",
        k if k.starts_with("CREATE ") => "creates an object",
        _ => "a statement of a kind this summary does not describe (see the SQL)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(usize, String, Option<String>)> {
        kinds_in(&mut sql.as_bytes())
            .unwrap()
            .into_iter()
            .map(|k| (k.line, k.kind, k.object))
            .collect()
    }

    #[test]
    fn each_statement_is_named_with_its_object_and_line() {
        let got = kinds(
            "CREATE TABLE app.t (i int);\nALTER TABLE app.t ADD COLUMN j int;\n\nINSERT INTO app.t VALUES (1);\nDROP VIEW v;\nCREATE CAST (int AS text) WITH INOUT;\n",
        );
        assert_eq!(
            got,
            vec![
                (1, "CREATE TABLE".into(), Some("app.t".into())),
                (2, "ALTER TABLE … ADD COLUMN".into(), Some("app.t".into())),
                (4, "INSERT".into(), Some("app.t".into())),
                (5, "DROP VIEW".into(), None),
                (6, "other: CreateCastStmt".into(), None),
            ]
        );
        assert_eq!(plain("CREATE TABLE"), "creates a new table");
        assert!(plain("other: CreateCastStmt").contains("does not describe"));
    }

    /// Issue 66, finding 7: a DELETE or UPDATE inside a WITH is named as written alone.
    #[test]
    fn what_a_with_clause_changes_is_named_like_the_plain_statement() {
        let got = kinds(
            "WITH gone AS (DELETE FROM customers RETURNING id) SELECT count(*) FROM gone;\n\
             WITH a AS (UPDATE s.t SET x = 1 RETURNING *) INSERT INTO arch SELECT * FROM a;\n\
             EXPLAIN ANALYZE DELETE FROM logs;\nEXPLAIN DELETE FROM kept;\n",
        );
        assert_eq!(
            got,
            vec![
                (1, "DELETE".into(), Some("customers".into())),
                (2, "UPDATE".into(), Some("s.t".into())),
                (2, "INSERT".into(), Some("arch".into())),
                (3, "DELETE".into(), Some("logs".into())),
                (3, "other: ExplainStmt".into(), None),
                (4, "other: ExplainStmt".into(), None),
            ]
        );
    }

    #[test]
    fn copy_data_is_not_a_statement() {
        let got = kinds("COPY t (a) FROM stdin;\n1\n2\n\\.\nDELETE FROM t;\n");
        assert_eq!(
            got,
            vec![
                (1, "COPY".into(), Some("t".into())),
                (5, "DELETE".into(), Some("t".into()))
            ]
        );
    }
}
