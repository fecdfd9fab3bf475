//! A `DO` block that runs, with `EXECUTE`, a statement that cannot run inside a
//! transaction block (`EXECUTE 'VACUUM …'`, `EXECUTE format('CREATE INDEX CONCURRENTLY
//! %I …', …)`): the server refuses it only when the `EXECUTE` runs, so `rehearse`
//! fails. Lint cannot tell whether it runs (it may sit in a branch never taken), so it
//! warns.
//!
//! Invariant: only a warning, never a refusal; only the first string constant after
//! each `EXECUTE` (the statement's start, or `format`'s pattern) is read.

use super::parser;
use crate::lex::tokens::{tokenize, Tok};
use pg_query::NodeEnum;

/// Warnings for the `DO` statement `sql` starting at `line`: `(line, message)`.
pub(super) fn warnings(sql: &str, line: usize) -> Vec<(usize, String)> {
    let head = sql.trim_start().as_bytes();
    let is_do = head.len() >= 2 && head[..2].eq_ignore_ascii_case(b"DO");
    if !is_do || !sql.to_ascii_uppercase().contains("EXECUTE") {
        return vec![];
    }
    let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) else {
        return vec![];
    };
    let mut out = vec![];
    for raw in &parsed.protobuf.stmts {
        let Some(NodeEnum::DoStmt(s)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        for a in &s.args {
            if let Some(NodeEnum::DefElem(d)) = &a.node {
                if let Some(NodeEnum::String(body)) = d.arg.as_ref().and_then(|x| x.node.as_ref()) {
                    let at = sql.find(&body.sval).unwrap_or(0);
                    let body_line = line + sql[..at].matches('\n').count();
                    out.extend(body_warnings(&body.sval, body_line));
                }
            }
        }
    }
    out
}

fn body_warnings(body: &str, line: usize) -> Vec<(usize, String)> {
    let Ok(toks) = tokenize(body, line) else {
        return vec![];
    };
    let mut out = vec![];
    for (i, t) in toks.iter().enumerate() {
        if !t.is("EXECUTE") {
            continue;
        }
        let first = toks[i + 1..]
            .iter()
            .take_while(|t| !t.punct(b';'))
            .find(|t| t.tok == Tok::Str);
        if let Some(s) = first {
            if let Some(what) = refused(&constant(&body[s.start..s.end])) {
                out.push((
                    t.line(),
                    format!("this DO block runs {what} with EXECUTE, which cannot run inside a transaction block: the server refuses it when the EXECUTE runs, so `rehearse` fails. Write it as a statement of its own (in an `online = true` tier if it is CONCURRENTLY), or leave it out"),
                ));
            }
        }
    }
    out
}

/// The value of a plain `'…'` or `$tag$…$tag$` constant (other forms: empty).
fn constant(text: &str) -> String {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(rest) = text.strip_prefix('$') {
        if let Some(close) = rest.find('$') {
            let tag = &text[..close + 2];
            if let Some(inner) = text[tag.len()..].strip_suffix(tag) {
                return inner.to_string();
            }
        }
    }
    String::new()
}

/// What of `sql` (a statement, or the start of one) cannot run in a transaction block,
/// named for the message.
fn refused(sql: &str) -> Option<String> {
    if let Ok(parsed) = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT) {
        if parsed.protobuf.stmts.iter().any(|raw| {
            raw.stmt
                .as_ref()
                .and_then(|n| n.node.as_ref())
                .is_some_and(|n| parser::script_problem(n).is_some())
        }) {
            return Some(format!("`{}`", shorten(sql)));
        }
        if !parsed.protobuf.stmts.is_empty() {
            return None;
        }
    }
    // A pattern with `%I` or a fragment: its first words, up to anything else.
    let words: Vec<String> = tokenize(sql, 1)
        .ok()?
        .iter()
        .take(6)
        .map_while(|t| t.word().map(str::to_string))
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let hit = match w.as_slice() {
        ["VACUUM", ..] => true,
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => true,
        ["DROP", "INDEX", "CONCURRENTLY", ..] => true,
        ["REINDEX", ..] => w.contains(&"CONCURRENTLY"),
        _ => false,
    };
    hit.then(|| format!("`{} …`", w.join(" ")))
}

fn shorten(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        format!("{} …", one.chars().take(60).collect::<String>())
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_of_vacuum_or_concurrently_is_named() {
        let sql = "DO $$\nBEGIN\n  EXECUTE 'VACUUM ANALYZE t';\nEND\n$$;";
        let w = warnings(sql, 10);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, 12);
        assert!(w[0].1.contains("`VACUUM ANALYZE t`"), "{w:?}");
        let sql = "do $do$\ndeclare r record;\nbegin\n  for r in select relname from pg_class loop\n    execute format('CREATE INDEX CONCURRENTLY %I ON %I (id)', r.relname || '_id', r.relname);\n  end loop;\nend $do$";
        let w = warnings(sql, 1);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, 5);
        assert!(w[0].1.contains("`CREATE INDEX CONCURRENTLY …`"), "{w:?}");
        let sql = "DO 'BEGIN EXECUTE $x$REINDEX (VERBOSE) TABLE CONCURRENTLY t$x$; END'";
        assert_eq!(warnings(sql, 1).len(), 1);
    }

    #[test]
    fn other_executes_and_other_blocks_are_left_alone() {
        for sql in [
            "DO $$BEGIN EXECUTE 'CREATE INDEX i ON t (id)'; END$$",
            "DO $$BEGIN EXECUTE 'ANALYZE t'; END$$",
            "DO $$BEGIN EXECUTE 'SELECT 1' INTO x; PERFORM 'VACUUM'; END$$",
            "DO $$BEGIN RAISE NOTICE 'EXECUTE VACUUM'; END$$",
            "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN EXECUTE 'VACUUM'; END$$",
        ] {
            assert_eq!(warnings(sql, 1), vec![], "{sql}");
        }
    }
}
