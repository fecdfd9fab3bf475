//! Online steps: the statements a tier declared `online = true` may hold, and how
//! execution cuts such a tier into steps.
//!
//! An online tier runs outside any transaction, one statement at a time, each recorded
//! as it completes; an interrupted run continues with the next statement, and the one
//! that was running when it stopped runs again. So a statement belongs in an online
//! tier only when it must run outside a transaction (or gains by it) and is safe to
//! run again after an interruption: the `CONCURRENTLY` family, `VALIDATE CONSTRAINT`,
//! `VACUUM`/`ANALYZE`, `ALTER TYPE … ADD VALUE IF NOT EXISTS`.
//!
//! Invariant: every statement of an online tier is judged here by PostgreSQL's parser
//! (plain DML included, which the transactional rules never hold), and
//! [`online_steps`] cuts a file exactly where lint judged it, one statement per step.

use super::split::{split_all, Piece};
use super::SqlProblem;
use pg_query::protobuf::{AlterTableType, Node};
use pg_query::NodeEnum;

const ALLOWED: &str = "CREATE INDEX CONCURRENTLY IF NOT EXISTS, DROP INDEX CONCURRENTLY IF EXISTS, REINDEX … (CONCURRENTLY), ALTER TABLE … VALIDATE CONSTRAINT, ALTER TABLE … DETACH PARTITION … CONCURRENTLY, VACUUM, ANALYZE, ALTER TYPE … ADD VALUE IF NOT EXISTS";

/// A plain data statement (INSERT, UPDATE, …) in an online tier.
pub(super) fn dml_refusal() -> String {
    format!("plain data changes (INSERT, UPDATE, DELETE, MERGE, COPY, SELECT) do not belong in an online tier: outside a transaction, a run interrupted half-way leaves part of them, and a second run repeats them. Put them in a transactional tier (batch a large backfill across releases). An online tier holds only: {ALLOWED}")
}

/// The problem with `node` as an online step, if any.
fn online_problem(node: &NodeEnum) -> Option<String> {
    let refuse = |why: &str| Some(format!("{why} (an online tier holds only: {ALLOWED})"));
    match node {
        NodeEnum::IndexStmt(s) if s.concurrent => {
            if s.idxname.is_empty() {
                refuse("name the index (CREATE INDEX CONCURRENTLY IF NOT EXISTS name ON …): airlock finds an interrupted build's INVALID index by its name")
            } else if !s.if_not_exists {
                refuse("write CREATE INDEX CONCURRENTLY IF NOT EXISTS: a step interrupted after its build finished runs again, and must find its index there without failing")
            } else {
                None
            }
        }
        NodeEnum::IndexStmt(_) => refuse("a plain CREATE INDEX blocks every write to its table for the whole build; in an online tier write CREATE INDEX CONCURRENTLY IF NOT EXISTS"),
        NodeEnum::DropStmt(s) if s.concurrent => {
            if s.missing_ok {
                None
            } else {
                refuse("write DROP INDEX CONCURRENTLY IF EXISTS: a step interrupted after the drop runs again, and must not fail when the index is gone")
            }
        }
        NodeEnum::ReindexStmt(_) => None,
        NodeEnum::VacuumStmt(s) => {
            let full = s.options.iter().any(|o| {
                matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname.eq_ignore_ascii_case("full")
                    && !matches!(d.arg.as_ref().and_then(|a| a.node.as_ref()),
                        Some(NodeEnum::Boolean(b)) if !b.boolval))
            });
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
        NodeEnum::AlterTableStmt(s) if !s.cmds.is_empty() && s.cmds.iter().all(online_table_cmd) => None,
        _ => refuse("this statement is not safe to run outside a transaction and again after an interruption; put it in a transactional tier"),
    }
}

/// An `ALTER TABLE` command an online step may make.
fn online_table_cmd(c: &Node) -> bool {
    let Some(NodeEnum::AlterTableCmd(cmd)) = &c.node else {
        return false;
    };
    cmd.subtype == AlterTableType::AtValidateConstraint as i32
        || (cmd.subtype == AlterTableType::AtDetachPartition as i32
            && matches!(cmd.def.as_ref().and_then(|d| d.node.as_ref()),
                Some(NodeEnum::PartitionCmd(p)) if p.concurrent))
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

/// An index an online step builds (`CREATE INDEX CONCURRENTLY IF NOT EXISTS`), as the
/// statement names it: where to look for an interrupted build's INVALID leftover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexBuild {
    /// The table's schema as written (`None`: found through the search_path).
    pub schema: Option<String>,
    pub table: String,
    pub index: String,
}

/// One statement of an online tier: its bytes in the file, its line, and the index it
/// builds, if it builds one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnlineStep {
    pub start: u64,
    pub end: u64,
    pub line: usize,
    pub builds: Option<IndexBuild>,
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
        let first = super::tokens::tokenize(text, 1)
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
            NodeEnum::IndexStmt(s) if s.concurrent => s.relation.as_ref().map(|r| IndexBuild {
                schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
                table: r.relname.clone(),
                index: s.idxname.clone(),
            }),
            _ => None,
        };
        out.push(OnlineStep {
            start,
            end,
            line,
            builds,
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
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a) WHERE a > 0;",
            "DROP INDEX CONCURRENTLY IF EXISTS s.i;",
            "REINDEX INDEX CONCURRENTLY i;",
            "REINDEX (CONCURRENTLY) TABLE t;",
            "ALTER TABLE t VALIDATE CONSTRAINT c;",
            "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;",
            "VACUUM (ANALYZE) t;",
            "VACUUM t;",
            "ANALYZE t;",
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh' AFTER 'ok';",
        ] {
            assert_eq!(judge(sql), Vec::<String>::new(), "{sql}");
        }
    }

    #[test]
    fn what_is_not_safe_to_retry_is_refused_with_the_reason() {
        for (sql, why) in [
            ("CREATE INDEX CONCURRENTLY i ON t (a);", "IF NOT EXISTS"),
            ("CREATE INDEX CONCURRENTLY ON t (a);", "name the index"),
            ("CREATE INDEX i ON t (a);", "blocks every write"),
            ("DROP INDEX CONCURRENTLY i;", "IF EXISTS"),
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
                index: "i".into()
            })
        );
        assert_eq!(steps[1].line, 4);
        assert_eq!(steps[1].builds, None);
        assert_eq!(
            &sql[steps[1].start as usize..steps[1].end as usize].trim(),
            &"ANALYZE t;"
        );
        let err = online_steps("f.sql", b"ANALYZE t;\nUPDATE t SET a = 1;\n").unwrap_err();
        assert_eq!(err.line, 2);
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
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[1].line, 2);
    }
}
