//! SQL classification with the real PostgreSQL parser (libpg_query via `pg_query`).
//!
//! Invariant: a gate or probe file passes only if it is exactly one plain read-only
//! query (SELECT / VALUES / WITH without data-modifying parts, no SELECT INTO, no row
//! locks, no `set_config`); a tier file passes only if every statement can run inside
//! the apply transaction and none ends it. Both are checked at pack time and again
//! before anything runs.

use serde_json::Value;

/// What a file is used for decides which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlRole {
    /// One read-only statement answering `ready [, reason]`.
    Gate,
    /// One read-only statement answering `(key, value)` rows.
    Probe,
    /// Any number of statements, all transaction-safe (tiers and rollback files).
    Script,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SqlProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

fn line_of(sql: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(sql.len());
    sql.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// psql meta-commands (`\set`, `\i`, `\connect`…) are client-side and never reach the
/// server; a bundle that relies on them would run differently under airlock.
fn meta_commands(file: &str, sql: &str) -> Vec<SqlProblem> {
    sql.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with('\\'))
        .map(|(i, l)| SqlProblem {
            file: file.into(),
            line: i + 1,
            message: format!(
                "psql meta-command `{}` is not SQL; airlock sends files to the server as they are. Remove it (use [params] for variables)",
                l.split_whitespace().next().unwrap_or("\\")
            ),
        })
        .collect()
}

/// Object keys anywhere in the tree (node type names and field names).
fn walk<'a>(v: &'a Value, f: &mut dyn FnMut(&'a str, &'a Value)) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                f(k, val);
                walk(val, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, f)),
        _ => {}
    }
}

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Problems that make a query not read-only, wherever they sit in the tree.
fn read_only_problems(tree: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(tree, &mut |k, v| match k {
        "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
            out.push(format!("contains a data-modifying {k}"))
        }
        "into_clause" if is_set(v) => out.push("SELECT INTO creates a table".into()),
        "locking_clause" if is_set(v) => {
            out.push("row locks (FOR UPDATE/SHARE) are not read-only".into())
        }
        "FuncCall" => {
            let names: Vec<&str> = v
                .get("funcname")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.pointer("/node/String/sval").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(last) = names.last() {
                let lower = last.to_ascii_lowercase();
                if matches!(
                    lower.as_str(),
                    "set_config"
                        | "nextval"
                        | "setval"
                        | "pg_advisory_lock"
                        | "dblink_exec"
                        | "lo_import"
                        | "lo_export"
                ) {
                    out.push(format!("calls {lower}(), which changes state"));
                }
            }
        }
        _ => {}
    });
    out
}

fn stmt_kind(node: &Value) -> &str {
    node.get("node")
        .and_then(Value::as_object)
        .and_then(|m| m.keys().next())
        .map(String::as_str)
        .unwrap_or("unknown")
}

/// Statements that cannot run inside a transaction block, or that end it.
fn script_problem(kind: &str, body: &Value) -> Option<String> {
    let b = |k: &str| body.get(k).map(is_set).unwrap_or(false);
    match kind {
        "TransactionStmt" => Some(
            "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) is airlock's job: the whole apply is one transaction"
                .into(),
        ),
        "VacuumStmt" => Some("VACUUM/ANALYZE cannot run inside a transaction block".into()),
        "IndexStmt" if b("concurrent") => {
            Some("CREATE INDEX CONCURRENTLY cannot run inside a transaction block".into())
        }
        "ReindexStmt" if serde_json::to_string(body).unwrap_or_default().contains("concurrently") => {
            Some("REINDEX CONCURRENTLY cannot run inside a transaction block".into())
        }
        "CreatedbStmt" | "DropdbStmt" => Some("CREATE/DROP DATABASE cannot run inside a transaction block".into()),
        "AlterSystemStmt" => Some("ALTER SYSTEM cannot run inside a transaction block".into()),
        "CreateTableSpaceStmt" | "DropTableSpaceStmt" => {
            Some("CREATE/DROP TABLESPACE cannot run inside a transaction block".into())
        }
        "CreateSubscriptionStmt" | "DropSubscriptionStmt" => {
            Some("CREATE/DROP SUBSCRIPTION cannot run inside a transaction block".into())
        }
        "CopyStmt" if !b("filename") => Some("COPY FROM STDIN / TO STDOUT needs psql; load data with INSERT".into()),
        "CheckPointStmt" => Some("CHECKPOINT does not belong in a release".into()),
        _ => None,
    }
}

/// Check one SQL file for its role. Returns every problem found (empty = clean).
pub fn check(file: &str, sql: &str, role: SqlRole) -> Vec<SqlProblem> {
    let mut problems = meta_commands(file, sql);
    if !problems.is_empty() {
        return problems;
    }
    let problem = |line: usize, message: String| SqlProblem {
        file: file.into(),
        line,
        message,
    };
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => return vec![problem(1, format!("does not parse as PostgreSQL: {e}"))],
    };
    let stmts = &parsed.protobuf.stmts;
    if stmts.is_empty() && role != SqlRole::Script {
        return vec![problem(1, "contains no statement".into())];
    }
    if role != SqlRole::Script && stmts.len() != 1 {
        let second = stmts.get(1).map(|s| s.stmt_location as usize).unwrap_or(0);
        return vec![problem(
            line_of(sql, second),
            format!(
                "a {} must be exactly one statement, found {}",
                if role == SqlRole::Gate {
                    "gate"
                } else {
                    "probe"
                },
                stmts.len()
            ),
        )];
    }
    for raw in stmts {
        let line = line_of(sql, raw.stmt_location.max(0) as usize);
        let Some(node) = raw.stmt.as_ref() else {
            continue;
        };
        let tree = serde_json::to_value(node.as_ref()).unwrap_or(Value::Null);
        let kind = stmt_kind(&tree).to_string();
        let body = tree
            .get("node")
            .and_then(|n| n.get(&kind))
            .cloned()
            .unwrap_or(Value::Null);
        match role {
            SqlRole::Gate | SqlRole::Probe => {
                if kind != "SelectStmt" {
                    problems.push(problem(
                        line,
                        format!("must be a read-only SELECT, VALUES or WITH query, found {kind}"),
                    ));
                }
                for p in read_only_problems(&tree) {
                    problems.push(problem(line, format!("is not read-only: {p}")));
                }
            }
            SqlRole::Script => {
                if let Some(p) = script_problem(&kind, &body) {
                    problems.push(problem(line, p));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str, role: SqlRole) -> bool {
        check("f.sql", sql, role).is_empty()
    }

    #[test]
    fn gates_must_be_one_read_only_query() {
        assert!(ok("SELECT true AS ready, 'x' AS reason;", SqlRole::Gate));
        assert!(ok(
            "WITH a AS (SELECT 1) SELECT count(*) >= 1 AS ready FROM a",
            SqlRole::Gate
        ));
        assert!(ok("VALUES (true)", SqlRole::Gate));
        assert!(!ok("SELECT 1; SELECT 2", SqlRole::Gate));
        assert!(!ok(
            "WITH d AS (DELETE FROM t RETURNING 1) SELECT true",
            SqlRole::Gate
        ));
        assert!(!ok("SELECT * INTO newt FROM t", SqlRole::Gate));
        assert!(!ok("SET transaction_read_only = off", SqlRole::Gate));
        assert!(!ok("RESET transaction_read_only", SqlRole::Gate));
        assert!(!ok(
            "SELECT set_config('transaction_read_only','off',true)",
            SqlRole::Gate
        ));
        assert!(!ok("SELECT nextval('s') > 0 AS ready", SqlRole::Gate));
        assert!(!ok("SELECT 1 FROM t FOR UPDATE", SqlRole::Gate));
        assert!(!ok("COMMIT", SqlRole::Gate));
        assert!(!ok("", SqlRole::Probe));
    }

    #[test]
    fn scripts_refuse_non_transactional_statements_with_line() {
        let sql = "CREATE TABLE a(i int);\n\nCREATE INDEX CONCURRENTLY i ON a(i);\n";
        let p = check("t.sql", sql, SqlRole::Script);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 3);
        for bad in [
            "VACUUM",
            "COMMIT",
            "ROLLBACK",
            "BEGIN",
            "ALTER SYSTEM SET work_mem='1MB'",
            "CREATE DATABASE x",
        ] {
            assert!(!ok(bad, SqlRole::Script), "{bad} should be refused");
        }
        assert!(ok(
            "CREATE TABLE a(i int); INSERT INTO a VALUES (1);",
            SqlRole::Script
        ));
    }

    #[test]
    fn meta_commands_are_named_with_their_line() {
        let p = check("t.sql", "SELECT 1;\n\\set x 1\n", SqlRole::Script);
        assert_eq!(p[0].line, 2);
        assert!(p[0].message.contains("\\set"));
    }
}
