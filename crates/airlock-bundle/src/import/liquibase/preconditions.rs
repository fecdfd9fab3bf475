//! Liquibase `preConditions`, read and decided for the target the bundle is made for.
//! Read: `onFail`/`onError` (HALT, CONTINUE, MARK_RAN, WARN), `and`/`or`/`not`, and the
//! conditions Keycloak-style changelogs use (`dbms`, `tableExists`, `columnExists`,
//! `indexExists`, `foreignKeyConstraintExists`, `primaryKeyExists`,
//! `uniqueConstraintExists`, `sequenceExists`, `viewExists`, `sqlCheck`, `changeSetExecuted`, `runningAs`). Decided, changeset by
//! changeset in order: `dbms` from the text alone; `changeSetExecuted` from what this
//! import decided before it (and the target's DATABASECHANGELOG); the rest on a
//! [`PreconditionTarget`] (the target itself, read-only, or a throwaway database where
//! the changesets run in order).
//!
//! Invariant: never guessed: a condition import cannot decide, or one it does not
//! read, is refused by name (changeset, file:line, condition), and nothing is written.

use super::tree::Node;
use crate::import::{ImportError, Migration, Script};

/// A changeset as Liquibase knows it: (id, author, changelog file).
pub(in crate::import) type Ident = (String, String, String);

/// What Liquibase does when a precondition fails (`onFail`) or cannot be checked
/// (`onError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::import) enum OnFail {
    Halt,
    Continue,
    MarkRan,
    Warn,
}

impl OnFail {
    fn parse(v: &str) -> Option<OnFail> {
        match v.trim().to_ascii_uppercase().as_str() {
            "HALT" => Some(OnFail::Halt),
            "CONTINUE" => Some(OnFail::Continue),
            "MARK_RAN" => Some(OnFail::MarkRan),
            "WARN" => Some(OnFail::Warn),
            _ => None,
        }
    }
}

/// A condition that needs the database to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    TableExists {
        schema: String,
        table: String,
    },
    ColumnExists {
        schema: String,
        table: String,
        column: String,
    },
    /// By name, or by table (and columns, comma-separated in order).
    IndexExists {
        schema: String,
        table: Option<String>,
        index: Option<String>,
        columns: Option<String>,
    },
    ForeignKeyExists {
        schema: String,
        table: Option<String>,
        name: String,
    },
    PrimaryKeyExists {
        schema: String,
        table: Option<String>,
        name: Option<String>,
    },
    /// On a table, by name, or by columns (comma-separated, in order).
    UniqueConstraintExists {
        schema: String,
        table: String,
        name: Option<String>,
        columns: Option<String>,
    },
    SequenceExists {
        schema: String,
        name: String,
    },
    ViewExists {
        schema: String,
        name: String,
    },
    /// The single value `sql` answers, as text, equals `expected`.
    SqlCheck {
        expected: String,
        sql: String,
    },
    RunningAs {
        user: String,
    },
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "*".into());
        match self {
            Check::TableExists { schema, table } => write!(f, "tableExists {schema}.{table}"),
            Check::ColumnExists {
                schema,
                table,
                column,
            } => write!(f, "columnExists {schema}.{table}.{column}"),
            Check::IndexExists {
                schema,
                table,
                index,
                columns,
            } => write!(
                f,
                "indexExists {} on {schema}.{}{}",
                opt(index),
                opt(table),
                columns
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
            Check::ForeignKeyExists {
                schema,
                table,
                name,
            } => {
                write!(
                    f,
                    "foreignKeyConstraintExists {name} on {schema}.{}",
                    opt(table)
                )
            }
            Check::PrimaryKeyExists {
                schema,
                table,
                name,
            } => {
                write!(
                    f,
                    "primaryKeyExists {} on {schema}.{}",
                    opt(name),
                    opt(table)
                )
            }
            Check::UniqueConstraintExists {
                schema,
                table,
                name,
                columns,
            } => write!(
                f,
                "uniqueConstraintExists {} on {schema}.{table}{}",
                opt(name),
                columns
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
            Check::SequenceExists { schema, name } => write!(f, "sequenceExists {schema}.{name}"),
            Check::ViewExists { schema, name } => write!(f, "viewExists {schema}.{name}"),
            Check::SqlCheck { expected, sql } => {
                write!(
                    f,
                    "sqlCheck `{}` = {expected:?}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" ")
                )
            }
            Check::RunningAs { user } => write!(f, "runningAs {user}"),
        }
    }
}

impl Check {
    /// What the check reads, by name as written: the objects (tables, indexes,
    /// constraints, sequences, views; a `sqlCheck`'s relations and regclass texts,
    /// each its last name) and the functions a `sqlCheck` calls. `Err`: a `sqlCheck`
    /// the parser cannot read.
    pub fn reads(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let own = |v: &[&Option<String>]| v.iter().filter_map(|n| n.as_ref().cloned()).collect();
        let objects = match self {
            Check::TableExists { table, .. } | Check::ColumnExists { table, .. } => {
                vec![table.clone()]
            }
            Check::IndexExists { table, index, .. } => own(&[table, index]),
            Check::ForeignKeyExists { table, name, .. } => {
                let mut v: Vec<String> = own(&[table]);
                v.push(name.clone());
                v
            }
            Check::PrimaryKeyExists { table, name, .. } => own(&[table, name]),
            Check::UniqueConstraintExists { table, name, .. } => {
                let mut v: Vec<String> = own(&[name]);
                v.push(table.clone());
                v
            }
            Check::SequenceExists { name, .. } | Check::ViewExists { name, .. } => {
                vec![name.clone()]
            }
            Check::SqlCheck { sql, .. } => {
                let r = airlock_sql::reads_of(sql)?;
                let last = |t: &str| {
                    t.rsplit('.')
                        .next()
                        .unwrap_or(t)
                        .trim_matches('"')
                        .to_string()
                };
                let objects = (r.relations.into_iter().map(|(_, rel)| rel))
                    .chain(r.regclass_texts.iter().map(|t| last(t)))
                    .collect();
                return Ok((objects, r.functions));
            }
            Check::RunningAs { .. } => vec![],
        };
        Ok((objects, vec![]))
    }
}

/// A precondition tree.
#[derive(Clone, Debug)]
pub(in crate::import) enum Cond {
    /// `and` (and the `preConditions` element itself): all hold.
    All(Vec<Cond>),
    /// `or`: one holds.
    Any(Vec<Cond>),
    /// `not`: none holds (Liquibase fails `not` when any nested one passes).
    None(Vec<Cond>),
    /// `dbms type="postgresql,h2"`: decided from the text.
    Dbms(String),
    /// `changeSetExecuted`: decided from what ran before.
    Executed {
        id: String,
        author: String,
        file: String,
    },
    Db(Check),
}

/// A `preConditions` element, read.
#[derive(Clone, Debug)]
pub(in crate::import) struct Preconds {
    pub on_fail: OnFail,
    pub on_error: OnFail,
    pub cond: Cond,
    /// `file:line` of the element.
    pub at: String,
}

/// What Liquibase knows a changeset by, and its preconditions.
#[derive(Clone, Debug)]
pub(in crate::import) struct ChangeSetId {
    pub id: String,
    pub author: String,
    /// The changelog, as the folder names it: where it is read from (messages, tier
    /// names, the report).
    pub file: String,
    /// Its file as Liquibase knows it: the FILENAME of its DATABASECHANGELOG row, and
    /// a third of its identity (id, author, path): the changeset's `logicalFilePath`,
    /// else its changelog's, else `file`. Row matching (`--history`),
    /// `changeSetExecuted` and the rows import writes use this, never `file`.
    pub path: String,
    /// `file:line` of the changeset.
    pub at: String,
    pub pre: Option<Preconds>,
    /// The root changelog's own `preConditions`, carried by its first changeset:
    /// decided before it, on the state before any changeset runs.
    pub changelog_pre: Option<Preconds>,
    /// The target's DATABASECHANGELOG records it (EXECUTED, or MARK_RAN when
    /// `marked`): set by [`decide`].
    pub ran_before: bool,
    /// Its checksum as Liquibase computes it (`checksum.rs`), or why import cannot.
    pub sum: super::checksum::Sum,
    /// The checksums its `validCheckSum`s accept besides its own (`ANY`: all).
    pub valid: Vec<String>,
    /// What its DATABASECHANGELOG row says besides its identity (`history.rs`).
    pub row: RowText,
    /// Its `customChange`s, and what the team mapped each to (`custom.rs`).
    pub custom: Vec<super::custom::Found>,
    /// The changesets Liquibase records with it that are no tier (MARK_RAN by a
    /// precondition, or running no statement), in order: before it, or (the last
    /// changesets of the changelog) after it.
    pub with: Vec<Recorded>,
}

/// A DATABASECHANGELOG row's text besides the changeset's identity.
#[derive(Clone, Debug, Default)]
pub(in crate::import) struct RowText {
    /// Its changes' names, `; ` between.
    pub description: String,
    /// Its `<comment>`.
    pub comments: Option<String>,
    /// The tag of its `tagDatabase`.
    pub tag: Option<String>,
}

/// A changeset Liquibase records that is no tier.
#[derive(Clone, Debug)]
pub(in crate::import) struct Recorded {
    pub cs: ChangeSetId,
    /// `EXECUTED` or `MARK_RAN`.
    pub exectype: &'static str,
    /// Recorded after the changeset that carries it (else before).
    pub after: bool,
}

/// The attributes each condition may carry (Liquibase reads these; import too).
fn known_attrs(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "dbms" => &["type"],
        "tableExists" => &["tableName", "schemaName", "catalogName"],
        "columnExists" => &["tableName", "columnName", "schemaName", "catalogName"],
        "indexExists" => &[
            "indexName",
            "tableName",
            "columnNames",
            "schemaName",
            "catalogName",
        ],
        "foreignKeyConstraintExists" => &[
            "foreignKeyName",
            "foreignKeyTableName",
            "schemaName",
            "catalogName",
        ],
        "primaryKeyExists" => &["primaryKeyName", "tableName", "schemaName", "catalogName"],
        "uniqueConstraintExists" => &[
            "constraintName",
            "tableName",
            "columnNames",
            "schemaName",
            "catalogName",
        ],
        "sequenceExists" => &["sequenceName", "schemaName", "catalogName"],
        "viewExists" => &["viewName", "schemaName", "catalogName"],
        "sqlCheck" => &["expectedResult", "sql"],
        "changeSetExecuted" => &["id", "author", "changeLogFile"],
        "runningAs" => &["username"],
        "and" | "or" | "not" => &[],
        _ => return None,
    })
}

/// The `preConditions` attributes (XML attributes; YAML list items).
const PRE_ATTRS: [&str; 6] = [
    "onFail",
    "onError",
    "onFailMessage",
    "onErrorMessage",
    "onSqlOutput",
    "onUpdateSql",
];

/// A name as PostgreSQL's catalog holds it when Liquibase (LEGACY quoting) writes it:
/// one case folded to lower case, a mixed-case name as written.
fn catalog_name(n: &str) -> String {
    let upper = n.chars().any(|c| c.is_ascii_uppercase());
    let lower = n.chars().any(|c| c.is_ascii_lowercase());
    if upper && lower {
        n.to_string()
    } else {
        n.to_ascii_lowercase()
    }
}

/// Read the `preConditions` element `n` of `file`.
pub(in crate::import) fn read(file: &str, n: &Node) -> Result<Preconds, String> {
    let at = n.at(file);
    let attr = |k: &str| {
        n.attr(k).map(str::to_string).or_else(|| {
            (n.children.iter())
                .find(|c| c.name == k)
                .map(|c| c.text.trim().to_string())
        })
    };
    if let Some((k, _)) = n
        .attrs
        .iter()
        .find(|(k, _)| !PRE_ATTRS.contains(&k.as_str()))
    {
        return Err(format!(
            "`preConditions` with `{k}`, which import does not read"
        ));
    }
    let on = |k: &str| -> Result<OnFail, String> {
        match attr(k) {
            None => Ok(OnFail::Halt),
            Some(v) => OnFail::parse(&v).ok_or_else(|| {
                format!("`{k}=\"{v}\"`: Liquibase knows HALT, CONTINUE, MARK_RAN and WARN")
            }),
        }
    };
    let (on_fail, on_error) = (on("onFail")?, on("onError")?);
    let kids: Vec<&Node> = (n.children.iter())
        .filter(|c| !PRE_ATTRS.contains(&c.name.as_str()))
        .collect();
    let mut all = vec![];
    for c in kids {
        all.push(cond(file, c)?);
    }
    Ok(Preconds {
        on_fail,
        on_error,
        cond: Cond::All(all),
        at,
    })
}

/// One condition (and what it nests).
fn cond(file: &str, n: &Node) -> Result<Cond, String> {
    let Some(known) = known_attrs(&n.name) else {
        return Err(format!(
            "the precondition `{}` ({}), which import does not read",
            n.name,
            n.at(file)
        ));
    };
    if let Some((k, _)) = n.attrs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(format!(
            "`{}` with `{k}` ({}), which import does not read",
            n.name,
            n.at(file)
        ));
    }
    if let Some(c) = n.attr("catalogName") {
        return Err(format!("`{}` with `catalogName=\"{c}\"` ({}): a PostgreSQL database has one catalog; remove it", n.name, n.at(file)));
    }
    let need = |k: &str| {
        n.attr(k)
            .map(str::to_string)
            .ok_or_else(|| format!("`{}` without `{k}` ({})", n.name, n.at(file)))
    };
    let nested =
        || -> Result<Vec<Cond>, String> { n.children.iter().map(|c| cond(file, c)).collect() };
    Ok(match n.name.as_str() {
        "and" => Cond::All(nested()?),
        "or" => Cond::Any(nested()?),
        "not" => Cond::None(nested()?),
        "dbms" => Cond::Dbms(need("type")?),
        "changeSetExecuted" => Cond::Executed {
            id: need("id")?,
            author: need("author")?,
            file: need("changeLogFile")?,
        },
        _ => Cond::Db(db_check(file, n)?),
    })
}

/// A `columnNames` list (`A, B`) as the catalog holds the names: `a,b`.
fn catalog_names(list: &str) -> String {
    list.split(',')
        .map(|p| catalog_name(p.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A condition the database answers (`n` is one of those [`known_attrs`] names).
fn db_check(file: &str, n: &Node) -> Result<Check, String> {
    let need = |k: &str| {
        n.attr(k)
            .map(str::to_string)
            .ok_or_else(|| format!("`{}` without `{k}` ({})", n.name, n.at(file)))
    };
    let schema = n.attr("schemaName").map_or("public".into(), catalog_name);
    let name = |k: &str| need(k).map(|v| catalog_name(&v));
    let opt = |k: &str| n.attr(k).map(catalog_name);
    Ok(match n.name.as_str() {
        "tableExists" => Check::TableExists {
            schema,
            table: name("tableName")?,
        },
        "columnExists" => Check::ColumnExists {
            schema,
            table: name("tableName")?,
            column: name("columnName")?,
        },
        "indexExists" => {
            let (index, table) = (opt("indexName"), opt("tableName"));
            if index.is_none() && table.is_none() {
                return Err(format!(
                    "`indexExists` without `indexName` or `tableName` ({})",
                    n.at(file)
                ));
            }
            let columns = n.attr("columnNames").map(catalog_names);
            Check::IndexExists {
                schema,
                table,
                index,
                columns,
            }
        }
        "foreignKeyConstraintExists" => Check::ForeignKeyExists {
            schema,
            table: opt("foreignKeyTableName"),
            name: name("foreignKeyName")?,
        },
        "primaryKeyExists" => {
            let (table, pk) = (opt("tableName"), opt("primaryKeyName"));
            if table.is_none() && pk.is_none() {
                return Err(format!(
                    "`primaryKeyExists` without `tableName` or `primaryKeyName` ({})",
                    n.at(file)
                ));
            }
            Check::PrimaryKeyExists {
                schema,
                table,
                name: pk,
            }
        }
        "uniqueConstraintExists" => {
            let (constraint, columns) = (opt("constraintName"), n.attr("columnNames"));
            if constraint.is_none() && columns.is_none() {
                return Err(format!(
                    "`uniqueConstraintExists` without `constraintName` or `columnNames` ({})",
                    n.at(file)
                ));
            }
            Check::UniqueConstraintExists {
                schema,
                table: name("tableName")?,
                name: constraint,
                columns: columns.map(catalog_names),
            }
        }
        "sequenceExists" => Check::SequenceExists {
            schema,
            name: name("sequenceName")?,
        },
        "viewExists" => Check::ViewExists {
            schema,
            name: name("viewName")?,
        },
        "sqlCheck" => {
            let sql = n.get("sql").unwrap_or_else(|| n.text.clone());
            let sql = sql.trim().trim_end_matches(';').trim().to_string();
            if sql.is_empty() {
                return Err(format!("`sqlCheck` without SQL ({})", n.at(file)));
            }
            Check::SqlCheck {
                expected: need("expectedResult")?,
                sql,
            }
        }
        "runningAs" => Check::RunningAs {
            user: need("username")?,
        },
        _ => unreachable!("known_attrs names every condition"),
    })
}

/// Whether a changeset's `dbms` list (`postgresql,h2`, `!oracle`, `all`) leaves
/// PostgreSQL out, as Liquibase reads it.
pub(in crate::import) fn not_for_postgres(dbms: &str) -> bool {
    let list: Vec<String> = dbms
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    let ours = list.iter().any(|d| d == "postgresql" || d == "all");
    let excluded = list.iter().any(|d| d == "!postgresql");
    excluded || (!ours && !list.iter().all(|d| d.starts_with('!')))
}

/// Whether a `dbms type` list names PostgreSQL, as Liquibase reads it.
fn dbms_holds(list: &str) -> bool {
    !not_for_postgres(list)
}

/// What answers the conditions that need a database, and runs the changesets that
/// build its state: the target the bundle is made for (a throwaway database airlock
/// made, at import).
pub trait PreconditionTarget {
    /// Said in the report: where the preconditions were decided.
    fn describe(&self) -> String;
    /// Run a changeset's SQL there, in order, as its tier would run; `applied`: the
    /// target's DATABASECHANGELOG records it run (its effects are there already).
    fn run(&self, label: &str, sql: &[u8], online: bool, applied: bool) -> Result<(), String>;
    /// Whether `check` holds there now; Err: it could not be checked (Liquibase's
    /// `onError`).
    fn holds(&self, check: &Check) -> Result<bool, CheckError>;
    /// What the decisions made on the target assumed of it, for the bundle's
    /// preflight to ask again at apply (a decision is about the moment import asked;
    /// the apply acts later).
    fn held(&self) -> Vec<Held> {
        vec![]
    }
}

/// One assumption of a decision, asked again by the bundle's preflight: `expr` (one
/// SQL value, cast to text) must still give `expect`.
#[derive(Clone, Debug)]
pub struct Held {
    /// The preflight's key.
    pub key: String,
    /// A scalar SQL expression.
    pub expr: String,
    /// What it gave when import decided.
    pub expect: String,
    /// Said above it in the probe file.
    pub why: String,
}

/// A `sqlCheck`'s answer from the first column of its rows, as Liquibase reads it:
/// one value, compared as text; no row (or NULL) fails it; more than one row is an
/// error (`onError` decides).
pub fn sql_check_answer(values: &[Option<String>], expected: &str) -> Result<bool, CheckError> {
    match values {
        [Some(v)] => Ok(v == expected),
        [None] | [] => Ok(false),
        more => Err(CheckError::Error(format!(
            "{} rows returned, not one",
            more.len()
        ))),
    }
}

/// Why a check has no answer.
#[derive(Debug)]
pub enum CheckError {
    /// The database answered with an error (a `sqlCheck`'s SQL failed): Liquibase's
    /// `onError` decides.
    Error(String),
    /// The session is gone, or the operator interrupted: the import stops.
    Stop(String),
    /// The database cannot answer it yet (it reads what a changeset earlier in this
    /// import writes): refused, saying why and the way out.
    TooSoon(String),
}

/// A condition's value: decided, or not without a database.
type Tri = Option<bool>;

/// The evaluation of a precondition tree: `ran` answers changeSetExecuted, `db` the
/// rest (None: no database to ask). `said` collects each leaf's answer, for the report.
struct Eval<'a> {
    ran: &'a dyn Fn(&str, &str, &str) -> bool,
    db: Option<&'a dyn PreconditionTarget>,
    said: Vec<String>,
}

impl Eval<'_> {
    fn eval(&mut self, c: &Cond) -> Result<Tri, CheckError> {
        match c {
            Cond::All(cs) => {
                let mut out = Some(true);
                for c in cs {
                    match self.eval(c)? {
                        Some(false) => return Ok(Some(false)),
                        None => out = None,
                        Some(true) => {}
                    }
                }
                Ok(out)
            }
            Cond::Any(cs) => {
                let mut out = Some(false);
                for c in cs {
                    match self.eval(c)? {
                        Some(true) => return Ok(Some(true)),
                        None => out = None,
                        Some(false) => {}
                    }
                }
                Ok(out)
            }
            Cond::None(cs) => Ok(self.eval(&Cond::Any(cs.clone()))?.map(|b| !b)),
            Cond::Dbms(list) => {
                let v = dbms_holds(list);
                self.said.push(format!("dbms {list}: {v}"));
                Ok(Some(v))
            }
            Cond::Executed { id, author, file } => {
                let v = (self.ran)(id, author, file);
                self.said
                    .push(format!("changeSetExecuted {author}:{id} ({file}): {v}"));
                Ok(Some(v))
            }
            Cond::Db(check) => match self.db {
                None => Ok(None),
                Some(db) => {
                    let v = db.holds(check).map_err(|e| match e {
                        CheckError::Error(e) => CheckError::Error(format!("{check}: {e}")),
                        CheckError::Stop(e) => CheckError::Stop(format!("{check}: {e}")),
                        CheckError::TooSoon(e) => CheckError::TooSoon(format!("{check}: {e}")),
                    })?;
                    self.said.push(format!("{check}: {v}"));
                    Ok(Some(v))
                }
            },
        }
    }
}

/// The user of a `runningAs` in `c`, if any.
fn running_as(c: &Cond) -> Option<&str> {
    match c {
        Cond::All(cs) | Cond::Any(cs) | Cond::None(cs) => cs.iter().find_map(running_as),
        Cond::Db(Check::RunningAs { user }) => Some(user),
        _ => None,
    }
}

/// The conditions of `c` that need a database, for a refusal.
fn db_checks(c: &Cond, out: &mut Vec<String>) {
    match c {
        Cond::All(cs) | Cond::Any(cs) | Cond::None(cs) => cs.iter().for_each(|c| db_checks(c, out)),
        Cond::Db(check) => out.push(check.to_string()),
        Cond::Dbms(_) | Cond::Executed { .. } => {}
    }
}

/// A changeset as Liquibase's DATABASECHANGELOG records it.
#[derive(Clone, Debug)]
pub struct RanChangeSet {
    pub id: String,
    pub author: String,
    pub filename: String,
    /// EXECUTED or MARK_RAN (other rows are not read as applied).
    pub exectype: String,
    /// Its MD5SUM (`9:…` as Liquibase 4.24 and later write it; NULL once cleared).
    pub md5sum: Option<String>,
}

/// What import decided of a changeset with preconditions (or one the target's
/// DATABASECHANGELOG records), and why.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Decided {
    /// `author:id`.
    pub changeset: String,
    /// `file:line` of the changeset.
    pub at: String,
    /// `run`, `skipped` (onFail CONTINUE), `mark-ran` (onFail MARK_RAN: Liquibase
    /// records it as run without running it), `run-warned` (onFail WARN), `applied`
    /// (DATABASECHANGELOG records it executed), `marked-ran` (it records it MARK_RAN),
    /// `released` (an earlier release carried it: `--since`).
    pub outcome: String,
    /// Each condition's answer, or the history row.
    pub why: String,
}

/// Whether a changelog path as Liquibase records or names it (`classpath:a/b.xml`,
/// `/abs/…/a/b.xml`) is the folder's `file`.
pub(in crate::import) fn same_file(recorded: &str, file: &str) -> bool {
    let norm = |s: &str| {
        s.trim()
            .trim_start_matches("classpath:")
            .trim_start_matches('/')
            .to_string()
    };
    let (a, b) = (norm(recorded), norm(file));
    a == b || a.ends_with(&format!("/{b}")) || b.ends_with(&format!("/{a}"))
}

/// A precondition refusal at the changeset `c`.
fn refusal(c: &ChangeSetId, pre_at: &str, why: String, undecided: bool) -> ImportError {
    ImportError::Precondition {
        at: format!("{} (preConditions at {pre_at})", c.at),
        changeset: format!("{}:{}", c.author, c.id),
        why,
        undecided,
    }
}

/// The outcome of one `preConditions` on the changeset `c`.
enum Outcome {
    Run(String),
    Skip(String),
    MarkRan(String),
    Warn(String),
}

/// Decide `p` for `c`: static where it can be, else on `db`.
fn judge(
    c: &ChangeSetId,
    p: &Preconds,
    ran: &dyn Fn(&str, &str, &str) -> bool,
    db: Option<&dyn PreconditionTarget>,
    history: bool,
) -> Result<Outcome, ImportError> {
    if let Some(user) = running_as(&p.cond) {
        return Err(refusal(c, &p.at, format!("`runningAs username=\"{user}\"`: it depends on the login that will apply the bundle, which import cannot know; remove it (airlock's deploy login is chosen at apply), then import"), false));
    }
    let mut e = Eval {
        ran,
        db,
        said: vec![],
    };
    let value = e.eval(&p.cond);
    let said = |e: &Eval| e.said.join("; ");
    let (value, policy, what) = match value {
        Ok(Some(true)) => return Ok(Outcome::Run(said(&e))),
        Ok(Some(false)) => (false, p.on_fail, "failed"),
        Err(CheckError::Stop(why)) => {
            return Err(ImportError::PreconditionTarget {
                changeset: format!("{}:{}", c.author, c.id),
                at: p.at.clone(),
                why,
            })
        }
        Err(CheckError::TooSoon(why)) => {
            return Err(ImportError::PreconditionTooSoon {
                at: format!("{} (preConditions at {})", c.at, p.at),
                changeset: format!("{}:{}", c.author, c.id),
                why: format!("`preConditions`: {why}"),
            })
        }
        Err(CheckError::Error(why)) => {
            e.said.push(format!("error: {why}"));
            (false, p.on_error, "could not be checked")
        }
        Ok(None) => {
            let mut checks = vec![];
            db_checks(&p.cond, &mut checks);
            let route = if history {
                "the target's DATABASECHANGELOG does not decide it; add --fresh-on CONN so import replays the applied changesets on a throwaway database and decides it there"
            } else {
                "it depends on the database the bundle is for"
            };
            return Err(refusal(
                c,
                &p.at,
                format!("`preConditions` ({}): {route}", checks.join(", ")),
                true,
            ));
        }
    };
    let _ = value;
    let text = format!("{what} ({})", said(&e));
    Ok(match policy {
        OnFail::Halt => {
            return Err(refusal(c, &p.at, format!("`preConditions` {text}, and its onFail/onError is HALT: Liquibase stops the update here"), false))
        }
        OnFail::Continue => Outcome::Skip(text),
        OnFail::MarkRan => Outcome::MarkRan(text),
        OnFail::Warn => Outcome::Warn(text),
    })
}

/// The changesets of `migrations` Liquibase would run on the target, in order: each
/// one's preconditions decided (statically, else on `db`, which runs the changesets
/// it keeps); those the target's DATABASECHANGELOG (`history`) records are kept with
/// `ran_before` set (the caller leaves them out as applied). `decided` says what was
/// decided and why.
pub(in crate::import) fn decide(
    folder: &crate::import::folder::Folder,
    migrations: Vec<Migration>,
    (history, quiet, released): (
        Option<&[RanChangeSet]>,
        &[ChangeSetId],
        &[crate::spec::Released],
    ),
    db: Option<&dyn PreconditionTarget>,
    decided: &mut Vec<Decided>,
) -> Result<Vec<Migration>, ImportError> {
    if let Some(rows) = history {
        check_rows(&migrations, quiet, rows)?;
    }
    // (id, author, file) of each changeset Liquibase records as run so far (those
    // that write no tier counted as run: Liquibase runs them, with no precondition).
    let mut ran: Vec<Ident> = (history.unwrap_or_default().iter())
        .map(|r| (r.id.clone(), r.author.clone(), r.filename.clone()))
        .chain(
            quiet
                .iter()
                .map(|c| (c.id.clone(), c.author.clone(), c.path.clone())),
        )
        .collect();
    let mut out = vec![];
    // The root changelog's preConditions, when its first changeset is applied already:
    // Liquibase checks them on the database as it is, which is the state before the
    // first changeset not applied.
    let mut pending = None;
    // Changesets Liquibase records that are no tier, until the next that is one.
    let mut marked: Vec<Recorded> = vec![];
    for mut m in migrations {
        let Some(mut c) = m.lb.as_deref().cloned() else {
            out.push(m);
            continue;
        };
        if c.changelog_pre.is_none() {
            c.changelog_pre = pending.take();
        }
        let label = format!("{}:{}", c.author, c.id);
        let row = history.and_then(|rows| {
            rows.iter()
                .find(|r| r.id == c.id && r.author == c.author && same_file(&r.filename, &c.path))
        });
        if let Some(before) = decided_before(&c, &m.label, released, row) {
            pending = c.changelog_pre.take();
            decided.extend(before.said);
            if !before.recorded {
                ran.push((c.id.clone(), c.author.clone(), c.path.clone()));
            }
            if before.ran_there {
                replay(folder, db, &m, true)?;
            }
            if let Some(lb) = m.lb.as_deref_mut().filter(|_| before.recorded) {
                lb.ran_before = true;
            }
            out.push(m);
            continue;
        }
        let Some((name, why, keep)) = judge_all(&c, &ran, db, history.is_some())? else {
            ran.push((c.id.clone(), c.author.clone(), c.path.clone()));
            replay(folder, db, &m, false)?;
            carry(&mut m, &mut marked);
            out.push(m);
            continue;
        };
        decided.push(Decided {
            changeset: label,
            at: c.at.clone(),
            outcome: name.into(),
            why,
        });
        if name != "skipped" {
            ran.push((c.id.clone(), c.author.clone(), c.path.clone()));
        }
        if keep {
            replay(folder, db, &m, false)?;
            carry(&mut m, &mut marked);
            out.push(m);
        } else {
            no_tier(c, name == "mark-ran", &mut marked);
        }
    }
    // The changesets after the last tier that Liquibase records: with the last.
    if let Some(lb) = out.last_mut().and_then(|m| m.lb.as_deref_mut()) {
        lb.with
            .extend(marked.into_iter().map(|r| Recorded { after: true, ..r }));
    }
    Ok(out)
}

/// A changeset decided before this import ([`decided_before`]).
struct Before {
    /// What the report says of it (a released changeset without preconditions: none).
    said: Option<Decided>,
    /// It ran on the target: its effects are there.
    ran_there: bool,
    /// DATABASECHANGELOG records it (the caller leaves it out as applied).
    recorded: bool,
}

/// The changeset `c` (`label`, the migration's) if it was decided before this import:
/// an earlier release carried it (`--since`: decided then, applied with it, its
/// preconditions never asked again), or DATABASECHANGELOG records it (`row`).
fn decided_before(
    c: &ChangeSetId,
    label: &str,
    released: &[crate::spec::Released],
    row: Option<&RanChangeSet>,
) -> Option<Before> {
    let name = format!("{}:{}", c.author, c.id);
    if let Some(r) = released.iter().find(|r| r.migration == label) {
        let asked = c.pre.is_some() || c.changelog_pre.is_some();
        return Some(Before {
            said: asked.then(|| Decided {
                changeset: name,
                at: c.at.clone(),
                outcome: "released".into(),
                why: format!("release {} carried it: not asked again", r.release),
            }),
            ran_there: true,
            recorded: false,
        });
    }
    let r = row?;
    let executed = r.exectype.eq_ignore_ascii_case("EXECUTED");
    Some(Before {
        said: Some(Decided {
            changeset: name,
            at: c.at.clone(),
            outcome: if executed { "applied" } else { "marked-ran" }.into(),
            why: format!(
                "DATABASECHANGELOG records it {} ({})",
                r.exectype, r.filename
            ),
        }),
        ran_there: executed,
        recorded: true,
    })
}

/// A changeset that is no tier: what Liquibase records with it (and its own MARK_RAN
/// row, when `mark_ran`) goes with the next that is one (`marked`).
fn no_tier(mut c: ChangeSetId, mark_ran: bool, marked: &mut Vec<Recorded>) {
    let own = std::mem::take(&mut c.with);
    let (before, after): (Vec<_>, Vec<_>) = own.into_iter().partition(|r| !r.after);
    marked.extend(before);
    if mark_ran {
        marked.push(Recorded {
            cs: c,
            exectype: "MARK_RAN",
            after: false,
        });
    }
    marked.extend(after);
}

/// The changesets recorded before `m` that are no tier (`marked`) go with it.
fn carry(m: &mut Migration, marked: &mut Vec<Recorded>) {
    if let Some(lb) = m.lb.as_deref_mut() {
        let mut with = std::mem::take(marked);
        with.append(&mut lb.with);
        lb.with = with;
    }
}

/// The changeset `c`'s preconditions (its changelog's, then its own) decided: None
/// when it has none; else (outcome, why, whether it runs).
fn judge_all(
    c: &ChangeSetId,
    ran: &[Ident],
    db: Option<&dyn PreconditionTarget>,
    history: bool,
) -> Result<Option<(&'static str, String, bool)>, ImportError> {
    if c.pre.is_none() && c.changelog_pre.is_none() {
        return Ok(None);
    }
    let is_ran = |id: &str, author: &str, file: &str| {
        ran.iter()
            .any(|(i, a, f)| i == id && a == author && same_file(f, file))
    };
    let mut said = vec![];
    let mut warned = false;
    if let Some(p) = &c.changelog_pre {
        match judge(c, p, &is_ran, db, history)? {
            Outcome::Run(w) => said.push(format!("the changelog's preConditions passed ({w})")),
            Outcome::Warn(w) => {
                warned = true;
                said.push(format!("the changelog's preConditions {w} (onFail WARN)"))
            }
            Outcome::Skip(_) | Outcome::MarkRan(_) => return Err(refusal(c, &p.at, "the changelog's own `preConditions` failed with onFail/onError CONTINUE or MARK_RAN, which import does not decide; make them HALT or WARN, or remove them".into(), false)),
        }
    }
    let Some(p) = &c.pre else {
        let name = if warned { "run-warned" } else { "run" };
        return Ok(Some((name, said.join("; "), true)));
    };
    Ok(Some(match judge(c, p, &is_ran, db, history)? {
        Outcome::Run(w) => {
            said.push(format!("passed ({w})"));
            (
                if warned { "run-warned" } else { "run" },
                said.join("; "),
                true,
            )
        }
        Outcome::Warn(w) => {
            said.push(format!("{w}: onFail WARN runs it"));
            ("run-warned", said.join("; "), true)
        }
        Outcome::Skip(w) => {
            said.push(format!(
                "{w}: onFail CONTINUE skips it (Liquibase tries it again on the next update)"
            ));
            ("skipped", said.join("; "), false)
        }
        Outcome::MarkRan(w) => {
            said.push(format!(
                "{w}: onFail MARK_RAN records it as run without running it"
            ));
            ("mark-ran", said.join("; "), false)
        }
    }))
}

/// Run `m` on `db` (if any), so later preconditions see what it built.
fn replay(
    folder: &crate::import::folder::Folder,
    db: Option<&dyn PreconditionTarget>,
    m: &Migration,
    applied: bool,
) -> Result<(), ImportError> {
    let (Some(db), Some(up)) = (db, &m.up) else {
        return Ok(());
    };
    let bytes = up.bytes(folder)?;
    db.run(&m.label, &bytes, m.up_online || m.commits_apart, applied)
        .map_err(|why| ImportError::PreconditionTarget {
            changeset: m.label.clone(),
            at: match up {
                Script::File(f) => f.clone(),
                Script::Section { from, .. } => from.clone(),
            },
            why,
        })
}

/// A DATABASECHANGELOG row naming no changeset of the changelog is refused: the
/// changelog is behind the database (or is another's); so is one whose MD5SUM is not
/// the changeset's checksum ([`check_sum`]).
fn check_rows(
    migrations: &[Migration],
    quiet: &[ChangeSetId],
    rows: &[RanChangeSet],
) -> Result<(), ImportError> {
    let all = || (migrations.iter().filter_map(|m| m.lb.as_deref())).chain(quiet.iter());
    let mut errors = vec![];
    for r in rows {
        let found =
            all().find(|c| c.id == r.id && c.author == r.author && same_file(&r.filename, &c.path));
        let Some(c) = found else {
            let head = format!(
                "records changeset {}:{} of {} ({})",
                r.author, r.id, r.filename, r.exectype
            );
            // The same id and author under another path: say which path Liquibase
            // knows it by, since that is what the row must name.
            let why = match all().find(|c| c.id == r.id && c.author == r.author) {
                Some(c) if c.path != c.file => format!("{head}; the changelog has {}:{} in {}, which Liquibase records as `{}` (a changeset's logicalFilePath where one is set, else its file's path on Liquibase's search path), and Liquibase knows a changeset by its id, author and that path: this row is another changelog's, or was written under the file's own name; make the row's FILENAME `{}` if it is this changeset", c.author, c.id, c.file, c.path, c.path),
                Some(c) => format!("{head}; the changelog has {}:{} in {}, and Liquibase knows a changeset by its id, author and path: this row is another changelog's, or the changelog was run under another path (Liquibase records the path its `--changelog-file` and includes name; a `logicalFilePath` on the changelog or changeset sets it)", c.author, c.id, c.file),
                None => format!("{head}, which the changelog does not have: it is behind the database, or another changelog's"),
            };
            errors.push(ImportError::Layout {
                file: "public.databasechangelog".into(),
                why,
            });
            continue;
        };
        errors.extend(check_sum(c, r).err());
    }
    crate::import::refuse_all(errors)
}

/// The row `r`'s MD5SUM against the changeset `c`, as Liquibase validates it: a NULL
/// (cleared by `clear-checksums`) is accepted (Liquibase records the changelog's
/// current checksum then); one its `validCheckSum`s list (or `ANY`) is accepted; a
/// `9:` must equal the checksum import computes. An older version's (`1:`–`8:`)
/// Liquibase checks with that version's algorithm before it rewrites it, which import
/// does not have: refused, as is a changeset whose checksum import cannot compute.
fn check_sum(c: &ChangeSetId, r: &RanChangeSet) -> Result<(), ImportError> {
    let Some(stored) = r.md5sum.as_deref().map(str::trim) else {
        return Ok(());
    };
    if (c.valid.iter()).any(|v| v.eq_ignore_ascii_case("ANY") || v == stored) {
        return Ok(());
    }
    let unknown = |why: String| ImportError::ChecksumUnknown {
        at: c.at.clone(),
        changeset: format!("{}:{}", c.author, c.id),
        recorded: stored.to_string(),
        why,
    };
    let computed = c.sum.clone().map_err(|why| {
        unknown(format!(
            "import cannot compute Liquibase's checksum of it ({why})"
        ))
    })?;
    if !stored.starts_with("9:") {
        return Err(unknown("a checksum of an older Liquibase version, which import cannot recompute (Liquibase 4.24 and later check it with that version's algorithm, then record a `9:` one)".into()));
    }
    if stored != computed {
        return Err(ImportError::ChecksumMismatch {
            at: c.at.clone(),
            changeset: format!("{}:{}", c.author, c.id),
            recorded: stored.to_string(),
            computed,
        });
    }
    Ok(())
}

/// What `decided` adds to bundle.toml: each decision as a comment, and, when they
/// were decided on a fresh database (`fresh`), a `[preflight]` probe that the target
/// is one (its `public` schema holds no relation: the state the decisions assumed).
pub(in crate::import) fn spec_text(
    base: &std::path::Path,
    decided: &[Decided],
    fresh: bool,
) -> Result<String, ImportError> {
    if decided.is_empty() {
        return Ok(String::new());
    }
    let mut out = String::from(
        "\n# Liquibase preconditions and history, as `airlock import` decided them:\n",
    );
    for d in decided {
        let line = format!("{} ({}): {}: {}", d.changeset, d.at, d.outcome, d.why);
        out.push_str(&format!("#   {}\n", line.replace(['\n', '\r'], " ")));
    }
    if fresh {
        crate::import::write_file(
            base,
            crate::import::FRESH_TARGET_PROBE,
            FRESH_PROBE.as_bytes(),
        )?;
        out.push_str(&format!("\n# The preconditions were decided for a fresh database: the target must be one.\n[preflight]\nfile = \"{}\"\nexpect = {{ public_relations = \"0\" }}\n", crate::import::FRESH_TARGET_PROBE));
    }
    Ok(out)
}

/// The preflight of a bundle whose preconditions were decided on a fresh database.
const FRESH_PROBE: &str = "-- The Liquibase preconditions of these tiers were decided by `airlock import` on a\n-- fresh database: the target must be one too (nothing in its public schema).\nSELECT 'public_relations'::text AS key, count(*)::text AS value\nFROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE n.nspname = 'public'\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::liquibase::tree::parse;

    fn pre(x: &str) -> Result<Preconds, String> {
        let root = parse(
            "c.xml",
            format!("<databaseChangeLog><changeSet id=\"1\" author=\"a\">{x}</changeSet></databaseChangeLog>").as_bytes(),
        )
        .unwrap();
        read("c.xml", &root.children[0].children[0])
    }

    fn static_value(p: &Preconds) -> Tri {
        let ran = |_: &str, _: &str, _: &str| false;
        let mut e = Eval {
            ran: &ran,
            db: None,
            said: vec![],
        };
        e.eval(&p.cond).unwrap()
    }

    #[test]
    fn dbms_is_decided_from_the_text_and_the_rest_needs_a_database() {
        let p =
            pre(r#"<preConditions onFail="MARK_RAN"><dbms type="postgresql"/></preConditions>"#)
                .unwrap();
        assert_eq!(p.on_fail, OnFail::MarkRan);
        assert_eq!(p.on_error, OnFail::Halt);
        assert_eq!(static_value(&p), Some(true));
        let p = pre(r#"<preConditions><dbms type="oracle, mysql"/></preConditions>"#).unwrap();
        assert_eq!(static_value(&p), Some(false));
        let p = pre(r#"<preConditions><or><dbms type="oracle"/><not><tableExists tableName="T"/></not></or></preConditions>"#).unwrap();
        assert_eq!(static_value(&p), None);
        let p = pre(r#"<preConditions><or><dbms type="postgresql"/><tableExists tableName="T"/></or></preConditions>"#).unwrap();
        assert_eq!(static_value(&p), Some(true));
        let p = pre(r#"<preConditions><not><dbms type="postgresql"/><tableExists tableName="T"/></not></preConditions>"#).unwrap();
        assert_eq!(static_value(&p), Some(false));
    }

    #[test]
    fn names_fold_as_liquibase_writes_them_and_unknown_conditions_are_refused() {
        let p = pre(r#"<preConditions><columnExists tableName="USER_ENTITY" columnName="Mixed" schemaName="KC"/></preConditions>"#).unwrap();
        let Cond::All(cs) = &p.cond else { panic!() };
        let Cond::Db(c) = &cs[0] else { panic!() };
        assert_eq!(c.to_string(), "columnExists kc.user_entity.Mixed");
        let e = pre(r#"<preConditions><customPrecondition className="x.Y"/></preConditions>"#)
            .unwrap_err();
        assert!(e.contains("`customPrecondition` (c.xml:1)"), "{e}");
        let e = pre(r#"<preConditions onFail="SKIP"><dbms type="postgresql"/></preConditions>"#)
            .unwrap_err();
        assert!(e.contains("onFail=\"SKIP\""), "{e}");
        assert!(same_file("classpath:/META-INF/a.xml", "META-INF/a.xml"));
        assert!(!same_file("META-INF/b.xml", "META-INF/a.xml"));
    }

    #[test]
    fn yaml_preconditions_read_as_xml_ones() {
        let root = parse("c.yaml", b"databaseChangeLog:\n  - changeSet:\n      id: 1\n      author: a\n      preConditions:\n        - onFail: CONTINUE\n        - not:\n            - sqlCheck:\n                expectedResult: 0\n                sql: SELECT count(*) FROM t\n").unwrap();
        let p = read("c.yaml", &root.children[0].children[0]).unwrap();
        assert_eq!(p.on_fail, OnFail::Continue);
        let Cond::All(cs) = &p.cond else { panic!() };
        let Cond::None(inner) = &cs[0] else {
            panic!("{cs:?}")
        };
        let Cond::Db(c) = &inner[0] else { panic!() };
        assert_eq!(
            c,
            &Check::SqlCheck {
                expected: "0".into(),
                sql: "SELECT count(*) FROM t".into()
            }
        );
    }
}
