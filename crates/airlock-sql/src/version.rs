//! Syntax newer than the bundle's oldest target. Lint parses with PostgreSQL 18's
//! grammar while `[target] min_server_version` may be 13; this short table names the
//! newer syntax that can be told cheaply from a statement's tokens. It is a courtesy,
//! not a guarantee: rehearse runs every statement on the real target server, which
//! finds the rest.
//!
//! Invariant: it only adds problems, in both builds alike (token patterns, no parser).

use crate::lex::tokens::{tokenize, Tok, Token};

/// One piece of syntax and the release that brought it.
struct Since {
    /// `server_version_num` of the first release that accepts it.
    version: i64,
    what: &'static str,
    /// Consecutive tokens: an uppercase word, or `)`.
    pattern: &'static [&'static str],
}

const TABLE: &[Since] = &[
    Since {
        version: 140000,
        what: "BEGIN ATOMIC routine bodies",
        pattern: &["BEGIN", "ATOMIC"],
    },
    Since {
        version: 140000,
        what: "CREATE OR REPLACE TRIGGER",
        pattern: &["CREATE", "OR", "REPLACE", "TRIGGER"],
    },
    Since {
        version: 150000,
        what: "NULLS NOT DISTINCT",
        pattern: &["NULLS", "NOT", "DISTINCT"],
    },
    Since {
        version: 150000,
        what: "the security_invoker view option",
        pattern: &["SECURITY_INVOKER"],
    },
    Since {
        version: 150000,
        what: "publications FOR TABLES IN SCHEMA",
        pattern: &["TABLES", "IN", "SCHEMA"],
    },
    Since {
        version: 150000,
        what: "privileges ON PARAMETER",
        pattern: &["ON", "PARAMETER"],
    },
    Since {
        version: 170000,
        what: "ALTER COLUMN … SET EXPRESSION",
        pattern: &["SET", "EXPRESSION"],
    },
    Since {
        version: 170000,
        what: "COPY's ON_ERROR option",
        pattern: &["ON_ERROR"],
    },
    Since {
        version: 170000,
        what: "the MAINTAIN privilege",
        pattern: &["MAINTAIN", "ON"],
    },
    Since {
        version: 180000,
        what: "virtual generated columns (GENERATED ALWAYS AS (…) VIRTUAL)",
        pattern: &[")", "VIRTUAL"],
    },
    Since {
        version: 180000,
        what: "NOT ENFORCED constraints",
        pattern: &["NOT", "ENFORCED"],
    },
    Since {
        version: 180000,
        what: "WITHOUT OVERLAPS keys",
        pattern: &["WITHOUT", "OVERLAPS"],
    },
];

/// The MERGE statement (PostgreSQL 15), told by the lexer from a statement's first
/// word (DML is never held, so it never reaches [`problems`]).
pub(super) const MERGE: i64 = 150000;

fn matches(t: &Token, want: &str) -> bool {
    match &t.tok {
        Tok::Word(w) => w == want,
        Tok::Punct(b')') => want == ")",
        _ => false,
    }
}

fn major(version: i64) -> i64 {
    version / 10000
}

/// The message for syntax `what` from `since` in a bundle whose oldest target is
/// `min`.
pub(super) fn message(what: &str, since: i64, min: i64) -> String {
    format!(
        "uses {what}, which PostgreSQL {} introduced, but [target] min_server_version = {min} (PostgreSQL {}) lets older servers take this bundle. Raise min_server_version or rewrite the statement (lint checks PostgreSQL 18's grammar and a short list of newer syntax; rehearse on the target finds the rest)",
        major(since),
        major(min)
    )
}

/// Newer syntax in one statement (`sql`, starting on `line`) than `min` accepts.
pub(super) fn problems(sql: &str, line: usize, min: i64) -> Vec<(usize, String)> {
    let Ok(toks) = tokenize(sql, line) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for since in TABLE.iter().filter(|s| s.version > min) {
        let n = since.pattern.len();
        if let Some(w) = toks
            .windows(n)
            .find(|w| w.iter().zip(since.pattern).all(|(t, p)| matches(t, p)))
        {
            out.push((w[0].line(), message(since.what, since.version, min)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_syntax_is_named_only_when_the_target_may_be_older() {
        let sql = "CREATE TABLE t (a int,\n b int GENERATED ALWAYS AS (a * 2) VIRTUAL)";
        let p = problems(sql, 10, 150000);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, 11);
        assert!(p[0].1.contains("PostgreSQL 18"), "{p:?}");
        assert!(problems(sql, 1, 180000).is_empty());
        assert!(problems("CREATE TABLE t (virtual int)", 1, 130000).is_empty());
        assert_eq!(
            problems(
                "CREATE UNIQUE INDEX i ON t (a) NULLS NOT DISTINCT",
                1,
                140000
            )
            .len(),
            1
        );
        assert!(problems(
            "CREATE UNIQUE INDEX i ON t (a) NULLS NOT DISTINCT",
            1,
            150000
        )
        .is_empty());
    }
}
