//! Sqitch's verify scripts, each run right after its own change, as `sqitch deploy
//! --verify` runs them.
//!
//! A Sqitch verify script is read-only queries that raise an error when its change is
//! missing (`SELECT col FROM t WHERE FALSE`, `SELECT 1/count(*) FROM …`), usually
//! between `BEGIN;` and `ROLLBACK;`; Sqitch runs it with psql after the change, and the
//! change passes when no error was raised. A later change may rename what an earlier
//! verify reads, so each runs where Sqitch runs it: its queries are a second file of
//! its change's tier, after the deploy script, in the same transaction; a query that
//! raises an error fails the tier and with it the apply (all-or-nothing), as it fails
//! `sqitch deploy --verify`. (The bundle format has no probe per tier: a probe runs
//! before the first tier or after the last.)
//!
//! Invariant: only scripts that are exactly read-only queries, as airlock's probe rules
//! accept them, with at most the `BEGIN;` … `ROLLBACK;` pair around them, are brought
//! over (each query text byte for byte); anything else (a `DO` block, a psql
//! meta-command, DML) is left behind with the reason.

use airlock_sql::pg_query::{self, protobuf::TransactionStmtKind, NodeEnum};
use airlock_sql::SqlRole;

/// The queries of the verify script `file` (its text `sql`), each with its line, or why
/// it cannot be part of a probe.
pub(super) fn queries(file: &str, sql: &str) -> Result<Vec<(usize, String)>, String> {
    let line_at = |offset: usize| sql[..offset].matches('\n').count() + 1;
    let not_one = |line: usize, why: &str| {
        format!("not brought over: a verify script is brought over as read-only queries run after its change, and this is not one (line {line}: {why})")
    };
    let parsed = match pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        Ok(p) => p,
        Err(e) => {
            // The lexer's reason first (a psql meta-command, a variable), with its line.
            let why = airlock_sql::check(file, sql, SqlRole::Probe)
                .into_iter()
                .next()
                .map(|p| (p.line, p.message))
                .unwrap_or((1, e.to_string()));
            return Err(not_one(why.0, &why.1));
        }
    };
    let mut stmts: Vec<(usize, &str, Option<TransactionStmtKind>)> = vec![];
    for raw in &parsed.protobuf.stmts {
        let start = raw.stmt_location as usize;
        let end = if raw.stmt_len == 0 {
            sql.len()
        } else {
            start + raw.stmt_len as usize
        };
        let kind = match raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::TransactionStmt(t)) => Some(
                TransactionStmtKind::try_from(t.kind).unwrap_or(TransactionStmtKind::Undefined),
            ),
            _ => None,
        };
        // The statement's own text starts after the comments and blanks before it.
        let text = &sql[start..end];
        let lead = text.len() - skip_blanks_and_comments(text).len();
        stmts.push((line_at(start + lead), &text[lead..], kind));
    }
    // Sqitch's template: `BEGIN;` first and `ROLLBACK;` last, around the queries.
    let begins = |k: &Option<TransactionStmtKind>| {
        matches!(
            k,
            Some(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart)
        )
    };
    if stmts.len() >= 2
        && begins(&stmts[0].2)
        && stmts.last().map(|s| s.2) == Some(Some(TransactionStmtKind::TransStmtRollback))
    {
        stmts.pop();
        stmts.remove(0);
    }
    let mut out = vec![];
    for (line, text, kind) in stmts {
        if kind.is_some() {
            return Err(not_one(
                line,
                "transaction control other than a `BEGIN;` first and a `ROLLBACK;` last",
            ));
        }
        if let Some(p) = airlock_sql::check(file, text, SqlRole::Probe)
            .into_iter()
            .next()
        {
            return Err(not_one(line + p.line - 1, &p.message));
        }
        out.push((line, text.trim_end().to_string()));
    }
    if out.is_empty() {
        return Err("holds no query (Sqitch's template only): nothing to verify".into());
    }
    Ok(out)
}

/// `text` from its first byte that is not whitespace or inside a comment.
fn skip_blanks_and_comments(mut text: &str) -> &str {
    loop {
        let t = text.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            text = rest.find('\n').map_or("", |i| &rest[i..]);
        } else if t.starts_with("/*") {
            // Nested block comments, as PostgreSQL reads them.
            let mut depth = 0usize;
            let b = t.as_bytes();
            let mut i = 0;
            while i + 1 < b.len() {
                if b[i] == b'/' && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b[i + 1] == b'/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            text = &t[i.min(t.len())..];
        } else {
            return t;
        }
    }
}

/// The file of the change's tier holding the verify script `file`'s `queries`, each
/// as written, with its line.
pub(super) fn script(file: &str, queries: &[(usize, String)]) -> String {
    let mut sql = format!(
        "-- Sqitch's verify script {file}, brought over by `airlock import`: its queries, run\n\
         -- right after the change, in its tier's transaction, as `sqitch deploy --verify` runs\n\
         -- them. A query that raises an error fails the tier, and with it the apply.\n"
    );
    for (line, q) in queries {
        // A `;` after a trailing `--` comment would be part of the comment.
        let end = if q.lines().last().is_some_and(|l| l.contains("--")) {
            "\n;"
        } else {
            ";"
        };
        sql.push_str(&format!("-- {file}, line {line}\n{q}{end}\n"));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqitchs_template_gives_its_queries_and_anything_else_is_named() {
        let q = queries(
            "verify/users.sql",
            "-- Verify flipr:users on pg\n\nBEGIN;\n\n/* cols */ SELECT nickname\n  FROM flipr.users WHERE FALSE;\nSELECT 1/count(*) FROM flipr.users; -- end\n\nROLLBACK;\n",
        )
        .unwrap();
        assert_eq!(
            q,
            vec![
                (
                    5,
                    "SELECT nickname\n  FROM flipr.users WHERE FALSE".to_string()
                ),
                (7, "SELECT 1/count(*) FROM flipr.users".to_string()),
            ]
        );
        for (sql, says) in [
            ("DO $$ BEGIN ASSERT true; END $$;", "line 1: "),
            ("\\set ON_ERROR_STOP 1\nSELECT 1;\n", "psql meta-command"),
            ("SELECT 1;\nDELETE FROM t;\n", "line 2: "),
            ("BEGIN;\nSELECT 1;\nCOMMIT;\n", "transaction control"),
            ("SELECT 1 FOR UPDATE;", "line 1: "),
        ] {
            let e = queries("v.sql", sql).unwrap_err();
            assert!(e.contains(says), "{sql}: {e}");
        }
        assert!(queries(
            "v.sql",
            "-- XXX Add verifications here.\nBEGIN;\nROLLBACK;\n"
        )
        .unwrap_err()
        .contains("nothing to verify"));
    }

    #[test]
    fn the_tier_file_is_the_queries_as_written() {
        let q = queries(
            "verify/users.sql",
            "BEGIN;\nSELECT nickname FROM flipr.users WHERE FALSE; -- trailing\nROLLBACK;\n",
        )
        .unwrap();
        let sql = script("verify/users.sql", &q);
        assert!(
            sql.ends_with(
                "-- verify/users.sql, line 2\nSELECT nickname FROM flipr.users WHERE FALSE;\n"
            ),
            "{sql}"
        );
        assert_eq!(airlock_sql::check("v.sql", &sql, SqlRole::Script), vec![]);
    }
}
