//! Which `ALTER COLUMN … TYPE` rewrites its table, by the server's own rules (issue
//! 76, item 10). PostgreSQL keeps the rows as they are when the conversion is
//! binary-coercible (the same type, or a `pg_cast` entry with `castmethod = 'b'`) and
//! any length coercion after it is one its type's support function proves a no-op: a
//! longer or unbounded `varchar` or `bit varying`, a `numeric` of the same scale and no
//! less precision, a `time` or `timestamp` of no less precision. `varchar(100)` to
//! `varchar(255)` or to `text` is no rewrite; `int` to `bigint` is one.
//!
//! The column's type is read from the catalog now; a column the release retyped
//! before, a domain, an array, a type this does not know, and a relation the release
//! creates are left as a rewrite.
//!
//! Invariant: reads the catalog only, in a read-only transaction rolled back; it only
//! ever takes a rewrite back (with the reason), never adds one.

use crate::session::hermetic::{quote_literal, render_search_path};
use airlock_sql::TypeRef;

const VARCHAR: u32 = 1043;
const VARBIT: u32 = 1562;
const NUMERIC: u32 = 1700;
const TIME: u32 = 1083;
const TIMETZ: u32 = 1266;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;
/// `time`, `timestamp` and their zoned forms keep at most 6 fractional digits.
const MAX_PRECISION: i64 = 6;

/// The column's type now, and the new type as the catalog resolves it.
struct Now {
    old_oid: u32,
    old_mod: i32,
    old_text: String,
    new_oid: u32,
    new_kind: String,
    binary: bool,
}

/// One `ALTER COLUMN … TYPE` asked about: the table, the column, the new type as
/// written.
pub(crate) struct Asked<'a> {
    pub relation: &'a str,
    pub column: &'a str,
    pub to: &'a TypeRef,
}

/// For each type change asked (in release order, each column's first only), why
/// PostgreSQL makes it without a rewrite (`Some`), or `None`: a rewrite, or not known.
/// A failure to read answers `None` for all.
pub(crate) fn no_rewrite(
    client: &mut postgres::Client,
    search_path: &[String],
    asked: &[Asked<'_>],
) -> Vec<Option<String>> {
    let mut out = vec![None; asked.len()];
    if asked.is_empty() {
        return out;
    }
    let list = |f: &dyn Fn(&Asked<'_>) -> String| {
        asked
            .iter()
            .map(|a| quote_literal(&f(a)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (rels, cols, types) = (
        list(&|a| a.relation.to_string()),
        list(&|a| a.column.to_string()),
        list(&|a| a.to.text.clone()),
    );
    let sql = format!(
        "BEGIN READ ONLY; SET LOCAL search_path TO {}; \
         SELECT n.i, a.atttypid, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod), t.oid, t.typtype, \
           a.atttypid OPERATOR(pg_catalog.=) t.oid OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c \
             WHERE c.castsource OPERATOR(pg_catalog.=) a.atttypid AND c.casttarget OPERATOR(pg_catalog.=) t.oid \
               AND c.castmethod OPERATOR(pg_catalog.=) 'b') \
         FROM ROWS FROM (pg_catalog.unnest(ARRAY[{rels}]::pg_catalog.text[]), \
           pg_catalog.unnest(ARRAY[{cols}]::pg_catalog.text[]), \
           pg_catalog.unnest(ARRAY[{types}]::pg_catalog.text[])) WITH ORDINALITY AS n(r, c, t, i) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(n.r) \
           AND a.attname OPERATOR(pg_catalog.=) n.c AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped \
         JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regtype(n.t); ROLLBACK",
        render_search_path(search_path)
    );
    let Ok(rows) = client.simple_query(&sql) else {
        let _ = client.batch_execute("ROLLBACK");
        return out;
    };
    for m in rows {
        let postgres::SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        let num = |i: usize| r.get(i).and_then(|v| v.parse::<i64>().ok());
        let (Some(at), Some(old_oid), Some(old_mod), Some(new_oid)) =
            (num(0), num(1), num(2), num(4))
        else {
            continue;
        };
        let now = Now {
            old_oid: old_oid as u32,
            old_mod: old_mod as i32,
            old_text: r.get(3).unwrap_or_default().to_string(),
            new_oid: new_oid as u32,
            new_kind: r.get(5).unwrap_or_default().to_string(),
            binary: r.get(6) == Some("t"),
        };
        let Some(i) = usize::try_from(at - 1).ok().filter(|&k| k < asked.len()) else {
            continue;
        };
        if keeps_rows(&now, asked[i].to) {
            out[i] = Some(format!(
                "no rewrite: {} to {} keeps every row as it is (binary-coercible, as PostgreSQL judges it)",
                now.old_text, asked[i].to.text
            ));
        }
    }
    out
}

/// PostgreSQL's rule: the conversion is binary-coercible and the new type's length
/// coercion, if any, is one its support function removes.
fn keeps_rows(now: &Now, to: &TypeRef) -> bool {
    if to.array || now.new_kind != "b" || !now.binary {
        return false;
    }
    let mods = to.typmods.as_slice();
    if mods.is_empty() {
        // No length coercion, but `char` and `bit` mean `char(1)` and `bit(1)`.
        return !matches!(now.new_oid, 1042 | 1560);
    }
    if now.old_oid != now.new_oid {
        // From an unbounded value of another type, the length is checked row by row.
        return false;
    }
    let old = i64::from(now.old_mod);
    match (now.new_oid, mods) {
        (VARCHAR, [n]) => old >= 4 && *n >= old - 4,
        (VARBIT, [n]) => old >= 0 && *n >= old,
        (NUMERIC, [p, rest @ ..]) if rest.len() <= 1 => {
            let s = rest.first().copied().unwrap_or(0);
            old >= 4 && s == (old - 4) & 0xffff && *p >= ((old - 4) >> 16) & 0xffff
        }
        (TIME | TIMETZ | TIMESTAMP | TIMESTAMPTZ, [p]) => {
            *p >= MAX_PRECISION || (old >= 0 && *p >= old)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(old_oid: u32, old_mod: i32, new_oid: u32, binary: bool) -> Now {
        Now {
            old_oid,
            old_mod,
            old_text: String::new(),
            new_oid,
            new_kind: "b".into(),
            binary,
        }
    }

    fn to(typmods: &[i64]) -> TypeRef {
        TypeRef {
            names: vec!["x".into()],
            typmods: typmods.to_vec(),
            array: false,
            text: String::new(),
        }
    }

    #[test]
    fn the_servers_rule_for_lengths_and_precisions() {
        // varchar(100) → varchar(255) | varchar(50)
        assert!(keeps_rows(&now(VARCHAR, 104, VARCHAR, true), &to(&[255])));
        assert!(!keeps_rows(&now(VARCHAR, 104, VARCHAR, true), &to(&[50])));
        // varchar (unbounded) → varchar(10): checked row by row.
        assert!(!keeps_rows(&now(VARCHAR, -1, VARCHAR, true), &to(&[10])));
        // numeric(10,2) → numeric(12,2) | numeric(12,4) | numeric
        let n = ((10 << 16) | 2) + 4;
        assert!(keeps_rows(&now(NUMERIC, n, NUMERIC, true), &to(&[12, 2])));
        assert!(!keeps_rows(&now(NUMERIC, n, NUMERIC, true), &to(&[12, 4])));
        assert!(keeps_rows(&now(NUMERIC, n, NUMERIC, true), &to(&[])));
        // timestamp(3) → timestamp(6) | timestamp(1)
        assert!(keeps_rows(&now(TIMESTAMP, 3, TIMESTAMP, true), &to(&[6])));
        assert!(!keeps_rows(&now(TIMESTAMP, 3, TIMESTAMP, true), &to(&[1])));
        // char → char(1) by default; not binary-coercible: a rewrite.
        assert!(!keeps_rows(&now(1042, 14, 1042, true), &to(&[])));
        assert!(!keeps_rows(&now(23, -1, 20, false), &to(&[])));
        // text → varchar(20): a length check of every row.
        assert!(!keeps_rows(&now(25, -1, VARCHAR, true), &to(&[20])));
        // A domain is left as a rewrite.
        let mut d = now(VARCHAR, 104, 16400, true);
        d.new_kind = "d".into();
        assert!(!keeps_rows(&d, &to(&[])));
    }
}
