//! The full check: PostgreSQL's own parser (libpg_query via `pg_query`), in the
//! `pg-parser` build.
//!
//! Invariant: what this module accepts is the reference the token classifier
//! (`tokens.rs`) is measured against: that one may refuse more, never accept more.

use super::SqlRole;
use pg_query::NodeEnum;
use serde_json::Value;

fn line_of(sql: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(sql.len());
    sql.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
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
fn script_problem(node: &NodeEnum) -> Option<&'static str> {
    use pg_query::protobuf::{DiscardMode, ReindexObjectType};
    Some(match node {
        NodeEnum::TransactionStmt(_) => {
            "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/PREPARE TRANSACTION) is airlock's job: the whole apply is one transaction"
        }
        NodeEnum::VacuumStmt(_) => "VACUUM/ANALYZE cannot run inside a transaction block",
        NodeEnum::IndexStmt(s) if s.concurrent => {
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction block"
        }
        NodeEnum::DropStmt(s) if s.concurrent => {
            "DROP INDEX CONCURRENTLY cannot run inside a transaction block"
        }
        NodeEnum::ReindexStmt(s)
            if s.params.iter().any(|p| {
                matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
            }) =>
        {
            "REINDEX CONCURRENTLY cannot run inside a transaction block"
        }
        NodeEnum::ReindexStmt(s)
            if s.kind == ReindexObjectType::ReindexObjectSystem as i32
                || s.kind == ReindexObjectType::ReindexObjectDatabase as i32 =>
        {
            "REINDEX SYSTEM/DATABASE cannot run inside a transaction block"
        }
        NodeEnum::ClusterStmt(s) if s.relation.is_none() => {
            "CLUSTER without a table cannot run inside a transaction block"
        }
        NodeEnum::DiscardStmt(s) if s.target == DiscardMode::DiscardAll as i32 => {
            "DISCARD ALL cannot run inside a transaction block"
        }
        NodeEnum::CreatedbStmt(_) | NodeEnum::DropdbStmt(_) => {
            "CREATE/DROP DATABASE cannot run inside a transaction block"
        }
        NodeEnum::AlterSystemStmt(_) => "ALTER SYSTEM cannot run inside a transaction block",
        NodeEnum::CreateTableSpaceStmt(_) | NodeEnum::DropTableSpaceStmt(_) => {
            "CREATE/DROP TABLESPACE cannot run inside a transaction block"
        }
        NodeEnum::CreateSubscriptionStmt(_) | NodeEnum::DropSubscriptionStmt(_) => {
            "CREATE/DROP SUBSCRIPTION cannot run inside a transaction block"
        }
        // The lexer accepts only COPY … FROM STDIN (with its data inline) and refuses
        // every other form with its reason before this is asked; this is the parser's
        // own check of the same rule.
        NodeEnum::CopyStmt(s) if !s.is_from || s.is_program || !s.filename.is_empty() => {
            "COPY is accepted only as COPY … FROM STDIN with the rows inline"
        }
        NodeEnum::CheckPointStmt(_) => "CHECKPOINT does not belong in a release",
        _ => return None,
    })
}

/// One gate or probe (psql meta-commands already refused): `(line, message)` problems.
pub(super) fn query_problems(sql: &str, role: SqlRole) -> Vec<(usize, String)> {
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => return vec![(1, format!("does not parse as PostgreSQL: {e}"))],
    };
    let stmts = &parsed.protobuf.stmts;
    if stmts.is_empty() {
        return vec![(1, "contains no statement".into())];
    }
    let what = if role == SqlRole::Gate {
        "gate"
    } else {
        "probe"
    };
    if stmts.len() != 1 {
        let second = stmts[1].stmt_location.max(0) as usize;
        return vec![(
            line_of(sql, second),
            format!(
                "a {what} must be exactly one statement, found {}",
                stmts.len()
            ),
        )];
    }
    let raw = &stmts[0];
    let line = line_of(sql, raw.stmt_location.max(0) as usize);
    let Some(node) = raw.stmt.as_ref() else {
        return vec![(1, "contains no statement".into())];
    };
    let tree = serde_json::to_value(node.as_ref()).unwrap_or(Value::Null);
    let kind = stmt_kind(&tree).to_string();
    let mut problems = Vec::new();
    if kind != "SelectStmt" {
        problems.push((
            line,
            format!("must be a read-only SELECT, VALUES or WITH query, found {kind}"),
        ));
    }
    for p in read_only_problems(&tree) {
        problems.push((line, format!("is not read-only: {p}")));
    }
    problems
}

/// One captured statement of a tier or rollback file that does not begin with DML,
/// starting on `line` (it may hold more statements when an unbalanced BEGIN … END kept
/// the lexer from splitting): `(line, message)` problems.
pub(super) fn script_problems(sql: &str, line: usize) -> Vec<(usize, String)> {
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => return vec![(line, format!("does not parse as PostgreSQL: {e}"))],
    };
    let mut problems = Vec::new();
    let mut counted = 0usize;
    let mut at_line = line;
    for raw in &parsed.protobuf.stmts {
        let loc = raw.stmt_location.max(0) as usize;
        // Statements after the first in one capture: lines counted from where the
        // capture began.
        at_line += sql.as_bytes()[counted.min(sql.len())..loc.min(sql.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted = loc;
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        if let Some(p) = script_problem(node) {
            problems.push((at_line, p.to_string()));
        }
    }
    problems
}

/// Where PostgreSQL's own splitter ends each statement (the differential test of the
/// lexer's boundaries).
#[cfg(test)]
pub(super) fn statement_ends(sql: &str) -> Option<Vec<usize>> {
    let stmts = pg_query::split_with_parser(sql).ok()?;
    let base = sql.as_ptr() as usize;
    Some(
        stmts
            .iter()
            .map(|s| s.as_ptr() as usize - base + s.len())
            .collect(),
    )
}
