//! The lock plan: which existing relations each statement of a tier locks, in which
//! mode, and whether it rewrites, scans or builds an index on a table while holding a
//! lock that blocks writes — read statically from PostgreSQL's parse tree, for `plan`'s
//! GO/NO-GO (information, never a refusal).
//!
//! Invariant: when the mode depends on something the text does not say (a subcommand
//! this table does not know), the heavier mode is named, never a lighter one. Plain DML
//! is not listed: it takes ROW EXCLUSIVE on the tables it writes (ACCESS SHARE on those
//! it reads), which blocks no reader and no writer of other rows.

use super::reach::{each_statement_with, DmlText, Held};
use pg_query::protobuf::{AlterTableType as At, ConstrType, ReindexObjectType};
use pg_query::{Node, NodeEnum as N};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::io::{self, Read};

/// PostgreSQL's table-level lock modes, weakest first (its LOCKMODE numbering).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    /// As PostgreSQL names it (`LOCK TABLE … IN … MODE`).
    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// Inserts, updates and deletes of the table wait while it is held.
    pub fn blocks_writes(self) -> bool {
        self >= LockMode::Share
    }

    /// Even plain reads of the table wait while it is held.
    pub fn blocks_reads(self) -> bool {
        self == LockMode::AccessExclusive
    }

    /// `LockStmt.mode` (PostgreSQL's LOCKMODE, 1 = ACCESS SHARE … 8).
    fn from_lockmode(mode: i32) -> LockMode {
        match mode {
            1 => LockMode::AccessShare,
            2 => LockMode::RowShare,
            3 => LockMode::RowExclusive,
            4 => LockMode::ShareUpdateExclusive,
            5 => LockMode::Share,
            6 => LockMode::ShareRowExclusive,
            7 => LockMode::Exclusive,
            _ => LockMode::AccessExclusive,
        }
    }
}

/// What a statement does to a table's data while it holds its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Work {
    /// Writes the whole table anew.
    Rewrite,
    /// Reads every row (to validate).
    Scan,
    /// Builds an index over every row.
    IndexBuild,
    /// Writes every row (an `UPDATE` with no `WHERE`, or a backfill of a column the
    /// release added): each row stays locked until the transaction commits, so other
    /// sessions' updates and deletes of them wait that long, and the table grows by
    /// its size until VACUUM.
    EveryRow,
}

impl Work {
    pub fn describe(self) -> &'static str {
        match self {
            Work::Rewrite => "rewrites the table",
            Work::Scan => "scans the whole table",
            Work::IndexBuild => "builds an index over the whole table",
            Work::EveryRow => {
                "writes every row (each locked until COMMIT: updates and deletes of them wait)"
            }
        }
    }
}

/// One relation a statement locks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Lock {
    /// The bundle path of the file.
    pub file: String,
    pub line: usize,
    /// What the statement is, e.g. `ALTER TABLE … ADD COLUMN`.
    pub statement: String,
    /// The relation as the statement names it (`schema.name` or `name`).
    pub relation: String,
    pub mode: LockMode,
    /// Work done over the whole table while holding `mode`, when the mode blocks writes.
    pub work: Option<Work>,
    /// The form that holds a lighter lock, when there is one.
    pub safer: Option<String>,
    /// An `ALTER COLUMN … TYPE`: the column and its new type, for the server's catalog
    /// to say whether the change rewrites the table.
    #[serde(skip)]
    pub retype: Option<Retype>,
}

/// The column an `ALTER COLUMN … TYPE` changes, and the type it names (`None` with a
/// USING or a COLLATE: the table is rewritten whatever the types).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retype {
    pub column: String,
    pub to: Option<crate::TypeRef>,
}

impl Lock {
    /// Holds a lock that blocks writes while it works through the whole table: the
    /// statements the GO/NO-GO should look at twice.
    pub fn flagged(&self) -> bool {
        self.work.is_some() && (self.mode.blocks_writes() || self.work == Some(Work::EveryRow))
    }
}

/// Every relation each statement of one tier or rollback file locks (streamed,
/// bounded memory), in file order.
pub fn locks_in(file: &str, r: &mut dyn Read) -> io::Result<Vec<Lock>> {
    Ok(locks_to_end(file, r, &mut Added::default())?.0)
}

/// The columns the release's statements so far added (`ALTER TABLE … ADD COLUMN`), by
/// relation as the statement names it: an `UPDATE … WHERE col IS NULL` of one of them
/// writes every row (the column is NULL in all of them).
#[derive(Default)]
pub struct Added(std::collections::BTreeSet<(String, String)>);

/// [`locks_in`] for one file of a release read in order (`added` carries what the
/// files before it added), and the first line of the file's last statement of any kind
/// (DML included): a lock taken before it is still held while that statement works.
pub fn locks_to_end(
    file: &str,
    r: &mut dyn Read,
    added: &mut Added,
) -> io::Result<(Vec<Lock>, Option<usize>)> {
    let mut out = Vec::new();
    // Of plain DML only an UPDATE can write every row: the lexer hands on no other
    // (an INSERT-heavy file costs no copy and no parse).
    let last = each_statement_with(r, DmlText::Updates, |held| {
        let Held::Text { sql, line, .. } = held else {
            return;
        };
        let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
            return;
        };
        for (at_line, node) in super::parser::statements_by_line(&parsed, sql, line) {
            added.note(node);
            let every_row = every_row_update(node, added);
            for l in statement_locks(node).into_iter().chain(every_row) {
                out.push(Lock {
                    file: file.into(),
                    line: at_line,
                    statement: l.statement.into(),
                    relation: l.relation,
                    mode: l.mode,
                    work: l.work,
                    safer: l.safer.map(str::to_string),
                    retype: l.retype,
                });
            }
        }
    })?;
    Ok((out, last))
}

/// One lock of one statement, before it is placed in a file.
struct Taken {
    statement: &'static str,
    relation: String,
    mode: LockMode,
    work: Option<Work>,
    safer: Option<&'static str>,
    retype: Option<Retype>,
}

fn taken(statement: &'static str, relation: String, mode: LockMode) -> Taken {
    Taken {
        statement,
        relation,
        mode,
        work: None,
        safer: None,
        retype: None,
    }
}

impl Taken {
    fn doing(mut self, work: Work, safer: Option<&'static str>) -> Taken {
        self.work = Some(work);
        self.safer = safer;
        self
    }
}

impl Added {
    /// Remember the columns `stmt` adds.
    fn note(&mut self, stmt: &N) {
        let N::AlterTableStmt(s) = stmt else { return };
        let rel = name_of(&s.relation);
        for c in s.cmds.iter().filter_map(node) {
            if let N::AlterTableCmd(c) = c {
                if At::try_from(c.subtype) == Ok(At::AtAddColumn) {
                    if let Some(N::ColumnDef(col)) = c.def.as_deref().and_then(node) {
                        self.0.insert((rel.clone(), col.colname.clone()));
                    }
                }
            }
        }
    }
}

const EVERY_ROW_SAFER: &str =
    "batches (UPDATE … WHERE id BETWEEN …), each its own release or tier of a per-tier bundle";

/// An `UPDATE` that writes every row of its table: no `WHERE`, or only
/// `WHERE col IS NULL` of a column the release added.
fn every_row_update(stmt: &N, added: &Added) -> Option<Taken> {
    let N::UpdateStmt(s) = stmt else { return None };
    let rel = name_of(&s.relation);
    let every = match s.where_clause.as_deref().and_then(node) {
        None => true,
        Some(N::NullTest(t)) => {
            t.nulltesttype == pg_query::protobuf::NullTestType::IsNull as i32
                && match t.arg.as_deref().and_then(node) {
                    Some(N::ColumnRef(c)) => match c.fields.iter().filter_map(node).next_back() {
                        Some(N::String(col)) => added.0.contains(&(rel.clone(), col.sval.clone())),
                        _ => false,
                    },
                    _ => false,
                }
        }
        Some(_) => false,
    };
    every.then(|| {
        taken("UPDATE (every row)", rel, LockMode::RowExclusive)
            .doing(Work::EveryRow, Some(EVERY_ROW_SAFER))
    })
}

/// A relation's name as PostgreSQL reads it back (`to_regclass` finds it under the
/// search_path): parts quoted only where an unquoted name would fold or break.
fn name_of(rv: &Option<pg_query::protobuf::RangeVar>) -> String {
    match rv {
        Some(rv) if rv.schemaname.is_empty() => ident(&rv.relname),
        Some(rv) => format!("{}.{}", ident(&rv.schemaname), ident(&rv.relname)),
        None => "?".into(),
    }
}

fn ident(s: &str) -> String {
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

fn node(n: &Node) -> Option<&N> {
    n.node.as_ref()
}

/// A `DefElem` option named `name` (`VACUUM (FULL)`, `REINDEX (CONCURRENTLY)`).
fn has_option(options: &[Node], name: &str) -> bool {
    options.iter().any(|o| match node(o) {
        Some(N::DefElem(d)) => d.defname.eq_ignore_ascii_case(name),
        _ => false,
    })
}

const CREATE_INDEX_SAFER: &str =
    "CREATE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE: writes go on; it cannot run inside a transaction block, so not in a tier today)";

/// The locks one statement takes on relations that exist before it runs.
fn statement_locks(stmt: &N) -> Vec<Taken> {
    use LockMode::*;
    match stmt {
        N::AlterTableStmt(s) => {
            let rel = name_of(&s.relation);
            s.cmds
                .iter()
                .filter_map(node)
                .filter_map(|c| match c {
                    N::AlterTableCmd(c) => Some(alter_table_cmd(c, &rel)),
                    _ => None,
                })
                .flatten()
                .collect()
        }
        N::IndexStmt(s) if s.concurrent => vec![taken(
            "CREATE INDEX CONCURRENTLY",
            name_of(&s.relation),
            ShareUpdateExclusive,
        )],
        N::IndexStmt(s) => vec![taken("CREATE INDEX", name_of(&s.relation), Share)
            .doing(Work::IndexBuild, Some(CREATE_INDEX_SAFER))],
        N::DropStmt(s) => drop_locks(s),
        N::TruncateStmt(s) => each_relation(&s.relations, "TRUNCATE", AccessExclusive),
        N::VacuumStmt(s) => vacuum_locks(s),
        N::ClusterStmt(s) if s.relation.is_some() => vec![taken(
            "CLUSTER",
            name_of(&s.relation),
            AccessExclusive,
        )
        .doing(Work::Rewrite, Some("leave the table's order to a maintenance window"))],
        N::ReindexStmt(s) => reindex_locks(s),
        N::LockStmt(s) => each_relation(&s.relations, "LOCK TABLE", LockMode::from_lockmode(s.mode)),
        N::CreateTrigStmt(s) => vec![taken(
            "CREATE TRIGGER",
            name_of(&s.relation),
            ShareRowExclusive,
        )],
        N::CreatePolicyStmt(s) => vec![taken(
            "CREATE POLICY",
            name_of(&s.table),
            AccessExclusive,
        )],
        N::RuleStmt(s) => vec![taken("CREATE RULE", name_of(&s.relation), AccessExclusive)],
        N::RefreshMatViewStmt(s) if s.concurrent => vec![taken(
            "REFRESH MATERIALIZED VIEW CONCURRENTLY",
            name_of(&s.relation),
            Exclusive,
        )],
        N::RefreshMatViewStmt(s) => vec![taken(
            "REFRESH MATERIALIZED VIEW",
            name_of(&s.relation),
            AccessExclusive,
        )
        .doing(
            Work::Rewrite,
            Some("REFRESH MATERIALIZED VIEW CONCURRENTLY (EXCLUSIVE: reads go on; needs a unique index)"),
        )],
        N::RenameStmt(s) if s.relation.is_some() => vec![taken(
            "ALTER … RENAME",
            name_of(&s.relation),
            AccessExclusive,
        )],
        N::CopyStmt(s) if s.is_from && s.relation.is_some() => {
            vec![taken("COPY … FROM STDIN", name_of(&s.relation), RowExclusive)]
        }
        _ => Vec::new(),
    }
}

/// `verb` takes `mode` on each table a statement lists (`TRUNCATE a, b`, `LOCK a, b`).
fn each_relation(
    relations: &[pg_query::protobuf::Node],
    verb: &'static str,
    mode: LockMode,
) -> Vec<Taken> {
    relations
        .iter()
        .filter_map(node)
        .filter_map(|r| match r {
            N::RangeVar(rv) => Some(taken(verb, name_of(&Some(rv.clone())), mode)),
            _ => None,
        })
        .collect()
}

/// `VACUUM [FULL]` and `ANALYZE` of each table they name.
fn vacuum_locks(s: &pg_query::protobuf::VacuumStmt) -> Vec<Taken> {
    use LockMode::*;
    let full = s.is_vacuumcmd && has_option(&s.options, "full");
    s.rels
        .iter()
        .filter_map(node)
        .filter_map(|r| match r {
            N::VacuumRelation(v) => Some(name_of(&v.relation)),
            _ => None,
        })
        .map(|rel| match (s.is_vacuumcmd, full) {
            (true, true) => taken("VACUUM FULL", rel, AccessExclusive).doing(
                Work::Rewrite,
                Some("plain VACUUM (SHARE UPDATE EXCLUSIVE), or pg_repack outside the release"),
            ),
            (true, false) => taken("VACUUM", rel, ShareUpdateExclusive),
            (false, _) => taken("ANALYZE", rel, ShareUpdateExclusive),
        })
        .collect()
}

fn drop_locks(s: &pg_query::protobuf::DropStmt) -> Vec<Taken> {
    use pg_query::protobuf::ObjectType as O;
    let (what, mode) = match O::try_from(s.remove_type) {
        Ok(O::ObjectIndex) if s.concurrent => {
            ("DROP INDEX CONCURRENTLY", LockMode::ShareUpdateExclusive)
        }
        Ok(O::ObjectIndex) => ("DROP INDEX", LockMode::AccessExclusive),
        Ok(O::ObjectTable) => ("DROP TABLE", LockMode::AccessExclusive),
        Ok(O::ObjectView) => ("DROP VIEW", LockMode::AccessExclusive),
        Ok(O::ObjectMatview) => ("DROP MATERIALIZED VIEW", LockMode::AccessExclusive),
        Ok(O::ObjectSequence) => ("DROP SEQUENCE", LockMode::AccessExclusive),
        Ok(O::ObjectForeignTable) => ("DROP FOREIGN TABLE", LockMode::AccessExclusive),
        _ => return Vec::new(),
    };
    let safer = (what == "DROP INDEX").then_some(
        "DROP INDEX CONCURRENTLY (the table's reads and writes go on; it cannot run inside a transaction block, so not in a tier today)",
    );
    s.objects
        .iter()
        .filter_map(node)
        .filter_map(|o| match o {
            N::List(l) => Some(
                l.items
                    .iter()
                    .filter_map(node)
                    .filter_map(|i| match i {
                        N::String(s) => Some(ident(&s.sval)),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("."),
            ),
            _ => None,
        })
        .map(|rel| Taken {
            statement: what,
            relation: rel,
            mode,
            work: None,
            safer,
            retype: None,
        })
        .collect()
}

fn reindex_locks(s: &pg_query::protobuf::ReindexStmt) -> Vec<Taken> {
    let concurrently = has_option(&s.params, "concurrently");
    let what = match ReindexObjectType::try_from(s.kind) {
        Ok(ReindexObjectType::ReindexObjectTable) => "REINDEX TABLE",
        Ok(ReindexObjectType::ReindexObjectIndex) => "REINDEX INDEX",
        _ => return Vec::new(),
    };
    let rel = name_of(&s.relation);
    if concurrently {
        return vec![taken(
            if what == "REINDEX TABLE" {
                "REINDEX TABLE CONCURRENTLY"
            } else {
                "REINDEX INDEX CONCURRENTLY"
            },
            rel,
            LockMode::ShareUpdateExclusive,
        )];
    }
    vec![taken(what, rel, LockMode::Share).doing(
        Work::IndexBuild,
        Some("REINDEX … CONCURRENTLY (writes go on; it cannot run inside a transaction block, so not in a tier today)"),
    )]
}

/// One `ALTER TABLE` subcommand on `rel` (PostgreSQL's AlterTableGetLockLevel, and
/// what each does to the data).
fn alter_table_cmd(c: &pg_query::protobuf::AlterTableCmd, rel: &str) -> Vec<Taken> {
    use LockMode::*;
    let t = |what: &'static str, mode: LockMode| taken(what, rel.to_string(), mode);
    let Ok(sub) = At::try_from(c.subtype) else {
        return vec![t("ALTER TABLE", AccessExclusive)];
    };
    match sub {
        At::AtAddColumn => vec![add_column(c, rel)],
        At::AtAlterColumnType => {
            let mut l = t("ALTER TABLE … ALTER COLUMN … TYPE", AccessExclusive).doing(
                Work::Rewrite,
                Some("add a new column, backfill it in batches, then swap (unless the new type is binary-compatible, e.g. varchar(n) to text)"),
            );
            l.retype = retype(c);
            vec![l]
        }
        At::AtSetNotNull => vec![t("ALTER TABLE … SET NOT NULL", AccessExclusive).doing(
            Work::Scan,
            Some("ADD CONSTRAINT … CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL (no scan with a valid check)"),
        )],
        At::AtAddConstraint | At::AtReAddConstraint => add_constraint(c, rel),
        At::AtValidateConstraint => vec![t("ALTER TABLE … VALIDATE CONSTRAINT", ShareUpdateExclusive)],
        At::AtSetStatistics
        | At::AtClusterOn
        | At::AtDropCluster
        | At::AtSetOptions
        | At::AtResetOptions => vec![t("ALTER TABLE", ShareUpdateExclusive)],
        At::AtEnableTrig
        | At::AtEnableAlwaysTrig
        | At::AtEnableReplicaTrig
        | At::AtDisableTrig
        | At::AtEnableTrigAll
        | At::AtDisableTrigAll
        | At::AtEnableTrigUser
        | At::AtDisableTrigUser => vec![t("ALTER TABLE … ENABLE/DISABLE TRIGGER", ShareRowExclusive)],
        At::AtAttachPartition => vec![t("ALTER TABLE … ATTACH PARTITION", ShareUpdateExclusive)],
        At::AtDetachPartition if c.def.as_deref().is_some_and(detach_concurrently) => {
            vec![t("ALTER TABLE … DETACH PARTITION CONCURRENTLY", ShareUpdateExclusive)]
        }
        At::AtDetachPartition => vec![t("ALTER TABLE … DETACH PARTITION", AccessExclusive)],
        At::AtSetTableSpace => vec![t("ALTER TABLE … SET TABLESPACE", AccessExclusive)
            .doing(Work::Rewrite, None)],
        At::AtSetLogged | At::AtSetUnLogged | At::AtSetAccessMethod => {
            vec![t("ALTER TABLE … SET LOGGED/UNLOGGED/ACCESS METHOD", AccessExclusive)
                .doing(Work::Rewrite, None)]
        }
        At::AtAddIdentity => vec![t("ALTER TABLE … ADD GENERATED … AS IDENTITY", AccessExclusive)],
        At::AtDropColumn => vec![t("ALTER TABLE … DROP COLUMN", AccessExclusive)],
        At::AtColumnDefault => vec![t("ALTER TABLE … ALTER COLUMN … DEFAULT", AccessExclusive)],
        At::AtDropNotNull => vec![t("ALTER TABLE … DROP NOT NULL", AccessExclusive)],
        At::AtDropConstraint => vec![t("ALTER TABLE … DROP CONSTRAINT", AccessExclusive)],
        _ => vec![t("ALTER TABLE", AccessExclusive)],
    }
}

fn detach_concurrently(def: &Node) -> bool {
    matches!(node(def), Some(N::PartitionCmd(p)) if p.concurrent)
}

/// The column and new type of an `ALTER COLUMN … TYPE`.
fn retype(c: &pg_query::protobuf::AlterTableCmd) -> Option<Retype> {
    let Some(N::ColumnDef(col)) = c.def.as_deref().and_then(node) else {
        return None;
    };
    let plain = col.raw_default.is_none() && col.coll_clause.is_none();
    Some(Retype {
        column: c.name.clone(),
        to: col
            .type_name
            .as_ref()
            .and_then(crate::predicts::type_ref)
            .filter(|_| plain),
    })
}

/// `ADD COLUMN`: a rewrite when the new column's value must be computed row by row
/// (a volatile default, a serial or identity column, a stored generated column).
fn add_column(c: &pg_query::protobuf::AlterTableCmd, rel: &str) -> Taken {
    let t = taken(
        "ALTER TABLE … ADD COLUMN",
        rel.to_string(),
        LockMode::AccessExclusive,
    );
    let Some(N::ColumnDef(col)) = c.def.as_deref().and_then(node) else {
        return t;
    };
    let serial = col.type_name.as_ref().is_some_and(|tn| {
        tn.names.iter().filter_map(node).any(|n| {
            matches!(n, N::String(s) if matches!(s.sval.as_str(), "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"))
        })
    });
    let computed = col.constraints.iter().filter_map(node).any(|k| match k {
        N::Constraint(k) => match ConstrType::try_from(k.contype) {
            Ok(ConstrType::ConstrIdentity) => true,
            Ok(ConstrType::ConstrGenerated) => k.generated_kind != "v",
            Ok(ConstrType::ConstrDefault) => k.raw_expr.as_deref().is_some_and(calls_function),
            _ => false,
        },
        _ => false,
    }) || col.raw_default.as_deref().is_some_and(calls_function);
    if serial || computed {
        t.doing(
            Work::Rewrite,
            Some("add the column without a default (or with a constant one), then backfill it in batches"),
        )
    } else {
        t
    }
}

/// A default that calls a function may be volatile (`random()`, `clock_timestamp()`,
/// `gen_random_uuid()`, `nextval()`): then every row gets its own value, a rewrite.
/// Only the functions known to be evaluated once per statement are let through.
fn calls_function(expr: &Node) -> bool {
    const ONCE: [&str; 4] = [
        "now",
        "statement_timestamp",
        "transaction_timestamp",
        "current_setting",
    ];
    let Ok(tree) = serde_json::to_value(expr) else {
        return true;
    };
    let mut volatile = false;
    super::parser::walk(&tree, &mut |key, value| {
        if key == "FuncCall" {
            let last = value["funcname"]
                .as_array()
                .and_then(|names| names.last())
                .and_then(|n| n["node"]["String"]["sval"].as_str());
            volatile |= !last.is_some_and(|f| ONCE.contains(&f));
        }
    });
    volatile
}

/// `ADD CONSTRAINT`: a scan unless `NOT VALID`; a foreign key locks both tables; a
/// primary key, unique or exclusion constraint builds its index under the lock.
fn add_constraint(c: &pg_query::protobuf::AlterTableCmd, rel: &str) -> Vec<Taken> {
    use LockMode::*;
    let Some(N::Constraint(k)) = c.def.as_deref().and_then(node) else {
        return vec![taken(
            "ALTER TABLE … ADD CONSTRAINT",
            rel.into(),
            AccessExclusive,
        )];
    };
    match ConstrType::try_from(k.contype) {
        Ok(ConstrType::ConstrForeign) => {
            let mode = ShareRowExclusive;
            let mut out = vec![taken("ALTER TABLE … ADD FOREIGN KEY", rel.into(), mode)];
            out.push(taken(
                "ALTER TABLE … ADD FOREIGN KEY (referenced)",
                name_of(&k.pktable),
                mode,
            ));
            if !k.skip_validation {
                let safer = Some(
                    "ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)",
                );
                out = out
                    .into_iter()
                    .map(|t| t.doing(Work::Scan, safer))
                    .collect();
            }
            out
        }
        Ok(ConstrType::ConstrCheck) => {
            let t = taken("ALTER TABLE … ADD CHECK", rel.into(), AccessExclusive);
            if k.skip_validation {
                vec![t]
            } else {
                vec![t.doing(
                    Work::Scan,
                    Some("ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE)"),
                )]
            }
        }
        Ok(ConstrType::ConstrPrimary | ConstrType::ConstrUnique | ConstrType::ConstrExclusion)
            if k.indexname.is_empty() =>
        {
            vec![taken("ALTER TABLE … ADD PRIMARY KEY/UNIQUE", rel.into(), AccessExclusive).doing(
                Work::IndexBuild,
                Some("CREATE UNIQUE INDEX CONCURRENTLY first (not in a tier today: it cannot run inside a transaction block), then ADD CONSTRAINT … USING INDEX"),
            )]
        }
        _ => vec![taken(
            "ALTER TABLE … ADD CONSTRAINT",
            rel.into(),
            AccessExclusive,
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sql: &str) -> Vec<(usize, String, &'static str, Option<Work>)> {
        locks_in("t.sql", &mut sql.as_bytes())
            .unwrap()
            .into_iter()
            .map(|l| (l.line, l.relation, l.mode.name(), l.work))
            .collect()
    }

    fn flagged(sql: &str) -> bool {
        let l = locks_in("t.sql", &mut sql.as_bytes()).unwrap();
        assert!(!l.is_empty(), "{sql}: no lock");
        l.iter().any(|l| l.flagged() && l.safer.is_some())
    }

    #[test]
    fn each_flagged_form_names_its_lock_its_work_and_a_safer_form() {
        for sql in [
            "ALTER TABLE app.t ALTER COLUMN c TYPE bigint;",
            "ALTER TABLE app.t ADD COLUMN c uuid DEFAULT gen_random_uuid();",
            "ALTER TABLE app.t ADD COLUMN c timestamptz DEFAULT clock_timestamp();",
            "ALTER TABLE app.t ADD COLUMN id bigserial;",
            "ALTER TABLE app.t ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
            "ALTER TABLE app.t ALTER COLUMN c SET NOT NULL;",
            "ALTER TABLE app.t ADD CONSTRAINT c CHECK (c > 0);",
            "ALTER TABLE app.t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES app.u (id);",
            "ALTER TABLE app.t ADD PRIMARY KEY (id);",
            "CREATE INDEX t_c ON app.t (c);",
            "VACUUM FULL app.t;",
            "CLUSTER app.t USING t_pkey;",
            "REINDEX TABLE app.t;",
            "REFRESH MATERIALIZED VIEW app.mv;",
        ] {
            assert!(flagged(sql), "{sql}: not flagged");
        }
    }

    #[test]
    fn the_online_and_deferred_forms_are_not_flagged() {
        for sql in [
            "ALTER TABLE app.t ADD COLUMN c int;",
            "ALTER TABLE app.t ADD COLUMN c int DEFAULT 0;",
            "ALTER TABLE app.t ADD COLUMN c timestamptz DEFAULT now();",
            "ALTER TABLE app.t ADD CONSTRAINT c CHECK (c > 0) NOT VALID;",
            "ALTER TABLE app.t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES app.u (id) NOT VALID;",
            "ALTER TABLE app.t VALIDATE CONSTRAINT c;",
            "ALTER TABLE app.t ADD CONSTRAINT t_pk PRIMARY KEY USING INDEX t_id;",
            "CREATE INDEX CONCURRENTLY t_c ON app.t (c);",
            "DROP INDEX CONCURRENTLY app.t_c;",
            "REINDEX TABLE CONCURRENTLY app.t;",
            "VACUUM app.t;",
            "ANALYZE app.t;",
            "REFRESH MATERIALIZED VIEW CONCURRENTLY app.mv;",
        ] {
            let l = locks_in("t.sql", &mut sql.as_bytes()).unwrap();
            assert!(!l.is_empty(), "{sql}: no lock");
            assert!(!l.iter().any(Lock::flagged), "{sql}: flagged {l:?}");
        }
    }

    #[test]
    fn modes_lines_and_relations_are_postgres_own() {
        let sql = "CREATE TABLE app.n (i int);\n\
                   ALTER TABLE app.t ADD COLUMN c int, ALTER COLUMN d SET STATISTICS 100;\n\
                   CREATE INDEX CONCURRENTLY i ON app.t (c);\n\
                   INSERT INTO app.t VALUES (1);\n\
                   LOCK TABLE app.t IN SHARE ROW EXCLUSIVE MODE;\n\
                   ALTER TABLE app.t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id) NOT VALID;\n\
                   CREATE TRIGGER tr AFTER INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION f();\n\
                   DROP TABLE app.old, other;\n\
                   TRUNCATE app.t;\n\
                   COPY app.t (c) FROM stdin;\n1\n\\.\n";
        assert_eq!(
            plan(sql),
            vec![
                (2, "app.t".into(), "ACCESS EXCLUSIVE", None),
                (2, "app.t".into(), "SHARE UPDATE EXCLUSIVE", None),
                (3, "app.t".into(), "SHARE UPDATE EXCLUSIVE", None),
                (5, "app.t".into(), "SHARE ROW EXCLUSIVE", None),
                (6, "app.t".into(), "SHARE ROW EXCLUSIVE", None),
                (6, "u".into(), "SHARE ROW EXCLUSIVE", None),
                (7, "app.t".into(), "SHARE ROW EXCLUSIVE", None),
                (8, "app.old".into(), "ACCESS EXCLUSIVE", None),
                (8, "other".into(), "ACCESS EXCLUSIVE", None),
                (9, "app.t".into(), "ACCESS EXCLUSIVE", None),
                (10, "app.t".into(), "ROW EXCLUSIVE", None),
            ]
        );
    }

    #[test]
    fn modes_order_as_postgres_conflicts_do() {
        assert!(LockMode::Share.blocks_writes());
        assert!(!LockMode::ShareUpdateExclusive.blocks_writes());
        assert!(LockMode::AccessExclusive.blocks_reads());
        assert!(!LockMode::Exclusive.blocks_reads());
    }
}
