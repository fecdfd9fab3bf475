//! Online steps: the statements a tier declared `online = true` may hold, and how
//! execution cuts such a tier into steps.
//!
//! An online tier runs outside any transaction, one statement at a time, each recorded
//! as it completes; an interrupted run continues with the next statement, and the one
//! that was running when it stopped runs again. So a statement belongs in an online
//! tier only when it must run outside a transaction (or gains by it) and is safe to
//! run again after an interruption: `CREATE INDEX CONCURRENTLY` (airlock decides from
//! the catalog whether to run it again), `DROP INDEX CONCURRENTLY [IF EXISTS]` (without
//! `IF EXISTS`, an index already gone when its step starts is the step done),
//! `REINDEX … CONCURRENTLY`, `VALIDATE CONSTRAINT`, `VACUUM`/`ANALYZE`,
//! `ALTER TYPE … ADD VALUE IF NOT EXISTS`, and idempotent cleanup (`DROP … IF EXISTS`).
//!
//! Invariant: every statement of an online tier is judged here by PostgreSQL's parser
//! (plain DML included, which the transactional rules never hold), and
//! [`online_steps`] cuts a file exactly where lint judged it, one statement per step.

use super::SqlProblem;
use crate::lex::split::{split_all, Piece};
use pg_query::protobuf::{AlterTableType, Node};
use pg_query::NodeEnum;

const ALLOWED: &str = "CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name, DROP INDEX CONCURRENTLY [IF EXISTS] name, REINDEX … CONCURRENTLY, ALTER TABLE … VALIDATE CONSTRAINT, VACUUM, ANALYZE, ALTER TYPE … ADD VALUE IF NOT EXISTS, DROP … IF EXISTS (idempotent cleanup)";

/// A plain data statement (INSERT, UPDATE, …) in an online tier.
pub(super) fn dml_refusal() -> String {
    format!("plain data changes (INSERT, UPDATE, DELETE, MERGE, COPY, SELECT) do not belong in an online tier: outside a transaction, a run interrupted half-way leaves part of them, and a second run repeats them. Put them in a transactional tier (batch a large backfill across releases). An online tier holds only: {ALLOWED}")
}

/// The problem with `node` as an online step, if any.
fn online_problem(node: &NodeEnum) -> Option<String> {
    let refuse = |why: &str| Some(format!("{why} (an online tier holds only: {ALLOWED})"));
    match node {
        // With or without IF NOT EXISTS: airlock finds the index by its name in the
        // catalog, runs the build only when it is not there (or left INVALID), and
        // records the step only once the index is there, valid, with this definition.
        NodeEnum::IndexStmt(s) if s.concurrent && s.idxname.is_empty() => refuse("name the index (CREATE INDEX CONCURRENTLY name ON …): airlock finds the index a step builds, or an interrupted build's INVALID leftover, by its name"),
        NodeEnum::IndexStmt(s) if s.concurrent => None,
        NodeEnum::IndexStmt(_) => refuse("a plain CREATE INDEX blocks every write to its table for the whole build; in an online tier write CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(s) => drop_problem(s).and_then(refuse),
        NodeEnum::ReindexStmt(s) if reindex_concurrently(s) => None,
        NodeEnum::ReindexStmt(_) => refuse("a plain REINDEX blocks writes (and, for an index, reads) of its table for the whole rebuild; in an online tier write REINDEX … CONCURRENTLY"),
        NodeEnum::VacuumStmt(s) => {
            let full = option_on(&s.options, "full");
            if full {
                refuse("VACUUM FULL rewrites its table under ACCESS EXCLUSIVE (every read and write waits); it is not an online operation")
            } else {
                None
            }
        }
        NodeEnum::AlterEnumStmt(s) if !s.new_val.is_empty() && s.old_val.is_empty() => {
            if s.skip_if_new_val_exists {
                None
            } else {
                refuse("write ALTER TYPE … ADD VALUE IF NOT EXISTS: a step interrupted after it committed runs again")
            }
        }
        NodeEnum::AlterTableStmt(s) if s.cmds.iter().any(detaches_concurrently) => refuse("ALTER TABLE … DETACH PARTITION … CONCURRENTLY is not safe to run again: interrupted half-way it leaves the partition pending detach, and a second run fails (it then needs DETACH PARTITION … FINALIZE, which airlock does not guess). Detach in a transactional tier (without CONCURRENTLY), or run it and its FINALIZE by hand"),
        NodeEnum::AlterTableStmt(s) if !s.cmds.is_empty() && s.cmds.iter().all(online_table_cmd) => None,
        _ => refuse("this statement is not safe to run outside a transaction and again after an interruption; put it in a transactional tier"),
    }
}

/// Why a `DROP` is not an online step, if it is not: it must be safe to run again
/// (`IF EXISTS`, or an index dropped `CONCURRENTLY`, which the catalog finds gone:
/// [`IndexDrop`]), and an index is dropped `CONCURRENTLY`.
fn drop_problem(s: &pg_query::protobuf::DropStmt) -> Option<&'static str> {
    let index = s.remove_type == pg_query::protobuf::ObjectType::ObjectIndex as i32;
    match (s.concurrent, s.missing_ok) {
        (true, _) => None,
        (false, _) if index => Some("a plain DROP INDEX waits for, and blocks, every query of its table; in an online tier write DROP INDEX CONCURRENTLY IF EXISTS"),
        (false, true) => None,
        (false, false) => Some("write DROP … IF EXISTS: a step interrupted after the drop runs again, and must not fail when the object is gone"),
    }
}

/// Whether a `REINDEX` says `CONCURRENTLY` (kept in its options).
fn reindex_concurrently(s: &pg_query::protobuf::ReindexStmt) -> bool {
    option_on(&s.params, "concurrently")
}

/// Whether the option list of a utility statement turns `name` on (`name`, or
/// `name` with a value PostgreSQL reads as true).
fn option_on(options: &[Node], name: &str) -> bool {
    options.iter().any(|o| {
        let Some(NodeEnum::DefElem(d)) = &o.node else {
            return false;
        };
        let off = match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
            Some(NodeEnum::Boolean(b)) => !b.boolval,
            Some(NodeEnum::String(v)) => {
                ["false", "off", "no", "0"].contains(&v.sval.to_ascii_lowercase().as_str())
            }
            Some(NodeEnum::Integer(i)) => i.ival == 0,
            _ => false,
        };
        d.defname.eq_ignore_ascii_case(name) && !off
    })
}

/// Whether an `ALTER TABLE` command is `DETACH PARTITION … CONCURRENTLY`.
fn detaches_concurrently(c: &Node) -> bool {
    matches!(&c.node, Some(NodeEnum::AlterTableCmd(cmd))
        if cmd.subtype == AlterTableType::AtDetachPartition as i32
            && matches!(cmd.def.as_ref().and_then(|d| d.node.as_ref()),
                Some(NodeEnum::PartitionCmd(p)) if p.concurrent))
}

/// An `ALTER TABLE` command an online step may make.
fn online_table_cmd(c: &Node) -> bool {
    let Some(NodeEnum::AlterTableCmd(cmd)) = &c.node else {
        return false;
    };
    cmd.subtype == AlterTableType::AtValidateConstraint as i32
}

/// The problems of one statement the lexer held (it began on `line`), judged as an
/// online step: `(line, message)`.
pub(super) fn online_problems(sql: &str, line: usize) -> Vec<(usize, String)> {
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => return vec![(line, format!("does not parse as PostgreSQL: {e}"))],
    };
    let stmts = super::parser::statements_by_line(&parsed, sql, line);
    if stmts.len() > 1 {
        return vec![(line, "these statements are not separated the way PostgreSQL separates them (an unbalanced BEGIN … END?); an online tier runs one statement per step".into())];
    }
    stmts
        .into_iter()
        .filter_map(|(at, node)| online_problem(node).map(|p| (at, p)))
        .collect()
}

/// An index an online step builds (`CREATE INDEX CONCURRENTLY`), as the statement
/// names it: where to find it (or an interrupted build's INVALID leftover), and what
/// its definition must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexBuild {
    /// The table's schema as written (`None`: found through the search_path).
    pub schema: Option<String>,
    pub table: String,
    pub index: String,
    /// The same build as a plain `CREATE INDEX` of [`SHAPE_INDEX`] on the table
    /// [`SHAPE_TABLE`] (no `CONCURRENTLY`, no `IF NOT EXISTS`, no tablespace): built
    /// on an empty copy of the table, it gives PostgreSQL's own text of the
    /// definition the step promises ([`same_index_definition`]).
    pub shape: String,
}

/// An index an online step drops (`DROP INDEX CONCURRENTLY name`, without `IF
/// EXISTS`): when no relation of that name is there as the step starts (a stopped
/// run's drop finished), the step is done, not run again to fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDrop {
    /// The index's schema as written (`None`: found through the search_path).
    pub schema: Option<String>,
    pub index: String,
}

/// The empty copy of a step's table its [`IndexBuild::shape`] is built on.
pub const SHAPE_TABLE: &str = "pg_temp.airlock_shape";
/// The index [`IndexBuild::shape`] builds.
pub const SHAPE_INDEX: &str = "airlock_shape_idx";

/// What a step other than an index build promises the catalog will hold once it
/// completed: the step is recorded only when it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Promise {
    /// `ALTER TABLE … VALIDATE CONSTRAINT`: each constraint, validated.
    Validated {
        schema: Option<String>,
        table: String,
        constraints: Vec<String>,
    },
    /// `ALTER TYPE … ADD VALUE`: the value, present in the enum.
    EnumValue {
        schema: Option<String>,
        name: String,
        value: String,
    },
}

/// Whether two `pg_get_indexdef` texts define the same index, whatever the index and
/// its table are called: both parsed, their names set alike, deparsed and compared.
/// `false` when either does not parse as one `CREATE INDEX`.
pub fn same_index_definition(a: &str, b: &str) -> bool {
    match (anonymous_index(a), anonymous_index(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `CREATE INDEX` text with its index and table names (and `ONLY`) taken out.
fn anonymous_index(def: &str) -> Option<String> {
    let parsed = pg_query::parse(def, pg_query::ParserOptions::DEFAULT).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(NodeEnum::IndexStmt(s)) = stmt.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return None;
    };
    let mut s = s.clone();
    s.idxname = SHAPE_INDEX.into();
    s.relation = Some(shape_table());
    NodeEnum::IndexStmt(s)
        .deparse(pg_query::DeparseOptions::default())
        .ok()
}

fn shape_table() -> pg_query::protobuf::RangeVar {
    pg_query::protobuf::RangeVar {
        schemaname: "pg_temp".into(),
        relname: "airlock_shape".into(),
        inh: true,
        relpersistence: "p".into(),
        ..Default::default()
    }
}

/// The [`IndexBuild`] of a concurrent `CREATE INDEX`.
fn index_build(s: &pg_query::protobuf::IndexStmt) -> Option<IndexBuild> {
    let r = s.relation.as_ref()?;
    let mut plain = s.clone();
    plain.idxname = SHAPE_INDEX.into();
    plain.relation = Some(shape_table());
    plain.concurrent = false;
    plain.if_not_exists = false;
    plain.table_space = String::new();
    let shape = NodeEnum::IndexStmt(Box::new(plain))
        .deparse(pg_query::DeparseOptions::default())
        .ok()?;
    Some(IndexBuild {
        schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
        table: r.relname.clone(),
        index: s.idxname.clone(),
        shape,
    })
}

/// The index a `DROP INDEX CONCURRENTLY name` without `IF EXISTS` drops (PostgreSQL
/// drops one index at a time concurrently).
fn index_drop(node: &NodeEnum) -> Option<IndexDrop> {
    let NodeEnum::DropStmt(s) = node else {
        return None;
    };
    if !s.concurrent || s.missing_ok || s.objects.len() != 1 {
        return None;
    }
    let Some(NodeEnum::List(l)) = s.objects[0].node.as_ref() else {
        return None;
    };
    let names: Vec<String> = (l.items.iter())
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect();
    match names.as_slice() {
        [i] => Some(IndexDrop {
            schema: None,
            index: i.clone(),
        }),
        [s, i] => Some(IndexDrop {
            schema: Some(s.clone()),
            index: i.clone(),
        }),
        _ => None,
    }
}

/// What a statement other than an index build promises ([`Promise`]).
fn promise_of(node: &NodeEnum) -> Option<Promise> {
    match node {
        NodeEnum::AlterTableStmt(s) => {
            let r = s.relation.as_ref()?;
            let constraints = s
                .cmds
                .iter()
                .filter_map(|c| match &c.node {
                    Some(NodeEnum::AlterTableCmd(cmd))
                        if cmd.subtype == AlterTableType::AtValidateConstraint as i32 =>
                    {
                        Some(cmd.name.clone())
                    }
                    _ => None,
                })
                .collect::<Vec<_>>();
            (!constraints.is_empty()).then(|| Promise::Validated {
                schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
                table: r.relname.clone(),
                constraints,
            })
        }
        NodeEnum::AlterEnumStmt(s) if !s.new_val.is_empty() && s.old_val.is_empty() => {
            let names: Vec<String> = s
                .type_name
                .iter()
                .filter_map(|n| match &n.node {
                    Some(NodeEnum::String(v)) => Some(v.sval.clone()),
                    _ => None,
                })
                .collect();
            let (schema, name) = match names.as_slice() {
                [name] => (None, name.clone()),
                [.., schema, name] => (Some(schema.clone()), name.clone()),
                [] => return None,
            };
            Some(Promise::EnumValue {
                schema,
                name,
                value: s.new_val.clone(),
            })
        }
        _ => None,
    }
}

/// One statement of an online tier: its bytes in the file, its line, the index it
/// builds, if it builds one, and what else it promises the catalog will hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnlineStep {
    pub start: u64,
    pub end: u64,
    pub line: usize,
    pub builds: Option<IndexBuild>,
    pub drops: Option<IndexDrop>,
    pub promise: Option<Promise>,
}

/// An online tier's file cut into its steps, one statement each, where lint cut it.
/// Refuses what lint refuses in an online tier (execution never meets it in a verified
/// bundle; the check is kept so that nothing else could run here).
pub fn online_steps(file: &str, bytes: &[u8]) -> Result<Vec<OnlineStep>, SqlProblem> {
    let problem = |line: usize, message: String| SqlProblem {
        file: file.into(),
        line,
        message,
    };
    let mut out = vec![];
    for piece in split_all(file, bytes)? {
        let (start, end, line) = match piece {
            Piece::Sql { start, end, line } => (start, end, line),
            Piece::Skip { .. } => continue,
            Piece::Copy { line, .. } | Piece::CopyBegin { line, .. } => {
                return Err(problem(line, dml_refusal()))
            }
        };
        let text = std::str::from_utf8(&bytes[start as usize..end as usize])
            .map_err(|_| problem(line, "is not UTF-8 (SQL files must be UTF-8)".into()))?;
        // The statement's own line (the piece begins with what precedes it): where
        // its first token starts.
        let first = crate::lex::tokens::tokenize(text, 1)
            .ok()
            .and_then(|t| t.first().map(|t| t.start))
            .unwrap_or(0);
        let upto = (start as usize + first).min(bytes.len());
        let line = 1 + bytes[..upto].iter().filter(|&&b| b == b'\n').count();
        if let Some((_, message)) = online_problems(text, line).into_iter().next() {
            return Err(problem(line, message));
        }
        let parsed = pg_query::parse(text, pg_query::ParserOptions::DEFAULT)
            .map_err(|e| problem(line, format!("does not parse as PostgreSQL: {e}")))?;
        let Some(node) = parsed
            .protobuf
            .stmts
            .first()
            .and_then(|s| s.stmt.as_ref())
            .and_then(|n| n.node.as_ref())
        else {
            // Only comments: nothing to run.
            continue;
        };
        let builds = match node {
            NodeEnum::IndexStmt(s) if s.concurrent => Some(
                index_build(s)
                    .ok_or_else(|| problem(line, "names no table airlock can find".into()))?,
            ),
            _ => None,
        };
        out.push(OnlineStep {
            start,
            end,
            line,
            builds,
            drops: index_drop(node),
            promise: promise_of(node),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(sql: &str) -> Vec<String> {
        online_problems(sql, 1).into_iter().map(|p| p.1).collect()
    }

    #[test]
    fn the_online_family_is_accepted() {
        for sql in [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);",
            "CREATE INDEX CONCURRENTLY i ON t (a);",
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a) WHERE a > 0;",
            "DROP INDEX CONCURRENTLY IF EXISTS s.i;",
            "DROP TABLE IF EXISTS s.t;",
            "DROP TABLE IF EXISTS s.t, s.u CASCADE;",
            "DROP SEQUENCE IF EXISTS s.q;",
            "DROP VIEW IF EXISTS s.v;",
            "REINDEX INDEX CONCURRENTLY i;",
            "REINDEX TABLE CONCURRENTLY t;",
            "REINDEX (CONCURRENTLY) TABLE t;",
            "ALTER TABLE t VALIDATE CONSTRAINT c;",
            "VACUUM (ANALYZE) t;",
            "VACUUM t;",
            "ANALYZE t;",
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok';",
            "DROP INDEX CONCURRENTLY s.i;",
        ] {
            assert_eq!(judge(sql), Vec::<String>::new(), "{sql}");
        }
    }

    #[test]
    fn what_is_not_safe_to_retry_is_refused_with_the_reason() {
        for (sql, why) in [
            ("CREATE INDEX CONCURRENTLY ON t (a);", "name the index"),
            ("CREATE INDEX i ON t (a);", "blocks every write"),
            (
                "DROP INDEX IF EXISTS i;",
                "DROP INDEX CONCURRENTLY IF EXISTS",
            ),
            ("DROP TABLE t;", "IF EXISTS"),
            ("REINDEX TABLE t;", "REINDEX … CONCURRENTLY"),
            ("REINDEX SCHEMA s;", "REINDEX … CONCURRENTLY"),
            (
                "REINDEX (CONCURRENTLY false) INDEX i;",
                "REINDEX … CONCURRENTLY",
            ),
            (
                "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;",
                "FINALIZE",
            ),
            ("VACUUM FULL t;", "ACCESS EXCLUSIVE"),
            ("VACUUM (FULL) t;", "ACCESS EXCLUSIVE"),
            ("ALTER TYPE mood ADD VALUE 'meh';", "IF NOT EXISTS"),
            ("ALTER TABLE t ADD COLUMN b int;", "transactional tier"),
            (
                "ALTER TABLE t VALIDATE CONSTRAINT c, ADD COLUMN b int;",
                "transactional tier",
            ),
            ("CREATE TABLE t (a int);", "transactional tier"),
            ("SET ROLE postgres;", "transactional tier"),
            ("BEGIN;", "transactional tier"),
        ] {
            let got = judge(sql);
            assert!(got.len() == 1 && got[0].contains(why), "{sql}: {got:?}");
        }
    }

    #[test]
    fn steps_are_cut_one_statement_each_with_the_index_they_build() {
        let sql =
            "-- two steps\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a);\n\nANALYZE t;\n";
        let steps = online_steps("f.sql", sql.as_bytes()).unwrap();
        assert_eq!(steps.len(), 2, "{steps:?}");
        assert_eq!(steps[0].line, 2);
        assert_eq!(
            steps[0].builds,
            Some(IndexBuild {
                schema: Some("s".into()),
                table: "t".into(),
                index: "i".into(),
                shape: "CREATE INDEX airlock_shape_idx ON pg_temp.airlock_shape USING btree (a)"
                    .into(),
            })
        );
        assert_eq!(steps[1].line, 4);
        assert_eq!(steps[1].builds, None);
        assert_eq!(
            &sql[steps[1].start as usize..steps[1].end as usize].trim(),
            &"ANALYZE t;"
        );
        assert_eq!(steps[1].promise, None);
        let err = online_steps("f.sql", b"ANALYZE t;\nUPDATE t SET a = 1;\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn each_step_says_what_the_catalog_must_hold_after_it() {
        let sql = "CREATE UNIQUE INDEX CONCURRENTLY i ON t USING btree (lower(a)) INCLUDE (b) WHERE a <> 'x';\n\
                   ALTER TABLE s.t VALIDATE CONSTRAINT c1, VALIDATE CONSTRAINT c2;\n\
                   ALTER TYPE s.mood ADD VALUE IF NOT EXISTS 'meh';\n";
        let steps = online_steps("f.sql", sql.as_bytes()).unwrap();
        let shape = &steps[0].builds.as_ref().unwrap().shape;
        assert!(
            shape.starts_with("CREATE UNIQUE INDEX airlock_shape_idx ON pg_temp.airlock_shape")
                && shape.contains("lower(a)")
                && shape.contains("INCLUDE (b)")
                && shape.contains("WHERE")
                && !shape.contains("CONCURRENTLY"),
            "{shape}"
        );
        assert_eq!(
            steps[1].promise,
            Some(Promise::Validated {
                schema: Some("s".into()),
                table: "t".into(),
                constraints: vec!["c1".into(), "c2".into()]
            })
        );
        assert_eq!(
            steps[2].promise,
            Some(Promise::EnumValue {
                schema: Some("s".into()),
                name: "mood".into(),
                value: "meh".into()
            })
        );
    }

    #[test]
    fn index_definitions_compare_whatever_the_names() {
        let a = "CREATE UNIQUE INDEX t_c_idx ON public.t USING btree (c) WHERE (c > 0)";
        let b = "CREATE UNIQUE INDEX airlock_shape_idx ON pg_temp_3.airlock_shape USING btree (c) WHERE (c > 0)";
        assert!(same_index_definition(a, b));
        for other in [
            "CREATE INDEX t_c_idx ON public.t USING btree (c) WHERE (c > 0)",
            "CREATE UNIQUE INDEX t_c_idx ON public.t USING btree (d) WHERE (c > 0)",
            "CREATE UNIQUE INDEX t_c_idx ON public.t USING hash (c) WHERE (c > 0)",
            "CREATE UNIQUE INDEX t_c_idx ON public.t USING btree (c) WHERE (c > 1)",
            "CREATE UNIQUE INDEX t_c_idx ON public.t USING btree (c)",
            "CREATE SEQUENCE t_c_idx",
        ] {
            assert!(!same_index_definition(a, other), "{other}");
        }
    }
}

#[cfg(test)]
mod checker_tests {
    #[test]
    fn an_online_file_refuses_dml() {
        let p = crate::check(
            "f.sql",
            "CREATE INDEX CONCURRENTLY t_b ON app.t (b);\nUPDATE app.t SET a = 1;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_u ON app.t (u);\n",
            crate::SqlRole::Online,
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].line, 2);
    }
}
