//! What a gate or probe reads, by name, from its text alone: for `plan`, when the
//! server cannot resolve the statement now (it reads what the release creates), so
//! that the gate role's grants are still derived.
//!
//! Invariant: names only, as written (the parser folds unquoted ones); nothing is
//! resolved here. CTE names are not relations. A relation named in a string constant
//! (`to_regclass('app.t')`, `'app.t'::regclass`) needs only USAGE on its schema: it is
//! listed apart, as the text it was given.

use serde_json::Value;
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
    let tree = serde_json::to_value(&parsed.protobuf).map_err(|e| e.to_string())?;
    let mut found = Found::default();
    walk(&tree, &mut found);
    Ok(Reads {
        relations: (found.relations.into_iter())
            .filter(|(s, r)| s.is_some() || !found.ctes.contains(r))
            .collect(),
        regclass_texts: found.texts.into_iter().collect(),
        functions: found.functions.into_iter().collect(),
    })
}

#[derive(Default)]
struct Found {
    ctes: BTreeSet<String>,
    relations: BTreeSet<(Option<String>, String)>,
    texts: BTreeSet<String>,
    functions: BTreeSet<String>,
}

/// Every node of the parse tree (as JSON), whatever its depth.
fn walk(v: &Value, found: &mut Found) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk(i, found)),
        Value::Object(map) => {
            if let Some(c) = map.get("CommonTableExpr") {
                found.ctes.extend(c["ctename"].as_str().map(str::to_string));
            }
            if let Some(r) = map.get("RangeVar") {
                let schema = r["schemaname"].as_str().filter(|s| !s.is_empty());
                if let Some(rel) = r["relname"].as_str() {
                    found
                        .relations
                        .insert((schema.map(str::to_string), rel.to_string()));
                }
            }
            if let Some(f) = map.get("FuncCall") {
                let name = last_name(&f["funcname"]);
                if name.as_deref() == Some("to_regclass") {
                    found.texts.extend(f["args"].get(0).and_then(string_const));
                }
                found.functions.extend(name);
            }
            if let Some(t) = map.get("TypeCast") {
                if last_name(&t["type_name"]["names"]).as_deref() == Some("regclass") {
                    found.texts.extend(string_const(&t["arg"]));
                }
            }
            map.values().for_each(|x| walk(x, found));
        }
        _ => {}
    }
}

/// The last part of a qualified name (`pg_catalog.to_regclass` → `to_regclass`).
fn last_name(names: &Value) -> Option<String> {
    names
        .as_array()?
        .last()?
        .pointer("/node/String/sval")?
        .as_str()
        .map(str::to_string)
}

/// A string constant's text (`'app.t'`), through a cast to text if there is one.
fn string_const(n: &Value) -> Option<String> {
    let node = &n["node"];
    if let Some(s) = node
        .pointer("/AConst/val/Sval/sval")
        .and_then(Value::as_str)
    {
        return Some(s.to_string());
    }
    string_const(&node.get("TypeCast")?["arg"])
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
