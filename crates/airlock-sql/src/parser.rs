//! The one judge of SQL: PostgreSQL's own parser (libpg_query via `pg_query`), in
//! every build.
//!
//! Invariant: a gate or probe passes only as one plain read-only query; a tier statement
//! passes only if the tree says it can run inside the apply transaction and does not end
//! it. What does not parse is refused with the parser's own message.

use super::SqlRole;
use crate::lex::tokens::tokenize;
use pg_query::NodeEnum;
use serde_json::Value;

pub(super) const TRANSACTION_CONTROL: &str = "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT/PREPARE TRANSACTION) is airlock's job: the whole apply is one transaction";

pub(super) const SET_TRANSACTION: &str = "SET TRANSACTION (isolation level, read only, deferrable) is airlock's job: the apply transaction has already run queries, after which the server refuses an isolation level, and a read-only switch would fail the rest of the apply";

/// Settings that are SET TRANSACTION by another name.
pub(super) const TRANSACTION_SETTINGS: [&str; 3] = [
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
];

pub(super) const DO_TRANSACTION: &str = "this DO block commits or rolls back: inside airlock's transaction the server fails it (invalid transaction termination). Run batched migrations as separate releases, or drop the COMMIT/ROLLBACK";

pub(super) const CREATE_SUBSCRIPTION: &str = "CREATE SUBSCRIPTION that creates a replication slot cannot run inside a transaction block; add WITH (connect = false) (or create_slot = false) and create the slot separately";

/// What a transactional tier's refusal of an online-only statement adds.
pub const DECLARE_ONLINE: &str =
    "; declare its tier `online = true` in bundle.toml to run it as an online step (outside a transaction, recorded as it completes)";

/// What replaces [`DECLARE_ONLINE`] for a rollback file (rollback files have no tier).
pub const ROLLBACK_ONLINE: &str =
    "; a rollback file has no tier: set `online = true` in [rollback] to run the rollback files one statement at a time outside a transaction (every rollback file then runs that way, each statement idempotent: `DROP INDEX CONCURRENTLY IF EXISTS`), or drop the CONCURRENTLY (it then runs inside the rollback's transaction, blocking reads and writes of the table while it runs)";

pub(super) const ALTER_SUBSCRIPTION_REFRESH: &str = "ALTER SUBSCRIPTION … REFRESH PUBLICATION (and SET/ADD/DROP PUBLICATION, which refresh unless WITH (refresh = false)) cannot run inside a transaction block";

/// A procedural body (of a `DO` block) that commits or rolls back: the words COMMIT
/// or ROLLBACK outside its strings and comments. A body that does not tokenize is
/// judged by its raw text.
pub(super) fn body_ends_transaction(body: &str) -> bool {
    match tokenize(body, 1) {
        Ok(toks) => toks.iter().any(|t| t.is("COMMIT") || t.is("ROLLBACK")),
        Err(_) => {
            let lower = body.to_ascii_lowercase();
            lower.contains("commit") || lower.contains("rollback")
        }
    }
}

fn line_of(sql: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(sql.len());
    sql.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Object keys anywhere in the tree (node type names and field names).
pub(super) fn walk<'a>(v: &'a Value, f: &mut dyn FnMut(&'a str, &'a Value)) {
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

/// A boolean option's value as the server reads it (`WITH (connect)` is true).
fn def_bool(node: &pg_query::protobuf::Node) -> Option<(String, bool)> {
    let Some(NodeEnum::DefElem(d)) = &node.node else {
        return None;
    };
    let value = match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
        None => true,
        Some(NodeEnum::Boolean(b)) => b.boolval,
        Some(NodeEnum::Integer(i)) => i.ival != 0,
        Some(NodeEnum::String(s)) => !matches!(
            s.sval.to_ascii_lowercase().as_str(),
            "false" | "off" | "0" | "no" | "f" | "n"
        ),
        Some(_) => true,
    };
    Some((d.defname.to_ascii_lowercase(), value))
}

fn option(options: &[pg_query::protobuf::Node], name: &str) -> Option<bool> {
    options
        .iter()
        .filter_map(def_bool)
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Statements that cannot run inside a transaction block, or that end it.
pub(super) fn script_problem(node: &NodeEnum) -> Option<String> {
    use pg_query::protobuf::{
        AlterSubscriptionType as Sub, AlterTableType, DiscardMode, ReindexObjectType,
        VariableSetKind,
    };
    let message: &str = match node {
        NodeEnum::TransactionStmt(_) => TRANSACTION_CONTROL,
        NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => {
            return Some(format!("VACUUM cannot run inside a transaction block (ANALYZE can){}", DECLARE_ONLINE))
        }
        NodeEnum::IndexStmt(s) if s.concurrent => {
            return Some(format!("CREATE INDEX CONCURRENTLY cannot run inside a transaction block{}", DECLARE_ONLINE))
        }
        NodeEnum::DropStmt(s) if s.concurrent => {
            return Some(format!("DROP INDEX CONCURRENTLY cannot run inside a transaction block{}", DECLARE_ONLINE))
        }
        NodeEnum::ReindexStmt(s)
            if s.params.iter().any(|p| {
                matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("concurrently"))
            }) =>
        {
            return Some(format!("REINDEX CONCURRENTLY cannot run inside a transaction block{}", DECLARE_ONLINE))
        }
        NodeEnum::ReindexStmt(s)
            if s.kind == ReindexObjectType::ReindexObjectSystem as i32
                || s.kind == ReindexObjectType::ReindexObjectDatabase as i32
                || s.kind == ReindexObjectType::ReindexObjectSchema as i32 =>
        {
            "REINDEX SCHEMA/DATABASE/SYSTEM cannot run inside a transaction block"
        }
        NodeEnum::AlterTableStmt(s)
            if s.cmds.iter().any(|c| {
                matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
                    if cmd.subtype == AlterTableType::AtDetachPartition as i32
                        && matches!(cmd.def.as_ref().and_then(|d| d.node.as_ref()),
                            Some(NodeEnum::PartitionCmd(p)) if p.concurrent))
            }) =>
        {
            return Some(format!("ALTER TABLE … DETACH PARTITION … CONCURRENTLY cannot run inside a transaction block{}", DECLARE_ONLINE))
        }
        NodeEnum::AlterDatabaseStmt(s)
            if s.options.iter().any(|o| {
                matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("tablespace"))
            }) =>
        {
            "ALTER DATABASE … SET TABLESPACE cannot run inside a transaction block"
        }
        NodeEnum::VariableSetStmt(s)
            if (s.kind == VariableSetKind::VarSetMulti as i32
                && s.name.eq_ignore_ascii_case("transaction"))
                || TRANSACTION_SETTINGS.contains(&s.name.to_ascii_lowercase().as_str()) =>
        {
            SET_TRANSACTION
        }
        NodeEnum::DoStmt(s) if do_body_ends_transaction(s) => DO_TRANSACTION,
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
        // The server refuses only when it creates a replication slot: by default,
        // unless `connect = false` (which makes create_slot default to false).
        NodeEnum::CreateSubscriptionStmt(s)
            if option(&s.options, "create_slot")
                .unwrap_or(option(&s.options, "connect") != Some(false)) =>
        {
            CREATE_SUBSCRIPTION
        }
        NodeEnum::DropSubscriptionStmt(_) => {
            "DROP SUBSCRIPTION cannot run inside a transaction block when the subscription has a replication slot, which lint cannot see"
        }
        NodeEnum::AlterSubscriptionStmt(s)
            if s.kind == Sub::AlterSubscriptionRefresh as i32
                || ((s.kind == Sub::AlterSubscriptionSetPublication as i32
                    || s.kind == Sub::AlterSubscriptionAddPublication as i32
                    || s.kind == Sub::AlterSubscriptionDropPublication as i32)
                    && option(&s.options, "refresh") != Some(false)) =>
        {
            ALTER_SUBSCRIPTION_REFRESH
        }
        // The lexer accepts only COPY … FROM STDIN (with its data inline) and refuses
        // every other form with its reason before this is asked; this is the parser's
        // own check of the same rule.
        NodeEnum::CopyStmt(s) if !s.is_from || s.is_program || !s.filename.is_empty() => {
            "COPY is accepted only as COPY … FROM STDIN with the rows inline"
        }
        NodeEnum::CheckPointStmt(_) => "CHECKPOINT does not belong in a release",
        _ => return None,
    };
    Some(message.to_string())
}

/// A `DO` block whose body commits or rolls back (PL/pgSQL transaction control):
/// inside airlock's transaction it fails with "invalid transaction termination".
fn do_body_ends_transaction(s: &pg_query::protobuf::DoStmt) -> bool {
    s.args.iter().any(|a| {
        matches!(&a.node, Some(NodeEnum::DefElem(d)) if d.defname == "as"
            && matches!(d.arg.as_ref().and_then(|x| x.node.as_ref()),
                Some(NodeEnum::String(body)) if body_ends_transaction(&body.sval)))
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
    // A gate's shape; a probe's is judged on the target (its queries are also checked
    // one by one, as parts of a probe, by importers).
    if let (SqlRole::Gate, Some(NodeEnum::SelectStmt(s))) = (role, &node.node) {
        problems.extend(super::shape::gate_problem(s).map(|p| (line, p)));
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
    statements_by_line(&parsed, sql, line)
        .into_iter()
        .filter_map(|(at_line, node)| script_problem(node).map(|p| (at_line, p)))
        .collect()
}

/// Each statement of a capture that began on `line` (an unbalanced BEGIN … END may
/// keep several in one), with the line it starts on.
pub(super) fn statements_by_line<'p>(
    parsed: &'p pg_query::ParseResult,
    sql: &str,
    line: usize,
) -> Vec<(usize, &'p NodeEnum)> {
    let mut out = Vec::new();
    let mut counted = 0usize;
    let mut at_line = line;
    for raw in &parsed.protobuf.stmts {
        let loc = raw.stmt_location.max(0) as usize;
        at_line += sql.as_bytes()[counted.min(sql.len())..loc.min(sql.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        counted = loc;
        if let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            out.push((at_line, node));
        }
    }
    out
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
