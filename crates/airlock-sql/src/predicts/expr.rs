//! Expressions in the tree: whether one is plain enough to ask the rows about (and
//! PostgreSQL's own deparse of it), the functions a statement calls, the columns a
//! WHERE pins, and a type as SQL.

use super::{nobody, node, strings, One, Relation, Step, TypeRef};
use pg_query::protobuf::{AExprKind, BoolExprType};
use pg_query::{Node, NodeEnum as N};

/// The node types a plain expression over the table's own columns is made of:
/// columns, constants, operators, casts, NULL tests, CASE, COALESCE, GREATEST/LEAST,
/// ARRAY[…], and a few functions that read only their arguments. Anything else (a
/// subquery, any other function, a qualified column) is not predictable here.
const PLAIN_NODES: [&str; 21] = [
    "ColumnRef",
    "String",
    "AConst",
    "Ival",
    "Fval",
    "Sval",
    "Boolval",
    "Bsval",
    "AExpr",
    "BoolExpr",
    "NullTest",
    "BooleanTest",
    "TypeCast",
    "TypeName",
    "CoalesceExpr",
    "CaseExpr",
    "CaseWhen",
    "List",
    "FuncCall",
    "MinMaxExpr",
    "AArrayExpr",
];

/// Built-in functions that read only their arguments (the server is asked, before
/// one is used, that no function of the name outside pg_catalog could be called
/// instead).
const PLAIN_FUNCTIONS: [&str; 32] = [
    "length",
    "char_length",
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "abs",
    "octet_length",
    "array_length",
    "cardinality",
    "to_date",
    "to_timestamp",
    "to_number",
    "replace",
    "substr",
    "substring",
    "split_part",
    "left",
    "right",
    "round",
    "trunc",
    "floor",
    "ceil",
    "concat",
    "lpad",
    "rpad",
    "regexp_replace",
    "md5",
    "nullif",
    "initcap",
    "reverse",
];

/// A plain expression: PostgreSQL's deparse of it, the types it casts to, and the
/// functions it calls.
pub(super) struct Plain {
    pub text: String,
    pub casts: Vec<String>,
    pub functions: Vec<String>,
}

/// The expression printed by PostgreSQL's own deparser, when it is plain.
pub(super) fn plain(expr: &Node) -> Option<Plain> {
    let tree = serde_json::to_value(expr).ok()?;
    let mut ok = true;
    let mut functions = Vec::new();
    crate::parser::walk(&tree, &mut |key, value| {
        if !key.starts_with(|c: char| c.is_ascii_uppercase()) {
            return;
        }
        ok &= PLAIN_NODES.contains(&key);
        if key == "ColumnRef" {
            ok &= value["fields"].as_array().is_some_and(|f| f.len() == 1)
                && value["fields"][0]["node"].get("String").is_some();
        }
        if key == "FuncCall" {
            let names = value["funcname"].as_array();
            let name = names
                .filter(|n| n.len() == 1)
                .and_then(|n| n[0]["node"]["String"]["sval"].as_str());
            ok &= name.is_some_and(|f| PLAIN_FUNCTIONS.contains(&f))
                && value.get("agg_star").and_then(|v| v.as_bool()) != Some(true)
                && value.get("over").is_none_or(|v| v.is_null());
            functions.extend(name.map(str::to_string));
        }
    });
    if !ok {
        return None;
    }
    let mut casts = Vec::new();
    collect_casts(expr, &mut casts)?;
    functions.sort();
    functions.dedup();
    Some(Plain {
        text: deparse_expr(expr)?,
        casts,
        functions,
    })
}

/// The types `expr` casts to, from the outside in, each as a name the server can look
/// up (`pg_catalog.int4`, `public.mood[]`; modifiers left out).
fn collect_casts(expr: &Node, out: &mut Vec<String>) -> Option<()> {
    let tree = serde_json::to_value(expr).ok()?;
    let mut bad = false;
    crate::parser::walk(&tree, &mut |key, value| {
        if key != "TypeCast" {
            return;
        }
        let tn = &value["type_name"];
        let names: Vec<String> = tn["names"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["node"]["String"]["sval"].as_str())
            .map(super::shown)
            .collect();
        bad |= names.is_empty();
        let array = tn["array_bounds"].as_array().is_some_and(|a| !a.is_empty());
        out.push(format!(
            "{}{}",
            names.join("."),
            if array { "[]" } else { "" }
        ));
    });
    (!bad).then_some(())
}

/// An expression as `SELECT <expr>` deparses it.
fn deparse_expr(expr: &Node) -> Option<String> {
    let mut shell = pg_query::parse("SELECT 1", pg_query::ParserOptions::DEFAULT).ok()?;
    let stmt = shell.protobuf.stmts.first_mut()?.stmt.as_mut()?;
    let Some(N::SelectStmt(sel)) = stmt.node.as_mut() else {
        return None;
    };
    let Some(N::ResTarget(rt)) = sel.target_list.first_mut()?.node.as_mut() else {
        return None;
    };
    rt.val = Some(Box::new(expr.clone()));
    let text = pg_query::deparse(&shell.protobuf, Default::default()).ok()?;
    text.strip_prefix("SELECT ").map(str::to_string)
}

/// A type name as the tree holds it, with its SQL spelling.
pub(crate) fn type_ref(tn: &pg_query::protobuf::TypeName) -> Option<TypeRef> {
    if tn.setof || tn.pct_type {
        return None;
    }
    let typmods = tn
        .typmods
        .iter()
        .filter_map(node)
        .map(|m| match m {
            N::AConst(c) => match c.val.as_ref() {
                Some(pg_query::protobuf::a_const::Val::Ival(i)) => Some(i.ival as i64),
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<Vec<i64>>>()?;
    let mut shell = pg_query::parse("SELECT NULL::int", pg_query::ParserOptions::DEFAULT).ok()?;
    let stmt = shell.protobuf.stmts.first_mut()?.stmt.as_mut()?;
    let Some(N::SelectStmt(sel)) = stmt.node.as_mut() else {
        return None;
    };
    let Some(N::ResTarget(rt)) = sel.target_list.first_mut()?.node.as_mut() else {
        return None;
    };
    let Some(N::TypeCast(tc)) = rt.val.as_mut()?.node.as_mut() else {
        return None;
    };
    tc.type_name = Some(tn.clone());
    let text = pg_query::deparse(&shell.protobuf, Default::default()).ok()?;
    Some(TypeRef {
        names: strings(&tn.names),
        typmods,
        array: !tn.array_bounds.is_empty(),
        text: text.strip_prefix("SELECT NULL::")?.to_string(),
    })
}

/// The functions a statement that runs expressions now calls (a query, DML, ALTER
/// TABLE's defaults and USING, an index's expressions), as written: one step naming
/// them, or none.
pub(super) fn calls_in(stmt: &N) -> Option<One> {
    let runs_now = matches!(
        stmt,
        N::SelectStmt(_)
            | N::InsertStmt(_)
            | N::UpdateStmt(_)
            | N::DeleteStmt(_)
            | N::MergeStmt(_)
            | N::AlterTableStmt(_)
            | N::IndexStmt(_)
            | N::CreateTableAsStmt(_)
            | N::AlterDomainStmt(_)
            | N::ExplainStmt(_)
    );
    if !runs_now {
        return None;
    }
    let tree = serde_json::to_value(stmt).ok()?;
    let mut functions: Vec<Relation> = Vec::new();
    crate::parser::walk(&tree, &mut |key, value| {
        if key == "FuncCall" {
            let mut parts: Vec<String> = value["funcname"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["node"]["String"]["sval"].as_str())
                .map(str::to_string)
                .collect();
            if let Some(name) = parts.pop() {
                functions.push(Relation {
                    schema: parts.pop(),
                    name,
                });
            }
        }
    });
    functions.sort();
    functions.dedup();
    (!functions.is_empty()).then(|| ("function call", nobody(), Step::Calls { functions }))
}

/// A DELETE's or UPDATE's WHERE: plain or not, and the columns it pins by equality.
pub(super) fn filtered(delete: bool, filter: Option<&Node>) -> Step {
    let p = filter.and_then(plain);
    let mut pinned = Vec::new();
    if let Some(f) = filter {
        pinned_columns(f, &mut pinned);
    }
    pinned.sort();
    pinned.dedup();
    Step::Filtered {
        delete,
        functions: p.as_ref().map(|p| p.functions.clone()).unwrap_or_default(),
        filter: p.map(|p| p.text),
        pinned,
        sets: vec![],
    }
}

/// An UPDATE with a WHERE: [`filtered`], with the columns it writes.
pub(super) fn updated(filter: Option<&Node>, targets: &[Node]) -> Step {
    match filtered(false, filter) {
        Step::Filtered {
            delete,
            filter,
            functions,
            pinned,
            ..
        } => Step::Filtered {
            delete,
            filter,
            functions,
            pinned,
            sets: sets(targets),
        },
        other => other,
    }
}

/// The columns an UPDATE's SET writes (`SET (a, b) = …` names each; `SET a[1] = …`
/// and `SET a.f = …` write column `a`).
pub(super) fn sets(targets: &[Node]) -> Vec<String> {
    let mut out: Vec<String> = targets
        .iter()
        .filter_map(node)
        .filter_map(|t| match t {
            N::ResTarget(r) => Some(r.name.clone()),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Columns the top-level conjuncts of a WHERE pin: `col = constant`, `constant = col`,
/// `col IN (constants)`.
fn pinned_columns(n: &Node, out: &mut Vec<String>) {
    match node(n) {
        Some(N::BoolExpr(b)) if b.boolop == BoolExprType::AndExpr as i32 => {
            b.args.iter().for_each(|a| pinned_columns(a, out))
        }
        Some(N::AExpr(a)) => {
            let kind = AExprKind::try_from(a.kind).ok();
            let eq = kind == Some(AExprKind::AexprOp) && strings(&a.name) == ["="];
            let (l, r) = (a.lexpr.as_deref(), a.rexpr.as_deref());
            if eq {
                match (column(l), column(r)) {
                    (Some(c), None) if constant(r) => out.push(c),
                    (None, Some(c)) if constant(l) => out.push(c),
                    _ => {}
                }
            }
            if kind == Some(AExprKind::AexprIn) {
                if let Some(c) = column(l) {
                    out.push(c);
                }
            }
        }
        _ => {}
    }
}

fn column(n: Option<&Node>) -> Option<String> {
    match n.and_then(node)? {
        N::ColumnRef(c) => strings(&c.fields).pop(),
        _ => None,
    }
}

fn constant(n: Option<&Node>) -> bool {
    match n.and_then(node) {
        Some(N::AConst(_)) | Some(N::ParamRef(_)) => true,
        Some(N::TypeCast(t)) => constant(t.arg.as_deref()),
        _ => false,
    }
}
