//! The questions that decide a statement, each one read-only query in a savepoint:
//! duplicates under a new unique key, NULLs under a new NOT NULL, rows a CHECK or a
//! foreign key rejects.

use crate::quote_ident;
use postgres::Transaction;

/// Keys shown per prediction.
pub(super) const KEYS_SHOWN: i64 = 5;
/// Characters of one key shown.
pub(crate) const KEY_CHARS: usize = 64;

/// What one question found.
pub(super) enum Answer {
    Rows {
        /// `None`: it fails, and the rows could not be counted in time.
        count: Option<i64>,
        keys: Vec<String>,
        what: String,
    },
    /// Cut short by `--predict-timeout`: why, and how long the full question would take.
    Cut {
        why: String,
        full: Option<super::FullQuestion>,
    },
    Unasked(String),
    /// Not asked because of code a database role defines that the question would
    /// reach (the door's refusal, or a CHECK that calls such code): cannot tell.
    Barred(String),
}

impl Answer {
    pub(super) fn unasked(why: impl std::fmt::Display) -> Answer {
        Answer::Unasked(format!("not predictable here ({why})"))
    }
}

/// A question of the target's data, through the door ([`crate::door::ask`]): its rows,
/// or (`Err`) the answer that it was not asked and why ([`Answer::Barred`]: the door
/// refuses only for code a role defines, or a proof it could not make).
pub(super) fn data(
    tx: &mut Transaction<'_>,
    sql: &str,
) -> Result<Result<Vec<postgres::Row>, Answer>, postgres::Error> {
    Ok(crate::door::ask(tx, sql)?.map_err(Answer::Barred))
}

/// A question of the catalog written once in airlock's source, every function,
/// operator, type and relation in it named in `pg_catalog` (a role cannot create
/// objects there, nor a cast between types it does not own): nothing a role defines
/// can be reached from it under any search_path, so the door needs no proof of it
/// (`tests::every_catalog_question_names_only_pg_catalog` parses each one). Only a
/// `&'static str` makes one: nothing the bundle or the catalog supplies is in it but
/// as a parameter.
#[derive(Clone, Copy)]
pub(super) struct Fixed(&'static str);

impl Fixed {
    /// A fixed question; it must be listed in `tests::QUESTIONS`.
    pub(super) const fn new(sql: &'static str) -> Fixed {
        Fixed(sql)
    }

    pub(super) fn sql(self) -> &'static str {
        self.0
    }
}

/// Run `q`, a fixed question of the catalog, in a savepoint (a question cut short
/// does not end the others). Its parameters are text; it is sent unprepared, with
/// their types (one round trip, not a prepare and an execute).
pub(super) fn rows(
    tx: &mut Transaction<'_>,
    q: Fixed,
    params: &[&str],
) -> Result<Vec<postgres::Row>, postgres::Error> {
    let typed: Vec<(&(dyn postgres::types::ToSql + Sync), postgres::types::Type)> = params
        .iter()
        .map(|p| {
            (
                p as &(dyn postgres::types::ToSql + Sync),
                postgres::types::Type::TEXT,
            )
        })
        .collect();
    let mut sp = tx.transaction()?;
    let r = sp.query_typed(q.sql(), &typed);
    sp.rollback()?;
    r
}

/// A key as shown: control characters escaped, at most [`KEY_CHARS`] characters.
pub(crate) fn shown_key(k: &str) -> String {
    let mut s: String = k
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .take(KEY_CHARS + 1)
        .collect();
    if s.chars().count() > KEY_CHARS {
        s = s.chars().take(KEY_CHARS).collect::<String>() + "…";
    }
    s
}

/// The keys in the first column of `rows` as shown ([`shown_key`]; NULL as `NULL`).
pub(super) fn shown_keys(rows: &[postgres::Row]) -> Vec<String> {
    rows.iter()
        .map(|r| shown_key(r.get::<_, Option<&str>>(0).unwrap_or("NULL")))
        .collect()
}

pub(super) fn cols(columns: &[String], alias: &str) -> Vec<String> {
    columns
        .iter()
        .map(|c| format!("{alias}{}", quote_ident(c)))
        .collect()
}

/// The key of a row as text (by its type's output function, never a cast): one
/// column, or a ROW of several.
pub(super) fn key_expr(columns: &[String], alias: &str) -> String {
    let c = cols(columns, alias);
    if c.len() == 1 {
        crate::door::text_of(&c[0])
    } else {
        crate::door::text_of(&format!("ROW({})", c.join(", ")))
    }
}

/// How a table's rows are named in an answer: its primary key's values when it has
/// one, else the row's ctid. (SQL expression, the name shown.)
pub(super) fn row_key(primary: Option<&Vec<String>>) -> (String, String) {
    match primary {
        Some(pk) if !pk.is_empty() => (
            key_expr(pk, ""),
            pk.iter()
                .map(|c| airlock_sql::shown(c))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        _ => (crate::door::text_of("ctid"), "ctid".into()),
    }
}

/// Count the rows `select` returns (its one column: a key), and the first keys.
pub(super) fn keyed(
    tx: &mut Transaction<'_>,
    select: &str,
    what: String,
) -> Result<Answer, postgres::Error> {
    let got = match data(
        tx,
        &format!(
            "SELECT k, pg_catalog.count(*) OVER ()::pg_catalog.int8 FROM ({select}) AS airlock_q(k) LIMIT {KEYS_SHOWN}"
        ),
    )? {
        Ok(got) => got,
        Err(not) => return Ok(not),
    };
    Ok(Answer::Rows {
        count: Some(got.first().map_or(0, |r| r.get(1))),
        keys: shown_keys(&got),
        what,
    })
}

/// Rows under duplicated keys of `columns` (and, for a primary key, rows with a NULL
/// in one of them); of a partial index, among the rows its `predicate` keeps.
pub(super) fn unique(
    tx: &mut Transaction<'_>,
    t: &str,
    columns: &[String],
    (primary, predicate): (bool, Option<&str>),
) -> Result<Answer, postgres::Error> {
    let c = cols(columns, "");
    let mut not_null: Vec<String> = c.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    if let Some(p) = predicate {
        not_null.push(format!("({p})"));
    }
    let got = match data(
        tx,
        &format!(
            "SELECT k, n, pg_catalog.count(*) OVER ()::pg_catalog.int8, (pg_catalog.sum(n) OVER ())::pg_catalog.int8 FROM \
             (SELECT {} AS k, pg_catalog.count(*) AS n FROM {t} WHERE {} GROUP BY {} \
              HAVING pg_catalog.count(*) OPERATOR(pg_catalog.>) 1) d \
             ORDER BY n DESC LIMIT {KEYS_SHOWN}",
            key_expr(columns, ""),
            not_null.join(" AND "),
            c.join(", ")
        ),
    )? {
        Ok(got) => got,
        Err(not) => return Ok(not),
    };
    let groups: i64 = got.first().map_or(0, |r| r.get(2));
    let dup_rows: i64 = got.first().map_or(0, |r| r.get(3));
    let keys: Vec<String> = got
        .iter()
        .map(|r| {
            format!(
                "{} ×{}",
                shown_key(r.get::<_, Option<&str>>(0).unwrap_or("NULL")),
                r.get::<_, i64>(1)
            )
        })
        .collect();
    let mut what = format!(
        "rows under {groups} duplicated key(s) of ({})",
        c.join(", ")
    );
    if let Some(p) = predicate {
        what.push_str(&format!(" among the rows WHERE {p}"));
    }
    let mut count = dup_rows;
    if primary {
        let null: Vec<String> = c.iter().map(|c| format!("{c} IS NULL")).collect();
        let n = match data(
            tx,
            &format!(
                "SELECT pg_catalog.count(*) FROM {t} WHERE {}",
                null.join(" OR ")
            ),
        )? {
            Ok(n) => n,
            Err(not) => return Ok(not),
        };
        let nulls: i64 = n[0].get(0);
        if nulls > 0 {
            what.push_str(&format!(", or with a NULL key column ({nulls})"));
        }
        count += nulls;
    }
    Ok(Answer::Rows {
        count: Some(count),
        keys,
        what,
    })
}

/// The primary key's columns of table `$1`, in order.
pub(super) const PRIMARY_KEY: Fixed = Fixed::new(
    "SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_constraint k \
     JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid \
       AND a.attnum OPERATOR(pg_catalog.=) ANY (k.conkey) \
     WHERE k.conrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND k.contype OPERATOR(pg_catalog.=) 'p' \
     ORDER BY pg_catalog.array_position(k.conkey, a.attnum)",
);

/// A foreign key's columns here and there.
#[derive(Clone, Copy)]
pub(super) struct Fk<'a> {
    pub columns: &'a [String],
    /// The referenced table, qualified SQL, and as shown.
    pub references: (&'a str, &'a str),
    /// Empty: the referenced table's primary key.
    pub ref_columns: &'a [String],
    pub match_full: bool,
}

/// Rows whose key has no match in the referenced table (MATCH SIMPLE: a key with a
/// NULL passes; MATCH FULL: only an all-NULL key does).
pub(super) fn foreign_key(
    tx: &mut Transaction<'_>,
    t: &str,
    fk: Fk<'_>,
) -> Result<Answer, postgres::Error> {
    let missing = match condition(tx, &fk, "c.")? {
        Ok(missing) => missing,
        Err(not) => return Ok(not),
    };
    keyed(
        tx,
        &format!(
            "SELECT {} FROM {t} c WHERE {missing}",
            key_expr(fk.columns, "c.")
        ),
        format!(
            "rows whose ({}) has no match in {}",
            cols(fk.columns, "").join(", "),
            fk.references.1
        ),
    )
}

/// The test of a row (the table aliased `airlock_t`) whose key has no match in the
/// referenced table, as [`foreign_key`] asks it; `None` when it is not asked.
pub(super) fn missing(
    tx: &mut Transaction<'_>,
    fk: &Fk<'_>,
) -> Result<Option<String>, postgres::Error> {
    Ok(condition(tx, fk, "airlock_t.")?.ok())
}

/// [`foreign_key`]'s condition over the referencing table aliased `alias` (with its dot).
fn condition(
    tx: &mut Transaction<'_>,
    fk: &Fk<'_>,
    alias: &str,
) -> Result<Result<String, Answer>, postgres::Error> {
    let r = fk.references.0;
    let ref_columns: Vec<String> = if fk.ref_columns.is_empty() {
        rows(tx, PRIMARY_KEY, &[r])?
            .iter()
            .map(|row| row.get(0))
            .collect()
    } else {
        fk.ref_columns.to_vec()
    };
    if ref_columns.len() != fk.columns.len() || fk.columns.is_empty() {
        return Ok(Err(Answer::unasked(
            "the referenced columns could not be matched",
        )));
    }
    let here = cols(fk.columns, alias);
    let there = cols(&ref_columns, "p.");
    let not_null: Vec<String> = here.iter().map(|c| format!("{c} IS NOT NULL")).collect();
    let eq: Vec<String> = here
        .iter()
        .zip(&there)
        .map(|(a, b)| format!("{b} OPERATOR(pg_catalog.=) {a}"))
        .collect();
    let mut missing = format!(
        "({}) AND NOT EXISTS (SELECT 1 FROM {r} p WHERE {})",
        not_null.join(" AND "),
        eq.join(" AND ")
    );
    if fk.match_full && here.len() > 1 {
        let some_null: Vec<String> = here.iter().map(|c| format!("{c} IS NULL")).collect();
        missing = format!(
            "({missing}) OR (({}) AND NOT ({}))",
            some_null.join(" OR "),
            some_null.join(" AND ")
        );
    }
    Ok(Ok(missing))
}

#[cfg(test)]
mod tests {
    use super::super::{cast, catalog, count, reach, referenced, state, stats};
    use super::*;

    /// Every fixed question of the catalog, by name.
    const QUESTIONS: &[(&str, Fixed)] = &[
        ("ask::PRIMARY_KEY", PRIMARY_KEY),
        ("catalog::NAMES", catalog::NAMES),
        ("catalog::KEYS", catalog::KEYS),
        ("count::SIZE", count::SIZE),
        ("count::CONSTRAINT", count::CONSTRAINT),
        ("state::RELATION_EXISTS", state::RELATION_EXISTS),
        ("state::RELATION_KIND", state::RELATION_KIND),
        ("reach::DEPENDENTS", reach::DEPENDENTS),
        ("reach::RELATION_OID", reach::RELATION_OID),
        ("reach::SCHEMA_OID", reach::SCHEMA_OID),
        ("reach::TYPE_OID", reach::TYPE_OID),
        ("reach::REFERENCING", reach::REFERENCING),
        ("reach::TYPE_EXISTS", reach::TYPE_EXISTS),
        ("referenced::FOREIGN_KEYS", referenced::FOREIGN_KEYS),
        ("cast::ENUM_LABELS", cast::ENUM_LABELS),
        ("catalog::COLUMN", catalog::COLUMN),
        ("cast::CATEGORY", cast::CATEGORY),
        ("cast::TYPES_DEFINED", cast::TYPES_DEFINED),
        ("cast::ASSIGNABLE", cast::ASSIGNABLE),
        ("stats::STATS", stats::STATS),
        ("stats::COMMON", stats::COMMON),
        ("stats::SEEN", stats::SEEN),
    ];

    /// The door asks no proof of these: each must name every function, operator,
    /// type and relation in `pg_catalog` (the checker the schema fingerprint's SQL
    /// passes), so a role's planted object is never reached under any search_path.
    #[test]
    fn every_catalog_question_names_only_pg_catalog() {
        for (name, q) in QUESTIONS {
            let bad = crate::catalog::fingerprint::outside_pg_catalog(q.sql());
            assert!(
                bad.is_empty(),
                "{name}: {} construct(s) could resolve outside pg_catalog:\n{}",
                bad.len(),
                bad.join("\n")
            );
        }
    }

    /// Every `Fixed::new` in predict/ is in [`QUESTIONS`] (so checked above).
    #[test]
    fn every_fixed_question_is_checked() {
        let made: usize = [
            include_str!("ask.rs"),
            include_str!("catalog.rs"),
            include_str!("count.rs"),
            include_str!("state.rs"),
            include_str!("reach.rs"),
            include_str!("cast.rs"),
            include_str!("mod.rs"),
            include_str!("walk.rs"),
            include_str!("declared.rs"),
            include_str!("referenced.rs"),
            include_str!("stats.rs"),
        ]
        .iter()
        .map(|src| {
            src.matches(concat!("Fixed::", "new(\"")).count()
                + src.matches(concat!("Fixed::", "new(\n")).count()
        })
        .sum();
        assert_eq!(
            made,
            QUESTIONS.len(),
            "a Fixed question is not in QUESTIONS"
        );
    }

    /// A question of the catalog as it was before (an unqualified operator, type or
    /// function) is caught.
    #[test]
    fn the_check_catches_an_unqualified_catalog_question() {
        for sql in [
            "SELECT a.attname::text FROM pg_catalog.pg_attribute a",
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)",
            "SELECT count(*) FROM pg_catalog.pg_class",
            "SELECT 1 FROM pg_catalog.pg_depend d WHERE d.deptype IN ('n', 'a')",
            "SELECT $1::int2[]",
        ] {
            assert!(
                !crate::catalog::fingerprint::outside_pg_catalog(sql).is_empty(),
                "not caught: {sql}"
            );
        }
    }
}
