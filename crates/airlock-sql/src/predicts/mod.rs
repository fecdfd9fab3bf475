//! The statements whose outcome the existing rows decide, and the ones that destroy
//! rows, read from PostgreSQL's parse tree for `plan`'s predictions (the questions
//! themselves are asked in `airlock-pg`'s `predict`).
//!
//! Invariant: only what the tree says for certain is named; a form this module does
//! not know (a partial or expression index, a CHECK or USING that is not a plain
//! expression over the table's columns) is named as not predictable, never guessed.
//! What may change rows the tree cannot see (a DO block, CALL, EXECUTE, a call of a
//! function that may not be built in) is named too, so nothing after it is judged on
//! the rows there now.

mod alter;
mod calls;
mod drops;
mod expr;
pub(crate) use expr::type_ref;

use super::reach::{each_statement, Held};
use pg_query::protobuf::RangeVar;
use pg_query::{Node, NodeEnum as N};
use schemars::JsonSchema;
use serde::Serialize;
use std::io::{self, Read};

/// A relation (or a type, a schema) as the statement names it: its parts unquoted,
/// and as shown.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
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
pub fn shown(s: &str) -> String {
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

/// A type as a statement names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TypeRef {
    /// Its name parts as parsed (`["pg_catalog", "varchar"]`, `["mood"]`).
    pub names: Vec<String>,
    /// Integer modifiers (`varchar(3)`: `[3]`; `numeric(5,2)`: `[5, 2]`).
    pub typmods: Vec<i64>,
    pub array: bool,
    /// As PostgreSQL's deparser prints it, to write `::TYPE` with.
    pub text: String,
}

/// How `ALTER COLUMN … TYPE` gets its values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "using", rename_all = "kebab-case")]
pub enum Using {
    /// No USING: the column's values cast to the type.
    Absent,
    /// A plain USING expression over the table's columns (PostgreSQL's deparse);
    /// `inner`: its argument when it is itself a cast to the new type; `casts`: the
    /// types it casts to on the way.
    Plain {
        expr: String,
        inner: Option<String>,
        casts: Vec<String>,
        functions: Vec<String>,
    },
    /// A USING expression this module does not ask about (a subquery, a function
    /// that is not a plain built-in).
    Other,
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
    /// `CREATE UNIQUE INDEX … WHERE p` over plain columns, `p` a plain expression over
    /// the table's columns as PostgreSQL prints it (the soft-delete pattern): only the
    /// rows `p` keeps must be unique.
    PartialUnique {
        columns: Vec<String>,
        predicate: String,
        functions: Vec<String>,
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
    /// Any other `ADD COLUMN`: a column the release adds, whose values (NULL or the
    /// default) no row held before.
    AddColumn {
        column: String,
    },
    /// `ADD CONSTRAINT … CHECK`: its expression as PostgreSQL prints it, or `None`
    /// when it is not a plain expression over the columns; `not_valid`: added NOT
    /// VALID (no row checked now; a later VALIDATE CONSTRAINT checks them).
    Check {
        name: Option<String>,
        expr: Option<String>,
        functions: Vec<String>,
        not_valid: bool,
    },
    /// `ADD … FOREIGN KEY` (`ref_columns` empty: the referenced table's primary key).
    ForeignKey {
        name: Option<String>,
        columns: Vec<String>,
        references: Relation,
        ref_columns: Vec<String>,
        /// MATCH FULL: a key with some NULL columns and some not fails too.
        match_full: bool,
        not_valid: bool,
    },
    /// `ALTER TABLE … VALIDATE CONSTRAINT`: the rows the constraint has not checked.
    Validate {
        constraint: String,
    },
    /// `ALTER COLUMN … TYPE`.
    AlterType {
        column: String,
        to: TypeRef,
        using: Using,
    },
    DropTable {
        cascade: bool,
        /// `DROP TABLE IF EXISTS`: a table not there is no failure.
        if_exists: bool,
    },
    DropColumn {
        column: String,
        /// `DROP COLUMN IF EXISTS`: a column not there is no failure.
        if_exists: bool,
    },
    /// `DROP SCHEMA` (the relation's `name` is the schema).
    DropSchema {
        cascade: bool,
    },
    /// `DROP TYPE` or `DROP DOMAIN` (the relation is the type).
    DropType {
        cascade: bool,
    },
    /// `CREATE TYPE … AS ENUM` (the relation is the type).
    CreateEnum {
        labels: Vec<String>,
    },
    /// `ALTER TYPE … RENAME TO` (the relation is the type under its old name).
    RenameType {
        to: String,
    },
    Truncate {
        cascade: bool,
    },
    DeleteAll,
    /// UPDATE without a WHERE; `sets`: the columns it writes.
    UpdateAll {
        sets: Vec<String>,
    },
    /// DELETE or UPDATE with a WHERE: the WHERE when plain, and the columns it pins
    /// by equality (`col = constant`, `col IN (…)`); `sets`: the columns an UPDATE
    /// writes (none for a DELETE).
    Filtered {
        delete: bool,
        filter: Option<String>,
        functions: Vec<String>,
        pinned: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sets: Vec<String>,
    },
    /// The release drops or replaces this object that holds no rows (a view, index,
    /// sequence, function…): what depends on it now may not by then.
    Touches,
    /// `ALTER TABLE … DROP CONSTRAINT`.
    DropConstraint {
        constraint: String,
    },
    /// The release creates this table (CREATE TABLE, CREATE TABLE AS, SELECT INTO).
    Creates,
    /// The release writes rows of this table (INSERT, COPY, MERGE).
    Writes,
    /// A DO block, CALL or EXECUTE: it may change any row (relation empty).
    Opaque,
    /// A statement that may bring a relation or column under a name without creating
    /// it as such (a rename, `SET SCHEMA`, `CREATE EXTENSION`, `IMPORT FOREIGN SCHEMA`,
    /// `CREATE FOREIGN TABLE`, `CREATE SCHEMA … CREATE TABLE`): a later DROP of an
    /// object not there now may then find it (relation empty).
    MayCreate,
    /// The statement calls these functions (as written, qualified or not); one that is
    /// not built in may change any row (relation empty).
    Calls {
        functions: Vec<Relation>,
    },
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
    let mut out = Steps::default();
    each_statement(r, true, |held| {
        let Held::Text { sql, line, dml } = held else {
            return;
        };
        let at = |statement: &str, relation, step| DataStep {
            file: file.into(),
            line,
            statement: statement.into(),
            relation,
            step,
        };
        // A data file of a million INSERTs is not parsed a million times: the table
        // an INSERT writes, and what it calls, are read off its words.
        if dml {
            if let Some((relation, functions)) = insert_target(sql) {
                out.push(at("INSERT", relation, Step::Writes));
                out.push(at("function call", nobody(), Step::Calls { functions }));
                return;
            }
        }
        let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
            return;
        };
        for (at_line, node) in super::parser::statements_by_line(&parsed, sql, line) {
            let calls = expr::calls_in(node);
            // What its WITH clauses (at any depth) change comes first: a DELETE there
            // is the same DELETE as written alone.
            // (The statement `EXPLAIN ANALYZE` runs is the first part, named as written.)
            let explain = matches!(node, N::ExplainStmt(_));
            let nested = modifying_parts(node)
                .into_iter()
                .enumerate()
                .flat_map(|(i, n)| {
                    statement_steps(n)
                        .into_iter()
                        .map(move |(statement, r, step)| {
                            let named = if explain && i == 0 {
                                statement
                            } else {
                                in_with(statement)
                            };
                            (named, r, step)
                        })
                });
            let steps = nested.chain(statement_steps(node)).chain(calls);
            for (statement, relation, step) in steps {
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
    Ok(out.steps)
}

/// The steps of a file, without repeats that tell nothing new: a write of the table
/// the step before wrote, a call of functions called before in the file.
#[derive(Default)]
struct Steps {
    steps: Vec<DataStep>,
    called: std::collections::BTreeSet<Relation>,
}

impl Steps {
    fn push(&mut self, mut s: DataStep) {
        let last = self.steps.last();
        match &mut s.step {
            Step::Writes
                if last.is_some_and(|l| l.step == Step::Writes && l.relation == s.relation) =>
            {
                return;
            }
            Step::Calls { functions } => {
                functions.retain(|f| !self.called.contains(f));
                if functions.is_empty() {
                    return;
                }
                self.called.extend(functions.iter().cloned());
            }
            _ => {}
        }
        self.steps.push(s);
    }
}

/// The table of `INSERT INTO name` / `INSERT INTO schema.name`, read off its first
/// words, and the functions the rest calls, read off its words
/// ([`calls::calls_after`]); `None` for anything else, which is parsed.
fn insert_target(sql: &str) -> Option<(Relation, Vec<Relation>)> {
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
    let relation = if let Some(after) = rest.strip_prefix('.') {
        rest = after;
        let name = word(&mut rest)?;
        Relation {
            schema: Some(first),
            name,
        }
    } else {
        Relation {
            schema: None,
            name: first,
        }
    };
    Some((relation, calls::calls_after(rest)?))
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
        None => nobody(),
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

/// A name list (`schema.name` or `name`) as a relation.
fn named(list: &[Node]) -> Option<Relation> {
    let mut parts = strings(list);
    let name = parts.pop()?;
    Some(Relation {
        schema: parts.pop(),
        name,
    })
}

fn nobody() -> Relation {
    Relation {
        schema: None,
        name: String::new(),
    }
}

/// The data-modifying statements `stmt` runs besides itself, at any depth: those of
/// its WITH clauses (and theirs), of an INSERT's query, of a set operation's arms, of
/// the query an `EXPLAIN ANALYZE` or `CREATE TABLE AS` runs; each once, outermost
/// first. PostgreSQL runs every one of them (`WITH gone AS (DELETE FROM t RETURNING
/// id) SELECT count(*) FROM gone` deletes as `DELETE FROM t` does), so each is read
/// as if written alone.
pub(crate) fn modifying_parts(stmt: &N) -> Vec<&N> {
    let mut out = vec![];
    nested_in(stmt, &mut out);
    out
}

fn nested_in<'a>(stmt: &'a N, out: &mut Vec<&'a N>) {
    match stmt {
        N::SelectStmt(s) => select_in(s, out),
        N::InsertStmt(s) => {
            ctes_in(s.with_clause.as_ref(), out);
            if let Some(q) = s.select_stmt.as_deref().and_then(node) {
                nested_in(q, out);
            }
        }
        N::UpdateStmt(s) => ctes_in(s.with_clause.as_ref(), out),
        N::DeleteStmt(s) => ctes_in(s.with_clause.as_ref(), out),
        N::MergeStmt(s) => ctes_in(s.with_clause.as_ref(), out),
        N::ExplainStmt(s) => {
            let analyze =
                s.options.iter().filter_map(node).any(
                    |o| matches!(o, N::DefElem(d) if d.defname.eq_ignore_ascii_case("analyze")),
                );
            if let (true, Some(q)) = (analyze, s.query.as_deref().and_then(node)) {
                part(q, out);
            }
        }
        N::CreateTableAsStmt(s) => {
            if let Some(q) = s.query.as_deref().and_then(node) {
                nested_in(q, out);
            }
        }
        _ => {}
    }
}

/// A statement run as part of another: itself when it modifies data, then its parts.
fn part<'a>(q: &'a N, out: &mut Vec<&'a N>) {
    if matches!(
        q,
        N::DeleteStmt(_) | N::UpdateStmt(_) | N::InsertStmt(_) | N::MergeStmt(_)
    ) {
        out.push(q);
    }
    nested_in(q, out);
}

fn ctes_in<'a>(with: Option<&'a pg_query::protobuf::WithClause>, out: &mut Vec<&'a N>) {
    for cte in with.iter().flat_map(|w| &w.ctes).filter_map(node) {
        if let N::CommonTableExpr(c) = cte {
            if let Some(q) = c.ctequery.as_deref().and_then(node) {
                part(q, out);
            }
        }
    }
}

fn select_in<'a>(s: &'a pg_query::protobuf::SelectStmt, out: &mut Vec<&'a N>) {
    ctes_in(s.with_clause.as_ref(), out);
    for arm in [&s.larg, &s.rarg].into_iter().flatten() {
        select_in(arm, out);
    }
}

/// A nested statement's name: `DELETE` read from a WITH clause is `WITH … DELETE`.
fn in_with(statement: &'static str) -> &'static str {
    match statement {
        "DELETE without WHERE" => "WITH … DELETE without WHERE",
        "UPDATE without WHERE" => "WITH … UPDATE without WHERE",
        "DELETE" => "WITH … DELETE",
        "UPDATE" => "WITH … UPDATE",
        "INSERT" => "WITH … INSERT",
        "MERGE" => "WITH … MERGE",
        other => other,
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
                    N::AlterTableCmd(c) => alter::alter_cmd(c, &r),
                    _ => None,
                })
                .collect()
        }
        N::IndexStmt(s) if s.unique => {
            vec![(
                "CREATE UNIQUE INDEX",
                rel(&s.relation),
                alter::unique_index(s),
            )]
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
        N::DropStmt(s) => drops::drop_stmt(s),
        N::ViewStmt(s) if s.replace => {
            vec![("CREATE OR REPLACE VIEW", rel(&s.view), Step::Touches)]
        }
        N::TruncateStmt(s) => drops::truncate(s),
        N::CreateEnumStmt(s) => drops::create_enum(s),
        N::RenameStmt(s) => match drops::rename_type(s) {
            renamed if renamed.is_empty() => vec![("RENAME", nobody(), Step::MayCreate)],
            renamed => renamed,
        },
        N::AlterObjectSchemaStmt(_) => vec![("SET SCHEMA", nobody(), Step::MayCreate)],
        N::CreateForeignTableStmt(_) => {
            vec![("CREATE FOREIGN TABLE", nobody(), Step::MayCreate)]
        }
        N::CreateExtensionStmt(_) | N::AlterExtensionStmt(_) | N::AlterExtensionContentsStmt(_) => {
            vec![("EXTENSION", nobody(), Step::MayCreate)]
        }
        N::ImportForeignSchemaStmt(_) => {
            vec![("IMPORT FOREIGN SCHEMA", nobody(), Step::MayCreate)]
        }
        N::CreateSchemaStmt(s) if !s.schema_elts.is_empty() => {
            vec![("CREATE SCHEMA … CREATE", nobody(), Step::MayCreate)]
        }
        N::DeleteStmt(s) if s.where_clause.is_none() => {
            vec![("DELETE without WHERE", rel(&s.relation), Step::DeleteAll)]
        }
        N::UpdateStmt(s) if s.where_clause.is_none() => {
            vec![(
                "UPDATE without WHERE",
                rel(&s.relation),
                Step::UpdateAll {
                    sets: expr::sets(&s.target_list),
                },
            )]
        }
        N::DeleteStmt(s) => vec![(
            "DELETE",
            rel(&s.relation),
            expr::filtered(true, s.where_clause.as_deref()),
        )],
        N::UpdateStmt(s) => vec![(
            "UPDATE",
            rel(&s.relation),
            expr::updated(s.where_clause.as_deref(), &s.target_list),
        )],
        N::InsertStmt(s) => vec![("INSERT", rel(&s.relation), Step::Writes)],
        N::MergeStmt(s) => vec![("MERGE", rel(&s.relation), Step::Writes)],
        N::CopyStmt(s) if s.is_from => vec![("COPY", rel(&s.relation), Step::Writes)],
        N::DoStmt(_) => vec![("DO", nobody(), Step::Opaque)],
        N::CallStmt(_) => vec![("CALL", nobody(), Step::Opaque)],
        N::ExecuteStmt(_) => vec![("EXECUTE", nobody(), Step::Opaque)],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests;
