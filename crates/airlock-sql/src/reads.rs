//! What a gate or probe reads, by name, from its text alone: for `plan`, when the
//! server cannot resolve the statement now (it reads what the release creates), so
//! that the gate role's grants are still derived.
//!
//! Invariant: names only, as written (the parser folds unquoted ones); nothing is
//! resolved here. CTE names are not relations. A relation named in a string constant
//! (`to_regclass('app.t')`, `'app.t'::regclass`) needs only USAGE on its schema: it is
//! listed apart, as the text it was given.

use pg_query::NodeEnum;
use pg_query::NodeRef;
use std::collections::BTreeSet;

/// The relations a statement names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    /// (schema if written, relation), each once, in order of the names.
    pub relations: Vec<(Option<String>, String)>,
    /// Relation names given as text to `to_regclass` or cast to `regclass`.
    pub regclass_texts: Vec<String>,
    /// The functions it calls, by their last name (what a user function reads is not
    /// known from its name).
    pub functions: Vec<String>,
}

/// The relations `sql` reads, or the parser's error.
pub fn reads_of(sql: &str) -> Result<Reads, String> {
    let parsed =
        pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).map_err(|e| e.to_string())?;
    let mut ctes = BTreeSet::new();
    let mut relations = BTreeSet::new();
    let mut texts = BTreeSet::new();
    let mut functions = BTreeSet::new();
    for (node, ..) in parsed.protobuf.nodes() {
        match node {
            NodeRef::CommonTableExpr(c) => {
                ctes.insert(c.ctename.clone());
            }
            NodeRef::RangeVar(v) => {
                let schema = (!v.schemaname.is_empty()).then(|| v.schemaname.clone());
                relations.insert((schema, v.relname.clone()));
            }
            NodeRef::FuncCall(c) => {
                let name = last_name(&c.funcname);
                if name == Some("to_regclass") {
                    texts.extend(c.args.first().and_then(string_const));
                }
                functions.extend(name.map(str::to_string));
            }
            NodeRef::TypeCast(t) => {
                let regclass = t
                    .type_name
                    .as_ref()
                    .is_some_and(|n| last_name(&n.names) == Some("regclass"));
                if regclass {
                    texts.extend(t.arg.as_deref().and_then(string_const));
                }
            }
            _ => {}
        }
    }
    Ok(Reads {
        relations: relations
            .into_iter()
            .filter(|(s, r)| s.is_some() || !ctes.contains(r))
            .collect(),
        regclass_texts: texts.into_iter().collect(),
        functions: functions.into_iter().collect(),
    })
}

/// The last part of a qualified name (`pg_catalog.to_regclass` → `to_regclass`).
fn last_name(names: &[pg_query::Node]) -> Option<&str> {
    match names.last()?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.as_str()),
        _ => None,
    }
}

/// A string constant's text (`'app.t'`), through a cast to text if there is one.
fn string_const(n: &pg_query::Node) -> Option<String> {
    match n.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            _ => None,
        },
        NodeEnum::TypeCast(t) => string_const(t.arg.as_deref()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_and_regclass_texts_are_read_and_ctes_are_not() {
        let r = reads_of(
            "WITH w AS (SELECT 1) SELECT 'n', count(*)::text FROM app.t JOIN u ON true, w \
             WHERE to_regclass('x.\"Y\"') IS NULL AND 'z.q'::regclass IS NOT NULL \
             AND EXISTS (SELECT FROM \"Odd\".v)",
        )
        .unwrap();
        assert_eq!(
            r.relations,
            vec![
                (None, "u".to_string()),
                (Some("Odd".to_string()), "v".to_string()),
                (Some("app".to_string()), "t".to_string()),
            ]
        );
        assert_eq!(
            r.regclass_texts,
            vec!["x.\"Y\"".to_string(), "z.q".to_string()]
        );
        assert_eq!(
            r.functions,
            vec!["count".to_string(), "to_regclass".to_string()]
        );
    }
}
