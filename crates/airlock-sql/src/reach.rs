//! Statements that reach beyond their database: what a tier or rollback file changes
//! in the cluster's shared catalogs (roles and memberships, databases and their
//! settings, role settings, tablespaces, subscriptions, grants on databases,
//! tablespaces and parameters, comments and security labels on those) rather than in
//! the database it runs in. A rehearsal on a clone cannot isolate them, so `plan`
//! names them and `rehearse` refuses them up front.
//!
//! Invariant: PostgreSQL's parser reads every statement; one it cannot read is said to
//! reach beyond (fail-closed). Only what a file says is seen: SQL built at
//! run time (`DO` blocks, `EXECUTE`, function bodies) and function calls in DML
//! (`pg_create_logical_replication_slot`…) are the rehearsal's before/after
//! comparison of the cluster to catch.

use super::lexer::{Event, Keep, Lexer, Mode};
use schemars::JsonSchema;
use serde::Serialize;
use std::io::{self, Read};

/// One statement that changes something outside its database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Reach {
    /// The bundle path of the file.
    pub file: String,
    pub line: usize,
    /// What it is, e.g. `CREATE ROLE`, `ALTER DATABASE`, `GRANT role (membership)`.
    pub statement: String,
}

impl std::fmt::Display for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}:{}", self.statement, self.file, self.line)
    }
}

/// Every statement of one tier or rollback file (streamed, bounded memory) that reaches
/// beyond its database, as PostgreSQL's parser reads it.
pub fn reaches_in(file: &str, r: &mut dyn Read) -> io::Result<Vec<Reach>> {
    let mut out = Vec::new();
    each_held_statement(r, |sql, line| {
        for (line, what) in by_parser(sql, line) {
            out.push(Reach {
                file: file.into(),
                line,
                statement: what.into(),
            });
        }
    })?;
    Ok(out)
}

/// Streams a tier or rollback file through the lexer (bounded memory) and hands every
/// statement that is not plain DML to `f` with its first line. What is not UTF-8 is
/// skipped: lint refuses it, and there is nothing to read in it.
pub(super) fn each_held_statement(
    r: &mut dyn Read,
    mut f: impl FnMut(&str, usize),
) -> io::Result<()> {
    let mut lexer = Lexer::new(Mode::Script, Keep::NonDml);
    let mut buf = vec![0u8; 256 * 1024];
    let mut drain = |lexer: &mut Lexer| {
        for event in lexer.events.drain(..) {
            let Event::Statement(s) = event else { continue };
            let Some(text) = s.text else { continue };
            if let Ok(sql) = std::str::from_utf8(&text) {
                f(sql, s.line);
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
    Ok(())
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
fn by_parser(sql: &str, line: usize) -> Vec<(usize, &'static str)> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![(line, "a statement lint cannot read")];
    };
    super::parser::statements_by_line(&parsed, sql, line)
        .into_iter()
        .filter_map(|(at_line, node)| node_reach(node).map(|what| (at_line, what)))
        .collect()
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
        ("CREATE USER MAPPING FOR u SERVER s", None),
        ("ALTER USER MAPPING FOR u SERVER s OPTIONS (SET password 'p')", None),
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
        ("SELECT pg_create_physical_replication_slot('s')", None),
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
