//! What a gate and a probe must return; a gate's `ready` column judged from the parse
//! tree where it can be (a probe's shape is judged on the target).
//!
//! Invariant: only what the tree proves is refused. A column is named only when its
//! name is certain without the catalogs (an explicit `AS`, a column reference, an
//! expression PostgreSQL names `?column?`, `exists` or after its type); anything else
//! (a `*`, a function call, a scalar subquery, a cast of a column) may be `ready`, and
//! the server's description of the query decides at run time.

use pg_query::protobuf::{a_const, Node, SelectStmt, SetOperation, SubLinkType};
use pg_query::NodeEnum;

/// The shape a gate must have, said wherever a gate is refused for its shape.
pub const GATE_SHAPE: &str = "a gate is one query returning exactly one row with a boolean column `ready` and, optionally, a column `reason` (text), e.g. SELECT count(*) >= 1 AS ready, count(*) || ' approvals' AS reason FROM ops.approvals";

/// The shape a probe must have.
pub const PROBE_SHAPE: &str = "a probe is one query returning (key, value) rows, both text, one row per key, e.g. SELECT 'orders' AS key, count(*)::text AS value FROM app.orders";

/// Why a gate's query cannot have the gate's shape, when its tree proves it.
pub(crate) fn gate_problem(stmt: &SelectStmt) -> Option<String> {
    let names = column_names(stmt)?;
    if names.iter().any(|n| n == "ready") {
        return None;
    }
    Some(format!(
        "returns no column named \"ready\" (its columns: {}); {GATE_SHAPE}",
        names.join(", ")
    ))
}

/// The query's output columns: the left-most arm of a set operation names them.
fn output(stmt: &SelectStmt) -> Option<&SelectStmt> {
    if stmt.op() != SetOperation::SetopNone && stmt.op() != SetOperation::Undefined {
        return stmt.larg.as_deref().and_then(output);
    }
    (stmt.values_lists.is_empty()).then_some(stmt)
}

/// Every output column's name, when each is certain.
fn column_names(stmt: &SelectStmt) -> Option<Vec<String>> {
    output(stmt)?.target_list.iter().map(target_name).collect()
}

fn target_value(t: &Node) -> Option<&NodeEnum> {
    match &t.node {
        Some(NodeEnum::ResTarget(r)) => r.val.as_ref().and_then(|v| v.node.as_ref()),
        _ => None,
    }
}

/// A target's name as PostgreSQL would give it, when certain without the catalogs.
fn target_name(t: &Node) -> Option<String> {
    let Some(NodeEnum::ResTarget(r)) = &t.node else {
        return None;
    };
    if !r.name.is_empty() {
        return Some(r.name.clone());
    }
    match target_value(t)? {
        NodeEnum::ColumnRef(c) => match c.fields.last()?.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.clone()),
            _ => None,
        },
        NodeEnum::AConst(c) => Some(
            match c.val {
                Some(a_const::Val::Boolval(_)) => "bool",
                Some(a_const::Val::Ival(_)) => "int4",
                Some(a_const::Val::Sval(_)) => "text",
                Some(a_const::Val::Fval(_)) => "numeric",
                _ => "?column?",
            }
            .to_string(),
        ),
        NodeEnum::AExpr(_)
        | NodeEnum::BoolExpr(_)
        | NodeEnum::NullTest(_)
        | NodeEnum::BooleanTest(_) => Some("?column?".into()),
        NodeEnum::SubLink(s) if s.sub_link_type() == SubLinkType::ExistsSublink => {
            Some("exists".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::{check, SqlRole};

    fn refused(sql: &str, role: SqlRole) -> Option<String> {
        check("g.sql", sql, role)
            .into_iter()
            .next()
            .map(|p| p.message)
    }

    #[test]
    fn a_gate_without_ready_is_refused_with_the_shape_and_only_when_certain() {
        for sql in [
            "SELECT true",
            "SELECT true AS go",
            "SELECT count(*) >= 1 FROM t",
            "SELECT EXISTS (SELECT 1 FROM t), 'x' AS reason",
            "SELECT flag FROM t",
            "SELECT true AS go UNION ALL SELECT false AS ready",
        ] {
            let m = refused(sql, SqlRole::Gate).unwrap_or_else(|| panic!("{sql} accepted"));
            assert!(m.contains("no column named \"ready\""), "{sql}: {m}");
            assert!(m.contains("a boolean column `ready`"), "{sql}: {m}");
        }
        for sql in [
            "SELECT true AS ready",
            "SELECT ready FROM t",
            "SELECT t.ready FROM t",
            "SELECT * FROM t",
            "SELECT f()",
            "SELECT (SELECT ready FROM t)",
            "SELECT x::bool FROM t",
            "WITH r AS (SELECT true AS ready) SELECT ready FROM r",
            "VALUES (true)",
        ] {
            assert_eq!(refused(sql, SqlRole::Gate), None, "{sql}");
        }
    }
}
