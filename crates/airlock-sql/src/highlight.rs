//! SQL cut into classed spans for display (the dossier's highlighted SQL), by the SQL
//! room's own tokenizer ([`crate::lex::tokens`]): strings, quoted identifiers, comments and
//! dollar-quoted bodies are one span each, as PostgreSQL's scanner reads them.
//!
//! Invariant: the spans cover the text exactly, in order, with no gap and no overlap,
//! so a renderer that escapes each span shows every byte; a text that does not
//! tokenize (COPY data, a damaged file) is `None`, never a partial guess.

use crate::lex::tokens::{tokenize, Tok};

/// What a span of SQL is, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Keyword,
    /// An unquoted identifier (or a word this list does not know as a keyword).
    Word,
    /// A `"quoted identifier"`.
    Quoted,
    /// A string constant of any kind (`'…'`, `E'…'`, `$tag$…$tag$`).
    Str,
    Number,
    Comment,
    /// Blanks, punctuation, parameters.
    Plain,
}

/// A byte range of the text and its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub class: Class,
}

/// The words shown as keywords: the commands and clauses a release's SQL is made of
/// (PostgreSQL's full list has 500; a word missing here is shown as a plain word).
const KEYWORDS: &[&str] = &[
    "ADD",
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "CASCADE",
    "CASE",
    "CAST",
    "CHECK",
    "COLUMN",
    "COMMENT",
    "COMMIT",
    "CONCURRENTLY",
    "CONFLICT",
    "CONSTRAINT",
    "COPY",
    "CREATE",
    "CROSS",
    "DATA",
    "DEFAULT",
    "DEFERRABLE",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DO",
    "DOMAIN",
    "DROP",
    "ELSE",
    "END",
    "ENUM",
    "EXCEPT",
    "EXECUTE",
    "EXISTS",
    "EXTENSION",
    "FALSE",
    "FOR",
    "FOREIGN",
    "FROM",
    "FULL",
    "FUNCTION",
    "GRANT",
    "GROUP",
    "HAVING",
    "IF",
    "IN",
    "INDEX",
    "INNER",
    "INSERT",
    "INTEGER",
    "INTERSECT",
    "INTO",
    "IS",
    "JOIN",
    "KEY",
    "LANGUAGE",
    "LATERAL",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LOCK",
    "MATERIALIZED",
    "MERGE",
    "NOT",
    "NOTHING",
    "NULL",
    "OF",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OWNER",
    "PARTITION",
    "POLICY",
    "PRIMARY",
    "PROCEDURE",
    "REFERENCES",
    "REFRESH",
    "RENAME",
    "REPLACE",
    "RETURNING",
    "RETURNS",
    "REVOKE",
    "RIGHT",
    "ROLE",
    "ROLLBACK",
    "ROW",
    "SCHEMA",
    "SELECT",
    "SEQUENCE",
    "SET",
    "STDIN",
    "TABLE",
    "TEXT",
    "THEN",
    "TO",
    "TRIGGER",
    "TRUE",
    "TRUNCATE",
    "TYPE",
    "UNION",
    "UNIQUE",
    "UPDATE",
    "USING",
    "VALID",
    "VALIDATE",
    "VALUES",
    "VIEW",
    "WHEN",
    "WHERE",
    "WITH",
];

/// The spans of `sql`, covering it whole; `None` when it does not tokenize.
pub fn highlight(sql: &str) -> Option<Vec<Span>> {
    let tokens = tokenize(sql, 1).ok()?;
    let mut out = Vec::with_capacity(tokens.len() * 2);
    let mut at = 0;
    for t in &tokens {
        if t.start > at {
            gap(sql, at, t.start, &mut out);
        }
        let class = match &t.tok {
            Tok::Word(w) if w.as_bytes()[0].is_ascii_digit() => Class::Number,
            Tok::Word(w) if KEYWORDS.binary_search(&w.as_str()).is_ok() => Class::Keyword,
            Tok::Word(_) => Class::Word,
            Tok::Quoted(_) | Tok::UnicodeQuoted => Class::Quoted,
            Tok::Str => Class::Str,
            Tok::Param | Tok::Punct(_) => Class::Plain,
        };
        out.push(Span {
            start: t.start,
            end: t.end,
            class,
        });
        at = t.end;
    }
    if at < sql.len() {
        gap(sql, at, sql.len(), &mut out);
    }
    Some(out)
}

/// What lies between two tokens: blanks and comments only (the tokenizer skipped
/// nothing else), so every `--` or `/*` here opens a comment.
fn gap(sql: &str, from: usize, to: usize, out: &mut Vec<Span>) {
    let b = sql.as_bytes();
    let mut i = from;
    let mut plain = from;
    let push = |start: usize, end: usize, class: Class, out: &mut Vec<Span>| {
        if end > start {
            out.push(Span { start, end, class });
        }
    };
    while i < to {
        let end = match (b[i], b.get(i + 1)) {
            (b'-', Some(b'-')) => b[i..to]
                .iter()
                .position(|&c| c == b'\n' || c == b'\r')
                .map_or(to, |p| i + p),
            (b'/', Some(b'*')) => block_end(b, i, to),
            _ => {
                i += 1;
                continue;
            }
        };
        push(plain, i, Class::Plain, out);
        push(i, end, Class::Comment, out);
        i = end;
        plain = end;
    }
    push(plain, to, Class::Plain, out);
}

/// The end of the (nesting) block comment opened at `i`, at most `to`.
fn block_end(b: &[u8], mut i: usize, to: usize) -> usize {
    let mut depth = 0u32;
    i += 2;
    while i + 1 < to {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') if depth == 0 => return i + 2,
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
            }
            _ => i += 1,
        }
    }
    to
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyword_list_is_sorted_for_binary_search() {
        assert!(KEYWORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn spans_cover_the_text_and_class_each_token() {
        let sql = "-- note\nCREATE TABLE \"T\" (a int DEFAULT 'x;y' /* c /* n */ */);\nSELECT $$body$$, 42;";
        let spans = highlight(sql).unwrap();
        let mut at = 0;
        for s in &spans {
            assert_eq!(s.start, at, "{spans:?}");
            at = s.end;
        }
        assert_eq!(at, sql.len());
        let of = |text: &str| {
            let start = sql.find(text).unwrap();
            spans
                .iter()
                .find(|s| s.start == start)
                .map(|s| (s.class, &sql[s.start..s.end]))
        };
        assert_eq!(of("-- note"), Some((Class::Comment, "-- note")));
        assert_eq!(of("CREATE"), Some((Class::Keyword, "CREATE")));
        assert_eq!(of("\"T\""), Some((Class::Quoted, "\"T\"")));
        assert_eq!(of("'x;y'"), Some((Class::Str, "'x;y'")));
        assert_eq!(of("/* c"), Some((Class::Comment, "/* c /* n */ */")));
        assert_eq!(of("$$body$$"), Some((Class::Str, "$$body$$")));
        assert_eq!(of("42"), Some((Class::Number, "42")));
        assert_eq!(of("a int"), Some((Class::Word, "a")));
        assert_eq!(highlight("SELECT 'open"), None);
    }
}
