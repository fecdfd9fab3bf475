//! `ALTER COLUMN … TYPE`: whether every value there now converts, tested with the
//! expression PostgreSQL will use (the USING expression, or the column, cast to the
//! new type; a shorter varchar or char checked as an assignment checks it), and what
//! the conversion rounds away (counted as destruction). An enum type the release
//! creates is judged by its labels: the rows holding a label it lacks.
//!
//! Invariant: nothing the database defines runs: the column's type, the new type and
//! every type the USING casts to are built in or enums, no cast the database defines
//! reaches them, and the USING calls only built-in functions; anything else is named
//! as not predictable. Conversions are asked read-only; the one that counts failing
//! rows is a DO block of airlock's own (each row's conversion in its own
//! subtransaction), bounded by the same timeout, its count returned as an error.

use super::super::{quote_ident, sqlstate};
use super::ask::{self, Answer, Fixed, KEYS_SHOWN};
use super::catalog::{qualified, type_name};
use super::state::{self, Walk};
use super::{Destroyed, Predictions};
use crate::session::hermetic::quote_literal;
use airlock_sql::{DataStep, Relation, Step, TypeRef, Using};
use postgres::Transaction;

/// The column as it is now.
struct Column {
    /// `format_type`: its type with modifiers, as SQL.
    sql_type: String,
    oid: u32,
    category: String,
}

/// What a type change's questions found.
struct Judged {
    answer: Answer,
    /// Rows whose value the conversion changes (numbers rounded, times truncated).
    lost: Option<(i64, Vec<String>)>,
    /// An enum column recreated: its type now and the labels the new type drops.
    removed: Option<Removed>,
    /// The change keeps every value's text ([`super::widening`]): the rows still
    /// decide what comes after it.
    keeps_text: bool,
}

/// An enum type now (schema, name), and the labels of it a recreated type lacks.
type Removed = ((String, String), Vec<String>);

pub(super) fn judge(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    tier: &str,
    s: &DataStep,
    out: &mut Predictions,
) {
    let Step::AlterType { column, to, using } = &s.step else {
        return;
    };
    let t = w.key(&s.relation);
    let shown = format!("{} column {}", s.relation, airlock_sql::shown(column));
    let p = state::prediction(tier, s, shown.clone());
    let judged = match w.unpredictable(std::slice::from_ref(&t)) {
        Some(why) => Ok(Judged {
            answer: Answer::Unasked(why),
            lost: None,
            removed: None,
            keeps_text: false,
        }),
        None => ask_cast(w, tx, &t, (column, to, using), &s.statement),
    };
    let (answer, lost, removed, keeps_text) = match judged {
        Ok(j) => (Ok(j.answer), j.lost, j.removed, j.keeps_text),
        Err(e) => (Err(e), None, None, false),
    };
    let p = state::settle(p, answer);
    if let Some(((schema, name), labels)) = removed.filter(|(_, l)| !l.is_empty()) {
        let mut d: Destroyed = state::destroyed(tier, s, shown.clone(), &[&schema, &name]);
        d.statement = format!("{} (enum labels removed)", s.statement);
        d.rows = p.count.filter(|_| p.outcome.answered());
        d.exact = true;
        d.existing = true;
        d.note = Some(format!(
            "labels {} of {} are gone after it (rows holding them: the prediction)",
            labels.join(", "),
            airlock_sql::shown(&name)
        ));
        out.destroys.push(d);
    }
    out.predictions.push(p);
    if let Some((rows, keys)) = lost.filter(|(n, _)| *n > 0) {
        let schema = t.schema.clone().unwrap_or_default();
        let mut d: Destroyed = state::destroyed(tier, s, shown, &[&schema, &t.name, column]);
        d.statement = format!("{} (loses precision)", s.statement);
        d.rows = Some(rows);
        d.exact = true;
        d.existing = true;
        d.note = Some(format!(
            "values the new type {} rounds or cuts (first: {})",
            to.text,
            keys.join(", ")
        ));
        out.destroys.push(d);
    }
    w.altered.insert((t.clone(), column.clone()));
    if !keeps_text {
        w.wrote(t, s);
    }
}

fn unasked(why: &str) -> Result<Judged, postgres::Error> {
    Ok(Judged {
        answer: Answer::unasked(why),
        lost: None,
        removed: None,
        keeps_text: false,
    })
}

fn ask_cast(
    w: &mut Walk,
    tx: &mut Transaction<'_>,
    t: &Relation,
    (column, to, using): (&str, &TypeRef, &Using),
    statement: &str,
) -> Result<Judged, postgres::Error> {
    if !w.exists(tx, t)? {
        return unasked("the table is not there now");
    }
    let q = qualified(t);
    let Some(col) = column_now(tx, &q, column)? else {
        return unasked("the column is not there now");
    };
    let (key, keyed_by) = ask::row_key(w.cat.keys(tx, t)?.primary.as_ref());
    let target = w.type_key(&type_name(to));
    if let Some(labels) = w.enums.get(&target).cloned() {
        return Ok(Judged {
            answer: enum_labels(tx, &q, using, (&to.text, &labels))?,
            lost: None,
            removed: removed_labels(tx, col.oid, &labels)?,
            keeps_text: false,
        });
    }
    if w.unpredictable(std::slice::from_ref(&target)).is_some() {
        return unasked("the new type is created by the release (rehearse runs it)");
    }
    let (expr, casts, functions) = match using {
        Using::Absent => (quote_ident(column), vec![], vec![]),
        Using::Plain {
            expr,
            casts,
            functions,
            ..
        } => (format!("({expr})"), casts.clone(), functions.clone()),
        Using::Other => {
            return unasked(
                "the USING expression is not a plain expression over the table's columns",
            )
        }
    };
    if !w.cat.all_builtin(&functions) {
        return unasked("the USING calls a function that may not be built in");
    }
    if expr.contains("$airlock_cast$") || to.text.contains("$airlock_cast$") {
        return unasked("the expression holds airlock's own quoting");
    }
    if matches!(to.names.last().map(String::as_str), Some("bit" | "varbit")) {
        return unasked("a bit string's length is not asked about");
    }
    let mut types = vec![to.text.clone()];
    types.extend(casts);
    if let Some(why) = unsafe_types(tx, &types)? {
        return unasked(&why);
    }
    let source = match using {
        Using::Absent => col.oid,
        _ => match described_type(tx, &format!("SELECT {expr} FROM {q}")) {
            Some(oid) => oid,
            None => return unasked("the USING expression's type could not be read"),
        },
    };
    if let Some(why) = not_assignable(tx, source, &to.text)? {
        return Ok(Judged {
            answer: Answer::Rows {
                count: None,
                keys: vec![],
                what: why,
            },
            lost: None,
            removed: None,
            keeps_text: false,
        });
    }
    let converted = converted(
        w,
        tx,
        (&q, column, &col),
        (&expr, to, using),
        (&key, &keyed_by),
    )?;
    let lost = match (&converted, using) {
        (Answer::Rows { count: Some(0), .. }, Using::Absent)
            if col.category == category_of(tx, &to.text)?
                && matches!(col.category.as_str(), "N" | "D") =>
        {
            rounded(tx, &q, column, (&to.text, &col.sql_type), &key)?
        }
        _ => None,
    };
    let keeps_text = super::widening::keeps_text(&col.sql_type, to, using, statement)
        && matches!(converted, Answer::Rows { count: Some(0), .. });
    Ok(Judged {
        answer: converted,
        lost,
        removed: None,
        keeps_text,
    })
}

/// The schema and name of enum type `$1` (an oid as text) and its labels in order.
pub(super) const ENUM_LABELS: Fixed = Fixed::new(
    "SELECT n.nspname::pg_catalog.text, t.typname::pg_catalog.text, \
       ARRAY(SELECT e.enumlabel::pg_catalog.text FROM pg_catalog.pg_enum e \
         WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid ORDER BY e.enumsortorder) \
     FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.typnamespace \
     WHERE t.oid OPERATOR(pg_catalog.=) $1::pg_catalog.text::pg_catalog.oid AND t.typtype OPERATOR(pg_catalog.=) 'e'",
);

/// The category of type `$1`.
pub(super) const CATEGORY: Fixed = Fixed::new(
    "SELECT pg_catalog.format('%s', t.typcategory) FROM pg_catalog.pg_type t \
     WHERE t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regtype($1)",
);

/// For each type named in `$1`: whether it is there, whether it is built in (or an
/// enum, or an array of one of those), and whether a cast to it is defined by the
/// database.
pub(super) const TYPES_DEFINED: Fixed = Fixed::new(
    "SELECT x, t.oid IS NOT NULL, \
       COALESCE(t.oid OPERATOR(pg_catalog.<) 16384 OR t.typtype OPERATOR(pg_catalog.=) 'e' \
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_type e \
           WHERE e.oid OPERATOR(pg_catalog.=) t.typelem AND t.typelem OPERATOR(pg_catalog.<>) 0 \
             AND (e.oid OPERATOR(pg_catalog.<) 16384 OR e.typtype OPERATOR(pg_catalog.=) 'e')), false), \
       EXISTS (SELECT 1 FROM pg_catalog.pg_cast c WHERE c.oid OPERATOR(pg_catalog.>=) 16384 \
         AND c.casttarget OPERATOR(pg_catalog.=) t.oid) \
     FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(x, i) \
     LEFT JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) pg_catalog.to_regtype(u.x) \
     ORDER BY u.i",
);

/// Whether a value of type `$1` (an oid as text) converts to type `$2` by an
/// implicit or assignment cast (or I/O to a string type, or element-wise for
/// arrays), and the source type as SQL.
pub(super) const ASSIGNABLE: Fixed = Fixed::new(
    "WITH x AS (SELECT $1::pg_catalog.text::pg_catalog.oid AS s, pg_catalog.to_regtype($2)::pg_catalog.oid AS d), \
     e AS (SELECT x.s, x.d, se.typelem AS se, de.typelem AS de FROM x \
       JOIN pg_catalog.pg_type se ON se.oid OPERATOR(pg_catalog.=) x.s \
       JOIN pg_catalog.pg_type de ON de.oid OPERATOR(pg_catalog.=) x.d) \
     SELECT s OPERATOR(pg_catalog.=) d OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c \
         WHERE c.castsource OPERATOR(pg_catalog.=) s AND c.casttarget OPERATOR(pg_catalog.=) d \
         AND c.castcontext OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog.\"char\"[])) \
       OR (SELECT t.typcategory OPERATOR(pg_catalog.=) 'S' FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) d) \
       OR (se OPERATOR(pg_catalog.<>) 0 AND de OPERATOR(pg_catalog.<>) 0 AND (se OPERATOR(pg_catalog.=) de \
         OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c WHERE c.castsource OPERATOR(pg_catalog.=) se \
           AND c.casttarget OPERATOR(pg_catalog.=) de AND c.castcontext OPERATOR(pg_catalog.=) ANY ('{a,i}'::pg_catalog.\"char\"[])))), \
       pg_catalog.format_type(s, NULL) FROM e",
);

/// The column's enum type now (schema, name) and the labels of it that `labels` (the
/// new type's) lacks; `None` when the column is not of an enum type.
fn removed_labels(
    tx: &mut Transaction<'_>,
    oid: u32,
    labels: &[String],
) -> Result<Option<Removed>, postgres::Error> {
    let got = ask::rows(tx, ENUM_LABELS, &[&oid.to_string()])?;
    Ok(got.first().map(|r| {
        let old: Vec<String> = r.get(2);
        let gone = old.into_iter().filter(|l| !labels.contains(l)).collect();
        ((r.get(0), r.get(1)), gone)
    }))
}

fn column_now(
    tx: &mut Transaction<'_>,
    q: &str,
    column: &str,
) -> Result<Option<Column>, postgres::Error> {
    let got = ask::rows(tx, super::catalog::COLUMN, &[q, column])?;
    Ok(got.first().map(|r| Column {
        sql_type: r.get(0),
        oid: r.get(1),
        category: r.get(2),
    }))
}

fn category_of(tx: &mut Transaction<'_>, t: &str) -> Result<String, postgres::Error> {
    let got = ask::rows(tx, CATEGORY, &[t])?;
    Ok(got.first().map(|r| r.get(0)).unwrap_or_default())
}

/// Why a conversion to these types could run code the database defines (a type or
/// cast it defines), or that one is not there now.
fn unsafe_types(
    tx: &mut Transaction<'_>,
    types: &[String],
) -> Result<Option<String>, postgres::Error> {
    let list: Vec<String> = types.to_vec();
    let got = super::catalog::rows_typed(tx, TYPES_DEFINED, &[&list])?;
    for r in got {
        let name: String = r.get(0);
        if !r.get::<_, bool>(1) {
            return Ok(Some(format!("type {name} is not there now")));
        }
        if !r.get::<_, bool>(2) {
            return Ok(Some(format!(
                "type {name} is defined by the database (its conversion could run its code)"
            )));
        }
        if r.get::<_, bool>(3) {
            return Ok(Some(format!(
                "a cast to {name} is defined by the database (CREATE CAST)"
            )));
        }
    }
    Ok(None)
}

/// The type of a query's one column, as the server describes it (nothing runs).
fn described_type(tx: &mut Transaction<'_>, sql: &str) -> Option<u32> {
    let mut sp = tx.transaction().ok()?;
    let oid = sp
        .prepare(sql)
        .ok()
        .and_then(|st| st.columns().first().map(|c| c.type_().oid()));
    let _ = sp.rollback();
    oid
}

/// Why PostgreSQL would refuse the change whatever the rows: no implicit or
/// assignment cast from the value's type to the new one (ALTER COLUMN … TYPE converts
/// as an assignment does).
fn not_assignable(
    tx: &mut Transaction<'_>,
    source: u32,
    to: &str,
) -> Result<Option<String>, postgres::Error> {
    let got = ask::rows(tx, ASSIGNABLE, &[&source.to_string(), to])?;
    Ok(match got.first() {
        Some(r) if !r.get::<_, bool>(0) => Some(format!(
            "PostgreSQL cannot convert {} to {to} automatically, whatever the rows (no implicit or assignment cast): the statement fails; give it a USING expression",
            r.get::<_, String>(1)
        )),
        _ => None,
    })
}

/// The condition under which a value that casts fine is still refused: longer than a
/// new varchar(n) or char(n) (beyond trailing spaces), as an assignment checks it (an
/// explicit cast would cut it silently).
fn narrowing(expr: &str, to: &TypeRef) -> String {
    let name = to.names.last().map(String::as_str);
    match (name, to.typmods.as_slice(), to.array) {
        (Some("varchar" | "bpchar"), [n], false) => format!(
            "pg_catalog.char_length(({expr})::pg_catalog.text) OPERATOR(pg_catalog.>) {n} AND pg_catalog.substr(({expr})::pg_catalog.text, {}) OPERATOR(pg_catalog.~) '[^ ]'",
            n + 1
        ),
        _ => "false".into(),
    }
}

/// Whether every value of `column` (of table `q`, as `col` is now) converts to `to` by
/// `expr`: a value out of range that the statistics name, confirmed, else the rows
/// the same test finds, counted in one scan ([`out_of_range`],
/// [`super::sample::rejected`]); without such a test, the full question ([`convert`]).
fn converted(
    w: &Walk,
    tx: &mut Transaction<'_>,
    (q, column, col): (&str, &str, &Column),
    (expr, to, using): (&str, &TypeRef, &Using),
    (key, keyed_by): (&str, &str),
) -> Result<Answer, postgres::Error> {
    let narrow = narrowing(expr, to);
    match (using, out_of_range(col, column, to)) {
        (Using::Absent, Some(test)) => {
            let what = format!("rows whose value does not fit {}", to.text);
            // The test fails exactly the rows whose conversion fails: counting them
            // is one scan, where trying each row's conversion is a subtransaction a row.
            let counted = format!("{what} (keys: {keyed_by})");
            let select = format!("SELECT {key} FROM {q} AS airlock_t WHERE {test}");
            let t = super::stats::Test {
                column: Some(column),
                test,
                what,
            };
            super::sample::rejected(tx, q, (&t, (key, keyed_by)), w.timeout, |tx| {
                ask::keyed(tx, &select, counted)
            })
        }
        _ => convert(tx, q, (expr, &to.text, &narrow), (key, keyed_by)),
    }
}

/// The integer types, as `format_type` names them.
const INTEGERS: [&str; 3] = ["smallint", "integer", "bigint"];

/// A test of a row (the table aliased `airlock_t`) whose `column` the change to `to`
/// cannot hold, raising no error, true of exactly the rows whose conversion fails: an
/// integer outside a narrower integer's range (not a numeric or a float: 32767.4
/// rounds into smallint), a text longer than a new varchar(n) or char(n) by more than
/// spaces. `None`: no such test (the full question decides alone).
fn out_of_range(col: &Column, column: &str, to: &TypeRef) -> Option<String> {
    let c = format!("airlock_t.{}", quote_ident(column));
    let range = match to.names.last().map(String::as_str) {
        _ if to.array || !INTEGERS.contains(&col.sql_type.as_str()) => None,
        Some("int2") => Some((i64::from(i16::MIN), i64::from(i16::MAX))),
        Some("int4") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
        _ => None,
    };
    if let Some((low, high)) = range {
        return Some(format!(
            "{c} OPERATOR(pg_catalog.<) {low} OR {c} OPERATOR(pg_catalog.>) {high}"
        ));
    }
    let narrow = narrowing(&c, to);
    (col.category == "S" && narrow != "false").then_some(narrow)
}

/// Whether every value converts: one scan (the first value that does not raises the
/// server's own error); if one does not, the rows that do not, counted.
fn convert(
    tx: &mut Transaction<'_>,
    q: &str,
    (expr, to, narrow): (&str, &str, &str),
    (key, keyed_by): (&str, &str),
) -> Result<Answer, postgres::Error> {
    let test = format!("CASE WHEN ({expr})::{to} IS NULL THEN false ELSE ({narrow}) END");
    let first = ask::keyed(
        tx,
        &format!("SELECT {key} FROM {q} WHERE {test}"),
        format!("rows whose value does not fit {to} (keys: {keyed_by})"),
    );
    let message = match first {
        Err(e) if sqlstate(&e).is_some_and(|c| c.starts_with("22")) => crate::pg_message(&e),
        other => return other,
    };
    let (count, keys) = count_failing(tx, q, &test, key)?;
    Ok(Answer::Rows {
        count,
        keys,
        what: format!(
            "rows whose value does not convert to {to} ({message}) (keys: {keyed_by}){}",
            if count.is_none() {
                "; at least one, not counted in time"
            } else {
                ""
            }
        ),
    })
}

/// The rows whose conversion raises, each tried in its own subtransaction by a DO block
/// that reports its count as an error (a READ ONLY transaction returns nothing else
/// from a DO block); `None` when it could not finish.
fn count_failing(
    tx: &mut Transaction<'_>,
    q: &str,
    test: &str,
    key: &str,
) -> Result<(Option<i64>, Vec<String>), postgres::Error> {
    let body = format!(
        "DO $airlock_cast$ DECLARE airlock_n bigint := 0; airlock_k text[] := '{{}}'; \
           airlock_r record; airlock_bad boolean; \
         BEGIN \
           FOR airlock_r IN SELECT {key} AS airlock_key, airlock_t AS airlock_row FROM {q} AS airlock_t LOOP \
             BEGIN \
               SELECT {test} INTO airlock_bad FROM (SELECT (airlock_r.airlock_row).*) AS airlock_x; \
               IF airlock_bad THEN RAISE EXCEPTION USING ERRCODE = '22001'; END IF; \
             EXCEPTION WHEN data_exception THEN \
               airlock_n := airlock_n + 1; \
               IF airlock_n <= {KEYS_SHOWN} THEN airlock_k := airlock_k || airlock_r.airlock_key; END IF; \
             END; \
           END LOOP; \
           RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'airlock-count ' || airlock_n, \
             DETAIL = pg_catalog.array_to_json(airlock_k)::text; \
         END $airlock_cast$"
    );
    // Reached only after `convert` asked the same expressions through the door.
    let r = crate::door::run_proven(tx, &body);
    let Err(e) = r else { return Ok((None, vec![])) };
    let Some(db) = e.as_db_error().filter(|d| d.code().code() == "P0001") else {
        return Ok((None, vec![]));
    };
    let n = db
        .message()
        .strip_prefix("airlock-count ")
        .and_then(|n| n.parse().ok());
    let keys: Vec<String> = db
        .detail()
        .and_then(|d| serde_json::from_str::<Vec<Option<String>>>(d).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|k| ask::shown_key(k.as_deref().unwrap_or("NULL")))
        .collect();
    Ok((n, keys))
}

/// Rows whose value changes going to the new type and back (numbers rounded, times
/// cut): what the change destroys.
fn rounded(
    tx: &mut Transaction<'_>,
    q: &str,
    column: &str,
    (to, from): (&str, &str),
    key: &str,
) -> Result<Option<(i64, Vec<String>)>, postgres::Error> {
    let c = quote_ident(column);
    let got = ask::keyed(
        tx,
        &format!(
            "SELECT {key} FROM {q} WHERE NOT (({c})::{to}::{from} OPERATOR(pg_catalog.=) {c})"
        ),
        String::new(),
    )?;
    Ok(match got {
        Answer::Rows {
            count: Some(n),
            keys,
            ..
        } => Some((n, keys)),
        _ => None,
    })
}

/// A column cast to an enum the release creates: the rows holding a value the new
/// type has no label for (the release's `USING col::text::new_type`).
fn enum_labels(
    tx: &mut Transaction<'_>,
    q: &str,
    using: &Using,
    (to, labels): (&str, &[String]),
) -> Result<Answer, postgres::Error> {
    let Using::Plain {
        inner: Some(inner), ..
    } = using
    else {
        return Ok(Answer::unasked(format!(
            "the new type {to} is created by the release and the USING is not a cast of a plain expression to it (rehearse runs it)"
        )));
    };
    let list: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
    let got = match ask::data(
        tx,
        &format!(
            "SELECT v, n, (pg_catalog.sum(n) OVER ())::pg_catalog.int8 FROM (SELECT ({inner})::text AS v, \
             pg_catalog.count(*)::pg_catalog.int8 AS n \
             FROM {q} WHERE ({inner}) IS NOT NULL AND ({inner})::text OPERATOR(pg_catalog.<>) ALL (ARRAY[{}]::pg_catalog.text[]) \
             GROUP BY 1) d ORDER BY n DESC, v LIMIT {KEYS_SHOWN}",
            list.join(", ")
        ),
    )? {
        Ok(got) => got,
        Err(not) => return Ok(not),
    };
    Ok(Answer::Rows {
        count: Some(got.first().map_or(0, |r| r.get(2))),
        keys: got
            .iter()
            .map(|r| {
                format!(
                    "{} ×{}",
                    ask::shown_key(r.get::<_, &str>(0)),
                    r.get::<_, i64>(1)
                )
            })
            .collect(),
        what: format!(
            "rows holding a value the new enum {to} has no label for (its labels: {})",
            labels.join(", ")
        ),
    })
}
