//! Liquibase's `modifySql`: edits of the SQL a changeset's changes generate, made as
//! Liquibase makes them on PostgreSQL. Each `<modifySql>` whose `dbms` takes in
//! PostgreSQL (none named: every dbms) edits every statement of the changeset's
//! changes (and of its rollback with `applyToRollback="true"`), in document order:
//! `replace` (every occurrence of the text, as Java's `String.replace`),
//! `regExpReplace` (every match, as Java's `String.replaceAll`, `$1` a group),
//! `append` and `prepend` (to the statement, before its `;`). One for another dbms is
//! ignored, as Liquibase ignores it here, and said so.
//!
//! Invariant: never edit wrong. What import cannot do exactly as Liquibase does is
//! refused by name: a `modifySql` with a `context` or `labels` (which import cannot
//! evaluate), an edit it does not know, a pattern Java reads and Rust's `regex` does
//! not (look-around, back-references), and an `append`, a `prepend` or an anchored
//! pattern on a `sql` or `sqlFile` change (Liquibase cuts that text into statements
//! first and edits each; import keeps it whole).

use super::preconditions::not_for_postgres;
use super::tree::Node;

/// One edit of a `modifySql`.
#[derive(Debug)]
enum Edit {
    Replace(String, String),
    Regex(regex::Regex, String),
    Append(String),
    Prepend(String),
}

/// The `modifySql`s of a changeset that apply on PostgreSQL, in order.
#[derive(Debug, Default)]
pub(in crate::import) struct ModifySql {
    /// Each edit, and whether it edits the rollback too (`applyToRollback`).
    edits: Vec<(Edit, bool)>,
}

/// Which statements are edited.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::import) enum Of {
    /// A generated change's statements, one each.
    Change,
    /// A `sql` or `sqlFile` change's text, kept whole.
    Text,
}

impl ModifySql {
    /// The `modifySql`s among the children of changeset `n`; those for another dbms
    /// go to `ignored` (for the report).
    pub(in crate::import) fn read(
        n: &Node,
        ignored: &mut Vec<String>,
    ) -> Result<ModifySql, String> {
        let mut out = ModifySql::default();
        for m in n.children.iter().filter(|c| c.name == "modifySql") {
            if let Some(k) = ["context", "contextFilter", "labels"]
                .iter()
                .find(|k| m.attr(k).is_some())
            {
                return Err(format!("`modifySql {k}=…`: import cannot evaluate contexts or labels; remove it or write the SQL as it runs, then import"));
            }
            if let Some(k) = (m.attrs.iter())
                .map(|(k, _)| k.as_str())
                .find(|k| !["dbms", "applyToRollback"].contains(k))
            {
                return Err(format!("`modifySql {k}=…`, which import does not read"));
            }
            if let Some(dbms) = m.attr("dbms").filter(|d| not_for_postgres(d)) {
                let said = format!("`modifySql dbms={dbms}`");
                if !ignored.contains(&said) {
                    ignored.push(said);
                }
                continue;
            }
            let to_rollback = m
                .attr("applyToRollback")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
            for e in &m.children {
                out.edits.push((read_edit(e)?, to_rollback));
            }
        }
        Ok(out)
    }

    /// What the report says of the edits (`replace "a" with "b"`…).
    pub(in crate::import) fn said(&self) -> Vec<String> {
        (self.edits.iter())
            .map(|(e, to_rollback)| match to_rollback {
                true => format!("{} (and in the rollback)", describe(e)),
                false => describe(e),
            })
            .collect()
    }

    /// The changeset's changes' statements (`parts`: each change's, each ending in
    /// `;`, and what they are) as the edits leave them. A `replace` or
    /// `regExpReplace` that matches none of them is refused: Liquibase edits the text
    /// its own generator writes, and an edit that finds nothing in import's would
    /// leave the statement as Liquibase does not.
    pub(in crate::import) fn changes(
        &self,
        parts: Vec<(Vec<String>, Of)>,
    ) -> Result<Vec<String>, String> {
        let mut matched = vec![false; self.edits.len()];
        let mut out = vec![];
        for (stmts, of) in parts {
            out.extend(self.edit(stmts, of, false, &mut matched)?);
        }
        let unmatched = (self.edits.iter().zip(&matched))
            .find(|((e, _), m)| !**m && matches!(e, Edit::Replace(..) | Edit::Regex(..)));
        if let Some(((e, _), _)) = unmatched {
            return Err(format!("`modifySql` {} matches nothing in the SQL import writes for the changeset's changes (Liquibase edits the text its own generator writes): write the SQL as it runs, then import", describe(e)));
        }
        Ok(out)
    }

    /// The rollback's statements as the edits for the rollback leave them (those of a
    /// `modifySql applyToRollback="true"`).
    pub(in crate::import) fn rollback(
        &self,
        stmts: Vec<String>,
        of: Of,
    ) -> Result<Vec<String>, String> {
        self.edit(stmts, of, true, &mut vec![false; self.edits.len()])
    }

    /// `stmts` edited; `matched[i]` set when edit i found its text in one.
    fn edit(
        &self,
        stmts: Vec<String>,
        of: Of,
        rollback: bool,
        matched: &mut [bool],
    ) -> Result<Vec<String>, String> {
        let edits: Vec<(usize, &Edit)> = (self.edits.iter().enumerate())
            .filter(|(_, (_, r))| !rollback || *r)
            .map(|(i, (e, _))| (i, e))
            .collect();
        if edits.is_empty() {
            return Ok(stmts);
        }
        if of == Of::Text {
            if let Some((_, e)) = edits.iter().find(|(_, e)| !whole_text_safe(e)) {
                return Err(format!("`modifySql` {} on a `sql` or `sqlFile` change: Liquibase cuts that text into statements and edits each, which import does not; write the SQL as it runs, then import", describe(e)));
            }
        }
        Ok(stmts
            .into_iter()
            .map(|s| {
                let body = s.trim_end();
                let body = body.strip_suffix(';').unwrap_or(body);
                let mut sql = body.to_string();
                for (i, e) in &edits {
                    sql = match e {
                        Edit::Replace(a, b) => {
                            matched[*i] |= sql.contains(a.as_str());
                            sql.replace(a.as_str(), b)
                        }
                        Edit::Regex(r, with) => {
                            matched[*i] |= r.is_match(&sql);
                            r.replace_all(&sql, with.as_str()).into_owned()
                        }
                        Edit::Append(v) => format!("{sql}{v}"),
                        Edit::Prepend(v) => format!("{v}{sql}"),
                    };
                }
                format!("{sql};")
            })
            .collect())
    }
}

/// Whether the edit `e` does the same to a text of several statements as to each.
fn whole_text_safe(e: &Edit) -> bool {
    match e {
        Edit::Replace(..) => true,
        Edit::Regex(r, _) => !r.as_str().contains(['^', '$']),
        Edit::Append(_) | Edit::Prepend(_) => false,
    }
}

fn describe(e: &Edit) -> String {
    match e {
        Edit::Replace(a, b) => format!("replace {a:?} with {b:?}"),
        Edit::Regex(r, with) => format!("regExpReplace {:?} with {with:?}", r.as_str()),
        Edit::Append(v) => format!("append {v:?}"),
        Edit::Prepend(v) => format!("prepend {v:?}"),
    }
}

/// One edit element of a `modifySql`.
fn read_edit(e: &Node) -> Result<Edit, String> {
    let need = |k: &str| {
        e.get(k).ok_or_else(|| {
            format!(
                "`modifySql` `{}` without `{k}`: give its `{k}`, then import",
                e.name
            )
        })
    };
    Ok(match e.name.as_str() {
        "replace" => Edit::Replace(need("replace")?, need("with")?),
        "regExpReplace" => {
            let pattern = need("replace")?;
            let r = regex::Regex::new(&pattern).map_err(|why| format!("`modifySql` `regExpReplace` {pattern:?}: a pattern import cannot run as Java does ({why}); write the SQL as it runs, then import"))?;
            Edit::Regex(r, java_replacement(&need("with")?))
        }
        "append" => Edit::Append(need("value")?),
        "prepend" => Edit::Prepend(need("value")?),
        other => {
            return Err(format!(
                "`modifySql` holding `{other}`, which import does not read: write the SQL as it runs, then import"
            ))
        }
    })
}

/// A Java `replaceAll` replacement in `regex`'s terms: `$1` is `${1}` (Java reads the
/// digits after `$` as a group number; `regex` would read `$1a` as a group named
/// `1a`), `\x` is `x` and a literal `$` is `$$`.
fn java_replacement(with: &str) -> String {
    let mut out = String::new();
    let mut chars = with.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                match digits.is_empty() {
                    true => out.push_str("$$"),
                    false => out.push_str(&format!("${{{digits}}}")),
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, attrs: &[(&str, &str)], children: Vec<Node>) -> Node {
        Node {
            name: name.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            children,
            text: String::new(),
            line: 1,
        }
    }

    #[test]
    fn java_replacements_become_regex_ones() {
        assert_eq!(java_replacement("$1a"), "${1}a");
        assert_eq!(java_replacement(r"\$x"), "$$x");
        assert_eq!(java_replacement("a$"), "a$$");
        let r = regex::Regex::new("VARCHAR\\((\\d+)\\)").unwrap();
        assert_eq!(
            r.replace_all("x VARCHAR(36)", java_replacement("VARCHAR($1)0").as_str()),
            "x VARCHAR(36)0"
        );
    }

    #[test]
    fn edits_for_postgresql_apply_in_order_and_others_are_ignored_and_said() {
        let cs = node(
            "changeSet",
            &[],
            vec![
                node(
                    "modifySql",
                    &[("dbms", "postgresql")],
                    vec![
                        node("replace", &[("replace", "BYTEA"), ("with", "TEXT")], vec![]),
                        node("append", &[("value", " WITH (fillfactor = 70)")], vec![]),
                    ],
                ),
                node(
                    "modifySql",
                    &[("dbms", "mssql")],
                    vec![node("prepend", &[("value", "SET X;")], vec![])],
                ),
            ],
        );
        let mut ignored = vec![];
        let m = ModifySql::read(&cs, &mut ignored).unwrap();
        assert_eq!(ignored, ["`modifySql dbms=mssql`"]);
        assert_eq!(
            m.changes(vec![(vec!["CREATE TABLE t (b BYTEA);".into()], Of::Change)])
                .unwrap(),
            ["CREATE TABLE t (b TEXT) WITH (fillfactor = 70);"]
        );
        // Not in the rollback: no applyToRollback.
        assert_eq!(
            m.rollback(vec!["DROP TABLE t;".into()], Of::Change)
                .unwrap(),
            ["DROP TABLE t;"]
        );
        // An append on a `sql` change's whole text is refused.
        assert!(m
            .changes(vec![(vec!["SELECT 1; SELECT 2;".into()], Of::Text)])
            .unwrap_err()
            .contains("Liquibase cuts that text into statements"));
        // A replace that finds nothing in what import writes is refused.
        assert!(m
            .changes(vec![(vec!["CREATE TABLE t (b bytea);".into()], Of::Change)])
            .unwrap_err()
            .contains("matches nothing in the SQL import writes"));
    }

    #[test]
    fn a_modify_sql_with_a_context_or_an_unknown_edit_is_refused() {
        let with_context = node(
            "changeSet",
            &[],
            vec![node("modifySql", &[("context", "prod")], vec![])],
        );
        assert!(ModifySql::read(&with_context, &mut vec![])
            .unwrap_err()
            .contains("cannot evaluate contexts"));
        let unknown = node(
            "changeSet",
            &[],
            vec![node("modifySql", &[], vec![node("surround", &[], vec![])])],
        );
        assert!(ModifySql::read(&unknown, &mut vec![])
            .unwrap_err()
            .contains("holding `surround`"));
        let lookaround = node(
            "changeSet",
            &[],
            vec![node(
                "modifySql",
                &[],
                vec![node(
                    "regExpReplace",
                    &[("replace", "(?<=a)b"), ("with", "c")],
                    vec![],
                )],
            )],
        );
        assert!(ModifySql::read(&lookaround, &mut vec![])
            .unwrap_err()
            .contains("cannot run as Java does"));
    }
}
