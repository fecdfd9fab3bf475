//! Statements that reach beyond their database: what a tier or rollback file changes
//! in the cluster's shared catalogs (roles and memberships, databases and their
//! settings, role settings, tablespaces, subscriptions, grants on databases,
//! tablespaces and parameters, comments and security labels on those) rather than in
//! the database it runs in. A rehearsal on a clone cannot isolate them, so `plan`
//! names them and `rehearse` refuses them up front.
//!
//! Invariant: both builds reach the same verdict, statement by statement (the
//! differential test below); where the token classifier cannot tell, it says the
//! statement reaches beyond (fail-closed). Only what a file says is seen: SQL built at
//! run time (`DO` blocks, `EXECUTE`, function bodies) and function calls in DML
//! (`pg_create_logical_replication_slot`…) are the rehearsal's before/after
//! comparison of the cluster to catch.

use super::lexer::{Event, Keep, Lexer, Mode};
use super::tokens::{self, Tok, Token};
use super::Classifier;
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
/// beyond its database, judged by this build's classifier.
pub fn reaches_in(file: &str, r: &mut dyn Read) -> io::Result<Vec<Reach>> {
    reaches_with(file, r, Classifier::BUILD)
}

pub(super) fn reaches_with(
    file: &str,
    r: &mut dyn Read,
    classifier: Classifier,
) -> io::Result<Vec<Reach>> {
    let mut lexer = Lexer::new(Mode::Script, Keep::NonDml);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let drain = |lexer: &mut Lexer, out: &mut Vec<Reach>| {
        for event in lexer.events.drain(..) {
            let Event::Statement(s) = event else { continue };
            let Some(text) = s.text else { continue };
            // Lint refuses what is not UTF-8; nothing to classify.
            let Ok(sql) = std::str::from_utf8(&text) else {
                continue;
            };
            for (line, what) in statement_reaches(classifier, sql, s.line) {
                out.push(Reach {
                    file: file.into(),
                    line,
                    statement: what.into(),
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
        drain(&mut lexer, &mut out);
        if lexer.stopped {
            break;
        }
    }
    lexer.finish();
    drain(&mut lexer, &mut out);
    Ok(out)
}

/// One captured statement (perhaps several, see `classify.rs`), starting on `line`.
fn statement_reaches(classifier: Classifier, sql: &str, line: usize) -> Vec<(usize, &'static str)> {
    match classifier {
        #[cfg(feature = "pg-parser")]
        Classifier::Parser => by_parser(sql, line),
        Classifier::Tokens => by_tokens(sql, line),
    }
}

/// Objects kept in shared catalogs, as `COMMENT ON`, `SECURITY LABEL ON` and `GRANT …
/// ON` name them.
fn shared_object(word: &str) -> Option<&'static str> {
    Some(match word {
        "ROLE" => "ROLE",
        "DATABASE" => "DATABASE",
        "TABLESPACE" => "TABLESPACE",
        "SUBSCRIPTION" => "SUBSCRIPTION",
        "PARAMETER" => "PARAMETER",
        _ => return None,
    })
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

/// The token classifier's verdict. A statement that does not tokenize or split is
/// already a lint problem; it is named here too (fail-closed).
fn by_tokens(sql: &str, line: usize) -> Vec<(usize, &'static str)> {
    let Ok(toks) = tokens::tokenize(sql, line) else {
        return vec![(line, "a statement lint cannot read")];
    };
    let Ok(stmts) = tokens::split(&toks) else {
        return vec![(line, "a statement lint cannot read")];
    };
    stmts
        .iter()
        .filter_map(|s| token_reach(s).map(|what| (s[0].line(), what)))
        .collect()
}

/// ROLE, USER and GROUP are one thing (`USER MAPPING` is the database's own).
fn role_word(toks: &[Token], at: usize) -> Option<&'static str> {
    match toks.get(at).and_then(Token::word)? {
        "ROLE" | "GROUP" => Some("ROLE"),
        "USER" if !toks.get(at + 1).is_some_and(|t| t.is("MAPPING")) => Some("ROLE"),
        "DATABASE" => Some("DATABASE"),
        "TABLESPACE" => Some("TABLESPACE"),
        "SUBSCRIPTION" => Some("SUBSCRIPTION"),
        "SYSTEM" => Some("SYSTEM"),
        _ => None,
    }
}

fn token_reach(toks: &[Token]) -> Option<&'static str> {
    let first = toks.first()?.word()?;
    let second = toks.get(1).and_then(Token::word);
    match first {
        "CREATE" => {
            let at = 1 + toks[1..]
                .iter()
                .take_while(|t| {
                    t.word()
                        .is_some_and(|w| tokens::CREATE_MODIFIERS.contains(&w))
                })
                .count();
            if toks.get(at).is_some_and(|t| t.is("SCHEMA")) {
                return schema_grant(toks);
            }
            ddl("CREATE", role_word(toks, at)?)
        }
        "ALTER" => ddl("ALTER", role_word(toks, 1)?),
        "DROP" if second == Some("OWNED") => Some("DROP OWNED"),
        "DROP" => ddl("DROP", role_word(toks, 1)?),
        "REASSIGN" => Some("REASSIGN OWNED"),
        "GRANT" | "REVOKE" => grant_reach(toks, first == "GRANT"),
        "COMMENT" => {
            let object = shared_object(toks.get(2).and_then(Token::word)?)?;
            (object != "PARAMETER").then(|| comment_on(object))
        }
        "SECURITY" => {
            let on = toks.iter().position(|t| t.is("ON"))?;
            let object = shared_object(toks.get(on + 1).and_then(Token::word)?)?;
            (object != "PARAMETER").then(|| label_on(object))
        }
        _ => None,
    }
}

/// `GRANT|REVOKE …` from its first word: role membership without ON at the top level,
/// else the kind of object after ON.
fn grant_reach(toks: &[Token], grant: bool) -> Option<&'static str> {
    // `GRANT privileges ON object TO …`; without ON at the top level it grants
    // roles. What follows ON names the object kind, or is the table's name.
    let mut depth = 0i64;
    let on = toks.iter().position(|t| {
        if t.punct(b'(') {
            depth += 1;
        } else if t.punct(b')') {
            depth -= 1;
        }
        depth == 0 && t.is("ON")
    });
    match on {
        None => Some(membership(grant)),
        Some(i) => match &toks.get(i + 1)?.tok {
            Tok::Word(w) => shared_object(w)
                .filter(|o| *o != "ROLE" && *o != "SUBSCRIPTION")
                .map(|o| grant_on(grant, o)),
            Tok::Quoted(_) => None,
            _ => Some(grant_on(grant, "PARAMETER")),
        },
    }
}

/// `CREATE SCHEMA … GRANT …`: a schema element may grant on a database. Each GRANT
/// element runs to the next element's first word.
fn schema_grant(toks: &[Token]) -> Option<&'static str> {
    let starts: Vec<usize> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.is("GRANT") || t.is("CREATE"))
        .map(|(i, _)| i)
        .collect();
    starts.iter().enumerate().find_map(|(n, &i)| {
        if !toks[i].is("GRANT") {
            return None;
        }
        let end = starts.get(n + 1).copied().unwrap_or(toks.len());
        grant_reach(&toks[i..end], true).filter(|w| *w != membership(true))
    })
}

/// PostgreSQL's parser's verdict (the reference).
#[cfg(feature = "pg-parser")]
fn by_parser(sql: &str, line: usize) -> Vec<(usize, &'static str)> {
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![(line, "a statement lint cannot read")];
    };
    super::parser::statements_by_line(&parsed, sql, line)
        .into_iter()
        .filter_map(|(at_line, node)| node_reach(node).map(|what| (at_line, what)))
        .collect()
}

#[cfg(feature = "pg-parser")]
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

#[cfg(feature = "pg-parser")]
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

    fn reaches(sql: &str, c: Classifier) -> Vec<String> {
        reaches_with("f.sql", &mut sql.as_bytes(), c)
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
    fn the_token_classifier_names_what_reaches_beyond() {
        for (sql, want) in CASES {
            let got = reaches(&format!("SELECT 1;\n{sql};\n"), Classifier::Tokens);
            let want: Vec<String> = want.iter().map(|w| format!("{w} at f.sql:2")).collect();
            assert_eq!(got, want, "{sql}");
        }
    }

    #[cfg(feature = "pg-parser")]
    #[test]
    fn both_classifiers_reach_the_same_verdict() {
        for (sql, _) in CASES {
            let sql = format!("SELECT 1;\n{sql};\n");
            assert_eq!(
                reaches(&sql, Classifier::Tokens),
                reaches(&sql, Classifier::Parser),
                "{sql}"
            );
        }
    }

    #[test]
    fn unreadable_statements_fail_closed() {
        // A statement the token classifier cannot split is named, never passed.
        let got = reaches(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT (1; END;",
            Classifier::Tokens,
        );
        assert_eq!(
            got,
            vec!["a statement lint cannot read at f.sql:1".to_string()]
        );
    }
}
