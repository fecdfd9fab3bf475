//! The functions the rest of an `INSERT` calls, read off its words without parsing (a
//! data file of a million INSERTs is not parsed a million times): a name directly
//! followed by `(` is a call, unless it is SQL's own syntax (`VALUES (`, `IN (`,
//! `COALESCE(`, a type's modifiers after `::`…).
//!
//! Invariant: what this cannot read for certain (an escape string, a dollar quote, a
//! comment) is `None`, and the statement is parsed instead; a word it takes for a call
//! that is not one only makes what follows "not predictable" (conservative), never the
//! reverse: every call the parser would see is named.

use super::Relation;

/// Words followed by `(` that are SQL's syntax or built-in expressions, not calls of
/// a function in `pg_proc` (lower case).
const NOT_CALLS: &[&str] = &[
    "values",
    "conflict",
    "in",
    "exists",
    "any",
    "all",
    "some",
    "row",
    "cast",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "extract",
    "position",
    "substring",
    "overlay",
    "trim",
    "over",
    "filter",
    "group",
    "using",
    "on",
    "and",
    "or",
    "not",
    "then",
    "else",
    "when",
    "case",
    "as",
    "select",
    "from",
    "where",
    "returning",
    "set",
    "into",
    "lateral",
    "join",
    "by",
    "with",
    "is",
    "like",
    "ilike",
    "similar",
    "between",
    "distinct",
    "array",
    "default",
    "do",
    "update",
    "nothing",
    "constraint",
    "window",
    "partition",
    "order",
    "limit",
    "offset",
    "union",
    "except",
    "intersect",
    "having",
    "except",
    "collate",
];

/// The functions called after an INSERT's table, or `None` when the text holds what
/// this does not read for certain.
pub(super) fn calls_after(rest: &str) -> Option<Vec<Relation>> {
    let b = rest.as_bytes();
    let mut out: Vec<Relation> = Vec::new();
    // The name read last (its parts), and whether `::` came right before it.
    let mut name: Vec<String> = Vec::new();
    let mut after_cast = false;
    let mut dotted = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => {
                if i > 0
                    && matches!(
                        b[i - 1],
                        b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'u' | b'U' | b'&'
                    )
                {
                    return None;
                }
                i = skip_quoted(b, i, b'\'')?;
                name.clear();
                after_cast = false;
                continue;
            }
            b'"' => {
                let end = skip_quoted(b, i, b'"')?;
                let ident = rest[i + 1..end - 1].replace("\"\"", "\"");
                push_part(&mut name, &mut dotted, ident);
                i = end;
                continue;
            }
            b'$' | b'\\' => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'.' if !name.is_empty() => dotted = true,
            b':' if b.get(i + 1) == Some(&b':') => {
                name.clear();
                after_cast = true;
                i += 2;
                continue;
            }
            b'(' => {
                if !name.is_empty() && !after_cast {
                    let call = name.len() > 1 || !NOT_CALLS.contains(&name[0].as_str());
                    if call {
                        let mut parts = name.clone();
                        let fname = parts.pop().unwrap_or_default();
                        out.push(Relation {
                            schema: parts.pop(),
                            name: fname,
                        });
                    }
                }
                name.clear();
                after_cast = false;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                push_part(&mut name, &mut dotted, rest[start..i].to_ascii_lowercase());
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            c if c >= 0x80 => return None,
            _ => {
                name.clear();
                after_cast = false;
            }
        }
        i += 1;
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// A word read: the next part of a dotted name, or a name of its own.
fn push_part(name: &mut Vec<String>, dotted: &mut bool, part: String) {
    if !*dotted {
        name.clear();
    }
    *dotted = false;
    name.push(part);
}

/// The index after the closing quote of the quoted text opening at `i` (a doubled
/// quote inside is part of it); `None` when it does not close.
fn skip_quoted(b: &[u8], i: usize, q: u8) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
                continue;
            }
            return Some(j + 1);
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::calls_after;

    fn names(s: &str) -> Option<Vec<String>> {
        calls_after(s).map(|v| v.iter().map(|r| r.to_string()).collect())
    }

    #[test]
    fn calls_are_read_off_the_words_and_syntax_is_not_a_call() {
        assert_eq!(names(" VALUES (1, 'a(b)', now())").unwrap(), ["now"]);
        assert_eq!(
            names(" (a, b) VALUES (md5('x'), public.f(1)) ON CONFLICT (a) DO NOTHING").unwrap(),
            ["md5", "public.f"]
        );
        assert_eq!(
            names(" VALUES ('x'::varchar(3), COALESCE(1, 2), \"My\".\"Fn\"(2))").unwrap(),
            ["\"My\".\"Fn\""]
        );
        assert_eq!(
            names(" SELECT x FROM y WHERE z IN (1, 2)").unwrap(),
            Vec::<String>::new()
        );
        for unsure in [
            " VALUES (E'a\\'b')",
            " VALUES ($$x$$)",
            " VALUES (1) -- f(",
            " VALUES (1 /* f( */)",
        ] {
            assert_eq!(names(unsure), None, "{unsure}");
        }
    }

    /// Every call the parser sees in an INSERT, this names too.
    #[test]
    fn nothing_the_parser_calls_is_missed() {
        for sql in [
            "INSERT INTO t VALUES (now(), md5('a'), s.f(1, g(2)))",
            "INSERT INTO t (a) SELECT lower(x) FROM u WHERE upper(y) = 'Y'",
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = h(excluded.a)",
            "INSERT INTO t VALUES (CAST(k(1) AS int), (SELECT m()))",
        ] {
            let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).unwrap();
            let node = parsed.protobuf.stmts[0]
                .stmt
                .as_ref()
                .unwrap()
                .node
                .as_ref()
                .unwrap();
            let Some((_, _, crate::Step::Calls { functions })) = super::super::expr::calls_in(node)
            else {
                panic!("no calls in {sql}")
            };
            let rest = sql.splitn(4, ' ').nth(3).unwrap();
            let read = calls_after(rest).unwrap();
            for f in &functions {
                assert!(read.contains(f), "{f} missed in {sql}: {read:?}");
            }
        }
    }
}
