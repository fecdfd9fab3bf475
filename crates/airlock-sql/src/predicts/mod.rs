//! The statements whose outcome the existing rows decide, and the ones that destroy
//! rows, read from PostgreSQL's parse tree for `plan`'s predictions (the questions
//! themselves are asked in `airlock-pg`'s `predict`).
//!
//! Invariant: only what the tree says for certain is named; a form this module does
//! not know (a partial or expression index, a CHECK that is not a plain expression
//! over the table's columns) is named as not predictable, never guessed.

use super::reach::{each_statement, Held};
use pg_query::protobuf::{AlterTableType as At, ConstrType, ObjectType, RangeVar};
use pg_query::{Node, NodeEnum as N};
use schemars::JsonSchema;
use serde::Serialize;
use std::io::{self, Read};

/// A relation as the statement names it: its parts unquoted, and as shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Relation {
    /// The schema, when the statement names one.
    pub schema: Option<String>,
    pub name: String,
}

impl std::fmt::Display for Relation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{}.{}", shown(s), shown(&self.name)),
            None => write!(f, "{}", shown(&self.name)),
        }
    }
}

/// An identifier quoted only where an unquoted one would fold or break.
fn shown(s: &str) -> String {
    let plain = s
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()));
    if plain && !s.is_empty() {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// What a statement does that the rows decide or take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// PRIMARY KEY, UNIQUE constraint or unique index over plain columns.
    Unique {
        columns: Vec<String>,
        primary: bool,
    },
    /// A unique index or constraint whose keys the rows cannot be asked about simply.
    UniqueOther {
        why: String,
    },
    SetNotNull {
        column: String,
    },
    /// `ADD COLUMN … NOT NULL` with no default, identity or generation.
    AddNotNullColumn {
        column: String,
    },
    /// `ADD CONSTRAINT … CHECK` without NOT VALID: its expression as PostgreSQL
    /// prints it, or `None` when it is not a plain expression over the columns.
    Check {
        expr: Option<String>,
    },
    /// `ADD … FOREIGN KEY` without NOT VALID (`ref_columns` empty: the referenced
    /// table's primary key).
    ForeignKey {
        columns: Vec<String>,
        references: Relation,
        ref_columns: Vec<String>,
    },
    DropTable,
    DropColumn {
        column: String,
    },
    Truncate,
    DeleteAll,
    UpdateAll,
    /// The release creates this table (CREATE TABLE, CREATE TABLE AS, SELECT INTO).
    Creates,
    /// The release writes rows of this table (INSERT, UPDATE, DELETE, COPY, MERGE).
    Writes,
    /// A DO block or CALL: it may change any row (relation empty).
    Opaque,
}

/// One statement of a tier file and what it does.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct DataStep {
    pub file: String,
    pub line: usize,
    /// What the statement is, e.g. `ALTER TABLE … SET NOT NULL`.
    pub statement: String,
    pub relation: Relation,
    #[serde(flatten)]
    pub step: Step,
}

/// Every data-dependent, destroying or row-writing statement of one tier file, in
/// file order.
pub fn data_steps_in(file: &str, r: &mut dyn Read) -> io::Result<Vec<DataStep>> {
    let mut out = Vec::new();
    each_statement(r, true, |held| {
        let Held::Text { sql, line, dml } = held else {
            return;
        };
        // A data file of a million INSERTs is not parsed a million times: the table
        // an INSERT writes is read off its first words.
        if dml {
            if let Some(relation) = insert_target(sql) {
                out.push(DataStep {
                    file: file.into(),
                    line,
                    statement: "INSERT".into(),
                    relation,
                    step: Step::Writes,
                });
                return;
            }
        }
        let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
            return;
        };
        for (at_line, node) in super::parser::statements_by_line(&parsed, sql, line) {
            for (statement, relation, step) in statement_steps(node) {
                out.push(DataStep {
                    file: file.into(),
                    line: at_line,
                    statement: statement.into(),
                    relation,
                    step,
                });
            }
        }
    })?;
    Ok(out)
}

/// The table of `INSERT INTO name` / `INSERT INTO schema.name`, read off its first
/// words (plain or double-quoted identifiers; `None` for anything else, which is
/// parsed).
fn insert_target(sql: &str) -> Option<Relation> {
    let mut rest = sql.trim_start();
    let word = |rest: &mut &str| -> Option<String> {
        *rest = rest.trim_start();
        if let Some(q) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = q.char_indices().peekable();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if q[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                        continue;
                    }
                    *rest = &q[i + 1..];
                    return Some(name);
                }
                name.push(c);
            }
            return None;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(rest.len());
        if end == 0 {
            return None;
        }
        let w = rest[..end].to_ascii_lowercase();
        *rest = &rest[end..];
        Some(w)
    };
    if word(&mut rest)? != "insert" || word(&mut rest)? != "into" {
        return None;
    }
    let first = word(&mut rest)?;
    if let Some(after) = rest.strip_prefix('.') {
        rest = after;
        let name = word(&mut rest)?;
        return Some(Relation {
            schema: Some(first),
            name,
        });
    }
    Some(Relation {
        schema: None,
        name: first,
    })
}

type One = (&'static str, Relation, Step);

fn node(n: &Node) -> Option<&N> {
    n.node.as_ref()
}

fn rel(rv: &Option<RangeVar>) -> Relation {
    match rv {
        Some(rv) => Relation {
            schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
            name: rv.relname.clone(),
        },
        None => Relation {
            schema: None,
            name: String::new(),
        },
    }
}

fn strings(list: &[Node]) -> Vec<String> {
    list.iter()
        .filter_map(node)
        .filter_map(|n| match n {
            N::String(s) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn nobody() -> Relation {
    Relation {
        schema: None,
        name: String::new(),
    }
}

fn statement_steps(stmt: &N) -> Vec<One> {
    match stmt {
        N::AlterTableStmt(s) => {
            let r = rel(&s.relation);
            s.cmds
                .iter()
                .filter_map(node)
                .filter_map(|c| match c {
                    N::AlterTableCmd(c) => alter_cmd(c, &r),
                    _ => None,
                })
                .collect()
        }
        N::IndexStmt(s) if s.unique => {
            vec![("CREATE UNIQUE INDEX", rel(&s.relation), unique_index(s))]
        }
        N::CreateStmt(s) => vec![("CREATE TABLE", rel(&s.relation), Step::Creates)],
        N::CreateTableAsStmt(s) => match s.into.as_ref() {
            Some(i) => vec![("CREATE TABLE AS", rel(&i.rel), Step::Creates)],
            None => vec![],
        },
        N::SelectStmt(s) => match s.into_clause.as_ref() {
            Some(i) => vec![("SELECT INTO", rel(&i.rel), Step::Creates)],
            None => vec![],
        },
        N::DropStmt(s) if s.remove_type == ObjectType::ObjectTable as i32 => s
            .objects
            .iter()
            .filter_map(node)
            .filter_map(|o| match o {
                N::List(l) => {
                    let mut parts = strings(&l.items);
                    let name = parts.pop()?;
                    Some((
                        "DROP TABLE",
                        Relation {
                            schema: parts.pop(),
                            name,
                        },
                        Step::DropTable,
                    ))
                }
                _ => None,
            })
            .collect(),
        N::TruncateStmt(s) => s
            .relations
            .iter()
            .filter_map(node)
            .filter_map(|r| match r {
                N::RangeVar(rv) => Some(("TRUNCATE", rel(&Some(rv.clone())), Step::Truncate)),
                _ => None,
            })
            .collect(),
        N::DeleteStmt(s) if s.where_clause.is_none() => {
            vec![("DELETE without WHERE", rel(&s.relation), Step::DeleteAll)]
        }
        N::UpdateStmt(s) if s.where_clause.is_none() => {
            vec![("UPDATE without WHERE", rel(&s.relation), Step::UpdateAll)]
        }
        N::DeleteStmt(s) => vec![("DELETE", rel(&s.relation), Step::Writes)],
        N::UpdateStmt(s) => vec![("UPDATE", rel(&s.relation), Step::Writes)],
        N::InsertStmt(s) => vec![("INSERT", rel(&s.relation), Step::Writes)],
        N::MergeStmt(s) => vec![("MERGE", rel(&s.relation), Step::Writes)],
        N::CopyStmt(s) if s.is_from => vec![("COPY", rel(&s.relation), Step::Writes)],
        N::DoStmt(_) => vec![("DO", nobody(), Step::Opaque)],
        N::CallStmt(_) => vec![("CALL", nobody(), Step::Opaque)],
        _ => vec![],
    }
}

fn unique_index(s: &pg_query::protobuf::IndexStmt) -> Step {
    if s.where_clause.is_some() {
        return Step::UniqueOther {
            why: "a partial unique index".into(),
        };
    }
    if s.nulls_not_distinct {
        return Step::UniqueOther {
            why: "NULLS NOT DISTINCT".into(),
        };
    }
    let mut columns = Vec::new();
    for p in s.index_params.iter().filter_map(node) {
        match p {
            N::IndexElem(e) if !e.name.is_empty() && e.expr.is_none() => {
                columns.push(e.name.clone())
            }
            _ => {
                return Step::UniqueOther {
                    why: "an index over an expression".into(),
                }
            }
        }
    }
    Step::Unique {
        columns,
        primary: false,
    }
}

fn alter_cmd(c: &pg_query::protobuf::AlterTableCmd, r: &Relation) -> Option<One> {
    let one = |what, step| Some((what, r.clone(), step));
    match At::try_from(c.subtype).ok()? {
        At::AtSetNotNull => one(
            "ALTER TABLE … SET NOT NULL",
            Step::SetNotNull {
                column: c.name.clone(),
            },
        ),
        At::AtDropColumn => one(
            "ALTER TABLE … DROP COLUMN",
            Step::DropColumn {
                column: c.name.clone(),
            },
        ),
        At::AtAddColumn => match c.def.as_deref().and_then(node) {
            Some(N::ColumnDef(col)) if not_null_without_default(col) => one(
                "ALTER TABLE … ADD COLUMN … NOT NULL",
                Step::AddNotNullColumn {
                    column: col.colname.clone(),
                },
            ),
            _ => None,
        },
        At::AtAddConstraint => match c.def.as_deref().and_then(node) {
            Some(N::Constraint(k)) => add_constraint(k, r),
            _ => None,
        },
        _ => None,
    }
}

fn not_null_without_default(col: &pg_query::protobuf::ColumnDef) -> bool {
    let serial = col.type_name.as_ref().is_some_and(|tn| {
        strings(&tn.names).iter().any(|n| {
            matches!(
                n.as_str(),
                "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
            )
        })
    });
    let mut not_null = false;
    let mut filled = serial || col.raw_default.is_some() || !col.identity.is_empty();
    for k in col.constraints.iter().filter_map(node) {
        if let N::Constraint(k) = k {
            match ConstrType::try_from(k.contype) {
                Ok(ConstrType::ConstrNotnull) | Ok(ConstrType::ConstrPrimary) => not_null = true,
                Ok(ConstrType::ConstrDefault)
                | Ok(ConstrType::ConstrIdentity)
                | Ok(ConstrType::ConstrGenerated) => filled = true,
                _ => {}
            }
        }
    }
    not_null && !filled
}

fn add_constraint(k: &pg_query::protobuf::Constraint, r: &Relation) -> Option<One> {
    let one = |what, step| Some((what, r.clone(), step));
    match ConstrType::try_from(k.contype).ok()? {
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique if !k.indexname.is_empty() => None,
        ConstrType::ConstrPrimary => one(
            "ALTER TABLE … ADD PRIMARY KEY",
            Step::Unique {
                columns: strings(&k.keys),
                primary: true,
            },
        ),
        ConstrType::ConstrUnique if k.nulls_not_distinct => one(
            "ALTER TABLE … ADD UNIQUE",
            Step::UniqueOther {
                why: "NULLS NOT DISTINCT".into(),
            },
        ),
        ConstrType::ConstrUnique => one(
            "ALTER TABLE … ADD UNIQUE",
            Step::Unique {
                columns: strings(&k.keys),
                primary: false,
            },
        ),
        ConstrType::ConstrCheck if !k.skip_validation => one(
            "ALTER TABLE … ADD CHECK",
            Step::Check {
                expr: k.raw_expr.as_deref().and_then(plain_expr),
            },
        ),
        ConstrType::ConstrForeign if !k.skip_validation => one(
            "ALTER TABLE … ADD FOREIGN KEY",
            Step::ForeignKey {
                columns: strings(&k.fk_attrs),
                references: rel(&k.pktable),
                ref_columns: strings(&k.pk_attrs),
            },
        ),
        _ => None,
    }
}

/// The node types a plain expression over the table's own columns is made of:
/// columns, constants, operators, casts, NULL tests, CASE, COALESCE, and a few
/// functions that read only their arguments. Anything else (a subquery, any other
/// function, a qualified column) is not predictable here.
const PLAIN_NODES: [&str; 19] = [
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
];

const PLAIN_FUNCTIONS: [&str; 9] = [
    "length",
    "char_length",
    "lower",
    "upper",
    "btrim",
    "abs",
    "octet_length",
    "array_length",
    "cardinality",
];

/// The CHECK expression printed by PostgreSQL's own deparser, when it is plain.
fn plain_expr(expr: &Node) -> Option<String> {
    let tree = serde_json::to_value(expr).ok()?;
    let mut plain = true;
    super::parser::walk(&tree, &mut |key, value| {
        if !key.starts_with(|c: char| c.is_ascii_uppercase()) {
            return;
        }
        plain &= PLAIN_NODES.contains(&key);
        if key == "ColumnRef" {
            plain &= value["fields"].as_array().is_some_and(|f| f.len() == 1);
        }
        if key == "FuncCall" {
            let names = value["funcname"].as_array();
            let name = names
                .filter(|n| n.len() == 1)
                .and_then(|n| n[0]["node"]["String"]["sval"].as_str());
            plain &= name.is_some_and(|f| PLAIN_FUNCTIONS.contains(&f))
                && value.get("agg_star").and_then(|v| v.as_bool()) != Some(true)
                && value.get("over").is_none_or(|v| v.is_null());
        }
    });
    if !plain {
        return None;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(sql: &str) -> Vec<DataStep> {
        data_steps_in("t.sql", &mut sql.as_bytes()).unwrap()
    }

    #[test]
    fn finds_what_the_rows_decide() {
        let s = steps(
            "ALTER TABLE a ADD PRIMARY KEY (x, y);\nCREATE UNIQUE INDEX i ON s.\"B\" (z);\n\
             ALTER TABLE a ALTER COLUMN c SET NOT NULL, ADD COLUMN d int NOT NULL;\n\
             ALTER TABLE a ADD COLUMN e int NOT NULL DEFAULT 0;\n\
             ALTER TABLE a ADD CONSTRAINT k CHECK (x > 0 AND length(c) < 5);\n\
             ALTER TABLE a ADD CONSTRAINT k2 CHECK (x > (SELECT 1));\n\
             ALTER TABLE a ADD CONSTRAINT k3 CHECK (x > 0) NOT VALID;\n\
             ALTER TABLE a ADD FOREIGN KEY (x) REFERENCES b;\n\
             DROP TABLE a, s.b; DELETE FROM a; UPDATE a SET x = 1 WHERE y = 2;\n\
             INSERT INTO \"Q\"\"x\".b VALUES (1); insert   into c(x) values (2);",
        );
        let kinds: Vec<&Step> = s.iter().map(|d| &d.step).collect();
        assert!(
            matches!(kinds[0], Step::Unique { columns, primary: true } if columns == &["x", "y"])
        );
        assert_eq!(s[1].relation.to_string(), "s.\"B\"");
        assert_eq!(s[1].line, 2);
        assert!(matches!(kinds[2], Step::SetNotNull { column } if column == "c"));
        assert!(matches!(kinds[3], Step::AddNotNullColumn { column } if column == "d"));
        assert!(matches!(kinds[4], Step::Check { expr: Some(e) } if e.contains("length(c)")));
        assert!(matches!(kinds[5], Step::Check { expr: None }));
        assert!(matches!(kinds[6], Step::ForeignKey { ref_columns, .. } if ref_columns.is_empty()));
        assert_eq!(
            kinds[7..11],
            [
                &Step::DropTable,
                &Step::DropTable,
                &Step::DeleteAll,
                &Step::Writes
            ]
        );
        assert_eq!(s[11].relation.to_string(), "\"Q\"\"x\".b");
        assert_eq!(s[12].relation.to_string(), "c");
        assert_eq!(s.len(), 13);
    }
}
