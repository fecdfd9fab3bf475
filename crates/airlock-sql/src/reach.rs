//! Statements that reach beyond their database. Two kinds:
//! - what a tier or rollback file changes in the cluster's shared catalogs (roles and
//!   memberships, databases and their settings, role settings, tablespaces,
//!   subscriptions, grants on databases, tablespaces and parameters, comments and
//!   security labels on those) rather than in the database it runs in;
//! - what reaches another database or the server itself: `dblink*` calls, foreign
//!   servers, tables and user mappings (`postgres_fdw`, `file_fdw`), `CREATE EXTENSION`
//!   of `dblink`, `postgres_fdw`, `file_fdw` or `adminpack`, server-side large-object
//!   files (`lo_import`, `lo_export`), the server's files (`pg_read_file` and its kin,
//!   `pg_ls_dir`, `pg_stat_file`, adminpack's `pg_file_write`…), and calls that act on
//!   the server (other sessions, its configuration, replication slots).
//!
//! A rehearsal on a clone cannot isolate either, so `lint` and `plan` name them and
//! `rehearse` refuses them up front.
//!
//! Invariant: PostgreSQL's parser reads every statement that is not plain DML, and
//! every DML statement that names one of the functions above; one it cannot read is
//! said to reach beyond (fail-closed), and so is a DML statement too long to look
//! into. Only what a file says is seen: SQL built at run time (`EXECUTE` of a string
//! put together, a name built with `||`), procedures (`CALL`), triggers and the
//! functions the database already holds are not; a `DO` block or function body is
//! named when its text names such a function. The rehearsal's before/after
//! comparison of the cluster, and the catalog's own answer (what the target has
//! installed), are what catch the rest.

use crate::lex::lexer::{Event, Keep, Lexer, Mode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

/// One statement that reaches outside its database (or, with no file, what the
/// target's catalog holds that does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reach {
    /// The bundle path of the file.
    pub file: String,
    pub line: usize,
    /// What it is, e.g. `CREATE ROLE`, `ALTER DATABASE`, `GRANT role (membership)`.
    pub statement: String,
}

impl std::fmt::Display for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file.is_empty() {
            // Not a statement of a file: what the target's catalog holds.
            return write!(f, "{}", self.statement);
        }
        write!(f, "{} at {}:{}", self.statement, self.file, self.line)
    }
}

/// Every statement of one tier or rollback file (streamed, bounded memory) that reaches
/// beyond its database, as PostgreSQL's parser reads it.
pub fn reaches_in(file: &str, r: &mut dyn Read) -> io::Result<Vec<Reach>> {
    let mut out = Vec::new();
    let mut push = |line, statement: String| {
        out.push(Reach {
            file: file.into(),
            line,
            statement,
        })
    };
    each_statement(r, true, |held| match held {
        Held::Text { sql, line, dml } => {
            // DML is parsed only when it names a function of the list: a data file of
            // a million INSERTs is not parsed a million times.
            if !dml || may_call_outside(sql.as_bytes()) {
                for (line, what) in by_parser(sql, line) {
                    push(line, what);
                }
            }
        }
        Held::TooLong { line } => push(
            line,
            "a DML statement over 8 MiB, too long to look for calls that reach beyond".into(),
        ),
    })?;
    Ok(out)
}

/// A statement as [`each_statement`] hands it on.
pub(super) enum Held<'a> {
    Text {
        sql: &'a str,
        line: usize,
        dml: bool,
    },
    /// DML too long to be held (only when DML is asked for).
    TooLong { line: usize },
}

/// Streams a tier or rollback file through the lexer (bounded memory) and hands every
/// statement that is not plain DML to `f` with its first line, DML too when `dml` (held
/// up to the lexer's limit; longer DML is handed on as [`Held::TooLong`]). What is not
/// UTF-8 is skipped: lint refuses it, and there is nothing to read in it. Returns the
/// first line of the file's last statement of any kind (DML included), if it has one.
pub(super) fn each_statement(
    r: &mut dyn Read,
    dml: bool,
    f: impl FnMut(Held<'_>),
) -> io::Result<Option<usize>> {
    each_statement_with(r, if dml { DmlText::All } else { DmlText::None }, f)
}

/// Which DML [`each_statement_with`] hands on with its text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum DmlText {
    None,
    /// `UPDATE` statements only (no other DML is copied out of the lexer).
    Updates,
    All,
}

/// [`each_statement`], with the DML `keep` says.
pub(super) fn each_statement_with(
    r: &mut dyn Read,
    keep: DmlText,
    mut f: impl FnMut(Held<'_>),
) -> io::Result<Option<usize>> {
    let dml = keep == DmlText::All;
    let mut last = None;
    let mut lexer = Lexer::new(Mode::Script, Keep::NonDml);
    match keep {
        DmlText::All => lexer.keep_dml_text(),
        DmlText::Updates => lexer.keep_update_text(),
        DmlText::None => {}
    }
    let mut buf = vec![0u8; 256 * 1024];
    let mut drain = |lexer: &mut Lexer| {
        for event in lexer.events.drain(..) {
            let Event::Statement(s) = event else { continue };
            last = Some(s.line);
            let is_dml = s.kind == crate::lex::lexer::Kind::Dml;
            let Some(text) = s.text else {
                if dml && is_dml {
                    f(Held::TooLong { line: s.line });
                }
                continue;
            };
            if let Ok(sql) = std::str::from_utf8(&text) {
                f(Held::Text {
                    sql,
                    line: s.line,
                    dml: is_dml,
                });
            }
        }
    };
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lexer.feed(&buf[..n]);
        drain(&mut lexer);
        if lexer.stopped {
            break;
        }
    }
    lexer.finish();
    drain(&mut lexer);
    // DML the lexer reported no event for (lint judges none) still ended a statement.
    Ok(last.max(lexer.last_line))
}

fn comment_on(object: &str) -> &'static str {
    match object {
        "ROLE" => "COMMENT ON ROLE",
        "DATABASE" => "COMMENT ON DATABASE",
        "TABLESPACE" => "COMMENT ON TABLESPACE",
        _ => "COMMENT ON SUBSCRIPTION",
    }
}

fn label_on(object: &str) -> &'static str {
    match object {
        "ROLE" => "SECURITY LABEL ON ROLE",
        "DATABASE" => "SECURITY LABEL ON DATABASE",
        "TABLESPACE" => "SECURITY LABEL ON TABLESPACE",
        _ => "SECURITY LABEL ON SUBSCRIPTION",
    }
}

fn grant_on(grant: bool, object: &str) -> &'static str {
    match (grant, object) {
        (true, "DATABASE") => "GRANT ON DATABASE",
        (true, "TABLESPACE") => "GRANT ON TABLESPACE",
        (true, _) => "GRANT ON PARAMETER",
        (false, "DATABASE") => "REVOKE ON DATABASE",
        (false, "TABLESPACE") => "REVOKE ON TABLESPACE",
        (false, _) => "REVOKE ON PARAMETER",
    }
}

fn membership(grant: bool) -> &'static str {
    if grant {
        "GRANT role (membership)"
    } else {
        "REVOKE role (membership)"
    }
}

/// `verb` + the object kept in a shared catalog, for CREATE/ALTER/DROP.
fn ddl(verb: &str, object: &str) -> Option<&'static str> {
    Some(match (verb, object) {
        ("CREATE", "ROLE") => "CREATE ROLE",
        ("ALTER", "ROLE") => "ALTER ROLE",
        ("DROP", "ROLE") => "DROP ROLE",
        ("CREATE", "DATABASE") => "CREATE DATABASE",
        ("ALTER", "DATABASE") => "ALTER DATABASE",
        ("DROP", "DATABASE") => "DROP DATABASE",
        ("CREATE", "TABLESPACE") => "CREATE TABLESPACE",
        ("ALTER", "TABLESPACE") => "ALTER TABLESPACE",
        ("DROP", "TABLESPACE") => "DROP TABLESPACE",
        ("CREATE", "SUBSCRIPTION") => "CREATE SUBSCRIPTION",
        ("ALTER", "SUBSCRIPTION") => "ALTER SUBSCRIPTION",
        ("DROP", "SUBSCRIPTION") => "DROP SUBSCRIPTION",
        ("ALTER", "SYSTEM") => "ALTER SYSTEM",
        _ => return None,
    })
}

/// PostgreSQL's parser's verdict on one captured statement (perhaps several, see
/// `classify.rs`), starting on `line`. One it cannot read is named (fail-closed).
pub(super) fn by_parser(sql: &str, line: usize) -> Vec<(usize, String)> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![(line, "a statement lint cannot read".into())];
    };
    let mut out = Vec::new();
    for (at_line, node) in super::parser::statements_by_line(&parsed, sql, line) {
        if let Some(what) = node_reach(node) {
            out.push((at_line, what.to_string()));
        }
        out.extend(outside(node).into_iter().map(|what| (at_line, what)));
    }
    out
}

/// What a function called `name` (the last part of its name) reaches outside the
/// database, if anything.
fn call_reaches(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("dblink") {
        return Some("another database");
    }
    Some(match lower.as_str() {
        "lo_import"
        | "lo_export"
        | "pg_read_file"
        | "pg_read_binary_file"
        | "pg_ls_dir"
        | "pg_stat_file"
        | "pg_ls_logdir"
        | "pg_ls_waldir"
        | "pg_ls_tmpdir"
        | "pg_ls_archive_statusdir"
        | "pg_ls_logicalsnapdir"
        | "pg_ls_logicalmapdir"
        | "pg_ls_replslotdir"
        | "pg_file_write"
        | "pg_file_rename"
        | "pg_file_unlink"
        | "pg_file_sync"
        | "pg_logdir_ls" => "the server's files",
        "pg_terminate_backend"
        | "pg_cancel_backend"
        | "pg_reload_conf"
        | "pg_rotate_logfile"
        | "pg_switch_wal"
        | "pg_promote"
        | "pg_create_physical_replication_slot"
        | "pg_create_logical_replication_slot"
        | "pg_drop_replication_slot"
        | "pg_copy_physical_replication_slot"
        | "pg_copy_logical_replication_slot"
        | "pg_replication_origin_create"
        | "pg_replication_origin_drop" => {
            "the server (other sessions, its configuration, replication)"
        }
        _ => return None,
    })
}

/// Whether `text` may call a function [`call_reaches`] knows: one of its words (runs
/// of letters, digits and `_`, in any case) begins like one of their names. Cheap,
/// one pass; the parser decides. Every `pg_catalog.setval` of a dump passes here
/// without being parsed (`pg_catalog` begins like none of them).
pub(super) fn may_call_outside(text: &[u8]) -> bool {
    text.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .any(|word| word.len() >= 3 && word_may_reach(word))
}

/// After `pg_`: the starts of the names of the server's files and of calls on the
/// server (replication slot and origin functions hold `replication_`). One list for
/// [`word_may_reach`] and for lint's byte look (`reach_pass`), which must
/// flag everything this does.
pub(super) const AFTER_PG: [&[u8]; 11] = [
    b"read",
    b"ls_",
    b"stat_file",
    b"file_",
    b"logdir",
    b"terminate",
    b"cancel",
    b"reload",
    b"rotate",
    b"switch",
    b"promote",
];

/// A word that begins like a name [`call_reaches`] knows.
fn word_may_reach(word: &[u8]) -> bool {
    let starts = |w: &[u8], n: &[u8]| w.len() >= n.len() && w[..n.len()].eq_ignore_ascii_case(n);
    match word[0] | 0x20 {
        b'd' => starts(word, b"dblink"),
        b'l' => starts(word, b"lo_"),
        b'p' if starts(word, b"pg_") => {
            let rest = &word[3..];
            AFTER_PG.iter().any(|n| starts(rest, n))
                || rest
                    .windows(12)
                    .any(|w| w.eq_ignore_ascii_case(b"replication_"))
        }
        _ => false,
    }
}

/// Names in `text` (a `DO` block's or a function's body) of functions that reach
/// outside the database, as words.
fn named_in_body(text: &str) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if let Some(what) = call_reaches(word) {
            let word = word.to_ascii_lowercase();
            if !out.iter().any(|(w, _)| *w == word) {
                out.push((word, what));
            }
        }
    }
    out
}

/// What a statement reaches outside its database through another database or the
/// server: its statement kind, the functions it calls, the names a body holds.
fn outside(node: &pg_query::NodeEnum) -> Vec<String> {
    use pg_query::NodeEnum as N;
    let another = "(another database)";
    let mut out = Vec::new();
    match node {
        N::CreateForeignServerStmt(_) => out.push(format!("CREATE SERVER {another}")),
        N::AlterForeignServerStmt(_) => out.push(format!("ALTER SERVER {another}")),
        N::CreateForeignTableStmt(_) => out.push(format!("CREATE FOREIGN TABLE {another}")),
        N::ImportForeignSchemaStmt(_) => out.push(format!("IMPORT FOREIGN SCHEMA {another}")),
        N::CreateUserMappingStmt(_) => out.push(format!("CREATE USER MAPPING {another}")),
        N::AlterUserMappingStmt(_) => out.push(format!("ALTER USER MAPPING {another}")),
        N::CreateFdwStmt(_) | N::AlterFdwStmt(_) => {
            out.push(format!("a FOREIGN DATA WRAPPER {another}"))
        }
        N::CreateExtensionStmt(e) => {
            let reach = match e.extname.to_ascii_lowercase().as_str() {
                "dblink" | "postgres_fdw" => Some(another),
                "file_fdw" | "adminpack" => Some("(the server's files)"),
                _ => None,
            };
            if let Some(r) = reach {
                out.push(format!("CREATE EXTENSION {} {r}", e.extname));
            }
        }
        N::CopyStmt(c) if c.is_program || !c.filename.is_empty() => {
            out.push("COPY with a server file or program (the server's files)".into())
        }
        _ => {}
    }
    let tree = serde_json::to_value(node).unwrap_or(serde_json::Value::Null);
    let body = matches!(node, N::DoStmt(_) | N::CreateFunctionStmt(_));
    let what = if matches!(node, N::DoStmt(_)) {
        "a DO block"
    } else {
        "a function body"
    };
    super::parser::walk(&tree, &mut |k, v| match k {
        "FuncCall" => {
            let last = v
                .get("funcname")
                .and_then(serde_json::Value::as_array)
                .and_then(|a| a.last())
                .and_then(|n| n.pointer("/node/String/sval"))
                .and_then(serde_json::Value::as_str);
            if let Some((name, reach)) = last.and_then(|n| Some((n, call_reaches(n)?))) {
                let said = format!("{}(…) ({reach})", name.to_ascii_lowercase());
                if !out.contains(&said) {
                    out.push(said);
                }
            }
        }
        "sval" if body => {
            for (name, reach) in v.as_str().map(named_in_body).unwrap_or_default() {
                let said = format!("{what} naming {name} ({reach})");
                let called = format!("{name}(");
                if !out.contains(&said) && !out.iter().any(|o| o.starts_with(&called)) {
                    out.push(said);
                }
            }
        }
        _ => {}
    });
    out
}

fn object_word(objtype: i32) -> Option<&'static str> {
    use pg_query::protobuf::ObjectType as O;
    Some(match O::try_from(objtype).ok()? {
        O::ObjectRole => "ROLE",
        O::ObjectDatabase => "DATABASE",
        O::ObjectTablespace => "TABLESPACE",
        O::ObjectSubscription => "SUBSCRIPTION",
        O::ObjectParameterAcl => "PARAMETER",
        _ => return None,
    })
}

fn node_reach(node: &pg_query::NodeEnum) -> Option<&'static str> {
    use pg_query::NodeEnum as N;
    Some(match node {
        N::CreateRoleStmt(_) => "CREATE ROLE",
        N::AlterRoleStmt(_) | N::AlterRoleSetStmt(_) => "ALTER ROLE",
        N::DropRoleStmt(_) => "DROP ROLE",
        N::GrantRoleStmt(s) => membership(s.is_grant),
        N::CreatedbStmt(_) => "CREATE DATABASE",
        N::AlterDatabaseStmt(_)
        | N::AlterDatabaseSetStmt(_)
        | N::AlterDatabaseRefreshCollStmt(_) => "ALTER DATABASE",
        N::DropdbStmt(_) => "DROP DATABASE",
        N::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        N::AlterTableSpaceOptionsStmt(_) => "ALTER TABLESPACE",
        N::DropTableSpaceStmt(_) => "DROP TABLESPACE",
        N::CreateSubscriptionStmt(_) => "CREATE SUBSCRIPTION",
        N::AlterSubscriptionStmt(_) => "ALTER SUBSCRIPTION",
        N::DropSubscriptionStmt(_) => "DROP SUBSCRIPTION",
        N::AlterSystemStmt(_) => "ALTER SYSTEM",
        N::DropOwnedStmt(_) => "DROP OWNED",
        N::CreateSchemaStmt(s) => s
            .schema_elts
            .iter()
            .filter_map(|e| e.node.as_ref())
            .find_map(node_reach)?,
        N::ReassignOwnedStmt(_) => "REASSIGN OWNED",
        N::RenameStmt(s) => ddl("ALTER", object_word(s.rename_type)?)?,
        N::AlterOwnerStmt(s) => ddl("ALTER", object_word(s.object_type)?)?,
        N::GrantStmt(s) => match object_word(s.objtype)? {
            o @ ("DATABASE" | "TABLESPACE" | "PARAMETER") => grant_on(s.is_grant, o),
            _ => return None,
        },
        N::CommentStmt(s) => match object_word(s.objtype)? {
            "PARAMETER" => return None,
            o => comment_on(o),
        },
        N::SecLabelStmt(s) => match object_word(s.objtype)? {
            "PARAMETER" => return None,
            o => label_on(o),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaches(sql: &str) -> Vec<String> {
        reaches_in("f.sql", &mut sql.as_bytes())
            .expect("read")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Statement, what it reaches (None: stays in its database).
    const CASES: &[(&str, Option<&str>)] = &[
        ("CREATE ROLE x", Some("CREATE ROLE")),
        ("CREATE USER x PASSWORD 'p'", Some("CREATE ROLE")),
        ("CREATE GROUP g", Some("CREATE ROLE")),
        ("ALTER ROLE x SET work_mem = '7MB'", Some("ALTER ROLE")),
        ("ALTER ROLE x IN DATABASE d SET work_mem = 1", Some("ALTER ROLE")),
        ("ALTER USER x SUPERUSER", Some("ALTER ROLE")),
        ("ALTER ROLE x RENAME TO y", Some("ALTER ROLE")),
        ("ALTER GROUP g ADD USER u", Some("ALTER ROLE")),
        ("DROP ROLE IF EXISTS x", Some("DROP ROLE")),
        ("DROP USER x", Some("DROP ROLE")),
        ("GRANT r TO u", Some("GRANT role (membership)")),
        ("GRANT r TO u WITH ADMIN OPTION", Some("GRANT role (membership)")),
        ("REVOKE r FROM u", Some("REVOKE role (membership)")),
        ("GRANT SELECT ON t TO u", None),
        ("GRANT SELECT (a, b) ON TABLE s.t TO u", None),
        ("GRANT ALL ON ALL TABLES IN SCHEMA s TO u", None),
        ("GRANT USAGE ON SCHEMA s TO u", None),
        ("REVOKE EXECUTE ON FUNCTION f(int) FROM PUBLIC", None),
        ("GRANT CONNECT ON DATABASE d TO u", Some("GRANT ON DATABASE")),
        ("REVOKE CREATE ON DATABASE d FROM PUBLIC", Some("REVOKE ON DATABASE")),
        ("GRANT CREATE ON TABLESPACE ts TO u", Some("GRANT ON TABLESPACE")),
        ("GRANT SET ON PARAMETER work_mem TO u", Some("GRANT ON PARAMETER")),
        ("CREATE DATABASE d", Some("CREATE DATABASE")),
        ("ALTER DATABASE d SET work_mem = '7MB'", Some("ALTER DATABASE")),
        ("ALTER DATABASE d RESET ALL", Some("ALTER DATABASE")),
        ("ALTER DATABASE d OWNER TO u", Some("ALTER DATABASE")),
        ("ALTER DATABASE d RENAME TO e", Some("ALTER DATABASE")),
        ("ALTER DATABASE d CONNECTION LIMIT 3", Some("ALTER DATABASE")),
        ("DROP DATABASE d", Some("DROP DATABASE")),
        ("CREATE TABLESPACE ts LOCATION '/x'", Some("CREATE TABLESPACE")),
        ("ALTER TABLESPACE ts SET (seq_page_cost = 2)", Some("ALTER TABLESPACE")),
        ("ALTER TABLESPACE ts OWNER TO u", Some("ALTER TABLESPACE")),
        ("DROP TABLESPACE ts", Some("DROP TABLESPACE")),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = false, slot_name = NONE)",
            Some("CREATE SUBSCRIPTION"),
        ),
        ("ALTER SUBSCRIPTION s DISABLE", Some("ALTER SUBSCRIPTION")),
        ("ALTER SUBSCRIPTION s OWNER TO u", Some("ALTER SUBSCRIPTION")),
        ("DROP SUBSCRIPTION s", Some("DROP SUBSCRIPTION")),
        ("ALTER SYSTEM SET work_mem = '1MB'", Some("ALTER SYSTEM")),
        ("COMMENT ON ROLE r IS 'x'", Some("COMMENT ON ROLE")),
        ("COMMENT ON DATABASE d IS 'x'", Some("COMMENT ON DATABASE")),
        ("COMMENT ON TABLESPACE ts IS 'x'", Some("COMMENT ON TABLESPACE")),
        ("COMMENT ON TABLE t IS 'role'", None),
        ("COMMENT ON COLUMN t.database IS 'x'", None),
        ("SECURITY LABEL FOR p ON ROLE r IS 'x'", Some("SECURITY LABEL ON ROLE")),
        ("SECURITY LABEL ON TABLE t IS 'x'", None),
        ("REASSIGN OWNED BY a TO b", Some("REASSIGN OWNED")),
        ("DROP OWNED BY a", Some("DROP OWNED")),
        ("CREATE USER MAPPING FOR u SERVER s", Some("CREATE USER MAPPING (another database)")),
        (
            "ALTER USER MAPPING FOR u SERVER s OPTIONS (SET password 'p')",
            Some("ALTER USER MAPPING (another database)"),
        ),
        ("DROP USER MAPPING FOR u SERVER s", None),
        ("CREATE TABLE role(i int)", None),
        ("CREATE SCHEMA s AUTHORIZATION u", None),
        (
            "CREATE SCHEMA s CREATE TABLE t(i int) GRANT SELECT ON t TO u",
            None,
        ),
        (
            "CREATE SCHEMA s GRANT CONNECT ON DATABASE d TO u CREATE TABLE t(i int)",
            Some("GRANT ON DATABASE"),
        ),
        ("COMMENT ON SUBSCRIPTION s IS 'x'", Some("COMMENT ON SUBSCRIPTION")),
        ("ALTER TABLE t OWNER TO u", None),
        ("ALTER DEFAULT PRIVILEGES FOR ROLE u GRANT SELECT ON TABLES TO v", None),
        ("SET ROLE u", None),
        ("DO $$ BEGIN EXECUTE 'CREATE ROLE x'; END $$", None),
        (
            "SELECT pg_create_physical_replication_slot('s')",
            Some("pg_create_physical_replication_slot(…) (the server (other sessions, its configuration, replication))"),
        ),
        (
            "SELECT dblink_exec('dbname=x', 'UPDATE accounts SET balance = 0')",
            Some("dblink_exec(…) (another database)"),
        ),
        (
            "INSERT INTO t SELECT * FROM public.DBLINK('c', 'select 1') AS r(i int)",
            Some("dblink(…) (another database)"),
        ),
        (
            "UPDATE t SET f = pg_catalog.pg_read_file('/etc/passwd') WHERE i = 1",
            Some("pg_read_file(…) (the server's files)"),
        ),
        ("SELECT lo_export(1, '/tmp/x')", Some("lo_export(…) (the server's files)")),
        ("SELECT lo_import('/tmp/x')", Some("lo_import(…) (the server's files)")),
        ("SELECT pg_file_write('x', 'y', false)", Some("pg_file_write(…) (the server's files)")),
        (
            "WITH k AS (SELECT pg_terminate_backend(1)) SELECT 1",
            Some("pg_terminate_backend(…) (the server (other sessions, its configuration, replication))"),
        ),
        ("INSERT INTO t VALUES ('dblink_exec(1)')", None),
        ("SELECT pg_catalog.setval('s', 1)", None),
        ("SELECT lower('lo_export')", None),
        (
            "CREATE EXTENSION IF NOT EXISTS dblink",
            Some("CREATE EXTENSION dblink (another database)"),
        ),
        ("CREATE EXTENSION postgres_fdw", Some("CREATE EXTENSION postgres_fdw (another database)")),
        ("CREATE EXTENSION file_fdw", Some("CREATE EXTENSION file_fdw (the server's files)")),
        ("CREATE EXTENSION adminpack", Some("CREATE EXTENSION adminpack (the server's files)")),
        ("CREATE EXTENSION pgcrypto", None),
        (
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'x')",
            Some("CREATE SERVER (another database)"),
        ),
        ("ALTER SERVER s OPTIONS (SET host 'h')", Some("ALTER SERVER (another database)")),
        ("CREATE FOREIGN TABLE f (i int) SERVER s", Some("CREATE FOREIGN TABLE (another database)")),
        (
            "IMPORT FOREIGN SCHEMA p FROM SERVER s INTO l",
            Some("IMPORT FOREIGN SCHEMA (another database)"),
        ),
        (
            "CREATE FOREIGN DATA WRAPPER w",
            Some("a FOREIGN DATA WRAPPER (another database)"),
        ),
        ("DROP SERVER s CASCADE", None),
        (
            "DO $$ BEGIN PERFORM dblink_exec('x', 'y'); END $$",
            Some("a DO block naming dblink_exec (another database)"),
        ),
        (
            "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('x') $$",
            Some("a function body naming pg_read_file (the server's files)"),
        ),
        (
            "CREATE FUNCTION f() RETURNS oid LANGUAGE sql BEGIN ATOMIC SELECT lo_import('x'); END",
            Some("lo_import(…) (the server's files)"),
        ),
        // Built at run time: not seen (the rehearsal's comparison and the catalog's
        // answer are what is left).
        ("DO $$ BEGIN EXECUTE 'SELECT dbl' || 'ink_exec(1)'; END $$", None),
        ("INSERT INTO t VALUES ('CREATE ROLE x')", None),
    ];

    #[test]
    fn the_parser_names_what_reaches_beyond() {
        for (sql, want) in CASES {
            let got = reaches(&format!("SELECT 1;\n{sql};\n"));
            let want: Vec<String> = want.iter().map(|w| format!("{w} at f.sql:2")).collect();
            assert_eq!(got, want, "{sql}");
        }
    }

    #[test]
    fn dml_too_long_to_look_into_is_named() {
        let mut sql = String::from("SELECT 1;\nINSERT INTO t VALUES ('");
        sql.push_str(&"x".repeat(9 << 20));
        sql.push_str("');\n");
        assert_eq!(
            reaches(&sql),
            vec!["a DML statement over 8 MiB, too long to look for calls that reach beyond at f.sql:2".to_string()]
        );
    }

    #[test]
    fn unreadable_statements_fail_closed() {
        // A statement the parser cannot read is named, never passed.
        let got =
            reaches("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (1; END;");
        assert_eq!(
            got,
            vec!["a statement lint cannot read at f.sql:1".to_string()]
        );
    }
}
