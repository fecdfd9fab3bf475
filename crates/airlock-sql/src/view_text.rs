//! A view's definition as PostgreSQL 16 and later print it. Up to 15, a view's query
//! kept two placeholder range-table entries (OLD and NEW), so `pg_get_viewdef`
//! qualified every column of the top-level query (`SELECT orders.id FROM orders`);
//! since 16 it leaves them bare when the top-level query reads exactly one relation
//! (`SELECT id FROM orders`). Nested queries (sublinks, CTEs, subqueries in FROM) are
//! printed the same by both.
//!
//! Invariant: the text changes only by dropping `ref.` before a column of the
//! top-level query whose FROM is one item named `ref`; anything else (joins, set
//! operations, a text the scanner refuses) is returned as it was.

use pg_query::protobuf::{KeywordKind, Token};

/// `def` (a `pg_get_viewdef` text) as PostgreSQL 16 prints the same view.
pub fn view_def_as_16(def: &str) -> String {
    unqualify(def).unwrap_or_else(|| def.to_string())
}

struct Tok<'a> {
    text: &'a str,
    start: usize,
    end: usize,
    token: i32,
    keyword: bool,
    /// Inside a parenthesised query (a sublink, CTE or subquery).
    nested: bool,
    /// Parenthesis depth.
    depth: usize,
}

impl Tok<'_> {
    fn is(&self, t: Token) -> bool {
        self.token == t as i32
    }
    fn word(&self, w: &str) -> bool {
        self.keyword && self.text.eq_ignore_ascii_case(w)
    }
    fn name_like(&self) -> bool {
        self.is(Token::Ident) || self.keyword
    }
}

fn tokens(def: &str) -> Option<Vec<Tok<'_>>> {
    let scanned = pg_query::scan(def).ok()?;
    let mut out: Vec<Tok<'_>> = Vec::with_capacity(scanned.tokens.len());
    // true for a parenthesis that opens a query
    let mut stack: Vec<bool> = vec![];
    let raw: Vec<_> = scanned.tokens.iter().collect();
    for (i, t) in raw.iter().enumerate() {
        let (start, end) = (usize::try_from(t.start).ok()?, usize::try_from(t.end).ok()?);
        let text = def.get(start..end)?;
        let token = t.token;
        let keyword = t.keyword_kind != KeywordKind::NoKeyword as i32;
        if token == Token::Ascii41 as i32 {
            stack.pop()?;
        }
        out.push(Tok {
            text,
            start,
            end,
            token,
            keyword,
            nested: stack.iter().any(|q| *q),
            depth: stack.len(),
        });
        if token == Token::Ascii40 as i32 {
            let next = raw.get(i + 1).and_then(|n| {
                def.get(usize::try_from(n.start).ok()?..usize::try_from(n.end).ok()?)
            });
            let query = next.is_some_and(|w| {
                ["select", "with", "values"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            });
            stack.push(query);
        }
    }
    stack.is_empty().then_some(out)
}

const CLAUSES_AFTER_FROM: [&str; 9] = [
    "where", "group", "having", "window", "order", "limit", "offset", "fetch", "for",
];

fn unqualify(def: &str) -> Option<String> {
    let toks = tokens(def)?;
    let top = |t: &Tok<'_>| !t.nested && t.depth == 0;
    // Set operations keep their prefixes on every major.
    if toks
        .iter()
        .any(|t| top(t) && (t.word("union") || t.word("intersect") || t.word("except")))
    {
        return None;
    }
    let from = toks.iter().position(|t| top(t) && t.word("from"))?;
    let end = toks[from + 1..]
        .iter()
        .position(|t| {
            top(t) && (CLAUSES_AFTER_FROM.iter().any(|w| t.word(w)) || t.is(Token::Ascii59))
        })
        .map_or(toks.len(), |p| from + 1 + p);
    // Exactly one item: no join, no comma, only names, dots, ONLY/AS and groups.
    let mut refname = None;
    for t in toks[from + 1..end].iter().filter(|t| t.depth == 0) {
        if t.is(Token::Ascii40) || t.is(Token::Ascii41) || t.is(Token::Ascii46) {
            continue;
        }
        if t.word("only") || t.word("as") {
            continue;
        }
        if !t.name_like() || t.word("join") || t.word("lateral") || t.word("tablesample") {
            return None;
        }
        refname = Some(t.text);
    }
    let refname = refname?;
    let mut out = String::with_capacity(def.len());
    let mut copied = 0;
    for i in 0..toks.len() {
        if (from..end).contains(&i) || toks[i].nested {
            continue;
        }
        let (Some(dot), Some(column)) = (toks.get(i + 1), toks.get(i + 2)) else {
            continue;
        };
        let qualifies = toks[i].name_like()
            && toks[i].text == refname
            && dot.is(Token::Ascii46)
            && dot.start == toks[i].end
            && column.name_like()
            && column.start == dot.end;
        let before = i.checked_sub(1).map(|p| &toks[p]);
        let part_of_longer = before.is_some_and(|b| b.is(Token::Ascii46) || b.is(Token::Typecast));
        let call = toks.get(i + 3).is_some_and(|n| n.is(Token::Ascii40));
        if qualifies && !part_of_longer && !call {
            out.push_str(&def[copied..toks[i].start]);
            copied = dot.end;
        }
    }
    out.push_str(&def[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::view_def_as_16;

    /// What PostgreSQL 15 and 16 print for the same views (whitespace squeezed).
    #[test]
    fn fifteens_view_texts_read_as_sixteens() {
        for (fifteen, sixteen) in [
            (
                " SELECT a.id, a.x FROM a WHERE (a.x > 1);",
                " SELECT id, x FROM a WHERE (x > 1);",
            ),
            (
                " SELECT a.id, b.y FROM (a JOIN b ON ((a.id = b.id)));",
                " SELECT a.id, b.y FROM (a JOIN b ON ((a.id = b.id)));",
            ),
            (
                " SELECT a.id FROM a WHERE (EXISTS ( SELECT 1 FROM b WHERE (b.id = a.id)));",
                " SELECT id FROM a WHERE (EXISTS ( SELECT 1 FROM b WHERE (b.id = a.id)));",
            ),
            (
                " SELECT a.x, count(*) AS n FROM a GROUP BY a.x HAVING (count(*) > 1) ORDER BY a.x;",
                " SELECT x, count(*) AS n FROM a GROUP BY x HAVING (count(*) > 1) ORDER BY x;",
            ),
            (
                " SELECT t.id FROM a t WHERE (t.x IN ( SELECT b.y FROM b));",
                " SELECT id FROM a t WHERE (x IN ( SELECT b.y FROM b));",
            ),
            (
                " WITH c AS ( SELECT a.id FROM a ) SELECT c.id FROM c;",
                " WITH c AS ( SELECT a.id FROM a ) SELECT id FROM c;",
            ),
            (
                " SELECT a.id, ( SELECT max(b.y) AS max FROM b WHERE (b.id = a.id)) AS m FROM a;",
                " SELECT id, ( SELECT max(b.y) AS max FROM b WHERE (b.id = a.id)) AS m FROM a;",
            ),
            (
                " SELECT s.id FROM ( SELECT a.id FROM a) s;",
                " SELECT id FROM ( SELECT a.id FROM a) s;",
            ),
            (
                " SELECT orders.id, orders.total FROM public.orders WHERE (orders.total > (100)::numeric);",
                " SELECT id, total FROM public.orders WHERE (total > (100)::numeric);",
            ),
        ] {
            assert_eq!(view_def_as_16(fifteen), sixteen, "from {fifteen:?}");
            assert_eq!(view_def_as_16(sixteen), sixteen, "16's own {sixteen:?}");
        }
    }

    #[test]
    fn casts_calls_and_set_operations_are_left_alone() {
        for same in [
            " SELECT a.id FROM a UNION SELECT b.id FROM b;",
            " SELECT (a.x)::public.mood AS x FROM a;",
            " SELECT public.add(a.x, 1) AS add FROM a;",
            " SELECT a.id FROM a, b;",
        ] {
            let want = if same.contains("::public") {
                " SELECT (x)::public.mood AS x FROM a;"
            } else if same.contains("public.add") {
                " SELECT public.add(x, 1) AS add FROM a;"
            } else {
                same
            };
            assert_eq!(view_def_as_16(same), want, "{same:?}");
        }
    }
}
