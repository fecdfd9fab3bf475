//! Migrations that cannot run inside a transaction, as the peer tools run them: a file
//! of `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX … CONCURRENTLY`
//! or `VACUUM` statements becomes an `online = true` tier by itself, as written; a file
//! that mixes them with statements a transaction runs is cut at statement boundaries
//! (airlock-sql's splitter, the one apply runs) into consecutive tiers, each online or
//! transactional, in the file's order.
//!
//! Invariant: the parts of a cut file are its bytes, contiguous and in order (their
//! concatenation is the file); nothing is rewritten. A file whose statements cannot be
//! told (not UTF-8, not parsed) or that holds its own `BEGIN`/`COMMIT` beside such a
//! statement is never cut: it stays one transactional tier and `lint` names what
//! refuses it (the reason is reported).

use airlock_sql::pg_query::{self, NodeEnum};
use airlock_sql::{check, split_all, Piece, SqlRole};

/// One part of a cut file: whether it runs online, its bytes, its first and last line.
pub(super) struct Part {
    pub online: bool,
    pub bytes: Vec<u8>,
    pub lines: (usize, usize),
}

/// How a script runs.
pub(super) enum Runs {
    /// Whole, in a transaction (nothing in it needs otherwise, or it cannot be told).
    Transactional,
    /// Whole, online: a statement of it cannot run in a transaction, and an online
    /// tier accepts all of it.
    Online,
    /// Cut at statement boundaries into these parts.
    Cut(Vec<Part>),
    /// Not cut, for this reason: one transactional tier, which lint then refuses.
    Kept(String),
}

/// Whether the statement cannot run inside a transaction block (and an online tier is
/// where airlock runs it); the transaction it leaves open: `Some(true)` after `BEGIN`,
/// `Some(false)` after `COMMIT`/`ROLLBACK`, None when it holds no transaction control.
fn kind(sql: &str) -> Option<(bool, Option<bool>)> {
    use pg_query::protobuf::TransactionStmtKind as K;
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let mut outside = false;
    let mut control = None;
    for raw in &parsed.protobuf.stmts {
        match raw.stmt.as_ref().and_then(|n| n.node.as_ref())? {
            NodeEnum::IndexStmt(s) if s.concurrent => outside = true,
            NodeEnum::DropStmt(s) if s.concurrent => outside = true,
            NodeEnum::ReindexStmt(s) => outside |= s.params.iter().any(|p| {
                matches!(p.node.as_ref(), Some(NodeEnum::DefElem(d)) if d.defname == "concurrently")
            }),
            NodeEnum::VacuumStmt(s) if s.is_vacuumcmd => outside = true,
            NodeEnum::TransactionStmt(t) => {
                control = match K::try_from(t.kind) {
                    Ok(K::TransStmtBegin | K::TransStmtStart) => Some(true),
                    Ok(K::TransStmtCommit | K::TransStmtRollback) => Some(false),
                    _ => control,
                }
            }
            _ => {}
        }
    }
    Some((outside, control))
}

fn lines_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// How the script `file` (its bytes) runs.
pub(super) fn runs(file: &str, bytes: &[u8]) -> Runs {
    let Ok(sql) = std::str::from_utf8(bytes) else {
        return Runs::Transactional;
    };
    let Ok(pieces) = split_all(file, bytes) else {
        return Runs::Transactional;
    };
    // (online, start, end, line) of each statement; a Skip (a `BEGIN;`/`COMMIT;`
    // wrapper airlock subsumes, a `\restrict` line) joins the statement before it.
    let mut stmts: Vec<(bool, usize, usize, usize)> = vec![];
    let mut in_block = false;
    for p in &pieces {
        match p {
            Piece::Sql { start, end, line } => {
                let (s, e) = (*start as usize, *end as usize);
                let Some((outside, _)) = kind(&sql[s..e]) else {
                    return Runs::Transactional;
                };
                if outside && in_block {
                    return Runs::Kept(format!("line {line} cannot run inside a transaction (CONCURRENTLY, VACUUM) and stands between the file's own BEGIN and COMMIT, where psql and the peer tool refuse it too; move it after the COMMIT"));
                }
                stmts.push((outside, s, e, *line));
            }
            other => {
                if let Piece::Skip { start, end } = other {
                    if let Some((_, Some(open))) = kind(&sql[*start as usize..*end as usize]) {
                        in_block = open;
                    }
                }
                match stmts.last_mut() {
                    Some(last) => last.2 = other.end() as usize,
                    None => stmts.push((false, 0, other.end() as usize, 1)),
                }
            }
        }
    }
    if !stmts.iter().any(|s| s.0) {
        return Runs::Transactional;
    }
    if check(file, sql, SqlRole::Online).is_empty() || stmts.iter().all(|s| s.0) {
        return Runs::Online;
    }
    let mut parts: Vec<Part> = vec![];
    for (online, s, e, line) in stmts {
        let last = lines_in(sql[..e].trim_end().as_bytes()) + 1;
        match parts.last_mut() {
            Some(p) if p.online == online => {
                p.bytes.extend_from_slice(&bytes[s..e]);
                p.lines.1 = last;
            }
            _ => parts.push(Part {
                online,
                bytes: bytes[s..e].to_vec(),
                lines: (line, last),
            }),
        }
    }
    Runs::Cut(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_statements_make_the_file_online_or_cut_it() {
        assert!(matches!(
            runs("a.sql", b"CREATE TABLE t (a int);\n"),
            Runs::Transactional
        ));
        assert!(matches!(
            runs("a.sql", b"CREATE INDEX CONCURRENTLY t_a ON t (a);\n"),
            Runs::Online
        ));
        assert!(matches!(
            runs("a.sql", b"DROP INDEX CONCURRENTLY t_a;\n"),
            Runs::Online
        ));
        let src = b"ALTER TABLE t ADD COLUMN b int;\n-- the index\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nCOMMENT ON COLUMN t.b IS 'b';\n\n";
        let Runs::Cut(parts) = runs("a.sql", src) else {
            panic!("not cut")
        };
        assert_eq!(
            parts.iter().map(|p| p.online).collect::<Vec<_>>(),
            vec![false, true, false]
        );
        let whole: Vec<u8> = parts.iter().flat_map(|p| p.bytes.clone()).collect();
        assert_eq!(whole, src);
        assert_eq!(parts[1].lines, (3, 3));
        // A wrapper around the transactional part stays with it.
        let Runs::Cut(parts) = runs("a.sql", b"BEGIN;\nALTER TABLE t ADD COLUMN b int;\nCOMMIT;\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n") else { panic!("not cut") };
        assert_eq!(
            parts[0].bytes,
            b"BEGIN;\nALTER TABLE t ADD COLUMN b int;\nCOMMIT;"
        );
        assert!(matches!(
            runs("a.sql", b"ALTER TABLE t ADD COLUMN b int;\nBEGIN;\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nCOMMIT;\n"),
            Runs::Kept(_)
        ));
    }
}
